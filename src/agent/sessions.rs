//! The session index `sessions.json` (config-and-state.md §4.2–4.3): tolerant reads, locked
//! read-modify-write updates that interoperate with upstream's `sessions.json.lock`, atomic 0600
//! writes formatted as `JSON.stringify(store, null, 2)`, and transcript paths. Entry lifecycle
//! (fresh entries, daily/idle reset, usage) lives in `sessions_entry.rs`.

#[path = "sessions_entry.rs"]
mod entry;
pub use entry::*;
#[path = "sessions_lock.rs"]
mod lock;
use lock::StoreLock;
#[path = "sessions_cache.rs"]
mod cache;
pub use cache::expire_idle as expire_idle_copies;
#[path = "sessions_read.rs"]
mod read;
#[path = "sessions_write.rs"]
mod write;
use read::{read_store, ReadState};

use crate::routing::normalize_channel_id;
use serde_json::{json, Map, Value};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Upstream gives up on `sessions.json.lock` after 10 s.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an update could not be written.
#[derive(Debug)]
pub enum StoreError {
    /// Another writer held `<path>.lock` for the whole timeout.
    LockTimeout {
        lock_path: PathBuf,
    },
    Io(io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Upstream names the lock file, not the store, in this message.
            StoreError::LockTimeout { lock_path } => write!(
                f,
                "timeout acquiring session store lock: {}",
                lock_path.display()
            ),
            StoreError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// One agent's `sessions.json`.
#[derive(Debug, Clone)]
pub struct SessionStore {
    path: PathBuf,
    lock_timeout: Duration,
}

impl SessionStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SessionStore {
            path: path.into(),
            lock_timeout: LOCK_TIMEOUT,
        }
    }

    /// A shorter lock timeout (tests; callers that would rather fail fast).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<path>.lock`, the file upstream creates with O_EXCL.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The directory holding the store and, by default, the transcripts.
    pub fn sessions_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Every entry, keyed by session key. Missing, unreadable or non-object files read as empty;
    /// legacy field names are renamed in memory.
    pub fn load(&self) -> Map<String, Value> {
        read_store(&self.path).0.read().sessions.clone()
    }

    pub fn get(&self, key: &str) -> Option<Map<String, Value>> {
        let store = read_store(&self.path).0;
        let entry = store.read().sessions.get(key).cloned();
        entry.and_then(into_object)
    }

    /// Locked read-modify-write of the whole store; `f`'s result is returned after the write.
    /// `f` edits the shared copy under its write lock, so it must not read this store itself
    /// (`get`, `load`: that would wait on its own lock); everything it needs is in the map.
    pub fn update_store<T>(
        &self,
        f: impl FnOnce(&mut Map<String, Value>) -> T,
    ) -> Result<T, StoreError> {
        self.update_store_touching(None, f)
    }

    /// `update_store` for a closure that changes only the entry `touched` (when `Some`).
    fn update_store_touching<T>(
        &self,
        touched: Option<&str>,
        f: impl FnOnce(&mut Map<String, Value>) -> T,
    ) -> Result<T, StoreError> {
        let out = self.edit(touched, |store| Some(f(store)))?;
        Ok(out.expect("the closure always asks for a write"))
    }

    /// The locked read-modify-write every update is: `f` edits the store in place (the cached
    /// copy itself, see `sessions_cache.rs`) and returns `None` when it changed nothing, which
    /// writes nothing. A failed write, or a panic in `f`, forgets the copy, which may then be
    /// ahead of the file.
    fn edit<T>(
        &self,
        touched: Option<&str>,
        f: impl FnOnce(&mut Map<String, Value>) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        let _guard = self.lock()?;
        let (store, state) = read_store(&self.path);
        let touched = touched.filter(|_| matches!(state, ReadState::Saved));
        if let ReadState::Corrupt(bytes) = state {
            self.preserve_corrupt(&bytes);
        }
        let unsaved = ForgetUnlessSaved(&self.path);
        let mut edited = store.write();
        let before = touched.map(|key| write::Before::of(&edited.sessions, key));
        let Some(out) = f(&mut edited.sessions) else {
            std::mem::forget(unsaved);
            return Ok(None);
        };
        normalize_delivery(&mut edited.sessions, touched);
        let text = edited.render(before);
        drop(edited);
        // Rewritten after every turn; atomic, not fsynced (upstream does not sync it either).
        let staged = crate::state::atomic::stage_private_unsynced(&self.path, text.as_bytes())?;
        cache::commit_saved(&self.path, staged, store.clone())?;
        std::mem::forget(unsaved);
        Ok(Some(out))
    }

    /// Mutates one entry in place (created empty when missing) under the lock. Unknown fields
    /// survive because the stored object itself is edited. A created entry that `f` left without
    /// `sessionId`/`updatedAt` gets a fresh UUID and the current time.
    pub fn update(
        &self,
        key: &str,
        f: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Value, StoreError> {
        self.update_store_touching(Some(key), |store| {
            // Edit in place so the entry keeps its position in the file.
            let slot = store.entry(key.to_string()).or_insert_with(|| json!({}));
            if !slot.is_object() {
                *slot = json!({});
            }
            if let Value::Object(entry) = slot {
                f(entry);
                fill_required(entry);
            }
            slot.clone()
        })
    }

    /// Upstream `mergeSessionEntry` under the lock: `{...existing, ...patch}` with `sessionId`
    /// kept (or minted) and `updatedAt = max(existing, patch, now)`. Creates missing entries.
    pub fn merge_entry(&self, key: &str, patch: Map<String, Value>) -> Result<Value, StoreError> {
        self.update_store_touching(Some(key), |store| {
            let existing = store.get(key).cloned().and_then(into_object);
            let merged = Value::Object(merge_session_entry(existing, patch));
            store.insert(key.to_string(), merged.clone());
            merged
        })
    }

    /// Upstream `updateSessionStoreEntry`: like `merge_entry` but only for an existing entry
    /// (`Ok(None)` when missing; nothing is written then).
    pub fn merge_existing(
        &self,
        key: &str,
        patch: impl FnOnce(&Map<String, Value>) -> Option<Map<String, Value>>,
    ) -> Result<Option<Value>, StoreError> {
        let mut unchanged = None;
        let merged = self.edit(Some(key), |store| {
            let existing = store.get(key).and_then(Value::as_object)?;
            let Some(patch) = patch(existing) else {
                unchanged = Some(Value::Object(existing.clone()));
                return None;
            };
            let merged = Value::Object(merge_session_entry(Some(existing.clone()), patch));
            store.insert(key.to_string(), merged.clone());
            Some(merged)
        })?;
        Ok(merged.or(unchanged))
    }

    /// Removes an entry; returns it if it existed. Transcripts are left alone.
    pub fn delete(&self, key: &str) -> Result<Option<Value>, StoreError> {
        self.update_store_touching(Some(key), |store| store.shift_remove(key))
    }

    /// `<sessions dir>/<sessionId>.jsonl`, or `<sessionId>-topic-<threadId>.jsonl` for Telegram
    /// topics and DM threads (the thread id URI-encoded, as `encodeURIComponent`).
    pub fn transcript_path(&self, session_id: &str, topic: Option<&str>) -> PathBuf {
        let name = match topic {
            Some(t) => format!("{session_id}-topic-{}.jsonl", encode_uri_component(t)),
            None => format!("{session_id}.jsonl"),
        };
        self.sessions_dir().join(name)
    }

    /// The entry's transcript: its stored `sessionFile` when set (absolute, honoured as is),
    /// else the default path for its `sessionId`.
    pub fn transcript_path_for(&self, entry: &Map<String, Value>) -> Option<PathBuf> {
        let stored = entry
            .get("sessionFile")
            .and_then(Value::as_str)
            .map(str::trim);
        if let Some(file) = stored.filter(|f| !f.is_empty()) {
            return Some(PathBuf::from(file));
        }
        let id = entry.get("sessionId").and_then(Value::as_str)?;
        Some(self.transcript_path(id, None))
    }

    fn lock(&self) -> Result<StoreLock, StoreError> {
        StoreLock::acquire(&self.path, &self.lock_path(), self.lock_timeout)
    }

    /// Upstream silently replaces an unparseable store with the next write; keep a copy first.
    fn preserve_corrupt(&self, bytes: &[u8]) {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".corrupt.{}", crate::util::now_ms()));
        log::warn!(
            "session store {} does not parse; keeping a copy at {}",
            self.path.display(),
            Path::new(&name).display()
        );
        let _ = fs::write(&name, bytes);
    }
}

/// Upstream normalises delivery fields on every save. A store this process saved last is
/// normalised already, so only the `touched` entry is normalised again (the same output for a
/// fraction of the work on a large store).
fn normalize_delivery(store: &mut Map<String, Value>, touched: Option<&str>) {
    let entries: Box<dyn Iterator<Item = &mut Value>> = match touched {
        Some(key) => Box::new(store.get_mut(key).into_iter()),
        None => Box::new(store.values_mut()),
    };
    for entry in entries {
        if let Some(obj) = entry.as_object_mut() {
            normalize_entry_delivery(obj);
        }
    }
}

/// Forgets the cached copy of a store unless defused with `mem::forget` once its edit is on
/// disk (or changed nothing): an error return or a panic leaves the copy ahead of the file.
struct ForgetUnlessSaved<'a>(&'a Path);

impl Drop for ForgetUnlessSaved<'_> {
    fn drop(&mut self) {
        cache::forget(self.0);
    }
}

/// `sessionId` and `updatedAt` are the two fields every entry must have.
fn fill_required(entry: &mut Map<String, Value>) {
    if !entry.contains_key("sessionId") {
        entry.insert("sessionId".into(), json!(crate::util::uuid_v4()));
    }
    if !entry.contains_key("updatedAt") {
        entry.insert("updatedAt".into(), json!(crate::util::now_ms()));
    }
}

fn into_object(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// `{...existing, ...patch, sessionId, updatedAt}` as upstream's `mergeSessionEntry`.
pub fn merge_session_entry(
    existing: Option<Map<String, Value>>,
    patch: Map<String, Value>,
) -> Map<String, Value> {
    let updated = |m: Option<&Map<String, Value>>| {
        m.and_then(|m| m.get("updatedAt"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let updated_at = updated(existing.as_ref())
        .max(updated(Some(&patch)))
        .max(crate::util::now_ms());
    let session_id = patch
        .get("sessionId")
        .or_else(|| existing.as_ref().and_then(|e| e.get("sessionId")))
        .cloned()
        .unwrap_or_else(|| json!(crate::util::uuid_v4()));
    let mut out = existing.unwrap_or_default();
    out.extend(patch);
    out.insert("sessionId".into(), session_id);
    out.insert("updatedAt".into(), json!(updated_at));
    out
}

/// Upstream `normalizeSessionEntryDelivery`: `deliveryContext` and the `last*` fields are
/// recomputed from each other (last* first, then the context) and rewritten when they differ.
fn normalize_entry_delivery(entry: &mut Map<String, Value>) {
    let get = |k: &str| entry.get(k).cloned();
    let dc = entry.get("deliveryContext").and_then(Value::as_object);
    let dc_get = |k: &str| dc.and_then(|d| d.get(k)).cloned();
    let origin_thread = entry.get("origin").and_then(|o| o.get("threadId")).cloned();
    let thread = get("lastThreadId")
        .or_else(|| dc_get("threadId"))
        .or(origin_thread);
    let from_last = Delivery::normalize(
        get("lastChannel").or_else(|| get("channel")),
        get("lastTo"),
        get("lastAccountId"),
        thread,
    );
    let from_context = Delivery::normalize(
        dc_get("channel"),
        dc_get("to"),
        dc_get("accountId"),
        dc_get("threadId"),
    );
    let next = Delivery::merge(from_last, from_context);
    let same_context = ["channel", "to", "accountId", "threadId"]
        .iter()
        .all(|k| dc_get(k) == next.as_ref().and_then(|n| n.field(k)));
    let same_last = [
        ("lastChannel", "channel"),
        ("lastTo", "to"),
        ("lastAccountId", "accountId"),
        ("lastThreadId", "threadId"),
    ]
    .iter()
    .all(|(k, f)| get(k) == next.as_ref().and_then(|n| n.field(f)));
    if same_context && same_last {
        return;
    }
    set_or_remove(
        entry,
        "deliveryContext",
        next.as_ref().map(Delivery::to_value),
    );
    for (k, f) in [
        ("lastChannel", "channel"),
        ("lastTo", "to"),
        ("lastAccountId", "accountId"),
        ("lastThreadId", "threadId"),
    ] {
        set_or_remove(entry, k, next.as_ref().and_then(|n| n.field(f)));
    }
}

/// `undefined` fields vanish from `JSON.stringify`; here they are removed.
fn set_or_remove(entry: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            entry.insert(key.to_string(), v);
        }
        None => {
            entry.shift_remove(key);
        }
    }
}

/// Upstream `DeliveryContext` after `normalizeDeliveryContext`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Delivery {
    channel: Option<String>,
    to: Option<String>,
    account_id: Option<String>,
    thread_id: Option<Value>,
}

impl Delivery {
    fn normalize(
        channel: Option<Value>,
        to: Option<Value>,
        account: Option<Value>,
        thread: Option<Value>,
    ) -> Option<Delivery> {
        let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(|s| s.trim().to_string()));
        let channel = text(channel).map(|c| normalize_channel_id(&c).unwrap_or(c));
        let d = Delivery {
            channel: channel.filter(|c| !c.is_empty()),
            to: text(to).filter(|t| !t.is_empty()),
            account_id: text(account).filter(|a| !a.is_empty()),
            thread_id: normalize_thread_id(thread),
        };
        (d != Delivery::default()).then_some(d)
    }

    fn merge(primary: Option<Delivery>, fallback: Option<Delivery>) -> Option<Delivery> {
        let (p, f) = (primary.unwrap_or_default(), fallback.unwrap_or_default());
        let d = Delivery {
            channel: p.channel.or(f.channel),
            to: p.to.or(f.to),
            account_id: p.account_id.or(f.account_id),
            thread_id: p.thread_id.or(f.thread_id),
        };
        (d != Delivery::default()).then_some(d)
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "channel" => self.channel.clone().map(Value::String),
            "to" => self.to.clone().map(Value::String),
            "accountId" => self.account_id.clone().map(Value::String),
            _ => self.thread_id.clone(),
        }
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        for k in ["channel", "to", "accountId", "threadId"] {
            if let Some(v) = self.field(k) {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    }
}

/// Numbers are truncated to integers, strings trimmed; empty strings and other types vanish.
fn normalize_thread_id(v: Option<Value>) -> Option<Value> {
    match v? {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        Value::Number(n) => n.as_f64().map(|x| json!(x.trunc() as i64)),
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| json!(t))
        }
        _ => None,
    }
}

/// JavaScript's `encodeURIComponent`.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (PathBuf, SessionStore) {
        let dir = std::env::temp_dir().join(format!("mb-sess-{}", crate::util::uuid_v4()));
        let store = SessionStore::new(dir.join("sessions.json"));
        (dir, store)
    }

    #[test]
    fn an_edit_that_panics_leaves_no_trace_in_memory() {
        let (dir, store) = temp_store();
        store
            .update("k", |e| drop(e.insert("n".into(), json!(1))))
            .unwrap();
        let edit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = store.update("k", |e| {
                e.insert("n".into(), json!(2));
                panic!("mid-edit");
            });
        }));
        assert!(edit.is_err());
        assert_eq!(
            store.get("k").unwrap()["n"],
            1,
            "the half-done edit was forgotten"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fifo_in_place_of_the_store_reads_as_empty_instead_of_blocking() {
        let (dir, store) = temp_store();
        fs::create_dir_all(&dir).unwrap();
        let path = std::ffi::CString::new(store.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = store.clone();
        std::thread::spawn(move || tx.send(reader.get("agent:main:main")));
        let got = rx.recv_timeout(Duration::from_secs(5));
        assert!(matches!(got, Ok(None)), "no writer on the FIFO: {got:?}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_and_non_object_read_as_empty() {
        let (dir, store) = temp_store();
        assert!(store.load().is_empty());
        fs::create_dir_all(&dir).unwrap();
        fs::write(store.path(), "[]").unwrap();
        assert!(store.load().is_empty());
        fs::write(store.path(), "{a: {sessionId: 'x', updatedAt: 1,},}").unwrap();
        assert_eq!(store.get("a").unwrap()["sessionId"], "x");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn delivery_normalisation_matches_upstream() {
        let mut e = json!({"sessionId": "s", "lastChannel": "WebChat"});
        normalize_entry_delivery(e.as_object_mut().unwrap());
        assert_eq!(
            e,
            json!({"sessionId": "s", "lastChannel": "webchat", "deliveryContext": {"channel": "webchat"}})
        );
        let mut e = json!({"channel": "discord", "deliveryContext": {"to": "channel:1", "accountId": " default "}});
        normalize_entry_delivery(e.as_object_mut().unwrap());
        assert_eq!(
            e["deliveryContext"],
            json!({"channel": "discord", "to": "channel:1", "accountId": "default"})
        );
        assert_eq!(e["lastTo"], "channel:1");
        // Already consistent: untouched.
        let before = json!({"deliveryContext": {"channel": "telegram", "to": "1"}, "lastChannel": "telegram", "lastTo": "1"});
        let mut e = before.clone();
        normalize_entry_delivery(e.as_object_mut().unwrap());
        assert_eq!(e, before);
    }

    #[test]
    fn merge_keeps_order_and_bumps_updated_at() {
        let existing = json!({"sessionId": "s1", "updatedAt": 5, "zeta": 1});
        let patch = json!({"label": "x", "updatedAt": 3});
        let merged = merge_session_entry(
            into_object(existing),
            into_object(patch).unwrap_or_default(),
        );
        let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
        assert_eq!(keys, ["sessionId", "updatedAt", "zeta", "label"]);
        assert!(merged["updatedAt"].as_u64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn topic_paths_are_uri_encoded() {
        let store = SessionStore::new("/s/sessions.json");
        assert_eq!(
            store.transcript_path("abc", Some("42")),
            PathBuf::from("/s/abc-topic-42.jsonl")
        );
        assert_eq!(
            store.transcript_path("abc", Some("a b/c")),
            PathBuf::from("/s/abc-topic-a%20b%2Fc.jsonl")
        );
        let entry =
            into_object(json!({"sessionId": "abc", "sessionFile": "/x/1_abc.jsonl"})).unwrap();
        assert_eq!(
            store.transcript_path_for(&entry),
            Some(PathBuf::from("/x/1_abc.jsonl"))
        );
        let entry = into_object(json!({"sessionId": "abc", "sessionFile": "  "})).unwrap();
        assert_eq!(
            store.transcript_path_for(&entry),
            Some(PathBuf::from("/s/abc.jsonl"))
        );
    }
}
