//! Store behaviour against upstream's rules: codes, TTL, cap, approve/reject, file shapes.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn temp_store(channel: &str) -> (PathBuf, Store) {
    let dir = std::env::temp_dir().join(format!("mb-pairing-{}", crate::util::uuid_v4()));
    let store = Store::new(&dir, channel).unwrap();
    (dir, store)
}

#[test]
fn upsert_list_approve_writes_allow_store() {
    let (dir, store) = temp_store("Telegram");
    let now = 1_800_000_000_000;
    let (code, created) = store
        .upsert("12345", Some(json!({"username": "bob"})), now)
        .unwrap();
    assert!(created);
    assert_eq!(code.len(), 8);
    assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
    let (again, created_again) = store.upsert("12345", None, now + 1000).unwrap();
    assert_eq!((again.as_str(), created_again), (code.as_str(), false));
    let listed = store.list(now + 2000).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["meta"]["username"], "bob");
    let approved = store
        .approve(&code.to_lowercase(), now + 3000)
        .unwrap()
        .unwrap();
    assert_eq!(approved["id"], "12345");
    assert_eq!(store.allow_from(), vec!["12345".to_string()]);
    assert!(store.list(now).unwrap().is_empty());
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(store.allow_from_path()).unwrap()).unwrap();
    assert_eq!(file, json!({"version": 1, "allowFrom": ["12345"]}));
    let mode = std::fs::metadata(store.pairing_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(store.pairing_path().ends_with("telegram-pairing.json"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cap_ttl_and_reject() {
    let (dir, store) = temp_store("discord");
    let now = 1_800_000_000_000;
    for id in ["a", "b", "c"] {
        assert!(store.upsert(id, None, now).unwrap().1);
    }
    assert_eq!(
        store.upsert("d", None, now).unwrap(),
        (String::new(), false)
    );
    let code_a = store.list(now).unwrap()[0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(store.reject(&code_a, now).unwrap().is_some());
    assert!(store.allow_from().is_empty(), "reject allows nobody");
    assert!(store.approve("NOPE2345", now).unwrap().is_none());
    assert!(
        store.list(now + PENDING_TTL_MS + 1).unwrap().is_empty(),
        "expired"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn channel_names_cannot_escape() {
    assert!(Store::new(Path::new("/x"), "../etc")
        .unwrap()
        .pairing_path()
        .starts_with("/x"));
    assert!(Store::new(Path::new("/x"), "  ").is_none());
    assert!(Store::new(Path::new("/x"), "/").is_none());
}
