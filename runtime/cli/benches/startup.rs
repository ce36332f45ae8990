//! Server start benchmark: how long until `squall serve` answers its API while components are
//! still compiling (issue target: under 1 s however many are), and how long the compiles take
//! meanwhile (what a server that compiled before answering, as Squall did until the packs
//! reload change, made its API wait).
//!
//! Each round starts the real `squall` binary on a fresh data directory (cold component
//! cache) over the shipped packs plus a pack of `SQUALL_BENCH_COMPONENTS` (default 24)
//! distinct components — core's `http.wasm` with a different custom section each, so each is
//! compiled on its own — and measures: the first line on stdout (`squall: listening on`), the
//! first `200` of `GET /api/v1/packs`, an execution of `core.echo` requested at once (it waits
//! for its component), and the time until `GET /api/v1/packs/many` shows every component
//! `ready`. `SQUALL_BENCH_ROUNDS` rounds (default 3). Run: `cargo bench -p squall-cli --bench
//! startup`. Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{percentile, repo};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `bytes` with one more custom section (id 0) named `squall-bench` holding `n`: a distinct
/// component with the same behaviour.
fn variant(bytes: &[u8], n: usize) -> Vec<u8> {
    let name = b"squall-bench";
    let payload = n.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = bytes.to_vec();
    out.push(0);
    // LEB128 of the section size (small).
    let mut size = section.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&section);
    out
}

fn setup(dir: &Path, components: usize) {
    std::fs::write(
        dir.join("squall.toml"),
        format!(
            "data_dir = \"data\"\npacks_dirs = [{:?}, \"packs\"]\n",
            repo().join("packs").display().to_string()
        ),
    )
    .unwrap();
    let actions = dir.join("packs/many/actions");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::write(
        dir.join("packs/many/pack.yaml"),
        "name: many\nversion: 1.0.0\n",
    )
    .unwrap();
    let http = std::fs::read(repo().join("packs/core/actions/http.wasm")).unwrap();
    for n in 0..components {
        std::fs::write(actions.join(format!("a{n}.wasm")), variant(&http, n)).unwrap();
        std::fs::write(
            actions.join(format!("a{n}.yaml")),
            format!("name: a{n}\nrunner_type: wasm\nentry_point: a{n}.wasm\n"),
        )
        .unwrap();
    }
}

struct Round {
    listening: Duration,
    api: Duration,
    echo: Duration,
    all_ready: Duration,
}

fn round(components: usize) -> Round {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), components);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .current_dir(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("SQUALL_API_URL")
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_PACKS")
        .env_remove("SQUALL_CONFIG")
        .env("SQUALL_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening = started.elapsed();
    let url = line
        .trim()
        .strip_prefix("squall: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::new();
    let api = loop {
        if let Ok(r) = http.get(format!("{url}/api/v1/packs")).send()
            && r.status() == 200
        {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let requested = Instant::now();
    let e: serde_json::Value = http
        .post(format!("{url}/api/v1/executions"))
        .json(&serde_json::json!({"action": "core.echo", "parameters": {"message": "hi"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = e["id"].as_str().unwrap().to_string();
    let echo = loop {
        let e: serde_json::Value = http
            .get(format!("{url}/api/v1/executions/{id}"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        match e["status"].as_str() {
            Some("succeeded") => break requested.elapsed(),
            Some("failed" | "timeout") => panic!("core.echo failed: {e}"),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let all_ready = loop {
        let p: serde_json::Value = http
            .get(format!("{url}/api/v1/packs/many"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let states = p["components"].as_array().cloned().unwrap_or_default();
        assert_eq!(states.len(), components, "{p}");
        if states.iter().all(|c| c["state"] == "ready") {
            break started.elapsed();
        }
        assert!(
            !states.iter().any(|c| c["state"] == "failed"),
            "a component failed: {p}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    Round {
        listening,
        api,
        echo,
        all_ready,
    }
}

fn main() {
    let components = env_usize("SQUALL_BENCH_COMPONENTS", 24);
    let rounds = env_usize("SQUALL_BENCH_ROUNDS", 3);
    println!(
        "squall serve, cold component cache, shipped packs + {components} distinct components; {rounds} rounds"
    );
    let results: Vec<Round> = (0..rounds).map(|_| round(components)).collect();
    let show = |name: &str, pick: fn(&Round) -> Duration| {
        let mut v: Vec<Duration> = results.iter().map(pick).collect();
        v.sort();
        println!(
            "{name:<46} p50 {:>8.1} ms   max {:>8.1} ms",
            percentile(&v, 0.5).as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        );
    };
    show("listening (first stdout line)", |r| r.listening);
    show("API answering (first 200 of GET /api/v1/packs)", |r| r.api);
    show("core.echo requested at once: done after", |r| r.echo);
    show("every component ready", |r| r.all_ready);
}
