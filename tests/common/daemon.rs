//! A keepmon daemon started by a test: its temp directory, config, CLI calls and polling helpers; killed and removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A temp directory removed on drop, with the daemon (if any) killed first.
pub struct Fixture {
    pub dir: PathBuf,
    pub daemon: Option<Child>,
    pub config_name: &'static str,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("keepmon-daemon-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("temp dir");
        Fixture {
            dir,
            daemon: None,
            config_name: "keepmon.toml",
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join(self.config_name)
    }

    /// Use a mon.cf instead of the TOML config.
    pub fn write_mon_cf(&mut self, text: &str) {
        self.config_name = "mon.cf";
        std::fs::write(self.config(), text).expect("write mon.cf");
    }

    pub fn write_script(&self, relative: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(&path, body).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    pub fn write_config(&self, up_port: u16, down_port: u16, extra: &str) {
        let text = format!(
            r#"
[daemon]
statedir = "state"
shutdown_grace = "2s"

[hostgroups]
local = ["127.0.0.1"]

[actions.log]
type = "file"
path = "alerts.log"

[watch.local.up]
interval = "1s"
monitor = {{ type = "tcp", port = {up_port}, timeout = "1s" }}
alert = ["log"]
upalert = ["log"]
alertevery = "1h"

[watch.local.down]
interval = "1s"
monitor = {{ type = "tcp", port = {down_port}, timeout = "1s" }}
alert = ["log"]
upalert = ["log"]
alertevery = "1h"
{extra}
"#
        );
        std::fs::write(self.config(), text).expect("write config");
    }

    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("daemon.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_keepmon"))
            .args(["start", "-c"])
            .arg(self.config())
            .env("KEEPMON_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start keepmon");
        self.daemon = Some(child);
        self.wait_for(
            |f| f.cli(&["status"]).status.success(),
            "the daemon answers status",
        );
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keepmon"))
            .args(args)
            .arg("-c")
            .arg(self.config())
            .output()
            .expect("run keepmon")
    }

    pub fn dump(&self) -> serde_json::Value {
        let out = self.cli(&["dump", "--json"]);
        assert!(
            out.status.success(),
            "dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("dump is JSON")
    }

    pub fn opstatus(&self, service: &str) -> String {
        let dump = self.dump();
        dump["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["service"] == service))
            .map(|s| s["opstatus"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// The InForce column of `lb show` for real server `addr` (`IP:PORT`):
    /// its weight in the data plane, or `absent`; empty when not listed.
    pub fn in_force(&self, addr: &str) -> String {
        let out = self.cli(&["lb", "show"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("-> {addr} ")))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_default()
            .to_string()
    }

    pub fn alerts(&self) -> String {
        std::fs::read_to_string(self.dir.join("alerts.log")).unwrap_or_default()
    }

    /// Poll `check` every 100 ms for at most 15 s.
    pub fn wait_for(&self, check: impl Fn(&Fixture) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        panic!("timed out waiting until {what}\n--- daemon log ---\n{log}");
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon running");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            child.kill().ok();
            child.wait().ok();
        }
        // A detached daemon (start --daemon) is found through its pidfile.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("state/keepmon.pid")) {
            let pid = pid.trim();
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*self.dir.to_string_lossy()));
            if !pid.is_empty() && ours {
                Command::new("kill").args(["-9", pid]).status().ok();
            }
        }
        kill_scripts_under(&self.dir);
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A loopback port with nothing listening (bound then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Kill what a SIGKILLed daemon leaves behind: every process running a
/// script from `dir` (mon.d monitors and alerts run in their own process
/// groups), with its whole group (a script's `sleep` child too).
fn kill_scripts_under(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let pid = nix::unistd::Pid::from_raw(pid);
            if let Ok(group) = nix::unistd::getpgid(Some(pid))
                && group != nix::unistd::getpgrp()
            {
                nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).ok();
            }
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).ok();
        }
    }
}
