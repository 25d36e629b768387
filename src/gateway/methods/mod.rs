//! RPC methods: the advertised method and event lists, role/scope authorization as upstream's
//! `handleGatewayRequest`, the error shape, and the name → handler table.

mod absent;
mod chat;
mod config;
mod devices;
mod pairing;
mod params;
mod sessions;
mod system;

use serde_json::{json, Value};

use super::core::Gateway;
use super::event::ConnId;

/// Methods advertised in `hello-ok.features.methods`, in upstream's order.
pub const METHODS: &[&str] = &[
    "health",
    "logs.tail",
    "channels.status",
    "channels.logout",
    "status",
    "usage.status",
    "usage.cost",
    "tts.status",
    "tts.providers",
    "tts.enable",
    "tts.disable",
    "tts.convert",
    "tts.setProvider",
    "config.get",
    "config.set",
    "config.apply",
    "config.patch",
    "config.schema",
    "exec.approvals.get",
    "exec.approvals.set",
    "exec.approvals.node.get",
    "exec.approvals.node.set",
    "exec.approval.request",
    "exec.approval.resolve",
    "wizard.start",
    "wizard.next",
    "wizard.cancel",
    "wizard.status",
    "talk.mode",
    "models.list",
    "agents.list",
    "skills.status",
    "skills.bins",
    "skills.install",
    "skills.update",
    "update.run",
    "voicewake.get",
    "voicewake.set",
    "sessions.list",
    "sessions.preview",
    "sessions.patch",
    "sessions.reset",
    "sessions.delete",
    "sessions.compact",
    "last-heartbeat",
    "set-heartbeats",
    "wake",
    "node.pair.request",
    "node.pair.list",
    "node.pair.approve",
    "node.pair.reject",
    "node.pair.verify",
    "device.pair.list",
    "device.pair.approve",
    "device.pair.reject",
    "device.token.rotate",
    "device.token.revoke",
    "node.rename",
    "node.list",
    "node.describe",
    "node.invoke",
    "node.invoke.result",
    "node.event",
    "cron.list",
    "cron.status",
    "cron.add",
    "cron.update",
    "cron.remove",
    "cron.run",
    "cron.runs",
    "system-presence",
    "system-event",
    "send",
    "agent",
    "agent.identity.get",
    "agent.wait",
    "browser.request",
    "chat.history",
    "chat.abort",
    "chat.send",
];

/// Events advertised in `hello-ok.features.events`.
pub const EVENTS: &[&str] = &[
    "connect.challenge",
    "agent",
    "chat",
    "presence",
    "tick",
    "talk.mode",
    "shutdown",
    "health",
    "heartbeat",
    "cron",
    "node.pair.requested",
    "node.pair.resolved",
    "node.invoke.request",
    "device.pair.requested",
    "device.pair.resolved",
    "voicewake.changed",
    "exec.approval.requested",
    "exec.approval.resolved",
];

/// Callable although not advertised.
const UNADVERTISED: &[&str] = &["chat.inject", "sessions.resolve", "poll"];

const NODE_ONLY: &[&str] = &["node.invoke.result", "node.event", "skills.bins"];
const READ: &[&str] = &[
    "health",
    "logs.tail",
    "channels.status",
    "status",
    "usage.status",
    "usage.cost",
    "tts.status",
    "tts.providers",
    "models.list",
    "agents.list",
    "agent.identity.get",
    "skills.status",
    "voicewake.get",
    "sessions.list",
    "sessions.preview",
    "cron.list",
    "cron.status",
    "cron.runs",
    "system-presence",
    "last-heartbeat",
    "node.list",
    "node.describe",
    "chat.history",
];
const WRITE: &[&str] = &[
    "send",
    "agent",
    "agent.wait",
    "wake",
    "talk.mode",
    "tts.enable",
    "tts.disable",
    "tts.convert",
    "tts.setProvider",
    "voicewake.set",
    "node.invoke",
    "chat.send",
    "chat.abort",
    "browser.request",
];

/// An error answer: `{code, message, details?}`.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl RpcError {
    pub fn invalid(message: impl Into<String>) -> Self {
        RpcError {
            code: "INVALID_REQUEST",
            message: message.into(),
            details: None,
        }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        RpcError {
            code: "UNAVAILABLE",
            message: message.into(),
            details: None,
        }
    }
    pub fn not_paired(message: impl Into<String>) -> Self {
        RpcError {
            code: "NOT_PAIRED",
            message: message.into(),
            details: None,
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn to_frame(&self, id: &str) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.details {
            error["details"] = d.clone();
        }
        json!({"type": "res", "id": id, "ok": false, "error": error})
    }
}

pub type RpcResult = Result<Value, RpcError>;

/// Closed-object param checks, for handlers outside this module.
pub fn closed_params(
    method: &str,
    params: &Value,
    allowed: &[&str],
    required: &[&str],
) -> Result<(), RpcError> {
    params::closed(method, params, allowed, required)
}

/// The default agent's `{agentId, name, avatar}` (also injected into the Control UI page).
pub fn identity_of(config: &Value) -> Value {
    system::identity(config, &json!({}))
}

/// Role and scope checks of upstream's `authorizeGatewayMethod`.
fn authorize(role: &str, scopes: &[String], method: &str) -> Result<(), RpcError> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if NODE_ONLY.contains(&method) {
        return if role == "node" {
            Ok(())
        } else {
            Err(RpcError::invalid(format!("unauthorized role: {role}")))
        };
    }
    if role == "node" {
        return Err(RpcError::invalid("unauthorized role: node"));
    }
    if has("operator.admin") {
        return Ok(());
    }
    let needed = if method.starts_with("exec.approval.") {
        "operator.approvals"
    } else if method.starts_with("node.pair.")
        || method.starts_with("device.pair.")
        || method.starts_with("device.token.")
        || method == "node.rename"
        || method.starts_with("pairing.")
    {
        "operator.pairing"
    } else if READ.contains(&method) {
        if has("operator.read") || has("operator.write") {
            return Ok(());
        }
        "operator.read"
    } else if WRITE.contains(&method) {
        "operator.write"
    } else {
        "operator.admin"
    };
    if has(needed) {
        Ok(())
    } else {
        Err(RpcError::invalid(format!("missing scope: {needed}")))
    }
}

/// Runs one request from a handshaken client.
pub fn dispatch(gw: &mut Gateway, conn: ConnId, method: &str, params: Value) -> RpcResult {
    let Some(session) = gw.clients.get(&conn).and_then(|c| c.session.clone()) else {
        return Err(RpcError::invalid("invalid handshake"));
    };
    let own = pairing::METHODS.contains(&method);
    if !METHODS.contains(&method) && !UNADVERTISED.contains(&method) && !own {
        return Err(RpcError::invalid(format!("unknown method: {method}")));
    }
    authorize(&session.role, &session.scopes, method)?;
    let params = if params.is_null() { json!({}) } else { params };
    if let Some(r) = system::handle(gw, conn, method, &params) {
        return r;
    }
    if let Some(r) = config::handle(gw, method, &params) {
        return r;
    }
    if let Some(r) = devices::handle(gw, method, &params) {
        return r;
    }
    if let Some(r) = chat::handle(gw, method, &params) {
        return r;
    }
    if let Some(r) = sessions::handle(gw, method, &params) {
        return r;
    }
    if let Some(r) = pairing::handle(gw, method, &params) {
        return r;
    }
    absent::handle(gw, method, &params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_as_upstream() {
        let read = vec!["operator.read".to_string()];
        assert!(authorize("operator", &read, "health").is_ok());
        assert_eq!(
            authorize("operator", &read, "config.get")
                .unwrap_err()
                .message,
            "missing scope: operator.admin"
        );
        assert_eq!(
            authorize("operator", &read, "chat.send")
                .unwrap_err()
                .message,
            "missing scope: operator.write"
        );
        assert_eq!(
            authorize("node", &[], "health").unwrap_err().message,
            "unauthorized role: node"
        );
        assert!(authorize("node", &[], "node.event").is_ok());
        assert_eq!(METHODS.len(), 80);
        assert_eq!(EVENTS.len(), 18);
    }
}
