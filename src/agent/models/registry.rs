//! The model registry: the embedded built-in catalog (`src/agent/catalog.json`, pi-ai 0.49.3's
//! generated table for anthropic, openai and google), `models.providers` applied over it
//! (override-only entries change `baseUrl`/`headers`; entries with models replace the
//! provider's built-ins), `resolveModel`'s inline and synthetic fallbacks, and the
//! `models.list` payload.

use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

use crate::config::Snapshot;

use serde_json::{json, Map, Value};

use super::{normalize_google_model_id, normalize_provider_id, DEFAULT_CONTEXT_TOKENS};

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// Everything the provider layer needs about one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    pub provider: String,
    pub model_id: String,
    pub name: String,
    /// `anthropic-messages`, `openai-responses`, `openai-completions`, `google-generative-ai`,
    /// ...; empty when a config model names none (upstream fails later in that case too).
    pub api: String,
    pub base_url: String,
    /// Provider headers, then model headers (a model header replaces a provider one).
    pub headers: Vec<(String, String)>,
    pub context_window: u64,
    pub max_tokens: u64,
    pub reasoning: bool,
    pub input: Vec<String>,
    pub cost: Cost,
    /// pi-ai `compat` flags for OpenAI-compatible servers, as configured.
    pub compat: Option<Value>,
    /// `authHeader: true`: also send `Authorization: Bearer <resolved key>`.
    pub auth_header: bool,
}

impl ResolvedModel {
    pub fn supports_images(&self) -> bool {
        self.input.iter().any(|i| i == "image")
    }
}

static BUILTIN: LazyLock<Vec<ResolvedModel>> = LazyLock::new(|| {
    let raw: Value = serde_json::from_str(include_str!("../catalog.json"))
        .unwrap_or_else(|e| panic!("embedded catalog.json is invalid: {e}"));
    let Some(providers) = raw.as_object() else {
        return Vec::new();
    };
    providers
        .iter()
        .flat_map(|(p, list)| {
            list.as_array()
                .into_iter()
                .flatten()
                .map(move |m| parse_model(p, m, None))
        })
        .collect()
});

/// The embedded catalog, in pi-ai's order.
pub fn builtin_models() -> &'static [ResolvedModel] {
    &BUILTIN
}

fn f64_at(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn positive(v: &Value, k: &str) -> Option<u64> {
    f64_at(v, k)
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| n as u64)
}

fn str_at(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn headers_of(v: &Value) -> Vec<(String, String)> {
    v.get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Adds or replaces headers, keeping first-seen order as a JavaScript object spread does.
fn merge_headers(base: &mut Vec<(String, String)>, over: Vec<(String, String)>) {
    for (k, v) in over {
        match base.iter_mut().find(|(bk, _)| *bk == k) {
            Some(slot) => slot.1 = v,
            None => base.push((k, v)),
        }
    }
}

/// One model object, with the loader's defaults for fields a config model may omit.
/// `provider_cfg` is the `models.providers` entry a config model belongs to.
fn parse_model(provider: &str, m: &Value, provider_cfg: Option<&Value>) -> ResolvedModel {
    let id = str_at(m, "id").unwrap_or_default();
    let cost = m.get("cost").cloned().unwrap_or(Value::Null);
    let context_window = positive(m, "contextWindow").unwrap_or(DEFAULT_CONTEXT_TOKENS);
    let api = str_at(m, "api")
        .filter(|a| !a.is_empty())
        .or_else(|| provider_cfg.and_then(|p| str_at(p, "api")))
        .unwrap_or_default();
    let base_url = str_at(m, "baseUrl")
        .or_else(|| provider_cfg.and_then(|p| str_at(p, "baseUrl")))
        .unwrap_or_default();
    ResolvedModel {
        provider: provider.to_string(),
        name: str_at(m, "name")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.clone()),
        model_id: id,
        api,
        base_url,
        headers: headers_of(m),
        context_window,
        max_tokens: positive(m, "maxTokens").unwrap_or(context_window.min(8192)),
        reasoning: m.get("reasoning").and_then(Value::as_bool).unwrap_or(false),
        input: m
            .get("input")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_else(|| vec!["text".into()]),
        cost: Cost {
            input: f64_at(&cost, "input").unwrap_or(0.0),
            output: f64_at(&cost, "output").unwrap_or(0.0),
            cache_read: f64_at(&cost, "cacheRead").unwrap_or(0.0),
            cache_write: f64_at(&cost, "cacheWrite").unwrap_or(0.0),
        },
        compat: m.get("compat").filter(|c| c.is_object()).cloned(),
        auth_header: false,
    }
}

/// pi's `normalizeModelCompat`: z.ai's OpenAI-compatible endpoint has no `developer` role.
fn normalize_compat(mut m: ResolvedModel) -> ResolvedModel {
    let is_zai = m.provider == "zai" || m.base_url.contains("api.z.ai");
    if !is_zai || m.api != "openai-completions" {
        return m;
    }
    let mut compat = m
        .compat
        .take()
        .and_then(|c| c.as_object().cloned())
        .unwrap_or_default();
    if compat.get("supportsDeveloperRole") != Some(&Value::Bool(false)) {
        compat.insert("supportsDeveloperRole".into(), Value::Bool(false));
    }
    m.compat = Some(Value::Object(compat));
    m
}

fn providers_cfg(config: &Value) -> Option<&Map<String, Value>> {
    config
        .pointer("/models/providers")
        .and_then(Value::as_object)
}

fn config_models(entry: &Value) -> &[Value] {
    entry
        .get("models")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Built-ins with `models.providers` applied, as pi's `ModelRegistry` sees them through the
/// generated `models.json`. (pi rejects the whole file when one provider entry is invalid;
/// here each entry stands alone, which gives the same result for every valid config.)
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub models: Vec<ResolvedModel>,
}

/// The registry of the newest config snapshot a turn used: built once per config load rather
/// than once per turn (it copies the whole built-in catalog).
static SHARED: parking_lot::Mutex<Option<(std::sync::Weak<Snapshot>, Arc<Registry>)>> =
    parking_lot::Mutex::new(None);

impl Registry {
    /// `from_config(&snapshot.config)`, shared by every turn on the same snapshot.
    pub fn for_snapshot(snapshot: &Arc<Snapshot>) -> Arc<Registry> {
        let mut slot = SHARED.lock();
        if let Some((of, registry)) = slot.as_ref() {
            if std::ptr::eq(of.as_ptr(), Arc::as_ptr(snapshot)) && of.strong_count() > 0 {
                return registry.clone();
            }
        }
        let registry = Arc::new(Registry::from_config(&snapshot.config));
        *slot = Some((Arc::downgrade(snapshot), registry.clone()));
        registry
    }

    pub fn from_config(config: &Value) -> Registry {
        let providers = providers_cfg(config);
        let entry = |p: &str| {
            providers
                .and_then(|m| m.iter().find(|(k, _)| k.trim() == p))
                .map(|(_, v)| v)
        };
        let mut models: Vec<ResolvedModel> = Vec::new();
        for m in builtin_models() {
            match entry(&m.provider) {
                Some(cfg) if !config_models(cfg).is_empty() => continue,
                Some(cfg) => models.push(apply_override(m.clone(), cfg)),
                None => models.push(m.clone()),
            }
        }
        for (key, cfg) in providers.into_iter().flatten() {
            models.extend(custom_models(key.trim(), cfg));
        }
        Registry { models }
    }

    /// Exact provider and id, as pi's `find`.
    pub fn find(&self, provider: &str, model_id: &str) -> Option<&ResolvedModel> {
        self.models
            .iter()
            .find(|m| m.provider == provider && m.model_id == model_id)
    }

    /// The `models.list` catalog: every model, sorted by provider then name.
    pub fn catalog(&self) -> Vec<CatalogEntry> {
        let mut entries: Vec<CatalogEntry> = self
            .models
            .iter()
            .filter(|m| !m.model_id.trim().is_empty() && !m.provider.trim().is_empty())
            .map(CatalogEntry::from)
            .collect();
        entries.sort_by(|a, b| {
            locale_compare(&a.provider, &b.provider).then_with(|| locale_compare(&a.name, &b.name))
        });
        entries
    }
}

/// Override-only entry (`models: []`): its `baseUrl` and `headers` apply to every built-in model.
fn apply_override(mut m: ResolvedModel, cfg: &Value) -> ResolvedModel {
    if let Some(url) = str_at(cfg, "baseUrl").filter(|u| !u.is_empty()) {
        m.base_url = url;
    }
    merge_headers(&mut m.headers, headers_of(cfg));
    m
}

/// An entry with models replaces the provider's built-ins; models without an `api` at model or
/// provider level are skipped, as pi does.
fn custom_models(provider: &str, cfg: &Value) -> Vec<ResolvedModel> {
    let auth_header = cfg
        .get("authHeader")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    config_models(cfg)
        .iter()
        .map(|raw| {
            let mut m = parse_model(provider, raw, Some(cfg));
            if provider == "google" {
                m.model_id = normalize_google_model_id(&m.model_id);
            }
            let mut headers = headers_of(cfg);
            merge_headers(&mut headers, m.headers);
            m.headers = headers;
            m.auth_header = auth_header;
            m
        })
        .filter(|m| !m.api.is_empty() && !m.model_id.is_empty())
        .collect()
}

/// `resolveModel`: the registry; else a config model of that (normalised) provider; else, when
/// `models.providers[provider]` exists or the id starts with `mock-`, a synthetic model;
/// else `Unknown model: <provider>/<id>` (a plain error, not failover-worthy).
pub fn resolve_model(
    config: &Value,
    registry: &Registry,
    provider: &str,
    model_id: &str,
) -> Result<ResolvedModel, String> {
    if let Some(m) = registry.find(provider, model_id) {
        return Ok(normalize_compat(m.clone()));
    }
    let providers = providers_cfg(config);
    let wanted = normalize_provider_id(provider);
    let inline = providers.into_iter().flatten().find_map(|(key, cfg)| {
        let key = key.trim();
        if key.is_empty() || normalize_provider_id(key) != wanted {
            return None;
        }
        let raw = config_models(cfg)
            .iter()
            .find(|m| m.get("id").and_then(Value::as_str) == Some(model_id))?;
        Some(parse_model(key, raw, Some(cfg)))
    });
    if let Some(m) = inline {
        return Ok(normalize_compat(m));
    }
    let provider_cfg = providers
        .and_then(|p| p.get(provider))
        .filter(|v| !v.is_null());
    if provider_cfg.is_some() || model_id.starts_with("mock-") {
        return Ok(normalize_compat(synthetic_model(
            provider,
            model_id,
            provider_cfg,
        )));
    }
    Err(format!("Unknown model: {provider}/{model_id}"))
}

fn synthetic_model(provider: &str, model_id: &str, cfg: Option<&Value>) -> ResolvedModel {
    let first = cfg.and_then(|c| config_models(c).first());
    let from_first = |k: &str| {
        first
            .and_then(|m| positive(m, k))
            .unwrap_or(DEFAULT_CONTEXT_TOKENS)
    };
    ResolvedModel {
        provider: provider.to_string(),
        model_id: model_id.to_string(),
        name: model_id.to_string(),
        api: cfg
            .and_then(|c| str_at(c, "api"))
            .unwrap_or_else(|| "openai-responses".into()),
        base_url: cfg.and_then(|c| str_at(c, "baseUrl")).unwrap_or_default(),
        headers: Vec::new(),
        context_window: from_first("contextWindow"),
        // Upstream falls back to DEFAULT_CONTEXT_TOKENS here too, not to 8192.
        max_tokens: from_first("maxTokens"),
        reasoning: false,
        input: vec!["text".into()],
        cost: Cost::default(),
        compat: None,
        auth_header: false,
    }
}

/// One `models.list` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub context_window: Option<u64>,
    pub reasoning: Option<bool>,
    pub input: Option<Vec<String>>,
}

impl From<&ResolvedModel> for CatalogEntry {
    fn from(m: &ResolvedModel) -> CatalogEntry {
        let id = m.model_id.trim().to_string();
        let name = m.name.trim();
        CatalogEntry {
            name: if name.is_empty() {
                id.clone()
            } else {
                name.to_string()
            },
            id,
            provider: m.provider.trim().to_string(),
            context_window: (m.context_window > 0).then_some(m.context_window),
            reasoning: Some(m.reasoning),
            input: Some(m.input.clone()),
        }
    }
}

impl CatalogEntry {
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("name".into(), json!(self.name));
        o.insert("provider".into(), json!(self.provider));
        if let Some(n) = self.context_window {
            o.insert("contextWindow".into(), json!(n));
        }
        if let Some(r) = self.reasoning {
            o.insert("reasoning".into(), json!(r));
        }
        if let Some(i) = &self.input {
            o.insert("input".into(), json!(i));
        }
        Value::Object(o)
    }
}

/// The `models.list` result: `{"models": [...]}`.
pub fn models_list_payload(catalog: &[CatalogEntry]) -> Value {
    json!({ "models": catalog.iter().map(CatalogEntry::to_json).collect::<Vec<_>>() })
}

/// ASCII punctuation in ICU root collation order (all before digits, digits before letters).
const PUNCT_ORDER: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

/// Primary weight of a character under an approximation of ICU root collation, which is what
/// `String.prototype.localeCompare` uses in Node: white space, punctuation, digits, letters
/// (case-insensitive), then everything else by code point.
fn primary(c: char) -> (u8, u32) {
    if c.is_whitespace() {
        return (0, c as u32);
    }
    if let Some(i) = PUNCT_ORDER.find(c) {
        return (1, i as u32);
    }
    if c.is_ascii_digit() {
        return (2, c as u32);
    }
    if c.is_alphabetic() {
        return (3, c.to_lowercase().next().unwrap_or(c) as u32);
    }
    (4, c as u32)
}

/// `a.localeCompare(b)` for the model names and ids the catalog holds: primary weights first,
/// then lowercase before uppercase at the first case difference.
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    let pa: Vec<(u8, u32)> = a.chars().map(primary).collect();
    let pb: Vec<(u8, u32)> = b.chars().map(primary).collect();
    pa.cmp(&pb).then_with(|| {
        a.chars()
            .zip(b.chars())
            .find(|(x, y)| x != y)
            .map_or(Ordering::Equal, |(x, y)| {
                x.is_uppercase().cmp(&y.is_uppercase())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_matches_pi_ai() {
        let opus = builtin_models()
            .iter()
            .find(|m| m.provider == "anthropic" && m.model_id == "claude-opus-4-5")
            .unwrap();
        assert_eq!(opus.api, "anthropic-messages");
        assert_eq!(opus.base_url, "https://api.anthropic.com");
        assert!(opus.reasoning && opus.supports_images());
        assert_eq!(
            opus.cost,
            Cost {
                input: 5.0,
                output: 25.0,
                cache_read: 0.5,
                cache_write: 6.25
            }
        );
        assert_eq!((opus.context_window, opus.max_tokens), (200_000, 64_000));
        let gpt = builtin_models()
            .iter()
            .find(|m| m.model_id == "gpt-5.2")
            .unwrap();
        assert_eq!(
            (gpt.api.as_str(), gpt.base_url.as_str()),
            ("openai-responses", "https://api.openai.com/v1")
        );
        let count = |p: &str| builtin_models().iter().filter(|m| m.provider == p).count();
        assert_eq!(
            (count("anthropic"), count("openai"), count("google")),
            (21, 34, 21)
        );
    }

    #[test]
    fn locale_order_is_case_insensitive_punctuation_first() {
        assert_eq!(locale_compare("a", "B"), Ordering::Less);
        assert_eq!(locale_compare("b", "A"), Ordering::Greater);
        assert_eq!(locale_compare("a", "A"), Ordering::Less);
        assert_eq!(locale_compare("GPT-4", "GPT-4.1"), Ordering::Less);
        assert_eq!(locale_compare("GPT-4 Turbo", "GPT-4.1"), Ordering::Less);
        assert_eq!(locale_compare("o1", "GPT-5"), Ordering::Greater);
        assert_eq!(locale_compare("x", "x"), Ordering::Equal);
    }
}
