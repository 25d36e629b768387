//! The `pi-embedded-helpers` classifier tests and the user-facing error texts.

use super::*;

// ---- pi-embedded-helpers classifier tests ---------------------------------------------------

#[test]
fn classify_failover_reason_table() {
    use FailoverReason::*;
    let cases: [(&str, Option<FailoverReason>); 16] = [
        ("invalid api key", Some(Auth)),
        ("no credentials found", Some(Auth)),
        ("no api key found", Some(Auth)),
        ("429 too many requests", Some(RateLimit)),
        ("resource has been exhausted", Some(RateLimit)),
        (r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, Some(RateLimit)),
        ("invalid request format", Some(Format)),
        ("credit balance too low", Some(Billing)),
        ("deadline exceeded", Some(Timeout)),
        ("string should match pattern", Some(Format)),
        ("bad request", None),
        ("messages.84.content.1.image.source.base64.data: At least one of the image dimensions exceed max allowed size for many-image requests: 2000 pixels", None),
        ("image exceeds 5 MB maximum", None),
        ("You have hit your ChatGPT usage limit (plus plan)", Some(RateLimit)),
        ("500 Internal Server Error", None),
        ("Service Unavailable", None),
    ];
    for (raw, want) in cases {
        assert_eq!(classify_failover_reason(raw), want, "{raw}");
    }
}

#[test]
fn failover_message_detectors() {
    for s in [
        "invalid api key",
        "429 rate limit exceeded",
        "Your credit balance is too low",
        "request timed out",
        "invalid request format",
    ] {
        assert!(is_failover_error_message(s), "{s}");
    }
    for s in ["No credentials found for profile \"anthropic:default\".", "No API key found for profile openai.", "OAuth token refresh failed for anthropic: Failed to refresh OAuth token for anthropic. Please try again or re-authenticate.", "Please re-authenticate to continue."] {
        assert!(is_auth_error_message(s), "{s}");
    }
    assert!(
        !is_auth_error_message("rate limit exceeded")
            && !is_auth_error_message("billing issue detected")
    );
    for s in [
        "Your credit balance is too low to access the Anthropic API.",
        "insufficient credits",
        "Payment Required",
        "HTTP 402 Payment Required",
        "plans & billing",
        "billing: please upgrade your plan",
    ] {
        assert!(is_billing_error_message(s), "{s}");
    }
    for s in [
        "rate limit exceeded",
        "invalid api key",
        "context length exceeded",
    ] {
        assert!(!is_billing_error_message(s), "{s}");
    }
    for s in [
        "INVALID_REQUEST_ERROR: string should match pattern",
        "messages.1.content.1.tool_use.id",
        "tool_use.id should match pattern",
        "invalid request format",
    ] {
        assert!(is_cloud_code_assist_format_error(s), "{s}");
    }
    assert!(!is_cloud_code_assist_format_error("rate limit exceeded"));
}

#[test]
fn image_errors_parse() {
    let raw = r#"400 {"type":"error","error":{"type":"invalid_request_error","message":"messages.84.content.1.image.source.base64.data: At least one of the image dimensions exceed max allowed size for many-image requests: 2000 pixels"}}"#;
    let p = parse_image_dimension_error(raw).unwrap();
    assert_eq!(
        (p.max_dimension_px, p.message_index, p.content_index),
        (Some(2000), Some(84), Some(1))
    );
    assert!(is_image_dimension_error_message(raw) && !is_cloud_code_assist_format_error(raw));
    assert_eq!(
        parse_image_size_error("image exceeds 5 MB maximum"),
        Some(Some(5.0))
    );
    assert_eq!(
        parse_image_size_error("Image exceeds 5.5 MB limit"),
        Some(Some(5.5))
    );
    assert_eq!(parse_image_size_error("context overflow"), None);
}

#[test]
fn context_overflow_detection() {
    for s in [
        "request_too_large",
        "Request exceeds the maximum size",
        "context length exceeded",
        "Maximum context length",
        "prompt is too long: 208423 tokens > 200000 maximum",
        "Context overflow: Summarization failed",
        "413 Request Entity Too Large",
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"Request size exceeds model context window"}}"#,
        "request size exceeds model context window",
        "The request size exceeds model context window limit",
    ] {
        assert!(is_context_overflow_error(s), "{s}");
    }
    for s in [
        "rate limit exceeded",
        "request size exceeds upload limit",
        "model not found",
        "authentication failed",
    ] {
        assert!(!is_context_overflow_error(s), "{s}");
    }
    for s in [
        "Model context window is 128k tokens, you requested 256k tokens",
        "Context window exceeded: requested 12000 tokens",
        "Prompt too large for this model",
    ] {
        assert!(is_likely_context_overflow_error(s), "{s}");
    }
    for s in [
        "Model context window too small (minimum is 128k tokens)",
        "Context window too small: minimum is 1000 tokens",
    ] {
        assert!(!is_likely_context_overflow_error(s), "{s}");
    }
    for s in [
        r#"Context overflow: Summarization failed: 400 {"message":"prompt is too long"}"#,
        "auto-compaction failed due to context overflow",
        "Compaction failed: prompt is too long",
    ] {
        assert!(is_compaction_failure_error(s), "{s}");
    }
    assert!(
        !is_compaction_failure_error("Context overflow: prompt too large")
            && !is_compaction_failure_error("rate limit exceeded")
    );
}

// ---- user-facing texts ----------------------------------------------------------------------

#[test]
fn format_assistant_error_texts() {
    let f = |raw: &str| format_user_error(UserError::Assistant(raw));
    assert!(f("request_too_large").contains("Context overflow"));
    assert!(f(r#"{"type":"error","error":{"type":"invalid_request_error","message":"Request size exceeds model context window"}}"#).contains("Context overflow"));
    assert!(
        f(r#"messages: roles must alternate between "user" and "assistant""#)
            .contains("Message ordering conflict")
    );
    assert_eq!(
        f(
            r#"{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"},"request_id":"req_123"}"#
        ),
        "The AI service is temporarily overloaded. Please try again in a moment."
    );
    let role = f(r#"{"error":{"message":"400 Incorrect role information"}}"#);
    assert!(role.contains("Message ordering conflict") && !role.contains("400"));
    assert_eq!(
        f(r#"{"type":"error","error":{"message":"Something exploded","type":"server_error"}}"#),
        "LLM error server_error: Something exploded"
    );
}

#[test]
fn format_raw_errors_for_ui() {
    let t = format_raw_assistant_error_for_ui(
        r#"429 {"type":"error","error":{"type":"rate_limit_error","message":"Rate limited."},"request_id":"req_123"}"#,
    );
    assert_eq!(
        t,
        "HTTP 429 rate_limit_error: Rate limited. (request_id: req_123)"
    );
    assert!(format_raw_assistant_error_for_ui("").contains("unknown error"));
    assert_eq!(
        format_raw_assistant_error_for_ui("500 Internal Server Error"),
        "HTTP 500: Internal Server Error"
    );
}

#[test]
fn sanitize_user_facing_texts() {
    assert_eq!(sanitize_user_facing_text("<final>Hello</final>"), "Hello");
    assert_eq!(
        sanitize_user_facing_text("Hi <final>there</final>!"),
        "Hi there!"
    );
    assert_eq!(
        sanitize_user_facing_text("202 results found"),
        "202 results found"
    );
    assert_eq!(sanitize_user_facing_text("400 days left"), "400 days left");
    assert!(sanitize_user_facing_text("400 Incorrect role information")
        .contains("Message ordering conflict"));
    assert_eq!(
        sanitize_user_facing_text("500 Internal Server Error"),
        "HTTP 500: Internal Server Error"
    );
    assert_eq!(
        sanitize_user_facing_text(
            r#"{"type":"error","error":{"message":"Something exploded","type":"server_error"}}"#
        ),
        "LLM error server_error: Something exploded"
    );
    assert_eq!(
        sanitize_user_facing_text("Hello there!\n\nHello there!"),
        "Hello there!"
    );
    assert_eq!(
        sanitize_user_facing_text("Hello there!\n\nDifferent line."),
        "Hello there!\n\nDifferent line."
    );
}

#[test]
fn all_candidates_failed_reaches_the_user_as_agent_failed() {
    let cfg = fallback_cfg();
    let (out, _) = run_fallback(&cfg, "openai", "gpt-4.1-mini", None, None, |_, _, _| {
        Err(RunError::plain("Connection error.").with_code("ECONNRESET"))
    });
    let err = out.unwrap_err();
    assert_eq!(
        format_user_error(UserError::Thrown(&err.message)),
        "⚠️ Agent failed before reply: All models failed (2): openai/gpt-4.1-mini: Connection error. (timeout) | anthropic/claude-haiku-3-5: Connection error. (timeout).\nLogs: moltbot logs --follow"
    );
}
