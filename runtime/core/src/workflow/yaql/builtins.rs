//! The built-in functions that take no lambda, applied to evaluated arguments.

use super::YaqlError;
use super::ast::BinOp;
use super::eval::Budget;
use super::functions::Builtin;
use super::ops::{self, Num, check_string_len, describe, num, to_str, truthy};
use super::strings;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Display;

static NULL: Value = Value::Null;

pub(super) fn fail(name: &str, message: impl Display) -> YaqlError {
    YaqlError::eval(format!("{name}(): {message}"))
}

/// The list in `v`, or an error naming the function.
pub(super) fn list_arg<'v>(name: &str, v: &'v Value) -> Result<&'v [Value], YaqlError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(fail(
            name,
            format!("expected a list, got {}", describe(other)),
        )),
    }
}

pub(super) fn str_arg<'v>(name: &str, v: &'v Value) -> Result<&'v str, YaqlError> {
    v.as_str()
        .ok_or_else(|| fail(name, format!("expected a string, got {}", describe(v))))
}

fn object_arg<'v>(name: &str, v: &'v Value) -> Result<&'v Map<String, Value>, YaqlError> {
    v.as_object()
        .ok_or_else(|| fail(name, format!("expected an object, got {}", describe(v))))
}

pub(super) fn int_arg(name: &str, v: &Value) -> Result<i128, YaqlError> {
    match num(v) {
        Some(Num::Int(i)) => Ok(i),
        _ => Err(fail(
            name,
            format!("expected an integer, got {}", describe(v)),
        )),
    }
}

/// Applies `builtin` to `args` (already checked for count by the parser).
#[inline(never)]
pub(super) fn apply(
    builtin: Builtin,
    args: &[Cow<'_, Value>],
    budget: &Budget,
) -> Result<Value, YaqlError> {
    let name = builtin.name();
    let arg = |i: usize| args.get(i).map_or(&NULL, |a| &**a);
    let (a, b) = (arg(0), arg(1));
    Ok(match builtin {
        Builtin::Len => Value::from(match a {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.len(),
            Value::Object(map) => map.len(),
            other => {
                let message = format!("expected a list, string or object, got {}", describe(other));
                return Err(fail(name, message));
            }
        }),
        Builtin::Str => Value::String(to_str(a)),
        Builtin::Int => to_int(a)?,
        Builtin::Float => to_float(a)?,
        Builtin::Bool => Value::Bool(truthy(a)),
        Builtin::Not => Value::Bool(!truthy(a)),
        Builtin::List => match args {
            // A lone list is converted (YAQL unpacks a lone sequence), anything else collected.
            [single] if single.is_array() => single.clone().into_owned(),
            _ => Value::Array(args.iter().map(|a| a.clone().into_owned()).collect()),
        },
        Builtin::Dict => dict(args.first().map(|a| &**a))?,
        Builtin::Keys => Value::Array(
            object_arg(name, a)?
                .keys()
                .map(|k| Value::from(k.as_str()))
                .collect(),
        ),
        Builtin::Values => Value::Array(object_arg(name, a)?.values().cloned().collect()),
        Builtin::Items => Value::Array(
            object_arg(name, a)?
                .iter()
                .map(|(k, v)| Value::Array(vec![Value::from(k.as_str()), v.clone()]))
                .collect(),
        ),
        Builtin::Json => match a {
            Value::String(text) => {
                serde_json::from_str(text).map_err(|e| fail(name, format!("invalid JSON: {e}")))?
            }
            other => other.clone(),
        },
        Builtin::Zip => {
            let lists = args
                .iter()
                .map(|a| list_arg(name, a))
                .collect::<Result<Vec<_>, _>>()?;
            let len = lists.iter().map(|l| l.len()).min().unwrap_or(0);
            budget.charge(len.saturating_mul(lists.len()))?;
            let row = |i: usize| Value::Array(lists.iter().map(|l| l[i].clone()).collect());
            Value::Array((0..len).map(row).collect())
        }
        Builtin::First | Builtin::Last => {
            let items = list_arg(name, a)?;
            let found = if builtin == Builtin::First {
                items.first()
            } else {
                items.last()
            };
            match (found, args.get(1)) {
                (Some(item), _) => item.clone(),
                (None, Some(default)) => default.clone().into_owned(),
                (None, None) => return Err(fail(name, "the list is empty")),
            }
        }
        Builtin::Flatten => {
            let mut out = Vec::new();
            flatten(list_arg(name, a)?, &mut out, budget)?;
            Value::Array(out)
        }
        Builtin::Sum => {
            let items = list_arg(name, a)?;
            let mut rest = items.iter();
            let initial = match args.get(1) {
                Some(initial) => Some(initial.clone().into_owned()),
                None => rest.next().cloned(),
            };
            let mut total = initial.unwrap_or(Value::from(0));
            for item in rest {
                accumulate(&mut total, item, budget)?;
            }
            total
        }
        Builtin::Min | Builtin::Max => extreme(name, builtin == Builtin::Max, args)?,
        Builtin::Range => range(name, args, budget)?,
        Builtin::Join
        | Builtin::Split
        | Builtin::ToUpper
        | Builtin::ToLower
        | Builtin::Trim
        | Builtin::StartsWith
        | Builtin::EndsWith
        | Builtin::Replace
        | Builtin::Concat
        | Builtin::Format => strings::apply(builtin, args, budget)?,
        Builtin::Contains => Value::Bool(ops::contains(a, b, "contains")?),
        Builtin::Get => match a {
            Value::Object(map) => map.get(str_arg(name, b)?).unwrap_or(arg(2)).clone(),
            Value::Null => arg(2).clone(),
            other => {
                return Err(fail(
                    name,
                    format!("expected an object, got {}", describe(other)),
                ));
            }
        },
        Builtin::IsEmpty => Value::Bool(match a {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            Value::Bool(_) | Value::Number(_) => false,
        }),
        Builtin::IsList => Value::Bool(a.is_array()),
        Builtin::IsDict => Value::Bool(a.is_object()),
        Builtin::IsString => Value::Bool(a.is_string()),
        Builtin::IsInteger => Value::Bool(matches!(num(a), Some(Num::Int(_)))),
        Builtin::IsNumber => Value::Bool(a.is_number()),
        Builtin::IsBoolean => Value::Bool(a.is_boolean()),
        Builtin::Select
        | Builtin::Where
        | Builtin::Any
        | Builtin::All
        | Builtin::Distinct
        | Builtin::Sort
        | Builtin::OrderBy
        | Builtin::OrderByDescending
        | Builtin::SelectMany => return Err(fail(name, "needs a lambda")),
    })
}

/// `total + item` in place, so summing many strings or lists stays linear.
fn accumulate(total: &mut Value, item: &Value, budget: &Budget) -> Result<(), YaqlError> {
    match (&mut *total, item) {
        (Value::String(sum), Value::String(more)) => {
            check_string_len(sum.len().saturating_add(more.len()))?;
            sum.push_str(more);
        }
        (Value::Array(sum), Value::Array(more)) => {
            budget.charge(more.len())?;
            sum.extend(more.iter().cloned());
        }
        (Value::Object(sum), Value::Object(more)) => {
            sum.extend(more.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        _ => *total = ops::binary(BinOp::Add, total, item)?,
    }
    Ok(())
}

/// `int()`: null is 0, booleans 0/1, floats truncate, strings are parsed.
fn to_int(v: &Value) -> Result<Value, YaqlError> {
    let converted = match (v, num(v)) {
        (Value::Null, _) => Some(0),
        (Value::Bool(b), _) => Some(i128::from(*b)),
        (_, Some(Num::Int(i))) => Some(i),
        (_, Some(Num::Float(f))) if f.abs() < 1e38 => Some(f.trunc() as i128),
        (Value::String(s), _) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    converted.and_then(ops::int_value).ok_or_else(|| {
        fail(
            "int",
            format!("cannot convert {} to an integer", describe(v)),
        )
    })
}

/// `float()`: null is 0.0, booleans 0.0/1.0, numbers as they are, strings are parsed.
fn to_float(v: &Value) -> Result<Value, YaqlError> {
    let converted = match (v, num(v)) {
        (Value::Null, _) => Some(0.0),
        (Value::Bool(b), _) => Some(f64::from(u8::from(*b))),
        (_, Some(n)) => Some(n.as_f64()),
        (Value::String(s), _) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    converted.and_then(ops::float_value).ok_or_else(|| {
        fail(
            "float",
            format!("cannot convert {} to a float", describe(v)),
        )
    })
}

/// `dict()` with a positional argument: an object as it is, or a list of `[key, value]` pairs.
fn dict(arg: Option<&Value>) -> Result<Value, YaqlError> {
    let items = match arg {
        None => return Ok(Value::Object(Map::new())),
        Some(Value::Object(map)) => return Ok(Value::Object(map.clone())),
        Some(Value::Array(items)) => items,
        Some(other) => {
            let message = format!(
                "expected a list of [key, value] pairs, got {}",
                describe(other)
            );
            return Err(fail("dict", message));
        }
    };
    let mut map = Map::new();
    for item in items {
        match item.as_array().map(Vec::as_slice) {
            Some([Value::String(key), value]) => {
                map.insert(key.clone(), value.clone());
            }
            _ => {
                let message = format!(
                    "expected a [key, value] pair with a string key, got {}",
                    describe(item)
                );
                return Err(fail("dict", message));
            }
        }
    }
    Ok(Value::Object(map))
}

fn flatten(items: &[Value], out: &mut Vec<Value>, budget: &Budget) -> Result<(), YaqlError> {
    budget.charge(items.len())?;
    for item in items {
        match item {
            Value::Array(inner) => flatten(inner, out, budget)?,
            other => out.push(other.clone()),
        }
    }
    Ok(())
}

/// `min`/`max` of a list (with an optional initial value) or of several arguments.
fn extreme(name: &str, max: bool, args: &[Cow<'_, Value>]) -> Result<Value, YaqlError> {
    let values: Vec<&Value> = args.iter().map(|a| &**a).collect();
    let candidates: Vec<&Value> = match values.as_slice() {
        [Value::Array(items), rest @ ..] if rest.len() <= 1 => {
            items.iter().chain(rest.iter().copied()).collect()
        }
        [single] => {
            return Err(fail(
                name,
                format!("expected a list, got {}", describe(single)),
            ));
        }
        _ => values,
    };
    let mut best: Option<&Value> = None;
    for candidate in candidates {
        let Some(current) = best else {
            best = Some(candidate);
            continue;
        };
        let ordering = ops::order(candidate, current).ok_or_else(|| {
            fail(
                name,
                format!(
                    "cannot compare {} and {}",
                    describe(current),
                    describe(candidate)
                ),
            )
        })?;
        let wanted = if max {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        if ordering == wanted {
            best = Some(candidate);
        }
    }
    best.cloned().ok_or_else(|| fail(name, "the list is empty"))
}

/// `range(stop)`, `range(start, stop)`, `range(start, stop, step)`.
fn range(name: &str, args: &[Cow<'_, Value>], budget: &Budget) -> Result<Value, YaqlError> {
    let ints = args
        .iter()
        .map(|a| int_arg(name, a))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, stop, step) = match ints.as_slice() {
        [stop] => (0, *stop, 1),
        [start, stop] => (*start, *stop, 1),
        [start, stop, step] => (*start, *stop, *step),
        _ => return Err(fail(name, "takes 1 to 3 integers")),
    };
    if step == 0 {
        return Err(fail(name, "step must not be zero"));
    }
    let span = if step > 0 { stop - start } else { start - stop };
    let count = if span > 0 {
        (span + step.abs() - 1) / step.abs()
    } else {
        0
    };
    budget.charge(usize::try_from(count).unwrap_or(usize::MAX))?;
    (0..count)
        .map(|i| ops::int_value(start + i * step).ok_or_else(|| fail(name, "integer overflow")))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// Sorts `items` by `keys` (all numbers or all strings; stable).
#[inline(never)]
pub(super) fn sort_by_keys(
    name: &str,
    items: &[Value],
    keys: &[Value],
    descending: bool,
) -> Result<Value, YaqlError> {
    let all_strings = keys.iter().all(Value::is_string);
    let all_numbers = keys.iter().all(Value::is_number);
    if !all_strings && !all_numbers {
        let first = &keys[0];
        let message = match keys.iter().find(|k| ops::order(first, k).is_none()) {
            Some(other) if ops::order(first, first).is_some() => {
                format!("cannot compare {} and {}", describe(first), describe(other))
            }
            _ => format!("cannot order {}", describe(first)),
        };
        return Err(fail(name, message));
    }
    let all_ints = keys.iter().all(|k| matches!(num(k), Some(Num::Int(_))));
    let compare = |a: &Value, b: &Value| match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) if all_ints => x.cmp(&y),
        (Some(x), Some(y)) => x.as_f64().total_cmp(&y.as_f64()),
        _ => a.as_str().cmp(&b.as_str()),
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&i, &j| {
        let ordering = compare(&keys[i], &keys[j]);
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
    Ok(Value::Array(
        order.into_iter().map(|i| items[i].clone()).collect(),
    ))
}
