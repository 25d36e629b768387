use crate::support::*;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn second_gateway_on_the_same_state_dir_is_refused() {
    let first = Gateway::start(Opts::default());
    let second = Gateway::try_start_in(Opts::default(), first.state.clone());
    let Err(r) = second else {
        panic!("second gateway started")
    };
    assert_eq!(r.status.code(), Some(1));
    let expected = format!("gateway already running (pid {})", first.child.id());
    assert!(r.output.contains(&expected), "{}", r.output);
}

#[test]
fn sigkill_leaves_nothing_that_blocks_a_restart() {
    let mut first = Gateway::start(Opts::default());
    let state = first.state.clone();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let started = Instant::now();
    let again = Gateway::try_start_in(Opts::default(), state);
    assert!(
        again.is_ok(),
        "restart after SIGKILL refused: {}",
        again.err().map(|r| r.output).unwrap_or_default()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn leftover_upstream_lock_file_does_not_block() {
    let state = Arc::new(TempDir::new());
    let config = state.path().join("moltbot.json");
    let lock = moltbot::state::lock::lock_path(state.path(), &config);
    std::fs::write(
        &lock,
        r#"{"pid":999999,"createdAt":"2026-01-01T00:00:00.000Z","configPath":"x"}"#,
    )
    .unwrap();
    assert!(Gateway::try_start_in(Opts::default(), state).is_ok());
}

#[test]
fn sigterm_with_clients_sends_shutdown_and_exits_0_quickly() {
    let mut gw = Gateway::start(Opts::default());
    let mut clients: Vec<Ws> = (0..5).map(|_| gw.connect().0).collect();
    let started = Instant::now();
    gw.signal("TERM");
    for c in clients.iter_mut() {
        let ev = c.wait_event("shutdown").expect("shutdown event");
        assert_eq!(
            ev["payload"],
            json!({"reason": "gateway stopping", "restartExpectedMs": null})
        );
        assert!(ev["seq"].as_u64().is_some());
        assert_eq!(c.expect_close(), (1012, "service restart".into()));
    }
    let status = gw
        .wait_exit(Duration::from_secs(2))
        .expect("exited within 2 s");
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(gw.output().contains("signal SIGTERM received"));
    // The lock is free again.
    assert!(Gateway::try_start_in(Opts::default(), gw.state.clone()).is_ok());
}

#[test]
fn a_client_that_never_reads_does_not_block_shutdown() {
    let mut gw = Gateway::start(Opts::default());
    let (_stalled, _) = gw.connect();
    let (_half_open, _) = gw.open();
    gw.signal("INT");
    assert!(gw
        .wait_exit(Duration::from_secs(2))
        .is_some_and(|s| s.success()));
}

#[test]
fn non_loopback_bind_without_secret_is_refused() {
    let opts = Opts {
        args: vec!["--allow-unconfigured".into(), "--bind".into(), "lan".into()],
        token_env: false,
        ..Default::default()
    };
    let r = Gateway::try_start(opts).err().expect("refused");
    assert_eq!(r.status.code(), Some(1));
    assert!(
        r.output
            .contains("Refusing to bind gateway to lan without auth."),
        "{}",
        r.output
    );
    assert!(r.output.contains("Set gateway.auth.token/password (or CLAWDBOT_GATEWAY_TOKEN/CLAWDBOT_GATEWAY_PASSWORD) or pass --token/--password."));
    let opts = Opts {
        args: vec!["--allow-unconfigured".into(), "--bind".into(), "lan".into()],
        ..Default::default()
    };
    let gw = Gateway::start(opts);
    assert!(
        gw.output().contains("listening on ws://0.0.0.0:"),
        "{}",
        gw.output()
    );
}

#[test]
fn invalid_flags_use_upstream_texts() {
    let r = Gateway::try_start(Opts {
        args: vec![
            "--allow-unconfigured".into(),
            "--bind".into(),
            "moon".into(),
        ],
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(
        r.output
            .contains(r#"Invalid --bind (use "loopback", "lan", "tailnet", "auto", or "custom")"#),
        "{}",
        r.output
    );
}

#[test]
fn the_token_never_appears_in_logs() {
    let dir = TempDir::new();
    let log = dir.path().join("gw.log");
    let mut gw = Gateway::start(Opts::with_log_file(&log));
    let (mut ws, _) = gw.connect();
    ws.call("config.get", json!({}));
    let (mut bad, _) = gw.open();
    bad.call_err(
        "connect",
        connect_params(json!({"token": format!("{TOKEN}-wrong")})),
    );
    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(3));
    let file_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(file_log.contains("listening on"), "log file written");
    assert!(!gw.output().contains(TOKEN), "token in console output");
    assert!(!file_log.contains(TOKEN), "token in log file");
}
