//! The loop's side of a completion request: it becomes a `PendingTurn` admitted through the same
//! session lanes and worker pool as `chat.send` and `agent` (so `maxConcurrent` and per-session
//! FIFO hold), and its outcome becomes the reply the HTTP thread writes.

use serde_json::Value;

use super::TurnRequest;
use crate::agent::turn::TurnOutcome;
use crate::gateway::chat::PendingTurn;
use crate::gateway::core::Gateway;

impl Gateway {
    /// `Event::OpenAiTurn`: queue the turn; deltas and the end go to the request's channel.
    pub fn openai_turn(&mut self, req: TurnRequest) {
        let cfg = &self.snapshot.config;
        let key = crate::routing::canonical_session_key(cfg, &req.session_key);
        let agent_id = crate::gateway::chat::agent_of_key(&key, cfg);
        log::debug!(target: "gateway", "openai: run {} for session {key}", req.run_id);
        let pending = PendingTurn {
            run_id: req.run_id,
            key_sent: req.session_key,
            key,
            agent_id,
            prompt: req.prompt,
            thinking: None,
            reply_to: None,
            extra_system_prompt: req.extra_system_prompt,
            http: Some(req.reply),
            lane: crate::agent::lane_pools::Lane::Main,
            absorbed: Vec::new(),
        };
        self.admit(pending);
    }
}

/// What the HTTP caller is told. Upstream's `agentCommand` returns provider failures as an
/// error payload (a normal reply) unless model fallbacks are configured, in which case the
/// exhausted fallback chain throws (`500` / an error chunk).
pub fn reply_result(config: &Value, outcome: &TurnOutcome) -> Result<String, String> {
    match outcome {
        TurnOutcome::Done { text, .. } | TurnOutcome::Aborted { text } => Ok(text.clone()),
        TurnOutcome::Failed { message } => {
            if crate::agent::failover::fallback_configured(config) {
                Err(message.clone())
            } else {
                Ok(message.clone())
            }
        }
    }
}
