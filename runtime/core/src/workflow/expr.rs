//! Workflow expressions: YAQL `<% %>` and Jinja `{{ }}` inside any string of a workflow value,
//! with Orquesta's workflow functions.
//!
//! - A string that is exactly one expression evaluates to that expression's JSON value (a list
//!   stays a list); a string with text around expressions is interpolated (non-strings as JSON);
//!   a string with Jinja statements (`{% %}`) is rendered as a template. Lists and objects are
//!   evaluated through.
//! - Functions, as Orquesta's (`orquesta/expressions/functions/workflow.py`): `ctx()`,
//!   `ctx(name)`, `result()`, `item()`, `item(name)`, `succeeded()`, `failed()`, `completed()`,
//!   `task_status(name)`, `st2kv('system.key', decrypt=true)` (also `user.key`: the keys of
//!   the user the workflow runs as); in Jinja also `json(text)`, `zip(a, b, ...)`
//!   and `_` for the context. YAQL brings its own `json`, `zip`, `len`, ... (see [`super::yaql`]).
//! - Errors read like Orquesta's: `YaqlEvaluationException: Unable to evaluate expression
//!   '<% ctx(foo) %>'. VariableUndefinedError: The variable "foo" is undefined.`

use super::yaql::{Expression, YaqlHost};
use crate::execution::ExecutionStatus;
use crate::template::{self, KeyLookup};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The task an expression is evaluated for (in `next.when`, `publish`, `retry.when`).
#[derive(Debug, Clone)]
pub struct CurrentTask {
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: ExecutionStatus,
    /// Its result (`result()`): the action's result, or the list of item results.
    pub result: Value,
}

/// What a workflow expression sees.
#[derive(Clone, Default)]
pub struct Scope {
    /// The context, `ctx()`.
    pub ctx: Map<String, Value>,
    /// The current task, if any.
    pub current: Option<CurrentTask>,
    /// The current item of a with-items task, `item()`.
    pub item: Option<Value>,
    /// The latest status of each task that ran, for `task_status(name)`.
    pub statuses: HashMap<String, ExecutionStatus>,
    /// The datastore, for `st2kv(key)`.
    pub keys: Option<KeyLookup>,
}

/// An expression that did not parse or evaluate; the message reads like Orquesta's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

/// Whether `text` contains an expression (`<% %>`, `{{ }}` or `{% %}`).
pub fn is_expression(text: &str) -> bool {
    text.contains("<%") || template::is_template(text)
}

/// Whether a value is abended (`failed()`): failed, timed out or abandoned.
pub fn is_abended(status: ExecutionStatus) -> bool {
    matches!(
        status,
        ExecutionStatus::Failed | ExecutionStatus::Timeout | ExecutionStatus::Abandoned
    )
}

impl Scope {
    /// Calls a workflow function.
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        let arg = |i: usize| args.get(i).and_then(Value::as_str);
        let current = || {
            self.current.as_ref().ok_or_else(|| {
                format!(
                    "{name}() is only available where a task has completed (next, publish, retry)"
                )
            })
        };
        match name {
            "ctx" => match args.first() {
                None => Ok(Value::Object(self.ctx.clone())),
                Some(Value::String(var)) => self.ctx.get(var).cloned().ok_or_else(|| {
                    format!("VariableUndefinedError: The variable \"{var}\" is undefined.")
                }),
                Some(other) => Err(format!("ctx() takes a variable name, not {other}")),
            },
            "result" => Ok(self
                .current
                .as_ref()
                .map(|c| c.result.clone())
                .unwrap_or(Value::Null)),
            "item" => {
                let item = self
                    .item
                    .as_ref()
                    .ok_or("item() is only available in a task with items")?;
                match arg(0) {
                    None => Ok(item.clone()),
                    Some(var) => item.get(var).cloned().ok_or_else(|| {
                        format!(
                            "ItemVariableUndefinedError: The item variable \"{var}\" is undefined."
                        )
                    }),
                }
            }
            "succeeded" => Ok(Value::Bool(current()?.status == ExecutionStatus::Succeeded)),
            "failed" => Ok(Value::Bool(is_abended(current()?.status))),
            "completed" => Ok(Value::Bool(current()?.status.is_completed())),
            "task_status" => {
                let task = arg(0).ok_or("task_status() takes a task name")?;
                Ok(self
                    .statuses
                    .get(task)
                    .map(|s| Value::String(s.to_string()))
                    .unwrap_or(Value::Null))
            }
            "task" => {
                let task = arg(0).ok_or("task() takes a task name")?;
                let status = self.statuses.get(task).map(|s| s.to_string());
                Ok(serde_json::json!({"id": task, "status": status}))
            }
            "st2kv" => {
                // Orquesta's st2kv(key, decrypt=false): `system.<name>`, `user.<name>` (the keys
                // of the user the workflow runs as) or a bare system name. YAQL passes
                // `decrypt => true` positionally; Jinja passes `decrypt=true` as a map.
                let key = arg(0).ok_or("st2kv() takes a key such as 'system.name'")?;
                let decrypt = match args.get(1) {
                    Some(Value::Bool(b)) => *b,
                    Some(Value::Object(kw)) => kw.get("decrypt").is_some_and(truthy),
                    Some(other) => truthy(other),
                    None => false,
                };
                let lookup = self
                    .keys
                    .as_ref()
                    .ok_or("the datastore is not available here")?;
                let found = match key.strip_prefix("user.") {
                    Some(name) => lookup.user(name),
                    None => lookup.system(key.strip_prefix("system.").unwrap_or(key)),
                };
                let value = found.ok_or_else(|| {
                    format!("The key \"{key}\" does not exist in the StackStorm datastore.")
                })?;
                if decrypt {
                    lookup.decrypt(&value).map(Value::String)
                } else {
                    Ok(Value::String(value))
                }
            }
            "json" => {
                let text = arg(0).ok_or("json() takes a JSON string")?;
                serde_json::from_str(text).map_err(|e| format!("json(): {e}"))
            }
            "zip" => {
                let lists: Vec<&Vec<Value>> = args
                    .iter()
                    .map(|a| a.as_array().ok_or("zip() takes lists"))
                    .collect::<Result<_, _>>()?;
                let n = lists.iter().map(|l| l.len()).min().unwrap_or(0);
                Ok(Value::Array(
                    (0..n)
                        .map(|i| Value::Array(lists.iter().map(|l| l[i].clone()).collect()))
                        .collect(),
                ))
            }
            other => Err(format!("unknown function {other}()")),
        }
    }
}

struct Host<'a>(&'a Scope);

impl YaqlHost for Host<'_> {
    fn root(&self) -> Value {
        Value::Object(self.0.ctx.clone())
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        self.0.call(name, args)
    }
}

/// Parsed YAQL expressions by source text; cleared when it grows past a bound.
fn parsed(source: &str) -> Result<Arc<Expression>, ExprError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Expression>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(e) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(source) {
        return Ok(e.clone());
    }
    let expr = Arc::new(Expression::parse(source).map_err(|e| {
        ExprError(format!(
            "YaqlEvaluationException: Unable to parse expression '<% {} %>'. {e}",
            source.trim()
        ))
    })?);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= 4096 {
        map.clear();
    }
    map.insert(source.to_string(), expr.clone());
    Ok(expr)
}

/// A piece of an expression string.
enum Segment<'a> {
    Text(&'a str),
    Yaql(&'a str),
    Jinja(&'a str),
}

/// Splits `text` into literal text and `<% %>` / `{{ }}` expressions.
fn segments(text: &str) -> Result<Vec<Segment<'_>>, ExprError> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = [("<%", "%>"), ("{{", "}}")]
            .into_iter()
            .filter_map(|(o, c)| rest.find(o).map(|i| (i, o, c)))
            .min_by_key(|(i, _, _)| *i);
        let Some((start, open, close)) = next else {
            if !rest.is_empty() {
                out.push(Segment::Text(rest));
            }
            return Ok(out);
        };
        if start > 0 {
            out.push(Segment::Text(&rest[..start]));
        }
        let body = &rest[start + 2..];
        let end = body.find(close).ok_or_else(|| {
            ExprError(format!(
                "unterminated expression: {open} without {close} in {text:?}"
            ))
        })?;
        out.push(if open == "<%" {
            Segment::Yaql(&body[..end])
        } else {
            Segment::Jinja(&body[..end])
        });
        rest = &body[end + 2..];
    }
}

fn yaql(source: &str, scope: &Scope) -> Result<Value, ExprError> {
    parsed(source)?.evaluate(&Host(scope)).map_err(|e| {
        ExprError(format!(
            "YaqlEvaluationException: Unable to evaluate expression '<% {} %>'. {e}",
            source.trim()
        ))
    })
}

fn jinja_context(scope: &Arc<Scope>) -> template::Context {
    let mut ctx = template::Context::empty().with("_", Value::Object(scope.ctx.clone()));
    if let Some(keys) = &scope.keys {
        ctx = ctx.with_keys(keys.clone());
    }
    // YAQL has json() and zip() built in; Jinja gets them here.
    for &name in super::yaql::WORKFLOW_FUNCTIONS
        .iter()
        .chain(&["json", "zip"])
    {
        let scope = scope.clone();
        let f = minijinja::Value::from_function(
            move |args: minijinja::value::Rest<minijinja::Value>,
                  kwargs: minijinja::value::Kwargs|
                  -> Result<minijinja::Value, minijinja::Error> {
                let mut args: Vec<Value> = args
                    .iter()
                    .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
                    .collect();
                // Keyword arguments (`st2kv(key, decrypt=true)`) come last, as one map.
                let mut named = Map::new();
                for k in kwargs.args() {
                    let v: minijinja::Value = kwargs.get(k)?;
                    named.insert(
                        k.to_string(),
                        serde_json::to_value(&v).unwrap_or(Value::Null),
                    );
                }
                if !named.is_empty() {
                    args.push(Value::Object(named));
                }
                scope
                    .call(name, &args)
                    .map(|v| minijinja::Value::from(minijinja::value::Serde(v)))
                    .map_err(|m| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, m))
            },
        );
        ctx = ctx.with_function(name, f);
    }
    ctx
}

fn jinja(text: &str, scope: &Arc<Scope>) -> Result<Value, ExprError> {
    template::render_typed(text, &jinja_context(scope)).map_err(|e| {
        ExprError(format!(
            "JinjaEvaluationException: Unable to render expression '{}'. {e}",
            text.trim()
        ))
    })
}

/// Evaluates one string: typed when it is exactly one expression, else interpolated.
///
/// # Errors
/// [`ExprError`] for the first expression that does not parse or evaluate.
pub fn evaluate_str(text: &str, scope: &Arc<Scope>) -> Result<Value, ExprError> {
    let value = evaluate_text(text, scope)?;
    // Results land in the stored workflow state: nested too deep, it could not be read back
    // (a `publish: x=<% [$.x] %>` in a loop nests one level more per pass).
    crate::json::check_value_depth(&value).map_err(ExprError)?;
    Ok(value)
}

fn evaluate_text(text: &str, scope: &Arc<Scope>) -> Result<Value, ExprError> {
    if !is_expression(text) {
        return Ok(Value::String(text.to_string()));
    }
    if text.contains("{%") {
        // A Jinja template with statements; YAQL inside it is evaluated first.
        let mut pre = String::new();
        for seg in segments(text)? {
            match seg {
                Segment::Text(t) => pre.push_str(t),
                Segment::Jinja(j) => {
                    pre.push_str("{{");
                    pre.push_str(j);
                    pre.push_str("}}");
                }
                Segment::Yaql(y) => pre.push_str(&interpolate(yaql(y, scope)?)),
            }
        }
        return jinja(&pre, scope).map(|v| match v {
            Value::String(s) => Value::String(s),
            other => Value::String(interpolate(other)),
        });
    }
    let segs = segments(text)?;
    let only = segs
        .iter()
        .filter(|s| !matches!(s, Segment::Text(t) if t.trim().is_empty()));
    let exprs: Vec<&Segment> = only.collect();
    if exprs.len() == 1 {
        match exprs[0] {
            Segment::Yaql(y) => return yaql(y, scope),
            Segment::Jinja(j) => return jinja(&format!("{{{{{j}}}}}"), scope),
            Segment::Text(_) => {}
        }
    }
    let mut out = String::new();
    for seg in segs {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Yaql(y) => out.push_str(&interpolate(yaql(y, scope)?)),
            Segment::Jinja(j) => out.push_str(&interpolate(jinja(&format!("{{{{{j}}}}}"), scope)?)),
        }
    }
    Ok(Value::String(out))
}

fn interpolate(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Evaluates every expression string inside `value` (through lists and objects).
///
/// # Errors
/// The first [`ExprError`].
pub fn evaluate(value: &Value, scope: &Arc<Scope>) -> Result<Value, ExprError> {
    match value {
        Value::String(s) => evaluate_str(s, scope),
        Value::Array(items) => items
            .iter()
            .map(|v| evaluate(v, scope))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), evaluate(v, scope)?)))
            .collect::<Result<Map<_, _>, ExprError>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Whether a value is true for a `when`: YAQL/Python truthiness (null, false, 0, "", [] and
/// {} are false), for YAQL and Jinja alike.
pub use super::yaql::truthy;

/// Checks that every expression inside `value` parses.
///
/// # Errors
/// The first [`ExprError`].
pub fn check(value: &Value) -> Result<(), ExprError> {
    match value {
        Value::String(s) if is_expression(s) => {
            for seg in segments(s)? {
                match seg {
                    Segment::Yaql(y) => {
                        parsed(y)?;
                    }
                    Segment::Jinja(j) => template::check(&format!("{{{{{j}}}}}")).map_err(|e| {
                        ExprError(format!(
                            "JinjaEvaluationException: Unable to parse expression '{{{{{j}}}}}'. {e}"
                        ))
                    })?,
                    Segment::Text(_) => {}
                }
            }
            if s.contains("{%") {
                template::check(s)
                    .map_err(|e| ExprError(format!("JinjaEvaluationException: {e}")))?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check),
        Value::Object(map) => map.values().try_for_each(check),
        _ => Ok(()),
    }
}

/// The context variables the expressions inside `value` read (`ctx(x)`, `ctx().x`, `$.x`,
/// Jinja's `ctx('x')`, `ctx().x`, `_.x`), for inspection. Expressions that do not parse read
/// nothing (they are reported by [`check`]).
pub fn context_references(value: &Value) -> Vec<String> {
    static JINJA: OnceLock<regex::Regex> = OnceLock::new();
    let re = JINJA.get_or_init(|| {
        regex::Regex::new(r#"ctx\(\s*['"](\w+)['"]\s*\)|ctx\(\)\.(\w+)|ctx\(\)\[\s*['"](\w+)['"]\s*\]|\b_\.(\w+)"#)
            .expect("valid regex")
    });
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if is_expression(s) => {
                let Ok(segs) = segments(s) else { continue };
                for seg in segs {
                    match seg {
                        Segment::Yaql(y) => {
                            if let Ok(e) = parsed(y) {
                                e.context_references().into_iter().for_each(&mut add);
                            }
                        }
                        Segment::Jinja(j) => {
                            for c in re.captures_iter(j) {
                                if let Some(m) = c.iter().skip(1).flatten().next() {
                                    add(m.as_str().to_string());
                                }
                            }
                        }
                        Segment::Text(_) => {}
                    }
                }
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::fake::Keys;
    use serde_json::json;

    fn scope() -> Arc<Scope> {
        let mut statuses = HashMap::new();
        statuses.insert("t1".to_string(), ExecutionStatus::Succeeded);
        Arc::new(Scope {
            ctx: json!({"a": 1, "l": [1, 2, 3], "name": "web"})
                .as_object()
                .unwrap()
                .clone(),
            current: Some(CurrentTask {
                name: "t1".into(),
                status: ExecutionStatus::Failed,
                result: json!({"code": 500}),
            }),
            item: Some(json!({"host": "h1"})),
            statuses,
            keys: Some(Arc::new(Keys)),
        })
    }

    #[test]
    fn expressions_evaluate_with_workflow_functions() {
        let s = scope();
        for (text, want) in [
            ("<% ctx(a) %>", json!(1)),
            ("<% ctx().l %>", json!([1, 2, 3])),
            ("{{ ctx('l') }}", json!([1, 2, 3])),
            ("{{ ctx().name }}", json!("web")),
            ("{{ _.a + 1 }}", json!(2)),
            ("<% result().code %>", json!(500)),
            ("{{ result().code }}", json!(500)),
            ("<% failed() %>", json!(true)),
            ("{{ succeeded() }}", json!(false)),
            ("<% completed() %>", json!(true)),
            ("<% task_status(t1) %>", json!("succeeded")),
            ("{{ task_status('t2') }}", json!(null)),
            ("<% item(host) %>", json!("h1")),
            ("{{ item().host }}", json!("h1")),
            ("<% st2kv('system.region') %>", json!("eu")),
            ("{{ st2kv('system.region') }}", json!("eu")),
            ("<% st2kv('region') %>", json!("eu")),
            ("<% st2kv('user.editor') %>", json!("vim")),
            ("{{ st2kv('user.editor') }}", json!("vim")),
            ("<% st2kv('system.token') %>", json!("ENC(hunter2)")),
            (
                "<% st2kv('system.token', decrypt => true) %>",
                json!("hunter2"),
            ),
            (
                "{{ st2kv('system.token', decrypt=true) }}",
                json!("hunter2"),
            ),
            (
                "{{ st2kv('system.token', decrypt=false) }}",
                json!("ENC(hunter2)"),
            ),
            ("{{ st2kv('system.token') | decrypt_kv }}", json!("hunter2")),
            ("{{ zip([1, 2], ['a', 'b']) }}", json!([[1, "a"], [2, "b"]])),
            ("{{ json('{\"x\": 3}').x }}", json!(3)),
            ("host-<% ctx(name) %>-{{ ctx('a') }}", json!("host-web-1")),
            ("  <% ctx(a) %>  ", json!(1)),
            ("{% for x in ctx('l') %}{{ x }}{% endfor %}", json!("123")),
            ("plain", json!("plain")),
        ] {
            assert_eq!(evaluate_str(text, &s).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn errors_read_like_orquesta() {
        let s = scope();
        assert_eq!(
            evaluate_str("<% ctx(nope) %>", &s).unwrap_err().0,
            "YaqlEvaluationException: Unable to evaluate expression '<% ctx(nope) %>'. \
             VariableUndefinedError: The variable \"nope\" is undefined."
        );
        let e = evaluate_str("{{ ctx('nope') }}", &s).unwrap_err().0;
        assert!(
            e.starts_with(
                "JinjaEvaluationException: Unable to render expression '{{ ctx('nope') }}'."
            ),
            "{e}"
        );
        assert!(e.contains("The variable \"nope\" is undefined"), "{e}");
        assert!(
            evaluate_str("<% st2kv('system.x') %>", &s)
                .unwrap_err()
                .0
                .contains("does not exist")
        );
        assert!(
            evaluate_str("<% st2kv('system.region', decrypt => true) %>", &s)
                .unwrap_err()
                .0
                .contains("\"eu\" is not a ciphertext")
        );
        assert!(
            evaluate_str("<% ctx(a)", &s)
                .unwrap_err()
                .0
                .contains("unterminated")
        );
    }

    #[test]
    fn values_evaluate_through_lists_and_objects() {
        let v = json!({"x": ["<% ctx(a) %>", {"y": "{{ ctx('name') }}"}], "n": 3});
        assert_eq!(
            evaluate(&v, &scope()).unwrap(),
            json!({"x": [1, {"y": "web"}], "n": 3})
        );
    }

    #[test]
    fn references_and_checks_for_inspection() {
        let v = json!([
            "<% ctx(a) + ctx().b %>",
            "{{ ctx('c') }} {{ _.d }} {{ ctx().e }}"
        ]);
        assert_eq!(context_references(&v), ["a", "b", "c", "d", "e"]);
        assert!(check(&json!("{{ ctx( }}")).is_err());
        assert!(check(&json!({"k": "<% ctx(a) %>"})).is_ok());
        for (v, want) in [
            (json!(null), false),
            (json!(0), false),
            (json!("x"), true),
            (json!([]), false),
            (json!({"a": 1}), true),
        ] {
            assert_eq!(truthy(&v), want, "{v}");
        }
    }
}
