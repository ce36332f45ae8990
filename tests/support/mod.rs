//! What the end-to-end test targets of `squall-cli` share: the real `squall serve` on a random
//! port ([`Server`]), an in-test HTTP server standing in for the outside world ([`HttpStub`]),
//! and scratch-directory helpers.
//!
//! Each target includes it with `mod support;`; the targets live in the top-level `tests/`
//! folder, so this resolves to `tests/support/mod.rs`.

// Each target uses only part of this module; the rest would warn as dead code (or an unused
// re-export) there.
#![allow(dead_code, unused_imports)]

mod server;
mod stub;

pub use server::Server;
pub use stub::{HttpStub, Response};

use std::path::{Path, PathBuf};

/// The `squall` binary under test, as built by Cargo for this test run.
pub const SQUALL: &str = env!("CARGO_BIN_EXE_squall");

/// The repository root (shipped packs, examples and fixtures are found from here).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies the directory tree `from` into `to`, creating `to`; a subdirectory holding a
/// `Cargo.toml` (a component's Rust sources, not needed at run time) is left out.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.path().join("Cargo.toml").exists() {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
