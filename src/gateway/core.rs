//! The gateway loop and the state it alone owns: clients, presence, the broadcast sequence, the
//! health cache and the pairing store. Other threads reach it only through `Event`s; it answers
//! through each client's non-blocking writer queue.

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::device::DeviceStore;
use super::event::{ConnId, Event, Signal, WsOpen};
use super::presence::Presence;
use super::RunContext;
use crate::config::Snapshot;
use crate::server::writer::{encode_text, push_text_frame, ClientTx, Queued};
use crate::server::ws::ConnShared;

/// Keepalive broadcast interval (upstream `TICK_INTERVAL_MS`).
pub const TICK_INTERVAL: Duration = Duration::from_millis(30_000);
/// Health is refreshed and broadcast this often.
pub const HEALTH_INTERVAL: Duration = Duration::from_millis(60_000);
/// After a connect, health is re-broadcast only if the cached summary is older than this.
const HEALTH_AFTER_CONNECT: Duration = Duration::from_secs(5);
/// Freed memory is trimmed this long after a client leaves (batched over bursts of closes).
const TRIM_DELAY: Duration = Duration::from_secs(2);
/// Loop turns longer than this are logged (our push-latency budget is tight).
const SLOW_TURN: Duration = Duration::from_millis(20);
/// At shutdown, clients get this long to finish their close handshake before sockets are cut.
const CLOSE_WAIT: Duration = Duration::from_millis(1000);

/// Why the loop returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopExit {
    /// Stop the process (signal).
    Stop(Signal),
    /// Restart in-process (config change, `config.apply`, SIGUSR1).
    Restart(String),
}

/// A connected WebSocket client as the loop sees it.
pub struct Client {
    pub conn: ConnId,
    pub conn_uuid: String,
    pub tx: ClientTx,
    pub stream: Option<TcpStream>,
    pub remote: SocketAddr,
    pub is_local: bool,
    pub nonce: String,
    pub origin: Option<String>,
    pub host: Option<String>,
    pub shared: Arc<ConnShared>,
    pub session: Option<Session>,
}

/// What a client declared in a successful `connect`.
#[derive(Debug, Clone)]
pub struct Session {
    pub role: String,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub client_mode: String,
    pub version: String,
    pub platform: String,
    pub display_name: Option<String>,
    pub instance_id: Option<String>,
    pub device_id: Option<String>,
    /// Presence key if this client is tracked as an instance (not for `cli` mode).
    pub presence_key: Option<String>,
}

impl Session {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// When the loop's periodic work is next due (the first a full interval after the loop starts).
struct Timers {
    tick: Instant,
    health: Instant,
}

impl Timers {
    fn new(now: Instant) -> Timers {
        Timers {
            tick: now + TICK_INTERVAL,
            health: now + HEALTH_INTERVAL,
        }
    }
}

/// A broadcast event frame, in upstream's key order.
#[derive(Serialize)]
struct EventFrame<'a, P> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'a str,
    payload: &'a P,
    seq: u64,
    #[serde(rename = "stateVersion", skip_serializing_if = "Option::is_none")]
    state_version: Option<StateVersion>,
}

#[derive(Serialize)]
struct StateVersion {
    presence: u64,
    health: u64,
}

/// Options of one broadcast.
#[derive(Default, Clone, Copy)]
pub struct Broadcast<'a> {
    /// Slow clients skip it instead of being closed (`dropIfSlow`).
    pub droppable: bool,
    pub with_state_version: bool,
    /// Only clients holding this scope (or admin) receive it.
    pub scope: Option<&'a str>,
}

pub struct Gateway {
    pub ctx: RunContext,
    pub snapshot: Arc<Snapshot>,
    pub clients: HashMap<ConnId, Client>,
    pub seq: u64,
    pub presence: Presence,
    pub health_version: u64,
    pub health_cache: Option<(Instant, Value)>,
    pub devices: DeviceStore,
    pub last_heartbeat: Option<Value>,
    /// A restart scheduled by `config.apply` or a config change.
    pub restart_at: Option<(Instant, String)>,
    pub started: Instant,
    /// When to return freed heap to the kernel after clients left.
    pub trim_at: Option<Instant>,
    pub auth_limiter: super::ratelimit::AuthLimiter,
    pub chat: super::chat::Chat,
    /// The last `usage.cost` answer (days, when, payload): upstream caches it for 30 s, and a
    /// scan reads every recent transcript on this thread.
    pub usage_cost: Option<(u64, Instant, serde_json::Value)>,
}

impl Gateway {
    pub fn new(ctx: RunContext, snapshot: Arc<Snapshot>) -> Self {
        let devices = DeviceStore::load(&ctx.state.devices_dir());
        let presence = Presence::new(&ctx);
        let chat = super::chat::Chat::new(&snapshot.config);
        Gateway {
            ctx,
            snapshot,
            clients: HashMap::new(),
            seq: 0,
            presence,
            health_version: 1,
            health_cache: None,
            devices,
            last_heartbeat: None,
            restart_at: None,
            started: Instant::now(),
            trim_at: None,
            auth_limiter: Default::default(),
            chat,
            usage_cost: None,
        }
    }

    /// Runs until a signal or a restart; the caller then calls `close_all`. It waits on the
    /// inbox alone, until the nearest timer: one channel to wake from per event (a run sends
    /// one per streamed token), not a `select` over every timer.
    pub fn run(&mut self, events: &Receiver<Event>) -> LoopExit {
        let mut timers = Timers::new(Instant::now());
        loop {
            let now = Instant::now();
            if let Some(exit) = self.run_due_timers(&mut timers, now) {
                return exit;
            }
            let deadline = [
                self.chat.waits.next_deadline(),
                self.trim_at,
                self.restart_at.as_ref().map(|(at, _)| *at),
            ]
            .into_iter()
            .flatten()
            .fold(timers.tick.min(timers.health), Instant::min);
            let ev = match events.recv_deadline(deadline) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return LoopExit::Stop(Signal::Term),
            };
            let started = Instant::now();
            let exit = self.handle(ev);
            if started.elapsed() > SLOW_TURN {
                log::debug!(target: "gateway", "overly long loop turn took {:?}", started.elapsed());
            }
            if let Some(exit) = exit {
                return exit;
            }
        }
    }

    /// Whatever timer is due at `now`: the tick broadcast, health, `agent.wait` expiries, the
    /// memory trim, a scheduled restart (which ends the loop).
    fn run_due_timers(&mut self, timers: &mut Timers, now: Instant) -> Option<LoopExit> {
        if now >= timers.tick {
            timers.tick = now + TICK_INTERVAL;
            let tick = json!({"ts": crate::util::now_ms()});
            let droppable = Broadcast {
                droppable: true,
                ..Default::default()
            };
            self.broadcast("tick", tick, droppable);
            if crate::agent::expire_idle_caches() {
                crate::memory::trim();
            }
        }
        if now >= timers.health {
            timers.health = now + HEALTH_INTERVAL;
            self.refresh_health(true);
        }
        if self.chat.waits.next_deadline().is_some_and(|at| now >= at) {
            self.expire_waiters();
        }
        if self.trim_at.is_some_and(|at| now >= at) {
            self.trim_at = None;
            crate::memory::trim();
        }
        if self.restart_at.as_ref().is_some_and(|(at, _)| now >= *at) {
            let reason = self.restart_at.take().map(|(_, r)| r).unwrap_or_default();
            return Some(LoopExit::Restart(reason));
        }
        None
    }

    fn handle(&mut self, ev: Event) -> Option<LoopExit> {
        match ev {
            Event::WsOpened(open) => self.on_open(*open),
            Event::WsFrame { conn, text } => self.on_frame(conn, &text),
            Event::WsClosed { conn, code, reason } => self.on_closed(conn, code, &reason),
            Event::Signal(Signal::Usr1) => return self.on_usr1(),
            Event::Signal(sig) => {
                log::info!(target: "gateway", "received {}; shutting down", sig.name());
                return Some(LoopExit::Stop(sig));
            }
            Event::ConfigFileChanged => return self.on_config_file_changed(),
            Event::Turn { run_id, update } => self.on_turn_update(&run_id, update),
            Event::TurnDone { run_id, outcome } => self.on_turn_done(&run_id, outcome),
            Event::OpenAiTurn(req) => self.openai_turn(*req),
        }
        None
    }

    fn on_open(&mut self, open: WsOpen) {
        let is_local = super::connect::is_local_request(&open, &self.snapshot.config);
        let client = Client {
            conn: open.conn,
            conn_uuid: crate::util::uuid_v4(),
            tx: open.tx,
            stream: open.stream,
            remote: open.remote,
            is_local,
            nonce: open.nonce,
            origin: open.origin,
            host: open.host,
            shared: open.shared,
            session: None,
        };
        self.clients.insert(client.conn, client);
    }

    fn on_closed(&mut self, conn: ConnId, code: Option<u16>, reason: &str) {
        let Some(client) = self.clients.remove(&conn) else {
            return;
        };
        if self.clients.is_empty() {
            // The last client left: hand the memory its threads used back to the kernel now,
            // and once more when their last buffers (flushers, thread caches) are gone.
            self.clients.shrink_to_fit();
            crate::memory::trim();
        }
        if self.trim_at.is_none() {
            self.trim_at = Some(Instant::now() + TRIM_DELAY);
        }
        let Some(session) = client.session else {
            return;
        };
        log::debug!(target: "ws", "closed conn={} code={} reason={reason}", client.conn_uuid, code.unwrap_or(1005));
        if let Some(key) = session.presence_key {
            self.presence.disconnect(&key);
            self.broadcast_presence();
        }
    }

    fn on_usr1(&mut self) -> Option<LoopExit> {
        let allowed = self.snapshot.config.pointer("/commands/restart") == Some(&Value::Bool(true));
        if !allowed {
            log::warn!(target: "gateway", "SIGUSR1 restart ignored (not authorized; enable commands.restart or use gateway tool).");
            return None;
        }
        Some(LoopExit::Restart("SIGUSR1".into()))
    }

    /// Sends one JSON frame to one client (responses and unicast events).
    pub fn send(&self, conn: ConnId, frame: &Value) {
        if let Some(c) = self.clients.get(&conn) {
            c.tx.send_frame(&encode_text(&frame.to_string()), false);
        }
    }

    /// Answers a request.
    pub fn respond(&self, conn: ConnId, id: &str, result: Result<Value, super::methods::RpcError>) {
        let frame = match result {
            Ok(payload) => json!({"type": "res", "id": id, "ok": true, "payload": payload}),
            Err(e) => e.to_frame(id),
        };
        self.send(conn, &frame);
    }

    /// Sends an event to every handshaken client (with the scope filter), with a global `seq`.
    pub fn broadcast(&mut self, event: &str, payload: Value, opts: Broadcast) {
        let bytes = encode_text(&self.event_frame(event, &payload, opts));
        self.send_to_clients(&bytes, opts);
    }

    /// Adds an event's frame to `batch`, for `send_batch`: several events, in order, written
    /// to each client at once (one write, one wake-up of the client), e.g. a run's `agent`
    /// end and `chat` final. The payload is serialised straight into the frame.
    pub fn push_event<P: Serialize>(
        &mut self,
        batch: &mut Vec<u8>,
        event: &str,
        payload: &P,
        opts: Broadcast,
    ) {
        let frame = self.event_frame(event, payload, opts);
        push_text_frame(batch, &frame);
    }

    pub fn send_batch(&self, batch: Vec<u8>, opts: Broadcast) {
        if !batch.is_empty() {
            self.send_to_clients(&batch.into(), opts);
        }
    }

    fn event_frame<P: Serialize>(&mut self, event: &str, payload: &P, opts: Broadcast) -> String {
        self.seq += 1;
        let frame = EventFrame {
            kind: "event",
            event,
            payload,
            seq: self.seq,
            state_version: opts.with_state_version.then_some(StateVersion {
                presence: self.presence.version,
                health: self.health_version,
            }),
        };
        // Strings, numbers and `Value`s: serialising cannot fail.
        serde_json::to_string(&frame).unwrap_or_default()
    }

    fn send_to_clients(&self, bytes: &Arc<[u8]>, opts: Broadcast) {
        for c in self.clients.values() {
            let Some(s) = &c.session else { continue };
            if s.role == "node" && opts.scope.is_some() {
                continue;
            }
            if let Some(scope) = opts.scope {
                if !s.has_scope(scope) && !s.has_scope("operator.admin") {
                    continue;
                }
            }
            if c.tx.send_frame(bytes, opts.droppable) == Queued::SlowConsumer {
                log::warn!(target: "ws", "slow consumer conn={}; closing", c.conn_uuid);
            }
        }
    }

    pub fn broadcast_presence(&mut self) {
        self.presence.version += 1;
        let payload = json!({"presence": self.presence.list()});
        self.broadcast(
            "presence",
            payload,
            Broadcast {
                droppable: true,
                with_state_version: true,
                scope: None,
            },
        );
    }

    /// Rebuilds the health summary; broadcasts it when asked to.
    pub fn refresh_health(&mut self, broadcast: bool) -> Value {
        let summary = super::health::summary(self);
        self.health_version += 1;
        self.health_cache = Some((Instant::now(), summary.clone()));
        if broadcast {
            self.broadcast(
                "health",
                summary.clone(),
                Broadcast {
                    with_state_version: true,
                    ..Default::default()
                },
            );
        }
        summary
    }

    /// Upstream refreshes health after every connect; we do it at most every few seconds so a
    /// burst of connects costs one refresh, not one per client.
    pub fn refresh_health_after_connect(&mut self) {
        let fresh = self
            .health_cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < HEALTH_AFTER_CONNECT);
        if !fresh {
            self.refresh_health(true);
        }
    }

    /// The cached summary if younger than the refresh interval, else a fresh one.
    pub fn health(&mut self, probe: bool) -> Value {
        match &self.health_cache {
            Some((at, v)) if !probe && at.elapsed() < HEALTH_INTERVAL => v.clone(),
            _ => self.refresh_health(false),
        }
    }

    /// Tells every client we are going away, closes them 1012, waits briefly, then cuts sockets.
    pub fn close_all(&mut self, events: &Receiver<Event>, restarting: bool) {
        let (reason, expected) = if restarting {
            ("gateway restarting", json!(1500))
        } else {
            ("gateway stopping", Value::Null)
        };
        self.broadcast(
            "shutdown",
            json!({"reason": reason, "restartExpectedMs": expected}),
            Broadcast::default(),
        );
        for c in self.clients.values() {
            c.shared.authenticated.store(true, Ordering::Release);
            c.tx.close(1012, "service restart");
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        while !self.clients.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(Event::WsClosed { conn, .. }) => {
                    self.clients.remove(&conn);
                }
                Ok(Event::WsOpened(open)) => open.tx.close(1012, "service restart"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        for c in self.clients.values() {
            if let Some(s) = &c.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.clients.clear();
    }

    /// Replaces the snapshot after a successful reload that needs no restart.
    pub fn swap_snapshot(&mut self, snap: Arc<Snapshot>) {
        self.snapshot = snap;
        self.ctx.apply_hot_settings(&self.snapshot);
        // maxConcurrent is read on reload, as upstream sets lane widths on hot reload.
        self.chat.resize(&self.snapshot.config);
    }
}
