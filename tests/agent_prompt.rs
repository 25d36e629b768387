//! Golden tests for the agent prompt layer: the system prompt (empty workspace, templates,
//! truncation, minimal and none modes, every toggle we port), bootstrap loading and workspace
//! creation, envelopes and the user message, and reply shaping (`NO_REPLY`, `HEARTBEAT_OK`,
//! reply tags).
//!
//! The `.txt` goldens and `cases.rs` tables under `tests/fixtures/agent_prompt/` were produced
//! by running upstream's own TypeScript (moltbot 2026.1.27-beta.1) on the same inputs; named
//! upstream tests are cited where a case comes from one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use moltbot::agent::bootstrap::{self, ContextFile};
use moltbot::agent::envelope::{self, EnvelopeOptions, SystemEvent, UserMessage};
use moltbot::agent::prompt::{self, PromptMode, PromptParams, RuntimeInfo, ToolEntry};
use moltbot::agent::reply::{self, DirectiveOptions, NormalizeOptions, StripMode};

#[allow(dead_code, clippy::type_complexity)]
mod cases {
    include!("fixtures/agent_prompt/cases.rs");
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agent_prompt");

fn golden(name: &str) -> String {
    fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fresh directory under the system temp dir (removed first if a previous run left it).
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("moltbot-prompt-{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// Compares line by line first so a mismatch names the first differing line.
fn assert_same(actual: &str, expected: &str) {
    for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, e, "first difference at line {}", i + 1);
    }
    assert_eq!(actual, expected);
}

/// The parameters the goldens were generated with (main agent, webchat, thinking low).
fn base_params(ws: &str) -> PromptParams {
    PromptParams {
        agent_id: Some("main".into()),
        workspace_dir: ws.into(),
        model: Some("anthropic/claude-opus-4-5".into()),
        default_model: Some("anthropic/claude-opus-4-5".into()),
        channel: Some("webchat".into()),
        thinking: Some("low".into()),
        reasoning: Some("off".into()),
        user_timezone: Some("UTC".into()),
        heartbeat_prompt: Some(reply::HEARTBEAT_PROMPT.into()),
        runtime: RuntimeInfo {
            host: Some("testhost".into()),
            os: Some("Linux 6.1.0".into()),
            arch: Some("x64".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Loads the workspace like a run does and renders the prompt with `{WS}` for the path.
fn render(
    ws: &Path,
    session_key: Option<&str>,
    max_chars: usize,
    edit: impl Fn(&mut PromptParams),
) -> String {
    let ws_str = ws.to_string_lossy().into_owned();
    let (files, context) = bootstrap::resolve_bootstrap_context(&ws_str, session_key, max_chars);
    let mut p = base_params(&ws_str);
    p.context_files = context;
    p.workspace_notes = bootstrap::workspace_notes(&files);
    edit(&mut p);
    prompt::build_system_prompt(&p).replace(&ws_str, "{WS}")
}

/// The goldens spell the workspace as `{WS}`.
fn render_fixed(p: &PromptParams) -> String {
    prompt::build_system_prompt(p).replace(&p.workspace_dir, "{WS}")
}

// ---------------------------------------------------------------------------------------------
// System prompt goldens

#[test]
fn full_prompt_empty_workspace_no_tools() {
    let ws = temp_dir("empty");
    let dir = bootstrap::ensure_workspace(&ws.to_string_lossy(), true).expect("mkdir");
    assert!(
        fs::read_dir(&dir).expect("dir").next().is_none(),
        "skip_bootstrap writes nothing"
    );
    let got = render(&ws, None, bootstrap::DEFAULT_BOOTSTRAP_MAX_CHARS, |_| {});
    assert_same(&got, &golden("full_empty_workspace.txt"));
    assert!(got.contains("## AGENTS.md\n[MISSING] Expected at: {WS}/AGENTS.md"));
}

#[test]
fn full_prompt_with_templates() {
    let ws = temp_dir("templates");
    bootstrap::ensure_workspace(&ws.to_string_lossy(), false).expect("ensure");
    for name in [
        "AGENTS.md",
        "SOUL.md",
        "TOOLS.md",
        "IDENTITY.md",
        "USER.md",
        "HEARTBEAT.md",
        "BOOTSTRAP.md",
    ] {
        let written = fs::read_to_string(ws.join(name)).expect("template written");
        assert_eq!(Some(written.as_str()), bootstrap::template(name), "{name}");
    }
    let got = render(&ws, None, bootstrap::DEFAULT_BOOTSTRAP_MAX_CHARS, |_| {});
    assert_same(&got, &golden("full_templates.txt"));
    assert!(got.contains("Reminder: commit your changes in this workspace after edits."));
}

/// The AGENTS.md of the truncation goldens: 1200 lines with emoji (UTF-16 lengths matter).
fn big_agents() -> String {
    let mut s: String = (0..1200)
        .map(|i| format!("line {i} 🦞 lorem ipsum\n"))
        .collect();
    s.push_str("\n\n  \n");
    s
}

fn truncation_workspace() -> PathBuf {
    let ws = temp_dir("trunc");
    fs::create_dir_all(&ws).expect("mkdir");
    fs::write(ws.join("AGENTS.md"), big_agents()).expect("write");
    fs::write(ws.join("SOUL.md"), "   \n").expect("write");
    fs::write(ws.join("MEMORY.md"), "remember\r\n").expect("write");
    ws
}

#[test]
fn full_prompt_with_truncation() {
    let ws = truncation_workspace();
    let got = render(&ws, None, bootstrap::DEFAULT_BOOTSTRAP_MAX_CHARS, |_| {});
    assert_same(&got, &golden("full_truncated.txt"));
    assert!(got.contains("[...truncated, read AGENTS.md for full content...]\n…(truncated AGENTS.md: kept 14000+4000 chars of 28889)…"));
    assert!(
        !got.contains("## SOUL.md"),
        "whitespace-only files are skipped"
    );
    assert!(
        !got.contains("If SOUL.md is present"),
        "no SOUL note without the file"
    );
    let small = render(&ws, None, 300, |_| {});
    assert_same(&small, &golden("full_truncated_small.txt"));
}

#[test]
fn minimal_prompt_for_subagent() {
    let ws = temp_dir("minimal");
    bootstrap::ensure_workspace(&ws.to_string_lossy(), false).expect("ensure");
    let key = "agent:main:subagent:abc";
    let tools = [
        ("read", ""),
        ("exec", "ignored"),
        ("Write", ""),
        ("zeta_tool", "Zeta does things"),
        ("alpha_tool", "  "),
        ("READ", ""),
        (" ", ""),
        ("process", ""),
    ];
    let got = render(
        &ws,
        Some(key),
        bootstrap::DEFAULT_BOOTSTRAP_MAX_CHARS,
        |p| {
            p.mode = PromptMode::Minimal;
            p.tools = tools
                .iter()
                .map(|(n, s)| ToolEntry {
                    name: n.to_string(),
                    summary: s.to_string(),
                })
                .collect();
            p.extra_system_prompt = Some("  You are a sub-agent. Task: count.  ".into());
            p.owner_numbers = vec!["+1".into()];
            p.aliases = vec![("x".into(), "y".into())];
        },
    );
    assert_same(&got, &golden("minimal_subagent.txt"));
    // Cases of upstream's system-prompt.test.ts "omits extended sections in minimal prompt mode".
    for absent in [
        "## User Identity",
        "## Reply Tags",
        "## Messaging",
        "## Silent Replies",
        "## Heartbeats",
        "## Model Aliases",
        "## SOUL.md",
    ] {
        assert!(!got.contains(absent), "{absent}");
    }
    assert!(got.contains("## Subagent Context\nYou are a sub-agent. Task: count."));
}

fn entries(names: &[(&str, &str)]) -> Vec<ToolEntry> {
    names
        .iter()
        .map(|(n, s)| ToolEntry {
            name: n.to_string(),
            summary: s.to_string(),
        })
        .collect()
}

#[test]
fn full_prompt_every_ported_toggle() {
    let p = PromptParams {
        workspace_dir: "/tmp/clawd".into(),
        thinking: Some("high".into()),
        reasoning: Some("stream".into()),
        tools: entries(&[
            ("message", ""),
            ("gateway", ""),
            ("memory_search", ""),
            ("web_fetch", ""),
            ("read", ""),
            ("sessions_spawn", ""),
            ("custom", "Custom thing"),
        ]),
        aliases: vec![
            ("sonnet".into(), "anthropic/claude-sonnet-4-5".into()),
            ("Opus".into(), "anthropic/claude-opus-4-5".into()),
        ],
        owner_numbers: vec!["+123".into(), " +456 ".into(), "".into()],
        user_timezone: Some("Europe/Vienna".into()),
        extra_system_prompt: Some("Group intro here.".into()),
        reasoning_tag_hint: true,
        workspace_notes: vec![
            "  Reminder: commit your changes in this workspace after edits.  ".into(),
        ],
        agent_id: Some("work".into()),
        model: Some("openai/gpt-5.2".into()),
        channel: Some(" Telegram ".into()),
        runtime: RuntimeInfo {
            host: Some("h".into()),
            repo_root: Some("/repo".into()),
            arch: Some("arm64".into()),
            capabilities: vec![" reactions ".into(), "".into()],
            ..Default::default()
        },
        context_files: vec![
            ContextFile {
                path: "./SOUL.md".into(),
                content: "Persona\n\nmore".into(),
            },
            ContextFile {
                path: "EXTRA.md".into(),
                content: "".into(),
            },
        ],
        ..Default::default()
    };
    assert_same(&render_fixed(&p), &golden("full_kitchen_sink.txt"));
}

#[test]
fn message_tool_hints_follow_capabilities() {
    let mut p = PromptParams {
        workspace_dir: "/tmp/clawd".into(),
        tools: entries(&[("message", "")]),
        channel: Some("telegram".into()),
        ..Default::default()
    };
    p.runtime.capabilities = vec!["inlineButtons".into()];
    assert_same(&render_fixed(&p), &golden("full_kitchen_sink_buttons.txt"));
    p.channel = None;
    p.runtime.capabilities.clear();
    assert_same(&render_fixed(&p), &golden("full_message_nochannel.txt"));
}

#[test]
fn none_mode_is_identity_only() {
    let p = PromptParams {
        workspace_dir: "/tmp/clawd".into(),
        mode: PromptMode::None,
        tools: entries(&[("read", "")]),
        ..Default::default()
    };
    assert_eq!(prompt::build_system_prompt(&p), golden("none_mode.txt"));
}

#[test]
fn runtime_line_parts() {
    // From upstream's system-prompt.test.ts "builds runtime line with agent and channel details".
    let p = PromptParams {
        agent_id: Some("work".into()),
        model: Some("anthropic/claude".into()),
        default_model: Some("anthropic/claude-opus-4-5".into()),
        channel: Some("telegram".into()),
        thinking: Some("low".into()),
        runtime: RuntimeInfo {
            host: Some("host".into()),
            repo_root: Some("/repo".into()),
            os: Some("macOS".into()),
            arch: Some("arm64".into()),
            node: Some("v20".into()),
            capabilities: vec!["inlineButtons".into()],
        },
        ..Default::default()
    };
    assert_eq!(
        prompt::build_runtime_line(&p),
        "Runtime: agent=work | host=host | repo=/repo | os=macOS (arm64) | node=v20 | model=anthropic/claude | default_model=anthropic/claude-opus-4-5 | channel=telegram | capabilities=inlineButtons | thinking=low"
    );
    assert_eq!(
        prompt::build_runtime_line(&PromptParams::default()),
        "Runtime: thinking=off"
    );
    let detected = RuntimeInfo::detect();
    assert!(detected
        .os
        .as_deref()
        .is_some_and(|o| o.starts_with("Linux ")));
    assert_eq!(
        detected.arch.as_deref(),
        Some(prompt::node_arch(std::env::consts::ARCH))
    );
}

#[test]
fn alias_lines_sort_like_locale_compare() {
    let cfg = serde_json::json!({"agents": {"defaults": {"models": {
        "anthropic/claude-sonnet-4-5": {"alias": "sonnet"},
        "anthropic/claude-opus-4-5": {"alias": "Opus"},
        "openai/gpt-5.2": {},
        "openai/gpt-4o": {"alias": "  "}
    }}}});
    let lines = prompt::model_alias_lines(&prompt::aliases_from_config(&cfg));
    assert_eq!(
        lines,
        [
            "- Opus: anthropic/claude-opus-4-5",
            "- sonnet: anthropic/claude-sonnet-4-5"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Bootstrap files

#[test]
fn bootstrap_order_missing_and_memory() {
    // upstream workspace.test.ts: MEMORY.md when present, memory.md when MEMORY.md is absent.
    let ws = temp_dir("order");
    fs::create_dir_all(&ws).expect("mkdir");
    let names = |ws: &PathBuf| -> Vec<String> {
        bootstrap::load_workspace_bootstrap_files(&ws.to_string_lossy())
            .into_iter()
            .map(|f| f.name)
            .collect()
    };
    let core = [
        "AGENTS.md",
        "SOUL.md",
        "TOOLS.md",
        "IDENTITY.md",
        "USER.md",
        "HEARTBEAT.md",
        "BOOTSTRAP.md",
    ];
    assert_eq!(names(&ws), core);
    fs::write(ws.join("memory.md"), "alt").expect("write");
    assert_eq!(names(&ws).last().map(String::as_str), Some("memory.md"));
    fs::write(ws.join("MEMORY.md"), "memory").expect("write");
    let files = bootstrap::load_workspace_bootstrap_files(&ws.to_string_lossy());
    assert_eq!(files.len(), 9, "both spellings on a case-sensitive fs");
    assert_eq!(files[7].content.as_deref(), Some("memory"));
    assert!(files[..7].iter().all(|f| f.missing));
}

#[test]
fn bootstrap_context_files_rules() {
    // upstream pi-embedded-helpers.buildbootstrapcontextfiles.test.ts
    let file = |name: &str, content: Option<&str>| bootstrap::BootstrapFile {
        name: name.into(),
        path: PathBuf::from(format!("/tmp/{name}")),
        content: content.map(str::to_string),
        missing: content.is_none(),
    };
    let ctx = bootstrap::build_context_files(&[file("AGENTS.md", None)], 20_000);
    assert_eq!(
        ctx,
        [ContextFile {
            path: "AGENTS.md".into(),
            content: "[MISSING] Expected at: /tmp/AGENTS.md".into()
        }]
    );
    assert!(
        bootstrap::build_context_files(&[file("AGENTS.md", Some("   \n  "))], 20_000).is_empty()
    );
    let long = format!("HEAD-{}{}-TAIL", "a".repeat(600), "b".repeat(300));
    let ctx = bootstrap::build_context_files(&[file("TOOLS.md", Some(&long))], 200);
    let c = &ctx[0].content;
    assert!(c.contains("[...truncated, read TOOLS.md for full content...]"));
    assert!(c.starts_with(&long[..120]) && c.ends_with(&long[long.len() - 40..]));
    let under = "a".repeat(bootstrap::DEFAULT_BOOTSTRAP_MAX_CHARS - 10);
    let ctx = bootstrap::build_context_files(&[file("AGENTS.md", Some(&under))], 20_000);
    assert_eq!(ctx[0].content, under);
    // `slice(-0)` keeps the whole string: a limit of 4 has no tail budget.
    let (tiny, cut) = bootstrap::trim_bootstrap_content("abcdefgh", "X.md", 4);
    assert!(cut);
    assert_eq!(tiny, "ab\n\n[...truncated, read X.md for full content...]\n…(truncated X.md: kept 2+0 chars of 8)…\n\nabcdefgh");
}

#[test]
fn bootstrap_config_and_session_filter() {
    let cfg = serde_json::json!({"agents": {"defaults": {"bootstrapMaxChars": 1234.9}}});
    assert_eq!(bootstrap::resolve_bootstrap_max_chars(&cfg), 1234);
    assert_eq!(
        bootstrap::resolve_bootstrap_max_chars(&serde_json::json!({})),
        20_000
    );
    let bad = serde_json::json!({"agents": {"defaults": {"bootstrapMaxChars": -5}}});
    assert_eq!(bootstrap::resolve_bootstrap_max_chars(&bad), 20_000);
    for (key, sub) in [
        ("agent:main:subagent:x", true),
        ("subagent:x", true),
        ("SubAgent:x", true),
        ("agent:main:main", false),
        ("agent::subagent:x", false), // empty parts drop: agent id "subagent"
        ("agent:main", false),
    ] {
        assert_eq!(bootstrap::is_subagent_session_key(key), sub, "{key}");
    }
    let ws = temp_dir("filter");
    let files = bootstrap::load_workspace_bootstrap_files(&ws.to_string_lossy());
    let sub = bootstrap::filter_for_session(files, Some("agent:main:subagent:1"));
    let names: Vec<&str> = sub.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["AGENTS.md", "TOOLS.md"]);
}

#[test]
fn ensure_workspace_keeps_user_files_and_bootstrap_only_when_new() {
    let ws = temp_dir("keep");
    fs::create_dir_all(&ws).expect("mkdir");
    fs::write(ws.join("SOUL.md"), "mine").expect("write");
    bootstrap::ensure_workspace(&ws.to_string_lossy(), false).expect("ensure");
    assert_eq!(
        fs::read_to_string(ws.join("SOUL.md")).ok().as_deref(),
        Some("mine")
    );
    assert!(ws.join("AGENTS.md").exists());
    assert!(!ws.join("BOOTSTRAP.md").exists(), "not brand new");
    assert!(
        !ws.join(".git").exists(),
        "git init only for brand-new workspaces"
    );
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
