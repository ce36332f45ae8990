//! Rules: `rules/*.yaml` in StackStorm's format — when a trigger fires and the criteria hold,
//! run an action with parameters rendered from the event.
//!
//! ```yaml
//! name: restart_on_critical
//! pack: ops                       # optional; must match the pack
//! description: Restart a service Alertmanager says is down.
//! enabled: true                   # default false, as StackStorm
//! type: standard                  # or backstop (only when no standard rule matched);
//!                                 # StackStorm's {ref: standard} form is accepted too
//! trigger:
//!   type: core.st2.webhook
//!   parameters: {url: alertmanager}
//! criteria:                       # see crate::criteria
//!   trigger.body.alerts[0].labels.severity: {type: equals, pattern: critical}
//! action:
//!   ref: ops.restart
//!   parameters:                   # Jinja over `trigger` and `st2kv.system`
//!     service: "{{ trigger.body.alerts[0].labels.service }}"
//! ```
//!
//! At load a rule is rejected, with file and field named, for: an unknown trigger type or
//! parameters its schema refuses, an unknown operator or bad pattern, an unknown action, a
//! parameter the action does not declare, or a template that does not parse.

use crate::action::{Action, ContentError, yaml_message};
use crate::criteria::Criteria;
use crate::reference::Ref;
use crate::template;
use crate::trigger::TriggerType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `standard` or `backstop` (StackStorm's rule types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    /// Matches on its criteria.
    Standard,
    /// Matches only when no standard rule matched the same trigger instance.
    Backstop,
}

/// The trigger a rule listens to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleTrigger {
    /// The trigger type's ref.
    #[serde(rename = "type")]
    pub kind: Ref,
    /// Its parameters (e.g. a webhook's `url`).
    pub parameters: Map<String, Value>,
}

/// The action a rule launches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleAction {
    /// The action's ref.
    #[serde(rename = "ref")]
    pub reference: Ref,
    /// Parameter templates.
    pub parameters: Map<String, Value>,
}

/// A validated rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// `<pack>.<name>`.
    #[serde(rename = "ref")]
    pub reference: Ref,
    /// Description.
    pub description: String,
    /// Whether the YAML enables it (the server may override this, see `squall rule enable`).
    pub enabled: bool,
    /// `standard` or `backstop`.
    #[serde(rename = "type")]
    pub kind: RuleType,
    /// The trigger.
    pub trigger: RuleTrigger,
    /// The criteria as written.
    pub criteria: Map<String, Value>,
    /// The action.
    pub action: RuleAction,
    /// The file it came from.
    pub metadata_file: PathBuf,
    #[serde(skip)]
    compiled: Criteria,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    pack: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: bool,
    #[serde(default, rename = "type")]
    kind: Option<Value>,
    trigger: RawTrigger,
    #[serde(default)]
    criteria: Map<String, Value>,
    action: RawAction,
    #[serde(default, rename = "ref")]
    _reference: Option<Value>,
    #[serde(default, rename = "uid")]
    _uid: Option<Value>,
    #[serde(default, rename = "id")]
    _id: Option<Value>,
    #[serde(default, rename = "tags")]
    _tags: Option<Value>,
    #[serde(default, rename = "context")]
    _context: Option<Value>,
    #[serde(default, rename = "metadata_file")]
    _metadata_file: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default, rename = "ref")]
    _reference: Option<Value>,
    #[serde(default, rename = "description")]
    _description: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default, rename = "description")]
    _description: Option<Value>,
}

/// What a rule may refer to: the loaded actions and trigger types.
pub struct Lookup<'a> {
    /// Finds an action by ref.
    pub action: &'a dyn Fn(&Ref) -> Option<&'a Action>,
    /// Finds a trigger type by ref.
    pub trigger_type: &'a dyn Fn(&Ref) -> Option<&'a TriggerType>,
}

fn at(field: &str, message: impl Into<String>) -> ContentError {
    ContentError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl Rule {
    /// Parses and validates one rule file of `pack`.
    ///
    /// # Errors
    /// [`ContentError`] naming the field (see the module docs for what is checked).
    pub fn parse(
        text: &str,
        pack: &str,
        file: &Path,
        lookup: &Lookup<'_>,
    ) -> Result<Rule, ContentError> {
        let raw: RawRule =
            serde_saphyr::from_str(text).map_err(|e| at("", yaml_message(&e, file)))?;
        let reference = crate::action::resource_ref(pack, &raw.name, raw.pack.as_deref())?;
        let kind = match raw.kind.as_ref().map(|k| k.get("ref").unwrap_or(k)) {
            None => RuleType::Standard,
            Some(Value::String(s)) if s == "standard" => RuleType::Standard,
            Some(Value::String(s)) if s == "backstop" => RuleType::Backstop,
            Some(other) => return Err(at("type", format!("{other} is not standard or backstop"))),
        };

        let trigger_ref: Ref = raw
            .trigger
            .kind
            .parse()
            .map_err(|e: crate::reference::RefError| at("trigger.type", e.to_string()))?;
        let trigger_type = (lookup.trigger_type)(&trigger_ref).ok_or_else(|| {
            at(
                "trigger.type",
                format!("unknown trigger type {trigger_ref}"),
            )
        })?;
        trigger_type
            .validate_parameters(&raw.trigger.parameters)
            .map_err(|e| at("trigger.parameters", e))?;
        if let Some(Err(e)) =
            crate::schedule::Schedule::of(&trigger_ref.to_string(), &raw.trigger.parameters)
        {
            return Err(at("trigger.parameters", e));
        }

        let compiled = Criteria::parse(&raw.criteria)
            .map_err(|e| at("criteria", e.strip_prefix("criteria ").unwrap_or(&e)))?;

        let action_ref: Ref = raw
            .action
            .reference
            .parse()
            .map_err(|e: crate::reference::RefError| at("action.ref", e.to_string()))?;
        let action = (lookup.action)(&action_ref)
            .ok_or_else(|| at("action.ref", format!("unknown action {action_ref}")))?;
        for (name, value) in &raw.action.parameters {
            if action.parameters.get(name).is_none() {
                return Err(at(
                    &format!("action.parameters.{name}"),
                    format!("action {action_ref} has no parameter {name:?}"),
                ));
            }
            template::check_value(value)
                .map_err(|e| at(&format!("action.parameters.{name}"), e))?;
        }
        Ok(Rule {
            reference,
            description: raw.description,
            enabled: raw.enabled,
            kind,
            trigger: RuleTrigger {
                kind: trigger_ref,
                parameters: raw.trigger.parameters,
            },
            criteria: raw.criteria,
            action: RuleAction {
                reference: action_ref,
                parameters: raw.action.parameters,
            },
            metadata_file: file.to_path_buf(),
            compiled,
        })
    }

    /// The compiled criteria.
    pub fn criteria(&self) -> &Criteria {
        &self.compiled
    }

    /// Whether this rule listens to `trigger` with `parameters` (a webhook rule only hears its
    /// own url).
    pub fn listens_to(&self, trigger: &Ref, parameters: &Map<String, Value>) -> bool {
        &self.trigger.kind == trigger && &self.trigger.parameters == parameters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::builtins;

    fn action() -> Action {
        crate::action::test_action(
            "name: restart\nrunner_type: wasm\nentry_point: a.wasm\nparameters:\n  service: {type: string}\n",
        )
    }

    fn parse(yaml: &str) -> Result<Rule, ContentError> {
        let a = action();
        let types = builtins();
        let find_action = |r: &Ref| (r == &a.reference).then_some(&a);
        let find_type = |r: &Ref| types.iter().find(|t| &t.reference == r);
        Rule::parse(
            yaml,
            "ops",
            Path::new("rules/r.yaml"),
            &Lookup {
                action: &find_action,
                trigger_type: &find_type,
            },
        )
    }

    const GOOD: &str = "name: r\nenabled: true\ntrigger: {type: core.st2.webhook, parameters: {url: am}}\n\
        criteria: {trigger.body.x: {type: equals, pattern: 1}}\n\
        action: {ref: ops.restart, parameters: {service: '{{ trigger.body.svc }}'}}\n";

    #[test]
    fn parses_a_rule() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r.reference.to_string(), "ops.r");
        assert!(r.enabled);
        assert_eq!(r.kind, RuleType::Standard);
        let mut params = Map::new();
        params.insert("url".into(), Value::String("am".into()));
        assert!(r.listens_to(&"core.st2.webhook".parse().unwrap(), &params));
        assert!(!r.listens_to(&"core.st2.webhook".parse().unwrap(), &Map::new()));
        let backstop = parse(&GOOD.replace("enabled: true", "type: {ref: backstop}")).unwrap();
        assert_eq!(backstop.kind, RuleType::Backstop);
        assert!(!backstop.enabled, "rules are disabled unless enabled: true");
    }

    #[test]
    fn errors_name_the_field() {
        for (from, to, field, want) in [
            (
                "core.st2.webhook",
                "core.st2.nope",
                "trigger.type",
                "unknown trigger type core.st2.nope",
            ),
            ("{url: am}", "{}", "trigger.parameters", "url"),
            (
                "type: equals",
                "type: equal",
                "criteria",
                "did you mean \"equals\"",
            ),
            (
                "ref: ops.restart",
                "ref: ops.nope",
                "action.ref",
                "unknown action ops.nope",
            ),
            (
                "service:",
                "servce:",
                "action.parameters.servce",
                "has no parameter",
            ),
            (
                "'{{ trigger.body.svc }}'",
                "'{{ trigger.body.svc '",
                "action.parameters.service",
                "syntax error",
            ),
            ("name: r", "name: r\nbogus: 1", "", "bogus"),
        ] {
            let yaml = GOOD.replace(from, to);
            let err = parse(&yaml).unwrap_err();
            assert_eq!(err.field, field, "{yaml}: {err:?}");
            assert!(err.message.contains(want), "{want:?} not in {err:?}");
        }
    }
}
