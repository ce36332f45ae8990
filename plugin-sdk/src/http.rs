//! Blocking outbound HTTP for actions, over `wasi:http/outgoing-handler`.
//!
//! Every request goes through the host, which allows it only when the operator granted the
//! destination to the action's pack (`[packs.<pack>] http_allow` in `squall.toml`). A refused
//! request fails with [`HttpError::Denied`]; the host records the reason, naming the host, in
//! the execution.
//!
//! ```ignore
//! let resp = squall_plugin::http::Request::new("GET", "http://127.0.0.1:8080/health")
//!     .header("accept", "application/json")
//!     .timeout(std::time::Duration::from_secs(5))
//!     .send()?;
//! assert_eq!(resp.status, 200);
//! ```

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use std::fmt;
use std::time::Duration;

/// Largest response body [`Request::send`] reads unless told otherwise: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// `wasi:io` streams accept at most this many bytes per blocking write.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;

/// One HTTP request, built with the methods below and sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    max_response_bytes: usize,
}

/// A response whose body has been read completely.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Header names (lower case, as the host delivers them) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// Why a request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL does not parse.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// The URL's scheme is not `http` or `https`.
    UnsupportedScheme(String),
    /// A header name or value the host refused (malformed or forbidden, e.g. `connection`).
    InvalidHeader(String),
    /// The host refused the destination: it is not granted to this pack.
    Denied(String),
    /// No response within the timeout.
    Timeout(String),
    /// The response body is larger than the request's limit (bytes).
    TooLarge(usize),
    /// Anything else the transport reported (DNS, connection refused, TLS, protocol).
    Transport(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl { url, reason } => write!(f, "invalid url {url:?}: {reason}"),
            HttpError::UnsupportedScheme(s) => {
                write!(f, "unsupported url scheme {s:?} (use http or https)")
            }
            HttpError::InvalidHeader(h) => write!(f, "invalid or forbidden header {h:?}"),
            HttpError::Denied(url) => write!(
                f,
                "request to {url} denied by the host: destination not granted to this pack"
            ),
            HttpError::Timeout(url) => write!(f, "request to {url} timed out"),
            HttpError::TooLarge(limit) => {
                write!(f, "response body is larger than {limit} bytes")
            }
            HttpError::Transport(msg) => write!(f, "http transport error: {msg}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl Request {
    /// A request with `method` (any token, e.g. `GET`, `PURGE`) to `url`.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Adds a header (repeatable).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (`Content-Length` is added unless a header sets it).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Bounds connect, first byte and every gap between body bytes by `timeout`. Without it
    /// only the execution's own timeout applies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Fails with [`HttpError::TooLarge`] past `bytes` of response body
    /// (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The request's URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request and reads the whole response.
    ///
    /// # Errors
    /// See [`HttpError`]; a refused destination is [`HttpError::Denied`].
    pub fn send(&self) -> Result<Response, HttpError> {
        let url = url::Url::parse(&self.url).map_err(|e| HttpError::InvalidUrl {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(HttpError::UnsupportedScheme(other.to_string())),
        };
        let host = url.host_str().ok_or_else(|| HttpError::InvalidUrl {
            url: self.url.clone(),
            reason: "no host".into(),
        })?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path_with_query = &url[url::Position::BeforePath..url::Position::AfterQuery];

        let mut entries: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        // A known length instead of chunked encoding: simpler servers only read Content-Length.
        if !self.body.is_empty()
            && !self
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            entries.push((
                "content-length".into(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        let fields = Fields::from_list(&entries).map_err(|_| {
            let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
            HttpError::InvalidHeader(names.join(", "))
        })?;
        let request = OutgoingRequest::new(fields);
        request
            .set_method(&method(&self.method))
            .map_err(|()| HttpError::Transport(format!("invalid method {:?}", self.method)))?;
        request
            .set_scheme(Some(&scheme))
            .and_then(|()| request.set_authority(Some(&authority)))
            .and_then(|()| request.set_path_with_query(Some(path_with_query)))
            .map_err(|()| HttpError::InvalidUrl {
                url: self.url.clone(),
                reason: "the host refused its authority or path".into(),
            })?;
        let options = self.timeout.map(|t| {
            let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            let options = RequestOptions::new();
            // Each setter only fails when the host does not support that timeout; the
            // execution's own timeout still bounds the call then.
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });

        let body = request
            .body()
            .map_err(|()| HttpError::Transport("request body already taken".into()))?;
        let pending = outgoing_handler::handle(request, options).map_err(|e| self.error_from(e))?;
        if let Err(writing) = write_body(body, &self.body) {
            // The host may have refused or failed the request while the body was being
            // written (the body stream then closes): its verdict says why, not the write.
            pending.subscribe().block();
            return Err(match pending.get() {
                Some(Ok(Err(code))) => self.error_from(code),
                _ => writing,
            });
        }

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(self.error_from(code)),
            Some(Err(())) => return Err(HttpError::Transport("response already taken".into())),
            None => {
                return Err(HttpError::Transport(
                    "response not ready after block".into(),
                ));
            }
        };
        let status = response.status();
        let headers = {
            let fields = response.headers();
            fields
                .entries()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect()
        };
        let incoming = response
            .consume()
            .map_err(|()| HttpError::Transport("response body already taken".into()))?;
        let body = read_body(&incoming, self.max_response_bytes)?;
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn error_from(&self, code: ErrorCode) -> HttpError {
        match code {
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
                HttpError::Denied(self.url.clone())
            }
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::DnsTimeout => HttpError::Timeout(self.url.clone()),
            ErrorCode::InternalError(Some(msg)) => HttpError::Transport(msg),
            other => HttpError::Transport(format!("{other:?} ({})", self.url)),
        }
    }
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        let stream = body
            .write()
            .map_err(|()| HttpError::Transport("request body stream already taken".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Transport(format!("writing request body: {e:?}")))?;
        }
        // The stream is a child of the body: it must be dropped before `finish`.
    }
    OutgoingBody::finish(body, None)
        .map_err(|e| HttpError::Transport(format!("finishing request body: {e:?}")))
}

fn read_body(body: &IncomingBody, limit: usize) -> Result<Vec<u8>, HttpError> {
    let stream = body
        .stream()
        .map_err(|()| HttpError::Transport("response body stream already taken".into()))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if out.len() + chunk.len() > limit {
                    return Err(HttpError::TooLarge(limit));
                }
                out.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(out),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::Transport(format!(
                    "reading response body: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
}
