//! Agent routing and session keys: which agent answers an inbound message (`bindings[]`, tiers as
//! upstream's `resolve-route.ts`), the session key it lands in (`session-key.ts`), and how a key
//! sent by a client is canonicalised (`main` → `agent:<default>:main`). Pure functions over the
//! config `Value`; nothing here touches the disk.

use crate::config::{default_agent_id, normalize_agent_id};
use serde_json::Value;

pub const DEFAULT_MAIN_KEY: &str = "main";
pub const DEFAULT_ACCOUNT_ID: &str = "default";

/// Which binding tier picked the agent (`matchedBy` upstream, used in logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    Peer,
    Guild,
    Team,
    Account,
    Channel,
    Default,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Peer => "binding.peer",
            MatchedBy::Guild => "binding.guild",
            MatchedBy::Team => "binding.team",
            MatchedBy::Account => "binding.account",
            MatchedBy::Channel => "binding.channel",
            MatchedBy::Default => "default",
        }
    }
}

/// The outcome of routing one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRoute {
    pub agent_id: String,
    /// Trimmed, lowercased channel id.
    pub channel: String,
    /// Trimmed account id, `default` when empty (case kept, as upstream).
    pub account_id: String,
    /// Lowercased key used for persistence and the run lane.
    pub session_key: String,
    /// `agent:<agentId>:main`, where DMs collapse under `dmScope: "main"`.
    pub main_session_key: String,
    pub matched_by: MatchedBy,
}

/// Routes `(channel, accountId, peer, guildId, teamId)` to an agent and session key
/// (config-and-state.md §2.5 and §5). `peer` is `(kind, id)` with kind `dm`, `group` or `channel`.
pub fn resolve_route(
    config: &Value,
    channel: &str,
    account_id: Option<&str>,
    peer: Option<(&str, &str)>,
    guild_id: Option<&str>,
    team_id: Option<&str>,
) -> ResolvedRoute {
    let channel = channel.trim().to_lowercase();
    let account_id = match account_id.map(str::trim) {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => DEFAULT_ACCOUNT_ID.to_string(),
    };
    let peer = peer.map(|(kind, id)| (kind, id.trim()));
    let guild_id = guild_id.unwrap_or("").trim();
    let team_id = team_id.unwrap_or("").trim();

    let candidates: Vec<&Value> = bindings(config)
        .filter(|b| binding_matches_channel(b, &channel))
        .filter(|b| account_matches(match_str(b, "accountId"), &account_id))
        .collect();

    let (agent, matched_by) = pick_binding(&candidates, peer, guild_id, team_id)
        .map(|(b, tier)| (b.get("agentId").and_then(Value::as_str).unwrap_or(""), tier))
        .unwrap_or(("", MatchedBy::Default));
    let agent_id = if matched_by == MatchedBy::Default {
        pick_existing_agent_id(config, &default_agent_id(config))
    } else {
        pick_existing_agent_id(config, agent)
    };
    let session = config.get("session");
    let dm_scope = session
        .and_then(|s| s.get("dmScope"))
        .and_then(Value::as_str)
        .unwrap_or("main");
    let links = session.and_then(|s| s.get("identityLinks"));
    let session_key =
        build_agent_session_key(&agent_id, &channel, peer, dm_scope, links).to_lowercase();
    let main_session_key = build_main_session_key(&agent_id, DEFAULT_MAIN_KEY).to_lowercase();
    ResolvedRoute {
        agent_id,
        channel,
        account_id,
        session_key,
        main_session_key,
        matched_by,
    }
}

/// The tiers in order; within a tier the first binding in file order wins.
fn pick_binding<'a>(
    candidates: &[&'a Value],
    peer: Option<(&str, &str)>,
    guild_id: &str,
    team_id: &str,
) -> Option<(&'a Value, MatchedBy)> {
    let find = |pred: &dyn Fn(&Value) -> bool| candidates.iter().copied().find(|b| pred(b));
    if let Some((kind, id)) = peer {
        if let Some(b) = find(&|b| peer_matches(b, kind, id)) {
            return Some((b, MatchedBy::Peer));
        }
    }
    // Upstream does not look at the binding's peer in the guild and team tiers.
    if !guild_id.is_empty() {
        if let Some(b) = find(&|b| id_matches(match_str(b, "guildId"), guild_id)) {
            return Some((b, MatchedBy::Guild));
        }
    }
    if !team_id.is_empty() {
        if let Some(b) = find(&|b| id_matches(match_str(b, "teamId"), team_id)) {
            return Some((b, MatchedBy::Team));
        }
    }
    let unscoped = |b: &Value| {
        let m = b.get("match");
        !["peer", "guildId", "teamId"]
            .iter()
            .any(|k| truthy(m.and_then(|m| m.get(*k))))
    };
    let star = |b: &Value| match_str(b, "accountId").map(str::trim) == Some("*");
    if let Some(b) = find(&|b| unscoped(b) && !star(b)) {
        return Some((b, MatchedBy::Account));
    }
    find(&|b| unscoped(b) && star(b)).map(|b| (b, MatchedBy::Channel))
}

fn bindings(config: &Value) -> impl Iterator<Item = &Value> {
    config
        .get("bindings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.is_object())
}

fn match_str<'a>(binding: &'a Value, key: &str) -> Option<&'a str> {
    binding.get("match")?.get(key)?.as_str()
}

/// JavaScript truthiness, for upstream's `!b.match?.peer` style checks.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(_) => true,
    }
}

fn binding_matches_channel(binding: &Value, channel: &str) -> bool {
    let key = match_str(binding, "channel")
        .unwrap_or("")
        .trim()
        .to_lowercase();
    !key.is_empty() && key == channel
}

/// Omitted/empty matches only `default`; `*` matches any; otherwise exact (case-sensitive).
fn account_matches(pattern: Option<&str>, actual: &str) -> bool {
    match pattern.map(str::trim).unwrap_or("") {
        "" => actual == DEFAULT_ACCOUNT_ID,
        "*" => true,
        p => p == actual,
    }
}

fn peer_matches(binding: &Value, kind: &str, id: &str) -> bool {
    let Some(peer) = binding.get("match").and_then(|m| m.get("peer")) else {
        return false;
    };
    let want_kind = peer.get("kind").and_then(Value::as_str).unwrap_or("");
    let want_kind = want_kind.trim().to_lowercase();
    let want_id = peer.get("id").and_then(Value::as_str).unwrap_or("").trim();
    !want_kind.is_empty() && !want_id.is_empty() && want_kind == kind && want_id == id
}

fn id_matches(pattern: Option<&str>, actual: &str) -> bool {
    let p = pattern.unwrap_or("").trim();
    !p.is_empty() && p == actual
}

/// Maps a bound agent id onto `agents.list`; an id the list does not know falls back to the
/// default agent (an empty list accepts any id).
fn pick_existing_agent_id(config: &Value, agent_id: &str) -> String {
    let trimmed = agent_id.trim();
    if trimmed.is_empty() {
        return normalize_agent_id(&default_agent_id(config));
    }
    let list = config.pointer("/agents/list").and_then(Value::as_array);
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return normalize_agent_id(trimmed);
    };
    let wanted = normalize_agent_id(trimmed);
    let found = list
        .iter()
        .filter_map(|a| a.get("id")?.as_str())
        .find(|id| normalize_agent_id(id) == wanted)
        .filter(|id| !id.trim().is_empty());
    match found {
        Some(id) => normalize_agent_id(id.trim()),
        None => normalize_agent_id(&default_agent_id(config)),
    }
}

/// Upstream `normalizeMessageChannel`: trimmed, lowercased, with the built-in aliases
/// (`imsg`, `google-chat`, `gchat`); `None` when empty.
pub fn normalize_channel_id(raw: &str) -> Option<String> {
    let lower = raw.trim().to_lowercase();
    let id = match lower.as_str() {
        "" => return None,
        "imsg" => "imessage".to_string(),
        "google-chat" | "gchat" => "googlechat".to_string(),
        _ => lower,
    };
    Some(id)
}

/// `session.mainKey` trimmed and lowercased, `main` when empty.
pub fn normalize_main_key(raw: Option<&str>) -> String {
    match raw.map(str::trim) {
        Some(k) if !k.is_empty() => k.to_lowercase(),
        _ => DEFAULT_MAIN_KEY.to_string(),
    }
}

/// `agent:<agentId>:<mainKey>`.
pub fn build_main_session_key(agent_id: &str, main_key: &str) -> String {
    let main_key = normalize_main_key(Some(main_key));
    format!("agent:{}:{main_key}", normalize_agent_id(agent_id))
}

/// The session key for an agent, channel and peer (§5 table). Routing always uses the `main`
/// main key here, whatever `session.mainKey` says, as upstream's route builder does.
pub fn build_agent_session_key(
    agent_id: &str,
    channel: &str,
    peer: Option<(&str, &str)>,
    dm_scope: &str,
    identity_links: Option<&Value>,
) -> String {
    let channel = non_empty_or(channel.trim().to_lowercase(), "unknown");
    let agent = normalize_agent_id(agent_id);
    let (kind, peer_id) = match peer {
        Some((kind, id)) => (kind, Some(non_empty_or(id.trim().to_string(), "unknown"))),
        None => ("dm", None),
    };
    if kind != "dm" {
        let id = non_empty_or(peer_id.unwrap_or_default(), "unknown").to_lowercase();
        return format!("agent:{agent}:{channel}:{kind}:{id}");
    }
    let mut id = peer_id.unwrap_or_default();
    if dm_scope != "main" {
        if let Some(linked) = linked_peer_id(identity_links, &channel, &id) {
            id = linked;
        }
    }
    let id = id.to_lowercase();
    match dm_scope {
        "per-channel-peer" if !id.is_empty() => format!("agent:{agent}:{channel}:dm:{id}"),
        "per-peer" if !id.is_empty() => format!("agent:{agent}:dm:{id}"),
        _ => build_main_session_key(agent_id, DEFAULT_MAIN_KEY),
    }
}

fn non_empty_or(s: String, fallback: &str) -> String {
    if s.is_empty() {
        fallback.to_string()
    } else {
        s
    }
}

/// `identityLinks`: the canonical name whose list holds `<peerId>` or `<channel>:<peerId>`.
fn linked_peer_id(links: Option<&Value>, channel: &str, peer_id: &str) -> Option<String> {
    let links = links?.as_object()?;
    let peer_id = peer_id.trim();
    if peer_id.is_empty() {
        return None;
    }
    let raw = peer_id.to_lowercase();
    let scoped = format!("{channel}:{peer_id}").trim().to_lowercase();
    for (canonical, ids) in links {
        let name = canonical.trim();
        let Some(ids) = ids.as_array().filter(|_| !name.is_empty()) else {
            continue;
        };
        let hit = ids
            .iter()
            .filter_map(Value::as_str)
            .map(|id| id.trim().to_lowercase())
            .any(|id| !id.is_empty() && (id == raw || id == scoped));
        if hit {
            return Some(name.to_string());
        }
    }
    None
}

/// Appends `:thread:<threadId>` (lowercased) when `use_suffix`; Discord passes `false` because a
/// thread is its own channel there.
pub fn thread_session_key(base: &str, thread_id: Option<&str>, use_suffix: bool) -> String {
    match thread_id.map(str::trim) {
        Some(t) if !t.is_empty() && use_suffix => format!("{base}:thread:{}", t.to_lowercase()),
        _ => base.to_string(),
    }
}

/// Telegram forum topic id: none outside forums (reply threads are not topics); a forum message
/// without a thread id is in the General topic, 1.
pub fn telegram_forum_thread_id(is_forum: bool, message_thread_id: Option<i64>) -> Option<i64> {
    if !is_forum {
        return None;
    }
    Some(message_thread_id.unwrap_or(1))
}

/// Telegram group peer id: `<chatId>` or `<chatId>:topic:<threadId>`.
pub fn telegram_group_peer_id(chat_id: i64, topic: Option<i64>) -> String {
    match topic {
        Some(t) => format!("{chat_id}:topic:{t}"),
        None => chat_id.to_string(),
    }
}

/// `agent:<id>:<rest>` split into `(agentId, rest)`; empty segments are ignored as upstream's
/// `split(":").filter(Boolean)` does.
pub fn parse_agent_session_key(key: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = key.trim().split(':').filter(|p| !p.is_empty()).collect();
    if parts.len() < 3 || parts[0] != "agent" {
        return None;
    }
    let agent = parts[1].trim();
    let rest = parts[2..].join(":");
    if agent.is_empty() || rest.is_empty() {
        return None;
    }
    Some((agent.to_string(), rest))
}

/// The agent a session key belongs to (`main` for keys without an agent prefix).
pub fn agent_id_from_session_key(key: &str) -> String {
    let parsed = parse_agent_session_key(key);
    normalize_agent_id(parsed.as_ref().map_or("main", |(a, _)| a.as_str()))
}

/// The store key for the default agent's main session, `global` under `session.scope: global`.
pub fn main_session_key(config: &Value) -> String {
    if session_str(config, "scope") == Some("global") {
        return "global".into();
    }
    let main_key = normalize_main_key(session_str(config, "mainKey"));
    build_main_session_key(&default_agent_id(config), &main_key)
}

fn session_str<'a>(config: &'a Value, key: &str) -> Option<&'a str> {
    config.get("session")?.get(key)?.as_str()
}

/// The key `chat.send`/`chat.history` read and write for a key as a client sent it
/// (upstream `resolveSessionStoreKey`): `main` and the main aliases of an agent become
/// `agent:<id>:<mainKey>` (`global` under global scope); other `agent:` keys are kept as sent
/// (not lowercased); bare keys get the default agent's prefix.
pub fn canonical_session_key(config: &Value, key_as_sent: &str) -> String {
    let raw = key_as_sent.trim();
    if raw.is_empty() || raw == "global" || raw == "unknown" {
        return raw.to_string();
    }
    if let Some((agent, _)) = parse_agent_session_key(raw) {
        return canonical_main_alias(config, &normalize_agent_id(&agent), raw);
    }
    let main_key = normalize_main_key(session_str(config, "mainKey"));
    if raw == "main" || raw == main_key {
        return main_session_key(config);
    }
    if raw.starts_with("agent:") {
        return raw.to_string();
    }
    format!(
        "agent:{}:{raw}",
        normalize_agent_id(&default_agent_id(config))
    )
}

fn canonical_main_alias(config: &Value, agent_id: &str, raw: &str) -> String {
    let main_key = normalize_main_key(session_str(config, "mainKey"));
    let agent_main = build_main_session_key(agent_id, &main_key);
    let alias = build_main_session_key(agent_id, DEFAULT_MAIN_KEY);
    let is_main = raw == "main" || raw == main_key || raw == agent_main || raw == alias;
    if !is_main {
        return raw.to_string();
    }
    if session_str(config, "scope") == Some("global") {
        "global".into()
    } else {
        agent_main
    }
}

/// `:thread:` or `:topic:` anywhere in the key (case-insensitive).
pub fn is_thread_session_key(key: &str) -> bool {
    let k = key.to_lowercase();
    k.contains(":thread:") || k.contains(":topic:")
}

/// The key before the last `:thread:`/`:topic:` marker, if any.
pub fn thread_parent_session_key(key: &str) -> Option<String> {
    let raw = key.trim();
    let lower = raw.to_lowercase();
    let idx = [":thread:", ":topic:"]
        .iter()
        .filter_map(|m| lower.rfind(m))
        .max()?;
    // `to_lowercase` can change byte lengths for non-ASCII text; only slice when it did not.
    if idx == 0 || lower.len() != raw.len() {
        return None;
    }
    let parent = raw[..idx].trim();
    (!parent.is_empty()).then(|| parent.to_string())
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
