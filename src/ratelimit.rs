//! Small rate limiters shared by the receive paths (VRRP, the mon port, traps): a per-kind log limiter that counts what it suppressed, and a token bucket; time is an argument, no clock reads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Per-kind log limiter: the first message of a kind passes, then one per
/// period, reporting how many were suppressed in between. A client that
/// floods failed logins or spoofed traps costs one line per period.
#[derive(Debug)]
pub struct LogLimit {
    every: Duration,
    kinds: HashMap<&'static str, (Instant, u64)>,
}

impl LogLimit {
    pub fn new(every: Duration) -> LogLimit {
        LogLimit {
            every,
            kinds: HashMap::new(),
        }
    }

    /// Whether a message of `kind` may be logged at `now`.
    pub fn allow(&mut self, kind: &'static str, now: Instant) -> bool {
        self.allow_counting(kind, now).is_some()
    }

    /// `Some(suppressed since the last one)` when a message of `kind` may
    /// be logged at `now`; `None` (and one more suppressed) otherwise.
    pub fn allow_counting(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(kind) {
            Some((last, suppressed)) if now.duration_since(*last) < self.every => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let n = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(n)
            }
            None => {
                self.kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_second: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: None,
        }
    }

    /// Take one token at `now`; false when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.duration_since(last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Connections a listener serves at once: at most `total`, and at most
/// `per_client` from one client address, so one client cannot take every
/// slot (nor the daemon's file descriptors).
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    total: usize,
    per_client: usize,
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; its slot is given back on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    client: IpAddr,
    open: Arc<Mutex<Open>>,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Total(usize),
    PerClient(usize),
}

impl ConnectionLimits {
    pub fn new(total: usize, per_client: usize) -> ConnectionLimits {
        ConnectionLimits {
            total,
            per_client,
            open: Arc::default(),
        }
    }

    /// Admit a connection from `client`, or say which limit it hit.
    pub fn admit(&self, client: IpAddr) -> Result<ConnectionPermit, Refused> {
        let client = client.to_canonical();
        // A poisoned lock only means a panic elsewhere: the counts are whole.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.total {
            return Err(Refused::Total(self.total));
        }
        let mine = open.by_client.entry(client).or_insert(0);
        if *mine >= self.per_client {
            return Err(Refused::PerClient(self.per_client));
        }
        *mine += 1;
        open.total += 1;
        Ok(ConnectionPermit {
            client,
            open: self.open.clone(),
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total(n) => write!(f, "{n} connections open (the limit)"),
            Refused::PerClient(n) => {
                write!(f, "{n} connections open from this address (the limit)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_limiter_passes_one_per_period_and_counts_the_rest() {
        let every = Duration::from_secs(30);
        let mut limit = LogLimit::new(every);
        let t0 = Instant::now();
        assert_eq!(limit.allow_counting("ttl", t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(limit.allow_counting("ttl", t0), None);
        }
        assert_eq!(
            limit.allow_counting("vrid", t0),
            Some(0),
            "kinds are separate"
        );
        assert_eq!(limit.allow_counting("ttl", t0 + every), Some(1000));
        assert_eq!(limit.allow_counting("ttl", t0 + every), None);
        assert!(!limit.allow("ttl", t0 + every));
        assert!(limit.allow("ttl", t0 + every * 2));
    }

    #[test]
    fn the_bucket_passes_its_burst_then_its_rate() {
        let mut bucket = TokenBucket::new(10, 5);
        let t0 = Instant::now();
        assert_eq!((0..100).filter(|_| bucket.take(t0)).count(), 5);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            (0..100).filter(|_| bucket.take(t1)).count(),
            5,
            "refill stops at the burst"
        );
        let t2 = t1 + Duration::from_millis(300);
        assert_eq!((0..100).filter(|_| bucket.take(t2)).count(), 3);
    }

    #[test]
    fn connections_are_limited_in_total_and_per_client() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), Refused::PerClient(2));
        let b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).unwrap_err(), Refused::Total(3));
        drop(b1);
        drop(a1);
        assert!(limits.admit(a).is_ok(), "slots come back on drop");
        assert!(limits.admit("::ffff:192.0.2.2".parse().unwrap()).is_ok());
    }
}
