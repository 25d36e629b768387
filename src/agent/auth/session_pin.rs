//! The per-session auth profile pin (`auth-profiles/session-override.ts`): a user pin (from
//! `/model …@profile`) holds until a new session; an auto pin moves to the next available
//! profile on a new session or after a compaction, and to the first available one when the
//! pinned profile cools down. Pure: the caller stores the returned update in `sessions.json`
//! (`authProfileOverride`, `authProfileOverrideSource`, `authProfileOverrideCompactionCount`).

use serde_json::Value;

use super::store::AuthStore;
use super::{is_profile_in_cooldown, resolve_auth_profile_order};
use crate::agent::models::normalize_provider_id;

/// The pin fields of a session entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPinState {
    pub profile: Option<String>,
    /// `"auto"` or `"user"`.
    pub source: Option<String>,
    pub compaction_count_at_pin: Option<u64>,
}

/// What to write back to the session entry.
#[derive(Debug, Clone, PartialEq)]
pub enum PinUpdate {
    Unchanged,
    /// Delete the three pin fields.
    Clear,
    /// Store an auto pin.
    SetAuto {
        profile: String,
        compaction_count: u64,
    },
}

/// Returns the profile to prefer for this run and the update to persist. A `Clear` and a later
/// `SetAuto` in the same call collapse to the `SetAuto`.
pub fn resolve_session_auth_profile_override(
    config: &Value,
    store: &AuthStore,
    provider: &str,
    state: &SessionPinState,
    compaction_count: u64,
    is_new_session: bool,
    now_ms: u64,
) -> (Option<String>, PinUpdate) {
    let order = resolve_auth_profile_order(config, store, provider, None, now_ms);
    let mut state = state.clone();
    let mut update = PinUpdate::Unchanged;
    let current = state
        .profile
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let stale = current.as_deref().is_some_and(|id| {
        let for_provider = store.profile(id).is_some_and(|c| {
            normalize_provider_id(c.provider()) == normalize_provider_id(provider)
        });
        !for_provider || (!order.is_empty() && !order.iter().any(|o| o == id))
    });
    let current = if stale {
        state = SessionPinState::default();
        update = PinUpdate::Clear;
        None
    } else {
        current
    };
    if order.is_empty() {
        return (None, update);
    }
    let cooling = |id: &str| is_profile_in_cooldown(store, id, now_ms);
    let first_available = || {
        order
            .iter()
            .find(|id| !cooling(id))
            .unwrap_or(&order[0])
            .clone()
    };
    let next_available = |active: &str| {
        let Some(start) = order.iter().position(|id| id == active) else {
            return first_available();
        };
        (1..=order.len())
            .map(|off| &order[(start + off) % order.len()])
            .find(|id| !cooling(id))
            .unwrap_or(&order[start])
            .clone()
    };
    let stored_compaction = state.compaction_count_at_pin.unwrap_or(compaction_count);
    let source = state
        .source
        .clone()
        .or_else(|| match (state.compaction_count_at_pin, &current) {
            (Some(_), _) => Some("auto".into()),
            (None, Some(_)) => Some("user".into()),
            _ => None,
        });
    if source.as_deref() == Some("user") && current.is_some() && !is_new_session {
        return (current, update);
    }
    let next = if is_new_session {
        Some(
            current
                .as_deref()
                .map_or_else(first_available, next_available),
        )
    } else if let Some(cur) = current
        .as_deref()
        .filter(|_| compaction_count > stored_compaction)
    {
        Some(next_available(cur))
    } else if current.as_deref().is_none_or(cooling) {
        Some(first_available())
    } else {
        current.clone()
    };
    let Some(next) = next else {
        return (current, update);
    };
    let persist = state.profile.as_deref() != Some(next.as_str())
        || state.source.as_deref() != Some("auto")
        || state.compaction_count_at_pin != Some(compaction_count);
    if persist {
        update = PinUpdate::SetAuto {
            profile: next.clone(),
            compaction_count,
        };
    }
    (Some(next), update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> AuthStore {
        AuthStore::from_json(&json!({"profiles": {
            "anthropic:a": {"type": "api_key", "provider": "anthropic", "key": "a"},
            "anthropic:b": {"type": "api_key", "provider": "Anthropic", "key": "b"}
        }}))
        .unwrap()
    }

    fn pin(profile: &str, source: Option<&str>, count: Option<u64>) -> SessionPinState {
        SessionPinState {
            profile: Some(profile.into()),
            source: source.map(Into::into),
            compaction_count_at_pin: count,
        }
    }

    #[test]
    fn user_pin_survives_until_new_session() {
        let (cfg, s) = (json!({}), store());
        let user = pin("anthropic:b", Some("user"), None);
        assert_eq!(
            resolve_session_auth_profile_override(&cfg, &s, "anthropic", &user, 3, false, 0),
            (Some("anthropic:b".into()), PinUpdate::Unchanged)
        );
        let (next, upd) =
            resolve_session_auth_profile_override(&cfg, &s, "anthropic", &user, 3, true, 0);
        assert_eq!(next.as_deref(), Some("anthropic:a"));
        assert_eq!(
            upd,
            PinUpdate::SetAuto {
                profile: "anthropic:a".into(),
                compaction_count: 3
            }
        );
    }

    #[test]
    fn auto_pin_rotates_after_compaction_and_provider_alias_matches() {
        let (cfg, s) = (json!({}), store());
        let auto = pin("anthropic:a", Some("auto"), Some(1));
        let (next, _) =
            resolve_session_auth_profile_override(&cfg, &s, "ANTHROPIC", &auto, 2, false, 0);
        assert_eq!(next.as_deref(), Some("anthropic:b"));
        let (same, upd) =
            resolve_session_auth_profile_override(&cfg, &s, "anthropic", &auto, 1, false, 0);
        assert_eq!(
            (same.as_deref(), upd),
            (Some("anthropic:a"), PinUpdate::Unchanged)
        );
    }

    #[test]
    fn stale_pins_are_cleared() {
        let (cfg, s) = (json!({}), store());
        let (next, upd) = resolve_session_auth_profile_override(
            &cfg,
            &s,
            "openai",
            &pin("anthropic:a", None, None),
            0,
            false,
            0,
        );
        assert_eq!((next, upd), (None, PinUpdate::Clear));
    }
}
