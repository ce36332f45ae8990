//! End-to-end tests of the sensor container with the real `squall serve`: sensor components
//! from `tests/components/sensor` that count, loop forever, flood emits, fail, or read secrets;
//! state kept in the datastore across a kill -9; webhooks routed to a sensor; enable/disable
//! from the CLI.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{CREDENTIAL_HEADERS, SQUALL, Server, post_with_credentials, write_squall_toml};

/// `sensors/<class>.yaml` for the test sensor component of pack `pack`.
fn sensor_yaml(class: &str, extra: &str) -> String {
    format!(
        "class_name: {class}\nentry_point: test_sensor.wasm\npoll_interval: 0.2\n\
         trigger_types: [{{pack}}.tick]\n{extra}"
    )
}

/// A pack `name` with trigger types `tick` and `flood` and the given sensors.
fn write_pack(packs: &Path, name: &str, sensors: &[(&str, String)]) {
    let pack = packs.join(name);
    std::fs::create_dir_all(pack.join("sensors")).unwrap();
    std::fs::create_dir_all(pack.join("triggers")).unwrap();
    std::fs::write(pack.join("pack.yaml"), format!("name: {name}\n")).unwrap();
    for t in ["tick", "flood"] {
        std::fs::write(
            pack.join(format!("triggers/{t}.yaml")),
            format!(
                "name: {t}\npayload_schema:\n  type: object\n  properties: {{n: {{type: integer, required: true}}}}\n"
            ),
        )
        .unwrap();
    }
    std::fs::copy(
        squall_test_components::TEST_SENSOR,
        pack.join("sensors/test_sensor.wasm"),
    )
    .unwrap();
    for (class, yaml) in sensors {
        std::fs::write(
            pack.join(format!("sensors/{class}.yaml")),
            yaml.replace("{pack}", name),
        )
        .unwrap();
    }
}

fn site(packs: &[(&str, Vec<(&str, String)>)], config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, sensors) in packs {
        write_pack(&dir.path().join("packs"), name, sensors);
    }
    // Polls every 0.2 s keep the tests short: under the default 1 s floor.
    let floor = if config.contains("[sensors]") {
        ""
    } else {
        "[sensors]\nmin_poll_interval = \"100ms\"\n"
    };
    write_squall_toml(dir.path(), &format!("{floor}{config}"));
    dir
}

fn ticks(server: &Server, trigger: &str) -> Vec<u64> {
    let list = server.get(&format!(
        "/api/v1/triggerinstances?trigger={trigger}&limit=1000"
    ));
    let mut n: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["payload"]["n"].as_u64().unwrap())
        .collect();
    n.sort_unstable();
    n
}

fn sensor(server: &Server, reference: &str) -> Value {
    server.get(&format!("/api/v1/sensortypes/{reference}"))
}

fn squall(server: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(SQUALL)
        .args(args)
        .env("SQUALL_API_URL", &server.url)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn hostile_sensors_are_contained_and_backed_off_while_others_run() {
    let dir = site(
        &[(
            "probe",
            vec![
                ("Counter", sensor_yaml("Counter", "")),
                (
                    "Loop",
                    sensor_yaml("Loop", "limits: {timeout: 300ms, fuel: 100000000000}\n"),
                ),
                (
                    "Flood",
                    "class_name: Flood\nentry_point: test_sensor.wasm\npoll_interval: 0.2\n\
                     trigger_types: [probe.tick]\nmax_emits: 5\n"
                        .to_string(),
                ),
                ("Fail", sensor_yaml("Fail", "")),
                (
                    "LoopFuel",
                    sensor_yaml("LoopFuel", "limits: {fuel: 1000000, timeout: 10s}\n"),
                ),
            ],
        )],
        "",
    );
    let server = Server::start(dir.path());
    // The well-behaved sensor keeps ticking while the others fail.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ticks(&server, "probe.tick").len() < 8 {
        assert!(
            Instant::now() < deadline,
            "{:#}",
            sensor(&server, "probe.Counter")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let looping = sensor(&server, "probe.Loop");
    assert_eq!(looping["status"]["state"], "backing_off", "{looping:#}");
    assert!(
        looping["status"]["last_error"]
            .as_str()
            .unwrap()
            .contains("timeout of 0.3s exceeded"),
        "{looping:#}"
    );
    let burn = sensor(&server, "probe.LoopFuel");
    assert!(
        burn["status"]["last_error"]
            .as_str()
            .unwrap()
            .contains("fuel limit of 1000000 units exhausted"),
        "{burn:#}"
    );
    let flood = sensor(&server, "probe.Flood");
    assert!(
        flood["status"]["last_error"]
            .as_str()
            .unwrap()
            .contains("emit limit of 5"),
        "{flood:#}"
    );
    let failing = sensor(&server, "probe.Fail");
    assert_eq!(
        failing["status"]["last_error"], "the outside system is down",
        "{failing:#}"
    );
    // Backed off: far fewer calls than the healthy sensor over the same time.
    let healthy_calls = sensor(&server, "probe.Counter")["status"]["calls"]
        .as_u64()
        .unwrap();
    let failing_calls = failing["status"]["calls"].as_u64().unwrap();
    assert!(
        failing_calls * 2 < healthy_calls,
        "failing sensor polled {failing_calls} times, healthy one {healthy_calls}"
    );
    assert!(failing["status"]["consecutive_failures"].as_u64().unwrap() >= 2);
    // Nothing the flooding sensor emitted was kept: every tick is the counter's, each once.
    let n = ticks(&server, "probe.tick");
    let expected: Vec<u64> = (1..=n.len() as u64).collect();
    assert_eq!(
        n, expected,
        "every counter value exactly once, nothing else"
    );
    // The server still runs actions.
    let (status, _) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "core.echo", "parameters": {"message": "still here"}})),
    );
    assert_eq!(status, 201);
    // The CLI shows the sensors and their state.
    let (ok, out) = squall(&server, &["sensor", "list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("probe.Loop") && out.contains("backing_off"),
        "{out}"
    );
    let (ok, out) = squall(&server, &["sensor", "get", "probe.Fail"]);
    assert!(ok, "{out}");
    assert!(out.contains("the outside system is down"), "{out}");
}

#[test]
fn sensor_state_survives_kill_9_without_reemitting_or_skipping() {
    let dir = site(
        &[("probe", vec![("Counter", sensor_yaml("Counter", ""))])],
        "",
    );
    for round in 1..=3u64 {
        let server = Server::start(dir.path());
        let before = ticks(&server, "probe.tick").len();
        let deadline = Instant::now() + Duration::from_secs(30);
        while ticks(&server, "probe.tick").len() < before + 3 {
            assert!(Instant::now() < deadline, "round {round}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server.kill_9();
    }
    let server = Server::start(dir.path());
    let n = ticks(&server, "probe.tick");
    let expected: Vec<u64> = (1..=n.len() as u64).collect();
    assert_eq!(
        n, expected,
        "each counter value exactly once across restarts"
    );
    assert!(n.len() >= 9);
    // The state is the pack-local key, visible to operators.
    let key = server.get("/api/v1/keys/probe:n");
    assert!(key["value"].as_str().unwrap().parse::<u64>().unwrap() >= n.len() as u64);
}

#[test]
fn webhooks_reach_the_sensor_and_disable_takes_effect_at_once() {
    let hook = "class_name: Hook\nentry_point: test_sensor.wasm\npoll_interval: 0\n\
                webhooks: [probe/in]\ntrigger_types: [{pack}.tick]\n"
        .to_string();
    let dir = site(&[("probe", vec![("Hook", hook)])], "");
    let server = Server::start(dir.path());
    let resp = server.post("/api/v1/webhooks/probe/in", "hello");
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(resp.json::<Value>().unwrap(), json!({"seen": 5}));
    assert_eq!(ticks(&server, "probe.tick"), vec![5]);

    // Credentials never reach the sensor (SECURITY.md; as the rule path, tests/hardening.rs):
    // the component is handed the other headers only.
    let resp = post_with_credentials(
        &server,
        "/api/v1/webhooks/probe/in",
        &[("x-echo-headers", "1")],
    );
    assert_eq!(resp.status().as_u16(), 202);
    let seen = resp.json::<Value>().unwrap();
    let names: Vec<&str> = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.contains(&"x-github-event"), "{names:?}");
    for (credential, _) in CREDENTIAL_HEADERS {
        let credential = credential.to_ascii_lowercase();
        assert!(
            !names.contains(&credential.as_str()),
            "{credential} reached the sensor: {names:?}"
        );
    }
    assert_eq!(ticks(&server, "probe.tick"), vec![2, 5]);

    let (ok, out) = squall(&server, &["sensor", "disable", "probe.Hook"]);
    assert!(ok, "{out}");
    let resp = server.post("/api/v1/webhooks/probe/in", "again");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(ticks(&server, "probe.tick"), vec![2, 5]);
    assert_eq!(sensor(&server, "probe.Hook")["status"]["state"], "disabled");

    // Kept across a restart.
    server.terminate();
    let server = Server::start(dir.path());
    assert_eq!(sensor(&server, "probe.Hook")["enabled"], false);
    let (ok, out) = squall(&server, &["sensor", "enable", "probe.Hook"]);
    assert!(ok, "{out}");
    let resp = server.post("/api/v1/webhooks/probe/in", "back");
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(ticks(&server, "probe.tick"), vec![2, 4, 5]);
}

#[test]
fn a_sensor_reads_a_secret_only_when_its_pack_is_granted_it() {
    let dir = site(
        &[
            ("granted", vec![("Secret", sensor_yaml("Secret", ""))]),
            ("other", vec![("Secret", sensor_yaml("Secret", ""))]),
        ],
        "[packs.granted]\nsecret_keys = [\"secret\"]\n",
    );
    let server = Server::start(dir.path());
    let (status, body) = server.send(
        reqwest::Method::PUT,
        "/api/v1/keys/secret",
        Some(json!({"name": "secret", "value": "hunter2", "secret": true})),
    );
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ticks(&server, "granted.tick").contains(&7) {
        assert!(
            Instant::now() < deadline,
            "granted pack never read the secret"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = server.wait_for("/api/v1/sensortypes/other.Secret", 30, |s| {
        s["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not granted"))
    });
    assert_eq!(refused["status"]["state"], "backing_off");
    assert!(!ticks(&server, "other.tick").contains(&7));
}

#[test]
fn a_pack_cannot_read_another_packs_pack_local_keys() {
    let dir = site(
        &[
            ("victim", vec![("Counter", sensor_yaml("Counter", ""))]),
            ("evil", vec![("Secret", sensor_yaml("Secret", ""))]),
        ],
        "",
    );
    // The evil pack's sensor asks for the victim's pack-local counter `victim:n`.
    std::fs::create_dir_all(dir.path().join("configs")).unwrap();
    std::fs::write(dir.path().join("configs/evil.yaml"), "key: \"victim:n\"\n").unwrap();
    let server = Server::start(dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .send(reqwest::Method::GET, "/api/v1/keys/victim:n", None)
        .0
        != 200
    {
        assert!(Instant::now() < deadline, "the victim never wrote its key");
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = server.wait_for("/api/v1/sensortypes/evil.Secret", 30, |s| {
        s["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("a local key of pack"))
    });
    assert_eq!(refused["status"]["state"], "backing_off", "{refused:#}");
    assert!(ticks(&server, "evil.tick").is_empty());
}

#[test]
fn sensor_quotas_hold_per_pack_and_minute() {
    let dir = site(
        &[("burst", vec![("Burst", sensor_yaml("Burst", ""))])],
        "[sensors]\nmin_poll_interval = \"100ms\"\nmax_emits_per_minute = 250\n",
    );
    let server = Server::start(dir.path());
    // 100 per poll against 250 per minute: two polls pass, the third is refused whole.
    let refused = server.wait_for("/api/v1/sensortypes/burst.Burst", 30, |s| {
        s["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("max_emits_per_minute"))
    });
    assert_eq!(refused["status"]["state"], "backing_off", "{refused:#}");
    let kept = ticks(&server, "burst.tick");
    assert_eq!(kept.len(), 200, "whole calls only: {kept:?}");
}

#[test]
fn an_emit_over_max_payload_fails_the_call() {
    let dir = site(
        &[("big", vec![("Counter", sensor_yaml("Counter", ""))])],
        "[sensors]\nmin_poll_interval = \"100ms\"\nmax_payload = \"6B\"\n",
    );
    let server = Server::start(dir.path());
    // {"n":1} is 7 bytes, over a 6-byte max_payload.
    let big = server.wait_for("/api/v1/sensortypes/big.Counter", 30, |s| {
        s["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("[sensors] max_payload"))
    });
    assert_eq!(big["status"]["emitted"], 0, "{big:#}");
    assert!(ticks(&server, "big.tick").is_empty());
    // Nothing the failed calls wrote was kept either.
    assert_eq!(
        server
            .send(reqwest::Method::GET, "/api/v1/keys/big:n", None)
            .0,
        404
    );
}

#[test]
fn datastore_writes_and_poll_intervals_are_bounded() {
    let dir = site(
        &[("state", vec![("Counter", sensor_yaml("Counter", ""))])],
        "[sensors]\nmax_state_bytes_per_call = \"1B\"\n",
    );
    let server = Server::start(dir.path());
    let sensor = server.wait_for("/api/v1/sensortypes/state.Counter", 30, |s| {
        s["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("max_state_bytes_per_call"))
    });
    // Asked for 0.2 s, raised to the default floor of 1 s.
    assert_eq!(sensor["poll_interval"], 1.0, "{sensor:#}");
    assert!(ticks(&server, "state.tick").is_empty());
    assert_eq!(
        server
            .send(reqwest::Method::GET, "/api/v1/keys/state:n", None)
            .0,
        404
    );
}
