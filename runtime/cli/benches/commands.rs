//! Command runner benchmark: what running `true` costs through `core.local`, next to a bare
//! `fork`+`exec` of the same program measured in the same run.
//!
//! 1. Bare: `tokio::process::Command::new("/usr/bin/true").status()`, one at a time.
//! 2. The `process` capability alone (`squall_host::process::run_command`): cleared
//!    environment, own process group, `setrlimit` bounds, pipes read, the group reaped, the
//!    ledger file written and removed; one at a time.
//! 3. `core.local cmd=true` through the services `squall serve` runs, in-process, durable
//!    (redb): request → grants checked → command → result recorded; one at a time (latency)
//!    and then a batch submitted at once (throughput at the scheduler's concurrency, 16).
//!
//! Run: `cargo bench -p squall-cli --bench commands` (`SQUALL_BENCH_RUNS` sets how many of
//! each, default 500). Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use serde_json::{Map, Value, json};
use squall_core::{Config, ExecutionStatus, Ref};
use squall_host::process::{CommandSpec, ProcessLedger, ProcessLimits, run_command};
use squall_server::{Mode, Services};
use squall_store::RedbStore;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::percentile;
use tokio_util::sync::CancellationToken;

fn line(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let total: Duration = times.iter().sum();
    println!(
        "{what:<46} {:>8.0} /s   p50 {:>7.3} ms   p99 {:>7.3} ms",
        times.len() as f64 / total.as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
    );
}

/// Requests `core.local` with `params` `n` times at once and waits for all to succeed; returns
/// each one's time from its request to its completion.
async fn local(
    services: &Services,
    reference: &Ref,
    params: &Map<String, Value>,
    n: usize,
) -> Vec<Duration> {
    let mut events = services.bus().subscribe();
    let mut started = std::collections::HashMap::new();
    for _ in 0..n {
        let e = services.request(reference, params, "bench").await.unwrap();
        started.insert(e.id.to_string(), Instant::now());
    }
    let mut times = Vec::with_capacity(n);
    while times.len() < n {
        let event = events.recv().await.expect("the bus keeps up");
        if event.name != "st2.execution__update" {
            continue;
        }
        let Some(t) = event.data["id"].as_str().and_then(|id| started.get(id)) else {
            continue;
        };
        let status: ExecutionStatus = serde_json::from_value(event.data["status"].clone()).unwrap();
        if status.is_completed() {
            assert_eq!(status, ExecutionStatus::Succeeded, "{:#}", event.data["result"]);
            times.push(t.elapsed());
        }
    }
    times
}

fn main() {
    let runs: usize = std::env::var("SQUALL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
        .max(1);
    let program = squall_host::process::resolve_program("true", squall_core::command::SEARCH_PATH)
        .expect("true is installed");
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(scratch.path().join("packs")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let config =
        Config::parse("[packs.core]\ncommands = [\"true\"]\n", Path::new("squall.toml")).unwrap();
    let concurrency = config.server.concurrency;
    let registry = support::registry(config, scratch.path());
    let store = RedbStore::open(&scratch.path().join("data")).unwrap();
    println!(
        "{} runs of `true` on {} cores; core.local durable (redb, group commit), scheduler concurrency {concurrency}",
        runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    rt.block_on(async {
        let mut bare = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let status = tokio::process::Command::new(&program).status().await.unwrap();
            assert!(status.success());
            bare.push(t.elapsed());
        }
        line("bare fork+exec", bare);

        let ledger = ProcessLedger::new(&scratch.path().join("processes"), "bench");
        let cancel = CancellationToken::new();
        let mut capability = Vec::with_capacity(runs);
        for _ in 0..runs {
            let spec = CommandSpec {
                program: program.clone(),
                args: Vec::new(),
                env: vec![("PATH".into(), squall_core::command::SEARCH_PATH.into())],
                cwd: scratch.path().to_path_buf(),
                run_as: None,
                stdin: None,
                timeout: Duration::from_secs(10),
                max_output: 1024 * 1024,
                limits: ProcessLimits {
                    max_processes: 256,
                    max_memory: 2 << 30,
                    max_open_files: 1024,
                    cpu_seconds: 10,
                    kill_grace: Duration::from_secs(2),
                },
            };
            let t = Instant::now();
            run_command(spec, &ledger, &cancel).await.unwrap();
            capability.push(t.elapsed());
        }
        line("process capability (run_command)", capability);

        let services = Services::start(registry, Arc::new(store), Mode::Embedded)
            .await
            .unwrap();
        let reference: Ref = "core.local".parse().unwrap();
        let params = json!({"cmd": "true"}).as_object().unwrap().clone();
        local(&services, &reference, &params, 1).await;
        let mut seq = Vec::with_capacity(runs);
        for _ in 0..runs {
            seq.extend(local(&services, &reference, &params, 1).await);
        }
        line("core.local cmd=true, one at a time", seq);

        let started = Instant::now();
        let mut latencies = local(&services, &reference, &params, runs).await;
        let wall = started.elapsed();
        latencies.sort();
        println!(
            "{:<46} {:>8.0} /s   p50 {:>7.1} ms   p99 {:>7.1} ms (from its request)",
            format!("core.local cmd=true, {runs} requested at once"),
            runs as f64 / wall.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
        services.shutdown(Duration::from_secs(5)).await;
    });
}
