use crate::support::*;
use serde_json::{json, Value};

#[test]
fn health_status_presence_and_heartbeat() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.connect();
    let health = ws.call("health", json!({}));
    assert_eq!(health["ok"], true);
    assert_eq!(health["defaultAgentId"], "main");
    assert_eq!(health["channels"], json!({}));
    assert_eq!(health["agents"][0]["heartbeat"]["every"], "30m");
    assert_eq!(health["sessions"]["count"], 0);
    let status = ws.call("status", json!({}));
    assert_eq!(status["heartbeat"]["defaultAgentId"], "main");
    assert_eq!(status["sessions"]["count"], 0);
    let presence = ws.call("system-presence", json!({}));
    assert!(presence
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["reason"] == "self"));
    assert_eq!(ws.call("last-heartbeat", json!({})), Value::Null);
    let channels = ws.call(
        "channels.status",
        json!({"probe": false, "timeoutMs": 8000}),
    );
    assert_eq!(channels["channels"], json!({}));
    assert_eq!(channels["channelAccounts"], json!({}));
}

#[test]
fn control_ui_methods_answer_empty_states() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.connect();
    assert_eq!(ws.call("node.list", json!({}))["nodes"], json!([]));
    assert_eq!(ws.call("cron.status", json!({}))["enabled"], false);
    assert_eq!(
        ws.call("cron.list", json!({"includeDisabled": true}))["jobs"],
        json!([])
    );
    assert_eq!(ws.call("skills.status", json!({}))["skills"], json!([]));
    assert_eq!(
        ws.call("device.pair.list", json!({})),
        json!({"pending": [], "paired": []})
    );
    assert_eq!(
        ws.call(
            "agent.identity.get",
            json!({"sessionKey": "agent:main:main"})
        ),
        json!({"agentId": "main", "name": "Assistant", "avatar": "A"})
    );
    assert_eq!(ws.call("agents.list", json!({}))["defaultId"], "main");
    assert_eq!(
        ws.call(
            "sessions.list",
            json!({"includeGlobal": true, "includeUnknown": false, "limit": 120})
        )["sessions"],
        json!([])
    );
    assert_eq!(
        ws.call("exec.approvals.get", json!({}))["file"]["version"],
        1
    );
    let (code, msg) = ws.call_err("cron.add", json!({"name": "x"}));
    assert_eq!(code, "UNAVAILABLE");
    assert!(msg.contains("cron"), "{msg}");
}

#[test]
fn unknown_method_and_bad_params() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.connect();
    assert_eq!(
        ws.call_err("nope.method", json!({})),
        (
            "INVALID_REQUEST".into(),
            "unknown method: nope.method".into()
        )
    );
    assert_eq!(
        ws.call_err("sessions.list", json!({"bogus": 1})).1,
        "invalid sessions.list params: at root: unexpected property 'bogus'"
    );
    assert_eq!(
        ws.call_err("connect", json!({})).1,
        "connect is only valid as the first request"
    );
}

#[test]
fn bad_frames_after_handshake_keep_the_socket() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.connect();
    ws.send_text("this is not json");
    ws.send_json(&json!({"type": "event", "event": "x"}));
    let res = ws.response("invalid");
    assert_eq!(res["error"]["message"], "invalid request frame: must have required property 'id'; must have required property 'method'; at root: unexpected property 'event'; at /type: must be equal to constant");
    assert_eq!(
        ws.call("health", json!({}))["ok"],
        true,
        "socket still usable"
    );
}

#[test]
fn oversized_frame_closes_1009() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.connect();
    let big = format!(
        "{{\"type\":\"req\",\"id\":\"x\",\"method\":\"health\",\"params\":{{\"pad\":\"{}\"}}}}",
        "a".repeat(600_000)
    );
    ws.send_text(&big);
    assert_eq!(ws.expect_close().0, 1009);
    let (mut ok, _) = gw.connect();
    assert_eq!(
        ok.call("health", json!({}))["ok"],
        true,
        "gateway unaffected"
    );
}

#[test]
fn scopes_limit_a_read_only_client() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.open();
    let mut params = connect_params(json!({"token": TOKEN}));
    params["scopes"] = json!(["operator.read"]);
    ws.call("connect", params);
    assert_eq!(ws.call("health", json!({}))["ok"], true);
    assert_eq!(
        ws.call_err("config.get", json!({})).1,
        "missing scope: operator.admin"
    );
    assert_eq!(
        ws.call_err("chat.send", json!({})).1,
        "missing scope: operator.write"
    );
}

#[test]
fn system_event_broadcasts_presence_with_seq() {
    let gw = Gateway::start(Opts::default());
    let (mut a, _) = gw.connect();
    let (mut b, _) = gw.connect();
    a.call(
        "system-event",
        json!({"text": "hello", "host": "bench", "mode": "test"}),
    );
    let ev = b.wait_event("presence").expect("presence event");
    assert!(ev["seq"].as_u64().is_some());
    assert!(ev["stateVersion"]["presence"].as_u64().is_some());
    assert!(ev["payload"]["presence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["host"] == "bench"));
}

#[test]
fn logs_tail_returns_json_lines_and_cursor() {
    let dir = TempDir::new();
    let log = dir.path().join("gw.log");
    let gw = Gateway::start(Opts::with_log_file(&log));
    let (mut ws, _) = gw.connect();
    let first = ws.call("logs.tail", json!({"limit": 500, "maxBytes": 250000}));
    assert_eq!(first["file"], log.to_string_lossy().as_ref());
    let lines = first["lines"].as_array().unwrap();
    let listening = lines
        .iter()
        .filter_map(Value::as_str)
        .find(|l| l.contains("listening on ws://"))
        .expect("listening line in log");
    let rec: Value = serde_json::from_str(listening).unwrap();
    assert_eq!(rec["0"], "{\"subsystem\":\"gateway\"}");
    assert_eq!(rec["_meta"]["logLevelName"], "INFO");
    let cursor = first["cursor"].as_u64().unwrap();
    ws.call_err("nope.cause.a.line", json!({}));
    let next = ws.call("logs.tail", json!({"cursor": cursor}));
    assert!(next["cursor"].as_u64().unwrap() > cursor);
    assert!(next["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap_or("").contains("nope.cause.a.line")));
}

#[test]
fn models_list_serves_the_embedded_catalog() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.connect();
    let models = ws.call("models.list", json!({}));
    let list = models["models"].as_array().unwrap();
    let opus = list
        .iter()
        .find(|m| m["id"] == "claude-opus-4-5" && m["provider"] == "anthropic")
        .expect("claude-opus-4-5 listed");
    assert!(opus["contextWindow"].as_u64().unwrap_or(0) >= 200_000);
    assert!(list.iter().any(|m| m["provider"] == "openai"));
}

#[test]
fn models_list_follows_a_reloaded_config() {
    let config = |models: &str| {
        format!(
            r#"{{ gateway: {{ mode: "local" }}, models: {{ providers: {{ lab: {{
  baseUrl: "http://127.0.0.1:9/v1", api: "openai-completions", models: [{models}] }} }} }} }}"#
        )
    };
    let lab = |ws: &mut Ws| -> Vec<String> {
        let models = ws.call("models.list", json!({}));
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["provider"] == "lab")
            .map(|m| m["id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let gw = Gateway::start(Opts::local(&config(r#"{ id: "one", name: "One" }"#)));
    let (mut ws, _) = gw.connect();
    assert_eq!(lab(&mut ws), ["one"]);
    let two = config(r#"{ id: "one", name: "One" }, { id: "two", name: "Two" }"#);
    std::fs::write(gw.config_path(), two).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while lab(&mut ws) != ["one", "two"] {
        assert!(std::time::Instant::now() < deadline, "{:?}", lab(&mut ws));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
