//! Config hot reload as upstream classifies it: diff the old and new config into dotted paths,
//! then no-op / hot / restart by the first matching prefix (`meta` and unknown paths restart).
//! An invalid edit is logged and ignored: the last valid config stays in force.

use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::core::{Gateway, LoopExit};
use crate::config::{self, Snapshot};

const NO_OP: &[&str] = &[
    "gateway.remote",
    "gateway.reload",
    "identity",
    "wizard",
    "logging",
    "models",
    "agents",
    "tools",
    "bindings",
    "audio",
    "agent",
    "routing",
    "messages",
    "session",
    "talk",
    "skills",
    "ui",
    "channels.whatsapp",
    "env",
    "auth",
    "commands",
    "approvals",
    "media",
    "broadcast",
    "diagnostics",
    "update",
    "nodeHost",
];
const HOT: &[&str] = &["hooks", "cron", "browser", "channels", "web"];
const RESTART: &[&str] = &["gateway", "plugins", "discovery", "canvasHost"];

#[derive(Debug, PartialEq, Eq)]
enum Class {
    NoOp,
    Hot,
    Restart,
}

fn matches(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}."))
}

fn classify(path: &str) -> Class {
    if matches(path, "agents.defaults.heartbeat") {
        return Class::Hot;
    }
    if NO_OP.iter().any(|p| matches(path, p)) {
        return Class::NoOp;
    }
    if RESTART.iter().any(|p| matches(path, p)) {
        return Class::Restart;
    }
    if HOT.iter().any(|p| matches(path, p)) {
        return Class::Hot;
    }
    Class::Restart
}

/// Dotted paths whose values differ (arrays compare as a whole).
pub fn diff_paths(old: &Value, new: &Value, prefix: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                diff_paths(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &p,
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

impl Gateway {
    pub fn on_config_file_changed(&mut self) -> Option<LoopExit> {
        let snap = config::read_snapshot(&self.ctx.config_path);
        if snap.hash == self.snapshot.hash {
            return None;
        }
        if !snap.valid {
            let issues = snap.issue_lines().join("; ");
            log::warn!(target: "reload", "config reload skipped (invalid config): {issues}");
            return None;
        }
        self.adopt_written_config(Arc::new(snap));
        None
    }

    /// Takes a new valid snapshot (from disk or our own write) and decides what it needs.
    pub fn adopt_written_config(&mut self, snap: Arc<Snapshot>) {
        let mut changed = Vec::new();
        diff_paths(&self.snapshot.resolved, &snap.resolved, "", &mut changed);
        if changed.is_empty() {
            self.swap_snapshot(snap);
            return;
        }
        let mode = snap
            .config
            .pointer("/gateway/reload/mode")
            .and_then(Value::as_str)
            .unwrap_or("hybrid")
            .to_string();
        let restart_paths: Vec<&String> = changed
            .iter()
            .filter(|p| classify(p) == Class::Restart)
            .collect();
        let needs_restart = mode == "restart" || (mode == "hybrid" && !restart_paths.is_empty());
        log::info!(target: "reload", "config change detected; evaluating reload ({})", changed.join(", "));
        if needs_restart {
            let list: Vec<&str> = restart_paths.iter().map(|s| s.as_str()).collect();
            log::info!(target: "reload", "config change requires gateway restart ({})", list.join(", "));
            self.swap_snapshot(snap);
            self.schedule_restart(Duration::from_millis(0), "config change".into());
            return;
        }
        if mode == "off" {
            log::info!(target: "reload", "config reload disabled (gateway.reload.mode=off); change noted");
        } else if !restart_paths.is_empty() {
            log::warn!(target: "reload", "config change needs a restart, ignored in hot mode");
        }
        self.swap_snapshot(snap);
    }

    /// Restarts in-process after `delay`, unless an earlier restart is already due.
    pub fn schedule_restart(&mut self, delay: Duration, reason: String) {
        let at = Instant::now() + delay;
        match &self.restart_at {
            Some((existing, _)) if *existing <= at => {}
            _ => self.restart_at = Some((at, reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classification_as_upstream() {
        assert_eq!(classify("meta.lastTouchedAt"), Class::Restart);
        assert_eq!(classify("gateway.port"), Class::Restart);
        assert_eq!(classify("gateway.reload.mode"), Class::NoOp);
        assert_eq!(classify("agents.defaults.model"), Class::NoOp);
        assert_eq!(classify("agents.defaults.heartbeat.every"), Class::Hot);
        assert_eq!(classify("channels.discord.token"), Class::Hot);
        assert_eq!(classify("somethingNew"), Class::Restart);
        let mut out = Vec::new();
        diff_paths(
            &json!({"a": {"b": 1}, "l": [1]}),
            &json!({"a": {"b": 2}, "l": [1], "c": true}),
            "",
            &mut out,
        );
        assert_eq!(out, ["a.b", "c"]);
    }
}
