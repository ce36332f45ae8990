//! Sensor benchmark: what a sensor call costs, and how fast emitted trigger instances become
//! executions.
//!
//! 1. Poll overhead: the test sensor component (`tests/components/sensor`) called in the host
//!    directly, one call at a time — `Noop` (fresh sandbox, instantiate, call, drop) and
//!    `Counter` (plus a datastore read, a write and one emit through the host interfaces):
//!    microseconds per poll, p50 / p99, polls per second.
//! 2. Emit → execution: an in-process server (registry, sensor container, rules engine,
//!    scheduler, host, redb) with a `Burst` sensor emitting 100 trigger instances per poll
//!    (each poll's instances and its datastore state committed in one transaction) and a rule
//!    launching `core.noop` for each: trigger instances per second from the start to the last
//!    execution recorded `succeeded`.
//!
//! Run: `cargo bench -p squall-cli --bench sensors` (`SQUALL_BENCH_EMITS` sets the count,
//! default 3000). Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use serde_json::{Value, json};
use squall_core::capability::HttpPolicy;
use squall_core::{Config, Limits};
use squall_host::{Host, SensorBackend, SensorEntry, SensorRequest};
use squall_server::{Mode, Services};
use squall_store::RedbStore;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::percentile;

/// A backend with one in-memory key and no checks.
struct Memory(std::sync::Mutex<Option<String>>);

impl SensorBackend for Memory {
    fn pack_key(&self, _name: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().unwrap().clone())
    }

    fn system_key(&self, _name: &str) -> Result<Option<String>, String> {
        Ok(None)
    }

    fn own_key(&self, _name: &str, _decrypt: bool) -> Result<Option<String>, String> {
        Ok(None)
    }

    fn own_keys(&self, _prefix: &str) -> Result<Vec<(String, String, bool)>, String> {
        Ok(Vec::new())
    }

    fn check_emit(&self, _trigger: &str, _payload: &Value) -> Result<(), String> {
        Ok(())
    }
}

async fn poll_overhead(host: &Host, class: &str, polls: usize) {
    let sensor = host
        .prepare_sensor(Path::new(squall_test_components::TEST_SENSOR))
        .unwrap();
    let backend = Arc::new(Memory(std::sync::Mutex::new(None)));
    let request = SensorRequest {
        sensor_ref: format!("bench.{class}"),
        pack: "bench".into(),
        config: json!({}),
        limits: Limits::DEFAULT,
        http: Arc::new(HttpPolicy::default()),
        backend: backend.clone(),
        max_emits: 100,
        max_payload: 256 * 1024,
        max_state_bytes: 64 * 1024,
        st2_keys: false,
        read_only: Vec::new(),
    };
    for _ in 0..50 {
        host.call_sensor(&sensor, request.clone(), SensorEntry::Poll)
            .await;
    }
    let mut took = Vec::with_capacity(polls);
    let started = Instant::now();
    for _ in 0..polls {
        let t = Instant::now();
        let outcome = host
            .call_sensor(&sensor, request.clone(), SensorEntry::Poll)
            .await;
        took.push(t.elapsed());
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        // Commit the write, as the container would, so the next poll reads it.
        if let Some(w) = outcome.writes.first() {
            *backend.0.lock().unwrap() = w.value.clone();
        }
    }
    let total = started.elapsed();
    took.sort();
    println!(
        "{:<42} p50 {:>7.1} µs   p99 {:>7.1} µs   {:>8.0} polls/s   ({polls} polls)",
        format!("poll overhead, {class} sensor"),
        percentile(&took, 0.50).as_secs_f64() * 1e6,
        percentile(&took, 0.99).as_secs_f64() * 1e6,
        polls as f64 / total.as_secs_f64(),
    );
}

async fn emit_to_execution(emits: u64) {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("packs/bench");
    for sub in ["rules", "sensors", "triggers"] {
        std::fs::create_dir_all(bench.join(sub)).unwrap();
    }
    std::fs::write(bench.join("pack.yaml"), "name: bench\n").unwrap();
    std::fs::write(
        bench.join("triggers/tick.yaml"),
        "name: tick\npayload_schema: {type: object, properties: {n: {type: integer}}}\n",
    )
    .unwrap();
    std::fs::copy(
        squall_test_components::TEST_SENSOR,
        bench.join("sensors/test_sensor.wasm"),
    )
    .unwrap();
    std::fs::write(
        bench.join("sensors/burst.yaml"),
        "class_name: Burst\nentry_point: test_sensor.wasm\npoll_interval: 0.01\n\
         trigger_types: [bench.tick]\n",
    )
    .unwrap();
    std::fs::write(
        bench.join("config.schema.yaml"),
        "total: {type: integer, default: 3000}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("configs")).unwrap();
    std::fs::write(
        dir.path().join("configs/bench.yaml"),
        format!("total: {emits}\n"),
    )
    .unwrap();
    std::fs::write(
        bench.join("rules/noop.yaml"),
        "name: noop\nenabled: true\ntrigger: {type: bench.tick}\naction: {ref: core.noop}\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.server.concurrency = 32;
    // The benchmark measures the pipeline, not the quotas that protect it.
    config.sensors.min_poll_interval = Duration::from_millis(10);
    config.sensors.max_emits_per_minute = u32::MAX;
    let registry = support::registry(config, dir.path());
    let store = Arc::new(RedbStore::open(&dir.path().join("data")).unwrap());
    let started = Instant::now();
    let services = Services::start(registry, store, Mode::Server)
        .await
        .unwrap();
    let filter = squall_store::ExecutionFilter {
        status: Some(squall_core::ExecutionStatus::Succeeded),
        ..Default::default()
    };
    while services.store().count(&filter).await.unwrap() < emits {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    println!(
        "{:<42} {:>10.0} /s   ({emits} trigger instances -> core.noop succeeded in {:.2} s)",
        "sensor emit -> execution (durable)",
        emits as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
    );
    services.shutdown(Duration::from_secs(5)).await;
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emits: u64 = std::env::var("SQUALL_BENCH_EMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    println!(
        "sensors on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let host = support::host(&Config::default(), dir.path());
        poll_overhead(&host, "Noop", 3000).await;
        poll_overhead(&host, "Counter", 3000).await;
        emit_to_execution(emits).await;
    });
}
