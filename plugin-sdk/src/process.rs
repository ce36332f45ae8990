//! Commands on the machine Squall runs on, through the host's `squall:plugin/process` import:
//! what StackStorm's local runners do, from a component, under the same grants.
//!
//! A command runs only when the operator granted it to the action's pack (`[packs.<pack>]
//! commands = [...]` in `squall.toml`; patterns over the whole argv). There is no shell: each
//! element of `argv` is one argument. The host clears the environment (only `PATH`, the
//! variables you pass whose names the pack's `env` grant allows, and StackStorm's
//! `ST2_ACTION_PACK_NAME` / `ST2_ACTION_EXECUTION_ID`), runs it in a fresh empty directory
//! unless you name one inside a granted `cwd`, bounds its output to the action's `max_output`,
//! and kills its whole process group at its timeout (never later than the execution's own
//! deadline). Every command is recorded in the execution's `commands`.
//!
//! ```ignore
//! use squall_plugin::process::Command;
//!
//! let out = Command::new(["systemctl", "restart", "nginx"]).run()?;
//! if out.exit_code != Some(0) { /* ... */ }
//! ```

use crate::bindings::squall::plugin::process as wit;

pub use wit::CommandOutput as Output;

/// A command to run; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    stdin: Option<Vec<u8>>,
    timeout_seconds: Option<u32>,
}

impl Command {
    /// The program and its arguments, e.g. `["uname", "-a"]`.
    pub fn new<I, S>(argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Command::default()
        }
    }

    /// Sets an environment variable (its name must be granted to the pack: `env`).
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Command {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs in `dir` (inside a directory granted to the pack: `cwd`).
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<String>) -> Command {
        self.cwd = Some(dir.into());
        self
    }

    /// Writes `bytes` to the command's stdin, then closes it.
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Command {
        self.stdin = Some(bytes.into());
        self
    }

    /// Ends the command (its whole process group) after `seconds` (default: the execution's
    /// remaining time; never more).
    #[must_use]
    pub fn timeout_seconds(mut self, seconds: u32) -> Command {
        self.timeout_seconds = Some(seconds);
        self
    }

    /// Runs the command to its end.
    ///
    /// # Errors
    /// The host's message: not granted (naming the grant to add; nothing ran), the program not
    /// found, or the execution's command budget (1,000) used up.
    pub fn run(self) -> Result<Output, String> {
        wit::run(&wit::CommandRequest {
            argv: self.argv,
            env: self.env,
            cwd: self.cwd,
            stdin: self.stdin,
            timeout_seconds: self.timeout_seconds,
        })
    }
}
