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
//! 4. With `/usr/sbin/sshd` installed: `core.remote cmd=true` on 1 host and on 10 hosts (one
//!    at a time, as st2's `parallel: false`), and a `remote-shell-cmd` action with
//!    `parallel: true` on 10 hosts (4 at once, as st2) — an OpenSSH server started on
//!    127.0.0.1–127.0.0.10 with generated keys: wall time per execution, each host a new SSH
//!    connection (key exchange, login, one session).
//!
//! Run: `cargo bench -p squall-cli --bench commands` (`SQUALL_BENCH_RUNS` sets how many of
//! each, default 500; the remote lines run a tenth of that). Prints figures; asserts nothing
//! about speed.

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
            assert_eq!(
                status,
                ExecutionStatus::Succeeded,
                "{:#}",
                event.data["result"]
            );
            times.push(t.elapsed());
        }
    }
    times
}

/// An OpenSSH server on 127.0.0.1–127.0.0.10 at one port, with a known-hosts file and a user
/// key in `dir`; `None` without `/usr/sbin/sshd`.
fn start_sshd(dir: &Path) -> Option<(std::process::Child, u16)> {
    use std::process::Command;
    if !Path::new("/usr/sbin/sshd").exists() {
        return None;
    }
    let keygen = |name: &str| {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(name))
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    keygen("host_key");
    keygen("id_ed25519");
    std::fs::copy(dir.join("id_ed25519.pub"), dir.join("authorized_keys")).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: String = (1..=10)
        .map(|i| format!("ListenAddress 127.0.0.{i}\n"))
        .collect();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\n{listen}HostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nPermitRootLogin yes\nLogLevel ERROR\nMaxStartups 100\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.10", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let known: String = (1..=10)
        .map(|i| format!("[127.0.0.{i}]:{port} {}\n", key.join(" ")))
        .collect();
    std::fs::write(dir.join("known_hosts"), known).unwrap();
    Some((child, port))
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
    std::fs::create_dir_all(scratch.path().join("packs/bench/actions")).unwrap();
    std::fs::write(
        scratch.path().join("packs/bench/pack.yaml"),
        "name: bench\n",
    )
    .unwrap();
    std::fs::write(
        scratch.path().join("packs/bench/actions/fanout.yaml"),
        "name: fanout\nrunner_type: remote-shell-cmd\nparameters:\n  parallel: {default: true}\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ssh_dir = scratch.path().join("ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let sshd = start_sshd(&ssh_dir);
    let user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let config = Config::parse(
        &format!(
            "[packs.core]\ncommands = [\"true\"]\nssh_hosts = [\"127.0.0.0/8:*\"]\n\
             [packs.bench]\ncommands = [\"true\"]\nssh_hosts = [\"127.0.0.0/8:*\"]\n\
             [ssh]\nknown_hosts = {:?}\nkey_file = {:?}\nuser = {user:?}\n",
            ssh_dir.join("known_hosts").display().to_string(),
            ssh_dir.join("id_ed25519").display().to_string(),
        ),
        Path::new("squall.toml"),
    )
    .unwrap();
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
            let status = tokio::process::Command::new(&program)
                .status()
                .await
                .unwrap();
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
        if let Some((_, port)) = &sshd {
            let runs = (runs / 10).max(1);
            for (action, n, how) in [
                ("core.remote", 1, "1 host"),
                ("core.remote", 10, "10 hosts, one at a time"),
                ("bench.fanout", 10, "10 hosts, parallel (4 at once)"),
            ] {
                let remote: Ref = action.parse().unwrap();
                let hosts: Vec<String> = (1..=n).map(|i| format!("127.0.0.{i}:{port}")).collect();
                let params = json!({"cmd": "true", "hosts": hosts.join(",")})
                    .as_object()
                    .unwrap()
                    .clone();
                local(&services, &remote, &params, 1).await;
                let mut times = Vec::with_capacity(runs);
                for _ in 0..runs {
                    times.extend(local(&services, &remote, &params, 1).await);
                }
                times.sort();
                println!(
                    "{:<46} {:>8.1} ms wall per execution (p50), p99 {:.1} ms, {runs} runs",
                    format!("{action} cmd=true, {how}"),
                    percentile(&times, 0.5).as_secs_f64() * 1e3,
                    percentile(&times, 0.99).as_secs_f64() * 1e3,
                );
            }
        } else {
            println!("core.remote: skipped (no /usr/sbin/sshd)");
        }
        services.shutdown(Duration::from_secs(5)).await;
    });
    if let Some((mut child, _)) = sshd {
        let _ = child.kill();
        let _ = child.wait();
    }
}
