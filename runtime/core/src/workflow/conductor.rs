//! The workflow conductor: a pure state machine (no I/O) that, given a [`WorkflowSpec`] and
//! events about its task executions, decides what runs next — Orquesta's `WorkflowConductor`
//! (`orquesta/conducting.py`), rebuilt.
//!
//! The caller owns the durable [`WorkflowState`]: it asks the conductor for [`Dispatch`]es
//! (action executions to request), binds each to the execution it created, persists the state,
//! and feeds back what happens to those executions with [`Conductor::update`].
//!
//! Semantics followed (Orquesta v1.0):
//! - Tasks with no inbound transition start the workflow. A completed task evaluates each
//!   `next` entry in order; a satisfied one publishes its variables (each seeing the ones before)
//!   and stages its targets with the resulting context.
//! - Fail-fast: a failed task with no satisfied transition to a task or `noop` fails the
//!   workflow: running tasks finish, nothing new starts. `continue` does not remediate, `fail`
//!   fails the workflow (tasks staged by the same transition still run).
//! - A task reached by several transitions without `join` runs once per route; `join: all` / `N`
//!   waits for that many inbound tasks, and a join still waiting when nothing else can run fails
//!   the workflow (unreachable join). Contexts of the joined branches are merged in arrival order.
//! - With items: one execution per item, at most `concurrency` at once, results in item order;
//!   a failed item fails the task (no new items start).
//! - `retry`: when the task completes and `when` holds (default: it failed), it runs again, up
//!   to `count` more times, after `delay` seconds.
//! - The output is rendered from the terminal tasks' contexts whenever the workflow completes,
//!   also when it failed; errors are listed as Orquesta lists them.

use super::expr::{self, CurrentTask, Scope, is_abended};
use super::spec::{Join, WorkflowSpec};
use crate::config::WorkflowSettings;
use crate::execution::ExecutionStatus;
use crate::template::KeyLookup;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// A request the conductor refuses (pause a completed workflow, re-run a running one, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConductorError(pub String);

/// A task staged to run: its inbound context and whether its join is satisfied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    /// The task's name.
    pub name: String,
    /// Its route.
    pub route: usize,
    /// Indexes into [`WorkflowState::contexts`], merged in order.
    pub ctxs: Vec<usize>,
    /// Inbound transitions that reached it (`<task>__t<index>`).
    pub prev: Vec<String>,
    /// Whether it can start (a join waits for its inbound branches).
    pub ready: bool,
    /// Staged by a transition that also said `fail`: runs although the workflow is failing.
    #[serde(default)]
    pub run_on_fail: bool,
}

/// One execution of a task's action: one per attempt, or one per item and attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The item index, for a with-items task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// The attempt (0, then 1 per retry).
    pub attempt: u32,
    /// The execution id, once the caller has requested it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// Its status as last reported.
    pub status: ExecutionStatus,
    /// Its result once completed.
    #[serde(default)]
    pub result: Value,
}

/// Retry bookkeeping of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryState {
    /// Retries allowed.
    pub count: u64,
    /// Retries done.
    pub tally: u64,
    /// Seconds before each retry.
    pub delay: u64,
}

/// One run of a task (a task in a cycle or on several routes has several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task's name.
    pub name: String,
    /// Its route (Orquesta's split branches).
    pub route: usize,
    /// Its inbound context, as indexes into [`WorkflowState::contexts`].
    pub ctxs: Vec<usize>,
    /// `running`, then its final status (`pending`/`paused` while a run waits).
    pub status: ExecutionStatus,
    /// The items of a with-items task, as rendered when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// At most this many items at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Its executions.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// The current attempt.
    #[serde(default)]
    pub attempt: u32,
    /// Its result once completed (for items: the list of item results).
    #[serde(default)]
    pub result: Value,
    /// Per `next` entry: whether it was taken.
    #[serde(default)]
    pub next: Vec<bool>,
    /// Retry bookkeeping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryState>,
    /// Seconds before its action runs (`delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// Replaced by a later run of the same task on the same route (a cycle or a re-run).
    #[serde(default)]
    pub superseded: bool,
}

/// Everything a workflow execution needs to continue: persisted after every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// `running`, `pausing`, `paused`, `canceling`, then `succeeded`, `failed` or `canceled`.
    pub status: ExecutionStatus,
    /// A failure nothing remediated: no new task starts; `failed` once none runs.
    #[serde(default)]
    pub failing: bool,
    /// Paused by a request (not only because a task waits for a response).
    #[serde(default)]
    pub paused_by_request: bool,
    /// Contexts: `[0]` is input + vars, later ones what transitions published.
    pub contexts: Vec<Map<String, Value>>,
    /// Routes: the split transitions each went through.
    pub routes: Vec<Vec<String>>,
    /// Task runs, in the order they started.
    pub tasks: Vec<TaskState>,
    /// Tasks staged and not started.
    pub staged: Vec<Staged>,
    /// Retries run so far (they reuse their task's entry): with `tasks`, what
    /// `[workflows] max_tasks` counts.
    #[serde(default)]
    pub retries: u64,
    /// Contexts of transitions into engine commands, with the task count when they were taken.
    #[serde(default)]
    pub terminal: Vec<(usize, Vec<usize>)>,
    /// Orquesta's error list: `{type, message, task_id?, route?, task_transition_id?, result?}`.
    #[serde(default)]
    pub errors: Vec<Value>,
    /// The rendered output, once completed.
    #[serde(default)]
    pub output: Option<Value>,
}

/// An action execution to request for a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// Index into [`WorkflowState::tasks`].
    pub task: usize,
    /// Index into that task's runs.
    pub run: usize,
    /// The task's name.
    pub task_name: String,
    /// The task's route.
    pub route: usize,
    /// The action ref.
    pub action: String,
    /// The action's parameters.
    pub input: Map<String, Value>,
    /// The item index, for with-items.
    pub item: Option<usize>,
    /// Milliseconds to wait before running (task delay or retry delay).
    pub delay_ms: Option<u64>,
}

/// Drives one workflow execution's [`WorkflowState`].
pub struct Conductor<'a> {
    spec: &'a WorkflowSpec,
    state: WorkflowState,
    keys: Option<KeyLookup>,
    dispatches: Vec<Dispatch>,
    budget: WorkflowSettings,
    /// Tasks started by this conductor (one batch of events), against
    /// `max_transitions_per_event`.
    transitions: usize,
}

fn waiting(s: ExecutionStatus) -> bool {
    matches!(s, ExecutionStatus::Pending | ExecutionStatus::Paused)
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}

impl<'a> Conductor<'a> {
    /// Starts a workflow: renders `input` (given values, else defaults) and `vars`, stages the
    /// start tasks and runs what can run. Rendering errors fail the workflow at once.
    pub fn start(
        spec: &'a WorkflowSpec,
        given: &Map<String, Value>,
        keys: Option<KeyLookup>,
        budget: &WorkflowSettings,
    ) -> Self {
        let mut c = Conductor {
            budget: budget.clone(),
            transitions: 0,
            spec,
            state: WorkflowState {
                status: ExecutionStatus::Running,
                failing: false,
                paused_by_request: false,
                contexts: Vec::new(),
                routes: vec![Vec::new()],
                tasks: Vec::new(),
                staged: Vec::new(),
                retries: 0,
                terminal: Vec::new(),
                errors: Vec::new(),
                output: None,
            },
            keys,
            dispatches: Vec::new(),
        };
        let mut ctx = Map::new();
        let mut failed = false;
        for input in &spec.input {
            let value = match (given.get(&input.name), &input.default) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(default)) => expr::evaluate(default, &c.scope(ctx.clone(), None, None)),
                (None, None) => Ok(Value::Null),
            };
            match value {
                Ok(v) => {
                    ctx.insert(input.name.clone(), v);
                }
                Err(e) => {
                    c.log_error(e.0, None, None, None);
                    failed = true;
                }
            }
        }
        for (name, value) in &spec.vars {
            match expr::evaluate(value, &c.scope(ctx.clone(), None, None)) {
                Ok(v) => {
                    ctx.insert(name.clone(), v);
                }
                Err(e) => {
                    c.log_error(e.0, None, None, None);
                    failed = true;
                }
            }
        }
        c.state.contexts.push(ctx);
        if failed {
            c.finish(ExecutionStatus::Failed);
            return c;
        }
        for &root in &spec.graph.roots {
            c.state.staged.push(Staged {
                name: spec.tasks[root].name.clone(),
                route: 0,
                ctxs: vec![0],
                prev: Vec::new(),
                ready: true,
                run_on_fail: false,
            });
        }
        c.conduct();
        c
    }

    /// Continues from a persisted state.
    pub fn resume_from(
        spec: &'a WorkflowSpec,
        state: WorkflowState,
        keys: Option<KeyLookup>,
        budget: &WorkflowSettings,
    ) -> Self {
        Conductor {
            spec,
            state,
            keys,
            dispatches: Vec::new(),
            budget: budget.clone(),
            transitions: 0,
        }
    }

    /// Fails the workflow when its state, as stored, is over `max_state_bytes` (the caller
    /// measured `bytes`); returns whether it did.
    pub fn check_state_size(&mut self, bytes: usize) -> bool {
        if bytes as u64 <= self.budget.max_state_bytes || self.state.status.is_completed() {
            return false;
        }
        self.over_budget(format!(
            "workflow state is {bytes} bytes, over the limit of {} bytes \
             ([workflows] max_state_bytes)",
            self.budget.max_state_bytes
        ));
        self.check_completion();
        true
    }

    /// A budget ran out: the error is logged once, nothing new starts (as a task failure
    /// without a handler: running tasks finish, then the workflow fails).
    fn over_budget(&mut self, message: String) {
        self.log_error(message, None, None, None);
        self.state.failing = true;
        self.state.staged.clear();
    }

    /// Prepares a completed workflow to run again from `tasks` (by name; the failed terminal
    /// tasks when empty), as StackStorm's `st2 execution re-run --tasks`: tasks that completed
    /// are kept, the named ones run again with the context they had.
    ///
    /// # Errors
    /// [`ConductorError`] when the workflow has not completed or a task never ran.
    pub fn rerun(
        spec: &'a WorkflowSpec,
        previous: &WorkflowState,
        tasks: &[String],
        keys: Option<KeyLookup>,
        budget: &WorkflowSettings,
    ) -> Result<Self, ConductorError> {
        if !previous.status.is_completed() {
            return Err(ConductorError(format!(
                "the workflow is {}; only a completed workflow can be re-run",
                previous.status
            )));
        }
        let mut state = previous.clone();
        let mut picked: Vec<usize> = Vec::new();
        if tasks.is_empty() {
            for (i, t) in state.tasks.iter().enumerate() {
                if !t.superseded && is_abended(t.status) {
                    picked.push(i);
                }
            }
        } else {
            for name in tasks {
                let found = state
                    .tasks
                    .iter()
                    .rposition(|t| &t.name == name)
                    .ok_or_else(|| {
                        ConductorError(format!("task {name:?} did not run in this workflow"))
                    })?;
                if !picked.contains(&found) {
                    picked.push(found);
                }
            }
        }
        if picked.is_empty() {
            return Err(ConductorError(
                "no failed task to re-run; name the tasks".into(),
            ));
        }
        picked.sort_by(|a, b| {
            (&state.tasks[*a].name, state.tasks[*a].route)
                .cmp(&(&state.tasks[*b].name, state.tasks[*b].route))
        });
        for i in picked {
            let t = &state.tasks[i];
            let (name, route, ctxs) = (t.name.clone(), t.route, t.ctxs.clone());
            state
                .errors
                .retain(|e| e.get("task_id").and_then(Value::as_str) != Some(name.as_str()));
            state
                .staged
                .retain(|s| !(s.name == name && s.route == route));
            state.staged.push(Staged {
                name,
                route,
                ctxs,
                prev: Vec::new(),
                ready: true,
                run_on_fail: false,
            });
        }
        // Output errors are rendered again at the end.
        state.errors.retain(|e| e.get("task_id").is_some());
        state.status = ExecutionStatus::Running;
        state.failing = false;
        state.paused_by_request = false;
        state.output = None;
        let mut c = Conductor::resume_from(spec, state, keys, budget);
        c.conduct();
        Ok(c)
    }

    /// The state, to persist.
    pub fn state(&self) -> &WorkflowState {
        &self.state
    }

    /// The state, consuming the conductor.
    pub fn into_state(self) -> WorkflowState {
        self.state
    }

    /// The workflow's status.
    pub fn status(&self) -> ExecutionStatus {
        self.state.status
    }

    /// Takes the executions to request since the last call.
    pub fn take_dispatches(&mut self) -> Vec<Dispatch> {
        std::mem::take(&mut self.dispatches)
    }

    /// Records the execution created for a dispatch.
    pub fn bind(&mut self, task: usize, run: usize, execution: String) {
        if let Some(r) = self
            .state
            .tasks
            .get_mut(task)
            .and_then(|t| t.runs.get_mut(run))
        {
            r.execution = Some(execution);
        }
    }

    /// The (task, run) an execution belongs to.
    pub fn find(&self, execution: &str) -> Option<(usize, usize)> {
        self.state.tasks.iter().enumerate().find_map(|(ti, t)| {
            t.runs
                .iter()
                .position(|r| r.execution.as_deref() == Some(execution))
                .map(|ri| (ti, ri))
        })
    }

    /// Every run's execution id → (task, run), as [`Conductor::find`] gives them one at a time:
    /// for a batch of reports on a wide workflow (runs are only ever appended, so positions
    /// stay valid while the batch is applied).
    pub fn run_index(&self) -> std::collections::HashMap<String, (usize, usize)> {
        self.state
            .tasks
            .iter()
            .enumerate()
            .flat_map(|(ti, t)| {
                t.runs
                    .iter()
                    .enumerate()
                    .filter_map(move |(ri, r)| r.execution.clone().map(|e| (e, (ti, ri))))
            })
            .fold(std::collections::HashMap::new(), |mut index, (e, at)| {
                index.entry(e).or_insert(at); // the first run, as `find` gives
                index
            })
    }

    /// Executions requested and not completed (to cancel, or to look up after a restart).
    pub fn active_executions(&self) -> Vec<String> {
        self.state
            .tasks
            .iter()
            .flat_map(|t| &t.runs)
            .filter(|r| !r.status.is_completed())
            .filter_map(|r| r.execution.clone())
            .collect()
    }

    /// The workflow execution's result, as StackStorm's orquesta runner gives it:
    /// `{"output": ...}`, plus `"errors": [...]` unless it succeeded (errors of remediated
    /// tasks stay in the state).
    pub fn result(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            "output".into(),
            self.state.output.clone().unwrap_or(Value::Null),
        );
        if self.state.status != ExecutionStatus::Succeeded && !self.state.errors.is_empty() {
            out.insert("errors".into(), Value::Array(self.state.errors.clone()));
        }
        Value::Object(out)
    }

    /// Reports a change of one run's execution: `running`, `pending`/`paused` (waiting), or a
    /// completed status with its result. Repeated reports of a completed run are ignored.
    pub fn update(&mut self, task: usize, run: usize, status: ExecutionStatus, result: Value) {
        let Some(t) = self.state.tasks.get_mut(task) else {
            return;
        };
        let Some(r) = t.runs.get_mut(run) else { return };
        if r.status.is_completed() || r.attempt != t.attempt {
            return;
        }
        let was_waiting = waiting(r.status);
        r.status = status;
        if !status.is_completed() {
            if waiting(status) {
                t.status = status;
            } else if waiting(t.status) {
                t.status = ExecutionStatus::Running;
            }
            if was_waiting && !waiting(status) {
                self.wake();
            }
            self.check_completion();
            return;
        }
        r.result = result.clone();
        if waiting(t.status) {
            t.status = ExecutionStatus::Running;
        }
        let items = t.items.is_some();
        if was_waiting {
            self.wake();
        }
        if items {
            self.item_completed(task);
        } else {
            self.complete_task(task, status, result);
        }
        self.conduct();
    }

    /// A waiting task went on: a workflow paused only for it runs again.
    fn wake(&mut self) {
        let still_waiting = self
            .state
            .tasks
            .iter()
            .flat_map(|t| &t.runs)
            .any(|r| waiting(r.status));
        if !still_waiting
            && !self.state.paused_by_request
            && matches!(
                self.state.status,
                ExecutionStatus::Paused | ExecutionStatus::Pausing
            )
        {
            self.state.status = ExecutionStatus::Running;
            self.resume_items();
        }
    }

    /// Pauses: no new task starts; `paused` once none runs.
    ///
    /// # Errors
    /// [`ConductorError`] unless running (pausing or paused again is not an error).
    pub fn pause(&mut self) -> Result<(), ConductorError> {
        match self.state.status {
            ExecutionStatus::Running => {
                self.state.paused_by_request = true;
                self.state.status = ExecutionStatus::Pausing;
                self.check_completion();
                Ok(())
            }
            ExecutionStatus::Pausing | ExecutionStatus::Paused => {
                self.state.paused_by_request = true;
                Ok(())
            }
            other => Err(ConductorError(format!(
                "the workflow is {other}; only a running workflow can be paused"
            ))),
        }
    }

    /// Resumes a paused workflow: staged tasks and remaining items start.
    ///
    /// # Errors
    /// [`ConductorError`] unless paused or pausing.
    pub fn resume(&mut self) -> Result<(), ConductorError> {
        match self.state.status {
            ExecutionStatus::Paused | ExecutionStatus::Pausing => {
                self.state.paused_by_request = false;
                self.state.status = ExecutionStatus::Running;
                self.resume_items();
                self.conduct();
                Ok(())
            }
            other => Err(ConductorError(format!(
                "the workflow is {other}; only a paused workflow can be resumed"
            ))),
        }
    }

    /// Cancels: `canceling` until the returned executions (to be canceled by the caller) have
    /// ended, then `canceled`.
    ///
    /// # Errors
    /// [`ConductorError`] when the workflow already completed.
    pub fn cancel(&mut self) -> Result<Vec<String>, ConductorError> {
        let status = self.state.status;
        if status.is_completed() {
            return Err(ConductorError(format!(
                "the workflow is already {status}; it cannot be canceled"
            )));
        }
        self.state.status = ExecutionStatus::Canceling;
        let active = self.active_executions();
        self.check_completion();
        Ok(active)
    }

    fn statuses(&self) -> HashMap<String, ExecutionStatus> {
        self.state
            .tasks
            .iter()
            .map(|t| (t.name.clone(), t.status))
            .collect()
    }

    fn scope(
        &self,
        ctx: Map<String, Value>,
        current: Option<CurrentTask>,
        item: Option<Value>,
    ) -> Arc<Scope> {
        Arc::new(Scope {
            ctx,
            current,
            item,
            statuses: self.statuses(),
            keys: self.keys.clone(),
        })
    }

    fn context(&self, ctxs: &[usize]) -> Map<String, Value> {
        let mut out = Map::new();
        for &i in ctxs {
            if let Some(c) = self.state.contexts.get(i) {
                merge(&mut out, c);
            }
        }
        out
    }

    /// What a branch added to the initial context.
    fn branch_context(&self, ctxs: &[usize]) -> Map<String, Value> {
        let added: Vec<usize> = ctxs.iter().copied().filter(|c| *c != 0).collect();
        self.context(&added)
    }

    fn log_error(
        &mut self,
        message: String,
        task: Option<(&str, usize)>,
        transition: Option<String>,
        result: Option<Value>,
    ) {
        let mut e = Map::new();
        e.insert("type".into(), json!("error"));
        e.insert("message".into(), Value::String(message));
        if let Some((name, route)) = task {
            e.insert("task_id".into(), json!(name));
            e.insert("route".into(), json!(route));
        }
        if let Some(t) = transition {
            e.insert("task_transition_id".into(), json!(t));
        }
        if let Some(r) = result {
            e.insert("result".into(), r);
        }
        let e = Value::Object(e);
        if !self.state.errors.contains(&e) {
            self.state.errors.push(e);
        }
    }

    /// Starts every ready staged task that may start, until none is left.
    fn conduct(&mut self) {
        loop {
            if self.state.status != ExecutionStatus::Running {
                break;
            }
            let failing = self.state.failing;
            let mut ready: Vec<Staged> = Vec::new();
            self.state.staged.retain(|s| {
                let go = s.ready && (!failing || s.run_on_fail);
                if go {
                    ready.push(s.clone());
                }
                !go
            });
            if ready.is_empty() {
                break;
            }
            ready.sort_by(|a, b| (&a.name, a.route).cmp(&(&b.name, b.route)));
            for s in ready {
                self.start_task(s);
            }
        }
        self.check_completion();
    }

    fn int_value(&self, v: &Value, scope: &Arc<Scope>, what: &str) -> Result<u64, String> {
        let value = expr::evaluate(v, scope).map_err(|e| e.0)?;
        value.as_u64().ok_or_else(|| {
            format!("TypeError: The value of {what} is not a non-negative integer: {value}")
        })
    }

    /// Charges one task start (a new task or a retry) to `max_tasks` and
    /// `max_transitions_per_event`; false, with the workflow failing, when one is spent.
    fn charge_start(&mut self, task: &str) -> bool {
        let started = self.state.tasks.len() as u64 + self.state.retries;
        if started >= self.budget.max_tasks as u64 {
            self.over_budget(format!(
                "workflow started {started} tasks, the limit ([workflows] max_tasks); task \
                 {task:?} not started"
            ));
            return false;
        }
        self.transitions += 1;
        if self.transitions > self.budget.max_transitions_per_event {
            self.over_budget(format!(
                "workflow started more than {} tasks in one step ([workflows] \
                 max_transitions_per_event; a cycle of tasks without actions?); task {task:?} \
                 not started",
                self.budget.max_transitions_per_event
            ));
            return false;
        }
        true
    }

    fn start_task(&mut self, s: Staged) {
        if !self.charge_start(&s.name) {
            return;
        }
        let spec = self.spec;
        let Some(ti) = spec.task_index(&s.name) else {
            self.log_error(
                format!("InvalidTask: task {:?} is not defined", s.name),
                None,
                None,
                None,
            );
            self.state.failing = true;
            return;
        };
        let task_spec = &spec.tasks[ti];
        for old in self.state.tasks.iter_mut() {
            if old.name == s.name && old.route == s.route {
                old.superseded = true;
            }
        }
        let idx = self.state.tasks.len();
        self.state.tasks.push(TaskState {
            name: s.name.clone(),
            route: s.route,
            ctxs: s.ctxs.clone(),
            status: ExecutionStatus::Running,
            items: None,
            concurrency: None,
            runs: Vec::new(),
            attempt: 0,
            result: Value::Null,
            next: Vec::new(),
            retry: None,
            delay: None,
            superseded: false,
        });
        let scope = self.scope(self.context(&s.ctxs), None, None);
        let setup = (|| -> Result<(), String> {
            if let Some(d) = &task_spec.delay {
                self.state.tasks[idx].delay = Some(self.int_value(d, &scope, "task delay")?);
            }
            if let Some(r) = &task_spec.retry {
                let count = self.int_value(&r.count, &scope, "retry count")?;
                let delay = match &r.delay {
                    Some(d) => self.int_value(d, &scope, "retry delay")?,
                    None => 0,
                };
                self.state.tasks[idx].retry = Some(RetryState {
                    count,
                    tally: 0,
                    delay,
                });
            }
            if let Some(with) = &task_spec.with {
                let items = expr::evaluate(&with.items, &scope).map_err(|e| e.0)?;
                let Value::Array(items) = items else {
                    return Err(format!(
                        "TypeError: The value of \"with items\" is not a list: {items}"
                    ));
                };
                if items.len() > self.budget.max_items {
                    return Err(format!(
                        "with items: {} items, over the limit of {} ([workflows] max_items)",
                        items.len(),
                        self.budget.max_items
                    ));
                }
                let items = items
                    .into_iter()
                    .map(|item| match with.vars.len() {
                        0 => Ok(item),
                        1 => Ok(json!({ with.vars[0].clone(): item })),
                        n => match item {
                            Value::Array(vals) if vals.len() >= n => Ok(Value::Object(
                                with.vars.iter().cloned().zip(vals).collect(),
                            )),
                            other => Err(format!(
                                "TypeError: with items names {} variables but the item {other} is not a list of {n}",
                                n
                            )),
                        },
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let concurrency = match &with.concurrency {
                    Some(c) => Some(self.int_value(c, &scope, "concurrency")?.max(1) as usize),
                    None => None,
                };
                let t = &mut self.state.tasks[idx];
                t.items = Some(items);
                t.concurrency = concurrency;
            }
            Ok(())
        })();
        if let Err(message) = setup {
            self.abort_task(idx, message);
            return;
        }
        self.run_task(idx);
    }

    /// Dispatches a (new or retried) task's action, or completes an action-less one.
    fn run_task(&mut self, idx: usize) {
        let t = &self.state.tasks[idx];
        if let Some(items) = &t.items {
            if items.is_empty() {
                self.complete_task(idx, ExecutionStatus::Succeeded, json!([]));
            } else {
                self.dispatch_items(idx);
            }
            return;
        }
        let task_spec =
            &self.spec.tasks[self.spec.task_index(&t.name).expect("staged tasks exist")];
        if task_spec.action.is_none() {
            self.complete_task(idx, ExecutionStatus::Succeeded, Value::Null);
            return;
        }
        self.dispatch_run(idx, None);
    }

    /// A task that cannot start (an expression error): the workflow fails, as Orquesta's.
    fn abort_task(&mut self, idx: usize, message: String) {
        let t = &mut self.state.tasks[idx];
        t.status = ExecutionStatus::Failed;
        t.result = json!({"error": message});
        let (name, route) = (t.name.clone(), t.route);
        self.log_error(message, Some((&name, route)), None, None);
        self.state.failing = true;
    }

    fn dispatch_items(&mut self, idx: usize) {
        if self.state.status != ExecutionStatus::Running || self.state.failing {
            return;
        }
        let t = &self.state.tasks[idx];
        let count = t.items.as_ref().map_or(0, Vec::len);
        let attempt = t.attempt;
        let ended_badly = t.runs.iter().any(|r| {
            r.attempt == attempt && (is_abended(r.status) || r.status == ExecutionStatus::Canceled)
        });
        if ended_badly {
            return;
        }
        let active = t
            .runs
            .iter()
            .filter(|r| r.attempt == attempt && !r.status.is_completed())
            .count();
        let mut started = vec![false; count];
        for i in t
            .runs
            .iter()
            .filter(|r| r.attempt == attempt)
            .filter_map(|r| r.item)
        {
            if let Some(s) = started.get_mut(i) {
                *s = true;
            }
        }
        let free = t.concurrency.unwrap_or(usize::MAX).saturating_sub(active);
        let next: Vec<usize> = (0..count).filter(|i| !started[*i]).take(free).collect();
        for i in next {
            if !self.dispatch_run(idx, Some(i)) {
                return;
            }
        }
    }

    /// Renders the action and input of a run and queues its dispatch; false when rendering
    /// failed (the task then failed).
    fn dispatch_run(&mut self, idx: usize, item: Option<usize>) -> bool {
        let t = &self.state.tasks[idx];
        let task_spec =
            &self.spec.tasks[self.spec.task_index(&t.name).expect("running tasks exist")];
        let item_value =
            item.and_then(|i| t.items.as_ref().and_then(|items| items.get(i)).cloned());
        let scope = self.scope(self.context(&t.ctxs), None, item_value);
        let rendered = (|| -> Result<(String, Map<String, Value>), String> {
            let action = task_spec.action.as_deref().unwrap_or_default();
            let action = match expr::evaluate_str(action, &scope).map_err(|e| e.0)? {
                Value::String(s) => s,
                other => {
                    return Err(format!(
                        "TypeError: the action ref is not a string: {other}"
                    ));
                }
            };
            let mut input = Map::new();
            for (k, v) in &task_spec.inline_input {
                input.insert(k.clone(), expr::evaluate(v, &scope).map_err(|e| e.0)?);
            }
            for (k, v) in &task_spec.input {
                input.insert(k.clone(), expr::evaluate(v, &scope).map_err(|e| e.0)?);
            }
            Ok((action, input))
        })();
        let (action, input) = match rendered {
            Ok(r) => r,
            Err(message) => {
                if self.state.tasks[idx]
                    .runs
                    .iter()
                    .any(|r| !r.status.is_completed())
                {
                    // Items still run: the task fails once they end.
                    let t = &mut self.state.tasks[idx];
                    let attempt = t.attempt;
                    t.runs.push(Run {
                        item,
                        attempt,
                        execution: None,
                        status: ExecutionStatus::Failed,
                        result: json!({"error": message.clone()}),
                    });
                    let (name, route) = (t.name.clone(), t.route);
                    self.log_error(message, Some((&name, route)), None, None);
                    self.state.failing = true;
                } else {
                    self.abort_task(idx, message);
                }
                return false;
            }
        };
        let t = &mut self.state.tasks[idx];
        let delay_secs = match &t.retry {
            Some(r) if t.attempt > 0 => Some(r.delay),
            _ => t.delay,
        };
        let run = t.runs.len();
        t.runs.push(Run {
            item,
            attempt: t.attempt,
            execution: None,
            status: ExecutionStatus::Requested,
            result: Value::Null,
        });
        self.dispatches.push(Dispatch {
            task: idx,
            run,
            task_name: t.name.clone(),
            route: t.route,
            action,
            input,
            item,
            delay_ms: delay_secs.filter(|s| *s > 0).map(|s| s * 1000),
        });
        true
    }

    fn item_completed(&mut self, idx: usize) {
        self.dispatch_items(idx);
        let t = &self.state.tasks[idx];
        let attempt = t.attempt;
        // Newest runs first: the ones still running are at the end, so a wide task with items
        // in flight answers at once.
        if t.runs
            .iter()
            .rev()
            .any(|r| r.attempt == attempt && !r.status.is_completed())
        {
            return;
        }
        let current: Vec<&Run> = t.runs.iter().filter(|r| r.attempt == attempt).collect();
        let count = t.items.as_ref().map_or(0, Vec::len);
        let mut results = vec![Value::Null; count];
        for r in &current {
            if let Some(i) = r.item.filter(|i| *i < count) {
                results[i] = r.result.clone();
            }
        }
        let status = if current
            .iter()
            .any(|r| r.status == ExecutionStatus::Canceled)
        {
            ExecutionStatus::Canceled
        } else if current.iter().any(|r| is_abended(r.status)) {
            ExecutionStatus::Failed
        } else if current.len() >= count {
            ExecutionStatus::Succeeded
        } else if self.state.failing || self.state.status == ExecutionStatus::Canceling {
            ExecutionStatus::Canceled
        } else {
            // Paused with items left: they start on resume.
            self.state.tasks[idx].status = ExecutionStatus::Paused;
            return;
        };
        self.complete_task(idx, status, Value::Array(results));
    }

    /// Starts the remaining items of tasks that were paused with items left.
    fn resume_items(&mut self) {
        for idx in 0..self.state.tasks.len() {
            let t = &self.state.tasks[idx];
            if t.items.is_some() && t.status == ExecutionStatus::Paused {
                self.state.tasks[idx].status = ExecutionStatus::Running;
                self.dispatch_items(idx);
            }
        }
    }

    fn complete_task(&mut self, idx: usize, status: ExecutionStatus, result: Value) {
        let spec = self.spec;
        let (name, route) = {
            let t = &mut self.state.tasks[idx];
            t.status = status;
            t.result = result.clone();
            (t.name.clone(), t.route)
        };
        let task_spec = &spec.tasks[spec.task_index(&name).expect("running tasks exist")];
        let ctx = self.context(&self.state.tasks[idx].ctxs);
        let current = CurrentTask {
            name: name.clone(),
            status,
            result: result.clone(),
        };
        let scope = self.scope(ctx.clone(), Some(current.clone()), None);

        // Retry before anything else: a retried task has not completed yet.
        let active = matches!(
            self.state.status,
            ExecutionStatus::Running | ExecutionStatus::Pausing
        ) && !self.state.failing;
        if active
            && let Some(retry) = self.state.tasks[idx].retry.clone()
            && retry.tally < retry.count
        {
            let when = task_spec.retry.as_ref().and_then(|r| r.when.clone());
            let go = match &when {
                None => is_abended(status),
                Some(w) => match expr::evaluate_str(w, &scope) {
                    Ok(v) => expr::truthy(&v),
                    Err(e) => {
                        self.log_error(e.0, Some((&name, route)), None, None);
                        self.state.failing = true;
                        false
                    }
                },
            };
            // A retry is a task start: it is charged to the budgets. A task without an action
            // cannot fail, so it is not retried (that would only loop).
            let go = go && task_spec.action.is_some() && self.charge_start(&name);
            if go {
                self.state.retries += 1;
                let t = &mut self.state.tasks[idx];
                t.retry.as_mut().expect("checked").tally += 1;
                t.attempt += 1;
                t.status = ExecutionStatus::Running;
                t.result = Value::Null;
                self.run_task(idx);
                return;
            }
        }

        if is_abended(status) {
            self.log_error(
                "Execution failed. See result for details.".into(),
                Some((&name, route)),
                None,
                Some(result.clone()),
            );
        }
        if status == ExecutionStatus::Canceled
            && matches!(
                self.state.status,
                ExecutionStatus::Running | ExecutionStatus::Pausing | ExecutionStatus::Paused
            )
        {
            // A task canceled from outside cancels its workflow, as in Orquesta.
            self.state.status = ExecutionStatus::Canceling;
        }

        let mut remediated = false;
        let mut manual_fail = false;
        let mut ready_targets: Vec<(String, usize)> = Vec::new();
        self.state.tasks[idx].next = vec![false; task_spec.next.len()];
        for (i, tr) in task_spec.next.iter().enumerate() {
            let transition_id = |target: &str| format!("{target}__t{i}");
            let first = tr.targets.first().map(String::as_str).unwrap_or("continue");
            let satisfied = match &tr.when {
                None => true,
                Some(w) => match expr::evaluate_str(w, &scope) {
                    Ok(v) => expr::truthy(&v),
                    Err(e) => {
                        self.log_error(e.0, Some((&name, route)), Some(transition_id(first)), None);
                        self.state.failing = true;
                        continue;
                    }
                },
            };
            if !satisfied {
                continue;
            }
            // Set before staging: a join counts this transition at once.
            self.state.tasks[idx].next[i] = true;
            let mut rolling = ctx.clone();
            let mut published = Map::new();
            let mut publish_failed = false;
            for (k, v) in &tr.publish {
                let s = self.scope(rolling.clone(), Some(current.clone()), None);
                match expr::evaluate(v, &s) {
                    Ok(value) => {
                        rolling.insert(k.clone(), value.clone());
                        published.insert(k.clone(), value);
                    }
                    Err(e) => {
                        self.log_error(e.0, Some((&name, route)), Some(transition_id(first)), None);
                        self.state.failing = true;
                        publish_failed = true;
                        break;
                    }
                }
            }
            if publish_failed {
                continue;
            }
            let mut out = self.state.tasks[idx].ctxs.clone();
            if !published.is_empty() {
                self.state.contexts.push(published);
                out.push(self.state.contexts.len() - 1);
            }
            for target in &tr.targets {
                match target.as_str() {
                    "retry" => {}
                    "noop" | "continue" | "fail" => {
                        remediated |= target == "noop" || target == "fail";
                        manual_fail |= target == "fail";
                        self.state
                            .terminal
                            .push((self.state.tasks.len(), out.clone()));
                    }
                    next => {
                        remediated = true;
                        let Some(next_idx) = spec.task_index(next) else {
                            self.log_error(
                                format!("InvalidTask: task {next:?} is not defined"),
                                Some((&name, route)),
                                Some(transition_id(next)),
                                None,
                            );
                            self.state.failing = true;
                            continue;
                        };
                        let next_route = self.route_for(next_idx, &name, i, route);
                        if self.stage(next_idx, next_route, &out, format!("{name}__t{i}"), route) {
                            ready_targets.push((next.to_string(), next_route));
                        }
                    }
                }
            }
        }
        if is_abended(status) && !remediated {
            self.state.failing = true;
        }
        if manual_fail {
            self.log_error(
                format!(
                    "Execution failed by the \"fail\" command in a transition of task \"{name}\"."
                ),
                Some((&name, route)),
                None,
                None,
            );
            self.state.failing = true;
            for s in self.state.staged.iter_mut() {
                if ready_targets
                    .iter()
                    .any(|(n, r)| *n == s.name && *r == s.route)
                {
                    s.run_on_fail = true;
                }
            }
        }
    }

    fn route_for(&mut self, next: usize, from: &str, transition: usize, prev: usize) -> usize {
        let g = &self.spec.graph;
        if !g.is_split(self.spec, next) || g.in_cycle[next] {
            return prev;
        }
        let id = format!("{from}__t{transition}");
        let mut route = self.state.routes[prev].clone();
        if route.contains(&id) {
            return prev;
        }
        route.push(id);
        if let Some(existing) = self.state.routes.iter().position(|r| *r == route) {
            return existing;
        }
        self.state.routes.push(route);
        self.state.routes.len() - 1
    }

    /// Stages `task` on `route` with the context `ctxs`; returns whether it is ready.
    fn stage(
        &mut self,
        task: usize,
        route: usize,
        ctxs: &[usize],
        backref: String,
        from_route: usize,
    ) -> bool {
        let name = self.spec.tasks[task].name.clone();
        if self.spec.tasks[task].join.is_some()
            && !self.spec.graph.in_cycle[task]
            && self
                .state
                .tasks
                .iter()
                .any(|t| t.name == name && t.route == route && !t.superseded)
        {
            // A join runs once per route: later arrivals find it started.
            return false;
        }
        let pos = match self
            .state
            .staged
            .iter()
            .position(|s| s.name == name && s.route == route)
        {
            Some(p) => {
                let s = &mut self.state.staged[p];
                s.ctxs.extend(ctxs.iter().copied().filter(|c| *c != 0));
                s.prev.push(backref);
                p
            }
            None => {
                self.state.staged.push(Staged {
                    name: name.clone(),
                    route,
                    ctxs: ctxs.to_vec(),
                    prev: vec![backref],
                    ready: false,
                    run_on_fail: false,
                });
                self.state.staged.len() - 1
            }
        };
        let ready = match self.spec.tasks[task].join {
            None => true,
            Some(join) => self.join_satisfied(task, from_route, join),
        };
        self.state.staged[pos].ready = ready;
        ready
    }

    fn join_satisfied(&self, task: usize, route: usize, join: Join) -> bool {
        let g = &self.spec.graph;
        let inbound = g.inbound_tasks(task);
        let required = match join {
            Join::All => inbound.len(),
            Join::Count(n) => n,
        };
        let satisfied = inbound
            .iter()
            .filter(|&&from| {
                let from_name = &self.spec.tasks[from].name;
                self.state
                    .tasks
                    .iter()
                    .rev()
                    .find(|t| &t.name == from_name && t.route == route && t.status.is_completed())
                    .is_some_and(|t| {
                        g.inbound[task]
                            .iter()
                            .filter(|(f, _)| *f == from)
                            .any(|(_, i)| t.next.get(*i).copied().unwrap_or(false))
                    })
            })
            .count();
        satisfied >= required
    }

    fn check_completion(&mut self) {
        // Newest runs first (the ones still active are at the end, when reports come oldest
        // first); `waits` only where the status needs it (a running workflow still scans for
        // waiting runs on every report).
        let runs = || {
            self.state
                .tasks
                .iter()
                .rev()
                .flat_map(|t| t.runs.iter().rev())
        };
        let active = runs().any(|r| !r.status.is_completed() && !waiting(r.status));
        let waits = || runs().any(|r| waiting(r.status));
        match self.state.status {
            ExecutionStatus::Running => {
                if waits() {
                    self.state.status = if active {
                        ExecutionStatus::Pausing
                    } else {
                        ExecutionStatus::Paused
                    };
                    return;
                }
                if active {
                    return;
                }
                let startable = self
                    .state
                    .staged
                    .iter()
                    .any(|s| s.ready && (!self.state.failing || s.run_on_fail));
                if startable {
                    return;
                }
                let paused_items = self
                    .state
                    .tasks
                    .iter()
                    .any(|t| t.status == ExecutionStatus::Paused);
                if paused_items && !self.state.failing {
                    return;
                }
                if self.state.failing {
                    self.finish(ExecutionStatus::Failed);
                    return;
                }
                let unreachable: Vec<(String, usize)> = self
                    .state
                    .staged
                    .iter()
                    .filter(|s| !s.ready)
                    .map(|s| (s.name.clone(), s.route))
                    .collect();
                if unreachable.is_empty() {
                    self.finish(ExecutionStatus::Succeeded);
                } else {
                    for (name, route) in unreachable {
                        self.log_error(
                            format!(
                                "UnreachableJoinError: The join task \"{name}\" is unreachable: \
                                 not enough of its inbound tasks transitioned to it."
                            ),
                            Some((&name, route)),
                            None,
                            None,
                        );
                    }
                    self.finish(ExecutionStatus::Failed);
                }
            }
            ExecutionStatus::Pausing if !active => {
                self.state.status = ExecutionStatus::Paused;
            }
            ExecutionStatus::Canceling if !active && !waits() => {
                self.finish(ExecutionStatus::Canceled);
            }
            _ => {}
        }
    }

    /// The context the output is rendered from: the initial one, then what each terminal task
    /// (and each transition into an engine command) brought, in order.
    fn terminal_context(&self) -> Map<String, Value> {
        let mut ctx = self.state.contexts.first().cloned().unwrap_or_default();
        let mut terminal = self.state.terminal.iter().peekable();
        for (i, t) in self.state.tasks.iter().enumerate() {
            while let Some((_, ctxs)) = terminal.next_if(|(at, _)| *at <= i) {
                merge(&mut ctx, &self.branch_context(ctxs));
            }
            if t.superseded || !t.status.is_completed() {
                continue;
            }
            let spec = &self.spec.tasks[self.spec.task_index(&t.name).expect("tasks exist")];
            let continues = spec.next.iter().zip(&t.next).any(|(tr, taken)| {
                *taken && tr.targets.iter().any(|x| self.spec.task_index(x).is_some())
            });
            if !continues {
                merge(&mut ctx, &self.branch_context(&t.ctxs));
            }
        }
        for (_, ctxs) in terminal {
            merge(&mut ctx, &self.branch_context(ctxs));
        }
        ctx
    }

    fn finish(&mut self, status: ExecutionStatus) {
        self.state.status = status;
        for t in self.state.tasks.iter_mut() {
            if !t.status.is_completed() && t.runs.iter().all(|r| r.status.is_completed()) {
                t.status = ExecutionStatus::Canceled;
            }
        }
        if self.spec.output.is_empty() {
            return;
        }
        let mut ctx = self.terminal_context();
        let mut output = Map::new();
        for (name, value) in &self.spec.output {
            let scope = self.scope(ctx.clone(), None, None);
            match expr::evaluate(value, &scope) {
                Ok(v) => {
                    ctx.insert(name.clone(), v.clone());
                    output.insert(name.clone(), v);
                }
                Err(e) => {
                    self.log_error(e.0, None, None, None);
                    if self.state.status == ExecutionStatus::Succeeded {
                        self.state.status = ExecutionStatus::Failed;
                    }
                }
            }
        }
        self.state.output = Some(Value::Object(output));
    }
}

#[cfg(test)]
mod tests;
