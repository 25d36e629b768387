//! The agent checks upstream's `validateConfigObject` makes after zod (schema-report §3.10 items
//! 2–3): no two agents may share an agentDir, and `identity.avatar` must stay inside the
//! agent's workspace. Paths resolve like node's `path.resolve` (absolute, `.`/`..` folded).

use serde_json::Value;
use std::path::{Component, Path, PathBuf};

use super::refine::{js_trim, js_truthy};
use super::validate::Issue;
use super::{default_agent_id, normalize_agent_id};
use crate::state::paths::{env_nonempty, expand_user, home_dir, resolve_state_dir};

/// Runs after a clean zod stage; the agentDir clash wins, and only avatar issues follow it.
pub fn after_zod(config: &Value) -> Vec<Issue> {
    if let Some(issue) = duplicate_agent_dirs(config) {
        return vec![issue];
    }
    avatar_issues(config)
}

fn agents(config: &Value) -> &[Value] {
    config
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A non-empty trimmed string at `key` of `v`.
fn trimmed<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(js_trim)
        .filter(|s| !s.is_empty())
}

/// upstream's `resolveUserPath`: `~` expanded, made absolute and normalised.
pub(super) fn resolve_user_path(raw: &str) -> PathBuf {
    normalize(&expand_user(js_trim(raw)))
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The first `agents.list` entry whose normalised id is `id`.
fn entry_for<'a>(config: &'a Value, id: &str) -> Option<&'a Value> {
    agents(config)
        .iter()
        .find(|a| normalize_agent_id(a.get("id").and_then(Value::as_str).unwrap_or("")) == id)
}

/// Every agent id the config refers to, in upstream's order: default agent, list, bindings.
fn referenced_agent_ids(config: &Value) -> Vec<String> {
    let list = agents(config);
    let chosen = list
        .iter()
        .find(|a| a.get("default").is_some_and(js_truthy))
        .or(list.first());
    let mut ids = vec![chosen
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .map_or_else(|| "main".to_string(), normalize_agent_id)];
    let listed = list
        .iter()
        .filter_map(|a| a.get("id")?.as_str().filter(|s| !s.is_empty()));
    let bindings = config.get("bindings").and_then(Value::as_array);
    let bound = bindings
        .into_iter()
        .flatten()
        .filter_map(|b| trimmed(b, "agentId"));
    for id in listed.chain(bound).map(normalize_agent_id) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

fn agent_dir(config: &Value, id: &str) -> PathBuf {
    match entry_for(config, id).and_then(|a| trimmed(a, "agentDir")) {
        Some(dir) => resolve_user_path(dir),
        None => normalize(&resolve_state_dir().join("agents").join(id).join("agent")),
    }
}

/// §3.10 item 2; paths compare case-sensitively, as upstream does on Linux.
fn duplicate_agent_dirs(config: &Value) -> Option<Issue> {
    let mut by_dir: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for id in referenced_agent_ids(config) {
        let dir = agent_dir(config, &id);
        match by_dir.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, ids)) => ids.push(id),
            None => by_dir.push((dir, vec![id])),
        }
    }
    let conflicts: Vec<String> = by_dir
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(dir, ids)| {
            let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
            format!("- {}: {}", dir.display(), quoted.join(", "))
        })
        .collect();
    if conflicts.is_empty() {
        return None;
    }
    let mut lines = vec![
        "Duplicate agentDir detected (multi-agent config).".to_string(),
        "Each agent must have a unique agentDir; sharing it causes auth/session state collisions and token invalidation.".into(),
        String::new(),
        "Conflicts:".into(),
    ];
    lines.extend(conflicts);
    lines.extend([
        String::new(),
        "Fix: remove the shared agents.list[].agentDir override (or give each agent its own directory).".into(),
        "If you want to share credentials, copy auth-profiles.json instead of sharing the entire agentDir.".into(),
    ]);
    Some(Issue::new("agents.list", lines.join("\n")))
}

/// upstream's `resolveAgentWorkspaceDir`: the entry's own workspace, else (default agent)
/// `agents.defaults.workspace` or `~/clawd[-<profile>]`, else `~/clawd-<id>`.
pub fn workspace_dir(config: &Value, raw_id: &str) -> PathBuf {
    let id = normalize_agent_id(raw_id);
    if let Some(ws) = entry_for(config, &id).and_then(|a| trimmed(a, "workspace")) {
        return resolve_user_path(ws);
    }
    if id != default_agent_id(config) {
        return home_dir().join(format!("clawd-{id}"));
    }
    let defaults = config.pointer("/agents/defaults").unwrap_or(&Value::Null);
    match trimmed(defaults, "workspace") {
        Some(ws) => resolve_user_path(ws),
        None => {
            match env_nonempty("CLAWDBOT_PROFILE").filter(|p| !p.eq_ignore_ascii_case("default")) {
                Some(profile) => home_dir().join(format!("clawd-{profile}")),
                None => home_dir().join("clawd"),
            }
        }
    }
}

const AVATAR_KIND: &str =
    "identity.avatar must be a workspace-relative path, http(s) URL, or data URI.";
const AVATAR_OUTSIDE: &str = "identity.avatar must stay within the agent workspace.";

/// §3.10 item 3.
fn avatar_issues(config: &Value) -> Vec<Issue> {
    let mut out = Vec::new();
    for (i, entry) in agents(config).iter().enumerate() {
        let identity = entry.get("identity").unwrap_or(&Value::Null);
        let Some(avatar) = trimmed(identity, "avatar") else {
            continue;
        };
        let id = entry.get("id").and_then(Value::as_str);
        let id = id.map_or_else(|| default_agent_id(config), str::to_string);
        if let Some(problem) = avatar_problem(avatar, || workspace_dir(config, &id)) {
            out.push(Issue::new(
                &format!("agents.list.{i}.identity.avatar"),
                problem,
            ));
        }
    }
    out
}

fn avatar_problem(avatar: &str, workspace: impl FnOnce() -> PathBuf) -> Option<&'static str> {
    let lower = avatar.to_ascii_lowercase();
    if ["data:", "http://", "https://"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return None;
    }
    if avatar.starts_with('~') || (has_scheme(avatar) && !is_windows_absolute(avatar)) {
        return Some(AVATAR_KIND);
    }
    (!inside(&workspace(), avatar)).then_some(AVATAR_OUTSIDE)
}

/// `^[a-z][a-z0-9+.-]*:` (case-insensitive).
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}

/// `^[a-zA-Z]:[\\/]`.
fn is_windows_absolute(s: &str) -> bool {
    matches!(s.as_bytes(), [d, b':', b'/' | b'\\', ..] if d.is_ascii_alphabetic())
}

/// upstream's `isWorkspaceAvatarPath`, including its quirk that a relative path starting with
/// `..` (even a file named `..x`) counts as outside.
fn inside(workspace: &Path, avatar: &str) -> bool {
    let root = normalize(workspace);
    let resolved = normalize(&root.join(avatar));
    resolved
        .strip_prefix(&root)
        .is_ok_and(|rel| !rel.to_string_lossy().starts_with(".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatar_shapes() {
        let ws = || PathBuf::from("/tmp/ws");
        assert_eq!(avatar_problem("https://x/y.png", ws), None);
        assert_eq!(avatar_problem("DATA:image/png;base64,AA", ws), None);
        assert_eq!(avatar_problem("a/b.png", ws), None);
        assert_eq!(avatar_problem("/tmp/ws/a.png", ws), None);
        assert_eq!(avatar_problem("C:\\x.png", ws), None);
        assert_eq!(avatar_problem("~/x.png", ws), Some(AVATAR_KIND));
        assert_eq!(avatar_problem("ftp://x", ws), Some(AVATAR_KIND));
        assert_eq!(avatar_problem("../x.png", ws), Some(AVATAR_OUTSIDE));
        assert_eq!(avatar_problem("..x.png", ws), Some(AVATAR_OUTSIDE));
        assert_eq!(avatar_problem("/tmp/wsx/a.png", ws), Some(AVATAR_OUTSIDE));
    }

    #[test]
    fn normalises_like_path_resolve() {
        assert_eq!(normalize(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
    }
}
