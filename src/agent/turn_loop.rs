//! The inner loop of one attempt (one model, one credential), as pi runs it (agents.md §3.4,
//! §1.8, §4.3): stream an assistant message, run its tool calls in order, stream again until a
//! message has no tool calls; the SDK and session retry layers around each stream; one
//! compaction and retry when the provider reports a context overflow.

use serde_json::Value;
use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::agent::failover::classify::is_context_overflow_error;
use crate::agent::failover::retry::{RetryLayers, SdkRetry, SessionRetry};
use crate::agent::models::registry::Cost;
use crate::agent::providers::{self, Api, ErrorKind, ProviderError, Request, StreamEvent};
use crate::agent::tools::{self, ToolContext, ToolSet};
use crate::agent::transcript::{HistoryPolicy, Transcript};
use crate::agent::turn::{Steered, TurnInput, TurnUpdate};

/// What one attempt needs beyond the turn's input.
pub struct Attempt<'a> {
    pub input: &'a TurnInput,
    /// The request without messages (system prompt, tools, model, credential).
    pub template: Request,
    pub policy: HistoryPolicy,
    pub tools: &'a ToolSet,
    pub retry: RetryLayers,
    /// USD per million tokens, for the message's `usage.cost`.
    pub cost: Cost,
}

/// The run's progress. The prompt is written when the run starts (as pi appends it before
/// streaming; a new session's file appears with its first answer). Steered messages stay
/// `pending` until a provider accepts them, then are written. Later attempts (other profiles,
/// fallback models) continue from the transcript.
pub struct RunState {
    pub pending: Vec<Value>,
    /// Reply text of earlier assistant messages in this run (a tool loop has several).
    pub texts: Vec<String>,
    pub compactions: u32,
    /// Steered messages taken from the inbox, to become the next user turn.
    pub steered: Vec<Steered>,
    /// Bookkeeping that may wait until the provider has begun to answer the first request (a
    /// new session's `sessions.json` entry), so that the stream's time hides it. It runs then,
    /// or when the call ends without an answer; the turn runs it at the latest when an attempt
    /// ends.
    side_work: Cell<Option<Box<dyn FnOnce()>>>,
    /// Requests this run is done with, freed after the loop has heard the outcome.
    pub spent: Vec<Request>,
}

impl RunState {
    pub fn new(user: Value) -> RunState {
        RunState {
            pending: vec![user],
            texts: Vec::new(),
            compactions: 0,
            steered: Vec::new(),
            side_work: Cell::new(None),
            spent: Vec::new(),
        }
    }

    /// Sets the work to run at the first streamed event (one piece per run).
    pub fn defer_until_answered(&self, work: Box<dyn FnOnce()>) {
        self.run_side_work();
        self.side_work.set(Some(work));
    }

    /// Runs the deferred work now, if any is left.
    pub fn run_side_work(&self) {
        if let Some(work) = self.side_work.take() {
            work();
        }
    }

    /// The cumulative reply so far: every assistant message's text, blank-line separated.
    pub fn reply_text(&self) -> String {
        self.texts
            .iter()
            .filter(|t| !t.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// Runs the loop to the final assistant message (`Ok`, also for an abort) or a provider error.
pub fn run(
    a: &Attempt<'_>,
    transcript: &mut Transcript,
    state: &mut RunState,
    on_update: &mut dyn FnMut(TurnUpdate),
) -> Result<Value, ProviderError> {
    // `timeoutSeconds` bounds the whole attempt, tool calls included (upstream's attempt
    // timer), not each provider call.
    let deadline = Instant::now() + a.input.timeout;
    loop {
        inject_steered(state);
        let mut req = a.template.clone();
        req.messages = transcript.run_history(&a.policy);
        req.messages.extend(state.pending.iter().cloned());
        let streamed = stream_retrying(&mut req, deadline, a, state, on_update);
        state.run_side_work();
        let message = match streamed {
            Ok(m) => with_cost(m, &a.cost),
            Err(e) if is_context_overflow_error(&e.message) && state.compactions == 0 => {
                state.compactions += 1;
                log::warn!(target: "agent", "context overflow on {}/{}; compacting the session", req.target.provider, req.target.model_id);
                match crate::agent::compaction::compact(&req, transcript, a.input) {
                    Ok(()) => continue,
                    Err(c) => {
                        log::warn!(target: "agent", "{c}");
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        persist(transcript, state, &message);
        state.texts.push(assistant_text(&message));
        let calls = tools::tool_calls(&message);
        if is_final_stop(&message) || a.input.abort.is_aborted() {
            state.spent.push(req);
            return Ok(message);
        }
        if calls.is_empty() {
            // pi checks for steering messages when the loop would stop: one arrived → go on.
            if !take_steered(a, state, on_update) {
                state.spent.push(req);
                return Ok(message);
            }
            continue;
        }
        run_tools(a, transcript, state, &calls, on_update);
        if a.input.abort.is_aborted() {
            return Ok(message);
        }
    }
}

/// Moves one steered message from the inbox into `state`; `true` if there was one.
fn take_steered(
    a: &Attempt<'_>,
    state: &mut RunState,
    on_update: &mut dyn FnMut(TurnUpdate),
) -> bool {
    let Some(msg) = a.input.steer.as_ref().and_then(|rx| rx.try_recv().ok()) else {
        return false;
    };
    on_update(TurnUpdate::Steered {
        run_id: msg.run_id.clone(),
    });
    state.steered.push(msg);
    true
}

/// Steered messages become the next user turn (written once a provider accepts them).
fn inject_steered(state: &mut RunState) {
    for msg in std::mem::take(&mut state.steered) {
        let user = serde_json::json!({"role": "user", "content": [{"type": "text", "text": msg.prompt}], "timestamp": crate::util::now_ms()});
        state.pending.push(user);
    }
}

/// pi-ai's `calculateCost`: each counter × its price per million, and their sum.
fn with_cost(mut message: Value, cost: &Cost) -> Value {
    let Some(usage) = message.get_mut("usage").and_then(Value::as_object_mut) else {
        return message;
    };
    let n = |k: &str| usage.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let parts = [
        ("input", n("input") * cost.input / 1e6),
        ("output", n("output") * cost.output / 1e6),
        ("cacheRead", n("cacheRead") * cost.cache_read / 1e6),
        ("cacheWrite", n("cacheWrite") * cost.cache_write / 1e6),
    ];
    let total: f64 = parts.iter().map(|(_, v)| v).sum();
    let mut c = serde_json::Map::new();
    for (k, v) in parts {
        c.insert(k.into(), crate::util::js_number(v));
    }
    c.insert("total".into(), crate::util::js_number(total));
    usage.insert("cost".into(), Value::Object(c));
    message
}

fn is_final_stop(message: &Value) -> bool {
    matches!(
        message.get("stopReason").and_then(Value::as_str),
        Some("aborted" | "error")
    )
}

/// Appends the pending user messages and `message`, as pi's `message_end` does.
fn persist(transcript: &mut Transcript, state: &mut RunState, message: &Value) {
    state.commit_pending(transcript);
    if let Err(e) = transcript.append_message(message.clone()) {
        log::warn!(target: "agent", "failed to write transcript {}: {e}", transcript.path().display());
    }
}

impl RunState {
    /// Writes the user messages no provider has answered yet.
    pub fn commit_pending(&mut self, transcript: &mut Transcript) {
        for user in self.pending.drain(..) {
            if let Err(e) = transcript.append_message(user) {
                log::warn!(target: "agent", "failed to write transcript {}: {e}", transcript.path().display());
            }
        }
    }
}

/// Each call in order, its result appended at once; an abort skips the rest.
fn run_tools(
    a: &Attempt<'_>,
    transcript: &mut Transcript,
    state: &mut RunState,
    calls: &[Value],
    on_update: &mut dyn FnMut(TurnUpdate),
) {
    let ctx = ToolContext {
        workspace: &a.input.workspace,
        abort: &a.input.abort,
    };
    for call in calls {
        // After a steered message arrives, the remaining calls are skipped (pi's steering).
        let result = if a.input.abort.is_aborted() || !state.steered.is_empty() {
            ToolSet::skipped(call)
        } else {
            on_update(TurnUpdate::ToolStart { call: call.clone() });
            let result = a.tools.execute(call, &ctx);
            on_update(TurnUpdate::ToolResult {
                result: result.clone(),
            });
            take_steered(a, state, on_update);
            result
        };
        if let Err(e) = transcript.append_message(result) {
            log::warn!(target: "agent", "failed to write transcript {}: {e}", transcript.path().display());
        }
    }
}

/// pi's session auto-retry around the SDK layer: a transient error text is retried after
/// 2 s, 4 s, 8 s (by default) unless the run is aborted meanwhile or the wait would pass the
/// attempt's deadline (so no retry count, however configured, outlives `timeoutSeconds`).
fn stream_retrying(
    req: &mut Request,
    deadline: Instant,
    a: &Attempt<'_>,
    state: &RunState,
    on_update: &mut dyn FnMut(TurnUpdate),
) -> Result<Value, ProviderError> {
    let mut retries = 0;
    loop {
        let err = match stream_sdk_retrying(req, deadline, a, state, on_update) {
            Ok(m) => return Ok(m),
            Err(e) => e,
        };
        if !SessionRetry::is_retryable(&err.message) || a.input.abort.is_aborted() {
            return Err(err);
        }
        retries += 1;
        let Some(delay) = a.retry.session().delay_ms(retries) else {
            return Err(err);
        };
        log::warn!(target: "agent", "retrying after a transient error ({retries}/{}) in {delay} ms: {}", a.retry.session().max_retries, err.message);
        if !sleep_before_retry(a, delay, deadline) {
            return Err(err);
        }
    }
}

/// The SDK's own retries: HTTP 408/409/429/≥500 and connection failures before any content
/// arrived, with `retry-after` honoured when short. `@google/genai`'s `generateContentStream`
/// has no retry loop, so Gemini calls get none here either.
fn stream_sdk_retrying(
    req: &mut Request,
    deadline: Instant,
    a: &Attempt<'_>,
    state: &RunState,
    on_update: &mut dyn FnMut(TurnUpdate),
) -> Result<Value, ProviderError> {
    let mut retry = 0;
    let max_retries = match req.target.api {
        Api::GoogleGenerativeAi => 0,
        _ => a.retry.sdk.max_retries,
    };
    loop {
        // Every call gets what is left of the attempt, not a fresh `timeoutSeconds`.
        req.timeout = deadline.saturating_duration_since(Instant::now());
        if req.timeout.is_zero() {
            return Err(ProviderError::timeout());
        }
        let mut streamed = false;
        let result = stream_once(req, a, state, &mut streamed, on_update);
        let err = match result {
            Ok(m) => return Ok(m),
            Err(e) => e,
        };
        if streamed || retry >= max_retries || !sdk_retryable(&err) {
            return Err(err);
        }
        let delay = sdk_delay(&a.retry.sdk, retry, err.retry_after);
        retry += 1;
        log::debug!(target: "agent", "provider answered {:?}; SDK retry {retry} in {delay} ms", err.status);
        if !sleep_before_retry(a, delay, deadline) {
            return Err(err);
        }
    }
}

fn sdk_retryable(err: &ProviderError) -> bool {
    match err.kind {
        ErrorKind::Http => err
            .should_retry
            .unwrap_or_else(|| SdkRetry::should_retry(err.status, None)),
        ErrorKind::Network => err.should_retry.unwrap_or(true),
        _ => false,
    }
}

fn sdk_delay(sdk: &SdkRetry, retry: u32, retry_after: Option<Duration>) -> u64 {
    if let Some(d) = retry_after {
        let ms = d.as_millis() as u64;
        if ms > 0 && ms < sdk.retry_after_cap_ms {
            return ms;
        }
    }
    let jitter = (crate::util::now_ms() % 1000) as f64 / 1000.0;
    sdk.delay_ms(retry, None, None, 0, jitter)
}

/// Sleeps `ms` in short slices; `false` (at once) if that would reach `deadline`, or if the
/// run is aborted meanwhile.
fn sleep_before_retry(a: &Attempt<'_>, ms: u64, deadline: Instant) -> bool {
    let until = Instant::now() + Duration::from_millis(ms);
    if until >= deadline {
        return false;
    }
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if a.input.abort.is_aborted() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
    !a.input.abort.is_aborted()
}

/// One provider call, reporting the run's cumulative reply text as it grows.
fn stream_once(
    req: &Request,
    a: &Attempt<'_>,
    state: &RunState,
    streamed: &mut bool,
    on_update: &mut dyn FnMut(TurnUpdate),
) -> Result<Value, ProviderError> {
    let before = state.reply_text();
    let mut text = String::new();
    let mut on_event = |ev: StreamEvent| {
        // Once the provider has answered: the request had the CPU to itself on its way out.
        state.run_side_work();
        if let StreamEvent::TextDelta { delta, .. } = ev {
            *streamed = true;
            text.push_str(&delta);
            let cumulative = match before.is_empty() {
                true => text.clone(),
                false => format!("{before}\n\n{text}"),
            };
            on_update(TurnUpdate::Text {
                text: cumulative,
                delta,
            });
        }
    };
    providers::stream(req, &a.input.abort, &mut on_event)
}

pub fn assistant_text(message: &Value) -> String {
    let blocks = message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("")
}
