//! End-to-end tests of the shipped sensor packs in `squall serve`: `monitor.StatusSensor` polling
//! an endpoint the test flips between up and down (exactly one `monitor.status_changed` per flip,
//! also across SIGTERM and kill -9 restarts), and `github.PushSensor` verifying GitHub's
//! signatures and emitting `github.push` (and a rule on it running `core.echo`).

mod support;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use support::{HttpStub, Response, SQUALL, Server, copy_dir, repo};

/// A scratch directory with copies of the shipped `core`, `monitor` and `github` packs, a
/// `configs/` directory beside them and `squall.toml`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// `squall.toml` is `data_dir`, `packs_dirs` and then `extra`.
    fn new(extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        for pack in ["core", "monitor", "github"] {
            copy_dir(
                &repo().join("packs").join(pack),
                &dir.path().join("packs").join(pack),
            );
        }
        std::fs::create_dir_all(dir.path().join("configs")).unwrap();
        std::fs::write(
            dir.path().join("squall.toml"),
            // Polls every 0.2 s below keep the tests short: under the default 1 s floor.
            format!(
                "data_dir = \"data\"\npacks_dirs = [\"packs\"]\n\
                 [sensors]\nmin_poll_interval = \"100ms\"\n{extra}"
            ),
        )
        .unwrap();
        Site { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `configs/<pack>.yaml`.
    fn config(&self, pack: &str, yaml: &str) {
        std::fs::write(self.path().join(format!("configs/{pack}.yaml")), yaml).unwrap();
    }

    /// Replaces `from` by `to` in the file `path` (relative to the site), which must hold it.
    fn edit(&self, path: &str, from: &str, to: &str) {
        let file = self.path().join(path);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(from), "{path} has no {from:?}");
        std::fs::write(&file, text.replace(from, to)).unwrap();
    }

    fn serve(&self) -> Server {
        Server::start(self.path())
    }
}

/// Polls `probe` every 20 ms until it returns `Some`.
///
/// # Panics
/// After `secs` seconds, naming `what`.
fn wait_until<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the system key `name`, if set.
fn key(server: &Server, name: &str) -> Option<String> {
    let (status, body) = server.send(reqwest::Method::GET, &format!("/api/v1/keys/{name}"), None);
    (status == 200).then(|| body["value"].as_str().unwrap().to_string())
}

/// The trigger instances of `trigger`, oldest first.
fn instances(server: &Server, trigger: &str) -> Vec<Value> {
    let list = server.get(&format!(
        "/api/v1/triggerinstances?trigger={trigger}&limit=1000"
    ));
    let mut items = list.as_array().unwrap().clone();
    items.reverse();
    items
}

const STATUS_CHANGED: &str = "monitor.status_changed";

/// The monitor site: the `web` target is the stub's `/health`, `gone` a closed port; polls
/// every 0.2 s.
struct Monitor {
    site: Site,
    stub: HttpStub,
    /// What the stub answers `/health` with.
    status: Arc<AtomicU16>,
}

impl Monitor {
    fn new() -> Monitor {
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        let stub = HttpStub::start(move |_| {
            Response::json(answer.load(Ordering::SeqCst), &json!({"ok": true}))
        });
        // A port nothing listens on: connections are refused.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let site = Site::new("[packs.monitor]\nhttp_allow = [\"127.0.0.1:*\"]\n");
        site.edit(
            "packs/monitor/sensors/status_sensor.yaml",
            "poll_interval: 30",
            "poll_interval: 0.2",
        );
        site.config(
            "monitor",
            &format!(
                "targets:\n  - {{name: web, url: \"{}/health\"}}\n  \
                 - {{name: gone, url: \"http://127.0.0.1:{closed}/\"}}\ntimeout: 2\n",
                stub.url()
            ),
        );
        Monitor { site, stub, status }
    }

    /// Waits until the stub has answered `n` more polls than now (each poll GETs `/health`
    /// once), so every poll in between has been recorded.
    fn wait_polls(&self, n: usize) {
        let start = self.stub.requests().len();
        wait_until(30, &format!("{n} more polls"), || {
            (self.stub.requests().len() >= start + n).then_some(())
        });
    }

    /// Makes `/health` answer `code`, waits for the `total`-th `monitor.status_changed` and
    /// checks that a few more polls add none; returns that instance's payload.
    fn flip(&self, server: &Server, code: u16, total: usize) -> Value {
        self.status.store(code, Ordering::SeqCst);
        let got = wait_until(30, &format!("instance #{total}"), || {
            let all = instances(server, STATUS_CHANGED);
            (all.len() >= total).then_some(all)
        });
        // A poll already running when the status changed may still answer the old one; the
        // ones after must not emit again.
        self.wait_polls(4);
        let all = instances(server, STATUS_CHANGED);
        assert_eq!(all.len(), total, "one instance per flip: {all:#?}");
        assert_eq!(got[total - 1]["id"], all[total - 1]["id"]);
        all[total - 1]["payload"].clone()
    }

    /// Asserts `payload` reports `web` going from `previous` to `current` with `code`.
    fn check(&self, payload: &Value, previous: &str, current: &str, code: u16) {
        assert_eq!(payload["name"], "web", "{payload:#}");
        assert_eq!(payload["url"], format!("{}/health", self.stub.url()));
        assert_eq!(payload["previous"], previous, "{payload:#}");
        assert_eq!(payload["current"], current, "{payload:#}");
        assert_eq!(payload["status_code"], code, "{payload:#}");
        let error = if current == "up" {
            Value::Null
        } else {
            json!(format!("HTTP status {code}"))
        };
        assert_eq!(payload["error"], error, "{payload:#}");
        let at = payload["checked_at"].as_str().unwrap();
        assert!(at.parse::<jiff::Timestamp>().is_ok(), "checked_at {at:?}");
    }
}

#[test]
fn monitor_emits_exactly_once_per_flip_across_sigterm_and_kill_9() {
    let m = Monitor::new();
    let server = m.site.serve();

    // First observations are stored, not emitted; the closed port is down.
    wait_until(30, "first observations", || {
        (key(&server, "monitor:status.web")? == "up"
            && key(&server, "monitor:status.gone")? == "down")
            .then_some(())
    });
    m.wait_polls(3);
    assert_eq!(instances(&server, STATUS_CHANGED), Vec::<Value>::new());

    let p = m.flip(&server, 500, 1);
    m.check(&p, "up", "down", 500);
    assert_eq!(key(&server, "monitor:status.web").unwrap(), "down");
    let p = m.flip(&server, 200, 2);
    m.check(&p, "down", "up", 200);
    let p = m.flip(&server, 503, 3);
    m.check(&p, "up", "down", 503);

    let sensor = server.get("/api/v1/sensortypes/monitor.StatusSensor");
    assert_eq!(sensor["status"]["state"], "running", "{sensor:#}");
    assert_eq!(sensor["status"]["emitted"], 3, "{sensor:#}");
    assert_eq!(sensor["status"]["failures"], 0, "{sensor:#}");

    // SIGTERM, restart on the same data with the endpoint still down: nothing new.
    assert!(server.terminate().success());
    let server = m.site.serve();
    m.wait_polls(4);
    assert_eq!(instances(&server, STATUS_CHANGED).len(), 3);
    let p = m.flip(&server, 200, 4);
    m.check(&p, "down", "up", 200);

    // kill -9, restart: nothing new; then a flip while the server is down is reported once
    // after the next restart, from the state the last successful poll stored.
    server.kill_9();
    let server = m.site.serve();
    m.wait_polls(4);
    assert_eq!(instances(&server, STATUS_CHANGED).len(), 4);
    server.kill_9();
    m.status.store(500, Ordering::SeqCst);
    let server = m.site.serve();
    let p = m.flip(&server, 500, 5);
    m.check(&p, "up", "down", 500);

    // The closed port never changed: never emitted.
    assert!(
        instances(&server, STATUS_CHANGED)
            .iter()
            .all(|i| i["payload"]["name"] == "web")
    );
    assert_eq!(key(&server, "monitor:status.gone").unwrap(), "down");
}

const SECRET: &str = "gh-secret";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// `POST /api/v1/webhooks/github` with `X-GitHub-Event: event` and the signature, if any.
fn deliver(server: &Server, event: &str, signature: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut r = server
        .request(reqwest::Method::POST, "/api/v1/webhooks/github")
        .header("content-type", "application/json")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    if let Some(s) = signature {
        r = r.header("X-Hub-Signature-256", s);
    }
    let resp = r.body(body.to_vec()).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn github_push_sensor_checks_signatures_and_a_rule_runs_on_pushes() {
    let site = Site::new("");
    // The operator's way: the secret lives encrypted in the datastore, the config points at it.
    site.config(
        "github",
        "webhook_secret: \"{{ st2kv.system.github_webhook_secret | decrypt_kv }}\"\n",
    );
    let rules = site.path().join("packs/ci/rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(site.path().join("packs/ci/pack.yaml"), "name: ci\n").unwrap();
    std::fs::write(
        rules.join("on_push.yaml"),
        "name: on_push\nenabled: true\ntrigger: {type: github.push}\n\
         criteria:\n  trigger.ref: {type: equals, pattern: refs/heads/main}\n\
         action:\n  ref: core.echo\n  parameters:\n    message: \"{{ trigger.repository }}@{{ trigger.after[:7] }} \
         by {{ trigger.pusher }}: {{ trigger.commits | length }} commit(s), {{ trigger.head_commit.message }}\"\n",
    )
    .unwrap();
    // Set before the server starts, as an operator would (in-process: nothing listens on
    // port 1), so the sensor's config renders from its first call.
    let out = Command::new(SQUALL)
        .current_dir(site.path())
        .env("SQUALL_API_URL", "http://127.0.0.1:1")
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_PACKS")
        .env_remove("SQUALL_CONFIG")
        .args(["key", "set", "--encrypt", "github_webhook_secret", SECRET])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = site.serve();
    let sensor = server.get("/api/v1/sensortypes/github.PushSensor");
    assert_eq!(sensor["webhooks"], json!(["github"]));

    let push = std::fs::read(repo().join("tests/fixtures/webhooks/github-push.json")).unwrap();
    let event: Value = serde_json::from_slice(&push).unwrap();

    // Refused: nothing emitted.
    for (name, signature) in [
        ("missing", None),
        ("wrong secret", Some(sign("not-the-secret", &push))),
        ("not hex", Some("sha256=zz".to_string())),
        ("sha1", Some("sha1=0123".to_string())),
    ] {
        let (status, body) = deliver(&server, "push", signature.as_deref(), &push);
        assert_eq!(status, 401, "{name}: {body}");
        assert!(body["faultstring"].is_string(), "{name}: {body}");
    }
    let (status, body) = deliver(&server, "push", Some(&sign(SECRET, b"{}")), &push);
    assert_eq!(status, 401, "signature of another body: {body}");
    assert!(
        body["faultstring"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{body}"
    );
    assert_eq!(instances(&server, "github.push"), Vec::<Value>::new());

    // ping: pong, nothing emitted; another event: acknowledged, ignored.
    let zen = br#"{"zen":"Design for failure.","hook_id":1}"#;
    assert_eq!(
        deliver(&server, "ping", Some(&sign(SECRET, zen)), zen),
        (200, json!({"pong": true}))
    );
    let issue = br#"{"action":"opened"}"#;
    assert_eq!(
        deliver(&server, "issues", Some(&sign(SECRET, issue)), issue),
        (202, json!({"ignored": "issues"}))
    );
    assert_eq!(instances(&server, "github.push"), Vec::<Value>::new());

    // A signed push: one instance, stored before the answer.
    let (status, body) = deliver(&server, "push", Some(&sign(SECRET, &push)), &push);
    assert_eq!(
        (status, body),
        (202, json!({"accepted": "push", "commits": 1}))
    );
    let all = instances(&server, "github.push");
    assert_eq!(all.len(), 1, "{all:#?}");
    let commit = &event["commits"][0];
    let mapped = json!({
        "id": commit["id"],
        "message": "Fix rounding in invoice totals",
        "author": "Alice",
        "url": commit["url"],
        "timestamp": commit["timestamp"],
    });
    assert_eq!(
        all[0]["payload"],
        json!({
            "repository": "acme/billing",
            "ref": "refs/heads/main",
            "before": event["before"],
            "after": event["after"],
            "pusher": "alice",
            "commits": [mapped],
            // The fixture's head_commit leaves out `url`, as some proxies do.
            "head_commit": {
                "id": commit["id"],
                "message": "Fix rounding in invoice totals",
                "author": "Alice",
                "url": null,
                "timestamp": commit["timestamp"],
            },
        })
    );

    // The rule on github.push ran core.echo with the payload.
    let runs = server.wait_for("/api/v1/executions?action=core.echo", 30, |v| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "succeeded")
    });
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs:#}");
    assert_eq!(
        runs[0]["result"]["stdout"],
        "acme/billing@0d1a26e by alice: 1 commit(s), Fix rounding in invoice totals"
    );
    let sensor = server.get("/api/v1/sensortypes/github.PushSensor");
    assert_eq!(sensor["status"]["state"], "running", "{sensor:#}");
    assert_eq!(sensor["status"]["emitted"], 1, "{sensor:#}");
    // Calls: 4 refused + 1 of another body + ping + issues + push.
    assert_eq!(sensor["status"]["calls"], 8, "{sensor:#}");
    assert_eq!(sensor["status"]["failures"], 0, "{sensor:#}");
}

#[test]
fn github_push_sensor_without_a_secret_refuses_every_delivery() {
    let site = Site::new("");
    let server = site.serve();
    let push = std::fs::read(repo().join("tests/fixtures/webhooks/github-push.json")).unwrap();
    for signature in [None, Some(sign("", &push)), Some(sign(SECRET, &push))] {
        let (status, body) = deliver(&server, "push", signature.as_deref(), &push);
        assert_eq!(status, 401, "{body}");
        let fault = body["faultstring"].as_str().unwrap();
        assert!(fault.contains("webhook_secret"), "{fault}");
    }
    assert_eq!(instances(&server, "github.push"), Vec::<Value>::new());
    // The shipped monitor pack has no targets by default: it runs and emits nothing.
    let monitor = server.get("/api/v1/sensortypes/monitor.StatusSensor");
    assert_eq!(monitor["enabled"], true);
    assert_ne!(monitor["status"]["state"], "failed", "{monitor:#}");
}
