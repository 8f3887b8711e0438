//! http mode's own answers as HAProxy configures them, on loopback with real servers: error files (`errorfile`) replace keepmon's 502/503/504 pages, and `timeout client` ends a stalled request body with 408 and closes a client that stops reading.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use keepmon::config::model::{ErrorFile, LbScheduler, ProxyMode, ProxyOptions};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxyHandle, ProxySpec, start};
use tokio_util::sync::CancellationToken;

/// A port with nothing listening (bound, then closed).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn http_spec(backends: Vec<Backend>, options: ProxyOptions) -> ProxySpec {
    ProxySpec {
        name: "test".to_string(),
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        scheduler: LbScheduler::RoundRobin,
        config_servers: Default::default(),
        backends,
        persistence: None,
        retries: 0,
        connect_timeout: Duration::from_secs(2),
        sorry: None,
        options: ProxyOptions {
            mode: ProxyMode::Http,
            ..options
        },
        limits: BTreeMap::new(),
    }
}

fn run(runtime: &tokio::runtime::Runtime, spec: ProxySpec) -> (ProxyHandle, SocketAddr) {
    let proxy = runtime
        .block_on(start(spec, CancellationToken::new()))
        .unwrap();
    let addr = proxy.local_addr().unwrap();
    (proxy, addr)
}

/// The whole response to one `GET /` on a new connection.
fn get(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn error_files_replace_the_proxys_own_pages() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sorry = ErrorFile::parse(
        PathBuf::from("/etc/keepmon/503.http"),
        "HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\nX-Sorry: yes\r\n\r\n<h1>Back soon</h1>\n",
    )
    .unwrap();
    let bad_gateway = ErrorFile::parse(
        PathBuf::from("/etc/keepmon/502.http"),
        "HTTP/1.0 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbad\n",
    )
    .unwrap();
    let options = ProxyOptions {
        error_files: BTreeMap::from([(503, sorry)]),
        ..ProxyOptions::default()
    };
    // No server at all: 503, from the file.
    let (_proxy, addr) = run(&runtime, http_spec(Vec::new(), options.clone()));
    let response = get(addr);
    assert!(
        response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nx-sorry: yes\r\n"), "{response}");
    assert!(
        response.contains("\r\ncontent-length: 19\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with("\r\n\r\n<h1>Back soon</h1>\n"),
        "{response}"
    );

    // A server that refuses the connection: 503 as well (no retry left).
    let (_proxy, addr) = run(
        &runtime,
        http_spec(
            vec![Backend {
                addr: closed_port(),
                weight: 1,
            }],
            options,
        ),
    );
    assert!(get(addr).ends_with("<h1>Back soon</h1>\n"));

    // A server that hangs up without an answer: 502, from its own file;
    // without one, keepmon's page.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let rude = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 512];
            let _ = stream.read(&mut head);
        }
    });
    let backends = vec![Backend {
        addr: rude,
        weight: 1,
    }];
    let (_proxy, addr) = run(
        &runtime,
        http_spec(
            backends.clone(),
            ProxyOptions {
                error_files: BTreeMap::from([(502, bad_gateway)]),
                ..ProxyOptions::default()
            },
        ),
    );
    let response = get(addr);
    assert!(
        response.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{response}"
    );
    assert!(response.ends_with("\r\n\r\nbad\n"), "{response}");
    let (_proxy, addr) = run(&runtime, http_spec(backends, ProxyOptions::default()));
    let response = get(addr);
    assert!(response.contains("<h1>502 Bad Gateway</h1>"), "{response}");
}

/// A backend that answers every request on a connection with `size` bytes,
/// after reading its head and `Content-Length` body.
fn sized_backend(size: usize) -> SocketAddr {
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
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap_or(0));
                let mut body = vec![0u8; length];
                if stream.read_exact(&mut body).is_err() {
                    return;
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&vec![b'x'; size]);
            });
        }
    });
    addr
}

/// `timeout client` in http mode: a request body that stalls gets 408 and
/// a closed connection, and so does a client that stops reading a
/// response (closed, the rest of the response is not sent).
#[test]
fn timeout_client_closes_stalled_clients_in_http_mode() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let size = 64 << 20;
    let backends = vec![Backend {
        addr: sized_backend(size),
        weight: 1,
    }];
    let (proxy, addr) = run(
        &runtime,
        http_spec(
            backends,
            ProxyOptions {
                timeout_client: Some(Duration::from_millis(400)),
                ..ProxyOptions::default()
            },
        ),
    );

    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut response = Vec::new();
    let _ = stalled.read_to_end(&mut response);
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(
        proxy.stats()[0].failures,
        0,
        "the client's fault, not the server's"
    );

    let mut lazy = TcpStream::connect(addr).unwrap();
    lazy.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    lazy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    while let Ok(n) = lazy.read(&mut buffer) {
        if n == 0 {
            break;
        }
        received += n;
    }
    assert!(
        received > 0 && received < size,
        "received {received} of {size}"
    );
}
