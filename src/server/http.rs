//! The HTTP side: a tiny_http server on an internal loopback port (fed by `relay`), and its
//! handler threads with the route table. Every response carries the security headers.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::threads;

/// Handler threads pulling requests from tiny_http.
const HANDLERS: usize = 2;

/// Internal relay port → the real client address (see `relay`).
#[derive(Default)]
pub struct PeerMap(Mutex<HashMap<u16, SocketAddr>>);

impl PeerMap {
    pub fn insert(&self, port: u16, peer: SocketAddr) {
        self.0.lock().insert(port, peer);
    }
    pub fn remove(&self, port: u16) {
        self.0.lock().remove(&port);
    }
    pub fn get(&self, port: u16) -> Option<SocketAddr> {
        self.0.lock().get(&port).copied()
    }
}

/// What the HTTP routes need from the config; replaced as a whole on reload.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub control_ui_enabled: bool,
    /// Normalised `gateway.controlUi.basePath` ("" for the root).
    pub base_path: String,
    pub assistant_name: String,
    pub assistant_avatar: String,
    /// `gateway.http.endpoints.chatCompletions.enabled`.
    pub chat_completions: bool,
    /// The gateway's shared secret, for the bearer-authenticated endpoints.
    pub auth: crate::gateway::auth::ResolvedAuth,
    /// The running config, for per-request lookups (`/avatar/<agentId>`).
    pub config: Arc<serde_json::Value>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            control_ui_enabled: true,
            base_path: String::new(),
            assistant_name: "Assistant".into(),
            assistant_avatar: "A".into(),
            chat_completions: false,
            auth: Default::default(),
            config: Arc::new(serde_json::Value::Null),
        }
    }
}

/// Shared with the handler threads; the lock only guards swapping the settings pointer.
#[derive(Default)]
pub struct HttpContext {
    pub settings: RwLock<Arc<HttpSettings>>,
    /// The loop's inbox, for routes that run agent turns (`/v1/chat/completions`).
    pub events: Option<crossbeam_channel::Sender<crate::gateway::event::Event>>,
    /// Completion requests being answered (bounded by `openai::http::MAX_IN_FLIGHT`).
    pub openai_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

pub struct HttpHandle {
    pub addr: SocketAddr,
    pub peers: Arc<PeerMap>,
    server: Arc<Server>,
    handlers: Vec<JoinHandle<()>>,
}

impl HttpHandle {
    pub fn stop(&mut self) {
        for _ in 0..self.handlers.len() {
            self.server.unblock();
        }
        for t in self.handlers.drain(..) {
            let _ = t.join();
        }
    }
}

/// Starts tiny_http on `127.0.0.1:0` and its handler threads.
pub fn start(ctx: Arc<HttpContext>) -> io::Result<HttpHandle> {
    let server = Server::http("127.0.0.1:0").map_err(io::Error::other)?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| io::Error::other("internal HTTP listener has no address"))?;
    let server = Arc::new(server);
    let peers = Arc::new(PeerMap::default());
    let mut handlers = Vec::new();
    for i in 0..HANDLERS {
        let (server, ctx, peers) = (server.clone(), ctx.clone(), peers.clone());
        handlers.push(threads::spawn_named(
            &format!("http-{i}"),
            threads::STACK_PARSER,
            move || {
                while let Ok(req) = server.recv() {
                    // A panicking route loses its request (the client sees the connection
                    // drop), never the handler thread.
                    let run = std::panic::AssertUnwindSafe(|| handle(req, &ctx, &peers));
                    if std::panic::catch_unwind(run).is_err() {
                        log::error!(target: "http", "request handler panicked");
                    }
                }
            },
        )?);
    }
    Ok(HttpHandle {
        addr,
        peers,
        server,
        handlers,
    })
}

fn handle(req: Request, ctx: &HttpContext, peers: &PeerMap) {
    // Only connections that came through the public port's relay are served.
    let relayed = req.remote_addr().and_then(|a| peers.get(a.port()));
    if relayed.is_none() {
        let _ = req.respond(text(403, "Forbidden"));
        return;
    }
    let settings = ctx.settings.read().clone();
    // Dispatch order (§5.1): the OpenAI endpoint comes before the Control UI.
    if crate::gateway::openai::http::claims(req.url(), &settings) {
        crate::gateway::openai::http::serve(req, &settings, ctx);
        return;
    }
    let resp = route(&req, &settings);
    let _ = req.respond(resp);
}

pub type Resp = Response<io::Cursor<Vec<u8>>>;

/// The headers every response carries (also written by hand on streamed responses).
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("Content-Security-Policy", crate::ui::CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

fn route(req: &Request, settings: &HttpSettings) -> Resp {
    let (path, query) = split_url(req.url());
    let is_read = matches!(req.method(), Method::Get | Method::Head);
    if !settings.control_ui_enabled {
        return text(404, "Not Found");
    }
    let base = settings.base_path.as_str();
    let Some(rest) = strip_base(path, base) else {
        return text(404, "Not Found");
    };
    if !base.is_empty() && rest.is_empty() {
        return redirect(&format!(
            "{base}/{}",
            query.map(|q| format!("?{q}")).unwrap_or_default()
        ));
    }
    if !is_read {
        return text(405, "Method Not Allowed");
    }
    if let Some(agent) = rest.strip_prefix("/avatar/") {
        return crate::ui::avatar::serve(&settings.config, base, agent, query);
    }
    let gzip = req
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Accept-Encoding"))
        .any(|h| crate::ui::accepts_gzip(h.value.as_str()));
    crate::ui::serve(rest, gzip, settings)
}

fn split_url(url: &str) -> (&str, Option<&str>) {
    match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    }
}

/// The path below the base path, or `None` if the request is outside it.
fn strip_base<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() {
        if path == "/ui" || path.starts_with("/ui/") {
            return None;
        }
        return Some(path);
    }
    let rest = path.strip_prefix(base)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Adds the headers every response carries.
pub fn secure(resp: Resp) -> Resp {
    secure_with_csp(resp, crate::ui::CSP)
}

/// The same headers with a response-specific Content-Security-Policy.
pub fn secure_with_csp(resp: Resp, csp: &str) -> Resp {
    SECURITY_HEADERS.iter().fold(resp, |r, (k, v)| {
        let v = if *k == "Content-Security-Policy" {
            csp
        } else {
            v
        };
        r.with_header(header(k, v))
    })
}

pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|_| {
        Header::from_bytes(&b"X-Invalid-Header"[..], &b"1"[..]).expect("static header is valid")
    })
}

pub fn text(status: u16, body: &str) -> Resp {
    secure(
        Response::from_data(body.as_bytes().to_vec())
            .with_status_code(status)
            .with_header(header("Content-Type", "text/plain; charset=utf-8")),
    )
}

pub fn json(status: u16, body: &str) -> Resp {
    secure(
        Response::from_data(body.as_bytes().to_vec())
            .with_status_code(status)
            .with_header(header("Content-Type", "application/json; charset=utf-8")),
    )
}

fn redirect(location: &str) -> Resp {
    secure(
        Response::from_data(Vec::new())
            .with_status_code(302)
            .with_header(header("Location", location)),
    )
}
