//! The `sessions.json.lock` protocol shared with upstream (config-and-state.md §4.3): O_EXCL
//! lock file with `{"pid","startedAt"}`, 25 ms polling, 30 s staleness by mtime; plus an
//! in-process queue so threads of this gateway do not poll each other.

use super::StoreError;
use parking_lot::{Condvar, Mutex};
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

const LOCK_POLL: Duration = Duration::from_millis(25);
const LOCK_STALE: Duration = Duration::from_secs(30);

/// Both locks; the file lock is removed when this drops.
pub(super) struct StoreLock {
    file: FileLock,
    // Declared after `file` so the lock file is gone before the next thread gets in.
    _local: ProcessLock,
}

impl StoreLock {
    /// Threads of this process queue on a condvar first, so only one of them polls the file.
    pub(super) fn acquire(
        store: &Path,
        lock_path: &Path,
        timeout: Duration,
    ) -> Result<StoreLock, StoreError> {
        let local = ProcessLock::acquire(store);
        let file = acquire_file_lock(lock_path, timeout)?;
        Ok(StoreLock {
            _local: local,
            file,
        })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file.path);
    }
}

struct FileLock {
    path: PathBuf,
}

/// Stores held by some thread of this process; waiters sleep on the condvar.
static HELD: OnceLock<(Mutex<HashSet<PathBuf>>, Condvar)> = OnceLock::new();

struct ProcessLock {
    path: PathBuf,
}

impl ProcessLock {
    fn acquire(path: &Path) -> ProcessLock {
        let (held, cv) = HELD.get_or_init(Default::default);
        let mut set = held.lock();
        while set.contains(path) {
            cv.wait(&mut set);
        }
        set.insert(path.to_path_buf());
        ProcessLock {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        let (held, cv) = HELD.get_or_init(Default::default);
        held.lock().remove(&self.path);
        cv.notify_all();
    }
}

/// Upstream `withSessionStoreLock`: O_CREAT|O_EXCL `<store>.lock` holding `{"pid","startedAt"}`.
fn acquire_file_lock(lock_path: &Path, timeout: Duration) -> Result<FileLock, StoreError> {
    let dir = lock_path.parent().unwrap_or(Path::new("."));
    let started = Instant::now();
    // The directory is made only when the lock cannot be created without it (it exists on
    // every save but the first, and this runs twice per turn).
    let mut made_dir = false;
    loop {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock_path)
        {
            Ok(mut f) => {
                let payload = format!(
                    "{{\"pid\":{},\"startedAt\":{}}}",
                    std::process::id(),
                    crate::util::now_ms()
                );
                // Best effort, as upstream: the lock is the file's existence, not its content.
                let _ = f.write_all(payload.as_bytes());
                return Ok(FileLock {
                    path: lock_path.to_path_buf(),
                });
            }
            // No directory yet, or it vanished under us (tests delete temp dirs): make it and
            // retry, at once the first time.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir)?;
                if !std::mem::replace(&mut made_dir, true) {
                    continue;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if started.elapsed() > timeout {
                    return Err(StoreError::LockTimeout {
                        lock_path: lock_path.to_path_buf(),
                    });
                }
                if lock_is_stale(lock_path) && fs::remove_file(lock_path).is_ok() {
                    continue;
                }
            }
            Err(e) => return Err(StoreError::Io(e)),
        }
        if started.elapsed() > timeout {
            return Err(StoreError::LockTimeout {
                lock_path: lock_path.to_path_buf(),
            });
        }
        std::thread::sleep(LOCK_POLL);
    }
}

/// A crashed writer's lock: older than 30 s by mtime.
fn lock_is_stale(lock_path: &Path) -> bool {
    let Ok(modified) = fs::metadata(lock_path).and_then(|m| m.modified()) else {
        return false;
    };
    SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|age| age > LOCK_STALE)
}
