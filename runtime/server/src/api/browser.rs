//! Keeping web browsers from driving the API on the operator's behalf.
//!
//! A listener on loopback needs no API key (see `auth.rs`), which a web page the operator
//! visits could exploit in two ways, both refused here:
//! - **DNS rebinding**: a page on `evil.example` re-resolves its own name to `127.0.0.1` and
//!   then reads and writes the API as same-origin. Its requests carry `Host: evil.example`, so
//!   an open listener accepts only loopback host names: `localhost` (and `*.localhost`),
//!   `127.0.0.0/8` and `[::1]`, with any port. A request without `Host` (HTTP/1.0, in-process
//!   calls) has no name to rebind and passes.
//! - **Cross-site requests**: a page may POST a form or `text/plain` body to any address
//!   without asking (a CORS "simple request"). A `POST` must therefore be JSON
//!   (`application/json` or `…+json`) or carry what no simple request can: a credential
//!   (`St2-Api-Key`, `X-Auth-Token`, `Authorization`, `st2-api-key=` in the query) or any
//!   `X-…` header (a webhook's signature, say); else `415`. A `POST` naming a foreign `Origin`
//!   is refused with `403`. `PUT`, `PATCH` and `DELETE` are never simple requests: a browser
//!   asks first with a CORS preflight, and Squall sends no CORS headers, so it never agrees.

use super::{Access, ApiError, ApiState};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use std::net::IpAddr;

/// Whether `host` (a `Host` header value or an `Origin`'s authority, port allowed) names this
/// machine's loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || after.starts_with(':') => inside,
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .is_some_and(|t| {
            t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
        })
}

fn has_credential_or_custom_header(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key("st2-api-key")
        || headers.contains_key("x-auth-token")
        || headers.contains_key(header::AUTHORIZATION)
        || headers.keys().any(|k| k.as_str().starts_with("x-"))
        || req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("st2-api-key=")))
}

/// Middleware: the checks in the module docs.
///
/// # Errors
/// `403` naming a foreign `Host` or `Origin`; `415` for a `POST` that is neither JSON nor
/// carries a credential.
pub async fn guard(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if state.access == Access::Open
        && let Some(host) = req.headers().get(header::HOST)
    {
        let host = host.to_str().unwrap_or("");
        if !is_loopback_host(host) {
            return Err(ApiError::Forbidden(format!(
                "Host {host:?} is not a loopback name: this server listens on loopback and \
                 answers only localhost, 127.0.0.0/8 and [::1] (DNS rebinding protection)"
            )));
        }
    }
    if req.method() == Method::POST {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            if state.access == Access::Open && !is_loopback_host(authority) {
                return Err(ApiError::Forbidden(format!(
                    "cross-site request from Origin {origin:?} refused (Squall allows no \
                     cross-origin requests)"
                )));
            }
        }
        if !is_json(&req) && !has_credential_or_custom_header(&req) {
            return Err(ApiError::UnsupportedMediaType(
                "a POST must have Content-Type: application/json or carry a credential \
                 (St2-Api-Key, X-Auth-Token) or a signature header (cross-site request \
                 protection)"
                    .into(),
            ));
        }
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_host_names() {
        for (host, ok) in [
            ("localhost", true),
            ("localhost:9101", true),
            ("LOCALHOST.:9101", true),
            ("api.localhost:80", true),
            ("127.0.0.1:9101", true),
            ("127.1.2.3", true),
            ("[::1]:9101", true),
            ("[::1]", true),
            ("evil.example:9101", false),
            ("localhost.evil.example", false),
            ("127.0.0.1.nip.io:9101", false),
            ("10.0.0.1:9101", false),
            ("[::1]x", false),
            ("", false),
        ] {
            assert_eq!(is_loopback_host(host), ok, "{host}");
        }
    }
}
