//! `squall pack config`: a pack's config as loaded (`configs/<pack>.yaml` against its
//! `config.schema.yaml`), like `st2 pack config` shows it. `squall pack build`: the component
//! of a pack's StackStorm `python-script` actions (see [`squall_core::python`]), made on this
//! machine with componentize-py.

use crate::Failure;
use crate::client::{Client, query};
use crate::output::{json_text, print_json, print_table, table};
use clap::Subcommand;
use serde_json::Value;

/// `squall pack` subcommands.
#[derive(Subcommand)]
pub enum PackCommand {
    /// List the loaded packs (as `st2 pack list`)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one loaded pack (as `st2 pack get`)
    Get {
        /// Pack ref, e.g. core
        pack: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Reload packs in the running server without a restart (as `st2 pack register`; SIGHUP
    /// does the same): the new version is read and its components compiled while the loaded
    /// one serves, then switched to at once; a version with problems is refused, each problem
    /// printed, and the loaded one keeps serving. Prints what was registered.
    Register {
        /// Packs to read again (default: all)
        #[arg(value_name = "PACK")]
        refs: Vec<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Make a new pack NAME in StackStorm's format: pack.yaml, a python-script action, a
    /// polling sensor with its trigger type, a rule joining them, a unit test of the action's
    /// logic and a README with the next commands. Prints its path.
    New {
        /// The pack's ref (lowercase letters, digits, _)
        name: String,
        /// Its language: python (StackStorm's python-script actions and sensors), js or rust
        /// (Squall's JavaScript and Rust SDKs)
        #[arg(long, default_value = "python")]
        lang: String,
        /// Where to make it [default: the first packs directory]
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Install a pack from a directory or a git URL (URL=REF for a branch or tag, as `st2 pack
    /// install`): its files are copied into the data directory's store as a version named by
    /// their digest, its Python and JavaScript components built, the whole validated, and the packs
    /// directory's link <packs-dir>/<pack> switched to it; a running server then reloads the
    /// pack (if it refuses, the previous version stays). Installing a version already in the
    /// store is instant.
    Install {
        /// A pack directory, or a git URL (https://, ssh://, git@, file://), optionally =REF
        source: String,
        /// The packs directory holding the pack's link [default: the first packs directory]
        #[arg(long, value_name = "DIR")]
        packs_dir: Option<std::path::PathBuf>,
        /// The programs that build components from source
        #[command(flatten)]
        tools: crate::cmd::pack_sdk::Toolchain,
    },
    /// Switch an installed pack back to the version installed before the current one (from
    /// the store: nothing is copied or built), and have a running server reload it.
    Rollback {
        /// Pack ref
        pack: String,
        /// The packs directory holding the pack's link [default: the first packs directory]
        #[arg(long, value_name = "DIR")]
        packs_dir: Option<std::path::PathBuf>,
    },
    /// Uninstall a pack installed with `squall pack install` (its link is removed; its
    /// versions stay in the store) and have a running server reload without it.
    Uninstall {
        /// Pack ref
        pack: String,
        /// The packs directory holding the pack's link [default: the first packs directory]
        #[arg(long, value_name = "DIR")]
        packs_dir: Option<std::path::PathBuf>,
    },
    /// Check the pack at PATH as the server would load it, without a server: every metadata
    /// file (schema, fields, refs to actions and trigger types of the loaded packs, templates,
    /// workflows, chains, policies, config), the Python build's freshness, and each component
    /// (that it is one, of the right world, with imports the host provides). Prints each
    /// problem as <file>: <field>: <reason>; exit code 2 when there is any.
    Validate {
        /// The pack's directory, e.g. packs/acme
        path: std::path::PathBuf,
    },
    /// Build the pack at PATH: each SDK source directory actions/<name>/ or sensors/<name>/
    /// (Cargo.toml: Rust; app.py: Python SDK, with componentize-py; index.js: JavaScript
    /// SDK, with componentize-js) into <name>.wasm beside it, digests in
    /// .squall/components.lock; and its StackStorm python-script actions and Python polling
    /// sensors (every .py file under actions/ and sensors/, its requirements.txt and
    /// StackStorm's environment, with Squall's st2common and st2reactor stand-ins) into one
    /// component, .squall/python-actions.wasm, and its lock. Each component is compiled into
    /// the component cache of the data directory (--data-dir / squall.toml), so its first run
    /// starts at once. Runs on this machine, without a server; `squall pack register` has a
    /// running server load the result.
    Build {
        /// The pack's directory, e.g. packs/acme
        path: std::path::PathBuf,
        /// The programs that build components
        #[command(flatten)]
        tools: crate::cmd::pack_sdk::Toolchain,
    },
    /// Show a pack's config: values as written (templates are rendered only when used),
    /// defaults filled in, secrets shown as ******** unless --show-secrets. Problems found at
    /// load are printed on stderr and the exit code is 2.
    Config {
        /// Pack ref, e.g. core
        pack: String,
        /// Show secret values
        #[arg(long)]
        show_secrets: bool,
        /// Print JSON (StackStorm's config record: pack, values; plus file, errors)
        #[arg(long)]
        json: bool,
    },
}

/// `st2 pack list`'s columns, plus what loaded.
const PACK_COLUMNS: [(&str, &str); 6] = [
    ("ref", "/ref"),
    ("name", "/name"),
    ("description", "/description"),
    ("version", "/version"),
    ("author", "/author"),
    ("actions", "/actions"),
];

pub async fn run(client: &Client, command: PackCommand) -> Result<u8, Failure> {
    match command {
        PackCommand::List { json } => {
            let list = client.list("/api/v1/packs", &[]).await?;
            crate::output::print_records(&list, &PACK_COLUMNS, json);
            Ok(0)
        }
        PackCommand::Get { pack, json } => {
            let mut shown = client.get(&format!("/api/v1/packs/{pack}")).await?.body;
            // "8 ready" / "1 compiling, 7 ready": how far the server's compiler got.
            let mut states = std::collections::BTreeMap::<String, usize>::new();
            for c in shown["components"].as_array().into_iter().flatten() {
                *states
                    .entry(c["state"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            if !states.is_empty() {
                shown["component_states"] = Value::String(
                    states
                        .iter()
                        .map(|(s, n)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            let rows = [
                ("ref", "/ref"),
                ("name", "/name"),
                ("description", "/description"),
                ("version", "/version"),
                ("author", "/author"),
                ("email", "/email"),
                ("keywords", "/keywords"),
                ("path", "/path"),
                ("actions", "/actions"),
                ("rules", "/rules"),
                ("sensors", "/sensors"),
                ("trigger_types", "/trigger_types"),
                ("policies", "/policies"),
                ("components", "/component_states"),
                ("installed_version", "/installed_version"),
                ("generation", "/generation"),
            ];
            crate::output::print_record(&shown, &rows, json);
            Ok(0)
        }
        PackCommand::Register { refs, json } => {
            if client.is_local() {
                return Err(Failure::input(
                    "no server is running (squall serve): a server reads the packs when it \
                     starts, so there is nothing to reload"
                        .to_string(),
                ));
            }
            let body = serde_json::json!({"packs": refs});
            let registered = client
                .call(reqwest::Method::POST, "/api/v1/packs/register", Some(body))
                .await?
                .body;
            if json {
                print_json(&registered);
            } else {
                let mut t = table(&["property", "value"]);
                for (key, value) in registered.as_object().into_iter().flatten() {
                    t.add_row(vec![key.clone(), json_text(value)]);
                }
                print_table(&t);
            }
            Ok(0)
        }
        PackCommand::Build { .. }
        | PackCommand::New { .. }
        | PackCommand::Validate { .. }
        | PackCommand::Install { .. }
        | PackCommand::Rollback { .. }
        | PackCommand::Uninstall { .. } => {
            unreachable!("run locally, before connecting")
        }
        PackCommand::Config {
            pack,
            show_secrets,
            json,
        } => {
            let path = format!(
                "/api/v1/configs/{pack}{}",
                query(&[("show_secrets", show_secrets.then(|| "true".to_string()))])
            );
            let config = client.get(&path).await?.body;
            if json {
                print_json(&config);
            } else {
                let mut t = table(&["key", "value"]);
                for (key, value) in config["values"].as_object().into_iter().flatten() {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => json_text(other),
                    };
                    t.add_row(vec![key.clone(), text]);
                }
                print_table(&t);
            }
            let errors = config["errors"].as_array().cloned().unwrap_or_default();
            for e in &errors {
                eprintln!("error: {}", e.as_str().unwrap_or_default());
            }
            Ok(if errors.is_empty() { 0 } else { 2 })
        }
    }
}

/// The fields of an action's or a sensor's metadata `squall pack build` reads (the loader
/// checks the rest).
#[derive(serde::Deserialize)]
struct EntryFields {
    #[serde(default)]
    runner_type: String,
    #[serde(default)]
    entry_point: String,
    #[serde(default)]
    class_name: String,
}

/// `squall pack build PATH`: builds each SDK source directory into its component (see
/// [`crate::cmd::pack_sdk`]), then the StackStorm Python content into
/// `<PATH>/.squall/python-actions.wasm` and its lock, compiling every component into the data
/// directory's cache. A pack with neither has nothing to build (exit code 0, said on stderr).
///
/// # Errors
/// [`Failure`] naming the file or the program: exit code 2 for the pack's content (no
/// `pack.yaml`, metadata that does not parse, a `requirements.txt` line that is not a package
/// with version specifiers, a dependency with no pure-Python wheel, a module that does not
/// import — its traceback shown with the pack's paths —, componentize-py missing or failing),
/// 3 for Squall's own failures (a temporary directory, the host).
///
/// `rust`: whether Rust sources are built too (`squall pack build`: the author's own machine;
/// `squall pack install` passes `false`, see `pack_install`).
pub fn build(
    settings: &crate::settings::Settings,
    pack_dir: &std::path::Path,
    tools: &crate::cmd::pack_sdk::Toolchain,
    rust: bool,
) -> Result<u8, Failure> {
    if !pack_dir.join("pack.yaml").is_file() {
        return Err(Failure::input(format!(
            "{}: not a pack (no pack.yaml)",
            pack_dir.display()
        )));
    }
    let mut sources = crate::cmd::pack_sdk::sources(pack_dir);
    if !rust {
        sources.retain(|s| s.language != crate::cmd::pack_sdk::Language::Rust);
    }
    crate::cmd::pack_sdk::build(settings, pack_dir, &sources, tools)?;
    let built_python = build_python_content(
        settings,
        pack_dir,
        &tools.componentize_py,
        std::time::Duration::from_secs(tools.build_timeout),
    )?;
    if !built_python && sources.is_empty() {
        eprintln!(
            "{}: no component sources, python-script actions or Python sensors; nothing to build",
            pack_dir.display()
        );
    }
    Ok(0)
}

/// The StackStorm Python part of [`build`]: `false` when the pack has none.
fn build_python_content(
    settings: &crate::settings::Settings,
    pack_dir: &std::path::Path,
    componentize_py: &std::path::Path,
    timeout: std::time::Duration,
) -> Result<bool, Failure> {
    use squall_core::python;
    let started = std::time::Instant::now();
    let mut entries = python::Entries::default();
    for sub in ["actions", "sensors"] {
        let mut files: Vec<_> = std::fs::read_dir(pack_dir.join(sub))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files {
            if !matches!(
                file.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                continue;
            }
            let text = squall_core::pack_files::read_text(pack_dir, &file)
                .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?
                .unwrap_or_default();
            let entry: EntryFields = serde_saphyr::from_str(&text)
                .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
            if sub == "actions" && entry.runner_type == "python-script" {
                entries.actions.push(entry.entry_point);
            } else if sub == "sensors" && entry.entry_point.ends_with(".py") {
                entries.sensors.push((entry.class_name, entry.entry_point));
            }
        }
    }
    let entries = entries.normalized();
    if entries.is_empty() {
        return Ok(false);
    }
    let sources = python::pack_sources(pack_dir).map_err(Failure::input)?;
    let version = std::process::Command::new(componentize_py)
        .arg("--version")
        .output()
        .map_err(|e| {
            Failure::input(format!(
                "cannot run {} ({e}): install it with `pip install componentize-py` or name it \
                 with --componentize-py / SQUALL_COMPONENTIZE_PY",
                componentize_py.display()
            ))
        })?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();

    let work =
        tempfile::tempdir().map_err(|e| Failure::internal(format!("temporary directory: {e}")))?;
    let write = |rel: &str, bytes: &[u8]| -> Result<(), Failure> {
        let path = work.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::internal(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| Failure::internal(format!("{}: {e}", path.display())))
    };
    for (rel, text) in python::WIT_FILES {
        write(&format!("wit/{rel}"), text.as_bytes())?;
    }
    for (rel, text) in python::RUNTIME_FILES {
        write(&format!("runtime/{rel}"), text.as_bytes())?;
    }
    for (rel, bytes) in &sources {
        if rel != python::REQUIREMENTS {
            write(&format!("pack/{rel}"), bytes)?;
        }
    }
    let (mut wanted, provided) = sources
        .iter()
        .find(|(rel, _)| rel == python::REQUIREMENTS)
        .map(|(_, text)| python::requirements(&String::from_utf8_lossy(text)))
        .transpose()
        .map_err(|e| Failure::input(format!("{}/{e}", pack_dir.display())))?
        .unwrap_or_default();
    if !provided.is_empty() {
        eprintln!(
            "not vendored: {} (Squall provides its own eventlet; see runtime/python/eventlet)",
            provided.join(", ")
        );
    }
    wanted.extend(python::STACKSTORM_ENVIRONMENT.iter().map(|s| s.to_string()));
    let dependencies = vendor(
        pack_dir,
        componentize_py,
        &wanted,
        &work.path().join("deps"),
    )?;
    let signatures = signatures(pack_dir, componentize_py, &entries.actions)?;
    write(
        &format!("pack/{}.py", python::MANIFEST_MODULE),
        python::manifest(&entries).as_bytes(),
    )?;
    eprintln!(
        "building {} python-script actions and {} Python sensors of {} with {version} ...",
        entries.actions.len(),
        entries.sensors.len(),
        pack_dir.display()
    );
    let out = work.path().join("out.wasm");
    let mut componentize = std::process::Command::new(componentize_py);
    componentize
        .arg("-d")
        .arg(work.path().join("wit"))
        .args(["-w", python::WORLD, "componentize", "-p"])
        .arg(work.path().join("runtime"))
        .arg("-p")
        .arg(work.path().join("pack"))
        .arg("-p")
        .arg(work.path().join("deps"))
        .arg(python::APP_MODULE)
        .arg("-o")
        .arg(&out)
        .current_dir(work.path())
        .env("RUST_BACKTRACE", "0");
    let run = crate::cmd::pack_sdk::output_within(componentize, timeout)
        .map_err(|e| Failure::internal(format!("cannot run {}: {e}", componentize_py.display())))?
        .ok_or_else(|| {
            Failure::input(format!(
                "building the Python content of {}: {} did not finish within {} s \
                 (--build-timeout); it was stopped",
                pack_dir.display(),
                componentize_py.display(),
                timeout.as_secs()
            ))
        })?;
    if !run.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        // componentize-py reports a module failing to import as "AssertionError: <the
        // traceback>" then "Caused by:"; show the traceback with the pack's own paths (its
        // Python path entries are mounted as /0 = Squall's runtime, /1 = the pack's files,
        // /2 = the vendored dependencies).
        let traceback = text
            .split_once("AssertionError: ")
            .map(|(_, rest)| rest.split("\n\nCaused by:").next().unwrap_or(rest))
            .unwrap_or(&text);
        let shown = traceback
            .replace("\"/1/", &format!("\"{}/", pack_dir.display()))
            .replace("\"/0/", "\"<squall runtime>/")
            .replace("\"/2/", "\"<vendored dependencies>/");
        return Err(Failure::input(format!(
            "building the Python content of {} failed ({}):\n{}",
            pack_dir.display(),
            run.status,
            shown.trim_end()
        )));
    }
    let component =
        std::fs::read(&out).map_err(|e| Failure::internal(format!("{}: {e}", out.display())))?;
    let lock = python::Lock {
        format: python::FORMAT,
        runtime_sha256: python::runtime_digest(),
        sources_sha256: python::sources_digest(&sources),
        component_sha256: python::sha256_hex(&component),
        entry_points: entries.actions.clone(),
        sensors: entries.sensors.clone(),
        files: sources
            .iter()
            .map(|(p, b)| (p.clone(), python::sha256_hex(b)))
            .collect(),
        componentize_py: version,
        dependencies,
        signatures,
    };
    let build_dir = pack_dir.join(python::BUILD_DIR);
    std::fs::create_dir_all(&build_dir)
        .map_err(|e| Failure::internal(format!("{}: {e}", build_dir.display())))?;
    // The dependencies as installed, read (read-only) by the component at run time: their data
    // files were not imported into it (see squall_core::python::read_only_dirs). Copied
    // beside, then swapped in by rename.
    let deps = build_dir.join(python::DEPS_DIR);
    let staged = build_dir.join(format!(".{}.tmp", python::DEPS_DIR));
    let _ = std::fs::remove_dir_all(&staged);
    std::fs::create_dir_all(&staged)
        .map_err(|e| Failure::internal(format!("{}: {e}", staged.display())))?;
    let installed = work.path().join("deps");
    crate::cmd::pack_install::copy_files(
        &installed,
        &staged,
        &crate::cmd::pack_install::files(&installed)?,
    )?;
    let old = build_dir.join(format!(".{}.old", python::DEPS_DIR));
    let _ = std::fs::remove_dir_all(&old);
    if deps.exists() {
        std::fs::rename(&deps, &old)
            .map_err(|e| Failure::internal(format!("{}: {e}", deps.display())))?;
    }
    std::fs::rename(&staged, &deps)
        .map_err(|e| Failure::internal(format!("{}: {e}", deps.display())))?;
    let _ = std::fs::remove_dir_all(&old);
    // Component first, then the lock that vouches for it; each replaced whole (rename).
    for (name, bytes) in [
        (python::COMPONENT_FILE, component.clone()),
        (
            python::LOCK_FILE,
            serde_json::to_vec_pretty(&lock).expect("the lock serializes"),
        ),
    ] {
        let tmp = build_dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, build_dir.join(name)))
            .map_err(|e| Failure::internal(format!("{}: {e}", build_dir.join(name).display())))?;
    }
    // Compiled now, into the component cache of the server this configuration describes (its
    // data directory), so the first run after the build loads native code instead of
    // compiling it.
    let compiling = std::time::Instant::now();
    let component_path = build_dir.join(python::COMPONENT_FILE);
    settings
        .host(None)?
        .prepare(&component_path)
        .map_err(|e| Failure::input(e.to_string()))?;
    eprintln!(
        "compiled into {} in {:.1} s",
        settings.data_dir.join("cache").join("components").display(),
        compiling.elapsed().as_secs_f64()
    );
    crate::output::out(&format!(
        "built {} ({:.1} MB, {} entry points, sha256 {}) in {:.1} s\n",
        build_dir.join(python::COMPONENT_FILE).display(),
        component.len() as f64 / 1e6,
        entries.len(),
        &lock.component_sha256[..12],
        started.elapsed().as_secs_f64()
    ));
    Ok(true)
}

/// The `run` signature of each python-script entry point (relative to `actions/`), read from
/// its source by `signatures.py` with the Python beside `componentize_py` (else `python3`);
/// nothing of the pack is imported or run.
///
/// # Errors
/// [`Failure`] when that Python cannot run or answers something else than the JSON expected.
fn signatures(
    pack_dir: &std::path::Path,
    componentize_py: &std::path::Path,
    entry_points: &[String],
) -> Result<std::collections::BTreeMap<String, squall_core::python::Signature>, Failure> {
    if entry_points.is_empty() {
        return Ok(Default::default());
    }
    let python = componentize_py
        .parent()
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| std::path::PathBuf::from("python3"));
    let out = std::process::Command::new(&python)
        .args(["-I", "-c", include_str!("signatures.py")])
        .args(entry_points)
        .current_dir(pack_dir.join("actions"))
        .output()
        .map_err(|e| Failure::input(format!("cannot run {} ({e})", python.display())))?;
    if !out.status.success() {
        return Err(Failure::internal(format!(
            "reading run() signatures with {} failed: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Failure::internal(format!(
            "reading run() signatures: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        ))
    })
}

/// The Python of the componentized runtime (the pure-Python wheels vendored must fit it).
const GUEST_PYTHON: &str = "3.14";

/// Installs `wanted` (requirement lines) into `target` from the package index, pure-Python
/// wheels only (`--platform any --abi none --implementation py`, for Python
/// [`GUEST_PYTHON`]), with the pip of the Python beside `componentize_py` (its virtualenv),
/// else `python3`. Returns `name==version` of each distribution installed, sorted.
///
/// # Errors
/// [`Failure`] naming the requirement pip could not satisfy with a pure-Python wheel (a
/// package with C code and no WASI build), with pip's own words.
fn vendor(
    pack_dir: &std::path::Path,
    componentize_py: &std::path::Path,
    wanted: &[String],
    target: &std::path::Path,
) -> Result<Vec<String>, Failure> {
    let beside = componentize_py
        .parent()
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file());
    let python = beside.unwrap_or_else(|| std::path::PathBuf::from("python3"));
    eprintln!(
        "vendoring {} (pure-Python wheels for Python {GUEST_PYTHON}) ...",
        wanted.join(", ")
    );
    let wheels = pure_wheels(&python, wanted, target)?;
    let run = std::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
        ])
        .args(["--only-binary=:all:", "--platform", "any", "--abi", "none"])
        .args([
            "--implementation",
            "py",
            "--python-version",
            GUEST_PYTHON,
            "--find-links",
        ])
        .arg(&wheels)
        .arg("--target")
        .arg(target)
        .args(wanted)
        .output()
        .map_err(|e| Failure::input(format!("cannot run {} -m pip: {e}", python.display())))?;
    if !run.status.success() {
        let said = String::from_utf8_lossy(&run.stderr);
        let missing = said
            .lines()
            .find_map(|l| l.split("No matching distribution found for ").nth(1))
            .map(|name| {
                format!(
                    "{name} has no pure-Python wheel (it needs C code, which has no WASI build); "
                )
            })
            .unwrap_or_default();
        return Err(Failure::input(format!(
            "{}/requirements.txt: {missing}pip could not vendor it:\n{}",
            pack_dir.display(),
            said.trim_end()
        )));
    }
    let mut installed = Vec::new();
    for entry in std::fs::read_dir(target).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".dist-info")
            && let Some((dist, version)) = stem.rsplit_once('-')
        {
            installed.push(format!("{dist}=={version}"));
        }
    }
    installed.sort();
    Ok(installed)
}

/// Makes the pure wheels of [`squall_core::python::PURE_FROM_SOURCE`] in `<target>.wheels`
/// (each from its source distribution on PyPI, the newest the pack's requirement allows,
/// checked against PyPI's sha256 and only read, never run) with
/// `runtime/cli/src/cmd/pure_wheel.py`; returns that directory.
///
/// # Errors
/// [`Failure`] when no source distribution matches, the download fails or does not match.
fn pure_wheels(
    python: &std::path::Path,
    wanted: &[String],
    target: &std::path::Path,
) -> Result<std::path::PathBuf, Failure> {
    use squall_core::python::{PURE_FROM_SOURCE, requirement_name};
    let wheels = target.with_extension("wheels");
    let sdists = target.with_extension("sdists");
    for dir in [&wheels, &sdists] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::internal(format!("{}: {e}", dir.display())))?;
    }
    let script = sdists.join("pure_wheel.py");
    std::fs::write(&script, include_str!("pure_wheel.py"))
        .map_err(|e| Failure::internal(format!("{}: {e}", script.display())))?;
    for (dist, inner) in PURE_FROM_SOURCE {
        let name = requirement_name(dist);
        // Only the version specifier of the pack's line (the lines are checked: a name, extras,
        // specifiers), never a URL or an option.
        let spec = wanted
            .iter()
            .find(|w| requirement_name(w) == name)
            .map(|w| {
                let rest = &w[w
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                    .unwrap_or(w.len())..];
                let rest = rest.find(']').map_or(rest, |end| &rest[end + 1..]);
                rest.trim().to_string()
            })
            .unwrap_or_default();
        let made = std::process::Command::new(python)
            .arg(&script)
            .arg(dist)
            .arg(&spec)
            .arg(inner)
            .arg(&sdists)
            .arg(&wheels)
            .output()
            .map_err(|e| Failure::internal(format!("cannot run {}: {e}", python.display())))?;
        if !made.status.success() {
            return Err(Failure::input(format!(
                "making a pure wheel of {dist}{spec} from its source failed:\n{}",
                String::from_utf8_lossy(&made.stderr).trim_end()
            )));
        }
    }
    Ok(wheels)
}

/// `squall pack validate PATH` (see [`PackCommand::Validate`]).
///
/// # Errors
/// [`Failure`] when PATH is not a directory or the host cannot start.
pub fn validate(
    settings: &crate::settings::Settings,
    pack_dir: &std::path::Path,
) -> Result<u8, Failure> {
    validate_to(settings, pack_dir, &|s| crate::output::out(s))
}

/// [`validate`], printing each problem and the summary with `print` (`squall pack install`
/// prints them on stderr, with its staging directory shown as the source).
///
/// # Errors
/// As [`validate`].
pub fn validate_to(
    settings: &crate::settings::Settings,
    pack_dir: &std::path::Path,
    print: &dyn Fn(&str),
) -> Result<u8, Failure> {
    use squall_core::{PackSet, RunnerType};
    let dir = pack_dir
        .canonicalize()
        .map_err(|e| Failure::input(format!("{}: {e}", pack_dir.display())))?;
    let real = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    // The pack's own directory first (a pack of the same ref already in the packs directories,
    // an installed older version, is the one skipped), then the packs the server would load
    // (its refs to other packs resolve as they will when it is served).
    let mut bases = settings.packs_dirs.clone();
    if let Some(parent) = dir.parent()
        && !bases.iter().any(|b| real(b) == parent)
    {
        bases.insert(0, parent.to_path_buf());
    }
    let set = PackSet::load_all_with_configs(&bases, settings.config.configs_dir.as_deref());
    let inside = |p: &std::path::Path| {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        real(&p).starts_with(&dir) || p.starts_with(&dir)
    };
    let mut problems: Vec<String> = set
        .errors
        .iter()
        .filter(|e| inside(&e.path))
        .map(ToString::to_string)
        .collect();
    let pack = set.packs.values().find(|p| real(&p.path) == dir);
    if let Some(pack) = pack {
        let host = settings.host(None)?;
        for action in pack.actions.values() {
            if matches!(
                action.runner_type,
                RunnerType::Wasm | RunnerType::PythonScript
            ) && let Err(e) = host.prepare(&action.entry_path)
            {
                problems.push(format!(
                    "{}: entry_point: {e}",
                    action.metadata_file.display()
                ));
            }
        }
        // A python-script action's parameters against its run() signature, as the build read
        // it (only from a build of the current sources: a stale one is reported at load).
        let lock: Option<squall_core::python::Lock> = std::fs::read(
            pack.path
                .join(squall_core::python::BUILD_DIR)
                .join(squall_core::python::LOCK_FILE),
        )
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(lock) = lock {
            let runner = &RunnerType::PythonScript.spec().runner_parameters;
            for action in pack.actions.values() {
                if action.runner_type != RunnerType::PythonScript {
                    continue;
                }
                let Some(signature) = lock.signatures.get(&action.entry_point) else {
                    continue;
                };
                let declared: Vec<&str> = action
                    .parameters
                    .specs()
                    .iter()
                    .map(|s| s.name.as_str())
                    .filter(|n| !runner.contains_key(*n))
                    .collect();
                for (field, message) in signature.problems(&declared) {
                    problems.push(format!(
                        "{}: {field}: {message}",
                        action.metadata_file.display()
                    ));
                }
            }
        }
        for sensor in pack.sensors.values() {
            if let Err(e) = host.prepare_sensor(&sensor.entry_path) {
                problems.push(format!(
                    "{}: entry_point: {e}",
                    sensor.metadata_file.display()
                ));
            }
        }
        problems.extend(crate::cmd::pack_sdk::stale(&pack.path));
    } else if problems.is_empty() {
        problems.push(format!("{}: not loaded as a pack", pack_dir.display()));
    }
    for p in &problems {
        print(&format!("{p}\n"));
    }
    let counts = pack.map_or_else(String::new, |p| {
        format!(
            " ({}: {} actions, {} rules, {} sensors, {} trigger types, {} policies)",
            p.meta.reference,
            p.actions.len(),
            p.rules.len(),
            p.sensors.len(),
            p.trigger_types.len(),
            p.policies.len()
        )
    });
    if problems.is_empty() {
        print(&format!("{}{counts}: ok\n", pack_dir.display()));
        Ok(0)
    } else {
        Err(Failure::input(format!(
            "{}{counts}: {} problem{}",
            pack_dir.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        )))
    }
}
