//! The `connect` handshake, in upstream's order: params, protocol, role and scopes, the Control
//! UI secure-context rule, device identity, the shared secret (or a device token), pairing, then
//! `hello-ok`. Every failure answers with upstream's text and closes the socket.

use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

use super::auth::{self, ClientKind};
use super::connect_params::validate_params;
use super::core::{Broadcast, Gateway, Session};
use super::device::{self, DeviceClaim, VerifiedDevice};
use super::event::{ConnId, WsOpen};
use super::methods::RpcError;
use crate::server::{host_without_port, writer::MAX_BUFFERED_BYTES, ws::MAX_PAYLOAD};

pub const PROTOCOL_VERSION: u64 = 3;
const ADMIN_SCOPES: [&str; 1] = ["operator.admin"];

/// Upstream `isLocalDirectRequest`: loopback peer, a local `Host`, and no forwarding headers
/// (unless the peer is a trusted proxy).
pub fn is_local_request(open: &WsOpen, config: &Value) -> bool {
    if !open.remote.ip().is_loopback() {
        return false;
    }
    let forwarded = open.forwarded_for.is_some() || open.real_ip.is_some() || open.forwarded_host;
    let trusted = config
        .pointer("/gateway/trustedProxies")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter()
                .any(|p| p.as_str() == Some(&open.remote.ip().to_string()))
        });
    if forwarded && !trusted {
        log::warn!(target: "ws", "Proxy headers detected from untrusted address. Connection will not be treated as local.");
        return false;
    }
    let host = open
        .host
        .as_deref()
        .map(|h| host_without_port(h).to_ascii_lowercase())
        .unwrap_or_default();
    let local_host =
        matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1") || host.ends_with(".ts.net");
    if !local_host {
        log::warn!(target: "ws", "Loopback connection with non-local Host header. Treating it as remote.");
    }
    local_host
}

fn is_control_ui(client_id: &str) -> bool {
    client_id.ends_with("-control-ui")
}

fn client_kind(id: &str, mode: &str) -> ClientKind {
    if mode == "cli" {
        ClientKind::Cli
    } else if is_control_ui(id) || mode == "webchat" {
        ClientKind::ControlUi
    } else {
        ClientKind::Other
    }
}

/// The parts of `ConnectParams` the handshake uses.
struct Connect {
    client_id: String,
    client_mode: String,
    version: String,
    platform: String,
    display_name: Option<String>,
    instance_id: Option<String>,
    role: String,
    requested_scopes: Vec<String>,
    scopes: Vec<String>,
    device: Option<Value>,
    token: Option<String>,
    password: Option<String>,
}

fn parse(params: &Value) -> Connect {
    let s = |p: &str| {
        params
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let role = s("/role").unwrap_or_else(|| "operator".into());
    let requested: Vec<String> = params
        .get("scopes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let scopes = if !requested.is_empty() {
        requested.clone()
    } else if role == "operator" {
        ADMIN_SCOPES.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    Connect {
        client_id: s("/client/id").unwrap_or_default(),
        client_mode: s("/client/mode").unwrap_or_default(),
        version: s("/client/version").unwrap_or_default(),
        platform: s("/client/platform").unwrap_or_default(),
        display_name: s("/client/displayName"),
        instance_id: s("/client/instanceId"),
        role,
        requested_scopes: requested,
        scopes,
        device: params.get("device").cloned(),
        token: s("/auth/token").filter(|t| !t.is_empty()),
        password: s("/auth/password").filter(|t| !t.is_empty()),
    }
}

/// A handshake failure: the response error and the close (code, reason).
struct Refusal {
    error: RpcError,
    close_code: u16,
    log_reason: Option<&'static str>,
}

impl Refusal {
    fn new(error: RpcError) -> Self {
        Refusal {
            error,
            close_code: 1008,
            log_reason: None,
        }
    }
}

impl Gateway {
    pub fn on_connect(&mut self, conn: ConnId, id: &str, params: Value) {
        match self.try_connect(conn, &params) {
            Ok(hello) => {
                self.respond(conn, id, Ok(hello));
                self.refresh_health_after_connect();
            }
            Err(refusal) => {
                let uuid = self
                    .clients
                    .get(&conn)
                    .map(|c| c.conn_uuid.clone())
                    .unwrap_or_default();
                if let Some(reason) = refusal.log_reason {
                    log::warn!(target: "ws", "unauthorized conn={uuid} reason={reason}");
                }
                let text = refusal.error.message.clone();
                self.respond(conn, id, Err(refusal.error));
                if let Some(c) = self.clients.get(&conn) {
                    let reason = if text.is_empty() {
                        "invalid handshake"
                    } else {
                        text.as_str()
                    };
                    c.tx.close(refusal.close_code, crate::util::truncate_utf8(reason, 120));
                }
            }
        }
    }

    fn try_connect(&mut self, conn: ConnId, params: &Value) -> Result<Value, Refusal> {
        if let Err(details) = validate_params(params) {
            return Err(Refusal::new(RpcError::invalid(format!(
                "invalid connect params: {details}"
            ))));
        }
        let (min, max) = (
            params["minProtocol"].as_u64().unwrap_or(0),
            params["maxProtocol"].as_u64().unwrap_or(0),
        );
        if max < PROTOCOL_VERSION || min > PROTOCOL_VERSION {
            let err = RpcError::invalid("protocol mismatch")
                .with_details(json!({"expectedProtocol": PROTOCOL_VERSION}));
            return Err(Refusal {
                error: err,
                close_code: 1002,
                log_reason: None,
            });
        }
        let c = parse(params);
        if c.role != "operator" && c.role != "node" {
            return Err(Refusal::new(RpcError::invalid("invalid role")));
        }
        let device = self.check_device(conn, &c)?;
        self.check_secret(conn, &c, device.as_ref())?;
        if let Some(dev) = &device {
            self.check_pairing(conn, &c, dev)?;
        }
        Ok(self.accept(conn, c, device))
    }

    fn ui_flags(&self) -> (bool, bool) {
        let flag = |k: &str| {
            self.snapshot
                .config
                .pointer(&format!("/gateway/controlUi/{k}"))
                == Some(&Value::Bool(true))
        };
        (
            flag("allowInsecureAuth"),
            flag("dangerouslyDisableDeviceAuth"),
        )
    }

    /// Steps 4–10: whether a device block is required, and verifying it.
    fn check_device(&self, conn: ConnId, c: &Connect) -> Result<Option<VerifiedDevice>, Refusal> {
        let client = self
            .clients
            .get(&conn)
            .ok_or_else(|| Refusal::new(RpcError::invalid("invalid handshake")))?;
        let (insecure_ok, device_off) = self.ui_flags();
        let ui = is_control_ui(&c.client_id);
        let device = if ui && device_off {
            None
        } else {
            c.device.as_ref()
        };
        let Some(device) = device else {
            if ui && !(insecure_ok || device_off) {
                return Err(Refusal::new(RpcError::invalid(
                    "control ui requires HTTPS or localhost (secure context)",
                )));
            }
            let secret_ok = c.token.is_some() || (ui && c.password.is_some());
            if !secret_ok {
                return Err(Refusal::new(RpcError::not_paired(
                    "device identity required",
                )));
            }
            return Ok(None);
        };
        let claim = DeviceClaim {
            device,
            client_id: &c.client_id,
            client_mode: &c.client_mode,
            role: &c.role,
            requested_scopes: &c.requested_scopes,
            token: c.token.as_deref().unwrap_or(""),
            expected_nonce: &client.nonce,
            is_local: client.is_local,
        };
        device::verify(&claim)
            .map(Some)
            .map_err(|msg| Refusal::new(RpcError::invalid(msg)))
    }

    /// Step 11: the shared secret, or the token as this device's device token.
    fn check_secret(
        &mut self,
        conn: ConnId,
        c: &Connect,
        device: Option<&VerifiedDevice>,
    ) -> Result<(), Refusal> {
        let ip = self.clients.get(&conn).map(|cl| cl.remote.ip());
        if ip.is_some_and(|ip| self.auth_limiter.is_locked(ip)) {
            let error = RpcError::invalid(super::ratelimit::LOCKED_OUT);
            return Err(Refusal {
                error,
                close_code: 1008,
                log_reason: Some("rate_limited"),
            });
        }
        let failure =
            match auth::authorize(&self.ctx.auth, c.token.as_deref(), c.password.as_deref()) {
                Ok(()) => return Ok(()),
                Err(f) => f,
            };
        if let (Some(dev), Some(token)) = (device, c.token.as_deref()) {
            if self.devices.check_token(&dev.id, &c.role, token, &c.scopes) {
                return Ok(());
            }
        }
        if let Some(ip) = ip {
            self.auth_limiter.record_failure(ip);
        }
        let msg = auth::failure_message(failure, client_kind(&c.client_id, &c.client_mode));
        Err(Refusal {
            error: RpcError::invalid(msg),
            close_code: 1008,
            log_reason: Some(failure.reason()),
        })
    }

    /// Step 12: pairing; local clients are approved silently.
    fn check_pairing(
        &mut self,
        conn: ConnId,
        c: &Connect,
        dev: &VerifiedDevice,
    ) -> Result<(), Refusal> {
        let (insecure_ok, device_off) = self.ui_flags();
        if is_control_ui(&c.client_id) && (insecure_ok || device_off) {
            return Ok(());
        }
        if self.devices.is_paired_for(dev, &c.role, &c.scopes) {
            return Ok(());
        }
        let (is_local, remote) = self
            .clients
            .get(&conn)
            .map(|cl| (cl.is_local, cl.remote))
            .unwrap_or((false, "0.0.0.0:0".parse().expect("literal addr")));
        let mut meta = Map::new();
        meta.insert("clientId".into(), json!(c.client_id));
        meta.insert("clientMode".into(), json!(c.client_mode));
        meta.insert("platform".into(), json!(c.platform));
        if let Some(n) = &c.display_name {
            meta.insert("displayName".into(), json!(n));
        }
        if !is_local {
            meta.insert("remoteIp".into(), json!(remote.ip().to_string()));
        }
        meta.insert("silent".into(), json!(is_local));
        let req = self.devices.request(dev, &meta, &c.role, &c.scopes);
        let request_id = req["requestId"].as_str().unwrap_or("").to_string();
        if is_local {
            self.devices.approve(&request_id);
            log::info!(target: "gateway", "device pairing auto-approved device={}", dev.id);
            let resolved = json!({"requestId": request_id, "deviceId": dev.id, "decision": "approved", "ts": crate::util::now_ms()});
            self.broadcast(
                "device.pair.resolved",
                resolved,
                Broadcast {
                    scope: Some("operator.pairing"),
                    ..Default::default()
                },
            );
            return Ok(());
        }
        self.broadcast(
            "device.pair.requested",
            req,
            Broadcast {
                scope: Some("operator.pairing"),
                ..Default::default()
            },
        );
        let err =
            RpcError::not_paired("pairing required").with_details(json!({"requestId": request_id}));
        Err(Refusal::new(err))
    }

    /// Steps 13–15: the device token, presence, `hello-ok`.
    fn accept(&mut self, conn: ConnId, c: Connect, device: Option<VerifiedDevice>) -> Value {
        let auth_block = device
            .as_ref()
            .and_then(|d| self.devices.ensure_token(&d.id, &c.role, &c.scopes));
        let Some(client) = self.clients.get(&conn) else {
            return Value::Null;
        };
        let remote = client.remote;
        let conn_uuid = client.conn_uuid.clone();
        let presence_key = (c.client_mode != "cli").then(|| {
            self.presence.upsert_client(
                &conn_uuid,
                remote,
                &c.client_id,
                &c.client_mode,
                &c.version,
                &c.platform,
                c.instance_id.as_deref(),
                &c.role,
                &c.scopes,
                device.as_ref().map(|d| d.id.as_str()),
            )
        });
        log::info!(target: "ws", "webchat connected conn={conn_uuid} remote={} client={} {} v{}", remote.ip(), c.display_name.as_deref().unwrap_or(&c.client_id), c.client_mode, c.version);
        let session = Session {
            role: c.role,
            scopes: c.scopes,
            client_id: c.client_id,
            client_mode: c.client_mode,
            version: c.version,
            platform: c.platform,
            display_name: c.display_name,
            instance_id: c.instance_id,
            device_id: device.map(|d| d.id),
            presence_key,
        };
        let mut hello = self.hello_ok(&conn_uuid);
        if let Some(a) = auth_block {
            hello["auth"] = a;
        }
        if let Some(client) = self.clients.get_mut(&conn) {
            client.session = Some(session);
            client.shared.authenticated.store(true, Ordering::Release);
        }
        hello
    }

    fn hello_ok(&mut self, conn_uuid: &str) -> Value {
        let health = self
            .health_cache
            .as_ref()
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| json!({}));
        let default_agent = crate::config::default_agent_id(&self.snapshot.config);
        json!({
            "type": "hello-ok",
            "protocol": PROTOCOL_VERSION,
            "server": self.ctx.server_info(conn_uuid),
            "features": {"methods": super::methods::METHODS, "events": super::methods::EVENTS},
            "snapshot": {
                "presence": self.presence.list(),
                "health": health,
                "stateVersion": {"presence": self.presence.version, "health": self.health_version},
                "uptimeMs": self.started.elapsed().as_millis() as u64,
                "configPath": self.ctx.config_path.to_string_lossy(),
                "stateDir": self.ctx.state.root.to_string_lossy(),
                "sessionDefaults": {
                    "defaultAgentId": default_agent,
                    "mainKey": "main",
                    "mainSessionKey": format!("agent:{default_agent}:main"),
                    "scope": self.snapshot.config.pointer("/session/scope").and_then(Value::as_str).unwrap_or("per-sender"),
                },
            },
            "policy": {"maxPayload": MAX_PAYLOAD, "maxBufferedBytes": MAX_BUFFERED_BYTES, "tickIntervalMs": super::core::TICK_INTERVAL.as_millis() as u64},
        })
    }
}
