//! Validation of `ConnectParams` with Ajv's wording (`at /client/id: must be equal to constant`),
//! which is what upstream clients show their users.

use serde_json::Value;

/// Accepted `client.id` values: the tree's, npm's `clawdbot-*` and later `openclaw-*` spellings.
const CLIENT_IDS: &[&str] = &[
    "webchat-ui",
    "webchat",
    "cli",
    "gateway-client",
    "node-host",
    "test",
    "fingerprint",
    "moltbot-control-ui",
    "moltbot-macos",
    "moltbot-ios",
    "moltbot-android",
    "moltbot-probe",
    "clawdbot-control-ui",
    "clawdbot-macos",
    "clawdbot-ios",
    "clawdbot-android",
    "clawdbot-probe",
    "openclaw-control-ui",
    "openclaw-macos",
    "openclaw-ios",
    "openclaw-android",
    "openclaw-probe",
];
const CLIENT_MODES: &[&str] = &["webchat", "cli", "ui", "backend", "node", "probe", "test"];

const TOP_KEYS: &[&str] = &[
    "minProtocol",
    "maxProtocol",
    "client",
    "caps",
    "commands",
    "permissions",
    "pathEnv",
    "role",
    "scopes",
    "device",
    "auth",
    "locale",
    "userAgent",
];
const CLIENT_KEYS: &[&str] = &[
    "id",
    "displayName",
    "version",
    "platform",
    "deviceFamily",
    "modelIdentifier",
    "mode",
    "instanceId",
];
const DEVICE_KEYS: &[&str] = &["id", "publicKey", "signature", "signedAt", "nonce"];
const AUTH_KEYS: &[&str] = &["token", "password"];

/// `Err(details)` lists every problem, joined with `; `.
pub fn validate_params(params: &Value) -> Result<(), String> {
    let mut out = Vec::new();
    let Some(obj) = params.as_object() else {
        return Err("must be object".into());
    };
    required(obj, "", &["minProtocol", "maxProtocol", "client"], &mut out);
    closed(obj, "", TOP_KEYS, &mut out);
    for key in ["minProtocol", "maxProtocol"] {
        if let Some(v) = obj.get(key) {
            integer_min1(v, &format!("/{key}"), &mut out);
        }
    }
    if let Some(client) = obj.get("client") {
        check_client(client, &mut out);
    }
    for key in ["pathEnv", "role", "locale", "userAgent"] {
        if obj.get(key).is_some_and(|v| !v.is_string()) {
            out.push(format!("at /{key}: must be string"));
        }
    }
    for key in ["caps", "commands", "scopes"] {
        string_array(obj.get(key), &format!("/{key}"), &mut out);
    }
    if obj.get("permissions").is_some_and(|v| !v.is_object()) {
        out.push("at /permissions: must be object".into());
    }
    if let Some(device) = obj.get("device") {
        check_device(device, &mut out);
    }
    if let Some(auth) = obj.get("auth") {
        match auth.as_object() {
            Some(a) => {
                closed(a, "/auth", AUTH_KEYS, &mut out);
                for k in AUTH_KEYS {
                    if a.get(*k).is_some_and(|v| !v.is_string()) {
                        out.push(format!("at /auth/{k}: must be string"));
                    }
                }
            }
            None => out.push("at /auth: must be object".into()),
        }
    }
    out.dedup();
    if out.is_empty() {
        Ok(())
    } else {
        Err(out.join("; "))
    }
}

fn required(obj: &serde_json::Map<String, Value>, at: &str, keys: &[&str], out: &mut Vec<String>) {
    for key in keys.iter().filter(|k| !obj.contains_key(**k)) {
        if at.is_empty() {
            out.push(format!("must have required property '{key}'"));
        } else {
            out.push(format!("at {at}: must have required property '{key}'"));
        }
    }
}

fn closed(obj: &serde_json::Map<String, Value>, at: &str, allowed: &[&str], out: &mut Vec<String>) {
    let at = if at.is_empty() { "root" } else { at };
    for key in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
        out.push(format!("at {at}: unexpected property '{key}'"));
    }
}

fn integer_min1(v: &Value, at: &str, out: &mut Vec<String>) {
    match v.as_f64() {
        Some(f) if f.fract() != 0.0 => out.push(format!("at {at}: must be integer")),
        Some(f) if f < 1.0 => out.push(format!("at {at}: must be >= 1")),
        Some(_) => {}
        None => out.push(format!("at {at}: must be integer")),
    }
}

fn non_empty_string(v: Option<&Value>, at: &str, out: &mut Vec<String>) {
    match v {
        Some(Value::String(s)) if s.is_empty() => {
            out.push(format!("at {at}: must NOT have fewer than 1 characters"))
        }
        Some(Value::String(_)) | None => {}
        Some(_) => out.push(format!("at {at}: must be string")),
    }
}

fn string_array(v: Option<&Value>, at: &str, out: &mut Vec<String>) {
    match v {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    out.push(format!("at {at}/{i}: must be string"));
                }
            }
        }
        Some(_) => out.push(format!("at {at}: must be array")),
    }
}

fn literal_union(v: Option<&Value>, at: &str, allowed: &[&str], out: &mut Vec<String>) {
    if let Some(v) = v {
        if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            out.push(format!("at {at}: must be equal to constant"));
            out.push(format!("at {at}: must match a schema in anyOf"));
        }
    }
}

fn check_client(client: &Value, out: &mut Vec<String>) {
    let Some(c) = client.as_object() else {
        out.push("at /client: must be object".into());
        return;
    };
    required(c, "/client", &["id", "version", "platform", "mode"], out);
    closed(c, "/client", CLIENT_KEYS, out);
    literal_union(c.get("id"), "/client/id", CLIENT_IDS, out);
    literal_union(c.get("mode"), "/client/mode", CLIENT_MODES, out);
    for key in ["version", "platform"] {
        non_empty_string(c.get(key), &format!("/client/{key}"), out);
    }
    for key in [
        "displayName",
        "deviceFamily",
        "modelIdentifier",
        "instanceId",
    ] {
        if c.get(key).is_some_and(|v| !v.is_string()) {
            out.push(format!("at /client/{key}: must be string"));
        }
    }
}

fn check_device(device: &Value, out: &mut Vec<String>) {
    let Some(d) = device.as_object() else {
        out.push("at /device: must be object".into());
        return;
    };
    required(
        d,
        "/device",
        &["id", "publicKey", "signature", "signedAt"],
        out,
    );
    closed(d, "/device", DEVICE_KEYS, out);
    for key in ["id", "publicKey", "signature"] {
        non_empty_string(d.get(key), &format!("/device/{key}"), out);
    }
    if d.get("signedAt").is_some_and(|v| !v.is_u64()) {
        out.push("at /device/signedAt: must be integer".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"minProtocol": 3, "maxProtocol": 3, "client": {"id": "cli", "version": "dev", "platform": "linux", "mode": "cli"}})
    }

    #[test]
    fn accepts_upstream_clients() {
        assert!(validate_params(&base()).is_ok());
        let mut ui = base();
        ui["client"]["id"] = json!("clawdbot-control-ui");
        ui["client"]["mode"] = json!("webchat");
        ui["caps"] = json!([]);
        ui["userAgent"] = json!("x");
        assert!(validate_params(&ui).is_ok());
    }

    #[test]
    fn messages_match_ajv() {
        let mut bad = base();
        bad["client"]["id"] = json!("ios-node");
        assert_eq!(
            validate_params(&bad).unwrap_err(),
            "at /client/id: must be equal to constant; at /client/id: must match a schema in anyOf"
        );
        let mut extra = base();
        extra["bogus"] = json!(1);
        assert_eq!(
            validate_params(&extra).unwrap_err(),
            "at root: unexpected property 'bogus'"
        );
        assert_eq!(validate_params(&json!({})).unwrap_err(), "must have required property 'minProtocol'; must have required property 'maxProtocol'; must have required property 'client'");
    }
}
