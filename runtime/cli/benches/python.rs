//! StackStorm `python-script` actions benchmark: what a pack's Python component costs.
//!
//! 1. `squall pack build` of the test pack `tests/fixtures/st2-python/packs/pyops` (vendoring,
//!    componentize-py, compiling into the component cache): wall time and component size.
//! 2. Compiling the component with an empty cache (what a server would pay without the
//!    build-time compile).
//! 3. The first run after the build (component loaded from the cache, instantiated, run).
//! 4. Warm runs through `Runner::run` (durable redb store), one at a time: `pyops.greet` (no
//!    I/O) and `pyops.fetch` (one HTTP GET to a loopback server, granted) — latency
//!    percentiles and fuel per run.
//!
//! Needs componentize-py (`SQUALL_COMPONENTIZE_PY` or on `PATH`); without it, says so and
//! exits. Run: `cargo bench -p squall-cli --bench python` (`SQUALL_BENCH_RUNS`, default 200).
//! Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use serde_json::{Map, Value, json};
use squall_core::{Config, ExecutionStatus, PackSet, Ref};
use squall_server::{Bus, Registry, Runner};
use squall_store::RedbStore;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::percentile;

fn report(name: &str, mut latencies: Vec<Duration>, fuel: &[u64]) {
    latencies.sort();
    let n = latencies.len();
    let mut fuel = fuel.to_vec();
    fuel.sort_unstable();
    println!(
        "{name:<34} {n:>5} runs   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   fuel p50 {:>10}",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[n - 1].as_secs_f64() * 1e3,
        fuel[n / 2],
    );
}

fn main() {
    let componentize_py =
        std::env::var_os("SQUALL_COMPONENTIZE_PY").unwrap_or_else(|| "componentize-py".into());
    if std::process::Command::new(&componentize_py)
        .arg("--version")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        println!("python: skipped, no componentize-py (pip install componentize-py)");
        return;
    }
    let runs: usize = std::env::var("SQUALL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let scratch = tempfile::tempdir().unwrap();
    let site = scratch.path();
    let pack = site.join("packs/pyops");
    std::fs::create_dir_all(site.join("configs")).unwrap();
    support::copy_tree(
        &support::repo().join("tests/fixtures/st2-python/packs/pyops"),
        &pack,
    );
    std::fs::write(site.join("configs/pyops.yaml"), "greeting: Hi\n").unwrap();

    // 1. The build.
    let started = Instant::now();
    let built = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .current_dir(site)
        .env("SQUALL_COMPONENTIZE_PY", &componentize_py)
        .env_remove("SQUALL_DATA_DIR")
        .env_remove("SQUALL_CONFIG")
        .args(["pack", "build", "packs/pyops"])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let build_time = started.elapsed();
    let component = pack.join(".squall/python-actions.wasm");
    let size = std::fs::metadata(&component).unwrap().len();
    println!(
        "python-script (pyops, 5 actions) on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<34} {:>8.1} s    component {:.1} MB",
        "squall pack build (incl. compile)",
        build_time.as_secs_f64(),
        size as f64 / 1e6
    );

    // 2. Compiling without the cache.
    let config = Config::default();
    let cold = tempfile::tempdir().unwrap();
    let started = Instant::now();
    support::data_dir_host(&config, cold.path())
        .prepare(&component)
        .unwrap();
    println!(
        "{:<34} {:>8.1} s",
        "compile, empty cache",
        started.elapsed().as_secs_f64()
    );

    // 3 and 4. Through the runner, with the build's cache.
    let port = support::http_server(b"{\"ok\": true}");
    let config = Config::parse(
        &format!("[packs.pyops]\nhttp_allow = [\"127.0.0.1:{port}\"]\n"),
        &site.join("squall.toml"),
    )
    .unwrap();
    let packs = PackSet::load_all_with_configs(&[site.join("packs")], Some(&site.join("configs")));
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
    let greet: Ref = "pyops.greet".parse().unwrap();
    let fetch: Ref = "pyops.fetch".parse().unwrap();
    let params = |v: Value| v.as_object().cloned().unwrap_or_else(Map::new);
    rt.block_on(async {
        let t = Instant::now();
        let e = runner
            .run(&greet, &params(json!({"name": "first"})), "bench")
            .await
            .unwrap();
        assert_eq!(e.status, ExecutionStatus::Succeeded, "{:?}", e.result);
        println!(
            "{:<34} {:>8.1} ms (cache load, instantiate, run)",
            "first run after the build",
            t.elapsed().as_secs_f64() * 1e3
        );
        for (name, action, given) in [
            ("warm pyops.greet (no I/O)", &greet, json!({"name": "Ann"})),
            (
                "warm pyops.fetch (HTTP GET)",
                &fetch,
                json!({"url": format!("http://127.0.0.1:{port}/x")}),
            ),
        ] {
            let mut latencies = Vec::with_capacity(runs);
            let mut fuel = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                let e = runner
                    .run(action, &params(given.clone()), "bench")
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                assert_eq!(e.status, ExecutionStatus::Succeeded, "{:?}", e.result);
                fuel.push(e.usage.map_or(0, |u| u.fuel_consumed));
            }
            report(name, latencies, &fuel);
        }
    });
}
