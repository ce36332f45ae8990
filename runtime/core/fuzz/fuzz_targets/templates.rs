//! Jinja templates as rules and workflows render them: any text, against a payload. Checking
//! and rendering may fail, but must not panic nor run unbounded (fuel and output limits).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use squall_core::template::{Context, check, render_typed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check(text).is_err() {
        return;
    }
    let payload = json!({
        "body": {"alerts": [{"labels": {"service": "nginx", "severity": "critical"}}]},
        "headers": {"X-Github-Event": "push"},
        "n": 3,
    });
    let _ = render_typed(text, &Context::trigger(&payload));
});
