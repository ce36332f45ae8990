//! End-to-end tests of action policies in `squall serve`: `action.concurrency` (delay and
//! cancel) and `action.concurrency.attr` on `core.http` against a test HTTP server that holds
//! requests open until the test opens its gate (so "how many at once" is counted where the
//! requests land, not guessed from timing), and `action.retry` on an action that always fails,
//! including a retry whose delay is pending when the server is killed with SIGKILL.

mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use support::{HttpStub, Response, SQUALL, Server, hostile_action, new_pack, write_squall_toml};

/// A scratch site: the shipped packs plus the pack `pol` (action `pol.fail`: the hostile test
/// component in `fail` mode) with `policies` as `packs/pol/policies/<name>.yaml`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(policies: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let pack = new_pack(dir.path(), "pol", "");
        std::fs::create_dir_all(pack.join("policies")).unwrap();
        hostile_action(
            &pack,
            "fail",
            "parameters:\n  mode: {type: string, default: fail, immutable: true}\n  tag: {type: string}\n",
        );
        for (name, body) in policies {
            std::fs::write(
                pack.join(format!("policies/{name}.yaml")),
                format!("name: {name}\n{body}"),
            )
            .unwrap();
        }
        write_squall_toml(
            dir.path(),
            "[server]\nconcurrency = 8\n[packs.core]\nhttp_allow = [\"127.0.0.1:*\"]\n",
        );
        Site { dir }
    }

    fn serve(&self) -> Server {
        Server::start(self.dir.path())
    }
}

/// A test HTTP server whose answers wait until [`Gate::open`]; it counts requests in flight,
/// overall and per path, and the most ever in flight.
struct Gate {
    stub: HttpStub,
    state: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Default)]
struct GateState {
    open: bool,
    in_flight: HashMap<String, usize>,
    max_total: usize,
    max_per_path: HashMap<String, usize>,
}

impl Gate {
    fn start() -> Gate {
        let state = Arc::new((Mutex::new(GateState::default()), Condvar::new()));
        let shared = state.clone();
        let stub = HttpStub::start(move |request| {
            let (lock, cv) = &*shared;
            let mut s = lock.lock().unwrap();
            let path = request.path.clone();
            *s.in_flight.entry(path.clone()).or_default() += 1;
            let total: usize = s.in_flight.values().sum();
            s.max_total = s.max_total.max(total);
            let here = s.in_flight[&path];
            let max = s.max_per_path.entry(path.clone()).or_default();
            *max = (*max).max(here);
            cv.notify_all();
            while !s.open {
                s = cv.wait(s).unwrap();
            }
            *s.in_flight.get_mut(&path).unwrap() -= 1;
            Response::json(200, &json!({"path": path}))
        });
        Gate { stub, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stub.url())
    }

    /// Requests being held now.
    fn in_flight(&self) -> usize {
        self.state.0.lock().unwrap().in_flight.values().sum()
    }

    /// The most requests ever held at once, and per path.
    fn max(&self) -> (usize, HashMap<String, usize>) {
        let s = self.state.0.lock().unwrap();
        (s.max_total, s.max_per_path.clone())
    }

    /// Lets every held and later request through.
    fn open(&self) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap().open = true;
        cv.notify_all();
    }
}

/// Polls `check` every 50 ms until it returns `Some`.
///
/// # Panics
/// After `secs` seconds, with `what`.
fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const DONE: [&str; 5] = ["succeeded", "failed", "timeout", "canceled", "abandoned"];

trait PolicyApi {
    /// Requests `action` with `params`; returns the execution id.
    fn run(&self, action: &str, params: Value) -> String;
    /// Waits until `id` has completed and returns it.
    fn finished(&self, id: &str, secs: u64) -> Value;
    /// Every execution of `action`, oldest first.
    fn executions_of(&self, action: &str) -> Vec<Value>;
}

impl PolicyApi for Server {
    fn run(&self, action: &str, params: Value) -> String {
        let (status, v) = self.send(
            reqwest::Method::POST,
            "/api/v1/executions",
            Some(json!({"action": action, "parameters": params})),
        );
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    fn finished(&self, id: &str, secs: u64) -> Value {
        self.wait_for(&format!("/api/v1/executions/{id}"), secs, |e| {
            DONE.contains(&e["status"].as_str().unwrap_or(""))
        })
    }

    fn executions_of(&self, action: &str) -> Vec<Value> {
        let list = self.get(&format!("/api/v1/executions?action={action}&limit=1000"));
        let mut v = list.as_array().unwrap().clone();
        v.reverse();
        v
    }
}

/// The statuses of an execution's log, in order.
fn statuses(e: &Value) -> Vec<String> {
    e["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
}

/// When the execution entered `status` (its first entry).
fn entered(e: &Value, status: &str) -> jiff::Timestamp {
    e["log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == status)
        .unwrap_or_else(|| panic!("never {status}: {e:#}"))["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The most executions whose `[running, end]` intervals overlap, from the stored records.
fn most_running_at_once(executions: &[Value]) -> usize {
    let mut edges: Vec<(jiff::Timestamp, i32)> = Vec::new();
    for e in executions {
        edges.push((entered(e, "running"), 1));
        let end: jiff::Timestamp = e["end_timestamp"].as_str().unwrap().parse().unwrap();
        edges.push((end, -1));
    }
    // At equal times an end comes before a start: a slot freed then taken is not an overlap.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// Sends `urls.len()` requests of `core.http` at once, from as many threads.
fn burst(server: &Server, urls: Vec<String>) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = urls
            .into_iter()
            .map(|url| s.spawn(move || server.run("core.http", json!({"url": url}))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn count_status(server: &Server, action: &str, status: &str) -> usize {
    server
        .executions_of(action)
        .iter()
        .filter(|e| e["status"] == status)
        .count()
}

#[test]
fn concurrency_delay_holds_a_burst_to_the_threshold_and_runs_them_all() {
    let gate = Gate::start();
    let site = Site::new(&[(
        "http.two",
        "description: at most two at once\nresource_ref: core.http\npolicy_type: action.concurrency\nparameters: {threshold: 2}\n",
    )]);
    let server = site.serve();
    let urls = (0..10).map(|i| gate.url(&format!("/hold/{i}"))).collect();
    let ids = burst(&server, urls);

    // Two are held at the gate; the other eight wait, recorded `delayed`.
    eventually(60, "2 in flight and 8 delayed", || {
        (gate.in_flight() == 2 && count_status(&server, "core.http", "delayed") == 8).then_some(())
    });
    assert_eq!(gate.max().0, 2);

    gate.open();
    let done: Vec<Value> = ids.iter().map(|id| server.finished(id, 120)).collect();
    for e in &done {
        assert_eq!(e["status"], "succeeded", "{e:#}");
    }
    assert_eq!(
        gate.max().0,
        2,
        "never more than the threshold at the server"
    );
    assert!(most_running_at_once(&done) <= 2, "{done:#?}");
    let delayed: Vec<&Value> = done
        .iter()
        .filter(|e| statuses(e).contains(&"delayed".to_string()))
        .collect();
    assert_eq!(delayed.len(), 8);
    for e in delayed {
        assert_eq!(
            statuses(e),
            [
                "requested",
                "delayed",
                "requested",
                "scheduled",
                "running",
                "succeeded"
            ],
            "StackStorm's delayed → requested: {e:#}"
        );
    }
}

#[test]
fn concurrency_cancel_cancels_the_extras_naming_the_policy() {
    let gate = Gate::start();
    let site = Site::new(&[(
        "http.cancel",
        "resource_ref: core.http\npolicy_type: action.concurrency\nparameters: {threshold: 2, action: cancel}\n",
    )]);
    let server = site.serve();
    let first = burst(&server, vec![gate.url("/hold/a"), gate.url("/hold/b")]);
    eventually(60, "2 in flight", || (gate.in_flight() == 2).then_some(()));

    let extras = burst(
        &server,
        (0..4).map(|i| gate.url(&format!("/x/{i}"))).collect(),
    );
    for id in &extras {
        let e = server.finished(id, 60);
        assert_eq!(e["status"], "canceled", "{e:#}");
        let error = e["result"]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("canceled by policy pol.http.cancel") && error.contains("(threshold 2)"),
            "{e:#}"
        );
        assert!(!statuses(&e).contains(&"running".to_string()), "{e:#}");
    }
    gate.open();
    for id in &first {
        assert_eq!(server.finished(id, 60)["status"], "succeeded");
    }
    let (most, per_path) = gate.max();
    assert_eq!(most, 2);
    assert!(
        per_path.keys().all(|p| p.starts_with("/hold/")),
        "{per_path:?}"
    );
}

#[test]
fn concurrency_attr_limits_per_attribute_value() {
    let gate = Gate::start();
    let site = Site::new(&[(
        "http.per_url",
        "resource_ref: core.http\npolicy_type: action.concurrency.attr\nparameters: {threshold: 1, attributes: [url]}\n",
    )]);
    let server = site.serve();
    let (a, b) = (gate.url("/hold/a"), gate.url("/hold/b"));
    let ids = burst(&server, vec![a.clone(), b.clone(), a, b]);
    eventually(60, "one in flight per url and 2 delayed", || {
        (gate.in_flight() == 2 && count_status(&server, "core.http", "delayed") == 2).then_some(())
    });
    gate.open();
    for id in &ids {
        assert_eq!(server.finished(id, 60)["status"], "succeeded");
    }
    let (most, per_path) = gate.max();
    assert_eq!(most, 2, "the two urls ran side by side");
    assert_eq!(per_path["/hold/a"], 1);
    assert_eq!(per_path["/hold/b"], 1);
}

#[test]
fn retry_runs_a_failing_action_max_retry_count_more_times() {
    let site = Site::new(&[(
        "fail.retry",
        "resource_ref: pol.fail\npolicy_type: action.retry\nparameters: {retry_on: failure, max_retry_count: 2}\n",
    )]);
    let server = site.serve();
    let original = server.run("pol.fail", json!({"tag": "t1"}));
    // Each retry is stored with the final status of the one before it, so once three have
    // failed a fourth, if any, would already be listed.
    let all = eventually(120, "three failed executions", || {
        let all = server.executions_of("pol.fail");
        (all.len() >= 3 && all.iter().all(|e| e["status"] == "failed")).then_some(all)
    });
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(all[0]["id"], original.as_str());
    assert!(all[0]["context"].get("policies").is_none());
    for (n, pair) in all.windows(2).enumerate() {
        let (before, retry) = (&pair[0], &pair[1]);
        assert_eq!(
            retry["context"]["policies"]["retry"],
            json!({
                "applied_policy": "pol.fail.retry",
                "retried_liveaction_id": before["id"],
                "retry_count": n + 1,
            }),
            "{retry:#}"
        );
        assert_eq!(retry["parameters"], before["parameters"]);
        assert_eq!(retry["context"]["user"], before["context"]["user"]);
    }
}

#[test]
fn a_delayed_retry_survives_kill_9_and_runs_exactly_once() {
    let site = Site::new(&[(
        "fail.later",
        "resource_ref: pol.fail\npolicy_type: action.retry\nparameters: {retry_on: failure, max_retry_count: 1, delay: 4}\n",
    )]);
    let server = site.serve();
    let original = server.run("pol.fail", json!({}));
    let failed = server.finished(&original, 120);
    assert_eq!(failed["status"], "failed");
    // Stored in the same commit as the failure: it is there as soon as the failure is.
    let retry = server.executions_of("pol.fail")[1].clone();
    assert_eq!(
        retry["context"]["policies"]["retry"]["retried_liveaction_id"],
        original.as_str()
    );
    assert_eq!(retry["delay"], 4000);
    assert!(
        ["requested", "delayed"].contains(&retry["status"].as_str().unwrap()),
        "{retry:#}"
    );
    server.kill_9();

    let server = site.serve();
    let id = retry["id"].as_str().unwrap();
    let ran = server.finished(id, 120);
    assert_eq!(ran["status"], "failed", "{ran:#}");
    let runs = statuses(&ran).iter().filter(|s| *s == "running").count();
    assert_eq!(runs, 1, "{ran:#}");
    let end: jiff::Timestamp = failed["end_timestamp"].as_str().unwrap().parse().unwrap();
    let started = entered(&ran, "running");
    assert!(
        started.duration_since(end) >= jiff::SignedDuration::from_secs(4),
        "the delay counts from the failure: failed at {end}, retry ran at {started}"
    );
    let all = server.executions_of("pol.fail");
    assert_eq!(
        all.len(),
        2,
        "max_retry_count 1: no second retry, no duplicate"
    );
}

#[test]
fn policies_and_policy_types_are_listed_by_the_api_and_the_cli() {
    let site = Site::new(&[
        (
            "http.two",
            "description: at most two\nresource_ref: core.http\npolicy_type: action.concurrency\nparameters: {threshold: 2}\n",
        ),
        (
            "fail.retry",
            "resource_ref: pol.fail\npolicy_type: action.retry\nenabled: false\nparameters: {retry_on: timeout}\n",
        ),
    ]);
    let server = site.serve();
    let list = server.get("/api/v1/policies");
    let refs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["pol.fail.retry", "pol.http.two"]);
    let p = server.get("/api/v1/policies/pol.http.two");
    assert_eq!(p["uid"], "policy:pol:http.two");
    assert_eq!(p["resource_ref"], "core.http");
    assert_eq!(p["policy_type"], "action.concurrency");
    assert_eq!(p["parameters"], json!({"threshold": 2, "action": "delay"}));
    assert_eq!(p["enabled"], true);
    let retry = server.get("/api/v1/policies?resource_ref=pol.fail");
    assert_eq!(retry[0]["enabled"], false);
    assert_eq!(
        retry[0]["parameters"],
        json!({"retry_on": "timeout", "max_retry_count": 2, "delay": 0})
    );
    let (status, v) = server.send(reqwest::Method::GET, "/api/v1/policies/pol.nope", None);
    assert_eq!(status, 404);
    assert_eq!(v["faultstring"], "policy pol.nope not found");

    let types = server.get("/api/v1/policytypes");
    let refs: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            "action.concurrency",
            "action.concurrency.attr",
            "action.retry"
        ]
    );
    assert_eq!(types[2]["parameters"]["max_retry_count"]["default"], 2);
    let t = server.get("/api/v1/policytypes/action.concurrency.attr");
    assert_eq!(t["uid"], "policy_type:action:concurrency.attr");

    let doc = server.get("/api/v1/openapi.json");
    for path in [
        "/api/v1/policies",
        "/api/v1/policies/{reference}",
        "/api/v1/policytypes",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} not documented");
    }

    let out = std::process::Command::new(SQUALL)
        .current_dir(site.dir.path())
        .args(["--api-url", &server.url, "policy", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let out = std::process::Command::new(SQUALL)
        .current_dir(site.dir.path())
        .args(["--api-url", &server.url, "policy", "get", "pol.http.two"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("action.concurrency") && text.contains("at most two"),
        "{text}"
    );
    let out = std::process::Command::new(SQUALL)
        .current_dir(site.dir.path())
        .args(["--api-url", &server.url, "policy", "get", "pol.nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
