//! Pack config: what a pack declares it needs (`config.schema.yaml`) and what the operator gives
//! it (`configs/<pack>.yaml`), as StackStorm's pack configuration.
//!
//! `config.schema.yaml`, at the pack's root, maps each top-level key to a JSON Schema (draft 4)
//! property with StackStorm's extras, the same format as action parameters ([`crate::param`]):
//!
//! ```yaml
//! api_url: {type: string, default: "https://api.example.com"}
//! api_token: {type: string, required: true, secret: true}
//! targets:
//!   type: array
//!   items:
//!     type: object
//!     properties:
//!       url: {type: string, required: true}
//!       token: {type: string, secret: true}
//! ```
//!
//! - `required: true` and `secret: true` may be set at any depth (in `properties`, `items`,
//!   `additionalProperties`, `patternProperties`); secret values show as `********` in the API
//!   and CLI unless asked for ([`PackConfig::masked`]).
//! - Top-level keys the schema does not declare are rejected, unless the schema has the top-level
//!   entry `additionalProperties: true` (a boolean, so it cannot be a property). Nested objects
//!   follow JSON Schema: other keys are allowed unless they say `additionalProperties: false`.
//!
//! `configs/<pack>.yaml` holds the values: a mapping of key to value. Where it is: `configs_dir`
//! in `squall.toml`, else the directory `configs` beside each packs directory
//! (`<packs_dir>/../configs`, see [`default_configs_dir`]; StackStorm uses
//! `/opt/stackstorm/configs`). A value may be a Jinja template — StackStorm's dynamic config
//! values, e.g. `"{{ st2kv.system.api_token | decrypt_kv }}"` — kept as written at load and
//! rendered each time the config is used ([`PackConfig::render`]).
//!
//! At load, defaults fill in missing keys (at any depth, as StackStorm's config loader: inside
//! given objects and inside each object of a given array), then the values are checked against
//! the schema; a template string passes for any type and is checked after rendering. A pack with
//! a schema and no config file gets its defaults. Every problem is a [`PackError`] naming the
//! file and field (`configs/monitor.yaml: targets[0].url: 5 is not of type "string"`); a pack
//! whose config has problems still loads, but its config cannot be rendered (so its sensors do
//! not start and actions whose parameters use `config_context` are refused).

use crate::action::{ContentError, yaml_message};
use crate::pack::{PackError, PackSet};
use crate::param::{MASKED, Parameters};
use crate::template::{self, Context};
use serde_json::{Map, Value, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The schema file's name, at the pack's root.
pub const SCHEMA_FILE: &str = "config.schema.yaml";

/// The name under which a pack's rendered config is visible to templates (StackStorm's
/// `config_context`, e.g. an action parameter default `"{{ config_context.api_url }}"`).
pub const CONFIG_CONTEXT: &str = "config_context";

/// Where configs are by default for packs in `packs_dir`: the directory `configs` beside it
/// (`/opt/packs` → `/opt/configs`, `packs` → `configs`).
pub fn default_configs_dir(packs_dir: &Path) -> PathBuf {
    match (packs_dir.parent(), packs_dir.file_name()) {
        (Some(parent), Some(_)) => parent.join("configs"),
        // `.`, `..` or `/`: no name to step over.
        _ => packs_dir.join("..").join("configs"),
    }
}

/// One step of a [`SecretPath`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    /// The object key of this name.
    Key(String),
    /// Any key of an object (`additionalProperties`, `patternProperties`).
    AnyKey,
    /// Any item of an array (`items`).
    AnyItem,
}

/// Where secret values sit in a config, e.g. `api_token`, `auth.password`, `targets[].token`,
/// `tokens.*` (displayed so).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretPath(pub Vec<Segment>);

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::AnyKey if i == 0 => f.write_str("*")?,
                Segment::AnyKey => f.write_str(".*")?,
                Segment::AnyItem => f.write_str("[]")?,
            }
        }
        Ok(())
    }
}

impl SecretPath {
    /// Replaces every value this path reaches in `value` with [`MASKED`].
    fn mask(&self, value: &mut Value) {
        fn walk(segments: &[Segment], value: &mut Value) {
            let Some((first, rest)) = segments.split_first() else {
                *value = Value::String(MASKED.into());
                return;
            };
            match (first, value) {
                (Segment::Key(k), Value::Object(map)) => {
                    if let Some(v) = map.get_mut(k) {
                        walk(rest, v);
                    }
                }
                (Segment::AnyKey, Value::Object(map)) => {
                    map.values_mut().for_each(|v| walk(rest, v));
                }
                (Segment::AnyItem, Value::Array(items)) => {
                    items.iter_mut().for_each(|v| walk(rest, v));
                }
                _ => {}
            }
        }
        walk(&self.0, value);
    }

    /// Whether a value at `path` (keys and indexes) is a secret or holds one.
    fn touches(&self, path: &[String]) -> bool {
        self.0
            .iter()
            .zip(path)
            .all(|(segment, step)| match segment {
                Segment::Key(k) => k == step,
                Segment::AnyKey => true,
                Segment::AnyItem => step.parse::<usize>().is_ok(),
            })
    }
}

/// A parsed `config.schema.yaml`: the JSON Schema its declarations make, and where secrets are.
#[derive(Debug, Clone)]
pub struct ConfigSchema {
    parameters: Parameters,
    schema: Value,
    validator: Arc<jsonschema::Validator>,
    secrets: Vec<SecretPath>,
}

impl ConfigSchema {
    /// Parses the text of `file` (a `config.schema.yaml`). An empty file declares nothing.
    ///
    /// # Errors
    /// A [`PackError`] naming `file` and the property: bad YAML, a declaration that is not a
    /// mapping, a `required`/`secret` that is not a boolean, a default that does not fit its
    /// schema, a schema the validator rejects.
    pub fn parse(text: &str, file: &Path) -> Result<ConfigSchema, PackError> {
        let error = |e: ContentError| PackError {
            path: file.to_path_buf(),
            field: e.field,
            message: e.message,
        };
        let declared = match serde_saphyr::from_str::<Value>(text) {
            Err(e) => return Err(error(ContentError::at("", yaml_message(&e, file)))),
            Ok(Value::Null) => Map::new(),
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(error(ContentError::at(
                    "",
                    format!(
                        "must be a mapping of property name to schema, not {}",
                        kind(&other)
                    ),
                )));
            }
        };
        ConfigSchema::from_map(declared).map_err(error)
    }

    /// Builds the schema from its declarations (see the module doc).
    ///
    /// # Errors
    /// As [`ConfigSchema::parse`], as a [`ContentError`] naming the property.
    pub fn from_map(mut declared: Map<String, Value>) -> Result<ConfigSchema, ContentError> {
        let additional = match declared.get("additionalProperties") {
            Some(Value::Bool(b)) => {
                let b = *b;
                declared.remove("additionalProperties");
                b
            }
            _ => false,
        };
        let mut secrets = Vec::new();
        for (name, decl) in declared.iter_mut() {
            let Value::Object(decl) = decl else {
                return Err(ContentError::at(name, "must be a mapping"));
            };
            // The top-level `required`/`secret` flags are the parameters' extras; checked there.
            if decl.get("secret") == Some(&Value::Bool(true)) {
                secrets.push(SecretPath(vec![Segment::Key(name.clone())]));
            }
            normalize(
                decl,
                &[Segment::Key(name.clone())],
                name,
                true,
                &mut secrets,
            )?;
        }
        // The same declaration format as action parameters: reuse their schema building.
        let parameters =
            Parameters::from_yaml(&declared).map_err(|m| match m.split_once(": ") {
                Some((field, msg)) if field.starts_with("parameters") => {
                    let field = field
                        .trim_start_matches("parameters")
                        .trim_start_matches('.');
                    ContentError::at(field, msg)
                }
                _ => ContentError::at("", m),
            })?;
        let mut schema = parameters.schema().clone();
        schema["additionalProperties"] = Value::Bool(additional);
        let validator = jsonschema::draft4::new(&schema)
            .map_err(|e| ContentError::at("", format!("invalid schema: {e}")))?;
        secrets.sort();
        Ok(ConfigSchema {
            parameters,
            schema,
            validator: Arc::new(validator),
            secrets,
        })
    }

    /// The JSON Schema (draft 4) that values are checked against, StackStorm's extras removed.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Where the `secret: true` values are.
    pub fn secrets(&self) -> &[SecretPath] {
        &self.secrets
    }

    /// Fills in defaults where `values` has no value, as StackStorm's config loader: top-level
    /// keys, keys of given objects, keys of the objects in given arrays (a missing object is not
    /// created to hold its properties' defaults).
    pub fn fill_defaults(&self, values: &mut Map<String, Value>) {
        if let Some(Value::Object(properties)) = self.schema.get("properties") {
            fill_defaults(properties, values);
        }
    }

    /// Checks `values` against the schema; every problem names `file` and the field. With
    /// `templates`, a string that is a template passes wherever it is (it is checked once
    /// rendered). Messages about secret values never show them.
    pub fn check(
        &self,
        values: &Map<String, Value>,
        file: &Path,
        templates: bool,
    ) -> Vec<PackError> {
        let instance = Value::Object(values.clone());
        let mut errors = Vec::new();
        for e in self.validator.iter_errors(&instance) {
            if templates && e.instance().as_str().is_some_and(template::is_template) {
                continue;
            }
            let path: Vec<String> = e
                .instance_path()
                .as_str()
                .split('/')
                .skip(1)
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect();
            let at = |extra: Option<&str>| {
                let mut steps = path.clone();
                steps.extend(extra.map(str::to_string));
                field_name(&steps, &instance)
            };
            let error = |field: String, message: String| PackError {
                path: file.to_path_buf(),
                field,
                message,
            };
            match e.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    errors.push(error(
                        at(Some(name)),
                        format!("is required and {SCHEMA_FILE} gives it no default"),
                    ));
                }
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for name in unexpected {
                        errors.push(error(
                            at(Some(name)),
                            format!("unknown key: {SCHEMA_FILE} does not declare it"),
                        ));
                    }
                }
                _ => {
                    let secret = self.secrets.iter().any(|s| s.touches(&path));
                    let message = if secret {
                        e.masked().to_string()
                    } else {
                        e.to_string()
                    };
                    errors.push(error(at(None), message));
                }
            }
        }
        errors
    }
}

fn fill_defaults(properties: &Map<String, Value>, values: &mut Map<String, Value>) {
    for (key, property) in properties {
        if !values.contains_key(key)
            && let Some(default) = property.get("default")
        {
            values.insert(key.clone(), default.clone());
        }
        if let Some(value) = values.get_mut(key) {
            fill_nested(property, value);
        }
    }
}

fn fill_nested(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = schema.get("properties") {
                fill_defaults(properties, map);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema @ Value::Object(_)) = schema.get("items") {
                items.iter_mut().for_each(|i| fill_nested(item_schema, i));
            }
        }
        _ => {}
    }
}

/// `["targets", "0", "url"]` → `targets[0].url`, telling indexes from keys by the value walked.
fn field_name(steps: &[String], root: &Value) -> String {
    let mut out = String::new();
    let mut at = Some(root);
    for step in steps {
        match at {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{step}]"));
                at = step.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(step);
                at = other.and_then(|v| v.get(step));
            }
        }
    }
    out
}

/// Turns StackStorm's nested extras into JSON Schema: `required: true` on a nested property
/// becomes its object's `required` list, `secret: true` is recorded in `secrets` and removed.
/// `decl` is the declaration at `path`, named `field` in messages; its own flags are its
/// parent's business, except at the top level (`top`), where its `required` is a flag of the
/// parameters' format, so the list of its required properties goes into an `allOf`.
fn normalize(
    decl: &mut Map<String, Value>,
    path: &[Segment],
    field: &str,
    top: bool,
    secrets: &mut Vec<SecretPath>,
) -> Result<(), ContentError> {
    let child = |segment: Segment| {
        let mut p = path.to_vec();
        p.push(segment);
        p
    };
    if let Some(properties) = decl.get_mut("properties") {
        let Value::Object(properties) = properties else {
            return Err(ContentError::at(
                &format!("{field}.properties"),
                "must be a mapping",
            ));
        };
        let mut required = Vec::new();
        for (name, sub) in properties.iter_mut() {
            let sub_field = format!("{field}.properties.{name}");
            let sub_path = child(Segment::Key(name.clone()));
            if take_flags(sub, &sub_field, &sub_path, secrets)? {
                required.push(Value::String(name.clone()));
            }
            if let Value::Object(sub) = sub {
                normalize(sub, &sub_path, &sub_field, false, secrets)?;
            }
        }
        if !required.is_empty() {
            match decl.get_mut("required") {
                Some(Value::Array(list)) if !top => list.extend(required),
                None if !top => {
                    decl.insert("required".into(), Value::Array(required));
                }
                _ => {
                    let all_of = decl.entry("allOf").or_insert_with(|| json!([]));
                    match all_of {
                        Value::Array(list) => list.push(json!({"required": required})),
                        _ => {
                            return Err(ContentError::at(
                                &format!("{field}.allOf"),
                                "must be a list of schemas",
                            ));
                        }
                    }
                }
            }
        }
    }
    for (key, segment) in [
        ("items", Segment::AnyItem),
        ("additionalProperties", Segment::AnyKey),
    ] {
        let sub_field = format!("{field}.{key}");
        let sub_path = child(segment);
        match decl.get_mut(key) {
            Some(Value::Array(tuple)) if key == "items" => {
                for (i, sub) in tuple.iter_mut().enumerate() {
                    let sub_field = format!("{sub_field}[{i}]");
                    take_flags(sub, &sub_field, &sub_path, secrets)?;
                    if let Value::Object(sub) = sub {
                        normalize(sub, &sub_path, &sub_field, false, secrets)?;
                    }
                }
            }
            Some(sub @ Value::Object(_)) => {
                take_flags(sub, &sub_field, &sub_path, secrets)?;
                if let Value::Object(sub) = sub {
                    normalize(sub, &sub_path, &sub_field, false, secrets)?;
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Object(patterns)) = decl.get_mut("patternProperties") {
        let sub_path = child(Segment::AnyKey);
        for (pattern, sub) in patterns.iter_mut() {
            let sub_field = format!("{field}.patternProperties.{pattern}");
            take_flags(sub, &sub_field, &sub_path, secrets)?;
            if let Value::Object(sub) = sub {
                normalize(sub, &sub_path, &sub_field, false, secrets)?;
            }
        }
    }
    Ok(())
}

/// Removes the boolean `required` and `secret` flags of a nested declaration, recording a
/// secret; returns whether it is required. A `required` list (draft 4's own form, for the
/// declaration's properties) is left alone.
fn take_flags(
    decl: &mut Value,
    field: &str,
    path: &[Segment],
    secrets: &mut Vec<SecretPath>,
) -> Result<bool, ContentError> {
    let Value::Object(decl) = decl else {
        return Err(ContentError::at(field, "must be a mapping"));
    };
    let required = match decl.get("required") {
        None | Some(Value::Array(_)) => false,
        Some(Value::Bool(b)) => {
            let b = *b;
            decl.remove("required");
            b
        }
        Some(other) => {
            return Err(ContentError::at(
                &format!("{field}.required"),
                format!("must be true or false, not {other}"),
            ));
        }
    };
    match decl.remove("secret") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => secrets.push(SecretPath(path.to_vec())),
        Some(other) => {
            return Err(ContentError::at(
                &format!("{field}.secret"),
                format!("must be true or false, not {other}"),
            ));
        }
    }
    Ok(required)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// One pack's configuration as loaded: its schema (if any), its values before rendering (with
/// defaults filled in), and every problem found.
#[derive(Debug, Clone)]
pub struct PackConfig {
    /// The pack's ref.
    pub pack: String,
    /// The pack's `config.schema.yaml`, when it has one (even if it did not parse).
    pub schema_file: Option<PathBuf>,
    /// The parsed schema; `None` without a schema file or when it did not parse.
    pub schema: Option<ConfigSchema>,
    /// The config file, `<configs_dir>/<pack>.yaml`, whether or not it exists.
    pub file: PathBuf,
    /// Whether [`PackConfig::file`] exists.
    pub file_exists: bool,
    /// The values as written (templates not rendered), with defaults filled in.
    pub values: Map<String, Value>,
    /// The values as the operator wrote them in [`PackConfig::file`], without defaults: only
    /// these are rendered as templates. Defaults come from the pack's own schema and are taken
    /// literally, so a pack cannot have `{{ st2kv.system.x | decrypt_kv }}` rendered for it.
    pub written: Map<String, Value>,
    /// Problems in the schema or the values; empty when the config is valid.
    pub errors: Vec<PackError>,
}

/// Why a pack's config cannot be given to an action or sensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackConfigError {
    /// No loaded pack has this ref.
    #[error("pack {0:?} is not loaded")]
    UnknownPack(String),
    /// The config had problems at load (the same as in the load errors).
    #[error("the config of pack {pack:?} is invalid: {}", join(.errors))]
    Invalid {
        /// The pack.
        pack: String,
        /// Its problems.
        errors: Vec<PackError>,
    },
    /// A template did not render, or a rendered value does not fit the schema.
    #[error("the config of pack {pack:?} does not render: {}", join(.errors))]
    Render {
        /// The pack.
        pack: String,
        /// Each failing value, naming the config file and field.
        errors: Vec<PackError>,
    },
}

fn join(errors: &[PackError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl PackConfig {
    /// Loads the config of `pack` (directory `pack_dir`) from `<configs_dir>/<pack>.yaml`,
    /// against `<pack_dir>/config.schema.yaml`. `None` when neither file exists.
    pub fn load(pack: &str, pack_dir: &Path, configs_dir: &Path) -> Option<PackConfig> {
        let schema_file = pack_dir.join(SCHEMA_FILE);
        let file = configs_dir.join(format!("{pack}.yaml"));
        let mut errors = Vec::new();
        let mut read = |path: &Path, result: Result<Option<String>, String>| match result {
            Ok(text) => text,
            Err(message) => {
                errors.push(PackError {
                    path: path.to_path_buf(),
                    field: String::new(),
                    message,
                });
                None
            }
        };
        // The schema is the pack's (confined to it); the config is the operator's own file.
        let schema_text = read(
            &schema_file,
            crate::pack_files::read_text(pack_dir, &schema_file),
        );
        let config_text = read(
            &file,
            match std::fs::read_to_string(&file) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read: {e}")),
            },
        );
        if schema_text.is_none() && config_text.is_none() && errors.is_empty() {
            return None;
        }
        let schema = schema_text.as_deref().map(|t| (schema_file.as_path(), t));
        let mut config = PackConfig::from_texts(pack, schema, &file, config_text.as_deref());
        errors.append(&mut config.errors);
        config.errors = errors;
        if config.schema.is_none() && schema_file.is_file() {
            config.schema_file = Some(schema_file);
        }
        Some(config)
    }

    /// Builds a pack's config from the texts of its schema file (path, text) and its config
    /// file (`file`, whose text is `None` when it does not exist). Never fails: problems are in
    /// [`PackConfig::errors`].
    pub fn from_texts(
        pack: &str,
        schema: Option<(&Path, &str)>,
        file: &Path,
        text: Option<&str>,
    ) -> PackConfig {
        let mut errors = Vec::new();
        let parsed = schema.and_then(|(path, text)| {
            ConfigSchema::parse(text, path)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let mut values = match text.map(|t| parse_values(t, file)) {
            None => Map::new(),
            Some(Ok(values)) => values,
            Some(Err(e)) => {
                errors.push(e);
                Map::new()
            }
        };
        for (key, value) in &values {
            // Nested failures come prefixed with their place: `sub: [0]: syntax error ...`.
            if let Err(e) = template::check_value(value) {
                errors.push(PackError {
                    path: file.to_path_buf(),
                    field: key.clone(),
                    message: e,
                });
            }
        }
        let written = values.clone();
        if let Some(schema) = &parsed {
            schema.fill_defaults(&mut values);
            let mut found = schema.check(&values, file, true);
            if text.is_none() {
                for e in &mut found {
                    e.message.push_str(" (and the file does not exist)");
                }
            }
            errors.extend(found);
        }
        PackConfig {
            pack: pack.to_string(),
            schema_file: schema.map(|(path, _)| path.to_path_buf()),
            schema: parsed,
            file: file.to_path_buf(),
            file_exists: text.is_some(),
            values,
            written,
            errors,
        }
    }

    /// Whether the config loaded without problems.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// Where the secret values are (none without a schema).
    pub fn secrets(&self) -> &[SecretPath] {
        self.schema.as_ref().map_or(&[], |s| s.secrets())
    }

    /// The values as loaded, each secret one replaced by [`MASKED`] (templates included).
    pub fn masked(&self) -> Map<String, Value> {
        let mut values = Value::Object(self.values.clone());
        for secret in self.secrets() {
            secret.mask(&mut values);
        }
        match values {
            Value::Object(map) => map,
            _ => unreachable!("masking keeps an object an object"),
        }
    }

    /// The values with every template rendered against `ctx` (StackStorm's dynamic config
    /// values: build `ctx` with the datastore, e.g. [`Context::with_keys`]); a rendered
    /// top-level value takes its declared type (text `"8080"` for an `integer` is `8080`, see
    /// [`Parameters::coerce`]), then everything is checked against the schema again.
    ///
    /// # Errors
    /// [`PackConfigError::Invalid`] when the config had load problems,
    /// [`PackConfigError::Render`] when a template fails or a rendered value does not fit.
    pub fn render(&self, ctx: &Context) -> Result<Map<String, Value>, PackConfigError> {
        if !self.errors.is_empty() {
            return Err(PackConfigError::Invalid {
                pack: self.pack.clone(),
                errors: self.errors.clone(),
            });
        }
        let mut out = Map::new();
        let mut errors = Vec::new();
        for (key, value) in &self.written {
            match template::render_value(value, ctx) {
                Ok(v) => {
                    let v = match &self.schema {
                        Some(s) => s.parameters.coerce(key, v),
                        None => v,
                    };
                    out.insert(key.clone(), v);
                }
                Err(e) => errors.push(PackError {
                    path: self.file.clone(),
                    field: key.clone(),
                    message: format!("does not render: {e}"),
                }),
            }
        }
        if errors.is_empty()
            && let Some(schema) = &self.schema
        {
            // Defaults after rendering, literally (see `written`).
            schema.fill_defaults(&mut out);
            errors = schema.check(&out, &self.file, false);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(PackConfigError::Render {
                pack: self.pack.clone(),
                errors,
            })
        }
    }
}

/// Parses a config file's text: a mapping (an empty file is an empty mapping).
fn parse_values(text: &str, file: &Path) -> Result<Map<String, Value>, PackError> {
    let error = |field: &str, message: String| PackError {
        path: file.to_path_buf(),
        field: field.to_string(),
        message,
    };
    let values = match serde_saphyr::from_str::<Value>(text) {
        Err(e) => return Err(error("", yaml_message(&e, file))),
        Ok(Value::Null) => Map::new(),
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(error(
                "",
                format!("must be a mapping of key to value, not {}", kind(&other)),
            ));
        }
    };
    Ok(values)
}

impl PackSet {
    /// Loads the config of every loaded pack from `configs_dir`, or when `None` from
    /// [`default_configs_dir`] of the directory the pack was loaded from; problems go to
    /// [`PackSet::errors`] and the pack keeps loading.
    pub(crate) fn load_configs(&mut self, configs_dir: Option<&Path>) {
        for pack in self.packs.values_mut() {
            let dir = match configs_dir {
                Some(d) => d.to_path_buf(),
                None => default_configs_dir(pack.path.parent().unwrap_or(Path::new(""))),
            };
            pack.config = PackConfig::load(&pack.meta.reference, &pack.path, &dir);
            if let Some(config) = &pack.config {
                self.errors.extend(config.errors.iter().cloned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
api_url: {type: string, default: "https://api.example.com"}
api_token: {type: string, required: true, secret: true}
port: {type: integer, default: 443}
retries: {type: integer}
auth:
  type: object
  properties:
    user: {type: string, required: true}
    password: {type: string, secret: true}
    realm: {type: string, default: ops}
targets:
  type: array
  items:
    type: object
    properties:
      url: {type: string, required: true}
      token: {type: string, secret: true}
      verify: {type: boolean, default: true}
headers:
  type: object
  additionalProperties: {type: string, secret: true}
"#;

    fn load(config: Option<&str>) -> PackConfig {
        PackConfig::from_texts(
            "monitor",
            Some((Path::new("packs/monitor/config.schema.yaml"), SCHEMA)),
            Path::new("configs/monitor.yaml"),
            config,
        )
    }

    fn messages(c: &PackConfig) -> Vec<String> {
        c.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_fill_missing_values_at_any_depth() {
        for (config, want) in [
            (
                "api_token: t",
                json!({"api_url": "https://api.example.com", "api_token": "t", "port": 443}),
            ),
            (
                "api_token: t\nport: 8443\nauth: {user: me}",
                json!({"api_url": "https://api.example.com", "api_token": "t", "port": 8443,
                       "auth": {"user": "me", "realm": "ops"}}),
            ),
            (
                "api_token: t\ntargets: [{url: a}, {url: b, verify: false}]",
                json!({"api_url": "https://api.example.com", "api_token": "t", "port": 443,
                       "targets": [{"url": "a", "verify": true}, {"url": "b", "verify": false}]}),
            ),
        ] {
            let c = load(Some(config));
            assert!(c.is_valid(), "{config}: {:?}", messages(&c));
            assert_eq!(Value::Object(c.values), want, "{config}");
        }
    }

    #[test]
    fn problems_name_the_config_file_and_field() {
        for (config, want) in [
            (
                None,
                "configs/monitor.yaml: api_token: is required and config.schema.yaml gives it no default",
            ),
            (
                Some("api_url: x"),
                "configs/monitor.yaml: api_token: is required",
            ),
            (
                Some("api_token: t\nport: soon"),
                "configs/monitor.yaml: port: \"soon\" is not of type \"integer\"",
            ),
            (
                Some("api_token: t\ntargets: [{url: a}, {url: 5}]"),
                "configs/monitor.yaml: targets[1].url: 5 is not of type \"string\"",
            ),
            (
                Some("api_token: t\ntargets: [{verify: false}]"),
                "configs/monitor.yaml: targets[0].url: is required",
            ),
            (
                Some("api_token: t\nauth: {password: p}"),
                "configs/monitor.yaml: auth.user: is required",
            ),
            (
                Some("api_token: t\nbogus: 1"),
                "configs/monitor.yaml: bogus: unknown key: config.schema.yaml does not declare it",
            ),
            (
                Some("- a\n- b"),
                "configs/monitor.yaml: must be a mapping of key to value, not a list",
            ),
            (
                Some("api_token: \"{{ oops\""),
                "configs/monitor.yaml: api_token: syntax error",
            ),
            (Some("api_token: [unclosed"), "configs/monitor.yaml: line 1"),
        ] {
            let c = load(config);
            let got = messages(&c);
            assert!(
                got.iter().any(|m| m.starts_with(want)),
                "{config:?}: want {want:?} in {got:#?}"
            );
        }
    }

    #[test]
    fn secret_paths_are_found_at_any_depth_and_masked() {
        let c = load(Some(
            "api_token: t0p\nauth: {user: me, password: pw}\n\
             targets: [{url: a, token: x1}, {url: b}]\nheaders: {X-Key: k1}",
        ));
        assert!(c.is_valid(), "{:?}", messages(&c));
        let paths: Vec<String> = c.secrets().iter().map(ToString::to_string).collect();
        assert_eq!(
            paths,
            ["api_token", "auth.password", "headers.*", "targets[].token"]
        );
        let masked = Value::Object(c.masked());
        assert_eq!(masked["api_token"], MASKED);
        assert_eq!(
            masked["auth"],
            json!({"user": "me", "password": MASKED, "realm": "ops"})
        );
        assert_eq!(masked["targets"][0]["token"], MASKED);
        assert_eq!(masked["targets"][1], json!({"url": "b", "verify": true}));
        assert_eq!(masked["headers"], json!({"X-Key": MASKED}));
        assert_eq!(
            c.values["api_token"], "t0p",
            "the values themselves are not masked"
        );
    }

    #[test]
    fn secret_values_never_appear_in_messages() {
        let c = load(Some("api_token: 12345\nauth: {user: me, password: 67890}"));
        let got = messages(&c).join("\n");
        assert_eq!(c.errors.len(), 2, "{got}");
        assert!(!got.contains("12345") && !got.contains("67890"), "{got}");
        assert!(
            got.contains("api_token: ") && got.contains("auth.password: "),
            "{got}"
        );
    }

    #[test]
    fn templates_pass_for_any_type_and_are_checked_once_rendered() {
        let c = load(Some(
            "api_token: \"{{ st2kv.system.token }}\"\nport: \"{{ st2kv.system.port }}\"\n\
             targets: [\"{{ st2kv.system.target }}\"]\nauth: \"{{ st2kv.system.auth }}\"",
        ));
        assert!(c.is_valid(), "{:?}", messages(&c));
        let keys = |values: &'static [(&'static str, &'static str)]| -> crate::template::KeyLookup {
            Arc::new(move |k: &str| {
                values
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let ctx = Context::empty().with_keys(keys(&[
            ("token", "s3cret"),
            ("port", "8443"),
            ("target", "{\"url\": \"a\"}"),
        ]));
        // `auth` renders empty (no such key): not an object, so rendering fails the check.
        let err = c.render(&ctx).unwrap_err().to_string();
        assert!(err.contains("configs/monitor.yaml: auth: "), "{err}");
        let c = load(Some(
            "api_token: \"{{ st2kv.system.token }}\"\nport: \"{{ st2kv.system.port }}\"",
        ));
        let out = c.render(&ctx).unwrap();
        assert_eq!(out["api_token"], "s3cret");
        assert_eq!(
            out["port"], 8443,
            "a rendered value takes its declared type"
        );
        let bad_port = Context::empty().with_keys(keys(&[("token", "s"), ("port", "soon")]));
        let err = c.render(&bad_port).unwrap_err().to_string();
        assert!(
            err.contains("configs/monitor.yaml: port: \"soon\" is not of type \"integer\""),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_config_does_not_render() {
        let err = load(None).render(&Context::empty()).unwrap_err();
        assert!(matches!(err, PackConfigError::Invalid { .. }), "{err}");
        assert!(err.to_string().starts_with(
            "the config of pack \"monitor\" is invalid: configs/monitor.yaml: api_token: is required"
        ));
    }

    #[test]
    fn additional_top_level_keys_only_when_the_schema_allows_them() {
        let allowing = PackConfig::from_texts(
            "p",
            Some((
                Path::new("config.schema.yaml"),
                "additionalProperties: true\na: {type: string}",
            )),
            Path::new("configs/p.yaml"),
            Some("a: x\nb: 1"),
        );
        assert!(allowing.is_valid(), "{:?}", messages(&allowing));
        let no_schema =
            PackConfig::from_texts("p", None, Path::new("configs/p.yaml"), Some("anything: 1"));
        assert!(no_schema.is_valid());
        assert_eq!(no_schema.values["anything"], 1);
    }

    #[test]
    fn schema_problems_name_the_schema_file_and_property() {
        for (schema, want) in [
            ("a: 5", "config.schema.yaml: a: must be a mapping"),
            (
                "- a",
                "config.schema.yaml: must be a mapping of property name to schema",
            ),
            (
                "a: {type: string, secret: maybe}",
                "config.schema.yaml: a.secret: must be true or false",
            ),
            (
                "a: {type: object, properties: {b: {type: string, required: yes please}}}",
                "config.schema.yaml: a.properties.b.required: must be true or false",
            ),
            (
                "a: {type: integer, default: x}",
                "config.schema.yaml: a.default: \"x\" does not fit",
            ),
            ("a: {type: strin}", "config.schema.yaml: a: invalid schema"),
            ("a: {type: [unclosed", "config.schema.yaml: line 1"),
        ] {
            let err = ConfigSchema::parse(schema, Path::new("config.schema.yaml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(want),
                "{schema}: want {want:?}, got {err:?}"
            );
        }
    }

    #[test]
    fn configs_sit_beside_the_packs_directory() {
        for (packs, want) in [
            ("/opt/squall/packs", "/opt/squall/configs"),
            ("packs", "configs"),
            (".", "./../configs"),
        ] {
            assert_eq!(
                default_configs_dir(Path::new(packs)),
                Path::new(want),
                "{packs}"
            );
        }
    }

    #[test]
    fn pack_loading_reports_config_problems_and_keeps_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("packs/monitor/pack.yaml", "name: monitor\n");
        write("packs/monitor/config.schema.yaml", SCHEMA);
        write("configs/monitor.yaml", "api_token: t\nport: soon\n");
        write("packs/plain/pack.yaml", "name: plain\n");
        write("other/monitor.yaml", "api_token: t\n");

        let set = PackSet::load_all(&[root.join("packs")]);
        let monitor = set.pack("monitor").expect("the pack still loads");
        let config = monitor.config.as_ref().unwrap();
        assert!(!config.is_valid());
        assert!(set.pack("plain").unwrap().config.is_none());
        let errors: Vec<String> = set.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].ends_with("configs/monitor.yaml: port: \"soon\" is not of type \"integer\""),
            "{errors:#?}"
        );

        let set = PackSet::load_all_with_configs(&[root.join("packs")], Some(&root.join("other")));
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        let config = set.pack("monitor").unwrap().config.as_ref().unwrap();
        assert_eq!(config.file, root.join("other/monitor.yaml"));
        assert_eq!(config.values["port"], 443);
    }
}
