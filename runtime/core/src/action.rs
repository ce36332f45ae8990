//! Actions: StackStorm-format metadata (`actions/*.yaml`) naming a runner and an entry point.
//!
//! ```yaml
//! name: http
//! pack: core                 # optional; must match the pack
//! runner_type: wasm          # see crate::runner_type: wasm, orquesta, inquirer, noop,
//!                            #   local-shell-cmd, local-shell-script, remote-shell-cmd, remote-shell-script
//! entry_point: http.wasm     # component, workflow or script path, relative to the pack's actions/
//! description: Run an HTTP request.
//! enabled: true              # default true
//! parameters:                # see crate::param
//!   url: {type: string, required: true}
//! limits:                    # Squall extension, see crate::limits::LimitOverrides
//!   timeout: 30s
//! idempotent: false          # Squall extension: true = safe to run again after a crash
//! ```
//!
//! StackStorm's other metadata keys (`ref`, `uid`, `id`, `output_schema`, `tags`, `notify`,
//! `metadata_file`) are accepted; `output_schema` and `tags` are kept, the rest ignored. Any other
//! key is an error naming it.

use crate::limits::LimitOverrides;
use crate::param::Parameters;
use crate::reference::{Ref, validate_name};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Component, Path, PathBuf};

pub use crate::runner_type::RunnerType;

/// An action whose metadata has been validated.
#[derive(Debug, Clone)]
pub struct Action {
    /// `<pack>.<name>`.
    pub reference: Ref,
    /// Description from the metadata.
    pub description: String,
    /// Whether it may run (StackStorm's `enabled`, default true).
    pub enabled: bool,
    /// The runner.
    pub runner_type: RunnerType,
    /// The entry point as written.
    pub entry_point: String,
    /// The entry point resolved to a file inside the pack (`wasm`: the component; `orquesta`:
    /// the workflow YAML; `inquirer`: empty); for `python-script`, the pack's built component
    /// (see [`crate::python`]) once its pack has loaded, the module named by `entry_point`
    /// until then.
    pub entry_path: PathBuf,
    /// The workflow of an `orquesta` action, parsed and inspected when its pack loads
    /// (`None` for other runners, and until [`crate::PackSet`] has inspected it).
    pub workflow: Option<std::sync::Arc<crate::workflow::WorkflowSpec>>,
    /// The chain of an `action-chain` action, parsed and validated when its pack loads
    /// (`None` for other runners).
    pub chain: Option<std::sync::Arc<crate::chain::ChainSpec>>,
    /// The declared parameters.
    pub parameters: Parameters,
    /// The `limits:` block.
    pub limits: LimitOverrides,
    /// Whether running it twice is harmless (Squall extension, default false): an execution
    /// that was running when the server died is run again instead of marked `abandoned`.
    pub idempotent: bool,
    /// StackStorm's `output_schema`, kept for the API.
    pub output_schema: Option<Value>,
    /// StackStorm's `tags`, kept for the API.
    pub tags: Vec<Value>,
    /// The metadata file this came from.
    pub metadata_file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    name: String,
    #[serde(default)]
    pack: Option<String>,
    runner_type: String,
    #[serde(default)]
    entry_point: String,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    idempotent: bool,
    #[serde(default)]
    output_schema: Option<Value>,
    #[serde(default)]
    tags: Vec<Value>,
    // Accepted for compatibility with StackStorm exports; Squall derives them.
    #[serde(default, rename = "ref")]
    _reference: Option<Value>,
    #[serde(default, rename = "uid")]
    _uid: Option<Value>,
    #[serde(default, rename = "id")]
    _id: Option<Value>,
    #[serde(default, rename = "notify")]
    _notify: Option<Value>,
    #[serde(default, rename = "metadata_file")]
    _metadata_file: Option<Value>,
}

fn yes() -> bool {
    true
}

/// A problem in one metadata file: the field (dotted path, when known) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentError {
    /// The field, e.g. `runner_type` or `parameters.url.position`; empty for whole-file errors.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ContentError {
    pub(crate) fn at(field: &str, message: impl Into<String>) -> Self {
        ContentError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl Action {
    /// Parses and validates one action metadata file's text.
    ///
    /// `pack` is the pack's ref, `actions_dir` the pack's `actions/` directory (entry points are
    /// relative to it), `file` the metadata file (kept for messages).
    ///
    /// # Errors
    /// [`ContentError`] naming the field: YAML syntax or unknown keys, a bad `name`, a `pack`
    /// that is not this pack, an unknown `runner_type`, an entry point that is empty, absolute,
    /// escapes the pack or does not exist, or bad `parameters`.
    pub fn parse(
        text: &str,
        pack: &str,
        actions_dir: &Path,
        file: &Path,
    ) -> Result<Action, ContentError> {
        let raw: RawAction = serde_saphyr::from_str(text)
            .map_err(|e| ContentError::at("", yaml_message(&e, file)))?;
        let reference = resource_ref(pack, &raw.name, raw.pack.as_deref())?;
        let runner_type =
            RunnerType::parse(&raw.runner_type).map_err(|m| ContentError::at("runner_type", m))?;
        let entry_path = if runner_type.needs_entry_point() {
            resolve_entry_point(&raw.entry_point, actions_dir, runner_type)
                .map_err(|m| ContentError::at("entry_point", m))?
        } else if runner_type == RunnerType::LocalShellCmd && !raw.entry_point.trim().is_empty() {
            // StackStorm's local_shell_command_runner.py refuses it the same way.
            return Err(ContentError::at(
                "entry_point",
                "entry_point is only valid for local-shell-script runner",
            ));
        } else if runner_type == RunnerType::RemoteShellCmd && !raw.entry_point.trim().is_empty() {
            // As StackStorm's remote_command_runner.py.
            return Err(ContentError::at(
                "entry_point",
                format!(
                    "Action \"{reference}\" specified \"entry_point\" attribute. Perhaps wanted to \
                     use \"remote-shell-script\" runner?"
                ),
            ));
        } else {
            PathBuf::new()
        };
        let declared = crate::runner_type::merge_parameters(
            runner_type,
            &raw.parameters,
            &reference.to_string(),
        )
        .map_err(|(field, m)| ContentError::at(&field, m))?;
        let parameters =
            Parameters::from_yaml(&declared).map_err(|m| match m.split_once(": ") {
                Some((field, msg)) if field.starts_with("parameters") => {
                    ContentError::at(field, msg)
                }
                _ => ContentError::at("parameters", m),
            })?;
        Ok(Action {
            reference,
            description: raw.description,
            enabled: raw.enabled,
            runner_type,
            entry_point: raw.entry_point,
            entry_path,
            workflow: None,
            chain: None,
            parameters,
            limits: raw.limits,
            idempotent: raw.idempotent,
            output_schema: raw.output_schema,
            tags: raw.tags,
            metadata_file: file.to_path_buf(),
        })
    }
}

/// The ref of a resource named `name` in a file of `pack`, checking the name and the file's
/// optional `pack` field (which must be the pack it is in).
///
/// # Errors
/// [`ContentError`] on `name` or `pack`.
pub(crate) fn resource_ref(
    pack: &str,
    name: &str,
    declared_pack: Option<&str>,
) -> Result<Ref, ContentError> {
    validate_name(name).map_err(|e| ContentError::at("name", e.to_string()))?;
    if let Some(p) = declared_pack
        && p != pack
    {
        return Err(ContentError::at(
            "pack",
            format!("{p:?} does not match the pack it is in ({pack:?})"),
        ));
    }
    Ref::new(pack, name).map_err(|e| ContentError::at("name", e.to_string()))
}

/// A YAML error as one message that names `file` (the parser calls it `<input>`).
pub(crate) fn yaml_message(e: &serde_saphyr::Error, file: &Path) -> String {
    let text = e.to_string();
    text.strip_prefix("error: ")
        .unwrap_or(&text)
        .replace("<input>", &file.display().to_string())
}

fn resolve_entry_point(
    entry: &str,
    actions_dir: &Path,
    runner: RunnerType,
) -> Result<PathBuf, String> {
    let what = match runner {
        RunnerType::Orquesta => "workflow",
        RunnerType::ActionChain => "chain",
        RunnerType::LocalShellScript | RunnerType::RemoteShellScript => "script",
        RunnerType::PythonScript => "module",
        _ => "component",
    };
    // As StackStorm's loader (`_get_plugin_module`), which loads only `.py` files.
    if runner == RunnerType::PythonScript && !entry.trim().is_empty() && !entry.ends_with(".py") {
        return Err(format!(
            "{entry:?}: a python-script action's entry point is a Python module (a .py file)"
        ));
    }
    if entry.trim().is_empty() {
        return Err(format!(
            "missing: a {runner} action needs the path of its {what}"
        ));
    }
    resolve_in_pack(entry, actions_dir, "actions", what)
}

/// `entry`, a path relative to the pack's `dir` (named `dir_name` in messages), checked to stay
/// inside it, to name an existing file (a `what`), and — links followed — to resolve inside
/// the pack (`dir`'s parent; see [`crate::pack_files::confine`]).
///
/// # Errors
/// A message naming the entry.
pub(crate) fn resolve_in_pack(
    entry: &str,
    dir: &Path,
    dir_name: &str,
    what: &str,
) -> Result<PathBuf, String> {
    let rel = Path::new(entry);
    if entry.trim().is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "{entry:?} must be a relative path inside the pack's {dir_name}/ directory"
        ));
    }
    let path = dir.join(rel);
    if !path.is_file() {
        return Err(format!("{what} {entry:?} not found at {}", path.display()));
    }
    crate::pack_files::confine(&crate::pack_files::pack_dir_of(dir), &path)?;
    Ok(path)
}

/// An action of pack `ops` from `yaml`, its component a stub in a temporary directory.
#[cfg(test)]
pub(crate) fn test_action(yaml: &str) -> Action {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
    Action::parse(yaml, "ops", dir.path(), &dir.path().join("a.yaml")).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Action, ContentError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
        Action::parse(yaml, "ops", dir.path(), &dir.path().join("a.yaml"))
    }

    #[test]
    fn parses_a_full_action() {
        let a = parse(
            "name: restart\npack: ops\nrunner_type: wasm\nentry_point: a.wasm\n\
             description: Restart it.\nparameters:\n  svc: {type: string, required: true}\n\
             limits: {timeout: 5s}\ntags: [x]\nnotify: {}\n",
        )
        .unwrap();
        assert_eq!(a.reference.to_string(), "ops.restart");
        assert!(a.enabled);
        assert_eq!(a.runner_type, RunnerType::Wasm);
        assert_eq!(a.limits.timeout, Some(std::time::Duration::from_secs(5)));
        assert!(a.entry_path.ends_with("a.wasm"));
    }

    #[test]
    fn errors_name_the_field() {
        for (yaml, field, want) in [
            (
                "name: x\nrunner_type: winrm-cmd\n",
                "runner_type",
                "does not run yet",
            ),
            (
                "name: x\nrunner_type: python-script\nentry_point: a.wasm\n",
                "entry_point",
                "a Python module (a .py file)",
            ),
            ("name: x\nrunner_type: wasm\n", "entry_point", "missing"),
            (
                "name: x\nrunner_type: wasm\nentry_point: b.wasm\n",
                "entry_point",
                "not found",
            ),
            (
                "name: x\nrunner_type: wasm\nentry_point: ../../etc/passwd\n",
                "entry_point",
                "relative path inside",
            ),
            (
                "name: x\nrunner_type: wasm\nentry_point: /etc/passwd\n",
                "entry_point",
                "relative path inside",
            ),
            (
                "name: x\npack: core\nrunner_type: wasm\nentry_point: a.wasm\n",
                "pack",
                "does not match",
            ),
            (
                "name: x y\nrunner_type: wasm\nentry_point: a.wasm\n",
                "name",
                "letters",
            ),
            (
                "name: x\nrunner_type: wasm\nentry_point: a.wasm\nparameters: {p: {type: string, secret: 1}}\n",
                "parameters.p.secret",
                "true or false",
            ),
            (
                "name: x\nrunner_type: wasm\nentry_point: a.wasm\nrunner: wasm\n",
                "",
                "runner",
            ),
            ("name: [x\n", "", ""),
        ] {
            let err = parse(yaml).unwrap_err();
            assert_eq!(err.field, field, "{yaml}: {err:?}");
            assert!(err.message.contains(want), "{yaml}: {err:?}");
        }
    }
}
