//! The persistent mail outbox in `statedir/outbox/`: one JSON file per accepted mail alert, written atomically before any send attempt, removed only after the server's 250; the retry schedule (pure) and the dead-letter directory.
//!
//! Delivery guarantee: **at least once**. A letter is on disk before the
//! alert counts as sent, so kill -9 at any moment loses nothing. The file is
//! removed right after the SMTP server accepts the message; a crash in the
//! window between the server's 250 and that removal makes the restarted
//! daemon send the same message again, with the same `Message-ID` (derived
//! from the entry id) so a reader or filter can tell. A clean stop (SIGTERM,
//! `keepmon stop`) lets an in-flight send finish, so nothing is sent twice
//! after a clean restart.

use std::io;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mail::Letter;
use crate::spool::{Spool, SpoolEntry};

/// The outbox directory inside `statedir`.
pub const OUTBOX_DIR: &str = "outbox";
/// Dead letters, inside the outbox directory.
pub const DEAD_DIR: &str = "dead";
/// Files that could not be read, moved aside (never deleted).
pub use crate::spool::UNREADABLE_DIR;

/// One accepted mail alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The file stem; sorts by acceptance time.
    pub id: String,
    /// time(2) when keepmon accepted it; the max-age clock starts here.
    pub created: i64,
    pub letter: Letter,
    /// May be merged with other letters to the same recipients.
    pub digest: bool,
    /// What it is about, for logs and `dump`: `alert web/http`.
    pub about: String,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Set when the entry became a dead letter (time(2)).
    #[serde(default)]
    pub dead_since: Option<i64>,
}

/// A new entry id: acceptance time in nanoseconds, the process id and a
/// per-process sequence number, so ids sort by time and never collide.
pub fn new_id(unix_nanos: u128, pid: u32, seq: u64) -> String {
    format!("{unix_nanos:020}-{pid}-{seq:06}")
}

/// What went wrong with one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The relay could not be reached or the session broke (connection
    /// refused, timeout, TLS): nothing is sent until the relay's retry time.
    Unreachable(String),
    /// The server answered 4xx (or sendmail failed): retry this message later.
    Transient(String),
    /// The server answered 5xx, or the message cannot be built: never retried.
    Permanent(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Unreachable(m) | Failure::Transient(m) | Failure::Permanent(m) => m,
        }
    }
}

/// When to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry's delay; each later one doubles it.
    pub initial: Duration,
    /// The delay never exceeds this.
    pub max_delay: Duration,
    /// Past this age a failing message becomes a dead letter.
    pub max_age: Duration,
}

/// What to do with a message after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    RetryAfter(Duration),
    Dead(String),
}

/// Exponential backoff with jitter: `initial * 2^(attempt-1)`, capped at
/// `max_delay`, then scaled by a factor in [0.75, 1.25) taken from `jitter`
/// (a number in [0, 1) the caller draws), so many messages that failed
/// together do not retry in lockstep. `attempt` counts from 1.
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let base = policy
        .initial
        .saturating_mul(1u32 << doublings)
        .min(policy.max_delay);
    base.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The decision after `attempt` failed attempts, the last one `failure`,
/// for a message accepted `age` ago.
pub fn after_failure(
    policy: &RetryPolicy,
    failure: &Failure,
    attempt: u32,
    age: Duration,
    jitter: f64,
) -> Verdict {
    match failure {
        Failure::Permanent(m) => Verdict::Dead(format!("permanent failure: {m}")),
        _ if age >= policy.max_age => Verdict::Dead(format!(
            "not delivered within max_age {}s after {attempt} attempt(s); last error: {}",
            policy.max_age.as_secs(),
            failure.message()
        )),
        _ => Verdict::RetryAfter(backoff(policy, attempt, jitter)),
    }
}

/// The outbox directory and its dead letters.
#[derive(Clone, Debug)]
pub struct Outbox {
    spool: Spool,
}

/// What [`Outbox::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Pending entries, oldest first.
    pub pending: Vec<Entry>,
    /// Files that could not be read, and where they were moved.
    pub unreadable: Vec<String>,
}

impl SpoolEntry for Entry {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Outbox {
    pub fn new(statedir: &Path) -> Outbox {
        Outbox {
            spool: Spool::new(statedir.join(OUTBOX_DIR)),
        }
    }

    pub fn dir(&self) -> &Path {
        self.spool.dir()
    }

    /// Write (or rewrite) an entry atomically: after this returns, a kill -9
    /// leaves the entry on disk, whole.
    pub fn store(&self, entry: &Entry) -> io::Result<()> {
        self.spool.store(entry)
    }

    /// Forget a delivered entry.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        self.spool.remove(id)
    }

    /// Move an entry to the dead letters (written there before it is
    /// removed from the outbox, so a crash in between keeps both, never none).
    pub fn bury(&self, entry: &Entry) -> io::Result<()> {
        self.spool.move_to(DEAD_DIR, entry)
    }

    /// Every pending entry, oldest first. Stale temporary files of an
    /// interrupted write are removed; unreadable entries are moved to
    /// `outbox/unreadable/` and reported. An entry that is also a dead letter
    /// (a crash inside [`Outbox::bury`]) stays dead.
    pub fn load(&self) -> io::Result<Loaded> {
        let loaded = self
            .spool
            .load::<Entry>(|name, _| match name.strip_suffix(".json") {
                Some(id) if self.spool.in_side(DEAD_DIR, id) => {
                    self.remove(id)?;
                    Ok(true)
                }
                _ => Ok(false),
            })?;
        Ok(Loaded {
            pending: loaded.entries,
            unreadable: loaded.unreadable,
        })
    }

    /// The dead letters, oldest first.
    pub fn dead(&self) -> io::Result<Vec<Entry>> {
        self.spool.side_entries(DEAD_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(10),
            max_delay: Duration::from_secs(600),
            max_age: Duration::from_secs(3600),
        }
    }

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            created: 1_700_000_000,
            letter: Letter {
                from: "k@h".into(),
                to: vec!["ops@example.com".into()],
                subject: "ALERT web/http: down".into(),
                body: "body\n".into(),
            },
            digest: false,
            about: "alert web/http".into(),
            attempts: 0,
            last_error: None,
            dead_since: None,
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("keepmon-outbox-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let p = policy();
        let mid = |attempt| backoff(&p, attempt, 0.5);
        assert_eq!(mid(1), Duration::from_secs(10));
        assert_eq!(mid(2), Duration::from_secs(20));
        assert_eq!(mid(4), Duration::from_secs(80));
        assert_eq!(mid(7), Duration::from_secs(600));
        assert_eq!(mid(u32::MAX), Duration::from_secs(600));
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(7500));
        assert!(backoff(&p, 1, 0.999_999) < Duration::from_millis(12500));
        assert_eq!(backoff(&p, 1, 7.0), Duration::from_millis(12500));
    }

    #[test]
    fn verdicts() {
        let p = policy();
        let young = Duration::from_secs(5);
        let old = Duration::from_secs(3600);
        assert_eq!(
            after_failure(&p, &Failure::Transient("451 later".into()), 1, young, 0.5),
            Verdict::RetryAfter(Duration::from_secs(10))
        );
        assert_eq!(
            after_failure(&p, &Failure::Unreachable("refused".into()), 3, young, 0.5),
            Verdict::RetryAfter(Duration::from_secs(40))
        );
        assert_eq!(
            after_failure(
                &p,
                &Failure::Permanent("550 no such user".into()),
                1,
                young,
                0.5
            ),
            Verdict::Dead("permanent failure: 550 no such user".into())
        );
        assert_eq!(
            after_failure(&p, &Failure::Transient("451 later".into()), 9, old, 0.5),
            Verdict::Dead(
                "not delivered within max_age 3600s after 9 attempt(s); last error: 451 later"
                    .into()
            )
        );
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_id(1_700_000_000_000_000_000, 42, 1);
        let b = new_id(1_700_000_000_000_000_001, 7, 0);
        assert!(a < b, "{a} {b}");
        assert_eq!(a, "01700000000000000000-42-000001");
    }

    #[test]
    fn store_load_remove_bury() {
        let dir = temp("cycle");
        let outbox = Outbox::new(&dir);
        assert!(outbox.load().unwrap().pending.is_empty());
        let (a, b, c) = (entry("0001"), entry("0002"), entry("0003"));
        for e in [&c, &a, &b] {
            outbox.store(e).unwrap();
        }
        // A write interrupted before its rename, and a torn foreign file.
        std::fs::write(outbox.dir().join(".0004.json.tmp.99"), b"{").unwrap();
        std::fs::write(outbox.dir().join("0005.json"), b"{\"id\":").unwrap();
        let loaded = outbox.load().unwrap();
        assert_eq!(loaded.pending, vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(loaded.unreadable.len(), 1);
        assert!(!outbox.dir().join(".0004.json.tmp.99").exists());
        assert_eq!(
            std::fs::read(outbox.dir().join(UNREADABLE_DIR).join("0005.json")).unwrap(),
            b"{\"id\":"
        );

        outbox.remove("0001").unwrap();
        outbox.remove("0001").unwrap();
        let mut dead = b.clone();
        dead.dead_since = Some(1_700_000_100);
        dead.last_error = Some("550 no".into());
        outbox.bury(&dead).unwrap();
        assert_eq!(outbox.load().unwrap().pending, vec![c.clone()]);
        assert_eq!(outbox.dead().unwrap(), vec![dead.clone()]);

        // A crash inside bury (dead copy written, outbox copy not yet removed).
        outbox.store(&b).unwrap();
        assert_eq!(outbox.load().unwrap().pending, vec![c]);
        std::fs::remove_dir_all(dir).ok();
    }
}
