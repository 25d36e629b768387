//! `sessions.patch|reset|delete|preview|resolve|compact` over WebSocket against an
//! upstream-shaped `sessions.json` and transcript written into the state dir.

use crate::llm::{FakeLlm, Script};
use crate::support::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const NOW: u64 = 1_769_512_345_678;

fn sessions_dir(gw: &Gateway) -> PathBuf {
    gw.state.path().join("agents/main/sessions")
}

fn store(gw: &Gateway) -> Value {
    let text = std::fs::read_to_string(sessions_dir(gw).join("sessions.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `agent:main:main` (no transcript) and `agent:main:work` with a five-line transcript.
fn seed(gw: &Gateway) -> PathBuf {
    let dir = sessions_dir(gw);
    std::fs::create_dir_all(&dir).unwrap();
    let transcript = dir.join("work-sid.jsonl");
    let lines = [
        json!({"type": "session", "version": 3, "id": "work-sid", "timestamp": "2026-01-27T10:00:00.000Z", "cwd": "/tmp"}),
        json!({"type": "message", "id": "a1b2c3d4", "parentId": null, "message": {"role": "user", "content": [{"type": "text", "text": "[WebChat 2026-01-27 10:00] hi there"}]}}),
        json!({"type": "message", "id": "e5f6a7b8", "parentId": "a1b2c3d4", "message": {"role": "assistant", "content": [{"type": "toolCall", "id": "t1", "name": "read", "arguments": {}}]}}),
        json!({"type": "message", "id": "c9d0e1f2", "parentId": "e5f6a7b8", "message": {"role": "toolResult", "toolCallId": "t1", "toolName": "read", "content": [{"type": "text", "text": "file body"}], "isError": false}}),
        json!({"type": "message", "id": "a3b4c5d6", "parentId": "c9d0e1f2", "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello! This answer is long enough to be truncated."}]}}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&transcript, text.join("\n") + "\n").unwrap();
    let store = json!({
        "agent:main:main": {"sessionId": "main-sid", "updatedAt": NOW, "lastChannel": "webchat"},
        "agent:main:work": {
            "sessionId": "work-sid", "updatedAt": NOW - 1000, "sessionFile": transcript.to_string_lossy(),
            "label": "Work", "thinkingLevel": "high", "modelOverride": "gpt-5.2", "providerOverride": "openai",
            "inputTokens": 1200, "outputTokens": 340, "totalTokens": 15873, "model": "claude-opus-4-5",
            "compactionCount": 2, "futureField": {"kept": true}
        }
    });
    std::fs::write(
        dir.join("sessions.json"),
        serde_json::to_string_pretty(&store).unwrap(),
    )
    .unwrap();
    transcript
}

fn seeded() -> (Gateway, PathBuf, Ws) {
    let gw = Gateway::start(Opts::default());
    let transcript = seed(&gw);
    let (ws, _) = gw.connect();
    (gw, transcript, ws)
}

/// `<file>.<reason>.YYYY-MM-DDTHH-MM-SS.mmmZ`.
fn assert_archived(path: &str, file: &std::path::Path, reason: &str) {
    let prefix = format!("{}.{reason}.", file.display());
    let ts = path
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{path}"));
    let shape: String = ts
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd-dd-ddTdd-dd-dd.dddZ", "{path}");
    assert!(std::path::Path::new(path).exists(), "{path} exists");
}

#[test]
fn patch_sets_clears_and_validates() {
    let (gw, _, mut ws) = seeded();
    let res = ws.call(
        "sessions.patch",
        json!({"key": "work", "label": " Focus ", "thinkingLevel": "HIGHEST", "responseUsage": "on", "verboseLevel": "off"}),
    );
    assert_eq!(res["ok"], true);
    assert_eq!(res["key"], "agent:main:work");
    assert!(res["path"].as_str().unwrap().ends_with("sessions.json"));
    let entry = &res["entry"];
    assert_eq!(entry["label"], "Focus");
    assert_eq!(entry["thinkingLevel"], "high");
    assert_eq!(entry["responseUsage"], "tokens");
    assert_eq!(entry["verboseLevel"], "off", "verbose off is stored");
    assert_eq!(entry["sessionId"], "work-sid");
    assert_eq!(entry["futureField"], json!({"kept": true}));
    assert!(entry["updatedAt"].as_u64().unwrap() > NOW);
    assert_eq!(store(&gw)["agent:main:work"]["label"], "Focus");

    let res = ws.call(
        "sessions.patch",
        json!({"key": "agent:main:work", "label": null, "thinkingLevel": null, "responseUsage": "off"}),
    );
    let entry = res["entry"].as_object().unwrap();
    for gone in ["label", "thinkingLevel", "responseUsage"] {
        assert!(!entry.contains_key(gone), "{gone} cleared: {entry:?}");
    }
    let on_disk = store(&gw);
    assert!(on_disk["agent:main:work"].get("label").is_none());
    assert_eq!(on_disk["agent:main:work"]["totalTokens"], 15873);

    ws.call("sessions.patch", json!({"key": "work", "label": "Focus"}));
    let (code, msg) = ws.call_err("sessions.patch", json!({"key": "main", "label": "Focus"}));
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("INVALID_REQUEST", "label already in use: Focus")
    );
    let (_, msg) = ws.call_err(
        "sessions.patch",
        json!({"key": "main", "thinkingLevel": "loud"}),
    );
    assert_eq!(
        msg,
        "invalid thinkingLevel (use off|minimal|low|medium|high)"
    );
    let (_, msg) = ws.call_err(
        "sessions.patch",
        json!({"key": "main", "thinkingLevel": "xhigh"}),
    );
    assert_eq!(msg, "thinkingLevel \"xhigh\" is only supported for openai/gpt-5.2, openai-codex/gpt-5.2-codex or openai-codex/gpt-5.1-codex");
    let xhigh = ws.call(
        "sessions.patch",
        json!({"key": "work", "thinkingLevel": "xhigh"}),
    );
    assert_eq!(
        xhigh["entry"]["thinkingLevel"], "xhigh",
        "openai/gpt-5.2 override"
    );
    let (_, msg) = ws.call_err(
        "sessions.patch",
        json!({"key": "main", "execHost": "cloud"}),
    );
    assert_eq!(msg, r#"invalid execHost (use "sandbox"|"gateway"|"node")"#);
    let (_, msg) = ws.call_err(
        "sessions.patch",
        json!({"key": "main", "spawnedBy": "agent:main:main"}),
    );
    assert_eq!(msg, "spawnedBy is only supported for subagent:* sessions");
    // A new key gets a fresh entry.
    let fresh = ws.call(
        "sessions.patch",
        json!({"key": "agent:main:new", "sendPolicy": "deny"}),
    );
    assert_eq!(fresh["entry"]["sendPolicy"], "deny");
    assert_eq!(fresh["entry"]["sessionId"].as_str().unwrap().len(), 36);
}

#[test]
fn patch_param_errors_use_upstream_texts() {
    let (_gw, _, mut ws) = seeded();
    let (code, msg) = ws.call_err("sessions.patch", json!({"key": "work", "bogus": 1}));
    assert_eq!(code, "INVALID_REQUEST");
    assert_eq!(
        msg,
        "invalid sessions.patch params: at root: unexpected property 'bogus'"
    );
    let (_, msg) = ws.call_err("sessions.patch", json!({"label": "x"}));
    assert_eq!(
        msg,
        "invalid sessions.patch params: must have required property 'key'"
    );
    let (_, msg) = ws.call_err("sessions.patch", json!({"key": "  "}));
    assert_eq!(msg, "key required");
    let (_, msg) = ws.call_err(
        "sessions.patch",
        json!({"key": "work", "sendPolicy": "maybe", "label": 5}),
    );
    assert_eq!(
        msg,
        "invalid sessions.patch params: at /label: must be string; at /label: must be null; \
         at /label: must match a schema in anyOf; at /sendPolicy: must be equal to constant; \
         at /sendPolicy: must be null; at /sendPolicy: must match a schema in anyOf"
    );
    let (_, msg) = ws.call_err("sessions.reset", json!({"key": ""}));
    assert_eq!(
        msg,
        "invalid sessions.reset params: at /key: must NOT have fewer than 1 characters"
    );
    let (_, msg) = ws.call_err("sessions.compact", json!({"key": "work", "maxLines": 0}));
    assert_eq!(
        msg,
        "invalid sessions.compact params: at /maxLines: must be >= 1"
    );
    let (_, msg) = ws.call_err("sessions.preview", json!({"keys": []}));
    assert_eq!(
        msg,
        "invalid sessions.preview params: at /keys: must NOT have fewer than 1 items"
    );
}

#[test]
fn reset_mints_a_new_session_and_zeroes_counters() {
    let (gw, transcript, mut ws) = seeded();
    let res = ws.call("sessions.reset", json!({"key": "work"}));
    assert_eq!(res["ok"], true);
    assert_eq!(res["key"], "agent:main:work");
    let entry = &res["entry"];
    let id = entry["sessionId"].as_str().unwrap();
    assert_ne!(id, "work-sid");
    assert_eq!(id.len(), 36);
    for k in ["inputTokens", "outputTokens", "totalTokens"] {
        assert_eq!(entry[k], 0, "{k}");
    }
    assert_eq!(entry["systemSent"], false);
    assert_eq!(entry["abortedLastRun"], false);
    assert_eq!(entry["label"], "Work", "label kept");
    assert_eq!(entry["model"], "claude-opus-4-5", "model kept");
    assert_eq!(entry["thinkingLevel"], "high", "levels kept");
    for gone in [
        "sessionFile",
        "modelOverride",
        "compactionCount",
        "futureField",
    ] {
        assert!(entry.get(gone).is_none(), "{gone} dropped: {entry}");
    }
    assert!(transcript.exists(), "old transcript stays on disk");
    assert_eq!(store(&gw)["agent:main:work"]["sessionId"], id);
    let history = ws.call("chat.history", json!({"sessionKey": "work"}));
    assert_eq!(history["messages"], json!([]), "the new session is empty");
}

#[test]
fn delete_archives_the_transcript_and_refuses_main() {
    let (gw, transcript, mut ws) = seeded();
    for key in ["main", "agent:main:main"] {
        let (code, msg) = ws.call_err("sessions.delete", json!({"key": key}));
        assert_eq!(code, "INVALID_REQUEST");
        assert_eq!(msg, "Cannot delete the main session (agent:main:main).");
    }
    let res = ws.call("sessions.delete", json!({"key": "work"}));
    assert_eq!(res["ok"], true);
    assert_eq!(res["key"], "agent:main:work");
    assert_eq!(res["deleted"], true);
    let archived = res["archived"].as_array().unwrap();
    assert_eq!(archived.len(), 1, "{res}");
    assert_archived(archived[0].as_str().unwrap(), &transcript, "deleted");
    assert!(!transcript.exists());
    let on_disk = store(&gw);
    assert!(on_disk.get("agent:main:work").is_none());
    assert!(on_disk.get("agent:main:main").is_some());
    let again = ws.call("sessions.delete", json!({"key": "work"}));
    assert_eq!(
        again,
        json!({"ok": true, "key": "agent:main:work", "deleted": false, "archived": []})
    );
}

#[test]
fn delete_keeps_the_transcript_when_asked() {
    let (_gw, transcript, mut ws) = seeded();
    let res = ws.call(
        "sessions.delete",
        json!({"key": "work", "deleteTranscript": false}),
    );
    assert_eq!(res["deleted"], true);
    assert_eq!(res["archived"], json!([]));
    assert!(transcript.exists());
}

#[test]
fn preview_items_and_statuses() {
    let (_gw, _, mut ws) = seeded();
    let res = ws.call(
        "sessions.preview",
        json!({"keys": ["work", "main", "agent:main:nope"], "maxChars": 20}),
    );
    assert!(res["ts"].as_u64().is_some());
    let previews = res["previews"].as_array().unwrap();
    assert_eq!(previews[0]["key"], "work", "key echoed as sent");
    assert_eq!(previews[0]["status"], "ok");
    assert_eq!(
        previews[0]["items"],
        json!([
            {"role": "user", "text": "hi there"},
            {"role": "tool", "text": "call read"},
            {"role": "tool", "text": "file body"},
            {"role": "assistant", "text": "Hello! This answe..."},
        ])
    );
    assert_eq!(
        previews[1],
        json!({"key": "main", "status": "empty", "items": []})
    );
    assert_eq!(
        previews[2],
        json!({"key": "agent:main:nope", "status": "missing", "items": []})
    );
    let one = ws.call("sessions.preview", json!({"keys": ["work"], "limit": 1}));
    let items = one["previews"][0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["role"], "assistant");
}

#[test]
fn resolve_by_key_session_id_and_label() {
    let (_gw, _, mut ws) = seeded();
    let ok = |key: &str| json!({"ok": true, "key": key});
    assert_eq!(
        ws.call("sessions.resolve", json!({"key": "main"})),
        ok("agent:main:main")
    );
    assert_eq!(
        ws.call("sessions.resolve", json!({"sessionId": "work-sid"})),
        ok("agent:main:work")
    );
    assert_eq!(
        ws.call("sessions.resolve", json!({"label": "Work"})),
        ok("agent:main:work")
    );
    let (_, msg) = ws.call_err("sessions.resolve", json!({"key": "nope"}));
    assert_eq!(msg, "No session found: nope");
    let (_, msg) = ws.call_err("sessions.resolve", json!({"label": "Other"}));
    assert_eq!(msg, "No session found with label: Other");
    let (_, msg) = ws.call_err("sessions.resolve", json!({}));
    assert_eq!(msg, "Either key, sessionId, or label is required");
    let (_, msg) = ws.call_err("sessions.resolve", json!({"key": "main", "label": "Work"}));
    assert_eq!(
        msg,
        "Provide either key, sessionId, or label (not multiple)"
    );
}

#[test]
fn compact_keeps_the_last_lines_with_a_backup() {
    let (gw, transcript, mut ws) = seeded();
    let res = ws.call("sessions.compact", json!({"key": "work", "maxLines": 2}));
    assert_eq!(res["compacted"], true, "{res}");
    assert_eq!(res["kept"], 2);
    assert_archived(res["archived"].as_str().unwrap(), &transcript, "bak");
    let text = std::fs::read_to_string(&transcript).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with('\n'));
    assert!(text.contains("c9d0e1f2") && text.contains("a3b4c5d6"));
    let entry = &store(&gw)["agent:main:work"];
    assert!(entry.get("totalTokens").is_none(), "token counts dropped");
    assert_eq!(entry["label"], "Work");
    assert_eq!(
        ws.call("sessions.compact", json!({"key": "work"})),
        json!({"ok": true, "key": "agent:main:work", "compacted": false, "kept": 2})
    );
    assert_eq!(
        ws.call("sessions.compact", json!({"key": "main"})),
        json!({"ok": true, "key": "agent:main:main", "compacted": false, "reason": "no transcript"})
    );
    assert_eq!(
        ws.call("sessions.compact", json!({"key": "agent:main:none"})),
        json!({"ok": true, "key": "agent:main:none", "compacted": false, "reason": "no sessionId"})
    );
}

#[test]
fn delete_of_a_running_session_aborts_it_first() {
    let fake = FakeLlm::start();
    fake.push(
        Script::text(["one ", "two ", "three ", "four "]).chunk_delay(Duration::from_millis(400)),
    );
    let cfg = format!(
        r#"{{ gateway: {{ mode: "local" }},
  agents: {{ defaults: {{ thinkingDefault: "off", timeoutSeconds: 5 }} }},
  models: {{ providers: {{ anthropic: {{ baseUrl: "{}", models: [] }} }} }} }}"#,
        fake.base_url()
    );
    let mut opts = Opts::local(&cfg);
    opts.env
        .push(("ANTHROPIC_API_KEY".into(), "sk-ant-test-key".into()));
    let gw = Gateway::start(opts);
    let (mut ws, _) = gw.connect();
    ws.call(
        "chat.send",
        json!({"sessionKey": "agent:main:busy", "message": "count", "idempotencyKey": "busy-1"}),
    );
    let first = ws.wait_event("chat").unwrap();
    assert_eq!(first["payload"]["state"], "delta");
    let (code, msg) = ws.call_err("sessions.delete", json!({"key": "agent:main:busy"}));
    assert_eq!(code, "UNAVAILABLE");
    assert_eq!(
        msg,
        "Session agent:main:busy is still active; try again in a moment."
    );
    loop {
        let ev = ws.wait_event("chat").expect("chat event");
        if ev["payload"]["state"] != "delta" {
            assert_eq!(ev["payload"]["state"], "aborted", "{ev}");
            break;
        }
    }
    let res = ws.call("sessions.delete", json!({"key": "agent:main:busy"}));
    assert_eq!(res["ok"], true);
    assert!(store(&gw).get("agent:main:busy").is_none());
}

#[test]
fn patch_sets_and_clears_a_model_override() {
    let (gw, _, mut ws) = seeded();
    let res = ws.call(
        "sessions.patch",
        json!({"key": "work", "model": "openai/gpt-5.2"}),
    );
    assert_eq!(res["entry"]["providerOverride"], "openai", "{res}");
    assert_eq!(res["entry"]["modelOverride"], "gpt-5.2");
    assert_eq!(store(&gw)["agent:main:work"]["modelOverride"], "gpt-5.2");
    let res = ws.call("sessions.patch", json!({"key": "work", "model": null}));
    let entry = res["entry"].as_object().unwrap();
    assert!(!entry.contains_key("modelOverride"), "{entry:?}");
    let (code, msg) = ws.call_err("sessions.patch", json!({"key": "work", "model": " "}));
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("INVALID_REQUEST", "invalid model: empty")
    );
}
