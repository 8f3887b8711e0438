//! The proxy's connection limits and tcp idle timeouts: a virtual server's `maxconn` holds new clients in the accept queue until a connection ends, the global budget below the descriptor limit keeps the daemon's own health checks and control socket working when more idle clients arrive than descriptors allow, and `timeout.client`/`timeout.server` close idle tcp connections.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::daemon::{Fixture, closed_port};
use keepmon::config::model::{LbScheduler, ProxyOptions};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxySpec, start};
use tokio_util::sync::CancellationToken;

/// A backend that greets every connection with `hi\n` and keeps it open
/// until the client closes; counts the connections it accepted.
fn greeting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = stream.write_all(b"hi\n");
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    (addr, accepted)
}

/// Connects and waits up to `wait` for the backend's greeting through the
/// proxy: `Some(stream)` when served.
fn served(addr: SocketAddr, wait: Duration) -> (TcpStream, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut greeting = [0u8; 3];
    let ok = stream.read_exact(&mut greeting).is_ok() && &greeting == b"hi\n";
    (stream, ok)
}

#[test]
fn maxconn_holds_new_clients_until_a_connection_ends() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (backend, _) = greeting_backend();
    let shutdown = CancellationToken::new();
    let proxy = runtime
        .block_on(start(
            ProxySpec {
                name: "test".to_string(),
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                scheduler: LbScheduler::RoundRobin,
                config_servers: Default::default(),
                backends: vec![Backend {
                    addr: backend,
                    weight: 1,
                }],
                persistence: None,
                retries: 0,
                connect_timeout: Duration::from_secs(2),
                sorry: None,
                options: ProxyOptions {
                    maxconn: Some(2),
                    ..ProxyOptions::default()
                },
                limits: Default::default(),
            },
            shutdown.clone(),
        ))
        .unwrap();
    let addr = proxy.local_addr().unwrap();
    let (first, ok1) = served(addr, Duration::from_secs(5));
    let (_second, ok2) = served(addr, Duration::from_secs(5));
    assert!(ok1 && ok2, "two connections are within maxconn");
    let (mut third, ok3) = served(addr, Duration::from_millis(500));
    assert!(!ok3, "the third waits in the accept queue");
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut greeting = [0u8; 3];
    third.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"hi\n", "served once a place is free");
    shutdown.cancel();
}

#[test]
fn the_daemon_keeps_descriptors_for_itself_when_clients_exceed_the_budget() {
    let (backend, _) = greeting_backend();
    let proxy_port = closed_port();
    let mut f = Fixture::new("proxy-limits");
    f.write_config(
        backend.port(),
        closed_port(),
        &format!(
            r#"
[virtual_servers.web]
listen = "127.0.0.1:{proxy_port}"
scheduler = "rr"
health = "local:up"
real_servers = [{{ addr = "{backend}" }}]
"#
        ),
    );
    // 160 descriptors: 64 kept for the daemon, (160 - 64) / 2 = 48 clients.
    let log = std::fs::File::create(f.dir.join("daemon.log")).unwrap();
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 160 && exec \"$0\" start -c \"$1\"")
        .arg(env!("CARGO_BIN_EXE_keepmon"))
        .arg(f.config())
        .env("KEEPMON_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    f.daemon = Some(child);
    f.wait_for(
        |f| f.cli(&["status"]).status.success(),
        "the daemon answers",
    );
    f.wait_for(|f| f.opstatus("up") == "ok", "the health check passes");
    let proxy: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    f.wait_for(
        |_| served(proxy, Duration::from_secs(2)).1,
        "the proxy serves",
    );

    let mut clients = Vec::new();
    let mut refused = 0;
    for _ in 0..60 {
        let (stream, ok) = served(proxy, Duration::from_millis(300));
        if !ok {
            refused += 1;
        }
        clients.push(stream);
    }
    assert!(
        (10..=14).contains(&refused),
        "{refused} of 60 clients were held back (the budget is 48)"
    );
    // Saturated for a few check intervals: checks and the control socket work.
    std::thread::sleep(Duration::from_secs(3));
    assert!(f.cli(&["status"]).status.success(), "control socket");
    assert_eq!(f.opstatus("up"), "ok", "the health check still connects");
    let log = std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();
    assert!(
        !log.contains("Too many open files"),
        "the daemon ran out of descriptors:\n{log}"
    );
    assert!(
        log.contains("connection limit"),
        "the limit was logged:\n{log}"
    );
}

#[test]
fn tcp_mode_closes_connections_idle_longer_than_the_timeout() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (backend, _) = greeting_backend();
    let shutdown = CancellationToken::new();
    let proxy = runtime
        .block_on(start(
            ProxySpec {
                name: "test".to_string(),
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                scheduler: LbScheduler::RoundRobin,
                config_servers: Default::default(),
                backends: vec![Backend {
                    addr: backend,
                    weight: 1,
                }],
                persistence: None,
                retries: 0,
                connect_timeout: Duration::from_secs(2),
                sorry: None,
                options: ProxyOptions {
                    timeout_client: Some(Duration::from_millis(400)),
                    ..ProxyOptions::default()
                },
                limits: Default::default(),
            },
            shutdown.clone(),
        ))
        .unwrap();
    let addr = proxy.local_addr().unwrap();
    // Busy: a byte every 100 ms keeps it open well past the timeout.
    let (mut busy, ok) = served(addr, Duration::from_secs(5));
    assert!(ok);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        busy.write_all(b"x").unwrap();
    }
    let mut byte = [0u8; 1];
    busy.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let still_open =
        matches!(busy.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(still_open, "the busy connection stays open after 1 s");
    // Idle: closed by the proxy after about 400 ms.
    let (mut idle, ok) = served(addr, Duration::from_secs(5));
    assert!(ok);
    let started = std::time::Instant::now();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(idle.read(&mut byte).unwrap_or(0), 0, "closed, not answered");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    shutdown.cancel();
}
