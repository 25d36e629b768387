//! Integration tests for the session store (`sessions.json`) and pi v3 transcripts against
//! upstream-shaped fixtures in `tests/fixtures/upstream-session/`: interop with upstream's lock
//! file, unknown-field preservation, crash safety of appends, history repairs, `chat.history`.

use moltbot::agent::sessions::{self, SessionStore, StoreError, Usage};
use moltbot::agent::transcript::{self, HistoryPolicy, Transcript, WriteLock};
use serde_json::{json, Map, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/upstream-session"
);
const SID: &str = "3f8c2d9e-6b1a-4c7e-9f00-2b5d7a1e4c11";
const TOPIC_KEY: &str = "agent:main:telegram:group:-1001234567890:topic:42";

/// A fresh temp dir holding copies of the fixtures.
fn fixture_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mb-sessions-it-{}", moltbot::util::uuid_v4()));
    fs::create_dir_all(&dir).unwrap();
    for entry in fs::read_dir(FIXTURES).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

fn transcript_file(dir: &Path) -> PathBuf {
    dir.join(format!("{SID}-topic-42.jsonl"))
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn text_of(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}], "timestamp": 1769508001000u64})
}

fn assistant(text: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}], "api": "anthropic-messages",
        "provider": "anthropic", "model": "claude-opus-4-5",
        "usage": {"input": 10, "output": 5, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 15,
            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}},
        "stopReason": "stop", "timestamp": 1769508003000u64})
}

fn tool_call(id: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "toolCall", "id": id, "name": "read", "arguments": {"path": "a"}}],
        "api": "anthropic-messages", "provider": "anthropic", "model": "claude-opus-4-5", "stopReason": "toolUse", "timestamp": 1})
}

fn tool_result(id: &str) -> Value {
    json!({"role": "toolResult", "toolCallId": id, "toolName": "read", "content": [{"type": "text", "text": "ok"}], "isError": false, "timestamp": 2})
}

fn roles(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?"))
        .collect()
}

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

// ---------------------------------------------------------------- transcripts

#[test]
fn fixture_transcript_parses_like_pi() {
    let t = Transcript::read(format!("{FIXTURES}/{SID}-topic-42.jsonl")).unwrap();
    assert_eq!(t.session_id(), Some(SID));
    assert_eq!(t.skipped_lines(), 1, "the unparseable line");
    assert_eq!(t.entries().len(), 15);
    assert_eq!(t.leaf_id(), Some("a3b4c5d6"));
    let branch: Vec<&str> = t
        .branch()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(branch.first(), Some(&"0a1b2c3d"));
    assert_eq!(
        branch.len(),
        15,
        "one linear branch through the unknown entry"
    );
    let ctx = t.session_context();
    assert_eq!(ctx.thinking_level, "low");
    assert_eq!(
        ctx.model,
        Some(("anthropic".into(), "claude-opus-4-5".into()))
    );
    // Summary, then the kept entries from firstKeptEntryId, then what follows the compaction.
    assert_eq!(
        roles(&ctx.messages),
        [
            "compactionSummary",
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant"
        ]
    );
}

#[test]
fn history_for_request_from_the_fixture() {
    let mut t = Transcript::read(format!("{FIXTURES}/{SID}-topic-42.jsonl")).unwrap();
    let policy = HistoryPolicy::for_model("anthropic-messages", "anthropic", "claude-opus-4-5");
    let h = t.history_for_request(&policy);
    let first = text_of(&h[0]);
    assert_eq!(h[0]["role"], "user");
    assert!(first.starts_with(
        "The conversation history before this point was compacted into the following summary:\n\n<summary>\n## Goal"
    ));
    assert!(first.ends_with("</summary>"));
    assert!(
        h.iter().all(|m| m["stopReason"] != "error"),
        "error turns are persisted, not replayed"
    );
    assert_eq!(
        roles(&h),
        ["user", "user", "user", "assistant", "user", "assistant"]
    );
    assert_eq!(text_of(h.last().unwrap()), "Milk.");
}

#[test]
fn continuing_the_fixture_keeps_it_upstream_shaped() {
    let dir = fixture_dir();
    let path = transcript_file(&dir);
    let before = fs::read_to_string(&path).unwrap();
    let mut t = Transcript::open_for_run(&path, SID, "/home/u/clawd").unwrap();
    assert!(t.is_flushed());
    let u = t
        .append_message(user("[Telegram Alice 2026-01-27 11:00 CET] thanks"))
        .unwrap();
    let a = t.append_message(assistant("Any time.")).unwrap();
    let after = fs::read_to_string(&path).unwrap();
    assert!(
        after.starts_with(&before),
        "earlier lines are never rewritten"
    );
    let new_lines: Vec<&str> = after[before.len()..].lines().collect();
    assert_eq!(new_lines.len(), 2);
    let first: Value = serde_json::from_str(new_lines[0]).unwrap();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["type", "id", "parentId", "timestamp", "message"]);
    assert_eq!(first["parentId"], "a3b4c5d6");
    assert_eq!(first["id"], json!(u));
    assert!(u.len() == 8 && u.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));

    let re = Transcript::read(&path).unwrap();
    assert_eq!(re.entries().len(), 17);
    assert_eq!(re.leaf_id(), Some(a.as_str()));
    assert_eq!(re.get(&a).unwrap()["parentId"], json!(u));
    assert_eq!(re.branch().len(), 17);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn new_transcript_is_buffered_until_the_first_assistant_message() {
    let dir = fixture_dir();
    let path = dir.join("fresh.jsonl");
    let mut t = Transcript::create_pending(&path, "sess-1", "/home/u/clawd", None);
    let snapshot = t
        .append_custom("model-snapshot", json!({"provider": "anthropic"}))
        .unwrap();
    t.append_message(user("hi")).unwrap();
    assert!(
        !path.exists(),
        "nothing on disk before an assistant message"
    );
    t.append_message(assistant("Hello!")).unwrap();
    t.append_thinking_level_change("low").unwrap();
    t.append_model_change("openai", "gpt-5.2").unwrap();
    t.append_compaction("sum", &snapshot, 1000, None, Some(true))
        .unwrap();
    let ls = lines(&path);
    assert_eq!(ls.len(), 7);
    let header: Value = serde_json::from_str(&ls[0]).unwrap();
    let hkeys: Vec<&str> = header
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(hkeys, ["type", "version", "id", "timestamp", "cwd"]);
    assert_eq!(
        (header["version"].clone(), header["id"].clone()),
        (json!(3), json!("sess-1"))
    );
    let custom: Value = serde_json::from_str(&ls[1]).unwrap();
    let ckeys: Vec<&str> = custom
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        ckeys,
        ["type", "customType", "data", "id", "parentId", "timestamp"]
    );
    assert_eq!(custom["parentId"], Value::Null);
    let comp: Value = serde_json::from_str(&ls[6]).unwrap();
    let kkeys: Vec<&str> = comp
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        kkeys,
        [
            "type",
            "id",
            "parentId",
            "timestamp",
            "summary",
            "firstKeptEntryId",
            "tokensBefore",
            "fromHook"
        ]
    );

    let re = Transcript::read(&path).unwrap();
    assert_eq!(re.entries().len(), 6);
    assert_eq!(re.branch().len(), 6);
    let ctx = re.session_context();
    assert_eq!(ctx.thinking_level, "low");
    assert_eq!(ctx.model, Some(("openai".into(), "gpt-5.2".into())));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn header_only_file_is_refilled_in_order_for_a_run() {
    let dir = fixture_dir();
    let path = dir.join("forked.jsonl");
    let header = r#"{"type":"session","version":3,"id":"old-id","timestamp":"2026-01-27T10:00:00.000Z","cwd":"/w","parentSession":"/p.jsonl"}"#;
    let stale_user = r#"{"type":"message","id":"11112222","parentId":null,"timestamp":"2026-01-27T10:00:01.000Z","message":{"role":"user","content":"lost run"}}"#;
    fs::write(&path, format!("{header}\n{stale_user}\n")).unwrap();
    let mut t = Transcript::open_for_run(&path, "new-id", "/w2").unwrap();
    assert!(!t.is_flushed());
    t.append_message(user("second try")).unwrap();
    assert_eq!(
        lines(&path).len(),
        2,
        "still the old content until the assistant replies"
    );
    t.append_message(assistant("ok")).unwrap();
    let ls = lines(&path);
    assert_eq!(ls.len(), 3);
    assert_eq!(ls[0], header, "the file's own header is kept");
    let u: Value = serde_json::from_str(&ls[1]).unwrap();
    assert_eq!(
        (u["parentId"].clone(), text_of(&u["message"])),
        (Value::Null, "second try".into())
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn torn_last_line_is_skipped_and_the_next_append_is_clean() {
    let dir = fixture_dir();
    let path = transcript_file(&dir);
    // kill -9 in the middle of a write: half a line, no newline.
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, br#"{"type":"message","id":"9999aaaa","parentId":"a3b4c5d6","timestamp":"2026-01-27T09:20:00.000Z","message":{"role":"us"#).unwrap();
    drop(f);
    let t = Transcript::read(&path).unwrap();
    assert_eq!(t.skipped_lines(), 2);
    assert_eq!(t.leaf_id(), Some("a3b4c5d6"));

    let mut t = Transcript::open_for_run(&path, SID, "/home/u/clawd").unwrap();
    let id = t.append_message(user("after the crash")).unwrap();
    t.append_message(assistant("still here")).unwrap();
    let re = Transcript::read(&path).unwrap();
    assert_eq!(
        re.skipped_lines(),
        2,
        "the torn fragment stays its own bad line"
    );
    assert_eq!(re.get(&id).unwrap()["parentId"], "a3b4c5d6");
    assert_eq!(re.entries().len(), 17);
    let last_lines = lines(&path);
    assert!(last_lines[last_lines.len() - 3].ends_with(r#""role":"us"#));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_without_header_is_ignored() {
    let t = Transcript::parse(
        "/x.jsonl",
        "garbage\n{\"type\":\"message\",\"id\":\"aa\",\"message\":{\"role\":\"user\"}}\n",
    );
    assert!(t.header().is_none() && t.entries().is_empty());
    let t = Transcript::parse(
        "/x.jsonl",
        "{\"type\":\"session\",\"version\":3,\"id\":5}\n",
    );
    assert!(t.header().is_none());
    // The headerless file is moved aside rather than appended to.
    let dir = fixture_dir();
    let path = dir.join("bad.jsonl");
    fs::write(&path, "not a header\n").unwrap();
    let mut t = Transcript::open_for_run(&path, "sid", "/w").unwrap();
    t.append_message(user("u")).unwrap();
    t.append_message(assistant("a")).unwrap();
    assert_eq!(Transcript::read(&path).unwrap().session_id(), Some("sid"));
    let backups = fs::read_dir(&dir).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("bad.jsonl.bak.")
    });
    assert_eq!(backups.count(), 1);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn version_1_transcripts_are_migrated() {
    let dir = fixture_dir();
    let path = dir.join("v1.jsonl");
    let text = concat!(
        "{\"type\":\"session\",\"id\":\"v1\",\"timestamp\":\"2025-06-01T00:00:00.000Z\",\"cwd\":\"/w\"}\n",
        "{\"type\":\"message\",\"timestamp\":\"2025-06-01T00:00:01.000Z\",\"message\":{\"role\":\"user\",\"content\":\"a\"}}\n",
        "{\"type\":\"message\",\"timestamp\":\"2025-06-01T00:00:02.000Z\",\"message\":{\"role\":\"assistant\",\"content\":[]}}\n",
        "{\"type\":\"compaction\",\"timestamp\":\"2025-06-01T00:00:03.000Z\",\"summary\":\"s\",\"firstKeptEntryIndex\":2,\"tokensBefore\":9}\n",
        "{\"type\":\"message\",\"timestamp\":\"2025-06-01T00:00:04.000Z\",\"message\":{\"role\":\"hookMessage\",\"content\":\"h\"}}\n",
    );
    fs::write(&path, text).unwrap();
    let t = Transcript::open(&path, "v1", "/w").unwrap();
    assert_eq!(t.header().unwrap()["version"], 3);
    let e = t.entries();
    assert_eq!(e[1]["parentId"], e[0]["id"]);
    assert_eq!(e[2]["firstKeptEntryId"], e[1]["id"]);
    assert!(!e[2].contains_key("firstKeptEntryIndex"));
    assert_eq!(e[3]["message"]["role"], "custom");
    let re = Transcript::read(&path).unwrap();
    assert_eq!(re.header().unwrap()["version"], 3, "rewritten on open");
    assert_eq!(re.branch().len(), 4);
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- history repairs

fn flushed_with(messages: &[Value]) -> (PathBuf, Transcript) {
    let dir = fixture_dir();
    let mut t = Transcript::create_pending(dir.join("t.jsonl"), "s", "/w", None);
    for m in messages {
        t.append_message(m.clone()).unwrap();
    }
    (dir, t)
}

#[test]
fn orphan_trailing_user_is_dropped_and_the_next_prompt_branches() {
    let (dir, mut t) = flushed_with(&[user("one"), assistant("ok"), user("lost")]);
    let a = t.entries()[1]["id"].as_str().unwrap().to_string();
    let policy = HistoryPolicy::for_model("anthropic-messages", "anthropic", "claude-opus-4-5");
    let h = t.history_for_request(&policy);
    assert_eq!(roles(&h), ["user", "assistant"]);
    let next = t.append_message(user("retry")).unwrap();
    let re = Transcript::read(t.path()).unwrap();
    assert_eq!(
        re.get(&next).unwrap()["parentId"],
        json!(a),
        "sibling of the orphan"
    );
    assert_eq!(re.entries().len(), 4, "the orphan stays in the file");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tool_pairing_repair_for_anthropic() {
    let msgs = [
        user("go"),
        tool_call("t1"),
        user("interjection"),
        tool_result("t1"),
        tool_result("zz"),
        assistant("done"),
        tool_call("t2"),
        assistant("next"),
    ];
    let (dir, mut t) = flushed_with(&msgs);
    t.append_message(user("now")).unwrap();
    t.append_message(assistant("fine")).unwrap();
    let anthropic = HistoryPolicy::for_model("anthropic-messages", "anthropic", "claude-opus-4-5");
    let h = t.history_for_request(&anthropic);
    assert_eq!(
        roles(&h),
        [
            "user",
            "assistant",
            "toolResult",
            "user",
            "assistant",
            "assistant",
            "toolResult",
            "assistant",
            "user",
            "assistant"
        ]
    );
    assert_eq!(h[2]["toolCallId"], "t1", "moved up next to its call");
    assert_eq!(h[6]["toolCallId"], "t2");
    assert_eq!(text_of(&h[6]), transcript::MISSING_TOOL_RESULT_TEXT);
    assert_eq!(h[6]["isError"], true);

    // OpenAI: no pairing repair; pi-ai's request pass answers the orphan call instead.
    let openai = HistoryPolicy::for_model("openai-responses", "openai", "gpt-5.2");
    let h = t.history_for_request(&openai);
    let patched: Vec<&Value> = h
        .iter()
        .filter(|m| text_of(m) == "No result provided")
        .collect();
    // t1's real result comes after the interjecting user message, too late for pi-ai.
    let ids: Vec<&Value> = patched.iter().map(|m| &m["toolCallId"]).collect();
    assert_eq!(ids, [&json!("t1"), &json!("t2")]);
    assert!(
        h.iter().any(|m| m["toolCallId"] == "zz"),
        "orphan result kept without the repair"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn consecutive_user_turns_merge_for_anthropic_only() {
    let failed = json!({"role": "assistant", "content": [], "stopReason": "error", "errorMessage": "boom", "timestamp": 3});
    let (dir, mut t) = flushed_with(&[
        user("a"),
        assistant("b"),
        user("c"),
        user("d"),
        failed,
        user("e"),
        assistant("f"),
    ]);
    let anthropic = HistoryPolicy::for_model("anthropic-messages", "anthropic", "m");
    let h = t.history_for_request(&anthropic);
    // c+d merge; the error turn is dropped only afterwards, as in pi-ai.
    assert_eq!(
        roles(&h),
        ["user", "assistant", "user", "user", "assistant"]
    );
    assert_eq!(text_of(&h[2]), "cd");
    let openai = HistoryPolicy::for_model("openai-completions", "fakechat", "gpt-test");
    assert_eq!(t.history_for_request(&openai).len(), 6);
    let limited = anthropic.with_history_limit(Some(1));
    assert_eq!(
        roles(&t.history_for_request(&limited)),
        ["user", "assistant"]
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_tool_results_are_persisted_by_the_guard() {
    let (dir, mut t) = flushed_with(&[user("go"), tool_call("t9")]);
    assert_eq!(t.append_missing_tool_results().unwrap(), 1);
    let re = Transcript::read(t.path()).unwrap();
    let last = &re.leaf().unwrap()["message"];
    assert_eq!(
        (last["toolCallId"].clone(), last["isError"].clone()),
        (json!("t9"), json!(true))
    );
    assert_eq!(t.append_missing_tool_results().unwrap(), 0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dm_history_limits_from_config() {
    let cfg = json!({"channels": {"telegram": {"dmHistoryLimit": 5, "dms": {"42": {"historyLimit": 2}}}}});
    assert_eq!(
        transcript::dm_history_limit("agent:main:telegram:dm:42", &cfg),
        Some(2)
    );
    assert_eq!(
        transcript::dm_history_limit("agent:main:telegram:dm:42:thread:7", &cfg),
        Some(2)
    );
    assert_eq!(
        transcript::dm_history_limit("agent:main:telegram:dm:7", &cfg),
        Some(5)
    );
    assert_eq!(transcript::dm_history_limit("agent:main:main", &cfg), None);
    assert_eq!(
        transcript::dm_history_limit("agent:main:telegram:group:1", &cfg),
        None
    );
}

// ---------------------------------------------------------------- chat.history

#[test]
fn chat_history_strips_envelopes_and_keeps_every_message() {
    let path = PathBuf::from(format!("{FIXTURES}/{SID}-topic-42.jsonl"));
    let all = transcript::chat_history(&path, 200);
    assert_eq!(
        all.len(),
        10,
        "every stored message, errors and retries included"
    );
    assert_eq!(text_of(&all[0]), "read notes.txt");
    assert_eq!(text_of(&all[4]), "summarise my week");
    assert!(all.iter().any(|m| m["stopReason"] == "error"));
    assert_eq!(
        all[1]["content"][0]["type"], "thinking",
        "assistant content untouched"
    );
    let last3 = transcript::chat_history(&path, 3);
    assert_eq!(roles(&last3), ["assistant", "user", "assistant"]);
    assert_eq!(text_of(&last3[1]), "what should I buy?");
    assert!(transcript::chat_history(Path::new("/nonexistent/x.jsonl"), 10).is_empty());
}

#[test]
fn envelope_rules() {
    use transcript::{strip_envelope, strip_message_id_hints};
    assert_eq!(strip_envelope("[WebChat Alice] hi"), "hi");
    assert_eq!(
        strip_envelope("[Telegram Alice 2026-01-27 10:04 UTC] hi"),
        "hi"
    );
    assert_eq!(strip_envelope("[Bob 2026-01-27T10:04Z] hi"), "hi");
    assert_eq!(strip_envelope("[note] hi"), "[note] hi");
    assert_eq!(strip_envelope("[] hi"), "[] hi");
    assert_eq!(strip_message_id_hints("a\n [message_id: 12] \nb"), "a\nb");
    assert_eq!(
        strip_message_id_hints("a [message_id: 12] b"),
        "a [message_id: 12] b"
    );
}

#[test]
fn chat_history_is_capped_at_six_mib_from_the_oldest_end() {
    let dir = fixture_dir();
    let path = dir.join("big.jsonl");
    let big = "x".repeat(2 * 1024 * 1024);
    let mut t = Transcript::create_pending(&path, "big", "/w", None);
    for i in 0..4 {
        t.append_message(user(&format!("{i}{big}"))).unwrap();
        t.append_message(assistant(&i.to_string())).unwrap();
    }
    let h = transcript::chat_history(&path, 1000);
    let bytes: usize = h
        .iter()
        .map(|m| serde_json::to_string(m).unwrap().len() + 1)
        .sum::<usize>()
        + 1;
    assert!(bytes <= transcript::CHAT_HISTORY_MAX_BYTES);
    assert_eq!(
        h.len(),
        5,
        "two big user messages fit, the oldest two are trimmed"
    );
    assert_eq!(text_of(&h[0]), "1");
    assert!(text_of(&h[1]).starts_with('2'));
    assert_eq!(text_of(h.last().unwrap()), "3");
    fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- transcript write lock

#[test]
fn transcript_write_lock_interop() {
    let dir = fixture_dir();
    let file = transcript_file(&dir);
    let held = WriteLock::acquire(&file, Duration::from_secs(1)).unwrap();
    let payload: Value = serde_json::from_str(&fs::read_to_string(held.path()).unwrap()).unwrap();
    assert_eq!(payload["pid"], json!(std::process::id()));
    let err = WriteLock::acquire(&file, Duration::from_millis(200)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "session file locked (timeout 200ms): pid={} ",
            std::process::id()
        )),
        "{msg}"
    );
    assert!(msg.ends_with(".jsonl.lock"));
    drop(held);
    // A lock left by a dead process is taken over at once.
    let lock_path = PathBuf::from(format!(
        "{}.lock",
        fs::canonicalize(&file).unwrap().display()
    ));
    fs::write(
        &lock_path,
        "{\n  \"pid\": 999999999,\n  \"createdAt\": \"2026-01-27T10:00:00.000Z\"\n}",
    )
    .unwrap();
    let started = Instant::now();
    let again = WriteLock::acquire(&file, Duration::from_secs(2)).unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    drop(again);
    assert!(!lock_path.exists());
    fs::remove_dir_all(dir).unwrap();
}
