//! The host against a hostile component: every limit holds, each failure names its cause, and
//! the host keeps serving other executions afterwards.

use serde_json::{Value, json};
use squall_core::capability::HttpPolicy;
use squall_core::config::HostSettings;
use squall_core::{ExecutionStatus, Limits};
use squall_host::{Host, HostConfig, PreparedComponent, RunContext, RunOutcome, RunRequest};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

struct Fixture {
    host: Host,
    hostile: Arc<PreparedComponent>,
    _cache: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cache = tempfile::tempdir().unwrap();
        let host = Host::new(&HostConfig {
            settings: HostSettings::default(),
            ceiling: Limits::CEILING,
            cache_dir: cache.path().join("components"),
            cache_key_file: cache.path().join("cache.key"),
        })
        .unwrap();
        let hostile = host
            .prepare(squall_test_components::TEST_HOSTILE.as_ref())
            .unwrap();
        Fixture {
            host,
            hostile,
            _cache: cache,
        }
    })
}

fn limits() -> Limits {
    Limits {
        fuel: 2_000_000_000,
        timeout: Duration::from_secs(2),
        memory: 32 << 20,
        max_output: 64 * 1024,
    }
}

fn run_with(params: Value, limits: Limits, http: HttpPolicy) -> RunOutcome {
    let f = fixture();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f.host.run(
        &f.hostile,
        RunRequest {
            context: RunContext {
                execution_id: "0195f0c2-7b1e-7c3a-9d1e-2f4b6a8c0d12".into(),
                action_ref: "tests.hostile".into(),
                pack: "tests".into(),
                user: "tester".into(),
            },
            params,
            limits,
            http: Arc::new(http),
            process: None,
            triggers: None,
            mail: None,
            keys: None,
            read_only: Vec::new(),
        },
    ))
}

fn run(params: Value) -> RunOutcome {
    run_with(params, limits(), HttpPolicy::default())
}

/// After any misbehaviour, a well-behaved run on the same host still works.
fn host_still_serves() {
    let ok = run(json!({"mode": "echo", "n": 1}));
    assert_eq!(ok.status, ExecutionStatus::Succeeded, "{:?}", ok.result);
    assert_eq!(ok.result, json!({"mode": "echo", "n": 1}));
}

#[test]
fn echo_succeeds_and_reports_fuel() {
    let out = run(json!({"mode": "echo", "x": [1, 2]}));
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(out.result, json!({"mode": "echo", "x": [1, 2]}));
    assert!(
        out.fuel_consumed > 0 && out.fuel_consumed < 10_000_000,
        "{}",
        out.fuel_consumed
    );
}

#[test]
fn log_stdout_and_stderr_are_captured() {
    let out = run(json!({"mode": "log"}));
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(out.output.stdout, "to stdout\n");
    assert_eq!(out.output.stderr, "to stderr\n");
    let lines: Vec<(&str, &str)> = out
        .output
        .log
        .iter()
        .map(|l| (l.level.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [("info", "hello from tests.hostile"), ("warn", "careful")]
    );
}

#[test]
fn infinite_loop_times_out_within_the_limit_plus_a_margin() {
    let mut l = limits();
    l.fuel = u64::MAX / 2;
    l.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let out = run_with(json!({"mode": "loop"}), l, HttpPolicy::default());
    let took = started.elapsed();
    assert_eq!(out.status, ExecutionStatus::Timeout);
    assert_eq!(out.error(), Some("timeout of 0.5s exceeded"));
    assert!(
        took < Duration::from_millis(500) + Duration::from_millis(400),
        "took {took:?}"
    );
    host_still_serves();
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let mut l = limits();
    l.fuel = 50_000_000;
    let out = run_with(json!({"mode": "loop"}), l, HttpPolicy::default());
    assert_eq!(out.status, ExecutionStatus::Timeout);
    assert_eq!(out.error(), Some("fuel limit of 50000000 units exhausted"));
    assert!(out.fuel_consumed >= 50_000_000);
    host_still_serves();
}

#[test]
fn sleeping_in_a_host_call_is_stopped_by_the_wall_clock() {
    let mut l = limits();
    l.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let out = run_with(
        json!({"mode": "sleep", "ms": 60000}),
        l,
        HttpPolicy::default(),
    );
    assert_eq!(out.status, ExecutionStatus::Timeout);
    assert!(
        out.error().unwrap().starts_with("timeout of 0.3s exceeded"),
        "{:?}",
        out.result
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    host_still_serves();
}

#[test]
fn memory_bomb_fails_naming_the_limit() {
    let out = run(json!({"mode": "memory"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    let err = out.error().unwrap();
    assert!(
        err.starts_with(&format!("memory limit of {} bytes exceeded", 32 << 20)),
        "{err}"
    );
    host_still_serves();
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let out = run(json!({"mode": "recurse"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(
        out.error().unwrap().starts_with("stack overflow"),
        "{:?}",
        out.result
    );
    host_still_serves();
}

#[test]
fn deep_recursion_in_linear_memory_fails_and_is_contained() {
    let out = run(json!({"mode": "recurse-frames"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(
        out.error().unwrap().contains("out of bounds memory access"),
        "{:?}",
        out.result
    );
    host_still_serves();
}

#[test]
fn huge_output_is_bounded_and_counted() {
    let out = run(json!({"mode": "output", "bytes": 8 << 20}));
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{:?}", out.result);
    assert_eq!(out.output.stdout.len(), 64 * 1024);
    assert_eq!(out.output.stdout_dropped_bytes, (8 << 20) - 64 * 1024);
    host_still_serves();
}

#[test]
fn huge_result_fails_naming_max_output() {
    let out = run(json!({"mode": "big-result", "bytes": 100_000}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(
        out.error(),
        Some("result is 100002 bytes, over the max_output limit of 65536 bytes")
    );
    let out = run(json!({"mode": "big-result", "bytes": 2 << 20}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(
        out.error(),
        Some(
            "output limit exceeded: the component passed more than 196608 bytes to the host in \
             one call (max_output is 65536 bytes)"
        )
    );
    host_still_serves();
}

#[test]
fn log_flood_is_bounded() {
    let out = run(json!({"mode": "log-flood", "lines": 100000}));
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{:?}", out.result);
    let kept: usize = out.output.log.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 64 * 1024);
    assert_eq!(
        out.output.log.len() as u64 + out.output.log_dropped_lines,
        100000
    );
}

#[test]
fn empty_log_lines_are_bounded_too() {
    // 200,000 host calls take ~2 s in a debug build: the limit under test is the log's, not
    // the clock's.
    let roomy = Limits {
        timeout: Duration::from_secs(20),
        ..limits()
    };
    let out = run_with(
        json!({"mode": "empty-log-flood", "lines": 200000}),
        roomy,
        HttpPolicy::default(),
    );
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{:?}", out.result);
    assert!(
        out.output.log.len() <= 64 * 1024 / 32,
        "{} lines kept",
        out.output.log.len()
    );
    assert_eq!(
        out.output.log.len() as u64 + out.output.log_dropped_lines,
        200000
    );
}

#[test]
fn repeated_denials_are_counted_not_kept() {
    let out = run(json!({"mode": "deny-flood", "times": 500}));
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{:?}", out.result);
    assert_eq!(out.result["refused"], 500);
    assert_eq!(out.output.denials.len(), 21, "20 kept + 1 summary line");
    assert_eq!(
        out.output.denials[20],
        "... and 480 more denials like these"
    );
    host_still_serves();
}

#[test]
fn an_oversized_action_error_is_refused_like_an_oversized_result() {
    let out = run(json!({"mode": "big-fail", "bytes": 100000}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(
        out.error()
            .unwrap()
            .contains("over the max_output limit of 65536 bytes"),
        "{:?}",
        out.result
    );
}

#[test]
fn panic_fails_with_the_panic_message() {
    let out = run(json!({"mode": "panic"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    let err = out.error().unwrap();
    assert!(
        err.starts_with("component panicked:") && err.contains("boom"),
        "{err}"
    );
    host_still_serves();
}

#[test]
fn exit_fails_with_the_code() {
    // `std::process::exit(3)`: WASI 0.2's `exit` carries only ok/err, so the host sees 1.
    let out = run(json!({"mode": "exit"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(
        out.error(),
        Some("component exited with code 1 before returning a result")
    );
}

#[test]
fn filesystem_is_not_there() {
    let out = run(json!({"mode": "read-file", "path": "/etc/passwd"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(
        out.error().unwrap().starts_with("cannot read /etc/passwd"),
        "{:?}",
        out.result
    );
    assert_eq!(out.result["denied"], true);
    assert!(!out.result.to_string().contains("root:"));
}

#[test]
fn environment_is_empty() {
    unsafe_free_env_check();
    let out = run(json!({"mode": "env"}));
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(out.result["vars"], json!([]));
    assert_eq!(out.result["args"], json!([]));
}

/// The test process itself has environment variables (PATH at least), so an empty list above
/// means the guest saw none of them, not that there were none.
fn unsafe_free_env_check() {
    assert!(std::env::var_os("PATH").is_some());
}

#[test]
fn action_error_keeps_its_result() {
    let out = run(json!({"mode": "fail"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.result, json!({"why": "test", "error": "asked to fail"}));
}

#[test]
fn http_without_a_grant_is_denied_and_recorded() {
    let out = run(json!({"mode": "http", "url": "http://example.com/"}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(
        out.error().unwrap().contains("denied by the host"),
        "{:?}",
        out.result
    );
    assert_eq!(out.output.denials.len(), 1);
    assert!(
        out.output.denials[0].contains("example.com:80 is not granted to pack"),
        "{:?}",
        out.output.denials
    );
}

#[test]
fn many_runs_in_parallel_stay_isolated() {
    let f = fixture();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..32 {
            let host = f.host.clone();
            let c = f.hostile.clone();
            let mode = if i % 4 == 0 { "loop" } else { "echo" };
            tasks.push(tokio::spawn(async move {
                let mut l = limits();
                l.timeout = Duration::from_millis(300);
                let out = host
                    .run(
                        &c,
                        RunRequest {
                            context: RunContext {
                                execution_id: format!("id-{i}"),
                                action_ref: "tests.hostile".into(),
                                pack: "tests".into(),
                                user: "u".into(),
                            },
                            params: json!({"mode": mode, "i": i}),
                            limits: l,
                            http: Arc::new(HttpPolicy::default()),
                            process: None,
                            triggers: None,
                            mail: None,
                            keys: None,
                            read_only: Vec::new(),
                        },
                    )
                    .await;
                (i, mode, out)
            }));
        }
        for t in tasks {
            let (i, mode, out) = t.await.unwrap();
            if mode == "loop" {
                assert_eq!(out.status, ExecutionStatus::Timeout);
            } else {
                assert_eq!(out.result["i"], i);
            }
        }
    });
}

#[test]
fn concurrent_first_uses_compile_once_and_all_succeed() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::new(&HostConfig {
        settings: HostSettings::default(),
        ceiling: Limits::CEILING,
        cache_dir: cache.path().join("components"),
        cache_key_file: cache.path().join("cache.key"),
    })
    .unwrap();
    let shas: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    host.prepare(squall_test_components::TEST_HOSTILE.as_ref())
                        .map(|p| p.sha256().to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert!(shas.windows(2).all(|w| w[0] == w[1]));
    let artifacts: Vec<_> = std::fs::read_dir(cache.path().join("components"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        artifacts.len(),
        1,
        "one artifact, no temporary files left: {artifacts:?}"
    );
}

fn host_over(cache: &std::path::Path) -> Host {
    Host::new(&HostConfig {
        settings: HostSettings::default(),
        ceiling: Limits::CEILING,
        cache_dir: cache.join("components"),
        cache_key_file: cache.join("cache.key"),
    })
    .unwrap()
}

/// The artifact file of the component whose digest is `sha` in `cache`.
fn artifact_of(cache: &std::path::Path, sha: &str) -> std::path::PathBuf {
    std::fs::read_dir(cache.join("components"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(sha))
        .unwrap_or_else(|| panic!("no artifact for {sha}"))
}

#[test]
fn a_swapped_or_forged_cache_file_is_never_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let (action_sha, sensor_sha) = {
        let host = host_over(cache.path());
        let action = host
            .prepare(squall_test_components::TEST_HOSTILE.as_ref())
            .unwrap();
        let sensor = host
            .prepare_sensor(squall_test_components::TEST_SENSOR.as_ref())
            .unwrap();
        (action.sha256().to_string(), sensor.sha256().to_string())
    };
    let action_file = artifact_of(cache.path(), &action_sha);
    let sensor_file = artifact_of(cache.path(), &sensor_sha);
    // Another component's (validly tagged) artifact under the action's name: its native code
    // must not run as the action.
    std::fs::copy(&sensor_file, &action_file).unwrap();
    let host = host_over(cache.path());
    let prepared = host
        .prepare(squall_test_components::TEST_HOSTILE.as_ref())
        .expect("the swapped artifact is refused and the component recompiled");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(host.run(
        &prepared,
        RunRequest {
            context: RunContext {
                execution_id: "0195f0c2-7b1e-7c3a-9d1e-2f4b6a8c0d13".into(),
                action_ref: "tests.hostile".into(),
                pack: "tests".into(),
                user: "tester".into(),
            },
            params: json!({"mode": "echo", "x": 1}),
            limits: limits(),
            http: Arc::new(HttpPolicy::default()),
            process: None,
            triggers: None,
            mail: None,
            keys: None,
            read_only: Vec::new(),
        },
    ));
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{:?}", out.result);
    assert_eq!(out.result["x"], 1);
    // A forged file (bytes that were never tagged by this host's key) is refused the same way.
    std::fs::write(&action_file, b"not an artifact at all").unwrap();
    let host = host_over(cache.path());
    assert!(
        host.prepare(squall_test_components::TEST_HOSTILE.as_ref())
            .is_ok()
    );
    assert_ne!(
        std::fs::read(&action_file).unwrap(),
        b"not an artifact at all"
    );
}

/// A component importing `process` / `triggers` is known as such once prepared; without a gate
/// (as here: no grants behind the host) every command and trigger instance is refused, and
/// nothing ran.
#[test]
fn commands_and_triggers_need_a_gate() {
    let f = fixture();
    assert!(f.hostile.uses_process() && f.hostile.uses_triggers());
    let out = run(json!({"mode": "command", "argv": ["true"]}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(
        out.result["error"],
        "commands cannot run here: no process capability is given to this call"
    );
    let out = run(json!({"mode": "dispatch", "trigger": "ops.alert", "payload": {}}));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(
        out.result["error"]
            .as_str()
            .unwrap()
            .starts_with("trigger instances cannot be dispatched here"),
        "{:?}",
        out.result
    );
    host_still_serves();
}
