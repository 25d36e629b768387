//! Session transcripts in pi-coding-agent's v3 JSONL format (agents.md §4.1): parsing with
//! upstream's tolerance (bad lines skipped, no header → empty), the id/parentId tree and its
//! leaf, appends that write one line per `write(2)` with O_APPEND, pi's rule that nothing reaches
//! the disk before the first assistant message, v1/v2 migration, and the `<file>.lock` write lock
//! upstream's runner holds during an attempt. History building is in `transcript_history.rs`,
//! its repairs in `transcript_repair.rs`, the file writes in `transcript_file.rs`, the copy parked between
//! turns in `transcript_cache.rs`.

#[path = "transcript_history.rs"]
mod history;
pub use history::*;
#[path = "transcript_repair.rs"]
mod repair;
pub use repair::*;
#[path = "transcript_chat.rs"]
mod chat;
pub use chat::*;
#[path = "transcript_lock.rs"]
mod lock;
pub use lock::*;
#[path = "transcript_cache.rs"]
mod cache;
#[path = "transcript_file.rs"]
mod file;
#[path = "transcript_parse.rs"]
mod parse;
pub use cache::{expire_idle as expire_idle_parked, ParkOnDrop};
pub use file::EarlyHeader;
use file::{append_line, append_text, replace_file, set_aside_unreadable};
pub(crate) use parse::parse_lines;
use parse::{into_object, migrate, valid_header};

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const CURRENT_SESSION_VERSION: u64 = 3;

type Entry = Map<String, Value>;

/// How the file relates to what is in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    /// The file holds the header and every entry; new entries are appended.
    Flushed,
    /// Nothing of the buffered entries is on disk; the first flush writes header + entries,
    /// replacing whatever the file holds.
    Pending,
}

/// One transcript file, parsed.
#[derive(Debug, Clone)]
pub struct Transcript {
    path: PathBuf,
    header: Option<Entry>,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    /// Position in `entries` of the entry new ones attach to; `None` = a new root.
    leaf: Option<usize>,
    disk: Disk,
    has_assistant: bool,
    /// The file does not end in "\n" (a torn last line): the next append starts a fresh line.
    needs_newline: bool,
    skipped_lines: usize,
    migrated: bool,
    /// The file's length as this copy last read or wrote it (the parked-copy check).
    disk_len: u64,
    /// The file's stamp right after this copy's last write (`None` until it writes).
    disk_stamp: Option<crate::state::stamp::Stamp>,
    /// The header line's length once the `EarlyHeader` handed out for this file wrote it.
    early_header: Option<Arc<AtomicU64>>,
}

impl Transcript {
    /// Parses a transcript as upstream's loader does: lines that are not JSON are skipped, and a
    /// file whose first parsed line is not a `session` header with a string id has no entries.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Transcript {
        let mut t = Transcript::empty(path.into());
        let (values, skipped) = parse_lines(text);
        t.skipped_lines = skipped;
        t.needs_newline = !text.is_empty() && !text.ends_with('\n');
        t.disk_len = text.len() as u64;
        let mut values = values.into_iter();
        let header = values.next().and_then(valid_header);
        let Some(header) = header else {
            return t;
        };
        t.header = Some(header);
        t.entries = values.filter_map(into_object).collect();
        t.migrated = migrate(&mut t);
        t.rebuild_index();
        t.disk = Disk::Flushed;
        t
    }

    /// Reads a transcript (read-only use: history, previews). A missing file is `NotFound`.
    pub fn read(path: impl Into<PathBuf>) -> io::Result<Transcript> {
        let path = path.into();
        let text = crate::util::read_regular_file(&path)?;
        Ok(Transcript::parse(path, &text))
    }

    /// A new session that exists only in memory until its first assistant message, when the
    /// header and all buffered entries are written together (pi's `newSession`).
    pub fn create_pending(
        path: impl Into<PathBuf>,
        session_id: &str,
        cwd: &str,
        parent_session: Option<&str>,
    ) -> Transcript {
        let mut t = Transcript::empty(path.into());
        let mut h = Map::new();
        h.insert("type".into(), json!("session"));
        h.insert("version".into(), json!(CURRENT_SESSION_VERSION));
        h.insert("id".into(), json!(session_id));
        h.insert("timestamp".into(), json!(crate::util::iso_now()));
        h.insert("cwd".into(), json!(cwd));
        if let Some(parent) = parent_session {
            h.insert("parentSession".into(), json!(parent));
        }
        t.header = Some(h);
        t
    }

    /// Opens a transcript to append to (pi's `SessionManager.open`): an existing valid file is
    /// continued; a missing or headerless one becomes a pending new session. Old versions are
    /// migrated and the file rewritten, as pi does.
    pub fn open(path: impl Into<PathBuf>, session_id: &str, cwd: &str) -> io::Result<Transcript> {
        let path = path.into();
        // The copy a finished turn left, if the file is still exactly what it wrote.
        if let Some(t) = cache::take(&path) {
            return Ok(t);
        }
        let text = match crate::util::read_regular_file(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Transcript::create_pending(path, session_id, cwd, None));
            }
            Err(e) => return Err(e),
        };
        let mut t = Transcript::parse(path.clone(), &text);
        if t.header.is_none() {
            set_aside_unreadable(&path, &text);
            return Ok(Transcript::create_pending(path, session_id, cwd, None));
        }
        if !t.has_assistant {
            // The file holds at most a header and user lines: rewrite it whole on first flush.
            t.disk = Disk::Pending;
        } else if t.migrated {
            t.rewrite()?;
        }
        Ok(t)
    }

    /// Opens the transcript for an agent run, as moltbot's `prepareSessionManagerForRun` does on
    /// top of `open`: a file with a header but no assistant message keeps only its header, so
    /// the first flush writes header → user → assistant in order.
    pub fn open_for_run(
        path: impl Into<PathBuf>,
        session_id: &str,
        cwd: &str,
    ) -> io::Result<Transcript> {
        let mut t = Transcript::open(path, session_id, cwd)?;
        if t.disk == Disk::Pending && !t.entries.is_empty() {
            t.entries.clear();
            t.rebuild_index();
        }
        Ok(t)
    }

    fn empty(path: PathBuf) -> Transcript {
        Transcript {
            path,
            header: None,
            entries: Vec::new(),
            index: HashMap::new(),
            leaf: None,
            disk: Disk::Pending,
            has_assistant: false,
            needs_newline: false,
            skipped_lines: 0,
            migrated: false,
            disk_len: 0,
            disk_stamp: None,
            early_header: None,
        }
    }

    /// The header to write ahead of the first flush, for a new session whose file does not
    /// exist yet (one per transcript).
    pub fn early_header(&mut self) -> Option<EarlyHeader> {
        if self.disk != Disk::Pending || self.disk_len != 0 || self.early_header.is_some() {
            return None;
        }
        let (early, written) = EarlyHeader::new(&self.path, self.header.as_ref()?);
        self.early_header = Some(written);
        Some(early)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> Option<&Map<String, Value>> {
        self.header.as_ref()
    }

    /// The header's `id` (moltbot keeps it equal to the `sessionId` in `sessions.json`).
    pub fn session_id(&self) -> Option<&str> {
        self.header.as_ref()?.get("id")?.as_str()
    }

    /// Every entry after the header, in file order.
    pub fn entries(&self) -> &[Map<String, Value>] {
        &self.entries
    }

    /// Lines skipped because they were not JSON (a torn last line counts here).
    pub fn skipped_lines(&self) -> usize {
        self.skipped_lines
    }

    /// Whether the header and entries are on disk (false until the first assistant message).
    pub fn is_flushed(&self) -> bool {
        self.disk == Disk::Flushed
    }

    pub fn get(&self, id: &str) -> Option<&Map<String, Value>> {
        self.index.get(id).map(|&i| &self.entries[i])
    }

    pub fn leaf(&self) -> Option<&Map<String, Value>> {
        self.leaf.map(|i| &self.entries[i])
    }

    pub fn leaf_id(&self) -> Option<&str> {
        self.leaf()?.get("id")?.as_str()
    }

    /// Moves the leaf (pi's `branch`/`resetLeaf`): the next entry becomes a child of `id`, or a
    /// new root for `None`. Nothing is written. False when `id` is unknown.
    pub fn set_leaf(&mut self, id: Option<&str>) -> bool {
        match id {
            None => {
                self.leaf = None;
                true
            }
            Some(id) => match self.index.get(id) {
                Some(&i) => {
                    self.leaf = Some(i);
                    true
                }
                None => false,
            },
        }
    }

    /// The current branch, root first: the leaf and its ancestors by `parentId`. An entry
    /// without a known parent is a root; a parent cycle stops the walk.
    pub fn branch(&self) -> Vec<&Map<String, Value>> {
        let mut path = Vec::new();
        // One flag per entry, not a hash set: this walk runs over the whole branch every turn.
        let mut seen = vec![false; self.entries.len()];
        let mut cur = self.leaf;
        while let Some(i) = cur {
            if std::mem::replace(&mut seen[i], true) {
                break;
            }
            let entry = &self.entries[i];
            path.push(entry);
            cur = entry
                .get("parentId")
                .and_then(Value::as_str)
                .and_then(|p| self.index.get(p).copied());
        }
        path.reverse();
        path
    }

    /// Appends `{"type":"message","id","parentId","timestamp","message"}`; returns the id.
    pub fn append_message(&mut self, message: Value) -> io::Result<String> {
        let mut e = self.new_entry("message");
        e.insert("message".into(), message);
        self.append(e)
    }

    pub fn append_thinking_level_change(&mut self, level: &str) -> io::Result<String> {
        let mut e = self.new_entry("thinking_level_change");
        e.insert("thinkingLevel".into(), json!(level));
        self.append(e)
    }

    pub fn append_model_change(&mut self, provider: &str, model_id: &str) -> io::Result<String> {
        let mut e = self.new_entry("model_change");
        e.insert("provider".into(), json!(provider));
        e.insert("modelId".into(), json!(model_id));
        self.append(e)
    }

    /// A compaction: later history starts with `summary`, then the entries from
    /// `first_kept_entry_id` on. Nothing is deleted from the file.
    pub fn append_compaction(
        &mut self,
        summary: &str,
        first_kept_entry_id: &str,
        tokens_before: u64,
        details: Option<Value>,
        from_hook: Option<bool>,
    ) -> io::Result<String> {
        let mut e = self.new_entry("compaction");
        e.insert("summary".into(), json!(summary));
        e.insert("firstKeptEntryId".into(), json!(first_kept_entry_id));
        e.insert("tokensBefore".into(), json!(tokens_before));
        if let Some(d) = details {
            e.insert("details".into(), d);
        }
        if let Some(h) = from_hook {
            e.insert("fromHook".into(), json!(h));
        }
        self.append(e)
    }

    /// A `custom` entry (not part of the model context), e.g. `model-snapshot`,
    /// `moltbot.cache-ttl`. pi puts `customType` and `data` before the tree fields.
    pub fn append_custom(&mut self, custom_type: &str, data: Value) -> io::Result<String> {
        let mut e = Map::new();
        e.insert("type".into(), json!("custom"));
        e.insert("customType".into(), json!(custom_type));
        e.insert("data".into(), data);
        e.extend(self.new_entry("custom").into_iter().skip(1));
        self.append(e)
    }

    /// Synthetic error results for tool calls of the branch's last assistant message that have
    /// none (moltbot's tool-result guard at the end of an attempt); returns how many.
    pub fn append_missing_tool_results(&mut self) -> io::Result<usize> {
        let missing = pending_tool_calls(&self.branch());
        for (id, name) in &missing {
            self.append_message(missing_tool_result(id, name.as_deref()))?;
        }
        Ok(missing.len())
    }

    fn new_entry(&self, kind: &str) -> Entry {
        let mut e = Map::new();
        e.insert("type".into(), json!(kind));
        e.insert("id".into(), json!(self.fresh_id()));
        let parent = self.leaf_id().map_or(Value::Null, |p| json!(p));
        e.insert("parentId".into(), parent);
        e.insert("timestamp".into(), json!(crate::util::iso_now()));
        e
    }

    /// 8 hex characters, unique in this file (pi's `generateId`).
    fn fresh_id(&self) -> String {
        for _ in 0..100 {
            let id = crate::util::entry_id();
            if !self.index.contains_key(&id) {
                return id;
            }
        }
        crate::util::uuid_v4()
    }

    fn append(&mut self, entry: Entry) -> io::Result<String> {
        let id = entry
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.has_assistant |= is_assistant_message(&entry);
        self.index.insert(id.clone(), self.entries.len());
        self.leaf = Some(self.entries.len());
        self.entries.push(entry);
        self.persist()?;
        Ok(id)
    }

    /// pi's `_persist` of the newest entry: buffered until an assistant message exists, then
    /// header + everything.
    fn persist(&mut self) -> io::Result<()> {
        if !self.has_assistant {
            return Ok(());
        }
        if self.disk == Disk::Pending {
            let early = self
                .early_header
                .as_ref()
                .map(|w| w.load(Ordering::Acquire));
            return match early.filter(|&len| len > 0) {
                Some(len) => self.append_all(len),
                None => self.rewrite(),
            };
        }
        let mut line = String::new();
        if let Some(entry) = self.entries.last() {
            crate::config::json5::push_compact_object(&mut line, entry);
        }
        match append_line(&self.path, &line, self.needs_newline) {
            Ok((written, stamp)) => {
                self.disk_len += written;
                self.disk_stamp = Some(stamp);
                self.needs_newline = false;
                Ok(())
            }
            // The file was archived or deleted under us: start it again, header first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.rewrite(),
            Err(e) => Err(e),
        }
    }

    /// The first flush onto a file holding only the header (`header_len` bytes): every entry
    /// in one `write(2)`.
    fn append_all(&mut self, header_len: u64) -> io::Result<()> {
        let mut text = String::new();
        for e in &self.entries {
            crate::config::json5::push_compact_object(&mut text, e);
            text.push('\n');
        }
        match append_text(&self.path, &text) {
            Ok(stamp) => {
                self.disk_len = header_len + text.len() as u64;
                self.disk_stamp = Some(stamp);
                self.disk = Disk::Flushed;
                Ok(())
            }
            // Removed meanwhile: write it again, header first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.rewrite(),
            Err(e) => Err(e),
        }
    }

    /// Writes header + all entries to a temp file and renames it over the transcript, so a
    /// crash leaves the old file or the whole new one.
    fn rewrite(&mut self) -> io::Result<()> {
        let mut text = String::new();
        for e in self.header.iter().chain(self.entries.iter()) {
            crate::config::json5::push_compact_object(&mut text, e);
            text.push('\n');
        }
        self.disk_stamp = Some(replace_file(&self.path, text.as_bytes())?);
        self.disk_len = text.len() as u64;
        self.disk = Disk::Flushed;
        self.needs_newline = false;
        Ok(())
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        self.has_assistant = false;
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(id) = e.get("id").and_then(Value::as_str) {
                self.index.insert(id.to_string(), i);
            }
            self.has_assistant |= is_assistant_message(e);
        }
        // pi's leaf is the last entry in the file, whatever its parent.
        self.leaf = self.entries.len().checked_sub(1);
    }
}

fn is_assistant_message(e: &Entry) -> bool {
    e.get("type").and_then(Value::as_str) == Some("message")
        && message_field(e, "role").and_then(Value::as_str) == Some("assistant")
}

/// A field of a `message` entry's message.
pub(crate) fn message_field<'a>(e: &'a Entry, key: &str) -> Option<&'a Value> {
    e.get("message")?.get(key)
}

/// `JSON.stringify(value)`, with the config writer's number and string formatting.
pub fn js_compact(value: &Value) -> String {
    crate::config::json5::to_compact_string(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn compact_json_matches_json_stringify() {
        let v = json!({"a": "x: y, \"z\"", "b": [1, 2.5, 1e21], "c": {"d": null}, "e": "\n"});
        assert_eq!(
            js_compact(&v),
            r#"{"a":"x: y, \"z\"","b":[1,2.5,1e+21],"c":{"d":null},"e":"\n"}"#
        );
    }

    #[test]
    fn escapes_match_json_stringify_between_raw_runs() {
        // As printed by node: `JSON.stringify({s: "é\u0001\"x\u007f\u2028\\\t\b\f\r\u001f end", n: -12, f: 0.1})`.
        let v =
            json!({"s": "é\u{1}\"x\u{7f}\u{2028}\\\t\u{8}\u{c}\r\u{1f} end", "n": -12, "f": 0.1});
        assert_eq!(
            js_compact(&v),
            "{\"s\":\"é\\u0001\\\"x\u{7f}\u{2028}\\\\\\t\\b\\f\\r\\u001f end\",\"n\":-12,\"f\":0.1}"
        );
        let mut line = String::new();
        crate::config::json5::push_compact_object(&mut line, v.as_object().expect("object"));
        assert_eq!(line, js_compact(&v));
    }

    #[test]
    fn ids_are_eight_hex_and_unique() {
        let mut t = Transcript::create_pending("/nonexistent/t.jsonl", "s", "/w", None);
        let mut ids = HashSet::new();
        for _ in 0..50 {
            // Buffered (no assistant yet), so nothing touches the disk.
            let id = t.append_thinking_level_change("low").unwrap();
            assert!(id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(ids.insert(id));
        }
        assert_eq!(t.branch().len(), 50);
    }

    #[test]
    fn parent_cycles_do_not_hang() {
        let text = concat!(
            "{\"type\":\"session\",\"version\":3,\"id\":\"s\",\"timestamp\":\"2026-01-27T10:00:00.000Z\",\"cwd\":\"/\"}\n",
            "{\"type\":\"custom\",\"id\":\"aaaaaaaa\",\"parentId\":\"bbbbbbbb\",\"timestamp\":\"2026-01-27T10:00:00.000Z\"}\n",
            "{\"type\":\"custom\",\"id\":\"bbbbbbbb\",\"parentId\":\"aaaaaaaa\",\"timestamp\":\"2026-01-27T10:00:00.000Z\"}\n",
        );
        let t = Transcript::parse("/x", text);
        assert_eq!(t.branch().len(), 2);
    }
}
