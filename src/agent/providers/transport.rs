//! One streaming HTTP exchange with ureq: a helper thread does the blocking I/O and SSE framing,
//! the caller's thread decodes frames and waits on three things at once — the next frame, the
//! abort signal and the request deadline.
//!
//! Abort: the signal's hook shuts the exchange's private ureq `Agent` down (`Agent::shutdown`
//! shuts its sockets, so a read blocked on a silent server returns at once) and wakes the
//! caller, which returns immediately — even while the helper is still inside DNS or `connect`,
//! which ureq cannot interrupt (the helper then ends when the connect timeout expires). The same
//! shutdown runs when the caller stops for any other reason, so no helper outlives its exchange
//! by more than that connect bound.

use super::error::ProviderError;
use super::sse::{SseError, SseEvent, SseReader};
use super::AbortSignal;
use crossbeam_channel::{after, bounded, select, Receiver};
use std::io::Read;
use std::time::Duration;
use ureq::Agent;

/// Frames buffered between the helper and the decoder; the helper blocks (and the socket's
/// receive window fills) when the decoder falls behind.
const FRAME_QUEUE: usize = 64;
/// Error bodies are read up to this size.
const MAX_ERROR_BODY: u64 = 256 * 1024;
/// Upper bound for DNS + TCP + TLS setup (never longer than the request's own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Runs the exchange; `on_frame` returns `Ok(true)` once the stream is logically complete.
pub(crate) fn exchange(
    call: HttpCall,
    abort: &AbortSignal,
    on_frame: &mut dyn FnMut(SseEvent) -> Result<bool, ProviderError>,
) -> Exchange {
    if abort.is_aborted() {
        return Exchange::Aborted;
    }
    let timeout = call.timeout;
    let agent = make_agent(timeout);
    let (abort_tx, abort_rx) = bounded::<()>(1);
    let _hook = {
        let agent = agent.clone();
        abort.on_abort(move || {
            let _ = abort_tx.try_send(());
            agent.shutdown();
        })
    };
    let (tx, rx) = bounded::<Wire>(FRAME_QUEUE);
    let worker = agent.clone();
    let spawned =
        crate::threads::spawn_named("llm-http", crate::threads::STACK_PARSER, move || {
            run_call(&worker, call, &tx)
        });
    let result = match spawned {
        Ok(_) => pump(&rx, &abort_rx, timeout, on_frame),
        Err(e) => {
            log::warn!("provider: cannot start the HTTP thread: {e}");
            Exchange::Failed(ProviderError::connection())
        }
    };
    // Unblock the helper whatever happened (a no-op if it already finished).
    agent.shutdown();
    if abort.is_aborted() {
        return Exchange::Aborted;
    }
    result
}

fn make_agent(timeout: Duration) -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        // The caller enforces `timeout` itself; ureq's copy, a little later, only bounds the helper.
        .timeout_global(Some(timeout + Duration::from_secs(1)))
        .timeout_connect(Some(timeout.min(CONNECT_TIMEOUT)))
        .max_idle_connections(0)
        .build();
    Agent::new_with_config(config)
}

fn pump(
    rx: &Receiver<Wire>,
    abort_rx: &Receiver<()>,
    timeout: Duration,
    on_frame: &mut dyn FnMut(SseEvent) -> Result<bool, ProviderError>,
) -> Exchange {
    let deadline = after(timeout);
    loop {
        select! {
            recv(rx) -> msg => match msg {
                Ok(Wire::Frame(ev)) => match on_frame(ev) {
                    Ok(true) => return Exchange::Complete,
                    Ok(false) => {}
                    Err(e) => return Exchange::Failed(e),
                },
                Ok(Wire::Eof) => return Exchange::Complete,
                Ok(Wire::Http { status, headers, body }) => {
                    return Exchange::HttpError { status, headers, body }
                }
                Ok(Wire::Fail(e)) => return Exchange::Failed(e),
                // The helper ended without a verdict (it panicked).
                Err(_) => return Exchange::Failed(ProviderError::terminated()),
            },
            recv(abort_rx) -> _ => return Exchange::Aborted,
            recv(deadline) -> _ => return Exchange::Failed(ProviderError::timeout()),
        }
    }
}

/// Helper thread body. Every send may fail once the caller has gone; that just ends the thread.
fn run_call(agent: &Agent, call: HttpCall, tx: &crossbeam_channel::Sender<Wire>) {
    let mut req = agent.post(&call.url);
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
        if tx.send(msg).is_err() || last {
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
