//! Provider wire calls end to end: `providers::stream` against the loopback fake
//! (`tests/fakes/llm.rs`) for Anthropic Messages, OpenAI Responses, Chat Completions and Gemini —
//! request shapes and headers, streamed deltas, final messages, error texts, abort, timeout.

#[path = "fakes/llm.rs"]
mod llm;

/// Errors, abort, timeout, secrets, and the fake itself.
#[path = "providers/failures.rs"]
mod failures;

/// Google Gemini (`google-generative-ai`) end to end.
#[path = "providers/google.rs"]
mod google;

use llm::{FakeLlm, Route, Script};
use moltbot::agent::providers::{
    stream, AbortSignal, Api, Credential, ErrorKind, ModelTarget, ProviderError, Request,
    StreamEvent, ThinkingLevel, ToolSpec, Usage,
};
use serde_json::{json, Value};
use std::thread;
use std::time::{Duration, Instant};

const ANTHROPIC_KEY: &str = "sk-ant-test";
const OPENAI_KEY: &str = "sk-test";

fn anthropic(fake: &FakeLlm) -> Request {
    let mut t = ModelTarget::new(
        "anthropic",
        Api::AnthropicMessages,
        "claude-opus-4-5",
        &fake.base_url(),
    );
    t.max_tokens = 64_000;
    t.reasoning = true;
    t.input_images = true;
    request(t, Credential::ApiKey(ANTHROPIC_KEY.into()))
}

fn openai(fake: &FakeLlm) -> Request {
    let base = format!("{}/v1", fake.base_url());
    let mut t = ModelTarget::new("openai", Api::OpenAiResponses, "gpt-5.2", &base);
    t.name = "GPT-5.2".into();
    t.max_tokens = 128_000;
    t.reasoning = true;
    let mut r = request(t, Credential::Bearer(OPENAI_KEY.into()));
    r.session_id = Some("sess-1".into());
    r
}

fn fakechat(fake: &FakeLlm) -> Request {
    let base = format!("{}/v1", fake.base_url());
    let mut t = ModelTarget::new("fakechat", Api::OpenAiCompletions, "gpt-test", &base);
    t.max_tokens = 4096;
    t.context_window = 128_000;
    request(t, Credential::ApiKey("fake-key".into()))
}

fn request(target: ModelTarget, cred: Credential) -> Request {
    let mut r = Request::new(target, cred);
    r.system = "You are a personal assistant running inside Moltbot.".into();
    r.messages = vec![user("what is in notes.txt?")];
    r.tools = vec![read_tool()].into();
    r.timeout = Duration::from_secs(10);
    r
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}], "timestamp": 1})
}

fn read_tool() -> ToolSpec {
    ToolSpec {
        name: "read".into(),
        description: "Read the contents of a file.".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}},
                           "required": ["path"], "additionalProperties": false}),
    }
}

fn run(req: &Request) -> (Result<Value, ProviderError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let res = stream(req, &AbortSignal::new(), &mut |e| events.push(e));
    (res, events)
}

fn ok(req: &Request) -> (Value, Vec<StreamEvent>) {
    let (res, events) = run(req);
    (res.expect("stream succeeds"), events)
}

fn err(req: &Request) -> ProviderError {
    run(req).0.expect_err("stream fails")
}

fn text_deltas(events: &[StreamEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { delta, .. } => Some(delta.clone()),
            _ => None,
        })
        .collect()
}

fn usage(input: u64, output: u64, total: u64) -> Value {
    json!({"input": input, "output": output, "cacheRead": 0, "cacheWrite": 0, "totalTokens": total,
           "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}})
}

/// Everything but the timestamp, which must merely be a recent ms value.
fn without_timestamp(mut msg: Value) -> Value {
    let ts = msg["timestamp"].as_u64().expect("timestamp");
    assert!(ts > 1_700_000_000_000, "timestamp in ms: {ts}");
    msg.as_object_mut().map(|m| m.remove("timestamp"));
    msg
}

// ---------------------------------------------------------------- text streams, request shapes

#[test]
fn anthropic_text_stream_request_and_message() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hello ", "there."]).usage(1500, 5));
    let (msg, events) = ok(&anthropic(&fake));

    let u = |output, total| {
        StreamEvent::Usage(Usage {
            input: 1500,
            output,
            cache_read: 0,
            cache_write: 0,
            total_tokens: total,
        })
    };
    let delta = |d: &str| StreamEvent::TextDelta {
        index: 0,
        delta: d.into(),
    };
    assert_eq!(
        events,
        [
            u(1, 1501),
            StreamEvent::TextStart { index: 0 },
            delta("Hello "),
            delta("there."),
            StreamEvent::TextEnd {
                index: 0,
                text: "Hello there.".into()
            },
            u(5, 1505),
        ]
    );
    assert_eq!(
        without_timestamp(msg),
        json!({"role": "assistant", "content": [{"type": "text", "text": "Hello there."}],
               "api": "anthropic-messages", "provider": "anthropic", "model": "claude-opus-4-5",
               "usage": usage(1500, 5, 1505), "stopReason": "stop"})
    );

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        r.header("anthropic-beta"),
        Some("fine-grained-tool-streaming-2025-05-14,interleaved-thinking-2025-05-14")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(
        r.body,
        json!({"model": "claude-opus-4-5",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "what is in notes.txt?",
                             "cache_control": {"type": "ephemeral"}}]}],
               "max_tokens": 32000, "stream": true,
               "system": [{"type": "text", "text": "You are a personal assistant running inside Moltbot.",
                           "cache_control": {"type": "ephemeral"}}],
               "tools": [{"name": "read", "description": "Read the contents of a file.",
                          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                                           "required": ["path"]}}]})
    );
}

#[test]
fn responses_text_stream_request_and_message() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hi from ", "OpenAI."]).usage(900, 5));
    let (msg, events) = ok(&openai(&fake));

    assert_eq!(text_deltas(&events), ["Hi from ", "OpenAI."]);
    assert_eq!(
        without_timestamp(msg),
        json!({"role": "assistant",
               "content": [{"type": "text", "text": "Hi from OpenAI.", "textSignature": "msg_1"}],
               "api": "openai-responses", "provider": "openai", "model": "gpt-5.2",
               "usage": usage(900, 5, 905), "stopReason": "stop"})
    );

    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/responses");
    assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(
        r.body,
        json!({"model": "gpt-5.2",
               "input": [{"role": "developer", "content": "You are a personal assistant running inside Moltbot."},
                         {"role": "user", "content": [{"type": "input_text", "text": "what is in notes.txt?"}]}],
               "stream": true, "prompt_cache_key": "sess-1", "max_output_tokens": 32000,
               "tools": [{"type": "function", "name": "read", "description": "Read the contents of a file.",
                          "parameters": read_tool().parameters, "strict": false}]})
    );
}

#[test]
fn chat_text_stream_request_and_message() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hi", " there"]).usage(700, 2));
    let (msg, events) = ok(&fakechat(&fake));

    assert_eq!(text_deltas(&events), ["Hi", " there"]);
    assert!(events.contains(&StreamEvent::TextEnd {
        index: 0,
        text: "Hi there".into()
    }));
    assert_eq!(
        without_timestamp(msg),
        json!({"role": "assistant", "content": [{"type": "text", "text": "Hi there"}],
               "api": "openai-completions", "provider": "fakechat", "model": "gpt-test",
               "usage": usage(700, 2, 702), "stopReason": "stop"})
    );

    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer fake-key"));
    assert_eq!(
        r.body,
        json!({"model": "gpt-test",
               "messages": [{"role": "system", "content": "You are a personal assistant running inside Moltbot."},
                            {"role": "user", "content": [{"type": "text", "text": "what is in notes.txt?"}]}],
               "stream": true, "stream_options": {"include_usage": true}, "store": false,
               "max_completion_tokens": 4096,
               "tools": [{"type": "function", "function": {"name": "read", "description": "Read the contents of a file.",
                          "parameters": read_tool().parameters, "strict": false}}]})
    );
}

#[test]
fn length_stop_maps_for_every_api() {
    let fake = FakeLlm::start();
    for req in [anthropic(&fake), openai(&fake), fakechat(&fake)] {
        fake.push(Script::text(["cut"]).length_stop());
        let (msg, _) = ok(&req);
        assert_eq!(msg["stopReason"], "length", "{:?}", req.target.api);
    }
}

// ---------------------------------------------------------------- tool-call round trips

/// The transcript after turn 1: user, the assistant's tool call, the tool's result.
fn history_with(call: &Value, tool_name: &str, result: &str) -> Vec<Value> {
    vec![
        user("what is in notes.txt?"),
        call.clone(),
        json!({"role": "toolResult", "toolCallId": call["content"][0]["id"], "toolName": tool_name,
               "content": [{"type": "text", "text": result}], "isError": false, "timestamp": 2}),
    ]
}

#[test]
fn anthropic_tool_round_trip() {
    let fake = FakeLlm::start();
    fake.push(Script::tool_call("toolu_01", "read", json!({"path": "notes.txt"})).usage(1600, 20));
    fake.push(Script::text(["It says: buy milk."]));
    let mut req = anthropic(&fake);
    let (call, events) = ok(&req);

    assert_eq!(call["stopReason"], "toolUse");
    assert_eq!(
        call["content"],
        json!([{"type": "toolCall", "id": "toolu_01", "name": "read", "arguments": {"path": "notes.txt"}}])
    );
    let tool_events: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                StreamEvent::ToolCallStart { .. }
                    | StreamEvent::ToolCallDelta { .. }
                    | StreamEvent::ToolCallEnd { .. }
            )
        })
        .collect();
    assert_eq!(
        tool_events.len(),
        4,
        "start, two argument pieces, end: {tool_events:?}"
    );
    assert!(
        matches!(tool_events[0], StreamEvent::ToolCallStart { id, name, .. } if id == "toolu_01" && name == "read")
    );
    assert!(
        matches!(tool_events[3], StreamEvent::ToolCallEnd { arguments, .. } if *arguments == json!({"path": "notes.txt"}))
    );

    req.messages = history_with(&call, "read", "buy milk");
    let (reply, _) = ok(&req);
    assert_eq!(reply["content"][0]["text"], "It says: buy milk.");
    let msgs = fake.requests()[1].body["messages"].clone();
    let tail = &msgs.as_array().expect("messages")[1..];
    assert_eq!(
        tail,
        [
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "read",
                                                      "input": {"path": "notes.txt"}}]}),
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "buy milk",
                                                 "is_error": false, "cache_control": {"type": "ephemeral"}}]}),
        ]
    );
}

#[test]
fn responses_tool_round_trip() {
    let fake = FakeLlm::start();
    fake.push(Script::tool_call(
        "call_1",
        "exec",
        json!({"command": "echo hi"}),
    ));
    fake.push(Script::text(["done"]));
    let mut req = openai(&fake);
    let (call, _) = ok(&req);

    assert_eq!(call["stopReason"], "toolUse");
    assert_eq!(
        call["content"],
        json!([{"type": "toolCall", "id": "call_1|fc_1", "name": "exec", "arguments": {"command": "echo hi"}}])
    );

    req.messages = history_with(&call, "exec", "hi");
    ok(&req);
    let input = fake.requests()[1].body["input"].clone();
    let input = input.as_array().expect("input");
    assert_eq!(
        &input[2..],
        [
            json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec",
                   "arguments": "{\"command\":\"echo hi\"}"}),
            json!({"type": "function_call_output", "call_id": "call_1", "output": "hi"}),
        ]
    );
}

#[test]
fn chat_tool_round_trip() {
    let fake = FakeLlm::start();
    fake.push(Script::tool_call(
        "call_abc",
        "write",
        json!({"path": "out.txt", "content": "ok"}),
    ));
    fake.push(Script::text(["Wrote it."]));
    let mut req = fakechat(&fake);
    let (call, _) = ok(&req);

    assert_eq!(call["stopReason"], "toolUse");
    assert_eq!(
        call["content"],
        json!([{"type": "toolCall", "id": "call_abc", "name": "write", "arguments": {"path": "out.txt", "content": "ok"}}])
    );

    req.messages = history_with(&call, "write", "Successfully wrote 2 bytes to out.txt");
    ok(&req);
    let msgs = fake.requests()[1].body["messages"].clone();
    let msgs = msgs.as_array().expect("messages");
    assert_eq!(
        &msgs[2..],
        [
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc", "type": "function",
                   "function": {"name": "write", "arguments": "{\"path\":\"out.txt\",\"content\":\"ok\"}"}}]}),
            json!({"role": "tool", "content": "Successfully wrote 2 bytes to out.txt", "tool_call_id": "call_abc"}),
        ]
    );
}

// ---------------------------------------------------------------- thinking

fn thinking_deltas(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ThinkingDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn anthropic_thinking_budget_and_signed_block() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Answer."]).with_thinking("Let me think."));
    let mut req = anthropic(&fake);
    req.thinking = ThinkingLevel::Low;
    let (msg, events) = ok(&req);

    let body = &fake.requests()[0].body;
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(body["max_tokens"], 34048);
    // with_thinking was added after the text part, so the text block comes first.
    assert_eq!(
        msg["content"],
        json!([{"type": "text", "text": "Answer."},
               {"type": "thinking", "thinking": "Let me think.", "thinkingSignature": "sig_1"}])
    );
    assert_eq!(thinking_deltas(&events), "Let me think.");
}

#[test]
fn responses_reasoning_request_and_replay() {
    let fake = FakeLlm::start();
    fake.push(Script::empty().with_thinking("Plan.").with_text(["Done."]));
    fake.push(Script::text(["again"]));
    let mut req = openai(&fake);
    req.thinking = ThinkingLevel::High;
    let (msg, events) = ok(&req);

    let body = &fake.requests()[0].body;
    assert_eq!(
        body["reasoning"],
        json!({"effort": "high", "summary": "auto"})
    );
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(msg["content"][0]["thinking"], "Plan.");
    assert_eq!(thinking_deltas(&events), "Plan.\n\n");
    let sig: Value = serde_json::from_str(
        msg["content"][0]["thinkingSignature"]
            .as_str()
            .expect("sig"),
    )
    .expect("json");
    assert_eq!(sig["id"], "rs_1");

    // The same model gets its reasoning item back verbatim, then the message with its id.
    req.messages = vec![user("q"), msg, user("more")];
    ok(&req);
    let input = fake.requests()[1].body["input"].clone();
    assert_eq!(input[2], sig);
    assert_eq!(input[3]["type"], "message");
    assert_eq!(input[3]["id"], "msg_2");
}

#[test]
fn chat_reasoning_content_becomes_thinking() {
    let fake = FakeLlm::start();
    fake.push(Script::empty().with_thinking("hmm").with_text(["ok"]));
    let (msg, events) = ok(&fakechat(&fake));
    assert_eq!(
        msg["content"],
        json!([{"type": "thinking", "thinking": "hmm", "thinkingSignature": "reasoning_content"},
               {"type": "text", "text": "ok"}])
    );
    assert_eq!(thinking_deltas(&events), "hmm");
}

// ---------------------------------------------------------------- auth modes and URLs

#[test]
fn anthropic_bearer_and_setup_token_use_claude_code_headers() {
    let fake = FakeLlm::start();
    for cred in [
        Credential::Bearer("oauth-access".into()),
        Credential::ApiKey("sk-ant-oat01-setup".into()),
    ] {
        fake.push(Script::tool_call("toolu_9", "Read", json!({"path": "a"})));
        let mut req = anthropic(&fake);
        req.credential = cred.clone();
        let (msg, _) = ok(&req);
        // Claude Code casing goes out, the run's own tool name comes back.
        assert_eq!(msg["content"][0]["name"], "read");

        let reqs = fake.requests();
        let r = reqs.last().expect("request");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {}", cred.secret()).as_str())
        );
        assert_eq!(r.header("x-api-key"), None);
        assert_eq!(r.header("x-app"), Some("cli"));
        assert_eq!(
            r.header("user-agent"),
            Some("claude-cli/2.1.2 (external, cli)")
        );
        assert_eq!(
            r.header("anthropic-beta"),
            Some("claude-code-20250219,oauth-2025-04-20,fine-grained-tool-streaming-2025-05-14,interleaved-thinking-2025-05-14")
        );
        assert_eq!(
            r.body["system"][0]["text"],
            "You are Claude Code, Anthropic's official CLI for Claude."
        );
        assert_eq!(r.body["tools"][0]["name"], "Read");
    }
}

#[test]
fn base_url_path_and_model_headers_override_defaults() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["ok"]));
    let mut req = anthropic(&fake);
    req.target.base_url = format!("{}/anthropic/", fake.base_url());
    req.target.headers = vec![
        ("X-Extra".into(), "1".into()),
        ("Anthropic-Version".into(), "2099-01-01".into()),
    ];
    req.target.auth_header = true;
    ok(&req);
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/anthropic/v1/messages");
    assert_eq!(r.header("x-extra"), Some("1"));
    assert_eq!(r.header("anthropic-version"), Some("2099-01-01"));
    assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(r.header("authorization"), Some("Bearer sk-ant-test"));
}
