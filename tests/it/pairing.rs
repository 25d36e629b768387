//! `pairing.list/approve/reject` over WebSocket against upstream's store files.

use crate::support::*;
use serde_json::{json, Value};

fn seed(gw: &Gateway) -> std::path::PathBuf {
    let creds = gw.state.path().join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let now = moltbot::util::iso_now();
    let file = json!({"version": 1, "requests": [
        {"id": "42", "code": "ABCD2345", "createdAt": now, "lastSeenAt": now},
        {"id": "43", "code": "WXYZ6789", "createdAt": now, "lastSeenAt": now},
    ]});
    std::fs::write(creds.join("discord-pairing.json"), file.to_string()).unwrap();
    creds
}

#[test]
fn approve_writes_the_allow_store_and_reject_does_not() {
    let gw = Gateway::start(Opts::default());
    let creds = seed(&gw);
    let (mut ws, _) = gw.connect();
    let listed = ws.call("pairing.list", json!({}));
    let discord = listed["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "discord")
        .cloned()
        .unwrap();
    assert_eq!(discord["requests"].as_array().unwrap().len(), 2);
    let ok = ws.call(
        "pairing.approve",
        json!({"channel": "discord", "code": "abcd2345"}),
    );
    assert_eq!(
        (ok["id"].as_str(), ok["decision"].as_str()),
        (Some("42"), Some("approved"))
    );
    let rej = ws.call(
        "pairing.reject",
        json!({"channel": "discord", "code": "WXYZ6789"}),
    );
    assert_eq!(rej["decision"], "rejected");
    let allow: Value = serde_json::from_str(
        &std::fs::read_to_string(creds.join("discord-allowFrom.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(allow, json!({"version": 1, "allowFrom": ["42"]}));
    let (_, msg) = ws.call_err(
        "pairing.approve",
        json!({"channel": "discord", "code": "ABCD2345"}),
    );
    assert_eq!(msg, "No pending pairing request found for code: ABCD2345");
}

#[test]
fn pairing_methods_need_the_pairing_scope() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.open();
    let mut params = connect_params(json!({"token": TOKEN}));
    params["scopes"] = json!(["operator.read"]);
    ws.call("connect", params);
    assert_eq!(
        ws.call_err("pairing.list", json!({})).1,
        "missing scope: operator.pairing"
    );
}
