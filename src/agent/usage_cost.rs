//! `usage.cost`: token and cost totals per local day over the default agent's transcripts
//! (upstream's `loadCostUsageSummary`): every assistant message with usage in the window, its
//! `usage.cost.total`, else an estimate from `models.providers.<p>.models[].cost`.

use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::agent::sessions::Usage;
use crate::agent::transcript::parse_iso_ms;

const DAY_MS: u64 = 86_400_000;

#[derive(Default, Clone)]
struct Totals {
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
    total_tokens: f64,
    total_cost: f64,
    missing_cost_entries: u64,
}

impl Totals {
    fn add(&mut self, u: &Usage, cost: Option<f64>) {
        let (i, o, r, w) = (
            u.input.unwrap_or(0.0),
            u.output.unwrap_or(0.0),
            u.cache_read.unwrap_or(0.0),
            u.cache_write.unwrap_or(0.0),
        );
        self.input += i;
        self.output += o;
        self.cache_read += r;
        self.cache_write += w;
        self.total_tokens += u.total.unwrap_or(i + o + r + w);
        match cost {
            Some(c) => self.total_cost += c,
            None => self.missing_cost_entries += 1,
        }
    }

    fn to_json(&self) -> Map<String, Value> {
        let n = crate::util::js_number;
        let mut m = Map::new();
        m.insert("input".into(), n(self.input));
        m.insert("output".into(), n(self.output));
        m.insert("cacheRead".into(), n(self.cache_read));
        m.insert("cacheWrite".into(), n(self.cache_write));
        m.insert("totalTokens".into(), n(self.total_tokens));
        m.insert("totalCost".into(), n(self.total_cost));
        m.insert(
            "missingCostEntries".into(),
            json!(self.missing_cost_entries),
        );
        m
    }
}

/// The `usage.cost` payload for the last `days` days (at least 1) up to `now`.
pub fn summary(sessions_dir: &Path, config: &Value, days: u64, now: u64) -> Value {
    let days = days.max(1);
    let since = now.saturating_sub((days - 1) * DAY_MS);
    let mut daily: std::collections::BTreeMap<String, Totals> = Default::default();
    let mut totals = Totals::default();
    for file in recent_transcripts(sessions_dir, since) {
        scan(&file, config, &mut |ts, usage, cost| {
            if ts < since {
                return;
            }
            daily.entry(local_day(ts)).or_default().add(usage, cost);
            totals.add(usage, cost);
        });
    }
    let daily: Vec<Value> = daily
        .into_iter()
        .map(|(date, t)| {
            let mut m = Map::new();
            m.insert("date".into(), json!(date));
            m.extend(t.to_json());
            Value::Object(m)
        })
        .collect();
    json!({"updatedAt": now, "days": days, "daily": daily, "totals": totals.to_json()})
}

/// `*.jsonl` files modified since `since`.
fn recent_transcripts(dir: &Path, since: u64) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .filter(|e| {
            e.metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| {
                    let ms = t
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    ms >= since
                })
        })
        .map(|e| e.path())
        .collect()
}

fn scan(file: &Path, config: &Value, on_entry: &mut dyn FnMut(u64, &Usage, Option<f64>)) {
    let Ok(f) = std::fs::File::open(file) else {
        return;
    };
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let Ok(entry) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let message = &entry["message"];
        if message["role"] != "assistant" {
            continue;
        }
        let raw = message.get("usage").or_else(|| entry.get("usage"));
        let Some(usage) = raw.and_then(Usage::from_value) else {
            continue;
        };
        let ts = entry["timestamp"]
            .as_str()
            .and_then(parse_iso_ms)
            .or_else(|| message["timestamp"].as_u64());
        let Some(ts) = ts else { continue };
        let cost = raw
            .and_then(|u| u.pointer("/cost/total"))
            .and_then(Value::as_f64)
            .filter(|c| c.is_finite() && *c >= 0.0)
            .or_else(|| estimate(config, &entry, &usage));
        on_entry(ts, &usage, cost);
    }
}

/// `estimateUsageCost` with the configured model's cost (USD per million tokens).
fn estimate(config: &Value, entry: &Value, u: &Usage) -> Option<f64> {
    let field = |k: &str| entry["message"][k].as_str().or_else(|| entry[k].as_str());
    let (provider, model) = (field("provider")?.trim(), field("model")?.trim());
    let models = config.pointer(&format!("/models/providers/{provider}/models"))?;
    let cost = models
        .as_array()?
        .iter()
        .find(|m| m["id"] == model)?
        .get("cost")?;
    let c = |k: &str| cost[k].as_f64().unwrap_or(0.0);
    let total = u.input.unwrap_or(0.0) * c("input")
        + u.output.unwrap_or(0.0) * c("output")
        + u.cache_read.unwrap_or(0.0) * c("cacheRead")
        + u.cache_write.unwrap_or(0.0) * c("cacheWrite");
    total.is_finite().then_some(total / 1e6)
}

/// `YYYY-MM-DD` in the host's local time zone.
fn local_day(ms: u64) -> String {
    let secs = (ms / 1000) as libc::time_t;
    // SAFETY: `tm` is plain data; localtime_r only writes the struct passed.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return crate::util::iso_from_ms(ms)[..10].to_string();
        }
        tm
    };
    format!(
        "{:04}-{:02}-{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_per_day_with_recorded_and_estimated_costs() {
        let dir = std::env::temp_dir().join(format!("usage-cost-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = crate::util::now_ms();
        let lines = [
            json!({"type": "message", "timestamp": crate::util::iso_from_ms(now), "message": {"role": "assistant",
                   "provider": "anthropic", "model": "m", "usage": {"input": 10, "output": 5, "cost": {"total": 0.5}}}}),
            json!({"type": "message", "timestamp": crate::util::iso_from_ms(now), "message": {"role": "assistant",
                   "provider": "custom", "model": "c", "usage": {"input": 1000000, "output": 0}}}),
            json!({"type": "message", "timestamp": crate::util::iso_from_ms(now), "message": {"role": "user", "content": "x"}}),
            json!({"type": "message", "timestamp": crate::util::iso_from_ms(now - 40 * DAY_MS), "message": {"role": "assistant",
                   "usage": {"input": 7, "output": 7}}}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\nnot json\n")).collect();
        std::fs::write(dir.join("s.jsonl"), text).unwrap();
        let cfg = json!({"models": {"providers": {"custom": {"models": [{"id": "c", "cost": {"input": 2, "output": 0}}]}}}});
        let out = summary(&dir, &cfg, 30, now);
        assert_eq!(out["totals"]["input"], 1_000_010);
        assert_eq!(out["totals"]["totalTokens"], 1_000_015);
        assert_eq!(out["totals"]["totalCost"], 2.5);
        assert_eq!(out["totals"]["missingCostEntries"], 0);
        assert_eq!(out["daily"].as_array().unwrap().len(), 1);
        assert_eq!(out["daily"][0]["date"], local_day(now));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
