//! Moltbot gateway library: a synchronous gateway that connects chat channels to LLM agents and
//! serves the Control UI and the protocol-v3 WebSocket API on one port. ARCHITECTURE.md maps the
//! threads, their owners and the messages between them.

// Handshake refusals and tungstenite's upgrade refusal are large error values on cold paths;
// boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod agent;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod logging;
pub mod memory;
pub mod pairing;
pub mod routing;
pub mod server;
pub mod state;
pub mod threads;
pub mod ui;
pub mod util;
