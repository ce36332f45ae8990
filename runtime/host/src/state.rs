//! Per-execution store state: WASI context, HTTP context, log buffer, memory limiter.

use crate::bindings::squall::plugin::log::{self, Level};
use crate::outbound::OutboundHttp;
use squall_core::execution::LogLine;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Largest table a component may grow to, in elements.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Component-model resources (streams, requests, ...) one execution may hold at once.
pub(crate) const MAX_RESOURCES: usize = 10_000;

/// Everything a store holds for one execution.
pub(crate) struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: OutboundHttp,
    pub(crate) memory: MemoryLimiter,
    pub(crate) log: LogBuffer,
    /// A sensor call's datastore writes and emitted instances; `None` for actions.
    pub(crate) sensor: Option<crate::sensor::SensorCall>,
    /// What runs the component's commands (`process` import); `None`: refused.
    pub(crate) process: Option<std::sync::Arc<dyn crate::process::ProcessGate>>,
    /// What dispatches the component's trigger instances (`triggers` import); `None`: refused.
    pub(crate) triggers: Option<std::sync::Arc<dyn crate::run::TriggerGate>>,
    /// What sends the component's mail (`mail` import); `None`: refused.
    pub(crate) mail: Option<std::sync::Arc<dyn crate::run::MailGate>>,
    /// What reads and writes the component's datastore keys (`st2-datastore` import);
    /// `None`: refused.
    pub(crate) keys: Option<std::sync::Arc<dyn crate::run::KeyGate>>,
    /// When the call's time is up: no command runs past it.
    pub(crate) deadline: std::time::Instant,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl log::Host for RunState {
    fn log(&mut self, level: Level, message: String) {
        self.log.push(level, message);
    }
}

impl crate::bindings::squall::plugin::action_types::Host for RunState {}

use crate::bindings::extended::squall::plugin::mail as wit_mail;

impl RunState {
    /// A gate's refusal as the component hears it; a denial is recorded with the execution's
    /// other capability denials (bounded as outbound HTTP's).
    fn refused(&self, error: crate::GateError) -> String {
        match error {
            crate::GateError::Denied(message) => {
                self.outbound
                    .denials
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(&self.outbound.policy.pack, message.clone());
                message
            }
            crate::GateError::Failed(message) => message,
        }
    }
}
use crate::bindings::extended::squall::plugin::process as wit_process;
use crate::bindings::extended::squall::plugin::triggers as wit_triggers;
use crate::bindings::python::squall::plugin::st2_datastore as wit_keys;

impl wit_mail::Host for RunState {
    async fn send(&mut self, message: wit_mail::Message) -> Result<(), String> {
        let Some(gate) = self.mail.clone() else {
            return Err(
                "mail cannot be sent here: no mail capability is given to this call".into(),
            );
        };
        gate.send(crate::run::MailMessage {
            sender: message.sender,
            recipients: message.recipients,
            subject: message.subject,
            content_type: message.content_type,
            body: message.body,
        })
        .await
        .map_err(|e| self.refused(e))
    }
}

impl RunState {
    fn key_gate(&self) -> Result<std::sync::Arc<dyn crate::run::KeyGate>, String> {
        self.keys.clone().ok_or_else(|| {
            "the datastore cannot be reached here: no st2-datastore capability is given to this call"
                .to_string()
        })
    }
}

/// In a sensor call (`self.sensor` set) the datastore is the call's, buffered with its trigger
/// instances (see `sensor.rs`); in an action's, the [`crate::run::KeyGate`] the server gave.
impl wit_keys::Host for RunState {
    async fn list_values(&mut self, prefix: String) -> Result<Vec<(String, String, bool)>, String> {
        if self.sensor.is_some() {
            return self.sensor_st2_list(&prefix);
        }
        let gate = self.key_gate()?;
        gate.list(prefix).await.map_err(|e| self.refused(e))
    }

    async fn get_value(&mut self, name: String, decrypt: bool) -> Result<Option<String>, String> {
        if self.sensor.is_some() {
            return self.sensor_st2_get(&name, decrypt);
        }
        let gate = self.key_gate()?;
        gate.get(name, decrypt).await.map_err(|e| self.refused(e))
    }

    async fn set_value(
        &mut self,
        name: String,
        value: String,
        ttl_seconds: Option<u32>,
        encrypt: bool,
    ) -> Result<(), String> {
        if self.sensor.is_some() {
            return self.sensor_st2_set(&name, Some(value), ttl_seconds, encrypt);
        }
        let gate = self.key_gate()?;
        gate.set(name, value, ttl_seconds, encrypt)
            .await
            .map_err(|e| self.refused(e))
    }

    async fn delete_value(&mut self, name: String) -> Result<bool, String> {
        if self.sensor.is_some() {
            return self.sensor_st2_delete(&name);
        }
        let gate = self.key_gate()?;
        gate.delete(name).await.map_err(|e| self.refused(e))
    }
}

impl wit_triggers::Host for RunState {
    async fn dispatch(
        &mut self,
        trigger_ref: String,
        payload_json: String,
    ) -> Result<String, String> {
        let Some(gate) = self.triggers.clone() else {
            return Err(
                "trigger instances cannot be dispatched here: no triggers capability is given to this call (a sensor emits with emit)".into(),
            );
        };
        gate.dispatch(trigger_ref, payload_json)
            .await
            .map_err(|e| self.refused(e))
    }
}

impl wit_process::Host for RunState {
    async fn run(
        &mut self,
        request: wit_process::CommandRequest,
    ) -> Result<wit_process::CommandOutput, String> {
        use crate::process::{CommandRequest, Exit};
        use std::time::{Duration, Instant};
        let Some(gate) = self.process.clone() else {
            return Err(
                "commands cannot run here: no process capability is given to this call".into(),
            );
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let timeout = request
            .timeout_seconds
            .filter(|s| *s > 0)
            .map_or(remaining, |s| Duration::from_secs(s.into()).min(remaining));
        if timeout.is_zero() {
            return Err("the execution has no time left to run a command".into());
        }
        let outcome = gate
            .run(CommandRequest {
                argv: request.argv,
                env: request.env,
                cwd: request.cwd,
                stdin: request.stdin,
                timeout,
            })
            .await
            .map_err(|e| self.refused(e))?;
        let (exit_code, signal, timed_out) = match outcome.exit {
            Exit::Code(c) => (Some(c), None, false),
            Exit::Signal(s) => (None, Some(s), false),
            Exit::TimedOut => (None, None, true),
            Exit::Canceled => return Err("the execution was canceled".into()),
        };
        Ok(wit_process::CommandOutput {
            exit_code,
            signal,
            timed_out,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            stdout_bytes: outcome.stdout_bytes,
            stderr_bytes: outcome.stderr_bytes,
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// What one kept log line costs beyond its text, in bytes (the record's level, framing), so a
/// flood of empty lines is bounded too.
const LINE_OVERHEAD: usize = 32;

/// Log lines of one execution, at most `capacity` bytes counting [`LINE_OVERHEAD`] per line.
pub(crate) struct LogBuffer {
    lines: Vec<LogLine>,
    bytes: usize,
    capacity: usize,
    dropped: u64,
}

impl LogBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        LogBuffer {
            lines: Vec::new(),
            bytes: 0,
            capacity,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, level: Level, message: String) {
        let cost = message.len() + LINE_OVERHEAD;
        if self.bytes + cost > self.capacity {
            self.dropped += 1;
            return;
        }
        self.bytes += cost;
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.lines.push(LogLine {
            level: level.to_string(),
            message,
        });
    }

    /// The kept lines and how many were dropped.
    pub(crate) fn take(&mut self) -> (Vec<LogLine>, u64) {
        (std::mem::take(&mut self.lines), self.dropped)
    }
}

/// Caps the sum of a component's linear memories at `limit` bytes and remembers the growth that
/// was refused, so the outcome can name the limit instead of a generic trap.
pub(crate) struct MemoryLimiter {
    limit: usize,
    total: usize,
    /// The total the component asked for when it was refused, in bytes.
    pub(crate) exceeded: Option<usize>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            total: 0,
            exceeded: None,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.total.saturating_add(desired.saturating_sub(current));
        if wanted > self.limit {
            self.exceeded = Some(wanted);
            // An error (not `Ok(false)`) traps at once, as StoreLimits' `trap_on_grow_failure`:
            // a guest that cannot handle a failed grow would otherwise abort with a less clear
            // message.
            wasmtime::bail!(
                "memory limit of {} bytes exceeded (asked for {wanted} bytes)",
                self.limit
            );
        }
        self.total = wanted;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
