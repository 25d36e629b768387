use crate::llm::{FakeLlm, Route, Script};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A gateway whose Anthropic (and OpenAI, as fallback) base URLs point at `fake`, with both low
/// retry layers off so each scripted failure costs exactly one request.
pub(crate) fn gateway_with(fake: &FakeLlm, defaults: &str) -> Gateway {
    gateway_with_retries(fake, defaults, 0, r#"{"retry": {"enabled": false}}"#)
}

/// As `gateway_with`, with `sdk_retries` SDK-level retries and `settings` as the agent's
/// `settings.json` (pi's session retry layer).
pub(crate) fn gateway_with_retries(
    fake: &FakeLlm,
    defaults: &str,
    sdk_retries: u32,
    settings: &str,
) -> Gateway {
    gateway_configured(fake, defaults, "", sdk_retries, settings)
}

/// The general form: `top` adds top-level config keys (`tools: {…},`).
pub(crate) fn gateway_configured(
    fake: &FakeLlm,
    defaults: &str,
    top: &str,
    sdk_retries: u32,
    settings: &str,
) -> Gateway {
    let cfg = format!(
        r#"{{ gateway: {{ mode: "local" }}, {top}
  agents: {{ defaults: {{ thinkingDefault: "off", timeoutSeconds: 5, {defaults} }} }},
  models: {{ providers: {{ anthropic: {{ baseUrl: "{base}", models: [] }}, openai: {{ baseUrl: "{base}/v1", models: [] }} }} }} }}"#,
        base = fake.base_url()
    );
    let mut opts = Opts::local(&cfg);
    opts.env
        .push(("ANTHROPIC_API_KEY".into(), "sk-ant-test-key".into()));
    opts.env
        .push(("OPENAI_API_KEY".into(), "sk-test-openai".into()));
    opts.env
        .push(("MOLTBOT_SDK_MAX_RETRIES".into(), sdk_retries.to_string()));
    let gw = Gateway::start(opts);
    let agent_dir = gw.state.path().join("agents/main/agent");
    std::fs::create_dir_all(&agent_dir).expect("agent dir");
    std::fs::write(agent_dir.join("settings.json"), settings).expect("settings.json");
    gw
}

/// `auth-profiles.json` with `anthropic:a` (key `sk-ant-a`) then `anthropic:b`; the agent dir.
pub(crate) fn write_two_anthropic_profiles(gw: &Gateway) -> std::path::PathBuf {
    let agent_dir = gw.state.path().join("agents/main/agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let store = json!({"version": 1, "profiles": {
        "anthropic:a": {"type": "api_key", "provider": "anthropic", "key": "sk-ant-a"},
        "anthropic:b": {"type": "api_key", "provider": "anthropic", "key": "sk-ant-b"}},
        "order": {"anthropic": ["anthropic:a", "anthropic:b"]}});
    std::fs::write(agent_dir.join("auth-profiles.json"), store.to_string()).unwrap();
    agent_dir
}

/// A second gateway on `gw`'s state dir and config (the first one stopped or killed).
pub(crate) fn restart_on_the_same_state(gw: &Gateway) -> Gateway {
    let mut opts = Opts::local(&std::fs::read_to_string(gw.config_path()).unwrap());
    opts.config = None;
    opts.env
        .push(("ANTHROPIC_API_KEY".into(), "sk-ant-test-key".into()));
    Gateway::try_start_in(opts, gw.state.clone())
        .ok()
        .expect("restarts")
}

pub(crate) fn send(ws: &mut Ws, key: &str, text: &str, run: &str) -> Value {
    ws.call(
        "chat.send",
        json!({"sessionKey": key, "message": text, "idempotencyKey": run}),
    )
}

/// Collects `chat` events of one run until it ends; returns them in order. Other runs' events
/// stay queued on the client for later calls.
pub(crate) fn chat_events(ws: &mut Ws, run: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut others = Vec::new();
    loop {
        let ev = ws.wait_event("chat").expect("chat event");
        if ev["payload"]["runId"] != run {
            others.push(ev);
            continue;
        }
        let state = ev["payload"]["state"].as_str().unwrap_or("").to_string();
        out.push(ev["payload"].clone());
        if state != "delta" {
            ws.events.extend(others);
            return out;
        }
    }
}

#[test]
fn streamed_turn_end_to_end_and_history() {
    let fake = FakeLlm::start();
    fake.push(
        Script::text(["Hello ", "there, ", "friend."]).chunk_delay(Duration::from_millis(200)),
    );
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    assert_eq!(
        send(&mut ws, "main", "hi", "run-1"),
        json!({"runId": "run-1", "status": "started"})
    );
    let events = chat_events(&mut ws, "run-1");
    let deltas: Vec<&Value> = events.iter().filter(|e| e["state"] == "delta").collect();
    assert!(deltas.len() >= 2, "streamed incrementally: {events:?}");
    assert_eq!(deltas[0]["message"]["content"][0]["text"], "Hello ");
    let last = events.last().unwrap();
    assert_eq!(last["state"], "final");
    assert_eq!(last["sessionKey"], "main", "key echoed as sent");
    assert_eq!(
        last["message"]["content"][0]["text"],
        "Hello there, friend."
    );
    // Upstream's final: the run's text alone, no usage or stop reason.
    let keys: Vec<&String> = last["message"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["role", "content", "timestamp"], "{last}");
    assert_eq!(last["message"]["content"].as_array().unwrap().len(), 1);
    let req = &fake.requests()[0];
    assert_eq!(req.header("x-api-key"), Some("sk-ant-test-key"));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(req.body["model"], "claude-opus-4-5");
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["messages"][0]["content"][0]["text"], "hi");
    assert!(req.body["system"][0]["text"]
        .as_str()
        .unwrap_or("")
        .starts_with("You are a personal assistant running inside Moltbot."));
    let history = ws.call("chat.history", json!({"sessionKey": "main"}));
    let msgs = history["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[1]["stopReason"], "stop");
    // The next turn carries the history.
    fake.push(Script::text(["Again."]));
    send(&mut ws, "main", "and now?", "run-2");
    assert_eq!(
        chat_events(&mut ws, "run-2").last().unwrap()["state"],
        "final"
    );
    let second = &fake.requests()[1].body["messages"];
    assert_eq!(second.as_array().map(Vec::len), Some(3), "{second}");
    assert_eq!(second[1]["content"][0]["text"], "Hello there, friend.");
    let store = store_when(&gw, |s| s["agent:main:main"]["model"].is_string());
    assert_eq!(store["agent:main:main"]["model"], "claude-opus-4-5");
}

#[test]
fn overloaded_primary_falls_back_to_the_next_model() {
    let fake = FakeLlm::start();
    fake.push_for(Route::Anthropic, Script::overloaded());
    fake.push_for(Route::Responses, Script::text(["From the fallback."]));
    let gw = gateway_with(
        &fake,
        r#"model: { primary: "anthropic/claude-opus-4-5", fallbacks: ["openai/gpt-5.2"] }"#,
    );
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "fb-1");
    let last = chat_events(&mut ws, "fb-1").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(last["message"]["content"][0]["text"], "From the fallback.");
    let routes: Vec<Option<Route>> = fake.requests().iter().map(|r| r.route).collect();
    assert_eq!(routes.first(), Some(&Some(Route::Anthropic)));
    assert_eq!(routes.last(), Some(&Some(Route::Responses)));
    assert_eq!(
        fake.requests().last().unwrap().header("authorization"),
        Some("Bearer sk-test-openai")
    );
}

#[test]
fn all_candidates_failing_ends_in_an_error_event() {
    let fake = FakeLlm::start();
    fake.set_default(Script::unauthorized());
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "err-1");
    let last = chat_events(&mut ws, "err-1").pop().unwrap();
    assert_eq!(last["state"], "error");
    let text = last["errorMessage"].as_str().unwrap_or("");
    assert!(
        !text.is_empty() && !text.contains("sk-ant-test-key"),
        "{text}"
    );
    assert!(!gw.output().contains("sk-ant-test-key"), "no key in logs");
}

#[test]
fn abort_mid_stream() {
    let fake = FakeLlm::start();
    fake.push(
        Script::text(["one ", "two ", "three ", "four "]).chunk_delay(Duration::from_millis(400)),
    );
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "count", "ab-1");
    let first = ws.wait_event("chat").unwrap();
    assert_eq!(first["payload"]["state"], "delta");
    let res = ws.call("chat.abort", json!({"sessionKey": "main", "runId": "ab-1"}));
    assert_eq!(
        res,
        json!({"ok": true, "aborted": true, "runIds": ["ab-1"]})
    );
    let last = chat_events(&mut ws, "ab-1").pop().unwrap();
    assert_eq!(last["state"], "aborted");
    assert_eq!(last["stopReason"], "rpc");
}

#[test]
fn max_concurrent_bounds_requests_in_flight() {
    let fake = FakeLlm::start();
    fake.set_default(Script::text(["slow ", "reply"]).chunk_delay(Duration::from_millis(300)));
    let gw = gateway_with(&fake, "maxConcurrent: 2");
    let (mut ws, _) = gw.connect();
    for i in 0..5 {
        send(
            &mut ws,
            &format!("agent:main:s{i}"),
            "hi",
            &format!("mc-{i}"),
        );
    }
    for i in 0..5 {
        assert_eq!(
            chat_events(&mut ws, &format!("mc-{i}")).pop().unwrap()["state"],
            "final"
        );
    }
    assert_eq!(fake.request_count(), 5);
    assert_eq!(
        fake.max_in_flight(),
        2,
        "never more than maxConcurrent at the provider"
    );
}

#[test]
fn idempotency_and_abort_words() {
    let fake = FakeLlm::start();
    fake.set_default(Script::text(["ok"]));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "id-1");
    let again = send(&mut ws, "main", "hi", "id-1");
    assert!(
        again["status"] == "in_flight" || again["status"] == "ok",
        "{again}"
    );
    chat_events(&mut ws, "id-1");
    assert_eq!(
        send(&mut ws, "main", "hi", "id-1")["status"],
        "ok",
        "cached after completion"
    );
    let stop = send(&mut ws, "main", "/stop", "id-2");
    assert_eq!(stop["ok"], true);
    assert_eq!(
        fake.request_count(),
        1,
        "duplicates and /stop start no turn"
    );
    let (_, msg) = ws.call_err(
        "chat.send",
        json!({"sessionKey": "main", "message": " ", "idempotencyKey": "x"}),
    );
    assert_eq!(msg, "message or attachment required");
}

#[test]
fn agent_method_answers_twice_and_agent_wait_reports() {
    let fake = FakeLlm::start();
    fake.set_default(Script::text(["Done ", "here."]).chunk_delay(Duration::from_millis(100)));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    let params = json!({"message": "hi", "agentId": "main", "sessionKey": "agent:main:main", "deliver": false, "channel": "whatsapp", "timeout": 600, "idempotencyKey": "ag-1"});
    let first = ws.request("agent", params);
    assert_eq!(first["payload"]["status"], "accepted", "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    let second = ws.response(&id);
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(second["payload"]["summary"], "completed");
    assert_eq!(
        second["payload"]["result"]["payloads"][0]["text"],
        "Done here."
    );
    assert_eq!(
        second["payload"]["result"]["meta"]["agentMeta"]["provider"],
        "anthropic"
    );
    let usage = &second["payload"]["result"]["meta"]["agentMeta"]["usage"];
    let keys: Vec<&String> = usage.as_object().expect("usage").keys().collect();
    assert_eq!(
        keys,
        ["input", "output", "cacheRead", "cacheWrite", "total"],
        "{usage}"
    );
    let waited = ws.call("agent.wait", json!({"runId": "ag-1", "timeoutMs": 1000}));
    assert_eq!(waited["status"], "ok");
    assert!(waited["endedAt"].as_u64() >= waited["startedAt"].as_u64());
    let (_, msg) = ws.call_err(
        "agent",
        json!({"message": "x", "channel": "carrier-pigeon", "idempotencyKey": "ag-2"}),
    );
    assert_eq!(msg, "invalid agent params: unknown channel: carrier-pigeon");
    let (_, msg) = ws.call_err(
        "agent",
        json!({"message": "x", "agentId": "nobody", "idempotencyKey": "ag-3"}),
    );
    assert_eq!(msg, "invalid agent params: unknown agent id \"nobody\"");
    assert_eq!(
        ws.call(
            "agent.wait",
            json!({"runId": "never-ran", "timeoutMs": 200})
        )["status"],
        "timeout"
    );
}

#[test]
fn auth_failure_rotates_to_the_next_profile_and_cools_the_first_down() {
    let fake = FakeLlm::start();
    fake.push(Script::unauthorized());
    fake.push(Script::text(["via b"]));
    let gw = gateway_with(&fake, "");
    let agent_dir = write_two_anthropic_profiles(&gw);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "rot-1");
    let last = chat_events(&mut ws, "rot-1").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    let keys: Vec<Option<String>> = fake
        .requests()
        .iter()
        .map(|r| r.header("x-api-key").map(str::to_string))
        .collect();
    assert_eq!(
        keys,
        [Some("sk-ant-a".to_string()), Some("sk-ant-b".to_string())]
    );
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(agent_dir.join("auth-profiles.json")).unwrap(),
    )
    .unwrap();
    let stats = &written["usageStats"]["anthropic:a"];
    assert!(
        stats["cooldownUntil"].as_u64().unwrap_or(0) > moltbot::util::now_ms(),
        "{written}"
    );
    assert_eq!(stats["errorCount"], 1);
    // The cooled-down profile is skipped on the next turn.
    fake.push(Script::text(["b again"]));
    send(&mut ws, "main", "again", "rot-2");
    assert_eq!(
        chat_events(&mut ws, "rot-2").pop().unwrap()["state"],
        "final"
    );
    assert_eq!(
        fake.requests().last().unwrap().header("x-api-key"),
        Some("sk-ant-b")
    );
    assert_eq!(fake.request_count(), 3);
}

#[test]
fn collect_mode_merges_messages_sent_while_busy() {
    let fake = FakeLlm::start();
    fake.set_default(Script::text(["first ", "reply"]).chunk_delay(Duration::from_millis(300)));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "one", "col-1");
    assert!(
        fake.wait_for_requests(1, Duration::from_secs(5)),
        "first turn reached the provider"
    );
    send(&mut ws, "main", "two", "col-2");
    send(&mut ws, "main", "three", "col-3");
    assert_eq!(
        chat_events(&mut ws, "col-1").pop().unwrap()["state"],
        "final"
    );
    assert_eq!(
        chat_events(&mut ws, "col-2").pop().unwrap()["state"],
        "final"
    );
    assert!(fake.wait_for_requests(2, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fake.request_count(),
        2,
        "two queued messages become one turn"
    );
    let last = fake.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let text = last["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(
        text,
        "[Queued messages while agent was busy]\n\n---\nQueued #1\ntwo\n\n---\nQueued #2\nthree"
    );
    // The merged message's sender is not left waiting: its run id ends with the batch.
    assert_eq!(
        chat_events(&mut ws, "col-3").pop().unwrap()["state"],
        "final"
    );
    let again = send(&mut ws, "main", "three", "col-3");
    assert_eq!(again["status"], "ok", "{again}");
}

#[test]
fn a_hanging_provider_times_out_and_falls_back() {
    let fake = FakeLlm::start();
    fake.push_for(Route::Anthropic, Script::hang());
    fake.push_for(Route::Responses, Script::text(["after the timeout"]));
    let defaults = r#"timeoutSeconds: 1, model: { primary: "anthropic/claude-opus-4-5", fallbacks: ["openai/gpt-5.2"] }"#;
    let gw = gateway_with(&fake, defaults);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "to-1");
    let last = chat_events(&mut ws, "to-1").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(last["message"]["content"][0]["text"], "after the timeout");
}

#[test]
fn kill_9_during_a_turn_leaves_readable_state() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["done"]));
    fake.push(
        Script::text(["partial ", "never ", "finished"]).chunk_delay(Duration::from_millis(500)),
    );
    let mut gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "first", "k-1");
    chat_events(&mut ws, "k-1");
    send(&mut ws, "main", "second", "k-2");
    let delta = ws.wait_event("chat").unwrap();
    assert_eq!(delta["payload"]["state"], "delta");
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
    let sessions = gw.state.path().join("agents/main/sessions");
    let store: Value =
        serde_json::from_str(&std::fs::read_to_string(sessions.join("sessions.json")).unwrap())
            .expect("sessions.json parses");
    let file = store["agent:main:main"]["sessionFile"]
        .as_str()
        .unwrap()
        .to_string();
    let mut users = Vec::new();
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        let entry: Value = serde_json::from_str(line).expect("every transcript line parses");
        if entry["message"]["role"] == "user" {
            users.push(entry["message"]["content"][0]["text"].clone());
        }
    }
    // The interrupted turn's prompt was written before its reply streamed, as pi does.
    assert_eq!(users, ["first", "second"]);
    // A new gateway on the same state dir continues the session.
    fake.push(Script::text(["back"]));
    let again = restart_on_the_same_state(&gw);
    let (mut ws, _) = again.connect();
    let history = ws.call("chat.history", json!({"sessionKey": "main"}));
    assert!(history["messages"].as_array().unwrap().len() >= 2);
    send(&mut ws, "main", "third", "k-3");
    assert_eq!(chat_events(&mut ws, "k-3").pop().unwrap()["state"], "final");
}

#[test]
fn an_upstream_session_is_loaded_and_continued() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["continuing"]));
    let gw = gateway_with(&fake, "");
    let sessions = gw.state.path().join("agents/main/sessions");
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-session");
    let transcript = "3f8c2d9e-6b1a-4c7e-9f00-2b5d7a1e4c11-topic-42.jsonl";
    std::fs::copy(fixtures.join(transcript), sessions.join(transcript)).unwrap();
    let store = std::fs::read_to_string(fixtures.join("sessions.json")).unwrap();
    let store = store.replace("/home/u/.clawdbot", &gw.state.path().to_string_lossy());
    let key = "agent:main:telegram:group:-1001234567890:topic:42";
    // Active a moment ago: an entry idle since before 04:00 would get a fresh session (the
    // daily reset, as upstream), and this test is about continuing the old one.
    let mut store: Value = serde_json::from_str(&store).unwrap();
    store[key]["updatedAt"] = json!(moltbot::util::now_ms() - 1000);
    std::fs::write(sessions.join("sessions.json"), store.to_string()).unwrap();
    let (mut ws, _) = gw.connect();
    let before = ws.call("chat.history", json!({"sessionKey": key}));
    let n_before = before["messages"].as_array().map(Vec::len).unwrap_or(0);
    assert!(n_before >= 2, "{before}");
    let lines_before = std::fs::read_to_string(sessions.join(transcript))
        .unwrap()
        .lines()
        .count();
    send(&mut ws, key, "and then?", "up-1");
    assert_eq!(
        chat_events(&mut ws, "up-1").pop().unwrap()["state"],
        "final"
    );
    let history = &fake.requests()[0].body["messages"];
    assert!(
        history.as_array().unwrap().len() > 1,
        "upstream history sent to the model: {history}"
    );
    let text = std::fs::read_to_string(sessions.join(transcript)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        text.lines().count(),
        lines_before + 2,
        "user + assistant appended to the same file"
    );
    let (user, reply) = (&lines[lines.len() - 2], &lines[lines.len() - 1]);
    assert_eq!(reply["parentId"], user["id"], "tree continues");
    assert_eq!(reply["message"]["content"][0]["text"], "continuing");
    let after = ws.call("chat.history", json!({"sessionKey": key}));
    assert_eq!(after["messages"].as_array().unwrap().len(), n_before + 2);
}

#[test]
fn a_no_reply_answer_is_not_delivered() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["NO_REPLY"]));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "psst", "nr-1");
    let last = chat_events(&mut ws, "nr-1").pop().unwrap();
    assert_eq!(last["state"], "final");
    assert!(
        last.get("message").is_none(),
        "silent reply carries no message: {last}"
    );
    let history = ws.call("chat.history", json!({"sessionKey": "main"}));
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "still persisted"
    );
}
