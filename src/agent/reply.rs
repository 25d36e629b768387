//! Reply shaping: the `NO_REPLY` silent token, `HEARTBEAT_OK` edge stripping (incl. `**`/HTML
//! wrapping), reply tags `[[reply_to_current]]` / `[[reply_to:<id>]]` / `[[audio_as_voice]]`, and
//! the JavaScript string semantics (`trim`, `\s`, `\b`, UTF-16 lengths) those rules are written in.
//!
//! Upstream: `src/auto-reply/tokens.ts`, `src/auto-reply/heartbeat.ts`,
//! `src/utils/directive-tags.ts`, `src/auto-reply/reply/{reply-directives,reply-tags,
//! reply-payloads,normalize-reply}.ts` (moltbot 2026.1.27-beta.1).

/// The heartbeat acknowledgement token.
pub const HEARTBEAT_TOKEN: &str = "HEARTBEAT_OK";
/// The "nothing to say" token.
pub const SILENT_REPLY_TOKEN: &str = "NO_REPLY";
/// Default heartbeat prompt (`agents.defaults.heartbeat.prompt` unset).
pub const HEARTBEAT_PROMPT: &str = "Read HEARTBEAT.md if it exists (workspace context). Follow it strictly. Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply HEARTBEAT_OK.";
/// Default `heartbeat.every`.
pub const DEFAULT_HEARTBEAT_EVERY: &str = "30m";
/// Default `heartbeat.ackMaxChars`.
pub const DEFAULT_HEARTBEAT_ACK_MAX_CHARS: usize = 300;

// ---------------------------------------------------------------------------------------------
// JavaScript string semantics. Upstream rules are regexes and String methods; these helpers
// reproduce them exactly so edge cases (NBSP, BOM, emoji lengths) behave the same.

/// JavaScript's WhiteSpace + LineTerminator set (what `trim()` and regex `\s` match).
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `String.prototype.trim`.
pub fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// `String.prototype.trimStart`.
pub fn js_trim_start(s: &str) -> &str {
    s.trim_start_matches(is_js_space)
}

/// `String.prototype.trimEnd`.
pub fn js_trim_end(s: &str) -> &str {
    s.trim_end_matches(is_js_space)
}

/// `s.length` in JavaScript: UTF-16 code units (an emoji counts 2).
pub fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Regex `\w` without the `u` flag: ASCII letters, digits and `_`.
pub fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `s.replace(/\s+/g, " ")`.
pub fn collapse_js_space(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if is_js_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Index just past the run of JavaScript whitespace starting at byte `i`.
fn skip_js_space(s: &str, i: usize) -> usize {
    s[i..]
        .char_indices()
        .find(|&(_, c)| !is_js_space(c))
        .map_or(s.len(), |(k, _)| i + k)
}

/// Regex `\b` at byte `i`: word-ness of the chars on either side differs.
fn is_word_boundary(s: &str, i: usize) -> bool {
    let before = s[..i].chars().next_back().is_some_and(is_word_char);
    let after = s[i..].chars().next().is_some_and(is_word_char);
    before != after
}

// ---------------------------------------------------------------------------------------------
// NO_REPLY

/// `isSilentReplyText`: the text starts with the token (`^\s*TOKEN(?=$|\W)`) or ends with it
/// (`\bTOKEN\b\W*$`). So `NO_REPLY.` and `ok NO_REPLY` are silent, `NO_REPLY_x` is not.
pub fn is_silent_reply_text(text: &str, token: &str) -> bool {
    if text.is_empty() || token.is_empty() {
        return false;
    }
    let start = skip_js_space(text, 0);
    if let Some(after) = text[start..].strip_prefix(token) {
        if after.chars().next().is_none_or(|c| !is_word_char(c)) {
            return true;
        }
    }
    // Only the last occurrence can be followed by nothing but non-word chars.
    let Some(pos) = text.rfind(token) else {
        return false;
    };
    let end = pos + token.len();
    is_word_boundary(text, pos)
        && is_word_boundary(text, end)
        && text[end..].chars().all(|c| !is_word_char(c))
}

// ---------------------------------------------------------------------------------------------
// HEARTBEAT_OK

/// How a reply is being stripped: a heartbeat run (short leftovers are dropped) or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripMode {
    Heartbeat,
    Message,
}

/// The result of `stripHeartbeatToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatStrip {
    pub should_skip: bool,
    pub text: String,
    pub did_strip: bool,
}

impl HeartbeatStrip {
    fn new(should_skip: bool, text: &str, did_strip: bool) -> Self {
        HeartbeatStrip {
            should_skip,
            text: text.to_string(),
            did_strip,
        }
    }
}

/// `resolveHeartbeatPrompt`: the configured prompt, trimmed, else the default.
pub fn resolve_heartbeat_prompt(raw: Option<&str>) -> String {
    match raw.map(js_trim) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => HEARTBEAT_PROMPT.to_string(),
    }
}

/// Drops HTML tags, `&nbsp;` and markdown wrappers at the edges, so `<b>HEARTBEAT_OK</b>` and
/// `**HEARTBEAT_OK**` are recognised.
fn strip_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // `/<[^>]*>/g` → " ": an unclosed `<` is kept literally.
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        match rest[lt..].find('>') {
            Some(gt) => {
                out.push(' ');
                rest = &rest[lt + gt + 1..];
            }
            None => {
                out.push_str(&rest[lt..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let out = replace_ascii_ci(&out, "&nbsp;", " ");
    let wrap = |c: char| matches!(c, '*' | '`' | '~' | '_');
    out.trim_start_matches(wrap)
        .trim_end_matches(wrap)
        .to_string()
}

/// Case-insensitive replace of an ASCII needle (`/&nbsp;/gi`).
fn replace_ascii_ci(s: &str, needle: &str, with: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(k) = lower[from..].find(needle) {
        let at = from + k;
        out.push_str(&s[last..at]);
        out.push_str(with);
        last = at + needle.len();
        from = last;
    }
    out.push_str(&s[last..]);
    out
}

/// `stripTokenAtEdges`: repeatedly removes the token from either end, then collapses spaces.
fn strip_token_at_edges(raw: &str) -> (String, bool) {
    let mut text = js_trim(raw).to_string();
    if text.is_empty() || !text.contains(HEARTBEAT_TOKEN) {
        return (text, false);
    }
    let mut did_strip = false;
    loop {
        let next = js_trim(&text).to_string();
        if let Some(after) = next.strip_prefix(HEARTBEAT_TOKEN) {
            text = js_trim_start(after).to_string();
        } else if let Some(before) = next.strip_suffix(HEARTBEAT_TOKEN) {
            text = js_trim_end(before).to_string();
        } else {
            break;
        }
        did_strip = true;
    }
    (js_trim(&collapse_js_space(&text)).to_string(), did_strip)
}

/// `stripHeartbeatToken`. `max_ack_chars` (default 300) only matters in heartbeat mode, where a
/// leftover of at most that many UTF-16 units is treated as part of the ack and skipped.
pub fn strip_heartbeat_token(
    raw: Option<&str>,
    mode: StripMode,
    max_ack_chars: Option<usize>,
) -> HeartbeatStrip {
    let trimmed = js_trim(raw.unwrap_or(""));
    if trimmed.is_empty() {
        return HeartbeatStrip::new(true, "", false);
    }
    let max_ack = max_ack_chars.unwrap_or(DEFAULT_HEARTBEAT_ACK_MAX_CHARS);
    let normalized = strip_markup(trimmed);
    if !trimmed.contains(HEARTBEAT_TOKEN) && !normalized.contains(HEARTBEAT_TOKEN) {
        return HeartbeatStrip::new(false, trimmed, false);
    }
    let original = strip_token_at_edges(trimmed);
    let picked = if original.1 && !original.0.is_empty() {
        original
    } else {
        strip_token_at_edges(&normalized)
    };
    if !picked.1 {
        return HeartbeatStrip::new(false, trimmed, false);
    }
    let rest = js_trim(&picked.0);
    if rest.is_empty() || (mode == StripMode::Heartbeat && js_len(rest) <= max_ack) {
        return HeartbeatStrip::new(true, "", true);
    }
    HeartbeatStrip::new(false, rest, true)
}

/// `isHeartbeatContentEffectivelyEmpty`: only blank lines, ATX headers (`# …`) and empty list
/// items (`- `, `* [ ]`). A missing file (`None`) is *not* empty: the model still decides.
pub fn is_heartbeat_content_effectively_empty(content: Option<&str>) -> bool {
    let Some(content) = content else {
        return false;
    };
    content.split('\n').all(|line| {
        let t = js_trim(line);
        t.is_empty() || is_atx_header(t) || is_empty_list_item(t)
    })
}

/// `/^#+(\s|$)/`
fn is_atx_header(t: &str) -> bool {
    let rest = t.trim_start_matches('#');
    rest.len() < t.len() && rest.chars().next().is_none_or(is_js_space)
}

/// `/^[-*+]\s*(\[[\sXx]?\]\s*)?$/`
fn is_empty_list_item(t: &str) -> bool {
    let Some(rest) = t.strip_prefix(['-', '*', '+']) else {
        return false;
    };
    let rest = js_trim_start(rest);
    if rest.is_empty() {
        return true;
    }
    let Some(inner) = rest.strip_prefix('[') else {
        return false;
    };
    let inner = match inner.chars().next() {
        Some(c) if is_js_space(c) || c == 'x' || c == 'X' => &inner[c.len_utf8()..],
        _ => inner,
    };
    inner
        .strip_prefix(']')
        .is_some_and(|tail| js_trim_start(tail).is_empty())
}

// ---------------------------------------------------------------------------------------------
// Reply tags

/// Options of `parseInlineDirectives` (upstream defaults: strip both).
#[derive(Debug, Clone, Default)]
pub struct DirectiveOptions<'a> {
    pub current_message_id: Option<&'a str>,
    pub keep_audio_tag: bool,
    pub keep_reply_tags: bool,
}

/// The result of `parseInlineDirectives`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineDirectives {
    pub text: String,
    pub audio_as_voice: bool,
    pub reply_to_id: Option<String>,
    pub reply_to_explicit_id: Option<String>,
    pub reply_to_current: bool,
    pub has_audio_tag: bool,
    pub has_reply_tag: bool,
}

enum Directive {
    Audio,
    Current,
    Id(String),
}

/// ASCII case-insensitive `starts_with` (the regexes use the `i` flag).
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// `\s*\]\]` at `i`: the end of a tag.
fn close_at(s: &str, i: usize) -> Option<usize> {
    let j = skip_js_space(s, i);
    s[j..].starts_with("]]").then_some(j + 2)
}

/// Matches `\[\[\s*audio_as_voice\s*\]\]` (audio pass) or
/// `\[\[\s*(?:reply_to_current|reply_to\s*:\s*([^\]\n]+))\s*\]\]` (reply pass) at byte `start`.
fn match_directive(s: &str, start: usize, audio: bool) -> Option<(usize, Directive)> {
    let p = skip_js_space(s, start + 2);
    let rest = &s[p..];
    if audio {
        return starts_with_ci(rest, "audio_as_voice")
            .then(|| close_at(s, p + 14))
            .flatten()
            .map(|end| (end, Directive::Audio));
    }
    if starts_with_ci(rest, "reply_to_current") {
        if let Some(end) = close_at(s, p + 16) {
            return Some((end, Directive::Current));
        }
    }
    if !starts_with_ci(rest, "reply_to") {
        return None;
    }
    let colon = skip_js_space(s, p + 8);
    if !s[colon..].starts_with(':') {
        return None;
    }
    let ws_end = skip_js_space(s, colon + 1);
    let cap_end = s[ws_end..]
        .find([']', '\n'])
        .map_or(s.len(), |k| ws_end + k);
    if cap_end > ws_end {
        let end = close_at(s, cap_end)?;
        return Some((end, Directive::Id(s[ws_end..cap_end].to_string())));
    }
    // Empty capture: the regex backtracks into the whitespace after `:`, which works only if
    // it holds a non-newline char (the id is then blank).
    let ws = &s[colon + 1..ws_end];
    (ws.chars().any(|c| c != '\n') && s[ws_end..].starts_with("]]"))
        .then(|| (ws_end + 2, Directive::Id(String::new())))
}

/// One global regex pass: each match is replaced by `" "` (or kept) and reported.
fn replace_directives(s: &str, audio: bool, keep: bool, found: &mut Vec<Directive>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(k) = s[i..].find("[[") {
        let at = i + k;
        out.push_str(&s[i..at]);
        match match_directive(s, at, audio) {
            Some((end, d)) => {
                found.push(d);
                out.push_str(if keep { &s[at..end] } else { " " });
                i = end;
            }
            None => {
                out.push('[');
                i = at + 1;
            }
        }
    }
    out.push_str(&s[i..]);
    out
}

/// `normalizeDirectiveWhitespace`: runs of spaces/tabs become one space, spaces around
/// newlines go, then trim.
fn normalize_directive_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        match c {
            ' ' | '\t' => pending_space = true,
            '\n' => {
                pending_space = false;
                while out.ends_with([' ', '\t']) {
                    out.pop();
                }
                out.push('\n');
            }
            _ => {
                if pending_space && !out.ends_with('\n') {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
            }
        }
    }
    js_trim(&out).to_string()
}

/// `parseInlineDirectives`: finds `[[audio_as_voice]]` and reply tags; the last explicit id
/// wins, else `[[reply_to_current]]` resolves to `current_message_id`.
pub fn parse_inline_directives(text: &str, opts: &DirectiveOptions) -> InlineDirectives {
    if text.is_empty() {
        return InlineDirectives::default();
    }
    let mut audio = Vec::new();
    let cleaned = replace_directives(text, true, opts.keep_audio_tag, &mut audio);
    let mut tags = Vec::new();
    let cleaned = replace_directives(&cleaned, false, opts.keep_reply_tags, &mut tags);
    let mut res = InlineDirectives {
        text: normalize_directive_whitespace(&cleaned),
        audio_as_voice: !audio.is_empty(),
        has_audio_tag: !audio.is_empty(),
        has_reply_tag: !tags.is_empty(),
        ..Default::default()
    };
    for tag in tags {
        match tag {
            Directive::Current => res.reply_to_current = true,
            Directive::Id(raw) if !js_trim(&raw).is_empty() => {
                res.reply_to_explicit_id = Some(js_trim(&raw).to_string());
            }
            _ => {}
        }
    }
    let current = opts
        .current_message_id
        .map(js_trim)
        .filter(|s| !s.is_empty());
    res.reply_to_id = res.reply_to_explicit_id.clone().or_else(|| {
        res.reply_to_current
            .then(|| current.map(str::to_string))
            .flatten()
    });
    res
}

/// `extractReplyToTag`: reply tags stripped, `[[audio_as_voice]]` left in place.
pub fn extract_reply_to_tag(text: &str, current_message_id: Option<&str>) -> InlineDirectives {
    let opts = DirectiveOptions {
        current_message_id,
        keep_audio_tag: true,
        keep_reply_tags: false,
    };
    parse_inline_directives(text, &opts)
}

/// A shaped reply text with its threading hints (`parseReplyDirectives` minus `MEDIA:` lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyDirectives {
    pub text: String,
    pub reply_to_id: Option<String>,
    pub reply_to_current: bool,
    pub reply_to_tag: bool,
    pub is_silent: bool,
}

/// `parseReplyDirectives` for a text-only reply: strips reply tags, then blanks the text if it
/// is a `NO_REPLY` reply. (Upstream first splits `MEDIA:` lines off; that is not ported here.)
pub fn parse_reply_directives(raw: &str, current_message_id: Option<&str>) -> ReplyDirectives {
    let parsed = parse_inline_directives(
        raw,
        &DirectiveOptions {
            current_message_id,
            keep_audio_tag: true,
            keep_reply_tags: false,
        },
    );
    let mut text = if parsed.has_reply_tag {
        parsed.text.clone()
    } else {
        raw.to_string()
    };
    let is_silent = is_silent_reply_text(&text, SILENT_REPLY_TOKEN);
    if is_silent {
        text.clear();
    }
    ReplyDirectives {
        text,
        reply_to_id: parsed.reply_to_id,
        reply_to_current: parsed.reply_to_current,
        reply_to_tag: parsed.has_reply_tag,
        is_silent,
    }
}

/// Options of `normalizeReplyPayload`.
#[derive(Debug, Clone)]
pub struct NormalizeOptions<'a> {
    /// The payload also carries media or channel data (then an empty text still sends).
    pub has_media: bool,
    pub strip_heartbeat: bool,
    pub response_prefix: Option<&'a str>,
    pub silent_token: &'a str,
}

impl Default for NormalizeOptions<'_> {
    fn default() -> Self {
        NormalizeOptions {
            has_media: false,
            strip_heartbeat: true,
            response_prefix: None,
            silent_token: SILENT_REPLY_TOKEN,
        }
    }
}

/// `normalizeReplyPayload` for the text: `None` = drop the payload. `NO_REPLY` replies are
/// dropped, `HEARTBEAT_OK` at the edges is stripped, `messages.responsePrefix` is prepended.
/// Not ported: `sanitizeUserFacingText` (error rewriting) and LINE directives.
pub fn normalize_reply_text(text: Option<&str>, opts: &NormalizeOptions) -> Option<String> {
    let mut text = text.unwrap_or("").to_string();
    if js_trim(&text).is_empty() {
        return opts.has_media.then(String::new);
    }
    if is_silent_reply_text(&text, opts.silent_token) {
        if !opts.has_media {
            return None;
        }
        text.clear();
    }
    if opts.strip_heartbeat && text.contains(HEARTBEAT_TOKEN) {
        let stripped = strip_heartbeat_token(Some(&text), StripMode::Message, None);
        if stripped.should_skip && !opts.has_media {
            return None;
        }
        text = stripped.text;
    }
    if js_trim(&text).is_empty() && !opts.has_media {
        return None;
    }
    if let Some(prefix) = opts.response_prefix.filter(|p| !p.is_empty()) {
        if !text.is_empty() && js_trim(&text) != HEARTBEAT_TOKEN && !text.starts_with(prefix) {
            text = format!("{prefix} {text}");
        }
    }
    Some(text)
}

/// `applyReplyTagsToPayload` for a fresh text payload: `text` is `None` when only tags remain.
pub fn apply_reply_tags(text: &str, current_message_id: Option<&str>) -> ReplyDirectives {
    if !text.contains("[[") {
        return ReplyDirectives {
            text: text.to_string(),
            ..Default::default()
        };
    }
    let parsed = extract_reply_to_tag(text, current_message_id);
    ReplyDirectives {
        text: parsed.text,
        reply_to_id: parsed.reply_to_id,
        reply_to_current: parsed.reply_to_current,
        reply_to_tag: parsed.has_reply_tag,
        is_silent: false,
    }
}
