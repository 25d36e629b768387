//! `chat.*` methods: parameter checks with upstream's texts, then the gateway's chat runs
//! (`gateway::chat`) and the transcript for `chat.history`.

use serde_json::{json, Value};

use super::params::{closed, str_param};
use super::{RpcError, RpcResult};
use crate::gateway::core::Gateway;

const SEND_KEYS: [&str; 7] = [
    "sessionKey",
    "message",
    "thinking",
    "deliver",
    "attachments",
    "timeoutMs",
    "idempotencyKey",
];

pub fn handle(gw: &mut Gateway, method: &str, params: &Value) -> Option<RpcResult> {
    let r = match method {
        "chat.send" => closed(
            method,
            params,
            &SEND_KEYS,
            &["sessionKey", "message", "idempotencyKey"],
        )
        .and_then(|_| gw.chat_send(params)),
        "chat.abort" => closed(method, params, &["sessionKey", "runId"], &["sessionKey"])
            .and_then(|_| gw.chat_abort(params)),
        "chat.history" => closed(method, params, &["sessionKey", "limit"], &["sessionKey"])
            .and_then(|_| history(gw, params)),
        _ => return None,
    };
    Some(r)
}

/// `chat.history {sessionKey, limit?}`: the transcript's last messages, envelopes stripped; the key
/// is echoed as sent.
fn history(gw: &Gateway, params: &Value) -> RpcResult {
    let key_sent = str_param(params, "sessionKey").unwrap_or("");
    let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(RpcError::invalid(
            "invalid chat.history params: at /limit: must be <= 1000",
        ));
    }
    let key = crate::routing::canonical_session_key(&gw.snapshot.config, key_sent);
    let agent = key
        .strip_prefix("agent:")
        .and_then(|r| r.split(':').next())
        .unwrap_or("main")
        .to_string();
    let store = crate::agent::sessions::SessionStore::new(gw.ctx.state.sessions_store(&agent));
    let entry = store.get(&key);
    let thinking = entry
        .as_ref()
        .and_then(|e| e.get("thinkingLevel"))
        .and_then(Value::as_str)
        .or_else(|| {
            gw.snapshot
                .config
                .pointer("/agents/defaults/thinkingDefault")
                .and_then(Value::as_str)
        })
        .unwrap_or("off")
        .to_string();
    let Some(entry) = entry else {
        return Ok(json!({"sessionKey": key_sent, "messages": [], "thinkingLevel": thinking}));
    };
    let messages = store
        .transcript_path_for(&entry)
        .map(|p| crate::agent::transcript::chat_history(&p, limit as usize))
        .unwrap_or_default();
    Ok(
        json!({"sessionKey": key_sent, "sessionId": entry.get("sessionId"), "messages": messages, "thinkingLevel": thinking}),
    )
}
