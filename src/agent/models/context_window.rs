//! Context-window resolution and the guard run.ts applies before a model is used
//! (`context-window-guard.ts`): model metadata → `models.providers` → `agents.defaults.contextTokens`
//! → 200000; below 16000 tokens the model is refused, below 32000 a warning is logged.

use serde_json::Value;

use super::{ResolvedModel, DEFAULT_CONTEXT_TOKENS};

pub const CONTEXT_WINDOW_HARD_MIN_TOKENS: u64 = 16_000;
pub const CONTEXT_WINDOW_WARN_BELOW_TOKENS: u64 = 32_000;

/// Where a context-window figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextWindowSource {
    Model,
    ModelsConfig,
    AgentContextTokens,
    Default,
}

impl ContextWindowSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextWindowSource::Model => "model",
            ContextWindowSource::ModelsConfig => "modelsConfig",
            ContextWindowSource::AgentContextTokens => "agentContextTokens",
            ContextWindowSource::Default => "default",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextWindowInfo {
    pub tokens: u64,
    pub source: ContextWindowSource,
}

fn positive_int(v: Option<&Value>) -> Option<u64> {
    let n = v?.as_f64()?;
    (n.is_finite() && n.floor() > 0.0).then(|| n.floor() as u64)
}

/// Model metadata → `models.providers.<p>.models[id].contextWindow` →
/// `agents.defaults.contextTokens` → `default_tokens`.
pub fn resolve_context_window_info(
    config: &Value,
    provider: &str,
    model_id: &str,
    model_context_window: Option<u64>,
    default_tokens: u64,
) -> ContextWindowInfo {
    let info = |tokens, source| ContextWindowInfo { tokens, source };
    if let Some(n) = model_context_window.filter(|n| *n > 0) {
        return info(n, ContextWindowSource::Model);
    }
    let from_models = config
        .pointer("/models/providers")
        .and_then(|p| p.get(provider))
        .and_then(|p| p.get("models"))
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|m| m.get("id").and_then(Value::as_str) == Some(model_id))
        })
        .and_then(|m| positive_int(m.get("contextWindow")));
    if let Some(n) = from_models {
        return info(n, ContextWindowSource::ModelsConfig);
    }
    if let Some(n) = positive_int(config.pointer("/agents/defaults/contextTokens")) {
        return info(n, ContextWindowSource::AgentContextTokens);
    }
    info(default_tokens, ContextWindowSource::Default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextWindowGuard {
    pub tokens: u64,
    pub source: ContextWindowSource,
    pub should_warn: bool,
    pub should_block: bool,
}

/// Thresholds default to 32000 (warn) and 16000 (block); both are at least 1.
pub fn evaluate_context_window_guard(
    info: ContextWindowInfo,
    warn_below: Option<u64>,
    hard_min: Option<u64>,
) -> ContextWindowGuard {
    let warn_below = warn_below
        .unwrap_or(CONTEXT_WINDOW_WARN_BELOW_TOKENS)
        .max(1);
    let hard_min = hard_min.unwrap_or(CONTEXT_WINDOW_HARD_MIN_TOKENS).max(1);
    let t = info.tokens;
    ContextWindowGuard {
        tokens: t,
        source: info.source,
        should_warn: t > 0 && t < warn_below,
        should_block: t > 0 && t < hard_min,
    }
}

/// Runs the guard as run.ts does: logs the warning, and refuses a too-small window with the
/// failover error that advances the fallback chain.
pub fn check_context_window(
    config: &Value,
    model: &ResolvedModel,
) -> Result<ContextWindowGuard, crate::agent::failover::RunError> {
    let (p, id) = (&model.provider, &model.model_id);
    let info = resolve_context_window_info(
        config,
        p,
        id,
        Some(model.context_window),
        DEFAULT_CONTEXT_TOKENS,
    );
    let guard = evaluate_context_window_guard(info, None, None);
    let source = guard.source.as_str();
    if guard.should_warn {
        log::warn!(
            "low context window: {p}/{id} ctx={} (warn<{CONTEXT_WINDOW_WARN_BELOW_TOKENS}) source={source}",
            guard.tokens
        );
    }
    if guard.should_block {
        log::error!(
            "blocked model (context window too small): {p}/{id} ctx={} (min={CONTEXT_WINDOW_HARD_MIN_TOKENS}) source={source}",
            guard.tokens
        );
        return Err(crate::agent::failover::context_window_too_small_error(
            guard.tokens,
            p,
            id,
        ));
    }
    Ok(guard)
}
