//! A transcript file's text read as pi reads it: lines through `JSON.parse` (failures counted,
//! not fatal), the `session` header check, and pi's migrations of older versions to v3.

use serde_json::{json, Value};

use super::{Entry, Transcript, CURRENT_SESSION_VERSION};

pub(super) fn into_object(v: Value) -> Option<Entry> {
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

pub(super) fn valid_header(v: Value) -> Option<Entry> {
    let h = into_object(v)?;
    let ok = h.get("type").and_then(Value::as_str) == Some("session")
        && h.get("id").is_some_and(Value::is_string);
    ok.then_some(h)
}

/// `content.trim().split("\n")`, each non-blank line through `JSON.parse`, failures counted.
pub(crate) fn parse_lines(text: &str) -> (Vec<Value>, usize) {
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let mut values = Vec::new();
    let mut skipped = 0;
    for line in trimmed.split('\n').filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => values.push(v),
            Err(_) => skipped += 1,
        }
    }
    (values, skipped)
}

/// pi's v1→v2 (ids and a linear parent chain; compaction index → id) and v2→v3 (`hookMessage`
/// role → `custom`). Returns whether anything changed.
pub(super) fn migrate(t: &mut Transcript) -> bool {
    let version = t
        .header
        .as_ref()
        .and_then(|h| h.get("version"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    if version >= CURRENT_SESSION_VERSION {
        return false;
    }
    if version < 2 {
        add_tree_ids(&mut t.entries);
    }
    for e in &mut t.entries {
        let Some(role) = e.get_mut("message").and_then(|m| m.get_mut("role")) else {
            continue;
        };
        if role == "hookMessage" {
            *role = json!("custom");
        }
    }
    if let Some(h) = t.header.as_mut() {
        h.insert("version".into(), json!(CURRENT_SESSION_VERSION));
    }
    true
}

fn add_tree_ids(entries: &mut [Entry]) {
    let mut prev: Option<String> = None;
    let mut ids = Vec::with_capacity(entries.len());
    let mut taken = std::collections::HashSet::with_capacity(entries.len());
    for e in entries.iter_mut() {
        // Unique in the file, as pi's migration draws them (`generateId` against the ids so far).
        let id = std::iter::repeat_with(crate::util::entry_id)
            .find(|id| taken.insert(id.clone()))
            .unwrap_or_default();
        e.insert("id".into(), json!(id));
        e.insert(
            "parentId".into(),
            prev.as_ref().map_or(Value::Null, |p| json!(p)),
        );
        prev = Some(id.clone());
        ids.push(id);
    }
    for e in entries.iter_mut() {
        let Some(index) = e.get("firstKeptEntryIndex").and_then(Value::as_u64) else {
            continue;
        };
        // The v1 index counts the header as entry 0.
        let target = (index as usize).checked_sub(1).and_then(|i| ids.get(i));
        if let Some(id) = target {
            e.insert("firstKeptEntryId".into(), json!(id));
        }
        e.shift_remove("firstKeptEntryIndex");
    }
}
