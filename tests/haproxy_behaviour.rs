//! One haproxy.cfg run by Debian's HAProxy and then by keepmon in front of the same backends on loopback: for `static-rr` and cookie persistence the same server answers each request, the same `X-Forwarded-For` and `Cookie` reach it, the client gets the same status when every server is down, the backup server takes over once checks find the normal one down, and `balance source|uri|url_param|hdr()` send each key to the same server (also once a server is down).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::daemon::{Fixture, closed_port};
use common::haproxy;

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

#[test]
fn haproxy_and_keepmon_choose_the_same_servers_from_one_file() {
    let Some(binary) = haproxy::binary("the haproxy.cfg comparison") else {
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
    let (by_haproxy, by_keepmon) =
        haproxy::under_both(binary, &mut f, &text, &ports, || observe(ports));

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

/// One GET on a fresh connection from `source` (any 127.x.y.z) to `path`,
/// with one extra header if given: (status, body).
fn get_from(
    port: u16,
    source: Ipv4Addr,
    path: &str,
    header: Option<(&str, &str)>,
) -> (u16, String) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind the client's source address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let header = header
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\n{header}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).ok();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

const KEYS: u32 = 30;
const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// A spread of loopback client addresses, one per key.
fn source(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        (i * 37 % 256) as u8,
        (i * 91 % 256) as u8,
        (i * 13 % 253 + 1) as u8,
    )
}

/// The hashed listeners' answers, key by key: [source, uri, url_param,
/// hdr, url_param with a server down, then source and url_param with a
/// server down under `hash-type consistent`].
fn observe_hashing(ports: [u16; 7]) -> Vec<String> {
    let mut seen = Vec::new();
    for i in 0..KEYS {
        let (status, body) = get_from(ports[0], source(i), "/", None);
        seen.push(format!("source {}: {status} {body}", source(i)));
    }
    for i in 0..KEYS {
        let path = format!("/u{i}/p{}.html?x={i}", i * i);
        let (status, body) = get_from(ports[1], LOCAL, &path, None);
        seen.push(format!("uri {path}: {status} {body}"));
    }
    for i in 0..KEYS {
        let path = format!("/q?a=1&id=v{i}&z=2");
        let (status, body) = get_from(ports[2], LOCAL, &path, None);
        seen.push(format!("url_param {path}: {status} {body}"));
    }
    for i in 0..KEYS {
        let user = format!("user{i}");
        let (status, body) = get_from(ports[3], LOCAL, "/", Some(("X-User", &user)));
        seen.push(format!("hdr {user}: {status} {body}"));
    }
    seen.extend(once_down(ports[4], "down"));
    for i in 0..KEYS {
        let (status, body) = get_from(ports[5], source(i), "/", None);
        seen.push(format!("consistent source {}: {status} {body}", source(i)));
    }
    seen.extend(once_down(ports[6], "consistent down"));
    seen
}

/// `?id=d0` .. once the dead server is out: keys on it get a 503 (retries
/// 0) until the checks take it out of the map or ring; then every key is
/// answered.
fn once_down(port: u16, label: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answers: Vec<(u16, String)> = (0..KEYS)
            .map(|i| get_from(port, LOCAL, &format!("/?id=d{i}"), None))
            .collect();
        if answers.iter().all(|(status, _)| *status == 200) {
            return answers
                .into_iter()
                .enumerate()
                .map(|(i, (status, body))| format!("{label} id=d{i}: {status} {body}"))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "the dead server never left the map: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn haproxy_and_keepmon_hash_each_key_to_the_same_server() {
    let Some(binary) = haproxy::binary("the haproxy.cfg hashing comparison") else {
        return;
    };
    let [a, b, c] = ["a", "b", "c"].map(|name| {
        backend(
            name,
            TcpListener::bind("127.0.0.1:0").expect("bind backend"),
        )
    });
    let dead = closed_port();
    let ports = [(); 7].map(|()| closed_port());
    let servers = format!(
        "    server a 127.0.0.1:{a} weight 3\n    server b 127.0.0.1:{b} weight 2\n    server c 127.0.0.1:{c} weight 1\n"
    );
    let down_servers = format!(
        "    server a 127.0.0.1:{a} weight 4\n    server b 127.0.0.1:{b} weight 2\n    server x 127.0.0.1:{dead} weight 3\n    server c 127.0.0.1:{c} weight 2\n"
    );
    // With x down, 4, 2 and 2 are left: HAProxy keeps dividing by the gcd
    // of all four weights (1), not by theirs (2).
    let text = format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n    option forwardfor\n\
         listen src\n    bind 127.0.0.1:{}\n    balance source\n{servers}\
         listen uri\n    bind 127.0.0.1:{}\n    balance uri\n{servers}\
         listen prm\n    bind 127.0.0.1:{}\n    balance url_param id\n{servers}\
         listen hdr\n    bind 127.0.0.1:{}\n    balance hdr(X-User)\n{servers}\
         listen dn\n    bind 127.0.0.1:{}\n    balance url_param id\n    retries 0\n    default-server check inter 200ms rise 1 fall 1\n{down_servers}\
         listen csrc\n    bind 127.0.0.1:{}\n    balance source\n    hash-type consistent\n{servers}\
         listen cdn\n    bind 127.0.0.1:{}\n    balance url_param id\n    hash-type consistent\n    retries 0\n    default-server check inter 200ms rise 1 fall 1\n{down_servers}",
        ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
    );
    let mut f = Fixture::new("haproxy-hashing");
    let (by_haproxy, by_keepmon) =
        haproxy::under_both(binary, &mut f, &text, &ports, || observe_hashing(ports));
    println!("haproxy: {by_haproxy:#?}\nkeepmon: {by_keepmon:#?}");
    // The keys do spread: every server answers some under HAProxy.
    for server in ["server=a", "server=b", "server=c"] {
        for kind in [
            "source",
            "uri",
            "url_param",
            "hdr",
            "down",
            "consistent source",
            "consistent down",
        ] {
            assert!(
                by_haproxy
                    .iter()
                    .any(|line| line.starts_with(kind) && line.contains(server)),
                "HAProxy sent no {kind} key to {server}: {by_haproxy:?}"
            );
        }
    }
    let differ: Vec<(&String, &String)> = by_haproxy
        .iter()
        .zip(&by_keepmon)
        .filter(|(h, k)| h != k)
        .collect();
    assert!(differ.is_empty(), "HAProxy and keepmon differ: {differ:#?}");
    assert_eq!(by_haproxy.len(), by_keepmon.len());
}
