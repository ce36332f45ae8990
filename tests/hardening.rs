//! Hostile tests of what surrounds the sandbox (issue: "harden everything around the
//! sandbox"), each against the real `squall serve`: a pack, component or request tries an
//! escape and the test asserts it is contained with the documented status. By the issue's
//! numbers:
//!
//! - 1: outbound grants never reach Squall's own API;
//! - 2: browsers cannot drive the loopback API (DNS rebinding, cross-site POSTs, no CORS);
//! - 3: pack files stay inside the pack (links out, WAT text), their contents never quoted;
//! - 4: credentials never become event data;
//! - 6: the data directory and key files are private;
//! - 8: outbound connections are capped per call and per server;
//! - 9: a workflow of 20,000 items or an endless cycle fails on its budget in seconds; one of
//!   10,000 items is canceled, and the server stops on SIGTERM, within seconds;
//! - 10: a template doing 10^10 iterations stops on its fuel;
//! - 11: too-deep JSON is refused with 400 and what was accepted stays readable;
//! - 12: a full disk refuses writes with 507, keeps reads and recovers by itself;
//! - 13: a full backlog answers 429 with `Retry-After` and loses nothing accepted.
//!
//! 5 (pack-local keys) and 7 (sensor quotas) are in `sensors.rs`; 6's verified component
//! cache in `runtime/host/tests/hostile.rs`.

mod support;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::{
    CREDENTIAL_HEADERS, HttpStub, Response, Server, hostile_action, new_pack,
    post_with_credentials, write_squall_toml,
};

const SECRET: &str = "TOP-SECRET-KEY-MATERIAL";

/// A scratch site with pack `tests` (`tests.hostile`, HTTP requested to anywhere), a rule
/// on webhook url `creds` running it, and `squall.toml` with `extra`.
fn site(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pack = new_pack(dir.path(), "tests", "capabilities: {http: [\"*:*\"]}\n");
    hostile_action(
        &pack,
        "hostile",
        "parameters:\n  mode: {type: string, default: echo}\n  url: {type: string}\n  \
         headers: {type: object}\n  deep: {type: array}\n  times: {type: integer}\n  \
         hold_ms: {type: integer}\n  ms: {type: integer}\n",
    );
    std::fs::create_dir_all(pack.join("rules")).unwrap();
    std::fs::write(
        pack.join("rules/creds.yaml"),
        "name: creds\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: creds}}\n\
         action:\n  ref: tests.hostile\n  parameters:\n    headers: \"{{ trigger.headers }}\"\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("rules/slow.yaml"),
        "name: slow\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: slow}}\n\
         action:\n  ref: tests.hostile\n  parameters: {mode: sleep, ms: 300}\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("rules/spin.yaml"),
        "name: spin\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: spin}}\n\
         action:\n  ref: tests.hostile\n  parameters:\n    url: \"{% for a in range(100000) %}\
         {% for b in range(100000) %}x{% endfor %}{% endfor %}\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(pack.join("actions/workflows")).unwrap();
    for (name, body) in [
        (
            "many",
            "version: 1.0\ntasks:\n  each:\n    with: <% range(0, 20000) %>\n    action: core.noop\n",
        ),
        (
            "wide",
            "version: 1.0\ntasks:\n  each:\n    with: <% range(0, 10000) %>\n    \
             action: tests.hostile\n    input: {mode: sleep, ms: 20}\n",
        ),
        (
            "spin",
            "version: 1.0\ntasks:\n  start:\n    next: [{do: a}]\n  a:\n    next: [{do: b}]\n  \
             b:\n    next: [{do: a}]\n",
        ),
    ] {
        std::fs::write(pack.join(format!("actions/workflows/{name}.yaml")), body).unwrap();
        std::fs::write(
            pack.join(format!("actions/{name}.yaml")),
            format!("name: {name}\nrunner_type: orquesta\nentry_point: workflows/{name}.yaml\n"),
        )
        .unwrap();
    }
    write_squall_toml(dir.path(), extra);
    dir
}

/// The `X-Total-Count` of a list `path` (how many records match its filters).
fn total(server: &Server, path: &str) -> usize {
    server
        .request(reqwest::Method::GET, path)
        .send()
        .unwrap()
        .headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs `tests.hostile` with `parameters` through the API and waits until it ends.
fn run(server: &Server, parameters: Value) -> Value {
    let (status, created) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "tests.hostile", "parameters": parameters})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        matches!(
            e["status"].as_str(),
            Some("succeeded" | "failed" | "timeout")
        )
    })
}

#[test]
fn a_loopback_grant_does_not_reach_squalls_own_api() {
    // Everything granted, loopback and unspecified addresses explicitly: only the reservation
    // of Squall's own listener stands between the component and the API.
    let dir = site(
        "[packs.tests]\nhttp_allow = [\"*:*\", \"127.0.0.0/8:*\", \"0.0.0.0/8:*\", \"[::/0]:*\"]\n",
    );
    let server = Server::start(dir.path());
    server.send(
        reqwest::Method::PUT,
        "/api/v1/keys/token",
        Some(json!({"name": "token", "value": "hunter2", "secret": true})),
    );
    // The grant itself works: another loopback port is reachable.
    let stub = HttpStub::start(|_| Response::json(200, &json!({"ok": true})));
    let fine = run(
        &server,
        json!({"mode": "http", "url": format!("http://127.0.0.1:{}/", stub.port)}),
    );
    assert_eq!(fine["status"], "succeeded", "{fine:#}");

    let port = server.url.rsplit(':').next().unwrap().to_string();
    for url in [
        format!("http://127.0.0.1:{port}/api/v1/keys?decrypt=true"),
        format!("http://localhost:{port}/api/v1/keys?decrypt=true"),
        format!("http://127.0.0.2:{port}/api/v1/keys"),
        format!("http://[::ffff:127.0.0.1]:{port}/api/v1/keys"),
        format!("http://0.0.0.0:{port}/api/v1/keys"),
    ] {
        let record = run(&server, json!({"mode": "http", "url": url}));
        assert_eq!(record["status"], "failed", "{url}: {record:#}");
        let text = record.to_string();
        assert!(!text.contains("hunter2"), "{url}: {text}");
        let denial = record["output"]["denials"][0].as_str().unwrap_or_default();
        assert!(denial.contains("is Squall's own API"), "{url}: {record:#}");
    }
}

/// A server that accepts connections, answers each request's head with a body it never sends,
/// and keeps every connection open; returns its port and the number of connections accepted.
fn tarpit() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
            open.push(stream);
        }
    });
    (port, accepted)
}

#[test]
fn outbound_connections_are_capped_per_call_and_per_server() {
    let dir = site(
        "[packs.tests]\nhttp_allow = [\"127.0.0.1:*\"]\n\
         [host]\nmax_outbound_per_call = 8\nmax_outbound = 12\n",
    );
    let server = Server::start(dir.path());
    let (port, accepted) = tarpit();
    let parameters = json!({
        "mode": "hold-connections", "url": format!("127.0.0.1:{port}"), "times": 40, "hold_ms": 5000,
    });
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let (status, created) = server.send(
                reqwest::Method::POST,
                "/api/v1/executions",
                Some(json!({"action": "tests.hostile", "parameters": parameters})),
            );
            assert_eq!(status, 201, "{created}");
            created["id"].as_str().unwrap().to_string()
        })
        .collect();
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
                e["status"] == "succeeded"
            })
        })
        .collect();
    let held: Vec<u64> = records
        .iter()
        .map(|r| r["result"]["held"].as_u64().unwrap())
        .collect();
    assert!(held.iter().all(|&h| h <= 8), "per call: {records:#?}");
    assert!(held.iter().sum::<u64>() <= 12, "per server: {records:#?}");
    assert_eq!(
        held.iter().sum::<u64>(),
        12,
        "both calls overlapped: {records:#?}"
    );
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) <= 12);
    for r in &records {
        assert!(
            r["result"]["errors"]
                .as_str()
                .unwrap()
                .contains("ConnectionLimitReached"),
            "{r:#}"
        );
        let denials = r["output"]["denials"].to_string();
        assert!(denials.contains("max_outbound"), "{denials}");
    }
    // The connections are returned when the executions end: the next call gets its share.
    let again = run(
        &server,
        json!({"mode": "hold-connections", "url": format!("127.0.0.1:{port}"), "times": 8}),
    );
    assert_eq!(again["result"]["held"], 8, "{again:#}");
}

/// Sends `request` (raw HTTP/1.1) to the server and returns the status and the headers+body.
fn raw(server: &Server, request: &str) -> (u16, String) {
    let addr = server.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn browsers_cannot_drive_the_loopback_api() {
    let dir = site("");
    let server = Server::start(dir.path());
    let get = |host: &str| {
        raw(
            &server,
            &format!("GET /api/v1/actions HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
    };
    // DNS rebinding: the page's own name arrives in Host.
    let (status, answer) = get("evil.example:9101");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("not a loopback name"), "{answer}");
    for host in ["localhost:9101", "127.0.0.1:9101", "[::1]:9101"] {
        assert_eq!(get(host).0, 200, "{host}");
    }

    // A POST of an execution to `path` with these extra header lines (each ending in \r\n).
    let post = |path: &str, headers: &str| {
        let body = r#"{"action": "tests.hostile", "parameters": {}}"#;
        raw(
            &server,
            &format!(
                "POST {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let port = server.url.rsplit(':').next().unwrap();
    for (path, headers, want) in [
        // A cross-site form or text/plain POST (a CORS simple request) creates nothing.
        (
            "/api/v1/executions",
            "Host: 127.0.0.1\r\nContent-Type: text/plain\r\n".to_string(),
            415,
        ),
        (
            "/api/v1/executions",
            "Host: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n".into(),
            415,
        ),
        (
            "/api/v1/executions",
            "Host: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n".into(),
            415,
        ),
        ("/api/v1/executions", "Host: 127.0.0.1\r\n".into(), 415),
        // A key in the query string is no credential a form cannot carry.
        (
            "/api/v1/executions?st2-api-key=x",
            "Host: 127.0.0.1\r\nContent-Type: text/plain\r\n".into(),
            415,
        ),
        // JSON from a foreign page (its Origin says so) is refused too; a page on another
        // local port is another site; `null` is a sandboxed or file page.
        (
            "/api/v1/executions",
            "Host: 127.0.0.1\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\n"
                .into(),
            403,
        ),
        (
            "/api/v1/executions",
            format!(
                "Host: 127.0.0.1:{port}\r\nOrigin: http://localhost:8080\r\nContent-Type: application/json\r\n"
            ),
            403,
        ),
        (
            "/api/v1/executions",
            format!(
                "Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:1\r\nContent-Type: application/json\r\n"
            ),
            403,
        ),
        (
            "/api/v1/executions",
            format!("Host: 127.0.0.1:{port}\r\nOrigin: null\r\nContent-Type: application/json\r\n"),
            403,
        ),
        // The same page's own origin is fine.
        (
            "/api/v1/executions",
            format!(
                "Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            ),
            201,
        ),
    ] {
        let (status, answer) = post(path, &headers);
        assert_eq!(status, want, "{path} {headers:?}: {answer}");
    }
    let list = server.get("/api/v1/executions");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");

    // No CORS: a preflight is not agreed to, and answers carry no Access-Control headers.
    let (_, answer) = raw(
        &server,
        "OPTIONS /api/v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\
         Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
    );
    assert!(
        !answer.to_ascii_lowercase().contains("access-control-allow"),
        "{answer}"
    );
    // What the CLI and st2 send still works.
    let (status, created) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "tests.hostile", "parameters": {}})),
    );
    assert_eq!(status, 201, "{created}");
}

#[cfg(unix)]
#[test]
fn pack_files_stay_inside_the_pack_and_are_never_quoted() {
    let dir = site("");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret_file = outside.join("datastore.key");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::copy(
        squall_test_components::TEST_HOSTILE,
        outside.join("real.wasm"),
    )
    .unwrap();
    let pack = new_pack(dir.path(), "leaky", "");
    let actions = pack.join("actions");
    std::fs::create_dir_all(actions.join("workflows")).unwrap();
    std::fs::create_dir_all(pack.join("rules")).unwrap();
    let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, pack.join(at)).unwrap();
    // Metadata, a rule, a component and a workflow that are links to files outside the pack.
    link(&secret_file, "actions/meta.yaml");
    link(&secret_file, "rules/rule.yaml");
    std::fs::write(
        actions.join("linked.yaml"),
        "name: linked\nrunner_type: wasm\nentry_point: linked.wasm\n",
    )
    .unwrap();
    link(&outside.join("real.wasm"), "actions/linked.wasm");
    std::fs::write(
        actions.join("flow.yaml"),
        "name: flow\nrunner_type: orquesta\nentry_point: workflows/flow.yaml\n",
    )
    .unwrap();
    link(&secret_file, "actions/workflows/flow.yaml");
    // A component that is WebAssembly text, quoting the secret in a comment.
    std::fs::write(
        actions.join("text.yaml"),
        "name: text\nrunner_type: wasm\nentry_point: text.wasm\n",
    )
    .unwrap();
    std::fs::write(
        actions.join("text.wasm"),
        format!("(component) ;; {SECRET}\n"),
    )
    .unwrap();
    // A link that stays inside the pack is fine.
    std::fs::copy(
        squall_test_components::TEST_HOSTILE,
        actions.join("inside.wasm"),
    )
    .unwrap();
    std::fs::write(
        actions.join("inside.yaml"),
        "name: inside\nrunner_type: wasm\nentry_point: inside-link.wasm\n",
    )
    .unwrap();
    link(Path::new("inside.wasm"), "actions/inside-link.wasm");

    let log = dir.path().join("server.log");
    let server = Server::start_with_stderr(
        dir.path(),
        "127.0.0.1:0",
        &[("SQUALL_LOG", "info".as_ref())],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let actions = server.get("/api/v1/actions?limit=1000");
    let refs: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["ref"].as_str())
        .filter(|r| r.starts_with("leaky."))
        .collect();
    assert_eq!(refs, ["leaky.inside", "leaky.text"], "{actions:#}");
    let (status, created) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "leaky.text", "parameters": {}})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let record = server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        e["status"] == "failed"
    });
    let error = record["result"]["error"].as_str().unwrap();
    assert!(
        error.contains("not a binary WebAssembly component"),
        "{error}"
    );
    let everything = format!("{record}{}", server.get("/api/v1/executions"));
    drop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    for (what, text) in [("API", &everything), ("log", &log)] {
        assert!(
            !text.contains(SECRET),
            "the {what} quotes a file outside the pack: {text}"
        );
    }
    for file in [
        "actions/meta.yaml",
        "rules/rule.yaml",
        "actions/linked.wasm",
        "actions/workflows/flow.yaml",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(file) && l.contains("leads outside the pack")),
            "{file} not reported: {log}"
        );
    }
}

#[test]
fn webhook_credentials_never_become_event_data() {
    let dir = site("");
    let server = Server::start(dir.path());
    let resp = post_with_credentials(&server, "/api/v1/webhooks/creds", &[]);
    assert_eq!(resp.status(), 202);
    let instances = server.wait_for(
        "/api/v1/triggerinstances?trigger=core.st2.webhook",
        30,
        |l| l.as_array().unwrap().len() == 1,
    );
    let execution = server.wait_for("/api/v1/executions", 30, |l| {
        l.as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "succeeded")
    });
    let headers = &instances[0]["payload"]["headers"];
    assert_eq!(headers["X-Github-Event"], "push", "{headers:#}");
    let stored = format!("{instances}{execution}");
    for (_, credential) in CREDENTIAL_HEADERS {
        assert!(
            !stored.contains(credential),
            "{credential} stored: {stored}"
        );
    }
}

#[test]
fn too_deep_json_is_refused_and_what_is_accepted_stays_readable() {
    let dir = site("");
    let server = Server::start(dir.path());
    let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
    // 253 bytes of 126 nested arrays: readable by serde_json, but not inside a stored record.
    let resp = server.post("/api/v1/webhooks/creds", &nested(126));
    assert_eq!(resp.status(), 400);
    let fault: Value = resp.json().unwrap();
    assert!(
        fault["faultstring"]
            .as_str()
            .unwrap()
            .contains("deeper than 64 levels"),
        "{fault}"
    );
    let resp = server.post(
        "/api/v1/executions",
        &format!(
            r#"{{"action": "tests.hostile", "parameters": {{"deep": {}}}}}"#,
            nested(100)
        ),
    );
    assert_eq!(resp.status(), 400);
    // At the limit it is accepted, and every list holding it still reads.
    let resp = server.post(
        "/api/v1/webhooks/creds",
        &format!("{{\"a\": {}}}", nested(63)),
    );
    assert_eq!(resp.status(), 202);
    server.wait_for("/api/v1/executions", 30, |l| {
        l.as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "succeeded")
    });
    for path in [
        "/api/v1/triggerinstances",
        "/api/v1/executions",
        "/api/v1/ruleenforcements",
    ] {
        server.get(path);
    }
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_key_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = site("");
    let server = Server::start(dir.path());
    server.send(
        reqwest::Method::PUT,
        "/api/v1/keys/token",
        Some(json!({"name": "token", "value": "hunter2", "secret": true})),
    );
    drop(server);
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    assert_eq!(mode("data/squall.redb"), 0o600);
    assert_eq!(mode("data/keys/datastore.key"), 0o600);
    assert_eq!(mode("data/keys/cache.key"), 0o600);
    assert_eq!(mode("data/cache/components"), 0o700);
}

#[test]
fn a_full_backlog_answers_429_and_loses_nothing_accepted() {
    let dir = site("[server]\nconcurrency = 1\nmax_backlog = 5\n");
    let server = Server::start(dir.path());
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..40 {
        let resp = server.post("/api/v1/webhooks/slow", "{}");
        match resp.status().as_u16() {
            202 => accepted += 1,
            429 => {
                assert_eq!(resp.headers()["retry-after"], "1");
                let fault: Value = resp.json().unwrap();
                assert!(
                    fault["faultstring"]
                        .as_str()
                        .unwrap()
                        .contains("[server] max_backlog"),
                    "{fault}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        refused > 0 && accepted >= 5,
        "accepted {accepted}, refused {refused}"
    );
    // A new execution from the API is refused the same way while the backlog is full (five
    // 300 ms executions are still queued behind one slot).
    let resp = server.post(
        "/api/v1/executions",
        r#"{"action": "tests.hostile", "parameters": {}}"#,
    );
    assert_eq!(resp.status(), 429);
    // Everything accepted runs; then the server takes work again.
    server.wait_for("/api/v1/executions?limit=1000", 60, |l| {
        l.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "succeeded" && e["parameters"]["mode"] == "sleep")
            .count()
            == accepted
    });
    let instances = server.get("/api/v1/triggerinstances?trigger=core.st2.webhook&limit=1000");
    assert_eq!(instances.as_array().unwrap().len(), accepted);
    assert_eq!(server.post("/api/v1/webhooks/slow", "{}").status(), 202);
}

/// Back-pressure (13): memory taken by a backlog of large payloads (300 webhooks of 500 KB
/// queued behind one slot) is given back once it drains and the server is idle — its resident
/// size returns near where it started (the store's page cache, `[server] store_cache`, is all
/// it keeps; 8 MiB here). Measured in a debug build: 155 → 209 MiB at the peak → 123 MiB
/// after; without giving memory back, 203 MiB stayed (and with redb's default 1 GiB cache,
/// 897 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn memory_comes_back_after_a_backlog_drains() {
    let dir = site("[server]\nconcurrency = 1\nmax_backlog = 4000\nstore_cache = \"8MiB\"\n");
    std::fs::write(
        dir.path().join("packs/tests/rules/big.yaml"),
        "name: big\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: big}}\n\
         action:\n  ref: tests.hostile\n  parameters:\n    mode: sleep\n    ms: 10\n    \
         deep: \"{{ trigger.body.items }}\"\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let body = json!({"items": vec!["x".repeat(1000); 500]}).to_string();
    // Warm up: the allocator, the component cache, the first pages of the store.
    for _ in 0..50 {
        assert_eq!(server.post("/api/v1/webhooks/big", &body).status(), 202);
    }
    let settled = |server: &Server, n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while total(server, "/api/v1/executions?limit=1&status=succeeded") < n {
            assert!(std::time::Instant::now() < deadline, "not all ran");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    settled(&server, 50);
    std::thread::sleep(Duration::from_secs(1));
    let before = server.rss();
    let (mut accepted, mut peak) = (50, before);
    for _ in 0..300 {
        match server.post("/api/v1/webhooks/big", &body).status().as_u16() {
            202 => accepted += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
        peak = peak.max(server.rss());
    }
    settled(&server, accepted);
    // The server gives memory back after a quiet 5 s period (checked every 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut after = server.rss();
    while after >= before + (peak - before) / 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        after = server.rss();
    }
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "rss before {:.1} MiB, at the peak {:.1} MiB, after the drain {:.1} MiB ({accepted} accepted)",
        mib(before),
        mib(peak),
        mib(after)
    );
    assert!(
        peak > before + (32 << 20),
        "the backlog never grew: rss before {before}, peak {peak}"
    );
    assert!(
        after < before + (peak - before) / 3,
        "rss before {before}, peak {peak}, after {after}"
    );
}

/// The depth and expression limits are the operator's: `[server] max_json_depth` and
/// `[templates] yaql_steps` change what is refused, and the refusal names the setting.
#[test]
fn depth_and_expression_limits_follow_the_configuration() {
    let dir = site("[server]\nmax_json_depth = 8\n[templates]\nyaql_steps = 1000\n");
    let server = Server::start(dir.path());
    let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
    let resp = server.post(
        "/api/v1/webhooks/creds",
        &format!("{{\"a\": {}}}", nested(8)),
    );
    assert_eq!(resp.status(), 400);
    let fault: Value = resp.json().unwrap();
    let message = fault["faultstring"].as_str().unwrap();
    assert!(
        message.contains("deeper than 8 levels") && message.contains("[server] max_json_depth"),
        "{fault}"
    );
    let resp = server.post(
        "/api/v1/webhooks/creds",
        &format!("{{\"a\": {}}}", nested(7)),
    );
    assert_eq!(resp.status(), 202);
    // `range(0, 20000)` costs 20,000 steps: over a budget of 1,000, before any item budget.
    let (status, created) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "tests.many", "parameters": {}})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let record = server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        e["status"] == "failed"
    });
    assert!(
        record["result"]
            .to_string()
            .contains("more than 1000 evaluation steps, [templates] yaql_steps"),
        "{record:#}"
    );
}

#[test]
fn a_runaway_template_in_a_rule_stops_on_its_fuel() {
    let dir = site("");
    let server = Server::start(dir.path());
    assert_eq!(server.post("/api/v1/webhooks/spin", "{}").status(), 202);
    let enforcements = server.wait_for("/api/v1/ruleenforcements?rule_ref=tests.spin", 60, |l| {
        l.as_array().unwrap().len() == 1
    });
    let reason = enforcements[0]["failure_reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("[templates] fuel"), "{enforcements:#}");
    assert_eq!(
        server.get("/api/v1/executions").as_array().unwrap().len(),
        0
    );
}

#[test]
fn runaway_workflows_fail_on_their_budgets_within_seconds() {
    let dir = site("");
    let server = Server::start(dir.path());
    for (action, budget) in [
        (
            "tests.many",
            "20000 items, over the limit of 10000 ([workflows] max_items)",
        ),
        ("tests.spin", "[workflows] max_transitions_per_event"),
    ] {
        let started = std::time::Instant::now();
        let (status, created) = server.send(
            reqwest::Method::POST,
            "/api/v1/executions",
            Some(json!({"action": action, "parameters": {}})),
        );
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap();
        let record = server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
            e["status"] == "failed"
        });
        assert!(record["result"].to_string().contains(budget), "{record:#}");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(
            server
                .get("/api/v1/executions?limit=1")
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    // None of the 20,000 items was requested.
    let all = server.get("/api/v1/executions?limit=1000");
    assert_eq!(all.as_array().unwrap().len(), 2, "{all:#}");
}

/// Unmounts a test's tmpfs when dropped.
#[cfg(target_os = "linux")]
struct Mounted(std::path::PathBuf);

#[cfg(target_os = "linux")]
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A full disk (12): writes are refused with 507, reads keep working, and once space returns
/// the server takes writes again by itself; every acknowledged webhook is stored. The data
/// directory lives on a small tmpfs (mounting needs root: CI runs as root).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        // CI runs as root: there the test must run.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run as root: a full disk is tested on a tmpfs it mounts"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let dir = site("");
    let disk = dir.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    let _unmount = Mounted(disk.clone());
    std::fs::create_dir_all(disk.join("data")).unwrap();
    std::os::unix::fs::symlink(disk.join("data"), dir.path().join("data")).unwrap();
    let server = Server::start(dir.path());
    assert_eq!(server.post("/api/v1/webhooks/creds", "{}").status(), 202);
    let mut accepted = 1;

    // Fill the disk.
    let filler = disk.join("filler");
    {
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
    }
    let body = format!("{{\"pad\": \"{}\"}}", "p".repeat(16 * 1024));
    let mut full = None;
    for _ in 0..5000 {
        let resp = server.post("/api/v1/webhooks/creds", &body);
        match resp.status().as_u16() {
            202 => accepted += 1,
            507 => {
                full = Some(resp.json::<Value>().unwrap());
                break;
            }
            503 => {}
            other => panic!("unexpected {other}: {}", resp.text().unwrap()),
        }
    }
    let full = full.expect("the disk never filled up");
    assert!(
        full["faultstring"]
            .as_str()
            .unwrap()
            .contains("no space left"),
        "{full}"
    );
    // Reads still work while the disk is full.
    for path in [
        "/api/v1/triggerinstances",
        "/api/v1/executions",
        "/api/v1/actions",
    ] {
        server.get(path);
    }
    // Space returns: writes succeed again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = server
            .post("/api/v1/webhooks/creds", "{}")
            .status()
            .as_u16();
        if status == 202 {
            accepted += 1;
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recovered: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored = total(
        &server,
        "/api/v1/triggerinstances?trigger=core.st2.webhook&limit=1",
    );
    // Every acknowledged one is there (a write that failed may still have landed).
    assert!(
        stored >= accepted,
        "stored {stored}, acknowledged {accepted}"
    );
}

#[test]
fn a_workflow_at_its_item_budget_cancels_and_stops_within_seconds() {
    let dir = site("[server]\nshutdown_timeout = \"2s\"\n");
    let server = Server::start(dir.path());
    let start = |server: &Server| {
        let (status, created) = server.send(
            reqwest::Method::POST,
            "/api/v1/executions",
            Some(json!({"action": "tests.wide", "parameters": {}})),
        );
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        server.wait_for(&format!("/api/v1/executions/{id}"), 60, |e| {
            e["status"] == "running"
        });
        id
    };
    let id = start(&server);
    let asked = std::time::Instant::now();
    let (status, body) = server.send(
        reqwest::Method::DELETE,
        &format!("/api/v1/executions/{id}"),
        None,
    );
    assert!(status < 300, "{status}: {body}");
    // It takes effect at once (nothing new starts), the API keeps answering while thousands of
    // task executions are canceled, and it ends canceled.
    let answered = std::time::Instant::now();
    server.get("/api/v1/actions?limit=1");
    assert!(
        answered.elapsed() < Duration::from_secs(5),
        "{:?}",
        answered.elapsed()
    );
    // Queued task executions are withdrawn and recorded in commits of 1,000 (11 s in a debug
    // build on 2 cores, 48 s when each was canceled in turn); the bound is generous for CI.
    let done = server.wait_for(&format!("/api/v1/executions/{id}"), 60, |e| {
        e["status"] == "canceled"
    });
    eprintln!("10,000-item workflow canceled in {:?}", asked.elapsed());
    // Every task execution ended, and none runs later: the counts stay as they are.
    let count = |status: &str| {
        total(
            &server,
            &format!("/api/v1/executions?parent={id}&status={status}&limit=1"),
        )
    };
    let ended = (count("succeeded"), count("canceled"));
    assert_eq!(ended.0 + ended.1, 10_000, "succeeded, canceled: {ended:?}");
    for status in ["requested", "scheduled", "running"] {
        assert_eq!(count(status), 0, "task executions still {status}");
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((count("succeeded"), count("canceled")), ended);
    assert_eq!(count("running"), 0);
    assert!(
        asked.elapsed() < Duration::from_secs(60),
        "cancel took {:?}: {done:#}",
        asked.elapsed()
    );
    // SIGTERM with another one running: the server is gone within seconds.
    start(&server);
    let asked = std::time::Instant::now();
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "SIGTERM took {:?}",
        asked.elapsed()
    );
}
