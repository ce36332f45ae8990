//! `core.error`: writes its `message` to stderr, as StackStorm's `core.error` runs
//! `>&2 echo "{{message}}"` with the local runner. That command exits 0, so st2's `core.error`
//! *succeeds*, with `{failed: false, succeeded: true, return_code: 0, stdout: "", stderr:
//! message}`; Squall's does the same (without a shell), so content written for st2 behaves the
//! same here.

use serde::Deserialize;
use squall_plugin::{Context, Error, ShellResult};

/// `core.error` parameters (see `packs/core/actions/error.yaml`).
#[derive(Deserialize)]
struct Params {
    message: String,
}

fn error(_ctx: &Context, params: Params) -> Result<ShellResult, Error> {
    eprintln!("{}", params.message);
    Ok(ShellResult::exited(0, "", params.message))
}

squall_plugin::action!(error);
