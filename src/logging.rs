//! Process logger: `<ISO time> [<subsystem>] <message>` lines on stdout, filtered by `RUST_LOG`,
//! and the same records as tslog-shaped JSON lines in the rolling log file that `logs.tail` reads.
//!
//! The subsystem is the log target (`log::info!(target: "gateway", ...)`). File writes happen on
//! one `log-file` thread fed by a bounded channel, so a slow disk never stalls a caller; when the
//! channel is full the record is dropped from the file (it still reaches stdout).

use crossbeam_channel::{bounded, Sender, TrySendError};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::util;

/// Capacity of the file-writer queue, in records.
const FILE_QUEUE: usize = 1024;

/// Directory of the default rolling log file (upstream's `DEFAULT_LOG_DIR`).
pub const DEFAULT_LOG_DIR: &str = "/tmp/moltbot";

enum FileMsg {
    Line(String),
    SetPath(Option<PathBuf>),
    Flush(Sender<()>),
}

struct GatewayLogger {
    filter: env_logger::Logger,
    file_tx: Sender<FileMsg>,
}

static FILE_PATH: Mutex<Option<PathBuf>> = Mutex::new(None);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static LOGGER_TX: OnceLock<Sender<FileMsg>> = OnceLock::new();

impl log::Log for GatewayLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if !self.filter.matches(record) {
            return;
        }
        let ms = util::now_ms();
        let subsystem = subsystem_of(record.target());
        let message = record.args().to_string();
        let time = util::iso_from_ms(ms);
        let _ = writeln!(std::io::stdout().lock(), "{time} [{subsystem}] {message}");
        let line = json_line(&time, subsystem, &message, record.level());
        if let Err(TrySendError::Full(_)) = self.file_tx.try_send(FileMsg::Line(line)) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Module paths of dependencies keep their crate name; our own targets are already subsystem names.
fn subsystem_of(target: &str) -> &str {
    target.split("::").next().unwrap_or(target)
}

fn json_line(time: &str, subsystem: &str, message: &str, level: log::Level) -> String {
    let name = serde_json::json!({ "subsystem": subsystem }).to_string();
    let (level_id, level_name) = match level {
        log::Level::Error => (5, "ERROR"),
        log::Level::Warn => (4, "WARN"),
        log::Level::Info => (3, "INFO"),
        log::Level::Debug => (2, "DEBUG"),
        log::Level::Trace => (1, "TRACE"),
    };
    serde_json::json!({
        "0": name,
        "1": message,
        "_meta": {
            "runtime": "rust",
            "hostname": "unknown",
            "name": name,
            "parentNames": ["moltbot"],
            "date": time,
            "logLevelId": level_id,
            "logLevelName": level_name,
        },
        "time": time,
    })
    .to_string()
}

/// Installs the logger. `RUST_LOG` sets the level (default `info`; chatty dependencies `warn`).
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info,tungstenite=warn,tiny_http=warn");
    // ureq logs request headers (API keys included) at TRACE: never let it go below DEBUG.
    let mut builder = env_logger::Builder::from_env(env);
    let asked = std::env::var("RUST_LOG")
        .unwrap_or_default()
        .contains("ureq");
    let level = if asked {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    for module in ["ureq", "ureq_proto", "rustls"] {
        builder.filter_module(module, level);
    }
    let filter = builder.build();
    let (tx, rx) = bounded::<FileMsg>(FILE_QUEUE);
    let spawned = crate::threads::spawn_named("log-file", 64 * 1024, move || file_writer(rx));
    if spawned.is_err() {
        eprintln!("[gateway] could not start the log file writer; logging to stdout only");
    }
    let _ = LOGGER_TX.set(tx.clone());
    let max = filter.filter();
    if log::set_boxed_logger(Box::new(GatewayLogger {
        filter,
        file_tx: tx,
    }))
    .is_ok()
    {
        log::set_max_level(max);
    }
}

/// Points the JSON log at `logging.file`, or at today's default file when `None`.
pub fn set_file(path: Option<PathBuf>) {
    if let Some(tx) = LOGGER_TX.get() {
        let _ = tx.send(FileMsg::SetPath(path));
    }
}

/// Waits until every record logged so far has been written to the file (tests, shutdown).
pub fn flush_file() {
    if let Some(tx) = LOGGER_TX.get() {
        let (done_tx, done_rx) = bounded(1);
        if tx.send(FileMsg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// The file `logs.tail` should read: the configured file, or today's default one.
pub fn current_file() -> PathBuf {
    FILE_PATH
        .lock()
        .clone()
        .unwrap_or_else(|| default_file(util::now_ms()))
}

/// `/tmp/moltbot/moltbot-YYYY-MM-DD.log` (UTC date).
pub fn default_file(ms: u64) -> PathBuf {
    Path::new(DEFAULT_LOG_DIR).join(format!("moltbot-{}.log", util::date_from_ms(ms)))
}

fn file_writer(rx: crossbeam_channel::Receiver<FileMsg>) {
    let mut configured: Option<PathBuf> = None;
    let mut open: Option<(PathBuf, File)> = None;
    for msg in rx {
        match msg {
            FileMsg::Line(line) => {
                let want = configured
                    .clone()
                    .unwrap_or_else(|| default_file(util::now_ms()));
                if open.as_ref().map(|(p, _)| p != &want).unwrap_or(true) {
                    open = open_log(&want).map(|f| (want.clone(), f));
                    *FILE_PATH.lock() = Some(want);
                }
                if let Some((_, f)) = open.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
            FileMsg::SetPath(p) => {
                configured = p;
                open = None;
                *FILE_PATH.lock() = configured.clone();
            }
            FileMsg::Flush(done) => {
                if let Some((_, f)) = open.as_mut() {
                    let _ = f.flush();
                }
                let _ = done.send(());
            }
        }
    }
}

fn open_log(path: &Path) -> Option<File> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    OpenOptions::new().create(true).append(true).open(path).ok()
}

/// Records dropped from the file because the writer fell behind.
pub fn dropped_records() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}
