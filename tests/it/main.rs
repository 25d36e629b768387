//! Integration tests: each starts the real `moltbot` binary on 127.0.0.1:0 with a temp state dir
//! and talks to it over real sockets.

#[path = "../fakes/llm.rs"]
mod llm;
mod support;

/// The tool loop, retry layers and compaction against the fake LLM.
mod agent_loop;
/// Agent turns over WebSocket against the loopback fake LLM.
mod chat;

/// A chat turn against a Gemini model (`google-generative-ai`) on the fake.
mod gemini;

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
/// `POST /v1/chat/completions`: gating, auth, JSON and SSE shapes, routing, failures.
mod openai_http;
/// The official `openai` Python SDK against the endpoint.
mod openai_sdk;
/// DM pairing stores through `pairing.*`.
mod pairing;
/// The provider connection kept alive between calls, and what retires it.
mod provider_connections;
/// sessions.patch/reset/delete/preview/resolve/compact against a seeded store and transcript.
mod sessions;
/// In-memory copies between turns never hide changes made on disk.
mod turn_caches;
/// When a turn's transcript header and its usage reach the disk.
mod turn_writes;
