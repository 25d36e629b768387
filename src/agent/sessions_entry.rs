//! Session entry lifecycle for `sessions.json`: the entry upstream writes for a fresh session,
//! daily/idle reset evaluation (config-and-state.md §5 "Reset"), the fields a reset clears, and
//! the usage patch written after a run (agents.md §4.5).

use crate::routing::{is_thread_session_key, normalize_channel_id};
use crate::util::js_number;
use serde_json::{json, Map, Value};
use std::path::Path;

const DEFAULT_AT_HOUR: u32 = 4;
const DEFAULT_IDLE_MINUTES: u64 = 60;

/// The entry upstream's `initSessionState` writes for a new WebChat/Control-UI session on the
/// main key (`chat.send`): keys in upstream's order, `undefined` fields left out. Callers routing
/// a channel message overwrite the routing fields (`chatType`, `deliveryContext`, `last*`,
/// `origin`) from the inbound message.
pub fn new_entry(session_id: &str, now: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sessionId".into(), json!(session_id));
    m.insert("updatedAt".into(), json!(now));
    m.insert("systemSent".into(), json!(false));
    m.insert("abortedLastRun".into(), json!(false));
    m.insert("chatType".into(), json!("direct"));
    m.insert("deliveryContext".into(), json!({"channel": "webchat"}));
    m.insert("lastChannel".into(), json!("webchat"));
    m.insert(
        "origin".into(),
        json!({"provider": "webchat", "surface": "webchat", "chatType": "direct"}),
    );
    m.insert("compactionCount".into(), json!(0));
    m
}

/// `new_entry` with `sessionFile` in the place upstream puts it (before `compactionCount`).
pub fn new_entry_with_file(session_id: &str, now: u64, file: &Path) -> Map<String, Value> {
    let mut m = new_entry(session_id, now);
    let count = m.shift_remove("compactionCount").unwrap_or(json!(0));
    m.insert("sessionFile".into(), json!(file.to_string_lossy()));
    m.insert("compactionCount".into(), count);
    m
}

/// Fields a new session (reset, `/new`, stale) clears from the previous entry: upstream spreads
/// a fresh entry over the stored one with these set to `undefined`. Routing fields among them are
/// then refreshed from the inbound message by the caller.
pub const RESET_CLEARED_FIELDS: &[&str] = &[
    "thinkingLevel",
    "verboseLevel",
    "reasoningLevel",
    "ttsAuto",
    "responseUsage",
    "modelOverride",
    "providerOverride",
    "sendPolicy",
    "queueMode",
    "queueDebounceMs",
    "queueCap",
    "queueDrop",
    "displayName",
    "chatType",
    "channel",
    "groupId",
    "subject",
    "groupChannel",
    "space",
    "deliveryContext",
    "lastChannel",
    "lastTo",
    "lastAccountId",
    "lastThreadId",
    "memoryFlushCompactionCount",
    "memoryFlushAt",
];

/// The entry for a new session id on an existing key: the previous entry (so `model`, token
/// counts, `label`, `skillsSnapshot`, `cliSessionIds`, `authProfileOverride*`, `elevatedLevel`,
/// `exec*`, `groupActivation`, `spawnedBy`, `origin` … survive) minus `RESET_CLEARED_FIELDS`,
/// with the new `sessionId`, `updatedAt`, `systemSent`/`abortedLastRun` false, `compactionCount`
/// 0 and the new transcript path.
pub fn reset_entry(
    previous: Option<&Map<String, Value>>,
    session_id: &str,
    now: u64,
    session_file: &Path,
) -> Map<String, Value> {
    let mut m = previous.cloned().unwrap_or_default();
    for key in RESET_CLEARED_FIELDS {
        m.shift_remove(*key);
    }
    m.insert("sessionId".into(), json!(session_id));
    m.insert("updatedAt".into(), json!(now));
    m.insert("systemSent".into(), json!(false));
    m.insert("abortedLastRun".into(), json!(false));
    m.insert("sessionFile".into(), json!(session_file.to_string_lossy()));
    m.insert("compactionCount".into(), json!(0));
    m
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetType {
    Dm,
    Group,
    Thread,
}

impl ResetType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetType::Dm => "dm",
            ResetType::Group => "group",
            ResetType::Thread => "thread",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetMode {
    Daily,
    Idle,
}

/// The reset policy in force for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetPolicy {
    pub mode: ResetMode,
    /// 0–23, host-local hour of the daily reset.
    pub at_hour: u32,
    /// Known whenever configured (either mode), 60 by default in idle mode.
    pub idle_minutes: Option<u64>,
}

/// Whether the stored session is still usable and the instants that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub fresh: bool,
    pub daily_reset_at: Option<i64>,
    pub idle_expires_at: Option<i64>,
}

/// `thread` if the key has `:thread:`/`:topic:` or the message carries thread info, else
/// `group` for group chats or keys with `:group:`/`:channel:`, else `dm`.
pub fn reset_type(session_key: &str, is_group: bool, is_thread: bool) -> ResetType {
    if is_thread || is_thread_session_key(session_key) {
        return ResetType::Thread;
    }
    let k = session_key.to_lowercase();
    if is_group || k.contains(":group:") || k.contains(":channel:") {
        return ResetType::Group;
    }
    ResetType::Dm
}

/// `session.resetByChannel[<channel>]` replaces everything; otherwise `resetByType[<type>]`
/// field by field over `reset`, with legacy `session.idleMinutes` meaning idle mode when neither
/// `reset` nor `resetByType` is set.
pub fn reset_policy(config: &Value, kind: ResetType, channel: Option<&str>) -> ResetPolicy {
    let session = config.get("session").unwrap_or(&Value::Null);
    let by_channel = channel.and_then(|c| channel_reset(session, c));
    let base = by_channel.or_else(|| session.get("reset"));
    let typed = match by_channel {
        Some(_) => None,
        None => session
            .get("resetByType")
            .and_then(|t| t.get(kind.as_str())),
    };
    let explicit = base.is_some() || session.get("resetByType").is_some();
    let legacy_idle = match by_channel {
        Some(_) => None,
        None => session.get("idleMinutes").and_then(Value::as_f64),
    };
    let field = |k: &str| {
        typed
            .and_then(|t| t.get(k))
            .or_else(|| base.and_then(|b| b.get(k)))
    };
    let mode = match field("mode").and_then(Value::as_str) {
        Some("idle") => ResetMode::Idle,
        Some("daily") => ResetMode::Daily,
        _ if !explicit && legacy_idle.is_some() => ResetMode::Idle,
        _ => ResetMode::Daily,
    };
    let at_hour = field("atHour")
        .and_then(Value::as_f64)
        .map_or(DEFAULT_AT_HOUR, |h| h.floor().clamp(0.0, 23.0) as u32);
    let idle_raw = field("idleMinutes").and_then(Value::as_f64).or(legacy_idle);
    let idle_minutes = match idle_raw {
        Some(m) => Some(m.floor().max(1.0) as u64),
        None if mode == ResetMode::Idle => Some(DEFAULT_IDLE_MINUTES),
        None => None,
    };
    ResetPolicy {
        mode,
        at_hour,
        idle_minutes,
    }
}

fn channel_reset<'a>(session: &'a Value, channel: &str) -> Option<&'a Value> {
    let map = session.get("resetByChannel")?.as_object()?;
    let key = normalize_channel_id(channel)?;
    map.get(&key).or_else(|| map.get(&key.to_lowercase()))
}

/// Stale if `updatedAt` is before the most recent `atHour:00` (daily mode) or `now` is past
/// `updatedAt + idleMinutes` (whenever idle minutes are known).
pub fn evaluate_freshness(updated_at: i64, now: i64, policy: &ResetPolicy) -> Freshness {
    let daily_reset_at =
        (policy.mode == ResetMode::Daily).then(|| daily_reset_at_ms(now, policy.at_hour));
    let idle_expires_at = policy
        .idle_minutes
        .map(|m| updated_at.saturating_add(m as i64 * 60_000));
    let stale_daily = daily_reset_at.is_some_and(|at| updated_at < at);
    let stale_idle = idle_expires_at.is_some_and(|at| now > at);
    Freshness {
        fresh: !(stale_daily || stale_idle),
        daily_reset_at,
        idle_expires_at,
    }
}

/// What to do with a stored entry when the next inbound message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetDecision {
    pub reset_type: ResetType,
    pub policy: ResetPolicy,
    pub freshness: Freshness,
    /// A new `sessionId` (and transcript) is needed: no entry, or a stale one.
    pub new_session: bool,
}

/// Evaluates the reset rules for `session_key` (reset triggers such as `/new` are the caller's).
pub fn evaluate_reset(
    config: &Value,
    session_key: &str,
    entry: Option<&Map<String, Value>>,
    now: i64,
    is_group: bool,
    is_thread: bool,
    channel: Option<&str>,
) -> ResetDecision {
    let kind = reset_type(session_key, is_group, is_thread);
    let policy = reset_policy(config, kind, channel);
    let updated_at = entry
        .and_then(|e| e.get("updatedAt"))
        .and_then(Value::as_i64);
    let freshness = evaluate_freshness(updated_at.unwrap_or(0), now, &policy);
    ResetDecision {
        reset_type: kind,
        policy,
        freshness,
        new_session: entry.is_none() || !freshness.fresh,
    }
}

/// The most recent `at_hour:00:00.000` in host-local time at or before `now` (JavaScript's
/// `setHours`, then a day back if that is still ahead). Local time comes from libc's
/// `localtime_r`/`mktime`, so TZ and DST behave as in Node; UTC if libc cannot convert.
pub fn daily_reset_at_ms(now_ms: i64, at_hour: u32) -> i64 {
    let at_hour = at_hour.min(23) as i32;
    let secs = now_ms.div_euclid(1000) as libc::time_t;
    let Some(today) = local_at_hour(secs, at_hour, 0) else {
        return utc_daily_reset(now_ms, at_hour as i64);
    };
    if now_ms >= today {
        return today;
    }
    local_at_hour(secs, at_hour, -1).unwrap_or(today - 86_400_000)
}

/// Local midnight-relative `hour:00` on the day of `secs` shifted by `day_offset` days, in ms.
fn local_at_hour(secs: libc::time_t, hour: i32, day_offset: i32) -> Option<i64> {
    // SAFETY: `tm` is plain data; localtime_r and mktime only read/write the structs passed.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return None;
        }
        tm.tm_hour = hour;
        tm.tm_min = 0;
        tm.tm_sec = 0;
        tm.tm_mday += day_offset;
        tm.tm_isdst = -1;
        let t = libc::mktime(&mut tm);
        (t != -1).then_some(t as i64 * 1000)
    }
}

fn utc_daily_reset(now_ms: i64, hour: i64) -> i64 {
    let day = now_ms.div_euclid(86_400_000) * 86_400_000;
    let at = day + hour * 3_600_000;
    if now_ms < at {
        at - 86_400_000
    } else {
        at
    }
}

/// `src/agents/usage.ts` `normalizeUsage`: the first present alias of each counter.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub total: Option<f64>,
}

impl Usage {
    pub fn from_value(raw: &Value) -> Option<Usage> {
        let first = |keys: &[&str]| {
            let v = keys
                .iter()
                .find_map(|k| raw.get(*k).filter(|v| !v.is_null()));
            v.and_then(Value::as_f64).filter(|x| x.is_finite())
        };
        let u = Usage {
            input: first(&[
                "input",
                "inputTokens",
                "input_tokens",
                "promptTokens",
                "prompt_tokens",
            ]),
            output: first(&[
                "output",
                "outputTokens",
                "output_tokens",
                "completionTokens",
                "completion_tokens",
            ]),
            cache_read: first(&["cacheRead", "cache_read", "cache_read_input_tokens"]),
            cache_write: first(&["cacheWrite", "cache_write", "cache_creation_input_tokens"]),
            total: first(&["total", "totalTokens", "total_tokens"]),
        };
        (u != Usage::default()).then_some(u)
    }

    pub fn is_nonzero(&self) -> bool {
        [
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
            self.total,
        ]
        .iter()
        .any(|v| v.is_some_and(|x| x > 0.0))
    }
}

/// The patch `persistSessionUsageUpdate` merges after a run: `inputTokens`, `outputTokens`,
/// `totalTokens` = input + cacheRead + cacheWrite (the last call's prompt size), model, provider,
/// `contextTokens`, `updatedAt`. With zero usage only model/context are written; `None` when
/// there is nothing to write.
pub fn usage_patch(
    entry: &Map<String, Value>,
    usage: Option<&Usage>,
    provider: Option<&str>,
    model: Option<&str>,
    context_tokens: Option<u64>,
    now: u64,
) -> Option<Map<String, Value>> {
    let usage = usage.filter(|u| u.is_nonzero());
    if usage.is_none() && model.is_none() && context_tokens.is_none() {
        return None;
    }
    let mut m = Map::new();
    if let Some(u) = usage {
        let input = u.input.unwrap_or(0.0);
        let prompt = input + u.cache_read.unwrap_or(0.0) + u.cache_write.unwrap_or(0.0);
        let total = if prompt > 0.0 {
            prompt
        } else {
            u.total.unwrap_or(input)
        };
        m.insert("inputTokens".into(), js_number(input));
        m.insert("outputTokens".into(), js_number(u.output.unwrap_or(0.0)));
        m.insert("totalTokens".into(), js_number(total));
    }
    let keep = |k: &str, v: Option<Value>| v.or_else(|| entry.get(k).cloned());
    let fields = [
        (
            "modelProvider",
            keep("modelProvider", provider.map(|p| json!(p))),
        ),
        ("model", keep("model", model.map(|p| json!(p)))),
        (
            "contextTokens",
            keep("contextTokens", context_tokens.map(|c| json!(c))),
        ),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    m.insert("updatedAt".into(), json!(now));
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn reset_types() {
        assert_eq!(reset_type("agent:main:main", false, false), ResetType::Dm);
        assert_eq!(
            reset_type("agent:main:discord:channel:1", false, false),
            ResetType::Group
        );
        assert_eq!(reset_type("agent:main:main", true, false), ResetType::Group);
        assert_eq!(
            reset_type("agent:main:telegram:group:-1:topic:2", true, false),
            ResetType::Thread
        );
        assert_eq!(
            reset_type("agent:main:discord:channel:1", false, true),
            ResetType::Thread
        );
    }

    #[test]
    fn policies() {
        let p = reset_policy(&json!({}), ResetType::Dm, None);
        assert_eq!(
            p,
            ResetPolicy {
                mode: ResetMode::Daily,
                at_hour: 4,
                idle_minutes: None
            }
        );
        let legacy = json!({"session": {"idleMinutes": 30.7}});
        let p = reset_policy(&legacy, ResetType::Dm, None);
        assert_eq!((p.mode, p.idle_minutes), (ResetMode::Idle, Some(30)));
        let cfg = json!({"session": {
            "reset": {"mode": "daily", "atHour": 30},
            "resetByType": {"group": {"mode": "idle"}},
            "idleMinutes": 5,
            "resetByChannel": {"discord": {"mode": "idle", "idleMinutes": 0}}
        }});
        let p = reset_policy(&cfg, ResetType::Dm, None);
        // `reset` is set, so legacy idleMinutes only supplies the minutes, not the mode.
        assert_eq!(
            p,
            ResetPolicy {
                mode: ResetMode::Daily,
                at_hour: 23,
                idle_minutes: Some(5)
            }
        );
        let p = reset_policy(&cfg, ResetType::Group, Some("telegram"));
        assert_eq!((p.mode, p.idle_minutes), (ResetMode::Idle, Some(5)));
        let p = reset_policy(&cfg, ResetType::Group, Some(" Discord "));
        assert_eq!(
            p,
            ResetPolicy {
                mode: ResetMode::Idle,
                at_hour: 4,
                idle_minutes: Some(1)
            }
        );
    }

    #[test]
    fn daily_reset_is_at_or_before_now() {
        let now = 1_769_512_345_678;
        for hour in [0, 4, 13, 23] {
            let at = daily_reset_at_ms(now, hour);
            assert!(at <= now && now - at <= 25 * HOUR, "hour {hour}");
            assert_eq!(at % 1000, 0);
        }
    }

    #[test]
    fn freshness() {
        let now = 1_769_512_345_678;
        let daily = ResetPolicy {
            mode: ResetMode::Daily,
            at_hour: 4,
            idle_minutes: None,
        };
        let at = daily_reset_at_ms(now, 4);
        assert!(evaluate_freshness(at, now, &daily).fresh);
        assert!(!evaluate_freshness(at - 1, now, &daily).fresh);
        let idle = ResetPolicy {
            mode: ResetMode::Idle,
            at_hour: 4,
            idle_minutes: Some(60),
        };
        assert!(evaluate_freshness(now - HOUR, now, &idle).fresh);
        assert!(!evaluate_freshness(now - HOUR - 1, now, &idle).fresh);
        let d = evaluate_reset(&json!({}), "agent:main:main", None, now, false, false, None);
        assert!(d.new_session);
    }

    #[test]
    fn reset_entry_clears_and_keeps() {
        let old = json!({"sessionId": "old", "updatedAt": 1, "model": "m", "thinkingLevel": "high",
            "label": "keep", "compactionCount": 3, "memoryFlushAt": 9, "totalTokens": 100});
        let e = reset_entry(old.as_object(), "new", 7, Path::new("/s/new.jsonl"));
        assert_eq!(
            Value::Object(e),
            json!({"sessionId": "new", "updatedAt": 7, "model": "m", "label": "keep",
                "compactionCount": 0, "totalTokens": 100, "systemSent": false,
                "abortedLastRun": false, "sessionFile": "/s/new.jsonl"})
        );
    }

    #[test]
    fn fresh_entry_shape() {
        let e = new_entry_with_file("id", 5, Path::new("/s/id.jsonl"));
        let keys: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "sessionId",
                "updatedAt",
                "systemSent",
                "abortedLastRun",
                "chatType",
                "deliveryContext",
                "lastChannel",
                "origin",
                "sessionFile",
                "compactionCount"
            ]
        );
    }

    #[test]
    fn usage_aliases_and_patch() {
        let u = Usage::from_value(&json!({"input_tokens": 1200, "output_tokens": 40,
            "cache_creation_input_tokens": 9000, "cache_read_input_tokens": 0}))
        .unwrap();
        let entry = Map::new();
        let p = usage_patch(
            &entry,
            Some(&u),
            Some("anthropic"),
            Some("claude-opus-4-5"),
            Some(200_000),
            9,
        )
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"inputTokens": 1200, "outputTokens": 40, "totalTokens": 10200,
                "modelProvider": "anthropic", "model": "claude-opus-4-5",
                "contextTokens": 200000, "updatedAt": 9})
        );
        assert!(Usage::from_value(&json!({"foo": 1})).is_none());
        assert!(usage_patch(&entry, None, None, None, None, 1).is_none());
    }
}
