//! `moltbot gateway`: boot (config, gating, auth, lock, listener), the loop, in-process restarts
//! and shutdown. The order of start-up checks and their texts follow upstream's `gateway run`.

pub mod agent_rpc;
pub mod auth;
mod boot;
pub mod chat;
mod chat_events;
mod chat_steer;
pub mod connect;
mod connect_params;
pub mod core;
mod dedupe;
pub mod device;
pub mod event;
mod frames;
pub mod health;
pub mod methods;
pub mod openai;
pub mod presence;
mod presence_store;
mod ratelimit;
mod reload;
pub mod signals;

use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Snapshot;
use crate::server::http::{HttpContext, HttpSettings};
use crate::server::{ListenerSettings, ListenerShared};
use crate::state::StateDir;

pub use boot::run;

/// What one run of the loop knows about its environment; rebuilt on every in-process restart.
pub struct RunContext {
    pub state: StateDir,
    pub config_path: PathBuf,
    pub auth: auth::ResolvedAuth,
    pub bind_mode: String,
    pub bind_host: IpAddr,
    pub port: u16,
    pub version: String,
    pub hostname: String,
    pub primary_ip: String,
    pub listener: Option<Arc<ListenerShared>>,
    pub http: Arc<HttpContext>,
    /// The loop's own inbox, for threads it starts (agent workers).
    pub events: crossbeam_channel::Sender<event::Event>,
}

impl RunContext {
    /// `hello-ok.server`.
    pub fn server_info(&self, conn_uuid: &str) -> Value {
        let mut info = json!({"version": self.version, "host": self.hostname, "connId": conn_uuid});
        if let Some(commit) = crate::state::paths::env_nonempty("GIT_COMMIT") {
            info["commit"] = json!(commit);
        }
        info
    }

    /// Pushes the settings listener threads read (origins, UI base path, identity).
    pub fn apply_hot_settings(&self, snap: &Snapshot) {
        if let Some(l) = &self.listener {
            *l.settings.write() = Arc::new(listener_settings(&snap.config));
        }
        *self.http.settings.write() = Arc::new(http_settings(&snap.config, &self.auth));
    }
}

/// The version reported to clients: `CLAWDBOT_VERSION`, else this build's.
pub fn version() -> String {
    crate::state::paths::env_nonempty("CLAWDBOT_VERSION")
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
}

pub fn listener_settings(config: &Value) -> ListenerSettings {
    let origins = config
        .pointer("/gateway/controlUi/allowedOrigins")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(crate::server::normalise_origin)
                .collect()
        })
        .unwrap_or_default();
    ListenerSettings {
        allowed_origins: origins,
    }
}

/// `gateway.controlUi.basePath` normalised: leading `/`, no trailing `/`, `/` or empty = root.
pub fn normalise_base_path(raw: &str) -> String {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

pub fn http_settings(config: &Value, auth: &auth::ResolvedAuth) -> HttpSettings {
    let ui = config.pointer("/gateway/controlUi");
    let identity = methods_identity(config);
    let base_path = normalise_base_path(
        ui.and_then(|u| u.get("basePath"))
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    HttpSettings {
        control_ui_enabled: ui
            .and_then(|u| u.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
        base_path,
        assistant_name: identity.0,
        assistant_avatar: identity.1,
        chat_completions: config.pointer("/gateway/http/endpoints/chatCompletions/enabled")
            == Some(&Value::Bool(true)),
        auth: auth.clone(),
        config: std::sync::Arc::new(config.clone()),
    }
}

fn methods_identity(config: &Value) -> (String, String) {
    let id = methods::identity_of(config);
    (
        id["name"].as_str().unwrap_or("Assistant").to_string(),
        id["avatar"].as_str().unwrap_or("A").to_string(),
    )
}
