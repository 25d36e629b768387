//! The HTTP side of `POST /v1/chat/completions`: claiming the path, 405 and bearer auth on the
//! tiny_http handler thread, then a short-lived `oai-<n>` thread per accepted request that reads
//! the body, hands the turn to the loop (`Event::OpenAiTurn`) and writes the JSON answer or the
//! SSE stream. It never touches gateway state: it only waits on its own reply channel.

use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tiny_http::{Method, Request};

use super::request::{self, DEFAULT_MODEL};
use super::{reply_channel, ReplyMsg, TurnRequest};
use crate::gateway::event::Event;
use crate::server::http::{self as web, HttpContext, HttpSettings};

pub const PATH: &str = "/v1/chat/completions";
/// Upstream's body limit for this endpoint.
const MAX_BODY: usize = 1024 * 1024;
/// Requests being answered at once (each holds one `oai-<n>` thread until its run ends); more
/// are refused with 429 rather than queued on threads without bound.
pub const MAX_IN_FLIGHT: usize = 32;
/// Upstream's text for a run that produced no payload.
const NO_RESPONSE: &str = "No response from Moltbot.";
/// The loop dropped the run without an outcome (restart, `/stop` clearing the queue).
const CANCELLED: &str = "the run ended before it finished (gateway restarting or run cancelled)";

static THREAD_SEQ: AtomicU64 = AtomicU64::new(0);

/// The route-table test (§5.1 #6): the exact path, only when enabled.
pub fn claims(url: &str, settings: &HttpSettings) -> bool {
    settings.chat_completions && url.split('?').next() == Some(PATH)
}

fn error_json(status: u16, message: &str, kind: &str) -> web::Resp {
    let body = json!({"error": {"message": message, "type": kind}});
    web::json(status, &body.to_string())
}

fn header_of(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

/// Runs on a handler thread: answers at once, or hands the request to its own thread.
pub fn serve(req: Request, settings: &HttpSettings, ctx: &HttpContext) {
    if *req.method() != Method::Post {
        let resp = web::text(405, "Method Not Allowed").with_header(web::header("Allow", "POST"));
        let _ = req.respond(resp);
        return;
    }
    let token = request::bearer_token(header_of(&req, "authorization").as_deref());
    let auth = crate::gateway::auth::authorize(&settings.auth, token.as_deref(), token.as_deref());
    if auth.is_err() {
        let _ = req.respond(error_json(401, "Unauthorized", "unauthorized"));
        return;
    }
    let Some(events) = ctx.events.clone() else {
        let _ = req.respond(error_json(503, "gateway is not running", "api_error"));
        return;
    };
    let Some(slot) = Slot::take(&ctx.openai_in_flight) else {
        let msg = "Too many concurrent requests";
        let _ = req.respond(error_json(429, msg, "rate_limit_error"));
        return;
    };
    let name = format!("oai-{}", THREAD_SEQ.fetch_add(1, Ordering::Relaxed));
    let spawned = crate::threads::spawn_named(&name, crate::threads::STACK_PARSER, move || {
        let _slot = slot;
        answer(req, &events);
    });
    if let Err(e) = spawned {
        // The request went down with the closure: tiny_http answers it with a bare 500.
        log::error!(target: "http", "openai: could not start a request thread: {e}");
    }
}

/// One place in the in-flight count, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Option<Slot> {
        let before = count.fetch_add(1, Ordering::AcqRel);
        if before >= MAX_IN_FLIGHT {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The body as upstream's `readJsonBody` reads it: trimmed UTF-8, empty = `{}`.
fn read_json(req: &mut Request) -> Result<Value, String> {
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err("payload too large".into());
    }
    let mut buf = Vec::new();
    let limit = MAX_BODY as u64 + 1;
    if let Err(e) = req.as_reader().take(limit).read_to_end(&mut buf) {
        return Err(format!("Error: {e}"));
    }
    if buf.len() > MAX_BODY {
        return Err("payload too large".into());
    }
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text).map_err(|e| format!("SyntaxError: {e}"))
}

/// JavaScript's `Boolean(value)`.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// On the request's own thread: body → turn → answer.
fn answer(mut req: Request, events: &Sender<Event>) {
    let body = match read_json(&mut req) {
        Ok(v) if v.is_object() => v,
        Ok(_) => json!({}),
        Err(msg) => {
            let _ = req.respond(error_json(400, &msg, "invalid_request_error"));
            return;
        }
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL)
        .to_string();
    let header = |name: &str| header_of(&req, name);
    let agent_id = request::resolve_agent_id(&header, &model);
    let user = body.get("user").and_then(Value::as_str);
    let session_key = request::resolve_session_key(&header, &agent_id, user);
    let prompt = request::build_prompt(body.get("messages"));
    if prompt.message.is_empty() {
        let msg = "Missing user message in `messages`.";
        let _ = req.respond(error_json(400, msg, "invalid_request_error"));
        return;
    }
    let stream = truthy(body.get("stream"));
    let run_id = format!("chatcmpl_{}", crate::util::uuid_v4());
    let (reply, rx) = reply_channel(stream);
    let turn = TurnRequest {
        run_id: run_id.clone(),
        session_key,
        prompt: prompt.message,
        extra_system_prompt: prompt.extra_system_prompt,
        reply,
    };
    if events.send(Event::OpenAiTurn(Box::new(turn))).is_err() {
        let _ = req.respond(error_json(500, "gateway is shutting down", "api_error"));
        return;
    }
    let ids = Ids { run_id, model };
    if stream {
        stream_reply(req, &rx, &ids);
    } else {
        json_reply(req, &rx, &ids);
    }
}

struct Ids {
    run_id: String,
    model: String,
}

fn unix_seconds() -> u64 {
    crate::util::now_ms() / 1000
}

fn json_reply(req: Request, rx: &Receiver<ReplyMsg>, ids: &Ids) {
    let result = loop {
        match rx.recv() {
            Ok(ReplyMsg::Delta(_)) => continue,
            Ok(ReplyMsg::End { result, .. }) => break result,
            Err(_) => break Err(CANCELLED.to_string()),
        }
    };
    let resp = match result {
        Ok(text) => {
            let content = if text.is_empty() { NO_RESPONSE } else { &text };
            let body = json!({
                "id": ids.run_id, "object": "chat.completion", "created": unix_seconds(),
                "model": ids.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            });
            web::json(200, &body.to_string())
        }
        Err(message) => error_json(500, &message, "api_error"),
    };
    let _ = req.respond(resp);
}

/// An SSE response written straight to the connection: tiny_http's own chunked encoder
/// buffers 8 KiB before sending, which would hold back every delta.
struct Sse {
    out: Box<dyn Write + Send>,
    chunked: bool,
    wrote_role: bool,
    saw_delta: bool,
}

impl Sse {
    fn start(req: Request) -> io::Result<Sse> {
        let version = req.http_version().clone();
        let chunked = (version.0, version.1) >= (1, 1);
        let mut head = String::from("HTTP/1.1 200 OK\r\n");
        let mut headers = vec![
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
        ];
        headers.extend_from_slice(&web::SECURITY_HEADERS);
        if chunked {
            headers.push(("Connection", "keep-alive"));
            headers.push(("Transfer-Encoding", "chunked"));
        } else {
            headers.push(("Connection", "close"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = req.into_writer();
        out.write_all(head.as_bytes())?;
        out.flush()?;
        Ok(Sse {
            out,
            chunked,
            wrote_role: false,
            saw_delta: false,
        })
    }

    fn write_raw(&mut self, data: &str) -> io::Result<()> {
        if self.chunked {
            write!(self.out, "{:x}\r\n{data}\r\n", data.len())?;
        } else {
            self.out.write_all(data.as_bytes())?;
        }
        self.out.flush()
    }

    fn frame(&mut self, ids: &Ids, delta: Value, finish: Option<Value>) -> io::Result<()> {
        let mut choice = json!({"index": 0, "delta": delta});
        if let Some(f) = finish {
            choice["finish_reason"] = f;
        }
        let chunk = json!({"id": ids.run_id, "object": "chat.completion.chunk", "created": unix_seconds(), "model": ids.model, "choices": [choice]});
        self.write_raw(&format!("data: {chunk}\n\n"))
    }

    /// A content delta, preceded by the role chunk the first time.
    fn content(&mut self, ids: &Ids, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if !self.wrote_role {
            self.wrote_role = true;
            self.frame(ids, json!({"role": "assistant"}), None)?;
        }
        self.saw_delta = true;
        self.frame(ids, json!({"content": text}), Some(Value::Null))
    }

    fn error(&mut self, ids: &Ids, message: &str) -> io::Result<()> {
        let delta = json!({"content": format!("Error: {message}")});
        self.frame(ids, delta, Some(json!("stop")))
    }

    fn done(&mut self) -> io::Result<()> {
        self.write_raw("data: [DONE]\n\n")?;
        if self.chunked {
            self.out.write_all(b"0\r\n\r\n")?;
        }
        self.out.flush()
    }
}

/// Streams until the run's end. A client that goes away only stops the writing: the run goes
/// on (upstream does not abort it either) and its reply channel is simply dropped.
fn stream_reply(req: Request, rx: &Receiver<ReplyMsg>, ids: &Ids) {
    let result = Sse::start(req).and_then(|mut sse| {
        loop {
            match rx.recv() {
                Ok(ReplyMsg::Delta(d)) => sse.content(ids, &d)?,
                Ok(ReplyMsg::End { unsent, result }) => {
                    sse.content(ids, &unsent)?;
                    match result {
                        Ok(text) if !sse.saw_delta => {
                            let text = if text.is_empty() { NO_RESPONSE } else { &text };
                            sse.content(ids, text)?;
                        }
                        Ok(_) => {}
                        Err(message) => sse.error(ids, &message)?,
                    }
                    break;
                }
                Err(_) => {
                    sse.error(ids, CANCELLED)?;
                    break;
                }
            }
        }
        sse.done()
    });
    if let Err(e) = result {
        log::debug!(target: "http", "openai: stream {} ended early: {e}", ids.run_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_flag_is_javascript_truthiness() {
        assert!(!truthy(None));
        assert!(!truthy(Some(&json!(null))));
        assert!(!truthy(Some(&json!(0))));
        assert!(!truthy(Some(&json!(""))));
        assert!(truthy(Some(&json!(true))));
        assert!(truthy(Some(&json!("false"))));
        assert!(truthy(Some(&json!(1))));
        assert!(truthy(Some(&json!({}))));
    }

    #[test]
    fn claims_only_the_exact_path_when_enabled() {
        let mut s = HttpSettings::default();
        assert!(!claims(PATH, &s));
        s.chat_completions = true;
        assert!(claims(PATH, &s));
        assert!(claims("/v1/chat/completions?x=1", &s));
        assert!(!claims("/v1/chat/completions/", &s));
        assert!(!claims("/v1/models", &s));
    }

    #[test]
    fn the_in_flight_bound_is_given_back() {
        let count = Arc::new(AtomicUsize::new(0));
        let slots: Vec<Slot> = (0..MAX_IN_FLIGHT)
            .filter_map(|_| Slot::take(&count))
            .collect();
        assert_eq!(slots.len(), MAX_IN_FLIGHT);
        assert!(Slot::take(&count).is_none());
        drop(slots);
        assert_eq!(count.load(Ordering::Acquire), 0);
        assert!(Slot::take(&count).is_some());
    }
}
