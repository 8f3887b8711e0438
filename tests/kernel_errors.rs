//! A kernel data plane that cannot work is a clear message naming its virtual services, and the daemon keeps running: IPVS on a kernel without it (this host), nftables without the nft program.

mod common;

use std::process::{Command, Stdio};

use common::daemon::Fixture;

#[test]
fn missing_kernel_planes_are_named_errors_and_the_daemon_runs_on() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        // This host has IPVS: the module-missing path cannot be shown here
        // (tests/ipvs_vm.rs covers the kernel's refusals in a VM).
        common::not_run("this kernel has IPVS, so the missing-module message cannot be provoked");
        return;
    }
    let mut f = Fixture::new("kernel-errors");
    let empty_path = f.dir.join("no-programs");
    std::fs::create_dir_all(&empty_path).expect("dir");
    f.write_config(
        common::daemon::closed_port(),
        common::daemon::closed_port(),
        r#"
[virtual_servers.lvs]
listen = "192.0.2.10:80"
dataplane = "ipvs"
real_servers = [{ addr = "192.0.2.11:80" }]

[virtual_servers.nat]
listen = "192.0.2.20:80"
dataplane = "nftables"
real_servers = [{ addr = "192.0.2.21:80" }]
"#,
    );
    let log = std::fs::File::create(f.dir.join("daemon.log")).expect("log");
    // No nft on PATH: the nftables plane cannot run (and never touches this
    // host's ruleset).
    let child = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["start", "-c"])
        .arg(f.config())
        .env("PATH", &empty_path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start keepmon");
    f.daemon = Some(child);
    f.wait_for(
        |f| {
            let log = std::fs::read_to_string(f.dir.join("daemon.log")).unwrap_or_default();
            log.contains("IPVS is not available in this kernel") && log.contains("cannot run nft")
        },
        "both data-plane errors in the log",
    );
    let log = std::fs::read_to_string(f.dir.join("daemon.log")).expect("log");
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_string()
    };
    let ipvs = line("IPVS is not available in this kernel");
    assert!(
        ipvs.contains("lvs") && ipvs.contains("modprobe ip_vs"),
        "{ipvs}"
    );
    let nft = line("cannot run nft");
    assert!(
        nft.contains("nat") && nft.contains("install the nftables package"),
        "{nft}"
    );
    // The daemon runs on: status, dump and lb show answer.
    assert!(f.cli(&["status"]).status.success());
    let show = f.cli(&["lb", "show"]);
    assert!(show.status.success());
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("192.0.2.10:80") && text.contains("192.0.2.20:80"),
        "{text}"
    );
}
