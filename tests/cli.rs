//! End-to-end tests of the `squall` binary: real packs, real components built from source, a
//! real redb data directory, one process per command (so every read is from another process
//! than the write).

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};
use support::{HttpStub, Response, SQUALL, Server, copy_dir, hostile_action, new_pack, repo};

/// A scratch directory with a data dir and a config file; commands run with it as cwd.
struct Env {
    dir: tempfile::TempDir,
    packs: PathBuf,
}

impl Env {
    /// With the shipped packs and `config` as `squall.toml`.
    fn shipped(config: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("squall.toml"), config).unwrap();
        Env {
            packs: repo().join("packs"),
            dir,
        }
    }

    /// With a copy of `tests/fixtures/<fixture>/packs` (plus the hostile component where a pack
    /// asks for `ok.wasm`) and `config` as `squall.toml`.
    fn fixture(fixture: &str, config: &str) -> Env {
        let env = Env::shipped(config);
        copy_dir(
            &repo().join("tests/fixtures").join(fixture).join("packs"),
            &env.dir.path().join("packs"),
        );
        let good = env.dir.path().join("packs/good/actions");
        if good.is_dir() {
            std::fs::copy(squall_test_components::TEST_HOSTILE, good.join("ok.wasm")).unwrap();
        }
        // Relative to the working directory, so messages name `packs/...` as a user would see.
        Env {
            packs: PathBuf::from("packs"),
            ..env
        }
    }

    /// A pack named `tests` whose action `tests.hostile` is the hostile component, declared
    /// with `parameters` (YAML) and `limits` (YAML).
    fn hostile(parameters: &str, limits: &str) -> Env {
        let env = Env::shipped("");
        let pack = new_pack(env.dir.path(), "tests", "");
        hostile_action(
            &pack,
            "hostile",
            &format!("parameters:\n{parameters}\nlimits:\n{limits}\n"),
        );
        Env {
            packs: env.dir.path().join("packs"),
            ..env
        }
    }

    fn squall(&self, args: &[&str]) -> Output {
        Command::new(SQUALL)
            .current_dir(self.dir.path())
            .env_remove("SQUALL_CONFIG")
            .env_remove("SQUALL_LOG")
            .env("SQUALL_DATA_DIR", self.dir.path().join("data"))
            .env("SQUALL_PACKS", &self.packs)
            .env("USER", "tester")
            .args(args)
            .output()
            .unwrap()
    }

    /// `squall run ... --json`: the exit code and the execution record.
    fn run(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = self.squall(&all);
        let record = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "squall {all:?} printed no record ({e}); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), record)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An HTTP server on a random loopback port that answers every request with a JSON echo of
/// it (`{"method", "path", "headers", "body"}`), status taken from a `/status/<code>` path
/// (default 200); `/redirect/<host:port/path>` is a 302 there. Serves until the test process
/// ends.
fn echo_server() -> u16 {
    let stub = HttpStub::start(|r| {
        if let Some(target) = r.path.strip_prefix("/redirect/") {
            return Response::redirect(&format!("http://{target}"));
        }
        let status: u16 = r
            .path
            .strip_prefix("/status/")
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        Response::json(
            status,
            &json!({"method": r.method, "path": r.path, "headers": r.headers, "body": r.text()}),
        )
    });
    stub.port
}

#[test]
fn core_echo_runs_and_is_recorded() {
    let env = Env::shipped("");
    let out = env.squall(&["run", "core.echo", "message=hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("status: succeeded ("), "{stdout}");
    assert!(stdout.contains("\"stdout\": \"hello\""), "{stdout}");
    let id = stdout.split_whitespace().nth(1).unwrap().to_string();

    // Another process reads it back.
    let got = env.squall(&["execution", "get", &id, "--json"]);
    assert_eq!(got.status.code(), Some(0));
    let record: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["parameters"], json!({"message": "hello"}));
    assert_eq!(
        record["result"],
        json!({"failed": false, "succeeded": true, "return_code": 0, "stdout": "hello", "stderr": ""})
    );
    assert_eq!(record["context"]["user"], "tester");
    let log: Vec<&str> = record["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(log, ["requested", "scheduled", "running", "succeeded"]);
    assert_eq!(record["limits"]["timeout"], 10.0);
    assert!(record["usage"]["fuel_consumed"].as_u64().unwrap() > 0);
    assert_eq!(
        record["usage"]["component_sha256"].as_str().unwrap().len(),
        64
    );

    let table = text(&env.squall(&["execution", "get", &id]).stdout);
    assert!(
        table.contains("core.echo") && table.contains("fuel_consumed"),
        "{table}"
    );
}

#[test]
fn positional_values_fill_positional_parameters() {
    let env = Env::shipped("");
    let (code, record) = env.run(&["core.echo", "hi there"]);
    assert_eq!(code, 0);
    assert_eq!(record["result"]["stdout"], "hi there");
}

/// `core.noop`, `core.error`, `core.uuid` and `core.pause` give StackStorm's results:
/// `noop_runner.py`'s for noop; the local runner's for `>&2 echo "{{message}}"` (which exits 0:
/// st2's `core.error` succeeds); the Python runner's `{result, exit_code, stdout, stderr}` for
/// `generate_uuid.py` and `pause.py`.
#[test]
fn core_actions_give_stackstorms_results() {
    let env = Env::shipped("");
    let (code, record) = env.run(&["core.noop"]);
    assert_eq!(code, 0);
    assert_eq!(
        record["result"],
        json!({"failed": false, "succeeded": true, "return_code": 0})
    );
    let (code, record) = env.run(&["core.error", "message=it broke; $(id)"]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(record["status"], "succeeded");
    assert_eq!(
        record["result"],
        json!({"failed": false, "succeeded": true, "return_code": 0, "stdout": "", "stderr": "it broke; $(id)"})
    );
    for (kind, version) in [("uuid4", 4), ("uuid1", 1)] {
        let (code, record) = env.run(&["core.uuid", &format!("uuid_type={kind}")]);
        assert_eq!(code, 0, "{record:#}");
        let id: uuid::Uuid = record["result"]["result"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(id.get_version_num(), version, "{id}");
        assert_eq!(record["result"]["exit_code"], 0);
    }
    let (code, record) = env.run(&["core.uuid"]);
    assert_eq!(code, 0);
    assert_eq!(record["parameters"]["uuid_type"], "uuid4");
    let out = env.squall(&["run", "core.uuid", "uuid_type=uuid7"]);
    assert_ne!(out.status.code(), Some(0), "not in the enum");
    assert!(
        text(&out.stderr).contains("\"uuid7\" is not one of \"uuid1\" or \"uuid4\""),
        "{}",
        text(&out.stderr)
    );
    let started = std::time::Instant::now();
    let (code, record) = env.run(&["core.pause", "1"]);
    assert_eq!(code, 0, "{record:#}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(
        record["result"],
        json!({"result": 1, "exit_code": 0, "stdout": "", "stderr": ""})
    );
    let (code, record) = env.run(&["core.pause", "1", "true"]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(record["result"]["result"], 1, "randint(1, 1)");
}

#[test]
fn core_http_reaches_a_granted_local_server() {
    let port = echo_server();
    let env = Env::shipped("[packs.core]\nhttp_allow = [\"127.0.0.1:*\"]\n");
    let url = format!("url=http://127.0.0.1:{port}/health");
    let (code, record) = env.run(&[
        "core.http",
        &url,
        "method=POST",
        "body={\"a\": 1}",
        r#"headers={"content-type": "application/json", "x-trace": "t1"}"#,
        r#"params={"q": "x y"}"#,
    ]);
    assert_eq!(code, 0, "{record:#}");
    let result = &record["result"];
    assert_eq!(result["status_code"], 200);
    assert_eq!(result["parsed"], true);
    assert_eq!(result["headers"]["content-type"], "application/json");
    let seen = &result["body"];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/health?q=x+y");
    assert_eq!(seen["headers"]["x-trace"], "t1");
    assert!(
        seen["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("squall/")
    );
    assert_eq!(seen["body"], r#"{"a":1}"#);

    // Status outside 200-206 fails the execution but keeps the response as the result.
    let url = format!("url=http://127.0.0.1:{port}/status/503");
    let (code, record) = env.run(&["core.http", &url]);
    assert_eq!(code, 1);
    assert_eq!(record["status"], "failed");
    assert_eq!(record["result"]["status_code"], 503);
    assert!(
        record["result"]["error"]
            .as_str()
            .unwrap()
            .contains("returned status 503")
    );
}

#[test]
fn core_http_redirects_keep_credentials_only_on_the_same_origin() {
    let first = echo_server();
    let second = echo_server();
    let env = Env::shipped("[packs.core]\nhttp_allow = [\"127.0.0.1:*\"]\n");
    let run = |target: String| {
        let url = format!("url=http://127.0.0.1:{first}/redirect/{target}");
        let (code, record) = env.run(&[
            "core.http",
            &url,
            "allow_redirects=true",
            "username=bob",
            "password=hunter2",
            "method=POST",
            "body=x",
        ]);
        assert_eq!(code, 0, "{record:#}");
        record["result"]["body"].clone()
    };
    let same = run(format!("127.0.0.1:{first}/landed"));
    assert_eq!(same["path"], "/landed");
    assert!(
        same["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_eq!(
        same["method"], "GET",
        "a 302 turns a POST into a GET, as Python requests"
    );
    let other = run(format!("127.0.0.1:{second}/landed"));
    assert_eq!(other["path"], "/landed");
    assert!(other["headers"].get("authorization").is_none(), "{other:#}");
}

#[test]
fn core_http_to_a_host_not_granted_is_refused_naming_the_host() {
    let port = echo_server();
    let env = Env::shipped("[packs.core]\nhttp_allow = [\"api.example.com\"]\n");
    let url = format!("http://127.0.0.1:{port}/secret");
    let out = env.squall(&["run", "core.http", &format!("url={url}")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("status: failed"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "denied: outbound HTTP to 127.0.0.1:{port} is not granted to pack core"
        )),
        "{stdout}"
    );
    let id = stdout.split_whitespace().nth(1).unwrap();
    let record: Value =
        serde_json::from_slice(&env.squall(&["execution", "get", id, "--json"]).stdout).unwrap();
    assert!(
        record["result"]["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{record:#}"
    );
    assert_eq!(record["output"]["denials"].as_array().unwrap().len(), 1);
}

#[test]
fn a_granted_name_that_resolves_to_loopback_is_refused() {
    let port = echo_server();
    let env = Env::shipped("[packs.core]\nhttp_allow = [\"localhost:*\"]\n");
    let (code, record) = env.run(&["core.http", &format!("url=http://localhost:{port}/")]);
    assert_eq!(code, 1);
    let denial = record["output"]["denials"][0].as_str().unwrap();
    assert!(
        denial.contains(&format!("localhost:{port} refused: it resolves to")),
        "{denial}"
    );
    assert!(denial.contains("loopback"), "{denial}");
}

#[test]
fn hostile_components_end_as_timeout_or_failed_and_the_next_run_works() {
    let env = Env::hostile(
        "  mode: {type: string}\n  bytes: {type: integer}",
        "  timeout: 1s\n  fuel: 1000000000000\n  memory: 16MiB\n  max_output: 4KiB",
    );
    for (mode, status, error) in [
        ("loop", "timeout", "timeout of 1s exceeded"),
        (
            "memory",
            "failed",
            "memory limit of 16777216 bytes exceeded",
        ),
        ("recurse", "failed", "stack overflow"),
        ("panic", "failed", "component panicked"),
    ] {
        let (code, record) = env.run(&["tests.hostile", &format!("mode={mode}")]);
        assert_eq!(code, 1, "{mode}");
        assert_eq!(record["status"], status, "{mode}: {record:#}");
        assert!(
            record["result"]["error"].as_str().unwrap().contains(error),
            "{mode}: {record:#}"
        );
        let (code, record) = env.run(&["tests.hostile", "mode=echo"]);
        assert_eq!(
            (code, &record["status"]),
            (0, &json!("succeeded")),
            "after {mode}"
        );
    }
    let (code, record) = env.run(&["tests.hostile", "mode=output", "bytes=1000000"]);
    assert_eq!(code, 0);
    assert_eq!(record["output"]["stdout"].as_str().unwrap().len(), 4096);
    assert_eq!(record["output"]["stdout_dropped_bytes"], 1_000_000 - 4096);
}

#[test]
fn sandbox_hides_files_and_environment() {
    let env = Env::hostile(
        "  mode: {type: string}\n  path: {type: string}",
        "  timeout: 5s",
    );
    let (code, record) = env.run(&["tests.hostile", "mode=read-file", "path=/etc/passwd"]);
    assert_eq!(code, 1);
    assert!(!record.to_string().contains("root:"));
    let (code, record) = env.run(&["tests.hostile", "mode=env"]);
    assert_eq!(code, 0);
    assert_eq!(record["result"]["vars"], json!([]));
}

const VALIDATED: &str = "  mode: {type: string, default: echo}
  count: {type: integer, required: true}
  token: {type: string, secret: true}
  agent: {type: string, default: squall, immutable: true}";

#[test]
fn parameters_are_validated_before_anything_is_recorded() {
    let env = Env::hostile(VALIDATED, "  timeout: 5s");
    for (args, want) in [
        (vec![], "\"count\" is a required property"),
        (
            vec!["count=many"],
            "parameter \"count\": cannot convert \"many\" to integer",
        ),
        (
            vec![r#"count=1"#, "bogus=2"],
            "Additional properties are not allowed ('bogus' was unexpected)",
        ),
        (
            vec!["count=1", "agent=curl"],
            "Override of immutable parameter(s) ['agent'] is unsupported.",
        ),
    ] {
        let mut all = vec!["run", "tests.hostile"];
        all.extend(args.iter().copied());
        let out = env.squall(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let list: Value =
        serde_json::from_slice(&env.squall(&["execution", "list", "--json"]).stdout).unwrap();
    assert_eq!(list, json!([]));
}

#[test]
fn secrets_are_masked_in_every_output() {
    let env = Env::hostile(VALIDATED, "  timeout: 5s");
    // `log` mode does not echo its parameters, so the secret can only show through a leak.
    let out = env.squall(&[
        "run",
        "tests.hostile",
        "mode=log",
        "count=2",
        "token=hunter2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("hunter2"));
    let id = text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    for args in [
        vec!["execution", "get", id.as_str()],
        vec!["execution", "get", id.as_str(), "--json"],
        vec!["execution", "list"],
        vec!["execution", "list", "--json"],
    ] {
        let shown = env.squall(&args);
        let shown = text(&shown.stdout) + &text(&shown.stderr);
        assert!(!shown.contains("hunter2"), "{args:?}: {shown}");
    }
    let record: Value =
        serde_json::from_slice(&env.squall(&["execution", "get", &id, "--json"]).stdout).unwrap();
    assert_eq!(record["parameters"]["token"], "********");
    assert_eq!(record["parameters"]["agent"], "squall");
    let table = text(&env.squall(&["execution", "get", &id]).stdout);
    assert!(table.contains(r#""token": "********""#), "{table}");
}

#[test]
fn executions_list_newest_first_and_filter_across_processes() {
    let env = Env::shipped("");
    let mut ids = Vec::new();
    for args in [
        vec!["core.noop"],
        vec!["core.echo", "message=a"],
        vec!["core.echo", "message=b"],
    ] {
        let (code, record) = env.run(&args);
        assert_eq!(code, 0);
        ids.push(record["id"].as_str().unwrap().to_string());
    }
    let list: Value =
        serde_json::from_slice(&env.squall(&["execution", "list", "--json"]).stdout).unwrap();
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
    let echo: Value = serde_json::from_slice(
        &env.squall(&[
            "execution",
            "list",
            "--action",
            "core.echo",
            "-n",
            "1",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(echo.as_array().unwrap().len(), 1);
    assert_eq!(echo[0]["id"], ids[2]);
    let table = text(&env.squall(&["execution", "list"]).stdout);
    assert!(
        table.contains(&ids[0]) && table.contains("succeeded"),
        "{table}"
    );
    let missing = env.squall(&["execution", "get", "01a2063e-0000-7000-8000-000000000000"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("not found"));
}

#[test]
fn broken_packs_are_reported_with_file_and_field_and_the_rest_loads() {
    let env = Env::fixture("broken-packs", "");
    let out = env.squall(&["action", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let expected =
        std::fs::read_to_string(repo().join("tests/fixtures/broken-packs/expected-errors.txt"))
            .unwrap();
    let stderr = text(&out.stderr);
    if std::env::var_os("SQUALL_BLESS").is_some() {
        std::fs::write(
            repo().join("tests/fixtures/broken-packs/expected-errors.txt"),
            &stderr,
        )
        .unwrap();
    }
    assert_eq!(
        stderr, expected,
        "stderr differs from the golden file (rerun with SQUALL_BLESS=1 to accept)"
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let refs: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["good.ok", "malformed.broken"]);

    let (code, record) = env.run(&["good.ok"]);
    assert_eq!(code, 0, "{record:#}");

    // A file that is not a component fails its executions, naming the file.
    let (code, record) = env.run(&["malformed.broken"]);
    assert_eq!(code, 1);
    let error = record["result"]["error"].as_str().unwrap();
    assert!(
        error.contains("packs/malformed/actions/broken.wasm: not a valid WebAssembly component"),
        "{error}"
    );
    let get = text(&env.squall(&["action", "get", "malformed.broken"]).stdout);
    assert!(
        get.contains("BROKEN: packs/malformed/actions/broken.wasm"),
        "{get}"
    );
}

#[test]
fn bad_config_is_an_input_error_naming_the_file_and_key() {
    let env = Env::shipped("[limits.default]\ntimout = \"5s\"\n");
    let out = env.squall(&["action", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: squall.toml: ") && stderr.contains("timout"),
        "{stderr}"
    );
}

#[test]
fn unknown_action_is_an_input_error() {
    let env = Env::shipped("");
    let out = env.squall(&["run", "core.nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("action core.nope not found"));
}

// ---- Workflows and inquiries through the CLI ----

impl Env {
    /// The shipped packs plus a pack `flows` made of `files` (path under the pack, content).
    fn flows(files: &[(&str, &str)]) -> Env {
        let env = Env::shipped("");
        let pack = env.dir.path().join("packs/flows");
        std::fs::create_dir_all(pack.join("actions/workflows")).unwrap();
        std::fs::write(pack.join("pack.yaml"), "name: flows\n").unwrap();
        for (path, content) in files {
            std::fs::write(pack.join(path), content).unwrap();
        }
        let packs = std::env::join_paths([env.packs.clone(), env.dir.path().join("packs")])
            .unwrap()
            .into();
        Env { packs, ..env }
    }

    /// Writes `content` to `name` in the scratch directory.
    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.dir.path().join(name), content).unwrap();
    }

    /// Starts `squall serve` over this data directory and packs, on a random loopback port.
    fn serve(&self) -> Server {
        let data = self.dir.path().join("data");
        Server::start_with(
            self.dir.path(),
            "127.0.0.1:0",
            &[
                ("SQUALL_DATA_DIR", data.as_os_str()),
                ("SQUALL_PACKS", self.packs.as_os_str()),
            ],
        )
    }

    /// `squall <args>` against the server `served`.
    fn squall_at(&self, served: &Server, args: &[&str]) -> Output {
        Command::new(SQUALL)
            .current_dir(self.dir.path())
            .env_remove("SQUALL_CONFIG")
            .env_remove("SQUALL_LOG")
            .env("SQUALL_API_URL", &served.url)
            .env("SQUALL_DATA_DIR", self.dir.path().join("data"))
            .env("SQUALL_PACKS", &self.packs)
            .env("USER", "tester")
            .args(args)
            .output()
            .unwrap()
    }

    /// `squall <args> --json` (against `served` when given): exit code 0 asserted, stdout
    /// parsed.
    fn json(&self, served: Option<&Server>, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = match served {
            Some(s) => self.squall_at(s, &all),
            None => self.squall(&all),
        };
        assert_eq!(out.status.code(), Some(0), "{all:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {}", text(&out.stdout)))
    }
}

/// Calls `probe` until it gives a value, or panics naming `what` after `secs` seconds.
fn poll<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The values at `pointer` of each record of a JSON list.
fn column<'a>(list: &'a Value, pointer: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e.pointer(pointer).and_then(Value::as_str).unwrap_or(""))
        .collect()
}

/// The line of a table that mentions `needle`.
fn row<'a>(table: &'a str, needle: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle} in:\n{table}"))
}

const GREET_ACTION: &str = "name: greet\nrunner_type: orquesta\nentry_point: workflows/greet.yaml\n\
parameters:\n  name: {type: string, required: true}\n";

const GREET_WORKFLOW: &str = r#"version: 1.0
input:
  - name
tasks:
  hello:
    action: core.echo
    input:
      message: "hello {{ ctx('name') }}"
    next:
      - when: <% succeeded() %>
        publish:
          - greeting: "{{ result().stdout }}"
        do: shout
  shout:
    action: core.echo
    input:
      message: "{{ ctx('greeting') }}!"
    next:
      # `do: noop`: the conductor drops what a `next` without `do` publishes (reported).
      - when: <% succeeded() %>
        publish:
          - shouted: "{{ result().stdout }}"
        do: noop
output:
  - greeting: <% ctx(greeting) %>
  - shouted: "{{ ctx('shouted') }}"
"#;

#[test]
fn workflow_inspect_names_file_and_field_of_every_problem() {
    let env = Env::shipped("");
    env.write("good.yaml", GREET_WORKFLOW);
    env.write(
        "bad.yaml",
        r#"version: 1.0
tasks:
  first:
    action: core.echo
    input:
      message: <% ctx(nope) %>
    next:
      - when: <% succeeded() %>
        do: [second, missing]
  second:
    action: core.nothing
  third:
    action: core.echo
    input:
      message: "{{ ctx('later') }}"
"#,
    );
    env.write("broken.yaml", "version: 1.0\ntasks: [1, 2]\n");

    let out = env.squall(&["workflow", "inspect", "good.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "good.yaml: ok\n");
    assert_eq!(text(&out.stderr), "");

    let out = env.squall(&["workflow", "inspect", "good.yaml", "bad.yaml", "gone.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout),
        "good.yaml: ok\n\
         bad.yaml: tasks.first.input.message: variable \"nope\" is referenced before assignment\n\
         bad.yaml: tasks.first.next[0].do: task \"missing\" is not defined\n\
         bad.yaml: tasks.second.action: action \"core.nothing\" not found\n\
         bad.yaml: tasks.third.input.message: variable \"later\" is referenced before assignment\n\
         gone.yaml: cannot read: No such file or directory (os error 2)\n"
    );
    assert_eq!(text(&out.stderr), "5 problems in 2 of 3 files\n");

    // A YAML error keeps its excerpt, pointing at the file.
    let out = env.squall(&["workflow", "inspect", "broken.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "broken.yaml: line 2 column 8: expected mapping start\n --> broken.yaml:2:8\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains(": ok"), "{stdout}");
}

#[test]
fn a_workflow_runs_end_to_end_and_shows_its_tasks() {
    let env = Env::flows(&[
        ("actions/greet.yaml", GREET_ACTION),
        ("actions/workflows/greet.yaml", GREET_WORKFLOW),
    ]);
    let (code, wf) = env.run(&["flows.greet", "name=world"]);
    assert_eq!(code, 0, "{wf:#}");
    assert_eq!(wf["status"], "succeeded");
    assert_eq!(wf["action"]["runner_type"], "orquesta");
    assert_eq!(
        wf["result"],
        json!({"output": {"greeting": "hello world", "shouted": "hello world!"}})
    );
    let id = wf["id"].as_str().unwrap();

    let tasks = env.json(None, &["execution", "list", "--parent", id]);
    assert_eq!(
        column(&tasks, "/context/orquesta/task_name"),
        ["shout", "hello"]
    );
    assert_eq!(column(&tasks, "/action/ref"), ["core.echo", "core.echo"]);
    assert_eq!(column(&tasks, "/status"), ["succeeded", "succeeded"]);
    assert_eq!(column(&tasks, "/parent"), [id, id]);
    assert_eq!(tasks[0]["result"]["stdout"], "hello world!");
    assert_eq!(tasks[1]["parameters"], json!({"message": "hello world"}));
    let (shout, hello) = (
        tasks[0]["id"].as_str().unwrap(),
        tasks[1]["id"].as_str().unwrap(),
    );
    let children: Vec<&str> = wf["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(children, [hello, shout]);

    let listed = text(&env.squall(&["execution", "list", "--parent", id]).stdout);
    assert!(row(&listed, "action.ref").contains(" task "), "{listed}");
    assert!(row(&listed, hello).contains(" hello "), "{listed}");
    assert!(!listed.contains(id), "only the tasks are listed: {listed}");

    // `get` prints the task table after the details, oldest first.
    let shown = text(&env.squall(&["execution", "get", id]).stdout);
    let header = shown
        .lines()
        .position(|l| l.contains(" task ") && l.contains("start_timestamp"))
        .unwrap_or_else(|| panic!("no task table in:\n{shown}"));
    let after: Vec<&str> = shown.lines().skip(header).collect();
    let at = |needle: &str| after.iter().position(|l| l.contains(needle)).unwrap();
    assert!(at(hello) < at(shout), "{shown}");
    for (task_id, task) in [(hello, " hello "), (shout, " shout ")] {
        let line = after[at(task_id)];
        assert!(
            line.contains(task) && line.contains("core.echo") && line.contains("succeeded"),
            "{line}"
        );
    }
    // A task execution names its workflow and task.
    let child = text(&env.squall(&["execution", "get", shout]).stdout);
    assert!(row(&child, "parent").contains(id), "{child}");
    assert!(row(&child, "│ task").contains("shout"), "{child}");
    // --json stays the record.
    assert_eq!(env.json(None, &["execution", "get", id])["id"], id);

    // Re-run from a task: a new workflow execution; the task before it is not run again.
    let again = env.squall(&["execution", "re-run", id, "--tasks", "shout", "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_ne!(again["id"], id);
    assert_eq!(again["status"], "succeeded");
    assert_eq!(again["result"], wf["result"]);
    let rerun = env.json(
        None,
        &[
            "execution",
            "list",
            "--parent",
            again["id"].as_str().unwrap(),
        ],
    );
    assert_eq!(column(&rerun, "/context/orquesta/task_name"), ["shout"]);

    // Tasks and new parameters do not mix; pausing or resuming a finished workflow is refused.
    let mixed = env.squall(&["execution", "re-run", id, "--tasks", "shout", "name=x"]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(text(&mixed.stderr).contains("--tasks and KEY=VALUE parameters cannot be combined"));
    for verb in ["pause", "resume"] {
        let out = env.squall(&["execution", verb, id]);
        assert_eq!(out.status.code(), Some(2), "{verb}");
        assert!(
            text(&out.stderr)
                .starts_with(&format!("error: execution {id}: the workflow is succeeded")),
            "{verb}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn re_run_of_an_action_takes_new_parameters_and_pause_needs_a_workflow() {
    let env = Env::shipped("");
    let (code, first) = env.run(&["core.echo", "message=once"]);
    assert_eq!(code, 0);
    let id = first["id"].as_str().unwrap();
    let out = env.squall(&["execution", "re-run", id, "message=twice"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("status: succeeded ("), "{stdout}");
    assert!(stdout.contains("\"stdout\": \"twice\""), "{stdout}");
    let same = env.squall(&["execution", "re-run", id, "--json"]);
    let same: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(same["parameters"], json!({"message": "once"}));
    assert_ne!(same["id"], id);

    let out = env.squall(&["execution", "pause", id]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: execution {id} is a wasm execution; only workflow executions can be paused\n"
        )
    );
}

const APPROVAL_ACTION: &str =
    "name: approval\nrunner_type: orquesta\nentry_point: workflows/approval.yaml\n";

const APPROVAL_WORKFLOW: &str = r#"version: 1.0
tasks:
  approve:
    action: core.ask
    next:
      - when: <% succeeded() %>
        do: report
  report:
    action: core.echo
    input:
      message: approved
    next:
      - when: <% succeeded() %>
        publish:
          - said: "{{ result().stdout }}"
        do: noop
output:
  - said: "{{ ctx('said') }}"
"#;

#[test]
fn an_inquiry_is_answered_through_the_cli_and_the_workflow_goes_on() {
    let env = Env::flows(&[
        ("actions/approval.yaml", APPROVAL_ACTION),
        ("actions/workflows/approval.yaml", APPROVAL_WORKFLOW),
    ]);
    // In-process, nothing would carry the workflow on once the command exits.
    let out = env.squall(&["run", "flows.approval", "--async"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--async needs a running `squall serve`"));

    let server = env.serve();
    let s = Some(&server);
    let requested = env.json(s, &["run", "flows.approval", "--async"]);
    let wf = requested["id"].as_str().unwrap().to_string();
    let pending = poll(60, "the inquiry", || {
        let list = env.json(s, &["inquiry", "list"]);
        (!list.as_array().unwrap().is_empty()).then_some(list)
    });
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending:#}");
    let inquiry = &pending[0];
    let iq = inquiry["id"].as_str().unwrap().to_string();
    assert_eq!(inquiry["parent"], wf.as_str());
    assert_eq!(inquiry["status"], "pending");
    assert_eq!(
        inquiry["schema"]["properties"]["continue"]["type"],
        "boolean"
    );
    assert_eq!(
        (
            &inquiry["roles"],
            &inquiry["users"],
            &inquiry["route"],
            &inquiry["ttl"]
        ),
        (&json!([]), &json!([]), &json!(""), &json!(1440.0))
    );
    let table = text(&env.squall_at(&server, &["inquiry", "list"]).stdout);
    assert!(row(&table, &iq).contains(&wf), "{table}");
    poll(30, "the workflow to pause", || {
        (env.json(s, &["execution", "get", &wf])["status"] == "paused").then_some(())
    });

    // Bad answers: not JSON, or not what the schema wants; the inquiry stays pending.
    let out = env.squall_at(&server, &["inquiry", "respond", &iq, "{continue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: response \"{continue\" is not JSON: "),
        "{}",
        text(&out.stderr)
    );
    let out = env.squall_at(
        &server,
        &["inquiry", "respond", &iq, r#"{"continue": "no"}"#],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: the response does not match the inquiry's schema: continue: \"no\" is not of type \"boolean\"\n"
    );
    assert_eq!(env.json(s, &["inquiry", "get", &iq])["status"], "pending");

    // Paused by request too: the answer alone does not carry it on; resume does.
    let out = env.squall_at(&server, &["execution", "pause", &wf]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("id: {wf}  status: paused\n")),
        "{}",
        text(&out.stdout)
    );
    let answered = env.json(s, &["inquiry", "respond", &iq, r#"{"continue": true}"#]);
    assert_eq!(answered, json!({"id": iq, "response": {"continue": true}}));
    let again = env.squall_at(
        &server,
        &["inquiry", "respond", &iq, r#"{"continue": true}"#],
    );
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(env.json(s, &["inquiry", "list"]), json!([]));
    let got = env.json(s, &["inquiry", "get", &iq]);
    assert_eq!(
        (&got["status"], &got["response"]),
        (&json!("succeeded"), &json!({"continue": true}))
    );
    assert_eq!(env.json(s, &["execution", "get", &wf])["status"], "paused");
    let out = env.squall_at(&server, &["execution", "resume", &wf]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("id: {wf}  status: ")),
        "{}",
        text(&out.stdout)
    );

    let done = poll(60, "the workflow to complete", || {
        let e = env.json(s, &["execution", "get", &wf]);
        (["succeeded", "failed", "timeout", "canceled", "abandoned"]
            .contains(&e["status"].as_str().unwrap_or_default()))
        .then_some(e)
    });
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["result"], json!({"output": {"said": "approved"}}));
    let tasks = env.json(s, &["execution", "list", "--parent", &wf]);
    assert_eq!(
        column(&tasks, "/context/orquesta/task_name"),
        ["report", "approve"]
    );
    assert_eq!(column(&tasks, "/status"), ["succeeded", "succeeded"]);
}

/// `squall pack validate`: what the server would refuse, found before serving — each problem as
/// `<file>: <field>: <reason>` (a bad runner, a rule naming an action that does not exist, a
/// component that is not one), exit code 2; a sound pack is `ok`, exit code 0.
#[test]
fn pack_validate_names_each_problem_before_serving() {
    let env = Env::shipped("");
    let packs = env.dir.path().join("packs");
    let acme = new_pack(env.dir.path(), "acme", "");
    hostile_action(&acme, "fine", "");
    let actions = acme.join("actions");
    std::fs::write(
        actions.join("typo.yaml"),
        "name: typo\nrunner_type: pythn\nentry_point: x.py\n",
    )
    .unwrap();
    std::fs::write(actions.join("fake.wasm"), b"\0asm not really a component").unwrap();
    std::fs::write(
        actions.join("fake.yaml"),
        "name: fake\nrunner_type: wasm\nentry_point: fake.wasm\n",
    )
    .unwrap();
    std::fs::create_dir_all(acme.join("rules")).unwrap();
    std::fs::write(
        acme.join("rules/r.yaml"),
        "name: r\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: x}}\n\
         action: {ref: acme.missing}\n",
    )
    .unwrap();
    let out = Command::new(SQUALL)
        .current_dir(env.dir.path())
        .env_remove("SQUALL_CONFIG")
        .env_remove("SQUALL_PACKS")
        .env("SQUALL_DATA_DIR", env.dir.path().join("data"))
        .args(["pack", "validate", "packs/acme"])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("actions/typo.yaml: runner_type: unknown runner \"pythn\""),
        "{said}"
    );
    assert!(said.contains("rules/r.yaml: action.ref:"), "{said}");
    assert!(said.contains("acme.missing"), "{said}");
    assert!(
        said.contains("actions/fake.yaml: entry_point:") && said.contains("fake.wasm"),
        "{said}"
    );
    assert!(!said.contains("actions/fine.yaml"), "{said}");
    let summary = text(&out.stderr);
    assert!(
        summary.contains("packs/acme (acme: 2 actions, 0 rules"),
        "{summary}"
    );
    assert!(summary.contains(": 3 problems"), "{summary}");

    // Mended, it is ok; the shipped packs it may refer to are found as the server finds them.
    for file in ["actions/typo.yaml", "actions/fake.yaml", "rules/r.yaml"] {
        std::fs::remove_file(acme.join(file)).unwrap();
    }
    std::fs::write(
        acme.join("rules/r.yaml"),
        "name: r\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: x}}\n\
         action: {ref: core.noop}\n",
    )
    .unwrap();
    let out = Command::new(SQUALL)
        .current_dir(env.dir.path())
        .env_remove("SQUALL_CONFIG")
        .env(
            "SQUALL_PACKS",
            format!("{}:{}", repo().join("packs").display(), packs.display()),
        )
        .env("SQUALL_DATA_DIR", env.dir.path().join("data"))
        .args(["pack", "validate", "packs/acme"])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert_eq!(
        said,
        "packs/acme (acme: 1 actions, 1 rules, 0 sensors, 0 trigger types, 0 policies): ok\n"
    );
}

/// `squall pack list` and `squall pack get` (as `st2 pack list|get`, over `/api/v1/packs` and
/// `/api/v1/packs/{ref}`), and a pack that is not loaded.
#[test]
fn pack_list_and_get_show_the_loaded_packs() {
    let env = Env::shipped("");
    let out = env.squall(&["pack", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains("│ ref "), "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("│ core ") && l.contains("Squall developers")),
        "{listed}"
    );
    let out = env.squall(&["pack", "get", "core", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let core: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(core["ref"], "core");
    assert!(core["actions"].as_u64().unwrap() >= 10, "{core:#}");
    let out = env.squall(&["pack", "get", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pack \"nope\" not found"),
        "{}",
        text(&out.stderr)
    );
}
