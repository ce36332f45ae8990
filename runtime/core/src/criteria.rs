//! Rule criteria with StackStorm's 33 operator names and semantics
//! (`st2common/operators.py`, `st2reactor/rules/filter.py`).
//!
//! ```yaml
//! criteria:
//!   trigger.body.alerts[0].labels.severity:       # a JSONPath over {trigger: payload}
//!     type: equals                                 # operator (or alias, e.g. eq)
//!     pattern: critical
//!   trigger.body.alerts[0].labels.service#svc:     # text after '#' is a tag (same key twice)
//!     type: inside
//!     pattern: [nginx, haproxy]
//!   trigger.body.commits:
//!     type: search                                 # match items of a list
//!     condition: any                               # any | all | any2any | all2any
//!     pattern:
//!       item.author.name: {type: equals, pattern: alice}
//! ```
//!
//! Semantics followed: every criterion must match; the key's first JSONPath match is the value
//! (missing → null); no type coercion (`"5"` is not `5`); a string pattern is rendered as a
//! Jinja template (context `trigger`, `st2kv.system`) keeping its type — a pattern that is
//! exactly one `{{ expression }}` takes that expression's value, and any other rendered text is
//! read as JSON when it is valid JSON (StackStorm's `json.loads`), so `"{{ trigger.limit }}"`
//! stays a number; a null pattern never matches (except for
//! `nequals`, `exists`, `nexists`); an operator that cannot apply to its operands (comparing a
//! string with a number, a regex on a list, ...) is an error — a non-match whose reason the
//! rule enforcement records.

use crate::template::{self, Context};
use serde_json::{Map, Value};
use serde_json_path::JsonPath;
use std::cmp::Ordering;

/// An operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `equals`, `eq`.
    Equals,
    /// `nequals`, `neq`.
    NEquals,
    /// `iequals`, `ieq`: case-insensitive string equality.
    IEquals,
    /// `contains`: substring, list member, or object key.
    Contains,
    /// `icontains`.
    IContains,
    /// `ncontains`.
    NContains,
    /// `incontains`.
    INContains,
    /// `startswith`.
    StartsWith,
    /// `istartswith`.
    IStartsWith,
    /// `endswith`.
    EndsWith,
    /// `iendswith`.
    IEndsWith,
    /// `lessthan`, `lt`.
    LessThan,
    /// `greaterthan`, `gt`.
    GreaterThan,
    /// `matchwildcard`: shell-style `*`, `?`, `[seq]`.
    MatchWildcard,
    /// `matchregex`: regex anchored at the start, `.` matches newlines (deprecated in st2).
    MatchRegex,
    /// `regex`: regex found anywhere.
    Regex,
    /// `iregex`: case-insensitive `regex`.
    IRegex,
    /// `timediff_lt`, `td_lt`: the value (a date) is less than `pattern` seconds ago.
    TimeDiffLt,
    /// `timediff_gt`, `td_gt`: the value is more than `pattern` seconds ago.
    TimeDiffGt,
    /// `exists`: the key is there and not null.
    Exists,
    /// `nexists`.
    NExists,
    /// `inside`, `in`: the value is in the pattern (substring or list member).
    Inside,
    /// `ninside`, `nin`.
    NInside,
    /// `search`: child criteria over the items of a list.
    Search,
}

/// Every operator name StackStorm accepts, with its operator (33 names).
pub const OPERATORS: [(&str, Operator); 33] = [
    ("equals", Operator::Equals),
    ("eq", Operator::Equals),
    ("nequals", Operator::NEquals),
    ("neq", Operator::NEquals),
    ("iequals", Operator::IEquals),
    ("ieq", Operator::IEquals),
    ("contains", Operator::Contains),
    ("icontains", Operator::IContains),
    ("ncontains", Operator::NContains),
    ("incontains", Operator::INContains),
    ("startswith", Operator::StartsWith),
    ("istartswith", Operator::IStartsWith),
    ("endswith", Operator::EndsWith),
    ("iendswith", Operator::IEndsWith),
    ("lessthan", Operator::LessThan),
    ("lt", Operator::LessThan),
    ("greaterthan", Operator::GreaterThan),
    ("gt", Operator::GreaterThan),
    ("matchwildcard", Operator::MatchWildcard),
    ("matchregex", Operator::MatchRegex),
    ("regex", Operator::Regex),
    ("iregex", Operator::IRegex),
    ("timediff_lt", Operator::TimeDiffLt),
    ("td_lt", Operator::TimeDiffLt),
    ("timediff_gt", Operator::TimeDiffGt),
    ("td_gt", Operator::TimeDiffGt),
    ("exists", Operator::Exists),
    ("nexists", Operator::NExists),
    ("inside", Operator::Inside),
    ("in", Operator::Inside),
    ("ninside", Operator::NInside),
    ("nin", Operator::NInside),
    ("search", Operator::Search),
];

impl Operator {
    /// The operator for a name (case-insensitive, as StackStorm's `get_operator`).
    ///
    /// # Errors
    /// `unknown operator "equal" (did you mean "equals"?)`.
    pub fn parse(name: &str) -> Result<Operator, String> {
        let lower = name.to_ascii_lowercase();
        if let Some((_, op)) = OPERATORS.iter().find(|(n, _)| *n == lower) {
            return Ok(*op);
        }
        let closest = OPERATORS
            .iter()
            .map(|(n, _)| (strsim::levenshtein(n, &lower), *n))
            .min()
            .filter(|(d, _)| *d <= 3)
            .map(|(_, n)| format!(" (did you mean {n:?}?)"))
            .unwrap_or_default();
        Err(format!("unknown operator {name:?}{closest}"))
    }
}

/// `search`'s `condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchCondition {
    /// Some item matches all child criteria.
    Any,
    /// Every item matches all child criteria.
    All,
    /// Some item matches some child criterion.
    Any2Any,
    /// Every item matches some child criterion.
    All2Any,
}

#[derive(Debug, Clone)]
enum Pattern {
    None,
    /// A literal (strings already JSON-decoded when they were valid JSON).
    Literal(Value),
    /// A template string, rendered at evaluation time.
    Template(String),
    /// Child criteria of `search`.
    Children(Box<Criteria>, SearchCondition),
}

#[derive(Debug, Clone)]
struct Criterion {
    key: String,
    /// The key's first segment (`trigger`, or `item` inside `search`).
    root: String,
    /// The rest of the key, as a JSONPath from that root.
    path: JsonPath,
    operator: Operator,
    pattern: Pattern,
    /// The regex of a regex or wildcard operator with a literal pattern, compiled once.
    regex: Option<regex::Regex>,
}

/// A rule's criteria, compiled.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    items: Vec<Criterion>,
}

/// Why a criterion could not be evaluated: the rule does not match, and the enforcement says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("criteria {key:?} ({operator}): {message}")]
pub struct CriteriaError {
    /// The criterion's key as written.
    pub key: String,
    /// The operator name.
    pub operator: String,
    /// What went wrong.
    pub message: String,
}

/// Splits a StackStorm criteria key (jsonpath-rw syntax: `a.b[0].c`, `a.'x-y'`, `a.*`) into its
/// first segment and an RFC 9535 JSONPath for the rest.
fn to_json_path(key: &str) -> Result<(String, JsonPath), String> {
    let split = key.find(['.', '[']).unwrap_or(key.len());
    let (root, rest) = key.split_at(split);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    let mut out = String::from("$");
    let mut chars = rest.chars().peekable();
    let mut segment = String::new();
    let flush = |segment: &mut String, out: &mut String| {
        if segment.is_empty() {
            return;
        }
        let plain = segment
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if segment == "*" || plain {
            out.push('.');
            out.push_str(segment);
        } else {
            out.push_str("['");
            out.push_str(&segment.replace('\\', "\\\\").replace('\'', "\\'"));
            out.push_str("']");
        }
        segment.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut segment, &mut out),
            '[' => {
                flush(&mut segment, &mut out);
                out.push('[');
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '\'' | '"' if segment.is_empty() => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    segment.push(d);
                }
                // Quoted: always bracketed.
                out.push_str("['");
                out.push_str(&segment.replace('\\', "\\\\").replace('\'', "\\'"));
                out.push_str("']");
                segment.clear();
            }
            other => segment.push(other),
        }
    }
    flush(&mut segment, &mut out);
    let path = JsonPath::parse(&out).map_err(|e| format!("is not a valid path ({e})"))?;
    Ok((root.to_string(), path))
}

impl Criteria {
    /// Compiles the `criteria` mapping of a rule.
    ///
    /// # Errors
    /// A message naming the key: not a mapping, missing `type`, unknown operator (with a
    /// suggestion), a bad path, a template that does not parse, a regex pattern that does not
    /// compile, or a bad `search` condition/pattern.
    pub fn parse(map: &Map<String, Value>) -> Result<Criteria, String> {
        Criteria::parse_under(map, "trigger")
    }

    /// Parses criteria whose keys start with `root` (`trigger`, or `item` inside `search`).
    fn parse_under(map: &Map<String, Value>, expected_root: &str) -> Result<Criteria, String> {
        let mut items = Vec::new();
        for (key, spec) in map {
            let fail = |m: String| format!("criteria {key:?}: {m}");
            let Value::Object(spec) = spec else {
                return Err(fail("must be a mapping with `type` and `pattern`".into()));
            };
            let name = spec
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("missing `type` (the operator)".into()))?;
            let operator = Operator::parse(name).map_err(fail)?;
            for k in spec.keys() {
                if !matches!(k.as_str(), "type" | "pattern" | "condition") {
                    return Err(fail(format!(
                        "unknown field {k:?} (expected type, pattern, condition)"
                    )));
                }
            }
            let path_text = key.split('#').next().unwrap_or_default();
            let (root, path) =
                to_json_path(path_text).map_err(|e| fail(format!("key {path_text:?} {e}")))?;
            if root != expected_root {
                return Err(fail(format!(
                    "keys start with \"{expected_root}.\" (the {}), e.g. \"{expected_root}.{path_text}\"",
                    if expected_root == "trigger" {
                        "trigger payload"
                    } else {
                        "list item"
                    }
                )));
            }
            let raw = spec.get("pattern").cloned().unwrap_or(Value::Null);
            let pattern = if operator == Operator::Search {
                let condition = match spec.get("condition").and_then(Value::as_str) {
                    Some("any") => SearchCondition::Any,
                    Some("all") => SearchCondition::All,
                    Some("any2any") => SearchCondition::Any2Any,
                    Some("all2any") => SearchCondition::All2Any,
                    other => {
                        return Err(fail(format!(
                            "search condition {other:?} is not one of any, all, any2any, all2any"
                        )));
                    }
                };
                let Value::Object(children) = &raw else {
                    return Err(fail(
                        "search pattern must be a mapping of item criteria".into(),
                    ));
                };
                Pattern::Children(
                    Box::new(Criteria::parse_under(children, "item").map_err(fail)?),
                    condition,
                )
            } else {
                match raw {
                    Value::Null => Pattern::None,
                    Value::String(s) if template::is_template(&s) => {
                        template::check(&s).map_err(|e| fail(format!("pattern: {e}")))?;
                        Pattern::Template(s)
                    }
                    Value::String(s) => Pattern::Literal(decode(s)),
                    other => Pattern::Literal(other),
                }
            };
            let regex = regex_source(operator, &pattern)
                .map(|source| regex::Regex::new(&source))
                .transpose()
                .map_err(|e| fail(format!("pattern is not a valid regex: {e}")))?;
            items.push(Criterion {
                key: key.clone(),
                root,
                path,
                operator,
                pattern,
                regex,
            });
        }
        Ok(Criteria { items })
    }

    /// Whether there are no criteria (a rule without criteria matches every instance).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Evaluates every criterion against `payload` under the name `trigger`.
    ///
    /// # Errors
    /// [`CriteriaError`] when an operator cannot apply (a non-match with a reason).
    pub fn matches(&self, payload: &Value, ctx: &Context) -> Result<bool, CriteriaError> {
        for c in &self.items {
            if !c.check("trigger", payload, ctx)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn match_item(&self, item: &Value, ctx: &Context, all: bool) -> Result<bool, CriteriaError> {
        let mut results = Vec::with_capacity(self.items.len());
        for c in &self.items {
            results.push(c.check("item", item, ctx)?);
        }
        Ok(if all {
            results.iter().all(|r| *r)
        } else {
            results.iter().any(|r| *r)
        })
    }
}

/// A non-template string pattern is read as JSON when it is valid JSON, as StackStorm's
/// `json.loads` after rendering.
fn decode(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The regex an operator runs, for a literal pattern (compiled once at load).
fn regex_source(op: Operator, pattern: &Pattern) -> Option<String> {
    let Pattern::Literal(Value::String(p)) = pattern else {
        return None;
    };
    match op {
        Operator::MatchWildcard => Some(wildcard_regex(p)),
        Operator::MatchRegex => Some(format!("(?s)^(?:{p})")),
        Operator::Regex => Some(p.clone()),
        Operator::IRegex => Some(format!("(?i){p}")),
        _ => None,
    }
}

impl Criterion {
    /// Checks this criterion with `value` bound to the name `root` (`trigger` or `item`).
    fn check(&self, root: &str, value: &Value, ctx: &Context) -> Result<bool, CriteriaError> {
        let value = if self.root == root {
            self.path
                .query(value)
                .first()
                .cloned()
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let fail = |message: String| CriteriaError {
            key: self.key.clone(),
            operator: operator_name(self.operator).to_string(),
            message,
        };
        let pattern = match &self.pattern {
            Pattern::Children(children, condition) => {
                let Value::Array(items) = &value else {
                    return Err(fail(format!("search needs a list, got {}", kind(&value))));
                };
                let mut outcomes = Vec::with_capacity(items.len());
                let all_children = matches!(condition, SearchCondition::Any | SearchCondition::All);
                for item in items {
                    outcomes.push(children.match_item(item, ctx, all_children)?);
                }
                return Ok(match condition {
                    SearchCondition::Any | SearchCondition::Any2Any => outcomes.iter().any(|o| *o),
                    SearchCondition::All | SearchCondition::All2Any => outcomes.iter().all(|o| *o),
                });
            }
            Pattern::None => Value::Null,
            Pattern::Literal(v) => v.clone(),
            Pattern::Template(t) => {
                match template::render_typed(t, ctx).map_err(|e| fail(format!("pattern: {e}")))? {
                    Value::String(s) => decode(s),
                    typed => typed,
                }
            }
        };
        if let (Some(re), Value::String(text)) = (&self.regex, &value) {
            return Ok(re.is_match(text));
        }
        apply(self.operator, &value, &pattern).map_err(fail)
    }
}

fn operator_name(op: Operator) -> &'static str {
    OPERATORS
        .iter()
        .find(|(_, o)| *o == op)
        .map(|(n, _)| *n)
        .unwrap_or("?")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn strings<'a>(value: &'a Value, pattern: &'a Value) -> Result<(&'a str, &'a str), String> {
    match (value, pattern) {
        (Value::String(v), Value::String(p)) => Ok((v, p)),
        _ => Err(format!(
            "needs two strings, got {} and {}",
            kind(value),
            kind(pattern)
        )),
    }
}

/// Equality without coercion across kinds; numbers compare by value (`1 == 1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// Python's ordering for JSON values: numbers, strings and lists (element-wise) compare within
/// their kind; anything else is an error.
fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .ok_or_else(|| "numbers do not compare".to_string()),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                match compare(p, q)? {
                    Ordering::Equal => continue,
                    other => return Ok(other),
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => Err(format!("cannot compare {} with {}", kind(a), kind(b))),
    }
}

/// Python's `needle in haystack`.
fn contained(needle: &Value, haystack: &Value) -> Result<bool, String> {
    match (needle, haystack) {
        (Value::String(n), Value::String(h)) => Ok(h.contains(n.as_str())),
        (n, Value::Array(items)) => Ok(items.iter().any(|i| equal(i, n))),
        (Value::String(n), Value::Object(m)) => Ok(m.contains_key(n)),
        _ => Err(format!(
            "cannot look for {} in {}",
            kind(needle),
            kind(haystack)
        )),
    }
}

fn lower_contained(needle: &Value, haystack: &Value) -> Result<bool, String> {
    let (h, n) = strings(haystack, needle)?;
    Ok(h.to_lowercase().contains(&n.to_lowercase()))
}

fn wildcard_regex(pattern: &str) -> String {
    // Python's fnmatch.translate: * . ? [seq] [!seq], whole-string match.
    let mut re = String::from("(?s)^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut class = String::new();
                let mut closed = false;
                if chars.peek() == Some(&'!') {
                    chars.next();
                    class.push('^');
                }
                for d in chars.by_ref() {
                    if d == ']' && !(class.is_empty() || class == "^") {
                        closed = true;
                        break;
                    }
                    if d == '\\' || d == '[' {
                        class.push('\\');
                    }
                    class.push(d);
                }
                if closed {
                    re.push('[');
                    re.push_str(&class);
                    re.push(']');
                } else {
                    re.push_str("\\[");
                    re.push_str(&regex::escape(&class));
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    re
}

fn regex_matches(pattern: &str, text: &str) -> Result<bool, String> {
    regex::Regex::new(pattern)
        .map(|re| re.is_match(text))
        .map_err(|e| format!("pattern is not a valid regex: {e}"))
}

fn seconds_since(value: &Value) -> Result<f64, String> {
    let Value::String(text) = value else {
        return Err(format!("needs a date string, got {}", kind(value)));
    };
    let t = text.trim();
    let at: jiff::Timestamp = t
        .parse::<jiff::Timestamp>()
        .or_else(|_| {
            t.parse::<jiff::civil::DateTime>()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|z| z.timestamp())
        })
        .map_err(|e| format!("{t:?} is not a date: {e}"))?;
    Ok(jiff::Timestamp::now().duration_since(at).as_secs_f64())
}

fn number(pattern: &Value) -> Result<f64, String> {
    pattern
        .as_f64()
        .ok_or_else(|| format!("needs a number of seconds, got {}", kind(pattern)))
}

/// Applies one operator, as StackStorm's function of the same name.
fn apply(op: Operator, value: &Value, pattern: &Value) -> Result<bool, String> {
    use Operator::*;
    if pattern.is_null() && !matches!(op, NEquals | Exists | NExists) {
        return Ok(false);
    }
    match op {
        Equals => Ok(equal(value, pattern)),
        NEquals => Ok(!equal(value, pattern)),
        IEquals => strings(value, pattern).map(|(v, p)| v.to_lowercase() == p.to_lowercase()),
        Contains => contained(pattern, value),
        NContains => contained(pattern, value).map(|b| !b),
        IContains => lower_contained(pattern, value),
        INContains => lower_contained(pattern, value).map(|b| !b),
        StartsWith => strings(value, pattern).map(|(v, p)| v.starts_with(p)),
        IStartsWith => {
            strings(value, pattern).map(|(v, p)| v.to_lowercase().starts_with(&p.to_lowercase()))
        }
        EndsWith => strings(value, pattern).map(|(v, p)| v.ends_with(p)),
        IEndsWith => {
            strings(value, pattern).map(|(v, p)| v.to_lowercase().ends_with(&p.to_lowercase()))
        }
        LessThan => compare(value, pattern).map(|o| o == Ordering::Less),
        GreaterThan => compare(value, pattern).map(|o| o == Ordering::Greater),
        MatchWildcard => {
            strings(value, pattern).and_then(|(v, p)| regex_matches(&wildcard_regex(p), v))
        }
        MatchRegex => {
            strings(value, pattern).and_then(|(v, p)| regex_matches(&format!("(?s)^(?:{p})"), v))
        }
        Regex => strings(value, pattern).and_then(|(v, p)| regex_matches(p, v)),
        IRegex => strings(value, pattern).and_then(|(v, p)| regex_matches(&format!("(?i){p}"), v)),
        TimeDiffLt => Ok(seconds_since(value)? < number(pattern)?),
        TimeDiffGt => Ok(seconds_since(value)? > number(pattern)?),
        Exists => Ok(!value.is_null()),
        NExists => Ok(value.is_null()),
        Inside => contained(value, pattern),
        NInside => contained(value, pattern).map(|b| !b),
        Search => Err("search needs child criteria".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload() -> Value {
        json!({
            "body": {
                "status": "firing",
                "count": 5,
                "ratio": 0.5,
                "tags": ["prod", "web"],
                "labels": {"severity": "critical", "service": "nginx"},
                "empty": null,
                "name": "Nginx-Web-01",
                "text": "line one\nline two",
                "recent": jiff::Timestamp::now().to_string(),
                "old": "2001-01-01T00:00:00Z",
                "alerts": [
                    {"labels": {"severity": "warning", "service": "db"}},
                    {"labels": {"severity": "critical", "service": "nginx"}}
                ],
            },
            "headers": {"X-GitHub-Event": "push"},
        })
    }

    /// (key, operator, pattern, expected): Ok(bool) or Err(()) for an operator error.
    fn case(key: &str, op: &str, pattern: Value) -> Result<bool, String> {
        let mut spec = Map::new();
        spec.insert("type".into(), json!(op));
        spec.insert("pattern".into(), pattern);
        let mut map = Map::new();
        map.insert(key.into(), Value::Object(spec));
        let criteria = Criteria::parse(&map).map_err(|e| format!("parse: {e}"))?;
        criteria
            .matches(
                &payload(),
                &Context::trigger(&payload()).with("limit", json!(4)),
            )
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_operator_and_alias() {
        let t = true;
        let f = false;
        for (key, op, pattern, want) in [
            ("trigger.body.status", "equals", json!("firing"), t),
            ("trigger.body.status", "eq", json!("resolved"), f),
            ("trigger.body.count", "equals", json!(5), t),
            ("trigger.body.count", "equals", json!(5.0), t),
            ("trigger.body.count", "equals", json!("x5"), f),
            ("trigger.body.status", "nequals", json!("resolved"), t),
            ("trigger.body.status", "neq", json!("firing"), f),
            ("trigger.body.name", "iequals", json!("nginx-web-01"), t),
            ("trigger.body.name", "ieq", json!("nginx"), f),
            ("trigger.body.name", "contains", json!("Web"), t),
            ("trigger.body.tags", "contains", json!("prod"), t),
            ("trigger.body.labels", "contains", json!("service"), t),
            ("trigger.body.name", "icontains", json!("web"), t),
            ("trigger.body.name", "ncontains", json!("db"), t),
            ("trigger.body.tags", "ncontains", json!("prod"), f),
            ("trigger.body.name", "incontains", json!("WEB"), f),
            ("trigger.body.name", "startswith", json!("Nginx"), t),
            ("trigger.body.name", "istartswith", json!("nginx"), t),
            ("trigger.body.name", "endswith", json!("01"), t),
            ("trigger.body.name", "iendswith", json!("WEB-01"), t),
            ("trigger.body.count", "lessthan", json!(10), t),
            ("trigger.body.count", "lt", json!(5), f),
            ("trigger.body.ratio", "greaterthan", json!(0.25), t),
            ("trigger.body.count", "gt", json!(5), f),
            ("trigger.body.status", "lt", json!("zzz"), t),
            ("trigger.body.name", "matchwildcard", json!("Nginx-*-0?"), t),
            ("trigger.body.name", "matchwildcard", json!("nginx*"), f),
            (
                "trigger.body.name",
                "matchwildcard",
                json!("Nginx-[VW]eb-*"),
                t,
            ),
            ("trigger.body.text", "matchregex", json!("line.*two"), t),
            ("trigger.body.text", "matchregex", json!("two"), f),
            ("trigger.body.name", "regex", json!("Web-\\d+"), t),
            ("trigger.body.name", "regex", json!("^web"), f),
            ("trigger.body.name", "iregex", json!("^nginx"), t),
            ("trigger.body.recent", "timediff_lt", json!(600), t),
            ("trigger.body.old", "td_lt", json!(600), f),
            ("trigger.body.old", "timediff_gt", json!(600), t),
            ("trigger.body.recent", "td_gt", json!(600), f),
            ("trigger.body.status", "exists", Value::Null, t),
            ("trigger.body.empty", "exists", Value::Null, f),
            ("trigger.body.nothing", "exists", Value::Null, f),
            ("trigger.body.nothing", "nexists", Value::Null, t),
            ("trigger.body.status", "nexists", Value::Null, f),
            (
                "trigger.body.labels.service",
                "inside",
                json!(["nginx", "haproxy"]),
                t,
            ),
            ("trigger.body.labels.service", "in", json!("nginx-proxy"), t),
            ("trigger.body.labels.service", "ninside", json!(["db"]), t),
            ("trigger.body.labels.service", "nin", json!(["nginx"]), f),
            (
                "trigger.body.alerts[1].labels.severity",
                "equals",
                json!("critical"),
                t,
            ),
            (
                "trigger.body.alerts[*].labels.service",
                "equals",
                json!("db"),
                t,
            ),
            ("trigger.headers.X-GitHub-Event", "equals", json!("push"), t),
            (
                "trigger.headers['X-GitHub-Event']",
                "equals",
                json!("push"),
                t,
            ),
            ("trigger.body.status#again", "equals", json!("firing"), t),
            ("trigger.body.missing", "equals", Value::Null, f),
            ("trigger.body.empty", "nequals", Value::Null, f),
            ("trigger.body.count", "equals", json!("5"), t),
            (
                "trigger.body.count",
                "equals",
                json!("{{ trigger.body.count }}"),
                t,
            ),
            ("trigger.body.count", "greaterthan", json!("{{ limit }}"), t),
            (
                "trigger.body.status",
                "equals",
                json!("{{ 'fir' ~ 'ing' }}"),
                t,
            ),
            (
                "trigger.body.tags",
                "equals",
                json!("{{ ['prod', 'web'] }}"),
                t,
            ),
            ("trigger.body.count", "equals", json!("{{ limit + 1 }}"), t),
        ] {
            assert_eq!(
                case(key, op, pattern.clone()),
                Ok(want),
                "{key} {op} {pattern}"
            );
        }
        assert_eq!(OPERATORS.len(), 33);
    }

    #[test]
    fn type_mismatches_are_errors_not_matches() {
        for (key, op, pattern) in [
            ("trigger.body.count", "lessthan", json!("ten")),
            ("trigger.body.missing", "lessthan", json!(1)),
            ("trigger.body.count", "startswith", json!("5")),
            ("trigger.body.tags", "regex", json!("prod")),
            ("trigger.body.missing", "contains", json!("x")),
            ("trigger.body.count", "timediff_lt", json!(5)),
            ("trigger.body.name", "search", json!({})),
        ] {
            let got = case(key, op, pattern.clone());
            assert!(got.is_err(), "{key} {op} {pattern}: {got:?}");
            if op != "search" {
                assert!(
                    got.unwrap_err()
                        .starts_with(&format!("criteria \"{key}\" ({op}): "))
                );
            }
        }
    }

    #[test]
    fn search_conditions() {
        let item = |sev: &str, svc: &str| {
            json!({
                "item.labels.severity": {"type": "equals", "pattern": sev},
                "item.labels.service": {"type": "equals", "pattern": svc},
            })
        };
        for (condition, pattern, want) in [
            ("any", item("critical", "nginx"), true),
            ("any", item("critical", "db"), false),
            ("all", item("critical", "nginx"), false),
            ("any2any", item("critical", "db"), true),
            ("all2any", item("critical", "db"), true),
            ("all2any", item("info", "cache"), false),
        ] {
            let mut spec = Map::new();
            spec.insert("type".into(), json!("search"));
            spec.insert("condition".into(), json!(condition));
            spec.insert("pattern".into(), pattern);
            let mut map = Map::new();
            map.insert("trigger.body.alerts".into(), Value::Object(spec));
            let c = Criteria::parse(&map).unwrap();
            assert_eq!(
                c.matches(&payload(), &Context::trigger(&payload())),
                Ok(want),
                "{condition}"
            );
        }
    }

    #[test]
    fn load_errors_name_the_key() {
        for (yaml, want) in [
            (
                "trigger.x: {type: equal, pattern: 1}",
                "criteria \"trigger.x\": unknown operator \"equal\" (did you mean \"equals\"?)",
            ),
            ("trigger.x: {pattern: 1}", "missing `type`"),
            (
                "trigger.x: {type: regex, pattern: '('}",
                "not a valid regex",
            ),
            (
                "trigger.x: {type: equals, pattern: '{{ oops'}",
                "pattern: syntax error",
            ),
            (
                "trigger.x: {type: search, condition: some, pattern: {}}",
                "search condition",
            ),
            (
                "trigger.x: {type: equals, patern: 1}",
                "unknown field \"patern\"",
            ),
            ("trigger.x: 5", "must be a mapping"),
            ("body.x: {type: exists}", "keys start with \"trigger.\""),
            (
                "trigger.x: {type: search, condition: any, pattern: {trigger.y: {type: exists}}}",
                "keys start with \"item.\"",
            ),
        ] {
            let map: Map<String, Value> = serde_saphyr::from_str(yaml).unwrap();
            let err = Criteria::parse(&map).unwrap_err();
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
    }

    #[test]
    fn empty_criteria_match_everything() {
        let c = Criteria::parse(&Map::new()).unwrap();
        assert!(c.is_empty());
        assert_eq!(
            c.matches(&json!(null), &Context::trigger(&json!(null))),
            Ok(true)
        );
    }
}
