//! `${VAR}` substitution in string values (upstream `src/config/env-substitution.ts`): uppercase
//! names only, inline, `$${VAR}` escapes, unset or empty variables are errors naming the config path.

use serde_json::Value;

/// Looks variables up: the process environment first, then the config's own `env` block.
pub trait EnvLookup {
    fn get(&self, name: &str) -> Option<String>;
}

/// Substitutes every string in `value`; the error names the first missing variable and its path.
pub fn substitute(value: Value, env: &dyn EnvLookup) -> Result<Value, String> {
    walk(value, env, &mut String::new())
}

fn walk(value: Value, env: &dyn EnvLookup, path: &mut String) -> Result<Value, String> {
    match value {
        Value::String(s) => substitute_str(&s, env).map(Value::String).map_err(|name| {
            format!("Missing env var \"{name}\" referenced at config path: {path}")
        }),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.into_iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(walk(v, env, path)?);
                path.truncate(len);
            }
            Ok(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k);
                let v = walk(v, env, path)?;
                path.truncate(len);
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

/// Substitutes one string; `Err(name)` for a missing variable.
pub fn substitute_str(s: &str, env: &dyn EnvLookup) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$$") {
            if let Some(name) = var_name(after) {
                out.push_str(&format!("${{{name}}}"));
                rest = &after[name.len() + 2..];
                continue;
            }
        }
        if let Some(name) = var_name(tail.strip_prefix('$').unwrap_or("")) {
            let value = env
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| name.to_string())?;
            out.push_str(&value);
            rest = &tail[name.len() + 3..];
            continue;
        }
        out.push('$');
        rest = &tail[1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// For text starting `{NAME}` with NAME matching `^[A-Z_][A-Z0-9_]*$`, returns NAME.
fn var_name(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('{')?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_uppercase() || first == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl EnvLookup for Map {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn env() -> Map {
        Map(HashMap::from([
            ("TOKEN", "abc"),
            ("EMPTY", ""),
            ("A_1", "x"),
        ]))
    }

    #[test]
    fn substitutes_inline_and_escapes() {
        let e = env();
        assert_eq!(
            substitute_str("pre-${TOKEN}-${A_1}", &e).unwrap(),
            "pre-abc-x"
        );
        assert_eq!(substitute_str("$${TOKEN}", &e).unwrap(), "${TOKEN}");
        assert_eq!(
            substitute_str("${lower} $VAR ${1X} ${", &e).unwrap(),
            "${lower} $VAR ${1X} ${"
        );
        assert_eq!(substitute_str("${EMPTY}", &e).unwrap_err(), "EMPTY");
    }

    #[test]
    fn error_names_path() {
        let v = json!({"models": {"providers": {"x": {"headers": ["ok", "${NOPE}"]}}}});
        assert_eq!(
            substitute(v, &env()).unwrap_err(),
            "Missing env var \"NOPE\" referenced at config path: models.providers.x.headers[1]"
        );
        assert_eq!(
            substitute(json!({"n": 1, "k": "${TOKEN}"}), &env()).unwrap(),
            json!({"n": 1, "k": "abc"})
        );
    }
}
