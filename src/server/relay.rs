//! Relays a plain-HTTP connection from the public port to the internal tiny_http listener on
//! loopback: two byte pumps (one per direction) on small stacks. The internal connection's local
//! port is recorded in the `PeerMap` so HTTP handlers still see the real client address.

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
    pump(client_rd, inner_wr);
    if let Ok(t) = back {
        let _ = t.join();
    }
    peers.remove(local_port);
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
