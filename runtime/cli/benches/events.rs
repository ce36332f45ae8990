//! Event pipeline benchmark: what a webhook costs from POST to a succeeded execution.
//!
//! 1. Criteria evaluation: 100 rules with three criteria each (equals, inside, regex) against
//!    Alertmanager payloads, single-threaded: (trigger instances × rules) per second.
//! 2. Throughput: webhooks POSTed over HTTP to an in-process server (the real API router,
//!    rules engine, scheduler, host and redb store), one rule launching `core.noop`, 32 in
//!    flight: events per second from the first POST to the last execution recorded
//!    `succeeded` — every trigger instance, enforcement and execution state durable.
//! 3. Latency at half that load: webhooks sent at a fixed rate of half the measured
//!    throughput; p50/p99 from sending the POST to seeing `st2.execution__update` with
//!    `succeeded` on the event bus.
//!
//! Run: `cargo bench -p squall-cli --bench events` (`SQUALL_BENCH_EVENTS` sets the count,
//! default 3000). Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod support;

use serde_json::{Map, Value, json};
use squall_core::Config;
use squall_core::criteria::Criteria;
use squall_core::template::Context;
use squall_server::api::{Access, ApiState, app};
use squall_server::{Mode, Services};
use squall_store::RedbStore;
use std::collections::HashMap;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{percentile, repo};

fn criteria_rate() {
    let rules: Vec<Criteria> = (0..100)
        .map(|i| {
            let map: Map<String, Value> = serde_json::from_value(json!({
                "trigger.body.status": {"type": "equals", "pattern": "firing"},
                "trigger.body.commonLabels.service": {"type": "inside", "pattern": [format!("svc{i}"), "nginx"]},
                "trigger.body.alerts[0].labels.instance": {"type": "regex", "pattern": format!("^web-0{}:", i % 10)},
            }))
            .unwrap();
            Criteria::parse(&map).unwrap()
        })
        .collect();
    let alert: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/auto-remediation/alerts/nginx-down.json"))
            .unwrap(),
    )
    .unwrap();
    let payload = json!({"headers": {"Content-Type": "application/json"}, "body": alert});
    let ctx = Context::trigger(&payload);
    let instances = 2000;
    let started = Instant::now();
    let mut matched = 0u64;
    for _ in 0..instances {
        for rule in &rules {
            if rule.matches(&payload, &ctx) == Ok(true) {
                matched += 1;
            }
        }
    }
    let took = started.elapsed();
    let evaluations = (instances * rules.len()) as f64;
    println!(
        "{:<46} {:>10.0} /s   ({} instances x {} rules in {:.2} s, {} matches)",
        "criteria evaluation (instances x rules)",
        evaluations / took.as_secs_f64(),
        instances,
        rules.len(),
        took.as_secs_f64(),
        matched
    );
}

struct Pipeline {
    services: Services,
    url: String,
    sent: Arc<Mutex<HashMap<u64, Instant>>>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    _dir: tempfile::TempDir,
}

async fn pipeline() -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("packs/bench");
    std::fs::create_dir_all(bench.join("rules")).unwrap();
    std::fs::write(bench.join("pack.yaml"), "name: bench\n").unwrap();
    std::fs::write(
        bench.join("rules/noop.yaml"),
        "name: noop\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: bench}}\n\
         criteria: {trigger.body.status: {type: equals, pattern: firing}}\naction: {ref: core.noop}\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.server.concurrency = 32;
    config.server.max_body = 1 << 20;
    let registry = support::registry(config, dir.path());
    let store = Arc::new(RedbStore::open(&dir.path().join("data")).unwrap());
    let services = Services::start(registry, store, Mode::Server)
        .await
        .unwrap();

    // Latency probe: trigger instance (seq) -> execution succeeded, seen on the bus.
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut events = services.bus().subscribe();
    let (sent_in, lat_in) = (sent.clone(), latencies.clone());
    tokio::spawn(async move {
        let mut seq_of: HashMap<String, u64> = HashMap::new();
        while let Ok(e) = events.recv().await {
            match &*e.name {
                "st2.trigger_instance__create" => {
                    if let Some(seq) = e.data["payload"]["body"]["seq"].as_u64() {
                        seq_of.insert(e.data["id"].as_str().unwrap_or_default().to_string(), seq);
                    }
                }
                "st2.execution__update" if e.data["status"] == "succeeded" => {
                    let ti = e.data["context"]["trigger_instance"]["id"]
                        .as_str()
                        .unwrap_or_default();
                    if let Some(seq) = seq_of.remove(ti)
                        && let Some(at) = sent_in.lock().unwrap().remove(&seq)
                    {
                        lat_in.lock().unwrap().push(at.elapsed());
                    }
                }
                _ => {}
            }
        }
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app(ApiState {
        services: services.clone(),
        access: Access::Open,
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Pipeline {
        services,
        url,
        sent,
        latencies,
        _dir: dir,
    }
}

async fn succeeded(p: &Pipeline) -> u64 {
    let filter = squall_store::ExecutionFilter {
        status: Some(squall_core::ExecutionStatus::Succeeded),
        ..Default::default()
    };
    p.services.store().count(&filter).await.unwrap()
}

async fn post(http: &reqwest::Client, url: &str, seq: u64) {
    let resp = http
        .post(format!("{url}/api/v1/webhooks/bench"))
        .json(&json!({"status": "firing", "seq": seq}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let events: u64 = std::env::var("SQUALL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    println!(
        "event pipeline on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    criteria_rate();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let p = pipeline().await;
        let http = reqwest::Client::new();

        // Throughput: 32 senders, until every execution succeeded.
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut senders = Vec::new();
        for _ in 0..32 {
            let (http, url, next) = (http.clone(), p.url.clone(), next.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seq >= events {
                        return;
                    }
                    post(&http, &url, 1_000_000 + seq).await;
                }
            }));
        }
        for s in senders {
            s.await.unwrap();
        }
        let accepted = started.elapsed();
        while succeeded(&p).await < events {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = started.elapsed();
        let rate = events as f64 / took.as_secs_f64();
        println!(
            "{:<46} {:>10.0} /s   ({events} events in {:.2} s; all accepted after {:.2} s)",
            "webhook -> core.noop succeeded (durable)",
            rate,
            took.as_secs_f64(),
            accepted.as_secs_f64()
        );

        // Latency at half the load, for ~5 seconds.
        let half = (rate / 2.0).max(1.0);
        let count = ((half * 5.0) as u64).clamp(50, events);
        let gap = Duration::from_secs_f64(1.0 / half);
        let base = succeeded(&p).await;
        let mut tick = tokio::time::interval(gap);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for seq in 0..count {
            tick.tick().await;
            p.sent.lock().unwrap().insert(seq, Instant::now());
            let (http, url) = (http.clone(), p.url.clone());
            tokio::spawn(async move { post(&http, &url, seq).await });
        }
        while succeeded(&p).await < base + count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut lat = std::mem::take(&mut *p.latencies.lock().unwrap());
        lat.sort();
        println!(
            "{:<46} {:>10.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} events)",
            "latency at half load (POST -> succeeded)",
            half,
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.len()
        );
        p.services.shutdown(Duration::from_secs(5)).await;
    });
}
