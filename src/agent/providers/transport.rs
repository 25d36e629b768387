//! One streaming HTTP exchange with ureq, on the turn's own thread: the request goes out, the
//! SSE frames are read and handed to the decoder as they arrive. Each worker thread keeps its
//! ureq agent from call to call (thread-local), so a kept-alive connection (with its TLS
//! session) serves the next call, as the providers' SDKs reuse theirs.
//!
//! The request's timeout is ureq's global one: it bounds the connect, the response head and
//! every read of the body. Abort: the signal's hook shuts the agent down (`Agent::shutdown`
//! shuts its sockets, so a read blocked on a silent server returns at once); the steps a
//! shutdown cannot interrupt, the name lookup and the TCP connect of a new connection, run on
//! short-lived threads that the turn stops waiting for (`connect.rs`). A shut-down agent takes
//! no more requests, so the next call makes a new one.
//!
//! After the decoder's terminal frame the rest of the body (normally just the end of its
//! chunked framing) is read, so the connection goes back to the agent's pool: once the turn's
//! end has gone out (`settle`), or before this thread's next call, whichever comes first; for
//! 20 ms at most: a body left open past that is dropped with its connection, so a server that
//! never ends it cannot hold a turn up.

use super::connect::{self, AbortableTcp, LiteralFirst};
use super::error::ProviderError;
use super::sse::{SseError, SseEvent, SseReader};
use super::AbortSignal;
use crossbeam_channel::bounded;
use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};
use ureq::Agent;

/// Error bodies are read up to this size.
const MAX_ERROR_BODY: u64 = 256 * 1024;
/// Upper bound for DNS + TCP + TLS setup (never longer than the request's own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle kept-alive connections per agent (one per host: a model and its fallback's).
const IDLE_CONNECTIONS: usize = 2;
/// An idle connection older than this is closed rather than reused (ureq's default; well
/// inside the idle limits of the providers' front ends).
const IDLE_AGE: Duration = Duration::from_secs(15);
/// After the decoder's terminal frame, at most this much more of the body is read; a body
/// that goes on is dropped instead, which closes its connection.
const MAX_DRAIN: u64 = 64 * 1024;
/// … and for at most this long: a body that has not ended by then is dropped too (its
/// connection with it), so a server that leaves it open cannot hold the turn up.
const DRAIN_WAIT: Duration = Duration::from_millis(20);

/// What to send.
pub(crate) struct HttpCall {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// How an exchange ended.
pub(crate) enum Exchange {
    /// The stream ended (end of body, or the decoder saw its terminal frame).
    Complete,
    /// Non-2xx status.
    HttpError {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Network failure, timeout, bad stream, or an error the decoder raised.
    Failed(ProviderError),
    Aborted,
}

type Body = SseReader<ureq::BodyReader<'static>>;

thread_local! {
    static AGENT: RefCell<Option<Agent>> = const { RefCell::new(None) };
    /// The last call's body, complete as far as its decoder cares, its end not read yet.
    static UNREAD: RefCell<Option<Body>> = const { RefCell::new(None) };
}

/// Reads the end of this thread's last body, if it is still owed (for at most `DRAIN_WAIT`),
/// so its connection goes back to the agent's pool. The turn calls it once its end has gone
/// out; the next call on this thread calls it first in any case.
pub(crate) fn settle() {
    if let Some(mut body) = UNREAD.with(|u| u.borrow_mut().take()) {
        connect::with_reads_bounded(DRAIN_WAIT, || body.discard_rest(MAX_DRAIN));
    }
}

/// Runs the exchange; `on_frame` returns `Ok(true)` once the stream is logically complete.
pub(crate) fn exchange(
    call: HttpCall,
    abort: &AbortSignal,
    on_frame: &mut dyn FnMut(SseEvent) -> Result<bool, ProviderError>,
) -> Exchange {
    if abort.is_aborted() {
        return Exchange::Aborted;
    }
    settle();
    let agent = AGENT
        .with(|a| a.borrow_mut().take())
        .unwrap_or_else(make_agent);
    // The hook owns the sender: running it (or unregistering it) disconnects the receiver,
    // which every abortable step waits on.
    let (abort_tx, abort_rx) = bounded::<()>(1);
    let hook = {
        let agent = agent.clone();
        abort.on_abort(move || {
            drop(abort_tx);
            agent.shutdown();
        })
    };
    let result = connect::with_call_abort(abort_rx, || run_call(&agent, call, on_frame));
    // Once the hook is unregistered it cannot run any more. `abort` sets the flag before it
    // runs the hooks, so a hook that did run (and shut the agent down) is seen here.
    drop(hook);
    if abort.is_aborted() {
        return Exchange::Aborted;
    }
    AGENT.with(|a| *a.borrow_mut() = Some(agent));
    result
}

/// Timeouts are per request (`run_call`), so one agent suits every call of its thread.
fn make_agent() -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(IDLE_CONNECTIONS)
        .max_idle_connections_per_host(1)
        .max_idle_age(IDLE_AGE)
        .build();
    // ureq's default chain, with the TCP connect made abortable.
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(AbortableTcp)
            .chain(RustlsConnector::default());
    Agent::with_parts(config, connector, LiteralFirst::default())
}

fn run_call(
    agent: &Agent,
    call: HttpCall,
    on_frame: &mut dyn FnMut(SseEvent) -> Result<bool, ProviderError>,
) -> Exchange {
    let mut req = agent
        .post(&call.url)
        .config()
        .timeout_global(Some(call.timeout))
        .timeout_connect(Some(call.timeout.min(CONNECT_TIMEOUT)))
        .build();
    for (k, v) in &call.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = match req.send(&call.body[..]) {
        Ok(r) => r,
        Err(e) => return Exchange::Failed(request_error(e)),
    };
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        // The classifiers read some of these (`retry-after`, `x-should-retry`).
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_string(), value)
            })
            .collect();
        let body = read_error_body(resp.into_body().into_reader());
        return Exchange::HttpError {
            status,
            headers,
            body,
        };
    }
    let mut sse = SseReader::new(resp.into_body().into_reader());
    loop {
        match sse.next_event() {
            Ok(Some(ev)) => match on_frame(ev) {
                Ok(true) => {
                    // What is left is normally just the end of the chunked framing: read
                    // later, off the way to the clients.
                    UNREAD.with(|u| *u.borrow_mut() = Some(sse));
                    return Exchange::Complete;
                }
                Ok(false) => {}
                Err(e) => return Exchange::Failed(e),
            },
            Ok(None) => return Exchange::Complete,
            Err(e) => return Exchange::Failed(stream_error(e)),
        }
    }
}

fn read_error_body(body: impl Read) -> String {
    let mut buf = Vec::new();
    // A body that breaks off mid-way still says something useful: keep what arrived.
    let _ = body.take(MAX_ERROR_BODY).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Failures before a response: the SDKs report them all as `Connection error.` (or a timeout).
fn request_error(e: ureq::Error) -> ProviderError {
    log::debug!("provider: request failed: {e}");
    match e {
        ureq::Error::Timeout(_) => ProviderError::timeout(),
        _ => ProviderError::connection(),
    }
}

/// Failures while reading the stream.
fn stream_error(e: SseError) -> ProviderError {
    match e {
        SseError::Io(io) => {
            log::debug!("provider: stream read failed: {io}");
            match ureq::Error::from(io) {
                ureq::Error::Timeout(_) => ProviderError::timeout(),
                _ => ProviderError::terminated(),
            }
        }
        other => ProviderError::stream(other.to_string()),
    }
}
