//! [`HttpStub`]: a minimal HTTP/1.1 server on a random loopback port, answering with a
//! test-supplied handler and recording what it was asked.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Request {
    /// As sent, e.g. `POST`.
    pub method: String,
    /// The request target: path and query, e.g. `/health?q=x+y`.
    pub path: String,
    /// Header names in lowercase, values trimmed; of a repeated header, the last.
    pub headers: BTreeMap<String, String>,
    /// The body, `content-length` bytes of it.
    pub body: Vec<u8>,
}

impl Request {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, `null` when it is empty or not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the stub answers.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Extra headers; `content-length` and `connection: close` are always added.
    pub headers: Vec<(String, String)>,
    /// Sent as is.
    pub body: String,
}

impl Response {
    /// `status` with `body` as `application/json`.
    pub fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// A `302 Found` to `location`, with no body.
    pub fn redirect(location: &str) -> Response {
        Response {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: String::new(),
        }
    }
}

/// An HTTP server on `127.0.0.1:<random port>` that serves each connection (one request,
/// then `connection: close`) on its own thread, so slow answers can overlap, and records
/// every request with the status it was answered. Serves until the test process ends.
pub struct HttpStub {
    /// The port it listens on.
    pub port: u16,
    seen: Arc<Mutex<Vec<(Request, u16)>>>,
}

impl HttpStub {
    /// Starts serving: `handler` answers each request (from any of the connection threads).
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> HttpStub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || {
                    let Some((request, mut stream)) = read_request(stream) else {
                        return;
                    };
                    let response = handler(&request);
                    // Recorded before answering: whoever got the answer finds it in the log.
                    log.lock().unwrap().push((request, response.status));
                    write_response(&mut stream, &response);
                });
            }
        });
        HttpStub { port, seen }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests received so far, in the order their answers were ready (each is recorded
    /// when the handler returns, before the answer is sent).
    pub fn requests(&self) -> Vec<Request> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// [`HttpStub::requests`] with the status each was answered.
    pub fn exchanges(&self) -> Vec<(Request, u16)> {
        self.seen.lock().unwrap().clone()
    }

    /// The paths of [`HttpStub::requests`].
    pub fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.path.clone())
            .collect()
    }
}

/// Reads the request line, headers and `content-length` body; `None` if the connection ends
/// or breaks first.
fn read_request(stream: TcpStream) -> Option<(Request, TcpStream)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut words = first.split_whitespace();
    let method = words.next()?.to_string();
    let path = words.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    Some((request, stream))
}

fn write_response(stream: &mut TcpStream, response: &Response) {
    let reason = http::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut answer = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (k, v) in &response.headers {
        answer.push_str(&format!("{k}: {v}\r\n"));
    }
    answer.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{}",
        response.body.len(),
        response.body
    ));
    // One write: a second small one could wait on the client's delayed ACK (Nagle).
    let _ = stream.write_all(answer.as_bytes());
}
