//! `usageStats` bookkeeping (`auth-profiles/usage.ts`): cooldown 1/5/25/60 min, billing disable
//! 5 h doubling to 24 h (config `auth.cooldowns`), failure-window reset, success reset; every
//! update is a read-modify-write under the directory lock, falling back to an unlocked save of
//! the in-memory copy when the lock cannot be had, as upstream does.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::lock::{DirLock, LockOptions};
use super::store::{
    auth_store_path, ensure_auth_store_file, load_auth_store, save_auth_store, AuthStore,
    LEGACY_AUTH_FILENAME,
};
use crate::agent::dir_watch::Stamps;
use crate::agent::failover::FailoverReason;
use crate::agent::models::{normalize_provider_id, number};
use parking_lot::Mutex;

const HOUR_MS: f64 = 3_600_000.0;

/// Where an agent's store lives and how it is locked.
#[derive(Debug, Clone)]
pub struct AuthPaths {
    pub agent_dir: PathBuf,
    /// The main agent's dir (`<state>/agents/main/agent` unless `CLAWDBOT_AGENT_DIR`).
    pub main_dir: PathBuf,
    pub lock: LockOptions,
}

impl AuthPaths {
    pub fn new(agent_dir: PathBuf, main_dir: PathBuf) -> AuthPaths {
        AuthPaths {
            agent_dir,
            main_dir,
            lock: LockOptions::default(),
        }
    }

    /// `agents.list[].agentDir` or `<state>/agents/<id>/agent`; main from the env override or
    /// `<state>/agents/main/agent`.
    pub fn for_agent(
        config: &Value,
        state: &crate::state::StateDir,
        agent_id: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> AuthPaths {
        let id = crate::config::normalize_agent_id(agent_id);
        let configured = crate::agent::models::agent_entry(config, &id)
            .and_then(|e| e.get("agentDir"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(crate::state::paths::expand_user);
        let main_override = ["CLAWDBOT_AGENT_DIR", "PI_CODING_AGENT_DIR"]
            .iter()
            .find_map(|k| {
                env(k)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            })
            .map(|v| crate::state::paths::expand_user(&v));
        AuthPaths::new(
            configured.unwrap_or_else(|| state.agent_dir(&id)),
            main_override.unwrap_or_else(|| state.agent_dir("main")),
        )
    }

    pub fn store_path(&self) -> PathBuf {
        auth_store_path(&self.agent_dir)
    }

    pub fn load(&self) -> AuthStore {
        load_auth_store(&self.agent_dir, &self.main_dir)
    }

    /// `load`, from memory while neither directory's store files changed (their inotify
    /// watches, `dir_watch`, say so): every turn reads the store. A read-modify-write under
    /// the lock uses `load`, which reads the files themselves.
    pub fn load_cached(&self) -> AuthStore {
        type Cached = (AuthPaths, Vec<Stamps>, AuthStore);
        static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());
        // Stamped before the read: a change made meanwhile is read again next time.
        let stamps = self.store_stamps();
        let same = |(p, s, _): &&Cached| {
            p.agent_dir == self.agent_dir && p.main_dir == self.main_dir && *s == stamps
        };
        if let Some((.., store)) = CACHE.lock().iter().find(same) {
            return store.clone();
        }
        let store = self.load();
        let mut cache = CACHE.lock();
        cache.retain(|(p, ..)| p.agent_dir != self.agent_dir || p.main_dir != self.main_dir);
        if cache.len() >= 8 {
            cache.remove(0);
        }
        cache.push((self.clone(), stamps, store.clone()));
        store
    }

    /// The store files `load` may read: each directory's `auth-profiles.json` and legacy
    /// `auth.json`.
    fn store_stamps(&self) -> Vec<Stamps> {
        let mut dirs = vec![&self.agent_dir];
        if self.main_dir != self.agent_dir {
            dirs.push(&self.main_dir);
        }
        dirs.into_iter()
            .map(|d| {
                let files = [auth_store_path(d), d.join(LEGACY_AUTH_FILENAME)];
                crate::agent::dir_watch::stamps(d, &files)
            })
            .collect()
    }
}

/// `calculateAuthProfileCooldownMs`: 1 min × 5^(n−1), at most 1 h.
pub fn calculate_auth_profile_cooldown_ms(error_count: u64) -> u64 {
    let n = error_count.max(1);
    (60_000 * 5u64.pow((n - 1).min(3) as u32)).min(3_600_000)
}

/// Billing disable: `max(60 s, base) × 2^min(n−1, 10)`, at most `max(base, maxMs)`.
pub fn calculate_billing_disable_ms(billing_count: u64, base_ms: f64, max_ms: f64) -> f64 {
    let n = billing_count.max(1);
    let base = base_ms.max(60_000.0);
    let max = max_ms.max(base);
    (base * 2f64.powi((n - 1).min(10) as i32)).min(max)
}

/// `auth.cooldowns` resolved for one provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CooldownConfig {
    pub billing_backoff_ms: f64,
    pub billing_max_ms: f64,
    pub failure_window_ms: f64,
}

fn hours(v: Option<&Value>, fallback: f64) -> f64 {
    v.and_then(Value::as_f64)
        .filter(|h| h.is_finite() && *h > 0.0)
        .unwrap_or(fallback)
}

/// Defaults 5 h / 24 h / 24 h; `billingBackoffHoursByProvider` keys match normalised.
pub fn resolve_cooldown_config(config: &Value, provider: &str) -> CooldownConfig {
    let cd = config.pointer("/auth/cooldowns");
    let get = |k: &str| cd.and_then(|c| c.get(k)).filter(|v| !v.is_null());
    let key = normalize_provider_id(provider);
    let by_provider = get("billingBackoffHoursByProvider")
        .and_then(Value::as_object)
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| normalize_provider_id(k) == key)
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null());
    CooldownConfig {
        billing_backoff_ms: hours(by_provider.or_else(|| get("billingBackoffHours")), 5.0)
            * HOUR_MS,
        billing_max_ms: hours(get("billingMaxHours"), 24.0) * HOUR_MS,
        failure_window_ms: hours(get("failureWindowHours"), 24.0) * HOUR_MS,
    }
}

/// `max(cooldownUntil, disabledUntil)` over the positive numeric ones.
pub fn profile_unusable_until(store: &AuthStore, id: &str) -> Option<f64> {
    ["cooldownUntil", "disabledUntil"]
        .iter()
        .filter_map(|k| store.usage_number(id, k))
        .filter(|v| v.is_finite() && *v > 0.0)
        .reduce(f64::max)
}

pub fn is_profile_in_cooldown(store: &AuthStore, id: &str, now_ms: u64) -> bool {
    profile_unusable_until(store, id).is_some_and(|until| (now_ms as f64) < until)
}

fn num(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64)
}

/// `computeNextProfileUsageStats`; key order follows the JavaScript object spread.
pub fn next_usage_stats(
    existing: &Map<String, Value>,
    now_ms: u64,
    reason: FailoverReason,
    cfg: &CooldownConfig,
) -> Map<String, Value> {
    let now = now_ms as f64;
    let expired =
        num(existing, "lastFailureAt").is_some_and(|t| t > 0.0 && now - t > cfg.failure_window_ms);
    let base_count = if expired {
        0
    } else {
        num(existing, "errorCount").unwrap_or(0.0).max(0.0) as u64
    };
    let error_count = base_count + 1;
    let mut counts = match existing.get("failureCounts") {
        Some(Value::Object(m)) if !expired => m.clone(),
        _ => Map::new(),
    };
    let reason_count = num(&counts, reason.as_str()).unwrap_or(0.0) as u64 + 1;
    counts.insert(reason.as_str().into(), json!(reason_count));
    let mut next = existing.clone();
    next.insert("errorCount".into(), json!(error_count));
    next.insert("failureCounts".into(), Value::Object(counts));
    next.insert("lastFailureAt".into(), json!(now_ms));
    if reason == FailoverReason::Billing {
        let ms =
            calculate_billing_disable_ms(reason_count, cfg.billing_backoff_ms, cfg.billing_max_ms);
        next.insert("disabledUntil".into(), number(now + ms));
        next.insert("disabledReason".into(), json!("billing"));
    } else {
        let ms = calculate_auth_profile_cooldown_ms(error_count);
        next.insert("cooldownUntil".into(), json!(now_ms + ms));
    }
    next
}

/// `updateAuthProfileStoreWithLock`: lock, re-read, apply, save when `updater` says so.
/// `None` when the lock or the write failed.
pub fn update_store_with_lock(
    paths: &AuthPaths,
    updater: &mut dyn FnMut(&mut AuthStore) -> bool,
) -> Option<AuthStore> {
    if let Err(e) = ensure_auth_store_file(&paths.agent_dir) {
        log::warn!("cannot create {}: {e}", paths.store_path().display());
        return None;
    }
    let mut lock = match DirLock::acquire(&paths.store_path(), &paths.lock) {
        Ok(l) => l,
        Err(e) => {
            log::warn!(
                "auth-profiles lock failed ({}): {e}",
                paths.store_path().display()
            );
            return None;
        }
    };
    let mut fresh = paths.load();
    if updater(&mut fresh) {
        let _ = lock.refresh_if_due();
        if let Err(e) = save_auth_store(&fresh, &paths.agent_dir) {
            log::warn!("could not save {}: {e}", paths.store_path().display());
            return None;
        }
    }
    Some(fresh)
}

/// Locked update of `usageStats[id]`; without the lock the in-memory store is updated and
/// saved unlocked. `apply` returns `false` to leave the entry alone.
fn update_usage(
    store: &mut AuthStore,
    paths: &AuthPaths,
    id: &str,
    apply: &dyn Fn(&AuthStore, &mut Map<String, Value>) -> bool,
) {
    let mut updater = |s: &mut AuthStore| update_entry(s, id, apply);
    if let Some(updated) = update_store_with_lock(paths, &mut updater) {
        store.set_usage_stats(updated.usage_stats().cloned());
        return;
    }
    if update_entry(store, id, apply) {
        if let Err(e) = save_auth_store(store, &paths.agent_dir) {
            log::warn!("could not save {}: {e}", paths.store_path().display());
        }
    }
}

fn update_entry(
    s: &mut AuthStore,
    id: &str,
    apply: &dyn Fn(&AuthStore, &mut Map<String, Value>) -> bool,
) -> bool {
    let mut entry = s
        .usage_raw(id)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if !apply(s, &mut entry) {
        return false;
    }
    s.usage_stats_mut()
        .insert(id.to_string(), Value::Object(entry));
    true
}

/// `markAuthProfileFailure`: count the failure and start a cooldown (or a billing disable).
pub fn mark_auth_profile_failure(
    store: &mut AuthStore,
    paths: &AuthPaths,
    id: &str,
    reason: FailoverReason,
    config: &Value,
    now_ms: u64,
) {
    update_usage(store, paths, id, &|s, entry| {
        let Some(profile) = s.profile(id) else {
            return false;
        };
        let cfg = resolve_cooldown_config(config, profile.provider());
        *entry = next_usage_stats(entry, now_ms, reason, &cfg);
        true
    });
}

/// `markAuthProfileUsed`: `lastUsed = now`, error state cleared.
pub fn mark_auth_profile_used(store: &mut AuthStore, paths: &AuthPaths, id: &str, now_ms: u64) {
    update_usage(store, paths, id, &|s, entry| {
        if s.profile(id).is_none() {
            return false;
        }
        entry.insert("lastUsed".into(), json!(now_ms));
        entry.insert("errorCount".into(), json!(0));
        for k in [
            "cooldownUntil",
            "disabledUntil",
            "disabledReason",
            "failureCounts",
        ] {
            entry.shift_remove(k);
        }
        true
    });
}

/// `clearAuthProfileCooldown`: only for profiles that have stats.
pub fn clear_auth_profile_cooldown(store: &mut AuthStore, paths: &AuthPaths, id: &str) {
    update_usage(store, paths, id, &|s, entry| {
        if s.usage_raw(id).is_none_or(Value::is_null) {
            return false;
        }
        entry.insert("errorCount".into(), json!(0));
        entry.shift_remove("cooldownUntil");
        true
    });
}

/// `markAuthProfileGood`: `lastGood[provider] = id` (provider compared exactly, as upstream).
pub fn mark_auth_profile_good(store: &mut AuthStore, paths: &AuthPaths, provider: &str, id: &str) {
    let matches = |s: &AuthStore| s.profile(id).is_some_and(|p| p.provider() == provider);
    let mut updater = |s: &mut AuthStore| {
        if !matches(s) {
            return false;
        }
        s.set_last_good(provider, id);
        true
    };
    if let Some(updated) = update_store_with_lock(paths, &mut updater) {
        if let Some(lg) = updated.last_good(provider) {
            store.set_last_good(provider, lg);
        }
        return;
    }
    if matches(store) {
        store.set_last_good(provider, id);
        if let Err(e) = save_auth_store(store, &paths.agent_dir) {
            log::warn!("could not save {}: {e}", paths.store_path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_store_follows_every_change_of_its_files() {
        use std::fs;
        let root = std::env::temp_dir().join(format!("moltbot-ac-{}", crate::util::uuid_v4()));
        let (agent, main) = (
            root.join("agents/work/agent"),
            root.join("agents/main/agent"),
        );
        fs::create_dir_all(&agent).unwrap();
        fs::create_dir_all(&main).unwrap();
        let paths = AuthPaths::new(agent.clone(), main.clone());
        let ids =
            |s: &AuthStore| -> Vec<String> { s.profiles().map(|(id, _)| id.to_string()).collect() };
        assert!(ids(&paths.load_cached()).is_empty());
        let profile = |id: &str, key: &str| json!({"version": 1, "profiles": {id: {"type": "api_key", "provider": "anthropic", "key": key}}});
        // The main agent's store appears: inherited (and copied) on the next read.
        let text = profile("anthropic:main", "sk-m").to_string();
        fs::write(auth_store_path(&main), text).unwrap();
        assert_eq!(ids(&paths.load_cached()), ["anthropic:main"]);
        assert_eq!(
            paths.load_cached(),
            paths.load(),
            "memory agrees with the files"
        );
        // Our own save (temp file + rename), then an edit in place by someone else.
        let own = AuthStore::from_json(&profile("anthropic:own", "sk-o")).unwrap();
        save_auth_store(&own, &agent).unwrap();
        // The agent's store is merged over the main one's.
        assert_eq!(
            ids(&paths.load_cached()),
            ["anthropic:main", "anthropic:own"]
        );
        fs::write(
            auth_store_path(&agent),
            profile("anthropic:edit", "sk-e").to_string(),
        )
        .unwrap();
        assert_eq!(
            ids(&paths.load_cached()),
            ["anthropic:main", "anthropic:edit"]
        );
        assert_eq!(paths.load_cached(), paths.load());
        fs::remove_file(auth_store_path(&agent)).unwrap();
        fs::remove_file(auth_store_path(&main)).unwrap();
        assert!(ids(&paths.load_cached()).is_empty(), "both gone");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn billing_backoff_doubles_to_the_cap() {
        let h = HOUR_MS;
        let got: Vec<f64> = (1..=5)
            .map(|n| calculate_billing_disable_ms(n, 5.0 * h, 24.0 * h) / h)
            .collect();
        assert_eq!(got, [5.0, 10.0, 20.0, 24.0, 24.0]);
        assert_eq!(calculate_billing_disable_ms(1, 1000.0, 0.0), 60_000.0);
    }

    #[test]
    fn failure_stats_follow_upstream_shape() {
        let cfg = resolve_cooldown_config(&json!({}), "anthropic");
        let first = next_usage_stats(&Map::new(), 1_000, FailoverReason::RateLimit, &cfg);
        assert_eq!(
            Value::Object(first.clone()),
            json!({"errorCount": 1, "failureCounts": {"rate_limit": 1}, "lastFailureAt": 1000, "cooldownUntil": 61_000})
        );
        let second = next_usage_stats(&first, 2_000, FailoverReason::Timeout, &cfg);
        assert_eq!(second["cooldownUntil"], json!(2_000 + 300_000));
        assert_eq!(
            second["failureCounts"],
            json!({"rate_limit": 1, "timeout": 1})
        );
    }

    #[test]
    fn cooldown_config_overrides() {
        let cfg = json!({"auth": {"cooldowns": {"billingBackoffHours": 2, "billingBackoffHoursByProvider": {"Z.AI": 3}, "billingMaxHours": -1, "failureWindowHours": 1}}});
        let z = resolve_cooldown_config(&cfg, "zai");
        assert_eq!(
            (z.billing_backoff_ms, z.billing_max_ms, z.failure_window_ms),
            (3.0 * HOUR_MS, 24.0 * HOUR_MS, HOUR_MS)
        );
        assert_eq!(
            resolve_cooldown_config(&cfg, "openai").billing_backoff_ms,
            2.0 * HOUR_MS
        );
    }
}
