//! The gateway under test: a child process in a temporary state dir, stopped with SIGTERM (via the
//! `kill` command) and cleaned up on drop, plus readers for its `/proc/<pid>` figures.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "secret";

pub struct Gateway {
    child: Child,
    pub pid: u32,
    pub port: u16,
    dir: PathBuf,
    /// Log lines mentioning `slow consumer`.
    pub slow_consumer_lines: Arc<AtomicUsize>,
    /// The last output lines (stdout and stderr), for diagnostics.
    tail: Arc<Mutex<Vec<String>>>,
    pub exit: Option<ExitStatus>,
}

fn temp_dir(root: Option<&Path>) -> Result<PathBuf, String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let root = root.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = root.join(format!("moltbot-bench-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Drains one output stream of the child; reports the port of the first `listening on` line.
fn drain(
    r: impl Read + Send + 'static,
    tx: mpsc::Sender<(Instant, u16)>,
    slow: Arc<AtomicUsize>,
    tail: Arc<Mutex<Vec<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on ws://127.0.0.1:").nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(p) = port.parse() {
                    let _ = tx.send((Instant::now(), p));
                }
            }
            if line.contains("slow consumer") {
                slow.fetch_add(1, Ordering::Relaxed);
            }
            let mut t = tail.lock().unwrap();
            if t.len() >= 40 {
                t.remove(0);
            }
            t.push(line);
        }
    });
}

impl Gateway {
    /// Spawns the gateway on `port` (0 = OS picks) and waits (bounded) for its `listening on` line.
    /// Returns the gateway and the time from spawn to that line.
    pub fn start(bin: &Path, port: u16) -> Result<(Gateway, Duration), String> {
        Self::start_with(bin, port, None, &[])
    }

    /// As `start`, with `config` written as the state dir's `moltbot.json` (`{STATE}` in it is
    /// replaced by the state dir's path) and extra environment variables.
    pub fn start_with(
        bin: &Path,
        port: u16,
        config: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<(Gateway, Duration), String> {
        Self::start_in(None, bin, port, config, env)
    }

    /// [`Gateway::start_with`] with the state dir under `root` (default: the temp dir).
    pub fn start_in(
        root: Option<&Path>,
        bin: &Path,
        port: u16,
        config: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<(Gateway, Duration), String> {
        let dir = temp_dir(root)?;
        if let Some(cfg) = config {
            let cfg = cfg.replace("{STATE}", &dir.to_string_lossy());
            std::fs::write(dir.join("moltbot.json"), cfg)
                .map_err(|e| format!("write config: {e}"))?;
        }
        let t0 = Instant::now();
        let mut cmd = Command::new(bin);
        cmd.args([
            "gateway",
            "--allow-unconfigured",
            "--port",
            &port.to_string(),
        ])
        .env("CLAWDBOT_STATE_DIR", &dir)
        .env("CLAWDBOT_GATEWAY_TOKEN", TOKEN);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let (tx, rx) = mpsc::channel();
        let slow = Arc::new(AtomicUsize::new(0));
        let tail = Arc::new(Mutex::new(Vec::new()));
        drain(
            child.stdout.take().unwrap(),
            tx.clone(),
            slow.clone(),
            tail.clone(),
        );
        drain(child.stderr.take().unwrap(), tx, slow.clone(), tail.clone());
        let pid = child.id();
        let mut gw = Gateway {
            child,
            pid,
            port: 0,
            dir,
            slow_consumer_lines: slow,
            tail,
            exit: None,
        };
        let deadline = t0 + Duration::from_secs(15);
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((at, p)) => {
                    gw.port = p;
                    return Ok((gw, at - t0));
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(st)) = gw.child.try_wait() {
                        gw.exit = Some(st);
                        return Err(format!(
                            "gateway exited early ({st}); output:\n{}",
                            gw.tail()
                        ));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = gw.stop().map_or("still running".into(), |s| s.to_string());
                    return Err(format!(
                        "gateway closed its output without a `listening on` line ({st}); output:\n{}",
                        gw.tail()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no `listening on` line within 15 s; output:\n{}",
                        gw.tail()
                    ))
                }
            }
        }
    }

    pub fn tail(&self) -> String {
        self.tail.lock().unwrap().join("\n")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.exit.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then up to 10 s for a clean exit, then SIGKILL. Idempotent.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }
        if let Ok(Some(st)) = self.child.try_wait() {
            self.exit = Some(st);
            return self.exit;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(st);
                return self.exit;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!(
            "bench: gateway pid {} ignored SIGTERM for 10 s; killing it",
            self.pid
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/proc/<pid>/status` figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Status {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub threads: u64,
}

pub fn status(pid: u32) -> Result<Status, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok(Status {
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
        threads: field("Threads:"),
    })
}

/// utime + stime in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the `(comm)` start at field 3.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc/pid/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or("bad /proc/pid/stat field")
    };
    Ok(num(14)? + num(15)?)
}

/// The machine's CPU time since boot from `/proc/stat`'s `cpu` line, in clock ticks: the time its
/// CPUs ran tasks (user, nice, system, irq, softirq) and the time the hypervisor ran something
/// else while a vCPU had work to do (steal).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostCpu {
    pub busy: u64,
    pub steal: u64,
}

impl HostCpu {
    /// `None` where `/proc/stat` has no `cpu` line (not Linux, or no procfs).
    pub fn now() -> Option<HostCpu> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().find_map(|l| l.strip_prefix("cpu "))?;
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let at = |i: usize| f.get(i).copied().unwrap_or(0);
        Some(HostCpu {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            steal: at(7),
        })
    }
}

/// `"X% of the CPU time wanted (Y ms per turn)"` between `start` and now.
pub fn steal_since(start: Option<HostCpu>, turns: usize) -> String {
    let (Some(start), Some(now)) = (start, HostCpu::now()) else {
        return "unknown (no /proc/stat)".into();
    };
    let busy = now.busy.saturating_sub(start.busy);
    let steal = now.steal.saturating_sub(start.steal);
    let wanted = (busy + steal).max(1);
    let ms = steal as f64 * 1000.0 / clock_ticks() as f64;
    format!(
        "{:.0}% of the CPU time wanted ({:.2} ms per turn)",
        steal as f64 * 100.0 / wanted as f64,
        ms / turns.max(1) as f64
    )
}

pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Samples VmRSS every 20 ms in a thread and keeps the maximum (the kernel updates VmHWM lazily,
/// so it can miss short peaks). Stops on drop.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kb: Arc<AtomicU64>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let (stop, max_kb) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, m) = (stop.clone(), max_kb.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match status(pid) {
                    Ok(st) => m.fetch_max(st.rss_kb, Ordering::Relaxed),
                    Err(_) => return,
                };
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler { stop, max_kb }
    }

    pub fn max_kb(&self) -> u64 {
        self.max_kb.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
