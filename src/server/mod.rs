//! The listener: one port for HTTP and WebSocket. An accept thread hands each connection to a
//! short-lived `conn` thread that peeks at the request head: WebSocket upgrades stay on that thread
//! (`ws`), everything else is relayed to the internal tiny_http server (`http`). See
//! ARCHITECTURE.md ("Listener") for why and for the measured alternatives.

pub mod http;
pub mod relay;
pub mod writer;
pub mod ws;

use crossbeam_channel::Sender;
use parking_lot::RwLock;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::gateway::event::Event;
use crate::threads;

/// At most this many connections are served at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a new connection gets to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings the listener threads read; replaced (never mutated) by the gateway loop.
#[derive(Debug, Clone, Default)]
pub struct ListenerSettings {
    /// `gateway.controlUi.allowedOrigins`, normalised (lowercase, no trailing slash).
    pub allowed_origins: Vec<String>,
}

/// Read-mostly state shared by the listener's threads. The lock guards a pointer swap done only
/// by the gateway loop on config reload; readers clone the `Arc` and release it at once.
pub struct ListenerShared {
    pub settings: RwLock<Arc<ListenerSettings>>,
    pub connections: AtomicUsize,
    pub stopping: AtomicBool,
}

impl ListenerShared {
    /// The browser Origin rule: same origin as the `Host` the browser used, or listed in
    /// `allowedOrigins`. On a loopback peer a Host-based match counts only for loopback host
    /// names, so a DNS-rebinding page (`http://evil.example:18789`) is refused.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>, remote: SocketAddr) -> bool {
        let origin = normalise_origin(origin);
        let settings = self.settings.read().clone();
        if settings
            .allowed_origins
            .iter()
            .any(|o| o == "*" || *o == origin)
        {
            return true;
        }
        let Some(host) = host.map(|h| h.trim().to_ascii_lowercase()) else {
            return false;
        };
        let same = origin == format!("http://{host}") || origin == format!("https://{host}");
        same && (!remote.ip().is_loopback() || is_loopback_host(&host))
    }
}

/// Lowercases an origin and drops a trailing slash, the form used for comparisons.
pub fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether a `Host` header names this machine's loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let name = host_without_port(host);
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// `host:port` → `host`; `[::1]:port` → `::1`.
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// A running listener. Dropping it stops accepting; open clients are closed by the gateway loop.
pub struct ServerHandle {
    /// The first (primary) listen address.
    pub addr: SocketAddr,
    pub shared: Arc<ListenerShared>,
    http: http::HttpHandle,
    accepts: Vec<(SocketAddr, JoinHandle<()>)>,
}

impl ServerHandle {
    /// Stops accepting and joins the accept threads.
    pub fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for (addr, thread) in self.accepts.drain(..) {
            // Wake the blocking accept with a throwaway connection (tiny_http does the same).
            let wake = match addr.ip() {
                ip if ip.is_unspecified() => {
                    SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port())
                }
                _ => addr,
            };
            let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
            let _ = thread.join();
        }
        self.http.stop();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.accepts.is_empty() {
            self.stop();
        }
    }
}

/// Starts one accept thread per bound listener, and the HTTP side.
pub fn start(
    listeners: Vec<TcpListener>,
    settings: ListenerSettings,
    http_ctx: Arc<http::HttpContext>,
    events: Sender<Event>,
) -> io::Result<ServerHandle> {
    let shared = Arc::new(ListenerShared {
        settings: RwLock::new(Arc::new(settings)),
        connections: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
    });
    let http = http::start(http_ctx)?;
    let mut accepts = Vec::new();
    for listener in listeners {
        let addr = listener.local_addr()?;
        let (shared, events, peers, target) = (
            shared.clone(),
            events.clone(),
            http.peers.clone(),
            http.addr,
        );
        let thread = threads::spawn_named("gw-accept", threads::STACK_SMALL, move || {
            accept_loop(listener, shared, events, target, peers)
        })?;
        accepts.push((addr, thread));
    }
    let addr = accepts
        .first()
        .map(|(a, _)| *a)
        .ok_or_else(|| io::Error::other("no listener"))?;
    Ok(ServerHandle {
        addr,
        shared,
        http,
        accepts,
    })
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<ListenerShared>,
    events: Sender<Event>,
    relay_target: SocketAddr,
    peers: Arc<http::PeerMap>,
) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends return at once; back off instead of spinning.
                log::warn!(target: "gateway", "accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if shared.connections.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            log::warn!(target: "gateway", "connection limit ({MAX_CONNECTIONS}) reached; refusing a client");
            continue;
        }
        let remote = match stream.peer_addr() {
            Ok(a) => a,
            Err(_) => continue,
        };
        let (shared, events, peers) = (shared.clone(), events.clone(), peers.clone());
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let spawned = threads::spawn_named("conn", threads::STACK_PARSER, move || {
            handle_connection(stream, remote, &shared, events, relay_target, &peers);
            shared.connections.fetch_sub(1, Ordering::Relaxed);
        });
        if spawned.is_err() {
            log::warn!(target: "gateway", "could not start a connection thread; dropping a client");
        }
    }
}

fn handle_connection(
    stream: TcpStream,
    remote: SocketAddr,
    shared: &Arc<ListenerShared>,
    events: Sender<Event>,
    relay_target: SocketAddr,
    peers: &http::PeerMap,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(HEAD_TIMEOUT));
    match peek_is_upgrade(&stream) {
        Some(true) => ws::serve(stream, remote, shared.clone(), events),
        Some(false) => relay::relay(stream, remote, relay_target, peers),
        None => {}
    }
}

/// Peeks (without consuming) until the request head is complete; `Some(true)` for a WebSocket
/// upgrade, `Some(false)` for plain HTTP, `None` if the client sent nothing usable in time.
fn peek_is_upgrade(stream: &TcpStream) -> Option<bool> {
    let mut buf = vec![0u8; 8192];
    let mut last = 0;
    let deadline = std::time::Instant::now() + HEAD_TIMEOUT;
    loop {
        if std::time::Instant::now() > deadline {
            return None; // a client trickling its head byte by byte gets no more time than one that sends nothing
        }
        let n = stream.peek(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        let head = &buf[..n];
        if let Some(end) = find_head_end(head) {
            return Some(is_upgrade_head(&head[..end]));
        }
        if n == buf.len() {
            return Some(false); // oversized head: let the HTTP side answer it
        }
        if n == last {
            // Nothing new arrived yet; peek returns at once while data is pending, so wait a bit.
            std::thread::sleep(Duration::from_millis(2));
        }
        last = n;
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn is_upgrade_head(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines().skip(1).any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim() == "upgrade" && value.split(',').any(|v| v.trim() == "websocket")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_detection() {
        assert!(is_upgrade_head(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n"
        ));
        assert!(!is_upgrade_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!is_upgrade_head(b"GET /upgrade:websocket HTTP/1.1\r\n\r\n"));
    }

    #[test]
    fn origin_rules() {
        let shared = ListenerShared {
            settings: RwLock::new(Arc::new(ListenerSettings {
                allowed_origins: vec!["https://ui.example".into()],
            })),
            connections: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        };
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lan: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        assert!(shared.origin_allowed("http://127.0.0.1:18789", Some("127.0.0.1:18789"), lo));
        assert!(shared.origin_allowed("http://localhost:18789/", Some("localhost:18789"), lo));
        assert!(!shared.origin_allowed(
            "http://evil.example:18789",
            Some("evil.example:18789"),
            lo
        ));
        assert!(shared.origin_allowed("https://my-app.fly.dev", Some("my-app.fly.dev"), lan));
        assert!(!shared.origin_allowed("https://evil.example", Some("my-app.fly.dev"), lan));
        assert!(shared.origin_allowed("https://UI.example", Some("other"), lan));
        assert!(!shared.origin_allowed("null", Some("127.0.0.1:1"), lo));
    }

    #[test]
    fn host_parsing() {
        assert_eq!(host_without_port("[::1]:18789"), "::1");
        assert_eq!(host_without_port("localhost:1"), "localhost");
        assert!(is_loopback_host("127.0.0.1:3000"));
        assert!(!is_loopback_host("192.168.1.2:3000"));
    }
}
