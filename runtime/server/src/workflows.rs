//! The `orquesta` and `action-chain` runners: conduct workflow and ActionChain executions
//! durably (an ActionChain is conducted exactly as a workflow is, by its own pure conductor,
//! [`squall_core::chain::ChainConductor`]).
//!
//! A workflow execution's [`WorkflowState`] lives in the store beside it. Every change — the
//! start, a task execution's progress, pause, resume, cancel — is applied to the pure
//! [`Conductor`], and the new state, the workflow execution's record and the task executions
//! the conductor asked for are committed in **one** transaction before anything is queued. So
//! after a crash at any point the store holds either the state before an event (the event is
//! seen again: task executions keep their completed status, and recovery feeds them back) or
//! the state after it with its task executions durable as `requested` (recovery queues them).
//! No completed task runs again and none is lost.
//!
//! Events of one workflow are applied by one worker at a time, which takes every event waiting
//! for that workflow and commits them together (so a thousand items do not cost a thousand
//! serial commits). Task executions are children of their workflow execution: `parent`,
//! `children` and `context.orquesta` / `context.parent` as StackStorm records them.

use crate::{Runner, Scheduler};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::chain::{ChainConductor, ChainSpec, ChainState};
use squall_core::template::Context;
use squall_core::workflow::Conductor;
use squall_core::workflow::{ConductorError, Dispatch, WorkflowSpec, WorkflowState};
use squall_core::{Execution, ExecutionId, ExecutionStatus, Ref, RunnerType};
use squall_store::{Batch, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// Why a workflow request (pause, resume, cancel, re-run) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such execution.
    #[error("execution {0} not found")]
    NotFound(ExecutionId),
    /// The execution does not run the runner the request needs.
    #[error("execution {id} is a {runner} execution; {what}")]
    WrongRunner {
        /// The execution.
        id: ExecutionId,
        /// Its runner.
        runner: RunnerType,
        /// What was asked.
        what: &'static str,
    },
    /// Not possible in its current state (StackStorm answers 400/409).
    #[error("execution {id}: {message}")]
    Refused {
        /// The execution.
        id: ExecutionId,
        /// Why.
        message: String,
    },
    /// The workflow's action is no longer loaded.
    #[error("execution {id}: action {action} is no longer loaded")]
    Unloaded {
        /// The execution.
        id: ExecutionId,
        /// Its action.
        action: Ref,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Task executions of one workflow a request (cancel, pause, resume) is passed on to at once.
const PASS_ON_AT_ONCE: usize = 32;

/// Up to this many active task executions, a request reads them one by one; past it, in one
/// list of the workflow's children.
const READ_ONE_BY_ONE: usize = 64;

/// The workflow engine. Cheap to clone.
#[derive(Clone)]
pub struct Workflows {
    inner: Arc<Inner>,
}

struct Inner {
    runner: Runner,
    scheduler: Scheduler,
    /// Status changes of workflow executions go here, as completions of actions do (so parents
    /// hear of their sub-workflows and `core.st2.generic.actiontrigger` fires).
    events: mpsc::UnboundedSender<Execution>,
    tasks: TaskTracker,
    /// Events waiting per workflow; an entry exists while a worker is active for it.
    queues: Mutex<HashMap<ExecutionId, Vec<Execution>>>,
    /// One lock per workflow: every change to it holds it.
    locks: Mutex<HashMap<ExecutionId, Arc<tokio::sync::Mutex<()>>>>,
    /// Workflow executions and their states as last committed.
    cache: Mutex<HashMap<ExecutionId, (Execution, State)>>,
}

/// Why a task or node execution could not be requested.
enum ChildError {
    /// Its action is not loaded or disabled, or its ref does not parse: a chain fails
    /// (StackStorm's `InvalidActionReferencedException`), a workflow's task fails.
    Unknown(String),
    /// The action refused the parameters: the task or node fails.
    Refused(String),
}

/// What a conducted execution runs: an Orquesta workflow or an ActionChain.
enum Spec {
    Orquesta(Arc<WorkflowSpec>),
    Chain(Arc<ChainSpec>),
}

/// A conducted execution's stored state.
#[derive(Clone)]
enum State {
    Orquesta(WorkflowState),
    Chain(ChainState),
}

/// The conductor of one workflow or chain, as the engine drives it.
enum Conducted<'a> {
    Orquesta(Conductor<'a>),
    Chain(ChainConductor<'a>),
}

impl Conducted<'_> {
    fn take_dispatches(&mut self) -> Vec<Dispatch> {
        match self {
            Conducted::Orquesta(c) => c.take_dispatches(),
            Conducted::Chain(c) => c.take_dispatches(),
        }
    }

    fn bind(&mut self, d: &Dispatch, execution: String) {
        match self {
            Conducted::Orquesta(c) => c.bind(d.task, d.run, execution),
            Conducted::Chain(c) => c.bind(d.task, execution),
        }
    }

    fn update(&mut self, task: usize, run: usize, status: ExecutionStatus, result: Value) {
        match self {
            Conducted::Orquesta(c) => c.update(task, run, status, result),
            Conducted::Chain(c) => c.update(task, status, result),
        }
    }

    /// The status last reported for a (task, run).
    fn known(&self, task: usize, run: usize) -> Option<ExecutionStatus> {
        match self {
            Conducted::Orquesta(c) => Some(c.state().tasks.get(task)?.runs.get(run)?.status),
            Conducted::Chain(c) => Some(c.state().tasks.get(task)?.state),
        }
    }

    fn find(&self, execution: &str) -> Option<(usize, usize)> {
        match self {
            Conducted::Orquesta(c) => c.find(execution),
            Conducted::Chain(c) => c.find(execution).map(|t| (t, 0)),
        }
    }

    /// An index of every run for a batch of many reports (a chain runs one node at a time).
    fn run_index(&self) -> Option<HashMap<String, (usize, usize)>> {
        match self {
            Conducted::Orquesta(c) => Some(c.run_index()),
            Conducted::Chain(_) => None,
        }
    }

    fn state_json(&self) -> Vec<u8> {
        match self {
            Conducted::Orquesta(c) => serde_json::to_vec(c.state()),
            Conducted::Chain(c) => serde_json::to_vec(c.state()),
        }
        .expect("conductor states serialize")
    }

    fn check_state_size(&mut self, bytes: usize) -> bool {
        match self {
            Conducted::Orquesta(c) => c.check_state_size(bytes),
            Conducted::Chain(c) => c.check_state_size(bytes),
        }
    }

    fn status(&self) -> ExecutionStatus {
        match self {
            Conducted::Orquesta(c) => c.status(),
            Conducted::Chain(c) => c.status(),
        }
    }

    fn result(&self) -> Value {
        match self {
            Conducted::Orquesta(c) => c.result(),
            Conducted::Chain(c) => c.result(),
        }
    }

    fn into_state(self) -> State {
        match self {
            Conducted::Orquesta(c) => State::Orquesta(c.into_state()),
            Conducted::Chain(c) => State::Chain(c.into_state()),
        }
    }

    fn request(&mut self, request: Request) -> Result<(), ConductorError> {
        match (self, request) {
            (Conducted::Orquesta(c), Request::Pause) => c.pause(),
            (Conducted::Orquesta(c), Request::Resume) => c.resume(),
            (Conducted::Orquesta(c), Request::Cancel) => c.cancel().map(|_| ()),
            (Conducted::Chain(c), Request::Pause) => c.pause(),
            (Conducted::Chain(c), Request::Resume) => c.resume(),
            (Conducted::Chain(c), Request::Cancel) => c.cancel(),
        }
    }

    fn active_executions(&self) -> Vec<String> {
        match self {
            Conducted::Orquesta(c) => c.active_executions(),
            Conducted::Chain(c) => c.active_executions(),
        }
    }
}

/// Whether [`Workflows::apply`] creates the workflow execution's record or updates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// A new execution (a re-run).
    New,
    /// Already stored.
    Stored,
}

/// What [`Workflows::control`] is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Pause,
    Resume,
    Cancel,
}

impl Request {
    fn needs(self) -> &'static str {
        match self {
            Request::Pause => "only workflow executions can be paused",
            Request::Resume => "only workflow executions can be resumed",
            Request::Cancel => "only workflow executions are canceled here",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves an execution to `to` through legal changes (a workflow may go from `running` to
/// `paused` in one step of its conductor; the record shows `pausing` in between).
fn move_to(e: &mut Execution, to: ExecutionStatus, at: Timestamp) {
    if e.status == to {
        return;
    }
    if e.transition(to, at).is_ok() {
        return;
    }
    for via in ExecutionStatus::ALL {
        if e.status.can_become(via) && via.can_become(to) {
            let _ = e.transition(via, at);
            let _ = e.transition(to, at);
            return;
        }
    }
    for via in [ExecutionStatus::Resuming, ExecutionStatus::Running] {
        if e.status.can_become(via) {
            let _ = e.transition(via, at);
        }
    }
    if let Err(err) = e.transition(to, at) {
        tracing::error!(error = %err, "workflow status not recorded");
    }
}

impl Workflows {
    pub(crate) fn new(
        runner: Runner,
        scheduler: Scheduler,
        events: mpsc::UnboundedSender<Execution>,
        tasks: TaskTracker,
    ) -> Workflows {
        Workflows {
            inner: Arc::new(Inner {
                runner,
                scheduler,
                events,
                tasks,
                queues: Mutex::new(HashMap::new()),
                locks: Mutex::new(HashMap::new()),
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The operator's `[workflows]` budgets.
    fn budget(&self) -> squall_core::config::WorkflowSettings {
        self.inner.runner.registry().config().workflows.clone()
    }

    /// The datastore for the expressions of `workflow` (an action ref) run by `user`: secrets
    /// decrypt only when granted to the workflow's pack.
    fn keys(&self, user: &str, workflow: &squall_core::Ref) -> squall_core::template::KeyLookup {
        self.inner.runner.key_lookup_for(user, workflow.pack())
    }

    async fn lock(&self, id: ExecutionId) -> tokio::sync::OwnedMutexGuard<()> {
        let m = lock(&self.inner.locks).entry(id).or_default().clone();
        m.lock_owned().await
    }

    fn spec(&self, e: &Execution) -> Result<Spec, ControlError> {
        let action = self
            .inner
            .runner
            .registry()
            .packs()
            .action(&e.action.reference)
            .cloned();
        let spec = match e.action.runner_type {
            RunnerType::ActionChain => action.and_then(|a| a.chain).map(Spec::Chain),
            _ => action.and_then(|a| a.workflow).map(Spec::Orquesta),
        };
        spec.ok_or_else(|| ControlError::Unloaded {
            id: e.id,
            action: e.action.reference.clone(),
        })
    }

    /// The workflow (or chain) execution and its state: from the cache, else the store.
    async fn load(&self, id: ExecutionId) -> Result<(Execution, Option<State>), ControlError> {
        if let Some((e, s)) = lock(&self.inner.cache).get(&id).cloned() {
            return Ok((e, Some(s)));
        }
        let store = self.inner.runner.store();
        let e = store.get(id).await?.ok_or(ControlError::NotFound(id))?;
        let state = match e.action.runner_type {
            RunnerType::ActionChain => store.chain(id).await?.map(State::Chain),
            _ => store.workflow(id).await?.map(State::Orquesta),
        };
        Ok((e, state))
    }

    /// What an ActionChain's templates see besides its own values, as StackStorm's
    /// `_resolve_params`: `st2kv`, `action_context` (`{"parent": {"execution_id", ...the
    /// chain execution's context}}`) and, when the chain mentions it, `config_context` — or
    /// why that could not be rendered (the chain fails when a template needs it; nothing else
    /// does).
    fn chain_context(&self, wf: &Execution, spec: &ChainSpec) -> (Context, Option<String>) {
        let pack = wf.action.reference.pack();
        let mut parent = wf.context.clone();
        parent.insert("execution_id".into(), json!(wf.id.to_string()));
        parent.entry("pack").or_insert_with(|| json!(pack));
        let mut ctx = Context::empty()
            .with_keys(self.keys(wf.user(), &wf.action.reference))
            .with("action_context", json!({ "parent": parent }));
        if spec.mentions_config {
            use squall_core::pack_config::CONFIG_CONTEXT;
            let operator = Context::empty().with_keys(self.inner.runner.key_lookup(wf.user()));
            match self.inner.runner.registry().pack_config(pack, &operator) {
                Ok(config) => ctx = ctx.with(CONFIG_CONTEXT, Value::Object(config)),
                Err(e) => return (ctx, Some(format!("{CONFIG_CONTEXT}: {e}"))),
            }
        }
        (ctx, None)
    }

    /// The action parameters of a chain execution (its runner parameters set aside, as
    /// StackStorm's `render_final_params` splits them) and `display_published`.
    fn chain_parameters(wf: &Execution) -> (Map<String, Value>, bool) {
        let runner = &RunnerType::ActionChain.spec().runner_parameters;
        let display = wf
            .parameters
            .get("display_published")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let params = wf
            .parameters
            .iter()
            .filter(|(k, _)| !runner.contains_key(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (params, display)
    }

    /// The conductor of a stored workflow or chain.
    fn conductor<'s>(
        &self,
        spec: &'s Spec,
        wf: &Execution,
        state: State,
    ) -> Result<Conducted<'s>, ControlError> {
        match (spec, state) {
            (Spec::Orquesta(spec), State::Orquesta(state)) => {
                Ok(Conducted::Orquesta(Conductor::resume_from(
                    spec,
                    state,
                    Some(self.keys(wf.user(), &wf.action.reference)),
                    &self.budget(),
                )))
            }
            (Spec::Chain(spec), State::Chain(state)) => {
                let (base, config_error) = self.chain_context(wf, spec);
                let (params, _) = Self::chain_parameters(wf);
                let mut c = ChainConductor::resume_from(spec, state, &params, base, &self.budget());
                if let Some(e) = config_error {
                    c.config_unavailable(e);
                }
                Ok(Conducted::Chain(c))
            }
            _ => Err(ControlError::Refused {
                id: wf.id,
                message: format!(
                    "action {} no longer runs as {}; its stored state cannot go on",
                    wf.action.reference, wf.action.runner_type
                ),
            }),
        }
    }

    /// Starts a `requested` workflow execution (called by the runner when the scheduler picks
    /// it up): renders its input, records it `running` with its state and first task
    /// executions, and queues those.
    ///
    /// # Errors
    /// Store failures.
    pub async fn start(&self, mut execution: Execution) -> Result<Execution, StoreError> {
        let _guard = self.lock(execution.id).await;
        let now = Timestamp::now();
        let _ = execution.transition(ExecutionStatus::Scheduled, now);
        let _ = execution.transition(ExecutionStatus::Running, now);
        let spec = match self.spec(&execution) {
            Ok(s) => s,
            Err(e) => {
                lock(&self.inner.locks).remove(&execution.id);
                return self
                    .inner
                    .runner
                    .finish(
                        execution,
                        ExecutionStatus::Failed,
                        json!({"error": e.to_string()}),
                    )
                    .await;
            }
        };
        let conductor = match &spec {
            Spec::Orquesta(spec) => Conducted::Orquesta(Conductor::start(
                spec,
                &execution.parameters,
                Some(self.keys(execution.user(), &execution.action.reference)),
                &self.budget(),
            )),
            Spec::Chain(chain) => {
                let (base, config_error) = self.chain_context(&execution, chain);
                let (params, display) = Self::chain_parameters(&execution);
                Conducted::Chain(ChainConductor::start(
                    chain,
                    &params,
                    base,
                    config_error,
                    display,
                    &self.budget(),
                ))
            }
        };
        tracing::info!(execution.id = %execution.id, action.ref = %execution.action.reference, "workflow started");
        self.apply(
            execution,
            ExecutionStatus::Requested,
            Record::Stored,
            conductor,
        )
        .await
    }

    /// Commits the conductor's state with the workflow execution's record (created when
    /// `record` is [`Record::New`], a re-run) and the task executions it asked for, then queues
    /// those and announces the change. `before` is the status last announced.
    async fn apply(
        &self,
        mut wf: Execution,
        before: ExecutionStatus,
        record: Record,
        mut c: Conducted<'_>,
    ) -> Result<Execution, StoreError> {
        let mut children: Vec<Execution> = Vec::new();
        loop {
            let dispatches = c.take_dispatches();
            if dispatches.is_empty() {
                break;
            }
            for d in dispatches {
                match self.child(&wf, &d, &c) {
                    Ok(child) => {
                        c.bind(&d, child.id.to_string());
                        wf.children.push(child.id);
                        children.push(child);
                    }
                    Err(ChildError::Unknown(message)) if matches!(c, Conducted::Chain(_)) => {
                        if let Conducted::Chain(chain) = &mut c {
                            chain.unknown_action(d.task, &message);
                        }
                    }
                    Err(ChildError::Unknown(message) | ChildError::Refused(message)) => {
                        c.update(
                            d.task,
                            d.run,
                            ExecutionStatus::Failed,
                            json!({"error": message}),
                        );
                    }
                }
            }
        }
        // The state as it will be stored, serialized once: over `[workflows] max_state_bytes`
        // fails the workflow (it is stored this once, with the error).
        let mut state_json = c.state_json();
        if c.check_state_size(state_json.len()) {
            state_json = c.state_json();
            // A chain node requested in this batch is dropped with the budget: never stored.
            if let Conducted::Chain(chain) = &c {
                let dropped: Vec<ExecutionId> = children
                    .iter()
                    .filter(|child| chain.dropped(&child.id.to_string()))
                    .map(|child| child.id)
                    .collect();
                children.retain(|child| !dropped.contains(&child.id));
                wf.children.retain(|id| !dropped.contains(id));
            }
        }
        let now = Timestamp::now();
        let status = c.status();
        move_to(&mut wf, status, now);
        // A chain shows its tasks so far at every step (StackStorm's runner returns its result
        // when it pauses and when it ends).
        if status.is_completed() || matches!(c, Conducted::Chain(_)) {
            wf.result = c.result();
        }
        let state = c.into_state();
        let mut batch = Batch::new();
        match record {
            Record::New => batch.create_execution(&wf),
            Record::Stored => batch.update_execution(&wf),
        };
        batch.put_workflow_json(wf.id, state_json);
        for child in &children {
            batch.create_execution(child);
        }
        let store = self.inner.runner.store();
        if let Err(e) = store.commit(batch).await {
            lock(&self.inner.cache).remove(&wf.id);
            return Err(e);
        }
        {
            let mut cache = lock(&self.inner.cache);
            if status.is_completed() {
                cache.remove(&wf.id);
            } else {
                cache.insert(wf.id, (wf.clone(), state));
            }
        }
        if status.is_completed() {
            lock(&self.inner.locks).remove(&wf.id);
            tracing::info!(execution.id = %wf.id, %status, "workflow completed");
        }
        match record {
            Record::New => self.inner.runner.announce_created(&wf),
            Record::Stored => self
                .inner
                .runner
                .bus()
                .publish("st2.execution__update", &wf.masked()),
        }
        for child in children {
            self.inner.runner.announce_created(&child);
            self.inner.scheduler.submit(child);
        }
        if wf.status != before {
            let _ = self.inner.events.send(wf.clone());
        }
        Ok(wf)
    }

    /// A task execution for a dispatch, validated (not stored). A chain node's parameters are
    /// cast to the called action's types (StackStorm's `cast_params`) and its context carries
    /// `chain` (the node) where a workflow task's carries `orquesta`.
    fn child(
        &self,
        wf: &Execution,
        d: &Dispatch,
        c: &Conducted<'_>,
    ) -> Result<Execution, ChildError> {
        let reference: Ref = d
            .action
            .parse()
            .map_err(|e| ChildError::Unknown(format!("action {:?}: {e}", d.action)))?;
        let mut context = Map::new();
        context.insert(
            "parent".into(),
            json!({"execution_id": wf.id.to_string(), "user": wf.user(), "pack": wf.action.pack}),
        );
        if let Conducted::Chain(_) = c {
            let packs = self.inner.runner.registry().packs();
            let action = packs.action(&reference).ok_or_else(|| {
                ChildError::Unknown(format!(
                    "Task :: {} - Action with ref {reference} not registered.",
                    d.task_name
                ))
            })?;
            let input: Map<String, Value> = d
                .input
                .iter()
                .map(|(k, v)| (k.clone(), action.parameters.coerce(k, v.clone())))
                .collect();
            context.insert(
                "chain".into(),
                json!({"name": d.task_name, "ref": d.action}),
            );
            let mut child = self
                .inner
                .runner
                .new_execution(&reference, &input, wf.user(), context)
                .map_err(|e| match e {
                    crate::RequestError::UnknownAction(_) | crate::RequestError::Disabled(_) => {
                        ChildError::Unknown(format!(
                            "Task :: {} - Action with ref {reference} not registered ({e}).",
                            d.task_name
                        ))
                    }
                    e => {
                        ChildError::Refused(format!("Failed running task \"{}\". {e}", d.task_name))
                    }
                })?;
            child.parent = Some(wf.id);
            return Ok(child);
        }
        let mut orquesta = json!({
            "workflow_execution_id": wf.id.to_string(),
            "task_execution_id": format!("{}:{}:{}", wf.id, d.task_name, d.route),
            "task_name": d.task_name,
            "task_id": d.task_name,
            "task_route": d.route,
        });
        if let Some(i) = d.item {
            orquesta["item_id"] = json!(i);
        }
        context.insert("orquesta".into(), orquesta);
        let mut child = self
            .inner
            .runner
            .new_execution(&reference, &d.input, wf.user(), context)
            .map_err(|e| ChildError::Refused(e.to_string()))?;
        child.parent = Some(wf.id);
        child.delay = d.delay_ms;
        Ok(child)
    }

    /// Hears of a change of a task execution (called for every status change of an execution
    /// with a parent): queued for its workflow's worker.
    pub fn notify(&self, child: &Execution) {
        let Some(parent) = child.parent else { return };
        let start = {
            let mut queues = lock(&self.inner.queues);
            match queues.get_mut(&parent) {
                Some(q) => {
                    q.push(child.clone());
                    false
                }
                None => {
                    queues.insert(parent, vec![child.clone()]);
                    true
                }
            }
        };
        if start {
            let me = self.clone();
            self.inner
                .tasks
                .spawn(async move { me.worker(parent).await });
        }
    }

    async fn worker(&self, id: ExecutionId) {
        loop {
            let _guard = self.lock(id).await;
            let events = {
                let mut queues = lock(&self.inner.queues);
                match queues.get_mut(&id) {
                    Some(q) if !q.is_empty() => std::mem::take(q),
                    _ => {
                        queues.remove(&id);
                        return;
                    }
                }
            };
            if let Err(e) = self.feed(id, events).await {
                tracing::error!(execution.id = %id, error = %e, "workflow not advanced; recovered at the next start");
            }
        }
    }

    /// Applies task execution changes to a workflow (its lock held).
    async fn feed(&self, id: ExecutionId, events: Vec<Execution>) -> Result<(), ControlError> {
        let (wf, state) = self.load(id).await?;
        let Some(state) = state else { return Ok(()) };
        if wf.status.is_completed() {
            return Ok(());
        }
        let spec = self.spec(&wf)?;
        let mut c = self.conductor(&spec, &wf, state)?;
        let mut changed = false;
        // A batch of many reports (a wide with-items canceled) looks runs up in one index; a
        // few are found by a scan each.
        let index = if events.len() > 8 {
            c.run_index()
        } else {
            None
        };
        for child in events {
            let id = child.id.to_string();
            let found = match &index {
                Some(index) => index.get(&id).copied(),
                None => c.find(&id),
            };
            let Some((task, run)) = found else {
                continue;
            };
            let Some(known) = c.known(task, run) else {
                continue;
            };
            if known == child.status || known.is_completed() {
                continue;
            }
            if !child.status.is_completed()
                && !matches!(
                    child.status,
                    ExecutionStatus::Pending | ExecutionStatus::Paused
                )
                && !matches!(known, ExecutionStatus::Pending | ExecutionStatus::Paused)
            {
                continue; // requested → scheduled → running: nothing for the conductor
            }
            c.update(task, run, child.status, child.result.clone());
            changed = true;
        }
        if changed {
            let before = wf.status;
            self.apply(wf, before, Record::Stored, c).await?;
        }
        Ok(())
    }

    /// Pauses a running workflow (and its running sub-workflows): no new task starts.
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn pause(&self, id: ExecutionId) -> Result<Execution, ControlError> {
        self.control(id, Request::Pause).await
    }

    /// Resumes a paused workflow (and its paused sub-workflows).
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn resume(&self, id: ExecutionId) -> Result<Execution, ControlError> {
        self.control(id, Request::Resume).await
    }

    /// Cancels a workflow: `canceling` until its running task executions (canceled in turn,
    /// sub-workflows included) have ended, then `canceled`. Returns the record after at most
    /// 5 s.
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn cancel(&self, id: ExecutionId) -> Result<Execution, ControlError> {
        self.control(id, Request::Cancel).await?;
        crate::scheduler::settled(self.inner.runner.store().as_ref(), id)
            .await?
            .ok_or(ControlError::NotFound(id))
    }

    /// Applies a request under the workflow's lock, then passes it on: cancel to every task
    /// execution still running, pause and resume to sub-workflows.
    async fn control(&self, id: ExecutionId, request: Request) -> Result<Execution, ControlError> {
        let (wf, active) = {
            let _guard = self.lock(id).await;
            let (wf, state) = self.load(id).await?;
            if !wf.action.runner_type.is_conducted() {
                return Err(ControlError::WrongRunner {
                    id,
                    runner: wf.action.runner_type,
                    what: request.needs(),
                });
            }
            let Some(state) = state else {
                return Err(ControlError::Refused {
                    id,
                    message: format!("the workflow is {} and has not started", wf.status),
                });
            };
            let spec = self.spec(&wf)?;
            let mut c = self.conductor(&spec, &wf, state)?;
            c.request(request)
                .map_err(|e| ControlError::Refused { id, message: e.0 })?;
            let active = c.active_executions();
            let before = wf.status;
            (self.apply(wf, before, Record::Stored, c).await?, active)
        };
        // Outside the lock: the children report back to this workflow. Task executions that
        // are not running workflows are canceled together, oldest first (queued ones withdrawn
        // and recorded in a few commits, whatever their number); requests to running
        // sub-workflows recurse, at most `PASS_ON_AT_ONCE` at a time so that a wide tree does
        // not flood the store.
        let children = self.active_children(id, &active).await?;
        let at_once = Arc::new(tokio::sync::Semaphore::new(PASS_ON_AT_ONCE));
        let mut tasks = Vec::new();
        for e in children {
            let child_id = e.id;
            let conducted = e.action.runner_type.is_conducted()
                && !matches!(
                    e.status,
                    ExecutionStatus::Requested | ExecutionStatus::Delayed
                );
            if !conducted {
                if request == Request::Cancel {
                    tasks.push(child_id);
                }
                continue;
            }
            let me = self.clone();
            let at_once = at_once.clone();
            self.inner.tasks.spawn(async move {
                let _turn = at_once.acquire_owned().await;
                if let Err(e) = me.boxed(child_id, request).await {
                    tracing::debug!(execution.id = %child_id, error = %e, "request not passed on");
                }
            });
        }
        if !tasks.is_empty() {
            let me = self.clone();
            self.inner.tasks.spawn(async move {
                match me.inner.scheduler.cancel_many(&tasks).await {
                    // Sub-workflows that started meanwhile: canceled through their conductor.
                    Ok(conducted) => {
                        for child in conducted {
                            let _turn = at_once.clone().acquire_owned().await;
                            if let Err(e) = me.boxed(child, Request::Cancel).await {
                                tracing::debug!(execution.id = %child, error = %e, "cancel not passed on");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(execution.id = %id, error = %e, "task executions not all recorded canceled; queued ones are ended by the dispatcher, the others at the next cancel");
                    }
                }
            });
        }
        Ok(wf)
    }

    /// The records of a workflow's task executions named in `active`, oldest first: read one
    /// by one when there are few, in one list of the workflow's children when many (a wide
    /// with-items has thousands in flight).
    async fn active_children(
        &self,
        id: ExecutionId,
        active: &[String],
    ) -> Result<Vec<Execution>, StoreError> {
        let store = self.inner.runner.store();
        let ids: Vec<ExecutionId> = active.iter().filter_map(|c| c.parse().ok()).collect();
        if ids.len() <= READ_ONE_BY_ONE {
            let mut ids = ids;
            ids.sort_unstable();
            let mut children = Vec::with_capacity(ids.len());
            for child in ids {
                if let Some(e) = store.get(child).await? {
                    children.push(e);
                }
            }
            return Ok(children);
        }
        let wanted: std::collections::HashSet<ExecutionId> = ids.into_iter().collect();
        let mut children: Vec<Execution> = store
            .list(&squall_store::ExecutionFilter {
                parent: Some(id),
                limit: usize::MAX,
                ..Default::default()
            })
            .await?
            .into_iter()
            .filter(|e| wanted.contains(&e.id))
            .collect();
        children.sort_by_key(|e| e.id);
        Ok(children)
    }

    /// A request to a sub-workflow, boxed: requests recurse down the workflow tree.
    fn boxed(
        &self,
        id: ExecutionId,
        request: Request,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Execution, ControlError>> + Send>> {
        let me = self.clone();
        Box::pin(async move {
            match request {
                Request::Cancel => me.cancel(id).await,
                _ => me.control(id, request).await,
            }
        })
    }

    /// Re-runs a completed workflow from `tasks` (its failed tasks when empty) as a new
    /// workflow execution, as `st2 execution re-run <id> --tasks ...`: tasks that completed keep
    /// their results and are not run again.
    ///
    /// # Errors
    /// [`ControlError`]: unknown id, not a workflow, still running, a task that never ran.
    pub async fn rerun(
        &self,
        id: ExecutionId,
        tasks: &[String],
        user: &str,
    ) -> Result<Execution, ControlError> {
        let store = self.inner.runner.store();
        let old = store.get(id).await?.ok_or(ControlError::NotFound(id))?;
        if old.action.runner_type != RunnerType::Orquesta {
            return Err(ControlError::WrongRunner {
                id,
                runner: old.action.runner_type,
                what: "only a workflow execution re-runs from tasks",
            });
        }
        let state = store
            .workflow(id)
            .await?
            .ok_or_else(|| ControlError::Refused {
                id,
                message: "the workflow never started".into(),
            })?;
        let Spec::Orquesta(spec) = self.spec(&old)? else {
            return Err(ControlError::WrongRunner {
                id,
                runner: old.action.runner_type,
                what: "only a workflow execution re-runs from tasks",
            });
        };
        let c = Conductor::rerun(
            &spec,
            &state,
            tasks,
            Some(self.keys(user, &old.action.reference)),
            &self.budget(),
        )
        .map_err(|e| ControlError::Refused { id, message: e.0 })?;
        let c = Conducted::Orquesta(c);
        let action = self
            .inner
            .runner
            .registry()
            .packs()
            .action(&old.action.reference)
            .cloned()
            .ok_or_else(|| ControlError::Unloaded {
                id,
                action: old.action.reference.clone(),
            })?;
        let now = Timestamp::now();
        let mut wf = Execution::new(&action, old.parameters.clone(), user, now);
        wf.context.insert(
            "re-run".into(),
            json!({"ref": id.to_string(), "tasks": tasks}),
        );
        wf.owner = Some(store.process().to_string());
        let _ = wf.transition(ExecutionStatus::Scheduled, now);
        let _ = wf.transition(ExecutionStatus::Running, now);
        let _guard = self.lock(wf.id).await;
        Ok(self
            .apply(wf, ExecutionStatus::Requested, Record::New, c)
            .await?)
    }

    /// After a restart: feeds every task execution that changed while nobody listened (it
    /// completed, or started waiting) to the workflow `id`, which then goes on.
    ///
    /// # Errors
    /// Store failures.
    pub async fn reconcile(&self, id: ExecutionId) -> Result<(), ControlError> {
        let (wf, state) = self.load(id).await?;
        let Some(state) = state else {
            return Ok(());
        };
        let spec = self.spec(&wf)?;
        let c = self.conductor(&spec, &wf, state)?;
        let store = self.inner.runner.store();
        let mut seen = Vec::new();
        // A wide workflow has thousands of active runs: look them up in one index.
        let index = c.run_index();
        for child in c.active_executions() {
            let at = match &index {
                Some(index) => index.get(&child).copied(),
                None => c.find(&child),
            };
            let known = at.and_then(|(t, r)| c.known(t, r));
            let Ok(child) = child.parse::<ExecutionId>() else {
                continue;
            };
            if let Some(e) = store.get(child).await?
                && Some(e.status) != known
            {
                seen.push(e);
            }
        }
        drop(c);
        let _guard = self.lock(id).await;
        self.feed(id, seen).await
    }
}
