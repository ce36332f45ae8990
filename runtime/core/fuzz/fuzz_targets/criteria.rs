//! Rule criteria: any criteria object against any payload. Parsing may refuse; evaluating
//! must not panic, whatever the operators, patterns (regexes, templates) and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use squall_core::criteria::Criteria;
use squall_core::template::Context;

fuzz_target!(|data: &[u8]| {
    // `<criteria JSON>\0<payload JSON>`
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(criteria), Some(payload)) = (parts.next(), parts.next()) else {
        return;
    };
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(criteria) else {
        return;
    };
    let Ok(payload) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    if let Ok(criteria) = Criteria::parse(&map) {
        let _ = criteria.matches(&payload, &Context::trigger(&payload));
    }
});
