//! Gemini rendering for the fake LLM (`llm.rs`): a `Script` as `streamGenerateContent?alt=sse`
//! `data:` chunks (text, `thought` parts, whole `functionCall`s without ids, usage in the last
//! chunk) and Google's canned HTTP error bodies.

use super::wire::sse;
use super::{Canned, Part, Script};
use serde_json::{json, Value};

/// A chunk the way Gemini streams it: one candidate holding these parts; the last chunk also
/// has the finish reason and the usage totals.
fn chunk(model: &str, parts: Value, end: Option<(&str, Value)>) -> String {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    let mut c = json!({"modelVersion": model, "responseId": "resp_fake"});
    if let Some((finish, usage)) = end {
        candidate["finishReason"] = finish.into();
        c["usageMetadata"] = usage;
    }
    c["candidates"] = json!([candidate]);
    sse(None, &c.to_string())
}

/// A base64 signature per part so the client can replay it (`sig_<n>` encoded).
fn signature(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("sig_{n}");
    let bytes = raw.as_bytes();
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(super) fn google(model: &str, parts: &[Part], s: &Script) -> (Vec<String>, Vec<String>) {
    let (input, output) = s.usage;
    let mut body = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Text(chunks) => body.extend(
                chunks
                    .iter()
                    .map(|c| chunk(model, json!([{"text": c}]), None)),
            ),
            Part::Thinking(t) => {
                let p = json!([{"text": t, "thought": true, "thoughtSignature": signature(i)}]);
                body.push(chunk(model, p, None));
            }
            // Gemini sends calls whole and without ids; the client makes the ids up.
            Part::Tool { name, args, .. } => {
                let p = json!([{"functionCall": {"name": name, "args": args},
                                "thoughtSignature": signature(i)}]);
                body.push(chunk(model, p, None));
            }
        }
    }
    let finish = if s.length_stop { "MAX_TOKENS" } else { "STOP" };
    let usage = json!({"promptTokenCount": input, "candidatesTokenCount": output,
                       "totalTokenCount": input + output,
                       "promptTokensDetails": [{"modality": "TEXT", "tokenCount": input}]});
    (body, vec![chunk(model, json!([]), Some((finish, usage)))])
}

/// Google's error envelope, pretty-printed as the API sends it.
fn envelope(code: u16, message: &str, status: &str) -> String {
    let v = json!({"error": {"code": code, "message": message, "status": status}});
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

pub(super) fn canned(kind: Canned) -> (u16, Vec<(String, String)>, String) {
    match kind {
        Canned::RateLimited => (
            429,
            Vec::new(),
            envelope(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED"),
        ),
        Canned::Overloaded => (
            503,
            Vec::new(),
            envelope(503, "The model is overloaded. Please try again later.", "UNAVAILABLE"),
        ),
        Canned::Unauthorized => (
            401,
            Vec::new(),
            envelope(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                "UNAUTHENTICATED",
            ),
        ),
        Canned::ContextOverflow => (
            400,
            Vec::new(),
            envelope(
                400,
                "The input token count (1196265) exceeds the maximum number of tokens allowed (1048576).",
                "INVALID_ARGUMENT",
            ),
        ),
    }
}
