//! Small rate limiters shared by the receive paths (VRRP, the mon port, traps): a per-kind log limiter that counts what it suppressed, and a token bucket; time is an argument, no clock reads.

use std::collections::HashMap;
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
}
