//! One conformance suite over the SDK languages: the same action and sensor, written with the
//! Rust SDK (`tests/components/conformance-*`), the Python SDK and the JavaScript SDK
//! (`tests/fixtures/conformance/packs/conformance/{actions,sensors}/{python,js}/`), built by
//! `squall pack build`, must behave identically in the real server — typed parameters, errors
//! with a result, the four log levels, the execution context, HTTP granted and refused, the
//! datastore, trigger instances from polls and webhook answers. The behaviour each case checks
//! is described in `tests/fixtures/conformance/README.md`.
//!
//! Also: components built against the released `squall:plugin@0.1.0` (an action and a sensor,
//! `tests/fixtures/plugin-0.1.0/`) still load and run on a host serving `0.1.1`.
//!
//! Needs componentize-py (PyPI) and componentize-js (npm), named by `SQUALL_COMPONENTIZE_PY` /
//! `SQUALL_COMPONENTIZE_JS` or found on `PATH`; `.ci/run` installs both and sets
//! `SQUALL_REQUIRE_COMPONENTIZE_PY=1` and `SQUALL_REQUIRE_COMPONENTIZE_JS=1`. Without them the
//! suite runs over the languages whose tool is there (Rust always), and says which it skipped.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{HttpStub, Response, SQUALL, Server, copy_dir, repo, write_squall_toml};

fn run(server: &Server, action: &str, parameters: Value) -> Value {
    server.run_to_end(action, parameters)
}

/// The languages to check, with the tools their builds need (`None`: skipped).
fn languages() -> (Vec<&'static str>, Option<PathBuf>, Option<PathBuf>) {
    let py = support::guest_tool(
        "SQUALL_COMPONENTIZE_PY",
        "componentize-py",
        "SQUALL_REQUIRE_COMPONENTIZE_PY",
        "pip install componentize-py",
    );
    let js = support::guest_tool(
        "SQUALL_COMPONENTIZE_JS",
        "componentize-js",
        "SQUALL_REQUIRE_COMPONENTIZE_JS",
        "npm install @bytecodealliance/componentize-js",
    );
    let mut langs = vec!["rust"];
    if py.is_some() {
        langs.push("python");
    }
    if js.is_some() {
        langs.push("js");
    }
    (langs, py, js)
}

/// The conformance pack in a new site, its Rust components copied in, its Python and
/// JavaScript ones built by `squall pack build` (compiled into the site's cache); HTTP to
/// `granted` allowed to the pack.
fn site(granted: &HttpStub, py: Option<&Path>, js: Option<&Path>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/conformance"), dir.path());
    let pack = dir.path().join("packs/conformance");
    for (lang, present) in [("python", py.is_some()), ("js", js.is_some())] {
        if !present {
            for kind in ["actions", "sensors"] {
                std::fs::remove_dir_all(pack.join(kind).join(lang)).unwrap();
                std::fs::remove_file(pack.join(kind).join(format!("{lang}.yaml"))).unwrap();
            }
        }
    }
    std::fs::copy(
        squall_test_components::CONFORMANCE_ACTION,
        pack.join("actions/rust.wasm"),
    )
    .unwrap();
    std::fs::copy(
        squall_test_components::CONFORMANCE_SENSOR,
        pack.join("sensors/rust.wasm"),
    )
    .unwrap();
    let host = format!("127.0.0.1:{}", granted.port);
    let yaml = std::fs::read_to_string(pack.join("pack.yaml")).unwrap();
    std::fs::write(
        pack.join("pack.yaml"),
        format!("{yaml}capabilities:\n  http: [\"{host}\"]\n"),
    )
    .unwrap();
    write_squall_toml(
        dir.path(),
        &format!(
            "[sensors]\nmin_poll_interval = \"100ms\"\n[packs.conformance]\nhttp_allow = [\"{host}\"]\n"
        ),
    );
    let mut build = Command::new(SQUALL);
    build
        .current_dir(dir.path())
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_CONFIG")
        .args(["pack", "build", "packs/conformance"]);
    if let Some(py) = py {
        build.env("SQUALL_COMPONENTIZE_PY", py);
    }
    if let Some(js) = js {
        build.env("SQUALL_COMPONENTIZE_JS", js);
    }
    let out = build.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pack build failed:\n{stderr}");
    eprintln!("{stderr}");
    // Progress per component, then its size and digest; the digests in the lock.
    let lock: Value = serde_json::from_slice(
        &std::fs::read(pack.join(".squall/components.lock")).expect("components.lock written"),
    )
    .unwrap();
    let built = usize::from(py.is_some()) * 2 + usize::from(js.is_some()) * 2;
    assert_eq!(
        lock["components"].as_array().unwrap().len(),
        built,
        "{lock:#}"
    );
    if built > 0 {
        assert!(stderr.contains(&format!("[1/{built}] ")), "{stderr}");
    }
    for c in lock["components"].as_array().unwrap() {
        let file = pack.join(c["component"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(
            c["component_sha256"].as_str().unwrap(),
            hex_sha256(&bytes),
            "{c:#}"
        );
    }
    // `pack validate` finds the build current; a source changed after it, it says so.
    let validate = || {
        Command::new(SQUALL)
            .current_dir(dir.path())
            .env_remove("SQUALL_DATA_DIR")
            .env_remove("SQUALL_CONFIG")
            .args(["pack", "validate", "packs/conformance"])
            .output()
            .unwrap()
    };
    let ok = validate();
    assert!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    if let Some(c) = lock["components"].as_array().unwrap().first() {
        let source = pack.join(c["source"].as_str().unwrap());
        let file = ["app.py", "index.js"]
            .iter()
            .map(|f| source.join(f))
            .find(|f| f.is_file())
            .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let stale = validate();
        let said = String::from_utf8_lossy(&stale.stdout).into_owned()
            + &String::from_utf8_lossy(&stale.stderr);
        assert_eq!(stale.status.code(), Some(2), "{said}");
        assert!(
            said.contains(&format!(
                "packs/conformance/{}: changed since its last build; run squall pack build \
                 packs/conformance",
                c["source"].as_str().unwrap()
            )),
            "{said}"
        );
        std::fs::write(&file, text).unwrap();
    }
    dir
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn every_sdk_language_passes_the_same_action_and_sensor_cases() {
    let (langs, py, js) = languages();
    eprintln!("conformance over: {langs:?}");
    let granted = HttpStub::start(|_| Response::json(200, &json!({"pong": true})));
    let refused = HttpStub::start(|_| Response::json(200, &json!({"never": true})));
    let dir = site(&granted, py.as_deref(), js.as_deref());
    let server = Server::start(dir.path());

    for lang in &langs {
        let action = format!("conformance.{lang}");
        let at = |what: &str| format!("{lang}: {what}");

        // Typed parameters arrive as their JSON types, unicode intact.
        let e = run(
            &server,
            &action,
            json!({"op": "echo", "text": "héllo ✓", "count": 3, "flag": true, "data": {"a": [1, 2]}}),
        );
        assert_eq!(e["status"], "succeeded", "{}: {e:#}", at("echo"));
        assert_eq!(
            e["result"],
            json!({"text": "héllo ✓", "count": 3, "flag": true, "data": {"a": [1, 2]}}),
            "{}",
            at("echo")
        );
        // Defaults from the YAML.
        let e = run(&server, &action, json!({"op": "echo"}));
        assert_eq!(
            e["result"],
            json!({"text": "", "count": 1, "flag": false, "data": {}}),
            "{}",
            at("defaults")
        );

        // A parameter of the wrong type (the YAML declares none for `count`): the SDK refuses
        // it, naming the parameter and the value.
        let e = run(&server, &action, json!({"op": "echo", "count": "three"}));
        assert_eq!(e["status"], "failed", "{}: {e:#}", at("typed"));
        let message = e["result"]["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("count") && message.contains("three"),
            "{}: {e:#}",
            at("typed")
        );

        // An error with a result: recorded as the failed execution's result.
        let e = run(&server, &action, json!({"op": "fail", "text": "x"}));
        assert_eq!(e["status"], "failed", "{}: {e:#}", at("fail"));
        assert_eq!(
            e["result"],
            json!({"code": 42, "text": "x", "error": "conformance failure"}),
            "{}",
            at("fail")
        );

        // The four levels, in order, into the execution's log.
        let e = run(&server, &action, json!({"op": "log"}));
        assert_eq!(e["status"], "succeeded", "{}: {e:#}", at("log"));
        let lines: Vec<(String, String)> = e["output"]["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["level"].as_str().unwrap().to_string(),
                    l["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("debug", "debug line"),
                ("info", "info line"),
                ("warn", "warn line"),
                ("error", "error line")
            ]
            .map(|(l, m)| (l.to_string(), m.to_string())),
            "{}",
            at("log")
        );

        // The execution's context.
        let e = run(&server, &action, json!({"op": "context"}));
        assert_eq!(
            e["result"],
            json!({
                "execution_id": e["id"],
                "action_ref": action,
                "pack": "conformance",
                "user": e["context"]["user"],
            }),
            "{}",
            at("context")
        );

        // HTTP to the granted host; the other one refused by the host and recorded.
        let e = run(
            &server,
            &action,
            json!({"op": "http", "url": format!("{}/ping", granted.url())}),
        );
        assert_eq!(e["status"], "succeeded", "{}: {e:#}", at("http"));
        assert_eq!(e["result"]["status"], 200, "{}", at("http"));
        let body: Value = serde_json::from_str(e["result"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"pong": true}), "{}", at("http"));
        if *lang == "python" {
            // Python only: the standard library's urllib.request goes over the same wasi:http
            // (the module imports it first; the generated entry imports the SDK before the
            // module, so that order does not matter).
            let e = run(
                &server,
                &action,
                json!({"op": "http", "flag": true, "url": format!("{}/ping", granted.url())}),
            );
            assert_eq!(e["status"], "succeeded", "{}: {e:#}", at("urllib"));
            assert_eq!(e["result"]["status"], 200, "{}", at("urllib"));
        }
        let e = run(
            &server,
            &action,
            json!({"op": "http", "url": format!("{}/ping", refused.url())}),
        );
        assert_eq!(e["status"], "failed", "{}: {e:#}", at("http refused"));
        let denials = e["output"]["denials"].to_string();
        assert!(
            denials.contains(&format!("127.0.0.1:{}", refused.port)),
            "{}: {e:#}",
            at("http refused")
        );
        assert!(
            e["result"]["error"]
                .as_str()
                .is_some_and(|m| m.starts_with("http: ")),
            "{}: {e:#}",
            at("http refused")
        );
    }
    assert!(
        refused.requests().is_empty(),
        "a refused host was reached: {:?}",
        refused.paths()
    );
    assert_eq!(
        granted.requests().len(),
        langs.len() + usize::from(langs.contains(&"python"))
    );

    // Sensors: each poll counts in the datastore and emits; webhooks verify, emit, answer.
    // Every instance of a language, a page (100) at a time.
    let instances = |lang: &str, source: &str| -> Vec<u64> {
        let mut n = Vec::new();
        for offset in (0..).step_by(100) {
            let page = server.get(&format!(
                "/api/v1/triggerinstances?trigger=conformance.event&limit=100&offset={offset}"
            ));
            let page = page.as_array().unwrap();
            n.extend(
                page.iter()
                    .filter(|t| t["payload"]["lang"] == lang && t["payload"]["source"] == source)
                    .map(|t| t["payload"]["n"].as_u64().unwrap()),
            );
            if page.len() < 100 {
                break;
            }
        }
        n.sort_unstable();
        n
    };
    let sensor_ref = |lang: &str| {
        let class = match lang {
            "rust" => "Rust",
            "python" => "Python",
            _ => "Js",
        };
        format!("conformance.{class}Sensor")
    };
    for lang in &langs {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while instances(lang, "poll").len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{lang}: the sensor did not poll twice: {:?} {:#}",
                instances(lang, "poll"),
                server.get(&format!("/api/v1/sensortypes/{}", sensor_ref(lang)))
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }

        let path = format!("/api/v1/webhooks/conformance/{lang}");
        let refused = server.post(&path, "{\"hello\": 1}");
        assert_eq!(refused.status(), 401, "{lang}: webhook without the header");
        assert_eq!(
            refused.json::<Value>().unwrap(),
            json!({"error": "bad header"}),
            "{lang}"
        );
        let accepted = server
            .request(reqwest::Method::POST, &path)
            .header("content-type", "application/json")
            .header("X-Conformance", "yes")
            .body("{\"hello\": 1}")
            .send()
            .unwrap();
        assert_eq!(accepted.status(), 202, "{lang}: webhook");
        assert_eq!(
            accepted.json::<Value>().unwrap(),
            json!({"seen": 12, "lang": lang}),
            "{lang}"
        );
    }
    // Stopped, so the pages hold still while they are counted.
    for lang in &langs {
        let out = Command::new(SQUALL)
            .args(["sensor", "disable", &sensor_ref(lang)])
            .env("SQUALL_API_URL", &server.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    for lang in &langs {
        // One instance per poll, counted 1, 2, 3, … in the sensor's own key.
        let polls = instances(lang, "poll");
        let expected: Vec<u64> = (1..=polls.len() as u64).collect();
        assert_eq!(polls, expected, "{lang}: the count kept in the datastore");
        assert_eq!(
            instances(lang, "webhook"),
            [12],
            "{lang}: one instance from the webhook, none from the 401"
        );
    }
}

#[test]
fn components_built_against_plugin_0_1_0_still_run() {
    let dir = tempfile::tempdir().unwrap();
    write_squall_toml(dir.path(), "[sensors]\nmin_poll_interval = \"100ms\"\n");
    let pack = support::new_pack(dir.path(), "legacy", "");
    let fixtures = repo().join("tests/fixtures/plugin-0.1.0");
    for kind in ["actions", "sensors", "triggers"] {
        std::fs::create_dir_all(pack.join(kind)).unwrap();
    }
    std::fs::copy(fixtures.join("echo.wasm"), pack.join("actions/echo.wasm")).unwrap();
    std::fs::write(
        pack.join("actions/echo.yaml"),
        "name: echo\nrunner_type: wasm\nentry_point: echo.wasm\nparameters:\n  message: {type: string, required: true}\n",
    )
    .unwrap();
    std::fs::copy(
        fixtures.join("sensor.wasm"),
        pack.join("sensors/sensor.wasm"),
    )
    .unwrap();
    std::fs::write(
        pack.join("sensors/counter.yaml"),
        "class_name: Counter\nentry_point: sensor.wasm\npoll_interval: 0.2\ntrigger_types: [legacy.tick]\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("triggers/tick.yaml"),
        "name: tick\npayload_schema:\n  type: object\n  properties: {n: {type: integer, required: true}}\n",
    )
    .unwrap();
    // The fixtures import 0.1.0's names (`types`, which no world of 0.1.1 uses), which the
    // host serves as 0.1.1.
    for (file, import) in [
        ("echo.wasm", "squall:plugin/types@0.1.0"),
        ("sensor.wasm", "squall:plugin/datastore@0.1.0"),
    ] {
        let bytes = std::fs::read(fixtures.join(file)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(import), "{file}");
        assert!(!text.contains("@0.1.1"), "{file}");
    }
    let server = Server::start(dir.path());
    let e = run(&server, "legacy.echo", json!({"message": "still here"}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["stdout"], "still here", "{e:#}");
    let ticks = server.wait_for(
        "/api/v1/triggerinstances?trigger=legacy.tick&limit=10",
        120,
        |l| l.as_array().is_some_and(|a| !a.is_empty()),
    );
    assert!(ticks[0]["payload"]["n"].as_u64().unwrap() >= 1, "{ticks:#}");
}

#[test]
fn a_new_javascript_pack_builds_installs_and_runs() {
    let (_, _, Some(js)) = languages() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stub = HttpStub::start(|_| Response::json(200, &json!({"ok": true})));
    let host = format!("127.0.0.1:{}", stub.port);
    write_squall_toml(
        dir.path(),
        &format!("[packs.acme]\nhttp_allow = [\"{host}\"]\n"),
    );
    std::fs::create_dir_all(dir.path().join("packs")).unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    let squall = |args: &[&str], url: Option<&str>| {
        let mut c = Command::new(SQUALL);
        c.current_dir(dir.path())
            .env_remove("SQUALL_API_URL")
            .env("SQUALL_COMPONENTIZE_JS", &js);
        if let Some(url) = url {
            c.args(["--api-url", url]);
        }
        c.args(args).output().unwrap()
    };
    let made = squall(
        &["pack", "new", "acme", "--lang", "js", "--dir", "src"],
        None,
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&made.stdout).trim(), "src/acme");
    let unknown = squall(
        &["pack", "new", "other", "--lang", "cobol", "--dir", "src"],
        None,
    );
    assert_eq!(unknown.status.code(), Some(2));

    // Its unit test runs with plain Node.js.
    let unit = Command::new("node")
        .current_dir(dir.path().join("src/acme"))
        .arg("--test")
        .output()
        .unwrap();
    assert!(
        unit.status.success(),
        "{}{}",
        String::from_utf8_lossy(&unit.stdout),
        String::from_utf8_lossy(&unit.stderr)
    );
    // "# pass 2" (TAP) or "ℹ pass 2" (spec), by Node's version.
    assert!(String::from_utf8_lossy(&unit.stdout).contains("pass 2"));

    // The destination this test serves instead of example.com.
    let yaml = dir.path().join("src/acme/pack.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, text.replace("example.com", &host)).unwrap();

    let server = Server::start(dir.path());
    let installed = squall(
        &["pack", "install", "src/acme", "--packs-dir", "packs"],
        Some(&server.url),
    );
    let said = String::from_utf8_lossy(&installed.stderr);
    assert!(installed.status.success(), "{said}");
    assert!(
        said.contains("actions/lookup.wasm") && said.contains("sensors/ticker.wasm"),
        "{said}"
    );
    let e = run(
        &server,
        "acme.lookup",
        json!({"host": host, "path": "/health"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"],
        json!({"status": 200, "ok": true, "server": ""})
    );
    assert_eq!(stub.paths(), ["/health"]);
    // The sensor polled once at start: tick 1 → the rule → core.echo.
    let echo = server.first_succeeded("core.echo");
    assert_eq!(echo["result"]["stdout"], "acme tick 1", "{echo:#}");
}

#[test]
fn a_build_that_never_ends_is_stopped_at_the_build_timeout() {
    let (_, Some(py), _) = languages() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_squall_toml(dir.path(), "");
    let pack = support::new_pack(dir.path(), "spin", "");
    std::fs::create_dir_all(pack.join("actions/spin")).unwrap();
    // componentize-py imports the module as it builds: this one never finishes importing.
    std::fs::write(
        pack.join("actions/spin/app.py"),
        "import squall\n\nwhile True:\n    pass\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/spin.yaml"),
        "name: spin\nrunner_type: wasm\nentry_point: spin.wasm\n",
    )
    .unwrap();
    let out = Command::new(SQUALL)
        .current_dir(dir.path())
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_CONFIG")
        .env("SQUALL_COMPONENTIZE_PY", &py)
        .args(["pack", "build", "packs/spin", "--build-timeout", "5"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("did not finish within 5 s (--build-timeout); it was stopped"),
        "{said}"
    );
    assert!(!pack.join("actions/spin.wasm").exists());
}
