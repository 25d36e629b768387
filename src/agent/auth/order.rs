//! Profile order for a provider (`auth-profiles/order.ts`): which stored profiles may serve it
//! and in which order they are tried, plus the config lookups key resolution shares.

use serde_json::Value;

use super::store::{AuthStore, Credential, CredentialKind};
use super::usage::{is_profile_in_cooldown, profile_unusable_until};
use crate::agent::models::normalize_provider_id;

pub(super) fn provider_config<'a>(config: &'a Value, provider: &str) -> Option<&'a Value> {
    let providers = config.pointer("/models/providers")?.as_object()?;
    if let Some(direct) = providers.get(provider) {
        return Some(direct);
    }
    let normalized = normalize_provider_id(provider);
    providers
        .get(&normalized)
        .filter(|_| normalized != provider)
        .or_else(|| {
            providers
                .iter()
                .find(|(k, _)| normalize_provider_id(k) == normalized)
                .map(|(_, v)| v)
        })
}

/// `models.providers.<p>.apiKey`, taken literally (the loader already substituted `${VAR}`).
pub fn custom_provider_api_key(config: &Value, provider: &str) -> Option<String> {
    let key = provider_config(config, provider)?
        .get("apiKey")?
        .as_str()?
        .trim();
    (!key.is_empty()).then(|| key.to_string())
}

pub(super) fn provider_auth_override(config: &Value, provider: &str) -> Option<&'static str> {
    let raw = provider_config(config, provider)?.get("auth")?.as_str()?;
    ["api-key", "aws-sdk", "oauth", "token"]
        .into_iter()
        .find(|m| *m == raw)
}

pub(super) fn config_profile<'a>(config: &'a Value, id: &str) -> Option<&'a Value> {
    config.pointer("/auth/profiles")?.as_object()?.get(id)
}

pub(super) fn config_text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Config `mode` must equal the credential type; `oauth` also accepts a `token` credential.
pub(super) fn mode_compatible(mode: &str, kind: CredentialKind) -> bool {
    mode == kind.as_str() || (mode == "oauth" && kind == CredentialKind::Token)
}

pub(super) fn expired(expires: Option<f64>, now_ms: u64) -> bool {
    expires.is_some_and(|e| e.is_finite() && e > 0.0 && now_ms as f64 >= e)
}

fn usable(c: &Credential, now_ms: u64) -> bool {
    let filled = |s: Option<&str>| s.is_some_and(|v| !v.trim().is_empty());
    match c.kind() {
        CredentialKind::ApiKey => filled(c.key()),
        CredentialKind::Token => filled(c.token_value()) && !expired(c.expires(), now_ms),
        CredentialKind::OAuth => filled(c.access()) || filled(c.refresh()),
    }
}

fn find_by_provider<'a, T>(
    entries: impl Iterator<Item = (&'a String, T)>,
    provider_key: &str,
) -> Option<T> {
    entries
        .into_iter()
        .find(|(k, _)| normalize_provider_id(k) == provider_key)
        .map(|(_, v)| v)
}

/// The base order: store `order[p]` → config `auth.order[p]` → config `auth.profiles` of `p`
/// → every store profile of `p`. `explicit` tells whether one of the first two was used.
fn base_order(config: &Value, store: &AuthStore, key: &str) -> (Vec<String>, bool) {
    if let Some(list) = store.order_for(key) {
        return (list.to_vec(), true);
    }
    let cfg_order = config.pointer("/auth/order").and_then(Value::as_object);
    if let Some(list) = cfg_order.and_then(|o| find_by_provider(o.iter(), key)) {
        let ids = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        return (ids, true);
    }
    let from_profiles: Vec<String> = config
        .pointer("/auth/profiles")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, p)| normalize_provider_id(config_text(p, "provider")) == key)
        .map(|(id, _)| id.clone())
        .collect();
    if !from_profiles.is_empty() {
        return (from_profiles, false);
    }
    (store.profiles_for_provider(key), false)
}

fn eligible(config: &Value, store: &AuthStore, id: &str, key: &str, now_ms: u64) -> bool {
    let Some(cred) = store.profile(id) else {
        return false;
    };
    if normalize_provider_id(cred.provider()) != key {
        return false;
    }
    if let Some(pc) = config_profile(config, id) {
        if normalize_provider_id(config_text(pc, "provider")) != key
            || !mode_compatible(config_text(pc, "mode"), cred.kind())
        {
            return false;
        }
    }
    usable(cred, now_ms)
}

/// `resolveAuthProfileOrder`: eligible profiles of `provider`; an explicit order is kept with
/// cooling profiles moved last (soonest expiry first); otherwise oauth → token → api_key, each
/// by oldest `lastUsed` (round robin), cooling ones last. `preferred` goes first.
pub fn resolve_auth_profile_order(
    config: &Value,
    store: &AuthStore,
    provider: &str,
    preferred: Option<&str>,
    now_ms: u64,
) -> Vec<String> {
    let key = normalize_provider_id(provider);
    let (base, explicit) = base_order(config, store, &key);
    let mut ids: Vec<String> = Vec::new();
    for id in base {
        if !ids.contains(&id) && eligible(config, store, &id, &key, now_ms) {
            ids.push(id);
        }
    }
    let (mut available, mut cooling): (Vec<String>, Vec<String>) = ids
        .into_iter()
        .partition(|id| !is_profile_in_cooldown(store, id, now_ms));
    if !explicit {
        let type_score = |id: &String| match store.profile(id).map(Credential::kind) {
            Some(CredentialKind::OAuth) => 0,
            Some(CredentialKind::Token) => 1,
            _ => 2,
        };
        let last_used = |id: &String| store.usage_number(id, "lastUsed").unwrap_or(0.0);
        available.sort_by(|a, b| {
            type_score(a)
                .cmp(&type_score(b))
                .then(last_used(a).total_cmp(&last_used(b)))
        });
    }
    let until = |id: &String| profile_unusable_until(store, id).unwrap_or(now_ms as f64);
    cooling.sort_by(|a, b| until(a).total_cmp(&until(b)));
    available.extend(cooling);
    if let Some(p) = preferred.filter(|p| available.iter().any(|id| id == p)) {
        available.retain(|id| id != p);
        available.insert(0, p.to_string());
    }
    available
}
