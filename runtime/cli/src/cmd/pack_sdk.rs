//! Components built from source by `squall pack build`, one per action or sensor, in each SDK
//! language: a directory `<pack>/actions/<name>/` or `<pack>/sensors/<name>/` holding
//! - `Cargo.toml`: Rust with `squall-plugin` (`cargo build --release --target wasm32-wasip2`,
//!   into `$CARGO_TARGET_DIR` when set to an absolute path, else `<pack>/.squall/cargo-target`);
//! - `app.py`: Python with the Python SDK (`plugin-sdk/python/squall`), via componentize-py;
//! - `index.js`: JavaScript with the JavaScript SDK (`plugin-sdk/js`), via componentize-js;
//!
//! is built into `<pack>/actions/<name>.wasm` (`sensors/<name>.wasm`), the file the action's
//! or sensor's YAML names as `entry_point`, for the `squall:plugin/action` or
//! `squall:plugin/sensor` world. Each build is compiled into the data directory's component
//! cache at once (so the first run loads native code), and the digests of its sources and of
//! the component are written to `<pack>/.squall/components.lock` ([`Lock`], JSON).

use crate::Failure;
use serde::{Deserialize, Serialize};
use squall_core::python;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The Python SDK's files, `(path under the build's Python path, text)`: the `squall`
/// package and the wasi:http carrier it shares with StackStorm content (`squall_http`).
const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "squall/__init__.py",
        include_str!("../../../../plugin-sdk/python/squall/__init__.py"),
    ),
    (
        "squall/_core.py",
        include_str!("../../../../plugin-sdk/python/squall/_core.py"),
    ),
    (
        "squall/_action_world.py",
        include_str!("../../../../plugin-sdk/python/squall/_action_world.py"),
    ),
    (
        "squall/_sensor_world.py",
        include_str!("../../../../plugin-sdk/python/squall/_sensor_world.py"),
    ),
    (
        "squall/log.py",
        include_str!("../../../../plugin-sdk/python/squall/log.py"),
    ),
    (
        "squall/http.py",
        include_str!("../../../../plugin-sdk/python/squall/http.py"),
    ),
    (
        "squall/datastore.py",
        include_str!("../../../../plugin-sdk/python/squall/datastore.py"),
    ),
    (
        "squall_http.py",
        include_str!("../../../python/squall_http.py"),
    ),
];

/// The JavaScript SDK's modules, `(file name, text)`, placed beside the author's directory.
const JS_SDK: &[(&str, &str)] = &[
    (
        "squall.js",
        include_str!("../../../../plugin-sdk/js/squall.js"),
    ),
    (
        "squall-sensor.js",
        include_str!("../../../../plugin-sdk/js/squall-sensor.js"),
    ),
];

/// The lock file in `<pack>/.squall/`.
pub const LOCK_FILE: &str = "components.lock";

/// The programs the builds run (Rust's is `cargo`, `$CARGO` when set).
#[derive(Debug, Clone, clap::Args)]
pub struct Toolchain {
    /// The componentize-py program, for Python actions and sensors (PyPI: pip install
    /// componentize-py)
    #[arg(
        long,
        env = "SQUALL_COMPONENTIZE_PY",
        default_value = "componentize-py"
    )]
    pub componentize_py: PathBuf,
    /// The componentize-js program, for JavaScript actions and sensors (npm: npm install
    /// @bytecodealliance/componentize-js; then node_modules/.bin/componentize-js)
    #[arg(
        long,
        env = "SQUALL_COMPONENTIZE_JS",
        default_value = "componentize-js"
    )]
    pub componentize_js: PathBuf,
    /// Seconds one build step (componentize-py, componentize-js, cargo) may take before it is
    /// killed and the build fails: a module looping as it is imported at build time would
    /// otherwise hang `squall pack build` and `squall pack install`
    #[arg(
        long,
        env = "SQUALL_BUILD_TIMEOUT",
        default_value_t = 900,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub build_timeout: u64,
}

/// A source language, recognized by the file a source directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// `Cargo.toml`.
    Rust,
    /// `app.py`.
    Python,
    /// `index.js`.
    JavaScript,
}

impl Language {
    fn of(dir: &Path) -> Option<Language> {
        let real_file = |name: &str| {
            std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_file())
        };
        if real_file("Cargo.toml") {
            Some(Language::Rust)
        } else if real_file("app.py") {
            Some(Language::Python)
        } else if real_file("index.js") {
            Some(Language::JavaScript)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
        }
    }
}

/// One component to build.
#[derive(Debug, Clone)]
pub struct Source {
    /// `actions` or `sensors`.
    pub kind: &'static str,
    /// The directory's name: the component is `<kind>/<name>.wasm`.
    pub name: String,
    /// The source directory.
    pub dir: PathBuf,
    /// Its language.
    pub language: Language,
}

impl Source {
    /// `<kind>/<name>` (relative to the pack).
    pub fn rel(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    fn world(&self) -> &'static str {
        if self.kind == "actions" {
            "action"
        } else {
            "sensor"
        }
    }
}

/// The `entry_point`s ending in `.wasm` that the YAML files directly in `dir` name.
fn wasm_entry_points(dir: &Path) -> std::collections::BTreeSet<String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        entry_point: String,
    }
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !yaml || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Ok(e) = serde_saphyr::from_str::<Entry>(&text)
            && e.entry_point.ends_with(".wasm")
        {
            names.insert(e.entry_point);
        }
    }
    names
}

/// The source directories of the pack at `pack_dir`, sorted: a directory `<kind>/<name>/`
/// holding one of the files above whose `<name>.wasm` an action's or sensor's YAML in
/// `<kind>/` names as its `entry_point` (so a StackStorm pack's `actions/x/index.js` run by a
/// shell runner is not taken for one). Links are not followed: a linked `actions`/`sensors`
/// or source directory is not one.
pub fn sources(pack_dir: &Path) -> Vec<Source> {
    let mut found = Vec::new();
    for kind in ["actions", "sensors"] {
        let kind_dir = pack_dir.join(kind);
        let real_dir = std::fs::symlink_metadata(&kind_dir).is_ok_and(|m| m.file_type().is_dir());
        if !real_dir {
            continue;
        }
        let named = wasm_entry_points(&kind_dir);
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&kind_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        for dir in dirs {
            let Some(language) = Language::of(&dir) else {
                continue;
            };
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !named.contains(&format!("{name}.wasm")) {
                continue;
            }
            found.push(Source {
                kind,
                name,
                dir,
                language,
            });
        }
    }
    found
}

/// What `components.lock` records of one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// The component, relative to the pack, e.g. `actions/lookup.wasm`.
    pub component: String,
    /// Its sha256 (hex).
    pub component_sha256: String,
    /// The source directory, relative to the pack.
    pub source: String,
    /// Its language.
    pub language: Language,
    /// The WIT world it was built for (`action`, `sensor`).
    pub world: String,
    /// The source directory's version after the build: the first 16 hex digits of the
    /// sha256 over its files (as `squall pack install` names versions), what tools write there
    /// left out (`__pycache__/`, `node_modules/`, `target/`).
    #[serde(alias = "source_sha256")]
    pub source_version: String,
    /// The tool and its version, e.g. `componentize-py 0.25.1`.
    pub tool: String,
}

/// `<pack>/.squall/components.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// The lock's format version (1).
    pub format: u32,
    /// One entry per component built, by component path.
    pub components: Vec<Locked>,
}

/// The version of the source directory `dir`, as `squall pack install` names a pack's
/// (`tree_digest`), over its files but what tools write there: `__pycache__/` (componentize-py
/// imports the module in place), `node_modules/`, `target/`.
fn source_version(dir: &Path) -> Result<String, Failure> {
    let files: Vec<PathBuf> = crate::cmd::pack_install::files(dir)?
        .into_iter()
        .filter(|rel| {
            !rel.components().any(|c| {
                matches!(
                    c.as_os_str().to_str(),
                    Some("__pycache__" | "node_modules" | "target")
                )
            })
        })
        .collect();
    crate::cmd::pack_install::tree_digest(dir, &files)
}

fn version_of(program: &Path, hint: &str) -> Result<String, Failure> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| Failure::input(format!("cannot run {} ({e}): {hint}", program.display())))?;
    if !out.status.success() {
        return Err(Failure::input(format!(
            "{} --version failed ({}): {hint}",
            program.display(),
            out.status
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(if text.starts_with(&name) {
        text
    } else {
        format!("{name} {text}")
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::internal(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| Failure::internal(format!("{}: {e}", path.display())))
}

fn write_wit(dir: &Path) -> Result<(), Failure> {
    for (rel, text) in python::WIT_FILES {
        write(&dir.join(rel), text.as_bytes())?;
    }
    Ok(())
}

/// Runs `command` to its end with stdin empty and stdout and stderr captured, for at most
/// `timeout`, in a process group of its own: past the deadline the whole group is killed
/// (SIGKILL; componentize-js runs the module in a child process, cargo runs rustc) and the
/// answer is `Ok(None)`. Output still held open by a process that left the group is not
/// waited for past the deadline. (Its own group also means a Ctrl-C at the terminal does not
/// reach it: the build step ends by itself or at the deadline.)
///
/// # Errors
/// When the command cannot start.
pub(crate) fn output_within(
    mut command: std::process::Command,
    timeout: std::time::Duration,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let kill_group = || {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    };
    let (sender, received) = std::sync::mpsc::channel::<(bool, Vec<u8>)>();
    for (is_stdout, pipe) in [
        (
            true,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = sender.send((is_stdout, bytes));
        });
    }
    drop(sender);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Ok(None) => {
                kill_group();
                let _ = child.wait();
                return Ok(None);
            }
            Err(e) => {
                kill_group();
                let _ = child.wait();
                return Err(e);
            }
        }
    };
    // What the step left running in its group goes with it.
    kill_group();
    let mut output = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left.max(std::time::Duration::from_secs(1))) {
            Ok((true, bytes)) => output.stdout = bytes,
            Ok((false, bytes)) => output.stderr = bytes,
            Err(_) => break,
        }
    }
    Ok(Some(output))
}

/// Runs `command` (within `timeout`); its stdout, or its output as the error when it fails
/// (stderr only when `stdout_is_data`: cargo's JSON messages are not for people).
fn run(
    command: std::process::Command,
    what: &str,
    timeout: std::time::Duration,
    stdout_is_data: bool,
) -> Result<Vec<u8>, Failure> {
    let program = command.get_program().to_owned();
    let out = output_within(command, timeout)
        .map_err(|e| Failure::input(format!("{what}: cannot run {program:?}: {e}")))?
        .ok_or_else(|| {
            Failure::input(format!(
                "{what}: {program:?} did not finish within {} s (--build-timeout); it was \
                 stopped",
                timeout.as_secs()
            ))
        })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let stdout = if stdout_is_data {
        std::borrow::Cow::Borrowed("")
    } else {
        String::from_utf8_lossy(&out.stdout)
    };
    Err(Failure::input(format!(
        "{what} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim_end()
    )))
}

/// Builds `source` into a file in `work`; returns it and the tool's name and version.
fn build_one(
    pack_dir: &Path,
    source: &Source,
    tools: &Toolchain,
    work: &Path,
) -> Result<(PathBuf, String), Failure> {
    let what = format!("building {}", source.dir.display());
    let timeout = std::time::Duration::from_secs(tools.build_timeout);
    // The tools run in `work`: the source directory by its absolute path.
    let source_dir = std::fs::canonicalize(&source.dir)
        .map_err(|e| Failure::input(format!("{}: {e}", source.dir.display())))?;
    let out = work.join("out.wasm");
    match source.language {
        Language::Python => {
            let tool = version_of(
                &tools.componentize_py,
                "install it with `pip install componentize-py` or name it with \
                 --componentize-py / SQUALL_COMPONENTIZE_PY",
            )?;
            if source.dir.join(python::REQUIREMENTS).exists() {
                return Err(Failure::input(format!(
                    "{}: a requirements.txt beside an SDK action is not supported (the SDK \
                     carries HTTP, logging and the datastore); StackStorm python-script \
                     actions vendor theirs",
                    source.dir.join(python::REQUIREMENTS).display()
                )));
            }
            write_wit(&work.join("wit"))?;
            for (rel, text) in PYTHON_SDK {
                write(&work.join("sdk").join(rel), text.as_bytes())?;
            }
            let world_module = if source.kind == "actions" {
                "_action_world"
            } else {
                "_sensor_world"
            };
            write(
                &work.join("sdk/squall_component.py"),
                format!(
                    "# Generated by `squall pack build`: the SDK first (it routes the standard\n\
                     # library's HTTP before the author's module imports it), the author's module,\n\
                     # then the world's exports.\n\
                     import squall  # noqa: F401\n\
                     import app  # noqa: F401\n\
                     from squall.{world_module} import WitWorld  # noqa: F401\n"
                )
                .as_bytes(),
            )?;
            let mut c = std::process::Command::new(&tools.componentize_py);
            c.arg("-d")
                .arg(work.join("wit"))
                .args(["-w", source.world(), "componentize", "-p"])
                .arg(work.join("sdk"))
                .arg("-p")
                .arg(&source_dir)
                .arg("squall_component")
                .arg("-o")
                .arg(&out)
                .current_dir(work)
                .env("RUST_BACKTRACE", "0");
            run(c, &what, timeout, false)?;
            Ok((out, tool))
        }
        Language::JavaScript => {
            let tool = version_of(
                &tools.componentize_js,
                "install it with `npm install @bytecodealliance/componentize-js` and name \
                 node_modules/.bin/componentize-js with --componentize-js / \
                 SQUALL_COMPONENTIZE_JS",
            )?;
            write_wit(&work.join("wit"))?;
            for (rel, text) in JS_SDK {
                write(&work.join("js").join(rel), text.as_bytes())?;
            }
            // Regular files only: a link could lead the build to read outside the pack.
            let files: Vec<PathBuf> = crate::cmd::pack_install::files(&source.dir)?
                .into_iter()
                .filter(|rel| {
                    std::fs::symlink_metadata(source.dir.join(rel))
                        .is_ok_and(|m| m.file_type().is_file())
                })
                .collect();
            crate::cmd::pack_install::copy_files(&source.dir, &work.join("js/app"), &files)?;
            let main = if source.kind == "actions" {
                "import * as app from \"./app/index.js\";\n\
                 import { action } from \"./squall.js\";\n\
                 export const run = action(app);\n"
            } else {
                "import * as app from \"./app/index.js\";\n\
                 import { sensor } from \"./squall-sensor.js\";\n\
                 const exports = sensor(app);\n\
                 export const onPoll = exports.onPoll;\n\
                 export const onWebhook = exports.onWebhook;\n"
            };
            write(&work.join("js/main.js"), main.as_bytes())?;
            let mut c = std::process::Command::new(&tools.componentize_js);
            c.arg("--wit")
                .arg(work.join("wit"))
                .args(["--world-name", source.world(), "-o"])
                .arg(&out)
                .arg(work.join("js/main.js"))
                .current_dir(work.join("js"));
            run(c, &what, timeout, false)?;
            Ok((out, tool))
        }
        Language::Rust => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let tool = version_of(Path::new(&cargo), "install Rust with rustup")?;
            // The author's own target directory when set (shared, incremental), else one
            // under the pack's build directory.
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .filter(|d| d.is_absolute())
                .unwrap_or_else(|| pack_dir.join(python::BUILD_DIR).join("cargo-target"));
            let mut c = std::process::Command::new(&cargo);
            c.args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--message-format=json-render-diagnostics",
                "--manifest-path",
            ])
            .arg(source.dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target);
            let messages = run(c, &what, timeout, true)?;
            // The component: the `.wasm` cargo reports for the crate it was asked to build
            // (the last artifact; dependencies come first).
            let component = String::from_utf8_lossy(&messages)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|m| m["reason"] == "compiler-artifact")
                .filter_map(|m| {
                    m["filenames"].as_array().and_then(|f| {
                        f.iter()
                            .filter_map(|f| f.as_str())
                            .find(|f| f.ends_with(".wasm"))
                            .map(PathBuf::from)
                    })
                })
                .next_back()
                .ok_or_else(|| {
                    Failure::input(format!(
                        "{what}: cargo made no .wasm (is it a [lib] with crate-type = \
                         [\"cdylib\"]?)"
                    ))
                })?;
            Ok((component, tool))
        }
    }
}

/// Builds every source directory of the pack at `pack_dir` (see the module docs), printing
/// progress on stderr (`[2/5] actions/lookup (python) …`, then size and times), compiles each
/// component into the component cache, and writes the lock.
///
/// # Errors
/// [`Failure`] naming the directory and the tool's output (exit code 2): a tool missing, a
/// build failing, a component the host refuses (wrong world, imports it does not provide).
pub fn build(
    settings: &crate::settings::Settings,
    pack_dir: &Path,
    sources: &[Source],
    tools: &Toolchain,
) -> Result<(), Failure> {
    if sources.is_empty() {
        return Ok(());
    }
    let host = settings.host(None)?;
    let lock_path = pack_dir.join(python::BUILD_DIR).join(LOCK_FILE);
    let mut lock: Lock = std::fs::read(&lock_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    lock.format = 1;
    // Entries of source directories that are gone.
    lock.components
        .retain(|c| pack_dir.join(&c.source).is_dir());
    let total = sources.len();
    for (i, source) in sources.iter().enumerate() {
        let rel = source.rel();
        eprintln!(
            "[{}/{total}] {rel} ({}, {} world) building ...",
            i + 1,
            source.language.name(),
            source.world()
        );
        let started = Instant::now();
        let work = tempfile::tempdir()
            .map_err(|e| Failure::internal(format!("temporary directory: {e}")))?;
        let (built, tool) = build_one(pack_dir, source, tools, work.path())?;
        // After the build: cargo writes a standalone crate's Cargo.lock.
        let source_version = source_version(&source.dir)?;
        let bytes = std::fs::read(&built)
            .map_err(|e| Failure::internal(format!("{}: {e}", built.display())))?;
        let build_secs = started.elapsed().as_secs_f64();
        let target = pack_dir.join(format!("{rel}.wasm"));
        // A new file (never a link some pack shipped), checked by the host before it replaces
        // the component (rename replaces a link at `target`, never what it points to).
        // Staged in the build directory (same file system; never copied by `pack install`),
        // readable by all as a file `std::fs::write` makes.
        let build_dir = pack_dir.join(python::BUILD_DIR);
        std::fs::create_dir_all(&build_dir)
            .map_err(|e| Failure::internal(format!("{}: {e}", build_dir.display())))?;
        let mut staged = tempfile::Builder::new()
            .prefix(&format!(".{}-{}.", source.kind, source.name))
            .suffix(".wasm")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&build_dir)
            .map_err(|e| Failure::internal(format!("{}: {e}", build_dir.display())))?;
        std::io::Write::write_all(&mut staged, &bytes)
            .map_err(|e| Failure::internal(format!("{}: {e}", staged.path().display())))?;
        let compiling = Instant::now();
        let checked = if source.kind == "actions" {
            host.prepare(staged.path()).map(drop)
        } else {
            host.prepare_sensor(staged.path()).map(drop)
        };
        checked.map_err(|e| {
            let message = e.to_string().replace(
                &staged.path().display().to_string(),
                &target.display().to_string(),
            );
            Failure::input(format!("{rel}.wasm: {message}"))
        })?;
        staged
            .persist(&target)
            .map_err(|e| Failure::internal(format!("{}: {e}", target.display())))?;
        let sha = python::sha256_hex(&bytes);
        eprintln!(
            "[{}/{total}] {rel}.wasm: {:.1} MB, sha256 {}, built in {build_secs:.1} s, \
             compiled in {:.1} s",
            i + 1,
            bytes.len() as f64 / 1e6,
            &sha[..12],
            compiling.elapsed().as_secs_f64()
        );
        let component = format!("{rel}.wasm");
        lock.components.retain(|c| c.component != component);
        lock.components.push(Locked {
            component,
            component_sha256: sha,
            source: rel,
            language: source.language,
            world: source.world().into(),
            source_version,
            tool,
        });
        // After each component: a later failure leaves the lock true to what is built.
        write_lock(&lock_path, &mut lock)?;
    }
    Ok(())
}

/// Writes `lock` (sorted) to `path` through a new temporary file renamed over it.
fn write_lock(path: &Path, lock: &mut Lock) -> Result<(), Failure> {
    lock.components
        .sort_by(|a, b| a.component.cmp(&b.component));
    let text = serde_json::to_vec_pretty(&lock).expect("the lock serializes");
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::internal(format!("{}: {e}", dir.display())))?;
    let mut staged = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| Failure::internal(format!("{}: {e}", dir.display())))?;
    std::io::Write::write_all(&mut staged, &text)
        .map_err(|e| Failure::internal(format!("{}: {e}", staged.path().display())))?;
    staged
        .persist(path)
        .map_err(|e| Failure::internal(format!("{}: {e}", path.display())))?;
    Ok(())
}

/// The SDK source directories of the pack at `pack_dir` whose component is not what
/// `components.lock` says its last build made: the sources changed since (`… changed since
/// its last build`), or the component file is another one. A directory the lock does not
/// name is not reported here (a missing component is an entry point the loader reports).
pub fn stale(pack_dir: &Path) -> Vec<String> {
    let lock: Lock = match std::fs::read(pack_dir.join(python::BUILD_DIR).join(LOCK_FILE)) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(lock) => lock,
            Err(e) => {
                return vec![format!(
                    "{}: not a lock squall can read ({e}); run squall pack build",
                    pack_dir.join(python::BUILD_DIR).join(LOCK_FILE).display()
                )];
            }
        },
        Err(_) => return Vec::new(),
    };
    let mut problems = Vec::new();
    for source in sources(pack_dir) {
        let component = format!("{}.wasm", source.rel());
        let Some(locked) = lock.components.iter().find(|c| c.component == component) else {
            continue;
        };
        if source_version(&source.dir).ok().as_ref() != Some(&locked.source_version) {
            problems.push(format!(
                "{}: changed since its last build; run squall pack build {}",
                source.dir.display(),
                pack_dir.display()
            ));
            continue;
        }
        let built = std::fs::read(pack_dir.join(&component))
            .map(|b| python::sha256_hex(&b))
            .unwrap_or_default();
        if built != locked.component_sha256 {
            problems.push(format!(
                "{}: not the component its last build made (sha256 {} in {LOCK_FILE}); run \
                 squall pack build {}",
                pack_dir.join(&component).display(),
                &locked.component_sha256[..12.min(locked.component_sha256.len())],
                pack_dir.display()
            ));
        }
    }
    problems
}
