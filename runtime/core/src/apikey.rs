//! API keys, as StackStorm's API key object: the key itself is shown once at creation and only
//! its SHA-256 digest is stored.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

crate::id::uuid_id!(
    /// An API key id (UUIDv7).
    ApiKeyId
);

/// A stored API key (without the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    /// Who it acts as.
    pub user: String,
    /// Free text (what the key is for).
    #[serde(default)]
    pub description: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Disabled keys are refused.
    pub enabled: bool,
}
