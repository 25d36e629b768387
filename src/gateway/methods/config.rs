//! `config.*`: reading the file snapshot, and writes guarded by the base hash (a conflicting edit
//! elsewhere is refused, never overwritten), validated before anything touches the disk.

use serde_json::{json, Value};
use std::sync::Arc;

use super::params::{closed, str_param};
use super::{RpcError, RpcResult};
use crate::config::{self, json5, redact, write, Snapshot};
use crate::gateway::core::Gateway;

/// Delay before the in-process restart after `config.apply`/`config.patch` (upstream default).
const DEFAULT_RESTART_DELAY_MS: u64 = 2000;

pub fn handle(gw: &mut Gateway, method: &str, params: &Value) -> Option<RpcResult> {
    let r = match method {
        "config.get" => closed(method, params, &[], &[])
            .map(|_| redact::snapshot_rpc(&config::read_snapshot(&gw.ctx.config_path))),
        "config.schema" => closed(method, params, &[], &[]).map(|_| schema_payload()),
        "config.set" => closed(method, params, &["raw", "baseHash"], &["raw"])
            .and_then(|_| set(gw, params, false)),
        "config.apply" => closed(
            method,
            params,
            &["raw", "baseHash", "sessionKey", "note", "restartDelayMs"],
            &["raw"],
        )
        .and_then(|_| set(gw, params, true)),
        "config.patch" => closed(
            method,
            params,
            &["raw", "baseHash", "sessionKey", "note", "restartDelayMs"],
            &["raw"],
        )
        .and_then(|_| patch(gw, params)),
        _ => return None,
    };
    Some(r)
}

fn schema_payload() -> Value {
    json!({
        "schema": config::schema(),
        "uiHints": config::ui_hints(),
        "version": write::stamp_version(),
        "generatedAt": crate::util::iso_now(),
    })
}

/// The base-hash rule: required when the file exists, and equal to the file's current hash.
fn check_base_hash(current: &Snapshot, params: &Value) -> Result<(), RpcError> {
    if !current.exists {
        return Ok(());
    }
    let Some(base) = str_param(params, "baseHash").filter(|h| !h.is_empty()) else {
        return Err(RpcError::invalid(
            "config base hash required; re-run config.get and retry",
        ));
    };
    if current.raw.is_none() {
        return Err(RpcError::invalid(
            "config base hash unavailable; re-run config.get and retry",
        ));
    }
    if base != current.hash {
        return Err(RpcError::invalid(
            "config changed since last load; re-run config.get and retry",
        ));
    }
    Ok(())
}

/// The JSON5 `raw` of a write, with redaction placeholders put back from the current file.
fn parse_raw(params: &Value, current: &Snapshot) -> Result<Value, RpcError> {
    let raw = str_param(params, "raw").unwrap_or("");
    let value = json5::parse(raw)
        .map(|p| p.value)
        .map_err(|e| RpcError::invalid(format!("SyntaxError: {e}")))?;
    redact::restore(value, &current.parsed, "").map_err(RpcError::invalid)
}

/// Validates `value` as the config file would be read (includes and `${VAR}` resolved).
fn validated(gw: &Gateway, value: &Value) -> Result<Snapshot, RpcError> {
    let base = config::read_snapshot(&gw.ctx.config_path);
    let snap = config::evaluate(base, value.clone(), &gw.ctx.config_path);
    if !snap.valid {
        let details = json!({"issues": Snapshot::issues_json(&snap.issues)});
        return Err(RpcError::invalid("invalid config").with_details(details));
    }
    Ok(snap)
}

fn set(gw: &mut Gateway, params: &Value, apply: bool) -> RpcResult {
    let current = config::read_snapshot(&gw.ctx.config_path);
    check_base_hash(&current, params)?;
    let value = parse_raw(params, &current)?;
    let snap = validated(gw, &value)?;
    commit(gw, &value, snap, params, apply)
}

fn patch(gw: &mut Gateway, params: &Value) -> RpcResult {
    let current = config::read_snapshot(&gw.ctx.config_path);
    check_base_hash(&current, params)?;
    let patch = parse_raw(params, &current)?;
    if !patch.is_object() {
        return Err(RpcError::invalid("config.patch raw must be an object"));
    }
    if !current.valid {
        return Err(RpcError::invalid("invalid config; fix before patching"));
    }
    let base = if current.parsed.is_object() {
        current.parsed.clone()
    } else {
        json!({})
    };
    let merged = merge_patch(base, &patch);
    let snap = validated(gw, &merged)?;
    commit(gw, &merged, snap, params, true)
}

/// RFC 7386 JSON merge patch: objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: Value, patch: &Value) -> Value {
    let Some(p) = patch.as_object() else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let existing = out.remove(k).unwrap_or(Value::Null);
            out.insert(k.clone(), merge_patch(existing, v));
        }
    }
    Value::Object(out)
}

fn commit(
    gw: &mut Gateway,
    value: &Value,
    snap: Snapshot,
    params: &Value,
    apply: bool,
) -> RpcResult {
    let path = gw.ctx.config_path.clone();
    write::write_config(&path, value)
        .map_err(|e| RpcError::unavailable(format!("failed to write config: {e}")))?;
    let written = Arc::new(config::read_snapshot(&path));
    let mut result = json!({"ok": true, "path": path.to_string_lossy(), "config": redact::redact_config(&snap.config)});
    if apply {
        let delay = params
            .get("restartDelayMs")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_RESTART_DELAY_MS)
            .min(60_000);
        result["restart"] = json!({"ok": true, "pid": std::process::id(), "signal": "SIGUSR1", "delayMs": delay, "reason": "config.apply", "mode": "emit"});
        result["sentinel"] = write_sentinel(gw, params);
        gw.schedule_restart(
            std::time::Duration::from_millis(delay),
            "config.apply".into(),
        );
    }
    gw.adopt_written_config(written);
    Ok(result)
}

fn write_sentinel(gw: &Gateway, params: &Value) -> Value {
    let path = gw.ctx.state.restart_sentinel();
    let mut payload = json!({
        "kind": "config-apply", "status": "ok", "ts": crate::util::now_ms(),
        "message": params.get("note").cloned().unwrap_or(Value::Null),
        "doctorHint": "Run: moltbot doctor --non-interactive",
        "stats": {"mode": "config.apply", "root": gw.ctx.config_path.to_string_lossy()},
    });
    if let Some(k) = str_param(params, "sessionKey") {
        payload["sessionKey"] = json!(k);
    }
    let body = json!({"version": 1, "payload": payload});
    if let Err(e) = crate::state::atomic::write_private(&path, body.to_string().as_bytes()) {
        log::warn!(target: "gateway", "failed to write restart sentinel: {e}");
    }
    json!({"path": path.to_string_lossy(), "payload": payload})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_rfc7386() {
        let t = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        let p = json!({"a": {"b": null, "e": 3}, "d": [2]});
        assert_eq!(merge_patch(t, &p), json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }
}
