//! Command-line flags (argh): `moltbot gateway [run] …` and `moltbot --version`. Flag checks only;
//! the meaning of each flag is applied in `gateway::boot`.

use argh::FromArgs;

/// Moltbot gateway: connects chat channels to LLM agents and serves the Control UI and the
/// WebSocket API (protocol v3) on one port.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Gateway(GatewayCmd),
}

/// Run the gateway (WebSocket + HTTP on one port) in the foreground.
#[derive(FromArgs, Debug, Default, Clone)]
#[argh(subcommand, name = "gateway")]
pub struct GatewayCmd {
    /// port to listen on (default: CLAWDBOT_GATEWAY_PORT, gateway.port, then 18789)
    #[argh(option)]
    pub port: Option<String>,

    /// bind mode: loopback (default), lan, auto, tailnet or custom
    #[argh(option)]
    pub bind: Option<String>,

    /// start even when gateway.mode is not "local" (as the Fly.io guide does)
    #[argh(switch)]
    pub allow_unconfigured: bool,

    /// shared token for this run (overrides gateway.auth.token; not written to config)
    #[argh(option)]
    pub token: Option<String>,

    /// shared password for this run (overrides gateway.auth.password; not written to config)
    #[argh(option)]
    pub password: Option<String>,

    /// auth mode for this run: token or password
    #[argh(option)]
    pub auth: Option<String>,

    /// log at debug level (same as RUST_LOG=debug)
    #[argh(switch)]
    pub verbose: bool,

    #[argh(subcommand)]
    pub sub: Option<GatewaySub>,
}

#[derive(FromArgs, Debug, Clone)]
#[argh(subcommand)]
pub enum GatewaySub {
    Run(RunCmd),
}

/// Same as `moltbot gateway` (upstream alias).
#[derive(FromArgs, Debug, Clone)]
#[argh(subcommand, name = "run")]
pub struct RunCmd {}

/// Bind modes accepted by `--bind` and `gateway.bind`.
pub const BIND_MODES: [&str; 5] = ["loopback", "lan", "tailnet", "auto", "custom"];

/// Parses `--port` as upstream does: a positive integer, else `Invalid port`.
pub fn parse_port(raw: &str) -> Result<u16, String> {
    match raw.trim().parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        // Port 0 lets the OS choose; tests use it to avoid collisions.
        Ok(0) if raw.trim() == "0" => Ok(0),
        _ => Err("Invalid port".to_string()),
    }
}

/// Checks `--bind`, with upstream's error text.
pub fn check_bind(raw: &str) -> Result<(), String> {
    if BIND_MODES.contains(&raw) {
        Ok(())
    } else {
        Err(r#"Invalid --bind (use "loopback", "lan", "tailnet", "auto", or "custom")"#.to_string())
    }
}

/// Checks `--auth`, with upstream's error text.
pub fn check_auth(raw: &str) -> Result<(), String> {
    if raw == "token" || raw == "password" {
        Ok(())
    } else {
        Err(r#"Invalid --auth (use "token" or "password")"#.to_string())
    }
}
