//! Reading a `/v1/chat/completions` request as upstream does (gateway-protocol.md §5.5): the
//! bearer token, the agent id (headers, then `model`), the session key, and the folding of the
//! OpenAI `messages` list into one prompt plus an extra system prompt. Pure functions.

use serde_json::Value;

/// `[Chat messages since your last reply - for context]` (upstream `HISTORY_CONTEXT_MARKER`).
const HISTORY_MARKER: &str = "[Chat messages since your last reply - for context]";
/// Upstream `CURRENT_MESSAGE_MARKER`.
const CURRENT_MARKER: &str = "[Current message - respond to this]";
/// The model name echoed when the request names none.
pub const DEFAULT_MODEL: &str = "moltbot";

/// What the agent is asked, folded from `messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Empty when the request has no user/tool/assistant message with text.
    pub message: String,
    pub extra_system_prompt: Option<String>,
}

/// `Authorization: Bearer <token>` (scheme case-insensitive, surrounding space trimmed).
pub fn bearer_token(authorization: Option<&str>) -> Option<String> {
    let raw = authorization?.trim();
    let scheme = raw.get(..7)?;
    if !scheme.eq_ignore_ascii_case("bearer ") {
        return None;
    }
    let token = raw[7..].trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// `^[a-z0-9][a-z0-9_-]{0,63}$`, case-insensitive.
fn is_agent_id(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok && s.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The agent named by `model`: `moltbot:<id>`, `moltbot/<id>` (and the npm build's
/// `clawdbot…` spellings) or `agent:<id>`.
pub fn agent_from_model(model: &str) -> Option<String> {
    let raw = model.trim();
    let lower = raw.to_ascii_lowercase();
    let prefixes = ["moltbot:", "moltbot/", "clawdbot:", "clawdbot/", "agent:"];
    let id = prefixes
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| &raw[p.len()..])?;
    is_agent_id(id).then(|| crate::config::normalize_agent_id(id))
}

/// Header first (`x-moltbot-agent-id`, `x-moltbot-agent`, then the `x-clawdbot-` twins), then
/// `model`, else `main` (upstream does not consult the configured default agent here).
pub fn resolve_agent_id(header: &dyn Fn(&str) -> Option<String>, model: &str) -> String {
    let from_header = [
        "x-moltbot-agent-id",
        "x-moltbot-agent",
        "x-clawdbot-agent-id",
        "x-clawdbot-agent",
    ]
    .iter()
    .find_map(|name| {
        header(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    });
    if let Some(id) = from_header {
        return crate::config::normalize_agent_id(&id);
    }
    agent_from_model(model).unwrap_or_else(|| "main".into())
}

/// `x-moltbot-session-key` as sent; else `agent:<id>:openai-user:<user>` (lower-cased, as
/// upstream's main-key normalisation does); else a fresh `agent:<id>:openai:<uuid>`.
pub fn resolve_session_key(
    header: &dyn Fn(&str) -> Option<String>,
    agent_id: &str,
    user: Option<&str>,
) -> String {
    let explicit = ["x-moltbot-session-key", "x-clawdbot-session-key"]
        .iter()
        .find_map(|name| {
            header(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        });
    if let Some(key) = explicit {
        return key;
    }
    let main_key = match user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(user) => format!("openai-user:{user}"),
        None => format!("openai:{}", crate::util::uuid_v4()),
    };
    format!("agent:{agent_id}:{}", main_key.to_lowercase())
}

/// A message's text: a string, or the text of its `text`/`input_text` parts joined by `\n`.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(part_text)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn part_text(part: &Value) -> Option<&str> {
    let text = part.get("text").and_then(Value::as_str);
    match part.get("type").and_then(Value::as_str) {
        Some("text") | Some("input_text") if text.is_some() => text,
        _ => part.get("input_text").and_then(Value::as_str),
    }
}

struct Entry {
    /// `user`, `assistant` or `tool` (`function` counts as `tool`).
    role: &'static str,
    sender: String,
    body: String,
}

fn entry_of(msg: &Value) -> Result<Option<Entry>, String> {
    let role = msg.get("role").and_then(Value::as_str).unwrap_or("").trim();
    let body = content_text(msg.get("content")).trim().to_string();
    if role.is_empty() || body.is_empty() {
        return Ok(None);
    }
    if role == "system" || role == "developer" {
        return Err(body);
    }
    let name = msg.get("name").and_then(Value::as_str).unwrap_or("").trim();
    let (role, sender) = match role {
        "user" => ("user", "User".to_string()),
        "assistant" => ("assistant", "Assistant".to_string()),
        "tool" | "function" if !name.is_empty() => ("tool", format!("Tool:{name}")),
        "tool" | "function" => ("tool", "Tool".to_string()),
        _ => return Ok(None),
    };
    Ok(Some(Entry { role, sender, body }))
}

/// System/developer texts become the extra system prompt (joined by blank lines); the last
/// user/tool message is the current one, and the turns before it are folded into a history
/// block as upstream's `buildHistoryContextFromEntries` writes it. Turns after it are dropped.
pub fn build_prompt(messages: Option<&Value>) -> Prompt {
    let mut system = Vec::new();
    let mut entries = Vec::new();
    for msg in messages.and_then(Value::as_array).into_iter().flatten() {
        match entry_of(msg) {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {}
            Err(text) => system.push(text),
        }
    }
    let extra_system_prompt = (!system.is_empty()).then(|| system.join("\n\n"));
    let current = entries
        .iter()
        .rposition(|e| e.role == "user" || e.role == "tool")
        .or_else(|| entries.len().checked_sub(1));
    let message = match current {
        None => String::new(),
        Some(0) => entries[0].body.clone(),
        Some(i) => {
            let line = |e: &Entry| format!("{}: {}", e.sender, e.body);
            let history: Vec<String> = entries[..i].iter().map(line).collect();
            [
                HISTORY_MARKER.to_string(),
                history.join("\n"),
                String::new(),
                CURRENT_MARKER.to_string(),
                line(&entries[i]),
            ]
            .join("\n")
        }
    };
    Prompt {
        message,
        extra_system_prompt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_headers(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer  abc ")), Some("abc".into()));
        assert_eq!(bearer_token(Some("bearer abc")), Some("abc".into()));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn agent_from_model_and_headers() {
        assert_eq!(agent_from_model("moltbot:Ops"), Some("ops".into()));
        assert_eq!(agent_from_model("moltbot/ops"), Some("ops".into()));
        assert_eq!(agent_from_model("clawdbot:ops"), Some("ops".into()));
        assert_eq!(agent_from_model("AGENT:work_1"), Some("work_1".into()));
        assert_eq!(agent_from_model("moltbot"), None);
        assert_eq!(agent_from_model("gpt-4o"), None);
        assert_eq!(agent_from_model("agent:-x"), None);
        assert_eq!(resolve_agent_id(&no_headers, "gpt-4o"), "main");
        let h = |n: &str| (n == "x-moltbot-agent").then(|| " Work ".to_string());
        assert_eq!(resolve_agent_id(&h, "agent:other"), "work");
    }

    #[test]
    fn session_keys() {
        assert_eq!(
            resolve_session_key(&no_headers, "main", Some(" Bob ")),
            "agent:main:openai-user:bob"
        );
        let fresh = resolve_session_key(&no_headers, "ops", None);
        assert!(fresh.starts_with("agent:ops:openai:"), "{fresh}");
        assert_ne!(fresh, resolve_session_key(&no_headers, "ops", None));
        let h = |n: &str| (n == "x-moltbot-session-key").then(|| "custom:1".to_string());
        assert_eq!(resolve_session_key(&h, "ops", Some("bob")), "custom:1");
    }

    #[test]
    fn single_user_message_and_system_parts() {
        let p = build_prompt(Some(&json!([
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "image_url"}]},
        ])));
        assert_eq!(p.message, "hi");
        assert_eq!(
            p.extra_system_prompt.as_deref(),
            Some("Be terse.\n\nNo emoji.")
        );
    }

    #[test]
    fn history_is_folded_and_later_turns_dropped() {
        let p = build_prompt(Some(&json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "function", "name": "clock", "content": "12:00"},
            {"role": "user", "content": "time?"},
            {"role": "assistant", "content": "ignored"},
        ])));
        assert_eq!(
            p.message,
            "[Chat messages since your last reply - for context]\nUser: hi\nAssistant: hello\n\
             Tool:clock: 12:00\n\n[Current message - respond to this]\nUser: time?"
        );
        assert_eq!(p.extra_system_prompt, None);
    }

    #[test]
    fn no_user_message() {
        assert_eq!(build_prompt(None).message, "");
        let only_system =
            json!([{"role": "system", "content": "x"}, {"role": "user", "content": " "}]);
        assert_eq!(build_prompt(Some(&only_system)).message, "");
        let only_assistant = json!([{"role": "assistant", "content": "a"}]);
        assert_eq!(build_prompt(Some(&only_assistant)).message, "a");
    }
}
