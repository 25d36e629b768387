//! The payloads of a run's `agent` and `chat` events, as typed structs serialised straight into
//! their frames. A run sends one or two of these per streamed token and two at its end, right
//! on the way to the clients; building them as `Value` trees first cost several times more.
//! Field order is upstream's (the order of its object literals), as clients and tests see it.

use serde::Serialize;

/// An `agent` event: `data` is the stream's own shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentEvent<'a, D> {
    pub run_id: &'a str,
    pub seq: u64,
    pub stream: &'a str,
    pub ts: u64,
    pub data: D,
    pub session_key: &'a str,
}

/// A `chat` event: the run, its state, and the state's own fields (`extra`, none for `None`)
/// after them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatEvent<'a, E> {
    pub run_id: &'a str,
    pub session_key: &'a str,
    pub seq: u64,
    pub state: &'a str,
    #[serde(flatten)]
    pub extra: E,
}

/// `assistant` stream data: the text so far and what this token added.
#[derive(Serialize)]
pub struct TextData<'a> {
    pub text: &'a str,
    pub delta: &'a str,
}

/// `lifecycle` start.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub phase: &'static str,
    pub started_at: u64,
}

impl Started {
    pub fn at(started_at: u64) -> Self {
        Started {
            phase: "start",
            started_at,
        }
    }
}

/// `lifecycle` end of a run that finished.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ended {
    pub phase: &'static str,
    pub ended_at: u64,
}

impl Ended {
    pub fn at(ended_at: u64) -> Self {
        Ended {
            phase: "end",
            ended_at,
        }
    }
}

/// The `message` of a `chat` delta or final: the run's text as one text block.
#[derive(Serialize)]
pub struct WithMessage<'a> {
    pub message: TextMessage<'a>,
}

#[derive(Serialize)]
pub struct TextMessage<'a> {
    role: &'static str,
    content: [TextBlock<'a>; 1],
    timestamp: u64,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

impl<'a> WithMessage<'a> {
    pub fn assistant(text: &'a str, timestamp: u64) -> Self {
        WithMessage {
            message: TextMessage {
                role: "assistant",
                content: [TextBlock { kind: "text", text }],
                timestamp,
            },
        }
    }
}

/// No fields of its own (an `agent` event with no `chat` event).
#[derive(Serialize)]
pub struct Nothing {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Byte for byte what the `json!` literals these replace produced (key order included).
    #[test]
    fn the_payloads_match_the_object_literals() {
        let agent = AgentEvent {
            run_id: "r1",
            seq: 3,
            stream: "assistant",
            ts: 17,
            data: TextData {
                text: "Hi \"you\"",
                delta: "you\"",
            },
            session_key: "main",
        };
        let data = json!({"text": "Hi \"you\"", "delta": "you\""});
        let literal = json!({"runId": "r1", "seq": 3, "stream": "assistant", "ts": 17, "data": data, "sessionKey": "main"});
        assert_eq!(
            serde_json::to_string(&agent).ok(),
            Some(literal.to_string())
        );

        let chat = ChatEvent {
            run_id: "r1",
            session_key: "main",
            seq: 4,
            state: "final",
            extra: WithMessage::assistant("Hi", 99),
        };
        let message = json!({"role": "assistant", "content": [{"type": "text", "text": "Hi"}], "timestamp": 99});
        let literal = json!({"runId": "r1", "sessionKey": "main", "seq": 4, "state": "final", "message": message});
        assert_eq!(serde_json::to_string(&chat).ok(), Some(literal.to_string()));

        let empty = ChatEvent {
            run_id: "r1",
            session_key: "main",
            seq: 4,
            state: "final",
            extra: Nothing {},
        };
        let literal = json!({"runId": "r1", "sessionKey": "main", "seq": 4, "state": "final"});
        assert_eq!(
            serde_json::to_string(&empty).ok(),
            Some(literal.to_string())
        );
        // A final with no text carries no `message`.
        let none = ChatEvent {
            run_id: "r1",
            session_key: "main",
            seq: 4,
            state: "final",
            extra: None::<WithMessage>,
        };
        assert_eq!(serde_json::to_string(&none).ok(), Some(literal.to_string()));
        let some = ChatEvent {
            extra: Some(WithMessage::assistant("Hi", 99)),
            ..none
        };
        assert_eq!(
            serde_json::to_string(&some).ok(),
            serde_json::to_string(&chat).ok()
        );

        let start = json!({"phase": "start", "startedAt": 5}).to_string();
        assert_eq!(serde_json::to_string(&Started::at(5)).ok(), Some(start));
        let end = json!({"phase": "end", "endedAt": 6}).to_string();
        assert_eq!(serde_json::to_string(&Ended::at(6)).ok(), Some(end));
    }
}
