//! Crash-safe file writes: write a temp file beside the target with mode 0600, fsync, rename.
//! A crash at any point leaves either the old file or the new one, never a torn mix.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Atomically replaces `path` with `data` (mode 0600).
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        super::mkdir_private(dir)?;
    }
    let tmp = temp_path(path);
    let result = write_and_rename(&tmp, path, data);
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

fn write_and_rename(tmp: &Path, path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, path)?;
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
}
