//! A component for the host's tests: `{"mode": "<mode>", ...}` picks what it does.
//!
//! | mode | behaviour |
//! |---|---|
//! | `echo` | returns its parameters |
//! | `log` | `log`s, prints to stdout and stderr, succeeds |
//! | `loop` | spins forever (fuel or the wall clock must stop it) |
//! | `sleep` | sleeps `ms` milliseconds in a host call (only the wall clock can stop it) |
//! | `memory` | allocates until linear memory cannot grow |
//! | `recurse` | recurses without bound in small frames (WebAssembly stack overflow) |
//! | `recurse-frames` | recurses with large frames (overflows its own stack in linear memory) |
//! | `output` | writes `bytes` bytes to stdout (default 64 MiB) |
//! | `big-result` | returns a result of `bytes` bytes |
//! | `log-flood` | logs `lines` lines (default 1,000,000) |
//! | `empty-log-flood` | logs `lines` empty lines |
//! | `deny-flood` | GETs `url` (a refused destination) `times` times |
//! | `big-fail` | fails with a result of `bytes` bytes |
//! | `panic` | panics with "boom" |
//! | `exit` | calls `std::process::exit(3)` |
//! | `read-file` | reads `path` (default `/etc/passwd`) and returns it |
//! | `env` | returns every environment variable and argument it can see |
//! | `http` | GETs `url` and returns the status |
//! | `fail` | returns an action error with a result |
//! | `command` | runs `argv` (with `env`, `cwd`, `stdin`, `timeout`) through `process` and returns what it did |
//! | `commands` | runs `argv` `times` times through `process` (past refusals with `keep_going`), returns how many ran and the last error |
//! | `dispatch` | dispatches a `trigger` instance with `payload` through `triggers`, returns its id |

#![allow(
    clippy::print_stdout,
    reason = "writing to stdout is one of the behaviours under test"
)]

use serde_json::{Value, json};
use squall_plugin::{Context, Error, http, log};
use std::hint::black_box;
use std::io::Write;

fn number(params: &Value, key: &str, default: u64) -> u64 {
    params.get(key).and_then(Value::as_u64).unwrap_or(default)
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(recurse(depth + 1)).wrapping_add(black_box(depth))
}

#[inline(never)]
fn recurse_frames(depth: u64, pad: [u8; 256]) -> u64 {
    let next = black_box(pad);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_frames(depth + 1, next) + u64::from(next[0])
}

fn run(ctx: &Context, params: Value) -> Result<Value, Error> {
    let mode = params.get("mode").and_then(Value::as_str).unwrap_or("echo");
    match mode {
        "echo" => Ok(params),
        "log" => {
            log::info(format!("hello from {}", ctx.action_ref));
            log::warn("careful");
            println!("to stdout");
            eprintln!("to stderr");
            Ok(json!({"logged": true}))
        }
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_millis(number(
                &params, "ms", 60_000,
            )));
            Ok(json!({"slept": true, "tag": params.get("tag")}))
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut block = vec![0u8; 1 << 20];
                block[0] = 1;
                hoard.push(black_box(block));
            }
        }
        "recurse" => Ok(json!({"depth": recurse(0)})),
        "recurse-frames" => Ok(json!({"depth": recurse_frames(0, [1; 256])})),
        "output" => {
            let total = number(&params, "bytes", 64 << 20);
            let chunk = vec![b'x'; 64 * 1024];
            let mut out = std::io::stdout();
            let mut written = 0;
            while written < total {
                let n = chunk.len().min((total - written) as usize);
                // A full capture buffer is not an error for the guest: the host drops the rest.
                out.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
                written += n as u64;
            }
            Ok(json!({"written": written}))
        }
        "big-result" => {
            let n = number(&params, "bytes", 8 << 20) as usize;
            Ok(Value::String("y".repeat(n)))
        }
        "log-flood" => {
            for i in 0..number(&params, "lines", 1_000_000) {
                log::info(format!("line {i}"));
            }
            Ok(json!({"flooded": true}))
        }
        "empty-log-flood" => {
            for _ in 0..number(&params, "lines", 1_000_000) {
                log::info("");
            }
            Ok(json!({"flooded": true}))
        }
        "deny-flood" => {
            let url = params
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("http://example.com/");
            let mut refused = 0;
            for _ in 0..number(&params, "times", 1000) {
                if http::Request::new("GET", url).send().is_err() {
                    refused += 1;
                }
            }
            Ok(json!({"refused": refused}))
        }
        "big-fail" => {
            let n = number(&params, "bytes", 100_000) as usize;
            Err(Error::with_result(
                "big failure",
                json!({"blob": "z".repeat(n)}),
            ))
        }
        "panic" => panic!("boom"),
        "exit" => std::process::exit(3),
        "read-file" => {
            let path = params
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("/etc/passwd");
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::with_result(format!("cannot read {path}: {e}"), json!({"denied": true}))
            })?;
            Ok(json!({"contents": text}))
        }
        "env" => Ok(json!({
            "vars": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
            "cwd": std::env::current_dir().ok().map(|p| p.display().to_string()),
        })),
        "http" => {
            let url = params
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("http://example.com/");
            let resp = http::Request::new("GET", url).send()?;
            Ok(json!({"status": resp.status, "body": resp.text()}))
        }
        "hold-connections" => Ok(hold_connections(&params)),
        "fail" => Err(Error::with_result("asked to fail", json!({"why": "test"}))),
        "command" => command(&params),
        "dispatch" => {
            let trigger = params
                .get("trigger")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let payload = params.get("payload").cloned().unwrap_or(json!({}));
            let id = squall_plugin::triggers::dispatch(trigger, &payload).map_err(Error::new)?;
            Ok(json!({"id": id}))
        }
        "commands" => {
            let mut ran = 0;
            let mut error = None;
            for _ in 0..number(&params, "times", 1) {
                match process_command(&params).run() {
                    Ok(_) => ran += 1,
                    Err(e) => {
                        error = Some(e);
                        if params.get("keep_going") != Some(&Value::Bool(true)) {
                            break;
                        }
                    }
                }
            }
            Ok(json!({"ran": ran, "error": error}))
        }
        other => Err(Error::new(format!("unknown mode {other:?}"))),
    }
}

/// Opens `times` GET requests to `url` at once and keeps every response (so its connection)
/// until all were tried; returns how many got a response and how many were refused, by error.
fn hold_connections(params: &Value) -> Value {
    use squall_plugin::bindings::wasi::http::outgoing_handler;
    use squall_plugin::bindings::wasi::http::types::{Fields, OutgoingRequest, Scheme};
    let url = params
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1:1");
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let mut held = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for _ in 0..number(params, "times", 100) {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_scheme(Some(&Scheme::Http));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some("/"));
        match outgoing_handler::handle(request, None) {
            Err(code) => refused.push(format!("{code:?}")),
            Ok(pending) => {
                pending.subscribe().block();
                match pending.get() {
                    Some(Ok(Ok(response))) => held.push(response),
                    Some(Ok(Err(code))) => refused.push(format!("{code:?}")),
                    _ => refused.push("no response".into()),
                }
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(number(
        params, "hold_ms", 0,
    )));
    json!({"held": held.len(), "refused": refused.len(), "errors": refused.first()})
}

squall_plugin::action!(run);

fn process_command(params: &Value) -> squall_plugin::process::Command {
    let argv: Vec<String> = params
        .get("argv")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut cmd = squall_plugin::process::Command::new(argv);
    if let Some(env) = params.get("env").and_then(Value::as_object) {
        for (k, v) in env {
            cmd = cmd.env(k, v.as_str().unwrap_or_default());
        }
    }
    if let Some(dir) = params.get("cwd").and_then(Value::as_str) {
        cmd = cmd.cwd(dir);
    }
    if let Some(input) = params.get("stdin").and_then(Value::as_str) {
        cmd = cmd.stdin(input.as_bytes());
    }
    if let Some(t) = params.get("timeout").and_then(Value::as_u64) {
        cmd = cmd.timeout_seconds(u32::try_from(t).unwrap_or(u32::MAX));
    }
    cmd
}

fn command(params: &Value) -> Result<Value, Error> {
    let out = process_command(params).run().map_err(Error::new)?;
    Ok(json!({
        "exit_code": out.exit_code,
        "signal": out.signal,
        "timed_out": out.timed_out,
        "stdout": out.stdout,
        "stderr": out.stderr,
        "stdout_bytes": out.stdout_bytes,
        "stderr_bytes": out.stderr_bytes,
        "duration_ms": out.duration_ms,
    }))
}
