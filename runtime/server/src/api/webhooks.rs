//! `/api/v1/webhooks`: events pushed over HTTP, as StackStorm's webhooks.
//!
//! `POST /api/v1/webhooks/{url}` fires `core.st2.webhook` for the rules whose trigger has that
//! `url`, with payload `{"headers": {...}, "body": ...}` (header names as WSGI presents them to
//! StackStorm, e.g. `X-Github-Event`, less the credential headers `St2-Api-Key`,
//! `X-Auth-Token`, `Authorization`, `Proxy-Authorization` and `Cookie`; the body parsed by
//! content type: JSON, form or text).
//! `POST /api/v1/webhooks/st2` takes `{"trigger": "<ref>", "payload": {...}}` for any trigger
//! type. The trigger instance is stored before the `202` answer, whose body echoes the request.
//! A url that a sensor lists in its `webhooks:` goes to that sensor instead (see
//! [`crate::Sensors::webhook`]) while that sensor is enabled: it checks the request itself and
//! its answer is returned; Squall's credential headers (`St2-Api-Key`, `X-Auth-Token`,
//! `Authorization`, `Cookie`) are not passed on, and an `hmac_secret` configured for the url is
//! checked first.
//! A webhook with `[webhooks.<url>] hmac_secret` needs `sha256=<hex HMAC-SHA256 of the body>`
//! in its signature header (GitHub's `X-Hub-Signature-256`), else `401`.

use super::error::json;
use super::{ApiError, ApiState, listed};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use squall_core::Ref;
use squall_core::trigger::WEBHOOK;

/// Request headers never made event data (the `core.st2.webhook` payload, the stream, rules)
/// nor handed to a sensor component: Squall's own credentials and the caller's session (a
/// caller's API key or token would give whoever reads the event the caller's rights).
const CREDENTIAL_HEADERS: [&str; 5] = [
    "st2-api-key",
    "x-auth-token",
    "authorization",
    "cookie",
    "proxy-authorization",
];

/// `POST /api/v1/webhooks/st2` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericTrigger {
    /// Trigger type ref.
    pub trigger: String,
    /// The payload (checked against the type's `payload_schema`).
    #[serde(default)]
    pub payload: Value,
}

/// Lists the webhook urls enabled rules listen to.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Registered webhooks", body = Vec<Value>)))]
pub async fn list_webhooks(State(state): State<ApiState>) -> impl axum::response::IntoResponse {
    let registry = state.services.registry();
    let packs = registry.packs();
    let webhook: Ref = WEBHOOK.parse().expect("built-in ref");
    let items: Vec<Value> = registry
        .webhook_urls()
        .into_iter()
        .map(|url| {
            let mut params = Map::new();
            params.insert("url".into(), Value::String(url.clone()));
            let rules: Vec<String> = registry
                .rules_in(&packs, &webhook, &params)
                .map(|r| r.reference.to_string())
                .collect();
            json!({
                "url": url,
                "type": WEBHOOK,
                "parameters": params,
                "rules": rules,
                "signed": registry.config().webhooks.contains_key(&url),
            })
        })
        .collect();
    let total = items.len() as u64;
    listed(items, total)
}

/// `x-github-event` → `X-Github-Event`, as WSGI hands header names to StackStorm.
fn wsgi_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn verify(secret: &str, header: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let given = headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized(format!("missing signature header {header}")))?;
    let hex_sig = given
        .strip_prefix("sha256=")
        .ok_or_else(|| ApiError::Unauthorized(format!("{header} must be sha256=<hex>")))?;
    let sig =
        hex::decode(hex_sig).map_err(|_| ApiError::Unauthorized(format!("{header} is not hex")))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| {
        ApiError::Unauthorized(format!("{header} does not match the body (bad signature)"))
    })
}

fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/x-www-form-urlencoded" => Ok(Value::Object(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )),
        t if t.starts_with("text/") => {
            Ok(Value::String(String::from_utf8_lossy(bytes).into_owned()))
        }
        _ if bytes.is_empty() => Ok(Value::Object(Map::new())),
        _ => json(bytes),
    }
}

/// Fires a webhook.
#[utoipa::path(post, path = "/api/v1/webhooks/{url}", tag = "webhooks",
    params(("url" = String, Path, description = "The webhook url a rule's core.st2.webhook trigger names, or st2")),
    request_body(content = Value, description = "Any JSON (or form / text); for `st2`, a GenericTrigger"),
    responses((status = 202, description = "Trigger instance stored; the body echoes the request", body = Value),
              (status = 400, description = "Malformed body or payload refused by its schema", body = super::Fault),
              (status = 401, description = "Bad or missing signature / API key", body = super::Fault),
              (status = 404, description = "No enabled rule listens to this url", body = super::Fault),
              (status = 413, body = super::Fault),
              (status = 429, description = "Backlog full ([server] max_backlog); see Retry-After", body = super::Fault)))]
pub async fn post_webhook(
    State(state): State<ApiState>,
    Path(url): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let registry = state.services.registry().clone();
    let bytes = state.body(raw)?;
    state.services.admit()?;
    if url == "st2" {
        let req: GenericTrigger = json(&bytes)?;
        let trigger: Ref = super::error::parse(&req.trigger)?;
        state
            .services
            .dispatch(&trigger, &Map::new(), req.payload.clone())
            .await?;
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"trigger": req.trigger, "payload": req.payload})),
        ));
    }
    let sensors = state.services.sensors();
    // A disabled sensor gives its urls back to `core.st2.webhook` rules.
    if sensors
        .webhook_sensor(&url)
        .is_some_and(|r| sensors.enabled(r))
    {
        // An operator's signature check holds whoever takes the url.
        if let Some(hook) = registry.config().webhooks.get(&url) {
            verify(&hook.hmac_secret, &hook.signature_header, &headers, &bytes)?;
        }
        let headers: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| !CREDENTIAL_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let answered = sensors.webhook(&url, headers, bytes.to_vec()).await;
        return match answered {
            Some(Ok((status, body))) => Ok((
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(body),
            )),
            Some(Err(e)) => Err(e.into()),
            None => Err(ApiError::NotFound(format!(
                "webhook {url:?} is not registered"
            ))),
        };
    }
    if !registry.webhook_urls().contains(&url) {
        return Err(ApiError::NotFound(format!(
            "webhook {url:?} is not registered (no enabled rule listens to it)"
        )));
    }
    if let Some(hook) = registry.config().webhooks.get(&url) {
        verify(&hook.hmac_secret, &hook.signature_header, &headers, &bytes)?;
    }
    let parsed = parse_body(&headers, &bytes).inspect_err(|e| {
        tracing::warn!(webhook = %url, error = %e, "webhook refused");
    })?;
    let header_map: Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| !CREDENTIAL_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                wsgi_name(k.as_str()),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let mut params = Map::new();
    params.insert("url".into(), Value::String(url));
    let webhook: Ref = WEBHOOK.parse().expect("built-in ref");
    let payload = json!({"headers": header_map, "body": parsed});
    state.services.dispatch(&webhook, &params, payload).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(parsed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_look_like_wsgi() {
        assert_eq!(wsgi_name("x-github-event"), "X-Github-Event");
        assert_eq!(wsgi_name("content-type"), "Content-Type");
    }

    #[test]
    fn signatures_are_checked() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{}");
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let mut headers = HeaderMap::new();
        headers.insert("x-hub-signature-256", good.parse().unwrap());
        assert!(verify("s3cret", "X-Hub-Signature-256", &headers, b"{}").is_ok());
        assert!(verify("other", "X-Hub-Signature-256", &headers, b"{}").is_err());
        assert!(verify("s3cret", "X-Hub-Signature-256", &headers, b"{ }").is_err());
        assert!(verify("s3cret", "X-Hub-Signature-256", &HeaderMap::new(), b"{}").is_err());
    }
}
