//! End-to-end tests of the examples under `examples/`: each runs the real `squall serve` with
//! the example's own `squall.toml` and pack, against an in-test HTTP server standing in for the
//! outside world, and asserts on what that server received and on the stored records.
//!
//! - `cicd-canary`: a GitHub push → CI → package → canaries → health checks (retried) →
//!   `core.ask` approval → production, or → rollback when the approver says no; a commit whose
//!   CI failed stops there; a push to another branch runs nothing.

mod support;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use support::{HttpStub, Response, Server, copy_dir, repo};

fn example(path: &str) -> PathBuf {
    repo().join("examples").join(path)
}

/// A scratch copy of an example: its `squall.toml` (with the shipped packs' directory made
/// absolute) and its `packs/`, without the components' Rust sources.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn of(name: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let config = std::fs::read_to_string(example(name).join("squall.toml")).unwrap();
        assert!(config.contains("\"../../packs\""), "{config}");
        let shipped = format!("{:?}", repo().join("packs").display().to_string());
        std::fs::write(
            dir.path().join("squall.toml"),
            config.replace("\"../../packs\"", &shipped),
        )
        .unwrap();
        copy_dir(&example(name).join("packs"), &dir.path().join("packs"));
        Site { dir }
    }

    fn serve(&self) -> Server {
        Server::start_with(
            self.dir.path(),
            "127.0.0.1:0",
            &[("SQUALL_LOG", OsStr::new("error"))],
        )
    }
}

/// What these tests ask of the API beyond [`Server`]'s requests.
trait ExampleApi {
    /// Posts a GitHub push event to the `git` webhook, as GitHub sends it.
    fn push(&self, payload: &Value);
    /// The example's webhook rule reads the deployment API's URL from the datastore.
    fn set_endpoint(&self, port: u16);
}

impl ExampleApi for Server {
    fn push(&self, payload: &Value) {
        let resp = self
            .request(reqwest::Method::POST, "/api/v1/webhooks/git")
            .header("X-GitHub-Event", "push")
            .json(payload)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 202);
    }

    fn set_endpoint(&self, port: u16) {
        let (status, v) = self.send(
            reqwest::Method::PUT,
            "/api/v1/keys/deploy_endpoint",
            Some(json!({"value": format!("http://127.0.0.1:{port}")})),
        );
        assert!((200..300).contains(&status), "{status}: {v}");
    }
}

/// One request the fake deployment API received, and the status it answered.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Value,
    status: u16,
}

/// The deployment API of `examples/cicd-canary/fake_api.py`, recording every request in the
/// order received.
struct FakeApi {
    stub: HttpStub,
}

impl FakeApi {
    /// Starts it on a random port, which it returns too.
    fn start() -> (u16, FakeApi) {
        let own_port = Arc::new(OnceLock::new());
        let checked = Mutex::new(HashSet::new());
        let port = own_port.clone();
        let stub = HttpStub::start(move |request| {
            let port = *port.get().expect("port known before any request");
            let (status, reply) = answer(
                &request.method,
                &request.path,
                &request.json(),
                &mut checked.lock().unwrap(),
                port,
            );
            Response::json(status, &reply)
        });
        own_port.set(stub.port).unwrap();
        (stub.port, FakeApi { stub })
    }

    /// The requests so far with the status each was answered.
    fn calls(&self) -> Vec<Call> {
        self.stub
            .exchanges()
            .into_iter()
            .map(|(r, status)| Call {
                body: r.json(),
                method: r.method,
                path: r.path,
                status,
            })
            .collect()
    }
}

/// The fake API's answer: CI says `passed` (`failed` for a SHA starting with `bad`), packages
/// are `pkg-<app>-<sha7>`, a host's first health check is a 503 (`checked` holds the hosts
/// checked before).
fn answer(
    method: &str,
    path: &str,
    body: &Value,
    checked: &mut HashSet<String>,
    port: u16,
) -> (u16, Value) {
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["ci", sha]) => {
            let state = if sha.starts_with("bad") {
                "failed"
            } else {
                "passed"
            };
            (200, json!({"sha": sha, "state": state}))
        }
        ("POST", ["packages"]) => {
            let sha: String = text("commit").chars().take(7).collect();
            (201, json!({"id": format!("pkg-{}-{sha}", text("app"))}))
        }
        ("POST", ["releases"]) => {
            let url = format!("http://127.0.0.1:{port}/releases/{}", text("package"));
            (201, json!({"url": url}))
        }
        ("POST", ["deploy"]) => {
            let deployed =
                json!({"host": text("host"), "package": text("package"), "status": "deployed"});
            (200, deployed)
        }
        ("GET", ["health", host]) if checked.insert(host.to_string()) => {
            (503, json!({"host": host, "status": "starting"}))
        }
        ("GET", ["health", host]) => (200, json!({"host": host, "status": "ok"})),
        ("POST", ["rollback"]) => (200, json!({"host": text("host"), "status": "rolled back"})),
        ("POST", ["chat"]) => (200, json!({"ok": true})),
        _ => (404, json!({"error": "no such endpoint"})),
    }
}

fn push_payload() -> Value {
    serde_json::from_str(&std::fs::read_to_string(example("cicd-canary/push.json")).unwrap())
        .unwrap()
}

/// Index of the first call for which `f` holds.
fn first(calls: &[Call], f: impl Fn(&Call) -> bool) -> usize {
    calls
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("no such call in {calls:#?}"))
}

/// Index of the last call for which `f` holds.
fn last(calls: &[Call], f: impl Fn(&Call) -> bool) -> usize {
    calls
        .iter()
        .rposition(f)
        .unwrap_or_else(|| panic!("no such call in {calls:#?}"))
}

fn deploys_to<'a>(calls: &'a [Call], prefix: &str) -> Vec<&'a str> {
    calls
        .iter()
        .filter(|c| c.path == "/deploy")
        .filter_map(|c| c.body["host"].as_str())
        .filter(|h| h.starts_with(prefix))
        .collect()
}

/// Pushes to main, waits for the approval question, checks it and answers it with `response`;
/// returns the workflow execution's id and how many calls the API had before the answer.
fn push_and_answer(server: &Server, api: &FakeApi, response: Value) -> (String, usize) {
    server.push(&push_payload());
    let workflow = server.wait_for("/api/v1/executions?action=deploy.canary", 30, |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    });
    let id = workflow[0]["id"].as_str().unwrap().to_string();
    assert_eq!(workflow[0]["context"]["rule"]["ref"], "deploy.on_push");
    assert_eq!(
        workflow[0]["parameters"]["commit"],
        "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    );
    assert_eq!(workflow[0]["parameters"]["repo"], "acme/billing");

    let inquiries = server.wait_for("/api/v1/inquiries", 60, |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    });
    let inquiry = &inquiries[0];
    assert_eq!(inquiry["parent"], id.as_str());
    assert_eq!(inquiry["route"], "deploy");
    assert_eq!(inquiry["ttl"], 60.0);
    assert_eq!(
        inquiry["schema"]["title"],
        "Promote billing pkg-billing-0d1a26e to production?"
    );
    // The workflow waits for the answer, and nothing reached production meanwhile.
    server.wait_for(&format!("/api/v1/executions/{id}"), 30, |v| {
        v["status"] == "paused"
    });
    let before = api.calls().len();
    assert!(deploys_to(&api.calls(), "web").is_empty());
    let path = format!("/api/v1/inquiries/{}", inquiry["id"].as_str().unwrap());
    // The schema requires "approved".
    let (bad, _) = server.send(
        reqwest::Method::PUT,
        &path,
        Some(json!({"response": {"approver": "ann"}})),
    );
    assert_eq!(bad, 400);
    let (answered, _) = server.send(
        reqwest::Method::PUT,
        &path,
        Some(json!({"response": response})),
    );
    assert_eq!(answered, 200);
    (id, before)
}

#[test]
fn a_push_to_main_goes_through_canaries_and_approval_to_production() {
    let (port, api) = FakeApi::start();
    let site = Site::of("cicd-canary");
    let server = site.serve();
    server.set_endpoint(port);

    let (id, answered) =
        push_and_answer(&server, &api, json!({"approved": true, "approver": "ann"}));
    let done = server.wait_for(&format!("/api/v1/executions/{id}"), 60, |v| {
        ["succeeded", "failed", "timeout", "canceled", "abandoned"]
            .contains(&v["status"].as_str().unwrap_or_default())
    });
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        done["result"]["output"],
        json!({
            "package": "pkg-billing-0d1a26e",
            "deployed": ["canary-1", "canary-2", "web-1", "web-2", "web-3", "web-4"],
            "approver": "ann",
            "release_notes": format!("http://127.0.0.1:{port}/releases/pkg-billing-0d1a26e"),
            "failure": null,
        })
    );

    let calls = api.calls();
    let ci = first(&calls, |c| c.method == "GET" && c.path.starts_with("/ci/"));
    assert_eq!(
        calls[ci].path,
        "/ci/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    );
    let package = first(&calls, |c| c.method == "POST" && c.path == "/packages");
    assert_eq!(
        calls[package].body,
        json!({"app": "billing", "repo": "acme/billing", "commit": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"})
    );
    let releases = first(&calls, |c| c.path == "/releases");
    assert_eq!(
        calls[releases].body["message"],
        "Fix rounding in invoice totals"
    );
    let is_canary_deploy = |c: &Call| {
        c.path == "/deploy"
            && c.body["host"]
                .as_str()
                .is_some_and(|h| h.starts_with("canary"))
    };
    let is_prod_deploy = |c: &Call| {
        c.path == "/deploy"
            && c.body["host"]
                .as_str()
                .is_some_and(|h| h.starts_with("web"))
    };
    let is_health = |c: &Call| c.method == "GET" && c.path.starts_with("/health/");
    // CI, then the package, then the canaries one at a time, then their health, then production.
    assert!(ci < package && package < releases, "{calls:#?}");
    assert!(package < first(&calls, is_canary_deploy), "{calls:#?}");
    assert_eq!(deploys_to(&calls, "canary"), ["canary-1", "canary-2"]);
    assert!(last(&calls, is_canary_deploy) < first(&calls, is_health));
    assert!(last(&calls, is_health) < answered);
    assert!(answered <= first(&calls, is_prod_deploy));
    assert!(
        calls
            .iter()
            .all(|c| c.body["package"].is_null() || c.body["package"] == "pkg-billing-0d1a26e")
    );

    // Each canary's first health check failed (503) and was retried.
    for host in ["canary-1", "canary-2"] {
        let statuses: Vec<u16> = calls
            .iter()
            .filter(|c| c.path == format!("/health/{host}"))
            .map(|c| c.status)
            .collect();
        assert_eq!(statuses, [503, 200], "{host}");
    }

    // Every production host got the package once, after the approval; then the chat heard.
    let mut prod = deploys_to(&calls, "web");
    prod.sort();
    assert_eq!(prod, ["web-1", "web-2", "web-3", "web-4"]);
    let chat = last(&calls, |c| c.path == "/chat");
    assert_eq!(chat, calls.len() - 1);
    assert_eq!(
        calls[chat].body["text"],
        "billing pkg-billing-0d1a26e (0d1a26e) is live on 6 hosts, approved by ann"
    );
    assert!(!calls.iter().any(|c| c.path == "/rollback"));

    // The task executions are the workflow's children, named by their tasks.
    let tasks = server.get(&format!("/api/v1/executions?parent={id}"));
    let mut names: Vec<(&str, &str)> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["parent"], id.as_str());
            (
                t["context"]["orquesta"]["task_name"].as_str().unwrap(),
                t["status"].as_str().unwrap(),
            )
        })
        .collect();
    names.sort();
    let mut want = vec![
        ("approve", "succeeded"),
        ("changelog", "succeeded"),
        ("ci_status", "succeeded"),
        ("notify", "succeeded"),
        ("package", "succeeded"),
    ];
    want.extend([("deploy_canary", "succeeded"); 2]);
    want.extend([("health_check", "failed"); 2]);
    want.extend([("health_check", "succeeded"); 2]);
    want.extend([("deploy_prod", "succeeded"); 4]);
    want.sort();
    assert_eq!(names, want);
    let approve = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["context"]["orquesta"]["task_name"] == "approve")
        .unwrap();
    assert_eq!(approve["action"]["ref"], "core.ask");
    assert_eq!(
        approve["result"]["response"],
        json!({"approved": true, "approver": "ann"})
    );
    assert_eq!(server.get("/api/v1/inquiries"), json!([]));
}

#[test]
fn a_rejected_canary_is_rolled_back_and_production_is_untouched() {
    let (port, api) = FakeApi::start();
    let site = Site::of("cicd-canary");
    let server = site.serve();
    server.set_endpoint(port);

    let (id, answered) =
        push_and_answer(&server, &api, json!({"approved": false, "approver": "bob"}));
    let done = server.wait_for(&format!("/api/v1/executions/{id}"), 60, |v| {
        ["succeeded", "failed", "timeout", "canceled", "abandoned"]
            .contains(&v["status"].as_str().unwrap_or_default())
    });
    assert_eq!(done["status"], "failed", "{done:#}");
    let output = &done["result"]["output"];
    assert_eq!(output["package"], "pkg-billing-0d1a26e");
    assert_eq!(output["approver"], "bob");
    assert_eq!(output["deployed"], json!([]));
    assert_eq!(
        output["failure"],
        "pkg-billing-0d1a26e rejected by bob; canaries rolled back"
    );

    let calls = api.calls();
    assert!(deploys_to(&calls, "web").is_empty(), "{calls:#?}");
    let mut rolled_back: Vec<&str> = calls
        .iter()
        .filter(|c| c.path == "/rollback")
        .map(|c| c.body["host"].as_str().unwrap())
        .collect();
    rolled_back.sort();
    assert_eq!(rolled_back, ["canary-1", "canary-2"]);
    assert!(answered <= first(&calls, |c| c.path == "/rollback"));
    let chat = last(&calls, |c| c.path == "/chat");
    assert_eq!(chat, calls.len() - 1);
    assert_eq!(
        calls[chat].body["text"],
        "pkg-billing-0d1a26e rejected by bob; canaries rolled back"
    );

    let tasks = server.get(&format!("/api/v1/executions?parent={id}"));
    let ran: HashSet<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["context"]["orquesta"]["task_name"].as_str().unwrap())
        .collect();
    assert!(ran.contains("rollback_canary") && ran.contains("notify_failure"));
    assert!(!ran.contains("deploy_prod") && !ran.contains("notify"));
}

#[test]
fn a_push_to_another_branch_runs_nothing() {
    let (port, api) = FakeApi::start();
    let site = Site::of("cicd-canary");
    let server = site.serve();
    server.set_endpoint(port);

    let mut payload = push_payload();
    payload["ref"] = json!("refs/heads/feature/faster-invoices");
    server.push(&payload);
    let instances = server.wait_for(
        "/api/v1/triggerinstances?trigger=core.st2.webhook",
        30,
        |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["status"] == "processed")
        },
    );
    assert_eq!(
        instances[0]["payload"]["body"]["ref"],
        "refs/heads/feature/faster-invoices"
    );
    assert_eq!(server.get("/api/v1/ruleenforcements"), json!([]));
    assert_eq!(server.get("/api/v1/executions"), json!([]));
    assert!(api.calls().is_empty());
}

#[test]
fn a_commit_that_failed_ci_is_not_deployed() {
    let (port, api) = FakeApi::start();
    let site = Site::of("cicd-canary");
    let server = site.serve();
    server.set_endpoint(port);

    let mut payload = push_payload();
    payload["after"] = json!("bad5eed7c0ffee42b1a177c8d03f9e96e0adf246");
    server.push(&payload);
    let done = server.wait_for("/api/v1/executions?action=deploy.canary", 30, |v| {
        v.as_array().is_some_and(|a| {
            a.len() == 1
                && ["succeeded", "failed", "timeout", "canceled", "abandoned"]
                    .contains(&a[0]["status"].as_str().unwrap_or_default())
        })
    });
    assert_eq!(done[0]["status"], "failed", "{done:#}");
    let failure = "CI is failed for acme/billing@bad5eed: not deployed";
    assert_eq!(done[0]["result"]["output"]["failure"], failure);
    assert_eq!(done[0]["result"]["output"]["package"], Value::Null);

    let calls = api.calls();
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/ci/bad5eed7c0ffee42b1a177c8d03f9e96e0adf246", "/chat"]
    );
    assert_eq!(calls[1].body, json!({"text": failure}));
}
