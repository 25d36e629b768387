//! Shared-secret auth: resolving the effective token/password and mode (config, env, CLI
//! overlay), the start-up refusals, and checking a client's secret in constant time with
//! upstream's failure texts.

use serde_json::Value;

use crate::state::paths::env_twin;
use crate::util::constant_time_eq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Token,
    Password,
}

/// The effective gateway auth for this run.
#[derive(Clone, Default)]
pub struct ResolvedAuth {
    pub mode: Option<AuthMode>,
    pub token: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ResolvedAuth {
    // Never print the secrets themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedAuth")
            .field("mode", &self.mode)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// CLI flags that overlay `gateway.auth` for one run.
#[derive(Debug, Clone, Default)]
pub struct AuthOverlay {
    pub mode: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
}

/// token = `--token` > `gateway.auth.token` > env; password likewise; mode = explicit, else
/// password when a password is known, else token.
pub fn resolve(config: &Value, overlay: &AuthOverlay) -> ResolvedAuth {
    let auth = config.pointer("/gateway/auth");
    let cfg = |k: &str| {
        auth.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    };
    let token = overlay
        .token
        .clone()
        .or_else(|| cfg("token"))
        .or_else(|| env_twin("GATEWAY_TOKEN"));
    let password = overlay
        .password
        .clone()
        .or_else(|| cfg("password"))
        .or_else(|| env_twin("GATEWAY_PASSWORD"));
    let mode = match overlay.mode.clone().or_else(|| cfg("mode")).as_deref() {
        Some("password") => AuthMode::Password,
        Some("token") => AuthMode::Token,
        _ if password.is_some() => AuthMode::Password,
        _ => AuthMode::Token,
    };
    ResolvedAuth {
        mode: Some(mode),
        token,
        password,
    }
}

impl ResolvedAuth {
    pub fn has_secret(&self) -> bool {
        match self.mode {
            Some(AuthMode::Password) => self.password.is_some(),
            _ => self.token.is_some(),
        }
    }
}

/// The CLI refusals of `moltbot gateway` (upstream `run.ts`), lines joined by `\n`.
pub fn startup_refusal(
    auth: &ResolvedAuth,
    bind: &str,
    is_loopback: bool,
    config: &Value,
) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    match auth.mode {
        Some(AuthMode::Password) if auth.password.is_none() => {
            lines.push("Gateway auth is set to password, but no password is configured.".into());
            lines.push(
                "Set gateway.auth.password (or CLAWDBOT_GATEWAY_PASSWORD), or pass --password."
                    .into(),
            );
        }
        Some(AuthMode::Token) | None if auth.token.is_none() => {
            if !is_loopback {
                lines.push(format!("Refusing to bind gateway to {bind} without auth."));
                lines.push("Set gateway.auth.token/password (or CLAWDBOT_GATEWAY_TOKEN/CLAWDBOT_GATEWAY_PASSWORD) or pass --token/--password.".into());
            } else {
                lines.push("Gateway auth is set to token, but no token is configured.".into());
                lines.push(
                    "Set gateway.auth.token (or CLAWDBOT_GATEWAY_TOKEN), or pass --token.".into(),
                );
            }
        }
        _ => return None,
    }
    if config.pointer("/gateway/token").is_some() {
        lines.push(r#"Found "gateway.token" in config. Use "gateway.auth.token" instead."#.into());
    }
    if config.pointer("/gateway/remote/token").is_some() {
        lines.push(r#""gateway.remote.token" is for remote CLI calls; it does not enable local gateway auth."#.into());
    }
    Some(lines.join("\n"))
}

/// Why a connect's shared secret failed (upstream's reason names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    TokenMissingConfig,
    TokenMissing,
    TokenMismatch,
    PasswordMissingConfig,
    PasswordMissing,
    PasswordMismatch,
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::TokenMissingConfig => "token_missing_config",
            AuthFailure::TokenMissing => "token_missing",
            AuthFailure::TokenMismatch => "token_mismatch",
            AuthFailure::PasswordMissingConfig => "password_missing_config",
            AuthFailure::PasswordMissing => "password_missing",
            AuthFailure::PasswordMismatch => "password_mismatch",
        }
    }
}

/// Checks the secret the client presented against the effective one for the mode.
pub fn authorize(
    auth: &ResolvedAuth,
    token: Option<&str>,
    password: Option<&str>,
) -> Result<(), AuthFailure> {
    if auth.mode == Some(AuthMode::Password) {
        let Some(expected) = auth.password.as_deref() else {
            return Err(AuthFailure::PasswordMissingConfig);
        };
        let Some(given) = password.filter(|p| !p.is_empty()) else {
            return Err(AuthFailure::PasswordMissing);
        };
        return if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(AuthFailure::PasswordMismatch)
        };
    }
    let Some(expected) = auth.token.as_deref() else {
        return Err(AuthFailure::TokenMissingConfig);
    };
    let Some(given) = token.filter(|t| !t.is_empty()) else {
        return Err(AuthFailure::TokenMissing);
    };
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(AuthFailure::TokenMismatch)
    }
}

/// Who is connecting, for the wording of the hint (`formatGatewayAuthFailureMessage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Cli,
    ControlUi,
    Other,
}

/// The user-visible failure text, e.g. `unauthorized: gateway token mismatch (set
/// gateway.remote.token to match gateway.auth.token)`.
pub fn failure_message(failure: AuthFailure, kind: ClientKind) -> String {
    let token_hint = match kind {
        ClientKind::Cli => "set gateway.remote.token to match gateway.auth.token",
        ClientKind::ControlUi => {
            "open a tokenized dashboard URL or paste token in Control UI settings"
        }
        ClientKind::Other => "provide gateway auth token",
    };
    let password_hint = match kind {
        ClientKind::Cli => "set gateway.remote.password to match gateway.auth.password",
        ClientKind::ControlUi => "enter the password in Control UI settings",
        ClientKind::Other => "provide gateway auth password",
    };
    match failure {
        AuthFailure::TokenMissing => format!("unauthorized: gateway token missing ({token_hint})"),
        AuthFailure::TokenMismatch => {
            format!("unauthorized: gateway token mismatch ({token_hint})")
        }
        AuthFailure::TokenMissingConfig => {
            "unauthorized: gateway token not configured on gateway (set gateway.auth.token)".into()
        }
        AuthFailure::PasswordMissing => {
            format!("unauthorized: gateway password missing ({password_hint})")
        }
        AuthFailure::PasswordMismatch => {
            format!("unauthorized: gateway password mismatch ({password_hint})")
        }
        AuthFailure::PasswordMissingConfig => {
            "unauthorized: gateway password not configured on gateway (set gateway.auth.password)"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token_auth(t: &str) -> ResolvedAuth {
        ResolvedAuth {
            mode: Some(AuthMode::Token),
            token: Some(t.into()),
            password: None,
        }
    }

    #[test]
    fn token_checks() {
        let a = token_auth("t");
        assert_eq!(authorize(&a, Some("t"), None), Ok(()));
        assert_eq!(
            authorize(&a, Some("x"), None),
            Err(AuthFailure::TokenMismatch)
        );
        assert_eq!(
            authorize(&a, None, Some("t")),
            Err(AuthFailure::TokenMissing)
        );
    }

    #[test]
    fn password_mode_ignores_token() {
        let a = ResolvedAuth {
            mode: Some(AuthMode::Password),
            token: Some("t".into()),
            password: Some("p".into()),
        };
        assert_eq!(
            authorize(&a, Some("t"), None),
            Err(AuthFailure::PasswordMissing)
        );
        assert_eq!(authorize(&a, None, Some("p")), Ok(()));
    }

    #[test]
    fn overlay_wins_and_mode_follows_password() {
        let cfg = json!({"gateway":{"auth":{"token":"cfg"}}});
        let r = resolve(
            &cfg,
            &AuthOverlay {
                token: Some("cli".into()),
                ..Default::default()
            },
        );
        assert_eq!(r.token.as_deref(), Some("cli"));
        let r = resolve(
            &json!({"gateway":{"auth":{"password":"p"}}}),
            &AuthOverlay::default(),
        );
        assert_eq!(r.mode, Some(AuthMode::Password));
    }

    #[test]
    fn refusal_texts() {
        let none = ResolvedAuth {
            mode: Some(AuthMode::Token),
            token: None,
            password: None,
        };
        let msg = startup_refusal(&none, "lan", false, &json!({})).unwrap();
        assert!(msg.starts_with("Refusing to bind gateway to lan without auth."));
        assert!(startup_refusal(&token_auth("t"), "lan", false, &json!({})).is_none());
        assert_eq!(
            failure_message(AuthFailure::TokenMismatch, ClientKind::Cli),
            "unauthorized: gateway token mismatch (set gateway.remote.token to match gateway.auth.token)"
        );
    }
}
