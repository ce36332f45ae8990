//! Trigger instances an action's component dispatches through its `triggers` import
//! (`wit/squall.wit`), as StackStorm's `core.inject_trigger` posts them to
//! `/api/v1/webhooks/st2`: default deny, granted per pack by trigger type
//! (`[packs.<pack>] triggers = [...]`, see [`squall_core::config::PackGrants::triggers`]).
//!
//! An instance goes through the same door as a webhook's ([`crate::Services::dispatch`]: type
//! known, payload within `[server] max_body` and `max_json_depth` and checked against its
//! `payload_schema`, durable before the component hears its id, rules evaluated in the
//! background) and the same backlog bound (`[server] max_backlog`). StackStorm's built-in
//! trigger types (`core.st2.*`) are granted only by their exact ref, never by a wildcard.
//! One execution dispatches at most [`MAX_DISPATCHED`]. A refusal is a
//! [`GateError::Denied`]: the host records it among the execution's denials.

use crate::services::WeakServices;
use serde_json::{Map, Value};
use squall_core::command::wildcard;
use squall_core::{Execution, Ref};
use squall_host::GateError;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Trigger instances one execution may dispatch; past it each call is refused.
pub(crate) const MAX_DISPATCHED: usize = 1000;

/// The `triggers` import of one `wasm` execution.
pub(crate) struct ActionTriggers {
    execution: String,
    pack: String,
    granted: Vec<String>,
    services: Option<WeakServices>,
    dispatched: AtomicUsize,
}

impl ActionTriggers {
    /// The gate of `execution` under its pack's `triggers` grant; `services` is where instances
    /// go (`None`: every call is refused, e.g. a bare runner in a benchmark).
    pub(crate) fn new(
        execution: &Execution,
        granted: Vec<String>,
        services: Option<WeakServices>,
    ) -> ActionTriggers {
        ActionTriggers {
            execution: execution.id.to_string(),
            pack: execution.action.pack.clone(),
            granted,
            services,
            dispatched: AtomicUsize::new(0),
        }
    }
}

/// Whether `pattern` grants `trigger`: by wildcard, except that StackStorm's built-in trigger
/// types (`core.st2.*`: action completions, inquiries, datastore changes, timers, webhooks)
/// must be named exactly, so `*` or `core.*` never lets a pack forge those events.
fn grants(pattern: &str, trigger: &str) -> bool {
    if trigger.starts_with("core.st2.") {
        return pattern == trigger;
    }
    wildcard(pattern, trigger)
}

#[async_trait::async_trait]
impl squall_host::TriggerGate for ActionTriggers {
    async fn dispatch(&self, trigger: String, payload_json: String) -> Result<String, GateError> {
        let pack = &self.pack;
        if !self.granted.iter().any(|p| grants(p, &trigger)) {
            let message = format!(
                "trigger {trigger:?} is not granted to pack {pack:?}: add it to [packs.{pack}] \
                 triggers in squall.toml (e.g. triggers = [{trigger:?}])"
            );
            return Err(GateError::Denied(message));
        }
        if self.dispatched.fetch_add(1, Ordering::SeqCst) >= MAX_DISPATCHED {
            return Err(GateError::Failed(format!(
                "the execution already dispatched {MAX_DISPATCHED} trigger instances, the most one may"
            )));
        }
        let services = self
            .services
            .as_ref()
            .and_then(WeakServices::upgrade)
            .ok_or(
                "trigger instances are dispatched only under squall serve or the CLI's services",
            )?;
        // The webhook door's bounds: `[server] max_body` and `max_json_depth`.
        let max_body = services.registry().config().server.max_body;
        if payload_json.len() as u64 > max_body {
            return Err(GateError::Failed(format!(
                "payload is {} bytes, over the limit of {max_body} bytes ([server] max_body)",
                payload_json.len()
            )));
        }
        squall_core::json::check_depth(payload_json.as_bytes())
            .map_err(|e| format!("payload: {e}"))?;
        let payload: Value =
            serde_json::from_str(&payload_json).map_err(|e| format!("payload is not JSON: {e}"))?;
        let reference: Ref = trigger
            .parse()
            .map_err(|e| format!("trigger {trigger:?}: {e}"))?;
        services.admit().map_err(|e| e.to_string())?;
        let instance = services
            .dispatch(&reference, &Map::new(), payload)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            execution.id = %self.execution,
            trigger_instance.id = %instance.id,
            trigger.ref = %reference,
            "trigger instance dispatched by an action"
        );
        Ok(instance.id.to_string())
    }
}
