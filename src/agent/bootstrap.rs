//! Workspace bootstrap files: the embedded templates, `ensure_workspace` (templates,
//! `BOOTSTRAP.md` and `git init` for brand-new workspaces), loading AGENTS/SOUL/TOOLS/IDENTITY/
//! USER/HEARTBEAT/BOOTSTRAP(+MEMORY) in upstream's order with `[MISSING]` markers, the sub-agent
//! subset, the 70 % head + 20 % tail truncation with its exact marker text, and the host facts
//! of the prompt's `Runtime:` line (repo root, host name, `uname`), so `prompt` does no I/O.
//!
//! Upstream: `src/agents/workspace.ts`, `src/agents/bootstrap-files.ts`,
//! `src/agents/pi-embedded-helpers/bootstrap.ts` (moltbot 2026.1.27-beta.1).

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::prompt::RuntimeInfo;
use super::reply::{js_len, js_trim, js_trim_end};
use crate::state::paths::{env_nonempty, expand_user, home_dir};

/// `agents.defaults.bootstrapMaxChars` default.
pub const DEFAULT_BOOTSTRAP_MAX_CHARS: usize = 20_000;
/// `BOOTSTRAP.md`: its presence adds the commit reminder to the Workspace section.
pub const BOOTSTRAP_FILENAME: &str = "BOOTSTRAP.md";
/// The workspace note shown while `BOOTSTRAP.md` exists.
pub const COMMIT_REMINDER_NOTE: &str =
    "Reminder: commit your changes in this workspace after edits.";

/// The always-loaded files, in prompt order; a missing one gets a `[MISSING]` marker.
const CORE_FILES: [&str; 7] = [
    "AGENTS.md",
    "SOUL.md",
    "TOOLS.md",
    "IDENTITY.md",
    "USER.md",
    "HEARTBEAT.md",
    BOOTSTRAP_FILENAME,
];
/// Loaded only when present (both spellings, de-duplicated by real path).
const MEMORY_FILES: [&str; 2] = ["MEMORY.md", "memory.md"];
/// The first candidates (`bootstrap_candidates`) are the files `ensure_workspace` writes when
/// missing.
pub const ENSURED_CANDIDATES: usize = 6;
/// What a sub-agent session sees.
const SUBAGENT_FILES: [&str; 2] = ["AGENTS.md", "TOOLS.md"];

/// Upstream's `docs/reference/templates/*.md` with the front-matter stripped, as it writes them.
const TEMPLATES: [(&str, &str); 7] = [
    ("AGENTS.md", include_str!("templates/AGENTS.md")),
    ("SOUL.md", include_str!("templates/SOUL.md")),
    ("TOOLS.md", include_str!("templates/TOOLS.md")),
    ("IDENTITY.md", include_str!("templates/IDENTITY.md")),
    ("USER.md", include_str!("templates/USER.md")),
    ("HEARTBEAT.md", include_str!("templates/HEARTBEAT.md")),
    (BOOTSTRAP_FILENAME, include_str!("templates/BOOTSTRAP.md")),
];

/// One bootstrap file as loaded from the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapFile {
    pub name: String,
    pub path: PathBuf,
    /// `None` when the file could not be read (then `missing` is true).
    pub content: Option<String>,
    pub missing: bool,
}

/// A file injected under `# Project Context` as `## <path>` + content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    pub path: String,
    pub content: String,
}

/// The template text for a workspace file name.
pub fn template(name: &str) -> Option<&'static str> {
    TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// `path.resolve`-style lexical normalisation (drops `.`, folds `..`), after `~` expansion.
pub fn resolve_user_path(raw: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in expand_user(js_trim(raw)).components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `~/clawd`, or `~/clawd-<profile>` when `CLAWDBOT_PROFILE` names a non-default profile.
pub fn default_workspace_dir() -> PathBuf {
    match env_nonempty("CLAWDBOT_PROFILE") {
        Some(p) if !p.eq_ignore_ascii_case("default") => home_dir().join(format!("clawd-{p}")),
        _ => home_dir().join("clawd"),
    }
}

/// `isSubagentSessionKey`: `subagent:…` or `agent:<id>:subagent:…` (case-insensitive).
pub fn is_subagent_session_key(key: &str) -> bool {
    let raw = js_trim(key);
    if raw.to_ascii_lowercase().starts_with("subagent:") {
        return true;
    }
    let parts: Vec<&str> = raw.split(':').filter(|p| !p.is_empty()).collect();
    if parts.len() < 3 || parts[0] != "agent" || js_trim(parts[1]).is_empty() {
        return false;
    }
    parts[2..]
        .join(":")
        .to_ascii_lowercase()
        .starts_with("subagent:")
}

// ---------------------------------------------------------------------------------------------
// Workspace creation

/// `ensureAgentWorkspace`: mkdir the workspace; unless `skip_bootstrap`, write each missing
/// template and, for a brand-new workspace (none of the six core files existed),
/// `BOOTSTRAP.md` and a `git init` when a `git` binary is available. Returns the resolved dir.
pub fn ensure_workspace(dir: &str, skip_bootstrap: bool) -> io::Result<PathBuf> {
    let dir = if js_trim(dir).is_empty() {
        default_workspace_dir()
    } else {
        resolve_user_path(dir)
    };
    fs::create_dir_all(&dir)?;
    if skip_bootstrap {
        return Ok(dir);
    }
    let brand_new = CORE_FILES[..6].iter().all(|n| !dir.join(n).exists());
    for (name, text) in &TEMPLATES[..6] {
        write_file_if_missing(&dir.join(name), text)?;
    }
    if brand_new {
        write_file_if_missing(&dir.join(BOOTSTRAP_FILENAME), TEMPLATES[6].1)?;
        ensure_git_repo(&dir);
    }
    Ok(dir)
}

/// Writes with `O_EXCL` (upstream's `wx` flag) so a concurrent or user-made file is never
/// overwritten; "already exists" is success.
fn write_file_if_missing(path: &Path, content: &str) -> io::Result<()> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => f.write_all(content.as_bytes()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `git init` in a brand-new workspace. Every failure is ignored: a missing git must never
/// fail workspace creation (or the turn behind it).
fn ensure_git_repo(dir: &Path) {
    if fs::metadata(dir.join(".git")).is_ok() {
        return;
    }
    let available = run_with_timeout(Command::new("git").arg("--version"), 2_000);
    if available {
        let ok = run_with_timeout(Command::new("git").arg("init").current_dir(dir), 10_000);
        if !ok {
            log::debug!("git init failed in {}", dir.display());
        }
    }
}

/// Runs a command with no stdio, killing it after `timeout_ms`; true on exit code 0.
fn run_with_timeout(cmd: &mut Command, timeout_ms: u64) -> bool {
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// `loadWorkspaceBootstrapFiles`: the seven core files (missing ones flagged), then
/// `MEMORY.md`/`memory.md` only if they exist.
/// Every path `load_workspace_bootstrap_files` may read, present or not.
pub fn bootstrap_candidates(dir: &str) -> Vec<PathBuf> {
    let dir = resolve_user_path(dir);
    CORE_FILES
        .iter()
        .chain(MEMORY_FILES.iter())
        .map(|name| dir.join(name))
        .collect()
}

pub fn load_workspace_bootstrap_files(dir: &str) -> Vec<BootstrapFile> {
    let dir = resolve_user_path(dir);
    let mut names: Vec<&str> = CORE_FILES.to_vec();
    names.extend(memory_entries(&dir));
    names
        .into_iter()
        .map(|name| read_bootstrap_file(&dir, name))
        .collect()
}

/// The memory files that exist, de-duplicated by real path (case-insensitive file systems).
fn memory_entries(dir: &Path) -> Vec<&'static str> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for name in MEMORY_FILES {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let key = fs::canonicalize(&path).unwrap_or(path);
        if !seen.contains(&key) {
            seen.push(key);
            out.push(name);
        }
    }
    out
}

/// Any read error (absent, a directory, no permission) counts as missing, as upstream.
fn read_bootstrap_file(dir: &Path, name: &str) -> BootstrapFile {
    let path = dir.join(name);
    let content = fs::read(&path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    BootstrapFile {
        name: name.to_string(),
        missing: content.is_none(),
        path,
        content,
    }
}

/// `filterBootstrapFilesForSession`: sub-agent sessions get only AGENTS.md and TOOLS.md.
pub fn filter_for_session(
    files: Vec<BootstrapFile>,
    session_key: Option<&str>,
) -> Vec<BootstrapFile> {
    match session_key {
        Some(key) if is_subagent_session_key(key) => files
            .into_iter()
            .filter(|f| SUBAGENT_FILES.contains(&f.name.as_str()))
            .collect(),
        _ => files,
    }
}

/// The Workspace-section notes: the commit reminder while `BOOTSTRAP.md` is loaded.
pub fn workspace_notes(files: &[BootstrapFile]) -> Vec<String> {
    let has_bootstrap = files
        .iter()
        .any(|f| f.name == BOOTSTRAP_FILENAME && !f.missing);
    if has_bootstrap {
        vec![COMMIT_REMINDER_NOTE.to_string()]
    } else {
        Vec::new()
    }
}

/// `resolveBootstrapMaxChars`: a positive `agents.defaults.bootstrapMaxChars`, floored.
pub fn resolve_bootstrap_max_chars(cfg: &Value) -> usize {
    match cfg
        .pointer("/agents/defaults/bootstrapMaxChars")
        .and_then(Value::as_f64)
    {
        Some(n) if n.is_finite() && n > 0.0 => n.floor() as usize,
        _ => DEFAULT_BOOTSTRAP_MAX_CHARS,
    }
}

// ---------------------------------------------------------------------------------------------
// Context files and truncation

/// `buildBootstrapContextFiles`: missing files become `[MISSING] Expected at: <path>`, empty
/// ones are skipped, long ones truncated (with a warning in the log).
pub fn build_context_files(files: &[BootstrapFile], max_chars: usize) -> Vec<ContextFile> {
    let mut out = Vec::new();
    for file in files {
        if file.missing {
            out.push(ContextFile {
                path: file.name.clone(),
                content: format!("[MISSING] Expected at: {}", file.path.display()),
            });
            continue;
        }
        let raw = file.content.as_deref().unwrap_or("");
        let (content, truncated) = trim_bootstrap_content(raw, &file.name, max_chars);
        if content.is_empty() {
            continue;
        }
        if truncated {
            log::warn!(
                "workspace bootstrap file {} is {} chars (limit {}); truncating in injected context",
                file.name,
                js_len(js_trim_end(raw)),
                max_chars
            );
        }
        out.push(ContextFile {
            path: file.name.clone(),
            content,
        });
    }
    out
}

/// `trimBootstrapContent`: `trimEnd`, then if longer than `max_chars` (UTF-16 units, as JS
/// counts) keep the first 70 % and last 20 % around the marker. Returns (content, truncated).
pub fn trim_bootstrap_content(content: &str, file_name: &str, max_chars: usize) -> (String, bool) {
    let trimmed = js_trim_end(content);
    let units: Vec<u16> = trimmed.encode_utf16().collect();
    let len = units.len();
    if len <= max_chars {
        return (trimmed.to_string(), false);
    }
    // f64 products as JS computes `Math.floor(maxChars * 0.7)`.
    let head_chars = (max_chars as f64 * 0.7).floor() as usize;
    let tail_chars = (max_chars as f64 * 0.2).floor() as usize;
    let head = String::from_utf16_lossy(&units[..head_chars.min(len)]);
    // `slice(-0)` is the whole string in JS; keep that quirk for tiny limits.
    let tail_start = if tail_chars == 0 {
        0
    } else {
        len - tail_chars.min(len)
    };
    let tail = String::from_utf16_lossy(&units[tail_start..]);
    let marker = format!(
        "\n[...truncated, read {file_name} for full content...]\n\u{2026}(truncated {file_name}: kept {head_chars}+{tail_chars} chars of {len})\u{2026}\n"
    );
    (format!("{head}\n{marker}\n{tail}"), true)
}

/// The whole per-run step: load, filter for the session, build context files.
pub fn resolve_bootstrap_context(
    workspace_dir: &str,
    session_key: Option<&str>,
    max_chars: usize,
) -> (Vec<BootstrapFile>, Vec<ContextFile>) {
    let files = filter_for_session(load_workspace_bootstrap_files(workspace_dir), session_key);
    let context = build_context_files(&files, max_chars);
    (files, context)
}

/// `resolveRepoRoot`: a configured directory (`agents.defaults.repoRoot`), else the nearest
/// `.git` (dir or file) above the workspace, then the cwd, at most 12 levels up.
pub fn resolve_repo_root(
    configured: Option<&str>,
    workspace: &Path,
    cwd: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(dir) = configured.map(js_trim).filter(|s| !s.is_empty()) {
        let dir = expand_user(dir);
        if dir.is_dir() {
            return Some(dir);
        }
    }
    std::iter::once(workspace)
        .chain(cwd)
        .find_map(find_git_root)
}

fn find_git_root(start: &Path) -> Option<PathBuf> {
    let mut cur = Some(start);
    for _ in 0..12 {
        let dir = cur?;
        if fs::metadata(dir.join(".git")).is_ok() {
            return Some(dir.to_path_buf());
        }
        cur = dir.parent();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Host facts for the `Runtime:` line (kept here so `prompt` does no I/O)

pub(crate) const HOST_FACTS_TTL: Duration = Duration::from_secs(60);

impl RuntimeInfo {
    /// This host: display name (`.local` dropped), `<uname sysname> <release>`, Node-style arch.
    /// Read at most once a minute: upstream asks the OS on every run, but these facts change
    /// about never and reading them is several syscalls on every turn's path.
    pub fn detect() -> Self {
        static HOST: crate::util::Refreshed<RuntimeInfo> =
            crate::util::Refreshed::new(HOST_FACTS_TTL);
        HOST.get(Self::read_host)
    }

    fn read_host() -> Self {
        let host = crate::util::hostname();
        let host = strip_suffix_ci(&host, ".local").trim().to_string();
        let host = if host.is_empty() || host == "unknown" {
            "moltbot".into()
        } else {
            host
        };
        RuntimeInfo {
            host: Some(host),
            os: uname_os(),
            arch: Some(super::prompt::node_arch(std::env::consts::ARCH).to_string()),
            ..Default::default()
        }
    }
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> &'a str {
    let n = s.len().saturating_sub(suffix.len());
    if s.is_char_boundary(n) && s[n..].eq_ignore_ascii_case(suffix) {
        &s[..n]
    } else {
        s
    }
}

/// `${os.type()} ${os.release()}` from `uname(2)`.
fn uname_os() -> Option<String> {
    // SAFETY: `uname` fills a zeroed, caller-owned struct; the fields are NUL-terminated.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(format!("{} {}", field(&u.sysname), field(&u.release)))
}
