//! Transcripts parked by finished turns, still parsed, so a session's next turn continues
//! from memory instead of re-reading and re-parsing a file that grows with every turn. A
//! parked copy is handed out only while the file is exactly as that copy last wrote it (same
//! length, same stamp); anything else (an upstream process appending, a reset archiving the
//! file) sends the next turn back to the disk.

use parking_lot::Mutex;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Disk, Transcript};
use crate::state::stamp::Stamp;

/// Bounds on what stays parked. A parsed copy takes about 11 times its file's size in memory
/// (measured: a 140 KiB, 400-message transcript holds 1.5 MiB), so at most ~4 MiB is parked.
const MAX_PARKED: usize = 16;
const MAX_PARKED_BYTES: u64 = 384 * 1024;
/// A transcript larger than this is parsed again by each turn rather than kept.
const MAX_ONE: u64 = 256 * 1024;
/// A copy no turn has taken for this long is let go (`expire_idle`, from the gateway's tick).
const IDLE: Duration = Duration::from_secs(120);

struct Parked {
    stamp: Stamp,
    at: Instant,
    transcript: Transcript,
}

static PARKED: Mutex<Vec<Parked>> = Mutex::new(Vec::new());

/// The parked copy of `path`, if the file has not changed since it was parked.
pub(super) fn take(path: &Path) -> Option<Transcript> {
    let mut parked = PARKED.lock();
    let i = parked.iter().position(|p| p.transcript.path == path)?;
    let p = parked.remove(i);
    drop(parked);
    (Stamp::of_path(path) == Some(p.stamp)).then_some(p.transcript)
}

/// Lets go of copies idle longer than `IDLE`; true if any went.
pub fn expire_idle() -> bool {
    expire_parked_for(IDLE)
}

fn expire_parked_for(idle: Duration) -> bool {
    // Collected under the lock, freed after it.
    let gone: Vec<Parked> = PARKED
        .lock()
        .extract_if(.., |p| p.at.elapsed() >= idle)
        .collect();
    !gone.is_empty()
}

fn park(mut t: Transcript) {
    if t.disk != Disk::Flushed || t.disk_len > MAX_ONE {
        return;
    }
    // Only a file this copy wrote last. The stamp taken from the open file after that write
    // needs no `stat`, and any later change (even one made before this park, by the
    // session's next turn) fails the check at `take`. A copy that never wrote checks the
    // file's length now instead.
    let stamp = match t.disk_stamp {
        Some(stamp) => stamp,
        None => match std::fs::metadata(&t.path) {
            Ok(meta) if meta.len() == t.disk_len => Stamp::of(&meta),
            _ => return,
        },
    };
    // As a fresh parse would have it: the leaf is the file's last entry.
    t.leaf = t.entries.len().checked_sub(1);
    let mut parked = PARKED.lock();
    let mut gone: Vec<Parked> = parked
        .extract_if(.., |p| p.transcript.path == t.path)
        .collect();
    parked.push(Parked {
        stamp,
        at: Instant::now(),
        transcript: t,
    });
    let mut total: u64 = parked.iter().map(|p| p.transcript.disk_len).sum();
    while parked.len() > MAX_PARKED || total > MAX_PARKED_BYTES {
        let oldest = parked.remove(0);
        total -= oldest.transcript.disk_len;
        gone.push(oldest);
    }
    drop(parked);
    // Freed after unlocking: a parsed transcript takes a while to free.
    drop(gone);
}

/// A turn's transcript, parked for the session's next turn when the turn lets go of it.
pub struct ParkOnDrop(Option<Transcript>);

impl ParkOnDrop {
    pub fn new(t: Transcript) -> ParkOnDrop {
        ParkOnDrop(Some(t))
    }
}

impl Deref for ParkOnDrop {
    type Target = Transcript;
    fn deref(&self) -> &Transcript {
        self.0.as_ref().expect("present until drop")
    }
}

impl DerefMut for ParkOnDrop {
    fn deref_mut(&mut self) -> &mut Transcript {
        self.0.as_mut().expect("present until drop")
    }
}

impl Drop for ParkOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            park(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flushed(path: &Path) -> Transcript {
        let mut t = Transcript::create_pending(path, "s", "/w", None);
        t.append_message(json!({"role": "user", "content": "hi", "timestamp": 1}))
            .unwrap();
        let reply = json!({"role": "assistant", "content": [{"type": "text", "text": "yo"}], "stopReason": "stop", "timestamp": 2});
        t.append_message(reply).unwrap();
        t
    }

    #[test]
    fn a_change_made_before_the_park_is_not_handed_out() {
        let dir = std::env::temp_dir().join(format!("moltbot-park-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.jsonl");
        let t = flushed(&path);
        // Rewritten in place by someone else before this copy is parked: same inode, same
        // length, a later mtime (past the file system's timestamp tick).
        std::thread::sleep(Duration::from_millis(30));
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"yo\"", "\"ya\"");
        std::fs::write(&path, text).unwrap();
        drop(ParkOnDrop::new(t));
        assert!(take(&path).is_none(), "the copy predates the file");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_parked_copy_is_handed_out_once_while_the_file_is_unchanged() {
        let dir = std::env::temp_dir().join(format!("moltbot-park-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.jsonl");
        drop(ParkOnDrop::new(flushed(&path)));
        assert!(take(&path).is_some_and(|t| t.entries().len() == 2));
        assert!(take(&path).is_none(), "taken, not copied");
        // Another writer appends: the parked copy no longer matches.
        drop(ParkOnDrop::new(flushed(&path)));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{}\n").unwrap();
        assert!(take(&path).is_none());
        // An idle copy is let go.
        drop(ParkOnDrop::new(flushed(&dir.join("b.jsonl"))));
        assert!(expire_parked_for(Duration::ZERO));
        assert!(take(&dir.join("b.jsonl")).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
