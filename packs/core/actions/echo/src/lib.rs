//! `core.echo`: returns its `message` parameter as `{"stdout": message}`, like StackStorm's
//! `core.echo` (which runs `echo` and reports its stdout).

use serde::{Deserialize, Serialize};
use squall_plugin::{Context, Error};

/// `core.echo` parameters (see `packs/core/actions/echo.yaml`).
#[derive(Deserialize)]
struct Params {
    message: String,
}

/// `core.echo` result.
#[derive(Serialize)]
struct Output {
    stdout: String,
}

fn echo(_ctx: &Context, params: Params) -> Result<Output, Error> {
    Ok(Output {
        stdout: params.message,
    })
}

squall_plugin::action!(echo);
