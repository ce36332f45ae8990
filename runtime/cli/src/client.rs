//! How commands reach Squall: the REST API of a running server, or — when none answers at the
//! API URL — the same API router run in-process over the local data directory (so `squall run`
//! works without a server, and every command shares one code path).

use crate::Failure;
use crate::settings::Settings;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::Value;
use squall_server::Services;
use squall_server::api::{Access, ApiState, app};
use std::time::Duration;
use tower::ServiceExt;

/// How long to wait for a server before going in-process.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// A response: status, `X-Total-Count` if any, and the JSON body (`null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub total: Option<u64>,
    pub body: Value,
}

/// Where requests go.
pub enum Client {
    /// A server at `base` (e.g. `http://127.0.0.1:9101`).
    Remote {
        base: String,
        http: reqwest::Client,
        api_key: Option<String>,
    },
    /// The API in this process.
    Local {
        router: axum::Router,
        services: Services,
    },
}

impl Client {
    /// Connects to the server at the configured API URL, or starts the services in-process
    /// when nothing listens there.
    pub async fn connect(settings: &Settings) -> Result<Client, Failure> {
        let base = settings.api_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Failure::internal(format!("cannot build an HTTP client: {e}")))?;
        let probe = http
            .get(format!("{base}/api/v1"))
            .timeout(PROBE_TIMEOUT)
            .send()
            .await;
        match probe {
            Ok(_) => Ok(Client::Remote {
                base,
                http,
                api_key: settings.api_key.clone(),
            }),
            Err(e) if e.is_connect() || e.is_timeout() => {
                tracing::debug!(url = %base, "no server answers; running in-process");
                let services = settings
                    .services(squall_server::Mode::Embedded, None)
                    .await?;
                let router = app(ApiState {
                    services: services.clone(),
                    access: Access::Open,
                });
                Ok(Client::Local { router, services })
            }
            Err(e) => Err(Failure::internal(format!("cannot reach {base}: {e}"))),
        }
    }

    /// Whether requests run in this process (no server answered).
    pub fn is_local(&self) -> bool {
        matches!(self, Client::Local { .. })
    }

    /// Sends a request; non-2xx answers become a [`Failure`] carrying the `faultstring` (exit
    /// code 2 for 4xx, 3 for 5xx).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, Failure> {
        let reply = match self {
            Client::Remote {
                base,
                http,
                api_key,
            } => {
                let mut req = http.request(method.clone(), format!("{base}{path}"));
                if let Some(key) = api_key {
                    req = req.header("St2-Api-Key", key);
                }
                if let Some(b) = &body {
                    req = req.json(b);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| Failure::internal(format!("{method} {path}: {e}")))?;
                let status = resp.status();
                let total = total(resp.headers());
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| Failure::internal(format!("{method} {path}: {e}")))?;
                Reply {
                    status,
                    total,
                    body: decode(&bytes),
                }
            }
            Client::Local { router, .. } => {
                let mut req = Request::builder().method(method.clone()).uri(path);
                let payload = match &body {
                    Some(b) => {
                        req = req.header("content-type", "application/json");
                        Body::from(b.to_string())
                    }
                    None => Body::empty(),
                };
                let resp = router
                    .clone()
                    .oneshot(
                        req.body(payload)
                            .map_err(|e| Failure::internal(e.to_string()))?,
                    )
                    .await
                    .map_err(|e| Failure::internal(e.to_string()))?;
                let status = resp.status();
                let total = total(resp.headers());
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .map_err(|e| Failure::internal(e.to_string()))?;
                Reply {
                    status,
                    total,
                    body: decode(&bytes),
                }
            }
        };
        if reply.status.is_success() {
            return Ok(reply);
        }
        let message = reply
            .body
            .get("faultstring")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{method} {path}: HTTP {}", reply.status));
        Err(if reply.status.is_client_error() {
            Failure::input(message)
        } else {
            Failure::internal(message)
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Reply, Failure> {
        self.call(Method::GET, path, None).await
    }

    /// `GET {collection}{query}` (see [`query`]): the body, e.g. the JSON array of a list.
    pub async fn list(
        &self,
        collection: &str,
        pairs: &[(&str, Option<String>)],
    ) -> Result<Value, Failure> {
        Ok(self
            .get(&format!("{collection}{}", query(pairs)))
            .await?
            .body)
    }

    /// `PUT path` with `{"enabled": enabled}` (`squall rule|sensor enable|disable`): the
    /// updated record.
    pub async fn set_enabled(&self, path: &str, enabled: bool) -> Result<Value, Failure> {
        let body = serde_json::json!({ "enabled": enabled });
        Ok(self.call(Method::PUT, path, Some(body)).await?.body)
    }

    /// Waits for in-process work to stop before the process exits.
    pub async fn close(self) {
        if let Client::Local { services, .. } = self {
            services.shutdown(Duration::from_secs(5)).await;
        }
    }
}

fn total(headers: &http::HeaderMap) -> Option<u64> {
    headers.get("X-Total-Count")?.to_str().ok()?.parse().ok()
}

fn decode(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// `?k=v&...` from the pairs that have a value, percent-encoded.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}
