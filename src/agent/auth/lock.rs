//! The `proper-lockfile` directory lock upstream takes around `auth-profiles.json` updates, so
//! this gateway and a Node gateway on the same state dir exclude each other: the lock is the
//! directory `<realpath>.lock` (mkdir is atomic), its mtime is the heartbeat, a lock whose mtime
//! is older than `stale` is removed and retaken, and a held lock is retried with backoff.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// `AUTH_STORE_LOCK_OPTIONS`: 10 retries, factor 2, 100 ms → 10 s, randomised, stale 30 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockOptions {
    pub retries: u32,
    pub factor: f64,
    pub min_timeout_ms: u64,
    pub max_timeout_ms: u64,
    pub randomize: bool,
    pub stale_ms: u64,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            retries: 10,
            factor: 2.0,
            min_timeout_ms: 100,
            max_timeout_ms: 10_000,
            randomize: true,
            stale_ms: 30_000,
        }
    }
}

impl LockOptions {
    /// proper-lockfile never uses a stale threshold below 2 s.
    fn stale(&self) -> Duration {
        Duration::from_millis(self.stale_ms.max(2000))
    }

    /// The `retry` package's timeouts: `round(rand[1,2) × min × factor^i)` capped at max,
    /// sorted ascending.
    fn timeouts(&self) -> Vec<u64> {
        let mut out: Vec<u64> = (0..self.retries)
            .map(|i| {
                let random = if self.randomize {
                    1.0 + unit_random()
                } else {
                    1.0
                };
                let t = (random * self.min_timeout_ms as f64 * self.factor.powi(i as i32)).round();
                (t as u64).min(self.max_timeout_ms)
            })
            .collect();
        out.sort_unstable();
        out
    }
}

fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    crate::util::random_bytes(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// A held lock; dropping it removes the lock directory.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    stale: Duration,
    refreshed: Instant,
}

impl DirLock {
    /// Locks `file` (which must exist: the lock sits beside its real path, as upstream's
    /// `realpath: true`). Blocks through the retry schedule; the last error is returned.
    pub fn acquire(file: &Path, opts: &LockOptions) -> io::Result<DirLock> {
        let real = std::fs::canonicalize(file)?;
        let mut name = real.into_os_string();
        name.push(".lock");
        let dir = PathBuf::from(name);
        let mut waits = opts.timeouts().into_iter();
        loop {
            match try_acquire(&dir, opts.stale()) {
                Ok(()) => {
                    return Ok(DirLock {
                        dir,
                        stale: opts.stale(),
                        refreshed: Instant::now(),
                    })
                }
                Err(err) => match waits.next() {
                    Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
                    None => return Err(err),
                },
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Sets the lock's mtime to now, the heartbeat other processes judge staleness by.
    pub fn touch(&mut self) -> io::Result<()> {
        std::fs::File::open(&self.dir)?.set_modified(SystemTime::now())?;
        self.refreshed = Instant::now();
        Ok(())
    }

    /// Touches the lock when half the stale window has passed since the last refresh (the
    /// interval proper-lockfile's timer uses), so a long critical section never looks stale.
    pub fn refresh_if_due(&mut self) -> io::Result<()> {
        if self.refreshed.elapsed() >= self.stale / 2 {
            self.touch()?;
        }
        Ok(())
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("could not remove lock {}: {e}", self.dir.display());
            }
        }
    }
}

fn locked() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "Lock file is already being held")
}

/// One attempt: mkdir; on EEXIST a stale lock is removed and mkdir tried once more.
fn try_acquire(dir: &Path, stale: Duration) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    let mtime = match std::fs::metadata(dir).and_then(|m| m.modified()) {
        Ok(t) => t,
        // Released meanwhile: retry without the stale check, as proper-lockfile does.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return mkdir_or_locked(dir),
        Err(e) => return Err(e),
    };
    let age = SystemTime::now().duration_since(mtime).unwrap_or_default();
    if age <= stale {
        return Err(locked());
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    mkdir_or_locked(dir)
}

fn mkdir_or_locked(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(locked()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> LockOptions {
        LockOptions {
            retries: 2,
            min_timeout_ms: 5,
            max_timeout_ms: 10,
            randomize: false,
            ..LockOptions::default()
        }
    }

    fn temp_file() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("mb-lock-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("auth-profiles.json");
        std::fs::write(&file, "{}").unwrap();
        (dir, file)
    }

    #[test]
    fn second_holder_waits_and_gives_up() {
        let (dir, file) = temp_file();
        let held = DirLock::acquire(&file, &fast()).unwrap();
        assert!(held.path().is_dir());
        assert!(held
            .path()
            .to_string_lossy()
            .ends_with("auth-profiles.json.lock"));
        let err = DirLock::acquire(&file, &fast()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        assert!(!dir.join("auth-profiles.json.lock").exists());
        DirLock::acquire(&file, &fast()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_locks_are_taken_over() {
        let (dir, file) = temp_file();
        let lock_dir = dir.join("auth-profiles.json.lock");
        std::fs::create_dir(&lock_dir).unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::open(&lock_dir)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut lock = DirLock::acquire(&file, &fast()).unwrap();
        lock.touch().unwrap();
        lock.refresh_if_due().unwrap();
        drop(lock);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn backoff_schedule_matches_retry_package() {
        let o = LockOptions {
            randomize: false,
            ..LockOptions::default()
        };
        assert_eq!(
            o.timeouts(),
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        let r = LockOptions::default().timeouts();
        assert!(r
            .iter()
            .zip(o.timeouts())
            .all(|(a, b)| *a >= b && *a <= (2 * b).min(10_000)));
    }
}
