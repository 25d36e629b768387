//! The error a model attempt produces and its coercion into a failover reason
//! (`failover-error.ts`): existing reason → HTTP status → node error code → timeout shape →
//! message classifier. Also the fixed failure texts run.ts builds.

use std::fmt;

use super::classify::{self, FailoverReason};

/// What kind of error a run produced, mirroring the JavaScript error names upstream tests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A plain `Error`.
    Plain,
    /// `AbortError`: a user abort unless its message, cause or reason says timeout.
    Abort,
    /// `TimeoutError` (the run's own deadline).
    Timeout,
    /// A `FailoverError` carrying its reason.
    Failover(FailoverReason),
}

/// An error out of one model attempt (or out of the whole fallback loop).
#[derive(Debug, Clone, PartialEq)]
pub struct RunError {
    pub kind: ErrorKind,
    pub message: String,
    /// HTTP status, when the error came from a response.
    pub status: Option<u16>,
    /// Node-style error code (`ETIMEDOUT`, `ECONNRESET`, ...).
    pub code: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub profile_id: Option<String>,
    /// The abort signal's reason, as text.
    pub abort_reason: Option<String>,
    pub cause: Option<Box<RunError>>,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunError {}

impl RunError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> RunError {
        RunError {
            kind,
            message: message.into(),
            status: None,
            code: None,
            provider: None,
            model: None,
            profile_id: None,
            abort_reason: None,
            cause: None,
        }
    }

    pub fn plain(message: impl Into<String>) -> RunError {
        RunError::new(ErrorKind::Plain, message)
    }

    pub fn abort(message: impl Into<String>) -> RunError {
        RunError::new(ErrorKind::Abort, message)
    }

    pub fn timeout(message: impl Into<String>) -> RunError {
        RunError::new(ErrorKind::Timeout, message)
    }

    pub fn failover(message: impl Into<String>, reason: FailoverReason) -> RunError {
        RunError::new(ErrorKind::Failover(reason), message)
    }

    pub fn with_status(mut self, status: u16) -> RunError {
        self.status = Some(status);
        self
    }

    pub fn with_code(mut self, code: &str) -> RunError {
        let trimmed = code.trim();
        self.code = (!trimmed.is_empty()).then(|| trimmed.to_string());
        self
    }

    pub fn with_cause(mut self, cause: RunError) -> RunError {
        self.cause = Some(Box::new(cause));
        self
    }

    pub fn with_abort_reason(mut self, reason: impl Into<String>) -> RunError {
        self.abort_reason = Some(reason.into());
        self
    }

    pub fn with_context(
        mut self,
        provider: &str,
        model: &str,
        profile_id: Option<&str>,
    ) -> RunError {
        self.provider = Some(provider.to_string());
        self.model = Some(model.to_string());
        self.profile_id = profile_id.map(str::to_string);
        self
    }

    pub fn failover_reason(&self) -> Option<FailoverReason> {
        match self.kind {
            ErrorKind::Failover(r) => Some(r),
            _ => None,
        }
    }
}

/// The HTTP status a coerced failover error reports for its reason.
pub fn resolve_failover_status(reason: FailoverReason) -> Option<u16> {
    match reason {
        FailoverReason::Billing => Some(402),
        FailoverReason::RateLimit => Some(429),
        FailoverReason::Auth => Some(401),
        FailoverReason::Timeout => Some(408),
        FailoverReason::Format => Some(400),
        FailoverReason::Unknown => None,
    }
}

fn has_timeout_hint(err: &RunError) -> bool {
    err.kind == ErrorKind::Timeout || text_has_timeout_hint(&err.message)
}

fn text_has_timeout_hint(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "timeout",
        "timed out",
        "deadline exceeded",
        "context deadline exceeded",
    ]
    .iter()
    .any(|h| lower.contains(h))
}

/// `isTimeoutError`: a timeout hint, or an abort whose message/cause/reason says timeout.
pub fn is_timeout_error(err: &RunError) -> bool {
    if has_timeout_hint(err) {
        return true;
    }
    if err.kind != ErrorKind::Abort {
        return false;
    }
    let lower = err.message.to_lowercase();
    if lower.contains("request was aborted") || lower.contains("request aborted") {
        return true;
    }
    err.cause.as_deref().is_some_and(has_timeout_hint)
        || err
            .abort_reason
            .as_deref()
            .is_some_and(text_has_timeout_hint)
}

/// An abort that is not a timeout: the user stopped the run, so nothing else is tried.
pub fn is_user_abort(err: &RunError) -> bool {
    err.kind == ErrorKind::Abort && !is_timeout_error(err)
}

/// `resolveFailoverReasonFromError`: existing reason, then status, then error code, then
/// timeout shape, then the message classifier.
pub fn resolve_failover_reason_from_error(err: &RunError) -> Option<FailoverReason> {
    if let Some(r) = err.failover_reason() {
        return Some(r);
    }
    match err.status {
        Some(402) => return Some(FailoverReason::Billing),
        Some(429) => return Some(FailoverReason::RateLimit),
        Some(401 | 403) => return Some(FailoverReason::Auth),
        Some(408) => return Some(FailoverReason::Timeout),
        _ => {}
    }
    let code = err.code.as_deref().unwrap_or("").to_ascii_uppercase();
    if ["ETIMEDOUT", "ESOCKETTIMEDOUT", "ECONNRESET", "ECONNABORTED"].contains(&code.as_str()) {
        return Some(FailoverReason::Timeout);
    }
    if is_timeout_error(err) {
        return Some(FailoverReason::Timeout);
    }
    if err.message.is_empty() {
        return None;
    }
    classify::classify_failover_reason(&err.message)
}

/// `coerceToFailoverError`: `None` when the error is not failover-worthy.
pub fn coerce_to_failover_error(
    err: &RunError,
    provider: Option<&str>,
    model: Option<&str>,
    profile_id: Option<&str>,
) -> Option<RunError> {
    if err.failover_reason().is_some() {
        return Some(err.clone());
    }
    let reason = resolve_failover_reason_from_error(err)?;
    let mut out = RunError::failover(err.message.clone(), reason);
    out.status = err.status.or_else(|| resolve_failover_status(reason));
    out.code = err.code.clone();
    out.provider = provider.map(str::to_string);
    out.model = model.map(str::to_string);
    out.profile_id = profile_id.map(str::to_string);
    out.cause = Some(Box::new(err.clone()));
    Some(out)
}

/// `FailoverError("Model context window too small (<n> tokens). Minimum is 16000.")`.
pub fn context_window_too_small_error(tokens: u64, provider: &str, model: &str) -> RunError {
    RunError::failover(
        format!(
            "Model context window too small ({tokens} tokens). Minimum is {}.",
            crate::agent::models::CONTEXT_WINDOW_HARD_MIN_TOKENS
        ),
        FailoverReason::Unknown,
    )
    .with_context(provider, model, None)
}

/// The message run.ts uses when no auth profile of `provider` can be used.
pub fn no_available_profile_message(provider: &str) -> String {
    format!("No available auth profile for {provider} (all in cooldown or unavailable).")
}

/// run.ts's fallback message for a failover-worthy assistant error without error text.
pub fn assistant_failure_fallback_text(
    timed_out: bool,
    rate_limited: bool,
    unauthorized: bool,
) -> &'static str {
    if timed_out {
        "LLM request timed out."
    } else if rate_limited {
        "LLM request rate limited."
    } else if unauthorized {
        "LLM request unauthorized."
    } else {
        "LLM request failed."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion_keeps_metadata() {
        let err = coerce_to_failover_error(
            &RunError::plain("credit balance too low"),
            Some("anthropic"),
            Some("claude-opus-4-5"),
            None,
        )
        .unwrap();
        assert_eq!(err.failover_reason(), Some(FailoverReason::Billing));
        assert_eq!(err.status, Some(402));
        assert_eq!(err.provider.as_deref(), Some("anthropic"));
        let fmt =
            coerce_to_failover_error(&RunError::plain("invalid request format"), None, None, None)
                .unwrap();
        assert_eq!(
            (fmt.failover_reason(), fmt.status),
            (Some(FailoverReason::Format), Some(400))
        );
        assert!(coerce_to_failover_error(&RunError::plain("123"), None, None, None).is_none());
    }

    #[test]
    fn timeouts_versus_user_aborts() {
        assert!(is_user_abort(&RunError::abort("aborted")));
        assert!(!is_user_abort(&RunError::abort("Request was aborted")));
        assert!(!is_user_abort(
            &RunError::abort("aborted").with_abort_reason("deadline exceeded")
        ));
        assert!(!is_user_abort(
            &RunError::abort("aborted").with_cause(RunError::timeout("x"))
        ));
        assert!(!is_user_abort(&RunError::plain("aborted")));
    }

    #[test]
    fn unknown_reason_has_no_status() {
        let e = context_window_too_small_error(8000, "openrouter", "tiny");
        assert_eq!(
            e.message,
            "Model context window too small (8000 tokens). Minimum is 16000."
        );
        assert_eq!(e.failover_reason(), Some(FailoverReason::Unknown));
        assert_eq!(resolve_failover_status(FailoverReason::Unknown), None);
    }
}
