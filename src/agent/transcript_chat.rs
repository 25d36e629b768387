//! The `chat.history` view of a transcript (gateway-protocol.md §4.5): every stored message in
//! file order, channel envelopes and `[message_id: …]` lines stripped from user text, the last
//! `limit`, trimmed from the oldest end to 6 MiB of JSON.

use super::history::{role, truthy};
use super::{js_compact, parse_lines};
use serde_json::{json, Value};
use std::path::Path;

/// `chat.history`: default and hard maximum message counts, and the JSON byte cap.
pub const CHAT_HISTORY_DEFAULT_LIMIT: usize = 200;
pub const CHAT_HISTORY_MAX_LIMIT: usize = 1000;
pub const CHAT_HISTORY_MAX_BYTES: usize = 6 * 1024 * 1024;

/// `chat.history` for a transcript file: every line's `message` in file order (all branches,
/// errors included, no header check, as upstream reads it), the last `limit` (at most 1000),
/// channel envelopes and `[message_id: …]` lines stripped from user text, then trimmed from the
/// oldest end to 6 MiB of JSON. A missing file is an empty history.
pub fn chat_history(path: &Path, limit: usize) -> Vec<Value> {
    let Ok(text) = crate::util::read_regular_file(path) else {
        return Vec::new();
    };
    chat_history_from_text(&text, limit)
}

pub fn chat_history_from_text(text: &str, limit: usize) -> Vec<Value> {
    let (values, _) = parse_lines(text);
    let messages: Vec<Value> = values
        .into_iter()
        .filter_map(|mut v| v.get_mut("message").map(Value::take))
        .filter(truthy)
        .collect();
    let max = limit.min(CHAT_HISTORY_MAX_LIMIT);
    let start = messages.len().saturating_sub(max);
    let stripped = messages[start..]
        .iter()
        .map(strip_envelope_from_message)
        .collect();
    cap_by_json_bytes(stripped, CHAT_HISTORY_MAX_BYTES)
}

/// Drops the oldest items until the JSON array fits `max_bytes` (always keeps the newest one).
pub fn cap_by_json_bytes(items: Vec<Value>, max_bytes: usize) -> Vec<Value> {
    if items.is_empty() {
        return items;
    }
    let sizes: Vec<usize> = items.iter().map(|v| js_compact(v).len()).collect();
    let mut bytes = 2 + sizes.iter().sum::<usize>() + items.len() - 1;
    let mut start = 0;
    while bytes > max_bytes && start < items.len() - 1 {
        bytes -= sizes[start] + 1;
        start += 1;
    }
    items.into_iter().skip(start).collect()
}

/// Strips the envelope from a user message's text (string content, text blocks, or `text`).
pub fn strip_envelope_from_message(message: &Value) -> Value {
    let is_user = role(message).map(str::to_lowercase).as_deref() == Some("user");
    let mut m = message.clone();
    if !is_user {
        return m;
    }
    let clean = |s: &str| strip_message_id_hints(strip_envelope(s));
    match m.get_mut("content") {
        Some(Value::String(s)) => *s = clean(s),
        Some(Value::Array(blocks)) => {
            for b in blocks
                .iter_mut()
                .filter(|b| b.get("type") == Some(&json!("text")))
            {
                if let Some(Value::String(t)) = b.get_mut("text") {
                    *t = clean(t);
                }
            }
        }
        _ => {
            if let Some(Value::String(t)) = m.get_mut("text") {
                *t = clean(t);
            }
        }
    }
    m
}

const ENVELOPE_CHANNELS: &[&str] = &[
    "WebChat",
    "WhatsApp",
    "Telegram",
    "Signal",
    "Slack",
    "Discord",
    "Google Chat",
    "iMessage",
    "Teams",
    "Matrix",
    "Zalo",
    "Zalo Personal",
    "BlueBubbles",
];

/// Removes a leading `[<header>] ` when the header looks like a channel envelope (a channel
/// label, or a `YYYY-MM-DD HH:MM` / `YYYY-MM-DDTHH:MMZ` time).
pub fn strip_envelope(text: &str) -> &str {
    let Some(inner) = text.strip_prefix('[') else {
        return text;
    };
    let Some(end) = inner.find(']').filter(|&e| e > 0) else {
        return text;
    };
    let header = &inner[..end];
    let looks = has_envelope_time(header)
        || ENVELOPE_CHANNELS
            .iter()
            .any(|l| header.starts_with(&format!("{l} ")));
    if !looks {
        return text;
    }
    inner[end + 1..].trim_start()
}

/// `\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z\b` or `\d{4}-\d{2}-\d{2} \d{2}:\d{2}\b` anywhere.
fn has_envelope_time(h: &str) -> bool {
    let b = h.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let fits = |at: usize, pat: &[u8]| {
        pat.iter().enumerate().all(|(k, p)| {
            b.get(at + k).is_some_and(|c| {
                if *p == b'd' {
                    c.is_ascii_digit()
                } else {
                    c == p
                }
            })
        })
    };
    (0..b.len()).any(|i| {
        let boundary = |end: usize| b.get(end).is_none_or(|c| !word(*c));
        (fits(i, b"dddd-dd-ddTdd:ddZ") && boundary(i + 17))
            || (fits(i, b"dddd-dd-dd dd:dd") && boundary(i + 16))
    })
}

/// Drops whole `[message_id: …]` lines (only when the text contains the lowercase marker).
pub fn strip_message_id_hints(text: &str) -> String {
    if !text.contains("[message_id:") {
        return text.to_string();
    }
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let kept: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !is_message_id_line(l))
        .collect();
    if kept.len() == lines.len() {
        text.to_string()
    } else {
        kept.join("\n")
    }
}

fn is_message_id_line(line: &str) -> bool {
    let t = line.trim();
    let prefix = "[message_id:";
    let head_ok = t
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix));
    let Some(inner) = t
        .get(prefix.len()..)
        .filter(|_| head_ok)
        .and_then(|r| r.strip_suffix(']'))
    else {
        return false;
    };
    !inner.is_empty() && !inner.contains(']')
}
