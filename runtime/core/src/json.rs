//! Bounds on JSON that enters Squall from outside (API bodies, webhook payloads, component
//! results, sensor emits).
//!
//! Records are stored and read back as JSON; serde_json refuses to read anything nested more
//! than 128 levels, so a payload of, say, 126 nested arrays that was accepted would become
//! unreadable once wrapped in its trigger instance record — every list page holding it would
//! fail. Input is therefore refused at the door when nested deeper than the limit
//! (`[server] max_json_depth`, default [`MAX_DEPTH`]), which leaves room for the records' own
//! levels.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Default deepest nesting of arrays and objects accepted from outside: 64 levels (`[]` is
/// depth 1). Real payloads (GitHub's, Alertmanager's) stay under 10.
pub const MAX_DEPTH: usize = 64;

/// Highest `[server] max_json_depth` accepted: 100 levels, leaving the records that wrap a
/// value (a trigger instance, an execution's context) 20 levels under the 120 the store
/// accepts (serde_json reads 128 back).
pub const MAX_CONFIGURABLE_DEPTH: usize = 100;

static LIMIT: AtomicUsize = AtomicUsize::new(MAX_DEPTH);

/// Sets the depth limit of every later check in this process (the server calls it with
/// `[server] max_json_depth`, clamped to 1..=[`MAX_CONFIGURABLE_DEPTH`]). Process-wide: the
/// last call wins.
pub fn configure(max_depth: usize) {
    LIMIT.store(
        max_depth.clamp(1, MAX_CONFIGURABLE_DEPTH),
        Ordering::Relaxed,
    );
}

/// The depth limit now in force (default [`MAX_DEPTH`]).
pub fn max_depth() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// How deep `text` (JSON, valid or not) nests arrays and objects, scanning at most until
/// `limit` is passed: returns `limit + 1` as soon as it is.
pub fn nesting_depth(text: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > limit {
                        return deepest;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// How deep `value` nests arrays and objects, looking no deeper than `limit + 1` levels (so
/// the walk is bounded whatever the value).
pub fn value_depth(value: &serde_json::Value, limit: usize) -> usize {
    fn walk(v: &serde_json::Value, depth: usize, limit: usize) -> usize {
        if depth > limit {
            return depth;
        }
        match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| walk(i, depth + 1, limit))
                .max()
                .unwrap_or(depth + 1),
            serde_json::Value::Object(map) => map
                .values()
                .map(|i| walk(i, depth + 1, limit))
                .max()
                .unwrap_or(depth + 1),
            _ => depth,
        }
    }
    walk(value, 0, limit)
}

/// Checks that a value Squall made (a rendered template, an evaluated expression) nests no
/// deeper than [`max_depth`]: nested deeper, the record holding it could not be read back.
///
/// # Errors
/// A message naming the limit.
pub fn check_value_depth(value: &serde_json::Value) -> Result<(), String> {
    let limit = max_depth();
    within_limit("value", value_depth(value, limit), limit)
}

/// `Ok` when `depth` is at most `limit`, else the message naming `what` and the limit.
fn within_limit(what: &str, depth: usize, limit: usize) -> Result<(), String> {
    if depth > limit {
        Err(format!(
            "{what} nested deeper than {limit} levels (the limit of arrays and objects inside \
             each other, [server] max_json_depth)"
        ))
    } else {
        Ok(())
    }
}

/// Checks that `text` nests no deeper than [`max_depth`].
///
/// # Errors
/// A message naming the limit, e.g. `JSON nested deeper than 64 levels (the limit of arrays
/// and objects inside each other, [server] max_json_depth)`.
pub fn check_depth(text: &[u8]) -> Result<(), String> {
    let limit = max_depth();
    within_limit("JSON", nesting_depth(text, limit), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_not_strings() {
        for (text, depth) in [
            ("1", 0),
            ("[]", 1),
            (r#"{"a": [1, {"b": []}]}"#, 4),
            (r#"["[[[[", "\"[[["]"#, 1),
            (r#"[[], [], [[]]]"#, 3),
        ] {
            assert_eq!(nesting_depth(text.as_bytes(), 100), depth, "{text}");
        }
    }

    #[test]
    fn value_depth_matches_text_depth_and_is_bounded() {
        for text in ["1", "[]", r#"{"a": [1, {"b": []}]}"#, "[[], [[[]]]]"] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                value_depth(&v, 100),
                nesting_depth(text.as_bytes(), 100),
                "{text}"
            );
        }
        let deep: serde_json::Value =
            serde_json::from_str(&("[".repeat(100) + &"]".repeat(100))).unwrap();
        assert_eq!(value_depth(&deep, 10), 11);
        assert!(check_value_depth(&deep).is_err());
    }

    #[test]
    fn deep_input_is_refused_at_the_limit() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(check_depth(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let e = check_depth(deep.as_bytes()).unwrap_err();
        assert!(e.contains("deeper than 64 levels"), "{e}");
        // The scan stops early: a megabyte of '[' costs no more than the limit.
        assert_eq!(nesting_depth("[".repeat(1 << 20).as_bytes(), 10), 11);
    }
}
