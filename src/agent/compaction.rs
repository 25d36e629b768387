//! Compaction on context overflow (agents.md §4.3): pick a cut point keeping the most recent
//! ~20 000 tokens, summarise everything older with the same model and key, and append a
//! `compaction` entry so later history starts from the summary. Nothing is deleted from the file.

use serde_json::{json, Map, Value};

use crate::agent::providers::{self, Request, ThinkingLevel};
use crate::agent::transcript::Transcript;
use crate::agent::turn::TurnInput;
use crate::util::now_ms;

/// pi's `keepRecentTokens` default.
const KEEP_RECENT_TOKENS: u64 = 20_000;
/// `reserveTokens` as moltbot sets it (`compaction.reserveTokensFloor` default).
const RESERVE_TOKENS_FLOOR: u64 = 20_000;
const SYSTEM_PROMPT: &str = include_str!("templates/compaction-system.txt");
const SUMMARY_PROMPT: &str = include_str!("templates/compaction-prompt.txt");

/// Summarises the branch's older messages into a compaction entry. `Err` is the text upstream
/// reports for a failed compaction.
pub fn compact(
    req: &Request,
    transcript: &mut Transcript,
    input: &TurnInput,
) -> Result<(), String> {
    let plan = plan(transcript)?;
    let conversation = serialize(&plan.summarized);
    let mut text = format!("<conversation>\n{conversation}\n</conversation>\n\n");
    if let Some(previous) = &plan.previous_summary {
        text.push_str(&format!(
            "<previous-summary>\n{previous}\n</previous-summary>\n\n"
        ));
    }
    text.push_str(SUMMARY_PROMPT);
    let summary = summarize(req, input, text)?;
    let tokens_before = plan.tokens_before;
    transcript
        .append_compaction(
            &summary,
            &plan.first_kept_id,
            tokens_before,
            Some(json!({"readFiles": [], "modifiedFiles": []})),
            None,
        )
        .map_err(|e| format!("Compaction failed: {e}"))?;
    log::info!(target: "agent", "compacted session {} ({tokens_before} tokens before)", transcript.session_id().unwrap_or("?"));
    Ok(())
}

struct Plan {
    summarized: Vec<Value>,
    first_kept_id: String,
    previous_summary: Option<String>,
    tokens_before: u64,
}

/// The cut: walk back from the newest message until `KEEP_RECENT_TOKENS` are kept, then cut at
/// the next user or assistant message (never a tool result). When that would keep everything,
/// keep only from the last user message, so the older turns can be summarised.
fn plan(transcript: &Transcript) -> Result<Plan, String> {
    let branch = transcript.branch();
    let start = branch
        .iter()
        .rposition(|e| kind(e) == "compaction")
        .map_or(0, |i| i + 1);
    let previous_summary = start
        .checked_sub(1)
        .and_then(|i| branch[i].get("summary"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let entries = &branch[start..];
    let cut_points: Vec<usize> = (0..entries.len())
        .filter(|&i| matches!(role(entries[i]), Some("user" | "assistant")))
        .collect();
    let first = *cut_points.first().ok_or(NOTHING)?;
    let mut cut = first;
    let mut acc = 0;
    for i in (0..entries.len()).rev() {
        let Some(m) = entries[i].get("message") else {
            continue;
        };
        acc += estimate_tokens(m);
        if acc >= KEEP_RECENT_TOKENS {
            cut = cut_points
                .iter()
                .copied()
                .find(|&c| c >= i)
                .unwrap_or(first);
            break;
        }
    }
    if cut == first {
        // Everything fits the keep budget, yet the provider overflowed: keep only the latest
        // turn, or nothing when that turn is the file's first.
        cut = cut_points
            .iter()
            .copied()
            .rev()
            .find(|&c| role(entries[c]) == Some("user") && c != first)
            .unwrap_or(entries.len());
    }
    let messages = |range: &[&Map<String, Value>]| -> Vec<Value> {
        range
            .iter()
            .filter_map(|e| e.get("message").cloned())
            .collect()
    };
    let summarized = messages(&entries[..cut]);
    if summarized.is_empty() && previous_summary.is_none() {
        return Err(NOTHING.into());
    }
    let first_kept_id = entries
        .get(cut)
        .and_then(|e| e.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(Plan {
        tokens_before: messages(entries).iter().map(estimate_tokens).sum(),
        summarized,
        first_kept_id,
        previous_summary,
    })
}

const NOTHING: &str = "Compaction failed: nothing to compact";

fn kind(e: &Map<String, Value>) -> &str {
    e.get("type").and_then(Value::as_str).unwrap_or("")
}

fn role(e: &Map<String, Value>) -> Option<&str> {
    (kind(e) == "message")
        .then(|| e.get("message")?.get("role")?.as_str())
        .flatten()
}

/// pi's chars/4 estimate; an image counts as 4800 chars.
fn estimate_tokens(message: &Value) -> u64 {
    let blocks = message.get("content").and_then(Value::as_array);
    let chars: usize = match (message.get("content"), blocks) {
        (Some(Value::String(s)), _) => s.chars().count(),
        (_, Some(blocks)) => blocks.iter().map(block_chars).sum(),
        _ => 0,
    };
    chars.div_ceil(4) as u64
}

fn block_chars(b: &Value) -> usize {
    let s = |k: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .map_or(0, |t| t.chars().count())
    };
    match b.get("type").and_then(Value::as_str) {
        Some("text") => s("text"),
        Some("thinking") => s("thinking"),
        Some("toolCall") => s("name") + b.get("arguments").map_or(0, |a| a.to_string().len()),
        Some("image") => 4800,
        _ => 0,
    }
}

/// pi's `serializeConversation`: role-tagged text the model will not try to continue.
fn serialize(messages: &[Value]) -> String {
    let mut parts = Vec::new();
    for m in messages {
        let blocks = m
            .get("content")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let texts = |ty: &str, key: &str| -> Vec<String> {
            blocks
                .iter()
                .filter(|b| b["type"] == ty)
                .filter_map(|b| b[key].as_str().map(str::to_string))
                .collect()
        };
        match m.get("role").and_then(Value::as_str) {
            Some("user") => {
                let text = match m.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    _ => texts("text", "text").join(""),
                };
                if !text.is_empty() {
                    parts.push(format!("[User]: {text}"));
                }
            }
            Some("assistant") => assistant_parts(blocks, &texts, &mut parts),
            Some("toolResult") => {
                let text = texts("text", "text").join("");
                if !text.is_empty() {
                    parts.push(format!("[Tool result]: {text}"));
                }
            }
            _ => {}
        }
    }
    parts.join("\n\n")
}

fn assistant_parts(
    blocks: &[Value],
    texts: &dyn Fn(&str, &str) -> Vec<String>,
    parts: &mut Vec<String>,
) {
    let thinking = texts("thinking", "thinking");
    if !thinking.is_empty() {
        parts.push(format!("[Assistant thinking]: {}", thinking.join("\n")));
    }
    let text = texts("text", "text");
    if !text.is_empty() {
        parts.push(format!("[Assistant]: {}", text.join("\n")));
    }
    let calls: Vec<String> = blocks
        .iter()
        .filter(|b| b["type"] == "toolCall")
        .map(|b| {
            let args = b["arguments"].as_object().map(|a| {
                a.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            format!(
                "{}({})",
                b["name"].as_str().unwrap_or(""),
                args.unwrap_or_default()
            )
        })
        .collect();
    if !calls.is_empty() {
        parts.push(format!("[Assistant tool calls]: {}", calls.join("; ")));
    }
}

/// `completeSimple` with the run's model and key: no tools, reasoning high, 0.8 × reserve.
fn summarize(req: &Request, input: &TurnInput, prompt: String) -> Result<String, String> {
    let mut r = Request::new(req.target.clone(), req.credential.clone());
    r.system = SYSTEM_PROMPT.into();
    r.messages = vec![
        json!({"role": "user", "content": [{"type": "text", "text": prompt}], "timestamp": now_ms()}),
    ];
    r.max_tokens = Some((RESERVE_TOKENS_FLOOR * 8 / 10) as u32);
    r.thinking = if req.target.reasoning {
        ThinkingLevel::High
    } else {
        ThinkingLevel::Off
    };
    r.timeout = req.timeout;
    let message = providers::stream(&r, &input.abort, &mut |_| {})
        .map_err(|e| format!("Summarization failed: {}", e.message))?;
    let blocks = message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let summary: Vec<&str> = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    if input.abort.is_aborted() {
        return Err("Compaction aborted".into());
    }
    Ok(summary.join("\n"))
}
