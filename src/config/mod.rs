//! The config file: reading a snapshot (read → JSON5 → `$include` → `env` → `${VAR}` → legacy,
//! schema, plugin and refinement checks → defaults), the error report users see, and the
//! settings other modules read from it. The file itself is written only by `write`.

pub mod defaults;
pub mod envsubst;
pub mod include;
pub mod json5;
pub mod redact;
pub mod refine;
mod refine_agents;
pub use refine_agents::workspace_dir;
mod refine_channels;
pub mod rules;
pub mod validate;
pub mod watch;
pub mod write;

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use validate::Issue;

static SCHEMA: OnceLock<Value> = OnceLock::new();
static UI_HINTS: OnceLock<Value> = OnceLock::new();

/// The embedded schema (upstream's accepted key set, as JSON Schema).
pub fn schema() -> &'static Value {
    SCHEMA.get_or_init(|| {
        serde_json::from_str(include_str!("schema.json")).unwrap_or_else(|_| json!({}))
    })
}

/// The embedded UI hints (labels, help, which paths hold secrets).
pub fn ui_hints() -> &'static Value {
    UI_HINTS.get_or_init(|| {
        serde_json::from_str(include_str!("ui-hints.json")).unwrap_or_else(|_| json!({}))
    })
}

/// One reading of the config file and everything derived from it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub path: PathBuf,
    pub exists: bool,
    /// The file's text (`None` when missing or unreadable).
    pub raw: Option<String>,
    /// The JSON5-parsed file, before `$include`/`${VAR}` (`Null` when it does not parse).
    pub parsed: Value,
    /// After includes and substitution, before defaults.
    pub resolved: Value,
    /// Validated, with defaults applied; `{}`-based defaults when invalid.
    pub config: Value,
    pub valid: bool,
    /// SHA-256 hex of the raw text (of "" when missing): the `baseHash` for writes.
    pub hash: String,
    pub issues: Vec<Issue>,
    pub legacy_issues: Vec<Issue>,
    /// Line of each key in the main file, for error reports.
    pub lines: HashMap<String, u32>,
    /// The config's `env` block (applied under the process environment).
    pub env_block: HashMap<String, String>,
}

impl Snapshot {
    fn empty(path: &Path) -> Self {
        Snapshot {
            path: path.to_path_buf(),
            exists: false,
            raw: None,
            parsed: json!({}),
            resolved: json!({}),
            config: defaults::apply(json!({})),
            valid: true,
            hash: crate::util::sha256_hex(b""),
            issues: Vec::new(),
            legacy_issues: Vec::new(),
            lines: HashMap::new(),
            env_block: HashMap::new(),
        }
    }

    fn invalid(mut self, issues: Vec<Issue>) -> Self {
        self.valid = false;
        self.issues = issues;
        self.config = defaults::apply(json!({}));
        self
    }

    /// Looks up an environment variable as the config sees it: process env, then `env` block.
    pub fn env(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.env_block.get(name).cloned())
    }

    /// The best line for an issue: its key, else the nearest ancestor present in the file.
    pub fn line_of(&self, issue: &Issue) -> Option<u32> {
        let mut p = issue.key_path.as_str();
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return self.lines.get(p).copied(),
            }
        }
    }

    /// `- moltbot.json:12: gateway: Unrecognized key: "prot"` lines, one per issue.
    pub fn issue_lines(&self) -> Vec<String> {
        let file = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.issues
            .iter()
            .map(|i| {
                let at = if i.path.is_empty() {
                    "<root>"
                } else {
                    i.path.as_str()
                };
                match self.line_of(i) {
                    Some(line) => format!("- {file}:{line}: {at}: {}", i.message),
                    None => format!("- {file}: {at}: {}", i.message),
                }
            })
            .collect()
    }

    /// The report printed when the gateway refuses to start on this file.
    pub fn refusal_report(&self) -> String {
        let mut out = vec![
            "Config invalid".to_string(),
            format!("File: {}", self.path.display()),
            "Problem:".into(),
        ];
        out.extend(self.issue_lines().into_iter().map(|l| format!("  {l}")));
        if !self.legacy_issues.is_empty() {
            out.push("Legacy config keys detected:".into());
            out.extend(
                self.legacy_issues
                    .iter()
                    .map(|i| format!("  - {}: {}", i.path, i.message)),
            );
        }
        out.push("Run: moltbot doctor --fix (or edit the file); the file was not changed.".into());
        out.join("\n")
    }

    /// Issues as `[{path, message}]` for RPC answers.
    pub fn issues_json(issues: &[Issue]) -> Value {
        Value::Array(
            issues
                .iter()
                .map(|i| json!({"path": i.path, "message": i.message}))
                .collect(),
        )
    }

    /// The `config.get` payload.
    pub fn to_rpc(&self) -> Value {
        json!({
            "path": self.path.to_string_lossy(),
            "exists": self.exists,
            "raw": self.raw,
            "parsed": self.parsed,
            "valid": self.valid,
            "config": self.config,
            "hash": self.hash,
            "issues": Self::issues_json(&self.issues),
            "warnings": [],
            "legacyIssues": Self::issues_json(&self.legacy_issues),
        })
    }
}

/// Reads the config file at `path` into a snapshot; never fails (problems become issues).
pub fn read_snapshot(path: &Path) -> Snapshot {
    let mut snap = Snapshot::empty(path);
    let raw = match std::fs::read_to_string(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return snap,
        Err(e) => {
            snap.exists = true;
            return snap.invalid(vec![Issue::new("", format!("Failed to read config: {e}"))]);
        }
    };
    snap.exists = true;
    snap.hash = crate::util::sha256_hex(raw.as_bytes());
    snap.raw = Some(raw.clone());
    let parsed = match json5::parse(&raw) {
        Ok(p) => p,
        Err(e) => {
            snap.parsed = Value::Null;
            snap.lines.insert(String::new(), e.line);
            return snap.invalid(vec![Issue::new(
                "",
                format!("JSON5 parse failed: SyntaxError: {e}"),
            )]);
        }
    };
    snap.lines = parsed.lines;
    snap.parsed = parsed.value.clone();
    evaluate(snap, parsed.value, path)
}

/// Checks a config value (already parsed) as if it were the file at `path`.
pub fn evaluate(mut snap: Snapshot, parsed: Value, path: &Path) -> Snapshot {
    let included = match include::resolve(parsed, path) {
        Ok(v) => v,
        Err(e) => return snap.invalid(vec![Issue::new("", e)]),
    };
    snap.env_block = env_block(&included);
    let resolved = match envsubst::substitute(included, &snap) {
        Ok(v) => v,
        Err(e) => return snap.invalid(vec![Issue::new("", e)]),
    };
    snap.resolved = resolved.clone();
    let issues = check(&resolved);
    snap.legacy_issues = rules::legacy_issues(&resolved);
    if !issues.is_empty() {
        return snap.invalid(issues);
    }
    snap.config = defaults::apply(resolved);
    snap
}

impl envsubst::EnvLookup for Snapshot {
    fn get(&self, name: &str) -> Option<String> {
        self.env(name)
    }
}

/// All validation stages in upstream's order; stops at the first stage with issues.
pub fn check(config: &Value) -> Vec<Issue> {
    if !config.is_object() {
        return vec![Issue::new(
            "",
            format!(
                "Invalid input: expected object, received {}",
                validate::received(config)
            ),
        )];
    }
    let legacy = rules::legacy_issues(config);
    if !legacy.is_empty() {
        return legacy;
    }
    // zod reports its refinements together with the schema's own issues.
    let issues = refine::zod_stage(config, schema(), validate::validate(schema(), config));
    if !issues.is_empty() {
        return issues;
    }
    let issues = refine::after_zod(config);
    if !issues.is_empty() {
        return issues;
    }
    rules::plugin_issues(config, schema())
}

/// The `env` block's variables (`vars` and top-level string keys, except `shellEnv`).
fn env_block(config: &Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(env) = config.get("env").and_then(Value::as_object) else {
        return out;
    };
    let vars = env
        .get("vars")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let top: Map<String, Value> = env
        .iter()
        .filter(|(k, _)| *k != "vars" && *k != "shellEnv")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in vars.iter().chain(top.iter()) {
        if let Some(s) = v.as_str().filter(|s| !s.trim().is_empty()) {
            out.insert(k.clone(), s.to_string());
        }
    }
    out
}

/// The default agent id: first `agents.list[]` entry with `default: true`, else the first, else `main`.
pub fn default_agent_id(config: &Value) -> String {
    let list = config.pointer("/agents/list").and_then(Value::as_array);
    let chosen = list.and_then(|l| {
        l.iter()
            .find(|a| a.get("default") == Some(&Value::Bool(true)))
            .or_else(|| l.first())
    });
    chosen
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .map(normalize_agent_id)
        .unwrap_or_else(|| "main".into())
}

/// Agent ids as upstream normalises them: lowercase, runs of other characters → `-`, ≤ 64 chars.
pub fn normalize_agent_id(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let mut out = String::new();
    for c in lower.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(64).collect();
    if trimmed.is_empty() {
        "main".into()
    } else {
        trimmed
    }
}

/// Every configured agent id (the default agent first if the list is empty).
pub fn agent_ids(config: &Value) -> Vec<String> {
    let list = config.pointer("/agents/list").and_then(Value::as_array);
    let ids: Vec<String> = list
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("id")?.as_str().map(normalize_agent_id))
        .collect();
    if ids.is_empty() {
        vec![default_agent_id(config)]
    } else {
        ids
    }
}
