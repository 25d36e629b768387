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
//! Each connection gets a thread and stays open between requests (`connection: keep-alive`,
//! streams in chunked framing, as the real APIs answer); a hang ends its connection.
//! `in_flight()`/`max_in_flight()` count requests between "request fully read" and "response
//! finished" (a hang counts until the client goes away). Dropping the fake stops every thread.
//! Script building lives in `llm_script.rs`, the per-API SSE rendering in `llm_wire.rs` (Gemini's
//! in `llm_wire_google.rs`).

#![allow(dead_code)]

#[path = "llm_http.rs"]
mod http;
#[path = "llm_script.rs"]
mod script;
#[path = "llm_wire.rs"]
mod wire;
#[path = "llm_wire_google.rs"]
mod wire_google;

pub use script::{Canned, Part, Script};
use script::{Ending, Reply};

use http::{connection, read_request, write_chunk, write_http};
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
    /// Which connection carried it: 1 for the first the fake accepted, and so on.
    pub conn: usize,
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
    accepted: usize,
}

struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    /// Waits on `changed` until `found` gives a value, at most `timeout`.
    fn wait_for<T>(&self, timeout: Duration, found: impl Fn(&State) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(v) = found(&st) {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = match self.changed.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

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
        let enough = |st: &State| (st.requests.len() >= n).then_some(());
        self.shared.wait_for(timeout, enough).is_some()
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

    /// Connections accepted so far (a client that keeps its connection alive makes one).
    pub fn connections(&self) -> usize {
        self.shared.lock().accepted
    }

    /// `(first request byte, response ended)` per answered request, in completion order.
    pub fn timings(&self) -> Vec<(Instant, Instant)> {
        self.shared.lock().timings.clone()
    }

    /// The `i`-th entry of `timings`, waiting for it until `timeout`: the fake records a
    /// request's timing after its last write, so a client can read the answer's end first.
    pub fn timing(&self, i: usize, timeout: Duration) -> Option<(Instant, Instant)> {
        self.shared
            .wait_for(timeout, |st| st.timings.get(i).copied())
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
            let mut st = shared.lock();
            st.accepted += 1;
            let _ = tx.send((stream, st.accepted));
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

type Handler = (mpsc::Sender<(TcpStream, usize)>, JoinHandle<()>);

fn spawn_handler(shared: &Arc<Shared>) -> Option<Handler> {
    let (tx, rx) = mpsc::channel::<(TcpStream, usize)>();
    let s = shared.clone();
    let handle = thread::Builder::new()
        .name("fake-llm-conn".into())
        .spawn(move || {
            if let Ok((stream, conn)) = rx.recv() {
                handle_conn(stream, conn, &s);
            }
        })
        .ok()?;
    Some((tx, handle))
}

/// Requests on one connection, one after another, while the replies keep it alive (a finished
/// reply does; a hang, an error writing or a request saying `connection: close` do not).
fn handle_conn(mut stream: TcpStream, conn: usize, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    // Each SSE frame leaves when written, as from the real APIs' servers. With Nagle on, a frame
    // waits for the ACK of the one before, which the client delays up to 40 ms: a 20-frame
    // stream would reach the gateway as one burst at its end.
    let _ = stream.set_nodelay(true);
    loop {
        let req = match read_request(&mut stream, conn) {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(msg) => {
                let body = json!({"error": {"message": msg}}).to_string();
                let _ = write_http(&mut stream, 400, &[], &body, false);
                break;
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
        let keep = !req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let kept = respond(&mut stream, shared, &req, script, keep).unwrap_or(false);
        let mut st = shared.lock();
        st.timings.push((req.arrived, Instant::now()));
        st.in_flight -= 1;
        shared.changed.notify_all();
        if !kept {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
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

/// Writes the reply; `Ok(true)` if the connection can take another request.
fn respond(
    stream: &mut TcpStream,
    shared: &Shared,
    req: &Recorded,
    script: Option<Script>,
    keep: bool,
) -> io::Result<bool> {
    let Some(route) = req.route else {
        let body = json!({"error": {"type": "not_found", "message": format!("fake llm: no route {}", req.path)}});
        return write_http(stream, 404, &[], &body.to_string(), keep);
    };
    let Some(script) = script else {
        let body = json!({"error": {"type": "api_error", "message": "fake llm: no script queued"}});
        return write_http(stream, 500, &[], &body.to_string(), keep);
    };
    if !nap(shared, script.head_delay) {
        return Ok(false);
    }
    match &script.reply {
        Reply::Http {
            status,
            headers,
            body,
        } => write_http(stream, *status, headers, body, keep),
        Reply::Canned(kind) => {
            let (status, headers, body) = canned(route, *kind);
            write_http(stream, status, &headers, &body, keep)
        }
        Reply::Stream { parts, ending } => {
            let model = req
                .body
                .get("model")
                .and_then(Value::as_str)
                .or_else(|| gemini_model(&req.path))
                .unwrap_or("fake-model");
            let wire = render(route, model, parts, &script);
            stream_reply(stream, shared, &wire, ending, &script, keep)
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

/// An SSE body in chunked framing, as the real APIs send it; a hang sends no final chunk.
fn stream_reply(
    stream: &mut TcpStream,
    shared: &Shared,
    wire: &Wire,
    ending: &Ending,
    s: &Script,
    keep: bool,
) -> io::Result<bool> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         transfer-encoding: chunked\r\nconnection: {}\r\n\r\n",
        connection(keep)
    );
    stream.write_all(head.as_bytes())?;
    let tail: Vec<String> = match ending {
        Ending::Normal => wire.closing.clone(),
        Ending::Error(data) => vec![wire.error_frame(data.as_deref())],
        Ending::Hang => Vec::new(),
        Ending::Linger => wire.closing.clone(),
    };
    for (i, frame) in wire.body.iter().chain(tail.iter()).enumerate() {
        if i > 0 && !nap(shared, s.chunk_delay) {
            return Ok(false);
        }
        write_chunk(stream, frame.as_bytes())?;
    }
    if matches!(ending, Ending::Hang | Ending::Linger) {
        hold_open(stream, shared);
        return Ok(false);
    }
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()?;
    Ok(keep)
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
