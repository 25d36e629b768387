//! Idempotency cache for `chat.send`, `agent`, `send` and `poll` (upstream `DEDUPE_TTL_MS` 5 min,
//! `DEDUPE_MAX` 1000): a repeated request with the same key gets the cached answer.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(300);
const MAX: usize = 1000;

/// What a key stands for: still running, or finished with this answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    InFlight,
    Done(Result<Value, (String, String)>),
}

#[derive(Default)]
pub struct Dedupe {
    map: HashMap<String, (Instant, Entry)>,
    order: VecDeque<String>,
}

impl Dedupe {
    pub fn get(&mut self, key: &str) -> Option<Entry> {
        self.sweep();
        self.map.get(key).map(|(_, e)| e.clone())
    }

    pub fn put(&mut self, key: &str, entry: Entry) {
        self.sweep();
        if self
            .map
            .insert(key.to_string(), (Instant::now(), entry))
            .is_none()
        {
            self.order.push_back(key.to_string());
        }
        while self.map.len() > MAX {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
        }
    }

    fn sweep(&mut self) {
        while let Some(k) = self.order.front() {
            let expired = self.map.get(k).is_none_or(|(at, _)| at.elapsed() > TTL);
            if !expired {
                break;
            }
            if let Some(k) = self.order.pop_front() {
                self.map.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn caches_and_bounds() {
        let mut d = Dedupe::default();
        d.put("chat:a", Entry::InFlight);
        assert_eq!(d.get("chat:a"), Some(Entry::InFlight));
        d.put("chat:a", Entry::Done(Ok(json!({"status": "ok"}))));
        assert_eq!(
            d.get("chat:a"),
            Some(Entry::Done(Ok(json!({"status": "ok"}))))
        );
        for i in 0..1500 {
            d.put(&format!("k{i}"), Entry::InFlight);
        }
        assert!(d.map.len() <= MAX);
        assert_eq!(d.get("chat:a"), None, "oldest evicted first");
    }
}
