//! `core.noop`: does nothing and succeeds with `{}`, like StackStorm's `core.noop`.

use squall_plugin::{Context, Error};

fn noop(_ctx: &Context, _params: serde_json::Value) -> Result<serde_json::Value, Error> {
    Ok(serde_json::Value::Object(Default::default()))
}

squall_plugin::action!(noop);
