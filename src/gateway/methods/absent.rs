//! Methods whose subsystem is not in this build yet (agents, chat, cron, skills, nodes, exec
//! approvals, TTS, wizard, update). Reads answer with the state upstream shows when nothing is
//! configured, so every Control UI tab renders; actions get a clear `UNAVAILABLE` error.

use serde_json::{json, Value};

use super::params::str_param;
use super::{RpcError, RpcResult};
use crate::gateway::core::Gateway;
use crate::state::paths::home_dir;
use crate::util::now_ms;

pub fn handle(gw: &mut Gateway, method: &str, params: &Value) -> RpcResult {
    let now = now_ms();
    match method {
        "channels.status" => Ok(json!({
            "ts": now, "channelOrder": [], "channelLabels": {}, "channelDetailLabels": {}, "channelSystemImages": {},
            "channelMeta": [], "channels": {}, "channelAccounts": {}, "channelDefaultAccountId": {},
        })),
        "usage.status" => Ok(json!({"updatedAt": now, "providers": []})),
        "usage.cost" => {
            let days = params
                .get("days")
                .and_then(Value::as_f64)
                .map_or(30, |d| d.floor().max(1.0) as u64);
            if let Some((d, at, cached)) = &gw.usage_cost {
                if *d == days && at.elapsed() < std::time::Duration::from_secs(30) {
                    return Ok(cached.clone());
                }
            }
            let agent = crate::config::default_agent_id(&gw.snapshot.config);
            let dir = gw.ctx.state.sessions_dir(&agent);
            let summary = crate::agent::usage_cost::summary(&dir, &gw.snapshot.config, days, now);
            gw.usage_cost = Some((days, std::time::Instant::now(), summary.clone()));
            Ok(summary)
        }
        "models.list" => {
            let registry = crate::agent::models::registry::Registry::for_snapshot(&gw.snapshot);
            Ok(crate::agent::models::registry::models_list_payload(
                &registry.catalog(),
            ))
        }
        "tts.status" => {
            Ok(json!({"enabled": false, "auto": "off", "provider": "edge", "providers": []}))
        }
        "tts.providers" => Ok(json!({"providers": [], "active": Value::Null})),
        "cron.status" => Ok(
            json!({"enabled": false, "storePath": gw.ctx.state.cron_store().to_string_lossy(), "jobs": 0, "nextWakeAtMs": Value::Null}),
        ),
        "cron.list" => Ok(json!({"jobs": []})),
        "cron.runs" => Ok(json!({"entries": []})),
        "skills.status" => Ok(
            json!({"workspaceDir": workspace_dir(gw), "managedSkillsDir": gw.ctx.state.root.join("skills").to_string_lossy(), "skills": []}),
        ),
        "skills.bins" => Ok(json!({"bins": []})),
        "node.list" => Ok(json!({"ts": now, "nodes": []})),
        "node.pair.list" => Ok(json!({"pending": [], "paired": []})),
        "node.describe" => Err(RpcError::invalid(format!(
            "unknown nodeId: {}",
            str_param(params, "nodeId").unwrap_or("")
        ))),
        "node.pair.approve" | "node.pair.reject" | "node.pair.verify" => {
            Err(RpcError::invalid("unknown requestId"))
        }
        "node.invoke.result" | "node.event" => Ok(json!({"ok": true})),
        "exec.approvals.get" => Ok(exec_approvals()),
        "exec.approval.resolve" => Err(RpcError::invalid("unknown approval id")),
        _ => Err(RpcError::unavailable(unavailable_text(method))),
    }
}

fn unavailable_text(method: &str) -> String {
    let area = match method.split('.').next().unwrap_or(method) {
        "chat" | "agent" | "send" | "wake" | "poll" | "sessions" => "the agent runtime",
        "cron" => "cron",
        "skills" => "skills",
        "node" => "node apps",
        "exec" => "exec approvals",
        "tts" | "talk" => "text-to-speech",
        "wizard" => "the onboarding wizard",
        "update" => "self-update (redeploy the image instead)",
        "channels" | "web" => "channels",
        "browser" => "browser control",
        _ => "this subsystem",
    };
    format!("{method} is unavailable: {area} is not part of this gateway build yet")
}

fn workspace_dir(gw: &Gateway) -> String {
    gw.snapshot
        .config
        .pointer("/agents/defaults/workspace")
        .and_then(Value::as_str)
        .map(|w| {
            crate::state::paths::expand_user(w)
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| home_dir().join("clawd").to_string_lossy().into_owned())
}

fn exec_approvals() -> Value {
    let path = home_dir().join(".clawdbot").join("exec-approvals.json");
    let raw = std::fs::read_to_string(&path).ok();
    let file = raw
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .unwrap_or_else(|| json!({"version": 1, "socket": {}, "defaults": {}, "agents": {}}));
    json!({"path": path.to_string_lossy(), "exists": raw.is_some(), "hash": crate::util::sha256_hex(raw.unwrap_or_default().as_bytes()), "file": file})
}
