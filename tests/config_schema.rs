//! The embedded schema accepts what upstream accepts and rejects what it rejects, with zod's
//! paths and messages (checked through the library's `config::check`).

use moltbot::config;
use serde_json::{json, Value};

fn issues(v: Value) -> Vec<(String, String)> {
    config::check(&v)
        .into_iter()
        .map(|i| (i.path, i.message))
        .collect()
}

#[test]
fn spec_example_config_is_valid() {
    let example = json!({
        "gateway": { "mode": "local", "bind": "loopback", "port": 18789, "auth": { "mode": "token", "token": "t" } },
        "agents": {
            "defaults": { "model": { "primary": "anthropic/claude-opus-4-5", "fallbacks": ["openai/gpt-5.2"] },
                          "workspace": "~/clawd", "maxConcurrent": 4, "timeoutSeconds": 600 },
            "list": [ { "id": "main", "default": true, "identity": { "name": "Clawd", "emoji": "🦞" } },
                      { "id": "work", "workspace": "~/clawd-work", "model": "openai/gpt-5.2" } ]
        },
        "bindings": [ { "agentId": "work", "match": { "channel": "discord", "guildId": "123456789012345678" } } ],
        "channels": {
            "discord": { "token": "x", "dm": { "policy": "pairing" },
                         "guilds": { "123456789012345678": { "requireMention": true, "channels": { "general": { "allow": true } } } } },
            "telegram": { "botToken": "123:abc", "allowFrom": ["tg:111111"], "groups": { "*": { "requireMention": true } } }
        },
        "session": { "dmScope": "main", "reset": { "mode": "daily", "atHour": 4 } }
    });
    assert_eq!(issues(example), vec![]);
}

#[test]
fn upstream_written_files_with_materialised_defaults_are_valid() {
    let written = json!({
        "commands": { "native": "auto", "nativeSkills": "auto" },
        "messages": { "ackReactionScope": "group-mentions" },
        "agents": { "defaults": { "maxConcurrent": 4, "subagents": { "maxConcurrent": 8 }, "compaction": { "mode": "safeguard" } } },
        "plugins": { "entries": { "discord": { "enabled": true }, "telegram": { "enabled": true } } },
        "channels": { "discord": { "groupPolicy": "allowlist", "dm": { "policy": "pairing" } }, "telegram": { "dmPolicy": "pairing", "groupPolicy": "allowlist", "streamMode": "partial" } },
        "meta": { "lastTouchedVersion": "2026.1.27-beta.1", "lastTouchedAt": "2026-01-27T10:00:00.000Z" },
        "wizard": { "lastRunAt": "2026-01-27T10:00:00.000Z", "lastRunMode": "local" },
        "gateway": { "mode": "local", "controlUi": { "allowInsecureAuth": true, "dangerouslyDisableDeviceAuth": false, "allowedOrigins": ["https://x.example"] } }
    });
    assert_eq!(issues(written), vec![]);
}

#[test]
fn rejections_carry_zod_paths_and_messages() {
    assert_eq!(
        issues(json!({"gateway": {"prot": 1}})),
        vec![("gateway".into(), "Unrecognized key: \"prot\"".into())]
    );
    assert_eq!(
        issues(json!({"gateway": {"mode": "cloud"}}))[0].0,
        "gateway.mode"
    );
    assert_eq!(
        issues(json!({"agents": {"defaults": {"timeoutSeconds": "x"}}}))[0],
        (
            "agents.defaults.timeoutSeconds".into(),
            "Invalid input: expected number, received string".into()
        )
    );
    assert_eq!(
        issues(json!({"channels": {"telegram": {"dmPolicy": "sometimes"}}}))[0].0,
        "channels.telegram.dmPolicy"
    );
    assert_eq!(
        issues(json!({"channels": {"discrod": {}}}))[0].1,
        "unknown channel id: discrod"
    );
    assert_eq!(
        issues(json!({"plugins": {"entries": {"nope": {}}}}))[0].1,
        "plugin not found: nope"
    );
    assert_eq!(
        issues(json!({"bogusTop": 1}))[0],
        ("".into(), "Unrecognized key: \"bogusTop\"".into())
    );
    assert_eq!(
        issues(json!([]))[0].1,
        "Invalid input: expected object, received array"
    );
    let discord_open = issues(json!({"channels": {"discord": {"dm": {"policy": "open"}}}}));
    assert_eq!(discord_open[0].1, "channels.discord.dm.policy=\"open\" requires channels.discord.dm.allowFrom to include \"*\"");
}

#[test]
fn docs_only_keys_are_rejected_as_upstream() {
    for bad in [
        json!({"gateway": {"customBindHost": "10.0.0.1"}}),
        json!({"session": {"heartbeatIdleMinutes": 5}}),
        json!({"agents": {"defaults": {"contextPruning": {"mode": "adaptive"}}}}),
        json!({"channels": {"discord": {"requireMention": true}}}),
        json!({"agents": {"list": [{"id": "a", "timeoutSeconds": 5}]}}),
    ] {
        assert!(!issues(bad.clone()).is_empty(), "accepted {bad}");
    }
}
