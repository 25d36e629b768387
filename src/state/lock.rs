//! The single-instance gateway lock: an advisory `flock` held by the kernel for as long as the
//! process lives. A killed or crashed gateway releases it automatically, so a container restart on
//! the same volume always starts; there is never a stale lock file to delete.
//!
//! Location and name follow upstream (`gateway.<sha1(configPath)[0..8]>.lock`), but in the state
//! dir, which is where Fly users look (the guide's `rm -f /data/gateway.*.lock`). The file's
//! content (`{"pid","createdAt","configPath"}`) is informational; a leftover upstream-style file
//! is simply reopened and locked.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A held lock; dropping it (or process death) releases it.
#[derive(Debug)]
pub struct GatewayLock {
    file: File,
    pub path: PathBuf,
}

#[derive(Debug)]
pub enum LockError {
    /// Another live gateway holds the lock.
    AlreadyRunning {
        pid: Option<u32>,
        path: PathBuf,
    },
    Io(io::Error, PathBuf),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::AlreadyRunning {
                pid: Some(pid),
                path,
            } => {
                write!(
                    f,
                    "gateway already running (pid {pid}); lock held on {}",
                    path.display()
                )
            }
            LockError::AlreadyRunning { pid: None, path } => {
                write!(
                    f,
                    "gateway already running; lock held on {}",
                    path.display()
                )
            }
            LockError::Io(e, path) => {
                write!(f, "failed to open gateway lock {}: {e}", path.display())
            }
        }
    }
}

/// The lock file path for a config path.
pub fn lock_path(state_dir: &Path, config_path: &Path) -> PathBuf {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(config_path.to_string_lossy().as_bytes());
    let hash = crate::util::hex(&digest);
    state_dir.join(format!("gateway.{}.lock", &hash[..8]))
}

/// Takes the lock without waiting.
pub fn acquire(state_dir: &Path, config_path: &Path) -> Result<GatewayLock, LockError> {
    let path = lock_path(state_dir, config_path);
    let io_err = |e| LockError::Io(e, path.clone());
    super::mkdir_private(state_dir).map_err(io_err)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(LockError::AlreadyRunning {
                pid: read_pid(&mut file),
                path,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e, path)),
    }
    write_owner(&mut file, config_path).map_err(io_err)?;
    Ok(GatewayLock { file, path })
}

fn write_owner(file: &mut File, config_path: &Path) -> io::Result<()> {
    let body = serde_json::json!({
        "pid": std::process::id(),
        "createdAt": crate::util::iso_now(),
        "configPath": config_path.to_string_lossy(),
    });
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(body.to_string().as_bytes())?;
    file.sync_all()
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.read_to_string(&mut s).ok()?;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    v.get("pid")?.as_u64().map(|p| p as u32)
}

impl Drop for GatewayLock {
    fn drop(&mut self) {
        // Empty the owner record first so nobody reads a dead pid; the kernel drops the lock on close.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}
