//! Defaults upstream materialises at load time (zod defaults and the `apply*` functions), so the
//! validated config other modules read — and `config.get` returns — matches upstream's.

use serde_json::{json, Map, Value};

const CHANNELS_WITH_DM_POLICY: [&str; 5] =
    ["telegram", "whatsapp", "signal", "imessage", "bluebubbles"];
const CHANNELS_WITH_DM_BLOCK: [&str; 4] = ["discord", "slack", "googlechat", "msteams"];

/// Returns `config` with upstream's load-time defaults filled in where unset.
pub fn apply(mut config: Value) -> Value {
    let Some(root) = config.as_object_mut() else {
        return config;
    };
    root.entry("commands")
        .or_insert_with(|| json!({"native": "auto", "nativeSkills": "auto"}));
    if let Some(channels) = root.get_mut("channels").and_then(Value::as_object_mut) {
        for (id, ch) in channels.iter_mut() {
            channel_defaults(id, ch);
        }
    }
    let messages = obj(root, "messages");
    messages
        .entry("ackReactionScope")
        .or_insert(json!("group-mentions"));
    if let Some(logging) = root.get_mut("logging").and_then(Value::as_object_mut) {
        logging.entry("redactSensitive").or_insert(json!("tools"));
    }
    if let Some(session) = root.get_mut("session").and_then(Value::as_object_mut) {
        if session.get("mainKey").is_some() {
            session.insert("mainKey".into(), json!("main"));
        }
    }
    let agents = obj(root, "agents");
    let defaults = obj(agents, "defaults");
    defaults.entry("maxConcurrent").or_insert(json!(4));
    obj(defaults, "subagents")
        .entry("maxConcurrent")
        .or_insert(json!(8));
    obj(defaults, "compaction")
        .entry("mode")
        .or_insert(json!("safeguard"));
    config
}

fn obj<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

fn channel_defaults(id: &str, ch: &mut Value) {
    let mut scopes: Vec<&mut Map<String, Value>> = Vec::new();
    let Some(top) = ch.as_object_mut() else {
        return;
    };
    let mut accounts = top.remove("accounts");
    scopes.push(top);
    if let Some(acc) = accounts.as_mut().and_then(Value::as_object_mut) {
        scopes.extend(acc.values_mut().filter_map(Value::as_object_mut));
    }
    for scope in scopes {
        scope.entry("groupPolicy").or_insert(json!("allowlist"));
        if CHANNELS_WITH_DM_POLICY.contains(&id) {
            scope.entry("dmPolicy").or_insert(json!("pairing"));
        }
        if id == "telegram" {
            scope.entry("streamMode").or_insert(json!("partial"));
        }
        if CHANNELS_WITH_DM_BLOCK.contains(&id) {
            if let Some(dm) = scope.get_mut("dm").and_then(Value::as_object_mut) {
                dm.entry("policy").or_insert(json!("pairing"));
            }
        }
    }
    if let (Some(top), Some(acc)) = (ch.as_object_mut(), accounts) {
        top.insert("accounts".into(), acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materialises_upstream_defaults() {
        let c = apply(
            json!({"channels": {"discord": {"dm": {}}, "telegram": {"accounts": {"a": {}}}}}),
        );
        assert_eq!(c["agents"]["defaults"]["maxConcurrent"], 4);
        assert_eq!(c["agents"]["defaults"]["subagents"]["maxConcurrent"], 8);
        assert_eq!(c["messages"]["ackReactionScope"], "group-mentions");
        assert_eq!(c["commands"]["native"], "auto");
        assert_eq!(c["channels"]["discord"]["groupPolicy"], "allowlist");
        assert_eq!(c["channels"]["discord"]["dm"]["policy"], "pairing");
        assert_eq!(
            c["channels"]["telegram"]["accounts"]["a"]["dmPolicy"],
            "pairing"
        );
        let kept = apply(json!({"agents": {"defaults": {"maxConcurrent": 2}}}));
        assert_eq!(kept["agents"]["defaults"]["maxConcurrent"], 2);
    }
}
