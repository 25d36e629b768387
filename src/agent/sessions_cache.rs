//! The in-process copy of each parsed `sessions.json`, keyed by path and checked against the
//! file's identity (device, inode, length, mtime) on every use. Turns stop re-reading and
//! re-parsing a store of hundreds of sessions, yet a write by any other process (upstream's
//! CLI on the same state dir) changes the identity and is read afresh. Upstream keeps a similar
//! copy for 45 s without checking the file; this one is never stale.

use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::state::stamp::Stamp;

/// One store per agent; a gateway with more agents than this re-reads the least recent.
const MAX_STORES: usize = 16;

pub type Store = Map<String, Value>;

struct Cached {
    path: PathBuf,
    stamp: Stamp,
    store: Arc<Store>,
}

/// Most recently used last. A few entries at most, so a Vec beats a map.
static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());

/// The cached store, if it is the version of the file with this stamp.
pub fn get(path: &Path, stamp: Stamp) -> Option<Arc<Store>> {
    let mut cache = CACHE.lock();
    let i = cache.iter().position(|c| c.path == path)?;
    if cache[i].stamp != stamp {
        cache.remove(i);
        return None;
    }
    let hit = cache.remove(i);
    let store = hit.store.clone();
    cache.push(hit);
    Some(store)
}

/// Records `store` as the content of the file version `stamp`.
pub fn put(path: &Path, stamp: Stamp, store: Arc<Store>) {
    let mut cache = CACHE.lock();
    cache.retain(|c| c.path != path);
    if cache.len() >= MAX_STORES {
        cache.remove(0);
    }
    cache.push(Cached {
        path: path.to_path_buf(),
        stamp,
        store,
    });
}

/// Forgets the path (a write whose result could not be stamped).
pub fn forget(path: &Path) {
    CACHE.lock().retain(|c| c.path != path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_rewritten_file_is_not_served_from_the_cache() {
        let dir = std::env::temp_dir().join(format!("moltbot-cache-{}", crate::util::uuid_v4()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sessions.json");
        fs::write(&path, "{}").unwrap();
        let first = Stamp::of_path(&path).unwrap();
        put(&path, first, Arc::new(Store::new()));
        assert!(get(&path, first).is_some());
        // Same length, new content, by rename as every writer does.
        fs::write(dir.join("tmp"), "[]").unwrap();
        fs::rename(dir.join("tmp"), &path).unwrap();
        let second = Stamp::of_path(&path).unwrap();
        assert_ne!(first, second);
        assert!(get(&path, second).is_none());
        assert!(get(&path, first).is_none(), "a mismatch evicts the entry");
        let _ = fs::remove_dir_all(&dir);
    }
}
