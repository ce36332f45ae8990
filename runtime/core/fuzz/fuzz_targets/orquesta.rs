//! Orquesta workflows: any text as a workflow spec; one that inspects clean is conducted
//! with every action succeeding, under small budgets. Nothing may panic, and the conductor
//! must end (its budgets bound every step).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, json};
use squall_core::ExecutionStatus;
use squall_core::config::WorkflowSettings;
use squall_core::workflow::{Conductor, WorkflowSpec, inspect};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = WorkflowSpec::parse(text) else {
        return;
    };
    if !inspect(&spec, None).is_empty() {
        return;
    }
    let budget = WorkflowSettings {
        max_tasks: 200,
        max_items: 50,
        max_transitions_per_event: 100,
        max_state_bytes: 1 << 20,
    };
    let mut conductor = Conductor::start(&spec, &Map::new(), None, &budget);
    for _ in 0..500 {
        let dispatches = conductor.take_dispatches();
        if dispatches.is_empty() {
            break;
        }
        for (n, d) in dispatches.iter().enumerate() {
            conductor.bind(d.task, d.run, format!("ex{n}"));
            conductor.update(
                d.task,
                d.run,
                ExecutionStatus::Succeeded,
                json!({"ok": true}),
            );
        }
    }
    let _ = conductor.result();
});
