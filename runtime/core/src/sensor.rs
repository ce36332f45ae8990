//! Sensors: StackStorm's `sensors/*.yaml` metadata, naming a component of the
//! `squall:plugin/sensor` world (see `wit/squall.wit`).
//!
//! ```yaml
//! class_name: PushSensor            # the sensor's ref is <pack>.<class_name>
//! entry_point: push_sensor.wasm     # relative to the pack's sensors/ directory
//! description: GitHub push events
//! enabled: true                     # default true
//! poll_interval: 30                 # seconds between polls; 0 = never polled (webhook only)
//! trigger_types:                    # full definitions (registered in the pack) or refs
//!   - name: push
//!     description: a push to a repository
//!     payload_schema: {type: object, properties: {commits: {type: array}}}
//!   - github.ping                   # a trigger type of the same pack, by ref
//! # Squall extensions:
//! webhooks: [github]                # POST /api/v1/webhooks/github is routed to this sensor
//! max_emits: 100                    # trigger instances per call, default 100
//! limits: {timeout: 10s, fuel: 100000000, memory: 64MiB, max_output: 64KiB}  # per call
//! ```
//!
//! A StackStorm Python sensor (`entry_point: sensor.py`, `class_name` a `PollingSensor` in it)
//! runs in the pack's Python component (see [`crate::python`]; its `entry_path` becomes that
//! component once the pack has loaded); trigger types declared inline register in the pack
//! exactly as `triggers/*.yaml` ones do.

use crate::action::{ContentError, resolve_in_pack, resource_ref, yaml_message};
use crate::limits::LimitOverrides;
use crate::reference::Ref;
use crate::trigger::TriggerType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sensor calls that may run at once in one server; they share the host's instance pool with
/// executions, so `[server] concurrency` + this must fit in `[host] max_instances`.
pub const SENSOR_SLOTS: usize = 8;

/// Trigger instances one sensor call may emit when its YAML does not say.
pub const DEFAULT_MAX_EMITS: usize = 100;

/// One sensor, from `sensors/<name>.yaml`.
#[derive(Debug, Clone, Serialize)]
pub struct Sensor {
    /// `<pack>.<class_name>`.
    #[serde(rename = "ref")]
    pub reference: Ref,
    /// Description.
    pub description: String,
    /// Whether the pack enables it (an operator may override, `squall sensor disable`).
    pub enabled: bool,
    /// The component path as written in the YAML.
    pub entry_point: String,
    /// The component file (for a Python sensor, the pack's built component once its pack has
    /// loaded, the module until then).
    #[serde(skip)]
    pub entry_path: PathBuf,
    /// Time between polls; zero when the sensor is only called by webhooks.
    #[serde(with = "crate::units::duration")]
    pub poll_interval: Duration,
    /// The trigger types it may emit, by ref.
    pub trigger_types: Vec<Ref>,
    /// Webhook urls routed to it (`/api/v1/webhooks/<url>`).
    pub webhooks: Vec<String>,
    /// Trigger instances one call may emit.
    pub max_emits: usize,
    /// Per-call limits.
    pub limits: LimitOverrides,
    /// The metadata file.
    #[serde(skip)]
    pub metadata_file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSensor {
    class_name: String,
    #[serde(default)]
    entry_point: String,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    poll_interval: Option<f64>,
    #[serde(default)]
    trigger_types: Vec<Value>,
    #[serde(default)]
    webhooks: Vec<String>,
    #[serde(default)]
    max_emits: Option<usize>,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    pack: Option<String>,
    #[serde(default, rename = "name")]
    _name: Option<String>,
}

fn yes() -> bool {
    true
}

/// Default seconds between polls when the YAML gives none (StackStorm's `poll_interval`
/// default for polling sensors).
const DEFAULT_POLL_INTERVAL: f64 = 60.0;

impl Sensor {
    /// Whether it is a StackStorm Python sensor (its entry point a `.py` module).
    pub fn is_python(&self) -> bool {
        self.entry_point.ends_with(".py")
    }

    /// Parses `sensors/<file>.yaml` of `pack`; returns the sensor and the trigger types it
    /// declares inline (to register in the pack).
    ///
    /// # Errors
    /// [`ContentError`] naming the field: YAML syntax or unknown keys, a bad `class_name`, an
    /// entry point that is empty, escapes the pack or does not exist, a negative
    /// `poll_interval`, a bad trigger type entry, a bad webhook url, `max_emits` of 0, or a
    /// sensor with neither polling nor webhooks.
    pub fn parse(
        text: &str,
        pack: &str,
        sensors_dir: &Path,
        file: &Path,
    ) -> Result<(Sensor, Vec<TriggerType>), ContentError> {
        let raw: RawSensor = serde_saphyr::from_str(text)
            .map_err(|e| ContentError::at("", yaml_message(&e, file)))?;
        let reference = resource_ref(pack, &raw.class_name, raw.pack.as_deref())
            .map_err(|e| ContentError::at("class_name", e.message))?;
        let what = if raw.entry_point.ends_with(".py") {
            "module"
        } else {
            "component"
        };
        let entry_path = resolve_in_pack(&raw.entry_point, sensors_dir, "sensors", what)
            .map_err(|m| ContentError::at("entry_point", m))?;
        let seconds = raw.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL);
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(ContentError::at(
                "poll_interval",
                format!("{seconds} must be a number of seconds, 0 or more"),
            ));
        }
        let poll_interval = Duration::try_from_secs_f64(seconds).map_err(|_| {
            ContentError::at("poll_interval", format!("{seconds} seconds is too long"))
        })?;
        let mut trigger_types = Vec::new();
        let mut declared = Vec::new();
        for (i, entry) in raw.trigger_types.iter().enumerate() {
            let field = format!("trigger_types[{i}]");
            match entry {
                Value::String(r) => {
                    let reference = r
                        .parse::<Ref>()
                        .map_err(|e| ContentError::at(&field, e.to_string()))?;
                    // Emitting another pack's (or a built-in `core.st2.*`) trigger type would let
                    // a sensor forge events that rules trust, e.g. signed webhooks.
                    if reference.pack() != pack {
                        return Err(ContentError::at(
                            &field,
                            format!(
                                "{reference} is not a trigger type of pack {pack:?}; a sensor emits only its own pack's"
                            ),
                        ));
                    }
                    trigger_types.push(reference);
                }
                Value::Object(_) => {
                    let yaml = serde_json::to_string(entry).expect("a JSON value");
                    let t = TriggerType::parse(&yaml, pack, file).map_err(|e| {
                        let sub = if e.field.is_empty() {
                            field.clone()
                        } else {
                            format!("{field}.{}", e.field)
                        };
                        ContentError::at(&sub, e.message)
                    })?;
                    trigger_types.push(t.reference.clone());
                    declared.push(t);
                }
                other => {
                    return Err(ContentError::at(
                        &field,
                        format!("must be a trigger type definition or a ref, not {other}"),
                    ));
                }
            }
        }
        if trigger_types.is_empty() {
            return Err(ContentError::at(
                "trigger_types",
                "a sensor must list the trigger types it emits",
            ));
        }
        for (i, url) in raw.webhooks.iter().enumerate() {
            let ok = !url.is_empty()
                && url
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
                && !url.starts_with('/');
            if !ok {
                return Err(ContentError::at(
                    &format!("webhooks[{i}]"),
                    format!(
                        "{url:?} must be a url path of letters, digits, _ - . / (not starting with /)"
                    ),
                ));
            }
        }
        if poll_interval.is_zero() && raw.webhooks.is_empty() {
            return Err(ContentError::at(
                "poll_interval",
                "0 means never polled, and the sensor lists no webhooks: it would never run",
            ));
        }
        let max_emits = raw.max_emits.unwrap_or(DEFAULT_MAX_EMITS);
        if max_emits == 0 {
            return Err(ContentError::at("max_emits", "must be at least 1"));
        }
        Ok((
            Sensor {
                reference,
                description: raw.description,
                enabled: raw.enabled,
                entry_point: raw.entry_point,
                entry_path,
                poll_interval,
                trigger_types,
                webhooks: raw.webhooks,
                max_emits,
                limits: raw.limits,
                metadata_file: file.to_path_buf(),
            },
            declared,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<(Sensor, Vec<TriggerType>), ContentError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.wasm"), b"\0asm").unwrap();
        Sensor::parse(yaml, "gh", dir.path(), &dir.path().join("s.yaml"))
    }

    fn field_of(yaml: &str) -> (String, String) {
        let e = parse(yaml).unwrap_err();
        (e.field, e.message)
    }

    const BASE: &str = "class_name: PushSensor\nentry_point: s.wasm\n";

    #[test]
    fn parses_inline_trigger_types_and_webhooks() {
        let (s, declared) = parse(&format!(
            "{BASE}poll_interval: 0\nwebhooks: [github]\ntrigger_types:\n  - name: push\n    payload_schema: {{type: object}}\n  - gh.ping\n"
        ))
        .unwrap();
        assert_eq!(s.reference.to_string(), "gh.PushSensor");
        assert_eq!(s.trigger_types.len(), 2);
        assert_eq!(s.trigger_types[0].to_string(), "gh.push");
        assert_eq!(declared.len(), 1);
        assert_eq!(s.webhooks, vec!["github"]);
        assert!(s.poll_interval.is_zero());
        assert_eq!(s.max_emits, DEFAULT_MAX_EMITS);
        assert!(s.enabled);
    }

    #[test]
    fn poll_interval_defaults_to_a_minute() {
        let (s, _) = parse(&format!("{BASE}trigger_types: [gh.x]\n")).unwrap();
        assert_eq!(s.poll_interval, Duration::from_secs(60));
    }

    #[test]
    fn errors_name_the_field() {
        for (yaml, field, needle) in [
            (
                "class_name: P\nentry_point: nope.wasm\ntrigger_types: [gh.x]\n",
                "entry_point",
                "not found",
            ),
            (
                "class_name: P\nentry_point: ../s.wasm\ntrigger_types: [gh.x]\n",
                "entry_point",
                "inside the pack",
            ),
            (
                "class_name: P\nentry_point: s.wasm\n",
                "trigger_types",
                "must list",
            ),
            (
                "class_name: P\nentry_point: s.wasm\ntrigger_types: [nodot]\n",
                "trigger_types[0]",
                "",
            ),
            (
                "class_name: P\nentry_point: s.wasm\ntrigger_types: [gh.x]\npoll_interval: -1\n",
                "poll_interval",
                "0 or more",
            ),
            (
                "class_name: P\nentry_point: s.wasm\ntrigger_types: [gh.x]\npoll_interval: 0\n",
                "poll_interval",
                "never",
            ),
            (
                "class_name: P\nentry_point: s.wasm\ntrigger_types: [gh.x]\nwebhooks: [/x]\n",
                "webhooks[0]",
                "url path",
            ),
            (
                "class_name: P\nentry_point: s.wasm\ntrigger_types: [gh.x]\nmax_emits: 0\n",
                "max_emits",
                "at least 1",
            ),
            (
                "class_name: P\nentry_point: s.wasm\ntrigger_types:\n  - payload_schema: {}\n",
                "trigger_types[0]",
                "name",
            ),
            (
                "class_name: bad name\nentry_point: s.wasm\ntrigger_types: [gh.x]\n",
                "class_name",
                "",
            ),
        ] {
            let (f, m) = field_of(yaml);
            assert!(
                f == field || f.starts_with(field),
                "{yaml}: field {f:?}, message {m}"
            );
            assert!(m.contains(needle), "{yaml}: {m}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let (_, m) = field_of(&format!("{BASE}trigger_types: [gh.x]\npoll_intervall: 3\n"));
        assert!(m.contains("poll_intervall"), "{m}");
    }
}
