//! Tool-schema cleaning for Gemini (Moltbot's `cleanToolSchemaForGemini`): drops the JSON Schema
//! keywords Google's function declarations reject, inlines local `$ref`s, turns `const` into
//! `enum`, flattens literal unions and strips `null` variants from `anyOf`/`oneOf`.

use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// Keywords Google's schema subset rejects (the validators 400 on them in practice).
const UNSUPPORTED: [&str; 20] = [
    "patternProperties",
    "additionalProperties",
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "definitions",
    "examples",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "multipleOf",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Annotations a replaced schema keeps from the original.
const KEPT: [&str; 3] = ["description", "title", "default"];

type Defs = HashMap<String, Value>;

/// The cleaned copy of `schema` (non-objects are returned as they are).
pub(crate) fn clean(schema: &Value) -> Value {
    match schema {
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        Value::Object(obj) => {
            let defs = extend_defs(&Defs::new(), obj);
            clean_with(schema, &defs, &HashSet::new())
        }
        other => other.clone(),
    }
}

fn extend_defs(defs: &Defs, obj: &Map<String, Value>) -> Defs {
    let mut next = defs.clone();
    for key in ["$defs", "definitions"] {
        if let Some(m) = obj.get(key).and_then(Value::as_object) {
            next.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    next
}

fn resolve_ref<'d>(r: &str, defs: &'d Defs) -> Option<&'d Value> {
    let name = r
        .strip_prefix("#/$defs/")
        .or_else(|| r.strip_prefix("#/definitions/"))?;
    let name = name.replace("~1", "/").replace("~0", "~");
    if name.is_empty() {
        return None;
    }
    defs.get(&name)
}

/// `base` with the original's description/title/default copied over.
fn with_kept(mut base: Map<String, Value>, orig: &Map<String, Value>) -> Value {
    for key in KEPT {
        if let Some(v) = orig.get(key) {
            base.insert(key.into(), v.clone());
        }
    }
    Value::Object(base)
}

fn clean_with(schema: &Value, defs: &Defs, refs: &HashSet<String>) -> Value {
    let obj = match schema {
        Value::Array(items) => {
            return Value::Array(items.iter().map(|i| clean_with(i, defs, refs)).collect())
        }
        Value::Object(obj) => obj,
        other => return other.clone(),
    };
    let defs = extend_defs(defs, obj);
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return clean_ref(r, obj, &defs, refs);
    }
    let mut variants = HashMap::new();
    for key in ["anyOf", "oneOf"] {
        let Some(list) = obj.get(key).and_then(Value::as_array) else {
            continue;
        };
        let cleaned: Vec<Value> = list.iter().map(|v| clean_with(v, &defs, refs)).collect();
        match collapse_union(cleaned, obj) {
            Ok(replacement) => return replacement,
            Err(kept) => variants.insert(key, kept),
        };
    }
    clean_keys(obj, &defs, refs, &variants)
}

/// A local `$ref` is inlined (cycles become `{}`); an unresolvable one keeps only annotations.
fn clean_ref(r: &str, obj: &Map<String, Value>, defs: &Defs, refs: &HashSet<String>) -> Value {
    if refs.contains(r) {
        return json!({});
    }
    let Some(target) = resolve_ref(r, defs) else {
        return with_kept(Map::new(), obj);
    };
    let mut next = refs.clone();
    next.insert(r.to_string());
    match clean_with(target, defs, &next) {
        Value::Object(m) => with_kept(m, obj),
        other => other,
    }
}

/// A union that reduces to one schema (`Ok`), else its cleaned variants minus `null` (`Err`).
fn collapse_union(variants: Vec<Value>, orig: &Map<String, Value>) -> Result<Value, Vec<Value>> {
    let total = variants.len();
    let non_null: Vec<Value> = variants.into_iter().filter(|v| !is_null(v)).collect();
    let stripped = non_null.len() != total;
    if let Some((ty, values)) = flatten_literals(&non_null) {
        let mut m = Map::new();
        m.insert("type".into(), ty.into());
        m.insert("enum".into(), Value::Array(values));
        return Ok(with_kept(m, orig));
    }
    if stripped && non_null.len() == 1 {
        return Ok(match non_null.into_iter().next() {
            Some(Value::Object(m)) => with_kept(m, orig),
            Some(other) => other,
            None => Value::Null,
        });
    }
    Err(non_null)
}

/// `[{const: a, type: t}, {enum: [b], type: t}]` → `(t, [a, b])`.
fn flatten_literals(variants: &[Value]) -> Option<(String, Vec<Value>)> {
    let mut ty: Option<&str> = None;
    let mut values = Vec::new();
    for v in variants {
        let value = match (v.get("const"), v.get("enum").and_then(Value::as_array)) {
            (Some(c), _) => c.clone(),
            (None, Some(e)) if e.len() == 1 => e[0].clone(),
            _ => return None,
        };
        let t = v.get("type").and_then(Value::as_str)?;
        if ty.is_some_and(|seen| seen != t) {
            return None;
        }
        ty = Some(t);
        values.push(value);
    }
    Some((ty?.to_string(), values)).filter(|(_, v)| !v.is_empty())
}

fn is_null(v: &Value) -> bool {
    let Some(m) = v.as_object() else {
        return false;
    };
    if m.get("const").is_some_and(Value::is_null) {
        return true;
    }
    if let Some(e) = m.get("enum").and_then(Value::as_array) {
        if e.len() == 1 {
            return e[0].is_null();
        }
    }
    match m.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(a)) => a.len() == 1 && a[0] == "null",
        _ => false,
    }
}

fn clean_keys(
    obj: &Map<String, Value>,
    defs: &Defs,
    refs: &HashSet<String>,
    variants: &HashMap<&str, Vec<Value>>,
) -> Value {
    let union = obj.get("anyOf").is_some_and(Value::is_array)
        || obj.get("oneOf").is_some_and(Value::is_array);
    let sub = |v: &Value| clean_with(v, defs, refs);
    let mut out = Map::new();
    for (key, value) in obj {
        if UNSUPPORTED.contains(&key.as_str()) {
            continue;
        }
        let cleaned = match (key.as_str(), value) {
            ("const", v) => {
                out.insert("enum".into(), json!([v]));
                continue;
            }
            // Gemini rejects `type` next to a union.
            ("type", _) if union => continue,
            ("type", Value::Array(types)) if types.iter().all(Value::is_string) => {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                match kept.as_slice() {
                    [one] => one.clone(),
                    _ => Value::Array(kept),
                }
            }
            ("properties", Value::Object(props)) => {
                Value::Object(props.iter().map(|(k, v)| (k.clone(), sub(v))).collect())
            }
            ("items", v @ (Value::Array(_) | Value::Object(_))) => sub(v),
            ("anyOf" | "oneOf", Value::Array(list)) => match variants.get(key.as_str()) {
                Some(kept) => Value::Array(kept.clone()),
                None => Value::Array(list.iter().map(sub).collect()),
            },
            ("allOf", Value::Array(list)) => Value::Array(list.iter().map(sub).collect()),
            (_, v) => v.clone(),
        };
        out.insert(key.clone(), cleaned);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_unsupported_keywords_and_converts_const() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "properties": {"path": {"type": "string", "minLength": 1, "format": "uri"},
                           "mode": {"const": "fast"},
                           "n": {"type": ["integer", "null"], "minimum": 0}},
            "required": ["path"]});
        assert_eq!(
            clean(&schema),
            json!({"type": "object",
                "properties": {"path": {"type": "string"}, "mode": {"enum": ["fast"]},
                               "n": {"type": "integer"}},
                "required": ["path"]})
        );
    }

    #[test]
    fn unions_flatten_and_lose_null() {
        let literals = json!({"description": "d", "anyOf": [
            {"const": "a", "type": "string"}, {"enum": ["b"], "type": "string"}, {"type": "null"}]});
        assert_eq!(
            clean(&literals),
            json!({"type": "string", "enum": ["a", "b"], "description": "d"})
        );
        let optional =
            json!({"title": "t", "anyOf": [{"type": "number", "maximum": 3}, {"type": "null"}]});
        assert_eq!(clean(&optional), json!({"type": "number", "title": "t"}));
        let mixed = json!({"type": "object", "oneOf": [{"type": "string"}, {"type": "number"}]});
        assert_eq!(
            clean(&mixed),
            json!({"oneOf": [{"type": "string"}, {"type": "number"}]})
        );
    }

    #[test]
    fn local_refs_are_inlined_and_cycles_cut() {
        let schema = json!({"type": "object", "$defs": {
                "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "properties": {"root": {"$ref": "#/$defs/Node", "description": "top"},
                           "gone": {"$ref": "#/elsewhere", "title": "x"}}});
        assert_eq!(
            clean(&schema),
            json!({"type": "object", "properties": {
                "root": {"type": "object", "properties": {"next": {}}, "description": "top"},
                "gone": {"title": "x"}}})
        );
    }
}
