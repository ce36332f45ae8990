//! API keys: required on every request when the server listens beyond loopback.
//!
//! A key is sent as StackStorm's `St2-Api-Key` header or `st2-api-key` query parameter (the
//! latter for webhook senders that cannot set headers). Only the key's SHA-256 is stored
//! (`squall apikey create` prints the key once).

use super::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

/// Whether requests must carry an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Loopback listener (or in-process): no key needed.
    Open,
    /// Anything else: every request needs a valid, enabled key.
    ApiKeys,
}

impl Access {
    /// [`Access::Open`] for a loopback address, else [`Access::ApiKeys`].
    pub fn for_bind(addr: &std::net::SocketAddr) -> Access {
        if addr.ip().is_loopback() {
            Access::Open
        } else {
            Access::ApiKeys
        }
    }
}

/// Hex SHA-256 of an API key, as stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn presented(req: &Request) -> Option<String> {
    if let Some(v) = req
        .headers()
        .get("St2-Api-Key")
        .and_then(|v| v.to_str().ok())
    {
        return Some(v.to_string());
    }
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "st2-api-key").then(|| v.to_string())
    })
}

/// Middleware: refuses requests without a valid key when access requires one.
pub async fn require(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if state.access == Access::Open {
        return Ok(next.run(req).await);
    }
    let Some(key) = presented(&req) else {
        return Err(ApiError::Unauthorized(
            "Unauthorized - API key required (St2-Api-Key header or st2-api-key query parameter)"
                .into(),
        ));
    };
    match state.services.store().api_key(&key_hash(&key)).await? {
        Some(k) if k.enabled => Ok(next.run(req).await),
        _ => Err(ApiError::Unauthorized(
            "Unauthorized - API key is invalid or disabled".into(),
        )),
    }
}

/// Adds the `St2-Api-Key` security scheme to the OpenAPI document.
pub struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "St2-Api-Key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("St2-Api-Key"))),
        );
    }
}
