//! Reading `sessions.json`: upstream's tolerant parse (JSON, then JSON5; anything else reads as
//! empty and is set aside by the next write; legacy field names renamed), through the
//! in-process copy kept by `sessions_cache.rs`.

use super::cache::{self, Parsed, Shared};
use super::into_object;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;

pub(super) enum ReadState {
    Missing,
    Parsed,
    /// The store as this process last saved it (from the cache).
    Saved,
    /// The file's bytes, kept aside before the next write replaces them.
    Corrupt(Vec<u8>),
}

/// The store as parsed, from the cache when the file is the version cached (stamped from the
/// open handle, so the stamp is that of the bytes read).
pub(super) fn read_store(path: &Path) -> (Shared, ReadState) {
    let (mut file, stamp) = match cache::lookup(path) {
        cache::Lookup::Hit(store, true) => return (store, ReadState::Saved),
        cache::Lookup::Hit(store, false) => return (store, ReadState::Parsed),
        cache::Lookup::Missing => return (Shared::default(), ReadState::Missing),
        cache::Lookup::Miss(file, stamp) => (file, stamp),
    };
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return (Shared::default(), ReadState::Missing);
    }
    let (store, state) = parse_store(bytes);
    let store = Shared::new(Parsed::new(store).into());
    if let ReadState::Parsed = &state {
        cache::put_parsed(path, stamp, store.clone());
    }
    (store, state)
}

fn parse_store(bytes: Vec<u8>) -> (Map<String, Value>, ReadState) {
    // Decoded as Node's `readFileSync(…, "utf8")` does (bad bytes become U+FFFD). Both writers
    // produce plain JSON, which serde_json reads several times faster than the JSON5 parser;
    // JSON5 remains the fallback for hand-edited files (upstream reads JSON5).
    let text = String::from_utf8_lossy(&bytes);
    let parsed = serde_json::from_str::<Value>(&text)
        .ok()
        .or_else(|| crate::config::json5::parse(&text).ok().map(|p| p.value));
    let mut store = match parsed {
        Some(value) => into_object(value).unwrap_or_default(),
        None if text.trim().is_empty() => return (Map::new(), ReadState::Parsed),
        None => return (Map::new(), ReadState::Corrupt(bytes)),
    };
    for entry in store.values_mut() {
        if let Some(obj) = entry.as_object_mut() {
            migrate_legacy_fields(obj);
        }
    }
    (store, ReadState::Parsed)
}

/// provider→channel, lastProvider→lastChannel, room→groupChannel (a stray `room` is dropped).
fn migrate_legacy_fields(entry: &mut Map<String, Value>) {
    rename_if_absent(entry, "provider", "channel");
    rename_if_absent(entry, "lastProvider", "lastChannel");
    if !rename_if_absent(entry, "room", "groupChannel") {
        entry.shift_remove("room");
    }
}

fn rename_if_absent(entry: &mut Map<String, Value>, old: &str, new: &str) -> bool {
    let new_is_string = entry.get(new).is_some_and(Value::is_string);
    if new_is_string || !entry.get(old).is_some_and(Value::is_string) {
        return false;
    }
    if let Some(v) = entry.shift_remove(old) {
        entry.insert(new.to_string(), v);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::sessions::SessionStore;
    use serde_json::json;

    #[test]
    fn an_unparseable_store_is_kept_byte_for_byte_before_the_next_write() {
        let dir = std::env::temp_dir().join(format!("mb-corrupt-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sessions.json");
        let original = b"{ \"agent:main:main\": \xff\xfe not json".to_vec();
        std::fs::write(&path, &original).unwrap();
        let store = SessionStore::new(&path);
        store.update("agent:main:main", |_| {}).unwrap();
        let kept: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt."))
            .collect();
        assert_eq!(kept.len(), 1, "one copy set aside");
        assert_eq!(std::fs::read(kept[0].path()).unwrap(), original);
        assert!(
            store.get("agent:main:main").is_some(),
            "the new store was written"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn legacy_renames() {
        let mut e = json!({"provider": "discord", "lastProvider": "telegram", "room": "#x"});
        migrate_legacy_fields(e.as_object_mut().unwrap());
        assert_eq!(
            e,
            json!({"channel": "discord", "lastChannel": "telegram", "groupChannel": "#x"})
        );
        let mut e = json!({"channel": "a", "provider": "b", "groupChannel": "#g", "room": "#r"});
        migrate_legacy_fields(e.as_object_mut().unwrap());
        assert_eq!(
            e,
            json!({"channel": "a", "provider": "b", "groupChannel": "#g"})
        );
    }
}
