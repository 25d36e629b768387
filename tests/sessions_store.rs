//! Integration tests for the session store (`sessions.json`) against upstream-shaped fixtures
//! in `tests/fixtures/upstream-session/`: interop with upstream's lock file, unknown-field
//! preservation, legacy fields, daily/idle resets, usage updates. Transcripts are in
//! `transcripts.rs`.

#[path = "common/session_fixtures.rs"]
mod fixtures;
use fixtures::*;

use moltbot::agent::sessions::{self, SessionStore, StoreError, Usage};
use serde_json::{json, Map, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime};

// ---------------------------------------------------------------- sessions.json

#[test]
fn fixture_store_rewrites_byte_for_byte() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("sessions.json"));
    let before = fs::read_to_string(store.path()).unwrap();
    let entry = store.update(TOPIC_KEY, |_| {}).unwrap();
    assert_eq!(entry["sessionId"], SID);
    // Consistent entries are not touched by the save-time normalisation, so a no-op update
    // writes exactly what upstream wrote: 2-space JSON, no trailing newline.
    assert!(
        fs::read_to_string(store.path()).unwrap() == before,
        "byte-identical rewrite"
    );
    let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!store.lock_path().exists(), "lock removed after the write");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn update_merges_and_keeps_unknown_fields_and_order() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("sessions.json"));
    let before = store.get(TOPIC_KEY).unwrap();
    store
        .update(TOPIC_KEY, |e| {
            e.insert("label".into(), json!("household"));
            e.insert("thinkingLevel".into(), json!("high"));
        })
        .unwrap();
    let after = store.get(TOPIC_KEY).unwrap();
    assert_eq!(after["xFutureField"], json!({"keep": ["me", 1, true]}));
    assert_eq!(after["systemPromptReport"], before["systemPromptReport"]);
    assert_eq!(after["thinkingLevel"], "high");
    let after_keys: Vec<&str> = after.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = before.keys().map(String::as_str).collect();
    expected.push("label");
    assert_eq!(after_keys, expected);
    // Other entries are untouched.
    let all = store.load();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all["agent:main:discord:channel:1234567890"]["label"],
        "general"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn legacy_fields_are_renamed_and_json5_is_tolerated() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("sessions.json"));
    fs::write(
        store.path(),
        "// old store\n{ 'agent:main:main': { sessionId: 'abc', updatedAt: 1, provider: 'telegram', lastProvider: 'telegram', room: '#x', }, }",
    )
    .unwrap();
    let e = store.get("agent:main:main").unwrap();
    assert_eq!(e["channel"], "telegram");
    assert_eq!(e["lastChannel"], "telegram");
    assert_eq!(e["groupChannel"], "#x");
    assert!(!e.contains_key("provider") && !e.contains_key("room"));
    fs::write(store.path(), "[1, 2]").unwrap();
    assert!(store.load().is_empty());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn new_entries_get_upstream_fields() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("agents/main/sessions/sessions.json"));
    let file = store.transcript_path("new-id", None);
    let fresh = sessions::new_entry_with_file("new-id", 1769508000000, &file);
    let written = store
        .update("agent:main:main", |e| *e = fresh.clone())
        .unwrap();
    assert_eq!(written["systemSent"], false);
    assert_eq!(written["abortedLastRun"], false);
    assert_eq!(written["compactionCount"], 0);
    assert_eq!(written["deliveryContext"], json!({"channel": "webchat"}));
    assert_eq!(written["sessionFile"], json!(file.to_string_lossy()));
    // An entry created without sessionId/updatedAt still gets both.
    let created = store.update("agent:main:dm:bob", |e| {
        e.insert("label".into(), json!("bob"));
    });
    let created = created.unwrap();
    assert_eq!(created["sessionId"].as_str().unwrap().len(), 36);
    assert!(created["updatedAt"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(store.delete("agent:main:dm:bob").unwrap().is_some());
    assert!(store.get("agent:main:dm:bob").is_none());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fresh_lock_makes_update_wait_then_time_out() {
    let dir = fixture_dir();
    let store =
        SessionStore::new(dir.join("sessions.json")).with_lock_timeout(Duration::from_millis(300));
    fs::write(
        store.lock_path(),
        r#"{"pid":999999,"startedAt":1769508000000}"#,
    )
    .unwrap();
    let started = Instant::now();
    let err = store.update(TOPIC_KEY, |_| {}).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(err, StoreError::LockTimeout { .. }));
    let expected = format!(
        "timeout acquiring session store lock: {}",
        store.lock_path().display()
    );
    assert_eq!(err.to_string(), expected);
    assert!(
        store.lock_path().exists(),
        "someone else's fresh lock is left alone"
    );

    // Once the other writer releases it, a waiting update goes through.
    let lock = store.lock_path();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        fs::remove_file(lock).unwrap();
    });
    let store = store.with_lock_timeout(Duration::from_secs(5));
    store
        .update(TOPIC_KEY, |e| {
            e.insert("label".into(), json!("after-wait"));
        })
        .unwrap();
    releaser.join().unwrap();
    assert_eq!(store.get(TOPIC_KEY).unwrap()["label"], "after-wait");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn stale_lock_is_removed() {
    let dir = fixture_dir();
    let store =
        SessionStore::new(dir.join("sessions.json")).with_lock_timeout(Duration::from_secs(2));
    fs::write(store.lock_path(), r#"{"pid":1,"startedAt":1}"#).unwrap();
    let old = SystemTime::now() - Duration::from_secs(60);
    fs::File::options()
        .write(true)
        .open(store.lock_path())
        .unwrap()
        .set_modified(old)
        .unwrap();
    let started = Instant::now();
    store
        .update(TOPIC_KEY, |e| {
            e.insert("label".into(), json!("x"));
        })
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!store.lock_path().exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn our_lock_file_has_upstream_payload() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("sessions.json"));
    let lock = store.lock_path();
    let seen = store
        .update_store(|_| fs::read_to_string(&lock).unwrap())
        .unwrap();
    let v: Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(v["pid"], json!(std::process::id()));
    assert!(v["startedAt"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(!seen.contains(' '), "compact JSON.stringify payload");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn concurrent_updates_do_not_lose_writes() {
    let dir = fixture_dir();
    let path = dir.join("sessions.json");
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let store = SessionStore::new(path.clone());
            std::thread::spawn(move || {
                store
                    .update(&format!("agent:main:dm:{i}"), |e| {
                        e.insert("n".into(), json!(i));
                    })
                    .unwrap();
                store
                    .update(TOPIC_KEY, |e| {
                        let n = e.get("counter").and_then(Value::as_u64).unwrap_or(0);
                        e.insert("counter".into(), json!(n + 1));
                    })
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = SessionStore::new(path);
    let all = store.load();
    assert_eq!(all.len(), 3 + 16);
    assert_eq!(all[TOPIC_KEY]["counter"], 16);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sessionfile_is_honoured_and_default_paths_follow_the_topic_rule() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("sessions.json"));
    let e = store.get("agent:main:discord:channel:1234567890").unwrap();
    let honoured = store.transcript_path_for(&e).unwrap();
    assert!(
        honoured.ends_with("2026-01-26T09-04-00-000Z_0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6.jsonl")
    );
    assert_eq!(
        store.transcript_path(SID, Some("42")),
        transcript_file(&dir)
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn stale_entry_resets_keeping_what_upstream_keeps() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("sessions.json"));
    let old = store.get(TOPIC_KEY).unwrap();
    let now = old["updatedAt"].as_i64().unwrap() + 2 * 86_400_000;
    let d = sessions::evaluate_reset(
        &json!({}),
        TOPIC_KEY,
        Some(&old),
        now,
        true,
        false,
        Some("telegram"),
    );
    assert_eq!(d.reset_type, sessions::ResetType::Thread);
    assert!(d.new_session);
    let fresh_now = old["updatedAt"].as_i64().unwrap() + 1000;
    let idle = json!({"session": {"reset": {"mode": "idle", "idleMinutes": 30}}});
    let d = sessions::evaluate_reset(&idle, TOPIC_KEY, Some(&old), fresh_now, true, false, None);
    assert!(!d.new_session);

    let file = store.transcript_path("new-sid", Some("42"));
    let next = sessions::reset_entry(Some(&old), "new-sid", now as u64, &file);
    store.update(TOPIC_KEY, |e| *e = next.clone()).unwrap();
    let e = store.get(TOPIC_KEY).unwrap();
    assert_eq!(e["sessionId"], "new-sid");
    assert_eq!(e["compactionCount"], 0);
    for kept in [
        "cliSessionIds",
        "authProfileOverride",
        "groupActivation",
        "model",
        "totalTokens",
        "xFutureField",
    ] {
        assert_eq!(e[kept], old[kept], "{kept} survives a reset");
    }
    for cleared in [
        "thinkingLevel",
        "queueMode",
        "memoryFlushAt",
        "memoryFlushCompactionCount",
        "displayName",
    ] {
        assert!(!e.contains_key(cleared), "{cleared} is cleared");
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn usage_update_after_a_run() {
    let dir = fixture_dir();
    let store = SessionStore::new(dir.join("sessions.json"));
    let usage = Usage::from_value(
        &json!({"input": 1200, "output": 40, "cacheRead": 0, "cacheWrite": 9000}),
    )
    .unwrap();
    let out = store
        .merge_existing(TOPIC_KEY, |e| {
            sessions::usage_patch(
                e,
                Some(&usage),
                Some("anthropic"),
                Some("claude-opus-4-5"),
                Some(200000),
                1,
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        (out["inputTokens"].clone(), out["totalTokens"].clone()),
        (json!(1200), json!(10200))
    );
    assert!(
        out["updatedAt"].as_u64().unwrap() > 1_769_000_000_000,
        "updatedAt = max(.., now)"
    );
    assert!(store
        .merge_existing("agent:none", |_| Some(Map::new()))
        .unwrap()
        .is_none());
    fs::remove_dir_all(dir).unwrap();
}
