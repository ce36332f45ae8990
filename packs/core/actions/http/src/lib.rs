//! `core.http`: one HTTP request, with the parameters and result of StackStorm's `http-request`
//! runner (`contrib/runners/http_runner`):
//!
//! - result `{"status_code": 200, "body": ..., "parsed": bool, "headers": {...}}`; `body` is the
//!   decoded JSON value and `parsed` is `true` when the response's content type is
//!   `application/json` and the body parses, otherwise `body` is the text;
//! - succeeds for status 200–206, fails (with the same result recorded) for anything else;
//! - no `method` means `POST` when there is a body, else `GET`;
//! - with `content-type: application/json` the body must be JSON and is re-serialized;
//! - redirects are followed only with `allow_redirects: true` (at most 10).
//!
//! The host allows the request only when the operator granted the destination to the `core`
//! pack (`[packs.core] http_allow` in `squall.toml`).

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use squall_plugin::http::{HttpError, Request, Response};
use squall_plugin::{Context, Error, log};
use std::time::Duration;

/// Redirects followed at most when `allow_redirects` is set (as Python requests' default 30 is
/// far more than any sane API needs).
const MAX_REDIRECTS: usize = 10;

/// `core.http` parameters (see `packs/core/actions/http.yaml`).
#[derive(Deserialize)]
struct Params {
    url: String,
    method: Option<String>,
    #[serde(default)]
    headers: Map<String, Value>,
    body: Option<String>,
    #[serde(default)]
    params: Map<String, Value>,
    /// Seconds.
    timeout: f64,
    #[serde(default)]
    allow_redirects: bool,
    username: Option<String>,
    password: Option<String>,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn http(ctx: &Context, p: Params) -> Result<Value, Error> {
    let mut url = url::Url::parse(&p.url).map_err(|e| format!("invalid url {:?}: {e}", p.url))?;
    if !p.params.is_empty() {
        let mut query = url.query_pairs_mut();
        for (k, v) in &p.params {
            query.append_pair(k, &text(v));
        }
    }
    let body = p.body.unwrap_or_default();
    let mut method = p
        .method
        .unwrap_or_else(|| if body.is_empty() { "GET" } else { "POST" }.to_string())
        .to_ascii_uppercase();

    let mut headers: Vec<(String, String)> = p
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    let has = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let json_content = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.trim() == "application/json");
    let mut body = if json_content && !body.is_empty() {
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| format!("request body can't be parsed as JSON: {e}"))?;
        value.to_string().into_bytes()
    } else {
        body.into_bytes()
    };
    if !has(&headers, "user-agent") {
        headers.push((
            "User-Agent".into(),
            format!("squall/{}", env!("CARGO_PKG_VERSION")),
        ));
    }
    if p.username.is_some() || p.password.is_some() {
        let creds = format!(
            "{}:{}",
            p.username.as_deref().unwrap_or_default(),
            p.password.as_deref().unwrap_or_default()
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(creds);
        headers.push(("Authorization".into(), format!("Basic {encoded}")));
    }
    let timeout = Duration::try_from_secs_f64(p.timeout).map_err(|_| {
        format!(
            "timeout {} is not a non-negative number of seconds",
            p.timeout
        )
    })?;

    let mut redirects = 0;
    let response = loop {
        let mut request = Request::new(&method, url.as_str()).timeout(timeout);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        if !body.is_empty() {
            request = request.body(body.clone());
        }
        log::debug(format!(
            "{} {} {method} {url}",
            ctx.action_ref, ctx.execution_id
        ));
        let response = request.send().map_err(|e| failure(&url, e))?;
        let location = response.header("location").map(str::to_string);
        match (p.allow_redirects, response.status, location) {
            (true, 301 | 302 | 303 | 307 | 308, Some(location)) if redirects < MAX_REDIRECTS => {
                redirects += 1;
                let next = url
                    .join(&location)
                    .map_err(|e| format!("bad redirect location {location:?}: {e}"))?;
                // As Python requests: credentials do not follow a redirect to another origin
                // (scheme, host or port).
                if next.origin() != url.origin() {
                    headers.retain(|(k, _)| {
                        !k.eq_ignore_ascii_case("authorization")
                            && !k.eq_ignore_ascii_case("cookie")
                    });
                }
                url = next;
                // As Python requests' rebuild_method: 303 (except HEAD), 302 (except HEAD) and
                // 301 after a POST become a GET without a body; 307/308 repeat the request.
                let to_get = match response.status {
                    303 | 302 => method != "HEAD",
                    301 => method == "POST",
                    _ => false,
                };
                if to_get {
                    method = "GET".into();
                    body.clear();
                    headers.retain(|(k, _)| {
                        !k.eq_ignore_ascii_case("content-length")
                            && !k.eq_ignore_ascii_case("content-type")
                    });
                }
            }
            _ => break response,
        }
    };

    let status = response.status;
    let result = result_of(response);
    if (200..=206).contains(&status) {
        Ok(result)
    } else {
        Err(Error::with_result(
            format!("{method} {url} returned status {status}"),
            result,
        ))
    }
}

fn failure(url: &url::Url, err: HttpError) -> Error {
    Error::with_result(
        err.to_string(),
        json!({ "error": err.to_string(), "url": url.as_str() }),
    )
}

/// StackStorm's http runner result for one response.
fn result_of(response: Response) -> Value {
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        match headers.get_mut(name) {
            // Repeated headers are joined as Python requests' CaseInsensitiveDict does.
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    let content_type = response
        .header("content-type")
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase());
    let text = response.text();
    let (body, parsed) = match content_type.as_deref() {
        Some("application/json") => match serde_json::from_str::<Value>(&text) {
            Ok(value) => (value, true),
            Err(_) => (Value::String(text), false),
        },
        _ => (Value::String(text), false),
    };
    json!({
        "status_code": response.status,
        "body": body,
        "parsed": parsed,
        "headers": headers,
    })
}

squall_plugin::action!(http);
