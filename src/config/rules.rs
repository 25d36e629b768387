//! The checks upstream makes outside the plain schema: legacy keys (§6.2, with upstream's
//! messages), the plugin layer (known channel and plugin ids) and hand-written refinements.

use serde_json::Value;

use super::validate::Issue;

/// (path, message, applies only when the value is a string).
const LEGACY: &[(&str, &str, bool)] = &[
    ("whatsapp", "whatsapp config moved to channels.whatsapp (auto-migrated on load).", false),
    ("telegram", "telegram config moved to channels.telegram (auto-migrated on load).", false),
    ("discord", "discord config moved to channels.discord (auto-migrated on load).", false),
    ("slack", "slack config moved to channels.slack (auto-migrated on load).", false),
    ("signal", "signal config moved to channels.signal (auto-migrated on load).", false),
    ("imessage", "imessage config moved to channels.imessage (auto-migrated on load).", false),
    ("msteams", "msteams config moved to channels.msteams (auto-migrated on load).", false),
    ("routing.allowFrom", "routing.allowFrom was removed; use channels.whatsapp.allowFrom instead (auto-migrated on load).", false),
    ("routing.bindings", "routing.bindings was moved; use top-level bindings instead (auto-migrated on load).", false),
    ("routing.agents", "routing.agents was moved; use agents.list instead (auto-migrated on load).", false),
    ("routing.defaultAgentId", "routing.defaultAgentId was moved; use agents.list[].default instead (auto-migrated on load).", false),
    ("routing.agentToAgent", "routing.agentToAgent was moved; use tools.agentToAgent instead (auto-migrated on load).", false),
    ("routing.groupChat.requireMention", "routing.groupChat.requireMention was removed; use channels.whatsapp/telegram/imessage groups defaults (e.g. channels.whatsapp.groups.\"*\".requireMention) instead (auto-migrated on load).", false),
    ("routing.groupChat.mentionPatterns", "routing.groupChat.mentionPatterns was moved; use agents.list[].groupChat.mentionPatterns or messages.groupChat.mentionPatterns instead (auto-migrated on load).", false),
    ("routing.queue", "routing.queue was moved; use messages.queue instead (auto-migrated on load).", false),
    ("routing.transcribeAudio", "routing.transcribeAudio was moved; use tools.media.audio.models instead (auto-migrated on load).", false),
    ("telegram.requireMention", "telegram.requireMention was removed; use channels.telegram.groups.\"*\".requireMention instead (auto-migrated on load).", false),
    ("identity", "identity was moved; use agents.list[].identity instead (auto-migrated on load).", false),
    ("agent", "agent.* was moved; use agents.defaults (and tools.* for tool/elevated/exec settings) instead (auto-migrated on load).", false),
    ("tools.bash", "tools.bash was removed; use tools.exec instead (auto-migrated on load).", false),
    ("agent.model", "agent.model string was replaced by agents.defaults.model.primary/fallbacks and agents.defaults.models (auto-migrated on load).", true),
    ("agent.imageModel", "agent.imageModel string was replaced by agents.defaults.imageModel.primary/fallbacks (auto-migrated on load).", true),
    ("agent.allowedModels", "agent.allowedModels was replaced by agents.defaults.models (auto-migrated on load).", false),
    ("agent.modelAliases", "agent.modelAliases was replaced by agents.defaults.models.*.alias (auto-migrated on load).", false),
    ("agent.modelFallbacks", "agent.modelFallbacks was replaced by agents.defaults.model.fallbacks (auto-migrated on load).", false),
    ("agent.imageModelFallbacks", "agent.imageModelFallbacks was replaced by agents.defaults.imageModel.fallbacks (auto-migrated on load).", false),
    ("messages.tts.enabled", "messages.tts.enabled was replaced by messages.tts.auto (auto-migrated on load).", false),
    ("gateway.token", "gateway.token is ignored; use gateway.auth.token instead (auto-migrated on load).", false),
    ("channels.telegram.token", "channels.telegram.token was renamed to channels.telegram.botToken (auto-migrated on load).", false),
];

/// Looks up a dotted path.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

/// Legacy keys present in the config.
pub fn legacy_issues(config: &Value) -> Vec<Issue> {
    LEGACY
        .iter()
        .filter(|(path, _, string_only)| {
            get(config, path).is_some_and(|v| !string_only || v.is_string())
        })
        .map(|(path, msg, _)| Issue::new(path, *msg))
        .collect()
}

/// Channel ids and plugin ids come from the schema file's `x-channelIds` / `x-pluginIds`.
pub fn plugin_issues(config: &Value, schema: &Value) -> Vec<Issue> {
    let ids = |k: &str| -> Vec<&str> {
        schema
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let channel_ids = ids("x-channelIds");
    let plugin_ids = ids("x-pluginIds");
    let mut issues = Vec::new();
    if let Some(channels) = config.get("channels").and_then(Value::as_object) {
        for key in channels.keys().filter(|k| *k != "defaults") {
            if !channel_ids.is_empty() && !channel_ids.contains(&key.as_str()) {
                issues.push(Issue::new(
                    &format!("channels.{key}"),
                    format!("unknown channel id: {key}"),
                ));
            }
        }
    }
    let known = |id: &str| plugin_ids.is_empty() || plugin_ids.contains(&id);
    if let Some(entries) = get(config, "plugins.entries").and_then(Value::as_object) {
        for id in entries.keys().filter(|id| !known(id)) {
            issues.push(Issue::new(
                &format!("plugins.entries.{id}"),
                format!("plugin not found: {id}"),
            ));
        }
    }
    for list in ["allow", "deny"] {
        let items = get(config, &format!("plugins.{list}")).and_then(Value::as_array);
        for id in items
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|id| !known(id))
        {
            issues.push(Issue::new(
                &format!("plugins.{list}"),
                format!("plugin not found: {id}"),
            ));
        }
    }
    if let Some(slot) = get(config, "plugins.slots.memory").and_then(Value::as_str) {
        if slot != "none" && !known(slot) {
            issues.push(Issue::new(
                "plugins.slots.memory",
                format!("plugin not found: {slot}"),
            ));
        }
    }
    issues
}

/// Refinements: `open` DM policies need `"*"` in the allowlist, allow vs alsoAllow, heartbeat
/// durations and active-hours times.
pub fn refinement_issues(config: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    open_policy_rules(config, &mut issues);
    tool_policy_rules(config, &mut issues);
    heartbeat_rules(config, &mut issues);
    issues
}

fn has_star(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == "*"))
}

fn open_policy_rules(config: &Value, issues: &mut Vec<Issue>) {
    let Some(channels) = config.get("channels").and_then(Value::as_object) else {
        return;
    };
    for (id, ch) in channels {
        let mut scopes = vec![(format!("channels.{id}"), ch)];
        if let Some(accounts) = ch.get("accounts").and_then(Value::as_object) {
            scopes.extend(
                accounts
                    .iter()
                    .map(|(a, v)| (format!("channels.{id}.accounts.{a}"), v)),
            );
        }
        for (base, scope) in scopes {
            if scope.pointer("/dm/policy").and_then(Value::as_str) == Some("open")
                && !has_star(scope.pointer("/dm/allowFrom"))
            {
                issues.push(Issue::new(
                    &format!("{base}.dm.allowFrom"),
                    format!(
                        "{base}.dm.policy=\"open\" requires {base}.dm.allowFrom to include \"*\""
                    ),
                ));
            }
            if scope.get("dmPolicy").and_then(Value::as_str) == Some("open")
                && !has_star(scope.get("allowFrom"))
            {
                issues.push(Issue::new(
                    &format!("{base}.allowFrom"),
                    format!("{base}.dmPolicy=\"open\" requires {base}.allowFrom to include \"*\""),
                ));
            }
        }
    }
}

fn tool_policy_rules(config: &Value, issues: &mut Vec<Issue>) {
    let both = |t: &Value| {
        let non_empty = |k: &str| {
            t.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        non_empty("allow") && non_empty("alsoAllow")
    };
    if config.get("tools").is_some_and(both) {
        issues.push(Issue::new("tools", "tools cannot set both allow and alsoAllow in the same scope (merge alsoAllow into allow, or remove allow and use profile + alsoAllow)"));
    }
    let agents = get(config, "agents.list").and_then(Value::as_array);
    for (i, agent) in agents.into_iter().flatten().enumerate() {
        if agent.get("tools").is_some_and(both) {
            issues.push(Issue::new(&format!("agents.list.{i}.tools"), "agent tools cannot set both allow and alsoAllow in the same scope (merge alsoAllow into allow, or remove allow and use profile + alsoAllow)"));
        }
    }
}

fn heartbeat_rules(config: &Value, issues: &mut Vec<Issue>) {
    let mut scopes = vec![(
        "agents.defaults.heartbeat".to_string(),
        get(config, "agents.defaults.heartbeat"),
    )];
    let agents = get(config, "agents.list").and_then(Value::as_array);
    for (i, agent) in agents.into_iter().flatten().enumerate() {
        scopes.push((format!("agents.list.{i}.heartbeat"), agent.get("heartbeat")));
    }
    for (base, hb) in scopes {
        let Some(hb) = hb else { continue };
        if let Some(every) = hb.get("every").and_then(Value::as_str) {
            if parse_duration_ms(every).is_none() {
                issues.push(Issue::new(
                    &format!("{base}.every"),
                    "invalid duration (use ms, s, m, h)",
                ));
            }
        }
        for (key, is_end) in [("start", false), ("end", true)] {
            if let Some(t) = hb
                .pointer(&format!("/activeHours/{key}"))
                .and_then(Value::as_str)
            {
                if let Some(msg) = time_problem(t, is_end) {
                    issues.push(Issue::new(&format!("{base}.activeHours.{key}"), msg));
                }
            }
        }
    }
}

/// A duration like `30m`, `1h`, `500ms`, `45s`; a bare number means minutes.
pub fn parse_duration_ms(raw: &str) -> Option<u64> {
    let s = raw.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" | "m" => 60_000.0,
        "ms" => 1.0,
        "s" => 1000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    (n >= 0.0).then_some((n * factor) as u64)
}

fn time_problem(t: &str, is_end: bool) -> Option<&'static str> {
    let bad = "invalid time (use \"HH:MM\" 24h format)";
    let (h, m) = t.split_once(':')?;
    let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) else {
        return Some(bad);
    };
    if t.len() != 5 || m > 59 {
        return Some(bad);
    }
    match h {
        0..=23 => None,
        24 if m != 0 => Some("invalid time (24:00 is the only allowed 24:xx value)"),
        24 if !is_end => Some("invalid time (start cannot be 24:00)"),
        24 => None,
        _ => Some(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_and_plugins() {
        let issues = legacy_issues(&json!({"gateway": {"token": "x"}, "agent": {"model": "a"}}));
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["agent", "agent.model", "gateway.token"]);
        let schema = json!({"x-channelIds": ["discord"], "x-pluginIds": ["discord"]});
        let issues = plugin_issues(
            &json!({"channels": {"discrod": {}}, "plugins": {"entries": {"nope": {}}}}),
            &schema,
        );
        assert_eq!(issues[0].message, "unknown channel id: discrod");
        assert_eq!(issues[1].message, "plugin not found: nope");
    }

    #[test]
    fn refinements() {
        let cfg = json!({"channels": {"discord": {"dm": {"policy": "open"}}, "telegram": {"dmPolicy": "open", "allowFrom": ["*"]}}});
        let issues = refinement_issues(&cfg);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].message, "channels.discord.dm.policy=\"open\" requires channels.discord.dm.allowFrom to include \"*\"");
        let hb = json!({"agents": {"defaults": {"heartbeat": {"every": "5x", "activeHours": {"start": "24:00", "end": "24:00"}}}}});
        let msgs: Vec<String> = refinement_issues(&hb)
            .into_iter()
            .map(|i| i.message)
            .collect();
        assert_eq!(
            msgs,
            [
                "invalid duration (use ms, s, m, h)",
                "invalid time (start cannot be 24:00)"
            ]
        );
        assert_eq!(parse_duration_ms("30m"), Some(1_800_000));
        assert_eq!(parse_duration_ms("0m"), Some(0));
        assert_eq!(parse_duration_ms("15"), Some(900_000));
    }
}
