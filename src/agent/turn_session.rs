//! The session side of a turn: which session id and transcript it runs on (minting a new one
//! when the daily or idle reset says the old one is stale), the `sessions.json` update after it,
//! and the fresh session upstream starts after a context overflow it could not compact away.

use serde_json::{json, Map, Value};
use std::path::PathBuf;

use crate::agent::sessions::SessionStore;
use crate::agent::sessions::{evaluate_reset, reset_entry, usage_patch, Usage};
use crate::agent::turn::TurnOutcome;
use crate::util::now_ms;

/// The session a turn runs on.
pub struct SessionChoice {
    pub id: String,
    pub transcript: PathBuf,
    /// A new session's entry, still to be written (`NewEntry::write`).
    pub new_entry: Option<NewEntry>,
}

/// The `sessions.json` entry of a session minted for this turn. It must land before the turn
/// ends (the session's next turn may start before the usage update and must find the same
/// session), but not before the request: the turn writes it while the provider answers.
pub struct NewEntry {
    store: SessionStore,
    key: String,
    id: String,
    transcript: PathBuf,
    created_at: u64,
}

impl NewEntry {
    pub fn write(self) {
        let created = self.store.update(&self.key, |entry| {
            let fresh = crate::agent::sessions::new_entry_with_file(
                &self.id,
                self.created_at,
                &self.transcript,
            );
            for (k, v) in fresh {
                entry.entry(k).or_insert(v);
            }
        });
        if let Err(e) = created {
            log::warn!(target: "agent", "failed to create session {}: {e}", self.key);
        }
    }
}

/// The session's id and transcript path. No entry: a new id, its entry to be written by the
/// caller. A stale entry (`session.reset` daily/idle rules): a new id written now, the rest of
/// the entry kept as upstream's reset does.
pub fn session_of(store: &SessionStore, key: &str, config: &Value) -> SessionChoice {
    let entry = store.get(key);
    let current = entry.as_ref().and_then(|e| {
        let id = e.get("sessionId")?.as_str()?.to_string();
        Some(id)
    });
    let Some(id) = current else {
        let id = crate::util::uuid_v4();
        let transcript = store.transcript_path(&id, None);
        let new_entry = NewEntry {
            store: store.clone(),
            key: key.to_string(),
            id: id.clone(),
            transcript: transcript.clone(),
            created_at: now_ms(),
        };
        return SessionChoice {
            id,
            transcript,
            new_entry: Some(new_entry),
        };
    };
    let existing = |(id, transcript)| SessionChoice {
        id,
        transcript,
        new_entry: None,
    };
    let is_group = key.contains(":group:") || key.contains(":channel:");
    let is_thread = key.contains(":thread:") || key.contains(":topic:");
    let now = now_ms();
    let decision = evaluate_reset(
        config,
        key,
        entry.as_ref(),
        now as i64,
        is_group,
        is_thread,
        None,
    );
    if decision.new_session {
        if let Some(fresh) = start_new_session(store, key) {
            log::info!(target: "agent", "session {key} was stale ({:?}); started a new one", decision.freshness);
            return existing(fresh);
        }
    }
    let path = entry
        .as_ref()
        .and_then(|e| store.transcript_path_for(e))
        .unwrap_or_else(|| store.transcript_path(&id, None));
    existing((id, path))
}

/// Replaces the key's session with a new id and transcript; `None` if the store cannot be
/// written (the turn then continues on the old session).
pub fn start_new_session(store: &SessionStore, key: &str) -> Option<(String, PathBuf)> {
    let id = crate::util::uuid_v4();
    let path = store.transcript_path(&id, None);
    let result = store.update(key, |entry| {
        *entry = reset_entry(Some(entry), &id, now_ms(), &path);
    });
    match result {
        Ok(_) => Some((id, path)),
        Err(e) => {
            log::warn!(target: "agent", "failed to reset session {key}: {e}");
            None
        }
    }
}

/// Updates `sessions.json` after a turn: model, token counts, flags (unknown fields kept). Only
/// the entry the turn ran on is touched: one deleted or reset meanwhile is left as it is.
pub fn record_session(
    store: &SessionStore,
    key: &str,
    session_id: &str,
    outcome: &TurnOutcome,
    compactions: u32,
    context: Option<u64>,
) {
    let now = now_ms();
    // Upstream's `updateSessionStoreEntry`: an entry deleted meanwhile stays deleted.
    let result = store.merge_existing(key, |entry| {
        // `sessions.reset` ran while this turn was streaming: the new session wins.
        if entry.get("sessionId").and_then(Value::as_str) != Some(session_id) {
            return None;
        }
        let mut patch = Map::new();
        patch.insert("updatedAt".into(), json!(now));
        patch.insert("lastChannel".into(), json!("webchat"));
        if let TurnOutcome::Done {
            message,
            provider,
            model,
            ..
        } = outcome
        {
            let usage = message.get("usage").and_then(Usage::from_value);
            let usage = usage_patch(
                entry,
                usage.as_ref(),
                Some(provider),
                Some(model),
                context,
                now,
            );
            patch.extend(usage.unwrap_or_default());
        }
        if compactions > 0 {
            let count = entry
                .get("compactionCount")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            patch.insert(
                "compactionCount".into(),
                json!(count + u64::from(compactions)),
            );
        }
        patch.insert(
            "abortedLastRun".into(),
            json!(matches!(outcome, TurnOutcome::Aborted { .. })),
        );
        Some(patch)
    });
    if let Err(e) = result {
        log::warn!(target: "agent", "failed to update {}: {e}", store.path().display());
    }
}
