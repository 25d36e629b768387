//! `sessions.patch|reset|delete|preview|resolve|compact` (gateway-protocol.md §4.1) as upstream's
//! `server-methods/sessions.ts`: typebox/AJV parameter texts, alias keys moved to the canonical
//! key inside the store lock, archived files named `<file>.<reason>.<ISO time, ':' → '-'>`.
//! The patch rules are in `sessions_patch.rs`, preview and resolve in `sessions_read.rs`.

#[path = "sessions_patch.rs"]
mod patching;
#[path = "sessions_read.rs"]
mod read;

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

use super::params::{closed, str_param};
use super::{RpcError, RpcResult};
use crate::agent::sessions::{SessionStore, StoreError};
use crate::config::{default_agent_id, normalize_agent_id};
use crate::gateway::core::Gateway;
use crate::routing::{canonical_session_key, main_session_key, parse_agent_session_key};
use crate::util::{now_ms, uuid_v4};

/// The typebox schema of one parameter.
#[derive(Clone, Copy)]
enum Ty {
    /// `Type.String({minLength: 1, maxLength})`.
    Str(usize),
    /// `Type.Union([Str, Type.Null()])`.
    OrNull(usize),
    /// `Type.Union([Type.Literal(..)…, Type.Null()])`.
    Lits(&'static [&'static str]),
    /// `Type.Integer({minimum})`.
    Int(i64),
    Bool,
    /// `Type.Array(NonEmptyString, {minItems: 1})`.
    Keys,
}

const ANY: usize = usize::MAX;
const LABEL_MAX: usize = 64;
const PATCH: &[(&str, Ty)] = &[
    ("key", Ty::Str(ANY)),
    ("label", Ty::OrNull(LABEL_MAX)),
    ("thinkingLevel", Ty::OrNull(ANY)),
    ("verboseLevel", Ty::OrNull(ANY)),
    ("reasoningLevel", Ty::OrNull(ANY)),
    ("responseUsage", Ty::Lits(&["off", "tokens", "full", "on"])),
    ("elevatedLevel", Ty::OrNull(ANY)),
    ("execHost", Ty::OrNull(ANY)),
    ("execSecurity", Ty::OrNull(ANY)),
    ("execAsk", Ty::OrNull(ANY)),
    ("execNode", Ty::OrNull(ANY)),
    ("model", Ty::OrNull(ANY)),
    ("spawnedBy", Ty::OrNull(ANY)),
    ("sendPolicy", Ty::Lits(&["allow", "deny"])),
    ("groupActivation", Ty::Lits(&["mention", "always"])),
];
const RESET: &[(&str, Ty)] = &[("key", Ty::Str(ANY))];
const DELETE: &[(&str, Ty)] = &[("key", Ty::Str(ANY)), ("deleteTranscript", Ty::Bool)];
const COMPACT: &[(&str, Ty)] = &[("key", Ty::Str(ANY)), ("maxLines", Ty::Int(1))];
const PREVIEW: &[(&str, Ty)] = &[
    ("keys", Ty::Keys),
    ("limit", Ty::Int(1)),
    ("maxChars", Ty::Int(20)),
];
const RESOLVE: &[(&str, Ty)] = &[
    ("key", Ty::Str(ANY)),
    ("sessionId", Ty::Str(ANY)),
    ("label", Ty::Str(LABEL_MAX)),
    ("agentId", Ty::Str(ANY)),
    ("spawnedBy", Ty::Str(ANY)),
    ("includeGlobal", Ty::Bool),
    ("includeUnknown", Ty::Bool),
];

pub fn handle(gw: &mut Gateway, method: &str, params: &Value) -> Option<RpcResult> {
    let (schema, required): (&[(&str, Ty)], &[&str]) = match method {
        "sessions.patch" => (PATCH, &["key"]),
        "sessions.reset" => (RESET, &["key"]),
        "sessions.delete" => (DELETE, &["key"]),
        "sessions.compact" => (COMPACT, &["key"]),
        "sessions.preview" => (PREVIEW, &["keys"]),
        "sessions.resolve" => (RESOLVE, &[]),
        _ => return None,
    };
    let r = validate(method, params, schema, required).and_then(|_| match method {
        "sessions.patch" => patch(gw, params),
        "sessions.reset" => reset(gw, params),
        "sessions.delete" => delete(gw, params),
        "sessions.compact" => compact(gw, params),
        "sessions.preview" => Ok(read::preview(gw, params)),
        _ => read::resolve(gw, params),
    });
    Some(r)
}

/// `closed` for the object itself, then AJV's per-property messages (allErrors, de-duplicated).
fn validate(method: &str, p: &Value, schema: &[(&str, Ty)], req: &[&str]) -> Result<(), RpcError> {
    let names: Vec<&str> = schema.iter().map(|(n, _)| *n).collect();
    let head = closed(method, p, &names, req).err().map(|e| e.message);
    if p.as_object().is_none() {
        return Err(RpcError::invalid(head.unwrap_or_default()));
    }
    let mut parts: Vec<String> = Vec::new();
    for (name, ty) in schema {
        let Some(v) = p.get(*name) else { continue };
        for (path, msg) in type_errors(name, v, *ty) {
            let part = format!("at {path}: {msg}");
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
    }
    match (head, parts.is_empty()) {
        (None, true) => Ok(()),
        (Some(h), true) => Err(RpcError::invalid(h)),
        (Some(h), false) => Err(RpcError::invalid(format!("{h}; {}", parts.join("; ")))),
        (None, false) => Err(RpcError::invalid(format!(
            "invalid {method} params: {}",
            parts.join("; ")
        ))),
    }
}

fn type_errors(name: &str, v: &Value, ty: Ty) -> Vec<(String, &'static str)> {
    let at = format!("/{name}");
    let string = |v: &Value, max: usize| -> Vec<&'static str> {
        match v.as_str().map(|s| s.chars().count()) {
            None => vec!["must be string"],
            Some(0) => vec!["must NOT have fewer than 1 characters"],
            Some(n) if n > max => vec!["must NOT have more than 64 characters"],
            Some(_) => vec![],
        }
    };
    let any_of = |mut errs: Vec<&'static str>| {
        errs.extend(["must be null", "must match a schema in anyOf"]);
        errs
    };
    let errs = match ty {
        Ty::Str(max) => string(v, max),
        Ty::OrNull(_) if v.is_null() => vec![],
        Ty::OrNull(max) => match string(v, max) {
            e if e.is_empty() => e,
            e => any_of(e),
        },
        Ty::Lits(lits) if v.is_null() || v.as_str().is_some_and(|s| lits.contains(&s)) => vec![],
        Ty::Lits(_) if v.is_string() => any_of(vec!["must be equal to constant"]),
        Ty::Lits(_) => any_of(vec!["must be string", "must be equal to constant"]),
        Ty::Int(min) => match v.as_f64() {
            Some(f) if f.fract() != 0.0 => vec!["must be integer"],
            Some(f) if f < min as f64 => vec![if min == 1 {
                "must be >= 1"
            } else {
                "must be >= 20"
            }],
            Some(_) => vec![],
            None => vec!["must be integer"],
        },
        Ty::Bool if v.is_boolean() => vec![],
        Ty::Bool => vec!["must be boolean"],
        Ty::Keys => {
            let Some(items) = v.as_array() else {
                return vec![(at, "must be array")];
            };
            let mut out: Vec<(String, &'static str)> = Vec::new();
            if items.is_empty() {
                out.push((at.clone(), "must NOT have fewer than 1 items"));
            }
            for (i, item) in items.iter().enumerate() {
                out.extend(
                    string(item, ANY)
                        .into_iter()
                        .map(|m| (format!("{at}/{i}"), m)),
                );
            }
            return out;
        }
    };
    errs.into_iter().map(|m| (at.clone(), m)).collect()
}

/// Upstream `resolveGatewaySessionStoreTarget`.
struct Target {
    agent_id: String,
    store: SessionStore,
    canonical: String,
    /// The canonical key first, then the key as sent when it differs.
    keys: Vec<String>,
}

impl Target {
    fn new(gw: &Gateway, key: &str) -> Target {
        let cfg = &gw.snapshot.config;
        let key = key.trim();
        let canonical = canonical_session_key(cfg, key);
        let agent_id = match parse_agent_session_key(&canonical) {
            Some((a, _)) if canonical != "global" && canonical != "unknown" => {
                normalize_agent_id(&a)
            }
            _ => normalize_agent_id(&default_agent_id(cfg)),
        };
        let mut keys = vec![canonical.clone()];
        if !key.is_empty() && key != canonical {
            keys.push(key.to_string());
        }
        let store = SessionStore::new(gw.ctx.state.sessions_store(&agent_id));
        Target {
            agent_id,
            store,
            canonical,
            keys,
        }
    }

    /// Moves an entry stored under an alias of the key to the canonical key (in the lock).
    fn adopt(&self, store: &mut Map<String, Value>) {
        if truthy(store.get(&self.canonical)) {
            return;
        }
        if let Some(alias) = self.keys[1..].iter().find(|k| truthy(store.get(*k))) {
            if let Some(v) = store.shift_remove(alias) {
                store.insert(self.canonical.clone(), v);
            }
        }
    }

    /// `resolveSessionTranscriptCandidates`, duplicates dropped.
    fn transcripts(&self, gw: &Gateway, entry: &Map<String, Value>) -> Vec<PathBuf> {
        let Some(id) = entry.get("sessionId").and_then(Value::as_str) else {
            return vec![];
        };
        let mut out: Vec<PathBuf> = Vec::new();
        if let Some(f) = entry
            .get("sessionFile")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
        {
            out.push(PathBuf::from(f));
        }
        let file = format!("{id}.jsonl");
        out.push(self.store.sessions_dir().join(&file));
        out.push(gw.ctx.state.sessions_dir(&self.agent_id).join(&file));
        out.push(
            crate::state::paths::home_dir()
                .join(".clawdbot/sessions")
                .join(&file),
        );
        out.dedup();
        out
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

fn store_err(e: StoreError) -> RpcError {
    RpcError::unavailable(e.to_string())
}

fn key_of(params: &Value) -> Result<&str, RpcError> {
    let key = str_param(params, "key").unwrap_or("").trim();
    if key.is_empty() {
        return Err(RpcError::invalid("key required"));
    }
    Ok(key)
}

/// `<file>.<reason>.<toISOString() with ':' replaced by '-'>` (upstream `archiveFileOnDisk`).
fn archive(path: &Path, reason: &str) -> std::io::Result<String> {
    let ts = crate::util::iso_now().replace(':', "-");
    let archived = format!("{}.{reason}.{ts}", path.display());
    std::fs::rename(path, &archived)?;
    Ok(archived)
}

fn patch(gw: &mut Gateway, params: &Value) -> RpcResult {
    let t = Target::new(gw, key_of(params)?);
    let snapshot = &gw.snapshot;
    let applied = t
        .store
        .update_store(|store| {
            t.adopt(store);
            patching::apply_patch(snapshot, store, &t.canonical, params)
        })
        .map_err(store_err)??;
    Ok(json!({"ok": true, "path": t.store.path(), "key": t.canonical, "entry": applied}))
}

/// Fields upstream's `sessions.reset` carries into the fresh entry; everything else is dropped.
const RESET_KEPT: [&str; 12] = [
    "thinkingLevel",
    "verboseLevel",
    "reasoningLevel",
    "responseUsage",
    "model",
    "contextTokens",
    "sendPolicy",
    "label",
    "origin",
    "lastChannel",
    "lastTo",
    "skillsSnapshot",
];

fn reset(gw: &mut Gateway, params: &Value) -> RpcResult {
    let t = Target::new(gw, key_of(params)?);
    let entry = t
        .store
        .update_store(|store| {
            t.adopt(store);
            let old = store.get(&t.canonical).and_then(Value::as_object);
            let mut next = Map::new();
            next.insert("sessionId".into(), json!(uuid_v4()));
            next.insert("updatedAt".into(), json!(now_ms()));
            next.insert("systemSent".into(), json!(false));
            next.insert("abortedLastRun".into(), json!(false));
            for k in RESET_KEPT {
                if let Some(v) = old.and_then(|o| o.get(k)) {
                    next.insert(k.into(), v.clone());
                }
            }
            for k in ["inputTokens", "outputTokens", "totalTokens"] {
                next.insert(k.into(), json!(0));
            }
            store.insert(t.canonical.clone(), Value::Object(next.clone()));
            next
        })
        .map_err(store_err)?;
    Ok(json!({"ok": true, "key": t.canonical, "entry": entry}))
}

fn delete(gw: &mut Gateway, params: &Value) -> RpcResult {
    let key = key_of(params)?;
    let t = Target::new(gw, key);
    let main = main_session_key(&gw.snapshot.config);
    if t.canonical == main {
        return Err(RpcError::invalid(format!(
            "Cannot delete the main session ({main})."
        )));
    }
    let delete_transcript = params
        .get("deleteTranscript")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let entry = t.store.get(&t.canonical);
    // Upstream waits up to 15 s for the aborted run; the loop cannot wait, so a run that is
    // still registered after the abort signal is reported and the client retries.
    gw.abort_session(&t.canonical, "sessions.delete");
    if !gw.chat.runs_of(&t.canonical).is_empty() {
        return Err(RpcError::unavailable(format!(
            "Session {key} is still active; try again in a moment."
        )));
    }
    t.store
        .update_store(|store| {
            t.adopt(store);
            store.shift_remove(&t.canonical);
        })
        .map_err(store_err)?;
    let mut archived: Vec<String> = Vec::new();
    if let Some(e) = entry.as_ref().filter(|_| delete_transcript) {
        for path in t.transcripts(gw, e).into_iter().filter(|p| p.exists()) {
            archived.extend(archive(&path, "deleted").ok());
        }
    }
    Ok(json!({"ok": true, "key": t.canonical, "deleted": entry.is_some(), "archived": archived}))
}

fn compact(gw: &mut Gateway, params: &Value) -> RpcResult {
    let t = Target::new(gw, key_of(params)?);
    let max_lines = match params.get("maxLines").and_then(Value::as_f64) {
        Some(n) => n.floor().max(1.0) as usize,
        None => 400,
    };
    let entry = t
        .store
        .update_store(|store| {
            t.adopt(store);
            store.get(&t.canonical).and_then(Value::as_object).cloned()
        })
        .map_err(store_err)?;
    let answer = |extra: Value| -> RpcResult {
        let mut out = Map::new();
        out.insert("ok".into(), json!(true));
        out.insert("key".into(), json!(t.canonical));
        out.insert("compacted".into(), json!(false));
        out.extend(extra.as_object().cloned().unwrap_or_default());
        Ok(Value::Object(out))
    };
    let Some(entry) = entry.filter(|e| truthy(e.get("sessionId"))) else {
        return answer(json!({"reason": "no sessionId"}));
    };
    let Some(file) = t.transcripts(gw, &entry).into_iter().find(|p| p.exists()) else {
        return answer(json!({"reason": "no transcript"}));
    };
    let raw = std::fs::read(&file).map_err(|e| RpcError::unavailable(e.to_string()))?;
    let raw = String::from_utf8_lossy(&raw);
    let lines: Vec<&str> = raw
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.len() <= max_lines {
        return answer(json!({"kept": lines.len()}));
    }
    let io = |e: std::io::Error| RpcError::unavailable(e.to_string());
    let archived = archive(&file, "bak").map_err(io)?;
    let kept = &lines[lines.len() - max_lines..];
    std::fs::write(&file, format!("{}\n", kept.join("\n"))).map_err(io)?;
    t.store
        .update_store(|store| {
            if let Some(e) = store.get_mut(&t.canonical).and_then(Value::as_object_mut) {
                for k in ["inputTokens", "outputTokens", "totalTokens"] {
                    e.shift_remove(k);
                }
                e.insert("updatedAt".into(), json!(now_ms()));
            }
        })
        .map_err(store_err)?;
    Ok(
        json!({"ok": true, "key": t.canonical, "compacted": true, "archived": archived, "kept": kept.len()}),
    )
}
