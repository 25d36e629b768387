//! How transcript lines reach the disk: one `write(2)` per appended line, a new file created
//! with one write, an existing one replaced by temp file + rename, and a file without a valid
//! header set aside rather than appended to.

use serde_json::{Map, Value};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::state::stamp::Stamp;

/// A new session's header line, for the turn to write while the provider answers: the first
/// flush then appends to a file that exists instead of creating one (a create allocates an
/// inode, the dearest part of the write; on an unjournaled ext4 it scans recently freed
/// inodes). A file holding only its header is what upstream's `ensureSessionHeader` writes
/// too, and its loaders read it as a new session.
pub struct EarlyHeader {
    path: PathBuf,
    line: String,
    /// The line's length once written; the transcript keeps the other handle.
    written: Arc<AtomicU64>,
}

impl EarlyHeader {
    pub(super) fn new(path: &Path, header: &Map<String, Value>) -> (EarlyHeader, Arc<AtomicU64>) {
        let mut line = String::new();
        crate::config::json5::push_compact_object(&mut line, header);
        line.push('\n');
        let written = Arc::new(AtomicU64::new(0));
        let early = EarlyHeader {
            path: path.to_path_buf(),
            line,
            written: written.clone(),
        };
        (early, written)
    }

    /// Creates the file with the header line; a file that exists by now is left alone (the
    /// first flush then replaces it whole, as before).
    pub fn write(self) {
        match create_new(&self.path, self.line.as_bytes()) {
            Ok(_) => self
                .written
                .store(self.line.len() as u64, Ordering::Release),
            Err(e) => {
                log::debug!(target: "agent", "transcript header not written early ({}): {e}", self.path.display())
            }
        }
    }
}

/// One `write(2)` of one line with O_APPEND: a kill -9 leaves every earlier line intact and at
/// worst a torn last line, which readers skip. No `create`: a missing file is the caller's cue
/// to rewrite it whole.
pub(super) fn append_line(
    path: &Path,
    line: &str,
    newline_first: bool,
) -> io::Result<(u64, Stamp)> {
    let mut buf = String::with_capacity(line.len() + 2);
    if newline_first {
        buf.push('\n');
    }
    buf.push_str(line);
    buf.push('\n');
    let stamp = append_text(path, &buf)?;
    Ok((buf.len() as u64, stamp))
}

/// Lines appended with one `write(2)` to a file that must exist. Returns the file's stamp
/// right after the write (from the open file: what a parked copy is checked against).
pub(super) fn append_text(path: &Path, text: &str) -> io::Result<Stamp> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(Stamp::of(&f.metadata()?))
}

/// A new session's first flush creates its file with one write (pi writes it the same way);
/// an existing file is replaced by temp file + rename. Either way with the process umask's mode,
/// as upstream's transcripts have.
pub(super) fn replace_file(path: &Path, data: &[u8]) -> io::Result<Stamp> {
    match create_new(path, data) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        done => return done,
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        crate::util::uuid_v4()
    ));
    let tmp = PathBuf::from(name);
    // The stamp survives the rename: same inode, length and mtime.
    let result = write_new(&tmp, data).and_then(|stamp| fs::rename(&tmp, path).map(|_| stamp));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A file that must not exist yet, with `data` in one write (its directory made if missing).
pub(super) fn create_new(path: &Path, data: &[u8]) -> io::Result<Stamp> {
    match write_new(path, data) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            write_new(path, data)
        }
        done => done,
    }
}

/// Creates `path` (which must not exist) holding `data`; a failed write removes it again.
/// Returns the stamp the file has once written.
fn write_new(path: &Path, data: &[u8]) -> io::Result<Stamp> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    match file.write_all(data).and_then(|_| file.metadata()) {
        Ok(meta) => Ok(Stamp::of(&meta)),
        Err(e) => {
            let _ = fs::remove_file(path);
            Err(e)
        }
    }
}

/// A file with content but no valid header would be ignored forever; keep it beside the new
/// transcript (`<file>.bak.<ms>`) instead of appending to it as pi would.
pub(super) fn set_aside_unreadable(path: &Path, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".bak.{}", crate::util::now_ms()));
    log::warn!(
        "transcript {} has no valid session header; moved to {}",
        path.display(),
        Path::new(&name).display()
    );
    let _ = fs::rename(path, &name);
}
