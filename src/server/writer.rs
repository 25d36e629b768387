//! Writing to one WebSocket client. The broadcaster (the gateway loop) writes each frame straight
//! into the socket with a non-blocking `send`; only when the kernel buffer is full does the frame
//! go to a per-client backlog, drained by a short-lived flusher thread with blocking writes. So a
//! push to 200 idle clients is 200 `send` calls on one thread, with no thread wake-ups, and a
//! stalled client never blocks anyone: its backlog grows until it is a slow consumer.
//!
//! Every byte written to the socket (frames, and the pongs and close replies the reader's
//! tungstenite state produces) goes through one `ClientTx`, under its lock, so frames never
//! interleave. Broadcasts are encoded once (`encode_text`) and shared as `Arc<[u8]>`.
//! Slow consumers (backlog over `MAX_BUFFERED_BYTES`): droppable events are skipped, anything
//! else closes the client with 1008 `slow consumer`, as upstream does.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::threads;

/// Upstream's `maxBufferedBytes`: backlog beyond this makes a client a slow consumer.
pub const MAX_BUFFERED_BYTES: usize = 1_572_864;
/// Frames a backlog may hold regardless of their size (bounds bookkeeping for tiny frames).
const MAX_BACKLOG_FRAMES: usize = 4096;
/// How long a client gets to answer our close frame before the socket is cut.
pub const CLOSE_GRACE: Duration = Duration::from_millis(1500);
/// A blocking write that makes no progress for this long ends the connection.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// Result of queueing a frame for a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    Sent,
    /// Skipped because the client is slow and the event may be dropped.
    Dropped,
    /// The client is slow and the frame may not be dropped: it has been told to close.
    SlowConsumer,
    /// The connection is closing or broken.
    Closed,
}

#[derive(Default)]
struct State {
    /// Frames not yet fully written; the first may be partly written (`head_written` bytes).
    backlog: VecDeque<Arc<[u8]>>,
    head_written: usize,
    backlog_bytes: usize,
    /// A flusher thread owns the socket's write side until the backlog is empty.
    flushing: bool,
    /// Close requested: nothing more is accepted; the close frame goes after the backlog.
    closing: bool,
    broken: bool,
}

struct Inner {
    stream: TcpStream,
    state: Mutex<State>,
    reader_done: AtomicBool,
    name: String,
}

/// One client's write side; cheap to clone.
#[derive(Clone)]
pub struct ClientTx {
    inner: Arc<Inner>,
}

impl ClientTx {
    /// Wraps a clone of the client's socket.
    pub fn new(stream: TcpStream, name: String) -> ClientTx {
        let inner = Inner {
            stream,
            state: Mutex::new(State::default()),
            reader_done: AtomicBool::new(false),
            name,
        };
        ClientTx {
            inner: Arc::new(inner),
        }
    }

    /// Sends (or backlogs) a frame without blocking.
    pub fn send_frame(&self, frame: &Arc<[u8]>, droppable: bool) -> Queued {
        let mut st = self.inner.state.lock();
        if st.closing || st.broken {
            return Queued::Closed;
        }
        if st.backlog.is_empty() && !st.flushing {
            return self.write_now(&mut st, frame);
        }
        let over = st.backlog_bytes + frame.len() > MAX_BUFFERED_BYTES
            || st.backlog.len() >= MAX_BACKLOG_FRAMES;
        if over {
            drop(st);
            if droppable {
                return Queued::Dropped;
            }
            self.close(1008, "slow consumer");
            return Queued::SlowConsumer;
        }
        push(&mut st, frame.clone(), 0);
        Queued::Sent
    }

    /// Sends raw protocol bytes (pongs, close replies) produced by the reader.
    pub fn send_raw(&self, bytes: Vec<u8>) {
        let frame: Arc<[u8]> = bytes.into();
        let mut st = self.inner.state.lock();
        if st.broken {
            return;
        }
        if st.backlog.is_empty() && !st.flushing {
            self.write_now(&mut st, &frame);
        } else {
            push(&mut st, frame, 0);
        }
    }

    /// Writes what the kernel takes now; backlogs the rest and starts a flusher.
    fn write_now(&self, st: &mut State, frame: &Arc<[u8]>) -> Queued {
        match send_nonblocking(&self.inner.stream, frame) {
            Ok(n) if n == frame.len() => Queued::Sent,
            Ok(n) => {
                push(st, frame.clone(), n);
                self.start_flusher(st);
                Queued::Sent
            }
            Err(_) => {
                st.broken = true;
                let _ = self.inner.stream.shutdown(Shutdown::Both);
                Queued::Closed
            }
        }
    }

    fn start_flusher(&self, st: &mut State) {
        if st.flushing {
            return;
        }
        st.flushing = true;
        let me = self.clone();
        let spawned = threads::spawn_named(
            &format!("ws-flush-{}", self.inner.name),
            threads::STACK_SMALL,
            move || me.flush_loop(),
        );
        if spawned.is_err() {
            st.broken = true;
            let _ = self.inner.stream.shutdown(Shutdown::Both);
        }
    }

    /// The flusher: blocking writes of the backlog; then, if a close was asked for, the close.
    fn flush_loop(self) {
        let mut stream = &self.inner.stream;
        let _ = stream.set_write_timeout(Some(WRITE_STALL));
        loop {
            let (frame, offset) = {
                let mut st = self.inner.state.lock();
                match st.backlog.front() {
                    Some(f) => (f.clone(), st.head_written),
                    None => {
                        st.flushing = false;
                        if st.closing {
                            drop(st);
                            self.finish_close();
                        }
                        return;
                    }
                }
            };
            if stream.write_all(&frame[offset..]).is_err() {
                let mut st = self.inner.state.lock();
                st.broken = true;
                st.flushing = false;
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            let mut st = self.inner.state.lock();
            st.backlog.pop_front();
            st.head_written = 0;
            st.backlog_bytes = st.backlog.iter().map(|f| f.len()).sum();
        }
    }

    /// Asks for a close: the close frame follows whatever is backlogged; the socket is cut if the
    /// peer has not answered within `CLOSE_GRACE`.
    pub fn close(&self, code: u16, reason: &str) {
        let mut st = self.inner.state.lock();
        if st.closing || st.broken {
            return;
        }
        st.closing = true;
        push(&mut st, encode_close(code, reason).into(), 0);
        // The close travels through a flusher so its grace period never blocks the caller.
        self.start_flusher(&mut st);
    }

    /// After the close frame went out: half-close, wait for the peer, then cut.
    fn finish_close(&self) {
        let _ = self.inner.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + CLOSE_GRACE;
        while Instant::now() < deadline && !self.inner.reader_done.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.inner.stream.shutdown(Shutdown::Both);
    }

    /// The reader calls this when it stops, so a pending close need not wait out its grace.
    pub fn reader_finished(&self) {
        self.inner.reader_done.store(true, Ordering::Release);
    }

    pub fn is_closing(&self) -> bool {
        let st = self.inner.state.lock();
        st.closing || st.broken
    }

    /// Bytes waiting in the backlog (not yet accepted by the kernel).
    pub fn queued_bytes(&self) -> usize {
        self.inner.state.lock().backlog_bytes
    }
}

fn push(st: &mut State, frame: Arc<[u8]>, written: usize) {
    if st.backlog.is_empty() {
        st.head_written = written;
    }
    st.backlog_bytes += frame.len() - written;
    st.backlog.push_back(frame);
}

/// One `send` that never blocks (whatever the socket's mode) and never raises SIGPIPE.
fn send_nonblocking(stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
    let fd = stream.as_raw_fd();
    // SAFETY: `fd` is a live socket owned by `stream` for the duration of the call, and the
    // pointer/length describe the `data` slice.
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
        _ => Err(err),
    }
}

/// Encodes an unmasked server text frame.
pub fn encode_text(text: &str) -> Arc<[u8]> {
    encode(0x1, text.as_bytes()).into()
}

/// Appends an unmasked server text frame to `out` (several frames sent in one write).
pub fn push_text_frame(out: &mut Vec<u8>, text: &str) {
    push_frame(out, 0x1, text.as_bytes());
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
    push_frame(&mut out, opcode, payload);
    out
}

fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (s, c)
    }

    #[test]
    fn frame_lengths() {
        assert_eq!(&encode_text("hi")[..], &[0x81, 2, b'h', b'i']);
        let f = encode_text(&"x".repeat(300));
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        assert_eq!(encode_text(&"y".repeat(70_000))[1], 127);
        assert_eq!(&encode_close(1000, "")[..], &[0x88, 2, 0x03, 0xe8]);
    }

    #[test]
    fn frames_pushed_one_after_another_are_the_encoded_frames_joined() {
        let (short, long) = ("hi", "x".repeat(300));
        let mut out = Vec::new();
        push_text_frame(&mut out, short);
        push_text_frame(&mut out, &long);
        assert_eq!(
            out,
            [&encode_text(short)[..], &encode_text(&long)[..]].concat()
        );
    }

    #[test]
    fn stalled_reader_becomes_slow_consumer_then_gets_the_close() {
        let (server, mut client) = pair();
        let tx = ClientTx::new(server, "t".into());
        let big = encode_text(&"z".repeat(256 * 1024));
        let mut dropped = false;
        let mut slow = false;
        for _ in 0..64 {
            match tx.send_frame(&big, false) {
                Queued::SlowConsumer => {
                    slow = true;
                    break;
                }
                Queued::Dropped => dropped = true,
                _ => {}
            }
        }
        assert!(
            slow && !dropped,
            "a stalled client turns slow; non-droppable frames close it"
        );
        assert_eq!(tx.send_frame(&encode_text("late"), false), Queued::Closed);
        // Draining shows every accepted frame, then the 1008 close frame.
        let mut all = Vec::new();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = client.read_to_end(&mut all);
        let close = encode_close(1008, "slow consumer");
        assert!(all.ends_with(&close), "close frame last");
    }

    #[test]
    fn droppable_frames_are_skipped_when_slow() {
        let (server, _client) = pair();
        let tx = ClientTx::new(server, "t".into());
        let big = encode_text(&"z".repeat(256 * 1024));
        let mut saw_drop = false;
        for _ in 0..64 {
            if tx.send_frame(&big, true) == Queued::Dropped {
                saw_drop = true;
            }
        }
        assert!(saw_drop);
        assert!(!tx.is_closing(), "dropping does not close");
    }
}
