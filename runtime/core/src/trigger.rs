//! Trigger types and trigger instances.
//!
//! A trigger type is a kind of event with a payload schema and a parameters schema. Squall has
//! StackStorm's built-ins (refs and schemas from `st2common/constants/triggers.py`):
//!
//! | ref | parameters | payload |
//! |---|---|---|
//! | `core.st2.webhook` | `url` | `{headers, body}` of the POST |
//! | `core.st2.IntervalTimer` | `unit` (weeks…seconds), `delta`, `timezone` | `{executed_at, schedule}` |
//! | `core.st2.CronTimer` | `year`, `month`, `day`, `week`, `day_of_week`, `hour`, `minute`, `second`, `timezone` | `{executed_at, schedule}` |
//! | `core.st2.DateTimer` | `date`, `timezone` | `{executed_at, schedule}` |
//! | `core.st2.generic.actiontrigger` | — | `{execution_id, status, start_timestamp, action_name, action_ref, runner_ref, parameters, result}` |
//! | `core.st2.key_value_pair.create` / `.update` / `.delete` | — | `{object}`: the key as the API shows it (a secret's value is its ciphertext) |
//! | `core.st2.key_value_pair.value_change` | — | `{old_object, new_object}` |
//!
//! Packs add their own in `triggers/*.yaml` (StackStorm's `name`, `pack`, `description`,
//! `payload_schema`, `parameters_schema`). Schemas are JSON Schema draft 4; StackStorm's draft-3
//! style `required: true` inside a property is accepted and converted.

use crate::action::{ContentError, yaml_message};
use crate::reference::Ref;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `core.st2.webhook`.
pub const WEBHOOK: &str = "core.st2.webhook";
/// `core.st2.IntervalTimer`.
pub const INTERVAL_TIMER: &str = "core.st2.IntervalTimer";
/// `core.st2.CronTimer`.
pub const CRON_TIMER: &str = "core.st2.CronTimer";
/// `core.st2.DateTimer`.
pub const DATE_TIMER: &str = "core.st2.DateTimer";
/// `core.st2.generic.actiontrigger`: fired when an execution completes.
pub const ACTION_TRIGGER: &str = "core.st2.generic.actiontrigger";
/// Fired when an inquiry (`core.ask`) starts waiting for a response.
pub const INQUIRY_TRIGGER: &str = "core.st2.generic.inquiry";
/// Fired when a datastore key is created: `{object}`.
pub const KEY_CREATE_TRIGGER: &str = "core.st2.key_value_pair.create";
/// Fired when a datastore key is set again: `{object}`.
pub const KEY_UPDATE_TRIGGER: &str = "core.st2.key_value_pair.update";
/// Fired when a set changes a datastore key's value: `{old_object, new_object}`.
pub const KEY_VALUE_CHANGE_TRIGGER: &str = "core.st2.key_value_pair.value_change";
/// Fired when a datastore key is deleted: `{object}`.
pub const KEY_DELETE_TRIGGER: &str = "core.st2.key_value_pair.delete";

crate::id::uuid_id!(
    /// A trigger instance id (UUIDv7, time-sortable).
    TriggerInstanceId
);

/// A trigger type, with compiled schemas.
#[derive(Debug, Clone, Serialize)]
pub struct TriggerType {
    /// `<pack>.<name>`.
    #[serde(rename = "ref")]
    pub reference: Ref,
    /// Description.
    pub description: String,
    /// Schema of trigger instance payloads (`None`: anything).
    pub payload_schema: Option<Value>,
    /// Schema of the `trigger.parameters` a rule gives (`None`: no parameters).
    pub parameters_schema: Option<Value>,
    /// The file it came from (`None` for built-ins).
    pub metadata_file: Option<PathBuf>,
    #[serde(skip)]
    payload_validator: Option<Arc<jsonschema::Validator>>,
    #[serde(skip)]
    parameters_validator: Option<Arc<jsonschema::Validator>>,
}

/// Converts StackStorm's draft-3 `required: true` on properties into draft-4 `required` lists.
fn normalize(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            let mut required: Vec<Value> = map
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("properties", Value::Object(props)) => {
                        let mut new_props = Map::new();
                        for (name, prop) in props {
                            if prop.get("required") == Some(&Value::Bool(true)) {
                                required.push(Value::String(name.clone()));
                            }
                            let mut prop = normalize(prop);
                            if let Value::Object(p) = &mut prop
                                && p.get("required").is_some_and(Value::is_boolean)
                            {
                                p.remove("required");
                            }
                            new_props.insert(name.clone(), prop);
                        }
                        out.insert(k.clone(), Value::Object(new_props));
                    }
                    ("required", _) => {}
                    (_, v) => {
                        out.insert(k.clone(), normalize(v));
                    }
                }
            }
            if !required.is_empty() {
                out.insert("required".into(), Value::Array(required));
            } else if let Some(b @ Value::Bool(_)) = map.get("required") {
                out.insert("required".into(), b.clone());
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn compile(
    schema: &Option<Value>,
    what: &str,
) -> Result<Option<Arc<jsonschema::Validator>>, String> {
    schema
        .as_ref()
        .map(|s| {
            jsonschema::draft4::new(s)
                .map(Arc::new)
                .map_err(|e| format!("{what}: invalid schema: {e}"))
        })
        .transpose()
}

fn check(validator: &Option<Arc<jsonschema::Validator>>, value: &Value) -> Result<(), String> {
    let Some(v) = validator else { return Ok(()) };
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

impl TriggerType {
    /// A trigger type from its parts.
    ///
    /// # Errors
    /// A message when a schema does not compile.
    pub fn new(
        reference: Ref,
        description: impl Into<String>,
        payload_schema: Option<Value>,
        parameters_schema: Option<Value>,
        metadata_file: Option<PathBuf>,
    ) -> Result<TriggerType, String> {
        let payload_schema = payload_schema.as_ref().map(normalize);
        let parameters_schema = parameters_schema.as_ref().map(normalize);
        Ok(TriggerType {
            payload_validator: compile(&payload_schema, "payload_schema")?,
            parameters_validator: compile(&parameters_schema, "parameters_schema")?,
            reference,
            description: description.into(),
            payload_schema,
            parameters_schema,
            metadata_file,
        })
    }

    /// Checks a payload against `payload_schema`.
    ///
    /// # Errors
    /// Every schema problem, joined.
    pub fn validate_payload(&self, payload: &Value) -> Result<(), String> {
        check(&self.payload_validator, payload)
    }

    /// Checks a rule's trigger parameters against `parameters_schema`.
    ///
    /// # Errors
    /// Every schema problem, joined; parameters given to a type without a schema.
    pub fn validate_parameters(&self, parameters: &Map<String, Value>) -> Result<(), String> {
        if self.parameters_validator.is_none() && !parameters.is_empty() {
            return Err(format!(
                "trigger type {} takes no parameters",
                self.reference
            ));
        }
        check(
            &self.parameters_validator,
            &Value::Object(parameters.clone()),
        )
    }

    /// Parses `triggers/<name>.yaml` of `pack`.
    ///
    /// # Errors
    /// [`ContentError`] naming the field.
    pub fn parse(text: &str, pack: &str, file: &Path) -> Result<TriggerType, ContentError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            name: String,
            #[serde(default)]
            pack: Option<String>,
            #[serde(default)]
            description: String,
            #[serde(default)]
            payload_schema: Option<Value>,
            #[serde(default)]
            parameters_schema: Option<Value>,
            #[serde(default, rename = "tags")]
            _tags: Option<Value>,
            #[serde(default, rename = "metadata_file")]
            _metadata_file: Option<Value>,
        }
        let at = |field: &str, message: String| ContentError {
            field: field.to_string(),
            message,
        };
        let raw: Raw = serde_saphyr::from_str(text).map_err(|e| at("", yaml_message(&e, file)))?;
        let reference = crate::action::resource_ref(pack, &raw.name, raw.pack.as_deref())?;
        TriggerType::new(
            reference,
            raw.description,
            raw.payload_schema,
            raw.parameters_schema,
            Some(file.to_path_buf()),
        )
        .map_err(|m| {
            let (field, msg) = m.split_once(": ").unwrap_or(("", &m));
            at(field, msg.to_string())
        })
    }
}

/// StackStorm's built-in trigger types.
pub fn builtins() -> Vec<TriggerType> {
    let timer_payload = json!({
        "type": "object",
        "properties": {
            "executed_at": {"type": "string", "format": "date-time"},
            "schedule": {"type": "object"}
        }
    });
    let tz = json!({"type": "string"});
    let kv_object = json!({"type": "object", "properties": {"object": {}}});
    let cron_field = |min: u32, max: u32| json!({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": min, "maximum": max}]});
    let defs = [
        (
            WEBHOOK,
            "Trigger type for registering webhooks that can consume arbitrary payload.",
            Some(json!({
                "type": "object",
                "properties": {"headers": {"type": "object"}, "body": {}}
            })),
            Some(json!({
                "type": "object",
                "properties": {"url": {"type": "string", "minLength": 1}},
                "required": ["url"],
                "additionalProperties": false
            })),
        ),
        (
            INTERVAL_TIMER,
            "Triggers on specified intervals. e.g. every 30s, 1week etc.",
            Some(timer_payload.clone()),
            Some(json!({
                "type": "object",
                "properties": {
                    "timezone": tz,
                    "unit": {"enum": ["weeks", "days", "hours", "minutes", "seconds"]},
                    "delta": {"type": "integer", "minimum": 1}
                },
                "required": ["unit", "delta"],
                "additionalProperties": false
            })),
        ),
        (
            DATE_TIMER,
            "Triggers exactly once when the current time matches the specified time.",
            Some(timer_payload.clone()),
            Some(json!({
                "type": "object",
                "properties": {"timezone": tz, "date": {"type": "string"}},
                "required": ["date"],
                "additionalProperties": false
            })),
        ),
        (
            CRON_TIMER,
            "Triggers whenever current time matches the specified time constraints like a UNIX cron scheduler.",
            Some(timer_payload),
            Some(json!({
                "type": "object",
                "properties": {
                    "timezone": tz,
                    "year": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "month": cron_field(1, 12),
                    "day": cron_field(1, 31),
                    "week": cron_field(1, 53),
                    "day_of_week": cron_field(0, 6),
                    "hour": cron_field(0, 23),
                    "minute": cron_field(0, 59),
                    "second": cron_field(0, 59)
                },
                "additionalProperties": false
            })),
        ),
        (
            ACTION_TRIGGER,
            "Trigger encapsulating the completion of an action execution.",
            Some(json!({
                "type": "object",
                "properties": {
                    "execution_id": {"type": "string"},
                    "status": {"type": "string"},
                    "start_timestamp": {"type": "string"},
                    "action_name": {"type": "string"},
                    "action_ref": {"type": "string"},
                    "runner_ref": {"type": "string"},
                    "parameters": {"type": "object"},
                    "result": {}
                }
            })),
            None,
        ),
        (
            INQUIRY_TRIGGER,
            "Trigger indicating a new \"inquiry\" has entered \"pending\" status",
            Some(json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "ID of the new inquiry."},
                    "route": {"type": "string", "description": "An arbitrary value for allowing rules to route to proper notification channel."}
                },
                "additionalProperties": false
            })),
            None,
        ),
        (
            KEY_CREATE_TRIGGER,
            "Trigger encapsulating datastore item creation.",
            Some(kv_object.clone()),
            None,
        ),
        (
            KEY_UPDATE_TRIGGER,
            "Trigger encapsulating datastore set action.",
            Some(kv_object.clone()),
            None,
        ),
        (
            KEY_VALUE_CHANGE_TRIGGER,
            "Trigger encapsulating a change of datastore item value.",
            Some(json!({
                "type": "object",
                "properties": {"old_object": {}, "new_object": {}}
            })),
            None,
        ),
        (
            KEY_DELETE_TRIGGER,
            "Trigger encapsulating datastore item deletion.",
            Some(kv_object),
            None,
        ),
    ];
    defs.into_iter()
        .map(|(r, d, payload, params)| {
            TriggerType::new(
                r.parse().expect("built-in refs are valid"),
                d,
                payload,
                params,
                None,
            )
            .expect("built-in schemas compile")
        })
        .collect()
}

/// Where a trigger instance is in rule processing (StackStorm's trigger instance statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerInstanceStatus {
    /// Stored, not yet evaluated against rules.
    Pending,
    /// Being evaluated.
    Processing,
    /// Evaluated; every matching rule's enforcement is recorded.
    Processed,
    /// Evaluation itself failed (the reason is in the instance).
    ProcessingFailed,
}

impl TriggerInstanceStatus {
    /// The status's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerInstanceStatus::Pending => "pending",
            TriggerInstanceStatus::Processing => "processing",
            TriggerInstanceStatus::Processed => "processed",
            TriggerInstanceStatus::ProcessingFailed => "processing_failed",
        }
    }
}

impl std::str::FromStr for TriggerInstanceStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use TriggerInstanceStatus::*;
        [Pending, Processing, Processed, ProcessingFailed]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}; one of: pending, processing, processed, processing_failed"))
    }
}

/// One occurrence of a trigger, as StackStorm's trigger instance API object (`id`, `trigger`,
/// `payload`, `occurrence_time`, `status`) plus the trigger's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerInstance {
    /// Its id.
    pub id: TriggerInstanceId,
    /// The trigger type's ref, e.g. `core.st2.webhook`.
    pub trigger: Ref,
    /// The trigger's parameters, e.g. `{"url": "alertmanager"}` (empty for types without).
    #[serde(default)]
    pub trigger_parameters: Map<String, Value>,
    /// The event.
    pub payload: Value,
    /// When it occurred.
    pub occurrence_time: Timestamp,
    /// Rule processing status.
    pub status: TriggerInstanceStatus,
}

impl TriggerInstance {
    /// A new pending instance occurring now.
    pub fn new(
        trigger: Ref,
        trigger_parameters: Map<String, Value>,
        payload: Value,
    ) -> TriggerInstance {
        TriggerInstance {
            id: TriggerInstanceId::new(),
            trigger,
            trigger_parameters,
            payload,
            occurrence_time: Timestamp::now(),
            status: TriggerInstanceStatus::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(r: &str) -> TriggerType {
        builtins()
            .into_iter()
            .find(|t| t.reference.to_string() == r)
            .unwrap()
    }

    #[test]
    fn builtin_parameters_are_checked() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        assert!(
            find(WEBHOOK)
                .validate_parameters(&obj(json!({"url": "alertmanager"})))
                .is_ok()
        );
        assert!(
            find(WEBHOOK)
                .validate_parameters(&obj(json!({})))
                .unwrap_err()
                .contains("url")
        );
        assert!(
            find(INTERVAL_TIMER)
                .validate_parameters(&obj(json!({"unit": "seconds", "delta": 5})))
                .is_ok()
        );
        assert!(
            find(INTERVAL_TIMER)
                .validate_parameters(&obj(json!({"unit": "fortnights", "delta": 5})))
                .is_err()
        );
        assert!(
            find(CRON_TIMER)
                .validate_parameters(&obj(json!({"hour": 3, "minute": "*/5"})))
                .is_ok()
        );
        assert!(
            find(CRON_TIMER)
                .validate_parameters(&obj(json!({"hour": 25})))
                .is_err()
        );
        assert!(
            find(ACTION_TRIGGER)
                .validate_parameters(&obj(json!({"x": 1})))
                .unwrap_err()
                .contains("takes no parameters")
        );
    }

    #[test]
    fn pack_trigger_types_accept_draft3_required() {
        let t = TriggerType::parse(
            "name: push\ndescription: a push\npayload_schema:\n  type: object\n  properties:\n    repo: {type: string, required: true}\n",
            "github",
            Path::new("triggers/push.yaml"),
        )
        .unwrap();
        assert_eq!(t.reference.to_string(), "github.push");
        assert!(t.validate_payload(&json!({"repo": "x"})).is_ok());
        assert!(
            t.validate_payload(&json!({}))
                .unwrap_err()
                .contains("\"repo\" is a required property")
        );
        let err = TriggerType::parse(
            "name: x\npayload_schema: {type: bogus}\n",
            "p",
            Path::new("t.yaml"),
        )
        .unwrap_err();
        assert_eq!(err.field, "payload_schema");
    }
}
