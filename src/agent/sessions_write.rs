//! The text of `sessions.json` as upstream writes it (`JSON.stringify(store, null, 2)`), one
//! entry at a time: each entry's text is kept with the in-process copy, so a save that changed
//! one session serialises that one and copies the others' text instead of serialising hundreds.

use serde_json::{Map, Value};

pub type Store = Map<String, Value>;

/// A parsed store and, once this process has written it, each entry's text in file order.
#[derive(Default)]
pub struct Parsed {
    pub sessions: Store,
    /// `"  \"key\": {…}"` per entry, aligned with `sessions`; only trusted when the lengths
    /// agree and the edit says which entry it touched.
    segments: Vec<Box<str>>,
}

/// Where the one entry an edit may change was before it: its index and the store's length.
pub struct Before {
    key: String,
    index: Option<usize>,
    len: usize,
}

impl Before {
    pub fn of(store: &Store, key: &str) -> Before {
        Before {
            key: key.to_string(),
            index: store.keys().position(|k| k == key),
            len: store.len(),
        }
    }
}

impl Parsed {
    pub fn new(sessions: Store) -> Parsed {
        Parsed {
            sessions,
            segments: Vec::new(),
        }
    }

    /// The file's text after an edit. `touched`: the one entry the edit may have changed (set,
    /// added or removed; the caller's promise), taken before it; that entry alone is serialised
    /// again when the kept texts match the store as it was. Otherwise every entry is.
    pub fn render(&mut self, touched: Option<Before>) -> String {
        let patched = touched.is_some_and(|before| self.patch(&before));
        if !patched {
            self.segments = self.sessions.iter().map(|(k, v)| segment(k, v)).collect();
        }
        self.join()
    }

    fn patch(&mut self, before: &Before) -> bool {
        if self.segments.len() != before.len {
            return false;
        }
        let len = self.sessions.len();
        // serde_json's map has no index lookup; a scan of the keys is cheap next to serialising.
        let now = self
            .sessions
            .iter()
            .enumerate()
            .find(|(_, (k, _))| **k == before.key);
        match (before.index, now) {
            (Some(i), Some((j, (k, v)))) if i == j && len == before.len => {
                self.segments[i] = segment(k, v);
            }
            (None, Some((j, (k, v)))) if j == before.len && len == before.len + 1 => {
                self.segments.push(segment(k, v));
            }
            (Some(i), None) if len + 1 == before.len => {
                self.segments.remove(i);
            }
            (None, None) if len == before.len => {}
            _ => return false,
        }
        true
    }

    fn join(&self) -> String {
        if self.segments.is_empty() {
            return "{}".to_string();
        }
        let size: usize = self.segments.iter().map(|s| s.len() + 2).sum();
        let mut out = String::with_capacity(size + 4);
        out.push_str("{\n");
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(s);
        }
        out.push_str("\n}");
        out
    }
}

/// One entry as it appears at depth 1 of the pretty output, by the config writer's
/// `JSON.stringify(…, null, 2)` (numbers as JavaScript prints them, `1e+21` included).
fn segment(key: &str, value: &Value) -> Box<str> {
    let mut text = String::new();
    crate::config::json5::push_pretty_member(&mut text, key, value);
    text.into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(v: Value) -> Store {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn expected(p: &Parsed) -> String {
        serde_json::to_string_pretty(&p.sessions).unwrap()
    }

    #[test]
    fn entry_by_entry_text_equals_the_whole_pretty_form() {
        let mut p = Parsed::new(store(json!({
            "agent:main:main": {"sessionId": "a", "updatedAt": 1, "origin": {"label": "x\ny \"q\""},
                "empty": {}, "list": [], "nested": [{"a": [1, 2.5, null, true]}]},
            "k\u{e9}y \"2\"": {"sessionId": "b", "updatedAt": 2},
        })));
        assert_eq!(p.render(None), expected(&p));
        assert_eq!(Parsed::default().render(None), "{}");
        // Numbers as JavaScript prints them, where serde_json's form differs.
        let mut p = Parsed::new(store(json!({"k": {"big": 1e21, "small": 1e-7, "n": -3}})));
        let js = crate::config::json5::to_pretty_string(&Value::Object(p.sessions.clone()));
        assert_eq!(p.render(None), js.trim_end());
        assert!(js.contains("\"big\": 1e+21"), "{js}");
    }

    #[test]
    fn one_changed_entry_is_patched_in_place_added_or_removed() {
        let mut p = Parsed::new(store(json!({"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}})));
        p.render(None);
        type Edit = fn(&mut Store);
        let edits: [(&str, Edit); 4] = [
            ("b", |s| {
                drop(s.insert("b".into(), json!({"n": 20, "x": [1]})))
            }),
            ("d", |s| drop(s.insert("d".into(), json!({"n": 4})))),
            ("a", |s| drop(s.shift_remove("a"))),
            ("zz", |_| {}),
        ];
        for (key, edit) in edits {
            let before = Before::of(&p.sessions, key);
            edit(&mut p.sessions);
            assert_eq!(p.render(Some(before)), expected(&p), "after editing {key}");
        }
        // Texts kept for another version of the store are not trusted.
        let before = Before::of(&p.sessions, "b");
        p.segments.pop();
        p.sessions.insert("b".into(), json!(7));
        assert_eq!(p.render(Some(before)), expected(&p));
    }
}
