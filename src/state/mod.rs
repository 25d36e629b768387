//! The state directory: every path under it is named here, and this module creates the layout.

pub mod atomic;
pub mod lock;
pub mod paths;
pub mod stamp;

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The resolved state dir and the paths the gateway uses inside it.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(root: PathBuf) -> Self {
        StateDir { root }
    }

    /// `<S>/credentials` unless `CLAWDBOT_OAUTH_DIR` overrides it.
    pub fn credentials(&self) -> PathBuf {
        paths::env_nonempty("CLAWDBOT_OAUTH_DIR")
            .map(|d| paths::expand_user(&d))
            .unwrap_or_else(|| self.root.join("credentials"))
    }

    pub fn agent_dir(&self, agent_id: &str) -> PathBuf {
        self.root.join("agents").join(agent_id).join("agent")
    }

    pub fn sessions_dir(&self, agent_id: &str) -> PathBuf {
        self.root.join("agents").join(agent_id).join("sessions")
    }

    pub fn sessions_store(&self, agent_id: &str) -> PathBuf {
        self.sessions_dir(agent_id).join("sessions.json")
    }

    pub fn devices_dir(&self) -> PathBuf {
        self.root.join("devices")
    }

    pub fn restart_sentinel(&self) -> PathBuf {
        self.root.join("restart-sentinel.json")
    }

    pub fn cron_store(&self) -> PathBuf {
        self.root.join("cron").join("jobs.json")
    }

    /// Creates the upstream layout for the default agent (idempotent; existing modes are kept).
    pub fn ensure_layout(&self, default_agent: &str) -> io::Result<()> {
        mkdir_private(&self.root)?;
        mkdir_private(&self.credentials())?;
        mkdir_private(&self.agent_dir(default_agent))?;
        mkdir_private(&self.sessions_dir(default_agent))?;
        mkdir_private(&self.devices_dir())?;
        Ok(())
    }
}

/// `mkdir -p` with mode 0700 for the directories it creates.
pub fn mkdir_private(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Whether a file's mode lets group or others read it (doctor-style warning).
pub fn is_group_or_world_readable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}
