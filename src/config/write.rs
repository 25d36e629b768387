//! Writing the config file: `meta` stamp, strict JSON as upstream writes it, the `.bak` ring of
//! five, then an atomic tmp + rename with mode 0600. The user's `$include` and `${VAR}` strings
//! are kept (the caller passes the unresolved object).

use serde_json::{json, Value};
use std::io;
use std::path::{Path, PathBuf};

use super::json5;
use crate::state::atomic::write_private;

/// Backups kept: `.bak`, `.bak.1` … `.bak.4`.
const BACKUPS: usize = 5;

/// The version we stamp into `meta.lastTouchedVersion`. It compares as older than any upstream
/// release, so switching back to upstream never warns about a "newer Moltbot".
pub fn stamp_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Stamps `meta`, rotates backups and replaces the file atomically. Returns the written text.
pub fn write_config(path: &Path, value: &Value) -> io::Result<String> {
    let mut value = value.clone();
    if let Some(root) = value.as_object_mut() {
        let meta = root.entry("meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        meta["lastTouchedVersion"] = json!(stamp_version());
        meta["lastTouchedAt"] = json!(crate::util::iso_now());
    }
    let text = json5::to_pretty_string(&value);
    if path.exists() {
        rotate_backups(path);
    }
    write_private(path, text.as_bytes())?;
    Ok(text)
}

fn backup_path(path: &Path, i: usize) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = if i == 0 {
        ".bak".to_string()
    } else {
        format!(".bak.{i}")
    };
    path.with_file_name(format!("{name}{suffix}"))
}

/// Shifts `.bak.3→.bak.4 … .bak→.bak.1`, then copies the current file to `.bak` (best effort).
fn rotate_backups(path: &Path) {
    let _ = std::fs::remove_file(backup_path(path, BACKUPS - 1));
    for i in (0..BACKUPS - 1).rev() {
        let _ = std::fs::rename(backup_path(path, i), backup_path(path, i + 1));
    }
    if let Ok(data) = std::fs::read(path) {
        let _ = write_private(&backup_path(path, 0), &data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_writes_keep_five_backups() {
        let dir = std::env::temp_dir().join(format!("mb-bak-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("moltbot.json");
        for i in 1..=7 {
            write_config(&cfg, &json!({"v": i})).unwrap();
        }
        let v = |p: PathBuf| -> i64 {
            let parsed: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            parsed["v"].as_i64().unwrap()
        };
        assert_eq!(v(cfg.clone()), 7);
        assert_eq!(v(backup_path(&cfg, 0)), 6);
        assert_eq!(v(backup_path(&cfg, 4)), 2);
        assert!(!backup_path(&cfg, 5).exists());
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.ends_with("}\n") && text.contains("\"lastTouchedVersion\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
