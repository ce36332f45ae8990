//! StackStorm Python content — `python-script` actions and Python polling sensors: what goes
//! into a pack's Python component and how the loader knows it is built and current.
//!
//! A pack's Python actions and sensors run, unchanged, inside one WebAssembly component of the
//! `squall:plugin/python-pack` world (`wit/squall.wit`) that `squall pack build` makes with
//! componentize-py from three things:
//! - Squall's Python runtime ([`RUNTIME_FILES`], `runtime/python/`): the app module
//!   `squall_st2` (the runner, after StackStorm's `python_runner/python_action_wrapper.py`) and
//!   the `st2common` and `st2reactor` names pack code imports (`Action`, `Sensor`,
//!   `PollingSensor`, `get_logger_for_python_runner_action`, the datastore scopes);
//! - every `.py` file under the pack's `actions/` and `sensors/`, and its `requirements.txt`
//!   ([`pack_sources`]);
//! - the generated `squall_pack_manifest` listing the entry points ([`Entries`]), which the
//!   component imports when it is built.
//!
//! The result is `<pack>/.squall/python-actions.wasm` beside the lock
//! `<pack>/.squall/python-actions.lock` ([`Lock`], JSON), which records the digest of
//! everything that went in ([`sources_digest`]). At load, [`check_built`] recomputes that
//! digest: a missing or out-of-date build is a load error on each `python-script` action and
//! Python sensor of the pack, naming the command that builds it; the rest of the pack loads.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Directory inside a pack where `squall pack build` writes what it builds.
pub const BUILD_DIR: &str = ".squall";

/// The component file in [`BUILD_DIR`].
pub const COMPONENT_FILE: &str = "python-actions.wasm";

/// The vendored dependencies in [`BUILD_DIR`], as installed by pip: what the component reads
/// at run time (data files such as botocore's service models and pytz's zone files).
pub const DEPS_DIR: &str = "python-deps";

/// The directories a Python pack's component reads at run time, read-only, and where it sees
/// them: `(host directory, guest path)`. componentize-py imports the pack's modules and their
/// dependencies while building, from its Python path entries mounted as `/0` (Squall's
/// runtime), `/1` (the pack's files) and `/2` (the vendored dependencies); a module reading a
/// file next to itself at run time (`os.path.dirname(__file__)`) asks for those paths again,
/// so the pack's directory is `/1` and [`BUILD_DIR`]`/`[`DEPS_DIR`] is `/2` (when built).
///
/// The pack's directory is given resolved (the version it was loaded from; the operator's
/// link to it is the boundary, as [`crate::pack_files`]). Links below are never mounted:
/// `.squall` or `python-deps` being a link (a pack shipping `.squall/python-deps -> /`) leaves
/// `/2` out, so the component reads nothing outside its pack. (Inside a mount, the host's
/// file system does not follow links out of it.)
pub fn read_only_dirs(pack_dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut dirs = vec![(pack_dir.to_path_buf(), "/1")];
    let build = pack_dir.join(BUILD_DIR);
    let deps = build.join(DEPS_DIR);
    let real_dir = |p: &Path| {
        std::fs::symlink_metadata(p)
            .is_ok_and(|m| m.file_type().is_dir() && !m.file_type().is_symlink())
    };
    if real_dir(&build) && real_dir(&deps) {
        dirs.push((deps, "/2"));
    }
    dirs
}

/// The lock file in [`BUILD_DIR`].
pub const LOCK_FILE: &str = "python-actions.lock";

/// The WIT world the component is built for.
pub const WORLD: &str = "python-pack";

/// The app module componentize-py is given.
pub const APP_MODULE: &str = "squall_st2";

/// The generated module listing the entry points (placed at the root of the pack's files, so
/// the component finds `actions/` and `sensors/` beside it).
pub const MANIFEST_MODULE: &str = "squall_pack_manifest";

/// Version of the lock format and of what goes into the digest; a change here rebuilds
/// every pack.
pub const FORMAT: u32 = 1;

/// The Python entry points of a pack, as its metadata names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// Each `python-script` action's `entry_point` (relative to `actions/`).
    pub actions: Vec<String>,
    /// Each Python sensor's `(class_name, entry_point)` (relative to `sensors/`).
    pub sensors: Vec<(String, String)>,
}

impl Entries {
    /// No Python content at all.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.sensors.is_empty()
    }

    /// Sorted, without repeats (the form the digest and the manifest use).
    pub fn normalized(&self) -> Entries {
        let mut actions = self.actions.clone();
        actions.sort();
        actions.dedup();
        let mut sensors = self.sensors.clone();
        sensors.sort();
        sensors.dedup();
        Entries { actions, sensors }
    }

    /// How many entry points.
    pub fn len(&self) -> usize {
        self.actions.len() + self.sensors.len()
    }
}

/// Squall's Python runtime: `(path, text)`, paths relative to the Python path root.
pub const RUNTIME_FILES: &[(&str, &str)] = &[
    ("squall_st2.py", include_str!("../../python/squall_st2.py")),
    (
        "squall_http.py",
        include_str!("../../python/squall_http.py"),
    ),
    (
        "squall_subprocess.py",
        include_str!("../../python/squall_subprocess.py"),
    ),
    (
        "eventlet/__init__.py",
        include_str!("../../python/eventlet/__init__.py"),
    ),
    (
        "eventlet/green/__init__.py",
        include_str!("../../python/eventlet/green/__init__.py"),
    ),
    (
        "st2reactor/__init__.py",
        include_str!("../../python/st2reactor/__init__.py"),
    ),
    (
        "st2reactor/sensor/__init__.py",
        include_str!("../../python/st2reactor/sensor/__init__.py"),
    ),
    (
        "st2reactor/sensor/base.py",
        include_str!("../../python/st2reactor/sensor/base.py"),
    ),
    (
        "st2common/__init__.py",
        include_str!("../../python/st2common/__init__.py"),
    ),
    (
        "st2common/log.py",
        include_str!("../../python/st2common/log.py"),
    ),
    (
        "st2common/constants/__init__.py",
        include_str!("../../python/st2common/constants/__init__.py"),
    ),
    (
        "st2common/constants/keyvalue.py",
        include_str!("../../python/st2common/constants/keyvalue.py"),
    ),
    (
        "st2common/runners/__init__.py",
        include_str!("../../python/st2common/runners/__init__.py"),
    ),
    (
        "st2common/runners/base_action.py",
        include_str!("../../python/st2common/runners/base_action.py"),
    ),
    (
        "st2common/runners/utils.py",
        include_str!("../../python/st2common/runners/utils.py"),
    ),
    (
        "st2common/util/__init__.py",
        include_str!("../../python/st2common/util/__init__.py"),
    ),
    (
        "st2common/util/isotime.py",
        include_str!("../../python/st2common/util/isotime.py"),
    ),
];

/// Squall's WIT package and its WASI dependencies: `(path under the WIT directory, text)`,
/// what componentize-py reads as `-d <dir>`.
pub const WIT_FILES: &[(&str, &str)] = &[
    (
        "squall.wit",
        include_str!("../../../plugin-sdk/wit/squall.wit"),
    ),
    (
        "deps/cli/cli.wit",
        include_str!("../../../plugin-sdk/wit/deps/cli/cli.wit"),
    ),
    (
        "deps/clocks/clocks.wit",
        include_str!("../../../plugin-sdk/wit/deps/clocks/clocks.wit"),
    ),
    (
        "deps/filesystem/filesystem.wit",
        include_str!("../../../plugin-sdk/wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "deps/http/http.wit",
        include_str!("../../../plugin-sdk/wit/deps/http/http.wit"),
    ),
    (
        "deps/io/io.wit",
        include_str!("../../../plugin-sdk/wit/deps/io/io.wit"),
    ),
    (
        "deps/random/random.wit",
        include_str!("../../../plugin-sdk/wit/deps/random/random.wit"),
    ),
    (
        "deps/sockets/sockets.wit",
        include_str!("../../../plugin-sdk/wit/deps/sockets/sockets.wit"),
    ),
];

/// What `squall pack build` records about a pack's Python component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// [`FORMAT`] when it was built.
    pub format: u32,
    /// [`runtime_digest`] of the Squall that built it.
    pub runtime_sha256: String,
    /// [`sources_digest`] of the pack's files that went in.
    pub sources_sha256: String,
    /// Hex SHA-256 of the component file.
    pub component_sha256: String,
    /// The actions' entry points built in (relative to `actions/`).
    pub entry_points: Vec<String>,
    /// The sensors built in: `(class_name, entry point relative to sensors/)`.
    #[serde(default)]
    pub sensors: Vec<(String, String)>,
    /// Each file of the pack that went in (relative to the pack) with its hex SHA-256.
    pub files: Vec<(String, String)>,
    /// `componentize-py --version` of the build.
    pub componentize_py: String,
    /// The distributions vendored from `requirements.txt`, as `name==version`, sorted.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Each action entry point's `run` signature (read from its source at build time), by
    /// entry point relative to `actions/`.
    #[serde(default)]
    pub signatures: std::collections::BTreeMap<String, Signature>,
}

/// The `run` method of a python-script entry point, as the build read it (the class StackStorm
/// picks: the first, by name, of the module's own classes defining `run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The class.
    #[serde(default)]
    pub class: String,
    /// Its parameters after `self`, positional then keyword-only.
    #[serde(default)]
    pub parameters: Vec<String>,
    /// Those without a default.
    #[serde(default)]
    pub required: Vec<String>,
    /// Whether it takes `**kwargs`.
    #[serde(default)]
    pub var_keyword: bool,
    /// Why no `run` was found (no class of the module defines one): every run would fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the source could not be read by the build's Python (which may be older than the
    /// guest's): nothing is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

impl Signature {
    /// What is wrong with calling it with `declared` (the action's `parameters:`, runner
    /// parameters left out): a declared parameter it does not take (StackStorm's `run()`
    /// fails with `TypeError: run() got an unexpected keyword argument`), or one it requires
    /// that is not declared (`run() missing 1 required positional argument`). Messages name
    /// the class; each comes with its field (`parameters.<name>`, `entry_point`).
    pub fn problems(&self, declared: &[&str]) -> Vec<(String, String)> {
        if self.unread.is_some() {
            return Vec::new();
        }
        if let Some(e) = &self.error {
            return vec![("entry_point".into(), e.clone())];
        }
        let mut out = Vec::new();
        if !self.var_keyword {
            for name in declared {
                if !self.parameters.iter().any(|p| p == name) {
                    out.push((
                        format!("parameters.{name}"),
                        format!(
                            "{}.run() does not take it (a run would fail: run() got an \
                             unexpected keyword argument '{name}')",
                            self.class
                        ),
                    ));
                }
            }
        }
        for name in &self.required {
            if !declared.contains(&name.as_str()) {
                out.push((
                    format!("parameters.{name}"),
                    format!(
                        "{}.run() requires it and the action does not declare it (a run \
                         would fail: run() missing a required argument '{name}')",
                        self.class
                    ),
                ));
            }
        }
        out
    }
}

/// StackStorm's Python environment that packs import without declaring it, vendored into every
/// pack's component (pure-Python wheels from the package index; a pack's `requirements.txt`
/// may pin other versions).
pub const STACKSTORM_ENVIRONMENT: &[&str] =
    &["six", "requests", "pytz", "simplejson", "pyyaml", "jinja2"];

/// Packages with no pure-Python wheel whose C code is optional: `(distribution, the package's
/// directory inside its source distribution)`. `squall pack build` makes a pure wheel of each
/// from its source distribution, so they resolve wherever a requirement names them.
pub const PURE_FROM_SOURCE: &[(&str, &str)] =
    &[("PyYAML", "lib/yaml"), ("MarkupSafe", "src/markupsafe")];

/// Requirements Squall provides itself and never asks the package index for: `eventlet` (and
/// its C core `greenlet`, which has no WASI build) is Squall's stand-in in `runtime/python`.
pub const PROVIDED: &[&str] = &["eventlet", "greenlet"];

/// The pack's `requirements.txt` among [`pack_sources`].
pub const REQUIREMENTS: &str = "requirements.txt";

/// The Python files of the pack at `pack_dir`: every `*.py` under `actions/` and `sensors/`
/// (hidden directories and `__pycache__` skipped), `(path relative to the pack, with '/',
/// bytes)`, and its `requirements.txt` when it has one, sorted by path.
///
/// # Errors
/// A message naming the file: unreadable, a name that is not UTF-8, or a link leading out of
/// the pack ([`crate::pack_files::confine`]).
pub fn pack_sources(pack_dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for sub in ["actions", "sensors"] {
        let dir = pack_dir.join(sub);
        if dir.is_dir() {
            walk(pack_dir, &dir, &format!("{sub}/"), &mut out)?;
        }
    }
    let requirements = pack_dir.join(REQUIREMENTS);
    if let Some(text) = crate::pack_files::read_text(pack_dir, &requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?
    {
        out.push((REQUIREMENTS.to_string(), text.into_bytes()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(
    pack_dir: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(format!("{}: file name is not UTF-8", path.display()));
        };
        if name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        let real = crate::pack_files::confine(pack_dir, &path)?;
        let rel = format!("{prefix}{name}");
        if real.is_dir() {
            walk(pack_dir, &path, &format!("{rel}/"), out)?;
        } else if name.ends_with(".py") {
            let bytes =
                std::fs::read(&real).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            out.push((rel, bytes));
        }
    }
    Ok(())
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The digest of what Squall puts into every pack's Python component: [`FORMAT`], StackStorm's
/// environment, Squall's runtime and WIT files (a build by another Squall differs here).
pub fn runtime_digest() -> String {
    let mut h = Sha256::new();
    let mut put = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    put(format!("squall-python-actions/{FORMAT}").as_bytes());
    for name in STACKSTORM_ENVIRONMENT {
        put(name.as_bytes());
    }
    for (path, text) in RUNTIME_FILES.iter().chain(WIT_FILES) {
        put(path.as_bytes());
        put(text.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The digest of the pack's `sources` ([`pack_sources`]), each path and content
/// length-prefixed so no two different inputs collide.
pub fn sources_digest(sources: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    let mut put = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    for (path, bytes) in sources {
        put(path.as_bytes());
        put(bytes);
    }
    hex::encode(h.finalize())
}

/// The text of the generated [`MANIFEST_MODULE`] for `entries`.
pub fn manifest(entries: &Entries) -> String {
    let entries = entries.normalized();
    let quote = |e: &String| serde_json::to_string(e).expect("a string serializes");
    let actions = entries
        .actions
        .iter()
        .map(quote)
        .collect::<Vec<_>>()
        .join(", ");
    let sensors = entries
        .sensors
        .iter()
        .map(|(class, e)| format!("{}: {}", quote(class), quote(e)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "# Generated by `squall pack build`: the pack's Python entry points.\n\
         ACTIONS = [{actions}]\n\
         SENSORS = {{{sensors}}}\n"
    )
}

/// The built component of the pack at `pack_dir`, checked current: built by this Squall
/// ([`runtime_digest`]), from the pack's files as they are ([`sources_digest`]), with each of
/// `entries` (the entry points of the `python-script` actions and Python sensors that loaded)
/// built in.
///
/// # Errors
/// A message saying what is wrong and naming the command that fixes it: not built, built by
/// another Squall, built from other files (naming one that changed), or an entry point the
/// build does not have.
pub fn check_built(pack_dir: &Path, entries: &Entries) -> Result<PathBuf, String> {
    let build = pack_dir.join(BUILD_DIR);
    let component = build.join(COMPONENT_FILE);
    let lock_path = build.join(LOCK_FILE);
    let fix = format!("run `squall pack build {}`", pack_dir.display());
    let lock = match crate::pack_files::read_text(pack_dir, &lock_path)? {
        None => return Err(format!("the pack's Python content is not built; {fix}")),
        Some(text) => serde_json::from_str::<Lock>(&text)
            .map_err(|e| format!("{}: {e}; {fix}", lock_path.display()))?,
    };
    if lock.format != FORMAT || lock.runtime_sha256 != runtime_digest() {
        return Err(format!(
            "the pack's Python content was built by another version of Squall; {fix}"
        ));
    }
    let sources = pack_sources(pack_dir)?;
    if sources_digest(&sources) != lock.sources_sha256 {
        let changed = sources
            .iter()
            .find(|(p, b)| {
                !lock
                    .files
                    .iter()
                    .any(|(lp, ls)| lp == p && *ls == sha256_hex(b))
            })
            .map(|(p, _)| format!("{p} changed since"))
            .or_else(|| {
                lock.files
                    .iter()
                    .find(|(lp, _)| !sources.iter().any(|(p, _)| p == lp))
                    .map(|(p, _)| format!("{p} was removed since"))
            })
            .unwrap_or_else(|| "the pack's Python files changed since".into());
        return Err(format!("{changed} the pack was built; {fix}"));
    }
    if let Some(missing) = entries
        .actions
        .iter()
        .find(|e| !lock.entry_points.contains(e))
    {
        return Err(format!(
            "entry point actions/{missing} is not in the pack's build; {fix}"
        ));
    }
    if let Some((class, e)) = entries.sensors.iter().find(|s| !lock.sensors.contains(s)) {
        return Err(format!(
            "sensor {class} (sensors/{e}) is not in the pack's build; {fix}"
        ));
    }
    crate::pack_files::confine(pack_dir, &component).map_err(|e| format!("{e}; {fix}"))
}

/// The requirement lines of a `requirements.txt` (comments and blank lines dropped), and the
/// ones naming a [`PROVIDED`] package, left out.
///
/// # Errors
/// A message naming the line (1-based) that is not `<name>[<extras>]` followed by version
/// specifiers: a pip option (`-r`, `--index-url`, ...), a URL or path, an environment marker.
/// What is installed comes from the package index by name only, never from where a pack says.
pub fn requirements(text: &str) -> Result<(Vec<String>, Vec<String>), String> {
    static LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        let spec = r"(===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+";
        regex::Regex::new(&format!(
            r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*({spec}(\s*,\s*{spec})*)?$"
        ))
        .expect("a valid pattern")
    });
    let mut wanted = Vec::new();
    let mut provided = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        if !LINE.is_match(line) {
            return Err(format!(
                "requirements.txt line {}: {line:?}: only a package name with optional extras \
                 and version specifiers is accepted (no pip options, URLs, paths or markers)",
                i + 1
            ));
        }
        if PROVIDED.contains(&requirement_name(line).as_str()) {
            provided.push(line.to_string());
        } else {
            wanted.push(line.to_string());
        }
    }
    Ok((wanted, provided))
}

/// The normalized distribution name a requirement line names (`PyYAML>=5` → `pyyaml`,
/// `charset_normalizer` → `charset-normalizer`), as PEP 503 compares them.
pub fn requirement_name(line: &str) -> String {
    line.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn actions(names: &[&str]) -> Entries {
        Entries {
            actions: names.iter().map(|s| s.to_string()).collect(),
            sensors: Vec::new(),
        }
    }

    fn lock_for(dir: &Path, entries: &Entries) -> Lock {
        let sources = pack_sources(dir).unwrap();
        Lock {
            format: FORMAT,
            runtime_sha256: runtime_digest(),
            sources_sha256: sources_digest(&sources),
            component_sha256: String::new(),
            entry_points: entries.actions.clone(),
            sensors: entries.sensors.clone(),
            files: sources
                .iter()
                .map(|(p, b)| (p.clone(), sha256_hex(b)))
                .collect(),
            componentize_py: "test".into(),
            dependencies: Vec::new(),
            signatures: Default::default(),
        }
    }

    #[test]
    fn sources_are_the_python_files_under_actions_and_sensors() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "actions/a.py", "x = 1\n");
        write(d.path(), "actions/lib/b.py", "y = 2\n");
        write(d.path(), "actions/a.yaml", "name: a\n");
        write(d.path(), "actions/.hidden/c.py", "z = 3\n");
        write(d.path(), "actions/__pycache__/a.cpython.py", "");
        write(d.path(), "sensors/s.py", "");
        write(d.path(), "rules/r.py", "");
        write(d.path(), "requirements.txt", "six\n");
        let names: Vec<String> = pack_sources(d.path())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            names,
            [
                "actions/a.py",
                "actions/lib/b.py",
                "requirements.txt",
                "sensors/s.py"
            ]
        );
    }

    #[test]
    fn a_build_is_current_until_a_source_changes() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "actions/a.py", "x = 1\n");
        let entries = actions(&["a.py"]);
        let err = check_built(d.path(), &entries).unwrap_err();
        assert!(err.contains("not built; run `squall pack build"), "{err}");

        let lock = lock_for(d.path(), &entries);
        write(
            d.path(),
            ".squall/python-actions.lock",
            &serde_json::to_string(&lock).unwrap(),
        );
        write(d.path(), ".squall/python-actions.wasm", "\0asm");
        let built = check_built(d.path(), &entries).unwrap();
        assert!(built.ends_with(".squall/python-actions.wasm"));

        write(d.path(), "actions/a.py", "x = 2\n");
        let err = check_built(d.path(), &entries).unwrap_err();
        assert!(
            err.starts_with("actions/a.py changed since the pack was built"),
            "{err}"
        );

        write(d.path(), "actions/a.py", "x = 1\n");
        write(d.path(), "actions/new.py", "");
        let err = check_built(d.path(), &entries).unwrap_err();
        assert!(err.starts_with("actions/new.py changed since"), "{err}");
        std::fs::remove_file(d.path().join("actions/new.py")).unwrap();
        write(d.path(), "requirements.txt", "six\n");
        let err = check_built(d.path(), &entries).unwrap_err();
        assert!(err.starts_with("requirements.txt changed since"), "{err}");
        std::fs::remove_file(d.path().join("requirements.txt")).unwrap();
        check_built(d.path(), &entries).unwrap();

        // A new python-script action or Python sensor naming an entry point not built in; one
        // that failed to load (fewer entries) leaves the build current.
        let more = actions(&["a.py", "lib/other.py"]);
        let err = check_built(d.path(), &more).unwrap_err();
        assert!(
            err.starts_with("entry point actions/lib/other.py is not in the pack's build"),
            "{err}"
        );
        let sensor = Entries {
            actions: vec!["a.py".into()],
            sensors: vec![("Watch".into(), "watch.py".into())],
        };
        let err = check_built(d.path(), &sensor).unwrap_err();
        assert!(
            err.starts_with("sensor Watch (sensors/watch.py) is not in the pack's build"),
            "{err}"
        );
        check_built(d.path(), &actions(&[])).unwrap();

        // Built by another Squall (its runtime differs).
        let mut old = lock_for(d.path(), &entries);
        old.runtime_sha256 = "0".repeat(64);
        write(
            d.path(),
            ".squall/python-actions.lock",
            &serde_json::to_string(&old).unwrap(),
        );
        let err = check_built(d.path(), &entries).unwrap_err();
        assert!(err.contains("built by another version of Squall"), "{err}");
    }

    #[test]
    fn requirement_lines_drop_comments_and_blanks() {
        let (wanted, provided) = requirements(
            "# deps\nrequests>=2 # http\n\n  six\neventlet==0.33\nPyYAML[x] >= 5.1, <7\n",
        )
        .unwrap();
        assert_eq!(wanted, ["requests>=2", "six", "PyYAML[x] >= 5.1, <7"]);
        assert_eq!(provided, ["eventlet==0.33"]);
        for bad in [
            "-r other.txt",
            "--index-url=https://evil/simple",
            "PyYAML @ https://evil/x.tar.gz",
            "git+https://evil/x.git",
            "./local/pkg",
            "six; python_version > '3'",
        ] {
            let e = requirements(&format!("six\n{bad}\n")).unwrap_err();
            assert!(e.starts_with("requirements.txt line 2:"), "{bad}: {e}");
        }
        assert_eq!(requirement_name("PyYAML>=5.1"), "pyyaml");
        assert_eq!(
            requirement_name("charset_normalizer[x]"),
            "charset-normalizer"
        );
    }

    #[test]
    fn the_manifest_lists_each_entry_point_once() {
        let m = manifest(&Entries {
            actions: vec!["b.py".into(), "a.py".into(), "b.py".into()],
            sensors: vec![("Watch".into(), "watch.py".into())],
        });
        assert!(
            m.ends_with("ACTIONS = [\"a.py\", \"b.py\"]\nSENSORS = {\"Watch\": \"watch.py\"}\n"),
            "{m}"
        );
    }

    #[test]
    fn the_runtime_and_wit_are_embedded() {
        assert!(
            RUNTIME_FILES
                .iter()
                .any(|(p, t)| *p == "squall_st2.py" && t.contains("class WitWorld"))
        );
        assert!(WIT_FILES[0].1.contains(&format!("world {WORLD}")));
    }

    #[test]
    fn a_signature_names_parameters_run_does_not_take_and_arguments_not_declared() {
        let sig = Signature {
            class: "Lookup".into(),
            parameters: vec!["host".into(), "port".into()],
            required: vec!["host".into()],
            var_keyword: false,
            error: None,
            unread: None,
        };
        assert!(sig.problems(&["host", "port"]).is_empty());
        assert!(sig.problems(&["host"]).is_empty());
        let problems = sig.problems(&["port", "verbose"]);
        assert_eq!(
            problems.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            ["parameters.verbose", "parameters.host"]
        );
        assert!(
            problems[0]
                .1
                .contains("unexpected keyword argument 'verbose'")
        );
        let open = Signature {
            var_keyword: true,
            ..sig.clone()
        };
        assert!(open.problems(&["host", "anything"]).is_empty());
        let unread = Signature {
            unread: Some("invalid syntax".into()),
            ..sig
        };
        assert!(unread.problems(&["x"]).is_empty());
    }

    #[test]
    fn a_linked_dependencies_directory_is_never_mounted() {
        let d = tempfile::tempdir().unwrap();
        let pack = d.path().join("p");
        std::fs::create_dir_all(pack.join(BUILD_DIR)).unwrap();
        assert_eq!(read_only_dirs(&pack), [(pack.clone(), "/1")]);
        std::os::unix::fs::symlink("/", pack.join(BUILD_DIR).join(DEPS_DIR)).unwrap();
        assert_eq!(read_only_dirs(&pack), [(pack.clone(), "/1")]);
        std::fs::remove_file(pack.join(BUILD_DIR).join(DEPS_DIR)).unwrap();
        std::fs::create_dir_all(pack.join(BUILD_DIR).join(DEPS_DIR)).unwrap();
        assert_eq!(
            read_only_dirs(&pack),
            [
                (pack.clone(), "/1"),
                (pack.join(BUILD_DIR).join(DEPS_DIR), "/2")
            ]
        );
        // `.squall` itself a link to somewhere with a python-deps directory: not mounted.
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join(DEPS_DIR)).unwrap();
        std::fs::remove_dir_all(pack.join(BUILD_DIR)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, pack.join(BUILD_DIR)).unwrap();
        assert_eq!(read_only_dirs(&pack), [(pack.clone(), "/1")]);
    }
}
