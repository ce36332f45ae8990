//! End-to-end tests of StackStorm's remote runners in `squall serve` against a real OpenSSH
//! server that the test starts on loopback addresses (127.0.0.1-4, one port) with generated
//! keys: `core.remote` on several hosts with StackStorm's per-host result
//! (`st2common/runners/parallel_ssh.py`) and its concurrency (one at a time unless `parallel`,
//! then a third of the hosts plus one, as `BaseParallelSSHRunner.pre_run`), a script copied
//! and run (`remote-shell-script`), a bastion, a timeout, and the refusals: an ungranted host,
//! shell syntax, an ungranted login user, an unknown host key, a changed one and a revoked one
//! (nothing runs).
//!
//! Needs `/usr/sbin/sshd` (Debian's `openssh-server`; `.ci/run` installs it and sets
//! `SQUALL_REQUIRE_SSHD=1`, which turns its absence into a failure). Without it and without
//! that variable, each test says so and passes.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Server, new_pack, write_squall_toml};

const SSHD: &str = "/usr/sbin/sshd";

/// A real `sshd` on 127.0.0.1 to 127.0.0.4 at one port; killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "squall-test", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Sshd {
    /// Starts sshd with keys in `dir/ssh`; `None` (after saying why) when there is no sshd and
    /// the environment does not require one.
    fn start(dir: &Path) -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            assert!(
                std::env::var_os("SQUALL_REQUIRE_SSHD").is_none(),
                "SQUALL_REQUIRE_SSHD is set but {SSHD} is missing (apt-get install openssh-server)"
            );
            eprintln!("skipped: no {SSHD} (install openssh-server; CI does)");
            return None;
        }
        let ssh = dir.join("ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        keygen(&ssh.join("host_key"));
        keygen(&ssh.join("other_host_key"));
        keygen(&ssh.join("id_ed25519"));
        std::fs::copy(ssh.join("id_ed25519.pub"), ssh.join("authorized_keys")).unwrap();
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = ssh.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nListenAddress 127.0.0.2\nListenAddress 127.0.0.3\nListenAddress 127.0.0.4\n\
                 HostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin yes\nAllowTcpForwarding yes\nLogLevel ERROR\n",
                d = ssh.display()
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.3", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // 127.0.0.1, .2 and .4 are known with the right key, .3 with another one;
        // `localhost` is not known at all.
        let key = std::fs::read_to_string(ssh.join("host_key.pub")).unwrap();
        let other = std::fs::read_to_string(ssh.join("other_host_key.pub")).unwrap();
        let strip = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        std::fs::write(
            ssh.join("known_hosts"),
            format!(
                "[127.0.0.1]:{port} {k}\n[127.0.0.2]:{port} {k}\n[127.0.0.3]:{port} {o}\n\
                 [127.0.0.4]:{port} {k}\n",
                k = strip(&key),
                o = strip(&other)
            ),
        )
        .unwrap();
        Some(Sshd {
            child,
            port,
            dir: ssh,
        })
    }
}

fn completed(e: &Value) -> bool {
    matches!(
        e["status"].as_str(),
        Some("succeeded" | "failed" | "timeout" | "canceled" | "abandoned")
    )
}

fn run(server: &Server, action: &str, parameters: Value) -> Value {
    let (status, created) = server.send(
        reqwest::Method::POST,
        "/api/v1/executions",
        Some(json!({"action": action, "parameters": parameters})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    server.wait_for(&format!("/api/v1/executions/{id}"), 60, completed)
}

/// The site: squall.toml pointing at the test sshd's keys, `core` granted the three loopback
/// hosts and `localhost`, and a pack `ops` with a remote script.
fn site(dir: &Path, sshd: &Sshd) {
    let pack = new_pack(dir, "ops", "");
    std::fs::create_dir_all(pack.join("actions")).unwrap();
    std::fs::write(
        pack.join("actions/report.sh"),
        "#!/bin/sh\necho \"dir: $(dirname \"$0\")\"\nfor a in \"$@\"; do echo \"arg: $a\"; done\necho \"pwd: $(pwd)\"\n",
    )
    .unwrap();
    // An action that runs its hosts in parallel, as st2 pack authors ask for it.
    std::fs::write(
        pack.join("actions/fanout.yaml"),
        "name: fanout\nrunner_type: remote-shell-cmd\nparameters:\n  parallel: {default: true}\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("actions/report.yaml"),
        "name: report\nrunner_type: remote-shell-script\nentry_point: report.sh\nparameters:\n  \
         who: {type: string, position: 0}\n  loud: {type: boolean, default: false}\n",
    )
    .unwrap();
    write_squall_toml(
        dir,
        &format!(
            "[ssh]\nknown_hosts = {kh:?}\nkey_file = {key:?}\nuser = {user:?}\n\
             [packs.core]\nssh_hosts = [\"127.0.0.1:*\", \"127.0.0.2:*\", \"127.0.0.3:*\", \"127.0.0.4:*\", \"localhost:*\"]\n\
             commands = [\"echo **\", \"sleep *\", \"uname\"]\n\
             [packs.ops]\nssh_hosts = [\"127.0.0.0/8:*\"]\nscripts = [\"report.sh\"]\ncommands = [\"sleep *\"]\n",
            kh = sshd.dir.join("known_hosts").display().to_string(),
            key = sshd.dir.join("id_ed25519").display().to_string(),
            user = user(),
        ),
    );
}

#[test]
fn core_remote_runs_on_several_hosts_with_st2_results_and_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path()) else {
        return;
    };
    site(dir.path(), &sshd);
    let server = Server::start(dir.path());
    let p = sshd.port;

    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.1:{p}, 127.0.0.2:{p}"), "cmd": "echo '{\"up\": true}'"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    for host in ["127.0.0.1", "127.0.0.2"] {
        assert_eq!(
            e["result"][host],
            json!({"failed": false, "succeeded": true, "return_code": 0, "stdout": {"up": true}, "stderr": ""}),
            "{e:#}"
        );
    }
    let commands = e["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 2);
    let mut hosts: Vec<&str> = commands
        .iter()
        .map(|c| c["host"].as_str().unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, [format!("127.0.0.1:{p}"), format!("127.0.0.2:{p}")]);
    assert_eq!(commands[0]["argv"], json!(["echo", "{\"up\": true}"]));

    // As st2: core.remote (parallel false) runs its hosts one at a time; an action with
    // `parallel: true` a third of them plus one at once (3 hosts: 2).
    let span = |c: &Value| {
        let start: jiff::Timestamp = c["started_at"].as_str().unwrap().parse().unwrap();
        let end = start + jiff::SignedDuration::from_millis(c["duration_ms"].as_i64().unwrap());
        (start, end)
    };
    let overlapping = |e: &Value| {
        let spans: Vec<_> = e["commands"].as_array().unwrap().iter().map(span).collect();
        let mut pairs = 0;
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                if a.0 < b.1 && b.0 < a.1 {
                    pairs += 1;
                }
            }
        }
        pairs
    };
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.1:{p},127.0.0.2:{p}"), "cmd": "sleep 1"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(overlapping(&e), 0, "one host at a time: {e:#}");
    let e = run(
        &server,
        "ops.fanout",
        json!({"hosts": format!("127.0.0.1:{p},127.0.0.2:{p},127.0.0.4:{p}"), "cmd": "sleep 1"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert!(overlapping(&e) >= 1, "two hosts at once: {e:#}");
    let mut spans: Vec<_> = e["commands"].as_array().unwrap().iter().map(span).collect();
    spans.sort();
    assert!(
        spans[2].0 >= spans[0].1.min(spans[1].1),
        "the third host started after one of the first two ended: {spans:?}"
    );

    // Through a bastion (the same sshd, forwarding to another of its addresses).
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.2:{p}"), "bastion_host": format!("127.0.0.1:{p}"), "cmd": "uname"}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["result"]["127.0.0.2"]["stdout"], "Linux");

    // Past the timeout: StackStorm's timeout result for the host, status timeout.
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.1:{p}"), "cmd": "sleep 30", "timeout": 2}),
    );
    assert_eq!(e["status"], "timeout", "{e:#}");
    let r = &e["result"]["127.0.0.1"];
    assert_eq!(r["timeout"], true);
    assert_eq!(r["return_code"], -9);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("Command didn't finish in 2 seconds"),
        "{r}"
    );
}

#[test]
fn remote_refusals_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path()) else {
        return;
    };
    site(dir.path(), &sshd);
    let server = Server::start(dir.path());
    let p = sshd.port;
    let marker = dir.path().join("pwned");

    // An ungranted host: nothing connects.
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.1:{p},127.0.0.9:{p}"), "cmd": "echo hi"}),
    );
    assert_eq!(e["status"], "failed");
    let error = e["result"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("[packs.core] ssh_hosts = [\"127.0.0.9:{p}\"]")),
        "{error}"
    );
    assert!(e.get("commands").is_none());
    // Shell syntax smuggling a second command.
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.1:{p}"), "cmd": format!("echo hi; touch {}", marker.display())}),
    );
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("shell = true"),
        "{e:#}"
    );
    assert!(!marker.exists());
    // A changed host key and an unknown host are refused before logging in.
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.3:{p}"), "cmd": "echo hi"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    let error = e["result"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("Unable to connect to any one of the hosts: ['127.0.0.3'].")
            && error.contains("differs from the one in"),
        "{error}"
    );
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("localhost:{p},127.0.0.1:{p}"), "cmd": "echo hi"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert!(
        e["result"]["localhost"]["error"]
            .as_str()
            .unwrap()
            .contains("key for it in"),
        "{e:#}"
    );
    assert_eq!(
        e["result"]["127.0.0.1"]["stdout"], "hi",
        "the other host still ran"
    );
    // A login user other than [ssh] user is refused unless granted (ssh_users), whatever the
    // key: the operator's key must not open other accounts for an API caller.
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.1:{p}"), "cmd": "echo hi", "username": "daemon"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("[packs.core] ssh_users = [\"daemon\"]"),
        "{e:#}"
    );
    assert!(e.get("commands").is_none());
    // A key marked @revoked (OpenSSH's marker) is refused although a line accepts it.
    let known = sshd.dir.join("known_hosts");
    let key = std::fs::read_to_string(sshd.dir.join("host_key.pub")).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let mut text = std::fs::read_to_string(&known).unwrap();
    text.push_str(&format!("@revoked * {}\n", key.join(" ")));
    std::fs::write(&known, text).unwrap();
    let e = run(
        &server,
        "core.remote",
        json!({"hosts": format!("127.0.0.1:{p}"), "cmd": "echo hi"}),
    );
    assert_eq!(e["status"], "failed", "{e:#}");
    assert!(
        e["result"]["error"]
            .as_str()
            .unwrap()
            .contains("marked @revoked"),
        "{e:#}"
    );
}

#[test]
fn a_remote_script_is_copied_run_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = Sshd::start(dir.path()) else {
        return;
    };
    site(dir.path(), &sshd);
    let server = Server::start(dir.path());
    let e = run(
        &server,
        "ops.report",
        json!({"hosts": format!("127.0.0.1:{}", sshd.port), "who": "Ann Lee", "loud": true}),
    );
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        e["result"]["127.0.0.1"]["stdout"],
        format!("dir: /tmp/{id}\narg: --loud\narg: Ann Lee\npwd: /tmp")
    );
    assert!(
        !Path::new(&format!("/tmp/{id}")).exists(),
        "the copied script is removed"
    );
}
