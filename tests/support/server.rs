//! [`Server`]: the real `squall serve` as a child process, and blocking requests to its API.

use super::SQUALL;
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `squall serve` running in a scratch directory, listening on a random port; killed (and
/// reaped) when dropped.
pub struct Server {
    child: Child,
    /// Where the API is, e.g. `http://127.0.0.1:41234` (loopback even when the server listens
    /// on `0.0.0.0`).
    pub url: String,
    /// The client [`Server::request`] uses; for a request that must not carry [`Server::key`].
    pub http: reqwest::blocking::Client,
    /// Sent as the `St2-Api-Key` header of every [`Server::request`] when set.
    pub key: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `squall serve --bind 127.0.0.1:0` in `dir` (see [`Server::start_with`]).
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, "127.0.0.1:0", &[])
    }

    /// Starts `squall serve --bind <bind>` with `dir` as working directory, so its
    /// `squall.toml` is the configuration, and waits until it listens. The environment does
    /// not leak in: `SQUALL_API_URL`, `SQUALL_DATA_DIR`, `SQUALL_PACKS` and `SQUALL_CONFIG` are
    /// removed and `SQUALL_LOG` is `warn`; then `env` is set on top (it may override those).
    /// The server's stderr is the test's.
    ///
    /// # Panics
    /// If the binary does not start or its first line on stdout is not
    /// `squall: listening on <url>`.
    pub fn start_with(dir: &Path, bind: &str, env: &[(&str, &OsStr)]) -> Server {
        Server::start_with_stderr(dir, bind, env, Stdio::inherit())
    }

    /// [`Server::start_with`] with the server's stderr (its log) going to `stderr`, e.g. a
    /// file a test reads afterwards.
    pub fn start_with_stderr(
        dir: &Path,
        bind: &str,
        env: &[(&str, &OsStr)],
        stderr: Stdio,
    ) -> Server {
        let mut child = Command::new(SQUALL)
            .current_dir(dir)
            .args(["serve", "--bind", bind])
            .env_remove("SQUALL_API_URL")
            .env_remove("SQUALL_DATA_DIR")
            .env_remove("SQUALL_PACKS")
            .env_remove("SQUALL_CONFIG")
            .env("SQUALL_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("squall: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .replace("0.0.0.0", "127.0.0.1");
        // reqwest is built without a default TLS provider (the binary installs ring itself).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Server {
            child,
            url,
            http: reqwest::blocking::Client::new(),
            key: None,
        }
    }

    /// The server's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A request to `path` (from `/`, with any query), carrying [`Server::key`] if set.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match &self.key {
            Some(k) => r.header("St2-Api-Key", k),
            None => r,
        }
    }

    /// Sends a request with `body` as JSON (if any); returns the status and the JSON answer
    /// (`null` when the answer is empty or not JSON).
    pub fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.request(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// `GET path`, asserting a 200 with a JSON body; returns the body.
    pub fn get(&self, path: &str) -> Value {
        let resp = self.request(reqwest::Method::GET, path).send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"))
    }

    /// `POST path` with `body` sent as is (it need not be valid JSON) as
    /// `content-type: application/json`.
    pub fn post(&self, path: &str, body: &str) -> reqwest::blocking::Response {
        self.request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    }

    /// Requests `action` with `parameters` and waits (up to 300 s: a first run may compile the
    /// component) until the execution is done; returns it.
    pub fn run_to_end(&self, action: &str, parameters: Value) -> Value {
        let (status, created) = self.send(
            reqwest::Method::POST,
            "/api/v1/executions",
            Some(serde_json::json!({"action": action, "parameters": parameters})),
        );
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap();
        self.wait_for(&format!("/api/v1/executions/{id}"), 300, |e| {
            matches!(
                e["status"].as_str(),
                Some("succeeded" | "failed" | "timeout" | "canceled" | "abandoned")
            )
        })
    }

    /// The first execution of `action` to succeed, waiting up to 300 s for one.
    pub fn first_succeeded(&self, action: &str) -> Value {
        let list = self.wait_for(&format!("/api/v1/executions?action={action}"), 300, |l| {
            l.as_array()
                .is_some_and(|l| l.iter().any(|e| e["status"] == "succeeded"))
        });
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["status"] == "succeeded")
            .unwrap()
            .clone()
    }

    /// Polls `GET path` every 50 ms until `done` holds for its JSON and returns that JSON.
    ///
    /// # Panics
    /// After `secs` seconds, showing the last answer.
    pub fn wait_for(&self, path: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.get(path);
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {path}: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Subscribes to the stream at `path` (e.g. `/stream/v1/stream?events=…`); its lines, as
    /// they come, on the returned channel (the subscription is live when this returns; the
    /// connection gives up after `secs` seconds).
    pub fn stream_lines(&self, path: &str, secs: u64) -> std::sync::mpsc::Receiver<String> {
        let stream = self
            .request(reqwest::Method::GET, path)
            .timeout(Duration::from_secs(secs))
            .send()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// The server's resident memory now, in bytes (`VmRSS` of `/proc/<pid>/status`).
    #[cfg(target_os = "linux")]
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the server to exit; returns its exit status.
    ///
    /// # Panics
    /// If it has not exited within 30 seconds.
    pub fn terminate(mut self) -> ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
