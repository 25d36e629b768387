//! One WebSocket client, from the upgrade to the last frame: the upgrade (tungstenite, with the
//! Origin rule), the `connect.challenge`, and the reader loop that turns frames into `Event`s for
//! the gateway loop. The reader never writes to the socket itself: protocol bytes its tungstenite
//! state produces go through the client's `ClientTx` (see `server::writer`).

use crossbeam_channel::Sender;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::writer::{self, ClientTx};
use super::ListenerShared;
use crate::gateway::event::{ConnId, Event, WsOpen};

/// Upstream's `maxPayload`: larger incoming messages close the socket with 1009.
pub const MAX_PAYLOAD: usize = 524_288;
/// Handshake timeout: a client that has not completed `connect` by then is closed with 1000.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The handshake timeout; `CLAWDBOT_TEST_HANDSHAKE_TIMEOUT_MS` shortens it (as upstream's tests do).
pub fn handshake_timeout() -> Duration {
    static T: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        crate::state::paths::env_nonempty("CLAWDBOT_TEST_HANDSHAKE_TIMEOUT_MS")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)
    })
}
/// Refusal text for browser upgrades from origins that are not allowed (upstream's later wording).
pub const ORIGIN_REFUSED: &str =
    "origin not allowed (open the Control UI from the gateway host or allow it in gateway.controlUi.allowedOrigins)";

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// State shared between the gateway loop and this client's reader thread.
#[derive(Default)]
pub struct ConnShared {
    /// Set by the gateway loop once `hello-ok` went out; ends the handshake timeout.
    pub authenticated: AtomicBool,
}

/// Request details captured during the upgrade.
#[derive(Default, Clone)]
struct UpgradeInfo {
    host: Option<String>,
    origin: Option<String>,
    user_agent: Option<String>,
    forwarded_for: Option<String>,
    real_ip: Option<String>,
    forwarded_host: bool,
    path: String,
}

/// Serves one upgraded connection on the current thread until it closes.
pub fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<ListenerShared>,
    events: Sender<Event>,
) {
    let _ = stream.set_read_timeout(Some(handshake_timeout()));
    let mut info = UpgradeInfo::default();
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_PAYLOAD))
        .max_frame_size(Some(MAX_PAYLOAD));
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        info = capture(req);
        if info.path == "/__moltbot/ws" || info.path == "/__clawdbot/ws" {
            return Err(refusal(404, "Not Found"));
        }
        Ok(resp)
    };
    let Ok(raw) = stream.try_clone() else { return };
    let io = ReaderIo {
        stream: raw,
        pending: Vec::new(),
        out: None,
    };
    let ws = match tungstenite::accept_hdr_with_config(io, callback, Some(config)) {
        Ok(ws) => ws,
        Err(e) => {
            log::debug!(target: "ws", "upgrade failed remote={remote}: {e}");
            return;
        }
    };
    run_connection(ws, stream, remote, info, &shared, events);
}

fn refusal(status: u16, body: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(body.to_string()));
    *resp.status_mut() = tungstenite::http::StatusCode::from_u16(status).unwrap_or_default();
    resp
}

fn capture(req: &Request) -> UpgradeInfo {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    UpgradeInfo {
        host: header("host"),
        origin: header("origin"),
        user_agent: header("user-agent"),
        forwarded_for: header("x-forwarded-for"),
        real_ip: header("x-real-ip"),
        forwarded_host: req.headers().contains_key("x-forwarded-host"),
        path: req.uri().path().to_string(),
    }
}

fn run_connection(
    mut ws: WebSocket<ReaderIo>,
    stream: TcpStream,
    remote: SocketAddr,
    info: UpgradeInfo,
    shared: &ListenerShared,
    events: Sender<Event>,
) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let conn: ConnId = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let tx = ClientTx::new(write_half, conn.to_string());
    ws.get_mut().out = Some(tx.clone());
    if let Some(origin) = info.origin.as_deref() {
        if !shared.origin_allowed(origin, info.host.as_deref(), remote) {
            log::warn!(target: "ws", "origin not allowed conn={conn} origin={origin} remote={}", remote.ip());
            tx.close(1008, ORIGIN_REFUSED);
            drain_until_closed(&mut ws);
            tx.reader_finished();
            return;
        }
    }
    let nonce = crate::util::uuid_v4();
    let challenge = serde_json::json!({
        "type": "event", "event": "connect.challenge",
        "payload": { "nonce": nonce, "ts": crate::util::now_ms() },
    });
    tx.send_frame(&writer::encode_text(&challenge.to_string()), false);
    let conn_shared = Arc::new(ConnShared::default());
    let open = WsOpen {
        conn,
        tx: tx.clone(),
        stream: stream.try_clone().ok(),
        remote,
        host: info.host,
        origin: info.origin,
        user_agent: info.user_agent,
        forwarded_for: info.forwarded_for,
        real_ip: info.real_ip,
        forwarded_host: info.forwarded_host,
        nonce,
        shared: conn_shared.clone(),
    };
    if events.send(Event::WsOpened(Box::new(open))).is_err() {
        tx.close(1012, "service restart");
        return;
    }
    // The loop must hear about the end of this client even if the read loop panics.
    let guard = ClosedGuard {
        conn,
        events: events.clone(),
        tx: tx.clone(),
        sent: false,
    };
    let (code, reason) = read_loop(&mut ws, conn, &tx, &conn_shared, &events);
    guard.finish(code, reason);
}

/// Sends `WsClosed` exactly once: from `finish`, or from `drop` during a panic.
struct ClosedGuard {
    conn: ConnId,
    events: Sender<Event>,
    tx: ClientTx,
    sent: bool,
}

impl ClosedGuard {
    fn finish(mut self, code: Option<u16>, reason: String) {
        self.sent = true;
        self.tx.reader_finished();
        let _ = self.events.send(Event::WsClosed {
            conn: self.conn,
            code,
            reason,
        });
    }
}

impl Drop for ClosedGuard {
    fn drop(&mut self) {
        if !self.sent {
            self.tx.reader_finished();
            let _ = self.events.send(Event::WsClosed {
                conn: self.conn,
                code: None,
                reason: String::new(),
            });
        }
    }
}

/// Reads frames until the connection ends; returns the peer's close code and reason, if any.
fn read_loop(
    ws: &mut WebSocket<ReaderIo>,
    conn: ConnId,
    tx: &ClientTx,
    shared: &ConnShared,
    events: &Sender<Event>,
) -> (Option<u16>, String) {
    let opened = Instant::now();
    loop {
        let authenticated = shared.authenticated.load(Ordering::Acquire);
        if !authenticated && !tx.is_closing() {
            let left = handshake_timeout()
                .saturating_sub(opened.elapsed())
                .max(Duration::from_millis(1));
            let _ = ws.get_ref().stream.set_read_timeout(Some(left));
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                if events
                    .send(Event::WsFrame {
                        conn,
                        text: text.as_str().to_string(),
                    })
                    .is_err()
                {
                    return (None, String::new());
                }
            }
            Ok(Message::Binary(bytes)) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if events.send(Event::WsFrame { conn, text }).is_err() {
                    return (None, String::new());
                }
            }
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                    .unwrap_or_default();
                // Let tungstenite queue the close reply, then stop.
                let _ = ws.flush();
                return (code, reason);
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                if tx.is_closing() {
                    return (None, String::new());
                }
                if !shared.authenticated.load(Ordering::Acquire)
                    && opened.elapsed() >= handshake_timeout()
                {
                    log::info!(target: "ws", "handshake timeout conn={conn}");
                    tx.close(1000, "");
                    return (None, String::new());
                }
                if shared.authenticated.load(Ordering::Acquire) {
                    let _ = ws.get_ref().stream.set_read_timeout(None);
                }
            }
            Err(tungstenite::Error::Capacity(e)) => {
                log::info!(target: "ws", "frame too large conn={conn}: {e}");
                tx.close(1009, "");
                return (Some(1009), String::new());
            }
            Err(_) => return (None, String::new()),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// After we asked to close: read until the peer answers or the grace period ends.
fn drain_until_closed(ws: &mut WebSocket<ReaderIo>) {
    let deadline = Instant::now() + writer::CLOSE_GRACE;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The reader's side of the socket: reads go to the socket, writes are collected and handed to
/// the writer thread on flush (tungstenite flushes after each pong or close reply).
pub struct ReaderIo {
    stream: TcpStream,
    pending: Vec<u8>,
    out: Option<ClientTx>,
}

impl Read for ReaderIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for ReaderIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.is_none() {
            // During the upgrade there is no writer yet: the 101 response goes straight out.
            return self.stream.write(buf);
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.out {
            None => self.stream.flush(),
            Some(tx) => {
                if !self.pending.is_empty() {
                    tx.send_raw(std::mem::take(&mut self.pending));
                }
                Ok(())
            }
        }
    }
}
