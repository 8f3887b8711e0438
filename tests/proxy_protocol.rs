//! The PROXY protocol towards servers (`send_proxy = "v1" | "v2"`), tcp and http mode, with Debian's HAProxy as the server: its `accept-proxy` listener reads the header and answers with the client address it learned, which differs from the proxy's own source address.

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
    let binary = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let dir = std::env::temp_dir().join(format!(
        "keepmon-test-proxy-protocol-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} accept-proxy\n    \
         http-request return status 200 content-type text/plain lf-string \"src=%[src]\"\n"
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
/// the body HAProxy answered.
async fn through(mode: ProxyMode, version: ProxyProtocol, server: SocketAddr) -> String {
    let shutdown = CancellationToken::new();
    let proxy = start(
        ProxySpec {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            scheduler: LbScheduler::RoundRobin,
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
                ..ProxyOptions::default()
            },
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 77)), 0))
        .unwrap();
    let mut stream = socket.connect(proxy.local_addr().unwrap()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    shutdown.cancel();
    answer
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
