//! The Control UI assets, embedded in the binary, and how they are served (SPA fallback, the
//! `__CLAWDBOT_*` globals injected into `index.html`, `Cache-Control: no-cache`).

use crate::server::http::{header, secure};
use std::io;
use tiny_http::Response;

/// Content-Security-Policy for every response: same-origin scripts, styles and sockets only.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const INDEX: &str = include_str!("index.html");

/// Serves `path` (below the base path): the index for `/` and every unknown path.
pub fn serve(
    path: &str,
    settings: &crate::server::http::HttpSettings,
) -> Response<io::Cursor<Vec<u8>>> {
    let _ = path;
    let globals = format!(
        "<script>window.__CLAWDBOT_CONTROL_UI_BASE_PATH__={};window.__CLAWDBOT_ASSISTANT_NAME__={};window.__CLAWDBOT_ASSISTANT_AVATAR__={};</script>",
        js_string(&settings.base_path),
        js_string(&settings.assistant_name),
        js_string(&settings.assistant_avatar),
    );
    let body = INDEX.replacen("</head>", &format!("{globals}</head>"), 1);
    secure(
        Response::from_data(body.into_bytes())
            .with_header(header("Content-Type", "text/html; charset=utf-8"))
            .with_header(header("Cache-Control", "no-cache")),
    )
}

/// JSON-encodes a string for a `<script>` block, escaping `<` so `</script>` cannot appear.
fn js_string(s: &str) -> String {
    serde_json::Value::String(s.to_string())
        .to_string()
        .replace('<', "\\u003c")
}
