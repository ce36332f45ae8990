//! Running one execution: a fresh store and instance under the execution's limits.

use crate::bindings::squall::plugin::action_types::Context;
use crate::capture::CapturePipe;
use crate::engine::{Host, PreparedComponent};
use crate::outbound::{Denials, OutboundHttp};
use crate::sensor::SensorCall;
use crate::state::{LogBuffer, MAX_RESOURCES, MemoryLimiter, RunState};
use serde_json::{Value, json};
use squall_core::capability::HttpPolicy;
use squall_core::execution::Output;
use squall_core::{ExecutionStatus, Limits};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

/// Extra wall-clock time, past the timeout, before the host abandons a guest blocked in a host
/// call (the epoch interrupt normally stops a running guest within one tick of the timeout).
pub(crate) const HOST_CALL_GRACE: Duration = Duration::from_millis(50);

/// Bytes a guest may hand the host in one call (a log line, an HTTP body chunk, its result):
/// twice `max_output` plus 64 KiB, so an over-long result is still read and reported as such
/// while a guest cannot make the host copy unbounded data (wasmtime's default is 128 MiB).
fn hostcall_fuel(max_output: usize) -> usize {
    max_output.saturating_mul(2).saturating_add(64 * 1024)
}

/// Bytes of randomness a guest may ask for in one call.
const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

/// Who and what an execution is, as the component sees it (`squall:plugin/action-types.context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    /// The execution id.
    pub execution_id: String,
    /// `<pack>.<name>`.
    pub action_ref: String,
    /// The pack.
    pub pack: String,
    /// Who requested it.
    pub user: String,
}

/// One run to make.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Passed to the component.
    pub context: RunContext,
    /// The parameters object passed as `params-json`.
    pub params: Value,
    /// The limits to enforce.
    pub limits: Limits,
    /// The outbound HTTP policy of the action's pack.
    pub http: Arc<HttpPolicy>,
    /// What runs the commands the component asks for (`process` import) under its pack's
    /// grants; `None` refuses every one.
    pub process: Option<Arc<dyn crate::process::ProcessGate>>,
    /// What dispatches the trigger instances the component asks for (`triggers` import) under
    /// its pack's grants; `None` refuses every one.
    pub triggers: Option<Arc<dyn TriggerGate>>,
    /// What sends the mail the component asks for (`mail` import) under its pack's grants;
    /// `None` refuses every message.
    pub mail: Option<Arc<dyn MailGate>>,
    /// What reads and writes the datastore for the component (`st2-datastore` import) under
    /// its pack's grants; `None` refuses every call.
    pub keys: Option<Arc<dyn KeyGate>>,
    /// Directories the component may read (`wasi:filesystem`, read-only); empty: no file
    /// system at all.
    pub read_only: Vec<ReadOnlyDir>,
}

/// A host directory a component sees, read-only, at `guest` (`wasi:filesystem` preopen):
/// what a Python pack's component reads at run time — its vendored dependencies' data files
/// (botocore's service models, pytz's zone files) and its own files — mounted where
/// componentize-py mounted them while building (`/1` the pack, `/2` its dependencies), since
/// modules remember those paths in `__file__`. Links leading out of `host` are not followed
/// (cap-std), nothing can be written, created or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyDir {
    /// The directory on the host.
    pub host: std::path::PathBuf,
    /// Where the component sees it, e.g. `/2`.
    pub guest: String,
}

/// Why a gate ([`crate::process::ProcessGate`], [`TriggerGate`], [`MailGate`]) refused a
/// call. A denial (a grant is missing) is recorded with the execution's other capability
/// denials, under the same bound as outbound HTTP's; either way the component gets the
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateError {
    /// Not granted: the message names the grant to add.
    Denied(String),
    /// Anything else (no such program, a bad payload, a budget used up, the relay refused).
    Failed(String),
}

impl From<String> for GateError {
    fn from(message: String) -> Self {
        GateError::Failed(message)
    }
}

impl From<&str> for GateError {
    fn from(message: &str) -> Self {
        GateError::Failed(message.to_string())
    }
}

/// One message a component asks to send (see `wit/squall.wit`, interface `mail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    /// An address, or a name (`@<host name>` is added).
    pub sender: String,
    /// Comma-separated addresses.
    pub recipients: String,
    /// The subject.
    pub subject: String,
    /// `text/plain` or `text/html`.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// Sends the mail one execution's component asks for, under its pack's `smtp_allow` grant
/// and the operator's `[smtp]` relay. The server implements it per execution.
#[async_trait::async_trait]
pub trait MailGate: Send + Sync {
    /// Checks the grant and delivers `message` to the relay.
    ///
    /// # Errors
    /// A message for the component: the refusal naming the grant, no relay, a bad address, the
    /// relay's answer, a timeout, the per-execution budget used up.
    async fn send(&self, message: MailMessage) -> Result<(), GateError>;
}

impl std::fmt::Debug for dyn MailGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailGate")
    }
}

/// Dispatches the trigger instances one execution's component asks for, under its pack's
/// `triggers` grant. The server implements it per execution; the host calls it from the
/// component's `triggers.dispatch` import.
#[async_trait::async_trait]
pub trait TriggerGate: Send + Sync {
    /// Checks the grant, the trigger type and the payload (JSON text, as the component gave
    /// it); dispatches the instance (durable before this returns) and returns its id.
    ///
    /// # Errors
    /// A message for the component: the refusal naming the grant to add, an unknown type, a
    /// payload its `payload_schema` refuses, the per-execution budget used up.
    async fn dispatch(&self, trigger: String, payload_json: String) -> Result<String, GateError>;
}

impl std::fmt::Debug for dyn TriggerGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TriggerGate")
    }
}

/// The datastore as one execution's Python component reaches it (`st2-datastore` import,
/// StackStorm's `action_service`), under its pack's grants. The server implements it per
/// execution: the pack's own keys (`<pack>.…`, `<pack>:…`) read and written, other keys read
/// as `datastore.get-system` reads them and never written.
#[async_trait::async_trait]
pub trait KeyGate: Send + Sync {
    /// The pack's own keys starting with `prefix`: `(name, value, secret)`, a secret's value
    /// its ciphertext.
    ///
    /// # Errors
    /// A message for the component (a bad prefix, a store failure).
    async fn list(&self, prefix: String) -> Result<Vec<(String, String, bool)>, GateError>;

    /// The value of `name` (a secret's ciphertext unless `decrypt`), `None` when unset.
    ///
    /// # Errors
    /// [`GateError::Denied`] for a secret of another pack's the pack was not granted; a bad
    /// name; a store failure.
    async fn get(&self, name: String, decrypt: bool) -> Result<Option<String>, GateError>;

    /// Sets the pack's key `name`.
    ///
    /// # Errors
    /// [`GateError::Denied`] for a key that is not the pack's; a bad name, value or ttl.
    async fn set(
        &self,
        name: String,
        value: String,
        ttl_seconds: Option<u32>,
        encrypt: bool,
    ) -> Result<(), GateError>;

    /// Deletes the pack's key `name`; `false` when it was not set.
    ///
    /// # Errors
    /// [`GateError::Denied`] for a key that is not the pack's; a store failure.
    async fn delete(&self, name: String) -> Result<bool, GateError>;
}

impl std::fmt::Debug for dyn KeyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyGate")
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// `succeeded`, `failed` or `timeout`.
    pub status: ExecutionStatus,
    /// The result to record: the component's JSON on success; on failure the component's own
    /// result, or `{"error": <message>}` (traps and limits say which limit and its value).
    pub result: Value,
    /// What the component wrote and what the host refused it.
    pub output: Output,
    /// Fuel units consumed.
    pub fuel_consumed: u64,
    /// Wall-clock time from instantiation to the end of the call.
    pub duration: Duration,
}

impl RunOutcome {
    /// The failure message (`result.error`), if the run did not succeed.
    pub fn error(&self) -> Option<&str> {
        match self.status {
            ExecutionStatus::Succeeded => None,
            _ => self.result.get("error").and_then(Value::as_str),
        }
    }
}

enum Ended {
    Returned(Result<String, crate::bindings::ActionError>),
    Trapped(wasmtime::Error),
    HostCallTimeout,
}

impl Host {
    /// Runs `component` once for `request` in a fresh store: no filesystem, no environment, no
    /// sockets, stdin empty, stdout/stderr captured (bounded by `max_output`), outbound HTTP
    /// only as `request.http` allows, fuel/timeout/memory as `request.limits` says.
    ///
    /// Never fails: every way a run can end — result, action error, trap, limit, host-call
    /// timeout — is a [`RunOutcome`].
    pub async fn run(&self, component: &PreparedComponent, request: RunRequest) -> RunOutcome {
        let limits = request.limits;
        let max_output = usize::try_from(limits.max_output).unwrap_or(usize::MAX);
        let mut sandbox = match self.sandbox(
            limits,
            request.http.clone(),
            None,
            Gates {
                process: request.process,
                triggers: request.triggers,
                mail: request.mail,
                keys: request.keys,
                read_only: request.read_only,
            },
        ) {
            Ok(s) => s,
            Err(e) => {
                return failed(json!({"error": e}), Output::default(), 0, Duration::ZERO);
            }
        };
        let ctx = Context {
            execution_id: request.context.execution_id,
            action_ref: request.context.action_ref,
            pack: request.context.pack,
            user: request.context.user,
        };
        let params = request.params.to_string();
        let store = &mut sandbox.store;
        let call = async {
            let instance = component.pre.instantiate_async(&mut *store).await?;
            instance.call_run(&mut *store, &ctx, &params).await
        };
        let ended = match tokio::time::timeout(limits.timeout + HOST_CALL_GRACE, call).await {
            Ok(Ok(returned)) => Ended::Returned(returned),
            Ok(Err(trap)) => Ended::Trapped(trap),
            Err(_) => Ended::HostCallTimeout,
        };
        let Finished {
            output,
            memory_exceeded,
            fuel_consumed,
            duration,
        } = sandbox.finish();
        let settings_stack = self.inner.settings.max_wasm_stack;
        let (status, result) = match ended {
            Ended::Returned(Ok(text)) if text.len() > max_output => (
                ExecutionStatus::Failed,
                json!({"error": format!(
                    "result is {} bytes, over the max_output limit of {} bytes",
                    text.len(),
                    limits.max_output
                )}),
            ),
            Ended::Returned(Ok(text)) => match squall_core::json::check_depth(text.as_bytes())
                .and_then(|()| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()))
            {
                Ok(v) => (ExecutionStatus::Succeeded, v),
                Err(e) => (
                    ExecutionStatus::Failed,
                    json!({"error": format!("result refused: {e}")}),
                ),
            },
            Ended::Returned(Err(action_error))
                if action_error.message.len()
                    + action_error.result_json.as_ref().map_or(0, String::len)
                    > max_output =>
            {
                (
                    ExecutionStatus::Failed,
                    json!({"error": format!(
                        "the component's error and its result are {} bytes, over the max_output limit of {} bytes",
                        action_error.message.len() + action_error.result_json.as_ref().map_or(0, String::len),
                        limits.max_output
                    )}),
                )
            }
            Ended::Returned(Err(action_error)) => {
                let result = action_error
                    .result_json
                    .as_deref()
                    .filter(|r| squall_core::json::check_depth(r.as_bytes()).is_ok())
                    .and_then(|r| serde_json::from_str::<Value>(r).ok())
                    .map(|r| match r {
                        Value::Object(mut m) => {
                            m.entry("error")
                                .or_insert_with(|| Value::String(action_error.message.clone()));
                            Value::Object(m)
                        }
                        other => json!({"error": action_error.message, "result": other}),
                    })
                    .unwrap_or_else(|| json!({"error": action_error.message}));
                (ExecutionStatus::Failed, result)
            }
            Ended::HostCallTimeout => host_call_timeout(&limits),
            Ended::Trapped(e) => classify(&e, &limits, memory_exceeded, settings_stack, &output),
        };
        if status != ExecutionStatus::Succeeded {
            tracing::debug!(%status, fuel_consumed, ?duration, result = %result, "run ended");
        }
        RunOutcome {
            status,
            result,
            output,
            fuel_consumed,
            duration,
        }
    }
}

/// The capabilities an action call may be given beyond WASI and HTTP (none for sensors).
#[derive(Default)]
pub(crate) struct Gates {
    pub(crate) process: Option<Arc<dyn crate::process::ProcessGate>>,
    pub(crate) triggers: Option<Arc<dyn TriggerGate>>,
    pub(crate) mail: Option<Arc<dyn MailGate>>,
    pub(crate) keys: Option<Arc<dyn KeyGate>>,
    pub(crate) read_only: Vec<ReadOnlyDir>,
}

/// A fresh store for one call, with its captured streams and the clock started.
pub(crate) struct Sandbox {
    pub(crate) store: Store<RunState>,
    stdout: CapturePipe,
    stderr: CapturePipe,
    denials: Arc<Mutex<Denials>>,
    started: Instant,
    fuel: u64,
}

/// What a finished call left in its sandbox.
pub(crate) struct Finished {
    pub(crate) output: Output,
    pub(crate) memory_exceeded: Option<usize>,
    pub(crate) fuel_consumed: u64,
    pub(crate) duration: Duration,
}

impl Host {
    /// A fresh store under `limits`: no filesystem, environment or sockets, stdin empty,
    /// stdout/stderr captured (bounded by `max_output`), outbound HTTP as `http` allows, fuel,
    /// memory and the wall-clock deadline (epoch) set; `sensor` carries a sensor call's
    /// datastore and emit state.
    pub(crate) fn sandbox(
        &self,
        limits: Limits,
        http: Arc<HttpPolicy>,
        sensor: Option<SensorCall>,
        gates: Gates,
    ) -> Result<Sandbox, String> {
        let Gates {
            process,
            triggers,
            mail,
            keys,
            read_only,
        } = gates;
        let max_output = usize::try_from(limits.max_output).unwrap_or(usize::MAX);
        let stdout = CapturePipe::new(max_output);
        let stderr = CapturePipe::new(max_output);
        let denials = Arc::new(Mutex::new(Denials::default()));
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .max_random_size(MAX_RANDOM_BYTES);
        for dir in &read_only {
            wasi.preopened_dir(&dir.host, &dir.guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| format!("cannot open {} for reading: {e:#}", dir.host.display()))?;
        }
        let wasi = wasi.build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let state = RunState {
            wasi,
            table,
            http: WasiHttpCtx::new(),
            outbound: OutboundHttp {
                policy: http,
                denials: denials.clone(),
                reserved: self.inner.reserved.clone(),
                per_call: Arc::new(tokio::sync::Semaphore::new(
                    self.inner.settings.max_outbound_per_call as usize,
                )),
                global: self.inner.outbound.clone(),
            },
            memory: MemoryLimiter::new(limits.memory),
            log: LogBuffer::new(max_output),
            sensor,
            process,
            triggers,
            mail,
            keys,
            deadline: Instant::now() + limits.timeout,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_hostcall_fuel(hostcall_fuel(max_output));
        store
            .set_fuel(limits.fuel)
            .map_err(|e| format!("cannot set fuel: {e:#}"))?;
        let started = Instant::now();
        let deadline = started + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield to the async runtime every tick so one guest never holds a worker.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(Sandbox {
            store,
            stdout,
            stderr,
            denials,
            started,
            fuel: limits.fuel,
        })
    }
}

impl Sandbox {
    /// Stops the clock and collects what the call wrote and what the host refused it.
    pub(crate) fn finish(&mut self) -> Finished {
        let duration = self.started.elapsed();
        let fuel_consumed = self.fuel.saturating_sub(self.store.get_fuel().unwrap_or(0));
        let state = self.store.data_mut();
        let (log, log_dropped_lines) = state.log.take();
        let memory_exceeded = state.memory.exceeded;
        let (stdout, stdout_dropped_bytes) = self.stdout.take();
        let (stderr, stderr_dropped_bytes) = self.stderr.take();
        let output = Output {
            stdout,
            stderr,
            log,
            stdout_dropped_bytes,
            stderr_dropped_bytes,
            log_dropped_lines,
            denials: {
                let mut d =
                    std::mem::take(&mut *self.denials.lock().unwrap_or_else(|e| e.into_inner()));
                if d.more > 0 {
                    d.kept
                        .push(format!("... and {} more denials like these", d.more));
                }
                d.kept
            },
        };
        Finished {
            output,
            memory_exceeded,
            fuel_consumed,
            duration,
        }
    }
}

/// The outcome of a call that overran its timeout while blocked in a host call.
pub(crate) fn host_call_timeout(limits: &Limits) -> (ExecutionStatus, Value) {
    (
        ExecutionStatus::Timeout,
        json!({"error": format!(
            "timeout of {} exceeded (the component was waiting in a host call)",
            seconds(limits.timeout)
        )}),
    )
}

fn failed(result: Value, output: Output, fuel_consumed: u64, duration: Duration) -> RunOutcome {
    RunOutcome {
        status: ExecutionStatus::Failed,
        result,
        output,
        fuel_consumed,
        duration,
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// Names the limit or fault that ended a run that did not return.
pub(crate) fn classify(
    e: &wasmtime::Error,
    limits: &Limits,
    memory_exceeded: Option<usize>,
    stack: u64,
    output: &Output,
) -> (ExecutionStatus, Value) {
    use ExecutionStatus::{Failed, Timeout};
    if let Some(asked) = memory_exceeded {
        return (
            Failed,
            json!({"error": format!(
                "memory limit of {} bytes exceeded: the component tried to grow its memory to {asked} bytes",
                limits.memory
            )}),
        );
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        let (status, message) = match trap {
            Trap::OutOfFuel => (
                Timeout,
                format!("fuel limit of {} units exhausted", limits.fuel),
            ),
            Trap::Interrupt => (
                Timeout,
                format!("timeout of {} exceeded", seconds(limits.timeout)),
            ),
            Trap::StackOverflow => (
                Failed,
                format!(
                    "stack overflow: the component exceeded the {stack} byte WebAssembly stack"
                ),
            ),
            Trap::MemoryOutOfBounds => (
                Failed,
                "component trapped: out of bounds memory access (often the component's own stack \
                 overflowing into its data, e.g. from deep recursion)"
                    .to_string(),
            ),
            Trap::UnreachableCodeReached => match last_lines(&output.stderr) {
                Some(panic) => (Failed, format!("component panicked: {panic}")),
                None => (
                    Failed,
                    "component trapped: unreachable code reached (an abort)".to_string(),
                ),
            },
            other => (Failed, format!("component trapped: {other}")),
        };
        return (status, json!({"error": message}));
    }
    if format!("{e:#}").contains("fuel allocated for hostcalls has been exhausted") {
        return (
            Failed,
            json!({"error": format!(
                "output limit exceeded: the component passed more than {} bytes to the host in one call \
                 (max_output is {} bytes)",
                hostcall_fuel(usize::try_from(limits.max_output).unwrap_or(usize::MAX)),
                limits.max_output
            )}),
        );
    }
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return (
            Failed,
            json!({"error": format!("component exited with code {} before returning a result", exit.0)}),
        );
    }
    (Failed, json!({"error": format!("component failed: {e:#}")}))
}

/// The last few non-empty lines of `text` (where a Rust panic message lands), joined.
fn last_lines(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    let start = lines.len().saturating_sub(3);
    Some(lines[start..].join(" | "))
}
