//! Auth profiles: cooldown table, failure marking on disk, order sources, session pin.

use super::*;

// ---- auth profiles: cooldowns, failures, order ----------------------------------------------

#[test]
fn cooldown_backoff_table() {
    let minutes: Vec<u64> = (1..=5)
        .map(|n| calculate_auth_profile_cooldown_ms(n) / 60_000)
        .collect();
    assert_eq!(minutes, [1, 5, 25, 60, 60]);
}

fn agent_with_store(body: Value) -> (PathBuf, AuthPaths) {
    let dir = temp_dir("auth");
    std::fs::write(dir.join("auth-profiles.json"), body.to_string()).unwrap();
    let paths = AuthPaths::new(dir.clone(), dir.clone());
    (dir, paths)
}

fn one_anthropic_profile(extra: Value) -> Value {
    let mut v = json!({"version": 1, "profiles": {"anthropic:default": {"type": "api_key", "provider": "anthropic", "key": "sk-default"}}});
    if let Value::Object(m) = extra {
        v.as_object_mut().unwrap().extend(m);
    }
    v
}

fn billing_remaining_hours(cfg: Value) -> f64 {
    let (dir, paths) = agent_with_store(one_anthropic_profile(json!({})));
    let mut s = paths.load();
    let started = now_ms();
    mark_auth_profile_failure(
        &mut s,
        &paths,
        "anthropic:default",
        FailoverReason::Billing,
        &cfg,
        started,
    );
    let until = s
        .usage_number("anthropic:default", "disabledUntil")
        .expect("disabledUntil");
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("auth-profiles.json")).unwrap())
            .unwrap();
    assert_eq!(
        on_disk["usageStats"]["anthropic:default"]["disabledReason"],
        json!("billing")
    );
    assert!(
        !dir.join("auth-profiles.json.lock").exists(),
        "lock released"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    (until - started as f64) / 3_600_000.0
}

#[test]
fn billing_failures_disable_for_about_five_hours() {
    let h = billing_remaining_hours(json!({}));
    assert!(h > 4.5 && h < 5.5, "{h}");
}

#[test]
fn per_provider_billing_backoff_override() {
    let h = billing_remaining_hours(
        json!({"auth": {"cooldowns": {"billingBackoffHoursByProvider": {"Anthropic": 1}, "billingMaxHours": 2}}}),
    );
    assert!(h > 0.8 && h < 1.2, "{h}");
}

#[test]
fn failure_window_resets_counters() {
    let now = now_ms();
    let stats = json!({"usageStats": {"anthropic:default": {"errorCount": 9, "failureCounts": {"billing": 3}, "lastFailureAt": now - 48 * 3_600_000}}});
    let (dir, paths) = agent_with_store(one_anthropic_profile(stats));
    let mut s = paths.load();
    let cfg = json!({"auth": {"cooldowns": {"failureWindowHours": 24}}});
    mark_auth_profile_failure(
        &mut s,
        &paths,
        "anthropic:default",
        FailoverReason::Billing,
        &cfg,
        now,
    );
    assert_eq!(s.usage_number("anthropic:default", "errorCount"), Some(1.0));
    assert_eq!(
        s.usage_raw("anthropic:default").unwrap()["failureCounts"]["billing"],
        json!(1)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rate_limit_failure_then_success_on_disk() {
    let (dir, paths) = agent_with_store(one_anthropic_profile(json!({})));
    let mut s = paths.load();
    let t = 1_769_500_000_000;
    mark_auth_profile_failure(
        &mut s,
        &paths,
        "anthropic:default",
        FailoverReason::RateLimit,
        &json!({}),
        t,
    );
    let read = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("auth-profiles.json")).unwrap())
            .unwrap()
    };
    assert_eq!(
        read()["usageStats"]["anthropic:default"],
        json!({"errorCount": 1, "failureCounts": {"rate_limit": 1}, "lastFailureAt": t, "cooldownUntil": t + 60_000})
    );
    assert!(is_profile_in_cooldown(&s, "anthropic:default", t + 59_999));
    assert!(!is_profile_in_cooldown(&s, "anthropic:default", t + 60_000));
    mark_auth_profile_used(&mut s, &paths, "anthropic:default", t + 1);
    assert_eq!(
        read()["usageStats"]["anthropic:default"],
        json!({"errorCount": 0, "lastFailureAt": t, "lastUsed": t + 1})
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn held_lock_falls_back_to_an_unlocked_save() {
    let (dir, mut paths) = agent_with_store(one_anthropic_profile(json!({})));
    paths.lock.retries = 1;
    paths.lock.min_timeout_ms = 1;
    std::fs::create_dir(dir.join("auth-profiles.json.lock")).unwrap();
    let mut s = paths.load();
    mark_auth_profile_failure(
        &mut s,
        &paths,
        "anthropic:default",
        FailoverReason::Auth,
        &json!({}),
        1000,
    );
    assert_eq!(
        s.usage_number("anthropic:default", "cooldownUntil"),
        Some(61_000.0)
    );
    assert_eq!(
        paths
            .load()
            .usage_number("anthropic:default", "cooldownUntil"),
        Some(61_000.0)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn two_anthropic() -> Value {
    json!({"version": 1, "profiles": {
        "anthropic:default": {"type": "api_key", "provider": "anthropic", "key": "sk-default"},
        "anthropic:work": {"type": "api_key", "provider": "anthropic", "key": "sk-work"}}})
}

fn with(mut base: Value, extra: Value) -> Value {
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

fn explicit_profiles_cfg(extra: Value) -> Value {
    let mut auth = json!({"profiles": {"anthropic:default": {"provider": "anthropic", "mode": "api_key"}, "anthropic:work": {"provider": "anthropic", "mode": "api_key"}}});
    auth.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"auth": auth})
}

fn order(cfg: &Value, s: &Value, provider: &str, preferred: Option<&str>) -> Vec<String> {
    resolve_auth_profile_order(cfg, &store(s.clone()), provider, preferred, now_ms())
}

#[test]
fn order_sources_and_precedence() {
    let cfg = explicit_profiles_cfg(json!({}));
    let used = with(
        two_anthropic(),
        json!({"lastGood": {"anthropic": "anthropic:work"}, "usageStats": {"anthropic:default": {"lastUsed": 100}, "anthropic:work": {"lastUsed": 200}}}),
    );
    assert_eq!(
        order(&cfg, &used, "anthropic", None)[0],
        "anthropic:default"
    );
    assert_eq!(
        order(&cfg, &two_anthropic(), "anthropic", None),
        ["anthropic:default", "anthropic:work"]
    );
    let cfg_order = explicit_profiles_cfg(
        json!({"order": {"anthropic": ["anthropic:work", "anthropic:default"]}}),
    );
    assert_eq!(
        order(&cfg_order, &two_anthropic(), "anthropic", None),
        ["anthropic:work", "anthropic:default"]
    );
    let cfg_other = explicit_profiles_cfg(
        json!({"order": {"anthropic": ["anthropic:default", "anthropic:work"]}}),
    );
    let store_order = with(
        two_anthropic(),
        json!({"order": {"anthropic": ["anthropic:work", "anthropic:default"]}}),
    );
    assert_eq!(
        order(&cfg_other, &store_order, "anthropic", None),
        ["anthropic:work", "anthropic:default"]
    );
    assert_eq!(
        order(&json!({}), &two_anthropic(), "anthropic", None),
        ["anthropic:default", "anthropic:work"]
    );
    let preferred = order(&cfg, &two_anthropic(), "anthropic", Some("anthropic:work"));
    assert_eq!(preferred, ["anthropic:work", "anthropic:default"]);
}

#[test]
fn cooling_and_disabled_profiles_go_last_even_with_explicit_order() {
    let now = now_ms();
    let cfg_order = explicit_profiles_cfg(
        json!({"order": {"anthropic": ["anthropic:default", "anthropic:work"]}}),
    );
    for stats in [
        json!({"cooldownUntil": now + 60_000}),
        json!({"disabledUntil": now + 60_000, "disabledReason": "billing"}),
    ] {
        let usage =
            json!({"usageStats": {"anthropic:default": stats, "anthropic:work": {"lastUsed": 1}}});
        let store_order = with(
            with(
                two_anthropic(),
                json!({"order": {"anthropic": ["anthropic:default", "anthropic:work"]}}),
            ),
            usage.clone(),
        );
        assert_eq!(
            order(&json!({}), &store_order, "anthropic", None),
            ["anthropic:work", "anthropic:default"]
        );
        assert_eq!(
            order(&cfg_order, &with(two_anthropic(), usage), "anthropic", None),
            ["anthropic:work", "anthropic:default"]
        );
    }
}

#[test]
fn mode_compatibility() {
    let exp = now_ms() + 60_000;
    let both = json!({"profiles": {
        "anthropic:oauth-cred": {"type": "oauth", "provider": "anthropic", "access": "access-token", "refresh": "refresh-token", "expires": exp},
        "anthropic:token-cred": {"type": "token", "provider": "anthropic", "token": "just-a-token", "expires": exp}}});
    for id in ["anthropic:oauth-cred", "anthropic:token-cred"] {
        let cfg = json!({"auth": {"profiles": {id: {"provider": "anthropic", "mode": "oauth"}}}});
        assert!(
            order(&cfg, &both, "anthropic", None).contains(&id.to_string()),
            "{id}"
        );
    }
    let cfg = json!({"auth": {"profiles": {"anthropic:oauth-cred": {"provider": "anthropic", "mode": "token"}}}});
    assert!(!order(&cfg, &both, "anthropic", None).contains(&"anthropic:oauth-cred".to_string()));
}

#[test]
fn provider_aliases_in_order_and_profiles() {
    let zai = json!({"profiles": {"zai:default": {"type": "api_key", "provider": "zai", "key": "a"}, "zai:work": {"type": "api_key", "provider": "zai", "key": "b"}}});
    let cfg = json!({"auth": {"order": {"z.ai": ["zai:work", "zai:default"]}, "profiles": {"zai:default": {"provider": "zai", "mode": "api_key"}, "zai:work": {"provider": "zai", "mode": "api_key"}}}});
    assert_eq!(order(&cfg, &zai, "zai", None), ["zai:work", "zai:default"]);
    let cfg = json!({"auth": {"profiles": {"zai:default": {"provider": "z.ai", "mode": "api_key"}, "zai:work": {"provider": "Z.AI", "mode": "api_key"}}}});
    assert_eq!(order(&cfg, &zai, "zai", None), ["zai:default", "zai:work"]);
    let oa = json!({"profiles": {"openai:default": {"type": "api_key", "provider": "openai", "key": "a"}, "openai:work": {"type": "api_key", "provider": "openai", "key": "b"}}});
    let cfg = json!({"auth": {"order": {"OpenAI": ["openai:work", "openai:default"]}}});
    assert_eq!(
        order(&cfg, &oa, "openai", None),
        ["openai:work", "openai:default"]
    );
}

#[test]
fn round_robin_by_type_then_last_used_and_cooldown_expiry() {
    let now = now_ms();
    let s = json!({"profiles": {
        "anthropic:a": {"type": "oauth", "provider": "anthropic", "access": "t", "refresh": "r", "expires": now + 60_000},
        "anthropic:b": {"type": "api_key", "provider": "anthropic", "key": "sk-b"},
        "anthropic:c": {"type": "api_key", "provider": "anthropic", "key": "sk-c"}},
        "usageStats": {"anthropic:a": {"lastUsed": 200}, "anthropic:b": {"lastUsed": 100}, "anthropic:c": {"lastUsed": 300}}});
    assert_eq!(
        order(&json!({}), &s, "anthropic", None),
        ["anthropic:a", "anthropic:b", "anthropic:c"]
    );
    let s = json!({"profiles": {
        "anthropic:ready": {"type": "api_key", "provider": "anthropic", "key": "sk-ready"},
        "anthropic:cool1": {"type": "oauth", "provider": "anthropic", "access": "t", "refresh": "r", "expires": now + 60_000},
        "anthropic:cool2": {"type": "api_key", "provider": "anthropic", "key": "sk-cool"}},
        "usageStats": {"anthropic:ready": {"lastUsed": 50}, "anthropic:cool1": {"cooldownUntil": now + 5_000}, "anthropic:cool2": {"cooldownUntil": now + 1_000}}});
    assert_eq!(
        order(&json!({}), &s, "anthropic", None),
        ["anthropic:ready", "anthropic:cool2", "anthropic:cool1"]
    );
}

#[test]
fn unusable_or_foreign_profiles_are_dropped() {
    let now = now_ms();
    let cfg = json!({"auth": {"order": {"minimax": ["minimax:default", "minimax:prod"]}}});
    let s = json!({"profiles": {"minimax:prod": {"type": "api_key", "provider": "minimax", "key": "sk-prod"}}});
    assert_eq!(order(&cfg, &s, "minimax", None), ["minimax:prod"]);
    let cfg = json!({"auth": {"order": {"minimax": ["openai:default", "minimax:prod"]}}});
    let s = json!({"profiles": {"openai:default": {"type": "api_key", "provider": "openai", "key": "x"}, "minimax:prod": {"type": "api_key", "provider": "minimax", "key": "y"}}});
    assert_eq!(order(&cfg, &s, "minimax", None), ["minimax:prod"]);
    let cfg = json!({"auth": {"order": {"minimax": ["minimax:default"]}}});
    let blank = json!({"profiles": {"minimax:default": {"type": "token", "provider": "minimax", "token": "   "}}});
    assert!(order(&cfg, &blank, "minimax", None).is_empty());
    let expired = json!({"profiles": {"minimax:default": {"type": "token", "provider": "minimax", "token": "sk", "expires": now - 1000}}});
    assert!(order(&cfg, &expired, "minimax", None).is_empty());
    let cfg = json!({"auth": {"order": {"anthropic": ["anthropic:oauth"]}}});
    let refreshable = json!({"profiles": {"anthropic:oauth": {"type": "oauth", "provider": "anthropic", "access": "", "refresh": "r", "expires": now - 1000}}});
    assert_eq!(
        order(&cfg, &refreshable, "anthropic", None),
        ["anthropic:oauth"]
    );
}

#[test]
fn session_pin_survives_provider_alias_differences() {
    let s = store(
        json!({"version": 1, "profiles": {"zai:work": {"type": "api_key", "provider": "zai", "key": "sk-test"}}, "order": {"zai": ["zai:work"]}}),
    );
    let state = SessionPinState {
        profile: Some("zai:work".into()),
        source: Some("user".into()),
        compaction_count_at_pin: None,
    };
    let (resolved, update) =
        resolve_session_auth_profile_override(&json!({}), &s, "z.ai", &state, 0, false, now_ms());
    assert_eq!(
        (resolved.as_deref(), update),
        (Some("zai:work"), PinUpdate::Unchanged)
    );
}
