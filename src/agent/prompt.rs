//! The agent system prompt: `PromptParams` and `build_system_prompt`, reproducing upstream's
//! `buildAgentSystemPrompt` byte for byte for the sections a port without skills, docs,
//! sandbox, TTS or reactions emits (tooling, tool-call style, CLI, memory recall, self-update,
//! aliases, workspace, owners, time zone, reply tags, messaging, group/sub-agent context,
//! reasoning format, project context, silent replies, heartbeats, runtime).
//!
//! Upstream: `src/agents/system-prompt.ts`, `src/agents/system-prompt-params.ts`,
//! `src/agents/pi-embedded-runner/run/attempt.ts` (moltbot 2026.1.27-beta.1).

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use super::bootstrap::ContextFile;
use super::reply::{js_trim, HEARTBEAT_TOKEN, SILENT_REPLY_TOKEN};

#[path = "prompt_text.rs"]
mod text;
use text::*;

/// Which fixed sections are emitted: `Minimal` for sub-agent sessions, `None` = identity only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptMode {
    #[default]
    Full,
    Minimal,
    None,
}

/// A tool offered to the model: its name and its description (used when no fixed summary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolEntry {
    pub name: String,
    pub summary: String,
}

/// The host facts of the `Runtime:` line. Empty fields are left out of the line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub host: Option<String>,
    /// `<type> <release>`, e.g. `Linux 6.8.0`.
    pub os: Option<String>,
    /// Node's names: `x64`, `arm64`, …
    pub arch: Option<String>,
    /// Upstream prints the Node version; a port has none, so this stays `None` normally.
    pub node: Option<String>,
    pub repo_root: Option<String>,
    /// Channel capabilities (e.g. `inlineButtons`); shown only when a channel is set.
    pub capabilities: Vec<String>,
}

/// Everything `build_system_prompt` needs. `Default` is a main agent with nothing configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptParams {
    pub agent_id: Option<String>,
    pub workspace_dir: String,
    pub tools: Vec<ToolEntry>,
    /// `provider/model` of this run.
    pub model: Option<String>,
    /// `provider/model` of `agents.defaults.model.primary`.
    pub default_model: Option<String>,
    /// The message channel (`telegram`, `discord`, `webchat`, …).
    pub channel: Option<String>,
    /// Resolved thinking level (`off|minimal|low|medium|high|xhigh`); `None` prints `off`.
    pub thinking: Option<String>,
    /// Reasoning visibility (`off|on|stream`); `None` prints `off`.
    pub reasoning: Option<String>,
    /// Resolved user time zone (see `envelope::resolve_user_timezone`).
    pub user_timezone: Option<String>,
    /// `(alias, provider/model)` pairs from `agents.defaults.models`; sorted when rendered.
    pub aliases: Vec<(String, String)>,
    /// The heartbeat prompt for the default agent; `None` shows `(configured)`.
    pub heartbeat_prompt: Option<String>,
    /// Group intro / group system prompt / sub-agent task context.
    pub extra_system_prompt: Option<String>,
    pub owner_numbers: Vec<String>,
    pub mode: PromptMode,
    pub runtime: RuntimeInfo,
    pub context_files: Vec<ContextFile>,
    /// Extra Workspace lines (`bootstrap::workspace_notes`).
    pub workspace_notes: Vec<String>,
    /// The provider wants `<think>/<final>` tags (`## Reasoning Format`).
    pub reasoning_tag_hint: bool,
    /// Deliverable channel ids for the `message` tool hint; empty = upstream's core list.
    pub message_channels: Vec<String>,
}

/// The tool names as the prompt sees them: trimmed, first casing kept per lowercase name.
struct Tools {
    lower: Vec<String>,
    display: HashMap<String, String>,
    summaries: HashMap<String, String>,
}

impl Tools {
    fn new(entries: &[ToolEntry]) -> Self {
        let mut t = Tools {
            lower: Vec::new(),
            display: HashMap::new(),
            summaries: HashMap::new(),
        };
        for e in entries {
            let name = js_trim(&e.name);
            if name.is_empty() {
                continue;
            }
            let key = name.to_lowercase();
            t.display.entry(key.clone()).or_insert(name.to_string());
            let summary = js_trim(&e.summary);
            if !summary.is_empty() {
                t.summaries.insert(key.clone(), summary.to_string());
            }
            if !t.lower.contains(&key) {
                t.lower.push(key);
            }
        }
        t
    }

    fn has(&self, name: &str) -> bool {
        self.lower.iter().any(|n| n == name)
    }

    fn name<'a>(&'a self, key: &'a str) -> &'a str {
        self.display.get(key).map_or(key, String::as_str)
    }

    fn line(&self, key: &str) -> String {
        let fixed = CORE_TOOL_SUMMARIES.iter().find(|(n, _)| *n == key);
        let summary = fixed
            .map(|(_, s)| *s)
            .or(self.summaries.get(key).map(String::as_str));
        match summary {
            Some(s) => format!("- {}: {s}", self.name(key)),
            None => format!("- {}", self.name(key)),
        }
    }

    /// Known tools in `TOOL_ORDER`, then the rest sorted by code unit.
    fn lines(&self) -> Vec<String> {
        let mut extra: Vec<&String> = self
            .lower
            .iter()
            .filter(|n| !TOOL_ORDER.contains(&n.as_str()))
            .collect();
        extra.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        let known = TOOL_ORDER
            .iter()
            .filter(|n| self.has(n))
            .map(|n| self.line(n));
        known
            .chain(extra.into_iter().map(|n| self.line(n)))
            .collect()
    }
}

/// The block shown when no tool list is passed (upstream's legacy fallback text).
fn fallback_tool_block(tools: &Tools) -> String {
    [
        "Pi lists the standard tools above. This runtime enables:",
        "- grep: search file contents for patterns",
        "- find: find files by glob pattern",
        "- ls: list directory contents",
        "- apply_patch: apply multi-file patches",
        &format!(
            "- {}: run shell commands (supports background via yieldMs/background)",
            tools.name("exec")
        ),
        &format!("- {}: manage background exec sessions", tools.name("process")),
        "- browser: control clawd's dedicated browser",
        "- canvas: present/eval/snapshot the Canvas",
        "- nodes: list/describe/notify/camera/screen on paired nodes",
        "- cron: manage cron jobs and wake events (use for reminders; when scheduling a reminder, write the systemEvent text as something that will read like a reminder when it fires, and mention that it is a reminder depending on the time gap between setting and firing; include recent context in reminder text if appropriate)",
        "- sessions_list: list sessions",
        "- sessions_history: fetch session history",
        "- sessions_send: send to another session",
    ]
    .join("\n")
}

fn push_all(lines: &mut Vec<String>, items: &[&str]) {
    lines.extend(items.iter().map(|s| s.to_string()));
}

fn trimmed(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(js_trim).filter(|s| !s.is_empty())
}

fn tooling_section(lines: &mut Vec<String>, tools: &Tools) {
    push_all(lines, &TOOLING_HEAD);
    let tool_lines = tools.lines();
    lines.push(if tool_lines.is_empty() {
        fallback_tool_block(tools)
    } else {
        tool_lines.join("\n")
    });
    push_all(lines, &TOOLING_TAIL);
}

fn alias_section(lines: &mut Vec<String>, aliases: &[(String, String)]) {
    let alias_lines = model_alias_lines(aliases);
    if alias_lines.is_empty() {
        return;
    }
    push_all(lines, &ALIASES_HEAD);
    lines.push(alias_lines.join("\n"));
}

fn workspace_section(lines: &mut Vec<String>, p: &PromptParams) {
    lines.push("## Workspace".into());
    lines.push(format!("Your working directory is: {}", p.workspace_dir));
    lines.push(WORKSPACE_SCOPE.into());
    let notes = p.workspace_notes.iter().map(|n| js_trim(n).to_string());
    lines.extend(notes);
}

fn identity_and_time(lines: &mut Vec<String>, p: &PromptParams, minimal: bool) {
    let owners: Vec<&str> = p
        .owner_numbers
        .iter()
        .map(|n| js_trim(n))
        .filter(|n| !n.is_empty())
        .collect();
    if !owners.is_empty() && !minimal {
        lines.push("## User Identity".into());
        lines.push(format!(
            "Owner numbers: {}. Treat messages from these numbers as the user.",
            owners.join(", ")
        ));
    }
    if let Some(tz) = trimmed(&p.user_timezone) {
        lines.push("## Current Date & Time".into());
        lines.push(format!("Time zone: {tz}"));
    }
    push_all(lines, &INJECTED_FILES);
}

fn messaging_section(
    lines: &mut Vec<String>,
    p: &PromptParams,
    tools: &Tools,
    channel: Option<&str>,
) {
    push_all(lines, &MESSAGING_HEAD);
    if !tools.has("message") {
        return;
    }
    let channels = if p.message_channels.is_empty() {
        CORE_CHANNELS.join("|")
    } else {
        p.message_channels.join("|")
    };
    let inline_buttons = p
        .runtime
        .capabilities
        .iter()
        .any(|c| js_trim(c).eq_ignore_ascii_case("inlinebuttons"));
    let mut block = vec![
        "### message tool".to_string(),
        "- Use `message` for proactive sends + channel actions (polls, reactions, etc.).".into(),
        "- For `action=send`, include `to` and `message`.".into(),
        format!("- If multiple channels are configured, pass `channel` ({channels})."),
        format!("- If you use `message` (`action=send`) to deliver your user-visible reply, respond with ONLY: {SILENT_REPLY_TOKEN} (avoid duplicate replies)."),
    ];
    if inline_buttons {
        block.push("- Inline buttons supported. Use `action=send` with `buttons=[[{text,callback_data}]]` (callback_data routes back as a user message).".into());
    } else if let Some(ch) = channel {
        block.push(format!("- Inline buttons not enabled for {ch}. If you need them, ask to set {ch}.capabilities.inlineButtons (\"dm\"|\"group\"|\"all\"|\"allowlist\")."));
    }
    lines.push(block.join("\n"));
}

fn project_context(lines: &mut Vec<String>, files: &[ContextFile]) {
    if files.is_empty() {
        return;
    }
    let has_soul = files.iter().any(|f| {
        let path = js_trim(&f.path).replace('\\', "/");
        let base = path.rsplit('/').next().unwrap_or(&path);
        base.eq_ignore_ascii_case("soul.md")
    });
    lines.push("# Project Context".into());
    lines.push("The following project context files have been loaded:".into());
    if has_soul {
        lines.push(SOUL_NOTE.into());
    }
    for f in files {
        lines.push(format!("## {}", f.path));
        lines.push(f.content.clone());
    }
}

fn silent_and_heartbeat(lines: &mut Vec<String>, p: &PromptParams) {
    let t = SILENT_REPLY_TOKEN;
    lines.extend([
        "## Silent Replies".to_string(),
        format!("When you have nothing to say, respond with ONLY: {t}"),
        "⚠️ Rules:".into(),
        "- It must be your ENTIRE message — nothing else".into(),
        format!("- Never append it to an actual response (never include \"{t}\" in real replies)"),
        "- Never wrap it in markdown or code blocks".into(),
        format!("❌ Wrong: \"Here's help... {t}\""),
        format!("❌ Wrong: \"{t}\""),
        format!("✅ Right: {t}"),
    ]);
    let hb = match trimmed(&p.heartbeat_prompt) {
        Some(prompt) => format!("Heartbeat prompt: {prompt}"),
        None => "Heartbeat prompt: (configured)".to_string(),
    };
    lines.extend([
        "## Heartbeats".to_string(),
        hb,
        "If you receive a heartbeat poll (a user message matching the heartbeat prompt above), and there is nothing that needs attention, reply exactly:".into(),
        HEARTBEAT_TOKEN.into(),
        format!("Moltbot treats a leading/trailing \"{HEARTBEAT_TOKEN}\" as a heartbeat ack (and may discard it)."),
        format!("If something needs attention, do NOT include \"{HEARTBEAT_TOKEN}\"; reply with the alert text instead."),
    ]);
}

/// `buildRuntimeLine`: `Runtime: agent=… | host=… | repo=… | os=… (arch) | node=… | model=… |
/// default_model=… | channel=… | capabilities=… | thinking=…`, empty parts left out.
pub fn build_runtime_line(p: &PromptParams) -> String {
    let r = &p.runtime;
    let channel = trimmed(&p.channel).map(str::to_lowercase);
    let opt = |k: &str, v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| format!("{k}={s}"))
    };
    let os = match (
        r.os.as_deref().filter(|s| !s.is_empty()),
        r.arch.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(os), Some(arch)) => Some(format!("os={os} ({arch})")),
        (Some(os), None) => Some(format!("os={os}")),
        (None, Some(arch)) => Some(format!("arch={arch}")),
        (None, None) => None,
    };
    let caps: Vec<&str> = r
        .capabilities
        .iter()
        .map(|c| js_trim(c))
        .filter(|c| !c.is_empty())
        .collect();
    let caps = channel.as_ref().map(|_| {
        let list = if caps.is_empty() {
            "none".to_string()
        } else {
            caps.join(",")
        };
        format!("capabilities={list}")
    });
    let thinking = p.thinking.as_deref().unwrap_or("off");
    let parts: Vec<String> = [
        opt("agent", &p.agent_id),
        opt("host", &r.host),
        opt("repo", &r.repo_root),
        os,
        opt("node", &r.node),
        opt("model", &p.model),
        opt("default_model", &p.default_model),
        channel.map(|c| format!("channel={c}")),
        caps,
        Some(format!("thinking={thinking}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("Runtime: {}", parts.join(" | "))
}

/// `buildAgentSystemPrompt`. Lines are collected, empty ones dropped, joined with `\n`.
pub fn build_system_prompt(p: &PromptParams) -> String {
    if p.mode == PromptMode::None {
        return IDENTITY_LINE.to_string();
    }
    let minimal = p.mode == PromptMode::Minimal;
    let tools = Tools::new(&p.tools);
    let channel = trimmed(&p.channel).map(str::to_lowercase);
    let mut lines = vec![IDENTITY_LINE.to_string()];
    tooling_section(&mut lines, &tools);
    push_all(&mut lines, &TOOL_CALL_STYLE);
    push_all(&mut lines, &CLI_REFERENCE);
    if !minimal {
        if tools.has("memory_search") || tools.has("memory_get") {
            push_all(&mut lines, &MEMORY_RECALL);
        }
        if tools.has("gateway") {
            lines.push(SELF_UPDATE[0].into());
            lines.push(SELF_UPDATE[1..].join("\n"));
        }
        alias_section(&mut lines, &p.aliases);
    }
    workspace_section(&mut lines, p);
    identity_and_time(&mut lines, p, minimal);
    if !minimal {
        push_all(&mut lines, &REPLY_TAGS);
        messaging_section(&mut lines, p, &tools, channel.as_deref());
    }
    if let Some(extra) = trimmed(&p.extra_system_prompt) {
        let header = if minimal {
            "## Subagent Context"
        } else {
            "## Group Chat Context"
        };
        lines.push(header.into());
        lines.push(extra.into());
    }
    if p.reasoning_tag_hint {
        lines.push("## Reasoning Format".into());
        lines.push(REASONING_HINT.join(" "));
    }
    project_context(&mut lines, &p.context_files);
    if !minimal {
        silent_and_heartbeat(&mut lines, p);
    }
    lines.push("## Runtime".into());
    lines.push(build_runtime_line(p));
    let reasoning = p.reasoning.as_deref().unwrap_or("off");
    lines.push(format!("Reasoning: {reasoning} (hidden unless on/stream). Toggle /reasoning; /status shows Reasoning when enabled."));
    lines.retain(|l| !l.is_empty());
    lines.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Parameter helpers

/// `buildModelAliasLines`: `- <alias>: <model>` sorted by alias.
pub fn model_alias_lines(aliases: &[(String, String)]) -> Vec<String> {
    let mut entries: Vec<(&str, &str)> = aliases
        .iter()
        .map(|(a, m)| (js_trim(a), js_trim(m)))
        .filter(|(a, m)| !a.is_empty() && !m.is_empty())
        .collect();
    entries.sort_by(|a, b| locale_compare(a.0, b.0));
    entries.iter().map(|(a, m)| format!("- {a}: {m}")).collect()
}

/// Approximates ICU's `localeCompare` (root collation) without ICU: punctuation < digits <
/// letters, case-insensitive first, lowercase before uppercase on ties.
fn locale_compare(a: &str, b: &str) -> Ordering {
    fn key(c: char) -> (u8, String) {
        let class = if c.is_alphabetic() {
            2
        } else if c.is_numeric() {
            1
        } else {
            0
        };
        (class, c.to_lowercase().collect())
    }
    let primary = a.chars().map(key).cmp(b.chars().map(key));
    let tertiary = || {
        let case = |s: &str| s.chars().map(|c| c.is_uppercase()).collect::<Vec<_>>();
        case(a).cmp(&case(b)).then_with(|| a.cmp(b))
    };
    primary.then_with(tertiary)
}

/// `(alias, model)` pairs from `agents.defaults.models` (`{"<provider/model>": {"alias": …}}`).
pub fn aliases_from_config(cfg: &Value) -> Vec<(String, String)> {
    let Some(models) = cfg
        .pointer("/agents/defaults/models")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    models
        .iter()
        .filter_map(|(model, entry)| {
            let alias = entry.get("alias").and_then(Value::as_str)?;
            Some((alias.to_string(), model.to_string()))
        })
        .collect()
}

/// `isReasoningTagProvider`: providers whose models get the `<think>/<final>` instructions.
pub fn is_reasoning_tag_provider(provider: &str) -> bool {
    let p = js_trim(provider).to_lowercase();
    matches!(
        p.as_str(),
        "ollama" | "google-gemini-cli" | "google-generative-ai"
    ) || p.contains("google-antigravity")
        || p.contains("minimax")
}

/// Node's `os.arch()` names for Rust's target arch names.
pub fn node_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}
