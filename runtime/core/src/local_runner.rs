//! StackStorm's local runner semantics, without I/O: how a script's arguments are formed from an
//! execution's parameters, and how a finished command becomes a status and a result.
//!
//! Sources (StackStorm 3.x): `st2common/util/action_db.py` (`get_args`,
//! `serialize_positional_argument`), `st2common/models/system/action.py`
//! (`ShellScriptAction._get_script_arguments`), `contrib/runners/local_runner/local_runner/
//! base.py` (`_run`: result and status), `st2common/util/misc.py` (`strip_shell_chars`),
//! `st2common/util/jsonify.py` (`json_loads`), `st2common/constants/action.py`
//! (`LIVEACTION_STATUS` map of exit codes).
//!
//! StackStorm builds one shell string and lets `/bin/sh` split it again; Squall runs the program
//! directly, so each argument here is the word the shell would have produced.

use crate::execution::ExecutionStatus;
use crate::runner_type::RunnerType;
use crate::{Action, param};
use serde_json::{Map, Value, json};

/// The exit code StackStorm records for a command killed at its timeout
/// (`st2common/util/green/shell.py` `TIMEOUT_EXIT_CODE`).
pub const TIMEOUT_EXIT_CODE: i32 = -9;

/// An execution's parameters split as StackStorm's `_split_params`: runner parameters (every
/// name the runner declares, whether the action overrides it or not), then action parameters.
pub fn split_parameters(
    runner: RunnerType,
    parameters: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let declared = &runner.spec().runner_parameters;
    parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| declared.contains_key(k))
}

/// The arguments a `local-shell-script` action's script gets, after its path: named arguments
/// first (`<kwarg_op><name>=<value>`, a `true` boolean as the bare `<kwarg_op><name>`, `false`,
/// null and empty strings left out; values as Python's `str()` writes them, lists and objects
/// included), then positional ones in `position` order (as `serialize_positional_argument`;
/// a missing one is an empty argument).
pub fn script_arguments(
    action: &Action,
    action_params: &Map<String, Value>,
    kwarg_op: &str,
) -> Vec<String> {
    let specs = action.parameters.specs();
    let positional: Vec<&param::ParamSpec> = specs
        .iter()
        .filter(|s| s.position.is_some())
        .copied()
        .collect();
    let mut args = Vec::new();
    for (name, value) in action_params {
        if positional.iter().any(|s| &s.name == name) {
            continue;
        }
        match value {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::Bool(true) => args.push(format!("{kwarg_op}{name}")),
            Value::Bool(false) => {}
            v => args.push(format!("{kwarg_op}{name}={}", python_str(v))),
        }
    }
    for spec in positional {
        let value = action_params.get(&spec.name).unwrap_or(&Value::Null);
        args.push(positional_argument(spec.kind.as_deref(), value));
    }
    args
}

/// One positional argument, as StackStorm's `serialize_positional_argument`: strings as they
/// are, numbers as Python writes them, booleans `1`/`0`, arrays joined with `,`, objects as
/// JSON, null as empty; for `integer` and untyped parameters `str(v) if v else ""` (so `0`
/// becomes an empty argument, as in StackStorm).
pub fn positional_argument(kind: Option<&str>, value: &Value) -> String {
    if value.is_null() {
        return String::new();
    }
    match kind {
        Some("string" | "number" | "float") => python_str(value),
        Some("boolean") => if truthy(value) { "1" } else { "0" }.into(),
        Some("array" | "list") => match value {
            Value::Array(items) => items.iter().map(python_str).collect::<Vec<_>>().join(","),
            v if truthy(v) => python_str(v),
            _ => String::new(),
        },
        Some("object") => {
            if truthy(value) {
                value.to_string()
            } else {
                String::new()
            }
        }
        Some("null") => String::new(),
        _ => {
            if truthy(value) {
                python_str(value)
            } else {
                String::new()
            }
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `value` as Python's `str()` writes the value StackStorm decoded from JSON: strings bare,
/// `True`/`False`/`None`, floats with a decimal point, lists and dicts in Python's `repr`.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    n.to_string()
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => python_string_repr(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", python_string_repr(k), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr` of a string: single quotes unless the text has a single quote and no double
/// quote; backslashes, the chosen quote and control characters escaped.
fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// StackStorm's `strip_shell_chars`: one trailing `\n`, then one trailing `\r`, removed.
pub fn strip_shell_chars(text: &str) -> &str {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text)
}

/// The status and result of a finished command, as StackStorm's local runner records them:
/// `{failed, succeeded, return_code, stdout, stderr}` (stdout and stderr stripped of one
/// trailing newline, then parsed as JSON when they are JSON), plus `error` when given (the
/// timeout's `Action failed to complete in <n> seconds`). `return_code` is the exit code, or
/// minus the signal that ended the program (Python's convention). The status: 0 `succeeded`,
/// -9 `timeout`, -15 `abandoned`, anything else `failed`.
pub fn shell_result(
    return_code: i32,
    stdout: &str,
    stderr: &str,
    error: Option<String>,
) -> (ExecutionStatus, Value) {
    let succeeded = return_code == 0;
    let mut result = json!({
        "failed": !succeeded,
        "succeeded": succeeded,
        "return_code": return_code,
        "stdout": json_or_text(strip_shell_chars(stdout)),
        "stderr": json_or_text(strip_shell_chars(stderr)),
    });
    if let Some(error) = error {
        result["error"] = Value::String(error);
    }
    let status = match return_code {
        0 => ExecutionStatus::Succeeded,
        TIMEOUT_EXIT_CODE => ExecutionStatus::Timeout,
        -15 => ExecutionStatus::Abandoned,
        _ => ExecutionStatus::Failed,
    };
    (status, result)
}

/// `text` parsed as JSON when it is JSON (as StackStorm's `jsonify.json_loads`), else itself.
pub fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The message StackStorm records when a command ran past its timeout (`local_runner/base.py`).
pub fn timeout_message(seconds: u64) -> String {
    format!("Action failed to complete in {seconds} seconds")
}

/// The `error` of a command that a signal ended (its `return_code` is minus the signal, as
/// StackStorm records it): names the signal and, where Squall knows it, who sent it —
/// `SIGXCPU` is the CPU-seconds limit (`RLIMIT_CPU`, `cpu_seconds`), a `SIGKILL` or `SIGTERM`
/// that Squall did not send came from outside (the kernel's out-of-memory killer, an operator).
///
/// `name` is the signal's name (e.g. `SIGKILL`, from the host).
pub fn signal_message(signal: i32, name: &str, cpu_seconds: u64) -> String {
    match signal {
        24 => format!(
            "the command was killed by {name}: it used its {cpu_seconds} CPU seconds (RLIMIT_CPU)"
        ),
        9 | 15 => format!(
            "the command was killed by {name}, not sent by Squall (the kernel's out-of-memory \
             killer or another process)"
        ),
        _ => format!("the command was ended by {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(params: &str) -> Action {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.sh"), b"#!/bin/sh\n").unwrap();
        Action::parse(
            &format!(
                "name: s\nrunner_type: local-shell-script\nentry_point: s.sh\nparameters:\n{params}"
            ),
            "ops",
            dir.path(),
            &dir.path().join("s.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn script_arguments_follow_st2() {
        // As st2's ShellScriptAction._get_script_arguments and action_db.get_args.
        let a = action(
            "  p0: {type: string, position: 0}\n  p1: {type: integer, position: 1}\n  p2: {type: boolean, position: 2}\n  \
             flag: {type: boolean}\n  off: {type: boolean}\n  name: {type: string}\n  empty: {type: string}\n  \
             list: {type: array}\n  obj: {type: object}\n  f: {type: number}\n  missing: {type: string}\n",
        );
        let given = json!({
            "p0": "a b", "p1": 0, "p2": true, "flag": true, "off": false, "name": "it's",
            "empty": "", "list": ["a", 1, true], "obj": {"k": "v"}, "f": 2.0, "timeout": 5,
        });
        let params = a.parameters.resolve(given.as_object().unwrap()).unwrap();
        let (runner, action_params) = split_parameters(RunnerType::LocalShellScript, &params);
        assert_eq!(runner["timeout"], json!(5));
        assert!(!action_params.contains_key("timeout") && !action_params.contains_key("kwarg_op"));
        assert_eq!(
            script_arguments(&a, &action_params, "--"),
            vec![
                "--f=2.0",
                "--flag",
                "--list=['a', 1, True]",
                "--name=it's",
                "--obj={'k': 'v'}",
                "a b",
                "", // integer 0 → "" (st2's quirk)
                "1",
            ]
        );
    }

    #[test]
    fn positional_arguments_serialize_as_st2() {
        for (kind, value, want) in [
            (Some("string"), json!("x"), "x"),
            (Some("string"), json!(null), ""),
            (Some("number"), json!(1.5), "1.5"),
            (Some("integer"), json!(7), "7"),
            (Some("integer"), json!(0), ""),
            (Some("boolean"), json!(false), "0"),
            (Some("boolean"), json!(true), "1"),
            (Some("array"), json!(["a", 2]), "a,2"),
            (Some("array"), json!([]), ""),
            (Some("object"), json!({"a": 1}), "{\"a\":1}"),
            (None, json!("x"), "x"),
        ] {
            assert_eq!(positional_argument(kind, &value), want, "{kind:?} {value}");
        }
    }

    #[test]
    fn results_and_statuses_follow_st2() {
        let (s, r) = shell_result(0, "{\"a\": 1}\n", "warn\r\n", None);
        assert_eq!(s, ExecutionStatus::Succeeded);
        assert_eq!(
            r,
            json!({"failed": false, "succeeded": true, "return_code": 0, "stdout": {"a": 1}, "stderr": "warn"})
        );
        let (s, r) = shell_result(TIMEOUT_EXIT_CODE, "", "", Some(timeout_message(2)));
        assert_eq!(s, ExecutionStatus::Timeout);
        assert_eq!(r["error"], json!("Action failed to complete in 2 seconds"));
        for (code, want) in [
            (1, ExecutionStatus::Failed),
            (2, ExecutionStatus::Failed),
            (127, ExecutionStatus::Failed),
            (-15, ExecutionStatus::Abandoned),
        ] {
            assert_eq!(shell_result(code, "", "", None).0, want, "{code}");
        }
        assert_eq!(strip_shell_chars("a\n\n"), "a\n");
        assert_eq!(json_or_text("42"), json!(42));
        assert_eq!(json_or_text("hi there"), json!("hi there"));
    }

    #[test]
    fn python_repr_of_strings() {
        assert_eq!(python_repr(&json!("a'b")), "\"a'b\"");
        assert_eq!(python_repr(&json!("a'\"b")), "'a\\'\"b'");
        assert_eq!(python_repr(&json!("l\n")), "'l\\n'");
        assert_eq!(python_repr(&json!(null)), "None");
    }
}
