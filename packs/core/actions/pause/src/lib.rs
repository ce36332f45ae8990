//! `core.pause`: sleeps `max_pause` seconds (or, with `random`, a whole number of seconds
//! drawn from 1 to `max_pause`) and returns the delay, as StackStorm's `core.pause`
//! (`contrib/core/actions/pause.py`), with the result shape of st2's Python runner:
//! `{"result": <seconds>, "exit_code": 0, "stdout": "", "stderr": ""}`.
//!
//! The sleep is the WASI monotonic clock's: it uses no fuel, and the action's `timeout` (limits
//! in `pause.yaml`) still bounds it.

use serde::Deserialize;
use squall_plugin::{Context, Error};

/// `core.pause` parameters (see `packs/core/actions/pause.yaml`).
#[derive(Deserialize)]
struct Params {
    max_pause: i64,
    #[serde(default)]
    random: bool,
}

fn pause(_ctx: &Context, params: Params) -> Result<serde_json::Value, Error> {
    let delay = if params.random {
        if params.max_pause < 1 {
            return Err(Error::new(format!(
                "empty range for randrange() (1, {}, {})",
                params.max_pause + 1,
                params.max_pause
            )));
        }
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| Error::new(e.to_string()))?;
        1 + (u64::from_le_bytes(bytes) % params.max_pause as u64) as i64
    } else {
        params.max_pause
    };
    if delay > 0 {
        std::thread::sleep(std::time::Duration::from_secs(delay as u64));
    }
    Ok(serde_json::json!({
        "result": delay,
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
    }))
}

squall_plugin::action!(pause);
