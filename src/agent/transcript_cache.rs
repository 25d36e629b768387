//! Transcripts parked by finished turns, still parsed, so a session's next turn continues
//! from memory instead of re-reading and re-parsing a file that grows with every turn. A
//! parked copy is handed out only while the file is exactly as that copy last wrote it (same
//! length, same stamp); anything else (an upstream process appending, a reset archiving the
//! file) sends the next turn back to the disk.

use parking_lot::Mutex;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use super::{Disk, Transcript};
use crate::state::stamp::Stamp;

/// Bounds on what stays parked: copies hold the parsed entries (a few times the file size).
const MAX_PARKED: usize = 16;
const MAX_PARKED_BYTES: u64 = 2 * 1024 * 1024;
/// A transcript larger than this is parsed again by each turn rather than kept.
const MAX_ONE: u64 = 512 * 1024;

static PARKED: Mutex<Vec<(Stamp, Transcript)>> = Mutex::new(Vec::new());

/// The parked copy of `path`, if the file has not changed since it was parked.
pub(super) fn take(path: &Path) -> Option<Transcript> {
    let mut parked = PARKED.lock();
    let i = parked.iter().position(|(_, t)| t.path == path)?;
    let (stamp, t) = parked.remove(i);
    (Stamp::of_path(path) == Some(stamp)).then_some(t)
}

fn park(mut t: Transcript) {
    if t.disk != Disk::Flushed || t.disk_len > MAX_ONE {
        return;
    }
    // Only a file this copy wrote last: its length is what the copy knows it to be.
    let Ok(meta) = std::fs::metadata(&t.path) else {
        return;
    };
    if meta.len() != t.disk_len {
        return;
    }
    let stamp = Stamp::of(&meta);
    // As a fresh parse would have it: the leaf is the file's last entry.
    t.leaf = t.entries.len().checked_sub(1);
    let mut parked = PARKED.lock();
    parked.retain(|(_, p)| p.path != t.path);
    parked.push((stamp, t));
    let mut total: u64 = parked.iter().map(|(_, p)| p.disk_len).sum();
    while parked.len() > MAX_PARKED || total > MAX_PARKED_BYTES {
        let (_, oldest) = parked.remove(0);
        total -= oldest.disk_len;
    }
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
