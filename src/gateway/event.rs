//! `Event`: the closed set of messages into the gateway loop. Every other thread talks to the
//! loop only through these.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use crate::server::writer::ClientTx;
use crate::server::ws::ConnShared;

/// Process-unique id of a WebSocket connection.
pub type ConnId = u64;

/// Capacity of the loop's inbox. Senders block when it is full (backpressure on readers).
pub const INBOX: usize = 4096;

pub enum Event {
    /// A WebSocket client finished the upgrade and was sent its `connect.challenge`.
    WsOpened(Box<WsOpen>),
    /// A text (or UTF-8-decoded binary) frame from a client.
    WsFrame { conn: ConnId, text: String },
    /// The client's reader ended; `code`/`reason` are the peer's close frame, if any.
    WsClosed {
        conn: ConnId,
        code: Option<u16>,
        reason: String,
    },
    /// A process signal, from the signal thread.
    Signal(Signal),
    /// The config file changed on disk (from the watcher; already debounced).
    ConfigFileChanged,
    /// Progress of an agent turn, from its worker.
    Turn {
        run_id: String,
        update: crate::agent::turn::TurnUpdate,
    },
    /// An agent turn ended (its transcript is already written; its usage is written a moment
    /// later, `agent::write_behind`).
    TurnDone {
        run_id: String,
        outcome: crate::agent::turn::TurnOutcome,
    },
    /// A `POST /v1/chat/completions` request, from its HTTP thread; answered on the request's
    /// own bounded reply channel.
    OpenAiTurn(Box<crate::gateway::openai::TurnRequest>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Int,
    Term,
    Usr1,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
            Signal::Usr1 => "SIGUSR1",
        }
    }
}

/// Everything the loop learns about a new WebSocket client.
pub struct WsOpen {
    pub conn: ConnId,
    pub tx: ClientTx,
    /// A handle on the socket, used only to cut it at shutdown.
    pub stream: Option<TcpStream>,
    pub remote: SocketAddr,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub user_agent: Option<String>,
    pub forwarded_for: Option<String>,
    pub real_ip: Option<String>,
    pub forwarded_host: bool,
    /// The nonce sent in this connection's `connect.challenge`.
    pub nonce: String,
    pub shared: Arc<ConnShared>,
}
