//! YAQL's operators and value semantics on JSON values: truthiness, deep equality, ordering,
//! arithmetic, membership, attribute access and indexing.

use super::YaqlError;
use super::ast::{BinOp, UnaryOp};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

/// The type name used in messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Type and (shortened) value, for messages: `string "a"`, `number 1`, `null`.
pub(super) fn describe(v: &Value) -> String {
    if v.is_null() {
        return "null".to_string();
    }
    format!("{} {}", type_name(v), preview(v))
}

/// Compact JSON, cut to 40 characters.
pub(super) fn preview(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// YAQL (Python) truthiness: null, false, 0, "", [] and {} are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A JSON number as integer or float.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub(super) fn as_f64(self) -> f64 {
        match self {
            // Precision loss beyond 2^53 is Python's behaviour too.
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// The number in `v`, if it is one.
pub(super) fn num(v: &Value) -> Option<Num> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        Some(Num::Int(i.into()))
    } else if let Some(u) = n.as_u64() {
        Some(Num::Int(u.into()))
    } else {
        n.as_f64().map(Num::Float)
    }
}

/// An integer as a JSON value, if it fits (i64 or u64).
pub(super) fn int_value(i: i128) -> Option<Value> {
    i64::try_from(i)
        .map(Value::from)
        .or_else(|_| u64::try_from(i).map(Value::from))
        .ok()
}

/// A float as a JSON value, if finite.
pub(super) fn float_value(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

fn num_cmp(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(a), Num::Int(b)) => a.cmp(&b),
        _ => a.as_f64().total_cmp(&b.as_f64()),
    }
}

/// YAQL `=`: deep equality; numbers compare by value (`1 = 1.0`), other types must match.
pub(super) fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (num(a), num(b)) {
            (Some(x), Some(y)) => num_cmp(x, y) == Ordering::Equal,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| deep_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| deep_eq(a, b)))
        }
        _ => a == b,
    }
}

/// Ordering of two numbers or two strings; `None` for anything else.
pub(super) fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => Some(num_cmp(num(a)?, num(b)?)),
    }
}

/// YAQL's `str()`: strings as they are, `null`/`true`/`false`, numbers, else compact JSON.
pub(super) fn to_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A key that is equal for [`deep_eq`]-equal values (object keys sorted, `1.0` as `1`).
pub(super) fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Number(_) => match num(v) {
            Some(Num::Float(f)) if f.fract() == 0.0 && f.abs() < 1e38 => {
                out.push_str(&(f as i128).to_string());
            }
            Some(Num::Int(i)) => out.push_str(&i.to_string()),
            _ => out.push_str(&v.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for key in keys {
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                canonical(&map[key], out);
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What building `v` costs, in evaluation steps: one per value, plus one per 64 string bytes.
pub(super) fn weight(v: &Value) -> usize {
    let mut pending = vec![v];
    let mut total = 0usize;
    while let Some(v) = pending.pop() {
        total = total.saturating_add(1);
        match v {
            Value::String(s) => total = total.saturating_add(s.len() / 64),
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    total
}

/// Errors unless `len` bytes is an acceptable string size.
pub(super) fn check_string_len(len: usize) -> Result<(), YaqlError> {
    let limit = super::limits().1;
    if u64::try_from(len).unwrap_or(u64::MAX) > limit {
        return Err(YaqlError::eval(format!(
            "string of {len} bytes exceeds the limit of {limit} bytes ([templates] \
             yaql_max_string)"
        )));
    }
    Ok(())
}

/// `-x`, `+x`, `not x`.
#[inline(never)]
pub(super) fn unary(op: UnaryOp, v: &Value) -> Result<Value, YaqlError> {
    let result = match (op, num(v)) {
        (UnaryOp::Not, _) => Some(Value::Bool(!truthy(v))),
        (UnaryOp::Plus, Some(_)) => Some(v.clone()),
        (UnaryOp::Neg, Some(Num::Int(i))) => int_value(-i),
        (UnaryOp::Neg, Some(Num::Float(f))) => float_value(-f),
        (_, None) => {
            let sign = if op == UnaryOp::Neg { "-" } else { "+" };
            return Err(YaqlError::eval(format!(
                "cannot apply unary \"{sign}\" to {}",
                describe(v)
            )));
        }
    };
    result.ok_or_else(|| YaqlError::eval(format!("integer overflow: -{}", preview(v))))
}

/// Every binary operator except the short-circuiting `and`/`or`.
#[inline(never)]
pub(super) fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, YaqlError> {
    match op {
        BinOp::Eq => Ok(Value::Bool(deep_eq(a, b))),
        BinOp::Ne => Ok(Value::Bool(!deep_eq(a, b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ordering = order(a, b).ok_or_else(|| {
                let (a, b, sym) = (describe(a), describe(b), op.symbol());
                YaqlError::eval(format!("cannot compare {a} and {b} with \"{sym}\""))
            })?;
            Ok(Value::Bool(match op {
                BinOp::Lt => ordering.is_lt(),
                BinOp::Le => ordering.is_le(),
                BinOp::Gt => ordering.is_gt(),
                _ => ordering.is_ge(),
            }))
        }
        BinOp::In => contains(b, a, "in").map(Value::Bool),
        BinOp::Add => add(a, b),
        BinOp::Or | BinOp::And | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
            arithmetic(op, a, b)
        }
    }
}

fn add(a: &Value, b: &Value) -> Result<Value, YaqlError> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            check_string_len(x.len() + y.len())?;
            Ok(Value::String(format!("{x}{y}")))
        }
        (Value::Array(x), Value::Array(y)) => {
            Ok(Value::Array(x.iter().chain(y).cloned().collect()))
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut merged: Map<String, Value> = x.clone();
            merged.extend(y.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(Value::Object(merged))
        }
        _ => arithmetic(BinOp::Add, a, b),
    }
}

/// Numeric `+ - * / mod`: integers stay integers (`/` floors, `mod` takes the divisor's sign,
/// as Python's `//` and `%`); any float operand gives a float.
fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Result<Value, YaqlError> {
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        let (a, b) = (describe(a), describe(b));
        return Err(YaqlError::eval(match op {
            BinOp::Add => format!("cannot add {a} and {b}"),
            BinOp::Sub => format!("cannot subtract {b} from {a}"),
            BinOp::Mul => format!("cannot multiply {a} by {b}"),
            BinOp::Div => format!("cannot divide {a} by {b}"),
            _ => format!("cannot compute {a} mod {b}"),
        }));
    };
    let text = || format!("{} {} {}", preview(a), op.symbol(), preview(b));
    let zero = match y {
        Num::Int(i) => i == 0,
        Num::Float(f) => f == 0.0,
    };
    if zero && matches!(op, BinOp::Div | BinOp::Mod) {
        return Err(YaqlError::eval(format!("division by zero: {}", text())));
    }
    match (x, y) {
        (Num::Int(x), Num::Int(y)) => {
            let result = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => Some(floor_div(x, y)),
                _ => Some(x - y * floor_div(x, y)),
            };
            result
                .and_then(int_value)
                .ok_or_else(|| YaqlError::eval(format!("integer overflow: {}", text())))
        }
        _ => {
            let (x, y) = (x.as_f64(), y.as_f64());
            let result = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                _ => x - y * (x / y).floor(),
            };
            float_value(result)
                .ok_or_else(|| YaqlError::eval(format!("{} is not a finite number", text())))
        }
    }
}

/// Python's `//` on integers (`y != 0`; the operands come from i64/u64, so no overflow).
fn floor_div(x: i128, y: i128) -> i128 {
    let q = x / y;
    if (x % y != 0) && ((x < 0) != (y < 0)) {
        q - 1
    } else {
        q
    }
}

/// Membership: an equal element of a list, a substring of a string, a key of an object.
#[inline(never)]
pub(super) fn contains(haystack: &Value, needle: &Value, what: &str) -> Result<bool, YaqlError> {
    match (haystack, needle) {
        (Value::Array(items), _) => Ok(items.iter().any(|item| deep_eq(item, needle))),
        (Value::String(s), Value::String(sub)) => Ok(s.contains(sub.as_str())),
        (Value::Object(map), Value::String(key)) => Ok(map.contains_key(key)),
        _ => Err(YaqlError::eval(format!(
            "cannot look for {} in {} with \"{what}\"",
            describe(needle),
            describe(haystack)
        ))),
    }
}

/// `x.name`: an object's key (missing is null), null stays null, and on a list the attribute
/// of every element (YAQL's collection attribution).
#[inline(never)]
pub(super) fn attribute<'v>(base: Cow<'v, Value>, name: &str) -> Result<Cow<'v, Value>, YaqlError> {
    match base {
        Cow::Borrowed(v) => attribute_of(v, name),
        Cow::Owned(v) => attribute_of(&v, name).map(|c| Cow::Owned(c.into_owned())),
    }
}

fn attribute_of<'v>(v: &'v Value, name: &str) -> Result<Cow<'v, Value>, YaqlError> {
    match v {
        Value::Object(map) => Ok(map.get(name).map_or(Cow::Owned(Value::Null), Cow::Borrowed)),
        Value::Null => Ok(Cow::Owned(Value::Null)),
        Value::Array(items) => items
            .iter()
            .map(|item| attribute_of(item, name).map(Cow::into_owned))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| Cow::Owned(Value::Array(items))),
        other => Err(YaqlError::eval(format!(
            "cannot get attribute \"{name}\" of {}",
            describe(other)
        ))),
    }
}

/// `x[key]` / `x[key, default]`: list and string positions (negative from the end), object
/// keys; a missing position or key is an error unless a default is given.
#[inline(never)]
pub(super) fn index<'v>(
    base: Cow<'v, Value>,
    key: &Value,
    default: Option<Value>,
) -> Result<Cow<'v, Value>, YaqlError> {
    match base {
        Cow::Borrowed(v) => index_of(v, key, default),
        Cow::Owned(v) => index_of(&v, key, default).map(|c| Cow::Owned(c.into_owned())),
    }
}

fn index_of<'v>(
    v: &'v Value,
    key: &Value,
    default: Option<Value>,
) -> Result<Cow<'v, Value>, YaqlError> {
    let missing = |message: String| {
        default
            .clone()
            .map(Cow::Owned)
            .ok_or_else(|| YaqlError::eval(message))
    };
    match (v, key) {
        (Value::Array(_) | Value::String(_), _) => {
            let (len, what) = match v {
                Value::Array(items) => (items.len(), "list"),
                _ => (v.as_str().map_or(0, |s| s.chars().count()), "string"),
            };
            let Some(Num::Int(i)) = num(key) else {
                return Err(YaqlError::eval(format!(
                    "{what} index must be an integer, got {}",
                    describe(key)
                )));
            };
            let position = if i < 0 { i + len as i128 } else { i };
            let Some(position) = usize::try_from(position).ok().filter(|p| *p < len) else {
                return missing(format!(
                    "index {i} is out of range for a {what} of length {len}"
                ));
            };
            Ok(match v {
                Value::Array(items) => Cow::Borrowed(&items[position]),
                _ => Cow::Owned(Value::String(
                    v.as_str()
                        .and_then(|s| s.chars().nth(position))
                        .into_iter()
                        .collect(),
                )),
            })
        }
        (Value::Object(map), Value::String(k)) => match map.get(k) {
            Some(found) => Ok(Cow::Borrowed(found)),
            None => missing(format!("key \"{k}\" not found in object")),
        },
        (Value::Object(_), _) => Err(YaqlError::eval(format!(
            "object key must be a string, got {}",
            describe(key)
        ))),
        _ => Err(YaqlError::eval(format!(
            "cannot index {} with {}",
            describe(v),
            describe(key)
        ))),
    }
}
