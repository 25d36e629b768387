//! The pattern parser for [`super::Regex`]: JavaScript regex syntax to the node tree.

use super::{fold, ClassItem, Node};

/// Parses `pattern`; returns the top-level alternatives and the number of capture groups.
pub(super) fn parse(pattern: &str, icase: bool) -> Result<(Vec<Vec<Node>>, usize), String> {
    let mut p = Parser {
        chars: pattern.chars().collect(),
        pos: 0,
        groups: 0,
        icase,
    };
    let alts = p.alternation()?;
    if p.pos != p.chars.len() {
        return Err(format!("unexpected ')' at {}", p.pos));
    }
    Ok((alts, p.groups))
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    groups: usize,
    icase: bool,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn alternation(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.eat('|') {
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            seq.push(self.quantified(atom)?);
        }
        Ok(seq)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let c = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '(' => self.group()?,
            '[' => self.class()?,
            '\\' => self.escape()?,
            '*' | '+' | '?' => return Err(format!("nothing to repeat at {}", self.pos)),
            _ => self.literal(c),
        })
    }

    fn literal(&self, c: char) -> Node {
        Node::Char(if self.icase { fold(c) } else { c })
    }

    fn group(&mut self) -> Result<Node, String> {
        let index = if self.chars[self.pos..].starts_with(&['?', ':']) {
            self.pos += 2;
            None
        } else {
            self.groups += 1;
            Some(self.groups)
        };
        let alts = self.alternation()?;
        if !self.eat(')') {
            return Err("unclosed group".into());
        }
        Ok(Node::Group(alts, index))
    }

    fn escape(&mut self) -> Result<Node, String> {
        let c = self.peek().ok_or("trailing backslash")?;
        self.pos += 1;
        Ok(match c {
            'b' => Node::WordBoundary,
            _ => match class_escape(c) {
                Some(item) => Node::Class(vec![item], false),
                None => self.literal(control_escape(c)),
            },
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        loop {
            let c = self.peek().ok_or("unclosed class")?;
            self.pos += 1;
            if c == ']' {
                break;
            }
            let lo = if c == '\\' {
                let e = self.peek().ok_or("unclosed class")?;
                self.pos += 1;
                if let Some(item) = class_escape(e) {
                    items.push(item);
                    continue;
                }
                control_escape(e)
            } else {
                c
            };
            items.push(self.range_from(lo));
        }
        Ok(Node::Class(items, negated))
    }

    fn range_from(&mut self, lo: char) -> ClassItem {
        let is_range = self.peek() == Some('-') && self.chars.get(self.pos + 1) != Some(&']');
        if !is_range || self.chars.get(self.pos + 1).is_none() {
            return ClassItem::Range(lo, lo);
        }
        self.pos += 1;
        let mut hi = self.chars[self.pos];
        self.pos += 1;
        if hi == '\\' {
            if let Some(e) = self.peek() {
                self.pos += 1;
                hi = control_escape(e);
            }
        }
        ClassItem::Range(lo, hi)
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => match self.braces() {
                Some(bounds) => return Ok(self.repeat(atom, bounds)),
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        self.pos += 1;
        Ok(self.repeat(atom, (min, max)))
    }

    fn repeat(&mut self, atom: Node, (min, max): (u32, Option<u32>)) -> Node {
        let greedy = !self.eat('?');
        Node::Repeat(Box::new(atom), min, max, greedy)
    }

    /// `{n}`, `{n,}`, `{n,m}`; anything else is a literal `{` as in JavaScript.
    fn braces(&mut self) -> Option<(u32, Option<u32>)> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let close = rest.find('}')?;
        let body = &rest[1..close];
        let (lo, hi) = match body.split_once(',') {
            None => {
                let n = body.parse().ok()?;
                (n, Some(n))
            }
            Some((a, "")) => (a.parse().ok()?, None),
            Some((a, b)) => (a.parse().ok()?, Some(b.parse().ok()?)),
        };
        self.pos += rest[..=close].chars().count();
        Some((lo, hi))
    }
}

fn class_escape(c: char) -> Option<ClassItem> {
    Some(match c {
        'd' => ClassItem::Digit(true),
        'D' => ClassItem::Digit(false),
        's' => ClassItem::Space(true),
        'S' => ClassItem::Space(false),
        'w' => ClassItem::Word(true),
        'W' => ClassItem::Word(false),
        _ => return None,
    })
}

fn control_escape(c: char) -> char {
    match c {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        _ => c,
    }
}
