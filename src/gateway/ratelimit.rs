//! Failed-auth rate limiting per client IP (later upstream behaviour, shipped by default): after
//! `MAX_FAILURES` failures within `WINDOW`, connects from that IP are refused until the window
//! ends. Loopback clients are exempt, as upstream's default `exemptLoopback`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const MAX_FAILURES: u32 = 10;
/// Bound on tracked addresses; the oldest windows are forgotten first.
const MAX_TRACKED: usize = 4096;

pub const LOCKED_OUT: &str = "unauthorized: too many failed authentication attempts (retry later)";

#[derive(Default)]
pub struct AuthLimiter {
    failures: HashMap<IpAddr, (Instant, u32)>,
}

impl AuthLimiter {
    /// Whether this address is currently locked out.
    pub fn is_locked(&mut self, ip: IpAddr) -> bool {
        if ip.is_loopback() {
            return false;
        }
        match self.failures.get(&ip) {
            Some((start, n)) if start.elapsed() < WINDOW => *n >= MAX_FAILURES,
            Some(_) => {
                self.failures.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Records a failed attempt.
    pub fn record_failure(&mut self, ip: IpAddr) {
        if ip.is_loopback() {
            return;
        }
        if self.failures.len() >= MAX_TRACKED {
            self.failures
                .retain(|_, (start, _)| start.elapsed() < WINDOW);
            if self.failures.len() >= MAX_TRACKED {
                self.failures.clear();
            }
        }
        let entry = self.failures.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_ten_failures_but_not_loopback() {
        let mut l = AuthLimiter::default();
        let remote: IpAddr = "203.0.113.5".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(!l.is_locked(remote));
            l.record_failure(remote);
        }
        assert!(l.is_locked(remote));
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..50 {
            l.record_failure(lo);
        }
        assert!(!l.is_locked(lo));
    }
}
