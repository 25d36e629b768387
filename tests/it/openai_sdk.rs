//! The official `openai` SDKs against the gateway: Python (installed by `make test` into
//! `target/pyvenv`, script `openai_sdk.py`) and JS (`npm ci` in `tests/sdk`, script
//! `tests/sdk/openai_sdk.mjs`), each doing a non-streaming and a streaming completion and a
//! request with a wrong token.

use crate::llm::{FakeLlm, Script};
use crate::openai_http::gateway;
use crate::support::TOKEN;
use serde_json::Value;
use std::path::{Path, PathBuf};
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

/// Runs one SDK script (`<program> <script> <base_url> <token>`) against a gateway with the
/// endpoint on and the fake LLM scripted for it; checks what the script printed.
fn check_sdk(program: &Path, script: &Path) {
    let fake = FakeLlm::start();
    fake.push(Script::text(["Hello ", "from the SDK."]));
    fake.push(Script::text(["Streamed ", "in ", "parts."]).chunk_delay(Duration::from_millis(50)));
    let gw = gateway(
        &fake,
        "http: { endpoints: { chatCompletions: { enabled: true } } }",
        "",
    );
    let out = Command::new(program)
        .arg(script)
        .arg(format!("http://127.0.0.1:{}/v1", gw.port))
        .arg(TOKEN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_PROXY", "*")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
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

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
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
    check_sdk(&python, &repo("tests/it/openai_sdk.py"));
}

#[test]
fn official_js_sdk_streams_completes_and_is_refused_with_a_wrong_token() {
    let installed = repo("tests/sdk/node_modules/openai/package.json");
    assert!(
        installed.exists(),
        "the openai JS SDK is not installed in tests/sdk: run `make test` (npm ci there)"
    );
    let node = std::env::var_os("MOLTBOT_TEST_NODE").unwrap_or_else(|| "node".into());
    check_sdk(Path::new(&node), &repo("tests/sdk/openai_sdk.mjs"));
}
