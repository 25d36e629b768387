//! JSON5 module output: `JSON.stringify(value, null, 2)` byte for byte, for writing config files.

use serde_json::{Map, Number, Value};

/// Serialise like JavaScript's `JSON.stringify(value, null, 2)` followed by one "\n".
///
/// Integers print exactly, even beyond 2^53 where JavaScript would already have rounded them.
pub fn to_pretty_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, Some(0));
    out.push('\n');
    out
}

/// `JSON.stringify(value)`: the same strings and numbers, no whitespace, no trailing newline.
pub fn to_compact_string(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, None);
    out
}

/// One member of a top-level object in the pretty layout, `  "key": value` (no separator),
/// appended to `out`: `to_pretty_string` of the object is these joined by `,\n` in braces.
pub fn push_pretty_member(out: &mut String, key: &str, value: &Value) {
    out.push_str("  ");
    write_string(out, key);
    out.push_str(": ");
    write_value(out, value, Some(1));
}

/// [`to_compact_string`] of an object, appended to `out` (no copy of the map needed).
pub fn push_compact_object(out: &mut String, map: &Map<String, Value>) {
    let members = map.iter().map(|(k, v)| (Some(k.as_str()), v));
    write_members(out, "{}", None, members);
}

/// `indent`: the nesting depth for the pretty layout, `None` for the compact one.
fn write_value(out: &mut String, value: &Value, indent: Option<usize>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => push_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => write_members(out, "[]", indent, items.iter().map(|v| (None, v))),
        Value::Object(map) => write_members(
            out,
            "{}",
            indent,
            map.iter().map(|(k, v)| (Some(k.as_str()), v)),
        ),
    }
}

/// Pretty: one member per line, indented two spaces per level; empty containers stay on one
/// line. Compact: members separated by `,` alone and keys by `:`.
fn write_members<'a>(
    out: &mut String,
    brackets: &str,
    indent: Option<usize>,
    members: impl Iterator<Item = (Option<&'a str>, &'a Value)>,
) {
    let (open, close) = brackets.split_at(1);
    out.push_str(open);
    let mut any = false;
    let inner = indent.map(|n| n + 1);
    for (key, value) in members {
        if any {
            out.push(',');
        }
        new_line(out, inner);
        if let Some(key) = key {
            write_string(out, key);
            out.push_str(if indent.is_some() { ": " } else { ":" });
        }
        write_value(out, value, inner);
        any = true;
    }
    if any {
        new_line(out, indent);
    }
    out.push_str(close);
}

fn new_line(out: &mut String, indent: Option<usize>) {
    if let Some(n) = indent {
        out.push('\n');
        for _ in 0..n {
            out.push_str("  ");
        }
    }
}

/// A JSON string literal with JSON.stringify's escapes; all else, non-ASCII included, stays raw.
/// Runs without escapes are copied whole (a transcript line or a store can hold long texts).
fn write_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            b if b < b' ' => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{:04x}", b));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Integers (nearly every number in a store or transcript) are written without a temporary.
fn push_number(out: &mut String, n: &Number) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => write!(out, "{i}"),
        (_, Some(u)) => write!(out, "{u}"),
        _ => out.write_str(&js_number(n)),
    };
}

fn js_number(n: &Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (_, Some(u), _) => u.to_string(),
        (_, _, Some(x)) => js_float(x),
        // Not reachable without serde_json's arbitrary_precision feature.
        _ => n.to_string(),
    }
}

/// JavaScript's Number::toString (ECMA-262 Number::toString, radix 10).
fn js_float(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string(); // -0 too, as JavaScript prints it
    }
    if !x.is_finite() {
        return "null".to_string(); // serde_json cannot hold these; JSON.stringify writes null
    }
    let scientific = shortest_scientific(x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if x < 0.0 { "-" } else { "" };
    format!("{sign}{}", place_point(&digits, exponent + 1))
}

/// `x` as "d.ddde±n" with the fewest digits that read back as `x`, choosing the closest such digits
/// (ties to even) as JavaScript does; Rust's shortest form is as short but not always the closest.
fn shortest_scientific(x: f64) -> String {
    let shortest = format!("{x:e}");
    let digits = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let closest = format!("{x:.prec$e}", prec = digits.saturating_sub(1));
    if closest.parse::<f64>() == Ok(x) {
        closest
    } else {
        shortest
    }
}

/// Lays out significant `digits` whose decimal point sits after `point` of them, as JS does.
fn place_point(digits: &str, point: i32) -> String {
    let count = digits.len() as i32;
    if count <= point && point <= 21 {
        format!("{digits}{}", "0".repeat((point - count) as usize))
    } else if 0 < point && point <= 21 {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{whole}.{fraction}")
    } else if -6 < point && point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = point - 1;
        format!("{first}{rest}e{}{}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_like_json_stringify() {
        let value = json!({"a": [1, {"b": null}, [], {}], "c": {"d": true, "e": false}, "f": []});
        let expected = concat!(
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    },\n    [],\n    {}\n  ],\n",
            "  \"c\": {\n    \"d\": true,\n    \"e\": false\n  },\n  \"f\": []\n}\n",
        );
        assert_eq!(to_pretty_string(&value), expected);
        assert_eq!(to_pretty_string(&json!({})), "{}\n");
        assert_eq!(to_pretty_string(&json!("x")), "\"x\"\n");
    }

    #[test]
    fn string_escapes() {
        let value = json!("\"\\/\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é😀\u{2028}\u{2029}'");
        let expected = "\"\\\"\\\\/\\n\\r\\t\\b\\f\\u0000\\u001f\u{7f}é😀\u{2028}\u{2029}'\"\n";
        assert_eq!(to_pretty_string(&value), expected);
    }

    #[test]
    fn numbers_like_javascript() {
        let cases = [
            (1.0, "1"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (123e-20, "1.23e-18"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            // Exactly halfway between ...30.2 and ...30.3: JS picks the even digit.
            (1579571554285430.2, "1579571554285430.2"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (x, expected) in cases {
            assert_eq!(js_float(x), expected, "{x:e}");
        }
        assert_eq!(
            to_pretty_string(&json!([u64::MAX, i64::MIN])),
            format!("[\n  {},\n  {}\n]\n", u64::MAX, i64::MIN)
        );
    }

    #[test]
    fn compact_is_pretty_without_layout() {
        let value =
            json!({"a": [1, {"b": null}, [], {}], "s": "x: y, \"z\"\n", "n": [0.5, 1e21, -3]});
        assert_eq!(
            to_compact_string(&value),
            r#"{"a":[1,{"b":null},[],{}],"s":"x: y, \"z\"\n","n":[0.5,1e+21,-3]}"#
        );
        assert_eq!(to_compact_string(&json!({})), "{}");
        assert_eq!(to_compact_string(&json!([])), "[]");
    }

    #[test]
    fn round_trip() {
        let value = json!({
            "gateway": {"port": 18789, "auth": {"token": "t\"o\\k\ne\u{1}n"}},
            "list": [0.5, -3, 1e300, 2.5e-9, "é😀\u{2028}", null, true, [], {}],
            "": {"nested": [[[{"deep": false}]]]},
        });
        let text = to_pretty_string(&value);
        assert_eq!(parse(&text).unwrap().value, value);
        assert_eq!(to_pretty_string(&parse(&text).unwrap().value), text);
    }
}
