//! `ProviderError` and the error texts upstream's SDKs produce (agents.md §2.8), built in exactly
//! their shapes so the failover and retry classifiers (§1.6, §1.8) match the same strings.

use serde_json::Value;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The provider answered with a non-2xx status.
    Http,
    /// A 2xx stream carried an error frame, ended in an error stop reason, or broke protocol.
    Stream,
    /// The request's deadline passed.
    Timeout,
    /// Connecting failed or the connection broke.
    Network,
    /// The caller aborted. `stream` reports aborts as an `Ok` message with `stopReason:"aborted"`;
    /// this kind exists for callers that need to turn an abort into an error.
    Aborted,
}

/// A failed provider call. `Display` is `message`, which never contains the credential.
#[derive(Debug, Clone)]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// HTTP status for `Http` errors.
    pub status: Option<u16>,
    /// The normalised error text, e.g. `429 {"type":"error",…}` or `Connection error.`.
    pub message: String,
    /// From `retry-after-ms` / `retry-after` (seconds or HTTP date).
    pub retry_after: Option<Duration>,
    /// From `x-should-retry: true|false`, which overrides the SDK's own retry decision.
    pub should_retry: Option<bool>,
    /// The pi assistant message upstream persists for this failure: the partial content,
    /// `stopReason:"error"` and `errorMessage` = `message`. `Null` only before `stream` fills it.
    pub assistant: Value,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
            should_retry: None,
            assistant: Value::Null,
        }
    }

    /// `Connection error.`: the SDKs' text for any failure before a response arrived.
    pub(crate) fn connection() -> Self {
        Self::new(ErrorKind::Network, "Connection error.")
    }

    /// The SDKs' timeout text (matches the `timed out` classifier → reason `timeout`).
    pub(crate) fn timeout() -> Self {
        Self::new(ErrorKind::Timeout, "Request timed out.")
    }

    /// What undici reports when the body stream breaks after the headers arrived.
    pub(crate) fn terminated() -> Self {
        Self::new(ErrorKind::Network, "terminated")
    }

    pub(crate) fn stream(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Stream, message)
    }

    /// A non-2xx response, with the header-derived retry hints.
    pub(crate) fn http(status: u16, message: String, headers: &[(String, String)]) -> Self {
        ProviderError {
            status: Some(status),
            retry_after: retry_after(headers),
            should_retry: should_retry(headers),
            ..Self::new(ErrorKind::Http, message)
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}

/// JavaScript truthiness of a parsed JSON value (the SDKs branch on it).
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `APIError.makeMessage` of both SDKs: `error.message` if set, else the error JSON, else the
/// raw text; prefixed with the status when there is one.
pub(crate) fn sdk_message(
    status: Option<u16>,
    error: Option<&Value>,
    text: Option<&str>,
) -> String {
    let msg = match error {
        Some(e) if e.get("message").is_some_and(truthy) => match &e["message"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        Some(e) if truthy(e) => e.to_string(),
        _ => text.unwrap_or("").to_string(),
    };
    match (status, msg.is_empty()) {
        (Some(s), false) => format!("{s} {msg}"),
        (Some(s), true) => format!("{s} status code (no body)"),
        (None, false) => msg,
        (None, true) => "(no status code or body)".to_string(),
    }
}

/// The SDKs' `safeJSON`: a body that does not parse (or parses to a falsy value) is raw text.
fn parse_body(body: &str) -> Option<Value> {
    serde_json::from_str::<Value>(body).ok().filter(truthy)
}

/// Anthropic HTTP error: the whole JSON body is the "error", so a body without a top-level
/// `message` becomes `<status> <compact JSON>`.
pub(crate) fn anthropic_http_message(status: u16, body: &str) -> String {
    match parse_body(body) {
        Some(json) => sdk_message(Some(status), Some(&json), None),
        None => sdk_message(Some(status), None, Some(body)),
    }
}

/// OpenAI HTTP error: `<status> <error.message>`; a JSON body without `error` reads as no body.
pub(crate) fn openai_http_message(status: u16, body: &str) -> String {
    match parse_body(body) {
        Some(json) => sdk_message(Some(status), json.get("error"), None),
        None => sdk_message(Some(status), None, Some(body)),
    }
}

/// Anthropic mid-stream `event: error`: the data (parsed if it is JSON) without a status.
pub(crate) fn anthropic_stream_message(data: &str) -> String {
    let v = serde_json::from_str::<Value>(data)
        .ok()
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| Value::String(data.to_string()));
    sdk_message(None, Some(&v), None)
}

/// OpenAI in-stream `{"error":…}` frame.
pub(crate) fn openai_stream_message(error: &Value) -> String {
    sdk_message(None, Some(error), None)
}

/// `@google/genai`'s text for a non-2xx response: the JSON body re-serialised, or for a non-JSON
/// body `{"error":{"message":<text>,"code":<status>,"status":<reason phrase>}}`. No status prefix
/// (the `code` inside still lets the `429` and `401` classifiers match).
pub(crate) fn google_http_message(status: u16, body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v.to_string();
    }
    serde_json::json!({"error": {"message": body, "code": status, "status": reason_phrase(status)}})
        .to_string()
}

/// `@google/genai` wraps a failed `fetch` as `exception <TypeError> sending request` where the
/// other SDKs say `Connection error.` (the session retry layer matches `fetch failed` in it).
pub(crate) fn google_connection_text(mut e: ProviderError) -> ProviderError {
    if e.message == ProviderError::connection().message {
        e.message = "exception TypeError: fetch failed sending request".into();
    }
    e
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// `@google/genai`'s `ApiError` text for an error object carried in the stream itself.
pub(crate) fn google_stream_message(chunk: &Value) -> String {
    let status = &chunk["error"]["status"];
    let status = status
        .as_str()
        .map_or_else(|| status.to_string(), str::to_string);
    format!("got status: {status}. {chunk}")
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// `retry-after-ms` (milliseconds), else `retry-after` (seconds, or an HTTP date).
pub(crate) fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let non_negative = |f: f64| (f.is_finite() && f >= 0.0).then_some(f);
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return non_negative(ms).map(|ms| Duration::from_secs_f64(ms / 1000.0));
    }
    let v = header(headers, "retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return non_negative(secs).map(Duration::from_secs_f64);
    }
    let at = http_date_secs(v)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

pub(crate) fn should_retry(headers: &[(String, String)]) -> Option<bool> {
    match header(headers, "x-should-retry")? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date_secs(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == mon)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Replaces any occurrence of the secret in provider-supplied text (some servers echo the key
/// they rejected), so neither errors nor transcripts can leak it.
pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.len() < 4 || !text.contains(secret) {
        return text.to_string();
    }
    text.replace(secret, "[redacted]")
}

/// What an OpenAI SSE frame (Responses or Chat Completions) amounts to before API-specific
/// handling: the end marker, a frame to ignore, or its JSON (an in-stream `error` is an `Err`).
pub(crate) enum OpenAiFrame {
    Done,
    Skip,
    Data(Value),
}

pub(crate) fn openai_frame(ev: &super::sse::SseEvent) -> Result<OpenAiFrame, ProviderError> {
    if ev.data.starts_with("[DONE]") {
        return Ok(OpenAiFrame::Done);
    }
    // Assistants-API `thread.*` events can reach compatible servers' streams; the SDK skips them.
    if ev
        .event
        .as_deref()
        .is_some_and(|e| e.starts_with("thread."))
    {
        return Ok(OpenAiFrame::Skip);
    }
    let data = super::parse_data(ev)?;
    if let Some(err) = data.get("error").filter(|e| truthy(e)) {
        return Err(ProviderError::stream(openai_stream_message(err)));
    }
    Ok(OpenAiFrame::Data(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_shapes() {
        let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"},"request_id":"req_1"}"#;
        assert_eq!(anthropic_http_message(429, body), format!("429 {body}"));
        let pretty = "{\n  \"type\": \"error\",\n  \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}\n}";
        assert_eq!(
            anthropic_http_message(529, pretty),
            r#"529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        );
        assert_eq!(anthropic_http_message(500, ""), "500 status code (no body)");
        assert_eq!(
            anthropic_http_message(502, "Bad Gateway"),
            "502 Bad Gateway"
        );
        assert_eq!(anthropic_http_message(400, r#"{"message":"m"}"#), "400 m");
        assert_eq!(
            anthropic_stream_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        );
        assert_eq!(anthropic_stream_message("boom"), "\"boom\"");
    }

    #[test]
    fn openai_shapes() {
        let body = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(openai_http_message(429, body), "429 Rate limit reached");
        assert_eq!(
            openai_http_message(429, r#"{"detail":"x"}"#),
            "429 status code (no body)"
        );
        assert_eq!(
            openai_http_message(503, "upstream down"),
            "503 upstream down"
        );
        assert_eq!(
            openai_http_message(400, r#"{"error":{"code":"x"}}"#),
            r#"400 {"code":"x"}"#
        );
        let e: Value = serde_json::json!({"message": "upstream overloaded", "code": 529});
        assert_eq!(openai_stream_message(&e), "upstream overloaded");
    }

    #[test]
    fn google_shapes() {
        let body = "{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted (e.g. check quota).\",\n    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}\n";
        assert_eq!(
            google_http_message(429, body),
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#
        );
        assert_eq!(
            google_http_message(502, "upstream"),
            r#"{"error":{"message":"upstream","code":502,"status":"Bad Gateway"}}"#
        );
    }

    #[test]
    fn retry_headers() {
        let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(retry_after(&h("retry-after", "0")), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&h("Retry-After", "2")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&h("retry-after-ms", "1500")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&h("retry-after", "soon")), None);
        assert_eq!(
            retry_after(&h("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(
            http_date_secs("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(should_retry(&h("x-should-retry", "false")), Some(false));
        assert_eq!(should_retry(&h("x-other", "false")), None);
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("bad key sk-test-123", "sk-test-123"),
            "bad key [redacted]"
        );
        assert_eq!(redact("nothing here", "sk-test-123"), "nothing here");
    }
}
