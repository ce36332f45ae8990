//! The same action in each SDK language: what it costs to build, load and run.
//!
//! The conformance action (`tests/fixtures/conformance/README.md`) in Rust
//! (`tests/components/conformance-action`), Python and JavaScript, per language:
//! 1. component size, and build time: `squall pack build` for Python and JavaScript
//!    (componentize-py / componentize-js; the compile into the cache reported apart), for Rust
//!    `cargo build --release --target wasm32-wasip2` after touching the source, dependencies
//!    already built (an author's loop; the settings squall-plugin-build gives guests);
//! 2. the first run after the build (component loaded from the cache the build filled,
//!    instantiated, run), through `Runner::run` with a durable redb store;
//! 3. warm runs, one at a time: `op: echo` (no I/O) and `op: http` (one GET to a loopback
//!    server, granted) — latency percentiles and fuel per run.
//!
//! Python and JavaScript need componentize-py / componentize-js (`SQUALL_COMPONENTIZE_PY`,
//! `SQUALL_COMPONENTIZE_JS`, or on `PATH`); a language whose tool is missing is skipped, said
//! so. Run: `cargo bench -p squall-cli --bench languages` (`SQUALL_BENCH_RUNS`, default 200).
//! Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use serde_json::{Map, Value, json};
use squall_core::{Config, ExecutionStatus, PackSet, Ref};
use squall_server::{Bus, Registry, Runner};
use squall_store::RedbStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::percentile;

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let named = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    std::process::Command::new(&named)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(named)
}

/// `(built in, compiled in)` seconds of `component` from `squall pack build`'s progress lines
/// (`[2/4] actions/python.wasm: 19.6 MB, sha256 …, built in 5.4 s, compiled in 19.9 s`).
fn build_times(stderr: &str, component: &str) -> (f64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("] {component}:")))
        .unwrap_or_else(|| panic!("no progress line for {component} in:\n{stderr}"));
    let secs = |after: &str| -> f64 {
        line.split(after)
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (secs("built in "), secs("compiled in "))
}

fn main() {
    let runs: usize = std::env::var("SQUALL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let py = tool("SQUALL_COMPONENTIZE_PY", "componentize-py");
    let js = tool("SQUALL_COMPONENTIZE_JS", "componentize-js");
    let scratch = tempfile::tempdir().unwrap();
    let site = scratch.path();
    support::copy_tree(&support::repo().join("tests/fixtures/conformance"), site);
    let pack = site.join("packs/conformance");
    let port = support::http_server(b"{\"pong\": true}");
    let yaml = std::fs::read_to_string(pack.join("pack.yaml")).unwrap();
    std::fs::write(
        pack.join("pack.yaml"),
        format!("{yaml}capabilities:\n  http: [\"127.0.0.1:{port}\"]\n"),
    )
    .unwrap();
    // Sensors are not measured here.
    std::fs::remove_dir_all(pack.join("sensors")).unwrap();
    let mut langs: Vec<&str> = vec!["rust"];
    for (lang, present) in [("python", py.is_some()), ("js", js.is_some())] {
        if present {
            langs.push(lang);
        } else {
            println!("{lang}: skipped, no componentize tool (see the module docs)");
            std::fs::remove_dir_all(pack.join("actions").join(lang)).unwrap();
            std::fs::remove_file(pack.join("actions").join(format!("{lang}.yaml"))).unwrap();
        }
    }
    println!(
        "the conformance action per SDK language, on {} cores, {runs} warm runs per line",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Builds.
    let mut build = std::process::Command::new(env!("CARGO_BIN_EXE_squall"));
    build
        .current_dir(site)
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_CONFIG")
        .args(["pack", "build", "packs/conformance"]);
    if let Some(p) = &py {
        build.env("SQUALL_COMPONENTIZE_PY", p);
    }
    if let Some(j) = &js {
        build.env("SQUALL_COMPONENTIZE_JS", j);
    }
    let built = build.output().unwrap();
    let stderr = String::from_utf8_lossy(&built.stderr).into_owned();
    assert!(built.status.success(), "{stderr}");
    // Rust: touch the source, rebuild (dependencies built already, as in an author's loop).
    let source = support::repo().join("tests/components/conformance-action/src/lib.rs");
    let text = std::fs::read(&source).unwrap();
    std::fs::write(&source, &text).unwrap();
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rebuilt = std::process::Command::new(&cargo)
        .current_dir(support::repo())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "conformance-action",
        ])
        // What squall-plugin-build gives the guests' build (plugin-sdk/build): the same
        // target directory and profile settings, so only the touched crate is rebuilt.
        .env(
            "CARGO_TARGET_DIR",
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| support::repo().join("target"), PathBuf::from)
                .join("guests"),
        )
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    let rust_build = started.elapsed().as_secs_f64();
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    std::fs::copy(
        squall_test_components::CONFORMANCE_ACTION,
        pack.join("actions/rust.wasm"),
    )
    .unwrap();
    let config = Config::default();
    let started = Instant::now();
    support::data_dir_host(&config, &site.join(".squall"))
        .prepare(&pack.join("actions/rust.wasm"))
        .unwrap();
    let rust_compile = started.elapsed().as_secs_f64();
    println!(
        "{:<8} {:>8} {:>12} {:>12}",
        "language", "size", "build", "compile"
    );
    for lang in &langs {
        let size = std::fs::metadata(pack.join(format!("actions/{lang}.wasm")))
            .unwrap()
            .len();
        let (b, c) = if *lang == "rust" {
            (rust_build, rust_compile)
        } else {
            build_times(&stderr, &format!("actions/{lang}.wasm"))
        };
        println!(
            "{lang:<8} {:>6.2} MB {:>10.1} s {:>10.1} s",
            size as f64 / 1e6,
            b,
            c
        );
    }

    // 2 and 3. Through the runner, with the cache the build filled.
    let config = Config::parse(
        &format!("[packs.conformance]\nhttp_allow = [\"127.0.0.1:{port}\"]\n"),
        &site.join("squall.toml"),
    )
    .unwrap();
    let packs = PackSet::load_all_with_configs(&[site.join("packs")], None);
    assert!(packs.errors.is_empty(), "{:?}", packs.errors);
    let registry = Registry::new(
        packs,
        config.clone(),
        support::data_dir_host(&config, &site.join(".squall")),
    );
    let store = RedbStore::open(&site.join("data")).unwrap();
    let runner = Runner::new(Arc::new(registry), Arc::new(store), Bus::new());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let params = |v: Value| v.as_object().cloned().unwrap_or_else(Map::new);
    let url = format!("http://127.0.0.1:{port}/ping");
    println!(
        "{:<8} {:>10}   {:>18} {:>9} {:>9} {:>12}",
        "language", "first run", "warm", "p50", "p99", "fuel p50"
    );
    rt.block_on(async {
        for lang in &langs {
            let action: Ref = format!("conformance.{lang}").parse().unwrap();
            let t = Instant::now();
            let e = runner
                .run(&action, &params(json!({"op": "echo"})), "bench")
                .await
                .unwrap();
            assert_eq!(e.status, ExecutionStatus::Succeeded, "{:?}", e.result);
            let first = t.elapsed();
            for (what, given) in [
                ("echo (no I/O)", json!({"op": "echo", "text": "x"})),
                ("http GET", json!({"op": "http", "url": url})),
            ] {
                let mut latencies: Vec<Duration> = Vec::with_capacity(runs);
                let mut fuel = Vec::with_capacity(runs);
                for _ in 0..runs {
                    let t = Instant::now();
                    let e = runner
                        .run(&action, &params(given.clone()), "bench")
                        .await
                        .unwrap();
                    latencies.push(t.elapsed());
                    assert_eq!(e.status, ExecutionStatus::Succeeded, "{:?}", e.result);
                    fuel.push(e.usage.map_or(0, |u| u.fuel_consumed));
                }
                latencies.sort();
                fuel.sort_unstable();
                println!(
                    "{lang:<8} {:>7.1} ms   {what:>18} {:>6.2} ms {:>6.2} ms {:>12}",
                    first.as_secs_f64() * 1e3,
                    percentile(&latencies, 0.50).as_secs_f64() * 1e3,
                    percentile(&latencies, 0.99).as_secs_f64() * 1e3,
                    fuel[fuel.len() / 2],
                );
            }
        }
    });
}
