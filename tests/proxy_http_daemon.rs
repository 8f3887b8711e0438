//! http mode end to end: a TOML `mode = "http"` virtual server in a running daemon in front of two Debian nginx servers: requests of one keep-alive client connection alternate between the servers, a cookie inserted on the first response keeps a client on its server, and the client's address reaches nginx in `X-Forwarded-For`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::daemon::{Fixture, closed_port};
use common::not_run;

/// Debian's nginx with two servers on loopback ports, each answering with
/// its port and the `X-Forwarded-For` it saw; one process (no master and
/// workers), so that killing it on drop leaves no worker behind.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx(f: &Fixture, ports: [u16; 2]) -> Option<Nginx> {
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let dir = f.dir.join("nginx");
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let mut servers = String::new();
    for port in ports {
        servers.push_str(&format!(
            "server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"port {port} xff $http_x_forwarded_for\\n\"; }} }}\n"
        ));
    }
    let temps: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("{t}_temp_path {}/tmp/{t};\n", dir.display()))
        .collect();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {0}/nginx.pid;\nerror_log {0}/error.log warn;\n\
         events {{ worker_connections 256; }}\nhttp {{\naccess_log off;\n{temps}{servers}}}\n",
        dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Nginx(child))
}

/// One response read off a keep-alive connection: head lines and body.
fn exchange(reader: &mut BufReader<TcpStream>, request: &str) -> (Vec<String>, String) {
    reader.get_mut().write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length: usize = head
        .iter()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    (head, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn a_toml_http_virtual_server_balances_requests_and_sticks_by_cookie() {
    let mut f = Fixture::new("proxy-http");
    let ports = [closed_port(), closed_port()];
    let Some(_nginx) = nginx(&f, ports) else {
        not_run("Debian's nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let proxy_port = closed_port();
    f.write_config(
        ports[0],
        closed_port(),
        &format!(
            r#"
[virtual_servers.web]
listen = "127.0.0.1:{proxy_port}"
mode = "http"
scheduler = "rr"
forwardfor = {{}}
cookie = {{ name = "SERVERID", mode = "insert", indirect = true }}
real_servers = [
  {{ addr = "127.0.0.1:{a}", cookie = "a" }},
  {{ addr = "127.0.0.1:{b}", cookie = "b" }},
]
"#,
            a = ports[0],
            b = ports[1]
        ),
    );
    f.start();
    let connect = || {
        let stream = TcpStream::connect(("127.0.0.1", proxy_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        Some(BufReader::new(stream))
    };
    f.wait_for(
        |_| {
            connect().is_some_and(|mut r| {
                exchange(&mut r, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    .1
                    .starts_with("port")
            })
        },
        "the http proxy answers from nginx",
    );
    let mut client = connect().unwrap();
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (head, body) = exchange(&mut client, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(head[0].starts_with("HTTP/1.1 200"), "{head:?}");
        assert!(body.ends_with("xff 127.0.0.1\n"), "{body}");
        seen.push(body.split_whitespace().nth(1).unwrap().to_string());
    }
    assert_ne!(
        seen[0], seen[1],
        "one connection, requests alternate: {seen:?}"
    );
    assert_eq!(seen[0], seen[2], "{seen:?}");
    // The cookie the proxy set keeps this client on one server.
    let (head, body) = exchange(&mut client, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let cookie = head
        .iter()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("a cookie: {head:?}"))
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let port = body.split_whitespace().nth(1).unwrap().to_string();
    for _ in 0..4 {
        let request = format!("GET / HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n");
        let (head, body) = exchange(&mut client, &request);
        assert!(
            !head.iter().any(|l| l.starts_with("set-cookie")),
            "{head:?}"
        );
        assert_eq!(body.split_whitespace().nth(1).unwrap(), port);
    }
}
