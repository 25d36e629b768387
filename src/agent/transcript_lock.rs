//! The runner's per-transcript write lock (`<file>.lock`, upstream `acquireSessionWriteLock`)
//! and the ISO-8601 parsing shared by the transcript modules.

use serde_json::{json, Value};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The runner's per-transcript write lock (upstream `acquireSessionWriteLock`): `<file>.lock`
/// created with O_EXCL holding `{"pid","createdAt"}`, removed on drop. A lock whose owner is dead
/// or older than 30 minutes is taken over.
#[derive(Debug)]
pub struct WriteLock {
    path: PathBuf,
}

const WRITE_LOCK_STALE_MS: u64 = 30 * 60 * 1000;

impl WriteLock {
    /// Waits up to `timeout` (upstream: 10 s), backing off 50 ms per attempt up to 1 s. Fails
    /// with `session file locked (timeout <ms>ms): pid=<pid> <lock path>`.
    pub fn acquire(transcript: &Path, timeout: std::time::Duration) -> io::Result<WriteLock> {
        let path = lock_path_for(transcript);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let started = std::time::Instant::now();
        let mut attempt: u64 = 0;
        while started.elapsed() < timeout {
            attempt += 1;
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let body =
                        json!({"pid": std::process::id(), "createdAt": crate::util::iso_now()});
                    let text = crate::config::json5::to_pretty_string(&body);
                    f.write_all(text.trim_end().as_bytes())?;
                    return Ok(WriteLock { path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if write_lock_is_dead(&path) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    std::thread::sleep(std::time::Duration::from_millis((50 * attempt).min(1000)));
                }
                Err(e) => return Err(e),
            }
        }
        let owner = read_lock_pid(&path).map_or("unknown".to_string(), |p| format!("pid={p}"));
        let msg = format!(
            "session file locked (timeout {}ms): {owner} {}",
            timeout.as_millis(),
            path.display()
        );
        Err(io::Error::new(io::ErrorKind::WouldBlock, msg))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Upstream resolves the directory's real path so aliases of one file share a lock.
fn lock_path_for(transcript: &Path) -> PathBuf {
    let dir = transcript.parent().unwrap_or(Path::new("."));
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = transcript
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let mut lock = dir.join(name).into_os_string();
    lock.push(".lock");
    PathBuf::from(lock)
}

fn read_lock_payload(path: &Path) -> Option<(u32, String)> {
    let v: Value = serde_json::from_str(&fs::read_to_string(path).ok()?).ok()?;
    let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
    let created = v.get("createdAt")?.as_str()?.to_string();
    Some((pid, created))
}

fn read_lock_pid(path: &Path) -> Option<u32> {
    read_lock_payload(path).map(|(pid, _)| pid)
}

/// Unreadable payload, unparseable/old `createdAt`, or a pid that no longer exists.
fn write_lock_is_dead(path: &Path) -> bool {
    let Some((pid, created)) = read_lock_payload(path) else {
        return true;
    };
    let stale = parse_iso_ms(&created)
        .is_none_or(|at| crate::util::now_ms().saturating_sub(at) > WRITE_LOCK_STALE_MS);
    stale || !pid_alive(pid)
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    // EPERM means it exists under another user; upstream would steal that lock, we do not.
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// `YYYY-MM-DDTHH:MM:SS(.fff)Z` to Unix ms (`Date.parse` for the ISO strings pi writes).
pub fn parse_iso_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = s.get(19..s.len() - 1)?;
    let ms = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()) => {
            let f3: String = f.chars().chain("000".chars()).take(3).collect();
            f3.parse::<i64>().ok()?
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let total = ((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms;
    u64::try_from(total).ok()
}

/// Howard Hinnant's days-from-civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        let ms = 1_769_508_003_042;
        assert_eq!(parse_iso_ms(&crate::util::iso_from_ms(ms)), Some(ms));
        assert_eq!(
            parse_iso_ms("2026-01-27T10:00:03Z"),
            Some(1_769_508_003_000)
        );
        assert_eq!(
            parse_iso_ms("2026-01-27T10:00:03.5Z"),
            Some(1_769_508_003_500)
        );
        assert_eq!(parse_iso_ms("2026-01-27 10:00:03Z"), None);
        assert_eq!(parse_iso_ms("garbage"), None);
    }

    #[test]
    fn lock_path_sits_beside_the_transcript() {
        let p = lock_path_for(Path::new("/nonexistent-dir/abc.jsonl"));
        assert_eq!(p, PathBuf::from("/nonexistent-dir/abc.jsonl.lock"));
    }
}
