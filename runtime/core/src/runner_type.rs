//! Runner types: what executes an action, and the runner parameters each one declares, as
//! StackStorm models them (`runner.yaml` of each runner; served by `/api/v1/runnertypes`).
//!
//! An action's `parameters` are merged over its runner's `runner_parameters` at load, as
//! StackStorm's `st2common/validators/api/action.py` (`_validate_parameters`) and
//! `st2common/util/schema` (`get_schema_for_action_parameters`) do: a parameter the action also
//! declares takes the action's values attribute by attribute, but only `default`,
//! `description`, `enum`, `immutable` and `required` may differ from the runner's
//! ([`OVERRIDABLE`]); an action cannot make a runner parameter immutable when the runner
//! already says whether it is; an immutable parameter needs a default. When it runs, the
//! execution's parameters split into runner parameters (every name the runner declares,
//! overridden or not) and action parameters (the rest), as `st2common/util/param.py`
//! `_split_params`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::LazyLock;

/// What executes an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunnerType {
    /// A WebAssembly component of the `squall:plugin/action` world (`entry_point` = its path).
    #[serde(rename = "wasm")]
    Wasm,
    /// An Orquesta workflow (`entry_point` = its YAML, e.g. `workflows/canary.yaml`), conducted
    /// by Squall, as StackStorm's `orquesta` runner.
    #[serde(rename = "orquesta")]
    Orquesta,
    /// A chain of actions run one after another (`entry_point` = its YAML, e.g.
    /// `chains/deploy.yaml`), conducted durably by Squall, as StackStorm's `action-chain`
    /// runner (see [`crate::chain`]).
    #[serde(rename = "action-chain")]
    ActionChain,
    /// Waits for a human response, as StackStorm's `inquirer` runner (`core.ask`); no entry
    /// point.
    #[serde(rename = "inquirer")]
    Inquirer,
    /// Succeeds at once with `{"failed": false, "succeeded": true, "return_code": 0}`, as
    /// StackStorm's `noop` runner.
    #[serde(rename = "noop")]
    Noop,
    /// Runs the `cmd` runner parameter on this machine through the `process` capability, as
    /// StackStorm's `local-shell-cmd` (`core.local`).
    #[serde(rename = "local-shell-cmd")]
    LocalShellCmd,
    /// Runs the pack's script (`entry_point`, relative to `actions/`) with the action's
    /// parameters as arguments, as StackStorm's `local-shell-script`.
    #[serde(rename = "local-shell-script")]
    LocalShellScript,
    /// Runs the `cmd` runner parameter on each of `hosts` over SSH, as StackStorm's
    /// `remote-shell-cmd` (`core.remote`).
    #[serde(rename = "remote-shell-cmd")]
    RemoteShellCmd,
    /// Copies the pack's script to each of `hosts` over SSH and runs it there with the action's
    /// parameters as arguments, as StackStorm's `remote-shell-script`.
    #[serde(rename = "remote-shell-script")]
    RemoteShellScript,
    /// One HTTP request built from the runner's and the action's parameters, as StackStorm's
    /// `http-request` runner (`core.http`); run by the `core` pack's HTTP component under the
    /// action's own pack's `http_allow` grant.
    #[serde(rename = "http-request")]
    HttpRequest,
    /// Publishes the action's parameters on the stream as `st2.announcement__<route>`, as
    /// StackStorm's `announcement` runner (`core.announcement`); needs `experimental: true`.
    #[serde(rename = "announcement")]
    Announcement,
    /// Runs a StackStorm Python action (`entry_point` = its module, e.g. `lookup.py`,
    /// relative to `actions/`) unchanged, inside the component `squall pack build` made of the
    /// pack's Python files (see [`crate::python`]), as StackStorm's `python-script` runner.
    #[serde(rename = "python-script")]
    PythonScript,
}

/// StackStorm runner types Squall does not run yet; an action naming one is reported at load
/// (file, field `runner_type`, runner name) and not loaded, the rest of its pack is.
pub const NOT_YET: [&str; 3] = ["winrm-cmd", "winrm-ps-cmd", "winrm-ps-script"];

/// The attributes of a runner parameter an action may give other values, as StackStorm's
/// `RUNNER_PARAM_OVERRIDABLE_ATTRS`.
pub const OVERRIDABLE: [&str; 5] = ["default", "description", "enum", "immutable", "required"];

/// One runner type as `/api/v1/runnertypes` shows it (StackStorm's `RunnerTypeAPI` fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerTypeSpec {
    /// The name actions give as `runner_type`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Always true: every runner Squall lists runs.
    pub enabled: bool,
    /// StackStorm's `runner_package`.
    pub runner_package: String,
    /// StackStorm's `runner_module`.
    pub runner_module: String,
    /// Parameters every action of this runner has, in StackStorm's action-parameter format.
    pub runner_parameters: Map<String, Value>,
    /// The result field shown as the output (StackStorm's `output_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// The result's JSON Schema (StackStorm's `output_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
}

static SPECS: LazyLock<Vec<RunnerTypeSpec>> = LazyLock::new(|| {
    serde_saphyr::from_str(include_str!("runner_type/runners.yaml"))
        .expect("runner_type/runners.yaml is valid (tested)")
});

impl RunnerType {
    /// Every runner Squall runs, by the name used in `runner_type`.
    pub const ALL: [(&'static str, RunnerType); 12] = [
        ("wasm", RunnerType::Wasm),
        ("orquesta", RunnerType::Orquesta),
        ("action-chain", RunnerType::ActionChain),
        ("inquirer", RunnerType::Inquirer),
        ("noop", RunnerType::Noop),
        ("local-shell-cmd", RunnerType::LocalShellCmd),
        ("local-shell-script", RunnerType::LocalShellScript),
        ("remote-shell-cmd", RunnerType::RemoteShellCmd),
        ("remote-shell-script", RunnerType::RemoteShellScript),
        ("http-request", RunnerType::HttpRequest),
        ("announcement", RunnerType::Announcement),
        ("python-script", RunnerType::PythonScript),
    ];

    /// The runner's name as written in `runner_type`.
    pub fn name(self) -> &'static str {
        RunnerType::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .expect("every runner is in ALL")
    }

    /// Its metadata and runner parameters.
    pub fn spec(self) -> &'static RunnerTypeSpec {
        let name = self.name();
        SPECS
            .iter()
            .find(|s| s.name == name)
            .expect("every runner is in runners.yaml (tested)")
    }

    /// Every runner's metadata, in the order of [`RunnerType::ALL`].
    pub fn specs() -> &'static [RunnerTypeSpec] {
        &SPECS
    }

    /// Whether it runs a file of the pack (`entry_point` required), needs none (`entry_point`
    /// empty or absent), as StackStorm's runners check.
    pub fn needs_entry_point(self) -> bool {
        matches!(
            self,
            RunnerType::Wasm
                | RunnerType::Orquesta
                | RunnerType::ActionChain
                | RunnerType::LocalShellScript
                | RunnerType::RemoteShellScript
                | RunnerType::PythonScript
        )
    }

    /// Whether Squall conducts it durably: its state lives beside the execution, its steps run
    /// as child executions (`orquesta`, `action-chain`).
    pub fn is_conducted(self) -> bool {
        matches!(self, RunnerType::Orquesta | RunnerType::ActionChain)
    }

    /// Whether it runs a command (through the `process` or the `ssh` capability).
    pub fn runs_commands(self) -> bool {
        matches!(
            self,
            RunnerType::LocalShellCmd
                | RunnerType::LocalShellScript
                | RunnerType::RemoteShellCmd
                | RunnerType::RemoteShellScript
        )
    }

    /// Whether it runs a script file of the pack.
    pub fn runs_script(self) -> bool {
        matches!(
            self,
            RunnerType::LocalShellScript | RunnerType::RemoteShellScript
        )
    }

    pub(crate) fn parse(name: &str) -> Result<RunnerType, String> {
        if let Some((_, r)) = RunnerType::ALL.iter().find(|(n, _)| *n == name) {
            return Ok(*r);
        }
        let known = RunnerType::ALL
            .iter()
            .map(|(n, _)| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        if NOT_YET.contains(&name) {
            return Err(format!(
                "runner {name:?} is a StackStorm runner Squall does not run yet; Squall runs {known}"
            ));
        }
        Err(format!("unknown runner {name:?}; known runners: {known}"))
    }
}

impl fmt::Display for RunnerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parameters of an action of `runner` declaring `declared`, merged over the runner's
/// parameters (see the module docs); `action_ref` names the action in messages.
///
/// # Errors
/// `(field, message)` with StackStorm's messages: `The attribute "type" for the runner
/// parameter "cmd" in action "ops.x" cannot be overridden.`, `Param sudo is declared immutable
/// in runner. Cannot override in action.`
pub(crate) fn merge_parameters(
    runner: RunnerType,
    declared: &Map<String, Value>,
    action_ref: &str,
) -> Result<Map<String, Value>, (String, String)> {
    let runner_params = &runner.spec().runner_parameters;
    let mut merged = runner_params.clone();
    for (name, meta) in declared {
        let Some(Value::Object(base)) = runner_params.get(name) else {
            merged.insert(name.clone(), meta.clone());
            continue;
        };
        let Value::Object(meta) = meta else {
            return Err((format!("parameters.{name}"), "must be a mapping".into()));
        };
        for (attr, value) in meta {
            if !OVERRIDABLE.contains(&attr.as_str()) && base.get(attr) != Some(value) {
                return Err((
                    format!("parameters.{name}.{attr}"),
                    format!(
                        "The attribute \"{attr}\" for the runner parameter \"{name}\" in action \
                         \"{action_ref}\" cannot be overridden."
                    ),
                ));
            }
        }
        if meta.contains_key("immutable") && base.contains_key("immutable") {
            return Err((
                format!("parameters.{name}.immutable"),
                format!("Param {name} is declared immutable in runner. Cannot override in action."),
            ));
        }
        let mut m = base.clone();
        for (attr, value) in meta {
            m.insert(attr.clone(), value.clone());
        }
        // `immutable` is the runner's or the action's (st2's `_merge_param_meta_values`).
        if base.get("immutable") == Some(&Value::Bool(true)) {
            m.insert("immutable".into(), Value::Bool(true));
        }
        merged.insert(name.clone(), Value::Object(m));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_runner_has_its_metadata() {
        for (name, r) in RunnerType::ALL {
            assert_eq!(r.spec().name, name);
            assert_eq!(RunnerType::parse(name), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), json!(name));
        }
        assert_eq!(RunnerType::specs().len(), RunnerType::ALL.len());
        // StackStorm's local-shell-cmd runner parameters (local_runner/runner.yaml).
        let p = &RunnerType::LocalShellCmd.spec().runner_parameters;
        let names: Vec<&str> = p.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "cmd",
                "cwd",
                "env",
                "kwarg_op",
                "sudo",
                "sudo_password",
                "timeout"
            ]
        );
        assert_eq!(p["timeout"]["default"], json!(60));
        assert_eq!(p["sudo_password"]["secret"], json!(true));
        assert_eq!(
            RunnerType::LocalShellScript
                .spec()
                .output_schema
                .as_ref()
                .unwrap()["properties"]["return_code"],
            json!({"type": "integer"})
        );
    }

    #[test]
    fn the_inquirer_default_schema_is_st2s() {
        let params = &RunnerType::Inquirer.spec().runner_parameters;
        assert_eq!(
            params["schema"]["default"],
            crate::inquiry::default_schema()
        );
        assert_eq!(params["ttl"]["default"], json!(1440));
    }

    #[test]
    fn unsupported_st2_runners_are_named() {
        let e = RunnerType::parse("winrm-cmd").unwrap_err();
        assert!(e.contains("does not run yet"), "{e}");
        let e = RunnerType::parse("local-shel-cmd").unwrap_err();
        assert!(e.contains("unknown runner"), "{e}");
    }

    #[test]
    fn actions_override_only_what_st2_allows() {
        let merge = |declared: Value| {
            merge_parameters(
                RunnerType::LocalShellCmd,
                declared.as_object().unwrap(),
                "ops.x",
            )
        };
        let m = merge(
            json!({"cmd": {"required": true, "description": "d"}, "extra": {"type": "string"}}),
        )
        .unwrap();
        assert_eq!(
            m["cmd"],
            json!({"type": "string", "required": true, "description": "d"})
        );
        assert_eq!(m["extra"], json!({"type": "string"}));
        assert_eq!(m["sudo"]["default"], json!(false));
        // Same type restated: allowed (st2 compares values).
        assert!(merge(json!({"cmd": {"type": "string"}})).is_ok());
        let (field, msg) = merge(json!({"cmd": {"type": "integer"}})).unwrap_err();
        assert_eq!(field, "parameters.cmd.type");
        assert_eq!(
            msg,
            "The attribute \"type\" for the runner parameter \"cmd\" in action \"ops.x\" cannot be overridden."
        );
        assert!(merge(json!({"sudo": {"immutable": true, "default": true}})).is_ok());
    }
}
