//! Formatting for humans (tables, one-line JSON) and for scripts (`--json`).

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use std::io::Write;

/// A table with the house style: condensed borders, wrapped to the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// Prints a table to stdout.
pub fn print_table(t: &Table) {
    out(&format!("{t}\n"));
}

/// Text a component produced, made safe for a terminal: control characters other than newline
/// and tab (escape sequences could rewrite the screen or the clipboard) become `\u{..}` escapes.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Writes to stdout, ignoring a closed pipe (`squall ... | head`).
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Pretty JSON of `value` to stdout, for `--json`.
pub fn print_json<T: Serialize>(value: &T) {
    let text = serde_json::to_string_pretty(value).expect("records serialize");
    out(&format!("{text}\n"));
}

/// JSON on one line with `": "` and `", "` separators, e.g. `{"stdout": "hello"}`.
pub fn one_line(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), one_line(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(one_line).collect();
            format!("[{}]", items.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

/// `value` on one line when short, else indented over several lines.
pub fn json_text(value: &Value) -> String {
    let line = one_line(value);
    if line.len() <= 100 {
        line
    } else {
        serde_json::to_string_pretty(value).expect("values serialize")
    }
}

/// Milliseconds below 10 s (`3 ms`), seconds above (`12.4 s`).
pub fn elapsed(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.1} s")
    }
}

/// An RFC 3339 UTC timestamp to the millisecond.
pub fn timestamp(t: &Timestamp) -> String {
    format!("{t:.3}")
}

/// A size in bytes the way operators write it (`64 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} B")
}

/// A table of JSON records: one column per `(header, JSON pointer)`, e.g.
/// `("rule", "/rule/ref")`; strings shown bare, other values as one-line JSON.
pub fn records(list: &Value, columns: &[(&str, &str)]) -> Table {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let mut t = table(&headers);
    for item in list.as_array().into_iter().flatten() {
        t.add_row(
            columns
                .iter()
                .map(|(_, pointer)| match item.pointer(pointer) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => one_line(other),
                })
                .collect::<Vec<_>>(),
        );
    }
    t
}

/// Prints `list` (a JSON array of records) as pretty JSON when `json` (`--json`), else as a
/// [`records`] table of `columns`.
pub fn print_records(list: &Value, columns: &[(&str, &str)], json: bool) {
    if json {
        print_json(list);
    } else {
        print_table(&records(list, columns));
    }
}

/// Prints one record: as JSON with `json`, else as a `property | value` table of `rows` (see
/// [`print_properties`]).
pub fn print_record(record: &Value, rows: &[(&str, &str)], json: bool) {
    if json {
        print_json(record);
    } else {
        print_properties(record, rows);
    }
}

/// `v` for a table cell: strings bare, `null` (or a missing field) empty, other values as
/// [`json_text`].
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => json_text(other),
    }
}

/// Prints a two-column `property | value` table of `value`'s fields at the JSON `pointer`s of
/// `rows` (`(label, pointer)`), each shown by [`text`] (a missing or null field is empty).
pub fn print_properties(value: &Value, rows: &[(&str, &str)]) {
    let mut t = table(&["property", "value"]);
    for (name, pointer) in rows {
        let shown = value.pointer(pointer).map(text).unwrap_or_default();
        t.add_row(vec![(*name).to_string(), shown]);
    }
    print_table(&t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_line_json_has_spaced_separators() {
        assert_eq!(
            one_line(&json!({"stdout": "hello"})),
            r#"{"stdout": "hello"}"#
        );
        assert_eq!(
            one_line(&json!({"a": [1, {"b": null}]})),
            r#"{"a": [1, {"b": null}]}"#
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("ok\n\x1b]52;c;SGVsbG8=\x07done"),
            "ok\n\\u{1b}]52;c;SGVsbG8=\\u{7}done"
        );
    }

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(1000), "1000 B");
        assert_eq!(elapsed(0.0031), "3 ms");
        assert_eq!(elapsed(12.42), "12.4 s");
    }
}
