//! What a turn keeps in memory between turns (the parsed `sessions.json`, the parsed
//! transcript, the workspace's bootstrap files, the system prompt) never hides a change made
//! on disk by someone else between two turns: upstream's CLI on the same state dir, a user
//! editing `AGENTS.md`.

use crate::chat::{chat_events, gateway_with, send};
use crate::llm::{FakeLlm, Script};
use crate::support::*;
use serde_json::{json, Value};
use std::path::PathBuf;

fn turn(ws: &mut Ws, key: &str, text: &str, run: &str) {
    send(ws, key, text, run);
    let end = chat_events(ws, run).pop().expect("run ended");
    assert_eq!(end["state"], "final", "{end}");
}

/// A gateway whose fake answers the next two requests with `first`, then `second`.
fn two_answers(first: &str, second: &str) -> (FakeLlm, Gateway, Ws) {
    let fake = FakeLlm::start();
    fake.push(Script::text([first]));
    fake.push(Script::text([second]));
    let gw = gateway_with(&fake, "");
    let (ws, _) = gw.connect();
    (fake, gw, ws)
}

/// `sessions.json` once the main session's first turn has recorded its usage.
fn recorded(gw: &Gateway) -> Value {
    store_when(gw, |s| s["agent:main:main"]["model"].is_string())
}

fn sessions_dir(gw: &Gateway) -> PathBuf {
    gw.state.path().join("agents/main/sessions")
}

fn read_store(gw: &Gateway) -> Value {
    let text = std::fs::read_to_string(sessions_dir(gw).join("sessions.json")).expect("store");
    serde_json::from_str(&text).expect("store parses")
}

fn texts(messages: &Value) -> Vec<String> {
    let texts = messages.as_array().into_iter().flatten().map(|m| {
        let content = &m["content"];
        content
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| content[0]["text"].as_str().unwrap_or("").to_string())
    });
    texts.collect()
}

/// A user + assistant exchange appended as upstream's runner writes it, on the file's leaf.
fn append_upstream_exchange(path: &std::path::Path, question: &str, answer: &str) {
    let text = std::fs::read_to_string(path).expect("transcript");
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
    let user = json!({"type": "message", "id": "aa11bb22", "parentId": last["id"],
        "timestamp": "2026-12-01T10:00:00.000Z",
        "message": {"role": "user", "content": [{"type": "text", "text": question}], "timestamp": 1}});
    let reply = json!({"type": "message", "id": "cc33dd44", "parentId": "aa11bb22",
        "timestamp": "2026-12-01T10:00:01.000Z",
        "message": {"role": "assistant", "content": [{"type": "text", "text": answer}],
            "api": "anthropic-messages", "provider": "anthropic", "model": "claude-opus-4-5",
            "usage": {"input": 1, "output": 1, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 2,
                      "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}},
            "stopReason": "stop", "timestamp": 2}});
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("append");
    use std::io::Write;
    writeln!(f, "{user}\n{reply}").expect("write");
}

#[test]
fn a_new_session_is_in_sessions_json_when_its_first_reply_arrives() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["hello"]));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    turn(&mut ws, "fresh", "hi", "n-1");
    // Read once, right away: the entry is written while the provider answers, before the end.
    let store = read_store(&gw);
    let id = store["agent:main:fresh"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("entry present: {store}"));
    assert!(
        sessions_dir(&gw).join(format!("{id}.jsonl")).is_file(),
        "the entry names the transcript the turn wrote"
    );
}

#[test]
fn lines_appended_by_another_writer_between_turns_reach_the_next_request() {
    let (fake, gw, mut ws) = two_answers("first answer", "second answer");
    turn(&mut ws, "main", "first question", "a-1");
    let store = recorded(&gw);
    let id = store["agent:main:main"]["sessionId"].as_str().expect("id");
    append_upstream_exchange(
        &sessions_dir(&gw).join(format!("{id}.jsonl")),
        "asked through upstream",
        "answered by upstream",
    );
    turn(&mut ws, "main", "second question", "a-2");
    let sent = texts(&fake.requests()[1].body["messages"]);
    assert_eq!(
        sent,
        [
            "first question",
            "first answer",
            "asked through upstream",
            "answered by upstream",
            "second question"
        ]
    );
}

#[test]
fn a_session_store_rewritten_between_turns_is_read_again() {
    let (fake, gw, mut ws) = two_answers("one", "two");
    turn(&mut ws, "main", "before the switch", "s-1");
    let mut store = recorded(&gw);
    // Another process points the session at a transcript of its own.
    let other = "0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9";
    let path = sessions_dir(&gw).join(format!("{other}.jsonl"));
    let header = json!({"type": "session", "version": 3, "id": other,
        "timestamp": "2026-12-01T09:00:00.000Z", "cwd": "/tmp"});
    let root = json!({"type": "model_change", "id": "ee55ff66", "parentId": null,
        "timestamp": "2026-12-01T09:00:00.000Z", "provider": "anthropic", "modelId": "claude-opus-4-5"});
    std::fs::write(&path, format!("{header}\n{root}\n")).expect("root");
    append_upstream_exchange(&path, "kept elsewhere", "from the other store");
    store["agent:main:main"]["sessionId"] = json!(other);
    store["agent:main:main"]["sessionFile"] = json!(path.to_string_lossy());
    store["agent:main:main"]["updatedAt"] = json!(moltbot::util::now_ms());
    let text = serde_json::to_string_pretty(&store).expect("json");
    std::fs::write(sessions_dir(&gw).join("sessions.json"), text).expect("store");
    turn(&mut ws, "main", "after the switch", "s-2");
    let sent = texts(&fake.requests()[1].body["messages"]);
    assert_eq!(
        sent,
        ["kept elsewhere", "from the other store", "after the switch"]
    );
    let lines = std::fs::read_to_string(&path).expect("other transcript");
    assert!(lines.contains("after the switch"), "the turn wrote there");
}

#[test]
fn an_edited_bootstrap_file_is_in_the_next_system_prompt() {
    let (fake, _gw, mut ws) = two_answers("ok", "ok again");
    turn(&mut ws, "main", "one", "b-1");
    let system = |i: usize| fake.requests()[i].body["system"][0]["text"].clone();
    let cwd = fake.requests()[0].body["system"][0]["text"]
        .as_str()
        .and_then(|s| s.split("Your working directory is: ").nth(1))
        .and_then(|s| s.lines().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("workspace named in the prompt: {}", system(0)));
    std::fs::write(PathBuf::from(cwd.trim()).join("AGENTS.md"), "RULE-TWO-XYZ").expect("edit");
    turn(&mut ws, "main", "two", "b-2");
    let second = system(1);
    assert!(
        second.as_str().unwrap_or("").contains("RULE-TWO-XYZ"),
        "{second}"
    );
    assert!(!system(0).as_str().unwrap_or("").contains("RULE-TWO-XYZ"));
}

#[test]
fn a_workspace_that_stops_being_a_repository_loses_its_repo_in_the_next_prompt() {
    let (fake, _gw, mut ws) = two_answers("ok", "ok again");
    turn(&mut ws, "main", "one", "g-1");
    let system = |i: usize| {
        let body = &fake.requests()[i].body;
        body["system"][0]["text"].as_str().unwrap_or("").to_string()
    };
    let first = system(0);
    let cwd = first
        .split("Your working directory is: ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .map(|s| PathBuf::from(s.trim()))
        .unwrap_or_else(|| panic!("workspace named in the prompt: {first}"));
    let repo = format!("repo={}", cwd.display());
    assert!(
        first.contains(&repo),
        "the new workspace is a git repository: {first}"
    );
    std::fs::remove_dir_all(cwd.join(".git")).expect("remove .git");
    turn(&mut ws, "main", "two", "g-2");
    let second = system(1);
    assert!(!second.contains("repo="), "{second}");
}
