//! Orquesta workflow benchmark: what conducting costs per task, durably.
//!
//! 1. A 40-task sequential workflow of `core.noop` (each task waits for the one before), run
//!    one workflow at a time: time per workflow and per task.
//! 2. The same 40 steps as a StackStorm ActionChain (`action-chain` runner): time per chain
//!    and per node, next to the workflow's.
//! 3. One with-items task of 1,000 `core.noop` items (the scheduler's default concurrency, 16):
//!    time per workflow and per item.
//!
//! Everything is durable: every task execution is recorded `requested`, `running` and
//! `succeeded`, and every workflow state change is committed (with the task executions it
//! requests) before anything runs — the same services `squall serve` runs, in-process, over a
//! redb store in a temporary directory. Memory is the process's resident set (VmRSS, VmHWM).
//!
//! Run: `cargo bench -p squall-cli --bench workflows` (`SQUALL_BENCH_RUNS` sets how many
//! sequential workflows, default 20; `SQUALL_BENCH_ITEMS` the items, default 1000). Prints
//! figures; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use serde_json::{Map, Value};
use squall_core::{Config, ExecutionStatus, Ref};
use squall_server::{Mode, Services};
use squall_store::RedbStore;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::percentile;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A line of `/proc/self/status` in MiB (`VmRSS`, `VmHWM`), 0 where unavailable.
fn memory(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The bench pack: `bench.seq40`, `bench.chain40` and `bench.items`.
fn write_pack(root: &Path, items: usize) {
    let pack = root.join("bench");
    std::fs::create_dir_all(pack.join("actions/workflows")).unwrap();
    std::fs::write(pack.join("pack.yaml"), "name: bench\n").unwrap();
    let mut seq = String::from("version: 1.0\ntasks:\n");
    for i in 1..=40 {
        seq.push_str(&format!("  t{i}:\n    action: core.noop\n"));
        if i < 40 {
            seq.push_str(&format!(
                "    next: [{{when: <% succeeded() %>, do: t{}}}]\n",
                i + 1
            ));
        }
    }
    std::fs::write(pack.join("actions/workflows/seq40.yaml"), seq).unwrap();
    std::fs::write(
        pack.join("actions/workflows/items.yaml"),
        format!(
            "version: 1.0\ntasks:\n  fan:\n    with: \"i in <% range({items}) %>\"\n    action: core.noop\n\
             output: [{{n: <% ctx().len() %>}}]\n"
        ),
    )
    .unwrap();
    let mut chain = String::from("chain:\n");
    for i in 1..=40 {
        chain.push_str(&format!("  - name: n{i}\n    ref: core.noop\n"));
        if i < 40 {
            chain.push_str(&format!("    on-success: n{}\n", i + 1));
        }
    }
    std::fs::create_dir_all(pack.join("actions/chains")).unwrap();
    std::fs::write(pack.join("actions/chains/chain40.yaml"), chain).unwrap();
    std::fs::write(
        pack.join("actions/chain40.yaml"),
        "name: chain40\nrunner_type: action-chain\nentry_point: chains/chain40.yaml\n",
    )
    .unwrap();
    for name in ["seq40", "items"] {
        std::fs::write(
            pack.join(format!("actions/{name}.yaml")),
            format!("name: {name}\nrunner_type: orquesta\nentry_point: workflows/{name}.yaml\n"),
        )
        .unwrap();
    }
}

/// Requests `action` and waits for its workflow to complete; returns how long it took.
async fn run(services: &Services, action: &Ref) -> Duration {
    let mut events = services.bus().subscribe();
    let started = Instant::now();
    let e = services
        .request(action, &Map::new(), "bench")
        .await
        .unwrap();
    let id = e.id.to_string();
    loop {
        let event = events.recv().await.unwrap();
        if event.name == "st2.execution__update" && event.data["id"] == Value::String(id.clone()) {
            let status: ExecutionStatus =
                serde_json::from_value(event.data["status"].clone()).unwrap();
            if status.is_completed() {
                assert_eq!(
                    status,
                    ExecutionStatus::Succeeded,
                    "{:#}",
                    event.data["result"]
                );
                return started.elapsed();
            }
        }
    }
}

fn main() {
    let runs = env("SQUALL_BENCH_RUNS", 20).max(1);
    let items = env("SQUALL_BENCH_ITEMS", 1000).max(1);
    let scratch = tempfile::tempdir().unwrap();
    write_pack(&scratch.path().join("packs"), items);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::default();
    let concurrency = config.server.concurrency;
    let registry = support::registry(config, scratch.path());
    let store = RedbStore::open(&scratch.path().join("data")).unwrap();
    println!(
        "Orquesta workflows of core.noop on {} cores, durable (redb, group commit), scheduler concurrency {concurrency}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let rss_start = memory("VmRSS");
    rt.block_on(async {
        let services = Services::start(registry, Arc::new(store), Mode::Embedded)
            .await
            .unwrap();
        // Warm up: compile core.noop, open the tables.
        run(&services, &"bench.seq40".parse().unwrap()).await;

        let seq: Ref = "bench.seq40".parse().unwrap();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            times.push(run(&services, &seq).await);
        }
        times.sort();
        let total: Duration = times.iter().sum();
        println!(
            "40 sequential tasks, {runs} workflows: {:>8.1} ms per workflow (p50 {:.1} ms, p99 {:.1} ms)   {:.2} ms per task",
            total.as_secs_f64() * 1e3 / runs as f64,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3 / (runs * 40) as f64,
        );
        let rss_seq = memory("VmRSS");

        let chain: Ref = "bench.chain40".parse().unwrap();
        run(&services, &chain).await;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            times.push(run(&services, &chain).await);
        }
        times.sort();
        let total: Duration = times.iter().sum();
        println!(
            "40-node action chain, {runs} chains:    {:>8.1} ms per chain (p50 {:.1} ms, p99 {:.1} ms)   {:.2} ms per node",
            total.as_secs_f64() * 1e3 / runs as f64,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3 / (runs * 40) as f64,
        );

        let fan: Ref = "bench.items".parse().unwrap();
        let took = run(&services, &fan).await;
        println!(
            "{items} with-items items, 1 workflow:   {:>8.1} ms total   {:.2} ms per item   {:.0} items/s",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3 / items as f64,
            items as f64 / took.as_secs_f64(),
        );
        println!(
            "memory: {rss_start:.0} MiB resident at start, {rss_seq:.0} MiB after the sequential runs, {:.0} MiB after the items; peak {:.0} MiB",
            memory("VmRSS"),
            memory("VmHWM"),
        );
        services.shutdown(Duration::from_secs(5)).await;
    });
}
