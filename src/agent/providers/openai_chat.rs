//! OpenAI Chat Completions (`openai-completions`: OpenRouter, Ollama, vLLM, custom proxies;
//! agents.md §2.3): compat detection, the `messages` list built from pi messages, and the
//! `data: {chunk}` … `data: [DONE]` decoder.

use super::assistant::{Assistant, Block, StopReason, Usage};
use super::error::{openai_frame, openai_http_message, OpenAiFrame, ProviderError};
use super::openai_responses::openai_headers;
use super::sse::SseEvent;
use super::transform::{sanitize_id, transform_messages};
use super::transport::HttpCall;
use super::{join_url, str_of, u64_of, Decoder, ModelTarget, Request, ToolSpec};
use serde_json::{json, Map, Value};

/// Provider quirks (pi-ai `detectCompat`, overridable per model `compat`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compat {
    supports_store: bool,
    supports_developer_role: bool,
    supports_reasoning_effort: bool,
    supports_usage_in_streaming: bool,
    max_tokens_field: String,
    requires_tool_result_name: bool,
    requires_assistant_after_tool_result: bool,
    requires_thinking_as_text: bool,
    requires_mistral_tool_ids: bool,
    /// `openai` (`reasoning_effort`) or `zai` (`thinking: {type}`).
    thinking_format: String,
}

pub(crate) fn compat(t: &ModelTarget) -> Compat {
    let (p, url) = (t.provider.as_str(), t.base_url.as_str());
    let zai = p == "zai" || url.contains("api.z.ai");
    let grok = p == "xai" || url.contains("api.x.ai");
    let mistral = p == "mistral" || url.contains("mistral.ai");
    let non_standard = p == "cerebras"
        || url.contains("cerebras.ai")
        || grok
        || mistral
        || url.contains("chutes.ai")
        || zai
        || p == "opencode"
        || url.contains("opencode.ai");
    let max_tokens = mistral || url.contains("chutes.ai");
    let o = &t.compat;
    let flag = |key: &str, default: bool| o.get(key).and_then(Value::as_bool).unwrap_or(default);
    let text = |key: &str, default: &str| {
        o.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    Compat {
        supports_store: flag("supportsStore", !non_standard),
        supports_developer_role: flag("supportsDeveloperRole", !non_standard),
        supports_reasoning_effort: flag("supportsReasoningEffort", !grok && !zai),
        supports_usage_in_streaming: flag("supportsUsageInStreaming", true),
        max_tokens_field: text(
            "maxTokensField",
            if max_tokens {
                "max_tokens"
            } else {
                "max_completion_tokens"
            },
        ),
        requires_tool_result_name: flag("requiresToolResultName", mistral),
        requires_assistant_after_tool_result: flag("requiresAssistantAfterToolResult", false),
        requires_thinking_as_text: flag("requiresThinkingAsText", mistral),
        requires_mistral_tool_ids: flag("requiresMistralToolIds", mistral),
        thinking_format: text("thinkingFormat", if zai { "zai" } else { "openai" }),
    }
}

pub(crate) fn prepare(req: &Request) -> (HttpCall, Box<dyn Decoder>) {
    let call = HttpCall {
        url: join_url(&req.target.base_url, "/chat/completions"),
        headers: openai_headers(req),
        body: serde_json::to_vec(&body(req)).unwrap_or_default(),
        timeout: req.timeout,
    };
    (call, Box::new(ChatDecoder { current: None }))
}

pub(crate) fn body(req: &Request) -> Value {
    let c = compat(&req.target);
    let mut messages = convert_messages(req, &c);
    openrouter_cache_control(&req.target, &mut messages);
    let mut b = Map::new();
    b.insert("model".into(), req.target.model_id.clone().into());
    b.insert("messages".into(), Value::Array(messages));
    b.insert("stream".into(), true.into());
    if c.supports_usage_in_streaming {
        b.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if c.supports_store {
        b.insert("store".into(), false.into());
    }
    b.insert(c.max_tokens_field.clone(), req.base_max_tokens().into());
    if let Some(t) = req.temperature {
        b.insert("temperature".into(), t.into());
    }
    if !req.tools.is_empty() {
        b.insert("tools".into(), req.tools.iter().map(convert_tool).collect());
    } else if has_tool_history(&req.messages) {
        // Proxies in front of Anthropic reject tool history without a tools list.
        b.insert("tools".into(), json!([]));
    }
    let effort = req.thinking.openai_effort(&req.target.model_id);
    if c.thinking_format == "zai" && req.target.reasoning {
        let kind = if effort.is_some() {
            "enabled"
        } else {
            "disabled"
        };
        b.insert("thinking".into(), json!({"type": kind}));
    } else if let (Some(e), true, true) =
        (effort, req.target.reasoning, c.supports_reasoning_effort)
    {
        b.insert("reasoning_effort".into(), e.into());
    }
    Value::Object(b)
}

fn convert_tool(t: &ToolSpec) -> Value {
    json!({"type": "function", "function": {
        "name": t.name, "description": t.description, "parameters": t.parameters, "strict": false}})
}

fn has_tool_history(messages: &[Value]) -> bool {
    messages.iter().any(|m| match str_of(m, "role") {
        "toolResult" => true,
        "assistant" => m
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|b| str_of(b, "type") == "toolCall")),
        _ => false,
    })
}

/// Mistral wants exactly 9 alphanumerics (padded deterministically so call and result match).
fn mistral_id(id: &str) -> String {
    let mut s: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(9)
        .collect();
    let missing = 9 - s.chars().count();
    s.push_str(&"ABCDEFGHI"[..missing]);
    s
}

fn normalize_id(t: &ModelTarget, c: &Compat, id: &str) -> String {
    if c.requires_mistral_tool_ids {
        return mistral_id(id);
    }
    if t.provider == "openai" {
        return id.chars().take(40).collect();
    }
    if t.provider == "github-copilot" && t.model_id.to_lowercase().contains("claude") {
        return sanitize_id(id, 64);
    }
    id.to_string()
}

fn image_url(b: &Value) -> Value {
    let url = format!(
        "data:{};base64,{}",
        str_of(b, "mimeType"),
        str_of(b, "data")
    );
    json!({"type": "image_url", "image_url": {"url": url}})
}

fn convert_messages(req: &Request, c: &Compat) -> Vec<Value> {
    let t = &req.target;
    let msgs = transform_messages(&req.messages, t, &|id| normalize_id(t, c, id));
    let mut out = Vec::new();
    if !req.system.is_empty() {
        let role = if t.reasoning && c.supports_developer_role {
            "developer"
        } else {
            "system"
        };
        out.push(json!({"role": role, "content": &*req.system}));
    }
    let mut last_role = "";
    for msg in &msgs {
        let role = str_of(msg, "role");
        if c.requires_assistant_after_tool_result && last_role == "toolResult" && role == "user" {
            out.push(json!({"role": "assistant", "content": "I have processed the tool results."}));
        }
        match role {
            "user" => out.extend(convert_user(msg, t.input_images)),
            "assistant" => out.extend(convert_assistant(msg, t, c)),
            "toolResult" => convert_tool_result(msg, t.input_images, c, &mut out),
            _ => {}
        }
        last_role = role;
    }
    out
}

fn convert_user(msg: &Value, images: bool) -> Option<Value> {
    let content = msg.get("content")?;
    if let Some(s) = content.as_str() {
        return Some(json!({"role": "user", "content": s}));
    }
    let parts: Vec<Value> = content
        .as_array()?
        .iter()
        .filter_map(|b| match str_of(b, "type") {
            "text" => Some(json!({"type": "text", "text": str_of(b, "text")})),
            "image" if images => Some(image_url(b)),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| json!({"role": "user", "content": parts}))
}

fn blocks_of<'v>(msg: &'v Value, kind: &'v str) -> impl Iterator<Item = &'v Value> + 'v {
    let blocks = msg.get("content").and_then(Value::as_array);
    blocks
        .into_iter()
        .flatten()
        .filter(move |b| str_of(b, "type") == kind)
}

fn convert_assistant(msg: &Value, t: &ModelTarget, c: &Compat) -> Option<Value> {
    let mut m = Map::new();
    m.insert("role".into(), "assistant".into());
    let empty = if c.requires_assistant_after_tool_result {
        json!("")
    } else {
        Value::Null
    };
    let texts: Vec<&str> = blocks_of(msg, "text")
        .map(|b| str_of(b, "text"))
        .filter(|s| !s.trim().is_empty())
        .collect();
    let mut content = match (texts.is_empty(), t.provider == "github-copilot") {
        (true, _) => empty,
        // Copilot re-answers old prompts when assistant content is an array.
        (false, true) => Value::String(texts.concat()),
        (false, false) => texts
            .iter()
            .map(|s| json!({"type": "text", "text": s}))
            .collect(),
    };
    let thinking: Vec<&Value> = blocks_of(msg, "thinking")
        .filter(|b| !str_of(b, "thinking").trim().is_empty())
        .collect();
    let mut replay_field = None;
    if let Some(first) = thinking.first() {
        let joined = |sep: &str| {
            thinking
                .iter()
                .map(|b| str_of(b, "thinking"))
                .collect::<Vec<_>>()
                .join(sep)
        };
        if c.requires_thinking_as_text {
            let lead = json!({"type": "text", "text": joined("\n\n")});
            match content.as_array_mut() {
                Some(a) => a.insert(0, lead),
                None => content = json!([lead]),
            }
        } else {
            // The signature names the field the server streamed it in (e.g. reasoning_content).
            let sig = str_of(first, "thinkingSignature");
            if !sig.is_empty() {
                replay_field = Some((sig.to_string(), joined("\n")));
            }
        }
    }
    let has_content = match &content {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    m.insert("content".into(), content);
    if let Some((field, text)) = replay_field {
        m.insert(field, text.into());
    }
    let calls: Vec<Value> = blocks_of(msg, "toolCall")
        .map(|b| {
            let args = b.get("arguments").cloned().unwrap_or(json!({}));
            json!({"id": str_of(b, "id"), "type": "function",
                   "function": {"name": str_of(b, "name"), "arguments": args.to_string()}})
        })
        .collect();
    let has_calls = !calls.is_empty();
    if has_calls {
        m.insert("tool_calls".into(), Value::Array(calls));
    }
    (has_content || has_calls).then_some(Value::Object(m))
}

fn convert_tool_result(msg: &Value, images: bool, c: &Compat, out: &mut Vec<Value>) {
    let (text, has_images) = super::tool_result_text(msg);
    let content = if text.is_empty() {
        "(see attached image)".to_string()
    } else {
        text
    };
    let mut m = Map::new();
    m.insert("role".into(), "tool".into());
    m.insert("content".into(), content.into());
    m.insert("tool_call_id".into(), str_of(msg, "toolCallId").into());
    let name = str_of(msg, "toolName");
    if c.requires_tool_result_name && !name.is_empty() {
        m.insert("name".into(), name.into());
    }
    out.push(Value::Object(m));
    if has_images && images {
        let mut parts =
            vec![json!({"type": "text", "text": "Attached image(s) from tool result:"})];
        parts.extend(blocks_of(msg, "image").map(image_url));
        out.push(json!({"role": "user", "content": parts}));
    }
}

/// OpenRouter `anthropic/*`: a cache breakpoint on the last user/assistant text part.
fn openrouter_cache_control(t: &ModelTarget, messages: &mut [Value]) {
    if t.provider != "openrouter" || !t.model_id.starts_with("anthropic/") {
        return;
    }
    let cache = json!({"type": "ephemeral"});
    for msg in messages.iter_mut().rev() {
        if !matches!(str_of(msg, "role"), "user" | "assistant") {
            continue;
        }
        if let Some(s) = msg["content"].as_str() {
            msg["content"] = json!([{"type": "text", "text": s, "cache_control": cache}]);
            return;
        }
        let parts = msg.get_mut("content").and_then(Value::as_array_mut);
        let text = parts.and_then(|a| a.iter_mut().rev().find(|p| str_of(p, "type") == "text"));
        if let Some(part) = text {
            part["cache_control"] = cache;
            return;
        }
    }
}

fn map_finish(reason: &str) -> Result<StopReason, ProviderError> {
    Ok(match reason {
        "stop" => StopReason::Stop,
        "length" => StopReason::Length,
        "function_call" | "tool_calls" => StopReason::ToolUse,
        "content_filter" => StopReason::Error,
        other => {
            return Err(ProviderError::stream(format!(
                "Unhandled stop reason: {other}"
            )))
        }
    })
}

/// Reasoning arrives under one of these names depending on the server; the first non-empty wins.
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "reasoning", "reasoning_text"];

struct ChatDecoder {
    /// The block deltas currently extend (chat streams one block at a time).
    current: Option<usize>,
}

impl ChatDecoder {
    fn current_block<'b>(&self, out: &'b Assistant<'_>) -> Option<&'b Block> {
        self.current.and_then(|i| out.blocks.get(i))
    }

    /// Ends the current block and starts `block` unless the current one already fits.
    fn switch_to(&mut self, block: Block, out: &mut Assistant<'_>) -> usize {
        if let Some(at) = self.current.take() {
            out.end_block(at);
        }
        let at = out.start_block(block);
        self.current = Some(at);
        at
    }

    fn usage(&self, u: &Value, out: &mut Assistant<'_>) {
        let cached = u64_of(&u["prompt_tokens_details"], "cached_tokens");
        let reasoning = u64_of(&u["completion_tokens_details"], "reasoning_tokens");
        let input = u64_of(u, "prompt_tokens").saturating_sub(cached);
        let output = u64_of(u, "completion_tokens") + reasoning;
        // Computed, not taken from total_tokens: some servers leave reasoning out of it.
        out.set_usage(Usage {
            input,
            output,
            cache_read: cached,
            cache_write: 0,
            total_tokens: input + output + cached,
        });
    }

    fn text(&mut self, delta: &str, out: &mut Assistant<'_>) {
        let at = match (self.current, self.current_block(out)) {
            (Some(at), Some(Block::Text { .. })) => at,
            _ => self.switch_to(
                Block::Text {
                    text: String::new(),
                    signature: None,
                },
                out,
            ),
        };
        out.text_delta(at, delta);
    }

    fn reasoning(&mut self, field: &str, delta: &str, out: &mut Assistant<'_>) {
        let at = match (self.current, self.current_block(out)) {
            (Some(at), Some(Block::Thinking { .. })) => at,
            _ => self.switch_to(
                Block::Thinking {
                    thinking: String::new(),
                    signature: Some(field.to_string()),
                },
                out,
            ),
        };
        out.thinking_delta(at, delta);
    }

    fn tool_call(&mut self, tc: &Value, out: &mut Assistant<'_>) {
        let id = str_of(tc, "id");
        let name = str_of(&tc["function"], "name");
        let at = match (self.current, self.current_block(out)) {
            (Some(at), Some(Block::ToolCall { id: cur, .. })) if id.is_empty() || cur == id => at,
            _ => self.switch_to(
                Block::ToolCall {
                    id: id.to_string(),
                    name: name.to_string(),
                    arguments: None,
                    partial: String::new(),
                    signature: None,
                },
                out,
            ),
        };
        if let Some(Block::ToolCall { id: i, name: n, .. }) = out.blocks.get_mut(at) {
            if !id.is_empty() {
                *i = id.to_string();
            }
            if !name.is_empty() {
                *n = name.to_string();
            }
        }
        let args = str_of(&tc["function"], "arguments");
        if !args.is_empty() {
            out.tool_delta(at, args);
        }
    }

    fn delta(&mut self, d: &Value, out: &mut Assistant<'_>) {
        let content = str_of(d, "content");
        if !content.is_empty() {
            self.text(content, out);
        }
        let reasoning = REASONING_FIELDS.iter().find(|f| !str_of(d, f).is_empty());
        if let Some(field) = reasoning {
            self.reasoning(field, str_of(d, field), out);
        }
        let calls = d.get("tool_calls").and_then(Value::as_array);
        for tc in calls.into_iter().flatten() {
            self.tool_call(tc, out);
        }
    }
}

impl Decoder for ChatDecoder {
    fn frame(&mut self, ev: SseEvent, out: &mut Assistant<'_>) -> Result<bool, ProviderError> {
        let chunk = match openai_frame(&ev)? {
            OpenAiFrame::Done => return Ok(true),
            OpenAiFrame::Skip => return Ok(false),
            OpenAiFrame::Data(v) => v,
        };
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage(u, out);
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return Ok(false);
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            out.stop = map_finish(reason)?;
        }
        if let Some(d) = choice.get("delta").filter(|d| d.is_object()) {
            self.delta(d, out);
        }
        Ok(false)
    }

    fn finish(&mut self, out: &mut Assistant<'_>) -> Result<(), ProviderError> {
        if let Some(at) = self.current.take() {
            out.end_block(at);
        }
        Ok(())
    }

    fn http_message(&self, status: u16, body: &str) -> String {
        openai_http_message(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::providers::{Api, Credential, ThinkingLevel};

    fn target(provider: &str, url: &str) -> ModelTarget {
        ModelTarget::new(provider, Api::OpenAiCompletions, "m", url)
    }

    #[test]
    fn compat_detection_and_overrides() {
        let ollama = compat(&target("ollama", "http://127.0.0.1:11434/v1"));
        assert!(ollama.supports_store && ollama.supports_developer_role);
        assert_eq!(ollama.max_tokens_field, "max_completion_tokens");
        let mistral = compat(&target("mistral", "https://api.mistral.ai/v1"));
        assert!(!mistral.supports_store && mistral.requires_mistral_tool_ids);
        assert_eq!(mistral.max_tokens_field, "max_tokens");
        let zai = compat(&target("zai", "https://api.z.ai/api/paas/v4"));
        assert_eq!(zai.thinking_format, "zai");
        let mut t = target("x", "http://h");
        t.compat = json!({"supportsStore": false, "maxTokensField": "max_tokens"});
        let c = compat(&t);
        assert!(!c.supports_store);
        assert_eq!(c.max_tokens_field, "max_tokens");
        assert_eq!(mistral_id("call_ab"), "callabABC");
        assert_eq!(mistral_id("call_abcdefghijk"), "callabcde");
    }

    #[test]
    fn body_reasoning_and_tool_history() {
        let mut t = target("fakechat", "http://h/v1");
        t.reasoning = true;
        let mut r = Request::new(t, Credential::ApiKey("k".into()));
        r.system = "sys".into();
        r.thinking = ThinkingLevel::Low;
        r.messages = vec![
            json!({"role":"assistant","provider":"fakechat","api":"openai-completions","model":"m","stopReason":"toolUse",
                   "content":[{"type":"thinking","thinking":"hm","thinkingSignature":"reasoning_content"},
                              {"type":"toolCall","id":"c1","name":"exec","arguments":{"command":"ls"}}]}),
            json!({"role":"toolResult","toolCallId":"c1","toolName":"exec","content":[{"type":"text","text":"a"}],"isError":false}),
        ];
        let b = body(&r);
        assert_eq!(
            b["messages"][0],
            json!({"role":"developer","content":"sys"})
        );
        assert_eq!(
            b["messages"][1],
            json!({"role":"assistant","content":null,"reasoning_content":"hm","tool_calls":[
                {"id":"c1","type":"function","function":{"name":"exec","arguments":"{\"command\":\"ls\"}"}}]})
        );
        assert_eq!(
            b["messages"][2],
            json!({"role":"tool","content":"a","tool_call_id":"c1"})
        );
        assert_eq!(b["tools"], json!([]));
        assert_eq!(b["reasoning_effort"], "low");
    }
}
