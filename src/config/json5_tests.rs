//! Tests of the JSON5 parser: syntax features, line map, json5's error texts and positions.
use super::*;
use serde_json::json;

fn value(text: &str) -> Value {
    parse(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .value
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn comments_whitespace_and_trailing_commas() {
    let text = "\u{feff}// head\n{/* a */ a: [1, 2,], // x\n b: /** x **/ {c: 2,}, /***/}\n// end";
    assert_eq!(value(text), json!({"a": [1, 2], "b": {"c": 2}}));
    let zs = "\u{1680}\u{2000}\u{200a}\u{202f}\u{205f}\u{3000}";
    let spaces = format!("\t\u{b}\u{c} \u{a0}\u{2028}\u{2029}{zs}\r\n");
    assert_eq!(
        value(&format!("{spaces}[{spaces}1{spaces},]{spaces}")),
        json!([1])
    );
}

#[test]
fn identifier_keys() {
    let text = r"{$a: 1, _b: 2, c3: 3, ü: 4, 日本: 5, \u0061b: 6, a\u0062c: 7, e\u0301: 8, 'q': 9}";
    let keys = ["$a", "_b", "c3", "ü", "日本", "ab", "abc", "e\u{301}", "q"];
    assert!(value(text).as_object().unwrap().keys().eq(keys.iter()));
}

#[test]
fn strings_and_escapes() {
    let text = r#"['a"b', "a'b", "\n\t\b\f\r\v\0\'\"\\\/\a", "\x41\u00e9\ud83d\ude00"]"#;
    let expected = json!(["a\"b", "a'b", "\n\t\u{8}\u{c}\r\u{b}\0'\"\\/a", "Aé😀"]);
    assert_eq!(value(text), expected);
    assert_eq!(value("'a\\\nb\\\r\nc\\\rd\\\u{2028}e'"), json!("abcde"));
    assert_eq!(value("'\u{2028}\u{2029}'"), json!("\u{2028}\u{2029}"));
    // Rust strings cannot hold a lone surrogate.
    assert_eq!(value(r#""\ud83dx""#), json!("\u{fffd}x"));
}

#[test]
fn numbers_and_literals() {
    let big = json!(18446744073709551616.0);
    #[rustfmt::skip]
    let cases = [
        ("1", json!(1)), ("+1", json!(1)), ("-1", json!(-1)), ("-0", json!(0)),
        ("0x1F", json!(31)), ("-0x1f", json!(-31)), ("+0XFF", json!(255)),
        (".5", json!(0.5)), ("-.5", json!(-0.5)), ("5.", json!(5.0)), ("5.e1", json!(50.0)),
        ("1e3", json!(1000.0)), ("-1.5E-3", json!(-0.0015)),
        ("18446744073709551615", json!(u64::MAX)), ("-9223372036854775808", json!(i64::MIN)),
        ("18446744073709551616", big.clone()), ("0x10000000000000000", big),
        ("Infinity", Value::Null), ("-Infinity", Value::Null), ("+NaN", Value::Null),
        ("1e400", Value::Null), ("null", Value::Null), ("true", json!(true)),
        ("false", json!(false)),
    ];
    for (text, expected) in cases {
        assert_eq!(value(text), expected, "{text}");
    }
}

#[test]
fn duplicate_keys_last_wins_in_first_place() {
    let parsed = parse("{a: {x: 1},\n b: 2,\n a: {y: 3}}").unwrap();
    assert!(parsed
        .value
        .as_object()
        .unwrap()
        .keys()
        .eq(["a", "b"].iter()));
    assert_eq!(parsed.value["a"], json!({"y": 3}));
    assert_eq!(
        (parsed.lines.get("a"), parsed.lines.get("a.x")),
        (Some(&3), None)
    );
}

#[test]
fn line_map() {
    let text = "// config\n{\n  gateway: {\n    /* auth */\n    auth: { token: 'x' },\n  },\n  \
                agents: {\n    list: [\n      { id: 'a' },\n\n      {\n        id: 'b' },\n\
                \x20   ],\n  },\n}\n";
    let lines = parse(text).unwrap().lines;
    #[rustfmt::skip]
    let expected = [
        ("", 2), ("gateway", 3), ("gateway.auth", 5), ("gateway.auth.token", 5),
        ("agents", 7), ("agents.list", 8), ("agents.list.0", 9), ("agents.list.0.id", 9),
        ("agents.list.1", 11), ("agents.list.1.id", 12),
    ];
    assert_eq!(lines.len(), expected.len());
    for (path, line) in expected {
        assert_eq!(lines.get(path), Some(&line), "{path}");
    }
}

#[test]
fn errors_match_json5() {
    // Each expected text is what json5 2.2.3 prints for the same input.
    #[rustfmt::skip]
    let cases = [
        ("\"abc", "invalid end of input at 1:5"),
        ("{a: \"x\ny\"}", "invalid character '\\n' at 2:0"),
        ("{a: x}", "invalid character 'x' at 1:5"),
        ("{a: nul}", "invalid character '}' at 1:8"),
        ("{a: 1", "invalid end of input at 1:6"),
        ("{\n  a: 1,\n  b: [1, 2\n", "invalid end of input at 4:1"),
        ("{} x", "invalid character 'x' at 1:4"),
        ("[1] // ok\n]", "invalid character ']' at 2:1"),
        ("", "invalid end of input at 1:1"), ("// only", "invalid end of input at 1:8"),
        ("/* open", "invalid end of input at 1:8"), ("/x", "invalid character 'x' at 1:2"),
        ("['a' 'b']", "invalid character '\\'' at 1:6"),
        ("{a: 1 \"b\": 2}", "invalid character '\\\"' at 1:7"),
        ("{\\u0031: 1}", "invalid identifier character at 1:2"),
        ("\"\\01\"", "invalid character '1' at 1:4"), ("01", "invalid character '1' at 1:2"),
        ("- 1", "invalid character ' ' at 1:2"), ("0x", "invalid end of input at 1:3"),
        ("[,]", "invalid character ',' at 1:2"), ("😀 x", "invalid character '😀' at 1:2"),
        ("\"\u{1}\" \u{1}", "invalid character '\\x01' at 1:5"),
    ];
    for (text, message) in cases {
        assert_eq!(error(text), format!("JSON5: {message}"), "{text:?}");
    }
    let e = parse("{\n  a: ?\n}").unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 6, "invalid character '?'")
    );
}

#[test]
fn depth_limit() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(parse(&nested(MAX_DEPTH)).is_ok());
    // The object is level 1, so the 128th "[" (column 4 + 128) is level 129.
    let deep = format!("{{a: {}}}", nested(MAX_DEPTH));
    assert_eq!(
        error(&deep),
        "JSON5: nesting deeper than 128 levels at 1:132"
    );
    assert!(parse(&"[".repeat(100_000)).is_err());
}
