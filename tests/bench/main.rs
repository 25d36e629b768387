//! Gateway benchmark (`cargo bench --bench gateway`, `make bench`): startup time, memory, threads,
//! handshake and push latency with 200 protocol-v3 clients, idle CPU, churn, a stalled client and
//! the binary size, measured against fresh gateways on 127.0.0.1. Prints a table and appends a
//! section to BENCHMARKS.md. `BENCH_QUICK=1` shortens every wait (and appends only with
//! `BENCH_APPEND=1`); `MOLTBOT_BIN` selects the binary (default: `cargo build --release`'s).

mod gw;
mod report;
mod ws;

use gw::Gateway;
use report::{fmt_ms, mib, percentile, Report};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ws::{Reader, Ws};

const MIB: u64 = 1024 * 1024;

struct Plan {
    quick: bool,
    idle: Duration,
    hold: Duration,
    cpu: Duration,
    after_close: Duration,
    churn: usize,
    clients: usize,
    broadcasts: usize,
    spacing: Duration,
    probes: usize,
    starts: usize,
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let append = !quick || std::env::var("BENCH_APPEND").is_ok_and(|v| v == "1");
    let s = |full: u64| Duration::from_secs(if quick { full / 10 } else { full });
    let plan = Plan {
        quick,
        idle: s(30),
        hold: s(20),
        cpu: s(30),
        after_close: s(30),
        churn: if quick { 200 } else { 2000 },
        clients: 200,
        broadcasts: 200,
        spacing: Duration::from_millis(20),
        probes: 50,
        starts: 5,
    };
    let mut rep = Report::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&plan, &mut rep)));
    let failed = match outcome {
        Ok(Ok(())) => false,
        Ok(Err(e)) => {
            rep.note(format!("**bench aborted:** {e}"));
            true
        }
        Err(_) => {
            rep.note("**bench aborted:** panic (see stderr)".into());
            true
        }
    };
    println!("\n{}", rep.table());
    if append {
        match rep.append_markdown(&Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"), plan.quick) {
            Ok(p) => println!("appended to {}", p.display()),
            Err(e) => eprintln!("bench: could not append to BENCHMARKS.md: {e}"),
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// Sleeps `d` while checking every 250 ms that the gateway is still running.
fn idle(gw: &mut Gateway, d: Duration) -> Result<(), String> {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        std::thread::sleep(left.min(Duration::from_millis(250)));
        if !gw.alive() {
            return Err(format!("gateway died; output:\n{}", gw.tail()));
        }
    }
    Ok(())
}

fn run(p: &Plan, rep: &mut Report) -> Result<(), String> {
    eprintln!("bench: {} mode", if p.quick { "quick" } else { "full" });
    // Open-files limit: clients + control on our side, at least two fds per client on the gateway's.
    let need = 2 * p.clients as u64 + 64;
    let limit = sh("ulimit -n").unwrap_or_default();
    let limit_ok = limit == "unlimited" || limit.parse::<u64>().is_ok_and(|n| n >= need);
    rep.row("open-files limit (ulimit -n)", limit.clone(), format!("≥ {need}"), Some(limit_ok));
    if !limit_ok {
        rep.note(format!("ulimit -n is {limit}; {} clients need about {need} fds per process", p.clients));
    }

    let bin = locate_bin()?;
    eprintln!("bench: binary {}", bin.display());
    binary_size(&bin, rep)?;
    startup(&bin, p, rep)?;

    // --- the gateway under test ---
    let (mut gw, _) = Gateway::start(&bin, 0)?;
    let pid = gw.pid;
    eprintln!("bench: gateway pid {pid} on port {}; idling {:?}", gw.port, p.idle);
    idle(&mut gw, p.idle)?;
    let idle_st = gw::status(pid)?;
    rep.row(&format!("idle RSS after {}s", p.idle.as_secs()), mib(idle_st.rss_kb), "≤ 8 MiB".into(), Some(idle_st.rss_kb * 1024 <= 8 * MIB));
    rep.row("threads, idle", idle_st.threads.to_string(), "—".into(), None);

    // --- 200 clients ---
    let mut ramp = Vec::new();
    let mut readers = Vec::new();
    for i in 0..p.clients {
        let (ws, dt) = ws::connect(gw.port).map_err(|e| format!("client {i}: {e}"))?;
        ramp.push(dt);
        readers.push(Reader::spawn(ws)?);
    }
    let mut probes = Vec::new();
    for i in 0..p.probes {
        std::thread::sleep(Duration::from_millis(10));
        let (ws, dt) = ws::connect(gw.port).map_err(|e| format!("probe {i}: {e}"))?;
        probes.push(dt);
        ws::close(ws);
    }
    let n = p.clients;
    rep.row(&format!("handshake p50 / p99 while ramping 0→{n}"), format!("{} / {}", fmt_ms(percentile(&mut ramp, 0.5)), fmt_ms(percentile(&mut ramp, 0.99))), "—".into(), None);
    let hs99 = percentile(&mut probes, 0.99);
    rep.row(&format!("handshake p50 / p99 with {n} connected ({} probes)", p.probes), format!("{} / {}", fmt_ms(percentile(&mut probes, 0.5)), fmt_ms(hs99)), "p99 ≤ 10 ms".into(), Some(hs99 <= Duration::from_millis(10)));
    std::thread::sleep(Duration::from_millis(500));
    rep.row(&format!("threads with {n} clients"), gw::status(pid)?.threads.to_string(), "—".into(), None);

    // Hold: RSS at `hold`, CPU over `cpu`.
    let clk = gw::clock_ticks();
    let (t0, c0) = (Instant::now(), gw::cpu_ticks(pid)?);
    idle(&mut gw, p.hold)?;
    let held = gw::status(pid)?;
    rep.row(&format!("RSS with {n} clients held {}s", p.hold.as_secs()), mib(held.rss_kb), "≤ 20 MiB".into(), Some(held.rss_kb * 1024 <= 20 * MIB));
    idle(&mut gw, p.cpu.saturating_sub(p.hold))?;
    let (t1, c1) = (Instant::now(), gw::cpu_ticks(pid)?);
    let cpu = (c1 - c0) as f64 / clk as f64 / (t1 - t0).as_secs_f64() * 100.0;
    rep.row(&format!("idle CPU with {n} clients over {:.0}s", (t1 - t0).as_secs_f64()), format!("{cpu:.3} % ({} ticks @ {clk}/s)", c1 - c0), "< 0.1 %".into(), Some(cpu < 0.1));

    // --- push latency ---
    let (mut ctl, _) = ws::connect(gw.port)?;
    let small = push(&mut ctl, &readers, p, "p", |i| format!("bench {i}"))?;
    let p99 = small.p99();
    rep.row(&format!("push p50 / p99 / max, {} broadcasts × {n} clients", p.broadcasts), small.summary(), "p99 ≤ 2 ms".into(), Some(p99 <= Duration::from_millis(2)));
    rep.row("push deliveries (frame size)", small.delivered(), format!("{}", p.broadcasts * n), Some(small.missing == 0));

    // --- stalled client: baseline with the same big frames, then with a client that never reads ---
    let big = "x".repeat(60_000);
    let base = push(&mut ctl, &readers, p, "b", |i| format!("{big} {i}"))?;
    rep.row("big push (60 KB text) p50 / p99 / max, no stall", base.summary(), "—".into(), None);
    let (stalled, _) = ws::connect(gw.port)?;
    let slow_before = gw.slow_consumer_lines.load(std::sync::atomic::Ordering::Relaxed);
    let stall = push(&mut ctl, &readers, p, "s", |i| format!("{big} {i}"))?;
    let bound = (base.p99() * 2).max(base.p99() + Duration::from_millis(2));
    rep.row("big push p50 / p99 / max, others during stall", stall.summary(), format!("p99 ≤ {} (2× / +2 ms baseline)", fmt_ms(bound)), Some(stall.p99() <= bound && stall.missing == 0));
    rep.row("big push deliveries during stall (frame size)", stall.delivered(), format!("{}", p.broadcasts * n), Some(stall.missing == 0));
    let st = gw::status(pid)?;
    rep.row("RSS right after stall test", mib(st.rss_kb), "—".into(), None);
    let fate = drain_stalled(stalled, &stall.seqs);
    let slow_lines = gw.slow_consumer_lines.load(std::sync::atomic::Ordering::Relaxed) - slow_before;
    let closed_1008 = fate.starts_with("closed 1008");
    rep.row("stalled client closed 1008 \"slow consumer\"", format!("{fate}; gateway logged {slow_lines} slow-consumer line(s)"), "yes".into(), Some(closed_1008));
    ws::close(ctl);

    // --- all clients leave ---
    let errors: Vec<String> = readers.iter().filter_map(|r| { let s = r.seen.lock().unwrap(); s.error.clone().or(s.close.as_ref().map(|c| format!("server closed {c:?}"))) }).collect();
    rep.row("measured clients with errors / server closes", errors.len().to_string(), "0".into(), Some(errors.is_empty()));
    if let Some(e) = errors.first() {
        rep.note(format!("first client error: {e}"));
    }
    readers.iter().for_each(Reader::request_stop);
    let deadline = Instant::now() + Duration::from_secs(20);
    let stuck = readers.iter_mut().filter(|r| !r.join(deadline)).count();
    if stuck > 0 {
        rep.note(format!("{stuck} reader threads did not finish closing within 20 s"));
    }
    drop(readers);
    idle(&mut gw, p.after_close)?;
    let after = gw::status(pid)?;
    let back = after.rss_kb.saturating_sub(idle_st.rss_kb);
    rep.row(&format!("RSS {}s after all clients closed", p.after_close.as_secs()), format!("{} (+{} vs idle)", mib(after.rss_kb), mib(back)), "≤ idle + 2 MiB".into(), Some(back * 1024 <= 2 * MIB));
    rep.row("threads after clients closed", after.threads.to_string(), format!("= idle ({})", idle_st.threads), Some(after.threads <= idle_st.threads));

    // --- churn ---
    let before = after;
    let t = Instant::now();
    let mut churn = Vec::with_capacity(p.churn);
    for i in 0..p.churn {
        let (ws, dt) = ws::connect(gw.port).map_err(|e| format!("churn cycle {i}: {e}"))?;
        churn.push(dt);
        ws::close(ws);
    }
    let took = t.elapsed();
    let settle = Instant::now() + Duration::from_secs(5);
    while gw::status(pid)?.threads > before.threads && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let end = gw::status(pid)?;
    rep.row(&format!("churn: {} connect+handshake+close cycles", p.churn), format!("{:.2} s, handshake p50 / p99 {} / {}", took.as_secs_f64(), fmt_ms(percentile(&mut churn, 0.5)), fmt_ms(percentile(&mut churn, 0.99))), "—".into(), None);
    rep.row("churn: threads before → after", format!("{} → {}", before.threads, end.threads), "no growth".into(), Some(end.threads <= before.threads));
    let grew = end.rss_kb.saturating_sub(before.rss_kb);
    rep.row("churn: RSS before → after", format!("{} → {}", mib(before.rss_kb), mib(end.rss_kb)), "growth ≤ 1 MiB".into(), Some(grew * 1024 <= MIB));
    rep.row("peak RSS (VmHWM) at end", mib(end.hwm_kb), "—".into(), None);

    let exit = gw.stop();
    rep.row("exit on SIGTERM", exit.map_or("did not exit (killed)".into(), |s| s.to_string()), "exit 0".into(), Some(exit.is_some_and(|s| s.success())));
    Ok(())
}

/// Result of one broadcast run.
struct Push {
    lat: Vec<Duration>,
    missing: usize,
    frame: usize,
    seqs: Vec<u64>,
}

impl Push {
    fn p99(&self) -> Duration {
        percentile(&mut self.lat.clone(), 0.99)
    }
    fn summary(&self) -> String {
        let mut l = self.lat.clone();
        format!("{} / {} / {}", fmt_ms(percentile(&mut l, 0.5)), fmt_ms(percentile(&mut l, 0.99)), fmt_ms(l.last().copied().unwrap_or_default()))
    }
    fn delivered(&self) -> String {
        format!("{} ({} missing; frames up to {} KiB)", self.lat.len(), self.missing, self.frame / 1024)
    }
}

/// `p.broadcasts` system-events from the control connection, `p.spacing` apart; each reader's
/// arrival time of the resulting presence event minus the time the request was sent.
fn push(ctl: &mut Ws, readers: &[Reader], p: &Plan, tag: &str, text: impl Fn(usize) -> String) -> Result<Push, String> {
    for r in readers {
        let mut s = r.seen.lock().unwrap();
        s.presence.clear();
        s.max_frame = 0;
    }
    let start = Instant::now();
    let mut sent: Vec<(u64, Instant)> = Vec::new();
    for i in 0..p.broadcasts {
        if let Some(d) = (start + p.spacing * i as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let params = json!({"text": text(i), "host": "bench"});
        let t = Instant::now();
        let (_, seq) = ws::request(ctl, &format!("{tag}{i}"), "system-event", params)?;
        let seq = seq.filter(|s| sent.last().is_none_or(|l| *s > l.0)).ok_or("system-event answered without a new presence event")?;
        sent.push((seq, t));
    }
    let last = sent.last().map_or(0, |s| s.0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !readers.iter().all(|r| r.seen.lock().unwrap().presence.last().is_some_and(|x| x.0 >= last)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let at: HashMap<u64, Instant> = sent.iter().copied().collect();
    let (mut lat, mut frame) = (Vec::new(), 0);
    for r in readers {
        let s = r.seen.lock().unwrap();
        frame = frame.max(s.max_frame);
        lat.extend(s.presence.iter().filter_map(|(q, t)| Some(t.saturating_duration_since(*at.get(q)?))));
    }
    lat.sort();
    let missing = readers.len() * sent.len() - lat.len();
    Ok(Push { lat, missing, frame, seqs: sent.iter().map(|s| s.0).collect() })
}

/// Reads what the stalled client was sent (bounded) and describes how its connection ended.
fn drain_stalled(mut ws: Ws, seqs: &[u64]) -> String {
    use tungstenite::{Error, Message};
    let _ = ws.get_ref().set_read_timeout(Some(Duration::from_millis(500)));
    let (start, mut quiet, mut got) = (Instant::now(), Instant::now(), 0);
    let mut close = None;
    let end = loop {
        if start.elapsed() > Duration::from_secs(30) {
            break "still sending after 30 s of draining".to_string();
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                quiet = Instant::now();
                got += ws::presence_seq(t.as_str()).is_some_and(|s| seqs.contains(&s)) as usize;
            }
            Ok(Message::Close(f)) => close = Some(f.map(|f| format!("{} \"{}\"", u16::from(f.code), f.reason)).unwrap_or("1005".into())),
            Ok(_) => {}
            Err(Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if quiet.elapsed() > Duration::from_secs(3) {
                    break "connection still open, no close frame".to_string();
                }
            }
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => break "connection ended".to_string(),
            Err(e) => break format!("connection ended: {e}"),
        }
    };
    let head = close.map_or("not closed".into(), |c| format!("closed {c}"));
    format!("{head} ({end}); it received {got}/{} of the broadcasts", seqs.len())
}

fn sh(cmd: &str) -> Option<String> {
    let o = Command::new("sh").args(["-c", cmd]).stderr(Stdio::null()).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `MOLTBOT_BIN`, else `cargo build --release` (bounded to 20 min) and target/release/moltbot.
fn locate_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MOLTBOT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: {cargo} build --release --bin moltbot");
    let mut child = Command::new(&cargo).args(["build", "--release", "--bin", "moltbot"]).current_dir(root).spawn().map_err(|e| format!("run cargo: {e}"))?;
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
    Ok(if bin.exists() { bin } else { root.join("target/release/moltbot") })
}

fn binary_size(bin: &Path, rep: &mut Report) -> Result<(), String> {
    let size = std::fs::metadata(bin).map_err(|e| format!("{}: {e}", bin.display()))?.len();
    let copy = std::env::temp_dir().join(format!("moltbot-bench-strip-{}", std::process::id()));
    let stripped = std::fs::copy(bin, &copy)
        .ok()
        .and_then(|_| Command::new("strip").arg(&copy).stderr(Stdio::null()).status().ok())
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    let (s, how) = match stripped {
        Some(s) => (s, if s == size { "already stripped" } else { "after `strip`" }),
        None => (size, "as built; `strip` unavailable"),
    };
    rep.row("stripped binary size", format!("{s} B = {:.2} MiB ({how})", s as f64 / MIB as f64), "≤ 8 MiB".into(), Some(s <= 8 * MIB));
    Ok(())
}

/// Median time to the `listening on` line over fresh starts on port 0, and median time until a
/// TCP connect succeeds over fresh starts on a free fixed port (polled every 0.2 ms from spawn).
fn startup(bin: &Path, p: &Plan, rep: &mut Report) -> Result<(), String> {
    let mut listen = Vec::new();
    for _ in 0..p.starts {
        let (mut g, dt) = Gateway::start(bin, 0)?;
        listen.push(dt);
        g.stop();
    }
    let mut tcp = Vec::new();
    for _ in 0..p.starts {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
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
        tcp.push(spawned.join().ok().flatten().ok_or("TCP connect never succeeded")?);
        g.stop();
    }
    let all: Vec<String> = listen.iter().map(|d| fmt_ms(*d)).collect();
    let med = percentile(&mut listen, 0.5);
    rep.row(&format!("time to `listening on` (median of {})", p.starts), format!("{} (runs: {})", fmt_ms(med), all.join(", ")), "≤ 20 ms".into(), Some(med <= Duration::from_millis(20)));
    rep.row(&format!("time to first TCP connect (median of {})", p.starts), fmt_ms(percentile(&mut tcp, 0.5)), "≤ 20 ms".into(), Some(percentile(&mut tcp, 0.5) <= Duration::from_millis(20)));
    Ok(())
}
