//! One haproxy.cfg run by Debian's HAProxy and then by keepmon in front of the same two backends on loopback: for `static-rr` and cookie persistence the same server answers each request, the same `X-Forwarded-For` and `Cookie` reach it, the client gets the same status when every server is down, and the backup server takes over once checks find the normal one down.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Fixture, closed_port};
use common::not_run;

/// A backend that answers every request with its name and the
/// `X-Forwarded-For` and `Cookie` headers it received; one thread, one
/// request per connection.
fn backend(name: &'static str, listener: TcpListener) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let (mut xff, mut cookie) = (String::new(), String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-forwarded-for:") {
                    xff = v.trim().to_string();
                } else if lower.starts_with("cookie:") {
                    cookie = line["cookie:".len()..].trim().to_string();
                }
            }
            let body = format!("server={name} xff={xff} cookie={cookie}");
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            reader.get_mut().write_all(response.as_bytes()).ok();
        }
    });
    port
}

/// One request on a fresh connection: (status, Set-Cookie, body).
fn get(port: u16, cookie: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: test\r\n{cookie}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).ok();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let set_cookie = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l["set-cookie:".len()..].trim().to_string())
        })
        .unwrap_or_default();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, set_cookie, body)
}

/// The first 200 answer from `port` within 15 s (once the checks have
/// marked the dead server down and the backup took over).
fn first_success(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = get(port, None);
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "no answer from {port}: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What one run saw, request by request.
fn observe(ports: [u16; 4]) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, _, body) = get(ports[0], None);
        seen.push(format!("static-rr: {status} {body}"));
    }
    let (status, set_cookie, body) = get(ports[1], None);
    // The cookie's value names the server; attributes as HAProxy writes them.
    seen.push(format!(
        "cookie first: {status} {body} set-cookie={set_cookie}"
    ));
    let value = set_cookie.split(';').next().unwrap_or("").to_string();
    for _ in 0..3 {
        let (status, _, body) = get(ports[1], Some(&value));
        seen.push(format!("cookie {value}: {status} {body}"));
    }
    let (status, _, body) = get(ports[1], Some("SRV=b"));
    seen.push(format!("cookie SRV=b: {status} {body}"));
    let (status, _, _) = get(ports[2], None);
    seen.push(format!("all down: {status}"));
    seen.push(format!("backup: {}", first_success(ports[3])));
    for _ in 0..3 {
        let (status, _, body) = get(ports[3], None);
        seen.push(format!("backup: {status} {body}"));
    }
    seen
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn haproxy_and_keepmon_choose_the_same_servers_from_one_file() {
    let binary = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        not_run("the haproxy.cfg comparison: needs Debian's haproxy package");
        return;
    };
    // Round robin follows the file's order in both: server `a`, listed
    // first, gets the higher port, so an order by address would start at
    // `b` and the sequences would differ.
    let mut listeners: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind backend"))
        .collect();
    listeners.sort_by_key(|l| l.local_addr().unwrap().port());
    let first = listeners.pop().unwrap();
    let second = listeners.pop().unwrap();
    let (a, b) = (backend("a", first), backend("b", second));
    let ports = [closed_port(), closed_port(), closed_port(), closed_port()];
    let dead = closed_port();
    let text = format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n    option forwardfor\n\
         listen rr\n    bind 127.0.0.1:{}\n    balance static-rr\n    server a 127.0.0.1:{a}\n    server b 127.0.0.1:{b}\n\
         listen ck\n    bind 127.0.0.1:{}\n    balance roundrobin\n    cookie SRV insert indirect nocache\n    server a 127.0.0.1:{a} cookie a\n    server b 127.0.0.1:{b} cookie b\n\
         listen down\n    bind 127.0.0.1:{}\n    retries 1\n    server x 127.0.0.1:{dead}\n\
         listen bk\n    bind 127.0.0.1:{}\n    default-server check inter 200ms rise 1 fall 1\n    server x 127.0.0.1:{dead}\n    server b 127.0.0.1:{b} backup\n",
        ports[0], ports[1], ports[2], ports[3]
    );
    let mut f = Fixture::new("haproxy-behaviour");
    f.config_name = "haproxy.cfg";
    std::fs::write(f.config(), &text).unwrap();

    let haproxy = Killed(
        Command::new(binary)
            .arg("-f")
            .arg(f.config())
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    ports.iter().for_each(|p| wait_listening(*p));
    let by_haproxy = observe(ports);
    drop(haproxy);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ports
        .iter()
        .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
    {
        assert!(Instant::now() < deadline, "haproxy does not go away");
        std::thread::sleep(Duration::from_millis(50));
    }

    f.start();
    ports.iter().for_each(|p| wait_listening(*p));
    let by_keepmon = observe(ports);

    println!("haproxy: {by_haproxy:#?}\nkeepmon: {by_keepmon:#?}");
    assert!(
        by_haproxy[0].contains("server=a xff=127.0.0.1"),
        "the backends answer through HAProxy: {by_haproxy:?}"
    );
    for (h, k) in by_haproxy.iter().zip(&by_keepmon) {
        assert_eq!(h, k, "HAProxy and keepmon differ");
    }
    assert_eq!(by_haproxy.len(), by_keepmon.len());
}
