//! The config loader's model defaults (`applyModelDefaults`, config-and-state §1.7 item 7),
//! kept beside the model code because they encode catalog knowledge (the built-in aliases).

use serde_json::{json, Map, Value};

use super::DEFAULT_CONTEXT_TOKENS;

/// Built-in aliases the loader adds to `agents.defaults.models` entries that have none.
pub const DEFAULT_MODEL_ALIASES: [(&str, &str); 6] = [
    ("opus", "anthropic/claude-opus-4-5"),
    ("sonnet", "anthropic/claude-sonnet-4-5"),
    ("gpt", "openai/gpt-5.2"),
    ("gpt-mini", "openai/gpt-5-mini"),
    ("gemini", "google/gemini-3-pro-preview"),
    ("gemini-flash", "google/gemini-3-flash-preview"),
];

/// The loader's `applyModelDefaults` (config-and-state §1.7 item 7): every
/// `models.providers.<p>.models[]` entry gets `reasoning`, `input`, `cost`, `contextWindow`
/// and `maxTokens` when missing, and the built-in aliases are added to existing entries
/// without an `alias` key. Meant to be called by the config loader.
pub fn apply_model_config_defaults(config: &mut Value) {
    if let Some(providers) = config
        .pointer_mut("/models/providers")
        .and_then(Value::as_object_mut)
    {
        for provider in providers.values_mut() {
            let Some(models) = provider.get_mut("models").and_then(Value::as_array_mut) else {
                continue;
            };
            models
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .for_each(model_entry_defaults);
        }
    }
    let Some(models) = config
        .pointer_mut("/agents/defaults/models")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (alias, target) in DEFAULT_MODEL_ALIASES {
        if let Some(entry) = models.get_mut(target).and_then(Value::as_object_mut) {
            entry.entry("alias").or_insert_with(|| json!(alias));
        }
    }
}

fn model_entry_defaults(m: &mut Map<String, Value>) {
    if !m.get("reasoning").is_some_and(Value::is_boolean) {
        m.insert("reasoning".into(), json!(false));
    }
    m.entry("input").or_insert_with(|| json!(["text"]));
    let cost = m.get("cost").cloned().unwrap_or(Value::Null);
    let part = |k: &str| {
        cost.get(k)
            .filter(|v| v.is_number())
            .cloned()
            .unwrap_or(json!(0))
    };
    let next_cost = json!({"input": part("input"), "output": part("output"), "cacheRead": part("cacheRead"), "cacheWrite": part("cacheWrite")});
    m.insert("cost".into(), next_cost);
    let window = positive_number(m.get("contextWindow")).unwrap_or(DEFAULT_CONTEXT_TOKENS as f64);
    m.insert("contextWindow".into(), number(window));
    if positive_number(m.get("maxTokens")).is_none() {
        m.insert("maxTokens".into(), number(window.min(8192.0)));
    }
}

fn positive_number(v: Option<&Value>) -> Option<f64> {
    v?.as_f64().filter(|n| n.is_finite() && *n > 0.0)
}

/// A JSON number that prints as an integer when it is one, as JavaScript does.
pub(crate) fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::models::model_alias_lines;

    #[test]
    fn loader_model_defaults() {
        let mut cfg = json!({
            "models": {"providers": {"p": {"models": [{"id": "a", "name": "a", "contextWindow": 4096, "cost": {"input": 1}}]}}},
            "agents": {"defaults": {"models": {"anthropic/claude-opus-4-5": {}, "openai/gpt-5.2": {"alias": ""}}}}
        });
        apply_model_config_defaults(&mut cfg);
        let m = &cfg["models"]["providers"]["p"]["models"][0];
        assert_eq!(m["reasoning"], json!(false));
        assert_eq!(m["input"], json!(["text"]));
        assert_eq!(
            m["cost"],
            json!({"input": 1, "output": 0, "cacheRead": 0, "cacheWrite": 0})
        );
        assert_eq!(
            (m["contextWindow"].clone(), m["maxTokens"].clone()),
            (json!(4096), json!(4096))
        );
        assert_eq!(
            cfg["agents"]["defaults"]["models"]["anthropic/claude-opus-4-5"]["alias"],
            json!("opus")
        );
        assert_eq!(
            cfg["agents"]["defaults"]["models"]["openai/gpt-5.2"]["alias"],
            json!("")
        );
        assert_eq!(
            model_alias_lines(&cfg),
            ["- opus: anthropic/claude-opus-4-5"]
        );
    }
}
