//! JSON5 for config files: parsing (plus a key → line map for diagnostics) and pretty output.
//!
//! The grammar, error texts and error positions follow the npm `json5` 2.2.3 package that upstream
//! Moltbot uses, so a broken config reports the same message here as there. Positions mirror its
//! quirks on purpose: lines advance only at `\n`, columns count UTF-16 code units, and a bad raw
//! newline is reported at column 0 of the next line. Output (`json5_write.rs`) matches
//! `JSON.stringify(value, null, 2)`.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;

// The writer lives beside this file so that this module, and only it, needs declaring.
#[path = "json5_write.rs"]
mod write;
pub use write::{push_compact_object, push_pretty_member, to_compact_string, to_pretty_string};

/// Deepest nesting of objects/arrays accepted; a config never needs more, and it bounds recursion.
const MAX_DEPTH: usize = 128;

/// A parsed document: the value, plus the 1-based line where each object key (and array element) starts.
#[derive(Debug)]
pub struct Parsed {
    pub value: Value,
    pub lines: HashMap<String, u32>,
}

/// A syntax error; `message` is the text between "JSON5: " and " at line:column".
#[derive(Debug, Clone, PartialEq)]
pub struct Json5Error {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for Json5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = (self.line, self.column);
        write!(f, "JSON5: {} at {line}:{column}", self.message)
    }
}

impl std::error::Error for Json5Error {}

/// Parses a JSON5 document.
///
/// `Infinity`, `-Infinity` and `NaN` become `null`: serde_json cannot hold them, and
/// `JSON.stringify` writes them as `null` too. Lone surrogate escapes (which JS strings can hold
/// but Rust strings cannot) become U+FFFD. Duplicate keys: the last value wins and keeps the first
/// key's place, as in `JSON.parse`; its line is that of the last occurrence.
pub fn parse(text: &str) -> Result<Parsed, Json5Error> {
    let src = text.chars().collect();
    let mut p = Parser {
        src,
        line: 1,
        ..Parser::default()
    };
    p.skip_space()?;
    p.lines.insert(String::new(), p.line);
    let value = p.value("")?;
    p.skip_space()?;
    if p.peek().is_some() {
        return Err(p.invalid());
    }
    let lines = p.lines;
    Ok(Parsed { value, lines })
}

#[derive(Default)]
struct Parser {
    src: Vec<char>,
    pos: usize,
    /// 1-based line of the next char.
    line: u32,
    /// json5's column: UTF-16 units read so far on this line, so the last char read is at `column`.
    column: u32,
    depth: usize,
    lines: HashMap<String, u32>,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos + ahead).copied()
    }

    /// Consumes one char, moving the position exactly as json5's `read()` does (even past the end).
    fn read(&mut self) -> Option<char> {
        let c = self.peek();
        if c == Some('\n') {
            self.line += 1;
            self.column = 0;
        } else {
            let width = c.map_or(1, |c| c.len_utf16() as u32);
            self.column = self.column.saturating_add(width);
        }
        self.pos += usize::from(c.is_some());
        c
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.read();
        }
        found
    }

    fn error(&self, message: &str) -> Json5Error {
        let message = message.to_string();
        Json5Error {
            line: self.line,
            column: self.column,
            message,
        }
    }

    /// Reports a char that was just read (None: the end of input) as unexpected.
    fn unexpected(&self, c: Option<char>) -> Json5Error {
        match c {
            None => self.error("invalid end of input"),
            Some(c) => self.error(&format!("invalid character '{}'", format_char(c))),
        }
    }

    /// json5's `invalidChar(read())`: consume the offending char so the position points at it.
    fn invalid(&mut self) -> Json5Error {
        let c = self.read();
        self.unexpected(c)
    }

    /// Skips whitespace and comments; json5 allows them before and after every token.
    fn skip_space(&mut self) -> Result<(), Json5Error> {
        while let Some(c) = self.peek() {
            if self.eat('/') {
                self.comment()?;
            } else if is_space(c) {
                self.read();
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Skips a comment whose leading `/` has been read.
    fn comment(&mut self) -> Result<(), Json5Error> {
        if self.eat('/') {
            // The line terminator itself is left for `skip_space`.
            while !matches!(
                self.peek(),
                None | Some('\n' | '\r' | '\u{2028}' | '\u{2029}')
            ) {
                self.read();
            }
            return Ok(());
        }
        if !self.eat('*') {
            return Err(self.invalid());
        }
        while !(self.peek() == Some('*') && self.peek_at(1) == Some('/')) {
            if self.peek().is_none() {
                return Err(self.invalid());
            }
            self.read();
        }
        self.read();
        self.read();
        Ok(())
    }

    /// Parses one value; `path` names it for the line map of its members.
    fn value(&mut self, path: &str) -> Result<Value, Json5Error> {
        self.skip_space()?;
        match self.peek() {
            Some('{') => self.object(path),
            Some('[') => self.array(path),
            Some('"' | '\'') => Ok(Value::String(self.string()?)),
            Some('n') => self.literal("null", Value::Null),
            Some('t') => self.literal("true", Value::Bool(true)),
            Some('f') => self.literal("false", Value::Bool(false)),
            _ => self.number(),
        }
    }

    /// Matches a keyword char by char; json5 reports the first mismatching char.
    fn literal(&mut self, word: &str, value: Value) -> Result<Value, Json5Error> {
        for expected in word.chars() {
            if !self.eat(expected) {
                return Err(self.invalid());
            }
        }
        Ok(value)
    }

    /// Reads an opening bracket and enforces the depth limit.
    fn open(&mut self) -> Result<(), Json5Error> {
        self.read();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Consumes the `,` or closing bracket after a member; true when the container ended.
    fn after_member(&mut self, close: char) -> Result<bool, Json5Error> {
        self.skip_space()?;
        if self.eat(',') {
            self.skip_space()?;
        } else if self.peek() != Some(close) {
            return Err(self.invalid());
        }
        Ok(self.peek() == Some(close))
    }

    /// Consumes the (peeked) closing bracket of the innermost container.
    fn close(&mut self) {
        self.read();
        self.depth -= 1;
    }

    fn object(&mut self, path: &str) -> Result<Value, Json5Error> {
        self.open()?;
        let mut map = Map::new();
        self.skip_space()?;
        let mut done = self.peek() == Some('}');
        while !done {
            let line = self.line;
            let key = match self.peek() {
                Some('"' | '\'') => self.string()?,
                _ => self.identifier()?,
            };
            self.skip_space()?;
            if !self.eat(':') {
                return Err(self.invalid());
            }
            let child = join(path, &key);
            if map.contains_key(&key) {
                // The earlier value is dropped, so its members' lines must not linger.
                let prefix = format!("{child}.");
                self.lines.retain(|k, _| !k.starts_with(&prefix));
            }
            self.lines.insert(child.clone(), line);
            let value = self.value(&child)?;
            map.insert(key, value);
            done = self.after_member('}')?;
        }
        self.close();
        Ok(Value::Object(map))
    }

    fn array(&mut self, path: &str) -> Result<Value, Json5Error> {
        self.open()?;
        let mut items = Vec::new();
        self.skip_space()?;
        let mut done = self.peek() == Some(']');
        while !done {
            let child = join(path, &items.len().to_string());
            self.lines.insert(child.clone(), self.line);
            items.push(self.value(&child)?);
            done = self.after_member(']')?;
        }
        self.close();
        Ok(Value::Array(items))
    }

    /// Lexes a quoted string starting at its (peeked) quote.
    ///
    /// The text is gathered as UTF-16 units, as JS holds it, so that a surrogate pair written as
    /// two `\uXXXX` escapes joins up; a lone surrogate (unrepresentable in Rust) becomes U+FFFD.
    fn string(&mut self) -> Result<String, Json5Error> {
        let quote = self.read();
        let mut units = Vec::new();
        loop {
            match self.read() {
                // Raw line breaks are not allowed inside strings.
                c @ (None | Some('\n' | '\r')) => return Err(self.unexpected(c)),
                Some('\\') => self.escape(&mut units)?,
                c if c == quote => return Ok(String::from_utf16_lossy(&units)),
                Some(c) => push_char(&mut units, c),
            }
        }
    }

    /// Decodes the escape after a backslash into `units`.
    fn escape(&mut self, units: &mut Vec<u16>) -> Result<(), Json5Error> {
        let c = self.read();
        match c {
            // `\0` must not start an octal-looking sequence.
            Some('0') if self.peek().is_some_and(|d| d.is_ascii_digit()) => {
                return Err(self.invalid())
            }
            Some('x') => units.push(self.hex_code(2)?),
            Some('u') => units.push(self.hex_code(4)?),
            // Line continuations produce nothing.
            Some('\n' | '\u{2028}' | '\u{2029}') => {}
            Some('\r') => {
                self.eat('\n');
            }
            Some('1'..='9') | None => return Err(self.unexpected(c)),
            Some(other) => push_char(units, letter_escape(other).unwrap_or(other)),
        }
        Ok(())
    }

    /// Reads `count` (at most 4) hex digits as one number.
    fn hex_code(&mut self, count: usize) -> Result<u16, Json5Error> {
        let mut code = 0;
        for _ in 0..count {
            let Some(digit) = self.peek().and_then(|c| c.to_digit(16)) else {
                return Err(self.invalid());
            };
            self.read();
            code = code * 16 + digit as u16;
        }
        Ok(code)
    }

    /// Lexes an unquoted key: an ECMAScript IdentifierName, possibly with `\uXXXX` escapes.
    fn identifier(&mut self) -> Result<String, Json5Error> {
        let mut name = String::new();
        loop {
            let start = name.is_empty();
            match self.peek() {
                Some('\\') => {
                    self.read();
                    name.push(self.identifier_escape(start)?);
                }
                Some(c) if is_identifier_char(c, start) => name.extend(self.read()),
                _ if start => return Err(self.invalid()),
                _ => return Ok(name),
            }
        }
    }

    fn identifier_escape(&mut self, start: bool) -> Result<char, Json5Error> {
        if !self.eat('u') {
            return Err(self.invalid());
        }
        match char::from_u32(self.hex_code(4)?.into()) {
            Some(c) if is_identifier_char(c, start) => Ok(c),
            _ => {
                let mut error = self.error("invalid identifier character");
                // json5 points back at the backslash of the 6-char escape.
                error.column = error.column.saturating_sub(5);
                Err(error)
            }
        }
    }

    /// Lexes a number (or ±Infinity/NaN) following json5's states: sign, `0x` hex, leading or
    /// trailing decimal point, exponent.
    fn number(&mut self) -> Result<Value, Json5Error> {
        let negative = self.eat('-');
        if !negative {
            self.eat('+');
        }
        match self.peek() {
            Some('I') => return self.literal("Infinity", Value::Null),
            Some('N') => return self.literal("NaN", Value::Null),
            Some('0') if matches!(self.peek_at(1), Some('x' | 'X')) => return self.hex(negative),
            Some(c) if c == '.' || c.is_ascii_digit() => {}
            _ => return Err(self.invalid()),
        }
        let start = self.pos;
        // A leading zero stands alone: in "01" the number ends before the "1".
        if !self.eat('0') {
            self.skip_digits(false, 10)?;
        }
        let mut integral = true;
        if self.eat('.') {
            integral = false;
            // A leading point needs a digit after it (".5"); a trailing one does not ("5.").
            self.skip_digits(self.pos - 1 == start, 10)?;
        }
        if self.eat('e') || self.eat('E') {
            integral = false;
            let _optional_sign = self.eat('+') || self.eat('-');
            self.skip_digits(true, 10)?;
        }
        let text: String = self.src[start..self.pos].iter().collect();
        Ok(decimal_value(&text, negative, integral))
    }

    fn hex(&mut self, negative: bool) -> Result<Value, Json5Error> {
        self.read();
        self.read();
        let start = self.pos;
        self.skip_digits(true, 16)?;
        let text: String = self.src[start..self.pos].iter().collect();
        Ok(integer_value(&text, 16, negative).unwrap_or_else(|| {
            // Beyond u64: JS keeps it as a (rounded) double.
            let digits = text.chars().filter_map(|c| c.to_digit(16));
            let magnitude = digits.fold(0.0, |acc, d| acc * 16.0 + f64::from(d));
            float_value(if negative { -magnitude } else { magnitude })
        }))
    }

    /// Skips digits of `radix`; with `required`, finding none is an error at the char found.
    fn skip_digits(&mut self, required: bool, radix: u32) -> Result<(), Json5Error> {
        if required && !self.peek().is_some_and(|c| c.is_digit(radix)) {
            return Err(self.invalid());
        }
        while self.peek().is_some_and(|c| c.is_digit(radix)) {
            self.read();
        }
        Ok(())
    }
}

/// The line-map path of a member: keys joined by ".", array indices as numbers.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Single-letter escapes and the chars they stand for; json5 also writes these in its messages.
#[rustfmt::skip]
const LETTER_ESCAPES: [(char, char); 7] = [
    ('b', '\u{8}'), ('f', '\u{c}'), ('n', '\n'), ('r', '\r'), ('t', '\t'), ('v', '\u{b}'),
    ('0', '\0'),
];

fn push_char(units: &mut Vec<u16>, c: char) {
    units.extend_from_slice(c.encode_utf16(&mut [0; 2]));
}

fn letter_escape(letter: char) -> Option<char> {
    LETTER_ESCAPES
        .iter()
        .find(|(l, _)| *l == letter)
        .map(|(_, c)| *c)
}

/// JSON5 whitespace besides `\t \n \v \f \r` and space: NBSP, BOM, U+2028/2029 and the other Zs.
const SPACES: &str = "\u{a0}\u{feff}\u{2028}\u{2029}\u{1680}\u{202f}\u{205f}\u{3000}";

fn is_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | ' ' | '\u{2000}'..='\u{200a}') || SPACES.contains(c)
}

/// Non-alphanumeric ID_Continue chars: ZWNJ, ZWJ and connector punctuation (Pc).
const JOINERS: &str =
    "\u{200c}\u{200d}\u{203f}\u{2040}\u{2054}\u{fe33}\u{fe34}\u{fe4d}\u{fe4e}\u{fe4f}\u{ff3f}";

/// The common combining-mark and variation-selector blocks (Mn that std's Alphabetic misses).
#[rustfmt::skip]
const MARKS: [RangeInclusive<char>; 7] = [
    '\u{300}'..='\u{36f}', '\u{1ab0}'..='\u{1aff}', '\u{1dc0}'..='\u{1dff}',
    '\u{20d0}'..='\u{20ff}', '\u{fe00}'..='\u{fe0f}', '\u{fe20}'..='\u{fe2f}',
    '\u{e0100}'..='\u{e01ef}',
];

/// ID_Start / ID_Continue. std has no ID_* tables, so non-ASCII uses Alphabetic (for start) and
/// alphanumeric plus common marks and joiners (for continue). This accepts a few chars json5
/// rejects (e.g. `²`, letters newer than its Unicode tables) and misses rare script marks.
fn is_identifier_char(c: char, start: bool) -> bool {
    match c {
        '$' | '_' => true,
        _ if c.is_ascii() => c.is_ascii_alphabetic() || (!start && c.is_ascii_digit()),
        _ if start => c.is_alphabetic(),
        _ => c.is_alphanumeric() || JOINERS.contains(c) || MARKS.iter().any(|r| r.contains(&c)),
    }
}

/// A decimal literal's value: integers that fit i64/u64 stay exact, the rest become f64.
fn decimal_value(text: &str, negative: bool, integral: bool) -> Value {
    let exact = if integral {
        integer_value(text, 10, negative)
    } else {
        None
    };
    exact.unwrap_or_else(|| {
        // The lexer only admits forms Rust's float parser accepts ("5.", ".5", "1e5").
        let magnitude: f64 = text.parse().unwrap_or(f64::NAN);
        float_value(if negative { -magnitude } else { magnitude })
    })
}

/// `digits` in `radix` as an exact integer, if it fits. "-0" gives 0, as JSON.stringify prints it.
fn integer_value(digits: &str, radix: u32, negative: bool) -> Option<Value> {
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        0i64.checked_sub_unsigned(magnitude).map(Value::from)
    } else {
        Some(Value::from(magnitude))
    }
}

/// Non-finite numbers become null, as JSON.stringify writes them.
fn float_value(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// How json5 quotes an offending char in its messages.
fn format_char(c: char) -> String {
    match c {
        '\'' | '"' | '\\' => format!("\\{c}"),
        '\u{2028}' | '\u{2029}' => format!("\\u{:04x}", c as u32),
        _ => match LETTER_ESCAPES.iter().find(|(_, escaped)| *escaped == c) {
            Some((letter, _)) => format!("\\{letter}"),
            None if c < ' ' => format!("\\x{:02x}", c as u32),
            None => c.to_string(),
        },
    }
}

#[cfg(test)]
#[path = "json5_tests.rs"]
mod tests;
