//! Integration tests: each starts the real `moltbot` binary on 127.0.0.1:0 with a temp state dir
//! and talks to it over real sockets.

#[path = "../fakes/llm.rs"]
mod llm;
mod support;

/// Agent turns over WebSocket against the loopback fake LLM.
mod chat;

/// Config files at start: the seed config, invalid files, includes and env vars, writes.
mod config_files;
/// connect.challenge → connect → hello-ok, auth failures, device identity, Origin rule.
mod handshake;
/// Plain HTTP on the same port.
mod http;
/// Process lifecycle: lock, SIGKILL restart, SIGTERM shutdown, bind refusals, logs.
mod lifecycle;
/// Frames after the handshake: core methods, errors, bad and oversized frames.
mod methods;
/// DM pairing stores through `pairing.*`.
mod pairing;
/// sessions.patch/reset/delete/preview/resolve/compact against a seeded store and transcript.
mod sessions;
