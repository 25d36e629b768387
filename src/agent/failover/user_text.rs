//! User-facing error texts: what a chat user sees when a model call or a whole run fails
//! (upstream `formatAssistantErrorText`, `formatRawAssistantErrorForUi`,
//! `sanitizeUserFacingText` and the reply layer's `⚠️ Agent failed before reply` fallback).

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::classify::{
    is_context_overflow_error, is_likely_context_overflow_error, is_overloaded_error_message,
    is_rate_limit_error_message, is_role_ordering_error, is_timeout_error_message,
};
use super::pattern::Regex;

pub const CONTEXT_OVERFLOW_TEXT: &str = "Context overflow: prompt too large for the model. Try again with less input or a larger-context model.";
pub const ROLE_ORDERING_TEXT: &str = "Message ordering conflict - please try again. If this persists, use /new to start a fresh session.";
pub const OVERLOADED_TEXT: &str =
    "The AI service is temporarily overloaded. Please try again in a moment.";
pub const UNKNOWN_ERROR_TEXT: &str = "LLM request failed with an unknown error.";
pub const TIMED_OUT_TEXT: &str = "LLM request timed out.";

/// Reply-layer texts sent after it reset the session (the caller decides whether it did).
pub const CONTEXT_RESET_TEXT: &str = "⚠️ Context limit exceeded. I've reset our conversation to start fresh - please try again.\n\nTo prevent this, increase your compaction buffer by setting `agents.defaults.compaction.reserveTokensFloor` to 4000 or higher in your config.";
pub const COMPACTION_RESET_TEXT: &str = "⚠️ Context limit exceeded during compaction. I've reset our conversation to start fresh - please try again.\n\nTo prevent this, increase your compaction buffer by setting `agents.defaults.compaction.reserveTokensFloor` to 4000 or higher in your config.";
pub const ROLE_ORDERING_RESET_TEXT: &str =
    "⚠️ Message ordering conflict. I've reset the conversation - please try again.";
pub const SESSION_CORRUPTION_RESET_TEXT: &str =
    "⚠️ Session history was corrupted. I've reset the conversation - please try again!";

/// What failed, as the reply layer sees it.
#[derive(Debug, Clone, Copy)]
pub enum UserError<'a> {
    /// The last assistant message ended with `stopReason: "error"` and this `errorMessage`.
    Assistant(&'a str),
    /// The run threw before replying (e.g. `All models failed (2): ...`) and no session reset
    /// was done.
    Thrown(&'a str),
}

/// The text a user is sent for `err`.
pub fn format_user_error(err: UserError<'_>) -> String {
    match err {
        UserError::Assistant(raw) => {
            format_assistant_error_text(true, raw).unwrap_or_else(|| UNKNOWN_ERROR_TEXT.into())
        }
        UserError::Thrown(message) => format_run_failure_text(message),
    }
}

/// `Image too large for the model (max N MB). ...` for an image-size rejection.
pub fn image_too_large_text(max_mb: Option<f64>) -> String {
    let hint = match max_mb {
        Some(mb) if mb.is_finite() => format!(" (max {mb}MB)"),
        _ => String::new(),
    };
    format!(
        "Image too large for the model{hint}. Please compress or resize the image and try again."
    )
}

static RUN_FAILURE_TRAILING_DOT: LazyLock<Regex> = LazyLock::new(|| Regex::fixed(r"\.\s*$", ""));

/// The reply layer's text for a run that threw (`agent-runner-execution.ts`).
pub fn format_run_failure_text(message: &str) -> String {
    if is_likely_context_overflow_error(message) {
        return "⚠️ Context overflow — prompt too large for this model. Try a shorter message or a larger-context model.".into();
    }
    if is_role_ordering_error(message) {
        return format!("⚠️ {ROLE_ORDERING_TEXT}");
    }
    let trimmed = RUN_FAILURE_TRAILING_DOT.replace_first(message, "");
    format!("⚠️ Agent failed before reply: {trimmed}.\nLogs: moltbot logs --follow")
}

static ROLE_ORDERING_WIDE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::fixed(
        r#"incorrect role information|roles must alternate|400.*role|"message".*role.*information"#,
        "i",
    )
});
static INVALID_REQUEST_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::fixed(
        r#""type":"invalid_request_error".*?"message":"([^"]+)""#,
        "",
    )
});

/// `formatAssistantErrorText`: `None` when the message is not an error and has no error text.
/// (Upstream first rewrites `unknown tool` errors into a sandbox-policy hint; this gateway has
/// no sandbox, so that branch never applies.)
pub fn format_assistant_error_text(stop_reason_error: bool, error_message: &str) -> Option<String> {
    let raw = error_message.trim();
    if !stop_reason_error && raw.is_empty() {
        return None;
    }
    if raw.is_empty() {
        return Some(UNKNOWN_ERROR_TEXT.into());
    }
    if is_context_overflow_error(raw) {
        return Some(CONTEXT_OVERFLOW_TEXT.into());
    }
    if ROLE_ORDERING_WIDE_RE.is_match(raw) {
        return Some(ROLE_ORDERING_TEXT.into());
    }
    if let Some(msg) = INVALID_REQUEST_RE
        .captures(raw)
        .and_then(|c| c.get(1).map(String::from))
    {
        return Some(format!("LLM request rejected: {msg}"));
    }
    if is_overloaded_error_message(raw) {
        return Some(OVERLOADED_TEXT.into());
    }
    if is_likely_http_error_text(raw) || is_raw_api_error_payload(raw) {
        return Some(format_raw_assistant_error_for_ui(raw));
    }
    if raw.chars().count() > 600 {
        log::warn!(
            "[formatAssistantErrorText] Long error truncated: {}",
            truncate_chars(raw, 200)
        );
    }
    Some(truncate_600(raw))
}

static FINAL_TAG_RE: LazyLock<Regex> = LazyLock::new(|| Regex::fixed(r"<\s*\/?\s*final\s*>", "gi"));
static ERROR_PREFIX_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::fixed(
        r"^(?:error|api\s*error|openai\s*error|anthropic\s*error|gateway\s*error|request failed|failed|exception)[:\s-]+",
        "i",
    )
});

/// `sanitizeUserFacingText`: strips `<final>` tags, turns error-looking replies into the
/// friendly texts and collapses consecutive duplicate paragraphs.
pub fn sanitize_user_facing_text(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let stripped = FINAL_TAG_RE.replace_all(text, "");
    let trimmed = stripped.trim();
    if trimmed.is_empty() {
        return stripped;
    }
    if is_role_ordering_error(trimmed) {
        return ROLE_ORDERING_TEXT.into();
    }
    if is_context_overflow_error(trimmed) {
        return CONTEXT_OVERFLOW_TEXT.into();
    }
    if is_raw_api_error_payload(trimmed) || is_likely_http_error_text(trimmed) {
        return format_raw_assistant_error_for_ui(trimmed);
    }
    if ERROR_PREFIX_RE.is_match(trimmed) {
        if is_overloaded_error_message(trimmed) || is_rate_limit_error_message(trimmed) {
            return OVERLOADED_TEXT.into();
        }
        if is_timeout_error_message(trimmed) {
            return TIMED_OUT_TEXT.into();
        }
        return format_raw_assistant_error_for_ui(trimmed);
    }
    collapse_consecutive_duplicate_blocks(&stripped)
}

static PARAGRAPH_BREAK_RE: LazyLock<Regex> = LazyLock::new(|| Regex::fixed(r"\n{2,}", ""));
static WHITESPACE_RUN_RE: LazyLock<Regex> = LazyLock::new(|| Regex::fixed(r"\s+", "g"));

fn collapse_consecutive_duplicate_blocks(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return text.into();
    }
    let blocks = PARAGRAPH_BREAK_RE.split(trimmed);
    if blocks.len() < 2 {
        return text.into();
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut last: Option<String> = None;
    for block in &blocks {
        let normalized = WHITESPACE_RUN_RE.replace_all(block.trim(), " ");
        if last.as_deref() == Some(normalized.as_str()) {
            continue;
        }
        kept.push(block.trim());
        last = Some(normalized);
    }
    if kept.len() == blocks.len() {
        return text.into();
    }
    kept.join("\n\n")
}

static HTTP_STATUS_PREFIX_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::fixed(r"^(?:http\s*)?(\d{3})\s+(.+)$", "i"));
const HTTP_ERROR_HINTS: [&str; 15] = [
    "error",
    "bad request",
    "not found",
    "unauthorized",
    "forbidden",
    "internal server",
    "service unavailable",
    "gateway",
    "rate limit",
    "overloaded",
    "timeout",
    "timed out",
    "invalid",
    "too many requests",
    "permission",
];

fn is_likely_http_error_text(raw: &str) -> bool {
    let Some(c) = HTTP_STATUS_PREFIX_RE.captures(raw) else {
        return false;
    };
    let code: u32 = c.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    if code < 400 {
        return false;
    }
    let message = c.get(2).unwrap_or("").to_lowercase();
    HTTP_ERROR_HINTS.iter().any(|h| message.contains(h))
}

static ERROR_PAYLOAD_PREFIX_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::fixed(
        r"^(?:error|api\s*error|apierror|openai\s*error|anthropic\s*error|gateway\s*error)[:\s-]+",
        "i",
    )
});

fn is_error_payload_object(v: &Value) -> bool {
    let Some(record) = v.as_object() else {
        return false;
    };
    if record.get("type").and_then(Value::as_str) == Some("error") {
        return true;
    }
    if record.get("request_id").is_some_and(Value::is_string)
        || record.get("requestId").is_some_and(Value::is_string)
    {
        return true;
    }
    let Some(err) = record.get("error").and_then(Value::as_object) else {
        return false;
    };
    ["message", "type", "code"]
        .iter()
        .any(|k| err.get(*k).is_some_and(Value::is_string))
}

fn parse_api_error_payload(raw: &str) -> Option<Map<String, Value>> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut candidates = vec![trimmed.to_string()];
    if ERROR_PAYLOAD_PREFIX_RE.is_match(trimmed) {
        let rest = ERROR_PAYLOAD_PREFIX_RE.replace_first(trimmed, "");
        candidates.push(rest.trim().to_string());
    }
    candidates.iter().find_map(|c| {
        if !c.starts_with('{') || !c.ends_with('}') {
            return None;
        }
        let parsed: Value = serde_json::from_str(c).ok()?;
        if !is_error_payload_object(&parsed) {
            return None;
        }
        parsed.as_object().cloned()
    })
}

/// Whether `raw` is a provider's raw JSON error body (possibly `Error: `-prefixed).
pub fn is_raw_api_error_payload(raw: &str) -> bool {
    parse_api_error_payload(raw).is_some()
}

/// A key-order-independent rendering of a raw error body, for de-duplicating reply payloads.
pub fn api_error_payload_fingerprint(raw: &str) -> Option<String> {
    parse_api_error_payload(raw).map(|p| stable_stringify(&Value::Object(p)))
}

fn stable_stringify(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(stable_stringify).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        stable_stringify(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// Fields of a provider error body (`parseApiErrorInfo`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiErrorInfo {
    pub http_code: Option<String>,
    pub error_type: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

static HTTP_CODE_PREFIX_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::fixed(r"^(\d{3})\s+(.+)$", "s"));

pub fn parse_api_error_info(raw: &str) -> Option<ApiErrorInfo> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    let (http_code, candidate) = match HTTP_CODE_PREFIX_RE.captures(trimmed) {
        Some(c) => (
            c.get(1).map(String::from),
            c.get(2).unwrap_or("").trim().to_string(),
        ),
        None => (None, trimmed.to_string()),
    };
    let payload = parse_api_error_payload(&candidate)?;
    let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(String::from);
    let request_id = text(&payload, "request_id").or_else(|| text(&payload, "requestId"));
    let (mut err_type, mut err_message) = (None, None);
    if let Some(err) = payload.get("error").and_then(Value::as_object) {
        err_type = text(err, "type").or_else(|| text(err, "code"));
        err_message = text(err, "message");
    }
    Some(ApiErrorInfo {
        http_code,
        error_type: err_type.or_else(|| text(&payload, "type")),
        message: err_message.or_else(|| text(&payload, "message")),
        request_id,
    })
}

/// `formatRawAssistantErrorForUi`: `HTTP 429 rate_limit_error: ... (request_id: ...)`,
/// `HTTP 500: Internal Server Error`, `LLM error <type>: <message>`, or the raw text cut at 600.
pub fn format_raw_assistant_error_for_ui(raw: &str) -> String {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return UNKNOWN_ERROR_TEXT.into();
    }
    if let Some(c) = HTTP_STATUS_PREFIX_RE.captures(trimmed) {
        let rest = c.get(2).unwrap_or("").trim();
        if !rest.starts_with('{') {
            return format!("HTTP {}: {rest}", c.get(1).unwrap_or(""));
        }
    }
    if let Some(info) = parse_api_error_info(trimmed) {
        if let Some(message) = info.message.filter(|m| !m.is_empty()) {
            let prefix = match info.http_code.filter(|c| !c.is_empty()) {
                Some(code) => format!("HTTP {code}"),
                None => "LLM error".into(),
            };
            let kind = info
                .error_type
                .filter(|t| !t.is_empty())
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            let rid = info
                .request_id
                .filter(|r| !r.is_empty())
                .map(|r| format!(" (request_id: {r})"))
                .unwrap_or_default();
            return format!("{prefix}{kind}: {message}{rid}");
        }
    }
    truncate_600(trimmed)
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn truncate_600(s: &str) -> String {
    if s.chars().count() > 600 {
        format!("{}…", truncate_chars(s, 600))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_body_becomes_http_line() {
        let raw = r#"429 {"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_test429"}"#;
        assert_eq!(
            format_user_error(UserError::Assistant(raw)),
            "HTTP 429 rate_limit_error: Number of request tokens has exceeded your per-minute rate limit (request_id: req_test429)"
        );
    }

    #[test]
    fn overload_529_and_mid_stream() {
        let http =
            r#"529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let sse = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            format_user_error(UserError::Assistant(http)),
            OVERLOADED_TEXT
        );
        assert_eq!(
            format_user_error(UserError::Assistant(sse)),
            OVERLOADED_TEXT
        );
    }

    #[test]
    fn anthropic_overflow_body_is_overflow_text() {
        let raw = r#"400 {"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        assert_eq!(
            format_user_error(UserError::Assistant(raw)),
            CONTEXT_OVERFLOW_TEXT
        );
    }

    #[test]
    fn invalid_request_is_rejected_text() {
        let raw = r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#;
        assert_eq!(
            format_assistant_error_text(true, raw).as_deref(),
            Some("LLM request rejected: max_tokens: too big")
        );
    }

    #[test]
    fn plain_errors_pass_through_and_truncate() {
        assert_eq!(format_assistant_error_text(false, "  "), None);
        assert_eq!(
            format_assistant_error_text(true, "").as_deref(),
            Some(UNKNOWN_ERROR_TEXT)
        );
        assert_eq!(
            format_assistant_error_text(true, "Connection error.").as_deref(),
            Some("Connection error.")
        );
        let long = "x".repeat(700);
        let out = format_assistant_error_text(true, &long).unwrap();
        assert_eq!(out.chars().count(), 601);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn thrown_failures_use_reply_layer_texts() {
        let all = "All models failed (2): anthropic/claude-opus-4-5: 429 rate limited (rate_limit) | openai/gpt-5.2: Connection error. (timeout).";
        assert_eq!(
            format_user_error(UserError::Thrown(all)),
            "⚠️ Agent failed before reply: All models failed (2): anthropic/claude-opus-4-5: 429 rate limited (rate_limit) | openai/gpt-5.2: Connection error. (timeout).\nLogs: moltbot logs --follow"
        );
        assert_eq!(
            format_user_error(UserError::Thrown("Unknown model: openai/nope.")),
            "⚠️ Agent failed before reply: Unknown model: openai/nope.\nLogs: moltbot logs --follow"
        );
        assert!(
            format_user_error(UserError::Thrown("prompt too large for this model"))
                .starts_with("⚠️ Context overflow — prompt too large")
        );
        assert_eq!(
            format_user_error(UserError::Thrown("roles must alternate")),
            "⚠️ Message ordering conflict - please try again. If this persists, use /new to start a fresh session."
        );
    }

    #[test]
    fn image_text_formats_numbers_like_javascript() {
        assert_eq!(
            image_too_large_text(Some(5.0)),
            "Image too large for the model (max 5MB). Please compress or resize the image and try again."
        );
        assert!(image_too_large_text(None).starts_with("Image too large for the model. "));
    }

    #[test]
    fn sanitize_error_prefixes() {
        assert_eq!(
            sanitize_user_facing_text("Error: overloaded"),
            OVERLOADED_TEXT
        );
        assert_eq!(
            sanitize_user_facing_text("Error: request timed out"),
            TIMED_OUT_TEXT
        );
        assert_eq!(sanitize_user_facing_text("failed: boom"), "failed: boom");
    }

    #[test]
    fn fingerprint_ignores_key_order() {
        let a =
            api_error_payload_fingerprint(r#"{"type":"error","error":{"message":"x","type":"y"}}"#);
        let b =
            api_error_payload_fingerprint(r#"{"error":{"type":"y","message":"x"},"type":"error"}"#);
        assert!(a.is_some());
        assert_eq!(a, b);
    }
}
