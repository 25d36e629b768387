//! Locating/building the binary, its size, and fresh-start timings.

use super::gw::Gateway;
use super::report::{fmt_ms, percentile, Report};
use super::{Plan, MIB};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
pub fn sh(cmd: &str) -> Option<String> {
    let o = Command::new("sh")
        .args(["-c", cmd])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `MOLTBOT_BIN`, else `cargo build --release` (bounded to 20 min) and target/release/moltbot.
pub fn locate_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MOLTBOT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: {cargo} build --release --bin moltbot");
    let mut child = Command::new(&cargo)
        .args(["build", "--release", "--bin", "moltbot"])
        .current_dir(root)
        .spawn()
        .map_err(|e| format!("run cargo: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(1200);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("cargo build --release took over 20 min".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        return Err(format!("cargo build --release failed: {status}"));
    }
    // The path cargo built for this bench (target/release/moltbot, honouring CARGO_TARGET_DIR).
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_moltbot"));
    Ok(if bin.exists() {
        bin
    } else {
        root.join("target/release/moltbot")
    })
}

pub fn binary_size(bin: &Path, rep: &mut Report) -> Result<(), String> {
    let size = std::fs::metadata(bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len();
    let copy = std::env::temp_dir().join(format!("moltbot-bench-strip-{}", std::process::id()));
    let stripped = std::fs::copy(bin, &copy)
        .ok()
        .and_then(|_| {
            Command::new("strip")
                .arg(&copy)
                .stderr(Stdio::null())
                .status()
                .ok()
        })
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    let (s, how) = match stripped {
        Some(s) => (
            s,
            if s == size {
                "already stripped"
            } else {
                "after `strip`"
            },
        ),
        None => (size, "as built; `strip` unavailable"),
    };
    rep.row(
        "stripped binary size",
        format!("{s} B = {:.2} MiB ({how})", s as f64 / MIB as f64),
        "≤ 8 MiB".into(),
        Some(s <= 8 * MIB),
    );
    Ok(())
}

/// Median time to the `listening on` line over fresh starts on port 0, and median time until a
/// TCP connect succeeds over fresh starts on a free fixed port (polled every 0.2 ms from spawn).
pub fn startup(bin: &Path, p: &Plan, rep: &mut Report) -> Result<(), String> {
    let mut listen = Vec::new();
    for _ in 0..p.starts {
        let (mut g, dt) = Gateway::start(bin, 0)?;
        listen.push(dt);
        g.stop();
    }
    let mut tcp = Vec::new();
    for _ in 0..p.starts {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let t0 = Instant::now();
        let spawned = std::thread::spawn(move || loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok() {
                return Some(t0.elapsed());
            }
            if t0.elapsed() > Duration::from_secs(15) {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        });
        let (mut g, _) = Gateway::start(bin, port)?;
        tcp.push(
            spawned
                .join()
                .ok()
                .flatten()
                .ok_or("TCP connect never succeeded")?,
        );
        g.stop();
    }
    let all: Vec<String> = listen.iter().map(|d| fmt_ms(*d)).collect();
    let med = percentile(&mut listen, 0.5);
    rep.row(
        &format!("time to `listening on` (median of {})", p.starts),
        format!("{} (runs: {})", fmt_ms(med), all.join(", ")),
        "≤ 20 ms".into(),
        Some(med <= Duration::from_millis(20)),
    );
    rep.row(
        &format!("time to first TCP connect (median of {})", p.starts),
        fmt_ms(percentile(&mut tcp, 0.5)),
        "≤ 20 ms".into(),
        Some(percentile(&mut tcp, 0.5) <= Duration::from_millis(20)),
    );
    Ok(())
}
