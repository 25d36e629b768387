//! Relays a plain-HTTP connection from the public port to the internal tiny_http listener on
//! loopback: two byte pumps (one per direction) on small stacks. The internal connection's local
//! port is recorded in the `PeerMap` so HTTP handlers still see the real client address.
//!
//! Each relayed connection carries one request: the head is forwarded with `Connection: close`.
//! tiny_http gives every connection a pool thread that blocks on it until it closes, and its pool
//! only adds a thread when none is idle at the moment a connection arrives; a browser opening six
//! keep-alive connections at once can leave one queued behind five idle keep-alive connections
//! for minutes (observed: the Control UI's page load stalled on one asset). One request per
//! connection frees the thread as soon as the response is written.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use super::http::PeerMap;
use crate::threads;

/// An idle HTTP connection (no bytes either way) is closed after this long.
const IDLE: Duration = Duration::from_secs(120);

/// Relays until either side closes. Runs on the caller's thread plus one pump thread.
pub fn relay(client: TcpStream, remote: SocketAddr, target: SocketAddr, peers: &PeerMap) {
    let Ok(inner) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        log::warn!(target: "http", "internal HTTP listener unreachable; dropping a request");
        return;
    };
    let _ = inner.set_nodelay(true);
    let local_port = inner.local_addr().map(|a| a.port()).unwrap_or(0);
    peers.insert(local_port, remote);
    let (Ok(client_rd), Ok(inner_wr)) = (client.try_clone(), inner.try_clone()) else {
        peers.remove(local_port);
        return;
    };
    let back = threads::spawn_named("http-relay", threads::STACK_SMALL, move || {
        pump(inner, client)
    });
    let mut client_rd = client_rd;
    let mut inner_wr = inner_wr;
    if forward_head_closing(&mut client_rd, &mut inner_wr).is_ok() {
        pump(client_rd, inner_wr);
    } else {
        let _ = inner_wr.shutdown(Shutdown::Both);
    }
    if let Ok(t) = back {
        let _ = t.join();
    }
    peers.remove(local_port);
}

/// Longest request head rewritten; a longer one is passed on unchanged (tiny_http answers it).
const MAX_HEAD: usize = 8192;

/// Moves the request head (already complete in the socket, see `peek_is_upgrade`) from `client`
/// to `inner` with its `Connection` header replaced by `Connection: close`.
fn forward_head_closing(client: &mut TcpStream, inner: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD];
    let n = client.peek(&mut buf)?;
    let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(());
    };
    let mut head = vec![0u8; end + 4];
    client.read_exact(&mut head)?;
    inner.write_all(&closing_head(&head))
}

/// The head without any `Connection` header, plus `Connection: close`.
fn closing_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(&head[..head.len() - 4]);
    let mut out = String::with_capacity(head.len() + 20);
    for (i, line) in text.split("\r\n").enumerate() {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if i == 0 || !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// Copies `from` → `to`. EOF is passed on as a half-close (the response may still be flowing the
/// other way); an error or idleness closes both sockets so the opposite pump ends too.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = from.set_read_timeout(Some(IDLE));
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::closing_head;

    #[test]
    fn connection_header_replaced_by_close() {
        let head = b"GET /a HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\nAccept: */*\r\n\r\n";
        let out = String::from_utf8(closing_head(head)).unwrap();
        assert_eq!(
            out,
            "GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }
}
