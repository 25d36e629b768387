//! Google Gemini (`google-generative-ai`, agents.md §2.5): the `streamGenerateContent?alt=sse`
//! request built from pi messages (contents, systemInstruction, functionDeclarations,
//! generationConfig with thinkingConfig) and the decoder of its `data:` frames.

use super::assistant::{Assistant, Block, StopReason, Usage};
use super::error::{google_http_message, google_stream_message, ProviderError};
use super::sse::SseEvent;
use super::transform::{sanitize_id, transform_messages};
use super::transport::HttpCall;
use super::{
    gemini_schema, join_url, merge_headers, parse_data, str_of, u64_of, Decoder, Request,
    ThinkingLevel, ToolSpec,
};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// The `@google/genai` version pi-ai drives; its user agent goes out unchanged.
const SDK_LABEL: &str = "google-genai-sdk/1.34.0";

pub(crate) fn prepare(req: &Request) -> (HttpCall, Box<dyn Decoder>) {
    let path = format!(
        "/models/{}:streamGenerateContent?alt=sse",
        req.target.model_id
    );
    let call = HttpCall {
        url: join_url(&req.target.base_url, &path),
        headers: headers(req),
        body: serde_json::to_vec(&body(req)).unwrap_or_default(),
        timeout: req.timeout,
    };
    (call, Box::new(GeminiDecoder { current: None }))
}

fn headers(req: &Request) -> Vec<(String, String)> {
    let key = req.credential.secret();
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());
    let agent = format!("{SDK_LABEL} moltbot/{}", env!("CARGO_PKG_VERSION"));
    let mut base = vec![
        h("content-type", "application/json"),
        h("user-agent", &agent),
        h("x-goog-api-client", &agent),
        // The key travels only in this header, never in the URL (`?key=` would reach logs).
        h("x-goog-api-key", key),
    ];
    if req.target.auth_header {
        base.push(h("authorization", &format!("Bearer {key}")));
    }
    merge_headers(base, &req.target.headers)
}

/// What `thinkingConfig` carries besides `includeThoughts`.
#[derive(Debug, PartialEq)]
enum Thinking {
    Level(&'static str),
    Budget(i64),
}

/// pi's `mapOptionsForApi` for Google: Gemini 3 takes a level, 2.5 a budget, others dynamic.
fn thinking(model_id: &str, level: ThinkingLevel) -> Option<Thinking> {
    use ThinkingLevel::*;
    // `xhigh` is clamped to `high` for every Google model.
    let level = match level {
        Off => return None,
        XHigh => High,
        l => l,
    };
    if model_id.contains("3-pro") {
        // Gemini 3 Pro only knows LOW and HIGH.
        let l = if matches!(level, Minimal | Low) {
            "LOW"
        } else {
            "HIGH"
        };
        return Some(Thinking::Level(l));
    }
    if model_id.contains("3-flash") {
        let l = match level {
            Minimal => "MINIMAL",
            Low => "LOW",
            Medium => "MEDIUM",
            _ => "HIGH",
        };
        return Some(Thinking::Level(l));
    }
    let high = if model_id.contains("2.5-pro") {
        32_768
    } else if model_id.contains("2.5-flash") {
        24_576
    } else {
        return Some(Thinking::Budget(-1));
    };
    Some(Thinking::Budget(match level {
        Minimal => 128,
        Low => 2048,
        Medium => 8192,
        _ => high,
    }))
}

pub(crate) fn body(req: &Request) -> Value {
    let mut b = Map::new();
    b.insert("contents".into(), Value::Array(convert_messages(req)));
    if !req.system.is_empty() {
        b.insert(
            "systemInstruction".into(),
            json!({"role": "user", "parts": [{"text": &*req.system}]}),
        );
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req.tools.iter().map(convert_tool).collect();
        b.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    let mut config = Map::new();
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), t.into());
    }
    config.insert("maxOutputTokens".into(), req.base_max_tokens().into());
    let plan = thinking(&req.target.model_id, req.thinking).filter(|_| req.target.reasoning);
    if let Some(plan) = plan {
        let mut tc = Map::new();
        tc.insert("includeThoughts".into(), true.into());
        match plan {
            Thinking::Level(l) => tc.insert("thinkingLevel".into(), l.into()),
            Thinking::Budget(n) => tc.insert("thinkingBudget".into(), n.into()),
        };
        config.insert("thinkingConfig".into(), Value::Object(tc));
    }
    b.insert("generationConfig".into(), Value::Object(config));
    Value::Object(b)
}

fn convert_tool(t: &ToolSpec) -> Value {
    json!({"name": t.name, "description": t.description,
           "parameters": gemini_schema::clean(&t.parameters)})
}

/// Claude and gpt-oss behind Google's API need explicit call ids on calls and responses.
fn requires_tool_call_id(model_id: &str) -> bool {
    model_id.starts_with("claude-") || model_id.starts_with("gpt-oss-")
}

/// Google wants signatures as base64 (`TYPE_BYTES`); anything else would be rejected.
fn valid_signature(sig: &str) -> bool {
    let body = sig.trim_end_matches('=');
    !sig.is_empty()
        && sig.len().is_multiple_of(4)
        && sig.len() - body.len() <= 2
        && !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// The block's signature field when the message is this model's own and the value is valid.
fn signature<'v>(same: bool, block: &'v Value, key: &str) -> Option<&'v str> {
    let sig = str_of(block, key);
    (same && valid_signature(sig)).then_some(sig)
}

fn convert_messages(req: &Request) -> Vec<Value> {
    let t = &req.target;
    let needs_id = requires_tool_call_id(&t.model_id);
    let normalize = |id: &str| {
        if needs_id {
            sanitize_id(id, 64)
        } else {
            id.to_string()
        }
    };
    let msgs = transform_messages(&req.messages, t, &normalize);
    let mut contents: Vec<Value> = Vec::new();
    for msg in &msgs {
        match str_of(msg, "role") {
            "user" => contents.extend(convert_user(msg, t.input_images)),
            "assistant" => contents.extend(convert_assistant(msg, req)),
            "toolResult" => convert_tool_result(msg, req, &mut contents),
            _ => {}
        }
    }
    contents
}

fn inline_data(b: &Value) -> Value {
    json!({"inlineData": {"mimeType": str_of(b, "mimeType"), "data": str_of(b, "data")}})
}

fn convert_user(msg: &Value, images: bool) -> Option<Value> {
    let content = msg.get("content")?;
    if let Some(s) = content.as_str() {
        return Some(json!({"role": "user", "parts": [{"text": s}]}));
    }
    let parts: Vec<Value> = content
        .as_array()?
        .iter()
        .filter_map(|b| match str_of(b, "type") {
            "text" => Some(json!({"text": str_of(b, "text")})),
            "image" if images => Some(inline_data(b)),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| json!({"role": "user", "parts": parts}))
}

fn with_signature(mut part: Value, sig: Option<&str>) -> Value {
    if let (Some(s), Some(m)) = (sig, part.as_object_mut()) {
        m.insert("thoughtSignature".into(), s.into());
    }
    part
}

fn convert_assistant(msg: &Value, req: &Request) -> Option<Value> {
    let t = &req.target;
    // Signatures and thought parts only make sense to the model that produced them.
    let same = str_of(msg, "provider") == t.provider && str_of(msg, "model") == t.model_id;
    let parts: Vec<Value> = msg
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|b| match str_of(b, "type") {
            "text" => {
                let text = str_of(b, "text");
                let sig = signature(same, b, "textSignature");
                (!text.trim().is_empty()).then(|| with_signature(json!({"text": text}), sig))
            }
            "thinking" => {
                let text = str_of(b, "thinking");
                if text.trim().is_empty() {
                    None
                } else if same {
                    let sig = signature(same, b, "thinkingSignature");
                    Some(with_signature(json!({"thought": true, "text": text}), sig))
                } else {
                    Some(json!({"text": text}))
                }
            }
            "toolCall" => Some(convert_tool_call(b, same, &t.model_id)),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| json!({"role": "model", "parts": parts}))
}

fn convert_tool_call(b: &Value, same: bool, model_id: &str) -> Value {
    let sig = signature(same, b, "thoughtSignature");
    let args = b.get("arguments").cloned().unwrap_or(json!({}));
    let name = str_of(b, "name");
    // Gemini 3 rejects unsigned function calls while thinking: replay foreign ones as a note.
    if model_id.to_lowercase().contains("gemini-3") && sig.is_none() {
        let pretty = serde_json::to_string_pretty(&args).unwrap_or_default();
        let note = format!(
            "[Historical context: a different model called tool \"{name}\" with arguments: {pretty}. Do not mimic this format - use proper function calling.]"
        );
        return json!({"text": note});
    }
    let mut call = json!({"name": name, "args": args});
    if requires_tool_call_id(model_id) {
        call["id"] = str_of(b, "id").into();
    }
    with_signature(json!({"functionCall": call}), sig)
}

fn convert_tool_result(msg: &Value, req: &Request, contents: &mut Vec<Value>) {
    let t = &req.target;
    let (text, _) = super::tool_result_text(msg);
    let blocks = msg.get("content").and_then(Value::as_array);
    let images: Vec<Value> = blocks
        .into_iter()
        .flatten()
        .filter(|b| t.input_images && str_of(b, "type") == "image")
        .map(inline_data)
        .collect();
    // Gemini 3 takes images inside the function response; older models get a user message.
    let nested = t.model_id.contains("gemini-3");
    let value = match (text.is_empty(), images.is_empty()) {
        (false, _) => text,
        (true, false) => "(see attached image)".to_string(),
        (true, true) => String::new(),
    };
    let is_error = msg.get("isError").and_then(Value::as_bool).unwrap_or(false);
    let mut response = Map::new();
    response.insert("name".into(), str_of(msg, "toolName").into());
    let key = if is_error { "error" } else { "output" };
    response.insert("response".into(), json!({ key: value }));
    if nested && !images.is_empty() {
        response.insert("parts".into(), Value::Array(images.clone()));
    }
    if requires_tool_call_id(&t.model_id) {
        response.insert("id".into(), str_of(msg, "toolCallId").into());
    }
    let part = json!({"functionResponse": response});
    // All responses to one model turn travel in a single user turn.
    match contents.last_mut() {
        Some(last) if is_function_response_turn(last) => {
            if let Some(parts) = last["parts"].as_array_mut() {
                parts.push(part);
            }
        }
        _ => contents.push(json!({"role": "user", "parts": [part]})),
    }
    if !nested && !images.is_empty() {
        let mut parts = vec![json!({"text": "Tool result image:"})];
        parts.extend(images);
        contents.push(json!({"role": "user", "parts": parts}));
    }
}

fn is_function_response_turn(content: &Value) -> bool {
    str_of(content, "role") == "user"
        && content["parts"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some()))
}

/// `FinishReason` → pi stop reason; names the SDK does not know are a protocol error.
fn map_finish(reason: &str) -> Result<StopReason, ProviderError> {
    const ERRORS: [&str; 15] = [
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "SAFETY",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "RECITATION",
        "FINISH_REASON_UNSPECIFIED",
        "OTHER",
        "LANGUAGE",
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "NO_IMAGE",
    ];
    match reason {
        "STOP" => Ok(StopReason::Stop),
        "MAX_TOKENS" => Ok(StopReason::Length),
        r if ERRORS.contains(&r) => Ok(StopReason::Error),
        other => Err(ProviderError::stream(format!(
            "Unhandled stop reason: {other}"
        ))),
    }
}

/// Process-wide, like pi's module counter, so generated ids never repeat within a run.
static TOOL_CALL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<name>_<ms>_<n>` for a call the server sent without an id (or with a repeated one).
fn generated_id(name: &str) -> String {
    let n = TOOL_CALL_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{name}_{}_{n}", crate::util::now_ms())
}

/// `data:` frames carry whole `GenerateContentResponse` chunks; the body's end ends the stream.
struct GeminiDecoder {
    /// The text or thinking block text parts currently extend.
    current: Option<usize>,
}

impl GeminiDecoder {
    fn close_current(&mut self, out: &mut Assistant<'_>) {
        if let Some(at) = self.current.take() {
            out.end_block(at);
        }
    }

    /// Appends a text part to a block of its kind, starting one when the kind changes.
    fn text_part(&mut self, part: &Value, text: &str, out: &mut Assistant<'_>) {
        let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
        let fits = match self.current.and_then(|i| out.blocks.get(i)) {
            Some(Block::Thinking { .. }) => thought,
            Some(Block::Text { .. }) => !thought,
            _ => false,
        };
        if !fits {
            self.close_current(out);
            let block = if thought {
                Block::Thinking {
                    thinking: String::new(),
                    signature: None,
                }
            } else {
                Block::Text {
                    text: String::new(),
                    signature: None,
                }
            };
            self.current = Some(out.start_block(block));
        }
        let Some(at) = self.current else { return };
        // Some backends send the signature only on a block's first part: keep the last one seen.
        let sig = str_of(part, "thoughtSignature");
        if !sig.is_empty() {
            if let Some(Block::Thinking { signature, .. } | Block::Text { signature, .. }) =
                out.blocks.get_mut(at)
            {
                *signature = Some(sig.to_string());
            }
        }
        if thought {
            out.thinking_delta(at, text);
        } else {
            out.text_delta(at, text);
        }
    }

    fn function_call(&mut self, part: &Value, out: &mut Assistant<'_>) {
        self.close_current(out);
        let fc = &part["functionCall"];
        let name = str_of(fc, "name");
        let given = str_of(fc, "id");
        let taken = out
            .blocks
            .iter()
            .any(|b| matches!(b, Block::ToolCall { id, .. } if id == given));
        let id = if given.is_empty() || taken {
            generated_id(name)
        } else {
            given.to_string()
        };
        let args = fc.get("args").cloned().unwrap_or(json!({}));
        let sig = Some(str_of(part, "thoughtSignature")).filter(|s| !s.is_empty());
        let at = out.start_block(Block::ToolCall {
            id,
            name: name.to_string(),
            arguments: None,
            partial: String::new(),
            signature: sig.map(str::to_string),
        });
        // Calls arrive whole: one delta with the full JSON, then the end.
        out.tool_delta(at, &args.to_string());
        out.settle_arguments(at, args);
        out.end_block(at);
    }

    fn usage(&self, u: &Value, out: &mut Assistant<'_>) {
        out.set_usage(Usage {
            input: u64_of(u, "promptTokenCount"),
            output: u64_of(u, "candidatesTokenCount") + u64_of(u, "thoughtsTokenCount"),
            cache_read: u64_of(u, "cachedContentTokenCount"),
            cache_write: 0,
            total_tokens: u64_of(u, "totalTokenCount"),
        });
    }
}

impl Decoder for GeminiDecoder {
    fn frame(&mut self, ev: SseEvent, out: &mut Assistant<'_>) -> Result<bool, ProviderError> {
        if ev.data.trim().is_empty() {
            return Ok(false);
        }
        let chunk = parse_data(&ev)?;
        if chunk.get("error").is_some_and(Value::is_object) {
            return Err(ProviderError::stream(google_stream_message(&chunk)));
        }
        let candidate = &chunk["candidates"][0];
        let parts = candidate["content"]["parts"].as_array();
        for part in parts.into_iter().flatten() {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                self.text_part(part, text, out);
            }
            if part.get("functionCall").is_some_and(Value::is_object) {
                self.function_call(part, out);
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            out.stop = map_finish(reason)?;
            if out.has_tool_call() {
                out.stop = StopReason::ToolUse;
            }
        }
        if let Some(u) = chunk.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage(u, out);
        }
        Ok(false)
    }

    fn finish(&mut self, out: &mut Assistant<'_>) -> Result<(), ProviderError> {
        self.close_current(out);
        Ok(())
    }

    fn http_message(&self, status: u16, body: &str) -> String {
        google_http_message(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::providers::{Api, Credential, ModelTarget};

    #[test]
    fn thinking_per_model() {
        use ThinkingLevel::*;
        let l = |m, t| thinking(m, t);
        assert_eq!(
            l("gemini-3-pro-preview", Minimal),
            Some(Thinking::Level("LOW"))
        );
        assert_eq!(
            l("gemini-3-pro-preview", Medium),
            Some(Thinking::Level("HIGH"))
        );
        assert_eq!(
            l("gemini-3-flash-preview", Minimal),
            Some(Thinking::Level("MINIMAL"))
        );
        assert_eq!(
            l("gemini-3-flash-preview", XHigh),
            Some(Thinking::Level("HIGH"))
        );
        assert_eq!(l("gemini-2.5-pro", High), Some(Thinking::Budget(32_768)));
        assert_eq!(
            l("gemini-2.5-flash-lite", High),
            Some(Thinking::Budget(24_576))
        );
        assert_eq!(l("gemini-2.5-flash", Minimal), Some(Thinking::Budget(128)));
        assert_eq!(l("gemini-2.0-flash", Low), Some(Thinking::Budget(-1)));
        assert_eq!(l("gemini-2.5-pro", Off), None);
    }

    #[test]
    fn signatures_must_be_base64() {
        assert!(valid_signature("c2lnbmF0dXJl"));
        assert!(valid_signature("YQ=="));
        assert!(!valid_signature("sig_1"));
        assert!(!valid_signature("abc"));
        assert!(!valid_signature("===="));
        assert!(!valid_signature(""));
    }

    #[test]
    fn foreign_calls_become_notes_for_gemini_3_and_results_merge() {
        let t = ModelTarget::new(
            "google",
            Api::GoogleGenerativeAi,
            "gemini-3-pro-preview",
            "http://h",
        );
        let mut r = Request::new(t, Credential::ApiKey("k".into()));
        r.messages = vec![
            json!({"role":"assistant","provider":"anthropic","api":"anthropic-messages","model":"claude","stopReason":"toolUse",
                   "content":[{"type":"toolCall","id":"a","name":"read","arguments":{"path":"x"}},
                              {"type":"toolCall","id":"b","name":"ls","arguments":{}}]}),
            json!({"role":"toolResult","toolCallId":"a","toolName":"read","content":[{"type":"text","text":"1"}],"isError":false}),
            json!({"role":"toolResult","toolCallId":"b","toolName":"ls","content":[],"isError":true}),
        ];
        let c = convert_messages(&r);
        assert_eq!(c.len(), 2);
        let note = c[0]["parts"][0]["text"].as_str().unwrap_or("");
        assert!(note.starts_with("[Historical context: a different model called tool \"read\" with arguments: {\n  \"path\": \"x\"\n}."), "{note}");
        assert_eq!(
            c[1]["parts"],
            json!([{"functionResponse":{"name":"read","response":{"output":"1"}}},
                   {"functionResponse":{"name":"ls","response":{"error":""}}}])
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(map_finish("MAX_TOKENS").ok(), Some(StopReason::Length));
        assert_eq!(map_finish("SAFETY").ok(), Some(StopReason::Error));
        assert!(map_finish("NEW_THING").is_err());
    }
}
