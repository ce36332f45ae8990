//! The `process` capability, host side: one granted command run under operating-system limits.
//!
//! [`run_command`] starts a program (already checked against the pack's grants by the caller)
//! with exactly the environment given (nothing inherited), in its own process group, with
//! `setrlimit` bounds on processes, address space, open files, CPU seconds and core dumps, as
//! the user asked for; reads stdout and stderr into bounded buffers (the rest is counted and
//! dropped, the pipes kept drained so the program never blocks on them); and at the deadline or
//! on cancel sends SIGTERM to the whole group, then SIGKILL after the grace period. When the
//! program itself exits, whatever it left running in its group is killed too. A descendant
//! that leaves the group (`setsid`, a double fork into a new session) escapes the group kill:
//! it keeps the `setrlimit` bounds it inherited (CPU seconds, processes, memory) and runs as
//! the command's user, so a dedicated `run_as` user is how an operator contains such programs;
//! its hold on the output pipes is dropped after a short drain.
//!
//! Each running group is written to a [`ProcessLedger`] in the data directory; a server that
//! starts after a crash kills the groups the previous one left ([`ProcessLedger::reap`]).

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Operating-system limits of one command (see `squall_core::config::ProcessSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimits {
    /// `RLIMIT_NPROC`: processes of the command's user.
    pub max_processes: u64,
    /// `RLIMIT_AS`, bytes per process.
    pub max_memory: u64,
    /// `RLIMIT_NOFILE`.
    pub max_open_files: u64,
    /// `RLIMIT_CPU`, seconds of CPU time per process.
    pub cpu_seconds: u64,
    /// Time between SIGTERM and SIGKILL at the deadline or on cancel.
    pub kill_grace: Duration,
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The program's absolute path (resolved by the caller).
    pub program: PathBuf,
    /// Its arguments, without the program.
    pub args: Vec<String>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// Working directory (must exist).
    pub cwd: PathBuf,
    /// User and group ids to switch to, when not the server's own.
    pub run_as: Option<(u32, u32)>,
    /// Bytes written to stdin, then closed; `None`: stdin is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// Wall-clock bound from start.
    pub timeout: Duration,
    /// Bytes kept of stdout, and of stderr.
    pub max_output: u64,
    /// OS limits.
    pub limits: ProcessLimits,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The program exited with this code.
    Code(i32),
    /// The program was ended by this signal (not sent by Squall).
    Signal(i32),
    /// Squall ended it at its deadline.
    TimedOut,
    /// Squall ended it because the execution was canceled.
    Canceled,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// How it ended.
    pub exit: Exit,
    /// Kept stdout (invalid UTF-8 replaced).
    pub stdout: String,
    /// Kept stderr.
    pub stderr: String,
    /// Bytes of stdout written in all (kept and dropped).
    pub stdout_bytes: u64,
    /// Bytes of stderr written in all.
    pub stderr_bytes: u64,
    /// From start to the group being gone.
    pub duration: Duration,
    /// The process id (and group id) it ran as.
    pub pid: u32,
}

/// Why a command could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The ledger of running commands could not be written, so nothing was started.
    #[error("cannot record the running command in {path}: {source}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A command a component asked for through the `process` import, not yet checked against any
/// grant (see `wit/squall.wit`, interface `process`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRequest {
    /// The program and its arguments, as the component gave them.
    pub argv: Vec<String>,
    /// Variables it asks to set.
    pub env: Vec<(String, String)>,
    /// The working directory it names, if any.
    pub cwd: Option<String>,
    /// Bytes for stdin.
    pub stdin: Option<Vec<u8>>,
    /// Its wall-clock bound: what it asked for, capped at the execution's remaining time.
    pub timeout: Duration,
}

/// Runs the commands one execution's component asks for, under its pack's grants. The server
/// implements it per execution (grants, limits, recording); the host calls it from the
/// component's `process.run` import. Without one (sensors, or a host built without it) every
/// call is refused.
#[async_trait::async_trait]
pub trait ProcessGate: Send + Sync {
    /// Checks `request` against the grants, runs it to its end and records it.
    ///
    /// # Errors
    /// A message for the component: the refusal naming the grant to add (nothing ran), or why
    /// the command could not start.
    async fn run(&self, request: CommandRequest) -> Result<CommandOutcome, crate::GateError>;
}

impl std::fmt::Debug for dyn ProcessGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessGate")
    }
}

/// How long the pipes are still read after the group is gone (a process that left the group
/// may hold them open).
const DRAIN: Duration = Duration::from_millis(200);

/// Runs `spec` to its end, its deadline or `cancel`; see the module docs.
///
/// # Errors
/// [`ProcessError`] when it could not start; every way a started command ends is an
/// [`Exit`].
pub async fn run_command(
    spec: CommandSpec,
    ledger: &ProcessLedger,
    cancel: &CancellationToken,
) -> Result<CommandOutcome, ProcessError> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .process_group(0)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some((uid, gid)) = spec.run_as {
        cmd.uid(uid).gid(gid);
    }
    apply_limits(&mut cmd, spec.limits);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    let pid = child.id().unwrap_or(0);
    let entry = match ledger.record(pid) {
        Ok(e) => e,
        Err(e) => {
            kill_group(pid, Signal::SIGKILL);
            let _ = child.wait().await;
            return Err(e);
        }
    };
    if let (Some(input), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            // A program that does not read its stdin closes it: not an error.
            let _ = stdin.write_all(&input).await;
        });
    }
    let (out_buf, err_buf) = (Kept::default(), Kept::default());
    let out = tokio::spawn(read_bounded(
        child.stdout.take(),
        spec.max_output,
        out_buf.clone(),
    ));
    let err = tokio::spawn(read_bounded(
        child.stderr.take(),
        spec.max_output,
        err_buf.clone(),
    ));

    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut exit = tokio::select! {
        status = child.wait() => status.map_or(Exit::Signal(0), exit_of),
        () = &mut deadline => Exit::TimedOut,
        () = cancel.cancelled() => Exit::Canceled,
    };
    if matches!(exit, Exit::TimedOut | Exit::Canceled) {
        kill_group(pid, Signal::SIGTERM);
        if tokio::time::timeout(spec.limits.kill_grace, child.wait())
            .await
            .is_err()
        {
            tracing::debug!(pid, "command ignored SIGTERM: killed");
        }
    }
    // Whatever is left in the group (background jobs, a leader ignoring SIGTERM) goes now.
    terminate_group(pid).await;
    if let Ok(status) = child.try_wait()
        && let Some(status) = status
        && let Exit::Signal(0) = exit
    {
        exit = exit_of(status);
    }
    let _ = child.wait().await;
    let (stdout, stdout_bytes) = drain(out, &out_buf).await;
    let (stderr, stderr_bytes) = drain(err, &err_buf).await;
    entry.remove();
    Ok(CommandOutcome {
        exit,
        stdout,
        stderr,
        stdout_bytes,
        stderr_bytes,
        duration: started.elapsed(),
        pid,
    })
}

/// The name of signal `number` (`SIGKILL`), or `signal N` for one Linux does not define.
pub fn signal_name(number: i32) -> String {
    Signal::try_from(number).map_or_else(|_| format!("signal {number}"), |s| s.as_str().to_string())
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Signal(0),
    }
}

/// What a reader kept of one pipe (the first bytes) and how many bytes it read in all; shared
/// so that what was read survives a reader that has to be abandoned.
type Kept = std::sync::Arc<std::sync::Mutex<(Vec<u8>, u64)>>;

/// Waits up to [`DRAIN`] for a reader to reach the end of its pipe, then takes what it kept.
/// A process that left the group (`setsid`) may still hold the pipe open: its reader is
/// aborted, and what was read until then is returned.
async fn drain(mut task: tokio::task::JoinHandle<()>, kept: &Kept) -> (String, u64) {
    if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
        task.abort();
    }
    let (bytes, total) = std::mem::take(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()));
    (String::from_utf8_lossy(&bytes).into_owned(), total)
}

/// Reads `pipe` to its end into `kept`: the first `max` bytes, and the count of all bytes read.
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>, max: u64, kept: Kept) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let cap = usize::try_from(max).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                kept.1 += n as u64;
                let room = cap.saturating_sub(kept.0.len());
                kept.0.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn kill_group(pgid: u32, signal: Signal) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    killpg(Pid::from_raw(pgid), signal).is_ok()
}

/// SIGKILLs the group until no process is left in it (a process forking as it is killed
/// can add one between two signals).
async fn terminate_group(pgid: u32) {
    for _ in 0..1000 {
        if !kill_group(pgid, Signal::SIGKILL) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tracing::warn!(pgid, "process group still has members after 1000 SIGKILLs");
}

#[allow(unsafe_code)]
fn apply_limits(cmd: &mut tokio::process::Command, limits: ProcessLimits) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it calls getrlimit(2) and setrlimit(2) only,
    // allocating nothing. A bound is never raised above the server's own hard limit (an
    // unprivileged process may not).
    unsafe {
        cmd.pre_exec(move || {
            let set = |r: Resource, v: u64| {
                let (_, hard) = getrlimit(r)?;
                let v = v.min(hard);
                setrlimit(r, v, v).map_err(std::io::Error::from)
            };
            set(Resource::RLIMIT_NPROC, limits.max_processes)?;
            set(Resource::RLIMIT_AS, limits.max_memory)?;
            set(Resource::RLIMIT_NOFILE, limits.max_open_files)?;
            set(Resource::RLIMIT_CPU, limits.cpu_seconds.max(1))?;
            set(Resource::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
}

/// Resolves a bare program name on `search_path` (`:`-separated) to an executable file; a
/// path is returned as it is when it names an executable file.
pub fn resolve_program(program: &str, search_path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    search_path
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(program))
        .find(|p| executable(p))
}

/// The user and group ids of the user named `name`.
///
/// # Errors
/// A message when there is no such user.
pub fn user_ids(name: &str) -> Result<(u32, u32), String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok((u.uid.as_raw(), u.gid.as_raw())),
        Ok(None) => Err(format!("no user {name:?} on this machine")),
        Err(e) => Err(format!("cannot look up user {name:?}: {e}")),
    }
}

/// The name of the user this process runs as (its uid as text when it has no name).
pub fn current_user() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

/// The groups of commands running now, one file each, under a directory per server process,
/// so a server starting after a crash can kill what a dead one left running (and leaves alone
/// what a live one — a CLI running an action in-process — runs). A file holds the group id,
/// the start time of its leader (clock ticks since boot, `/proc/<pid>/stat` field 22) and the
/// boot id, so a reused process id is never killed by mistake.
#[derive(Debug, Clone)]
pub struct ProcessLedger {
    dir: PathBuf,
}

/// One recorded group; [`LedgerEntry::remove`] once it is gone.
#[derive(Debug)]
pub struct LedgerEntry {
    path: Option<PathBuf>,
}

impl LedgerEntry {
    /// Forgets the group (it has ended).
    pub fn remove(self) {
        if let Some(p) = self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl ProcessLedger {
    /// The ledger of server process `owner` (a store process id, a UUID) under `root` (created
    /// on first use).
    pub fn new(root: &Path, owner: &str) -> ProcessLedger {
        ProcessLedger {
            dir: root.join(owner),
        }
    }

    /// A ledger that records nothing (for runs without a data directory).
    pub fn disabled() -> ProcessLedger {
        ProcessLedger {
            dir: PathBuf::new(),
        }
    }

    fn record(&self, pid: u32) -> Result<LedgerEntry, ProcessError> {
        if self.dir.as_os_str().is_empty() {
            return Ok(LedgerEntry { path: None });
        }
        let path = self.dir.join(pid.to_string());
        let text = format!("{pid} {} {}\n", start_time(pid).unwrap_or(0), boot_id());
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|source| ProcessError::Ledger {
                path: path.clone(),
                source,
            })?;
        Ok(LedgerEntry { path: Some(path) })
    }

    /// Kills every process of the groups that server processes no longer `alive` recorded
    /// under `root` and left (same boot, started no earlier than the group's leader), and
    /// removes their ledgers. Returns how many groups still had processes. Call at start,
    /// before any command runs.
    pub fn reap_orphans(root: &Path, alive: impl Fn(&str) -> bool) -> usize {
        let Ok(owners) = std::fs::read_dir(root) else {
            return 0;
        };
        let mut reaped = 0;
        for owner in owners.flatten() {
            let name = owner.file_name().to_string_lossy().into_owned();
            if alive(&name) {
                continue;
            }
            reaped += reap_dir(&owner.path());
            let _ = std::fs::remove_dir(owner.path());
        }
        reaped
    }
}

fn reap_dir(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let boot = boot_id();
    let mut reaped = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut f = text.split_whitespace();
        if let (Some(pgid), Some(start), Some(b)) = (
            f.next().and_then(|v| v.parse::<u32>().ok()),
            f.next().and_then(|v| v.parse::<u64>().ok()),
            f.next(),
        ) && b == boot
        {
            let members = group_members(pgid, start);
            if !members.is_empty() {
                reaped += 1;
                tracing::warn!(
                    pgid,
                    processes = members.len(),
                    "killing a command a stopped server left running"
                );
                for pid in members {
                    if let Ok(pid) = i32::try_from(pid) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    reaped
}

/// Processes in group `pgid` started at or after `since` (clock ticks since boot).
fn group_members(pgid: u32, since: u64) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(*pid).is_some_and(|(group, start)| group == pgid && start >= since)
        })
        .collect()
}

/// `(pgrp, starttime)` of a process, from `/proc/<pid>/stat`.
fn stat_fields(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): pgrp is field 5, starttime field 22.
    Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, s)| s)
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, args: &[&str], timeout: Duration) -> CommandSpec {
        CommandSpec {
            program: resolve_program(program, squall_core::command::SEARCH_PATH).unwrap(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), squall_core::command::SEARCH_PATH.into())],
            cwd: std::env::temp_dir(),
            run_as: None,
            stdin: None,
            timeout,
            max_output: 1024,
            limits: ProcessLimits {
                max_processes: 100_000,
                max_memory: 1 << 31,
                max_open_files: 256,
                cpu_seconds: 10,
                kill_grace: Duration::from_millis(300),
            },
        }
    }

    async fn run(spec: CommandSpec) -> CommandOutcome {
        run_command(spec, &ProcessLedger::disabled(), &CancellationToken::new())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn output_and_exit_code_are_kept() {
        let o = run(spec(
            "bash",
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(10),
        ))
        .await;
        assert_eq!(o.exit, Exit::Code(3));
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.stderr, "err\n");
    }

    #[tokio::test]
    async fn output_is_kept_when_an_escaped_process_holds_the_pipe() {
        // A process in a new session (outside the group kill) keeps stdout open: the command's
        // own output is still returned, without waiting for the escapee.
        let marker = tempfile::tempdir().unwrap();
        let pidfile = marker.path().join("escapee");
        let script = format!(
            "echo before; setsid sh -c 'echo $$ > {}; exec sleep 30' & sleep 0.2; echo after",
            pidfile.display()
        );
        let started = Instant::now();
        let o = run(spec("bash", &["-c", &script], Duration::from_secs(10))).await;
        assert_eq!(o.exit, Exit::Code(0));
        assert_eq!(o.stdout, "before\nafter\n");
        assert_eq!(o.stdout_bytes, 13);
        assert!(started.elapsed() < Duration::from_secs(10));
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let _ =
                nix::sys::signal::kill(Pid::from_raw(pid.trim().parse().unwrap()), Signal::SIGKILL);
        }
    }

    #[tokio::test]
    async fn the_environment_is_only_what_is_given() {
        // SAFETY-free: the test sets nothing; HOME is set in any test environment.
        let o = run(spec("env", &[], Duration::from_secs(10))).await;
        assert_eq!(
            o.stdout,
            format!("PATH={}\n", squall_core::command::SEARCH_PATH)
        );
    }

    #[tokio::test]
    async fn output_past_the_bound_is_counted_not_kept() {
        let o = run(spec(
            "bash",
            &["-c", "head -c 100000 /dev/zero"],
            Duration::from_secs(10),
        ))
        .await;
        assert_eq!(o.stdout.len(), 1024);
        assert_eq!(o.stdout_bytes, 100_000);
    }

    #[tokio::test]
    async fn a_deadline_kills_the_whole_group_even_when_sigterm_is_ignored() {
        let marker = tempfile::tempdir().unwrap();
        let pidfile = marker.path().join("bg");
        let script = format!(
            "trap '' TERM; (trap '' TERM; sleep 30) & echo $! > {}; sleep 30",
            pidfile.display()
        );
        let o = run(spec("bash", &["-c", &script], Duration::from_millis(300))).await;
        assert_eq!(o.exit, Exit::TimedOut);
        let bg: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            nix::sys::signal::kill(Pid::from_raw(bg), None).is_err(),
            "the background child is gone"
        );
        assert!(o.duration < Duration::from_secs(5), "{:?}", o.duration);
    }

    #[tokio::test]
    async fn background_jobs_do_not_outlive_the_command() {
        let marker = tempfile::tempdir().unwrap();
        let pidfile = marker.path().join("bg");
        let script = format!("sleep 30 & echo $! > {}; echo done", pidfile.display());
        let o = run(spec("bash", &["-c", &script], Duration::from_secs(10))).await;
        assert_eq!(o.exit, Exit::Code(0));
        assert_eq!(o.stdout, "done\n");
        let bg: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(nix::sys::signal::kill(Pid::from_raw(bg), None).is_err());
    }

    #[tokio::test]
    async fn cancel_stops_the_command() {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.cancel();
        });
        let o = run_command(
            spec("sleep", &["30"], Duration::from_secs(60)),
            &ProcessLedger::disabled(),
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(o.exit, Exit::Canceled);
    }

    #[tokio::test]
    async fn the_ledger_reaps_what_a_dead_server_left() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ProcessLedger::new(dir.path(), "dead");
        // A group recorded and left running, as by a server killed with -9.
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let entry = ledger.record(child.id()).unwrap();
        std::mem::forget(entry);
        // A live owner's commands are left alone.
        assert_eq!(ProcessLedger::reap_orphans(dir.path(), |_| true), 0);
        assert_eq!(ProcessLedger::reap_orphans(dir.path(), |o| o != "dead"), 1);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(ProcessLedger::reap_orphans(dir.path(), |_| false), 0);
    }

    #[test]
    fn programs_resolve_on_the_search_path_only() {
        assert!(resolve_program("sh", squall_core::command::SEARCH_PATH).is_some());
        assert!(resolve_program("no-such-program-x", squall_core::command::SEARCH_PATH).is_none());
        assert!(resolve_program("/etc/passwd", squall_core::command::SEARCH_PATH).is_none());
    }
}
