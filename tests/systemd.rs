//! keepmon under systemd: the notify protocol seen from a fake NOTIFY_SOCKET (READY only once the daemon answers, RELOADING/READY around reload, STOPPING, STATUS, watchdog cadence and its silence while the loop is stalled).

mod common;

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::daemon::{Fixture, closed_port};

/// A fake systemd notify socket: every datagram with the time it arrived.
struct NotifySocket {
    path: std::path::PathBuf,
    messages: mpsc::Receiver<(Instant, String)>,
    /// Everything received so far, in order.
    seen: Vec<(Instant, String)>,
}

impl NotifySocket {
    fn bind(f: &Fixture) -> NotifySocket {
        let path = f.dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((Instant::now(), text)).is_err() {
                    return;
                }
            }
        });
        NotifySocket {
            path,
            messages,
            seen: Vec::new(),
        }
    }

    /// Wait (at most 15 s) for a datagram with the line `line`; returns it.
    fn wait_for(&mut self, line: &str) -> (Instant, String) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(message) => {
                    self.seen.push(message.clone());
                    if message.1.lines().any(|l| l == line) {
                        return message;
                    }
                }
                Err(_) => panic!("no {line} within 15 s; received: {:?}", self.texts()),
            }
        }
    }

    /// Collect whatever arrives during `window`.
    fn collect(&mut self, window: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.messages.recv_timeout(left) {
                Ok(message) => {
                    self.seen.push(message.clone());
                    got.push(message);
                }
                Err(_) => break,
            }
        }
        got
    }

    fn texts(&self) -> Vec<String> {
        self.seen.iter().map(|(_, t)| t.clone()).collect()
    }
}

fn start_under_fake_systemd(f: &mut Fixture, notify: &NotifySocket, env: &[(&str, &str)]) {
    let log = std::fs::File::create(f.dir.join("daemon.log")).expect("log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_keepmon"));
    command
        .args(["start", "-c"])
        .arg(f.config())
        .env("KEEPMON_LOG", "debug")
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        command.env(k, v);
    }
    f.daemon = Some(command.spawn().expect("start keepmon"));
}

fn watchdog_times(messages: &[(Instant, String)]) -> Vec<Instant> {
    messages
        .iter()
        .filter(|(_, t)| t.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect()
}

#[test]
fn ready_reloading_stopping_status_and_watchdog_reach_systemd() {
    let mut f = Fixture::new("systemd-notify");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    f.write_config(up_port, closed_port(), "");
    let mut notify = NotifySocket::bind(&f);
    start_under_fake_systemd(&mut f, &notify, &[("WATCHDOG_USEC", "1000000")]);

    // READY=1 comes once the control socket answers: it answers at once.
    let (_, ready) = notify.wait_for("READY=1");
    let status = f.cli(&["status"]);
    assert!(
        status.status.success(),
        "status right after READY=1: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        ready.contains("STATUS=2 services, "),
        "READY carries the status line: {ready:?}"
    );
    assert!(
        notify.texts().iter().all(|t| !t.contains("WATCHDOG=1")),
        "no keep-alive before READY: {:?}",
        notify.texts()
    );

    // WATCHDOG_USEC=1s: a keep-alive every half second.
    let window = notify.collect(Duration::from_millis(3200));
    let pings = watchdog_times(&window);
    assert!(
        (4..=8).contains(&pings.len()),
        "about 6 keep-alives in 3.2 s at a 0.5 s cadence, got {}: {:?}",
        pings.len(),
        window
    );
    for gap in pings.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= Duration::from_millis(350) && gap < Duration::from_millis(1000),
            "keep-alive gap {gap:?} (expected 0.5 s, and always inside WATCHDOG_USEC)"
        );
    }

    // The down service fails: STATUS follows.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !notify
        .texts()
        .iter()
        .any(|t| t.contains("STATUS=2 services, 1 failing (local/down)"))
    {
        assert!(
            Instant::now() < deadline,
            "no STATUS with the failing service: {:?}",
            notify.texts()
        );
        notify.collect(Duration::from_millis(200));
    }

    // Reload: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again.
    let reload = f.cli(&["reload"]);
    assert!(reload.status.success(), "reload: {reload:?}");
    let (reloading_at, reloading) = notify.wait_for("RELOADING=1");
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let (ready_at, _) = notify.wait_for("READY=1");
    assert!(ready_at >= reloading_at);

    // Stop: STOPPING=1 and a clean exit.
    let stop = f.cli(&["stop"]);
    assert!(stop.status.success(), "stop: {stop:?}");
    notify.wait_for("STOPPING=1");
    assert!(f.wait_exit().success());
    let log = std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("keepmon started"), "{log}");
    assert!(!log.contains('\x1b'), "no colours off a terminal: {log}");
}

#[test]
fn the_watchdog_goes_quiet_while_the_event_loop_is_stalled() {
    let mut f = Fixture::new("systemd-stall");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    f.write_config(up_port, closed_port(), "");
    let mut notify = NotifySocket::bind(&f);
    // Keep-alives every 300 ms; 1.5 s after start the loop blocks for 2.5 s.
    start_under_fake_systemd(
        &mut f,
        &notify,
        &[
            ("WATCHDOG_USEC", "600000"),
            ("KEEPMON_TEST_STALL_EVENT_LOOP", "1500:2500"),
        ],
    );
    notify.wait_for("READY=1");
    let window = notify.collect(Duration::from_secs(6));
    let pings = watchdog_times(&window);
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    let long: Vec<&Duration> = gaps
        .iter()
        .filter(|g| **g > Duration::from_millis(2000))
        .collect();
    assert_eq!(
        long.len(),
        1,
        "exactly one silence (the stall) among the keep-alive gaps {gaps:?}"
    );
    assert!(
        *long[0] >= Duration::from_millis(2400),
        "the silence lasts the stall: {gaps:?}"
    );
    let log = std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("stalling the event loop"), "{log}");
    // After the stall the keep-alives resume and the daemon still answers.
    let last = *pings.last().expect("pings");
    let stall_end = pings
        .windows(2)
        .find(|w| w[1] - w[0] > Duration::from_millis(2000))
        .map(|w| w[1])
        .expect("a long gap");
    assert!(last > stall_end, "keep-alives resumed after the stall");
    assert!(f.cli(&["status"]).status.success());
}

/// A datagram socket the test listens on, its messages collected by a thread.
fn listen_datagrams(path: &std::path::Path) -> mpsc::Receiver<Vec<u8>> {
    let socket = UnixDatagram::bind(path).expect("bind");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Wait (at most 15 s) for a datagram that `matches`.
fn wait_datagram(
    rx: &mpsc::Receiver<Vec<u8>>,
    what: &str,
    matches: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if matches(&text) {
                    return text;
                }
                seen.push(text);
            }
            Err(_) => panic!("no datagram with {what} within 15 s; got {seen:#?}"),
        }
    }
}

#[test]
fn under_systemd_logs_go_to_the_journal_with_structured_fields() {
    use std::os::unix::fs::MetadataExt;
    let mut f = Fixture::new("systemd-journal");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    f.write_config(up_port, closed_port(), "");
    let journal = f.dir.join("journal.sock");
    let rx = listen_datagrams(&journal);
    // systemd's JOURNAL_STREAM names the device and inode of stderr.
    let stderr = std::fs::File::create(f.dir.join("daemon.log")).expect("log");
    let meta = stderr.metadata().expect("stat");
    let child = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["start", "-c"])
        .arg(f.config())
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("KEEPMON_JOURNAL_SOCKET", &journal)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start keepmon");
    f.daemon = Some(child);

    let started = wait_datagram(&rx, "keepmon started", |t| {
        t.starts_with("MESSAGE=keepmon started")
    });
    for line in ["PRIORITY=6", "SYSLOG_IDENTIFIER=keepmon", "SERVICES=2"] {
        assert!(started.lines().any(|l| l == line), "{line} in {started:?}");
    }
    let failing = wait_datagram(&rx, "service failing", |t| {
        t.starts_with("MESSAGE=service failing")
    });
    for line in ["PRIORITY=4", "GROUP=local", "SERVICE=down"] {
        assert!(failing.lines().any(|l| l == line), "{line} in {failing:?}");
    }
    assert!(f.cli(&["stop"]).status.success());
    assert!(f.wait_exit().success());
    let log = std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();
    assert!(
        !log.contains("keepmon started"),
        "journal mode writes nothing to stderr: {log}"
    );
}

#[test]
fn log_syslog_sends_plain_lines_with_the_configured_facility() {
    let mut f = Fixture::new("systemd-syslog");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    f.write_config(up_port, closed_port(), "");
    let text = std::fs::read_to_string(f.config()).expect("config");
    std::fs::write(
        f.config(),
        text.replace("[daemon]\n", "[daemon]\nsyslog_facility = \"local3\"\n"),
    )
    .expect("config");
    let syslog = f.dir.join("log.sock");
    let rx = listen_datagrams(&syslog);
    let log = std::fs::File::create(f.dir.join("daemon.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["start", "--log", "syslog", "-c"])
        .arg(f.config())
        .env("KEEPMON_SYSLOG_SOCKET", &syslog)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start keepmon");
    f.daemon = Some(child);
    let pid = f.daemon.as_ref().expect("child").id();
    // local3 = 19; warning = 4: <156>.
    let failing = wait_datagram(&rx, "service failing", |t| t.contains("service failing"));
    assert!(
        failing.starts_with(&format!("<156>keepmon[{pid}]: WARN service failing")),
        "{failing:?}"
    );
    assert!(failing.contains("group=local service=down"), "{failing:?}");
    assert!(!failing.contains('\x1b'), "no colours: {failing:?}");
    assert_eq!(failing.lines().count(), 1);
}

#[test]
fn log_facility_on_the_command_line_means_syslog_with_that_facility() {
    let mut f = Fixture::new("systemd-log-facility");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    f.write_config(up_port, closed_port(), "");
    let syslog = f.dir.join("log.sock");
    let rx = listen_datagrams(&syslog);
    let log = std::fs::File::create(f.dir.join("daemon.log")).expect("log");
    // keepalived's -S 2: local2 (18); warning (4): <148>.
    let child = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["start", "--log-facility", "2", "-c"])
        .arg(f.config())
        .env("KEEPMON_SYSLOG_SOCKET", &syslog)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start keepmon");
    f.daemon = Some(child);
    let failing = wait_datagram(&rx, "service failing", |t| t.contains("service failing"));
    assert!(failing.starts_with("<148>keepmon["), "{failing:?}");
}

/// `systemd-analyze verify` on both units (the template as an instance),
/// with ExecStart pointed at the binary under test (verify wants it to
/// exist). Unknown keys are only warnings to systemd-analyze, so any output
/// fails the test too.
#[test]
fn the_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        common::not_run("systemd-analyze verify: no systemd-analyze (Debian package systemd)");
        return;
    }
    let f = Fixture::new("systemd-units");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let units = repo.join("etc/systemd");
    // Documentation=man:keepmon(8) man:keepmon.toml(5): verify runs `man`
    // on them, so give it the pages from doc/.
    let manpath = f.dir.join("man");
    for (page, section) in [("keepmon.8", "man8"), ("keepmon.toml.5", "man5")] {
        std::fs::create_dir_all(manpath.join(section)).expect("man dir");
        std::fs::copy(
            repo.join("doc").join(page),
            manpath.join(section).join(page),
        )
        .expect("man page");
    }
    for (file, unit) in [
        ("keepmon.service", "keepmon.service"),
        ("keepmon@.service", "keepmon@lb1.service"),
    ] {
        let text = std::fs::read_to_string(units.join(file)).expect("unit file");
        assert!(text.contains("ExecStart=/usr/sbin/keepmon "), "{file}");
        std::fs::write(
            f.dir.join(file),
            text.replace("/usr/sbin/keepmon", env!("CARGO_BIN_EXE_keepmon")),
        )
        .expect("write unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("./{unit}"))
            .env("MANPATH", &manpath)
            .current_dir(&f.dir)
            .output()
            .expect("systemd-analyze");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty() && out.stdout.is_empty(),
            "systemd-analyze verify {unit}: {}\n{stderr}",
            out.status
        );
        // The sandbox stays tight: systemd's own exposure score (0 best, 10 worst).
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("./{unit}"))
            .current_dir(&f.dir)
            .output()
            .expect("systemd-analyze security");
        let report = String::from_utf8_lossy(&out.stdout);
        let score: f64 = report
            .lines()
            .find_map(|l| l.split_once("Overall exposure level for "))
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in: {report}"));
        assert!(score <= 3.0, "{unit}: exposure {score} > 3.0\n{report}");
        for key in [
            "Type=notify",
            "WatchdogSec=",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(key)),
                "{file} lacks {key}"
            );
        }
    }
}
