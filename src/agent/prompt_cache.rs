//! Per-process memos for the system prompt: each workspace's bootstrap files as last read
//! (read again when any of them changes on disk) and the last prompts built (built again when
//! any input differs). A turn then costs a few `stat`s instead of reading, truncating and
//! formatting the same files every time; while the workspace's inotify watch reports nothing,
//! not even the `stat`s (`dir_watch`). The prompts are keyed by the workspace memo's own
//! entry (the same `Arc` while no file changed) plus the small inputs, so a hit neither copies
//! nor compares the files' text.

use parking_lot::Mutex;
use std::sync::{Arc, Weak};

use crate::agent::bootstrap::{self, BootstrapFile, ContextFile};
use crate::agent::prompt::{self, PromptParams, RuntimeInfo};
use crate::config::Snapshot;
use crate::state::stamp::Stamp;

/// Workspaces and prompts remembered; a gateway with more agents rebuilds the least recent.
const MAX_WORKSPACES: usize = 8;
const MAX_PROMPTS: usize = 8;
/// Larger inputs are built each time rather than kept: a workspace file or an HTTP client's
/// system messages (`extraSystemPrompt`) can be any size, and a memo must not hold them.
const MAX_KEPT_BYTES: usize = 128 * 1024;

#[derive(PartialEq)]
struct ContextKey {
    dir: String,
    subagent: bool,
    max_chars: usize,
    /// One per candidate file, `None` for an absent one.
    stamps: Vec<Option<Stamp>>,
}

type Context = (Vec<BootstrapFile>, Vec<ContextFile>);

static CONTEXTS: Mutex<Vec<(ContextKey, Arc<Context>)>> = Mutex::new(Vec::new());
/// The workspace's context (by identity) and every other input.
struct PromptKey {
    context: Arc<Context>,
    params: PromptParams,
}

impl PartialEq for PromptKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.context, &other.context) && self.params == other.params
    }
}

static PROMPTS: Mutex<Vec<(PromptKey, Arc<str>)>> = Mutex::new(Vec::new());

/// A turn's own inputs to its prompt besides the config and the workspace's files: equal
/// ones (with the same config snapshot and workspace memo entry) make equal `PromptParams`.
#[derive(PartialEq)]
pub struct TurnInputs {
    pub agent_id: String,
    pub workspace: String,
    /// `provider/model`.
    pub model: String,
    pub thinking: Option<String>,
    pub extra_system_prompt: Option<String>,
    pub subagent: bool,
    pub tools: Vec<&'static str>,
    pub timezone: String,
    /// The host facts and the repository root, as the `Runtime:` line shows them.
    pub runtime: RuntimeInfo,
}

/// The config and the workspace's files by identity: a `Weak` keeps its allocation, so no
/// later snapshot or memo entry can take the same address while the key exists.
struct TurnKey {
    config: Weak<Snapshot>,
    context: Weak<Context>,
    inputs: TurnInputs,
}

impl PartialEq for TurnKey {
    fn eq(&self, other: &Self) -> bool {
        Weak::ptr_eq(&self.config, &other.config)
            && Weak::ptr_eq(&self.context, &other.context)
            && self.inputs == other.inputs
    }
}

static TURN_PROMPTS: Mutex<Vec<(TurnKey, Arc<str>)>> = Mutex::new(Vec::new());

/// The prompt for a turn's inputs as last built for them, else `system_prompt` of the
/// parameters `params` makes of them: a turn like the last skips building and comparing
/// those (aliases, heartbeat, tool summaries, workspace notes).
pub fn turn_system_prompt(
    config: &Arc<Snapshot>,
    context: &Arc<Context>,
    inputs: TurnInputs,
    params: impl FnOnce(&TurnInputs) -> PromptParams,
) -> Arc<str> {
    let key = TurnKey {
        config: Arc::downgrade(config),
        context: Arc::downgrade(context),
        inputs,
    };
    if let Some(hit) = remembered(&TURN_PROMPTS, &key) {
        return hit;
    }
    let built = system_prompt(params(&key.inputs), context);
    if built.len() <= MAX_KEPT_BYTES {
        remember(&TURN_PROMPTS, key, built.clone(), MAX_PROMPTS);
    }
    built
}

/// `bootstrap::ensure_workspace`, then `bootstrap_context`. The stamps come first: when they
/// show every file `ensure_workspace` would write already there, its writes would all fail
/// with "exists", so it is skipped and a turn costs one `stat` per candidate file.
pub fn workspace_context(
    dir: &str,
    skip_bootstrap: bool,
    session_key: Option<&str>,
    max_chars: usize,
) -> Arc<Context> {
    let mut stamps = stamps_of(dir);
    let complete = stamps[..bootstrap::ENSURED_CANDIDATES]
        .iter()
        .all(Option::is_some);
    if skip_bootstrap || !complete {
        if let Err(e) = bootstrap::ensure_workspace(dir, skip_bootstrap) {
            log::warn!(target: "agent", "could not prepare workspace {dir}: {e}");
        }
        if !skip_bootstrap {
            stamps = stamps_of(dir);
        }
    }
    context_with(dir, session_key, max_chars, stamps)
}

fn stamps_of(dir: &str) -> Vec<Option<Stamp>> {
    let paths = bootstrap::bootstrap_candidates(dir);
    crate::agent::dir_watch::stamps(&bootstrap::resolve_user_path(dir), &paths)
}

/// `bootstrap::resolve_bootstrap_context`, from memory while no candidate file changed.
/// Stamped before reading: a file changed meanwhile is read again next time.
fn context_with(
    dir: &str,
    session_key: Option<&str>,
    max_chars: usize,
    stamps: Vec<Option<Stamp>>,
) -> Arc<Context> {
    let key = ContextKey {
        dir: dir.to_string(),
        subagent: session_key.is_some_and(bootstrap::is_subagent_session_key),
        max_chars,
        stamps,
    };
    if let Some(hit) = remembered(&CONTEXTS, &key) {
        return hit;
    }
    let built = Arc::new(bootstrap::resolve_bootstrap_context(
        dir,
        session_key,
        max_chars,
    ));
    let raw: usize = built
        .0
        .iter()
        .filter_map(|f| f.content.as_ref())
        .map(String::len)
        .sum();
    if raw <= MAX_KEPT_BYTES {
        remember(&CONTEXTS, key, built.clone(), MAX_WORKSPACES);
    }
    built
}

/// `prompt::build_system_prompt` with `context`'s files as its context files (`params` has
/// none of its own), from memory for inputs seen before.
pub fn system_prompt(params: PromptParams, context: &Arc<Context>) -> Arc<str> {
    let key = PromptKey {
        context: context.clone(),
        params,
    };
    if let Some(hit) = remembered(&PROMPTS, &key) {
        return hit;
    }
    let mut full = key.params.clone();
    full.context_files = context.1.clone();
    let built: Arc<str> = prompt::build_system_prompt(&full).into();
    // The prompt contains every input that can be large (context files, extra prompt).
    if built.len() <= MAX_KEPT_BYTES {
        remember(&PROMPTS, key, built.clone(), MAX_PROMPTS);
    }
    built
}

fn remembered<K: PartialEq, V: ?Sized>(memo: &Mutex<Vec<(K, Arc<V>)>>, key: &K) -> Option<Arc<V>> {
    let mut memo = memo.lock();
    let i = memo.iter().position(|(k, _)| k == key)?;
    // Most recently used last.
    let hit = memo.remove(i);
    let value = hit.1.clone();
    memo.push(hit);
    Some(value)
}

fn remember<K, V: ?Sized>(memo: &Mutex<Vec<(K, Arc<V>)>>, key: K, value: Arc<V>, max: usize) {
    let mut memo = memo.lock();
    if memo.len() >= max {
        memo.remove(0);
    }
    memo.push((key, value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn an_edited_bootstrap_file_is_read_again() {
        let dir = std::env::temp_dir().join(format!("moltbot-pc-{}", crate::util::uuid_v4()));
        fs::create_dir_all(&dir).unwrap();
        let ws = dir.to_string_lossy().into_owned();
        fs::write(dir.join("AGENTS.md"), "first rules").unwrap();
        let content = |ctx: &Context| {
            ctx.1
                .iter()
                .find(|f| f.path == "AGENTS.md")
                .map(|f| f.content.clone())
        };
        let first = workspace_context(&ws, true, None, 20_000);
        assert_eq!(content(&first).as_deref(), Some("first rules"));
        assert!(
            Arc::ptr_eq(&workspace_context(&ws, true, None, 20_000), &first),
            "served from memory"
        );
        fs::write(dir.join("AGENTS.md"), "second rules, longer").unwrap();
        let second = workspace_context(&ws, true, None, 20_000);
        assert_eq!(content(&second).as_deref(), Some("second rules, longer"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_deleted_template_is_written_again_and_read() {
        let dir = std::env::temp_dir().join(format!("moltbot-pc-{}", crate::util::uuid_v4()));
        let ws = dir.to_string_lossy().into_owned();
        let has_agents = |ctx: &Context| {
            ctx.1
                .iter()
                .any(|f| f.path == "AGENTS.md" && !f.content.is_empty())
        };
        assert!(has_agents(&workspace_context(&ws, false, None, 20_000)));
        fs::write(dir.join("SOUL.md"), "my own soul").unwrap();
        fs::remove_file(dir.join("AGENTS.md")).unwrap();
        let again = workspace_context(&ws, false, None, 20_000);
        assert!(dir.join("AGENTS.md").exists(), "the template is back");
        assert!(has_agents(&again));
        let soul = again.1.iter().find(|f| f.path == "SOUL.md").unwrap();
        assert_eq!(
            soul.content, "my own soul",
            "an existing file is never overwritten"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_huge_extra_prompt_is_not_kept() {
        let params = PromptParams {
            workspace_dir: "/w-huge".into(),
            extra_system_prompt: Some("x".repeat(MAX_KEPT_BYTES + 1)),
            ..Default::default()
        };
        let context = no_files();
        assert_eq!(
            &*system_prompt(params.clone(), &context),
            prompt::build_system_prompt(&params)
        );
        let key = PromptKey { context, params };
        assert!(remembered(&PROMPTS, &key).is_none());
    }

    #[test]
    fn a_turn_like_the_last_reuses_its_prompt_and_any_change_rebuilds_it() {
        let missing = std::env::temp_dir().join("moltbot-pc-none/moltbot.json");
        let config = Arc::new(crate::config::read_snapshot(&missing));
        let context = no_files();
        let inputs = |repo: &str| TurnInputs {
            agent_id: "main".into(),
            workspace: "/w-turn".into(),
            model: "anthropic/claude-opus-4-5".into(),
            thinking: None,
            extra_system_prompt: None,
            subagent: false,
            tools: vec!["read"],
            timezone: "UTC".into(),
            runtime: RuntimeInfo {
                repo_root: Some(repo.into()),
                ..Default::default()
            },
        };
        let params = |i: &TurnInputs| PromptParams {
            workspace_dir: i.workspace.clone(),
            runtime: i.runtime.clone(),
            ..Default::default()
        };
        let first = turn_system_prompt(&config, &context, inputs("/r1"), params);
        let again = turn_system_prompt(&config, &context, inputs("/r1"), |_| unreachable!());
        assert!(Arc::ptr_eq(&first, &again), "a hit builds nothing");
        let moved = turn_system_prompt(&config, &context, inputs("/r2"), params);
        assert!(
            moved.contains("repo=/r2") && first.contains("repo=/r1"),
            "{moved}"
        );
        let reloaded = Arc::new(crate::config::read_snapshot(&missing));
        let built = std::cell::Cell::new(false);
        let rebuilt = turn_system_prompt(&reloaded, &context, inputs("/r1"), |i| {
            built.set(true);
            params(i)
        });
        assert!(built.get(), "another snapshot is another key");
        assert_eq!(rebuilt, first);
    }

    fn no_files() -> Arc<Context> {
        Arc::new((Vec::new(), Vec::new()))
    }

    #[test]
    fn a_prompt_follows_its_workspace_files() {
        let dir = std::env::temp_dir().join(format!("moltbot-pc-{}", crate::util::uuid_v4()));
        fs::create_dir_all(&dir).unwrap();
        let ws = dir.to_string_lossy().into_owned();
        let params = PromptParams {
            workspace_dir: ws.clone(),
            ..Default::default()
        };
        let built = |context: &Arc<Context>| {
            let mut full = params.clone();
            full.context_files = context.1.clone();
            prompt::build_system_prompt(&full)
        };
        fs::write(dir.join("AGENTS.md"), "rule one").unwrap();
        let first = workspace_context(&ws, true, None, 20_000);
        let prompt = system_prompt(params.clone(), &first);
        assert!(prompt.contains("rule one"));
        assert_eq!(&*prompt, built(&first));
        assert_eq!(system_prompt(params.clone(), &first), prompt, "from memory");
        fs::write(dir.join("AGENTS.md"), "rule two, longer").unwrap();
        let second = workspace_context(&ws, true, None, 20_000);
        let again = system_prompt(params.clone(), &second);
        assert!(again.contains("rule two, longer") && !again.contains("rule one"));
        assert_eq!(&*again, built(&second));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_changed_input_builds_a_new_prompt() {
        let mut params = PromptParams {
            workspace_dir: "/w".into(),
            ..Default::default()
        };
        let context = no_files();
        let first = system_prompt(params.clone(), &context);
        assert_eq!(&*first, prompt::build_system_prompt(&params));
        params.extra_system_prompt = Some("Be brief.".into());
        let second = system_prompt(params.clone(), &context);
        assert_ne!(first, second);
        assert_eq!(&*second, prompt::build_system_prompt(&params));
    }
}
