//! `core.echo`: returns its `message`, with the result StackStorm's `core.echo` gets from the
//! local runner running `echo "{{message}}"` (`{failed, succeeded, return_code, stdout,
//! stderr}`, stdout without its final newline, as `local_runner` strips it) — without a shell,
//! so nothing in the message is expanded.

use serde::{Deserialize, Serialize};
use squall_plugin::{Context, Error};

/// `core.echo` parameters (see `packs/core/actions/echo.yaml`).
#[derive(Deserialize)]
struct Params {
    message: String,
}

/// `core.echo` result, as StackStorm's local runner reports it.
#[derive(Serialize)]
struct Output {
    failed: bool,
    succeeded: bool,
    return_code: i32,
    stdout: String,
    stderr: String,
}

fn echo(_ctx: &Context, params: Params) -> Result<Output, Error> {
    Ok(Output {
        failed: false,
        succeeded: true,
        return_code: 0,
        stdout: params.message,
        stderr: String::new(),
    })
}

squall_plugin::action!(echo);
