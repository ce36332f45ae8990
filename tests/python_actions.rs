//! End-to-end tests of StackStorm Python content in `squall serve`: a pack written for
//! StackStorm (`tests/fixtures/st2-python/packs/pyops`, nothing Squall-specific in it) is
//! refused at load until `squall pack build` made its component, then its `python-script`
//! actions run unchanged, as StackStorm's `contrib/runners/python_runner` runs them, and its
//! `PollingSensor` is polled (`st2reactor/sensor/base.py`, `sensor_service.dispatch`, state in
//! the datastore); the actions: the `Action` class with
//! `self.config`, `self.logger` and `self.action_service`; `run(**parameters)`; a returned
//! `(succeeded, result)` tuple; an exception's traceback on stderr with exit code 1 and result
//! `"None"`; the result `{"stdout", "stderr", "exit_code", "result"}`; local datastore keys
//! named `<pack>.<class>:<name>` (`st2common/services/datastore.py`).
//!
//! Needs componentize-py (PyPI: `pip install componentize-py`), named by
//! `SQUALL_COMPONENTIZE_PY` or found on `PATH`. `.ci/run` installs it and sets
//! `SQUALL_REQUIRE_COMPONENTIZE_PY=1`, which turns its absence into a failure; without it and
//! without that variable, each test says so and passes.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{HttpStub, Response, SQUALL, Server, copy_dir, repo, write_squall_toml};

fn componentize_py() -> Option<PathBuf> {
    support::guest_tool(
        "SQUALL_COMPONENTIZE_PY",
        "componentize-py",
        "SQUALL_REQUIRE_COMPONENTIZE_PY",
        "pip install componentize-py",
    )
}

/// Runs `action` with `parameters` to its end; returns the execution. The first run compiles
/// the pack's component (tens of seconds in a debug build).
fn run(server: &Server, action: &str, parameters: Value) -> Value {
    server.run_to_end(action, parameters)
}

/// `squall pack build <pack>` in the site `pack` belongs to (`<site>/packs/<pack>`), so the
/// build compiles into the site's component cache.
fn build(pack: &Path, componentize_py: &Path) -> std::process::Output {
    Command::new(SQUALL)
        .current_dir(pack.parent().unwrap().parent().unwrap())
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_CONFIG")
        .args(["pack", "build"])
        .arg(pack)
        .env("SQUALL_COMPONENTIZE_PY", componentize_py)
        .output()
        .unwrap()
}

fn action_names(server: &Server) -> Vec<String> {
    let actions = server.get("/api/v1/actions?pack=pyops");
    let mut names: Vec<String> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn stackstorm_python_actions_run_unchanged_once_built() {
    let Some(componentize_py) = componentize_py() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/st2-python"), dir.path());
    std::fs::remove_dir_all(dir.path().join("packs/pyreqs")).unwrap();
    let stub = HttpStub::start(|r| {
        Response::json(
            200,
            &json!({"path": r.path, "method": r.method, "sent": r.text()}),
        )
    });
    write_squall_toml(
        dir.path(),
        &format!(
            "[packs.pyops]\nhttp_allow = [\"127.0.0.1:{}\"]\nsecret_keys = [\"pyops.Counter:token\"]\n",
            stub.port
        ),
    );
    let pack = dir.path().join("packs/pyops");

    // Not built: the actions are refused at load, naming the file, the field and the
    // command that builds them.
    let log = dir.path().join("server.log");
    let server = Server::start_with_stderr(
        dir.path(),
        "127.0.0.1:0",
        &[],
        std::process::Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    assert!(action_names(&server).is_empty());
    drop(server);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("actions/greet.yaml: entry_point: the pack's Python content is not built; run `squall pack build"),
        "{said}"
    );

    let built = build(&pack, &componentize_py);
    assert!(
        built.status.success(),
        "{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let said = String::from_utf8_lossy(&built.stdout);
    assert!(
        said.contains("python-actions.wasm") && said.contains("6 entry points"),
        "{said}"
    );

    // The lock has each action's run() signature; `pack validate` checks parameters against
    // it: a parameter run() does not take, a required argument the YAML does not declare.
    let lock: Value =
        serde_json::from_slice(&std::fs::read(pack.join(".squall/python-actions.lock")).unwrap())
            .unwrap();
    assert_eq!(
        lock["signatures"]["greet.py"],
        json!({"class": "GreetAction", "parameters": ["name", "loud"], "required": ["name", "loud"], "var_keyword": false})
    );
    let greet = pack.join("actions/greet.yaml");
    let original = std::fs::read_to_string(&greet).unwrap();
    std::fs::write(&greet, original.replace("  loud:\n", "  shout:\n")).unwrap();
    let checked = std::process::Command::new(support::SQUALL)
        .current_dir(dir.path())
        .args(["pack", "validate", "packs/pyops"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(2), "{said}");
    assert!(
        said.contains("packs/pyops/actions/greet.yaml: parameters.shout: GreetAction.run() does not take it (a run would fail: run() got an unexpected keyword argument 'shout')")
            && said.contains("packs/pyops/actions/greet.yaml: parameters.loud: GreetAction.run() requires it and the action does not declare it"),
        "{said}"
    );
    std::fs::write(&greet, original).unwrap();

    let server = Server::start(dir.path());
    assert_eq!(
        action_names(&server),
        ["boom", "check", "counter", "fetch", "greet"]
    );
    let (status, _) = server.send(
        reqwest::Method::PUT,
        "/api/v1/keys/shared_note",
        Some(json!({"name": "shared_note", "value": "for everyone"})),
    );
    assert_eq!(status, 200);
    let (status, _) = server.send(
        reqwest::Method::PUT,
        "/api/v1/keys/core:elsewhere",
        Some(json!({"name": "core:elsewhere", "value": "core's own"})),
    );
    assert_eq!(status, 200);

    // The config, the logger (stderr in StackStorm's format, and the execution's log), print
    // (stdout) and a module of the pack's actions/lib.
    let e = run(
        &server,
        "pyops.greet",
        json!({"name": "Ann", "env": {"REGION": "eu-west-1", "PYTHONPATH": "/x"}}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let r = &e["result"];
    assert_eq!(
        r["result"],
        json!({"greeting": "Howdy, Ann", "pack": "pyops", "region": "eu-west-1"}),
        "{e:#}"
    );
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["stdout"], "about to greet\n");
    let stderr = r["stderr"].as_str().unwrap();
    assert!(stderr.contains(" INFO greet [-] greeting Ann"), "{stderr}");
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["exit_code", "result", "stderr", "stdout"]);
    assert_eq!(e["output"]["log"][0]["message"], "greeting Ann", "{e:#}");
    let e = run(&server, "pyops.greet", json!({"name": "Bo", "loud": true}));
    assert_eq!(e["result"]["result"]["greeting"], "HOWDY, BO!", "{e:#}");

    // (succeeded, result) tuples.
    let e = run(&server, "pyops.check", json!({"ok": true}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["result"], json!(["all", "good"]));
    let e = run(&server, "pyops.check", json!({"ok": false}));
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(e["result"]["result"], json!({"reason": "not ok"}));
    assert_eq!(e["result"]["exit_code"], 0);

    // A status that is not a bool: exit code 220, failed with the message StackStorm gives;
    // a result that is not JSON: its str() (python_action_wrapper.py).
    let e = run(
        &server,
        "pyops.check",
        json!({"ok": true, "shape": "non-bool status"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(e["result"]["exit_code"], 220);
    let error = e["result"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "Status returned from the action run() method must either be True or False, got: yes"
        ),
        "{error}"
    );
    let e = run(
        &server,
        "pyops.check",
        json!({"ok": true, "shape": "not json"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["result"], "<an unprintable result>");

    // An exception: traceback on stderr, exit code 1, result "None" (python_runner.py).
    let e = run(&server, "pyops.boom", json!({}));
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(e["result"]["exit_code"], 1);
    assert_eq!(e["result"]["result"], "None");
    let stderr = e["result"]["stderr"].as_str().unwrap();
    assert!(
        stderr.starts_with("Traceback") && stderr.contains("RuntimeError: the disk is on fire"),
        "{stderr}"
    );

    // action_service: local keys are <pack>.<class>:<name>, durable, visible over the API;
    // other keys are read as the grants allow and never written.
    let e = run(&server, "pyops.counter", json!({}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["result"]["count"], 1, "{e:#}");
    let e = run(&server, "pyops.counter", json!({}));
    let r = &e["result"]["result"];
    assert_eq!(r["count"], 2, "{e:#}");
    assert_eq!(
        r["keys"],
        json!(["pyops.Counter:count", "pyops.Counter:token"])
    );
    assert_eq!(r["token"], "s3cret");
    assert_eq!(r["shared"], "for everyone");
    assert_eq!(r["foreign"], Value::Null);
    let refused = r["wrote_elsewhere"].as_str().unwrap();
    assert!(
        refused.contains("may not write key \"elsewhere\""),
        "{refused}"
    );
    let denials: Vec<&str> = e["output"]["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        denials
            .iter()
            .any(|d| d.contains("key \"core:elsewhere\" is a local key of pack \"core\"")),
        "{denials:?}"
    );
    assert!(
        denials
            .iter()
            .any(|d| d.contains("pack \"pyops\" may not write key \"elsewhere\"")),
        "{denials:?}"
    );
    let key = server.get("/api/v1/keys/pyops.Counter:count");
    assert_eq!(key["value"], "2", "{key:#}");
    let token = server.get("/api/v1/keys/pyops.Counter:token");
    assert_eq!(token["secret"], true, "{token:#}");
    assert_ne!(token["value"], "s3cret");
    let e = run(&server, "pyops.counter", json!({"reset": true}));
    assert_eq!(e["result"]["result"], json!({"deleted": true}), "{e:#}");

    // urllib.request over the host's HTTP, under the pack's http_allow grant.
    let e = run(
        &server,
        "pyops.fetch",
        json!({"url": format!("{}/status?x=1", stub.url()), "data": "ping"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let r = &e["result"]["result"];
    assert_eq!(r["status"], 200, "{e:#}");
    assert_eq!(r["content_type"], "application/json");
    assert_eq!(
        r["body"],
        json!({"path": "/status?x=1", "method": "POST", "sent": "ping"})
    );
    let seen = stub.requests();
    assert_eq!(seen.last().unwrap().headers["x-asked-by"], "pyops");
    let e = run(
        &server,
        "pyops.fetch",
        json!({"url": "http://127.0.0.1:9/"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["result"]["error"].as_str().unwrap();
    assert!(error.contains("denied by the host"), "{error}");
    assert!(
        e["output"]["denials"].to_string().contains("127.0.0.1:9"),
        "{e:#}"
    );

    // A raw socket is refused, saying what to use instead, even to a granted address.
    let e = run(
        &server,
        "pyops.fetch",
        json!({"url": stub.url(), "raw": true}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["result"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("PermissionError: raw sockets are not available to components"),
        "{error}"
    );
    // So is raw TLS: `import ssl` says why (this Python has no `_ssl`).
    let e = run(
        &server,
        "pyops.fetch",
        json!({"url": "https://127.0.0.1:9/", "raw": true}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["result"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("ModuleNotFoundError: ssl is not available to components"),
        "{error}"
    );

    // A PollingSensor: polled every second in a new instance, its count kept in the datastore
    // under StackStorm's local name, each tick a trigger instance; a payload its trigger type
    // refuses is logged and not dispatched.
    let ticks = server.wait_for("/api/v1/triggerinstances?trigger=pyops.tick", 60, |v| {
        v.as_array().is_some_and(|a| a.len() >= 2)
    });
    let mut seen: Vec<i64> = ticks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["payload"]["n"].as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(&seen[..2], &[1, 2], "{ticks:#}");
    assert!(
        ticks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["payload"]["greeting"] == "Howdy"),
        "{ticks:#}"
    );
    let n = server.get("/api/v1/keys/pyops.TickSensor:n");
    assert!(
        n["value"].as_str().unwrap().parse::<i64>().unwrap() >= 2,
        "{n:#}"
    );

    // Changing a module makes the build stale: refused at the next load until rebuilt.
    drop(server);
    let greet = pack.join("actions/greet.py");
    let text = std::fs::read_to_string(&greet).unwrap();
    std::fs::write(&greet, text.replace("about to greet", "greeting now")).unwrap();
    let server = Server::start_with_stderr(
        dir.path(),
        "127.0.0.1:0",
        &[],
        std::process::Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    assert_eq!(action_names(&server), Vec::<String>::new());
    drop(server);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("actions/greet.py changed since the pack was built"),
        "{said}"
    );
    assert!(build(&pack, &componentize_py).status.success());
    let server = Server::start(dir.path());
    let e = run(&server, "pyops.greet", json!({"name": "Cy"}));
    assert_eq!(e["result"]["stdout"], "greeting now\n", "{e:#}");
}

#[test]
fn a_module_that_does_not_import_fails_the_build_naming_it() {
    let Some(componentize_py) = componentize_py() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/st2-python"), dir.path());
    let pack = dir.path().join("packs/pyops");
    std::fs::write(
        pack.join("actions/check.py"),
        "import no_such_sdk\n\nfrom st2common.runners.base_action import Action\n",
    )
    .unwrap();
    let built = build(&pack, &componentize_py);
    assert_eq!(built.status.code(), Some(2));
    let said = String::from_utf8_lossy(&built.stderr);
    assert!(said.contains("No module named 'no_such_sdk'"), "{said}");
    assert!(
        said.contains(&format!(
            "File \"{}/actions/check.py\", line 1",
            pack.display()
        )),
        "{said}"
    );
    assert!(!said.contains("Stack backtrace"), "{said}");
    assert!(!pack.join(".squall/python-actions.wasm").exists());

    // A passive Sensor (its run() loops forever) cannot be polled: refused, naming it.
    std::fs::copy(
        repo().join("tests/fixtures/st2-python/packs/pyops/actions/check.py"),
        pack.join("actions/check.py"),
    )
    .unwrap();
    std::fs::write(
        pack.join("sensors/tick_sensor.py"),
        "from st2reactor.sensor.base import Sensor\n\n\nclass TickSensor(Sensor):\n    \
         def run(self):\n        while True:\n            pass\n",
    )
    .unwrap();
    let built = build(&pack, &componentize_py);
    assert_eq!(built.status.code(), Some(2));
    let said = String::from_utf8_lossy(&built.stderr);
    assert!(
        said.contains("sensors/tick_sensor.py: class \"TickSensor\" is not a PollingSensor"),
        "{said}"
    );
}

#[test]
fn requirements_are_vendored_and_requests_eventlet_and_subprocess_work_under_grants() {
    let Some(componentize_py) = componentize_py() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("tests/fixtures/st2-python/packs/pyreqs"),
        &dir.path().join("packs/pyreqs"),
    );
    let stub = HttpStub::start(|r| Response::json(200, &json!({"path": r.path})));
    let s3 = s3_stub();
    write_squall_toml(
        dir.path(),
        &format!(
            "[packs.pyreqs]\nhttp_allow = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\ncommands = [\"uname -s\"]\n",
            stub.port, s3.port
        ),
    );
    let pack = dir.path().join("packs/pyreqs");
    let built = build(&pack, &componentize_py);
    let said = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{said}");
    assert!(said.contains("not vendored: eventlet"), "{said}");
    let lock: Value =
        serde_json::from_slice(&std::fs::read(pack.join(".squall/python-actions.lock")).unwrap())
            .unwrap();
    let deps: Vec<&str> = lock["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for name in [
        "requests==",
        "boto3==",
        "botocore==",
        "urllib3==",
        "six==",
        "pytz==",
        "simplejson==",
        "PyYAML==",
        "Jinja2==",
        "MarkupSafe==",
    ] {
        assert!(
            deps.iter()
                .any(|d| d.to_lowercase().starts_with(&name.to_lowercase())),
            "{name} not in {deps:?}"
        );
    }
    assert!(!deps.iter().any(|d| d.starts_with("eventlet")), "{deps:?}");

    let server = Server::start(dir.path());
    // requests over the host's HTTP; six and eventlet from StackStorm's environment.
    let e = run(
        &server,
        "pyreqs.get",
        json!({"url": format!("{}/items", stub.url())}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let r = &e["result"]["result"];
    assert_eq!(r["status"], 200, "{e:#}");
    assert_eq!(r["json"]["path"], "/items?q=a+b");
    assert_eq!(r["header"], "application/json");
    assert_eq!(r["six"], true);
    assert_eq!(r["green"], true);
    assert_eq!(stub.requests().last().unwrap().headers["x-via"], "requests");
    let e = run(
        &server,
        "pyreqs.get",
        json!({"url": "http://127.0.0.1:9/x"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["result"]["error"].as_str().unwrap();
    assert!(error.contains("denied by the host"), "{error}");

    // boto3 against an S3-compatible stub: botocore's requests go through the host (granted),
    // its service models are read from the vendored botocore at run time (read-only).
    let e = run(&server, "pyreqs.s3", json!({"endpoint": s3.url()}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"]["result"],
        json!({"body": "hello from boto3", "etag": "\"squall-etag\"", "buckets": ["squall"]})
    );
    let seen: Vec<(String, String)> = s3
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("PUT", "/squall"),
            ("PUT", "/squall/hello.txt"),
            ("GET", "/squall/hello.txt"),
            ("GET", "/"),
        ]
        .map(|(m, p)| (m.to_string(), p.to_string()))
    );
    let put = &s3.requests()[1];
    assert!(
        put.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=test/"),
        "{put:?}"
    );
    assert!(put.headers["user-agent"].starts_with("Boto3/"), "{put:?}");
    // An endpoint not granted: botocore's EndpointConnectionError; the host's refusal is
    // recorded with the execution's denials.
    let e = run(
        &server,
        "pyreqs.s3",
        json!({"endpoint": "http://127.0.0.1:9"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(
        e["result"]["result"]["error"],
        "Could not connect to the endpoint URL: \"http://127.0.0.1:9/squall\""
    );
    let denials = e["output"]["denials"].to_string();
    assert!(denials.contains("127.0.0.1:9"), "{e:#}");

    // StackStorm's environment, undeclared: PyYAML and MarkupSafe built without their C code.
    let e = run(&server, "pyreqs.render", json!({"name": "ann"}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"]["result"],
        json!({
            "text": "hello ANN",
            "yaml": {"items": [1, 2], "name": "ann"},
            "dumped": "a: 1",
            "when": "2026-01-02T03:04:00+00:00",
            "json": "{\"b\": 2}",
            "libyaml": false,
            "isotime": "2026-01-02T03:04:05+00:00",
        })
    );

    // subprocess through the process capability: granted argv runs, anything else is refused.
    let e = run(&server, "pyreqs.uname", json!({}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["result"]["kernel"], "Linux", "{e:#}");
    assert_eq!(e["result"]["result"]["bytes"], "Linux");
    assert_eq!(e["result"]["result"]["returncode"], 0);
    let argv = &e["commands"][0]["argv"];
    assert!(argv[0].as_str().unwrap().ends_with("/uname"), "{e:#}");
    assert_eq!(argv[1], "-s");
    let e = run(&server, "pyreqs.uname", json!({"flag": "-r"}));
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(e["result"]["exit_code"], 1);
    let stderr = e["result"]["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("PermissionError") && stderr.contains("not granted"),
        "{stderr}"
    );
}

/// An S3-compatible stub: `PUT /<bucket>` creates a bucket, `PUT /<bucket>/<key>` stores an
/// object, `GET /<bucket>/<key>` returns it, `GET /` lists the buckets (S3's
/// `ListAllMyBucketsResult` XML, as in the S3 API reference). Every object's ETag is
/// `"squall-etag"`.
fn s3_stub() -> HttpStub {
    /// Bucket names, and object bodies by path.
    type S3 = (Vec<String>, std::collections::BTreeMap<String, String>);
    let state: std::sync::Arc<std::sync::Mutex<S3>> = Default::default();
    HttpStub::start(move |r| {
        let mut state = state.lock().unwrap();
        let path = r.path.split('?').next().unwrap_or("").to_string();
        let parts: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
        let etag = ("etag".to_string(), "\"squall-etag\"".to_string());
        match (r.method.as_str(), parts.as_slice()) {
            ("PUT", [bucket]) => {
                state.0.push(bucket.to_string());
                Response {
                    status: 200,
                    headers: vec![],
                    body: String::new(),
                }
            }
            ("PUT", [_, _]) => {
                state.1.insert(path.clone(), r.text());
                Response {
                    status: 200,
                    headers: vec![etag],
                    body: String::new(),
                }
            }
            ("GET", [""]) => {
                let buckets: String = state
                    .0
                    .iter()
                    .map(|b| format!("<Bucket><Name>{b}</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>"))
                    .collect();
                Response {
                    status: 200,
                    headers: vec![("content-type".into(), "application/xml".into())],
                    body: format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>squall</ID><DisplayName>squall</DisplayName></Owner><Buckets>{buckets}</Buckets></ListAllMyBucketsResult>"
                    ),
                }
            }
            ("GET", [_, _]) => match state.1.get(&path) {
                Some(body) => Response {
                    status: 200,
                    headers: vec![etag, ("content-type".into(), "binary/octet-stream".into())],
                    body: body.clone(),
                },
                None => Response {
                    status: 404,
                    headers: vec![],
                    body: String::new(),
                },
            },
            _ => Response {
                status: 400,
                headers: vec![],
                body: String::new(),
            },
        }
    })
}

/// The author's loop of a new Python pack: `squall pack new` → its unit test → `squall pack
/// install` into a running server (built, validated, reloaded) → its action runs, its sensor
/// polls and its rule fires.
#[test]
fn a_new_python_pack_installs_into_a_running_server_and_runs() {
    let Some(componentize_py) = componentize_py() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stub = HttpStub::start(|_| Response::json(200, &json!({"ok": true})));
    write_squall_toml(
        dir.path(),
        &format!("[packs.acme]\nhttp_allow = [\"127.0.0.1:{}\"]\n", stub.port),
    );
    std::fs::create_dir_all(dir.path().join("packs")).unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    let squall = |args: &[&str], url: Option<&str>| {
        let mut c = Command::new(SQUALL);
        c.current_dir(dir.path())
            .env_remove("SQUALL_API_URL")
            .env("SQUALL_COMPONENTIZE_PY", &componentize_py);
        if let Some(url) = url {
            c.args(["--api-url", url]);
        }
        c.args(args).output().unwrap()
    };
    let made = squall(&["pack", "new", "acme", "--dir", "src"], None);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&made.stdout).trim(), "src/acme");
    let again = squall(&["pack", "new", "acme", "--dir", "src"], None);
    assert_eq!(again.status.code(), Some(2));
    let bad = squall(&["pack", "new", "Acme-Pack", "--dir", "src"], None);
    assert_eq!(bad.status.code(), Some(2));

    // Its unit test runs with plain Python.
    let unit = Command::new("python3")
        .current_dir(dir.path().join("src/acme"))
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .output()
        .unwrap();
    assert!(
        unit.status.success(),
        "{}",
        String::from_utf8_lossy(&unit.stderr)
    );
    assert!(String::from_utf8_lossy(&unit.stderr).contains("Ran 2 tests"));

    let server = Server::start(dir.path());
    let installed = squall(
        &["pack", "install", "src/acme", "--packs-dir", "packs"],
        Some(&server.url),
    );
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let e = run(
        &server,
        "acme.lookup",
        json!({"host": format!("127.0.0.1:{}", stub.port), "path": "/health"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"]["result"],
        json!({"status": 200, "ok": true, "server": ""})
    );
    assert_eq!(stub.paths(), ["/health"]);
    // The sensor polled once at start (its next poll is a minute away): tick 1 → the rule →
    // core.echo.
    let echo = server.first_succeeded("core.echo");
    assert_eq!(echo["result"]["stdout"], "acme tick 1", "{echo:#}");
}
