//! Where things live: the state dir and config path resolution of upstream (`MOLTBOT_*` over
//! `CLAWDBOT_*`, `~/.clawdbot` unless only `~/.moltbot` exists, the config candidate probe).

use std::path::{Path, PathBuf};

/// Reads an environment variable, trimmed; empty counts as unset.
pub fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `MOLTBOT_<suffix>` if set, else `CLAWDBOT_<suffix>`.
pub fn env_twin(suffix: &str) -> Option<String> {
    env_nonempty(&format!("MOLTBOT_{suffix}"))
        .or_else(|| env_nonempty(&format!("CLAWDBOT_{suffix}")))
}

/// The home directory (`HOME`, else `/root`, which is what a container without HOME has).
pub fn home_dir() -> PathBuf {
    env_nonempty("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Expands a leading `~` (followed by end or a slash) and makes the path absolute against cwd.
pub fn expand_user(raw: &str) -> PathBuf {
    let expanded = if raw == "~" {
        home_dir()
    } else if let Some(rest) = raw.strip_prefix("~/").or_else(|| raw.strip_prefix("~\\")) {
        home_dir().join(rest)
    } else {
        PathBuf::from(raw)
    };
    if expanded.is_absolute() {
        expanded
    } else {
        std::env::current_dir()
            .map(|d| d.join(&expanded))
            .unwrap_or(expanded)
    }
}

/// The state dir: env override, else `~/.moltbot` only if it exists and `~/.clawdbot` does not.
pub fn resolve_state_dir() -> PathBuf {
    if let Some(dir) = env_twin("STATE_DIR") {
        return expand_user(&dir);
    }
    let legacy = home_dir().join(".clawdbot");
    let new = home_dir().join(".moltbot");
    if new.exists() && !legacy.exists() {
        new
    } else {
        legacy
    }
}

/// The config file path: env override, else the first existing candidate, else
/// `<state dir>/moltbot.json`.
pub fn resolve_config_path(state_dir: &Path) -> PathBuf {
    if let Some(p) = env_twin("CONFIG_PATH") {
        return expand_user(&p);
    }
    config_candidates()
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| state_dir.join("moltbot.json"))
}

fn config_candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for var in ["MOLTBOT_STATE_DIR", "CLAWDBOT_STATE_DIR"] {
        if let Some(d) = env_nonempty(var) {
            dirs.push(expand_user(&d));
        }
    }
    dirs.push(home_dir().join(".moltbot"));
    dirs.push(home_dir().join(".clawdbot"));
    dirs.iter()
        .flat_map(|d| [d.join("moltbot.json"), d.join("clawdbot.json")])
        .collect()
}
