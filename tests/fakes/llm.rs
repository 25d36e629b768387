//! A loopback fake of the four LLM streaming endpoints (agents.md (b.2)–(b.4), §2.5):
//! `POST …/v1/messages` (Anthropic), `POST …/responses` (OpenAI Responses),
//! `POST …/chat/completions` (OpenAI Chat Completions) and
//! `POST …/models/<id>:streamGenerateContent?alt=sse` (Gemini), for provider and gateway tests.
//!
//! ```ignore
//! #[path = "fakes/llm.rs"] mod llm;          // in tests/<crate>.rs; in tests/it/*.rs: "../fakes/llm.rs"
//! let fake = llm::FakeLlm::start();          // binds 127.0.0.1:0 only
//! fake.push(llm::Script::text(["Hello ", "there."]));
//! // point a provider at fake.base_url() (Anthropic) or format!("{}/v1", fake.base_url()) (OpenAI)
//! let req = &fake.requests()[0];             // method, path, headers, parsed JSON body
//! ```
//!
//! A [`Script`] describes a reply abstractly (text chunks, thinking, tool calls, an error, a
//! hang) and is rendered in the wire format of whichever route the request hit, so the same
//! script works for all four APIs. Replies are taken, per request, from the route's own queue
//! (`push_for`), else the shared queue (`push`), else the responder (`respond_with`), else the
//! default (`set_default`), else a 500 saying nothing was scripted.
//!
//! Each connection gets a thread; responses are `connection: close` (streams end at EOF).
//! `in_flight()`/`max_in_flight()` count requests between "request fully read" and "response
//! finished" (a hang counts until the client goes away). Dropping the fake stops every thread.
//! Script building lives in `llm_script.rs`, the per-API SSE rendering in `llm_wire.rs` (Gemini's
//! in `llm_wire_google.rs`).

#![allow(dead_code)]

#[path = "llm_script.rs"]
mod script;
#[path = "llm_wire.rs"]
mod wire;
#[path = "llm_wire_google.rs"]
mod wire_google;

pub use script::{Canned, Part, Script};
use script::{Ending, Reply};

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use wire::{canned, render, Wire};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How often a hanging or delayed reply checks for shutdown / a vanished client.
const POLL: Duration = Duration::from_millis(10);

/// Which API a request path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Anthropic,
    Responses,
    Chat,
    /// Gemini `…/models/<id>:streamGenerateContent` (the model is in the path).
    Google,
}

impl Route {
    /// By suffix, so base URLs with a prefix (`/anthropic/v1/messages`) work too.
    pub fn from_path(path: &str) -> Option<Route> {
        let path = path.split('?').next().unwrap_or(path);
        if path.ends_with("/v1/messages") {
            Some(Route::Anthropic)
        } else if path.ends_with("/responses") {
            Some(Route::Responses)
        } else if path.ends_with("/chat/completions") {
            Some(Route::Chat)
        } else if path.ends_with(":streamGenerateContent") {
            Some(Route::Google)
        } else {
            None
        }
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub route: Option<Route>,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body (`Null` if it was not JSON).
    pub body: Value,
    pub raw_body: String,
    /// When the request's first byte arrived.
    pub arrived: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last message (Anthropic/Chat `messages`), input item (Responses `input`) or
    /// content (Gemini `contents`).
    pub fn last_message(&self) -> Option<&Value> {
        self.body
            .get("messages")
            .or_else(|| self.body.get("input"))
            .or_else(|| self.body.get("contents"))
            .and_then(Value::as_array)
            .and_then(|a| a.last())
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Option<Script> + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<Script>,
    by_route: HashMap<Route, VecDeque<Script>>,
    responder: Option<Responder>,
    default: Option<Script>,
    requests: Vec<Recorded>,
    in_flight: usize,
    max_in_flight: usize,
    /// Per answered request: when its first byte arrived and when its response ended.
    timings: Vec<(Instant, Instant)>,
    conns: Vec<TcpStream>,
    handlers: Vec<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take every later assertion down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The fake server. Stops (and joins its threads) on drop.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FakeLlm {
    pub fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake llm: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake llm: local addr");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        let accept = thread::Builder::new()
            .name("fake-llm-accept".into())
            .spawn(move || accept_loop(listener, s))
            .expect("fake llm: spawn");
        FakeLlm {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>` (Anthropic base URL; OpenAI providers use `<this>/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queue a reply for the next request on any route.
    pub fn push(&self, script: Script) {
        self.shared.lock().queue.push_back(script);
    }

    /// Queue a reply for the next request on `route` (checked before the shared queue).
    pub fn push_for(&self, route: Route, script: Script) {
        self.shared
            .lock()
            .by_route
            .entry(route)
            .or_default()
            .push_back(script);
    }

    /// Decide replies from the request itself when the queues are empty (e.g. branch on
    /// "the last user message holds a tool_result"); `None` falls through to the default.
    pub fn respond_with(&self, f: impl Fn(&Recorded) -> Option<Script> + Send + Sync + 'static) {
        self.shared.lock().responder = Some(Arc::new(f));
    }

    /// Reply used when nothing else applies.
    pub fn set_default(&self, script: Script) {
        self.shared.lock().default = Some(script);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Blocks until at least `n` requests arrived; false on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.requests.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.shared.changed.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// Blocks until no request is being answered; false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.in_flight() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
        true
    }

    pub fn in_flight(&self) -> usize {
        self.shared.lock().in_flight
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.lock().max_in_flight
    }

    /// `(first request byte, response ended)` per answered request, in completion order.
    pub fn timings(&self) -> Vec<(Instant, Instant)> {
        self.shared.lock().timings.clone()
    }

    /// Scripts still queued (shared and per-route).
    pub fn pending(&self) -> usize {
        let st = self.shared.lock();
        st.queue.len() + st.by_route.values().map(VecDeque::len).sum::<usize>()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, then cut every open connection so no handler stays blocked.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let (conns, handlers) = {
            let mut st = self.shared.lock();
            (
                std::mem::take(&mut st.conns),
                std::mem::take(&mut st.handlers),
            )
        };
        for c in conns {
            let _ = c.shutdown(Shutdown::Both);
        }
        for h in handlers {
            let _ = h.join();
        }
    }
}

/// Each connection goes to a handler thread started before it arrived, so the fake's own
/// thread start is never inside the time it reports for a request (benchmarks subtract that
/// time as the provider's).
fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut spare = spawn_handler(&shared);
    for conn in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let Ok(stream) = conn else { continue };
        let clone = stream.try_clone().ok();
        let handler = spare.take().or_else(|| spawn_handler(&shared));
        if let Some((tx, handle)) = handler {
            let _ = tx.send(stream);
            let mut st = shared.lock();
            st.conns.extend(clone);
            st.handlers.push(handle);
        }
        spare = spawn_handler(&shared);
    }
    // The unused spare ends when its sender goes.
    if let Some((tx, handle)) = spare {
        drop(tx);
        let _ = handle.join();
    }
}

fn spawn_handler(shared: &Arc<Shared>) -> Option<(mpsc::Sender<TcpStream>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<TcpStream>();
    let s = shared.clone();
    let handle = thread::Builder::new()
        .name("fake-llm-conn".into())
        .spawn(move || {
            if let Ok(stream) = rx.recv() {
                handle_conn(stream, &s);
            }
        })
        .ok()?;
    Some((tx, handle))
}

fn handle_conn(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let req = match read_request(&mut stream) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(msg) => {
            let _ = write_http(
                &mut stream,
                400,
                &[],
                &json!({"error": {"message": msg}}).to_string(),
            );
            return;
        }
    };
    let script = {
        let mut st = shared.lock();
        st.requests.push(req.clone());
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        shared.changed.notify_all();
        pick_script(&mut st, &req)
    };
    let _ = respond(&mut stream, shared, &req, script);
    let _ = stream.shutdown(Shutdown::Both);
    let mut st = shared.lock();
    st.timings.push((req.arrived, Instant::now()));
    st.in_flight -= 1;
    shared.changed.notify_all();
}

fn pick_script(st: &mut State, req: &Recorded) -> Option<Script> {
    if let Some(s) = req
        .route
        .and_then(|r| st.by_route.get_mut(&r))
        .and_then(VecDeque::pop_front)
    {
        return Some(s);
    }
    if let Some(s) = st.queue.pop_front() {
        return Some(s);
    }
    if let Some(s) = st.responder.clone().and_then(|f| f(req)) {
        return Some(s);
    }
    st.default.clone()
}

/// Reads one request: head up to `MAX_HEAD`, then a `content-length` body. `Ok(None)` when the
/// peer connected and left without a request (the shutdown wake-up does that).
fn read_request(stream: &mut TcpStream) -> Result<Option<Recorded>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut arrived = None;
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err("connection closed mid-request".into()),
            Ok(n) => {
                arrived.get_or_insert_with(Instant::now);
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err("request body too large".into());
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) => return Err("connection closed mid-body".into()),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    body.truncate(len);
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    Ok(Some(Recorded {
        route: Route::from_path(&path),
        method,
        path,
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
        arrived: arrived.unwrap_or_else(Instant::now),
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_http(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let has_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_type {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Sleeps in slices; false if the fake is shutting down meanwhile.
fn nap(shared: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if shared.stopping() {
            return false;
        }
        thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
    }
    !shared.stopping()
}

fn respond(
    stream: &mut TcpStream,
    shared: &Shared,
    req: &Recorded,
    script: Option<Script>,
) -> io::Result<()> {
    let Some(route) = req.route else {
        let body = json!({"error": {"type": "not_found", "message": format!("fake llm: no route {}", req.path)}});
        return write_http(stream, 404, &[], &body.to_string());
    };
    let Some(script) = script else {
        let body = json!({"error": {"type": "api_error", "message": "fake llm: no script queued"}});
        return write_http(stream, 500, &[], &body.to_string());
    };
    if !nap(shared, script.head_delay) {
        return Ok(());
    }
    match &script.reply {
        Reply::Http {
            status,
            headers,
            body,
        } => write_http(stream, *status, headers, body),
        Reply::Canned(kind) => {
            let (status, headers, body) = canned(route, *kind);
            write_http(stream, status, &headers, &body)
        }
        Reply::Stream { parts, ending } => {
            let model = req
                .body
                .get("model")
                .and_then(Value::as_str)
                .or_else(|| gemini_model(&req.path))
                .unwrap_or("fake-model");
            let wire = render(route, model, parts, &script);
            stream_reply(stream, shared, &wire, ending, &script)
        }
    }
}

/// `gemini-x` of `…/models/gemini-x:streamGenerateContent?alt=sse`.
fn gemini_model(path: &str) -> Option<&str> {
    let path = path.split('?').next()?;
    path.rsplit('/')
        .next()?
        .strip_suffix(":streamGenerateContent")
}

fn stream_reply(
    stream: &mut TcpStream,
    shared: &Shared,
    wire: &Wire,
    ending: &Ending,
    s: &Script,
) -> io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
    )?;
    let tail: Vec<String> = match ending {
        Ending::Normal => wire.closing.clone(),
        Ending::Error(data) => vec![wire.error_frame(data.as_deref())],
        Ending::Hang => Vec::new(),
    };
    for (i, frame) in wire.body.iter().chain(tail.iter()).enumerate() {
        if i > 0 && !nap(shared, s.chunk_delay) {
            return Ok(());
        }
        stream.write_all(frame.as_bytes())?;
        stream.flush()?;
    }
    if matches!(ending, Ending::Hang) {
        hold_open(stream, shared);
    }
    Ok(())
}

/// Keeps a hanging reply's connection until the client closes it or the fake stops.
fn hold_open(stream: &mut TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(POLL));
    let mut buf = [0u8; 256];
    while !shared.stopping() {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
