//! The key-value datastore's records, as StackStorm's key-value pair API object.
//!
//! Keys live in a scope; `system` (`st2kv.system.<name>` in templates) is shared by every rule
//! and action. Values are strings (JSON text for structure).

use serde::{Deserialize, Serialize};

/// The scope of shared keys (`st2kv.system`).
pub const SYSTEM_SCOPE: &str = "st2kv.system";

/// One key and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValuePair {
    /// The key's name: letters, digits, `_`, `-`, `.`, `:`, `/`.
    pub name: String,
    /// The value.
    pub value: String,
    /// Its scope, [`SYSTEM_SCOPE`].
    pub scope: String,
}

/// Checks a key name (1-255 chars of letters, digits, `_`, `-`, `.`, `:`, `/`).
///
/// # Errors
/// A message naming the key.
pub fn validate_key_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key name {name:?} must be 1-255 letters, digits or _ - . : /"
        ))
    }
}
