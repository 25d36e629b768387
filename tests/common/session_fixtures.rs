//! Shared by the session-store and transcript tests: copies of the upstream-shaped fixtures in
//! `tests/fixtures/upstream-session/` and message builders.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/upstream-session"
);
pub const SID: &str = "3f8c2d9e-6b1a-4c7e-9f00-2b5d7a1e4c11";
pub const TOPIC_KEY: &str = "agent:main:telegram:group:-1001234567890:topic:42";

/// A fresh temp dir holding copies of the fixtures.
pub fn fixture_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mb-sessions-it-{}", moltbot::util::uuid_v4()));
    fs::create_dir_all(&dir).unwrap();
    for entry in fs::read_dir(FIXTURES).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

pub fn transcript_file(dir: &Path) -> PathBuf {
    dir.join(format!("{SID}-topic-42.jsonl"))
}

pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn text_of(message: &Value) -> String {
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

pub fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}], "timestamp": 1769508001000u64})
}

pub fn assistant(text: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}], "api": "anthropic-messages",
        "provider": "anthropic", "model": "claude-opus-4-5",
        "usage": {"input": 10, "output": 5, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 15,
            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}},
        "stopReason": "stop", "timestamp": 1769508003000u64})
}

pub fn tool_call(id: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "toolCall", "id": id, "name": "read", "arguments": {"path": "a"}}],
        "api": "anthropic-messages", "provider": "anthropic", "model": "claude-opus-4-5", "stopReason": "toolUse", "timestamp": 1})
}

pub fn tool_result(id: &str) -> Value {
    json!({"role": "toolResult", "toolCallId": id, "toolName": "read", "content": [{"type": "text", "text": "ok"}], "isError": false, "timestamp": 2})
}

pub fn roles(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?"))
        .collect()
}
