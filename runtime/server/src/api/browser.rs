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
//!   (`application/json` or `application/…+json`) or carry a header no simple request can: a
//!   credential (`St2-Api-Key`, `X-Auth-Token`, `Authorization`) or any `X-…` header (a
//!   webhook's signature, say); else `415`. (A key in the query string does not count: any
//!   page can put one in a form's URL.) On an open listener a `POST` whose `Origin` is not
//!   this server's own (`Origin` authority equal to `Host`; `null` included) is refused with
//!   `403`: a page on another local port is another site. `PUT`, `PATCH` and `DELETE` are
//!   never simple requests: a browser asks first with a CORS preflight, and Squall sends no
//!   CORS headers, so it never agrees.

use super::{Access, ApiError, ApiState};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use std::net::IpAddr;

/// Whether `host` (a `Host` header value, port allowed) names this machine's loopback
/// interface.
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
}

/// The authority the request was sent to: its `Host` header, else (HTTP/2) the URI's.
fn host_of(req: &Request) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(h) => Some(h.to_str().unwrap_or("").to_string()),
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    }
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
    let host = host_of(&req);
    if state.access == Access::Open
        && let Some(host) = &host
        && !is_loopback_host(host)
    {
        return Err(ApiError::Forbidden(format!(
            "Host {host:?} is not a loopback name: this server listens on loopback and answers \
             only localhost, 127.0.0.0/8 and [::1] (DNS rebinding protection)"
        )));
    }
    if req.method() == Method::POST {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let authority = origin.split_once("://").map_or("", |(_, a)| a);
            let same = host
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(authority));
            if state.access == Access::Open && !same {
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
