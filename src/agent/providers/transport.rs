//! One streaming HTTP exchange with ureq: a helper thread does the blocking I/O and SSE framing,
//! the caller's thread decodes frames and waits on three things at once — the next frame, the
//! abort signal and the request deadline. Each worker thread keeps its helper (`Helper`) and the
//! helper its agent, so a kept-alive connection (with its TLS session) serves the next call, as
//! the providers' SDKs reuse theirs; an IP-literal host skips ureq's per-lookup resolver thread
//! (`LiteralFirst`).
//!
//! Abort: the signal's hook shuts the helper's ureq `Agent` down (`Agent::shutdown` shuts its
//! sockets, so a read blocked on a silent server returns at once) and wakes the caller, which
//! returns immediately — even while the helper is still inside DNS or `connect`, which ureq
//! cannot interrupt (the helper then ends when the connect timeout expires). A shut-down agent
//! takes no more requests, so that helper is retired and the next call starts a new one; the
//! same happens when the caller stops mid-stream for any other reason (deadline, a bad frame).

use super::error::ProviderError;
use super::sse::{SseError, SseEvent, SseReader};
use super::AbortSignal;
use crossbeam_channel::{after, bounded, select, Receiver, Sender};
use std::cell::RefCell;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

/// Frames buffered between the helper and the decoder; the helper blocks (and the socket's
/// receive window fills) when the decoder falls behind.
const FRAME_QUEUE: usize = 64;
/// Error bodies are read up to this size.
const MAX_ERROR_BODY: u64 = 256 * 1024;
/// Upper bound for DNS + TCP + TLS setup (never longer than the request's own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle kept-alive connections per helper (one per host: a model and its fallback's).
const IDLE_CONNECTIONS: usize = 2;
/// An idle connection older than this is closed rather than reused (ureq's default; well
/// inside the idle limits of the providers' front ends).
const IDLE_AGE: Duration = Duration::from_secs(15);
/// After the caller's terminal frame, the helper reads at most this much more of the body.
const MAX_DRAIN: u64 = 64 * 1024;
/// How long a call waits for the helper to finish the last body before starting a new one.
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

/// Helper → caller messages.
enum Wire {
    Frame(SseEvent),
    Eof,
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Fail(ProviderError),
}

/// What the caller hears while the exchange runs.
pub(crate) enum Pumped {
    /// The request is with the HTTP thread: the caller may do other work until the first frame.
    Dispatched,
    Frame(SseEvent),
}

/// Runs the exchange; `on_frame` returns `Ok(true)` once the stream is logically complete.
pub(crate) fn exchange(
    call: HttpCall,
    abort: &AbortSignal,
    on_frame: &mut dyn FnMut(Pumped) -> Result<bool, ProviderError>,
) -> Exchange {
    if abort.is_aborted() {
        return Exchange::Aborted;
    }
    let helper = match Helper::take() {
        Ok(h) => h,
        Err(e) => {
            log::warn!("provider: cannot start the HTTP thread: {e}");
            return Exchange::Failed(ProviderError::connection());
        }
    };
    let (abort_tx, abort_rx) = bounded::<()>(1);
    let hook = {
        let agent = helper.agent.clone();
        abort.on_abort(move || {
            let _ = abort_tx.try_send(());
            agent.shutdown();
        })
    };
    let timeout = call.timeout;
    let (tx, rx) = bounded::<Wire>(FRAME_QUEUE);
    let (result, helper_done) = match helper.calls.send((call, tx)) {
        Ok(()) => {
            // The clock starts before the caller's side work, which must not stretch it.
            let deadline = after(timeout);
            let _ = on_frame(Pumped::Dispatched);
            pump(&rx, &abort_rx, &deadline, on_frame)
        }
        // The helper is gone (it cannot have started a request).
        Err(_) => (Exchange::Failed(ProviderError::connection()), false),
    };
    // Once the hook is unregistered it cannot run any more; if the run was aborted it may have
    // shut the agent down already.
    drop(hook);
    if abort.is_aborted() {
        helper.retire();
        return Exchange::Aborted;
    }
    if helper_done {
        helper.keep();
    } else {
        // Mid-stream (deadline, a decoder error): shutting the agent down unblocks the helper.
        helper.retire();
    }
    result
}

/// The HTTP thread of one worker thread, with its own agent, kept from call to call so its
/// kept-alive connection (and TLS session) serves the next request: the first call of a
/// worker thread starts it. An abort shuts its agent down, which ends it; the next call starts
/// a new one.
struct Helper {
    agent: Agent,
    calls: Sender<(HttpCall, Sender<Wire>)>,
    /// Holds a token whenever the helper is between calls.
    ready: Receiver<()>,
}

thread_local! {
    static HELPER: RefCell<Option<Helper>> = const { RefCell::new(None) };
}

impl Helper {
    fn start() -> io::Result<Helper> {
        let agent = make_agent();
        let (calls, inbox) = bounded::<(HttpCall, Sender<Wire>)>(1);
        // A token after each call; `take` consumes it before handing the next one over.
        let (ready_tx, ready) = bounded::<()>(1);
        let worker = agent.clone();
        // When the worker thread ends (or retires it), the helper's sender drops and it returns.
        crate::threads::spawn_named("llm-http", crate::threads::STACK_PARSER, move || {
            while let Ok((call, tx)) = inbox.recv() {
                run_call(&worker, call, &tx);
                if ready_tx.try_send(()).is_err() {
                    return;
                }
            }
        })?;
        Ok(Helper {
            agent,
            calls,
            ready,
        })
    }

    /// This thread's helper once its last call has finished (after a caller stopped at its
    /// terminal frame, the helper still reads the body's end); a helper that does not finish
    /// within `DRAIN_WAIT` is retired and a new one started.
    fn take() -> io::Result<Helper> {
        if let Some(h) = HELPER.with(|s| s.borrow_mut().take()) {
            if h.ready.recv_timeout(DRAIN_WAIT).is_ok() {
                return Ok(h);
            }
            log::debug!("provider: the last response did not end; new HTTP thread");
            h.retire();
        }
        Helper::start()
    }

    fn keep(self) {
        HELPER.with(|s| *s.borrow_mut() = Some(self));
    }

    /// Shuts the agent's sockets (a blocked read returns at once) and drops the call sender,
    /// so the thread ends as soon as its call does.
    fn retire(self) {
        self.agent.shutdown();
    }
}

/// Timeouts are per request (`run_call`), so one agent suits every call of its helper.
fn make_agent() -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(IDLE_CONNECTIONS)
        .max_idle_connections_per_host(1)
        .max_idle_age(IDLE_AGE)
        .build();
    Agent::with_parts(config, DefaultConnector::new(), LiteralFirst::default())
}

/// ureq's resolver starts a thread for every lookup that has a timeout; an IP-literal host (a
/// local model server, the test fakes) needs no lookup at all. Names still go to ureq's.
#[derive(Debug, Default)]
struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match ip_literal(uri) {
            Some(addr) => {
                let mut found = self.empty();
                found.push(addr);
                Ok(found)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

fn ip_literal(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, Some("http")) => 80,
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The exchange's end, and whether the helper has finished its call (it sent its verdict, or
/// it only has the body's end left to read) and can take the next one.
fn pump(
    rx: &Receiver<Wire>,
    abort_rx: &Receiver<()>,
    deadline: &Receiver<std::time::Instant>,
    on_frame: &mut dyn FnMut(Pumped) -> Result<bool, ProviderError>,
) -> (Exchange, bool) {
    loop {
        select! {
            recv(rx) -> msg => match msg {
                Ok(Wire::Frame(ev)) => match on_frame(Pumped::Frame(ev)) {
                    Ok(true) => return (Exchange::Complete, true),
                    Ok(false) => {}
                    Err(e) => return (Exchange::Failed(e), false),
                },
                Ok(Wire::Eof) => return (Exchange::Complete, true),
                Ok(Wire::Http { status, headers, body }) => {
                    return (Exchange::HttpError { status, headers, body }, true)
                }
                Ok(Wire::Fail(e)) => return (Exchange::Failed(e), true),
                // The helper ended without a verdict (it panicked).
                Err(_) => return (Exchange::Failed(ProviderError::terminated()), false),
            },
            recv(abort_rx) -> _ => return (Exchange::Aborted, false),
            recv(deadline) -> _ => return (Exchange::Failed(ProviderError::timeout()), false),
        }
    }
}

/// Helper thread body. Every send may fail once the caller has gone; that just ends the thread.
fn run_call(agent: &Agent, call: HttpCall, tx: &Sender<Wire>) {
    // The caller enforces `timeout` itself; ureq's copy, a little later, only bounds the helper.
    let mut req = agent
        .post(&call.url)
        .config()
        .timeout_global(Some(call.timeout + Duration::from_secs(1)))
        .timeout_connect(Some(call.timeout.min(CONNECT_TIMEOUT)))
        .build();
    for (k, v) in &call.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = match req.send(&call.body[..]) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Wire::Fail(request_error(e)));
            return;
        }
    };
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.into_body().into_reader();
    if !(200..300).contains(&status) {
        let body = read_error_body(body);
        let _ = tx.send(Wire::Http {
            status,
            headers,
            body,
        });
        return;
    }
    let mut sse = SseReader::new(body);
    loop {
        let msg = match sse.next_event() {
            Ok(Some(ev)) => Wire::Frame(ev),
            Ok(None) => Wire::Eof,
            Err(e) => Wire::Fail(stream_error(e)),
        };
        let last = !matches!(msg, Wire::Frame(_));
        if tx.send(msg).is_err() {
            // The caller stopped at its terminal frame: what is left of the body (normally
            // just its end) is read so the connection goes back to the agent's pool; a body
            // that goes on past `MAX_DRAIN` is dropped instead, which closes the connection.
            sse.discard_rest(MAX_DRAIN);
            return;
        }
        if last {
            return;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_literals_skip_the_lookup() {
        let addr = |u: &str| ip_literal(&u.parse::<Uri>().unwrap());
        assert_eq!(
            addr("http://127.0.0.1:8080/v1"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            addr("https://[::1]/v1/messages"),
            Some("[::1]:443".parse().unwrap())
        );
        assert_eq!(
            addr("http://10.0.0.2/x"),
            Some("10.0.0.2:80".parse().unwrap())
        );
        assert_eq!(addr("https://api.anthropic.com/v1/messages"), None);
        assert_eq!(addr("http://localhost:11434/v1"), None);
    }
}
