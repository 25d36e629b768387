//! `POST /v1/chat/completions` against the real binary and the fake LLM: gating, auth, errors,
//! the JSON and SSE shapes, agent routing and session keys, provider failures.

use crate::llm::{FakeLlm, Script};
use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ENABLED: &str = "http: { endpoints: { chatCompletions: { enabled: true } } }";

/// A gateway with the endpoint set as `gateway_extra` says and the providers on `fake`.
pub fn gateway(fake: &FakeLlm, gateway_extra: &str, rest: &str) -> Gateway {
    gateway_with_defaults(fake, gateway_extra, "", rest)
}

/// As `gateway`, with more `agents.defaults` keys.
pub fn gateway_with_defaults(
    fake: &FakeLlm,
    gateway_extra: &str,
    defaults: &str,
    rest: &str,
) -> Gateway {
    let cfg = format!(
        r#"{{ gateway: {{ mode: "local", {gateway_extra} }},
  agents: {{ defaults: {{ thinkingDefault: "off", timeoutSeconds: 5, {defaults} }}, {rest} }},
  models: {{ providers: {{ anthropic: {{ baseUrl: "{base}", models: [] }}, openai: {{ baseUrl: "{base}/v1", models: [] }} }} }} }}"#,
        base = fake.base_url()
    );
    let mut opts = Opts::local(&cfg);
    opts.env
        .push(("ANTHROPIC_API_KEY".into(), "sk-ant-test-key".into()));
    opts.env
        .push(("OPENAI_API_KEY".into(), "sk-test-openai".into()));
    Gateway::start(opts)
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

fn request_text(method: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut req = format!(
        "{method} /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

fn connect(port: u16, text: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(text.as_bytes()).expect("write");
    s
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
    out
}

/// One request on its own connection; the whole response.
pub fn call(port: u16, method: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = connect(port, &request_text(method, headers, body));
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut reply = Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        reply.body = dechunk(body);
    }
    reply
}

pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// A POST with the right token.
pub fn post(port: u16, extra: &[(&str, &str)], body: &Value) -> Reply {
    let auth = bearer();
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    call(port, "POST", &headers, &body.to_string())
}

fn user(text: &str) -> Value {
    json!({"model": "moltbot", "messages": [{"role": "user", "content": text}]})
}

fn read_store(gw: &Gateway, agent: &str) -> Value {
    let path = gw
        .state
        .path()
        .join(format!("agents/{agent}/sessions/sessions.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("sessions.json")
}

#[test]
fn disabled_endpoint_falls_through_to_the_next_handler() {
    let fake = FakeLlm::start();
    let gw = gateway(&fake, r#"controlUi: { enabled: false }"#, "");
    let r = post(gw.port, &[], &user("hi"));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body, "Not Found");
    let gw = gateway(&fake, "", "");
    let r = post(gw.port, &[], &user("hi"));
    assert_eq!(r.status, 405, "the Control UI answers non-GET: {}", r.body);
    assert_eq!(fake.request_count(), 0);
}

#[test]
fn auth_method_and_body_errors() {
    let fake = FakeLlm::start();
    let gw = gateway(&fake, ENABLED, "");
    let unauthorized = r#"{"error":{"message":"Unauthorized","type":"unauthorized"}}"#;
    let body = user("hi").to_string();
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong-token")],
        vec![("Authorization", TOKEN)],
    ] {
        let r = call(gw.port, "POST", &headers, &body);
        assert_eq!(
            (r.status, r.body.as_str()),
            (401, unauthorized),
            "{headers:?}"
        );
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json; charset=utf-8")
        );
    }
    let r = call(gw.port, "GET", &[("Authorization", &bearer())], "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
    let auth = bearer();
    let r = call(gw.port, "POST", &[("Authorization", &auth)], "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("SyntaxError"));
    let missing = post(
        gw.port,
        &[],
        &json!({"messages": [{"role": "system", "content": "x"}]}),
    );
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body,
        r#"{"error":{"message":"Missing user message in `messages`.","type":"invalid_request_error"}}"#
    );
    let empty = call(gw.port, "POST", &[("Authorization", &auth)], "");
    assert_eq!(empty.status, 400, "an empty body is {{}}: no messages");
    let big = format!("\"{}\"", "x".repeat(1024 * 1024 + 10));
    let r = call(gw.port, "POST", &[("Authorization", &auth)], &big);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "payload too large");
    assert_eq!(fake.request_count(), 0);
    let logs = gw.output();
    assert!(
        !logs.contains(TOKEN) && !logs.contains("wrong-token"),
        "no secret in logs"
    );
}

#[test]
fn non_streaming_reply_shape_and_prompt_folding() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hello ", "world."]));
    let gw = gateway(&fake, ENABLED, "");
    let body = json!({"model": "gpt-4o", "temperature": 0.2, "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hey"},
        {"role": "user", "content": [{"type": "text", "text": "how are you?"}]},
    ]});
    let r = post(gw.port, &[], &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json; charset=utf-8")
    );
    let v = r.json();
    let id = v["id"].as_str().unwrap_or("");
    assert!(id.starts_with("chatcmpl_") && id.len() == 9 + 36, "{id}");
    assert!(v["created"].as_u64().unwrap_or(0) > 1_700_000_000);
    let mut shape = v.clone();
    shape["id"] = json!("X");
    shape["created"] = json!(0);
    assert_eq!(
        shape,
        json!({"id": "X", "object": "chat.completion", "created": 0, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})
    );
    let req = &fake.requests()[0];
    assert_eq!(
        req.body["model"], "claude-opus-4-5",
        "the agent's model runs"
    );
    let system = req.body["system"][0]["text"].as_str().unwrap_or("");
    assert!(
        system.contains("## Group Chat Context\nBe terse."),
        "{system}"
    );
    let sent = req.last_message().unwrap()["content"][0]["text"].clone();
    assert_eq!(
        sent,
        "[Chat messages since your last reply - for context]\nUser: hi\nAssistant: hey\n\n\
         [Current message - respond to this]\nUser: how are you?"
    );
}

/// Reads an SSE response as it arrives: `(seconds since start, data payload)` per frame.
fn stream_frames(port: u16, body: &Value) -> (String, Vec<(f64, String)>) {
    let auth = bearer();
    let text = request_text(
        "POST",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    );
    let start = Instant::now();
    let mut r = BufReader::new(connect(port, &text));
    let mut head = String::new();
    let mut line = String::new();
    while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
        head.push_str(&line);
        line.clear();
    }
    let mut frames = Vec::new();
    line.clear();
    while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            frames.push((start.elapsed().as_secs_f64(), data.to_string()));
        }
        line.clear();
    }
    (head, frames)
}

#[test]
fn streaming_chunk_sequence_arrives_incrementally() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["One ", "two ", "three."]).chunk_delay(Duration::from_millis(300)));
    let gw = gateway(&fake, ENABLED, "");
    let body = json!({"model": "moltbot", "stream": true, "messages": [{"role": "user", "content": "count"}]});
    let (head, frames) = stream_frames(gw.port, &body);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/event-stream; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("Cache-Control: no-cache"), "{head}");
    assert!(head.contains("X-Content-Type-Options: nosniff"), "{head}");
    assert_eq!(frames.last().map(|f| f.1.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).expect("chunk json"))
        .collect();
    let id = chunks[0]["id"].clone();
    assert!(id.as_str().unwrap_or("").starts_with("chatcmpl_"));
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant"}}])
    );
    let mut text = String::new();
    for c in &chunks[1..] {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(
            (c["id"].clone(), c["model"].clone()),
            (id.clone(), json!("moltbot"))
        );
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
        assert!(c["choices"][0]
            .as_object()
            .unwrap()
            .contains_key("finish_reason"));
        text.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(text, "One two three.");
    assert!(chunks.len() >= 3, "deltas streamed one by one: {chunks:?}");
    let first_content = frames[1].0;
    let done = frames.last().unwrap().0;
    assert!(
        done - first_content > 0.4,
        "first delta before the end: {frames:?}"
    );
}

#[test]
fn agent_routing_and_session_keys() {
    let fake = FakeLlm::start();
    fake.set_default(Script::text(["ok"]));
    let agents = r#"list: [{ id: "main", default: true }, { id: "ops" }]"#;
    let gw = gateway(&fake, ENABLED, agents);
    assert_eq!(post(gw.port, &[], &user("a")).status, 200);
    let by_model = json!({"model": "moltbot:ops", "messages": [{"role": "user", "content": "b"}]});
    assert_eq!(post(gw.port, &[], &by_model).status, 200);
    let with_user = json!({"model": "agent:main", "user": "Bob", "messages": [{"role": "user", "content": "c"}]});
    assert_eq!(
        post(gw.port, &[("x-moltbot-agent-id", "ops")], &with_user).status,
        200
    );
    assert_eq!(
        post(gw.port, &[("x-moltbot-agent-id", "ops")], &with_user).status,
        200
    );
    let keyed = [("x-moltbot-session-key", "agent:main:my-thread")];
    assert_eq!(post(gw.port, &keyed, &user("d")).status, 200);
    let main = read_store(&gw, "main");
    let ops = read_store(&gw, "ops");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let (main_keys, ops_keys) = (keys(&main), keys(&ops));
    assert_eq!(main_keys.len(), 2, "{main_keys:?}");
    assert!(main_keys
        .iter()
        .any(|k| k.starts_with("agent:main:openai:")));
    assert!(main_keys.contains(&"agent:main:my-thread".to_string()));
    assert_eq!(ops_keys.len(), 2, "{ops_keys:?}");
    assert!(ops_keys.iter().any(|k| k.starts_with("agent:ops:openai:")));
    assert!(ops_keys.contains(&"agent:ops:openai-user:bob".to_string()));
    assert_eq!(main["agent:main:my-thread"]["lastChannel"], "webchat");
    // The `user` session persists: its second request carried the first exchange.
    let requests = fake.requests();
    let bob_second = &requests[3].body["messages"];
    assert_eq!(bob_second.as_array().map(Vec::len), Some(3), "{bob_second}");
}

#[test]
fn provider_failure_without_fallbacks_is_a_reply_text() {
    let fake = FakeLlm::start();
    fake.set_default(Script::unauthorized());
    let gw = gateway(&fake, ENABLED, "");
    let r = post(gw.port, &[], &user("hi"));
    assert_eq!(r.status, 200, "{}", r.body);
    let text = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        !text.is_empty() && !text.contains("sk-ant-test-key"),
        "{text}"
    );
    assert!(!gw.output().contains("sk-ant-test-key"));
}

#[test]
fn exhausted_fallbacks_give_the_error_shapes() {
    let fake = FakeLlm::start();
    fake.set_default(Script::unauthorized());
    let fallbacks =
        r#"model: { primary: "anthropic/claude-opus-4-5", fallbacks: ["openai/gpt-5.2"] }"#;
    let gw = gateway_with_defaults(&fake, ENABLED, fallbacks, "");
    let r = post(gw.port, &[], &user("hi"));
    assert_eq!(r.status, 500, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["type"], "api_error");
    assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty());
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (_, frames) = stream_frames(gw.port, &body);
    let data: Vec<&str> = frames.iter().map(|f| f.1.as_str()).collect();
    assert_eq!(data.len(), 2, "{data:?}");
    let chunk: Value = serde_json::from_str(data[0]).unwrap();
    assert_eq!(chunk["choices"][0]["finish_reason"], "stop");
    let content = chunk["choices"][0]["delta"]["content"]
        .as_str()
        .unwrap_or("");
    assert!(content.starts_with("Error: "), "{content}");
    assert_eq!(data[1], "[DONE]");
}

#[test]
fn client_disconnect_does_not_abort_the_run() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["slow ", "but ", "complete"]).chunk_delay(Duration::from_millis(300)));
    let gw = gateway(&fake, ENABLED, "");
    let keyed =
        json!({"stream": true, "user": "gone", "messages": [{"role": "user", "content": "hi"}]});
    let auth = bearer();
    let text = request_text("POST", &[("Authorization", &auth)], &keyed.to_string());
    let mut s = connect(gw.port, &text);
    let mut first = [0u8; 64];
    let _ = s.read(&mut first);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let store = read_store_opt(&gw);
        let done = store
            .as_ref()
            .and_then(|s| s.get("agent:main:openai-user:gone"))
            .is_some_and(|e| e["abortedLastRun"] == false && e.get("model").is_some());
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "run finished and was recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_store_opt(gw: &Gateway) -> Option<Value> {
    let path = gw.state.path().join("agents/main/sessions/sessions.json");
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[test]
fn runs_share_the_pool_bound_and_the_session_fifo() {
    let fake = FakeLlm::start();
    fake.set_default(Script::text(["slow ", "reply"]).chunk_delay(Duration::from_millis(300)));
    let gw = gateway_with_defaults(&fake, ENABLED, "maxConcurrent: 2", "");
    let port = gw.port;
    let bodies = [
        json!({"user": "same", "messages": [{"role": "user", "content": "first"}]}),
        json!({"user": "same", "messages": [{"role": "user", "content": "second"}]}),
        json!({"messages": [{"role": "user", "content": "other-1"}]}),
        json!({"messages": [{"role": "user", "content": "other-2"}]}),
    ];
    let handles: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            std::thread::sleep(Duration::from_millis(if i == 1 { 400 } else { 20 }));
            std::thread::spawn(move || post(port, &[], &body))
        })
        .collect();
    for h in handles {
        let r = h.join().expect("request thread");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["choices"][0]["message"]["content"], "slow reply");
    }
    assert_eq!(fake.request_count(), 4);
    assert_eq!(
        fake.max_in_flight(),
        2,
        "agents.defaults.maxConcurrent holds"
    );
    let second = fake
        .requests()
        .into_iter()
        .find(|r| r.last_message().unwrap()["content"][0]["text"] == "second")
        .expect("second request");
    let messages = second.body["messages"].as_array().map(Vec::len);
    assert_eq!(messages, Some(3), "ran after the first, with its history");
}

#[test]
fn enabling_the_endpoint_in_the_config_file_takes_effect_without_a_new_process() {
    let fake = FakeLlm::start();
    fake.set_default(Script::text(["on"]));
    let gw = gateway(&fake, r#"controlUi: { enabled: false }"#, "");
    assert_eq!(post(gw.port, &[], &user("hi")).status, 404);
    let cfg = std::fs::read_to_string(gw.config_path()).unwrap();
    let enabled = cfg.replace(
        "controlUi: { enabled: false }",
        &format!("controlUi: {{ enabled: false }}, {ENABLED}"),
    );
    std::fs::write(gw.config_path(), enabled).unwrap();
    assert!(
        gw.wait_output("restarting in-process", Duration::from_secs(10)),
        "{}",
        gw.output()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let up = TcpStream::connect(("127.0.0.1", gw.port)).is_ok();
        if up && post(gw.port, &[], &user("hi")).status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "endpoint enabled after the reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
