//! Secrets in `config.get` answers, as later upstream handles them: string values on sensitive
//! paths (token, password, secret, api key) are replaced by a placeholder in `raw`, `parsed` and
//! `config`; `config.set`/`apply`/`patch` put the current file's values back wherever the
//! placeholder comes back unchanged, so a UI round trip never wipes a credential.

use serde_json::{json, Map, Value};
use std::collections::HashSet;

use super::Snapshot;

/// Later upstream's placeholder (`src/config/redact-snapshot.ts`), so clients written for
/// either gateway recognise it.
pub const SENTINEL: &str = "__OPENCLAW_REDACTED__";

/// upstream's `SENSITIVE_PATTERNS`, matched against the whole dotted path: /token/i,
/// /password/i, /secret/i, /api.?key/i.
fn is_sensitive_path(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    if p.contains("token") || p.contains("password") || p.contains("secret") {
        return true;
    }
    p.match_indices("api").any(|(i, _)| {
        let rest = &p[i + 3..];
        rest.starts_with("key") || rest.get(1..).is_some_and(|r| r.starts_with("key"))
    })
}

/// `${VAR}` references are not secrets themselves and stay visible.
fn is_env_reference(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("${") && t.ends_with('}') && !t[2..t.len() - 1].contains('}')
}

/// A copy of `value` with sensitive strings replaced; their original values go into `found`.
fn redact_value(value: &Value, path: &str, found: &mut HashSet<String>) -> Value {
    match value {
        Value::Object(map) => {
            let out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), redact_value(v, &join(path, k), found)))
                .collect();
            Value::Object(out)
        }
        Value::Array(items) => {
            let p = format!("{path}[]");
            Value::Array(items.iter().map(|v| redact_value(v, &p, found)).collect())
        }
        Value::String(s) if is_sensitive_path(path) && !is_env_reference(s) && s != SENTINEL => {
            found.insert(s.clone());
            json!(SENTINEL)
        }
        other => other.clone(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The `config.get` payload with secrets redacted. The hash stays that of the real file. A
/// file that does not parse cannot be redacted reliably, so its text is withheld (upstream).
pub fn snapshot_rpc(snap: &Snapshot) -> Value {
    let mut out = snap.to_rpc();
    let mut found = HashSet::new();
    out["config"] = redact_value(&snap.config, "", &mut found);
    out["parsed"] = redact_value(&snap.parsed, "", &mut found);
    let _ = redact_value(&snap.resolved, "", &mut found);
    out["raw"] = match (&snap.raw, snap.parsed.is_null()) {
        (Some(raw), false) => json!(redact_raw(raw, &found)),
        _ => Value::Null,
    };
    out
}

/// Redacts a plain config object (the `config` of write answers).
pub fn redact_config(config: &Value) -> Value {
    redact_value(config, "", &mut HashSet::new())
}

/// Replaces every JSON5 string literal of `raw` whose value is one of `secrets` by the
/// placeholder. Working on whole literals (not substrings) keeps a short secret from mangling
/// unrelated text.
fn redact_raw(raw: &str, secrets: &HashSet<String>) -> String {
    if secrets.is_empty() {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((before, literal, value, after)) = next_literal(rest) {
        out.push_str(before);
        if secrets.contains(&value) {
            out.push('"');
            out.push_str(SENTINEL);
            out.push('"');
        } else {
            out.push_str(literal);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Finds the next string literal outside comments: (text before, the literal, its value, after).
fn next_literal(s: &str) -> Option<(&str, &str, String, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = s[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = s[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            q @ (b'"' | b'\'') => {
                let end = literal_end(bytes, i, q)?;
                let value = unescape(&s[i + 1..end]);
                return Some((&s[..i], &s[i..=end], value, &s[end + 1..]));
            }
            _ => i += 1,
        }
    }
    None
}

fn literal_end(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut j = start + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            c if c == quote => return Some(j),
            _ => j += 1,
        }
    }
    None
}

/// Enough of JSON5 string unescaping to compare values (secrets rarely contain escapes).
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Puts the current file's values back wherever `incoming` still holds the placeholder.
/// A placeholder with nothing to restore is refused with upstream's text.
pub fn restore(incoming: Value, original: &Value, path: &str) -> Result<Value, String> {
    match incoming {
        Value::String(s) if s == SENTINEL => match original {
            Value::String(_) => Ok(original.clone()),
            _ => Err(format!(
                "Sentinel value \"{SENTINEL}\" in key {path} is not valid as real data"
            )),
        },
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let orig = original.get(&k).unwrap_or(&Value::Null);
                let restored = restore(v, orig, &join(path, &k))?;
                out.insert(k, restored);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            let p = format!("{path}[]");
            let restored: Result<Vec<Value>, String> = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| restore(v, original.get(i).unwrap_or(&Value::Null), &p))
                .collect();
            restored.map(Value::Array)
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_paths() {
        assert!(is_sensitive_path("gateway.auth.token"));
        assert!(is_sensitive_path("models.providers.x.apiKey"));
        assert!(is_sensitive_path("talk.api_key"));
        assert!(is_sensitive_path("channels.discord.accounts.a.botToken"));
        assert!(!is_sensitive_path("gateway.port"));
        assert!(!is_sensitive_path("agents.defaults.model.primary"));
    }

    #[test]
    fn raw_literals_replaced_whole_and_restored() {
        let raw = "// token: t\n{ gateway: { auth: { token: 't' } }, ui: { name: \"at\" }, env: { K: '${KEY}' }, x: 't' }";
        let parsed = super::super::json5::parse(raw).unwrap().value;
        let mut found = HashSet::new();
        let red = redact_value(&parsed, "", &mut found);
        assert_eq!(red["gateway"]["auth"]["token"], SENTINEL);
        assert_eq!(red["ui"]["name"], "at");
        let text = redact_raw(raw, &found);
        assert!(
            text.starts_with("// token: t\n"),
            "comments untouched: {text}"
        );
        assert!(text.contains(&format!("token: \"{SENTINEL}\"")), "{text}");
        assert!(text.contains("\"at\""), "{text}");
        let back = restore(
            super::super::json5::parse(&text).unwrap().value,
            &parsed,
            "",
        )
        .unwrap();
        assert_eq!(back["gateway"]["auth"]["token"], "t");
    }

    #[test]
    fn env_references_stay_and_unknown_placeholders_refused() {
        let v = json!({"gateway": {"auth": {"token": "${GW_TOKEN}"}}});
        assert_eq!(redact_config(&v), v);
        let err = restore(json!({"hooks": {"token": SENTINEL}}), &json!({}), "").unwrap_err();
        assert!(err.contains("in key hooks.token"), "{err}");
    }
}
