//! The turn's inner loop against the fake LLM: tool calls run and their results go back to the
//! model, the SDK and session retry layers, and compaction on a context overflow.

use crate::chat::{
    chat_events, gateway_configured, gateway_with, gateway_with_retries, send,
    write_two_anthropic_profiles,
};
use crate::llm::{FakeLlm, Route, Script};
use crate::support::*;
use serde_json::{json, Value};

const NO_SESSION_RETRY: &str = r#"{"retry": {"enabled": false}}"#;

fn transcript_entries(gw: &Gateway, key: &str) -> Vec<Value> {
    let sessions = gw.state.path().join("agents/main/sessions");
    let store: Value =
        serde_json::from_str(&std::fs::read_to_string(sessions.join("sessions.json")).unwrap())
            .expect("sessions.json");
    let file = store[key]["sessionFile"].as_str().expect("sessionFile");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl line"))
        .collect()
}

fn roles(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["message"]["role"].as_str().unwrap_or("").to_string())
        .collect()
}

fn workspace_defaults(ws: &std::path::Path) -> String {
    format!(r#"workspace: "{}", skipBootstrap: true"#, ws.display())
}

#[test]
fn a_tool_call_reads_a_workspace_file_and_the_model_answers() {
    let fake = FakeLlm::start();
    let dir = TempDir::new();
    std::fs::write(dir.path().join("notes.txt"), "buy milk\n").unwrap();
    fake.push(Script::tool_call(
        "toolu_01",
        "read",
        json!({"file_path": "notes.txt"}),
    ));
    fake.push(Script::text(["It says: ", "buy milk."]));
    let gw = gateway_with(&fake, &workspace_defaults(dir.path()));
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "what is in notes.txt?", "tool-1");
    let last = chat_events(&mut ws, "tool-1").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(last["message"]["content"][0]["text"], "It says: buy milk.");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let tools = reqs[0].body["tools"].as_array().expect("tools offered");
    assert_eq!(tools[0]["name"], "read");
    assert!(tools[0]["input_schema"]["properties"]["file_path"].is_object());
    let system = reqs[0].body["system"].to_string();
    assert!(system.contains("- read: Read file contents"), "{system}");
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let result = &msgs.last().unwrap()["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_01");
    assert_eq!(result["content"], "buy milk\n");
    assert_eq!(result["is_error"], false);

    let entries = transcript_entries(&gw, "agent:main:main");
    assert_eq!(
        roles(&entries),
        ["user", "assistant", "toolResult", "assistant"]
    );
    let tool_result = &entries
        .iter()
        .find(|e| e["message"]["role"] == "toolResult")
        .unwrap()["message"];
    assert_eq!(tool_result["toolName"], "read");
    assert_eq!(tool_result["toolCallId"], "toolu_01");
    assert!(tool_result["timestamp"].is_u64());
}

#[test]
fn unknown_tools_and_bad_arguments_come_back_as_results() {
    let fake = FakeLlm::start();
    let dir = TempDir::new();
    fake.push(
        Script::tool_call("toolu_a", "nope", json!({}))
            .with_tool("toolu_b", "read", json!({"offset": 2}))
            .with_tool("toolu_c", "read", json!({"path": "missing.txt"})),
    );
    fake.push(Script::text(["ok"]));
    let gw = gateway_with(&fake, &workspace_defaults(dir.path()));
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "try tools", "tool-2");
    assert_eq!(
        chat_events(&mut ws, "tool-2").pop().unwrap()["state"],
        "final"
    );
    let reqs = fake.requests();
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let results = msgs.last().unwrap()["content"].as_array().unwrap().clone();
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0]["content"], "Tool nope not found");
    assert_eq!(results[0]["is_error"], true);
    let missing: Value = serde_json::from_str(results[1]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        missing,
        json!({"status": "error", "tool": "read", "error": "Missing required parameter: path (path or file_path)"})
    );
    assert_eq!(results[1]["is_error"], false);
    let enoent = results[2]["content"].as_str().unwrap();
    assert!(
        enoent.contains("ENOENT: no such file or directory"),
        "{enoent}"
    );
}

#[test]
fn a_denied_tool_is_not_offered() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["fine"]));
    let top = r#"tools: { deny: ["group:fs"] },"#;
    let gw = gateway_configured(&fake, "", top, 0, NO_SESSION_RETRY);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "deny-1");
    assert_eq!(
        chat_events(&mut ws, "deny-1").pop().unwrap()["state"],
        "final"
    );
    let body = &fake.requests()[0].body;
    assert!(body.get("tools").is_none(), "{body}");
    assert!(!body["system"].to_string().contains("- read:"));
}

#[test]
fn a_rate_limit_then_success_stays_on_the_same_profile() {
    let fake = FakeLlm::start();
    let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#;
    fake.push(Script::http(429, &[("retry-after-ms", "20")], body));
    fake.push(Script::text(["after the wait"]));
    let gw = gateway_with_retries(&fake, "", 2, NO_SESSION_RETRY);
    let agent_dir = write_two_anthropic_profiles(&gw);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "rl-1");
    let last = chat_events(&mut ws, "rl-1").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(fake.request_count(), 2);
    for r in fake.requests() {
        assert_eq!(r.header("x-api-key"), Some("sk-ant-a"));
    }
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(agent_dir.join("auth-profiles.json")).unwrap(),
    )
    .unwrap();
    let stats = &written["usageStats"]["anthropic:a"];
    assert!(
        stats.get("cooldownUntil").is_none_or(Value::is_null),
        "{written}"
    );
    assert!(stats["lastUsed"].as_u64().is_some(), "{written}");
}

#[test]
fn the_session_retry_layer_retries_an_overloaded_provider() {
    let fake = FakeLlm::start();
    fake.push(Script::overloaded());
    fake.push(Script::text(["second time lucky"]));
    let settings = r#"{"retry": {"enabled": true, "maxRetries": 1, "baseDelayMs": 50}}"#;
    let gw = gateway_with_retries(
        &fake,
        r#"model: { primary: "anthropic/claude-opus-4-5", fallbacks: ["openai/gpt-5.2"] }"#,
        0,
        settings,
    );
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hi", "sr-1");
    let last = chat_events(&mut ws, "sr-1").pop().unwrap();
    assert_eq!(
        last["message"]["content"][0]["text"], "second time lucky",
        "{last}"
    );
    let routes: Vec<_> = fake.requests().iter().map(|r| r.route).collect();
    assert_eq!(routes, [Some(Route::Anthropic), Some(Route::Anthropic)]);
}

#[test]
fn a_context_overflow_compacts_instead_of_falling_back() {
    let fake = FakeLlm::start();
    let gw = gateway_with(
        &fake,
        r#"model: { primary: "anthropic/claude-opus-4-5", fallbacks: ["openai/gpt-5.2"] }"#,
    );
    let (mut ws, _) = gw.connect();
    for (i, word) in ["alpha", "beta"].iter().enumerate() {
        fake.push(Script::text([format!("noted {word}")]));
        let run = format!("pre-{i}");
        send(&mut ws, "main", &format!("remember {word}"), &run);
        assert_eq!(chat_events(&mut ws, &run).pop().unwrap()["state"], "final");
    }
    fake.push(Script::context_overflow());
    fake.push(Script::text(["## Goal\nremember alpha"]));
    fake.push(Script::text(["after compaction"]));
    send(&mut ws, "main", "and gamma", "ovf-1");
    let last = chat_events(&mut ws, "ovf-1").pop().unwrap();
    assert_eq!(
        last["message"]["content"][0]["text"], "after compaction",
        "{last}"
    );

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5);
    assert!(
        reqs.iter().all(|r| r.route == Some(Route::Anthropic)),
        "no fallback model"
    );
    let summary_req = &reqs[3].body;
    assert!(summary_req["system"]
        .to_string()
        .contains("context summarization assistant"));
    let prompt = summary_req["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(prompt.starts_with("<conversation>\n[User]: "), "{prompt}");
    assert!(prompt.contains("remember alpha") && prompt.contains("[Assistant]: noted alpha"));
    assert!(summary_req.get("tools").is_none());
    let retried = reqs[4].body["messages"].as_array().unwrap();
    let first = retried[0]["content"][0]["text"].as_str().unwrap();
    assert!(
        first.contains("remember alpha") && first.contains("summary"),
        "{first}"
    );
    assert!(retried.last().unwrap()["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("and gamma"));

    let entries = transcript_entries(&gw, "agent:main:main");
    let compaction = entries
        .iter()
        .find(|e| e["type"] == "compaction")
        .expect("compaction entry");
    assert_eq!(compaction["summary"], "## Goal\nremember alpha");
    let store = store_when(&gw, |s| s["agent:main:main"]["compactionCount"] == 1);
    assert_eq!(store["agent:main:main"]["compactionCount"], 1);
}

#[test]
fn a_second_overflow_ends_with_upstreams_text() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["noted"]));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "remember this", "pre");
    chat_events(&mut ws, "pre");
    fake.push(Script::context_overflow());
    fake.push(Script::text(["a summary"]));
    fake.push(Script::context_overflow());
    send(&mut ws, "main", "again", "ovf-2");
    let before = transcript_entries(&gw, "agent:main:main")[0]["id"].clone();
    let last = chat_events(&mut ws, "ovf-2").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(
        last["message"]["content"][0]["text"],
        "⚠️ Context limit exceeded. I've reset our conversation to start fresh - please try again.\n\nTo prevent this, increase your compaction buffer by setting `agents.defaults.compaction.reserveTokensFloor` to 4000 or higher in your config."
    );
    assert_eq!(fake.request_count(), 4);
    // The session was started afresh: the next turn sends no old history.
    fake.push(Script::text(["fresh"]));
    send(&mut ws, "main", "hello again", "after");
    assert_eq!(
        chat_events(&mut ws, "after").pop().unwrap()["state"],
        "final"
    );
    let msgs = fake.requests()[4].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_ne!(transcript_entries(&gw, "agent:main:main")[0]["id"], before);
}

#[test]
fn a_session_idle_since_before_the_daily_reset_starts_afresh() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["one"]));
    fake.push(Script::text(["two"]));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "first", "d-1");
    chat_events(&mut ws, "d-1");
    let path = gw.state.path().join("agents/main/sessions/sessions.json");
    // Edit only after the first turn's own update has landed.
    let mut store = store_when(&gw, |s| s["agent:main:main"]["model"].is_string());
    let old_id = store["agent:main:main"]["sessionId"].clone();
    let two_days_ago = moltbot::util::now_ms() - 2 * 86_400_000;
    store["agent:main:main"]["updatedAt"] = json!(two_days_ago);
    store["agent:main:main"]["label"] = json!("kept across the reset");
    std::fs::write(&path, store.to_string()).unwrap();

    send(&mut ws, "main", "second", "d-2");
    assert_eq!(chat_events(&mut ws, "d-2").pop().unwrap()["state"], "final");
    let msgs = fake.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(msgs.len(), 1, "no history from the stale session: {msgs:?}");
    let store: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(store["agent:main:main"]["sessionId"], old_id);
    assert_eq!(store["agent:main:main"]["label"], "kept across the reset");
}

#[test]
fn usage_and_cost_are_recorded_and_summed_by_usage_cost() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["counted"]).usage(1000, 100));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "count me", "u-1");
    chat_events(&mut ws, "u-1");
    let entries = transcript_entries(&gw, "agent:main:main");
    let reply = &entries.last().unwrap()["message"];
    // claude-opus-4-5 in the catalog: $5 / $25 per million input / output tokens.
    let expected = 1000.0 * 5.0 / 1e6 + 100.0 * 25.0 / 1e6;
    let total = reply["usage"]["cost"]["total"].as_f64().unwrap();
    assert!((total - expected).abs() < 1e-12, "{}", reply["usage"]);
    let store = store_when(&gw, |s| s["agent:main:main"]["inputTokens"].is_u64());
    let entry = &store["agent:main:main"];
    assert_eq!(entry["inputTokens"], 1000);
    assert_eq!(entry["outputTokens"], 100);
    assert_eq!(entry["contextTokens"], 200000);
    let cost = ws.call("usage.cost", json!({"days": 7}));
    assert_eq!(cost["days"], 7);
    assert_eq!(cost["totals"]["input"], 1000);
    assert_eq!(cost["totals"]["output"], 100);
    assert!(
        (cost["totals"]["totalCost"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{cost}"
    );
    assert_eq!(cost["daily"].as_array().unwrap().len(), 1);
}

#[test]
fn a_subagent_lane_run_does_not_wait_for_a_full_main_lane() {
    let fake = FakeLlm::start();
    fake.set_default(
        Script::text(["slow ", "main ", "turn"]).chunk_delay(std::time::Duration::from_millis(400)),
    );
    let gw = gateway_with(&fake, "maxConcurrent: 1");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hold the main lane", "busy");
    assert!(fake.wait_for_requests(1, std::time::Duration::from_secs(5)));
    let params = json!({"message": "side job", "sessionKey": "agent:main:subagent:job-1",
                        "lane": "subagent", "idempotencyKey": "sub-1"});
    let first = ws.request("agent", params);
    assert_eq!(first["payload"]["status"], "accepted", "{first}");
    assert!(
        fake.wait_for_requests(2, std::time::Duration::from_secs(2)),
        "the subagent run reached the provider while main was busy"
    );
    assert_eq!(
        fake.max_in_flight(),
        2,
        "two runs in flight with maxConcurrent 1"
    );
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(ws.response(&id)["payload"]["status"], "ok");
    assert_eq!(
        chat_events(&mut ws, "busy").pop().unwrap()["state"],
        "final"
    );
}

const STEER: &str = r#"messages: { queue: { mode: "steer" } },"#;

#[test]
fn a_steered_message_joins_the_running_turn() {
    let fake = FakeLlm::start();
    fake.push(
        Script::text(["first ", "answer"]).chunk_delay(std::time::Duration::from_millis(300)),
    );
    fake.push(Script::text(["second answer"]));
    let gw = gateway_configured(&fake, "", STEER, 0, NO_SESSION_RETRY);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "one", "st-1");
    assert!(fake.wait_for_requests(1, std::time::Duration::from_secs(5)));
    send(&mut ws, "main", "two", "st-2");
    let last = chat_events(&mut ws, "st-1").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    assert_eq!(
        chat_events(&mut ws, "st-2").pop().unwrap()["state"],
        "final"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "one run, two model calls");
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let texts: Vec<&str> = msgs
        .iter()
        .map(|m| m["content"][0]["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(texts, ["one", "first answer", "two"]);
    let entries = transcript_entries(&gw, "agent:main:main");
    assert_eq!(roles(&entries), ["user", "assistant", "user", "assistant"]);
}

#[test]
fn a_steered_message_skips_the_remaining_tool_calls() {
    let fake = FakeLlm::start();
    let dir = TempDir::new();
    std::fs::write(dir.path().join("a.txt"), "A").unwrap();
    fake.push(
        Script::tool_call("toolu_1", "read", json!({"path": "a.txt"}))
            .with_tool("toolu_2", "read", json!({"path": "a.txt"}))
            .chunk_delay(std::time::Duration::from_millis(200)),
    );
    fake.push(Script::text(["changed course"]));
    let gw = gateway_configured(
        &fake,
        &workspace_defaults(dir.path()),
        STEER,
        0,
        NO_SESSION_RETRY,
    );
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "read twice", "sk-1");
    assert!(fake.wait_for_requests(1, std::time::Duration::from_secs(5)));
    send(&mut ws, "main", "actually, stop reading", "sk-2");
    assert_eq!(
        chat_events(&mut ws, "sk-1").pop().unwrap()["state"],
        "final"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let results = msgs[2]["content"].as_array().unwrap();
    assert_eq!(results[0]["content"], "A");
    assert_eq!(results[1]["content"], "Skipped due to queued user message.");
    assert_eq!(results[1]["is_error"], true);
    let steered = msgs.last().unwrap();
    assert_eq!(steered["role"], "user");
    let text = steered["content"].to_string();
    assert!(text.contains("actually, stop reading"), "{text}");
}

#[test]
fn an_unsupported_thinking_level_is_downgraded_to_a_supported_one() {
    let fake = FakeLlm::start();
    let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"thinking level not supported. Supported values are: 'low' and 'medium'."}}"#;
    fake.push(Script::http(400, &[], body));
    fake.push(Script::text(["thought less"]));
    let gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    let params = json!({"sessionKey": "main", "message": "think hard", "idempotencyKey": "th-1", "thinking": "high"});
    ws.call("chat.send", params);
    let last = chat_events(&mut ws, "th-1").pop().unwrap();
    assert_eq!(last["state"], "final", "{last}");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    // Anthropic budgets (agents.md §2.1): high 16384, low 2048.
    assert_eq!(reqs[0].body["thinking"]["budget_tokens"], 16384);
    assert_eq!(reqs[1].body["thinking"]["budget_tokens"], 2048);
}

#[test]
fn the_run_timeout_bounds_the_whole_tool_loop() {
    let fake = FakeLlm::start();
    let dir = TempDir::new();
    std::fs::write(dir.path().join("a.txt"), "again").unwrap();
    // A model that never stops calling tools: each call takes ~0.3 s.
    fake.set_default(
        Script::tool_call("toolu_x", "read", json!({"path": "a.txt"}))
            .chunk_delay(std::time::Duration::from_millis(50)),
    );
    let defaults = format!("{}, timeoutSeconds: 1", workspace_defaults(dir.path()));
    let gw = gateway_with(&fake, &defaults);
    let (mut ws, _) = gw.connect();
    let t0 = std::time::Instant::now();
    send(&mut ws, "main", "loop forever", "to-1");
    let last = chat_events(&mut ws, "to-1").pop().unwrap();
    assert_eq!(last["state"], "error", "{last}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        fake.request_count() >= 2,
        "the loop ran: {}",
        fake.request_count()
    );
}

#[test]
fn retries_never_outlive_the_run_timeout() {
    let fake = FakeLlm::start();
    fake.set_default(Script::overloaded());
    let settings = r#"{"retry": {"enabled": true, "maxRetries": 1000, "baseDelayMs": 50}}"#;
    let gw = gateway_with_retries(&fake, "timeoutSeconds: 1", 1000, settings);
    let (mut ws, _) = gw.connect();
    let t0 = std::time::Instant::now();
    send(&mut ws, "main", "hi", "rt-1");
    let last = chat_events(&mut ws, "rt-1").pop().unwrap();
    assert_eq!(last["state"], "error", "{last}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        fake.request_count() < 100,
        "{} requests",
        fake.request_count()
    );
}
