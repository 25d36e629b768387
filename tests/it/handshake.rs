use crate::support::*;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

/// A signed `device` block as upstream's clients build it (v2 payload with the nonce).
fn device_block(key: &SigningKey, params: &Value, nonce: Option<&str>) -> Value {
    let raw = key.verifying_key().to_bytes();
    let id = moltbot::util::sha256_hex(&raw);
    let signed_at = moltbot::util::now_ms();
    let scopes: Vec<&str> = params["scopes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let token = params["auth"]["token"].as_str().unwrap_or("");
    let base = format!(
        "{id}|{}|{}|{}|{}|{signed_at}|{token}",
        params["client"]["id"].as_str().unwrap(),
        params["client"]["mode"].as_str().unwrap(),
        params["role"].as_str().unwrap(),
        scopes.join(",")
    );
    let payload = match nonce {
        Some(n) => format!("v2|{base}|{n}"),
        None => format!("v1|{base}"),
    };
    let sig = key.sign(payload.as_bytes());
    let mut d = json!({"id": id, "publicKey": moltbot::util::base64url_encode(&raw), "signature": moltbot::util::base64url_encode(&sig.to_bytes()), "signedAt": signed_at});
    if let Some(n) = nonce {
        d["nonce"] = json!(n);
    }
    d
}

#[test]
fn token_handshake_returns_hello_ok() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, challenge) = gw.open();
    assert!(challenge["payload"]["nonce"]
        .as_str()
        .is_some_and(|n| n.len() == 36));
    assert!(
        challenge.get("seq").is_none(),
        "challenge is unicast, without seq"
    );
    let res = ws.request("connect", connect_params(json!({"token": TOKEN})));
    let hello = &res["payload"];
    assert_eq!(hello["type"], "hello-ok");
    assert_eq!(hello["protocol"], 3);
    assert_eq!(
        hello["policy"],
        json!({"maxPayload": 524288, "maxBufferedBytes": 1572864, "tickIntervalMs": 30000})
    );
    let methods: Vec<&str> = hello["features"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for m in [
        "health",
        "config.get",
        "chat.send",
        "node.list",
        "device.pair.list",
        "cron.status",
        "skills.status",
    ] {
        assert!(methods.contains(&m), "{m} advertised");
    }
    assert_eq!(hello["features"]["events"].as_array().unwrap().len(), 18);
    assert_eq!(
        hello["snapshot"]["sessionDefaults"]["mainSessionKey"],
        "agent:main:main"
    );
    assert_eq!(hello["snapshot"]["presence"][0]["reason"], "self");
    assert!(hello["server"]["connId"].as_str().is_some());
    assert!(hello.get("auth").is_none(), "no device, no device token");
}

#[test]
fn wrong_token_is_rejected_with_upstream_text_and_1008() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.open();
    let res = ws.request("connect", connect_params(json!({"token": "nope"})));
    let msg = "unauthorized: gateway token mismatch (set gateway.remote.token to match gateway.auth.token)";
    assert_eq!(res["ok"], false);
    assert_eq!(
        res["error"],
        json!({"code": "INVALID_REQUEST", "message": msg})
    );
    assert_eq!(ws.expect_close(), (1008, msg.to_string()));
    let (mut ws, _) = gw.open();
    let res = ws.request("connect", connect_params(json!({})));
    assert_eq!(res["error"]["message"], "device identity required");
    assert_eq!(res["error"]["code"], "NOT_PAIRED");
}

#[test]
fn password_handshake_with_signed_device() {
    let opts = Opts {
        args: vec![
            "--allow-unconfigured".into(),
            "--password".into(),
            "hunter2".into(),
        ],
        token_env: false,
        ..Default::default()
    };
    let gw = Gateway::start(opts);
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let (mut ws, challenge) = gw.open();
    let nonce = challenge["payload"]["nonce"].as_str().unwrap().to_string();
    let mut params = connect_params(json!({"password": "hunter2"}));
    params["device"] = device_block(&key, &params, Some(&nonce));
    let hello = ws.call("connect", params.clone());
    let auth = &hello["auth"];
    assert_eq!(auth["role"], "operator");
    assert_eq!(
        auth["deviceToken"].as_str().map(str::len),
        Some(32),
        "local device paired silently: {hello}"
    );
    assert!(gw.state.path().join("devices/paired.json").exists());
    // The device token alone now authenticates this device.
    let (mut ws2, ch2) = gw.open();
    let mut p2 = connect_params(json!({"token": auth["deviceToken"]}));
    p2["device"] = device_block(&key, &p2, ch2["payload"]["nonce"].as_str());
    assert_eq!(ws2.call("connect", p2)["type"], "hello-ok");
    // A wrong password gets the password wording.
    let (mut ws3, ch3) = gw.open();
    let mut p3 = connect_params(json!({"password": "wrong"}));
    p3["device"] = device_block(&key, &p3, ch3["payload"]["nonce"].as_str());
    let (_, msg) = ws3.call_err("connect", p3);
    assert_eq!(msg, "unauthorized: gateway password mismatch (set gateway.remote.password to match gateway.auth.password)");
}

#[test]
fn tampered_device_signature_is_refused() {
    let gw = Gateway::start(Opts::default());
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let (mut ws, _) = gw.open();
    let mut params = connect_params(json!({"token": TOKEN}));
    params["device"] = device_block(&key, &params, Some("not-the-nonce"));
    assert_eq!(ws.call_err("connect", params).1, "device nonce mismatch");
}

#[test]
fn protocol_mismatch_closes_1002() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.open();
    let mut params = connect_params(json!({"token": TOKEN}));
    params["minProtocol"] = json!(4);
    params["maxProtocol"] = json!(5);
    let res = ws.request("connect", params);
    assert_eq!(
        res["error"],
        json!({"code": "INVALID_REQUEST", "message": "protocol mismatch", "details": {"expectedProtocol": 3}})
    );
    assert_eq!(ws.expect_close(), (1002, "protocol mismatch".into()));
}

#[test]
fn first_request_must_be_connect() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.open();
    let res = ws.request("health", json!({}));
    assert_eq!(
        res["error"]["message"],
        "invalid handshake: first request must be connect"
    );
    assert_eq!(
        ws.expect_close(),
        (
            1008,
            "invalid handshake: first request must be connect".into()
        )
    );
    let (mut ws, _) = gw.open();
    ws.send_json(&json!({"type": "event", "event": "x"}));
    assert_eq!(ws.expect_close(), (1008, "invalid request frame".into()));
    let (mut ws, _) = gw.open();
    ws.send_text("{not json");
    assert_eq!(ws.expect_close().0, 1000);
}

#[test]
fn bad_connect_params_get_ajv_text() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.open();
    let mut params = connect_params(json!({"token": TOKEN}));
    params["client"]["id"] = json!("ios-node");
    let (code, msg) = ws.call_err("connect", params);
    assert_eq!(code, "INVALID_REQUEST");
    assert_eq!(msg, "invalid connect params: at /client/id: must be equal to constant; at /client/id: must match a schema in anyOf");
}

#[test]
fn handshake_timeout_closes_1000() {
    let opts = Opts {
        env: vec![("CLAWDBOT_TEST_HANDSHAKE_TIMEOUT_MS".into(), "300".into())],
        ..Default::default()
    };
    let gw = Gateway::start(opts);
    let (mut ws, _) = gw.open();
    let started = std::time::Instant::now();
    assert_eq!(ws.expect_close().0, 1000);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn cross_origin_browser_is_refused_same_origin_accepted() {
    let gw = Gateway::start(Opts::default());
    let host = format!("127.0.0.1:{}", gw.port);
    let mut evil = Ws::open(gw.port, &[("Origin", "http://evil.example")]);
    assert_eq!(
        evil.expect_close(),
        (1008, "origin not allowed (open the Control UI from the gateway host or allow it in gateway.controlUi.allowedOrigins)".into())
    );
    let own = format!("http://{host}");
    let (mut ws, _) = gw.open_with(&[("Origin", own.as_str())]);
    assert_eq!(
        ws.call("connect", connect_params(json!({"token": TOKEN})))["type"],
        "hello-ok"
    );
}

#[test]
fn allowed_origins_from_config() {
    let cfg = r#"{ gateway: { mode: "local", controlUi: { allowedOrigins: ["http://ui.example:8080"] } } }"#;
    let gw = Gateway::start(Opts {
        config: Some(cfg.into()),
        args: vec![],
        ..Default::default()
    });
    let (mut ws, _) = gw.open_with(&[("Origin", "http://ui.example:8080")]);
    assert_eq!(
        ws.call("connect", connect_params(json!({"token": TOKEN})))["type"],
        "hello-ok"
    );
}
