//! The runner: request → durable record → run in the host → durable result.

use crate::{Bus, Registry};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::execution::{Output, Usage};
use squall_core::param::ParamError;
use squall_core::{Execution, ExecutionStatus, Ref};
use squall_host::process::ProcessLedger;
use squall_host::{RunContext, RunRequest};
use squall_store::{Store, StoreError};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The result StackStorm records for a canceled execution.
pub const CANCELED_MESSAGE: &str = "Action canceled by user.";

/// Why a request was refused before any execution was recorded (the API's 400/404, the CLI's
/// exit code 2) — or could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No loaded action has this ref.
    #[error("action {0} not found")]
    UnknownAction(Ref),
    /// The action's metadata says `enabled: false`.
    #[error("action {0} is disabled")]
    Disabled(Ref),
    /// The parameters do not fit the action's schema.
    #[error("{0}")]
    Parameters(#[from] ParamError),
    /// The record could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs actions and records them. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    bus: Bus,
    /// The `orquesta` runner, set once the services are wired.
    workflows: Arc<OnceLock<crate::Workflows>>,
    /// The datastore templates read, set once the services are wired.
    datastore: Arc<OnceLock<crate::Datastore>>,
    /// Queues an execution on the scheduler (set by [`crate::Scheduler::start`]): where a
    /// policy's retry goes once it is durable.
    submit: Arc<OnceLock<Submit>>,
    /// Where running commands are recorded (see [`squall_host::process::ProcessLedger`]).
    ledger: Arc<ProcessLedger>,
}

/// See [`Runner::set_submit`]: queues a retry (the second argument) of a finished execution
/// (the first, whose concurrency slots are released first, so the retry never counts against
/// its own original).
pub(crate) type Submit = Box<dyn Fn(squall_core::ExecutionId, Execution) + Send + Sync>;

impl Runner {
    /// A runner over `registry` recording into `store` and announcing on `bus`.
    pub fn new(registry: Arc<Registry>, store: Arc<dyn Store>, bus: Bus) -> Runner {
        let ledger = match registry.process_root() {
            Some(root) => ProcessLedger::new(root, store.process()),
            None => ProcessLedger::disabled(),
        };
        Runner {
            ledger: Arc::new(ledger),
            registry,
            store,
            bus,
            workflows: Arc::new(OnceLock::new()),
            datastore: Arc::new(OnceLock::new()),
            submit: Arc::new(OnceLock::new()),
        }
    }

    /// Wires the scheduler's queue, where retries requested by policy go.
    pub(crate) fn set_submit(&self, submit: Submit) {
        let _ = self.submit.set(submit);
    }

    /// Wires the workflow engine that runs `orquesta` actions.
    pub(crate) fn set_workflows(&self, workflows: crate::Workflows) {
        let _ = self.workflows.set(workflows);
    }

    /// Wires the datastore that templates read ([`Runner::key_lookup`]).
    pub(crate) fn set_datastore(&self, datastore: crate::Datastore) {
        let _ = self.datastore.set(datastore);
    }

    /// The datastore as templates rendered for `user` see it (`st2kv.system`, `st2kv.user`,
    /// `decrypt_kv`); before the services are wired, the store's system keys only.
    pub fn key_lookup(&self, user: &str) -> squall_core::template::KeyLookup {
        match self.datastore.get() {
            Some(d) => d.lookup(user),
            None => {
                let store = self.store.clone();
                Arc::new(move |name: &str| {
                    let key = squall_core::datastore::KeyRef::system(name);
                    store.key_blocking(&key).ok().flatten().map(|kv| kv.value)
                })
            }
        }
    }

    /// [`Runner::key_lookup`] for templates `pack` wrote (its rules, parameter defaults and
    /// workflows): secrets decrypt only when granted to the pack (see
    /// [`crate::Datastore::lookup_for_pack`]).
    pub fn key_lookup_for(&self, user: &str, pack: &str) -> squall_core::template::KeyLookup {
        match self.datastore.get() {
            Some(d) => d.lookup_for_pack(user, pack),
            None => self.key_lookup(user),
        }
    }

    /// The ledger of this process's running commands.
    pub(crate) fn ledger(&self) -> &ProcessLedger {
        &self.ledger
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Builds (without storing) a `requested` execution of `reference`: the parameters are
    /// validated against the action's schema with defaults filled in; `context` entries are
    /// added to the execution's context (StackStorm's `rule`, `trigger_instance`, ...).
    ///
    /// # Errors
    /// [`RequestError`]: unknown or disabled action, bad parameters.
    pub fn new_execution(
        &self,
        reference: &Ref,
        given: &Map<String, Value>,
        user: &str,
        context: Map<String, Value>,
    ) -> Result<Execution, RequestError> {
        let packs = self.registry.packs();
        let action = packs
            .action(reference)
            .ok_or_else(|| RequestError::UnknownAction(reference.clone()))?;
        if !action.enabled {
            return Err(RequestError::Disabled(reference.clone()));
        }
        let parameters = self.resolve_parameters(action, given, user)?;
        let mut execution = Execution::new(action, parameters, user, Timestamp::now());
        // What resolves its action again when it runs (a component, a command, a script)
        // resolves it in this packs version; the others run from the record alone.
        use squall_core::RunnerType as R;
        if !matches!(
            action.runner_type,
            R::Orquesta | R::ActionChain | R::Inquirer | R::Noop
        ) {
            self.registry.pin(execution.id, packs.clone());
        }
        execution.context.extend(context);
        execution.owner = Some(self.store.process().to_string());
        Ok(execution)
    }

    /// The parameters `action` runs with for `user`: `given` plus defaults, templated defaults
    /// rendered with the datastore (secrets as the action's pack is granted) and, when one
    /// mentions it, StackStorm's `config_context` (the
    /// action's pack config, rendered; see [`Registry::pack_config`]).
    ///
    /// # Errors
    /// [`RequestError::Parameters`]: bad parameters, or a default needing the pack config when
    /// that config is invalid or does not render.
    fn resolve_parameters(
        &self,
        action: &squall_core::Action,
        given: &Map<String, Value>,
        user: &str,
    ) -> Result<Map<String, Value>, RequestError> {
        use squall_core::pack_config::CONFIG_CONTEXT;
        use squall_core::template::Context;
        let pack = action.reference.pack();
        // The defaults are the pack's own templates: secrets as its grants allow. The config
        // values are the operator's (`configs/<pack>.yaml`): every key they name.
        let mut ctx = Context::trigger(&Value::Null).with_keys(self.key_lookup_for(user, pack));
        if action.parameters.defaults_mention(CONFIG_CONTEXT, given) {
            let operator = Context::trigger(&Value::Null).with_keys(self.key_lookup(user));
            let config = self
                .registry
                .pack_config(pack, &operator)
                .map_err(|e| ParamError::Invalid(vec![format!("{CONFIG_CONTEXT}: {e}")]))?;
            ctx = ctx.with(CONFIG_CONTEXT, Value::Object(config));
        }
        Ok(action.parameters.resolve_in(given, ctx)?)
    }

    /// Validates and records a new execution in status `requested`. Returns once the record is
    /// durable.
    ///
    /// # Errors
    /// [`RequestError`]: unknown or disabled action, bad parameters (nothing is recorded), or
    /// a store failure.
    pub async fn request(
        &self,
        reference: &Ref,
        given: &Map<String, Value>,
        user: &str,
    ) -> Result<Execution, RequestError> {
        let execution = self.new_execution(reference, given, user, Map::new())?;
        if let Err(e) = self.store.create(&execution).await {
            self.registry.unpin(execution.id);
            return Err(e.into());
        }
        self.announce_created(&execution);
        tracing::debug!(execution.id = %execution.id, action.ref = %reference, "execution requested");
        Ok(execution)
    }

    /// Publishes `st2.execution__create` for a record just made durable.
    pub fn announce_created(&self, execution: &Execution) {
        self.bus
            .publish("st2.execution__create", &execution.masked());
    }

    /// Records that a `requested` execution waits for its `delay` (status `delayed`).
    ///
    /// # Errors
    /// Store failures.
    pub async fn delay(&self, mut execution: Execution) -> Result<Execution, StoreError> {
        if execution
            .transition(ExecutionStatus::Delayed, Timestamp::now())
            .is_ok()
        {
            self.save(&execution).await?;
        }
        Ok(execution)
    }

    /// Stores a changed record and announces it (`st2.execution__update`).
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn save(&self, execution: &Execution) -> Result<(), StoreError> {
        self.store.update(execution).await?;
        self.bus
            .publish("st2.execution__update", &execution.masked());
        Ok(())
    }

    /// Runs a `requested` execution: a `noop` action succeeds at once; a command runner's
    /// command runs under the pack's grants (see `commands.rs`); a `wasm` action to completion (the `scheduled` and
    /// `running` changes, with its limits, are recorded in one write before the component
    /// starts, the result after it ends; if `cancel` fires first, the execution ends `canceled`
    /// with the component stopped where it is); an `orquesta` workflow is started and returns
    /// `running` (see [`crate::Workflows`]); an `inquirer` action (`core.ask`) ends `pending`
    /// with the inquiry as its result, until answered.
    ///
    /// # Errors
    /// Only store failures; every way the run itself can end is recorded in the execution.
    pub async fn execute(
        &self,
        mut execution: Execution,
        cancel: CancellationToken,
    ) -> Result<Execution, StoreError> {
        let span = tracing::info_span!(
            "execution",
            execution.id = %execution.id,
            action.ref = %execution.action.reference,
        );
        async move {
            if cancel.is_cancelled() {
                return self.finish(execution, ExecutionStatus::Canceled, json!({"message": CANCELED_MESSAGE})).await;
            }
            match execution.action.runner_type {
                squall_core::RunnerType::Wasm | squall_core::RunnerType::PythonScript => {}
                squall_core::RunnerType::Orquesta | squall_core::RunnerType::ActionChain => {
                    return match self.workflows.get() {
                        Some(w) => {
                            let started = w.start(execution).await?;
                            // Canceled while it started (its parent was canceled): its
                            // conductor cancels it now.
                            if cancel.is_cancelled() && !started.status.is_completed() {
                                let id = started.id;
                                if let Err(e) = w.cancel(id).await {
                                    tracing::debug!(execution.id = %id, error = %e, "cancel after start refused");
                                }
                            }
                            Ok(started)
                        }
                        None => {
                            let message = "workflows and action chains run only under squall serve or the CLI's services";
                            self.finish(execution, ExecutionStatus::Failed, json!({"error": message})).await
                        }
                    };
                }
                squall_core::RunnerType::Inquirer => {
                    let now = Timestamp::now();
                    for s in [ExecutionStatus::Scheduled, ExecutionStatus::Running, ExecutionStatus::Pending] {
                        execution.transition(s, now).expect("requested → scheduled → running → pending");
                    }
                    execution.result = squall_core::inquiry::Inquiry::of(&execution).result(None);
                    self.save(&execution).await?;
                    tracing::info!("inquiry pending");
                    return Ok(execution);
                }
                squall_core::RunnerType::Noop => {
                    let now = Timestamp::now();
                    for s in [ExecutionStatus::Scheduled, ExecutionStatus::Running] {
                        execution.transition(s, now).expect("requested → scheduled → running");
                    }
                    // As StackStorm's noop_runner.py.
                    let result = json!({"failed": false, "succeeded": true, "return_code": 0});
                    return self.finish(execution, ExecutionStatus::Succeeded, result).await;
                }
                squall_core::RunnerType::LocalShellCmd | squall_core::RunnerType::LocalShellScript => {
                    return self.run_local(execution, cancel).await;
                }
                squall_core::RunnerType::RemoteShellCmd | squall_core::RunnerType::RemoteShellScript => {
                    return self.run_remote(execution, cancel).await;
                }
                squall_core::RunnerType::HttpRequest => {
                    return self.run_http(execution, cancel).await;
                }
                squall_core::RunnerType::Announcement => {
                    return self.run_announcement(execution).await;
                }
            }
            execution
                .transition(ExecutionStatus::Scheduled, Timestamp::now())
                .expect("a requested execution can be scheduled");
            let Some(resolved) = self
                .registry
                .resolve_pinned(execution.id, &execution.action.reference)
            else {
                return self.action_gone(execution).await;
            };
            let component = resolved.action.clone();
            if component.runner_type == squall_core::RunnerType::PythonScript {
                return self.run_python(execution, cancel, resolved).await;
            }
            let params = Value::Object(execution.parameters.clone());
            self.run_component(execution, cancel, resolved, &component, params).await
        }
        .instrument(span)
        .await
    }

    /// Runs a `python-script` action (scheduled) in its pack's Python component, as
    /// StackStorm's `python_runner`: the component gets the entry point, the pack's config
    /// (rendered as the operator's), the action parameters (runner parameters split off, as
    /// `st2common/util/param.py`), the `log_level` runner parameter and the environment
    /// (`env` and `ST2_ACTION_PACK_NAME`, `ST2_ACTION_EXECUTION_ID`, `ST2_ACTION_DEBUG`); the `timeout` runner
    /// parameter (default 600 s; 0: none) shortens the action's `limits.timeout`, never
    /// lengthens it. Outbound HTTP follows the operator's `http_allow` grant alone (StackStorm
    /// packs declare no `capabilities`; see `http_runner::stackstorm_http_policy`). The result is StackStorm's `{"stdout", "stderr", "exit_code", "result"}`
    /// (see [`python_result`]).
    ///
    /// # Errors
    /// Store failures only.
    async fn run_python(
        &self,
        execution: Execution,
        cancel: CancellationToken,
        mut resolved: crate::registry::ResolvedAction,
    ) -> Result<Execution, StoreError> {
        use squall_core::template::Context;
        let pack = execution.action.pack.clone();
        let (runner, action_params) = squall_core::local_runner::split_parameters(
            squall_core::RunnerType::PythonScript,
            &execution.parameters,
        );
        let operator = Context::trigger(&Value::Null).with_keys(self.key_lookup(execution.user()));
        let config = match self.registry.pack_config(&pack, &operator) {
            Ok(c) => c,
            Err(e) => {
                return self
                    .finish(
                        execution,
                        ExecutionStatus::Failed,
                        json!({"error": format!("pack config: {e}")}),
                    )
                    .await;
            }
        };
        resolved.http = crate::http_runner::stackstorm_http_policy(
            &resolved.http,
            self.registry.config().grants(&pack).http_allow,
        );
        if let Some(seconds) = runner
            .get("timeout")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
        {
            resolved.limits.timeout = resolved
                .limits
                .timeout
                .min(std::time::Duration::from_secs(seconds));
        }
        let log_level = runner
            .get("log_level")
            .and_then(Value::as_str)
            .unwrap_or("DEBUG")
            .to_string();
        // As python_runner.py: the `env` runner parameter (without PYTHONPATH, which it refuses)
        // and the common ST2_ACTION_* variables; no API URL or token (components get no route to
        // Squall's API).
        let mut env = serde_json::Map::new();
        if let Some(Value::Object(given)) = runner.get("env") {
            for (name, value) in given {
                if !name.eq_ignore_ascii_case("pythonpath") {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    env.insert(name.clone(), Value::String(text));
                }
            }
        }
        env.insert("ST2_ACTION_PACK_NAME".into(), Value::String(pack.clone()));
        env.insert(
            "ST2_ACTION_EXECUTION_ID".into(),
            Value::String(execution.id.to_string()),
        );
        let debug = runner
            .get("debug")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        env.insert(
            "ST2_ACTION_DEBUG".into(),
            Value::String(if debug { "True" } else { "False" }.into()),
        );
        let params = json!({
            "entry_point": resolved.action.entry_point,
            "config": config,
            "parameters": action_params,
            "log_level": log_level,
            "env": env,
        });
        let component = resolved.action.clone();
        self.run_component_as(
            execution,
            cancel,
            resolved,
            &component,
            params,
            Shape::PythonScript,
        )
        .await
    }

    /// Runs the WebAssembly component of `component_action` for `execution` (scheduled, of
    /// the action `resolved`) with `params`, under `resolved`'s limits and outbound-HTTP
    /// policy, to its end. The component is the action's own for `wasm` actions; the
    /// `http-request` runner runs `core.http`'s for another pack's action.
    ///
    /// # Errors
    /// Store failures only.
    pub(crate) async fn run_component(
        &self,
        execution: Execution,
        cancel: CancellationToken,
        resolved: crate::registry::ResolvedAction,
        component_action: &squall_core::Action,
        params: Value,
    ) -> Result<Execution, StoreError> {
        self.run_component_as(
            execution,
            cancel,
            resolved,
            component_action,
            params,
            Shape::Component,
        )
        .await
    }

    /// [`Runner::run_component`], the result read as `shape` says.
    async fn run_component_as(
        &self,
        mut execution: Execution,
        cancel: CancellationToken,
        resolved: crate::registry::ResolvedAction,
        component_action: &squall_core::Action,
        params: Value,
        shape: Shape,
    ) -> Result<Execution, StoreError> {
        let registry = self.registry.clone();
        let action = component_action.clone();
        let content = resolved.content.clone();
        let prepared = tokio::task::spawn_blocking(move || registry.prepare_in(&content, &action))
            .await
            .unwrap_or_else(|e| panic!("component preparation panicked: {e}"));
        let component = match prepared {
            Ok(c) => c,
            Err(e) => {
                return self
                    .finish(
                        execution,
                        ExecutionStatus::Failed,
                        json!({"error": e.to_string()}),
                    )
                    .await;
            }
        };
        execution.limits = Some(resolved.limits);
        execution
            .transition(ExecutionStatus::Running, Timestamp::now())
            .expect("a scheduled execution can run");
        self.save(&execution).await?;

        // Only a component importing `process` / `triggers` gets a gate (none costs nothing).
        let commands = component.uses_process().then(|| {
            Arc::new(crate::commands::ComponentCommands::new(
                &execution,
                &self.registry,
                resolved.limits.max_output,
                self.ledger().clone(),
                cancel.clone(),
            ))
        });
        let triggers = component.uses_triggers().then(|| {
            Arc::new(crate::injected::ActionTriggers::new(
                &execution,
                self.registry
                    .config()
                    .grants(&execution.action.pack)
                    .triggers,
                self.datastore.get().and_then(crate::Datastore::services),
            ))
        });
        let mail = component.uses_mail().then(|| {
            let config = self.registry.config();
            Arc::new(crate::mail::ActionMail::new(
                &execution,
                config.grants(&execution.action.pack),
                config.smtp.clone(),
            ))
        });
        // StackStorm's `action_service` is for Python content only: another component importing
        // `st2-datastore` gets no gate (every call refused).
        let keys = (component.uses_keys() && shape == Shape::PythonScript).then(|| {
            Arc::new(crate::python_keys::ActionKeys::new(
                &execution.action.pack,
                self.registry.config().grants(&execution.action.pack),
                self.datastore.get().cloned(),
            ))
        });
        // A Python pack's component reads its files and its dependencies' data at run time.
        let read_only = if shape == Shape::PythonScript {
            resolved
                .content
                .real_dir(&execution.action.pack)
                .map(python_read_only)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let run = self.registry.host().run(
            &component,
            RunRequest {
                context: RunContext {
                    execution_id: execution.id.to_string(),
                    action_ref: execution.action.reference.to_string(),
                    pack: execution.action.pack.clone(),
                    user: execution.user().to_string(),
                },
                params,
                limits: resolved.limits,
                http: resolved.http,
                process: commands
                    .clone()
                    .map(|c| c as Arc<dyn squall_host::process::ProcessGate>),
                triggers: triggers
                    .clone()
                    .map(|t| t as Arc<dyn squall_host::TriggerGate>),
                mail: mail.clone().map(|m| m as Arc<dyn squall_host::MailGate>),
                keys: keys.map(|k| k as Arc<dyn squall_host::KeyGate>),
                read_only,
            },
        );
        let outcome = tokio::select! {
            outcome = run => outcome,
            () = cancel.cancelled() => {
                record_commands(&mut execution, commands.as_deref()).await;
                return self.finish(execution, ExecutionStatus::Canceled, json!({"message": CANCELED_MESSAGE})).await;
            }
        };
        tracing::info!(
            status = %outcome.status,
            wasm.fuel_used = outcome.fuel_consumed,
            ms = outcome.duration.as_secs_f64() * 1000.0,
            "execution finished"
        );
        execution.output = outcome.output;
        record_commands(&mut execution, commands.as_deref()).await;
        execution.usage = Some(Usage {
            fuel_consumed: outcome.fuel_consumed,
            component_sha256: component.sha256().to_string(),
        });
        let (status, result) = match shape {
            Shape::Component => (outcome.status, outcome.result),
            Shape::PythonScript => python_result(outcome.status, outcome.result, &execution.output),
        };
        self.finish(execution, status, result).await
    }

    /// [`Runner::request`] then [`Runner::execute`] (not cancellable).
    ///
    /// # Errors
    /// As both.
    pub async fn run(
        &self,
        reference: &Ref,
        given: &Map<String, Value>,
        user: &str,
    ) -> Result<Execution, RequestError> {
        let execution = self.request(reference, given, user).await?;
        Ok(self.execute(execution, CancellationToken::new()).await?)
    }

    /// Ends executions no component of this process is running (queued ones a cancel
    /// withdrew, waiting inquiries, ones orphaned by another process) in one store commit, each with its `status` and `result`, and publishes each change. No
    /// retry policy applies (a cancel is never retried). An execution that cannot take its
    /// status (already completed) is left out of the commit and of the returned list.
    ///
    /// # Errors
    /// The commit failed: none of them is recorded.
    pub async fn finish_all(
        &self,
        executions: Vec<(Execution, ExecutionStatus)>,
        result: &Value,
    ) -> Result<Vec<Execution>, StoreError> {
        let now = Timestamp::now();
        let mut batch = squall_store::Batch::new();
        let mut done = Vec::with_capacity(executions.len());
        for (mut e, status) in executions {
            e.result = result.clone();
            if let Err(err) = e.transition(status, now) {
                tracing::error!(execution.id = %e.id, error = %err, "refused status change");
                continue;
            }
            batch.update_execution(&e);
            done.push(e);
        }
        if done.is_empty() {
            return Ok(done);
        }
        self.store.commit(batch).await?;
        for e in &done {
            self.bus.publish("st2.execution__update", &e.masked());
        }
        Ok(done)
    }

    /// Records a final status and result. When an `action.retry` policy calls for a retry (the
    /// execution ended `failed` or `timeout`, has no parent, and has retries left), the retry
    /// execution is stored in the same commit as this final status, then queued.
    ///
    /// # Errors
    /// Store failures.
    pub async fn finish(
        &self,
        mut execution: Execution,
        status: ExecutionStatus,
        result: Value,
    ) -> Result<Execution, StoreError> {
        if status != ExecutionStatus::Succeeded {
            tracing::debug!(%status, result = %result, "execution did not succeed");
        }
        self.registry.unpin(execution.id);
        execution.result = result;
        if let Err(e) = execution.transition(status, Timestamp::now()) {
            // A caller asked for an impossible change; record what is true rather than panic.
            tracing::error!(error = %e, "refused status change");
            return Ok(execution);
        }
        let Some(retry) =
            crate::policies::retry_of(&self.registry.packs(), &execution, self.store.process())
        else {
            self.save(&execution).await?;
            return Ok(execution);
        };
        let mut batch = squall_store::Batch::new();
        batch.update_execution(&execution).create_execution(&retry);
        self.store.commit(batch).await?;
        self.bus
            .publish("st2.execution__update", &execution.masked());
        self.announce_created(&retry);
        tracing::info!(
            execution.id = %execution.id,
            retry.id = %retry.id,
            policy.ref = %retry.context["policies"]["retry"]["applied_policy"],
            delay_ms = retry.delay.unwrap_or(0),
            "retry requested by policy"
        );
        match self.submit.get() {
            Some(submit) => submit(execution.id, retry),
            None => {
                tracing::info!(execution.id = %retry.id, "retry left requested for the next server start")
            }
        }
        Ok(execution)
    }
}

/// Takes the commands a component's `process` gate ran into its execution (refusals of every
/// gate are already among the host's denials in its output).
async fn record_commands(
    execution: &mut Execution,
    commands: Option<&crate::commands::ComponentCommands>,
) {
    if let Some(commands) = commands {
        execution.commands.extend(commands.finish().await);
    }
}

/// How a component's answer becomes the execution's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// As the component returned it (`wasm` actions, the `http-request` runner).
    Component,
    /// A pack's Python component's answer `{"exit_code", "status", "result"}` (see
    /// `runtime/python/squall_st2.py`), made StackStorm's python-script result.
    PythonScript,
}

/// The status and result of a `python-script` execution from its component's `status` and
/// `result`, as StackStorm's `python_runner.py` `_get_output_values` and `_get_final_status`
/// make them: `{"stdout", "stderr", "exit_code", "result"}` with the captured streams; an
/// action returning `(False, …)` or exiting non-zero (an exception: its traceback is on
/// stderr, `result` is `"None"`) failed; exit code 220 (a status that is not a bool) failed
/// with the message StackStorm raises. A run that never answered (a trap, a limit) keeps the
/// host's `{"error": …}` and gains the streams.
fn python_result(
    status: ExecutionStatus,
    result: Value,
    output: &Output,
) -> (ExecutionStatus, Value) {
    let mut out = serde_json::Map::new();
    out.insert("stdout".into(), Value::String(output.stdout.clone()));
    out.insert("stderr".into(), Value::String(output.stderr.clone()));
    let answer = match (status, result) {
        (ExecutionStatus::Succeeded, Value::Object(answer)) => answer,
        (status, Value::Object(mut failure)) => {
            failure.extend(out);
            return (status, Value::Object(failure));
        }
        (status, other) => {
            out.insert("error".into(), other);
            return (status, Value::Object(out));
        }
    };
    let exit_code = answer.get("exit_code").and_then(Value::as_i64).unwrap_or(1);
    out.insert("exit_code".into(), Value::from(exit_code));
    if exit_code == 220 {
        // As python_runner.py, which raises ValueError(stderr) for this exit code.
        out.insert("error".into(), Value::String(output.stderr.clone()));
        return (ExecutionStatus::Failed, Value::Object(out));
    }
    let result = match answer.get("result") {
        // StackStorm prints no result after an exception and records the string "None".
        _ if exit_code != 0 => Value::String("None".into()),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    out.insert("result".into(), result);
    let succeeded = exit_code == 0 && answer.get("status") != Some(&Value::Bool(false));
    let status = if succeeded {
        ExecutionStatus::Succeeded
    } else {
        ExecutionStatus::Failed
    };
    (status, Value::Object(out))
}

/// [`squall_core::python::read_only_dirs`] as the host takes them.
pub(crate) fn python_read_only(pack_dir: &std::path::Path) -> Vec<squall_host::ReadOnlyDir> {
    squall_core::python::read_only_dirs(pack_dir)
        .into_iter()
        .map(|(host, guest)| squall_host::ReadOnlyDir {
            host,
            guest: guest.to_string(),
        })
        .collect()
}
