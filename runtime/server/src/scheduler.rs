//! The scheduler: runs `requested` executions on a bounded pool, in the order requested.
//!
//! Work is durable before it reaches the scheduler (the record is `requested` in the store), so
//! a queue lost in a crash is rebuilt from the store at the next start (see
//! [`crate::Services::start`]).
//!
//! The dispatcher is the one place concurrency policies are decided (see [`crate::policies`]):
//! before an execution is handed to a runner it is admitted, parked `delayed` until a slot
//! frees, or canceled.

use crate::Runner;
use crate::backlog::{Backlog, Ticket};
use crate::policies::{Admission, Slots};
use squall_core::{Execution, ExecutionId, ExecutionStatus};
use squall_store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Executions recorded canceled per store commit by [`Scheduler::cancel_many`]: large enough
/// that a 10,000-item workflow cancels in a few commits, small enough that one commit does not
/// hold the store for long.
pub const CANCEL_BATCH: usize = 1000;

/// Why a cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such execution.
    #[error("execution {0} not found")]
    NotFound(ExecutionId),
    /// It already ended (StackStorm: "Action cannot be canceled").
    #[error("execution {id} cannot be canceled: it is already {status}")]
    Completed {
        /// The execution.
        id: ExecutionId,
        /// Its final status.
        status: ExecutionStatus,
    },
    /// Another live process runs it (a CLI running it in-process); cancel it there.
    #[error(
        "execution {id} is run by another live process ({owner}); it cannot be canceled from here"
    )]
    Elsewhere {
        /// The execution.
        id: ExecutionId,
        /// The process that owns it.
        owner: String,
    },
    /// Not possible for this execution now (a workflow refused it).
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An execution the scheduler holds.
#[derive(Default)]
struct Held {
    /// Fires to stop it (a running component stops where it is).
    token: CancellationToken,
    /// In the queue and not yet taken by the dispatcher: the record as queued, with its
    /// backlog ticket. A cancel withdraws it here (the ticket and the record are freed at once)
    /// and records it canceled itself, without waiting for its turn.
    queued: Option<(Box<Execution>, Ticket)>,
}

/// What a cancel found of an execution in this scheduler.
enum Claim {
    /// It was queued and is withdrawn, as queued: the dispatcher will skip it; the canceler
    /// records it.
    Withdrawn(Box<Execution>),
    /// It is waiting (a delay) or running: its token fired; it records its own end.
    Signalled,
    /// This scheduler does not hold it.
    NotHeld,
}

/// Handle to the scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    runner: Runner,
    /// The ids of queued executions, in order; each one's record and backlog ticket are in
    /// [`Held::queued`].
    queue: mpsc::UnboundedSender<ExecutionId>,
    /// Where every execution this scheduler ends goes (its parent workflow, actiontrigger).
    completed: mpsc::UnboundedSender<Execution>,
    /// Every execution this scheduler holds (waiting, queued or running), with its cancel
    /// token.
    held: Mutex<HashMap<ExecutionId, Held>>,
    tasks: TaskTracker,
    stopping: CancellationToken,
    /// Concurrency policy slots of the executions this scheduler admitted.
    slots: Slots,
    /// Executions in the queue, not yet started: part of the server's backlog.
    queued: Backlog,
}

impl Scheduler {
    /// Starts the dispatcher: at most `concurrency` executions run at once; each finished
    /// execution is sent to `completed`.
    pub fn start(
        runner: Runner,
        concurrency: usize,
        completed: mpsc::UnboundedSender<Execution>,
    ) -> Scheduler {
        let (queue, mut rx) = mpsc::unbounded_channel::<ExecutionId>();
        let inner = Arc::new(Inner {
            runner,
            queue,
            completed: completed.clone(),
            held: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            slots: Slots::default(),
            queued: Backlog::default(),
        });
        let weak = Arc::downgrade(&inner);
        inner.runner.set_submit(Box::new(move |finished, retry| {
            if let Some(inner) = weak.upgrade() {
                inner.slots.release(finished);
                Scheduler { inner }.submit(retry);
            }
        }));
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let dispatcher = inner.clone();
        inner.tasks.spawn(async move {
            loop {
                let id = tokio::select! {
                    next = rx.recv() => match next {
                        Some(id) => id,
                        None => break,
                    },
                    () = dispatcher.stopping.cancelled() => break,
                };
                let Some((execution, ticket)) = dispatcher.take(id) else {
                    continue; // withdrawn by a cancel, which recorded it
                };
                let execution = *execution;
                let Some(execution) = dispatcher.admit(execution) else {
                    continue;
                };
                let permit = tokio::select! {
                    p = permits.clone().acquire_owned() => p.expect("semaphore never closes"),
                    () = dispatcher.stopping.cancelled() => break,
                };
                drop(ticket);
                let token = dispatcher.token(execution.id);
                let worker = dispatcher.clone();
                let completed = completed.clone();
                dispatcher.tasks.spawn(async move {
                    let id = execution.id;
                    let result = worker.runner.execute(execution, token).await;
                    drop(permit);
                    worker.lock().remove(&id);
                    match result {
                        Ok(done) => {
                            if done.status.is_completed() {
                                worker.slots.release(id);
                            }
                            let _ = completed.send(done);
                        }
                        Err(e) => {
                            worker.slots.release(id);
                            tracing::error!(execution.id = %id, error = %e, "cannot record execution");
                        }
                    }
                });
            }
        });
        Scheduler { inner }
    }

    /// Queues a durable `requested` execution; one with a `delay` is recorded `delayed` and
    /// queued once it is due (or at once when canceled, so it ends `canceled`).
    pub fn submit(&self, execution: Execution) {
        if self.inner.stopping.is_cancelled() {
            return; // stays requested in the store; the next start runs it
        }
        let token = self.inner.token(execution.id);
        let wait = execution
            .not_before()
            .map(|due| due.duration_since(jiff::Timestamp::now()))
            .filter(|d| d.is_positive())
            .map(|d| d.unsigned_abs());
        match wait {
            None => {
                self.inner.enqueue(execution);
            }
            Some(wait) => {
                let inner = self.inner.clone();
                self.inner.tasks.spawn(async move {
                    let mut execution = execution;
                    if execution.status != ExecutionStatus::Delayed {
                        match inner.runner.delay(execution.clone()).await {
                            Ok(delayed) => execution = delayed,
                            Err(e) => tracing::warn!(execution.id = %execution.id, error = %e, "delay not recorded"),
                        }
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = token.cancelled() => {}
                        () = inner.stopping.cancelled() => return,
                    }
                    inner.enqueue(execution);
                });
            }
        }
    }

    /// Executions queued and not yet started: part of the server's backlog
    /// (`[server] max_backlog`).
    pub fn queued(&self) -> usize {
        self.inner.queued.len()
    }

    /// Cancels an execution: a queued or running one of this scheduler ends `canceled` (a
    /// running component is stopped); a `requested`, `delayed` or `pending` (an inquiry
    /// waiting for its answer) one no scheduler holds is marked canceled in the store, and
    /// reported like any execution that ends. Returns the record once it is canceled (or after
    /// 5 s, as it is then).
    ///
    /// # Errors
    /// [`CancelError`]: unknown id, already completed, store failure.
    pub async fn cancel(&self, id: ExecutionId) -> Result<Execution, CancelError> {
        let store = self.inner.runner.store().clone();
        let current = store.get(id).await?.ok_or(CancelError::NotFound(id))?;
        if current.status.is_completed() {
            return Err(CancelError::Completed {
                id,
                status: current.status,
            });
        }
        match self.inner.claim(id) {
            Claim::Signalled => settled(store.as_ref(), id)
                .await?
                .ok_or(CancelError::NotFound(id)),
            Claim::Withdrawn(queued) => match self.record_canceled(vec![(*queued, true)]).await {
                Ok(done) => Ok(done.into_iter().next().unwrap_or(current)),
                // Queued again with its token fired: the dispatcher ends it `canceled`.
                Err(e) => match settled(store.as_ref(), id).await? {
                    Some(done) if done.status.is_completed() => Ok(done),
                    _ => Err(e.into()),
                },
            },
            Claim::NotHeld => {
                if let Some(owner) = current.owner.clone()
                    && owner != store.process()
                    && store.is_alive(&owner)
                {
                    return Err(CancelError::Elsewhere { id, owner });
                }
                let done = self.record_canceled(vec![(current.clone(), false)]).await?;
                Ok(done.into_iter().next().unwrap_or(current))
            }
        }
    }

    /// Cancels many executions at once (the task executions of a canceled workflow): each one
    /// queued here is withdrawn and all of them are recorded canceled in one store commit per
    /// [`CANCEL_BATCH`]; running ones are stopped and record their own end; ones no scheduler
    /// holds are read and marked as [`Scheduler::cancel`] does. Completed, unknown and other
    /// live processes' executions are skipped. Returns without waiting for running ones to
    /// stop, with the ones this process runs without the scheduler (sub-workflows the
    /// conductor drives): the caller cancels those through their conductor.
    ///
    /// # Errors
    /// The first store failure; every batch is still tried, and the withdrawn executions of a
    /// batch that could not be recorded are queued again, canceled, so they still end
    /// `canceled` (by the dispatcher) and none runs.
    pub async fn cancel_many(&self, ids: &[ExecutionId]) -> Result<Vec<ExecutionId>, StoreError> {
        let store = self.inner.runner.store().clone();
        let mut first_error = None;
        let mut to_record = Vec::new();
        let mut conducted = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            match self.inner.claim(id) {
                Claim::Signalled => {}
                Claim::Withdrawn(queued) => to_record.push((*queued, true)),
                Claim::NotHeld => match store.get(id).await {
                    Ok(Some(e)) if !e.status.is_completed() => {
                        let waiting = matches!(
                            e.status,
                            ExecutionStatus::Requested
                                | ExecutionStatus::Delayed
                                | ExecutionStatus::Pending
                        );
                        let owner = e.owner.as_deref();
                        if !waiting && owner == Some(store.process()) {
                            conducted.push(id); // running here: never recorded abandoned
                        } else if !owner.is_some_and(|o| o != store.process() && store.is_alive(o))
                        {
                            to_record.push((e, false));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                },
            }
            if (to_record.len() >= CANCEL_BATCH || i + 1 == ids.len())
                && let Err(e) = self.record_canceled(std::mem::take(&mut to_record)).await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(conducted), Err)
    }

    /// Records executions no component is running as ended by a cancel, in one commit:
    /// `requested`, `delayed` and `pending` ones `canceled`; any other (running in another
    /// process, or orphaned: it cannot be stopped from here) `abandoned`. Each is then reported
    /// like any execution that ends. Each execution comes with whether it was withdrawn from
    /// this scheduler's queue: if the commit fails, those are queued again with their cancel
    /// token fired, so the dispatcher ends them `canceled` and none is lost.
    async fn record_canceled(
        &self,
        executions: Vec<(Execution, bool)>,
    ) -> Result<Vec<Execution>, StoreError> {
        if executions.is_empty() {
            return Ok(Vec::new());
        }
        let result = serde_json::json!({"message": crate::runner::CANCELED_MESSAGE});
        let ended = executions
            .iter()
            .map(|(e, _)| {
                let status = match e.status {
                    ExecutionStatus::Requested
                    | ExecutionStatus::Delayed
                    | ExecutionStatus::Pending => ExecutionStatus::Canceled,
                    _ => ExecutionStatus::Abandoned,
                };
                (e.clone(), status)
            })
            .collect();
        match self.inner.runner.finish_all(ended, &result).await {
            Ok(done) => {
                {
                    let mut held = self.inner.lock();
                    for (e, withdrawn) in &executions {
                        if *withdrawn {
                            held.remove(&e.id);
                        }
                    }
                }
                for e in &done {
                    let _ = self.inner.completed.send(e.clone());
                }
                Ok(done)
            }
            Err(error) => {
                for (e, withdrawn) in executions {
                    if withdrawn {
                        self.inner.token(e.id).cancel();
                        self.inner.enqueue(e);
                    }
                }
                Err(error)
            }
        }
    }

    /// Stops taking work and waits up to `timeout` for running executions to finish. Queued
    /// ones stay `requested` in the store for the next start.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.stopping.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(timeout, self.inner.tasks.wait())
            .await
            .is_err()
        {
            let left = self.inner.lock().len();
            tracing::warn!(
                running = left,
                "shutdown timeout: executions still running will be abandoned"
            );
        }
    }

    /// How many executions are queued or running.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().len()
    }

    /// Frees the concurrency policy slots of `execution` once it has completed (a workflow or
    /// inquiry completes after its runner returned). No effect otherwise, or if it held none.
    pub(crate) fn released(&self, execution: &Execution) {
        if execution.status.is_completed() {
            self.inner.slots.release(execution.id);
        }
    }

    /// Counts `execution` against its action's concurrency policies without checking them: a
    /// workflow found running at recovery was admitted before the restart.
    pub(crate) fn adopt(&self, execution: &Execution) {
        self.inner
            .slots
            .adopt(&self.inner.runner.registry().packs(), execution);
    }
}

/// The execution `id` once it has completed, or as it is after 5 s (a cancel's answer).
///
/// # Errors
/// Store failures.
pub(crate) async fn settled(
    store: &dyn squall_store::Store,
    id: ExecutionId,
) -> Result<Option<Execution>, StoreError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = store.get(id).await?;
        let done = now.as_ref().is_none_or(|e| e.status.is_completed());
        if done || tokio::time::Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Inner {
    /// Queues `execution` with its backlog ticket; false when the dispatcher has stopped.
    fn enqueue(&self, execution: Execution) -> bool {
        let id = execution.id;
        self.lock().entry(id).or_default().queued =
            Some((Box::new(execution), self.queued.ticket()));
        if self.queue.send(id).is_ok() {
            return true;
        }
        self.lock().remove(&id); // the dispatcher has stopped: recovery takes it up
        false
    }

    /// The dispatcher takes a queued execution, with its ticket: `None` when a cancel withdrew
    /// it meanwhile.
    fn take(&self, id: ExecutionId) -> Option<(Box<Execution>, Ticket)> {
        self.lock().get_mut(&id).and_then(|held| held.queued.take())
    }

    /// A cancel's claim on `id`: withdrawn from the queue, or its token fired. A withdrawn
    /// execution keeps its entry, token fired, until the canceler has recorded it: a second
    /// cancel meanwhile finds it signalled (and waits for the record) instead of recording it
    /// again.
    fn claim(&self, id: ExecutionId) -> Claim {
        let mut held = self.lock();
        let Some(h) = held.get_mut(&id) else {
            return Claim::NotHeld;
        };
        h.token.cancel();
        match h.queued.take() {
            Some((queued, _ticket)) => {
                drop(held);
                // A delayed execution is queued again holding the policy slot reserved for it.
                self.slots.release(id);
                Claim::Withdrawn(queued)
            }
            None => Claim::Signalled,
        }
    }

    /// Applies the concurrency policies to an execution about to run: returns it when
    /// admitted; otherwise it is parked `delayed` or ends `canceled` in a task of its own.
    fn admit(self: &Arc<Self>, execution: Execution) -> Option<Execution> {
        match self
            .slots
            .admit(&self.runner.registry().packs(), &execution)
        {
            Admission::Admitted => Some(execution),
            Admission::Cancel { message } => {
                let inner = self.clone();
                self.tasks.spawn(async move {
                    let id = execution.id;
                    tracing::info!(execution.id = %id, action.ref = %execution.action.reference, %message, "execution canceled by policy");
                    let result = serde_json::json!({"error": message});
                    match inner.runner.finish(execution, ExecutionStatus::Canceled, result).await {
                        Ok(done) => {
                            let _ = inner.completed.send(done);
                        }
                        Err(e) => tracing::error!(execution.id = %id, error = %e, "cancel by policy not recorded"),
                    }
                    inner.lock().remove(&id);
                });
                None
            }
            Admission::Delay { policy, wake } => {
                let token = self.token(execution.id);
                let inner = self.clone();
                self.tasks
                    .spawn(async move { inner.park(execution, policy, wake, token).await });
                None
            }
        }
    }

    /// Holds an execution a `delay` policy turned back: recorded `delayed`, then, once a slot
    /// was reserved for it, `requested` again and queued (StackStorm's delayed → requested). A
    /// cancel ends it `canceled`; at shutdown it stays `delayed` in the store for recovery.
    async fn park(
        self: Arc<Self>,
        mut execution: Execution,
        policy: squall_core::Ref,
        wake: tokio::sync::oneshot::Receiver<()>,
        token: CancellationToken,
    ) {
        let id = execution.id;
        tracing::info!(execution.id = %id, policy.ref = %policy, "execution delayed by policy");
        if execution.status != ExecutionStatus::Delayed {
            match self.runner.delay(execution.clone()).await {
                Ok(delayed) => execution = delayed,
                Err(e) => tracing::warn!(execution.id = %id, error = %e, "delay not recorded"),
            }
        }
        tokio::select! {
            biased;
            () = self.stopping.cancelled() => {}
            () = token.cancelled() => {
                self.slots.release(id);
                let result = serde_json::json!({"message": crate::runner::CANCELED_MESSAGE});
                match self.runner.finish(execution, ExecutionStatus::Canceled, result).await {
                    Ok(done) => {
                        let _ = self.completed.send(done);
                    }
                    Err(e) => tracing::error!(execution.id = %id, error = %e, "cancel not recorded"),
                }
                self.lock().remove(&id);
            }
            woke = wake => {
                if woke.is_err() {
                    return; // withdrawn; the store says delayed, recovery picks it up
                }
                if execution
                    .transition(ExecutionStatus::Requested, jiff::Timestamp::now())
                    .is_ok()
                    && let Err(e) = self.runner.save(&execution).await
                {
                    tracing::warn!(execution.id = %id, error = %e, "request after delay not recorded");
                }
                if !self.enqueue(execution) {
                    self.slots.release(id);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn token(&self, id: ExecutionId) -> CancellationToken {
        self.lock().entry(id).or_default().token.clone()
    }
}
