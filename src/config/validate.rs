//! Strict validation against the embedded schema (`schema.json`, the key set upstream's zod schema
//! accepts), producing zod 4's issue paths and messages: `Unrecognized key: "foo"` at the object's
//! path, `Invalid input: expected number, received string`, `Invalid option: expected one of …`.

use serde_json::Value;

/// One validation problem. `path` is zod's (dot-joined, array indices as numbers); `key_path`
/// is where the offending key itself sits, used to find its line in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: String,
    pub message: String,
    pub key_path: String,
}

impl Issue {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Issue {
            path: path.to_string(),
            message: message.into(),
            key_path: path.to_string(),
        }
    }
}

/// Validates `value` against `schema`.
pub fn validate(schema: &Value, value: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    check(schema, value, "", &mut issues);
    issues
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

/// zod's name for the type of a received value.
pub fn received(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn types_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn check(schema: &Value, value: &Value, path: &str, issues: &mut Vec<Issue>) {
    if let Some(alts) = schema.get("anyOf").and_then(Value::as_array) {
        return check_any_of(alts, value, path, issues);
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            issues.push(Issue::new(path, format!("Invalid input: expected {c}")));
        }
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            issues.push(Issue::new(
                path,
                format!("Invalid option: expected one of {}", list.join("|")),
            ));
        }
        return;
    }
    let types = types_of(schema);
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
        issues.push(Issue::new(path, type_message(&types, value)));
        return;
    }
    match value {
        Value::Object(_) => check_object(schema, value, path, issues),
        Value::Array(items) => check_array(schema, items, path, issues),
        Value::Number(_) => check_number(schema, value, path, issues),
        Value::String(s) => check_string(schema, s, path, issues),
        _ => {}
    }
}

fn type_message(types: &[&str], value: &Value) -> String {
    let is_int_only = types == ["integer"];
    if is_int_only && value.is_number() {
        return "Invalid input: expected int, received number".to_string();
    }
    let expected = match types
        .iter()
        .find(|t| **t != "null")
        .copied()
        .unwrap_or(types[0])
    {
        "integer" => "number",
        t => t,
    };
    format!(
        "Invalid input: expected {expected}, received {}",
        received(value)
    )
}

fn check_any_of(alts: &[Value], value: &Value, path: &str, issues: &mut Vec<Issue>) {
    let mut best: Option<Vec<Issue>> = None;
    for alt in alts {
        let mut found = Vec::new();
        check(alt, value, path, &mut found);
        if found.is_empty() {
            return;
        }
        // A branch of the right shape whose problems lie deeper explains the failure best.
        let deeper = found
            .iter()
            .all(|i| i.path != path || i.message.starts_with("Unrecognized key"));
        if deeper && shape_matches(alt, value) && best.is_none() {
            best = Some(found);
        }
    }
    match best {
        Some(found) => issues.extend(found),
        None => issues.push(Issue::new(path, "Invalid input")),
    }
}

fn shape_matches(schema: &Value, value: &Value) -> bool {
    let types = types_of(schema);
    !types.is_empty()
        && types.iter().any(|t| type_matches(t, value))
        && (value.is_object() || value.is_array())
}

fn check_object(schema: &Value, value: &Value, path: &str, issues: &mut Vec<Issue>) {
    let Some(obj) = value.as_object() else { return };
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let mut unknown = Vec::new();
    for (k, v) in obj {
        let child = join(path, k);
        match (props.and_then(|p| p.get(k)), additional) {
            (Some(s), _) => check(s, v, &child, issues),
            (None, Some(Value::Bool(false))) => unknown.push(k.clone()),
            (None, Some(s)) if s.is_object() => check(s, v, &child, issues),
            _ => {}
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(key) {
                let expected = props
                    .and_then(|p| p.get(key))
                    .map(types_of)
                    .and_then(|t| t.first().copied())
                    .unwrap_or("object");
                let expected = if expected == "integer" {
                    "number"
                } else {
                    expected
                };
                issues.push(Issue::new(
                    &join(path, key),
                    format!("Invalid input: expected {expected}, received undefined"),
                ));
            }
        }
    }
    if !unknown.is_empty() {
        let quoted: Vec<String> = unknown.iter().map(|k| format!("\"{k}\"")).collect();
        let noun = if unknown.len() == 1 {
            "Unrecognized key"
        } else {
            "Unrecognized keys"
        };
        let mut issue = Issue::new(path, format!("{noun}: {}", quoted.join(", ")));
        issue.key_path = join(path, &unknown[0]);
        issues.push(issue);
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, issues: &mut Vec<Issue>) {
    if let Some(item_schema) = schema.get("items") {
        for (i, v) in items.iter().enumerate() {
            check(item_schema, v, &join(path, &i.to_string()), issues);
        }
    }
    let n = items.len() as f64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_f64) {
        if n < min {
            issues.push(Issue::new(
                path,
                format!("Too small: expected array to have >={min} items"),
            ));
        }
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_f64) {
        if n > max {
            issues.push(Issue::new(
                path,
                format!("Too big: expected array to have <={max} items"),
            ));
        }
    }
}

/// `Number.MAX_SAFE_INTEGER`: zod's `.int()` also bounds integers to ±this.
const MAX_SAFE_INT: f64 = 9_007_199_254_740_991.0;

fn check_number(schema: &Value, value: &Value, path: &str, issues: &mut Vec<Issue>) {
    let Some(x) = value.as_f64() else { return };
    if types_of(schema).contains(&"integer") {
        if x > MAX_SAFE_INT {
            issues.push(Issue::new(
                path,
                "Too big: expected int to be <=9007199254740991",
            ));
        } else if x < -MAX_SAFE_INT {
            issues.push(Issue::new(
                path,
                "Too small: expected int to be >=-9007199254740991",
            ));
        }
    }
    let bound = |k: &str| schema.get(k).and_then(Value::as_f64);
    let fmt = |f: f64| {
        crate::config::json5::to_pretty_string(&Value::from(f))
            .trim_end()
            .to_string()
    };
    if let Some(m) = bound("exclusiveMinimum").filter(|m| x <= *m) {
        issues.push(Issue::new(
            path,
            format!("Too small: expected number to be >{}", fmt(m)),
        ));
    } else if let Some(m) = bound("minimum").filter(|m| x < *m) {
        issues.push(Issue::new(
            path,
            format!("Too small: expected number to be >={}", fmt(m)),
        ));
    }
    if let Some(m) = bound("exclusiveMaximum").filter(|m| x >= *m) {
        issues.push(Issue::new(
            path,
            format!("Too big: expected number to be <{}", fmt(m)),
        ));
    } else if let Some(m) = bound("maximum").filter(|m| x > *m) {
        issues.push(Issue::new(
            path,
            format!("Too big: expected number to be <={}", fmt(m)),
        ));
    }
}

fn check_string(schema: &Value, s: &str, path: &str, issues: &mut Vec<Issue>) {
    let n = s.chars().count() as f64;
    if let Some(min) = schema
        .get("minLength")
        .and_then(Value::as_f64)
        .filter(|m| n < *m)
    {
        issues.push(Issue::new(
            path,
            format!("Too small: expected string to have >={min} characters"),
        ));
    }
    if let Some(max) = schema
        .get("maxLength")
        .and_then(Value::as_f64)
        .filter(|m| n > *m)
    {
        issues.push(Issue::new(
            path,
            format!("Too big: expected string to have <={max} characters"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type":"object","additionalProperties":false,"properties":{
            "gateway":{"type":"object","additionalProperties":false,"properties":{
                "port":{"type":"integer","exclusiveMinimum":0},
                "mode":{"anyOf":[{"const":"local"},{"const":"remote"}]},
                "auth":{"type":"object","additionalProperties":false,"properties":{"mode":{"type":"string","enum":["token","password"]}}}}},
            "agents":{"type":"object","properties":{"list":{"type":"array","items":{"type":"object","additionalProperties":false,"required":["id"],"properties":{"id":{"type":"string"}}}}}},
            "env":{"type":"object","additionalProperties":{"type":"string"}}}})
    }

    fn msgs(v: Value) -> Vec<(String, String)> {
        validate(&schema(), &v)
            .into_iter()
            .map(|i| (i.path, i.message))
            .collect()
    }

    #[test]
    fn zod_messages() {
        assert_eq!(
            msgs(json!({"gateway":{"prot":1}})),
            vec![("gateway".into(), "Unrecognized key: \"prot\"".into())]
        );
        assert_eq!(
            msgs(json!({"a":1,"b":2}))[0].1,
            "Unrecognized keys: \"a\", \"b\""
        );
        assert_eq!(
            msgs(json!({"gateway":{"port":"x"}}))[0].1,
            "Invalid input: expected number, received string"
        );
        assert_eq!(
            msgs(json!({"gateway":{"port":1.5}}))[0].1,
            "Invalid input: expected int, received number"
        );
        assert_eq!(
            msgs(json!({"gateway":{"port":0}}))[0].1,
            "Too small: expected number to be >0"
        );
        assert_eq!(
            msgs(json!({"gateway":{"port":9_007_199_254_740_993_u64}}))[0].1,
            "Too big: expected int to be <=9007199254740991"
        );
        assert_eq!(
            msgs(json!({"gateway":{"port":-9_007_199_254_740_992_i64}})),
            vec![
                (
                    "gateway.port".into(),
                    "Too small: expected int to be >=-9007199254740991".into()
                ),
                (
                    "gateway.port".into(),
                    "Too small: expected number to be >0".into()
                )
            ]
        );
        assert!(msgs(json!({"gateway":{"port":9_007_199_254_740_991_u64}})).is_empty());
        assert_eq!(
            msgs(json!({"gateway":{"mode":"x"}}))[0],
            ("gateway.mode".into(), "Invalid input".into())
        );
        assert_eq!(
            msgs(json!({"gateway":{"auth":{"mode":"x"}}}))[0].1,
            "Invalid option: expected one of \"token\"|\"password\""
        );
        assert_eq!(
            msgs(json!({"agents":{"list":[{}]}}))[0],
            (
                "agents.list.0.id".into(),
                "Invalid input: expected string, received undefined".into()
            )
        );
        assert_eq!(msgs(json!({"env":{"A":1}}))[0].0, "env.A");
        assert!(msgs(json!({"gateway":{"port":3000,"mode":"local"},"env":{"A":"b"}})).is_empty());
    }

    #[test]
    fn unknown_key_points_at_the_key() {
        let issues = validate(&schema(), &json!({"gateway":{"prot":1}}));
        assert_eq!(issues[0].key_path, "gateway.prot");
    }
}
