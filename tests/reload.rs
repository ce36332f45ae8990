//! `squall pack register` / `POST /api/v1/packs/register` / SIGHUP: packs reloaded in a running
//! server, atomically, under load; and the API answering while components compile.
//!
//! The request and answer follow StackStorm's `POST /api/v1/packs/register`
//! (st2api/controllers/v1/packs.py, `PackRegisterController`: body `{packs, types,
//! fail_on_failure}`, counts per content type, `Pack "x" not found on disk`).

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Server, repo, write_squall_toml};

/// Version 1 of `live.version`: core's echo component, `message` defaulting to `v1` (its
/// result's stdout is `v1`).
fn write_v1(pack: &Path) {
    let actions = pack.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::copy(
        repo().join("packs/core/actions/echo.wasm"),
        actions.join("version.wasm"),
    )
    .unwrap();
    std::fs::write(
        actions.join("version.yaml"),
        "name: version\nrunner_type: wasm\nentry_point: version.wasm\nparameters:\n  message:\n    type: string\n    default: v1\n",
    )
    .unwrap();
}

/// Version 2: the test component echoing its parameters, `version` defaulting to `v2` (its
/// result is `{"mode": "echo", "version": "v2"}`). Version 1's metadata with this component
/// would answer `{"message": "v1"}`; this metadata with version 1's component would fail
/// (`message` is required there): a half-loaded pack shows.
fn write_v2(pack: &Path) {
    let actions = pack.join("actions");
    std::fs::copy(
        squall_test_components::TEST_HOSTILE,
        actions.join("version.wasm"),
    )
    .unwrap();
    std::fs::write(
        actions.join("version.yaml"),
        "name: version\nrunner_type: wasm\nentry_point: version.wasm\nparameters:\n  mode:\n    type: string\n    default: echo\n  version:\n    type: string\n    default: v2\n",
    )
    .unwrap();
}

fn live_pack(dir: &Path) -> std::path::PathBuf {
    write_squall_toml(dir, "");
    let pack = support::new_pack(dir, "live", "version: 1.0.0\n");
    write_v1(&pack);
    pack
}

/// Waits until every component of `pack` is compiled (the server compiles in the background).
fn wait_compiled(server: &Server, pack: &str) -> Value {
    server.wait_for(&format!("/api/v1/packs/{pack}"), 120, |p| {
        p["components"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["state"] == "ready"))
    })
}

fn register(server: &Server, body: Value) -> (u16, Value) {
    server.send(reqwest::Method::POST, "/api/v1/packs/register", Some(body))
}

/// Requests an execution (`{"action", "parameters"?}`), asserting the `201`; returns it.
fn request(server: &Server, body: Value) -> Value {
    let (status, e) = server.send(reqwest::Method::POST, "/api/v1/executions", Some(body));
    assert_eq!(status, 201, "{e}");
    e
}

/// Waits until the execution `e` has completed; returns it.
fn finished(server: &Server, e: &Value) -> Value {
    server.wait_for(
        &format!("/api/v1/executions/{}", e["id"].as_str().unwrap()),
        120,
        |e| {
            e["status"].as_str().is_some_and(|s| {
                ["succeeded", "failed", "timeout", "canceled", "abandoned"].contains(&s)
            })
        },
    )
}

/// Which version an execution ran, from its parameters and its result; panics on any mix.
fn version_of(e: &Value) -> &'static str {
    assert_eq!(e["status"], "succeeded", "{e:#}");
    if e["parameters"]["message"] == "v1" {
        assert_eq!(
            e["result"]["stdout"], "v1",
            "v1 metadata ran another component: {e:#}"
        );
        "v1"
    } else {
        assert_eq!(e["parameters"]["version"], "v2", "{e:#}");
        assert_eq!(
            e["result"],
            json!({"mode": "echo", "version": "v2"}),
            "v2 metadata ran another component: {e:#}"
        );
        "v2"
    }
}

#[test]
fn register_switches_versions_under_load_without_losing_or_mixing_an_execution() {
    let dir = tempfile::tempdir().unwrap();
    let pack = live_pack(dir.path());
    let server = Arc::new(Server::start(dir.path()));
    let e = request(&server, json!({"action": "live.version"}));
    let first = server.wait_for(
        &format!("/api/v1/executions/{}", e["id"].as_str().unwrap()),
        60,
        |e| e["status"] == "succeeded",
    );
    assert_eq!(version_of(&first), "v1");

    // Load: two clients requesting executions back to back while the pack flips between
    // versions five times.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, e) = server.send(
                        reqwest::Method::POST,
                        "/api/v1/executions",
                        Some(json!({"action": "live.version"})),
                    );
                    assert_eq!(status, 201, "{e}");
                    ids.push(e["id"].as_str().unwrap().to_string());
                }
                ids
            })
        })
        .collect();
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        if round % 2 == 0 {
            write_v2(&pack);
        } else {
            write_v1(&pack);
        }
        let (status, registered) = register(&server, json!({"packs": ["live"]}));
        assert_eq!(status, 200, "{registered}");
        assert_eq!(registered["actions"], 1, "{registered}");
        let shown = server.get("/api/v1/packs/live");
        assert_eq!(shown["generation"], round + 2, "{shown:#}");
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let ids: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(ids.len() >= 20, "only {} executions under load", ids.len());
    // Every execution requested finishes, each on one whole version; both versions ran.
    let mut seen = std::collections::BTreeMap::new();
    for id in &ids {
        let e = server.wait_for(&format!("/api/v1/executions/{id}"), 120, |e| {
            e["status"].as_str().is_some_and(|s| {
                ["succeeded", "failed", "timeout", "canceled", "abandoned"].contains(&s)
            })
        });
        *seen.entry(version_of(&e)).or_insert(0) += 1;
    }
    assert!(
        seen.contains_key("v1") && seen.contains_key("v2"),
        "{seen:?}"
    );
    // The last version written (v2 after five flips) is what runs now.
    let e = request(&server, json!({"action": "live.version"}));
    let last = server.wait_for(
        &format!("/api/v1/executions/{}", e["id"].as_str().unwrap()),
        60,
        |e| e["status"] == "succeeded",
    );
    assert_eq!(version_of(&last), "v2");
}

#[test]
fn a_broken_new_version_is_refused_naming_the_problem_and_the_old_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pack = live_pack(dir.path());
    let server = Server::start(dir.path());
    let generation = wait_compiled(&server, "live")["generation"].clone();

    // A metadata problem: refused, the file and field named.
    std::fs::write(
        pack.join("actions/version.yaml"),
        "name: version\nrunner_type: pythn\nentry_point: version.wasm\n",
    )
    .unwrap();
    let (status, answer) = register(&server, json!({}));
    assert_eq!(status, 400, "{answer}");
    let fault = answer["faultstring"].as_str().unwrap();
    assert!(
        fault.contains("previous one keeps serving")
            && fault.contains("live/actions/version.yaml")
            && fault.contains("runner_type"),
        "{fault}"
    );

    // A component that does not load: refused, the file named.
    write_v1(&pack);
    std::fs::write(
        pack.join("actions/version.wasm"),
        b"\0asm\x0d\0\x01\0garbage",
    )
    .unwrap();
    let (status, answer) = register(&server, json!({"packs": ["live"]}));
    assert_eq!(status, 400, "{answer}");
    let fault = answer["faultstring"].as_str().unwrap();
    assert!(fault.contains("live/actions/version.wasm"), "{fault}");

    // A pack that is not there, and an unknown content type: st2's refusals.
    let (status, answer) = register(&server, json!({"packs": ["gone"]}));
    assert_eq!(
        (status, answer["faultstring"].as_str()),
        (400, Some("Pack \"gone\" not found on disk"))
    );
    let (status, answer) = register(&server, json!({"types": ["actoins"]}));
    assert_eq!(status, 400, "{answer}");

    // The loaded version still serves (its component was compiled before the file changed).
    assert_eq!(server.get("/api/v1/packs/live")["generation"], generation);
    let e = request(&server, json!({"action": "live.version"}));
    let done = server.wait_for(
        &format!("/api/v1/executions/{}", e["id"].as_str().unwrap()),
        60,
        |e| e["status"] == "succeeded",
    );
    assert_eq!(version_of(&done), "v1");

    // Fixed on disk: SIGHUP picks it up.
    write_v2(&pack);
    let pid = server.pid();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.get("/api/v1/packs/live")["generation"] == generation {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the packs");
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = request(&server, json!({"action": "live.version"}));
    let done = server.wait_for(
        &format!("/api/v1/executions/{}", e["id"].as_str().unwrap()),
        60,
        |e| e["status"] == "succeeded",
    );
    assert_eq!(version_of(&done), "v2");
}

#[test]
fn squall_pack_register_prints_what_was_registered() {
    let dir = tempfile::tempdir().unwrap();
    live_pack(dir.path());
    let server = Server::start(dir.path());
    let (code, out, err) = squall(dir.path(), &server, &["pack", "register", "live", "--json"]);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown,
        json!({"runners": 12, "actions": 1, "triggers": 0, "sensors": 0, "rules": 0,
               "rule_types": 2, "aliases": 0, "policy_types": 3, "policies": 0, "configs": 0})
    );
    let (code, _, err) = squall(dir.path(), &server, &["pack", "register", "gone"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim(), "error: Pack \"gone\" not found on disk");
}

/// `bytes` (a component) with one more custom section holding `n`: a distinct component (its
/// own digest, compiled on its own) that behaves the same.
fn variant(bytes: &[u8], n: u8) -> Vec<u8> {
    let name = b"squall-test";
    let mut out = bytes.to_vec();
    // Section id 0 (custom), size, name length, name, one byte of payload.
    out.extend_from_slice(&[0, (name.len() + 2) as u8, name.len() as u8]);
    out.extend_from_slice(name);
    out.push(n);
    out
}

#[test]
fn the_api_answers_while_components_compile_and_an_execution_waits_for_its_component() {
    let dir = tempfile::tempdir().unwrap();
    write_squall_toml(dir.path(), "");
    let pack = support::new_pack(dir.path(), "many", "version: 1.0.0\n");
    let actions = pack.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    let echo = std::fs::read(repo().join("packs/core/actions/echo.wasm")).unwrap();
    for n in 0..6u8 {
        std::fs::write(actions.join(format!("a{n}.wasm")), variant(&echo, n)).unwrap();
        std::fs::write(
            actions.join(format!("a{n}.yaml")),
            format!("name: a{n}\nrunner_type: wasm\nentry_point: a{n}.wasm\nparameters:\n  message:\n    type: string\n    default: from a{n}\n"),
        )
        .unwrap();
    }
    // A fresh data directory: nothing is in the component cache, every component compiles.
    let server = Server::start(dir.path());
    let first = server.get("/api/v1/packs/many");
    let states: Vec<&str> = first["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 6, "{first:#}");
    assert!(
        states.iter().any(|s| *s == "waiting" || *s == "compiling"),
        "the API answered only after compiling: {first:#}"
    );
    // Showing an action does not wait for its component either.
    let shown = server.get("/api/v1/actions/many.a5");
    assert!(
        shown["component"]["loads"].is_null()
            && ["waiting", "compiling"].contains(&shown["component"]["state"].as_str().unwrap()),
        "{shown:#}"
    );
    // An execution needing a component still compiling (the last of the pack, behind the
    // others and core's) waits for it, then runs.
    let e = request(&server, json!({"action": "many.a5"}));
    let done = server.wait_for(
        &format!("/api/v1/executions/{}", e["id"].as_str().unwrap()),
        120,
        |e| e["status"] != "requested" && e["status"] != "scheduled" && e["status"] != "running",
    );
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["result"]["stdout"], "from a5");
    // Then everything is ready, each with its digest and compile time.
    let ready = wait_compiled(&server, "many");
    for c in ready["components"].as_array().unwrap() {
        assert_eq!(c["sha256"].as_str().unwrap().len(), 64, "{c}");
        assert!(c["ms"].is_u64(), "{c}");
    }
    let shown = server.get("/api/v1/actions/many.a5");
    assert_eq!(shown["component"]["loads"], true, "{shown:#}");
}

/// Runs `squall --api-url <server> <args>` in `dir`; returns (exit code, stdout, stderr).
fn squall(dir: &Path, server: &Server, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(support::SQUALL)
        .current_dir(dir)
        .env_remove("SQUALL_API_URL")
        .args(["--api-url", &server.url])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_version(server: &Server) -> Value {
    let e = request(server, json!({"action": "live.version"}));
    finished(server, &e)
}

#[test]
fn pack_install_switches_versions_rolls_back_and_uninstalls_with_the_server_reloading() {
    let dir = tempfile::tempdir().unwrap();
    write_squall_toml(dir.path(), "");
    std::fs::create_dir_all(dir.path().join("packs")).unwrap();
    let src = dir.path().join("src/live");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("pack.yaml"), "name: live\nversion: 1.0.0\n").unwrap();
    write_v1(&src);
    let server = Server::start(dir.path());
    let install = ["pack", "install", "src/live", "--packs-dir", "packs"];

    let (code, out, err) = squall(dir.path(), &server, &install);
    assert_eq!(code, 0, "{err}");
    let v1 = out.trim().strip_prefix("live ").unwrap().to_string();
    assert_eq!(v1.len(), 16, "{out}");
    assert!(
        err.contains(&format!("live: version {v1} serving")),
        "{err}"
    );
    let first = run_version(&server);
    assert_eq!(version_of(&first), "v1");
    assert_eq!(
        server.get("/api/v1/packs/live")["installed_version"],
        v1.as_str()
    );

    write_v2(&src);
    let (code, out, err) = squall(dir.path(), &server, &install);
    assert_eq!(code, 0, "{err}");
    let v2 = out.trim().strip_prefix("live ").unwrap().to_string();
    assert_ne!(v1, v2);
    let second = run_version(&server);
    assert_eq!(version_of(&second), "v2");
    // Each execution records the digest of the component it ran.
    assert_ne!(
        first["usage"]["component_sha256"], second["usage"]["component_sha256"],
        "{second:#}"
    );

    // Back to v1 from the store, and forward again: nothing rebuilt, the server follows.
    let (code, out, err) = squall(
        dir.path(),
        &server,
        &["pack", "rollback", "live", "--packs-dir", "packs"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, format!("live {v1}").as_str()),
        "{err}"
    );
    assert_eq!(version_of(&run_version(&server)), "v1");
    let (code, out, err) = squall(dir.path(), &server, &install);
    assert_eq!(
        (code, out.trim()),
        (0, format!("live {v2}").as_str()),
        "{err}"
    );
    assert!(err.contains("already in the store"), "{err}");
    assert_eq!(version_of(&run_version(&server)), "v2");

    // A version that does not validate is not installed; v2 keeps serving.
    std::fs::write(
        src.join("actions/version.yaml"),
        "name: version\nrunner_type: pythn\n",
    )
    .unwrap();
    let (code, _, err) = squall(dir.path(), &server, &install);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("version.yaml") && err.contains("runner_type"),
        "{err}"
    );
    assert_eq!(
        server.get("/api/v1/packs/live")["installed_version"],
        v2.as_str()
    );

    // The operator's own pack directory is never replaced.
    let own = support::new_pack(dir.path(), "own", "version: 1.0.0\n");
    let other = dir.path().join("src/own");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(own.join("pack.yaml"), other.join("pack.yaml")).unwrap();
    let (code, _, err) = squall(
        dir.path(),
        &server,
        &["pack", "install", "src/own", "--packs-dir", "packs"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("was not installed by `squall pack install`"),
        "{err}"
    );

    // Uninstalled: gone from the server, its versions kept.
    let (code, _, err) = squall(
        dir.path(),
        &server,
        &["pack", "uninstall", "live", "--packs-dir", "packs"],
    );
    assert_eq!(code, 0, "{err}");
    let (status, _) = server.send(reqwest::Method::GET, "/api/v1/actions/live.version", None);
    assert_eq!(status, 404);
    assert!(dir.path().join(format!("data/packs/live/{v1}")).is_dir());
}

#[test]
fn pack_install_takes_a_git_url_with_a_ref() {
    let dir = tempfile::tempdir().unwrap();
    write_squall_toml(dir.path(), "");
    std::fs::create_dir_all(dir.path().join("packs")).unwrap();
    let repo_dir = dir.path().join("upstream");
    std::fs::create_dir_all(&repo_dir).unwrap();
    std::fs::write(repo_dir.join("pack.yaml"), "name: live\nversion: 1.0.0\n").unwrap();
    write_v1(&repo_dir);
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(&repo_dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "v1"]);
    git(&["tag", "v1"]);
    write_v2(&repo_dir);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "v2"]);
    let server = Server::start(dir.path());
    let url = format!("file://{}", repo_dir.display());
    let (code, _, err) = squall(
        dir.path(),
        &server,
        &[
            "pack",
            "install",
            &format!("{url}=v1"),
            "--packs-dir",
            "packs",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(version_of(&run_version(&server)), "v1");
    let (code, _, err) = squall(
        dir.path(),
        &server,
        &["pack", "install", &url, "--packs-dir", "packs"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(version_of(&run_version(&server)), "v2");
    let (code, _, err) = squall(
        dir.path(),
        &server,
        &[
            "pack",
            "install",
            "file:///nonexistent/repo",
            "--packs-dir",
            "packs",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("git clone file:///nonexistent/repo failed"),
        "{err}"
    );
}

/// An Orquesta workflow `live.flow`: `first` pauses 2 s, then `second` echoes `word`; its
/// output is `{"said": <second's stdout>}`.
fn write_flow(pack: &Path, first: &str, second: &str, word: &str) {
    std::fs::create_dir_all(pack.join("actions/workflows")).unwrap();
    std::fs::write(
        pack.join("actions/flow.yaml"),
        "name: flow\nrunner_type: orquesta\nentry_point: workflows/flow.yaml\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/workflows/flow.yaml"),
        format!(
            "version: 1.0\ntasks:\n  {first}:\n    action: core.pause max_pause=2\n    next:\n      - when: <% succeeded() %>\n        do: {second}\n  {second}:\n    action: core.echo message={word}\n    next:\n      - when: <% succeeded() %>\n        publish:\n          - said: <% result().stdout %>\noutput:\n  - said: <% ctx(said) %>\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_workflow_running_across_a_reload_finishes_on_the_definition_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let pack = live_pack(dir.path());
    write_flow(&pack, "first", "second", "before");
    let server = Server::start(dir.path());
    let e = request(&server, json!({"action": "live.flow"}));
    let running = e["id"].as_str().unwrap().to_string();
    server.wait_for(&format!("/api/v1/executions/{running}"), 60, |e| {
        e["status"] == "running"
    });
    // While `first` pauses: the tasks renamed and the word changed.
    write_flow(&pack, "one", "two", "after");
    let (status, registered) = register(&server, json!({"packs": ["live"]}));
    assert_eq!(status, 200, "{registered}");
    let done = server.wait_for(&format!("/api/v1/executions/{running}"), 120, |e| {
        e["status"] != "running" && e["status"] != "requested" && e["status"] != "scheduled"
    });
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        done["result"]["output"],
        json!({"said": "before"}),
        "{done:#}"
    );
    // The next run is the new definition.
    let e = request(&server, json!({"action": "live.flow"}));
    let next = finished(&server, &e);
    assert_eq!(next["status"], "succeeded", "{next:#}");
    assert_eq!(
        next["result"]["output"],
        json!({"said": "after"}),
        "{next:#}"
    );
}

/// An ActionChain `live.chain`: `first` pauses 2 s, then `second` echoes `word`.
fn write_chain(pack: &Path, first: &str, second: &str, word: &str) {
    std::fs::create_dir_all(pack.join("actions/chains")).unwrap();
    std::fs::write(
        pack.join("actions/chain.yaml"),
        "name: chain\nrunner_type: action-chain\nentry_point: chains/chain.yaml\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/chains/chain.yaml"),
        format!(
            "chain:\n  - name: {first}\n    ref: core.pause\n    parameters:\n      max_pause: 2\n    on-success: {second}\n  - name: {second}\n    ref: core.echo\n    parameters:\n      message: {word}\n"
        ),
    )
    .unwrap();
}

#[test]
fn an_action_chain_running_across_a_reload_finishes_on_the_definition_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let pack = live_pack(dir.path());
    write_chain(&pack, "first", "second", "before");
    let server = Server::start(dir.path());
    let e = request(&server, json!({"action": "live.chain"}));
    let running = e["id"].as_str().unwrap().to_string();
    server.wait_for(&format!("/api/v1/executions?parent={running}"), 60, |l| {
        l.as_array().is_some_and(|l| !l.is_empty())
    });
    write_chain(&pack, "one", "two", "after");
    let (status, registered) = register(&server, json!({"packs": ["live"]}));
    assert_eq!(status, 200, "{registered}");
    let done = server.wait_for(&format!("/api/v1/executions/{running}"), 120, |e| {
        e["status"] != "running" && e["status"] != "requested" && e["status"] != "scheduled"
    });
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let children = server.get(&format!("/api/v1/executions?parent={running}"));
    let echoed: Vec<&Value> = children
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"]["ref"] == "core.echo")
        .collect();
    assert_eq!(echoed.len(), 1, "{children:#}");
    assert_eq!(echoed[0]["result"]["stdout"], "before", "{children:#}");
}
