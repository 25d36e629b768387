//! The message list a transcript gives the next model request (agents.md §4.2): pi's
//! `buildSessionContext`, pi-ai's `convertToLlm`, and which repairs each model API gets (the
//! repairs themselves are in `transcript_repair.rs`). The `chat.history` view is in
//! `transcript_chat.rs`.

use super::repair::{
    drop_failed_and_patch_orphans, limit_history_turns, repair_tool_use_result_pairing,
    validate_anthropic_turns, validate_gemini_turns,
};
use super::{message_field, parse_iso_ms, Entry, Transcript};
use serde_json::{json, Map, Value};

pub const COMPACTION_SUMMARY_PREFIX: &str =
    "The conversation history before this point was compacted into the following summary:\n\n<summary>\n";
pub const COMPACTION_SUMMARY_SUFFIX: &str = "\n</summary>";
pub const BRANCH_SUMMARY_PREFIX: &str =
    "The following is a summary of a branch that this conversation came back from:\n\n<summary>\n";
pub const BRANCH_SUMMARY_SUFFIX: &str = "</summary>";
pub const MISSING_TOOL_RESULT_TEXT: &str =
    "[moltbot] missing tool result in session history; inserted synthetic error result for transcript repair.";

/// pi's `buildSessionContext` result: agent messages (roles may include `compactionSummary`,
/// `branchSummary`, `custom`), the thinking level and the last model on the branch.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionContext {
    pub messages: Vec<Value>,
    pub thinking_level: String,
    /// `(provider, modelId)`.
    pub model: Option<(String, String)>,
}

/// Which repairs a model API needs (moltbot's `resolveTranscriptPolicy`, the parts ported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Anthropic and Google: results right after their call, orphans dropped, missing ones
    /// synthesised.
    pub repair_tool_use_result_pairing: bool,
    /// Anthropic: consecutive user messages merged.
    pub validate_anthropic_turns: bool,
    /// Google: consecutive assistant messages merged.
    pub validate_gemini_turns: bool,
    /// Keep only the last N user turns (DM `historyLimit`, see `dm_history_limit`).
    pub history_limit: Option<u64>,
}

impl HistoryPolicy {
    pub fn for_model(api: &str, provider: &str, model_id: &str) -> HistoryPolicy {
        let _ = model_id; // Only the Mistral/Antigravity id rules (not ported) look at it.
        let provider = normalize_provider_id(provider);
        let google = matches!(
            api,
            "google-gemini-cli" | "google-generative-ai" | "google-antigravity"
        );
        let anthropic = api == "anthropic-messages" || provider == "anthropic";
        let openai_api = matches!(
            api,
            "openai" | "openai-completions" | "openai-responses" | "openai-codex-responses"
        );
        let openai = matches!(provider.as_str(), "openai" | "openai-codex")
            || (provider.is_empty() && openai_api);
        HistoryPolicy {
            repair_tool_use_result_pairing: !openai && (google || anthropic),
            validate_anthropic_turns: !openai && anthropic,
            validate_gemini_turns: !openai && google,
            history_limit: None,
        }
    }

    pub fn with_history_limit(mut self, limit: Option<u64>) -> HistoryPolicy {
        self.history_limit = limit;
        self
    }
}

fn normalize_provider_id(p: &str) -> String {
    let p = p.trim().to_lowercase();
    match p.as_str() {
        "z.ai" | "z-ai" => "zai".into(),
        "opencode-zen" => "opencode".into(),
        "qwen" => "qwen-portal".into(),
        "kimi-code" => "kimi-coding".into(),
        _ => p,
    }
}

impl Transcript {
    /// The context along the current branch (see `build_session_context`).
    pub fn session_context(&self) -> SessionContext {
        build_session_context(&self.branch())
    }

    /// A user message left as the leaf (its run died before any reply) would make two user
    /// turns in a row: move the leaf to its parent so the next prompt replaces it as a sibling.
    /// Only the in-memory leaf moves, as upstream.
    pub fn drop_orphan_trailing_user(&mut self) -> bool {
        let Some(leaf) = self.leaf() else {
            return false;
        };
        let is_user = leaf.get("type").and_then(Value::as_str) == Some("message")
            && message_field(leaf, "role").and_then(Value::as_str) == Some("user");
        if !is_user {
            return false;
        }
        let parent = leaf
            .get("parentId")
            .and_then(Value::as_str)
            .map(str::to_string);
        if !parent.as_deref().is_some_and(|p| self.set_leaf(Some(p))) {
            self.set_leaf(None);
        }
        log::warn!("Removed orphaned user message to prevent consecutive user turns.");
        true
    }

    /// The pi messages to send before the next prompt: orphan trailing user dropped, the branch
    /// context from the last compaction (its summary first, as a user message in upstream's
    /// wording), the policy's repairs, then error/aborted assistant messages dropped and tool
    /// calls without results answered with pi-ai's `No result provided` error result.
    pub fn history_for_request(&mut self, policy: &HistoryPolicy) -> Vec<Value> {
        self.drop_orphan_trailing_user();
        self.run_history(policy)
    }

    /// As `history_for_request` but keeping a trailing user message: inside a run, that is the
    /// prompt being answered (the orphan repair happened when the run began).
    pub fn run_history(&self, policy: &HistoryPolicy) -> Vec<Value> {
        let mut messages = build_context(&self.branch(), request_copy).messages;
        if policy.repair_tool_use_result_pairing {
            messages = repair_tool_use_result_pairing(messages);
        }
        if policy.validate_gemini_turns {
            messages = validate_gemini_turns(messages);
        }
        if policy.validate_anthropic_turns {
            messages = validate_anthropic_turns(messages);
        }
        messages = limit_history_turns(messages, policy.history_limit);
        drop_failed_and_patch_orphans(convert_to_llm(messages))
    }
}

/// pi's `buildSessionContext` over a root-first branch.
pub fn build_session_context(branch: &[&Map<String, Value>]) -> SessionContext {
    build_context(branch, Value::clone)
}

/// A message as a request needs it: everything but its `usage`, which no provider request,
/// repair or compaction reads, and which holds most of a short reply's fields (a long
/// session copies every message each turn).
fn request_copy(message: &Value) -> Value {
    match message.as_object() {
        Some(m) if m.contains_key("usage") => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "usage")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => message.clone(),
    }
}

/// `build_session_context`, copying each `message` entry's message with `copy`.
fn build_context(branch: &[&Map<String, Value>], copy: fn(&Value) -> Value) -> SessionContext {
    // Borrowed while walking (every assistant message names a model), copied once at the end.
    let mut thinking = "off";
    let mut model: Option<(&str, &str)> = None;
    let mut compaction = None;
    for (i, e) in branch.iter().enumerate() {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        match e.get("type").and_then(Value::as_str) {
            Some("thinking_level_change") => thinking = s("thinkingLevel"),
            Some("model_change") => model = Some((s("provider"), s("modelId"))),
            Some("message")
                if message_field(e, "role").and_then(Value::as_str) == Some("assistant") =>
            {
                let m = |k: &str| message_field(e, k).and_then(Value::as_str).unwrap_or("");
                model = Some((m("provider"), m("model")));
            }
            Some("compaction") => compaction = Some(i),
            _ => {}
        }
    }
    let thinking = thinking.to_string();
    let model = model.map(|(p, m)| (p.to_string(), m.to_string()));
    let mut messages = Vec::new();
    match compaction {
        Some(ci) => {
            let c = branch[ci];
            messages.push(compaction_summary_message(c));
            let first_kept = c.get("firstKeptEntryId");
            let kept_from = branch[..ci]
                .iter()
                .position(|e| first_kept.is_some() && e.get("id") == first_kept);
            let kept = kept_from.map_or(&branch[..0], |k| &branch[k..ci]);
            let after = &branch[ci + 1..];
            messages.extend(
                kept.iter()
                    .chain(after)
                    .filter_map(|e| context_message(e, copy)),
            );
        }
        None => messages.extend(branch.iter().filter_map(|e| context_message(e, copy))),
    }
    SessionContext {
        messages,
        thinking_level: thinking,
        model,
    }
}

fn entry_ms(e: &Entry) -> Value {
    let ts = e.get("timestamp").and_then(Value::as_str);
    ts.and_then(parse_iso_ms)
        .map_or(Value::Null, |ms| json!(ms))
}

fn compaction_summary_message(c: &Entry) -> Value {
    json!({
        "role": "compactionSummary",
        "summary": c.get("summary").cloned().unwrap_or(Value::Null),
        "tokensBefore": c.get("tokensBefore").cloned().unwrap_or(Value::Null),
        "timestamp": entry_ms(c),
    })
}

/// The message an entry contributes: `message` entries, `custom_message` and `branch_summary`.
fn context_message(e: &Entry, copy: fn(&Value) -> Value) -> Option<Value> {
    match e.get("type").and_then(Value::as_str)? {
        "message" => e.get("message").map(copy),
        "custom_message" => {
            let mut m = Map::new();
            m.insert("role".into(), json!("custom"));
            for k in ["customType", "content", "display", "details"] {
                if let Some(v) = e.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            m.insert("timestamp".into(), entry_ms(e));
            Some(Value::Object(m))
        }
        "branch_summary" => {
            let summary = e.get("summary").filter(|s| truthy(s))?;
            Some(json!({"role": "branchSummary", "summary": summary,
                "fromId": e.get("fromId").cloned().unwrap_or(Value::Null), "timestamp": entry_ms(e)}))
        }
        _ => None,
    }
}

pub(super) fn role(m: &Value) -> Option<&str> {
    m.get("role").and_then(Value::as_str)
}

/// JavaScript truthiness of a JSON value.
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// pi's `convertToLlm`: summaries and custom messages become user messages; unknown roles go.
pub fn convert_to_llm(messages: Vec<Value>) -> Vec<Value> {
    messages.into_iter().filter_map(to_llm).collect()
}

fn to_llm(m: Value) -> Option<Value> {
    let ts = m.get("timestamp").cloned().unwrap_or(Value::Null);
    let user_text = |text: String| json!({"role": "user", "content": [{"type": "text", "text": text}], "timestamp": ts});
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match role(&m)? {
        "user" | "assistant" | "toolResult" => Some(m),
        "compactionSummary" => Some(user_text(format!(
            "{COMPACTION_SUMMARY_PREFIX}{}{COMPACTION_SUMMARY_SUFFIX}",
            s("summary")
        ))),
        "branchSummary" => Some(user_text(format!(
            "{BRANCH_SUMMARY_PREFIX}{}{BRANCH_SUMMARY_SUFFIX}",
            s("summary")
        ))),
        "custom" => {
            let content = match m.get("content") {
                Some(Value::String(t)) => json!([{"type": "text", "text": t}]),
                Some(c) => c.clone(),
                None => Value::Null,
            };
            Some(json!({"role": "user", "content": content, "timestamp": ts}))
        }
        "bashExecution" if m.get("excludeFromContext").is_some_and(truthy) => None,
        "bashExecution" => Some(user_text(bash_execution_text(&m))),
        _ => None,
    }
}

fn bash_execution_text(m: &Value) -> String {
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
    let mut text = format!("Ran `{}`\n", s("command"));
    match s("output") {
        "" => text.push_str("(no output)"),
        out => text.push_str(&format!("```\n{out}\n```")),
    }
    let exit = m.get("exitCode").and_then(Value::as_i64);
    if m.get("cancelled").is_some_and(truthy) {
        text.push_str("\n\n(command cancelled)");
    } else if let Some(code) = exit.filter(|c| *c != 0) {
        text.push_str(&format!("\n\nCommand exited with code {code}"));
    }
    if m.get("truncated").is_some_and(truthy) && !s("fullOutputPath").is_empty() {
        text.push_str(&format!(
            "\n\n[Output truncated. Full output: {}]",
            s("fullOutputPath")
        ));
    }
    text
}
