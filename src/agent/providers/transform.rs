//! Transform-at-send (pi-ai `transform-messages.js`, agents.md §2.1): drop failed turns, pair
//! orphaned tool calls with synthetic results, demote foreign thinking to text, normalise
//! tool-call ids per target API; plus the lenient parser for streamed tool-call JSON.

use super::ModelTarget;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;

/// Rewrites a tool-call id for the target API (`assistant` is the message holding the call).
pub(crate) type NormalizeId<'a> = &'a dyn Fn(&str) -> String;

fn str_field<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether an assistant message came from exactly this provider, API and model.
pub(crate) fn is_same_model(msg: &Value, target: &ModelTarget) -> bool {
    str_field(msg, "provider") == target.provider
        && str_field(msg, "api") == target.api.as_str()
        && str_field(msg, "model") == target.model_id
}

/// The message list as the provider converters must see it. A message that needs no change is
/// borrowed, not copied: a long history is converted once, by the provider's own converter.
pub(crate) fn transform_messages<'a>(
    messages: &'a [Value],
    target: &ModelTarget,
    normalize: NormalizeId<'_>,
) -> Vec<Cow<'a, Value>> {
    let mut id_map: HashMap<String, String> = HashMap::new();
    let first: Vec<Cow<'a, Value>> = messages
        .iter()
        .map(|m| match str_field(m, "role") {
            "assistant" => transform_assistant(m, target, normalize, &mut id_map),
            "toolResult" => remap_result(m, &id_map),
            _ => Cow::Borrowed(m),
        })
        .collect();
    pair_tool_calls(first)
}

fn remap_result<'a>(msg: &'a Value, id_map: &HashMap<String, String>) -> Cow<'a, Value> {
    let Some(new_id) = id_map.get(str_field(msg, "toolCallId")) else {
        return Cow::Borrowed(msg);
    };
    let mut out = msg.clone();
    out["toolCallId"] = Value::String(new_id.clone());
    Cow::Owned(out)
}

/// What `transform_block` returns unchanged for the same model: everything but a thinking block
/// that is blank and unsigned (dropped).
fn kept_as_is(block: &Value) -> bool {
    str_field(block, "type") != "thinking"
        || !str_field(block, "thinkingSignature").is_empty()
        || !str_field(block, "thinking").trim().is_empty()
}

fn transform_assistant<'a>(
    msg: &'a Value,
    target: &ModelTarget,
    normalize: NormalizeId<'_>,
    id_map: &mut HashMap<String, String>,
) -> Cow<'a, Value> {
    let same = is_same_model(msg, target);
    let blocks = msg.get("content").and_then(Value::as_array);
    if same && blocks.into_iter().flatten().all(kept_as_is) {
        return Cow::Borrowed(msg);
    }
    let content: Vec<Value> = blocks
        .into_iter()
        .flatten()
        .filter_map(|b| transform_block(b, same, normalize, id_map))
        .collect();
    // Every other field copied in place; the content, rebuilt above, is not copied twice.
    let mut content = Some(Value::Array(content));
    let mut out: Map<String, Value> = msg
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| match k.as_str() {
            "content" => (k.clone(), content.take().unwrap_or_default()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    if let Some(content) = content {
        out.insert("content".into(), content);
    }
    Cow::Owned(Value::Object(out))
}

fn transform_block(
    block: &Value,
    same: bool,
    normalize: NormalizeId<'_>,
    id_map: &mut HashMap<String, String>,
) -> Option<Value> {
    match str_field(block, "type") {
        "thinking" => {
            let text = str_field(block, "thinking");
            // Same model: a signed block is replayed even when its text is empty (OpenAI
            // encrypted reasoning); anything else empty is dropped, foreign thinking becomes text.
            if same && !str_field(block, "thinkingSignature").is_empty() {
                return Some(block.clone());
            }
            if text.trim().is_empty() {
                return None;
            }
            if same {
                return Some(block.clone());
            }
            Some(json!({"type": "text", "text": text}))
        }
        "text" if !same => Some(json!({"type": "text", "text": str_field(block, "text")})),
        "toolCall" if !same => {
            let mut call = block.clone();
            if let Some(obj) = call.as_object_mut() {
                obj.remove("thoughtSignature");
            }
            let id = str_field(block, "id");
            let new_id = normalize(id);
            if new_id != id {
                id_map.insert(id.to_string(), new_id.clone());
                call["id"] = Value::String(new_id);
            }
            Some(call)
        }
        _ => Some(block.clone()),
    }
}

/// Second pass: drop error/aborted assistant turns and give every tool call without a result a
/// synthetic error result before the next assistant or user message.
fn pair_tool_calls(messages: Vec<Cow<'_, Value>>) -> Vec<Cow<'_, Value>> {
    let mut out = Vec::with_capacity(messages.len());
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut answered: Vec<String> = Vec::new();
    for msg in messages {
        match str_field(&msg, "role") {
            "assistant" => {
                flush_orphans(&mut out, &mut pending, &mut answered);
                let stop = str_field(&msg, "stopReason");
                if stop == "error" || stop == "aborted" {
                    continue;
                }
                let calls = tool_calls_of(&msg);
                if !calls.is_empty() {
                    pending = calls;
                    answered.clear();
                }
                out.push(msg);
            }
            "toolResult" => {
                answered.push(str_field(&msg, "toolCallId").to_string());
                out.push(msg);
            }
            "user" => {
                flush_orphans(&mut out, &mut pending, &mut answered);
                out.push(msg);
            }
            _ => out.push(msg),
        }
    }
    out
}

fn tool_calls_of(msg: &Value) -> Vec<(String, String)> {
    let blocks = msg.get("content").and_then(Value::as_array);
    blocks
        .into_iter()
        .flatten()
        .filter(|b| str_field(b, "type") == "toolCall")
        .map(|b| {
            (
                str_field(b, "id").to_string(),
                str_field(b, "name").to_string(),
            )
        })
        .collect()
}

fn flush_orphans(
    out: &mut Vec<Cow<'_, Value>>,
    pending: &mut Vec<(String, String)>,
    answered: &mut Vec<String>,
) {
    for (id, name) in pending.drain(..) {
        if !answered.contains(&id) {
            out.push(Cow::Owned(json!({
                "role": "toolResult",
                "toolCallId": id,
                "toolName": name,
                "content": [{"type": "text", "text": "No result provided"}],
                "isError": true,
                "timestamp": crate::util::now_ms(),
            })));
        }
    }
    answered.clear();
}

/// Replaces characters outside `[a-zA-Z0-9_-]` with `_` and keeps at most `max` characters.
pub(crate) fn sanitize_id(id: &str, max: usize) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// pi's `parseStreamingJson`: the value of complete JSON, else the best reading of a truncated
/// document (open strings closed, dangling keys and literals dropped, containers closed), else `{}`.
pub(crate) fn parse_streaming_json(text: &str) -> Value {
    if text.trim().is_empty() {
        return json!({});
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    repair_candidates(text)
        .into_iter()
        .find_map(|c| serde_json::from_str::<Value>(&c).ok())
        .unwrap_or_else(|| json!({}))
}

/// Scanner state for `repair_candidates`.
struct Scan {
    /// Closers of the open containers, innermost last; `}` entries carry "expecting a key".
    stack: Vec<(u8, bool)>,
    in_string: bool,
    string_is_key: bool,
    escape: bool,
    /// Longest prefix that ends after a complete value (or an opener), with its closers.
    safe: Option<(usize, String)>,
}

impl Scan {
    fn closers(&self) -> String {
        self.stack.iter().rev().map(|&(c, _)| c as char).collect()
    }

    fn mark_safe(&mut self, end: usize) {
        self.safe = Some((end, self.closers()));
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some((b'}', true)))
    }

    fn set_expect_key(&mut self, v: bool) {
        if let Some((b'}', k)) = self.stack.last_mut() {
            *k = v;
        }
    }
}

/// Up to three completions of a truncated document, most faithful first.
fn repair_candidates(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut s = Scan {
        stack: Vec::new(),
        in_string: false,
        string_is_key: false,
        escape: false,
        safe: None,
    };
    for (i, &b) in bytes.iter().enumerate() {
        if s.in_string {
            match (s.escape, b) {
                (true, _) => s.escape = false,
                (false, b'\\') => s.escape = true,
                (false, b'"') => {
                    s.in_string = false;
                    if !s.string_is_key {
                        s.mark_safe(i + 1);
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'{' => {
                s.stack.push((b'}', true));
                s.mark_safe(i + 1);
            }
            b'[' => {
                s.stack.push((b']', false));
                s.mark_safe(i + 1);
            }
            b'}' | b']' => {
                s.stack.pop();
                s.mark_safe(i + 1);
            }
            b'"' => {
                s.in_string = true;
                s.string_is_key = s.expecting_key();
            }
            b',' => {
                s.mark_safe(i);
                s.set_expect_key(true);
            }
            b':' => s.set_expect_key(false),
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(3);
    if s.in_string && !s.string_is_key {
        out.push(format!("{}\"{}", trim_escape(text, s.escape), s.closers()));
    } else if !s.in_string {
        out.push(format!("{}{}", text.trim_end(), s.closers()));
    }
    if let Some((end, closers)) = &s.safe {
        let head = text[..*end].trim_end().trim_end_matches(',');
        out.push(format!("{head}{closers}"));
    }
    out
}

/// Drops a dangling `\` or an incomplete `\uXXXX` escape at the end of an open string.
fn trim_escape(text: &str, dangling_backslash: bool) -> &str {
    if dangling_backslash {
        return &text[..text.len() - 1];
    }
    let tail_start = text.len().saturating_sub(6);
    match text.get(tail_start..).and_then(|t| t.rfind("\\u")) {
        Some(p) => {
            let at = tail_start + p;
            let hex = &text[at + 2..];
            if hex.len() < 4 {
                &text[..at]
            } else {
                text
            }
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::providers::{Api, ModelTarget};

    #[test]
    fn streaming_json_repairs() {
        let cases = [
            ("", json!({})),
            ("{\"path\": \"no", json!({"path": "no"})),
            ("{\"path\": \"notes.txt\"}", json!({"path": "notes.txt"})),
            ("{\"a\": 1, \"b", json!({"a": 1})),
            ("{\"a\": [1, 2", json!({"a": [1, 2]})),
            ("{\"a\": tru", json!({})),
            ("{\"a\": 1, \"b\": tru", json!({"a": 1})),
            ("{\"a\": \"x\\", json!({"a": "x"})),
            ("{\"a\": \"x\\u00", json!({"a": "x"})),
            ("{\"a\": {\"b\": \"c\"", json!({"a": {"b": "c"}})),
            ("not json", json!({})),
        ];
        for (input, want) in cases {
            assert_eq!(parse_streaming_json(input), want, "input {input:?}");
        }
    }

    fn target() -> ModelTarget {
        ModelTarget::new("anthropic", Api::AnthropicMessages, "claude-x", "http://x")
    }

    #[test]
    fn drops_failed_turns_and_pairs_orphans() {
        let msgs = vec![
            json!({"role":"user","content":"hi"}),
            json!({"role":"assistant","provider":"anthropic","api":"anthropic-messages","model":"claude-x","stopReason":"toolUse",
                   "content":[{"type":"toolCall","id":"t1","name":"read","arguments":{}}]}),
            json!({"role":"user","content":"again"}),
            json!({"role":"assistant","provider":"anthropic","api":"anthropic-messages","model":"claude-x","stopReason":"error","content":[]}),
        ];
        let out = transform_messages(&msgs, &target(), &|id| id.to_string());
        let roles: Vec<&str> = out.iter().map(|m| str_field(m, "role")).collect();
        assert_eq!(roles, ["user", "assistant", "toolResult", "user"]);
        assert_eq!(out[2]["toolCallId"], "t1");
        assert_eq!(out[2]["isError"], true);
        assert_eq!(out[2]["content"][0]["text"], "No result provided");
    }

    #[test]
    fn foreign_thinking_becomes_text_and_ids_are_normalised() {
        let msgs = vec![
            json!({"role":"assistant","provider":"openai","api":"openai-responses","model":"gpt","stopReason":"toolUse",
                   "content":[{"type":"thinking","thinking":"hmm","thinkingSignature":"{}"},
                              {"type":"thinking","thinking":"  "},
                              {"type":"toolCall","id":"call|fc","name":"read","arguments":{}}]}),
            json!({"role":"toolResult","toolCallId":"call|fc","toolName":"read","content":[],"isError":false}),
        ];
        let out = transform_messages(&msgs, &target(), &|id| sanitize_id(id, 64));
        assert_eq!(
            out[0]["content"],
            json!([{"type":"text","text":"hmm"},{"type":"toolCall","id":"call_fc","name":"read","arguments":{}}])
        );
        assert_eq!(out[1]["toolCallId"], "call_fc");
    }
}
