//! The string built-ins, as YAQL's `strings` library (Python's `str` methods) defines them.

use super::YaqlError;
use super::builtins::{fail, int_arg, str_arg};
use super::eval::Budget;
use super::functions::Builtin;
use super::ops::{check_string_len, describe, to_str};
use serde_json::Value;
use std::borrow::Cow;

/// Applies a string built-in (`join`, `split`, `toUpper`, `toLower`, `trim`, `startsWith`,
/// `endsWith`, `replace`, `concat`, `format`).
#[inline(never)]
pub(super) fn apply(
    builtin: Builtin,
    args: &[Cow<'_, Value>],
    budget: &Budget,
) -> Result<Value, YaqlError> {
    let name = builtin.name();
    let null = Value::Null;
    let arg = |i: usize| args.get(i).map_or(&null, |a| &**a);
    // A trailing argument that is absent or null takes its default.
    let optional = |i: usize| args.get(i).map(|a| &**a).filter(|a| !a.is_null());
    let rest = args.get(1..).unwrap_or_default();
    match builtin {
        Builtin::Join => join(name, arg(0), arg(1)),
        Builtin::Split => split(
            name,
            str_arg(name, arg(0))?,
            optional(1),
            optional(2),
            budget,
        ),
        Builtin::ToUpper => Ok(Value::String(str_arg(name, arg(0))?.to_uppercase())),
        Builtin::ToLower => Ok(Value::String(str_arg(name, arg(0))?.to_lowercase())),
        Builtin::Trim => {
            let s = str_arg(name, arg(0))?;
            Ok(Value::from(match optional(1) {
                Some(chars) => {
                    let chars = str_arg(name, chars)?;
                    s.trim_matches(|c| chars.contains(c))
                }
                None => s.trim(),
            }))
        }
        Builtin::StartsWith | Builtin::EndsWith => {
            let s = str_arg(name, arg(0))?;
            let mut found = false;
            for affix in rest {
                let affix = str_arg(name, affix)?;
                found |= if builtin == Builtin::StartsWith {
                    s.starts_with(affix)
                } else {
                    s.ends_with(affix)
                };
            }
            Ok(Value::Bool(found))
        }
        Builtin::Replace => {
            let count = optional(3).map(|c| int_arg(name, c)).transpose()?;
            let (old, new) = (str_arg(name, arg(1))?, str_arg(name, arg(2))?);
            replace(str_arg(name, arg(0))?, old, new, count)
        }
        Builtin::Concat => concat(name, args, budget),
        Builtin::Format => format(name, str_arg(name, arg(0))?, rest),
        _ => Err(fail(name, "is not a string function")),
    }
}

/// `list.join(separator)` or `separator.join(list)`: elements as `str()` gives them.
fn join(name: &str, a: &Value, b: &Value) -> Result<Value, YaqlError> {
    let (items, separator) = match (a, b) {
        (Value::Array(items), Value::String(separator))
        | (Value::String(separator), Value::Array(items)) => (items, separator),
        _ => {
            let (a, b) = (describe(a), describe(b));
            let message = format!("expected a list and a separator string, got {a} and {b}");
            return Err(fail(name, message));
        }
    };
    let parts: Vec<String> = items.iter().map(to_str).collect();
    let len = parts.iter().map(String::len).sum::<usize>();
    check_string_len(len.saturating_add(separator.len().saturating_mul(parts.len())))?;
    Ok(Value::String(parts.join(separator)))
}

/// `split(string, separator => null, maxSplits => -1)`, as Python's `str.split`: without a
/// separator, on runs of whitespace, ignoring leading and trailing whitespace.
fn split(
    name: &str,
    s: &str,
    separator: Option<&Value>,
    max_splits: Option<&Value>,
    budget: &Budget,
) -> Result<Value, YaqlError> {
    let max = max_splits.map(|m| int_arg(name, m)).transpose()?;
    let max = max.and_then(|m| usize::try_from(m).ok());
    let parts: Vec<&str> = match separator {
        Some(separator) => {
            let separator = str_arg(name, separator)?;
            if separator.is_empty() {
                return Err(fail(name, "empty separator"));
            }
            match max {
                Some(max) => s.splitn(max.saturating_add(1), separator).collect(),
                None => s.split(separator).collect(),
            }
        }
        None => {
            let mut parts = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if max == Some(parts.len()) {
                    parts.push(rest);
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                parts.push(&rest[..end]);
                rest = rest[end..].trim_start();
            }
            parts
        }
    };
    budget.charge(parts.len())?;
    Ok(Value::Array(parts.into_iter().map(Value::from).collect()))
}

/// `replace(string, old, new, count => -1)`; a negative count replaces every occurrence.
fn replace(s: &str, old: &str, new: &str, count: Option<i128>) -> Result<Value, YaqlError> {
    let found = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    let limit = count.and_then(|c| usize::try_from(c).ok());
    let replaced = limit.map_or(found, |limit| found.min(limit));
    let kept = s.len().saturating_sub(replaced.saturating_mul(old.len()));
    check_string_len(kept.saturating_add(replaced.saturating_mul(new.len())))?;
    Ok(Value::String(s.replacen(old, new, replaced)))
}

/// `concat`: strings joined, or lists chained.
fn concat(name: &str, args: &[Cow<'_, Value>], budget: &Budget) -> Result<Value, YaqlError> {
    if args.iter().all(|a| a.is_string()) {
        let parts: Vec<&str> = args.iter().filter_map(|a| a.as_str()).collect();
        check_string_len(parts.iter().map(|p| p.len()).sum())?;
        return Ok(Value::String(parts.concat()));
    }
    let mut out = Vec::new();
    for arg in args {
        let Value::Array(items) = &**arg else {
            let message = format!("expected all strings or all lists, got {}", describe(arg));
            return Err(fail(name, message));
        };
        budget.charge(items.len())?;
        out.extend(items.iter().cloned());
    }
    Ok(Value::Array(out))
}

/// Python's `str.format` with positional fields only: `{}`, `{0}`, `{{` and `}}`.
fn format(name: &str, template: &str, args: &[Cow<'_, Value>]) -> Result<Value, YaqlError> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    let mut auto = 0usize;
    let mut numbered: Option<bool> = None;
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                out.push(c);
            }
            '}' => return Err(fail(name, "single \"}\" in the format string")),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => field.push(c),
                        None => return Err(fail(name, "unclosed \"{\" in the format string")),
                    }
                }
                let manual = !field.is_empty();
                if numbered.is_some_and(|m| m != manual) {
                    let message = "cannot mix automatic ({}) and numbered ({0}) fields";
                    return Err(fail(name, message));
                }
                numbered = Some(manual);
                let position = if manual {
                    field.parse::<usize>().map_err(|_| {
                        fail(name, format!("unsupported format field \"{{{field}}}\""))
                    })?
                } else {
                    auto += 1;
                    auto - 1
                };
                let Some(value) = args.get(position) else {
                    let message =
                        format!("no argument for field {position} ({} given)", args.len());
                    return Err(fail(name, message));
                };
                out.push_str(&to_str(value));
                check_string_len(out.len())?;
            }
            other => out.push(other),
        }
    }
    Ok(Value::String(out))
}
