//! `sessions.patch` as upstream's `applySessionsPatchToStore` (`gateway/sessions-patch.ts`):
//! each present field is normalised, `null` clears it, and the first invalid one is the error.

use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::{truthy, LABEL_MAX};
use crate::agent::models::{self, Registry, DEFAULT_MODEL, DEFAULT_PROVIDER};
use crate::config::Snapshot;
use crate::gateway::methods::RpcError;
use crate::util::{now_ms, uuid_v4};

/// An enumerated field: `<canonical>:<accepted words>` groups (a bare group accepts itself),
/// upstream's error hint, whether the raw value is trimmed and whether `off` is dropped.
struct Level {
    field: &'static str,
    words: &'static [&'static str],
    hint: &'static str,
    trim: bool,
    drop_off: bool,
}

const fn lv(
    field: &'static str,
    words: &'static [&'static str],
    hint: &'static str,
    trim: bool,
) -> Level {
    let drop_off = matches!(field.as_bytes(), b"reasoningLevel" | b"responseUsage");
    Level {
        field,
        words,
        hint,
        trim,
        drop_off,
    }
}

/// Applied in upstream's order before `execNode`/`model`.
const LEVELS: [Level; 7] = [
    lv(
        "verboseLevel",
        &[
            "off:off false no 0",
            "full:full all everything",
            "on:on minimal true yes 1",
        ],
        r#""on"|"off""#,
        false,
    ),
    lv(
        "reasoningLevel",
        &[
            "off:off false no 0 hide hidden disable disabled",
            "on:on true yes 1 show visible enable enabled",
            "stream:stream streaming draft live",
        ],
        r#""on"|"off"|"stream""#,
        false,
    ),
    lv(
        "responseUsage",
        &[
            "off:off false no 0 disable disabled",
            "tokens:on true yes 1 enable enabled tokens token tok minimal min",
            "full:full session",
        ],
        r#""off"|"tokens"|"full""#,
        false,
    ),
    lv(
        "elevatedLevel",
        &[
            "off:off false no 0",
            "full:full auto auto-approve autoapprove",
            "ask:ask prompt approval approve",
            "on:on true yes 1",
        ],
        r#""on"|"off"|"ask"|"full""#,
        false,
    ),
    lv(
        "execHost",
        &["sandbox", "gateway", "node"],
        r#""sandbox"|"gateway"|"node""#,
        true,
    ),
    lv(
        "execSecurity",
        &["deny", "allowlist", "full"],
        r#""deny"|"allowlist"|"full""#,
        true,
    ),
    lv(
        "execAsk",
        &["off", "on-miss", "always"],
        r#""off"|"on-miss"|"always""#,
        true,
    ),
];
/// Applied last.
const POLICIES: [Level; 2] = [
    lv("sendPolicy", &["allow", "deny"], r#""allow"|"deny""#, true),
    lv(
        "groupActivation",
        &["mention", "always"],
        r#""mention"|"always""#,
        true,
    ),
];
const XHIGH: [&str; 3] = [
    "openai/gpt-5.2",
    "openai-codex/gpt-5.2-codex",
    "openai-codex/gpt-5.1-codex",
];

/// One enumerated field: `null` clears it, an unknown value is upstream's error.
fn level(next: &mut Map<String, Value>, params: &Value, l: &Level) -> Result<(), RpcError> {
    let Some(raw) = params.get(l.field) else {
        return Ok(());
    };
    let Some(raw) = raw.as_str() else {
        next.shift_remove(l.field);
        return Ok(());
    };
    let key = if l.trim { raw.trim() } else { raw }.to_lowercase();
    let found = l.words.iter().find_map(|group| {
        let (canonical, words) = group.split_once(':').unwrap_or((group, group));
        words.split(' ').any(|w| w == key).then_some(canonical)
    });
    match found {
        None => {
            return Err(RpcError::invalid(format!(
                "invalid {} (use {})",
                l.field, l.hint
            )))
        }
        Some("off") if l.drop_off => next.shift_remove(l.field),
        Some(v) => next.insert(l.field.into(), json!(v)),
    };
    Ok(())
}

fn supports_xhigh(provider: &str, model: &str) -> bool {
    let m = model.trim().to_lowercase();
    let p = provider.trim().to_lowercase();
    !m.is_empty()
        && XHIGH.iter().any(|r| match p.is_empty() {
            true => r.split('/').nth(1) == Some(m.as_str()),
            false => *r == format!("{p}/{m}"),
        })
}

/// Upstream `applySessionsPatchToStore`.
pub(super) fn apply_patch(
    snapshot: &Arc<Snapshot>,
    store: &mut Map<String, Value>,
    key: &str,
    p: &Value,
) -> Result<Value, RpcError> {
    let cfg = &snapshot.config;
    let invalid = |m: String| Err(RpcError::invalid(m));
    let now = now_ms();
    let existing = store.get(key).and_then(Value::as_object).cloned();
    let text = |k: &str| {
        existing
            .as_ref()
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
    };
    let mut next = match &existing {
        Some(e) => {
            let mut n = e.clone();
            let at = e.get("updatedAt").and_then(Value::as_u64).unwrap_or(0);
            n.insert("updatedAt".into(), json!(at.max(now)));
            n
        }
        None => json!({"sessionId": uuid_v4(), "updatedAt": now})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    let def = models::resolve_configured_model_ref(cfg, DEFAULT_PROVIDER, DEFAULT_MODEL);
    if let Some(raw) = p.get("spawnedBy") {
        let old = text("spawnedBy").filter(|s| !s.is_empty());
        match raw.as_str().map(str::trim) {
            None if old.is_some() => return invalid("spawnedBy cannot be cleared once set".into()),
            None => {}
            Some("") => return invalid("invalid spawnedBy: empty".into()),
            Some(_) if !crate::agent::bootstrap::is_subagent_session_key(key) => {
                return invalid("spawnedBy is only supported for subagent:* sessions".into())
            }
            Some(s) if old.is_some_and(|o| o != s) => {
                return invalid("spawnedBy cannot be changed once set".into())
            }
            Some(s) => {
                next.insert("spawnedBy".into(), json!(s));
            }
        }
    }
    if let Some(raw) = p.get("label") {
        match raw.as_str().map(str::trim) {
            None => {
                next.shift_remove("label");
            }
            Some("") => return invalid("invalid label: empty".into()),
            Some(l) if l.chars().count() > LABEL_MAX => {
                return invalid(format!("invalid label: too long (max {LABEL_MAX})"))
            }
            Some(l) => {
                let taken = store
                    .iter()
                    .any(|(k, e)| k != key && e.get("label").and_then(Value::as_str) == Some(l));
                if taken {
                    return invalid(format!("label already in use: {l}"));
                }
                next.insert("label".into(), json!(l));
            }
        }
    }
    if let Some(raw) = p.get("thinkingLevel") {
        match raw
            .as_str()
            .map(crate::agent::envelope::normalize_think_level)
        {
            None | Some(Some("off")) => {
                next.shift_remove("thinkingLevel");
            }
            Some(Some(l)) => {
                next.insert("thinkingLevel".into(), json!(l));
            }
            Some(None) => {
                let hint = |k: &str, d: &str| {
                    text(k)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .unwrap_or(d)
                        .to_string()
                };
                let (prov, model) = (
                    hint("providerOverride", &def.provider),
                    hint("modelOverride", &def.model),
                );
                let levels = match models::normalize_provider_id(&prov).as_str() {
                    "zai" | "z.ai" | "z-ai" => "off|on".to_string(),
                    _ if supports_xhigh(&prov, &model) => {
                        "off|minimal|low|medium|high|xhigh".into()
                    }
                    _ => "off|minimal|low|medium|high".into(),
                };
                return invalid(format!("invalid thinkingLevel (use {levels})"));
            }
        }
    }
    for l in &LEVELS {
        level(&mut next, p, l)?;
    }
    if let Some(raw) = p.get("execNode") {
        match raw.as_str().map(str::trim) {
            None => {
                next.shift_remove("execNode");
            }
            Some("") => return invalid("invalid execNode: empty".into()),
            Some(n) => {
                next.insert("execNode".into(), json!(n));
            }
        }
    }
    if let Some(raw) = p.get("model") {
        let chosen = match raw.as_str().map(str::trim) {
            None => None,
            Some("") => return invalid("invalid model: empty".into()),
            Some(m) => {
                let catalog = Registry::for_snapshot(snapshot).catalog();
                let (r, _) = models::resolve_allowed_model_ref(
                    cfg,
                    &catalog,
                    m,
                    &def.provider,
                    Some(def.model.as_str()),
                )
                .map_err(RpcError::invalid)?;
                (r != def).then_some(r)
            }
        };
        apply_model_override(
            &mut next,
            chosen
                .as_ref()
                .map(|r| (r.provider.as_str(), r.model.as_str())),
        );
    }
    if next.get("thinkingLevel").and_then(Value::as_str) == Some("xhigh") {
        let eff = |k: &str, d: &str| next.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
        if !supports_xhigh(
            &eff("providerOverride", &def.provider),
            &eff("modelOverride", &def.model),
        ) {
            if p.get("thinkingLevel").is_some() {
                let hint = format!("{}, {} or {}", XHIGH[0], XHIGH[1], XHIGH[2]);
                return invalid(format!(
                    "thinkingLevel \"xhigh\" is only supported for {hint}"
                ));
            }
            next.insert("thinkingLevel".into(), json!("high"));
        }
    }
    for l in &POLICIES {
        level(&mut next, p, l)?;
    }
    store.insert(key.to_string(), Value::Object(next.clone()));
    Ok(Value::Object(next))
}

/// `applyModelOverrideToSessionEntry` without a profile: `None` is the default model.
fn apply_model_override(e: &mut Map<String, Value>, chosen: Option<(&str, &str)>) {
    let mut updated = false;
    let mut set = |e: &mut Map<String, Value>, k: &str, v: Option<&str>| match v {
        Some(v) if e.get(k).and_then(Value::as_str) != Some(v) => {
            e.insert(k.into(), json!(v));
            updated = true;
        }
        None if truthy(e.get(k)) || (k.ends_with("CompactionCount") && e.contains_key(k)) => {
            e.shift_remove(k);
            updated = true;
        }
        _ => {}
    };
    set(e, "providerOverride", chosen.map(|c| c.0));
    set(e, "modelOverride", chosen.map(|c| c.1));
    for k in [
        "authProfileOverride",
        "authProfileOverrideSource",
        "authProfileOverrideCompactionCount",
    ] {
        set(e, k, None);
    }
    if updated {
        e.insert("updatedAt".into(), json!(now_ms()));
    }
}
