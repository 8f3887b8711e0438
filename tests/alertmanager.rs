//! Alerts through Alertmanager: Debian's `prometheus-alertmanager` on loopback with a webhook receiver in this test; two keepmon directors fire the same alert and one notification arrives, a silence shows in dump, the resolve follows the upalert, and alerts queued while Alertmanager is down (kept across a kill -9 and restart) arrive after it returns.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::daemon::{Fixture, closed_port};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// What the webhook received: arrival time and the notification body.
type Received = Arc<Mutex<Vec<(Instant, serde_json::Value)>>>;

/// A webhook receiver: answers 200 to every POST and keeps the bodies.
fn webhook() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
    let port = listener.local_addr().expect("addr").port();
    let received: Received = Arc::default();
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        break;
                    }
                    if let Ok(value) = serde_json::from_slice(&body) {
                        keep.lock().expect("lock").push((Instant::now(), value));
                    }
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .ok();
                    length = 0;
                    continue;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
    });
    (port, received)
}

/// Alertmanager on `port`, killed on drop.
struct Alertmanager {
    child: Child,
}

impl Alertmanager {
    fn start(dir: &Path, port: u16, hook: u16) -> Alertmanager {
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 4s\n  group_interval: 2s\n  repeat_interval: 1h\n\
                 receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{hook}/\n    send_resolved: true\n"
            ),
        )
        .expect("write alertmanager.yml");
        let log = std::fs::File::create(dir.join("alertmanager.log")).expect("log");
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager { child };
        wait_until(Duration::from_secs(15), "alertmanager answers", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn wait_until(limit: Duration, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}

/// A director watching `127.0.0.1:watched` with an alertmanager action.
fn director(name: &str, watched: u16, am_port: u16) -> Fixture {
    let mut f = Fixture::new(&format!("am-{name}"));
    let text = format!(
        r#"
[daemon]
statedir = "state"
shutdown_grace = "2s"
director = "{name}"

[hostgroups]
web = ["127.0.0.1"]

[actions.am]
type = "alertmanager"
url = "http://127.0.0.1:{am_port}"
resend = "2s"
labels = {{ team = "net" }}

[watch.web.http]
interval = "1s"
monitor = {{ type = "tcp", port = {watched}, timeout = "1s" }}
alert = ["am"]
upalert = ["am"]
alertevery = "1h"
"#
    );
    std::fs::write(f.config(), text).expect("write config");
    f.start();
    f
}

fn notifications(received: &Received) -> Vec<serde_json::Value> {
    received
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, v)| v.clone())
        .collect()
}

fn directors_in(notification: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = notification["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["labels"]["director"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn am_dump(f: &Fixture) -> serde_json::Value {
    f.dump()["alertmanagers"][0].clone()
}

#[test]
fn two_directors_one_notification_resolve_after_upalert_and_queue_while_down() {
    if !Path::new(ALERTMANAGER).exists() {
        common::not_run("needs Debian's prometheus-alertmanager");
        return;
    }
    let (hook, received) = webhook();
    let am_port = closed_port();
    let scratch = Fixture::new("am-server");
    let mut am = Some(Alertmanager::start(&scratch.dir, am_port, hook));

    // The watched service is up while both directors start.
    let service = TcpListener::bind("127.0.0.1:0").expect("bind service");
    let watched = service.local_addr().expect("addr").port();
    let a = director("dir-a", watched, am_port);
    let b = director("dir-b", watched, am_port);
    for f in [&a, &b] {
        f.wait_for(|f| f.opstatus("http") == "ok", "the service is up");
    }

    // The service fails: both directors alert, Alertmanager groups the two
    // alerts and the webhook hears one notification naming both directors.
    drop(service);
    wait_until(Duration::from_secs(20), "a firing notification", || {
        !notifications(&received).is_empty()
    });
    // Longer than group_wait + group_interval: a second notification would be here.
    std::thread::sleep(Duration::from_secs(7));
    let all = notifications(&received);
    assert_eq!(all.len(), 1, "exactly one notification: {all:#?}");
    let first = &all[0];
    assert_eq!(first["status"], "firing");
    assert_eq!(directors_in(first), ["dir-a", "dir-b"]);
    let labels = &first["alerts"][0]["labels"];
    assert_eq!(labels["group"], "web");
    assert_eq!(labels["service"], "http");
    assert_eq!(labels["host"], "127.0.0.1");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["team"], "net");
    assert!(
        first["alerts"][0]["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{first:#}"
    );
    // Re-sent every 2 s while it fails, so it stays firing past resend × 4.
    assert_eq!(am_dump(&a)["firing"], 1, "{:#}", am_dump(&a));

    // A silence set in Alertmanager shows in dump.
    let silence = serde_json::json!({
        "matchers": [{"name": "service", "value": "http", "isRegex": false, "isEqual": true}],
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "ops",
        "comment": "maintenance"
    });
    post_json(am_port, "/api/v2/silences", &silence.to_string());
    a.wait_for(
        |f| {
            am_dump(f)["silences"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["comment"] == "maintenance"))
        },
        "dump shows the silence",
    );
    let text = String::from_utf8_lossy(&a.cli(&["dump"]).stdout).into_owned();
    assert!(text.contains("silenced by"), "{text}");
    expire_silences(am_port);

    // The service returns: the upalert resolves, and the resolve reaches
    // the webhook after the upalert.
    let rebound = Instant::now();
    let service = TcpListener::bind(("127.0.0.1", watched)).expect("rebind service");
    for f in [&a, &b] {
        f.wait_for(|f| f.opstatus("http") == "ok", "the service is up again");
    }
    wait_until(Duration::from_secs(20), "a resolved notification", || {
        notifications(&received)
            .iter()
            .any(|n| n["status"] == "resolved")
    });
    let resolved_at = received
        .lock()
        .expect("lock")
        .iter()
        .find(|(_, n)| n["status"] == "resolved")
        .map(|(t, _)| *t)
        .expect("resolved");
    assert!(resolved_at > rebound, "the resolve follows the upalert");
    let history = a.dump()["alert_history"].to_string();
    assert!(history.contains("upalert web http"), "{history}");
    for f in [&a, &b] {
        f.wait_for(|f| am_dump(f)["firing"] == 0, "nothing fires any more");
    }

    // Alertmanager goes down; the service fails again: the alerts wait in
    // each director's queue (on disk) and arrive once it is back.
    drop(am.take());
    let before = notifications(&received).len();
    drop(service);
    for f in [&a, &b] {
        f.wait_for(
            |f| {
                let d = am_dump(f);
                d["pending"].as_u64().unwrap_or(0) >= 1 && !d["last_error"].is_null()
            },
            "the alert waits in the queue",
        );
        let queued = std::fs::read_dir(f.dir.join("state/alertmanager"))
            .expect("queue dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name() != "firing.json" && e.path().is_file())
            })
            .count();
        assert!(queued >= 1, "the queued alert is on disk");
    }
    // A director killed now (kill -9) and restarted keeps its queued
    // alert: it goes out from the queue, not from a new alert decision
    // (the restored state says the alert was already sent).
    let mut a = a;
    if let Some(mut child) = a.daemon.take() {
        child.kill().expect("kill -9");
        child.wait().ok();
    }
    a.start();
    a.wait_for(
        |f| am_dump(f)["pending"].as_u64().unwrap_or(0) >= 1,
        "the restarted director still has its queued alert",
    );
    let _am = Alertmanager::start(&scratch.dir, am_port, hook);
    wait_until(
        Duration::from_secs(40),
        "the queued alerts arrive after Alertmanager returns",
        || {
            notifications(&received)[before..]
                .iter()
                .any(|n| n["status"] == "firing" && directors_in(n) == ["dir-a", "dir-b"])
        },
    );
    for f in [&a, &b] {
        f.wait_for(|f| am_dump(f)["pending"] == 0, "the queue is empty");
    }
    let history: Vec<String> = a.dump()["alert_history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|l| l.as_str().map(str::to_string))
        .filter(|l| l.starts_with("alert web http"))
        .collect();
    assert_eq!(
        history.len(),
        2,
        "two failures, no new alert after the restart: {history:#?}"
    );
}

fn post_json(port: u16, path: &str, body: &str) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Expire every silence, so later notifications are not held back.
fn expire_silences(port: u16) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET /api/v2/silences HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("[]");
    // Chunked or not, the JSON array is the part between the brackets.
    let json = &body[body.find('[').unwrap_or(0)..=body.rfind(']').unwrap_or(0)];
    let silences: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    for s in silences {
        let id = s["id"].as_str().unwrap_or("");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            stream,
            "DELETE /api/v2/silence/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok();
    }
}
