//! Jinja templates, as StackStorm renders rule criteria patterns and action parameters.
//!
//! Rendering uses [minijinja] with StackStorm's custom filters added (from
//! `st2common/jinja/filters`): `to_json_string`, `to_yaml_string`, `from_json_string`,
//! `from_yaml_string`, `to_complex`, `json_escape`, `regex_match`, `regex_search`,
//! `regex_replace`, `regex_substring`, `to_human_time_from_seconds`, `use_none`, `basename`,
//! `dirname`. The context is JSON: `trigger` (the trigger instance payload) and `st2kv.system`
//! (the datastore's system scope, looked up on use).
//!
//! A value is a template when it contains `{{` or `{%`; anything else is returned unchanged.

use minijinja::value::{Object, Serde};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value as Jinja};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// Looks up a datastore key (`st2kv.system.<key>`); `None` when the key does not exist.
pub type KeyLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Whether `text` contains template syntax.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.add_filter("to_json_string", to_json_string);
        env.add_filter("to_complex", to_complex);
        env.add_filter("json_escape", json_escape);
        env.add_filter("from_json_string", from_json_string);
        env.add_filter("to_yaml_string", to_yaml_string);
        env.add_filter("from_yaml_string", from_yaml_string);
        env.add_filter("regex_match", regex_match);
        env.add_filter("regex_search", regex_search);
        env.add_filter("regex_replace", regex_replace);
        env.add_filter("regex_substring", regex_substring);
        env.add_filter("to_human_time_from_seconds", to_human_time_from_seconds);
        env.add_filter("use_none", use_none);
        env.add_filter("basename", basename);
        env.add_filter("dirname", dirname);
        env
    })
}

/// Checks that `text` parses as a template.
///
/// # Errors
/// The parser's message (with line), e.g. `syntax error: unexpected end of input`.
pub fn check(text: &str) -> Result<(), String> {
    environment()
        .template_from_str(text)
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// What a template is rendered against.
#[derive(Clone)]
pub struct Context {
    values: serde_json::Map<String, Value>,
    keys: Option<KeyLookup>,
    functions: Vec<(String, Jinja)>,
}

impl Context {
    /// A context exposing `trigger` = `payload`.
    pub fn trigger(payload: &Value) -> Context {
        let mut values = serde_json::Map::new();
        values.insert("trigger".into(), payload.clone());
        Context {
            values,
            keys: None,
            functions: Vec::new(),
        }
    }

    /// An empty context.
    pub fn empty() -> Context {
        Context {
            values: serde_json::Map::new(),
            keys: None,
            functions: Vec::new(),
        }
    }

    /// Adds a function callable from templates (Orquesta's `ctx()`, `result()`, ...), made
    /// with [`minijinja::Value::from_function`].
    pub fn with_function(mut self, name: &str, function: Jinja) -> Context {
        self.functions.push((name.to_string(), function));
        self
    }

    /// Adds (or replaces) a top-level name.
    pub fn with(mut self, name: &str, value: Value) -> Context {
        self.values.insert(name.to_string(), value);
        self
    }

    /// Exposes the datastore as `st2kv.system`.
    pub fn with_keys(mut self, keys: KeyLookup) -> Context {
        self.keys = Some(keys);
        self
    }

    fn to_jinja(&self) -> Jinja {
        let mut map: std::collections::BTreeMap<String, Jinja> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Jinja::from(Serde(v))))
            .collect();
        if let Some(keys) = &self.keys {
            let system = Jinja::from_object(KeyScope {
                lookup: keys.clone(),
            });
            let mut st2kv = std::collections::BTreeMap::new();
            st2kv.insert("system".to_string(), system);
            map.insert("st2kv".into(), Jinja::from(st2kv));
        }
        for (name, f) in &self.functions {
            map.insert(name.clone(), f.clone());
        }
        Jinja::from(map)
    }
}

/// `st2kv.system`: attribute access looks the key up.
struct KeyScope {
    lookup: KeyLookup,
}

impl std::fmt::Debug for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("st2kv.system")
    }
}

impl Object for KeyScope {
    fn get_value(self: &Arc<Self>, key: &Jinja) -> Option<Jinja> {
        key.as_str().and_then(|k| (self.lookup)(k)).map(Jinja::from)
    }
}

/// Renders `text` to a string.
///
/// # Errors
/// The renderer's message, e.g. `undefined value` or a filter's error.
pub fn render(text: &str, ctx: &Context) -> Result<String, String> {
    environment()
        .render_str(text, ctx.to_jinja())
        .map_err(|e| describe(&e))
}

/// The expression of a template that is exactly one `{{ expression }}` and nothing else.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

/// Renders a template keeping the type of its value: a string that is exactly one
/// `{{ expression }}` evaluates to that expression's JSON value (a list stays a list, a number
/// a number); any other template renders to a string; a non-template string is returned as is.
///
/// # Errors
/// The renderer's message.
pub fn render_typed(text: &str, ctx: &Context) -> Result<Value, String> {
    if !is_template(text) {
        return Ok(Value::String(text.to_string()));
    }
    match single_expression(text) {
        Some(expr) => {
            let compiled = environment()
                .compile_expression(expr)
                .map_err(|e| describe(&e))?;
            let value = compiled.eval(ctx.to_jinja()).map_err(|e| describe(&e))?;
            if value.is_undefined() {
                return Ok(Value::String(String::new()));
            }
            serde_json::to_value(&value).map_err(|e| e.to_string())
        }
        None => render(text, ctx).map(Value::String),
    }
}

/// Renders every template string inside `value` (recursively through arrays and objects) with
/// [`render_typed`]; other values are returned unchanged.
///
/// # Errors
/// The first rendering error, prefixed with the path of the failing string.
pub fn render_value(value: &Value, ctx: &Context) -> Result<Value, String> {
    match value {
        Value::String(s) => render_typed(s, ctx),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| render_value(v, ctx).map_err(|e| format!("[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    render_value(v, ctx).map_err(|e| format!("{k}: {e}"))?,
                ))
            })
            .collect::<Result<serde_json::Map<_, _>, String>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Checks every template string inside `value`.
///
/// # Errors
/// The first syntax error, prefixed with the path of the failing string.
pub fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) if is_template(s) => check(s),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_value(v).map_err(|e| format!("[{i}]: {e}"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_value(v).map_err(|e| format!("{k}: {e}"))),
        _ => Ok(()),
    }
}

fn describe(e: &Error) -> String {
    let mut text = e.kind().to_string();
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

fn to_json(value: &Jinja) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

fn bad(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

fn to_json_string(value: Jinja, indent: Option<usize>) -> Result<String, Error> {
    let v = to_json(&value)?;
    match indent {
        Some(_) => serde_json::to_string_pretty(&v),
        None => serde_json::to_string(&v),
    }
    .map_err(|e| bad(e.to_string()))
}

/// StackStorm's `to_complex`: JSON text of the value.
fn to_complex(value: Jinja) -> Result<String, Error> {
    to_json_string(value, None)
}

fn json_escape(value: String) -> Result<String, Error> {
    let quoted = serde_json::to_string(&value).map_err(|e| bad(e.to_string()))?;
    Ok(quoted[1..quoted.len() - 1].to_string())
}

fn from_json_string(text: String) -> Result<Jinja, Error> {
    let v: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("from_json_string: {e}")))?;
    Ok(Jinja::from(Serde(v)))
}

fn to_yaml_string(value: Jinja) -> Result<String, Error> {
    let v = to_json(&value)?;
    serde_saphyr::to_string(&v).map_err(|e| bad(format!("to_yaml_string: {e}")))
}

fn from_yaml_string(text: String) -> Result<Jinja, Error> {
    let v: Value =
        serde_saphyr::from_str(&text).map_err(|e| bad(format!("from_yaml_string: {e}")))?;
    Ok(Jinja::from(Serde(v)))
}

fn compile(pattern: &str) -> Result<regex::Regex, Error> {
    regex::Regex::new(pattern).map_err(|e| bad(format!("invalid regex {pattern:?}: {e}")))
}

/// Python's `re.match`: anchored at the start.
fn regex_match(value: String, pattern: String) -> Result<bool, Error> {
    let re = compile(&format!("^(?:{pattern})"))?;
    Ok(re.is_match(&value))
}

fn regex_search(value: String, pattern: String) -> Result<bool, Error> {
    Ok(compile(&pattern)?.is_match(&value))
}

/// Python's `re.sub` with `\1`-style group references.
fn regex_replace(value: String, pattern: String, replacement: String) -> Result<String, Error> {
    let re = compile(&pattern)?;
    let replacement = python_group_refs(&replacement);
    Ok(re.replace_all(&value, replacement.as_str()).into_owned())
}

fn python_group_refs(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

/// StackStorm's `regex_substring`: the `result_index`-th match (the first group when the
/// pattern has groups), as Python's `re.findall(pattern, value)[result_index]`.
fn regex_substring(
    value: String,
    pattern: String,
    result_index: Option<usize>,
) -> Result<String, Error> {
    let re = compile(&pattern)?;
    let index = result_index.unwrap_or(0);
    let found: Vec<String> = re
        .captures_iter(&value)
        .map(|c| {
            c.get(1)
                .or_else(|| c.get(0))
                .map(|m| m.as_str().to_string())
                .unwrap_or_default()
        })
        .collect();
    found.get(index).cloned().ok_or_else(|| {
        bad(format!(
            "regex_substring: no match #{index} for {pattern:?}"
        ))
    })
}

/// `3723` → `1h2m3s`, StackStorm's format (days as `d`).
fn to_human_time_from_seconds(seconds: f64) -> String {
    let mut left = seconds.max(0.0).round() as u64;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if left > 0 || out.is_empty() {
        out.push_str(&format!("{left}s"));
    }
    out
}

/// StackStorm's `use_none`: `None` becomes the string `%*****__%NONE%__*****%` in st2 so it
/// survives casting; here a JSON null is kept as null.
fn use_none(value: Jinja) -> Jinja {
    if value.is_none() || value.is_undefined() {
        Jinja::from(())
    } else {
        value
    }
}

fn basename(path: String) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

fn dirname(path: String) -> String {
    match path.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        let keys: KeyLookup = Arc::new(|k: &str| (k == "threshold").then(|| "3".to_string()));
        Context::trigger(&json!({
            "body": {"alerts": [{"labels": {"service": "nginx", "severity": "critical"}}]},
            "n": 3723,
            "path": "/var/log/nginx/error.log",
        }))
        .with_keys(keys)
    }

    #[test]
    fn renders_filters_like_stackstorm() {
        for (template, want) in [
            ("{{ trigger.body.alerts[0].labels.service }}", "nginx"),
            (
                "{{ trigger.body.alerts[0].labels | to_json_string }}",
                r#"{"service":"nginx","severity":"critical"}"#,
            ),
            ("{{ trigger.body.alerts | length }}", "1"),
            ("{{ '{\"a\": 1}' | from_json_string }}", "{'a': 1}"),
            ("{{ 'he said \"hi\"' | json_escape }}", r#"he said \"hi\""#),
            ("{{ 'nginx-1.2' | regex_match('nginx') }}", "True"),
            ("{{ 'xnginx' | regex_match('nginx') }}", "False"),
            ("{{ 'xnginx' | regex_search('nginx') }}", "True"),
            (
                "{{ 'v1.2.3' | regex_replace('v(\\\\d+)', 'version \\\\1') }}",
                "version 1.2.3",
            ),
            (
                "{{ 'id=42 id=7' | regex_substring('id=(\\\\d+)', 1) }}",
                "7",
            ),
            ("{{ trigger.n | to_human_time_from_seconds }}", "1h2m3s"),
            (
                "{{ trigger.path | basename }} {{ trigger.path | dirname }}",
                "error.log /var/log/nginx",
            ),
            ("{{ st2kv.system.threshold }}", "3"),
            ("{{ st2kv.system.missing }}", ""),
            (
                "{% if trigger.body.alerts[0].labels.severity == 'critical' %}page{% endif %}",
                "page",
            ),
        ] {
            assert_eq!(render(template, &ctx()).unwrap(), want, "{template}");
        }
    }

    #[test]
    fn errors_are_described() {
        assert!(check("{{ trigger.x ").unwrap_err().contains("syntax error"));
        let err = render("{{ 'x' | regex_search('(') }}", &ctx()).unwrap_err();
        assert!(err.contains("invalid regex"), "{err}");
        assert!(render("{{ trigger.missing.deeper }}", &ctx()).is_err());
    }

    #[test]
    fn render_value_walks_structures() {
        let v = json!({
            "svc": "{{ trigger.body.alerts[0].labels.service }}",
            "list": ["a", "{{ 1 + 1 }}", "n={{ 1 + 1 }}"],
            "labels": "{{ trigger.body.alerts[0].labels }}",
            "n": 5
        });
        assert_eq!(
            render_value(&v, &ctx()).unwrap(),
            json!({
                "svc": "nginx",
                "list": ["a", 2, "n=2"],
                "labels": {"service": "nginx", "severity": "critical"},
                "n": 5
            })
        );
        assert!(
            check_value(&json!({"x": ["{{ oops"]}))
                .unwrap_err()
                .starts_with("x: [0]: ")
        );
    }
}
