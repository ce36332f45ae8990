//! The remote runners `remote-shell-cmd` and `remote-shell-script`, as StackStorm's remote
//! runner (`contrib/runners/remote_runner`, `st2common/runners/parallel_ssh.py`,
//! `st2common/models/system/paramiko_command_action.py`), over the `ssh` capability
//! ([`squall_host::ssh`]) under the pack's grants.
//!
//! Before any connection: every host (and the bastion) must match `[packs.<pack>] ssh_hosts`,
//! a `username` other than the default login user `ssh_users`, the command `commands` (or
//! `shell = true`), the script `scripts`, `sudo` and each `env` name their grants, as for the
//! local runners; a refusal names the grant and nothing connects. Each host's key is checked
//! against `[ssh] known_hosts`. `cwd` and `dir` name directories on the remote host and are
//! not checked against the local `cwd` grant: there the remote user's own permissions bound
//! them, and the operator chose that user and host by granting them.
//!
//! As StackStorm: `hosts` is a comma-separated list (`host`, `host:port`, `[v6]:port`; the
//! `port` parameter, else 22); the result maps each host (without its port) to
//! `{stdout, stderr, return_code, succeeded, failed}` (stdout and stderr stripped of one
//! trailing newline and parsed as JSON when they are), or for a host that could not run the
//! command `{failed, succeeded, timeout, return_code (-9 at the timeout, else 255), stdout,
//! stderr, error}`; the status is `succeeded` when every host succeeded, else `timeout` when the
//! first failing host timed out, else `failed` (`_get_result_status` without partial failure);
//! when no host could be reached the execution fails with `Unable to connect to any one of the
//! hosts`. The remote command line is `export <env> && cd <cwd> && <command>`, under
//! `sudo -E -- bash -c` when `sudo`; a script is copied to `<dir>/<execution id>/` first (a
//! new directory: one already there is refused, so no other remote user can plant it) and
//! that directory removed afterwards. Hosts run one at a time unless `parallel` (a runner
//! parameter an action may default to true), then a third of them plus one at once, at most
//! `[ssh] max_parallel` ([`concurrency`], as st2's `BaseParallelSSHRunner`); the `timeout`
//! bounds the whole execution (a host started late gets what is left of it; st2 gives each
//! host the full timeout, so its executions can run hosts × timeout).
//!
//! Differences, on purpose: host keys are checked (StackStorm accepts any); `private_key` must be
//! the key's text (a path on the Squall machine is not read; the operator's own key is
//! `[ssh] key_file`); no API URL or token is exported.

use crate::Runner;
use crate::commands::{
    Refusal, Start, check_script, checked_command, given_env, mask, mask_message,
};
use crate::runner::CANCELED_MESSAGE;
use futures_util::StreamExt;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::command::{shell_quote as q, wildcard};
use squall_core::config::{Config, PackGrants};
use squall_core::execution::CommandRun;
use squall_core::local_runner::{self, TIMEOUT_EXIT_CODE};
use squall_core::{Action, Execution, ExecutionStatus, RunnerType};
use squall_host::ssh::{
    RemoteExit, RemoteOutcome, SshAuth, SshError, SshSpec, SshTarget, parse_private_key, run_remote,
};
use squall_store::StoreError;
use tokio_util::sync::CancellationToken;

/// One remote run, every grant checked.
struct RemotePlan {
    /// Result key (host without port) and where to connect.
    hosts: Vec<(String, SshTarget)>,
    bastion: Option<SshTarget>,
    user: String,
    auth: SshAuth,
    command: String,
    /// The command as the audit shows it (secrets masked).
    argv: Vec<String>,
    upload: Option<(String, String, Vec<u8>)>,
    stdin: Option<Vec<u8>>,
    cwd: String,
    sudo: bool,
    shell: bool,
}

impl Runner {
    /// Runs a `remote-shell-cmd` or `remote-shell-script` execution on its hosts; see the
    /// module docs.
    ///
    /// # Errors
    /// Store failures only.
    pub(crate) async fn run_remote(
        &self,
        mut execution: Execution,
        cancel: CancellationToken,
    ) -> Result<Execution, StoreError> {
        let Some(Start {
            registry,
            resolved,
            grants,
            runner_params,
            action_params,
            timeout_secs,
        }) = self.start_command(&mut execution)
        else {
            return self.action_gone(execution).await;
        };
        let config = registry.config();
        let limits = resolved.limits;
        let plan = match plan(
            &execution,
            &resolved.action,
            &grants,
            config,
            &runner_params,
            &action_params,
        ) {
            Ok(p) => p,
            Err(refusal) => return self.refuse(execution, refusal).await,
        };
        execution
            .transition(ExecutionStatus::Running, Timestamp::now())
            .expect("a scheduled execution can run");
        self.save(&execution).await?;

        let known_hosts = config.ssh.known_hosts.clone().unwrap_or_default();
        let specs: Vec<(String, SshSpec)> = plan
            .hosts
            .iter()
            .map(|(key, target)| {
                (
                    key.clone(),
                    SshSpec {
                        target: target.clone(),
                        bastion: plan.bastion.clone(),
                        user: plan.user.clone(),
                        auth: plan.auth.clone(),
                        known_hosts: known_hosts.clone(),
                        upload: plan.upload.clone(),
                        command: plan.command.clone(),
                        stdin: plan.stdin.clone(),
                        connect_timeout: config.ssh.connect_timeout,
                        timeout: limits.timeout,
                        max_output: limits.max_output,
                    },
                )
            })
            .collect();
        let cancel_all = cancel.clone();
        // One deadline for the execution: hosts run one after another (unless `parallel`), and
        // each gets what is left of the timeout, so the whole run ends within it.
        let deadline = std::time::Instant::now() + limits.timeout;
        let runs = futures_util::stream::iter(specs.into_iter().map(|(key, mut spec)| {
            let cancel = cancel_all.clone();
            async move {
                let started_at = Timestamp::now();
                spec.timeout = deadline.saturating_duration_since(std::time::Instant::now());
                let outcome = run_remote(&spec, &cancel).await;
                (key, spec.target, started_at, outcome)
            }
        }))
        .buffer_unordered(concurrency(
            plan.hosts.len(),
            runner_params.get("parallel") == Some(&Value::Bool(true)),
            config.ssh.max_parallel,
        ))
        .collect::<Vec<_>>()
        .await;

        // As StackStorm's parallel_ssh: hosts that could not connect first, then the others in
        // the order they finished.
        let (mut ordered, finished): (Vec<_>, Vec<_>) =
            runs.into_iter().partition(|(_, _, _, o)| o.is_err());
        let all_unreachable = finished.is_empty();
        ordered.extend(finished);
        let masked_line = mask_message(&execution, &plan.command);
        let mut result = Map::new();
        let mut order = Vec::new();
        let mut canceled = false;
        for (key, target, started_at, outcome) in &ordered {
            let host_result = match outcome {
                Ok(o) => {
                    execution
                        .commands
                        .push(audit(&plan, target, *started_at, o, &execution));
                    if o.exit == RemoteExit::Canceled {
                        canceled = true;
                    }
                    host_result(o, &masked_line, key, timeout_secs, config)
                }
                Err(e) => error_result(e, key, &masked_line),
            };
            order.push((
                host_result["succeeded"] == true,
                host_result.get("timeout") == Some(&Value::Bool(true)),
            ));
            result.insert(key.clone(), host_result);
        }
        if canceled {
            return self
                .finish(
                    execution,
                    ExecutionStatus::Canceled,
                    json!({"message": CANCELED_MESSAGE}),
                )
                .await;
        }
        if all_unreachable {
            let hosts: Vec<String> = plan.hosts.iter().map(|(k, _)| format!("'{k}'")).collect();
            let errors = serde_json::to_string_pretty(&result).unwrap_or_default();
            let message = format!(
                "Unable to connect to any one of the hosts: [{}].\n\n connect_errors={errors}",
                hosts.join(", ")
            );
            return self
                .finish(
                    execution,
                    ExecutionStatus::Failed,
                    json!({"error": message}),
                )
                .await;
        }
        let status = status_of(&order);
        self.finish(execution, status, Value::Object(result)).await
    }
}

/// StackStorm's `_get_result_status` without partial failure: every host succeeded →
/// `succeeded`; otherwise, over the hosts up to and including the first failing one (in result
/// order), all timed out → `timeout`, else `failed`.
fn status_of(order: &[(bool, bool)]) -> ExecutionStatus {
    let mut timeout = true;
    for (succeeded, timed_out) in order {
        timeout &= timed_out;
        if !succeeded {
            return if timeout {
                ExecutionStatus::Timeout
            } else {
                ExecutionStatus::Failed
            };
        }
    }
    ExecutionStatus::Succeeded
}

/// How many hosts one execution talks to at once, as StackStorm's `BaseParallelSSHRunner`
/// (`pre_run`): with `parallel`, a third of the hosts plus one, else one at a time; never more
/// than `max` (`[ssh] max_parallel`, st2's `ssh_runner.max_parallel_actions`).
fn concurrency(hosts: usize, parallel: bool, max: usize) -> usize {
    let n = if parallel { hosts / 3 + 1 } else { 1 };
    n.clamp(1, max.max(1))
}

/// A host's result when the command ran (as parallel_ssh.py `_run_command`), or ended at its
/// timeout or by a signal (as `_generate_error_result`).
fn host_result(o: &RemoteOutcome, line: &str, host: &str, timeout: u64, config: &Config) -> Value {
    match &o.exit {
        RemoteExit::Code(code) => local_runner::shell_result(*code, &o.stdout, &o.stderr, None).1,
        RemoteExit::TimedOut => json!({
            "failed": true,
            "succeeded": false,
            "timeout": true,
            "return_code": TIMEOUT_EXIT_CODE,
            "stdout": o.stdout,
            "stderr": o.stderr,
            "error": format!(
                "Failed executing command \"{line}\" on host \"{host}\" Command didn't finish in \
                 {timeout} seconds or the SSH connection did not succeed in {} seconds",
                config.ssh.connect_timeout.as_secs()
            ),
        }),
        RemoteExit::Signal(_) | RemoteExit::Canceled => {
            let why = match &o.exit {
                RemoteExit::Signal(s) => format!("ended by signal {s}"),
                _ => "canceled".to_string(),
            };
            json!({
                "failed": true,
                "succeeded": false,
                "timeout": false,
                "return_code": 255,
                "stdout": o.stdout,
                "stderr": o.stderr,
                "error": format!("Failed executing command \"{line}\" on host \"{host}\" {why}"),
            })
        }
    }
}

/// A host's result when the command did not run (parallel_ssh.py `_generate_error_result`).
fn error_result(e: &SshError, host: &str, line: &str) -> Value {
    let error = match e {
        SshError::Connect { message, .. } => {
            format!("Failed connecting to host {host}. {message}")
        }
        SshError::HostKey { .. } | SshError::Auth { .. } => format!("Connection error. {e}"),
        SshError::Session { message, .. } => {
            format!("Failed executing command \"{line}\" on host \"{host}\" {message}")
        }
    };
    json!({
        "failed": true,
        "succeeded": false,
        "timeout": false,
        "return_code": 255,
        "stdout": "",
        "stderr": "",
        "error": error,
    })
}

fn audit(
    plan: &RemotePlan,
    target: &SshTarget,
    started_at: Timestamp,
    o: &RemoteOutcome,
    execution: &Execution,
) -> CommandRun {
    let (ended, exit_code) = match &o.exit {
        RemoteExit::Code(c) => ("exited", Some(*c)),
        RemoteExit::Signal(_) => ("signaled", None),
        RemoteExit::TimedOut => ("timeout", None),
        RemoteExit::Canceled => ("canceled", None),
    };
    CommandRun {
        host: target.to_string(),
        argv: mask(execution, plan.argv.clone()),
        user: plan.user.clone(),
        cwd: plan.cwd.clone(),
        sudo: plan.sudo,
        shell: plan.shell,
        pid: 0,
        ended: ended.into(),
        exit_code,
        signal: None,
        started_at,
        duration_ms: u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX),
        stdout_bytes: o.stdout_bytes,
        stderr_bytes: o.stderr_bytes,
    }
}

/// `hosts` as StackStorm splits it: comma-separated, blanks dropped; `host:port`,
/// `[v6]:port`, `[v6]` and bare IP addresses; `default_port` otherwise.
///
/// # Errors
/// StackStorm's `Invalid port X specified.`, or no host at all.
fn parse_hosts(hosts: &str, default_port: u16) -> Result<Vec<(String, SshTarget)>, String> {
    let mut out = Vec::new();
    for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (host, port) = if let Some(rest) = h.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("host {h:?}: unclosed '['"))?;
            match after.strip_prefix(':') {
                Some(p) => (inside, Some(p)),
                None => (inside, None),
            }
        } else if h.parse::<std::net::IpAddr>().is_ok() {
            (h, None)
        } else {
            match h.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (h, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("Invalid port {p} specified."))?,
        };
        out.push((
            host.to_string(),
            SshTarget {
                host: host.to_string(),
                port,
            },
        ));
    }
    if out.is_empty() {
        return Err("No hosts specified to run action.".into());
    }
    Ok(out)
}

fn plan(
    execution: &Execution,
    action: &Action,
    grants: &PackGrants,
    config: &Config,
    runner_params: &Map<String, Value>,
    action_params: &Map<String, Value>,
) -> Result<RemotePlan, Refusal> {
    let pack = &execution.action.pack;
    let str_param = |name: &str| {
        runner_params
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let default_port = match runner_params.get("port").and_then(Value::as_u64) {
        None => 22,
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| Refusal::Failed(format!("Invalid port {p} specified.")))?,
    };
    let hosts = parse_hosts(str_param("hosts").unwrap_or_default(), default_port)
        .map_err(Refusal::Failed)?;
    let bastion = match str_param("bastion_host") {
        None => None,
        Some(b) => Some(
            parse_hosts(b, default_port)
                .map_err(Refusal::Failed)?
                .remove(0)
                .1,
        ),
    };
    for target in hosts.iter().map(|(_, t)| t).chain(bastion.iter()) {
        if !grants
            .ssh_hosts
            .iter()
            .any(|p| p.matches_ssh(&target.host, target.port))
        {
            let shown = if target.port == 22 {
                target.host.clone()
            } else {
                format!("{}:{}", target.host, target.port)
            };
            return Err(Refusal::Denied(format!(
                "SSH to {shown} is not granted to pack {pack:?} ([packs.{pack}] ssh_hosts = \
                 [{shown:?}] in squall.toml)"
            )));
        }
    }
    let cwd = str_param("cwd").unwrap_or("/tmp").to_string();
    let (cmd_part, argv, upload, shell, cleanup) = match action.runner_type {
        RunnerType::RemoteShellCmd => {
            let cmd = runner_params
                .get("cmd")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match checked_command(cmd, grants, pack)? {
                None => (cmd.to_string(), vec![cmd.to_string()], None, true, None),
                Some(argv) => {
                    let line = argv.iter().map(|w| q(w)).collect::<Vec<_>>().join(" ");
                    (line, argv, None, false, None)
                }
            }
        }
        RunnerType::RemoteShellScript => {
            check_script(action, grants, pack)?;
            let content = std::fs::read(&action.entry_path).map_err(|e| {
                Refusal::Failed(format!("script {}: {e}", action.entry_path.display()))
            })?;
            let name = action
                .entry_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "script".into());
            let dir = format!(
                "{}/{}",
                str_param("dir").unwrap_or("/tmp").trim_end_matches('/'),
                execution.id
            );
            let path = format!("{dir}/{name}");
            let kwarg_op = str_param("kwarg_op").unwrap_or("--");
            let mut argv = vec![path.clone()];
            argv.extend(local_runner::script_arguments(
                action,
                action_params,
                kwarg_op,
            ));
            let line = argv.iter().map(|w| q(w)).collect::<Vec<_>>().join(" ");
            (
                line,
                argv,
                Some((dir.clone(), name, content)),
                false,
                Some(dir),
            )
        }
        other => unreachable!("runner {other} is not a remote runner"),
    };
    if argv.iter().any(|w| w.contains('\0')) {
        return Err(Refusal::Failed(
            "the command line holds a NUL character: it cannot be sent to a remote shell".into(),
        ));
    }
    let env = given_env(execution, grants, runner_params).map_err(Refusal::Denied)?;
    let export = env
        .iter()
        .map(|(k, v)| format!("{}={}", q(k), q(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut inner = format!("export {export} && cd {} && {cmd_part}", q(&cwd));
    let sudo = runner_params.get("sudo") == Some(&Value::Bool(true));
    let mut stdin = None;
    if sudo {
        if !grants.sudo {
            return Err(Refusal::Denied(format!(
                "sudo is not granted to pack {pack:?} ([packs.{pack}] sudo = true in squall.toml)"
            )));
        }
        let mode = match str_param("sudo_password") {
            Some(p) => {
                stdin = Some(format!("{p}\n").into_bytes());
                "-S"
            }
            None => "-n",
        };
        inner = format!("sudo {mode} -E -- bash -c {}", q(&inner));
    }
    let command = match cleanup {
        Some(dir) => format!("{inner}; rc=$?; rm -rf {}; exit $rc", q(&dir)),
        None => inner,
    };
    let default_user = config
        .ssh
        .user
        .clone()
        .unwrap_or_else(squall_host::process::current_user);
    let user = match str_param("username") {
        None => default_user,
        Some(u) if u == default_user || grants.ssh_users.iter().any(|p| wildcard(p, u)) => {
            u.to_string()
        }
        Some(u) => {
            return Err(Refusal::Denied(format!(
                "SSH login as {u:?} is not granted to pack {pack:?} (the default login user is \
                 {default_user:?}; [packs.{pack}] ssh_users = [{u:?}] in squall.toml)"
            )));
        }
    };
    let auth = if let Some(password) = str_param("password") {
        SshAuth::Password(password.to_string())
    } else if let Some(key) = str_param("private_key") {
        if !key.to_ascii_lowercase().contains("private key-----") {
            return Err(Refusal::Denied(
                "private_key must be the key's text: a path on the Squall machine is not read \
                 (the operator's own key is [ssh] key_file in squall.toml)"
                    .into(),
            ));
        }
        SshAuth::Key(parse_private_key(key, str_param("passphrase")).map_err(Refusal::Failed)?)
    } else if let Some(file) = &config.ssh.key_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Refusal::Failed(format!("[ssh] key_file {}: {e}", file.display())))?;
        SshAuth::Key(
            parse_private_key(&text, str_param("passphrase"))
                .map_err(|e| Refusal::Failed(format!("[ssh] key_file {}: {e}", file.display())))?,
        )
    } else {
        return Err(Refusal::Failed(
            "Either password or key file location or key material should be supplied for \
             action (or set [ssh] key_file in squall.toml)."
                .into(),
        ));
    };
    if config.ssh.known_hosts.is_none() {
        return Err(Refusal::Failed(
            "[ssh] known_hosts is not set: no host key can be checked".into(),
        ));
    }
    Ok(RemotePlan {
        hosts,
        bastion,
        user,
        auth,
        command,
        argv,
        upload,
        stdin,
        cwd,
        sudo,
        shell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_at_once_as_st2() {
        assert_eq!(
            concurrency(10, false, 50),
            1,
            "parallel false: one at a time"
        );
        assert_eq!(concurrency(2, true, 50), 1);
        assert_eq!(concurrency(3, true, 50), 2);
        assert_eq!(concurrency(10, true, 50), 4);
        assert_eq!(
            concurrency(300, true, 50),
            50,
            "capped by [ssh] max_parallel"
        );
    }

    #[test]
    fn hosts_split_as_st2() {
        let hosts = parse_hosts("web1, web2:2222,,[::1]:2200, 10.0.0.1 ,[fe80::1]", 22).unwrap();
        let shown: Vec<(String, String, u16)> = hosts
            .into_iter()
            .map(|(k, t)| (k, t.host, t.port))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("web1".into(), "web1".into(), 22),
                ("web2".into(), "web2".into(), 2222),
                ("::1".into(), "::1".into(), 2200),
                ("10.0.0.1".into(), "10.0.0.1".into(), 22),
                ("fe80::1".into(), "fe80::1".into(), 22),
            ]
        );
        assert_eq!(
            parse_hosts("a:x", 22).unwrap_err(),
            "Invalid port x specified."
        );
        assert!(parse_hosts(" , ", 22).is_err());
    }

    #[test]
    fn status_follows_st2() {
        use ExecutionStatus::*;
        for (order, want) in [
            (vec![(true, false), (true, false)], Succeeded),
            (vec![(true, false), (false, false)], Failed),
            (vec![(false, true)], Timeout),
            (vec![(false, true), (false, false)], Timeout),
            (vec![(true, false), (false, true)], Failed),
        ] {
            assert_eq!(status_of(&order), want, "{order:?}");
        }
    }
}
