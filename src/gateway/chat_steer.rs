//! Messages that join a running turn instead of starting their own: steered ones (queue mode
//! `steer`/`steer-backlog`, handed to the worker through the run's inbox) and collected ones
//! (merged into one prompt). Their senders wait on their own run ids, so those end with the
//! turn that took them: the same dedupe result and a `chat` event of the same state.

use crossbeam_channel::{bounded, Receiver, Sender};
use serde_json::{json, Value};
use std::collections::HashMap;

use super::chat::PendingTurn;
use super::core::{Broadcast, Gateway};
use super::dedupe::Entry;
use crate::agent::lanes::{QueueMode, QueuePolicy};
use crate::agent::turn::Steered;

/// Steered messages one run can hold before further ones queue as follow-ups.
const INBOX: usize = 20;

/// A run's steering inbox, kept by the loop.
pub(super) struct SteerInbox {
    tx: Sender<Steered>,
    /// Sent to the worker, not yet taken: re-queued if the run ends first.
    waiting: HashMap<String, PendingTurn>,
    /// Run ids that end with this run (collected or steered in).
    pub(super) absorbed: Vec<String>,
}

impl SteerInbox {
    /// The inbox and the worker's end of it.
    pub(super) fn new(absorbed: Vec<String>) -> (SteerInbox, Receiver<Steered>) {
        let (tx, rx) = bounded(INBOX);
        let inbox = SteerInbox {
            tx,
            waiting: HashMap::new(),
            absorbed,
        };
        (inbox, rx)
    }
}

impl Gateway {
    /// `Admission::Steer`: into the active run's inbox; `steer-backlog` also queues a copy as a
    /// follow-up, as upstream does. A full inbox (or no run) queues it instead.
    pub(super) fn steer(&mut self, p: PendingTurn, policy: &QueuePolicy) {
        if policy.mode == QueueMode::SteerBacklog {
            let copy = p.duplicate();
            let _ = self
                .chat
                .lanes
                .push_backlog(&copy.key.clone(), copy, policy);
        }
        let run_id = self.chat.lanes.active_run(&p.key).map(str::to_string);
        let inbox = run_id
            .and_then(|id| self.chat.runs.get_mut(&id))
            .map(|r| &mut r.steer);
        let Some(inbox) = inbox else {
            let _ = self.chat.lanes.push_backlog(&p.key.clone(), p, policy);
            return;
        };
        let msg = Steered {
            run_id: p.run_id.clone(),
            prompt: p.prompt.clone(),
        };
        if inbox.tx.try_send(msg).is_ok() {
            inbox.waiting.insert(p.run_id.clone(), p);
        } else {
            let _ = self.chat.lanes.push_backlog(&p.key.clone(), p, policy);
        }
    }

    /// The worker took steered message `steered` into run `run_id`.
    pub(super) fn on_steered(&mut self, run_id: &str, steered: &str) {
        if let Some(run) = self.chat.runs.get_mut(run_id) {
            if run.steer.waiting.remove(steered).is_some() {
                run.steer.absorbed.push(steered.to_string());
            }
        }
    }

    /// After a run ended: its absorbed run ids end the same way. Returns the steered messages
    /// it never took, for the caller to queue as ordinary messages.
    pub(super) fn finish_absorbed(
        &mut self,
        inbox: SteerInbox,
        key_sent: &str,
        state: &str,
        result: &Result<Value, (String, String)>,
    ) -> Vec<PendingTurn> {
        for id in &inbox.absorbed {
            let done = match result {
                Ok(_) => Ok(json!({"runId": id, "status": "ok"})),
                Err(e) => Err(e.clone()),
            };
            self.chat
                .dedupe
                .put(&format!("chat:{id}"), Entry::Done(done));
            let payload = json!({"runId": id, "sessionKey": key_sent, "seq": 0, "state": state});
            self.broadcast("chat", payload, Broadcast::default());
        }
        inbox.waiting.into_values().collect()
    }
}

impl PendingTurn {
    /// A copy for `steer-backlog`'s follow-up half (no second reply to an `agent` caller).
    fn duplicate(&self) -> PendingTurn {
        PendingTurn {
            run_id: format!("{}:backlog", self.run_id),
            key_sent: self.key_sent.clone(),
            key: self.key.clone(),
            agent_id: self.agent_id.clone(),
            prompt: self.prompt.clone(),
            thinking: self.thinking.clone(),
            reply_to: None,
            lane: self.lane,
            absorbed: Vec::new(),
            extra_system_prompt: self.extra_system_prompt.clone(),
            http: None,
        }
    }
}
