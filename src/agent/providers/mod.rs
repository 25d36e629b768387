//! Provider wire calls (agents.md §2): one streamed request to Anthropic Messages, OpenAI
//! Responses, OpenAI Chat Completions or Google Gemini, decoded into pi's assistant message while the caller
//! receives text/thinking/tool-call deltas as they arrive.
//!
//! Entry point: [`stream`]. Errors never leak the credential; aborts end the call within
//! milliseconds (see `transport.rs` for how) and yield the partial message with
//! `stopReason:"aborted"`.

mod abort;
mod anthropic;
mod assistant;
mod connect;
pub mod error;
mod gemini_schema;
mod google;
mod openai_chat;
mod openai_responses;
pub mod sse;
mod transform;
mod transport;

pub use abort::{AbortHook, AbortSignal};
pub use assistant::{StopReason, Usage};
pub use error::{ErrorKind, ProviderError};

use assistant::Assistant;
use serde_json::Value;
use sse::SseEvent;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use transport::{Exchange, HttpCall};

/// Upstream's `api` values this port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    AnthropicMessages,
    OpenAiResponses,
    OpenAiCompletions,
    GoogleGenerativeAi,
}

impl Api {
    /// Parses `anthropic-messages`, `openai-responses`, `openai-completions` or
    /// `google-generative-ai`.
    pub fn parse(s: &str) -> Option<Api> {
        match s {
            "anthropic-messages" => Some(Api::AnthropicMessages),
            "openai-responses" => Some(Api::OpenAiResponses),
            "openai-completions" => Some(Api::OpenAiCompletions),
            "google-generative-ai" => Some(Api::GoogleGenerativeAi),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Api::AnthropicMessages => "anthropic-messages",
            Api::OpenAiResponses => "openai-responses",
            Api::OpenAiCompletions => "openai-completions",
            Api::GoogleGenerativeAi => "google-generative-ai",
        }
    }
}

impl std::str::FromStr for Api {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Api::parse(s).ok_or_else(|| format!("unsupported api \"{s}\""))
    }
}

/// The resolved model a request goes to (catalog entry + provider overrides).
#[derive(Debug, Clone)]
pub struct ModelTarget {
    pub provider: String,
    pub api: Api,
    pub model_id: String,
    /// Display name; the Responses "Juice" rule looks at it (§2.4).
    pub name: String,
    /// E.g. `https://api.anthropic.com` (gets `/v1/messages`) or `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model/provider `headers`, applied last (they override the defaults, case-insensitively).
    pub headers: Vec<(String, String)>,
    /// The model's own output limit (`maxTokens` in the catalog).
    pub max_tokens: u32,
    pub context_window: u32,
    pub reasoning: bool,
    /// The model accepts image input (`input` includes `image`).
    pub input_images: bool,
    /// Custom provider `authHeader: true`: also send `authorization: Bearer <key>`.
    pub auth_header: bool,
    /// Per-model `compat` object for `openai-completions` (`Null` = auto-detect, §2.3).
    pub compat: Value,
}

impl ModelTarget {
    /// A target with upstream's defaults for custom models (§2.6): maxTokens 8192, context 200000.
    pub fn new(provider: &str, api: Api, model_id: &str, base_url: &str) -> Self {
        ModelTarget {
            provider: provider.to_string(),
            api,
            model_id: model_id.to_string(),
            name: model_id.to_string(),
            base_url: base_url.to_string(),
            headers: Vec::new(),
            max_tokens: 8192,
            context_window: 200_000,
            reasoning: false,
            input_images: false,
            auth_header: false,
            compat: Value::Null,
        }
    }
}

/// The secret a request authenticates with. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Anthropic `x-api-key` (OpenAI: still Bearer; Gemini sends any credential as
    /// `x-goog-api-key`). An Anthropic key containing `sk-ant-oat`
    /// is a setup token and goes out as Bearer, as upstream decides by the key's content.
    ApiKey(String),
    /// `authorization: Bearer` (Anthropic OAuth / setup-token mode with Claude Code headers).
    Bearer(String),
}

impl Credential {
    pub fn secret(&self) -> &str {
        match self {
            Credential::ApiKey(s) | Credential::Bearer(s) => s,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// `off | minimal | low | medium | high | xhigh` (aliases are resolved by the caller, §3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThinkingLevel {
    #[default]
    Off,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}

impl ThinkingLevel {
    pub fn parse(s: &str) -> Option<ThinkingLevel> {
        Some(match s {
            "off" => ThinkingLevel::Off,
            "minimal" => ThinkingLevel::Minimal,
            "low" => ThinkingLevel::Low,
            "medium" => ThinkingLevel::Medium,
            "high" => ThinkingLevel::High,
            "xhigh" => ThinkingLevel::XHigh,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ThinkingLevel::Off => "off",
            ThinkingLevel::Minimal => "minimal",
            ThinkingLevel::Low => "low",
            ThinkingLevel::Medium => "medium",
            ThinkingLevel::High => "high",
            ThinkingLevel::XHigh => "xhigh",
        }
    }

    /// OpenAI effort string: `xhigh` survives only for the models that support it.
    pub(crate) fn openai_effort(self, model_id: &str) -> Option<&'static str> {
        const XHIGH_MODELS: [&str; 3] = ["gpt-5.1-codex-max", "gpt-5.2", "gpt-5.2-codex"];
        match self {
            ThinkingLevel::Off => None,
            ThinkingLevel::XHigh if !XHIGH_MODELS.contains(&model_id) => Some("high"),
            level => Some(level.as_str()),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// One provider call.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: ModelTarget,
    pub credential: Credential,
    /// System prompt; empty = none. Shared, not copied: the turn's memo hands out one copy
    /// of its ~16 KB, and a request is cloned for every call of a turn.
    pub system: Arc<str>,
    /// pi messages (`user` / `assistant` / `toolResult`, agents.md §4.1), oldest first.
    pub messages: Vec<Value>,
    /// Empty = no `tools` key (Chat Completions still sends `[]` when history has tool calls).
    pub tools: Arc<[ToolSpec]>,
    pub thinking: ThinkingLevel,
    /// Responses `prompt_cache_key`.
    pub session_id: Option<String>,
    /// Whole-request deadline (connect, headers and the entire stream).
    pub timeout: Duration,
    /// Per-model `params.maxTokens`; default `min(target.max_tokens, 32000)`.
    pub max_tokens: Option<u32>,
    /// Per-model `params.temperature`; sent only when set.
    pub temperature: Option<f64>,
}

impl Request {
    /// A request with no history, no tools, thinking off and upstream's 600 s SDK timeout.
    pub fn new(target: ModelTarget, credential: Credential) -> Self {
        Request {
            target,
            credential,
            system: Arc::from(""),
            messages: Vec::new(),
            tools: Arc::new([]),
            thinking: ThinkingLevel::Off,
            session_id: None,
            timeout: Duration::from_secs(600),
            max_tokens: None,
            temperature: None,
        }
    }

    /// §2.1: `params.maxTokens` else `min(model.maxTokens, 32000)`.
    pub(crate) fn base_max_tokens(&self) -> u32 {
        self.max_tokens
            .unwrap_or_else(|| self.target.max_tokens.min(32_000))
    }
}

/// What a caller sees while the message streams. `index` is the block's position in the final
/// `content` array.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextStart {
        index: usize,
    },
    TextDelta {
        index: usize,
        delta: String,
    },
    TextEnd {
        index: usize,
        text: String,
    },
    ThinkingStart {
        index: usize,
    },
    ThinkingDelta {
        index: usize,
        delta: String,
    },
    ThinkingEnd {
        index: usize,
        thinking: String,
    },
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// Raw argument JSON fragment.
    ToolCallDelta {
        index: usize,
        delta: String,
    },
    ToolCallEnd {
        index: usize,
        id: String,
        name: String,
        arguments: Value,
    },
    /// Usage as reported so far (costs are the caller's business).
    Usage(Usage),
}

/// Per-API stream decoder.
pub(crate) trait Decoder {
    /// Applies one frame; `Ok(true)` when the stream is logically complete.
    fn frame(&mut self, ev: SseEvent, out: &mut Assistant<'_>) -> Result<bool, ProviderError>;
    /// The stream ended normally: final checks and open blocks closed. An error or aborted stop
    /// reason left after this becomes an error with `error_stop_text`.
    fn finish(&mut self, out: &mut Assistant<'_>) -> Result<(), ProviderError>;
    /// pi-ai's text for a stream that ended with an error stop reason (the OpenAI and Google
    /// providers share upstream's misspelling, kept so logs and tests compare equal).
    fn error_stop_text(&self) -> &'static str {
        "An unkown error ocurred"
    }
    /// The SDK's text for a non-2xx response.
    fn http_message(&self, status: u16, body: &str) -> String;
}

/// Finishes what this thread's last provider call left on its connection (the end of a body
/// read past its terminal frame), so the connection can serve the next call. For after the
/// turn's end has gone out; the next call does it first anyway.
pub fn settle_connection() {
    transport::settle();
}

/// Sends `req` and streams the answer: `Ok` is the final pi assistant message (also for an
/// abort, with `stopReason:"aborted"`); `Err` carries the normalised error and, in
/// `ProviderError::assistant`, the `stopReason:"error"` message upstream would persist.
pub fn stream(
    req: &Request,
    abort: &AbortSignal,
    on_event: &mut dyn FnMut(StreamEvent),
) -> Result<Value, ProviderError> {
    let (call, mut decoder): (HttpCall, Box<dyn Decoder>) = match req.target.api {
        Api::AnthropicMessages => anthropic::prepare(req),
        Api::OpenAiResponses => openai_responses::prepare(req),
        Api::OpenAiCompletions => openai_chat::prepare(req),
        Api::GoogleGenerativeAi => google::prepare(req),
    };
    log::debug!(
        "provider: {} {} model {}",
        req.target.provider,
        call.url,
        req.target.model_id
    );
    let mut out = Assistant::new(&req.target, on_event);
    let ended = transport::exchange(call, abort, &mut |ev| decoder.frame(ev, &mut out));
    let failure = match ended {
        Exchange::Aborted => return Ok(aborted(out)),
        Exchange::Complete => match decoder.finish(&mut out) {
            Ok(()) if abort.is_aborted() => return Ok(aborted(out)),
            Ok(()) if matches!(out.stop, StopReason::Error | StopReason::Aborted) => {
                ProviderError::stream(decoder.error_stop_text())
            }
            Ok(()) => return Ok(out.to_json(None)),
            Err(e) => e,
        },
        Exchange::HttpError {
            status,
            headers,
            body,
        } => ProviderError::http(status, decoder.http_message(status, &body), &headers),
        Exchange::Failed(e) if req.target.api == Api::GoogleGenerativeAi => {
            error::google_connection_text(e)
        }
        Exchange::Failed(e) => e,
    };
    Err(finish_error(failure, out, req.credential.secret()))
}

/// pi's text for an aborted stream (its own check after the SDK loop).
const ABORTED_TEXT: &str = "Request was aborted";

fn aborted(mut out: Assistant<'_>) -> Value {
    out.stop = StopReason::Aborted;
    out.to_json(Some(ABORTED_TEXT))
}

fn finish_error(mut e: ProviderError, mut out: Assistant<'_>, secret: &str) -> ProviderError {
    e.message = error::redact(&e.message, secret);
    out.stop = StopReason::Error;
    e.assistant = out.to_json(Some(&e.message));
    e
}

/// `{base}{path}` without a doubled slash.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// Defaults, then `overrides` replacing same-named entries (case-insensitive) or appending.
pub(crate) fn merge_headers(
    mut base: Vec<(String, String)>,
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    for (k, v) in overrides {
        base.retain(|(bk, _)| !bk.eq_ignore_ascii_case(k));
        base.push((k.clone(), v.clone()));
    }
    base
}

/// Shared helpers for the converters.
pub(crate) fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Parses a frame's JSON data, with the SDKs' failure text.
pub(crate) fn parse_data(ev: &SseEvent) -> Result<Value, ProviderError> {
    serde_json::from_str(&ev.data)
        .map_err(|e| ProviderError::stream(format!("Could not parse message into JSON: {e}")))
}

/// Text blocks of a tool result joined with `\n`, and whether it had images.
pub(crate) fn tool_result_text(msg: &Value) -> (String, bool) {
    let blocks = msg.get("content").and_then(Value::as_array);
    let blocks: Vec<&Value> = blocks.into_iter().flatten().collect();
    let text = blocks
        .iter()
        .filter(|b| str_of(b, "type") == "text")
        .map(|b| str_of(b, "text"))
        .collect::<Vec<_>>()
        .join("\n");
    let images = blocks.iter().any(|b| str_of(b, "type") == "image");
    (text, images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        for api in [
            Api::AnthropicMessages,
            Api::OpenAiResponses,
            Api::OpenAiCompletions,
            Api::GoogleGenerativeAi,
        ] {
            assert_eq!(Api::parse(api.as_str()), Some(api));
        }
        assert_eq!(Api::parse("google-vertex"), None);
        assert_eq!(ThinkingLevel::parse("xhigh"), Some(ThinkingLevel::XHigh));
        assert_eq!(ThinkingLevel::XHigh.openai_effort("gpt-5.2"), Some("xhigh"));
        assert_eq!(ThinkingLevel::XHigh.openai_effort("gpt-4o"), Some("high"));
        assert_eq!(ThinkingLevel::Off.openai_effort("gpt-5.2"), None);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let t = ModelTarget::new("openai", Api::OpenAiResponses, "gpt", "http://x");
        let r = Request::new(t, Credential::Bearer("sk-very-secret".into()));
        assert!(!format!("{r:?}").contains("sk-very-secret"));
    }

    #[test]
    fn headers_merge_case_insensitively() {
        let base = vec![("accept".to_string(), "a".to_string())];
        let merged = merge_headers(
            base,
            &[("Accept".into(), "b".into()), ("x".into(), "y".into())],
        );
        assert_eq!(
            merged,
            vec![
                ("Accept".to_string(), "b".to_string()),
                ("x".to_string(), "y".to_string())
            ]
        );
        assert_eq!(
            join_url("http://h/v1/", "/responses"),
            "http://h/v1/responses"
        );
    }
}
