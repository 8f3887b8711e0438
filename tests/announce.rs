//! Route announcements as a user runs them: keepmon drives a real BIRD 2 (Debian's bird2, its own control socket, no BGP session and no kernel protocol, so nothing leaves the machine): the VIP's route is in BIRD while the virtual server has quorum, withdrawn when its backend fails and again at `keepmon stop`, and back on recovery.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::daemon::Fixture;

/// A BIRD with its own config, socket and pid file; killed on drop.
struct Bird {
    child: Child,
    socket: std::path::PathBuf,
}

impl Bird {
    fn start(dir: &Path, include: &Path) -> Bird {
        let config = dir.join("bird.conf");
        std::fs::write(
            &config,
            format!(
                "router id 192.0.2.254;\nprotocol device {{}}\ninclude \"{}\";\n",
                include.display()
            ),
        )
        .expect("bird.conf");
        // BIRD refuses to start on a missing include: start with the empty
        // file keepmon would write.
        std::fs::write(
            include,
            "protocol static keepmon4 { ipv4; }\nprotocol static keepmon6 { ipv6; }\n",
        )
        .expect("include");
        let socket = dir.join("bird.ctl");
        let child = Command::new("bird")
            .arg("-f")
            .arg("-c")
            .arg(&config)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bird");
        let bird = Bird { child, socket };
        for _ in 0..100 {
            if bird.show_routes().is_some() {
                return bird;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("bird did not open its control socket");
    }

    /// `birdc show route`, None while BIRD does not answer.
    fn show_routes(&self) -> Option<String> {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.socket)
            .args(["show", "route"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    fn has_route(&self, prefix: &str) -> bool {
        self.show_routes().is_some_and(|r| r.contains(prefix))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Whether `program` is on PATH.
fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn have_bird() -> bool {
    have("bird") && have("birdc")
}

#[test]
fn bird_announces_while_quorum_holds_and_withdraws_on_failure_and_stop() {
    if !have_bird() {
        common::not_run("route announcements need BIRD 2 (Debian package bird2)");
        return;
    }
    let mut f = Fixture::new("announce-bird");
    let include = f.dir.join("keepmon-routes.conf");
    let bird = Bird::start(&f.dir, &include);
    let backend = TcpListener::bind("127.0.0.1:0").expect("backend");
    let port = backend.local_addr().expect("addr").port();
    let vip = TcpListener::bind("127.0.0.1:0")
        .expect("vip probe")
        .local_addr()
        .expect("addr")
        .port();
    let text = format!(
        r#"
[daemon]
statedir = "state"

[bgp]
bird_include = "{include}"
bird_socket = "{socket}"
withdraw_drain = "300ms"

[hostgroups]
backends = ["127.0.0.1"]

[watch.backends.web]
interval = "300ms"
monitor = {{ type = "tcp", port = {port}, timeout = "1s" }}

[virtual_servers.web]
listen = "127.0.0.1:{vip}"
health = "backends:web"
real_servers = [ {{ addr = "127.0.0.1:{port}" }} ]

[announce.vip]
prefix = "192.0.2.10/32"
when = "quorum:web"

[announce.never]
prefix = "2001:db8::10/128"
when = "quorum:web && service:backends/web && false"
"#,
        include = include.display(),
        socket = bird.socket.display(),
    );
    std::fs::write(f.config(), text).expect("config");
    f.start();
    f.wait_for(
        |_| bird.has_route("192.0.2.10/32"),
        "BIRD has the VIP's route",
    );
    assert!(
        !bird.has_route("2001:db8::10"),
        "a false condition is never announced"
    );
    let dump = f.dump();
    let vip_dump = &dump["announcements"][1];
    assert_eq!(vip_dump["name"], "vip");
    assert_eq!(vip_dump["announced"], true, "{dump}");
    let lb = f.cli(&["lb", "show"]);
    let lb = String::from_utf8_lossy(&lb.stdout);
    assert!(
        lb.lines()
            .any(|l| l.contains("192.0.2.10/32") && l.contains(" announced ")),
        "{lb}"
    );

    // The only backend dies: quorum is lost and the route goes.
    drop(backend);
    f.wait_for(
        |_| !bird.has_route("192.0.2.10/32"),
        "the route is withdrawn",
    );
    assert!(
        f.dump()["alert_history"]
            .as_array()
            .is_some_and(|h| h.iter().any(|l| l
                .as_str()
                .unwrap_or("")
                .contains("announce vip 192.0.2.10/32 withdrawn"))),
        "the flip is in the history"
    );

    // It comes back: announced again.
    let _backend = TcpListener::bind(("127.0.0.1", port)).expect("backend again");
    f.wait_for(|_| bird.has_route("192.0.2.10/32"), "the route is back");

    // A planned stop withdraws the route before the daemon is gone.
    let out = f.cli(&["stop"]);
    assert!(out.status.success());
    f.wait_exit();
    assert!(!bird.has_route("192.0.2.10/32"), "stop withdrew the route");
    let log = std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("routes withdrawn; draining"), "{log}");
}

#[test]
fn an_unreachable_bird_is_retried_and_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a passing service");
    let port = listener.local_addr().expect("addr").port();
    let f = {
        let mut f = Fixture::new("announce-nobird");
        let text = format!(
            r#"
[daemon]
statedir = "state"

[bgp]
bird_include = "{dir}/routes.conf"
bird_socket = "{dir}/nobody-listens.ctl"
birdc = "{birdc}"
withdraw_drain = "0s"

[hostgroups]
local = ["127.0.0.1"]

[watch.local.ok]
interval = "1h"
monitor = {{ type = "tcp", port = {port} }}

[announce.vip]
prefix = "192.0.2.11"
when = "service:local/ok"
"#,
            dir = f.dir.display(),
            // Without bird2 installed the error is "cannot run"; with it,
            // birdc cannot reach the socket. Either is reported.
            birdc = if have_bird() {
                "birdc"
            } else {
                "/nonexistent/birdc"
            },
        );
        std::fs::write(f.config(), text).expect("config");
        f.start();
        f
    };
    f.wait_for(
        |f| {
            f.dump()["announcements"][0]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        },
        "the routing daemon's error shows in dump",
    );
    let dump = f.dump();
    assert_eq!(dump["announcements"][0]["announced"], false, "{dump}");
    assert!(
        std::fs::read_to_string(f.dir.join("routes.conf"))
            .is_ok_and(|t| t.contains("route 192.0.2.11/32 blackhole;")),
        "the include file is written even while BIRD is unreachable"
    );
}

/// Network namespaces and their BIRDs for the BGP test; all removed on drop.
struct Lab {
    prefix: String,
    birds: Vec<Child>,
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip").args(args).status().expect("ip");
        assert!(status.success(), "ip {args:?}");
    }

    fn in_ns(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        self.ip(&all);
    }

    /// BIRD in namespace `ns` with `config`, control socket `socket`.
    fn bird(&mut self, ns: &str, dir: &Path, name: &str, config: &str) -> std::path::PathBuf {
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(&conf, config).expect("bird config");
        let socket = dir.join(format!("{name}.ctl"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "bird", "-f", "-c"])
            .arg(&conf)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join(format!("{name}.pid")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bird");
        self.birds.push(child);
        socket
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for bird in &mut self.birds {
            bird.kill().ok();
            bird.wait().ok();
        }
        for name in ["r", "d1", "d2"] {
            Command::new("ip")
                .args(["netns", "del", &self.ns(name)])
                .status()
                .ok();
        }
    }
}

fn birdc(socket: &Path, args: &[&str]) -> String {
    Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

/// Two directors, one announcing through its own BIRD and one through
/// ExaBGP (`keepmon exabgp-api` as its API process), peering over BGP with a
/// router (BIRD in a third namespace): both announce the VIP and the router has a
/// path through each; a director whose backends fail withdraws its path;
/// `keepmon stop` withdraws before the daemon exits. Everything stays in
/// the namespaces the test creates (10.123.x.0/24 exists only there).
#[test]
fn two_directors_announce_through_bird_and_exabgp_and_a_failing_one_withdraws() {
    let what = "route announcements over BGP";
    if !nix::unistd::geteuid().is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    if !have_bird() {
        common::not_run(&format!("{what}: needs BIRD 2 (Debian package bird2)"));
        return;
    }
    if !have("exabgp") {
        common::not_run(&format!("{what}: needs ExaBGP (Debian package exabgp)"));
        return;
    }
    let mut lab = Lab {
        prefix: format!("kmbgp{}", std::process::id() % 100_000),
        birds: Vec::new(),
    };
    let (r, d1, d2) = (lab.ns("r"), lab.ns("d1"), lab.ns("d2"));
    for ns in [&r, &d1, &d2] {
        lab.ip(&["netns", "add", ns]);
        lab.in_ns(ns, &["ip", "link", "set", "lo", "up"]);
    }
    for (n, d) in [(1, &d1), (2, &d2)] {
        let (a, b) = (format!("{}a{n}", lab.prefix), format!("{}b{n}", lab.prefix));
        lab.ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        lab.ip(&["link", "set", &a, "netns", d]);
        lab.ip(&["link", "set", &b, "netns", &r]);
        lab.in_ns(
            d,
            &["ip", "addr", "add", &format!("10.123.{n}.1/24"), "dev", &a],
        );
        lab.in_ns(
            &r,
            &[
                "ip",
                "addr",
                "add",
                &format!("10.123.{n}.254/24"),
                "dev",
                &b,
            ],
        );
        lab.in_ns(d, &["ip", "link", "set", &a, "up"]);
        lab.in_ns(&r, &["ip", "link", "set", &b, "up"]);
    }
    let mut first = Fixture::new("announce-bgp-d1");
    let mut second = Fixture::new("announce-bgp-d2");
    let router_sock = lab.bird(
        &r,
        &first.dir,
        "router",
        "router id 10.123.1.254;\nprotocol device {}\n\
         protocol bgp d1 { local 10.123.1.254 as 65000; neighbor 10.123.1.1 as 65001; ipv4 { import all; export none; }; }\n\
         protocol bgp d2 { local 10.123.2.254 as 65000; neighbor 10.123.2.1 as 65002; ipv4 { import all; export none; }; }\n",
    );
    let mut backends = Vec::new();
    for (n, (f, ns)) in [(&mut first, &d1), (&mut second, &d2)]
        .into_iter()
        .enumerate()
    {
        let n = n + 1;
        // Director 1 speaks through BIRD, director 2 through ExaBGP with
        // `keepmon exabgp-api` as its API process.
        let bgp = if n == 1 {
            let include = f.dir.join("routes.conf");
            std::fs::write(
                &include,
                "protocol static keepmon4 { ipv4; }\nprotocol static keepmon6 { ipv6; }\n",
            )
            .expect("include");
            let socket = lab.bird(
                ns,
                &f.dir,
                "director",
                &format!(
                    "router id 10.123.{n}.1;\nprotocol device {{}}\ninclude \"{}\";\n\
                     protocol bgp r {{ local 10.123.{n}.1 as 6500{n}; neighbor 10.123.{n}.254 as 65000;\n\
                     ipv4 {{ import none; export where proto = \"keepmon4\"; }}; }}\n",
                    include.display()
                ),
            );
            format!(
                "bird_include = \"{}\"\nbird_socket = \"{}\"\n",
                include.display(),
                socket.display()
            )
        } else {
            let conf = f.dir.join("exabgp.conf");
            std::fs::write(
                &conf,
                format!(
                    "process keepmon {{\n  run {} exabgp-api -c {};\n  encoder text;\n}}\n\
                     neighbor 10.123.{n}.254 {{\n  router-id 10.123.{n}.1;\n  local-address 10.123.{n}.1;\n\
                     local-as 6500{n};\n  peer-as 65000;\n  api {{ processes [ keepmon ]; }}\n}}\n",
                    env!("CARGO_BIN_EXE_keepmon"),
                    f.config().display()
                ),
            )
            .expect("exabgp.conf");
            let log = std::fs::File::create(f.dir.join("exabgp.log")).expect("log");
            let child = Command::new("ip")
                .args(["netns", "exec", ns, "env"])
                .args([
                    "exabgp.daemon.daemonize=false",
                    "exabgp.daemon.user=root",
                    "exabgp.daemon.drop=false",
                    "exabgp.log.destination=stdout",
                    "exabgp.api.ack=false",
                    "exabgp",
                ])
                .arg(&conf)
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start exabgp");
            lab.birds.push(child);
            "via = \"exabgp\"\n".to_string()
        };
        let backend = TcpListener::bind("127.0.0.1:0").expect("backend");
        let port = backend.local_addr().expect("addr").port();
        backends.push(Some(backend));
        let vip = TcpListener::bind("127.0.0.1:0")
            .expect("vip probe")
            .local_addr()
            .expect("addr")
            .port();
        std::fs::write(
            f.config(),
            format!(
                r#"
[daemon]
statedir = "state"

[bgp]
{bgp}withdraw_drain = "1s"

[hostgroups]
backends = ["127.0.0.1"]

[watch.backends.web]
interval = "300ms"
monitor = {{ type = "tcp", port = {port}, timeout = "1s" }}

[virtual_servers.web]
listen = "127.0.0.1:{vip}"
scheduler = "mh"
health = "backends:web"
real_servers = [ {{ addr = "127.0.0.1:{port}" }} ]

[announce.vip]
prefix = "192.0.2.10/32"
when = "quorum:web"
"#,
            ),
        )
        .expect("config");
        f.start();
    }
    let paths = || birdc(&router_sock, &["show", "route", "192.0.2.10/32"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(paths().contains("[d1 ") && paths().contains("[d2 ")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the router did not learn both paths:\n{}\n{}",
            paths(),
            birdc(&router_sock, &["show", "protocols"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Director 1 loses its only backend: its path goes, director 2's stays.
    backends[0] = None;
    first.wait_for(
        |_| {
            let p = paths();
            !p.contains("[d1 ") && p.contains("[d2 ")
        },
        "the router keeps only director 2's path",
    );

    // A planned stop of director 2 withdraws its path before it exits.
    let out = second.cli(&["stop"]);
    assert!(out.status.success());
    second.wait_exit();
    let p = paths();
    assert!(
        !p.contains("[d2 "),
        "director 2's path is gone at exit:\n{p}"
    );
    let log = std::fs::read_to_string(second.dir.join("daemon.log")).unwrap_or_default();
    assert!(log.contains("routes withdrawn; draining"), "{log}");
}
