//! The host calling the test sensor component (`tests/components/sensor`): buffered datastore
//! writes and emits are handed back only from a successful call; the backend's checks reach
//! the guest; limits are named; webhook answers come back; an action component is not a sensor.

use serde_json::{Value, json};
use squall_core::capability::HttpPolicy;
use squall_core::config::HostSettings;
use squall_core::{ExecutionStatus, Limits};
use squall_host::{
    Host, HostConfig, LoadError, PreparedSensor, SensorBackend, SensorEntry, SensorOutcome,
    SensorRequest, WebhookCall,
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

struct Fixture {
    host: Host,
    sensor: Arc<PreparedSensor>,
    _cache: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cache = tempfile::tempdir().unwrap();
        let host = Host::new(&HostConfig {
            settings: HostSettings::default(),
            ceiling: Limits::CEILING,
            cache_dir: cache.path().join("components"),
            cache_key_file: cache.path().join("cache.key"),
        })
        .unwrap();
        let sensor = host
            .prepare_sensor(squall_test_components::TEST_SENSOR.as_ref())
            .unwrap();
        Fixture {
            host,
            sensor,
            _cache: cache,
        }
    })
}

/// A backend with fixed keys that accepts `<pack>.tick` payloads whose `n` is below `max_n`.
struct Fake {
    pack_keys: Mutex<Vec<(String, String)>>,
    secret_granted: bool,
    max_n: u64,
}

impl SensorBackend for Fake {
    fn pack_key(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .pack_keys
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone()))
    }

    fn system_key(&self, name: &str) -> Result<Option<String>, String> {
        if self.secret_granted {
            Ok(Some("hunter2".into()))
        } else {
            Err(format!("secret key {name:?} is not granted"))
        }
    }

    fn own_key(&self, _name: &str, _decrypt: bool) -> Result<Option<String>, String> {
        Ok(None)
    }

    fn own_keys(&self, _prefix: &str) -> Result<Vec<(String, String, bool)>, String> {
        Ok(Vec::new())
    }

    fn check_emit(&self, trigger: &str, payload: &Value) -> Result<(), String> {
        if trigger != "t.tick" {
            return Err(format!(
                "trigger type {trigger} is not one this sensor emits"
            ));
        }
        match payload["n"].as_u64() {
            Some(n) if n < self.max_n => Ok(()),
            _ => Err("payload does not fit its payload_schema: n too large".into()),
        }
    }
}

fn call(class: &str, backend: Fake, limits: Limits, entry: SensorEntry) -> SensorOutcome {
    let f = fixture();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f.host.call_sensor(
        &f.sensor,
        SensorRequest {
            sensor_ref: format!("t.{class}"),
            pack: "t".into(),
            config: json!({"key": "secret"}),
            limits,
            http: Arc::new(HttpPolicy::default()),
            backend: Arc::new(backend),
            max_emits: 10,
            max_payload: 256 * 1024,
            max_state_bytes: 64 * 1024,
            st2_keys: false,
            read_only: Vec::new(),
        },
        entry,
    ))
}

fn fake(n: Option<&str>) -> Fake {
    Fake {
        pack_keys: Mutex::new(
            n.map(|v| vec![("n".to_string(), v.to_string())])
                .unwrap_or_default(),
        ),
        secret_granted: true,
        max_n: 1000,
    }
}

fn limits() -> Limits {
    Limits {
        fuel: 1_000_000_000,
        timeout: Duration::from_secs(2),
        memory: 32 << 20,
        max_output: 64 * 1024,
    }
}

#[test]
fn a_successful_poll_hands_back_its_writes_emits_and_log() {
    let out = call("Counter", fake(Some("41")), limits(), SensorEntry::Poll);
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.emitted, vec![("t.tick".to_string(), json!({"n": 42}))]);
    assert_eq!(out.writes.len(), 1);
    assert_eq!(out.writes[0].name, "t:n");
    assert_eq!(out.writes[0].value.as_deref(), Some("42"));
    assert_eq!(out.output.log[0].message, "tick 42");
    assert!(out.fuel_consumed > 0);
}

#[test]
fn a_payload_refused_by_the_backend_fails_the_call_and_keeps_nothing() {
    let mut backend = fake(Some("41"));
    backend.max_n = 10;
    let out = call("Counter", backend, limits(), SensorEntry::Poll);
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(
        out.error.as_deref().unwrap().contains("n too large"),
        "{:?}",
        out.error
    );
    assert!(out.emitted.is_empty());
    assert!(
        out.writes.is_empty(),
        "the counter's write is dropped with the failed call"
    );
}

#[test]
fn passing_max_emits_fails_the_call_even_when_the_sensor_returns_ok() {
    let out = call("Flood", fake(None), limits(), SensorEntry::Poll);
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(
        out.error.as_deref(),
        Some("emit limit of 10 trigger instances per call exceeded")
    );
    assert!(out.emitted.is_empty());
}

#[test]
fn limits_are_named() {
    let mut short = limits();
    short.timeout = Duration::from_millis(200);
    short.fuel = u64::MAX / 2;
    let out = call("Loop", fake(None), short, SensorEntry::Poll);
    assert_eq!(out.status, ExecutionStatus::Timeout);
    assert_eq!(out.error.as_deref(), Some("timeout of 0.2s exceeded"));
    let mut little = limits();
    little.fuel = 500_000;
    let out = call("Loop", fake(None), little, SensorEntry::Poll);
    assert_eq!(out.status, ExecutionStatus::Timeout);
    assert_eq!(
        out.error.as_deref(),
        Some("fuel limit of 500000 units exhausted")
    );
}

#[test]
fn secrets_reach_the_guest_only_when_the_backend_grants_them() {
    let out = call("Secret", fake(None), limits(), SensorEntry::Poll);
    assert_eq!(out.emitted, vec![("t.tick".to_string(), json!({"n": 7}))]);
    let mut refused = fake(None);
    refused.secret_granted = false;
    let out = call("Secret", refused, limits(), SensorEntry::Poll);
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(out.error.as_deref().unwrap().contains("not granted"));
    assert_eq!(out.output.denials.len(), 1, "{:?}", out.output.denials);
}

#[test]
fn a_webhook_call_returns_the_sensors_answer() {
    let out = call(
        "Noop",
        fake(None),
        limits(),
        SensorEntry::Webhook(WebhookCall {
            url: "hook".into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"abc".to_vec(),
        }),
    );
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.response, Some((202, json!({"seen": 3}))));
    assert_eq!(out.emitted, vec![("t.tick".to_string(), json!({"n": 3}))]);
}

#[test]
fn an_action_component_is_not_a_sensor() {
    let err = fixture()
        .host
        .prepare_sensor(squall_test_components::TEST_HOSTILE.as_ref())
        .unwrap_err();
    assert!(matches!(err, LoadError::NotASensor { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("not a squall:plugin/sensor component"),
        "{err}"
    );
}
