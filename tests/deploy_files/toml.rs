//! The tiny TOML-ish line parser for `fly.toml` / `fly.private.toml` (std only): tables,
//! `[[arrays of tables]]`, strings, integers, booleans and (multi-line) arrays.

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<Value>),
    /// Anything else (floats, dates, inline tables), kept as written.
    Other(String),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn show(&self) -> String {
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
pub struct Table {
    /// Dotted header without brackets; "" for the root table.
    pub header: String,
    pub is_array: bool,
    entries: Vec<(String, Value)>,
}

#[derive(Debug)]
pub struct Toml {
    tables: Vec<Table>,
}

impl Toml {
    /// First (or only) table with this exact header, `[x]` or `[[x]]`.
    pub fn table(&self, header: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.header == header)
    }
    pub fn tables(&self, header: &str) -> Vec<&Table> {
        self.tables.iter().filter(|t| t.header == header).collect()
    }
    /// `[x]`, `[[x]]` or any `[x.sub]` / `[[x.sub]]`.
    pub fn has_table_tree(&self, header: &str) -> bool {
        let prefix = format!("{header}.");
        self.tables
            .iter()
            .any(|t| t.header == header || t.header.starts_with(&prefix))
    }
    pub fn get(&self, header: &str, key: &str) -> Option<&Value> {
        self.table(header)?.get(key)
    }
    pub fn get_str(&self, header: &str, key: &str) -> Option<&str> {
        self.get(header, key)?.as_str()
    }
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Tracks whether a left-to-right scan is inside "..." (with `\` escapes) or '...'.
#[derive(Default)]
struct Quotes {
    quote: Option<char>,
    escaped: bool,
}

impl Quotes {
    /// Feeds the next character; true if it is outside quotes and not itself a quote mark.
    fn outside(&mut self, c: char) -> bool {
        match self.quote {
            Some('"') if self.escaped => self.escaped = false,
            Some('"') if c == '\\' => self.escaped = true,
            Some(q) if c == q => self.quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => self.quote = Some(c),
            None => return true,
        }
        false
    }
}

/// Removes a trailing `# comment` that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quotes = Quotes::default();
    for (i, c) in line.char_indices() {
        if quotes.outside(c) && c == '#' {
            return &line[..i];
        }
    }
    line
}

/// Splits at `sep` characters that are outside quotes and brackets.
pub fn split_outside(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    let mut quotes = Quotes::default();
    for (i, c) in s.char_indices() {
        if !quotes.outside(c) {
            continue;
        }
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            _ if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Resolves the escapes of a basic (double-quoted) string body.
pub fn unquote_basic(body: &str) -> Result<String, String> {
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

/// Parses the subset of TOML the fly files use (tables, arrays of tables, scalars, arrays).
pub fn parse_toml(text: &str) -> Result<Toml, String> {
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
