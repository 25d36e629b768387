//! Golden tests for the agent prompt layer: the system prompt (empty workspace, templates,
//! truncation, minimal and none modes, every toggle we port), bootstrap loading and workspace
//! creation. Envelopes and reply shaping are in `agent_envelope_reply.rs`.
//!
//! The `.txt` goldens and `cases.rs` tables under `tests/fixtures/agent_prompt/` were produced
//! by running upstream's own TypeScript (moltbot 2026.1.27-beta.1) on the same inputs; named
//! upstream tests are cited where a case comes from one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use moltbot::agent::bootstrap::{self, ContextFile};
use moltbot::agent::prompt::{self, PromptMode, PromptParams, RuntimeInfo, ToolEntry};
use moltbot::agent::reply;

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
