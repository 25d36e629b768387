//! Scripts for the fake LLM (`llm.rs`): what one reply contains (text, thinking, tool calls, an
//! HTTP error, a mid-stream error or a hang) and how it is paced, independent of the wire format.

use serde_json::Value;
use std::time::Duration;

/// One piece of a streamed reply.
#[derive(Debug, Clone)]
pub enum Part {
    Text(Vec<String>),
    Thinking(String),
    Tool {
        id: String,
        name: String,
        args: Value,
    },
}

/// Route-appropriate canned HTTP errors, with the bodies and headers of (b).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    /// 429 (`retry-after: 0`, `x-should-retry: false`).
    RateLimited,
    /// 529 `overloaded_error`.
    Overloaded,
    /// 401 invalid key.
    Unauthorized,
    /// 400 prompt too long.
    ContextOverflow,
}

#[derive(Debug, Clone)]
pub(super) enum Ending {
    Normal,
    /// Send an error frame instead of the closing frames (`None` = the route's (b) payload).
    Error(Option<String>),
    /// Stop sending and keep the connection open until the client leaves.
    Hang,
    /// Send the closing frames but never end the body (no final chunk), holding the connection.
    Linger,
}

#[derive(Debug, Clone)]
pub(super) enum Reply {
    Stream {
        parts: Vec<Part>,
        ending: Ending,
    },
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Canned(Canned),
}

/// A scripted reply. Build with a constructor, refine with the `with_*`/`then_*` methods.
#[derive(Debug, Clone)]
pub struct Script {
    pub(super) reply: Reply,
    pub(super) head_delay: Duration,
    pub(super) chunk_delay: Duration,
    pub(super) usage: (u64, u64),
    pub(super) length_stop: bool,
}

impl Script {
    fn stream(parts: Vec<Part>) -> Self {
        Script {
            reply: Reply::Stream {
                parts,
                ending: Ending::Normal,
            },
            head_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            usage: (1500, 5),
            length_stop: false,
        }
    }

    /// A stream with no content blocks (only the opening and closing frames).
    pub fn empty() -> Self {
        Self::stream(Vec::new())
    }

    /// One text block streamed as these chunks.
    pub fn text<I, S>(chunks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::empty().with_text(chunks)
    }

    /// One tool call. `id` is the tool_use id / call_id (Responses item ids are `fc_<n>`).
    pub fn tool_call(id: &str, name: &str, args: Value) -> Self {
        Self::empty().with_tool(id, name, args)
    }

    /// Raw HTTP error (any status, headers, body).
    pub fn http(status: u16, headers: &[(&str, &str)], body: &str) -> Self {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Script {
            reply: Reply::Http {
                status,
                headers,
                body: body.to_string(),
            },
            ..Self::empty()
        }
    }

    pub fn canned(kind: Canned) -> Self {
        Script {
            reply: Reply::Canned(kind),
            ..Self::empty()
        }
    }

    pub fn rate_limited() -> Self {
        Self::canned(Canned::RateLimited)
    }

    pub fn overloaded() -> Self {
        Self::canned(Canned::Overloaded)
    }

    pub fn unauthorized() -> Self {
        Self::canned(Canned::Unauthorized)
    }

    pub fn context_overflow() -> Self {
        Self::canned(Canned::ContextOverflow)
    }

    /// 200, the opening frame, then the route's mid-stream error frame.
    pub fn mid_stream_error() -> Self {
        Self::empty().then_error()
    }

    /// 200, the opening frame, then silence with the connection held open.
    pub fn hang() -> Self {
        Self::empty().then_hang()
    }

    fn parts_mut(&mut self) -> Option<&mut Vec<Part>> {
        match &mut self.reply {
            Reply::Stream { parts, .. } => Some(parts),
            _ => None,
        }
    }

    fn set_ending(mut self, e: Ending) -> Self {
        if let Reply::Stream { ending, .. } = &mut self.reply {
            *ending = e;
        }
        self
    }

    pub fn with_text<I, S>(mut self, chunks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let chunks = chunks.into_iter().map(Into::into).collect();
        if let Some(p) = self.parts_mut() {
            p.push(Part::Text(chunks));
        }
        self
    }

    pub fn with_thinking(mut self, text: &str) -> Self {
        if let Some(p) = self.parts_mut() {
            p.push(Part::Thinking(text.to_string()));
        }
        self
    }

    pub fn with_tool(mut self, id: &str, name: &str, args: Value) -> Self {
        if let Some(p) = self.parts_mut() {
            p.push(Part::Tool {
                id: id.to_string(),
                name: name.to_string(),
                args,
            });
        }
        self
    }

    /// End with the route's mid-stream error frame instead of the closing frames.
    pub fn then_error(self) -> Self {
        self.set_ending(Ending::Error(None))
    }

    /// End with this `data:` payload as the error frame.
    pub fn then_error_data(self, data: &str) -> Self {
        self.set_ending(Ending::Error(Some(data.to_string())))
    }

    /// Stop after the parts and hold the connection open.
    pub fn then_hang(self) -> Self {
        self.set_ending(Ending::Hang)
    }

    /// Send the closing frames, then neither end the body nor close the connection.
    pub fn then_linger(self) -> Self {
        self.set_ending(Ending::Linger)
    }

    /// Wait this long before sending the response head.
    pub fn head_delay(mut self, d: Duration) -> Self {
        self.head_delay = d;
        self
    }

    /// Wait this long before every frame after the first.
    pub fn chunk_delay(mut self, d: Duration) -> Self {
        self.chunk_delay = d;
        self
    }

    /// Input/output token counts reported (default 1500 / 5).
    pub fn usage(mut self, input: u64, output: u64) -> Self {
        self.usage = (input, output);
        self
    }

    /// Report a max-tokens stop (`max_tokens` / `incomplete` / `length`).
    pub fn length_stop(mut self) -> Self {
        self.length_stop = true;
        self
    }
}
