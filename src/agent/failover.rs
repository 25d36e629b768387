//! Model failover: the run error type, coercion of errors into failover reasons
//! (`failover-error.ts`), the candidate chain primary → fallbacks → configured primary with the
//! allowlist and the "all profiles cooling" skip, and the fallback loop (`model-fallback.ts`).
//! The text classifier, user-facing texts and the retry-layer data are in the submodules.

pub mod classify;
pub mod error;
pub mod pattern;
pub mod retry;
pub mod thinking;
pub mod user_text;

use serde_json::Value;

pub use classify::FailoverReason;
pub use error::{
    assistant_failure_fallback_text, coerce_to_failover_error, context_window_too_small_error,
    is_timeout_error, is_user_abort, no_available_profile_message,
    resolve_failover_reason_from_error, resolve_failover_status, ErrorKind, RunError,
};

use crate::agent::auth::{is_profile_in_cooldown, resolve_auth_profile_order, AuthStore};
use crate::agent::models::{
    build_model_alias_index, model_key, parse_model_ref, resolve_configured_model_ref,
    resolve_model_ref_from_string, ModelRef, DEFAULT_MODEL, DEFAULT_PROVIDER,
};

/// run.ts converts provider errors into a `FailoverError` only when
/// `agents.defaults.model.fallbacks` is non-empty (per-agent lists are ignored here, as there).
pub fn fallback_configured(config: &Value) -> bool {
    config
        .pointer("/agents/defaults/model/fallbacks")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty())
}

/// `agents.list[<agent>].model.fallbacks` when the key is present (even `[]`).
pub fn agent_fallbacks_override(config: &Value, agent_id: &str) -> Option<Vec<String>> {
    let entry = crate::agent::models::agent_entry(config, agent_id)?;
    let model = entry.get("model")?.as_object()?;
    let list = model.get("fallbacks")?.as_array()?;
    Some(list.iter().map(value_text).collect())
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn allowed_model_keys(config: &Value, default_provider: &str) -> Option<Vec<String>> {
    let map = config.pointer("/agents/defaults/models")?.as_object()?;
    let keys: Vec<String> = map
        .keys()
        .filter_map(|raw| parse_model_ref(raw, default_provider))
        .map(|r| model_key(&r.provider, &r.model))
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// `resolveFallbackCandidates`: the requested model (empty halves default to the configured
/// primary), then each fallback (alias-resolved, allowlist-checked), then — only without an
/// override — the configured primary; de-duplicated by `provider/model`.
pub fn resolve_fallback_candidates(
    config: &Value,
    provider: &str,
    model: &str,
    fallbacks_override: Option<&[String]>,
) -> Vec<ModelRef> {
    let primary = resolve_configured_model_ref(config, DEFAULT_PROVIDER, DEFAULT_MODEL);
    let provider = non_empty_or(provider, &primary.provider);
    let model = non_empty_or(model, &primary.model);
    let aliases = build_model_alias_index(config, &primary.provider);
    let allowlist = allowed_model_keys(config, &primary.provider);
    let mut out: Vec<ModelRef> = Vec::new();
    let mut add = |cand: ModelRef, enforce: bool| {
        if cand.provider.is_empty() || cand.model.is_empty() {
            return;
        }
        let key = model_key(&cand.provider, &cand.model);
        let listed = allowlist.as_ref().is_none_or(|a| a.contains(&key));
        if out.iter().any(|c| model_key(&c.provider, &c.model) == key) || (enforce && !listed) {
            return;
        }
        out.push(cand);
    };
    add(ModelRef { provider, model }, false);
    let configured: Vec<String> = match fallbacks_override {
        Some(list) => list.to_vec(),
        None => config
            .pointer("/agents/defaults/model/fallbacks")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(value_text).collect())
            .unwrap_or_default(),
    };
    for raw in &configured {
        if let Some(r) = resolve_model_ref_from_string(raw, &primary.provider, Some(&aliases)) {
            add(r.model_ref, true);
        }
    }
    if fallbacks_override.is_none() {
        add(primary.clone(), false);
    }
    out
}

fn non_empty_or(value: &str, fallback: &str) -> String {
    let t = value.trim();
    if t.is_empty() {
        fallback.to_string()
    } else {
        t.to_string()
    }
}

/// One failed (or skipped) candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackAttempt {
    pub provider: String,
    pub model: String,
    pub error: String,
    pub reason: Option<FailoverReason>,
    pub status: Option<u16>,
    pub code: Option<String>,
}

/// The winning candidate and what failed before it.
#[derive(Debug)]
pub struct FallbackSuccess<T> {
    pub result: T,
    pub provider: String,
    pub model: String,
    pub attempts: Vec<FallbackAttempt>,
}

/// Inputs of [`run_with_model_fallback`].
pub struct FallbackParams<'a> {
    pub config: &'a Value,
    pub provider: &'a str,
    pub model: &'a str,
    /// The agent's auth store, loaded once before the loop as upstream does; `None` disables
    /// the cooldown skip.
    pub auth_store: Option<&'a AuthStore>,
    pub fallbacks_override: Option<&'a [String]>,
    pub now_ms: u64,
}

/// Called after each failed candidate: (attempt, 1-based index, total candidates).
pub type OnFallbackError<'a> = &'a mut dyn FnMut(&FallbackAttempt, usize, usize);

/// `runWithModelFallback`: try each candidate in order; failover-worthy errors move on, a user
/// abort or any other error is returned at once. A single failure is returned as is; two or
/// more become `All models failed (<n>): <p>/<m>: <error> (<reason>) | ...`.
pub fn run_with_model_fallback<T>(
    params: &FallbackParams<'_>,
    run: &mut dyn FnMut(&str, &str) -> Result<T, RunError>,
    mut on_error: Option<OnFallbackError<'_>>,
) -> Result<FallbackSuccess<T>, RunError> {
    let candidates = resolve_fallback_candidates(
        params.config,
        params.provider,
        params.model,
        params.fallbacks_override,
    );
    let mut attempts: Vec<FallbackAttempt> = Vec::new();
    let mut last_error: Option<RunError> = None;
    for (i, cand) in candidates.iter().enumerate() {
        if let Some(skip) = cooldown_skip(params, cand) {
            attempts.push(skip);
            continue;
        }
        let err = match run(&cand.provider, &cand.model) {
            Ok(result) => return Ok(success(result, cand, attempts)),
            Err(err) => err,
        };
        if is_user_abort(&err) {
            return Err(err);
        }
        let Some(normalized) =
            coerce_to_failover_error(&err, Some(&cand.provider), Some(&cand.model), None)
        else {
            return Err(err);
        };
        let attempt = describe_attempt(cand, &normalized);
        if let Some(cb) = on_error.as_mut() {
            cb(&attempt, i + 1, candidates.len());
        }
        attempts.push(attempt);
        last_error = Some(normalized);
    }
    Err(all_failed(attempts, last_error, candidates.len()))
}

fn success<T>(result: T, cand: &ModelRef, attempts: Vec<FallbackAttempt>) -> FallbackSuccess<T> {
    FallbackSuccess {
        result,
        provider: cand.provider.clone(),
        model: cand.model.clone(),
        attempts,
    }
}

/// Skips a candidate whose provider has profiles and all of them are cooling down.
fn cooldown_skip(params: &FallbackParams<'_>, cand: &ModelRef) -> Option<FallbackAttempt> {
    let store = params.auth_store?;
    let ids = resolve_auth_profile_order(params.config, store, &cand.provider, None, params.now_ms);
    let any_available = ids
        .iter()
        .any(|id| !is_profile_in_cooldown(store, id, params.now_ms));
    if ids.is_empty() || any_available {
        return None;
    }
    Some(FallbackAttempt {
        provider: cand.provider.clone(),
        model: cand.model.clone(),
        error: format!(
            "Provider {} is in cooldown (all profiles unavailable)",
            cand.provider
        ),
        reason: Some(FailoverReason::RateLimit),
        status: None,
        code: None,
    })
}

fn describe_attempt(cand: &ModelRef, err: &RunError) -> FallbackAttempt {
    FallbackAttempt {
        provider: cand.provider.clone(),
        model: cand.model.clone(),
        error: err.message.clone(),
        reason: err.failover_reason(),
        status: err.status,
        code: err.code.clone(),
    }
}

fn all_failed(
    attempts: Vec<FallbackAttempt>,
    last: Option<RunError>,
    candidates: usize,
) -> RunError {
    if attempts.len() <= 1 {
        if let Some(err) = last {
            return err;
        }
    }
    let summary = if attempts.is_empty() {
        "unknown".to_string()
    } else {
        attempts
            .iter()
            .map(|a| {
                let reason = a
                    .reason
                    .map(|r| format!(" ({})", r.as_str()))
                    .unwrap_or_default();
                format!("{}/{}: {}{reason}", a.provider, a.model, a.error)
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let n = if attempts.is_empty() {
        candidates
    } else {
        attempts.len()
    };
    let mut err = RunError::plain(format!("All models failed ({n}): {summary}"));
    err.cause = last.map(Box::new);
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gating_reads_only_defaults_fallbacks() {
        assert!(!fallback_configured(
            &json!({"agents": {"defaults": {"model": {"fallbacks": []}}}})
        ));
        assert!(fallback_configured(
            &json!({"agents": {"defaults": {"model": {"fallbacks": ["openai/gpt-5.2"]}}}})
        ));
        let cfg = json!({"agents": {"list": [{"id": "Work", "model": {"primary": "x/y", "fallbacks": []}}, {"id": "b", "model": "x/y"}]}});
        assert_eq!(agent_fallbacks_override(&cfg, "work"), Some(vec![]));
        assert_eq!(agent_fallbacks_override(&cfg, "b"), None);
    }

    #[test]
    fn allowlist_filters_fallbacks_but_not_the_request() {
        let cfg = json!({"agents": {"defaults": {
            "model": {"primary": "anthropic/claude-opus-4-5", "fallbacks": ["openai/gpt-5.2", "fast", "google/gemini-3-pro"]},
            "models": {"anthropic/claude-opus-4-5": {}, "anthropic/claude-haiku-4-5": {"alias": "fast"}}
        }}});
        let c = resolve_fallback_candidates(&cfg, "openrouter", "x/y", None);
        let keys: Vec<String> = c.iter().map(|r| model_key(&r.provider, &r.model)).collect();
        assert_eq!(
            keys,
            [
                "openrouter/x/y",
                "anthropic/claude-haiku-4-5",
                "anthropic/claude-opus-4-5"
            ]
        );
    }
}
