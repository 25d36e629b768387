//! moltbot's history repairs per model API and pi-ai's request-time pass (agents.md §4.2): tool
//! results paired with their calls, consecutive turns merged, the DM history limit, failed
//! replies dropped and orphaned calls answered. `transcript_history.rs` builds the list they
//! work on.

use super::history::{role, truthy, MISSING_TOOL_RESULT_TEXT};
use super::Entry;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The synthetic result moltbot writes (and inserts on repair) for a call without a result.
pub fn missing_tool_result(tool_call_id: &str, tool_name: Option<&str>) -> Value {
    json!({
        "role": "toolResult",
        "toolCallId": tool_call_id,
        "toolName": tool_name.unwrap_or("unknown"),
        "content": [{"type": "text", "text": MISSING_TOOL_RESULT_TEXT}],
        "isError": true,
        "timestamp": crate::util::now_ms(),
    })
}

/// `(id, name)` of each tool call in an assistant message (`toolCall`, `toolUse`,
/// `functionCall` blocks with a non-empty string id).
fn tool_calls(m: &Value) -> Vec<(String, Option<String>)> {
    let Some(blocks) = m.get("content").and_then(Value::as_array) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|b| {
            let t = b.get("type").and_then(Value::as_str);
            matches!(t, Some("toolCall" | "toolUse" | "functionCall"))
        })
        .filter_map(|b| {
            let id = b
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())?;
            let name = b.get("name").and_then(Value::as_str).map(str::to_string);
            Some((id.to_string(), name))
        })
        .collect()
}

fn tool_result_id(m: &Value) -> Option<String> {
    ["toolCallId", "toolUseId"]
        .iter()
        .find_map(|k| m.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .map(str::to_string)
}

/// Tool calls of the branch's last tool-calling assistant message that no later message
/// answers (what moltbot's guard flushes at the end of an attempt).
pub(crate) fn pending_tool_calls(branch: &[&Entry]) -> Vec<(String, Option<String>)> {
    let messages: Vec<&Value> = branch
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|e| e.get("message"))
        .collect();
    let Some(pos) = messages.iter().rposition(|m| role(m) == Some("assistant")) else {
        return Vec::new();
    };
    let answered: HashSet<String> = messages[pos + 1..]
        .iter()
        .filter(|m| role(m) == Some("toolResult"))
        .filter_map(|m| tool_result_id(m))
        .collect();
    let calls = tool_calls(messages[pos]);
    calls
        .into_iter()
        .filter(|(id, _)| !answered.contains(id))
        .collect()
}

/// moltbot's `repairToolUseResultPairing`: each assistant tool-call turn is followed directly by
/// one result per call (moved up from later in its span, or synthesised); free-floating and
/// duplicate results are dropped.
pub fn repair_tool_use_result_pairing(mut messages: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    let mut seen: HashSet<String> = HashSet::new();
    let mut i = 0;
    // Each message is moved out once (a long history is not copied again).
    while i < messages.len() {
        let msg = std::mem::take(&mut messages[i]);
        i += 1;
        match role(&msg) {
            Some("assistant") => {}
            Some("toolResult") if msg.is_object() => continue,
            _ => {
                out.push(msg);
                continue;
            }
        }
        let calls = tool_calls(&msg);
        if calls.is_empty() {
            out.push(msg);
            continue;
        }
        let ids: HashSet<&str> = calls.iter().map(|(id, _)| id.as_str()).collect();
        let mut found: Vec<(String, Value)> = Vec::new();
        let mut remainder = Vec::new();
        while i < messages.len() && role(&messages[i]) != Some("assistant") {
            let next = std::mem::take(&mut messages[i]);
            i += 1;
            if role(&next) != Some("toolResult") {
                remainder.push(next);
                continue;
            }
            let id = tool_result_id(&next).filter(|id| ids.contains(id.as_str()));
            // Matching results are kept once; anything else in the span is an orphan.
            if let Some(id) = id {
                if !seen.contains(&id) && !found.iter().any(|(f, _)| *f == id) {
                    found.push((id, next));
                }
            }
        }
        out.push(msg);
        for (id, name) in &calls {
            let result = found.iter().find(|(f, _)| f == id).map(|(_, r)| r.clone());
            let result = result.unwrap_or_else(|| missing_tool_result(id, name.as_deref()));
            if seen.insert(id.clone()) {
                out.push(result);
            }
        }
        out.extend(remainder);
    }
    out
}

/// Google: consecutive assistant messages merged (content joined; later usage, stopReason and
/// errorMessage win).
pub fn validate_gemini_turns(messages: Vec<Value>) -> Vec<Value> {
    merge_consecutive(messages, "assistant", |prev, cur| {
        let mut merged = prev.clone();
        merged.insert("content".into(), Value::Array(joined_content(prev, cur)));
        for k in ["usage", "stopReason", "errorMessage"] {
            if let Some(v) = cur.get(k).filter(|v| truthy(v)) {
                merged.insert(k.into(), v.clone());
            }
        }
        merged
    })
}

/// Anthropic: consecutive user messages merged into the later one (content joined, the later
/// timestamp unless it has none).
pub fn validate_anthropic_turns(messages: Vec<Value>) -> Vec<Value> {
    merge_consecutive(messages, "user", |prev, cur| {
        let mut merged = cur.clone();
        merged.insert("content".into(), Value::Array(joined_content(prev, cur)));
        let ts = cur.get("timestamp").filter(|t| !t.is_null());
        if let Some(ts) = ts.or_else(|| prev.get("timestamp")) {
            merged.insert("timestamp".into(), ts.clone());
        }
        merged
    })
}

fn merge_consecutive(
    messages: Vec<Value>,
    target: &str,
    merge: impl Fn(&Map<String, Value>, &Map<String, Value>) -> Map<String, Value>,
) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    let mut last_role: Option<String> = None;
    for msg in messages {
        let Some(r) = role(&msg).map(str::to_string) else {
            out.push(msg);
            continue;
        };
        let prev = out.last().and_then(Value::as_object);
        if r == target && last_role.as_deref() == Some(target) {
            if let (Some(prev), Some(cur)) = (prev, msg.as_object()) {
                let merged = Value::Object(merge(prev, cur));
                if let Some(slot) = out.last_mut() {
                    *slot = merged;
                }
                continue;
            }
        }
        out.push(msg);
        last_role = Some(r);
    }
    out
}

/// Content blocks of both messages. Upstream drops string content here; it is kept as a text
/// block instead so no words are lost.
fn joined_content(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<Value> {
    let blocks = |m: &Map<String, Value>| match m.get("content") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        _ => Vec::new(),
    };
    let mut out = blocks(a);
    out.extend(blocks(b));
    out
}

/// Keep only the last `limit` user turns and what follows each.
pub fn limit_history_turns(messages: Vec<Value>, limit: Option<u64>) -> Vec<Value> {
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return messages;
    };
    let mut users = 0;
    let mut last_user = messages.len();
    for i in (0..messages.len()).rev() {
        if role(&messages[i]) == Some("user") {
            users += 1;
            if users > limit {
                return messages[last_user..].to_vec();
            }
            last_user = i;
        }
    }
    messages
}

/// `channels.<ch>.dms.<peer>.historyLimit`, else `channels.<ch>.dmHistoryLimit`, for DM keys
/// (`agent:<id>:<ch>:dm:<peer>`, a `:thread:`/`:topic:` suffix ignored).
pub fn dm_history_limit(session_key: &str, config: &Value) -> Option<u64> {
    let parts: Vec<&str> = session_key.split(':').filter(|p| !p.is_empty()).collect();
    let rest = if parts.len() >= 3 && parts[0] == "agent" {
        &parts[2..]
    } else {
        &parts[..]
    };
    let provider = rest.first()?.to_lowercase();
    if rest.get(1).map(|k| k.to_lowercase()).as_deref() != Some("dm") {
        return None;
    }
    let user = strip_thread_suffix(&rest[2..].join(":"));
    let cfg = config.get("channels")?.get(&provider)?.as_object()?;
    let per_dm = cfg
        .get("dms")
        .and_then(|d| d.get(&user))
        .and_then(|d| d.get("historyLimit"));
    if !user.is_empty() {
        if let Some(v) = per_dm {
            return v.as_u64();
        }
    }
    cfg.get("dmHistoryLimit").and_then(Value::as_u64)
}

fn strip_thread_suffix(id: &str) -> String {
    let lower = id.to_lowercase();
    for marker in [":thread:", ":topic:"] {
        if let Some(pos) = lower.rfind(marker) {
            let tail = &id[pos + marker.len()..];
            if pos > 0 && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                return id[..pos].to_string();
            }
        }
    }
    id.to_string()
}

/// pi-ai's request-time pass: error/aborted assistant messages are not replayed, and a tool call
/// left without a result gets `No result provided` before the next assistant or user message
/// (and at the end, since the new prompt follows).
pub fn drop_failed_and_patch_orphans(messages: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    let mut pending: Vec<(String, Option<String>)> = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    let flush = |out: &mut Vec<Value>, pending: &mut Vec<_>, answered: &mut HashSet<String>| {
        for (id, name) in pending.drain(..) {
            let name: Option<String> = name;
            if !answered.contains(&id) {
                out.push(
                    json!({"role": "toolResult", "toolCallId": id, "toolName": name,
                    "content": [{"type": "text", "text": "No result provided"}],
                    "isError": true, "timestamp": crate::util::now_ms()}),
                );
            }
        }
        answered.clear();
    };
    for m in messages {
        match role(&m) {
            Some("assistant") => {
                flush(&mut out, &mut pending, &mut answered);
                let stop = m.get("stopReason").and_then(Value::as_str);
                if matches!(stop, Some("error" | "aborted")) {
                    continue;
                }
                pending = tool_calls(&m);
                out.push(m);
            }
            Some("toolResult") => {
                answered.extend(tool_result_id(&m));
                out.push(m);
            }
            Some("user") => {
                flush(&mut out, &mut pending, &mut answered);
                out.push(m);
            }
            _ => out.push(m),
        }
    }
    flush(&mut out, &mut pending, &mut answered);
    out
}
