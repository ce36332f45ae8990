//! End-to-end tests of StackStorm's local command runners in `squall serve`: `core.local` and
//! `local-shell-script` actions denied until the operator grants them and then run as StackStorm
//! runs them (result `{failed, succeeded, return_code, stdout, stderr}`, status by exit code,
//! script arguments — as `contrib/runners/local_runner` and `st2common/models/system/action.py`),
//! shell syntax never smuggling a second command past a pattern, hostile commands contained (a
//! timeout killing the whole process group, SIGTERM ignored, an output flood, a fork bomb), a
//! StackStorm-format pack loaded unchanged (`tests/fixtures/st2-pack`), `/api/v1/runnertypes`,
//! no command left running by a server killed with SIGKILL, and StackStorm's `http-request`
//! runner (a pack's own HTTP actions, under that pack's `http_allow`).

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{HttpStub, Response, Server, copy_dir, new_pack, repo, write_squall_toml};

fn completed(e: &Value) -> bool {
    matches!(
        e["status"].as_str(),
        Some("succeeded" | "failed" | "timeout" | "canceled" | "abandoned")
    )
}

/// Requests `action` with `parameters`; returns its id.
fn request(server: &Server, action: &str, parameters: Value) -> String {
    let (status, created) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": action, "parameters": parameters})),
    );
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

/// Runs `action` with `parameters` to its end; returns the execution.
fn run(server: &Server, action: &str, parameters: Value) -> Value {
    let id = request(server, action, parameters);
    server.wait_for(&format!("/api/v1/executions/{id}"), 60, completed)
}

/// A scratch site with the shipped packs, `squall.toml` followed by `grants`, and the
/// directory readable by every user (commands may run as `nobody`).
fn site(grants: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    write_squall_toml(dir.path(), grants);
    dir
}

/// Processes whose process group is `pgid` (from `/proc`).
fn group_members(pgid: u64) -> Vec<u64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let rest = &s[s.rfind(')').unwrap() + 2..];
                rest.split_whitespace().nth(2) == Some(&pgid.to_string())
            })
        })
        .collect()
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

#[test]
fn core_local_is_denied_until_granted_then_runs_as_st2() {
    let dir = site("");
    let server = Server::start(dir.path());
    let e = run(&server, "core.local", json!({"cmd": "uname -a"}));
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["error"].as_str().unwrap();
    assert!(
        error.contains("[packs.core] commands in squall.toml") && error.contains("\"uname\""),
        "the message names the grant to add: {error}"
    );
    assert_eq!(e["output"]["denials"][0], error);
    assert!(e.get("commands").is_none(), "nothing ran: {e:#}");
    drop(server);

    write_squall_toml(
        dir.path(),
        "[packs.core]\ncommands = [\"uname\", \"printf **\", \"ls **\", \"sleep *\"]\n",
    );
    let server = Server::start(dir.path());
    let e = run(&server, "core.local", json!({"cmd": "uname -a"}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let r = &e["result"];
    assert_eq!(r["failed"], false);
    assert_eq!(r["succeeded"], true);
    assert_eq!(r["return_code"], 0);
    assert_eq!(r["stderr"], "");
    let stdout = r["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with("Linux ") && !stdout.ends_with('\n'),
        "{stdout:?}"
    );
    // The audit record of the command.
    let c = &e["commands"][0];
    assert!(c["argv"][0].as_str().unwrap().ends_with("/uname"), "{c}");
    assert_eq!(c["argv"][1], "-a");
    assert_eq!(c["host"], "localhost");
    assert_eq!(c["ended"], "exited");
    assert_eq!(c["exit_code"], 0);
    assert_eq!(c["stdout_bytes"], stdout.len() + 1);
    assert!(c["duration_ms"].is_u64() && c["pid"].as_u64().unwrap() > 1);
    assert!(
        !Path::new(c["cwd"].as_str().unwrap()).exists(),
        "the fresh directory is removed"
    );

    // stdout that is JSON becomes JSON; a non-zero exit fails with StackStorm's result.
    let e = run(
        &server,
        "core.local",
        json!({"cmd": "printf '{\"a\": [1, 2]}'"}),
    );
    assert_eq!(e["result"]["stdout"], json!({"a": [1, 2]}), "{e:#}");
    let e = run(&server, "core.local", json!({"cmd": "ls /no/such/dir"}));
    assert_eq!(e["status"], "failed");
    assert_eq!(e["result"]["return_code"], 2);
    assert_eq!(e["result"]["failed"], true);
    assert!(
        e["result"]["stderr"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{e:#}"
    );
    // An ungranted program, a path outside the pattern, and sudo (not granted) are refused.
    for (cmd, want) in [
        ("id", "\"id\" is not granted"),
        ("/usr/bin/uname", "is not granted"),
        ("sleep 1 2", "is not granted"),
    ] {
        let e = run(&server, "core.local", json!({"cmd": cmd}));
        assert_eq!(e["status"], "failed");
        assert!(
            e["result"]["error"].as_str().unwrap().contains(want),
            "{cmd}: {e:#}"
        );
    }
    let e = run(&server, "core.local_sudo", json!({"cmd": "uname"}));
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("[packs.core] sudo = true"),
        "{e:#}"
    );
    // `sudo` is immutable in core.local, as in StackStorm.
    let (status, body) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "core.local", "parameters": {"cmd": "uname", "sudo": true}})),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["faultstring"],
        "Override of immutable parameter(s) ['sudo'] is unsupported."
    );
}

#[test]
fn shell_syntax_never_smuggles_a_second_command() {
    let dir = site("[packs.core]\ncommands = [\"echo **\"]\n");
    let marker = dir.path().join("pwned");
    let server = Server::start(dir.path());
    let m = marker.display();
    for cmd in [
        format!("echo hi; touch {m}"),
        format!("echo hi && touch {m}"),
        format!("echo hi || touch {m}"),
        format!("echo hi | touch {m}"),
        format!("echo $(touch {m})"),
        format!("echo \"$(touch {m})\""),
        format!("echo `touch {m}`"),
        format!("echo hi\ntouch {m}"),
        format!("echo hi > {m}"),
        format!("echo hi & touch {m}"),
    ] {
        let e = run(&server, "core.local", json!({"cmd": cmd}));
        assert_eq!(e["status"], "failed", "{cmd:?}: {e:#}");
        let error = e["result"]["error"].as_str().unwrap();
        assert!(
            error.contains("shell syntax") && error.contains("[packs.core] shell = true"),
            "{cmd:?}: {error}"
        );
    }
    // Quoted, the same characters are plain arguments.
    let e = run(
        &server,
        "core.local",
        json!({"cmd": format!("echo 'a; touch {m}'")}),
    );
    assert_eq!(e["result"]["stdout"], format!("a; touch {m}"), "{e:#}");
    assert!(!marker.exists(), "no smuggled command ran");
    drop(server);

    // With a shell granted, the line runs under bash as StackStorm runs it.
    write_squall_toml(dir.path(), "[packs.core]\nshell = true\n");
    let server = Server::start(dir.path());
    let e = run(
        &server,
        "core.local",
        json!({"cmd": "echo abc | tr a-c x-z"}),
    );
    assert_eq!(e["result"]["stdout"], "xyz", "{e:#}");
    assert_eq!(e["commands"][0]["shell"], true);
    assert_eq!(e["commands"][0]["argv"][0], "/bin/bash");
}

#[test]
fn a_stackstorm_pack_loads_unchanged_and_runs_under_grants() {
    let dir = site("");
    copy_dir(
        &repo().join("tests/fixtures/st2-pack/packs"),
        &dir.path().join("packs"),
    );
    write_squall_toml(
        dir.path(),
        "[packs.st2ops]\ncommands = [\"df -P /\"]\nscripts = [\"greet.sh\"]\nenv = [\"GREETING\", \"FAIL\"]\n\
         [packs.core]\ncommands = [\"uname -s\"]\n",
    );
    let server = Server::start(dir.path());
    let actions = server.get("/api/v1/actions?pack=st2ops");
    let mut names: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "announce",
            "approved_kernel",
            "check",
            "deploy",
            "disk_free",
            "greet",
            "health",
            "nothing",
            "remote_greet",
            "uptime"
        ]
    );

    // local-shell-script: named arguments first (sorted), then positional ones, as st2 passes
    // them; the granted environment variable from the `env` parameter.
    let e = run(
        &server,
        "st2ops.greet",
        json!({"who": "Ann Lee", "times": 2, "loud": true, "tags": ["a", "b"], "env": {"GREETING": "hello"}}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"]["stdout"],
        "arg: --loud\narg: --style=plain\narg: --tags=['a', 'b']\narg: Ann Lee\narg: 2\n\
         greeting: hello\npack: st2ops"
    );
    // A non-zero exit: failed, with the exit code and stderr.
    let e = run(
        &server,
        "st2ops.greet",
        json!({"who": "x", "env": {"FAIL": "yes"}}),
    );
    assert_eq!(e["status"], "failed");
    assert_eq!(e["result"]["return_code"], 3);
    assert_eq!(e["result"]["stderr"], "failing on request");
    // An environment variable that is not granted is refused.
    let e = run(
        &server,
        "st2ops.greet",
        json!({"who": "x", "env": {"LD_PRELOAD": "/x.so"}}),
    );
    assert_eq!(e["status"], "failed");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("[packs.st2ops] env = [\"LD_PRELOAD\"]"),
        "{e:#}"
    );
    // local-shell-cmd with an immutable cmd; noop.
    let e = run(&server, "st2ops.disk_free", json!({}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert!(
        e["result"]["stdout"]
            .as_str()
            .unwrap()
            .starts_with("Filesystem")
    );
    assert_eq!(
        e["limits"]["timeout"].as_f64(),
        Some(20.0),
        "the timeout parameter bounds the command"
    );
    let e = run(&server, "st2ops.nothing", json!({}));
    assert_eq!(
        e["result"],
        json!({"failed": false, "succeeded": true, "return_code": 0})
    );
    // An Orquesta workflow calling the script and core.local.
    let e = run(&server, "st2ops.check", json!({"who": "Bo"}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["output"]["kernel"], "Linux");
    assert!(
        e["result"]["output"]["greeting"]
            .as_str()
            .unwrap()
            .starts_with("arg: --style=plain\narg: --tags=[]\narg: Bo\narg: 1\n")
    );
    // The webhook rule, as st2 routes it.
    let resp = server.post("/api/v1/webhooks/st2ops", r#"{"who": "Cy"}"#);
    assert_eq!(resp.status(), 202);
    let list = server.wait_for("/api/v1/executions?action=st2ops.greet&limit=1", 30, |l| {
        l[0]["context"]["rule"]["ref"] == "st2ops.greet_on_webhook" && completed(&l[0])
    });
    assert!(
        list[0]["result"]["stdout"]
            .as_str()
            .unwrap()
            .starts_with("arg: --loud\n")
    );

    // The announcement and http-request actions run under their own pack's grants.
    let e = run(
        &server,
        "st2ops.announce",
        json!({"message": {"text": "deployed"}}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let e = run(&server, "st2ops.health", json!({}));
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(
        e["output"]["denials"][0],
        "outbound HTTP to 127.0.0.1:8080 is not granted to pack st2ops (squall.toml [packs.st2ops] http_allow = [])"
    );

    // The script is refused when not granted.
    drop(server);
    write_squall_toml(dir.path(), "");
    let server = Server::start(dir.path());
    let e = run(&server, "st2ops.greet", json!({"who": "x"}));
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("[packs.st2ops] scripts"),
        "{e:#}"
    );
}

#[test]
fn runner_types_are_listed_as_st2() {
    let dir = site("");
    let server = Server::start(dir.path());
    let list = server.get("/api/v1/runnertypes");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "wasm",
        "orquesta",
        "inquirer",
        "noop",
        "local-shell-cmd",
        "local-shell-script",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let r = server.get("/api/v1/runnertypes/local-shell-cmd");
    assert_eq!(r["uid"], "runner_type:local-shell-cmd");
    assert_eq!(r["runner_module"], "local_shell_command_runner");
    assert_eq!(r["runner_parameters"]["timeout"]["default"], 60);
    assert_eq!(r["runner_parameters"]["kwarg_op"]["default"], "--");
    assert_eq!(r["output_key"], "stdout");
    // An action shows its merged parameters: the runner's, with the action's overrides.
    let a = server.get("/api/v1/actions/core.local");
    assert_eq!(a["runner_type"], "local-shell-cmd");
    assert_eq!(a["parameters"]["sudo"]["immutable"], true, "{a:#}");
    assert_eq!(a["parameters"]["timeout"]["default"], 60, "{a:#}");
    // The inquirer's runner parameters (st2's inquirer_runner/runner.yaml), merged into core.ask.
    let r = server.get("/api/v1/runnertypes/inquirer");
    assert_eq!(r["runner_parameters"]["ttl"]["default"], 1440);
    assert_eq!(r["runner_parameters"]["schema"]["required"], true);
    let a = server.get("/api/v1/actions/core.ask");
    assert_eq!(
        a["parameters"]["schema"]["default"]["properties"]["continue"]["type"], "boolean",
        "{a:#}"
    );
}

/// A pack `hostile` with the shell scripts below, granted, its commands run as `nobody` when
/// the tests run as root (so `max_processes` bounds them).
fn hostile_site() -> (tempfile::TempDir, bool) {
    let root = nix_is_root();
    let dir = site(&format!(
        "[process]\nmax_processes = 64\nkill_grace = \"1s\"\n\
         [packs.hostile]\nscripts = [\"*.sh\"]\ncommands = [\"yes\"]\n{}",
        if root { "run_as = \"nobody\"\n" } else { "" }
    ));
    let pack = new_pack(dir.path(), "hostile", "");
    let actions = pack.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    for (name, script) in [
        // Ignores SIGTERM, and so do its background children; writes their pids first.
        (
            "stubborn",
            "trap '' TERM\n(trap '' TERM; sleep 300) &\necho $! > \"$1\"\nsleep 300\n",
        ),
        ("forkbomb", "f() { f | f & }\nf\nsleep 300\n"),
        // Leaves children running and writes its process group id; for the crash test.
        ("hold", "sleep 300 &\necho $$ > \"$1\"\nsleep 300\n"),
    ] {
        std::fs::write(
            actions.join(format!("{name}.sh")),
            format!("#!/bin/bash\n{script}"),
        )
        .unwrap();
        std::fs::write(
            actions.join(format!("{name}.yaml")),
            format!(
                "name: {name}\nrunner_type: local-shell-script\nentry_point: {name}.sh\n\
                 parameters:\n  file: {{type: string, position: 0}}\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(
        actions.join("flood.yaml"),
        "name: flood\nrunner_type: local-shell-cmd\nparameters:\n  cmd: {default: \"yes\", immutable: true}\n\
         limits: {max_output: 64KiB}\n",
    )
    .unwrap();
    (dir, root)
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap()
}

#[test]
fn hostile_commands_are_contained() {
    let (dir, root) = hostile_site();
    let server = Server::start(dir.path());
    let pids = dir.path().join("out/pids");
    // Past its timeout, ignoring SIGTERM, with a background child that ignores it too: the
    // whole group is killed, StackStorm's timeout result recorded.
    let started = Instant::now();
    let e = run(
        &server,
        "hostile.stubborn",
        json!({"file": pids.display().to_string(), "timeout": 2}),
    );
    assert_eq!(e["status"], "timeout", "{e:#}");
    assert_eq!(e["result"]["return_code"], -9);
    assert_eq!(
        e["result"]["error"],
        "Action failed to complete in 2 seconds"
    );
    assert_eq!(e["commands"][0]["ended"], "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let child: u64 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(child), "the background child is gone");
    let pgid = e["commands"][0]["pid"].as_u64().unwrap();
    assert!(group_members(pgid).is_empty());

    // An output flood: bounded in the record, the rest counted.
    let e = run(&server, "hostile.flood", json!({"timeout": 2}));
    assert_eq!(e["status"], "timeout", "{e:#}");
    let kept = e["result"]["stdout"].as_str().unwrap().len();
    assert!(kept <= 64 * 1024, "{kept}");
    assert!(e["commands"][0]["stdout_bytes"].as_u64().unwrap() > 1024 * 1024);
    assert!(e["output"]["stdout_dropped_bytes"].as_u64().unwrap() > 0);

    // A fork bomb: bounded by max_processes when it runs as its own user, killed at its
    // timeout; the server keeps answering meanwhile.
    let id = request(&server, "hostile.forkbomb", json!({"timeout": 3}));
    server.wait_for(&format!("/api/v1/executions/{id}"), 30, |e| {
        e["status"] == "running"
    });
    let (status, _) = server.send(reqwest::Method::GET, "/api/v1/executions?limit=1", None);
    assert_eq!(status, 200, "the server answers during the fork bomb");
    let e = server.wait_for(&format!("/api/v1/executions/{id}"), 60, completed);
    assert_eq!(e["status"], "timeout", "{e:#}");
    let pgid = e["commands"][0]["pid"].as_u64().unwrap();
    assert!(
        group_members(pgid).is_empty(),
        "no fork bomb process is left"
    );
    if root {
        assert_eq!(e["commands"][0]["user"], "nobody");
    }
    assert_eq!(server.get("/api/v1")["name"], "squall");
}

#[test]
fn a_server_killed_while_commands_run_leaves_none_running() {
    let (dir, _) = hostile_site();
    let server = Server::start(dir.path());
    let pids = dir.path().join("out/pgid");
    let id = request(
        &server,
        "hostile.hold",
        json!({"file": pids.display().to_string()}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pids.exists() || std::fs::read_to_string(&pids).unwrap().trim().is_empty() {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid: u64 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    server.kill_9();
    assert!(
        group_members(pgid).len() >= 2,
        "the script and its child outlive the server"
    );

    let server = Server::start(dir.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !group_members(pgid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "orphaned commands are still running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = server.wait_for(&format!("/api/v1/executions/{id}"), 30, completed);
    assert_eq!(e["status"], "abandoned", "{e:#}");
}

/// Secrets in a refused command line are masked in the record; a wildcard `env` grant never
/// passes a variable that changes what code runs; a signal Squall did not send is named in the
/// error (the return code is minus the signal, as st2 records it); an action's own
/// `limits.timeout` bounds its command below the runner's default `timeout` (st2's 60 s).
#[test]
fn secrets_environment_signals_and_action_limits() {
    let dir = site(
        "[packs.sec]\ncommands = [\"printenv\", \"sleep *\"]\nenv = [\"*\"]\n\
         [packs.core]\nshell = true\n",
    );
    let pack = new_pack(dir.path(), "sec", "version: 1.0.0\n");
    let actions = pack.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::write(
        actions.join("login.yaml"),
        "name: login\nrunner_type: local-shell-cmd\nparameters:\n  \
         password: {type: string, secret: true, required: true}\n  \
         cmd: {default: \"mysql -p{{ password }}\"}\n",
    )
    .unwrap();
    std::fs::write(
        actions.join("env.yaml"),
        "name: env\nrunner_type: local-shell-cmd\nparameters:\n  \
         cmd: {default: \"printenv APP_MODE\"}\n",
    )
    .unwrap();
    std::fs::write(
        actions.join("printenv.yaml"),
        "name: printenv\nrunner_type: local-shell-cmd\nparameters:\n  \
         cmd: {default: \"printenv\"}\n",
    )
    .unwrap();
    std::fs::write(
        actions.join("slow.yaml"),
        "name: slow\nrunner_type: local-shell-cmd\nlimits: {timeout: 1s}\n\
         parameters:\n  cmd: {default: \"sleep 5\"}\n",
    )
    .unwrap();
    // The server's own environment: a wildcard grant passes APP_* to commands, never
    // SQUALL_* or LD_* (named exactly they could be).
    let server = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[
            ("APP_REGION", std::ffi::OsStr::new("eu-west")),
            ("SQUALL_TEST_TOKEN", std::ffi::OsStr::new("operator-only")),
            ("LD_DEBUG_OUTPUT", std::ffi::OsStr::new("/tmp/x")),
        ],
    );

    let e = run(&server, "sec.login", json!({"password": "hunter2pw"}));
    assert_eq!(e["status"], "failed", "{e:#}");
    let record = e.to_string();
    assert!(!record.contains("hunter2pw"), "secret in the record: {e:#}");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("\"mysql -p********\" is not granted"),
        "{e:#}"
    );

    // env = ["*"] passes ordinary names, never loader or Squall variables.
    let e = run(
        &server,
        "core.local",
        json!({"cmd": "printenv APP_MODE", "env": {"APP_MODE": "blue"}}),
    );
    assert_eq!(e["status"], "failed", "core has no env grant: {e:#}");
    let e = run(&server, "sec.env", json!({"env": {"APP_MODE": "blue"}}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["stdout"], "blue");
    let e = run(&server, "sec.printenv", json!({}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let lines: Vec<&str> = e["result"]["stdout"].as_str().unwrap().lines().collect();
    assert!(lines.contains(&"APP_REGION=eu-west"), "{lines:?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("SQUALL_") || l.starts_with("LD_")),
        "{lines:?}"
    );
    for name in ["LD_PRELOAD", "BASH_ENV", "SQUALL_API_KEY", "PATH"] {
        let e = run(&server, "sec.env", json!({"env": {name: "/tmp/x"}}));
        assert_eq!(e["status"], "failed", "{name}: {e:#}");
        assert!(
            e["result"]["error"]
                .as_str()
                .unwrap()
                .contains(&format!("[packs.sec] env = [\"{name}\"]")),
            "{name}: {e:#}"
        );
    }

    // A SIGKILL from outside: st2's -9, and the error says Squall did not send it.
    let e = run(&server, "core.local", json!({"cmd": "kill -KILL $$"}));
    assert_eq!(e["result"]["return_code"], -9, "{e:#}");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("killed by SIGKILL, not sent by Squall"),
        "{e:#}"
    );

    // limits.timeout: 1s bounds the command although the runner's timeout default is 60.
    let e = run(&server, "sec.slow", json!({}));
    assert_eq!(e["status"], "timeout", "{e:#}");
    assert_eq!(e["limits"]["timeout"].as_f64(), Some(1.0));
    assert_eq!(
        e["result"]["error"],
        "Action failed to complete in 1 seconds"
    );
}

/// StackStorm's `http-request` runner (`contrib/runners/http_runner/http_runner.py`): an
/// action of a StackStorm pack whose metadata names the URL, denied until its own pack is
/// granted the destination, then one request as st2 sends it (method from the body, query,
/// cookies, `X-Stanley-Action`), result `{status_code, body, parsed, headers}`, failed outside
/// 200–206; what Squall does not honour (a proxy) is refused by name.
#[test]
fn http_request_actions_of_a_stackstorm_pack_run_under_their_packs_grant() {
    let stub = HttpStub::start(|r| {
        let status: u16 = r
            .path
            .strip_prefix("/status/")
            .and_then(|s| s.split('?').next()?.parse().ok())
            .unwrap_or(200);
        Response::json(
            status,
            &json!({"method": r.method, "path": r.path, "headers": r.headers, "body": r.text()}),
        )
    });
    let port = stub.port;
    // The core pack's grant (core.http's component runs the request) never serves another
    // pack's action.
    let dir = site("[packs.core]\nhttp_allow = [\"127.0.0.1:*\"]\n");
    let pack = new_pack(dir.path(), "web", "version: 1.0.0\n");
    let actions = pack.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    // As StackStorm pack authors write them: the runner's `url` given a default, the action's
    // own `body`, `params`, `method`.
    std::fs::write(
        actions.join("notify.yaml"),
        format!(
            "---\nname: notify\nrunner_type: \"http-request\"\nenabled: true\nentry_point: ''\n\
             parameters:\n  url:\n    default: \"http://127.0.0.1:{port}/status/201\"\n    immutable: true\n  \
             cookies:\n    default: {{session: abc}}\n  \
             body:\n    type: string\n    default: '{{\"text\": \"{{{{ message }}}}\"}}'\n  \
             headers:\n    default: {{Content-Type: application/json}}\n  \
             message:\n    type: string\n    required: true\n  \
             params:\n    type: object\n    default: {{channel: ops}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        actions.join("proxied.yaml"),
        format!(
            "name: proxied\nrunner_type: http-request\nparameters:\n  \
             url: {{default: \"http://127.0.0.1:{port}/\"}}\n  \
             http_proxy: {{default: \"http://10.0.0.1:3128\"}}\n"
        ),
    )
    .unwrap();
    let server = Server::start(dir.path());
    let e = run(&server, "web.notify", json!({"message": "disk full"}));
    assert_eq!(e["status"], "failed", "{e:#}");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("destination not granted to this pack"),
        "{e:#}"
    );
    assert!(
        e["output"]["denials"][0]
            .as_str()
            .unwrap()
            .contains("[packs.web] http_allow"),
        "the denial names the action's own pack's grant: {e:#}"
    );

    drop(server);
    write_squall_toml(dir.path(), "[packs.web]\nhttp_allow = [\"127.0.0.1:*\"]\n");
    let server = Server::start(dir.path());
    let e = run(&server, "web.notify", json!({"message": "disk full"}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let result = &e["result"];
    assert_eq!(result["status_code"], 201);
    assert_eq!(result["parsed"], true);
    let seen = &result["body"];
    assert_eq!(seen["method"], "POST", "a body makes it a POST, as st2");
    assert_eq!(seen["path"], "/status/201?channel=ops");
    assert_eq!(seen["body"], r#"{"text":"disk full"}"#);
    assert_eq!(seen["headers"]["cookie"], "session=abc");
    assert_eq!(seen["headers"]["x-stanley-action"], "notify");
    assert!(
        e["usage"]["fuel_consumed"].as_u64().unwrap() > 0,
        "ran in the sandbox"
    );

    // A caller cannot move the immutable url; a proxy is refused by name.
    let (status, body) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": "web.notify", "parameters": {"message": "x", "url": "http://127.0.0.1:9/"}})),
    );
    assert_eq!(status, 400, "{body}");
    let e = run(&server, "web.proxied", json!({}));
    assert_eq!(e["status"], "failed");
    assert_eq!(
        e["result"]["error"],
        "parameter \"http_proxy\": proxies are not supported: requests go straight to the granted host"
    );
    let types = server.get("/api/v1/runnertypes/http-request");
    assert_eq!(types["runner_parameters"]["url"]["required"], true);
}

/// StackStorm's `announcement` runner (`contrib/runners/announcement_runner`) and its
/// `core.announcement`: the action's parameters published on the stream as
/// `st2.announcement__<route>` with `{"payload": …, "trace_context": null}` (as
/// `st2common/transport/announcement.py` `AnnouncementDispatcher.dispatch`), the result the
/// parameters; without `experimental: true`, st2's "Experimental flag is missing" failure; a
/// route that cannot name an event is refused.
#[test]
fn announcements_reach_the_stream_as_st2_sends_them() {
    let dir = site("");
    let pack = new_pack(dir.path(), "chat", "version: 1.0.0\n");
    let actions = pack.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::write(
        actions.join("post.yaml"),
        "name: post\nrunner_type: announcement\nparameters:\n  route: {default: chatops}\n  \
         experimental: {default: true}\n  text: {type: string}\n  token: {type: string, secret: true}\n",
    )
    .unwrap();
    std::fs::write(
        actions.join("unflagged.yaml"),
        "name: unflagged\nrunner_type: announcement\nparameters:\n  text: {type: string}\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let rx = server.stream_lines(
        "/stream/v1/stream?events=st2.announcement__general,st2.announcement__chatops",
        30,
    );
    // The subscription is live once the stream answered; publish after it.
    let e = run(
        &server,
        "core.announcement",
        json!({"message": {"text": "deploy done"}}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"], json!({"message": {"text": "deploy done"}}));
    let e = run(
        &server,
        "chat.post",
        json!({"text": "hi", "token": "s3cret-token"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"], json!({"text": "hi", "token": "********"}));

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let complete = |seen: &[(String, Value)]| seen.len() == 2 && !seen[1].1.is_null();
    while !complete(&seen) && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if let Some(name) = line.strip_prefix("event: ") {
            seen.push((name.to_string(), Value::Null));
        } else if let Some(data) = line.strip_prefix("data: ")
            && let Some(last) = seen.last_mut()
        {
            last.1 = serde_json::from_str(data).unwrap();
        }
    }
    assert_eq!(
        seen,
        [
            (
                "st2.announcement__general".to_string(),
                json!({"payload": {"message": {"text": "deploy done"}}, "trace_context": null})
            ),
            (
                "st2.announcement__chatops".to_string(),
                json!({"payload": {"text": "hi", "token": "********"}, "trace_context": null})
            ),
        ],
        "secret parameters are masked on the stream"
    );

    let e = run(&server, "chat.unflagged", json!({"text": "x"}));
    assert_eq!(e["status"], "failed");
    assert_eq!(
        e["result"]["error"],
        "Experimental flag is missing for action chat.unflagged"
    );
    let e = run(
        &server,
        "chat.post",
        json!({"text": "x", "route": "a\nevent: forged"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .starts_with("route \"a\\nevent: forged\""),
        "{e:#}"
    );
}

/// StackStorm's `action-chain` runner on the fixture pack's chains, as
/// `contrib/runners/action_chain_runner/action_chain_runner.py` runs them: vars, each node's
/// result under its name, `publish`, `__results`, `action_context`, parameters cast to the
/// called action's types, `on-failure` (a handled failure ends as its handler does), the result
/// `{tasks, published}`; a chain waiting on an inquiry survives a server kill and goes on when
/// answered.
#[test]
fn action_chains_run_as_st2_and_survive_a_restart() {
    let dir = site("");
    copy_dir(
        &repo().join("tests/fixtures/st2-pack/packs"),
        &dir.path().join("packs"),
    );
    write_squall_toml(
        dir.path(),
        "[packs.st2ops]\nscripts = [\"greet.sh\"]\nenv = [\"GREETING\", \"FAIL\"]\n\
         [packs.core]\ncommands = [\"uname -s\", \"echo greet failed with *\"]\n",
    );
    let server = Server::start(dir.path());
    let runner = server.get("/api/v1/runnertypes/action-chain");
    assert_eq!(runner["output_key"], "published");
    assert_eq!(
        runner["runner_parameters"]["display_published"]["default"],
        true
    );

    let e = run(&server, "st2ops.deploy", json!({"service": "web"}));
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let user = e["context"]["user"].as_str().unwrap();
    let tasks = e["result"]["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["greet", "kernel", "done"]);
    for t in tasks {
        assert_eq!(t["state"], "succeeded");
        assert_eq!(t["id"], t["name"]);
        assert_eq!(t["workflow"], Value::Null);
        assert!(t["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let greeting = format!(
        "arg: --style=plain\narg: --tags=[]\narg: deploy of web\narg: 3\ngreeting: from {user}\npack: st2ops"
    );
    assert_eq!(tasks[0]["result"]["stdout"], greeting.as_str());
    assert_eq!(
        e["result"]["published"],
        json!({"greeting": greeting, "greet_code": 0, "kernel": "Linux"})
    );
    assert_eq!(
        e["result"].as_object().unwrap().len(),
        2,
        "tasks and published, no error: {e:#}"
    );
    // Node executions are the chain's children, with `context.chain` naming the node.
    let id = e["id"].as_str().unwrap();
    let children = server.get(&format!("/api/v1/executions?parent={id}"));
    let mut nodes: Vec<&str> = children
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["context"]["chain"]["name"].as_str().unwrap())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["done", "greet", "kernel"]);
    assert_eq!(
        tasks[1]["execution_id"],
        children
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["context"]["chain"]["name"] == "kernel")
            .unwrap()["id"]
    );

    // A failed node goes to its on-failure node; that one succeeding makes the chain succeed.
    let e = run(
        &server,
        "st2ops.deploy",
        json!({"service": "web", "fail": true}),
    );
    let tasks = e["result"]["tasks"].as_array().unwrap();
    let states: Vec<(&str, &str)> = tasks
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("greet", "failed"), ("report", "succeeded")],
        "{e:#}"
    );
    assert_eq!(e["status"], "succeeded");
    assert_eq!(tasks[1]["result"]["stdout"], "greet failed with 3");
    assert_eq!(e["result"]["published"]["greet_code"], 3);

    // Waiting on an inquiry: paused, durable across a kill -9, goes on when answered.
    let id = request(&server, "st2ops.approved_kernel", json!({}));
    let path = format!("/api/v1/executions/{id}");
    server.wait_for(&path, 30, |v| v["status"] == "paused");
    server.kill_9();
    let server = Server::start(dir.path());
    let inquiries = server.wait_for("/api/v1/inquiries", 30, |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    });
    assert_eq!(inquiries[0]["parent"], id.as_str());
    let (answered, body) = server.send(
        reqwest::Method::PUT,
        &format!("/api/v1/inquiries/{}", inquiries[0]["id"].as_str().unwrap()),
        Some(json!({"response": {"continue": true}})),
    );
    assert_eq!(answered, 200, "{body}");
    let e = server.wait_for(&path, 60, completed);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let tasks = e["result"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1]["result"]["stdout"], "Linux");
    assert!(
        e["result"].get("published").is_none(),
        "display_published: false"
    );
}

/// Pausing a chain lets its running node finish and starts no other until resumed; canceling
/// it cancels the running node (its command killed) and the chain ends `canceled`, as
/// StackStorm's action chain runner's `pause`/`resume`/`cancel`.
#[test]
fn action_chains_pause_resume_and_cancel() {
    let dir = site("[packs.core]\ncommands = [\"sleep *\", \"true\"]\n");
    let pack = new_pack(dir.path(), "ops", "version: 1.0.0\n");
    std::fs::create_dir_all(pack.join("actions/chains")).unwrap();
    std::fs::write(
        pack.join("actions/slow.yaml"),
        "name: slow\nrunner_type: action-chain\nentry_point: chains/slow.yaml\n\
         parameters:\n  nap:\n    type: number\n    default: 1\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/chains/slow.yaml"),
        "chain:\n  - name: nap\n    ref: core.local\n    parameters: {cmd: \"sleep {{ nap }}\"}\n    on-success: after\n\
         \x20 - name: after\n    ref: core.local\n    parameters: {cmd: \"true\"}\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/dynamic.yaml"),
        "name: dynamic\nrunner_type: action-chain\nentry_point: chains/dynamic.yaml\n\
         parameters:\n  target:\n    type: string\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/chains/dynamic.yaml"),
        "chain:\n  - name: call\n    ref: \"{{ target }}\"\n    parameters: {nonsense: 1}\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let put = |id: &str, status: &str| {
        server.send(
            reqwest::Method::PUT,
            &format!("/api/v1/executions/{id}"),
            Some(json!({"status": status})),
        )
    };
    let id = request(&server, "ops.slow", json!({"nap": 1}));
    let path = format!("/api/v1/executions/{id}");
    server.wait_for(&path, 30, |e| e["status"] == "running");
    let (code, v) = put(&id, "pausing");
    assert_eq!(code, 200, "{v}");
    let e = server.wait_for(&path, 30, |e| e["status"] == "paused");
    assert_eq!(e["result"]["tasks"].as_array().unwrap().len(), 1, "{e:#}");
    std::thread::sleep(Duration::from_millis(500));
    let e = server.get(&path);
    assert_eq!(e["status"], "paused");
    assert_eq!(
        e["result"]["tasks"].as_array().unwrap().len(),
        1,
        "no node starts while paused"
    );
    let (code, v) = put(&id, "resuming");
    assert_eq!(code, 200, "{v}");
    let e = server.wait_for(&path, 30, completed);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["tasks"][1]["name"], "after");

    let id = request(&server, "ops.slow", json!({"nap": 60}));
    let path = format!("/api/v1/executions/{id}");
    let started = Instant::now();
    server.wait_for(&format!("/api/v1/executions?parent={id}"), 30, |l| {
        l[0]["status"] == "running"
    });
    let (code, v) = server.send(reqwest::Method::DELETE, &path, None);
    assert_eq!(code, 200, "{v}");
    let e = server.wait_for(&path, 30, completed);
    assert_eq!(e["status"], "canceled", "{e:#}");
    assert_eq!(e["result"]["tasks"][0]["state"], "canceled");
    assert_eq!(e["result"]["tasks"].as_array().unwrap().len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the nap was cut short"
    );
    // Pausing a completed chain is refused.
    let (code, _) = put(&id, "pausing");
    assert_eq!(code, 409);

    // A node whose (rendered) action is not loaded fails the chain, as st2's
    // InvalidActionReferencedException; a node whose parameters are refused is a failed node.
    let e = run(&server, "ops.dynamic", json!({"target": "ops.nope"}));
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(e["result"]["tasks"], json!([]));
    assert!(
        e["result"]["error"].as_str().unwrap().starts_with(
            "Failed to run task \"call\". Action with reference \"{{ target }}\" doesn't exist."
        ),
        "{e:#}"
    );
    let e = run(&server, "ops.dynamic", json!({"target": "core.local"}));
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(e["result"]["tasks"][0]["state"], "failed");
    assert!(
        e["result"]["tasks"][0]["result"]["error"]
            .as_str()
            .unwrap()
            .starts_with("Failed running task \"call\"."),
        "{e:#}"
    );
}

/// A component runs commands through its `process` import (`wit/squall.wit`, world
/// `extended-action`) under the same grants as `core.local`: refused (naming the grant, recorded
/// as a denial, nothing run) until granted; then run without a shell, with only granted
/// variables, recorded in the execution's `commands`; a command past its timeout ends with its
/// whole process group; canceling the execution ends a running command.
#[test]
fn a_component_runs_commands_only_as_granted() {
    let dir = site("");
    let pack = new_pack(dir.path(), "ops", "version: 1.0.0\n");
    support::hostile_action(
        &pack,
        "probe",
        "limits:\n  timeout: 20s\nparameters:\n  mode: {type: string}\n  argv: {type: array}\n  \
         env: {type: object}\n  stdin: {type: string}\n  timeout: {type: integer}\n  \
         times: {type: integer}\n  keep_going: {type: boolean}\n",
    );
    let server = Server::start(dir.path());
    let uname = json!({"mode": "command", "argv": ["uname", "-s"]});
    let e = run(&server, "ops.probe", uname.clone());
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["error"].as_str().unwrap();
    assert!(
        error.contains("not granted to pack \"ops\"")
            && error.contains("[packs.ops] commands in squall.toml"),
        "{error}"
    );
    assert_eq!(e["output"]["denials"][0].as_str().unwrap(), error);
    assert!(e.get("commands").is_none(), "nothing ran: {e:#}");
    // A flood of refused commands is bounded in the record as HTTP denials are: 20 kept, the
    // rest counted.
    let e = run(
        &server,
        "ops.probe",
        json!({"mode": "commands", "argv": ["uname", "-s"], "times": 50, "keep_going": true}),
    );
    assert_eq!(e["result"]["ran"], 0, "{e:#}");
    let denials = e["output"]["denials"].as_array().unwrap();
    assert_eq!(denials.len(), 21, "{denials:#?}");
    assert_eq!(denials[20], "... and 30 more denials like these");
    drop(server);

    write_squall_toml(
        dir.path(),
        "[packs.ops]\ncommands = [\"uname -s\", \"sh -c 'exit 4'\", \"sleep *\", \"cat\"]\nenv = [\"COLOUR\"]\n",
    );
    let server = Server::start(dir.path());
    let e = run(&server, "ops.probe", uname);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["stdout"], "Linux\n");
    assert_eq!(e["result"]["exit_code"], 0);
    let c = &e["commands"][0];
    assert_eq!(c["argv"], json!(["/usr/bin/uname", "-s"]));
    assert_eq!(c["ended"], "exited");
    assert_eq!(c["stdout_bytes"], 6);
    assert_eq!(c["shell"], false);
    // The exit code, stdin, granted variables; an ungranted one is refused.
    let e = run(
        &server,
        "ops.probe",
        json!({"mode": "command", "argv": ["sh", "-c", "exit 4"]}),
    );
    assert_eq!(e["result"]["exit_code"], 4, "{e:#}");
    let e = run(
        &server,
        "ops.probe",
        json!({"mode": "command", "argv": ["cat"], "stdin": "piped in"}),
    );
    assert_eq!(e["result"]["stdout"], "piped in", "{e:#}");
    let e = run(
        &server,
        "ops.probe",
        json!({"mode": "command", "argv": ["uname", "-s"], "env": {"LD_PRELOAD": "/x.so"}}),
    );
    assert_eq!(e["status"], "failed");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("[packs.ops] env = [\"LD_PRELOAD\"]"),
        "{e:#}"
    );
    // Shell syntax in one argument is just an argument: `sh -c "exit 4; id"` matches no pattern.
    let e = run(
        &server,
        "ops.probe",
        json!({"mode": "command", "argv": ["sh", "-c", "exit 4; id"]}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert!(e.get("commands").is_none(), "nothing ran: {e:#}");
    // Past its timeout: the group is killed, the component hears `timed_out`.
    let e = run(
        &server,
        "ops.probe",
        json!({"mode": "command", "argv": ["sleep", "30"], "timeout": 1}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["timed_out"], true);
    assert_eq!(e["commands"][0]["ended"], "timeout");
    let pgid = e["commands"][0]["pid"].as_u64().unwrap();
    assert!(
        group_members(pgid).is_empty(),
        "the command's group is gone"
    );
    // Canceled while a command runs: the command goes too.
    let id = request(
        &server,
        "ops.probe",
        json!({"mode": "command", "argv": ["sleep", "60"]}),
    );
    let path = format!("/api/v1/executions/{id}");
    let started = Instant::now();
    let pid = loop {
        let sleeping: Vec<u64> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c == "/usr/bin/sleep\u{0}60\u{0}")
            })
            .collect();
        if let Some(p) = sleeping.first() {
            break *p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the command started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (code, v) = server.send(reqwest::Method::DELETE, &path, None);
    assert_eq!(code, 200, "{v}");
    let e = server.wait_for(&path, 30, completed);
    assert_eq!(e["status"], "canceled", "{e:#}");
    let gone = Instant::now();
    while alive(pid) {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "the command was ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(e["commands"][0]["ended"], "canceled", "{e:#}");
}

/// `core.inject_trigger`, as StackStorm's (`contrib/core/actions/inject_trigger.py` posting to
/// `/webhooks/st2`): refused until the operator grants the trigger type to `core`
/// (`[packs.core] triggers`), then the instance is dispatched like a webhook's (schema checked,
/// rules fire) and the result is the Python runner's shape around the echoed request.
#[test]
fn core_inject_trigger_dispatches_granted_trigger_types() {
    let dir = site("");
    let pack = new_pack(dir.path(), "ops", "version: 1.0.0\n");
    std::fs::create_dir_all(pack.join("triggers")).unwrap();
    std::fs::create_dir_all(pack.join("rules")).unwrap();
    std::fs::write(
        pack.join("triggers/alert.yaml"),
        "name: alert\npayload_schema:\n  type: object\n  properties: {host: {type: string, required: true}}\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("rules/on_alert.yaml"),
        "name: on_alert\npack: ops\nenabled: true\ntrigger: {type: ops.alert}\n\
         action:\n  ref: core.echo\n  parameters: {message: \"alert on {{ trigger.host }}\"}\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let alert = json!({"trigger": "ops.alert", "payload": {"host": "web1"}});
    let e = run(&server, "core.inject_trigger", alert.clone());
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["error"].as_str().unwrap();
    assert!(
        error.contains("[packs.core] triggers in squall.toml (e.g. triggers = [\"ops.alert\"])"),
        "{error}"
    );
    assert_eq!(e["output"]["denials"][0].as_str().unwrap(), error);
    drop(server);

    write_squall_toml(dir.path(), "[packs.core]\ntriggers = [\"ops.*\"]\n");
    let server = Server::start(dir.path());
    let e = run(
        &server,
        "core.inject_trigger",
        json!({"trigger": "ops.alert", "payload": {"host": "web1"}, "trace_tag": "t-1"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"],
        json!({"result": {"trigger": "ops.alert", "payload": {"host": "web1"}, "trace_tag": "t-1"},
               "exit_code": 0, "stdout": "", "stderr": ""})
    );
    let echoed = server.wait_for("/api/v1/executions?action=core.echo", 30, |l| {
        l.as_array().is_some_and(|a| !a.is_empty()) && completed(&l[0])
    });
    assert_eq!(echoed[0]["result"]["stdout"], "alert on web1");
    assert_eq!(echoed[0]["context"]["rule"]["ref"], "ops.on_alert");
    // The payload is checked against the trigger type's schema; other types stay refused.
    let e = run(
        &server,
        "core.inject_trigger",
        json!({"trigger": "ops.alert", "payload": {"hostname": "web1"}}),
    );
    assert_eq!(e["status"], "failed");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("payload does not match the payload_schema of ops.alert"),
        "{e:#}"
    );
    let e = run(
        &server,
        "core.inject_trigger",
        json!({"trigger": "core.st2.webhook", "payload": {}}),
    );
    assert_eq!(e["status"], "failed");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("is not granted to pack \"core\""),
        "{e:#}"
    );
}

/// A real SMTP server (`aiosmtpd` from the distribution's `python3-aiosmtpd`, storing what it
/// receives in a maildir) on a loopback port; `None` (test skipped, said on stderr) without it
/// unless `SQUALL_REQUIRE_SMTPD=1` (as `.ci/run` sets).
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> Option<SmtpServer> {
        const BIN: &str = "/usr/bin/aiosmtpd";
        if !Path::new(BIN).exists() {
            assert!(
                std::env::var_os("SQUALL_REQUIRE_SMTPD").is_none(),
                "{BIN} is missing (apt-get install python3-aiosmtpd)"
            );
            eprintln!("skipped: {BIN} is missing (apt-get install python3-aiosmtpd)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(BIN)
            .args(["-n", "-l", &format!("127.0.0.1:{port}"), "-c"])
            .arg("aiosmtpd.handlers.Mailbox")
            .arg(maildir.path().join("box"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(SmtpServer {
            child,
            port,
            maildir,
        })
    }

    /// The messages received, as raw text.
    fn messages(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.path().join("box/new")) else {
            return Vec::new();
        };
        dir.flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `core.sendmail`, as StackStorm's (`contrib/core/actions/send_mail/send_mail`): refused until
/// the operator grants the `[smtp]` relay to `core` (`smtp_allow`); then the message reaches a
/// real SMTP server with st2's headers, sender completion, line break and footer, and the
/// local runner's result; a relay that does not answer fails it with st2's exit code 2.
#[test]
fn core_sendmail_goes_through_the_granted_relay() {
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let relay = format!(
        "[smtp]\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\n",
        smtp.port
    );
    let dir = site(&relay);
    let server = Server::start(dir.path());
    let mail = json!({"to": "ann@example.com", "subject": "Deploy", "body": "<b>done</b>", "from": "squall"});
    let e = run(&server, "core.sendmail", mail.clone());
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "[packs.core] smtp_allow in squall.toml (e.g. smtp_allow = [\"127.0.0.1:{}\"])",
            smtp.port
        )),
        "{error}"
    );
    assert_eq!(
        e["result"]["stdout"],
        "Failed to send mail to ann@example.com"
    );
    assert_eq!(e["result"]["return_code"], 2);
    assert_eq!(e["output"]["denials"][0].as_str().unwrap(), error);
    assert!(smtp.messages().is_empty(), "nothing was sent");
    drop(server);

    write_squall_toml(
        dir.path(),
        &format!(
            "{relay}[packs.core]\nsmtp_allow = [\"127.0.0.1:{}\"]\n",
            smtp.port
        ),
    );
    let server = Server::start(dir.path());
    let e = run(&server, "core.sendmail", mail);
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        e["result"],
        json!({"failed": false, "succeeded": true, "return_code": 0,
               "stdout": "Successfully sent mail to ann@example.com", "stderr": ""})
    );
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = messages[0].replace("\r\n", "\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(m.contains("To: ann@example.com\n"), "{m}");
    assert!(
        m.contains(&format!("From: squall@{}\n", host.trim())),
        "{m}"
    );
    assert!(m.contains("Subject: Deploy\n"), "{m}");
    assert!(m.contains("Content-Type: text/html"), "{m}");
    assert!(
        m.contains(
            "<b>done</b>\n<br><br>\nThis message was generated by Squall action core.sendmail"
        ),
        "{m}"
    );
    // A body of spaces with send_empty_body false: nothing sent, st2's answer all the same.
    let e = run(
        &server,
        "core.sendmail",
        json!({"to": "ann@example.com", "subject": "x", "body": "   ", "send_empty_body": false}),
    );
    assert_eq!(
        e["result"]["stdout"],
        "Successfully sent mail to ann@example.com"
    );
    assert_eq!(smtp.messages().len(), 1);
    // The relay gone: failed, exit code 2, the reason in stderr.
    let port = smtp.port;
    drop(smtp);
    let e = run(
        &server,
        "core.sendmail",
        json!({"to": "ann@example.com", "subject": "x", "body": "y"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(e["result"]["return_code"], 2);
    assert!(
        e["result"]["stderr"]
            .as_str()
            .unwrap()
            .contains(&format!("the SMTP relay 127.0.0.1:{port}")),
        "{e:#}"
    );
}
