//! Crash-safe file writes: write a temp file beside the target with mode 0600, fsync, rename.
//! A crash at any point leaves either the old file or the new one, never a torn mix.
//! `write_private_unsynced` skips the two fsyncs for files rewritten on every agent turn
//! (`sessions.json`, as upstream writes it): still atomic against a process crash or kill -9;
//! after a power loss the previous version may come back (ext4 orders the data before the
//! rename's commit, so not a torn or empty file there).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Atomically and durably replaces `path` with `data` (mode 0600).
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with(path, data, true)
}

/// Atomically replaces `path` with `data` (mode 0600), without waiting for the disk.
pub fn write_private_unsynced(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with(path, data, false)
}

/// The unsynced write in two steps: the temp file now, the rename when `commit` is called (a
/// caller that must do something at the very moment the new version appears). Dropped without
/// a commit, the temp file is removed.
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

pub fn stage_private_unsynced(path: &Path, data: &[u8]) -> io::Result<Staged> {
    let staged = Staged {
        tmp: temp_path(path),
        path: path.to_path_buf(),
        committed: false,
    };
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staged.tmp)
    };
    // The directory is checked only when it is missing: callers rewrite the same file often.
    let mut f = match (create(), path.parent()) {
        (Err(e), Some(dir)) if e.kind() == io::ErrorKind::NotFound => {
            super::mkdir_private(dir)?;
            create()?
        }
        (opened, _) => opened?,
    };
    f.write_all(data)?;
    Ok(staged)
}

impl Staged {
    pub fn commit(mut self) -> io::Result<()> {
        std::fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn write_with(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        super::mkdir_private(dir)?;
    }
    let tmp = temp_path(path);
    let result = write_and_rename(&tmp, path, data, durable);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `<dir>/<name>.<pid>.<uuid>.tmp`, the temp name upstream uses.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp_name = format!(
        "{name}.{}.{}.tmp",
        std::process::id(),
        crate::util::uuid_v4()
    );
    path.with_file_name(tmp_name)
}

fn write_and_rename(tmp: &Path, path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(data)?;
    if durable {
        f.sync_all()?;
    }
    drop(f);
    std::fs::rename(tmp, path)?;
    if !durable {
        return Ok(());
    }
    // Make the rename itself durable; failure to sync a directory is not fatal.
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_private_and_replaces() {
        let dir = std::env::temp_dir().join(format!("mb-atomic-{}", crate::util::uuid_v4()));
        let file = dir.join("a.json");
        write_private(&file, b"one").unwrap();
        write_private(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files remain");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn staging_makes_a_missing_directory_private_and_reuses_an_existing_one() {
        let dir = std::env::temp_dir().join(format!("mb-stage-{}", crate::util::uuid_v4()));
        let file = dir.join("nested/sessions.json");
        stage_private_unsynced(&file, b"one")
            .unwrap()
            .commit()
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        assert_eq!(mode(&file), 0o600);
        stage_private_unsynced(&file, b"two")
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        // Dropped without a commit: the temp file goes, the old version stays.
        drop(stage_private_unsynced(&file, b"three").unwrap());
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let names = std::fs::read_dir(file.parent().unwrap()).unwrap().count();
        assert_eq!(names, 1, "no temp files remain");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
