//! `auth-profiles.json` (v1): tolerant loading (unknown credential types and provider-less
//! entries dropped, unknown fields kept), the main-agent inheritance and merge, legacy
//! `auth.json` migration, and saving in upstream's layout (`JSON.stringify(.., null, 2)` + `\n`,
//! mode 0600). Credentials never reach logs: `Debug` prints no secret.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::agent::models::normalize_provider_id;

pub const AUTH_STORE_VERSION: u64 = 1;
pub const AUTH_PROFILE_FILENAME: &str = "auth-profiles.json";
pub const LEGACY_AUTH_FILENAME: &str = "auth.json";

/// The stored credential types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ApiKey,
    Token,
    OAuth,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "api_key",
            CredentialKind::Token => "token",
            CredentialKind::OAuth => "oauth",
        }
    }

    pub fn parse(raw: &str) -> Option<CredentialKind> {
        Some(match raw {
            "api_key" => CredentialKind::ApiKey,
            "token" => CredentialKind::Token,
            "oauth" => CredentialKind::OAuth,
            _ => return None,
        })
    }
}

/// One profile's credential; the raw object is kept so unknown fields survive a save.
#[derive(Clone, PartialEq)]
pub struct Credential {
    kind: CredentialKind,
    provider: String,
    raw: Map<String, Value>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("kind", &self.kind)
            .field("provider", &self.provider)
            .field("email", &self.email())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Credential {
    /// Accepts a credential object with a known `type` and a non-empty string `provider`.
    pub fn from_value(v: &Value) -> Option<Credential> {
        let raw = v.as_object()?;
        let kind = CredentialKind::parse(raw.get("type")?.as_str()?)?;
        let provider = raw
            .get("provider")?
            .as_str()
            .filter(|p| !p.is_empty())?
            .to_string();
        Some(Credential {
            kind,
            provider,
            raw: raw.clone(),
        })
    }

    pub fn api_key(provider: &str, key: &str) -> Credential {
        Credential::from_value(&json!({"type": "api_key", "provider": provider, "key": key}))
            .unwrap_or_else(|| unreachable!("valid literal"))
    }

    pub fn token(provider: &str, token: &str, expires: Option<u64>) -> Credential {
        let mut v = json!({"type": "token", "provider": provider, "token": token});
        if let Some(e) = expires {
            v["expires"] = json!(e);
        }
        Credential::from_value(&v).unwrap_or_else(|| unreachable!("valid literal"))
    }

    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    fn text(&self, k: &str) -> Option<&str> {
        self.raw.get(k).and_then(Value::as_str)
    }

    pub fn email(&self) -> Option<&str> {
        self.text("email")
    }

    pub fn key(&self) -> Option<&str> {
        self.text("key")
    }

    pub fn token_value(&self) -> Option<&str> {
        self.text("token")
    }

    pub fn access(&self) -> Option<&str> {
        self.text("access")
    }

    pub fn refresh(&self) -> Option<&str> {
        self.text("refresh")
    }

    pub fn project_id(&self) -> Option<&str> {
        self.text("projectId")
    }

    /// `expires` in ms, when it is a number.
    pub fn expires(&self) -> Option<f64> {
        self.raw.get("expires").and_then(Value::as_f64)
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.raw.clone())
    }
}

/// The agent's credential store as upstream's `AuthProfileStore`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthStore {
    pub version: u64,
    profiles: Vec<(String, Credential)>,
    order: Option<Vec<(String, Vec<String>)>>,
    last_good: Option<Map<String, Value>>,
    usage_stats: Option<Map<String, Value>>,
}

impl AuthStore {
    pub fn empty() -> AuthStore {
        AuthStore {
            version: AUTH_STORE_VERSION,
            ..AuthStore::default()
        }
    }

    /// `coerceAuthStore`: `None` unless `profiles` is an object.
    pub fn from_json(raw: &Value) -> Option<AuthStore> {
        let record = raw.as_object()?;
        let profiles = record.get("profiles")?.as_object()?;
        let profiles = profiles
            .iter()
            .filter_map(|(id, v)| Some((id.clone(), Credential::from_value(v)?)))
            .collect();
        let version = record
            .get("version")
            .and_then(Value::as_f64)
            .map_or(AUTH_STORE_VERSION, |v| v as u64);
        Some(AuthStore {
            version,
            profiles,
            order: record
                .get("order")
                .and_then(Value::as_object)
                .map(coerce_order),
            last_good: record.get("lastGood").and_then(Value::as_object).cloned(),
            usage_stats: record.get("usageStats").and_then(Value::as_object).cloned(),
        })
    }

    /// The file content upstream writes (`version` is always 1).
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("version".into(), json!(AUTH_STORE_VERSION));
        let profiles: Map<String, Value> = self
            .profiles
            .iter()
            .map(|(id, c)| (id.clone(), c.to_value()))
            .collect();
        o.insert("profiles".into(), Value::Object(profiles));
        if let Some(order) = &self.order {
            let m: Map<String, Value> = order.iter().map(|(p, l)| (p.clone(), json!(l))).collect();
            o.insert("order".into(), Value::Object(m));
        }
        if let Some(lg) = &self.last_good {
            o.insert("lastGood".into(), Value::Object(lg.clone()));
        }
        if let Some(us) = &self.usage_stats {
            o.insert("usageStats".into(), Value::Object(us.clone()));
        }
        Value::Object(o)
    }

    pub fn profile(&self, id: &str) -> Option<&Credential> {
        self.profiles.iter().find(|(k, _)| k == id).map(|(_, c)| c)
    }

    /// Profile ids with their credentials, in file order.
    pub fn profiles(&self) -> impl Iterator<Item = (&str, &Credential)> {
        self.profiles.iter().map(|(k, c)| (k.as_str(), c))
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// Adds or replaces a profile in place (`store.profiles[id] = cred`).
    pub fn upsert_profile(&mut self, id: &str, cred: Credential) {
        match self.profiles.iter_mut().find(|(k, _)| k == id) {
            Some(slot) => slot.1 = cred,
            None => self.profiles.push((id.to_string(), cred)),
        }
    }

    /// Ids of profiles whose provider normalises to `provider`'s.
    pub fn profiles_for_provider(&self, provider: &str) -> Vec<String> {
        let key = normalize_provider_id(provider);
        self.profiles
            .iter()
            .filter(|(_, c)| normalize_provider_id(&c.provider) == key)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The store's own `order[provider]` (keys compared normalised).
    pub fn order_for(&self, provider: &str) -> Option<&[String]> {
        let key = normalize_provider_id(provider);
        let order = self.order.as_ref()?;
        order
            .iter()
            .find(|(p, _)| normalize_provider_id(p) == key)
            .map(|(_, l)| l.as_slice())
    }

    pub fn set_order(&mut self, order: Option<Vec<(String, Vec<String>)>>) {
        self.order = order;
    }

    pub fn last_good(&self, provider: &str) -> Option<&str> {
        self.last_good.as_ref()?.get(provider)?.as_str()
    }

    pub(crate) fn set_last_good(&mut self, provider: &str, id: &str) {
        self.last_good
            .get_or_insert_with(Map::new)
            .insert(provider.into(), json!(id));
    }

    pub fn last_good_map(&self) -> Option<&Map<String, Value>> {
        self.last_good.as_ref()
    }

    /// `usageStats[id]` as stored (any JSON value; normally an object).
    pub fn usage_raw(&self, id: &str) -> Option<&Value> {
        self.usage_stats.as_ref()?.get(id)
    }

    /// A numeric `usageStats[id][field]`.
    pub fn usage_number(&self, id: &str, field: &str) -> Option<f64> {
        self.usage_raw(id)?.get(field)?.as_f64()
    }

    pub fn usage_stats(&self) -> Option<&Map<String, Value>> {
        self.usage_stats.as_ref()
    }

    pub fn set_usage_stats(&mut self, stats: Option<Map<String, Value>>) {
        self.usage_stats = stats;
    }

    pub(crate) fn usage_stats_mut(&mut self) -> &mut Map<String, Value> {
        self.usage_stats.get_or_insert_with(Map::new)
    }

    /// `mergeAuthProfileStores(base, over)`: `over` wins key by key.
    pub fn merged_over(base: &AuthStore, over: &AuthStore) -> AuthStore {
        let over_empty = over.profiles.is_empty()
            && over.order.is_none()
            && over.last_good.is_none()
            && over.usage_stats.is_none();
        if over_empty {
            return base.clone();
        }
        let mut out = base.clone();
        out.version = base.version.max(over.version);
        for (id, c) in &over.profiles {
            out.upsert_profile(id, c.clone());
        }
        out.order = merge_order(&base.order, &over.order);
        out.last_good = merge_map(&base.last_good, &over.last_good);
        out.usage_stats = merge_map(&base.usage_stats, &over.usage_stats);
        out
    }
}

fn coerce_order(raw: &Map<String, Value>) -> Vec<(String, Vec<String>)> {
    raw.iter()
        .filter_map(|(p, v)| {
            let list: Vec<String> = v
                .as_array()?
                .iter()
                .filter_map(|e| {
                    e.as_str()
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                })
                .collect();
            (!list.is_empty()).then(|| (p.clone(), list))
        })
        .collect()
}

fn merge_map(
    base: &Option<Map<String, Value>>,
    over: &Option<Map<String, Value>>,
) -> Option<Map<String, Value>> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b.clone()),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => {
            let mut m = b.clone();
            m.extend(o.clone());
            Some(m)
        }
    }
}

type Order = Option<Vec<(String, Vec<String>)>>;

fn merge_order(base: &Order, over: &Order) -> Order {
    let to_map = |o: &Order| {
        o.as_ref().map(|l| {
            l.iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<Map<String, Value>>()
        })
    };
    let merged = merge_map(&to_map(base), &to_map(over))?;
    Some(
        merged
            .iter()
            .map(|(k, v)| (k.clone(), coerce_list(v)))
            .collect(),
    )
}

fn coerce_list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect()
}

pub fn auth_store_path(agent_dir: &Path) -> PathBuf {
    agent_dir.join(AUTH_PROFILE_FILENAME)
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Writes `store` to `<agent_dir>/auth-profiles.json` (through a symlink if the file is one).
pub fn save_auth_store(store: &AuthStore, agent_dir: &Path) -> std::io::Result<()> {
    let path = auth_store_path(agent_dir);
    let target = std::fs::canonicalize(&path).unwrap_or(path);
    let mut text = serde_json::to_string_pretty(&store.to_json()).map_err(std::io::Error::other)?;
    text.push('\n');
    crate::state::atomic::write_private(&target, text.as_bytes())
}

/// `ensureAuthStoreFile`: creates `{"version":1,"profiles":{}}` so the file can be locked.
pub fn ensure_auth_store_file(agent_dir: &Path) -> std::io::Result<()> {
    if auth_store_path(agent_dir).exists() {
        return Ok(());
    }
    save_auth_store(&AuthStore::empty(), agent_dir)
}

/// `loadAuthProfileStoreForAgent`: the agent's own file; else (non-main agents) a copy of the
/// main store, saved into the agent dir; else a migrated legacy `auth.json`; else empty.
pub fn load_store_for_agent(agent_dir: &Path, main_dir: &Path) -> AuthStore {
    let path = auth_store_path(agent_dir);
    if let Some(store) = read_json(&path).as_ref().and_then(AuthStore::from_json) {
        return store;
    }
    if agent_dir != main_dir {
        let main = read_json(&auth_store_path(main_dir))
            .as_ref()
            .and_then(AuthStore::from_json);
        if let Some(main) = main.filter(|m| !m.is_empty()) {
            if let Err(e) = save_auth_store(&main, agent_dir) {
                log::warn!(
                    "could not copy auth-profiles into {}: {e}",
                    agent_dir.display()
                );
            } else {
                log::info!(
                    "inherited auth-profiles from main agent (agentDir: {})",
                    agent_dir.display()
                );
            }
            return main;
        }
    }
    migrate_legacy(agent_dir).unwrap_or_else(AuthStore::empty)
}

/// Legacy `{provider: credential}` becomes `<provider>:default` profiles; the old file is
/// deleted only after the new one was written.
fn migrate_legacy(agent_dir: &Path) -> Option<AuthStore> {
    let legacy_path = agent_dir.join(LEGACY_AUTH_FILENAME);
    let raw = read_json(&legacy_path)?;
    let record = raw.as_object().filter(|r| !r.contains_key("profiles"))?;
    let mut store = AuthStore::empty();
    for (provider, value) in record {
        let Some(mut obj) = value.as_object().cloned() else {
            continue;
        };
        if obj
            .get("provider")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            obj.insert("provider".into(), json!(provider));
        }
        if let Some(cred) = Credential::from_value(&Value::Object(obj)) {
            store.upsert_profile(&format!("{provider}:default"), cred);
        }
    }
    if store.is_empty() {
        return None;
    }
    match save_auth_store(&store, agent_dir) {
        Ok(()) => {
            if let Err(e) = std::fs::remove_file(&legacy_path) {
                log::warn!("failed to delete legacy auth.json after migration: {e}");
            }
        }
        Err(e) => log::warn!("could not write migrated auth-profiles.json: {e}"),
    }
    Some(store)
}

/// `ensureAuthProfileStore`: a non-main agent sees the main store merged under its own.
pub fn load_auth_store(agent_dir: &Path, main_dir: &Path) -> AuthStore {
    let own = load_store_for_agent(agent_dir, main_dir);
    if agent_dir == main_dir {
        return own;
    }
    let main = load_store_for_agent(main_dir, main_dir);
    AuthStore::merged_over(&main, &own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_load_keeps_unknown_fields_and_drops_bad_entries() {
        let raw = json!({
            "version": 1,
            "profiles": {
                "a:default": {"type": "api_key", "provider": "a", "key": "sk-1", "note": "keep"},
                "b:weird": {"type": "cookie", "provider": "b"},
                "c:none": {"type": "token", "token": "t"}
            },
            "order": {"a": [" a:default ", "", 5], "b": []},
            "usageStats": {"a:default": {"lastUsed": 5, "custom": true}},
            "extraTop": 1
        });
        let store = AuthStore::from_json(&raw).unwrap();
        assert_eq!(store.profiles().count(), 1);
        assert_eq!(store.order_for("A"), Some(&["a:default".to_string()][..]));
        assert_eq!(store.order_for("b"), None);
        let out = store.to_json();
        assert_eq!(out["profiles"]["a:default"]["note"], json!("keep"));
        assert_eq!(out["usageStats"]["a:default"]["custom"], json!(true));
        assert!(out.get("extraTop").is_none());
        assert!(format!("{store:?}").contains("<redacted>"));
        assert!(!format!("{store:?}").contains("sk-1"));
    }

    #[test]
    fn merge_prefers_agent_entries() {
        let main = AuthStore::from_json(&json!({"profiles": {"a:1": {"type": "api_key", "provider": "a", "key": "m"}, "a:2": {"type": "api_key", "provider": "a", "key": "m2"}}, "lastGood": {"a": "a:1"}})).unwrap();
        let own = AuthStore::from_json(
            &json!({"profiles": {"a:2": {"type": "api_key", "provider": "a", "key": "own"}}}),
        )
        .unwrap();
        let merged = AuthStore::merged_over(&main, &own);
        assert_eq!(merged.profile("a:2").and_then(Credential::key), Some("own"));
        assert_eq!(merged.last_good("a"), Some("a:1"));
        assert_eq!(AuthStore::merged_over(&main, &AuthStore::empty()), main);
    }

    #[test]
    fn sub_agent_inherits_main_and_legacy_is_migrated() {
        let root = std::env::temp_dir().join(format!("mb-store-{}", crate::util::uuid_v4()));
        let (main, sub) = (root.join("main/agent"), root.join("sub/agent"));
        std::fs::create_dir_all(&main).unwrap();
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            main.join(LEGACY_AUTH_FILENAME),
            r#"{"anthropic":{"type":"api_key","key":"sk-legacy"}}"#,
        )
        .unwrap();
        let m = load_auth_store(&main, &main);
        assert_eq!(
            m.profile("anthropic:default").map(Credential::provider),
            Some("anthropic")
        );
        assert!(!main.join(LEGACY_AUTH_FILENAME).exists());
        let s = load_auth_store(&sub, &main);
        assert!(s.profile("anthropic:default").is_some());
        let copied = std::fs::read_to_string(auth_store_path(&sub)).unwrap();
        assert!(copied.ends_with("}\n") && copied.contains("\n  \"profiles\": {"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
