//! Wire rendering for the fake LLM (`llm.rs`): a `Script` as Anthropic, Responses, Chat
//! Completions or Gemini SSE frames, and the canned (b) error replies.

use super::{Canned, Part, Route, Script};
use serde_json::{json, Value};

/// A rendered stream: frames before the ending, the normal closing frames, and the route's
/// error frame.
pub(super) struct Wire {
    pub body: Vec<String>,
    pub closing: Vec<String>,
    route: Route,
}

impl Wire {
    pub fn error_frame(&self, data: Option<&str>) -> String {
        match self.route {
            Route::Anthropic => sse(
                Some("error"),
                data.unwrap_or(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
            ),
            Route::Responses => sse(
                Some("error"),
                data.unwrap_or(r#"{"type":"error","code":"server_error","message":"boom"}"#),
            ),
            Route::Chat => sse(None, data.unwrap_or(r#"{"error":{"message":"upstream overloaded","code":529}}"#)),
            Route::Google => sse(None, data.unwrap_or(GOOGLE_UNAVAILABLE)),
        }
    }
}

/// Gemini's compact error object (mid-stream frame); the HTTP replies are pretty-printed.
const GOOGLE_UNAVAILABLE: &str = r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#;

pub(super) fn sse(event: Option<&str>, data: &str) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

pub(super) fn render(route: Route, model: &str, parts: &[Part], s: &Script) -> Wire {
    let (body, closing) = match route {
        Route::Anthropic => anthropic(model, parts, s),
        Route::Responses => responses(parts, s),
        Route::Chat => chat(model, parts, s),
        Route::Google => super::wire_google::google(model, parts, s),
    };
    Wire {
        body,
        closing,
        route,
    }
}

/// Splits a string in two at a char boundary near its middle (tool JSON arrives in pieces).
fn halves(s: &str) -> (&str, &str) {
    let mut mid = s.len() / 2;
    while !s.is_char_boundary(mid) {
        mid += 1;
    }
    s.split_at(mid)
}

fn anthropic(model: &str, parts: &[Part], s: &Script) -> (Vec<String>, Vec<String>) {
    let (input, output) = s.usage;
    let ev = |name: &str, data: Value| sse(Some(name), &data.to_string());
    let mut body = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
    )];
    let mut has_tool = false;
    for (index, part) in parts.iter().enumerate() {
        let delta = |d: Value| {
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": d}),
            )
        };
        let start = |b: Value| {
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": b}),
            )
        };
        match part {
            Part::Text(chunks) => {
                body.push(start(json!({"type": "text", "text": ""})));
                if index == 0 {
                    body.push(ev("ping", json!({"type": "ping"})));
                }
                body.extend(
                    chunks
                        .iter()
                        .map(|c| delta(json!({"type": "text_delta", "text": c}))),
                );
            }
            Part::Thinking(t) => {
                body.push(start(
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                ));
                body.push(delta(json!({"type": "thinking_delta", "thinking": t})));
                body.push(delta(
                    json!({"type": "signature_delta", "signature": format!("sig_{index}")}),
                ));
            }
            Part::Tool { id, name, args } => {
                has_tool = true;
                body.push(start(
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                ));
                let text = args.to_string();
                let (a, b) = halves(&text);
                body.push(delta(
                    json!({"type": "input_json_delta", "partial_json": a}),
                ));
                body.push(delta(
                    json!({"type": "input_json_delta", "partial_json": b}),
                ));
            }
        }
        body.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    let stop = match (s.length_stop, has_tool) {
        (true, _) => "max_tokens",
        (false, true) => "tool_use",
        _ => "end_turn",
    };
    let closing = vec![
        ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"input_tokens": input, "output_tokens": output, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}),
        ),
        ev("message_stop", json!({"type": "message_stop"})),
    ];
    (body, closing)
}

fn responses(parts: &[Part], s: &Script) -> (Vec<String>, Vec<String>) {
    let (input, output) = s.usage;
    let ev = |data: Value| {
        let name = data["type"].as_str().unwrap_or("").to_string();
        sse(Some(&name), &data.to_string())
    };
    let mut body = vec![ev(json!({"type": "response.created", "response": {
        "id": "resp_1", "object": "response", "status": "in_progress", "output": []}}))];
    for (i, part) in parts.iter().enumerate() {
        let n = i + 1;
        let added = |item: Value| {
            ev(json!({"type": "response.output_item.added", "output_index": i, "item": item}))
        };
        let done = |item: Value| {
            ev(json!({"type": "response.output_item.done", "output_index": i, "item": item}))
        };
        match part {
            Part::Text(chunks) => {
                let id = format!("msg_{n}");
                body.push(added(json!({"id": id, "type": "message", "role": "assistant", "status": "in_progress", "content": []})));
                body.push(ev(json!({"type": "response.content_part.added", "item_id": id, "output_index": i,
                    "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
                for c in chunks {
                    body.push(ev(json!({"type": "response.output_text.delta", "item_id": id, "output_index": i,
                        "content_index": 0, "delta": c})));
                }
                body.push(done(json!({"id": id, "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": chunks.concat(), "annotations": []}]})));
            }
            Part::Thinking(t) => {
                let id = format!("rs_{n}");
                body.push(added(json!({"id": id, "type": "reasoning", "summary": []})));
                body.push(ev(json!({"type": "response.reasoning_summary_part.added", "item_id": id, "output_index": i,
                    "summary_index": 0, "part": {"type": "summary_text", "text": ""}})));
                body.push(ev(json!({"type": "response.reasoning_summary_text.delta", "item_id": id, "output_index": i,
                    "summary_index": 0, "delta": t})));
                body.push(ev(json!({"type": "response.reasoning_summary_part.done", "item_id": id, "output_index": i,
                    "summary_index": 0, "part": {"type": "summary_text", "text": t}})));
                body.push(done(
                    json!({"id": id, "type": "reasoning", "encrypted_content": format!("enc_{n}"),
                    "summary": [{"type": "summary_text", "text": t}]}),
                ));
            }
            Part::Tool { id, name, args } => {
                let item = format!("fc_{n}");
                let text = args.to_string();
                body.push(added(
                    json!({"id": item, "type": "function_call", "call_id": id, "name": name,
                    "arguments": "", "status": "in_progress"}),
                ));
                body.push(ev(
                    json!({"type": "response.function_call_arguments.delta", "item_id": item,
                    "output_index": i, "delta": text}),
                ));
                body.push(done(
                    json!({"id": item, "type": "function_call", "call_id": id, "name": name,
                    "arguments": text, "status": "completed"}),
                ));
            }
        }
    }
    let status = if s.length_stop {
        "incomplete"
    } else {
        "completed"
    };
    let closing = vec![ev(json!({"type": "response.completed", "response": {
        "id": "resp_1", "object": "response", "status": status,
        "usage": {"input_tokens": input, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": output,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": input + output}}}))];
    (body, closing)
}

fn chat(model: &str, parts: &[Part], s: &Script) -> (Vec<String>, Vec<String>) {
    let (input, output) = s.usage;
    let frame = |choices: Value, usage: Option<Value>| {
        let mut c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_769_500_000u64,
                           "model": model, "choices": choices});
        if let Some(u) = usage {
            c["usage"] = u;
        }
        sse(None, &c.to_string())
    };
    let chunk = |choices: Value| frame(choices, None);
    let delta = |d: Value| chunk(json!([{"index": 0, "delta": d, "finish_reason": null}]));
    let mut deltas: Vec<Value> = Vec::new();
    let mut tools = 0;
    for part in parts {
        match part {
            Part::Text(chunks) => deltas.extend(chunks.iter().map(|c| json!({"content": c}))),
            Part::Thinking(t) => deltas.push(json!({"reasoning_content": t})),
            Part::Tool { id, name, args } => {
                deltas.push(json!({"content": null, "tool_calls": [{"index": tools, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}));
                deltas.push(json!({"tool_calls": [{"index": tools, "function": {"arguments": args.to_string()}}]}));
                tools += 1;
            }
        }
    }
    if deltas.is_empty() {
        deltas.push(json!({"content": ""}));
    }
    if let Some(first) = deltas.first_mut().and_then(Value::as_object_mut) {
        first.insert("role".into(), "assistant".into());
    }
    let body = deltas.into_iter().map(delta).collect();
    let finish = match (s.length_stop, tools > 0) {
        (true, _) => "length",
        (false, true) => "tool_calls",
        _ => "stop",
    };
    let closing = vec![
        chunk(json!([{"index": 0, "delta": {}, "finish_reason": finish}])),
        frame(
            json!([]),
            Some(
                json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}),
            ),
        ),
        sse(None, "[DONE]"),
    ];
    (body, closing)
}

/// The (b) error replies, per route.
pub(super) fn canned(route: Route, kind: Canned) -> (u16, Vec<(String, String)>, String) {
    let h = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    if route == Route::Google {
        return super::wire_google::canned(kind);
    }
    let anthropic = route == Route::Anthropic;
    match (kind, anthropic) {
        (Canned::RateLimited, true) => (
            429,
            h(&[("retry-after", "0"), ("x-should-retry", "false"), ("request-id", "req_test429")]),
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_test429"}"#.into(),
        ),
        (Canned::RateLimited, false) => (
            429,
            h(&[("retry-after", "0"), ("x-should-retry", "false")]),
            if route == Route::Responses {
                r#"{"error":{"message":"Rate limit reached for gpt-5.2 on tokens per min (TPM): Limit 30000, Used 30000, Requested 100.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#
            } else {
                r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
            }
            .into(),
        ),
        (Canned::Overloaded, true) => (
            529,
            h(&[("x-should-retry", "false")]),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into(),
        ),
        (Canned::Overloaded, false) => (
            503,
            h(&[("x-should-retry", "false")]),
            r#"{"error":{"message":"The server is overloaded. Please try again later.","type":"server_error","param":null,"code":null}}"#.into(),
        ),
        (Canned::Unauthorized, true) => (
            401,
            Vec::new(),
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#.into(),
        ),
        (Canned::Unauthorized, false) => (
            401,
            Vec::new(),
            r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#.into(),
        ),
        (Canned::ContextOverflow, true) => (
            400,
            Vec::new(),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#.into(),
        ),
        (Canned::ContextOverflow, false) => (
            400,
            Vec::new(),
            r#"{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}"#.into(),
        ),
    }
}
