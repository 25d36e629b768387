//! Keeps the Fly.io deployment files consistent with each other:
//! `fly.toml`, `fly.private.toml` and `Dockerfile.slim`.
//!
//! std only: a tiny TOML-ish line parser and a tiny Dockerfile parser, just enough for
//! these files. `check_all` returns every problem found (each naming the file and the
//! values that disagree); the `rejects_*` tests feed it broken copies so it cannot pass
//! silently.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/target-deploy cargo test --test deploy_files`

use std::fs;
use std::path::Path;

const FLY: &str = "fly.toml";
const PRIVATE: &str = "fly.private.toml";
const DOCKERFILE: &str = "Dockerfile.slim";

/// The state directory the gateway must use on Fly (the volume mount point).
const STATE_DIR: &str = "/data";
/// Largest VM we want to pay for; the Rust gateway needs 256–512 MB.
const MAX_VM_MB: u64 = 512;

// ---------------------------------------------------------------------------------------
// TOML-ish parser
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<Value>),
    /// Anything else (floats, dates, inline tables), kept as written.
    Other(String),
}

impl Value {
    fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn show(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(v) => format!(
                "[{}]",
                v.iter().map(Value::show).collect::<Vec<_>>().join(", ")
            ),
            Value::Other(s) => s.clone(),
        }
    }
}

#[derive(Debug)]
struct Table {
    /// Dotted header without brackets; "" for the root table.
    header: String,
    is_array: bool,
    entries: Vec<(String, Value)>,
}

#[derive(Debug)]
struct Toml {
    tables: Vec<Table>,
}

impl Toml {
    /// First (or only) table with this exact header, `[x]` or `[[x]]`.
    fn table(&self, header: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.header == header)
    }
    fn tables(&self, header: &str) -> Vec<&Table> {
        self.tables.iter().filter(|t| t.header == header).collect()
    }
    /// `[x]`, `[[x]]` or any `[x.sub]` / `[[x.sub]]`.
    fn has_table_tree(&self, header: &str) -> bool {
        let prefix = format!("{header}.");
        self.tables
            .iter()
            .any(|t| t.header == header || t.header.starts_with(&prefix))
    }
    fn get(&self, header: &str, key: &str) -> Option<&Value> {
        self.table(header)?.get(key)
    }
    fn get_str(&self, header: &str, key: &str) -> Option<&str> {
        self.get(header, key)?.as_str()
    }
}

impl Table {
    fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Removes a trailing `# comment` that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return &line[..i],
            None => {}
        }
    }
    line
}

/// Splits at `sep` characters that are outside quotes and brackets.
fn split_outside(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                _ if c == sep && depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + c.len_utf8();
                }
                _ => {}
            },
        }
    }
    out.push(&s[start..]);
    out
}

fn unquote_basic(body: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            other => {
                return Err(format!(
                    "unsupported escape \\{}",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

fn parse_value(raw: &str) -> Result<Value, String> {
    let s = raw.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        return unquote_basic(&s[1..s.len() - 1]).map(Value::Str);
    }
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        return Ok(Value::Str(s[1..s.len() - 1].to_string()));
    }
    if s == "true" || s == "false" {
        return Ok(Value::Bool(s == "true"));
    }
    if s.starts_with('[') {
        if !s.ends_with(']') {
            return Err(format!("unterminated array {s}"));
        }
        let inner = s[1..s.len() - 1].trim();
        let mut items = Vec::new();
        for part in split_outside(inner, ',') {
            if !part.trim().is_empty() {
                items.push(parse_value(part)?);
            }
        }
        return Ok(Value::Array(items));
    }
    if let Ok(i) = s.replace('_', "").parse::<i64>() {
        return Ok(Value::Int(i));
    }
    if s.is_empty() || s.starts_with('"') || s.starts_with('\'') {
        return Err(format!("bad value {s:?}"));
    }
    Ok(Value::Other(s.to_string()))
}

fn parse_key(raw: &str) -> Result<String, String> {
    let k = raw.trim();
    match parse_value(k) {
        Ok(Value::Str(s)) if k.starts_with('"') || k.starts_with('\'') => Ok(s),
        _ if !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') =>
        {
            Ok(k.to_string())
        }
        _ => Err(format!("bad key {k:?}")),
    }
}

fn parse_toml(text: &str) -> Result<Toml, String> {
    let mut tables = vec![Table {
        header: String::new(),
        is_array: false,
        entries: Vec::new(),
    }];
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let lineno = n + 1;
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let (is_array, inner) = if line.starts_with("[[") && line.ends_with("]]") {
                (true, &line[2..line.len() - 2])
            } else if line.ends_with(']') {
                (false, &line[1..line.len() - 1])
            } else {
                return Err(format!("line {lineno}: bad table header {line:?}"));
            };
            let header = inner.trim().to_string();
            if !is_array && tables.iter().any(|t| t.header == header) {
                return Err(format!("line {lineno}: table [{header}] defined twice"));
            }
            tables.push(Table {
                header,
                is_array,
                entries: Vec::new(),
            });
            continue;
        }
        let Some(eq) = split_outside(line, '=')
            .first()
            .map(|k| k.len())
            .filter(|&l| l < line.len())
        else {
            return Err(format!(
                "line {lineno}: expected `key = value`, got {line:?}"
            ));
        };
        let key = parse_key(&line[..eq]).map_err(|e| format!("line {lineno}: {e}"))?;
        let mut raw = line[eq + 1..].trim().to_string();
        // Multi-line arrays: keep reading until the brackets balance.
        while raw.starts_with('[') && bracket_depth(&raw) > 0 {
            match lines.next() {
                Some((_, more)) => {
                    raw.push(' ');
                    raw.push_str(strip_comment(more).trim());
                }
                None => return Err(format!("line {lineno}: unterminated array for {key}")),
            }
        }
        let value = parse_value(&raw).map_err(|e| format!("line {lineno}: {key}: {e}"))?;
        let table = tables.last_mut().unwrap();
        if table.get(&key).is_some() {
            return Err(format!(
                "line {lineno}: duplicate key {key} in [{}]",
                table.header
            ));
        }
        table.entries.push((key, value));
    }
    Ok(Toml { tables })
}

fn bracket_depth(s: &str) -> i32 {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            },
        }
    }
    depth
}

// ---------------------------------------------------------------------------------------
// Dockerfile parser
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Instr {
    op: String,
    args: String,
    line: usize,
}

#[derive(Debug)]
struct Stage {
    from: String,
    instrs: Vec<Instr>,
}

impl Stage {
    fn all<'a>(&'a self, op: &'a str) -> impl Iterator<Item = &'a Instr> + 'a {
        self.instrs.iter().filter(move |i| i.op == op)
    }
    fn last(&self, op: &str) -> Option<&Instr> {
        self.instrs.iter().rev().find(|i| i.op == op)
    }
}

fn parse_dockerfile(text: &str) -> Result<Vec<Stage>, String> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut buf = String::new();
    let mut start_line = 0;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (buf.is_empty() && trimmed.is_empty()) {
            continue; // comment lines are dropped, also inside continuations
        }
        if buf.is_empty() {
            start_line = n + 1;
        }
        if let Some(cont) = trimmed.strip_suffix('\\') {
            buf.push_str(cont);
            buf.push(' ');
            continue;
        }
        buf.push_str(trimmed);
        let instr = std::mem::take(&mut buf);
        let (op, args) = instr
            .split_once(char::is_whitespace)
            .unwrap_or((&instr, ""));
        let (op, args) = (op.to_ascii_uppercase(), args.trim().to_string());
        if op == "FROM" {
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let from = words
                .first()
                .ok_or(format!("line {start_line}: FROM without image"))?
                .to_string();
            stages.push(Stage {
                from,
                instrs: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instrs.push(Instr {
                op,
                args,
                line: start_line,
            });
        } else if op != "ARG" {
            return Err(format!("line {start_line}: {op} before the first FROM"));
        }
    }
    if !buf.is_empty() {
        return Err("Dockerfile ends inside a line continuation".into());
    }
    if stages.is_empty() {
        return Err("no FROM".into());
    }
    Ok(stages)
}

/// `["a", "b"]` → `Some(vec!["a", "b"])`; `None` if it is not a JSON string array.
fn parse_exec_form(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    split_outside(inner, ',')
        .into_iter()
        .map(|p| {
            let p = p.trim();
            let body = p.strip_prefix('"')?.strip_suffix('"')?;
            unquote_basic(body).ok()
        })
        .collect()
}

/// Splits words, honouring "..." and '...' quotes (for ENV / EXPOSE / VOLUME / USER).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => cur.extend(chars.next()),
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == '\\' => {
                cur.extend(chars.next());
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Variables set by all ENV instructions of a stage (`ENV K=V ...` and legacy `ENV K V`).
fn stage_env(stage: &Stage) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for i in stage.all("ENV") {
        let words = shell_words(&i.args);
        if words.first().is_some_and(|w| w.contains('=')) {
            for w in words {
                if let Some((k, v)) = w.split_once('=') {
                    env.push((k.to_string(), v.to_string()));
                }
            }
        } else if let Some((k, rest)) = i.args.split_once(char::is_whitespace) {
            env.push((k.to_string(), rest.trim().to_string()));
        }
    }
    env
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

struct Parsed<'a> {
    fly_name: &'a str,
    private_name: &'a str,
    docker_name: &'a str,
    fly: Toml,
    private: Toml,
    /// Final stage of the Dockerfile (what runs on Fly).
    runtime: Stage,
}

fn tokens(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(str::to_string).collect()
}

/// Value of `--flag N` or `--flag=N`.
fn flag_value(toks: &[String], flag: &str) -> Option<String> {
    let eq = format!("{flag}=");
    toks.iter().enumerate().find_map(|(i, t)| {
        if t == flag {
            toks.get(i + 1).cloned()
        } else {
            t.strip_prefix(&eq).map(str::to_string)
        }
    })
}

/// The process command of a fly file, as tokens.
fn fly_process(doc: &Toml, file: &str, problems: &mut Vec<String>) -> Option<Vec<String>> {
    match doc.get("processes", "app") {
        Some(Value::Str(s)) => Some(tokens(s)),
        Some(v) => {
            problems.push(format!(
                "{file}: [processes] app should be a string, got {}",
                v.show()
            ));
            None
        }
        None => {
            problems.push(format!("{file}: missing [processes] app"));
            None
        }
    }
}

/// ENTRYPOINT + CMD of the final stage, as tokens (exec form required: distroless has no shell).
fn docker_process(p: &Parsed, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let file = p.docker_name;
    let mut joined = Vec::new();
    for op in ["ENTRYPOINT", "CMD"] {
        if let Some(i) = p.runtime.last(op) {
            match parse_exec_form(&i.args) {
                Some(words) => joined.extend(words),
                None => problems.push(format!(
                    "{file}:{}: {op} {} is shell form; the distroless image has no /bin/sh, use JSON exec form",
                    i.line, i.args
                )),
            }
        }
    }
    if let Some(i) = p.runtime.last("ENTRYPOINT") {
        problems.push(format!(
            "{file}:{}: final stage sets ENTRYPOINT {}; Fly's [processes] command replaces only CMD, \
             so put the whole command in CMD",
            i.line, i.args
        ));
    }
    if joined.is_empty() {
        problems.push(format!("{file}: final stage has no CMD/ENTRYPOINT"));
        return None;
    }
    Some(joined)
}

fn check_process(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    let fly = fly_process(&p.fly, p.fly_name, &mut problems);
    let private = fly_process(&p.private, p.private_name, &mut problems);
    let docker = docker_process(p, &mut problems);
    let named = [
        (format!("{} [processes] app", p.fly_name), fly),
        (format!("{} [processes] app", p.private_name), private),
        (format!("{} CMD/ENTRYPOINT", p.docker_name), docker),
    ];
    for (where_, toks) in &named {
        let Some(toks) = toks else { continue };
        if toks.first().map(String::as_str) != Some("moltbot")
            || toks.get(1).map(String::as_str) != Some("gateway")
        {
            problems.push(format!(
                "{where_} = {:?} does not start with `moltbot gateway`",
                toks.join(" ")
            ));
        }
        if !toks.iter().any(|t| t == "--allow-unconfigured") {
            problems.push(format!(
                "{where_} = {:?} lacks --allow-unconfigured",
                toks.join(" ")
            ));
        }
        match flag_value(toks, "--bind").as_deref() {
            Some("lan") => {}
            other => problems.push(format!(
                "{where_} = {:?} needs `--bind lan` (got {other:?}); Fly's proxy cannot reach loopback",
                toks.join(" ")
            )),
        }
    }
    if let (_, Some(reference)) = &named[0] {
        for (where_, toks) in &named[1..] {
            if let Some(toks) = toks {
                if toks != reference {
                    problems.push(format!(
                        "{where_} = {:?} differs from {} = {:?}",
                        toks.join(" "),
                        named[0].0,
                        reference.join(" ")
                    ));
                }
            }
        }
    }
    problems
}

fn check_port(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ports: Vec<(String, Option<String>)> = Vec::new();
    let mut scratch = Vec::new();
    if let Some(t) = fly_process(&p.fly, p.fly_name, &mut scratch) {
        ports.push((
            format!("{} [processes] app --port", p.fly_name),
            flag_value(&t, "--port"),
        ));
    }
    if let Some(t) = fly_process(&p.private, p.private_name, &mut scratch) {
        ports.push((
            format!("{} [processes] app --port", p.private_name),
            flag_value(&t, "--port"),
        ));
    }
    if let Some(t) = docker_process(p, &mut scratch) {
        ports.push((
            format!("{} CMD --port", p.docker_name),
            flag_value(&t, "--port"),
        ));
    }
    ports.push((
        format!("{} [http_service] internal_port", p.fly_name),
        p.fly.get("http_service", "internal_port").map(|v| match v {
            Value::Int(i) => i.to_string(),
            other => other.show(),
        }),
    ));
    let exposes: Vec<String> = p
        .runtime
        .all("EXPOSE")
        .flat_map(|i| shell_words(&i.args))
        .map(|w| w.split('/').next().unwrap_or("").to_string())
        .collect();
    match exposes.as_slice() {
        [one] => ports.push((format!("{} EXPOSE", p.docker_name), Some(one.clone()))),
        [] => ports.push((format!("{} EXPOSE", p.docker_name), None)),
        many => problems.push(format!(
            "{}: final stage EXPOSEs several ports {many:?}; expected one",
            p.docker_name
        )),
    }
    let reference = ports[0].clone();
    for (where_, port) in &ports {
        match port {
            None => problems.push(format!("{where_}: missing")),
            Some(v) if v.parse::<u16>().map_or(true, |n| n == 0) => {
                problems.push(format!("{where_} = {v:?} is not a port number"))
            }
            Some(v) if Some(v) != reference.1.as_ref() => problems.push(format!(
                "{where_} = {v} but {} = {}",
                reference.0,
                reference.1.as_deref().unwrap_or("<missing>")
            )),
            _ => {}
        }
    }
    problems
}

fn check_state_dir(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, doc) in [(p.fly_name, &p.fly), (p.private_name, &p.private)] {
        let env_dir = doc.get_str("env", "CLAWDBOT_STATE_DIR");
        match env_dir {
            Some(STATE_DIR) => {}
            Some(other) => problems.push(format!(
                "{file}: [env] CLAWDBOT_STATE_DIR = {other:?}, expected {STATE_DIR:?}"
            )),
            None => problems.push(format!(
                "{file}: [env] CLAWDBOT_STATE_DIR is missing (expected {STATE_DIR:?})"
            )),
        }
        let mounts = doc.tables("mounts");
        if mounts.is_empty() {
            problems.push(format!(
                "{file}: no [mounts] section; state would live on the ephemeral root fs"
            ));
        }
        for m in mounts {
            match m.get("destination").and_then(Value::as_str) {
                Some(dest) if Some(dest) == env_dir => {}
                Some(dest) => problems.push(format!(
                    "{file}: [mounts] destination = {dest:?} but [env] CLAWDBOT_STATE_DIR = {:?}",
                    env_dir.unwrap_or("<missing>")
                )),
                None => problems.push(format!("{file}: [mounts] has no destination")),
            }
            if m.get("source")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                problems.push(format!("{file}: [mounts] has no source volume name"));
            }
        }
    }
    let env = stage_env(&p.runtime);
    match env.iter().rev().find(|(k, _)| k == "CLAWDBOT_STATE_DIR") {
        Some((_, v)) if v == STATE_DIR => {}
        Some((_, v)) => problems.push(format!(
            "{}: final stage ENV CLAWDBOT_STATE_DIR={v} but fly files use {STATE_DIR}",
            p.docker_name
        )),
        None => problems.push(format!(
            "{}: final stage has no ENV CLAWDBOT_STATE_DIR (expected {STATE_DIR})",
            p.docker_name
        )),
    }
    let volumes: Vec<String> = p
        .runtime
        .all("VOLUME")
        .flat_map(|i| parse_exec_form(&i.args).unwrap_or_else(|| shell_words(&i.args)))
        .collect();
    if !volumes.iter().any(|v| v == STATE_DIR) {
        problems.push(format!(
            "{}: final stage VOLUME {volumes:?} does not include {STATE_DIR}",
            p.docker_name
        ));
    }
    // Both fly files must mount the same volume.
    let src = |d: &Toml| {
        d.table("mounts")
            .and_then(|m| m.get("source"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if src(&p.fly) != src(&p.private) {
        problems.push(format!(
            "[mounts] source differs: {} = {:?}, {} = {:?}",
            p.fly_name,
            src(&p.fly),
            p.private_name,
            src(&p.private)
        ));
    }
    problems
}

fn check_private_has_no_public_services(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    for section in ["http_service", "services"] {
        if p.private.has_table_tree(section) {
            problems.push(format!(
                "{}: has a [{section}] section; the private deployment must not allocate public ingress",
                p.private_name
            ));
        }
    }
    if !p.fly.has_table_tree("http_service") {
        problems.push(format!(
            "{}: missing [http_service] (the public variant should have one)",
            p.fly_name
        ));
    }
    problems
}

fn check_app_and_build(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    let fly_app = p.fly.get_str("", "app");
    let private_app = p.private.get_str("", "app");
    if fly_app.is_none_or(str::is_empty) {
        problems.push(format!("{}: missing app name", p.fly_name));
    }
    if fly_app != private_app {
        problems.push(format!(
            "app names differ: {} app = {fly_app:?}, {} app = {private_app:?}",
            p.fly_name, p.private_name
        ));
    }
    for (file, doc) in [(p.fly_name, &p.fly), (p.private_name, &p.private)] {
        match doc.get_str("build", "dockerfile") {
            Some(d) if d == p.docker_name => {}
            other => problems.push(format!(
                "{file}: [build] dockerfile = {other:?}, expected {:?}",
                p.docker_name
            )),
        }
    }
    problems
}

/// Fly memory values: "512mb", "1gb", "512" or a bare integer (MB); or `memory_mb = 512`.
fn vm_memory_mb(vm: &Table) -> Result<u64, String> {
    let parse_str = |s: &str| -> Option<u64> {
        let l = s.trim().to_ascii_lowercase();
        if let Some(n) = l.strip_suffix("gb") {
            n.trim().parse::<u64>().ok().map(|g| g * 1024)
        } else {
            l.strip_suffix("mb").unwrap_or(&l).trim().parse().ok()
        }
    };
    match (vm.get("memory"), vm.get("memory_mb")) {
        (Some(Value::Int(i)), _) | (None, Some(Value::Int(i))) if *i > 0 => Ok(*i as u64),
        (Some(Value::Str(s)), _) => parse_str(s).ok_or(format!("unreadable memory {s:?}")),
        (Some(v), _) | (None, Some(v)) => Err(format!("unreadable memory {}", v.show())),
        (None, None) => Err("no memory / memory_mb".into()),
    }
}

fn check_vm(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, doc) in [(p.fly_name, &p.fly), (p.private_name, &p.private)] {
        let vms = doc.tables("vm");
        if vms.is_empty() {
            problems.push(format!("{file}: no [[vm]] section"));
        }
        for vm in vms {
            if !vm.is_array {
                problems.push(format!("{file}: use [[vm]] (array of tables), not [vm]"));
            }
            match vm_memory_mb(vm) {
                Ok(mb) if mb <= MAX_VM_MB => {}
                Ok(mb) => problems.push(format!(
                    "{file}: [[vm]] memory = {mb} MB, more than {MAX_VM_MB} MB"
                )),
                Err(e) => problems.push(format!("{file}: [[vm]] {e}")),
            }
        }
    }
    problems
}

fn check_non_root(p: &Parsed) -> Vec<String> {
    let file = p.docker_name;
    match p.runtime.last("USER") {
        None => vec![format!(
            "{file}: final stage ({}) has no USER; it would run as root",
            p.runtime.from
        )],
        Some(i) => {
            let user = i.args.split(':').next().unwrap_or("").trim();
            if user.is_empty() || user == "root" || user == "0" {
                vec![format!(
                    "{file}:{}: final stage runs as USER {:?} (root)",
                    i.line, i.args
                )]
            } else {
                Vec::new()
            }
        }
    }
}

/// Parses the three files and runs every check; returns all problems (empty = consistent).
fn check_all(fly_src: &str, private_src: &str, docker_src: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let fly = parse_toml(fly_src)
        .map_err(|e| problems.push(format!("{FLY}: {e}")))
        .ok();
    let private = parse_toml(private_src)
        .map_err(|e| problems.push(format!("{PRIVATE}: {e}")))
        .ok();
    let stages = parse_dockerfile(docker_src)
        .map_err(|e| problems.push(format!("{DOCKERFILE}: {e}")))
        .ok();
    let (Some(fly), Some(private), Some(mut stages)) = (fly, private, stages) else {
        return problems;
    };
    if stages.len() < 2 {
        problems.push(format!(
            "{DOCKERFILE}: expected a multi-stage build (builder + runtime)"
        ));
    }
    let runtime = stages.pop().unwrap();
    let parsed = Parsed {
        fly_name: FLY,
        private_name: PRIVATE,
        docker_name: DOCKERFILE,
        fly,
        private,
        runtime,
    };
    for check in [
        check_process,
        check_port,
        check_state_dir,
        check_private_has_no_public_services,
        check_app_and_build,
        check_vm,
        check_non_root,
    ] {
        problems.extend(check(&parsed));
    }
    problems
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

struct Sources {
    fly: String,
    private: String,
    docker: String,
}

fn sources() -> Sources {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| {
        fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
    };
    Sources {
        fly: read(FLY),
        private: read(PRIVATE),
        docker: read(DOCKERFILE),
    }
}

fn assert_clean(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "deployment files disagree:\n  - {}",
        problems.join("\n  - ")
    );
}

/// Runs one check on the real files.
fn run_one(check: fn(&Parsed) -> Vec<String>) -> Vec<String> {
    let s = sources();
    let fly = parse_toml(&s.fly).unwrap_or_else(|e| panic!("{FLY}: {e}"));
    let private = parse_toml(&s.private).unwrap_or_else(|e| panic!("{PRIVATE}: {e}"));
    let runtime = parse_dockerfile(&s.docker)
        .unwrap_or_else(|e| panic!("{DOCKERFILE}: {e}"))
        .pop()
        .unwrap();
    check(&Parsed {
        fly_name: FLY,
        private_name: PRIVATE,
        docker_name: DOCKERFILE,
        fly,
        private,
        runtime,
    })
}

#[test]
fn deploy_files_are_consistent() {
    let s = sources();
    assert_clean(check_all(&s.fly, &s.private, &s.docker));
}

#[test]
fn process_command_is_identical_everywhere() {
    assert_clean(run_one(check_process));
}

#[test]
fn port_agrees_everywhere() {
    assert_clean(run_one(check_port));
}

#[test]
fn state_dir_is_the_volume_everywhere() {
    assert_clean(run_one(check_state_dir));
}

#[test]
fn private_variant_has_no_public_services() {
    assert_clean(run_one(check_private_has_no_public_services));
}

#[test]
fn app_names_and_dockerfile_match() {
    assert_clean(run_one(check_app_and_build));
}

#[test]
fn vm_memory_is_small() {
    assert_clean(run_one(check_vm));
}

#[test]
fn image_runs_as_non_root() {
    assert_clean(run_one(check_non_root));
}

/// Replaces exactly one occurrence (the edit must hit, or the negative test proves nothing).
fn edit(src: &str, from: &str, to: &str) -> String {
    assert!(src.contains(from), "test setup: {from:?} not found");
    src.replacen(from, to, 1)
}

fn assert_reported(problems: &[String], needles: &[&str]) {
    assert!(!problems.is_empty(), "checker passed an inconsistent copy");
    for needle in needles {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}; got:\n  - {}",
            problems.join("\n  - ")
        );
    }
}

#[test]
fn rejects_port_3001_in_fly_toml() {
    let s = sources();
    let fly = edit(&s.fly, "--port 3000", "--port 3001");
    let problems = check_all(&fly, &s.private, &s.docker);
    assert_reported(&problems, &["3001", FLY]);
}

#[test]
fn rejects_port_mismatch_in_an_inline_copy() {
    // Self-contained: does not depend on the real files at all.
    let fly = r#"
app = "x"
[build]
  dockerfile = "Dockerfile.slim"
[env]
  CLAWDBOT_STATE_DIR = "/data"
[processes]
  app = "moltbot gateway --allow-unconfigured --port 3001 --bind lan"
[http_service]
  internal_port = 3000
  processes = ["app"]
[[vm]]
  memory = "512mb"
[mounts]
  source = "v"
  destination = "/data"
"#;
    let private = fly.split("[http_service]").next().unwrap().to_string()
        + "[[vm]]\n  memory = \"512mb\"\n[mounts]\n  source = \"v\"\n  destination = \"/data\"\n";
    let docker = "FROM rust AS builder\nRUN cargo build\nFROM gcr.io/distroless/cc-debian12:nonroot\n\
                  ENV CLAWDBOT_STATE_DIR=/data\nVOLUME /data\nUSER nonroot\nEXPOSE 3000\n\
                  CMD [\"moltbot\", \"gateway\", \"--allow-unconfigured\", \"--port\", \"3001\", \"--bind\", \"lan\"]\n";
    let problems = check_all(fly, &private, docker);
    assert_reported(&problems, &["internal_port = 3000", "EXPOSE = 3000"]);
    // Fixing the two 3000s makes it clean, so the checker is not just always failing.
    let fixed_fly = fly.replace("internal_port = 3000", "internal_port = 3001");
    let fixed_docker = docker.replace("EXPOSE 3000", "EXPOSE 3001");
    assert_clean(check_all(&fixed_fly, &private, &fixed_docker));
}

#[test]
fn rejects_command_drift_between_files() {
    let s = sources();
    let private = edit(&s.private, "--bind lan", "--bind loopback");
    assert_reported(
        &check_all(&s.fly, &private, &s.docker),
        &[PRIVATE, "--bind lan", "differs from"],
    );
}

#[test]
fn rejects_public_service_in_private_toml() {
    let s = sources();
    let private = format!("{}\n[http_service]\n  internal_port = 3000\n", s.private);
    assert_reported(
        &check_all(&s.fly, &private, &s.docker),
        &[PRIVATE, "[http_service]"],
    );
    let private = format!("{}\n[[services]]\n  internal_port = 3000\n", s.private);
    assert_reported(
        &check_all(&s.fly, &private, &s.docker),
        &[PRIVATE, "[services]"],
    );
}

#[test]
fn rejects_state_dir_mismatch() {
    let s = sources();
    let docker = edit(
        &s.docker,
        "ENV CLAWDBOT_STATE_DIR=/data",
        "ENV CLAWDBOT_STATE_DIR=/state",
    );
    assert_reported(
        &check_all(&s.fly, &s.private, &docker),
        &[DOCKERFILE, "/state"],
    );
    let fly = edit(
        &s.fly,
        "destination = \"/data\"",
        "destination = \"/mnt/data\"",
    );
    assert_reported(&check_all(&fly, &s.private, &s.docker), &[FLY, "/mnt/data"]);
}

#[test]
fn rejects_big_vm_root_user_and_app_mismatch() {
    let s = sources();
    let fly = edit(&s.fly, "memory = \"512mb\"", "memory = \"2048mb\"");
    assert_reported(&check_all(&fly, &s.private, &s.docker), &[FLY, "2048 MB"]);
    let docker = edit(&s.docker, "USER nonroot", "USER root");
    assert_reported(
        &check_all(&s.fly, &s.private, &docker),
        &[DOCKERFILE, "root"],
    );
    let private = edit(&s.private, "app = \"my-moltbot\"", "app = \"other-app\"");
    assert_reported(&check_all(&s.fly, &private, &s.docker), &["other-app"]);
}

#[test]
fn rejects_entrypoint_split() {
    let s = sources();
    let docker = edit(
        &s.docker,
        "CMD [\"moltbot\", \"gateway\",",
        "ENTRYPOINT [\"moltbot\"]\nCMD [\"gateway\",",
    );
    assert_reported(&check_all(&s.fly, &s.private, &docker), &["ENTRYPOINT"]);
}

#[test]
fn toml_parser_basics() {
    let doc = parse_toml(
        "a = 'x' # c\n[t]\n  s = \"q#\\\"z\"\n  n = 1_000\n  b = true\n  arr = [\"a\", 'b',\n   \"c\"]\n[[t.sub]]\n  k = 1\n",
    )
    .unwrap();
    assert_eq!(doc.get_str("", "a"), Some("x"));
    assert_eq!(doc.get_str("t", "s"), Some("q#\"z"));
    assert_eq!(doc.get("t", "n"), Some(&Value::Int(1000)));
    assert_eq!(doc.get("t", "b"), Some(&Value::Bool(true)));
    assert_eq!(
        doc.get("t", "arr"),
        Some(&Value::Array(vec![
            Value::Str("a".into()),
            Value::Str("b".into()),
            Value::Str("c".into())
        ]))
    );
    assert!(doc.has_table_tree("t") && doc.table("t.sub").unwrap().is_array);
    assert!(parse_toml("[x]\na = 1\na = 2\n").is_err());
    assert!(parse_toml("just words\n").is_err());
}
