//! The two low retry layers as data (spec agents.md §1.8): the SDK layer (Anthropic/OpenAI SDK
//! `maxRetries` 2 with 0.5 s·2^n ≤ 8 s backoff or a short `retry-after`) and pi's session
//! auto-retry (3 retries, 2 s/4 s/8 s, on transient error texts). The two upper layers (auth
//! profile rotation, model fallback) are one pass each and live in `auth` and `failover`.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde_json::Value;

use super::classify::is_pi_context_overflow;
use super::pattern::Regex;

/// SDK-level retry policy for one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SdkRetry {
    pub max_retries: u32,
    pub initial_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A `retry-after`/`retry-after-ms` below this is obeyed; anything else uses the backoff.
    pub retry_after_cap_ms: u64,
}

impl Default for SdkRetry {
    fn default() -> Self {
        SdkRetry {
            max_retries: 2,
            initial_delay_ms: 500,
            max_delay_ms: 8000,
            retry_after_cap_ms: 60_000,
        }
    }
}

impl SdkRetry {
    /// `shouldRetry`: `x-should-retry` wins; else 408, 409, 429 and ≥ 500. Connection errors
    /// (no status) are retried too.
    pub fn should_retry(status: Option<u16>, x_should_retry: Option<&str>) -> bool {
        match x_should_retry {
            Some("true") => return true,
            Some("false") => return false,
            _ => {}
        }
        match status {
            None => true,
            Some(s) => matches!(s, 408 | 409 | 429) || s >= 500,
        }
    }

    /// Delay before retry number `retry` (0-based). `jitter` in [0, 1) takes up to 25 % off the
    /// backoff, as the SDK's `1 - random * 0.25`. Header values are the raw strings.
    pub fn delay_ms(
        &self,
        retry: u32,
        retry_after_ms: Option<&str>,
        retry_after: Option<&str>,
        now_ms: u64,
        jitter: f64,
    ) -> u64 {
        if let Some(ms) = header_delay_ms(retry_after_ms, retry_after, now_ms) {
            // JavaScript's `timeoutMillis && 0 <= t < 60000`: zero falls through to the backoff.
            if ms > 0.0 && ms < self.retry_after_cap_ms as f64 {
                return ms as u64;
            }
        }
        let base = self.initial_delay_ms as f64 * 2f64.powi(retry as i32);
        let secs = base.min(self.max_delay_ms as f64);
        (secs * (1.0 - jitter.clamp(0.0, 1.0) * 0.25)) as u64
    }
}

fn header_delay_ms(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now_ms: u64,
) -> Option<f64> {
    if let Some(ms) = retry_after_ms.and_then(parse_float_prefix) {
        if ms != 0.0 {
            return Some(ms);
        }
    }
    let raw = retry_after?;
    match parse_float_prefix(raw) {
        Some(secs) => Some(secs * 1000.0),
        None => http_date_ms(raw).map(|t| t as f64 - now_ms as f64),
    }
}

/// JavaScript `parseFloat`: the longest numeric prefix after leading white space.
fn parse_float_prefix(raw: &str) -> Option<f64> {
    let s = raw.trim_start();
    let end = s
        .char_indices()
        .take_while(|(i, c)| {
            c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))
        })
        .map(|(i, c)| i + c.len_utf8())
        .last()?;
    s[..end].parse().ok()
}

/// IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`) to Unix ms; other date forms are ignored.
fn http_date_ms(raw: &str) -> Option<u64> {
    let parts: Vec<&str> = raw.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, mi, s] = hms.as_slice() else {
        return None;
    };
    let days = days_from_civil(y, month, d);
    u64::try_from(((days * 86_400) + h * 3600 + mi * 60 + s) * 1000).ok()
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// pi's session auto-retry settings (`retry` in `<agentDir>/settings.json`, then
/// `<workspace>/.pi/settings.json` merged over it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionRetry {
    pub enabled: bool,
    pub max_retries: u32,
    pub base_delay_ms: u64,
}

impl Default for SessionRetry {
    fn default() -> Self {
        SessionRetry {
            enabled: true,
            max_retries: 3,
            base_delay_ms: 2000,
        }
    }
}

static PI_RETRYABLE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::fixed(
        r"overloaded|rate.?limit|too many requests|429|500|502|503|504|service.?unavailable|server error|internal error|connection.?error|connection.?refused|other side closed|fetch failed|upstream.?connect|reset before headers",
        "i",
    )
});

impl SessionRetry {
    /// Reads both settings files; unreadable or malformed files count as absent.
    pub fn load(agent_dir: &Path, workspace: &Path) -> SessionRetry {
        let global = read_retry_block(&agent_dir.join("settings.json"));
        let project = read_retry_block(&workspace.join(".pi").join("settings.json"));
        let mut merged = global.unwrap_or_default();
        if let Some(Value::Object(p)) = project {
            match &mut merged {
                Value::Object(g) => g.extend(p),
                other => *other = Value::Object(p),
            }
        }
        SessionRetry::from_block(&merged)
    }

    fn from_block(block: &Value) -> SessionRetry {
        let d = SessionRetry::default();
        SessionRetry {
            enabled: block
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(d.enabled),
            max_retries: block
                .get("maxRetries")
                .and_then(Value::as_f64)
                .map_or(d.max_retries, |n| n.max(0.0) as u32),
            base_delay_ms: block
                .get("baseDelayMs")
                .and_then(Value::as_f64)
                .map_or(d.base_delay_ms, |n| n.max(0.0) as u64),
        }
    }

    /// `_isRetryableError`: a transient-looking error text that is not a context overflow.
    pub fn is_retryable(error_message: &str) -> bool {
        !error_message.is_empty()
            && !is_pi_context_overflow(error_message)
            && PI_RETRYABLE_RE.is_match(error_message)
    }

    /// Delay before retry `attempt` (1-based): `baseDelayMs × 2^(attempt−1)`; `None` once the
    /// retries are used up or retry is disabled.
    pub fn delay_ms(&self, attempt: u32) -> Option<u64> {
        if !self.enabled || attempt == 0 || attempt > self.max_retries {
            return None;
        }
        Some(
            self.base_delay_ms
                .saturating_mul(1u64 << (attempt - 1).min(62)),
        )
    }
}

fn read_retry_block(path: &Path) -> Option<Value> {
    let raw = std::fs::read_to_string(path).ok()?;
    let parsed: Value = serde_json::from_str(&raw).ok()?;
    parsed.get("retry").cloned()
}

/// The retry counts of all four layers, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryLayers {
    pub sdk: SdkRetry,
    session: OnceCell<SessionRetry>,
    /// The agent dir and the workspace, whose settings files `session` is read from.
    settings: Option<(PathBuf, PathBuf)>,
}

impl RetryLayers {
    /// The session layer is read from both settings files when a transient error first
    /// needs it: a turn that never retries opens neither.
    pub fn new(sdk: SdkRetry, agent_dir: &Path, workspace: &Path) -> RetryLayers {
        RetryLayers {
            sdk,
            session: OnceCell::new(),
            settings: Some((agent_dir.to_path_buf(), workspace.to_path_buf())),
        }
    }

    pub fn with_session(sdk: SdkRetry, session: SessionRetry) -> RetryLayers {
        RetryLayers {
            sdk,
            session: OnceCell::from(session),
            settings: None,
        }
    }

    pub fn session(&self) -> &SessionRetry {
        self.session.get_or_init(|| match &self.settings {
            Some((agent_dir, workspace)) => SessionRetry::load(agent_dir, workspace),
            None => SessionRetry::default(),
        })
    }

    /// HTTP requests one prompt may cost against a provider that always fails retryably,
    /// per auth profile tried: (1 + SDK retries) × (1 + session retries).
    pub fn requests_per_profile(&self, server_allows_sdk_retry: bool) -> u32 {
        let sdk = if server_allows_sdk_retry {
            self.sdk.max_retries
        } else {
            0
        };
        let session = if self.session().enabled {
            self.session().max_retries
        } else {
            0
        };
        (1 + sdk) * (1 + session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_retry_rules() {
        assert!(SdkRetry::should_retry(Some(429), None));
        assert!(SdkRetry::should_retry(Some(529), None));
        assert!(SdkRetry::should_retry(None, None));
        assert!(!SdkRetry::should_retry(Some(400), None));
        assert!(!SdkRetry::should_retry(Some(429), Some("false")));
        assert!(SdkRetry::should_retry(Some(400), Some("true")));
    }

    #[test]
    fn sdk_delays() {
        let s = SdkRetry::default();
        assert_eq!(s.delay_ms(0, None, None, 0, 0.0), 500);
        assert_eq!(s.delay_ms(1, None, None, 0, 0.0), 1000);
        assert_eq!(s.delay_ms(5, None, None, 0, 0.0), 8000);
        assert_eq!(s.delay_ms(0, None, None, 0, 1.0), 375);
        assert_eq!(s.delay_ms(0, None, Some("2"), 0, 0.0), 2000);
        assert_eq!(s.delay_ms(0, Some("150"), Some("2"), 0, 0.0), 150);
        // `retry-after: 0` and values ≥ 60 s fall back to the backoff.
        assert_eq!(s.delay_ms(0, None, Some("0"), 0, 0.0), 500);
        assert_eq!(s.delay_ms(0, None, Some("120"), 0, 0.0), 500);
        let date = "Thu, 01 Jan 1970 00:00:05 GMT";
        assert_eq!(s.delay_ms(0, None, Some(date), 1000, 0.0), 4000);
    }

    #[test]
    fn session_retry_matches_pi() {
        let r = SessionRetry::default();
        assert_eq!(
            (r.delay_ms(1), r.delay_ms(2), r.delay_ms(3), r.delay_ms(4)),
            (Some(2000), Some(4000), Some(8000), None)
        );
        assert!(SessionRetry::is_retryable(
            r#"529 {"type":"error","error":{"type":"overloaded_error"}}"#
        ));
        assert!(SessionRetry::is_retryable("Connection error."));
        assert!(!SessionRetry::is_retryable("429 status code (no body)"));
        assert!(!SessionRetry::is_retryable("401 invalid x-api-key"));
    }

    #[test]
    fn settings_files_merge_project_over_global() {
        let dir = std::env::temp_dir().join(format!("mb-retry-{}", crate::util::uuid_v4()));
        let (agent, ws) = (dir.join("agent"), dir.join("ws"));
        std::fs::create_dir_all(ws.join(".pi")).unwrap();
        std::fs::create_dir_all(&agent).unwrap();
        std::fs::write(
            agent.join("settings.json"),
            r#"{"retry":{"maxRetries":1,"baseDelayMs":10}}"#,
        )
        .unwrap();
        std::fs::write(
            ws.join(".pi/settings.json"),
            r#"{"retry":{"enabled":false}}"#,
        )
        .unwrap();
        let r = SessionRetry::load(&agent, &ws);
        assert_eq!(
            r,
            SessionRetry {
                enabled: false,
                max_retries: 1,
                base_delay_ms: 10
            }
        );
        let layers = RetryLayers::with_session(SdkRetry::default(), SessionRetry::default());
        assert_eq!(layers.requests_per_profile(true), 12);
        assert_eq!(layers.requests_per_profile(false), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
