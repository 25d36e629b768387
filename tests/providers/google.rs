//! Gemini (`google-generative-ai`) against the fake's `:streamGenerateContent` route: request
//! URL, headers and body, text/thinking/tool streams, tool round trips with thought signatures,
//! finish reasons, the SDK's error texts as the failover classifiers see them, secrets, abort.

use super::*;
use moltbot::agent::failover::classify::{
    classify_failover_reason, is_likely_context_overflow_error, is_pi_context_overflow,
    FailoverReason,
};

const GEMINI_KEY: &str = "AIzaSy-test-gemini-key";

fn gemini(fake: &FakeLlm, model: &str) -> Request {
    let base = format!("{}/v1beta", fake.base_url());
    let mut t = ModelTarget::new("google", Api::GoogleGenerativeAi, model, &base);
    t.max_tokens = 65_536;
    t.context_window = 1_048_576;
    t.reasoning = true;
    t.input_images = true;
    request(t, Credential::ApiKey(GEMINI_KEY.into()))
}

fn flash(fake: &FakeLlm) -> Request {
    gemini(fake, "gemini-3-flash-preview")
}

fn only_request(fake: &FakeLlm) -> llm::Recorded {
    let reqs = fake.requests();
    reqs.last().cloned().expect("one request")
}

#[test]
fn gemini_text_stream_request_and_message() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hello ", "from Gemini."]).usage(1200, 7));
    let (msg, events) = ok(&flash(&fake));

    assert_eq!(text_deltas(&events), ["Hello ", "from Gemini."]);
    // As pi: the usage arrives with the last chunk, the block ends when the stream does.
    assert_eq!(
        &events[events.len() - 2..],
        [
            StreamEvent::Usage(Usage {
                input: 1200,
                output: 7,
                cache_read: 0,
                cache_write: 0,
                total_tokens: 1207
            }),
            StreamEvent::TextEnd {
                index: 0,
                text: "Hello from Gemini.".into()
            }
        ]
    );
    assert_eq!(
        without_timestamp(msg),
        json!({"role": "assistant", "content": [{"type": "text", "text": "Hello from Gemini."}],
               "api": "google-generative-ai", "provider": "google", "model": "gemini-3-flash-preview",
               "usage": usage(1200, 7, 1207), "stopReason": "stop"})
    );

    let r = only_request(&fake);
    assert_eq!(r.route, Some(Route::Google));
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        (
            "POST",
            "/v1beta/models/gemini-3-flash-preview:streamGenerateContent?alt=sse"
        )
    );
    assert_eq!(r.header("x-goog-api-key"), Some(GEMINI_KEY));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("google-genai-sdk/")));
    // Thinking off: no thinkingConfig; the tool schema is cleaned (no additionalProperties).
    assert_eq!(
        r.body,
        json!({"contents": [{"role": "user", "parts": [{"text": "what is in notes.txt?"}]}],
               "systemInstruction": {"role": "user",
                   "parts": [{"text": "You are a personal assistant running inside Moltbot."}]},
               "tools": [{"functionDeclarations": [{"name": "read", "description": "Read the contents of a file.",
                   "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                  "required": ["path"]}}]}],
               "generationConfig": {"maxOutputTokens": 32000}})
    );
}

#[test]
fn gemini_thinking_config_per_model() {
    let fake = FakeLlm::start();
    let cases = [
        (
            "gemini-3-flash-preview",
            ThinkingLevel::Minimal,
            json!({"thinkingLevel": "MINIMAL"}),
        ),
        (
            "gemini-3-pro-preview",
            ThinkingLevel::Medium,
            json!({"thinkingLevel": "HIGH"}),
        ),
        (
            "gemini-2.5-pro",
            ThinkingLevel::High,
            json!({"thinkingBudget": 32768}),
        ),
        (
            "gemini-2.5-flash",
            ThinkingLevel::XHigh,
            json!({"thinkingBudget": 24576}),
        ),
        (
            "gemini-2.0-flash",
            ThinkingLevel::Low,
            json!({"thinkingBudget": -1}),
        ),
    ];
    for (model, level, want) in cases {
        fake.push(Script::text(["ok"]));
        let mut req = gemini(&fake, model);
        req.thinking = level;
        req.temperature = Some(0.2);
        ok(&req);
        let mut tc = json!({"includeThoughts": true});
        if let (Some(a), Some(b)) = (tc.as_object_mut(), want.as_object()) {
            a.extend(b.clone());
        }
        assert_eq!(
            only_request(&fake).body["generationConfig"],
            json!({"temperature": 0.2, "maxOutputTokens": 32000, "thinkingConfig": tc}),
            "{model}"
        );
    }
    // A non-reasoning model never gets a thinkingConfig.
    fake.push(Script::text(["ok"]));
    let mut req = flash(&fake);
    req.target.reasoning = false;
    req.thinking = ThinkingLevel::High;
    ok(&req);
    assert!(only_request(&fake).body["generationConfig"]
        .get("thinkingConfig")
        .is_none());
}

#[test]
fn gemini_thinking_stream_keeps_signature_and_replays_it() {
    let fake = FakeLlm::start();
    fake.push(
        Script::empty()
            .with_thinking("Let me look.")
            .with_text(["Done."]),
    );
    let mut req = flash(&fake);
    req.thinking = ThinkingLevel::Low;
    let (msg, events) = ok(&req);
    assert!(events.contains(&StreamEvent::ThinkingDelta {
        index: 0,
        delta: "Let me look.".into()
    }));
    assert_eq!(
        msg["content"],
        json!([{"type": "thinking", "thinking": "Let me look.", "thinkingSignature": "c2lnXzA="},
               {"type": "text", "text": "Done."}])
    );

    // Next turn: the model's own thought goes back as a signed thought part.
    fake.push(Script::text(["again"]));
    req.messages.push(msg);
    req.messages.push(user("and now?"));
    ok(&req);
    let contents = &only_request(&fake).body["contents"];
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [
            {"thought": true, "text": "Let me look.", "thoughtSignature": "c2lnXzA="},
            {"text": "Done."}]})
    );
    // Another model's thinking arrives as plain text.
    req.target.model_id = "gemini-2.5-pro".into();
    fake.push(Script::text(["ok"]));
    ok(&req);
    assert_eq!(
        only_request(&fake).body["contents"][1]["parts"][0],
        json!({"text": "Let me look."})
    );
}

#[test]
fn gemini_tool_round_trip() {
    let fake = FakeLlm::start();
    fake.push(Script::tool_call("ignored", "read", json!({"path": "notes.txt"})).usage(300, 12));
    let mut req = flash(&fake);
    let (msg, events) = ok(&req);
    assert_eq!(msg["stopReason"], "toolUse");
    let call = &msg["content"][0];
    let id = call["id"].as_str().unwrap_or("").to_string();
    let pieces: Vec<&str> = id.split('_').collect();
    assert!(
        pieces.len() == 3
            && pieces[0] == "read"
            && pieces[1].len() >= 13
            && pieces[1..]
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "generated id {id}"
    );
    assert_eq!(call["arguments"], json!({"path": "notes.txt"}));
    assert_eq!(call["thoughtSignature"], "c2lnXzA=");
    assert!(events.contains(&StreamEvent::ToolCallEnd {
        index: 0,
        id: id.clone(),
        name: "read".into(),
        arguments: json!({"path": "notes.txt"})
    }));

    fake.push(Script::text(["It says hi."]));
    req.messages.push(msg);
    req.messages.push(
        json!({"role": "toolResult", "toolCallId": id, "toolName": "read",
        "content": [{"type": "text", "text": "hi"}], "isError": false, "timestamp": 2}),
    );
    let (msg, _) = ok(&req);
    assert_eq!(msg["content"][0]["text"], "It says hi.");
    let contents = only_request(&fake).body["contents"].clone();
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "read", "args": {"path": "notes.txt"}},
                                           "thoughtSignature": "c2lnXzA="}]})
    );
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "read", "response": {"output": "hi"}}}]})
    );
    assert_eq!(contents.as_array().map(Vec::len), Some(3));
}

#[test]
fn gemini_second_call_with_the_same_id_gets_a_fresh_one() {
    let fake = FakeLlm::start();
    let part = |n: &str| json!({"functionCall": {"id": "dup", "name": n, "args": {}}});
    let frame = json!({"candidates": [{"content": {"role": "model", "parts": [part("ls"), part("read")]},
                                       "finishReason": "STOP"}]});
    fake.push(Script::empty().then_error_data(&frame.to_string()));
    let (msg, _) = ok(&flash(&fake));
    assert_eq!(msg["content"][0]["id"], "dup");
    let second = msg["content"][1]["id"].as_str().unwrap_or("");
    assert!(second.starts_with("read_"), "{second}");
    assert_eq!(msg["stopReason"], "toolUse");
}

#[test]
fn gemini_finish_reasons() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["cut"]).length_stop());
    let (msg, _) = ok(&flash(&fake));
    assert_eq!(msg["stopReason"], "length");

    let safety = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "par"}]},
                                        "finishReason": "SAFETY"}]});
    fake.push(Script::empty().then_error_data(&safety.to_string()));
    let e = err(&flash(&fake));
    assert_eq!(e.kind, ErrorKind::Stream);
    assert_eq!(e.message, "An unkown error ocurred");
    assert_eq!(e.assistant["stopReason"], "error");
    assert_eq!(e.assistant["content"][0]["text"], "par");

    let odd = json!({"candidates": [{"finishReason": "SOMETHING_NEW"}]});
    fake.push(Script::empty().then_error_data(&odd.to_string()));
    assert_eq!(
        err(&flash(&fake)).message,
        "Unhandled stop reason: SOMETHING_NEW"
    );
}

#[test]
fn gemini_http_errors_keep_sdk_texts_for_the_classifiers() {
    let fake = FakeLlm::start();
    let req = flash(&fake);

    fake.push(Script::rate_limited());
    let e = err(&req);
    assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(429)));
    assert_eq!(
        e.message,
        r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#
    );
    assert_eq!(e.assistant["errorMessage"], e.message.as_str());
    assert_eq!(
        classify_failover_reason(&e.message),
        Some(FailoverReason::RateLimit)
    );

    fake.push(Script::overloaded());
    let e = err(&req);
    assert_eq!(e.status, Some(503));
    assert!(
        e.message.contains("The model is overloaded"),
        "{}",
        e.message
    );
    assert!(
        classify_failover_reason(&e.message).is_some(),
        "{}",
        e.message
    );

    fake.push(Script::unauthorized());
    let e = err(&req);
    assert_eq!(e.status, Some(401));
    assert_eq!(
        classify_failover_reason(&e.message),
        Some(FailoverReason::Auth)
    );

    fake.push(Script::context_overflow());
    let e = err(&req);
    assert_eq!(e.status, Some(400));
    assert!(is_pi_context_overflow(&e.message), "{}", e.message);
    assert!(is_likely_context_overflow_error(&e.message));

    // A non-JSON body is wrapped the way the SDK does it.
    fake.push(Script::http(
        502,
        &[("content-type", "text/plain")],
        "bad gateway",
    ));
    assert_eq!(
        err(&req).message,
        r#"{"error":{"message":"bad gateway","code":502,"status":"Bad Gateway"}}"#
    );
}

#[test]
fn gemini_mid_stream_error_keeps_partial_text() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["par", "tial"]).then_error());
    let e = err(&flash(&fake));
    assert_eq!(e.kind, ErrorKind::Stream);
    assert!(
        e.message.starts_with("got status: UNAVAILABLE. {\"error\""),
        "{}",
        e.message
    );
    assert!(classify_failover_reason(&e.message).is_some());
    assert_eq!(e.assistant["content"][0]["text"], "partial");
}

#[test]
fn gemini_key_stays_out_of_urls_errors_and_debug() {
    let fake = FakeLlm::start();
    let body = format!(
        r#"{{"error":{{"code":400,"message":"API key not valid: {GEMINI_KEY}","status":"INVALID_ARGUMENT"}}}}"#
    );
    fake.push(Script::http(400, &[], &body));
    let req = flash(&fake);
    let e = err(&req);
    for text in [
        e.to_string(),
        format!("{e:?}"),
        format!("{req:?}"),
        e.assistant.to_string(),
    ] {
        assert!(!text.contains(GEMINI_KEY), "leaked: {text}");
    }
    assert!(e.message.contains("[redacted]"));
    let r = only_request(&fake);
    assert!(!r.path.contains(GEMINI_KEY) && !r.path.contains("key="));
    assert_eq!(r.header("x-goog-api-key"), Some(GEMINI_KEY));
}

#[test]
fn gemini_abort_mid_stream_returns_partial_message() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hel"]).then_hang());
    let abort = AbortSignal::new();
    let (seen_tx, seen_rx) = crossbeam_channel::bounded::<()>(1);
    let killer = {
        let abort = abort.clone();
        thread::spawn(move || {
            if seen_rx.recv_timeout(Duration::from_secs(5)).is_ok() {
                thread::sleep(Duration::from_millis(100));
                let at = Instant::now();
                abort.abort();
                Some(at)
            } else {
                None
            }
        })
    };
    let res = stream(&flash(&fake), &abort, &mut |e| {
        if matches!(e, StreamEvent::TextDelta { .. }) {
            let _ = seen_tx.try_send(());
        }
    });
    let returned = Instant::now();
    let aborted_at = killer.join().ok().flatten().expect("abort was sent");
    let lag = returned.saturating_duration_since(aborted_at);
    assert!(lag < Duration::from_millis(250), "abort took {lag:?}");
    let msg = res.expect("an abort is not an error");
    assert_eq!(msg["stopReason"], "aborted");
    assert_eq!(msg["errorMessage"], "Request was aborted");
    assert_eq!(msg["content"][0]["text"], "Hel");
    assert!(fake.wait_idle(Duration::from_secs(2)));
}

#[test]
fn gemini_connection_failure_has_the_genai_text() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let base = format!("http://127.0.0.1:{port}/v1beta");
    let t = ModelTarget::new("google", Api::GoogleGenerativeAi, "gemini-2.5-flash", &base);
    let e = err(&request(t, Credential::ApiKey(GEMINI_KEY.into())));
    assert_eq!(
        (e.kind, e.message.as_str()),
        (
            ErrorKind::Network,
            "exception TypeError: fetch failed sending request"
        )
    );
    // pi's session retry layer still treats it as transient.
    assert!(moltbot::agent::failover::retry::SessionRetry::is_retryable(
        &e.message
    ));
}

#[test]
fn gemini_images_inline_and_in_tool_results() {
    let fake = FakeLlm::start();
    let image = json!({"type": "image", "mimeType": "image/png", "data": "iVBORw0KGgo="});
    let history = vec![
        json!({"role": "user", "content": [{"type": "text", "text": "look"}, image.clone()]}),
        json!({"role": "assistant", "provider": "google", "api": "google-generative-ai",
               "model": "gemini-3-flash-preview", "stopReason": "toolUse",
               "content": [{"type": "toolCall", "id": "shot_1", "name": "screenshot", "arguments": {},
                            "thoughtSignature": "c2lnXzA="}]}),
        json!({"role": "toolResult", "toolCallId": "shot_1", "toolName": "screenshot",
               "content": [image.clone()], "isError": false}),
    ];
    let inline = json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}});

    // Gemini 3 nests tool-result images inside the function response.
    fake.push(Script::text(["ok"]));
    let mut req = flash(&fake);
    req.messages = history.clone();
    ok(&req);
    let contents = only_request(&fake).body["contents"].clone();
    assert_eq!(contents[0]["parts"][1], inline);
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "screenshot",
            "response": {"output": "(see attached image)"}, "parts": [inline]}}]})
    );

    // Older models get the image in a user message after the response; a model without image
    // input gets none at all.
    fake.push(Script::text(["ok"]));
    let mut req = gemini(&fake, "gemini-2.5-flash");
    req.messages = history.clone();
    ok(&req);
    let contents = only_request(&fake).body["contents"].clone();
    assert_eq!(
        contents[3],
        json!({"role": "user", "parts": [{"text": "Tool result image:"}, inline]})
    );
    fake.push(Script::text(["ok"]));
    req.target.input_images = false;
    ok(&req);
    let contents = only_request(&fake).body["contents"].clone();
    assert_eq!(contents[0]["parts"], json!([{"text": "look"}]));
    assert_eq!(contents.as_array().map(Vec::len), Some(3));
}
