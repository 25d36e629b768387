//! The assistant message being streamed: content blocks, usage and stop reason, the events a
//! caller sees while it grows, and its final pi JSON shape (agents.md §2.1, §4.1).

use super::{ModelTarget, StreamEvent};
use serde_json::{json, Map, Value};

/// Token counts of one response (`cost` is filled by the caller from the catalog).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub total_tokens: u64,
}

impl Usage {
    /// pi's usage object with zero costs.
    pub fn to_json(&self) -> Value {
        json!({
            "input": self.input,
            "output": self.output,
            "cacheRead": self.cache_read,
            "cacheWrite": self.cache_write,
            "totalTokens": self.total_tokens,
            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0},
        })
    }
}

/// pi's `stopReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Stop,
    Length,
    ToolUse,
    Error,
    Aborted,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Stop => "stop",
            StopReason::Length => "length",
            StopReason::ToolUse => "toolUse",
            StopReason::Error => "error",
            StopReason::Aborted => "aborted",
        }
    }
}

/// One content block while it streams.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    Text {
        text: String,
        /// Responses API message item id, replayed on the next request.
        signature: Option<String>,
    },
    Thinking {
        thinking: String,
        signature: Option<String>,
    },
    ToolCall {
        id: String,
        name: String,
        /// Final arguments once known; `None` while argument JSON is still arriving (parsed from
        /// `partial` lazily, so a long stream of deltas costs one parse, not one per delta).
        arguments: Option<Value>,
        /// Raw argument JSON received so far.
        partial: String,
        /// Gemini `thoughtSignature` of the `functionCall` part, replayed to the same model.
        signature: Option<String>,
    },
}

/// A tool call's arguments: the settled value, else the best reading of the partial JSON.
fn arguments_of(arguments: &Option<Value>, partial: &str) -> Value {
    match arguments {
        Some(v) => v.clone(),
        None => super::transform::parse_streaming_json(partial),
    }
}

impl Block {
    fn to_json(&self) -> Value {
        match self {
            Block::Text { text, signature } => {
                let mut m = Map::new();
                m.insert("type".into(), "text".into());
                m.insert("text".into(), text.clone().into());
                if let Some(s) = signature {
                    m.insert("textSignature".into(), s.clone().into());
                }
                Value::Object(m)
            }
            Block::Thinking {
                thinking,
                signature,
            } => {
                let mut m = Map::new();
                m.insert("type".into(), "thinking".into());
                m.insert("thinking".into(), thinking.clone().into());
                if let Some(s) = signature {
                    m.insert("thinkingSignature".into(), s.clone().into());
                }
                Value::Object(m)
            }
            Block::ToolCall {
                id,
                name,
                arguments,
                partial,
                signature,
            } => {
                let mut m = Map::new();
                m.insert("type".into(), "toolCall".into());
                m.insert("id".into(), id.clone().into());
                m.insert("name".into(), name.clone().into());
                m.insert("arguments".into(), arguments_of(arguments, partial));
                if let Some(s) = signature {
                    m.insert("thoughtSignature".into(), s.clone().into());
                }
                Value::Object(m)
            }
        }
    }
}

/// The message under construction plus the caller's event sink.
pub(crate) struct Assistant<'a> {
    api: &'static str,
    provider: String,
    model: String,
    timestamp: u64,
    pub blocks: Vec<Block>,
    pub usage: Usage,
    pub stop: StopReason,
    sink: &'a mut dyn FnMut(StreamEvent),
}

impl<'a> Assistant<'a> {
    pub fn new(target: &ModelTarget, sink: &'a mut dyn FnMut(StreamEvent)) -> Self {
        Assistant {
            api: target.api.as_str(),
            provider: target.provider.clone(),
            model: target.model_id.clone(),
            timestamp: crate::util::now_ms(),
            blocks: Vec::new(),
            usage: Usage::default(),
            stop: StopReason::Stop,
            sink,
        }
    }

    pub fn emit(&mut self, ev: StreamEvent) {
        (self.sink)(ev);
    }

    /// Appends a block and announces it; returns its content index.
    pub fn start_block(&mut self, block: Block) -> usize {
        let index = self.blocks.len();
        let ev = match &block {
            Block::Text { .. } => StreamEvent::TextStart { index },
            Block::Thinking { .. } => StreamEvent::ThinkingStart { index },
            Block::ToolCall { id, name, .. } => StreamEvent::ToolCallStart {
                index,
                id: id.clone(),
                name: name.clone(),
            },
        };
        self.blocks.push(block);
        self.emit(ev);
        index
    }

    pub fn text_delta(&mut self, index: usize, delta: &str) {
        if let Some(Block::Text { text, .. }) = self.blocks.get_mut(index) {
            text.push_str(delta);
            self.emit(StreamEvent::TextDelta {
                index,
                delta: delta.to_string(),
            });
        }
    }

    pub fn thinking_delta(&mut self, index: usize, delta: &str) {
        if let Some(Block::Thinking { thinking, .. }) = self.blocks.get_mut(index) {
            thinking.push_str(delta);
            self.emit(StreamEvent::ThinkingDelta {
                index,
                delta: delta.to_string(),
            });
        }
    }

    /// Appends argument JSON (the arguments are settled at the block's end).
    pub fn tool_delta(&mut self, index: usize, delta: &str) {
        if let Some(Block::ToolCall {
            arguments, partial, ..
        }) = self.blocks.get_mut(index)
        {
            partial.push_str(delta);
            *arguments = None;
            self.emit(StreamEvent::ToolCallDelta {
                index,
                delta: delta.to_string(),
            });
        }
    }

    /// Replaces a block's final text/thinking/arguments with what the provider's closing event
    /// says (the Responses API repeats the whole item when it is done).
    pub fn settle_text(&mut self, index: usize, text: String, sig: Option<String>) {
        if let Some(Block::Text { text: t, signature }) = self.blocks.get_mut(index) {
            *t = text;
            *signature = sig;
        }
    }

    pub fn settle_thinking(&mut self, index: usize, thinking: String, sig: Option<String>) {
        if let Some(Block::Thinking {
            thinking: t,
            signature,
        }) = self.blocks.get_mut(index)
        {
            *t = thinking;
            *signature = sig;
        }
    }

    pub fn settle_arguments(&mut self, index: usize, value: Value) {
        if let Some(Block::ToolCall { arguments, .. }) = self.blocks.get_mut(index) {
            *arguments = Some(value);
        }
    }

    /// Announces the end of a block (final arguments are parsed from the accumulated JSON unless
    /// the provider already set them).
    pub fn end_block(&mut self, index: usize) {
        let ev = match self.blocks.get_mut(index) {
            Some(Block::Text { text, .. }) => StreamEvent::TextEnd {
                index,
                text: text.clone(),
            },
            Some(Block::Thinking { thinking, .. }) => StreamEvent::ThinkingEnd {
                index,
                thinking: thinking.clone(),
            },
            Some(Block::ToolCall {
                id,
                name,
                arguments,
                partial,
                ..
            }) => {
                let settled = arguments_of(arguments, partial);
                *arguments = Some(settled.clone());
                StreamEvent::ToolCallEnd {
                    index,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: settled,
                }
            }
            None => return,
        };
        self.emit(ev);
    }

    pub fn set_usage(&mut self, usage: Usage) {
        self.usage = usage;
        self.emit(StreamEvent::Usage(usage));
    }

    pub fn has_tool_call(&self) -> bool {
        self.blocks
            .iter()
            .any(|b| matches!(b, Block::ToolCall { .. }))
    }

    /// The pi message; `error` adds `errorMessage` (and the caller sets `stop` first).
    pub fn to_json(&self, error: Option<&str>) -> Value {
        let mut m = Map::new();
        m.insert("role".into(), "assistant".into());
        let content: Vec<Value> = self.blocks.iter().map(Block::to_json).collect();
        m.insert("content".into(), Value::Array(content));
        m.insert("api".into(), self.api.into());
        m.insert("provider".into(), self.provider.clone().into());
        m.insert("model".into(), self.model.clone().into());
        m.insert("usage".into(), self.usage.to_json());
        m.insert("stopReason".into(), self.stop.as_str().into());
        if let Some(e) = error {
            m.insert("errorMessage".into(), e.into());
        }
        m.insert("timestamp".into(), self.timestamp.into());
        Value::Object(m)
    }
}
