//! The mail delivery worker and its queue handle: a letter is written to the outbox (atomically) and handed to a worker task that drains the outbox with retries, digests and dead letters, so SMTP slowness never blocks the event loop.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::model::MailSettings;
use crate::control::proto::{DeadLetterDump, MailDump};
use crate::mail::outbox::{self, Entry, Failure, Outbox, RetryPolicy, Verdict};
use crate::mail::{Letter, smtp};
use crate::state;
use crate::wallclock::{unix_nanos, unix_now};

/// At most this many letters go out as one digest message.
const DIGEST_MAX: usize = 100;
/// Dead letters kept in memory for `dump` (all of them stay on disk).
const DEAD_SHOWN: usize = 50;

/// The event loop's handle on the outbox and its delivery worker.
pub struct MailQueue {
    outbox: Outbox,
    hostname: String,
    seq: u64,
    digest: bool,
    queued: mpsc::UnboundedSender<Entry>,
    /// Where letters are written (on the state writer's thread).
    disk: state::Ordered,
    settings: watch::Sender<MailSettings>,
    status: watch::Receiver<MailDump>,
}

impl MailQueue {
    /// Start the delivery worker on `tracker`. Letters left in the outbox
    /// by an earlier run (a crash, a stop with the relay down) are loaded
    /// before this returns, so they go out before any new one.
    pub fn start(
        statedir: &Path,
        settings: &MailSettings,
        disk: state::Ordered,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> MailQueue {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        let outbox = Outbox::new(statedir);
        let (queued_tx, queued_rx) = mpsc::unbounded_channel();
        let (settings_tx, settings_rx) = watch::channel(settings.clone());
        let (status_tx, status_rx) = watch::channel(MailDump::default());
        let mut worker = Worker::new(outbox.clone(), hostname.clone(), status_tx);
        worker.load();
        tracker.spawn(worker.run(queued_rx, settings_rx, shutdown));
        MailQueue {
            outbox,
            hostname,
            seq: 0,
            digest: settings.digest_window.is_some(),
            queued: queued_tx,
            disk,
            settings: settings_tx,
            status: status_rx,
        }
    }

    /// The host name letters are sent from (`keepmon@HOST` by default).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Write one letter to the outbox and hand it to the worker; returns
    /// its outbox id. The write (with its fsync) runs on the state
    /// writer's thread, before any state save sent after this call, and
    /// the worker gets the letter once it is written, so a delivered
    /// letter's removal never races its write. A letter that cannot be
    /// written is still delivered from memory (only a crash before then
    /// loses it).
    pub fn queue(&mut self, letter: Letter, about: String, created: i64) -> String {
        self.seq += 1;
        let entry = Entry {
            id: outbox::new_id(unix_nanos(), std::process::id(), self.seq),
            created,
            letter,
            digest: self.digest,
            about,
            attempts: 0,
            last_error: None,
            dead_since: None,
        };
        let id = entry.id.clone();
        let outbox = self.outbox.clone();
        let queued = self.queued.clone();
        self.disk.run(move || {
            if let Err(e) = outbox.store(&entry) {
                tracing::error!(
                    id = %entry.id,
                    dir = %outbox.dir().display(),
                    error = %e,
                    "cannot write the mail outbox; this alert is held in memory only"
                );
            }
            let _ = queued.send(entry);
        });
        id
    }

    /// A reload may change the relay, the sender or the retry policy.
    pub fn reconfigure(&mut self, settings: &MailSettings) {
        self.digest = settings.digest_window.is_some();
        self.settings.send_if_modified(|s| {
            let changed = s != settings;
            *s = settings.clone();
            changed
        });
    }

    /// What `dump` shows: route, pending and dead letters.
    pub fn status(&self) -> MailDump {
        self.status.borrow().clone()
    }
}

struct Pending {
    entry: Entry,
    /// Not sent before this (digest window, backoff).
    due: Instant,
}

/// The delivery task: owns the pending letters and the transport.
struct Worker {
    outbox: Outbox,
    hostname: String,
    settings: MailSettings,
    route: Result<smtp::Route, String>,
    pending: BTreeMap<String, Pending>,
    /// Consecutive rounds that could not reach the relay.
    relay_failures: u32,
    /// Nothing is sent before this after the relay could not be reached.
    relay_retry: Option<Instant>,
    delivered: u64,
    last_error: Option<String>,
    dead_total: usize,
    dead: VecDeque<Entry>,
    status: watch::Sender<MailDump>,
}

impl Worker {
    fn new(outbox: Outbox, hostname: String, status: watch::Sender<MailDump>) -> Worker {
        Worker {
            outbox,
            hostname,
            settings: MailSettings::default(),
            route: Err("not configured yet".to_string()),
            pending: BTreeMap::new(),
            relay_failures: 0,
            relay_retry: None,
            delivered: 0,
            last_error: None,
            dead_total: 0,
            dead: VecDeque::new(),
            status,
        }
    }

    async fn run(
        mut self,
        mut queued: mpsc::UnboundedReceiver<Entry>,
        mut settings: watch::Receiver<MailSettings>,
        shutdown: CancellationToken,
    ) {
        let initial = settings.borrow_and_update().clone();
        self.reconfigure(initial);
        loop {
            self.publish();
            let wake = self.next_wake();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Ok(()) = settings.changed() => {
                    let new = settings.borrow_and_update().clone();
                    self.reconfigure(new);
                }
                Some(entry) = queued.recv() => self.accept(entry),
                _ = sleep_until_opt(wake) => self.deliver_due(&shutdown).await,
            }
        }
        if !self.pending.is_empty() {
            tracing::info!(
                pending = self.pending.len(),
                "mail outbox kept for the next start"
            );
        }
    }

    fn reconfigure(&mut self, settings: MailSettings) {
        self.route = smtp::route(&settings, &self.hostname);
        match &self.route {
            Ok(_) => tracing::info!(route = %smtp::describe(&settings), "mail delivery"),
            Err(e) => tracing::error!(error = %e, "mail delivery cannot be set up"),
        }
        self.settings = settings;
        // A new relay gets a fresh chance.
        self.relay_failures = 0;
        self.relay_retry = None;
    }

    fn load(&mut self) {
        match self.outbox.load() {
            Ok(loaded) => {
                for path in loaded.unreadable {
                    tracing::warn!(moved_to = %path, "unreadable mail outbox entry moved aside");
                }
                if !loaded.pending.is_empty() {
                    tracing::info!(
                        pending = loaded.pending.len(),
                        "mail outbox from an earlier run"
                    );
                }
                let now = Instant::now();
                for entry in loaded.pending {
                    self.pending
                        .insert(entry.id.clone(), Pending { entry, due: now });
                }
            }
            Err(e) => tracing::error!(
                dir = %self.outbox.dir().display(),
                error = %e,
                "cannot read the mail outbox"
            ),
        }
        match self.outbox.dead() {
            Ok(dead) => {
                self.dead_total = dead.len();
                let skip = dead.len().saturating_sub(DEAD_SHOWN);
                self.dead = dead.into_iter().skip(skip).collect();
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the dead letters"),
        }
    }

    fn accept(&mut self, entry: Entry) {
        let window = if entry.digest {
            self.settings.digest_window.unwrap_or_default()
        } else {
            Duration::ZERO
        };
        let due = Instant::now() + window;
        self.pending
            .insert(entry.id.clone(), Pending { entry, due });
    }

    fn next_wake(&self) -> Option<Instant> {
        let earliest = self.pending.values().map(|p| p.due).min()?;
        Some(match self.relay_retry {
            Some(r) => earliest.max(r),
            None => earliest,
        })
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial: self.settings.retry_initial,
            max_delay: self.settings.retry_max,
            max_age: self.settings.max_age,
        }
    }

    /// Send every letter that is due, oldest first, until the relay fails
    /// or shutdown is asked for (an in-flight send always finishes).
    async fn deliver_due(&mut self, shutdown: &CancellationToken) {
        let now = Instant::now();
        if self.relay_retry.is_some_and(|r| r > now) {
            return;
        }
        self.relay_retry = None;
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        // One SMTP session for the whole round, opened when first needed.
        let mut session = None;
        for id in due {
            if shutdown.is_cancelled() {
                break;
            }
            let Some(batch) = self.batch(&id) else {
                continue;
            };
            let result = self.send(&batch, &mut session).await;
            match result {
                Ok(()) => self.delivered_batch(&batch),
                Err(Failure::Unreachable(message)) => {
                    self.unreachable(&batch, message);
                    break;
                }
                Err(failure) => self.failed(&batch, &failure),
            }
            self.publish();
        }
        if let Some(session) = session {
            session.close().await;
        }
    }

    /// The ids that go out together with `id`: itself, or every pending
    /// digest letter to the same sender and recipients.
    fn batch(&self, id: &str) -> Option<Vec<String>> {
        let first = self.pending.get(id)?;
        if !first.entry.digest {
            return Some(vec![id.to_string()]);
        }
        let key = first.entry.letter.envelope_key();
        Some(
            self.pending
                .iter()
                .filter(|(_, p)| p.entry.digest && p.entry.letter.envelope_key() == key)
                .map(|(id, _)| id.clone())
                .take(DIGEST_MAX)
                .collect(),
        )
    }

    /// Send one batch, through `session` (opened here when there is none;
    /// dropped after a failure, since lettre aborts the connection then).
    async fn send(
        &self,
        batch: &[String],
        session: &mut Option<smtp::Session>,
    ) -> Result<(), Failure> {
        let route = self
            .route
            .as_ref()
            .map_err(|e| Failure::Unreachable(e.clone()))?;
        let entries: Vec<&Entry> = batch
            .iter()
            .filter_map(|id| self.pending.get(id).map(|p| &p.entry))
            .collect();
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let (letter, message_id, date) = if entries.len() == 1 {
            (
                first.letter.clone(),
                format!("{}.keepmon", first.id),
                UNIX_EPOCH + Duration::from_secs(first.created.max(0) as u64),
            )
        } else {
            let letters: Vec<Letter> = entries.iter().map(|e| e.letter.clone()).collect();
            let local = chrono::Local::now().naive_local();
            let letter =
                crate::mail::digest(&letters, local).unwrap_or_else(|| first.letter.clone());
            (
                letter,
                format!("{}.digest{}.keepmon", first.id, entries.len()),
                SystemTime::now(),
            )
        };
        let message = smtp::message(&letter, &message_id, date, &self.hostname)?;
        match route {
            smtp::Route::Smtp(relay) => {
                let mut open = match session.take() {
                    Some(open) if !open.is_broken() => open,
                    _ => relay.open().await?,
                };
                let result = open.send(&message, relay.timeout()).await;
                if result.is_ok() {
                    *session = Some(open);
                }
                result
            }
            smtp::Route::Sendmail(transport, limit) => {
                smtp::send_sendmail(transport, *limit, &message).await
            }
            smtp::Route::None => Err(Failure::Unreachable(
                "no smtp relay configured and no sendmail found".to_string(),
            )),
        }
    }

    fn delivered_batch(&mut self, batch: &[String]) {
        self.relay_failures = 0;
        self.last_error = None;
        for id in batch {
            if let Some(p) = self.pending.remove(id) {
                tracing::info!(
                    id,
                    about = %p.entry.about,
                    to = %p.entry.letter.to.join(","),
                    attempts = p.entry.attempts + 1,
                    "mail delivered"
                );
            }
            if let Err(e) = self.outbox.remove(id) {
                tracing::error!(id, error = %e, "mail delivered but its outbox file stays; it will be sent again at the next start");
            }
            self.delivered += 1;
        }
    }

    /// The relay could not be reached: back off as a whole, and give up on
    /// letters older than max_age.
    fn unreachable(&mut self, batch: &[String], message: String) {
        self.relay_failures += 1;
        let policy = self.policy();
        let delay = outbox::backoff(&policy, self.relay_failures, fastrand::f64());
        tracing::warn!(
            error = %message,
            pending = self.pending.len(),
            retry_in_secs = delay.as_secs_f64(),
            "mail relay unreachable"
        );
        self.relay_retry = Some(Instant::now() + delay);
        let failure = Failure::Unreachable(message.clone());
        self.last_error = Some(message);
        for id in batch {
            if let Some(p) = self.pending.get_mut(id) {
                p.entry.attempts += 1;
                p.entry.last_error = Some(failure.message().to_string());
                if let Err(e) = self.outbox.store(&p.entry) {
                    tracing::warn!(id, error = %e, "cannot update the outbox entry");
                }
            }
        }
        let now = unix_now();
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| age(&p.entry, now) >= policy.max_age)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let attempts = self.pending.get(&id).map_or(0, |p| p.entry.attempts);
            if let Verdict::Dead(reason) =
                outbox::after_failure(&policy, &failure, attempts, policy.max_age, 0.5)
            {
                self.bury(&id, reason);
            }
        }
    }

    /// The server refused this message (4xx or 5xx), or it cannot be built.
    fn failed(&mut self, batch: &[String], failure: &Failure) {
        let policy = self.policy();
        let now = unix_now();
        self.last_error = Some(failure.message().to_string());
        for id in batch {
            let Some(p) = self.pending.get_mut(id) else {
                continue;
            };
            p.entry.attempts += 1;
            p.entry.last_error = Some(failure.message().to_string());
            let verdict = outbox::after_failure(
                &policy,
                failure,
                p.entry.attempts,
                age(&p.entry, now),
                fastrand::f64(),
            );
            match verdict {
                Verdict::RetryAfter(delay) => {
                    tracing::warn!(
                        id,
                        about = %p.entry.about,
                        error = %failure.message(),
                        retry_in_secs = delay.as_secs_f64(),
                        "mail not accepted; will retry"
                    );
                    p.due = Instant::now() + delay;
                    if let Err(e) = self.outbox.store(&p.entry) {
                        tracing::warn!(id, error = %e, "cannot update the outbox entry");
                    }
                }
                Verdict::Dead(reason) => self.bury(id, reason),
            }
        }
    }

    fn bury(&mut self, id: &str, reason: String) {
        let Some(mut p) = self.pending.remove(id) else {
            return;
        };
        p.entry.dead_since = Some(unix_now());
        p.entry.last_error = Some(reason.clone());
        tracing::warn!(
            id,
            about = %p.entry.about,
            to = %p.entry.letter.to.join(","),
            subject = %p.entry.letter.subject,
            reason = %reason,
            "mail alert is a dead letter (see keepmon dump, statedir/outbox/dead)"
        );
        if let Err(e) = self.outbox.bury(&p.entry) {
            tracing::error!(id, error = %e, "cannot move the letter to the dead letters");
        }
        self.dead_total += 1;
        if self.dead.len() == DEAD_SHOWN {
            self.dead.pop_front();
        }
        self.dead.push_back(p.entry);
    }

    fn publish(&self) {
        let dump = MailDump {
            route: match &self.route {
                Ok(_) => smtp::describe(&self.settings),
                Err(e) => format!("broken: {e}"),
            },
            pending: self.pending.len(),
            oldest_pending: self.pending.values().map(|p| p.entry.created).min(),
            last_error: self.last_error.clone(),
            delivered: self.delivered,
            dead_total: self.dead_total,
            dead_letters: self
                .dead
                .iter()
                .map(|e| DeadLetterDump {
                    id: e.id.clone(),
                    created: e.created,
                    died: e.dead_since.unwrap_or(e.created),
                    about: e.about.clone(),
                    to: e.letter.to.clone(),
                    subject: e.letter.subject.clone(),
                    reason: e.last_error.clone().unwrap_or_default(),
                })
                .collect(),
        };
        self.status.send_replace(dump);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn age(entry: &Entry, now_unix: i64) -> Duration {
    Duration::from_secs(now_unix.saturating_sub(entry.created).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("keepmon-worker-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    fn entry(id: &str, created: i64, digest: bool, to: &str) -> Entry {
        Entry {
            id: id.into(),
            created,
            letter: Letter {
                from: "k@h".into(),
                to: vec![to.into()],
                subject: format!("ALERT g/{id}: down"),
                body: "body\n".into(),
            },
            digest,
            about: format!("alert g/{id}"),
            attempts: 0,
            last_error: None,
            dead_since: None,
        }
    }

    /// No relay and no sendmail: every round is "unreachable".
    fn worker(dir: &std::path::Path) -> (Worker, watch::Receiver<MailDump>) {
        let (tx, rx) = watch::channel(MailDump::default());
        let mut w = Worker::new(Outbox::new(dir), "h".into(), tx);
        w.reconfigure(MailSettings {
            max_age: Duration::from_secs(60),
            retry_initial: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            ..MailSettings::default()
        });
        (w, rx)
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_relay_backs_off_and_old_letters_die() {
        let dir = temp("backoff");
        let (mut w, status) = worker(&dir);
        let token = CancellationToken::new();
        let old = entry("0001", unix_now() - 120, false, "a@x");
        let young = entry("0002", unix_now(), false, "a@x");
        for e in [&old, &young] {
            w.outbox.store(e).unwrap();
            w.accept(e.clone());
        }

        w.deliver_due(&token).await;
        let retry = w.relay_retry.expect("relay backoff") - Instant::now();
        assert!(
            retry >= Duration::from_millis(7500) && retry < Duration::from_millis(12500),
            "{retry:?}"
        );
        // The oldest letter was tried, failed, and is past max_age: dead.
        assert_eq!(w.outbox.dead().unwrap().len(), 1);
        assert_eq!(w.pending.keys().collect::<Vec<_>>(), ["0002"]);
        assert_eq!(w.pending["0002"].entry.attempts, 0);

        // Nothing is tried before the relay's retry time...
        tokio::time::advance(Duration::from_secs(5)).await;
        w.deliver_due(&token).await;
        assert_eq!(w.pending["0002"].entry.attempts, 0);
        // ...then the next letter is, and the backoff doubles.
        tokio::time::advance(Duration::from_secs(10)).await;
        w.deliver_due(&token).await;
        assert_eq!(w.pending["0002"].entry.attempts, 1);
        let retry = w.relay_retry.expect("relay backoff") - Instant::now();
        assert!(retry >= Duration::from_secs(15), "{retry:?}");
        // The failed attempt is on disk, so a restart keeps the count.
        let loaded = w.outbox.load().unwrap().pending;
        assert_eq!(loaded[0].attempts, 1);

        w.publish();
        let dump = status.borrow().clone();
        assert_eq!((dump.pending, dump.dead_total), (1, 1));
        assert!(dump.route.starts_with("none"), "{}", dump.route);
        assert!(dump.dead_letters[0].reason.contains("max_age 60s"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(start_paused = true)]
    async fn digests_group_by_sender_and_recipients() {
        let dir = temp("digest");
        let (mut w, _status) = worker(&dir);
        w.accept(entry("0001", 0, true, "a@x"));
        w.accept(entry("0002", 0, true, "b@x"));
        w.accept(entry("0003", 0, true, "a@x"));
        w.accept(entry("0004", 0, false, "a@x"));
        assert_eq!(w.batch("0001").unwrap(), ["0001", "0003"]);
        assert_eq!(w.batch("0002").unwrap(), ["0002"]);
        assert_eq!(w.batch("0004").unwrap(), ["0004"]);
        assert_eq!(w.batch("0009"), None);
        std::fs::remove_dir_all(dir).ok();
    }
}
