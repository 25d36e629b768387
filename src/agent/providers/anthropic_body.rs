//! The Anthropic Messages request body (agents.md §2.2): pi messages as Anthropic's blocks, the
//! system prompt with prompt caching, tools, thinking budget and max tokens.

use super::{to_claude_code_name, CLAUDE_CODE_IDENTITY};
use crate::agent::providers::transform::{sanitize_id, transform_messages};
use crate::agent::providers::{str_of, Request, ThinkingLevel, ToolSpec};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::sync::Arc;

/// Thinking budget per level (§2.1); `xhigh` uses `high`'s.
fn budget(level: ThinkingLevel) -> Option<u32> {
    match level {
        ThinkingLevel::Off => None,
        ThinkingLevel::Minimal => Some(1024),
        ThinkingLevel::Low => Some(2048),
        ThinkingLevel::Medium => Some(8192),
        ThinkingLevel::High | ThinkingLevel::XHigh => Some(16384),
    }
}

/// `(max_tokens, thinking budget)`: the budget is added on top of the output allowance, capped
/// at the model's limit, and shrunk when that leaves no room for output.
pub(super) fn token_plan(req: &Request) -> (u32, Option<u32>) {
    let base = req.base_max_tokens();
    let Some(mut b) = budget(req.thinking) else {
        return (base, None);
    };
    let max = base.saturating_add(b).min(req.target.max_tokens);
    if max <= b {
        b = max.saturating_sub(1024);
    }
    (max, Some(b))
}

/// The request body, in the order the SDK's params object has its keys. Serialised straight
/// from the request (no intermediate `Value` tree): the system prompt alone is ~16 KB.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Value>,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<TextBlock<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    /// Already in its JSON form (an array).
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Already in its JSON form (a string literal).
    text: &'a RawValue,
    cache_control: Ephemeral,
}

#[derive(Serialize)]
struct Ephemeral {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

fn cached_text(text: &RawValue) -> TextBlock<'_> {
    TextBlock {
        kind: "text",
        text,
        cache_control: Ephemeral { kind: "ephemeral" },
    }
}

/// A string as a JSON string literal.
fn json_string(text: &str) -> Box<RawValue> {
    // A string always serialises, and its literal is valid JSON.
    serde_json::value::to_raw_value(text).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A larger prompt (an HTTP client's system messages can be any size) is escaped each time
/// rather than kept.
const MAX_KEPT_SYSTEM: usize = 128 * 1024;

thread_local! {
    /// The last system prompt this thread sent, and its JSON form. The prompt is the same from
    /// turn to turn (the memo's one shared copy, so usually not even its ~16 KB are compared),
    /// and comparing costs far less than escaping them.
    static SYSTEM_JSON: RefCell<Option<(Arc<str>, Box<RawValue>)>> = const { RefCell::new(None) };
}

/// `f` with `system` as a JSON string literal, from this thread's last one when equal.
fn with_system_json<T>(system: &Arc<str>, f: impl FnOnce(&RawValue) -> T) -> T {
    if system.len() > MAX_KEPT_SYSTEM {
        return f(&json_string(system));
    }
    SYSTEM_JSON.with(|memo| {
        let mut memo = memo.borrow_mut();
        let same = |text: &Arc<str>| Arc::ptr_eq(text, system) || text == system;
        if memo.as_ref().is_some_and(|(text, _)| !same(text)) {
            *memo = None;
        }
        let (_, json) = memo.get_or_insert_with(|| (system.clone(), json_string(system)));
        f(json)
    })
}

/// Tool specs (the shared ones of `ToolSet::specs`), whether for OAuth, and their JSON.
type ToolsJson = (Arc<[ToolSpec]>, bool, Box<RawValue>);

thread_local! {
    /// The last tool set this thread sent, as JSON.
    static TOOLS_JSON: RefCell<Option<ToolsJson>> = const { RefCell::new(None) };
}

/// `f` with the request's tools as Anthropic's JSON array (`None` for no tools), from this
/// thread's last one when they are the same specs.
fn with_tools_json<T>(req: &Request, oauth: bool, f: impl FnOnce(Option<&RawValue>) -> T) -> T {
    if req.tools.is_empty() {
        return f(None);
    }
    TOOLS_JSON.with(|memo| {
        let mut memo = memo.borrow_mut();
        let same = |(specs, o, _): &ToolsJson| Arc::ptr_eq(specs, &req.tools) && *o == oauth;
        if !memo.as_ref().is_some_and(same) {
            let tools: Vec<Value> = req.tools.iter().map(|t| convert_tool(t, oauth)).collect();
            // `Value`s always serialise.
            let json = serde_json::value::to_raw_value(&tools)
                .unwrap_or_else(|_| RawValue::NULL.to_owned());
            *memo = Some((req.tools.clone(), oauth, json));
        }
        f(memo.as_ref().map(|(_, _, json)| &**json))
    })
}

pub(super) fn body_bytes(req: &Request, oauth: bool) -> Vec<u8> {
    with_system_json(&req.system, |system_json| {
        with_tools_json(req, oauth, |tools| {
            body_bytes_with(req, oauth, system_json, tools)
        })
    })
}

fn body_bytes_with(
    req: &Request,
    oauth: bool,
    system_json: &RawValue,
    tools: Option<&RawValue>,
) -> Vec<u8> {
    let (max_tokens, budget) = token_plan(req);
    let identity = oauth.then(|| json_string(CLAUDE_CODE_IDENTITY));
    let mut system = Vec::new();
    if let Some(identity) = &identity {
        system.push(cached_text(identity));
    }
    if !req.system.is_empty() {
        system.push(cached_text(system_json));
    }
    let body = Body {
        model: &req.target.model_id,
        messages: convert_messages(req, oauth),
        max_tokens,
        stream: true,
        system,
        temperature: req.temperature,
        tools,
        thinking: budget
            .filter(|_| req.target.reasoning)
            .map(|budget_tokens| Thinking {
                kind: "enabled",
                budget_tokens,
            }),
    };
    // Room for the system prompt and tools up front: no regrowing copies of 16 KB.
    let mut out = Vec::with_capacity(req.system.len() + 4096);
    // Strings, numbers and `Value`s only: serialising cannot fail.
    let _ = serde_json::to_writer(&mut out, &body);
    out
}

#[cfg(test)]
pub(super) fn body(req: &Request, oauth: bool) -> Value {
    serde_json::from_slice(&body_bytes(req, oauth)).unwrap_or_default()
}

/// Only `type`, `properties` and `required` of the root schema survive.
fn convert_tool(t: &ToolSpec, oauth: bool) -> Value {
    let name = if oauth {
        to_claude_code_name(&t.name)
    } else {
        t.name.clone()
    };
    let props = t.parameters.get("properties").cloned().unwrap_or(json!({}));
    let required = t.parameters.get("required").cloned().unwrap_or(json!([]));
    json!({
        "name": name,
        "description": t.description,
        "input_schema": {"type": "object", "properties": props, "required": required},
    })
}

pub(super) fn convert_messages(req: &Request, oauth: bool) -> Vec<Value> {
    let msgs = transform_messages(&req.messages, &req.target, &|id| sanitize_id(id, 64));
    let mut out = Vec::new();
    let mut i = 0;
    while i < msgs.len() {
        let msg = &msgs[i];
        match str_of(msg, "role") {
            "user" => out.extend(convert_user(msg, req.target.input_images)),
            "assistant" => out.extend(convert_assistant(msg, oauth)),
            "toolResult" => {
                // Consecutive results travel as one user message.
                let mut results = Vec::new();
                while i < msgs.len() && str_of(&msgs[i], "role") == "toolResult" {
                    results.push(convert_tool_result(&msgs[i]));
                    i += 1;
                }
                out.push(json!({"role": "user", "content": results}));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    mark_last_user_block(&mut out);
    out
}

fn image_block(b: &Value) -> Value {
    json!({"type": "image", "source": {
        "type": "base64", "media_type": str_of(b, "mimeType"), "data": str_of(b, "data")}})
}

fn convert_user(msg: &Value, images: bool) -> Option<Value> {
    let content = msg.get("content")?;
    if let Some(s) = content.as_str() {
        return (!s.trim().is_empty()).then(|| json!({"role": "user", "content": s}));
    }
    let blocks: Vec<Value> = content
        .as_array()?
        .iter()
        .filter_map(|b| match str_of(b, "type") {
            "text" => text_block(b),
            "image" if images => Some(image_block(b)),
            _ => None,
        })
        .collect();
    (!blocks.is_empty()).then(|| json!({"role": "user", "content": blocks}))
}

/// A pi text block as Anthropic's, or `None` for blank text (the API rejects empty blocks).
fn text_block(b: &Value) -> Option<Value> {
    let text = str_of(b, "text");
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn convert_assistant(msg: &Value, oauth: bool) -> Option<Value> {
    let blocks: Vec<Value> = msg
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|b| match str_of(b, "type") {
            "text" => text_block(b),
            "thinking" => {
                let thinking = str_of(b, "thinking");
                let sig = str_of(b, "thinkingSignature");
                if thinking.trim().is_empty() {
                    None
                } else if sig.trim().is_empty() {
                    // Unsigned thinking (an aborted stream) would be rejected: send it as text.
                    Some(json!({"type": "text", "text": thinking}))
                } else {
                    Some(json!({"type": "thinking", "thinking": thinking, "signature": sig}))
                }
            }
            "toolCall" => {
                let name = str_of(b, "name");
                let name = if oauth {
                    to_claude_code_name(name)
                } else {
                    name.to_string()
                };
                let input = b.get("arguments").cloned().unwrap_or(json!({}));
                Some(json!({"type": "tool_use", "id": str_of(b, "id"), "name": name, "input": input}))
            }
            _ => None,
        })
        .collect();
    (!blocks.is_empty()).then(|| json!({"role": "assistant", "content": blocks}))
}

fn convert_tool_result(msg: &Value) -> Value {
    json!({
        "type": "tool_result",
        "tool_use_id": str_of(msg, "toolCallId"),
        "content": tool_result_content(msg),
        "is_error": msg.get("isError").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Joined text, or a block array when images are present (image-only gets a text lead-in).
fn tool_result_content(msg: &Value) -> Value {
    let (text, images) = crate::agent::providers::tool_result_text(msg);
    if !images {
        return Value::String(text);
    }
    let mut blocks: Vec<Value> = msg
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| match str_of(b, "type") {
            "image" => image_block(b),
            _ => json!({"type": "text", "text": str_of(b, "text")}),
        })
        .collect();
    if !blocks.iter().any(|b| str_of(b, "type") == "text") {
        blocks.insert(0, json!({"type": "text", "text": "(see attached image)"}));
    }
    Value::Array(blocks)
}

/// Prompt caching: the last block of a trailing user message gets `cache_control`.
fn mark_last_user_block(msgs: &mut [Value]) {
    let Some(last) = msgs.last_mut() else {
        return;
    };
    if str_of(last, "role") != "user" {
        return;
    }
    let Some(block) = last
        .get_mut("content")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.last_mut())
    else {
        return;
    };
    if matches!(str_of(block, "type"), "text" | "image" | "tool_result") {
        block["cache_control"] = json!({"type": "ephemeral"});
    }
}
