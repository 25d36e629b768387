//! The user message of a turn: channel envelopes (`[Telegram Alice +2m 2026-01-27 10:04 EST] hi`)
//! with upstream's time-zone options (read from the system zoneinfo, no tz crate), `System:`
//! event lines, the abort note, `[message_id: …]` hints, the `/new`/`/reset` greeting prompt,
//! a leading thinking keyword, and `strip_envelope` for `chat.history`.
//!
//! Upstream: `src/auto-reply/envelope.ts`, `src/auto-reply/reply/{body,session-updates,
//! get-reply-run,inbound-text}.ts`, `src/auto-reply/thinking.ts`, `src/agents/date-time.ts`,
//! `src/channels/sender-label.ts`, `src/gateway/chat-sanitize.ts` (moltbot 2026.1.27-beta.1).

use serde_json::Value;

use super::reply::{is_js_space, js_trim};
use crate::util::iso_from_ms;

#[path = "envelope_tz.rs"]
mod tz;
pub use tz::{host_timezone, is_valid_timezone, resolve_user_timezone};
use tz::{zoned_parts, Zone};

/// Prepended after a run the user aborted.
pub const ABORT_NOTE: &str = "Note: The previous agent run was aborted by the user. Resume carefully or ask for clarification.";
/// The body of a bare `/new` or `/reset` on a fresh session.
pub const BARE_SESSION_RESET_PROMPT: &str = "A new session was started via /new or /reset. Say hi briefly (1-2 sentences) and ask what the user wants to do next. If the runtime model differs from default_model in the system prompt, mention the default model in the greeting. Do not mention internal steps, files, tools, or reasoning.";
/// Reply when nothing is left of the inbound body.
pub const EMPTY_BODY_REPLY: &str =
    "I didn't receive any text in your message. Please resend or add a caption.";

/// `agents.defaults.envelopeTimezone/Timestamp/Elapsed` and `userTimezone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeOptions {
    /// `local` (default), `utc`/`gmt`, `user`, or an IANA zone.
    pub timezone: Option<String>,
    pub include_timestamp: bool,
    pub include_elapsed: bool,
    pub user_timezone: Option<String>,
}

impl Default for EnvelopeOptions {
    fn default() -> Self {
        EnvelopeOptions {
            timezone: None,
            include_timestamp: true,
            include_elapsed: true,
            user_timezone: None,
        }
    }
}

impl EnvelopeOptions {
    /// `resolveEnvelopeFormatOptions`: only the literal `"off"` disables a part.
    pub fn from_config(cfg: &Value) -> Self {
        let d = cfg.pointer("/agents/defaults");
        let s = |k: &str| d.and_then(|d| d.get(k)).and_then(Value::as_str);
        EnvelopeOptions {
            timezone: s("envelopeTimezone").map(str::to_string),
            include_timestamp: s("envelopeTimestamp") != Some("off"),
            include_elapsed: s("envelopeElapsed") != Some("off"),
            user_timezone: s("userTimezone").map(str::to_string),
        }
    }
}

enum Mode {
    Utc,
    Zoned(Zone),
}

/// `resolveEnvelopeTimezone`; an unknown explicit zone falls back to `invalid` (UTC for
/// envelopes, local for `System:` lines, as upstream).
fn resolve_mode(opts: &EnvelopeOptions, invalid_is_utc: bool) -> Mode {
    let raw = opts.timezone.as_deref().map(js_trim).unwrap_or("");
    let lower = raw.to_ascii_lowercase();
    match lower.as_str() {
        "" | "local" | "host" => Mode::Zoned(Zone::local()),
        "utc" | "gmt" => Mode::Utc,
        "user" => {
            let tz = resolve_user_timezone(opts.user_timezone.as_deref());
            Mode::Zoned(Zone::iana(&tz).unwrap_or_else(Zone::local))
        }
        _ => match Zone::iana(raw) {
            Some(z) => Mode::Zoned(z),
            None if invalid_is_utc => Mode::Utc,
            None => Mode::Zoned(Zone::local()),
        },
    }
}

/// The envelope timestamp: `YYYY-MM-DDTHH:MMZ` (utc) or `YYYY-MM-DD HH:MM <zone>`.
pub fn format_envelope_timestamp(ms: u64, opts: &EnvelopeOptions) -> Option<String> {
    if ms == 0 || !opts.include_timestamp {
        return None;
    }
    Some(match resolve_mode(opts, true) {
        Mode::Utc => format!("{}Z", &iso_from_ms(ms)[..16]),
        Mode::Zoned(z) => {
            let (date, time, tz) = zoned_parts(ms, &z);
            format!("{date} {} {tz}", &time[..5])
        }
    })
}

/// A `System:` line timestamp: `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DD HH:MM:SS <zone>`.
pub fn format_system_event_timestamp(ms: u64, opts: &EnvelopeOptions) -> String {
    match resolve_mode(opts, false) {
        Mode::Utc => format!("{}Z", &iso_from_ms(ms)[..19]),
        Mode::Zoned(z) => {
            let (date, time, tz) = zoned_parts(ms, &z);
            format!("{date} {time} {tz}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Envelopes

/// `formatElapsedTime`: `45s`, `2m`, `3h`, `4d` (floored); `None` when the clock went back.
pub fn format_elapsed(current_ms: u64, previous_ms: u64) -> Option<String> {
    let secs = current_ms.checked_sub(previous_ms)? / 1000;
    Some(match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    })
}

/// The parts of `formatAgentEnvelope`.
#[derive(Debug, Clone, Default)]
pub struct Envelope<'a> {
    pub channel: &'a str,
    pub from: Option<&'a str>,
    pub host: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub timestamp_ms: Option<u64>,
    pub previous_ms: Option<u64>,
    pub body: &'a str,
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.map(js_trim).filter(|s| !s.is_empty())
}

/// `formatAgentEnvelope`: `[<Channel> <from> +<elapsed> <host> <ip> <timestamp>] <body>`.
pub fn format_agent_envelope(e: &Envelope, opts: &EnvelopeOptions) -> String {
    let mut parts = vec![nonempty(Some(e.channel)).unwrap_or("Channel").to_string()];
    let elapsed = match (e.timestamp_ms, e.previous_ms) {
        (Some(ts), Some(prev)) if opts.include_elapsed && ts != 0 && prev != 0 => {
            format_elapsed(ts, prev)
        }
        _ => None,
    };
    match (nonempty(e.from), elapsed) {
        (Some(from), Some(el)) => parts.push(format!("{from} +{el}")),
        (Some(from), None) => parts.push(from.to_string()),
        (None, Some(el)) => parts.push(format!("+{el}")),
        (None, None) => {}
    }
    parts.extend(nonempty(e.host).map(str::to_string));
    parts.extend(nonempty(e.ip).map(str::to_string));
    parts.extend(
        e.timestamp_ms
            .and_then(|ts| format_envelope_timestamp(ts, opts)),
    );
    format!("[{}] {}", parts.join(" "), e.body)
}

/// `formatInboundEnvelope`: `sender` is the sender label of a group/channel message (it becomes
/// a `Sender: ` body prefix); pass `None` for direct chats.
pub fn format_envelope(
    channel: &str,
    from: Option<&str>,
    previous_ms: Option<u64>,
    timestamp_ms: Option<u64>,
    sender: Option<&str>,
    text: &str,
    opts: &EnvelopeOptions,
) -> String {
    let body = match nonempty(sender) {
        Some(s) => format!("{s}: {text}"),
        None => text.to_string(),
    };
    let env = Envelope {
        channel,
        from,
        timestamp_ms,
        previous_ms,
        body: &body,
        ..Default::default()
    };
    format_agent_envelope(&env, opts)
}

/// `resolveSenderLabel`: `Name (id)`, or whichever of the two exists.
pub fn sender_label(
    name: Option<&str>,
    username: Option<&str>,
    id: Option<&str>,
) -> Option<String> {
    let display = nonempty(name).or(nonempty(username)).unwrap_or("");
    let id = nonempty(id).unwrap_or("");
    match (display.is_empty(), id.is_empty()) {
        (false, false) if display != id => Some(format!("{display} ({id})")),
        (false, _) => Some(display.to_string()),
        (true, false) => Some(id.to_string()),
        (true, true) => None,
    }
}

/// `formatInboundFromLabel`: `<group> id:<id>` for groups, `<name> id:<id>` for DMs when the
/// id differs from the name.
pub fn format_from_label(is_group: bool, label: Option<&str>, id: Option<&str>) -> String {
    let id = nonempty(id);
    let label = nonempty(label).unwrap_or(if is_group { "Group" } else { "" });
    match id {
        Some(id) if is_group || id != label => format!("{label} id:{id}"),
        _ => label.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The user message

/// `normalizeInboundTextNewlines`: CRLF/CR → LF and a literal `\n` (backslash-n) → LF.
pub fn normalize_inbound_newlines(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace("\\n", "\n")
}

/// Whether a fresh session's body is a bare `/new`/`/reset` (run the greeting prompt instead).
/// `raw_body` is the command text, `stripped_body` what is left after command parsing.
pub fn is_bare_session_reset(is_new_session: bool, raw_body: &str, stripped_body: &str) -> bool {
    let raw = js_trim(raw_body);
    let bare = raw == "/new" || raw == "/reset";
    is_new_session && ((js_trim(stripped_body).is_empty() && !raw.is_empty()) || bare)
}

/// A queued system event (cron `systemEvent`, exec completion, node event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemEvent {
    pub ts_ms: u64,
    pub text: String,
}

/// `compactSystemEvent`: drops heartbeat noise, trims `Node:` lines' `· last input …` part.
pub fn compact_system_event(line: &str) -> Option<String> {
    let t = js_trim(line);
    let lower = t.to_lowercase();
    let noise = lower.contains("reason periodic")
        || lower.starts_with("read heartbeat.md")
        || lower.contains("heartbeat poll")
        || lower.contains("heartbeat wake");
    if t.is_empty() || noise {
        return None;
    }
    if !t.starts_with("Node:") {
        return Some(t.to_string());
    }
    Some(strip_last_input(t))
}

/// `t.replace(/ · last input [^·]+/i, "").trim()`: the first match only.
fn strip_last_input(t: &str) -> String {
    const NEEDLE: &str = " · last input ";
    let lower = t.to_ascii_lowercase(); // same byte offsets as `t`
    let mut from = 0;
    while let Some(k) = lower[from..].find(NEEDLE) {
        let at = from + k;
        let tail = at + NEEDLE.len();
        let len = t[tail..].find('·').unwrap_or(t.len() - tail);
        if len > 0 {
            let out = format!("{}{}", &t[..at], &t[tail + len..]);
            return js_trim(&out).to_string();
        }
        from = at + 1;
    }
    t.to_string()
}

/// `System: [<ts>] <event>` lines for the queued events (noise filtered).
pub fn system_event_lines(events: &[SystemEvent], opts: &EnvelopeOptions) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let text = compact_system_event(&e.text)?;
            let ts = format_system_event_timestamp(e.ts_ms, opts);
            Some(format!("System: [{ts}] {text}"))
        })
        .collect()
}

/// The inputs of the prompt body, top to bottom.
#[derive(Debug, Clone, Default)]
pub struct UserMessage<'a> {
    /// The envelope-wrapped body (channels) or the raw text (`chat.send`).
    pub body: &'a str,
    /// `MessageSid`: the channel message id, or the `chat.send` idempotency key.
    pub message_id: Option<&'a str>,
    pub aborted_last_run: bool,
    /// Full `System: …` lines (`system_event_lines`, channel summary first).
    pub system_lines: &'a [String],
    /// The thread starter on a new thread session.
    pub thread_starter: Option<&'a str>,
}

/// The prompt text: thread starter, `System:` block, abort note, body, `[message_id: …]`.
pub fn build_user_message(m: &UserMessage) -> String {
    let mut body = m.body.to_string();
    if m.aborted_last_run {
        body = format!("{ABORT_NOTE}\n\n{body}");
    }
    if let Some(id) = nonempty(m.message_id) {
        body = format!("{body}\n[message_id: {id}]");
    }
    if !m.system_lines.is_empty() {
        body = format!("{}\n\n{body}", m.system_lines.join("\n"));
    }
    match nonempty(m.thread_starter) {
        Some(t) if !body.is_empty() => format!("[Thread starter - for context]\n{t}\n\n{body}"),
        Some(t) => format!("[Thread starter - for context]\n{t}"),
        None => body,
    }
}

/// `normalizeThinkLevel`'s keyword lists, checked in this order (`think-hard` is low).
#[rustfmt::skip]
const THINK_WORDS: [(&str, &[&str]); 8] = [
    ("off", &["off"]),
    ("low", &["on", "enable", "enabled"]),
    ("minimal", &["min", "minimal"]),
    ("low", &["low", "thinkhard", "think-hard", "think_hard"]),
    ("medium", &["mid", "med", "medium", "thinkharder", "think-harder", "harder"]),
    ("high", &["high", "ultra", "ultrathink", "think-hard", "thinkhardest", "highest", "max"]),
    ("xhigh", &["xhigh", "x-high", "x_high"]),
    ("minimal", &["think"]),
];

/// `normalizeThinkLevel`: canonical level for a keyword (`on`→low, `ultrathink`→high, …).
pub fn normalize_think_level(raw: &str) -> Option<&'static str> {
    let key = raw.to_lowercase();
    THINK_WORDS
        .iter()
        .find(|(_, words)| words.contains(&key.as_str()))
        .map(|(level, _)| *level)
}

/// When no level was resolved: a first word that is a thinking keyword becomes the level and is
/// removed (the rest is re-joined with single spaces). `xhigh` only if `allow_xhigh`.
pub fn consume_leading_think_level(
    body: &str,
    allow_xhigh: bool,
) -> Option<(&'static str, String)> {
    let mut parts = body.split(is_js_space).filter(|p| !p.is_empty());
    if body.starts_with(is_js_space) {
        return None; // JS `split(/\s+/)` yields "" first, which is no keyword
    }
    let level = normalize_think_level(parts.next()?)?;
    if level == "xhigh" && !allow_xhigh {
        return None;
    }
    Some((level, parts.collect::<Vec<_>>().join(" ")))
}

// ---------------------------------------------------------------------------------------------
// chat.history

/// Channel labels whose `[<Label> …]` header is recognised without a timestamp.
#[rustfmt::skip]
const ENVELOPE_CHANNELS: [&str; 13] = [
    "WebChat", "WhatsApp", "Telegram", "Signal", "Slack", "Discord", "Google Chat", "iMessage",
    "Teams", "Matrix", "Zalo", "Zalo Personal", "BlueBubbles",
];

/// `\d{4}-\d{2}-\d{2}(T| )\d{2}:\d{2}` followed by `Z\b` (T form) or `\b` (space form).
fn has_timestamp(header: &str) -> bool {
    let b = header.as_bytes();
    let digits = |i: usize, n: usize| {
        b.get(i..i + n)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let not_word = |i: usize| {
        b.get(i)
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
    };
    (0..b.len()).any(|i| {
        let date = digits(i, 4)
            && b.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2)
            && b.get(i + 7) == Some(&b'-')
            && digits(i + 8, 2);
        let time = digits(i + 11, 2) && b.get(i + 13) == Some(&b':') && digits(i + 14, 2);
        date && time
            && match b.get(i + 10) {
                Some(b'T') => b.get(i + 16) == Some(&b'Z') && not_word(i + 17),
                Some(b' ') => not_word(i + 16),
                _ => false,
            }
    })
}

/// `stripEnvelope`: removes a leading `[…] ` header that looks like an envelope.
pub fn strip_envelope_prefix(text: &str) -> &str {
    let Some(rest) = text.strip_prefix('[') else {
        return text;
    };
    let Some(close) = rest.find(']').filter(|&k| k > 0) else {
        return text;
    };
    let header = &rest[..close];
    let known = ENVELOPE_CHANNELS
        .iter()
        .any(|l| header.starts_with(&format!("{l} ")));
    if !known && !has_timestamp(header) {
        return text;
    }
    rest[close + 1..].trim_start_matches(is_js_space)
}

/// Drops whole lines `[message_id: …]` (case-insensitive, surrounding spaces allowed).
pub fn strip_message_id_hints(text: &str) -> String {
    if !text.contains("[message_id:") {
        return text.to_string();
    }
    // `^\s*\[message_id:\s*[^\]]+\]\s*$` (i): one or more non-`]` chars inside.
    let is_hint = |line: &str| {
        let t = js_trim(line).to_ascii_lowercase();
        t.strip_prefix("[message_id:")
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|inner| !inner.is_empty() && !inner.contains(']'))
    };
    // `split(/\r?\n/)`: a CR goes only where it precedes a LF.
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len() - 1;
    for line in &mut lines[..last] {
        *line = line.strip_suffix('\r').unwrap_or(line);
    }
    let kept: Vec<&str> = lines.iter().copied().filter(|l| !is_hint(l)).collect();
    if kept.len() == lines.len() {
        text.to_string()
    } else {
        kept.join("\n")
    }
}

/// What `chat.history` shows for a user text: envelope header and message-id lines removed.
pub fn strip_envelope(text: &str) -> String {
    strip_message_id_hints(strip_envelope_prefix(text))
}

/// `stripEnvelopeFromMessage`: applies `strip_envelope` to a user message's `content` string,
/// its `text` parts, or its `text` field. Returns whether anything changed.
pub fn strip_envelope_from_message(msg: &mut Value) -> bool {
    let is_user = msg
        .get("role")
        .and_then(Value::as_str)
        .is_some_and(|r| r.eq_ignore_ascii_case("user"));
    if !is_user {
        return false;
    }
    let mut changed = false;
    let mut fix = |v: &mut Value| {
        if let Some(s) = v.as_str() {
            let out = strip_envelope(s);
            if out != s {
                *v = Value::String(out);
                changed = true;
            }
        }
    };
    match msg.get_mut("content") {
        Some(Value::String(_)) => fix(&mut msg["content"]),
        Some(Value::Array(parts)) => {
            for part in parts.iter_mut() {
                if part.get("type").and_then(Value::as_str) == Some("text") {
                    if let Some(t) = part.get_mut("text") {
                        fix(t);
                    }
                }
            }
        }
        _ => {
            if let Some(t) = msg.get_mut("text") {
                fix(t);
            }
        }
    }
    changed
}
