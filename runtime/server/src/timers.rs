//! Timer triggers: one task per distinct timer (trigger type + parameters) that enabled rules
//! listen to, each dispatching a trigger instance when its schedule says
//! (see [`squall_core::schedule`]). Payload, as StackStorm's timers:
//! `{"executed_at": <RFC 3339>, "schedule": <the trigger parameters>}`.

use crate::Services;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use squall_core::Ref;
use squall_core::schedule::Schedule;
use tokio_util::sync::CancellationToken;

/// Starts a task per timer of the enabled rules; they stop when `stop` is cancelled.
pub fn start(services: &Services, stop: &CancellationToken) {
    let registry = services.registry();
    let mut timers: Vec<(Ref, Map<String, Value>)> = Vec::new();
    for rule in registry
        .packs()
        .rules()
        .filter(|r| registry.rule_enabled(r))
    {
        let key = (rule.trigger.kind.clone(), rule.trigger.parameters.clone());
        if !timers.contains(&key) {
            timers.push(key);
        }
    }
    for (trigger, params) in timers {
        let schedule = match Schedule::of(&trigger.to_string(), &params) {
            None => continue,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                // Rules are checked at load, so this only happens if the rule changed under us.
                tracing::error!(trigger.ref = %trigger, error = %e, "timer not started");
                continue;
            }
        };
        let shown = Value::Object(params.clone());
        tracing::info!(trigger.ref = %trigger, schedule = %shown, "timer started");
        let services = services.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut last = Timestamp::now();
            while let Some(next) = schedule.next_after(last) {
                let wait = next.duration_since(Timestamp::now()).unsigned_abs();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return,
                }
                last = next;
                let payload =
                    json!({"executed_at": Timestamp::now().to_string(), "schedule": params});
                if let Err(e) = services.dispatch(&trigger, &params, payload).await {
                    tracing::error!(trigger.ref = %trigger, error = %e, "timer could not fire");
                }
            }
        });
    }
}
