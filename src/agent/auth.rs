//! Credentials for a provider: profile order (`resolveAuthProfileOrder`), the key resolution
//! chain explicit profile → profile order → env var table → `models.providers.<p>.apiKey`
//! (`model-auth.ts`), and the session auto-pin. The store file, its lock and the cooldown
//! bookkeeping are in the submodules. Secrets are wrapped in [`Secret`], whose `Debug` and
//! `Display` print nothing of the key.

pub mod lock;
pub mod order;
pub mod resolve;
pub mod session_pin;
pub mod store;
pub mod usage;

use std::fmt;

pub use store::{
    auth_store_path, load_auth_store, save_auth_store, AuthStore, Credential, CredentialKind,
};
pub use usage::{
    calculate_auth_profile_cooldown_ms, calculate_billing_disable_ms, clear_auth_profile_cooldown,
    is_profile_in_cooldown, mark_auth_profile_failure, mark_auth_profile_good,
    mark_auth_profile_used, profile_unusable_until, resolve_cooldown_config, AuthPaths,
    CooldownConfig,
};

pub use order::{custom_provider_api_key, resolve_auth_profile_order};
pub use resolve::{resolve_api_key_for_provider, AuthContext};

use crate::agent::models::normalize_provider_id;

/// A credential value; never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The raw value, for building request headers only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How the key is sent (spec §2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    ApiKey,
    Token,
    OAuth,
    /// Bedrock's AWS credential chain; no secret is resolved here.
    AwsSdk,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "api-key",
            AuthMode::Token => "token",
            AuthMode::OAuth => "oauth",
            AuthMode::AwsSdk => "aws-sdk",
        }
    }

    fn of(kind: CredentialKind) -> AuthMode {
        match kind {
            CredentialKind::ApiKey => AuthMode::ApiKey,
            CredentialKind::Token => AuthMode::Token,
            CredentialKind::OAuth => AuthMode::OAuth,
        }
    }
}

/// The credential a request will use.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCredential {
    /// The auth profile, when the key came from one (only those can be cooled down).
    pub profile_id: Option<String>,
    pub kind: AuthMode,
    pub secret: Secret,
    /// `profile:<id>`, `env: <VAR>`, `models.json` or an AWS source label.
    pub source: String,
}

/// Anthropic setup tokens switch the wire to Bearer + Claude Code headers.
pub fn is_anthropic_setup_token(secret: &str) -> bool {
    secret.starts_with("sk-ant-oat")
}

/// The env vars checked for `provider`, first non-empty wins.
pub fn env_api_key_vars(provider: &str) -> &'static [&'static str] {
    match normalize_provider_id(provider).as_str() {
        "github-copilot" => &["COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN"],
        "anthropic" => &["ANTHROPIC_OAUTH_TOKEN", "ANTHROPIC_API_KEY"],
        "chutes" => &["CHUTES_OAUTH_TOKEN", "CHUTES_API_KEY"],
        "zai" => &["ZAI_API_KEY", "Z_AI_API_KEY"],
        "opencode" => &["OPENCODE_API_KEY", "OPENCODE_ZEN_API_KEY"],
        "qwen-portal" => &["QWEN_OAUTH_TOKEN", "QWEN_PORTAL_API_KEY"],
        "openai" => &["OPENAI_API_KEY"],
        "google" => &["GEMINI_API_KEY"],
        "groq" => &["GROQ_API_KEY"],
        "deepgram" => &["DEEPGRAM_API_KEY"],
        "cerebras" => &["CEREBRAS_API_KEY"],
        "xai" => &["XAI_API_KEY"],
        "openrouter" => &["OPENROUTER_API_KEY"],
        "vercel-ai-gateway" => &["AI_GATEWAY_API_KEY"],
        "moonshot" => &["MOONSHOT_API_KEY"],
        "kimi-code" => &["KIMICODE_API_KEY"],
        "minimax" => &["MINIMAX_API_KEY"],
        "synthetic" => &["SYNTHETIC_API_KEY"],
        "venice" => &["VENICE_API_KEY"],
        "mistral" => &["MISTRAL_API_KEY"],
        _ => &[],
    }
}

/// `resolveEnvApiKey`: the trimmed value and `env: <VAR>`.
pub fn resolve_env_api_key(
    provider: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(Secret, String)> {
    env_api_key_vars(provider).iter().find_map(|var| {
        let value = env(var)?.trim().to_string();
        (!value.is_empty()).then(|| (Secret(value), format!("env: {var}")))
    })
}
