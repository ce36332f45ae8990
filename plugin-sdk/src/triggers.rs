//! Trigger instances from an action, through the host's `squall:plugin/triggers` import, as
//! StackStorm's `core.inject_trigger` posts them to `/api/v1/webhooks/st2`.
//!
//! Denied unless the operator granted the trigger type to the action's pack (`[packs.<pack>]
//! triggers = ["ops.*"]` in `squall.toml`); the payload is checked against the type's
//! `payload_schema`. The instance is durable when [`dispatch`] returns; rules on it run in the
//! background.

use crate::bindings::squall::plugin::triggers as wit;

/// Dispatches one instance of `trigger` (`<pack>.<name>`) with `payload`; returns its id.
///
/// # Errors
/// The host's message: not granted (naming the grant to add), unknown type, payload refused by
/// the schema, the execution's budget (1,000 instances) used up.
pub fn dispatch(trigger: &str, payload: &serde_json::Value) -> Result<String, String> {
    wit::dispatch(trigger, &payload.to_string())
}
