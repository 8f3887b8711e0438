//! The PROXY protocol both ways, tcp and http mode, with Debian's HAProxy as the peer: keepmon's `send_proxy = "v1" | "v2"` into HAProxy's `accept-proxy` (which answers with the client address it learned, not the proxy's own), and HAProxy's `send-proxy-v2` into keepmon's `accept_proxy`, whose client address travels on.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::not_run;
use keepmon::config::model::{LbScheduler, ProxyMode, ProxyOptions, ProxyProtocol};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxySpec, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;

/// HAProxy with an `accept-proxy` listener that answers every request with
/// `src=ADDR`; killed on drop.
struct Haproxy {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn haproxy(port: u16) -> Option<Haproxy> {
    haproxy_with(port, "", "haproxy")
}

/// HAProxy answering `src=ADDR` on `port` (accept-proxy), plus `extra`
/// configuration; `name` keeps the temp directories of two instances apart.
fn haproxy_with(port: u16, extra: &str, name: &str) -> Option<Haproxy> {
    let binary = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let dir = std::env::temp_dir().join(format!(
        "keepmon-test-proxy-protocol-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} accept-proxy\n    \
         http-request return status 200 content-type text/plain lf-string \"src=%[src]\"\n{extra}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(binary)
        .arg("-f")
        .arg(&path)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let haproxy = Haproxy { child, dir };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "HAProxy did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(haproxy)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request through a proxy in `mode` sending `version`, from 127.0.0.77:
/// the answer HAProxy gave.
async fn through(mode: ProxyMode, version: ProxyProtocol, server: SocketAddr) -> String {
    let (proxy, shutdown) = keepmon_proxy(mode, version, server, false).await;
    let answer = request_from(proxy.local_addr().unwrap(), [127, 0, 0, 77]).await;
    shutdown.cancel();
    answer
}

async fn keepmon_proxy(
    mode: ProxyMode,
    version: ProxyProtocol,
    server: SocketAddr,
    accept_proxy: bool,
) -> (keepmon::lb::proxy::ProxyHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let proxy = start(
        ProxySpec {
            name: "test".to_string(),
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            scheduler: LbScheduler::RoundRobin,
            config_servers: Default::default(),
            backends: vec![Backend {
                addr: server,
                weight: 1,
            }],
            persistence: None,
            retries: 0,
            connect_timeout: Duration::from_secs(2),
            sorry: None,
            options: ProxyOptions {
                mode,
                send_proxy: Some(version),
                accept_proxy,
                ..ProxyOptions::default()
            },
            limits: Default::default(),
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    (proxy, shutdown)
}

/// A `Connection: close` GET to `to` from the address `from`: the whole
/// answer ("" when the connection was closed without one).
async fn request_from(to: SocketAddr, from: [u8; 4]) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(from)), 0))
        .unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_reads_the_client_address_keepmon_sends() {
    let port = free_port();
    let Some(_haproxy) = haproxy(port) else {
        not_run("Debian's haproxy is not installed (apt-get install haproxy)");
        return;
    };
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    for mode in [ProxyMode::Tcp, ProxyMode::Http] {
        for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
            let answer = through(mode, version, server).await;
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "{mode} {version:?}: {answer}"
            );
            assert!(
                answer.ends_with("src=127.0.0.77"),
                "{mode} {version:?}: HAProxy saw another client: {answer}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepmon_takes_the_client_address_from_haproxys_send_proxy() {
    for mode in [ProxyMode::Tcp, ProxyMode::Http] {
        // HAProxy "out" answers src; keepmon sends it PROXY v1 and accepts
        // PROXY v2 from HAProxy "in", which the client talks to.
        let out_port = free_port();
        let Some(_out) = haproxy_with(out_port, "", "out") else {
            not_run("Debian's haproxy is not installed (apt-get install haproxy)");
            return;
        };
        let server = SocketAddr::from(([127, 0, 0, 1], out_port));
        let (keepmon, shutdown) = keepmon_proxy(mode, ProxyProtocol::V1, server, true).await;
        let keepmon_addr = keepmon.local_addr().unwrap();
        let in_port = free_port();
        let front = format!(
            "listen front\n    mode tcp\n    bind 127.0.0.1:{in_port}\n    server keepmon {keepmon_addr} send-proxy-v2\n"
        );
        let _in = haproxy_with(free_port(), &front, "in").expect("haproxy runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", in_port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the front HAProxy did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answer =
            request_from(SocketAddr::from(([127, 0, 0, 1], in_port)), [127, 0, 0, 88]).await;
        assert!(
            answer.ends_with("src=127.0.0.88"),
            "{mode}: the client address did not travel through keepmon: {answer}"
        );
        // Without a header, keepmon closes the connection.
        let answer = request_from(keepmon_addr, [127, 0, 0, 89]).await;
        assert_eq!(answer, "", "{mode}");
        shutdown.cancel();
    }
}
