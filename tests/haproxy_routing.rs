//! Content switching from one haproxy.cfg, run by Debian's HAProxy and then by keepmon in front of the same backends on loopback: requests with different Host headers, paths, methods and 127.x source addresses land on the same backend under both (tcp connections by source address); what no rule takes goes to the default_backend; without one, and when a routed backend's servers are all down, both answer 503 (the backend's errorfile).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::daemon::{Fixture, closed_port};
use common::haproxy;

/// A backend that answers every request with its name; one thread, one
/// request per connection.
fn backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let body = format!("server={name}");
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            reader.get_mut().write_all(response.as_bytes()).ok();
        }
    });
    port
}

/// One request from `source` (a 127.x address) on a fresh connection:
/// "STATUS BODY", the body only for a 200 or an error file's page (the
/// built-in error pages differ).
fn request(port: u16, source: [u8; 4], head: &str) -> String {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind the client address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "{head}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).ok();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    if status == 200 || body.contains("errorfile") {
        format!("{status} {body}")
    } else {
        status.to_string()
    }
}

const LOCAL: [u8; 4] = [127, 0, 0, 1];
const OFFICE: [u8; 4] = [127, 0, 0, 2];
const OFFICE_NET: [u8; 4] = [127, 0, 0, 20];

/// The requests, each with a label; what one run saw.
fn observe(ports: [u16; 4]) -> Vec<String> {
    let [www, nodefault, deadroute, tcp] = ports;
    let cases: &[(&str, u16, [u8; 4], &str)] = &[
        (
            "api by host",
            www,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: api.example.com\r\nConnection: close",
        ),
        (
            "api by host, -i",
            www,
            LOCAL,
            "GET /x HTTP/1.1\r\nHost: API.Example.COM\r\nConnection: close",
        ),
        (
            "api by path",
            www,
            LOCAL,
            "GET /api/v1 HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "api POST from outside",
            www,
            LOCAL,
            "POST / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\nConnection: close",
        ),
        (
            "api POST from the office",
            www,
            OFFICE,
            "POST / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\nConnection: close",
        ),
        (
            "static by path_beg",
            www,
            LOCAL,
            "GET /static/a.png HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "static by path_end",
            www,
            LOCAL,
            "GET /a/b.css?v=1 HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "static by domain",
            www,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: cdn.example.com\r\nConnection: close",
        ),
        (
            "static by subdomain and port",
            www,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: x.cdn.example.com:8080\r\nConnection: close",
        ),
        (
            "not a domain match",
            www,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: mycdn.example.com\r\nConnection: close",
        ),
        (
            "admin from outside",
            www,
            LOCAL,
            "GET /admin HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "admin from the office network",
            www,
            OFFICE_NET,
            "GET /admin HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        ("no host header: unless", www, LOCAL, "GET /plain HTTP/1.0"),
        (
            "default",
            www,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "no default_backend, routed",
            nodefault,
            LOCAL,
            "GET /static/x HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "no default_backend, no rule",
            nodefault,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "routed backend down",
            deadroute,
            LOCAL,
            "GET /dead HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "beside the dead route",
            deadroute,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "a header's comma-separated values",
            www,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: test\r\nX-Tag: one, two\r\nConnection: close",
        ),
        (
            "method -i",
            www,
            LOCAL,
            "DELETE /x HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "method -i, another method",
            www,
            LOCAL,
            "PURGE /x HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "host with a port",
            www,
            LOCAL,
            "GET / HTTP/1.1\r\nHost: api.example.com:8080\r\nConnection: close",
        ),
        (
            "path_end before the query",
            www,
            LOCAL,
            "GET /x?file=a.css HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "tcp by source",
            tcp,
            OFFICE,
            "GET / HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "tcp by source network",
            tcp,
            OFFICE_NET,
            "GET / HTTP/1.1\r\nHost: test\r\nConnection: close",
        ),
        (
            "tcp default",
            tcp,
            LOCAL,
            "GET /api/ HTTP/1.1\r\nHost: api.example.com\r\nConnection: close",
        ),
    ];
    cases
        .iter()
        .map(|(label, port, source, head)| format!("{label}: {}", request(*port, *source, head)))
        .collect()
}

#[test]
fn haproxy_and_keepmon_route_each_request_to_the_same_backend() {
    let Some(binary) = haproxy::binary("the haproxy.cfg routing comparison") else {
        return;
    };
    let (api, stat, admin, web) = (
        backend("api"),
        backend("static"),
        backend("admin"),
        backend("web"),
    );
    let dead = closed_port();
    let ports = [closed_port(), closed_port(), closed_port(), closed_port()];
    let mut f = Fixture::new("haproxy-routing");
    // The routed backend's own error file answers for it.
    let error_page = f.config().with_file_name("dead-503.http");
    std::fs::write(
        &error_page,
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\ndead errorfile page\n",
    )
    .unwrap();
    let text = format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend www\n    bind 127.0.0.1:{}\n\
         \x20   acl is_api hdr(host) -i api.example.com\n\
         \x20   acl is_api path_beg /api/\n\
         \x20   acl static path_beg /static\n\
         \x20   acl static path_end .css\n\
         \x20   acl office src 127.0.0.2 127.0.0.16/28\n\
         \x20   use_backend api if is_api !{{ method POST }} || is_api office\n\
         \x20   use_backend static if static or {{ hdr_dom(host) -i cdn.example.com }}\n\
         \x20   use_backend admin if {{ path_beg /admin }} office\n\
         \x20   use_backend static unless {{ hdr(host) -m found }}\n\
         \x20   use_backend admin if {{ hdr(x-tag) two }} || {{ method -i delete purge }}\n\
         \x20   default_backend web\n\
         frontend nodefault\n    bind 127.0.0.1:{}\n    use_backend static if {{ path_beg /static }}\n\
         frontend deadroute\n    bind 127.0.0.1:{}\n    use_backend dead if {{ path_beg /dead }}\n    default_backend web\n\
         frontend tcp\n    mode tcp\n    bind 127.0.0.1:{}\n    acl office src 127.0.0.2\n    use_backend tcp_api if office || {{ src 127.0.0.16/28 }}\n    default_backend tcp_web\n\
         backend tcp_api\n    mode tcp\n    server api 127.0.0.1:{api}\n\
         backend tcp_web\n    mode tcp\n    server web 127.0.0.1:{web}\n\
         backend api\n    server api 127.0.0.1:{api}\n\
         backend static\n    server static 127.0.0.1:{stat}\n\
         backend admin\n    server admin 127.0.0.1:{admin}\n\
         backend web\n    server web 127.0.0.1:{web}\n\
         backend dead\n    retries 1\n    errorfile 503 {}\n    server x 127.0.0.1:{dead}\n",
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        error_page.display()
    );
    let (by_haproxy, by_keepmon) =
        haproxy::under_both(binary, &mut f, &text, &ports, || observe(ports));
    let shown = f.cli(&["lb", "show"]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    println!("{shown}");

    println!("haproxy: {by_haproxy:#?}\nkeepmon: {by_keepmon:#?}");
    // The file means what the labels say (HAProxy is the reference).
    for (label, expected) in [
        ("api by host", "200 server=api"),
        ("api POST from outside", "200 server=web"),
        ("api POST from the office", "200 server=api"),
        ("static by subdomain and port", "200 server=static"),
        ("not a domain match", "200 server=web"),
        ("admin from the office network", "200 server=admin"),
        ("no host header: unless", "200 server=static"),
        ("no default_backend, no rule", "503"),
        ("routed backend down", "503 dead errorfile page\n"),
        ("tcp by source network", "200 server=api"),
        ("tcp default", "200 server=web"),
    ] {
        assert!(
            by_haproxy.contains(&format!("{label}: {expected}")),
            "HAProxy: {label}: {by_haproxy:#?}"
        );
    }
    for (h, k) in by_haproxy.iter().zip(&by_keepmon) {
        assert_eq!(h, k, "HAProxy and keepmon differ");
    }
    assert_eq!(by_haproxy.len(), by_keepmon.len());
}
