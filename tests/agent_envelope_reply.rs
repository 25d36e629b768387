//! Golden tests for envelopes, the user message and reply shaping (`NO_REPLY`, `HEARTBEAT_OK`,
//! reply tags, directives). The tables in `tests/fixtures/agent_prompt/cases.rs` were produced
//! by running upstream's own TypeScript (moltbot 2026.1.27-beta.1) on the same inputs; the
//! system prompt and bootstrap goldens are in `agent_prompt.rs`.

use moltbot::agent::envelope::{self, EnvelopeOptions, SystemEvent, UserMessage};
use moltbot::agent::reply::{self, DirectiveOptions, NormalizeOptions, StripMode};

#[allow(dead_code, clippy::type_complexity)]
mod cases {
    include!("fixtures/agent_prompt/cases.rs");
}

// ---------------------------------------------------------------------------------------------
// Envelopes and the user message

#[test]
fn envelope_time_zones_match_upstream() {
    for &(tz, ts, want) in cases::ENVELOPE_ZONES {
        let opts = EnvelopeOptions {
            timezone: Some(tz.into()),
            user_timezone: Some("Europe/Vienna".into()),
            ..Default::default()
        };
        let env = envelope::Envelope {
            channel: "WebChat",
            timestamp_ms: Some(ts),
            body: "hello",
            ..Default::default()
        };
        assert_eq!(
            envelope::format_agent_envelope(&env, &opts),
            want,
            "{tz} {ts}"
        );
    }
}

#[test]
fn envelope_shapes_match_upstream() {
    // upstream envelope.test.ts (formatAgentEnvelope / formatInboundEnvelope)
    let opts = EnvelopeOptions {
        timezone: Some("utc".into()),
        ..Default::default()
    };
    let env = envelope::Envelope {
        channel: "WebChat",
        from: Some("user1"),
        host: Some("mac-mini"),
        ip: Some("10.0.0.5"),
        timestamp_ms: Some(1_735_787_040_000),
        body: "hello",
        ..Default::default()
    };
    assert_eq!(
        envelope::format_agent_envelope(&env, &opts),
        "[WebChat user1 mac-mini 10.0.0.5 2025-01-02T03:04Z] hello"
    );
    let off = EnvelopeOptions {
        include_timestamp: false,
        ..Default::default()
    };
    let env = envelope::Envelope {
        channel: "WebChat",
        timestamp_ms: Some(1_735_787_040_000),
        body: "hello",
        ..Default::default()
    };
    assert_eq!(
        envelope::format_agent_envelope(&env, &off),
        "[WebChat] hello"
    );
    for &(channel, from, prev, ts, sender, body, tz, with_ts, with_el, want) in cases::INBOUND {
        let opts = EnvelopeOptions {
            timezone: tz.map(str::to_string),
            include_timestamp: with_ts,
            include_elapsed: with_el,
            user_timezone: None,
        };
        assert_eq!(
            envelope::format_envelope(channel, from, prev, ts, sender, body, &opts),
            want
        );
    }
    assert_eq!(
        envelope::sender_label(Some("Bob"), None, Some("42")).as_deref(),
        Some("Bob (42)")
    );
    assert_eq!(
        envelope::sender_label(None, None, Some("42")).as_deref(),
        Some("42")
    );
    assert_eq!(
        envelope::format_from_label(true, Some("Ops"), Some("-100")),
        "Ops id:-100"
    );
    assert_eq!(
        envelope::format_from_label(false, Some("Alice"), Some("Alice")),
        "Alice"
    );
    let cfg = serde_json::json!({"agents": {"defaults": {"envelopeTimezone": "user", "envelopeTimestamp": "off", "envelopeElapsed": "off", "userTimezone": "Europe/Vienna"}}});
    let o = EnvelopeOptions::from_config(&cfg);
    assert_eq!(
        (
            o.timezone.as_deref(),
            o.include_timestamp,
            o.include_elapsed
        ),
        (Some("user"), false, false)
    );
}

#[test]
fn local_zone_envelope_has_zone_label() {
    let env = envelope::Envelope {
        channel: "WebChat",
        timestamp_ms: Some(1_735_787_040_000),
        body: "hello",
        ..Default::default()
    };
    let got = envelope::format_agent_envelope(&env, &EnvelopeOptions::default());
    if std::env::var_os("TZ").is_none() && envelope::host_timezone() == "UTC" {
        // What upstream prints on a UTC host (checked with Node 20).
        assert_eq!(got, "[WebChat 2025-01-02 03:04 UTC] hello");
    }
    let header = got
        .strip_prefix("[WebChat ")
        .and_then(|r| r.strip_suffix("] hello"))
        .unwrap_or_else(|| panic!("{got}"));
    assert!(header.len() > "2025-01-02 03:04 ".len(), "{header}");
}

#[test]
fn user_message_composition() {
    let opts = EnvelopeOptions {
        timezone: Some("Europe/Vienna".into()),
        ..Default::default()
    };
    let events = [
        SystemEvent {
            ts_ms: 1_735_787_045_000,
            text: "  Cron: water the plants ".into(),
        },
        SystemEvent {
            ts_ms: 1_735_787_045_000,
            text: "Read HEARTBEAT.md if it exists".into(),
        },
        SystemEvent {
            ts_ms: 1_735_787_045_000,
            text: "Node: mac · last input 5m ago · online".into(),
        },
    ];
    let lines = envelope::system_event_lines(&events, &opts);
    assert_eq!(
        lines,
        [
            "System: [2025-01-02 04:04:05 GMT+1] Cron: water the plants",
            "System: [2025-01-02 04:04:05 GMT+1] Node: mac· online",
        ]
    );
    let utc = EnvelopeOptions {
        timezone: Some("utc".into()),
        ..Default::default()
    };
    assert_eq!(
        envelope::format_system_event_timestamp(1_735_787_045_000, &utc),
        "2025-01-02T03:04:05Z"
    );
    let msg = UserMessage {
        body: "[Telegram Alice 2025-01-02T03:04Z] hi",
        message_id: Some(" 42 "),
        aborted_last_run: true,
        system_lines: &lines,
        thread_starter: Some("Original post"),
    };
    assert_eq!(
        envelope::build_user_message(&msg),
        format!("[Thread starter - for context]\nOriginal post\n\n{}\n\n{}\n\n[Telegram Alice 2025-01-02T03:04Z] hi\n[message_id: 42]", lines.join("\n"), envelope::ABORT_NOTE)
    );
    // chat.send: the raw message with the idempotency key as message id, no envelope.
    let body = envelope::normalize_inbound_newlines("hello\\nworld\r\n");
    let msg = UserMessage {
        body: &body,
        message_id: Some("run-1"),
        ..Default::default()
    };
    assert_eq!(
        envelope::build_user_message(&msg),
        "hello\nworld\n\n[message_id: run-1]"
    );
    assert!(envelope::is_bare_session_reset(true, "/new", "/new"));
    assert!(envelope::is_bare_session_reset(true, "/reset x", ""));
    assert!(!envelope::is_bare_session_reset(false, "/new", ""));
    assert!(envelope::BARE_SESSION_RESET_PROMPT
        .starts_with("A new session was started via /new or /reset. Say hi briefly"));
}

#[test]
fn thinking_keywords_match_upstream() {
    for &(word, want) in cases::THINK {
        assert_eq!(envelope::normalize_think_level(word), want, "{word}");
    }
    assert_eq!(
        envelope::consume_leading_think_level("ultrathink  plan  it ", false),
        Some(("high", "plan it".into()))
    );
    assert_eq!(
        envelope::consume_leading_think_level("xhigh go", false),
        None
    );
    assert_eq!(
        envelope::consume_leading_think_level(" high go", true),
        None
    );
    assert_eq!(
        envelope::consume_leading_think_level("[Telegram a] high", true),
        None
    );
}

#[test]
fn strip_envelope_matches_chat_sanitize() {
    // Includes upstream chat-sanitize.test.ts cases (message_id lines, inline ids kept).
    for &(input, want) in cases::STRIP_ENVELOPE {
        assert_eq!(envelope::strip_envelope(input), want, "{input:?}");
    }
    let mut user = serde_json::json!({"role": "user", "content": [{"type": "text", "text": "hi\n[message_id: abc123]"}]});
    assert!(envelope::strip_envelope_from_message(&mut user));
    assert_eq!(user["content"][0]["text"], "hi");
    let mut assistant =
        serde_json::json!({"role": "assistant", "content": "note\n[message_id: 123]"});
    assert!(!envelope::strip_envelope_from_message(&mut assistant));
}

// ---------------------------------------------------------------------------------------------
// Reply shaping

#[test]
fn heartbeat_strip_matches_upstream() {
    // Includes every case of upstream heartbeat.test.ts "stripHeartbeatToken".
    for &(input, heartbeat, max, skip, text, did) in cases::HEARTBEAT_STRIP {
        let mode = if heartbeat {
            StripMode::Heartbeat
        } else {
            StripMode::Message
        };
        let got = reply::strip_heartbeat_token(input, mode, max);
        assert_eq!(
            (got.should_skip, got.text.as_str(), got.did_strip),
            (skip, text, did),
            "{input:?} {mode:?} {max:?}"
        );
    }
}

#[test]
fn heartbeat_file_emptiness_matches_upstream() {
    // Includes upstream heartbeat.test.ts "isHeartbeatContentEffectivelyEmpty".
    for &(content, want) in cases::HB_EMPTY {
        assert_eq!(
            reply::is_heartbeat_content_effectively_empty(content),
            want,
            "{content:?}"
        );
    }
}

#[test]
fn silent_token_matches_upstream() {
    for &(text, want) in cases::SILENT {
        assert_eq!(
            reply::is_silent_reply_text(text, reply::SILENT_REPLY_TOKEN),
            want,
            "{text:?}"
        );
    }
}

#[test]
fn reply_tags_match_upstream() {
    // Includes upstream reply.directive.parse.test.ts extractReplyToTag cases.
    for &(text, id, keep_audio, clean, reply_to, current, has_tag, audio) in cases::DIRECTIVES {
        let opts = DirectiveOptions {
            current_message_id: id,
            keep_audio_tag: keep_audio,
            keep_reply_tags: false,
        };
        let got = reply::parse_inline_directives(text, &opts);
        assert_eq!(
            (
                got.text.as_str(),
                got.reply_to_id.as_deref(),
                got.reply_to_current,
                got.has_reply_tag,
                got.audio_as_voice
            ),
            (clean, reply_to, current, has_tag, audio),
            "{text:?} keep_audio={keep_audio}"
        );
    }
    for &(text, id, clean, reply_to, tag, silent) in cases::REPLY_DIRECTIVES {
        let got = reply::parse_reply_directives(text, id);
        assert_eq!(
            (
                got.text.as_str(),
                got.reply_to_id.as_deref(),
                got.reply_to_tag,
                got.is_silent
            ),
            (clean, reply_to, tag, silent),
            "{text:?}"
        );
    }
    let tagged = reply::apply_reply_tags("[[reply_to_current]]", Some("9"));
    assert_eq!(
        (tagged.text.as_str(), tagged.reply_to_id.as_deref()),
        ("", Some("9"))
    );
}

#[test]
fn normalize_reply_rules() {
    let n = |t: &str, media: bool, prefix: Option<&'static str>| {
        let opts = NormalizeOptions {
            has_media: media,
            response_prefix: prefix,
            ..Default::default()
        };
        reply::normalize_reply_text(Some(t), &opts)
    };
    assert_eq!(n("NO_REPLY", false, None), None);
    assert_eq!(n("NO_REPLY", true, None), Some(String::new()));
    assert_eq!(n("  ", false, None), None);
    assert_eq!(n("HEARTBEAT_OK", false, None), None);
    assert_eq!(
        n("HEARTBEAT_OK all good", false, None),
        Some("all good".into())
    );
    assert_eq!(n("hi", false, Some("[bot]")), Some("[bot] hi".into()));
    assert_eq!(n("[bot] hi", false, Some("[bot]")), Some("[bot] hi".into()));
    assert_eq!(n("ok NO_REPLY", false, None), None);
    assert_eq!(n("hello", false, None), Some("hello".into()));
}
