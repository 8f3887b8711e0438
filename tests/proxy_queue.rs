//! Per-server `maxconn` with queues (HAProxy's `maxconn`, `maxqueue`, `timeout queue`) through the proxy in both modes, against real servers on loopback: a full server's clients wait and are served when a slot frees, a wait past the queue timeout ends in a close (tcp) or a 503 (http), a full server queue redispatches, and the queue counters show it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use keepmon::config::model::{LbScheduler, ProxyMode, ProxyOptions};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxyHandle, ProxySpec, start};
use keepmon::lb::table::ServerLimits;
use tokio_util::sync::CancellationToken;

/// Greets every connection with `hi\n` and keeps it open until the client closes.
fn greeting_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.write_all(b"hi\n");
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Answers each HTTP request `200 ok` after `delay` (one request per connection).
fn slow_http_backend(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                );
            });
        }
    });
    addr
}

fn spec(
    mode: ProxyMode,
    scheduler: LbScheduler,
    backend: SocketAddr,
    limits: ServerLimits,
    timeout_queue: Duration,
) -> ProxySpec {
    ProxySpec {
        name: "test".to_string(),
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        scheduler,
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
            mode,
            timeout_queue: Some(timeout_queue),
            ..ProxyOptions::default()
        },
        limits: BTreeMap::from([(backend, limits)]),
    }
}

fn limits(maxconn: u32, maxqueue: Option<u32>) -> ServerLimits {
    ServerLimits {
        maxconn: Some(maxconn),
        maxqueue,
        ..ServerLimits::default()
    }
}

/// Connects and reads the greeting within `wait`: whether it came.
fn greeted(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut greeting = [0u8; 3];
    stream.read_exact(&mut greeting).is_ok() && &greeting == b"hi\n"
}

/// Whether the proxy closed `stream` (EOF or reset) within `wait`.
fn closed(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 8];
    match stream.read(&mut buffer) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run(runtime: &tokio::runtime::Runtime, spec: ProxySpec) -> (ProxyHandle, SocketAddr) {
    let proxy = runtime
        .block_on(start(spec, CancellationToken::new()))
        .unwrap();
    let addr = proxy.local_addr().unwrap();
    (proxy, addr)
}

#[test]
fn tcp_clients_wait_for_a_slot_and_are_closed_after_the_queue_timeout() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = greeting_backend();
    let (proxy, addr) = run(
        &runtime,
        spec(
            ProxyMode::Tcp,
            LbScheduler::RoundRobin,
            backend,
            limits(1, None),
            Duration::from_millis(800),
        ),
    );
    let mut first = TcpStream::connect(addr).unwrap();
    assert!(greeted(&mut first, Duration::from_secs(5)));
    let mut second = TcpStream::connect(addr).unwrap();
    assert!(
        !greeted(&mut second, Duration::from_millis(300)),
        "the server is full"
    );
    assert_eq!(
        proxy.queue_stats().queued,
        1,
        "waits in the virtual server's queue"
    );
    drop(first);
    assert!(
        greeted(&mut second, Duration::from_secs(5)),
        "served once the slot is free"
    );
    assert_eq!(proxy.queue_stats().queued, 0);
    assert_eq!(proxy.queue_stats().queue_max, 1);

    let started = Instant::now();
    let mut third = TcpStream::connect(addr).unwrap();
    assert!(
        closed(&mut third, Duration::from_secs(5)),
        "closed after timeout queue"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    assert_eq!(
        proxy.stats()[0].active,
        1,
        "the second client is still served"
    );
    drop(second);
}

/// With a hashing scheduler a client is bound to its server: it waits in
/// that server's queue, and once `maxqueue` are waiting the next one is
/// redispatched — with no other server, closed at once.
#[test]
fn tcp_bound_clients_use_the_server_queue_up_to_maxqueue() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = greeting_backend();
    let (proxy, addr) = run(
        &runtime,
        spec(
            ProxyMode::Tcp,
            LbScheduler::SourceHash,
            backend,
            limits(1, Some(1)),
            Duration::from_secs(10),
        ),
    );
    let mut first = TcpStream::connect(addr).unwrap();
    assert!(greeted(&mut first, Duration::from_secs(5)));
    let mut second = TcpStream::connect(addr).unwrap();
    wait_for("the second client in the server's queue", || {
        proxy.stats()[0].queued == 1
    });
    let started = Instant::now();
    let mut third = TcpStream::connect(addr).unwrap();
    assert!(
        closed(&mut third, Duration::from_secs(5)),
        "the server's queue is full and no other server is left"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not after the queue timeout"
    );
    drop(first);
    assert!(greeted(&mut second, Duration::from_secs(5)));
    let stats = &proxy.stats()[0];
    assert_eq!((stats.queued, stats.queue_max), (0, 1));
    assert_eq!(
        proxy.queue_stats().queue_max,
        0,
        "never in the virtual server's queue"
    );
}

/// Sends `GET /` and returns the response status.
fn get_status(addr: SocketAddr) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[test]
fn http_requests_queue_behind_maxconn_and_get_503_after_the_queue_timeout() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = slow_http_backend(Duration::from_millis(300));
    let (proxy, addr) = run(
        &runtime,
        spec(
            ProxyMode::Http,
            LbScheduler::RoundRobin,
            backend,
            limits(1, None),
            Duration::from_secs(5),
        ),
    );
    let started = Instant::now();
    let clients: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || get_status(addr)))
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 200]);
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "one at a time: {:?}",
        started.elapsed()
    );
    assert_eq!(proxy.queue_stats().queue_max, 2);
    assert_eq!(proxy.queue_stats().queued, 0);
    drop(proxy);

    let backend = slow_http_backend(Duration::from_millis(1500));
    let (proxy, addr) = run(
        &runtime,
        spec(
            ProxyMode::Http,
            LbScheduler::RoundRobin,
            backend,
            limits(1, None),
            Duration::from_millis(400),
        ),
    );
    let first = std::thread::spawn(move || get_status(addr));
    wait_for("the first request on the server", || {
        proxy.stats()[0].active == 1
    });
    assert_eq!(get_status(addr), 503, "queue timeout");
    assert_eq!(first.join().unwrap(), 200);
}
