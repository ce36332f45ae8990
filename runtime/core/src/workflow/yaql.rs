//! YAQL expressions (`<% … %>`) as StackStorm's Orquesta workflows use them.
//!
//! This is the subset of YAQL (OpenStack's query language, <https://yaql.readthedocs.io>) that
//! Orquesta workflows write, as YAQL and the Orquesta "YAQL" page of StackStorm's documentation
//! describe it. Values are JSON ([`serde_json::Value`]); the module does no I/O: the workflow
//! engine answers `$` and the workflow functions through a [`YaqlHost`].
//!
//! - **Literals**: integers, floats (`1.5`), strings in `'…'` or `"…"` with Python's backslash
//!   escapes (or verbatim in `` `…` ``), `true`, `false`, `null`, lists `[1, 'a']`, dicts
//!   `{a => 1, 'b c' => 2}`. A bare name not followed by `(` is a string (YAQL's keyword
//!   strings): `ctx(foo)` passes `"foo"`.
//! - **Data**: `$` is the workflow context at top level ([`YaqlHost::root`]) and the current
//!   element inside a lambda argument (`select`, `where`, `any`, `all`, `distinct`, `sort`,
//!   `orderBy`, `orderByDescending`, `selectMany`). `x.name` reads an object key (missing: null;
//!   on null: null; on a list: the key of every element). `x[i]` indexes lists and strings
//!   (negative from the end) and objects (`x['key']`); `x[key, default]` gives a default instead
//!   of the error for a missing position or key.
//! - **Calls**: `f(x, …)` and the method form `x.f(…)` (the same call). Function names are
//!   resolved when parsing: an unknown one is a parse error. The workflow functions
//!   ([`WORKFLOW_FUNCTIONS`]) go to [`YaqlHost::call`]; `st2kv(key, decrypt => true)` passes
//!   `decrypt` as the second argument.
//! - **Operators**, loosest first: `or`; `and`; `not`; `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`;
//!   `+`, `-`; `*`, `/`, `mod` (also `%`); unary `-`, `+`; then `.`, `[…]`, calls. `=` compares
//!   deeply, numbers by value (`1 = 1.0`), otherwise types must match (`'1' = 1` is false).
//!   `<` and friends order numbers with numbers and strings with strings. `+` adds numbers,
//!   concatenates strings and lists and merges objects (right wins). Integer arithmetic stays
//!   integer: `/` on two integers floors (`7 / 2 = 3`, `-7 / 2 = -4`, Python's `//`) and `mod`
//!   takes the divisor's sign; a float operand gives a float. `and`, `or` and `not` use Python
//!   truthiness (null, false, 0, "", [] and {} are false) and give booleans.
//! - **Functions**: `len`/`count`, `str`, `int`, `float`, `bool`, `not`, `list`, `dict`, `keys`,
//!   `values`, `items`, `json`, `zip`, `select`, `where`, `any`, `all`, `first`, `last`,
//!   `distinct`, `flatten`, `sum`, `min`, `max`, `range`, `join`, `split`, `toUpper`, `toLower`,
//!   `trim`, `startsWith`, `endsWith`, `replace`, `contains`, `get`, `isEmpty`, `isList`,
//!   `isDict`, `isString`, `isInteger`, `isNumber`, `isBoolean`, `sort`, `orderBy`,
//!   `orderByDescending`, `selectMany`, `concat`, `format`.
//!
//! Not supported (parse errors naming them): YAQL's other operators (`->`, `?.`, `=~`, `!~`),
//! `$name` variables, `let`, `regex` and the rest of YAQL's standard library, and
//! `name => value` arguments other than `dict(…)` and `st2kv(…, decrypt => …)`.
//!
//! Where JSON differs from YAQL's Python values: every sequence is a list (so `list(x)` with one
//! list argument converts it rather than nesting it), `str()` of a list or object is compact
//! JSON, `sum([])` is 0, `flatten` flattens all levels, and object keys must be strings.
//!
//! Limits, so that no input can exhaust the stack, run for long or allocate without bound:
//! expressions nest at most 128 levels deep (a parse error beyond), strings stop at 64 MiB
//! (`[templates] yaql_max_string`), and an evaluation stops with an error after two million
//! steps (`[templates] yaql_steps`: nodes evaluated, elements built, and the size of every value
//! a lambda builds per element). See [`configure`].

mod ast;
mod builtins;
mod eval;
mod functions;
mod lexer;
mod ops;

pub use ops::truthy;
mod parser;
mod strings;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

/// Default evaluation steps per expression (`[templates] yaql_steps`): 2,000,000.
pub const DEFAULT_STEPS: u64 = 2_000_000;

/// Default longest string one operation may build, in bytes (`[templates] yaql_max_string`):
/// 64 MiB.
pub const DEFAULT_MAX_STRING: u64 = 64 << 20;

static STEPS: AtomicU64 = AtomicU64::new(DEFAULT_STEPS);
static MAX_STRING: AtomicU64 = AtomicU64::new(DEFAULT_MAX_STRING);

/// Sets the budget of every later evaluation in this process: `steps` per expression and the
/// longest string, in bytes, one operation may build (`[templates] yaql_steps` and
/// `yaql_max_string`; defaults [`DEFAULT_STEPS`] and [`DEFAULT_MAX_STRING`]; each at least 1).
/// Process-wide: the last call wins.
pub fn configure(steps: u64, max_string: u64) {
    STEPS.store(steps.max(1), Ordering::Relaxed);
    MAX_STRING.store(max_string.max(1), Ordering::Relaxed);
}

/// (steps, longest string in bytes) now in force.
fn limits() -> (u64, u64) {
    (
        STEPS.load(Ordering::Relaxed),
        MAX_STRING.load(Ordering::Relaxed),
    )
}

use ast::{Expr, Func, Node};
use serde_json::Value;

/// Functions the workflow engine provides: passed to [`YaqlHost::call`] with evaluated arguments.
pub const WORKFLOW_FUNCTIONS: &[&str] = &[
    "ctx",
    "result",
    "item",
    "succeeded",
    "failed",
    "completed",
    "task_status",
    "st2kv",
    "task",
];

/// What the evaluator asks the workflow engine for.
pub trait YaqlHost {
    /// The value of `$` at the top level (Orquesta: the workflow context, a JSON object).
    fn root(&self) -> Value;
    /// Calls a workflow function (one of [`WORKFLOW_FUNCTIONS`]) with evaluated arguments.
    /// `Err(message)` becomes a [`YaqlError`] with that message.
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String>;
}

/// A parse or evaluation error. Display is one line: the message, then for parse errors
/// ` at <offset>` (0-based, in characters), e.g. `unknown function "foo" at 3`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}{}", .offset.map(|o| format!(" at {o}")).unwrap_or_default())]
pub struct YaqlError {
    /// What went wrong, naming the offending token, operator or value.
    pub message: String,
    /// Where a parse error is, in characters from the start; `None` for evaluation errors.
    pub offset: Option<usize>,
}

impl YaqlError {
    fn parse(message: impl Into<String>, offset: usize) -> YaqlError {
        YaqlError {
            message: message.into(),
            offset: Some(offset),
        }
    }

    fn eval(message: impl Into<String>) -> YaqlError {
        YaqlError {
            message: message.into(),
            offset: None,
        }
    }
}

/// A parsed YAQL expression (the text between `<%` and `%>`).
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    tree: Expr,
}

impl Expression {
    /// Parses `source`. Unknown functions and methods are rejected here, so workflow inspection
    /// reports unsupported YAQL before anything runs.
    pub fn parse(source: &str) -> Result<Expression, YaqlError> {
        Ok(Expression {
            source: source.to_string(),
            tree: parser::parse(source)?,
        })
    }

    /// Evaluates against `host`.
    pub fn evaluate(&self, host: &dyn YaqlHost) -> Result<Value, YaqlError> {
        eval::evaluate(&self.tree, host)
    }

    /// Workflow-context variable names this expression reads, deduplicated, in order of
    /// appearance: `ctx(name)` / `ctx('name')`, the first key after `ctx()` (`ctx().name`,
    /// `ctx().get(name)`, `ctx()['name']`), and the same after a top-level `$` (`$.name`), but
    /// not after a `$` that is a lambda's current element.
    pub fn context_references(&self) -> Vec<String> {
        let mut names = Vec::new();
        references(&self.tree, false, &mut names);
        names
    }

    /// The source text as given.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Collects context references in source order; `in_lambda` when `$` is a lambda's element.
fn references(expr: &Expr, in_lambda: bool, names: &mut Vec<String>) {
    let is_context = |e: &Expr| match &e.node {
        Node::Root => !in_lambda,
        Node::Call(call) => call.func == Func::Workflow("ctx") && call.args.is_empty(),
        _ => false,
    };
    let literal = |e: &Expr| match &e.node {
        Node::Literal(Value::String(name)) => Some(name.clone()),
        _ => None,
    };
    let found = match &expr.node {
        Node::Attr(base, name) if is_context(base) => Some(name.clone()),
        Node::Index(base, key, _) if is_context(base) => literal(key),
        Node::Call(call) => match (call.func, call.args.as_slice()) {
            (Func::Workflow("ctx"), [name]) => literal(name),
            (Func::Builtin(functions::Builtin::Get), [base, key, ..]) if is_context(base) => {
                literal(key)
            }
            _ => None,
        },
        _ => None,
    };
    if let Some(name) = found
        && !names.contains(&name)
    {
        names.push(name);
    }
    let lambda = match &expr.node {
        Node::Call(call) => match call.func {
            Func::Builtin(builtin) if builtin.takes_lambda() => Some(1),
            _ => None,
        },
        _ => None,
    };
    for (i, child) in ast::children(&expr.node).enumerate() {
        references(child, in_lambda || lambda == Some(i), names);
    }
}
