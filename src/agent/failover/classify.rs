//! The error-text classifier: which failover reason an error message maps to, context-overflow
//! and role-ordering detection, image-limit parsing. Patterns are upstream's
//! (`src/agents/pi-embedded-helpers/errors.ts`, pi-ai `utils/overflow.js`) copied verbatim and
//! tested in the same order, so the first hit wins exactly as it does there.

use std::sync::LazyLock;

use super::pattern::Regex;

/// Why a model attempt failed in a way that may move to the next profile or model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailoverReason {
    Auth,
    Format,
    RateLimit,
    Billing,
    Timeout,
    Unknown,
}

impl FailoverReason {
    /// The wire/store spelling (`usageStats.failureCounts` keys, `All models failed` text).
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverReason::Auth => "auth",
            FailoverReason::Format => "format",
            FailoverReason::RateLimit => "rate_limit",
            FailoverReason::Billing => "billing",
            FailoverReason::Timeout => "timeout",
            FailoverReason::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<FailoverReason> {
        Some(match raw {
            "auth" => FailoverReason::Auth,
            "format" => FailoverReason::Format,
            "rate_limit" => FailoverReason::RateLimit,
            "billing" => FailoverReason::Billing,
            "timeout" => FailoverReason::Timeout,
            "unknown" => FailoverReason::Unknown,
            _ => return None,
        })
    }
}

/// One entry of an upstream pattern list: a regex or a plain substring.
enum Pat {
    Re(Regex),
    Sub(&'static str),
}

fn re(p: &str) -> Pat {
    Pat::Re(Regex::fixed(p, ""))
}

fn re_i(p: &str) -> Pat {
    Pat::Re(Regex::fixed(p, "i"))
}

struct Table {
    rate_limit: Vec<Pat>,
    overloaded: Vec<Pat>,
    timeout: Vec<Pat>,
    billing: Vec<Pat>,
    auth: Vec<Pat>,
    format: Vec<Pat>,
}

/// `ERROR_PATTERNS` from upstream, in its order.
static TABLE: LazyLock<Table> = LazyLock::new(|| Table {
    rate_limit: vec![
        re("rate[_ ]limit|too many requests|429"),
        Pat::Sub("exceeded your current quota"),
        Pat::Sub("resource has been exhausted"),
        Pat::Sub("quota exceeded"),
        Pat::Sub("resource_exhausted"),
        Pat::Sub("usage limit"),
    ],
    overloaded: vec![
        re_i(r#"overloaded_error|"type"\s*:\s*"overloaded_error""#),
        Pat::Sub("overloaded"),
    ],
    timeout: vec![
        Pat::Sub("timeout"),
        Pat::Sub("timed out"),
        Pat::Sub("deadline exceeded"),
        Pat::Sub("context deadline exceeded"),
    ],
    billing: vec![
        re(r"\b402\b"),
        Pat::Sub("payment required"),
        Pat::Sub("insufficient credits"),
        Pat::Sub("credit balance"),
        Pat::Sub("plans & billing"),
    ],
    auth: vec![
        re("invalid[_ ]?api[_ ]?key"),
        Pat::Sub("incorrect api key"),
        Pat::Sub("invalid token"),
        Pat::Sub("authentication"),
        Pat::Sub("re-authenticate"),
        Pat::Sub("oauth token refresh failed"),
        Pat::Sub("unauthorized"),
        Pat::Sub("forbidden"),
        Pat::Sub("access denied"),
        Pat::Sub("expired"),
        Pat::Sub("token has expired"),
        re(r"\b401\b"),
        re(r"\b403\b"),
        Pat::Sub("no credentials found"),
        Pat::Sub("no api key found"),
    ],
    format: vec![
        Pat::Sub("string should match pattern"),
        Pat::Sub("tool_use.id"),
        Pat::Sub("tool_use_id"),
        Pat::Sub("messages.1.content.1.tool_use.id"),
        Pat::Sub("invalid request format"),
    ],
});

/// Upstream lowercases once and tests every entry against the lowercased text.
fn matches_any(raw: &str, patterns: &[Pat]) -> bool {
    if raw.is_empty() {
        return false;
    }
    let value = raw.to_lowercase();
    patterns.iter().any(|p| match p {
        Pat::Re(r) => r.is_match(&value),
        Pat::Sub(s) => value.contains(s),
    })
}

pub fn is_rate_limit_error_message(raw: &str) -> bool {
    matches_any(raw, &TABLE.rate_limit)
}

pub fn is_timeout_error_message(raw: &str) -> bool {
    matches_any(raw, &TABLE.timeout)
}

pub fn is_overloaded_error_message(raw: &str) -> bool {
    matches_any(raw, &TABLE.overloaded)
}

pub fn is_auth_error_message(raw: &str) -> bool {
    matches_any(raw, &TABLE.auth)
}

pub fn is_billing_error_message(raw: &str) -> bool {
    let value = raw.to_lowercase();
    if value.is_empty() {
        return false;
    }
    if matches_any(&value, &TABLE.billing) {
        return true;
    }
    value.contains("billing")
        && ["upgrade", "credits", "payment", "plan"]
            .iter()
            .any(|w| value.contains(w))
}

/// Tool-call id / request-shape errors (named after Cloud Code Assist, where they first showed).
pub fn is_cloud_code_assist_format_error(raw: &str) -> bool {
    !is_image_dimension_error_message(raw) && matches_any(raw, &TABLE.format)
}

/// `classifyFailoverReason`: image-limit errors are never failover-worthy; then rate limit,
/// overload (also `rate_limit`), format, billing, timeout, auth — first hit wins.
pub fn classify_failover_reason(raw: &str) -> Option<FailoverReason> {
    if is_image_dimension_error_message(raw) || is_image_size_error(raw) {
        return None;
    }
    if is_rate_limit_error_message(raw) || is_overloaded_error_message(raw) {
        return Some(FailoverReason::RateLimit);
    }
    if is_cloud_code_assist_format_error(raw) {
        return Some(FailoverReason::Format);
    }
    if is_billing_error_message(raw) {
        return Some(FailoverReason::Billing);
    }
    if is_timeout_error_message(raw) {
        return Some(FailoverReason::Timeout);
    }
    if is_auth_error_message(raw) {
        return Some(FailoverReason::Auth);
    }
    None
}

pub fn is_failover_error_message(raw: &str) -> bool {
    classify_failover_reason(raw).is_some()
}

/// Parsed `image dimensions exceed max allowed size ...` error.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDimensionError {
    pub max_dimension_px: Option<u64>,
    pub message_index: Option<u64>,
    pub content_index: Option<u64>,
}

static IMAGE_DIMENSION_ERROR_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::fixed(
        r"image dimensions exceed max allowed size for many-image requests:\s*(\d+)\s*pixels",
        "i",
    )
});
static IMAGE_DIMENSION_PATH_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::fixed(r"messages\.(\d+)\.content\.(\d+)\.image", "i"));
static IMAGE_SIZE_ERROR_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::fixed(r"image exceeds\s*(\d+(?:\.\d+)?)\s*mb", "i"));

fn group_u64(re: &Regex, raw: &str, i: usize) -> Option<u64> {
    re.captures(raw)?.get(i)?.parse().ok()
}

pub fn parse_image_dimension_error(raw: &str) -> Option<ImageDimensionError> {
    if !raw
        .to_lowercase()
        .contains("image dimensions exceed max allowed size")
    {
        return None;
    }
    Some(ImageDimensionError {
        max_dimension_px: group_u64(&IMAGE_DIMENSION_ERROR_RE, raw, 1),
        message_index: group_u64(&IMAGE_DIMENSION_PATH_RE, raw, 1),
        content_index: group_u64(&IMAGE_DIMENSION_PATH_RE, raw, 2),
    })
}

pub fn is_image_dimension_error_message(raw: &str) -> bool {
    parse_image_dimension_error(raw).is_some()
}

/// `image exceeds N MB`: `Some(max_mb)` (inner `None` when no number could be read).
pub fn parse_image_size_error(raw: &str) -> Option<Option<f64>> {
    let lower = raw.to_lowercase();
    if !lower.contains("image exceeds") || !lower.contains("mb") {
        return None;
    }
    let max_mb = IMAGE_SIZE_ERROR_RE
        .captures(raw)
        .and_then(|c| c.get(1).and_then(|s| s.parse().ok()));
    Some(max_mb)
}

pub fn is_image_size_error(raw: &str) -> bool {
    parse_image_size_error(raw).is_some()
}

/// Moltbot's overflow test (`isContextOverflowError`): substring checks only.
pub fn is_context_overflow_error(raw: &str) -> bool {
    let lower = raw.to_lowercase();
    let has = |s: &str| lower.contains(s);
    let context_window =
        has("context window") || has("context length") || has("maximum context length");
    has("request_too_large")
        || has("request exceeds the maximum size")
        || has("context length exceeded")
        || has("maximum context length")
        || has("prompt is too long")
        || has("exceeds model context window")
        || (has("request size exceeds") && context_window)
        || has("context overflow")
        || (has("413") && has("too large"))
}

static CONTEXT_WINDOW_TOO_SMALL_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::fixed("context window.*(too small|minimum is)", "i"));
static CONTEXT_OVERFLOW_HINT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::fixed(
        r"context.*overflow|context window.*(too (?:large|long)|exceed|over|limit|max(?:imum)?|requested|sent|tokens)|(?:prompt|request|input).*(too (?:large|long)|exceed|over|limit|max(?:imum)?)",
        "i",
    )
});

/// The looser test the reply layer uses on thrown errors (`isLikelyContextOverflowError`).
pub fn is_likely_context_overflow_error(raw: &str) -> bool {
    if raw.is_empty() || CONTEXT_WINDOW_TOO_SMALL_RE.is_match(raw) {
        return false;
    }
    is_context_overflow_error(raw) || CONTEXT_OVERFLOW_HINT_RE.is_match(raw)
}

/// An overflow raised by compaction itself (no second compaction is tried).
pub fn is_compaction_failure_error(raw: &str) -> bool {
    if !is_context_overflow_error(raw) {
        return false;
    }
    let lower = raw.to_lowercase();
    [
        "summarization failed",
        "auto-compaction",
        "compaction failed",
        "compaction",
    ]
    .iter()
    .any(|s| lower.contains(s))
}

static ROLE_ORDERING_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::fixed("incorrect role information|roles must alternate", "i"));
static SESSION_CORRUPTION_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::fixed("function call turn comes immediately after", "i"));

/// `roles must alternate` / `incorrect role information`: the reply layer resets the session.
pub fn is_role_ordering_error(raw: &str) -> bool {
    ROLE_ORDERING_RE.is_match(raw)
}

/// Gemini's function-call ordering error: the reply layer deletes the session.
pub fn is_session_corruption_error(raw: &str) -> bool {
    SESSION_CORRUPTION_RE.is_match(raw)
}

/// pi-ai's `OVERFLOW_PATTERNS` (`utils/overflow.js`), used by pi's auto-retry to leave
/// overflows to compaction.
static PI_OVERFLOW_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        "prompt is too long",
        "input is too long for requested model",
        "exceeds the context window",
        "input token count.*exceeds the maximum",
        r"maximum prompt length is \d+",
        "reduce the length of the messages",
        r"maximum context length is \d+ tokens",
        r"exceeds the limit of \d+",
        "exceeds the available context size",
        "greater than the context length",
        "context window exceeds limit",
        "context[_ ]length[_ ]exceeded",
        "too many tokens",
        "token limit exceeded",
        r"^4(00|13|29)\s*(status code)?\s*\(no body\)",
    ]
    .iter()
    .map(|p| Regex::fixed(p, "i"))
    .collect()
});

/// pi-ai's `isContextOverflow` for an errored assistant message (`stopReason: "error"`). A
/// bodiless `429 status code (no body)` counts as overflow, as there. The silent-overflow case
/// (`usage.input + cacheRead > contextWindow` on a successful reply) is [`is_silent_overflow`].
pub fn is_pi_context_overflow(error_message: &str) -> bool {
    !error_message.is_empty()
        && PI_OVERFLOW_PATTERNS
            .iter()
            .any(|r| r.is_match(error_message))
}

/// The z.ai-style overflow a provider accepts silently.
pub fn is_silent_overflow(input_tokens: u64, cache_read: u64, context_window: u64) -> bool {
    context_window > 0 && input_tokens + cache_read > context_window
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailoverReason::*;

    #[test]
    fn first_hit_wins_across_classes() {
        // "429" is rate limit even though "payment required" (billing) is also present.
        assert_eq!(
            classify_failover_reason("429 payment required"),
            Some(RateLimit)
        );
        // Overload outranks auth words.
        assert_eq!(
            classify_failover_reason("overloaded; unauthorized"),
            Some(RateLimit)
        );
        // Format outranks billing and timeout.
        assert_eq!(
            classify_failover_reason("tool_use_id timeout"),
            Some(Format)
        );
        assert_eq!(classify_failover_reason("billing timeout"), Some(Timeout));
        assert_eq!(
            classify_failover_reason("request timed out, token expired"),
            Some(Timeout)
        );
    }

    #[test]
    fn word_bounded_status_codes() {
        assert_eq!(classify_failover_reason("HTTP 402"), Some(Billing));
        assert_eq!(classify_failover_reason("error 4020"), None);
        assert_eq!(classify_failover_reason("status 401"), Some(Auth));
        assert_eq!(classify_failover_reason("id 14030"), None);
    }

    #[test]
    fn anthropic_wire_shapes_classify() {
        let r429 = r#"429 {"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_test429"}"#;
        assert_eq!(classify_failover_reason(r429), Some(RateLimit));
        let r529 =
            r#"529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(classify_failover_reason(r529), Some(RateLimit));
        let r401 = r#"401 {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(classify_failover_reason(r401), Some(Auth));
        assert_eq!(classify_failover_reason("Connection error."), None);
        assert_eq!(classify_failover_reason("request timed out"), Some(Timeout));
    }

    #[test]
    fn pi_overflow_includes_bodiless_429() {
        assert!(is_pi_context_overflow("429 status code (no body)"));
        assert!(is_pi_context_overflow(
            "prompt is too long: 210000 tokens > 200000 maximum"
        ));
        assert!(!is_pi_context_overflow("429 Rate limit reached"));
        assert!(is_silent_overflow(190_000, 20_000, 200_000));
    }

    #[test]
    fn reason_round_trips() {
        for r in [Auth, Format, RateLimit, Billing, Timeout, Unknown] {
            assert_eq!(FailoverReason::parse(r.as_str()), Some(r));
        }
    }
}
