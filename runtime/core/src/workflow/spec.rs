//! The Orquesta workflow language (v1.0, as StackStorm documents it), parsed into a
//! [`WorkflowSpec`].
//!
//! ```yaml
//! version: 1.0
//! description: Deploy to canaries, then to production.
//! input:                         # names, optionally with defaults (expressions allowed)
//!   - app
//!   - version: latest
//! vars:                          # evaluated in order after input
//!   - attempts: 0
//! tasks:
//!   deploy:
//!     action: core.http url=<% ctx(url) %> method=POST   # inline k=v parameters allowed
//!     input: {body: "{{ ctx('app') }}"}
//!     with: {items: host in <% ctx(hosts) %>, concurrency: 2}
//!     retry: {when: <% failed() %>, count: 2, delay: 1}
//!     delay: 5                   # seconds before the action is scheduled
//!     join: all                  # or a count of inbound branches
//!     next:
//!       - when: <% succeeded() %>
//!         publish: [{status: <% result().status_code %>}]   # or "k=v k2=v2"
//!         do: [check, notify]    # or "check, notify"; engine commands: continue, fail, noop, retry
//! output:
//!   - status: <% ctx(status) %>
//! ```
//!
//! Parsing checks the shape of every field and reports the first problem as a
//! [`WorkflowError`] naming the field (`tasks.deploy.next[0].do`); the deeper checks (targets,
//! expressions, variables) are [`mod@super::inspect`]'s.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// Orquesta's engine commands, usable in `do` and reserved as task names.
pub const ENGINE_COMMANDS: [&str; 4] = ["continue", "fail", "noop", "retry"];

/// A problem in a workflow definition, naming the field (`tasks.t1.next[0].do`, empty for the
/// whole file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct WorkflowError {
    /// The field, dotted with `[i]` list indexes.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl WorkflowError {
    pub(crate) fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        WorkflowError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A workflow input: a name and, optionally, its default (which may be an expression).
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The input's name.
    pub name: String,
    /// Its default; without one a missing input is `null`, as Orquesta.
    pub default: Option<Value>,
}

/// `join`: wait for every inbound branch, or for a count of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// `join: all`.
    All,
    /// `join: <n>`.
    Count(usize),
}

/// `with`: run the action once per item.
#[derive(Debug, Clone, PartialEq)]
pub struct WithItems {
    /// Names given in `x in <expr>` / `x, y in <% zip(...) %>`; empty when only an expression is
    /// given (then `item()` is the item itself).
    pub vars: Vec<String>,
    /// The items expression (evaluates to a list; with several names, a list of lists).
    pub items: Value,
    /// At most this many items run at once (an integer or an expression); all when absent.
    pub concurrency: Option<Value>,
}

/// `retry`: run the task again when it completes and `when` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySpec {
    /// Condition (an expression); without one, retry when the task failed.
    pub when: Option<String>,
    /// Number of retries (not attempts): an integer or an expression.
    pub count: Value,
    /// Seconds to wait before each retry: an integer or an expression.
    pub delay: Option<Value>,
}

/// One entry of a task's `next`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The condition (an expression); always taken when absent.
    pub when: Option<String>,
    /// Variables published into the context, evaluated in order.
    pub publish: Vec<(String, Value)>,
    /// Tasks or engine commands to go to; `continue` when `do` is not given (Orquesta's
    /// default).
    pub targets: Vec<String>,
}

/// One task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// Its name.
    pub name: String,
    /// The action's ref (or an expression giving it); `None` for an action-less task, which
    /// succeeds at once with a `null` result.
    pub action: Option<String>,
    /// `k=v` parameters written inline after the action ref, in order.
    pub inline_input: Vec<(String, Value)>,
    /// `input`: the action's parameters (values may be expressions); wins over inline ones.
    pub input: Map<String, Value>,
    /// `next`.
    pub next: Vec<Transition>,
    /// `join`.
    pub join: Option<Join>,
    /// `with`.
    pub with: Option<WithItems>,
    /// `retry` (also set by a `do: retry` transition: `when` its condition or `completed()`,
    /// count 3, as Orquesta's composer does).
    pub retry: Option<RetrySpec>,
    /// `delay`: seconds, an integer or an expression.
    pub delay: Option<Value>,
}

/// The task graph, derived from the transitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// Tasks with no inbound transition: they start the workflow.
    pub roots: Vec<usize>,
    /// For each task, the inbound transitions as (from task, transition index).
    pub inbound: Vec<Vec<(usize, usize)>>,
    /// Whether a task is in a cycle (reachable from itself).
    pub in_cycle: Vec<bool>,
}

impl Graph {
    /// Whether a task is reached by more than one transition and is not a join: it then runs
    /// once per route that reaches it (Orquesta's split).
    pub fn is_split(&self, spec: &WorkflowSpec, task: usize) -> bool {
        spec.tasks[task].join.is_none() && self.inbound[task].len() > 1
    }

    /// The distinct tasks with a transition into `task`, in first-seen order.
    pub fn inbound_tasks(&self, task: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for (from, _) in &self.inbound[task] {
            if !out.contains(from) {
                out.push(*from);
            }
        }
        out
    }
}

/// A parsed workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowSpec {
    /// `version` (only `1.0` is accepted).
    pub version: String,
    /// `description`.
    pub description: String,
    /// `input`, in order.
    pub input: Vec<InputSpec>,
    /// `vars`, in order.
    pub vars: Vec<(String, Value)>,
    /// `output`, in order.
    pub output: Vec<(String, Value)>,
    /// `tasks`, in file order.
    pub tasks: Vec<TaskSpec>,
    /// The task graph.
    pub graph: Graph,
    index: HashMap<String, usize>,
}

/// A YAML mapping kept in file order.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    version: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    vars: Option<Value>,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    tasks: Option<Ordered>,
}

const TASK_KEYS: [&str; 8] = [
    "action",
    "input",
    "next",
    "join",
    "with",
    "retry",
    "delay",
    "description",
];

impl WorkflowSpec {
    /// Parses a workflow definition.
    ///
    /// # Errors
    /// [`WorkflowError`] naming the field: YAML syntax, an unknown key, a version other than
    /// `1.0`, no tasks, a reserved or malformed task name, a field of the wrong shape.
    pub fn parse(text: &str) -> Result<WorkflowSpec, WorkflowError> {
        let raw: RawWorkflow = serde_saphyr::from_str(text).map_err(|e| {
            let m = e.to_string();
            WorkflowError::at("", m.strip_prefix("error: ").unwrap_or(&m).to_string())
        })?;
        let version = match &raw.version {
            Value::Number(n) if n.as_f64() == Some(1.0) => "1.0".to_string(),
            Value::String(s) if s == "1.0" || s == "1" => "1.0".to_string(),
            other => {
                return Err(WorkflowError::at(
                    "version",
                    format!("unsupported version {other}; Orquesta workflows are version 1.0"),
                ));
            }
        };
        let input = match &raw.input {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => named_list(v, "input", true)?
                .into_iter()
                .map(|(name, default)| InputSpec { name, default })
                .collect(),
        };
        let vars = match &raw.vars {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => named_values(v, "vars")?,
        };
        let output = match &raw.output {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => named_values(v, "output")?,
        };
        let Some(Ordered(raw_tasks)) = raw.tasks else {
            return Err(WorkflowError::at(
                "tasks",
                "missing: a workflow needs tasks",
            ));
        };
        if raw_tasks.is_empty() {
            return Err(WorkflowError::at(
                "tasks",
                "a workflow needs at least one task",
            ));
        }
        let mut tasks = Vec::new();
        let mut index = HashMap::new();
        for (name, body) in raw_tasks {
            let task = parse_task(&name, &body)?;
            index.insert(name, tasks.len());
            tasks.push(task);
        }
        let mut spec = WorkflowSpec {
            version,
            description: raw.description.unwrap_or_default(),
            input,
            vars,
            output,
            tasks,
            graph: Graph::default(),
            index,
        };
        spec.graph = spec.compose_graph();
        Ok(spec)
    }

    /// A task's index by name.
    pub fn task_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn compose_graph(&self) -> Graph {
        let n = self.tasks.len();
        let mut inbound = vec![Vec::new(); n];
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (from, task) in self.tasks.iter().enumerate() {
            for (t, transition) in task.next.iter().enumerate() {
                for target in &transition.targets {
                    if let Some(to) = self.task_index(target) {
                        inbound[to].push((from, t));
                        edges[from].push(to);
                    }
                }
            }
        }
        let roots = (0..n).filter(|i| inbound[*i].is_empty()).collect();
        let in_cycle = (0..n)
            .map(|start| {
                let mut seen = vec![false; n];
                let mut stack = edges[start].clone();
                while let Some(i) = stack.pop() {
                    if i == start {
                        return true;
                    }
                    if !std::mem::replace(&mut seen[i], true) {
                        stack.extend(&edges[i]);
                    }
                }
                false
            })
            .collect();
        Graph {
            roots,
            inbound,
            in_cycle,
        }
    }
}

/// `input`-style lists: each entry a bare name or a one-key mapping `name: value`; a mapping is
/// accepted too (then in name order).
fn named_list(
    v: &Value,
    field: &str,
    bare_names: bool,
) -> Result<Vec<(String, Option<Value>)>, WorkflowError> {
    let mut out: Vec<(String, Option<Value>)> = Vec::new();
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("{field}[{i}]");
                match item {
                    Value::String(name) if bare_names => out.push((name.clone(), None)),
                    Value::Object(m) if m.len() == 1 => {
                        let (k, v) = m.iter().next().expect("one entry");
                        out.push((k.clone(), Some(v.clone())));
                    }
                    _ => {
                        let want = if bare_names {
                            "a name or a one-key mapping name: default"
                        } else {
                            "a one-key mapping name: value"
                        };
                        return Err(WorkflowError::at(at, format!("expected {want}")));
                    }
                }
            }
        }
        Value::Object(m) => out.extend(m.iter().map(|(k, v)| (k.clone(), Some(v.clone())))),
        _ => return Err(WorkflowError::at(field, "expected a list")),
    }
    for (i, (name, _)) in out.iter().enumerate() {
        check_var_name(name).map_err(|m| WorkflowError::at(format!("{field}[{i}]"), m))?;
        if out[..i].iter().any(|(n, _)| n == name) {
            return Err(WorkflowError::at(
                format!("{field}[{i}]"),
                format!("{name:?} is given twice"),
            ));
        }
    }
    Ok(out)
}

fn named_values(v: &Value, field: &str) -> Result<Vec<(String, Value)>, WorkflowError> {
    Ok(named_list(v, field, false)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(Value::Null)))
        .collect())
}

fn check_var_name(name: &str) -> Result<(), String> {
    if name.starts_with("__") {
        return Err(format!(
            "{name:?} is reserved: names starting with \"__\" are the engine's"
        ));
    }
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!(
            "{name:?} is not a valid name (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok(())
}

fn parse_task(name: &str, body: &Value) -> Result<TaskSpec, WorkflowError> {
    let base = format!("tasks.{name}");
    if ENGINE_COMMANDS.contains(&name) {
        return Err(WorkflowError::at(
            &base,
            format!("{name:?} is reserved for the engine command of that name"),
        ));
    }
    check_var_name(name).map_err(|m| {
        WorkflowError::at(
            &base,
            m.replace("is not a valid name", "is not a valid task name"),
        )
    })?;
    let empty = Map::new();
    let body = match body {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(WorkflowError::at(&base, "expected a mapping")),
    };
    if let Some(k) = body.keys().find(|k| !TASK_KEYS.contains(&k.as_str())) {
        let hint = strsim_closest(k, &TASK_KEYS)
            .map(|s| format!(" (did you mean {s:?}?)"))
            .unwrap_or_default();
        return Err(WorkflowError::at(
            format!("{base}.{k}"),
            format!(
                "unknown task attribute{hint}; known: {}",
                TASK_KEYS.join(", ")
            ),
        ));
    }
    let (action, inline_input) = match body.get("action") {
        None | Some(Value::Null) => (None, Vec::new()),
        Some(Value::String(s)) => {
            let s = s.trim();
            let (reference, rest) = split_first_token(s);
            let inline =
                parse_inline(rest).map_err(|m| WorkflowError::at(format!("{base}.action"), m))?;
            (Some(reference.to_string()), inline)
        }
        Some(_) => {
            return Err(WorkflowError::at(
                format!("{base}.action"),
                "expected an action ref (optionally followed by k=v parameters)",
            ));
        }
    };
    let input = match body.get("input") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(WorkflowError::at(
                format!("{base}.input"),
                "expected a mapping",
            ));
        }
    };
    let join = match body.get("join") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "all" => Some(Join::All),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => {
            Some(Join::Count(n.as_u64().expect("checked") as usize))
        }
        Some(other) => {
            return Err(WorkflowError::at(
                format!("{base}.join"),
                format!("expected \"all\" or a positive count, not {other}"),
            ));
        }
    };
    let with = match body.get("with") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_items(s, None, &base)?),
        Some(Value::Object(m)) => {
            if let Some(k) = m.keys().find(|k| *k != "items" && *k != "concurrency") {
                return Err(WorkflowError::at(
                    format!("{base}.with.{k}"),
                    "unknown attribute; known: items, concurrency",
                ));
            }
            match m.get("items") {
                Some(Value::String(s)) => {
                    Some(parse_items(s, m.get("concurrency").cloned(), &base)?)
                }
                _ => {
                    return Err(WorkflowError::at(
                        format!("{base}.with.items"),
                        "expected an items expression such as \"x in <% ctx(xs) %>\"",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(WorkflowError::at(
                format!("{base}.with"),
                "expected an items expression or a mapping with items and concurrency",
            ));
        }
    };
    let mut retry = match body.get("retry") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            if let Some(k) = m
                .keys()
                .find(|k| !["when", "count", "delay"].contains(&k.as_str()))
            {
                return Err(WorkflowError::at(
                    format!("{base}.retry.{k}"),
                    "unknown attribute; known: when, count, delay",
                ));
            }
            let when = match m.get("when") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    return Err(WorkflowError::at(
                        format!("{base}.retry.when"),
                        "expected an expression",
                    ));
                }
            };
            let count = match m.get("count") {
                Some(v @ Value::Number(n)) if n.as_u64().is_some() => v.clone(),
                Some(v @ Value::String(_)) => v.clone(),
                _ => {
                    return Err(WorkflowError::at(
                        format!("{base}.retry.count"),
                        "required: a number of retries (an integer or an expression)",
                    ));
                }
            };
            let delay = int_or_expr(m.get("delay"), &format!("{base}.retry.delay"))?;
            Some(RetrySpec { when, count, delay })
        }
        Some(_) => {
            return Err(WorkflowError::at(
                format!("{base}.retry"),
                "expected a mapping",
            ));
        }
    };
    let delay = int_or_expr(body.get("delay"), &format!("{base}.delay"))?;
    let mut next = Vec::new();
    match body.get("next") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("{base}.next[{i}]");
                let t = parse_transition(item, &at)?;
                if t.targets.iter().any(|x| x == "retry") && retry.is_none() {
                    retry = Some(RetrySpec {
                        when: Some(t.when.clone().unwrap_or_else(|| "<% completed() %>".into())),
                        count: Value::from(3),
                        delay: None,
                    });
                }
                next.push(t);
            }
        }
        Some(_) => return Err(WorkflowError::at(format!("{base}.next"), "expected a list")),
    }
    Ok(TaskSpec {
        name: name.to_string(),
        action,
        inline_input,
        input,
        next,
        join,
        with,
        retry,
        delay,
    })
}

fn strsim_closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn int_or_expr(v: Option<&Value>, field: &str) -> Result<Option<Value>, WorkflowError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) if n.as_u64().is_some() => Ok(Some(v.clone())),
        Some(v @ Value::String(_)) => Ok(Some(v.clone())),
        Some(other) => Err(WorkflowError::at(
            field,
            format!("expected a number of seconds (an integer or an expression), not {other}"),
        )),
    }
}

fn parse_items(
    s: &str,
    concurrency: Option<Value>,
    base: &str,
) -> Result<WithItems, WorkflowError> {
    let at = format!("{base}.with");
    let s = s.trim();
    let (vars, items) = match find_in_keyword(s) {
        Some(pos) => {
            let names: Vec<String> = s[..pos].split(',').map(|n| n.trim().to_string()).collect();
            for n in &names {
                check_var_name(n).map_err(|m| WorkflowError::at(&at, m))?;
            }
            (names, s[pos + 4..].trim().to_string())
        }
        None => (Vec::new(), s.to_string()),
    };
    if items.is_empty() {
        return Err(WorkflowError::at(at, "the items expression is empty"));
    }
    let concurrency = match concurrency {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(_)) if v.as_u64().is_some_and(|n| n >= 1) => Some(v),
        Some(v @ Value::String(_)) => Some(v),
        Some(other) => {
            return Err(WorkflowError::at(
                format!("{base}.with.concurrency"),
                format!("expected a positive integer or an expression, not {other}"),
            ));
        }
    };
    Ok(WithItems {
        vars,
        items: Value::String(items),
        concurrency,
    })
}

/// The position of ` in ` separating `x, y in <expr>`, when the text before it is only names.
fn find_in_keyword(s: &str) -> Option<usize> {
    let pos = s.find(" in ")?;
    let head = &s[..pos];
    head.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ',' || c == ' ')
        .then_some(pos)
        .filter(|_| !head.trim().is_empty())
}

fn parse_transition(item: &Value, at: &str) -> Result<Transition, WorkflowError> {
    let Value::Object(m) = item else {
        return Err(WorkflowError::at(
            at,
            "expected a mapping with when, publish, do",
        ));
    };
    if let Some(k) = m
        .keys()
        .find(|k| !["when", "publish", "do"].contains(&k.as_str()))
    {
        return Err(WorkflowError::at(
            format!("{at}.{k}"),
            "unknown attribute; known: when, publish, do",
        ));
    }
    let when = match m.get("when") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(format!("<% {b} %>")),
        Some(_) => {
            return Err(WorkflowError::at(
                format!("{at}.when"),
                "expected an expression",
            ));
        }
    };
    let publish = match m.get("publish") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            parse_inline(s).map_err(|e| WorkflowError::at(format!("{at}.publish"), e))?
        }
        Some(v) => named_values(v, &format!("{at}.publish"))?,
    };
    let mut targets: Vec<String> = match m.get("do") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_str().map(str::to_string).ok_or_else(|| {
                    WorkflowError::at(format!("{at}.do[{i}]"), "expected a task name")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(WorkflowError::at(
                format!("{at}.do"),
                "expected a task name or a list of them",
            ));
        }
    };
    if targets.is_empty() {
        // Orquesta: "continue" is the default when `do` is not given.
        targets.push("continue".to_string());
    }
    Ok(Transition {
        when,
        publish,
        targets,
    })
}

fn split_first_token(s: &str) -> (&str, &str) {
    // An expression as the ref keeps its spaces: `<% ctx(a) %> k=v`.
    for (open, close) in [("<%", "%>"), ("{{", "}}")] {
        if s.starts_with(open)
            && let Some(end) = s.find(close)
        {
            let end = end + close.len();
            return (&s[..end], s[end..].trim_start());
        }
    }
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// Parses `k=v k2='a b' k3=<% expr %>` as Orquesta's inline parameters: quoted values are
/// strings, expressions stay expressions, other values are read as YAML scalars (`3`, `true`).
///
/// # Errors
/// A message naming the text that is not `key=value`.
pub(crate) fn parse_inline(text: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            return Err(format!("expected key=value, found {rest:?}"));
        };
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("expected key=value, found {rest:?}"));
        }
        let after = &rest[eq + 1..];
        let (value, len) = inline_value(after)?;
        out.push((key.to_string(), value));
        rest = after[len..].trim_start();
    }
    Ok(out)
}

fn inline_value(s: &str) -> Result<(Value, usize), String> {
    for (open, close) in [("<%", "%>"), ("{{", "}}")] {
        if s.starts_with(open) {
            let end = s
                .find(close)
                .ok_or_else(|| format!("unterminated expression {s:?}"))?
                + close.len();
            // The value runs to the next whitespace after the expression: `<% a %>-suffix`.
            let tail = s[end..].find(char::is_whitespace).unwrap_or(s.len() - end);
            return Ok((Value::String(s[..end + tail].to_string()), end + tail));
        }
    }
    if let Some(q) = s.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let end = s[1..]
            .find(q)
            .ok_or_else(|| format!("unterminated quote in {s:?}"))?;
        return Ok((Value::String(s[1..1 + end].to_string()), end + 2));
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let word = &s[..end];
    let value = match word {
        "true" | "True" => Value::Bool(true),
        "false" | "False" => Value::Bool(false),
        "null" | "None" | "~" => Value::Null,
        _ => word
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| word.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(word.to_string())),
    };
    Ok((value, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_task_attribute() {
        let spec = WorkflowSpec::parse(
            r#"
version: 1.0
description: d
input:
  - app
  - version: latest
vars:
  - n: 0
tasks:
  deploy:
    action: core.http url=<% ctx(url) %> method=POST n=3 label='a b'
    input: {body: x}
    with: {items: "host in <% ctx(hosts) %>", concurrency: 2}
    retry: {count: 2, delay: 1}
    delay: 5
    next:
      - when: <% succeeded() %>
        publish: "code=<% result().status_code %> ok=true"
        do: check, notify
      - when: <% failed() %>
        do: [fail]
  check:
    join: all
    next:
      - do: retry
  notify:
    action: core.noop
output:
  - app: <% ctx(app) %>
"#,
        )
        .unwrap();
        assert_eq!(
            spec.input[0],
            InputSpec {
                name: "app".into(),
                default: None
            }
        );
        assert_eq!(spec.input[1].default, Some(json!("latest")));
        let d = &spec.tasks[0];
        assert_eq!(d.action.as_deref(), Some("core.http"));
        assert_eq!(
            d.inline_input,
            vec![
                ("url".into(), json!("<% ctx(url) %>")),
                ("method".into(), json!("POST")),
                ("n".into(), json!(3)),
                ("label".into(), json!("a b")),
            ]
        );
        let w = d.with.as_ref().unwrap();
        assert_eq!(w.vars, ["host"]);
        assert_eq!(w.items, json!("<% ctx(hosts) %>"));
        assert_eq!(w.concurrency, Some(json!(2)));
        assert_eq!(d.next[0].targets, ["check", "notify"]);
        assert_eq!(d.next[0].publish[1], ("ok".into(), json!(true)));
        assert_eq!(spec.tasks[1].join, Some(Join::All));
        assert_eq!(
            spec.tasks[1].retry.as_ref().unwrap().when.as_deref(),
            Some("<% completed() %>")
        );
        assert_eq!(spec.graph.roots, [0]);
        assert!(!spec.graph.is_split(&spec, 1));
        assert_eq!(spec.output[0].0, "app");
    }

    #[test]
    fn tasks_keep_file_order_and_cycles_are_found() {
        let spec = WorkflowSpec::parse(
            "version: 1.0\ntasks:\n  b:\n    next: [{do: a}]\n  a:\n    next: [{when: <% false %>, do: b}]\n  c: {}\n",
        )
        .unwrap();
        let names: Vec<&str> = spec.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(spec.graph.in_cycle, [true, true, false]);
        assert_eq!(spec.graph.roots, [2]);
    }

    #[test]
    fn shape_errors_name_the_field() {
        for (yaml, field, want) in [
            (
                "version: 2.0\ntasks: {a: {}}\n",
                "version",
                "unsupported version",
            ),
            ("version: 1.0\n", "tasks", "missing"),
            (
                "version: 1.0\ntasks: {noop: {}}\n",
                "tasks.noop",
                "reserved",
            ),
            (
                "version: 1.0\ntasks: {a: {acton: x}}\n",
                "tasks.a.acton",
                "did you mean \"action\"",
            ),
            (
                "version: 1.0\ntasks: {a: {join: some}}\n",
                "tasks.a.join",
                "\"all\" or a positive count",
            ),
            (
                "version: 1.0\ntasks: {a: {next: [{do: b, publsh: x}]}}\n",
                "tasks.a.next[0].publsh",
                "unknown attribute",
            ),
            (
                "version: 1.0\ntasks: {a: {retry: {delay: 1}}}\n",
                "tasks.a.retry.count",
                "required",
            ),
            (
                "version: 1.0\ninput: [__x]\ntasks: {a: {}}\n",
                "input[0]",
                "reserved",
            ),
            (
                "version: 1.0\ntasks: {a: {action: core.echo message}}\n",
                "tasks.a.action",
                "expected key=value",
            ),
            (
                "version: 1.0\ntasks: {a: {with: {items: 3}}}\n",
                "tasks.a.with.items",
                "items expression",
            ),
            ("version: 1.0\nfoo: 1\ntasks: {a: {}}\n", "", "foo"),
        ] {
            let err = WorkflowSpec::parse(yaml).unwrap_err();
            assert_eq!(err.field, field, "{yaml}: {err}");
            assert!(err.message.contains(want), "{yaml}: {err}");
        }
    }

    #[test]
    fn inline_parameters_read_like_orquesta() {
        assert_eq!(
            parse_inline("a=1 b=<% ctx(x) + 1 %> c=\"x y\" d=false e=1.5 f=text").unwrap(),
            vec![
                ("a".into(), json!(1)),
                ("b".into(), json!("<% ctx(x) + 1 %>")),
                ("c".into(), json!("x y")),
                ("d".into(), json!(false)),
                ("e".into(), json!(1.5)),
                ("f".into(), json!("text")),
            ]
        );
        assert!(
            parse_inline("a='x")
                .unwrap_err()
                .contains("unterminated quote")
        );
    }
}
