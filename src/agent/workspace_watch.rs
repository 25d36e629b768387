//! The bootstrap files' stamps without a `stat` per file on every turn: each workspace directory
//! gets an inotify watch, and while it reports nothing (and the stamps are younger than
//! `MAX_AGE`) the stamps taken last time still hold. Any notice at all, a symlinked file, a
//! directory inotify cannot watch, or an old stamp means the files are stat'ed again, so an
//! edit is seen on the next turn as upstream's per-turn reads see it.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::state::stamp::Stamp;

/// Changes inotify cannot see (a network file system, a bind mount edited from outside) are
/// found by stat'ing again at least this often.
const MAX_AGE: Duration = Duration::from_secs(1);
/// Workspaces watched at once; one more replaces the least recently used.
const MAX_WATCHED: usize = 8;

/// One stamp per path, `None` for an absent one.
pub type Stamps = Vec<Option<Stamp>>;

struct Watched {
    dir: PathBuf,
    watch: Option<DirWatch>,
    /// Some file was a symlink when last stat'ed.
    linked: bool,
    stamps: Stamps,
    taken: Instant,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

/// The stamps of `paths`, all entries of `dir`: from memory while nothing in `dir` changed.
pub fn stamps(dir: &Path, paths: &[PathBuf]) -> Stamps {
    let mut watched = WATCHED.lock();
    let mut linked_before = false;
    if let Some(i) = watched.iter().position(|w| w.dir == dir) {
        let w = watched.remove(i);
        let fresh = w.taken.elapsed() < MAX_AGE && w.stamps.len() == paths.len();
        if fresh && w.watch.as_ref().is_some_and(DirWatch::unchanged) {
            let stamps = w.stamps.clone();
            watched.push(w);
            return stamps;
        }
        linked_before = w.linked;
    }
    // The watch is armed before the stats, so a change made after them is noticed next time;
    // a symlinked file's target can change without a notice here, so it is not armed for one.
    let watch = if linked_before {
        None
    } else {
        DirWatch::new(dir)
    };
    let (stamps, linked) = stat_all(paths);
    if watched.len() >= MAX_WATCHED {
        watched.remove(0);
    }
    watched.push(Watched {
        dir: dir.to_path_buf(),
        watch: watch.filter(|_| !linked),
        linked,
        stamps: stamps.clone(),
        taken: Instant::now(),
    });
    stamps
}

/// Each path's stamp (of its target, for a symlink), and whether any is a symlink.
fn stat_all(paths: &[PathBuf]) -> (Stamps, bool) {
    let mut linked = false;
    let stamps = paths
        .iter()
        .map(|p| {
            let meta = std::fs::symlink_metadata(p).ok()?;
            if meta.file_type().is_symlink() {
                linked = true;
                return Stamp::of_path(p);
            }
            Some(Stamp::of(&meta))
        })
        .collect();
    (stamps, linked)
}

/// An inotify instance watching one directory's entries (not its subdirectories' contents).
struct DirWatch {
    fd: std::os::fd::OwnedFd,
}

impl DirWatch {
    /// `None` where inotify is unavailable (its limits reached, an unsupported file system).
    fn new(dir: &Path) -> Option<DirWatch> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: plain syscalls; the fd is owned (and closed) by `OwnedFd` from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let mask = libc::IN_MODIFY
            | libc::IN_ATTRIB
            | libc::IN_CLOSE_WRITE
            | libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF;
        use std::os::fd::AsRawFd;
        // SAFETY: `path` is a valid C string for the duration of the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
        (wd >= 0).then_some(DirWatch { fd })
    }

    /// True if no notice arrived since the watch began (reads, without blocking, what is
    /// queued: a watch that has noticed anything is replaced, never asked again).
    fn unchanged(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 512];
        // SAFETY: reads into a local buffer of the given length.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("moltbot-ww-{}", crate::util::uuid_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_watch_notices_writes_creations_and_removals_in_its_directory_only() {
        let dir = temp_dir();
        fs::write(dir.join("AGENTS.md"), "a").unwrap();
        fs::create_dir_all(dir.join("sub")).unwrap();
        let changed_by = |change: &dyn Fn()| {
            let w = DirWatch::new(&dir).expect("inotify");
            assert!(w.unchanged(), "nothing yet");
            change();
            !w.unchanged()
        };
        let append = || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(dir.join("AGENTS.md"))
                .unwrap();
            f.write_all(b"b").unwrap();
        };
        assert!(changed_by(&append), "an append in place");
        assert!(changed_by(&|| fs::write(dir.join("SOUL.md"), "s").unwrap()));
        assert!(changed_by(&|| fs::remove_file(dir.join("SOUL.md")).unwrap()));
        let rename = || fs::rename(dir.join("AGENTS.md"), dir.join("AGENTS.old")).unwrap();
        assert!(changed_by(&rename));
        let read = || drop(fs::read(dir.join("AGENTS.old")).unwrap());
        assert!(!changed_by(&read), "reading is not a change");
        let nested = || fs::write(dir.join("sub").join("x.md"), "x").unwrap();
        assert!(
            !changed_by(&nested),
            "a subdirectory's files are not watched"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stamps_come_from_memory_until_something_changes() {
        let dir = temp_dir();
        let paths = vec![dir.join("AGENTS.md"), dir.join("MISSING.md")];
        fs::write(&paths[0], "one").unwrap();
        let first = stamps(&dir, &paths);
        assert!(first[0].is_some() && first[1].is_none());
        assert_eq!(stamps(&dir, &paths), first);
        // Same length, so only the mtime (or a notice) tells; the notice is what is checked.
        fs::write(&paths[0], "two").unwrap();
        let second = stamps(&dir, &paths);
        assert_eq!(second[0], Stamp::of_path(&paths[0]));
        fs::write(&paths[1], "now here").unwrap();
        assert!(stamps(&dir, &paths)[1].is_some(), "a created file is seen");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlinked_file_is_stated_every_time() {
        let dir = temp_dir();
        let elsewhere = temp_dir();
        let target = elsewhere.join("rules.md");
        fs::write(&target, "one").unwrap();
        let link = dir.join("AGENTS.md");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let paths = vec![link];
        let first = stamps(&dir, &paths);
        assert_eq!(first[0], Stamp::of_path(&target), "the target's stamp");
        // The target's directory is not watched: no notice reaches this workspace's watch.
        fs::write(&target, "one, then more").unwrap();
        assert_eq!(stamps(&dir, &paths)[0], Stamp::of_path(&target));
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&elsewhere);
    }
}
