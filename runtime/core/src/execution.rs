//! Executions: one run of an action, recorded from request to result.
//!
//! The record follows StackStorm's execution API object where the two overlap (`id`, `action`,
//! `parameters`, `status`, `result`, `context`, `start_timestamp`, `end_timestamp`,
//! `elapsed_seconds`, and `log`: the list of `{status, timestamp}` changes) and adds what a
//! sandbox reports: the `limits` the run had, what it `usage`d, and its captured `output`.
//! Timestamps are RFC 3339 UTC.

use crate::action::{Action, RunnerType};
use crate::limits::Limits;
use crate::reference::Ref;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

crate::id::uuid_id!(
    /// An execution id (UUIDv7, time-sortable).
    ExecutionId
);

/// An execution's status, with StackStorm's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Accepted and durable; not yet picked up.
    Requested,
    /// Held back by a policy (e.g. concurrency); will be requested again.
    Delayed,
    /// Picked up; waiting for a runner.
    Scheduled,
    /// Running.
    Running,
    /// Waiting for something outside (e.g. an inquiry's response).
    Pending,
    /// Being paused (workflows).
    Pausing,
    /// Paused (workflows).
    Paused,
    /// Being resumed (workflows).
    Resuming,
    /// Being canceled.
    Canceling,
    /// Finished and succeeded.
    Succeeded,
    /// Finished and failed (action error, trap, limit other than time, ...).
    Failed,
    /// Ran out of time or fuel.
    Timeout,
    /// Canceled.
    Canceled,
    /// Lost (e.g. the process running it died) and not resumed.
    Abandoned,
}

impl ExecutionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ExecutionStatus; 14] = [
        ExecutionStatus::Requested,
        ExecutionStatus::Delayed,
        ExecutionStatus::Scheduled,
        ExecutionStatus::Running,
        ExecutionStatus::Pending,
        ExecutionStatus::Pausing,
        ExecutionStatus::Paused,
        ExecutionStatus::Resuming,
        ExecutionStatus::Canceling,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Timeout,
        ExecutionStatus::Canceled,
        ExecutionStatus::Abandoned,
    ];

    /// The status's name, e.g. `succeeded`.
    pub fn as_str(self) -> &'static str {
        use ExecutionStatus::*;
        match self {
            Requested => "requested",
            Delayed => "delayed",
            Scheduled => "scheduled",
            Running => "running",
            Pending => "pending",
            Pausing => "pausing",
            Paused => "paused",
            Resuming => "resuming",
            Canceling => "canceling",
            Succeeded => "succeeded",
            Failed => "failed",
            Timeout => "timeout",
            Canceled => "canceled",
            Abandoned => "abandoned",
        }
    }

    /// Whether the execution is over (no change can follow).
    pub fn is_completed(self) -> bool {
        use ExecutionStatus::*;
        matches!(self, Succeeded | Failed | Timeout | Canceled | Abandoned)
    }

    /// Whether moving from `self` to `to` is a legal change.
    pub fn can_become(self, to: ExecutionStatus) -> bool {
        use ExecutionStatus::*;
        match self {
            Requested => matches!(to, Scheduled | Delayed | Failed | Canceled | Abandoned),
            Delayed => matches!(to, Requested | Scheduled | Canceled | Abandoned),
            // Back to requested: re-queued after a restart (idempotent actions only).
            Scheduled => matches!(to, Requested | Running | Failed | Canceled | Abandoned),
            Running => matches!(
                to,
                Requested
                    | Succeeded
                    | Failed
                    | Timeout
                    | Pending
                    | Pausing
                    | Canceling
                    | Canceled
                    | Abandoned
            ),
            Pending => matches!(
                to,
                Running | Succeeded | Failed | Timeout | Canceling | Canceled | Abandoned
            ),
            // Back to running: a workflow resumed (or its waiting task answered) before it paused.
            Pausing => matches!(
                to,
                Paused | Running | Canceling | Canceled | Failed | Abandoned
            ),
            Paused => matches!(to, Resuming | Canceling | Canceled | Abandoned),
            Resuming => matches!(to, Running | Failed | Canceled | Abandoned),
            Canceling => matches!(to, Canceled | Abandoned),
            Succeeded | Failed | Timeout | Canceled | Abandoned => false,
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutionStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown status {s:?}; one of: {}", names.join(", "))
            })
    }
}

/// One entry of the status log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The status entered.
    pub status: ExecutionStatus,
    /// When.
    pub timestamp: Timestamp,
}

/// The action an execution runs, as it was when requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionInfo {
    /// `<pack>.<name>`.
    #[serde(rename = "ref")]
    pub reference: Ref,
    /// The action's name.
    pub name: String,
    /// The action's pack.
    pub pack: String,
    /// Its runner.
    pub runner_type: RunnerType,
    /// Its entry point.
    pub entry_point: String,
}

impl From<&Action> for ActionInfo {
    fn from(a: &Action) -> Self {
        ActionInfo {
            reference: a.reference.clone(),
            name: a.reference.name().to_string(),
            pack: a.reference.pack().to_string(),
            runner_type: a.runner_type,
            entry_point: a.entry_point.clone(),
        }
    }
}

/// One line a component logged through `squall:plugin/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The text.
    pub message: String,
}

/// What a component wrote while running, bounded by its `max_output` limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Captured stdout (invalid UTF-8 replaced), at most `max_output` bytes.
    pub stdout: String,
    /// Captured stderr, at most `max_output` bytes.
    pub stderr: String,
    /// Log lines, at most `max_output` bytes of message text.
    pub log: Vec<LogLine>,
    /// Bytes of stdout written past the bound and dropped.
    #[serde(default)]
    pub stdout_dropped_bytes: u64,
    /// Bytes of stderr written past the bound and dropped.
    #[serde(default)]
    pub stderr_dropped_bytes: u64,
    /// Log lines past the bound, dropped.
    #[serde(default)]
    pub log_dropped_lines: u64,
    /// Capability uses the host refused, one message each (naming the host, ...).
    #[serde(default)]
    pub denials: Vec<String>,
}

/// One command a command runner ran for an execution (the `process` capability's audit record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRun {
    /// Where it ran: `localhost` for the local runners.
    pub host: String,
    /// The program and its arguments as executed (values of secret parameters masked).
    pub argv: Vec<String>,
    /// The operating-system user it ran as.
    pub user: String,
    /// Its working directory (a fresh one is removed after the run).
    pub cwd: String,
    /// Whether it ran under `sudo`.
    pub sudo: bool,
    /// Whether it ran under `/bin/bash -c` (the pack is granted a shell).
    pub shell: bool,
    /// Its process (and process group) id.
    pub pid: u32,
    /// How it ended: `exited`, `signaled`, `timeout` (killed at its deadline) or `canceled`.
    pub ended: String,
    /// Its exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did and Squall did not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// When it started.
    pub started_at: Timestamp,
    /// From start until its process group was gone, in milliseconds.
    pub duration_ms: u64,
    /// Bytes it wrote to stdout (kept or not).
    pub stdout_bytes: u64,
    /// Bytes it wrote to stderr (kept or not).
    pub stderr_bytes: u64,
}

/// What the run consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Fuel units consumed.
    pub fuel_consumed: u64,
    /// Hex SHA-256 of the component that ran.
    pub component_sha256: String,
}

/// One execution record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Its id.
    pub id: ExecutionId,
    /// The action.
    pub action: ActionInfo,
    /// Parameters the action runs with (after defaults). Secret values are stored as given and
    /// masked on output, as StackStorm does (see [`Execution::masked`]).
    pub parameters: Map<String, Value>,
    /// Names of the parameters declared `secret` when the execution was requested, so they stay
    /// masked even if the action changes or disappears.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_parameters: Vec<String>,
    /// Current status.
    pub status: ExecutionStatus,
    /// The result: the action's JSON on success, `{"error": ...}` (or the action's own result)
    /// on failure, `null` until completed.
    pub result: Value,
    /// StackStorm's execution context; `user` is who requested it.
    pub context: Map<String, Value>,
    /// When it was requested.
    pub start_timestamp: Timestamp,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_timestamp: Option<Timestamp>,
    /// Seconds from request to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
    /// Every status change, oldest first.
    pub log: Vec<StatusChange>,
    /// Limits the run had (set when it starts running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// What the run consumed (set when it completes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the component wrote.
    #[serde(default)]
    pub output: Output,
    /// The commands a command runner ran for it, in order (see [`CommandRun`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandRun>,
    /// The process that runs it (set when requested): another live process's unfinished
    /// executions are left alone by a starting server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The workflow execution this one is a task of (StackStorm's `parent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ExecutionId>,
    /// The task executions of a workflow, in the order they were requested (StackStorm's
    /// `children`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ExecutionId>,
    /// Milliseconds to wait after `start_timestamp` before running (StackStorm's `delay`; a
    /// workflow task's `delay` or retry delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
}

/// An illegal status change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("execution {id} cannot go from {from} to {to}")]
pub struct TransitionError {
    /// The execution.
    pub id: ExecutionId,
    /// Its status.
    pub from: ExecutionStatus,
    /// The status asked for.
    pub to: ExecutionStatus,
}

impl Execution {
    /// A new execution of `action` in status `requested`, requested by `user` at `at`.
    pub fn new(action: &Action, parameters: Map<String, Value>, user: &str, at: Timestamp) -> Self {
        let mut context = Map::new();
        context.insert("user".into(), Value::String(user.to_string()));
        let secret_parameters = action
            .parameters
            .specs()
            .into_iter()
            .filter(|s| s.secret)
            .map(|s| s.name.clone())
            .collect();
        Execution {
            id: ExecutionId::new(),
            action: ActionInfo::from(action),
            parameters,
            secret_parameters,
            status: ExecutionStatus::Requested,
            result: Value::Null,
            context,
            start_timestamp: at,
            end_timestamp: None,
            elapsed_seconds: None,
            log: vec![StatusChange {
                status: ExecutionStatus::Requested,
                timestamp: at,
            }],
            limits: None,
            usage: None,
            output: Output::default(),
            commands: Vec::new(),
            owner: None,
            parent: None,
            children: Vec::new(),
            delay: None,
        }
    }

    /// When a delayed execution may start: `start_timestamp + delay`, or `None` without a delay.
    pub fn not_before(&self) -> Option<Timestamp> {
        let ms = self.delay?;
        self.start_timestamp
            .checked_add(jiff::SignedDuration::from_millis(ms as i64))
            .ok()
    }

    /// A copy fit for display: every secret parameter's value replaced by
    /// [`crate::param::MASKED`], and wherever another parameter's text holds a secret's value
    /// (a `cmd` rendered from `{{ password }}`), that text masked too ([`Self::secret_texts`]).
    pub fn masked(&self) -> Execution {
        let mut shown = self.clone();
        shown.parameters = self.masked_parameters(&self.parameters);
        shown
    }

    /// `params` (this execution's parameters, or a part of them) as [`Self::masked`] shows
    /// them.
    pub fn masked_parameters(&self, params: &Map<String, Value>) -> Map<String, Value> {
        let secrets = self.secret_texts();
        let mut shown = params.clone();
        for (name, value) in shown.iter_mut() {
            if self.secret_parameters.contains(name) {
                *value = Value::String(crate::param::MASKED.to_string());
            } else if !secrets.is_empty() {
                mask_strings(value, &secrets);
            }
        }
        shown
    }

    /// The texts the values of the secret parameters can appear as inside other text: as
    /// text, as a positional command argument, as JSON; longest first (so a longer form is
    /// masked whole before a shorter one inside it); one-character forms left out (masking
    /// every such character would hide the text and reveal the secret's length anyway).
    pub fn secret_texts(&self) -> Vec<String> {
        let mut forms: Vec<String> = self
            .secret_parameters
            .iter()
            .filter_map(|n| self.parameters.get(n))
            .flat_map(|v| {
                [
                    crate::local_runner::python_str(v),
                    crate::local_runner::positional_argument(Some("array"), v),
                    v.to_string(),
                ]
            })
            .filter(|s| s.chars().count() > 1)
            .collect();
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        forms
    }

    /// Who requested it (`context.user`), or `""`.
    pub fn user(&self) -> &str {
        self.context
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Moves to `to` at `at`, appending to the status log; a completed status also sets
    /// `end_timestamp` and `elapsed_seconds`.
    ///
    /// # Errors
    /// [`TransitionError`] when the change is not legal (see [`ExecutionStatus::can_become`]).
    pub fn transition(
        &mut self,
        to: ExecutionStatus,
        at: Timestamp,
    ) -> Result<(), TransitionError> {
        if !self.status.can_become(to) {
            return Err(TransitionError {
                id: self.id,
                from: self.status,
                to,
            });
        }
        self.status = to;
        self.log.push(StatusChange {
            status: to,
            timestamp: at,
        });
        if to.is_completed() {
            self.end_timestamp = Some(at);
            let elapsed = at.duration_since(self.start_timestamp);
            self.elapsed_seconds = Some(elapsed.as_secs_f64().max(0.0));
        }
        Ok(())
    }
}

/// `text` with every occurrence of each of `secrets` (longest first, as
/// [`Execution::secret_texts`] gives them) replaced by [`crate::param::MASKED`].
pub fn mask_text(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), crate::param::MASKED);
        }
    }
    text
}

/// [`mask_text`] over the strings of `value`, recursively.
pub fn mask_strings(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(text) => *text = mask_text(text, secrets),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_strings(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_strings(v, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutionStatus::*;

    fn action() -> Action {
        crate::action::test_action("name: a\nrunner_type: wasm\nentry_point: a.wasm\n")
    }

    #[test]
    fn ids_sort_by_creation() {
        let ids: Vec<ExecutionId> = (0..100).map(|_| ExecutionId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let id = ids[0];
        assert_eq!(id.to_string().parse::<ExecutionId>().unwrap(), id);
        assert_eq!(ExecutionId::from_u128(id.as_u128()), id);
        assert!(
            "nope"
                .parse::<ExecutionId>()
                .unwrap_err()
                .contains("\"nope\"")
        );
    }

    #[test]
    fn lifecycle_is_logged_and_timed() {
        let t0: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-11-23T10:00:01.5Z".parse().unwrap();
        let mut e = Execution::new(&action(), Map::new(), "alice", t0);
        for s in [Scheduled, Running, Succeeded] {
            e.transition(s, t1).unwrap();
        }
        let statuses: Vec<ExecutionStatus> = e.log.iter().map(|c| c.status).collect();
        assert_eq!(statuses, [Requested, Scheduled, Running, Succeeded]);
        assert_eq!(e.elapsed_seconds, Some(1.5));
        assert_eq!(e.end_timestamp, Some(t1));
        assert_eq!(e.user(), "alice");
        let err = e.transition(Running, t1).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("execution {} cannot go from succeeded to running", e.id)
        );
    }

    #[test]
    fn masked_hides_secret_parameters_only() {
        let a = crate::action::test_action(
            "name: a\nrunner_type: wasm\nentry_point: a.wasm\nparameters:\n  token: {type: string, secret: true}\n  user: {type: string}\n",
        );
        let params = a
            .parameters
            .resolve(
                &serde_json::json!({"token": "hunter2", "user": "bob"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        let e = Execution::new(&a, params, "bob", Timestamp::now());
        let shown = serde_json::to_string(&e.masked()).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains(r#""token":"********""#) && shown.contains(r#""user":"bob""#),
            "{shown}"
        );
        assert_eq!(e.parameters["token"], "hunter2");
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        for (from, to, ok) in [
            (Requested, Scheduled, true),
            (Requested, Running, false),
            (Scheduled, Running, true),
            (Running, Timeout, true),
            (Running, Requested, true),
            (Succeeded, Requested, false),
            (Failed, Running, false),
            (Running, Abandoned, true),
        ] {
            assert_eq!(from.can_become(to), ok, "{from} -> {to}");
        }
    }

    #[test]
    fn record_serializes_with_stackstorm_field_names() {
        let t0: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let e = Execution::new(&action(), Map::new(), "bob", t0);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["action"]["ref"], "ops.a");
        assert_eq!(v["status"], "requested");
        assert_eq!(v["log"][0]["status"], "requested");
        assert_eq!(v["start_timestamp"], "2026-11-23T10:00:00Z");
        assert_eq!(v["context"]["user"], "bob");
        let back: Execution = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!("timeout".parse::<ExecutionStatus>().unwrap(), Timeout);
        assert!(
            "done"
                .parse::<ExecutionStatus>()
                .unwrap_err()
                .contains("succeeded")
        );
    }
}
