//! Model references and selection: `provider/model` parsing and normalisation, aliases and the
//! allowlist from `agents.defaults.models`, which model a run uses, the default thinking level,
//! context-window resolution and its 16k/32k guard, and the loader's model defaults
//! (upstream `model-selection.ts`, `context-window-guard.ts`, `config/defaults.ts`). The
//! embedded catalog, `models.providers` overrides and `models.list` are in [`registry`].

pub mod context_window;
pub mod defaults;
pub mod registry;

use std::collections::HashMap;
use std::fmt;

use serde_json::{json, Map, Value};

pub use context_window::{
    check_context_window, evaluate_context_window_guard, resolve_context_window_info,
    ContextWindowGuard, ContextWindowInfo, ContextWindowSource, CONTEXT_WINDOW_HARD_MIN_TOKENS,
    CONTEXT_WINDOW_WARN_BELOW_TOKENS,
};
pub(crate) use defaults::number;
pub use defaults::{apply_model_config_defaults, DEFAULT_MODEL_ALIASES};
pub use registry::{
    builtin_models, models_list_payload, resolve_model, CatalogEntry, Cost, Registry, ResolvedModel,
};

pub const DEFAULT_PROVIDER: &str = "anthropic";
pub const DEFAULT_MODEL: &str = "claude-opus-4-5";
pub const DEFAULT_CONTEXT_TOKENS: u64 = 200_000;

/// A parsed `provider/model` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    pub fn new(provider: &str, model: &str) -> ModelRef {
        ModelRef {
            provider: provider.to_string(),
            model: model.to_string(),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

pub fn model_key(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}

/// Lowercases and maps the provider aliases upstream accepts.
pub fn normalize_provider_id(provider: &str) -> String {
    let lower = provider.trim().to_lowercase();
    match lower.as_str() {
        "z.ai" | "z-ai" => "zai".into(),
        "opencode-zen" => "opencode".into(),
        "qwen" => "qwen-portal".into(),
        _ => lower,
    }
}

/// CLI backends shell out instead of calling an HTTP API.
pub fn is_cli_provider(provider: &str, config: &Value) -> bool {
    let p = normalize_provider_id(provider);
    if p == "claude-cli" || p == "codex-cli" {
        return true;
    }
    config
        .pointer("/agents/defaults/cliBackends")
        .and_then(Value::as_object)
        .is_some_and(|m| m.keys().any(|k| normalize_provider_id(k) == p))
}

/// Bare Gemini 3 ids point at their `-preview` catalog entries.
pub fn normalize_google_model_id(id: &str) -> String {
    match id {
        "gemini-3-pro" => "gemini-3-pro-preview".into(),
        "gemini-3-flash" => "gemini-3-flash-preview".into(),
        _ => id.into(),
    }
}

fn normalize_anthropic_model_id(model: &str) -> String {
    let trimmed = model.trim();
    match trimmed.to_lowercase().as_str() {
        "opus-4.5" => "claude-opus-4-5".into(),
        "sonnet-4.5" => "claude-sonnet-4-5".into(),
        _ => trimmed.into(),
    }
}

fn normalize_provider_model_id(provider: &str, model: &str) -> String {
    match provider {
        "anthropic" => normalize_anthropic_model_id(model),
        "google" => normalize_google_model_id(model),
        _ => model.into(),
    }
}

/// Splits at the first `/` (a slash-less ref takes `default_provider`); `None` if a half is empty.
pub fn parse_model_ref(raw: &str, default_provider: &str) -> Option<ModelRef> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    let Some((p, m)) = trimmed.split_once('/') else {
        let provider = normalize_provider_id(default_provider);
        let model = normalize_provider_model_id(&provider, trimmed);
        return Some(ModelRef { provider, model });
    };
    let provider = normalize_provider_id(p.trim());
    let model = m.trim();
    if provider.is_empty() || model.is_empty() {
        return None;
    }
    let model = normalize_provider_model_id(&provider, model);
    Some(ModelRef { provider, model })
}

/// Aliases from `agents.defaults.models[key].alias` (case-insensitive lookup).
#[derive(Debug, Clone, Default)]
pub struct AliasIndex {
    /// lowercased alias → (alias as written, target)
    pub by_alias: HashMap<String, (String, ModelRef)>,
    /// `provider/model` → its aliases in config order
    pub by_key: HashMap<String, Vec<String>>,
}

pub fn build_model_alias_index(config: &Value, default_provider: &str) -> AliasIndex {
    let mut index = AliasIndex::default();
    let Some(models) = config
        .pointer("/agents/defaults/models")
        .and_then(Value::as_object)
    else {
        return index;
    };
    for (key, entry) in models {
        let Some(parsed) = parse_model_ref(key, default_provider) else {
            continue;
        };
        let alias = entry.get("alias").map(value_text).unwrap_or_default();
        let alias = alias.trim();
        if alias.is_empty() {
            continue;
        }
        index
            .by_key
            .entry(model_key(&parsed.provider, &parsed.model))
            .or_default()
            .push(alias.to_string());
        index
            .by_alias
            .insert(alias.to_lowercase(), (alias.to_string(), parsed));
    }
    index
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A resolved reference and the alias it came through, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRef {
    pub model_ref: ModelRef,
    pub alias: Option<String>,
}

/// A slash-less string is tried as an alias first, then parsed.
pub fn resolve_model_ref_from_string(
    raw: &str,
    default_provider: &str,
    aliases: Option<&AliasIndex>,
) -> Option<ResolvedRef> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    if !trimmed.contains('/') {
        if let Some((alias, r)) = aliases.and_then(|a| a.by_alias.get(&trimmed.to_lowercase())) {
            return Some(ResolvedRef {
                model_ref: r.clone(),
                alias: Some(alias.clone()),
            });
        }
    }
    let model_ref = parse_model_ref(trimmed, default_provider)?;
    Some(ResolvedRef {
        model_ref,
        alias: None,
    })
}

/// `agents.defaults.model` as a primary string (object `.primary` or, leniently, a string).
fn configured_primary(config: &Value) -> String {
    match config.pointer("/agents/defaults/model") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Object(o)) => o
            .get("primary")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The configured primary model; a slash-less non-alias becomes `anthropic/<x>` with
/// upstream's deprecation warning.
pub fn resolve_configured_model_ref(
    config: &Value,
    default_provider: &str,
    default_model: &str,
) -> ModelRef {
    let raw = configured_primary(config);
    if !raw.is_empty() {
        let aliases = build_model_alias_index(config, default_provider);
        if !raw.contains('/') {
            if let Some((_, r)) = aliases.by_alias.get(&raw.to_lowercase()) {
                return r.clone();
            }
            log::warn!(
                "[moltbot] Model \"{raw}\" specified without provider. Falling back to \"anthropic/{raw}\". Please use \"anthropic/{raw}\" in your config."
            );
            return ModelRef::new("anthropic", &raw);
        }
        if let Some(r) = resolve_model_ref_from_string(&raw, default_provider, Some(&aliases)) {
            return r.model_ref;
        }
    }
    ModelRef::new(default_provider, default_model)
}

/// The `agents.list[]` entry whose normalised id is `agent_id`.
pub fn agent_entry<'a>(config: &'a Value, agent_id: &str) -> Option<&'a Map<String, Value>> {
    let id = crate::config::normalize_agent_id(agent_id);
    config
        .pointer("/agents/list")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|e| {
            e.get("id")
                .and_then(Value::as_str)
                .is_some_and(|raw| crate::config::normalize_agent_id(raw) == id)
        })
}

/// `agents.list[<agent>].model` (string, or the object's `primary`), trimmed and non-empty.
pub fn agent_model_primary(config: &Value, agent_id: &str) -> Option<String> {
    let raw = match agent_entry(config, agent_id)?.get("model")? {
        Value::String(s) => s.trim().to_string(),
        Value::Object(o) => o.get("primary").and_then(Value::as_str)?.trim().to_string(),
        _ => return None,
    };
    (!raw.is_empty()).then_some(raw)
}

/// The agent's default model: its own primary overrides `agents.defaults.model.primary`.
pub fn resolve_default_model_for_agent(config: &Value, agent_id: Option<&str>) -> ModelRef {
    let Some(primary) = agent_id.and_then(|id| agent_model_primary(config, id)) else {
        return resolve_configured_model_ref(config, DEFAULT_PROVIDER, DEFAULT_MODEL);
    };
    let mut cfg = config.clone();
    set_defaults_primary(&mut cfg, &primary);
    resolve_configured_model_ref(&cfg, DEFAULT_PROVIDER, DEFAULT_MODEL)
}

fn set_defaults_primary(cfg: &mut Value, primary: &str) {
    let fallbacks = cfg.pointer("/agents/defaults/model/fallbacks").cloned();
    let mut model = json!({ "primary": primary });
    if let Some(f) = fallbacks {
        model["fallbacks"] = f;
    }
    if !cfg.is_object() {
        *cfg = json!({});
    }
    let agents = object_at(cfg, "agents");
    let defaults = object_at(agents, "defaults");
    defaults["model"] = model;
}

fn object_at<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    &mut v[key]
}

/// What `/model` and fallbacks may use (`buildAllowedModelSet`).
#[derive(Debug, Clone)]
pub struct AllowedModels {
    pub allow_any: bool,
    pub allowed_catalog: Vec<CatalogEntry>,
    pub allowed_keys: Vec<String>,
}

impl AllowedModels {
    pub fn allows(&self, key: &str) -> bool {
        self.allow_any || self.allowed_keys.iter().any(|k| k == key)
    }
}

/// A non-empty `agents.defaults.models` is the allowlist: a key survives if it is a CLI
/// provider, in the catalog, or its provider is configured under `models.providers`; the
/// default model is always allowed; if nothing survives, anything is allowed.
pub fn build_allowed_model_set(
    config: &Value,
    catalog: &[CatalogEntry],
    default_provider: &str,
    default_model: Option<&str>,
) -> AllowedModels {
    let keys: Vec<&String> = config
        .pointer("/agents/defaults/models")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let default_key = default_model
        .map(str::trim)
        .filter(|m| !m.is_empty() && !default_provider.is_empty())
        .map(|m| model_key(default_provider, m));
    let catalog_keys: Vec<String> = catalog
        .iter()
        .map(|e| model_key(&e.provider, &e.id))
        .collect();
    let allow_all = |mut keys: Vec<String>| {
        keys.extend(default_key.clone());
        AllowedModels {
            allow_any: true,
            allowed_catalog: catalog.to_vec(),
            allowed_keys: keys,
        }
    };
    if keys.is_empty() {
        return allow_all(catalog_keys);
    }
    let providers = config
        .pointer("/models/providers")
        .and_then(Value::as_object);
    let mut allowed: Vec<String> = Vec::new();
    for raw in keys {
        let Some(r) = parse_model_ref(raw, default_provider) else {
            continue;
        };
        let key = model_key(&r.provider, &r.model);
        let configured = providers.is_some_and(|p| {
            p.get(&normalize_provider_id(&r.provider))
                .is_some_and(|v| !v.is_null())
        });
        if is_cli_provider(&r.provider, config) || catalog_keys.contains(&key) || configured {
            push_unique(&mut allowed, key);
        }
    }
    if let Some(k) = &default_key {
        push_unique(&mut allowed, k.clone());
    }
    let allowed_catalog: Vec<CatalogEntry> = catalog
        .iter()
        .filter(|e| allowed.contains(&model_key(&e.provider, &e.id)))
        .cloned()
        .collect();
    if allowed_catalog.is_empty() && allowed.is_empty() {
        return allow_all(catalog_keys);
    }
    AllowedModels {
        allow_any: false,
        allowed_catalog,
        allowed_keys: allowed,
    }
}

fn push_unique(list: &mut Vec<String>, key: String) {
    if !list.contains(&key) {
        list.push(key);
    }
}

/// `/model <raw>`: `Ok((ref, key))` or `invalid model: ...` / `model not allowed: ...`.
pub fn resolve_allowed_model_ref(
    config: &Value,
    catalog: &[CatalogEntry],
    raw: &str,
    default_provider: &str,
    default_model: Option<&str>,
) -> Result<(ModelRef, String), String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("invalid model: empty".into());
    }
    let aliases = build_model_alias_index(config, default_provider);
    let resolved = resolve_model_ref_from_string(trimmed, default_provider, Some(&aliases))
        .ok_or_else(|| format!("invalid model: {trimmed}"))?;
    let key = model_key(&resolved.model_ref.provider, &resolved.model_ref.model);
    let allowed = build_allowed_model_set(config, catalog, default_provider, default_model);
    if !allowed.allows(&key) {
        return Err(format!("model not allowed: {key}"));
    }
    Ok((resolved.model_ref, key))
}

/// `agents.defaults.thinkingDefault`, else `low` for catalog reasoning models, else `off`.
pub fn resolve_thinking_default(
    config: &Value,
    provider: &str,
    model: &str,
    catalog: &[CatalogEntry],
) -> String {
    if let Some(level) = config
        .pointer("/agents/defaults/thinkingDefault")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return level.to_string();
    }
    let reasoning = catalog
        .iter()
        .find(|e| e.provider == provider && e.id == model)
        .and_then(|e| e.reasoning)
        .unwrap_or(false);
    if reasoning { "low" } else { "off" }.to_string()
}

/// `- <alias>: <model>` lines for the system prompt, sorted by alias.
pub fn model_alias_lines(config: &Value) -> Vec<String> {
    let Some(models) = config
        .pointer("/agents/defaults/models")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut entries: Vec<(String, String)> = models
        .iter()
        .filter_map(|(key, entry)| {
            let model = key.trim();
            let alias = entry.get("alias").map(value_text).unwrap_or_default();
            let alias = alias.trim();
            (!model.is_empty() && !alias.is_empty()).then(|| (alias.to_string(), model.to_string()))
        })
        .collect();
    entries.sort_by(|a, b| registry::locale_compare(&a.0, &b.0));
    entries
        .into_iter()
        .map(|(a, m)| format!("- {a}: {m}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_model_ids_per_provider() {
        assert_eq!(
            parse_model_ref("anthropic/Opus-4.5", "x"),
            Some(ModelRef::new("anthropic", "claude-opus-4-5"))
        );
        assert_eq!(
            parse_model_ref("google/gemini-3-flash", "x"),
            Some(ModelRef::new("google", "gemini-3-flash-preview"))
        );
        assert_eq!(
            parse_model_ref(" OpenRouter / anthropic/claude-sonnet-4-5 ", "x"),
            Some(ModelRef::new("openrouter", "anthropic/claude-sonnet-4-5"))
        );
        assert_eq!(
            parse_model_ref("sonnet-4.5", "anthropic"),
            Some(ModelRef::new("anthropic", "claude-sonnet-4-5"))
        );
    }

    #[test]
    fn agent_primary_overrides_defaults() {
        let cfg = json!({"agents": {
            "defaults": {"model": {"primary": "anthropic/claude-opus-4-5", "fallbacks": ["x/y"]}, "models": {"openai/gpt-5.2": {"alias": "gpt"}}},
            "list": [{"id": "main"}, {"id": "work", "model": "gpt"}, {"id": "obj", "model": {"primary": " openai/o3 "}}]
        }});
        assert_eq!(
            resolve_default_model_for_agent(&cfg, Some("work")),
            ModelRef::new("openai", "gpt-5.2")
        );
        assert_eq!(
            resolve_default_model_for_agent(&cfg, Some("obj")),
            ModelRef::new("openai", "o3")
        );
        assert_eq!(
            resolve_default_model_for_agent(&cfg, Some("main")),
            ModelRef::new("anthropic", "claude-opus-4-5")
        );
        assert_eq!(
            resolve_default_model_for_agent(&cfg, None),
            ModelRef::new("anthropic", "claude-opus-4-5")
        );
    }

    #[test]
    fn allowlist_rules() {
        let catalog = builtin_models()
            .iter()
            .map(CatalogEntry::from)
            .collect::<Vec<_>>();
        let cfg = json!({
            "agents": {"defaults": {"models": {"openai/gpt-5.2": {}, "fakechat/gpt-test": {}, "nope/x": {}, "claude-cli/opus": {}}}},
            "models": {"providers": {"fakechat": {"baseUrl": "http://x", "models": []}}}
        });
        let a = build_allowed_model_set(&cfg, &catalog, "anthropic", Some("claude-opus-4-5"));
        assert!(!a.allow_any);
        assert_eq!(
            a.allowed_keys,
            [
                "openai/gpt-5.2",
                "fakechat/gpt-test",
                "claude-cli/opus",
                "anthropic/claude-opus-4-5"
            ]
        );
        assert_eq!(a.allowed_catalog.len(), 2);
        assert_eq!(
            resolve_allowed_model_ref(
                &cfg,
                &catalog,
                "nope/x",
                "anthropic",
                Some("claude-opus-4-5")
            ),
            Err("model not allowed: nope/x".into())
        );
        assert_eq!(
            resolve_allowed_model_ref(&cfg, &catalog, " ", "anthropic", None),
            Err("invalid model: empty".into())
        );
        assert_eq!(
            resolve_allowed_model_ref(&cfg, &catalog, "/x", "anthropic", None),
            Err("invalid model: /x".into())
        );
        let none =
            build_allowed_model_set(&json!({}), &catalog, "anthropic", Some("claude-opus-4-5"));
        assert!(none.allow_any);
    }

    #[test]
    fn thinking_default_follows_catalog_reasoning() {
        let catalog = builtin_models()
            .iter()
            .map(CatalogEntry::from)
            .collect::<Vec<_>>();
        let empty = json!({});
        assert_eq!(
            resolve_thinking_default(&empty, "anthropic", "claude-opus-4-5", &catalog),
            "low"
        );
        assert_eq!(
            resolve_thinking_default(&empty, "openai", "gpt-4o", &catalog),
            "off"
        );
        let cfg = json!({"agents": {"defaults": {"thinkingDefault": "high"}}});
        assert_eq!(
            resolve_thinking_default(&cfg, "openai", "gpt-4o", &catalog),
            "high"
        );
    }
}
