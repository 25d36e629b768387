//! DM pairing stores, in upstream's files (`src/pairing/pairing-store.ts`):
//! `<credentials>/<channel>-pairing.json` (pending requests: 8-char codes, 1 h TTL, at most 3)
//! and `<channel>-allowFrom.json` (approved sender ids). Writes are atomic and 0600, under the
//! same `proper-lockfile` directory lock upstream takes, so a Node gateway or `moltbot pairing
//! approve` on the same state dir never races us. Channels read the allow store when they admit
//! a DM; the Control UI lists, approves and rejects requests through `pairing.*`.

use serde_json::{json, Value};
use std::io;
use std::path::{Path, PathBuf};

use crate::agent::auth::lock::{DirLock, LockOptions};
use crate::agent::transcript::parse_iso_ms;

/// Requests expire an hour after they were created.
pub const PENDING_TTL_MS: u64 = 60 * 60 * 1000;
/// At most this many pending requests per channel.
pub const PENDING_MAX: usize = 3;
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LENGTH: usize = 8;

/// The channels whose DMs use pairing in this gateway.
pub const CHANNELS: &[&str] = &["discord", "telegram"];

/// One channel's two files below the credentials dir.
pub struct Store {
    dir: PathBuf,
    channel: String,
}

impl Store {
    /// `None` for a channel name that is empty or would escape the directory.
    pub fn new(credentials: &Path, channel: &str) -> Option<Store> {
        let channel = safe_channel_key(channel)?;
        Some(Store {
            dir: credentials.to_path_buf(),
            channel,
        })
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    pub fn pairing_path(&self) -> PathBuf {
        self.dir.join(format!("{}-pairing.json", self.channel))
    }

    pub fn allow_from_path(&self) -> PathBuf {
        self.dir.join(format!("{}-allowFrom.json", self.channel))
    }

    /// Pending requests, oldest first; expired and excess ones are pruned (and written back).
    pub fn list(&self, now_ms: u64) -> io::Result<Vec<Value>> {
        let path = self.pairing_path();
        let _lock = lock(&path, &json!({"version": 1, "requests": []}))?;
        let requests = read_array(&path, "requests");
        let (kept, pruned) = prune(requests.clone(), now_ms);
        if pruned {
            write_json(&path, &json!({"version": 1, "requests": kept}))?;
        }
        let mut valid: Vec<Value> = kept.into_iter().filter(is_well_formed).collect();
        valid.sort_by(|a, b| str_of(a, "createdAt").cmp(str_of(b, "createdAt")));
        Ok(valid)
    }

    /// Approved sender ids (upstream drops empty and `*` entries when reading).
    pub fn allow_from(&self) -> Vec<String> {
        read_array(&self.allow_from_path(), "allowFrom")
            .iter()
            .filter_map(entry_string)
            .collect()
    }

    /// Creates or refreshes the request of sender `id`. Returns its code and whether it is new;
    /// an empty code when the channel already has the maximum of pending requests.
    pub fn upsert(&self, id: &str, meta: Option<Value>, now_ms: u64) -> io::Result<(String, bool)> {
        let path = self.pairing_path();
        let _lock = lock(&path, &json!({"version": 1, "requests": []}))?;
        let (mut requests, _) = prune_expired(read_array(&path, "requests"), now_ms);
        let now = crate::util::iso_from_ms(now_ms);
        let id = id.trim();
        if let Some(existing) = requests.iter_mut().find(|r| str_of(r, "id") == id) {
            let code = str_of(existing, "code").to_string();
            existing["lastSeenAt"] = json!(now);
            if let Some(m) = meta {
                existing["meta"] = m;
            }
            write_json(&path, &json!({"version": 1, "requests": requests}))?;
            return Ok((code, false));
        }
        if requests.len() >= PENDING_MAX {
            return Ok((String::new(), false));
        }
        let code = unique_code(&requests);
        let mut entry = json!({"id": id, "code": code, "createdAt": now, "lastSeenAt": now});
        if let Some(m) = meta {
            entry["meta"] = m;
        }
        requests.push(entry);
        write_json(&path, &json!({"version": 1, "requests": requests}))?;
        Ok((code, true))
    }

    /// Approves `code`: removes the request and appends its sender to the allow store.
    /// `None` when no live request has that code.
    pub fn approve(&self, code: &str, now_ms: u64) -> io::Result<Option<Value>> {
        let Some(entry) = self.take(code, now_ms)? else {
            return Ok(None);
        };
        self.add_allow_from(str_of(&entry, "id"))?;
        Ok(Some(entry))
    }

    /// Rejects `code`: removes the request without allowing its sender (it may ask again).
    pub fn reject(&self, code: &str, now_ms: u64) -> io::Result<Option<Value>> {
        self.take(code, now_ms)
    }

    fn take(&self, code: &str, now_ms: u64) -> io::Result<Option<Value>> {
        let code = code.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Ok(None);
        }
        let path = self.pairing_path();
        let _lock = lock(&path, &json!({"version": 1, "requests": []}))?;
        let (mut requests, pruned) = prune_expired(read_array(&path, "requests"), now_ms);
        let found = requests
            .iter()
            .position(|r| str_of(r, "code").to_ascii_uppercase() == code);
        let entry = found.map(|i| requests.remove(i));
        if entry.is_some() || pruned {
            write_json(&path, &json!({"version": 1, "requests": requests}))?;
        }
        Ok(entry)
    }

    fn add_allow_from(&self, id: &str) -> io::Result<()> {
        let path = self.allow_from_path();
        let _lock = lock(&path, &json!({"version": 1, "allowFrom": []}))?;
        let mut current: Vec<String> = read_array(&path, "allowFrom")
            .iter()
            .filter_map(entry_string)
            .collect();
        let id = id.trim();
        if id.is_empty() || id == "*" || current.iter().any(|c| c == id) {
            return Ok(());
        }
        current.push(id.to_string());
        write_json(&path, &json!({"version": 1, "allowFrom": current}))
    }
}

/// upstream's `safeChannelKey`: lowercased, path characters and `..` replaced by `_`.
fn safe_channel_key(channel: &str) -> Option<String> {
    let raw = channel.trim().to_lowercase();
    let safe: String = raw
        .chars()
        .map(|c| match c {
            '\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        })
        .collect::<String>()
        .replace("..", "_");
    (!safe.is_empty() && safe != "_").then_some(safe)
}

/// Takes the directory lock beside `path`, creating the file first (proper-lockfile locks the
/// real path, so it must exist).
fn lock(path: &Path, empty: &Value) -> io::Result<DirLock> {
    if !path.exists() {
        write_json(path, empty)?;
    }
    DirLock::acquire(path, &LockOptions::default())
}

/// Two-space JSON with a trailing newline, as upstream writes it.
fn write_json(path: &Path, value: &Value) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    crate::state::atomic::write_private(path, text.as_bytes())
}

/// The array under `key`; a missing or broken file reads as empty (upstream's fallback).
fn read_array(path: &Path, key: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|raw| serde_json::from_str::<Value>(&raw).ok())
        .and_then(|v| v.get(key).and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn entry_string(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s != "*").then_some(s)
}

fn is_well_formed(r: &Value) -> bool {
    ["id", "code", "createdAt"]
        .iter()
        .all(|k| r.get(*k).is_some_and(Value::is_string))
}

fn is_expired(r: &Value, now_ms: u64) -> bool {
    match parse_iso_ms(str_of(r, "createdAt")) {
        Some(created) => now_ms.saturating_sub(created) > PENDING_TTL_MS,
        None => true,
    }
}

fn prune_expired(requests: Vec<Value>, now_ms: u64) -> (Vec<Value>, bool) {
    let before = requests.len();
    let kept: Vec<Value> = requests
        .into_iter()
        .filter(|r| !is_expired(r, now_ms))
        .collect();
    let pruned = kept.len() != before;
    (kept, pruned)
}

/// Expired requests go, then the least recently seen beyond the cap.
fn prune(requests: Vec<Value>, now_ms: u64) -> (Vec<Value>, bool) {
    let (mut kept, mut pruned) = prune_expired(requests, now_ms);
    if kept.len() > PENDING_MAX {
        let seen = |r: &Value| {
            parse_iso_ms(str_of(r, "lastSeenAt"))
                .or_else(|| parse_iso_ms(str_of(r, "createdAt")))
                .unwrap_or(0)
        };
        kept.sort_by_key(seen);
        kept.drain(..kept.len() - PENDING_MAX);
        pruned = true;
    }
    (kept, pruned)
}

fn unique_code(existing: &[Value]) -> String {
    loop {
        let mut bytes = [0u8; CODE_LENGTH];
        crate::util::random_bytes(&mut bytes);
        let code: String = bytes
            .iter()
            .map(|b| CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char)
            .collect();
        if !existing
            .iter()
            .any(|r| str_of(r, "code").eq_ignore_ascii_case(&code))
        {
            return code;
        }
    }
}

#[cfg(test)]
mod tests;
