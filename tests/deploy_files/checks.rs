//! The consistency checker: what `fly.toml`, `fly.private.toml` and `Dockerfile.slim`
//! must agree on (command, port, state dir, ingress, app name, VM size, user).
//! Every check returns all problems it finds, each naming the file and the values.

use crate::dockerfile::{parse_dockerfile, parse_exec_form, shell_words, stage_env, Stage};
use crate::toml::{parse_toml, Table, Toml, Value};

pub const FLY: &str = "fly.toml";
pub const PRIVATE: &str = "fly.private.toml";
pub const DOCKERFILE: &str = "Dockerfile.slim";

/// The state directory the gateway must use on Fly (the volume mount point).
const STATE_DIR: &str = "/data";
/// Largest VM we want to pay for; the Rust gateway needs 256–512 MB.
const MAX_VM_MB: u64 = 512;

/// The three parsed files, as every check sees them.
pub struct Parsed<'a> {
    fly_name: &'a str,
    private_name: &'a str,
    docker_name: &'a str,
    fly: Toml,
    private: Toml,
    /// Final stage of the Dockerfile (what runs on Fly).
    runtime: Stage,
}

impl Parsed<'static> {
    /// The real file names with their parsed contents.
    pub fn new(fly: Toml, private: Toml, runtime: Stage) -> Self {
        Parsed {
            fly_name: FLY,
            private_name: PRIVATE,
            docker_name: DOCKERFILE,
            fly,
            private,
            runtime,
        }
    }
}

impl Parsed<'_> {
    /// Both fly files, with their names.
    fn fly_files(&self) -> [(&str, &Toml); 2] {
        [
            (self.fly_name, &self.fly),
            (self.private_name, &self.private),
        ]
    }
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

pub fn check_process(p: &Parsed) -> Vec<String> {
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

pub fn check_port(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ports: Vec<(String, Option<String>)> = Vec::new();
    // Missing or malformed commands are check_process's to report.
    let mut scratch = Vec::new();
    let commands = [
        (
            format!("{} [processes] app --port", p.fly_name),
            fly_process(&p.fly, p.fly_name, &mut scratch),
        ),
        (
            format!("{} [processes] app --port", p.private_name),
            fly_process(&p.private, p.private_name, &mut scratch),
        ),
        (
            format!("{} CMD --port", p.docker_name),
            docker_process(p, &mut scratch),
        ),
    ];
    for (where_, toks) in commands {
        if let Some(t) = toks {
            ports.push((where_, flag_value(&t, "--port")));
        }
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

pub fn check_state_dir(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, doc) in p.fly_files() {
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

pub fn check_private_has_no_public_services(p: &Parsed) -> Vec<String> {
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

pub fn check_app_and_build(p: &Parsed) -> Vec<String> {
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
    for (file, doc) in p.fly_files() {
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

pub fn check_vm(p: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, doc) in p.fly_files() {
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

pub fn check_non_root(p: &Parsed) -> Vec<String> {
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
pub fn check_all(fly_src: &str, private_src: &str, docker_src: &str) -> Vec<String> {
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
    let parsed = Parsed::new(fly, private, stages.pop().unwrap());
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
