//! Monitors against real servers on loopback: built-in tcp, http, https, ping, smtp (against Debian's aiosmtpd), udp and dns (against Debian's dnsmasq); mon.d scripts run as mon runs them; Debian's own tcp.monitor and http.monitor compared with their built-in equivalents.
//!
//! Every server is started by the test on 127.0.0.1 with a port from
//! binding `:0`; 127.0.0.2 (no listener) is the "down" host. Tests that need
//! privileges or Debian packages print `!!! NOT RUN` and fail instead when
//! `KEEPMON_REQUIRE_PRIVILEGED=1`.

mod common;

use common::not_run;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keepmon::config::model::{
    BuiltinPolicy, DnsCheck, HexPattern, HttpCheck, HttpUrl, Monitor, PingCheck, SmtpCheck,
    TcpCheck, UdpCheck,
};
use keepmon::monitor::{HostStatus, OUTPUT_CAP, RunOutput, RunRequest, run};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// No test may run longer than this.
const TEST_LIMIT: Duration = Duration::from_secs(60);

const UP: &str = "127.0.0.1";
const DOWN: &str = "127.0.0.2";

// ----- helpers -----

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test exceeded its time limit")
}

fn request(monitor: Monitor, hosts: &[&str], timeout: Duration) -> RunRequest {
    RunRequest {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        monitor,
        timeout,
        env: Vec::new(),
        builtin_policy: BuiltinPolicy::Fallback,
        lua: Default::default(),
        run_as: None,
    }
}

async fn run_monitor(monitor: Monitor, hosts: &[&str]) -> RunOutput {
    run(&request(monitor, hosts, Duration::from_secs(20))).await
}

fn tcp(port: u16) -> TcpCheck {
    TcpCheck {
        port,
        send: None,
        expect: None,
        timeout: Duration::from_secs(5),
    }
}

fn http(port: u16, path: &str) -> HttpCheck {
    HttpCheck {
        tls: false,
        port,
        method: "GET".to_string(),
        path: path.to_string(),
        host_header: None,
        status: vec![(200, 299)],
        body: None,
        timeout: Duration::from_secs(5),
        insecure: false,
        digest: None,
        more_urls: Vec::new(),
    }
}

fn status_of<'a>(out: &'a RunOutput, host: &str) -> &'a HostStatus {
    &out.hosts
        .iter()
        .find(|h| h.host == host)
        .unwrap_or_else(|| panic!("no result for {host}: {out:#?}"))
        .status
}

fn fail_reason(out: &RunOutput, host: &str) -> String {
    match status_of(out, host) {
        HostStatus::Fail { reason } => reason.clone(),
        other => panic!("{host} should fail, got {other:?}: {out:#?}"),
    }
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind((UP, 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

// ----- tcp servers -----

/// Accepts, writes `banner`, then closes.
async fn banner_server(banner: &'static [u8]) -> u16 {
    let listener = TcpListener::bind((UP, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(banner).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

/// Answers `+PONG` to every read that contains `PING`.
async fn pong_server() -> u16 {
    let listener = TcpListener::bind((UP, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if buf[..n].windows(4).any(|w| w == b"PING") {
                        let _ = stream.write_all(b"+PONG\r\n").await;
                    }
                }
            });
        }
    });
    port
}

/// Accepts and never says anything (connections are kept open).
async fn silent_server() -> u16 {
    let listener = TcpListener::bind((UP, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

// ----- http server -----

/// What the test HTTP server saw: one request head per request.
type Seen = Arc<Mutex<Vec<String>>>;

struct HttpServer {
    port: u16,
    seen: Seen,
}

impl HttpServer {
    fn last_request(&self) -> String {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

/// A small HTTP/1.x server: `/` says hello, `/status/N` answers N,
/// `/redirect` is a 302, `/host` echoes the Host header, `/hang` never
/// answers, anything else is 404. Every response closes the connection.
async fn http_server(tls: Option<tokio_rustls::TlsAcceptor>) -> HttpServer {
    let listener = TcpListener::bind((UP, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let server_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = server_seen.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_http(stream, seen).await;
                        }
                    }
                    None => serve_http(stream, seen).await,
                }
            });
        }
    });
    HttpServer { port, seen }
}

async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, seen: Seen) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().push(head.clone());
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let host = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
        })
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let (code, extra, body) = match path.as_str() {
        "/" => (200, "", "hello keepmon\n".to_string()),
        "/redirect" => (302, "Location: /\r\n", "moved\n".to_string()),
        "/host" => (200, "", host),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        p => match p
            .strip_prefix("/status/")
            .and_then(|c| c.parse::<u16>().ok())
        {
            Some(code) => (code, "", format!("status {code}\n")),
            None => (404, "", "not found\n".to_string()),
        },
    };
    let response = format!(
        "HTTP/1.1 {code} Whatever\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A TLS acceptor with a self-signed certificate for localhost and 127.0.0.1.
fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), UP.to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

// ----- scripts -----

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "keepmon-test-monitors-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Write an executable `/bin/sh` script.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn exec(name: &str, path: Option<&Path>, args: &[&str], append_hosts: bool) -> Monitor {
    Monitor::Exec {
        name: name.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        append_hosts,
        path: path.map(Path::to_path_buf),
    }
}

/// True once `pid` no longer runs (gone, or a zombie nobody reaped yet).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

async fn wait_gone(pid: i32) -> bool {
    for _ in 0..100 {
        if process_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

// ----- tcp -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_up_and_down_hosts() {
    bounded(async {
        let port = banner_server(b"hello\r\n").await;
        let out = run_monitor(Monitor::Tcp(tcp(port)), &[DOWN, UP, "127.0.0.3"]).await;
        assert_eq!(out.exit, 1, "{out:#?}");
        assert_eq!(out.summary, "127.0.0.2 127.0.0.3");
        assert_eq!(status_of(&out, UP), &HostStatus::Ok);
        assert!(out.hosts[1].latency.is_some());
        assert!(fail_reason(&out, DOWN).contains("refused"), "{out:#?}");
        assert!(!out.timed_out && !out.config_error);
        let lines: Vec<&str> = out.detail.lines().collect();
        assert_eq!(lines.len(), 3, "{}", out.detail);
        assert!(lines[0].starts_with("127.0.0.2: fail: "), "{}", out.detail);
        assert!(lines[1].starts_with("127.0.0.1: ok in "), "{}", out.detail);

        let out = run_monitor(Monitor::Tcp(tcp(port)), &[UP]).await;
        assert_eq!((out.exit, out.summary.as_str()), (0, ""), "{out:#?}");

        let out = run_monitor(Monitor::Tcp(tcp(closed_port().await)), &[UP]).await;
        assert_eq!((out.exit, out.summary.as_str()), (1, UP), "{out:#?}");
    })
    .await;
}

/// `ADDR:PORT` hosts are checked at their own port (HAProxy's servers of
/// one address on several ports share one health service).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_with_ports_are_checked_at_their_port() {
    bounded(async {
        let open = banner_server(b"hello\r\n").await;
        let closed = closed_port().await;
        let up = format!("{UP}:{open}");
        let down = format!("{UP}:{closed}");
        let up6 = format!("[::1]:{open}");
        // The check's own port is closed: only the hosts' ports count.
        let out = run_monitor(Monitor::Tcp(tcp(closed)), &[&up, &down, &up6]).await;
        assert_eq!(status_of(&out, &up), &HostStatus::Ok, "{out:#?}");
        assert!(fail_reason(&out, &down).contains("refused"), "{out:#?}");
        // The banner server listens on 127.0.0.1 only: ::1 at that port fails.
        assert!(
            matches!(status_of(&out, &up6), HostStatus::Fail { .. }),
            "{out:#?}"
        );
        assert_eq!(out.summary, format!("{down} {up6}"));

        let server = http_server(None).await;
        let host = format!("{UP}:{}", server.port);
        let out = run_monitor(Monitor::Http(http(closed, "/host")), &[&host]).await;
        assert_eq!(status_of(&out, &host), &HostStatus::Ok, "{out:#?}");
        assert!(
            server
                .last_request()
                .contains(&format!("\r\nhost: {host}\r\n")),
            "{}",
            server.last_request()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_expect_match_and_mismatch() {
    bounded(async {
        let port = banner_server(b"220 mail.example ESMTP\r\n").await;
        let check = |expect: &str| {
            Monitor::Tcp(TcpCheck {
                expect: Some(expect.to_string()),
                ..tcp(port)
            })
        };
        let out = run_monitor(check("^220 .*ESMTP"), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");

        let out = run_monitor(check("^SSH-"), &[UP]).await;
        let reason = fail_reason(&out, UP);
        assert!(reason.contains("did not match /^SSH-/"), "{reason}");
        assert!(reason.contains("220 mail.example"), "{reason}");

        let pong = pong_server().await;
        let ping = Monitor::Tcp(TcpCheck {
            send: Some("PING\r\n".to_string()),
            expect: Some("\\+PONG".to_string()),
            ..tcp(pong)
        });
        let out = run_monitor(ping, &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_timeout_when_the_server_never_answers() {
    bounded(async {
        let port = silent_server().await;
        // Connecting works: a connect-only check passes.
        let out = run_monitor(Monitor::Tcp(tcp(port)), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");

        // Waiting for a reply hits the check's own timeout.
        let check = Monitor::Tcp(TcpCheck {
            expect: Some(".".to_string()),
            timeout: Duration::from_millis(300),
            ..tcp(port)
        });
        let started = Instant::now();
        let out = run_monitor(check, &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout, "{out:#?}");
        assert_eq!((out.exit, out.summary.as_str()), (1, UP));
        assert!(!out.timed_out, "the run itself did not time out");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(out.detail, "127.0.0.1: timeout\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_timeout_bounds_builtin_checks() {
    bounded(async {
        let port = silent_server().await;
        let slow = Monitor::Tcp(TcpCheck {
            expect: Some(".".to_string()),
            timeout: Duration::from_secs(30),
            ..tcp(port)
        });
        let started = Instant::now();
        // 127.0.0.1 accepts and hangs; 127.0.0.2 refuses at once.
        let out = run(&request(slow, &[UP, DOWN], Duration::from_millis(400))).await;
        let took = started.elapsed();
        assert!(out.timed_out, "{out:#?}");
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout);
        assert!(
            fail_reason(&out, DOWN).contains("refused"),
            "finished hosts keep their result"
        );
        assert_eq!((out.exit, out.summary.as_str()), (1, "127.0.0.1 127.0.0.2"));
        assert_eq!(out.detail.lines().next(), Some("127.0.0.1: timeout"));
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    })
    .await;
}

// ----- http -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_ranges() {
    bounded(async {
        let server = http_server(None).await;
        let out = run_monitor(Monitor::Http(http(server.port, "/")), &[UP, DOWN]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        assert_eq!((out.exit, out.summary.as_str()), (1, DOWN));

        let out = run_monitor(Monitor::Http(http(server.port, "/status/503")), &[UP]).await;
        assert_eq!(fail_reason(&out, UP), "status 503 (expected 200-299)");
        assert!(out.hosts[0].latency.is_some(), "the server answered");

        let accept_5xx = Monitor::Http(HttpCheck {
            status: vec![(200, 200), (500, 599)],
            ..http(server.port, "/status/503")
        });
        let out = run_monitor(accept_5xx, &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");

        let out = run_monitor(Monitor::Http(http(server.port, "/redirect")), &[UP]).await;
        assert!(
            fail_reason(&out, UP).starts_with("status 302"),
            "redirects are not followed"
        );

        let head = Monitor::Http(HttpCheck {
            method: "HEAD".to_string(),
            ..http(server.port, "/")
        });
        let out = run_monitor(head, &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        assert!(server.last_request().starts_with("HEAD / HTTP/1.1\r\n"));
    })
    .await;
}

/// keepalived's url `digest`: the MD5 of the body, as `genhash` and
/// `md5sum` print it; and several urls, each of which must pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_digest_and_several_urls() {
    bounded(async {
        let server = http_server(None).await;
        // printf 'hello keepmon\n' | md5sum
        let hello = "3d16a7c9bb47d4d49ead24ccafd3d577";
        let digest = |d: &str| {
            Monitor::Http(HttpCheck {
                digest: Some(d.to_string()),
                ..http(server.port, "/")
            })
        };
        let out = run_monitor(digest(hello), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        let out = run_monitor(digest(&hello.to_uppercase()), &[UP]).await;
        assert_eq!(
            status_of(&out, UP),
            &HostStatus::Ok,
            "hex case does not matter"
        );
        let wrong = "00000000000000000000000000000000";
        let out = run_monitor(digest(wrong), &[UP]).await;
        assert_eq!(
            fail_reason(&out, UP),
            format!("MD5 digest {hello} (expected {wrong})")
        );

        let url = |path: &str, digest: Option<&str>| HttpUrl {
            path: path.to_string(),
            host_header: Some("second.example".to_string()),
            status: vec![(200, 299)],
            body: None,
            digest: digest.map(str::to_string),
        };
        let several = |more: Vec<HttpUrl>| {
            Monitor::Http(HttpCheck {
                more_urls: more,
                ..http(server.port, "/")
            })
        };
        let out = run_monitor(several(vec![url("/host", None)]), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        assert!(
            server.last_request().starts_with("GET /host HTTP/1.1\r\n")
                && server.last_request().contains("second.example"),
            "the second url is fetched with its own Host: {}",
            server.last_request()
        );
        let out = run_monitor(
            several(vec![url("/host", None), url("/status/503", None)]),
            &[UP],
        )
        .await;
        assert_eq!(
            fail_reason(&out, UP),
            "/status/503: status 503 (expected 200-299)"
        );
        let out = run_monitor(several(vec![url("/", Some(wrong))]), &[UP]).await;
        assert!(
            fail_reason(&out, UP).starts_with("/: MD5 digest"),
            "{out:#?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_regex() {
    bounded(async {
        let server = http_server(None).await;
        let body = |re: &str| {
            Monitor::Http(HttpCheck {
                body: Some(re.to_string()),
                ..http(server.port, "/")
            })
        };
        let out = run_monitor(body("hello \\w+"), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        let out = run_monitor(body("goodbye"), &[UP]).await;
        assert_eq!(fail_reason(&out, UP), "body did not match /goodbye/");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_host_header() {
    bounded(async {
        let server = http_server(None).await;
        let out = run_monitor(Monitor::Http(http(server.port, "/host")), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        let request = server.last_request();
        assert!(
            request.contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", server.port)),
            "{request}"
        );
        assert!(request.contains("\r\nuser-agent: keepmon/"), "{request}");

        let named = Monitor::Http(HttpCheck {
            host_header: Some("www.example.test".to_string()),
            body: Some("^www\\.example\\.test$".to_string()),
            ..http(server.port, "/host")
        });
        let out = run_monitor(named, &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        assert!(
            server
                .last_request()
                .contains("\r\nhost: www.example.test\r\n")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_timeout() {
    bounded(async {
        let server = http_server(None).await;
        let hang = Monitor::Http(HttpCheck {
            timeout: Duration::from_millis(300),
            ..http(server.port, "/hang")
        });
        let started = Instant::now();
        let out = run_monitor(hang, &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout, "{out:#?}");
        assert_eq!((out.exit, out.summary.as_str()), (1, UP));
        assert!(started.elapsed() < Duration::from_secs(3));

        let silent = Monitor::Http(HttpCheck {
            timeout: Duration::from_millis(300),
            ..http(silent_server().await, "/")
        });
        let out = run_monitor(silent, &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout, "{out:#?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_self_signed_insecure_passes_verified_fails() {
    bounded(async {
        let server = http_server(Some(self_signed_acceptor())).await;
        let https = |insecure: bool| {
            Monitor::Http(HttpCheck {
                tls: true,
                insecure,
                body: Some("hello".to_string()),
                ..http(server.port, "/")
            })
        };
        let out = run_monitor(https(true), &[UP, "localhost"]).await;
        assert_eq!((out.exit, out.summary.as_str()), (0, ""), "{out:#?}");
        assert_eq!(server.seen.lock().unwrap().len(), 2);

        let out = run_monitor(https(false), &[UP]).await;
        let reason = fail_reason(&out, UP);
        assert!(reason.starts_with("tls: "), "{reason}");
        assert!(reason.contains("certificate"), "{reason}");
        assert_eq!(server.seen.lock().unwrap().len(), 2, "no request was sent");

        // Plain HTTP to a TLS port fails, it does not hang.
        let plain = Monitor::Http(http(server.port, "/"));
        let out = run(&request(plain, &[UP], Duration::from_secs(10))).await;
        assert!(!out.success(), "{out:#?}");
    })
    .await;
}

// ----- ping -----

fn ping_not_permitted(out: &RunOutput) -> bool {
    out.hosts.iter().any(|h| {
        matches!(&h.status, HostStatus::Fail { reason } if reason.contains("cannot open an ICMP socket"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_loopback() {
    bounded(async {
        let check = Monitor::Ping(PingCheck {
            count: 2,
            timeout: Duration::from_secs(1),
        });
        let out = run_monitor(check, &[UP, "127.0.0.1", "localhost"]).await;
        if ping_not_permitted(&out) {
            let reason = fail_reason(&out, UP);
            assert!(
                reason.contains("root") && reason.contains("net.ipv4.ping_group_range"),
                "{reason}"
            );
            not_run("ICMP ping needs root or net.ipv4.ping_group_range");
            return;
        }
        assert_eq!((out.exit, out.summary.as_str()), (0, ""), "{out:#?}");
        assert!(out.hosts.iter().all(|h| h.latency.is_some()), "{out:#?}");
    })
    .await;
}

// ----- exec -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_argv_hosts_and_no_hosts_after_double_semicolon() {
    bounded(async {
        let dir = Scratch::new("argv");
        let path = dir.script(
            "args.monitor",
            r#"echo "$#"; for a in "$@"; do echo "[$a]"; done; echo "zero=$0""#,
        );
        let hosts = ["web1", "web2"];
        let monitor = exec("args.monitor", Some(&path), &["-p", "80", "a b"], true);
        let out = run_monitor(monitor, &hosts).await;
        assert_eq!((out.exit, out.summary.as_str()), (0, "5"), "{out:#?}");
        assert_eq!(
            out.detail,
            format!(
                "[-p]\n[80]\n[a b]\n[web1]\n[web2]\nzero={}\n",
                path.display()
            )
        );
        assert!(out.hosts.is_empty() && !out.config_error && !out.timed_out);

        let monitor = exec("args.monitor", Some(&path), &["x"], false);
        let out = run_monitor(monitor, &hosts).await;
        assert_eq!(out.summary, "1");
        assert_eq!(out.detail, format!("[x]\nzero={}\n", path.display()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_summary_detail_and_exit_code() {
    bounded(async {
        let dir = Scratch::new("exit");
        let path = dir.script(
            "fail.monitor",
            "echo 'web2 web3'\necho 'web2: refused'\necho 'web3: timeout'\nexit 3",
        );
        let out = run_monitor(exec("fail.monitor", Some(&path), &[], true), &["web2"]).await;
        assert_eq!(out.exit, 3);
        assert_eq!(out.summary, "web2 web3");
        assert_eq!(out.detail, "web2: refused\nweb3: timeout\n");
        assert_eq!(out.output(), "web2 web3\nweb2: refused\nweb3: timeout\n");

        let silent = dir.script("silent.monitor", "exit 0");
        let out = run_monitor(exec("silent.monitor", Some(&silent), &[], true), &[]).await;
        assert_eq!(
            (out.exit, out.summary.as_str(), out.detail.as_str()),
            (0, "", "")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_stderr_is_merged_in_order_and_stdin_is_dev_null() {
    bounded(async {
        let dir = Scratch::new("stderr");
        let path = dir.script(
            "mixed.monitor",
            "echo one\necho two >&2\necho three\necho four >&2\nif read line; then echo \"stdin: $line\"; else echo 'stdin: eof'; fi",
        );
        let out = run_monitor(exec("mixed.monitor", Some(&path), &[], true), &[]).await;
        assert_eq!(out.summary, "one");
        assert_eq!(out.detail, "two\nthree\nfour\nstdin: eof\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_environment() {
    bounded(async {
        let dir = Scratch::new("env");
        let path = dir.script(
            "env.monitor",
            "echo \"$KEEPMON_TEST_VAR|$MON_GROUP|$MON_SERVICE\"\necho \"PATH=$PATH\"\necho \"CARGO_MANIFEST_DIR=$CARGO_MANIFEST_DIR\"",
        );
        let mut req = request(
            exec("env.monitor", Some(&path), &[], true),
            &[],
            Duration::from_secs(10),
        );
        req.env = vec![
            ("KEEPMON_TEST_VAR".to_string(), "a b=c".to_string()),
            ("MON_GROUP".to_string(), "web".to_string()),
            ("MON_SERVICE".to_string(), "http".to_string()),
        ];
        let out = run(&req).await;
        assert_eq!(out.summary, "a b=c|web|http");
        // Regression (issue 19, finding 8): the daemon's whole environment
        // reached the scripts. Now only an allow-list (PATH, locale, ...)
        // does: cargo's variables, set in this process, do not.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let path_var = std::env::var("PATH").unwrap_or_default();
        assert_eq!(
            out.detail,
            format!("PATH={path_var}\nCARGO_MANIFEST_DIR=\n")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_kills_the_process_group() {
    bounded(async {
        let dir = Scratch::new("timeout");
        let pids = dir.0.join("pids");
        let path = dir.script(
            "hang.monitor",
            "echo $$ > \"$1\"\nsleep 60 &\necho $! >> \"$1\"\necho started\nwait",
        );
        let monitor = exec(
            "hang.monitor",
            Some(&path),
            &[pids.to_str().unwrap()],
            false,
        );
        let started = Instant::now();
        let out = run(&request(monitor, &[], Duration::from_secs(1))).await;
        let took = started.elapsed();
        assert!(out.timed_out, "{out:#?}");
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_secs(4), "returned after {took:?}");
        assert_eq!(out.exit, 128 + 9);
        assert_eq!(
            out.summary,
            "monitor hang.monitor timed out after 1s and was killed"
        );
        assert_eq!(out.detail, "started\n");
        assert!(!out.config_error);
        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2, "script and its sleep");
        for pid in pids {
            assert!(wait_gone(pid).await, "process {pid} still runs");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_background_child_does_not_block_the_result() {
    bounded(async {
        let dir = Scratch::new("background");
        let path = dir.script("bg.monitor", "sleep 30 &\necho $!\necho detail");
        let started = Instant::now();
        let out = run_monitor(exec("bg.monitor", Some(&path), &[], false), &[]).await;
        let pid: i32 = out.summary.trim().parse().expect("pid of the sleep");
        // Clean up the script's leftover child before asserting.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        assert_eq!(out.exit, 0, "{out:#?}");
        assert_eq!(out.detail, "detail\n");
        assert!(!out.timed_out);
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_signal_death_is_a_failure() {
    bounded(async {
        let dir = Scratch::new("signal");
        let path = dir.script(
            "die.monitor",
            "echo partial\nkill -TERM $$\necho unreachable",
        );
        let out = run_monitor(exec("die.monitor", Some(&path), &[], true), &["h"]).await;
        assert_eq!(out.exit, 128 + 15, "{out:#?}");
        assert!(!out.success());
        assert_eq!(out.summary, "monitor die.monitor killed by SIGTERM");
        assert_eq!(out.detail, "partial\n");
        assert!(!out.timed_out && !out.config_error);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_missing_or_unrunnable_script_is_a_config_error() {
    bounded(async {
        let out = run_monitor(exec("nosuch.monitor", None, &[], true), &["h"]).await;
        assert_eq!(out.exit, 127);
        assert!(out.config_error);
        assert_eq!(out.summary, "monitor nosuch.monitor not found");

        let gone = Path::new("/nonexistent/keepmon/gone.monitor");
        let out = run_monitor(exec("gone.monitor", Some(gone), &[], true), &["h"]).await;
        assert_eq!((out.exit, out.config_error), (127, true), "{out:#?}");
        assert_eq!(out.summary, "monitor gone.monitor not found");

        let dir = Scratch::new("noexec");
        let path = dir.0.join("plain.monitor");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = run_monitor(exec("plain.monitor", Some(&path), &[], true), &["h"]).await;
        // root may execute a file without x bits only if some x bit is set: none is.
        assert_eq!((out.exit, out.config_error), (126, true), "{out:#?}");
        assert!(
            out.summary
                .starts_with("monitor plain.monitor could not be run"),
            "{}",
            out.summary
        );

        // A built-in name without a script uses the built-in (Fallback).
        let port = banner_server(b"x").await;
        let port_arg = port.to_string();
        let monitor = exec("tcp.monitor", None, &["-p", &port_arg, UP], false);
        let out = run_monitor(monitor, &[DOWN]).await;
        assert_eq!((out.exit, out.summary.as_str()), (0, ""), "{out:#?}");
        assert_eq!(out.hosts.len(), 1, "only the host named before ;;");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_output_is_capped() {
    bounded(async {
        let dir = Scratch::new("chatty");
        let path = dir.script(
            "chatty.monitor",
            "echo summary\nhead -c 3000000 /dev/zero | tr '\\0' a\necho\necho end",
        );
        let out = run_monitor(exec("chatty.monitor", Some(&path), &[], true), &[]).await;
        assert_eq!((out.exit, out.summary.as_str()), (0, "summary"));
        assert!(
            out.output().len() <= OUTPUT_CAP + 200,
            "{}",
            out.output().len()
        );
        assert!(
            out.detail.ends_with("more bytes dropped after 1048576]\n"),
            "{}",
            &out.detail[out.detail.len() - 100..]
        );
    })
    .await;
}

// ----- Debian's mon.d scripts against the built-ins -----

const MON_D: &str = "/usr/lib/mon/mon.d";

fn debian_script(name: &str) -> Option<PathBuf> {
    let path = Path::new(MON_D).join(name);
    if path.is_file() && Path::new("/usr/bin/perl").exists() {
        Some(path)
    } else {
        not_run(&format!(
            "{} is missing (install Debian package mon, which needs perl)",
            path.display()
        ));
        None
    }
}

/// Run the real script and the built-in with the same arguments and hosts;
/// both must give the same exit and summary. Returns (script, built-in).
async fn compare(
    name: &str,
    script: &Path,
    args: &[&str],
    hosts: &[&str],
) -> (RunOutput, RunOutput) {
    let monitor = exec(name, Some(script), args, true);
    let mut req = request(monitor, hosts, Duration::from_secs(20));
    req.builtin_policy = BuiltinPolicy::Never;
    let by_script = run(&req).await;
    req.builtin_policy = BuiltinPolicy::Prefer;
    let by_builtin = run(&req).await;
    assert!(
        by_script.hosts.is_empty() && !by_builtin.hosts.is_empty(),
        "one ran the script, the other the built-in"
    );
    assert_eq!(
        (by_builtin.exit, by_builtin.summary.as_str()),
        (by_script.exit, by_script.summary.as_str()),
        "{name} {args:?} {hosts:?}\nscript: {by_script:#?}\nbuilt-in: {by_builtin:#?}"
    );
    (by_script, by_builtin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_tcp_monitor_agrees_with_builtin() {
    bounded(async {
        let Some(script) = debian_script("tcp.monitor") else {
            return;
        };
        let port = banner_server(b"hello\r\n").await.to_string();
        let args = ["-p", port.as_str(), "-t", "3"];
        let (up, _) = compare("tcp.monitor", &script, &args, &[UP]).await;
        assert_eq!((up.exit, up.summary.as_str()), (0, ""));
        let (down, _) = compare("tcp.monitor", &script, &args, &[DOWN]).await;
        assert_eq!((down.exit, down.summary.as_str()), (1, DOWN));
        let (mixed, _) = compare("tcp.monitor", &script, &args, &["127.0.0.3", UP, DOWN]).await;
        assert_eq!(mixed.summary, "127.0.0.2 127.0.0.3");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_http_monitor_agrees_with_builtin() {
    bounded(async {
        let Some(script) = debian_script("http.monitor") else {
            return;
        };
        let server = http_server(None).await;
        let port = server.port.to_string();
        let p = port.as_str();
        let cases: &[(&[&str], &[&str], i32, &str)] = &[
            (&["-p", p, "-t", "3"], &[UP], 0, ""),
            (&["-p", p, "-t", "3"], &[DOWN, UP], 1, DOWN),
            (&["-p", p, "-u", "/status/503"], &[UP], 1, UP),
            (
                &["-p", p, "-u", "/status/404"],
                &[UP, DOWN],
                1,
                "127.0.0.1 127.0.0.2",
            ),
            (&["-p", p, "-u", "/redirect"], &[UP], 0, ""),
            (&["-p", p, "-u", "/status/401"], &[UP], 0, ""),
            (&["-p", p, "-u", "/status/204"], &[UP], 1, UP),
            (&["-p", p, "-m", "hello keepmon"], &[UP], 0, ""),
            (&["-p", p, "-m", "goodbye"], &[UP], 1, UP),
            // With -m the regex decides, whatever the status.
            (
                &["-p", p, "-u", "/status/500", "-m", "status 500"],
                &[UP],
                0,
                "",
            ),
            // -m sees the headers too.
            (&["-p", p, "-m", "Content-Type: text/plain"], &[UP], 0, ""),
            (&["-p", p, "-u", "/hang", "-t", "1"], &[UP], 1, UP),
        ];
        for (args, hosts, exit, summary) in cases {
            let (by_script, _) = compare("http.monitor", &script, args, hosts).await;
            assert_eq!(
                (by_script.exit, by_script.summary.as_str()),
                (*exit, *summary),
                "{args:?} {hosts:?}"
            );
        }
        let agents: Vec<bool> = server
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r.to_ascii_lowercase()
                    .contains("user-agent: mon.d/http.monitor")
            })
            .collect();
        assert!(agents.iter().all(|&a| a), "both send mon's User-Agent");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_fping_monitor_agrees_with_builtin() {
    bounded(async {
        let Some(script) = debian_script("fping.monitor") else {
            return;
        };
        if !Path::new("/usr/bin/fping").exists() {
            not_run("fping.monitor comparison needs /usr/bin/fping (Debian package fping)");
            return;
        }
        let probe = run_monitor(
            Monitor::Ping(PingCheck {
                count: 1,
                timeout: Duration::from_secs(1),
            }),
            &[UP],
        )
        .await;
        if ping_not_permitted(&probe) {
            not_run("fping.monitor comparison needs root or net.ipv4.ping_group_range");
            return;
        }
        let args = ["-r", "1", "-t", "500"];
        let (by_script, _) = compare("fping.monitor", &script, &args, &[UP, "127.0.0.2"]).await;
        assert_eq!((by_script.exit, by_script.summary.as_str()), (0, ""));
        let (by_script, _) = compare("fping.monitor", &script, &["-a"], &[UP]).await;
        assert_eq!(by_script.exit, 0);
    })
    .await;
}

// ----- smtp -----

/// Debian's aiosmtpd (tests/common/smtp_server.py) on 127.0.0.1, killed on drop.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    out: PathBuf,
}

impl SmtpServer {
    /// None (and a loud NOT RUN) without python3-aiosmtpd.
    fn start(dir: &Path, options: &[&str]) -> Option<SmtpServer> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        const PYTHON: &str = "/usr/bin/python3";
        let available = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            not_run("python3-aiosmtpd (Debian package) is not installed");
            return None;
        }
        let out = dir.join("received");
        let mut child = Command::new(PYTHON)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/common/smtp_server.py"
            ))
            .args(["--port", "0", "--out"])
            .arg(&out)
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .ok();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok());
        let mut server = SmtpServer {
            child,
            port: 0,
            out,
        };
        server.port = port.unwrap_or_else(|| panic!("SMTP server did not start: {line:?}"));
        Some(server)
    }

    /// The HELO names clients sent, in order.
    fn helo_names(&self) -> Vec<String> {
        std::fs::read_to_string(self.out.join("helo.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn smtp(port: u16, helo_name: &str) -> Monitor {
    Monitor::Smtp(SmtpCheck {
        port,
        helo_name: helo_name.to_string(),
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_speaks_keepalived_smtp_check_to_a_real_server() {
    let scratch = Scratch::new("smtp");
    let Some(good) = SmtpServer::start(&scratch.0, &[]) else {
        return;
    };
    let refusing_dir = scratch.0.join("refusing");
    let Some(refusing) = SmtpServer::start(&refusing_dir, &["--helo-reply", "554 5.7.1 go away"])
    else {
        return;
    };
    bounded(async {
        let out = run_monitor(smtp(good.port, "lb1.example.com"), &[UP, DOWN]).await;
        assert_eq!((out.exit, out.summary.as_str()), (1, DOWN), "{out:#?}");
        assert_eq!(status_of(&out, UP), &HostStatus::Ok);
        assert!(fail_reason(&out, DOWN).contains("refused"), "{out:#?}");
        assert_eq!(good.helo_names(), ["lb1.example.com"]);
        // A host written ADDR:PORT is checked at that port.
        let with_port = format!("{UP}:{}", good.port);
        let out = run_monitor(smtp(1, "lb1.example.com"), &[with_port.as_str()]).await;
        assert_eq!(out.exit, 0, "{out:#?}");

        let out = run_monitor(smtp(refusing.port, "lb1.example.com"), &[UP]).await;
        assert!(
            fail_reason(&out, UP).contains("bad HELO response: \"554 5.7.1 go away\\r\""),
            "{out:#?}"
        );

        // A 5xx greeting, and the first line of a multi-line 220 (keepalived
        // reads only "220-..." and refuses it), fail before HELO.
        for banner in [
            &b"554 no service here\r\n"[..],
            &b"220-mail.example ESMTP\r\n220 ready\r\n"[..],
        ] {
            let port = banner_server(banner).await;
            let out = run_monitor(smtp(port, "x"), &[UP]).await;
            assert!(
                fail_reason(&out, UP).starts_with("bad greeting banner"),
                "{out:#?}"
            );
        }

        // A server that never greets: the per-step timeout.
        let port = silent_server().await;
        let mut check = SmtpCheck {
            port,
            helo_name: "x".to_string(),
            timeout: Duration::from_millis(300),
        };
        let started = Instant::now();
        let out = run_monitor(Monitor::Smtp(check.clone()), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout, "{out:#?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        check.port = closed_port().await;
        let out = run_monitor(Monitor::Smtp(check), &[UP]).await;
        assert_eq!(out.exit, 1, "{out:#?}");
    })
    .await;
}

// ----- udp -----

/// A UDP server on 127.0.0.1 answering every datagram with `reply` (None:
/// never answering); what it received is kept.
async fn udp_server(reply: Option<&'static [u8]>) -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let socket = tokio::net::UdpSocket::bind((UP, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            kept.lock().unwrap().push(buf[..n].to_vec());
            if let Some(reply) = reply {
                let _ = socket.send_to(reply, from).await;
            }
        }
    });
    (port, seen)
}

/// A UDP port nothing listens on (loopback answers ICMP port unreachable).
async fn closed_udp_port() -> u16 {
    let socket = tokio::net::UdpSocket::bind((UP, 0)).await.unwrap();
    socket.local_addr().unwrap().port()
}

fn udp(port: u16) -> UdpCheck {
    UdpCheck {
        port,
        payload: None,
        require_reply: false,
        reply: None,
        min_reply_length: 0,
        max_reply_length: 255,
        timeout: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_follows_keepalived_udp_check() {
    bounded(async {
        // Silence passes unless a reply is required; the default payload
        // is keepalived's.
        let (silent, seen) = udp_server(None).await;
        let out = run_monitor(Monitor::Udp(udp(silent)), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [b"keepalived check - keepalived ch".to_vec()]
        );
        let required = UdpCheck {
            require_reply: true,
            ..udp(silent)
        };
        let out = run_monitor(Monitor::Udp(required), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout, "{out:#?}");

        // ICMP port unreachable fails, reply or not.
        let out = run_monitor(Monitor::Udp(udp(closed_udp_port().await)), &[UP]).await;
        assert!(fail_reason(&out, UP).contains("unreachable"), "{out:#?}");

        // A reply and its pattern.
        let (pong, seen) = udp_server(Some(b"PONG 1")).await;
        let pattern = |text: &str| HexPattern::parse(text, true).unwrap();
        let ping = UdpCheck {
            payload: Some(b"PING".to_vec()),
            require_reply: true,
            reply: Some(pattern("50 4f 4e xx")),
            ..udp(pong)
        };
        let out = run_monitor(Monitor::Udp(ping.clone()), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        assert_eq!(seen.lock().unwrap().as_slice(), [b"PING".to_vec()]);
        let with_port = format!("{UP}:{pong}");
        let elsewhere = UdpCheck {
            port: 1,
            ..ping.clone()
        };
        let out = run_monitor(Monitor::Udp(elsewhere), &[with_port.as_str()]).await;
        assert_eq!(out.exit, 0, "{out:#?}");
        let wrong = UdpCheck {
            reply: Some(pattern("50 49")),
            ..ping.clone()
        };
        let out = run_monitor(Monitor::Udp(wrong), &[UP]).await;
        assert!(fail_reason(&out, UP).contains("does not match"), "{out:#?}");
        let too_long = UdpCheck {
            max_reply_length: 4,
            ..ping
        };
        let out = run_monitor(Monitor::Udp(too_long), &[UP]).await;
        assert!(fail_reason(&out, UP).contains("more than 4"), "{out:#?}");
    })
    .await;
}

// ----- dns -----

/// Debian's dnsmasq on 127.0.0.1 answering `*.x.test` with 127.0.0.9 and
/// refusing every other name (no upstream); killed on drop.
struct Dnsmasq {
    child: std::process::Child,
    port: u16,
}

impl Dnsmasq {
    fn start() -> Option<Dnsmasq> {
        use std::process::{Command, Stdio};
        let program = ["/usr/sbin/dnsmasq", "/sbin/dnsmasq"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(program) = program else {
            not_run("dnsmasq (Debian package dnsmasq-base) is not installed");
            return None;
        };
        // dnsmasq cannot report the port it chose: try free ones (it binds
        // UDP and TCP) until one stays up.
        for _ in 0..5 {
            let tcp = std::net::TcpListener::bind((UP, 0)).unwrap();
            let port = tcp.local_addr().unwrap().port();
            if std::net::UdpSocket::bind((UP, port)).is_err() {
                continue;
            }
            drop(tcp);
            let mut child = Command::new(program)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--address=/x.test/127.0.0.9",
                ])
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dnsmasq");
            std::thread::sleep(Duration::from_millis(300));
            if child.try_wait().ok().flatten().is_none() {
                return Some(Dnsmasq { child, port });
            }
        }
        panic!("dnsmasq did not stay up on any of 5 free ports");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Answers every query NOERROR, but with the query's id plus one.
async fn wrong_id_server() -> u16 {
    let socket = tokio::net::UdpSocket::bind((UP, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if n < 12 {
                continue;
            }
            let id = u16::from_be_bytes([buf[0], buf[1]]).wrapping_add(1);
            let mut answer = id.to_be_bytes().to_vec();
            answer.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
            answer.extend_from_slice(&buf[12..n]);
            let _ = socket.send_to(&answer, from).await;
        }
    });
    port
}

fn dns(port: u16, query_type: &str, name: &str) -> Monitor {
    Monitor::Dns(DnsCheck {
        port,
        query_type: query_type.to_string(),
        name: name.to_string(),
        timeout: Duration::from_millis(800),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_follows_keepalived_dns_check_against_dnsmasq() {
    let Some(server) = Dnsmasq::start() else {
        return;
    };
    bounded(async {
        // dnsmasq takes a moment to bind: wait for its first NOERROR.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = run_monitor(dns(server.port, "A", "www.x.test"), &[UP]).await;
            if out.exit == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq never answered: {out:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let out = run_monitor(dns(server.port, "A", "www.x.test."), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Ok, "{out:#?}");
        let with_port = format!("{UP}:{}", server.port);
        let out = run_monitor(dns(1, "A", "www.x.test"), &[with_port.as_str()]).await;
        assert_eq!(out.exit, 0, "{out:#?}");
        // No upstream: other names are REFUSED, a non-zero rcode.
        let out = run_monitor(dns(server.port, "SOA", "."), &[UP]).await;
        assert!(fail_reason(&out, UP).contains("rcode 5"), "{out:#?}");
        // Nobody there: ICMP port unreachable; silence: the timeout.
        let out = run_monitor(dns(closed_udp_port().await, "A", "www.x.test"), &[UP]).await;
        assert!(fail_reason(&out, UP).contains("failed to read"), "{out:#?}");
        let (silent, _seen) = udp_server(None).await;
        let out = run_monitor(dns(silent, "A", "www.x.test"), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout, "{out:#?}");
        // Datagrams with another id are ignored, not judged.
        let wrong_id = wrong_id_server().await;
        let out = run_monitor(dns(wrong_id, "A", "www.x.test"), &[UP]).await;
        assert_eq!(status_of(&out, UP), &HostStatus::Timeout, "{out:#?}");
    })
    .await;
}
