//! `model-selection.test.ts`, `model-fallback.test.ts` and `failover-error.test.ts`.

use super::*;

// ---- model-selection.test.ts ----------------------------------------------------------------

#[test]
fn normalize_provider_id_cases() {
    for (raw, want) in [
        ("Anthropic", "anthropic"),
        ("Z.ai", "zai"),
        ("z-ai", "zai"),
        ("OpenCode-Zen", "opencode"),
        ("qwen", "qwen-portal"),
    ] {
        assert_eq!(normalize_provider_id(raw), want);
    }
}

#[test]
fn parse_model_ref_cases() {
    assert_eq!(
        parse_model_ref("anthropic/claude-3-5-sonnet", "openai"),
        Some(ModelRef::new("anthropic", "claude-3-5-sonnet"))
    );
    assert_eq!(
        parse_model_ref("claude-3-5-sonnet", "anthropic"),
        Some(ModelRef::new("anthropic", "claude-3-5-sonnet"))
    );
    for bad in ["", "  ", "/", "anthropic/", "/model"] {
        assert_eq!(parse_model_ref(bad, "anthropic"), None, "{bad:?}");
    }
}

#[test]
fn alias_index_from_config() {
    let cfg = json!({"agents": {"defaults": {"models": {
        "anthropic/claude-3-5-sonnet": {"alias": "fast"},
        "openai/gpt-4o": {"alias": "smart"}
    }}}});
    let index = build_model_alias_index(&cfg, "anthropic");
    assert_eq!(
        index.by_alias["fast"].1,
        ModelRef::new("anthropic", "claude-3-5-sonnet")
    );
    assert_eq!(index.by_alias["smart"].1, ModelRef::new("openai", "gpt-4o"));
    assert_eq!(
        index.by_key[&model_key("anthropic", "claude-3-5-sonnet")],
        vec!["fast".to_string()]
    );
}

#[test]
fn resolve_model_ref_from_string_alias_then_direct() {
    let cfg = json!({"agents": {"defaults": {"models": {"anthropic/sonnet": {"alias": "Fast"}}}}});
    let index = build_model_alias_index(&cfg, "anthropic");
    let r = resolve_model_ref_from_string("FAST", "openai", Some(&index)).unwrap();
    assert_eq!(
        (r.model_ref, r.alias.as_deref()),
        (ModelRef::new("anthropic", "sonnet"), Some("Fast"))
    );
    let d = resolve_model_ref_from_string("openai/gpt-4", "anthropic", None).unwrap();
    assert_eq!(
        (d.model_ref, d.alias),
        (ModelRef::new("openai", "gpt-4"), None)
    );
}

#[test]
fn configured_model_falls_back_to_anthropic_or_default() {
    let cfg = json!({"agents": {"defaults": {"model": "claude-3-5-sonnet"}}});
    assert_eq!(
        resolve_configured_model_ref(&cfg, "google", "gemini-pro"),
        ModelRef::new("anthropic", "claude-3-5-sonnet")
    );
    let cfg = json!({"agents": {"defaults": {"model": {"primary": "claude-3-5-sonnet"}}}});
    assert_eq!(
        resolve_configured_model_ref(&cfg, "google", "gemini-pro"),
        ModelRef::new("anthropic", "claude-3-5-sonnet")
    );
    assert_eq!(
        resolve_configured_model_ref(&json!({}), "openai", "gpt-4"),
        ModelRef::new("openai", "gpt-4")
    );
    assert_eq!(
        resolve_default_model_for_agent(&json!({}), None),
        ModelRef::new("anthropic", "claude-opus-4-5")
    );
}

// ---- model-fallback.test.ts -----------------------------------------------------------------

fn assert_fell_back(err: RunError) {
    let (out, calls) = run_fallback(
        &fallback_cfg(),
        "openai",
        "gpt-4.1-mini",
        None,
        None,
        first_fails(err.clone()),
    );
    assert_eq!(out.expect("fell back").result, "ok", "{err:?}");
    assert_eq!(calls[1], ("anthropic".into(), "claude-haiku-3-5".into()));
}

#[test]
fn does_not_fall_back_on_non_auth_errors() {
    let (out, calls) = run_fallback(
        &fallback_cfg(),
        "openai",
        "gpt-4.1-mini",
        None,
        None,
        first_fails(RunError::plain("bad request")),
    );
    assert_eq!(out.unwrap_err().message, "bad request");
    assert_eq!(calls.len(), 1);
}

#[test]
fn falls_back_on_failover_worthy_errors() {
    assert_fell_back(RunError::plain("nope").with_status(401));
    assert_fell_back(RunError::plain("payment required").with_status(402));
    assert_fell_back(RunError::plain("LLM request rejected: Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."));
    assert_fell_back(RunError::plain("No API key found for profile openai."));
    assert_fell_back(RunError::plain("no api key found for profile openai"));
    assert_fell_back(RunError::abort("aborted").with_cause(RunError::timeout("request timed out")));
    assert_fell_back(RunError::abort("aborted").with_abort_reason("deadline exceeded"));
    assert_fell_back(RunError::plain("request aborted").with_code("ETIMEDOUT"));
    assert_fell_back(RunError::abort("Request was aborted"));
}

#[test]
fn falls_back_on_credential_validation_errors() {
    let err = RunError::plain("No credentials found for profile \"anthropic:default\".");
    let (out, calls) = run_fallback(
        &fallback_cfg(),
        "anthropic",
        "claude-opus-4",
        None,
        None,
        first_fails(err),
    );
    assert_eq!(out.unwrap().result, "ok");
    assert_eq!(calls[1], ("anthropic".into(), "claude-haiku-3-5".into()));
}

#[test]
fn does_not_fall_back_on_user_aborts() {
    let (out, calls) = run_fallback(
        &fallback_cfg(),
        "openai",
        "gpt-4.1-mini",
        None,
        None,
        first_fails(RunError::abort("aborted")),
    );
    assert_eq!(out.unwrap_err().message, "aborted");
    assert_eq!(calls.len(), 1);
}

fn cooldown_cfg(provider: &str) -> Value {
    json!({"agents": {"defaults": {"model": {"primary": format!("{provider}/m1"), "fallbacks": ["fallback/ok-model"]}}}})
}

#[test]
fn skips_providers_when_all_profiles_are_in_cooldown() {
    let p = "cooldown-test";
    let s = store(
        json!({"version": 1, "profiles": {"cooldown-test:default": {"type": "api_key", "provider": p, "key": "test-key"}},
        "usageStats": {"cooldown-test:default": {"cooldownUntil": now_ms() + 60_000}}}),
    );
    let (out, calls) = run_fallback(&cooldown_cfg(p), p, "m1", Some(&s), None, |_, p, m| {
        if p == "fallback" {
            Ok("ok")
        } else {
            Err(RunError::plain(format!("unexpected provider: {p}/{m}")))
        }
    });
    let out = out.unwrap();
    assert_eq!(
        calls,
        vec![("fallback".to_string(), "ok-model".to_string())]
    );
    assert_eq!(out.attempts[0].reason, Some(FailoverReason::RateLimit));
    assert_eq!(
        out.attempts[0].error,
        "Provider cooldown-test is in cooldown (all profiles unavailable)"
    );
}

#[test]
fn does_not_skip_when_any_profile_is_available() {
    let p = "cooldown-mixed";
    let s = store(json!({"profiles": {
        "cooldown-mixed:a": {"type": "api_key", "provider": p, "key": "key-a"},
        "cooldown-mixed:b": {"type": "api_key", "provider": p, "key": "key-b"}},
        "usageStats": {"cooldown-mixed:a": {"cooldownUntil": now_ms() + 60_000}}}));
    let (out, calls) = run_fallback(&cooldown_cfg(p), p, "m1", Some(&s), None, |_, _, _| {
        Ok("ok")
    });
    assert!(out.unwrap().attempts.is_empty());
    assert_eq!(calls, vec![(p.to_string(), "m1".to_string())]);
}

#[test]
fn fallbacks_override_does_not_append_the_primary() {
    let cfg = json!({"agents": {"defaults": {"model": {"primary": "openai/gpt-4.1-mini"}}}});
    let over = vec!["anthropic/claude-haiku-3-5".to_string()];
    let (out, calls) = run_fallback(
        &cfg,
        "anthropic",
        "claude-opus-4-5",
        None,
        Some(&over),
        |_, _, _| Err(RunError::plain("nope").with_status(401)),
    );
    let err = out.unwrap_err();
    assert!(
        err.message.starts_with("All models failed (2): "),
        "{}",
        err.message
    );
    assert_eq!(err.message, "All models failed (2): anthropic/claude-opus-4-5: nope (auth) | anthropic/claude-haiku-3-5: nope (auth)");
    assert_eq!(
        calls,
        vec![
            ("anthropic".to_string(), "claude-opus-4-5".to_string()),
            ("anthropic".into(), "claude-haiku-3-5".into())
        ]
    );
}

#[test]
fn fallbacks_override_replaces_defaults_and_empty_disables_them() {
    let cfg = json!({"agents": {"defaults": {"model": {"fallbacks": ["openai/gpt-5.2"]}}}});
    let over = vec!["openai/gpt-4.1".to_string()];
    let (out, calls) = run_fallback(
        &cfg,
        "anthropic",
        "claude-opus-4-5",
        None,
        Some(&over),
        |_, p, m| match (p, m) {
            ("anthropic", _) => Err(RunError::plain("nope").with_status(401)),
            ("openai", "gpt-4.1") => Ok("ok"),
            _ => Err(RunError::plain(format!("unexpected candidate: {p}/{m}"))),
        },
    );
    assert_eq!(out.unwrap().result, "ok");
    assert_eq!(calls.len(), 2);
    let (out, calls) = run_fallback(
        &cfg,
        "anthropic",
        "claude-opus-4-5",
        None,
        Some(&[]),
        |_, _, _| Err(RunError::plain("primary failed")),
    );
    assert_eq!(out.unwrap_err().message, "primary failed");
    assert_eq!(calls.len(), 1);
}

#[test]
fn defaults_provider_and_model_when_missing() {
    let cfg = json!({"agents": {"defaults": {"model": {"primary": "openai/gpt-4.1-mini", "fallbacks": []}}}});
    let (out, calls) = run_fallback(&cfg, "", "", None, None, |_, _, _| Ok("ok"));
    assert_eq!(out.unwrap().result, "ok");
    assert_eq!(
        calls,
        vec![("openai".to_string(), "gpt-4.1-mini".to_string())]
    );
}

#[test]
fn appends_the_configured_primary_as_last_fallback() {
    let cfg = json!({"agents": {"defaults": {"model": {"primary": "openai/gpt-4.1-mini", "fallbacks": []}}}});
    let err = RunError::plain("timeout").with_code("ETIMEDOUT");
    let (out, calls) = run_fallback(
        &cfg,
        "openrouter",
        "meta-llama/llama-3.3-70b:free",
        None,
        None,
        first_fails(err),
    );
    let out = out.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (out.provider.as_str(), out.model.as_str()),
        ("openai", "gpt-4.1-mini")
    );
}

// ---- failover-error.test.ts -----------------------------------------------------------------

#[test]
fn failover_reason_from_status_code_and_message() {
    let reason = |e: RunError| resolve_failover_reason_from_error(&e);
    assert_eq!(
        reason(RunError::plain("").with_status(402)),
        Some(FailoverReason::Billing)
    );
    assert_eq!(
        reason(RunError::plain("").with_status(429)),
        Some(FailoverReason::RateLimit)
    );
    assert_eq!(
        reason(RunError::plain("").with_status(403)),
        Some(FailoverReason::Auth)
    );
    assert_eq!(
        reason(RunError::plain("").with_status(408)),
        Some(FailoverReason::Timeout)
    );
    assert_eq!(
        reason(RunError::plain(
            "invalid request format: messages.1.content.1.tool_use.id"
        )),
        Some(FailoverReason::Format)
    );
    assert_eq!(
        reason(RunError::plain("").with_code("ETIMEDOUT")),
        Some(FailoverReason::Timeout)
    );
    assert_eq!(
        reason(RunError::plain("").with_code("ECONNRESET")),
        Some(FailoverReason::Timeout)
    );
    assert_eq!(reason(RunError::plain("123")), None);
}

#[test]
fn coerces_failover_worthy_errors_with_metadata() {
    let e = coerce_to_failover_error(
        &RunError::plain("credit balance too low"),
        Some("anthropic"),
        Some("claude-opus-4-5"),
        None,
    )
    .unwrap();
    assert_eq!(
        (e.failover_reason(), e.status),
        (Some(FailoverReason::Billing), Some(402))
    );
    assert_eq!(
        (e.provider.as_deref(), e.model.as_deref()),
        (Some("anthropic"), Some("claude-opus-4-5"))
    );
    let f = coerce_to_failover_error(
        &RunError::plain("invalid request format"),
        Some("google"),
        Some("cloud-code-assist"),
        None,
    )
    .unwrap();
    assert_eq!(
        (f.failover_reason(), f.status),
        (Some(FailoverReason::Format), Some(400))
    );
}
