//! The Control UI: its assets (plain HTML/CSS/JS under `src/ui/`, embedded at compile time),
//! how they are served (SPA fallback, `/assets/…` deep links, gzip when the browser accepts it,
//! `Cache-Control: no-cache`), the `__CLAWDBOT_*` globals injected into `index.html`, and the
//! Content-Security-Policy that allows exactly that one inline script.

pub mod avatar;

use crate::server::http::{header, secure_with_csp, HttpSettings};
use flate2::{write::GzEncoder, Compression};
use parking_lot::Mutex;
use std::io::{self, Write};
use std::sync::OnceLock;
use tiny_http::Response;

/// Content-Security-Policy for every response but `index.html`: same-origin everything, no
/// inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

const INDEX: &str = include_str!("index.html");

/// One embedded file below `assets/`.
struct Asset {
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
}

const JS: &str = "application/javascript; charset=utf-8";

/// One embedded file: its name under `assets/` and its content type.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            body: include_bytes!(concat!("assets/", $name)),
            content_type: $content_type,
        }
    };
}

/// Every file the UI loads besides `index.html`.
const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("gateway.js", JS),
    asset!("dom.js", JS),
    asset!("markdown.js", JS),
    asset!("chat.js", JS),
    asset!("tabs.js", JS),
    asset!("config.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// Total uncompressed size of the UI (the issue caps it at 150 KB).
pub fn total_size() -> usize {
    INDEX.len() + ASSETS.iter().map(|a| a.body.len()).sum::<usize>()
}

type Resp = Response<io::Cursor<Vec<u8>>>;

/// Serves `path` (below the base path): a file under `assets/`, else the SPA's `index.html`.
pub fn serve(path: &str, accepts_gzip: bool, settings: &HttpSettings) -> Resp {
    if let Some(i) = asset_index(path) {
        let asset = &ASSETS[i];
        let body = if accepts_gzip {
            Some(gzipped_asset(i))
        } else {
            None
        };
        return respond(
            body.map(<[u8]>::to_vec)
                .unwrap_or_else(|| asset.body.to_vec()),
            asset.content_type,
            accepts_gzip,
            CSP,
        );
    }
    let (html, script) = injected_index(settings);
    let csp = index_csp(&script);
    let body = if accepts_gzip {
        gzipped_index(&html)
    } else {
        html.into_bytes()
    };
    respond(body, "text/html; charset=utf-8", accepts_gzip, &csp)
}

/// Deep links work as upstream's: whatever precedes `/assets/` is ignored.
fn asset_index(path: &str) -> Option<usize> {
    let (_, name) = path.rsplit_once("/assets/")?;
    ASSETS.iter().position(|a| a.name == name)
}

fn respond(body: Vec<u8>, content_type: &str, gzipped: bool, csp: &str) -> Resp {
    let mut resp = Response::from_data(body)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-cache"))
        .with_header(header("Vary", "Accept-Encoding"));
    if gzipped {
        resp = resp.with_header(header("Content-Encoding", "gzip"));
    }
    secure_with_csp(resp, csp)
}

/// The last compressed `index.html`, reused while the injected globals stay the same.
fn gzipped_index(html: &str) -> Vec<u8> {
    static LAST: Mutex<Option<(String, Vec<u8>)>> = Mutex::new(None);
    let mut last = LAST.lock();
    if let Some((text, gz)) = last.as_ref() {
        if text == html {
            return gz.clone();
        }
    }
    let gz = gzip(html.as_bytes());
    *last = Some((html.to_string(), gz.clone()));
    gz
}

/// Assets are compressed once, at first request, and kept for the life of the process.
fn gzipped_asset(i: usize) -> &'static [u8] {
    static CACHE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let all = CACHE.get_or_init(|| ASSETS.iter().map(|a| gzip(a.body)).collect());
    &all[i]
}

/// Stack for the compressing thread: miniz_oxide builds its ~300 KB compressor state on the
/// stack in debug builds, more than an HTTP handler thread has.
const GZIP_STACK: usize = 4 << 20;

/// Compresses on a short-lived thread with a large stack. It runs once per asset and once per
/// `index.html` variant (the injected globals change only on a config reload).
fn gzip(data: &[u8]) -> Vec<u8> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("ui-gzip".into())
            .stack_size(GZIP_STACK)
            .spawn_scoped(scope, || gzip_here(data))
            .ok()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    })
}

fn gzip_here(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 3), Compression::best());
    // Writing into a Vec cannot fail; an error here would mean a broken encoder, so fall back
    // to an empty body rather than panicking in a request handler.
    if enc.write_all(data).is_err() {
        return Vec::new();
    }
    enc.finish().unwrap_or_default()
}

/// `index.html` with upstream's globals script before `</head>`; also returns the script body
/// so the CSP can allow exactly it.
fn injected_index(settings: &HttpSettings) -> (String, String) {
    let script = format!(
        "window.__CLAWDBOT_CONTROL_UI_BASE_PATH__={};window.__CLAWDBOT_ASSISTANT_NAME__={};window.__CLAWDBOT_ASSISTANT_AVATAR__={};",
        js_string(&settings.base_path),
        js_string(&settings.assistant_name),
        js_string(&injected_avatar(settings)),
    );
    let html = INDEX.replacen("</head>", &format!("<script>{script}</script></head>"), 1);
    (html, script)
}

/// The avatar global: a local avatar file is shown through the avatar route (upstream's
/// `resolveAssistantAvatarUrl`), resolved per request since the file may appear later.
fn injected_avatar(settings: &HttpSettings) -> String {
    let agent = crate::config::default_agent_id(&settings.config);
    match avatar::resolve(&settings.config, &agent) {
        avatar::Source::Local(_) => format!("{}/avatar/{agent}", settings.base_path),
        _ => settings.assistant_avatar.clone(),
    }
}

/// The index's CSP: the default one, plus the hash of the injected inline script.
fn index_csp(script: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(script.as_bytes());
    let hash = standard_base64(&crate::util::base64url_encode(&digest));
    CSP.replacen(
        "script-src 'self'",
        &format!("script-src 'self' 'sha256-{hash}'"),
        1,
    )
}

/// base64url without padding → standard base64 with padding (what CSP hashes use).
fn standard_base64(url: &str) -> String {
    let mut s: String = url
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

/// JSON-encodes a string for a `<script>` block, escaping `<` so `</script>` cannot appear.
fn js_string(s: &str) -> String {
    serde_json::Value::String(s.to_string())
        .to_string()
        .replace('<', "\\u003c")
}

/// Whether an `Accept-Encoding` value allows gzip (`gzip` or `*`, not with `q=0`).
pub fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|part| {
        let mut fields = part.split(';').map(str::trim);
        let coding = fields.next().unwrap_or("");
        let refused = fields.any(|f| {
            f.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn whole_ui_fits_the_budget() {
        assert!(total_size() <= 150 * 1024, "UI is {} bytes", total_size());
    }

    #[test]
    fn accept_encoding_rules() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, identity"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn gzip_round_trips_and_deep_links_find_assets() {
        let i = asset_index("/sessions/x/assets/app.js").expect("deep link");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gzipped_asset(i))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, ASSETS[i].body);
        assert!(asset_index("/assets/nope.js").is_none());
        assert!(asset_index("/chat").is_none());
    }

    #[test]
    fn csp_hash_matches_the_injected_script() {
        let (html, script) = injected_index(&HttpSettings::default());
        assert!(html.contains(&format!("<script>{script}</script></head>")));
        let csp = index_csp(&script);
        assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
        assert!(csp.contains("=' ") || csp.contains("' "), "{csp}");
        assert!(!csp.contains("unsafe-inline"));
    }
}
