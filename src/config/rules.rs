//! The checks upstream makes outside the plain schema and its refinements: legacy keys (§6.2,
//! with upstream's messages) before zod, and the plugin layer (`validateConfigObjectWithPlugins`,
//! schema-report §3.10 item 4) after it. The refinements themselves live in `refine*.rs`.

use serde_json::{json, Value};

use super::refine::{self, js_trim};
use super::refine_agents::resolve_user_path;
use super::validate::{self, Issue};

pub use super::refine::parse_duration_ms;

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

/// All hand-written refinements of a config that passed the schema: zod's, then (if those
/// pass) the agent checks upstream makes after zod. `check()` runs the same stages itself.
pub fn refinement_issues(config: &Value) -> Vec<Issue> {
    let issues = refine::zod_stage(config, super::schema(), Vec::new());
    if !issues.is_empty() {
        return issues;
    }
    refine::after_zod(config)
}

/// Chat-channel aliases upstream accepts as heartbeat targets.
const CHANNEL_ALIASES: &[&str] = &["imsg", "google-chat", "gchat"];

/// Bundled plugins of kind `memory` (their manifests say so): only the one named by the memory
/// slot is enabled, whatever its entry says.
const MEMORY_PLUGINS: &[&str] = &["memory-core", "memory-lancedb"];

/// The memory slot when `plugins.slots.memory` is unset or blank.
const DEFAULT_MEMORY_SLOT: &str = "memory-core";

/// The ids the schema file knows (`x-channelIds`, `x-pluginIds`); a missing list accepts all.
struct Known<'a> {
    channels: Vec<&'a str>,
    plugins: Vec<&'a str>,
}

impl<'a> Known<'a> {
    fn from_schema(schema: &'a Value) -> Self {
        let ids = |k: &str| strings(schema.get(k)).collect::<Vec<_>>();
        Known {
            channels: ids("x-channelIds"),
            plugins: ids("x-pluginIds"),
        }
    }

    fn channel(&self, id: &str) -> bool {
        self.channels.is_empty() || self.channels.contains(&id)
    }

    fn plugin(&self, id: &str) -> bool {
        self.plugins.is_empty() || self.plugins.contains(&id)
    }
}

/// The string elements of an array value.
fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// upstream's `normalizePluginsConfig`: what decides whether a plugin is enabled.
struct Plugins<'a> {
    enabled: bool,
    allow: Vec<&'a str>,
    deny: Vec<&'a str>,
    /// `None` when the slot is `"none"`.
    memory_slot: Option<String>,
    entries: Option<&'a serde_json::Map<String, Value>>,
}

impl<'a> Plugins<'a> {
    fn from_config(config: &'a Value) -> Self {
        let list = |k: &str| {
            strings(get(config, &format!("plugins.{k}")))
                .map(js_trim)
                .filter(|s| !s.is_empty())
                .collect()
        };
        let slot = get(config, "plugins.slots.memory")
            .and_then(Value::as_str)
            .map(js_trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_MEMORY_SLOT);
        Plugins {
            enabled: get(config, "plugins.enabled") != Some(&Value::Bool(false)),
            allow: list("allow"),
            deny: list("deny"),
            memory_slot: (!slot.eq_ignore_ascii_case("none")).then(|| slot.to_string()),
            entries: get(config, "plugins.entries").and_then(Value::as_object),
        }
    }

    fn entry(&self, id: &str) -> Option<&'a Value> {
        self.entries?.get(id)
    }

    /// upstream's `resolveEnableState` + memory-slot decision, for a bundled plugin (bundled
    /// plugins are off unless enabled or slotted).
    fn is_enabled(&self, id: &str) -> bool {
        let listed = self.allow.is_empty() || self.allow.contains(&id);
        if !self.enabled || self.deny.contains(&id) || !listed {
            return false;
        }
        let slotted = self.memory_slot.as_deref() == Some(id);
        if MEMORY_PLUGINS.contains(&id) {
            return slotted;
        }
        let entry_enabled = self.entry(id).and_then(|e| e.get("enabled"));
        slotted || entry_enabled == Some(&Value::Bool(true))
    }
}

/// The plugin layer, in upstream's order: load paths, plugin ids, channel ids, heartbeat
/// targets, plugin configs.
pub fn plugin_issues(config: &Value, schema: &Value) -> Vec<Issue> {
    let known = Known::from_schema(schema);
    let plugins = Plugins::from_config(config);
    let mut issues = load_path_issues(config);
    issues.extend(unknown_plugin_issues(config, &plugins, &known));
    issues.extend(unknown_channel_issues(config, &known));
    issues.extend(heartbeat_target_issues(config, &known));
    issues.extend(plugin_config_issues(&plugins, &known, schema));
    issues
}

/// Plugin discovery reports load paths that do not exist (we discover nothing inside them).
fn load_path_issues(config: &Value) -> Vec<Issue> {
    strings(get(config, "plugins.load.paths"))
        .map(js_trim)
        .filter(|p| !p.is_empty())
        .map(resolve_user_path)
        .filter(|p| !p.exists())
        .map(|p| {
            Issue::new(
                "plugins.load.paths",
                format!("plugin: plugin path not found: {}", p.display()),
            )
        })
        .collect()
}

fn unknown_plugin_issues(config: &Value, plugins: &Plugins, known: &Known) -> Vec<Issue> {
    let not_found = |path: &str, id: &str| Issue::new(path, format!("plugin not found: {id}"));
    let mut issues = Vec::new();
    for id in plugins.entries.into_iter().flat_map(|e| e.keys()) {
        if !known.plugin(id) {
            issues.push(not_found(&format!("plugins.entries.{id}"), id));
        }
    }
    for list in ["allow", "deny"] {
        let path = format!("plugins.{list}");
        // Blank ids are skipped, the others compared untrimmed, as upstream does.
        let ids = strings(get(config, &path)).filter(|id| !js_trim(id).is_empty());
        for id in ids.filter(|id| !known.plugin(id)) {
            issues.push(not_found(&path, id));
        }
    }
    if let Some(slot) = plugins.memory_slot.as_deref().filter(|s| !known.plugin(s)) {
        issues.push(not_found("plugins.slots.memory", slot));
    }
    issues
}

fn unknown_channel_issues(config: &Value, known: &Known) -> Vec<Issue> {
    let channels = config.get("channels").and_then(Value::as_object);
    channels
        .into_iter()
        .flat_map(|c| c.keys())
        .map(|k| js_trim(k))
        .filter(|k| !k.is_empty() && *k != "defaults" && !known.channel(k))
        .map(|k| Issue::new(&format!("channels.{k}"), format!("unknown channel id: {k}")))
        .collect()
}

fn heartbeat_target_issues(config: &Value, known: &Known) -> Vec<Issue> {
    let mut targets = vec![(
        "agents.defaults.heartbeat.target".to_string(),
        get(config, "agents.defaults.heartbeat.target"),
    )];
    let agents = get(config, "agents.list").and_then(Value::as_array);
    for (i, agent) in agents.into_iter().flatten().enumerate() {
        targets.push((
            format!("agents.list.{i}.heartbeat.target"),
            agent.pointer("/heartbeat/target"),
        ));
    }
    targets
        .into_iter()
        .filter_map(|(path, t)| {
            let problem = heartbeat_target_problem(t?.as_str()?, known)?;
            Some(Issue::new(&path, problem))
        })
        .collect()
}

/// `last`, `none`, a channel id or a channel alias (any case).
fn heartbeat_target_problem(raw: &str, known: &Known) -> Option<String> {
    let target = js_trim(raw);
    if target.is_empty() {
        return Some("heartbeat target must not be empty".into());
    }
    let lower = target.to_lowercase();
    let fine = ["last", "none"].contains(&lower.as_str())
        || CHANNEL_ALIASES.contains(&lower.as_str())
        || known.channel(&lower);
    (!fine).then(|| format!("unknown heartbeat target: {raw}"))
}

/// A plugin's `config` is checked against its manifest schema (`x-pluginConfigSchemas`) when
/// the plugin is enabled or has a config; a missing config counts as `{}`.
fn plugin_config_issues(plugins: &Plugins, known: &Known, schema: &Value) -> Vec<Issue> {
    let schemas = schema.get("x-pluginConfigSchemas");
    let mut issues = Vec::new();
    for (n, id) in known.plugins.iter().enumerate() {
        let config = plugins
            .entry(id)
            .and_then(|e| e.get("config"))
            .filter(|c| refine::js_truthy(c));
        let duplicate = known.plugins[..n].contains(id);
        if duplicate || !(config.is_some() || plugins.is_enabled(id)) {
            continue;
        }
        let Some(plugin_schema) = schemas.and_then(|s| s.get(*id)) else {
            issues.push(Issue::new(
                &format!("plugins.entries.{id}"),
                format!("plugin schema missing for {id}"),
            ));
            continue;
        };
        let found = validate::validate(plugin_schema, config.unwrap_or(&json!({})));
        let path = format!("plugins.entries.{id}.config");
        for message in found.iter().flat_map(ajv_messages) {
            issues.push(Issue::new(&path, format!("invalid config: {message}")));
        }
    }
    issues
}

/// Our validator's issue in ajv's words (`<path>: <message>`), as upstream prints plugin
/// config errors; the common cases are translated, the rest keep zod's wording.
fn ajv_messages(issue: &Issue) -> Vec<String> {
    let at = |p: &str| {
        if p.is_empty() {
            "<root>".to_string()
        } else {
            p.to_string()
        }
    };
    let m = issue.message.as_str();
    let unknown = m
        .strip_prefix("Unrecognized key: ")
        .or_else(|| m.strip_prefix("Unrecognized keys: "));
    if let Some(keys) = unknown {
        let line = format!("{}: must NOT have additional properties", at(&issue.path));
        return keys.split("\", \"").map(|_| line.clone()).collect();
    }
    let typed = m
        .strip_prefix("Invalid input: expected ")
        .and_then(|t| t.split_once(", received "));
    let line = match typed {
        Some((_, "undefined")) => {
            let (parent, key) = issue.path.rsplit_once('.').unwrap_or(("", &issue.path));
            format!("{}: must have required property '{key}'", at(parent))
        }
        Some((expected, _)) => {
            let expected = if expected == "int" {
                "integer"
            } else {
                expected
            };
            format!("{}: must be {expected}", at(&issue.path))
        }
        None if m.starts_with("Invalid option:") => {
            format!(
                "{}: must be equal to one of the allowed values",
                at(&issue.path)
            )
        }
        None => format!("{}: {m}", at(&issue.path)),
    };
    vec![line]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_and_plugins() {
        let issues = legacy_issues(&json!({"gateway": {"token": "x"}, "agent": {"model": "a"}}));
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["agent", "agent.model", "gateway.token"]);
        let schema =
            json!({"x-channelIds": ["discord"], "x-pluginIds": ["discord", "memory-core"]});
        let issues = plugin_issues(
            &json!({"channels": {"discrod": {}}, "plugins": {"entries": {"nope": {}}}}),
            &schema,
        );
        // upstream reports plugin ids before channel ids
        assert_eq!(issues[0].message, "plugin not found: nope");
        assert_eq!(issues[1].message, "unknown channel id: discrod");
    }

    #[test]
    fn plugin_enable_state() {
        let p = |v: Value| {
            let cfg = json!({ "plugins": v });
            let plugins = Plugins::from_config(&cfg);
            ["discord", "memory-core", "memory-lancedb"].map(|id| plugins.is_enabled(id))
        };
        assert_eq!(p(json!({})), [false, true, false]);
        let on =
            json!({"entries": {"discord": {"enabled": true}, "memory-lancedb": {"enabled": true}}});
        assert_eq!(p(on), [true, true, false]);
        assert_eq!(
            p(json!({"slots": {"memory": "None"}})),
            [false, false, false]
        );
        let lance = json!({"slots": {"memory": "memory-lancedb"}, "allow": ["memory-lancedb"]});
        assert_eq!(p(lance), [false, false, true]);
        assert_eq!(p(json!({"enabled": false})), [false, false, false]);
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
