//! The per-connection writer thread and its bounded outbound queue. It is the only code that
//! writes to a WebSocket client's socket, so every frame (including the pongs and close replies the
//! reader's tungstenite state produces) reaches the wire in one piece.
//!
//! Broadcasts are encoded once (`encode_text`) and shared as `Arc<[u8]>`; enqueueing never blocks.
//! A client whose queue holds more than `MAX_BUFFERED_BYTES` is a slow consumer: droppable events
//! are skipped, anything else closes it with 1008 `slow consumer`, as upstream does.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upstream's `maxBufferedBytes`: queued bytes beyond this make a client a slow consumer.
pub const MAX_BUFFERED_BYTES: usize = 1_572_864;
/// Frames a queue may hold regardless of their size.
const QUEUE_FRAMES: usize = 128;
/// How long a client gets to answer our close frame before the socket is cut.
pub const CLOSE_GRACE: Duration = Duration::from_millis(1500);
/// A write to a client that makes no progress for this long ends the connection.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// What the writer thread is asked to do.
pub enum Outbound {
    /// An encoded WebSocket frame.
    Frame(Arc<[u8]>),
    /// Bytes produced by the reader's protocol state (pongs, close replies), already framed.
    Raw(Vec<u8>),
    /// Send a close frame, then stop.
    Close(u16, String),
}

/// Result of queueing a frame for a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    Sent,
    /// Skipped because the client is slow and the event may be dropped.
    Dropped,
    /// The client is slow and the frame may not be dropped: it has been told to close.
    SlowConsumer,
    /// The writer is gone (connection closing).
    Closed,
}

/// The sending side of one client's queue; cheap to clone.
#[derive(Clone)]
pub struct ClientTx {
    tx: Sender<Outbound>,
    queued: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
}

impl ClientTx {
    /// Queues a frame without blocking.
    pub fn send_frame(&self, frame: &Arc<[u8]>, droppable: bool) -> Queued {
        if self.closing.load(Ordering::Relaxed) {
            return Queued::Closed;
        }
        let over = self.queued.load(Ordering::Relaxed) + frame.len() > MAX_BUFFERED_BYTES;
        if over {
            return self.slow(droppable);
        }
        self.queued.fetch_add(frame.len(), Ordering::Relaxed);
        match self.tx.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => Queued::Sent,
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(frame.len(), Ordering::Relaxed);
                self.slow(droppable)
            }
            Err(TrySendError::Disconnected(_)) => Queued::Closed,
        }
    }

    fn slow(&self, droppable: bool) -> Queued {
        if droppable {
            return Queued::Dropped;
        }
        self.close(1008, "slow consumer");
        Queued::SlowConsumer
    }

    /// Queues raw protocol bytes (pongs, close replies) produced by the reader.
    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.tx.try_send(Outbound::Raw(bytes));
    }

    /// Asks the writer to send a close frame and stop; later frames are refused.
    pub fn close(&self, code: u16, reason: &str) {
        if !self.closing.swap(true, Ordering::SeqCst) {
            let reason = crate::util::truncate_utf8(reason, 123).to_string();
            // The close must get through even when the queue is full: wait briefly for room.
            let _ = self
                .tx
                .send_timeout(Outbound::Close(code, reason), Duration::from_millis(200));
        }
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Creates a client queue and its receiving end for the writer thread.
pub fn queue() -> (ClientTx, Receiver<Outbound>, Arc<AtomicUsize>) {
    let (tx, rx) = bounded(QUEUE_FRAMES);
    let queued = Arc::new(AtomicUsize::new(0));
    let client = ClientTx {
        tx,
        queued: queued.clone(),
        closing: Arc::new(AtomicBool::new(false)),
    };
    (client, rx, queued)
}

/// The writer thread body: drains the queue into the socket until closed or broken.
pub fn run(mut stream: TcpStream, rx: Receiver<Outbound>, queued: Arc<AtomicUsize>) {
    let _ = stream.set_write_timeout(Some(WRITE_STALL));
    for msg in rx.iter() {
        let ok = match msg {
            Outbound::Frame(bytes) => {
                queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                stream.write_all(&bytes).is_ok()
            }
            Outbound::Raw(bytes) => stream.write_all(&bytes).is_ok(),
            Outbound::Close(code, reason) => {
                let _ = stream.write_all(&encode_close(code, &reason));
                let _ = stream.shutdown(Shutdown::Write);
                // Give the peer time to answer the close, then cut the read side too: a peer that
                // never answers must not keep the reader thread blocked.
                std::thread::sleep(CLOSE_GRACE);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        };
        if !ok {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Encodes an unmasked server text frame.
pub fn encode_text(text: &str) -> Arc<[u8]> {
    encode(0x1, text.as_bytes()).into()
}

/// Encodes a close frame with a status code and a reason (≤ 123 bytes).
pub fn encode_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(crate::util::truncate_utf8(reason, 123).as_bytes());
    encode(0x8, &payload)
}

fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= u16::MAX as usize => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        assert_eq!(&encode_text("hi")[..], &[0x81, 2, b'h', b'i']);
        let long = "x".repeat(300);
        let f = encode_text(&long);
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        let huge = "y".repeat(70_000);
        assert_eq!(encode_text(&huge)[1], 127);
        assert_eq!(&encode_close(1000, "")[..], &[0x88, 2, 0x03, 0xe8]);
    }

    #[test]
    fn slow_consumer_policy() {
        let (tx, _rx, _q) = queue();
        let big: Arc<[u8]> = vec![0u8; MAX_BUFFERED_BYTES].into();
        assert_eq!(tx.send_frame(&big, false), Queued::Sent);
        assert_eq!(tx.send_frame(&encode_text("tick"), true), Queued::Dropped);
        assert_eq!(
            tx.send_frame(&encode_text("chat"), false),
            Queued::SlowConsumer
        );
        assert!(tx.is_closing());
        assert_eq!(tx.send_frame(&encode_text("later"), false), Queued::Closed);
    }
}
