//! A small backtracking matcher for the JavaScript regular expressions upstream's error
//! classifiers use, so the pattern tables can be copied verbatim (no regex crate in the tree).
//!
//! Supported: literals and escapes, `.`, classes `[...]`/`[^...]` with ranges, `\s \S \d \D \w \W`,
//! `\b`, `^`/`$` (whole input, as without the `m` flag), groups `(...)`/`(?:...)`, alternation,
//! greedy and lazy `* + ? {n} {n,} {n,m}`, and the flags `i` and `s`. Single-character
//! repetitions are matched iteratively, so the recursion depth is bounded by the pattern, not by
//! the input.

mod parse;

type Caps = Vec<Option<(usize, usize)>>;

#[derive(Debug, Clone)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Space(bool),
    Word(bool),
}

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class(Vec<ClassItem>, bool),
    Start,
    End,
    WordBoundary,
    Group(Vec<Vec<Node>>, Option<usize>),
    Repeat(Box<Node>, u32, Option<u32>, bool),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    alts: Vec<Vec<Node>>,
    groups: usize,
    icase: bool,
    dotall: bool,
}

/// Capture groups of one match (index 0 is the whole match), as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Captures {
    pub start: usize,
    pub end: usize,
    pub groups: Vec<Option<String>>,
}

impl Captures {
    /// The text of group `i`, if it took part in the match.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.groups.get(i).and_then(|g| g.as_deref())
    }
}

impl Regex {
    /// Compiles `pattern` with JavaScript `flags` (`i`, `s`; `g` is accepted and ignored).
    pub fn new(pattern: &str, flags: &str) -> Result<Regex, String> {
        let icase = flags.contains('i');
        let (alts, groups) = parse::parse(pattern, icase)?;
        Ok(Regex {
            alts,
            groups,
            icase,
            dotall: flags.contains('s'),
        })
    }

    /// Compiles a pattern known to be valid (the constant tables in this module's users).
    pub fn fixed(pattern: &str, flags: &str) -> Regex {
        Regex::new(pattern, flags).unwrap_or_else(|e| panic!("bad built-in pattern {pattern}: {e}"))
    }

    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        self.find_in(&chars, 0).is_some()
    }

    /// The first match and its groups.
    pub fn captures(&self, text: &str) -> Option<Captures> {
        let chars: Vec<char> = text.chars().collect();
        let caps = self.find_in(&chars, 0)?;
        Some(to_captures(&chars, &caps))
    }

    /// Replaces every non-overlapping match with `with` (no `$n` expansion; none is needed).
    pub fn replace_all(&self, text: &str, with: &str) -> String {
        self.replace(text, with, usize::MAX)
    }

    /// Replaces the first match only.
    pub fn replace_first(&self, text: &str, with: &str) -> String {
        self.replace(text, with, 1)
    }

    /// Splits `text` at every match, like `String.prototype.split(regex)` without groups.
    pub fn split(&self, text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut last = 0;
        let mut from = 0;
        while from <= chars.len() {
            let Some(caps) = self.find_in(&chars, from) else {
                break;
            };
            let (s, e) = caps[0].unwrap_or((from, from));
            if e == s {
                from = s + 1;
                continue;
            }
            out.push(chars[last..s].iter().collect());
            last = e;
            from = e;
        }
        out.push(chars[last..].iter().collect());
        out
    }

    fn replace(&self, text: &str, with: &str, limit: usize) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        let (mut last, mut from, mut done) = (0, 0, 0);
        while done < limit && from <= chars.len() {
            let Some(caps) = self.find_in(&chars, from) else {
                break;
            };
            let (s, e) = caps[0].unwrap_or((from, from));
            out.extend(&chars[last..s]);
            out.push_str(with);
            last = e;
            // An empty match must still advance, as JavaScript's lastIndex bump does.
            from = if e == s { e + 1 } else { e };
            if e == s && s < chars.len() {
                out.push(chars[s]);
                last = s + 1;
            }
            done += 1;
        }
        if last <= chars.len() {
            out.extend(&chars[last..]);
        }
        out
    }

    fn find_in(&self, text: &[char], from: usize) -> Option<Caps> {
        let m = Matcher { re: self, text };
        (from..=text.len()).find_map(|start| m.at(start))
    }
}

fn to_captures(text: &[char], caps: &Caps) -> Captures {
    let (start, end) = caps[0].unwrap_or((0, 0));
    let groups = caps
        .iter()
        .map(|g| g.map(|(s, e)| text[s..e].iter().collect()))
        .collect();
    Captures { start, end, groups }
}

/// Simple case folding, enough for the ASCII patterns this module serves.
fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// JavaScript's `\s`: Unicode white space plus the BOM.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

struct Matcher<'a> {
    re: &'a Regex,
    text: &'a [char],
}

impl Matcher<'_> {
    fn at(&self, start: usize) -> Option<Caps> {
        let mut caps: Caps = vec![None; self.re.groups + 1];
        let mut end = None;
        let found = self.alts(&self.re.alts, start, &mut caps, &mut |p, _| {
            end = Some(p);
            true
        });
        if !found {
            return None;
        }
        caps[0] = end.map(|e| (start, e));
        Some(caps)
    }

    fn alts(&self, alts: &[Vec<Node>], pos: usize, caps: &mut Caps, k: Cont) -> bool {
        alts.iter().any(|seq| self.seq(seq, pos, caps, k))
    }

    fn seq(&self, seq: &[Node], pos: usize, caps: &mut Caps, k: Cont) -> bool {
        match seq.split_first() {
            None => k(pos, caps),
            Some((node, rest)) => self.node(node, pos, caps, &mut |p, c| self.seq(rest, p, c, k)),
        }
    }

    fn node(&self, node: &Node, pos: usize, caps: &mut Caps, k: Cont) -> bool {
        match node {
            Node::Start => pos == 0 && k(pos, caps),
            Node::End => pos == self.text.len() && k(pos, caps),
            Node::WordBoundary => self.at_boundary(pos) && k(pos, caps),
            Node::Group(alts, index) => self.group(alts, *index, pos, caps, k),
            Node::Repeat(inner, min, max, greedy) => {
                let bounds = (*min, max.unwrap_or(u32::MAX));
                if single_char(inner) {
                    self.repeat_chars(inner, bounds, *greedy, pos, caps, k)
                } else {
                    self.repeat_nodes(inner, bounds, *greedy, 0, pos, caps, k)
                }
            }
            _ => self.one_char(node, pos) && k(pos + 1, caps),
        }
    }

    fn group(
        &self,
        alts: &[Vec<Node>],
        index: Option<usize>,
        pos: usize,
        caps: &mut Caps,
        k: Cont,
    ) -> bool {
        self.alts(alts, pos, caps, &mut |p, c| {
            let Some(i) = index else { return k(p, c) };
            let saved = c[i];
            c[i] = Some((pos, p));
            if k(p, c) {
                return true;
            }
            c[i] = saved;
            false
        })
    }

    fn repeat_chars(
        &self,
        inner: &Node,
        (min, max): (u32, u32),
        greedy: bool,
        pos: usize,
        caps: &mut Caps,
        k: Cont,
    ) -> bool {
        let mut n = 0usize;
        while (n as u64) < u64::from(max) && self.one_char(inner, pos + n) {
            n += 1;
        }
        let min = min as usize;
        if n < min {
            return false;
        }
        if greedy {
            (min..=n).rev().any(|i| k(pos + i, caps))
        } else {
            (min..=n).any(|i| k(pos + i, caps))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat_nodes(
        &self,
        inner: &Node,
        bounds: (u32, u32),
        greedy: bool,
        count: u32,
        pos: usize,
        caps: &mut Caps,
        k: Cont,
    ) -> bool {
        let (min, max) = bounds;
        let done_ok = count >= min;
        if !greedy && done_ok && k(pos, caps) {
            return true;
        }
        let more = count < max
            && self.node(inner, pos, caps, &mut |p, c| {
                // An empty iteration cannot make progress; stop instead of looping forever.
                p != pos && self.repeat_nodes(inner, bounds, greedy, count + 1, p, c, k)
            });
        more || (greedy && done_ok && k(pos, caps))
    }

    fn one_char(&self, node: &Node, pos: usize) -> bool {
        let Some(&c) = self.text.get(pos) else {
            return false;
        };
        match node {
            Node::Char(want) => {
                if self.re.icase {
                    fold(c) == *want
                } else {
                    c == *want
                }
            }
            Node::Any => self.re.dotall || !is_line_terminator(c),
            Node::Class(items, negated) => self.in_class(items, c) != *negated,
            _ => false,
        }
    }

    fn in_class(&self, items: &[ClassItem], c: char) -> bool {
        items.iter().any(|item| match *item {
            ClassItem::Range(lo, hi) => {
                let hit = |x: char| lo <= x && x <= hi;
                hit(c) || (self.re.icase && (hit(fold(c)) || c.to_uppercase().any(hit)))
            }
            ClassItem::Digit(yes) => c.is_ascii_digit() == yes,
            ClassItem::Space(yes) => is_space(c) == yes,
            ClassItem::Word(yes) => is_word(c) == yes,
        })
    }

    fn at_boundary(&self, pos: usize) -> bool {
        let before = pos > 0 && is_word(self.text[pos - 1]);
        let after = self.text.get(pos).is_some_and(|&c| is_word(c));
        before != after
    }
}

type Cont<'k> = &'k mut dyn FnMut(usize, &mut Caps) -> bool;

fn single_char(node: &Node) -> bool {
    matches!(node, Node::Char(_) | Node::Any | Node::Class(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, f: &str, t: &str) -> bool {
        Regex::fixed(p, f).is_match(t)
    }

    #[test]
    fn literals_classes_and_alternation() {
        assert!(m(
            "rate[_ ]limit|too many requests|429",
            "",
            "hit rate_limit now"
        ));
        assert!(m("rate[_ ]limit|too many requests|429", "", "HTTP 429"));
        assert!(!m("rate[_ ]limit|too many requests|429", "", "ratelimit"));
        assert!(m("invalid[_ ]?api[_ ]?key", "", "invalidapikey"));
        assert!(m(
            r#""type"\s*:\s*"overloaded_error""#,
            "i",
            r#"{"TYPE" : "overloaded_error"}"#
        ));
    }

    #[test]
    fn word_boundaries_and_anchors() {
        assert!(m(r"\b402\b", "", "http 402 payment"));
        assert!(!m(r"\b402\b", "", "id 14020"));
        assert!(m(
            r"^4(00|13|29)\s*(status code)?\s*\(no body\)",
            "i",
            "429 status code (no body)"
        ));
        assert!(!m(
            r"^4(00|13|29)\s*(status code)?\s*\(no body\)",
            "i",
            "x 429 (no body)"
        ));
        assert!(m(r"\.\s*$", "", "done. "));
    }

    #[test]
    fn dot_stops_at_newlines_unless_dotall() {
        assert!(!m("^(\\d{3})\\s+(.+)$", "", "400 a\nb"));
        assert!(m("^(\\d{3})\\s+(.+)$", "s", "400 a\nb"));
        assert!(m(
            "context window.*(too small|minimum is)",
            "i",
            "Context window is TOO SMALL"
        ));
    }

    #[test]
    fn captures_and_lazy_quantifiers() {
        let re = Regex::fixed(
            r#""type":"invalid_request_error".*?"message":"([^"]+)""#,
            "",
        );
        let raw = r#"{"type":"invalid_request_error","message":"first"},{"message":"second"}"#;
        assert_eq!(re.captures(raw).unwrap().get(1), Some("first"));
        let re = Regex::fixed(r"image exceeds\s*(\d+(?:\.\d+)?)\s*mb", "i");
        assert_eq!(
            re.captures("Image exceeds 5.5 MB limit").unwrap().get(1),
            Some("5.5")
        );
        let re = Regex::fixed(r"^(?:http\s*)?(\d{3})\s+(.+)$", "i");
        let c = re.captures("HTTP 500 Internal").unwrap();
        assert_eq!((c.get(1), c.get(2)), (Some("500"), Some("Internal")));
    }

    #[test]
    fn replace_and_split() {
        let re = Regex::fixed(r"<\s*\/?\s*final\s*>", "gi");
        assert_eq!(re.replace_all("Hi <final>there</ FINAL>!", ""), "Hi there!");
        assert_eq!(
            Regex::fixed(r"\s+", "g").replace_all(" a \n b ", " "),
            " a b "
        );
        assert_eq!(
            Regex::fixed(r"\n{2,}", "").split("a\n\nb\n\n\nc"),
            vec!["a", "b", "c"]
        );
        assert_eq!(Regex::fixed(r"\.\s*$", "").replace_first("x. ", ""), "x");
    }

    #[test]
    fn long_inputs_do_not_recurse_per_character() {
        let text = format!("prompt {} too long", "x".repeat(200_000));
        assert!(m(
            "(?:prompt|request|input).*(too (?:large|long))",
            "i",
            &text
        ));
    }

    #[test]
    fn rejects_malformed_patterns() {
        assert!(Regex::new("(abc", "").is_err());
        assert!(Regex::new("*a", "").is_err());
        assert!(Regex::new("[abc", "").is_err());
    }
}
