//! The OpenAI-compatible `POST /v1/chat/completions` endpoint (gateway-protocol.md §5.5): the
//! messages between the HTTP thread that serves a request and the gateway loop that runs its
//! turn. Request parsing is in `request`, the HTTP side in `http`, the loop side in `turn`.

pub mod http;
pub mod request;
mod turn;

pub use turn::reply_result;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Capacity of one request's reply channel. The loop never blocks on it: deltas that do not fit
/// are held back and sent merged with the next one (or with the end), one slot always staying
/// free for the end message.
pub const REPLY_CAPACITY: usize = 32;

/// A completion request, from an HTTP thread to the loop (`Event::OpenAiTurn`).
#[derive(Debug)]
pub struct TurnRequest {
    /// `chatcmpl_<uuid>`: the completion id and the run id.
    pub run_id: String,
    /// As resolved from the headers/`user` (the loop canonicalises it like `chat.send`).
    pub session_key: String,
    pub prompt: String,
    pub extra_system_prompt: Option<String>,
    pub reply: ReplyTx,
}

/// What the HTTP thread receives, in order: text deltas (streaming only), then one `End`.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyMsg {
    Delta(String),
    End {
        /// Deltas the loop held back because the channel was full; written before the end.
        unsent: String,
        /// `Ok(reply text)` (may be empty), or `Err(message)` when the run failed the way
        /// upstream's `agentCommand` throws.
        result: Result<String, String>,
    },
}

/// The loop's end of a reply channel.
#[derive(Debug)]
pub struct ReplyTx {
    tx: Sender<ReplyMsg>,
    stream: bool,
    held: String,
}

/// A reply channel: the loop's sender and the HTTP thread's receiver.
pub fn reply_channel(stream: bool) -> (ReplyTx, Receiver<ReplyMsg>) {
    let (tx, rx) = crossbeam_channel::bounded(REPLY_CAPACITY);
    let reply = ReplyTx {
        tx,
        stream,
        held: String::new(),
    };
    (reply, rx)
}

impl ReplyTx {
    /// Forwards a delta without blocking; a full channel (a slow client) only delays it.
    pub fn delta(&mut self, delta: &str) {
        if !self.stream || delta.is_empty() {
            return;
        }
        self.held.push_str(delta);
        // The loop is the only sender, so `len` cannot grow between the check and the send.
        if self.tx.len() + 1 >= REPLY_CAPACITY {
            return;
        }
        let text = std::mem::take(&mut self.held);
        if let Err(TrySendError::Full(ReplyMsg::Delta(text))) =
            self.tx.try_send(ReplyMsg::Delta(text))
        {
            self.held = text;
        }
    }

    /// Ends the reply; a client that went away is not an error (the run was not aborted).
    pub fn end(self, result: Result<String, String>) {
        let _ = self.tx.try_send(ReplyMsg::End {
            unsent: self.held,
            result,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_holds_deltas_back_and_the_end_always_fits() {
        let (mut tx, rx) = reply_channel(true);
        for i in 0..100 {
            tx.delta(&format!("{i},"));
        }
        tx.end(Ok("done".into()));
        let mut text = String::new();
        let mut ended = false;
        for msg in rx.try_iter() {
            match msg {
                ReplyMsg::Delta(d) => text.push_str(&d),
                ReplyMsg::End { unsent, result } => {
                    text.push_str(&unsent);
                    assert_eq!(result, Ok("done".into()));
                    ended = true;
                }
            }
        }
        assert!(ended);
        let expected: String = (0..100).map(|i| format!("{i},")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn non_streaming_gets_only_the_end() {
        let (mut tx, rx) = reply_channel(false);
        tx.delta("x");
        tx.end(Err("boom".into()));
        let all: Vec<ReplyMsg> = rx.try_iter().collect();
        assert_eq!(
            all,
            vec![ReplyMsg::End {
                unsent: String::new(),
                result: Err("boom".into())
            }]
        );
    }
}
