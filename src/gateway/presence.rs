//! Presence: the gateway's own `reason:"self"` entry plus one entry per tracked client, kept
//! after disconnect (`reason:"disconnect"`) until it ages out (5 min, at most 200 entries).
//! Entries are kept serialised (`presence_store`) and parsed only when listed.

use serde_json::{json, Value};
use std::net::SocketAddr;

use super::presence_store::EntryStore;
use super::RunContext;
use crate::util::now_ms;

const TTL_MS: u64 = 300_000;
const MAX_ENTRIES: usize = 200;

pub struct Presence {
    pub version: u64,
    own: Value,
    /// Insertion order, oldest first.
    entries: EntryStore,
}

impl Presence {
    pub fn new(ctx: &RunContext) -> Self {
        let host = ctx.hostname.clone();
        let ip = ctx.primary_ip.clone();
        let version = ctx.version.clone();
        let platform = format!(
            "linux {}",
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        );
        let text = format!("Gateway: {host} ({ip}) · app {version} · mode gateway · reason self");
        let own = json!({
            "host": host, "ip": ip, "version": version, "platform": platform, "deviceFamily": "Linux",
            "modelIdentifier": std::env::consts::ARCH, "mode": "gateway", "reason": "self", "text": text, "ts": now_ms(),
        });
        Presence {
            version: 1,
            own,
            entries: EntryStore::default(),
        }
    }

    /// Adds or refreshes a client's entry; returns its key.
    #[allow(clippy::too_many_arguments)]
    pub fn upsert_client(
        &mut self,
        conn_uuid: &str,
        remote: SocketAddr,
        client_id: &str,
        mode: &str,
        version: &str,
        platform: &str,
        instance_id: Option<&str>,
        role: &str,
        scopes: &[String],
        device_id: Option<&str>,
    ) -> String {
        let key = instance_id.or(device_id).unwrap_or(conn_uuid).to_string();
        let ip = if remote.ip().is_loopback() {
            Value::Null
        } else {
            json!(remote.ip().to_string())
        };
        let mut entry = json!({
            "host": client_id, "version": version, "platform": platform, "mode": mode, "reason": "connect",
            "roles": [role], "scopes": scopes, "ts": now_ms(),
            "text": format!("Node: {client_id} · app {version} · mode {mode} · reason connect"),
        });
        if !ip.is_null() {
            entry["ip"] = ip;
        }
        if let Some(i) = instance_id {
            entry["instanceId"] = json!(i);
        }
        if let Some(d) = device_id {
            entry["deviceId"] = json!(d);
        }
        self.entries.remove(&key);
        self.entries.push(&key, &entry.to_string(), None);
        self.prune();
        key
    }

    pub fn disconnect(&mut self, key: &str) {
        let Some((json, _)) = self.entries.get(key) else {
            return;
        };
        let Ok(mut value) = serde_json::from_str::<Value>(json) else {
            return;
        };
        let now = now_ms();
        value["reason"] = json!("disconnect");
        value["ts"] = json!(now);
        self.entries.remove(key);
        self.entries.push(key, &value.to_string(), Some(now));
    }

    /// `system-event`: records or updates an entry described by the caller.
    pub fn system_event(&mut self, params: &Value) {
        const FIELDS: [&str; 12] = [
            "host",
            "ip",
            "version",
            "platform",
            "deviceFamily",
            "modelIdentifier",
            "mode",
            "lastInputSeconds",
            "reason",
            "tags",
            "deviceId",
            "instanceId",
        ];
        let key = ["instanceId", "deviceId", "host"]
            .iter()
            .find_map(|k| params.get(*k).and_then(Value::as_str))
            .unwrap_or("system")
            .to_string();
        let mut entry = json!({"ts": now_ms()});
        for f in FIELDS {
            if let Some(v) = params.get(f) {
                entry[f] = v.clone();
            }
        }
        if let Some(t) = params.get("text") {
            entry["text"] = t.clone();
        }
        self.entries.remove(&key);
        self.entries.push(&key, &entry.to_string(), None);
        self.prune();
    }

    fn prune(&mut self) {
        let now = now_ms();
        self.entries
            .retain(|at| at.is_none_or(|at| now.saturating_sub(at) < TTL_MS));
        let excess = self.entries.len().saturating_sub(MAX_ENTRIES - 1);
        self.entries.drop_oldest(excess);
    }

    /// Newest first, with the gateway's own entry always present.
    pub fn list(&mut self) -> Vec<Value> {
        self.prune();
        let mut own = self.own.clone();
        own["ts"] = json!(now_ms());
        let others = self
            .entries
            .iter_json_rev()
            .filter_map(|j| serde_json::from_str(j).ok());
        std::iter::once(own).chain(others).collect()
    }
}
