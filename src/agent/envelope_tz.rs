//! Time zones for envelopes without a tz crate: TZif files from the system zoneinfo (`local` =
//! `TZ` or /etc/localtime) and en-US short zone names as Node's `Intl` prints them.

use std::path::Path;

use super::super::reply::js_trim;
use crate::util::iso_from_ms;

const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

// ---------------------------------------------------------------------------------------------
// Time zones (TZif files; `local` reads TZ or /etc/localtime)

/// A resolved zone: its name (for en-US naming rules) and its TZif data.
pub(super) struct Zone {
    pub(super) name: String,
    pub(super) data: Option<Vec<u8>>,
}

impl Zone {
    /// The host zone: `TZ` (a zone name or `:path`), else `/etc/localtime`.
    pub(super) fn local() -> Zone {
        let name = host_timezone();
        let tz = std::env::var("TZ").ok().filter(|s| !s.is_empty());
        let data = match tz.as_deref().map(|t| t.trim_start_matches(':')) {
            Some(t) if t.starts_with('/') => std::fs::read(t).ok(),
            Some(t) => read_zoneinfo(t),
            None => std::fs::read("/etc/localtime").ok(),
        };
        Zone { name, data }
    }

    pub(super) fn iana(name: &str) -> Option<Zone> {
        Some(Zone {
            name: name.to_string(),
            data: Some(read_zoneinfo(name)?),
        })
    }
}

pub(super) fn read_zoneinfo(name: &str) -> Option<Vec<u8>> {
    // Zone names only: no absolute paths or `..` escaping the zoneinfo directory.
    if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == "..") {
        return None;
    }
    let data = std::fs::read(Path::new(ZONEINFO_DIR).join(name)).ok()?;
    data.starts_with(b"TZif").then_some(data)
}

/// Whether `Intl` would accept the zone (a zoneinfo entry exists), as `resolveExplicitTimezone`.
pub fn is_valid_timezone(name: &str) -> bool {
    let n = js_trim(name);
    n.eq_ignore_ascii_case("utc") || read_zoneinfo(n).is_some()
}

/// The host zone name as `Intl…resolvedOptions().timeZone` reports it (`Etc/UTC` → `UTC`).
pub fn host_timezone() -> String {
    // V8 resolves the host zone once per process; re-read here at most once a minute.
    static ZONE: crate::util::Refreshed<String> =
        crate::util::Refreshed::new(crate::agent::bootstrap::HOST_FACTS_TTL);
    ZONE.get(read_host_timezone)
}

fn read_host_timezone() -> String {
    let from_env = std::env::var("TZ")
        .ok()
        .map(|t| t.trim_start_matches(':').to_string())
        .filter(|t| !t.is_empty() && !t.starts_with('/'));
    let from_link = || {
        let target = std::fs::read_link("/etc/localtime").ok()?;
        let s = target.to_string_lossy().into_owned();
        s.split_once("zoneinfo/").map(|(_, n)| n.to_string())
    };
    let from_file = || {
        std::fs::read_to_string("/etc/timezone")
            .ok()
            .map(|s| s.trim().to_string())
    };
    let name = from_env
        .or_else(from_link)
        .or_else(from_file)
        .unwrap_or_default();
    match name.as_str() {
        "" | "Etc/UTC" | "Etc/GMT" | "GMT" | "Etc/Universal" | "Etc/Zulu" | "Universal"
        | "Zulu" => "UTC".into(),
        _ => name,
    }
}

/// `resolveUserTimezone`: the configured zone if valid, else the host zone.
pub fn resolve_user_timezone(configured: Option<&str>) -> String {
    match configured.map(js_trim) {
        Some(tz) if !tz.is_empty() && is_valid_timezone(tz) => tz.to_string(),
        _ => host_timezone(),
    }
}

pub(super) fn be_u32(d: &[u8], at: usize) -> Option<usize> {
    let b = d.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The UTC offset (seconds), DST flag and abbreviation in force at `t` (Unix seconds).
/// Reads the v2 64-bit block when present. Times past the last transition keep its type (the
/// POSIX footer rule is not evaluated; fat zoneinfo files cover through 2037).
pub(super) fn tzif_lookup(d: &[u8], t: i64) -> Option<(i64, String)> {
    let mut base = 0;
    let mut wide = false;
    if d.get(4).is_some_and(|v| *v >= b'2') {
        base = 44 + block_len(d, 0, 4)?;
        wide = true;
    }
    let count = |k: usize| be_u32(d, base + 20 + 4 * k);
    let (timecnt, typecnt) = (count(3)?, count(4)?);
    let tsize = if wide { 8 } else { 4 };
    let times = base + 44;
    let idx = times + timecnt * tsize;
    let types = idx + timecnt;
    let chars = types + typecnt * 6;
    let read_time = |i: usize| -> Option<i64> {
        let b = d.get(times + i * tsize..times + (i + 1) * tsize)?;
        Some(if wide {
            i64::from_be_bytes(b.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(b.try_into().ok()?))
        })
    };
    let mut ty = 0usize;
    for i in 0..timecnt {
        if read_time(i)? > t {
            break;
        }
        ty = *d.get(idx + i)? as usize;
    }
    let info = d.get(types + ty * 6..types + ty * 6 + 6)?;
    let off = i64::from(i32::from_be_bytes([info[0], info[1], info[2], info[3]]));
    let abbr: String = d
        .get(chars + info[5] as usize..)?
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    Some((off, abbr))
}

/// Byte length of one TZif data block (after its 44-byte header at `at`).
pub(super) fn block_len(d: &[u8], at: usize, tsize: usize) -> Option<usize> {
    let c = |k: usize| be_u32(d, at + 20 + 4 * k);
    let (isut, isstd, leap, time, ty, ch) = (c(0)?, c(1)?, c(2)?, c(3)?, c(4)?, c(5)?);
    Some(time * tsize + time + ty * 6 + ch + leap * (tsize + 4) + isstd + isut)
}

/// Abbreviations en-US `Intl` prints for North American metazones; elsewhere it prints GMT±h.
#[rustfmt::skip]
pub(super) const US_ABBRS: [&str; 14] = [
    "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "AKST", "AKDT", "HST", "HDT", "AST", "ADT",
];

/// The en-US `timeZoneName: "short"` label.
pub(super) fn short_zone_name(zone: &Zone, off: i64, abbr: &str) -> String {
    let n = zone.name.as_str();
    let american = ["America/", "US/", "Canada/"]
        .iter()
        .any(|p| n.starts_with(p))
        || [
            "Pacific/Honolulu",
            "Atlantic/Bermuda",
            "EST5EDT",
            "CST6CDT",
            "MST7MDT",
            "PST8PDT",
        ]
        .contains(&n);
    if american && n != "America/Havana" && US_ABBRS.contains(&abbr) {
        return abbr.to_string();
    }
    if off == 0 {
        let utc = ["UTC", "Etc/UTC", "Etc/UCT", "UCT"].contains(&n) || abbr == "UTC";
        return if utc { "UTC" } else { "GMT" }.to_string();
    }
    let sign = if off < 0 { '-' } else { '+' };
    let (h, m) = (off.abs() / 3600, off.abs() % 3600 / 60);
    if m == 0 {
        format!("GMT{sign}{h}")
    } else {
        format!("GMT{sign}{h}:{m:02}")
    }
}

/// (`YYYY-MM-DD`, `HH:MM:SS`, zone label) of `ms` in `zone`.
pub(super) fn zoned_parts(ms: u64, zone: &Zone) -> (String, String, String) {
    let secs = (ms / 1000) as i64;
    let (off, abbr) = match &zone.data {
        Some(d) => tzif_lookup(d, secs).unwrap_or((0, "UTC".into())),
        None => (0, "UTC".into()),
    };
    let shifted = (ms as i64 + off * 1000).max(0) as u64;
    let iso = iso_from_ms(shifted);
    (
        iso[..10].to_string(),
        iso[11..19].to_string(),
        short_zone_name(zone, off, &abbr),
    )
}
