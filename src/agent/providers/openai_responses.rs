//! OpenAI Responses (`openai-responses`, the built-in `openai` provider, agents.md §2.4): the
//! `input` item list built from pi messages, and the `response.*` event decoder.

use super::assistant::{Assistant, Block, StopReason, Usage};
use super::error::{openai_frame, openai_http_message, OpenAiFrame, ProviderError};
use super::sse::SseEvent;
use super::transform::{sanitize_id, transform_messages};
use super::transport::HttpCall;
use super::{join_url, merge_headers, str_of, u64_of, Decoder, Request, ToolSpec};
use serde_json::{json, Map, Value};

/// Headers both OpenAI APIs send: Bearer auth, JSON, then model/provider overrides.
pub(crate) fn openai_headers(req: &Request) -> Vec<(String, String)> {
    let h = |k: &str, v: String| (k.to_string(), v);
    let base = vec![
        h("accept", "application/json".into()),
        h("content-type", "application/json".into()),
        h(
            "authorization",
            format!("Bearer {}", req.credential.secret()),
        ),
        h(
            "user-agent",
            concat!("moltbot/", env!("CARGO_PKG_VERSION")).into(),
        ),
    ];
    merge_headers(base, &req.target.headers)
}

pub(crate) fn prepare(req: &Request) -> (HttpCall, Box<dyn Decoder>) {
    let call = HttpCall {
        url: join_url(&req.target.base_url, "/responses"),
        headers: openai_headers(req),
        body: serde_json::to_vec(&body(req)).unwrap_or_default(),
        timeout: req.timeout,
    };
    let decoder = ResponsesDecoder {
        item: None,
        block: None,
    };
    (call, Box::new(decoder))
}

pub(crate) fn body(req: &Request) -> Value {
    let mut input = convert_messages(req);
    let mut b = Map::new();
    b.insert("model".into(), req.target.model_id.clone().into());
    let effort = req.thinking.openai_effort(&req.target.model_id);
    if req.target.reasoning && effort.is_none() && req.target.name.starts_with("gpt-5") {
        // Upstream's workaround for gpt-5 reasoning when no level is wanted.
        input.push(json!({"role": "developer", "content": [
            {"type": "input_text", "text": "# Juice: 0 !important"}]}));
    }
    b.insert("input".into(), Value::Array(input));
    b.insert("stream".into(), true.into());
    if let Some(id) = &req.session_id {
        b.insert("prompt_cache_key".into(), id.clone().into());
    }
    b.insert("max_output_tokens".into(), req.base_max_tokens().into());
    if let Some(t) = req.temperature {
        b.insert("temperature".into(), t.into());
    }
    if !req.tools.is_empty() {
        b.insert("tools".into(), req.tools.iter().map(convert_tool).collect());
    }
    if let (true, Some(effort)) = (req.target.reasoning, effort) {
        b.insert(
            "reasoning".into(),
            json!({"effort": effort, "summary": "auto"}),
        );
        b.insert("include".into(), json!(["reasoning.encrypted_content"]));
    }
    Value::Object(b)
}

fn convert_tool(t: &ToolSpec) -> Value {
    json!({"type": "function", "name": t.name, "description": t.description,
           "parameters": t.parameters, "strict": false})
}

/// Internal ids are `<call_id>|<item_id>`; for OpenAI's own providers both halves are
/// sanitised and the item id must start with `fc`.
fn normalize_id(provider: &str, id: &str) -> String {
    if !matches!(provider, "openai" | "openai-codex" | "opencode") {
        return id.to_string();
    }
    let mut parts = id.split('|');
    let (Some(call), Some(item)) = (parts.next(), parts.next()) else {
        return id.to_string();
    };
    let mut item = sanitize_id(item, usize::MAX);
    if !item.starts_with("fc") {
        item = format!("fc_{item}");
    }
    let item: String = item.chars().take(64).collect();
    format!("{}|{item}", sanitize_id(call, 64))
}

fn convert_messages(req: &Request) -> Vec<Value> {
    let t = &req.target;
    let msgs = transform_messages(&req.messages, t, &|id| normalize_id(&t.provider, id));
    let mut out = Vec::new();
    if !req.system.is_empty() {
        let role = if t.reasoning { "developer" } else { "system" };
        out.push(json!({"role": role, "content": &*req.system}));
    }
    for (index, msg) in msgs.iter().enumerate() {
        match str_of(msg, "role") {
            "user" => out.extend(convert_user(msg, t.input_images)),
            "assistant" => convert_assistant(msg, req, index, &mut out),
            "toolResult" => convert_tool_result(msg, t.input_images, &mut out),
            _ => {}
        }
    }
    out
}

fn input_image(b: &Value) -> Value {
    let url = format!(
        "data:{};base64,{}",
        str_of(b, "mimeType"),
        str_of(b, "data")
    );
    json!({"type": "input_image", "detail": "auto", "image_url": url})
}

fn convert_user(msg: &Value, images: bool) -> Option<Value> {
    let content = msg.get("content")?;
    if let Some(s) = content.as_str() {
        return Some(json!({"role": "user", "content": [{"type": "input_text", "text": s}]}));
    }
    let parts: Vec<Value> = content
        .as_array()?
        .iter()
        .filter_map(|b| match str_of(b, "type") {
            "text" => Some(json!({"type": "input_text", "text": str_of(b, "text")})),
            "image" if images => Some(input_image(b)),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| json!({"role": "user", "content": parts}))
}

fn convert_assistant(msg: &Value, req: &Request, index: usize, out: &mut Vec<Value>) {
    let t = &req.target;
    // A sibling model's `fc_` item ids would trip OpenAI's reasoning/function-call pairing check.
    let different_model = str_of(msg, "model") != t.model_id
        && str_of(msg, "provider") == t.provider
        && str_of(msg, "api") == t.api.as_str();
    let blocks = msg.get("content").and_then(Value::as_array);
    for b in blocks.into_iter().flatten() {
        match str_of(b, "type") {
            "thinking" => {
                // Stored reasoning items are replayed verbatim.
                let sig = str_of(b, "thinkingSignature");
                if let Ok(item) = serde_json::from_str::<Value>(sig) {
                    out.push(item);
                }
            }
            "text" => out.push(json!({
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": str_of(b, "text"), "annotations": []}],
                "status": "completed",
                "id": message_id(str_of(b, "textSignature"), index),
            })),
            "toolCall" => out.push(function_call(b, different_model)),
            _ => {}
        }
    }
}

fn message_id(signature: &str, index: usize) -> String {
    match signature.len() {
        0 => format!("msg_{index}"),
        1..=64 => signature.to_string(),
        _ => format!("msg_{}", short_hash(signature)),
    }
}

fn function_call(b: &Value, different_model: bool) -> Value {
    let id = str_of(b, "id");
    let mut parts = id.splitn(3, '|');
    let call_id = parts.next().unwrap_or("");
    let item_id = parts
        .next()
        .filter(|item| !(different_model && item.starts_with("fc_")));
    let args = b.get("arguments").cloned().unwrap_or(json!({}));
    let mut m = Map::new();
    m.insert("type".into(), "function_call".into());
    if let Some(item) = item_id {
        m.insert("id".into(), item.into());
    }
    m.insert("call_id".into(), call_id.into());
    m.insert("name".into(), str_of(b, "name").into());
    m.insert("arguments".into(), args.to_string().into());
    Value::Object(m)
}

fn convert_tool_result(msg: &Value, images: bool, out: &mut Vec<Value>) {
    let (text, has_images) = super::tool_result_text(msg);
    let call_id = str_of(msg, "toolCallId").split('|').next().unwrap_or("");
    let output = if text.is_empty() {
        "(see attached image)".to_string()
    } else {
        text
    };
    out.push(json!({"type": "function_call_output", "call_id": call_id, "output": output}));
    if has_images && images {
        let mut parts =
            vec![json!({"type": "input_text", "text": "Attached image(s) from tool result:"})];
        let blocks = msg.get("content").and_then(Value::as_array);
        parts.extend(
            blocks
                .into_iter()
                .flatten()
                .filter(|b| str_of(b, "type") == "image")
                .map(input_image),
        );
        out.push(json!({"role": "user", "content": parts}));
    }
}

/// pi's `shortHash` (two 32-bit multiply-xorshift lanes over UTF-16 units, base 36), so ids
/// derived from long signatures match upstream's.
pub(crate) fn short_hash(s: &str) -> String {
    let (mut h1, mut h2): (u32, u32) = (0xdead_beef, 0x41c6_ce57);
    for ch in s.encode_utf16() {
        let ch = u32::from(ch);
        h1 = (h1 ^ ch).wrapping_mul(2_654_435_761);
        h2 = (h2 ^ ch).wrapping_mul(1_597_334_677);
    }
    h1 = (h1 ^ (h1 >> 16)).wrapping_mul(2_246_822_507)
        ^ (h2 ^ (h2 >> 13)).wrapping_mul(3_266_489_909);
    h2 = (h2 ^ (h2 >> 16)).wrapping_mul(2_246_822_507)
        ^ (h1 ^ (h1 >> 13)).wrapping_mul(3_266_489_909);
    format!("{}{}", base36(h2), base36(h1))
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// `${value}` of a JSON field the way JavaScript would print it in a template string.
fn js_text(v: Option<&Value>) -> String {
    match v {
        None => "undefined".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn map_status(status: Option<&str>) -> Result<StopReason, ProviderError> {
    Ok(match status {
        None | Some("completed" | "in_progress" | "queued") => StopReason::Stop,
        Some("incomplete") => StopReason::Length,
        Some("failed" | "cancelled") => StopReason::Error,
        Some(other) => {
            return Err(ProviderError::stream(format!(
                "Unhandled stop reason: {other}"
            )))
        }
    })
}

struct ResponsesDecoder {
    /// The output item being streamed, as the server announced it (parts/summary appended).
    item: Option<Value>,
    /// Its block in our content.
    block: Option<usize>,
}

impl ResponsesDecoder {
    fn item_type(&self) -> &str {
        self.item.as_ref().map_or("", |i| str_of(i, "type"))
    }

    /// Appends to the text of the last entry of the current item's `key` array (`content` parts
    /// or reasoning `summary`) if it has `field`; false when there is no such part.
    fn append_part(&mut self, key: &str, kind: Option<&str>, field: &str, delta: &str) -> bool {
        let part = self
            .item
            .as_mut()
            .and_then(|i| i.get_mut(key))
            .and_then(Value::as_array_mut)
            .and_then(|a| a.last_mut());
        let Some(part) = part else {
            return false;
        };
        if kind.is_some_and(|k| str_of(part, "type") != k) {
            return false;
        }
        let text = format!("{}{delta}", str_of(part, field));
        part[field] = Value::String(text);
        true
    }

    fn push_part(&mut self, key: &str, part: Value) {
        if let Some(item) = self.item.as_mut().and_then(Value::as_object_mut) {
            let list = item.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(part);
            }
        }
    }

    fn item_added(&mut self, data: &Value, out: &mut Assistant<'_>) {
        let item = &data["item"];
        let block = match str_of(item, "type") {
            "reasoning" => Block::Thinking {
                thinking: String::new(),
                signature: None,
            },
            "message" => Block::Text {
                text: String::new(),
                signature: None,
            },
            "function_call" => Block::ToolCall {
                id: format!("{}|{}", str_of(item, "call_id"), str_of(item, "id")),
                name: str_of(item, "name").to_string(),
                arguments: None,
                partial: str_of(item, "arguments").to_string(),
                signature: None,
            },
            _ => return,
        };
        self.item = Some(item.clone());
        self.block = Some(out.start_block(block));
    }

    fn summary_delta(&mut self, delta: &str, out: &mut Assistant<'_>) {
        let Some(at) = self.block else { return };
        if self.item_type() == "reasoning"
            && matches!(out.blocks.get(at), Some(Block::Thinking { .. }))
            && self.append_part("summary", None, "text", delta)
        {
            out.thinking_delta(at, delta);
        }
    }

    fn text_delta(&mut self, kind: &str, delta: &str, out: &mut Assistant<'_>) {
        let Some(at) = self.block else { return };
        let field = if kind == "refusal" { "refusal" } else { "text" };
        if self.item_type() == "message"
            && matches!(out.blocks.get(at), Some(Block::Text { .. }))
            && self.append_part("content", Some(kind), field, delta)
        {
            out.text_delta(at, delta);
        }
    }

    fn item_done(&mut self, data: &Value, out: &mut Assistant<'_>) {
        let item = &data["item"];
        let current = self
            .block
            .and_then(|at| out.blocks.get(at).map(|b| (at, b)));
        match (str_of(item, "type"), current) {
            ("reasoning", Some((at, Block::Thinking { .. }))) => {
                let summary = item.get("summary").and_then(Value::as_array);
                let texts: Vec<&str> = summary
                    .into_iter()
                    .flatten()
                    .map(|s| str_of(s, "text"))
                    .collect();
                out.settle_thinking(at, texts.join("\n\n"), Some(item.to_string()));
                out.end_block(at);
                self.block = None;
            }
            ("message", Some((at, Block::Text { .. }))) => {
                let parts = item.get("content").and_then(Value::as_array);
                let text: String = parts
                    .into_iter()
                    .flatten()
                    .map(|c| match str_of(c, "type") {
                        "output_text" => str_of(c, "text"),
                        _ => str_of(c, "refusal"),
                    })
                    .collect();
                out.settle_text(at, text, Some(str_of(item, "id").to_string()));
                out.end_block(at);
                self.block = None;
            }
            ("function_call", _) => {
                // pi closes the newest block with the done item's arguments.
                let Some(at) = out.blocks.len().checked_sub(1) else {
                    return;
                };
                if let Ok(args) = serde_json::from_str::<Value>(str_of(item, "arguments")) {
                    out.settle_arguments(at, args);
                }
                out.end_block(at);
            }
            _ => {}
        }
    }

    fn completed(&mut self, data: &Value, out: &mut Assistant<'_>) -> Result<(), ProviderError> {
        let resp = &data["response"];
        if let Some(u) = resp.get("usage").filter(|u| u.is_object()) {
            let cached = u64_of(&u["input_tokens_details"], "cached_tokens");
            out.set_usage(Usage {
                input: u64_of(u, "input_tokens").saturating_sub(cached),
                output: u64_of(u, "output_tokens"),
                cache_read: cached,
                cache_write: 0,
                total_tokens: u64_of(u, "total_tokens"),
            });
        }
        out.stop = map_status(resp.get("status").and_then(Value::as_str))?;
        if out.stop == StopReason::Stop && out.has_tool_call() {
            out.stop = StopReason::ToolUse;
        }
        Ok(())
    }
}

impl Decoder for ResponsesDecoder {
    fn frame(&mut self, ev: SseEvent, out: &mut Assistant<'_>) -> Result<bool, ProviderError> {
        let data = match openai_frame(&ev)? {
            OpenAiFrame::Done => return Ok(true),
            OpenAiFrame::Skip => return Ok(false),
            OpenAiFrame::Data(v) => v,
        };
        let delta = str_of(&data, "delta");
        match str_of(&data, "type") {
            "response.output_item.added" => self.item_added(&data, out),
            "response.reasoning_summary_part.added" if self.item_type() == "reasoning" => {
                self.push_part("summary", data["part"].clone())
            }
            "response.reasoning_summary_text.delta" => self.summary_delta(delta, out),
            "response.reasoning_summary_part.done" => self.summary_delta("\n\n", out),
            "response.content_part.added" if self.item_type() == "message" => {
                if matches!(str_of(&data["part"], "type"), "output_text" | "refusal") {
                    self.push_part("content", data["part"].clone());
                }
            }
            "response.output_text.delta" => self.text_delta("output_text", delta, out),
            "response.refusal.delta" => self.text_delta("refusal", delta, out),
            "response.function_call_arguments.delta" => {
                if let (Some(at), "function_call") = (self.block, self.item_type()) {
                    out.tool_delta(at, delta);
                }
            }
            "response.output_item.done" => self.item_done(&data, out),
            "response.completed" => self.completed(&data, out)?,
            "error" => {
                let text = format!(
                    "Error Code {}: {}",
                    js_text(data.get("code")),
                    js_text(data.get("message"))
                );
                return Err(ProviderError::stream(text));
            }
            "response.failed" => return Err(ProviderError::stream("Unknown error")),
            _ => {}
        }
        Ok(false)
    }

    fn finish(&mut self, _out: &mut Assistant<'_>) -> Result<(), ProviderError> {
        Ok(())
    }

    fn http_message(&self, status: u16, body: &str) -> String {
        openai_http_message(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::providers::{Api, Credential, ModelTarget, ThinkingLevel};

    #[test]
    fn ids_and_hash() {
        assert_eq!(normalize_id("openai", "call 1|item:2"), "call_1|fc_item_2");
        assert_eq!(normalize_id("openai", "call_1|fc_2"), "call_1|fc_2");
        assert_eq!(normalize_id("custom", "a|b"), "a|b");
        assert_eq!(normalize_id("openai", "plain"), "plain");
        // Values from pi-ai's shortHash under Node.
        assert_eq!(short_hash(""), "k4n83c7h0j2b");
        assert_eq!(short_hash("hello"), "1h6qa0qrowduu");
        assert_eq!(short_hash("héllo😀"), "1olj6nu1frhbfw");
        assert_eq!(message_id("", 3), "msg_3");
        assert_eq!(
            message_id(&"x".repeat(65), 0),
            format!("msg_{}", short_hash(&"x".repeat(65)))
        );
    }

    #[test]
    fn images_and_foreign_tool_ids() {
        let mut t = ModelTarget::new("openai", Api::OpenAiResponses, "gpt-5.2", "http://h/v1");
        t.input_images = true;
        let mut r = Request::new(t, Credential::Bearer("k".into()));
        r.messages = vec![
            json!({"role":"user","content":[{"type":"image","data":"AA","mimeType":"image/png"}]}),
            json!({"role":"assistant","provider":"openai","api":"openai-responses","model":"gpt-4.1",
                   "stopReason":"toolUse","content":[{"type":"toolCall","id":"call_1|fc_1","name":"read","arguments":{}}]}),
            json!({"role":"toolResult","toolCallId":"call_1|fc_1","toolName":"read",
                   "content":[{"type":"image","data":"BB","mimeType":"image/jpeg"}],"isError":false}),
        ];
        let input = body(&r)["input"].clone();
        assert_eq!(
            input,
            json!([
                {"role":"user","content":[{"type":"input_image","detail":"auto","image_url":"data:image/png;base64,AA"}]},
                {"type":"function_call","call_id":"call_1","name":"read","arguments":"{}"},
                {"type":"function_call_output","call_id":"call_1","output":"(see attached image)"},
                {"role":"user","content":[{"type":"input_text","text":"Attached image(s) from tool result:"},
                    {"type":"input_image","detail":"auto","image_url":"data:image/jpeg;base64,BB"}]}
            ])
        );
    }

    #[test]
    fn reasoning_options_and_juice() {
        let mut t = ModelTarget::new("openai", Api::OpenAiResponses, "gpt-5.2", "http://h/v1");
        t.reasoning = true;
        t.name = "gpt-5.2".into();
        let mut r = Request::new(t, Credential::Bearer("k".into()));
        r.system = "sys".into();
        let b = body(&r);
        assert!(b.get("reasoning").is_none());
        assert_eq!(b["input"][0], json!({"role":"developer","content":"sys"}));
        assert_eq!(b["input"][1]["content"][0]["text"], "# Juice: 0 !important");
        r.thinking = ThinkingLevel::XHigh;
        let b = body(&r);
        assert_eq!(b["reasoning"], json!({"effort":"xhigh","summary":"auto"}));
        assert_eq!(b["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(b["input"].as_array().map(Vec::len), Some(1));
    }
}
