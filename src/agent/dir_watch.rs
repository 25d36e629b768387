//! Stamps of files a turn reads (a workspace's bootstrap files, an agent's credential stores)
//! without a `stat` per file on every turn: each directory gets an inotify watch, and while it
//! reports nothing (and the stamps are younger than `MAX_AGE`) the stamps taken last time
//! still hold. Any notice at all, a symlinked file, a directory inotify cannot watch, or an old
//! stamp means the files are stat'ed again, so an edit is seen on the next turn as upstream's
//! per-turn reads see it.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::state::stamp::Stamp;

/// Changes inotify cannot see (a network file system, a bind mount edited from outside) are
/// found by stat'ing again at least this often.
const MAX_AGE: Duration = Duration::from_secs(1);
/// Directories watched at once; one more replaces the least recently used.
const MAX_WATCHED: usize = 32;

/// One stamp per path, `None` for an absent one.
pub type Stamps = Vec<Option<Stamp>>;

/// One caller's files in one directory (two callers reading different files of the same
/// directory get an entry each, sharing the kernel's watch).
struct Watched {
    dir: PathBuf,
    paths: Vec<PathBuf>,
    /// Its watch in the process's inotify instance, if it has one.
    wd: Option<i32>,
    /// A notice arrived since the stamps were taken.
    changed: bool,
    /// Some file was a symlink when last stat'ed.
    linked: bool,
    stamps: Stamps,
    taken: Instant,
}

/// One inotify instance for the process, never closed: closing one waits for the kernel's
/// notifier grace period, which can take milliseconds. Workspaces get a watch each in it.
struct Watches {
    fd: Option<std::os::fd::OwnedFd>,
    dirs: Vec<Watched>,
}

static WATCHES: Mutex<Watches> = Mutex::new(Watches {
    fd: None,
    dirs: Vec::new(),
});

/// The stamps of `paths`, all entries of `dir`: from memory while nothing in `dir` changed.
pub fn stamps(dir: &Path, paths: &[PathBuf]) -> Stamps {
    let mut w = WATCHES.lock();
    w.read_notices();
    let i = match w.dirs.iter().position(|d| d.dir == dir && d.paths == paths) {
        Some(i) => i,
        None => w.add(dir, paths),
    };
    let mut entry = w.dirs.remove(i);
    let stale = entry.taken.elapsed() >= MAX_AGE;
    if stale || entry.wd.is_none() || entry.changed || entry.linked {
        // The watch is armed before the stats, so a change made after them is noticed next
        // time (a directory replaced since, or not watchable before, is watched anew).
        if entry.wd.is_none() {
            entry.wd = w.watch(dir);
        }
        let (stamps, linked) = stat_all(paths);
        entry.stamps = stamps;
        // A symlinked file's target can change without a notice in this directory.
        entry.linked = linked;
        entry.changed = false;
        entry.taken = Instant::now();
    }
    let stamps = entry.stamps.clone();
    w.dirs.push(entry);
    stamps
}

impl Watches {
    /// A new entry for `paths` in `dir` (the least recently used one goes when there are too
    /// many, and its watch with it unless another entry shares it).
    fn add(&mut self, dir: &Path, paths: &[PathBuf]) -> usize {
        if self.dirs.len() >= MAX_WATCHED {
            let old = self.dirs.remove(0);
            let shared = self.dirs.iter().any(|d| d.wd.is_some() && d.wd == old.wd);
            if let (Some(fd), Some(wd), false) = (&self.fd, old.wd, shared) {
                use std::os::fd::AsRawFd;
                // SAFETY: removes a watch of our own instance; an unknown wd only fails.
                unsafe { libc::inotify_rm_watch(fd.as_raw_fd(), wd) };
            }
        }
        self.dirs.push(Watched {
            dir: dir.to_path_buf(),
            paths: paths.to_vec(),
            wd: None,
            changed: true,
            linked: false,
            stamps: Vec::new(),
            taken: Instant::now(),
        });
        self.dirs.len() - 1
    }

    /// Watches `dir`'s entries; `None` where inotify is unavailable (its limits reached, an
    /// unsupported file system).
    fn watch(&mut self, dir: &Path) -> Option<i32> {
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::os::unix::ffi::OsStrExt;
        if self.fd.is_none() {
            // SAFETY: a plain syscall; the fd is owned by `OwnedFd` from here on.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            self.fd = Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        }
        let fd = self.fd.as_ref()?.as_raw_fd();
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: `path` is a valid C string for the duration of the call.
        let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), WATCH_MASK) };
        (wd >= 0).then_some(wd)
    }

    /// Takes the queued notices, without blocking: each marks its directory changed, and a
    /// directory deleted or moved away loses its watch (`IN_IGNORED` follows those). A queue
    /// that keeps filling (a directory written without pause) is read at most `MAX_READS`
    /// times; what is left unread then counts as a change everywhere, as an overflow does.
    fn read_notices(&mut self) {
        use std::os::fd::AsRawFd;
        const MAX_READS: usize = 16;
        let Some(fd) = self.fd.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let mut buf = [0u8; 4096];
        for _ in 0..MAX_READS {
            // SAFETY: reads into a local buffer of the given length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            if self.mark_changed(&buf[..n as usize]) {
                break;
            }
        }
        self.dirs.iter_mut().for_each(|d| d.changed = true);
    }

    /// Marks the directories of the events in `buf`; true on a queue overflow.
    fn mark_changed(&mut self, mut buf: &[u8]) -> bool {
        const HEAD: usize = std::mem::size_of::<libc::inotify_event>();
        let mut overflow = false;
        while buf.len() >= HEAD {
            // SAFETY: the kernel wrote whole events; the header is read unaligned.
            let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
            overflow |= ev.mask & libc::IN_Q_OVERFLOW != 0;
            for d in self.dirs.iter_mut().filter(|d| d.wd == Some(ev.wd)) {
                d.changed = true;
                if ev.mask & libc::IN_IGNORED != 0 {
                    d.wd = None;
                }
            }
            buf = buf.get(HEAD + ev.len as usize..).unwrap_or_default();
        }
        overflow
    }
}

const WATCH_MASK: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

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
        let mut w = Watches {
            fd: None,
            dirs: Vec::new(),
        };
        let i = w.add(&dir, &[]);
        w.dirs[i].wd = w.watch(&dir);
        assert!(w.dirs[i].wd.is_some(), "inotify");
        let mut changed_by = |change: &dyn Fn()| {
            w.read_notices();
            w.dirs[i].changed = false;
            change();
            w.read_notices();
            w.dirs[i].changed
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
        w.read_notices();
        assert!(
            w.dirs[i].wd.is_none(),
            "a removed directory loses its watch"
        );
    }

    #[test]
    fn two_readers_of_one_directory_get_the_stamps_of_their_own_files() {
        let dir = temp_dir();
        let (a, b) = (vec![dir.join("a.json")], vec![dir.join("b.json")]);
        fs::write(&a[0], "a").unwrap();
        assert!(stamps(&dir, &a)[0].is_some());
        assert_eq!(stamps(&dir, &b), vec![None], "not a's stamp");
        fs::write(&b[0], "b").unwrap();
        assert_eq!(stamps(&dir, &b)[0], Stamp::of_path(&b[0]));
        assert_eq!(stamps(&dir, &a)[0], Stamp::of_path(&a[0]));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_replaced_directory_is_watched_anew() {
        let dir = temp_dir();
        let paths = vec![dir.join("AGENTS.md")];
        fs::write(&paths[0], "one").unwrap();
        assert!(stamps(&dir, &paths)[0].is_some());
        fs::remove_dir_all(&dir).unwrap();
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            stamps(&dir, &paths),
            vec![None],
            "the new directory is empty"
        );
        fs::write(&paths[0], "two").unwrap();
        assert!(
            stamps(&dir, &paths)[0].is_some(),
            "and its files are noticed"
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
