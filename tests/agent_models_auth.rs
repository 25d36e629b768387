//! Upstream's model-selection, fallback, failover-classifier, auth-profile and context-window
//! tests (agents.md section (c)) replayed against `moltbot::agent::{models, auth, failover}`.

// `RunError` is a large value on cold paths; the library allows this lint crate-wide too.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use moltbot::agent::auth::session_pin::{
    resolve_session_auth_profile_override, PinUpdate, SessionPinState,
};
use moltbot::agent::auth::{
    calculate_auth_profile_cooldown_ms, is_profile_in_cooldown, mark_auth_profile_failure,
    mark_auth_profile_used, resolve_auth_profile_order, AuthPaths, AuthStore,
};
use moltbot::agent::failover::classify::*;
use moltbot::agent::failover::user_text::*;
use moltbot::agent::failover::{
    coerce_to_failover_error, resolve_failover_reason_from_error, run_with_model_fallback,
    FailoverReason, FallbackParams, FallbackSuccess, RunError,
};
use moltbot::agent::models::*;
use moltbot::util::now_ms;
use serde_json::{json, Value};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mb-{tag}-{}", moltbot::util::uuid_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn store(v: Value) -> AuthStore {
    AuthStore::from_json(&v).expect("store json")
}

#[path = "agent_models_auth/auth_profiles.rs"]
mod auth_profiles;
#[path = "agent_models_auth/classifier_texts.rs"]
mod classifier_texts;
#[path = "agent_models_auth/registry_context.rs"]
mod registry_context;
#[path = "agent_models_auth/selection_fallback.rs"]
mod selection_fallback;

// ---- helpers shared by the modules ---------------------------------------------------------

fn fallback_cfg() -> Value {
    json!({"agents": {"defaults": {"model": {"primary": "openai/gpt-4.1-mini", "fallbacks": ["anthropic/claude-haiku-3-5"]}}}})
}

type Calls = Vec<(String, String)>;

/// Runs the fallback loop; `script` decides each call's outcome from (call index, provider, model).
fn run_fallback(
    cfg: &Value,
    provider: &str,
    model: &str,
    store: Option<&AuthStore>,
    over: Option<&[String]>,
    script: impl Fn(usize, &str, &str) -> Result<&'static str, RunError>,
) -> (Result<FallbackSuccess<&'static str>, RunError>, Calls) {
    let mut calls: Calls = Vec::new();
    let params = FallbackParams {
        config: cfg,
        provider,
        model,
        auth_store: store,
        fallbacks_override: over,
        now_ms: now_ms(),
    };
    let mut run = |p: &str, m: &str| {
        calls.push((p.into(), m.into()));
        script(calls.len() - 1, p, m)
    };
    let out = run_with_model_fallback(&params, &mut run, None);
    (out, calls)
}

fn first_fails(err: RunError) -> impl Fn(usize, &str, &str) -> Result<&'static str, RunError> {
    move |i, _, _| if i == 0 { Err(err.clone()) } else { Ok("ok") }
}
