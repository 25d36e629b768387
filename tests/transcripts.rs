//! Integration tests for pi v3 transcripts against the upstream-shaped fixtures: parsing like
//! pi, crash safety of appends, migration, history repairs, `chat.history`, the write lock.

#[path = "common/session_fixtures.rs"]
mod fixtures;
use fixtures::*;

use moltbot::agent::transcript::{self, HistoryPolicy, Transcript, WriteLock};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    // The request copies leave out what no request reads; pi's context keeps it.
    assert!(h.iter().all(|m| m.get("usage").is_none()), "{h:?}");
    let ctx = t.session_context();
    let replies = ctx.messages.iter().filter(|m| m["role"] == "assistant");
    assert!(replies.clone().count() > 0 && replies.clone().all(|m| m["usage"].is_object()));
    let (reply, copy) = (replies.clone().next_back().unwrap(), h.last().unwrap());
    let keys = |m: &Value| m.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let mut expected = keys(reply);
    expected.retain(|k| k != "usage");
    assert_eq!(keys(copy), expected, "every other field, in order");
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
fn an_early_header_is_appended_to_and_the_file_reads_back_the_same() {
    let dir = fixture_dir();
    let one_flush = |t: &Transcript| -> String {
        let mut text = String::new();
        for e in t.header().into_iter().chain(t.entries()) {
            text.push_str(&serde_json::to_string(e).unwrap());
            text.push('\n');
        }
        text
    };
    // A new file: the header alone, then the first flush appends the buffered entries.
    let path = dir.join("early.jsonl");
    let mut t = Transcript::open_for_run(&path, "sess-e", "/w").unwrap();
    let early = t.early_header().expect("a file still to create");
    assert!(t.early_header().is_none(), "one per transcript");
    early.write();
    let header = fs::read_to_string(&path).unwrap();
    assert_eq!(lines(&path).len(), 1);
    t.append_message(user("hi")).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), header, "still buffered");
    t.append_message(assistant("Hello!")).unwrap();
    t.append_message(user("more")).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), one_flush(&t));
    let back = Transcript::read(&path).unwrap();
    assert_eq!(back.entries(), t.entries());
    // Someone else created the file first: left alone, then replaced whole on the first flush.
    let taken = dir.join("taken.jsonl");
    let mut t = Transcript::open_for_run(&taken, "sess-t", "/w").unwrap();
    let early = t.early_header().unwrap();
    fs::write(&taken, "not ours\n").unwrap();
    early.write();
    assert_eq!(fs::read_to_string(&taken).unwrap(), "not ours\n");
    t.append_message(user("hi")).unwrap();
    t.append_message(assistant("Hello!")).unwrap();
    assert_eq!(fs::read_to_string(&taken).unwrap(), one_flush(&t));
    // The header-only file vanished before the first flush: written again, header first.
    let gone = dir.join("gone.jsonl");
    let mut t = Transcript::open_for_run(&gone, "sess-g", "/w").unwrap();
    t.early_header().unwrap().write();
    fs::remove_file(&gone).unwrap();
    t.append_message(user("hi")).unwrap();
    t.append_message(assistant("Hello!")).unwrap();
    assert_eq!(fs::read_to_string(&gone).unwrap(), one_flush(&t));
    // An existing transcript gets none.
    let mut t = Transcript::open_for_run(&path, "sess-e", "/w").unwrap();
    assert!(t.early_header().is_none());
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
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
    let line = |i: usize| -> Value { serde_json::from_str(&ls[i]).unwrap() };
    let (header, custom) = (line(0), line(1));
    assert_eq!(keys(&header), ["type", "version", "id", "timestamp", "cwd"]);
    assert_eq!(
        (header["version"].clone(), header["id"].clone()),
        (json!(3), json!("sess-1"))
    );
    assert_eq!(
        keys(&custom),
        ["type", "customType", "data", "id", "parentId", "timestamp"]
    );
    assert_eq!(custom["parentId"], Value::Null);
    let compaction = [
        "type",
        "id",
        "parentId",
        "timestamp",
        "summary",
        "firstKeptEntryId",
        "tokensBefore",
        "fromHook",
    ];
    assert_eq!(keys(&line(6)), compaction);

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

/// The object's keys in file order (pi writes them in a fixed order).
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}
