//! Result rows: printed as they are measured, then as a table on stdout and a markdown section
//! appended to BENCHMARKS.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Row {
    metric: String,
    value: String,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

/// Nearest-rank percentile (sorts in place); zero for no samples.
pub fn percentile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub fn fmt_ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// `"<p50> / <p99>"` of the samples.
pub fn p50_p99(v: &mut [Duration]) -> String {
    format!(
        "{} / {}",
        fmt_ms(percentile(v, 0.5)),
        fmt_ms(percentile(v, 0.99))
    )
}

pub fn mib(kb: u64) -> String {
    format!("{:.2} MiB", kb as f64 / 1024.0)
}

fn met_str(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "NOT MET",
        None => "—",
    }
}

impl Report {
    pub fn row(&mut self, metric: &str, value: String, target: String, met: Option<bool>) {
        eprintln!(
            "bench: {metric}: {value} [{}{}]",
            target,
            if met.is_some() {
                format!(": {}", met_str(met))
            } else {
                String::new()
            }
        );
        self.rows.push(Row {
            metric: metric.to_string(),
            value,
            target,
            met,
        });
    }

    pub fn note(&mut self, n: String) {
        eprintln!("bench: {n}");
        self.notes.push(n);
    }

    pub fn table(&self) -> String {
        let w = |f: fn(&Row) -> usize, h: &str| {
            self.rows
                .iter()
                .map(f)
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        };
        let (a, b, c) = (
            w(|r| r.metric.chars().count(), "metric"),
            w(|r| r.value.chars().count(), "value"),
            w(|r| r.target.chars().count(), "target"),
        );
        let line = |m: &str, v: &str, t: &str, x: &str| format!("{m:<a$}  {v:<b$}  {t:<c$}  {x}\n");
        let mut out = line("metric", "value", "target", "met");
        out += &format!("{}\n", "-".repeat(a + b + c + 13));
        for r in &self.rows {
            out += &line(&r.metric, &r.value, &r.target, met_str(r.met));
        }
        for n in &self.notes {
            out += &format!("note: {n}\n");
        }
        out
    }

    pub fn append_markdown(&self, path: &Path, quick: bool) -> Result<PathBuf, String> {
        let mut md = String::new();
        if !path.exists() {
            md += "# Benchmarks\n\nFigures appended by the gateway benchmark in `tests/bench/`. Run it with `make bench` \
                   (or `cargo bench --bench gateway`; it builds the release binary first). `BENCH_QUICK=1` makes a short \
                   smoke run that appends nothing unless `BENCH_APPEND=1`; `MOLTBOT_BIN=<path>` measures another binary. \
                   The full run takes about 3 minutes. MiB = 2^20 bytes; latencies are measured on the same machine as \
                   the gateway, so they include the benchmark's own scheduling.\n";
        }
        let esc = |s: &str| s.replace('|', "\\|");
        md += &format!(
            "\n## {} — {} — {}{}\n\n",
            utc_now(),
            git_sha(),
            machine(),
            if quick { " — quick run" } else { "" }
        );
        md += "| metric | value | target | met |\n|---|---|---|---|\n";
        for r in &self.rows {
            md += &format!(
                "| {} | {} | {} | {} |\n",
                esc(&r.metric),
                esc(&r.value),
                esc(&r.target),
                met_str(r.met)
            );
        }
        if !self.notes.is_empty() {
            md += "\n";
            for n in &self.notes {
                md += &format!("- {n}\n");
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        f.write_all(md.as_bytes()).map_err(|e| e.to_string())?;
        Ok(path.to_path_buf())
    }
}

fn git_sha() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "uncommitted".into())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

/// `YYYY-MM-DD HH:MM UTC` from the system clock (civil-from-days).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}
