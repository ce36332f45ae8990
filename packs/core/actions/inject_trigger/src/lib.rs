//! `core.inject_trigger`: dispatches one trigger instance, as StackStorm's `core.inject_trigger`
//! (`contrib/core/actions/inject_trigger.py`, which posts `{trigger, payload, trace_tag}` to
//! `/api/v1/webhooks/st2`), through the host's `triggers` import: the operator must grant the
//! trigger type to the `core` pack (`[packs.core] triggers = [...]`). The result has the shape
//! of st2's Python runner around the webhook's answer (the request echoed):
//! `{"result": {"trigger", "payload", "trace_tag"}, "exit_code": 0, "stdout": "", "stderr": ""}`.
//! The trigger instance's id is logged. Squall has no traces yet: `trace_tag` is only echoed.

use serde::Deserialize;
use squall_plugin::{Context, Error, log, triggers};

/// `core.inject_trigger` parameters (see `packs/core/actions/inject_trigger.yaml`).
#[derive(Deserialize)]
struct Params {
    trigger: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    #[serde(default)]
    trace_tag: Option<String>,
}

fn inject(_ctx: &Context, params: Params) -> Result<serde_json::Value, Error> {
    let payload = params
        .payload
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    let id = triggers::dispatch(&params.trigger, &payload).map_err(Error::new)?;
    log::info(format!("trigger instance {id} of {}", params.trigger));
    Ok(serde_json::json!({
        "result": {
            "trigger": params.trigger,
            "payload": payload,
            "trace_tag": params.trace_tag,
        },
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
    }))
}

squall_plugin::action!(inject);
