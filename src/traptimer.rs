//! mon's trap timers (pure): the `traptimeout` heartbeat that fails a service when no trap arrives in time, and `trapduration`, which sets a trapped service back to OK silently.
//!
//! Reference: `mon.md` §8.1 (steps 1–2 of the main loop) and §10. A trap
//! restarts the service's heartbeat and starts its `trapduration` timer.
//! When the heartbeat expires the supervisor records a failure from source
//! `TrapTimeout` (alerts get `-O`), and the heartbeat starts again, so a
//! silent sender keeps failing every `traptimeout`, as in mon. When the
//! `trapduration` timer expires the service is set to OK with no alert.
//!
//! Time comes in as [`Instant`]s; nothing here reads a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// What a timer asks the supervisor to do for one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapEvent {
    /// No trap within `traptimeout`: record a trap-timeout failure.
    Timeout,
    /// `trapduration` has passed since the last trap: back to OK, silently.
    Reset,
}

/// The timers of every service that has one, keyed by service key.
#[derive(Debug, Default)]
pub struct TrapTimers {
    /// service key → (traptimeout, when it next expires)
    heartbeats: BTreeMap<String, (Duration, Instant)>,
    /// service key → when the trapduration reset is due
    resets: BTreeMap<String, Instant>,
    durations: BTreeMap<String, Duration>,
}

impl TrapTimers {
    /// Make the timers follow a (new) config: `services` lists each
    /// service's key with its `traptimeout` and `trapduration`. A service
    /// that keeps its traptimeout keeps its running heartbeat; a new one
    /// starts counting at `now`; timers of services that lost the setting
    /// are dropped.
    pub fn configure<'a>(
        &mut self,
        services: impl IntoIterator<Item = (&'a str, Option<Duration>, Option<Duration>)>,
        now: Instant,
    ) {
        let mut heartbeats = BTreeMap::new();
        let mut durations = BTreeMap::new();
        for (key, timeout, duration) in services {
            if let Some(timeout) = timeout.filter(|t| !t.is_zero()) {
                let due = match self.heartbeats.get(key) {
                    Some(&(old, due)) if old == timeout => due,
                    _ => now + timeout,
                };
                heartbeats.insert(key.to_string(), (timeout, due));
            }
            if let Some(duration) = duration.filter(|d| !d.is_zero()) {
                durations.insert(key.to_string(), duration);
            }
        }
        self.resets.retain(|k, _| durations.contains_key(k));
        self.heartbeats = heartbeats;
        self.durations = durations;
    }

    /// A trap for `key` arrived at `now`.
    pub fn on_trap(&mut self, key: &str, now: Instant) {
        if let Some((timeout, due)) = self.heartbeats.get_mut(key) {
            *due = now + *timeout;
        }
        if let Some(duration) = self.durations.get(key) {
            self.resets.insert(key.to_string(), now + *duration);
        }
    }

    /// Every timer expired by `now`, in key order; heartbeats are re-armed
    /// one `traptimeout` after `now` (mon repeats the failure each period),
    /// resets are one-shot.
    pub fn due(&mut self, now: Instant) -> Vec<(String, TrapEvent)> {
        let mut out = Vec::new();
        for (key, (timeout, due)) in &mut self.heartbeats {
            if *due <= now {
                out.push((key.clone(), TrapEvent::Timeout));
                *due = now + *timeout;
            }
        }
        let expired: Vec<String> = self
            .resets
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.resets.remove(&key);
            out.push((key, TrapEvent::Reset));
        }
        out
    }

    /// The earliest time any timer expires.
    pub fn next(&self) -> Option<Instant> {
        self.heartbeats
            .values()
            .map(|(_, due)| *due)
            .chain(self.resets.values().copied())
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_silent_sender_fails_every_traptimeout_and_a_trap_restarts_the_count() {
        let start = Instant::now();
        let mut t = TrapTimers::default();
        t.configure([("g/s", Some(10 * S), None)], start);
        assert_eq!(t.next(), Some(start + 10 * S));
        assert!(t.due(start + 9 * S).is_empty());
        assert_eq!(
            t.due(start + 10 * S),
            vec![("g/s".to_string(), TrapEvent::Timeout)]
        );
        // Re-armed: the next failure is one period later, not at once.
        assert!(t.due(start + 11 * S).is_empty());
        assert_eq!(t.due(start + 20 * S).len(), 1);
        // A trap at 25 s pushes the next expiry to 35 s.
        t.on_trap("g/s", start + 25 * S);
        assert!(t.due(start + 34 * S).is_empty());
        assert_eq!(t.due(start + 35 * S).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn trapduration_resets_once_after_each_trap() {
        let start = Instant::now();
        let mut t = TrapTimers::default();
        t.configure([("g/s", None, Some(60 * S))], start);
        assert_eq!(t.next(), None, "nothing runs before the first trap");
        t.on_trap("g/s", start + 5 * S);
        assert!(t.due(start + 64 * S).is_empty());
        assert_eq!(
            t.due(start + 65 * S),
            vec![("g/s".to_string(), TrapEvent::Reset)]
        );
        assert!(t.due(start + 200 * S).is_empty(), "one-shot");
    }

    #[tokio::test(start_paused = true)]
    async fn reconfigure_keeps_running_heartbeats_and_drops_removed_ones() {
        let start = Instant::now();
        let mut t = TrapTimers::default();
        t.configure(
            [("a/s", Some(10 * S), None), ("b/s", Some(10 * S), Some(S))],
            start,
        );
        t.on_trap("b/s", start + 2 * S);
        // At 5 s: a keeps its expiry (10 s), c is new (15 s), b is gone.
        t.configure(
            [("a/s", Some(10 * S), None), ("c/s", Some(10 * S), None)],
            start + 5 * S,
        );
        assert_eq!(
            t.due(start + 10 * S),
            vec![("a/s".into(), TrapEvent::Timeout)]
        );
        assert_eq!(
            t.due(start + 15 * S),
            vec![("c/s".into(), TrapEvent::Timeout)]
        );
        assert_eq!(t.next(), Some(start + 20 * S));
    }
}
