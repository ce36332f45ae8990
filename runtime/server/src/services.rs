//! [`Services`]: the runner, scheduler, rules engine, timers and datastore wired over one store
//! and bus — what `squall serve` runs, and what a CLI runs in-process when no server is up.

use crate::engine::{Engine, action_trigger_payload};
use crate::{Bus, CancelError, ControlError, Registry, RequestError, Runner, Scheduler, Workflows};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::inquiry::Inquiry;
use squall_core::trigger::{ACTION_TRIGGER, INQUIRY_TRIGGER, TriggerInstanceStatus};
use squall_core::{Execution, ExecutionId, ExecutionStatus, Ref, RunnerType, TriggerInstance};
use squall_store::{Batch, ExecutionFilter, Store, StoreError, TriggerInstanceFilter};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Trigger instances evaluated against rules at once.
const RULE_WORKERS: usize = 32;

/// Why a trigger instance was refused (the API's 400/404).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// No such trigger type.
    #[error("trigger type {0} not found")]
    UnknownTrigger(Ref),
    /// The payload does not fit the trigger type's `payload_schema`.
    #[error("payload does not match the payload_schema of {trigger}: {message}")]
    InvalidPayload {
        /// The trigger type.
        trigger: Ref,
        /// The schema problems.
        message: String,
    },
    /// The instance could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The server's backlog is full (`[server] max_backlog`): try again shortly.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the server is overloaded: {backlog} trigger instances and executions are waiting, the limit \
     is {limit} ([server] max_backlog); retry shortly"
)]
pub struct Overloaded {
    /// Work waiting now.
    pub backlog: usize,
    /// `[server] max_backlog`.
    pub limit: usize,
}

/// Why an inquiry response was refused (the API's 400/404/409).
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// No such execution.
    #[error("inquiry {0} not found")]
    NotFound(ExecutionId),
    /// The execution is not an inquiry.
    #[error("execution {0} is not an inquiry")]
    NotInquiry(ExecutionId),
    /// It was answered, timed out or canceled.
    #[error("inquiry {id} no longer takes a response: it is {status}")]
    Closed {
        /// The inquiry.
        id: ExecutionId,
        /// Its status.
        status: ExecutionStatus,
    },
    /// The response does not match the inquiry's schema.
    #[error("the response does not match the inquiry's schema: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether the background work of a server runs: recovery of unfinished work at start, timers.
/// A CLI running in-process uses [`Mode::Embedded`] so it never picks up a server's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `squall serve`: recover, run timers.
    Server,
    /// A one-off process: only what it asks for itself.
    Embedded,
}

/// Everything running. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

/// [`Services`] without keeping them alive: what a service they own holds to call back.
#[derive(Clone)]
pub(crate) struct WeakServices(std::sync::Weak<Inner>);

impl WeakServices {
    /// The services, unless they have been dropped.
    pub(crate) fn upgrade(&self) -> Option<Services> {
        self.0.upgrade().map(|inner| Services { inner })
    }
}

struct Inner {
    /// Set at start (it holds a handle back to these services), replaced by each reload.
    sensors: std::sync::RwLock<Option<crate::Sensors>>,
    /// Whether timers and sensors run ([`Mode::Server`]).
    mode: Mode,
    /// Stops the timers and sensors of the packs version now loaded (a child of `stop`).
    content_stop: std::sync::Mutex<CancellationToken>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    runner: Runner,
    datastore: crate::Datastore,
    scheduler: Scheduler,
    engine: Engine,
    workflows: Workflows,
    tasks: TaskTracker,
    rule_workers: Arc<Semaphore>,
    /// Trigger instances committed and not yet processed by the rules engine.
    pending_instances: crate::backlog::Backlog,
    stop: CancellationToken,
    /// Cancelled once the scheduler has stopped: the completion loop then drains and ends.
    drained: CancellationToken,
}

impl Services {
    /// Starts the services over `registry` and `store`. In [`Mode::Server`], unfinished work
    /// is recovered first (see [`Services::recover`]) and timers start.
    ///
    /// # Errors
    /// Store failures while loading rule state or recovering.
    pub async fn start(
        registry: Arc<Registry>,
        store: Arc<dyn Store>,
        mode: Mode,
    ) -> Result<Services, StoreError> {
        let overrides = store.rule_overrides().await?;
        registry.set_rule_overrides(
            overrides
                .into_iter()
                .filter_map(|(r, on)| Some((r.parse().ok()?, on))),
        );
        // Commands a dead server (or in-process CLI) left running are killed before any runs.
        if let Some(root) = registry.process_root() {
            let reaped = squall_host::process::ProcessLedger::reap_orphans(root, |owner| {
                store.is_alive(owner)
            });
            if reaped > 0 {
                tracing::warn!(
                    groups = reaped,
                    "killed commands left running by a stopped process"
                );
            }
        }
        let bus = Bus::new();
        let datastore = crate::Datastore::open(store.clone(), registry.clone()).await?;
        let runner = Runner::new(registry.clone(), store, bus);
        runner.set_datastore(datastore.clone());
        let (completed_tx, mut completed_rx) = mpsc::unbounded_channel();
        let scheduler = Scheduler::start(
            runner.clone(),
            registry.config().server.concurrency,
            completed_tx.clone(),
        );
        let engine = Engine::new(runner.clone(), scheduler.clone());
        let tasks = TaskTracker::new();
        let workflows = Workflows::new(
            runner.clone(),
            scheduler.clone(),
            completed_tx,
            tasks.clone(),
        );
        runner.set_workflows(workflows.clone());
        let services = Services {
            inner: Arc::new(Inner {
                sensors: std::sync::RwLock::new(None),
                mode,
                content_stop: std::sync::Mutex::new(CancellationToken::new()),
                reloading: tokio::sync::Mutex::new(()),
                runner,
                datastore,
                scheduler,
                engine,
                workflows,
                tasks,
                rule_workers: Arc::new(Semaphore::new(RULE_WORKERS)),
                pending_instances: crate::backlog::Backlog::default(),
                stop: CancellationToken::new(),
                drained: CancellationToken::new(),
            }),
        };
        let completions = services.clone();
        let drained = services.inner.drained.clone();
        services.inner.tasks.spawn(async move {
            loop {
                tokio::select! {
                    next = completed_rx.recv() => match next {
                        Some(done) => completions.completed(&done).await,
                        None => break,
                    },
                    () = drained.cancelled() => {
                        while let Ok(done) = completed_rx.try_recv() {
                            completions.completed(&done).await;
                        }
                        break;
                    }
                }
            }
        });
        services.inner.datastore.attach(&services);
        let sensors = crate::Sensors::new(&services, &services.registry().packs(), None).await?;
        *services
            .inner
            .sensors
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(sensors.clone());
        let content_stop = services.inner.stop.child_token();
        *services
            .inner
            .content_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = content_stop.clone();
        if mode == Mode::Server {
            services
                .inner
                .datastore
                .start_sweeper(&services.inner.tasks, services.inner.stop.clone());
            services.recover().await?;
            crate::timers::start(&services, &content_stop);
            sensors.start(&content_stop);
            let idle = services.downgrade();
            services
                .inner
                .tasks
                .spawn(crate::backlog::give_back_when_idle(
                    move || idle.upgrade().map_or(0, |s| s.backlog()),
                    services.inner.stop.clone(),
                ));
            services.expire_inquiries();
        }
        Ok(services)
    }

    /// The datastore (keys, secrets, TTLs; its triggers fire through these services).
    pub fn datastore(&self) -> &crate::Datastore {
        &self.inner.datastore
    }

    /// A handle that does not keep the services alive (the datastore's way back here).
    pub(crate) fn downgrade(&self) -> WeakServices {
        WeakServices(Arc::downgrade(&self.inner))
    }

    /// The sensor container of the packs loaded now (its sensors poll only in
    /// [`Mode::Server`]).
    pub fn sensors(&self) -> crate::Sensors {
        self.inner
            .sensors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .expect("set in Services::start before it returns")
    }

    /// Reloads the packs from disk without a restart, atomically — `squall pack register`,
    /// `POST /api/v1/packs/register` and SIGHUP. Every pack is read again (one consistent
    /// version; see [`crate::Registry::read_next`]); `only` names packs that must be in it
    /// and limits the counts returned. The new version is read, checked, every component of
    /// it compiled and its sensors set up while the loaded one keeps serving; only then is it
    /// published in one step: rules, webhooks, actions, policies and configs switch together,
    /// timers and sensors restart on it (a sensor's call still in flight finishes before its
    /// new container's first, and quotas carry over; the sensors' counters start again), and
    /// executions requested before finish on the version they were requested on. One reload
    /// at a time.
    ///
    /// # Errors
    /// [`crate::ReloadError`]: nothing changed, the loaded version keeps serving.
    pub async fn reload(&self, only: &[String]) -> Result<crate::Registered, crate::ReloadError> {
        let _one = self.inner.reloading.lock().await;
        let started = std::time::Instant::now();
        let registry = self.registry().clone();
        let named = only.to_vec();
        let candidate = tokio::task::spawn_blocking(move || {
            let next = registry.read_next(&named)?;
            let candidate = registry.candidate(next);
            let errors = registry.compile_all(&candidate);
            if errors.is_empty() {
                Ok(candidate)
            } else {
                Err(crate::ReloadError::Invalid(errors))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("pack reload panicked: {e}"));
        let candidate = match candidate {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "pack reload refused");
                return Err(e);
            }
        };
        let generation = candidate.generation();
        let registered = crate::Registered::of(&candidate, only);
        // The new version's sensors, set up before anything switches.
        let sensors = crate::Sensors::new(self, &candidate, Some(&self.sensors()))
            .await
            .map_err(|e| {
                let e = crate::ReloadError::Store(e.to_string());
                tracing::warn!(error = %e, "pack reload refused");
                e
            })?;
        self.registry().publish(candidate);
        let content_stop = self.inner.stop.child_token();
        let old = std::mem::replace(
            &mut *self
                .inner
                .content_stop
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            content_stop.clone(),
        );
        old.cancel();
        *self
            .inner
            .sensors
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(sensors.clone());
        if self.inner.mode == Mode::Server {
            crate::timers::start(self, &content_stop);
            sensors.start(&content_stop);
        }
        tracing::info!(
            generation,
            ms = started.elapsed().as_millis() as u64,
            packs = registered.packs,
            actions = registered.actions,
            rules = registered.rules,
            sensors = registered.sensors,
            "packs reloaded"
        );
        Ok(registered)
    }

    /// Runs `task` on the services' task tracker (awaited at shutdown).
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.tasks.spawn(task)
    }

    /// The runner.
    pub fn runner(&self) -> &Runner {
        &self.inner.runner
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        self.inner.runner.registry()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.inner.runner.store()
    }

    /// The bus.
    pub fn bus(&self) -> &Bus {
        self.inner.runner.bus()
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The workflow engine.
    pub fn workflows(&self) -> &Workflows {
        &self.inner.workflows
    }

    /// Cancels an execution, whatever runs it: a started workflow cancels its task executions
    /// too; anything else (a pending inquiry included) goes through the scheduler.
    ///
    /// # Errors
    /// [`CancelError`].
    pub async fn cancel(&self, id: ExecutionId) -> Result<Execution, CancelError> {
        let e = self
            .store()
            .get(id)
            .await?
            .ok_or(CancelError::NotFound(id))?;
        if e.status.is_completed() {
            return Err(CancelError::Completed {
                id,
                status: e.status,
            });
        }
        match e.action.runner_type {
            r if r.is_conducted() && e.status != ExecutionStatus::Requested => self
                .inner
                .workflows
                .cancel(id)
                .await
                .map_err(|err| match err {
                    ControlError::NotFound(id) => CancelError::NotFound(id),
                    ControlError::Store(s) => CancelError::Store(s),
                    other => CancelError::Refused(other.to_string()),
                }),
            _ => self.inner.scheduler.cancel(id).await,
        }
    }

    /// Answers a pending inquiry (`core.ask`), as StackStorm's `PUT /api/v1/inquiries/{id}`:
    /// the response is validated against the inquiry's schema, the inquiry succeeds with it,
    /// and a workflow paused on it goes on.
    ///
    /// # Errors
    /// [`RespondError`].
    pub async fn respond(
        &self,
        id: ExecutionId,
        response: Value,
    ) -> Result<Execution, RespondError> {
        let e = self
            .store()
            .get(id)
            .await?
            .ok_or(RespondError::NotFound(id))?;
        if e.action.runner_type != RunnerType::Inquirer {
            return Err(RespondError::NotInquiry(id));
        }
        if e.status != ExecutionStatus::Pending {
            return Err(RespondError::Closed {
                id,
                status: e.status,
            });
        }
        let inquiry = Inquiry::of(&e);
        inquiry.validate(&response).map_err(RespondError::Invalid)?;
        let result = inquiry.result(Some(&response));
        let done = self
            .runner()
            .finish(e, ExecutionStatus::Succeeded, result)
            .await?;
        tracing::info!(execution.id = %id, "inquiry answered");
        self.completed(&done).await;
        Ok(done)
    }

    /// Times out pending inquiries past their `ttl`, checking every second until stopped.
    fn expire_inquiries(&self) {
        let services = self.clone();
        let stop = self.inner.stop.clone();
        self.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                let filter = ExecutionFilter {
                    status: Some(ExecutionStatus::Pending),
                    limit: usize::MAX,
                    ..Default::default()
                };
                let Ok(pending) = services.store().list(&filter).await else { continue };
                let now = Timestamp::now();
                for e in pending {
                    if e.action.runner_type != RunnerType::Inquirer {
                        continue;
                    }
                    let inquiry = Inquiry::of(&e);
                    if inquiry.expires_at(e.start_timestamp) > now {
                        continue;
                    }
                    let id = e.id;
                    match services.runner().finish(e, ExecutionStatus::Timeout, inquiry.result(None)).await {
                        Ok(done) => {
                            tracing::info!(execution.id = %id, ttl = inquiry.ttl, "inquiry timed out");
                            services.completed(&done).await;
                        }
                        Err(err) => tracing::error!(execution.id = %id, error = %err, "cannot time out inquiry"),
                    }
                }
            }
        });
    }

    /// Records a `requested` execution and queues it. Returns once it is durable.
    ///
    /// # Errors
    /// [`RequestError`].
    pub async fn request(
        &self,
        reference: &Ref,
        params: &Map<String, Value>,
        user: &str,
    ) -> Result<Execution, RequestError> {
        let execution = self.runner().request(reference, params, user).await?;
        self.inner.scheduler.submit(execution.clone());
        Ok(execution)
    }

    /// Records a trigger instance (durable before this returns) and evaluates the rules
    /// listening to it in the background.
    ///
    /// # Errors
    /// [`DispatchError`]: unknown trigger type, payload refused by its schema, store failure.
    pub async fn dispatch(
        &self,
        trigger: &Ref,
        parameters: &Map<String, Value>,
        payload: Value,
    ) -> Result<TriggerInstance, DispatchError> {
        let kind = self
            .registry()
            .trigger_type(trigger)
            .ok_or_else(|| DispatchError::UnknownTrigger(trigger.clone()))?;
        kind.validate_payload(&payload)
            .map_err(|message| DispatchError::InvalidPayload {
                trigger: trigger.clone(),
                message,
            })?;
        let instance = TriggerInstance::new(trigger.clone(), parameters.clone(), payload);
        // On its own task: once the instance is committed its rules must be queued, even if
        // the caller (a webhook client hanging up) drops this future meanwhile.
        let services = self.clone();
        self.spawn(async move {
            let mut batch = Batch::new();
            batch.create_trigger_instance(&instance);
            services.store().commit(batch).await?;
            services
                .bus()
                .publish("st2.trigger_instance__create", &instance);
            services.process_later(instance.clone());
            Ok(instance)
        })
        .await
        .unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled: the runtime is shutting down.
            Err(_) => Err(DispatchError::Store(StoreError::Closed)),
        })
    }

    pub(crate) fn process_later(&self, instance: TriggerInstance) {
        let engine = self.inner.engine.clone();
        let workers = self.inner.rule_workers.clone();
        let pending = self.inner.pending_instances.ticket();
        self.inner.tasks.spawn(async move {
            // Counted until this task ends, however it ends.
            let _pending = pending;
            let _permit = workers.acquire_owned().await.expect("never closed");
            let id = instance.id;
            if let Err(e) = engine.process(instance).await {
                tracing::error!(trigger_instance.id = %id, error = %e, "rule processing failed; retried at next start");
            }
        });
    }

    /// Work accepted and not started: trigger instances waiting for the rules engine plus
    /// executions waiting for a slot.
    pub fn backlog(&self) -> usize {
        self.inner.pending_instances.len() + self.inner.scheduler.queued()
    }

    /// Whether new work from outside (a webhook, an execution request, a sensor's emits) may
    /// be accepted: the backlog is under `[server] max_backlog`. Work the server itself
    /// derives from accepted work (rules' executions, workflow tasks, action triggers) is
    /// never refused.
    ///
    /// # Errors
    /// [`Overloaded`] naming the backlog and the limit.
    pub fn admit(&self) -> Result<(), Overloaded> {
        let limit = self.registry().config().server.max_backlog;
        let backlog = self.backlog();
        if backlog >= limit {
            Err(Overloaded { backlog, limit })
        } else {
            Ok(())
        }
    }

    /// After an execution changed status outside the request path: a task execution is passed
    /// to its workflow; a new pending inquiry fires `core.st2.generic.inquiry`; a completed one
    /// fires `core.st2.generic.actiontrigger` when an enabled rule listens to it (StackStorm
    /// fires it always; with no listener it would only fill the store).
    async fn completed(&self, execution: &Execution) {
        // Whatever path finished it, its packs version is no longer needed.
        self.registry().unpin(execution.id);
        self.inner.scheduler.released(execution);
        if execution.parent.is_some() {
            self.inner.workflows.notify(execution);
        }
        if execution.action.runner_type == RunnerType::Inquirer
            && execution.status == ExecutionStatus::Pending
        {
            let trigger: Ref = INQUIRY_TRIGGER.parse().expect("built-in ref");
            let inquiry = Inquiry::of(execution);
            let payload = json!({"id": inquiry.id, "route": inquiry.route});
            if let Err(e) = self.dispatch(&trigger, &Map::new(), payload).await {
                tracing::error!(execution.id = %execution.id, error = %e, "cannot fire the inquiry trigger");
            }
        }
        if !execution.status.is_completed() {
            return;
        }
        let trigger: Ref = ACTION_TRIGGER.parse().expect("built-in ref");
        if !self.registry().has_rules_for(&trigger, &Map::new()) {
            return;
        }
        if let Err(e) = self
            .dispatch(&trigger, &Map::new(), action_trigger_payload(execution))
            .await
        {
            tracing::error!(execution.id = %execution.id, error = %e, "cannot fire actiontrigger");
        }
    }

    /// Picks up what a previous run left: `requested` executions are queued (oldest first);
    /// `scheduled`/`running` ones are queued again if their action is `idempotent`, else marked
    /// `abandoned` with the reason; pending trigger instances are evaluated again. Executions
    /// owned by another live process (a CLI running one in-process) are left to it.
    ///
    /// # Errors
    /// Store failures.
    pub async fn recover(&self) -> Result<(), StoreError> {
        let all = |status| ExecutionFilter {
            status: Some(status),
            limit: usize::MAX,
            ..Default::default()
        };
        let store = self.store().clone();
        let orphaned = |e: &Execution| {
            e.owner
                .as_deref()
                .is_none_or(|o| o == store.process() || !store.is_alive(o))
        };
        let mut requeued = 0;
        let mut abandoned = 0;
        let mut workflows = Vec::new();
        for status in [
            ExecutionStatus::Scheduled,
            ExecutionStatus::Running,
            ExecutionStatus::Pausing,
            ExecutionStatus::Paused,
            ExecutionStatus::Resuming,
            ExecutionStatus::Canceling,
        ] {
            for mut e in self
                .store()
                .list(&all(status))
                .await?
                .into_iter()
                .rev()
                .filter(|e| orphaned(e))
            {
                e.owner = Some(store.process().to_string());
                if e.action.runner_type.is_conducted() && status != ExecutionStatus::Scheduled {
                    // Its state is durable: it goes on once its task executions are looked at.
                    self.store().update(&e).await?;
                    self.inner.scheduler.adopt(&e);
                    workflows.push(e.id);
                    continue;
                }
                if !matches!(
                    status,
                    ExecutionStatus::Scheduled | ExecutionStatus::Running
                ) {
                    continue;
                }
                let idempotent = e.action.runner_type.is_conducted()
                    || self
                        .registry()
                        .packs()
                        .action(&e.action.reference)
                        .is_some_and(|a| a.idempotent);
                if idempotent {
                    e.transition(ExecutionStatus::Requested, Timestamp::now())
                        .expect("scheduled/running can be re-queued");
                    self.store().update(&e).await?;
                    requeued += 1;
                } else {
                    let reason = format!(
                        "abandoned: Squall stopped while this execution was {status}; its action is not \
                         declared idempotent, so it was not run again"
                    );
                    let done = self
                        .runner()
                        .finish(e, ExecutionStatus::Abandoned, json!({"error": reason}))
                        .await?;
                    self.completed(&done).await;
                    abandoned += 1;
                }
            }
        }
        let mut requested: Vec<Execution> = Vec::new();
        for status in [ExecutionStatus::Delayed, ExecutionStatus::Requested] {
            requested.extend(
                self.store()
                    .list(&all(status))
                    .await?
                    .into_iter()
                    .filter(|e| orphaned(e)),
            );
        }
        requested.sort_by_key(|e| std::cmp::Reverse(e.id));
        let queued = requested.len();
        for mut e in requested.into_iter().rev() {
            if e.owner.as_deref() != Some(store.process()) {
                e.owner = Some(store.process().to_string());
                self.store().update(&e).await?;
            }
            self.inner.scheduler.submit(e);
        }
        let resumed = workflows.len();
        for id in workflows {
            if let Err(e) = self.inner.workflows.reconcile(id).await {
                tracing::error!(execution.id = %id, error = %e, "workflow not resumed");
            }
        }
        let mut instances = 0;
        for status in [
            TriggerInstanceStatus::Processing,
            TriggerInstanceStatus::Pending,
        ] {
            let filter = TriggerInstanceFilter {
                status: Some(status),
                limit: usize::MAX,
                ..Default::default()
            };
            for t in self
                .store()
                .trigger_instances(&filter)
                .await?
                .into_iter()
                .rev()
            {
                self.process_later(t);
                instances += 1;
            }
        }
        if queued + abandoned + requeued + instances + resumed > 0 {
            tracing::info!(
                queued,
                requeued,
                abandoned,
                workflows = resumed,
                trigger_instances = instances,
                "recovered unfinished work"
            );
        }
        Ok(())
    }

    /// Graceful stop: timers stop, no new work starts, rule processing in progress finishes,
    /// running executions get `timeout` to finish. Queued work stays durable for the next start.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.stop.cancel();
        self.inner.scheduler.shutdown(timeout).await;
        self.inner.drained.cancel();
        // With the scheduler stopped the completion channel closes, so this ends once rule
        // processing in progress is committed.
        self.inner.tasks.close();
        let _ = tokio::time::timeout(timeout, self.inner.tasks.wait()).await;
    }
}
