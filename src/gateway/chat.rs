//! Chat runs as the gateway loop sees them: `chat.send` admission (idempotency, abort words,
//! session lanes), submitting turns to the worker pool, and turning worker updates into upstream's
//! `agent` and `chat` events (per-run `seq`, deltas throttled to one per 150 ms per run).

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::chat_events::{AgentEvent, ChatEvent, Ended, Nothing, Started, TextData, WithMessage};
use super::chat_steer::SteerInbox;
use super::core::{Broadcast, Gateway};
use super::dedupe::{Dedupe, Entry};
use super::event::Event;
use super::methods::{RpcError, RpcResult};
use crate::agent::lane_pools::{Lane, LanePools};
use crate::agent::lanes::{Admission, QueuePolicy, Queued, SessionLanes};
use crate::agent::providers::AbortSignal;
use crate::agent::turn::{self, TurnInput, TurnOutcome, TurnUpdate};
use crate::util::now_ms;

/// Chat deltas are sent at most this often per run (upstream: 150 ms; skipped ones are not resent).
const DELTA_THROTTLE: Duration = Duration::from_millis(150);
/// Words that abort the session's run instead of starting one (agents.md §3.11).
const ABORT_WORDS: [&str; 7] = ["stop", "esc", "abort", "wait", "exit", "interrupt", "/stop"];

/// A message waiting for (or starting) its turn.
#[derive(Debug)]
pub struct PendingTurn {
    pub run_id: String,
    /// The key as the client sent it (echoed in events).
    pub key_sent: String,
    pub key: String,
    pub agent_id: String,
    pub prompt: String,
    pub thinking: Option<String>,
    /// For the `agent` method: where its second (final) response goes.
    pub reply_to: Option<(super::event::ConnId, String)>,
    /// The global lane the turn runs on (`agent`'s `lane`; `main` otherwise).
    pub lane: Lane,
    /// Run ids of messages merged into this turn (collect) or steered into it: they end with it.
    pub absorbed: Vec<String>,
    /// Added to the system prompt (`agent`'s `extraSystemPrompt`, OpenAI system messages).
    pub extra_system_prompt: Option<String>,
    /// For `/v1/chat/completions`: the HTTP thread waiting for this run's text.
    pub http: Option<super::openai::ReplyTx>,
}

impl Queued for PendingTurn {
    fn prompt(&self) -> &str {
        &self.prompt
    }
    fn with_prompt(mut self, prompt: String) -> Self {
        self.prompt = prompt;
        self
    }
    fn absorb(&mut self, other: Self) {
        self.absorbed.push(other.run_id);
        self.absorbed.extend(other.absorbed);
    }
    /// An HTTP caller waits for the answer to its own message, so it is never merged.
    fn merges(&self) -> bool {
        self.http.is_none()
    }
}

/// A run in progress.
pub(super) struct Run {
    key_sent: String,
    pub(super) key: String,
    abort: AbortSignal,
    seq: u64,
    text: String,
    last_delta: Option<Instant>,
    pub(super) started_at: u64,
    pub(super) reply_to: Option<(super::event::ConnId, String)>,
    pub(super) steer: SteerInbox,
    http: Option<super::openai::ReplyTx>,
}

pub struct Chat {
    pools: LanePools,
    pub(super) lanes: SessionLanes<PendingTurn>,
    pub(super) runs: HashMap<String, Run>,
    pub dedupe: Dedupe,
    /// `agent`/`agent.wait` bookkeeping (`gateway/agent_rpc.rs`).
    pub waits: super::agent_rpc::Waits,
}

impl Chat {
    pub fn new(config: &Value) -> Chat {
        Chat {
            pools: LanePools::new(config),
            lanes: SessionLanes::default(),
            runs: HashMap::new(),
            dedupe: Dedupe::default(),
            waits: Default::default(),
        }
    }

    /// Lane widths are read again on every reload, as upstream does.
    pub fn resize(&mut self, config: &Value) {
        self.pools.resize(config);
    }

    /// Run ids of `key`'s active run, if any.
    pub fn runs_of(&self, key: &str) -> Vec<String> {
        self.runs
            .iter()
            .filter(|(_, r)| r.key == key)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

fn queue_policy(config: &Value) -> QueuePolicy {
    use crate::agent::lanes::{DropPolicy, QueueMode};
    let q = config.pointer("/messages/queue");
    let mode = q
        .and_then(|q| q.pointer("/byChannel/webchat").or_else(|| q.get("mode")))
        .and_then(Value::as_str)
        .and_then(QueueMode::parse)
        .unwrap_or(QueueMode::Collect);
    let cap = q
        .and_then(|q| q.get("cap"))
        .and_then(Value::as_u64)
        .map(|c| c.max(1) as usize)
        .unwrap_or(20);
    let drop = match q.and_then(|q| q.get("drop")).and_then(Value::as_str) {
        Some("old") => DropPolicy::Old,
        Some("new") => DropPolicy::New,
        _ => DropPolicy::Summarize,
    };
    QueuePolicy { mode, cap, drop }
}

impl Gateway {
    /// `chat.send`: answers at once; the reply streams as events.
    pub fn chat_send(&mut self, params: &Value) -> RpcResult {
        let get = |k: &str| params.get(k).and_then(Value::as_str);
        let key_sent = get("sessionKey").unwrap_or("").to_string();
        let run_id = get("idempotencyKey").unwrap_or("").to_string();
        let message = get("message").unwrap_or("");
        if message.trim().is_empty()
            && params
                .get("attachments")
                .and_then(Value::as_array)
                .is_none_or(|a| a.is_empty())
        {
            return Err(RpcError::invalid("message or attachment required"));
        }
        let dedupe_key = format!("chat:{run_id}");
        match self.chat.dedupe.get(&dedupe_key) {
            Some(Entry::InFlight) => return Ok(json!({"runId": run_id, "status": "in_flight"})),
            Some(Entry::Done(Ok(v))) => return Ok(v),
            Some(Entry::Done(Err((code, msg)))) => {
                return Err(RpcError {
                    code: static_code(&code),
                    message: msg,
                    details: None,
                })
            }
            None => {}
        }
        let key = crate::routing::canonical_session_key(&self.snapshot.config, &key_sent);
        if ABORT_WORDS.contains(&message.trim().to_ascii_lowercase().as_str()) {
            let run_ids = self.abort_session(&key, "stop");
            return Ok(json!({"ok": true, "aborted": !run_ids.is_empty(), "runIds": run_ids}));
        }
        let agent_id = agent_of_key(&key, &self.snapshot.config);
        let thinking = get("thinking").map(str::to_string);
        let pending = PendingTurn {
            run_id: run_id.clone(),
            key_sent,
            key: key.clone(),
            agent_id,
            prompt: message.to_string(),
            thinking,
            reply_to: None,
            lane: Lane::Main,
            absorbed: Vec::new(),
            extra_system_prompt: None,
            http: None,
        };
        self.chat.dedupe.put(&dedupe_key, Entry::InFlight);
        self.admit(pending);
        Ok(json!({"runId": run_id, "status": "started"}))
    }

    pub(super) fn admit(&mut self, pending: PendingTurn) {
        let policy = if pending.http.is_some() {
            // Upstream runs these through `agentCommand`: plain FIFO, no queue modes.
            QueuePolicy::fifo()
        } else {
            queue_policy(&self.snapshot.config)
        };
        let key = pending.key.clone();
        match self.chat.lanes.admit(&key, pending, &policy, true) {
            Admission::Start(p) => self.start_turn(p),
            Admission::Queued => {}
            Admission::Steer(p) => self.steer(p, &policy),
            Admission::Rejected(p) => {
                self.chat.dedupe.put(
                    &format!("chat:{}", p.run_id),
                    Entry::Done(Ok(json!({"runId": p.run_id, "status": "dropped"}))),
                );
            }
            Admission::Interrupt { abort_run, .. } => {
                if let Some(r) = self.chat.runs.get(&abort_run) {
                    r.abort.abort();
                }
            }
        }
    }

    pub(super) fn start_turn(&mut self, mut p: PendingTurn) {
        self.chat.lanes.set_active(&p.key, &p.run_id);
        let abort = AbortSignal::new();
        let (steer, steer_rx) = SteerInbox::new(std::mem::take(&mut p.absorbed));
        let run = Run {
            key_sent: p.key_sent.clone(),
            key: p.key.clone(),
            abort: abort.clone(),
            seq: 0,
            text: String::new(),
            last_delta: None,
            started_at: now_ms(),
            reply_to: p.reply_to.clone(),
            steer,
            http: p.http.take(),
        };
        self.chat.runs.insert(p.run_id.clone(), run);
        let input = TurnInput {
            run_id: p.run_id.clone(),
            agent_id: p.agent_id.clone(),
            session_key: p.key.clone(),
            prompt: p.prompt,
            thinking: p.thinking,
            extra_system_prompt: p.extra_system_prompt,
            config: self.snapshot.clone(),
            state: self.ctx.state.clone(),
            workspace: workspace_of(&self.snapshot.config, &p.agent_id),
            abort,
            timeout: timeout_of(&self.snapshot.config),
            steer: Some(steer_rx),
        };
        let (events, done_events) = (self.ctx.events.clone(), self.ctx.events.clone());
        let (run_id, done_id) = (p.run_id.clone(), p.run_id.clone());
        let (panic_events, panic_id) = (self.ctx.events.clone(), p.run_id.clone());
        let job = Box::new(move || {
            let mut on_update = |u: TurnUpdate| {
                let _ = events.send(Event::Turn {
                    run_id: run_id.clone(),
                    update: u,
                });
            };
            let mut on_outcome = |outcome: &TurnOutcome| {
                let _ = done_events.send(Event::TurnDone {
                    run_id: done_id.clone(),
                    outcome: outcome.clone(),
                });
            };
            turn::run(input, &mut on_update, &mut on_outcome);
        });
        let on_panic = Box::new(move || {
            let outcome = TurnOutcome::Failed {
                message:
                    "⚠️ Agent failed before reply: internal error.\nLogs: moltbot logs --follow"
                        .into(),
            };
            let _ = panic_events.send(Event::TurnDone {
                run_id: panic_id,
                outcome,
            });
        });
        if self.chat.pools.submit(p.lane, job, on_panic).is_err() {
            let outcome = TurnOutcome::Failed {
                message: "The gateway is busy; try again in a moment.".into(),
            };
            self.on_turn_done(&p.run_id, outcome);
        }
    }

    /// Broadcasts an `agent` event for a run, bumping its `seq`.
    fn agent_event<D: Serialize>(&mut self, run_id: &str, stream: &str, data: D) {
        self.agent_and_chat(run_id, (stream, data), None::<(&str, Nothing)>);
    }

    /// An `agent` event and, when given, the `chat` event that goes with it, in one write;
    /// the `agent` event bumps the run's `seq`, and the `chat` one carries it.
    fn agent_and_chat<D: Serialize, E: Serialize>(
        &mut self,
        run_id: &str,
        (stream, data): (&str, D),
        chat: Option<(&str, E)>,
    ) {
        let Some(run) = self.chat.runs.get_mut(run_id) else {
            return;
        };
        run.seq += 1;
        let (seq, key_sent) = (run.seq, run.key_sent.clone());
        let agent = AgentEvent {
            run_id,
            seq,
            stream,
            ts: now_ms(),
            data,
            session_key: &key_sent,
        };
        let mut batch = Vec::new();
        self.push_event(&mut batch, "agent", &agent, Broadcast::default());
        if let Some((state, extra)) = chat {
            let chat = ChatEvent {
                run_id,
                session_key: &key_sent,
                seq,
                state,
                extra,
            };
            self.push_event(&mut batch, "chat", &chat, Broadcast::default());
        }
        self.send_batch(batch, Broadcast::default());
    }

    pub fn on_turn_update(&mut self, run_id: &str, update: TurnUpdate) {
        let (text, delta) = match update {
            TurnUpdate::Started => {
                self.agent_event(run_id, "lifecycle", Started::at(now_ms()));
                return;
            }
            TurnUpdate::Text { text, delta } => (text, delta),
            TurnUpdate::ToolStart { call } => {
                let data = json!({"phase": "start", "name": call["name"], "toolCallId": call["id"], "args": call["arguments"]});
                self.agent_event(run_id, "tool", data);
                return;
            }
            TurnUpdate::Steered { run_id: steered } => {
                self.on_steered(run_id, &steered);
                return;
            }
            TurnUpdate::ToolResult { result } => {
                let data = json!({"phase": "result", "name": result["toolName"], "toolCallId": result["toolCallId"],
                                  "isError": result["isError"], "result": {"content": result["content"], "details": result["details"]}});
                self.agent_event(run_id, "tool", data);
                return;
            }
        };
        let Some(run) = self.chat.runs.get_mut(run_id) else {
            return;
        };
        run.text = text.clone();
        if let Some(http) = run.http.as_mut() {
            http.delta(&delta);
        }
        let due = run.last_delta.is_none_or(|t| t.elapsed() >= DELTA_THROTTLE);
        if due {
            run.last_delta = Some(Instant::now());
        }
        let chat = due.then(|| ("delta", WithMessage::assistant(&text, now_ms())));
        let data = TextData {
            text: &text,
            delta: &delta,
        };
        self.agent_and_chat(run_id, ("assistant", data), chat);
    }

    pub fn on_turn_done(&mut self, run_id: &str, outcome: TurnOutcome) {
        // A run ends once: a later report (a panic while writing its usage) changes nothing.
        if !self.chat.runs.contains_key(run_id) {
            return;
        }
        let ended = now_ms();
        let state = self.closing_events(run_id, &outcome, ended);
        let result = match &outcome {
            TurnOutcome::Failed { message } => Err(("UNAVAILABLE".to_string(), message.clone())),
            _ => Ok(json!({"runId": run_id, "status": "ok"})),
        };
        self.chat
            .dedupe
            .put(&format!("chat:{run_id}"), Entry::Done(result.clone()));
        let Some(mut run) = self.chat.runs.remove(run_id) else {
            return;
        };
        if let Some(http) = run.http.take() {
            http.end(super::openai::reply_result(&self.snapshot.config, &outcome));
        }
        self.finish_agent_rpc(run_id, &run, &outcome, ended);
        let policy = queue_policy(&self.snapshot.config);
        let Run {
            steer,
            key,
            key_sent,
            ..
        } = run;
        for p in self.finish_absorbed(steer, &key_sent, state, &result) {
            let _ = self.chat.lanes.push_backlog(&key, p, &policy);
        }
        if let Some(next) = self.chat.lanes.finished(&key, &policy) {
            self.start_turn(next);
        }
    }

    /// A run's `agent` lifecycle end (or error) and its `chat` final (or aborted, error), in
    /// one write; returns the `chat` state.
    fn closing_events(&mut self, run_id: &str, outcome: &TurnOutcome, ended: u64) -> &'static str {
        match outcome {
            TurnOutcome::Done { text, .. } => {
                // Upstream's final carries the run's text alone (the pi message, with its usage
                // and stop reason, is in the transcript), trimmed, and none when that is empty.
                let text = text.trim();
                let message = (!text.is_empty()).then(|| WithMessage::assistant(text, ended));
                let lifecycle = ("lifecycle", Ended::at(ended));
                self.agent_and_chat(run_id, lifecycle, Some(("final", message)));
                "final"
            }
            TurnOutcome::Aborted { .. } => {
                let phase = json!({"phase": "end", "endedAt": ended, "aborted": true});
                let extra = json!({"stopReason": "rpc"});
                self.agent_and_chat(run_id, ("lifecycle", phase), Some(("aborted", extra)));
                "aborted"
            }
            TurnOutcome::Failed { message } => {
                let phase = json!({"phase": "error", "endedAt": ended, "error": message});
                let extra = json!({"errorMessage": message});
                self.agent_and_chat(run_id, ("lifecycle", phase), Some(("error", extra)));
                "error"
            }
        }
    }

    /// Aborts the session's active run and clears its queue; returns the aborted run ids.
    pub fn abort_session(&mut self, key: &str, _reason: &str) -> Vec<String> {
        let cleared = self.chat.lanes.clear(key);
        for p in cleared {
            let done = Entry::Done(Ok(json!({"runId": p.run_id, "status": "aborted"})));
            self.chat.dedupe.put(&format!("chat:{}", p.run_id), done);
        }
        let ids = self.chat.runs_of(key);
        for id in &ids {
            if let Some(r) = self.chat.runs.get(id) {
                r.abort.abort();
            }
        }
        ids
    }

    /// `chat.abort {sessionKey, runId?}`.
    pub fn chat_abort(&mut self, params: &Value) -> RpcResult {
        let key_sent = params
            .get("sessionKey")
            .and_then(Value::as_str)
            .unwrap_or("");
        let key = crate::routing::canonical_session_key(&self.snapshot.config, key_sent);
        if let Some(run_id) = params.get("runId").and_then(Value::as_str) {
            let Some(run) = self.chat.runs.get(run_id) else {
                return Ok(json!({"ok": true, "aborted": false, "runIds": []}));
            };
            if run.key != key {
                return Err(RpcError::invalid("runId does not match sessionKey"));
            }
            run.abort.abort();
            return Ok(json!({"ok": true, "aborted": true, "runIds": [run_id]}));
        }
        let ids = self.abort_session(&key, "rpc");
        Ok(json!({"ok": true, "aborted": !ids.is_empty(), "runIds": ids}))
    }
}

fn static_code(code: &str) -> &'static str {
    match code {
        "INVALID_REQUEST" => "INVALID_REQUEST",
        "NOT_PAIRED" => "NOT_PAIRED",
        _ => "UNAVAILABLE",
    }
}

/// `agent:<id>:…` → `<id>`; other keys belong to the default agent.
pub(super) fn agent_of_key(key: &str, config: &Value) -> String {
    key.strip_prefix("agent:")
        .and_then(|rest| rest.split(':').next())
        .map(crate::config::normalize_agent_id)
        .unwrap_or_else(|| crate::config::default_agent_id(config))
}

/// The agent's workspace: its own `workspace`, else (default agent) `agents.defaults.workspace`
/// or `~/clawd`, else `~/clawd-<id>`.
pub fn workspace_of(config: &Value, agent_id: &str) -> std::path::PathBuf {
    use crate::state::paths::expand_user;
    let entry = crate::agent::models::agent_entry(config, agent_id);
    if let Some(w) = entry
        .and_then(|e| e.get("workspace"))
        .and_then(Value::as_str)
    {
        return expand_user(w);
    }
    if agent_id == crate::config::default_agent_id(config) {
        let w = config
            .pointer("/agents/defaults/workspace")
            .and_then(Value::as_str)
            .unwrap_or("~/clawd");
        return expand_user(w);
    }
    expand_user(&format!("~/clawd-{agent_id}"))
}

fn timeout_of(config: &Value) -> Duration {
    let secs = config
        .pointer("/agents/defaults/timeoutSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(600);
    Duration::from_secs(secs.max(1))
}
