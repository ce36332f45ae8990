//! Calling a sensor component: `on-poll` or `on-webhook` in a fresh store, with the `datastore` and
//! `emit` host interfaces buffered so a call's writes and trigger instances are kept only when it
//! succeeds (the caller commits them together).

use crate::bindings::sensor::squall::plugin::sensor_types::{
    SensorContext, WebhookRequest, WebhookResponse,
};
use crate::bindings::sensor::squall::plugin::{datastore, emit};
use crate::engine::{Host, PreparedSensor};
use crate::outbound::{Denials, MAX_DENIALS};
use crate::run::{Finished, HOST_CALL_GRACE, classify, host_call_timeout};
use crate::state::RunState;
use serde_json::Value;
use squall_core::capability::HttpPolicy;
use squall_core::datastore::validate_key_name;
use squall_core::execution::Output;
use squall_core::{ExecutionStatus, Limits};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest value a sensor may store under one key, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Most distinct keys one call may write.
pub const MAX_KEY_WRITES: usize = 1000;

/// What the host asks of the server while a sensor runs. Implementations are per sensor: they
/// know its pack, its trigger types and the pack's grants. Methods are called from inside the
/// guest's call and should return quickly (a store read, a schema check).
pub trait SensorBackend: Send + Sync {
    /// The stored value of the pack-local key `name` (the system-scope key `<pack>:<name>`),
    /// `None` when unset or expired. `name` is already checked.
    ///
    /// # Errors
    /// A message for the guest (e.g. the store failed).
    fn pack_key(&self, name: &str) -> Result<Option<String>, String>;

    /// The system-scope key `name`, decrypted when it is a secret granted to the pack.
    ///
    /// # Errors
    /// A message naming the key when it is a secret the pack was not granted.
    fn system_key(&self, name: &str) -> Result<Option<String>, String>;

    /// The system-scope key `name` (one of the pack's own, named in full): its value, a
    /// secret's decrypted when `decrypt` and granted (`secret_keys`), its ciphertext without
    /// `decrypt`; `None` when unset or expired.
    ///
    /// # Errors
    /// A message for the guest naming the grant (a secret not granted, recorded as a denial),
    /// or the store or decryption failure.
    fn own_key(&self, name: &str, decrypt: bool) -> Result<Option<String>, String>;

    /// The pack's own system-scope keys whose full names start with `prefix` (which starts
    /// with `<pack>.` or `<pack>:`): `(name, value, secret)`, by name.
    ///
    /// # Errors
    /// A message for the guest (e.g. the store failed).
    fn own_keys(&self, prefix: &str) -> Result<Vec<(String, String, bool)>, String>;

    /// Checks one emitted instance: `trigger` must be one of the sensor's trigger types and
    /// `payload` must fit its `payload_schema`.
    ///
    /// # Errors
    /// A message naming the trigger type and the problem.
    fn check_emit(&self, trigger: &str, payload: &Value) -> Result<(), String>;
}

/// Which entry point to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SensorEntry {
    /// `on-poll`.
    Poll,
    /// `on-webhook`, with the request routed to the sensor.
    Webhook(WebhookCall),
}

/// A webhook request for a sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCall {
    /// The registered url (`github` for `/api/v1/webhooks/github`).
    pub url: String,
    /// Headers, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// One sensor call to make.
#[derive(Clone)]
pub struct SensorRequest {
    /// `<pack>.<class_name>`.
    pub sensor_ref: String,
    /// The sensor's pack.
    pub pack: String,
    /// The pack's config object.
    pub config: Value,
    /// Fuel, timeout, memory and `max_output` (the cap on log text kept) for this call.
    pub limits: Limits,
    /// The pack's outbound HTTP policy.
    pub http: Arc<HttpPolicy>,
    /// Datastore reads and emit checks.
    pub backend: Arc<dyn SensorBackend>,
    /// Most trigger instances one call may emit; one more fails the call.
    pub max_emits: usize,
    /// Largest payload of one emit, in bytes of JSON (`[sensors] max_payload`); a larger one
    /// fails the call.
    pub max_payload: u64,
    /// Most datastore bytes (key names plus values) one call may write
    /// (`[sensors] max_state_bytes_per_call`); more fails the call.
    pub max_state_bytes: u64,
    /// Whether the sensor may use `st2-datastore` (StackStorm's `sensor_service`): Python
    /// sensors only; any other sensor's call is refused.
    pub st2_keys: bool,
    /// Directories the sensor may read (see [`crate::ReadOnlyDir`]); empty: no file system.
    pub read_only: Vec<crate::ReadOnlyDir>,
}

/// A write to one of the pack's own keys, made by a successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWrite {
    /// The system-scope key's full name: `<pack>:<name>` for a `datastore` write, the name
    /// given (one of the pack's, `<pack>.…` or `<pack>:…`) for an `st2-datastore` write.
    pub name: String,
    /// The new value; `None` deletes the key.
    pub value: Option<String>,
    /// Seconds until it expires.
    pub ttl_seconds: Option<u32>,
}

impl KeyWrite {
    /// What the write costs against the state quotas: the key name's bytes plus the value's.
    pub fn bytes(&self) -> usize {
        self.name.len() + self.value.as_ref().map_or(0, String::len)
    }
}

/// How a sensor call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorOutcome {
    /// `succeeded`, `failed` (an error, a trap, a limit) or `timeout` (fuel or wall clock).
    pub status: ExecutionStatus,
    /// Why it did not succeed, naming the limit when one was hit.
    pub error: Option<String>,
    /// Trigger instances to record, in emit order: `(trigger ref, payload)`. Empty unless the
    /// call succeeded.
    pub emitted: Vec<(String, Value)>,
    /// Pack-local key writes to commit with them. Empty unless the call succeeded.
    pub writes: Vec<KeyWrite>,
    /// A webhook call's answer: status and JSON body.
    pub response: Option<(u16, Value)>,
    /// Log lines, captured stdout/stderr and refused capability uses.
    pub output: Output,
    /// Fuel units consumed.
    pub fuel_consumed: u64,
    /// Wall-clock time of the call.
    pub duration: Duration,
}

/// A sensor call's buffered datastore writes and emitted instances (store state).
pub(crate) struct SensorCall {
    backend: Arc<dyn SensorBackend>,
    pack: String,
    writes: BTreeMap<String, KeyWrite>,
    emitted: Vec<(String, Value)>,
    max_emits: usize,
    max_payload: u64,
    max_state_bytes: u64,
    /// Set when the call passed a limit (`max_emits`, payload or state bytes): the call fails
    /// whatever it returns.
    over_limit: Option<String>,
    denials: Arc<Mutex<Denials>>,
    /// [`SensorRequest::st2_keys`].
    st2_keys: bool,
}

impl SensorCall {
    fn deny(&self, message: String) {
        let mut d = self.denials.lock().unwrap_or_else(|e| e.into_inner());
        if d.kept.len() < MAX_DENIALS {
            d.kept.push(message);
        } else {
            d.more += 1;
        }
    }
}

/// The call's state, for `st2-datastore`: Python sensors only.
fn st2_call_state(state: &mut RunState) -> Result<&mut SensorCall, String> {
    let call = call_state(state)?;
    if !call.st2_keys {
        return Err(
            "st2-datastore is StackStorm's sensor_service, for Python sensors only; use datastore"
                .into(),
        );
    }
    Ok(call)
}

fn call_state(state: &mut RunState) -> Result<&mut SensorCall, String> {
    state
        .sensor
        .as_mut()
        .ok_or_else(|| "the datastore and emit interfaces are available to sensors only".into())
}

impl datastore::Host for RunState {
    fn get(&mut self, name: String) -> Result<Option<String>, String> {
        validate_key_name(&name).map_err(|e| e.to_string())?;
        let call = call_state(self)?;
        let stored = squall_core::datastore::pack_key_name(&call.pack, &name);
        if let Some(w) = call.writes.get(&stored) {
            return Ok(w.value.clone());
        }
        call.backend.pack_key(&name)
    }

    fn set(&mut self, name: String, value: String, ttl_seconds: Option<u32>) -> Result<(), String> {
        validate_key_name(&name).map_err(|e| e.to_string())?;
        let call = call_state(self)?;
        let stored = squall_core::datastore::pack_key_name(&call.pack, &name);
        validate_key_name(&stored)
            .map_err(|_| format!("key name {name:?} is too long for pack {:?}", call.pack))?;
        call.write(stored, Some(value), ttl_seconds, &name)
    }

    fn delete(&mut self, name: String) -> Result<bool, String> {
        let existed = datastore::Host::get(self, name.clone())?.is_some();
        let call = call_state(self)?;
        let stored = squall_core::datastore::pack_key_name(&call.pack, &name);
        call.write(stored, None, None, &name)?;
        Ok(existed)
    }

    fn get_system(&mut self, name: String) -> Result<Option<String>, String> {
        validate_key_name(&name).map_err(|e| e.to_string())?;
        let call = call_state(self)?;
        call.backend.system_key(&name).inspect_err(|e| {
            call.deny(e.clone());
        })
    }
}

impl SensorCall {
    /// Buffers a write (`value` `None`: a delete) of the full key name `stored`; `name` is the
    /// name as the guest gave it, for messages.
    fn write(
        &mut self,
        stored: String,
        value: Option<String>,
        ttl_seconds: Option<u32>,
        name: &str,
    ) -> Result<(), String> {
        let call = self;
        if let Some(ttl) = ttl_seconds
            && (ttl == 0 || u64::from(ttl) > squall_core::datastore::MAX_TTL)
        {
            return Err(format!(
                "ttl of key {name:?} must be 1 to {} seconds, not {ttl}",
                squall_core::datastore::MAX_TTL
            ));
        }
        if let Some(value) = &value
            && value.len() > MAX_VALUE_BYTES
        {
            return Err(format!(
                "value of key {name:?} is {} bytes, over the limit of {MAX_VALUE_BYTES} bytes",
                value.len()
            ));
        }
        if !call.writes.contains_key(&stored) && call.writes.len() >= MAX_KEY_WRITES {
            return Err(format!(
                "a call may write at most {MAX_KEY_WRITES} keys; {name:?} was not written"
            ));
        }
        call.writes.insert(
            stored.clone(),
            KeyWrite {
                name: stored,
                value,
                ttl_seconds,
            },
        );
        let bytes: usize = call.writes.values().map(KeyWrite::bytes).sum();
        if bytes as u64 > call.max_state_bytes {
            let message = format!(
                "the call's datastore writes are {bytes} bytes, over the limit of {} bytes \
                 ([sensors] max_state_bytes_per_call)",
                call.max_state_bytes
            );
            call.over_limit.get_or_insert_with(|| message.clone());
            return Err(message);
        }
        Ok(())
    }
}

impl RunState {
    /// `st2-datastore` in a sensor call: the pack's own keys (`<pack>.…`, `<pack>:…`, named in
    /// full) read through the call's buffered writes and written into them; other keys read as
    /// `get-system` reads them, never written; `encrypt` refused.
    pub(crate) fn sensor_st2_get(
        &mut self,
        name: &str,
        decrypt: bool,
    ) -> Result<Option<String>, String> {
        validate_key_name(name).map_err(|e| e.to_string())?;
        let call = st2_call_state(self)?;
        if !owns(&call.pack, name) {
            return call
                .backend
                .system_key(name)
                .inspect_err(|e| call.deny(e.clone()));
        }
        if let Some(w) = call.writes.get(name) {
            return Ok(w.value.clone());
        }
        call.backend
            .own_key(name, decrypt)
            .inspect_err(|e| call.deny(e.clone()))
    }

    pub(crate) fn sensor_st2_set(
        &mut self,
        name: &str,
        value: Option<String>,
        ttl_seconds: Option<u32>,
        encrypt: bool,
    ) -> Result<(), String> {
        validate_key_name(name).map_err(|e| e.to_string())?;
        let call = st2_call_state(self)?;
        if !owns(&call.pack, name) {
            let message = squall_core::datastore::write_refusal(&call.pack, "write", name);
            call.deny(message.clone());
            return Err(message);
        }
        if encrypt {
            return Err(format!(
                "key {name:?}: a sensor's writes are kept with its poll and cannot be encrypted; \
                 store secrets with `squall key set --secret`"
            ));
        }
        call.write(name.to_string(), value, ttl_seconds, name)
    }

    pub(crate) fn sensor_st2_delete(&mut self, name: &str) -> Result<bool, String> {
        validate_key_name(name).map_err(|e| e.to_string())?;
        let call = st2_call_state(self)?;
        // Refused (and recorded) as a write before anything is read.
        if !owns(&call.pack, name) {
            let message = squall_core::datastore::write_refusal(&call.pack, "delete", name);
            call.deny(message.clone());
            return Err(message);
        }
        let existed = match call.writes.get(name) {
            Some(w) => w.value.is_some(),
            None => call.backend.own_key(name, false)?.is_some(),
        };
        call.write(name.to_string(), None, None, name)?;
        Ok(existed)
    }

    pub(crate) fn sensor_st2_list(
        &mut self,
        prefix: &str,
    ) -> Result<Vec<(String, String, bool)>, String> {
        let call = st2_call_state(self)?;
        let mut found: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for narrowed in own_prefixes(&call.pack, prefix) {
            for (name, value, secret) in call.backend.own_keys(&narrowed)? {
                if owns(&call.pack, &name) {
                    found.insert(name, (value, secret));
                }
            }
            for (name, w) in call.writes.range(narrowed.clone()..) {
                if !name.starts_with(&narrowed) {
                    break;
                }
                match &w.value {
                    Some(v) => found.insert(name.clone(), (v.clone(), false)),
                    None => found.remove(name),
                };
            }
        }
        Ok(found
            .into_iter()
            .take(squall_core::datastore::MAX_LISTED)
            .map(|(name, (value, secret))| (name, value, secret))
            .collect())
    }
}

use squall_core::datastore::{own_prefixes, owns_key as owns};

impl emit::Host for RunState {
    fn emit(&mut self, trigger_ref: String, payload_json: String) -> Result<(), String> {
        let call = call_state(self)?;
        if call.emitted.len() >= call.max_emits {
            let message = format!(
                "emit limit of {} trigger instances per call exceeded",
                call.max_emits
            );
            call.over_limit.get_or_insert_with(|| message.clone());
            return Err(message);
        }
        if payload_json.len() as u64 > call.max_payload {
            let message = format!(
                "payload for {trigger_ref:?} is {} bytes, over the limit of {} bytes \
                 ([sensors] max_payload)",
                payload_json.len(),
                call.max_payload
            );
            call.over_limit.get_or_insert_with(|| message.clone());
            return Err(message);
        }
        squall_core::json::check_depth(payload_json.as_bytes())
            .map_err(|e| format!("payload for {trigger_ref:?} refused: {e}"))?;
        let payload: Value = serde_json::from_str(&payload_json)
            .map_err(|e| format!("payload for {trigger_ref:?} is not valid JSON: {e}"))?;
        call.backend.check_emit(&trigger_ref, &payload)?;
        call.emitted.push((trigger_ref, payload));
        Ok(())
    }
}

impl crate::bindings::sensor::squall::plugin::sensor_types::Host for RunState {}

enum Ended<T> {
    Returned(Result<T, String>),
    Trapped(wasmtime::Error),
    HostCallTimeout,
}

impl Host {
    /// Calls `entry` of `sensor` once for `request`, in a fresh store under `request.limits`
    /// with the pack's HTTP grants. Never fails: every way the call can end is a
    /// [`SensorOutcome`], and only a successful one carries emitted instances and key writes.
    pub async fn call_sensor(
        &self,
        sensor: &PreparedSensor,
        request: SensorRequest,
        entry: SensorEntry,
    ) -> SensorOutcome {
        let limits = request.limits;
        let denials = Arc::new(Mutex::new(Denials::default()));
        let call = SensorCall {
            backend: request.backend.clone(),
            pack: request.pack.clone(),
            writes: BTreeMap::new(),
            emitted: Vec::new(),
            max_emits: request.max_emits,
            max_payload: request.max_payload,
            max_state_bytes: request.max_state_bytes,
            st2_keys: request.st2_keys,
            over_limit: None,
            denials: denials.clone(),
        };
        let mut sandbox = match self.sandbox(
            limits,
            request.http.clone(),
            Some(call),
            crate::run::Gates {
                read_only: request.read_only.clone(),
                ..crate::run::Gates::default()
            },
        ) {
            Ok(s) => s,
            Err(e) => return not_run(e),
        };
        let ctx = SensorContext {
            sensor_ref: request.sensor_ref.clone(),
            pack: request.pack.clone(),
            config_json: request.config.to_string(),
        };
        let store = &mut sandbox.store;
        let ended: Ended<Option<WebhookResponse>> = {
            let call = async {
                let instance = sensor.pre.instantiate_async(&mut *store).await?;
                match entry {
                    SensorEntry::Poll => instance
                        .call_on_poll(&mut *store, &ctx)
                        .await
                        .map(|r| r.map(|()| None)),
                    SensorEntry::Webhook(w) => {
                        let req = WebhookRequest {
                            url: w.url,
                            headers: w.headers,
                            body: w.body,
                        };
                        instance
                            .call_on_webhook(&mut *store, &ctx, &req)
                            .await
                            .map(|r| r.map(Some))
                    }
                }
            };
            match tokio::time::timeout(limits.timeout + HOST_CALL_GRACE, call).await {
                Ok(Ok(returned)) => Ended::Returned(returned),
                Ok(Err(trap)) => Ended::Trapped(trap),
                Err(_) => Ended::HostCallTimeout,
            }
        };
        let Finished {
            mut output,
            memory_exceeded,
            fuel_consumed,
            duration,
        } = sandbox.finish();
        let mut sensor_denials =
            std::mem::take(&mut *denials.lock().unwrap_or_else(|e| e.into_inner()));
        output.denials.append(&mut sensor_denials.kept);
        let state = sandbox.store.data_mut().sensor.take();
        let (writes, emitted, over_limit) = match state {
            Some(c) => (c.writes.into_values().collect(), c.emitted, c.over_limit),
            None => (Vec::new(), Vec::new(), None),
        };
        let settings_stack = self.inner.settings.max_wasm_stack;
        let (status, error, response) = match ended {
            Ended::Returned(_) if over_limit.is_some() => {
                (ExecutionStatus::Failed, over_limit, None)
            }
            Ended::Returned(Ok(response)) => (
                ExecutionStatus::Succeeded,
                None,
                response.map(|r| {
                    let body = squall_core::json::check_depth(r.body_json.as_bytes())
                        .ok()
                        .and_then(|()| serde_json::from_str(&r.body_json).ok())
                        .unwrap_or_else(|| Value::String(r.body_json.clone()));
                    (r.status, body)
                }),
            ),
            Ended::Returned(Err(message)) => (ExecutionStatus::Failed, Some(message), None),
            Ended::HostCallTimeout => {
                let (s, r) = host_call_timeout(&limits);
                (s, error_text(&r), None)
            }
            Ended::Trapped(e) => {
                let (s, r) = classify(&e, &limits, memory_exceeded, settings_stack, &output);
                (s, error_text(&r), None)
            }
        };
        let ok = status == ExecutionStatus::Succeeded;
        SensorOutcome {
            status,
            error,
            emitted: if ok { emitted } else { Vec::new() },
            writes: if ok { writes } else { Vec::new() },
            response,
            output,
            fuel_consumed,
            duration,
        }
    }
}

fn error_text(result: &Value) -> Option<String> {
    result
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn not_run(message: String) -> SensorOutcome {
    SensorOutcome {
        status: ExecutionStatus::Failed,
        error: Some(message),
        emitted: Vec::new(),
        writes: Vec::new(),
        response: None,
        output: Output::default(),
        fuel_consumed: 0,
        duration: Duration::ZERO,
    }
}
