//! Tool-argument checks as pi does them (AJV with `coerceTypes` and `allErrors` over the tool's
//! schema: the subset of JSON Schema our tools use) and moltbot's Claude-Code parameter aliases.

use serde_json::{json, Map, Value};

/// Claude-Code names → pi names (`src/agents/pi-tools.read.ts`).
const ALIASES: [(&str, &str); 3] = [
    ("path", "file_path"),
    ("oldText", "old_string"),
    ("newText", "new_string"),
];

/// Advertises each alias beside its original and drops the originals from `required`, so a model
/// trained on Claude Code's names is not refused.
pub fn with_claude_aliases(mut schema: Value) -> Value {
    let Some(props) = schema.get("properties").and_then(Value::as_object).cloned() else {
        return schema;
    };
    let mut props = props;
    let mut required: Vec<Value> = schema
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (original, alias) in ALIASES {
        if let Some(p) = props.get(original).cloned() {
            props.entry(alias.to_string()).or_insert(p);
            required.retain(|r| r.as_str() != Some(original));
        }
    }
    schema["properties"] = Value::Object(props);
    match schema.as_object_mut() {
        Some(obj) if required.is_empty() => {
            obj.remove("required");
        }
        Some(obj) => {
            obj.insert("required".into(), Value::Array(required));
        }
        None => {}
    }
    schema
}

/// `file_path` → `path`, `old_string` → `oldText`, `new_string` → `newText` (original wins).
pub fn normalize_claude_params(mut args: Value) -> Value {
    if let Some(obj) = args.as_object_mut() {
        for (original, alias) in ALIASES {
            if obj.contains_key(alias) && !obj.contains_key(original) {
                if let Some(v) = obj.remove(alias) {
                    obj.insert(original.to_string(), v);
                }
            }
        }
    }
    args
}

/// `Missing required parameter: <label>` unless one key of each group holds a non-blank string.
pub fn assert_required_groups(
    args: &Value,
    groups: &[(&[&str], &str)],
    tool: &str,
) -> Result<(), String> {
    let Some(obj) = args.as_object() else {
        return Err(format!("Missing parameters for {tool}"));
    };
    for (keys, label) in groups {
        let ok = keys.iter().any(|k| {
            obj.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        });
        if !ok {
            return Err(format!("Missing required parameter: {label}"));
        }
    }
    Ok(())
}

/// The (coerced) arguments, or pi's `Validation failed for tool "<name>": …` text.
pub fn validate(tool: &str, schema: &Value, args: &Value) -> Result<Value, String> {
    let mut coerced = args.clone();
    let mut errors = Vec::new();
    check(schema, &mut coerced, "", &mut errors);
    if errors.is_empty() {
        return Ok(coerced);
    }
    let received = serde_json::to_string_pretty(args).unwrap_or_default();
    Err(format!(
        "Validation failed for tool \"{tool}\":\n{}\n\nReceived arguments:\n{received}",
        errors.join("\n")
    ))
}

fn check(schema: &Value, value: &mut Value, path: &str, errors: &mut Vec<String>) {
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        if !coerce(ty, value) {
            errors.push(format!("  - {}: must be {ty}", display(path)));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!(
                "  - {}: must be equal to one of the allowed values",
                display(path)
            ));
        }
    }
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    check_object(schema, obj, path, errors);
}

fn check_object(
    schema: &Value,
    obj: &mut Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    for key in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !obj.contains_key(key) {
            let at = if path.is_empty() {
                key
            } else {
                path.trim_start_matches('/')
            };
            errors.push(format!("  - {at}: must have required property '{key}'"));
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            if let Some(v) = obj.get_mut(key) {
                check(sub, v, &format!("{path}/{key}"), errors);
            }
        }
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "root"
    } else {
        &path[1..]
    }
}

/// AJV's `coerceTypes: true` for scalar types; `false` when the value cannot become `ty`.
fn coerce(ty: &str, value: &mut Value) -> bool {
    let next = match (ty, &*value) {
        ("object", Value::Object(_)) | ("array", Value::Array(_)) => return true,
        ("string", Value::String(_)) | ("boolean", Value::Bool(_)) => return true,
        ("number", Value::Number(_)) => return true,
        ("integer", Value::Number(n)) => return n.is_i64() || n.is_u64(),
        ("string", Value::Number(n)) => json!(n.to_string()),
        ("string", Value::Bool(b)) => json!(b.to_string()),
        ("string", Value::Null) => json!(""),
        ("number" | "integer", Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.fract() == 0.0 && n.abs() < 9e15 => json!(n as i64),
            Ok(n) if ty == "number" => json!(n),
            _ => return false,
        },
        ("number" | "integer", Value::Bool(b)) => json!(u8::from(*b)),
        ("number" | "integer", Value::Null) => json!(0),
        ("boolean", Value::String(s)) if s == "true" || s == "false" => json!(s == "true"),
        ("boolean", Value::Number(n)) if n.as_f64() == Some(0.0) || n.as_f64() == Some(1.0) => {
            json!(n.as_f64() == Some(1.0))
        }
        ("boolean", Value::Null) => json!(false),
        _ => return false,
    };
    *value = next;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_schema() -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}, "offset": {"type": "number"}},
               "required": ["path"]})
    }

    #[test]
    fn aliases_are_advertised_and_not_required() {
        let s = with_claude_aliases(read_schema());
        assert_eq!(s["properties"]["file_path"], json!({"type": "string"}));
        assert!(s.get("required").is_none());
    }

    #[test]
    fn numbers_are_coerced_and_bad_types_listed() {
        let s = read_schema();
        let ok = validate("read", &s, &json!({"path": "a", "offset": "3"})).expect("coerced");
        assert_eq!(ok["offset"], json!(3));
        let err = validate("read", &s, &json!({"offset": "x"})).expect_err("invalid");
        assert_eq!(
            err,
            "Validation failed for tool \"read\":\n  - path: must have required property 'path'\n  - offset: must be number\n\nReceived arguments:\n{\n  \"offset\": \"x\"\n}"
        );
    }

    #[test]
    fn claude_names_are_normalised() {
        let args = normalize_claude_params(json!({"file_path": "x", "old_string": "a"}));
        assert_eq!(args, json!({"path": "x", "oldText": "a"}));
        let groups: &[(&[&str], &str)] = &[(&["path", "file_path"], "path (path or file_path)")];
        assert_eq!(
            assert_required_groups(&json!({"path": " "}), groups, "read"),
            Err("Missing required parameter: path (path or file_path)".into())
        );
    }
}
