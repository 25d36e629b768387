//! Small pure helpers shared by every module: time formatting, ids, encodings, secret comparison.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a Unix time in milliseconds, as JavaScript's `toISOString`.
pub fn iso_from_ms(ms: u64) -> String {
    let (y, mo, d) = civil_from_days((ms / 86_400_000) as i64);
    let rem = ms % 86_400_000;
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        (rem / 60_000) % 60,
        (rem / 1000) % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// The current time as an ISO-8601 UTC string.
pub fn iso_now() -> String {
    iso_from_ms(now_ms())
}

/// `YYYY-MM-DD` (UTC) for a Unix time in milliseconds.
pub fn date_from_ms(ms: u64) -> String {
    let (y, mo, d) = civil_from_days((ms / 86_400_000) as i64);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Fills `buf` from the kernel's CSPRNG. Falls back to a time-derived value only if
/// /dev/urandom cannot be read, which does not happen on the Linux hosts we target.
pub fn random_bytes(buf: &mut [u8]) {
    // getrandom(2) first: no file descriptor per id (ids are minted for every transcript entry).
    let ok = getrandom(buf)
        || std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(buf))
            .is_ok();
    if !ok {
        let mut x = now_ms() ^ u64::from(std::process::id()) << 32;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

/// Fills `buf` from the kernel's CSPRNG; `false` if the call is unavailable or fails.
fn getrandom(buf: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        filled += n as usize;
    }
    true
}

/// A random version-4 UUID in its lowercase hyphenated form.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `n` random bytes as lowercase hex (device tokens are 16 bytes = 32 hex chars).
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    random_bytes(&mut b);
    hex(&b)
}

/// 8 hex characters for a transcript entry id (its caller keeps it unique in the file), never a
/// secret, and minted for every entry, so from a per-thread generator seeded once from the
/// kernel rather than a `getrandom(2)` each.
pub fn entry_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    let bits = STATE.with(|s| {
        let mut x = s.get();
        while x == 0 {
            let mut seed = [0u8; 8];
            random_bytes(&mut seed);
            x = u64::from_le_bytes(seed);
        }
        // xorshift64*: full period over the non-zero states.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    });
    hex(&((bits >> 32) as u32).to_be_bytes())
}

/// Lowercase hex of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A number as JavaScript prints it into JSON: integral values as integers.
pub fn js_number(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::json!(x as i64)
    } else {
        serde_json::json!(x)
    }
}

/// SHA-256 of `data` as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

/// Compares two secrets in time that depends only on their lengths, never on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle_eq::ct_eq;
    ct_eq(a, b)
}

mod subtle_eq {
    /// Length is not secret (upstream also compares lengths first); the content is.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut diff = 0u8;
        for (x, y) in a.iter().zip(b) {
            diff |= x ^ y;
        }
        std::hint::black_box(diff) == 0
    }
}

/// Decodes base64url or standard base64, with or without padding.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Encodes as base64url without padding (the form upstream uses for keys and signatures).
pub fn base64url_encode(data: &[u8]) -> String {
    encode64(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

/// Encodes as standard, padded base64 (image blocks, data URLs).
pub fn base64_encode(data: &[u8]) -> String {
    encode64(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

fn encode64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            s.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            s.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    s
}

/// Truncates `s` to at most `max` bytes on a char boundary (close reasons are capped at 120 bytes).
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A value read again at most once per `ttl`: host facts that change about never but cost
/// syscalls to read on every turn.
pub struct Refreshed<T> {
    ttl: std::time::Duration,
    slot: parking_lot::Mutex<Option<(std::time::Instant, T)>>,
}

impl<T: Clone> Refreshed<T> {
    pub const fn new(ttl: std::time::Duration) -> Self {
        Refreshed {
            ttl,
            slot: parking_lot::Mutex::new(None),
        }
    }

    pub fn get(&self, read: impl FnOnce() -> T) -> T {
        let mut slot = self.slot.lock();
        match &*slot {
            Some((at, value)) if at.elapsed() < self.ttl => value.clone(),
            _ => {
                let value = read();
                *slot = Some((std::time::Instant::now(), value.clone()));
                value
            }
        }
    }
}

/// Opens `path` for reading if it is a regular file, with its metadata: a FIFO or a device at
/// a path taken from a state file (a session's `sessionFile`) would otherwise block the reader
/// or never end. The open is non-blocking, so even a FIFO's returns at once.
pub fn open_regular(path: &std::path::Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta))
}

/// `fs::read_to_string` for a regular file only (`open_regular`).
pub fn read_regular_file(path: &std::path::Path) -> std::io::Result<String> {
    let (mut file, _) = open_regular(path)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// The host name, as upstream reports it in `server.host` and presence.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("mb-regular-{}", uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("t.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_regular_file(&fifo).unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidInput,
            "no writer, no wait"
        );
        assert!(read_regular_file(&dir).is_err());
        assert!(read_regular_file(std::path::Path::new("/dev/zero")).is_err());
        std::fs::write(dir.join("f"), "text").unwrap();
        assert_eq!(read_regular_file(&dir.join("f")).unwrap(), "text");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refreshed_value_is_read_once_per_ttl() {
        let reads = std::cell::Cell::new(0);
        let read = || {
            reads.set(reads.get() + 1);
            reads.get()
        };
        let kept = Refreshed::new(std::time::Duration::from_secs(60));
        assert_eq!((kept.get(read), kept.get(read)), (1, 1));
        let stale = Refreshed::new(std::time::Duration::ZERO);
        assert_eq!((stale.get(read), stale.get(read)), (2, 3));
    }

    #[test]
    fn iso_matches_javascript() {
        assert_eq!(iso_from_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_from_ms(1_769_508_001_123), "2026-01-27T10:00:01.123Z");
        assert_eq!(date_from_ms(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn base64_round_trip() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(
                base64_decode(&base64url_encode(&data)).as_deref(),
                Some(&data[..])
            );
        }
        assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid_v4());
    }

    #[test]
    fn entry_ids_are_short_hex_and_differ_by_thread() {
        let ids: Vec<String> = (0..100).map(|_| entry_id()).collect();
        let hexdigit = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        assert!(ids
            .iter()
            .all(|id| id.len() == 8 && id.chars().all(hexdigit)));
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Each thread seeds its own generator: another thread does not repeat this sequence.
        let other = std::thread::spawn(|| (0..100).map(|_| entry_id()).collect::<Vec<_>>());
        assert_ne!(other.join().ok(), Some(ids));
    }

    #[test]
    fn secrets_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn truncation_respects_chars() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("abc", 120), "abc");
    }
}
