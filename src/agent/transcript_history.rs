//! The message list a transcript gives the next model request (agents.md §4.2): pi's
//! `buildSessionContext`, moltbot's history repairs per model API, pi-ai's request-time
//! filtering. The `chat.history` view is in `transcript_chat.rs`.

use super::{message_field, parse_iso_ms, Entry, Transcript};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

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

/// The synthetic result moltbot writes (and inserts on repair) for a call without a result.
pub fn missing_tool_result(tool_call_id: &str, tool_name: Option<&str>) -> Value {
    json!({
        "role": "toolResult",
        "toolCallId": tool_call_id,
        "toolName": tool_name.unwrap_or("unknown"),
        "content": [{"type": "text", "text": MISSING_TOOL_RESULT_TEXT}],
        "isError": true,
        "timestamp": crate::util::now_ms(),
    })
}

/// `(id, name)` of each tool call in an assistant message (`toolCall`, `toolUse`,
/// `functionCall` blocks with a non-empty string id).
fn tool_calls(m: &Value) -> Vec<(String, Option<String>)> {
    let Some(blocks) = m.get("content").and_then(Value::as_array) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|b| {
            let t = b.get("type").and_then(Value::as_str);
            matches!(t, Some("toolCall" | "toolUse" | "functionCall"))
        })
        .filter_map(|b| {
            let id = b
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())?;
            let name = b.get("name").and_then(Value::as_str).map(str::to_string);
            Some((id.to_string(), name))
        })
        .collect()
}

fn tool_result_id(m: &Value) -> Option<String> {
    ["toolCallId", "toolUseId"]
        .iter()
        .find_map(|k| m.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .map(str::to_string)
}

/// Tool calls of the branch's last tool-calling assistant message that no later message
/// answers (what moltbot's guard flushes at the end of an attempt).
pub(crate) fn pending_tool_calls(branch: &[&Entry]) -> Vec<(String, Option<String>)> {
    let messages: Vec<&Value> = branch
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|e| e.get("message"))
        .collect();
    let Some(pos) = messages.iter().rposition(|m| role(m) == Some("assistant")) else {
        return Vec::new();
    };
    let answered: HashSet<String> = messages[pos + 1..]
        .iter()
        .filter(|m| role(m) == Some("toolResult"))
        .filter_map(|m| tool_result_id(m))
        .collect();
    let calls = tool_calls(messages[pos]);
    calls
        .into_iter()
        .filter(|(id, _)| !answered.contains(id))
        .collect()
}

/// moltbot's `repairToolUseResultPairing`: each assistant tool-call turn is followed directly by
/// one result per call (moved up from later in its span, or synthesised); free-floating and
/// duplicate results are dropped.
pub fn repair_tool_use_result_pairing(mut messages: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    let mut seen: HashSet<String> = HashSet::new();
    let mut i = 0;
    // Each message is moved out once (a long history is not copied again).
    while i < messages.len() {
        let msg = std::mem::take(&mut messages[i]);
        i += 1;
        match role(&msg) {
            Some("assistant") => {}
            Some("toolResult") if msg.is_object() => continue,
            _ => {
                out.push(msg);
                continue;
            }
        }
        let calls = tool_calls(&msg);
        if calls.is_empty() {
            out.push(msg);
            continue;
        }
        let ids: HashSet<&str> = calls.iter().map(|(id, _)| id.as_str()).collect();
        let mut found: Vec<(String, Value)> = Vec::new();
        let mut remainder = Vec::new();
        while i < messages.len() && role(&messages[i]) != Some("assistant") {
            let next = std::mem::take(&mut messages[i]);
            i += 1;
            if role(&next) != Some("toolResult") {
                remainder.push(next);
                continue;
            }
            let id = tool_result_id(&next).filter(|id| ids.contains(id.as_str()));
            // Matching results are kept once; anything else in the span is an orphan.
            if let Some(id) = id {
                if !seen.contains(&id) && !found.iter().any(|(f, _)| *f == id) {
                    found.push((id, next));
                }
            }
        }
        out.push(msg);
        for (id, name) in &calls {
            let result = found.iter().find(|(f, _)| f == id).map(|(_, r)| r.clone());
            let result = result.unwrap_or_else(|| missing_tool_result(id, name.as_deref()));
            if seen.insert(id.clone()) {
                out.push(result);
            }
        }
        out.extend(remainder);
    }
    out
}

/// Google: consecutive assistant messages merged (content joined; later usage, stopReason and
/// errorMessage win).
pub fn validate_gemini_turns(messages: Vec<Value>) -> Vec<Value> {
    merge_consecutive(messages, "assistant", |prev, cur| {
        let mut merged = prev.clone();
        merged.insert("content".into(), Value::Array(joined_content(prev, cur)));
        for k in ["usage", "stopReason", "errorMessage"] {
            if let Some(v) = cur.get(k).filter(|v| truthy(v)) {
                merged.insert(k.into(), v.clone());
            }
        }
        merged
    })
}

/// Anthropic: consecutive user messages merged into the later one (content joined, the later
/// timestamp unless it has none).
pub fn validate_anthropic_turns(messages: Vec<Value>) -> Vec<Value> {
    merge_consecutive(messages, "user", |prev, cur| {
        let mut merged = cur.clone();
        merged.insert("content".into(), Value::Array(joined_content(prev, cur)));
        let ts = cur.get("timestamp").filter(|t| !t.is_null());
        if let Some(ts) = ts.or_else(|| prev.get("timestamp")) {
            merged.insert("timestamp".into(), ts.clone());
        }
        merged
    })
}

fn merge_consecutive(
    messages: Vec<Value>,
    target: &str,
    merge: impl Fn(&Map<String, Value>, &Map<String, Value>) -> Map<String, Value>,
) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    let mut last_role: Option<String> = None;
    for msg in messages {
        let Some(r) = role(&msg).map(str::to_string) else {
            out.push(msg);
            continue;
        };
        let prev = out.last().and_then(Value::as_object);
        if r == target && last_role.as_deref() == Some(target) {
            if let (Some(prev), Some(cur)) = (prev, msg.as_object()) {
                let merged = Value::Object(merge(prev, cur));
                if let Some(slot) = out.last_mut() {
                    *slot = merged;
                }
                continue;
            }
        }
        out.push(msg);
        last_role = Some(r);
    }
    out
}

/// Content blocks of both messages. Upstream drops string content here; it is kept as a text
/// block instead so no words are lost.
fn joined_content(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<Value> {
    let blocks = |m: &Map<String, Value>| match m.get("content") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        _ => Vec::new(),
    };
    let mut out = blocks(a);
    out.extend(blocks(b));
    out
}

/// Keep only the last `limit` user turns and what follows each.
pub fn limit_history_turns(messages: Vec<Value>, limit: Option<u64>) -> Vec<Value> {
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return messages;
    };
    let mut users = 0;
    let mut last_user = messages.len();
    for i in (0..messages.len()).rev() {
        if role(&messages[i]) == Some("user") {
            users += 1;
            if users > limit {
                return messages[last_user..].to_vec();
            }
            last_user = i;
        }
    }
    messages
}

/// `channels.<ch>.dms.<peer>.historyLimit`, else `channels.<ch>.dmHistoryLimit`, for DM keys
/// (`agent:<id>:<ch>:dm:<peer>`, a `:thread:`/`:topic:` suffix ignored).
pub fn dm_history_limit(session_key: &str, config: &Value) -> Option<u64> {
    let parts: Vec<&str> = session_key.split(':').filter(|p| !p.is_empty()).collect();
    let rest = if parts.len() >= 3 && parts[0] == "agent" {
        &parts[2..]
    } else {
        &parts[..]
    };
    let provider = rest.first()?.to_lowercase();
    if rest.get(1).map(|k| k.to_lowercase()).as_deref() != Some("dm") {
        return None;
    }
    let user = strip_thread_suffix(&rest[2..].join(":"));
    let cfg = config.get("channels")?.get(&provider)?.as_object()?;
    let per_dm = cfg
        .get("dms")
        .and_then(|d| d.get(&user))
        .and_then(|d| d.get("historyLimit"));
    if !user.is_empty() {
        if let Some(v) = per_dm {
            return v.as_u64();
        }
    }
    cfg.get("dmHistoryLimit").and_then(Value::as_u64)
}

fn strip_thread_suffix(id: &str) -> String {
    let lower = id.to_lowercase();
    for marker in [":thread:", ":topic:"] {
        if let Some(pos) = lower.rfind(marker) {
            let tail = &id[pos + marker.len()..];
            if pos > 0 && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                return id[..pos].to_string();
            }
        }
    }
    id.to_string()
}

/// pi-ai's request-time pass: error/aborted assistant messages are not replayed, and a tool call
/// left without a result gets `No result provided` before the next assistant or user message
/// (and at the end, since the new prompt follows).
pub fn drop_failed_and_patch_orphans(messages: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    let mut pending: Vec<(String, Option<String>)> = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    let flush = |out: &mut Vec<Value>, pending: &mut Vec<_>, answered: &mut HashSet<String>| {
        for (id, name) in pending.drain(..) {
            let name: Option<String> = name;
            if !answered.contains(&id) {
                out.push(
                    json!({"role": "toolResult", "toolCallId": id, "toolName": name,
                    "content": [{"type": "text", "text": "No result provided"}],
                    "isError": true, "timestamp": crate::util::now_ms()}),
                );
            }
        }
        answered.clear();
    };
    for m in messages {
        match role(&m) {
            Some("assistant") => {
                flush(&mut out, &mut pending, &mut answered);
                let stop = m.get("stopReason").and_then(Value::as_str);
                if matches!(stop, Some("error" | "aborted")) {
                    continue;
                }
                pending = tool_calls(&m);
                out.push(m);
            }
            Some("toolResult") => {
                answered.extend(tool_result_id(&m));
                out.push(m);
            }
            Some("user") => {
                flush(&mut out, &mut pending, &mut answered);
                out.push(m);
            }
            _ => out.push(m),
        }
    }
    flush(&mut out, &mut pending, &mut answered);
    out
}
