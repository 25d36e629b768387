//! The tool policy filter (agents.md §3.6): profile, `tools.allow/alsoAllow/deny`, the
//! per-provider `tools.byProvider` layer and the agent's own `tools` block. Every layer must
//! allow a tool; deny wins; an empty allow list allows everything.

use serde_json::Value;

/// Every moltbot-native tool (provider plugins excluded); `group:clawdbot` is its old name.
const NATIVE: &[&str] = &[
    "browser",
    "canvas",
    "nodes",
    "cron",
    "message",
    "gateway",
    "agents_list",
    "sessions_list",
    "sessions_history",
    "sessions_send",
    "sessions_spawn",
    "session_status",
    "memory_search",
    "memory_get",
    "web_search",
    "web_fetch",
    "image",
];

const GROUPS: [(&str, &[&str]); 11] = [
    ("group:memory", &["memory_search", "memory_get"]),
    ("group:web", &["web_search", "web_fetch"]),
    ("group:fs", &["read", "write", "edit", "apply_patch"]),
    ("group:runtime", &["exec", "process"]),
    (
        "group:sessions",
        &[
            "sessions_list",
            "sessions_history",
            "sessions_send",
            "sessions_spawn",
            "session_status",
        ],
    ),
    ("group:ui", &["browser", "canvas"]),
    ("group:automation", &["cron", "gateway"]),
    ("group:messaging", &["message"]),
    ("group:nodes", &["nodes"]),
    ("group:moltbot", NATIVE),
    ("group:clawdbot", NATIVE),
];

/// One allow/deny pair; `allow: None` means "everything".
struct Layer {
    allow: Option<Vec<String>>,
    deny: Vec<String>,
}

pub struct Policy {
    layers: Vec<Layer>,
}

impl Policy {
    pub fn resolve(config: &Value, agent_id: &str, provider: &str, model: &str) -> Policy {
        let global = config.pointer("/tools").cloned().unwrap_or(Value::Null);
        let agent = agent_tools(config, agent_id);
        let mut layers = Vec::new();
        let profile = agent
            .get("profile")
            .or_else(|| global.get("profile"))
            .and_then(Value::as_str);
        let also: Vec<String> = [&agent, &global]
            .iter()
            .flat_map(|b| list(b.get("alsoAllow")))
            .collect();
        layers.push(profile_layer(profile, &also));
        for block in [&global, &agent] {
            if let Some(by) = by_provider(block, provider, model) {
                layers.push(profile_layer(
                    by.get("profile").and_then(Value::as_str),
                    &[],
                ));
                layers.push(layer(&by));
            }
        }
        layers.push(layer(&global));
        layers.push(layer(&agent));
        Policy { layers }
    }

    pub fn allows(&self, tool: &str) -> bool {
        let name = normalize(tool);
        self.layers.iter().all(|l| {
            let denied = l.deny.iter().any(|p| matches(p, &name));
            let allowed = match &l.allow {
                None => true,
                Some(list) if list.is_empty() => true,
                Some(list) => {
                    list.iter().any(|p| matches(p, &name))
                        || (name == "apply_patch" && list.iter().any(|p| matches(p, "exec")))
                }
            };
            allowed && !denied
        })
    }
}

fn agent_tools(config: &Value, agent_id: &str) -> Value {
    config
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter().find(|a| {
                a.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| normalize(id) == agent_id)
            })
        })
        .and_then(|a| a.get("tools").cloned())
        .unwrap_or(Value::Null)
}

fn by_provider(block: &Value, provider: &str, model: &str) -> Option<Value> {
    let map = block.get("byProvider")?.as_object()?;
    let full = format!("{provider}/{model}").to_ascii_lowercase();
    map.iter()
        .find(|(k, _)| k.to_ascii_lowercase() == full)
        .or_else(|| map.iter().find(|(k, _)| k.to_ascii_lowercase() == provider))
        .map(|(_, v)| v.clone())
}

fn profile_layer(profile: Option<&str>, also: &[String]) -> Layer {
    let allow: Option<Vec<&str>> = match profile {
        Some("minimal") => Some(vec!["session_status"]),
        Some("coding") => Some(vec![
            "group:fs",
            "group:runtime",
            "group:sessions",
            "group:memory",
            "image",
        ]),
        Some("messaging") => Some(vec![
            "group:messaging",
            "sessions_list",
            "sessions_history",
            "sessions_send",
            "session_status",
        ]),
        _ => None,
    };
    Layer {
        allow: allow.map(|a| {
            let mut v: Vec<String> = expand(a.into_iter().map(str::to_string));
            v.extend(expand(also.iter().cloned()));
            v
        }),
        deny: Vec::new(),
    }
}

fn layer(block: &Value) -> Layer {
    let allow = list(block.get("allow"));
    Layer {
        allow: (!allow.is_empty()).then(|| expand(allow.into_iter())),
        deny: expand(list(block.get("deny")).into_iter()),
    }
}

fn list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(normalize).collect())
        .unwrap_or_default()
}

fn expand(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for item in items.map(|i| normalize(&i)) {
        match GROUPS.iter().find(|(g, _)| *g == item) {
            Some((_, members)) => out.extend(members.iter().map(|m| m.to_string())),
            None => out.push(item),
        }
    }
    out
}

fn normalize(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "bash" => "exec".into(),
        "apply-patch" => "apply_patch".into(),
        _ => n,
    }
}

/// `*` wildcards, as upstream's glob match of tool names.
fn matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if !pattern.contains('*') {
        return pattern == name;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allows(cfg: Value, tool: &str) -> bool {
        Policy::resolve(&cfg, "main", "anthropic", "claude-opus-4-5").allows(tool)
    }

    #[test]
    fn profiles_groups_and_deny() {
        assert!(allows(json!({}), "read"));
        assert!(!allows(json!({"tools": {"profile": "minimal"}}), "read"));
        assert!(allows(json!({"tools": {"profile": "coding"}}), "read"));
        assert!(allows(
            json!({"tools": {"profile": "minimal", "alsoAllow": ["read"]}}),
            "read"
        ));
        assert!(!allows(json!({"tools": {"deny": ["group:fs"]}}), "read"));
        assert!(!allows(json!({"tools": {"allow": ["exec"]}}), "read"));
        assert!(allows(json!({"tools": {"allow": ["re*"]}}), "read"));
        assert!(!allows(
            json!({"tools": {"byProvider": {"anthropic": {"deny": ["read"]}}}}),
            "read"
        ));
        let agent = json!({"agents": {"list": [{"id": "main", "tools": {"deny": ["*"]}}]}});
        assert!(!allows(agent, "read"));
    }
}
