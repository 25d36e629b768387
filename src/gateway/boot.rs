//! Start-up in upstream's order, and the outer loop that restarts the gateway in-process: the
//! lock and the event channel live for the whole process; config, listener and loop state are
//! rebuilt on each restart.

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::auth::{self, AuthOverlay};
use super::core::{Gateway, LoopExit};
use super::event::{Event, INBOX};
use super::{signals, RunContext};
use crate::cli::{self, GatewayCmd};
use crate::config::{self, Snapshot};
use crate::server::{self, http::HttpContext};
use crate::state::{lock, paths, StateDir};
use crate::threads;

const DEFAULT_PORT: u16 = 18789;

/// Runs the gateway until a signal stops it. `Err` carries the text to print before exit 1.
pub fn run(cmd: GatewayCmd) -> Result<(), String> {
    let state = StateDir::new(paths::resolve_state_dir());
    let config_path = paths::resolve_config_path(&state.root);
    let mut seen = config::watch::stamp(&config_path);
    let snap = config::read_snapshot(&config_path);
    if snap.exists && !snap.valid {
        return Err(snap.refusal_report());
    }
    gate_mode(&snap, cmd.allow_unconfigured)?;
    let _lock = take_lock(&state, &config_path)?;
    let snap = prepare_state(&state, snap)?;
    let (events_tx, events_rx) = bounded::<Event>(INBOX);
    signals::start(Arc::new(Mutex::new(events_tx.clone())));
    let mut snap = Arc::new(snap);
    let mut last_port = None;
    loop {
        let (exit, port) = run_once(
            &cmd,
            &state,
            snap.clone(),
            seen,
            last_port,
            &events_tx,
            &events_rx,
        )?;
        last_port = Some(port);
        match exit {
            LoopExit::Stop(_) => {
                // The last turns' usage, still owed to sessions.json.
                if !crate::agent::write_behind::flush(Duration::from_secs(2)) {
                    log::warn!(target: "gateway", "sessions.json writes still pending at exit");
                }
                break;
            }
            LoopExit::Restart(reason) => {
                log::info!(target: "gateway", "restarting in-process ({reason})");
                seen = config::watch::stamp(&config_path);
                let fresh = config::read_snapshot(&config_path);
                if fresh.valid {
                    snap = Arc::new(fresh);
                } else {
                    log::warn!(target: "gateway", "config invalid after change; restarting with the last valid config");
                }
            }
        }
    }
    log::info!(target: "gateway", "gateway stopped");
    crate::logging::flush_file();
    Ok(())
}

/// Upstream's mode gate, skipped by `--allow-unconfigured`.
fn gate_mode(snap: &Snapshot, allow_unconfigured: bool) -> Result<(), String> {
    if allow_unconfigured {
        return Ok(());
    }
    if !snap.exists {
        return Err("Missing config. Run `moltbot setup` or set gateway.mode=local (or pass --allow-unconfigured).".into());
    }
    match snap.config.pointer("/gateway/mode").and_then(Value::as_str) {
        Some("local") => Ok(()),
        other => Err(format!(
            "Gateway start blocked: set gateway.mode=local (current: {}) or pass --allow-unconfigured.",
            other.unwrap_or("unset")
        )),
    }
}

fn take_lock(state: &StateDir, config_path: &Path) -> Result<Option<lock::GatewayLock>, String> {
    if paths::env_nonempty("CLAWDBOT_ALLOW_MULTI_GATEWAY").as_deref() == Some("1") {
        return Ok(None);
    }
    lock::acquire(&state.root, config_path)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Creates the state layout and, like upstream's plugin auto-enable, writes a minimal config
/// when there is none but a channel token is in the environment.
fn prepare_state(state: &StateDir, snap: Snapshot) -> Result<Snapshot, String> {
    let agent = config::default_agent_id(&snap.config);
    state
        .ensure_layout(&agent)
        .map_err(|e| format!("failed to create state dir {}: {e}", state.root.display()))?;
    if snap.exists {
        return Ok(snap);
    }
    let plugins: Vec<&str> = [
        ("DISCORD_BOT_TOKEN", "discord"),
        ("TELEGRAM_BOT_TOKEN", "telegram"),
    ]
    .iter()
    .filter(|(var, _)| paths::env_nonempty(var).is_some())
    .map(|(_, id)| *id)
    .collect();
    if plugins.is_empty() {
        return Ok(snap);
    }
    let mut entries = serde_json::Map::new();
    for id in &plugins {
        entries.insert(id.to_string(), serde_json::json!({"enabled": true}));
    }
    let minimal = serde_json::json!({
        "plugins": {"entries": entries},
        "messages": {"ackReactionScope": "group-mentions"},
        "agents": {"defaults": {"maxConcurrent": 4, "subagents": {"maxConcurrent": 8}, "compaction": {"mode": "safeguard"}}},
    });
    config::write::write_config(&snap.path, &minimal)
        .map_err(|e| format!("failed to write {}: {e}", snap.path.display()))?;
    log::info!(target: "gateway", "wrote {} (enabled plugins: {})", snap.path.display(), plugins.join(", "));
    Ok(config::read_snapshot(&snap.path))
}

/// Port: `--port` > `CLAWDBOT_GATEWAY_PORT` (positive integer, else ignored) > `gateway.port` > 18789.
fn resolve_port(cmd: &GatewayCmd, cfg: &Value) -> Result<u16, String> {
    if let Some(raw) = &cmd.port {
        return cli::parse_port(raw);
    }
    let env_port = paths::env_twin("GATEWAY_PORT")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0);
    let cfg_port = cfg
        .pointer("/gateway/port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok());
    Ok(env_port.or(cfg_port).unwrap_or(DEFAULT_PORT))
}

fn resolve_bind(cmd: &GatewayCmd, cfg: &Value) -> Result<String, String> {
    if let Some(b) = &cmd.bind {
        cli::check_bind(b)?;
        return Ok(b.clone());
    }
    Ok(cfg
        .pointer("/gateway/bind")
        .and_then(Value::as_str)
        .unwrap_or("loopback")
        .to_string())
}

fn bindable(ip: IpAddr) -> bool {
    TcpListener::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The address a bind mode listens on (upstream's table; tailnet = a 100.64.0.0/10 address).
fn bind_host(mode: &str) -> IpAddr {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    match mode {
        "lan" | "custom" => any,
        "tailnet" => tailnet_ip()
            .map(IpAddr::V4)
            .filter(|ip| bindable(*ip))
            .unwrap_or(if bindable(loopback) { loopback } else { any }),
        _ => {
            if bindable(loopback) {
                loopback
            } else {
                any
            }
        }
    }
}

/// A local address in Tailscale's CGNAT range, from the kernel's routing table.
fn tailnet_ip() -> Option<Ipv4Addr> {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let lines: Vec<&str> = trie.lines().collect();
    lines.windows(2).find_map(|w| {
        let ip: Ipv4Addr = w[0].trim().trim_start_matches("|--").trim().parse().ok()?;
        let o = ip.octets();
        (w[1].contains("/32 host LOCAL") && o[0] == 100 && (64..128).contains(&o[1])).then_some(ip)
    })
}

fn ws_url(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(ip) => format!("ws://[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("ws://{ip}:{}", addr.port()),
    }
}

fn bind_listener(host: IpAddr, port: u16) -> Result<TcpListener, String> {
    let addr = SocketAddr::new(host, port);
    TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("Gateway failed to start: another gateway instance is already listening on {}\nIf the gateway is supervised, stop it with: moltbot gateway stop", ws_url(addr))
        } else {
            format!("Gateway failed to start: failed to bind gateway socket on {}: {e}\nIf the gateway is supervised, stop it with: moltbot gateway stop", ws_url(addr))
        }
    })
}

/// One life of the gateway between (re)starts. `last_port` keeps an OS-chosen port (`--port 0`)
/// stable across in-process restarts.
fn run_once(
    cmd: &GatewayCmd,
    state: &StateDir,
    snap: Arc<Snapshot>,
    seen: config::watch::Stamp,
    last_port: Option<u16>,
    events_tx: &Sender<Event>,
    events_rx: &Receiver<Event>,
) -> Result<(LoopExit, u16), String> {
    let cfg = &snap.config;
    let port = match (resolve_port(cmd, cfg)?, last_port) {
        (0, Some(previous)) => previous,
        (p, _) => p,
    };
    let bind_mode = resolve_bind(cmd, cfg)?;
    if let Some(a) = &cmd.auth {
        cli::check_auth(a)?;
    }
    let overlay = AuthOverlay {
        mode: cmd.auth.clone(),
        token: cmd.token.clone(),
        password: cmd.password.clone(),
    };
    let resolved = auth::resolve(cfg, &overlay);
    let host = bind_host(&bind_mode);
    if let Some(refusal) = auth::startup_refusal(&resolved, &bind_mode, host.is_loopback(), cfg) {
        return Err(refusal);
    }
    crate::logging::set_file(
        cfg.pointer("/logging/file")
            .and_then(Value::as_str)
            .map(paths::expand_user),
    );
    let listener = bind_listener(host, port)?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("Gateway failed to start: {e}"))?;
    let alias = (host == IpAddr::V4(Ipv4Addr::LOCALHOST))
        .then(|| bind_ipv6_alias(addr.port()))
        .flatten();
    let has_alias = alias.is_some();
    let listeners: Vec<TcpListener> = std::iter::once(listener).chain(alias).collect();
    let http = Arc::new(HttpContext {
        events: Some(events_tx.clone()),
        ..Default::default()
    });
    let mut ctx = RunContext {
        state: state.clone(),
        config_path: snap.path.clone(),
        auth: resolved,
        bind_mode,
        bind_host: host,
        port: addr.port(),
        version: super::version(),
        hostname: crate::util::hostname(),
        primary_ip: if host.is_unspecified() {
            "0.0.0.0".into()
        } else {
            host.to_string()
        },
        listener: None,
        http: http.clone(),
        events: events_tx.clone(),
    };
    let mut server = server::start(
        listeners,
        super::listener_settings(cfg),
        http,
        events_tx.clone(),
    )
    .map_err(|e| format!("Gateway failed to start: {e}"))?;
    ctx.listener = Some(server.shared.clone());
    ctx.apply_hot_settings(&snap);
    // Derived ports follow the effective one, as upstream's process.env write does.
    std::env::set_var("CLAWDBOT_GATEWAY_PORT", addr.port().to_string());
    log_startup(cfg, addr, has_alias);
    let (watch_stop, watch_rx) = bounded::<()>(1);
    let debounce = Duration::from_millis(
        cfg.pointer("/gateway/reload/debounceMs")
            .and_then(Value::as_u64)
            .unwrap_or(300),
    );
    let (path, tx) = (snap.path.clone(), events_tx.clone());
    let watcher = threads::spawn_named("config-watch", threads::STACK_SMALL, move || {
        config::watch::run(path, seen, debounce, tx, watch_rx)
    });
    let mut gw = Gateway::new(ctx, snap);
    gw.refresh_health(false);
    let exit = gw.run(events_rx);
    let restarting = matches!(exit, LoopExit::Restart(_));
    server.stop();
    gw.close_all(events_rx, restarting);
    drop(watch_stop);
    if let Ok(w) = watcher {
        let _ = w.join();
    }
    Ok((exit, addr.port()))
}

/// With bind host 127.0.0.1 upstream also listens on `::1`; failure only warns.
fn bind_ipv6_alias(port: u16) -> Option<TcpListener> {
    let addr = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), port);
    match TcpListener::bind(addr) {
        Ok(l) => Some(l),
        Err(e) => {
            log::warn!(target: "gateway", "gateway: failed to bind loopback alias ::1:{port} ({e})");
            None
        }
    }
}

fn log_startup(cfg: &Value, addr: SocketAddr, alias: bool) {
    let model = cfg
        .pointer("/agents/defaults/model/primary")
        .and_then(Value::as_str)
        .unwrap_or("anthropic/claude-opus-4-5");
    log::info!(target: "gateway", "agent model: {model}");
    log::info!(target: "gateway", "listening on {} (PID {})", ws_url(addr), std::process::id());
    if alias {
        log::info!(target: "gateway", "listening on ws://[::1]:{}", addr.port());
    }
    log::info!(target: "gateway", "log file: {}", crate::logging::current_file().display());
}
