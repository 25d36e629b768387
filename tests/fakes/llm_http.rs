//! The fake LLM's HTTP/1.1 plumbing: reading one request (head, then a `content-length` body)
//! and writing replies — a `content-length` body, or chunks of a streamed one.

use super::{Recorded, Route, MAX_BODY, MAX_HEAD};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Reads one request: head up to `MAX_HEAD`, then a `content-length` body. `Ok(None)` when the
/// peer connected and left without a request (the shutdown wake-up does that).
pub(super) fn read_request(
    stream: &mut TcpStream,
    conn: usize,
) -> Result<Option<Recorded>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut arrived = None;
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
        match stream.read(&mut chunk) {
            // A client that leaves (or idles out) between requests.
            Ok(0) | Err(_) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err("connection closed mid-request".into()),
            Ok(n) => {
                arrived.get_or_insert_with(Instant::now);
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err("request body too large".into());
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) => return Err("connection closed mid-body".into()),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    body.truncate(len);
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    Ok(Some(Recorded {
        route: Route::from_path(&path),
        method,
        path,
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
        arrived: arrived.unwrap_or_else(Instant::now),
        conn,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

pub(super) fn connection(keep: bool) -> &'static str {
    if keep {
        "keep-alive"
    } else {
        "close"
    }
}

pub(super) fn write_http(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
    keep: bool,
) -> io::Result<bool> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let has_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_type {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: {}\r\n\r\n",
        body.len(),
        connection(keep)
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    Ok(keep)
}

pub(super) fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    stream.write_all(&out)?;
    stream.flush()
}
