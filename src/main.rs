//! The `moltbot` binary: parse the command line and hand over to the gateway.

use moltbot::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    if matches!(cli.command, Some(Command::Gateway(_))) {
        moltbot::memory::reexec_with_tunables();
    }
    // Before any thread exists, so every thread inherits the mask and only the signal thread
    // receives SIGINT/SIGTERM/SIGUSR1.
    moltbot::gateway::signals::block_in_this_thread();
    moltbot::memory::configure_allocator();
    if cli.version {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Gateway(cmd)) => {
            if cmd.verbose && std::env::var_os("RUST_LOG").is_none() {
                std::env::set_var("RUST_LOG", "debug,tungstenite=info,tiny_http=info");
            }
            moltbot::logging::init();
            match moltbot::gateway::run(cmd) {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => {
                    eprintln!("{msg}");
                    moltbot::logging::flush_file();
                    ExitCode::from(1)
                }
            }
        }
        None => {
            eprintln!("Usage: moltbot gateway [--port N] [--bind loopback|lan|auto|tailnet|custom] [--allow-unconfigured] [--token T] [--password P]\nRun `moltbot --help` for details.");
            ExitCode::from(1)
        }
    }
}
