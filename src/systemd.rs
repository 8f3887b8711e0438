//! systemd's service protocol at the process edge: `sd_notify` datagrams (READY, RELOADING, STOPPING, STATUS, WATCHDOG), the watchdog's cadence and the liveness beats of threads and tasks; decides nothing about services.
//!
//! The protocol (systemd's `sd_notify(3)`): one datagram per message to the
//! Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace), the message being newline-separated `KEY=value` lines. With
//! `WatchdogSec=` systemd sets `WATCHDOG_USEC` (and `WATCHDOG_PID`); the
//! service sends `WATCHDOG=1` more often than that or gets killed.
//!
//! [`init_from_env`] reads the variables once, before the runtime starts,
//! and removes them from the environment so monitors and alert scripts
//! (child processes) cannot speak for the daemon. Everything else is a
//! no-op when keepmon was not started by systemd.
//!
//! The watchdog is pinged from the supervisor's own event loop
//! ([`Watchdog::due`] is one arm of its `select!`), so a stuck loop stops
//! the pings. Threads and tasks that run beside the loop (VRRP instances,
//! the proxy's connection threads) register a [`Beat`] and tick it; a beat
//! that stops ticking withholds the ping too.

use std::ffi::OsString;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::control::proto::StatusReport;

/// One state change or value sent to systemd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Start-up is complete (or a reload is finished).
    Ready,
    /// A reload started; `monotonic_usec` is CLOCK_MONOTONIC at that moment
    /// (systemd ≥ 253 requires it for `Type=notify-reload`).
    Reloading { monotonic_usec: u64 },
    /// Shutdown started.
    Stopping,
    /// A one-line status shown by `systemctl status`.
    Status(String),
    /// The watchdog keep-alive.
    Watchdog,
}

/// The datagram that carries `notices`: one `KEY=value` line each. A status
/// is kept to one line (newlines become `; `).
pub fn format_message(notices: &[Notice]) -> String {
    let mut message = String::new();
    for notice in notices {
        match notice {
            Notice::Ready => message.push_str("READY=1\n"),
            Notice::Reloading { monotonic_usec } => {
                message.push_str(&format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\n"))
            }
            Notice::Stopping => message.push_str("STOPPING=1\n"),
            Notice::Status(line) => {
                let line = line.trim_end().replace('\n', "; ");
                message.push_str(&format!("STATUS={line}\n"));
            }
            Notice::Watchdog => message.push_str("WATCHDOG=1\n"),
        }
    }
    message
}

/// Errors at the notify socket.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?} is neither an absolute path nor @abstract")]
    BadAddress(String),
    #[error("notify socket {address}: {source}")]
    Io { address: String, source: io::Error },
}

/// A connectionless socket towards systemd's notify socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    name: String,
}

impl Notifier {
    /// A notifier for the value of `NOTIFY_SOCKET`.
    pub fn new(value: &str) -> Result<Notifier, NotifyError> {
        let io_error = |source| NotifyError::Io {
            address: value.to_string(),
            source,
        };
        let address = if let Some(name) = value.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(io_error)?
        } else if value.starts_with('/') {
            SocketAddr::from_pathname(value).map_err(io_error)?
        } else {
            return Err(NotifyError::BadAddress(value.to_string()));
        };
        let socket = UnixDatagram::unbound().map_err(io_error)?;
        Ok(Notifier {
            socket,
            address,
            name: value.to_string(),
        })
    }

    /// Send `notices` as one datagram.
    pub fn send(&self, notices: &[Notice]) -> Result<(), NotifyError> {
        let message = format_message(notices);
        self.socket
            .send_to_addr(message.as_bytes(), &self.address)
            .map(|_| ())
            .map_err(|source| NotifyError::Io {
                address: self.name.clone(),
                source,
            })
    }
}

/// What systemd told this process through its environment.
#[derive(Debug, Default)]
struct FromSystemd {
    notifier: Option<Notifier>,
    /// `WATCHDOG_USEC`, when it is meant for this process.
    watchdog: Option<Duration>,
    /// Test-only: stall the event loop (see [`Watchdog::ping`]).
    stall: Option<Stall>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stall {
    after: Duration,
    duration: Duration,
}

static FROM_SYSTEMD: OnceLock<FromSystemd> = OnceLock::new();

/// Read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` and remove them
/// from the environment. Call once, from `main`, while the process has one
/// thread (before the tokio runtime and any logging thread start).
pub fn init_from_env() {
    let notify = std::env::var_os("NOTIFY_SOCKET");
    let watchdog_usec = std::env::var("WATCHDOG_USEC").ok();
    let watchdog_pid = std::env::var("WATCHDOG_PID").ok();
    let stall = std::env::var("KEEPMON_TEST_STALL_EVENT_LOOP")
        .ok()
        .and_then(|v| parse_stall(&v));
    for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        // SAFETY: called from main before any other thread exists (the
        // caller's contract), so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(name) };
    }
    let notifier = notify.and_then(|value: OsString| {
        let value = value.to_string_lossy().into_owned();
        match Notifier::new(&value) {
            Ok(n) => Some(n),
            Err(error) => {
                tracing::warn!(%error, "systemd notification disabled");
                None
            }
        }
    });
    let watchdog = watchdog_interval(
        watchdog_usec.as_deref(),
        watchdog_pid.as_deref(),
        std::process::id(),
    );
    let _ = FROM_SYSTEMD.set(FromSystemd {
        notifier,
        watchdog,
        stall,
    });
}

/// Whether systemd is listening for notifications.
pub fn enabled() -> bool {
    from_systemd().notifier.is_some()
}

/// Start-up (or a reload) is complete: the config compiled, the listeners
/// are bound, state is loaded and the scheduler is armed.
pub fn notify_ready(status: &str) {
    send(&[Notice::Ready, Notice::Status(status.to_string())]);
}

/// A reload starts.
pub fn notify_reloading() {
    send(&[
        Notice::Reloading {
            monotonic_usec: monotonic_usec(),
        },
        Notice::Status("reloading the config".to_string()),
    ]);
}

/// Shutdown starts.
pub fn notify_stopping() {
    send(&[Notice::Stopping, Notice::Status("stopping".to_string())]);
}

/// A new one-line status (sent only when it differs from the last one sent).
pub fn notify_status(line: &str) {
    static LAST: Mutex<String> = Mutex::new(String::new());
    if !enabled() {
        return;
    }
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if *last != line {
        line.clone_into(&mut last);
        send(&[Notice::Status(line.to_string())]);
    }
}

/// The one-line summary `keepmon status` prints, for `STATUS=`.
pub fn status_line(status: &StatusReport) -> String {
    let mut line = format!(
        "{} services, {} failing",
        status.services,
        status.failing.len()
    );
    if !status.failing.is_empty() {
        const SHOWN: usize = 5;
        let mut names: Vec<&str> = status
            .failing
            .iter()
            .take(SHOWN)
            .map(String::as_str)
            .collect();
        if status.failing.len() > SHOWN {
            names.push("…");
        }
        line.push_str(&format!(" ({})", names.join(" ")));
    }
    line.push_str(if status.scheduler_running {
        "; scheduler running"
    } else {
        "; scheduler stopped"
    });
    line.push_str(&format!("; {} alerts sent", status.alerts_sent));
    line
}

/// The supervisor's watchdog: when systemd asked for one, pings at half
/// `WATCHDOG_USEC` while every registered [`Beat`] is alive.
#[derive(Debug)]
pub struct Watchdog {
    interval: Option<Duration>,
    next: Instant,
    /// A beat that has not ticked for this long is stuck.
    stale_after: Duration,
    /// The value each beat had when it last changed, and when.
    seen: Vec<(Weak<BeatInner>, u64, Instant)>,
    started: Instant,
    stalled_once: bool,
}

impl Watchdog {
    /// The watchdog systemd asked for, or one that never fires.
    pub fn from_env() -> Watchdog {
        Watchdog::new(from_systemd().watchdog, Instant::now())
    }

    /// A watchdog whose keep-alive is due every half `timeout` (None: never).
    pub fn new(timeout: Option<Duration>, now: Instant) -> Watchdog {
        let interval = timeout.map(|t| (t / 2).max(Duration::from_millis(1)));
        Watchdog {
            interval,
            next: now + interval.unwrap_or_default(),
            stale_after: timeout.unwrap_or_default().max(Duration::from_secs(3)),
            seen: Vec::new(),
            started: now,
            stalled_once: false,
        }
    }

    /// Resolves when the next keep-alive is due; never when there is no watchdog.
    pub async fn due(&self) {
        match self.interval {
            Some(_) => tokio::time::sleep_until(self.next).await,
            None => std::future::pending().await,
        }
    }

    /// Send `WATCHDOG=1` (with the current status) unless a beat is stuck,
    /// and arm the next keep-alive.
    pub fn ping(&mut self, status: &str) {
        let now = Instant::now();
        self.stall_for_tests(now);
        if let Some(interval) = self.interval {
            self.next = now + interval;
        }
        let stuck = self.stuck_beats(now);
        if !stuck.is_empty() {
            tracing::error!(stuck = %stuck.join(", "), "not alive; withholding the systemd watchdog keep-alive");
            return;
        }
        notify_status(status);
        send(&[Notice::Watchdog]);
    }

    /// The names of registered beats that have not ticked for `stale_after`.
    pub fn stuck_beats(&mut self, now: Instant) -> Vec<String> {
        let live = live_beats();
        self.seen.retain(|(weak, _, _)| weak.strong_count() > 0);
        let mut stuck = Vec::new();
        for beat in live {
            let count = beat.count.load(Ordering::Relaxed);
            match self
                .seen
                .iter_mut()
                .find(|(weak, _, _)| std::ptr::eq(weak.as_ptr(), Arc::as_ptr(&beat)))
            {
                Some((_, last, since)) if *last != count => {
                    *last = count;
                    *since = now;
                }
                Some((_, _, since)) => {
                    if now.duration_since(*since) >= self.stale_after {
                        stuck.push(beat.name.clone());
                    }
                }
                None => self.seen.push((Arc::downgrade(&beat), count, now)),
            }
        }
        stuck
    }

    /// The test-only hook `KEEPMON_TEST_STALL_EVENT_LOOP=AFTER_MS:FOR_MS`:
    /// once, AFTER_MS after start, block the event loop's thread for FOR_MS
    /// (what a loop stuck in a blocking call looks like to systemd).
    fn stall_for_tests(&mut self, now: Instant) {
        let Some(stall) = from_systemd().stall else {
            return;
        };
        if !self.stalled_once && now.duration_since(self.started) >= stall.after {
            self.stalled_once = true;
            tracing::warn!(
                millis = stall.duration.as_millis() as u64,
                "test hook: stalling the event loop"
            );
            std::thread::sleep(stall.duration);
        }
    }
}

/// A liveness counter ticked by a thread or task that runs beside the
/// event loop; the [`Watchdog`] checks it moved. Dropping it unregisters.
#[derive(Debug)]
pub struct Beat {
    inner: Arc<BeatInner>,
}

#[derive(Debug)]
struct BeatInner {
    name: String,
    count: AtomicU64,
}

static BEATS: Mutex<Vec<Weak<BeatInner>>> = Mutex::new(Vec::new());

impl Beat {
    /// Register a beat named for the logs (`vrrp instance VI_1`).
    pub fn register(name: impl Into<String>) -> Beat {
        let inner = Arc::new(BeatInner {
            name: name.into(),
            count: AtomicU64::new(0),
        });
        let mut beats = BEATS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        beats.retain(|w| w.strong_count() > 0);
        beats.push(Arc::downgrade(&inner));
        Beat { inner }
    }

    /// "Still alive." Cheap enough for a 100 ms tick.
    pub fn tick(&self) {
        self.inner.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Tick a fresh beat every `every` on the current runtime for as long as
/// that runtime's thread is not stuck (for a thread whose own work is idle).
pub async fn beat_forever(name: String, every: Duration) {
    let beat = Beat::register(name);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        beat.tick();
    }
}

fn live_beats() -> Vec<Arc<BeatInner>> {
    let beats = BEATS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    beats.iter().filter_map(Weak::upgrade).collect()
}

fn from_systemd() -> &'static FromSystemd {
    FROM_SYSTEMD.get_or_init(FromSystemd::default)
}

fn send(notices: &[Notice]) {
    if let Some(notifier) = &from_systemd().notifier
        && let Err(error) = notifier.send(notices)
    {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// The keep-alive timeout when `WATCHDOG_USEC` is set and `WATCHDOG_PID`
/// (if set) names this process.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// `AFTER_MS:FOR_MS`.
fn parse_stall(value: &str) -> Option<Stall> {
    let (after, duration) = value.split_once(':')?;
    Some(Stall {
        after: Duration::from_millis(after.trim().parse().ok()?),
        duration: Duration::from_millis(duration.trim().parse().ok()?),
    })
}

/// CLOCK_MONOTONIC in microseconds (what systemd compares reload times with).
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively
    // borrowed `now`; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if rc != 0 {
        return 0;
    }
    (now.tv_sec as u64) * 1_000_000 + (now.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_key_value_lines() {
        let check = |notices: &[Notice], expected: &str| {
            assert_eq!(format_message(notices), expected);
        };
        check(
            &[Notice::Ready, Notice::Status("2 services".into())],
            "READY=1\nSTATUS=2 services\n",
        );
        check(
            &[Notice::Reloading { monotonic_usec: 42 }],
            "RELOADING=1\nMONOTONIC_USEC=42\n",
        );
        check(&[Notice::Stopping], "STOPPING=1\n");
        check(&[Notice::Watchdog], "WATCHDOG=1\n");
        check(&[Notice::Status("a\nb\n".into())], "STATUS=a; b\n");
    }

    #[test]
    fn a_notifier_sends_one_datagram_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("keepmon-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        std::fs::remove_file(&path).ok();
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(path.to_str().unwrap()).unwrap();
        notifier
            .send(&[Notice::Ready, Notice::Status("ok".into())])
            .unwrap();
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok\n");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_notifier_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("keepmon-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&address).unwrap();
        Notifier::new(&format!("@{name}"))
            .unwrap()
            .send(&[Notice::Watchdog])
            .unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1\n");
    }

    #[test]
    fn the_status_line_is_what_keepmon_status_says() {
        let mut status = StatusReport {
            pid: 1,
            config: "keepmon.toml".into(),
            started: 0,
            scheduler_running: true,
            services: 3,
            failing: vec![],
            alerts_sent: 0,
        };
        assert_eq!(
            status_line(&status),
            "3 services, 0 failing; scheduler running; 0 alerts sent"
        );
        status.failing = (1..=6).map(|i| format!("g/s{i}")).collect();
        status.scheduler_running = false;
        status.alerts_sent = 2;
        assert_eq!(
            status_line(&status),
            "3 services, 6 failing (g/s1 g/s2 g/s3 g/s4 g/s5 …); scheduler stopped; 2 alerts sent"
        );
    }

    #[test]
    fn a_relative_notify_socket_is_refused() {
        assert!(matches!(
            Notifier::new("run/notify"),
            Err(NotifyError::BadAddress(_))
        ));
    }

    #[test]
    fn the_watchdog_is_for_this_pid_only() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(watchdog_interval(Some("1000000"), None, 7), second);
        assert_eq!(watchdog_interval(Some("1000000"), Some("7"), 7), second);
        assert_eq!(watchdog_interval(Some("1000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn the_stall_hook_parses_two_millisecond_counts() {
        assert_eq!(
            parse_stall("1500:3000"),
            Some(Stall {
                after: Duration::from_millis(1500),
                duration: Duration::from_millis(3000)
            })
        );
        assert_eq!(parse_stall("1500"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_beat_that_stops_ticking_is_stuck_after_the_timeout() {
        let mut watchdog = Watchdog::new(Some(Duration::from_secs(4)), Instant::now());
        let beat = Beat::register("test beat that stops");
        let name = |stuck: Vec<String>| stuck.iter().any(|s| s == "test beat that stops");
        assert!(!name(watchdog.stuck_beats(Instant::now())));
        tokio::time::advance(Duration::from_secs(3)).await;
        beat.tick();
        assert!(!name(watchdog.stuck_beats(Instant::now())));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(!name(watchdog.stuck_beats(Instant::now())));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(name(watchdog.stuck_beats(Instant::now())));
        drop(beat);
        assert!(!name(watchdog.stuck_beats(Instant::now())));
    }

    #[tokio::test(start_paused = true)]
    async fn the_keep_alive_is_due_at_half_the_timeout() {
        let start = Instant::now();
        let watchdog = Watchdog::new(Some(Duration::from_secs(10)), start);
        watchdog.due().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        let none = Watchdog::new(None, start);
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), none.due())
                .await
                .is_err()
        );
    }
}
