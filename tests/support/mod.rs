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
/// The credential headers Squall strips from webhook requests (name, a value to look for), as
/// a caller would send them.
pub const CREDENTIAL_HEADERS: [(&str, &str); 5] = [
    ("St2-Api-Key", "caller-api-key"),
    ("X-Auth-Token", "caller-token"),
    ("Authorization", "Bearer caller-bearer"),
    ("Proxy-Authorization", "Basic caller-proxy"),
    ("Cookie", "session=caller-cookie"),
];

/// A `POST` to `path` with a JSON body `{}`, every one of [`CREDENTIAL_HEADERS`] and
/// `X-Github-Event: push`, plus `extra` headers.
pub fn post_with_credentials(
    server: &Server,
    path: &str,
    extra: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let mut request = server
        .request(reqwest::Method::POST, path)
        .header("content-type", "application/json")
        .header("X-Github-Event", "push");
    for (name, value) in CREDENTIAL_HEADERS.iter().chain(extra) {
        request = request.header(*name, *value);
    }
    request.body("{}").send().unwrap()
}

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

/// Writes `<dir>/squall.toml`: data in `<dir>/data`, packs from the shipped `packs/` and then
/// `<dir>/packs`, followed by `extra` (more TOML, e.g. `"[server]\nconcurrency = 8\n"`).
pub fn write_squall_toml(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("squall.toml"),
        format!(
            "data_dir = \"data\"\npacks_dirs = [{:?}, \"packs\"]\n{extra}",
            repo().join("packs").display().to_string()
        ),
    )
    .unwrap();
}

/// Creates the pack `<dir>/packs/<name>` with a `pack.yaml` of `name: <name>` followed by
/// `extra` (more YAML); returns the pack's directory.
pub fn new_pack(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let pack = dir.join("packs").join(name);
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(pack.join("pack.yaml"), format!("name: {name}\n{extra}")).unwrap();
    pack
}

/// The action `<pack>.<name>`: the hostile test component (echoes, sleeps, fails, ... by its
/// `mode` parameter) as `<pack>/actions/<name>.wasm`, declared in `<pack>/actions/<name>.yaml`
/// as `name`, `runner_type: wasm`, `entry_point` and then `yaml` (more YAML: parameters,
/// limits, ...).
pub fn hostile_action(pack: &Path, name: &str, yaml: &str) {
    let actions = pack.join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::copy(
        squall_test_components::TEST_HOSTILE,
        actions.join(format!("{name}.wasm")),
    )
    .unwrap();
    std::fs::write(
        actions.join(format!("{name}.yaml")),
        format!("name: {name}\nrunner_type: wasm\nentry_point: {name}.wasm\n{yaml}"),
    )
    .unwrap();
}

/// A guest toolchain program: the one named by the variable `env` (else `default`, found on
/// `PATH`) when it answers `--version`. When it does not: a failure if the variable `require`
/// is set (`.ci/run` sets it: CI installs the tool), else `None`, said on stderr with `install`
/// (how to get it), so a machine without it still runs the rest.
pub fn guest_tool(env: &str, default: &str, require: &str, install: &str) -> Option<PathBuf> {
    let named = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    let found = std::process::Command::new(&named)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(named);
    }
    assert!(
        std::env::var_os(require).is_none(),
        "{require} is set but {} does not run ({install})",
        named.display()
    );
    eprintln!("skipped: no {default} ({install}; CI installs it)");
    None
}
