//! `core.noop`: does nothing and succeeds with `{"failed": false, "succeeded": true,
//! "return_code": 0}`, the result of StackStorm's `noop` runner
//! (`contrib/runners/noop_runner/noop_runner/noop_runner.py`) that st2's `core.noop` uses.

use squall_plugin::{Context, Error};

fn noop(_ctx: &Context, _params: serde_json::Value) -> Result<serde_json::Value, Error> {
    Ok(serde_json::json!({"failed": false, "succeeded": true, "return_code": 0}))
}

squall_plugin::action!(noop);
