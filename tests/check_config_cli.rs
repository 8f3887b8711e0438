//! `keepmon check-config` as a user runs it: the summary and exit 0, or every error with file:line:col and exit 1.

use std::path::Path;
use std::process::{Command, Output};

fn keepmon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(args)
        .output()
        .expect("run keepmon")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write config");
    path.display().to_string()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keepmon-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn a_good_mon_cf_prints_a_summary_and_exits_0() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/mon/lvs.cf");
    let out = keepmon(&["check-config", "-c", example]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok (mon.cf format"), "{stdout}");
    assert!(stdout.contains("hostgroups       3"), "{stdout}");
    assert!(stdout.contains("services         3"), "{stdout}");
    assert!(stdout.contains("vrrp instances   0"), "{stdout}");
}

#[test]
fn a_bad_config_prints_every_error_and_exits_1() {
    let dir = temp_dir("bad");
    let file = write(
        &dir,
        "mon.cf",
        "maxprocs = many\n\nhostgroup g h\n\nwatch g\n  service s\n    interval soon\n    monitor tcp.monitor\n",
    );
    let out = keepmon(&["check-config", "-c", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{file}:1:1: error: maxprocs")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:7:5: error: interval")),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
    assert!(text(&out.stdout).is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn format_override_reads_a_toml_named_file_as_mon_cf() {
    let dir = temp_dir("fmt");
    let file = write(
        &dir,
        "odd.toml",
        "hostgroup g h\n\nwatch g\n  service s\n    interval 1m\n    monitor tcp.monitor\n",
    );
    let as_toml = keepmon(&["check-config", "-c", &file]);
    assert_eq!(as_toml.status.code(), Some(1), "read as TOML it is invalid");
    let as_mon = keepmon(&["check-config", "--format", "mon", "-c", &file]);
    assert!(as_mon.status.success(), "{}", text(&as_mon.stderr));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = keepmon(&["check-config", "-c", "/nonexistent/keepmon.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/keepmon.toml: error: cannot read config"));
}

#[test]
fn the_embedded_demo_config_checks_clean() {
    let out = keepmon(&["check-config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("built-in demo config"));
}

#[test]
fn vrrp_show_without_a_daemon_says_it_is_not_running() {
    let dir = temp_dir("novrrpdaemon");
    let file = write(
        &dir,
        "keepmon.toml",
        "[daemon]\nstatedir = \"state\"\n[vrrp.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddress = [\"10.99.0.50/24\"]\n",
    );
    let out = keepmon(&["vrrp", "show", "-c", &file]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("keepmon is not running"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn client_commands_without_a_daemon_say_it_is_not_running() {
    let dir = temp_dir("nodaemon");
    let file = write(
        &dir,
        "keepmon.toml",
        "[daemon]\nstatedir = \"state\"\n[hostgroups]\nh = [\"127.0.0.1\"]\n[watch.h.s]\ninterval = \"1m\"\nmonitor = { type = \"tcp\", port = 9 }\n",
    );
    let out = keepmon(&["status", "-c", &file]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("keepmon is not running"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn help_lists_the_planned_subcommands() {
    let out = keepmon(&["--help"]);
    let help = text(&out.stdout);
    for sub in [
        "check-config",
        "start",
        "stop",
        "status",
        "dump",
        "reload",
        "pause",
        "resume",
        "enable",
        "disable",
        "ack",
        "test",
        "lb",
        "vrrp",
    ] {
        assert!(help.contains(sub), "--help lacks {sub}:\n{help}");
    }
}

/// Regression (issue 19, finding 7): `-c /dev/zero` read until memory ran
/// out, a huge file was read whole, and 5 MB of junk printed 25 MB of
/// errors. Now a config over 64 MiB is refused with a clear error and at
/// most 100 diagnostics are printed, then a count.
#[test]
fn huge_and_endless_configs_are_refused_and_diagnostics_are_capped() {
    let dir = temp_dir("huge");
    let huge = dir.join("huge.toml");
    // Sparse: 65 MiB of zero bytes that take no disk.
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(65 << 20))
        .expect("a 65 MiB file");
    let huge = huge.display().to_string();
    for path in ["/dev/zero", huge.as_str()] {
        let out = keepmon(&["check-config", "-c", path]);
        assert_eq!(out.status.code(), Some(1), "{path}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("cannot read config: larger than 64 MiB"),
            "{path}: {stderr}"
        );
    }

    let junk = write(&dir, "junk.toml", &"[[[ junk = \n".repeat(400_000));
    let out = keepmon(&["check-config", "-c", &junk]);
    assert_eq!(out.status.code(), Some(1));
    let printed = out.stdout.len() + out.stderr.len();
    assert!(printed < 64 * 1024, "{printed} bytes of diagnostics");
    let mon = write(
        &dir,
        "junk.cf",
        &"watch\n    nonsense here\n".repeat(20_000),
    );
    let out = keepmon(&["check-config", "-c", &mon]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.len() < 64 * 1024,
        "{} bytes of diagnostics",
        stderr.len()
    );
    assert!(
        stderr.contains("more not shown"),
        "{}",
        &stderr[stderr.len().saturating_sub(500)..]
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `-c keepalived.conf -c haproxy.cfg`: the two files compile into one
/// model (VRRP from one, the proxies from the other); a name both define
/// is an error naming both places.
#[test]
fn several_config_files_compile_into_one_model() {
    let dir = temp_dir("several");
    let keepalived = write(
        &dir,
        "keepalived.conf",
        "vrrp_instance VI_1 {\n    state MASTER\n    interface lo\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {\n        192.0.2.10\n    }\n}\n",
    );
    let haproxy = write(
        &dir,
        "haproxy.cfg",
        "defaults\n    mode http\n    timeout connect 5s\n\nlisten web\n    bind 192.0.2.10:80\n    server a 127.0.0.1:8001 check\n    server b 127.0.0.1:8002 check\n",
    );
    let out = keepmon(&["check-config", "-c", &keepalived, "-c", &haproxy]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("{keepalived} + {haproxy}")),
        "{stdout}"
    );
    assert!(stdout.contains("vrrp instances   1"), "{stdout}");
    assert!(stdout.contains("virtual servers  1"), "{stdout}");
    assert!(stdout.contains("services         1"), "{stdout}");

    // The same listen twice: once in each of two haproxy.cfg files.
    let again = write(
        &dir,
        "haproxy-2.cfg",
        &std::fs::read_to_string(&haproxy).unwrap(),
    );
    let out = keepmon(&["check-config", "-c", &haproxy, "-c", &again]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{again}:5:1: error: virtual server \"web\" is defined twice: here and at {haproxy}:5:1"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hostgroup \"web\" is defined twice"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
