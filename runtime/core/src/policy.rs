//! Policies: `policies/*.yaml` in StackStorm's format — concurrency and retry rules attached to
//! an action.
//!
//! ```yaml
//! name: http.concurrency          # unique within the pack; the ref is <pack>.<name>
//! pack: ops                       # optional; must match the pack
//! description: at most two at once
//! enabled: true                   # default true, as StackStorm
//! resource_ref: core.http         # the action (of any pack)
//! policy_type: action.concurrency # | action.concurrency.attr | action.retry
//! parameters:
//!   threshold: 2                  # required, >= 1
//!   action: delay                 # delay | cancel (default delay)
//! ```
//!
//! The three policy types and their parameters follow StackStorm's policy type metadata
//! (`st2actions/policies/meta/*.yaml`):
//!
//! | policy_type | parameters |
//! |---|---|
//! | `action.concurrency` | `threshold` (integer ≥ 1, required), `action` (`delay` \| `cancel`, default `delay`) |
//! | `action.concurrency.attr` | the above plus `attributes` (required, non-empty list of the action's parameter names) |
//! | `action.retry` | `retry_on` (`failure` \| `timeout`, required), `max_retry_count` (integer 1–5, default 2), `delay` (seconds 0–120, default 0) |
//!
//! At load a policy is rejected, with file and field named, for: an unknown `policy_type`
//! (with a did-you-mean), an unknown or ill-typed parameter, a `threshold` below 1, a
//! `resource_ref` that names no loaded action, or an attribute the action does not declare.
//! Policies load after every pack's actions, so `resource_ref` may name an action of any pack.

use crate::action::{Action, ContentError, yaml_message};
use crate::pack::PackSet;
use crate::reference::Ref;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The policy types Squall knows, by StackStorm's refs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyType {
    /// `action.concurrency`: at most `threshold` executions of the action at once.
    Concurrency,
    /// `action.concurrency.attr`: at most `threshold` at once per value of `attributes`.
    ConcurrencyAttr,
    /// `action.retry`: run a failed or timed-out execution again.
    Retry,
}

impl PolicyType {
    /// Every policy type.
    pub const ALL: [PolicyType; 3] = [
        PolicyType::Concurrency,
        PolicyType::ConcurrencyAttr,
        PolicyType::Retry,
    ];

    /// Its ref, e.g. `action.concurrency`.
    pub fn reference(self) -> &'static str {
        match self {
            PolicyType::Concurrency => "action.concurrency",
            PolicyType::ConcurrencyAttr => "action.concurrency.attr",
            PolicyType::Retry => "action.retry",
        }
    }

    /// Its name without the resource type, e.g. `concurrency.attr`.
    pub fn name(self) -> &'static str {
        &self.reference()["action.".len()..]
    }

    /// What it does.
    pub fn description(self) -> &'static str {
        match self {
            PolicyType::Concurrency => "Limits the concurrent executions for the action.",
            PolicyType::ConcurrencyAttr => {
                "Limits the concurrent executions for the action by attribute(s)."
            }
            PolicyType::Retry => "Retry (re-run) failed or timed out action.",
        }
    }

    /// The parameter names it takes.
    pub fn parameter_names(self) -> &'static [&'static str] {
        match self {
            PolicyType::Concurrency => &["threshold", "action"],
            PolicyType::ConcurrencyAttr => &["threshold", "action", "attributes"],
            PolicyType::Retry => &["retry_on", "max_retry_count", "delay"],
        }
    }

    /// Its parameters as a JSON Schema `properties` object, as StackStorm's
    /// `/api/v1/policytypes` shows them.
    pub fn parameters_schema(self) -> Value {
        let threshold = json!({"type": "integer", "description": "Concurrency threshold.", "required": true, "minimum": 1});
        let action = json!({
            "type": "string",
            "description": "Which action to perform on the execution once the concurrency threshold has been reached.",
            "default": "delay",
            "enum": ["delay", "cancel"],
        });
        match self {
            PolicyType::Concurrency => json!({"threshold": threshold, "action": action}),
            PolicyType::ConcurrencyAttr => json!({
                "threshold": threshold,
                "action": action,
                "attributes": {
                    "type": "array", "required": true, "uniqueItems": true, "minItems": 1,
                    "description": "Names of the action's parameters whose values partition the threshold.",
                    "items": {"type": "string", "minLength": 1},
                },
            }),
            PolicyType::Retry => json!({
                "retry_on": {"type": "string", "description": "Condition to retry on.", "required": true, "enum": ["failure", "timeout"]},
                "max_retry_count": {"type": "integer", "description": "Maximum number of times to retry before giving up.", "minimum": 1, "maximum": 5, "default": 2},
                "delay": {"type": "number", "description": "Number of seconds to wait before retrying the execution.", "minimum": 0, "maximum": 120, "default": 0},
            }),
        }
    }

    /// The type with this ref.
    ///
    /// # Errors
    /// `unknown policy type "action.concurency" (did you mean "action.concurrency"?); known:
    /// ...`.
    pub fn parse(name: &str) -> Result<PolicyType, String> {
        if let Some(t) = PolicyType::ALL.into_iter().find(|t| t.reference() == name) {
            return Ok(t);
        }
        let known: Vec<&str> = PolicyType::ALL.iter().map(|t| t.reference()).collect();
        Err(format!(
            "unknown policy type {name:?}{}; known: {}",
            did_you_mean(name, &known),
            known.join(", ")
        ))
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reference())
    }
}

impl Serialize for PolicyType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.reference())
    }
}

/// What a concurrency policy does with an execution over its threshold (its `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdAction {
    /// Recorded `delayed`, and requested again when a slot frees (the default).
    Delay,
    /// Recorded `canceled`, with the policy named in `result.error`.
    Cancel,
}

/// When a retry policy applies (its `retry_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryOn {
    /// The execution ended `failed`.
    Failure,
    /// The execution ended `timeout`.
    Timeout,
}

/// The parameters of an `action.concurrency` or `action.concurrency.attr` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    /// How many executions may be scheduled or running at once (≥ 1).
    pub threshold: u32,
    /// What happens to one over the threshold.
    pub action: ThresholdAction,
    /// Parameter names whose values partition the count (`action.concurrency.attr`); empty for
    /// `action.concurrency`.
    pub attributes: Vec<String>,
}

/// The parameters of an `action.retry` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Which final status is retried.
    pub retry_on: RetryOn,
    /// How many retries at most (1–5, default 2): the original plus this many executions.
    pub max_retry_count: u32,
    /// How long after the failure the retry starts, in milliseconds (the YAML's `delay` is in
    /// seconds, default 0).
    pub delay_ms: u64,
}

/// What a policy enforces, parsed from its `parameters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyKind {
    /// `action.concurrency` / `action.concurrency.attr`.
    Concurrency(Concurrency),
    /// `action.retry`.
    Retry(Retry),
}

/// A validated policy. Serializes as StackStorm's policy API object minus `id`/`uid` (the API
/// adds those).
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// `<pack>.<name>`.
    #[serde(rename = "ref")]
    pub reference: Ref,
    /// Description.
    pub description: String,
    /// Whether it is applied (default true).
    pub enabled: bool,
    /// The action it applies to.
    pub resource_ref: Ref,
    /// Its type.
    pub policy_type: PolicyType,
    /// Its parameters as written, with defaults filled in.
    pub parameters: Map<String, Value>,
    /// The file it came from.
    pub metadata_file: PathBuf,
    #[serde(skip)]
    kind: PolicyKind,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    #[serde(default)]
    pack: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    resource_ref: String,
    policy_type: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    // Accepted for compatibility with StackStorm exports; Squall derives them.
    #[serde(default, rename = "ref")]
    _reference: Option<Value>,
    #[serde(default, rename = "uid")]
    _uid: Option<Value>,
    #[serde(default, rename = "id")]
    _id: Option<Value>,
    #[serde(default, rename = "metadata_file")]
    _metadata_file: Option<Value>,
}

fn yes() -> bool {
    true
}

fn at(field: &str, message: impl Into<String>) -> ContentError {
    ContentError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// ` (did you mean "x"?)` for the known word closest to `word` (edit distance ≤ 3), or `""`.
fn did_you_mean(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default()
}

/// An integer parameter in `min..=max`, or `default` when absent (`None`: required).
fn integer(
    params: &Map<String, Value>,
    name: &str,
    min: u64,
    max: u64,
    default: Option<u64>,
) -> Result<u64, ContentError> {
    let field = format!("parameters.{name}");
    match params.get(name) {
        None | Some(Value::Null) => default.ok_or_else(|| at(&field, "missing: it is required")),
        Some(v) => v
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                let range = if max >= u64::from(u32::MAX) {
                    format!(">= {min}")
                } else {
                    format!("from {min} to {max}")
                };
                at(&field, format!("must be an integer {range}, got {v}"))
            }),
    }
}

/// A string parameter that must be one of `choices`, or `default` when absent.
fn choice<'a>(
    params: &Map<String, Value>,
    name: &str,
    choices: &[&'a str],
    default: Option<&'a str>,
) -> Result<&'a str, ContentError> {
    let field = format!("parameters.{name}");
    let quoted: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
    match params.get(name) {
        None | Some(Value::Null) => default.ok_or_else(|| {
            at(
                &field,
                format!("missing: it is required (one of {})", quoted.join(", ")),
            )
        }),
        Some(Value::String(s)) => choices
            .iter()
            .find(|c| **c == s.as_str())
            .copied()
            .ok_or_else(|| {
                at(
                    &field,
                    format!(
                        "{s:?} is not one of {}{}",
                        quoted.join(", "),
                        did_you_mean(s, choices)
                    ),
                )
            }),
        Some(v) => Err(at(
            &field,
            format!("must be one of {}, got {v}", quoted.join(", ")),
        )),
    }
}

fn concurrency(
    kind: PolicyType,
    params: &Map<String, Value>,
    action: &Action,
) -> Result<Concurrency, ContentError> {
    let threshold = integer(params, "threshold", 1, u64::from(u32::MAX), None)? as u32;
    let action_name = choice(params, "action", &["delay", "cancel"], Some("delay"))?;
    let mut attributes = Vec::new();
    if kind == PolicyType::ConcurrencyAttr {
        let field = "parameters.attributes";
        let list = match params.get("attributes") {
            None | Some(Value::Null) => {
                return Err(at(
                    field,
                    "missing: action.concurrency.attr needs the parameter names to count by",
                ));
            }
            Some(Value::Array(list)) if !list.is_empty() => list,
            Some(v) => {
                return Err(at(
                    field,
                    format!("must be a non-empty list of parameter names, got {v}"),
                ));
            }
        };
        let declared: Vec<&str> = action
            .parameters
            .specs()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let mut seen = BTreeSet::new();
        for (i, item) in list.iter().enumerate() {
            let Some(name) = item.as_str().filter(|s| !s.is_empty()) else {
                return Err(at(
                    &format!("{field}[{i}]"),
                    format!("must be a parameter name, got {item}"),
                ));
            };
            if action.parameters.get(name).is_none() {
                return Err(at(
                    &format!("{field}[{i}]"),
                    format!(
                        "action {} has no parameter {name:?}{}",
                        action.reference,
                        did_you_mean(name, &declared)
                    ),
                ));
            }
            if !seen.insert(name) {
                return Err(at(
                    &format!("{field}[{i}]"),
                    format!("{name:?} is listed twice"),
                ));
            }
            attributes.push(name.to_string());
        }
    }
    Ok(Concurrency {
        threshold,
        action: if action_name == "cancel" {
            ThresholdAction::Cancel
        } else {
            ThresholdAction::Delay
        },
        attributes,
    })
}

fn retry(params: &Map<String, Value>) -> Result<Retry, ContentError> {
    let retry_on = match choice(params, "retry_on", &["failure", "timeout"], None)? {
        "timeout" => RetryOn::Timeout,
        _ => RetryOn::Failure,
    };
    let max_retry_count = integer(params, "max_retry_count", 1, 5, Some(2))? as u32;
    let delay_ms = match params.get("delay") {
        None | Some(Value::Null) => 0,
        Some(v) => {
            let secs = v
                .as_f64()
                .filter(|s| (0.0..=120.0).contains(s))
                .ok_or_else(|| {
                    at(
                        "parameters.delay",
                        format!("must be a number of seconds from 0 to 120, got {v}"),
                    )
                })?;
            (secs * 1000.0).round() as u64
        }
    };
    Ok(Retry {
        retry_on,
        max_retry_count,
        delay_ms,
    })
}

impl Policy {
    /// Parses and validates one policy file of `pack`; `action` finds the loaded actions (of
    /// every pack) that `resource_ref` may name.
    ///
    /// # Errors
    /// [`ContentError`] naming the field (see the module docs for what is checked).
    pub fn parse<'a>(
        text: &str,
        pack: &str,
        file: &Path,
        action: &dyn Fn(&Ref) -> Option<&'a Action>,
    ) -> Result<Policy, ContentError> {
        let raw: RawPolicy =
            serde_saphyr::from_str(text).map_err(|e| at("", yaml_message(&e, file)))?;
        let reference = crate::action::resource_ref(pack, &raw.name, raw.pack.as_deref())?;
        let policy_type = PolicyType::parse(&raw.policy_type).map_err(|m| at("policy_type", m))?;
        let known = policy_type.parameter_names();
        for name in raw.parameters.keys() {
            if !known.contains(&name.as_str()) {
                return Err(at(
                    &format!("parameters.{name}"),
                    format!(
                        "unknown parameter {name:?} for {policy_type}{}; known: {}",
                        did_you_mean(name, known),
                        known.join(", ")
                    ),
                ));
            }
        }
        let resource_ref: Ref = raw
            .resource_ref
            .parse()
            .map_err(|e: crate::reference::RefError| at("resource_ref", e.to_string()))?;
        let target = action(&resource_ref)
            .ok_or_else(|| at("resource_ref", format!("unknown action {resource_ref}")))?;
        let kind = match policy_type {
            PolicyType::Concurrency | PolicyType::ConcurrencyAttr => {
                PolicyKind::Concurrency(concurrency(policy_type, &raw.parameters, target)?)
            }
            PolicyType::Retry => PolicyKind::Retry(retry(&raw.parameters)?),
        };
        let mut parameters = raw.parameters;
        match &kind {
            PolicyKind::Concurrency(c) => {
                parameters
                    .entry("action")
                    .or_insert_with(|| json!(c.action));
            }
            PolicyKind::Retry(r) => {
                parameters
                    .entry("max_retry_count")
                    .or_insert_with(|| json!(r.max_retry_count));
                parameters.entry("delay").or_insert_with(|| json!(0));
            }
        }
        Ok(Policy {
            reference,
            description: raw.description,
            enabled: raw.enabled,
            resource_ref,
            policy_type,
            parameters,
            metadata_file: file.to_path_buf(),
            kind,
        })
    }

    /// What it enforces.
    pub fn kind(&self) -> &PolicyKind {
        &self.kind
    }

    /// Its concurrency parameters, if it is a concurrency policy.
    pub fn concurrency(&self) -> Option<&Concurrency> {
        match &self.kind {
            PolicyKind::Concurrency(c) => Some(c),
            PolicyKind::Retry(_) => None,
        }
    }

    /// Its retry parameters, if it is a retry policy.
    pub fn retry(&self) -> Option<&Retry> {
        match &self.kind {
            PolicyKind::Retry(r) => Some(r),
            PolicyKind::Concurrency(_) => None,
        }
    }
}

impl PackSet {
    /// Loads `<dir>/policies/*.yaml` of `pack` against `snapshot` (every pack's actions).
    pub(crate) fn load_policies(&mut self, snapshot: &PackSet, pack: &str, dir: &Path) {
        let find_action = |r: &Ref| snapshot.action(r);
        let policies = self.load_items(
            dir,
            "policies",
            |text, file| Policy::parse(text, pack, file, &find_action),
            |p: &Policy| p.reference.name().to_string(),
        );
        if let Some(p) = self.packs.get_mut(pack) {
            p.policies = policies.into_iter().map(|(k, (p, _))| (k, p)).collect();
        }
    }

    /// The policy with this ref, if loaded.
    pub fn policy(&self, reference: &Ref) -> Option<&Policy> {
        self.packs
            .get(reference.pack())?
            .policies
            .get(reference.name())
    }

    /// Every loaded policy, ordered by ref.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.packs.values().flat_map(|p| p.policies.values())
    }

    /// The enabled policies applying to the action `action`, ordered by ref.
    pub fn policies_for<'a>(&'a self, action: &'a Ref) -> impl Iterator<Item = &'a Policy> + 'a {
        self.policies()
            .filter(move |p| p.enabled && &p.resource_ref == action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Action {
        crate::action::test_action(
            "name: http\nrunner_type: wasm\nentry_point: a.wasm\nparameters:\n  url: {type: string}\n  method: {type: string}\n",
        )
    }

    fn parse(yaml: &str) -> Result<Policy, ContentError> {
        let action = http();
        let find = |r: &Ref| (r.to_string() == "ops.http").then_some(&action);
        Policy::parse(yaml, "ops", Path::new("policies/p.yaml"), &find)
    }

    const HEAD: &str = "name: p\nresource_ref: ops.http\n";

    #[test]
    fn bad_policies_name_the_field() {
        for (body, field, want) in [
            (
                "policy_type: action.concurency\nparameters: {threshold: 1}",
                "policy_type",
                "unknown policy type \"action.concurency\" (did you mean \"action.concurrency\"?)",
            ),
            (
                "policy_type: action.retyr\nparameters: {retry_on: failure}",
                "policy_type",
                "did you mean \"action.retry\"",
            ),
            (
                "policy_type: action.concurrency\nparameters: {threshold: 0}",
                "parameters.threshold",
                "must be an integer >= 1, got 0",
            ),
            (
                "policy_type: action.concurrency\nparameters: {threshold: -2}",
                "parameters.threshold",
                "got -2",
            ),
            (
                "policy_type: action.concurrency\nparameters: {threshold: \"2\"}",
                "parameters.threshold",
                "must be an integer",
            ),
            (
                "policy_type: action.concurrency\nparameters: {}",
                "parameters.threshold",
                "missing",
            ),
            (
                "policy_type: action.concurrency\nparameters: {treshold: 2}",
                "parameters.treshold",
                "unknown parameter \"treshold\" for action.concurrency (did you mean \"threshold\"?)",
            ),
            (
                "policy_type: action.concurrency\nparameters: {threshold: 2, attributes: [url]}",
                "parameters.attributes",
                "unknown parameter",
            ),
            (
                "policy_type: action.concurrency\nparameters: {threshold: 2, action: dely}",
                "parameters.action",
                "\"dely\" is not one of \"delay\", \"cancel\" (did you mean \"delay\"?)",
            ),
            (
                "policy_type: action.concurrency.attr\nparameters: {threshold: 2}",
                "parameters.attributes",
                "missing",
            ),
            (
                "policy_type: action.concurrency.attr\nparameters: {threshold: 2, attributes: []}",
                "parameters.attributes",
                "non-empty list",
            ),
            (
                "policy_type: action.concurrency.attr\nparameters: {threshold: 2, attributes: [urll]}",
                "parameters.attributes[0]",
                "action ops.http has no parameter \"urll\" (did you mean \"url\"?)",
            ),
            (
                "policy_type: action.concurrency.attr\nparameters: {threshold: 2, attributes: [url, url]}",
                "parameters.attributes[1]",
                "listed twice",
            ),
            (
                "policy_type: action.retry\nparameters: {}",
                "parameters.retry_on",
                "missing",
            ),
            (
                "policy_type: action.retry\nparameters: {retry_on: error}",
                "parameters.retry_on",
                "not one of \"failure\", \"timeout\"",
            ),
            (
                "policy_type: action.retry\nparameters: {retry_on: failure, max_retry_count: 9}",
                "parameters.max_retry_count",
                "from 1 to 5, got 9",
            ),
            (
                "policy_type: action.retry\nparameters: {retry_on: failure, delay: -1}",
                "parameters.delay",
                "seconds from 0 to 120",
            ),
            (
                "policy_type: action.retry\nparameters: {retry_on: failure, threshold: 1}",
                "parameters.threshold",
                "known: retry_on, max_retry_count, delay",
            ),
        ] {
            let err = parse(&format!("{HEAD}{body}\n")).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err:?}");
            assert!(err.message.contains(want), "{body}: {err:?}");
        }
    }

    #[test]
    fn resource_ref_must_name_a_loaded_action() {
        for (resource, want) in [
            ("ops.nope", "unknown action ops.nope"),
            ("nodot", "not of the form <pack>.<name>"),
        ] {
            let err = parse(&format!(
                "name: p\nresource_ref: {resource}\npolicy_type: action.concurrency\nparameters: {{threshold: 1}}\n"
            ))
            .unwrap_err();
            assert_eq!(err.field, "resource_ref");
            assert!(err.message.contains(want), "{err:?}");
        }
    }

    #[test]
    fn top_level_fields_are_checked() {
        for (yaml, field, want) in [
            ("name: p\npolicy_type: action.retry\n", "", "resource_ref"),
            (
                "name: p\nresource_ref: ops.http\npolicy_type: action.retry\nbogus: 1\n",
                "",
                "bogus",
            ),
            (
                "name: p\npack: other\nresource_ref: ops.http\npolicy_type: action.retry\n",
                "pack",
                "does not match",
            ),
            (
                "name: bad name\nresource_ref: ops.http\npolicy_type: action.retry\n",
                "name",
                "must be non-empty",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert_eq!(err.field, field, "{yaml}: {err:?}");
            assert!(err.message.contains(want), "{yaml}: {err:?}");
        }
    }

    #[test]
    fn good_policies_parse_with_defaults() {
        let p = parse(&format!(
            "{HEAD}description: two\npolicy_type: action.concurrency\nparameters: {{threshold: 2}}\n"
        ))
        .unwrap();
        assert_eq!(p.reference.to_string(), "ops.p");
        assert!(p.enabled, "policies are enabled by default");
        assert_eq!(
            p.concurrency(),
            Some(&Concurrency {
                threshold: 2,
                action: ThresholdAction::Delay,
                attributes: vec![]
            })
        );
        assert_eq!(p.parameters["action"], "delay");

        let p = parse(&format!(
            "{HEAD}enabled: false\npolicy_type: action.concurrency.attr\nparameters: {{threshold: 1, action: cancel, attributes: [url, method]}}\n"
        ))
        .unwrap();
        assert!(!p.enabled);
        let c = p.concurrency().unwrap();
        assert_eq!(c.action, ThresholdAction::Cancel);
        assert_eq!(c.attributes, ["url", "method"]);

        let p = parse(&format!(
            "{HEAD}policy_type: action.retry\nparameters: {{retry_on: timeout, delay: 1.5}}\n"
        ))
        .unwrap();
        assert_eq!(
            p.retry(),
            Some(&Retry {
                retry_on: RetryOn::Timeout,
                max_retry_count: 2,
                delay_ms: 1500
            })
        );
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["ref"], "ops.p");
        assert_eq!(v["policy_type"], "action.retry");
        assert_eq!(v["resource_ref"], "ops.http");
        assert_eq!(v["parameters"]["max_retry_count"], 2);
    }

    #[test]
    fn packs_load_policies_against_every_packs_actions_and_report_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        // `aaa` sorts before `zzz`: its policy names an action loaded after it.
        write("aaa/pack.yaml", "name: aaa\n");
        write(
            "aaa/policies/good.yaml",
            "name: good\nresource_ref: zzz.act\npolicy_type: action.retry\nparameters: {retry_on: failure}\n",
        );
        write(
            "aaa/policies/bad.yaml",
            "name: bad\nresource_ref: zzz.act\npolicy_type: action.concurrency\nparameters: {threshold: 0}\n",
        );
        write("zzz/pack.yaml", "name: zzz\n");
        write(
            "zzz/actions/act.yaml",
            "name: act\nrunner_type: wasm\nentry_point: act.wasm\n",
        );
        write("zzz/actions/act.wasm", "\0asm");
        let set = PackSet::load(dir.path());
        let refs: Vec<String> = set.policies().map(|p| p.reference.to_string()).collect();
        assert_eq!(refs, ["aaa.good"]);
        let act: Ref = "zzz.act".parse().unwrap();
        assert_eq!(set.policies_for(&act).count(), 1);
        assert!(set.policy(&"aaa.good".parse().unwrap()).is_some());
        let messages: Vec<String> = set.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].ends_with(
                "aaa/policies/bad.yaml: parameters.threshold: must be an integer >= 1, got 0"
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn policy_types_round_trip_their_refs() {
        for t in PolicyType::ALL {
            assert_eq!(PolicyType::parse(t.reference()), Ok(t));
            assert!(t.reference().ends_with(t.name()));
            let schema = t.parameters_schema();
            for name in t.parameter_names() {
                assert!(schema.get(name).is_some(), "{t}: {name}");
            }
        }
    }
}
