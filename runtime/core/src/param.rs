//! Action parameters: JSON Schema properties with StackStorm's extras.
//!
//! In an action's metadata YAML, `parameters` maps each name to a JSON Schema (draft 4, as
//! StackStorm) property plus these extras, all optional:
//!
//! | key | meaning |
//! |---|---|
//! | `required: true` | the parameter must be given (or have a `default`) |
//! | `default: <value>` | filled in when not given |
//! | `immutable: true` | only the `default` is used; giving a value is rejected with StackStorm's message `Override of immutable parameter(s) ['x'] is unsupported.` An immutable parameter needs a default. |
//! | `secret: true` | the value is shown as `********` in output and API |
//! | `position: <n>` | order of the parameter for positional use (unique, non-negative) |
//!
//! Unknown parameters are rejected, as StackStorm's `Additional properties are not allowed`.
//! Validation and defaults use the `jsonschema` crate.

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The text StackStorm shows instead of a secret value.
pub const MASKED: &str = "********";

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSpec {
    /// The parameter's name.
    pub name: String,
    /// JSON Schema `type`, when it is a single type name.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Human description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Must be given.
    pub required: bool,
    /// Cannot be overridden.
    pub immutable: bool,
    /// Masked in output.
    pub secret: bool,
    /// Positional order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The JSON Schema property as declared (without the extras).
    #[serde(skip)]
    pub schema: Map<String, Value>,
}

/// The parameters of one action, with a compiled validator.
#[derive(Debug, Clone)]
pub struct Parameters {
    specs: BTreeMap<String, ParamSpec>,
    schema: Value,
    validator: std::sync::Arc<jsonschema::Validator>,
}

/// Why given parameters were rejected (HTTP 400 in the API; exit code 2 in the CLI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A value for an immutable parameter was given (StackStorm's wording).
    #[error("Override of immutable parameter(s) {0} is unsupported.")]
    Immutable(String),
    /// Schema validation failed; one message per problem.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A command-line value could not be converted to the parameter's type.
    #[error("parameter {name:?}: cannot convert {value:?} to {kind}: {reason}")]
    Cast {
        /// The parameter.
        name: String,
        /// The text given.
        value: String,
        /// The declared type.
        kind: String,
        /// Why not.
        reason: String,
    },
}

const EXTRAS: [&str; 4] = ["required", "immutable", "secret", "position"];

impl Parameters {
    /// Builds the parameters of an action from its YAML `parameters` mapping.
    ///
    /// # Errors
    /// A message naming the parameter and field: a non-mapping entry, a non-boolean
    /// `required`/`immutable`/`secret`, a bad or duplicate `position` (StackStorm's
    /// `Parameters a and b have same position 0. Position values have to be unique.`), an
    /// immutable parameter without a default (`Immutable param x requires a default value.`), a
    /// default that fails its own schema, or a schema the validator rejects.
    pub fn from_yaml(declared: &Map<String, Value>) -> Result<Parameters, String> {
        let mut specs = BTreeMap::new();
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut positions: BTreeMap<u64, String> = BTreeMap::new();
        for (name, decl) in declared {
            crate::reference::validate_name(name).map_err(|e| format!("parameters: {e}"))?;
            let Value::Object(decl) = decl else {
                return Err(format!("parameters.{name}: must be a mapping"));
            };
            let flag = |key: &str| match decl.get(key) {
                None => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(format!(
                    "parameters.{name}.{key}: must be true or false, not {other}"
                )),
            };
            let spec_required = flag("required")?;
            let immutable = flag("immutable")?;
            let secret = flag("secret")?;
            let position = match decl.get("position") {
                None => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    format!("parameters.{name}.position: must be a non-negative integer, not {v}")
                })?),
            };
            if let Some(pos) = position
                && let Some(other) = positions.insert(pos, name.clone())
            {
                return Err(format!(
                    "Parameters {other} and {name} have same position {pos}. \
                     Position values have to be unique."
                ));
            }
            // `default: null` is no default (StackStorm fills such a parameter with None).
            let default = decl.get("default").filter(|v| !v.is_null()).cloned();
            if immutable && default.is_none() {
                return Err(format!("Immutable param {name} requires a default value."));
            }
            let schema: Map<String, Value> = decl
                .iter()
                .filter(|(k, _)| !EXTRAS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let property = Value::Object(schema.clone());
            let check = jsonschema::draft4::new(&property)
                .map_err(|e| format!("parameters.{name}: invalid schema: {e}"))?;
            if let Some(default) = &default
                && !is_template(default)
                && let Some(err) = check.iter_errors(default).next()
            {
                return Err(format!(
                    "parameters.{name}.default: {} does not fit the parameter's schema: {}",
                    default,
                    err.masked()
                ));
            }
            if spec_required && default.is_none() {
                required.push(Value::String(name.clone()));
            }
            properties.insert(name.clone(), Value::Object(schema.clone()));
            specs.insert(
                name.clone(),
                ParamSpec {
                    name: name.clone(),
                    kind: schema
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    description: schema
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    default,
                    required: spec_required,
                    immutable,
                    secret,
                    position,
                    schema,
                },
            );
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        });
        if !required.is_empty() {
            // Draft 4 wants a non-empty `required`.
            schema["required"] = Value::Array(required);
        }
        let validator = jsonschema::draft4::new(&schema)
            .map_err(|e| format!("parameters: invalid schema: {e}"))?;
        Ok(Parameters {
            specs,
            schema,
            validator: std::sync::Arc::new(validator),
        })
    }

    /// The declared parameters: positional ones first (by position), then by name.
    pub fn specs(&self) -> Vec<&ParamSpec> {
        let mut v: Vec<&ParamSpec> = self.specs.values().collect();
        v.sort_by_key(|s| (s.position.is_none(), s.position, s.name.clone()));
        v
    }

    /// One parameter by name.
    pub fn get(&self, name: &str) -> Option<&ParamSpec> {
        self.specs.get(name)
    }

    /// The JSON Schema (draft 4) object the parameters are validated against.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Checks `given` and returns the parameters the action runs with: given values plus
    /// defaults (immutable parameters always take their default). Defaults that are Jinja
    /// templates are rendered, as StackStorm does, against the other parameters' values and
    /// the datastore (`st2kv.system`, when `keys` is given), then converted to the parameter's
    /// type.
    ///
    /// # Errors
    /// [`ParamError::Immutable`] when an immutable parameter is given, [`ParamError::Invalid`]
    /// with every schema problem (missing required, wrong type, unknown parameter, a default
    /// that does not render, ...). Values of secret parameters never appear in messages.
    pub fn resolve_with(
        &self,
        given: &Map<String, Value>,
        keys: Option<crate::template::KeyLookup>,
    ) -> Result<Map<String, Value>, ParamError> {
        let mut ctx = crate::template::Context::trigger(&Value::Null);
        if let Some(keys) = keys {
            ctx = ctx.with_keys(keys);
        }
        self.resolve_in(given, ctx)
    }

    /// [`Parameters::resolve_with`] rendering templated defaults against `base` (which carries
    /// the datastore and, for the runner, StackStorm's `config_context`: the pack's config) plus
    /// the other parameters' values.
    ///
    /// # Errors
    /// As [`Parameters::resolve_with`].
    pub fn resolve_in(
        &self,
        given: &Map<String, Value>,
        base: crate::template::Context,
    ) -> Result<Map<String, Value>, ParamError> {
        let mut params = self.with_defaults(given)?;
        let templated: Vec<String> = self
            .specs
            .values()
            .filter(|s| !given.contains_key(&s.name) && s.default.as_ref().is_some_and(is_template))
            .map(|s| s.name.clone())
            .collect();
        if !templated.is_empty() {
            let mut ctx = base;
            for (name, value) in &params {
                if !templated.contains(name) {
                    ctx = ctx.with(name, value.clone());
                }
            }
            for name in templated {
                let text = params[&name].as_str().unwrap_or_default().to_string();
                let rendered = crate::template::render_typed(&text, &ctx).map_err(|e| {
                    ParamError::Invalid(vec![format!(
                        "parameter {name:?}: its default does not render: {e}"
                    )])
                })?;
                let coerced = self.coerce(&name, rendered);
                params.insert(name, coerced);
            }
        }
        self.validate(params)
    }

    /// Whether a templated default that resolving `given` renders (of a parameter not in
    /// `given`) mentions `name` (e.g. `config_context`), so a caller builds that part of the
    /// context only when it may be used.
    pub fn defaults_mention(&self, name: &str, given: &Map<String, Value>) -> bool {
        self.specs.values().any(|s| {
            !given.contains_key(&s.name)
                && s.default
                    .as_ref()
                    .and_then(Value::as_str)
                    .is_some_and(|d| crate::template::is_template(d) && d.contains(name))
        })
    }

    /// [`Parameters::resolve_with`] without the datastore.
    ///
    /// # Errors
    /// As [`Parameters::resolve_with`].
    pub fn resolve(&self, given: &Map<String, Value>) -> Result<Map<String, Value>, ParamError> {
        self.resolve_with(given, None)
    }

    fn with_defaults(&self, given: &Map<String, Value>) -> Result<Map<String, Value>, ParamError> {
        let overridden: Vec<&str> = given
            .keys()
            .filter(|k| self.specs.get(*k).is_some_and(|s| s.immutable))
            .map(String::as_str)
            .collect();
        if !overridden.is_empty() {
            let list: Vec<String> = overridden.iter().map(|n| format!("'{n}'")).collect();
            return Err(ParamError::Immutable(format!("[{}]", list.join(", "))));
        }
        let mut params = given.clone();
        for spec in self.specs.values() {
            if let Some(default) = &spec.default
                && !params.contains_key(&spec.name)
            {
                params.insert(spec.name.clone(), default.clone());
            }
        }
        Ok(params)
    }

    fn validate(&self, params: Map<String, Value>) -> Result<Map<String, Value>, ParamError> {
        let instance = Value::Object(params);
        let errors: Vec<String> = self
            .validator
            .iter_errors(&instance)
            .map(|e| {
                let path = e.instance_path().to_string();
                let name = path.trim_start_matches('/').split('/').next().unwrap_or("");
                let secret = self.specs.get(name).is_some_and(|s| s.secret);
                let text = if secret {
                    e.masked().to_string()
                } else {
                    e.to_string()
                };
                if name.is_empty() {
                    text
                } else {
                    format!("parameter {name:?}: {text}")
                }
            })
            .collect();
        if !errors.is_empty() {
            return Err(ParamError::Invalid(errors));
        }
        let Value::Object(params) = instance else {
            unreachable!("built as an object above")
        };
        Ok(params)
    }

    /// Converts a command-line value `raw` for parameter `name` to its declared type, as
    /// StackStorm's CLI does for `st2 run ref k=v`: integers, numbers, booleans
    /// (`true/false/yes/no/1/0`), arrays (JSON, or comma-separated items converted by the
    /// `items` type), objects (JSON). Strings, undeclared parameters and parameters without a
    /// single type stay text.
    ///
    /// # Errors
    /// [`ParamError::Cast`] when the text does not convert.
    pub fn cast_cli(&self, name: &str, raw: &str) -> Result<Value, ParamError> {
        let Some(spec) = self.specs.get(name) else {
            return Ok(Value::String(raw.to_string()));
        };
        let item_kind = spec
            .schema
            .get("items")
            .and_then(|i| i.get("type"))
            .and_then(Value::as_str);
        cast(spec.kind.as_deref(), item_kind, raw).map_err(|reason| ParamError::Cast {
            name: name.to_string(),
            value: if spec.secret {
                MASKED.into()
            } else {
                raw.to_string()
            },
            kind: spec.kind.clone().unwrap_or_default(),
            reason,
        })
    }

    /// Converts a rendered template value to the parameter's declared type, as StackStorm casts
    /// rendered parameters: text for a number/integer/boolean/array/object parameter is parsed
    /// (see [`Parameters::cast_cli`]), a non-text value for a string parameter becomes its text.
    /// A value that does not convert is returned unchanged, for validation to report.
    pub fn coerce(&self, name: &str, value: Value) -> Value {
        let Some(spec) = self.specs.get(name) else {
            return value;
        };
        match (spec.kind.as_deref(), value) {
            (Some("string"), v @ (Value::Number(_) | Value::Bool(_))) => {
                Value::String(v.to_string())
            }
            (Some("string") | None, v) => v,
            (Some(_), Value::String(text)) => {
                self.cast_cli(name, &text).unwrap_or(Value::String(text))
            }
            (_, v) => v,
        }
    }

    /// A copy of `params` with every secret parameter's value replaced by [`MASKED`].
    pub fn mask_secrets(&self, params: &Map<String, Value>) -> Map<String, Value> {
        params
            .iter()
            .map(|(k, v)| {
                let secret = self.specs.get(k).is_some_and(|s| s.secret);
                let v = if secret {
                    Value::String(MASKED.into())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// Whether a default is a Jinja template (rendered at run time, so not checked against the
/// schema at load).
fn is_template(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%"))
}

fn cast(kind: Option<&str>, item_kind: Option<&str>, raw: &str) -> Result<Value, String> {
    match kind {
        Some("integer") => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|e| e.to_string()),
        Some("number") => {
            let t = raw.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::from(i));
            }
            let f: f64 = t
                .parse()
                .map_err(|e: std::num::ParseFloatError| e.to_string())?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| "not a finite number".to_string())
        }
        Some("boolean") => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "n" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err("expected true or false".into()),
        },
        Some("array") => {
            let t = raw.trim();
            if t.starts_with('[') {
                return serde_json::from_str(t).map_err(|e| e.to_string());
            }
            if t.is_empty() {
                return Ok(Value::Array(vec![]));
            }
            t.split(',')
                .map(|item| cast(item_kind, None, item.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Some("object") => match serde_json::from_str(raw) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err("expected a JSON object".into()),
            Err(e) => Err(format!("expected a JSON object: {e}")),
        },
        Some("null") if raw.trim() == "null" => Ok(Value::Null),
        _ => Ok(Value::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(yaml: &str) -> Parameters {
        let map: Map<String, Value> = serde_saphyr::from_str(yaml).unwrap();
        Parameters::from_yaml(&map).unwrap()
    }

    fn load_err(yaml: &str) -> String {
        let map: Map<String, Value> = serde_saphyr::from_str(yaml).unwrap();
        Parameters::from_yaml(&map).unwrap_err()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const HTTP: &str = "
url: {type: string, required: true}
method: {type: string, enum: [GET, POST], default: GET}
timeout: {type: number, default: 60}
token: {type: string, secret: true}
agent: {type: string, default: squall, immutable: true}
tags: {type: array, items: {type: integer}}
";

    #[test]
    fn defaults_fill_missing_values() {
        let p = params(HTTP);
        let out = p.resolve(&obj(json!({"url": "http://x"}))).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"url": "http://x", "method": "GET", "timeout": 60, "agent": "squall"})
        );
    }

    #[test]
    fn missing_required_is_named() {
        let err = params(HTTP).resolve(&Map::new()).unwrap_err().to_string();
        assert!(err.contains("\"url\" is a required property"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = params(HTTP)
            .resolve(&obj(json!({"url": "u", "timeout": "soon"})))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("parameter \"timeout\": "), "{err}");
        assert!(err.contains("not of type \"number\""), "{err}");
    }

    #[test]
    fn unknown_parameter_is_rejected() {
        let err = params(HTTP)
            .resolve(&obj(json!({"url": "u", "bogus": 1})))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Additional properties are not allowed"),
            "{err}"
        );
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn immutable_override_uses_stackstorms_message() {
        let err = params(HTTP)
            .resolve(&obj(json!({"url": "u", "agent": "curl"})))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Override of immutable parameter(s) ['agent'] is unsupported."
        );
    }

    #[test]
    fn secret_values_never_appear_in_errors_and_are_masked() {
        let p = params(HTTP);
        let err = p
            .resolve(&obj(json!({"url": "u", "token": 12345})))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("12345"), "{err}");
        let masked = p.mask_secrets(&obj(json!({"url": "u", "token": "hunter2"})));
        assert_eq!(Value::Object(masked), json!({"url": "u", "token": MASKED}));
    }

    #[test]
    fn cli_values_cast_by_declared_type() {
        let p = params(HTTP);
        for (name, raw, want) in [
            ("timeout", "2.5", json!(2.5)),
            ("timeout", "3", json!(3)),
            ("url", "42", json!("42")),
            ("tags", "1, 2,3", json!([1, 2, 3])),
            ("tags", "[4]", json!([4])),
            ("undeclared", "x", json!("x")),
        ] {
            assert_eq!(p.cast_cli(name, raw).unwrap(), want, "{name}={raw}");
        }
        let bools = params("b: {type: boolean}\no: {type: object}\ni: {type: integer}");
        assert_eq!(bools.cast_cli("b", "yes").unwrap(), json!(true));
        assert_eq!(bools.cast_cli("b", "0").unwrap(), json!(false));
        assert_eq!(bools.cast_cli("o", r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        for (name, raw) in [("b", "maybe"), ("o", "[1]"), ("i", "1.5")] {
            let err = bools.cast_cli(name, raw).unwrap_err().to_string();
            assert!(err.contains(&format!("{raw:?}")), "{err}");
        }
    }

    #[test]
    fn rendered_values_take_the_declared_type() {
        let p =
            params("n: {type: integer}\nb: {type: boolean}\ns: {type: string}\nl: {type: array}");
        assert_eq!(p.coerce("n", json!("42")), json!(42));
        assert_eq!(p.coerce("n", json!("x")), json!("x"));
        assert_eq!(p.coerce("b", json!("True")), json!(true));
        assert_eq!(p.coerce("s", json!(7)), json!("7"));
        assert_eq!(p.coerce("l", json!("[1, 2]")), json!([1, 2]));
        assert_eq!(p.coerce("l", json!([1])), json!([1]));
    }

    #[test]
    fn load_time_checks_follow_stackstorm() {
        for (yaml, want) in [
            (
                "a: {type: string, immutable: true}",
                "Immutable param a requires a default value.",
            ),
            (
                "a: {type: string, position: 0}\nb: {type: string, position: 0}",
                "Parameters a and b have same position 0. Position values have to be unique.",
            ),
            (
                "a: {type: string, required: yes please}",
                "parameters.a.required: must be true or false",
            ),
            (
                "a: {type: integer, default: x}",
                "parameters.a.default: \"x\" does not fit",
            ),
            ("a: {type: strin}", "parameters.a: invalid schema"),
            ("a: 5", "parameters.a: must be a mapping"),
        ] {
            let err = load_err(yaml);
            assert!(err.starts_with(want), "{want:?} vs {err:?}");
        }
    }

    #[test]
    fn templated_defaults_are_not_checked_at_load_and_render_at_run() {
        let p = params(
            "host: {type: string, default: web-01}\n\
             url: {type: string, default: \"http://{{ host }}:{{ port }}/\"}\n\
             port: {type: integer, default: 8080}\n\
             retries: {type: integer, default: \"{{ st2kv.system.retries }}\"}",
        );
        let keys: crate::template::KeyLookup =
            std::sync::Arc::new(|k: &str| (k == "retries").then(|| "3".into()));
        let out = p.resolve_with(&Map::new(), Some(keys.clone())).unwrap();
        assert_eq!(out["url"], json!("http://web-01:8080/"));
        assert_eq!(out["retries"], json!(3));
        let given = obj(json!({"host": "db-01", "url": "{{ not rendered }}"}));
        let out = p.resolve_with(&given, Some(keys)).unwrap();
        assert_eq!(
            out["url"],
            json!("{{ not rendered }}"),
            "given values are taken as they are"
        );
        let err = p.resolve(&Map::new()).unwrap_err().to_string();
        assert!(err.contains("\"retries\""), "{err}");
    }

    #[test]
    fn templated_defaults_render_against_a_base_context_such_as_config_context() {
        let p = params(
            "greeting: {type: string, default: \"{{ config_context.greeting }}\"}\n\
             port: {type: integer, default: \"{{ config_context.port }}\"}\n\
             plain: {type: string, default: config_context}",
        );
        assert!(p.defaults_mention("config_context", &Map::new()));
        let given = obj(json!({"greeting": "x", "port": 1}));
        assert!(!p.defaults_mention("config_context", &given));
        assert!(
            !params("a: {type: string, default: config_context}")
                .defaults_mention("config_context", &Map::new())
        );
        let base = crate::template::Context::empty()
            .with("config_context", json!({"greeting": "hi", "port": "8080"}));
        let out = p.resolve_in(&Map::new(), base).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"greeting": "hi", "port": 8080, "plain": "config_context"})
        );
    }

    #[test]
    fn specs_list_positional_first() {
        let p = params(
            "z: {type: string, position: 0}\na: {type: string}\nm: {type: string, position: 1}",
        );
        let names: Vec<&str> = p.specs().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["z", "m", "a"]);
    }
}
