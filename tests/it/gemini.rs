//! A streamed chat turn over WebSocket with a Gemini model: `models.providers.google.baseUrl`
//! points at the fake's `:streamGenerateContent` route, the key comes from `GEMINI_API_KEY`.

use crate::chat::{chat_events, send};
use crate::llm::{FakeLlm, Route, Script};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "AIzaSy-it-gemini-key";

fn gateway(fake: &FakeLlm) -> Gateway {
    gateway_with(fake, "[]", 0)
}

/// Gemini 3 Flash as primary with `fallbacks`; Anthropic also points at the fake.
fn gateway_with(fake: &FakeLlm, fallbacks: &str, sdk_retries: u32) -> Gateway {
    let cfg = format!(
        r#"{{ gateway: {{ mode: "local" }},
  agents: {{ defaults: {{ thinkingDefault: "off", timeoutSeconds: 5,
      model: {{ primary: "google/gemini-3-flash-preview", fallbacks: {fallbacks} }} }} }},
  models: {{ providers: {{ google: {{ baseUrl: "{base}/v1beta", models: [] }},
                           anthropic: {{ baseUrl: "{base}", models: [] }} }} }} }}"#,
        base = fake.base_url()
    );
    let mut opts = Opts::local(&cfg);
    opts.env.push(("GEMINI_API_KEY".into(), KEY.into()));
    opts.env
        .push(("ANTHROPIC_API_KEY".into(), "sk-ant-test-key".into()));
    opts.env
        .push(("MOLTBOT_SDK_MAX_RETRIES".into(), sdk_retries.to_string()));
    let gw = Gateway::start(opts);
    let agent_dir = gw.state.path().join("agents/main/agent");
    std::fs::create_dir_all(&agent_dir).expect("agent dir");
    std::fs::write(
        agent_dir.join("settings.json"),
        r#"{"retry": {"enabled": false}}"#,
    )
    .expect("settings.json");
    gw
}

#[test]
fn streamed_gemini_turn_over_ws() {
    let fake = FakeLlm::start();
    fake.push(
        Script::text(["Hello ", "from ", "Gemini."])
            .usage(900, 6)
            .chunk_delay(Duration::from_millis(200)),
    );
    let gw = gateway(&fake);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "gem-1");
    let events = chat_events(&mut ws, "gem-1");
    let deltas: Vec<&Value> = events.iter().filter(|e| e["state"] == "delta").collect();
    assert!(deltas.len() >= 2, "streamed incrementally: {events:?}");
    let last = events.last().expect("final event");
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(last["message"]["content"][0]["text"], "Hello from Gemini.");

    let req = &fake.requests()[0];
    assert_eq!(req.route, Some(Route::Google));
    assert_eq!(
        req.path,
        "/v1beta/models/gemini-3-flash-preview:streamGenerateContent?alt=sse"
    );
    assert_eq!(req.header("x-goog-api-key"), Some(KEY));
    assert_eq!(req.body["contents"][0]["parts"][0]["text"], "hi");
    assert!(req.body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap_or("")
        .starts_with("You are a personal assistant running inside Moltbot."));
    assert!(req.body["tools"][0]["functionDeclarations"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));

    let history = ws.call("chat.history", json!({"sessionKey": "main"}));
    let msgs = history["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(msgs.len(), 2, "{history}");
    assert_eq!(msgs[1]["api"], "google-generative-ai");
    assert_eq!(msgs[1]["provider"], "google");
    assert_eq!(msgs[1]["usage"]["input"], 900);
    let store = store_when(&gw, |s| s["agent:main:main"]["model"].is_string());
    assert_eq!(store["agent:main:main"]["model"], "gemini-3-flash-preview");
    assert!(!gw.output().contains(KEY), "no key in logs");
}

#[test]
fn rate_limited_gemini_falls_back_without_sdk_retries() {
    let fake = FakeLlm::start();
    fake.push_for(Route::Google, Script::rate_limited());
    fake.push_for(Route::Anthropic, Script::text(["From Claude."]));
    let gw = gateway_with(&fake, r#"["anthropic/claude-opus-4-5"]"#, 2);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "gem-fb");
    let last = chat_events(&mut ws, "gem-fb").pop().expect("final event");
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(last["message"]["content"][0]["text"], "From Claude.");
    let routes: Vec<Option<Route>> = fake.requests().iter().map(|r| r.route).collect();
    // `@google/genai` does not retry: one Gemini request, then the fallback.
    assert_eq!(routes, [Some(Route::Google), Some(Route::Anthropic)]);
}
