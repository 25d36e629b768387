//! Context-window guard, registry overrides/custom providers and `models.list`.

use super::*;

// ---- context-window-guard.test.ts -----------------------------------------------------------

#[test]
fn context_window_guard_thresholds_and_sources() {
    let none = json!({});
    let guard = |cfg: &Value, p: &str, id: &str, w: Option<u64>| {
        evaluate_context_window_guard(
            resolve_context_window_info(cfg, p, id, w, 200_000),
            None,
            None,
        )
    };
    let g = guard(&none, "openrouter", "tiny", Some(8000));
    assert_eq!(
        (g.source, g.tokens, g.should_warn, g.should_block),
        (ContextWindowSource::Model, 8000, true, true)
    );
    let g = guard(&none, "openai", "small", Some(24_000));
    assert_eq!(
        (g.tokens, g.should_warn, g.should_block),
        (24_000, true, false)
    );
    let g = guard(&none, "openai", "ok", Some(64_000));
    assert!(!g.should_warn && !g.should_block);
    let cfg = json!({"models": {"providers": {"openrouter": {"baseUrl": "http://localhost", "apiKey": "x", "models": [{"id": "tiny", "name": "tiny", "contextWindow": 12_000, "maxTokens": 256}]}}}});
    let g = guard(&cfg, "openrouter", "tiny", None);
    assert_eq!(
        (g.source, g.should_block),
        (ContextWindowSource::ModelsConfig, true)
    );
    let cfg = json!({"agents": {"defaults": {"contextTokens": 20_000}}});
    let g = guard(&cfg, "anthropic", "whatever", None);
    assert_eq!(
        (g.source, g.should_warn, g.should_block),
        (ContextWindowSource::AgentContextTokens, true, false)
    );
    let g = guard(&none, "anthropic", "unknown", None);
    assert_eq!(
        (g.source, g.should_warn, g.should_block),
        (ContextWindowSource::Default, false, false)
    );
    let info = ContextWindowInfo {
        tokens: 10_000,
        source: ContextWindowSource::Model,
    };
    let g = evaluate_context_window_guard(info, Some(12_000), Some(9_000));
    assert!(g.should_warn && !g.should_block);
    assert_eq!(
        (
            CONTEXT_WINDOW_HARD_MIN_TOKENS,
            CONTEXT_WINDOW_WARN_BELOW_TOKENS
        ),
        (16_000, 32_000)
    );
}

#[test]
fn too_small_window_is_a_failover_error_that_advances() {
    let cfg = json!({"models": {"providers": {"tiny": {"baseUrl": "http://127.0.0.1:1/v1", "api": "openai-completions", "apiKey": "k", "models": [{"id": "t", "name": "t", "contextWindow": 8000}]}}},
        "agents": {"defaults": {"model": {"primary": "tiny/t", "fallbacks": ["anthropic/claude-opus-4-5"]}}}});
    let registry = Registry::from_config(&cfg);
    let (out, calls) = run_fallback(&cfg, "tiny", "t", None, None, |_, p, m| {
        let model = resolve_model(&cfg, &registry, p, m).map_err(RunError::plain)?;
        check_context_window(&cfg, &model)?;
        Ok("ok")
    });
    let out = out.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        out.attempts[0].error,
        "Model context window too small (8000 tokens). Minimum is 16000."
    );
    assert_eq!(out.attempts[0].reason, Some(FailoverReason::Unknown));
}

// ---- registry, models.providers and models.list ---------------------------------------------

fn fake_providers_cfg() -> Value {
    json!({"models": {"providers": {
        "anthropic": {"baseUrl": "http://127.0.0.1:18081", "models": []},
        "openai": {"baseUrl": "http://127.0.0.1:18082/v1", "headers": {"x-test": "1"}, "models": []},
        "fakechat": {"baseUrl": "http://127.0.0.1:18082/v1", "api": "openai-completions", "apiKey": "fake-key", "authHeader": true,
            "headers": {"x-p": "p"}, "models": [{"id": "gpt-test", "name": "gpt-test", "contextWindow": 128000, "maxTokens": 4096, "headers": {"x-m": "m"}}]}
    }}})
}

#[test]
fn override_only_providers_keep_catalog_metadata() {
    let cfg = fake_providers_cfg();
    let reg = Registry::from_config(&cfg);
    let opus = resolve_model(&cfg, &reg, "anthropic", "claude-opus-4-5").unwrap();
    assert_eq!(
        (
            opus.base_url.as_str(),
            opus.api.as_str(),
            opus.max_tokens,
            opus.reasoning
        ),
        ("http://127.0.0.1:18081", "anthropic-messages", 64_000, true)
    );
    let gpt = resolve_model(&cfg, &reg, "openai", "gpt-5.2").unwrap();
    assert_eq!(
        (gpt.base_url.as_str(), gpt.api.as_str()),
        ("http://127.0.0.1:18082/v1", "openai-responses")
    );
    assert_eq!(gpt.headers, vec![("x-test".to_string(), "1".to_string())]);
}

#[test]
fn custom_providers_and_unknown_models() {
    let cfg = fake_providers_cfg();
    let reg = Registry::from_config(&cfg);
    let m = resolve_model(&cfg, &reg, "fakechat", "gpt-test").unwrap();
    assert_eq!(
        (
            m.api.as_str(),
            m.context_window,
            m.max_tokens,
            m.reasoning,
            m.auth_header
        ),
        ("openai-completions", 128_000, 4096, false, true)
    );
    assert_eq!(m.input, ["text"]);
    assert_eq!(
        m.headers,
        vec![
            ("x-p".to_string(), "p".to_string()),
            ("x-m".to_string(), "m".to_string())
        ]
    );
    let synthetic = resolve_model(&cfg, &reg, "fakechat", "other").unwrap();
    assert_eq!(
        (
            synthetic.api.as_str(),
            synthetic.context_window,
            synthetic.max_tokens
        ),
        ("openai-completions", 128_000, 4096)
    );
    let mock = resolve_model(
        &json!({}),
        &Registry::from_config(&json!({})),
        "x",
        "mock-1",
    )
    .unwrap();
    assert_eq!(mock.api, "openai-responses");
    // A configured provider turns any id into a synthetic model (upstream `resolveModel`).
    let synthetic_openai = resolve_model(&cfg, &reg, "openai", "nope").unwrap();
    assert_eq!(
        (
            synthetic_openai.api.as_str(),
            synthetic_openai.base_url.as_str()
        ),
        ("openai-responses", "http://127.0.0.1:18082/v1")
    );
    assert_eq!(
        resolve_model(&cfg, &reg, "groq", "x").unwrap_err(),
        "Unknown model: groq/x"
    );
}

#[test]
fn models_list_is_sorted_and_shaped() {
    let cfg = fake_providers_cfg();
    let list = models_list_payload(&Registry::from_config(&cfg).catalog());
    let models = list["models"].as_array().unwrap();
    let providers: Vec<&str> = models
        .iter()
        .map(|m| m["provider"].as_str().unwrap())
        .collect();
    let mut sorted = providers.clone();
    sorted.sort();
    assert_eq!(providers, sorted);
    assert_eq!(providers.first(), Some(&"anthropic"));
    let anthropic_names: Vec<&str> = models
        .iter()
        .filter(|m| m["provider"] == "anthropic")
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        anthropic_names[..3],
        [
            "Claude Haiku 3",
            "Claude Haiku 3.5",
            "Claude Haiku 3.5 (latest)"
        ]
    );
    let fake = models.iter().find(|m| m["provider"] == "fakechat").unwrap();
    assert_eq!(
        fake,
        &json!({"id": "gpt-test", "name": "gpt-test", "provider": "fakechat", "contextWindow": 128000, "reasoning": false, "input": ["text"]})
    );
    let keys: Vec<&String> = models[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "provider",
            "contextWindow",
            "reasoning",
            "input"
        ]
    );
}

#[test]
fn auth_paths_follow_config_and_env() {
    let state = moltbot::state::StateDir::new(PathBuf::from("/s"));
    let cfg = json!({"agents": {"list": [{"id": "Work", "agentDir": "/custom/work"}]}});
    let no_env = |_: &str| None;
    let p = AuthPaths::for_agent(&cfg, &state, "work", &no_env);
    assert_eq!(
        (p.agent_dir.as_path(), p.main_dir.as_path()),
        (Path::new("/custom/work"), Path::new("/s/agents/main/agent"))
    );
    let env = |k: &str| (k == "CLAWDBOT_AGENT_DIR").then(|| "/m".to_string());
    assert_eq!(
        AuthPaths::for_agent(&json!({}), &state, "ops", &env).main_dir,
        PathBuf::from("/m")
    );
    assert_eq!(
        AuthPaths::for_agent(&json!({}), &state, "ops", &no_env).agent_dir,
        PathBuf::from("/s/agents/ops/agent")
    );
}
