//! Inquiries: an execution of an `inquirer` action (StackStorm's `core.ask`) that waits in
//! `pending` for a human response.
//!
//! Parameters, as StackStorm's inquirer runner: `schema` (JSON Schema the response must match;
//! default: `{"continue": boolean}` required), `roles`, `users` (who may respond, recorded),
//! `route` (free text for notification rules), `ttl` (minutes until it times out; default 1440;
//! fractions allowed). The result, as StackStorm's: `{schema, roles, users, route, ttl,
//! response}`. Property-level `required: true` (StackStorm's draft-4 habit) is honoured.

use crate::execution::Execution;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// StackStorm's default inquiry schema.
pub fn default_schema() -> Value {
    json!({
        "title": "response_data",
        "type": "object",
        "properties": {
            "continue": {
                "type": "boolean",
                "description": "Would you like to continue the workflow?",
                "required": true
            }
        }
    })
}

/// Default `ttl`, in minutes (StackStorm's 1440: one day).
pub const DEFAULT_TTL_MINUTES: f64 = 1440.0;

/// An inquiry as StackStorm's API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inquiry {
    /// The execution's id.
    pub id: String,
    /// The response schema.
    pub schema: Value,
    /// Roles that may respond.
    pub roles: Value,
    /// Users that may respond.
    pub users: Value,
    /// Notification route.
    pub route: String,
    /// Minutes before it times out.
    pub ttl: f64,
}

impl Inquiry {
    /// The inquiry an `inquirer` execution asks, from its parameters (defaults filled in).
    pub fn of(e: &Execution) -> Inquiry {
        let p = &e.parameters;
        Inquiry {
            id: e.id.to_string(),
            schema: p
                .get("schema")
                .cloned()
                .filter(|s| s.is_object())
                .unwrap_or_else(default_schema),
            roles: p.get("roles").cloned().unwrap_or(json!([])),
            users: p.get("users").cloned().unwrap_or(json!([])),
            route: p
                .get("route")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            ttl: p
                .get("ttl")
                .and_then(Value::as_f64)
                .unwrap_or(DEFAULT_TTL_MINUTES),
        }
    }

    /// StackStorm's inquiry result without a response yet: `{schema, roles, users, route, ttl}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "schema": self.schema,
            "roles": self.roles,
            "users": self.users,
            "route": self.route,
            "ttl": self.ttl,
        })
    }

    /// The result once answered (or timed out, with `response: null`).
    pub fn result(&self, response: Option<&Value>) -> Value {
        let mut v = self.to_json();
        let map = v.as_object_mut().expect("an object");
        map.remove("id");
        map.insert("response".into(), response.cloned().unwrap_or(Value::Null));
        v
    }

    /// When it times out: `requested_at + ttl`.
    pub fn expires_at(&self, requested_at: Timestamp) -> Timestamp {
        let ms = (self.ttl.max(0.0) * 60_000.0).min(i64::MAX as f64) as i64;
        requested_at
            .checked_add(jiff::SignedDuration::from_millis(ms))
            .unwrap_or(Timestamp::MAX)
    }

    /// Checks a response against the schema.
    ///
    /// # Errors
    /// Every schema violation, joined, e.g. `"continue" is a required property`.
    pub fn validate(&self, response: &Value) -> Result<(), String> {
        let schema = draft4_required(&self.schema);
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("the inquiry's schema is invalid: {e}"))?;
        let problems: Vec<String> = validator
            .iter_errors(response)
            .map(|e| {
                let at = e.instance_path().to_string();
                match at.trim_start_matches('/') {
                    "" => e.to_string(),
                    field => format!("{}: {e}", field.replace('/', ".")),
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Moves property-level `required: true` (JSON Schema draft 3, which StackStorm schemas use)
/// into the object's `required` list, recursively.
fn draft4_required(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out: Map<String, Value> = map.clone();
    if let Some(Value::Object(props)) = map.get("properties") {
        let mut required: Vec<Value> = match map.get("required") {
            Some(Value::Array(r)) => r.clone(),
            _ => Vec::new(),
        };
        let mut new_props = Map::new();
        for (name, prop) in props {
            let mut prop = draft4_required(prop);
            if let Some(p) = prop.as_object_mut()
                && p.remove("required") == Some(Value::Bool(true))
                && !required.contains(&json!(name))
            {
                required.push(json!(name));
            }
            new_props.insert(name.clone(), prop);
        }
        out.insert("properties".into(), Value::Object(new_props));
        if !required.is_empty() {
            out.insert("required".into(), Value::Array(required));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inquiry(params: Value) -> Inquiry {
        let a = crate::action::test_action("name: ask\nrunner_type: inquirer\n");
        let mut e = Execution::new(
            &a,
            params.as_object().unwrap().clone(),
            "u",
            Timestamp::now(),
        );
        e.parameters = params.as_object().unwrap().clone();
        Inquiry::of(&e)
    }

    #[test]
    fn responses_are_validated_against_the_schema() {
        let q = inquiry(json!({}));
        assert_eq!(q.ttl, 1440.0);
        for (response, ok) in [
            (json!({"continue": true}), true),
            (json!({"continue": "yes"}), false),
            (json!({}), false),
            (json!("no"), false),
        ] {
            assert_eq!(q.validate(&response).is_ok(), ok, "{response}");
        }
        assert!(q.validate(&json!({})).unwrap_err().contains("continue"));
        assert_eq!(
            q.validate(&json!({"continue": "no"})).unwrap_err(),
            "continue: \"no\" is not of type \"boolean\""
        );
        let q = inquiry(
            json!({"schema": {"type": "object", "properties": {"approver": {"type": "string"}}, "required": ["approver"]}, "ttl": 0.5, "route": "ops"}),
        );
        assert!(q.validate(&json!({"approver": "ann"})).is_ok());
        assert!(q.validate(&json!({"continue": true})).is_err());
        let t0: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        assert_eq!(q.expires_at(t0).to_string(), "2026-12-01T10:00:30Z");
        assert_eq!(
            q.result(Some(&json!({"approver": "ann"})))["response"]["approver"],
            "ann"
        );
    }
}
