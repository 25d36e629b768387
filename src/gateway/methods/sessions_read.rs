//! `sessions.preview` (upstream `readSessionPreviewItemsFromTranscript`) and `sessions.resolve`
//! (upstream `resolveSessionKeyFromResolveParams` over the combined per-agent stores).

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{truthy, Target};
use crate::agent::sessions::SessionStore;
use crate::config::{default_agent_id, normalize_agent_id};
use crate::gateway::core::Gateway;
use crate::gateway::methods::params::str_param;
use crate::gateway::methods::{RpcError, RpcResult};
use crate::routing::parse_agent_session_key;
use crate::util::now_ms;

pub(super) fn preview(gw: &Gateway, params: &Value) -> Value {
    let keys: Vec<String> = params["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| k.as_str().unwrap_or("").trim().to_string())
        .filter(|k| !k.is_empty())
        .take(64)
        .collect();
    let num = |k: &str, min: f64, d: usize| {
        params
            .get(k)
            .and_then(Value::as_f64)
            .map_or(d, |n| n.max(min) as usize)
    };
    let (limit, max_chars) = (num("limit", 1.0, 12), num("maxChars", 20.0, 240));
    let mut stores: HashMap<PathBuf, Map<String, Value>> = HashMap::new();
    let previews: Vec<Value> = keys
        .iter()
        .map(|key| {
            let t = Target::new(gw, key);
            let store = stores
                .entry(t.store.path().to_path_buf())
                .or_insert_with(|| t.store.load());
            let entry = t
                .keys
                .iter()
                .find_map(|k| store.get(k).filter(|v| truthy(Some(*v))));
            let Some(entry) = entry
                .and_then(Value::as_object)
                .filter(|e| truthy(e.get("sessionId")))
            else {
                return json!({"key": key, "status": "missing", "items": []});
            };
            let file = t.transcripts(gw, entry).into_iter().find(|p| p.exists());
            let items = file
                .map(|f| preview_items(&f, limit, max_chars))
                .unwrap_or_default();
            let status = if items.is_empty() { "empty" } else { "ok" };
            json!({"key": key, "status": status, "items": items})
        })
        .collect();
    json!({"ts": now_ms(), "previews": previews})
}

/// `readSessionPreviewItemsFromTranscript`: the last messages of the file's tail (64 KiB, then
/// 256 KiB, then 1 MiB until one has a message), at most 50 items of at most 2000 characters.
fn preview_items(path: &Path, max_items: usize, max_chars: usize) -> Vec<Value> {
    let (items, chars) = (max_items.clamp(1, 50), max_chars.clamp(20, 2000));
    for size in [64u64 << 10, 256 << 10, 1 << 20] {
        let messages = tail_messages(path, items, size);
        if !messages.is_empty() || size == 1 << 20 {
            return build_items(&messages, items, chars);
        }
    }
    vec![]
}

fn tail_messages(path: &Path, max: usize, read: u64) -> Vec<Value> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return vec![];
    };
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(size.saturating_sub(read))).is_err()
        || f.read_to_end(&mut buf).is_err()
    {
        return vec![];
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
    let mut out: Vec<Value> = Vec::new();
    for line in lines[lines.len().saturating_sub(200)..].iter().rev() {
        let parsed: Option<Value> =
            serde_json::from_str(line.strip_suffix('\r').unwrap_or(line)).ok();
        if let Some(m) = parsed.and_then(|mut v| v.get_mut("message").map(Value::take)) {
            if m.is_object() || m.is_array() {
                out.push(m);
                if out.len() >= max {
                    break;
                }
            }
        }
    }
    out.reverse();
    out
}

fn build_items(messages: &[Value], max_items: usize, max_chars: usize) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    for m in messages {
        let content = m
            .get("content")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let entry_str = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        let tool = truthy(m.get("toolName"))
            || truthy(m.get("tool_name"))
            || content.iter().any(|e| {
                let ty = entry_str(e, "type").unwrap_or_default().to_lowercase();
                truthy(e.get("name")) || ty == "toolcall" || ty == "tool_call"
            });
        let role = match m
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase()
            .as_str()
        {
            _ if tool => "tool",
            r @ ("user" | "assistant" | "system" | "tool") => r,
            _ => "other",
        }
        .to_string();
        let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let text = match m.get("content") {
            Some(Value::String(s)) => nonempty(s),
            _ => {
                let parts: Vec<String> = content
                    .iter()
                    .filter_map(|e| entry_str(e, "text"))
                    .filter(|t| !t.trim().is_empty())
                    .collect();
                nonempty(&parts.join("\n"))
                    .or_else(|| m.get("text").and_then(Value::as_str).and_then(nonempty))
            }
        };
        let text = text.or_else(|| {
            let mut names: Vec<String> = content
                .iter()
                .filter_map(|e| entry_str(e, "name"))
                .filter_map(|n| nonempty(&n))
                .collect();
            let own = m
                .get("toolName")
                .filter(|v| v.is_string())
                .or_else(|| m.get("tool_name"));
            names.extend(own.and_then(Value::as_str).and_then(nonempty));
            let overflow = names.len().saturating_sub(2);
            let head = names.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
            (!names.is_empty()).then(|| match overflow {
                0 => format!("call {head}"),
                n => format!("call {head} +{n}"),
            })
        });
        let text = text.or_else(|| {
            content.iter().find_map(|e| {
                let ty = entry_str(e, "type")
                    .unwrap_or_default()
                    .trim()
                    .to_lowercase();
                let skip =
                    ty.is_empty() || ["text", "toolcall", "tool_call"].contains(&ty.as_str());
                (!skip).then(|| format!("[{ty}]"))
            })
        });
        let Some(text) = text.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
            continue;
        };
        let text = if role == "user" {
            crate::agent::transcript::strip_envelope(text)
        } else {
            text
        };
        items.push(json!({"role": role, "text": truncate_js(text, max_chars)}));
    }
    let start = items.len().saturating_sub(max_items);
    items.split_off(start)
}

/// `text.slice(0, max - 3) + "..."` when longer than `max` UTF-16 units.
fn truncate_js(text: &str, max: usize) -> String {
    if text.encode_utf16().count() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in text.chars() {
        units += c.len_utf16();
        if units > max - 3 {
            break;
        }
        out.push(c);
    }
    out + "..."
}

/// Every agent's store with keys canonicalised for their agent (`loadCombinedSessionStoreForGateway`).
fn combined(gw: &Gateway) -> Vec<(String, Map<String, Value>)> {
    let cfg = &gw.snapshot.config;
    let mut ids = vec![normalize_agent_id(&default_agent_id(cfg))];
    match cfg
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        Some(_) => ids.extend(crate::config::agent_ids(cfg)),
        None => ids.extend(
            std::fs::read_dir(gw.ctx.state.root.join("agents"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|d| d.path().is_dir())
                .map(|d| normalize_agent_id(&d.file_name().to_string_lossy())),
        ),
    }
    let mut out: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for id in ids {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id.clone());
        for (key, entry) in SessionStore::new(gw.ctx.state.sessions_store(&id)).load() {
            let Value::Object(mut entry) = entry else {
                continue;
            };
            let for_agent = |k: &str| match k {
                "global" | "unknown" => k.to_string(),
                _ if k.starts_with("agent:") => k.to_string(),
                _ => format!("agent:{id}:{k}"),
            };
            let key = for_agent(&key);
            if let Some(s) = entry
                .get("spawnedBy")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let s = for_agent(s);
                entry.insert("spawnedBy".into(), json!(s));
            }
            let at =
                |e: &Map<String, Value>| e.get("updatedAt").and_then(Value::as_u64).unwrap_or(0);
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) if at(&slot.1) > at(&entry) => {}
                Some(slot) => slot.1 = entry,
                None => out.push((key, entry)),
            }
        }
    }
    out
}

/// Upstream `resolveSessionKeyFromResolveParams`.
pub(super) fn resolve(gw: &Gateway, p: &Value) -> RpcResult {
    let get = |k: &str| str_param(p, k).map(str::trim).filter(|s| !s.is_empty());
    let (key, session_id, label) = (get("key"), get("sessionId"), get("label"));
    match [key, session_id, label]
        .iter()
        .filter(|x| x.is_some())
        .count()
    {
        0 => {
            return Err(RpcError::invalid(
                "Either key, sessionId, or label is required",
            ))
        }
        1 => {}
        _ => {
            return Err(RpcError::invalid(
                "Provide either key, sessionId, or label (not multiple)",
            ))
        }
    }
    if let Some(key) = key {
        let t = Target::new(gw, key);
        let store = t.store.load();
        if !t.keys.iter().any(|k| truthy(store.get(k))) {
            return Err(RpcError::invalid(format!("No session found: {key}")));
        }
        return Ok(json!({"ok": true, "key": t.canonical}));
    }
    let flag = |k: &str| p.get(k) == Some(&Value::Bool(true));
    let agent = str_param(p, "agentId").map(normalize_agent_id);
    let spawned = str_param(p, "spawnedBy").filter(|s| !s.is_empty());
    let mut rows: Vec<(String, Map<String, Value>)> = combined(gw)
        .into_iter()
        .filter(|(k, _)| {
            (flag("includeGlobal") || k != "global") && (flag("includeUnknown") || k != "unknown")
        })
        .filter(|(k, _)| {
            let parsed = (k != "global" && k != "unknown")
                .then(|| parse_agent_session_key(k))
                .flatten();
            agent
                .as_ref()
                .is_none_or(|a| parsed.is_some_and(|(id, _)| normalize_agent_id(&id) == *a))
        })
        .filter(|(k, e)| {
            spawned.is_none_or(|s| {
                k != "global"
                    && k != "unknown"
                    && e.get("spawnedBy").and_then(Value::as_str) == Some(s)
            })
        })
        .filter(|(_, e)| label.is_none_or(|l| e.get("label").and_then(Value::as_str) == Some(l)))
        .collect();
    rows.sort_by_key(|(_, e)| {
        std::cmp::Reverse(e.get("updatedAt").and_then(Value::as_u64).unwrap_or(0))
    });
    let field =
        |e: &Map<String, Value>, k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(id) = session_id {
        let needle = id.to_lowercase();
        let matches: Vec<String> = rows
            .iter()
            .filter(|(k, e)| {
                let origin = e
                    .get("origin")
                    .and_then(|o| o.get("label"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let fields = [
                    field(e, "displayName"),
                    field(e, "label"),
                    origin,
                    field(e, "subject"),
                    field(e, "sessionId"),
                    Some(k.clone()),
                ];
                fields
                    .iter()
                    .flatten()
                    .any(|f| f.to_lowercase().contains(&needle))
            })
            .take(8)
            .filter(|(k, e)| field(e, "sessionId").as_deref() == Some(id) || k == id)
            .map(|(k, _)| k.clone())
            .collect();
        return match matches.as_slice() {
            [] => Err(RpcError::invalid(format!("No session found: {id}"))),
            [one] => Ok(json!({"ok": true, "key": one})),
            many => Err(RpcError::invalid(format!(
                "Multiple sessions found for sessionId: {id} ({})",
                many.join(", ")
            ))),
        };
    }
    let label = label.unwrap_or_default();
    let keys: Vec<&str> = rows.iter().take(2).map(|(k, _)| k.as_str()).collect();
    match keys.as_slice() {
        [] => Err(RpcError::invalid(format!(
            "No session found with label: {label}"
        ))),
        [one] => Ok(json!({"ok": true, "key": one})),
        many => Err(RpcError::invalid(format!(
            "Multiple sessions found with label: {label} ({})",
            many.join(", ")
        ))),
    }
}
