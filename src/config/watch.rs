//! The config watcher thread: polls the main file's metadata once a second (one `stat`, no
//! inotify dependency) and, after the change has been stable for the debounce time, tells the
//! gateway loop with `Event::ConfigFileChanged`. Included files are not watched (as upstream).

use crossbeam_channel::{Receiver, Sender};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::gateway::event::Event;

const POLL: Duration = Duration::from_millis(1000);

/// What the watcher compares: taken before the config is read, so that an edit landing
/// between the read and the watcher's start is still seen.
#[derive(PartialEq, Clone, Copy)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    exists: bool,
}

pub fn stamp(path: &PathBuf) -> Stamp {
    match std::fs::metadata(path) {
        Ok(m) => Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            exists: true,
        },
        Err(_) => Stamp {
            modified: None,
            len: 0,
            exists: false,
        },
    }
}

/// Watches `path` until `stop` yields (or is dropped); `debounce` is `gateway.reload.debounceMs`;
/// `seen` is the file's stamp from before the running config was read.
pub fn run(
    path: PathBuf,
    seen: Stamp,
    debounce: Duration,
    events: Sender<Event>,
    stop: Receiver<()>,
) {
    let mut last = seen;
    loop {
        match stop.recv_timeout(POLL) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let now = stamp(&path);
        if now == last {
            continue;
        }
        // Wait until the writer is done: the file must look the same across the debounce window.
        let mut settled = now;
        loop {
            if stop
                .recv_timeout(debounce.max(Duration::from_millis(200)))
                .is_ok()
            {
                return;
            }
            let again = stamp(&path);
            if again == settled {
                break;
            }
            settled = again;
        }
        last = settled;
        if events.send(Event::ConfigFileChanged).is_err() {
            return;
        }
    }
}
