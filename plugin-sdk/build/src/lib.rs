//! `squall-plugin-build`: compile guest crates to WebAssembly components from a build script.
//!
//! Squall builds its shipped packs and its test components from source on every `cargo build` /
//! `cargo test`, the way wasmtime's `test-programs` do: a build script runs a nested
//! `cargo build --release --target wasm32-wasip2` for the guest packages of the same workspace,
//! in a separate target directory (`<target>/guests`) so the nested build never waits on the
//! outer one's lock, and hands back the paths of the `.wasm` components.
//!
//! Main item: [`build_components`].

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target every Squall component is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// A guest package to build: its Cargo package name (e.g. `core-echo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    /// The Cargo package name; the component is `<name with - replaced by _>.wasm`.
    pub package: String,
}

/// Why the nested build failed.
#[derive(Debug)]
pub enum BuildError {
    /// `cargo` could not be started.
    Spawn(std::io::Error),
    /// `cargo build` exited unsuccessfully (its own output says why; it is inherited).
    Failed {
        /// The command line that failed.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The build succeeded but a component is not where cargo puts it.
    Missing(PathBuf),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Spawn(e) => write!(f, "cannot run cargo to build guest components: {e}"),
            BuildError::Failed { command, status } => write!(
                f,
                "building guest components failed ({status}): {command}\n\
                 (is the {TARGET} target installed? `rustup target add {TARGET}`)"
            ),
            BuildError::Missing(p) => write!(f, "component missing after build: {}", p.display()),
        }
    }
}

impl std::error::Error for BuildError {}

/// The target directory the nested builds share: `<outer target dir>/guests`, derived from the
/// build script's `OUT_DIR` (`<target>/<profile>/build/<pkg>-<hash>/out`), or
/// `$CARGO_TARGET_DIR/guests` when that is set.
pub fn guest_target_dir() -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("guests");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    // out -> <pkg>-<hash> -> build -> <profile> -> <target dir>
    let target = out
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.join("guests-target"));
    target.join("guests")
}

/// Builds `guests` (packages of the workspace at `workspace_root`) in release mode for
/// [`TARGET`] and returns each component's path, in the order given.
///
/// Environment that only makes sense for the host build (`RUSTFLAGS`, `CARGO_ENCODED_RUSTFLAGS`,
/// `CARGO_BUILD_TARGET`, clippy's wrapper) is removed from the nested cargo.
///
/// # Errors
/// [`BuildError`] when cargo cannot start, the build fails, or a component is missing.
pub fn build_components(
    workspace_root: &Path,
    guests: &[Guest],
) -> Result<Vec<PathBuf>, BuildError> {
    let target_dir = guest_target_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root)
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .env("CARGO_TARGET_DIR", &target_dir)
        // Components ship without debug info: a few hundred KB instead of several MB.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true");
    for guest in guests {
        cmd.arg("-p").arg(&guest.package);
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let command = format!("{cmd:?}");
    let status = cmd.status().map_err(BuildError::Spawn)?;
    if !status.success() {
        return Err(BuildError::Failed { command, status });
    }
    let out_dir = target_dir.join(TARGET).join("release");
    guests
        .iter()
        .map(|g| {
            let path = out_dir.join(format!("{}.wasm", g.package.replace('-', "_")));
            if path.is_file() {
                Ok(path)
            } else {
                Err(BuildError::Missing(path))
            }
        })
        .collect()
}

/// Tells cargo to rerun the calling build script when anything under `paths` changes.
#[allow(clippy::print_stdout)]
pub fn rerun_if_changed<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) {
    for p in paths {
        println!("cargo:rerun-if-changed={}", p.as_ref().display());
    }
}
