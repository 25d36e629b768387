//! Hand-written zod refinements: the rules upstream's zod schema enforces that `schema.json`
//! cannot express (schema-report §3.1–§3.8), run the way zod 4 runs them. This file owns the
//! walk, the skipping rule and the non-channel rules; `refine_channels` holds the channel rules
//! and `refine_agents` the checks `validateConfigObject` makes after zod (§3.10 items 2–3).

use serde_json::{Map, Value};
use std::collections::HashMap;

use super::refine_channels;
use super::validate::Issue;

pub use super::refine_agents::after_zod;

/// A rule attached to every config node whose path matches `at` (dotted, `*` = any one key or
/// index). `text` is the rule's message for rules shared by several places.
pub(super) struct Rule {
    pub at: &'static str,
    pub check: Check,
    pub text: &'static str,
}

pub(super) type Check = fn(&Node, &'static str, &mut Vec<Issue>);

/// The value a rule looks at and its zod path.
pub(super) struct Node<'a> {
    pub path: &'a str,
    pub value: &'a Value,
}

impl Node<'_> {
    /// The path of something below this node.
    pub fn at(&self, suffix: &str) -> String {
        join(self.path, suffix)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }
}

#[rustfmt::skip]
const RULES: &[Rule] = &[
    Rule { at: "browser.profiles.*.color", check: hex_color, text: "" },
    Rule { at: "browser.profiles.*", check: browser_profile, text: "" },
    Rule { at: "ui.seamColor", check: hex_color, text: "" },
    Rule { at: "agents.defaults.heartbeat", check: heartbeat, text: "" },
    Rule { at: "agents.list.*.heartbeat", check: heartbeat, text: "" },
    Rule { at: "audio.transcription.command", check: first_is_safe_executable, text: "" },
    Rule { at: "", check: broadcast_agent_ids, text: "" },
];

/// Tool policies are found by shape (the schema object has `alsoAllow`); these scopes get their
/// own wording, every other policy says "tools policy".
#[rustfmt::skip]
const TOOL_SCOPES: &[(&str, &str)] = &[
    ("tools", "tools"),
    ("agents.list.*.tools", "agent tools"),
    ("tools.byProvider.*", "tools.byProvider policy"),
    ("agents.list.*.tools.byProvider.*", "tools.byProvider policy"),
];

const TOOL_CONFLICT: &str = " cannot set both allow and alsoAllow in the same scope (merge alsoAllow into allow, or remove allow and use profile + alsoAllow)";

type KeyCheck = fn(&str) -> bool;

/// Record keys zod checks with a regex (the value under a bad key is not parsed at all).
const RECORD_KEYS: &[(&str, KeyCheck)] = &[("browser.profiles", is_profile_name)];

const INVALID_KEY: &str = "Invalid key in record";

/// The zod stage: the schema's issues plus every refinement zod would still run. zod skips a
/// refinement when the value under it already has a non-continuable issue, so those count.
pub fn zod_stage(config: &Value, schema: &Value, mut issues: Vec<Issue>) -> Vec<Issue> {
    let keys = record_key_issues(config);
    issues.retain(|i| !keys.iter().any(|k| within(&k.path, &i.path)));
    issues.extend(keys);
    let blocking: Vec<&Issue> = issues.iter().filter(|i| !continuable(i)).collect();
    let mut walk = Walk {
        blocking,
        order: HashMap::new(),
        out: Vec::new(),
    };
    walk.visit(schema, config, &mut Vec::new());
    let Walk { order, out, .. } = walk;
    let mut ranked: Vec<(usize, Issue)> = issues
        .into_iter()
        .map(|i| (position(&order, &i.path), i))
        .collect();
    ranked.extend(out);
    // Stable: at one node the schema's issues come before its refinements, as in zod.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, i)| i).collect()
}

/// Where zod reports an issue: at the walk position of its node, or of the nearest visited
/// ancestor (a missing key, or a value the walk does not enter).
fn position(order: &HashMap<String, usize>, path: &str) -> usize {
    let mut p = path;
    loop {
        if let Some(rank) = order.get(p) {
            return *rank;
        }
        match p.rfind('.') {
            Some(i) => p = &p[..i],
            None => return order.get("").copied().unwrap_or(usize::MAX),
        }
    }
}

/// Size checks (zod's min/max, including the safe-integer bounds) let refinements run; every
/// other schema issue (type, unknown key, enum, union, record key) stops them.
fn continuable(issue: &Issue) -> bool {
    issue.message.starts_with("Too small:") || issue.message.starts_with("Too big:")
}

/// Whether `path` is `base` or lies below it (everything lies below the root).
pub(super) fn within(base: &str, path: &str) -> bool {
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn record_key_issues(config: &Value) -> Vec<Issue> {
    let mut out = Vec::new();
    for (at, valid) in RECORD_KEYS {
        let map = super::rules::get(config, at).and_then(Value::as_object);
        for (key, _) in map.map(js_entries).unwrap_or_default() {
            if !valid(key) {
                out.push(Issue::new(&join(at, key), INVALID_KEY));
            }
        }
    }
    out
}

struct Walk<'a> {
    blocking: Vec<&'a Issue>,
    /// Each visited path's post-order position: the order zod reports issues in.
    order: HashMap<String, usize>,
    /// Refinement issues with the position of the node whose rule found them.
    out: Vec<(usize, Issue)>,
}

impl Walk<'_> {
    /// Post-order, children in zod's order (schema properties first, then record keys in
    /// JavaScript order), so issues come out in the order zod reports them.
    fn visit(&mut self, schema: &Value, value: &Value, segs: &mut Vec<String>) {
        let path = segs.join(".");
        for (key, child, child_schema) in children(schema, value) {
            let child_path = join(&path, &key);
            if self.is_bad_key(&child_path) {
                self.mark(child_path);
                continue;
            }
            segs.push(key);
            self.visit(child_schema, child, segs);
            segs.pop();
        }
        let rank = self.mark(path.clone());
        if self.blocked(&path) {
            return;
        }
        let node = Node { path: &path, value };
        let mut found = Vec::new();
        if has_property(schema, "alsoAllow") {
            tool_policy(&node, tool_scope(segs), &mut found);
        }
        for rule in RULES.iter().chain(refine_channels::RULES) {
            if matches(rule.at, segs) {
                (rule.check)(&node, rule.text, &mut found);
            }
        }
        self.out.extend(found.into_iter().map(|i| (rank, i)));
    }

    fn mark(&mut self, path: String) -> usize {
        let rank = self.order.len();
        self.order.insert(path, rank);
        rank
    }

    fn blocked(&self, path: &str) -> bool {
        self.blocking.iter().any(|i| within(path, &i.path))
    }

    fn is_bad_key(&self, path: &str) -> bool {
        self.blocking
            .iter()
            .any(|i| i.path == path && i.message == INVALID_KEY)
    }
}

/// A node's children with their schemas; values the schema does not describe are not visited.
fn children<'v, 's>(schema: &'s Value, value: &'v Value) -> Vec<(String, &'v Value, &'s Value)> {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|s| s.is_object());
            let mut out: Vec<(String, &Value, &Value)> = props
                .into_iter()
                .flatten()
                .filter_map(|(k, s)| map.get(k).map(|v| (k.clone(), v, s)))
                .collect();
            let in_props = |k: &str| props.is_some_and(|p| p.contains_key(k));
            if let Some(s) = extra {
                let rest = js_entries(map).into_iter().filter(|(k, _)| !in_props(k));
                out.extend(rest.map(|(k, v)| (k.clone(), v, s)));
            }
            out
        }
        Value::Array(items) => match schema.get("items") {
            Some(s) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v, s))
                .collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn has_property(schema: &Value, key: &str) -> bool {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key(key))
}

/// Whether a dotted pattern (`*` = any one segment, "" = the root) names this path.
pub(super) fn matches(pattern: &str, segs: &[String]) -> bool {
    if pattern.is_empty() {
        return segs.is_empty();
    }
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == segs.len() && parts.iter().zip(segs).all(|(p, s)| *p == "*" || p == s)
}

pub(super) fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else if seg.is_empty() {
        path.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

/// Object entries in JavaScript's property order (array-index keys ascending, then the rest
/// as written), which is the order zod walks records in.
pub(super) fn js_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let (mut index, rest): (Vec<_>, Vec<_>) =
        map.iter().partition(|(k, _)| array_index(k).is_some());
    index.sort_by_key(|(k, _)| array_index(k));
    index.extend(rest);
    index
}

fn array_index(key: &str) -> Option<u32> {
    let n: u32 = key.parse().ok()?;
    (n != u32::MAX && n.to_string() == key).then_some(n)
}

/// `String.prototype.trim`: Unicode white space and line terminators, plus U+FEFF but not U+0085.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(|c: char| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}')
}

/// JavaScript truthiness, for upstream's `value.x || value.y` tests.
pub(super) fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn tool_scope(segs: &[String]) -> &'static str {
    TOOL_SCOPES
        .iter()
        .find(|(at, _)| matches(at, segs))
        .map_or("tools policy", |(_, scope)| scope)
}

/// §3.2: a non-empty `allow` and a non-empty `alsoAllow` in one policy.
fn tool_policy(node: &Node, scope: &str, out: &mut Vec<Issue>) {
    let non_empty = |k: &str| {
        node.value
            .get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if non_empty("allow") && non_empty("alsoAllow") {
        out.push(Issue::new(node.path, format!("{scope}{TOOL_CONFLICT}")));
    }
}

/// §3.3: checked only when `every` is set; `activeHours` is checked even if `every` is bad.
fn heartbeat(node: &Node, _: &str, out: &mut Vec<Issue>) {
    let Some(every) = node.str("every").filter(|e| !e.is_empty()) else {
        return;
    };
    if parse_duration_ms(every).is_none() {
        out.push(Issue::new(
            &node.at("every"),
            "invalid duration (use ms, s, m, h)",
        ));
    }
    let Some(active) = node.value.get("activeHours").filter(|v| v.is_object()) else {
        return;
    };
    for (key, allow_24) in [("start", false), ("end", true)] {
        let time = active.get(key).and_then(Value::as_str);
        if let Some(problem) = time
            .filter(|t| !t.is_empty())
            .and_then(|t| time_problem(t, allow_24))
        {
            out.push(Issue::new(&node.at(&format!("activeHours.{key}")), problem));
        }
    }
}

/// A duration like `30m`, `1.5h`, `500ms`, `45s`, `2d`; a bare number means minutes.
pub fn parse_duration_ms(raw: &str) -> Option<u64> {
    let s = js_trim(raw).to_lowercase();
    let digits = |from: usize| s[from..].bytes().take_while(u8::is_ascii_digit).count();
    let mut end = digits(0);
    if end == 0 {
        return None;
    }
    if s[end..].starts_with('.') {
        let frac = digits(end + 1);
        if frac == 0 {
            return None;
        }
        end += 1 + frac;
    }
    let factor = match &s[end..] {
        "" | "m" => 60_000.0,
        "ms" => 1.0,
        "s" => 1000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = (s[..end].parse::<f64>().ok()? * factor).round();
    ms.is_finite().then_some(ms as u64)
}

/// `HH:MM`, 00:00–23:59, plus `24:00` where allowed (end of the window only).
fn time_problem(t: &str, allow_24: bool) -> Option<&'static str> {
    let bad = "invalid time (use \"HH:MM\" 24h format)";
    let [h1, h2, b':', m1, m2] = t.as_bytes() else {
        return Some(bad);
    };
    if ![h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) {
        return Some(bad);
    }
    let (hour, minute) = (
        (h1 - b'0') * 10 + (h2 - b'0'),
        (m1 - b'0') * 10 + (m2 - b'0'),
    );
    match (hour, minute) {
        (h, m) if h > 24 || m > 59 => Some(bad),
        (24, m) if m != 0 => Some("invalid time (24:00 is the only allowed 24:xx value)"),
        (24, _) if !allow_24 => Some("invalid time (start cannot be 24:00)"),
        _ => None,
    }
}

/// §3.4 (root superRefine): broadcast targets must be `agents.list` ids, compared exactly.
fn broadcast_agent_ids(node: &Node, _: &str, out: &mut Vec<Issue>) {
    let list = node.value.pointer("/agents/list").and_then(Value::as_array);
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return;
    };
    let ids: Vec<&Value> = list.iter().filter_map(|a| a.get("id")).collect();
    let Some(broadcast) = node.value.get("broadcast").and_then(Value::as_object) else {
        return;
    };
    for (peer, targets) in js_entries(broadcast) {
        let targets = targets.as_array().filter(|_| peer != "strategy");
        for (i, id) in targets.into_iter().flatten().enumerate() {
            if !ids.contains(&id) {
                let shown = id.as_str().map_or_else(|| id.to_string(), str::to_string);
                out.push(Issue::new(
                    &format!("broadcast.{peer}.{i}"),
                    format!("Unknown agent id \"{shown}\" (not in agents.list)."),
                ));
            }
        }
    }
}

/// §3.8: `#RRGGBB` or `RRGGBB`.
fn hex_color(node: &Node, _: &str, out: &mut Vec<Issue>) {
    let Some(s) = node.value.as_str() else { return };
    let hex = s.strip_prefix('#').unwrap_or(s);
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push(Issue::new(node.path, "expected hex color (RRGGBB)"));
    }
}

fn is_profile_name(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// §3.8: a profile needs a truthy `cdpPort` or `cdpUrl` (so port 0 and "" do not count).
fn browser_profile(node: &Node, _: &str, out: &mut Vec<Issue>) {
    let truthy = |k: &str| node.value.get(k).is_some_and(js_truthy);
    if node.value.is_object() && !truthy("cdpPort") && !truthy("cdpUrl") {
        out.push(Issue::new(node.path, "Profile must set cdpPort or cdpUrl"));
    }
}

const UNSAFE_EXECUTABLE: &str = "expected safe executable name or path";

/// §3.7 for a string node (`cliPath`).
pub(super) fn safe_executable(node: &Node, _: &str, out: &mut Vec<Issue>) {
    if let Some(s) = node.value.as_str() {
        if !is_safe_executable(s) {
            out.push(Issue::new(node.path, UNSAFE_EXECUTABLE));
        }
    }
}

/// §3.7 for `audio.transcription.command`: its first element (a missing one fails too).
fn first_is_safe_executable(node: &Node, _: &str, out: &mut Vec<Issue>) {
    let Some(items) = node.value.as_array() else {
        return;
    };
    if !items
        .first()
        .and_then(Value::as_str)
        .is_some_and(is_safe_executable)
    {
        out.push(Issue::new(&node.at("0"), UNSAFE_EXECUTABLE));
    }
}

/// Upstream's `isSafeExecutableValue`: no shell syntax; paths may hold anything else, bare
/// names only `[A-Za-z0-9._+-]` and no leading `-` (so it cannot pass as an option).
fn is_safe_executable(raw: &str) -> bool {
    let s = js_trim(raw);
    let forbidden = |c: char| "\0\r\n;&|`$<>\"'".contains(c);
    if s.is_empty() || s.contains(forbidden) {
        return false;
    }
    let looks_like_path = s.starts_with('.') || s.starts_with('~') || s.contains(['/', '\\']);
    if looks_like_path {
        return true;
    }
    !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30m"), Some(1_800_000));
        assert_eq!(parse_duration_ms(" 10M "), Some(600_000));
        assert_eq!(parse_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration_ms("2d"), Some(172_800_000));
        assert_eq!(parse_duration_ms("15"), Some(900_000));
        assert_eq!(parse_duration_ms("0m"), Some(0));
        for bad in ["", " ", "5 m", "1.", ".5", "-1m", "5x", "1.2.3"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(time_problem("09:00", false), None);
        assert_eq!(time_problem("24:00", true), None);
        assert!(time_problem("9:00", true).is_some());
        assert!(time_problem("25:00", true).is_some());
        assert!(time_problem("07:60", true).is_some());
    }

    #[test]
    fn executables() {
        for ok in [
            "imsg",
            "signal-cli",
            "/Applications/My App/bin",
            "./x",
            "~/bin/x",
            "C:\\x",
        ] {
            assert!(is_safe_executable(ok), "{ok}");
        }
        for bad in [
            "", "  ", "-x", "a b", "imsg; rm", "a|b", "\"x\"", "x\ny", "$(x)",
        ] {
            assert!(!is_safe_executable(bad), "{bad:?}");
        }
    }

    #[test]
    fn helpers() {
        let segs: Vec<String> = ["a", "0", "b"].iter().map(|s| s.to_string()).collect();
        assert!(matches("a.*.b", &segs));
        assert!(!matches("a.*", &segs));
        assert!(within("a.b", "a.b.c") && !within("a.b", "a.bc") && within("", "x"));
        let mut map = Map::new();
        for (k, v) in [("b", 1), ("10", 2), ("2", 3), ("01", 4)] {
            map.insert(k.into(), json!(v));
        }
        let keys: Vec<&str> = js_entries(&map)
            .into_iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["2", "10", "b", "01"]);
        assert_eq!(js_trim("\u{feff} x\u{a0}"), "x");
        assert_eq!(js_trim("\u{85}x"), "\u{85}x");
    }
}
