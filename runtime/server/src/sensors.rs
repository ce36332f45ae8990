//! The sensor container: runs every enabled sensor of the loaded packs (see
//! [`squall_core::sensor`]) and routes webhooks to the sensors that registered them.
//!
//! - **Polling.** One task per sensor calls its component's `poll` at start and then every
//!   `poll_interval`, each call in a fresh sandbox under the sensor's limits (operator defaults,
//!   the YAML's `limits:`, capped by `[limits.max]`) with the pack's HTTP grants, the pack's
//!   config and its pack-local datastore keys. At most [`SENSOR_SLOTS`] sensor calls run at once.
//! - **Exactly once.** A call's emitted trigger instances and its datastore writes are committed
//!   in one store transaction when it returns successfully, and dropped when it fails: sensor
//!   state kept in the datastore (e.g. the last status seen) therefore always matches what was
//!   emitted, and a restart resumes from the last successful call without emitting again.
//! - **Containment.** A call that fails, traps or hits a limit (fuel, timeout, memory,
//!   `max_emits`) is reported and the sensor is backed off: the wait doubles per consecutive
//!   failure, from `poll_interval` up to [`MAX_BACKOFF`]; one success resets it. Nothing a
//!   sensor does stops the server or other sensors.
//! - **Webhooks.** `POST /api/v1/webhooks/<url>` for a url in a sensor's `webhooks:` calls its
//!   `webhook` entry point (see [`Sensors::webhook`]); the sensor verifies the request and
//!   answers. One sensor's calls (polls and webhook requests) run one at a time, so each sees
//!   the state the previous one committed.
//! - **Status.** [`Sensors::list`] / [`Sensors::get`] report each sensor's state, counters and
//!   last error (`squall sensor get`); [`Sensors::set_enabled`] persists an operator's
//!   enable/disable, overriding the YAML, and takes effect at once.

use crate::Services;
use crate::services::WeakServices;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value, json};
use squall_core::datastore::{KeyRef, KeyValuePair, pack_key_name};
use squall_core::sensor::Sensor;
use squall_core::{ExecutionStatus, Ref, TriggerInstance};
use squall_host::{
    KeyWrite, PreparedSensor, SensorBackend, SensorEntry, SensorOutcome, SensorRequest, WebhookCall,
};
use squall_store::{Batch, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

pub use squall_core::sensor::SENSOR_SLOTS;

/// The longest wait between polls of a failing sensor.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What a sensor is doing, as `squall sensor get` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorState {
    /// Loaded, not started yet (or the server runs in-process for one CLI command).
    Stopped,
    /// Polling on schedule (or waiting for webhooks).
    Running,
    /// The last call failed: the next poll waits longer than `poll_interval`.
    BackingOff,
    /// Disabled by its YAML or an operator.
    Disabled,
    /// Could not start: its component or its pack's config is broken (see `last_error`).
    Failed,
}

/// A sensor's live status and counters.
#[derive(Debug, Clone, Serialize)]
pub struct SensorStatus {
    /// What it is doing.
    pub state: SensorState,
    /// Calls made (polls and webhook requests).
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Failures since the last success (the backoff exponent).
    pub consecutive_failures: u32,
    /// Trigger instances recorded from it.
    pub emitted: u64,
    /// When the last call ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_call: Option<Timestamp>,
    /// When the last successful call ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// Why the last failed call failed (or why it could not start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next poll is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_poll: Option<Timestamp>,
    /// Wall-clock time of the last call, in milliseconds.
    pub last_duration_ms: u64,
    /// Fuel units the last call consumed.
    pub last_fuel: u64,
}

impl Default for SensorStatus {
    fn default() -> Self {
        SensorStatus {
            state: SensorState::Stopped,
            calls: 0,
            failures: 0,
            consecutive_failures: 0,
            emitted: 0,
            last_call: None,
            last_success: None,
            last_error: None,
            next_poll: None,
            last_duration_ms: 0,
            last_fuel: 0,
        }
    }
}

/// A sensor as the API shows it: StackStorm's sensor type fields (`ref`, `name`, `pack`,
/// `class_name`, `description`, `enabled`, `entry_point`, `poll_interval` in seconds,
/// `trigger_types`) plus Squall's `webhooks` and live `status`.
#[derive(Debug, Clone, Serialize)]
pub struct SensorView {
    /// `<pack>.<class_name>`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The class name.
    pub name: String,
    /// Same as `name` (StackStorm's field).
    pub class_name: String,
    /// The pack.
    pub pack: String,
    /// Description.
    pub description: String,
    /// Enabled, after operator overrides.
    pub enabled: bool,
    /// The component path from the YAML.
    pub entry_point: String,
    /// Seconds between polls (0: webhook only).
    pub poll_interval: f64,
    /// Trigger types it emits.
    pub trigger_types: Vec<String>,
    /// Webhook urls routed to it.
    pub webhooks: Vec<String>,
    /// Live status.
    pub status: SensorStatus,
}

/// Why a webhook request to a sensor got no answer from it.
#[derive(Debug, thiserror::Error)]
pub enum SensorWebhookError {
    /// The sensor is disabled.
    #[error("sensor {0} is disabled; its webhook urls answer 404 until it is enabled")]
    Disabled(Ref),
    /// The sensor could not be started (component or config broken).
    #[error("sensor {sensor} is not running: {message}")]
    NotRunning {
        /// The sensor.
        sensor: Ref,
        /// Why.
        message: String,
    },
    /// The call failed (error, trap or limit); nothing it emitted was kept.
    #[error("sensor {sensor} failed on this request: {message}")]
    Failed {
        /// The sensor.
        sensor: Ref,
        /// What went wrong.
        message: String,
    },
    /// The call ran, but what it emitted was refused by a quota (`[sensors]
    /// max_emits_per_minute`, `max_state_bytes_per_minute`) or a full backlog (`[server]
    /// max_backlog`); nothing was kept. The API answers 429 with `Retry-After`.
    #[error("sensor {sensor}: {message}")]
    Refused {
        /// The sensor.
        sensor: Ref,
        /// Which quota, named as its setting.
        message: String,
    },
    /// Recording its trigger instances failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sensor container. Cheap to clone.
#[derive(Clone)]
pub struct Sensors {
    inner: Arc<Inner>,
}

struct Inner {
    /// Weak: the services own this container.
    services: WeakServices,
    sensors: BTreeMap<Ref, Sensor>,
    status: Mutex<HashMap<Ref, SensorStatus>>,
    overrides: RwLock<HashMap<Ref, bool>>,
    wake: HashMap<Ref, Arc<Notify>>,
    webhooks: HashMap<String, Ref>,
    prepared: Mutex<HashMap<Ref, Arc<PreparedSensor>>>,
    slots: Semaphore,
    /// One lock per sensor: its calls (polls and webhook requests) run one at a time.
    turns: HashMap<Ref, Arc<tokio::sync::Mutex<()>>>,
    /// Per pack: what its sensors may still bring in this minute.
    quotas: Mutex<HashMap<String, PackQuota>>,
}

/// A pack's per-minute sensor quotas (`[sensors] max_emits_per_minute` and
/// `max_state_bytes_per_minute`) as token buckets: full at start, refilled evenly over a
/// minute, a call taking its trigger instances and bytes together or not at all.
#[derive(Debug, Clone)]
struct PackQuota {
    emits: f64,
    bytes: f64,
    at: std::time::Instant,
}

impl PackQuota {
    fn full(settings: &squall_core::config::SensorSettings) -> PackQuota {
        PackQuota {
            emits: f64::from(settings.max_emits_per_minute),
            bytes: settings.max_state_bytes_per_minute as f64,
            at: std::time::Instant::now(),
        }
    }

    /// Takes `emits` trigger instances and `bytes` datastore bytes for pack `pack`.
    ///
    /// # Errors
    /// A message naming the exhausted setting; nothing is taken then.
    fn take(
        &mut self,
        settings: &squall_core::config::SensorSettings,
        pack: &str,
        emits: u64,
        bytes: u64,
    ) -> Result<(), String> {
        let (max_emits, max_bytes) = (
            f64::from(settings.max_emits_per_minute),
            settings.max_state_bytes_per_minute as f64,
        );
        let now = std::time::Instant::now();
        let minutes = now.duration_since(self.at).as_secs_f64() / 60.0;
        self.at = now;
        self.emits = (self.emits + minutes * max_emits).min(max_emits);
        self.bytes = (self.bytes + minutes * max_bytes).min(max_bytes);
        if emits as f64 > self.emits {
            return Err(format!(
                "pack {pack:?} is over its quota of {} trigger instances per minute \
                 ([sensors] max_emits_per_minute): this call emitted {emits}, {} left",
                settings.max_emits_per_minute,
                self.emits.floor()
            ));
        }
        if bytes as f64 > self.bytes {
            return Err(format!(
                "pack {pack:?} is over its quota of {} datastore bytes per minute \
                 ([sensors] max_state_bytes_per_minute): this call wrote {bytes}, {} left",
                settings.max_state_bytes_per_minute,
                self.bytes.floor()
            ));
        }
        self.emits -= emits as f64;
        self.bytes -= bytes as f64;
        Ok(())
    }
}

impl Sensors {
    /// The container over the sensors of `packs`, with the operator's enable/disable
    /// overrides read from the store. Nothing runs until [`Sensors::start`]. After a reload,
    /// `previous` (the container it replaces) hands over each surviving sensor's turn — a call
    /// of the old container still in flight finishes before the new one's first — and the
    /// packs' per-minute quotas, so a reload neither runs a sensor twice at once nor refills
    /// a quota.
    ///
    /// # Errors
    /// Store failures reading the overrides.
    pub async fn new(
        services: &Services,
        packs: &squall_core::PackSet,
        previous: Option<&Sensors>,
    ) -> Result<Sensors, StoreError> {
        let floor = services.registry().config().sensors.min_poll_interval;
        let sensors: BTreeMap<Ref, Sensor> = packs
            .sensors()
            .map(|s| {
                let mut s = s.clone();
                let per_minute = services.registry().config().sensors.max_emits_per_minute;
                if s.max_emits as u64 > u64::from(per_minute) {
                    tracing::warn!(sensor.ref = %s.reference, max_emits = s.max_emits, per_minute,
                        "max_emits is above [sensors] max_emits_per_minute: a call that uses it \
                         all is refused");
                }
                if !s.poll_interval.is_zero() && s.poll_interval < floor {
                    tracing::warn!(sensor.ref = %s.reference, asked = ?s.poll_interval,
                        polled = ?floor, "poll_interval raised to [sensors] min_poll_interval");
                    s.poll_interval = floor;
                }
                (s.reference.clone(), s)
            })
            .collect();
        let mut webhooks = HashMap::new();
        for s in sensors.values() {
            for url in &s.webhooks {
                if let Some(first) = webhooks.insert(url.clone(), s.reference.clone()) {
                    tracing::error!(webhook = %url, sensor.ref = %s.reference, other = %first,
                        "two sensors register the same webhook url; the later one in ref order gets it");
                }
            }
        }
        let turns = sensors
            .keys()
            .map(|r| {
                let turn = previous
                    .and_then(|p| p.inner.turns.get(r).cloned())
                    .unwrap_or_else(|| Arc::new(tokio::sync::Mutex::new(())));
                (r.clone(), turn)
            })
            .collect();
        let quotas = previous
            .map(|p| {
                p.inner
                    .quotas
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            })
            .unwrap_or_default();
        let overrides = services
            .store()
            .sensor_overrides()
            .await?
            .into_iter()
            .filter_map(|(r, on)| Some((r.parse().ok()?, on)))
            .collect();
        Ok(Sensors {
            inner: Arc::new(Inner {
                services: services.downgrade(),
                wake: sensors
                    .keys()
                    .map(|r| (r.clone(), Arc::new(Notify::new())))
                    .collect(),
                status: Mutex::new(
                    sensors
                        .keys()
                        .map(|r| (r.clone(), SensorStatus::default()))
                        .collect(),
                ),
                sensors,
                overrides: RwLock::new(overrides),
                webhooks,
                prepared: Mutex::new(HashMap::new()),
                slots: Semaphore::new(SENSOR_SLOTS),
                turns,
                quotas: Mutex::new(quotas),
            }),
        })
    }

    /// Starts one polling task per sensor; they stop when `stop` is cancelled.
    pub fn start(&self, stop: &CancellationToken) {
        let Some(services) = self.inner.services.upgrade() else {
            return;
        };
        for reference in self.inner.sensors.keys() {
            let this = self.clone();
            let reference = reference.clone();
            let stop = stop.clone();
            services.spawn(async move {
                this.run(&reference, &stop).await;
            });
        }
    }

    /// The services, or an error once they are gone (shutting down).
    fn services(&self) -> Result<Services, String> {
        self.inner
            .services
            .upgrade()
            .ok_or_else(|| "the server is shutting down".to_string())
    }

    /// Whether `sensor` is enabled: the operator's override, else its YAML.
    pub fn enabled(&self, sensor: &Ref) -> bool {
        let yaml = self.inner.sensors.get(sensor).is_some_and(|s| s.enabled);
        self.inner
            .overrides
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sensor)
            .copied()
            .unwrap_or(yaml)
    }

    /// Every sensor, by ref.
    pub fn list(&self) -> Vec<SensorView> {
        self.inner
            .sensors
            .keys()
            .filter_map(|r| self.get(r))
            .collect()
    }

    /// One sensor, if loaded.
    pub fn get(&self, reference: &Ref) -> Option<SensorView> {
        let s = self.inner.sensors.get(reference)?;
        let mut status = self.lock().get(reference).cloned().unwrap_or_default();
        let enabled = self.enabled(reference);
        if !enabled && status.state != SensorState::Failed {
            status.state = SensorState::Disabled;
            status.next_poll = None;
        }
        Some(SensorView {
            reference: reference.to_string(),
            name: reference.name().to_string(),
            class_name: reference.name().to_string(),
            pack: reference.pack().to_string(),
            description: s.description.clone(),
            enabled,
            entry_point: s.entry_point.clone(),
            poll_interval: s.poll_interval.as_secs_f64(),
            trigger_types: s.trigger_types.iter().map(ToString::to_string).collect(),
            webhooks: s.webhooks.clone(),
            status,
        })
    }

    /// Enables or disables `sensor` (persisted, overriding its YAML) and wakes its task: a
    /// disabled sensor is not polled and its webhooks answer 404; an enabled one polls at once.
    ///
    /// # Errors
    /// Store failures. `Ok(None)` when no such sensor is loaded.
    pub async fn set_enabled(
        &self,
        sensor: &Ref,
        enabled: bool,
    ) -> Result<Option<SensorView>, StoreError> {
        if !self.inner.sensors.contains_key(sensor) {
            return Ok(None);
        }
        let Ok(services) = self.services() else {
            return Ok(None);
        };
        let mut batch = Batch::new();
        batch.set_sensor_enabled(&sensor.to_string(), enabled);
        services.store().commit(batch).await?;
        self.inner
            .overrides
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sensor.clone(), enabled);
        if let Some(n) = self.inner.wake.get(sensor) {
            n.notify_one();
        }
        tracing::info!(sensor.ref = %sensor, enabled, "sensor enabled state set");
        Ok(self.get(sensor))
    }

    /// The sensor that registered webhook `url`, if any.
    pub fn webhook_sensor(&self, url: &str) -> Option<&Ref> {
        self.inner.webhooks.get(url)
    }

    /// Calls the `webhook` entry point of the sensor that registered `url` with the request;
    /// its trigger instances and datastore writes are recorded before this returns. `None`
    /// when no sensor registered `url`.
    ///
    /// # Errors
    /// [`SensorWebhookError`]: disabled or broken sensor, a failed call, a store failure.
    pub async fn webhook(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Option<Result<(u16, Value), SensorWebhookError>> {
        let reference = self.inner.webhooks.get(url)?.clone();
        let services = match self.services() {
            Ok(s) => s,
            Err(message) => {
                return Some(Err(SensorWebhookError::NotRunning {
                    sensor: reference,
                    message,
                }));
            }
        };
        // On its own task: once the call has committed what it emitted, its rules must be
        // queued even if the caller hangs up (which drops this future).
        let this = self.clone();
        let (sensor, url) = (reference.clone(), url.to_string());
        let task = async move { this.call_webhook(&sensor, &url, headers, body).await };
        Some(services.spawn(task).await.unwrap_or_else(|e| {
            Err(SensorWebhookError::Failed {
                sensor: reference,
                message: format!("the call ended abnormally: {e}"),
            })
        }))
    }

    async fn call_webhook(
        &self,
        reference: &Ref,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<(u16, Value), SensorWebhookError> {
        if !self.enabled(reference) {
            return Err(SensorWebhookError::Disabled(reference.clone()));
        }
        let status = self.lock().get(reference).cloned().unwrap_or_default();
        if status.state == SensorState::Failed {
            return Err(SensorWebhookError::NotRunning {
                sensor: reference.clone(),
                message: status.last_error.unwrap_or_default(),
            });
        }
        let _turn = self.turn(reference).await;
        let call = WebhookCall {
            url: url.to_string(),
            headers,
            body,
        };
        let outcome = self
            .call(reference, SensorEntry::Webhook(call))
            .await
            .map_err(|message| SensorWebhookError::NotRunning {
                sensor: reference.clone(),
                message,
            })?;
        let (_, refused) = self.record(reference, &outcome, None).await?;
        if let Some(message) = refused {
            return Err(SensorWebhookError::Refused {
                sensor: reference.clone(),
                message,
            });
        }
        if let Some(message) = outcome.error.clone() {
            return Err(SensorWebhookError::Failed {
                sensor: reference.clone(),
                message,
            });
        }
        Ok(outcome.response.unwrap_or((202, json!({"accepted": true}))))
    }

    /// The polling task of one sensor.
    async fn run(&self, reference: &Ref, stop: &CancellationToken) {
        let Some(sensor) = self.inner.sensors.get(reference).cloned() else {
            return;
        };
        let wake = self.inner.wake.get(reference).cloned().unwrap_or_default();
        if let Err(message) = self.prepared(reference).await {
            self.fail_to_start(reference, message);
            return;
        }
        // A config that failed validation at load keeps the pack's sensors from starting; one
        // that only fails to render (a datastore key not set yet) fails each call instead, so
        // setting the key is enough.
        if let Ok(services) = self.services()
            && let Some(config) = services
                .registry()
                .packs()
                .pack(reference.pack())
                .and_then(|p| p.config.as_ref())
            && !config.is_valid()
        {
            let problems: Vec<String> = config.errors.iter().map(ToString::to_string).collect();
            let message = format!("pack config: {}", problems.join("; "));
            self.fail_to_start(reference, message);
            return;
        }
        self.update(reference, |s| s.state = SensorState::Running);
        tracing::info!(sensor.ref = %reference, poll_interval = ?sensor.poll_interval,
            webhooks = ?sensor.webhooks, "sensor started");
        if sensor.poll_interval.is_zero() {
            return;
        }
        loop {
            if !self.enabled(reference) {
                self.update(reference, |s| s.next_poll = None);
                tokio::select! {
                    () = wake.notified() => continue,
                    () = stop.cancelled() => return,
                }
            }
            let turn = self.turn(reference).await;
            let wait = match self.call(reference, SensorEntry::Poll).await {
                Ok(outcome) => {
                    let failures = match self.record(reference, &outcome, Some(&sensor)).await {
                        Ok((n, _)) => n,
                        Err(e) => {
                            tracing::error!(sensor.ref = %reference, error = %e,
                                "cannot record the sensor's trigger instances; the poll is retried");
                            self.failed(reference, format!("store: {e}"))
                        }
                    };
                    backoff(sensor.poll_interval, failures)
                }
                Err(message) => {
                    self.fail_to_start(reference, message);
                    return;
                }
            };
            drop(turn);
            let due = Timestamp::now()
                .checked_add(wait)
                .unwrap_or_else(|_| Timestamp::now());
            self.update(reference, |s| s.next_poll = Some(due));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Makes one call. `Err` only when the sensor cannot run at all (component or config).
    async fn call(&self, reference: &Ref, entry: SensorEntry) -> Result<SensorOutcome, String> {
        let sensor = self
            .inner
            .sensors
            .get(reference)
            .ok_or_else(|| format!("no sensor {reference}"))?;
        let prepared = self.prepared(reference).await?;
        let services = self.services()?;
        let registry = services.registry();
        let pack = reference.pack();
        let config = match self.config(pack) {
            Ok(c) => c,
            Err(message) => {
                return Ok(SensorOutcome {
                    status: ExecutionStatus::Failed,
                    error: Some(message),
                    emitted: Vec::new(),
                    writes: Vec::new(),
                    response: None,
                    output: Default::default(),
                    fuel_consumed: 0,
                    duration: Duration::ZERO,
                });
            }
        };
        let (limits, _) = registry.config().limits.resolve(&sensor.limits);
        let request = SensorRequest {
            sensor_ref: reference.to_string(),
            pack: pack.to_string(),
            config,
            limits,
            // StackStorm Python sensors declare no `capabilities`: the operator's grant alone
            // decides, as for StackStorm's actions.
            http: if sensor.is_python() {
                crate::http_runner::stackstorm_http_policy(
                    &registry.http_policy(pack),
                    registry.config().grants(pack).http_allow,
                )
            } else {
                registry.http_policy(pack)
            },
            backend: Arc::new(Backend {
                services: services.clone(),
                pack: pack.to_string(),
                trigger_types: sensor.trigger_types.clone(),
            }),
            max_emits: sensor.max_emits,
            max_payload: registry.config().sensors.max_payload,
            max_state_bytes: registry.config().sensors.max_state_bytes_per_call,
            st2_keys: sensor.is_python(),
            read_only: if sensor.is_python() {
                registry
                    .packs()
                    .real_dir(pack)
                    .map(crate::runner::python_read_only)
                    .unwrap_or_default()
            } else {
                Vec::new()
            },
        };
        let _slot = self.inner.slots.acquire().await.expect("never closed");
        Ok(registry.host().call_sensor(&prepared, request, entry).await)
    }

    /// Commits a finished call's instances and key writes (a successful call within its pack's
    /// quotas) and updates the status; returns the consecutive failures after it, and the
    /// quota refusal when the call was over one. `sensor` is given for polls.
    async fn record(
        &self,
        reference: &Ref,
        outcome: &SensorOutcome,
        sensor: Option<&Sensor>,
    ) -> Result<(u32, Option<String>), StoreError> {
        for line in &outcome.output.log {
            log_line(reference, &line.level, &line.message);
        }
        for denial in &outcome.output.denials {
            tracing::warn!(sensor.ref = %reference, denial = %denial, "sensor refused a capability");
        }
        self.update(reference, |s| {
            s.calls += 1;
            s.last_call = Some(Timestamp::now());
            s.last_duration_ms = outcome.duration.as_millis() as u64;
            s.last_fuel = outcome.fuel_consumed;
        });
        if let Some(message) = &outcome.error {
            tracing::warn!(sensor.ref = %reference, status = %outcome.status, error = %message,
                poll = sensor.is_some(), "sensor call failed; nothing it emitted was kept");
            return Ok((self.failed(reference, message.clone()), None));
        }
        let Ok(services) = self.services() else {
            return Ok((0, None));
        };
        let bytes: usize = outcome.writes.iter().map(KeyWrite::bytes).sum();
        // A full backlog refuses the call like a quota: its instances would only queue.
        let admitted = if outcome.emitted.is_empty() {
            Ok(())
        } else {
            services.admit().map_err(|e| e.to_string())
        };
        let quota = admitted.and_then(|()| {
            let settings = &services.registry().config().sensors;
            let pack = reference.pack();
            let mut quotas = self.inner.quotas.lock().unwrap_or_else(|e| e.into_inner());
            quotas
                .entry(pack.to_string())
                .or_insert_with(|| PackQuota::full(settings))
                .take(settings, pack, outcome.emitted.len() as u64, bytes as u64)
        });
        if let Err(message) = quota {
            tracing::warn!(sensor.ref = %reference, error = %message,
                "sensor call over its pack's quota; nothing it emitted was kept");
            return Ok((self.failed(reference, message.clone()), Some(message)));
        }
        let instances = commit(&services, outcome).await?;
        for instance in &instances {
            services
                .bus()
                .publish("st2.trigger_instance__create", instance);
            services.process_later(instance.clone());
        }
        let emitted = instances.len() as u64;
        self.update(reference, |s| {
            s.state = SensorState::Running;
            s.consecutive_failures = 0;
            s.emitted += emitted;
            s.last_success = s.last_call;
        });
        if emitted > 0 {
            tracing::debug!(sensor.ref = %reference, emitted, "sensor emitted trigger instances");
        }
        Ok((0, None))
    }
}

/// One transaction: the call's trigger instances and its writes to the pack's own keys.
async fn commit(
    services: &Services,
    outcome: &SensorOutcome,
) -> Result<Vec<TriggerInstance>, StoreError> {
    let mut batch = Batch::new();
    let mut instances = Vec::with_capacity(outcome.emitted.len());
    for (trigger, payload) in &outcome.emitted {
        // `check_emit` already parsed the ref.
        let Ok(trigger) = trigger.parse::<Ref>() else {
            continue;
        };
        let instance = TriggerInstance::new(trigger, Map::new(), payload.clone());
        batch.create_trigger_instance(&instance);
        instances.push(instance);
    }
    let now = Timestamp::now();
    for KeyWrite {
        name,
        value,
        ttl_seconds,
    } in &outcome.writes
    {
        // Full names already: `<pack>:<name>` or one of the pack's `<pack>.…` keys.
        let stored = name;
        match value {
            Some(v) => {
                let mut kv = KeyValuePair::system(stored, v);
                if let Some(ttl) = ttl_seconds {
                    // The host already refused TTLs out of range.
                    let _ = kv.expire_after(now, i64::from(*ttl));
                }
                batch.put_key(&kv);
            }
            None => {
                batch.delete_key(&KeyRef::system(stored));
            }
        }
    }
    if !batch.is_empty() {
        services.store().commit(batch).await?;
    }
    Ok(instances)
}

impl Sensors {
    fn failed(&self, reference: &Ref, message: String) -> u32 {
        let mut n = 0;
        self.update(reference, |s| {
            s.failures += 1;
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            s.state = SensorState::BackingOff;
            s.last_error = Some(message);
            n = s.consecutive_failures;
        });
        n
    }

    fn fail_to_start(&self, reference: &Ref, message: String) {
        tracing::error!(sensor.ref = %reference, error = %message, "sensor not started");
        self.update(reference, |s| {
            s.state = SensorState::Failed;
            s.last_error = Some(message);
            s.next_poll = None;
        });
    }

    /// The pack's config for its sensors (templates rendered with the datastore).
    fn config(&self, pack: &str) -> Result<Value, String> {
        let services = self.services()?;
        let ctx = squall_core::template::Context::trigger(&Value::Null)
            .with_keys(services.runner().key_lookup(crate::SYSTEM_USER));
        services
            .registry()
            .pack_config(pack, &ctx)
            .map(Value::Object)
            .map_err(|e| format!("pack config: {e}"))
    }

    async fn prepared(&self, reference: &Ref) -> Result<Arc<PreparedSensor>, String> {
        if let Some(p) = self
            .inner
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(reference)
        {
            return Ok(p.clone());
        }
        let path = self
            .inner
            .sensors
            .get(reference)
            .map(|s| s.entry_path.clone())
            .ok_or_else(|| format!("no sensor {reference}"))?;
        let host = self.services()?.registry().host().clone();
        let prepared = tokio::task::spawn_blocking(move || host.prepare_sensor(&path))
            .await
            .map_err(|e| format!("component preparation panicked: {e}"))?
            .map_err(|e| e.to_string())?;
        self.inner
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reference.clone(), prepared.clone());
        Ok(prepared)
    }

    /// Waits for this sensor's turn: its calls run one at a time, so each call reads the state
    /// the previous one committed (two racing webhook deliveries cannot both see "unseen").
    async fn turn(&self, reference: &Ref) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let lock = self.inner.turns.get(reference)?.clone();
        Some(lock.lock_owned().await)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ref, SensorStatus>> {
        self.inner.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, reference: &Ref, f: impl FnOnce(&mut SensorStatus)) {
        if let Some(s) = self.lock().get_mut(reference) {
            f(s);
        }
    }
}

/// The wait before the next poll after `failures` consecutive failures: `interval` doubled per
/// failure, at most [`MAX_BACKOFF`] (but never below `interval`).
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let doubled = interval.saturating_mul(1u32 << failures.min(16));
    doubled.min(MAX_BACKOFF).max(interval)
}

fn log_line(reference: &Ref, level: &str, message: &str) {
    match level {
        "error" => tracing::error!(sensor.ref = %reference, "{message}"),
        "warn" => tracing::warn!(sensor.ref = %reference, "{message}"),
        "info" => tracing::info!(sensor.ref = %reference, "{message}"),
        "debug" => tracing::debug!(sensor.ref = %reference, "{message}"),
        _ => tracing::trace!(sensor.ref = %reference, "{message}"),
    }
}

/// What a sensor's calls read and check, bound to its pack and trigger types.
struct Backend {
    services: Services,
    pack: String,
    trigger_types: Vec<Ref>,
}

impl Backend {
    /// The plaintext of the secret key `name` (stored as `ciphertext`), when the operator
    /// granted it to the pack (`[packs.<pack>] secret_keys`).
    fn reveal(&self, name: &str, ciphertext: &str) -> Result<String, String> {
        let grants = self.services.registry().config().grants(&self.pack);
        if !grants.may_read_secret(name) {
            return Err(format!(
                "secret key {name:?} is not granted to pack {:?} ([packs.{}] secret_keys in squall.toml)",
                self.pack, self.pack
            ));
        }
        self.services
            .datastore()
            .decrypt(ciphertext)
            .map_err(|e| format!("secret key {name:?}: {e}"))
    }
}

impl SensorBackend for Backend {
    fn pack_key(&self, name: &str) -> Result<Option<String>, String> {
        let stored = pack_key_name(&self.pack, name);
        let found = self
            .services
            .store()
            .key_blocking(&KeyRef::system(&stored))
            .map_err(|e| format!("datastore: {e}"))?;
        match found {
            Some(kv) if kv.secret => Err(format!(
                "key {stored:?} is a secret; read secrets with get-system when granted"
            )),
            other => Ok(other.map(|kv| kv.value)),
        }
    }

    fn own_key(&self, name: &str, decrypt: bool) -> Result<Option<String>, String> {
        let found = self
            .services
            .store()
            .key_blocking(&KeyRef::system(name))
            .map_err(|e| format!("datastore: {e}"))?;
        match found {
            Some(kv) if kv.secret && decrypt => self.reveal(name, &kv.value).map(Some),
            other => Ok(other.map(|kv| kv.value)),
        }
    }

    fn own_keys(&self, prefix: &str) -> Result<Vec<(String, String, bool)>, String> {
        // The trait is synchronous (called from inside the guest's call); this worker may block.
        let store = self.services.store().clone();
        let prefix = prefix.to_string();
        let keys = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                store
                    .keys(squall_core::datastore::KeyScope::System, None, &prefix)
                    .await
            })
        })
        .map_err(|e| format!("datastore: {e}"))?;
        Ok(keys
            .into_iter()
            .map(|kv| (kv.name, kv.value, kv.secret))
            .collect())
    }

    fn system_key(&self, name: &str) -> Result<Option<String>, String> {
        squall_core::datastore::check_pack_local_read(&self.pack, name)?;
        let key = KeyRef::system(name);
        let Some(kv) = self
            .services
            .store()
            .key_blocking(&key)
            .map_err(|e| format!("datastore: {e}"))?
        else {
            return Ok(None);
        };
        if !kv.secret {
            return Ok(Some(kv.value));
        }
        self.reveal(name, &kv.value).map(Some)
    }

    fn check_emit(&self, trigger: &str, payload: &Value) -> Result<(), String> {
        let reference: Ref = trigger
            .parse()
            .map_err(|e| format!("trigger ref {trigger:?}: {e}"))?;
        if !self.trigger_types.contains(&reference) {
            let allowed: Vec<String> = self.trigger_types.iter().map(ToString::to_string).collect();
            return Err(format!(
                "trigger type {trigger} is not one this sensor emits (its trigger_types: {})",
                allowed.join(", ")
            ));
        }
        let kind = self
            .services
            .registry()
            .trigger_type(&reference)
            .ok_or_else(|| format!("trigger type {trigger} is not loaded"))?;
        kind.validate_payload(payload)
            .map_err(|e| format!("payload for {trigger} does not fit its payload_schema: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_interval_up_to_the_cap() {
        let s = Duration::from_secs;
        for (interval, failures, expected) in [
            (s(10), 0, s(10)),
            (s(10), 1, s(20)),
            (s(10), 2, s(40)),
            (s(10), 5, s(300)),
            (s(10), 60, s(300)),
            (s(600), 3, s(600)),
            (Duration::from_millis(100), 3, Duration::from_millis(800)),
        ] {
            assert_eq!(
                backoff(interval, failures),
                expected,
                "{interval:?} x{failures}"
            );
        }
    }
}
