//! Pack content: any text as an action, rule, sensor or trigger type file. Loading may refuse
//! with an error naming the file; it must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use squall_core::action::Action;
use squall_core::rule::{Lookup, Rule};
use squall_core::sensor::Sensor;
use squall_core::trigger::TriggerType;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A pack directory with `actions/a.wasm` and `sensors/s.wasm` for entry points to find.
fn pack() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("squall-fuzz-pack-{}", std::process::id()));
        for sub in ["actions", "sensors"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("actions/a.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.join("sensors/s.wasm"), b"\0asm").unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = pack();
    let file = dir.join("x.yaml");
    let action = Action::parse(text, "fuzz", &dir.join("actions"), &file).ok();
    let find_action = |r: &squall_core::Ref| action.as_ref().filter(|a| &a.reference == r);
    let no_type = |_: &squall_core::Ref| None;
    let lookup = Lookup {
        action: &find_action,
        trigger_type: &no_type,
    };
    let _ = Rule::parse(text, "fuzz", &file, &lookup);
    let _ = Sensor::parse(text, "fuzz", &dir.join("sensors"), &file);
    let _ = TriggerType::parse(text, "fuzz", &file);
});
