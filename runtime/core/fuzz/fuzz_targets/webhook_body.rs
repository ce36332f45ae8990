//! Webhook bodies: what the API accepts (nested at most `MAX_DEPTH`) must stay readable once
//! stored inside a trigger instance record, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use squall_core::json::check_depth;

fuzz_target!(|data: &[u8]| {
    if check_depth(data).is_err() {
        return;
    }
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // As stored: the record wraps the payload, which wraps the body.
    let record = json!({"trigger": "core.st2.webhook", "payload": {"headers": {}, "body": body}});
    let bytes = serde_json::to_vec(&record).unwrap();
    let _: Value = serde_json::from_slice(&bytes).expect("an accepted body stays readable");
});
