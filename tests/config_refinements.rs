//! The hand-written refinements (schema-report §3.1–§3.10) accept and reject what upstream's
//! zod schema and `validateConfigObjectWithPlugins` do, with their exact paths and messages
//! (the expected strings were produced by running upstream on the same configs).

use moltbot::config;
use serde_json::{json, Value};

fn issues(v: Value) -> Vec<(String, String)> {
    config::check(&v)
        .into_iter()
        .map(|i| (i.path, i.message))
        .collect()
}

fn one(path: &str, message: &str) -> Vec<(String, String)> {
    vec![(path.to_string(), message.to_string())]
}

fn ok(v: Value) {
    assert_eq!(issues(v.clone()), vec![], "rejected {v}");
}

const TOOLS_SUFFIX: &str = " cannot set both allow and alsoAllow in the same scope (merge alsoAllow into allow, or remove allow and use profile + alsoAllow)";

#[test]
fn open_dm_policy_needs_star() {
    let msg = |ch: &str, key: &str| match key {
        "dm" => format!(
            "channels.{ch}.dm.policy=\"open\" requires channels.{ch}.dm.allowFrom to include \"*\""
        ),
        _ => format!(
            "channels.{ch}.dmPolicy=\"open\" requires channels.{ch}.allowFrom to include \"*\""
        ),
    };
    for ch in [
        "telegram",
        "whatsapp",
        "signal",
        "imessage",
        "bluebubbles",
        "msteams",
    ] {
        let cfg = json!({"channels": {ch: {"dmPolicy": "open", "allowFrom": ["x"]}}});
        assert_eq!(
            issues(cfg),
            one(&format!("channels.{ch}.allowFrom"), &msg(ch, ""))
        );
        ok(json!({"channels": {ch: {"dmPolicy": "open", "allowFrom": [" * "]}}}));
    }
    for ch in ["telegram", "signal", "imessage"] {
        let cfg = json!({"channels": {ch: {"accounts": {"a": {"dmPolicy": "open"}}}}});
        assert_eq!(
            issues(cfg),
            one(&format!("channels.{ch}.accounts.a.allowFrom"), &msg(ch, ""))
        );
    }
    for ch in ["whatsapp", "bluebubbles"] {
        let cfg = json!({"channels": {ch: {"accounts": {"a": {"dmPolicy": "open"}}}}});
        let text = format!(
            "channels.{ch}.accounts.*.dmPolicy=\"open\" requires allowFrom to include \"*\""
        );
        assert_eq!(
            issues(cfg),
            one(&format!("channels.{ch}.accounts.a.allowFrom"), &text)
        );
    }
    for ch in ["discord", "slack", "googlechat"] {
        let top = json!({"channels": {ch: {"dm": {"policy": "open", "allowFrom": [1]}}}});
        assert_eq!(
            issues(top),
            one(&format!("channels.{ch}.dm.allowFrom"), &msg(ch, "dm"))
        );
        let acct = json!({"channels": {ch: {"accounts": {"a": {"dm": {"policy": "open"}}}}}});
        assert_eq!(
            issues(acct),
            one(
                &format!("channels.{ch}.accounts.a.dm.allowFrom"),
                &msg(ch, "dm")
            )
        );
        ok(json!({"channels": {ch: {"dm": {"policy": "open", "allowFrom": ["*"]}}}}));
        ok(json!({"channels": {ch: {"dm": {}}}}));
    }
}

#[test]
fn allow_and_also_allow_conflict() {
    let both = json!({"allow": ["a"], "alsoAllow": ["b"]});
    let cases = [
        (json!({"tools": both}), "tools", "tools"),
        (
            json!({"tools": {"byProvider": {"openai": both}}}),
            "tools.byProvider.openai",
            "tools.byProvider policy",
        ),
        (
            json!({"tools": {"sandbox": {"tools": both}}}),
            "tools.sandbox.tools",
            "tools policy",
        ),
        (
            json!({"tools": {"subagents": {"tools": both}}}),
            "tools.subagents.tools",
            "tools policy",
        ),
        (
            json!({"agents": {"list": [{"id": "a", "tools": both}]}}),
            "agents.list.0.tools",
            "agent tools",
        ),
        (
            json!({"agents": {"list": [{"id": "a", "tools": {"byProvider": {"p": both}}}]}}),
            "agents.list.0.tools.byProvider.p",
            "tools.byProvider policy",
        ),
        (
            json!({"channels": {"discord": {"accounts": {"a": {"guilds": {"g": {"channels": {"c": {"toolsBySender": {"u": both}}}}}}}}}}),
            "channels.discord.accounts.a.guilds.g.channels.c.toolsBySender.u",
            "tools policy",
        ),
        (
            json!({"channels": {"msteams": {"teams": {"t": {"tools": both}}}}}),
            "channels.msteams.teams.t.tools",
            "tools policy",
        ),
        (
            json!({"channels": {"whatsapp": {"groups": {"g": {"tools": both}}}}}),
            "channels.whatsapp.groups.g.tools",
            "tools policy",
        ),
    ];
    for (cfg, path, scope) in cases {
        assert_eq!(issues(cfg), one(path, &format!("{scope}{TOOLS_SUFFIX}")));
    }
    ok(json!({"tools": {"allow": [], "alsoAllow": ["b"]}}));
    ok(json!({"tools": {"allow": ["a"], "deny": ["b"]}}));
}

#[test]
fn heartbeat_every_and_active_hours() {
    let hb = |h: Value| json!({"agents": {"defaults": {"heartbeat": h}}});
    for every in ["1.5h", "10", "2d", "10M", "0m", "500ms", ""] {
        ok(hb(json!({"every": every})));
    }
    for every in ["5 minutes", " ", "-1m", "1.", "3 h"] {
        assert_eq!(
            issues(hb(json!({"every": every}))),
            one(
                "agents.defaults.heartbeat.every",
                "invalid duration (use ms, s, m, h)"
            )
        );
    }
    // Without `every` the active hours are not looked at.
    ok(hb(json!({"activeHours": {"start": "9:00"}})));
    ok(hb(
        json!({"every": "30m", "activeHours": {"start": "00:00", "end": "24:00"}}),
    ));
    let bad = json!({"agents": {"list": [{"id": "a", "heartbeat": {"every": "x", "activeHours": {"start": "24:00", "end": "24:30"}}}]}});
    assert_eq!(
        issues(bad),
        vec![
            (
                "agents.list.0.heartbeat.every".into(),
                "invalid duration (use ms, s, m, h)".into()
            ),
            (
                "agents.list.0.heartbeat.activeHours.start".into(),
                "invalid time (start cannot be 24:00)".into()
            ),
            (
                "agents.list.0.heartbeat.activeHours.end".into(),
                "invalid time (24:00 is the only allowed 24:xx value)".into()
            ),
        ]
    );
    assert_eq!(
        issues(hb(json!({"every": "1h", "activeHours": {"end": "7:60"}}))),
        one(
            "agents.defaults.heartbeat.activeHours.end",
            "invalid time (use \"HH:MM\" 24h format)"
        )
    );
}

#[test]
fn broadcast_targets_must_be_listed_agents() {
    let cfg = json!({"agents": {"list": [{"id": "a"}]}, "broadcast": {"strategy": "parallel", "peer1": ["a", "b"], "5": ["c"]}});
    assert_eq!(
        issues(cfg),
        vec![
            (
                "broadcast.5.0".into(),
                "Unknown agent id \"c\" (not in agents.list).".into()
            ),
            (
                "broadcast.peer1.1".into(),
                "Unknown agent id \"b\" (not in agents.list).".into()
            ),
        ]
    );
    ok(json!({"broadcast": {"peer1": ["b"]}}));
    ok(json!({"agents": {"list": [{"id": "a"}]}, "broadcast": {"p": ["a"]}}));
    let case = json!({"agents": {"list": [{"id": "Main"}]}, "broadcast": {"p": ["main"]}});
    assert_eq!(issues(case)[0].0, "broadcast.p.0");
}

#[test]
fn slack_http_mode_needs_signing_secret() {
    assert_eq!(
        issues(json!({"channels": {"slack": {"mode": "http", "signingSecret": ""}}})),
        one(
            "channels.slack.signingSecret",
            "channels.slack.mode=\"http\" requires channels.slack.signingSecret"
        )
    );
    let accounts = json!({"channels": {"slack": {"accounts": {"a": {"mode": "http"}, "b": {"mode": "http", "enabled": false}, "c": {"mode": "http", "signingSecret": "s"}}}}});
    assert_eq!(
        issues(accounts),
        one("channels.slack.accounts.a.signingSecret", "channels.slack.accounts.*.mode=\"http\" requires channels.slack.signingSecret or channels.slack.accounts.*.signingSecret")
    );
    ok(
        json!({"channels": {"slack": {"mode": "http", "signingSecret": "s", "accounts": {"a": {}}}}}),
    );
    ok(json!({"channels": {"slack": {"accounts": {"a": {}}}}}));
}

#[test]
fn telegram_custom_commands() {
    let cmd = |c: &str, d: &str| json!({"command": c, "description": d});
    let cfg = json!({"channels": {"telegram": {"customCommands": [cmd("", "d"), cmd("/Bad-Name", "d"), cmd("/ok", "  "), cmd("/OK", "x"), cmd("//foo", "d"), cmd("///x", "d")]}}});
    assert_eq!(
        issues(cfg),
        vec![
            ("channels.telegram.customCommands.0.command".into(), "Telegram custom command is missing a command name.".into()),
            ("channels.telegram.customCommands.1.command".into(), "Telegram custom command \"/bad-name\" is invalid (use a-z, 0-9, underscore; max 32 chars).".into()),
            ("channels.telegram.customCommands.2.description".into(), "Telegram custom command \"/ok\" is missing a description.".into()),
            ("channels.telegram.customCommands.5.command".into(), "Telegram custom command \"//x\" is invalid (use a-z, 0-9, underscore; max 32 chars).".into()),
        ]
    );
    let acct = json!({"channels": {"telegram": {"accounts": {"a": {"customCommands": [cmd("a b", "d")]}}}}});
    assert_eq!(
        issues(acct)[0].0,
        "channels.telegram.accounts.a.customCommands.0.command"
    );
    ok(
        json!({"channels": {"telegram": {"customCommands": [cmd(" /Status_2 ", "Show status"), cmd("status_2", "dup is fine")]}}}),
    );
}

#[test]
fn safe_executables() {
    let msg = "expected safe executable name or path";
    for good in [
        "signal-cli",
        "/Applications/My App/bin",
        "~/bin/x",
        ".hidden",
        "C:\\x y",
        "a+b.c_d-e",
    ] {
        ok(
            json!({"channels": {"signal": {"cliPath": good}, "imessage": {"accounts": {"a": {"cliPath": good}}}}}),
        );
    }
    for bad in ["imsg; rm -rf /", "-x", "a b", "'x'", "", "x\ny"] {
        let cfg = json!({"channels": {"signal": {"accounts": {"a": {"cliPath": bad}}}, "imessage": {"cliPath": bad}}});
        assert_eq!(
            issues(cfg),
            vec![
                ("channels.signal.accounts.a.cliPath".into(), msg.into()),
                ("channels.imessage.cliPath".into(), msg.into()),
            ],
            "{bad:?}"
        );
    }
    for command in [json!(["a|b", "x"]), json!([])] {
        let cfg = json!({"audio": {"transcription": {"command": command}}});
        assert_eq!(issues(cfg), one("audio.transcription.command.0", msg));
    }
    ok(json!({"audio": {"transcription": {"command": ["whisper", "--model", "x|y"]}}}));
}

#[test]
fn hex_colors_and_browser_profiles() {
    let color = "expected hex color (RRGGBB)";
    assert_eq!(
        issues(json!({"ui": {"seamColor": "red"}})),
        one("ui.seamColor", color)
    );
    assert_eq!(
        issues(json!({"ui": {"seamColor": "#123456\n"}})),
        one("ui.seamColor", color)
    );
    ok(json!({"ui": {"seamColor": "#FF00aa"}}));
    ok(json!({"ui": {"seamColor": "ff00aa"}}));
    let profiles = |p: Value| json!({"browser": {"profiles": p}});
    ok(profiles(
        json!({"work": {"cdpPort": 9222, "color": "#112233"}, "ok-1": {"cdpUrl": "http://x", "color": "#112233"}}),
    ));
    assert_eq!(
        issues(profiles(
            json!({"Work": {"cdpPort": 9222, "color": "#112233"}})
        )),
        one("browser.profiles.Work", "Invalid key in record")
    );
    // The value under a bad key is not checked at all.
    assert_eq!(
        issues(profiles(json!({"A": {"foo": 1}}))),
        one("browser.profiles.A", "Invalid key in record")
    );
    // The colour check does not stop the port check; a port of 0 is not "set".
    assert_eq!(
        issues(profiles(json!({"w": {"cdpPort": 0, "color": "bad"}}))),
        vec![
            (
                "browser.profiles.w.cdpPort".into(),
                "Too small: expected number to be >=1".into()
            ),
            ("browser.profiles.w.color".into(), color.into()),
            (
                "browser.profiles.w".into(),
                "Profile must set cdpPort or cdpUrl".into()
            ),
        ]
    );
}

#[test]
fn integers_are_safe_integers() {
    assert_eq!(
        issues(json!({"gateway": {"port": 9_007_199_254_740_993_u64}})),
        one(
            "gateway.port",
            "Too big: expected int to be <=9007199254740991"
        )
    );
    assert_eq!(
        issues(json!({"agents": {"defaults": {"maxConcurrent": -9_007_199_254_740_993_i64}}})),
        vec![
            (
                "agents.defaults.maxConcurrent".into(),
                "Too small: expected int to be >=-9007199254740991".into()
            ),
            (
                "agents.defaults.maxConcurrent".into(),
                "Too small: expected number to be >0".into()
            ),
        ]
    );
    ok(json!({"agents": {"defaults": {"heartbeat": {"ackMaxChars": 9_007_199_254_740_991_u64}}}}));
}

#[test]
fn refinements_skip_values_with_type_errors() {
    // A type error inside `dm` stops its refinement; one beside it does not.
    assert_eq!(
        issues(json!({"channels": {"discord": {"dm": {"policy": "open", "enabled": "yes"}}}})),
        one(
            "channels.discord.dm.enabled",
            "Invalid input: expected boolean, received string"
        )
    );
    assert_eq!(
        issues(json!({"channels": {"discord": {"dm": {"policy": "open"}, "textChunkLimit": "x"}}}))
            .len(),
        2
    );
    // The root check (broadcast) is stopped by any non-size issue, not by a size one.
    let bc = |gw: Value| json!({"agents": {"list": [{"id": "a"}]}, "broadcast": {"p": ["b"]}, "gateway": gw});
    assert_eq!(issues(bc(json!({"port": "x"}))).len(), 1);
    assert_eq!(
        issues(bc(json!({"port": 0}))),
        vec![
            (
                "gateway.port".into(),
                "Too small: expected number to be >0".into()
            ),
            (
                "broadcast.p.0".into(),
                "Unknown agent id \"b\" (not in agents.list).".into()
            ),
        ]
    );
    // Issues come in zod's order: children, the object's own unknown keys, its refinements.
    let tg = json!({"channels": {"telegram": {"dmPolicy": "open", "accounts": {"a": {"dmPolicy": "open"}, "b": {"bogus": 1}}}}});
    let paths: Vec<String> = issues(tg).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "channels.telegram.accounts.a.allowFrom",
            "channels.telegram.accounts.b"
        ]
    );
}

fn dup_message(conflicts: &[&str]) -> String {
    let mut lines = vec![
        "Duplicate agentDir detected (multi-agent config).".to_string(),
        "Each agent must have a unique agentDir; sharing it causes auth/session state collisions and token invalidation.".into(),
        String::new(),
        "Conflicts:".into(),
    ];
    lines.extend(conflicts.iter().map(|c| c.to_string()));
    lines.push(String::new());
    lines.push("Fix: remove the shared agents.list[].agentDir override (or give each agent its own directory).".into());
    lines.push("If you want to share credentials, copy auth-profiles.json instead of sharing the entire agentDir.".into());
    lines.join("\n")
}

#[test]
fn duplicate_agent_dirs() {
    let cfg = json!({"agents": {"list": [{"id": "a", "agentDir": "/tmp/ad"}, {"id": "b", "agentDir": "/tmp/x/../ad/"}]}});
    assert_eq!(
        issues(cfg),
        one("agents.list", &dup_message(&["- /tmp/ad: \"a\", \"b\""]))
    );
    // A bound agent without a list entry uses the default `<state>/agents/<id>/agent`.
    let state = moltbot::state::paths::resolve_state_dir();
    let default_dir = state.join("agents").join("x").join("agent");
    let dir = default_dir.to_string_lossy();
    let bound = json!({"agents": {"list": [{"id": "a", "agentDir": dir}]}, "bindings": [{"agentId": " X ", "match": {"channel": "discord"}}]});
    assert_eq!(
        issues(bound),
        one(
            "agents.list",
            &dup_message(&[&format!("- {dir}: \"a\", \"x\"")])
        )
    );
    ok(
        json!({"agents": {"list": [{"id": "a", "agentDir": "/tmp/AD"}, {"id": "b", "agentDir": "/tmp/ad"}, {"id": "c"}]}}),
    );
}

#[test]
fn avatar_stays_in_workspace() {
    let agent = |avatar: &str| json!({"agents": {"list": [{"id": "a", "workspace": "/tmp/ws", "identity": {"avatar": avatar}}]}});
    let kind = "identity.avatar must be a workspace-relative path, http(s) URL, or data URI.";
    let outside = "identity.avatar must stay within the agent workspace.";
    for good in [
        "avatars/a.png",
        "/tmp/ws/a.png",
        "HTTPS://x/y.png",
        "data:image/png;base64,AA",
        "C:\\x.png",
        "  ",
    ] {
        ok(agent(good));
    }
    for (bad, msg) in [
        ("~/x.png", kind),
        ("ftp://x/y.png", kind),
        ("../x.png", outside),
        ("..x.png", outside),
        ("/etc/x.png", outside),
    ] {
        assert_eq!(
            issues(agent(bad)),
            one("agents.list.0.identity.avatar", msg),
            "{bad}"
        );
    }
    // Without its own workspace the default agent uses agents.defaults.workspace, others ~/clawd-<id>.
    let defaults = json!({"agents": {"defaults": {"workspace": "/tmp/dws"}, "list": [
        {"id": "a", "identity": {"avatar": "/tmp/dws/x.png"}}, {"id": "b", "identity": {"avatar": "/tmp/dws/x.png"}}]}});
    assert_eq!(
        issues(defaults),
        one("agents.list.1.identity.avatar", outside)
    );
    let home = moltbot::state::paths::home_dir();
    let own = home.join("clawd-b").join("x.png");
    ok(
        json!({"agents": {"list": [{"id": "a"}, {"id": "B", "identity": {"avatar": own.to_string_lossy()}}]}}),
    );
}

#[test]
fn heartbeat_targets() {
    let cfg = json!({"agents": {"defaults": {"heartbeat": {"target": "  "}}, "list": [
        {"id": "a", "heartbeat": {"target": "Telegram"}}, {"id": "b", "heartbeat": {"target": "gchat"}},
        {"id": "c", "heartbeat": {"target": "nope "}}, {"id": "d", "heartbeat": {"target": "LAST"}},
        {"id": "e", "heartbeat": {"target": "matrix"}}, {"id": "f", "heartbeat": {"target": "none"}}]}});
    assert_eq!(
        issues(cfg),
        vec![
            (
                "agents.defaults.heartbeat.target".into(),
                "heartbeat target must not be empty".into()
            ),
            (
                "agents.list.2.heartbeat.target".into(),
                "unknown heartbeat target: nope ".into()
            ),
        ]
    );
}

#[test]
fn plugin_ids_and_load_paths() {
    let cfg = json!({"plugins": {"entries": {"nope": {}}, "allow": ["x", " discord", ""], "deny": ["y"], "slots": {"memory": " zz "}}, "channels": {"foo": {}, "defaults": {}}});
    assert_eq!(
        issues(cfg),
        vec![
            (
                "plugins.entries.nope".into(),
                "plugin not found: nope".into()
            ),
            ("plugins.allow".into(), "plugin not found: x".into()),
            ("plugins.allow".into(), "plugin not found:  discord".into()),
            ("plugins.deny".into(), "plugin not found: y".into()),
            ("plugins.slots.memory".into(), "plugin not found: zz".into()),
            ("channels.foo".into(), "unknown channel id: foo".into()),
        ]
    );
    assert_eq!(
        issues(json!({"plugins": {"load": {"paths": ["/nonexistent/x", ""]}}})),
        one(
            "plugins.load.paths",
            "plugin: plugin path not found: /nonexistent/x"
        )
    );
    ok(
        json!({"plugins": {"slots": {"memory": "NONE"}, "allow": ["discord"], "entries": {"discord": {"enabled": true}}}}),
    );
}

#[test]
fn plugin_configs_follow_their_manifest_schema() {
    let extra = "invalid config: <root>: must NOT have additional properties";
    assert_eq!(
        issues(json!({"plugins": {"entries": {"discord": {"config": {"a": 1, "b": 2}}}}})),
        vec![
            ("plugins.entries.discord.config".into(), extra.into()),
            ("plugins.entries.discord.config".into(), extra.into()),
        ]
    );
    // Checked when present even if plugins are disabled; a slotted plugin is checked as `{}`.
    let disabled =
        json!({"plugins": {"enabled": false, "entries": {"discord": {"config": {"a": 1}}}}});
    assert_eq!(
        issues(disabled),
        one("plugins.entries.discord.config", extra)
    );
    assert_eq!(
        issues(json!({"plugins": {"slots": {"memory": "memory-lancedb"}}})),
        one(
            "plugins.entries.memory-lancedb.config",
            "invalid config: <root>: must have required property 'embedding'"
        )
    );
    ok(
        json!({"plugins": {"entries": {"discord": {"enabled": true, "config": {}}, "memory-lancedb": {"enabled": true}}}}),
    );
}
