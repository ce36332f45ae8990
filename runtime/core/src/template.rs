//! Jinja templates, as StackStorm renders rule criteria patterns and action parameters.
//!
//! Rendering uses [minijinja] with StackStorm's custom filters added (from
//! `st2common/jinja/filters`): `to_json_string`, `to_yaml_string`, `from_json_string`,
//! `from_yaml_string`, `to_complex`, `json_escape`, `regex_match`, `regex_search`,
//! `regex_replace`, `regex_substring`, `to_human_time_from_seconds`, `use_none`, `basename`,
//! `dirname`, and `decrypt_kv`. The context is JSON: `trigger` (the trigger instance payload)
//! and the datastore, looked up on use ([`KeySource`]): `st2kv.system.<name>` (shared keys) and
//! `st2kv.user.<name>` (the keys of the user the template is rendered for). As in StackStorm, a
//! `secret` key reads as its ciphertext; `{{ st2kv.system.token | decrypt_kv }}` decrypts it.
//!
//! A value is a template when it contains `{{` or `{%`; anything else is returned unchanged.
//!
//! Every render is bounded ([`TemplateSettings`], `[templates]` in `squall.toml`): minijinja's
//! fuel (each instruction, each byte produced or allocated) caps the work — a loop of 10^10
//! iterations or `'a' * 100000000` runs out of fuel before it allocates — and a rendered string
//! longer than `max_output` bytes is refused. Either ends the render with an error naming the
//! setting.

use crate::config::TemplateSettings;
use minijinja::value::{Object, Serde};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value as Jinja};
use serde_json::Value;
use std::sync::{Arc, RwLock};

/// The datastore as templates see it. Core does no I/O: the server implements this over its
/// store and cipher. Any `Fn(&str) -> Option<String>` is a source of system-scope keys only.
pub trait KeySource: Send + Sync {
    /// The stored value of the system-scope key `name` (`st2kv.system.<name>`): the ciphertext
    /// for a secret; `None` when it does not exist or has expired.
    fn system(&self, name: &str) -> Option<String>;

    /// The stored value of the key `name` of the user templates are rendered for
    /// (`st2kv.user.<name>`). Default: none.
    fn user(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }

    /// Decrypts the ciphertext of a secret value (`decrypt_kv`).
    ///
    /// # Errors
    /// A message saying why (not a ciphertext, wrong key file, no cipher here). Default: no
    /// decryption available.
    fn decrypt(&self, ciphertext: &str) -> Result<String, String> {
        let _ = ciphertext;
        Err("decrypt_kv: secrets cannot be decrypted here".into())
    }
}

impl<F> KeySource for F
where
    F: Fn(&str) -> Option<String> + Send + Sync,
{
    fn system(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A shared [`KeySource`] (`st2kv` in templates, `st2kv()` in workflow expressions).
pub type KeyLookup = Arc<dyn KeySource>;

/// Whether `text` contains template syntax.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The environment every render uses, and the settings it was built with.
static ENV: RwLock<Option<(Arc<Environment<'static>>, TemplateSettings)>> = RwLock::new(None);

/// Sets the render budget of every later render in this process, Jinja and YAQL (the server
/// calls it with `[templates]` when its registry is built; until then
/// [`TemplateSettings::default`] applies). Process-wide: the last call wins.
pub fn configure(settings: &TemplateSettings) {
    crate::workflow::yaql::configure(settings.yaql_steps, settings.yaql_max_string);
    let env = Arc::new(build(settings));
    *ENV.write().unwrap_or_else(|e| e.into_inner()) = Some((env, settings.clone()));
}

fn environment() -> (Arc<Environment<'static>>, TemplateSettings) {
    if let Some(current) = ENV.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return current.clone();
    }
    let mut slot = ENV.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| {
        let settings = TemplateSettings::default();
        (Arc::new(build(&settings)), settings)
    })
    .clone()
}

fn build(settings: &TemplateSettings) -> Environment<'static> {
    {
        let mut env = Environment::new();
        env.set_fuel(Some(settings.fuel));
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
        env.add_filter("decrypt_kv", decrypt_kv);
        env
    }
}

/// The error of a render: fuel running out names the setting.
fn render_error(e: &Error, settings: &TemplateSettings) -> String {
    if e.kind() == ErrorKind::OutOfFuel {
        format!(
            "template stopped: it used up its budget of {} fuel ([templates] fuel; too many \
             loop iterations or too much data)",
            settings.fuel
        )
    } else {
        describe(e)
    }
}

/// Refuses a rendered string longer than `max_output`.
fn bounded(text: String, settings: &TemplateSettings) -> Result<String, String> {
    if text.len() as u64 > settings.max_output {
        Err(format!(
            "template output is {} bytes, over the limit of {} bytes ([templates] max_output)",
            text.len(),
            settings.max_output
        ))
    } else {
        Ok(text)
    }
}

/// Checks that `text` parses as a template.
///
/// # Errors
/// The parser's message (with line), e.g. `syntax error: unexpected end of input`.
pub fn check(text: &str) -> Result<(), String> {
    environment()
        .0
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

    /// Exposes the datastore as `st2kv.system` and `st2kv.user`, and lets `decrypt_kv` decrypt
    /// with it.
    pub fn with_keys(mut self, keys: KeyLookup) -> Context {
        self.set_keys(keys);
        self
    }

    /// [`Context::with_keys`] in place: the rules engine swaps in each rule's pack-bound
    /// datastore without copying the payload again.
    pub fn set_keys(&mut self, keys: KeyLookup) {
        self.keys = Some(keys);
    }

    fn to_jinja(&self) -> Jinja {
        let mut map: std::collections::BTreeMap<String, Jinja> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Jinja::from(Serde(v))))
            .collect();
        if let Some(keys) = &self.keys {
            let datastore = Jinja::from_object(Datastore {
                lookup: keys.clone(),
            });
            // `decrypt_kv` finds the cipher under a name no template uses, since workflow
            // expressions replace `st2kv` with Orquesta's `st2kv()` function.
            map.insert(DATASTORE_VAR.into(), datastore.clone());
            map.insert("st2kv".into(), datastore);
        }
        for (name, f) in &self.functions {
            map.insert(name.clone(), f.clone());
        }
        Jinja::from(map)
    }
}

/// Where `decrypt_kv` finds the datastore in the context.
const DATASTORE_VAR: &str = "__squall_datastore";

/// `st2kv`: `system` and `user` are its scopes; `decrypt_kv` finds the cipher here.
struct Datastore {
    lookup: KeyLookup,
}

impl std::fmt::Debug for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("st2kv")
    }
}

impl Object for Datastore {
    fn get_value(self: &Arc<Self>, key: &Jinja) -> Option<Jinja> {
        let user = match key.as_str()? {
            "system" => false,
            "user" => true,
            _ => return None,
        };
        Some(Jinja::from_object(KeyScope {
            lookup: self.lookup.clone(),
            user,
        }))
    }
}

/// `st2kv.system` or `st2kv.user`: attribute access looks the key up.
struct KeyScope {
    lookup: KeyLookup,
    user: bool,
}

impl std::fmt::Debug for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.user {
            "st2kv.user"
        } else {
            "st2kv.system"
        })
    }
}

impl Object for KeyScope {
    fn get_value(self: &Arc<Self>, key: &Jinja) -> Option<Jinja> {
        let name = key.as_str()?;
        let value = if self.user {
            self.lookup.user(name)
        } else {
            self.lookup.system(name)
        };
        value.map(Jinja::from)
    }
}

/// StackStorm's `decrypt_kv`: the plaintext of a secret key's value, read as
/// `{{ st2kv.system.name | decrypt_kv }}`. A missing key (undefined or empty) is an error, as
/// in StackStorm, rather than an empty secret.
fn decrypt_kv(state: &minijinja::State, value: Jinja) -> Result<String, Error> {
    let text = value.as_str().unwrap_or_default();
    if value.is_undefined() || value.is_none() || text.is_empty() {
        return Err(bad(
            "decrypt_kv: the datastore item does not exist or is empty".into(),
        ));
    }
    let datastore = state
        .lookup(DATASTORE_VAR)
        .and_then(|v| v.downcast_object::<Datastore>())
        .ok_or_else(|| bad("decrypt_kv: the datastore is not available here".into()))?;
    datastore.lookup.decrypt(text).map_err(bad)
}

/// Renders `text` to a string.
///
/// # Errors
/// The renderer's message, e.g. `undefined value` or a filter's error.
pub fn render(text: &str, ctx: &Context) -> Result<String, String> {
    deep_stack_if_needed(text, || {
        let (env, settings) = environment();
        let text = env
            .render_str(text, ctx.to_jinja())
            .map_err(|e| render_error(&e, &settings))?;
        bounded(text, &settings)
    })
}

/// Stack of the thread a template using `namespace` renders on: virtual, touched only as deep
/// as its values nest.
const DEEP_STACK: usize = 1 << 30;

/// Runs `render` on its own thread with [`DEEP_STACK`] when `text` uses `namespace`.
///
/// A `namespace` is the one way a template carries a value from one loop pass to the next, so
/// `{% set ns.x = [ns.x] %}` in a loop nests a list one level deeper per pass: within the fuel
/// budget, deep enough that displaying or dropping it would overflow a normal thread's stack
/// and abort the process. Such a value never leaves the render (its output is a string, or a
/// value checked against [`crate::json::max_depth`]), so the big stack bounds it whole.
fn deep_stack_if_needed<T: Send>(
    text: &str,
    render: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    if !text.contains("namespace") {
        return render();
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("squall-template".into())
            .stack_size(DEEP_STACK)
            .spawn_scoped(scope, render)
            .map_err(|e| format!("cannot start a thread to render the template: {e}"))?
            .join()
            .map_err(|_| "rendering the template panicked".to_string())?
    })
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
        Some(expr) => deep_stack_if_needed(text, || {
            let (env, settings) = environment();
            let compiled = env.compile_expression(expr).map_err(|e| describe(&e))?;
            let value = compiled
                .eval(ctx.to_jinja())
                .map_err(|e| render_error(&e, &settings))?;
            if value.is_undefined() {
                return Ok(Value::String(String::new()));
            }
            if let Some(text) = value.as_str() {
                bounded(text.to_string(), &settings)?;
            }
            let value = serde_json::to_value(&value).map_err(|e| e.to_string())?;
            // It lands in a stored record: nested too deep, that could not be read back.
            crate::json::check_value_depth(&value)?;
            Ok(value)
        }),
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

/// A fake datastore for the template and workflow-expression tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::KeySource;

    /// System keys `threshold` = 3, `region` = eu and the secret `token` (ciphertext
    /// `ENC(hunter2)`), the user's key `editor` = vim; decrypts `ENC(x)` to `x`.
    pub(crate) struct Keys;

    impl KeySource for Keys {
        fn system(&self, name: &str) -> Option<String> {
            match name {
                "threshold" => Some("3".into()),
                "region" => Some("eu".into()),
                "token" => Some("ENC(hunter2)".into()),
                _ => None,
            }
        }

        fn user(&self, name: &str) -> Option<String> {
            (name == "editor").then(|| "vim".into())
        }

        fn decrypt(&self, ciphertext: &str) -> Result<String, String> {
            ciphertext
                .strip_prefix("ENC(")
                .and_then(|c| c.strip_suffix(')'))
                .map(str::to_string)
                .ok_or_else(|| format!("{ciphertext:?} is not a ciphertext"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Keys;
    use super::*;
    use serde_json::json;

    #[test]
    fn every_render_is_bounded_by_fuel_and_output_size() {
        let ctx = Context::empty();
        // 10^10 iterations, and 100 MB strings: each stops on fuel, before the work is done.
        for text in [
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            "{{ 'a' * 100000000 }}",
            "{% set s = 'a' * 50000000 %}{{ s ~ s }}",
        ] {
            let started = std::time::Instant::now();
            let e = render_typed(text, &ctx).unwrap_err();
            assert!(e.contains("[templates] fuel"), "{text}: {e}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{text}"
            );
        }
        // A value nested one level deeper per loop pass (100,000 levels): displayed and dropped
        // without exhausting the stack (this aborted the process before).
        let nest = "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}\
                    {% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}";
        match render_typed(nest, &ctx) {
            Ok(Value::String(text)) => assert!(text.starts_with("[[[[") && text.len() <= 1 << 20),
            other => assert!(other.is_err(), "{other:?}"),
        }
        let settings = TemplateSettings::default();
        let e = bounded("y".repeat(2 << 20), &settings).unwrap_err();
        assert!(e.contains("[templates] max_output"), "{e}");
        assert_eq!(render("{{ 'ab' * 3 }}", &ctx).unwrap(), "ababab");
    }

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
    fn datastore_scopes_and_decrypt_kv() {
        let ctx = Context::empty().with_keys(Arc::new(Keys));
        for (template, want) in [
            ("{{ st2kv.system.threshold }}", Ok("3")),
            ("{{ st2kv.user.editor }}", Ok("vim")),
            ("{{ st2kv.user.threshold }}", Ok("")),
            ("{{ st2kv.system.editor }}", Ok("")),
            ("{{ st2kv.system.token }}", Ok("ENC(hunter2)")),
            ("{{ st2kv.system.token | decrypt_kv }}", Ok("hunter2")),
            ("x{{ st2kv.system.token | decrypt_kv }}x", Ok("xhunter2x")),
            ("{{ st2kv.pack.token }}", Err("st2kv.pack` is undefined")),
            (
                "{{ st2kv.system.threshold | decrypt_kv }}",
                Err("\"3\" is not a ciphertext"),
            ),
            (
                "{{ st2kv.system.missing | decrypt_kv }}",
                Err("does not exist or is empty"),
            ),
        ] {
            match (render(template, &ctx), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{template}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{template}: {got}"),
                (got, want) => panic!("{template}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            render_typed("{{ st2kv.system.token | decrypt_kv }}", &ctx).unwrap(),
            json!("hunter2")
        );
        // A plain lookup function serves the system scope only, and cannot decrypt.
        let err = render(
            "{{ st2kv.system.threshold | decrypt_kv }}",
            &super::tests::ctx(),
        );
        assert!(err.unwrap_err().contains("cannot be decrypted here"));
        assert!(
            render("{{ 'x' | decrypt_kv }}", &Context::empty())
                .unwrap_err()
                .contains("datastore is not available")
        );
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
