use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;

fn get(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn index_is_served_with_security_headers_and_globals() {
    let gw = Gateway::start(Opts::default());
    let resp = get(
        gw.port,
        "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("X-Frame-Options: DENY"));
    assert!(resp.contains("X-Content-Type-Options: nosniff"));
    assert!(resp.contains("Content-Security-Policy: "));
    assert!(resp.contains("window.__CLAWDBOT_ASSISTANT_NAME__=\"Assistant\""));
    let post = get(
        gw.port,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let meta = get(
        gw.port,
        "GET /avatar/main?meta=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(meta.ends_with("{\"avatarUrl\":null}"), "{meta}");
}

#[test]
fn ui_assets_deep_links_gzip_and_the_index_csp() {
    let gw = Gateway::start(Opts::default());
    let js = get(
        gw.port,
        "GET /sessions/x/assets/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(js.starts_with("HTTP/1.1 200"), "{js}");
    assert!(js.contains("Content-Type: application/javascript; charset=utf-8"));
    assert!(js.contains("Cache-Control: no-cache"));
    assert!(js.contains("GatewayClient"), "the app module itself");
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.write_all(b"GET /assets/app.css HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    assert_eq!(&raw[head_end..head_end + 2], &[0x1f, 0x8b], "a gzip body");
    let index = get(
        gw.port,
        "GET /logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(index.contains("script-src 'self' 'sha256-"), "{index}");
    assert!(!index.contains("unsafe-inline"));
    assert!(index.contains("./assets/app.js"));
}
