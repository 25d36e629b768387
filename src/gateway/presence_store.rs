//! Storage for presence entries: every entry's key and serialised JSON live in one shared buffer.
//! Entries outlive the connections that created them (5-minute TTL); stored as one buffer they
//! occupy a single allocation instead of pinning, for that long, the heap pages where their
//! connections' freed buffers were.

use std::ops::Range;

struct Item {
    key: Range<usize>,
    json: Range<usize>,
    disconnected_at: Option<u64>,
}

#[derive(Default)]
pub struct EntryStore {
    buf: String,
    items: Vec<Item>,
    dead_bytes: usize,
}

impl EntryStore {
    fn key_of(&self, item: &Item) -> &str {
        &self.buf[item.key.clone()]
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The JSON of `key` and when it disconnected.
    pub fn get(&self, key: &str) -> Option<(&str, Option<u64>)> {
        let item = self.items.iter().find(|i| self.key_of(i) == key)?;
        Some((&self.buf[item.json.clone()], item.disconnected_at))
    }

    pub fn remove(&mut self, key: &str) {
        let before = self.items.len();
        let buf = &self.buf;
        let mut freed = 0;
        self.items.retain(|i| {
            let keep = &buf[i.key.clone()] != key;
            if !keep {
                freed += i.key.len() + i.json.len();
            }
            keep
        });
        if self.items.len() != before {
            self.dead_bytes += freed;
            self.compact_if_sparse();
        }
    }

    /// Appends an entry (the caller removes any previous one with the same key).
    pub fn push(&mut self, key: &str, json: &str, disconnected_at: Option<u64>) {
        let k = self.buf.len()..self.buf.len() + key.len();
        self.buf.push_str(key);
        let j = self.buf.len()..self.buf.len() + json.len();
        self.buf.push_str(json);
        self.items.push(Item {
            key: k,
            json: j,
            disconnected_at,
        });
    }

    /// Keeps the entries whose disconnect time passes `keep`.
    pub fn retain(&mut self, keep: impl Fn(Option<u64>) -> bool) {
        let mut freed = 0;
        self.items.retain(|i| {
            let k = keep(i.disconnected_at);
            if !k {
                freed += i.key.len() + i.json.len();
            }
            k
        });
        self.dead_bytes += freed;
        self.compact_if_sparse();
    }

    /// Drops the `n` oldest entries.
    pub fn drop_oldest(&mut self, n: usize) {
        let n = n.min(self.items.len());
        let freed: usize = self.items[..n]
            .iter()
            .map(|i| i.key.len() + i.json.len())
            .sum();
        self.items.drain(..n);
        self.dead_bytes += freed;
        self.compact_if_sparse();
    }

    /// Newest first.
    pub fn iter_json_rev(&self) -> impl Iterator<Item = &str> {
        self.items.iter().rev().map(|i| &self.buf[i.json.clone()])
    }

    fn compact_if_sparse(&mut self) {
        if self.dead_bytes <= self.buf.len() / 2 {
            return;
        }
        let mut fresh = EntryStore {
            buf: String::with_capacity(self.buf.len() - self.dead_bytes),
            ..Default::default()
        };
        for i in &self.items {
            fresh.push(
                &self.buf[i.key.clone()],
                &self.buf[i.json.clone()],
                i.disconnected_at,
            );
        }
        fresh.items.shrink_to_fit();
        *self = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_expire_and_compact() {
        let mut s = EntryStore::default();
        for i in 0..10 {
            s.push(
                &format!("k{i}"),
                &format!("{{\"n\":{i}}}"),
                (i % 2 == 0).then_some(i),
            );
        }
        s.remove("k3");
        s.push("k3", "{\"n\":33}", None);
        assert_eq!(s.get("k3"), Some(("{\"n\":33}", None)));
        s.retain(|d| d.is_none());
        assert_eq!(s.len(), 5);
        assert_eq!(s.iter_json_rev().next(), Some("{\"n\":33}"));
        s.drop_oldest(2);
        assert_eq!(s.len(), 3);
        assert!(s.buf.len() < 60, "compacted: {}", s.buf.len());
    }
}
