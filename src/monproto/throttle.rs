//! Login backoff for the mon port (pure; time is an argument): failed logins are counted per client address (IPv6 per /64) and per user name; past a few free failures each further attempt must wait, doubling up to a cap.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// How hard the throttle pushes back.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Failures that cost nothing (typos).
    pub free: u32,
    /// The wait after the first failure past `free`; doubled after each.
    pub base: Duration,
    pub max: Duration,
    /// A key with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Keys kept per kind (addresses, users); the oldest go first.
    pub capacity: usize,
}

impl Default for Policy {
    /// Five free failures, then 1 s, 2 s, 4 s ... at most a minute: a
    /// guesser gets about one try a minute per address and per user.
    fn default() -> Policy {
        Policy {
            free: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            forget_after: Duration::from_secs(15 * 60),
            capacity: 10_000,
        }
    }
}

/// Failed-login counts by client address and by user.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: Policy,
    clients: BTreeMap<IpAddr, Failures>,
    users: BTreeMap<String, Failures>,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

impl LoginThrottle {
    pub fn new(policy: Policy) -> LoginThrottle {
        LoginThrottle {
            policy,
            clients: BTreeMap::new(),
            users: BTreeMap::new(),
        }
    }

    /// Begin a login as `user` from `client` at `now`: `Err(wait)` when it
    /// must not be checked yet. An attempt counts as a failure until
    /// [`LoginThrottle::succeeded`] says otherwise, so parallel guesses
    /// from many connections are counted before any of them is checked.
    pub fn attempt(&mut self, client: IpAddr, user: &str, now: Instant) -> Result<(), Duration> {
        let client = client_key(client);
        let wait = [self.clients.get(&client), self.users.get(user)]
            .into_iter()
            .flatten()
            .filter_map(|f| self.remaining(f, now))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        let policy = self.policy;
        bump(&mut self.clients, client, now, policy);
        bump(&mut self.users, user.to_string(), now, policy);
        Ok(())
    }

    /// The login begun by [`LoginThrottle::attempt`] succeeded: the user's
    /// failures are forgotten and this attempt no longer counts against the
    /// address (its earlier failures do, so one good account does not reset
    /// a guesser).
    pub fn succeeded(&mut self, client: IpAddr, user: &str) {
        self.users.remove(user);
        if let Some(f) = self.clients.get_mut(&client_key(client)) {
            f.count = f.count.saturating_sub(1);
        }
    }

    fn remaining(&self, failures: &Failures, now: Instant) -> Option<Duration> {
        let over = failures.count.checked_sub(self.policy.free)?;
        if over == 0 || now.duration_since(failures.last) >= self.policy.forget_after {
            return None;
        }
        let wait = self
            .policy
            .base
            .saturating_mul(1u32 << (over - 1).min(20))
            .min(self.policy.max);
        let until = failures.last + wait;
        (until > now).then(|| until - now)
    }
}

/// IPv4 addresses as they are; IPv6 by /64 (one host usually has the
/// whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

fn bump<K: Ord + Clone>(map: &mut BTreeMap<K, Failures>, key: K, now: Instant, policy: Policy) {
    let entry = map.entry(key).or_insert(Failures {
        count: 0,
        last: now,
    });
    if now.duration_since(entry.last) >= policy.forget_after {
        entry.count = 0;
    }
    entry.count = entry.count.saturating_add(1);
    entry.last = now;
    if map.len() > policy.capacity {
        map.retain(|_, f| now.duration_since(f.last) < policy.forget_after);
        while map.len() > policy.capacity {
            let oldest = map
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn free_failures_then_a_doubling_wait_up_to_the_cap() {
        let mut t = LoginThrottle::new(Policy::default());
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..6 {
            assert_eq!(t.attempt(a, "ann", t0), Ok(()), "five free failures");
        }
        assert_eq!(t.attempt(a, "ann", t0), Err(Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(t.attempt(a, "ann", t1), Ok(()));
        assert_eq!(t.attempt(a, "ann", t1), Err(Duration::from_secs(2)));
        let mut now = t1;
        for _ in 0..20 {
            now += Duration::from_secs(61);
            assert_eq!(t.attempt(a, "ann", now), Ok(()));
        }
        assert_eq!(
            t.attempt(a, "ann", now),
            Err(Duration::from_secs(60)),
            "capped"
        );
        assert_eq!(
            t.attempt(a, "ann", now + Duration::from_secs(15 * 60)),
            Ok(()),
            "forgotten after a quiet quarter hour"
        );
    }

    #[test]
    fn the_address_and_the_user_are_throttled_separately() {
        let mut t = LoginThrottle::new(Policy::default());
        let now = Instant::now();
        // One address guessing many users, and many addresses guessing one.
        for n in 0..6 {
            t.attempt(ip("192.0.2.1"), &format!("user{n}"), now)
                .unwrap();
            t.attempt(ip(&format!("198.51.100.{n}")), "root", now)
                .unwrap();
        }
        assert!(t.attempt(ip("192.0.2.1"), "someone", now).is_err());
        assert!(t.attempt(ip("203.0.113.9"), "root", now).is_err());
        assert_eq!(t.attempt(ip("203.0.113.9"), "ann", now), Ok(()));
        // IPv6 by /64.
        for n in 0..6 {
            t.attempt(ip(&format!("2001:db8::{n}")), &format!("v6user{n}"), now)
                .unwrap();
        }
        assert!(t.attempt(ip("2001:db8::ffff:1"), "y", now).is_err());
        assert_eq!(t.attempt(ip("2001:db8:0:1::1"), "y", now), Ok(()));
        // A success clears the user, and its own attempt from the address.
        t.succeeded(ip("203.0.113.9"), "root");
        assert_eq!(t.attempt(ip("203.0.113.10"), "root", now), Ok(()));
        assert!(t.attempt(ip("192.0.2.1"), "root", now).is_err());
        let b = ip("203.0.113.20");
        for _ in 0..20 {
            t.attempt(b, "ann", now).unwrap();
            t.succeeded(b, "ann");
        }
        assert_eq!(
            t.attempt(b, "ann", now),
            Ok(()),
            "good logins never throttle"
        );
    }

    #[test]
    fn memory_is_bounded_by_the_capacity() {
        let mut t = LoginThrottle::new(Policy {
            capacity: 100,
            ..Policy::default()
        });
        let now = Instant::now();
        for n in 0..1000u32 {
            let at = now + Duration::from_millis(n.into());
            t.attempt(IpAddr::V4(n.into()), &n.to_string(), at).unwrap();
        }
        assert_eq!(t.users.len(), 100);
        assert_eq!(t.clients.len(), 100);
        assert!(t.users.contains_key("999"), "the newest stay");
    }
}
