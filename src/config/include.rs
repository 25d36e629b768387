//! `$include` resolution (upstream `src/config/includes.ts`): include sites at any depth, paths
//! relative to the including file, array includes deep-merged (arrays concatenate), sibling keys
//! merged over the included value, depth limit 10 and cycle detection, with upstream's messages.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Deepest include nesting allowed (the top-level file is depth 0).
pub const MAX_DEPTH: usize = 10;
const KEY: &str = "$include";

/// Resolves every include in `value`, which was read from `file`.
pub fn resolve(value: Value, file: &Path) -> Result<Value, String> {
    let chain = vec![absolute(file)];
    process(value, file, 0, &chain)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn process(value: Value, file: &Path, depth: usize, chain: &[PathBuf]) -> Result<Value, String> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| process(v, file, depth, chain))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) if map.contains_key(KEY) => include_site(map, file, depth, chain),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k, process(v, file, depth, chain)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

fn include_site(
    mut map: Map<String, Value>,
    file: &Path,
    depth: usize,
    chain: &[PathBuf],
) -> Result<Value, String> {
    let directive = map.remove(KEY).unwrap_or(Value::Null);
    let included = match directive {
        Value::String(p) => load(&p, file, depth, chain)?,
        Value::Array(items) => {
            let mut acc = Value::Object(Map::new());
            for item in items {
                let Value::String(p) = item else {
                    return Err(format!(
                        "Invalid $include array item: expected string, got {}",
                        js_typeof(&item)
                    ));
                };
                acc = deep_merge(acc, load(&p, file, depth, chain)?);
            }
            acc
        }
        other => {
            return Err(format!(
                "Invalid $include value: expected string or array of strings, got {}",
                js_typeof(&other)
            ))
        }
    };
    if map.is_empty() {
        return Ok(included);
    }
    if !included.is_object() {
        return Err("Sibling keys require included content to be an object".to_string());
    }
    let siblings = process(Value::Object(map), file, depth, chain)?;
    Ok(deep_merge(included, siblings))
}

fn load(written: &str, including: &Path, depth: usize, chain: &[PathBuf]) -> Result<Value, String> {
    let base = including.parent().unwrap_or_else(|| Path::new("."));
    let resolved = absolute(&base.join(written));
    if depth >= MAX_DEPTH {
        return Err(format!(
            "Maximum include depth ({MAX_DEPTH}) exceeded at: {}",
            resolved.display()
        ));
    }
    if chain.contains(&resolved) {
        let mut names: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
        names.push(resolved.display().to_string());
        return Err(format!("Circular include detected: {}", names.join(" -> ")));
    }
    let shown = resolved.display();
    let text = std::fs::read_to_string(&resolved)
        .map_err(|_| format!("Failed to read include file: {written} (resolved: {shown})"))?;
    let parsed = super::json5::parse(&text)
        .map_err(|_| format!("Failed to parse include file: {written} (resolved: {shown})"))?;
    let mut next_chain = chain.to_vec();
    next_chain.push(resolved.clone());
    process(parsed.value, &resolved, depth + 1, &next_chain)
}

/// Objects merge recursively, arrays concatenate, anything else: the later value wins.
pub fn deep_merge(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (Value::Array(mut a), Value::Array(b)) => {
            a.extend(b);
            Value::Array(a)
        }
        (Value::Object(a), other) if a.is_empty() => other,
        (_, other) => other,
    }
}

/// JavaScript's `typeof` for a JSON value (`null` is "object", as in JS).
fn js_typeof(v: &Value) -> &'static str {
    match v {
        Value::Null | Value::Object(_) | Value::Array(_) => "object",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("mb-inc-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        d
    }

    #[test]
    fn nested_relative_and_siblings() {
        let d = dir();
        std::fs::write(
            d.join("sub/a.json5"),
            r#"{ x: 1, list: [1], $include: "b.json5" }"#,
        )
        .unwrap();
        std::fs::write(d.join("sub/b.json5"), r#"{ y: 2, list: [0] }"#).unwrap();
        let main = d.join("moltbot.json");
        let v = resolve(
            json!({"agents": {"$include": "sub/a.json5", "list": [2]}}),
            &main,
        )
        .unwrap();
        assert_eq!(v, json!({"agents": {"y": 2, "list": [0, 1, 2], "x": 1}}));
    }

    #[test]
    fn arrays_concatenate_and_errors() {
        let d = dir();
        std::fs::write(d.join("one.json"), "[1]").unwrap();
        std::fs::write(d.join("two.json"), "[2]").unwrap();
        let main = d.join("m.json");
        assert_eq!(
            resolve(json!({"l": {"$include": ["one.json", "two.json"]}}), &main).unwrap(),
            json!({"l": [1, 2]})
        );
        let err = resolve(json!({"$include": "missing.json"}), &main).unwrap_err();
        assert!(
            err.starts_with("Failed to read include file: missing.json (resolved: "),
            "{err}"
        );
        let err = resolve(json!({"$include": 5}), &main).unwrap_err();
        assert_eq!(
            err,
            "Invalid $include value: expected string or array of strings, got number"
        );
        let err = resolve(json!({"l": {"$include": "one.json", "x": 1}}), &main).unwrap_err();
        assert_eq!(err, "Sibling keys require included content to be an object");
    }

    #[test]
    fn cycles_and_depth() {
        let d = dir();
        std::fs::write(d.join("a.json"), r#"{"$include": "b.json"}"#).unwrap();
        std::fs::write(d.join("b.json"), r#"{"$include": "a.json"}"#).unwrap();
        let err = resolve(json!({"$include": "a.json"}), &d.join("m.json")).unwrap_err();
        assert!(err.starts_with("Circular include detected: "), "{err}");
        for i in 0..12 {
            std::fs::write(
                d.join(format!("d{i}.json")),
                format!(r#"{{"$include": "d{}.json"}}"#, i + 1),
            )
            .unwrap();
        }
        let err = resolve(json!({"$include": "d0.json"}), &d.join("m.json")).unwrap_err();
        assert!(
            err.starts_with("Maximum include depth (10) exceeded at: "),
            "{err}"
        );
    }
}
