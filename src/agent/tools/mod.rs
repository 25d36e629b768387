//! The agent's tools: which ones a turn offers (`ToolSet::for_turn`, the policy filter), argument
//! validation and Claude-Code aliases, and one tool call turned into a pi `toolResult` message
//! (agents.md §3.4–3.6). Tools run on the turn's worker thread, in the agent's workspace.

mod policy;
mod read;
mod validate;

use parking_lot::Mutex;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

use crate::agent::prompt::ToolEntry;
use crate::agent::providers::{AbortSignal, ToolSpec};
use crate::util::now_ms;

/// What a tool sees of the turn.
pub struct ToolContext<'a> {
    /// Relative paths resolve here (upstream chdirs into it; we never change the process cwd).
    pub workspace: &'a Path,
    pub abort: &'a AbortSignal,
}

/// A tool's successful answer: pi content blocks and optional `details`.
pub struct ToolOutput {
    pub content: Vec<Value>,
    pub details: Option<Value>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            content: vec![json!({"type": "text", "text": text.into()})],
            details: None,
        }
    }
}

/// One built-in tool. `execute` returning `Err` is a *thrown* error: upstream's adapter turns it
/// into a normal result carrying `{"status":"error",…}` so the model can read and react to it.
pub trait Tool: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> String;
    /// JSON Schema of the arguments, as pi declares it (before the Claude-Code aliases).
    fn parameters(&self) -> Value;
    /// `(keys, label)` groups of which one key must hold a non-empty string.
    fn required_groups(&self) -> &'static [(&'static [&'static str], &'static str)] {
        &[]
    }
    fn execute(&self, args: &Value, ctx: &ToolContext<'_>) -> Result<ToolOutput, String>;
}

/// The tools one turn offers, in upstream's order.
pub struct ToolSet {
    tools: Vec<Box<dyn Tool>>,
}

impl ToolSet {
    /// Every tool this build has, filtered by the config's tool policy for this agent.
    pub fn for_turn(config: &Value, agent_id: &str, provider: &str, model: &str) -> ToolSet {
        let all: Vec<Box<dyn Tool>> = vec![Box::new(read::ReadTool)];
        let policy = policy::Policy::resolve(config, agent_id, provider, model);
        ToolSet {
            tools: all
                .into_iter()
                .filter(|t| policy.allows(t.name()))
                .collect(),
        }
    }

    pub fn empty() -> ToolSet {
        ToolSet { tools: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// What the provider request declares (schemas patched for Claude-Code argument names).
    /// A tool is its name (the built-in ones hold no state), so the same names give the same
    /// specs: those are built once and shared, which also lets a provider keep their JSON.
    pub fn specs(&self) -> Arc<[ToolSpec]> {
        type Built = Vec<(Vec<&'static str>, Arc<[ToolSpec]>)>;
        static BUILT: Mutex<Built> = Mutex::new(Vec::new());
        let names = self.names();
        let mut built = BUILT.lock();
        if let Some((_, specs)) = built.iter().find(|(n, _)| *n == names) {
            return specs.clone();
        }
        let specs: Arc<[ToolSpec]> = self
            .tools
            .iter()
            .map(|t| ToolSpec {
                name: t.name().to_string(),
                description: t.description(),
                parameters: validate::with_claude_aliases(t.parameters()),
            })
            .collect();
        // Policies pick subsets of a handful of tools: few distinct sets ever exist.
        if built.len() >= 16 {
            built.remove(0);
        }
        built.push((names, specs.clone()));
        specs
    }

    /// The system prompt's tool list.
    pub fn prompt_entries(&self) -> Vec<ToolEntry> {
        self.tools
            .iter()
            .map(|t| ToolEntry {
                name: t.name().to_string(),
                summary: t.description(),
            })
            .collect()
    }

    /// Runs one `toolCall` block and returns the `toolResult` message to append.
    pub fn execute(&self, call: &Value, ctx: &ToolContext<'_>) -> Value {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
        let args = call.get("arguments").cloned().unwrap_or(json!({}));
        let (content, details, is_error) = match self.run(name, &args, ctx) {
            Ok(out) => (out.content, out.details, false),
            Err(Failure::Loop(text)) => (
                vec![json!({"type": "text", "text": text})],
                Some(json!({})),
                true,
            ),
            Err(Failure::Thrown(message)) => {
                log::error!(target: "tools", "{name} failed: {message}");
                let payload = json!({"status": "error", "tool": name, "error": message});
                let text = serde_json::to_string_pretty(&payload).unwrap_or_default();
                (
                    vec![json!({"type": "text", "text": text})],
                    Some(payload),
                    false,
                )
            }
        };
        let mut msg =
            json!({"role": "toolResult", "toolCallId": id, "toolName": name, "content": content});
        if let Some(d) = details {
            msg["details"] = d;
        }
        msg["isError"] = json!(is_error);
        msg["timestamp"] = json!(now_ms());
        msg
    }

    fn run(&self, name: &str, args: &Value, ctx: &ToolContext<'_>) -> Result<ToolOutput, Failure> {
        let tool = self
            .tools
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| Failure::Loop(format!("Tool {name} not found")))?;
        let schema = validate::with_claude_aliases(tool.parameters());
        let args = validate::validate(name, &schema, args).map_err(Failure::Loop)?;
        let args = validate::normalize_claude_params(args);
        validate::assert_required_groups(&args, tool.required_groups(), name)
            .map_err(Failure::Thrown)?;
        tool.execute(&args, ctx).map_err(Failure::Thrown)
    }

    /// The result for a call that will not run because the user's next message took over.
    pub fn skipped(call: &Value) -> Value {
        json!({
            "role": "toolResult",
            "toolCallId": call.get("id").cloned().unwrap_or(Value::Null),
            "toolName": call.get("name").cloned().unwrap_or(Value::Null),
            "content": [{"type": "text", "text": "Skipped due to queued user message."}],
            "details": {},
            "isError": true,
            "timestamp": now_ms(),
        })
    }
}

/// Why a call produced no normal output.
enum Failure {
    /// Raised by pi's loop (unknown tool, invalid arguments): an `isError` result.
    Loop(String),
    /// Thrown inside the tool: the adapter's error JSON, `isError: false`.
    Thrown(String),
}

/// The `toolCall` blocks of an assistant message, in order.
pub fn tool_calls(message: &Value) -> Vec<Value> {
    message
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("toolCall"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_tools_share_their_specs_and_others_get_their_own() {
        let config = json!({});
        let all = ToolSet::for_turn(&config, "main", "anthropic", "claude-opus-4-5");
        let again = ToolSet::for_turn(&config, "main", "anthropic", "claude-opus-4-5");
        let (a, b) = (all.specs(), again.specs());
        assert!(Arc::ptr_eq(&a, &b), "built once");
        assert_eq!(
            a.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            all.names()
        );
        assert_eq!(
            a[0].parameters,
            validate::with_claude_aliases(read::ReadTool.parameters())
        );
        assert!(ToolSet::empty().specs().is_empty());
    }
}
