//! Incremental Server-Sent Events parser over a blocking reader, with hard limits on line, event
//! and total stream size so a hostile server cannot make it allocate without bound.
//!
//! Follows the decoder the OpenAI and Anthropic SDKs share: lines end in `\n`, `\r\n` or `\r`;
//! `:` starts a comment; `field: value` strips one leading space; `data` lines are joined with
//! `\n`; a blank line dispatches the frame unless it had neither `event` nor `data`; a frame left
//! unterminated at end of stream is dropped. `[DONE]` is ordinary data here: the OpenAI decoders
//! decide what it means.

use std::fmt;
use std::io::{self, Read};

/// One dispatched frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the frame had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Size limits, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct SseLimits {
    /// Longest single line.
    pub max_line: usize,
    /// Largest frame (sum of its data lines).
    pub max_event: usize,
    /// Whole stream.
    pub max_total: u64,
}

impl Default for SseLimits {
    /// Generous for real traffic: a Responses `response.completed` frame repeats the whole output,
    /// encrypted reasoning included, so single frames of a few MiB are legitimate.
    fn default() -> Self {
        SseLimits {
            max_line: 8 * 1024 * 1024,
            max_event: 8 * 1024 * 1024,
            max_total: 256 * 1024 * 1024,
        }
    }
}

/// Why reading stopped.
#[derive(Debug)]
pub enum SseError {
    LineTooLong,
    EventTooLarge,
    StreamTooLarge,
    Io(io::Error),
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong => f.write_str("SSE line exceeds the size limit"),
            SseError::EventTooLarge => f.write_str("SSE event exceeds the size limit"),
            SseError::StreamTooLarge => f.write_str("SSE stream exceeds the size limit"),
            SseError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SseError {}

/// Pulls frames from `inner` one at a time.
pub struct SseReader<R> {
    inner: R,
    limits: SseLimits,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    total: u64,
    /// The previous line ended in `\r`; a `\n` right after it belongs to that line ending.
    after_cr: bool,
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    data_lines: usize,
    eof: bool,
}

impl<R: Read> SseReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_limits(inner, SseLimits::default())
    }

    pub fn with_limits(inner: R, limits: SseLimits) -> Self {
        SseReader {
            inner,
            limits,
            buf: vec![0u8; 16 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            total: 0,
            after_cr: false,
            line: Vec::new(),
            event: None,
            data: String::new(),
            data_lines: 0,
            eof: false,
        }
    }

    /// The next frame, or `None` at end of stream.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        while let Some(line) = self.next_line()? {
            if let Some(ev) = self.take_line(&line)? {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    /// Applies one line; returns a frame when the line was the blank line that ends it.
    fn take_line(&mut self, line: &str) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.find(':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                let extra = value.len() + usize::from(self.data_lines > 0);
                if self.data.len() + extra > self.limits.max_event {
                    return Err(SseError::EventTooLarge);
                }
                if self.data_lines > 0 {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.data_lines += 1;
            }
            // `id` and `retry` only matter for EventSource reconnection, which nobody does here.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        if self.event.is_none() && self.data_lines == 0 {
            return None;
        }
        self.data_lines = 0;
        Some(SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
        })
    }

    /// The next line without its terminator; `None` at end of stream. A final line without a
    /// terminator is still returned (it can only complete a field, never dispatch a frame).
    fn next_line(&mut self) -> Result<Option<String>, SseError> {
        self.line.clear();
        loop {
            if self.pos == self.len && !self.fill()? {
                if self.line.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.line_string()));
            }
            if self.after_cr {
                self.after_cr = false;
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                    continue;
                }
            }
            let chunk = &self.buf[self.pos..self.len];
            let avail = chunk.len();
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.append(i)?;
                    self.after_cr = self.buf[self.pos] == b'\r';
                    self.pos += 1;
                    return Ok(Some(self.line_string()));
                }
                None => self.append(avail)?,
            }
        }
    }

    /// Moves `n` buffered bytes into the current line.
    fn append(&mut self, n: usize) -> Result<(), SseError> {
        if self.line.len() + n > self.limits.max_line {
            return Err(SseError::LineTooLong);
        }
        self.line
            .extend_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(())
    }

    fn line_string(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }

    /// Reads and discards the rest of the stream, frames or not, but at most `max` more bytes;
    /// true if the stream ended within them.
    pub fn discard_rest(&mut self, max: u64) -> bool {
        let stop = self.total.saturating_add(max);
        loop {
            self.pos = self.len;
            match self.fill() {
                Ok(true) if self.total <= stop => {}
                Ok(true) | Err(_) => return false,
                Ok(false) => return true,
            }
        }
    }

    /// Refills the buffer; false at end of stream.
    fn fill(&mut self) -> Result<bool, SseError> {
        if self.eof {
            return Ok(false);
        }
        let n = loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SseError::Io(e)),
            }
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.total += n as u64;
        if self.total > self.limits.max_total {
            return Err(SseError::StreamTooLarge);
        }
        self.pos = 0;
        self.len = n;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes `step` at a time, so line and CRLF splits across reads are exercised.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(self.data.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all(input: &str, step: usize) -> Vec<SseEvent> {
        let mut r = SseReader::new(Trickle {
            data: input.as_bytes(),
            step,
        });
        let mut out = Vec::new();
        while let Some(ev) = r.next_event().expect("parse") {
            out.push(ev);
        }
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn frames_comments_multiline_and_line_endings() {
        let input = ": hello\n\nevent: a\ndata: 1\n\nevent:b\r\ndata: x\r\ndata:y\r\n\r\ndata: z\r\rdata: [DONE]\n\n";
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(
                all(input, step),
                vec![
                    ev(Some("a"), "1"),
                    ev(Some("b"), "x\ny"),
                    ev(None, "z"),
                    ev(None, "[DONE]"),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn empty_data_dispatches_but_blank_frames_do_not() {
        assert_eq!(all("\n\n\ndata:\n\n", 4), vec![ev(None, "")]);
        assert_eq!(all("event: ping\n\n", 4), vec![ev(Some("ping"), "")]);
    }

    #[test]
    fn discarding_stops_at_the_end_or_at_the_bound() {
        let mut r = SseReader::new("data: a\n\n: rest\n".as_bytes());
        assert!(r.next_event().unwrap().is_some());
        assert!(r.discard_rest(1024), "ended");
        // Comment lines forever: never a frame, yet the discard stops.
        let endless = std::io::repeat(b':');
        let mut r = SseReader::new(endless);
        assert!(!r.discard_rest(64 * 1024), "cut at the bound");
        assert!(r.total <= 64 * 1024 + 16 * 1024);
    }

    #[test]
    fn unterminated_final_frame_is_dropped() {
        assert_eq!(all("data: a\n\ndata: b", 3), vec![ev(None, "a")]);
        assert_eq!(all("data: a\n\ndata: b\n", 3), vec![ev(None, "a")]);
    }

    #[test]
    fn field_without_colon_and_unknown_fields() {
        assert_eq!(
            all("data\nid: 7\nretry: 10\nfoo: bar\n\n", 5),
            vec![ev(None, "")]
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = SseLimits {
            max_line: 16,
            max_event: 24,
            max_total: 1 << 20,
        };
        let long_line = format!("data: {}\n\n", "x".repeat(64));
        let mut r = SseReader::with_limits(long_line.as_bytes(), limits);
        assert!(matches!(r.next_event(), Err(SseError::LineTooLong)));

        let many = "data: 0123456789\n".repeat(4);
        let mut r = SseReader::with_limits(many.as_bytes(), limits);
        assert!(matches!(r.next_event(), Err(SseError::EventTooLarge)));

        let limits = SseLimits {
            max_total: 10,
            ..limits
        };
        let mut r = SseReader::with_limits(&b"data: a\n\ndata: b\n\n"[..], limits);
        assert!(matches!(r.next_event(), Err(SseError::StreamTooLarge)));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut r = SseReader::new(&b"data: \xff\xfe ok\n\n"[..]);
        let got = r.next_event().expect("parse").expect("frame");
        assert!(got.data.ends_with(" ok"));
    }
}
