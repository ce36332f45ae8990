//! The command runners `local-shell-cmd` and `local-shell-script`, as StackStorm's local runner
//! (`contrib/runners/local_runner`), run through the `process` capability
//! ([`squall_host::process`]) under the pack's grants (`[packs.<pack>]` in `squall.toml`, see
//! [`squall_core::config::PackGrants`] and [`squall_core::command`]).
//!
//! Before anything runs, every part of the command is checked against the grants: the program
//! and its arguments (`commands`), shell syntax (`shell`), the script (`scripts`), `sudo`,
//! the working directory (`cwd`) and each environment variable (`env`). A refusal fails the
//! execution with a message naming the grant to add, recorded among the execution's denials;
//! nothing runs. A command that runs is recorded in the execution's `commands` (argv with
//! secrets masked, user, directory, process id, how it ended, duration, bytes written).
//!
//! Differences from StackStorm, on purpose: the environment is not the server's (only `PATH`,
//! granted variables, the `env` parameter's granted names and StackStorm's
//! `ST2_ACTION_PACK_NAME`, `ST2_ACTION_EXECUTION_ID`, `ST2_ACTION_DEBUG`; no API URL or auth
//! token, so a command gets no power over Squall); without a granted `cwd` each command runs in a
//! fresh empty directory; `sudo` is `sudo -n` (never waits for a password) unless
//! `sudo_password` is given (`sudo -S`, the password on stdin, as StackStorm); the `timeout`
//! parameter is capped at the operator's `[limits.max] timeout`.

use crate::Runner;
use crate::registry::{Registry, ResolvedAction};
use crate::runner::CANCELED_MESSAGE;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::command::{CommandLineError, SEARCH_PATH, env_granted, split_command, wildcard};
use squall_core::config::PackGrants;
use squall_core::execution::{CommandRun, mask_text};
use squall_core::local_runner::{self, TIMEOUT_EXIT_CODE};
use squall_core::{Action, Execution, ExecutionId, ExecutionStatus, RunnerType};
use squall_host::process::{
    CommandOutcome, CommandSpec, Exit, ProcessLimits, resolve_program, run_command, signal_name,
    user_ids,
};
use squall_store::StoreError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a runner did not run its command, script, request or announcement: a grant is
/// missing (a denial, recorded as such) or it cannot be formed (a plain failure).
#[derive(Debug)]
pub(crate) enum Refusal {
    Denied(String),
    Failed(String),
}

/// What a StackStorm runner implemented on the host (local, remote, http-request,
/// announcement) starts from ([`Runner::start_command`]).
pub(crate) struct Start {
    /// The registry the action was resolved in (its `config()` is `squall.toml`).
    pub(crate) registry: Arc<Registry>,
    /// The action as loaded, with its limits (the timeout already the command's).
    pub(crate) resolved: ResolvedAction,
    /// The pack's grants (`[packs.<pack>]`).
    pub(crate) grants: PackGrants,
    /// The runner's parameters (`cmd`, `hosts`, `timeout`, …) of the execution.
    pub(crate) runner_params: Map<String, Value>,
    /// The action's own parameters (script arguments).
    pub(crate) action_params: Map<String, Value>,
    /// The command's timeout in seconds ([`effective_timeout`]).
    pub(crate) timeout_secs: u64,
}

impl Runner {
    /// Schedules `execution` and gathers what a host-side runner needs, recording the
    /// `timeout` runner parameter ([`effective_timeout`]) in the execution's `limits` (the
    /// http-request runner then fits them to its request); `None` when its action is no
    /// longer loaded ([`Runner::action_gone`]).
    pub(crate) fn start_command(&self, execution: &mut Execution) -> Option<Start> {
        execution
            .transition(ExecutionStatus::Scheduled, Timestamp::now())
            .expect("a requested execution can be scheduled");
        let registry = self.registry().clone();
        let resolved = registry.resolve_pinned(execution.id, &execution.action.reference)?;
        let config = registry.config();
        let grants = config.grants(&execution.action.pack);
        let (runner_params, action_params) =
            local_runner::split_parameters(resolved.action.runner_type, &execution.parameters);
        let timeout_secs = effective_timeout(
            &runner_params,
            resolved.limits.timeout,
            resolved.action.limits.timeout,
            config.limits.max.timeout,
        );
        let mut resolved = resolved;
        resolved.limits.timeout = Duration::from_secs(timeout_secs);
        execution.limits = Some(resolved.limits);
        Some(Start {
            registry,
            resolved,
            grants,
            runner_params,
            action_params,
            timeout_secs,
        })
    }

    /// Finishes `execution` failed: its action is no longer loaded.
    ///
    /// # Errors
    /// Store failures only.
    pub(crate) async fn action_gone(&self, execution: Execution) -> Result<Execution, StoreError> {
        let message = format!("action {} is no longer loaded", execution.action.reference);
        self.finish(
            execution,
            ExecutionStatus::Failed,
            json!({"error": message}),
        )
        .await
    }

    /// Finishes `execution` failed with the refusal's message (secrets masked); a denial is
    /// also logged and recorded among the execution's denials.
    ///
    /// # Errors
    /// Store failures only.
    pub(crate) async fn refuse(
        &self,
        mut execution: Execution,
        refusal: Refusal,
    ) -> Result<Execution, StoreError> {
        let message = match refusal {
            Refusal::Denied(message) => {
                let message = mask_message(&execution, &message);
                tracing::warn!(execution.id = %execution.id, "{message}");
                execution.output.denials.push(message.clone());
                message
            }
            Refusal::Failed(message) => mask_message(&execution, &message),
        };
        self.finish(
            execution,
            ExecutionStatus::Failed,
            json!({"error": message}),
        )
        .await
    }
}

/// A command ready to run: every grant checked.
struct Plan {
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    run_as: Option<(u32, u32)>,
    user: String,
    sudo: bool,
    shell: bool,
    stdin: Option<Vec<u8>>,
}

impl Plan {
    /// The command in `cwd`, ended after `timeout` (and bounded to as many CPU seconds),
    /// keeping `max_output` bytes of each stream, under the operator's `[process]` limits.
    fn spec(
        &self,
        cwd: &Path,
        timeout: Duration,
        max_output: u64,
        process: &squall_core::config::ProcessSettings,
    ) -> CommandSpec {
        CommandSpec {
            program: self.program.clone(),
            args: self.args.clone(),
            env: self.env.clone().into_iter().collect(),
            cwd: cwd.to_path_buf(),
            run_as: self.run_as,
            stdin: self.stdin.clone(),
            timeout,
            max_output,
            limits: ProcessLimits {
                max_processes: process.max_processes,
                max_memory: process.max_memory,
                max_open_files: process.max_open_files,
                cpu_seconds: timeout.as_secs().max(1),
                kill_grace: process.kill_grace,
            },
        }
    }

    /// The program and its arguments, secrets of `execution` masked, as the audit shows them.
    fn audited_argv(&self, execution: &Execution) -> Vec<String> {
        let mut argv = vec![self.program.display().to_string()];
        argv.extend(self.args.iter().cloned());
        mask(execution, argv)
    }

    /// The audit record of the command once it ran (`argv` from [`Plan::audited_argv`]), also
    /// logged.
    fn record(
        &self,
        execution: ExecutionId,
        argv: Vec<String>,
        cwd: &Path,
        started_at: Timestamp,
        outcome: &CommandOutcome,
    ) -> CommandRun {
        let (ended, exit_code, signal) = match outcome.exit {
            Exit::Code(c) => ("exited", Some(c), None),
            Exit::Signal(s) => ("signaled", None, Some(s)),
            Exit::TimedOut => ("timeout", None, None),
            Exit::Canceled => ("canceled", None, None),
        };
        tracing::info!(
            execution.id = %execution,
            command.pid = outcome.pid,
            command.ended = ended,
            command.exit_code = exit_code,
            ms = outcome.duration.as_secs_f64() * 1000.0,
            "command finished"
        );
        CommandRun {
            host: "localhost".into(),
            argv,
            user: self.user.clone(),
            cwd: cwd.display().to_string(),
            sudo: self.sudo,
            shell: self.shell,
            pid: outcome.pid,
            ended: ended.into(),
            exit_code,
            signal,
            started_at,
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            stdout_bytes: outcome.stdout_bytes,
            stderr_bytes: outcome.stderr_bytes,
        }
    }
}

impl Runner {
    /// Runs a `local-shell-cmd` or `local-shell-script` execution to its end; see the module
    /// docs.
    ///
    /// # Errors
    /// Store failures only.
    pub(crate) async fn run_local(
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
            &runner_params,
            &action_params,
        ) {
            Ok(p) => p,
            Err(refusal) => return self.refuse(execution, refusal).await,
        };
        // A fresh directory per command unless a granted one was named; removed on drop.
        let fresh = match &plan.cwd {
            Some(_) => None,
            None => match fresh_dir(plan.run_as) {
                Ok(d) => Some(d),
                Err(e) => {
                    let message = format!("cannot make the command's working directory: {e}");
                    return self
                        .finish(
                            execution,
                            ExecutionStatus::Failed,
                            json!({"error": message}),
                        )
                        .await;
                }
            },
        };
        let cwd = plan
            .cwd
            .clone()
            .or_else(|| fresh.as_ref().map(|d| d.path().to_path_buf()))
            .expect("one of them is set");
        execution
            .transition(ExecutionStatus::Running, Timestamp::now())
            .expect("a scheduled execution can run");
        self.save(&execution).await?;

        let spec = plan.spec(&cwd, limits.timeout, limits.max_output, &config.process);
        let started_at = Timestamp::now();
        let outcome = match run_command(spec, self.ledger(), &cancel).await {
            Ok(o) => o,
            Err(e) => {
                let message = mask_message(&execution, &e.to_string());
                return self
                    .finish(
                        execution,
                        ExecutionStatus::Failed,
                        json!({"error": message}),
                    )
                    .await;
            }
        };
        drop(fresh);
        let argv = plan.audited_argv(&execution);
        let run = plan.record(execution.id, argv, &cwd, started_at, &outcome);
        execution.commands.push(run);
        execution.output.stdout_dropped_bytes = outcome
            .stdout_bytes
            .saturating_sub(outcome.stdout.len() as u64);
        execution.output.stderr_dropped_bytes = outcome
            .stderr_bytes
            .saturating_sub(outcome.stderr.len() as u64);
        let (return_code, error) = match outcome.exit {
            Exit::Code(c) => (c, None),
            Exit::Signal(s) => (
                -s,
                Some(local_runner::signal_message(
                    s,
                    &signal_name(s),
                    timeout_secs.max(1),
                )),
            ),
            Exit::TimedOut => (
                TIMEOUT_EXIT_CODE,
                Some(local_runner::timeout_message(timeout_secs)),
            ),
            Exit::Canceled => {
                return self
                    .finish(
                        execution,
                        ExecutionStatus::Canceled,
                        json!({"message": CANCELED_MESSAGE}),
                    )
                    .await;
            }
        };
        let (status, result) =
            local_runner::shell_result(return_code, &outcome.stdout, &outcome.stderr, error);
        self.finish(execution, status, result).await
    }
}

/// Programs that run others as another user: whatever `commands` says, they run only for a
/// pack granted `sudo = true`.
const PRIVILEGED: [&str; 6] = ["sudo", "sudoedit", "doas", "pkexec", "su", "run0"];

/// Whether `program` is one of [`PRIVILEGED`].
fn privileged(program: &Path) -> bool {
    program
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| PRIVILEGED.contains(&n))
}

/// Checks every part of the command against `grants` and forms it.
fn plan(
    execution: &Execution,
    action: &Action,
    grants: &PackGrants,
    runner_params: &Map<String, Value>,
    action_params: &Map<String, Value>,
) -> Result<Plan, Refusal> {
    let pack = &execution.action.pack;
    let toml = |grant: &str| format!("[packs.{pack}] {grant} in squall.toml");
    let (mut argv, shell) = match action.runner_type {
        RunnerType::LocalShellCmd => {
            let cmd = runner_params
                .get("cmd")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if cmd.trim().is_empty() {
                return Err(Refusal::Failed(
                    "parameter \"cmd\" is empty: there is no command to run".into(),
                ));
            }
            match checked_command(cmd, grants, pack)? {
                None => (
                    vec!["/bin/bash".to_string(), "-c".into(), cmd.to_string()],
                    true,
                ),
                Some(argv) => (argv, false),
            }
        }
        RunnerType::LocalShellScript => {
            check_script(action, grants, pack)?;
            let kwarg_op = runner_params
                .get("kwarg_op")
                .and_then(Value::as_str)
                .unwrap_or("--");
            // Absolute: the command runs in another directory.
            let script = std::fs::canonicalize(&action.entry_path).map_err(|e| {
                Refusal::Failed(format!("script {}: {e}", action.entry_path.display()))
            })?;
            let mut argv = interpreter(&script).map_err(Refusal::Failed)?;
            argv.push(script.display().to_string());
            argv.extend(local_runner::script_arguments(
                action,
                action_params,
                kwarg_op,
            ));
            (argv, false)
        }
        other => unreachable!("runner {other} runs no command"),
    };
    let sudo = runner_params.get("sudo") == Some(&Value::Bool(true));
    let mut stdin = None;
    if sudo {
        if !grants.sudo {
            return Err(Refusal::Denied(format!(
                "sudo is not granted to pack {pack:?} ({})",
                toml("sudo = true")
            )));
        }
        let password = runner_params
            .get("sudo_password")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        let mode = if let Some(p) = password {
            stdin = Some(format!("{p}\n").into_bytes());
            "-S"
        } else {
            "-n"
        };
        let mut with = vec!["sudo".to_string(), mode.into(), "-E".into(), "--".into()];
        with.append(&mut argv);
        argv = with;
    }
    let program = resolve_program(&argv[0], SEARCH_PATH).ok_or_else(|| {
        Refusal::Failed(format!(
            "program {:?} not found (bare names are looked up on {SEARCH_PATH})",
            argv[0]
        ))
    })?;
    if !grants.sudo && privileged(&program) {
        return Err(Refusal::Denied(format!(
            "{} changes user: it is not granted to pack {pack:?} without sudo ({})",
            program.display(),
            toml("sudo = true")
        )));
    }
    let cwd = match runner_params.get("cwd").and_then(Value::as_str) {
        None | Some("") => None,
        Some(dir) => Some(granted_dir(dir, grants).ok_or_else(|| {
            Refusal::Denied(format!(
                "working directory {dir:?} is not granted to pack {pack:?} ({})",
                toml(&format!("cwd = [{dir:?}]"))
            ))
        })?),
    };
    let env = environment(execution, grants, runner_params, |name| {
        std::env::var(name).ok()
    })
    .map_err(Refusal::Denied)?;
    let (run_as, user) = match &grants.run_as {
        None => (None, current_user()),
        Some(name) => {
            let ids =
                user_ids(name).map_err(|e| Refusal::Failed(format!("{}: {e}", toml("run_as"))))?;
            (Some(ids), name.clone())
        }
    };
    let args = argv.split_off(1);
    Ok(Plan {
        program,
        args,
        env,
        cwd,
        run_as,
        user,
        sudo,
        shell,
        stdin,
    })
}

/// `cmd` checked against the pack's grants: its words when they match a `commands` pattern,
/// `None` when the pack is granted a shell (the line runs as written).
///
/// # Errors
/// A denial naming the grant to add (shell syntax, no matching pattern), or a failure (empty,
/// unclosed quote).
pub(crate) fn checked_command(
    cmd: &str,
    grants: &PackGrants,
    pack: &str,
) -> Result<Option<Vec<String>>, Refusal> {
    if cmd.trim().is_empty() {
        return Err(Refusal::Failed(
            "parameter \"cmd\" is empty: there is no command to run".into(),
        ));
    }
    if grants.shell {
        return Ok(None);
    }
    let argv = split_command(cmd).map_err(|e| match e {
        CommandLineError::ShellSyntax(_) => Refusal::Denied(format!(
            "command {cmd:?} of pack {pack:?}: {e} ([packs.{pack}] shell = true in squall.toml)"
        )),
        e => Refusal::Failed(format!("command {cmd:?}: {e}")),
    })?;
    if !grants.commands.iter().any(|p| p.matches(&argv)) {
        let example = argv[0].clone();
        return Err(Refusal::Denied(format!(
            "command {cmd:?} is not granted to pack {pack:?}: add a pattern that matches it to \
             [packs.{pack}] commands in squall.toml (e.g. commands = [{example:?}])"
        )));
    }
    Ok(Some(argv))
}

/// Whether the pack's `scripts` grant names the action's script.
///
/// # Errors
/// A denial naming the grant to add.
pub(crate) fn check_script(
    action: &Action,
    grants: &PackGrants,
    pack: &str,
) -> Result<(), Refusal> {
    let entry = &action.entry_point;
    if grants.scripts.iter().any(|p| wildcard(p, entry)) {
        return Ok(());
    }
    Err(Refusal::Denied(format!(
        "script {entry:?} of pack {pack:?} is not granted: add it to [packs.{pack}] scripts in \
         squall.toml (e.g. scripts = [{entry:?}])"
    )))
}

/// The environment of a command: `PATH` ([`SEARCH_PATH`]), the granted variables the server
/// has (`server_env`), the `env` parameter (granted names only), then StackStorm's
/// `ST2_ACTION_*` variables (which win, as in StackStorm).
///
/// # Errors
/// A message naming an ungranted or malformed `env` entry.
fn environment(
    execution: &Execution,
    grants: &PackGrants,
    runner_params: &Map<String, Value>,
    server_env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), SEARCH_PATH.to_string());
    for pattern in &grants.env {
        if pattern.contains('*') {
            for (k, v) in std::env::vars() {
                if env_granted(std::slice::from_ref(pattern), &k) {
                    env.insert(k, v);
                }
            }
        } else if let Some(v) = server_env(pattern) {
            env.insert(pattern.clone(), v);
        }
    }
    env.extend(given_env(execution, grants, runner_params)?);
    let debug = runner_params.get("debug") == Some(&Value::Bool(true));
    env.insert(
        "ST2_ACTION_DEBUG".into(),
        if debug { "True" } else { "False" }.into(),
    );
    Ok(env)
}

/// The `env` parameter's variables (each name granted), then StackStorm's
/// `ST2_ACTION_PACK_NAME` and `ST2_ACTION_EXECUTION_ID`.
///
/// # Errors
/// A message naming an ungranted or malformed entry.
pub(crate) fn given_env(
    execution: &Execution,
    grants: &PackGrants,
    runner_params: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, String> {
    let pack = &execution.action.pack;
    let granted = |name: &str| env_granted(&grants.env, name);
    let mut env = BTreeMap::new();
    if let Some(given) = runner_params.get("env") {
        let Value::Object(given) = given else {
            return Err("parameter \"env\" must be an object of names and values".into());
        };
        for (name, value) in given {
            if !granted(name) {
                return Err(format!(
                    "environment variable {name:?} is not granted to pack {pack:?} \
                     ([packs.{pack}] env = [{name:?}] in squall.toml)"
                ));
            }
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                Value::Null => String::new(),
                _ => {
                    return Err(format!(
                        "environment variable {name:?}: the value must be text, not {value}"
                    ));
                }
            };
            if value.contains('\0') || name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!("environment variable {name:?}: NUL or \"=\" in it"));
            }
            env.insert(name.clone(), value);
        }
    }
    env.insert("ST2_ACTION_PACK_NAME".into(), pack.clone());
    env.insert("ST2_ACTION_EXECUTION_ID".into(), execution.id.to_string());
    Ok(env)
}

/// The interpreter of a script, from its `#!` line (the interpreter and at most one argument,
/// as Linux reads it); `/bin/sh` without one. The script need not be executable.
fn interpreter(script: &Path) -> Result<Vec<String>, String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("cannot read script {}: {e}", script.display()))?;
    let head = &head[..n];
    let Some(line) = head.strip_prefix(b"#!") else {
        return Ok(vec!["/bin/sh".into()]);
    };
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim();
    let (interp, arg) = match line.split_once([' ', '\t']) {
        Some((i, a)) => (i, Some(a.trim())),
        None => (line, None),
    };
    if !interp.starts_with('/') {
        return Err(format!(
            "script {}: the #! line must name an absolute interpreter, not {interp:?}",
            script.display()
        ));
    }
    let mut argv = vec![interp.to_string()];
    argv.extend(arg.filter(|a| !a.is_empty()).map(str::to_string));
    Ok(argv)
}

/// `dir`, resolved, when it is (inside) a directory granted as `cwd`.
fn granted_dir(dir: &str, grants: &PackGrants) -> Option<PathBuf> {
    let real = std::fs::canonicalize(dir).ok()?;
    grants
        .cwd
        .iter()
        .filter_map(|g| std::fs::canonicalize(g).ok())
        .any(|g| real.starts_with(g))
        .then_some(real)
}

/// A fresh, empty working directory, owned by the command's user.
fn fresh_dir(run_as: Option<(u32, u32)>) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("squall-cmd-").tempdir()?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
    }
    Ok(dir)
}

fn current_user() -> String {
    squall_host::process::current_user()
}

/// `argv` with the values of the execution's secret parameters masked, in every form a
/// command line can carry them ([`Execution::secret_texts`]).
pub(crate) fn mask(execution: &Execution, argv: Vec<String>) -> Vec<String> {
    let secrets = execution.secret_texts();
    argv.iter().map(|word| mask_text(word, &secrets)).collect()
}

/// `text` (a refusal or error message that may quote a rendered command) with the values of
/// the execution's secret parameters masked, as [`mask`].
pub(crate) fn mask_message(execution: &Execution, text: &str) -> String {
    mask_text(text, &execution.secret_texts())
}

/// The command's timeout in seconds, as StackStorm's runners take it: the `timeout` runner
/// parameter (0 means none, as st2's `run_command`: then Squall's maximum applies), else
/// `default`; never above the action's own `limits.timeout` when it sets one, nor above
/// `[limits.max] timeout`.
pub(crate) fn effective_timeout(
    runner_params: &Map<String, Value>,
    default: Duration,
    action_limit: Option<Duration>,
    max: Duration,
) -> u64 {
    let asked = match runner_params.get("timeout").and_then(Value::as_u64) {
        None => default,
        Some(0) => max,
        Some(s) => Duration::from_secs(s),
    };
    asked
        .min(action_limit.unwrap_or(max))
        .min(max)
        .as_secs()
        .max(1)
}

/// Commands one execution's component may run through its `process` import
/// (`wit/squall.wit`): at most this many, then each further call is refused.
pub(crate) const MAX_COMPONENT_COMMANDS: usize = 1000;

/// The `process` import of one `wasm` execution: each command the component asks for is
/// checked against the pack's grants exactly as `core.local`'s are (`commands` over the whole
/// argv, never a shell; `sudo` as a program needs `sudo = true`; `env` names; a `cwd` inside a
/// granted one, else a fresh empty directory; `run_as`), then run by
/// [`squall_host::process::run_command`] under `[process]` limits, in a task of its own so that
/// a run abandoned at the execution's deadline or cancel still ends its whole process group.
/// What ran and what was refused is taken into the execution's `commands` and denials when
/// the component returns or is canceled ([`ComponentCommands::finish`], which first waits for
/// a command still being ended).
pub(crate) struct ComponentCommands {
    execution: Execution,
    grants: PackGrants,
    settings: squall_core::config::ProcessSettings,
    max_output: u64,
    ledger: squall_host::process::ProcessLedger,
    cancel: CancellationToken,
    ran: Arc<std::sync::Mutex<Vec<CommandRun>>>,
    /// The task of the last command started (it records the command when it ends).
    running: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ComponentCommands {
    /// The gate of `execution` (its action's pack's grants, the operator's `[process]`
    /// settings, its output bound); `cancel` is the execution's.
    pub(crate) fn new(
        execution: &Execution,
        registry: &Registry,
        max_output: u64,
        ledger: squall_host::process::ProcessLedger,
        cancel: CancellationToken,
    ) -> ComponentCommands {
        let config = registry.config();
        ComponentCommands {
            execution: execution.clone(),
            grants: config.grants(&execution.action.pack),
            settings: config.process.clone(),
            max_output,
            ledger,
            cancel,
            ran: Arc::default(),
            running: std::sync::Mutex::new(None),
        }
    }

    /// The commands that ran, in order, for the execution's record: once the last command's
    /// task has ended it (at most its kill grace and output drain after a cancel). Refusals
    /// reach the record through the host, with the other capability denials.
    pub(crate) async fn finish(&self) -> Vec<CommandRun> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = running {
            let bound = self.settings.kill_grace + Duration::from_secs(5);
            if tokio::time::timeout(bound, task).await.is_err() {
                tracing::warn!(execution.id = %self.execution.id, "a command was not recorded: it did not end in time");
            }
        }
        std::mem::take(&mut *self.ran.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Checks a request against the grants and forms its command.
    fn plan(&self, request: &squall_host::process::CommandRequest) -> Result<Plan, Refusal> {
        let pack = &self.execution.action.pack;
        let toml = |grant: &str| format!("[packs.{pack}] {grant} in squall.toml");
        let Some(first) = request.argv.first().filter(|a| !a.is_empty()) else {
            return Err(Refusal::Failed(
                "the command is empty (argv[0] is the program)".into(),
            ));
        };
        if request.argv.iter().any(|a| a.contains('\0')) {
            return Err(Refusal::Failed("an argument contains a NUL byte".into()));
        }
        if !self
            .grants
            .commands
            .iter()
            .any(|p| p.matches(&request.argv))
        {
            return Err(Refusal::Denied(format!(
                "command {:?} is not granted to pack {pack:?}: add a pattern that matches it to \
                 [packs.{pack}] commands in squall.toml (e.g. commands = [{first:?}])",
                request.argv.join(" ")
            )));
        }
        let program = resolve_program(first, SEARCH_PATH).ok_or_else(|| {
            Refusal::Failed(format!(
                "program {first:?} not found (bare names are looked up on {SEARCH_PATH})"
            ))
        })?;
        let sudo = privileged(&program);
        if sudo && !self.grants.sudo {
            return Err(Refusal::Denied(format!(
                "sudo is not granted to pack {pack:?} ({})",
                toml("sudo = true")
            )));
        }
        let cwd = match request.cwd.as_deref() {
            None | Some("") => None,
            Some(dir) => Some(granted_dir(dir, &self.grants).ok_or_else(|| {
                Refusal::Denied(format!(
                    "working directory {dir:?} is not granted to pack {pack:?} ({})",
                    toml(&format!("cwd = [{dir:?}]"))
                ))
            })?),
        };
        let given: Map<String, Value> = request
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let params = Map::from_iter([("env".to_string(), Value::Object(given))]);
        let env = environment(&self.execution, &self.grants, &params, |name| {
            std::env::var(name).ok()
        })
        .map_err(Refusal::Denied)?;
        let (run_as, user) = match &self.grants.run_as {
            None => (None, current_user()),
            Some(name) => {
                let ids = user_ids(name)
                    .map_err(|e| Refusal::Failed(format!("{}: {e}", toml("run_as"))))?;
                (Some(ids), name.clone())
            }
        };
        Ok(Plan {
            program,
            args: request.argv[1..].to_vec(),
            env,
            cwd,
            run_as,
            user,
            sudo,
            shell: false,
            stdin: request.stdin.clone(),
        })
    }
}

#[async_trait::async_trait]
impl squall_host::process::ProcessGate for ComponentCommands {
    async fn run(
        &self,
        request: squall_host::process::CommandRequest,
    ) -> Result<squall_host::process::CommandOutcome, squall_host::GateError> {
        use squall_host::GateError;
        if self.ran.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_COMPONENT_COMMANDS {
            return Err(GateError::Failed(format!(
                "the execution already ran {MAX_COMPONENT_COMMANDS} commands, the most one may run"
            )));
        }
        let plan = match self.plan(&request) {
            Ok(p) => p,
            Err(Refusal::Denied(m)) => {
                return Err(GateError::Denied(mask_message(&self.execution, &m)));
            }
            Err(Refusal::Failed(m)) => {
                return Err(GateError::Failed(mask_message(&self.execution, &m)));
            }
        };
        let fresh = match &plan.cwd {
            Some(_) => None,
            None => Some(
                fresh_dir(plan.run_as)
                    .map_err(|e| format!("cannot make the command's working directory: {e}"))?,
            ),
        };
        let cwd = plan
            .cwd
            .clone()
            .or_else(|| fresh.as_ref().map(|d| d.path().to_path_buf()))
            .expect("one of them is set");
        let spec = plan.spec(&cwd, request.timeout, self.max_output, &self.settings);
        let argv = plan.audited_argv(&self.execution);
        let started_at = Timestamp::now();
        // Its own task: when the component's call is dropped (deadline, cancel), the guard
        // cancels the token and the task still ends the whole group, clears the ledger and
        // records the command.
        let token = self.cancel.child_token();
        let guard = token.clone().drop_guard();
        let ledger = self.ledger.clone();
        let ran = self.ran.clone();
        let id = self.execution.id;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let result = run_command(spec, &ledger, &token).await;
            drop(fresh);
            if let Ok(outcome) = &result {
                let run = plan.record(id, argv, &cwd, started_at, outcome);
                ran.lock().unwrap_or_else(|e| e.into_inner()).push(run);
            }
            let _ = tx.send(result);
        });
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        let outcome = rx
            .await
            .map_err(|_| "the command's task ended without an outcome".to_string())?
            .map_err(|e| mask_message(&self.execution, &e.to_string()))?;
        guard.disarm();
        Ok(outcome)
    }
}
