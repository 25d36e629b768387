//! Push-latency runs (broadcasts timed at every reader) and the stalled client's fate.

use super::report::{fmt_ms, percentile};
use super::ws::{self, Reader, Ws};
use super::Plan;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
/// Result of one broadcast run.
pub struct Push {
    pub lat: Vec<Duration>,
    pub missing: usize,
    pub frame: usize,
    pub seqs: Vec<u64>,
}

impl Push {
    pub fn p99(&self) -> Duration {
        percentile(&mut self.lat.clone(), 0.99)
    }
    pub fn summary(&self) -> String {
        let mut l = self.lat.clone();
        format!(
            "{} / {} / {}",
            fmt_ms(percentile(&mut l, 0.5)),
            fmt_ms(percentile(&mut l, 0.99)),
            fmt_ms(l.last().copied().unwrap_or_default())
        )
    }
    pub fn delivered(&self) -> String {
        format!(
            "{} ({} missing; frames up to {} KiB)",
            self.lat.len(),
            self.missing,
            self.frame / 1024
        )
    }
}

/// `p.broadcasts` requests of `method` from the control connection, `p.spacing` apart, each of
/// which makes the gateway broadcast one event; each reader's arrival time of that event minus
/// the time the request was sent.
pub fn push(
    ctl: &mut Ws,
    readers: &[Reader],
    p: &Plan,
    tag: &str,
    method: &str,
    params: impl Fn(usize) -> serde_json::Value,
) -> Result<Push, String> {
    for r in readers {
        let mut s = r.seen.lock().unwrap();
        s.presence.clear();
        s.max_frame = 0;
    }
    let start = Instant::now();
    let mut sent: Vec<(u64, Instant)> = Vec::new();
    for i in 0..p.broadcasts {
        if let Some(d) = (start + p.spacing * i as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let t = Instant::now();
        let (_, seq) = ws::request(ctl, &format!("{tag}{i}"), method, params(i))?;
        let seq = seq
            .filter(|s| sent.last().is_none_or(|l| *s > l.0))
            .ok_or_else(|| format!("{method} answered without a new broadcast event"))?;
        sent.push((seq, t));
    }
    let last = sent.last().map_or(0, |s| s.0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && !readers.iter().all(|r| {
            r.seen
                .lock()
                .unwrap()
                .presence
                .last()
                .is_some_and(|x| x.0 >= last)
        })
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let at: HashMap<u64, Instant> = sent.iter().copied().collect();
    let (mut lat, mut frame) = (Vec::new(), 0);
    for r in readers {
        let s = r.seen.lock().unwrap();
        frame = frame.max(s.max_frame);
        lat.extend(
            s.presence
                .iter()
                .filter_map(|(q, t)| Some(t.saturating_duration_since(*at.get(q)?))),
        );
    }
    lat.sort();
    let missing = readers.len() * sent.len() - lat.len();
    Ok(Push {
        lat,
        missing,
        frame,
        seqs: sent.iter().map(|s| s.0).collect(),
    })
}

/// What became of the stalled client once it started reading again.
pub struct Stalled {
    /// Its close frame, as `code "reason"`.
    pub close: Option<String>,
    /// Presence events of the stall run it received, and other text frames.
    pub presence: usize,
    pub other: usize,
    /// How draining ended, plus whether a still-open connection answers a `health` request.
    pub end: String,
}

/// Reads (bounded) what the stalled client was sent; if the connection is still open afterwards,
/// checks whether it still answers requests.
pub fn drain_stalled(mut ws: Ws, seqs: &[u64]) -> Stalled {
    use tungstenite::{Error, Message};
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)));
    let (start, mut quiet) = (Instant::now(), Instant::now());
    let mut out = Stalled {
        close: None,
        presence: 0,
        other: 0,
        end: String::new(),
    };
    out.end = loop {
        if start.elapsed() > Duration::from_secs(30) {
            break "still sending after 30 s of draining".to_string();
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                quiet = Instant::now();
                match ws::event_seq(t.as_str()) {
                    Some(s) if seqs.contains(&s) => out.presence += 1,
                    _ => out.other += 1,
                }
            }
            Ok(Message::Close(f)) => {
                out.close = Some(
                    f.map(|f| format!("{} \"{}\"", u16::from(f.code), f.reason))
                        .unwrap_or("1005".into()),
                )
            }
            Ok(_) => {}
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if quiet.elapsed() > Duration::from_secs(3) {
                    let answer = match ws::request(&mut ws, "probe", "health", json!({})) {
                        Ok(_) => "it still answers requests".to_string(),
                        Err(e) => format!("a health request gets no answer ({e})"),
                    };
                    break format!("connection still open 3 s after the last frame; {answer}");
                }
            }
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => {
                break "connection ended".to_string()
            }
            Err(e) => break format!("connection ended: {e}"),
        }
    };
    out
}
