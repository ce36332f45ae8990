//! The built-in function table: names, argument counts and which take a lambda.
//!
//! Every function can be called as `f(x, …)` or as a method `x.f(…)` (the receiver is the first
//! argument). A lambda argument is not evaluated at the call: it is evaluated once per element,
//! with `$` bound to the element (`[1, 2].select($ * 10)`).

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    Len,
    Str,
    Int,
    Float,
    Bool,
    Not,
    List,
    Dict,
    Keys,
    Values,
    Items,
    Json,
    Zip,
    Select,
    Where,
    Any,
    All,
    First,
    Last,
    Distinct,
    Flatten,
    Sum,
    Min,
    Max,
    Range,
    Join,
    Split,
    ToUpper,
    ToLower,
    Trim,
    StartsWith,
    EndsWith,
    Replace,
    Contains,
    Get,
    IsEmpty,
    IsList,
    IsDict,
    IsString,
    IsInteger,
    IsNumber,
    IsBoolean,
    Sort,
    OrderBy,
    OrderByDescending,
    SelectMany,
    Concat,
    Format,
}

/// Any number of arguments.
const MANY: usize = usize::MAX;

/// (name, function, fewest arguments, most arguments, whether argument 1 is a lambda); argument
/// counts include a method's receiver.
const TABLE: &[(&str, Builtin, usize, usize, bool)] = &[
    ("len", Builtin::Len, 1, 1, false),
    ("count", Builtin::Len, 1, 1, false),
    ("str", Builtin::Str, 1, 1, false),
    ("int", Builtin::Int, 1, 1, false),
    ("float", Builtin::Float, 1, 1, false),
    ("bool", Builtin::Bool, 1, 1, false),
    ("not", Builtin::Not, 1, 1, false),
    ("list", Builtin::List, 0, MANY, false),
    ("dict", Builtin::Dict, 0, 1, false),
    ("keys", Builtin::Keys, 1, 1, false),
    ("values", Builtin::Values, 1, 1, false),
    ("items", Builtin::Items, 1, 1, false),
    ("json", Builtin::Json, 1, 1, false),
    ("zip", Builtin::Zip, 1, MANY, false),
    ("select", Builtin::Select, 2, 2, true),
    ("where", Builtin::Where, 2, 2, true),
    ("any", Builtin::Any, 1, 2, true),
    ("all", Builtin::All, 1, 2, true),
    ("first", Builtin::First, 1, 2, false),
    ("last", Builtin::Last, 1, 2, false),
    ("distinct", Builtin::Distinct, 1, 2, true),
    ("flatten", Builtin::Flatten, 1, 1, false),
    ("sum", Builtin::Sum, 1, 2, false),
    ("min", Builtin::Min, 1, MANY, false),
    ("max", Builtin::Max, 1, MANY, false),
    ("range", Builtin::Range, 1, 3, false),
    ("join", Builtin::Join, 2, 2, false),
    ("split", Builtin::Split, 1, 3, false),
    ("toUpper", Builtin::ToUpper, 1, 1, false),
    ("toLower", Builtin::ToLower, 1, 1, false),
    ("trim", Builtin::Trim, 1, 2, false),
    ("startsWith", Builtin::StartsWith, 2, MANY, false),
    ("endsWith", Builtin::EndsWith, 2, MANY, false),
    ("replace", Builtin::Replace, 3, 4, false),
    ("contains", Builtin::Contains, 2, 2, false),
    ("get", Builtin::Get, 2, 3, false),
    ("isEmpty", Builtin::IsEmpty, 1, 1, false),
    ("isList", Builtin::IsList, 1, 1, false),
    ("isDict", Builtin::IsDict, 1, 1, false),
    ("isString", Builtin::IsString, 1, 1, false),
    ("isInteger", Builtin::IsInteger, 1, 1, false),
    ("isNumber", Builtin::IsNumber, 1, 1, false),
    ("isBoolean", Builtin::IsBoolean, 1, 1, false),
    ("sort", Builtin::Sort, 1, 2, true),
    ("orderBy", Builtin::OrderBy, 2, 2, true),
    ("orderByDescending", Builtin::OrderByDescending, 2, 2, true),
    ("selectMany", Builtin::SelectMany, 2, 2, true),
    ("concat", Builtin::Concat, 1, MANY, false),
    ("format", Builtin::Format, 1, MANY, false),
];

/// The built-in called `name`.
pub(super) fn lookup(name: &str) -> Option<Builtin> {
    TABLE
        .iter()
        .find(|entry| entry.0 == name)
        .map(|entry| entry.1)
}

/// The names of every built-in function, aliases included, in table order.
#[cfg(test)]
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|entry| entry.0)
}

fn entry(builtin: Builtin) -> (&'static str, Builtin, usize, usize, bool) {
    // Every variant has a row (the tests check it), `len` is only a fallback.
    TABLE
        .iter()
        .find(|entry| entry.1 == builtin)
        .copied()
        .unwrap_or(TABLE[0])
}

impl Builtin {
    /// The function's name, as messages show it.
    pub(super) fn name(self) -> &'static str {
        entry(self).0
    }

    /// Whether the argument after the collection is a lambda.
    pub(super) fn takes_lambda(self) -> bool {
        entry(self).4
    }
}

/// Checks a call's argument count; `name` as written, `pairs` when it has `name => value`
/// arguments, `method` when the receiver is the first argument.
pub(super) fn check_arity(
    name: &str,
    builtin: Builtin,
    count: usize,
    pairs: bool,
    method: bool,
) -> Result<(), String> {
    let (_, _, min, max, _) = entry(builtin);
    if pairs && count > 0 {
        return Err(format!(
            "\"{name}\" takes either \"name => value\" pairs or one list of [key, value] pairs"
        ));
    }
    if (min..=max).contains(&count) {
        return Ok(());
    }
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let expected = match (min, max) {
        (min, max) if min == max => format!("{min} {}", plural(min)),
        (min, MANY) => format!("at least {min} {}", plural(min)),
        (min, max) => format!("{min} to {max} arguments"),
    };
    let receiver = if method {
        ", counting the receiver"
    } else {
        ""
    };
    Err(format!(
        "\"{name}\" takes {expected} (got {count}{receiver})"
    ))
}
