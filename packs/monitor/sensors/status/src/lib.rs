//! `monitor.StatusSensor`: watches HTTP endpoints and emits `monitor.status_changed` when one
//! goes up or down.
//!
//! Every poll GETs each target of the pack config (`configs/monitor.yaml`, schema in
//! `config.schema.yaml`), one after another, each bounded by the config's `timeout` (seconds):
//!
//! - **up**: the answer's status is 2xx or 3xx (redirects are not followed), or equals the
//!   target's `expect_status` when it has one;
//! - **down**: any other status, a connection error or a timeout (`status_code` is then `null`
//!   and `error` says what happened);
//! - **not checked**: a destination the operator did not grant (`[packs.monitor] http_allow`) or
//!   a URL that is not `http(s)://host...`; logged as an error, the target's state is left alone.
//!
//! A poll spends at most [`POLL_BUDGET`] checking: targets that could end past it are left for
//! a later poll (with a warning), so hanging targets cannot make every poll time out; each poll
//! starts at a different target, so none is left out for good.
//!
//! The last status of target `<name>` is the pack-local key `status.<name>` (shown by
//! `squall key list` as `monitor:status.<name>`, value `up` or `down`). The first observation of
//! a target is stored without emitting; a change is stored and emits one
//! `{name, url, previous, current, status_code, error, checked_at}`. The host commits the key
//! writes and the emitted instances of a poll together, only when the poll succeeds, so a flip
//! yields exactly one trigger instance, also across a crash or restart.

use serde::Deserialize;
use serde_json::{Value, json};
use squall_plugin::http::{HttpError, Request};
use squall_plugin::sensor::{self, Sensor, SensorContext};
use squall_plugin::{Error, log};
use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The trigger type this sensor emits.
const TRIGGER: &str = "monitor.status_changed";

/// Seconds per target when the config gives none (the schema's default).
const DEFAULT_TIMEOUT_SECS: f64 = 10.0;

/// How long one poll may spend checking targets: a target is not started when it could end
/// past this. Below the sensor's call timeout (`limits.timeout: 120s` in
/// `sensors/status_sensor.yaml`), so a poll with many hanging targets still returns and keeps
/// what it saw instead of being cut off and keeping nothing.
const POLL_BUDGET: Duration = Duration::from_secs(100);

/// The pack config (see `config.schema.yaml`).
#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    targets: Vec<Target>,
    /// Seconds.
    #[serde(default = "default_timeout")]
    timeout: f64,
}

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_SECS
}

/// One watched endpoint.
#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    url: String,
    #[serde(default)]
    expect_status: Option<u16>,
}

/// A target's status, as stored and emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Up,
    Down,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Down => "down",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        match text {
            "up" => Some(Status::Up),
            "down" => Some(Status::Down),
            _ => None,
        }
    }
}

/// What one GET came to.
#[derive(Debug, PartialEq)]
enum Check {
    /// The target answered with this status.
    Answered(u16),
    /// No answer: connection refused, DNS, TLS, timeout, oversized body (the message).
    Unreachable(String),
    /// Not checked because the config or the grants are wrong (the message); the stored state
    /// is left alone rather than reporting the target down.
    Misconfigured(String),
}

impl Check {
    fn from_result(result: Result<u16, HttpError>) -> Check {
        match result {
            Ok(status) => Check::Answered(status),
            Err(
                e @ (HttpError::Denied(_)
                | HttpError::InvalidUrl { .. }
                | HttpError::UnsupportedScheme(_)
                | HttpError::InvalidHeader(_)),
            ) => Check::Misconfigured(e.to_string()),
            Err(e) => Check::Unreachable(e.to_string()),
        }
    }
}

/// The status a check means, with the payload's `status_code` and `error`.
#[derive(Debug, PartialEq)]
struct Observation {
    status: Status,
    status_code: Option<u16>,
    error: Option<String>,
}

/// Classifies an answer or a failure to get one (`Check::Misconfigured` is handled before).
fn observe(check: Check, expect_status: Option<u16>) -> Observation {
    match check {
        Check::Answered(code) => {
            let up = match expect_status {
                Some(expected) => code == expected,
                None => (200..400).contains(&code),
            };
            let error = (!up).then(|| match expect_status {
                Some(expected) => format!("HTTP status {code}, expected {expected}"),
                None => format!("HTTP status {code}"),
            });
            Observation {
                status: if up { Status::Up } else { Status::Down },
                status_code: Some(code),
                error,
            }
        }
        Check::Unreachable(message) | Check::Misconfigured(message) => Observation {
            status: Status::Down,
            status_code: None,
            error: Some(message),
        },
    }
}

/// What to do with an observation given the stored status.
#[derive(Debug, PartialEq)]
enum Step {
    /// Nothing stored yet (or an unreadable value): store, do not emit.
    First,
    /// Unchanged: nothing to write.
    Same,
    /// Changed from `previous`: store and emit.
    Flip(Status),
}

fn step(stored: Option<&str>, current: Status) -> Step {
    match stored.and_then(Status::parse) {
        None => Step::First,
        Some(previous) if previous == current => Step::Same,
        Some(previous) => Step::Flip(previous),
    }
}

/// The pack-local key holding the last status of target `name`.
fn key(name: &str) -> String {
    format!("status.{name}")
}

/// The `monitor.status_changed` payload.
fn payload(target: &Target, previous: Status, seen: &Observation, checked_at: &str) -> Value {
    json!({
        "name": target.name,
        "url": target.url,
        "previous": previous.as_str(),
        "current": seen.status.as_str(),
        "status_code": seen.status_code,
        "error": seen.error,
        "checked_at": checked_at,
    })
}

/// Checks the config beyond its schema: a per-target timeout and unique names (two targets
/// sharing a key would flip it back and forth every poll).
fn validate(config: &Config) -> Result<Duration, String> {
    let timeout = Duration::try_from_secs_f64(config.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            format!(
                "configs/monitor.yaml: timeout: {} is not a positive number of seconds",
                config.timeout
            )
        })?;
    let mut names = BTreeSet::new();
    for (i, t) in config.targets.iter().enumerate() {
        if !names.insert(t.name.as_str()) {
            return Err(format!(
                "configs/monitor.yaml: targets[{i}].name: {:?} is used by an earlier target; names must be unique",
                t.name
            ));
        }
    }
    Ok(timeout)
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2025-01-02T03:04:05.678Z` (times before
/// 1970 print as the epoch). Written out rather than pulling a date crate into the component.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The order to check `len` targets in: all of them, starting at a position that moves with
/// `seed` (the clock), so when hanging targets exhaust [`POLL_BUDGET`] the ones after them still
/// get checked in later polls.
fn rotation(len: usize, seed: u64) -> impl Iterator<Item = usize> {
    let start = if len == 0 {
        0
    } else {
        (seed % len as u64) as usize
    };
    (0..len).map(move |i| (start + i) % len)
}

struct StatusSensor;

impl Sensor for StatusSensor {
    fn poll(ctx: &SensorContext) -> Result<(), Error> {
        let config: Config = ctx.config()?;
        let timeout = validate(&config)?;
        let started = Instant::now();
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        for (i, index) in rotation(config.targets.len(), seconds).enumerate() {
            let target = &config.targets[index];
            if started.elapsed() + timeout > POLL_BUDGET {
                log::warn(format!(
                    "{} of {} targets not checked this poll: checking them could pass the poll's \
                     {} s budget (lower `timeout` in configs/monitor.yaml, or fix the hanging targets)",
                    config.targets.len() - i,
                    config.targets.len(),
                    POLL_BUDGET.as_secs()
                ));
                break;
            }
            let result = Request::new("GET", &target.url)
                .header(
                    "user-agent",
                    concat!("squall-monitor/", env!("CARGO_PKG_VERSION")),
                )
                .timeout(timeout)
                .send()
                .map(|r| r.status);
            let check = Check::from_result(result);
            if let Check::Misconfigured(message) = &check {
                log::error(format!("target {:?} not checked: {message}", target.name));
                continue;
            }
            let seen = observe(check, target.expect_status);
            let key = key(&target.name);
            let stored = sensor::datastore::get(&key)?;
            match step(stored.as_deref(), seen.status) {
                Step::Same => {}
                Step::First => {
                    sensor::datastore::set(&key, seen.status.as_str(), None)?;
                    log::info(format!(
                        "target {:?} first seen {}",
                        target.name,
                        seen.status.as_str()
                    ));
                }
                Step::Flip(previous) => {
                    sensor::datastore::set(&key, seen.status.as_str(), None)?;
                    let checked_at = rfc3339(SystemTime::now());
                    sensor::emit(TRIGGER, &payload(target, previous, &seen, &checked_at))?;
                    log::info(format!(
                        "target {:?} went {}",
                        target.name,
                        seen.status.as_str()
                    ));
                }
            }
        }
        Ok(())
    }
}

squall_plugin::sensor!(StatusSensor);

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "web".into(),
            url: "http://web.example.com/health".into(),
            expect_status: None,
        }
    }

    #[test]
    fn observe_classifies_statuses_and_failures() {
        let unreachable = || Check::Unreachable("connection refused".into());
        for (check, expect, status, code, error) in [
            (Check::Answered(200), None, Status::Up, Some(200), None),
            (Check::Answered(204), None, Status::Up, Some(204), None),
            (Check::Answered(301), None, Status::Up, Some(301), None),
            (Check::Answered(399), None, Status::Up, Some(399), None),
            (
                Check::Answered(199),
                None,
                Status::Down,
                Some(199),
                Some("HTTP status 199"),
            ),
            (
                Check::Answered(404),
                None,
                Status::Down,
                Some(404),
                Some("HTTP status 404"),
            ),
            (
                Check::Answered(500),
                None,
                Status::Down,
                Some(500),
                Some("HTTP status 500"),
            ),
            (Check::Answered(401), Some(401), Status::Up, Some(401), None),
            (
                Check::Answered(200),
                Some(204),
                Status::Down,
                Some(200),
                Some("HTTP status 200, expected 204"),
            ),
            (
                unreachable(),
                None,
                Status::Down,
                None,
                Some("connection refused"),
            ),
            (
                unreachable(),
                Some(200),
                Status::Down,
                None,
                Some("connection refused"),
            ),
        ] {
            let label = format!("{check:?} expect {expect:?}");
            assert_eq!(
                observe(check, expect),
                Observation {
                    status,
                    status_code: code,
                    error: error.map(str::to_string),
                },
                "{label}"
            );
        }
    }

    #[test]
    fn transport_errors_are_down_and_config_errors_are_not_checked() {
        let url = "http://x:1/".to_string();
        let misconfigured = |r| matches!(Check::from_result(r), Check::Misconfigured(_));
        let unreachable = |r| matches!(Check::from_result(r), Check::Unreachable(_));
        assert!(misconfigured(Err(HttpError::Denied(url.clone()))));
        assert!(misconfigured(Err(HttpError::UnsupportedScheme(
            "ftp".into()
        ))));
        assert!(misconfigured(Err(HttpError::InvalidUrl {
            url: "nope".into(),
            reason: "relative URL without a base".into(),
        })));
        assert!(unreachable(Err(HttpError::Timeout(url.clone()))));
        assert!(unreachable(Err(HttpError::Transport(
            "ConnectionRefused".into()
        ))));
        assert!(unreachable(Err(HttpError::TooLarge(16))));
        assert_eq!(Check::from_result(Ok(503)), Check::Answered(503));
    }

    #[test]
    fn step_stores_the_first_observation_and_emits_only_on_change() {
        for (stored, current, expected) in [
            (None, Status::Up, Step::First),
            (None, Status::Down, Step::First),
            (Some("garbage"), Status::Up, Step::First),
            (Some("up"), Status::Up, Step::Same),
            (Some("down"), Status::Down, Step::Same),
            (Some("up"), Status::Down, Step::Flip(Status::Up)),
            (Some("down"), Status::Up, Step::Flip(Status::Down)),
        ] {
            assert_eq!(step(stored, current), expected, "{stored:?} -> {current:?}");
        }
    }

    #[test]
    fn payload_has_every_field_of_the_trigger_schema() {
        let down = observe(Check::Answered(500), None);
        assert_eq!(
            payload(&target(), Status::Up, &down, "2025-01-02T03:04:05.678Z"),
            json!({
                "name": "web",
                "url": "http://web.example.com/health",
                "previous": "up",
                "current": "down",
                "status_code": 500,
                "error": "HTTP status 500",
                "checked_at": "2025-01-02T03:04:05.678Z",
            })
        );
        let up = observe(Check::Answered(200), None);
        let p = payload(&target(), Status::Down, &up, "t");
        assert_eq!(
            (p["status_code"].clone(), p["error"].clone()),
            (json!(200), Value::Null)
        );
    }

    #[test]
    fn rotation_visits_every_target_once_from_a_moving_start() {
        for (len, seed, expected) in [
            (0, 7, vec![]),
            (1, 7, vec![0]),
            (3, 0, vec![0, 1, 2]),
            (3, 1, vec![1, 2, 0]),
            (3, 5, vec![2, 0, 1]),
        ] {
            assert_eq!(
                rotation(len, seed).collect::<Vec<_>>(),
                expected,
                "{len} {seed}"
            );
        }
    }

    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        for (secs, millis, expected) in [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.005Z"),
            (1_735_787_045, 678, "2025-01-02T03:04:05.678Z"),
            (4_107_542_399, 999, "2100-02-28T23:59:59.999Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
            assert_eq!(rfc3339(t), expected, "{secs}");
        }
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn validate_rejects_duplicate_names_and_bad_timeouts() {
        let config = |names: &[&str], timeout: f64| Config {
            targets: names
                .iter()
                .map(|n| Target {
                    name: (*n).into(),
                    ..target()
                })
                .collect(),
            timeout,
        };
        assert_eq!(
            validate(&config(&["a", "b"], 2.5)),
            Ok(Duration::from_millis(2500))
        );
        assert_eq!(validate(&config(&[], 10.0)), Ok(Duration::from_secs(10)));
        let dup = validate(&config(&["a", "b", "a"], 1.0)).unwrap_err();
        assert!(dup.contains("targets[2].name: \"a\""), "{dup}");
        for bad in [0.0, -1.0, f64::NAN] {
            let e = validate(&config(&["a"], bad)).unwrap_err();
            assert!(e.contains("timeout"), "{bad}: {e}");
        }
    }

    #[test]
    fn config_takes_the_schema_shape_with_defaults() {
        let c: Config = serde_json::from_value(json!({
            "targets": [{"name": "api", "url": "https://api.example.com", "expect_status": 401}]
        }))
        .unwrap();
        assert_eq!(c.timeout, DEFAULT_TIMEOUT_SECS);
        assert_eq!(c.targets[0].expect_status, Some(401));
        let empty: Config = serde_json::from_value(json!({})).unwrap();
        assert!(empty.targets.is_empty());
    }
}
