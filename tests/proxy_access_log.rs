//! The proxy's access log (HAProxy's `option httplog` / `tcplog` with `dontlognull`) written to a file, with real servers on loopback: one line per http request and per tcp connection in HAProxy's field order, none for a tcp connection that sent nothing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use keepmon::config::model::{AccessLog, AccessLogTarget, LbScheduler, ProxyMode, ProxyOptions};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxySpec, start};
use tokio_util::sync::CancellationToken;

/// Answers `ok\n` to each request (reads one head per connection) or,
/// for tcp, echoes what it reads.
fn backend(http: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                let mut seen = Vec::new();
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        return;
                    }
                    if !http {
                        let _ = stream.write_all(&buffer[..n]);
                        continue;
                    }
                    seen.extend_from_slice(&buffer[..n]);
                    if seen.ends_with(b"\r\n\r\n") {
                        seen.clear();
                        let _ =
                            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
                    }
                }
            });
        }
    });
    addr
}

fn spec(mode: ProxyMode, backend: SocketAddr, file: &Path) -> ProxySpec {
    ProxySpec {
        name: "web".to_string(),
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
            mode,
            access_log: Some(AccessLog {
                to: AccessLogTarget::File(file.to_path_buf()),
                dontlognull: true,
            }),
            ..ProxyOptions::default()
        },
        limits: BTreeMap::new(),
    }
}

fn lines(file: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn requests_and_connections_are_logged_in_haproxys_format() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("keepmon-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let http_log = dir.join("http.log");
    let server = backend(true);
    let proxy = runtime
        .block_on(start(
            spec(ProxyMode::Http, server, &http_log),
            CancellationToken::new(),
        ))
        .unwrap();
    let addr = proxy.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let me = client.local_addr().unwrap();
    client
        .write_all(b"GET /a?b=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).unwrap();
    assert_eq!(response.matches("ok\n").count(), 2, "{response}");
    let logged = lines(&http_log, 2);
    assert_eq!(logged.len(), 2, "{logged:?}");
    // 127.0.0.1:PORT [DATE] web web/SERVER TR/Tw/Tc/Tr/Ta 200 3 - - ---- 1/1/B/S/0 0/0 "GET /a?b=1 HTTP/1.1"
    let fields: Vec<&str> = logged[0].split(' ').collect();
    assert_eq!(fields[0], me.to_string(), "{}", logged[0]);
    assert!(
        fields[1].starts_with('[') && fields[1].ends_with(']'),
        "{}",
        logged[0]
    );
    assert_eq!(fields[2], "web");
    assert_eq!(fields[3], format!("web/{server}"));
    let timers: Vec<i64> = fields[4].split('/').map(|t| t.parse().unwrap()).collect();
    assert_eq!(timers.len(), 5);
    assert!(timers.iter().all(|&t| t >= 0), "{}", logged[0]);
    assert_eq!(
        &fields[5..10],
        ["200", "3", "-", "-", "----"],
        "{}",
        logged[0]
    );
    assert_eq!(fields[10].split('/').count(), 5);
    assert_eq!(fields[11], "0/0");
    assert!(
        logged[0].ends_with(" \"GET /a?b=1 HTTP/1.1\""),
        "{}",
        logged[0]
    );
    assert!(
        logged[1].ends_with(" \"GET /two HTTP/1.1\""),
        "{}",
        logged[1]
    );
    drop(proxy);

    let tcp_log = dir.join("tcp.log");
    let server = backend(false);
    // A frontend whose haproxy.cfg backend has another name logs both.
    let mut tcp_spec = spec(ProxyMode::Tcp, server, &tcp_log);
    tcp_spec.options.backend = Some("be".to_string());
    let proxy = runtime
        .block_on(start(tcp_spec, CancellationToken::new()))
        .unwrap();
    let addr = proxy.local_addr().unwrap();
    // Sends nothing: dontlognull leaves it out.
    drop(TcpStream::connect(addr).unwrap());
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    let mut echo = [0u8; 5];
    client.read_exact(&mut echo).unwrap();
    drop(client);
    let logged = lines(&tcp_log, 1);
    std::thread::sleep(Duration::from_millis(200));
    let logged_later = lines(&tcp_log, 1);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(logged, logged_later);
    assert_eq!(logged.len(), 1, "{logged:?}");
    let fields: Vec<&str> = logged[0].split(' ').collect();
    assert_eq!(
        &fields[2..4],
        ["web", &format!("be/{server}")],
        "{}",
        logged[0]
    );
    assert_eq!(fields[4].split('/').count(), 3, "Tw/Tc/Tt: {}", logged[0]);
    assert_eq!(&fields[5..7], ["5", "--"], "{}", logged[0]);
    assert_eq!(fields.len(), 9, "{}", logged[0]);
}
