//! Mail alerts end to end: the real `keepmon` daemon sends mail.alert-shaped messages to a real SMTP server (Debian's python3-aiosmtpd, started per test on loopback), through STARTTLS/implicit TLS with AUTH, and its outbox survives relay outages, 4xx/5xx answers and kill -9.
//!
//! Delivery guarantee under test: at least once. A letter is on disk before
//! the alert counts as sent and is removed after the server's 250; these
//! tests show exactly-once delivery for an outage, a 4xx, a clean restart and
//! a kill -9 *while the message is queued*. (A kill -9 between the server's
//! 250 and the file's removal would send it again, with the same Message-ID.)

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Fixture, closed_port};
use serde_json::Value;

/// Debian's python with python3-aiosmtpd (not a pyenv shim).
const PYTHON: &str = "/usr/bin/python3";
const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/smtp_server.py");

fn smtp_server_available() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::not_run("python3-aiosmtpd (Debian package) is not installed");
    }
    ok
}

/// One aiosmtpd process on 127.0.0.1, killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl SmtpServer {
    /// Start on `port` (0: any free port) with the script's options.
    fn start(dir: &Path, port: u16, options: &[&str]) -> SmtpServer {
        let out = dir.join("received");
        let mut child = Command::new(PYTHON)
            .arg(SERVER)
            .args(["--port", &port.to_string(), "--out"])
            .arg(&out)
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).ok();
            tx.send(line).ok();
        });
        let mut server = SmtpServer {
            child,
            port: 0,
            out,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("SMTP server says READY");
        server.port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("SMTP server did not start: {line:?}"));
        server
    }

    /// Messages accepted so far, in order.
    fn messages(&self) -> Vec<Value> {
        let Ok(dir) = std::fs::read_dir(&self.out) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
            .collect()
    }

    /// Wait (at most 20 s) until `n` messages arrived, then return them all;
    /// on a timeout, fail with the daemon's log.
    fn wait_messages(&self, f: &Fixture, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} message(s), got {}\n--- daemon log ---\n{}",
                messages.len(),
                daemon_log(f)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The parts of a received message a test looks at.
struct Received {
    from: String,
    to: Vec<String>,
    headers: Vec<(String, String)>,
    body: String,
    tls: bool,
    auth_user: Option<String>,
}

impl Received {
    fn parse(v: &Value) -> Received {
        let data = v["data"].as_str().expect("data").replace("\r\n", "\n");
        let (head, body) = data.split_once("\n\n").expect("header/body split");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push_str(line);
                }
            } else {
                let (name, value) = line.split_once(':').expect("header line");
                headers.push((name.to_string(), value.trim().to_string()));
            }
        }
        Received {
            from: v["mail_from"].as_str().unwrap_or_default().to_string(),
            to: v["rcpt_tos"]
                .as_array()
                .expect("rcpt_tos")
                .iter()
                .map(|r| r.as_str().unwrap_or_default().to_string())
                .collect(),
            headers,
            body: decode_body(body),
            tls: v["tls"].as_bool().unwrap_or(false),
            auth_user: v["auth_user"].as_str().map(str::to_string),
        }
    }

    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one Subject header, unfolded, runs of white space as one space.
    fn subject(&self) -> String {
        let subjects = self.header("Subject");
        assert_eq!(subjects.len(), 1, "one Subject header: {:?}", self.headers);
        subjects[0].split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Undo quoted-printable soft line breaks and =XX escapes (lettre picks QP
/// for long lines); 7bit bodies pass through.
fn decode_body(body: &str) -> String {
    if !body.contains("=\n") && !body.contains("=3D") && !body.contains("=09") {
        return body.to_string();
    }
    let joined = body.replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A TOML config: service `down` checks `down_port` every second and mails
/// action `ops` on failure and recovery.
fn toml_config(
    f: &Fixture,
    smtp_port: u16,
    down_port: u16,
    mail_extra: &str,
    smtp_extra: &str,
    action_extra: &str,
) {
    let text = format!(
        r#"
[daemon]
statedir = "state"
shutdown_grace = "5s"

[mail]
from = "keepmon@test.example"
retry_initial = "200ms"
retry_max = "1s"
{mail_extra}

[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
timeout = "5s"
{smtp_extra}

[hostgroups]
local = ["127.0.0.1"]

[actions.ops]
type = "mail"
to = ["ops@example.com", "oncall@example.com"]
{action_extra}

[watch.local.down]
interval = "1s"
monitor = {{ type = "tcp", port = {down_port}, timeout = "1s" }}
alert = ["ops"]
upalert = ["ops"]
alertevery = "1h"
"#
    );
    std::fs::write(f.config(), text).expect("write config");
}

fn mail_dump(f: &Fixture) -> Value {
    f.dump()["mail"].clone()
}

fn daemon_log(f: &Fixture) -> String {
    std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default()
}

fn outbox_files(f: &Fixture) -> usize {
    std::fs::read_dir(f.dir.join("state/outbox"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// Let retries happen (several retry periods), then check nothing more arrived.
fn settle() {
    std::thread::sleep(Duration::from_millis(2500));
}

#[test]
fn failure_and_recovery_mails_reach_a_real_smtp_server() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-basic");
    let server = SmtpServer::start(&f.dir, 0, &[]);
    let down_port = closed_port();
    toml_config(&f, server.port, down_port, "", "", "");
    f.start();

    let first = Received::parse(&server.wait_messages(&f, 1)[0]);
    assert_eq!(first.from, "keepmon@test.example");
    assert_eq!(first.to, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(first.header("From"), ["keepmon@test.example"]);
    assert_eq!(first.header("To"), ["ops@example.com, oncall@example.com"]);
    let subject = first.subject();
    assert!(
        subject.starts_with("ALERT local/down: 127.0.0.1") && subject.ends_with(')'),
        "{subject}"
    );
    for expected in [
        "\nGroup                 : local\n",
        "\nService               : down\n",
        "\nSecs until next alert : 3600\n",
        "\nMembers               : 127.0.0.1\n",
        "\nDetailed text (if any) follows:\n-------------------------------\n",
    ] {
        assert!(
            first.body.contains(expected),
            "{expected:?} in\n{}",
            first.body
        );
    }
    assert!(
        first.body.contains("Time noticed          : "),
        "{}",
        first.body
    );
    assert_eq!(first.header("Message-ID").len(), 1);

    // The port opens: mail.alert's UPALERT.
    let _listener = TcpListener::bind(("127.0.0.1", down_port)).expect("open the port");
    let messages = server.wait_messages(&f, 2);
    let up = Received::parse(&messages[1]);
    assert!(
        up.subject().starts_with("UPALERT local/down: "),
        "{}",
        up.subject()
    );
    assert_eq!(up.to, first.to);

    f.wait_for(
        |f| mail_dump(f)["delivered"] == 2 && mail_dump(f)["pending"] == 0,
        "dump shows two delivered, none pending",
    );
    let dump = mail_dump(&f);
    assert_eq!(
        dump["route"],
        format!("smtp 127.0.0.1:{} (plain)", server.port)
    );
    assert_eq!(outbox_files(&f), 0, "delivered letters leave the outbox");

    // A clean restart sends nothing again.
    assert!(f.cli(&["stop"]).status.success());
    assert!(f.wait_exit().success());
    f.start();
    settle();
    assert_eq!(
        server.messages().len(),
        2,
        "nothing sent twice after a clean restart"
    );
}

#[test]
fn mon_cf_mail_alert_with_subject_and_sender_options() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-moncf");
    let server = SmtpServer::start(&f.dir, 0, &[]);
    let down_port = closed_port();
    f.write_mon_cf(&format!(
        "statedir = {dir}/state\n\
         alertdir = {dir}\n\
         mondir = {dir}\n\
         smtp_relay = 127.0.0.1:{port}\n\
         mail_retry = 0.2s\n\
         \n\
         hostgroup local 127.0.0.1\n\
         \n\
         watch local\n\
         \x20   service down\n\
         \x20       interval 1s\n\
         \x20       monitor tcp.monitor -p {down_port}\n\
         \x20       period wd {{Sun-Sat}}\n\
         \x20           alert mail.alert -S \"web is down\" -f mon@test.example ops@example.com root\n\
         \x20           alertevery 1h\n",
        dir = f.dir.display(),
        port = server.port,
    ));
    let check = f.cli(&["check-config"]);
    let text = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        text.contains(&format!(
            "mail delivery    smtp 127.0.0.1:{} (plain)",
            server.port
        )),
        "{text}"
    );
    f.start();

    let m = Received::parse(&server.wait_messages(&f, 1)[0]);
    let hostname = nix::unistd::gethostname().expect("hostname");
    assert_eq!(m.from, "mon@test.example");
    assert_eq!(
        m.to,
        [
            "ops@example.com".to_string(),
            format!("root@{}", hostname.to_string_lossy())
        ]
    );
    assert!(
        m.subject().starts_with("ALERT local/down: web is down ("),
        "{}",
        m.subject()
    );
    assert!(
        m.body.contains("\nGroup                 : local\n"),
        "{}",
        m.body
    );
}

#[test]
fn starttls_with_auth_and_a_self_signed_certificate() {
    if !smtp_server_available() {
        return;
    }
    for implicit in [false, true] {
        let mut f = Fixture::new(if implicit {
            "mail-tls"
        } else {
            "mail-starttls"
        });
        let (cert, key, ca) = self_signed(&f.dir);
        let mut options = vec![
            "--cert",
            cert.to_str().expect("path"),
            "--key",
            key.to_str().expect("path"),
            "--auth",
            "keepmon:s3cret",
        ];
        if implicit {
            options.push("--implicit-tls");
        }
        let server = SmtpServer::start(&f.dir, 0, &options);
        let tls = if implicit { "implicit" } else { "starttls" };
        toml_config(
            &f,
            server.port,
            closed_port(),
            "",
            &format!(
                "tls = \"{tls}\"\nusername = \"keepmon\"\npassword = \"s3cret\"\nca_file = \"{}\"\nhelo_name = \"director.test\"",
                ca.display()
            ),
            "",
        );
        f.start();
        let m = Received::parse(&server.wait_messages(&f, 1)[0]);
        assert!(m.tls, "{tls}: the session was encrypted");
        assert_eq!(
            m.auth_user.as_deref(),
            Some("keepmon"),
            "{tls}: authenticated"
        );
        assert_eq!(m.to, ["ops@example.com", "oncall@example.com"]);
        assert!(m.subject().starts_with("ALERT local/down: "));
        let dump = mail_dump(&f);
        assert_eq!(
            dump["route"],
            format!(
                "smtp 127.0.0.1:{} ({}, auth)",
                server.port,
                if implicit { "implicit tls" } else { "starttls" }
            )
        );
    }
}

#[test]
fn wrong_password_is_a_dead_letter_not_a_silent_loss() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-badauth");
    let (cert, key, ca) = self_signed(&f.dir);
    let server = SmtpServer::start(
        &f.dir,
        0,
        &[
            "--cert",
            cert.to_str().expect("path"),
            "--key",
            key.to_str().expect("path"),
            "--auth",
            "keepmon:s3cret",
        ],
    );
    toml_config(
        &f,
        server.port,
        closed_port(),
        "",
        &format!(
            "tls = \"starttls\"\nusername = \"keepmon\"\npassword = \"wrong\"\nca_file = \"{}\"",
            ca.display()
        ),
        "",
    );
    f.start();
    f.wait_for(|f| mail_dump(f)["dead_total"] == 1, "a dead letter");
    let dump = mail_dump(&f);
    let reason = dump["dead_letters"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("535"), "{reason}");
    assert!(server.messages().is_empty());
}

#[test]
fn header_injection_through_the_subject_is_impossible() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-inject");
    let server = SmtpServer::start(&f.dir, 0, &[]);
    toml_config(
        &f,
        server.port,
        closed_port(),
        "",
        "",
        "subject = \"down\\r\\nBcc: evil@example.net\\r\\nX-Injected: yes\\n\\nbody\"",
    );
    f.start();
    let m = Received::parse(&server.wait_messages(&f, 1)[0]);
    assert_eq!(
        m.to,
        ["ops@example.com", "oncall@example.com"],
        "no extra recipient"
    );
    let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.eq_ignore_ascii_case("Bcc") || n.eq_ignore_ascii_case("X-Injected")),
        "{names:?}"
    );
    assert!(
        m.subject()
            .starts_with("ALERT local/down: down Bcc: evil@example.net X-Injected: yes body ("),
        "{}",
        m.subject()
    );
    assert!(m.body.starts_with("\nGroup "), "{}", m.body);
}

#[test]
fn relay_down_at_alert_time_then_up_delivers_exactly_once() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-down-up");
    let smtp_port = closed_port();
    toml_config(&f, smtp_port, closed_port(), "", "", "");
    f.start();
    f.wait_for(
        |f| {
            let m = mail_dump(f);
            m["pending"] == 1 && m["last_error"].is_string()
        },
        "the letter waits in the outbox with the connection error",
    );
    assert_eq!(outbox_files(&f), 1);
    let text = String::from_utf8_lossy(&f.cli(&["dump"]).stdout).into_owned();
    assert!(text.contains("1 pending"), "{text}");

    let server = SmtpServer::start(&f.dir, smtp_port, &[]);
    server.wait_messages(&f, 1);
    settle();
    assert_eq!(server.messages().len(), 1, "delivered exactly once");
    f.wait_for(|f| mail_dump(f)["pending"] == 0, "the outbox drains");
    assert_eq!(outbox_files(&f), 0);
    assert!(daemon_log(&f).contains("mail relay unreachable"));
}

/// A relay that accepts the connection and never says a word: the send is
/// abandoned after the smtp timeout and retried, while monitoring and the
/// control socket carry on.
#[test]
fn a_silent_relay_never_blocks_monitoring() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-silent");
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let smtp_port = silent.local_addr().expect("addr").port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    silent.set_nonblocking(true).expect("nonblocking");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_accepting = std::sync::Arc::clone(&stop);
    let acceptor = std::thread::spawn(move || {
        while !stop_accepting.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((conn, _)) = silent.accept() {
                keep.lock().expect("lock").push(conn);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    toml_config(&f, smtp_port, closed_port(), "", "", "");
    let text = std::fs::read_to_string(f.config())
        .expect("config")
        .replace("timeout = \"5s\"\n", "timeout = \"1s\"\n");
    std::fs::write(f.config(), text).expect("config");
    f.start();
    f.wait_for(
        |f| {
            mail_dump(f)["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("no answer within the smtp timeout"))
        },
        "the hung session is abandoned",
    );
    // Monitoring carries on meanwhile: the check time keeps moving.
    let last_check = |f: &Fixture| f.dump()["services"][0]["last_check"].as_i64().unwrap_or(0);
    let before = last_check(&f);
    f.wait_for(|f| last_check(f) >= before + 2, "checks keep running");
    assert!(
        held.lock().expect("lock").len() >= 2,
        "the relay was retried"
    );
    assert_eq!(mail_dump(&f)["pending"], 1);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    acceptor.join().expect("acceptor");
}

#[test]
fn temporary_failures_are_retried_until_accepted() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-4xx");
    let server = SmtpServer::start(&f.dir, 0, &["--fail-first", "2"]);
    toml_config(&f, server.port, closed_port(), "", "", "");
    f.start();
    let m = Received::parse(&server.wait_messages(&f, 1)[0]);
    assert!(m.subject().starts_with("ALERT local/down: "));
    settle();
    assert_eq!(server.messages().len(), 1, "delivered once");
    let log = daemon_log(&f);
    assert_eq!(
        common::daemon::count(&log, "mail not accepted; will retry"),
        2,
        "{log}"
    );
    assert!(log.contains("451"), "{log}");
    assert_eq!(mail_dump(&f)["dead_total"], 0);
}

#[test]
fn permanent_failure_is_a_dead_letter_shown_in_dump() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-5xx");
    let server = SmtpServer::start(&f.dir, 0, &["--reject", "550 5.1.1 no such user"]);
    toml_config(&f, server.port, closed_port(), "", "", "");
    f.start();
    f.wait_for(|f| mail_dump(f)["dead_total"] == 1, "a dead letter");
    let dump = mail_dump(&f);
    let dead = &dump["dead_letters"][0];
    assert_eq!(dead["about"], "alert local/down");
    assert_eq!(dead["to"][0], "ops@example.com");
    assert!(
        dead["reason"].as_str().unwrap_or_default().contains("550"),
        "{dead}"
    );
    assert_eq!(dump["pending"], 0);
    let dead_files = std::fs::read_dir(f.dir.join("state/outbox/dead"))
        .expect("dead dir")
        .count();
    assert_eq!(dead_files, 1);
    let text = String::from_utf8_lossy(&f.cli(&["dump"]).stdout).into_owned();
    assert!(text.contains("dead letters"), "{text}");
    assert!(
        text.contains("alert local/down to ops@example.com,oncall@example.com"),
        "{text}"
    );
    assert!(daemon_log(&f).contains("dead letter"));
    settle();
    assert!(
        server.messages().is_empty(),
        "a 5xx is never retried into delivery"
    );

    // Dead letters are still listed after a restart.
    assert!(f.cli(&["stop"]).status.success());
    assert!(f.wait_exit().success());
    f.start();
    assert_eq!(mail_dump(&f)["dead_total"], 1);
}

#[test]
fn killed_with_a_queued_message_delivers_it_after_restart() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-kill9");
    let smtp_port = closed_port();
    toml_config(&f, smtp_port, closed_port(), "", "", "");
    f.start();
    f.wait_for(|f| mail_dump(f)["pending"] == 1, "a queued letter");
    let queued: Vec<PathBuf> = std::fs::read_dir(f.dir.join("state/outbox"))
        .expect("outbox")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(queued.len(), 1);
    let id = queued[0]
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("id")
        .to_string();

    // kill -9: no chance to save or flush anything.
    let mut child = f.daemon.take().expect("daemon");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let server = SmtpServer::start(&f.dir, smtp_port, &[]);
    f.start();
    let m = Received::parse(&server.wait_messages(&f, 1)[0]);
    assert_eq!(
        m.header("Message-ID"),
        [format!("<{id}.keepmon@{}>", hostname())]
    );
    settle();
    assert_eq!(
        server.messages().len(),
        1,
        "delivered once: the restarted daemon neither lost nor re-fired the alert"
    );
    assert_eq!(outbox_files(&f), 0);
}

#[test]
fn digest_window_batches_alerts_for_the_same_recipients() {
    if !smtp_server_available() {
        return;
    }
    let mut f = Fixture::new("mail-digest");
    let server = SmtpServer::start(&f.dir, 0, &[]);
    toml_config(
        &f,
        server.port,
        closed_port(),
        "digest_window = \"3s\"",
        "",
        "",
    );
    // Two more failing services mailing the same recipients.
    let mut text = std::fs::read_to_string(f.config()).expect("config");
    for name in ["down2", "down3"] {
        text.push_str(&format!(
            "\n[watch.local.{name}]\ninterval = \"1s\"\nmonitor = {{ type = \"tcp\", port = {}, timeout = \"1s\" }}\nalert = [\"ops\"]\nalertevery = \"1h\"\n",
            closed_port()
        ));
    }
    std::fs::write(f.config(), text).expect("config");
    f.start();
    let m = Received::parse(&server.wait_messages(&f, 1)[0]);
    settle();
    assert_eq!(server.messages().len(), 1, "one digest message");
    assert!(
        m.subject().starts_with("DIGEST 3 alerts: ALERT local/down"),
        "{}",
        m.subject()
    );
    for service in ["down", "down2", "down3"] {
        assert!(
            m.body.contains(&format!("ALERT local/{service}: ")),
            "{service} in\n{}",
            m.body
        );
    }
    assert_eq!(m.to, ["ops@example.com", "oncall@example.com"]);
}

/// Without [mail.smtp], mail goes to the local sendmail, as mon does. The
/// "sendmail" here is Debian's msmtp (a real sendmail-compatible program)
/// pointed at the test's SMTP server by a two-line wrapper.
#[test]
fn without_a_relay_mail_goes_through_the_local_sendmail() {
    if !smtp_server_available() {
        return;
    }
    if !Path::new("/usr/bin/msmtp").is_file() {
        common::not_run("msmtp (Debian package) is not installed");
        return;
    }
    let mut f = Fixture::new("mail-sendmail");
    let server = SmtpServer::start(&f.dir, 0, &[]);
    let sendmail = f.write_script(
        "bin/sendmail",
        &format!(
            "#!/bin/sh\nexec /usr/bin/msmtp --host=127.0.0.1 --port={} \"$@\"\n",
            server.port
        ),
    );
    toml_config(&f, server.port, closed_port(), "", "", "");
    let text = std::fs::read_to_string(f.config())
        .expect("config")
        .replace("[mail.smtp]", "[unused_smtp]")
        .replace(
            "[mail]\n",
            &format!("[mail]\nsendmail = \"{}\"\n", sendmail.display()),
        );
    let text = text[..text.find("[unused_smtp]").expect("smtp table")].to_string()
        + &text[text.find("[hostgroups]").expect("hostgroups")..];
    std::fs::write(f.config(), text).expect("config");
    let check = f.cli(&["check-config"]);
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        out.contains(&format!(
            "mail delivery    local sendmail {} (no smtp relay configured)",
            sendmail.display()
        )),
        "{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    f.start();
    let m = Received::parse(&server.wait_messages(&f, 1)[0]);
    assert_eq!(m.from, "keepmon@test.example");
    assert_eq!(m.to, ["ops@example.com", "oncall@example.com"]);
    assert!(
        m.subject().starts_with("ALERT local/down: "),
        "{}",
        m.subject()
    );
    f.wait_for(
        |f| mail_dump(f)["delivered"] == 1,
        "delivered through sendmail",
    );
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .expect("hostname")
        .to_string_lossy()
        .into_owned()
}

/// A self-signed certificate for 127.0.0.1 (the server's cert and the CA
/// keepmon is told to trust).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path.clone(), key_path, cert_path)
}
