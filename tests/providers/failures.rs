//! Failure paths of `providers::stream` against the fake: HTTP and mid-stream error texts,
//! connection failures, secret hygiene, abort and timeout; plus the fake's own bookkeeping.

use super::*;

// ---------------------------------------------------------------- errors

#[test]
fn anthropic_http_errors_keep_sdk_texts() {
    let fake = FakeLlm::start();
    let req = anthropic(&fake);

    fake.push(Script::rate_limited());
    let e = err(&req);
    assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(429)));
    assert_eq!(
        e.message,
        r#"429 {"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_test429"}"#
    );
    assert_eq!(e.to_string(), e.message);
    assert_eq!(e.retry_after, Some(Duration::ZERO));
    assert_eq!(e.should_retry, Some(false));
    assert_eq!(e.assistant["stopReason"], "error");
    assert_eq!(e.assistant["errorMessage"], e.message.as_str());
    assert_eq!(e.assistant["content"], json!([]));

    fake.push(Script::overloaded());
    let e = err(&req);
    assert_eq!(e.status, Some(529));
    assert_eq!(
        e.message,
        r#"529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
    );

    fake.push(Script::unauthorized());
    let e = err(&req);
    assert_eq!(
        e.message,
        r#"401 {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#
    );

    fake.push(Script::context_overflow());
    let e = err(&req);
    assert_eq!(e.status, Some(400));
    assert!(
        e.message.starts_with("400 {")
            && e.message
                .contains("prompt is too long: 210000 tokens > 200000 maximum")
    );

    fake.push(Script::http(500, &[], ""));
    assert_eq!(err(&req).message, "500 status code (no body)");
}

#[test]
fn openai_http_errors_use_error_message() {
    let fake = FakeLlm::start();
    fake.push(Script::rate_limited());
    let e = err(&openai(&fake));
    assert_eq!(e.status, Some(429));
    assert_eq!(
        e.message,
        "429 Rate limit reached for gpt-5.2 on tokens per min (TPM): Limit 30000, Used 30000, Requested 100."
    );
    fake.push(Script::rate_limited());
    assert_eq!(err(&fakechat(&fake)).message, "429 Rate limit reached");
    fake.push(Script::unauthorized());
    assert_eq!(
        err(&fakechat(&fake)).message,
        "401 Incorrect API key provided."
    );
    fake.push(Script::context_overflow());
    let e = err(&openai(&fake));
    assert!(
        e.message
            .starts_with("400 Your input exceeds the context window"),
        "{}",
        e.message
    );
}

#[test]
fn mid_stream_errors_keep_partial_content() {
    let fake = FakeLlm::start();
    let cases = [
        (
            anthropic(&fake),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        (openai(&fake), "Error Code server_error: boom"),
        (fakechat(&fake), "upstream overloaded"),
    ];
    for (req, want) in cases {
        fake.push(Script::text(["Partial"]).then_error());
        let e = err(&req);
        assert_eq!(
            (e.kind, e.status),
            (ErrorKind::Stream, None),
            "{:?}",
            req.target.api
        );
        assert_eq!(e.message, want);
        assert_eq!(e.assistant["stopReason"], "error");
        assert_eq!(e.assistant["content"][0]["text"], "Partial");
    }
    fake.push(Script::mid_stream_error());
    assert_eq!(err(&anthropic(&fake)).assistant["content"], json!([]));
}

#[test]
fn anthropic_stream_without_chunks_is_an_error() {
    let fake = FakeLlm::start();
    fake.push(Script::http(
        200,
        &[("content-type", "text/event-stream")],
        "",
    ));
    let e = err(&anthropic(&fake));
    assert_eq!(
        (e.kind, e.message.as_str()),
        (
            ErrorKind::Stream,
            "request ended without sending any chunks"
        )
    );
}

#[test]
fn connection_refused_is_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let t = ModelTarget::new(
        "openai",
        Api::OpenAiResponses,
        "gpt",
        &format!("http://127.0.0.1:{port}/v1"),
    );
    let e = err(&request(t, Credential::Bearer(OPENAI_KEY.into())));
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::Network, "Connection error.")
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let fake = FakeLlm::start();
    let key = "sk-ant-api03-SECRET-do-not-print";
    let body = format!(
        r#"{{"type":"error","error":{{"type":"authentication_error","message":"invalid x-api-key {key}"}}}}"#
    );
    fake.push(Script::http(401, &[], &body));
    let mut req = anthropic(&fake);
    req.credential = Credential::ApiKey(key.into());
    let e = err(&req);
    for text in [
        e.to_string(),
        format!("{e:?}"),
        format!("{req:?}"),
        format!("{:?}", req.credential),
        e.assistant.to_string(),
    ] {
        assert!(!text.contains(key), "leaked: {text}");
    }
    assert!(e.message.contains("[redacted]"));
    // The key did go out on the wire, only there.
    assert_eq!(fake.requests()[0].header("x-api-key"), Some(key));
}

// ---------------------------------------------------------------- abort and timeout

#[test]
fn abort_mid_stream_returns_partial_message_promptly() {
    let fake = FakeLlm::start();
    let cases = [anthropic(&fake), openai(&fake), fakechat(&fake)];
    for req in cases {
        fake.push(Script::text(["Hel"]).then_hang());
        let abort = AbortSignal::new();
        let (seen_tx, seen_rx) = crossbeam_channel::bounded::<()>(1);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<Instant>(1);
        let killer = {
            let abort = abort.clone();
            thread::spawn(move || {
                // Abort only once the server has gone silent after the first delta.
                if seen_rx.recv_timeout(Duration::from_secs(5)).is_ok() {
                    thread::sleep(Duration::from_millis(100));
                    let _ = done_tx.send(Instant::now());
                    abort.abort();
                }
            })
        };
        let res = stream(&req, &abort, &mut |e| {
            if matches!(e, StreamEvent::TextDelta { .. }) {
                let _ = seen_tx.try_send(());
            }
        });
        let returned = Instant::now();
        let aborted_at = done_rx
            .recv_timeout(Duration::from_secs(1))
            .expect("abort was sent");
        let _ = killer.join();
        let lag = returned.saturating_duration_since(aborted_at);
        assert!(
            lag < Duration::from_millis(250),
            "abort took {lag:?} ({:?})",
            req.target.api
        );

        let msg = res.expect("an abort is not an error");
        assert_eq!(msg["stopReason"], "aborted");
        assert_eq!(msg["errorMessage"], "Request was aborted");
        assert_eq!(msg["content"][0]["text"], "Hel");
    }
    // The fake saw each client go away.
    assert!(fake.wait_idle(Duration::from_secs(2)));
}

#[test]
fn abort_before_response_headers_and_before_start() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["late"]).head_delay(Duration::from_secs(5)));
    let req = anthropic(&fake);
    let abort = AbortSignal::new();
    let msg = aborted_promptly(&req, &abort);
    assert_eq!(msg["content"], json!([]));

    // Already aborted: no request at all.
    let before = fake.request_count();
    let msg = stream(&req, &abort, &mut |_| {}).expect("aborted message");
    assert_eq!(msg["stopReason"], "aborted");
    assert_eq!(fake.request_count(), before);
}

/// Streams `req`, aborting it 200 ms in: the aborted message, which must come within 1 s.
fn aborted_promptly(req: &Request, abort: &AbortSignal) -> Value {
    let a = abort.clone();
    let killer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        a.abort();
    });
    let started = Instant::now();
    let msg = stream(req, abort, &mut |_| {}).expect("aborted message");
    let took = started.elapsed();
    let _ = killer.join();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(msg["stopReason"], "aborted");
    msg
}

/// A loopback address whose connects hang: a listener with a backlog of 0 that never accepts,
/// its one queue slot taken, so the kernel drops every further SYN. Keep the guard alive.
fn unanswered_addr() -> (
    Vec<std::net::TcpStream>,
    std::os::fd::OwnedFd,
    std::net::SocketAddr,
) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket calls on a descriptor this function owns; the structs are zeroed
    // and filled as the kernel expects for AF_INET.
    let (fd, addr) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let fd = OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let sp = &mut sa as *mut libc::sockaddr_in as *mut libc::sockaddr;
        assert_eq!(libc::bind(fd.as_raw_fd(), sp, len), 0, "bind");
        assert_eq!(libc::listen(fd.as_raw_fd(), 0), 0, "listen");
        let mut got = len;
        assert_eq!(libc::getsockname(fd.as_raw_fd(), sp, &mut got), 0);
        let addr =
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, u16::from_be(sa.sin_port)));
        (fd, addr)
    };
    let mut held = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return (held, fd, addr),
            Err(e) => panic!("filling the backlog: {e}"),
        }
    }
    panic!("the listener's queue never filled");
}

/// The Anthropic request of these tests, sent to `base`.
fn anthropic_at(base: &str) -> Request {
    let t = ModelTarget::new("anthropic", Api::AnthropicMessages, "claude-opus-4-5", base);
    request(t, Credential::ApiKey(ANTHROPIC_KEY.into()))
}

/// Sends `req` with a `limit` timeout; asserts upstream's timeout error, reached in about
/// `limit` (not at once, not much later).
fn times_out_after(mut req: Request, limit: Duration) -> ProviderError {
    req.timeout = limit;
    let started = Instant::now();
    let e = err(&req);
    let took = started.elapsed();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::Timeout, "Request timed out.")
    );
    assert!(
        took >= limit - Duration::from_millis(50) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    e
}

#[test]
fn abort_during_a_connect_that_hangs_returns_at_once() {
    let (_held, _listener, addr) = unanswered_addr();
    let req = anthropic_at(&format!("http://{addr}"));
    // The connect alone would wait for the request's 600 s (its SYNs are dropped).
    let msg = aborted_promptly(&req, &AbortSignal::new());
    assert_eq!(msg["errorMessage"], "Request was aborted");
}

#[test]
fn a_connect_that_hangs_times_out_with_the_request() {
    let (_held, _listener, addr) = unanswered_addr();
    let req = anthropic_at(&format!("http://{addr}"));
    times_out_after(req, Duration::from_millis(400));
}

#[test]
fn a_host_name_is_looked_up_and_its_connection_kept() {
    let fake = FakeLlm::start();
    let req = anthropic_at(&format!("http://localhost:{}", fake.addr().port()));
    for word in ["one", "two"] {
        fake.push(Script::text([word]));
        let (msg, _) = ok(&req);
        assert_eq!(msg["content"][0]["text"], word);
    }
    let conns: Vec<usize> = fake.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns, [1, 1], "the second call reuses the first connection");
}

#[test]
fn timeout_on_a_silent_stream() {
    let fake = FakeLlm::start();
    fake.push(Script::hang());
    let e = times_out_after(anthropic(&fake), Duration::from_millis(500));
    assert_eq!(e.assistant["stopReason"], "error");
}

// ---------------------------------------------------------------- the fake itself

#[test]
fn fake_counts_concurrency_and_routes_scripts() {
    let fake = FakeLlm::start();
    fake.push_for(
        Route::Chat,
        Script::text(["chat"]).head_delay(Duration::from_millis(300)),
    );
    fake.set_default(Script::text(["default"]).head_delay(Duration::from_millis(300)));
    let reqs = [anthropic(&fake), openai(&fake), fakechat(&fake)];
    let texts: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = reqs.iter().map(|r| s.spawn(move || ok(r).0)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().expect("join")["content"][0]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    });
    assert_eq!(texts, ["default", "default", "chat"]);
    assert_eq!(fake.max_in_flight(), 3);
    // The fake counts a request done once its handler has returned, which may be just after
    // the client has read the last frame.
    assert!(fake.wait_idle(Duration::from_secs(5)), "still answering");
    assert_eq!(fake.in_flight(), 0);
    assert_eq!(fake.pending(), 0);

    // A responder branches on the request.
    fake.respond_with(|r| {
        let last = r.last_message()?;
        let is_result = last["content"][0]["type"] == "tool_result";
        Some(Script::text([if is_result {
            "after tool"
        } else {
            "first"
        }]))
    });
    let mut req = anthropic(&fake);
    assert_eq!(ok(&req).0["content"][0]["text"], "first");
    req.messages.push(
        json!({"role": "assistant", "provider": "anthropic", "api": "anthropic-messages",
        "model": "claude-opus-4-5", "stopReason": "toolUse",
        "content": [{"type": "toolCall", "id": "t", "name": "read", "arguments": {}}]}),
    );
    req.messages.push(
        json!({"role": "toolResult", "toolCallId": "t", "toolName": "read",
        "content": [{"type": "text", "text": "x"}], "isError": false}),
    );
    assert_eq!(ok(&req).0["content"][0]["text"], "after tool");
}

#[test]
fn unscripted_requests_get_a_clear_500() {
    let fake = FakeLlm::start();
    let e = err(&fakechat(&fake));
    assert_eq!(e.message, "500 fake llm: no script queued");
}
