//! Key resolution for a provider (`model-auth.ts` `resolveApiKeyForProvider`): explicit profile
//! → profile order → env var table → `models.providers.<p>.apiKey` → the upstream error text.

use std::path::Path;

use serde_json::Value;

use super::order::{
    config_profile, config_text, custom_provider_api_key, expired, mode_compatible,
    provider_auth_override, resolve_auth_profile_order,
};
use super::store::{auth_store_path, AuthStore, Credential, CredentialKind};
use super::{resolve_env_api_key, AuthMode, ResolvedCredential, Secret};
use crate::agent::failover::RunError;
use crate::agent::models::normalize_provider_id;

/// Everything key resolution reads.
pub struct AuthContext<'a> {
    pub config: &'a Value,
    pub store: &'a AuthStore,
    /// For the error text only (`Auth store: <path> (agentDir: <dir>)`).
    pub agent_dir: &'a Path,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub now_ms: u64,
}

/// `resolveApiKeyForProfile`: `Ok(None)` when the profile cannot serve (missing, config
/// mismatch, empty or expired token); an expired OAuth credential is an error because this
/// gateway does not run OAuth refresh flows.
fn key_for_profile(
    ctx: &AuthContext<'_>,
    id: &str,
) -> Result<Option<(Secret, AuthMode)>, RunError> {
    let Some(cred) = ctx.store.profile(id) else {
        return Ok(None);
    };
    if let Some(pc) = config_profile(ctx.config, id) {
        if config_text(pc, "provider") != cred.provider()
            || !mode_compatible(config_text(pc, "mode"), cred.kind())
        {
            return Ok(None);
        }
    }
    let mode = AuthMode::of(cred.kind());
    let secret = match cred.kind() {
        CredentialKind::ApiKey => cred.key().unwrap_or("").to_string(),
        CredentialKind::Token => {
            let token = cred.token_value().unwrap_or("").trim();
            if token.is_empty() || expired(cred.expires(), ctx.now_ms) {
                return Ok(None);
            }
            token.to_string()
        }
        CredentialKind::OAuth => oauth_key(cred, ctx.now_ms)?,
    };
    Ok(Some((Secret(secret), mode)))
}

fn oauth_key(cred: &Credential, now_ms: u64) -> Result<String, RunError> {
    let fresh = cred.expires().is_some_and(|e| (now_ms as f64) < e);
    if !fresh {
        return Err(RunError::plain(format!(
            "OAuth token refresh failed for {}: token refresh is not supported by this gateway. Please try again or re-authenticate.",
            cred.provider()
        )));
    }
    let access = cred.access().unwrap_or("").to_string();
    if matches!(cred.provider(), "google-gemini-cli" | "google-antigravity") {
        return Ok(
            serde_json::json!({"token": access, "projectId": cred.project_id()}).to_string(),
        );
    }
    Ok(access)
}

fn from_profile(id: &str, secret: Secret, kind: AuthMode) -> ResolvedCredential {
    ResolvedCredential {
        profile_id: Some(id.to_string()),
        kind,
        secret,
        source: format!("profile:{id}"),
    }
}

/// `resolveApiKeyForProvider`: explicit profile → (`auth: "aws-sdk"`) → profile order →
/// env vars → `models.providers.<p>.apiKey` → error. Errors are plain (their texts classify
/// as `auth`, so the fallback chain moves on).
pub fn resolve_api_key_for_provider(
    ctx: &AuthContext<'_>,
    provider: &str,
    profile_id: Option<&str>,
    preferred: Option<&str>,
) -> Result<ResolvedCredential, RunError> {
    if let Some(id) = profile_id {
        let (secret, kind) = key_for_profile(ctx, id)?.ok_or_else(|| {
            RunError::plain(format!("No credentials found for profile \"{id}\"."))
        })?;
        return require_secret(from_profile(id, secret, kind), provider);
    }
    let aws_override = provider_auth_override(ctx.config, provider) == Some("aws-sdk");
    if aws_override {
        return Ok(aws_sdk_credential(ctx.env));
    }
    for id in resolve_auth_profile_order(ctx.config, ctx.store, provider, preferred, ctx.now_ms) {
        // A profile that fails (e.g. an OAuth credential needing refresh) just yields to the next.
        if let Ok(Some((secret, kind))) = key_for_profile(ctx, &id) {
            return require_secret(from_profile(&id, secret, kind), provider);
        }
    }
    if let Some((secret, source)) = resolve_env_api_key(provider, ctx.env) {
        let kind = if source.contains("OAUTH_TOKEN") {
            AuthMode::OAuth
        } else {
            AuthMode::ApiKey
        };
        return Ok(ResolvedCredential {
            profile_id: None,
            kind,
            secret,
            source,
        });
    }
    if let Some(key) = custom_provider_api_key(ctx.config, provider) {
        return Ok(ResolvedCredential {
            profile_id: None,
            kind: AuthMode::ApiKey,
            secret: Secret(key),
            source: "models.json".into(),
        });
    }
    if provider_auth_override(ctx.config, provider).is_none()
        && normalize_provider_id(provider) == "amazon-bedrock"
    {
        return Ok(aws_sdk_credential(ctx.env));
    }
    Err(RunError::plain(missing_key_message(ctx, provider)))
}

/// run.ts refuses an empty key (`requireApiKey`).
fn require_secret(
    cred: ResolvedCredential,
    provider: &str,
) -> Result<ResolvedCredential, RunError> {
    if cred.secret.0.trim().is_empty() {
        return Err(RunError::plain(format!(
            "No API key resolved for provider \"{provider}\" (auth mode: {}).",
            cred.kind.as_str()
        )));
    }
    Ok(cred)
}

fn aws_sdk_credential(env: &dyn Fn(&str) -> Option<String>) -> ResolvedCredential {
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    let source = if set("AWS_BEARER_TOKEN_BEDROCK") {
        "env: AWS_BEARER_TOKEN_BEDROCK"
    } else if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        "env: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY"
    } else if set("AWS_PROFILE") {
        "env: AWS_PROFILE"
    } else {
        "aws-sdk default chain"
    };
    ResolvedCredential {
        profile_id: None,
        kind: AuthMode::AwsSdk,
        secret: Secret::default(),
        source: source.into(),
    }
}

fn missing_key_message(ctx: &AuthContext<'_>, provider: &str) -> String {
    if provider == "openai" && !ctx.store.profiles_for_provider("openai-codex").is_empty() {
        return "No API key found for provider \"openai\". You are authenticated with OpenAI Codex OAuth. Use openai-codex/gpt-5.2 (ChatGPT OAuth) or set OPENAI_API_KEY for openai/gpt-5.2.".into();
    }
    let path = auth_store_path(ctx.agent_dir);
    let dir = path.parent().unwrap_or(ctx.agent_dir);
    format!(
        "No API key found for provider \"{provider}\". Auth store: {} (agentDir: {}). Configure auth for this agent ({}) or copy auth-profiles.json from the main agentDir.",
        path.display(),
        dir.display(),
        cli_command("moltbot agents add <id>", ctx.env)
    )
}

/// `formatCliCommand`: adds `--profile <name>` when `CLAWDBOT_PROFILE` names a non-default one.
fn cli_command(command: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let profile = env("CLAWDBOT_PROFILE")
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    let valid = profile.len() <= 64
        && profile
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid || profile.eq_ignore_ascii_case("default") {
        return command.to_string();
    }
    command.replacen("moltbot", &format!("moltbot --profile {profile}"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::auth::is_anthropic_setup_token;
    use serde_json::json;

    fn store() -> AuthStore {
        AuthStore::from_json(&json!({"profiles": {
            "anthropic:a": {"type": "api_key", "provider": "anthropic", "key": "sk-ant-a"},
            "anthropic:b": {"type": "api_key", "provider": "anthropic", "key": "sk-ant-b"}
        }, "usageStats": {"anthropic:a": {"cooldownUntil": 5000}}}))
        .unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn resolution_chain() {
        let (cfg, s) = (
            json!({"models": {"providers": {"fakechat": {"apiKey": " fake-key "}}}}),
            store(),
        );
        let env = |k: &str| (k == "OPENAI_API_KEY").then(|| " sk-test ".to_string());
        let ctx = AuthContext {
            config: &cfg,
            store: &s,
            agent_dir: Path::new("/s/agents/main/agent"),
            env: &env,
            now_ms: 1000,
        };
        let a = resolve_api_key_for_provider(&ctx, "anthropic", None, None).unwrap();
        assert_eq!(
            (a.profile_id.as_deref(), a.secret.expose()),
            (Some("anthropic:b"), "sk-ant-b")
        );
        let o = resolve_api_key_for_provider(&ctx, "openai", None, None).unwrap();
        assert_eq!(
            (o.source.as_str(), o.secret.expose(), o.kind),
            ("env: OPENAI_API_KEY", "sk-test", AuthMode::ApiKey)
        );
        let f = resolve_api_key_for_provider(&ctx, "fakechat", None, None).unwrap();
        assert_eq!(
            (f.source.as_str(), f.secret.expose()),
            ("models.json", "fake-key")
        );
        let pinned =
            resolve_api_key_for_provider(&ctx, "anthropic", Some("anthropic:a"), None).unwrap();
        assert_eq!(pinned.source, "profile:anthropic:a");
        let err = resolve_api_key_for_provider(&ctx, "anthropic", Some("anthropic:zz"), None)
            .unwrap_err();
        assert_eq!(
            err.message,
            "No credentials found for profile \"anthropic:zz\"."
        );
        let err = resolve_api_key_for_provider(&ctx, "groq", None, None).unwrap_err();
        assert_eq!(err.message, "No API key found for provider \"groq\". Auth store: /s/agents/main/agent/auth-profiles.json (agentDir: /s/agents/main/agent). Configure auth for this agent (moltbot agents add <id>) or copy auth-profiles.json from the main agentDir.");
        assert!(!format!("{a:?}").contains("sk-ant"));
    }

    #[test]
    fn oauth_env_token_counts_as_oauth() {
        let (cfg, s) = (json!({}), AuthStore::empty());
        let env = |k: &str| (k == "ANTHROPIC_OAUTH_TOKEN").then(|| "sk-ant-oat01-x".to_string());
        let ctx = AuthContext {
            config: &cfg,
            store: &s,
            agent_dir: Path::new("/a"),
            env: &env,
            now_ms: 0,
        };
        let c = resolve_api_key_for_provider(&ctx, "anthropic", None, None).unwrap();
        assert_eq!(c.kind, AuthMode::OAuth);
        assert!(is_anthropic_setup_token(c.secret.expose()));
    }

    #[test]
    fn expired_oauth_is_an_auth_error_and_is_skipped_in_order() {
        let s = AuthStore::from_json(&json!({"profiles": {"anthropic:o": {"type": "oauth", "provider": "anthropic", "access": "x", "refresh": "r", "expires": 10}}})).unwrap();
        let cfg = json!({});
        let ctx = AuthContext {
            config: &cfg,
            store: &s,
            agent_dir: Path::new("/a"),
            env: &no_env,
            now_ms: 100,
        };
        let e =
            resolve_api_key_for_provider(&ctx, "anthropic", Some("anthropic:o"), None).unwrap_err();
        assert_eq!(
            crate::agent::failover::resolve_failover_reason_from_error(&e),
            Some(crate::agent::failover::FailoverReason::Auth)
        );
        assert!(resolve_api_key_for_provider(&ctx, "anthropic", None, None)
            .unwrap_err()
            .message
            .starts_with("No API key found"));
    }

    #[test]
    fn profile_flag_in_cli_hint() {
        let env = |k: &str| (k == "CLAWDBOT_PROFILE").then(|| "work".to_string());
        assert_eq!(
            cli_command("moltbot agents add <id>", &env),
            "moltbot --profile work agents add <id>"
        );
        assert_eq!(
            cli_command("moltbot agents add <id>", &no_env),
            "moltbot agents add <id>"
        );
    }
}
