//! Protocol-v3 WebSocket clients over std `TcpStream`s: the handshake, a request helper for the
//! control connection, and a reader thread per measured client that timestamps broadcast events.

use serde_json::{json, Value};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::{Error, Message, WebSocket};

pub type Ws = WebSocket<TcpStream>;

/// Bound on any single blocking socket operation.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// `Some(seq)` when `text` is a broadcast event frame (any event with a `seq`); avoids parsing
/// big payloads.
pub fn event_seq(text: &str) -> Option<u64> {
    let head = text.get(..text.len().min(96))?;
    if !head.contains("\"type\":\"event\"") {
        return None;
    }
    let at = text.rfind("\"seq\":")? + 6;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

fn send_json(ws: &mut Ws, v: &Value) -> Result<(), String> {
    ws.send(Message::text(v.to_string()))
        .map_err(|e| format!("send: {e}"))
}

/// TCP connect + WebSocket upgrade + `connect` → `hello-ok`. Returns the socket and the time taken.
pub fn connect(port: u16) -> Result<(Ws, Duration), String> {
    let t0 = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("tcp connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|_| tcp.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client::client(format!("ws://127.0.0.1:{port}/"), tcp)
        .map_err(|e| format!("ws upgrade: {e}"))?;
    let mut challenged = false;
    let deadline = t0 + IO_TIMEOUT;
    while Instant::now() < deadline {
        let text = match ws.read().map_err(|e| format!("handshake read: {e}"))? {
            Message::Text(t) => t,
            Message::Close(f) => return Err(format!("closed during handshake: {f:?}")),
            _ => continue,
        };
        let v: Value =
            serde_json::from_str(text.as_str()).map_err(|e| format!("bad frame: {e}"))?;
        if !challenged && v["event"] == "connect.challenge" {
            challenged = true;
            let params = json!({
                "minProtocol": 3, "maxProtocol": 3,
                "client": {"id": "test", "version": "bench", "platform": "linux", "mode": "test"},
                "role": "operator", "scopes": ["operator.admin"], "auth": {"token": super::gw::TOKEN},
            });
            send_json(
                &mut ws,
                &json!({"type": "req", "id": "1", "method": "connect", "params": params}),
            )?;
        } else if v["type"] == "res" && v["id"] == "1" {
            if v["ok"] == true && v["payload"]["type"] == "hello-ok" {
                return Ok((ws, t0.elapsed()));
            }
            return Err(format!("connect refused: {}", v["error"]));
        }
    }
    Err("handshake timed out".into())
}

/// Sends a request and reads (bounded) until its response. Returns the payload and the seq of the
/// last broadcast event seen before the response.
pub fn request(
    ws: &mut Ws,
    id: &str,
    method: &str,
    params: Value,
) -> Result<(Value, Option<u64>), String> {
    send_json(
        ws,
        &json!({"type": "req", "id": id, "method": method, "params": params}),
    )?;
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut seq = None;
    while Instant::now() < deadline {
        let text = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(f)) => return Err(format!("{method}: connection closed: {f:?}")),
            Ok(_) => continue,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(format!("{method}: read: {e}")),
        };
        if let Some(s) = event_seq(text.as_str()) {
            seq = Some(s);
            continue;
        }
        if !text.as_str().starts_with("{\"type\":\"res\"") && text.len() > 4096 {
            continue;
        }
        let v: Value =
            serde_json::from_str(text.as_str()).map_err(|e| format!("bad frame: {e}"))?;
        if v["type"] == "res" && v["id"] == id {
            if v["ok"] == true {
                return Ok((v["payload"].clone(), seq));
            }
            return Err(format!("{method} failed: {}", v["error"]));
        }
    }
    Err(format!("{method}: no response within {IO_TIMEOUT:?}"))
}

/// The next text frame as JSON (`None` on a read timeout or a non-text frame).
pub fn read_json(ws: &mut Ws) -> Result<Option<Value>, String> {
    match ws.read() {
        Ok(Message::Text(t)) => serde_json::from_str(t.as_str())
            .map(Some)
            .map_err(|e| format!("bad frame: {e}")),
        Ok(Message::Close(f)) => Err(format!("connection closed: {f:?}")),
        Ok(_) => Ok(None),
        Err(e) if is_timeout(&e) => Ok(None),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// Close handshake, bounded: sends our close and reads until the server ends the connection.
pub fn close(mut ws: Ws) {
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let _ = ws.close(None);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                let _ = ws.flush();
            }
            Err(_) => break,
        }
    }
}

/// What a reader thread saw.
#[derive(Default)]
pub struct Seen {
    /// (seq, arrival) of every broadcast event.
    pub presence: Vec<(u64, Instant)>,
    /// Close frame received from the server: (code, reason).
    pub close: Option<(u16, String)>,
    pub error: Option<String>,
    pub max_frame: usize,
}

/// A measured client: one thread reading continuously.
pub struct Reader {
    stop: Arc<AtomicBool>,
    pub seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    pub fn spawn(mut ws: Ws) -> Result<Reader, String> {
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, out) = (stop.clone(), seen.clone());
        let thread = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || loop {
                if s.load(Ordering::Relaxed) {
                    close(ws);
                    return;
                }
                match ws.read() {
                    Ok(Message::Text(t)) => {
                        let now = Instant::now();
                        let mut o = out.lock().unwrap();
                        o.max_frame = o.max_frame.max(t.len());
                        if let Some(seq) = event_seq(t.as_str()) {
                            o.presence.push((seq, now));
                        }
                    }
                    Ok(Message::Close(f)) => {
                        out.lock().unwrap().close = Some(
                            f.map(|f| (u16::from(f.code), f.reason.to_string()))
                                .unwrap_or((1005, String::new())),
                        );
                    }
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) => {}
                    Err(Error::ConnectionClosed | Error::AlreadyClosed) => return,
                    Err(e) => {
                        out.lock().unwrap().error = Some(e.to_string());
                        return;
                    }
                }
            })
            .map_err(|e| format!("spawn reader: {e}"))?;
        Ok(Reader {
            stop,
            seen,
            thread: Some(thread),
        })
    }

    /// Asks the thread to close its connection (non-blocking).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits (bounded) for the thread to finish; false if it did not in time.
    pub fn join(&mut self, deadline: Instant) -> bool {
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        true
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.request_stop();
    }
}
