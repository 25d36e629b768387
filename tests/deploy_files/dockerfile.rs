//! The tiny Dockerfile parser for `Dockerfile.slim` (std only): stages, instructions,
//! exec-form arrays, shell words and the ENV of a stage.

use crate::toml::{split_outside, unquote_basic};

#[derive(Debug)]
pub struct Instr {
    op: String,
    pub args: String,
    pub line: usize,
}

#[derive(Debug)]
pub struct Stage {
    pub from: String,
    instrs: Vec<Instr>,
}

impl Stage {
    pub fn all<'a>(&'a self, op: &'a str) -> impl Iterator<Item = &'a Instr> + 'a {
        self.instrs.iter().filter(move |i| i.op == op)
    }
    pub fn last(&self, op: &str) -> Option<&Instr> {
        self.instrs.iter().rev().find(|i| i.op == op)
    }
}

/// Splits a Dockerfile into stages (one per FROM), joining `\` continuations.
pub fn parse_dockerfile(text: &str) -> Result<Vec<Stage>, String> {
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
pub fn parse_exec_form(s: &str) -> Option<Vec<String>> {
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
pub fn shell_words(s: &str) -> Vec<String> {
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
pub fn stage_env(stage: &Stage) -> Vec<(String, String)> {
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
