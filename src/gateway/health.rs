//! `health` and `status` summaries, built from the config and the session stores on disk, with
//! empty channel maps until channels exist.

use serde_json::{json, Value};
use std::path::Path;

use super::core::Gateway;
use crate::config::{self, json5};
use crate::util::now_ms;

pub const DEFAULT_HEARTBEAT_PROMPT: &str = "Read HEARTBEAT.md if it exists (workspace context). Follow it strictly. Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply HEARTBEAT_OK.";
const RECENT: usize = 5;

/// Session-store facts for one agent: `{path, count, recent:[{key, updatedAt, age}]}`.
pub fn store_summary(path: &Path) -> Value {
    let entries = read_store(path);
    let now = now_ms();
    let mut rows: Vec<(String, u64)> = entries
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.get("updatedAt").and_then(Value::as_u64).unwrap_or(0),
            )
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let recent: Vec<Value> = rows
        .iter()
        .take(RECENT)
        .map(|(k, at)| json!({"key": k, "updatedAt": at, "age": now.saturating_sub(*at)}))
        .collect();
    json!({"path": path.to_string_lossy(), "count": entries.len(), "recent": recent})
}

/// Reads `sessions.json` tolerantly (JSON5; a non-object counts as empty).
pub fn read_store(path: &Path) -> serde_json::Map<String, Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| json5::parse(&t).ok())
        .and_then(|p| p.value.as_object().cloned())
        .unwrap_or_default()
}

fn heartbeat(cfg: &Value, agent_id: &str, is_default: bool) -> Value {
    let list = cfg.pointer("/agents/list").and_then(Value::as_array);
    let own = list.and_then(|l| {
        l.iter().find(|a| {
            a.get("id")
                .and_then(Value::as_str)
                .map(config::normalize_agent_id)
                .as_deref()
                == Some(agent_id)
        })
    });
    let any_explicit = list.is_some_and(|l| l.iter().any(|a| a.get("heartbeat").is_some()));
    let pick = |k: &str| {
        own.and_then(|a| a.pointer(&format!("/heartbeat/{k}")))
            .or_else(|| cfg.pointer(&format!("/agents/defaults/heartbeat/{k}")))
            .cloned()
    };
    let every = pick("every")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "30m".into());
    let every_ms = config::rules::parse_duration_ms(&every).unwrap_or(1_800_000);
    let enabled = every_ms > 0
        && if any_explicit {
            own.is_some_and(|a| a.get("heartbeat").is_some())
        } else {
            is_default
        };
    json!({
        "enabled": enabled, "every": every, "everyMs": every_ms,
        "prompt": pick("prompt").unwrap_or_else(|| json!(DEFAULT_HEARTBEAT_PROMPT)),
        "target": pick("target").unwrap_or_else(|| json!("last")),
        "ackMaxChars": pick("ackMaxChars").unwrap_or_else(|| json!(300)),
    })
}

/// The `HealthSummary` of `health`, `hello-ok.snapshot.health` and `health` events.
pub fn summary(gw: &Gateway) -> Value {
    let started = std::time::Instant::now();
    let cfg = &gw.snapshot.config;
    let default_id = config::default_agent_id(cfg);
    let agents: Vec<Value> = config::agent_ids(cfg)
        .into_iter()
        .map(|id| {
            let is_default = id == default_id;
            json!({"agentId": id, "isDefault": is_default, "heartbeat": heartbeat(cfg, &id, is_default), "sessions": store_summary(&gw.ctx.state.sessions_store(&id))})
        })
        .collect();
    let default_hb = heartbeat(cfg, &default_id, true);
    json!({
        "ok": true,
        "ts": now_ms(),
        "durationMs": started.elapsed().as_millis() as u64,
        "channels": {},
        "channelOrder": [],
        "channelLabels": {},
        "heartbeatSeconds": default_hb["everyMs"].as_u64().unwrap_or(0) / 1000,
        "defaultAgentId": default_id,
        "agents": agents,
        "sessions": store_summary(&gw.ctx.state.sessions_store(&default_id)),
    })
}

/// The `StatusSummary` of `status`.
pub fn status(gw: &Gateway) -> Value {
    let cfg = &gw.snapshot.config;
    let default_id = config::default_agent_id(cfg);
    let ids = config::agent_ids(cfg);
    let by_agent: Vec<Value> = ids
        .iter()
        .map(|id| {
            let s = store_summary(&gw.ctx.state.sessions_store(id));
            json!({"agentId": id, "path": s["path"], "count": s["count"], "recent": s["recent"]})
        })
        .collect();
    let count: u64 = by_agent.iter().filter_map(|a| a["count"].as_u64()).sum();
    let paths: Vec<Value> = by_agent.iter().map(|a| a["path"].clone()).collect();
    let recent = by_agent
        .iter()
        .find(|a| a["agentId"] == default_id.as_str())
        .map(|a| a["recent"].clone())
        .unwrap_or(json!([]));
    let hb: Vec<Value> = ids
        .iter()
        .map(|id| {
            let h = heartbeat(cfg, id, *id == default_id);
            json!({"agentId": id, "enabled": h["enabled"], "every": h["every"], "everyMs": h["everyMs"]})
        })
        .collect();
    let model = cfg
        .pointer("/agents/defaults/model/primary")
        .and_then(Value::as_str)
        .unwrap_or("anthropic/claude-opus-4-5");
    let context = cfg
        .pointer("/agents/defaults/contextTokens")
        .cloned()
        .unwrap_or(json!(200000));
    json!({
        "heartbeat": {"defaultAgentId": default_id, "agents": hb},
        "channelSummary": [],
        "queuedSystemEvents": [],
        "sessions": {"paths": paths, "count": count, "defaults": {"model": model, "contextTokens": context}, "recent": recent, "byAgent": by_agent},
    })
}
