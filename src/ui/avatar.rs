//! `/avatar/<agentId>` as upstream serves it: the agent's avatar from `identity.avatar` in the
//! config (else the `Avatar:` line of the workspace's `IDENTITY.md`); a local file inside the
//! workspace is streamed, a URL or data URI is only reported through `?meta=1`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use crate::server::http::{header, json as json_resp, secure, text};

const ALLOWED_EXTS: &[&str] = &["png", "jpg", "jpeg", "gif", "webp", "svg"];

/// Placeholder texts of the `IDENTITY.md` template, which mean "not set".
const PLACEHOLDER: &str = "workspace-relative path, http(s) url, or data uri";

/// Where an agent's avatar comes from.
#[derive(Debug, PartialEq)]
pub enum Source {
    None,
    /// An http(s) URL or a data URI, shown as is.
    Url(String),
    /// A file inside the agent's workspace.
    Local(PathBuf),
}

type Resp = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

/// Answers `GET <base>/avatar/<rest>`.
pub fn serve(config: &Value, base_path: &str, rest: &str, query: Option<&str>) -> Resp {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let [agent] = parts.as_slice() else {
        return text(404, "Not Found");
    };
    if !valid_agent_id(agent) {
        return text(404, "Not Found");
    }
    let meta = query.is_some_and(|q| q.split('&').any(|kv| kv == "meta=1"));
    let source = resolve(config, agent);
    if meta {
        let url = match &source {
            Source::None => Value::Null,
            Source::Url(u) => json!(u),
            Source::Local(_) => json!(format!("{base_path}/avatar/{agent}")),
        };
        return json_resp(200, &json!({ "avatarUrl": url }).to_string());
    }
    match source {
        Source::Local(path) => file(&path),
        _ => text(404, "Not Found"),
    }
}

fn valid_agent_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn file(path: &Path) -> Resp {
    let Ok(body) = std::fs::read(path) else {
        return text(404, "Not Found");
    };
    let ext = extension(path);
    let ct = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
    secure(
        tiny_http::Response::from_data(body)
            .with_header(header("Content-Type", ct))
            .with_header(header("Cache-Control", "no-cache")),
    )
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// upstream's `resolveAgentAvatar`.
pub fn resolve(config: &Value, agent_id: &str) -> Source {
    let Some(raw) = configured(config, agent_id).or_else(|| from_identity_file(config, agent_id))
    else {
        return Source::None;
    };
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("data:") {
        return Source::Url(raw);
    }
    let workspace = crate::config::workspace_dir(config, agent_id);
    local_path(&workspace, &raw).map_or(Source::None, Source::Local)
}

fn configured(config: &Value, agent_id: &str) -> Option<String> {
    crate::agent::models::agent_entry(config, agent_id)?
        .get("identity")?
        .get("avatar")?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The `Avatar:` line of `IDENTITY.md` (`- **Avatar:** avatars/me.png`).
fn from_identity_file(config: &Value, agent_id: &str) -> Option<String> {
    let dir = crate::config::workspace_dir(config, agent_id);
    let content = std::fs::read_to_string(dir.join("IDENTITY.md")).ok()?;
    content.lines().find_map(|line| {
        let cleaned = line.trim().trim_start_matches('-').trim();
        let (label, value) = cleaned.split_once(':')?;
        let label = label.replace(['*', '_'], "");
        let value = value.trim().trim_matches(|c| c == '*' || c == '_').trim();
        let unset = value.is_empty()
            || value
                .trim_matches(|c| c == '(' || c == ')')
                .eq_ignore_ascii_case(PLACEHOLDER);
        (label.trim().eq_ignore_ascii_case("avatar") && !unset).then(|| value.to_string())
    })
}

/// A file path inside the workspace with an image extension, after resolving symlinks.
fn local_path(workspace: &Path, raw: &str) -> Option<PathBuf> {
    let root = workspace
        .canonicalize()
        .unwrap_or_else(|_| workspace.to_path_buf());
    let candidate = if raw.starts_with('~') || Path::new(raw).is_absolute() {
        crate::state::paths::expand_user(raw)
    } else {
        root.join(raw)
    };
    let real = candidate.canonicalize().ok()?;
    let inside = real.starts_with(&root);
    let image = ALLOWED_EXTS.contains(&extension(&real).as_str());
    (inside && image && real.is_file()).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_and_escapes() {
        let dir = std::env::temp_dir().join(format!("mb-avatar-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(dir.join("img")).unwrap();
        std::fs::write(dir.join("img/me.png"), b"png").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        let ws = dir.to_string_lossy();
        let cfg = |avatar: &str| json!({"agents": {"defaults": {"workspace": ws}, "list": [{"id": "main", "identity": {"avatar": avatar}}]}});
        assert_eq!(
            resolve(&cfg("img/me.png"), "main"),
            Source::Local(dir.join("img/me.png").canonicalize().unwrap())
        );
        assert_eq!(resolve(&cfg("notes.txt"), "main"), Source::None);
        assert_eq!(resolve(&cfg("../../etc/passwd"), "main"), Source::None);
        assert_eq!(
            resolve(&cfg("https://x.test/a.png"), "main"),
            Source::Url("https://x.test/a.png".into())
        );
        std::fs::write(dir.join("IDENTITY.md"), "- **Avatar:** img/me.png\n").unwrap();
        let from_file = json!({"agents": {"defaults": {"workspace": ws}}});
        assert!(matches!(resolve(&from_file, "main"), Source::Local(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn agent_ids() {
        assert!(valid_agent_id("main"));
        assert!(valid_agent_id("a_b-1"));
        assert!(!valid_agent_id("-x"));
        assert!(!valid_agent_id("a.b"));
    }
}
