//! `core.error`: writes its `message` to stderr, as StackStorm's `core.error` runs
//! `>&2 echo "{{message}}"` with the local runner. That command exits 0, so st2's `core.error`
//! *succeeds*, with `{failed: false, succeeded: true, return_code: 0, stdout: "", stderr:
//! message}`; Squall's does the same (without a shell), so content written for st2 behaves the
//! same here.

use serde::{Deserialize, Serialize};
use squall_plugin::{Context, Error};

/// `core.error` parameters (see `packs/core/actions/error.yaml`).
#[derive(Deserialize)]
struct Params {
    message: String,
}

/// `core.error` result, as StackStorm's local runner reports it.
#[derive(Serialize)]
struct Output {
    failed: bool,
    succeeded: bool,
    return_code: i32,
    stdout: String,
    stderr: String,
}

fn error(_ctx: &Context, params: Params) -> Result<Output, Error> {
    eprintln!("{}", params.message);
    Ok(Output {
        failed: false,
        succeeded: true,
        return_code: 0,
        stdout: String::new(),
        stderr: params.message,
    })
}

squall_plugin::action!(error);
