//! Incoming frames before and after the handshake: JSON and request-frame validation with
//! upstream's texts, the pre-`connect` rules, and dispatch to `methods`.

use serde_json::Value;

use super::core::Gateway;
use super::event::ConnId;
use super::methods::{self, RpcError};

/// Ajv-style problems with a request frame, e.g. `must have required property 'id'`.
pub fn request_frame_problems(frame: &Value) -> Vec<String> {
    let Some(obj) = frame.as_object() else {
        return vec!["must be object".into()];
    };
    let mut out = Vec::new();
    for key in ["type", "id", "method"] {
        if !obj.contains_key(key) {
            out.push(format!("must have required property '{key}'"));
        }
    }
    for key in obj
        .keys()
        .filter(|k| !["type", "id", "method", "params"].contains(&k.as_str()))
    {
        out.push(format!("at root: unexpected property '{key}'"));
    }
    if obj.get("type").is_some_and(|t| t != "req") {
        out.push("at /type: must be equal to constant".into());
    }
    for key in ["id", "method"] {
        match obj.get(key) {
            Some(Value::String(s)) if s.is_empty() => {
                out.push(format!("at /{key}: must NOT have fewer than 1 characters"))
            }
            Some(Value::String(_)) | None => {}
            Some(_) => out.push(format!("at /{key}: must be string")),
        }
    }
    out
}

impl Gateway {
    pub fn on_frame(&mut self, conn: ConnId, text: &str) {
        let Some(client) = self.clients.get(&conn) else {
            return;
        };
        let handshaken = client.session.is_some();
        let frame: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                // Unparseable before the handshake closes 1000; after it, the frame is ignored.
                if !handshaken {
                    client.tx.close(1000, "");
                }
                return;
            }
        };
        if !handshaken {
            return self.on_handshake_frame(conn, frame);
        }
        let problems = request_frame_problems(&frame);
        let id = frame
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("invalid")
            .to_string();
        if !problems.is_empty() {
            let err = RpcError::invalid(format!("invalid request frame: {}", problems.join("; ")));
            return self.respond(conn, &id, Err(err));
        }
        let method = frame
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let params = frame
            .get("params")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        if method == "connect" {
            return self.respond(
                conn,
                &id,
                Err(RpcError::invalid(
                    "connect is only valid as the first request",
                )),
            );
        }
        if method == "agent" || method == "agent.wait" {
            return self.on_agent_request(conn, &id, &method, params);
        }
        let started = std::time::Instant::now();
        // A handler bug must cost one request, not the gateway: a panic becomes UNAVAILABLE.
        let run = std::panic::AssertUnwindSafe(|| methods::dispatch(self, conn, &method, params));
        let result = std::panic::catch_unwind(run).unwrap_or_else(|_| {
            log::error!(target: "gateway", "handler for {method} panicked; answered UNAVAILABLE");
            Err(RpcError::unavailable(format!("internal error in {method}")))
        });
        log_response(&method, &result, started, &id);
        self.respond(conn, &id, result);
    }

    fn on_handshake_frame(&mut self, conn: ConnId, frame: Value) {
        let Some(client) = self.clients.get(&conn) else {
            return;
        };
        let is_req = frame.get("type") == Some(&Value::String("req".into()))
            && frame
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
            && frame
                .get("method")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
        if !is_req {
            client.tx.close(1008, "invalid request frame");
            return;
        }
        let id = frame
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if frame.get("method").and_then(Value::as_str) != Some("connect") {
            let msg = "invalid handshake: first request must be connect";
            self.respond(conn, &id, Err(RpcError::invalid(msg)));
            if let Some(c) = self.clients.get(&conn) {
                c.tx.close(1008, msg);
            }
            return;
        }
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        self.on_connect(conn, &id, params);
    }
}

impl Gateway {
    /// `agent` and `agent.wait` answer on the same request id later, so they need the id.
    fn on_agent_request(&mut self, conn: ConnId, id: &str, method: &str, params: Value) {
        let allowed = self
            .clients
            .get(&conn)
            .and_then(|c| c.session.as_ref())
            .is_some_and(|s| {
                s.role == "operator"
                    && (s.has_scope("operator.admin") || s.has_scope("operator.write"))
            });
        if !allowed {
            return self.respond(
                conn,
                id,
                Err(RpcError::invalid("missing scope: operator.write")),
            );
        }
        let params = if params.is_null() {
            Value::Object(Default::default())
        } else {
            params
        };
        let result = if method == "agent" {
            Some(self.agent_method(conn, id, &params))
        } else {
            self.agent_wait(conn, id, &params)
        };
        if let Some(r) = result {
            self.respond(conn, id, r);
        }
    }
}

fn log_response(
    method: &str,
    result: &Result<Value, RpcError>,
    started: std::time::Instant,
    id: &str,
) {
    let ms = started.elapsed().as_millis();
    match result {
        Ok(_) => log::debug!(target: "ws", "⇄ res ✓ {method} {ms}ms id={id}"),
        Err(e) => {
            log::debug!(target: "ws", "⇄ res ✗ {method} {ms}ms errorCode={} errorMessage={} id={id}", e.code, e.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frame_problems_match_upstream() {
        let p = request_frame_problems(&json!({"type": "event", "event": "x"}));
        assert_eq!(
            p.join("; "),
            "must have required property 'id'; must have required property 'method'; at root: unexpected property 'event'; at /type: must be equal to constant"
        );
        assert!(
            request_frame_problems(&json!({"type": "req", "id": "1", "method": "health"}))
                .is_empty()
        );
    }
}
