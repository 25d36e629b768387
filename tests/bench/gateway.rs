//! Gateway benchmark (`cargo bench --bench gateway`, `make bench`): startup time, memory, threads,
//! handshake and push latency with 200 protocol-v3 clients, idle CPU, churn, a stalled client and
//! the binary size, measured against fresh gateways on 127.0.0.1. Prints a table and appends a
//! section to BENCHMARKS.md. `BENCH_QUICK=1` shortens every wait (and appends only with
//! `BENCH_APPEND=1`); `MOLTBOT_BIN` selects the binary (default: `cargo build --release`'s);
//! `BENCH_ONLY=agent` runs only the agent-turn part.

// Cargo also auto-discovers this file as integration test `bench`; there it is just dead code.
#![cfg_attr(test, allow(dead_code, unused))]

mod agent;
mod gw;
#[path = "../fakes/llm.rs"]
mod llm;
mod push;
mod report;
mod setup;
mod ws;

use gw::Gateway;
use push::{drain_stalled, push};
use report::{fmt_ms, mib, p50_p99, percentile, Report};
use serde_json::json;
use setup::{binary_size, locate_bin, sh, startup};
use std::path::Path;
use std::time::{Duration, Instant};
use ws::Reader;

const MIB: u64 = 1024 * 1024;

pub struct Plan {
    pub quick: bool,
    pub idle: Duration,
    pub hold: Duration,
    pub cpu: Duration,
    pub after_close: Duration,
    pub churn: usize,
    pub clients: usize,
    pub broadcasts: usize,
    pub spacing: Duration,
    pub probes: usize,
    pub starts: usize,
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
        match rep.append_markdown(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"),
            plan.quick,
        ) {
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
    rep.row(
        "open-files limit (ulimit -n)",
        limit.clone(),
        format!("≥ {need}"),
        Some(limit_ok),
    );
    if !limit_ok {
        rep.note(format!(
            "ulimit -n is {limit}; {} clients need about {need} fds per process",
            p.clients
        ));
    }

    let bin = locate_bin()?;
    eprintln!("bench: binary {}", bin.display());
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "agent") {
        return agent::run(&bin, p, rep);
    }
    binary_size(&bin, rep)?;
    startup(&bin, p, rep)?;

    // --- the gateway under test ---
    let (mut gw, _) = Gateway::start(&bin, 0)?;
    let pid = gw.pid;
    let sampler = gw::RssSampler::start(pid);
    eprintln!(
        "bench: gateway pid {pid} on port {}; idling {:?}",
        gw.port, p.idle
    );
    idle(&mut gw, p.idle)?;
    let idle_st = gw::status(pid)?;
    rep.row(
        &format!("idle RSS after {}s", p.idle.as_secs()),
        mib(idle_st.rss_kb),
        "≤ 8 MiB".into(),
        Some(idle_st.rss_kb * 1024 <= 8 * MIB),
    );
    rep.row(
        "threads, idle",
        idle_st.threads.to_string(),
        "—".into(),
        None,
    );

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
    rep.row(
        &format!("handshake p50 / p99 while ramping 0→{n}"),
        p50_p99(&mut ramp),
        "—".into(),
        None,
    );
    let hs99 = percentile(&mut probes, 0.99);
    rep.row(
        &format!(
            "handshake p50 / p99 with {n} connected ({} probes)",
            p.probes
        ),
        format!(
            "{} / {}",
            fmt_ms(percentile(&mut probes, 0.5)),
            fmt_ms(hs99)
        ),
        "p99 ≤ 10 ms".into(),
        Some(hs99 <= Duration::from_millis(10)),
    );
    std::thread::sleep(Duration::from_millis(500));
    rep.row(
        &format!("threads with {n} clients"),
        gw::status(pid)?.threads.to_string(),
        "—".into(),
        None,
    );

    // Hold: RSS at `hold`, CPU over `cpu`.
    let clk = gw::clock_ticks();
    let (t0, c0) = (Instant::now(), gw::cpu_ticks(pid)?);
    idle(&mut gw, p.hold)?;
    let held = gw::status(pid)?;
    rep.row(
        &format!("RSS with {n} clients held {}s", p.hold.as_secs()),
        mib(held.rss_kb),
        "≤ 20 MiB".into(),
        Some(held.rss_kb * 1024 <= 20 * MIB),
    );
    idle(&mut gw, p.cpu.saturating_sub(p.hold))?;
    let (t1, c1) = (Instant::now(), gw::cpu_ticks(pid)?);
    let cpu = (c1 - c0) as f64 / clk as f64 / (t1 - t0).as_secs_f64() * 100.0;
    rep.row(
        &format!(
            "idle CPU with {n} clients over {:.0}s",
            (t1 - t0).as_secs_f64()
        ),
        format!("{cpu:.3} % ({} ticks @ {clk}/s)", c1 - c0),
        "< 0.1 %".into(),
        Some(cpu < 0.1),
    );

    // --- push latency ---
    let (mut ctl, _) = ws::connect(gw.port)?;
    let me = std::process::id();
    let (g0, b0) = (gw::cpu_ticks(pid)?, gw::cpu_ticks(me)?);
    // A small event (talk.mode, ~80 bytes) measures the push path itself.
    let small = push(
        &mut ctl,
        &readers,
        p,
        "p",
        "talk.mode",
        |i| json!({"enabled": true, "phase": format!("bench {i}")}),
    )?;
    let (g1, b1) = (gw::cpu_ticks(pid)?, gw::cpu_ticks(me)?);
    let per = |t: u64| t as f64 * 1000.0 / clk as f64 / p.broadcasts as f64;
    let p99 = small.p99();
    rep.row(
        &format!(
            "push p50 / p99 / max, {} broadcasts × {n} clients",
            p.broadcasts
        ),
        small.summary(),
        "p99 ≤ 2 ms".into(),
        Some(p99 <= Duration::from_millis(2)),
    );
    rep.row(
        "push deliveries (frame size)",
        small.delivered(),
        format!("{}", p.broadcasts * n),
        Some(small.missing == 0),
    );
    rep.row(
        "CPU time per broadcast: gateway / bench process",
        format!("{:.2} ms / {:.2} ms", per(g1 - g0), per(b1 - b0)),
        "—".into(),
        None,
    );

    // --- stalled client: baseline with the same big frames, then with a client that never reads ---
    let big = "x".repeat(60_000);
    let presence = |i: usize, text: &str| json!({"text": format!("{text} {i}"), "host": "bench"});
    let list = push(&mut ctl, &readers, p, "l", "system-event", |i| {
        presence(i, "bench")
    })?;
    rep.row(
        &format!("presence push (the {n}-entry presence list) p50 / p99 / max"),
        list.summary(),
        "—".into(),
        None,
    );
    let base = push(&mut ctl, &readers, p, "b", "system-event", |i| {
        presence(i, &big)
    })?;
    rep.row(
        "big push (60 KB text) p50 / p99 / max, no stall",
        base.summary(),
        "—".into(),
        None,
    );
    let (stalled, _) = ws::connect(gw.port)?;
    let slow_before = gw
        .slow_consumer_lines
        .load(std::sync::atomic::Ordering::Relaxed);
    let stall = push(&mut ctl, &readers, p, "s", "system-event", |i| {
        presence(i, &big)
    })?;
    let bound = (base.p99() * 2).max(base.p99() + Duration::from_millis(2));
    rep.row(
        "big push p50 / p99 / max, others during stall",
        stall.summary(),
        format!("p99 ≤ {} (2× / +2 ms baseline)", fmt_ms(bound)),
        Some(stall.p99() <= bound && stall.missing == 0),
    );
    rep.row(
        "big push deliveries during stall (frame size)",
        stall.delivered(),
        format!("{}", p.broadcasts * n),
        Some(stall.missing == 0),
    );
    let st = gw::status(pid)?;
    rep.row(
        "RSS right after stall test",
        mib(st.rss_kb),
        "—".into(),
        None,
    );
    // Presence events are droppable: a full queue skips them. Non-droppable broadcasts
    // (`talk.mode`) to the still-stalled client must then close it with 1008 `slow consumer`.
    let mut talk = 0;
    while talk < 1000
        && gw
            .slow_consumer_lines
            .load(std::sync::atomic::Ordering::Relaxed)
            == slow_before
    {
        ws::request(
            &mut ctl,
            &format!("t{talk}"),
            "talk.mode",
            json!({"enabled": talk % 2 == 0}),
        )?;
        talk += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let slow_lines = gw
        .slow_consumer_lines
        .load(std::sync::atomic::Ordering::Relaxed)
        - slow_before;
    let fate = drain_stalled(stalled, &stall.seqs);
    let presence_only = if slow_lines == 0 {
        fate.close.clone()
    } else {
        None
    };
    let not_closed = || "not closed".to_string();
    // Upstream marks presence `dropIfSlow`: a stalled client skips them and stays open.
    rep.row(
        "stalled client, 200 big presence events (droppable)",
        format!(
            "{}, got {}/{}",
            presence_only.clone().unwrap_or_else(not_closed),
            fate.presence,
            stall.seqs.len()
        ),
        "skipped, not closed".into(),
        Some(presence_only.is_none() && fate.presence < stall.seqs.len()),
    );
    rep.row(
        "stalled client, then non-droppable talk.mode events",
        format!(
            "{} after {talk} event(s)",
            fate.close.clone().unwrap_or_else(not_closed)
        ),
        "1008 \"slow consumer\"".into(),
        Some(fate.close.is_some_and(|c| c.starts_with("1008")) && slow_lines > 0),
    );
    rep.note(format!(
        "stalled client: it received {} of {} presence broadcasts (the gateway dropped the rest) and {} other frames; \
         the gateway logged {slow_lines} slow-consumer line(s) after {talk} talk.mode broadcast(s); on draining: {}",
        fate.presence, stall.seqs.len(), fate.other, fate.end
    ));
    ws::close(ctl);

    // --- all clients leave ---
    let errors: Vec<String> = readers
        .iter()
        .filter_map(|r| {
            let s = r.seen.lock().unwrap();
            s.error
                .clone()
                .or(s.close.as_ref().map(|c| format!("server closed {c:?}")))
        })
        .collect();
    rep.row(
        "measured clients with errors / server closes",
        errors.len().to_string(),
        "0".into(),
        Some(errors.is_empty()),
    );
    if let Some(e) = errors.first() {
        rep.note(format!("first client error: {e}"));
    }
    readers.iter().for_each(Reader::request_stop);
    let deadline = Instant::now() + Duration::from_secs(20);
    let stuck = readers
        .iter_mut()
        .map(|r| r.join(deadline))
        .filter(|ok| !ok)
        .count();
    if stuck > 0 {
        rep.note(format!(
            "{stuck} reader threads did not finish closing within 20 s"
        ));
    }
    drop(readers);
    idle(&mut gw, p.after_close)?;
    let after = gw::status(pid)?;
    let back = after.rss_kb.saturating_sub(idle_st.rss_kb);
    rep.row(
        &format!("RSS {}s after all clients closed", p.after_close.as_secs()),
        format!("{} (+{} vs idle)", mib(after.rss_kb), mib(back)),
        "≤ idle + 2 MiB".into(),
        Some(back * 1024 <= 2 * MIB),
    );
    rep.row(
        "threads after clients closed",
        after.threads.to_string(),
        format!("= idle ({})", idle_st.threads),
        Some(after.threads <= idle_st.threads),
    );

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
    rep.row(
        &format!("churn: {} connect+handshake+close cycles", p.churn),
        format!(
            "{:.2} s, handshake p50 / p99 {}",
            took.as_secs_f64(),
            p50_p99(&mut churn)
        ),
        "—".into(),
        None,
    );
    rep.row(
        "churn: threads before → after",
        format!("{} → {}", before.threads, end.threads),
        "no growth".into(),
        Some(end.threads <= before.threads),
    );
    let grew = end.rss_kb.saturating_sub(before.rss_kb);
    rep.row(
        "churn: RSS before → after",
        format!("{} → {}", mib(before.rss_kb), mib(end.rss_kb)),
        "growth ≤ 1 MiB".into(),
        Some(grew * 1024 <= MIB),
    );
    rep.row(
        "peak RSS: VmHWM at end / max VmRSS sampled every 20 ms",
        format!("{} / {}", mib(end.hwm_kb), mib(sampler.max_kb())),
        "—".into(),
        None,
    );

    let exit = gw.stop();
    rep.row(
        "exit on SIGTERM",
        exit.map_or("did not exit (killed)".into(), |s| s.to_string()),
        "exit 0".into(),
        Some(exit.is_some_and(|s| s.success())),
    );
    agent::run(&bin, p, rep)
}
