//! The in-process copy of each parsed `sessions.json`, keyed by path and checked against the
//! file's identity (device, inode, length, mtime) on every use. Turns stop re-reading and
//! re-parsing a store of hundreds of sessions, yet a write by any other process (upstream's
//! CLI on the same state dir) changes the identity and is read afresh. Upstream keeps a similar
//! copy for 45 s without checking the file; this one is never stale.
//!
//! Readers stamp the file (and open it when their copy is not current) under the cache's lock,
//! and this process's saves rename their new version into place under it too, so a reader
//! never sees the new file without its copy, which would cost it a full parse. A save edits the copy in place (under the copy's
//! write lock, with `sessions.json.lock` held) rather than a clone of it, so an update costs
//! the change and the serialisation, not a copy of every session: in-process readers see the
//! change from then on, a moment before the file has it, and a failed save (or a panic while
//! editing) forgets the copy so the file is parsed afresh.

use parking_lot::{Mutex, RwLock};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::atomic::Staged;
use crate::state::stamp::Stamp;

/// One store per agent; a gateway with more agents than this re-reads the least recent.
const MAX_STORES: usize = 16;
/// A copy unused this long is let go (`expire_idle`, from the gateway's tick): a parsed store
/// takes about 11 times its file's size (1.1 MiB for 200 sessions), plus once more for the
/// entries' text once this process has saved it. Upstream's copy lives 45 s.
const IDLE: Duration = Duration::from_secs(60);

pub use super::write::Parsed;
/// One parsed store, shared by the cache and its readers; edited in place by saves.
pub type Shared = Arc<RwLock<Parsed>>;

struct Cached {
    path: PathBuf,
    stamp: Stamp,
    store: Shared,
    /// Saved by this process (normalised), rather than parsed from another writer's file.
    saved: bool,
    used: Instant,
}

/// Most recently used last. A few entries at most, so a Vec beats a map.
static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());

pub enum Lookup {
    /// The copy of the file as it is, and whether this process saved it.
    Hit(Shared, bool),
    /// Not cached (or changed): the opened file, to parse, and its stamp for `put_parsed`.
    Miss(File, Stamp),
    /// No file, or not a regular one (a FIFO, a device, a directory), or unreadable.
    Missing,
}

pub fn lookup(path: &Path) -> Lookup {
    let mut cache = CACHE.lock();
    // A FIFO put in the store's place must not hold the lock (and every turn) until a writer
    // appears, nor a device (an endless `/dev/zero`) fill memory: regular files only. A stat
    // settles the common case (our own copy is current) without opening the file.
    let stamp = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Stamp::of(&meta),
        _ => return Lookup::Missing,
    };
    let current = cache
        .iter()
        .position(|c| c.path == path && c.stamp == stamp);
    let Some(i) = current else {
        // Opened now; the stamp is the opened version's, whatever replaced the file meanwhile.
        return match crate::util::open_regular(path) {
            Ok((file, meta)) => Lookup::Miss(file, Stamp::of(&meta)),
            Err(_) => Lookup::Missing,
        };
    };
    let mut hit = cache.remove(i);
    hit.used = Instant::now();
    let found = Lookup::Hit(hit.store.clone(), hit.saved);
    cache.push(hit);
    found
}

/// Caches a store parsed from the file version `stamp`, unless a newer version replaced it
/// while it was being parsed.
pub fn put_parsed(path: &Path, stamp: Stamp, store: Shared) {
    let mut cache = CACHE.lock();
    if Stamp::of_path(path) != Some(stamp) {
        return;
    }
    let old = insert(&mut cache, path, stamp, store, false);
    drop(cache);
    drop(old);
}

/// Puts this process's new version in place (the rename) and caches it, in one step.
pub fn commit_saved(path: &Path, staged: Staged, store: Shared) -> io::Result<()> {
    let mut cache = CACHE.lock();
    if let Err(e) = staged.commit() {
        let old = take(&mut cache, path);
        drop(cache);
        drop(old);
        return Err(e);
    }
    let old = match Stamp::of_path(path) {
        Some(stamp) => insert(&mut cache, path, stamp, store, true),
        None => take(&mut cache, path),
    };
    drop(cache);
    drop(old);
    Ok(())
}

/// Returns what it replaced or evicted, for the caller to free after unlocking (a store of
/// hundreds of sessions takes a while to free).
fn insert(
    cache: &mut Vec<Cached>,
    path: &Path,
    stamp: Stamp,
    store: Shared,
    saved: bool,
) -> Vec<Cached> {
    let mut old = take(cache, path);
    if cache.len() >= MAX_STORES {
        old.push(cache.remove(0));
    }
    cache.push(Cached {
        path: path.to_path_buf(),
        stamp,
        store,
        saved,
        used: Instant::now(),
    });
    old
}

/// Drops the copy of `path`: it may be ahead of the file (a save that failed or was cut short).
pub fn forget(path: &Path) {
    let old = take(&mut CACHE.lock(), path);
    drop(old);
}

/// Lets go of copies unused longer than `IDLE`; true if any went.
pub fn expire_idle() -> bool {
    expire_unused_for(IDLE)
}

fn expire_unused_for(idle: Duration) -> bool {
    // Collected under the lock, freed after it.
    let gone: Vec<Cached> = CACHE
        .lock()
        .extract_if(.., |c| c.used.elapsed() >= idle)
        .collect();
    !gone.is_empty()
}

fn take(cache: &mut Vec<Cached>, path: &Path) -> Vec<Cached> {
    cache.extract_if(.., |c| c.path == path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};
    use std::fs;

    fn hit(path: &Path) -> bool {
        matches!(lookup(path), Lookup::Hit(..))
    }

    #[test]
    fn a_rewritten_file_is_not_served_from_the_cache() {
        let dir = std::env::temp_dir().join(format!("moltbot-cache-{}", crate::util::uuid_v4()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sessions.json");
        fs::write(&path, "{}").unwrap();
        assert!(!hit(&path));
        put_parsed(&path, Stamp::of_path(&path).unwrap(), Shared::default());
        assert!(hit(&path));
        // Same length, new content, by rename as every writer does.
        fs::write(dir.join("tmp"), "[]").unwrap();
        fs::rename(dir.join("tmp"), &path).unwrap();
        assert!(!hit(&path));
        // This process's save is cached as it lands.
        let staged = crate::state::atomic::stage_private_unsynced(&path, b"{\"k\": {}}").unwrap();
        let store = Shared::default();
        store
            .write()
            .sessions
            .insert("k".into(), Value::Object(Map::new()));
        commit_saved(&path, staged, store).unwrap();
        assert!(
            matches!(lookup(&path), Lookup::Hit(s, true) if s.read().sessions.contains_key("k"))
        );
        // An idle copy is let go; the file is parsed again next time.
        assert!(expire_unused_for(Duration::ZERO));
        assert!(!hit(&path));
        let _ = fs::remove_dir_all(&dir);
    }
}
