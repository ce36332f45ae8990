//! `squall-plugin-build`: compile guest crates to WebAssembly components from a build script.
//!
//! Squall builds its shipped packs and its test components from source on every `cargo build` /
//! `cargo test`, the way wasmtime's `test-programs` do: a build script runs a nested
//! `cargo build --release --target wasm32-wasip2` for the guest packages of the same workspace,
//! in a separate target directory (`<target>/guests`) so the nested build never waits on the
//! outer one's lock, and hands back the paths of the `.wasm` components.
//!
//! The build obtains the component target itself: a toolchain installed before
//! `rust-toolchain.toml` named `wasm32-wasip2` (rustup adds a toolchain file's targets only when
//! it installs the toolchain) lacks the target's standard library, and the nested build would
//! stop with "can't find crate for `core`". [`ensure_target`] finds that out first and runs
//! `rustup target add` (set `SQUALL_NO_TARGET_INSTALL=1` to get an error naming the command
//! instead).
//!
//! Main items: [`build_components`], [`ensure_target`].

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
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
    /// The toolchain has no standard library for [`TARGET`] and it could not be added.
    NoTarget {
        /// The directory where the target's `libcore-*.rlib` should be.
        libdir: PathBuf,
        /// Why it was not installed: rustup missing or failing, or the opt-out variable set.
        why: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Spawn(e) => write!(f, "cannot run cargo to build guest components: {e}"),
            BuildError::Failed { command, status } => {
                write!(f, "building guest components failed ({status}): {command}")
            }
            BuildError::Missing(p) => write!(f, "component missing after build: {}", p.display()),
            BuildError::NoTarget { libdir, why } => write!(
                f,
                "the Rust toolchain has no {TARGET} standard library (nothing in {}), which \
                 Squall's pack components are built for: {why}. \
                 Install it with `rustup target add {TARGET}`",
                libdir.display()
            ),
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
    ensure_target(&target_dir)?;
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

/// Where the active toolchain keeps [`TARGET`]'s standard library, from
/// `rustc --print target-libdir --target wasm32-wasip2` (`$RUSTC`, else `rustc`), and whether a
/// `libcore-*.rlib` is there.
fn target_libdir() -> Result<(PathBuf, bool), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rustc.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --print target-libdir failed: {}",
            rustc.to_string_lossy(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let present = std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libcore-") && name.ends_with(".rlib")
        })
    });
    Ok((libdir, present))
}

/// Makes sure the active toolchain can build for [`TARGET`]: when its standard library is
/// missing, runs `rustup target add wasm32-wasip2` for the toolchain cargo runs under
/// (`$RUSTUP_TOOLCHAIN`, which rustup's proxies set), announced as a cargo warning.
///
/// Build scripts of one workspace run in parallel, so the check and install hold an exclusive
/// lock on `<guest target dir>/.target-install.lock`. `SQUALL_NO_TARGET_INSTALL=1` turns the
/// install into an error, for builds that must not touch the toolchain.
///
/// # Errors
/// [`BuildError::NoTarget`] when the target is missing and rustup is absent, fails, or was
/// told not to run (the message names the command to run by hand).
#[allow(clippy::print_stdout)]
pub fn ensure_target(guest_target_dir: &Path) -> Result<(), BuildError> {
    println!("cargo:rerun-if-env-changed=SQUALL_NO_TARGET_INSTALL");
    let no_target = |libdir: PathBuf, why: String| BuildError::NoTarget { libdir, why };
    let (libdir, present) = target_libdir().map_err(|why| no_target(PathBuf::new(), why))?;
    if present {
        return Ok(());
    }
    std::fs::create_dir_all(guest_target_dir).map_err(BuildError::Spawn)?;
    let lock = File::create(guest_target_dir.join(".target-install.lock"))
        .and_then(|f| f.lock().map(|()| f))
        .map_err(BuildError::Spawn)?;
    // Another build script may have installed it while this one waited for the lock.
    let (libdir, present) = target_libdir().map_err(|why| no_target(libdir.clone(), why))?;
    if present {
        return Ok(());
    }
    if env::var_os("SQUALL_NO_TARGET_INSTALL").is_some_and(|v| v != "0" && !v.is_empty()) {
        return Err(no_target(
            libdir,
            "SQUALL_NO_TARGET_INSTALL is set, so the build does not install it".into(),
        ));
    }
    let toolchain: Option<OsString> = env::var_os("RUSTUP_TOOLCHAIN");
    let command = format!(
        "rustup target add {TARGET}{}",
        toolchain
            .as_ref()
            .map(|t| format!(" --toolchain {}", t.to_string_lossy()))
            .unwrap_or_default()
    );
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Some(t) = &toolchain {
        cmd.arg("--toolchain").arg(t);
    }
    // rustup's output goes to the build script's stderr (shown when the build fails), never
    // its stdout, where cargo reads `cargo:` lines.
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| no_target(libdir.clone(), format!("cannot run rustup: {e}")))?;
    if !status.success() {
        return Err(no_target(libdir, format!("`{command}` failed ({status})")));
    }
    let (libdir, present) = target_libdir().map_err(|why| no_target(libdir.clone(), why))?;
    drop(lock);
    if present {
        // Cargo repeats a build script's warnings on later builds: say what happened, once.
        println!(
            "cargo:warning=the {TARGET} target was missing; added it with `{command}` \
             (Squall's packs are built for it; SQUALL_NO_TARGET_INSTALL=1 refuses)"
        );
        Ok(())
    } else {
        Err(no_target(
            libdir,
            "rustup reported success but the library is still missing".into(),
        ))
    }
}

/// Tells cargo to rerun the calling build script when anything under `paths` changes.
#[allow(clippy::print_stdout)]
pub fn rerun_if_changed<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) {
    for p in paths {
        println!("cargo:rerun-if-changed={}", p.as_ref().display());
    }
}
