//! mon's client protocol on the mon port: Debian's real `moncmd` and `monshow` against the real keepmon binary, auth.cf, and a daemon that stays responsive under hostile clients.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Fixture, closed_port};

/// The mon client programs, or a loud "not run" when the package is missing.
fn have_mon_clients() -> bool {
    let ok = ["/usr/bin/moncmd", "/usr/bin/monshow"]
        .iter()
        .all(|p| std::path::Path::new(p).exists());
    if !ok {
        common::not_run("Debian package mon (moncmd, monshow) is not installed");
    }
    ok
}

/// A daemon serving the mon port on a free loopback port, with an
/// `up` service (a listener this test holds open) and a `down` one.
struct Mon {
    f: Fixture,
    port: u16,
    _up: TcpListener,
}

const AUTH_CF: &str = "\
command section
list:       all
servertime: all
ack:        AUTH_ANY
disable:    AUTH_ANY
enable:     AUTH_ANY
stop:       !joe,AUTH_ANY
start:      AUTH_ANY
test:       ann
savestate:  AUTH_ANY
reload:     ann
";

fn start(name: &str, extra_globals: &str) -> Mon {
    start_with(name, extra_globals, "")
}

fn start_with(name: &str, extra_globals: &str, extra_blocks: &str) -> Mon {
    let mut f = Fixture::new(name);
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    let down_port = closed_port();
    let port = closed_port();
    let d = f.dir.display().to_string();
    f.write_script(
        "alert.d/rec.alert",
        &format!("#!/bin/sh\necho \"ARGS $*\" >> {d}/alerts.txt\ncat >> {d}/alerts.txt\n"),
    );
    let hash = pwhash::sha512_crypt::hash("secret").expect("hash");
    std::fs::write(
        f.dir.join("monusers.cf"),
        format!("ann:{hash}\njoe : {hash}\n"),
    )
    .expect("userfile");
    std::fs::write(
        f.dir.join("auth.cf"),
        format!("{AUTH_CF}\ntrap section\n127.0.0.1 mon {hash}\n"),
    )
    .expect("auth.cf");
    f.write_mon_cf(&format!(
        "basedir = {d}\nalertdir = {d}/alert.d\nstatedir = {d}/state\nlogdir = {d}/log\n\
         cfbasedir = {d}\nauthtype = userfile\nserverport = {port}\ntrapport = {port}\n{extra_globals}\n\
         hostgroup up 127.0.0.1\n\nhostgroup down 127.0.0.1 localhost\n\n\
         watch up\n    service tcp\n        description the one that works\n        interval 1s\n        monitor tcp.monitor -p {up_port}\n\
         \x20       period wd {{Sun-Sat}}\n            alert rec.alert\n            upalert rec.alert\n\n\
         watch down\n    service tcp\n        interval 1s\n        monitor tcp.monitor -p {down_port}\n\
         \x20       period wd {{Sun-Sat}}\n            alert rec.alert\n            alertevery 1h\n\n{extra_blocks}"
    ));
    f.start();
    Mon { f, port, _up: up }
}

impl Mon {
    /// `moncmd CMD...`, unauthenticated.
    fn moncmd(&self, command: &str) -> String {
        let out = Command::new("moncmd")
            .args(["-s", "127.0.0.1", "-p", &self.port.to_string()])
            .args(command.split(' '))
            .stdin(Stdio::null())
            .output()
            .expect("run moncmd");
        text(&out)
    }

    /// `moncmd -a -l USER` with the credentials on stdin. moncmd drops the
    /// first line after its USER=/PASS= lines, hence the blank line.
    fn moncmd_as(&self, user: &str, password: &str, command: &str) -> Output {
        let mut child = Command::new("moncmd")
            .args([
                "-a",
                "-l",
                user,
                "-s",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run moncmd");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("USER={user}\nPASS={password}\n\n{command}\n").as_bytes())
            .expect("write");
        child.wait_with_output().expect("moncmd output")
    }

    fn ann(&self, command: &str) -> String {
        text(&self.moncmd_as("ann", "secret", command))
    }

    fn monshow(&self, args: &[&str]) -> String {
        let out = Command::new("monshow")
            .args(["--server", "127.0.0.1", "--port", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run monshow");
        text(&out)
    }

    fn wait_for(&self, what: &str, check: impl Fn(&Mon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.f.dir.join("daemon.log")).unwrap_or_default();
        panic!("timed out waiting until {what}\n--- daemon log ---\n{log}");
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Send raw lines and read `replies` status lines back (5 s bound).
fn raw(port: u16, request: &[u8], replies: usize) -> String {
    raw_from("127.0.0.1", port, request, replies)
}

/// [`raw`] from another loopback address (another client, as the mon
/// port's per-address limits see it).
fn raw_from(ip: &str, port: u16, request: &[u8], replies: usize) -> String {
    let mut s = connect_from(ip, port);
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    // A refused client may find the connection closed before it writes.
    if s.write_all(request).is_err() {
        return String::new();
    }
    read_replies(&mut s, replies)
}

/// A connection to 127.0.0.1:`port` from the loopback address `ip`.
fn connect_from(ip: &str, port: u16) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(format!("{ip}:0").parse().expect("address"))?;
            let stream = socket
                .connect(format!("127.0.0.1:{port}").parse().expect("address"))
                .await?;
            stream.into_std()
        })
        .expect("connect");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

fn read_replies(s: &mut TcpStream, replies: usize) -> String {
    let mut reader = BufReader::new(s);
    let mut out = String::new();
    let mut seen = 0;
    while seen < replies {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let b = line.as_bytes();
        if b.len() > 3 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
            seen += 1;
        }
        out.push_str(&line);
    }
    out
}

#[test]
fn moncmd_and_monshow_read_and_drive_keepmon() {
    if !have_mon_clients() {
        return;
    }
    let m = start("monproto-clients", "");
    m.wait_for("one service fails and one passes", |m| {
        m.moncmd("list failures")
            .contains("group=down service=tcp opstatus=0 ")
            && m.moncmd("list successes")
                .contains("group=up service=tcp opstatus=1 ")
    });

    let all = m.moncmd("list opstatus");
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 3, "two services and the status line:\n{all}");
    assert_eq!(lines[2], "220 list opstatus completed");
    assert!(lines[0].starts_with("group=down service=tcp opstatus=0 last_opstatus="));
    assert!(
        lines[0].contains(" monitor=tcp.monitor\\20-p\\20")
            && lines[0].contains(" last_summary=127.0.0.1\\20localhost ")
            && lines[0].contains(" first_failure="),
        "mon's escaped key=value fields:\n{}",
        lines[0]
    );
    let one = m.moncmd("list opstatus up,tcp");
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(one.starts_with("group=up service=tcp opstatus=1 "));
    assert_eq!(
        m.moncmd("list opstatus nosuch,svc"),
        "520 nosuch,svc does not exist\n"
    );

    let pid = m.f.daemon.as_ref().expect("daemon").id();
    assert_eq!(
        m.moncmd("list pids"),
        format!("server {pid}\n220 list pids completed\n")
    );
    assert_eq!(
        m.moncmd("list group down"),
        "hostgroup down 127.0.0.1 localhost\n220 list group completed\n"
    );
    assert_eq!(
        m.moncmd("list group nosuch"),
        "520 list group error, undefined group\n"
    );
    let hist = m.moncmd("list alerthist");
    assert!(
        hist.lines()
            .any(|l| l.starts_with("alert\\20down\\20tcp\\20")
                && l.contains("/alert.d/rec.alert\\20()\\20127.0.0.1\\20localhost")),
        "mon's escaped alerthist line:\n{hist}"
    );
    assert!(hist.ends_with("220 list alerthist completed\n"));
    assert!(m.moncmd("list failurehist").contains("down\\20tcp\\20"));
    assert_eq!(
        m.moncmd("list watch"),
        "down tcp\nup tcp\n220 list watch completed\n"
    );
    assert_eq!(
        m.moncmd("list descriptions"),
        "down tcp \nup tcp the\\20one\\20that\\20works\n220 list descriptions completed\n"
    );

    // monshow renders the opstatus lines.
    let shown = m.monshow(&["--full"]);
    assert!(shown.contains("state: scheduler running"), "{shown}");
    let row = |name: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{shown}"))
            .to_string()
    };
    assert!(row("down").contains("FAIL"), "{shown}");
    assert!(row("down").contains("127.0.0.1 localhost"), "{shown}");
    assert!(!row("up").contains("FAIL"), "{shown}");

    // disable / enable a host
    assert_eq!(
        m.ann("disable host localhost"),
        "220 disable host completed\n"
    );
    assert_eq!(
        m.moncmd("list group down"),
        "hostgroup down 127.0.0.1 *localhost\n220 list group completed\n"
    );
    assert_eq!(
        m.moncmd("list disabled"),
        "group down: localhost\n220 list disabled completed\n"
    );
    let shown = m.monshow(&["--disabled"]);
    assert!(shown.contains("DISABLED HOSTS:"), "{shown}");
    assert!(shown.contains("localhost"), "{shown}");
    assert_eq!(m.ann("enable host localhost"), "220 enable completed\n");
    assert_eq!(m.moncmd("list disabled"), "220 list disabled completed\n");
    assert_eq!(
        m.ann("disable host nosuchhost"),
        "520 disable host failed, host(s) nosuchhost do not exist\n"
    );

    // disable / enable a service and a watch
    assert_eq!(
        m.ann("disable service up tcp"),
        "220 disable service completed\n"
    );
    assert_eq!(m.ann("disable watch down"), "220 disable watch completed\n");
    assert_eq!(
        m.moncmd("list disabled"),
        "watch down\nwatch up service tcp\n220 list disabled completed\n"
    );
    let shown = m.monshow(&["--disabled"]);
    assert!(
        shown.contains("DISABLED WATCHES:\ndown") && shown.contains("DISABLED SERVICES\nup tcp"),
        "{shown}"
    );
    assert_eq!(m.ann("enable service up tcp"), "220 enable completed\n");
    assert_eq!(m.ann("enable watch down"), "220 enable watch completed\n");
    assert_eq!(m.moncmd("list disabled"), "220 list disabled completed\n");

    // ack
    assert_eq!(
        m.ann("ack up tcp nothing to ack"),
        "520 service is in a non-failure state\n"
    );
    assert_eq!(m.ann("ack down tcp on\\20it"), "220 ack completed\n");
    let failing = m.moncmd("list failures");
    assert!(
        failing.contains(" ackcomment=ann:\\20on\\20it "),
        "the ack and who gave it:\n{failing}"
    );
    assert!(m.monshow(&[]).contains("ACK FAIL"));

    // test alert: runs the period's alert lines now
    let before = std::fs::read_to_string(m.f.dir.join("alerts.txt")).unwrap_or_default();
    assert_eq!(
        m.ann("test alert up tcp 1 nosuchperiod"),
        "520 period not defined\n"
    );
    assert_eq!(
        m.ann("test alert up tcp 1 wd {Sun-Sat}"),
        "220 test alert completed\n"
    );
    m.wait_for("the test alert ran", |m| {
        let now = std::fs::read_to_string(m.f.dir.join("alerts.txt")).unwrap_or_default();
        now.len() > before.len() && now[before.len()..].contains("-g up ")
    });

    // stop / start the scheduler
    assert_eq!(m.ann("stop"), "220 stop completed\n");
    let state = m.moncmd("list state");
    assert!(
        state.starts_with("scheduler stopped since ")
            && state.ends_with("\n220 list state completed\n"),
        "{state}"
    );
    assert!(m.monshow(&[]).contains("state: scheduler stopped since"));
    assert_eq!(m.ann("start"), "220 start completed\n");
    assert_eq!(
        m.moncmd("list state"),
        "scheduler running\n220 list state completed\n"
    );

    // the protocol words
    assert_eq!(m.moncmd("version"), "version 9745\n220 version completed\n");
    assert_eq!(m.moncmd("protid 9745"), "220 protocol match\n");
    assert_eq!(m.moncmd("protid 1"), "520 protocol mismatch\n");
    assert_eq!(m.moncmd("LIST WATCH"), m.moncmd("list watch"));
    assert!(
        m.moncmd("servertime")
            .ends_with("220 servertime completed\n")
    );
}

#[test]
fn auth_cf_decides_who_runs_what() {
    if !have_mon_clients() {
        return;
    }
    let m = start("monproto-auth", "");
    let denied = "520 command could not be executed, unknown command\n";
    // Unauthenticated: `list` is `all`, `disable` needs a login.
    assert!(
        m.moncmd("list watch")
            .ends_with("220 list watch completed\n")
    );
    assert_eq!(m.moncmd("disable host localhost"), denied);
    assert_eq!(m.moncmd("stop"), denied);
    // Wrong password and unknown user: moncmd's own refusal after 530.
    for (user, password) in [("ann", "wrong"), ("nobody", "secret")] {
        let out = m.moncmd_as(user, password, "stop");
        assert!(!out.status.success(), "{user}: {}", text(&out));
        assert!(
            text(&out).contains("Could not authenticate"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(
        raw(m.port, b"login ann wrong\nstop\n", 2),
        format!("530 login unsuccessful\n{denied}")
    );
    // `stop: !joe,AUTH_ANY`: joe is denied, any other user is allowed.
    assert_eq!(text(&m.moncmd_as("joe", "secret", "stop")), denied);
    assert_eq!(
        raw(m.port, b"list state\n", 1),
        "scheduler running\n220 list state completed\n"
    );
    assert_eq!(m.ann("stop"), "220 stop completed\n");
    assert_eq!(
        text(&m.moncmd_as("joe", "secret", "start")),
        "220 start completed\n"
    );
    // `test: ann` is a user list; joe is logged in but not on it.
    assert_eq!(text(&m.moncmd_as("joe", "secret", "test config")), denied);
    assert_eq!(
        m.ann("test config"),
        "220 test config completed OK, no errors found\n"
    );
    // Not in auth.cf at all: denied to everyone (mon's default).
    assert_eq!(m.ann("term"), denied);
    // checkauth never needs a login and tells the truth.
    assert_eq!(
        raw(
            m.port,
            b"checkauth list\ncheckauth stop\nlogin ann secret\ncheckauth stop\n",
            4
        ),
        "220 command authorized\n520 command could not be executed\n220 login accepted\n220 command authorized\n"
    );
    // `reload: ann`: joe may not reload auth.cf.
    assert_eq!(text(&m.moncmd_as("joe", "secret", "reload auth")), denied);
}

#[test]
fn clientallow_and_idle_timeout_close_connections() {
    let m = start("monproto-allow", "clientallow = 10.9.9.9\ncltimeout = 1s");
    let mut s = TcpStream::connect(("127.0.0.1", m.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut buf = [0u8; 64];
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "a client outside clientallow is closed at once"
    );
    drop(m);

    let m = start("monproto-idle", "cltimeout = 1s");
    let mut s = TcpStream::connect(("127.0.0.1", m.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let started = Instant::now();
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "idle client closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(8),
        "closed after cltimeout (1 s), took {waited:?}"
    );
}

#[test]
fn ipv6_listener() {
    let ok = TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        common::not_run("no IPv6 loopback on this machine");
        return;
    }
    let m = start("monproto-v6", "serverbind = ::1");
    let mut s = TcpStream::connect(("::1", m.port)).expect("connect over IPv6");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(b"version\n").expect("send");
    assert_eq!(
        read_replies(&mut s, 1),
        "version 9745\n220 version completed\n"
    );
}

/// Hostile clients cannot stall the daemon: a 1 MB line, binary garbage,
/// 1,000 idle connections and a client that never reads its replies, and
/// a second client's `list opstatus` still answers promptly. One address
/// gets 32 connections at most (regression, issue 19 finding 1: the cap
/// was 4,096 in all, above the usual 1,024 descriptors).
#[test]
fn hostile_clients_leave_the_daemon_responsive() {
    let m = start("monproto-hostile", "");
    m.wait_for("the first results are in", |_| {
        raw(m.port, b"list failures\n", 1).contains("group=down")
    });

    // A 1 MB line: refused with an error, then closed; memory stays bounded.
    let mut big = TcpStream::connect(("127.0.0.1", m.port)).expect("connect");
    big.set_read_timeout(Some(Duration::from_secs(5))).ok();
    big.set_write_timeout(Some(Duration::from_secs(5))).ok();
    let _ = big.write_all(&vec![b'x'; 1 << 20]);
    let mut reply = String::new();
    let _ = BufReader::new(&big).read_line(&mut reply);
    assert!(
        reply.is_empty() || reply.starts_with("520 line too long"),
        "{reply:?}"
    );

    // Binary garbage: each line is refused, the connection keeps working.
    let mut garbage: Vec<u8> = (0u8..=255).cycle().take(4096).collect();
    garbage.extend_from_slice(b"\nlist state\n");
    let replies = raw(m.port, &garbage, 30);
    assert!(replies.contains("520 invalid command\n"), "{replies}");
    assert!(
        replies.ends_with("scheduler running\n220 list state completed\n"),
        "{replies}"
    );

    // 1,000 idle connections, held open: 32 are served, the rest closed.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", m.port)).expect("idle connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        raw(m.port, b"list state\n", 1),
        "",
        "a 33rd connection from one address is closed"
    );

    // A client that floods requests and never reads a reply.
    let port = m.port;
    let flood = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(3))).ok();
        let request = b"list opstatus\n".repeat(1000);
        for _ in 0..100 {
            if s.write_all(&request).is_err() {
                break; // its socket buffers are full: the server stopped reading it
            }
        }
        s
    });
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let answer = raw_from("127.0.0.2", m.port, b"list opstatus\n", 1);
    let took = started.elapsed();
    assert!(
        answer.ends_with("220 list opstatus completed\n"),
        "{answer}"
    );
    assert_eq!(answer.lines().count(), 3, "{answer}");
    assert!(
        took < Duration::from_secs(3),
        "list opstatus answered in {took:?} with hostile clients connected"
    );
    // The control socket (CLI) answers too.
    assert!(m.f.cli(&["status"]).status.success());

    let flooder = flood.join().expect("flood thread");
    flooder.shutdown(Shutdown::Both).ok();
    drop(idle);
}

/// Regression (issue 19, finding 2): logins could be guessed at full speed
/// on one connection, and the right password was still accepted after
/// thousands of failures. Now a connection is closed after three failures,
/// and past five failures from one address (or for one user) each further
/// login must wait, doubling, before it is even checked.
#[test]
fn login_guessing_is_cut_off_and_backs_off() {
    let m = start("monproto-guess", "");
    // One connection: three failures, then it is closed (the fourth
    // attempt gets no answer).
    let mut s = TcpStream::connect(("127.0.0.1", m.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(&b"login ann wrong\n".repeat(4)).expect("send");
    let mut rest = String::new();
    BufReader::new(&s).read_to_string(&mut rest).ok();
    assert_eq!(
        rest,
        "530 login unsuccessful\n".repeat(3),
        "closed after three"
    );

    // Three more failures from this address (six in all), then even the
    // right password is refused until the wait is over.
    assert_eq!(
        raw(
            m.port,
            b"login joe wrong\nlogin joe wrong\nlogin joe wrong\n",
            3
        ),
        "530 login unsuccessful\n".repeat(3)
    );
    let refused = raw(m.port, b"login ann secret\n", 1);
    assert!(
        refused.starts_with("530 login unsuccessful (too many failed logins; try again in"),
        "{refused}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        raw(m.port, b"login ann secret\n", 1),
        "220 login accepted\n"
    );
}

/// Regression (issue 19, finding 3): every failed login and refused trap
/// wrote a WARN line (45,712 lines in 10 s from one client). Now one line
/// per kind per period, with the count suppressed in between.
#[test]
fn failed_logins_and_refused_traps_do_not_flood_the_log() {
    let m = start("monproto-logflood", "");
    for _ in 0..20 {
        raw(
            m.port,
            b"login nobody wrong\nlogin nobody wrong\nlogin nobody wrong\n",
            3,
        );
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let packet = "pro='0.3807'\nusr='mon'\npas='wrong'\ntyp='trap'\nspc='fail'\nseq='0'\ngrp='up'\nsvc='tcp'\nsta='1'\ntsp='1700000000'\nsum='spoofed'\ndtl=''\n";
    for _ in 0..500 {
        udp.send_to(packet.as_bytes(), ("127.0.0.1", m.port))
            .expect("send trap");
    }
    // The daemon still answers, and has seen the traps (its debug lines).
    assert!(raw(m.port, b"list state\n", 1).contains("220 list state completed"));
    m.wait_for("the traps are read", |m| {
        let log = std::fs::read_to_string(m.f.dir.join("daemon.log")).unwrap_or_default();
        log.contains("trap with a bad password")
    });
    std::thread::sleep(Duration::from_millis(500));
    let log = std::fs::read_to_string(m.f.dir.join("daemon.log")).expect("log");
    let warns = |what: &str| {
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains(what))
            .count()
    };
    assert!(
        (1..=2).contains(&warns("mon login")),
        "60 failed logins, {} WARN lines",
        warns("mon login")
    );
    assert!(
        (1..=2).contains(&warns("trap refused")),
        "500 refused traps, {} WARN lines",
        warns("trap refused")
    );
}

#[test]
fn term_stops_the_daemon() {
    let mut m = start("monproto-term", "");
    std::fs::write(m.f.dir.join("auth.cf"), format!("{AUTH_CF}term: ann\n")).expect("auth.cf");
    // `term` is allowed only after `reload auth` reads the edited file.
    assert_eq!(
        raw(m.port, b"login ann secret\nterm\n", 2),
        "220 login accepted\n520 command could not be executed, unknown command\n"
    );
    assert_eq!(
        raw(m.port, b"login ann secret\nreload auth\nterm\n", 3),
        "220 login accepted\n220 reload completed\n220 terminating server\n"
    );
    let status = m.f.wait_exit();
    assert!(status.success(), "clean exit after term: {status:?}");
}

/// Send a trap with the real Mon::Client (`send_trap`), as trap.alert does.
fn send_trap(port: u16, password: &str, service: &str, retval: i32, summary: &str) {
    let status = Command::new("perl")
        .args([
            "-MMon::Client",
            "-e",
            "my $c = Mon::Client->new(host => '127.0.0.1', port => $ARGV[0], username => 'mon', password => $ARGV[1]);
             $c->send_trap(group => 'traps', service => $ARGV[2], retval => $ARGV[3], opstatus => 'fail',
                           summary => $ARGV[4], detail => 'from the test') or die $c->error;",
        ])
        .args([&port.to_string(), password, service, &retval.to_string(), summary])
        .status()
        .expect("run perl");
    assert!(status.success(), "send_trap failed");
}

#[test]
fn traps_from_mon_client_drive_a_service() {
    if !have_mon_clients() {
        return;
    }
    if !std::path::Path::new("/usr/share/perl5/Mon/Client.pm").exists() {
        common::not_run("Debian package mon-client (Mon::Client) is not installed");
        return;
    }
    let m = start_with(
        "monproto-traps",
        "",
        "hostgroup traps 127.0.0.1\n\nwatch traps\n    service t\n        period wd {Sun-Sat}\n            alert rec.alert\n            upalert rec.alert\n",
    );
    let opstatus = |m: &Mon| m.moncmd("list opstatus traps,t");
    assert!(
        opstatus(&m).starts_with("group=traps service=t opstatus=7 "),
        "untested before any trap"
    );

    // A wrong password is refused: nothing changes.
    send_trap(m.port, "wrong", "t", 1, "disk full");
    std::thread::sleep(Duration::from_millis(500));
    assert!(opstatus(&m).contains(" opstatus=7 "), "{}", opstatus(&m));

    send_trap(m.port, "secret", "t", 1, "disk full");
    m.wait_for("the failing trap is applied", |m| {
        m.moncmd("list failures")
            .contains("group=traps service=t opstatus=0 ")
    });
    let line = opstatus(&m);
    assert!(line.contains(" last_summary=disk\\20full "), "{line}");
    assert!(line.contains(" last_traphost=127.0.0.1 "), "{line}");
    assert!(!line.contains(" last_trap=0 "), "{line}");
    m.wait_for("the trap's alert ran with -T", |m| {
        let alerts = std::fs::read_to_string(m.f.dir.join("alerts.txt")).unwrap_or_default();
        alerts
            .lines()
            .any(|l| l.contains("-g traps") && l.contains(" -T"))
    });

    send_trap(m.port, "secret", "t", 0, "fine again");
    m.wait_for("the recovering trap is applied", |m| {
        m.moncmd("list successes")
            .contains("group=traps service=t opstatus=1 ")
    });
    // A trap for a service that does not exist is dropped.
    send_trap(m.port, "secret", "nosuch", 1, "x");
    assert!(
        m.moncmd("list watch")
            .lines()
            .all(|l| !l.contains("nosuch"))
    );
}

/// `list pids` names each running mon.d script with its process id, as mon
/// does, and forgets it when the script ends.
#[test]
fn list_pids_names_running_mon_d_scripts() {
    if !have_mon_clients() {
        return;
    }
    let m = start_with(
        "monproto-pids",
        "",
        "hostgroup slow 127.0.0.1\n\nwatch slow\n    service sleepy\n        interval 1s\n        timeout 60s\n        monitor sleepy.monitor\n",
    );
    let marker = m.f.dir.join("sleepy.started");
    m.f.write_script(
        "mon.d/sleepy.monitor",
        &format!("#!/bin/sh\ntouch {}\nsleep 30\n", marker.display()),
    );
    // The script was installed after start: a reload finds it.
    assert!(m.f.cli(&["reload"]).status.success());
    m.wait_for("the script runs", |m| {
        m.f.dir.join("sleepy.started").exists()
    });
    let server = m.f.daemon.as_ref().expect("daemon").id();
    let script_pid = std::cell::Cell::new(0u32);
    m.wait_for("list pids shows the script", |m| {
        let out = m.moncmd("list pids");
        let line = out.lines().find(|l| l.starts_with("slow sleepy "));
        if let Some(line) = line {
            script_pid.set(line["slow sleepy ".len()..].parse().unwrap_or(0));
        }
        out.starts_with(&format!("server {server}\n")) && script_pid.get() != 0
    });
    let script_pid = script_pid.get();
    let cmdline =
        std::fs::read_to_string(format!("/proc/{script_pid}/cmdline")).unwrap_or_default();
    assert!(
        cmdline.contains("sleepy.monitor"),
        "pid {script_pid}: {cmdline:?}"
    );
}

/// `traptimeout`: a silent sender fails its service with a trap-timeout
/// alert (`-O`); `trapduration`: after a trap the status goes back to OK
/// without an upalert.
#[test]
fn traptimeout_heartbeat_and_trapduration_reset() {
    if !have_mon_clients() {
        return;
    }
    if !std::path::Path::new("/usr/share/perl5/Mon/Client.pm").exists() {
        common::not_run("Debian package mon-client (Mon::Client) is not installed");
        return;
    }
    let m = start_with(
        "monproto-heartbeat",
        "",
        "hostgroup traps 127.0.0.1\n\nwatch traps\n    service hb\n        traptimeout 3s\n        trapduration 1s\n        period wd {Sun-Sat}\n            alert rec.alert\n            upalert rec.alert\n",
    );
    let alerts = |m: &Mon| std::fs::read_to_string(m.f.dir.join("alerts.txt")).unwrap_or_default();
    m.wait_for("the heartbeat expires with a trap-timeout alert", |m| {
        alerts(m)
            .lines()
            .any(|l| l.contains("-s hb") && l.contains(" -O"))
    });
    assert!(
        m.moncmd("list opstatus traps,hb")
            .contains(" last_summary=trap\\20timeout "),
        "{}",
        m.moncmd("list opstatus traps,hb")
    );

    send_trap(m.port, "secret", "hb", 1, "disk full");
    m.wait_for("the failing trap's alert ran with -T", |m| {
        alerts(m)
            .lines()
            .any(|l| l.contains("-s hb") && l.contains(" -T"))
    });
    m.wait_for("trapduration sets the service back to ok", |m| {
        m.moncmd("list successes")
            .contains("group=traps service=hb opstatus=1 ")
    });
    assert!(
        !alerts(&m)
            .lines()
            .any(|l| l.contains("-s hb") && l.contains(" -u")),
        "the reset is silent: no upalert\n{}",
        alerts(&m)
    );
}
