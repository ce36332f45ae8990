//! `core.echo`: returns its `message`, with the result StackStorm's `core.echo` gets from the
//! local runner running `echo "{{message}}"` (`{failed, succeeded, return_code, stdout,
//! stderr}`, stdout without its final newline, as `local_runner` strips it) — without a shell,
//! so nothing in the message is expanded.

use serde::Deserialize;
use squall_plugin::{Context, Error, ShellResult};

/// `core.echo` parameters (see `packs/core/actions/echo.yaml`).
#[derive(Deserialize)]
struct Params {
    message: String,
}

fn echo(_ctx: &Context, params: Params) -> Result<ShellResult, Error> {
    Ok(ShellResult::exited(0, params.message, ""))
}

squall_plugin::action!(echo);
