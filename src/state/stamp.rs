//! A file version's identity (device, inode, length, mtime): what the in-process caches of
//! parsed state files compare before trusting their copy.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Every writer here replaces files by rename (a new inode); an in-place writer also changes
/// the length or the nanosecond mtime.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_ns: i64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
        }
    }

    /// `None` when the path does not exist or cannot be read.
    pub fn of_path(path: &Path) -> Option<Stamp> {
        fs::metadata(path).ok().map(|m| Stamp::of(&m))
    }
}
