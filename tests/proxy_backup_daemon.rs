//! Backup servers, error files and the access log end to end: a TOML http-mode virtual server in a running daemon with a normal and a backup real server on loopback: the backup answers only while the normal one is in maintenance, the error file answers when neither can, and every request is a line in the access log file.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::daemon::{Fixture, closed_port};

/// Answers every request with `NAME\n` (one request per connection).
fn named_server(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
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
                let body = format!("{name}\n");
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// The status and body of `GET /` through the proxy; None when refused.
fn get(port: u16) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

#[test]
fn the_backup_answers_only_while_no_normal_server_is_up() {
    let (normal, backup) = (named_server("normal"), named_server("backup"));
    let proxy_port = closed_port();
    let mut f = Fixture::new("proxy-backup");
    let sorry = f.dir.join("503.http");
    std::fs::write(
        &sorry,
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nall servers are resting\n",
    )
    .unwrap();
    let access = f.dir.join("access.log");
    f.write_config(
        normal,
        closed_port(),
        &format!(
            r#"
[virtual_servers.web]
listen = "127.0.0.1:{proxy_port}"
mode = "http"
scheduler = "rr"
error_files = {{ 503 = "{sorry}" }}
access_log = {{ file = "{access}" }}
real_servers = [
  {{ addr = "127.0.0.1:{normal}" }},
  {{ addr = "127.0.0.1:{backup}", backup = true }},
]
"#,
            sorry = sorry.display(),
            access = access.display(),
        ),
    );
    f.start();
    f.wait_for(|_| get(proxy_port).is_some(), "the proxy answers");
    for _ in 0..4 {
        assert_eq!(
            get(proxy_port),
            Some((200, "normal\n".into())),
            "the backup stands by"
        );
    }
    let normal_addr = format!("127.0.0.1:{normal}");
    let backup_addr = format!("127.0.0.1:{backup}");
    assert!(
        f.cli(&["lb", "maint", "web", &normal_addr])
            .status
            .success()
    );
    f.wait_for(
        |_| get(proxy_port) == Some((200, "backup\n".into())),
        "the backup takes over",
    );
    let shown = String::from_utf8_lossy(&f.cli(&["lb", "show"]).stdout).into_owned();
    assert!(shown.contains(" backup"), "{shown}");
    assert!(
        f.cli(&["lb", "maint", "web", &backup_addr])
            .status
            .success()
    );
    f.wait_for(
        |_| get(proxy_port) == Some((503, "all servers are resting\n".into())),
        "the error file answers",
    );
    assert!(
        f.cli(&["lb", "ready", "web", &backup_addr])
            .status
            .success()
    );
    assert!(
        f.cli(&["lb", "ready", "web", &normal_addr])
            .status
            .success()
    );
    f.wait_for(
        |_| get(proxy_port) == Some((200, "normal\n".into())),
        "the normal server is back",
    );
    assert_eq!(get(proxy_port), Some((200, "normal\n".into())));

    let log = std::fs::read_to_string(&access).unwrap_or_default();
    assert!(log.contains(&format!(" web web/{normal_addr} ")), "{log}");
    assert!(log.contains(&format!(" web web/{backup_addr} ")), "{log}");
    assert!(log.contains(" web web/<NOSRV> "), "{log}");
    assert!(log.contains(" 503 24 - - SC-- "), "{log}");
    assert!(
        log.lines().all(|l| l.ends_with("\"GET / HTTP/1.1\"")),
        "{log}"
    );
}
