//! Test support: start the real `moltbot` binary on 127.0.0.1:0 with a temp state dir, and a
//! small protocol-v3 WebSocket client over tungstenite.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

pub const TOKEN: &str = "test-token-3f9a";

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!("mb-it-{}", moltbot::util::uuid_v4()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start a gateway.
pub struct Opts {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Written to `<state>/moltbot.json` before start, if set.
    pub config: Option<String>,
    pub token_env: bool,
}

impl Opts {
    /// Starts from a config file (so no `--allow-unconfigured`).
    pub fn local(config: &str) -> Opts {
        Opts {
            config: Some(config.to_string()),
            args: vec![],
            ..Default::default()
        }
    }

    /// A `gateway.mode: local` config whose JSON log goes to `log`.
    pub fn with_log_file(log: &Path) -> Opts {
        Opts::local(&format!(
            r#"{{ gateway: {{ mode: "local" }}, logging: {{ file: "{}" }} }}"#,
            log.display()
        ))
    }
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            args: vec!["--allow-unconfigured".into()],
            env: Vec::new(),
            config: None,
            token_env: true,
        }
    }
}

pub struct Gateway {
    pub child: Child,
    pub port: u16,
    pub state: Arc<TempDir>,
    pub output: Arc<Mutex<String>>,
}

/// Output and exit status of a gateway that did not start.
pub struct Refused {
    pub status: ExitStatus,
    pub output: String,
}

fn spawn(opts: &Opts, state: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moltbot"));
    cmd.arg("gateway").arg("--port").arg("0").args(&opts.args);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", state)
        .env("CLAWDBOT_STATE_DIR", state);
    cmd.env("RUST_LOG", "debug,tungstenite=info,tiny_http=info");
    if opts.token_env {
        cmd.env("CLAWDBOT_GATEWAY_TOKEN", TOKEN);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    cmd.spawn().expect("spawn moltbot")
}

fn pump(
    mut r: impl Read + Send + 'static,
    out: Arc<Mutex<String>>,
    tx: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(&mut r);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            out.lock().unwrap().push_str(&line);
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            line.clear();
        }
    });
}

impl Gateway {
    /// Starts a gateway; panics with its output if it does not listen within 10 s.
    pub fn start(opts: Opts) -> Gateway {
        match Self::try_start_in(opts, Arc::new(TempDir::new())) {
            Ok(g) => g,
            Err(r) => panic!("gateway did not start ({}):\n{}", r.status, r.output),
        }
    }

    pub fn try_start(opts: Opts) -> Result<Gateway, Refused> {
        Self::try_start_in(opts, Arc::new(TempDir::new()))
    }

    /// Starts in an existing state dir (restarts, second instances).
    pub fn try_start_in(opts: Opts, state: Arc<TempDir>) -> Result<Gateway, Refused> {
        if let Some(cfg) = &opts.config {
            std::fs::write(state.path().join("moltbot.json"), cfg).expect("write config");
        }
        let mut child = spawn(&opts, state.path());
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        pump(
            child.stdout.take().expect("stdout"),
            output.clone(),
            Some(tx),
        );
        pump(child.stderr.take().expect("stderr"), output.clone(), None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                if let Some(port) = listening_port(&line) {
                    return Ok(Gateway {
                        child,
                        port,
                        state,
                        output,
                    });
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(Refused {
                    status,
                    output: output.lock().unwrap().clone(),
                });
            }
        }
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let text = output.lock().unwrap().clone();
        Err(Refused {
            status,
            output: text,
        })
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`.
    pub fn wait_output(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    pub fn config_path(&self) -> PathBuf {
        self.state.path().join("moltbot.json")
    }

    /// Opens a WebSocket and reads the `connect.challenge`.
    pub fn open(&self) -> (Ws, Value) {
        self.open_with(&[])
    }

    pub fn open_with(&self, headers: &[(&str, &str)]) -> (Ws, Value) {
        let mut ws = Ws::open(self.port, headers);
        let challenge = ws.recv().expect("connect.challenge");
        assert_eq!(challenge["event"], "connect.challenge", "{challenge}");
        (ws, challenge)
    }

    /// Opens and completes `connect` with the shared token; returns the client and hello-ok.
    pub fn connect(&self) -> (Ws, Value) {
        let (mut ws, _) = self.open();
        let res = ws.request("connect", connect_params(json!({"token": TOKEN})));
        assert_eq!(res["ok"], true, "connect failed: {res}");
        (ws, res["payload"].clone())
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
    }

    /// Waits for exit, up to `timeout`; `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_port(line: &str) -> Option<u16> {
    let rest = line.split("[gateway] listening on ws://").nth(1)?;
    let hostport = rest.split_whitespace().next()?;
    hostport.rsplit(':').next()?.parse().ok()
}

/// `connect` params for a CLI-like test client with the given `auth` block.
pub fn connect_params(auth: Value) -> Value {
    json!({
        "minProtocol": 3, "maxProtocol": 3,
        "client": {"id": "cli", "version": "test", "platform": "linux", "mode": "cli"},
        "role": "operator", "scopes": ["operator.admin"], "auth": auth,
    })
}

/// A protocol-v3 client.
pub struct Ws {
    pub sock: WebSocket<TcpStream>,
    next_id: u64,
    /// Events received while waiting for responses.
    pub events: Vec<Value>,
}

impl Ws {
    pub fn open(port: u16, headers: &[(&str, &str)]) -> Ws {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("tcp connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{port}/"
        ))
        .unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let (sock, _) = tungstenite::client(req, stream).expect("ws handshake");
        Ws {
            sock,
            next_id: 1,
            events: Vec::new(),
        }
    }

    pub fn send_text(&mut self, text: &str) {
        self.sock
            .send(Message::text(text.to_string()))
            .expect("send");
    }

    pub fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string());
    }

    /// The next JSON frame, or `None` on close/timeout.
    pub fn recv(&mut self) -> Option<Value> {
        loop {
            match self.sock.read() {
                Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Sends a request and returns its `res` frame (events seen meanwhile are kept).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = format!("r{}", self.next_id);
        self.next_id += 1;
        self.send_json(&json!({"type": "req", "id": id, "method": method, "params": params}));
        self.response(&id)
    }

    pub fn response(&mut self, id: &str) -> Value {
        loop {
            let frame = self.recv().unwrap_or_else(|| panic!("no response to {id}"));
            if frame["type"] == "res" && frame["id"] == id {
                return frame;
            }
            self.events.push(frame);
        }
    }

    /// A request expected to succeed; returns its payload.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let res = self.request(method, params);
        assert_eq!(res["ok"], true, "{method} failed: {res}");
        res["payload"].clone()
    }

    /// A request expected to fail; returns `(code, message)`.
    pub fn call_err(&mut self, method: &str, params: Value) -> (String, String) {
        let res = self.request(method, params);
        assert_eq!(res["ok"], false, "{method} unexpectedly succeeded: {res}");
        (
            res["error"]["code"].as_str().unwrap_or("").into(),
            res["error"]["message"].as_str().unwrap_or("").into(),
        )
    }

    /// Reads until the server closes; returns the close code and reason.
    pub fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.sock.read() {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(Message::Text(t)) => self
                    .events
                    .push(serde_json::from_str(t.as_str()).unwrap_or(Value::Null)),
                Ok(_) => {}
                Err(e) => panic!("socket ended without a close frame: {e}"),
            }
        }
    }

    /// Waits for an event by name (checking ones already received first).
    pub fn wait_event(&mut self, name: &str) -> Option<Value> {
        if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
            return Some(self.events.remove(i));
        }
        loop {
            let frame = self.recv()?;
            if frame["event"] == name {
                return Some(frame);
            }
            self.events.push(frame);
        }
    }
}

/// The main agent's `sessions.json` once `ready` holds for it (the usage update lands just
/// after a run's final event, as upstream); the last read after 5 s otherwise.
pub fn store_when(gw: &Gateway, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let path = gw.state.path().join("agents/main/sessions/sessions.json");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let store = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        if ready(&store) || Instant::now() > deadline {
            return store;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
