//! Channel refinements of upstream's zod schema (schema-report §3.1 open DM policies, §3.5 Slack
//! HTTP mode, §3.6 Telegram custom commands, §3.7 `cliPath`), as rules for `refine`'s walk.
//!
//! zod fills `dmPolicy`/`dm.policy` (`pairing`) and Slack's `mode` (`socket`) before these run;
//! neither default is one that triggers a rule, so a missing value simply passes.

use serde_json::Value;

use super::refine::{js_entries, js_trim, js_truthy, safe_executable, Node, Rule};
use super::validate::Issue;

const DISCORD: &str =
    "channels.discord.dm.policy=\"open\" requires channels.discord.dm.allowFrom to include \"*\"";
const GOOGLECHAT: &str = "channels.googlechat.dm.policy=\"open\" requires channels.googlechat.dm.allowFrom to include \"*\"";
const SLACK: &str =
    "channels.slack.dm.policy=\"open\" requires channels.slack.dm.allowFrom to include \"*\"";
const TELEGRAM: &str =
    "channels.telegram.dmPolicy=\"open\" requires channels.telegram.allowFrom to include \"*\"";
const SIGNAL: &str =
    "channels.signal.dmPolicy=\"open\" requires channels.signal.allowFrom to include \"*\"";
const IMESSAGE: &str =
    "channels.imessage.dmPolicy=\"open\" requires channels.imessage.allowFrom to include \"*\"";
const WHATSAPP: &str =
    "channels.whatsapp.dmPolicy=\"open\" requires channels.whatsapp.allowFrom to include \"*\"";
const WHATSAPP_ACCOUNT: &str =
    "channels.whatsapp.accounts.*.dmPolicy=\"open\" requires allowFrom to include \"*\"";
const BLUEBUBBLES: &str = "channels.bluebubbles.dmPolicy=\"open\" requires channels.bluebubbles.allowFrom to include \"*\"";
const BLUEBUBBLES_ACCOUNT: &str =
    "channels.bluebubbles.accounts.*.dmPolicy=\"open\" requires allowFrom to include \"*\"";
const MSTEAMS: &str =
    "channels.msteams.dmPolicy=\"open\" requires channels.msteams.allowFrom to include \"*\"";

/// Accounts reuse the top-level wording except on WhatsApp and BlueBubbles. Rules on one node
/// run in table order, which is upstream's (open policy before custom commands).
#[rustfmt::skip]
pub(super) const RULES: &[Rule] = &[
    Rule { at: "channels.whatsapp.accounts.*", check: open_dm_policy, text: WHATSAPP_ACCOUNT },
    Rule { at: "channels.whatsapp", check: open_dm_policy, text: WHATSAPP },
    Rule { at: "channels.telegram.accounts.*", check: open_dm_policy, text: TELEGRAM },
    Rule { at: "channels.telegram.accounts.*", check: telegram_commands, text: "" },
    Rule { at: "channels.telegram", check: open_dm_policy, text: TELEGRAM },
    Rule { at: "channels.telegram", check: telegram_commands, text: "" },
    Rule { at: "channels.discord.dm", check: open_dm, text: DISCORD },
    Rule { at: "channels.discord.accounts.*.dm", check: open_dm, text: DISCORD },
    Rule { at: "channels.googlechat.dm", check: open_dm, text: GOOGLECHAT },
    Rule { at: "channels.googlechat.accounts.*.dm", check: open_dm, text: GOOGLECHAT },
    Rule { at: "channels.slack.dm", check: open_dm, text: SLACK },
    Rule { at: "channels.slack.accounts.*.dm", check: open_dm, text: SLACK },
    Rule { at: "channels.slack", check: slack_http, text: "" },
    Rule { at: "channels.signal.cliPath", check: safe_executable, text: "" },
    Rule { at: "channels.signal.accounts.*.cliPath", check: safe_executable, text: "" },
    Rule { at: "channels.signal.accounts.*", check: open_dm_policy, text: SIGNAL },
    Rule { at: "channels.signal", check: open_dm_policy, text: SIGNAL },
    Rule { at: "channels.imessage.cliPath", check: safe_executable, text: "" },
    Rule { at: "channels.imessage.accounts.*.cliPath", check: safe_executable, text: "" },
    Rule { at: "channels.imessage.accounts.*", check: open_dm_policy, text: IMESSAGE },
    Rule { at: "channels.imessage", check: open_dm_policy, text: IMESSAGE },
    Rule { at: "channels.bluebubbles.accounts.*", check: open_dm_policy, text: BLUEBUBBLES_ACCOUNT },
    Rule { at: "channels.bluebubbles", check: open_dm_policy, text: BLUEBUBBLES },
    Rule { at: "channels.msteams", check: open_dm_policy, text: MSTEAMS },
];

/// §3.1 for channels keyed `dmPolicy` + `allowFrom`.
fn open_dm_policy(node: &Node, message: &'static str, out: &mut Vec<Issue>) {
    require_star(node, "dmPolicy", message, out);
}

/// §3.1 for `dm` objects keyed `policy` + `allowFrom`.
fn open_dm(node: &Node, message: &'static str, out: &mut Vec<Issue>) {
    require_star(node, "policy", message, out);
}

/// An `open` policy must list `"*"` (entries are trimmed; numbers never match).
fn require_star(node: &Node, key: &str, message: &'static str, out: &mut Vec<Issue>) {
    if node.str(key) != Some("open") {
        return;
    }
    let allow = node.value.get("allowFrom").and_then(Value::as_array);
    let has_star = allow
        .into_iter()
        .flatten()
        .any(|v| v.as_str().map(js_trim) == Some("*"));
    if !has_star {
        out.push(Issue::new(&node.at("allowFrom"), message));
    }
}

/// §3.5: HTTP mode needs a signing secret, per enabled account (`??` fallback to the top one).
fn slack_http(node: &Node, _: &str, out: &mut Vec<Issue>) {
    let base_mode = node.str("mode").unwrap_or("socket");
    let top_secret = node.value.get("signingSecret").filter(|v| !v.is_null());
    if base_mode == "http" && !top_secret.is_some_and(js_truthy) {
        out.push(Issue::new(
            &node.at("signingSecret"),
            "channels.slack.mode=\"http\" requires channels.slack.signingSecret",
        ));
    }
    let accounts = node.value.get("accounts").and_then(Value::as_object);
    for (id, account) in accounts.map(js_entries).unwrap_or_default() {
        if !account.is_object() || account.get("enabled") == Some(&Value::Bool(false)) {
            continue;
        }
        let mode = account
            .get("mode")
            .and_then(Value::as_str)
            .unwrap_or(base_mode);
        let secret = account
            .get("signingSecret")
            .filter(|v| !v.is_null())
            .or(top_secret);
        if mode == "http" && !secret.is_some_and(js_truthy) {
            out.push(Issue::new(
                &node.at(&format!("accounts.{id}.signingSecret")),
                "channels.slack.accounts.*.mode=\"http\" requires channels.slack.signingSecret or channels.slack.accounts.*.signingSecret",
            ));
        }
    }
}

/// §3.6: each custom command needs a valid name and a description; the first problem of an
/// entry wins. Duplicates and native-command clashes are not the schema's concern.
fn telegram_commands(node: &Node, _: &str, out: &mut Vec<Issue>) {
    let commands = node.value.get("customCommands").and_then(Value::as_array);
    for (i, entry) in commands.into_iter().flatten().enumerate() {
        let field = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
        // The schema's transform normalises the name and the check normalises it again, so
        // two leading slashes are dropped in all.
        let name = normalize_command(&normalize_command(field("command")));
        let (key, message) = if name.is_empty() {
            (
                "command",
                "Telegram custom command is missing a command name.".to_string(),
            )
        } else if !is_command_name(&name) {
            ("command", format!("Telegram custom command \"/{name}\" is invalid (use a-z, 0-9, underscore; max 32 chars)."))
        } else if js_trim(field("description")).is_empty() {
            (
                "description",
                format!("Telegram custom command \"/{name}\" is missing a description."),
            )
        } else {
            continue;
        };
        out.push(Issue::new(
            &node.at(&format!("customCommands.{i}.{key}")),
            message,
        ));
    }
}

/// Trim, drop one leading `/`, trim again, lowercase.
fn normalize_command(raw: &str) -> String {
    let trimmed = js_trim(raw);
    js_trim(trimmed.strip_prefix('/').unwrap_or(trimmed)).to_lowercase()
}

fn is_command_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names() {
        assert_eq!(normalize_command(" /Foo "), "foo");
        assert_eq!(normalize_command(&normalize_command("//foo")), "foo");
        assert_eq!(normalize_command(&normalize_command("///x")), "/x");
        assert!(is_command_name("a_1") && !is_command_name("bad-name"));
        assert!(!is_command_name(&"a".repeat(33)));
    }
}
