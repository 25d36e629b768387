//! `pairing.list` / `pairing.approve` / `pairing.reject`: the Discord/Telegram DM pairing
//! stores (`crate::pairing`) for the Control UI. Upstream has no gateway methods for them (only
//! `moltbot pairing list|approve`), so these names are this gateway's own; they need
//! `operator.pairing` like the device pairing methods.

use serde_json::{json, Value};

use super::params::{closed, str_param};
use super::{RpcError, RpcResult};
use crate::gateway::core::Gateway;
use crate::pairing::{Store, CHANNELS};

pub const METHODS: &[&str] = &["pairing.list", "pairing.approve", "pairing.reject"];

pub fn handle(gw: &mut Gateway, method: &str, params: &Value) -> Option<RpcResult> {
    let r = match method {
        "pairing.list" => closed(method, params, &["channel"], &[]).and_then(|_| list(gw, params)),
        "pairing.approve" | "pairing.reject" => {
            closed(method, params, &["channel", "code"], &["channel", "code"])
                .and_then(|_| resolve(gw, params, method == "pairing.approve"))
        }
        _ => return None,
    };
    Some(r)
}

fn store(gw: &Gateway, channel: &str) -> Result<Store, RpcError> {
    Store::new(&gw.ctx.state.credentials(), channel)
        .ok_or_else(|| RpcError::invalid(format!("Invalid channel: {channel}")))
}

/// The pairing channels plus any other channel that has a pairing file on disk.
fn known_channels(gw: &Gateway) -> Vec<String> {
    let mut out: Vec<String> = CHANNELS.iter().map(|c| c.to_string()).collect();
    if let Ok(entries) = std::fs::read_dir(gw.ctx.state.credentials()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(ch) = name.strip_suffix("-pairing.json") {
                if !out.iter().any(|c| c == ch) {
                    out.push(ch.to_string());
                }
            }
        }
    }
    out
}

fn list(gw: &Gateway, params: &Value) -> RpcResult {
    let channels = match str_param(params, "channel") {
        Some(c) => vec![c.to_string()],
        None => known_channels(gw),
    };
    let now = crate::util::now_ms();
    let mut out = Vec::new();
    for ch in channels {
        let store = store(gw, &ch)?;
        let requests = store
            .list(now)
            .map_err(|e| RpcError::unavailable(format!("pairing store: {e}")))?;
        out.push(json!({"channel": store.channel(), "requests": requests, "allowFrom": store.allow_from()}));
    }
    Ok(json!({ "channels": out }))
}

fn resolve(gw: &Gateway, params: &Value, approve: bool) -> RpcResult {
    let (channel, code) = (
        str_param(params, "channel").unwrap_or(""),
        str_param(params, "code").unwrap_or(""),
    );
    let store = store(gw, channel)?;
    let now = crate::util::now_ms();
    let result = if approve {
        store.approve(code, now)
    } else {
        store.reject(code, now)
    };
    let entry = result
        .map_err(|e| RpcError::unavailable(format!("pairing store: {e}")))?
        .ok_or_else(|| {
            RpcError::invalid(format!("No pending pairing request found for code: {code}"))
        })?;
    let id = entry["id"].as_str().unwrap_or("").to_string();
    let decision = if approve { "approved" } else { "rejected" };
    log::info!(target: "gateway", "pairing {decision} {} sender {id}", store.channel());
    Ok(
        json!({"ok": true, "channel": store.channel(), "id": id, "decision": decision, "entry": entry}),
    )
}
