//! The official `openai` Python SDK (installed by `make test` into `target/pyvenv`) runs
//! `openai_sdk.py` against the gateway: non-streaming, streaming, and a wrong token.

use crate::llm::{FakeLlm, Script};
use crate::openai_http::gateway;
use crate::support::TOKEN;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `MOLTBOT_TEST_PYTHON`, else the virtualenv `make test` creates.
fn python() -> PathBuf {
    std::env::var_os("MOLTBOT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyvenv/bin/python")
        })
}

fn line<'a>(out: &'a str, tag: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(tag))
        .unwrap_or_else(|| panic!("no `{tag}` line in:\n{out}"))
}

#[test]
fn official_python_sdk_streams_completes_and_is_refused_with_a_wrong_token() {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run `make test` (it creates target/pyvenv with the openai SDK), \
         or set MOLTBOT_TEST_PYTHON to a python with `openai` installed",
        python.display()
    );
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hello ", "from the SDK."]));
    fake.push(Script::text(["Streamed ", "in ", "parts."]).chunk_delay(Duration::from_millis(50)));
    let gw = gateway(
        &fake,
        "http: { endpoints: { chatCompletions: { enabled: true } } }",
        "",
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/openai_sdk.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}/v1", gw.port))
        .arg(TOKEN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_PROXY", "*")
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let done: Value = serde_json::from_str(line(&stdout, "NONSTREAM ")).unwrap();
    assert_eq!(done["content"], "Hello from the SDK.");
    assert_eq!(done["object"], "chat.completion");
    assert_eq!(done["model"], "moltbot");
    assert_eq!(done["role"], "assistant");
    assert_eq!(done["finish_reason"], "stop");
    assert_eq!(done["total_tokens"], 0);
    assert!(done["id"].as_str().unwrap_or("").starts_with("chatcmpl_"));
    let streamed: Value = serde_json::from_str(line(&stdout, "STREAM ")).unwrap();
    assert_eq!(streamed["content"], "Streamed in parts.");
    assert_eq!(streamed["roles"], serde_json::json!(["assistant"]));
    assert_eq!(streamed["ids"], 1);
    assert!(streamed["deltas"].as_u64().unwrap_or(0) >= 2, "{streamed}");
    assert_eq!(line(&stdout, "AUTH "), "AuthenticationError 401");
    let system = fake.requests()[0].body["system"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        system.contains("Answer briefly."),
        "system message reached the prompt"
    );
}
