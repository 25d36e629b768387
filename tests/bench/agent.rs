//! Agent-turn figures against the loopback fake provider (`tests/fakes/llm.rs`, Anthropic SSE):
//! the gateway's own time per turn beyond the fake's stream (state dir on disk, and again on
//! tmpfs, each with the host's CPU steal over the same turns), throughput with `maxConcurrent` 4
//! over 100 sessions, and peak RSS while 4 turns stream to 200 connected clients.

use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

use super::gw::{self, Gateway, HostCpu};
use super::llm::{FakeLlm, Script};
use super::report::{fmt_ms, mib, p50_p99, percentile, Report};
use super::ws::{self, Reader, Ws};
use super::Plan;

const MIB: u64 = 1024 * 1024;

fn config(fake: &FakeLlm, max_concurrent: usize) -> String {
    format!(
        r#"{{ gateway: {{ mode: "local" }},
  agents: {{ defaults: {{ maxConcurrent: {max_concurrent}, thinkingDefault: "off", workspace: "{{STATE}}/workspace" }} }},
  models: {{ providers: {{ anthropic: {{ baseUrl: "{}", models: [] }} }} }} }}"#,
        fake.base_url()
    )
}

fn start(bin: &Path, fake: &FakeLlm, max_concurrent: usize) -> Result<Gateway, String> {
    start_in(None, bin, fake, max_concurrent)
}

fn start_in(
    root: Option<&Path>,
    bin: &Path,
    fake: &FakeLlm,
    max_concurrent: usize,
) -> Result<Gateway, String> {
    let env = [
        ("ANTHROPIC_API_KEY", "sk-ant-bench"),
        ("MOLTBOT_SDK_MAX_RETRIES", "0"),
    ];
    let config = config(fake, max_concurrent);
    Gateway::start_in(root, bin, 0, Some(&config), &env).map(|(g, _)| g)
}

/// A RAM-backed directory for the state (`/dev/shm`), when this machine has one.
fn tmpfs_root() -> Option<&'static Path> {
    let shm = Path::new("/dev/shm");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let is_tmpfs = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/dev/shm") && l.contains(" tmpfs "));
    is_tmpfs.then_some(shm)
}

/// `n` tokens, `gap` apart: the fake's own streaming time is about `n × gap`.
fn tokens(n: usize, gap: Duration) -> Script {
    Script::text((0..n).map(|i| format!("tok{i} "))).chunk_delay(gap)
}

fn chat_send(ctl: &mut Ws, id: &str, key: &str, text: &str) -> Result<(), String> {
    let params = json!({"sessionKey": key, "message": text, "idempotencyKey": id});
    ws::request(ctl, id, "chat.send", params).map(|_| ())
}

/// Reads until every run in `runs` has its final `chat` event; returns their arrival times.
fn wait_finals(ctl: &mut Ws, runs: &[String], limit: Duration) -> Result<Vec<Instant>, String> {
    let mut done: Vec<Option<Instant>> = vec![None; runs.len()];
    let deadline = Instant::now() + limit;
    while done.iter().any(Option::is_none) {
        if Instant::now() > deadline {
            return Err(format!("runs not finished within {limit:?}"));
        }
        let Some(v) = ws::read_json(ctl)? else {
            continue;
        };
        if v["event"] != "chat" || v["payload"]["state"] == "delta" {
            continue;
        }
        let run = v["payload"]["runId"].as_str().unwrap_or("");
        if let Some(i) = runs.iter().position(|r| r == run) {
            if v["payload"]["state"] != "final" {
                return Err(format!("run {run} ended {}", v["payload"]));
            }
            done[i] = Some(Instant::now());
        }
    }
    Ok(done.into_iter().flatten().collect())
}

pub fn run(bin: &Path, p: &Plan, rep: &mut Report) -> Result<(), String> {
    overhead(bin, p, rep)?;
    throughput(bin, rep)?;
    peak_rss(bin, p, rep)
}

/// Sequential turns: (send → final) minus (the fake's first request byte → its stream's end).
/// What is left is the gateway: lanes, prompt, transcript, HTTP, SSE, events. Measured on fresh
/// sessions (no history) and on one session as its history grows, since every turn re-reads
/// its transcript and resends the history.
fn overhead(bin: &Path, p: &Plan, rep: &mut Report) -> Result<(), String> {
    let fake = FakeLlm::start();
    let n = if p.quick { 20 } else { 200 };
    fake.set_default(tokens(20, Duration::from_millis(2)));
    let gw = start(bin, &fake, 4)?;
    let (mut ctl, _) = ws::connect(gw.port)?;
    // The first turn also creates the workspace (bootstrap files, `git init`): its own row.
    let first = turns(&mut ctl, &fake, 1, |_| "warm-up".into())?.0.remove(0);
    rep.row(
        "agent turn overhead, first turn of a new workspace (bootstrap files, git init)",
        fmt_ms(first),
        "—".into(),
        None,
    );
    let host = HostCpu::now();
    let (mut fresh, mut before, mut after) = turns(&mut ctl, &fake, n, |i| format!("fresh-{i}"))?;
    let steal = gw::steal_since(host, n);
    let p99 = percentile(&mut fresh, 0.99);
    rep.row(
        &format!(
            "agent turn overhead beyond the provider p50 / p99 ({n} fresh sessions, 20 tokens)"
        ),
        format!("{} / {}", fmt_ms(percentile(&mut fresh, 0.5)), fmt_ms(p99)),
        "p99 ≤ 1 ms".into(),
        Some(p99 <= Duration::from_millis(1)),
    );
    rep.row(
        "… of which before the request / after the stream, p50",
        format!(
            "{} / {}",
            fmt_ms(percentile(&mut before, 0.5)),
            fmt_ms(percentile(&mut after, 0.5))
        ),
        "—".into(),
        None,
    );
    rep.row(
        "… host CPU steal during those turns (the hypervisor running others)",
        steal,
        "—".into(),
        None,
    );
    let (grown, _, _) = turns(&mut ctl, &fake, n, |_| "long".into())?;
    let (head, tail) = grown.split_at(n / 10);
    let (mut head, mut tail) = (head.to_vec(), tail[tail.len() - n / 10..].to_vec());
    rep.row(
        &format!(
            "… on one session growing to {n} turns: p50 of the first / last {} turns",
            n / 10
        ),
        format!(
            "{} / {}",
            fmt_ms(percentile(&mut head, 0.5)),
            fmt_ms(percentile(&mut tail, 0.5))
        ),
        "—".into(),
        None,
    );
    ws::close(ctl);
    drop(gw);
    overhead_on_tmpfs(bin, n, rep)
}

/// The fresh-session figure again with the state dir in RAM: what the gateway costs apart from
/// the disk. (This VM's root ext4 has no journal, so every file it creates scans the inodes
/// freed in the last minutes; each turn creates and deletes several: locks, temp files.)
fn overhead_on_tmpfs(bin: &Path, n: usize, rep: &mut Report) -> Result<(), String> {
    let Some(root) = tmpfs_root() else {
        rep.row(
            "agent turn overhead, fresh sessions, state dir on tmpfs",
            "skipped: no tmpfs at /dev/shm".into(),
            "—".into(),
            None,
        );
        return Ok(());
    };
    let fake = FakeLlm::start();
    fake.set_default(tokens(20, Duration::from_millis(2)));
    let gw = start_in(Some(root), bin, &fake, 4)?;
    let (mut ctl, _) = ws::connect(gw.port)?;
    turns(&mut ctl, &fake, 1, |_| "warm-up".into())?;
    let host = HostCpu::now();
    let (mut fresh, _, _) = turns(&mut ctl, &fake, n, |i| format!("fresh-{i}"))?;
    let steal = gw::steal_since(host, n);
    rep.row(
        &format!(
            "agent turn overhead, {n} fresh sessions again, state dir on tmpfs ({}): p50 / p99",
            root.display()
        ),
        format!("{}; host steal {steal}", p50_p99(&mut fresh)),
        "—".into(),
        None,
    );
    ws::close(ctl);
    Ok(())
}

/// `n` turns, one after another, on the session `key(i)`; per turn: the gateway's share, the
/// part before the request reached the fake, the part after the fake ended its stream.
type Split = (Vec<Duration>, Vec<Duration>, Vec<Duration>);

fn turns(
    ctl: &mut Ws,
    fake: &FakeLlm,
    n: usize,
    key: impl Fn(usize) -> String,
) -> Result<Split, String> {
    let (mut total, mut before, mut after) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let id = format!("ov-{}-{i}", key(i));
        let answered = fake.timings().len();
        let t0 = Instant::now();
        chat_send(ctl, &id, &key(i), &format!("turn {i}"))?;
        let t_final = wait_finals(ctl, &[id], Duration::from_secs(30))?[0];
        let (got, ended) = fake
            .timing(answered, Duration::from_secs(5))
            .ok_or("the fake recorded no request for the turn")?;
        total.push((t_final - t0).saturating_sub(ended - got));
        before.push(got.saturating_duration_since(t0));
        after.push(t_final.saturating_duration_since(ended));
    }
    Ok((total, before, after))
}

/// 100 sessions at once with `maxConcurrent` 4: wall time against the ideal
/// `ceil(100 / 4) × stream time`, and the most requests the fake saw at once.
fn throughput(bin: &Path, rep: &mut Report) -> Result<(), String> {
    let fake = FakeLlm::start();
    let stream = Duration::from_millis(50);
    fake.set_default(tokens(20, stream / 20));
    let gw = start(bin, &fake, 4)?;
    // Requests on one connection, events read on another: a response wait skips events.
    let (mut ctl, _) = ws::connect(gw.port)?;
    let (mut sender, _) = ws::connect(gw.port)?;
    let runs: Vec<String> = (0..100).map(|i| format!("tp-{i}")).collect();
    let t0 = Instant::now();
    for (i, id) in runs.iter().enumerate() {
        chat_send(&mut sender, id, &format!("bench-{i}"), "go")?;
    }
    wait_finals(&mut ctl, &runs, Duration::from_secs(120))?;
    let wall = t0.elapsed();
    let ideal = stream * 25;
    rep.row(
        "agent throughput: 100 sessions, maxConcurrent 4, 50 ms streams",
        format!(
            "{:.2} s = {:.1} turns/s (ideal {:.2} s); max in flight at the provider {}",
            wall.as_secs_f64(),
            100.0 / wall.as_secs_f64(),
            ideal.as_secs_f64(),
            fake.max_in_flight()
        ),
        "in flight ≤ 4".into(),
        Some(fake.max_in_flight() <= 4),
    );
    ws::close(ctl);
    Ok(())
}

/// 200 clients connected, 4 turns streaming 200 tokens each (every delta goes to every client).
fn peak_rss(bin: &Path, p: &Plan, rep: &mut Report) -> Result<(), String> {
    let fake = FakeLlm::start();
    fake.set_default(tokens(200, Duration::from_millis(5)));
    let gw = start(bin, &fake, 4)?;
    let mut readers = Vec::new();
    for i in 0..p.clients {
        let (c, _) = ws::connect(gw.port).map_err(|e| format!("client {i}: {e}"))?;
        readers.push(Reader::spawn(c)?);
    }
    let (mut ctl, _) = ws::connect(gw.port)?;
    let (mut sender, _) = ws::connect(gw.port)?;
    let before = gw::status(gw.pid)?;
    let sampler = gw::RssSampler::start(gw.pid);
    let runs: Vec<String> = (0..4).map(|i| format!("rss-{i}")).collect();
    for (i, id) in runs.iter().enumerate() {
        chat_send(&mut sender, id, &format!("stream-{i}"), "stream please")?;
    }
    wait_finals(&mut ctl, &runs, Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_millis(100));
    let end = gw::status(gw.pid)?;
    let peak = sampler.max_kb().max(end.rss_kb);
    rep.row(
        &format!(
            "peak RSS, 4 streaming turns × 200 tokens, {} clients",
            p.clients
        ),
        format!(
            "{} (before the turns {}; VmHWM {})",
            mib(peak),
            mib(before.rss_kb),
            mib(end.hwm_kb)
        ),
        "≤ 32 MiB".into(),
        Some(peak * 1024 <= 32 * MIB),
    );
    readers.iter().for_each(Reader::request_stop);
    ws::close(ctl);
    Ok(())
}
