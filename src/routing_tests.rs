//! Tests of routing: binding tiers and their quirks, session-key forms, canonical keys.
use super::*;
use serde_json::json;

fn route(cfg: &Value, ch: &str, acct: Option<&str>, peer: Option<(&str, &str)>) -> ResolvedRoute {
    resolve_route(cfg, ch, acct, peer, None, None)
}

#[test]
fn default_route_without_bindings() {
    let r = route(&json!({}), "whatsapp", None, Some(("dm", "+15551234567")));
    assert_eq!(r.agent_id, "main");
    assert_eq!(r.account_id, "default");
    assert_eq!(r.session_key, "agent:main:main");
    assert_eq!(r.main_session_key, "agent:main:main");
    assert_eq!(r.matched_by, MatchedBy::Default);
    assert_eq!(r.matched_by.as_str(), "default");
}

#[test]
fn dm_scopes() {
    let peer = Some(("dm", "+15551234567"));
    let per_peer = json!({"session": {"dmScope": "per-peer"}});
    assert_eq!(
        route(&per_peer, "whatsapp", None, peer).session_key,
        "agent:main:dm:+15551234567"
    );
    let per_channel = json!({"session": {"dmScope": "per-channel-peer"}});
    assert_eq!(
        route(&per_channel, "WhatsApp ", None, peer).session_key,
        "agent:main:whatsapp:dm:+15551234567"
    );
    // No peer at all: the main key, whatever the scope.
    assert_eq!(
        route(&per_peer, "whatsapp", None, None).session_key,
        "agent:main:main"
    );
}

#[test]
fn identity_links_apply_only_to_per_peer_scopes() {
    let links = json!({"alice": ["telegram:111111111", "discord:222222222222222222"]});
    let cfg = json!({"session": {"dmScope": "per-peer", "identityLinks": links}});
    let r = route(&cfg, "telegram", None, Some(("dm", "111111111")));
    assert_eq!(r.session_key, "agent:main:dm:alice");
    let cfg = json!({"session": {"dmScope": "per-channel-peer", "identityLinks": links}});
    let r = route(&cfg, "discord", None, Some(("dm", "222222222222222222")));
    assert_eq!(r.session_key, "agent:main:discord:dm:alice");
    let cfg = json!({"session": {"identityLinks": links}});
    let r = route(&cfg, "discord", None, Some(("dm", "222222222222222222")));
    assert_eq!(r.session_key, "agent:main:main");
}

#[test]
fn peer_tier_beats_account_tier() {
    let cfg = json!({"bindings": [
        {"agentId": "a", "match": {"channel": "whatsapp", "accountId": "biz", "peer": {"kind": "dm", "id": "+1000"}}},
        {"agentId": "b", "match": {"channel": "whatsapp", "accountId": "biz"}}
    ]});
    let r = route(&cfg, "whatsapp", Some("biz"), Some(("dm", "+1000")));
    assert_eq!((r.agent_id.as_str(), r.matched_by), ("a", MatchedBy::Peer));
    assert_eq!(r.session_key, "agent:a:main");
    let r = route(&cfg, "whatsapp", Some("biz"), Some(("dm", "+2000")));
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("b", MatchedBy::Account)
    );
}

#[test]
fn peer_kind_in_binding_is_case_insensitive_id_is_not() {
    let cfg = json!({"bindings": [
        {"agentId": "a", "match": {"channel": "discord", "peer": {"kind": "Channel", "id": "C1"}}}
    ]});
    let r = route(&cfg, "discord", None, Some(("channel", "C1")));
    assert_eq!(r.matched_by, MatchedBy::Peer);
    assert_eq!(r.session_key, "agent:a:discord:channel:c1");
    let r = route(&cfg, "discord", None, Some(("channel", "c1")));
    assert_eq!(r.matched_by, MatchedBy::Default);
}

#[test]
fn guild_tier_and_its_peer_quirk() {
    let cfg = json!({"bindings": [
        {"agentId": "chan", "match": {"channel": "discord", "accountId": "default", "peer": {"kind": "channel", "id": "c1"}}},
        {"agentId": "guild", "match": {"channel": "discord", "guildId": "g1", "peer": {"kind": "channel", "id": "other"}}},
        {"agentId": "acct", "match": {"channel": "discord"}}
    ]});
    let peer = Some(("channel", "c1"));
    let r = resolve_route(&cfg, "discord", Some("default"), peer, Some("g1"), None);
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("chan", MatchedBy::Peer)
    );
    // Tier 2 ignores the binding's own peer: any channel in g1 lands on "guild".
    let peer = Some(("channel", "c2"));
    let r = resolve_route(&cfg, "discord", None, peer, Some(" g1 "), None);
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("guild", MatchedBy::Guild)
    );
    assert_eq!(r.session_key, "agent:guild:discord:channel:c2");
    let r = resolve_route(&cfg, "discord", None, peer, Some("g2"), None);
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("acct", MatchedBy::Account)
    );
}

#[test]
fn team_tier() {
    let cfg = json!({"bindings": [
        {"agentId": "acct", "match": {"channel": "slack"}},
        {"agentId": "team", "match": {"channel": "slack", "teamId": "T1"}}
    ]});
    let r = resolve_route(
        &cfg,
        "slack",
        None,
        Some(("channel", "x")),
        None,
        Some("T1"),
    );
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("team", MatchedBy::Team)
    );
}

#[test]
fn account_matching_rules() {
    let cfg = json!({"bindings": [{"agentId": "defaultAcct", "match": {"channel": "whatsapp"}}]});
    let r = route(&cfg, "whatsapp", Some("  "), Some(("dm", "+1")));
    assert_eq!(r.agent_id, "defaultacct");
    assert_eq!(r.matched_by, MatchedBy::Account);
    let r = route(&cfg, "whatsapp", Some("biz"), Some(("dm", "+1")));
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("main", MatchedBy::Default)
    );
    // Exact and case-sensitive; the inbound account id is trimmed but keeps its case.
    let cfg = json!({"bindings": [{"agentId": "x", "match": {"channel": "whatsapp", "accountId": "Biz"}}]});
    assert_eq!(
        route(&cfg, "whatsapp", Some(" Biz "), None).matched_by,
        MatchedBy::Account
    );
    assert_eq!(
        route(&cfg, "whatsapp", Some(" Biz "), None).account_id,
        "Biz"
    );
    assert_eq!(
        route(&cfg, "whatsapp", Some("biz"), None).matched_by,
        MatchedBy::Default
    );
}

#[test]
fn star_account_is_the_channel_tier_after_account_tier() {
    let cfg = json!({"bindings": [
        {"agentId": "any", "match": {"channel": "whatsapp", "accountId": "*"}},
        {"agentId": "exact", "match": {"channel": "whatsapp", "accountId": "biz"}}
    ]});
    let r = route(&cfg, "whatsapp", Some("biz"), Some(("dm", "+1")));
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("exact", MatchedBy::Account)
    );
    let r = route(&cfg, "whatsapp", Some("other"), Some(("dm", "+1")));
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("any", MatchedBy::Channel)
    );
}

#[test]
fn unknown_bound_agent_falls_back_to_default_agent() {
    let cfg = json!({
        "agents": {"list": [{"id": "home", "default": true}, {"id": "Work"}]},
        "bindings": [
            {"agentId": "ghost", "match": {"channel": "telegram"}},
            {"agentId": "WORK", "match": {"channel": "discord"}}
        ]
    });
    let r = route(&cfg, "telegram", None, Some(("dm", "1")));
    assert_eq!(
        (r.agent_id.as_str(), r.matched_by),
        ("home", MatchedBy::Account)
    );
    assert_eq!(r.session_key, "agent:home:main");
    assert_eq!(route(&cfg, "discord", None, None).agent_id, "work");
    assert_eq!(route(&cfg, "signal", None, None).agent_id, "home");
}

#[test]
fn group_and_channel_keys_are_lowercased() {
    let cfg = json!({});
    let r = route(
        &cfg,
        "telegram",
        None,
        Some(("group", "-1001234567890:topic:42")),
    );
    assert_eq!(
        r.session_key,
        "agent:main:telegram:group:-1001234567890:topic:42"
    );
    let r = route(&cfg, "Slack", None, Some(("channel", "C0ABC")));
    assert_eq!(r.session_key, "agent:main:slack:channel:c0abc");
    let r = route(&cfg, "discord", None, Some(("group", "  ")));
    assert_eq!(r.session_key, "agent:main:discord:group:unknown");
}

#[test]
fn telegram_topics_and_threads() {
    assert_eq!(telegram_forum_thread_id(false, Some(7)), None);
    assert_eq!(telegram_forum_thread_id(true, None), Some(1));
    assert_eq!(telegram_forum_thread_id(true, Some(42)), Some(42));
    let peer = telegram_group_peer_id(-1001234567890, Some(42));
    assert_eq!(peer, "-1001234567890:topic:42");
    assert_eq!(telegram_group_peer_id(-5, None), "-5");
    let base = route(&json!({}), "telegram", None, Some(("dm", "99"))).session_key;
    assert_eq!(
        thread_session_key(&base, Some("77"), true),
        "agent:main:main:thread:77"
    );
    let cfg = json!({"session": {"dmScope": "per-channel-peer"}});
    let base = route(&cfg, "telegram", None, Some(("dm", "99"))).session_key;
    assert_eq!(
        thread_session_key(&base, Some("77"), true),
        "agent:main:telegram:dm:99:thread:77"
    );
}

#[test]
fn discord_thread_is_its_own_channel() {
    let cfg = json!({});
    let thread = route(&cfg, "discord", None, Some(("channel", "555"))).session_key;
    assert_eq!(
        thread_session_key(&thread, Some("555"), false),
        "agent:main:discord:channel:555"
    );
    let parent = build_agent_session_key("main", "discord", Some(("channel", "444")), "main", None);
    assert_eq!(parent, "agent:main:discord:channel:444");
}

#[test]
fn canonical_keys() {
    let cfg = json!({});
    assert_eq!(canonical_session_key(&cfg, "main"), "agent:main:main");
    assert_eq!(
        canonical_session_key(&cfg, " agent:main:main "),
        "agent:main:main"
    );
    // Upstream compares the raw key with the normalised main key, so odd casing is kept.
    assert_eq!(
        canonical_session_key(&cfg, "agent:Ops:main"),
        "agent:Ops:main"
    );
    assert_eq!(
        canonical_session_key(&cfg, "agent:ops:main"),
        "agent:ops:main"
    );
    assert_eq!(
        canonical_session_key(&cfg, "agent:ops:discord:channel:1"),
        "agent:ops:discord:channel:1"
    );
    // Non-main agent keys are kept exactly as sent.
    assert_eq!(
        canonical_session_key(&cfg, "agent:Ops:Custom"),
        "agent:Ops:Custom"
    );
    assert_eq!(canonical_session_key(&cfg, "global"), "global");
    assert_eq!(canonical_session_key(&cfg, "unknown"), "unknown");
    assert_eq!(
        canonical_session_key(&cfg, "my-notes"),
        "agent:main:my-notes"
    );
    assert_eq!(
        canonical_session_key(&cfg, "subagent:x"),
        "agent:main:subagent:x"
    );
    let cfg = json!({"agents": {"list": [{"id": "ops"}, {"id": "Home", "default": true}]}});
    assert_eq!(canonical_session_key(&cfg, "main"), "agent:home:main");
    assert_eq!(canonical_session_key(&cfg, "notes"), "agent:home:notes");
    let cfg = json!({"session": {"scope": "global"}});
    assert_eq!(canonical_session_key(&cfg, "main"), "global");
    assert_eq!(canonical_session_key(&cfg, "agent:main:main"), "global");
    assert_eq!(main_session_key(&json!({})), "agent:main:main");
}

#[test]
fn key_parsing_helpers() {
    assert_eq!(
        parse_agent_session_key("agent:main:telegram:dm:1"),
        Some(("main".into(), "telegram:dm:1".into()))
    );
    assert_eq!(parse_agent_session_key("agent:main"), None);
    assert_eq!(parse_agent_session_key("hook:abc:def"), None);
    assert_eq!(agent_id_from_session_key("agent:Work:main"), "work");
    assert_eq!(agent_id_from_session_key("global"), "main");
    assert!(is_thread_session_key(
        "agent:main:telegram:group:-1:TOPIC:3"
    ));
    assert!(!is_thread_session_key("agent:main:discord:channel:1"));
    assert_eq!(
        thread_parent_session_key("agent:main:main:thread:77").as_deref(),
        Some("agent:main:main")
    );
    assert_eq!(thread_parent_session_key("agent:main:main"), None);
    assert_eq!(normalize_main_key(Some(" Main ")), "main");
    assert_eq!(normalize_main_key(None), "main");
}
