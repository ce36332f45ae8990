//! End-to-end tests of Orquesta workflows in `squall serve`: real actions (`core.echo`,
//! `core.http` against a server the test runs, a sleeping test component), with-items with
//! concurrency, retry, remediation, join, sub-workflows, pause/resume/cancel, inquiries,
//! re-run, and kill -9 at random points of running workflows.

mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{HttpStub, Response, Server, hostile_action, new_pack, write_squall_toml};

/// The test pack `wf`: workflows (`actions/workflows/<name>.yaml`, each an action `wf.<name>`
/// taking `base`, the test API's URL, plus what it declares) and `wf.sleep`, an idempotent
/// action that sleeps `ms` milliseconds.
const WORKFLOWS: &[(&str, &str, &str)] = &[
    (
        "chain",
        "name: {type: string, required: true}",
        r#"
version: 1.0
input: [name, base]
tasks:
  greet:
    action: core.echo message="hello {{ ctx('name') }}"
    next:
      - when: <% succeeded() %>
        publish: [{greeting: <% result().stdout %>}]
        do: post
  post:
    action: core.http url="{{ ctx('base') }}/record/chain" method=POST
    input: {body: <% ctx(greeting) %>}
    next:
      - when: <% succeeded() %>
        publish: "code=<% result().status_code %>"
output:
  - greeting: <% ctx(greeting) %>
  - code: <% ctx(code) %>
"#,
    ),
    (
        "fanout",
        "hosts: {type: array, required: true}",
        r#"
version: 1.0
input: [hosts, base]
tasks:
  deploy:
    with: {items: "host in <% ctx(hosts) %>", concurrency: 2}
    action: core.http url="{{ ctx('base') }}/slow/{{ item('host') }}"
    next:
      - when: <% succeeded() %>
        publish: [{paths: <% result().select($.body.path) %>}]
output: [{paths: <% ctx(paths) %>}]
"#,
    ),
    (
        "retry",
        "",
        r#"
version: 1.0
input: [base]
tasks:
  check:
    action: core.http url="{{ ctx('base') }}/flaky/retry"
    retry: {count: 3, delay: 0}
    next: [{when: <% succeeded() %>, publish: [{attempts: <% result().body.calls %>}]}]
output: [{attempts: <% ctx(attempts) %>}]
"#,
    ),
    (
        "remediate",
        "",
        r#"
version: 1.0
input: [base]
tasks:
  restart:
    action: core.http url="{{ ctx('base') }}/fail"
    next:
      - when: <% succeeded() %>
        do: done
      - when: <% failed() %>
        publish: [{failed_with: <% result().status_code %>}]
        do: cleanup
  cleanup:
    action: core.http url="{{ ctx('base') }}/record/cleanup" method=POST body=restart-failed
  done:
    action: core.noop
output: [{failed_with: <% ctx(failed_with) %>}]
"#,
    ),
    (
        "join",
        "",
        r#"
version: 1.0
input: [base]
tasks:
  start:
    next: [{do: [left, right]}]
  left:
    action: core.echo message=left
    next: [{publish: [{l: <% result().stdout %>}], do: both}]
  right:
    action: core.http url="{{ ctx('base') }}/slow/right"
    next: [{publish: [{r: <% result().body.path %>}], do: both}]
  both:
    join: all
    action: core.echo message="{{ ctx('l') }}+{{ ctx('r') }}"
    next: [{publish: "joined=<% result().stdout %>"}]
output: [{joined: <% ctx(joined) %>}]
"#,
    ),
    (
        "nested",
        "",
        r#"
version: 1.0
input: [base]
tasks:
  inner:
    action: wf.chain name=nested base=<% ctx(base) %>
    next: [{when: <% succeeded() %>, publish: [{inner: <% result().output.greeting %>}]}]
output: [{inner: <% ctx(inner) %>}]
"#,
    ),
    (
        "ask",
        "ttl: {type: number, default: 60}",
        r#"
version: 1.0
input: [base, ttl]
tasks:
  approve:
    action: core.ask
    input:
      route: ops
      ttl: <% ctx(ttl) %>
      schema: {type: object, properties: {approver: {type: string}}, required: [approver]}
    next:
      - when: <% succeeded() %>
        publish: [{approver: <% result().response.approver %>}]
        do: ship
      - when: <% failed() %>
        do: fail
  ship:
    action: core.echo message="approved by {{ ctx('approver') }}"
output: [{approver: <% ctx(approver) %>}]
"#,
    ),
    (
        "slow",
        "count: {type: integer, default: 6}",
        r#"
version: 1.0
input: [base, count]
tasks:
  work:
    with: {items: "i in <% range(ctx(count)) %>", concurrency: 1}
    action: core.http url="{{ ctx('base') }}/slow/{{ item('i') }}"
output: [{count: <% ctx(count) %>}]
"#,
    ),
    (
        "outer",
        "count: {type: integer, default: 6}",
        r#"
version: 1.0
input: [base, count]
tasks:
  inner:
    action: wf.slow base=<% ctx(base) %> count=<% ctx(count) %>
output: [{inner: <% ctx(count) %>}]
"#,
    ),
    (
        "fragile",
        "",
        r#"
version: 1.0
input: [base]
tasks:
  prepare:
    action: core.http url="{{ ctx('base') }}/record/prepare" method=POST
    next: [{when: <% succeeded() %>, do: deploy}]
  deploy:
    action: core.http url="{{ ctx('base') }}/flaky/deploy"
    next: [{when: <% succeeded() %>, publish: [{calls: <% result().body.calls %>}]}]
output: [{calls: <% ctx().get(calls) %>}]
"#,
    ),
    (
        "crashy",
        "",
        r#"
version: 1.0
input: [base]
tasks:
  s1: {action: wf.sleep ms=120 tag=s1, next: [{publish: [{a: <% result().tag %>}], do: s2}]}
  s2: {action: wf.sleep ms=120 tag=s2, next: [{do: [p1, p2]}]}
  p1:
    with: {items: "i in <% range(5) %>", concurrency: 2}
    action: wf.sleep ms=150 tag="p1-{{ item('i') }}"
    next: [{publish: [{items: <% result().select($.tag) %>}], do: s3}]
  p2: {action: wf.sleep ms=200 tag=p2, next: [{publish: [{b: <% result().tag %>}], do: s3}]}
  s3: {join: all, action: wf.sleep ms=120 tag=s3, next: [{do: s4}]}
  s4: {action: wf.sleep ms=120 tag=s4, next: [{publish: "done=<% result().tag %>"}]}
output: [{a: <% ctx(a) %>}, {b: <% ctx(b) %>}, {items: <% ctx(items) %>}, {done: <% ctx(done) %>}]
"#,
    ),
];

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let pack = new_pack(dir.path(), "wf", "");
        std::fs::create_dir_all(pack.join("actions/workflows")).unwrap();
        hostile_action(
            &pack,
            "sleep",
            "idempotent: true\n\
             parameters:\n  mode: {type: string, default: sleep, immutable: true}\n  ms: {type: integer}\n  tag: {type: string}\n",
        );
        for (name, params, workflow) in WORKFLOWS {
            std::fs::write(
                pack.join(format!("actions/{name}.yaml")),
                format!(
                    "name: {name}\nrunner_type: orquesta\nentry_point: workflows/{name}.yaml\n\
                     parameters:\n  base: {{type: string, required: true}}\n  {params}\n"
                ),
            )
            .unwrap();
            std::fs::write(
                pack.join(format!("actions/workflows/{name}.yaml")),
                workflow,
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

/// What these tests ask of the API beyond [`Server`]'s requests.
trait WorkflowApi {
    /// Requests `action` with `params` and returns the execution id.
    fn run(&self, action: &str, params: Value) -> String;
    /// Waits until the execution has completed and returns it.
    fn finished(&self, id: &str, secs: u64) -> Value;
    /// Task executions of a workflow, oldest first: (task name, item, status).
    fn tasks(&self, id: &str) -> Vec<(String, Option<u64>, String)>;
}

impl WorkflowApi for Server {
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
            ["succeeded", "failed", "timeout", "canceled", "abandoned"]
                .contains(&e["status"].as_str().unwrap_or(""))
        })
    }

    fn tasks(&self, id: &str) -> Vec<(String, Option<u64>, String)> {
        let children = self.get(&format!("/api/v1/executions?parent={id}&limit=1000"));
        let out: Vec<(String, Option<u64>, String)> = children
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|c| {
                (
                    c["context"]["orquesta"]["task_name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    c["context"]["orquesta"]["item_id"].as_u64(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out
    }
}

/// The test API: what it saw, and the most requests it served at once.
struct Api {
    stub: HttpStub,
    max_in_flight: Arc<AtomicUsize>,
}

impl Api {
    /// Serves on a random port: `/slow/<x>` answers after 150 ms, `/flaky/<key>` fails with 500
    /// twice per key then answers 200, `/fail` always 500, anything else 200; every 200 body is
    /// `{"path": <path>, "calls": <calls of that path so far>}`.
    fn start() -> (String, Api) {
        let calls = Mutex::new(HashMap::<String, u64>::new());
        let in_flight = AtomicUsize::new(0);
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let max = max_in_flight.clone();
        let stub = HttpStub::start(move |request| {
            let path = &request.path;
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            let calls = {
                let mut c = calls.lock().unwrap();
                let n = c.entry(path.clone()).or_default();
                *n += 1;
                *n
            };
            if path.starts_with("/slow/") {
                std::thread::sleep(Duration::from_millis(150));
            }
            let ok = !(path == "/fail" || path.starts_with("/flaky/") && calls <= 2);
            in_flight.fetch_sub(1, Ordering::SeqCst);
            if ok {
                Response::json(200, &json!({"path": path, "calls": calls}))
            } else {
                Response::json(500, &json!({"error": "down"}))
            }
        });
        (
            stub.url(),
            Api {
                stub,
                max_in_flight,
            },
        )
    }

    /// What it saw: (method, path, body).
    fn seen(&self) -> Vec<(String, String, String)> {
        self.stub
            .requests()
            .into_iter()
            .map(|r| (r.method.clone(), r.path.clone(), r.text()))
            .collect()
    }

    fn paths(&self) -> Vec<String> {
        self.stub.paths()
    }
}

#[test]
fn a_workflow_of_real_actions_publishes_and_records_its_tasks() {
    let (base, api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let id = server.run("wf.chain", json!({"name": "ops", "base": base}));
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"],
        json!({"output": {"greeting": "hello ops", "code": 200}})
    );
    assert_eq!(
        api.seen(),
        [(
            "POST".to_string(),
            "/record/chain".to_string(),
            "hello ops".to_string()
        )]
    );
    let tasks = server.tasks(&id);
    assert_eq!(
        tasks,
        [
            ("greet".to_string(), None, "succeeded".to_string()),
            ("post".to_string(), None, "succeeded".to_string())
        ]
    );
    assert_eq!(e["children"].as_array().unwrap().len(), 2);
    let child = server.get(&format!(
        "/api/v1/executions/{}",
        e["children"][0].as_str().unwrap()
    ));
    assert_eq!(child["parent"], id.as_str());
    assert_eq!(
        child["context"]["orquesta"]["workflow_execution_id"],
        id.as_str()
    );
    assert_eq!(child["context"]["parent"]["execution_id"], id.as_str());
}

#[test]
fn with_items_fan_out_respects_concurrency_and_keeps_item_order() {
    let (base, api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let hosts: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
    let id = server.run("wf.fanout", json!({"hosts": hosts, "base": base}));
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let want: Vec<String> = hosts.iter().map(|h| format!("/slow/{h}")).collect();
    assert_eq!(
        e["result"]["output"]["paths"],
        json!(want),
        "results in item order"
    );
    assert_eq!(
        api.max_in_flight.load(Ordering::SeqCst),
        2,
        "concurrency: 2"
    );
    let items: Vec<Option<u64>> = server.tasks(&id).into_iter().map(|(_, i, _)| i).collect();
    assert_eq!(items, (0..6).map(Some).collect::<Vec<_>>());
}

#[test]
fn retry_succeeds_on_the_third_try() {
    let (base, api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let id = server.run("wf.retry", json!({"base": base}));
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"], json!({"output": {"attempts": 3}}));
    assert_eq!(api.paths(), ["/flaky/retry"; 3]);
    let statuses: Vec<String> = server.tasks(&id).into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(statuses, ["failed", "failed", "succeeded"]);
}

#[test]
fn a_failure_with_a_remediation_path_succeeds_and_without_one_fails() {
    let (base, api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let id = server.run("wf.remediate", json!({"base": base}));
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"], json!({"output": {"failed_with": 500}}));
    assert_eq!(api.paths(), ["/fail", "/record/cleanup"]);

    // fragile: the deploy task fails (no retry, no remediation): fail-fast.
    let id = server.run("wf.fragile", json!({"base": base}));
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "failed", "{e:#}");
    let errors = e["result"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["task_id"], "deploy");
    assert_eq!(
        errors[0]["message"],
        "Execution failed. See result for details."
    );
    assert_eq!(errors[0]["result"]["status_code"], 500);
    assert!(
        e["result"]["output"].get("calls").is_some(),
        "output rendered on failure"
    );

    // Re-run from the failed task: prepare is not run again.
    for (round, want) in [(1, "failed"), (2, "succeeded")] {
        let (status, new) = server.send(
            reqwest::Method::POST,
            &format!("/api/v1/executions/{id}/re_run"),
            Some(json!({"tasks": ["deploy"]})),
        );
        assert_eq!(status, 201, "{new}");
        let rerun = server.finished(new["id"].as_str().unwrap(), 60);
        assert_eq!(rerun["status"], want, "re-run {round}: {rerun:#}");
        assert_eq!(rerun["context"]["re-run"]["ref"], id.as_str());
    }
    let prepares = api
        .paths()
        .iter()
        .filter(|p| *p == "/record/prepare")
        .count();
    assert_eq!(prepares, 1, "{:?}", api.paths());
    let (status, v) = server.send(
        reqwest::Method::POST,
        &format!("/api/v1/executions/{id}/re_run"),
        Some(json!({"tasks": ["nope"]})),
    );
    assert_eq!(status, 409, "{v}");
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("task \"nope\" did not run"),
        "{v}"
    );
}

#[test]
fn a_join_waits_for_both_branches_and_merges_their_context() {
    let (base, _api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let id = server.run("wf.join", json!({"base": base}));
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["output"]["joined"], "left+/slow/right");
    let names: Vec<String> = server.tasks(&id).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names.iter().filter(|n| *n == "both").count(),
        1,
        "{names:?}"
    );
    assert_eq!(names.last().unwrap(), "both");
}

#[test]
fn a_sub_workflow_is_a_task_whose_output_the_parent_publishes() {
    let (base, _api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let id = server.run("wf.nested", json!({"base": base}));
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["output"]["inner"], "hello nested");
    let inner = e["children"][0].as_str().unwrap();
    let sub = server.get(&format!("/api/v1/executions/{inner}"));
    assert_eq!(sub["action"]["ref"], "wf.chain");
    assert_eq!(sub["parent"], id.as_str());
    assert_eq!(server.tasks(inner).len(), 2);
    let openapi = server.get("/api/v1/openapi.json");
    for (path, method) in [
        ("/api/v1/executions/{id}", "put"),
        ("/api/v1/executions/{id}/re_run", "post"),
        ("/api/v1/inquiries", "get"),
        ("/api/v1/inquiries/{id}", "put"),
    ] {
        assert!(
            openapi["paths"][path][method].is_object(),
            "{method} {path} in the OpenAPI document"
        );
    }
}

/// Starts `wf.outer` over `count` slow items and waits until its sub-workflow has started an
/// item; returns (outer id, inner id).
fn start_outer(server: &Server, base: &str, count: u64) -> (String, String) {
    let id = server.run("wf.outer", json!({"base": base, "count": count}));
    let children = server.wait_for(&format!("/api/v1/executions?parent={id}"), 30, |v| {
        v.as_array().unwrap().len() == 1
    });
    let inner = children[0]["id"].as_str().unwrap().to_string();
    server.wait_for(&format!("/api/v1/executions?parent={inner}"), 30, |v| {
        !v.as_array().unwrap().is_empty()
    });
    (id, inner)
}

#[test]
fn pause_and_cancel_cascade_to_a_sub_workflow() {
    let (base, api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let status = |id: &str| server.get(&format!("/api/v1/executions/{id}"))["status"].clone();
    let (id, inner) = start_outer(&server, &base, 6);
    let (code, v) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/executions/{id}"),
        Some(json!({"status": "pausing"})),
    );
    assert_eq!(code, 200, "{v}");
    server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        e["status"] == "paused"
    });
    assert_eq!(status(&inner), "paused", "the sub-workflow paused too");
    let ran = api.paths().len();
    assert!(ran < 6, "{ran}");
    let (code, _) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/executions/{id}"),
        Some(json!({"status": "resuming"})),
    );
    assert_eq!(code, 200);
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(status(&inner), "succeeded");
    assert_eq!(api.paths().len(), 6, "every item ran once");

    let (id, inner) = start_outer(&server, &base, 20);
    let (code, v) = server.send(
        reqwest::Method::DELETE,
        &format!("/api/v1/executions/{id}"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(server.finished(&id, 30)["status"], "canceled");
    assert_eq!(
        server.finished(&inner, 30)["status"],
        "canceled",
        "the sub-workflow was canceled"
    );
    let items = server.tasks(&inner);
    assert!(items.len() < 20, "{items:?}");
    assert!(
        items
            .iter()
            .all(|(_, _, s)| s == "succeeded" || s == "canceled"),
        "{items:?}"
    );
}

#[test]
fn pause_resume_and_cancel_a_running_workflow() {
    let (base, api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let id = server.run("wf.slow", json!({"base": base, "count": 6}));
    server.wait_for(&format!("/api/v1/executions?parent={id}"), 30, |v| {
        v.as_array().unwrap().len() >= 2
    });
    let (status, v) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/executions/{id}"),
        Some(json!({"status": "pausing"})),
    );
    assert_eq!(status, 200, "{v}");
    let paused = server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        e["status"] == "paused"
    });
    let ran = api.paths().len();
    assert!(ran < 6, "pausing stopped new items: {ran}");
    let log: Vec<&str> = paused["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert!(log.ends_with(&["running", "pausing", "paused"]), "{log:?}");
    let (status, _) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/executions/{id}"),
        Some(json!({"status": "pausing"})),
    );
    assert_eq!(status, 200, "pausing a paused workflow is fine");
    assert_eq!(api.paths().len(), ran, "nothing ran while paused");
    let (status, _) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/executions/{id}"),
        Some(json!({"status": "resuming"})),
    );
    assert_eq!(status, 200);
    let e = server.finished(&id, 60);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(api.paths().len(), 6);

    // Cancel: the running item is canceled, no new one starts.
    let id = server.run("wf.slow", json!({"base": base, "count": 20}));
    server.wait_for(&format!("/api/v1/executions?parent={id}"), 30, |v| {
        v.as_array().unwrap().len() >= 2
    });
    let (status, v) = server.send(
        reqwest::Method::DELETE,
        &format!("/api/v1/executions/{id}"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    let e = server.finished(&id, 30);
    assert_eq!(e["status"], "canceled", "{e:#}");
    let children = server.tasks(&id);
    assert!(children.len() < 20, "{children:?}");
    assert!(
        children
            .iter()
            .all(|(_, _, s)| s == "succeeded" || s == "canceled"),
        "{children:?}"
    );
    let (status, v) = server.send(
        reqwest::Method::DELETE,
        &format!("/api/v1/executions/{id}"),
        None,
    );
    assert_eq!(status, 409, "{v}");
    let (status, v) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/executions/{}", children[0].0),
        Some(json!({"status": "pausing"})),
    );
    assert_eq!(status, 400, "{v}");
}

#[test]
fn an_inquiry_pauses_the_workflow_until_a_valid_response_and_times_out_after_its_ttl() {
    let (base, _api) = Api::start();
    let site = Site::new();
    let server = site.serve();
    let id = server.run("wf.ask", json!({"base": base}));
    let inquiries = server.wait_for("/api/v1/inquiries", 30, |v| {
        v.as_array().unwrap().len() == 1
    });
    let inquiry = &inquiries[0];
    assert_eq!(inquiry["route"], "ops");
    assert_eq!(inquiry["parent"], id.as_str());
    let qid = inquiry["id"].as_str().unwrap().to_string();
    let e = server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        e["status"] == "paused"
    });
    assert_eq!(e["status"], "paused");
    // The inquiry trigger fired.
    let fired = server.get("/api/v1/triggerinstances?trigger=core.st2.generic.inquiry");
    assert_eq!(fired[0]["payload"], json!({"id": qid, "route": "ops"}));

    let path = format!("/api/v1/inquiries/{qid}");
    let (status, v) = server.send(
        reqwest::Method::PUT,
        &path,
        Some(json!({"response": {"approver": 7}})),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("does not match the inquiry's schema"),
        "{v}"
    );
    let (status, v) = server.send(
        reqwest::Method::PUT,
        &path,
        Some(json!({"response": {"approver": "ann"}})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"id": qid, "response": {"approver": "ann"}}));
    let e = server.finished(&id, 30);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["output"]["approver"], "ann");
    let (status, _) = server.send(
        reqwest::Method::PUT,
        &path,
        Some(json!({"response": {"approver": "bob"}})),
    );
    assert_eq!(status, 409, "answered once");
    assert_eq!(server.get("/api/v1/inquiries").as_array().unwrap().len(), 0);

    // A ttl of 0.02 minutes: the inquiry times out, the task fails, the workflow fails.
    let id = server.run("wf.ask", json!({"base": base, "ttl": 0.02}));
    let e = server.finished(&id, 30);
    assert_eq!(e["status"], "failed", "{e:#}");
    let tasks = server.tasks(&id);
    assert_eq!(
        tasks,
        [("approve".to_string(), None, "timeout".to_string())]
    );
}

#[test]
fn kill_9_at_random_points_of_running_workflows_changes_nothing() {
    let site = Site::new();
    let (base, _api) = Api::start();
    // The reference: no crash.
    let server = site.serve();
    let reference = server.run("wf.crashy", json!({"base": base}));
    let want = server.finished(&reference, 60);
    assert_eq!(want["status"], "succeeded", "{want:#}");
    let want_tasks = server.tasks(&reference);
    assert_eq!(want_tasks.len(), 10, "{want_tasks:?}");
    drop(server);

    // The same workflows, killed and restarted at pseudo-random moments.
    let mut seed: u64 = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut server = site.serve();
    let ids: Vec<String> = (0..3)
        .map(|_| server.run("wf.crashy", json!({"base": base})))
        .collect();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(80 + next() % 400));
        server.kill_9();
        server = site.serve();
    }
    for id in &ids {
        let e = server.finished(id, 120);
        assert_eq!(e["status"], want["status"], "{e:#}");
        assert_eq!(e["result"], want["result"], "same output after crashes");
        let tasks = server.tasks(id);
        assert_eq!(tasks, want_tasks, "each task ran once, none lost: {id}");
    }
}
