//! Directors run by a test in network namespaces it creates: a bridged LAN of hosts' namespaces, and Debian's keepalived or keepmon in one of them from a keepalived.conf of its own (signals, logs, keepmon's CLI views); everything removed on drop. Shared by the keepalived.conf and BFD interop tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Run a set-up command; it must succeed.
pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the test runs as root (namespaces need it).
/// Whether Debian's keepalived is installed; when not, says loudly that
/// `what` did not run (a failure under KEEPMON_REQUIRE_PRIVILEGED=1).
pub fn keepalived_installed(what: &str) -> bool {
    let installed = Command::new("keepalived").arg("--version").output().is_ok();
    if !installed {
        crate::common::not_run(&format!("{what}: needs Debian's keepalived package"));
    }
    installed
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Hosts' namespaces (`PREFIX1`, ...) joined by a bridge namespace
/// (`PREFIXbr`): each host's `eth0` is on the bridge with its address.
/// Every namespace is deleted on drop.
pub struct Lan {
    prefix: String,
    hosts: Vec<String>,
}

impl Lan {
    /// `hosts`: (name, address with prefix length), e.g. ("1", "10.97.0.1/24").
    pub fn new(prefix: &str, hosts: &[(&str, &str)]) -> Lan {
        let lan = Lan {
            prefix: prefix.to_string(),
            hosts: hosts.iter().map(|(h, _)| h.to_string()).collect(),
        };
        for ns in lan.all() {
            run("ip", &["netns", "add", &ns]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        }
        let br = lan.ns("br");
        run("ip", &["-n", &br, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &br, "link", "set", "br0", "up"]);
        for (host, address) in hosts {
            let ns = lan.ns(host);
            let port = format!("v{host}");
            run(
                "ip",
                &[
                    "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            );
            run(
                "ip",
                &["-n", &br, "link", "set", &port, "master", "br0", "up"],
            );
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", &ns, "addr", "add", address, "dev", "eth0"]);
        }
        lan
    }

    /// The namespace of `host` (or of the bridge, "br").
    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// The bridge's namespace, then every host's.
    pub fn all(&self) -> Vec<String> {
        std::iter::once("br".to_string())
            .chain(self.hosts.iter().cloned())
            .map(|h| self.ns(&h))
            .collect()
    }

    /// Whether `host`'s `eth0` has `address` (an IPv4 address).
    pub fn has_address(&self, host: &str, address: &str) -> bool {
        Command::new("ip")
            .args([
                "-n",
                &self.ns(host),
                "-4",
                "-o",
                "addr",
                "show",
                "dev",
                "eth0",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {address}/")))
            .unwrap_or(false)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.all() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
    }
}

/// keepalived or keepmon in a namespace, from `dir/keepalived.conf`; its
/// output goes to `dir/daemon.log`.
pub struct Peer {
    /// For the logs of a failed wait.
    pub name: String,
    pub ns: String,
    pub dir: PathBuf,
    pub keepalived: bool,
    child: Option<Child>,
}

impl Peer {
    /// A peer named after its directory.
    pub fn start(ns: &str, dir: &Path, keepalived: bool, config_text: &str) -> Peer {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Peer::start_named(&name, ns, dir, keepalived, config_text)
    }

    pub fn start_named(
        name: &str,
        ns: &str,
        dir: &Path,
        keepalived: bool,
        config_text: &str,
    ) -> Peer {
        std::fs::create_dir_all(dir).expect("peer dir");
        let config = dir.join("keepalived.conf");
        std::fs::write(&config, config_text).expect("write config");
        let log = std::fs::File::create(dir.join("daemon.log")).expect("log");
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]);
        if keepalived {
            // Every child's pid file in the peer's directory (VRRP,
            // checkers, BFD), never the system's.
            command
                .args(["keepalived", "-P", "-n", "-l", "-D", "-f"])
                .arg(&config)
                .arg("-p")
                .arg(dir.join("keepalived.pid"))
                .arg("-r")
                .arg(dir.join("vrrp.pid"))
                .arg("-c")
                .arg(dir.join("checkers.pid"))
                .arg("-b")
                .arg(dir.join("bfd.pid"));
        } else {
            command
                .arg(env!("CARGO_BIN_EXE_keepmon"))
                .arg("-c")
                .arg(&config)
                .arg("start")
                .env("KEEPMON_LOG", "info");
        }
        let child = command
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start director");
        Peer {
            name: name.to_string(),
            ns: ns.to_string(),
            dir: dir.to_path_buf(),
            keepalived,
            child: Some(child),
        }
    }

    /// keepmon's `KEEPMON ARGS -c dir/keepalived.conf` output.
    fn keepmon(&self, args: &[&str]) -> String {
        assert!(!self.keepalived, "keepalived has no `{}`", args.join(" "));
        let out = Command::new(env!("CARGO_BIN_EXE_keepmon"))
            .arg("-c")
            .arg(self.dir.join("keepalived.conf"))
            .args(args)
            .output()
            .expect("run keepmon");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// keepmon's `vrrp show` (the human table).
    pub fn vrrp_show(&self) -> String {
        self.keepmon(&["vrrp", "show"])
    }

    /// keepmon's `lb show`: (health, weight in force) of real server `addr`.
    pub fn real_server(&self, addr: &str) -> Option<(String, String)> {
        let text = self.keepmon(&["lb", "show"]);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("-> {addr} ")))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        Some((words.get(6)?.to_string(), words.get(8)?.to_string()))
    }

    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Send `signal` and wait (at most 10 s, then SIGKILL) for the exit.
    pub fn stop(&mut self, signal: &str) {
        self.signal(signal);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop it as a dead peer: keepalived by SIGTERM (its parent forwards
    /// it to its children), keepmon by SIGKILL.
    pub fn kill(&mut self) {
        self.stop(if self.keepalived { "-15" } else { "-9" });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `check` every 50 ms for at most 30 s; on timeout, panic with every
/// peer's log.
pub fn wait_for(what: &str, peers: &[&Peer], check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs: Vec<String> = peers
        .iter()
        .map(|p| {
            format!(
                "--- {} in {} ({}) ---\n{}",
                p.name,
                p.ns,
                if p.keepalived {
                    "keepalived"
                } else {
                    "keepmon"
                },
                p.log()
            )
        })
        .collect();
    panic!("timed out waiting until {what}\n{}", logs.join("\n"));
}
