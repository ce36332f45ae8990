//! Table-driven tests: one expression per line, against a fake workflow host.

use super::*;
use serde_json::json;
use std::cell::Cell;

/// A workflow engine stand-in: `ctx()` is the root, `ctx(name)` a key of it.
struct Host {
    root: Value,
    root_calls: Cell<usize>,
}

impl Host {
    fn new() -> Host {
        Host {
            root: context(),
            root_calls: Cell::new(0),
        }
    }
}

impl YaqlHost for Host {
    fn root(&self) -> Value {
        self.root_calls.set(self.root_calls.get() + 1);
        self.root.clone()
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        match (name, args) {
            ("ctx", []) => Ok(self.root.clone()),
            ("ctx", [Value::String(key)]) => self
                .root
                .get(key)
                .cloned()
                .ok_or_else(|| format!("undefined context variable \"{key}\"")),
            ("result", []) => Ok(json!({"stdout": "ok", "code": 0})),
            ("succeeded", []) => Ok(json!(true)),
            ("failed", []) => Ok(json!(false)),
            ("task_status", [task]) if task == "t1" => Ok(json!("succeeded")),
            ("task_status", [task]) => Err(format!("unknown task {task}")),
            ("st2kv", args) => Ok(json!({"st2kv": args})),
            _ => Err(format!("unexpected call {name}{args:?}")),
        }
    }
}

fn context() -> Value {
    json!({
        "hosts": [{"name": "web1", "port": 80}, {"name": "db1", "port": 5432}],
        "items": [{"id": 1, "ok": true}, {"id": 2, "ok": false}, {"id": 3, "ok": true}],
        "vms": [
            {"name": "vmweb1", "region": "us-east", "role": "web"},
            {"name": "vmdb1", "region": "us-east", "role": "db"},
            {"name": "vmweb2", "region": "us-west", "role": "web"},
        ],
        "l": [1, 2, 3, 4],
        "names": ["b", "a", "c"],
        "d": {"a": 1, "b": 2},
        "nested": {"a": {"b": {"c": 42}}},
        "x": 10,
        "i": 1,
        "s": "Hello World",
        "text": "{\"a\": [1, 2]}",
    })
}

/// Parses and evaluates; any error as its Display.
fn run(source: &str) -> Result<Value, String> {
    let expr = Expression::parse(source).map_err(|e| e.to_string())?;
    expr.evaluate(&Host::new()).map_err(|e| e.to_string())
}

fn check(cases: &[(&str, Value)]) {
    for (source, expected) in cases {
        assert_eq!(run(source), Ok(expected.clone()), "{source}");
    }
}

/// Expressions that parse but fail to evaluate, with the exact message (and no offset).
fn check_eval_errors(cases: &[(&str, &str)]) {
    for (source, expected) in cases {
        let expr = Expression::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let error = expr.evaluate(&Host::new()).expect_err(source);
        assert_eq!(
            (error.to_string().as_str(), error.offset),
            (*expected, None),
            "{source}"
        );
    }
}

/// Expressions that fail to parse, with the exact Display (message and offset).
fn check_parse_errors(cases: &[(&str, &str)]) {
    for (source, expected) in cases {
        let error = Expression::parse(source).expect_err(source);
        assert_eq!(error.to_string(), *expected, "{source}");
        assert!(error.offset.is_some(), "{source}");
    }
}

#[test]
#[rustfmt::skip]
fn literals() {
    check(&[
        ("1", json!(1)),
        ("1.5", json!(1.5)),
        ("'it\\'s'", json!("it's")),
        (r#""tab\there""#, json!("tab\there")),
        (r"'\d+\.'", json!(r"\d+\.")),
        (r"'\u00e9\x41\101'", json!("éAA")),
        (r"`a\nb`", json!(r"a\nb")),
        ("true", json!(true)),
        ("false", json!(false)),
        ("null", json!(null)),
        ("foo", json!("foo")),
        ("[1, 2, 'a']", json!([1, 2, "a"])),
        ("[]", json!([])),
        ("{a => 1, 'b c' => 2}", json!({"a": 1, "b c": 2})),
        ("{}", json!({})),
        ("dict(a => 1, b => 2)", json!({"a": 1, "b": 2})),
        ("dict()", json!({})),
        ("list(1, 2, 3)", json!([1, 2, 3])),
        ("list(abc, def)", json!(["abc", "def"])),
        ("list()", json!([])),
        ("-9223372036854775808", json!(i64::MIN)),
        ("18446744073709551615", json!(u64::MAX)),
    ]);
}

#[test]
#[rustfmt::skip]
fn operators_follow_yaql_precedence() {
    check(&[
        ("1 + 2 * 3 = 7", json!(true)),
        ("(1 + 2) * 3", json!(9)),
        ("not true or true", json!(true)),
        ("not (true or true)", json!(false)),
        ("true or false and false", json!(true)),
        ("not 0 = false", json!(true)),
        ("not(0) = false", json!(false)),
        ("1 + 2 = 3 and 2 < 3", json!(true)),
        ("10 - 2 - 3", json!(5)),
        ("12 / 2 / 3", json!(2)),
        ("2 * -3", json!(-6)),
        ("-(2 + 3)", json!(-5)),
        ("-$.l[0]", json!(-1)),
        ("+2", json!(2)),
        ("1 + 2 in [3]", json!(true)),
    ]);
}

#[test]
#[rustfmt::skip]
fn arithmetic_keeps_integers_and_floors_division() {
    check(&[
        ("7 / 2", json!(3)),
        ("-7 / 2", json!(-4)),
        ("7.0 / 2", json!(3.5)),
        ("6 / 3.0", json!(2.0)),
        ("7 mod 3", json!(1)),
        ("-7 mod 3", json!(2)),
        ("7 % -3", json!(-2)),
        ("7.5 mod 2", json!(1.5)),
        ("2.5 * 2", json!(5.0)),
        ("1 + 1.5", json!(2.5)),
        ("ctx(x) * 3 - 1", json!(29)),
        ("9223372036854775807 + 1", json!(9_223_372_036_854_775_808_u64)),
        ("'a' + 'b'", json!("ab")),
        ("[1] + [2, 3]", json!([1, 2, 3])),
        ("{a => 1, b => 1} + {b => 2}", json!({"a": 1, "b": 2})),
        ("dict(a => 123, b => true) + dict(c => xyz)", json!({"a": 123, "b": true, "c": "xyz"})),
        ("list(abc, def) + list(ijk, xyz)", json!(["abc", "def", "ijk", "xyz"])),
    ]);
}

#[test]
#[rustfmt::skip]
fn comparisons_are_deep_and_typed() {
    check(&[
        ("1 = 1.0", json!(true)),
        ("'1' = 1", json!(false)),
        ("true = 1", json!(false)),
        ("null = null", json!(true)),
        ("[1, {a => 2}] = [1.0, {a => 2}]", json!(true)),
        ("{a => 1} = {a => 1, b => 2}", json!(false)),
        ("1 != 2", json!(true)),
        ("'a' < 'b'", json!(true)),
        ("2 >= 2", json!(true)),
        ("1.5 > 1", json!(true)),
        ("2 <= 1", json!(false)),
        ("2 in [1, 2]", json!(true)),
        ("3 in ctx(l)", json!(true)),
        ("'ell' in 'hello'", json!(true)),
        ("a in {a => 1}", json!(true)),
        ("z in ctx(d)", json!(false)),
    ]);
}

#[test]
#[rustfmt::skip]
fn and_or_short_circuit_with_truthiness() {
    check(&[
        ("false and ctx(missing)", json!(false)),
        ("true or ctx(missing)", json!(true)),
        ("1 and 'a'", json!(true)),
        ("[] or {}", json!(false)),
        ("0.0 or ''", json!(false)),
        ("not null", json!(true)),
    ]);
}

#[test]
#[rustfmt::skip]
fn attributes_and_indexes() {
    check(&[
        ("$.x", json!(10)),
        ("$.nested.a.b.c", json!(42)),
        ("$.missing", json!(null)),
        ("$.missing.deeper", json!(null)),
        ("ctx().hosts.name", json!(["web1", "db1"])),
        ("$.hosts[1].port", json!(5432)),
        ("ctx(l)[0]", json!(1)),
        ("ctx(l)[-1]", json!(4)),
        ("ctx(l)[ctx(i)]", json!(2)),
        ("ctx(d)['a']", json!(1)),
        ("ctx(s)[1]", json!("e")),
        ("ctx(s)[-1]", json!("d")),
        ("[[1, 2], [3]][0][1]", json!(2)),
        ("ctx(l)[10, 0]", json!(0)),
        ("ctx(d)['z', 'none']", json!("none")),
    ]);
}

#[test]
#[rustfmt::skip]
fn queries_take_lambdas() {
    check(&[
        ("ctx().hosts.select($.name)", json!(["web1", "db1"])),
        ("ctx(items).where($.ok).len()", json!(2)),
        ("ctx(items).where($.ok).select($.id)", json!([1, 3])),
        ("ctx(l).where($ > 2)", json!([3, 4])),
        ("ctx(l).select($ * $)", json!([1, 4, 9, 16])),
        ("ctx(l).where($ > ctx(i) + 1)", json!([3, 4])),
        ("ctx(l).select(ctx(x))", json!([10, 10, 10, 10])),
        ("[[1, 2], [3]].select($.select($ * 10))", json!([[10, 20], [30]])),
        ("select(ctx(l), $ + 1)", json!([2, 3, 4, 5])),
        ("ctx(vms).select([$.name, $.role])[0]", json!(["vmweb1", "web"])),
        ("ctx(vms).select($.region).distinct()", json!(["us-east", "us-west"])),
        ("ctx(vms).where($.region = 'us-east' and $.role = 'web').select($.name)", json!(["vmweb1"])),
        ("dict(ctx(vms).select([$.name, $.role]))", json!({"vmweb1": "web", "vmdb1": "db", "vmweb2": "web"})),
        ("ctx(l).any($ > 3)", json!(true)),
        ("ctx(l).all($ > 1)", json!(false)),
        ("[[], 0, ''].any()", json!(true)),
        ("[[], 0, ''].any($)", json!(false)),
        ("[1, [], ''].all()", json!(false)),
        ("[].all()", json!(true)),
        ("[1, 1.0, 2, 1].distinct()", json!([1, 2])),
        ("[[1, 'a'], [2, 'b'], [3, 'a']].distinct($[1])", json!([[1, "a"], [2, "b"]])),
        ("[0, [1, 2], 3].selectMany($)", json!([0, 1, 2, 3])),
        ("ctx(hosts).selectMany([$.name, $.port])", json!(["web1", 80, "db1", 5432])),
        ("ctx(names).sort()", json!(["a", "b", "c"])),
        ("[3, 1.5, 2].sort()", json!([1.5, 2, 3])),
        ("ctx(hosts).sort($.name).select($.port)", json!([5432, 80])),
        ("ctx(hosts).orderByDescending($.port).select($.name)", json!(["db1", "web1"])),
        ("[[1, 'c'], [2, 'b'], [3, 'c'], [0, 'd']].orderBy($[1])", json!([[2, "b"], [1, "c"], [3, "c"], [0, "d"]])),
        ("ctx(l).where($ mod 2 = 0).select(str($)).join(',')", json!("2,4")),
    ]);
}

#[test]
#[rustfmt::skip]
fn collection_functions() {
    check(&[
        ("zip([1, 2], [3, 4])", json!([[1, 3], [2, 4]])),
        ("[1, 2, 3].zip([4, 5], [6, 7])", json!([[1, 4, 6], [2, 5, 7]])),
        ("ctx(l).first()", json!(1)),
        ("[].first(0)", json!(0)),
        ("ctx(l).last()", json!(4)),
        ("[].last(null)", json!(null)),
        ("[1, [2, [3]], []].flatten()", json!([1, 2, 3])),
        ("ctx(l).sum()", json!(10)),
        ("[1.5, 2].sum()", json!(3.5)),
        ("['a', 'b'].sum('c')", json!("cab")),
        ("[].sum()", json!(0)),
        ("[[1], [2, 3]].sum()", json!([1, 2, 3])),
        ("[{a => 1}, {b => 2}].sum({c => 3})", json!({"a": 1, "b": 2, "c": 3})),
        ("range(100000).select('ab').sum().len()", json!(200000)),
        ("ctx(l).min()", json!(1)),
        ("ctx(l).max()", json!(4)),
        ("max(3, 7)", json!(7)),
        ("min(2, 1, 3)", json!(1)),
        ("['b', 'a'].max()", json!("b")),
        ("[2, 3].max(10)", json!(10)),
        ("range(3)", json!([0, 1, 2])),
        ("range(1, 4)", json!([1, 2, 3])),
        ("range(4, 1, -1)", json!([4, 3, 2])),
        ("range(0)", json!([])),
        ("len(ctx(l))", json!(4)),
        ("ctx(l).count()", json!(4)),
        ("len(ctx(d))", json!(2)),
        ("keys(ctx(d))", json!(["a", "b"])),
        ("ctx(d).values()", json!([1, 2])),
        ("ctx(d).items()", json!([["a", 1], ["b", 2]])),
        ("ctx(d).get(a)", json!(1)),
        ("ctx(d).get(z)", json!(null)),
        ("ctx(d).get(z, 0)", json!(0)),
        ("get(null, a, 5)", json!(5)),
        ("ctx(l).contains(3)", json!(true)),
        ("ctx(l).contains(9)", json!(false)),
        ("ctx(d).contains(a)", json!(true)),
        ("concat([1], [2], [])", json!([1, 2])),
        ("dict([[a, 1], [b, 2]])", json!({"a": 1, "b": 2})),
        ("dict(ctx(d))", json!({"a": 1, "b": 2})),
        ("list(ctx(l))", json!([1, 2, 3, 4])),
        ("list([1], 2)", json!([[1], 2])),
    ]);
}

#[test]
#[rustfmt::skip]
fn string_functions() {
    check(&[
        ("'a,b'.split(',')", json!(["a", "b"])),
        ("'a,b,c'.split(',', 1)", json!(["a", "b,c"])),
        ("' a b  c '.split()", json!(["a", "b", "c"])),
        ("' a b  c '.split(null, 1)", json!(["a", "b  c "])),
        ("'one, two'.split(',').select($.trim())", json!(["one", "two"])),
        ("ctx(s).toUpper()", json!("HELLO WORLD")),
        ("toLower('AbC')", json!("abc")),
        ("'  x '.trim()", json!("x")),
        ("'xxaxx'.trim('x')", json!("a")),
        ("ctx(s).startsWith('Hell')", json!(true)),
        ("'abc'.startsWith('x', 'a')", json!(true)),
        ("'abc'.endsWith('bc')", json!(true)),
        ("'aaa'.replace('a', 'b')", json!("bbb")),
        ("'aaa'.replace('a', 'b', 2)", json!("bba")),
        ("'ab'.replace('', '-')", json!("-a-b-")),
        ("join(['a', 'b'], '-')", json!("a-b")),
        ("['a', 1, null].join(',')", json!("a,1,null")),
        ("', '.join(['x', 'y'])", json!("x, y")),
        ("join('-', ['a', 'b'])", json!("a-b")),
        ("'{0}-{1}'.format('a', 2)", json!("a-2")),
        ("'{}+{}'.format(1, 2)", json!("1+2")),
        ("'{{x}} {1}{0}'.format(a, b)", json!("{x} ba")),
        ("concat('a', 'b', 'c')", json!("abc")),
        ("'abc'.contains('bc')", json!(true)),
        ("'abc'.len()", json!(3)),
        ("len('héllo')", json!(5)),
    ]);
}

#[test]
#[rustfmt::skip]
fn conversions_and_type_tests() {
    check(&[
        ("str(1)", json!("1")),
        ("str(1.5)", json!("1.5")),
        ("str(null)", json!("null")),
        ("str(true)", json!("true")),
        ("str([1, 'a'])", json!("[1,\"a\"]")),
        ("str('x')", json!("x")),
        ("int('42')", json!(42)),
        ("int(' -7 ')", json!(-7)),
        ("int(3.9)", json!(3)),
        ("int(-3.9)", json!(-3)),
        ("int(null)", json!(0)),
        ("int(true)", json!(1)),
        ("float('1.5')", json!(1.5)),
        ("float(2)", json!(2.0)),
        ("bool([])", json!(false)),
        ("bool('a')", json!(true)),
        ("not([1])", json!(false)),
        ("json('{\"a\": 1}').a", json!(1)),
        ("json(ctx(text)).a[1]", json!(2)),
        ("json([1])", json!([1])),
        ("isEmpty([])", json!(true)),
        ("isEmpty('  ')", json!(true)),
        ("isEmpty(null)", json!(true)),
        ("isEmpty(0)", json!(false)),
        ("isEmpty({a => 1})", json!(false)),
        ("isList(ctx(l))", json!(true)),
        ("isDict(ctx(d))", json!(true)),
        ("isDict(ctx(l))", json!(false)),
        ("isString('a')", json!(true)),
        ("isInteger(1)", json!(true)),
        ("isInteger(1.0)", json!(false)),
        ("isNumber(1.5)", json!(true)),
        ("isBoolean(false)", json!(true)),
        ("isBoolean(0)", json!(false)),
    ]);
}

#[test]
#[rustfmt::skip]
fn workflow_functions_go_to_the_host() {
    check(&[
        ("len(ctx(l)) > 2 and succeeded()", json!(true)),
        ("failed() or succeeded()", json!(true)),
        ("ctx(x) + 1", json!(11)),
        ("ctx('x')", json!(10)),
        ("ctx().x", json!(10)),
        ("task_status(t1)", json!("succeeded")),
        ("task_status('t1') = 'succeeded'", json!(true)),
        ("result().stdout", json!("ok")),
        ("st2kv('system.k')", json!({"st2kv": ["system.k"]})),
        ("st2kv('system.k', decrypt => true)", json!({"st2kv": ["system.k", true]})),
    ]);
}

#[test]
#[rustfmt::skip]
fn evaluation_errors_name_operator_and_values() {
    check_eval_errors(&[
        ("'a' + 1", "cannot add string \"a\" and number 1"),
        ("1 - 'a'", "cannot subtract string \"a\" from number 1"),
        ("[1] * 2", "cannot multiply list [1] by number 2"),
        ("{} / 2", "cannot divide object {} by number 2"),
        ("null mod 2", "cannot compute null mod number 2"),
        ("1 / 0", "division by zero: 1 / 0"),
        ("1 mod 0", "division by zero: 1 mod 0"),
        ("1.5 / 0.0", "division by zero: 1.5 / 0.0"),
        ("9223372036854775807 * 9223372036854775807", "integer overflow: 9223372036854775807 * 9223372036854775807"),
        ("-'a'", "cannot apply unary \"-\" to string \"a\""),
        ("'a' < 1", "cannot compare string \"a\" and number 1 with \"<\""),
        ("null > 1", "cannot compare null and number 1 with \">\""),
        ("1 in 5", "cannot look for number 1 in number 5 with \"in\""),
        ("ctx(l)[4]", "index 4 is out of range for a list of length 4"),
        ("ctx(l)[-5]", "index -5 is out of range for a list of length 4"),
        ("ctx(l)['a']", "list index must be an integer, got string \"a\""),
        ("ctx(d)['z']", "key \"z\" not found in object"),
        ("ctx(d)[1]", "object key must be a string, got number 1"),
        ("ctx(x)[0]", "cannot index number 10 with number 0"),
        ("ctx(x).name", "cannot get attribute \"name\" of number 10"),
        ("ctx(missing)", "undefined context variable \"missing\""),
        ("true and ctx(missing)", "undefined context variable \"missing\""),
        ("task_status(t2)", "unknown task \"t2\""),
        ("{1 => 2}", "dict key must be a string, got number 1"),
        ("ctx(x).select($)", "select(): expected a list, got number 10"),
        ("ctx(d).where($)", "where(): expected a list, got object {\"a\":1,\"b\":2}"),
        ("[].first()", "first(): the list is empty"),
        ("[].max()", "max(): the list is empty"),
        ("max(1)", "max(): expected a list, got number 1"),
        ("[1, 'a'].max()", "max(): cannot compare number 1 and string \"a\""),
        ("[1, 'a'].sort()", "sort(): cannot compare number 1 and string \"a\""),
        ("[null, 1].sort()", "sort(): cannot order null"),
        ("int('abc')", "int(): cannot convert string \"abc\" to an integer"),
        ("float('x')", "float(): cannot convert string \"x\" to a float"),
        ("json('{')", "json(): invalid JSON: EOF while parsing an object at line 1 column 1"),
        ("range(1, 5, 0)", "range(): step must not be zero"),
        ("range(1.5)", "range(): expected an integer, got number 1.5"),
        ("'{0}{1}'.format(1)", "format(): no argument for field 1 (1 given)"),
        ("'{x}'.format(1)", "format(): unsupported format field \"{x}\""),
        ("'{}{0}'.format(1)", "format(): cannot mix automatic ({}) and numbered ({0}) fields"),
        ("'a}'.format()", "format(): single \"}\" in the format string"),
        ("'{0'.format(1)", "format(): unclosed \"{\" in the format string"),
        ("'a'.split('')", "split(): empty separator"),
        ("dict([1])", "dict(): expected a [key, value] pair with a string key, got number 1"),
        ("dict(5)", "dict(): expected a list of [key, value] pairs, got number 5"),
        ("join('a', 'b')", "join(): expected a list and a separator string, got string \"a\" and string \"b\""),
        ("ctx(l).get(a)", "get(): expected an object, got list [1,2,3,4]"),
        ("len(5)", "len(): expected a list, string or object, got number 5"),
        ("concat('a', [1])", "concat(): expected all strings or all lists, got string \"a\""),
        ("[1, 'a'].sum()", "cannot add number 1 and string \"a\""),
        ("ctx(s).toUpper().len() + 'x'", "cannot add number 11 and string \"x\""),
        ("1 = 1 < 2", "cannot compare boolean true and number 2 with \"<\""),
    ]);
}

#[test]
#[rustfmt::skip]
fn parse_errors_name_the_token_and_offset() {
    check_parse_errors(&[
        ("foo(1)", "unknown function \"foo\" at 0"),
        ("1 + foo(1)", "unknown function \"foo\" at 4"),
        ("ctx(l).bar()", "unknown method \"bar\" at 7"),
        ("foo(bar(1))", "unknown function \"foo\" at 0"),
        ("'héllo' + foo(1)", "unknown function \"foo\" at 10"),
        ("foo(1 +", "unknown function \"foo\" at 0"),
        ("count(1, 2)", "\"count\" takes 1 argument (got 2) at 0"),
        ("regex('a').matches('b')", "unknown function \"regex\" at 0"),
        ("", "empty expression at 0"),
        ("   ", "empty expression at 0"),
        ("1 +", "unexpected end of expression at 3"),
        ("not", "unexpected end of expression at 3"),
        ("(1 + 2", "expected \")\" but found end of expression at 6"),
        ("[1, 2", "expected \"]\" but found end of expression at 5"),
        ("{a => 1", "expected \"}\" but found end of expression at 7"),
        ("1 2", "unexpected \"2\" at 2"),
        (")", "unexpected \")\" at 0"),
        ("[1,]", "unexpected \"]\" at 3"),
        ("ctx(a) -> 1", "unsupported operator \"->\" at 7"),
        ("ctx(a) ? 1", "unsupported operator \"?\" at 7"),
        ("$?.a", "unsupported operator \"?.\" at 1"),
        ("'a' =~ 'b'", "unsupported operator \"=~\" at 4"),
        ("#x", "unexpected character \"#\" at 0"),
        ("1 == 1", "unsupported operator \"==\" (YAQL compares with \"=\") at 2"),
        ("$index", "unsupported variable \"$index\" (only \"$\" is supported) at 0"),
        ("'abc", "unterminated string at 0"),
        ("'\\x4'", "invalid escape \"\\x4'\" at 1"),
        ("12abc", "invalid number \"12abc\" at 0"),
        ("1.0e5", "invalid number \"1.0e5\" at 0"),
        ("99999999999999999999", "integer 99999999999999999999 is out of range at 0"),
        ("select(1)", "\"select\" takes 2 arguments (got 1) at 0"),
        ("ctx(l).select()", "\"select\" takes 2 arguments (got 1, counting the receiver) at 7"),
        ("range()", "\"range\" takes 1 to 3 arguments (got 0) at 0"),
        ("'a'.startsWith()", "\"startsWith\" takes at least 2 arguments (got 1, counting the receiver) at 4"),
        ("len(a => 1)", "\"len\" takes no \"name => value\" arguments at 4"),
        ("ctx(a => 1)", "\"ctx\" takes no \"name => value\" arguments at 4"),
        ("dict([], a => 1)", "\"dict\" takes either \"name => value\" pairs or one list of [key, value] pairs at 0"),
        ("dict(a => 1, 2)", "positional argument after a \"name => value\" argument at 13"),
        ("x.ctx()", "workflow function \"ctx\" cannot be called as a method at 2"),
        ("ctx().", "expected a name after \".\" but found end of expression at 6"),
        ("ctx().1", "expected a name after \".\" but found \"1\" at 6"),
        ("[1 => 2]", "unexpected \"=>\" in a list at 1"),
        ("{1}", "expected \"key => value\" in {...} at 1"),
        ("ctx(l)[]", "an index takes one key (and optionally a default) at 6"),
        ("ctx(l){a}", "unexpected \"{\" at 6"),
    ]);
}

#[test]
fn nesting_is_limited_without_overflowing_the_stack() {
    let parens = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    let brackets = "[".repeat(5000);
    let negations = format!("{}1", "-".repeat(300));
    let chain = format!("1{}", " + 1".repeat(300));
    let attributes = format!("$.{}", vec!["a"; 300].join("."));
    let too_deep = "expression nested too deeply (more than 128 levels) at";
    for (source, offset) in [
        (&parens, 128),
        (&brackets, 128),
        (&negations, 128),
        (&chain, 510),
        (&attributes, 256),
    ] {
        assert_eq!(run(source), Err(format!("{too_deep} {offset}")), "{source}");
    }
    let deep = format!("{}1{}", "[".repeat(127), "]".repeat(127));
    assert_eq!(run(&deep).map(|v| v.to_string().len()), Ok(255));
    let budget =
        "expression is too expensive (more than 2000000 evaluation steps, [templates] yaql_steps)";
    for source in [
        "range(3000000)",
        "range(2000).select(range(2000))",
        "range(100000).select(ctx(l) + ctx(l) + ctx(l) + ctx(l))",
        "range(100000).where(ctx().l.len() > 0)",
        "range(3000).select(str(range(1000)))",
    ] {
        assert_eq!(run(source).err().as_deref(), Some(budget), "{source}");
    }
}

/// For each shape of nesting, the deepest expression the parser accepts parses and evaluates on
/// a 1 MiB stack (debug builds need about 660 KiB, release builds about 220 KiB).
#[test]
fn deepest_accepted_expressions_fit_a_small_stack() {
    let shapes: [(&str, &str, &str); 7] = [
        ("[1].select(", "$.len()", ")"),
        ("[", "1", "]"),
        ("len(", "'a'", ")"),
        ("[1][", "0", "]"),
        ("{a => ", "1", "}"),
        ("(1 + ", "1", ")"),
        ("-", "1", ""),
    ];
    let worker = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            for (open, inner, close) in shapes {
                let source = |n: usize| format!("{}{inner}{}", open.repeat(n), close.repeat(n));
                let deepest = (1..200)
                    .take_while(|n| Expression::parse(&source(*n)).is_ok())
                    .last();
                let deepest = deepest.unwrap_or_default();
                assert!(deepest >= 60, "{open}: only {deepest} levels");
                let error = Expression::parse(&source(deepest + 1)).expect_err(open);
                assert!(
                    error.message.starts_with("expression nested too deeply"),
                    "{open}: {error}"
                );
                let expr = Expression::parse(&source(deepest)).expect(open);
                // Any result will do: what matters is getting one without overflowing the stack.
                let _ = expr.evaluate(&Host::new());
                let _ = expr.context_references();
                let _ = expr.clone();
            }
        });
    assert!(worker.expect("spawns").join().is_ok());
}

#[test]
#[rustfmt::skip]
fn context_references_are_the_context_names_read() {
    let cases: &[(&str, &[&str])] = &[
        ("ctx(a) + ctx().b + $.c + ctx('d')", &["a", "b", "c", "d"]),
        ("ctx(l).select($.z)", &["l"]),
        ("ctx(l).where($.ok and ctx(flag))", &["l", "flag"]),
        ("$.hosts.select($.name)", &["hosts"]),
        ("ctx().get(k) + ctx()['m'] + $['n'] + $.get('o', 1)", &["k", "m", "n", "o"]),
        ("ctx(a) + ctx(a) + $.a", &["a"]),
        ("$.x.y", &["x"]),
        ("ctx(l).select($.a.b).where(ctx().c)", &["l", "c"]),
        ("ctx(ctx(a))", &["a"]),
        ("ctx()", &[]),
        ("$", &[]),
        ("[1].select($.q)", &[]),
        ("result().x + task_status(t1) + st2kv('k')", &[]),
    ];
    for (source, expected) in cases {
        let expr = Expression::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(expr.context_references(), *expected, "{source}");
    }
}

#[test]
fn root_is_fetched_once_and_only_when_used() {
    for (source, calls) in [("1 + ctx(x)", 0), ("$.x + $.i + $.l.len()", 1)] {
        let host = Host::new();
        Expression::parse(source)
            .and_then(|e| e.evaluate(&host))
            .expect(source);
        assert_eq!(host.root_calls.get(), calls, "{source}");
    }
}

#[test]
fn expression_keeps_its_source_and_is_shareable() {
    fn shareable<T: Clone + std::fmt::Debug + Send + Sync>(_: &T) {}
    let expr = Expression::parse(" ctx(a) ").expect("parses");
    shareable(&expr);
    assert_eq!(expr.source(), " ctx(a) ");
    let error = YaqlError {
        message: "boom".into(),
        offset: None,
    };
    assert_eq!(error.to_string(), "boom");
}

#[test]
fn every_function_name_resolves_and_round_trips() {
    for name in functions::names() {
        let builtin = functions::lookup(name).expect(name);
        assert_eq!(functions::lookup(builtin.name()), Some(builtin), "{name}");
        let documented = format!("`{name}`");
        assert!(
            include_str!("../yaql.rs").contains(&documented),
            "{name} is not documented"
        );
    }
    for name in WORKFLOW_FUNCTIONS {
        assert!(functions::lookup(name).is_none(), "{name}");
        assert!(Expression::parse(&format!("{name}()")).is_ok(), "{name}");
    }
}

/// Truncated and mangled expressions fail cleanly: every prefix and every one-character deletion
/// of a varied corpus either parses and evaluates (to a value or an error) or is a parse error.
#[test]
fn mangled_input_never_panics() {
    let corpus = [
        "ctx(x) + ctx().i + $.x + ctx('i')",
        "ctx(vms).where($.region = 'us-east' and $.role = 'web').select($.name)",
        "dict(ctx(vms).select([$.name, $]))",
        "{a => [1, 2.5, -3], 'b c' => {x => null}}['b c'].x",
        "st2kv('system.k', decrypt => true)",
        "'{0}-{1}'.format('a\\n\\x41\\u00e9', `raw\\`tick`)",
        "not (1 + 2 * 3 mod 4 / 5 - 6 = 7) or [1] in [[1]] and 'a' < 'b'",
        "ctx(l)[-1, 0] + range(1, 10, 3).zip(ctx(l)).flatten().sum()",
        "ctx(hosts).orderByDescending($.port).distinct($.name).selectMany([$.name])",
        "'a,b'.split(',', 1).join('-').replace('-', '+', 1).trim().toUpper()",
        "json(ctx(text)).a[1] + int('7') + float(2) + len(str([1]))",
    ];
    for source in corpus {
        let chars: Vec<char> = source.chars().collect();
        let prefixes = (0..=chars.len()).map(|n| chars[..n].iter().collect::<String>());
        let deletions = (0..chars.len()).map(|i| {
            chars
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c)
                .collect::<String>()
        });
        for mangled in prefixes.chain(deletions) {
            if let Ok(expr) = Expression::parse(&mangled) {
                let _ = expr.evaluate(&Host::new());
                let _ = expr.context_references();
            }
        }
        assert!(run(source).is_ok(), "{source}: {:?}", run(source));
    }
}
