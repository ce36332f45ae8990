//! Trigger instances an action's component dispatches through its `triggers` import
//! (`wit/squall.wit`), as StackStorm's `core.inject_trigger` posts them to
//! `/api/v1/webhooks/st2`: default deny, granted per pack by trigger type
//! (`[packs.<pack>] triggers = [...]`, see [`squall_core::config::PackGrants::triggers`]).
//!
//! An instance goes through the same door as a webhook's ([`crate::Services::dispatch`]: type
//! known, payload checked against its `payload_schema`, durable before the component hears its
//! id, rules evaluated in the background) and the same backlog bound (`[server] max_backlog`).
//! One execution dispatches at most [`MAX_DISPATCHED`]. Refusals are recorded among the
//! execution's denials.

use crate::services::WeakServices;
use serde_json::{Map, Value};
use squall_core::command::wildcard;
use squall_core::{Execution, Ref};
use std::sync::Mutex;
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
    denials: Mutex<Vec<String>>,
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
            denials: Mutex::new(Vec::new()),
        }
    }

    /// The refusals, for the execution's denials.
    pub(crate) fn take_denials(&self) -> Vec<String> {
        std::mem::take(&mut *self.denials.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait::async_trait]
impl squall_host::TriggerGate for ActionTriggers {
    async fn dispatch(&self, trigger: String, payload: Value) -> Result<String, String> {
        let pack = &self.pack;
        if !self.granted.iter().any(|p| wildcard(p, &trigger)) {
            let message = format!(
                "trigger {trigger:?} is not granted to pack {pack:?}: add it to [packs.{pack}] \
                 triggers in squall.toml (e.g. triggers = [{trigger:?}])"
            );
            tracing::warn!(execution.id = %self.execution, "{message}");
            self.denials
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(message.clone());
            return Err(message);
        }
        if self.dispatched.fetch_add(1, Ordering::SeqCst) >= MAX_DISPATCHED {
            return Err(format!(
                "the execution already dispatched {MAX_DISPATCHED} trigger instances, the most one may"
            ));
        }
        let reference: Ref = trigger
            .parse()
            .map_err(|e| format!("trigger {trigger:?}: {e}"))?;
        let services = self
            .services
            .as_ref()
            .and_then(WeakServices::upgrade)
            .ok_or(
                "trigger instances are dispatched only under squall serve or the CLI's services",
            )?;
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
