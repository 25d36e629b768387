//! Device pairing methods: list, approve, reject, token rotate and revoke.

use serde_json::{json, Value};

use super::params::{closed, str_param};
use super::{RpcError, RpcResult};
use crate::gateway::core::{Broadcast, Gateway};

pub fn handle(gw: &mut Gateway, method: &str, params: &Value) -> Option<RpcResult> {
    let r =
        match method {
            "device.pair.list" => closed(method, params, &[], &[]).map(|_| gw.devices.list()),
            "device.pair.approve" => closed(method, params, &["requestId"], &["requestId"])
                .and_then(|_| approve(gw, params)),
            "device.pair.reject" => closed(method, params, &["requestId"], &["requestId"])
                .and_then(|_| reject(gw, params)),
            "device.token.rotate" => closed(
                method,
                params,
                &["deviceId", "role", "scopes"],
                &["deviceId", "role"],
            )
            .and_then(|_| rotate(gw, params)),
            "device.token.revoke" => {
                closed(method, params, &["deviceId", "role"], &["deviceId", "role"])
                    .and_then(|_| revoke(gw, params))
            }
            _ => return None,
        };
    Some(r)
}

fn resolved(gw: &mut Gateway, request_id: &str, device_id: &str, decision: &str) {
    let payload = json!({"requestId": request_id, "deviceId": device_id, "decision": decision, "ts": crate::util::now_ms()});
    gw.broadcast(
        "device.pair.resolved",
        payload,
        Broadcast {
            scope: Some("operator.pairing"),
            ..Default::default()
        },
    );
}

fn approve(gw: &mut Gateway, params: &Value) -> RpcResult {
    let id = str_param(params, "requestId").unwrap_or("");
    let device = gw
        .devices
        .approve(id)
        .ok_or_else(|| RpcError::invalid("unknown requestId"))?;
    let device_id = device["deviceId"].as_str().unwrap_or("").to_string();
    resolved(gw, id, &device_id, "approved");
    let mut shown = device.clone();
    if let Some(tokens) = shown.get_mut("tokens").and_then(Value::as_object_mut) {
        for t in tokens.values_mut() {
            if let Some(o) = t.as_object_mut() {
                o.remove("token");
            }
        }
    }
    Ok(json!({"requestId": id, "device": shown}))
}

fn reject(gw: &mut Gateway, params: &Value) -> RpcResult {
    let id = str_param(params, "requestId").unwrap_or("");
    let device_id = gw
        .devices
        .reject(id)
        .ok_or_else(|| RpcError::invalid("unknown requestId"))?;
    resolved(gw, id, &device_id, "rejected");
    Ok(json!({"requestId": id, "deviceId": device_id}))
}

fn rotate(gw: &mut Gateway, params: &Value) -> RpcResult {
    let (device, role) = (
        str_param(params, "deviceId").unwrap_or(""),
        str_param(params, "role").unwrap_or(""),
    );
    let scopes: Option<Vec<String>> = params.get("scopes").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    });
    gw.devices
        .rotate(device, role, scopes.as_deref())
        .ok_or_else(|| RpcError::invalid("unknown deviceId/role"))
}

fn revoke(gw: &mut Gateway, params: &Value) -> RpcResult {
    let (device, role) = (
        str_param(params, "deviceId").unwrap_or(""),
        str_param(params, "role").unwrap_or(""),
    );
    gw.devices
        .revoke(device, role)
        .ok_or_else(|| RpcError::invalid("unknown deviceId/role"))
}
