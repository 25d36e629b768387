//! When a turn's files reach the disk: a new session's transcript header while the first reply
//! streams, the `sessions.json` usage shortly after the final (and at the latest before exit).

use crate::chat::{chat_events, gateway_with, restart_on_the_same_state, send};
use crate::llm::{FakeLlm, Script};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

fn store(gw: &Gateway) -> Value {
    let path = gw.state.path().join("agents/main/sessions/sessions.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("sessions.json parses")
}

fn lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every transcript line parses"))
        .collect()
}

#[test]
fn a_new_sessions_header_is_written_while_it_streams_and_survives_a_kill() {
    let fake = FakeLlm::start();
    fake.push(
        Script::text(["partial ", "never ", "finished"]).chunk_delay(Duration::from_millis(500)),
    );
    let mut gw = gateway_with(&fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, "fresh", "first", "h-1");
    let delta = ws.wait_event("chat").unwrap();
    assert_eq!(delta["payload"]["state"], "delta");
    let entry = store(&gw)["agent:main:fresh"].clone();
    let file = entry["sessionFile"].as_str().unwrap().to_string();
    let header = std::fs::read_to_string(&file).unwrap();
    let written = lines(&file);
    assert_eq!(
        written.len(),
        1,
        "only the header while the reply streams: {header}"
    );
    assert_eq!(written[0]["type"], "session");
    assert_eq!(written[0]["version"], 3);
    assert_eq!(written[0]["id"], entry["sessionId"]);
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();

    fake.push(Script::text(["back"]));
    let again = restart_on_the_same_state(&gw);
    let (mut ws, _) = again.connect();
    send(&mut ws, "fresh", "second", "h-2");
    assert_eq!(chat_events(&mut ws, "h-2").pop().unwrap()["state"], "final");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(&header), "the same header first:\n{text}");
    let written = lines(&file);
    let kinds: Vec<_> = written
        .iter()
        .map(|e| (e["type"].clone(), e["message"]["role"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (json!("session"), Value::Null),
            (json!("message"), json!("user")),
            (json!("message"), json!("assistant"))
        ],
        "{text}"
    );
    assert_eq!(written[2]["parentId"], written[1]["id"]);
    let users = ws.call("chat.history", json!({"sessionKey": "fresh"}));
    assert_eq!(users["messages"].as_array().unwrap().len(), 2, "{users}");
}

/// A gateway that has just sent the final of one turn on `key` (1000 tokens in, 100 out).
fn right_after_a_turn(fake: &FakeLlm, key: &str) -> (Gateway, Ws) {
    fake.push(Script::text(["counted"]).usage(1000, 100));
    let gw = gateway_with(fake, "");
    let (mut ws, _) = gw.connect();
    send(&mut ws, key, "count me", "w-1");
    assert_eq!(chat_events(&mut ws, "w-1").pop().unwrap()["state"], "final");
    (gw, ws)
}

#[test]
fn the_usage_of_a_turn_that_just_ended_is_written_before_exit() {
    let fake = FakeLlm::start();
    let (mut gw, ws) = right_after_a_turn(&fake, "main");
    // At once: the gateway has not had the time to write it on its own.
    let pid = gw.child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    drop(ws);
    let status = gw.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "{status}");
    let entry = &store(&gw)["agent:main:main"];
    assert_eq!(entry["inputTokens"], 1000, "{entry}");
    assert_eq!(entry["outputTokens"], 100, "{entry}");
}

#[test]
fn a_session_deleted_right_after_its_turn_stays_deleted() {
    let fake = FakeLlm::start();
    let (gw, mut ws) = right_after_a_turn(&fake, "scratch");
    // Before the turn's usage is saved (a moment after the final): upstream's usage update
    // only merges into an existing entry, so it must not bring this one back.
    let res = ws.call("sessions.delete", json!({"key": "scratch"}));
    assert_eq!(res["deleted"], true, "{res}");
    std::thread::sleep(Duration::from_millis(300));
    let store = store(&gw);
    assert!(store.get("agent:main:scratch").is_none(), "{store}");
}

/// The nice value of the gateway's thread named `name` (`/proc/<pid>/task/*/stat`, field 19).
fn nice_of_thread(pid: u32, name: &str) -> Option<i64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim_end() != name {
            return None;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the parenthesised command name: state is field 3, nice field 19.
        let rest = stat.rsplit_once(')')?.1;
        rest.split_whitespace().nth(16)?.parse().ok()
    })
}

#[test]
fn the_usage_saves_run_below_the_threads_that_answer() {
    let fake = FakeLlm::start();
    let (gw, _ws) = right_after_a_turn(&fake, "main");
    let pid = gw.child.id();
    // The process's first thread runs the loop (`gw-main`); its name is the binary's.
    let main = nice_of_thread(pid, "moltbot").expect("the main thread");
    let expected = (main + 10).min(19);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match nice_of_thread(pid, "sessions-write") {
            Some(n) if n == expected => break,
            n if std::time::Instant::now() > deadline => {
                panic!("sessions-write's nice is {n:?}; the main thread's is {main}")
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
