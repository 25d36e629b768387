//! The provider connection each worker keeps alive between calls (as the SDKs' HTTP agents do),
//! and what retires it: a body that never ends after its last frame, an abort.

use crate::chat::{chat_events, gateway_with, send};
use crate::llm::{FakeLlm, Script};
use crate::support::*;
use serde_json::json;
use std::time::Duration;

/// One worker, so every call goes through the same kept connection (or its replacement).
const ONE_WORKER: &str = "maxConcurrent: 1";

fn final_text(ws: &mut Ws, run: &str) -> String {
    let last = chat_events(ws, run).pop().expect("a chat event");
    assert_eq!(last["state"], "final", "{last}");
    last["message"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Which connection carried each request, in order.
fn conns(fake: &FakeLlm) -> Vec<usize> {
    fake.requests().iter().map(|r| r.conn).collect()
}

#[test]
fn consecutive_turns_and_tool_calls_share_one_connection() {
    let fake = FakeLlm::start();
    let dir = TempDir::new();
    std::fs::write(dir.path().join("notes.txt"), "buy milk\n").unwrap();
    fake.push(Script::text(["first"]));
    fake.push(Script::tool_call(
        "toolu_01",
        "read",
        json!({"file_path": "notes.txt"}),
    ));
    fake.push(Script::text(["milk"]));
    let defaults = format!(
        r#"{ONE_WORKER}, workspace: "{}", skipBootstrap: true"#,
        dir.path().display()
    );
    let gw = gateway_with(&fake, &defaults);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "hello", "ka-1");
    assert_eq!(final_text(&mut ws, "ka-1"), "first");
    send(&mut ws, "agent:main:other", "read notes.txt", "ka-2");
    assert_eq!(final_text(&mut ws, "ka-2"), "milk");
    assert_eq!(
        conns(&fake),
        [1, 1, 1],
        "every request on the first connection"
    );
    assert_eq!(fake.connections(), 1);
}

#[test]
fn one_turn_at_a_time_keeps_to_one_connection_among_four_workers() {
    let fake = FakeLlm::start();
    let gw = gateway_with(&fake, "maxConcurrent: 4");
    let (mut ws, _) = gw.connect();
    for i in 0..6 {
        fake.push(Script::text([format!("reply {i}")]));
        let run = format!("one-{i}");
        send(&mut ws, &format!("agent:main:s{i}"), "hello", &run);
        assert_eq!(final_text(&mut ws, &run), format!("reply {i}"));
        // The worker finishes its turn (and goes idle) just after the final goes out: a
        // message sent sooner than that on a loaded machine would go to another worker.
        std::thread::sleep(Duration::from_millis(50));
    }
    // The worker that finished last takes the next turn, with its kept-alive connection.
    assert_eq!(conns(&fake), [1; 6]);
    assert_eq!(fake.connections(), 1);
}

#[test]
fn a_body_left_open_after_its_last_frame_does_not_hold_up_the_next_turn() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["lingering"]).then_linger());
    fake.push(Script::text(["next"]));
    let gw = gateway_with(&fake, ONE_WORKER);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "one", "lg-1");
    assert_eq!(final_text(&mut ws, "lg-1"), "lingering");
    send(&mut ws, "main", "two", "lg-2");
    assert_eq!(final_text(&mut ws, "lg-2"), "next");
    assert_eq!(
        conns(&fake),
        [1, 2],
        "the unfinished connection is given up, not reused"
    );
    // Giving it up closes it: the fake's handler sees the client go.
    assert!(
        fake.wait_idle(Duration::from_secs(3)),
        "the lingering reply is still held"
    );
}

#[test]
fn after_an_abort_the_next_turn_gets_a_new_connection() {
    let fake = FakeLlm::start();
    fake.push(Script::text(["one ", "two ", "three "]).chunk_delay(Duration::from_millis(400)));
    fake.push(Script::text(["after"]));
    let gw = gateway_with(&fake, ONE_WORKER);
    let (mut ws, _) = gw.connect();
    send(&mut ws, "main", "count", "ab-1");
    assert_eq!(ws.wait_event("chat").unwrap()["payload"]["state"], "delta");
    ws.call("chat.abort", json!({"sessionKey": "main", "runId": "ab-1"}));
    assert_eq!(
        chat_events(&mut ws, "ab-1").pop().unwrap()["state"],
        "aborted"
    );
    send(&mut ws, "main", "again", "ab-2");
    assert_eq!(final_text(&mut ws, "ab-2"), "after");
    assert_eq!(conns(&fake), [1, 2]);
}
