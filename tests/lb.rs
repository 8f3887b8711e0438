//! Load balancing as a user runs it: real backends on loopback behind keepmon's proxy; health, lvs.alert and the CLI move real servers, traffic keeps flowing.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::daemon::Fixture;

/// A backend on `ip:port` that greets every connection with its own address
/// and then echoes what it receives. Stops when dropped.
struct Backend {
    ip: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    fn start(ip: &str, port: u16) -> Backend {
        let listener = TcpListener::bind((ip, port)).expect("bind backend");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let name = format!("{ip}\n");
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let name = name.clone();
                        std::thread::spawn(move || {
                            conn.set_nonblocking(false).ok();
                            conn.set_read_timeout(Some(Duration::from_secs(20))).ok();
                            if conn.write_all(name.as_bytes()).is_err() {
                                return;
                            }
                            let mut buf = [0u8; 1024];
                            while let Ok(n) = conn.read(&mut buf) {
                                if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend {
            ip: ip.to_string(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// A port free on all of 127.0.0.11-13 and one free for the VIP.
fn ports() -> (u16, u16) {
    for _ in 0..50 {
        let probe = TcpListener::bind("127.0.0.11:0").expect("probe");
        let port = probe.local_addr().expect("addr").port();
        let free = ["127.0.0.12", "127.0.0.13"]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok());
        if free {
            let vip = TcpListener::bind("127.0.0.1:0").expect("vip probe");
            return (port, vip.local_addr().expect("addr").port());
        }
    }
    panic!("no common free port");
}

/// Connect to the VIP and read the greeting: which backend answered.
fn who(vip_port: u16) -> Option<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", vip_port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn answers(vip_port: u16, n: usize) -> Vec<String> {
    (0..n).filter_map(|_| who(vip_port)).collect()
}

fn toml_config(f: &Fixture, port: u16, vip: u16) {
    let text = format!(
        r#"
[daemon]
statedir = "state"

[hostgroups]
backends = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]

[watch.backends.web]
interval = "500ms"
monitor = {{ type = "tcp", port = {port}, timeout = "1s" }}
fall = 2
rise = 2

[virtual_servers.web]
listen = "127.0.0.1:{vip}"
scheduler = "rr"
health = "backends:web"
retries = 2
real_servers = [
  {{ addr = "127.0.0.11:{port}" }},
  {{ addr = "127.0.0.12:{port}" }},
  {{ addr = "127.0.0.13:{port}" }},
]
"#
    );
    std::fs::write(f.config(), text).expect("config");
}

#[test]
fn health_moves_real_servers_and_traffic_follows() {
    let (port, vip) = ports();
    let backends: Vec<Backend> = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
        .iter()
        .map(|ip| Backend::start(ip, port))
        .collect();
    let mut f = Fixture::new("lb-health");
    toml_config(&f, port, vip);
    f.start();
    f.wait_for(|_| answers(vip, 6).len() == 6, "the VIP answers");
    let seen = answers(vip, 6);
    for b in &backends {
        assert!(seen.contains(&b.ip), "rr reaches {} ({seen:?})", b.ip);
    }

    // A long-lived connection through the VIP, opened before any change.
    let mut long = TcpStream::connect(("127.0.0.1", vip)).expect("long connection");
    long.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut greet = [0u8; 64];
    let n = long.read(&mut greet).expect("greeting");
    let long_backend = String::from_utf8_lossy(&greet[..n]).trim().to_string();

    // Kill one backend (not the long connection's): it leaves the table and
    // no new connection reaches it; clients see no error thanks to retries.
    let victim_index = backends
        .iter()
        .position(|b| b.ip != long_backend)
        .expect("another backend");
    let mut backends = backends;
    let victim = backends.remove(victim_index);
    let victim_ip = victim.ip.clone();
    drop(victim);
    f.wait_for(
        |f| {
            let out = f.cli(&["lb", "show"]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.contains(&victim_ip) && l.contains("down") && l.contains("absent"))
        },
        "the dead backend is marked down and absent",
    );
    let after = answers(vip, 12);
    assert_eq!(after.len(), 12, "no client-visible failure: {after:?}");
    assert!(
        !after.contains(&victim_ip),
        "no new connection reaches the dead backend: {after:?}"
    );

    // The long-lived connection survived the table change.
    long.write_all(b"still there\n").expect("write");
    let mut echo = [0u8; 64];
    let n = long.read(&mut echo).expect("echo after the change");
    assert_eq!(&echo[..n], b"still there\n");

    // Bring it back: re-added after `rise` good checks.
    let revived = Backend::start(&victim_ip, port);
    f.wait_for(
        |_| answers(vip, 9).contains(&victim_ip),
        "the revived backend is used again",
    );
    drop(revived);
    drop(backends);
}

#[test]
fn cli_drain_maint_ready_and_weight() {
    let (port, vip) = ports();
    let _backends: Vec<Backend> = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
        .iter()
        .map(|ip| Backend::start(ip, port))
        .collect();
    let mut f = Fixture::new("lb-cli");
    toml_config(&f, port, vip);
    f.start();
    f.wait_for(|_| answers(vip, 3).len() == 3, "the VIP answers");

    let rs = format!("127.0.0.12:{port}");
    // A connection open before the drain keeps working after it.
    let mut open = None;
    for _ in 0..6 {
        let mut c = TcpStream::connect(("127.0.0.1", vip)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut g = [0u8; 64];
        let n = c.read(&mut g).expect("greeting");
        if String::from_utf8_lossy(&g[..n]).trim() == "127.0.0.12" {
            open = Some(c);
            break;
        }
    }
    let mut open = open.expect("a connection to 127.0.0.12");
    let out = f.cli(&["lb", "drain", "web", &rs]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.wait_for(
        |_| !answers(vip, 6).contains(&"127.0.0.12".to_string()),
        "drained: no new connections",
    );
    open.write_all(b"ping\n").expect("write");
    let mut buf = [0u8; 16];
    assert_eq!(
        open.read(&mut buf).expect("echo"),
        5,
        "the drained server's open connection continues"
    );

    assert!(f.cli(&["lb", "maint", "web", &rs]).status.success());
    let show = String::from_utf8_lossy(&f.cli(&["lb", "show"]).stdout).into_owned();
    assert!(
        show.lines()
            .any(|l| l.contains(&rs) && l.contains("maint") && l.contains("absent")),
        "{show}"
    );
    assert!(f.cli(&["lb", "ready", "web", &rs]).status.success());
    f.wait_for(
        |_| answers(vip, 6).contains(&"127.0.0.12".to_string()),
        "ready again",
    );

    assert!(
        f.cli(&["lb", "weight", "web", &format!("127.0.0.11:{port}"), "0"])
            .status
            .success()
    );
    f.wait_for(
        |_| !answers(vip, 6).contains(&"127.0.0.11".to_string()),
        "weight 0 takes no new connections",
    );

    let json = f.cli(&["lb", "show", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(value["services"][0]["name"], "web");
    // The drained connection sent "ping\n" and got 5 bytes back, on top of
    // the greeting: 127.0.0.12's totals count at least that.
    let stats = f.cli(&["lb", "show", "--stats"]);
    assert!(stats.status.success());
    let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
    let line = stats
        .lines()
        .find(|l| l.contains(&rs))
        .unwrap_or_else(|| panic!("{rs} in lb show --stats:\n{stats}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|w| w.parse().expect("plain numbers below 10K"))
        .collect();
    let [conns, failed, bytes_in, bytes_out] = numbers[..] else {
        panic!("four columns: {line}");
    };
    assert!(conns >= 1 && failed == 0, "{line}");
    assert!(bytes_in >= 5, "{line}");
    assert!(bytes_out >= "127.0.0.12\n".len() as u64 + 5, "{line}");
    let bad = f.cli(&["lb", "drain", "nosuch", &rs]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown virtual service"));
    let dump = f.dump();
    assert!(
        dump["lb_changes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|l| l.as_str().unwrap_or("").contains("Drain"))),
        "lb changes are in dump: {dump}"
    );
}

/// Regression (issue 19, finding 4): after kill -9 a real server put in
/// `maint` came back `ready` and took traffic. Admin states and weights are
/// in the state file and come back at start.
#[test]
fn lb_maint_and_weight_survive_kill_9() {
    let (port, vip) = ports();
    let _backends: Vec<Backend> = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
        .iter()
        .map(|ip| Backend::start(ip, port))
        .collect();
    let mut f = Fixture::new("lb-kill9");
    toml_config(&f, port, vip);
    f.start();
    f.wait_for(|_| answers(vip, 3).len() == 3, "the VIP answers");
    let maint = format!("127.0.0.12:{port}");
    let weighted = format!("127.0.0.11:{port}");
    for args in [
        vec!["lb", "maint", "web", maint.as_str()],
        vec!["lb", "weight", "web", weighted.as_str(), "0"],
    ] {
        let out = f.cli(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut daemon = f.daemon.take().expect("daemon running");
    daemon.kill().expect("kill -9");
    daemon.wait().expect("reaped");
    f.start();

    let show = String::from_utf8_lossy(&f.cli(&["lb", "show"]).stdout).into_owned();
    assert!(
        show.lines()
            .any(|l| l.contains(&maint) && l.contains("maint") && l.contains("absent")),
        "still maint after kill -9:\n{show}"
    );
    f.wait_for(
        |_| answers(vip, 6).len() == 6,
        "the VIP answers after the restart",
    );
    // Only 127.0.0.13 takes new connections: .12 is in maint, .11 has
    // weight 0.
    let seen = answers(vip, 12);
    assert!(
        seen.len() == 12 && seen.iter().all(|s| s == "127.0.0.13"),
        "the maint and weight-0 servers get no traffic after the restart: {seen:?}"
    );
    let dump = f.dump();
    let settings: Vec<&str> = dump["lb_settings"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        settings,
        [
            format!("web {weighted} weight 0 (config: 1)"),
            format!("web {maint} maint (config: ready)"),
        ],
        "{dump}"
    );
    let table = String::from_utf8_lossy(&f.cli(&["dump"]).stdout).into_owned();
    assert!(table.contains("lb run-time settings"), "{table}");
}

/// The seed-style mon.cf: one hostgroup per real server and lvs.alert lines;
/// keepmon builds the virtual service from them and edits its own proxy.
#[test]
fn seed_style_mon_cf_with_lvs_alert_edits_the_proxy() {
    let (port, vip) = ports();
    let backends: Vec<Backend> = ["127.0.0.11", "127.0.0.12"]
        .iter()
        .map(|ip| Backend::start(ip, port))
        .collect();
    let mut f = Fixture::new("lb-seed");
    let d = f.dir.display().to_string();
    let mut text = format!("statedir = {d}/state\nlogdir = {d}/log\n\n");
    for (i, ip) in ["127.0.0.11", "127.0.0.12"].iter().enumerate() {
        text.push_str(&format!(
            "hostgroup rs{i} {ip}\n\nwatch rs{i}\n    service http\n        interval 1s\n        monitor tcp.monitor -p {port} -t 1\n        period wd {{Sun-Sat}}\n            alert lvs.alert -P tcp -V 127.0.0.1:{vip} -R {ip}:{port} -W 1 -F m\n            upalert lvs.alert -P tcp -V 127.0.0.1:{vip} -R {ip}:{port} -W 1 -F m\n\n"
        ));
    }
    f.write_mon_cf(&text);
    f.start();
    f.wait_for(
        |_| answers(vip, 4).len() == 4,
        "the implicit virtual service answers",
    );
    let mut backends = backends;
    let gone = backends.remove(1);
    drop(gone);
    f.wait_for(
        |f| {
            let dump = f.dump();
            dump["alert_history"].as_array().is_some_and(|h| {
                h.iter()
                    .any(|l| l.as_str().unwrap_or("").contains("lvs.alert"))
            })
        },
        "the lvs.alert failure alert is in the history",
    );
    let after = answers(vip, 6);
    assert!(
        !after.contains(&"127.0.0.12".to_string()) && after.len() == 6,
        "{after:?}"
    );
    let back = Backend::start("127.0.0.12", port);
    f.wait_for(
        |_| answers(vip, 6).contains(&"127.0.0.12".to_string()),
        "the upalert adds it back",
    );
    drop(back);
}

/// Clients hammer the VIP while one of three backends is stopped and
/// started again: with retries, no client sees a failed request.
#[test]
fn no_failed_requests_while_a_backend_dies_and_returns() {
    use std::sync::atomic::AtomicU64;
    let (port, vip) = ports();
    let mut backends: Vec<Option<Backend>> = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
        .iter()
        .map(|ip| Some(Backend::start(ip, port)))
        .collect();
    let mut f = Fixture::new("lb-zero");
    toml_config(&f, port, vip);
    f.start();
    f.wait_for(|_| answers(vip, 6).len() == 6, "the VIP answers");
    let running = Arc::new(AtomicBool::new(true));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let clients: Vec<JoinHandle<()>> = (0..4)
        .map(|_| {
            let (running, ok, failed) =
                (Arc::clone(&running), Arc::clone(&ok), Arc::clone(&failed));
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    if !running.load(Ordering::Relaxed) {
                        break;
                    }
                    match who(vip) {
                        Some(_) => ok.fetch_add(1, Ordering::Relaxed),
                        None => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    backends[1] = None; // killed
    std::thread::sleep(Duration::from_millis(2000));
    backends[1] = Some(Backend::start("127.0.0.12", port)); // back
    std::thread::sleep(Duration::from_millis(2000));
    running.store(false, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("requests through the VIP: {ok} ok, {failed} failed");
    assert!(ok > 200, "load was applied: {ok}");
    assert_eq!(failed, 0, "client-visible failures");
    drop(backends);
}
