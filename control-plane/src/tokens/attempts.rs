//! Failed authentication attempts per client address: past [`MAX_FAILURES`] in a
//! [`WINDOW`], an address gets 429 for whatever token it presents that this replica does not
//! already know as valid, until the window ends. So a client guessing tokens costs at most that
//! many database lookups a minute, and a client with a good token is never locked out by
//! another one on its address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may have in one window.
pub const MAX_FAILURES: u32 = 10;

/// How long failures are counted from the first one.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Addresses tracked at most; when full, windows that ended make room, then the oldest.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Default)]
pub struct Attempts {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Attempts {
    /// How long `address` must wait before its next attempt counts, if it has used up its
    /// failures.
    pub fn blocked_for(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (since, count) = failures.get(&address)?;
        let ends = *since + WINDOW;
        (*count >= MAX_FAILURES && now < ends).then(|| ends - now)
    }

    /// Counts one failure of `address`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&address) {
            failures.retain(|_, (since, _)| now < *since + WINDOW);
            if failures.len() >= MAX_ADDRESSES
                && let Some(oldest) = failures.iter().min_by_key(|(_, (since, _))| *since)
            {
                let oldest = *oldest.0;
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(address).or_insert((now, 0));
        if now >= entry.0 + WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let attempts = Attempts::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            attempts.failed(a, start);
        }
        assert_eq!(attempts.blocked_for(a, start), None);
        attempts.failed(a, start);
        let later = start + Duration::from_secs(20);
        assert_eq!(
            attempts.blocked_for(a, later),
            Some(Duration::from_secs(40))
        );
        assert_eq!(attempts.blocked_for(b, later), None);
        assert_eq!(attempts.blocked_for(a, start + WINDOW), None);
        // A failure after the window starts a new count.
        attempts.failed(a, start + WINDOW);
        assert_eq!(attempts.blocked_for(a, start + WINDOW), None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let attempts = Attempts::default();
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 100) {
            attempts.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        let tracked = attempts
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        assert_eq!(tracked, MAX_ADDRESSES);
    }
}
