//! Device identity and pairing: verifying a client's Ed25519 `device` block, the
//! `devices/{pending,paired}.json` stores (upstream-compatible shapes, atomic 0600 writes), and the
//! per-device, per-role device tokens returned in `hello-ok.auth`.

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

use crate::state::atomic::write_private;
use crate::util::{self, base64_decode, constant_time_eq, now_ms, sha256_hex};

/// `abs(now - signedAt)` may not exceed this (upstream: 10 minutes).
const SIGNATURE_SKEW_MS: u64 = 600_000;
/// Pending pairing requests expire after 5 minutes.
const PENDING_TTL_MS: u64 = 300_000;
/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows it.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// What the connect handshake tells us about the device's claim.
pub struct DeviceClaim<'a> {
    pub device: &'a Value,
    pub client_id: &'a str,
    pub client_mode: &'a str,
    pub role: &'a str,
    /// Scopes as the client requested them (before defaulting).
    pub requested_scopes: &'a [String],
    pub token: &'a str,
    pub expected_nonce: &'a str,
    pub is_local: bool,
}

/// A verified device: its id and raw public key (base64url).
#[derive(Debug, Clone)]
pub struct VerifiedDevice {
    pub id: String,
    pub public_key: String,
}

/// Checks steps 6–10 of upstream's connect algorithm; errors are the exact messages.
pub fn verify(claim: &DeviceClaim) -> Result<VerifiedDevice, &'static str> {
    let d = claim.device;
    let field = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    let raw_key = decode_public_key(field("publicKey")).ok_or("device public key invalid")?;
    let id = sha256_hex(&raw_key);
    if field("id") != id {
        return Err("device identity mismatch");
    }
    let signed_at = d
        .get("signedAt")
        .and_then(Value::as_u64)
        .ok_or("device signature invalid")?;
    if now_ms().abs_diff(signed_at) > SIGNATURE_SKEW_MS {
        return Err("device signature expired");
    }
    let nonce = d
        .get("nonce")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    match nonce {
        None if !claim.is_local => return Err("device nonce required"),
        Some(n) if n != claim.expected_nonce => return Err("device nonce mismatch"),
        _ => {}
    }
    let payload = signature_payload(claim, &id, signed_at, nonce);
    let signature = base64_decode(field("signature")).ok_or("device signature invalid")?;
    if !verify_ed25519(&raw_key, payload.as_bytes(), &signature) {
        return Err("device signature invalid");
    }
    Ok(VerifiedDevice {
        id,
        public_key: util::base64url_encode(&raw_key),
    })
}

/// `v2|id|client|mode|role|scopes|signedAt|token|nonce`, or the v1 form without a nonce.
pub fn signature_payload(
    claim: &DeviceClaim,
    id: &str,
    signed_at: u64,
    nonce: Option<&str>,
) -> String {
    let scopes = claim.requested_scopes.join(",");
    let base = format!(
        "{id}|{}|{}|{}|{scopes}|{signed_at}|{}",
        claim.client_id, claim.client_mode, claim.role, claim.token
    );
    match nonce {
        Some(n) => format!("v2|{base}|{n}"),
        None => format!("v1|{base}"),
    }
}

fn decode_public_key(s: &str) -> Option<[u8; 32]> {
    let bytes = if s.contains("BEGIN PUBLIC KEY") {
        let body: String = s.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64_decode(body.trim())?;
        der.strip_prefix(&SPKI_PREFIX[..])?.to_vec()
    } else {
        base64_decode(s.trim())?
    };
    bytes.try_into().ok()
}

fn verify_ed25519(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    vk.verify_strict(msg, &sig).is_ok()
}

/// The pairing stores, owned by the gateway loop.
pub struct DeviceStore {
    dir: PathBuf,
    paired: Map<String, Value>,
    pending: Map<String, Value>,
}

impl DeviceStore {
    /// Loads `devices/paired.json` and `devices/pending.json`; unreadable files count as empty.
    pub fn load(dir: &Path) -> Self {
        let read = |name: &str| -> Map<String, Value> {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default()
        };
        DeviceStore {
            dir: dir.to_path_buf(),
            paired: read("paired.json"),
            pending: read("pending.json"),
        }
    }

    fn save(&self) {
        for (name, map) in [
            ("paired.json", &self.paired),
            ("pending.json", &self.pending),
        ] {
            let text = serde_json::to_string_pretty(map).unwrap_or_else(|_| "{}".into());
            if let Err(e) = write_private(&self.dir.join(name), text.as_bytes()) {
                log::warn!(target: "gateway", "failed to write devices/{name}: {e}");
            }
        }
    }

    /// Paired with this key, the role allowed, and every requested scope granted.
    pub fn is_paired_for(&self, dev: &VerifiedDevice, role: &str, scopes: &[String]) -> bool {
        let Some(entry) = self.paired.get(&dev.id) else {
            return false;
        };
        let key_ok =
            entry.get("publicKey").and_then(Value::as_str) == Some(dev.public_key.as_str());
        let has = |k: &str, v: &str| {
            entry
                .get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == v))
        };
        let role_ok = has("roles", role) || entry.get("role").and_then(Value::as_str) == Some(role);
        key_ok && role_ok && scopes.iter().all(|s| has("scopes", s))
    }

    /// Records (or refreshes) a pending request for this device; returns it.
    pub fn request(
        &mut self,
        dev: &VerifiedDevice,
        meta: &Map<String, Value>,
        role: &str,
        scopes: &[String],
    ) -> Value {
        self.expire_pending();
        let existing = self
            .pending
            .iter()
            .find(|(_, r)| r.get("deviceId").and_then(Value::as_str) == Some(&dev.id));
        let request_id = existing
            .map(|(k, _)| k.clone())
            .unwrap_or_else(util::uuid_v4);
        let mut req = meta.clone();
        req.insert("requestId".into(), json!(request_id));
        req.insert("deviceId".into(), json!(dev.id));
        req.insert("publicKey".into(), json!(dev.public_key));
        req.insert("role".into(), json!(role));
        req.insert("roles".into(), json!([role]));
        req.insert("scopes".into(), json!(scopes));
        req.insert("isRepair".into(), json!(self.paired.contains_key(&dev.id)));
        req.insert("ts".into(), json!(now_ms()));
        let req = Value::Object(req);
        self.pending.insert(request_id, req.clone());
        self.save();
        req
    }

    fn expire_pending(&mut self) {
        let now = now_ms();
        self.pending.retain(|_, r| {
            r.get("ts")
                .and_then(Value::as_u64)
                .is_some_and(|ts| now.saturating_sub(ts) < PENDING_TTL_MS)
        });
    }

    /// Approves a pending request: merges roles/scopes into the paired device.
    pub fn approve(&mut self, request_id: &str) -> Option<Value> {
        self.expire_pending();
        let req = self.pending.remove(request_id)?;
        let device_id = req.get("deviceId").and_then(Value::as_str)?.to_string();
        let now = now_ms();
        let mut dev = self
            .paired
            .get(&device_id)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for k in [
            "publicKey",
            "displayName",
            "platform",
            "clientId",
            "clientMode",
            "role",
            "remoteIp",
        ] {
            if let Some(v) = req.get(k) {
                dev.insert(k.into(), v.clone());
            }
        }
        dev.insert("deviceId".into(), json!(device_id));
        for k in ["roles", "scopes"] {
            dev.insert(k.into(), merge_lists(dev.get(k), req.get(k)));
        }
        dev.entry("createdAtMs").or_insert(json!(now));
        dev.insert("approvedAtMs".into(), json!(now));
        self.paired.insert(device_id.clone(), Value::Object(dev));
        if let Some(role) = req.get("role").and_then(Value::as_str) {
            let scopes = string_list(req.get("scopes"));
            self.issue_token(&device_id, role, &scopes, true);
        }
        self.save();
        self.paired.get(&device_id).cloned()
    }

    /// Removes a pending request; returns its device id.
    pub fn reject(&mut self, request_id: &str) -> Option<String> {
        let req = self.pending.remove(request_id)?;
        self.save();
        req.get("deviceId")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Makes sure the device holds a live token for `role` covering `scopes`; returns the
    /// `hello-ok.auth` object.
    pub fn ensure_token(
        &mut self,
        device_id: &str,
        role: &str,
        scopes: &[String],
    ) -> Option<Value> {
        let rec = self.token_record(device_id, role).cloned();
        let usable = rec
            .as_ref()
            .is_some_and(|t| t.get("revokedAtMs").is_none() && covers(t, scopes));
        if !usable {
            self.issue_token(device_id, role, scopes, false);
            self.save();
        }
        let t = self.token_record(device_id, role)?;
        let issued = t
            .get("rotatedAtMs")
            .or_else(|| t.get("createdAtMs"))
            .cloned()
            .unwrap_or(json!(now_ms()));
        Some(
            json!({"deviceToken": t.get("token"), "role": role, "scopes": t.get("scopes"), "issuedAtMs": issued}),
        )
    }

    fn token_record(&self, device_id: &str, role: &str) -> Option<&Value> {
        self.paired.get(device_id)?.get("tokens")?.get(role)
    }

    fn issue_token(
        &mut self,
        device_id: &str,
        role: &str,
        scopes: &[String],
        rotate: bool,
    ) -> Option<Value> {
        let dev = self.paired.get_mut(device_id)?.as_object_mut()?;
        let tokens = dev.entry("tokens").or_insert_with(|| json!({}));
        let old = tokens.get(role).cloned();
        let now = now_ms();
        let mut merged = string_list(old.as_ref().and_then(|t| t.get("scopes")));
        merged.extend(scopes.iter().cloned());
        merged.sort();
        merged.dedup();
        let mut rec = json!({"token": util::random_hex(16), "role": role, "scopes": merged, "createdAtMs": now});
        if let (true, Some(created)) = (rotate, old.as_ref().and_then(|t| t.get("createdAtMs"))) {
            rec["createdAtMs"] = created.clone();
            rec["rotatedAtMs"] = json!(now);
        }
        tokens[role] = rec.clone();
        Some(rec)
    }

    /// Device-token auth: paired, token for the role, not revoked, equal, scopes covered.
    pub fn check_token(&self, device_id: &str, role: &str, token: &str, scopes: &[String]) -> bool {
        let Some(t) = self.token_record(device_id, role) else {
            return false;
        };
        let expected = t.get("token").and_then(Value::as_str).unwrap_or("");
        t.get("revokedAtMs").is_none()
            && !expected.is_empty()
            && constant_time_eq(expected.as_bytes(), token.as_bytes())
            && covers(t, scopes)
    }

    /// Rotates a device's token for a role; `None` for an unknown device/role.
    pub fn rotate(
        &mut self,
        device_id: &str,
        role: &str,
        scopes: Option<&[String]>,
    ) -> Option<Value> {
        let current = string_list(self.token_record(device_id, role)?.get("scopes"));
        let rec = self.issue_token(device_id, role, scopes.unwrap_or(&current), true)?;
        self.save();
        Some(
            json!({"deviceId": device_id, "role": role, "token": rec["token"], "scopes": rec["scopes"], "rotatedAtMs": rec.get("rotatedAtMs").cloned().unwrap_or(json!(now_ms()))}),
        )
    }

    /// Revokes a device's token for a role.
    pub fn revoke(&mut self, device_id: &str, role: &str) -> Option<Value> {
        let now = now_ms();
        let dev = self.paired.get_mut(device_id)?;
        let t = dev.get_mut("tokens")?.get_mut(role)?;
        t["revokedAtMs"] = json!(now);
        self.save();
        Some(json!({"deviceId": device_id, "role": role, "revokedAtMs": now}))
    }

    /// `device.pair.list`: pending requests and paired devices with token values removed.
    pub fn list(&mut self) -> Value {
        self.expire_pending();
        let pending: Vec<Value> = self.pending.values().cloned().collect();
        let paired: Vec<Value> = self.paired.values().map(redact_tokens).collect();
        json!({"pending": pending, "paired": paired})
    }
}

fn redact_tokens(dev: &Value) -> Value {
    let mut d = dev.clone();
    if let Some(tokens) = dev.get("tokens").and_then(Value::as_object) {
        let summary: Vec<Value> = tokens
            .values()
            .map(|t| {
                let mut t = t.clone();
                if let Some(o) = t.as_object_mut() {
                    o.remove("token");
                }
                t
            })
            .collect();
        d["tokens"] = Value::Array(summary);
    }
    d
}

fn covers(token: &Value, scopes: &[String]) -> bool {
    let have = string_list(token.get("scopes"));
    scopes.iter().all(|s| have.contains(s))
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn merge_lists(a: Option<&Value>, b: Option<&Value>) -> Value {
    let mut out = string_list(a);
    for s in string_list(b) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    json!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn claim_for<'a>(
        device: &'a Value,
        scopes: &'a [String],
        nonce: &'a str,
        local: bool,
    ) -> DeviceClaim<'a> {
        DeviceClaim {
            device,
            client_id: "cli",
            client_mode: "cli",
            role: "operator",
            requested_scopes: scopes,
            token: "t",
            expected_nonce: nonce,
            is_local: local,
        }
    }

    fn signed_device(key: &SigningKey, scopes: &[String], nonce: Option<&str>) -> Value {
        let raw = key.verifying_key().to_bytes();
        let id = sha256_hex(&raw);
        let signed_at = now_ms();
        let device0 = json!({});
        let claim = claim_for(&device0, scopes, "", true);
        let payload = signature_payload(&claim, &id, signed_at, nonce);
        let sig = key.sign(payload.as_bytes());
        let mut d = json!({"id": id, "publicKey": util::base64url_encode(&raw), "signature": util::base64url_encode(&sig.to_bytes()), "signedAt": signed_at});
        if let Some(n) = nonce {
            d["nonce"] = json!(n);
        }
        d
    }

    #[test]
    fn verifies_v2_and_rejects_tampering() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let scopes = vec!["operator.admin".to_string()];
        let dev = signed_device(&key, &scopes, Some("n1"));
        assert!(verify(&claim_for(&dev, &scopes, "n1", false)).is_ok());
        assert_eq!(
            verify(&claim_for(&dev, &scopes, "n2", false)).unwrap_err(),
            "device nonce mismatch"
        );
        let other_scopes = vec!["operator.read".to_string()];
        assert_eq!(
            verify(&claim_for(&dev, &other_scopes, "n1", false)).unwrap_err(),
            "device signature invalid"
        );
        let v1 = signed_device(&key, &scopes, None);
        assert_eq!(
            verify(&claim_for(&v1, &scopes, "n1", false)).unwrap_err(),
            "device nonce required"
        );
        assert!(verify(&claim_for(&v1, &scopes, "n1", true)).is_ok());
        let mut bad_id = dev.clone();
        bad_id["id"] = json!("00");
        assert_eq!(
            verify(&claim_for(&bad_id, &scopes, "n1", false)).unwrap_err(),
            "device identity mismatch"
        );
    }

    #[test]
    fn pairing_and_tokens() {
        let dir = std::env::temp_dir().join(format!("mb-dev-{}", util::uuid_v4()));
        let mut store = DeviceStore::load(&dir);
        let dev = VerifiedDevice {
            id: "abc".into(),
            public_key: "pk".into(),
        };
        let scopes = vec!["operator.admin".to_string()];
        assert!(!store.is_paired_for(&dev, "operator", &scopes));
        let req = store.request(&dev, &Map::new(), "operator", &scopes);
        let id = req["requestId"].as_str().unwrap().to_string();
        store.approve(&id).unwrap();
        assert!(store.is_paired_for(&dev, "operator", &scopes));
        let auth = store.ensure_token("abc", "operator", &scopes).unwrap();
        let token = auth["deviceToken"].as_str().unwrap().to_string();
        assert_eq!(token.len(), 32);
        assert!(store.check_token("abc", "operator", &token, &scopes));
        assert!(!store.check_token("abc", "operator", "nope", &scopes));
        let reloaded = DeviceStore::load(&dir);
        assert!(reloaded.check_token("abc", "operator", &token, &scopes));
        store.revoke("abc", "operator").unwrap();
        assert!(!store.check_token("abc", "operator", &token, &scopes));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
