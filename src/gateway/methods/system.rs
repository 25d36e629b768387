//! Methods answered from the gateway's own state: health, status, presence, heartbeat, logs,
//! agents and identity, talk mode, voice-wake triggers, and the read-only session views.

use serde_json::{json, Value};
use std::io::{Read, Seek, SeekFrom};

use super::params::{closed, str_param};
use super::{RpcError, RpcResult};
use crate::config;
use crate::gateway::core::{Broadcast, Gateway};
use crate::gateway::event::ConnId;
use crate::gateway::health;
use crate::util::now_ms;

const DEFAULT_TRIGGERS: [&str; 3] = ["clawd", "claude", "computer"];

pub fn handle(gw: &mut Gateway, conn: ConnId, method: &str, params: &Value) -> Option<RpcResult> {
    let _ = conn;
    let r = match method {
        "health" => Ok(gw.health(params.get("probe") == Some(&Value::Bool(true)))),
        "status" => Ok(health::status(gw)),
        "system-presence" => Ok(Value::Array(gw.presence.list())),
        "system-event" => system_event(gw, params),
        "last-heartbeat" => Ok(gw.last_heartbeat.clone().unwrap_or(Value::Null)),
        "set-heartbeats" => set_heartbeats(params),
        "logs.tail" => logs_tail(params),
        "agents.list" => Ok(agents_list(&gw.snapshot.config)),
        "agent.identity.get" => Ok(identity(&gw.snapshot.config, params)),
        "talk.mode" => talk_mode(gw, params),
        "voicewake.get" => Ok(json!({"triggers": voicewake_triggers(gw)})),
        "voicewake.set" => voicewake_set(gw, params),
        "sessions.list" => sessions_list(gw, params),
        _ => return None,
    };
    Some(r)
}

fn system_event(gw: &mut Gateway, params: &Value) -> RpcResult {
    if str_param(params, "text").is_none() {
        return Err(RpcError::invalid(
            "invalid system-event params: must have required property 'text'",
        ));
    }
    gw.presence.system_event(params);
    gw.broadcast_presence();
    Ok(json!({"ok": true}))
}

fn set_heartbeats(params: &Value) -> RpcResult {
    closed("set-heartbeats", params, &["enabled"], &["enabled"])?;
    let enabled = params
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(json!({"ok": true, "enabled": enabled}))
}

fn agents_list(cfg: &Value) -> Value {
    let default_id = config::default_agent_id(cfg);
    let list = cfg
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let agents: Vec<Value> = if list.is_empty() {
        vec![json!({"id": default_id})]
    } else {
        list.iter()
            .filter_map(|a| {
                let id = config::normalize_agent_id(a.get("id")?.as_str()?);
                let mut out = json!({"id": id});
                for k in ["name", "identity"] {
                    if let Some(v) = a.get(k) {
                        out[k] = v.clone();
                    }
                }
                Some(out)
            })
            .collect()
    };
    let scope = cfg
        .pointer("/session/scope")
        .and_then(Value::as_str)
        .unwrap_or("per-sender");
    json!({"defaultId": default_id, "mainKey": "main", "scope": scope, "agents": agents})
}

/// `{agentId, name, avatar}`: the agent's identity, else `Assistant` / `A`.
pub fn identity(cfg: &Value, params: &Value) -> Value {
    let from_key = str_param(params, "sessionKey")
        .and_then(|k| k.strip_prefix("agent:"))
        .and_then(|k| k.split(':').next());
    let agent_id = str_param(params, "agentId")
        .or(from_key)
        .map(config::normalize_agent_id)
        .unwrap_or_else(|| config::default_agent_id(cfg));
    let entry = crate::agent::models::agent_entry(cfg, &agent_id);
    let ident = |k: &str| {
        entry
            .and_then(|e| e.get("identity"))
            .and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = ident("name")
        .or_else(|| {
            entry
                .and_then(|e| e.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Assistant".into());
    let avatar = ident("avatar")
        .or_else(|| ident("emoji"))
        .unwrap_or_else(|| "A".into());
    json!({"agentId": agent_id, "name": name, "avatar": avatar})
}

fn talk_mode(gw: &mut Gateway, params: &Value) -> RpcResult {
    closed("talk.mode", params, &["enabled", "phase"], &["enabled"])?;
    let payload = json!({"enabled": params["enabled"].as_bool().unwrap_or(false), "phase": params.get("phase").cloned().unwrap_or(Value::Null), "ts": now_ms()});
    gw.broadcast("talk.mode", payload.clone(), Broadcast::default());
    Ok(payload)
}

fn voicewake_path(gw: &Gateway) -> std::path::PathBuf {
    gw.ctx.state.root.join("settings").join("voicewake.json")
}

fn voicewake_triggers(gw: &Gateway) -> Value {
    std::fs::read_to_string(voicewake_path(gw))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("triggers").cloned())
        .filter(Value::is_array)
        .unwrap_or_else(|| json!(DEFAULT_TRIGGERS))
}

fn voicewake_set(gw: &mut Gateway, params: &Value) -> RpcResult {
    closed("voicewake.set", params, &["triggers"], &["triggers"])?;
    let triggers: Vec<String> = params["triggers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(|s| s.trim().to_string()))
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let body = json!({"triggers": triggers, "updatedAtMs": now_ms()});
    crate::state::atomic::write_private(&voicewake_path(gw), body.to_string().as_bytes())
        .map_err(|e| RpcError::unavailable(e.to_string()))?;
    gw.broadcast(
        "voicewake.changed",
        json!({"triggers": triggers}),
        Broadcast::default(),
    );
    Ok(json!({"triggers": triggers}))
}

fn sessions_list(gw: &Gateway, params: &Value) -> RpcResult {
    const ALLOWED: [&str; 10] = [
        "limit",
        "activeMinutes",
        "includeGlobal",
        "includeUnknown",
        "includeDerivedTitles",
        "includeLastMessage",
        "label",
        "spawnedBy",
        "agentId",
        "search",
    ];
    closed("sessions.list", params, &ALLOWED, &[])?;
    let cfg = &gw.snapshot.config;
    let agent = str_param(params, "agentId")
        .map(config::normalize_agent_id)
        .unwrap_or_else(|| config::default_agent_id(cfg));
    let path = gw.ctx.state.sessions_store(&agent);
    let mut rows: Vec<Value> = health::read_store(&path)
        .into_iter()
        .map(|(key, entry)| {
            let mut row = entry.clone();
            row["key"] = json!(key);
            let kind = if key.contains(":group:") {
                "group"
            } else if key.contains(":channel:") {
                "channel"
            } else {
                "direct"
            };
            row["kind"] = json!(kind);
            row
        })
        .collect();
    rows.sort_by_key(|r| {
        std::cmp::Reverse(r.get("updatedAt").and_then(Value::as_u64).unwrap_or(0))
    });
    if let Some(limit) = params.get("limit").and_then(Value::as_u64) {
        rows.truncate(limit as usize);
    }
    let model = cfg
        .pointer("/agents/defaults/model/primary")
        .and_then(Value::as_str)
        .unwrap_or("anthropic/claude-opus-4-5");
    let (provider, model_id) = model.split_once('/').unwrap_or(("anthropic", model));
    Ok(json!({
        "ts": now_ms(), "path": path.to_string_lossy(), "count": rows.len(),
        "defaults": {"modelProvider": provider, "model": model_id, "contextTokens": cfg.pointer("/agents/defaults/contextTokens").cloned().unwrap_or(json!(200000))},
        "sessions": rows,
    }))
}

fn logs_tail(params: &Value) -> RpcResult {
    closed("logs.tail", params, &["cursor", "limit", "maxBytes"], &[])?;
    let limit = bounded(params, "limit", 1, 5000, 500, "logs.tail")? as usize;
    let max_bytes = bounded(params, "maxBytes", 1, 1_000_000, 250_000, "logs.tail")?;
    let cursor = params.get("cursor").and_then(Value::as_u64);
    crate::logging::flush_file();
    let file = crate::logging::current_file();
    let shown = file.to_string_lossy().into_owned();
    let Ok(mut f) = std::fs::File::open(&file) else {
        return Ok(
            json!({"file": shown, "cursor": 0, "size": 0, "lines": [], "truncated": false, "reset": false}),
        );
    };
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let (mut start, mut reset) = match cursor {
        Some(c) if c <= size => (c, false),
        Some(_) => (0, true),
        None => (size.saturating_sub(max_bytes), false),
    };
    if size - start > max_bytes {
        start = size - max_bytes;
        reset = cursor.is_some() || reset;
    }
    let truncated = start > 0 && (cursor.is_none() || reset);
    let mut buf = Vec::new();
    let _ = f
        .seek(SeekFrom::Start(start))
        .and_then(|_| f.take(size - start).read_to_end(&mut buf));
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if start > 0 && cursor.map(|c| c != start).unwrap_or(true) && !lines.is_empty() {
        lines.remove(0); // a partial first line
    }
    let lines: Vec<&str> = lines.into_iter().filter(|l| !l.is_empty()).collect();
    let keep = &lines[lines.len().saturating_sub(limit)..];
    Ok(
        json!({"file": shown, "cursor": size, "size": size, "lines": keep, "truncated": truncated, "reset": reset}),
    )
}

fn bounded(
    params: &Value,
    key: &str,
    min: u64,
    max: u64,
    default: u64,
    method: &str,
) -> Result<u64, RpcError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if n < min => Err(RpcError::invalid(format!(
                "invalid {method} params: at /{key}: must be >= {min}"
            ))),
            Some(n) if n > max => Err(RpcError::invalid(format!(
                "invalid {method} params: at /{key}: must be <= {max}"
            ))),
            Some(n) => Ok(n),
            None => Err(RpcError::invalid(format!(
                "invalid {method} params: at /{key}: must be integer"
            ))),
        },
    }
}
