//! Anthropic Messages (`anthropic-messages`, agents.md §2.2): request headers and body built from
//! pi messages, and the SSE decoder (`message_start` … `message_stop`, mid-stream `error`).

use super::assistant::{Assistant, Block, StopReason, Usage};
use super::error::{anthropic_http_message, anthropic_stream_message, ProviderError};
use super::sse::SseEvent;
use super::{
    join_url, merge_headers, parse_data, str_of, u64_of, Credential, Decoder, Request, ToolSpec,
};
use crate::agent::providers::transport::HttpCall;
use request_body::body_bytes;
#[cfg(test)]
use request_body::{body, convert_messages, token_plan};

#[path = "anthropic_body.rs"]
mod request_body;
use serde_json::{json, Value};
use std::collections::HashMap;

const VERSION: &str = "2023-06-01";
const BETAS: &str = "fine-grained-tool-streaming-2025-05-14,interleaved-thinking-2025-05-14";
const OAUTH_BETAS: &str = "claude-code-20250219,oauth-2025-04-20";
const CLAUDE_CODE_UA: &str = "claude-cli/2.1.2 (external, cli)";
const CLAUDE_CODE_IDENTITY: &str = "You are Claude Code, Anthropic's official CLI for Claude.";
/// Claude Code's tool names; in OAuth mode matching tools are sent in this casing.
const CLAUDE_CODE_TOOLS: [&str; 17] = [
    "Read",
    "Write",
    "Edit",
    "Bash",
    "Grep",
    "Glob",
    "AskUserQuestion",
    "EnterPlanMode",
    "ExitPlanMode",
    "KillShell",
    "NotebookEdit",
    "Skill",
    "Task",
    "TaskOutput",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
];

/// Setup tokens and OAuth access tokens go out as Bearer with Claude Code's identity.
fn is_oauth(cred: &Credential) -> bool {
    match cred {
        Credential::Bearer(_) => true,
        Credential::ApiKey(k) => k.contains("sk-ant-oat"),
    }
}

fn to_claude_code_name(name: &str) -> String {
    CLAUDE_CODE_TOOLS
        .iter()
        .find(|t| t.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |t| t.to_string())
}

fn from_claude_code_name(name: &str, tools: &[ToolSpec]) -> String {
    tools
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |t| t.name.clone())
}

pub(crate) fn prepare(req: &Request) -> (HttpCall, Box<dyn Decoder>) {
    let oauth = is_oauth(&req.credential);
    let call = HttpCall {
        url: join_url(&req.target.base_url, "/v1/messages"),
        headers: headers(req, oauth),
        body: body_bytes(req, oauth),
        timeout: req.timeout,
    };
    let decoder = AnthropicDecoder {
        oauth,
        tools: req.tools.clone(),
        blocks: HashMap::new(),
        started: false,
    };
    (call, Box::new(decoder))
}

fn headers(req: &Request, oauth: bool) -> Vec<(String, String)> {
    let key = req.credential.secret();
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut base = vec![
        h("accept", "application/json"),
        h("content-type", "application/json"),
        h("anthropic-version", VERSION),
        h("anthropic-dangerous-direct-browser-access", "true"),
    ];
    if oauth {
        base.push(h("authorization", &format!("Bearer {key}")));
        base.push(h("anthropic-beta", &format!("{OAUTH_BETAS},{BETAS}")));
        base.push(h("user-agent", CLAUDE_CODE_UA));
        base.push(h("x-app", "cli"));
    } else {
        base.push(h("x-api-key", key));
        base.push(h("anthropic-beta", BETAS));
        base.push(h(
            "user-agent",
            concat!("moltbot/", env!("CARGO_PKG_VERSION")),
        ));
        if req.target.auth_header {
            base.push(h("authorization", &format!("Bearer {key}")));
        }
    }
    merge_headers(base, &req.target.headers)
}

fn map_stop_reason(reason: &str) -> Option<StopReason> {
    Some(match reason {
        "end_turn" | "pause_turn" | "stop_sequence" => StopReason::Stop,
        "max_tokens" => StopReason::Length,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::Error,
        _ => return None,
    })
}

struct AnthropicDecoder {
    oauth: bool,
    tools: std::sync::Arc<[ToolSpec]>,
    /// Anthropic's block `index` → position in our content (removed at `content_block_stop`).
    blocks: HashMap<u64, usize>,
    started: bool,
}

impl AnthropicDecoder {
    fn block_start(&mut self, data: &Value, out: &mut Assistant<'_>) {
        let cb = &data["content_block"];
        let block = match str_of(cb, "type") {
            "text" => Block::Text {
                text: String::new(),
                signature: None,
            },
            "thinking" => Block::Thinking {
                thinking: String::new(),
                signature: Some(String::new()),
            },
            "tool_use" => {
                let name = str_of(cb, "name");
                Block::ToolCall {
                    id: str_of(cb, "id").to_string(),
                    name: if self.oauth {
                        from_claude_code_name(name, &self.tools)
                    } else {
                        name.to_string()
                    },
                    arguments: Some(cb.get("input").cloned().unwrap_or(json!({}))),
                    partial: String::new(),
                    signature: None,
                }
            }
            // redacted_thinking and future types carry nothing pi keeps.
            _ => return,
        };
        let at = out.start_block(block);
        self.blocks.insert(u64_of(data, "index"), at);
    }

    fn block_delta(&mut self, data: &Value, out: &mut Assistant<'_>) {
        let Some(&at) = self.blocks.get(&u64_of(data, "index")) else {
            return;
        };
        let d = &data["delta"];
        match str_of(d, "type") {
            "text_delta" => out.text_delta(at, str_of(d, "text")),
            "thinking_delta" => out.thinking_delta(at, str_of(d, "thinking")),
            "input_json_delta" => out.tool_delta(at, str_of(d, "partial_json")),
            "signature_delta" => {
                if let Some(Block::Thinking { signature, .. }) = out.blocks.get_mut(at) {
                    signature
                        .get_or_insert_with(String::new)
                        .push_str(str_of(d, "signature"));
                }
            }
            _ => {}
        }
    }

    fn message_delta(
        &mut self,
        data: &Value,
        out: &mut Assistant<'_>,
    ) -> Result<(), ProviderError> {
        if let Some(reason) = data["delta"].get("stop_reason").and_then(Value::as_str) {
            out.stop = map_stop_reason(reason)
                .ok_or_else(|| ProviderError::stream(format!("Unhandled stop reason: {reason}")))?;
        }
        // pi overwrites every field with the delta's (absent → 0); keeping message_start's value
        // for absent fields is the port's documented choice (§2.2).
        let u = &data["usage"];
        let prev = out.usage;
        let pick = |key: &str, old: u64| u.get(key).and_then(Value::as_u64).unwrap_or(old);
        out.set_usage(total(Usage {
            input: pick("input_tokens", prev.input),
            output: pick("output_tokens", prev.output),
            cache_read: pick("cache_read_input_tokens", prev.cache_read),
            cache_write: pick("cache_creation_input_tokens", prev.cache_write),
            total_tokens: 0,
        }));
        Ok(())
    }
}

/// Anthropic sends no total: it is the sum of the four counts.
fn total(mut u: Usage) -> Usage {
    u.total_tokens = u.input + u.output + u.cache_read + u.cache_write;
    u
}

impl Decoder for AnthropicDecoder {
    fn frame(&mut self, ev: SseEvent, out: &mut Assistant<'_>) -> Result<bool, ProviderError> {
        // The SDK dispatches on the `event:` line; data-only frames and pings are ignored.
        let Some(name) = ev.event.as_deref() else {
            return Ok(false);
        };
        match name {
            "error" => return Err(ProviderError::stream(anthropic_stream_message(&ev.data))),
            "message_start" => {
                let data = parse_data(&ev)?;
                self.started = true;
                let u = &data["message"]["usage"];
                out.set_usage(total(Usage {
                    input: u64_of(u, "input_tokens"),
                    output: u64_of(u, "output_tokens"),
                    cache_read: u64_of(u, "cache_read_input_tokens"),
                    cache_write: u64_of(u, "cache_creation_input_tokens"),
                    total_tokens: 0,
                }));
            }
            "content_block_start" => self.block_start(&parse_data(&ev)?, out),
            "content_block_delta" => self.block_delta(&parse_data(&ev)?, out),
            "content_block_stop" => {
                let data = parse_data(&ev)?;
                if let Some(at) = self.blocks.remove(&u64_of(&data, "index")) {
                    out.end_block(at);
                }
            }
            "message_delta" => self.message_delta(&parse_data(&ev)?, out)?,
            "message_stop" => return Ok(true),
            _ => {}
        }
        Ok(false)
    }

    fn finish(&mut self, _out: &mut Assistant<'_>) -> Result<(), ProviderError> {
        if !self.started {
            return Err(ProviderError::stream(
                "request ended without sending any chunks",
            ));
        }
        Ok(())
    }

    fn error_stop_text(&self) -> &'static str {
        "An unknown error occurred"
    }

    fn http_message(&self, status: u16, body: &str) -> String {
        anthropic_http_message(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::providers::{Api, ModelTarget, ThinkingLevel};
    use std::sync::Arc;

    fn req() -> Request {
        let mut t = ModelTarget::new(
            "anthropic",
            Api::AnthropicMessages,
            "claude-opus-4-5",
            "http://h",
        );
        t.max_tokens = 64_000;
        t.reasoning = true;
        Request::new(t, Credential::ApiKey("sk-ant-test".into()))
    }

    #[test]
    fn thinking_budgets_and_max_tokens() {
        let mut r = req();
        assert_eq!(token_plan(&r), (32_000, None));
        r.thinking = ThinkingLevel::Low;
        assert_eq!(token_plan(&r), (34_048, Some(2048)));
        r.thinking = ThinkingLevel::XHigh;
        assert_eq!(token_plan(&r), (48_384, Some(16_384)));
        r.target.max_tokens = 4096;
        r.thinking = ThinkingLevel::High;
        assert_eq!(token_plan(&r), (4096, Some(3072)));
        r.target.max_tokens = 1000;
        assert_eq!(token_plan(&r), (1000, Some(0)));
    }

    #[test]
    fn the_body_bytes_have_the_sdk_key_order_and_skip_what_is_unset() {
        let mut r = req();
        r.system = "be \"brief\"\n".into();
        r.temperature = Some(0.25);
        r.thinking = ThinkingLevel::Low;
        r.messages = vec![json!({"role":"user","content":[{"type":"text","text":"hi"}]})];
        r.tools = vec![ToolSpec {
            name: "read".into(),
            description: "d".into(),
            parameters: json!({"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}),
        }]
        .into();
        let cached = json!({"type": "ephemeral"});
        let expected = json!({
            "model": "claude-opus-4-5",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": cached}]}],
            "max_tokens": 34_048,
            "stream": true,
            "system": [{"type": "text", "text": "be \"brief\"\n", "cache_control": cached}],
            "temperature": 0.25,
            "tools": [{"name": "read", "description": "d", "input_schema":
                {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        });
        let bytes = request_body::body_bytes(&r, false);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        // Nothing optional set: no `system`, `temperature`, `tools` or `thinking` keys.
        let mut bare = req();
        bare.target.reasoning = false;
        bare.thinking = ThinkingLevel::Low;
        let keys: Vec<String> = body(&bare, false)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["model", "messages", "max_tokens", "stream"]);
    }

    #[test]
    fn each_body_carries_its_own_system_prompt() {
        // The thread keeps the last prompt's JSON form: a different one must not get it.
        let mut r = req();
        for system in [
            "first \u{1F600} \"quoted\"",
            "second\n\tline",
            "first \u{1F600} \"quoted\"",
        ] {
            r.system = system.into();
            let sent = body(&r, false);
            assert_eq!(sent["system"][0]["text"], system);
            assert_eq!(sent["system"].as_array().map(Vec::len), Some(1));
        }
        r.system = "x".repeat(200 * 1024).into();
        assert_eq!(body(&r, false)["system"][0]["text"], &*r.system);
    }

    #[test]
    fn each_body_carries_its_own_tools() {
        // The thread keeps the last tool set's JSON form, by identity and mode.
        let spec = |name: &str| ToolSpec {
            name: name.into(),
            description: format!("{name} things"),
            parameters: json!({"type":"object","properties":{"path":{"type":"string"}}}),
        };
        let (one, two): (Arc<[ToolSpec]>, Arc<[ToolSpec]>) = (
            vec![spec("read")].into(),
            vec![spec("read"), spec("write")].into(),
        );
        let names = |r: &Request, oauth: bool| -> Vec<String> {
            let sent = body(r, oauth);
            let tools = sent["tools"].as_array().cloned().unwrap_or_default();
            tools.iter().map(|t| t["name"].to_string()).collect()
        };
        let mut r = req();
        for (tools, oauth, expected) in [
            (&one, false, vec!["\"read\""]),
            (&two, false, vec!["\"read\"", "\"write\""]),
            (&one, false, vec!["\"read\""]),
            (&one, true, vec!["\"Read\""]),
            (&one, false, vec!["\"read\""]),
        ] {
            r.tools = tools.clone();
            assert_eq!(names(&r, oauth), expected);
        }
        r.tools = Arc::new([]);
        assert!(body(&r, false).get("tools").is_none(), "no tools, no key");
    }

    #[test]
    fn oauth_mode_headers_system_and_tool_names() {
        let mut r = req();
        r.credential = Credential::ApiKey("sk-ant-oat01-abc".into());
        r.system = "sys".into();
        r.tools = vec![ToolSpec {
            name: "read".into(),
            description: "d".into(),
            parameters: json!({"type":"object","properties":{"path":{"type":"string"}},"additionalProperties":false}),
        }]
        .into();
        let oauth = is_oauth(&r.credential);
        assert!(oauth);
        let h = headers(&r, oauth);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("authorization"), Some("Bearer sk-ant-oat01-abc"));
        assert_eq!(get("x-api-key"), None);
        assert_eq!(get("x-app"), Some("cli"));
        assert!(get("anthropic-beta")
            .is_some_and(|v| v.starts_with("claude-code-20250219,oauth-2025-04-20,")));
        let b = body(&r, oauth);
        assert_eq!(b["system"][0]["text"], CLAUDE_CODE_IDENTITY);
        assert_eq!(b["system"][1]["text"], "sys");
        assert_eq!(b["tools"][0]["name"], "Read");
        assert_eq!(
            b["tools"][0]["input_schema"],
            json!({"type":"object","properties":{"path":{"type":"string"}},"required":[]})
        );
        assert_eq!(from_claude_code_name("Read", &r.tools), "read");
    }

    #[test]
    fn message_conversion() {
        let mut r = req();
        r.messages = vec![
            json!({"role":"user","content":[{"type":"text","text":"look"},{"type":"text","text":"  "},
                   {"type":"image","data":"AAA","mimeType":"image/png"}]}),
            json!({"role":"assistant","provider":"anthropic","api":"anthropic-messages","model":"claude-opus-4-5",
                   "stopReason":"toolUse","content":[
                   {"type":"thinking","thinking":"plan","thinkingSignature":"sig"},
                   {"type":"thinking","thinking":"unsigned"},
                   {"type":"text","text":""},
                   {"type":"toolCall","id":"t1","name":"read","arguments":{"path":"a"}},
                   {"type":"toolCall","id":"t2","name":"read","arguments":{"path":"b"}}]}),
            json!({"role":"toolResult","toolCallId":"t1","toolName":"read","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}],"isError":false}),
            json!({"role":"toolResult","toolCallId":"t2","toolName":"read","content":[{"type":"image","data":"II","mimeType":"image/jpeg"}],"isError":true}),
        ];
        let msgs = convert_messages(&r, false);
        assert_eq!(
            msgs[0],
            json!({"role":"user","content":[{"type":"text","text":"look"}]})
        );
        assert_eq!(
            msgs[1]["content"],
            json!([{"type":"thinking","thinking":"plan","signature":"sig"},
                   {"type":"text","text":"unsigned"},
                   {"type":"tool_use","id":"t1","name":"read","input":{"path":"a"}},
                   {"type":"tool_use","id":"t2","name":"read","input":{"path":"b"}}])
        );
        assert_eq!(
            msgs[2],
            json!({"role":"user","content":[
                {"type":"tool_result","tool_use_id":"t1","content":"A\nB","is_error":false},
                {"type":"tool_result","tool_use_id":"t2","content":[
                    {"type":"text","text":"(see attached image)"},
                    {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"II"}}],
                 "is_error":true,"cache_control":{"type":"ephemeral"}}]})
        );
    }
}
