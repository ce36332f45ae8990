//! When timer triggers fire: `core.st2.IntervalTimer`, `core.st2.CronTimer`,
//! `core.st2.DateTimer`, with the parameters and semantics of StackStorm's timers (which use
//! APScheduler).
//!
//! - Interval: every `delta` `unit`s (weeks, days, hours, minutes, seconds), first one
//!   interval after the timer starts.
//! - Cron: APScheduler's fields `year`, `month`, `day`, `week`, `day_of_week` (0 = Monday or
//!   `mon`…`sun`), `hour`, `minute`, `second`, each a number or an expression (`*/5`, `1-5`,
//!   `1,15`); fields more significant than the least significant one given default to `*`, less
//!   significant ones to their minimum (so `{hour: 5}` is 05:00:00 daily). `week` (ISO week
//!   number) is not supported. Evaluated in `timezone` (IANA name, default UTC).
//! - Date: once, at `date` (`2026-11-23 10:00:00` or RFC 3339) in `timezone`; a date in the
//!   past never fires.
//!
//! Cron expressions are evaluated with the `cron` crate on wall-clock times, then placed in the
//! timezone with `jiff` (so DST gaps and folds follow jiff's `compatible` rule).

use crate::trigger::{CRON_TIMER, DATE_TIMER, INTERVAL_TIMER};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use std::str::FromStr;
use std::time::Duration;

/// A parsed timer.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every this long.
    Interval(Duration),
    /// Whenever the cron expression matches, in a timezone.
    Cron {
        /// The expression in the `cron` crate's 7-field syntax (sec min hour dom month dow year).
        expression: Box<cron::Schedule>,
        /// Where wall-clock times are.
        timezone: TimeZone,
    },
    /// Once.
    Date(Timestamp),
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    }
}

fn timezone(params: &Map<String, Value>) -> Result<TimeZone, String> {
    match params.get("timezone").map(text) {
        None => Ok(TimeZone::UTC),
        Some(name) if name.eq_ignore_ascii_case("utc") => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(&name).map_err(|e| format!("timezone {name:?}: {e}")),
    }
}

/// APScheduler's day_of_week numbers (0 = Monday) to the cron crate's (1 = Sunday).
fn day_of_week(expr: &str) -> String {
    let convert = |n: &str| match n.parse::<u8>() {
        Ok(d) if d <= 6 => ((d + 1) % 7 + 1).to_string(),
        _ => n.to_string(),
    };
    expr.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => format!("{}-{}", convert(a), convert(b)),
            None => convert(part),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn cron_expression(params: &Map<String, Value>) -> Result<cron::Schedule, String> {
    if params.contains_key("week") {
        return Err(
            "the `week` field (ISO week number) is not supported; use day and month".into(),
        );
    }
    // Most significant first, with each field's minimum.
    let fields = [
        ("year", "*"),
        ("month", "1"),
        ("day", "1"),
        ("day_of_week", "*"),
        ("hour", "0"),
        ("minute", "0"),
        ("second", "0"),
    ];
    let last_given = fields
        .iter()
        .rposition(|(name, _)| params.contains_key(*name));
    let mut values = std::collections::HashMap::new();
    for (i, (name, minimum)) in fields.iter().enumerate() {
        let value = match params.get(*name) {
            Some(v) => text(v),
            None if last_given.is_some_and(|last| i > last) => minimum.to_string(),
            None => "*".to_string(),
        };
        values.insert(*name, value);
    }
    let dow = day_of_week(&values["day_of_week"]);
    let expression = format!(
        "{} {} {} {} {} {} {}",
        values["second"],
        values["minute"],
        values["hour"],
        values["day"],
        values["month"],
        dow,
        values["year"]
    );
    cron::Schedule::from_str(&expression).map_err(|e| format!("cron fields {expression:?}: {e}"))
}

fn parse_date(text: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let civil: DateTime = text
        .replacen(' ', "T", 1)
        .parse()
        .map_err(|e| format!("date {text:?} is not a date and time: {e}"))?;
    civil
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| format!("date {text:?}: {e}"))
}

impl Schedule {
    /// The schedule of timer trigger `trigger` with `params`; `None` for other triggers.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn of(trigger: &str, params: &Map<String, Value>) -> Option<Result<Schedule, String>> {
        let parsed = match trigger {
            INTERVAL_TIMER => {
                let delta = params.get("delta").and_then(Value::as_u64).unwrap_or(0);
                let unit = match params.get("unit").and_then(Value::as_str) {
                    Some("weeks") => 604_800,
                    Some("days") => 86_400,
                    Some("hours") => 3_600,
                    Some("minutes") => 60,
                    Some("seconds") => 1,
                    other => {
                        return Some(Err(format!(
                            "unit {other:?} is not weeks, days, hours, minutes or seconds"
                        )));
                    }
                };
                if delta == 0 {
                    return Some(Err("delta must be a positive integer".into()));
                }
                Ok(Schedule::Interval(Duration::from_secs(delta * unit)))
            }
            CRON_TIMER => timezone(params).and_then(|tz| {
                Ok(Schedule::Cron {
                    expression: Box::new(cron_expression(params)?),
                    timezone: tz,
                })
            }),
            DATE_TIMER => timezone(params).and_then(|tz| {
                let date = params.get("date").map(text).ok_or("missing date")?;
                parse_date(&date, &tz).map(Schedule::Date)
            }),
            _ => return None,
        };
        Some(parsed)
    }

    /// The first firing strictly after `after`, or `None` if it never fires again.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Interval(every) => {
                let step = jiff::SignedDuration::try_from(*every).ok()?;
                after.checked_add(step).ok()
            }
            Schedule::Date(at) => (*at > after).then_some(*at),
            Schedule::Cron {
                expression,
                timezone,
            } => {
                // Walk wall-clock candidates (as if UTC) and place each in the timezone.
                let local = after.to_zoned(timezone.clone()).datetime();
                let start = chrono::NaiveDateTime::parse_from_str(
                    &local.strftime("%Y-%m-%dT%H:%M:%S%.f").to_string(),
                    "%Y-%m-%dT%H:%M:%S%.f",
                )
                .ok()?
                .and_utc();
                expression.after(&start).take(4).find_map(|candidate| {
                    let civil: DateTime = candidate
                        .naive_utc()
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string()
                        .parse()
                        .ok()?;
                    let at = civil.to_zoned(timezone.clone()).ok()?.timestamp();
                    (at > after).then_some(at)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sched(trigger: &str, params: Value) -> Result<Schedule, String> {
        Schedule::of(trigger, params.as_object().unwrap()).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn interval_adds_its_period() {
        let s = sched(INTERVAL_TIMER, json!({"unit": "minutes", "delta": 5})).unwrap();
        assert_eq!(
            s.next_after(at("2026-11-23T10:00:00Z")),
            Some(at("2026-11-23T10:05:00Z"))
        );
        assert!(sched(INTERVAL_TIMER, json!({"unit": "fortnights", "delta": 1})).is_err());
    }

    #[test]
    fn cron_fields_default_like_apscheduler() {
        for (params, after, want) in [
            (
                json!({"hour": 5}),
                "2026-11-23T10:00:00Z",
                "2026-11-24T05:00:00Z",
            ),
            (
                json!({"minute": "*/15"}),
                "2026-11-23T10:07:30Z",
                "2026-11-23T10:15:00Z",
            ),
            (
                json!({"second": "*/10"}),
                "2026-11-23T10:00:01Z",
                "2026-11-23T10:00:10Z",
            ),
            // 2026-11-23 is a Monday; day_of_week 4 is Friday in APScheduler.
            (
                json!({"day_of_week": 4}),
                "2026-11-23T10:00:00Z",
                "2026-11-27T00:00:00Z",
            ),
            (
                json!({"day_of_week": "sat", "hour": 9}),
                "2026-11-23T10:00:00Z",
                "2026-11-28T09:00:00Z",
            ),
            (
                json!({"hour": 9, "timezone": "America/New_York"}),
                "2026-11-23T10:00:00Z",
                "2026-11-23T14:00:00Z",
            ),
        ] {
            let s = sched(CRON_TIMER, params.clone()).unwrap();
            assert_eq!(s.next_after(at(after)), Some(at(want)), "{params}");
        }
        assert!(
            sched(CRON_TIMER, json!({"week": 3}))
                .unwrap_err()
                .contains("week")
        );
        assert!(sched(CRON_TIMER, json!({"hour": "x"})).is_err());
        assert!(sched(CRON_TIMER, json!({"timezone": "Mars/Olympus"})).is_err());
    }

    #[test]
    fn date_fires_once_and_never_in_the_past() {
        let s = sched(DATE_TIMER, json!({"date": "2026-11-23 12:00:00"})).unwrap();
        assert_eq!(
            s.next_after(at("2026-11-23T10:00:00Z")),
            Some(at("2026-11-23T12:00:00Z"))
        );
        assert_eq!(s.next_after(at("2026-11-23T12:00:00Z")), None);
        let tz = sched(
            DATE_TIMER,
            json!({"date": "2026-11-23 12:00:00", "timezone": "Europe/Paris"}),
        )
        .unwrap();
        assert_eq!(
            tz.next_after(at("2026-11-23T00:00:00Z")),
            Some(at("2026-11-23T11:00:00Z"))
        );
        assert!(sched(DATE_TIMER, json!({"date": "tomorrow"})).is_err());
        assert!(Schedule::of("core.st2.webhook", &Map::new()).is_none());
    }
}
