//! HAProxy's stats page served by the real daemon for two virtual servers with real backends on loopback: auth (401 with the realm, wrong passwords refused), the `;csv` form with Debian HAProxy's own header and a row per frontend, server and backend, counters that move with traffic, MAINT from `keepmon lb maint` and from the page's admin form, and Debian's chromium rendering it (screenshot under target/tmp/stats-page-screenshots/).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use common::daemon::Fixture;

/// Debian HAProxy 2.6's `;csv` header up to the end of its static fields
/// (recorded from `haproxy 2.6.12-1+deb12u4`; the live comparison is in
/// [`debian_haproxy_prints_the_same_csv_header`]).
const HAPROXY_26_HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,";

/// The daemon with two virtual servers (`www`: two live backends;
/// `api`: one dead), a stats page with auth and admin, and an open one.
struct Stats {
    f: Fixture,
    /// The authenticated page (admin:pw, admin on).
    port: u16,
    /// The open page (uri /stats, hide_version).
    open_port: u16,
    www_port: u16,
    backends: [u16; 2],
    /// api's only (dead) server.
    api_server: String,
}

/// N distinct loopback ports with nothing listening (bound together,
/// then released, so no two are the same).
fn closed_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("addr").port())
}

/// A backend that answers every connection with a line and closes it.
fn backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .ok();
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"hello from the backend\n");
            });
        }
    });
    port
}

fn start(name: &str) -> Stats {
    let f = Fixture::new(name);
    let backends = [backend(), backend()];
    let [down_port, port, open_port, www_port, api_port] = closed_ports();
    f.write_config(
        backends[0],
        down_port,
        &format!(
            "[virtual_servers.www]\nlisten = \"127.0.0.1:{www_port}\"\nhealth = \"local:up\"\n\
             real_servers = [{{ addr = \"127.0.0.1:{}\", host = \"127.0.0.1\" }}, {{ addr = \"127.0.0.1:{}\", host = \"127.0.0.1\" }}]\n\n\
             [virtual_servers.api]\nlisten = \"127.0.0.1:{}\"\nhealth = \"local:down\"\n\
             real_servers = [{{ addr = \"127.0.0.1:{down_port}\", host = \"127.0.0.1\" }}]\n\n\
             [[stats_page]]\nlisten = \"127.0.0.1:{port}\"\nauth = [\"admin:pw\"]\nrefresh = \"5s\"\nadmin = true\n\n\
             [[stats_page]]\nlisten = \"127.0.0.1:{open_port}\"\nuri = \"/stats\"\nhide_version = true\n",
            backends[0],
            backends[1],
            api_port,
        ),
    );
    let mut s = Stats {
        f,
        port,
        open_port,
        www_port,
        backends,
        api_server: format!("127.0.0.1:{down_port}"),
    };
    s.f.start();
    s.f.wait_for(|f| f.opstatus("down") == "fail", "local/down fails");
    s.f.wait_for(|f| f.opstatus("up") == "ok", "local/up is ok");
    s
}

/// One HTTP/1.1 exchange: (status, head, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body)
}

/// A chunked body's data (HAProxy chunks its CSV).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The CSV as (header fields, rows of fields keyed by header name).
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn parse(text: &str) -> Csv {
        let mut lines = text.lines();
        let header = lines
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .expect("a '# ' header line")
            .strip_suffix(',')
            .expect("the header ends with a comma")
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>();
        let rows = lines
            .map(|l| {
                let cells: Vec<String> = l
                    .strip_suffix(',')
                    .expect("a row ends with a comma")
                    .split(',')
                    .map(str::to_string)
                    .collect();
                assert_eq!(cells.len(), header.len(), "row {l:?}");
                cells
            })
            .collect();
        Csv { header, rows }
    }

    fn get(&self, px: &str, sv: &str, field: &str) -> String {
        let col = self
            .header
            .iter()
            .position(|h| h == field)
            .unwrap_or_else(|| panic!("no column {field}"));
        self.rows
            .iter()
            .find(|r| r[0] == px && r[1] == sv)
            .map(|r| r[col].clone())
            .unwrap_or_else(|| panic!("no row {px}/{sv}"))
    }
}

impl Stats {
    fn csv(&self) -> Csv {
        let (status, _, body) = http(
            self.port,
            "GET",
            "/haproxy?stats;csv;norefresh",
            &[("Authorization", &basic("admin", "pw"))],
            "",
        );
        assert_eq!(status, 200, "{body}");
        Csv::parse(&body)
    }

    fn server(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.backends[i])
    }

    fn wait_status(&self, px: &str, sv: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.csv().get(px, sv, "status");
            if last == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{px}/{sv} stayed {last:?}, wanted {want:?}");
    }
}

#[test]
fn the_page_needs_auth_and_its_csv_has_a_row_per_frontend_server_and_backend() {
    let s = start("stats-csv");

    let (status, head, body) = http(s.port, "GET", "/haproxy?stats", &[], "");
    assert_eq!(status, 401, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"haproxy statistics\""),
        "{head}"
    );
    let wrong = http(
        s.port,
        "GET",
        "/haproxy?stats",
        &[("Authorization", &basic("admin", "nope"))],
        "",
    );
    assert_eq!(wrong.0, 401, "a wrong password is refused");
    let (status, head, page) = http(
        s.port,
        "GET",
        "/haproxy?stats",
        &[("Authorization", &basic("admin", "pw"))],
        "",
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        page.contains("http-equiv=\"refresh\" content=\"5\""),
        "stats refresh 5s"
    );
    assert!(page.contains("keepmon version"), "the version is shown");
    assert!(
        page.contains("name=\"s\""),
        "admin checkboxes for the admin user"
    );
    let (status, _, _) = http(s.port, "GET", "/elsewhere", &[], "");
    assert_eq!(status, 503, "outside stats uri: HAProxy's 503");

    let (status, _, open) = http(s.open_port, "GET", "/stats", &[], "");
    assert_eq!(status, 200, "a page without stats auth is open");
    assert!(!open.contains("keepmon version"), "hide_version");
    assert!(
        !open.contains("name=\"s\""),
        "no admin without auth and admin"
    );

    let csv = s.csv();
    assert_eq!(
        format!("# {},", csv.header.join(",")),
        HAPROXY_26_HEADER,
        "HAProxy 2.6's columns in its order"
    );
    let names: Vec<(String, String)> = csv
        .rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(names[0], ("api".to_string(), "FRONTEND".to_string()));
    assert_eq!(names[1], ("api".to_string(), s.api_server.clone()));
    assert_eq!(
        names.len(),
        7,
        "api: FRONTEND, 1 server, BACKEND; www: FRONTEND, 2 servers, BACKEND: {names:?}"
    );
    assert_eq!(names[2].1, "BACKEND");
    assert_eq!(names[3], ("www".to_string(), "FRONTEND".to_string()));
    let mut servers = vec![names[4].1.clone(), names[5].1.clone()];
    servers.sort();
    let mut expected = vec![s.server(0), s.server(1)];
    expected.sort();
    assert_eq!(servers, expected, "www's two servers");
    assert_eq!(names[6], ("www".to_string(), "BACKEND".to_string()));
    assert_eq!(csv.get("www", &s.server(0), "status"), "UP");
    assert_eq!(csv.get("www", &s.server(0), "check_status"), "L4OK");
    assert_eq!(csv.get("www", "BACKEND", "status"), "UP");
    assert_eq!(csv.get("www", "FRONTEND", "status"), "OPEN");
    assert_eq!(csv.get("www", "BACKEND", "act"), "2");
    assert_eq!(csv.get("api", &names[1].1, "status"), "DOWN");
    assert_eq!(csv.get("api", &names[1].1, "check_status"), "L4CON");
    assert_eq!(csv.get("api", "BACKEND", "status"), "DOWN");
    assert_eq!(
        csv.get("www", "FRONTEND", "qcur"),
        "",
        "no figure: empty, as HAProxy"
    );

    // Traffic through www moves its counters.
    let before: u64 = csv.get("www", "FRONTEND", "stot").parse().expect("stot");
    for _ in 0..4 {
        let mut c = TcpStream::connect(("127.0.0.1", s.www_port)).expect("connect www");
        c.set_read_timeout(Some(Duration::from_secs(5))).ok();
        c.write_all(b"ping\n").expect("send");
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.contains("hello"), "{answer:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let csv = s.csv();
        let stot: u64 = csv.get("www", "FRONTEND", "stot").parse().expect("stot");
        let bout: u64 = csv.get("www", "BACKEND", "bout").parse().expect("bout");
        let per_server: u64 = (0..2)
            .map(|i| {
                csv.get("www", &s.server(i), "stot")
                    .parse::<u64>()
                    .expect("stot")
            })
            .sum();
        if stot >= before + 4 && bout > 0 && per_server == stot {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counters did not move: stot {stot} (before {before}), bout {bout}, servers {per_server}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn maint_from_the_cli_and_from_the_admin_form_shows_in_the_table() {
    let s = start("stats-admin");
    let rs = s.server(1);
    assert!(s.f.cli(&["lb", "maint", "www", &rs]).status.success());
    s.wait_status("www", &rs, "MAINT");
    let csv = s.csv();
    assert_eq!(
        csv.get("www", "BACKEND", "act"),
        "1",
        "one active server left"
    );

    // HAProxy's form: s (checked servers), action, b (#iid: www is the 2nd).
    let form = format!("s={}&action=ready&b=%232", rs.replace(':', "%3A"));
    let no_login = http(
        s.port,
        "POST",
        "/haproxy?stats",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(no_login.0, 401, "actions need the login");
    let cross_site = http(
        s.port,
        "POST",
        "/haproxy?stats",
        &[
            ("Authorization", &basic("admin", "pw")),
            ("Origin", "http://evil.example"),
        ],
        &form,
    );
    assert_eq!(
        cross_site.0, 403,
        "a form posted from another site is refused"
    );
    let open = http(s.open_port, "POST", "/stats", &[], &form);
    assert_eq!(open.0, 303);
    assert!(
        open.1.contains("st=DENY"),
        "no admin on the open page: {}",
        open.1
    );
    s.wait_status("www", &rs, "MAINT");

    let (status, head, _) = http(
        s.port,
        "POST",
        "/haproxy?stats",
        &[
            ("Authorization", &basic("admin", "pw")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    );
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /haproxy?stats;st=DONE")
            || head.contains("Location: /haproxy?stats;st=DONE"),
        "{head}"
    );
    s.wait_status("www", &rs, "UP");
    let show = s.f.cli(&["lb", "show"]);
    assert!(
        !String::from_utf8_lossy(&show.stdout).contains("maint"),
        "the same admin state as lb ready"
    );

    let drain = format!("s={}&action=drain&b=www", rs.replace(':', "%3A"));
    let (status, head, _) = http(
        s.port,
        "POST",
        "/haproxy?stats",
        &[("Authorization", &basic("admin", "pw"))],
        &drain,
    );
    assert_eq!(status, 303, "{head}");
    s.wait_status("www", &rs, "DRAIN");
    let bad = http(
        s.port,
        "POST",
        "/haproxy?stats",
        &[("Authorization", &basic("admin", "pw"))],
        "s=nobody&action=maint&b=www",
    );
    assert!(bad.1.contains("st=ERRP"), "{}", bad.1);
}

#[test]
fn debian_haproxy_prints_the_same_csv_header() {
    let Some(binary) = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        common::not_run("HAProxy's own ;csv: Debian's haproxy is not installed");
        return;
    };
    let dir =
        std::env::temp_dir().join(format!("keepmon-test-stats-haproxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let [stats_port, server_port] = closed_ports();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend be\n    server s1 127.0.0.1:{server_port}\n\
         listen stats\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /haproxy?stats\n    stats auth admin:pw\n"
    );
    std::fs::write(dir.join("haproxy.cfg"), config).expect("config");
    let child = Command::new(binary)
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    struct Kill(Child, PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            self.0.kill().ok();
            self.0.wait().ok();
            std::fs::remove_dir_all(&self.1).ok();
        }
    }
    let _running = Kill(child, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", stats_port)).is_err() {
        assert!(Instant::now() < deadline, "HAProxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _, body) = http(
        stats_port,
        "GET",
        "/haproxy?stats;csv",
        &[("Authorization", &basic("admin", "pw"))],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let header = body.lines().next().expect("header");
    let fields: Vec<&str> = header.split(',').collect();
    let end = fields
        .iter()
        .position(|f| *f == "-")
        .unwrap_or_else(|| panic!("HAProxy's '-' column: {header}"));
    let static_part = format!("{},", fields[..=end].join(","));
    assert_eq!(
        static_part, HAPROXY_26_HEADER,
        "the recorded header is Debian HAProxy's"
    );
    let ours: String = format!("# {},", keepmon::web::stats::CSV_FIELDS.join(","));
    assert_eq!(ours, static_part);
}

/// Debian's chromium, or a loud "not run".
fn chromium() -> Option<PathBuf> {
    common::browser::chromium("stats page browser test")
}

/// Run headless chromium with a fresh profile; `args` add the action.
fn browse(browser: &std::path::Path, profile: &std::path::Path, args: &[&str]) -> String {
    common::browser::browse(browser, profile, "1600,900", args)
}

/// The `<tr>` of server `sv` in proxy `px`'s table of a dumped DOM.
fn row<'a>(dom: &'a str, px: &str, sv: &str) -> &'a str {
    let table = dom
        .split(&format!("id=\"px-{px}\""))
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no table for {px}:\n{dom}"));
    table
        .split("<tr ")
        .find(|r| r.contains(&format!("data-sv=\"{sv}\"")))
        .unwrap_or_else(|| panic!("no row {sv} in {px}:\n{table}"))
}

#[test]
fn a_real_browser_renders_the_table_and_shows_an_admin_change() {
    let Some(browser) = chromium() else {
        return;
    };
    let s = start("stats-browser");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stats-page-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let profile = s.f.dir.join("chromium-profile");
    let url = format!(
        "http://admin:pw@127.0.0.1:{}/haproxy?stats;norefresh",
        s.port
    );

    let dom = browse(&browser, &profile, &["--dump-dom", &url]);
    assert!(dom.contains("Statistics Report for keepmon"), "{dom}");
    assert!(row(&dom, "www", "FRONTEND").contains("class=\"frontend\""));
    let server = row(&dom, "www", &s.server(0));
    assert!(
        server.contains("class=\"active_up\"") && server.contains("data-status=\"UP\""),
        "{server}"
    );
    assert!(server.contains("L4OK"), "{server}");
    assert!(row(&dom, "www", "BACKEND").contains("data-status=\"UP\""));
    let api_down = dom
        .split("id=\"px-api\"")
        .nth(1)
        .is_some_and(|t| t.contains("class=\"active_down\""));
    assert!(api_down, "the dead api server is drawn DOWN:\n{dom}");

    let png = shots.join("stats.png");
    browse(
        &browser,
        &profile,
        &[&format!("--screenshot={}", png.display()), &url],
    );
    assert!(
        std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000),
        "stats page screenshot"
    );

    // The page's admin form (HAProxy's fields), posted as the browser
    // would post it from the page; the browser then shows the change.
    let rs = s.server(1);
    let form = format!("s={}&action=maint&b=%232", rs.replace(':', "%3A"));
    let (status, head, _) = http(
        s.port,
        "POST",
        "/haproxy?stats",
        &[
            ("Authorization", &basic("admin", "pw")),
            ("Origin", &format!("http://127.0.0.1:{}", s.port)),
        ],
        &form,
    );
    assert_eq!(status, 303, "{head}");
    s.wait_status("www", &rs, "MAINT");
    let after = browse(&browser, &profile, &["--dump-dom", &url]);
    let maint = row(&after, "www", &rs);
    assert!(
        maint.contains("class=\"maintain\"") && maint.contains("data-status=\"MAINT\""),
        "{maint}"
    );
    let png = shots.join("stats-maint.png");
    browse(
        &browser,
        &profile,
        &[&format!("--screenshot={}", png.display()), &url],
    );
    assert!(
        std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000),
        "maint screenshot"
    );
}

/// An HTTP backend answering every request with `backend` and closing.
fn http_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nbackend",
                );
            });
        }
    });
    port
}

/// HAProxy's `stats enable` inside a frontend: the virtual server answers
/// its `stats uri` itself and proxies everything else.
#[test]
fn a_page_inside_an_http_virtual_server_takes_only_its_uri() {
    let f = Fixture::new("stats-inside");
    let backend = http_backend();
    let [down_port, web_port] = closed_ports();
    f.write_config(
        backend,
        down_port,
        &format!(
            "[virtual_servers.web]\nlisten = \"127.0.0.1:{web_port}\"\nmode = \"http\"\nhealth = \"local:up\"\n\
             real_servers = [{{ addr = \"127.0.0.1:{backend}\", host = \"127.0.0.1\" }}]\n\n\
             [[stats_page]]\nvirtual_server = \"web\"\nuri = \"/admin?stats\"\nauth = [\"ops:pw\"]\n"
        ),
    );
    let mut f = f;
    f.start();
    f.wait_for(|f| f.opstatus("up") == "ok", "local/up is ok");

    let (status, _, body) = http(web_port, "GET", "/index.html", &[], "");
    assert_eq!(
        (status, body.as_str()),
        (200, "backend"),
        "other paths are proxied"
    );
    let (status, head, _) = http(web_port, "GET", "/admin?stats", &[], "");
    assert_eq!(status, 401, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"haproxy statistics\""),
        "{head}"
    );
    let (status, _, body) = http(
        web_port,
        "GET",
        "/admin?stats;csv",
        &[("Authorization", &basic("ops", "pw"))],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let csv = Csv::parse(&body);
    assert_eq!(csv.get("web", "FRONTEND", "mode"), "http");
    assert_eq!(
        csv.get("web", &format!("127.0.0.1:{backend}"), "status"),
        "UP"
    );
    let requests: u64 = csv
        .get("web", "FRONTEND", "req_tot")
        .parse()
        .expect("req_tot");
    assert!(requests >= 1, "the proxied request counts: {requests}");
}

/// A reload moves a page: the old address stops answering, the new one
/// serves the new settings; a page whose address stays gets its new
/// settings on the same socket.
#[test]
fn a_reload_moves_and_changes_pages() {
    let s = start("stats-reload");
    let config = std::fs::read_to_string(s.f.config()).expect("config");
    let [moved] = closed_ports();
    let changed = config
        .replace(
            &format!("listen = \"127.0.0.1:{}\"\nuri = \"/stats\"", s.open_port),
            &format!("listen = \"127.0.0.1:{moved}\"\nuri = \"/stats\""),
        )
        .replace("auth = [\"admin:pw\"]", "auth = [\"admin:new\"]");
    assert_ne!(changed, config);
    std::fs::write(s.f.config(), changed).expect("write config");
    let out = s.f.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", s.open_port)).is_ok() {
        assert!(Instant::now() < deadline, "the old address still listens");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _, _) = http(moved, "GET", "/stats", &[], "");
    assert_eq!(status, 200, "the page at its new address");
    let old = http(
        s.port,
        "GET",
        "/haproxy?stats",
        &[("Authorization", &basic("admin", "pw"))],
        "",
    );
    assert_eq!(
        old.0, 401,
        "the old password no longer works on the kept listener"
    );
    let new = http(
        s.port,
        "GET",
        "/haproxy?stats",
        &[("Authorization", &basic("admin", "new"))],
        "",
    );
    assert_eq!(new.0, 200, "the new one does");
}

/// The same page from an unchanged haproxy.cfg: `listen stats` with its
/// own bind, `stats realm` and `stats auth`, for a frontend/backend pair.
#[test]
fn a_haproxy_cfg_listen_stats_section_serves_the_page() {
    let mut f = Fixture::new("stats-haproxy-cfg");
    let live = backend();
    let [web_port, stats_port] = closed_ports();
    f.config_name = "haproxy.cfg";
    std::fs::write(
        f.config(),
        format!(
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n\
             frontend web\n    bind 127.0.0.1:{web_port}\n    default_backend be\n\n\
             backend be\n    server s1 127.0.0.1:{live} check inter 1s\n\n\
             listen stats\n    mode http\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /\n\
             \x20   stats realm Ops\\ only\n    stats auth ops:secret\n    stats refresh 10s\n"
        ),
    )
    .expect("haproxy.cfg");
    f.start();
    let (status, head, _) = http(stats_port, "GET", "/", &[], "");
    assert_eq!(status, 401, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"ops only\""),
        "stats realm: {head}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = http(
            stats_port,
            "GET",
            "/;csv",
            &[("Authorization", &basic("ops", "secret"))],
            "",
        );
        assert_eq!(status, 200, "{body}");
        let csv = Csv::parse(&body);
        let server = csv
            .rows
            .iter()
            .find(|r| r[32] == "2")
            .map(|r| (r[0].clone(), r[1].clone()))
            .expect("a server row");
        if csv.get(&server.0, &server.1, "check_status") == "L4OK" {
            assert_eq!(csv.get(&server.0, &server.1, "status"), "UP");
            assert_eq!(
                server,
                ("be".to_string(), "s1".to_string()),
                "HAProxy's backend and server names"
            );
            assert_eq!(csv.get("web", "FRONTEND", "status"), "OPEN");
            break;
        }
        assert!(Instant::now() < deadline, "s1 never checked:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One haproxy.cfg (a `listen` and a frontend/backend pair with named
/// servers) under Debian's HAProxy and under keepmon: the same `pxname`
/// and `svname` columns, row by row; then keepmon's admin form takes the
/// backend and server names, as HAProxy's does.
#[test]
fn haproxy_and_keepmon_name_the_same_proxies_and_servers() {
    let Some(binary) = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        common::not_run("the pxname/svname comparison: Debian's haproxy is not installed");
        return;
    };
    let (one, two) = (backend(), backend());
    let [app_port, web_port, stats_port] = closed_ports();
    let mut f = Fixture::new("stats-names");
    f.config_name = "haproxy.cfg";
    std::fs::write(
        f.config(),
        format!(
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n\
             listen app\n    bind 127.0.0.1:{app_port}\n    server s1 127.0.0.1:{one}\n\n\
             frontend web\n    bind 127.0.0.1:{web_port}\n    default_backend be\n\n\
             backend be\n    server web1 127.0.0.1:{one} check inter 1s\n    server web2 127.0.0.1:{two} check inter 1s\n\n\
             listen stats\n    mode http\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /\n\
             \x20   stats auth ops:secret\n    stats admin if TRUE\n"
        ),
    )
    .expect("haproxy.cfg");
    let names = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", stats_port)).is_ok() {
                let (status, _, body) = http(
                    stats_port,
                    "GET",
                    "/;csv",
                    &[("Authorization", &basic("ops", "secret"))],
                    "",
                );
                assert_eq!(status, 200, "{body}");
                // HAProxy also lists its own `stats` proxy; keepmon serves
                // the page without making it a proxy.
                return Csv::parse(&body)
                    .rows
                    .into_iter()
                    .filter(|r| r[0] != "stats")
                    .map(|r| format!("{},{}", r[0], r[1]))
                    .collect::<Vec<_>>();
            }
            assert!(Instant::now() < deadline, "no stats page on {stats_port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
    let haproxy = Kill(
        Command::new(binary)
            .arg("-f")
            .arg(f.config())
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let by_haproxy = names();
    drop(haproxy);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", stats_port)).is_ok() {
        assert!(Instant::now() < deadline, "haproxy does not go away");
        std::thread::sleep(Duration::from_millis(50));
    }
    f.start();
    let by_keepmon = names();
    assert_eq!(
        by_haproxy,
        [
            "app,FRONTEND",
            "app,s1",
            "app,BACKEND",
            "web,FRONTEND",
            "be,web1",
            "be,web2",
            "be,BACKEND"
        ],
        "HAProxy's own names"
    );
    assert_eq!(by_keepmon, by_haproxy);

    let (status, head, _) = http(
        stats_port,
        "POST",
        "/",
        &[("Authorization", &basic("ops", "secret"))],
        "s=web2&action=maint&b=be",
    );
    assert_eq!(status, 303, "{head}");
    assert!(head.to_ascii_lowercase().contains("st=done"), "{head}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, _, body) = http(
            stats_port,
            "GET",
            "/;csv",
            &[("Authorization", &basic("ops", "secret"))],
            "",
        );
        if Csv::parse(&body).get("be", "web2", "status") == "MAINT" {
            break;
        }
        assert!(Instant::now() < deadline, "web2 never in MAINT:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A keepalived.conf real server with two checkers: the stats page shows
/// the one that fails (HAProxy's page shows one check per server), and the
/// server DOWN while it fails.
#[test]
fn a_real_server_with_several_checks_shows_the_failing_one() {
    let mut f = Fixture::new("stats-several-checks");
    let live = backend();
    let side = TcpListener::bind("127.0.0.1:0").expect("bind");
    let side_port = side.local_addr().expect("addr").port();
    let [vs_port, stats_port] = closed_ports();
    f.config_name = "keepalived.conf";
    std::fs::write(
        f.config(),
        format!(
            "global_defs {{\n    keepmon_dataplane proxy\n}}\n\
             virtual_server 127.0.0.1 {vs_port} {{\n    delay_loop 1\n    lb_algo rr\n    protocol TCP\n\
             \x20   real_server 127.0.0.1 {live} {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n\
             \x20       TCP_CHECK {{\n            connect_port {side_port}\n            connect_timeout 1\n            retry 0\n        }}\n    }}\n}}\n"
        ),
    )
    .expect("keepalived.conf");
    // The page is keepmon's own addition to the file's model.
    let toml = f.dir.join("stats.toml");
    std::fs::write(
        &toml,
        format!("[[stats_page]]\nlisten = \"127.0.0.1:{stats_port}\"\nuri = \"/\"\n"),
    )
    .expect("stats.toml");
    let log = std::fs::File::create(f.dir.join("daemon.log")).expect("log");
    f.daemon = Some(
        Command::new(env!("CARGO_BIN_EXE_keepmon"))
            .args(["start", "-c"])
            .arg(f.config())
            .arg("-c")
            .arg(&toml)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start keepmon"),
    );
    let vs = format!("127.0.0.1:{vs_port}");
    let server = format!("127.0.0.1:{live}");
    let csv = || -> Option<Csv> {
        let (status, _, body) = http(stats_port, "GET", "/;csv", &[], "");
        (status == 200).then(|| Csv::parse(&body))
    };
    let wait = |what: &str, check: &dyn Fn(&Csv) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(c) = std::panic::catch_unwind(csv).ok().flatten()
                && check(&c)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let last = std::panic::catch_unwind(csv).ok().flatten().map(|c| {
            ["status", "check_status", "check_desc", "last_chk"]
                .map(|k| c.get(&vs, &server, k))
                .join(" | ")
        });
        panic!("timed out: {what}; last: {last:?}");
    };
    wait("both checks pass", &|c| {
        c.get(&vs, &server, "status") == "UP"
    });
    drop(side);
    wait("the second check fails and is shown", &|c| {
        c.get(&vs, &server, "status") == "DOWN"
            && c.get(&vs, &server, "check_status") == "L4CON"
            && c.get(&vs, &server, "last_chk")
                .contains(&format!(":{side_port}:"))
    });
}
