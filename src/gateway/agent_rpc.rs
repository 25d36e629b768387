//! The `agent` and `agent.wait` methods as the upstream CLI uses them: `agent` answers
//! `accepted` at once and the final result later on the same request id; `agent.wait` answers
//! when the run ends (or with `timeout`); finished runs are remembered for 10 minutes.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::chat::{PendingTurn, Run};
use super::core::Gateway;
use super::event::ConnId;
use super::methods::{RpcError, RpcResult};
use crate::agent::turn::TurnOutcome;
use crate::util::now_ms;

/// How long a finished run's snapshot answers `agent.wait`.
const SNAPSHOT_TTL: Duration = Duration::from_secs(600);
const DEFAULT_WAIT_MS: u64 = 30_000;
/// Bounds on remembered runs and pending `agent.wait` calls (a client cannot grow them at will).
const MAX_SNAPSHOTS: usize = 1000;
const MAX_WAITERS: usize = 1000;

const AGENT_KEYS: [&str; 24] = [
    "message",
    "agentId",
    "to",
    "replyTo",
    "sessionId",
    "sessionKey",
    "thinking",
    "deliver",
    "attachments",
    "channel",
    "replyChannel",
    "accountId",
    "replyAccountId",
    "threadId",
    "groupId",
    "groupChannel",
    "groupSpace",
    "timeout",
    "lane",
    "extraSystemPrompt",
    "idempotencyKey",
    "label",
    "spawnedBy",
    "bestEffortDeliver",
];

struct Snapshot {
    status: &'static str,
    started_at: u64,
    ended_at: u64,
    error: Option<String>,
    kept: Instant,
}

struct Waiter {
    conn: ConnId,
    req_id: String,
    run_id: String,
    deadline: Instant,
}

#[derive(Default)]
pub struct Waits {
    finished: HashMap<String, Snapshot>,
    waiters: Vec<Waiter>,
}

impl Waits {
    /// The earliest `agent.wait` deadline, for the loop's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiters.iter().map(|w| w.deadline).min()
    }
}

fn known_channel(channel: &str) -> bool {
    let ids = crate::config::schema()
        .get("x-channelIds")
        .and_then(Value::as_array);
    matches!(channel, "webchat" | "last") || ids.is_some_and(|l| l.iter().any(|c| c == channel))
}

impl Gateway {
    /// `agent`: validates, queues the turn and answers `accepted`; the final answer follows.
    pub fn agent_method(&mut self, conn: ConnId, req_id: &str, params: &Value) -> RpcResult {
        super::methods::closed_params(
            "agent",
            params,
            &AGENT_KEYS,
            &["message", "idempotencyKey"],
        )?;
        let get = |k: &str| params.get(k).and_then(Value::as_str);
        if let Some(ch) = get("channel").filter(|c| !known_channel(c)) {
            return Err(RpcError::invalid(format!(
                "invalid agent params: unknown channel: {ch}"
            )));
        }
        let cfg = &self.snapshot.config;
        let agent_id = get("agentId").map(crate::config::normalize_agent_id);
        if let Some(id) = &agent_id {
            if !crate::config::agent_ids(cfg).contains(id) {
                return Err(RpcError::invalid(format!(
                    "invalid agent params: unknown agent id \"{id}\""
                )));
            }
        }
        let key_sent = get("sessionKey").map(str::to_string).unwrap_or_else(|| {
            format!(
                "agent:{}:main",
                agent_id
                    .clone()
                    .unwrap_or_else(|| crate::config::default_agent_id(cfg))
            )
        });
        let key = crate::routing::canonical_session_key(cfg, &key_sent);
        let key_agent = super::chat::agent_of_key(&key, cfg);
        if let Some(id) = agent_id.as_ref().filter(|id| **id != key_agent) {
            return Err(RpcError::invalid(format!("invalid agent params: agent \"{id}\" does not match session key agent \"{key_agent}\"")));
        }
        let run_id = get("idempotencyKey").unwrap_or("").to_string();
        let pending = PendingTurn {
            run_id: run_id.clone(),
            key_sent,
            key,
            agent_id: key_agent,
            prompt: get("message").unwrap_or("").to_string(),
            thinking: get("thinking").map(str::to_string),
            reply_to: Some((conn, req_id.to_string())),
            lane: crate::agent::lane_pools::Lane::parse(get("lane")),
            absorbed: Vec::new(),
            extra_system_prompt: get("extraSystemPrompt").map(str::to_string),
            http: None,
        };
        self.admit(pending);
        Ok(json!({"runId": run_id, "status": "accepted", "acceptedAt": now_ms()}))
    }

    /// Called when a run ends: the `agent` caller's final response, `agent.wait` waiters, the snapshot.
    pub(super) fn finish_agent_rpc(
        &mut self,
        run_id: &str,
        run: &Run,
        outcome: &TurnOutcome,
        ended: u64,
    ) {
        let (status, error) = match outcome {
            TurnOutcome::Failed { message } => ("error", Some(message.clone())),
            _ => ("ok", None),
        };
        if let Some((conn, req_id)) = &run.reply_to {
            self.send(
                *conn,
                &final_frame(req_id, run_id, outcome, run.started_at, ended),
            );
        }
        let snap = Snapshot {
            status,
            started_at: run.started_at,
            ended_at: ended,
            error,
            kept: Instant::now(),
        };
        self.chat
            .waits
            .finished
            .retain(|_, s| s.kept.elapsed() < SNAPSHOT_TTL);
        let waiting: Vec<Waiter> = {
            let (hit, keep): (Vec<Waiter>, Vec<Waiter>) = self
                .chat
                .waits
                .waiters
                .drain(..)
                .partition(|w| w.run_id == run_id);
            self.chat.waits.waiters = keep;
            hit
        };
        let payload = snapshot_payload(run_id, &snap);
        for w in waiting {
            self.respond(w.conn, &w.req_id, Ok(payload.clone()));
        }
        if self.chat.waits.finished.len() >= MAX_SNAPSHOTS {
            let oldest = self
                .chat
                .waits
                .finished
                .iter()
                .min_by_key(|(_, s)| s.kept)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.chat.waits.finished.remove(&k);
            }
        }
        self.chat.waits.finished.insert(run_id.to_string(), snap);
    }

    /// `agent.wait {runId, timeoutMs?}`: `None` means the answer comes later.
    pub fn agent_wait(&mut self, conn: ConnId, req_id: &str, params: &Value) -> Option<RpcResult> {
        if let Err(e) =
            super::methods::closed_params("agent.wait", params, &["runId", "timeoutMs"], &["runId"])
        {
            return Some(Err(e));
        }
        let run_id = params
            .get("runId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(snap) = self.chat.waits.finished.get(&run_id) {
            return Some(Ok(snapshot_payload(&run_id, snap)));
        }
        let timeout = params
            .get("timeoutMs")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_WAIT_MS);
        if timeout == 0 || self.chat.waits.waiters.len() >= MAX_WAITERS {
            return Some(Ok(json!({"runId": run_id, "status": "timeout"})));
        }
        let deadline = Instant::now() + Duration::from_millis(timeout);
        self.chat.waits.waiters.push(Waiter {
            conn,
            req_id: req_id.to_string(),
            run_id,
            deadline,
        });
        None
    }

    /// Answers `agent.wait` calls whose time is up.
    pub fn expire_waiters(&mut self) {
        let now = Instant::now();
        let (due, keep): (Vec<Waiter>, Vec<Waiter>) = self
            .chat
            .waits
            .waiters
            .drain(..)
            .partition(|w| w.deadline <= now);
        self.chat.waits.waiters = keep;
        for w in due {
            self.respond(
                w.conn,
                &w.req_id,
                Ok(json!({"runId": w.run_id, "status": "timeout"})),
            );
        }
    }
}

fn snapshot_payload(run_id: &str, s: &Snapshot) -> Value {
    let mut v = json!({"runId": run_id, "status": s.status, "startedAt": s.started_at, "endedAt": s.ended_at});
    if let Some(e) = &s.error {
        v["error"] = json!(e);
    }
    v
}

/// The second response of `agent` (upstream's shape).
fn final_frame(
    req_id: &str,
    run_id: &str,
    outcome: &TurnOutcome,
    started: u64,
    ended: u64,
) -> Value {
    match outcome {
        TurnOutcome::Failed { message } => json!({
            "type": "res", "id": req_id, "ok": false,
            "error": {"code": "UNAVAILABLE", "message": message},
            "payload": {"runId": run_id, "status": "error", "summary": message},
        }),
        TurnOutcome::Done {
            message,
            text,
            provider,
            model,
            session_id,
        } => {
            let meta = json!({"durationMs": ended.saturating_sub(started), "agentMeta": {"sessionId": session_id, "provider": provider, "model": model, "usage": normalized_usage(message.get("usage"))}, "aborted": false});
            let payloads = if text.is_empty() {
                json!([])
            } else {
                json!([{"text": text}])
            };
            json!({"type": "res", "id": req_id, "ok": true, "payload": {"runId": run_id, "status": "ok", "summary": "completed", "result": {"payloads": payloads, "meta": meta}}})
        }
        TurnOutcome::Aborted { text } => {
            let payloads = if text.is_empty() {
                json!([])
            } else {
                json!([{"text": text}])
            };
            let meta = json!({"durationMs": ended.saturating_sub(started), "aborted": true});
            json!({"type": "res", "id": req_id, "ok": true, "payload": {"runId": run_id, "status": "ok", "summary": "aborted", "result": {"payloads": payloads, "meta": meta}}})
        }
    }
}

/// `agentMeta.usage` as upstream's `normalizeUsage` reports it: `{input, output, cacheRead,
/// cacheWrite, total}`, absent counters left out.
fn normalized_usage(raw: Option<&Value>) -> Value {
    let Some(u) = raw.and_then(crate::agent::sessions::Usage::from_value) else {
        return Value::Null;
    };
    let mut m = serde_json::Map::new();
    let fields = [
        ("input", u.input),
        ("output", u.output),
        ("cacheRead", u.cache_read),
        ("cacheWrite", u.cache_write),
        ("total", u.total),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.into(), crate::util::js_number(v));
        }
    }
    Value::Object(m)
}
