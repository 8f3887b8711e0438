//! Debian's HAProxy beside keepmon, for the tests that run one haproxy.cfg under both: the binary (or a loud "not run"), and one file run by HAProxy and then by keepmon on the same ports.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon::Fixture;

/// Debian's haproxy, or a loud "not run" naming `test`.
pub fn binary(test: &str) -> Option<&'static str> {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        super::not_run(&format!("{test}: needs Debian's haproxy package"));
    }
    found
}

/// Waits (bounded) until something accepts connections on `port`.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `text` as `f`'s haproxy.cfg under HAProxy, then under keepmon
/// (left running in `f`), and returns what `observe` saw under each.
pub fn under_both(
    binary: &str,
    f: &mut Fixture,
    text: &str,
    ports: &[u16],
    observe: impl Fn() -> Vec<String>,
) -> (Vec<String>, Vec<String>) {
    f.config_name = "haproxy.cfg";
    std::fs::write(f.config(), text).unwrap();
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
    let by_haproxy = observe();
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
    let by_keepmon = observe();
    (by_haproxy, by_keepmon)
}

/// A child process killed and reaped when dropped (also when a test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}
