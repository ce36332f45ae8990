//! `core.noop` benchmark: what one execution costs.
//!
//! 1. Instantiate + run: `Host::run` of the prepared `core.noop` component, one at a time
//!    (fresh store, WASI context and instance each time, as every execution gets).
//! 2. Durable executions: `Runner::run` — validate, record `requested`, record `running`, run,
//!    record the result — against the redb store with group commit, at several concurrencies.
//!
//! Run: `cargo bench -p squall-cli --bench noop` (set `SQUALL_BENCH_RUNS` to change the count,
//! default 5000). Prints throughput and latency percentiles; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use serde_json::{Map, json};
use squall_core::capability::HttpPolicy;
use squall_core::{Config, Limits, PackSet, Ref};
use squall_host::{RunContext, RunRequest};
use squall_server::{Bus, Registry, Runner};
use squall_store::RedbStore;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::percentile;

fn report(name: &str, mut latencies: Vec<Duration>, wall: Duration) {
    latencies.sort();
    let n = latencies.len();
    println!(
        "{name:<34} {n:>6} runs  {:>9.0} /s   p50 {:>8.1} µs   p99 {:>8.1} µs   max {:>8.1} µs",
        n as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        latencies[n - 1].as_secs_f64() * 1e6,
    );
}

fn main() {
    let runs: usize = std::env::var("SQUALL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let packs_dir = support::repo().join("packs");
    let scratch = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::default();
    let host = support::host(&config, scratch.path());

    println!(
        "core.noop on {} cores, {runs} runs per line",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Instantiate + run, sequential.
    let started = Instant::now();
    let component = host
        .prepare(&packs_dir.join("core/actions/noop.wasm"))
        .unwrap();
    println!(
        "{:<34} {:>9.1} ms (compile, or load from the cache)",
        "prepare core.noop",
        started.elapsed().as_secs_f64() * 1e3
    );
    let policy = Arc::new(HttpPolicy::default());
    let latencies = rt.block_on(async {
        let mut latencies = Vec::with_capacity(runs);
        for i in 0..runs {
            let t = Instant::now();
            let out = host
                .run(
                    &component,
                    RunRequest {
                        context: RunContext {
                            execution_id: i.to_string(),
                            action_ref: "core.noop".into(),
                            pack: "core".into(),
                            user: "bench".into(),
                        },
                        params: json!({}),
                        limits: Limits::DEFAULT,
                        http: policy.clone(),
                        process: None,
                        triggers: None,
                        mail: None,
                        keys: None,
                        read_only: Vec::new(),
                    },
                )
                .await;
            latencies.push(t.elapsed());
            assert_eq!(out.result, json!({}));
        }
        latencies
    });
    let wall = latencies.iter().sum();
    report("instantiate+run (1 at a time)", latencies, wall);

    // 2. Durable executions through the runner and the redb store.
    let registry = Registry::new(PackSet::load(&packs_dir), config, host);
    let store = RedbStore::open(&scratch.path().join("data")).unwrap();
    let runner = Runner::new(Arc::new(registry), Arc::new(store), Bus::new());
    let noop: Ref = "core.noop".parse().unwrap();
    for concurrency in [1usize, 16, 64] {
        let (latencies, wall) = rt.block_on(async {
            let started = Instant::now();
            let mut workers = Vec::new();
            for w in 0..concurrency {
                let runner = runner.clone();
                let noop = noop.clone();
                let share = runs / concurrency + usize::from(w < runs % concurrency);
                workers.push(tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(share);
                    for _ in 0..share {
                        let t = Instant::now();
                        let e = runner.run(&noop, &Map::new(), "bench").await.unwrap();
                        latencies.push(t.elapsed());
                        assert_eq!(e.status, squall_core::ExecutionStatus::Succeeded);
                    }
                    latencies
                }));
            }
            let mut all = Vec::with_capacity(runs);
            for w in workers {
                all.extend(w.await.unwrap());
            }
            (all, started.elapsed())
        });
        report(
            &format!("durable execution, {concurrency:>2} concurrent"),
            latencies,
            wall,
        );
    }
}
