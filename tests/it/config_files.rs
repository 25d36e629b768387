use crate::support::*;
use serde_json::{json, Value};
use std::sync::Arc;

fn refused_with(config: &str) -> Refused {
    let state = Arc::new(TempDir::new());
    let opts = Opts {
        config: Some(config.into()),
        args: vec![],
        ..Default::default()
    };
    let Err(refused) = Gateway::try_start_in(opts, state.clone()) else {
        panic!("gateway started with: {config}")
    };
    let after = std::fs::read_to_string(state.path().join("moltbot.json")).unwrap();
    assert_eq!(after, config, "the user's file is never rewritten");
    refused
}

#[test]
fn seed_fly_guide_config_loads() {
    let seed = include_str!("../fixtures/fly-guide.json5");
    let opts = Opts {
        config: Some(seed.into()),
        env: vec![("DISCORD_BOT_TOKEN".into(), "x".into())],
        ..Default::default()
    };
    let gw = Gateway::start(opts);
    let (mut ws, _) = gw.connect();
    let snap = ws.call("config.get", json!({}));
    assert_eq!(snap["valid"], true, "{}", snap["issues"]);
    assert_eq!(snap["exists"], true);
}

#[test]
fn unknown_key_refuses_with_path_and_line() {
    let r = refused_with("{\n  gateway: {\n    mode: \"local\",\n    prot: 3000,\n  },\n}\n");
    assert_eq!(r.status.code(), Some(1));
    assert!(
        r.output
            .contains("- moltbot.json:4: gateway: Unrecognized key: \"prot\""),
        "{}",
        r.output
    );
}

#[test]
fn bad_json5_refuses_with_position() {
    let r = refused_with("{ gateway: { mode: 'local' }, ]");
    assert!(
        r.output
            .contains("JSON5 parse failed: SyntaxError: JSON5: invalid character ']' at 1:31"),
        "{}",
        r.output
    );
}

#[test]
fn bad_include_refuses() {
    let r = refused_with(
        r#"{ gateway: { mode: "local" }, agents: { "$include": "./missing.json5" } }"#,
    );
    assert!(
        r.output
            .contains("Failed to read include file: ./missing.json5 (resolved: "),
        "{}",
        r.output
    );
}

#[test]
fn missing_env_var_refuses_with_config_path() {
    let r =
        refused_with(r#"{ gateway: { mode: "local", auth: { token: "${MB_TEST_UNSET_VAR}" } } }"#);
    assert!(
        r.output.contains(
            "Missing env var \"MB_TEST_UNSET_VAR\" referenced at config path: gateway.auth.token"
        ),
        "{}",
        r.output
    );
}

#[test]
fn wrong_type_and_legacy_key_refuse() {
    let r = refused_with(r#"{ gateway: { mode: "local", port: "3000" } }"#);
    assert!(
        r.output
            .contains("gateway.port: Invalid input: expected number, received string"),
        "{}",
        r.output
    );
    let r = refused_with(r#"{ gateway: { mode: "local", token: "x" } }"#);
    assert!(
        r.output.contains(
            "gateway.token is ignored; use gateway.auth.token instead (auto-migrated on load)."
        ),
        "{}",
        r.output
    );
}

#[test]
fn mode_gate_without_allow_unconfigured() {
    let r = Gateway::try_start(Opts {
        args: vec![],
        ..Default::default()
    })
    .err()
    .expect("refused");
    assert!(r.output.contains("Missing config. Run `moltbot setup` or set gateway.mode=local (or pass --allow-unconfigured)."), "{}", r.output);
    let opts = Opts {
        args: vec![],
        config: Some("{ gateway: { mode: 'remote' } }".into()),
        ..Default::default()
    };
    let r = Gateway::try_start(opts).err().expect("refused");
    assert!(r.output.contains("Gateway start blocked: set gateway.mode=local (current: remote) or pass --allow-unconfigured."), "{}", r.output);
}

#[test]
fn include_and_env_round_trip_through_config_set() {
    let state = Arc::new(TempDir::new());
    std::fs::write(
        state.path().join("agents.json5"),
        "{ list: [{ id: 'main', name: 'Clawd' }] }",
    )
    .unwrap();
    let cfg = r#"{
  // comment
  gateway: { mode: "local", auth: { token: "${MB_IT_TOKEN}" } },
  agents: { "$include": "./agents.json5" },
}"#;
    let opts = Opts {
        config: Some(cfg.into()),
        args: vec![],
        token_env: false,
        env: vec![("MB_IT_TOKEN".into(), TOKEN.into())],
    };
    let gw = Gateway::try_start_in(opts, state.clone())
        .ok()
        .expect("starts");
    let (mut ws, _) = gw.connect();
    let snap = ws.call("config.get", json!({}));
    assert_eq!(
        snap["config"]["agents"]["list"][0]["name"], "Clawd",
        "include resolved"
    );
    // The substituted secret is redacted; the `${VAR}` reference in the file text is not.
    assert_eq!(
        snap["config"]["gateway"]["auth"]["token"], "__OPENCLAW_REDACTED__",
        "env substituted, then redacted"
    );
    assert!(snap["raw"].as_str().unwrap().contains("${MB_IT_TOKEN}"));
    assert!(
        !snap.to_string().contains(TOKEN),
        "the token never leaves config.get"
    );
    assert_eq!(snap["hash"], moltbot::util::sha256_hex(cfg.as_bytes()));
    let raw = snap["raw"]
        .as_str()
        .unwrap()
        .replace("// comment", "// edited");
    let res = ws.call("config.set", json!({"raw": raw, "baseHash": snap["hash"]}));
    assert_eq!(res["ok"], true);
    let written = std::fs::read_to_string(gw.config_path()).unwrap();
    let v: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        v["gateway"]["auth"]["token"], "${MB_IT_TOKEN}",
        "the reference is kept, not the secret"
    );
    assert_eq!(v["agents"]["$include"], "./agents.json5");
    assert!(v["meta"]["lastTouchedAt"].is_string());
    assert!(state.path().join("moltbot.json.bak").exists());
}

#[test]
fn redacted_secrets_survive_a_config_set_round_trip() {
    let cfg = r#"{ gateway: { mode: "local" }, models: { providers: { anthropic: { baseUrl: "http://127.0.0.1:9", apiKey: "sk-ant-literal-secret", models: [] } } } }"#;
    let gw = Gateway::start(Opts::local(cfg));
    let (mut ws, _) = gw.connect();
    let snap = ws.call("config.get", json!({}));
    assert!(
        !snap.to_string().contains("sk-ant-literal-secret"),
        "{snap}"
    );
    let raw = snap["raw"].as_str().unwrap();
    assert!(raw.contains("apiKey: \"__OPENCLAW_REDACTED__\""), "{raw}");
    let edited = raw.replace("http://127.0.0.1:9", "http://127.0.0.1:10");
    let res = ws.call(
        "config.set",
        json!({"raw": edited, "baseHash": snap["hash"]}),
    );
    assert_eq!(res["ok"], true);
    assert!(!res.to_string().contains("sk-ant-literal-secret"));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(gw.config_path()).unwrap()).unwrap();
    let provider = &written["models"]["providers"]["anthropic"];
    assert_eq!(provider["apiKey"], "sk-ant-literal-secret", "kept intact");
    assert_eq!(
        provider["baseUrl"], "http://127.0.0.1:10",
        "the edit landed"
    );
}

#[test]
fn config_set_with_stale_hash_is_refused_and_changes_nothing() {
    let gw = Gateway::start(Opts::local(r#"{ gateway: { mode: "local" } }"#));
    let (mut ws, _) = gw.connect();
    let snap = ws.call("config.get", json!({}));
    std::fs::write(gw.config_path(), "{ gateway: { mode: 'local' }, ui: {} }").unwrap();
    let before = std::fs::read_to_string(gw.config_path()).unwrap();
    let (_, msg) = ws.call_err(
        "config.set",
        json!({"raw": "{ gateway: { mode: 'local' } }", "baseHash": snap["hash"]}),
    );
    assert_eq!(
        msg,
        "config changed since last load; re-run config.get and retry"
    );
    let (_, msg) = ws.call_err("config.set", json!({"raw": "{}"}));
    assert_eq!(
        msg,
        "config base hash required; re-run config.get and retry"
    );
    assert_eq!(std::fs::read_to_string(gw.config_path()).unwrap(), before);
}

#[test]
fn config_set_invalid_reports_issues_and_changes_nothing() {
    let gw = Gateway::start(Opts::local(r#"{ gateway: { mode: "local" } }"#));
    let (mut ws, _) = gw.connect();
    let snap = ws.call("config.get", json!({}));
    let res = ws.request("config.set", json!({"raw": "{ gateway: { mode: 'local' }, agents: { defaults: { timeoutSeconds: 'x' } } }", "baseHash": snap["hash"]}));
    assert_eq!(res["error"]["message"], "invalid config");
    assert_eq!(
        res["error"]["details"]["issues"][0],
        json!({"path": "agents.defaults.timeoutSeconds", "message": "Invalid input: expected number, received string"})
    );
    let (_, msg) = ws.call_err(
        "config.set",
        json!({"raw": "{ oops", "baseHash": snap["hash"]}),
    );
    assert!(msg.starts_with("SyntaxError: JSON5: "), "{msg}");
    assert_eq!(
        std::fs::read_to_string(gw.config_path()).unwrap(),
        r#"{ gateway: { mode: "local" } }"#
    );
}

#[test]
fn config_patch_and_apply_restart_in_process() {
    let gw = Gateway::start(Opts::local(r#"{ gateway: { mode: "local" } }"#));
    let (mut ws, _) = gw.connect();
    let snap = ws.call("config.get", json!({}));
    let res = ws.call("config.patch", json!({"raw": "{ ui: { seamColor: '#ff0000' } }", "baseHash": snap["hash"], "restartDelayMs": 0}));
    assert_eq!(res["restart"]["signal"], "SIGUSR1");
    assert_eq!(res["sentinel"]["payload"]["kind"], "config-apply");
    let shutdown = ws
        .wait_event("shutdown")
        .expect("shutdown event before the restart");
    assert_eq!(
        shutdown["payload"],
        json!({"reason": "gateway restarting", "restartExpectedMs": 1500})
    );
    assert_eq!(ws.expect_close(), (1012, "service restart".into()));
    assert!(gw.wait_output("restarting in-process", std::time::Duration::from_secs(5)));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (mut again, _) = gw.connect();
    let after = again.call("config.get", json!({}));
    assert_eq!(after["config"]["ui"]["seamColor"], "#ff0000");
    assert_eq!(after["config"]["gateway"]["mode"], "local");
}

#[test]
fn hot_reload_picks_up_edits_and_ignores_bad_ones() {
    let gw = Gateway::start(Opts::local(r#"{ gateway: { mode: "local" } }"#));
    let (mut ws, _) = gw.connect();
    std::fs::write(
        gw.config_path(),
        r#"{ gateway: { mode: "local" }, agents: { list: [{ id: "work", default: true }] } }"#,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if ws.call("agents.list", json!({}))["defaultId"] == "work" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "edit not picked up");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::fs::write(
        gw.config_path(),
        r#"{ gateway: { mode: "local" }, agents: { list: "oops" } }"#,
    )
    .unwrap();
    assert!(
        gw.wait_output(
            "config reload skipped (invalid config)",
            std::time::Duration::from_secs(15)
        ),
        "{}",
        gw.output()
    );
    assert_eq!(
        ws.call("agents.list", json!({}))["defaultId"],
        "work",
        "last valid config kept"
    );
}

#[test]
fn allow_unconfigured_writes_minimal_config_only_for_channel_tokens() {
    let gw = Gateway::start(Opts::default());
    assert!(
        !gw.config_path().exists(),
        "nothing written without channel tokens"
    );
    drop(gw);
    let opts = Opts {
        env: vec![("TELEGRAM_BOT_TOKEN".into(), "123:abc".into())],
        ..Default::default()
    };
    let gw = Gateway::start(opts);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(gw.config_path()).unwrap()).unwrap();
    assert_eq!(written["plugins"]["entries"]["telegram"]["enabled"], true);
    assert_eq!(written["agents"]["defaults"]["maxConcurrent"], 4);
    assert!(
        written.pointer("/gateway/mode").is_none(),
        "still needs --allow-unconfigured, as upstream"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(gw.config_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn config_schema_returns_the_object_schema_and_hints() {
    let gw = Gateway::start(Opts::default());
    let (mut ws, _) = gw.connect();
    let s = ws.call("config.schema", json!({}));
    assert_eq!(s["schema"]["type"], "object");
    assert!(s["schema"]["properties"]["gateway"]["properties"]["auth"].is_object());
    assert!(s["uiHints"].as_object().is_some_and(|h| !h.is_empty()));
    assert!(s["generatedAt"].is_string());
}
