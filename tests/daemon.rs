//! The daemon as a user runs it: start, status, dump, alerts on real failures, reload keeping state, stop and restart persistence, kill -9.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{Fixture, closed_port, count};

#[test]
fn monitors_alert_on_failure_and_recovery_and_survive_restart() {
    let mut f = Fixture::new("lifecycle");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    let down_port = closed_port();
    f.write_config(up_port, down_port, "");
    f.start();

    f.wait_for(|f| f.opstatus("up") == "ok", "the up service is ok");
    f.wait_for(|f| f.opstatus("down") == "fail", "the down service fails");
    f.wait_for(
        |f| count(&f.alerts(), "failure local down") == 1,
        "one failure alert for down",
    );
    assert_eq!(
        count(&f.alerts(), "local up"),
        0,
        "no alert for a passing service"
    );

    // The up service's server dies: a failure alert; it comes back: an upalert.
    drop(up);
    f.wait_for(
        |f| f.opstatus("up") == "fail",
        "up fails once its listener is gone",
    );
    f.wait_for(
        |f| count(&f.alerts(), "failure local up") == 1,
        "failure alert for up",
    );
    let again = TcpListener::bind(("127.0.0.1", up_port)).expect("rebind the same port");
    f.wait_for(|f| f.opstatus("up") == "ok", "up recovers");
    f.wait_for(
        |f| count(&f.alerts(), "up local up") == 1,
        "an upalert for up",
    );

    // Status and the human dump.
    let status = String::from_utf8_lossy(&f.cli(&["status"]).stdout).into_owned();
    assert!(status.contains("2 services, 1 failing"), "{status}");
    let table = String::from_utf8_lossy(&f.cli(&["dump"]).stdout).into_owned();
    assert!(table.contains("local/down"), "{table}");
    assert!(table.contains("127.0.0.1"), "{table}");

    // Graceful stop saves state; a restart neither forgets the failing
    // service nor alerts for it again.
    let out = f.cli(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.wait_exit().success(), "stop exits 0");
    assert!(f.dir.join("state/keepmon-state.json").exists());
    let before = f.alerts();
    f.start();
    assert_eq!(
        f.opstatus("down"),
        "fail",
        "state restored before the first run"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(f.opstatus("down"), "fail");
    assert_eq!(
        count(&f.alerts(), "failure local down"),
        count(&before, "failure local down"),
        "no second alert after a restart"
    );
    drop(again);
}

#[test]
fn reload_keeps_state_and_refuses_bad_configs() {
    let mut f = Fixture::new("reload");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    let down_port = closed_port();
    f.write_config(up_port, down_port, "");
    f.start();
    f.wait_for(|f| f.opstatus("down") == "fail", "down fails");
    f.wait_for(
        |f| count(&f.alerts(), "failure local down") == 1,
        "alerted once",
    );

    // Add a service: the existing ones keep their state (no second alert).
    f.write_config(
        up_port,
        down_port,
        &format!("[watch.local.extra]\ninterval = \"1s\"\nmonitor = {{ type = \"tcp\", port = {up_port} }}\n"),
    );
    let out = f.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+ service local:extra"));
    f.wait_for(|f| f.opstatus("extra") == "ok", "the new service runs");
    assert_eq!(f.opstatus("down"), "fail");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        count(&f.alerts(), "failure local down"),
        1,
        "state kept across reload"
    );

    // A broken config is refused; the old one keeps running.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(f.config())
        .expect("open");
    writeln!(file, "[watch.local.bad]\ninterval = \"soon\"").expect("append");
    let out = f.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("reload refused"), "{stderr}");
    assert!(stderr.contains("interval"), "{stderr}");
    assert_eq!(f.opstatus("extra"), "ok", "still running the old config");
    drop(up);
}

#[test]
fn disable_ack_pause_and_test_alert() {
    let mut f = Fixture::new("control");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    f.write_config(up_port, closed_port(), "");
    f.start();
    f.wait_for(|f| f.opstatus("down") == "fail", "down fails");

    let out = f.cli(&["ack", "local", "down", "working", "on", "it"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = f.dump();
    let down = dump["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["service"] == "down"))
        .cloned()
        .expect("down service");
    assert!(
        down["ack"]
            .as_str()
            .unwrap_or("")
            .ends_with("working on it"),
        "{down}"
    );
    let out = f.cli(&["ack", "local", "up", "x"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "only a failing service can be acked"
    );

    let out = f.cli(&["disable", "service", "local", "up"]);
    assert!(out.status.success());
    assert!(
        f.dump()["services"][1]["disabled"]
            .as_bool()
            .unwrap_or(false)
            || f.dump()["services"][0]["disabled"]
                .as_bool()
                .unwrap_or(false)
    );
    let disabled_file =
        std::fs::read_to_string(f.dir.join("state/disabled")).expect("mon's disabled file");
    assert_eq!(disabled_file, "disable service local up\n");
    assert!(
        f.cli(&["enable", "service", "local", "up"])
            .status
            .success()
    );
    assert_eq!(
        f.cli(&["disable", "service", "local", "nope"])
            .status
            .code(),
        Some(1)
    );

    assert!(f.cli(&["pause"]).status.success());
    assert_eq!(f.dump()["scheduler_running"], false);
    assert!(f.cli(&["resume"]).status.success());

    let before = count(&f.alerts(), "local up");
    let out = f.cli(&["test", "alert", "local", "up"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.wait_for(
        |f| count(&f.alerts(), "local up") > before,
        "the test alert is written",
    );

    // SIGTERM: graceful, exit 0.
    let pid = f.daemon.as_ref().map(|c| c.id()).expect("pid");
    Command::new("kill")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(f.wait_exit().success(), "SIGTERM exits 0");
    drop(up);
}

#[test]
fn kill_9_leaves_a_readable_statedir() {
    let mut f = Fixture::new("kill9");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    f.write_config(up.local_addr().expect("addr").port(), closed_port(), "");
    for round in 0..3 {
        f.start();
        f.wait_for(|f| f.opstatus("down") == "fail", "down fails");
        // Let a few saves happen, then kill at an arbitrary moment.
        std::thread::sleep(Duration::from_millis(300 + 370 * round));
        if let Some(mut child) = f.daemon.take() {
            child.kill().expect("kill -9");
            child.wait().ok();
        }
        std::fs::remove_file(f.dir.join("state/keepmon.sock")).ok();
    }
    let text = std::fs::read_to_string(f.dir.join("state/keepmon-state.json")).expect("state file");
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("state is whole JSON");
    assert!(parsed["services"]["local/down"].is_object());
    f.start();
    assert_eq!(f.opstatus("down"), "fail", "restored after kill -9");
    drop(up);
}

/// Regression (issue 19, finding 6): a corrupt state file lost disabled
/// entries. Now it is kept as a timestamped `.corrupt` file and the daemon
/// restores the previous copy and mon's `disabled` file.
#[test]
fn a_corrupt_state_file_keeps_disabled_entries() {
    let mut f = Fixture::new("corrupt");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    f.write_config(up.local_addr().expect("addr").port(), closed_port(), "");
    f.start();
    let out = f.cli(&["disable", "service", "local", "up"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = f.daemon.take().expect("daemon");
    child.kill().expect("kill -9");
    child.wait().ok();
    std::fs::write(
        f.dir.join("state/keepmon-state.json"),
        b"{\"services\": {\"lo",
    )
    .expect("corrupt");
    f.start();
    let dump = f.dump();
    let up_service = dump["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["service"] == "up"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(up_service["disabled"], true, "still disabled: {dump}");
    let kept = std::fs::read_dir(f.dir.join("state"))
        .expect("statedir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("keepmon-state.json.corrupt.")
        });
    assert!(kept, "the corrupt file is kept");
    drop(up);
}

/// Regression (issue 19, finding 8): the daemon deleted whatever file sat
/// at its control socket's path. Now only a stale socket is replaced.
#[test]
fn the_control_socket_never_removes_what_is_not_a_socket() {
    let f = Fixture::new("sockfile");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    f.write_config(up.local_addr().expect("addr").port(), closed_port(), "");
    std::fs::create_dir_all(f.dir.join("state")).expect("statedir");
    let precious = f.dir.join("state/keepmon.sock");
    std::fs::write(&precious, "not a socket\n").expect("file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["start", "-c"])
        .arg(f.config())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start keepmon");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("the daemon started over a regular file at its socket path");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).ok();
    assert!(!status.success());
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&precious).expect("still there"),
        "not a socket\n"
    );
    drop(up);
}

/// Regression (issue 19, finding 8): the control socket did not check who
/// connects; a socket made reachable by mistake (a chmod) let any user stop
/// the daemon. Now only root and the daemon's own uid are served.
#[test]
fn only_root_or_the_daemons_user_may_use_the_control_socket() {
    if !nix::unistd::geteuid().is_root() {
        common::not_run("needs root to run the CLI as another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mut f = Fixture::new("peercred");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    f.write_config(up.local_addr().expect("addr").port(), closed_port(), "");
    f.start();
    let socket = f.dir.join("state/keepmon.sock");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Open the way on purpose: only the uid check stands.
    for dir in [&f.dir, &f.dir.join("state")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["stop", "-c"])
        .arg(f.config())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run keepmon as nobody");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "nobody stopped the daemon: {text}");
    assert!(text.contains("may not use the control socket"), "{text}");
    assert!(f.cli(&["status"]).status.success(), "root still may");
    drop(up);
}

/// Regression (issue 19, finding 1): with `ulimit -n 1024` (systemd's
/// default soft limit) 1,100 idle clients exhausted the daemon's
/// descriptors. The daemon now raises its soft limit to the hard one.
#[test]
fn the_soft_fd_limit_is_raised_to_the_hard_limit() {
    let mut f = Fixture::new("nofile");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    f.write_config(up.local_addr().expect("addr").port(), closed_port(), "");
    let log = std::fs::File::create(f.dir.join("daemon.log")).expect("log");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -S -n 256 && exec {} start -c {}",
            env!("CARGO_BIN_EXE_keepmon"),
            f.config().display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start keepmon under ulimit -n 256");
    let pid = child.id();
    f.daemon = Some(child);
    f.wait_for(
        |f| f.cli(&["status"]).status.success(),
        "the daemon answers",
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert_ne!(numbers[0], "256", "soft limit raised: {line}");
    assert_eq!(numbers[0], numbers[1], "soft = hard: {line}");
    drop(up);
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let mut f = Fixture::new("twice");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    f.write_config(up.local_addr().expect("addr").port(), closed_port(), "");
    f.start();
    let out = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["start", "-c"])
        .arg(f.config())
        .output()
        .expect("second start");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    drop(up);
}

/// A mon.cf running unchanged: a mon.d script as the monitor (argv, env,
/// summary naming the failing host), an alert.d script receiving mon's argv,
/// stdin and MON_* environment, and mon's downtime log.
#[test]
fn mon_cf_with_mon_d_monitor_and_alert_d_script() {
    let mut f = Fixture::new("moncf");
    let d = f.dir.display().to_string();
    // The monitor fails host "bad" while the file `fail` exists.
    f.write_script(
        "mon.d/flag.monitor",
        "#!/bin/sh\necho \"$@\" > \"$FLAGDIR/monitor.args\"\nif [ -e \"$FLAGDIR/fail\" ]; then echo bad; echo \"bad is broken\" >&2; exit 1; fi\nexit 0\n",
    );
    f.write_script(
        "alert.d/record.alert",
        "#!/bin/sh\nn=$(ls \"$FLAGDIR\"/rec.* 2>/dev/null | wc -l)\n{ echo \"ARGS $*\"; echo \"TYPE $MON_ALERTTYPE RETVAL $MON_RETVAL GROUP $MON_GROUP\"; cat; } > \"$FLAGDIR/tmp.$n\" && mv \"$FLAGDIR/tmp.$n\" \"$FLAGDIR/rec.$n\"\n",
    );
    f.write_mon_cf(&format!(
        "basedir = {d}\nmondir = {d}/mon.d\nalertdir = {d}/alert.d\nstatedir = {d}/state\nlogdir = {d}/log\ndtlogging = yes\n\nhostgroup servers good bad\n\nwatch servers\n    service flag\n        interval 1s\n        monitor flag.monitor -x 1\n        FLAGDIR={d}\n        period\n            alert record.alert -o extra\n            upalert record.alert -o extra\n            alertevery 1h\n"
    ));
    f.start();
    f.wait_for(|f| f.opstatus("flag") == "ok", "the script monitor passes");
    let args = std::fs::read_to_string(f.dir.join("monitor.args")).expect("monitor ran");
    assert_eq!(args.trim(), "-x 1 good bad", "mon's argv: args then hosts");

    std::fs::write(f.dir.join("fail"), "").expect("flag");
    f.wait_for(|f| f.dir.join("rec.0").exists(), "the failure alert ran");
    f.wait_for(|f| f.opstatus("flag") == "fail", "flag fails");
    let alert = std::fs::read_to_string(f.dir.join("rec.0")).expect("alert output");
    let mut lines = alert.lines();
    let argv = lines.next().unwrap_or("");
    assert!(
        argv.starts_with("ARGS -s flag -g servers -h good bad -t "),
        "{alert}"
    );
    assert!(argv.ends_with(" -o extra"), "{alert}");
    assert_eq!(
        lines.next(),
        Some("TYPE failure RETVAL 1 GROUP servers"),
        "{alert}"
    );
    assert_eq!(
        lines.next(),
        Some("bad"),
        "stdin starts with the summary: {alert}"
    );
    assert_eq!(
        lines.next(),
        Some("bad is broken"),
        "stderr is merged into the output: {alert}"
    );

    // Per-host state: only the host the summary names is down.
    let dump = f.dump();
    let hosts = &dump["services"][0]["hosts"];
    assert_eq!(hosts[0]["host"], "good");
    assert_eq!(hosts[0]["up"], true, "{dump}");
    assert_eq!(hosts[1]["up"], false, "{dump}");

    std::fs::remove_file(f.dir.join("fail")).expect("unflag");
    f.wait_for(|f| f.dir.join("rec.1").exists(), "the upalert ran");
    let up = std::fs::read_to_string(f.dir.join("rec.1")).expect("upalert output");
    assert!(
        up.lines().next().unwrap_or("").contains(" -u -o extra"),
        "{up}"
    );
    assert!(up.contains("TYPE up"), "{up}");
    assert!(
        up.contains("\nbad\n"),
        "an upalert gets the last failing output: {up}"
    );
    f.wait_for(
        |f| {
            std::fs::read_to_string(f.dir.join("log/downtime.log"))
                .is_ok_and(|t| t.contains(" servers flag "))
        },
        "a downtime log line",
    );
}

/// `start --daemon` detaches, writes a pidfile, and refuses a second copy.
#[test]
fn daemon_mode_writes_a_pidfile_and_refuses_a_second_instance() {
    let f = Fixture::new("detach");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    f.write_config(up.local_addr().expect("addr").port(), closed_port(), "");
    let out = f.cli(&["start", "--daemon"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.wait_for(
        |f| f.cli(&["status"]).status.success(),
        "the detached daemon answers",
    );
    let pid: i32 = std::fs::read_to_string(f.dir.join("state/keepmon.pid"))
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    let status = String::from_utf8_lossy(&f.cli(&["status"]).stdout).into_owned();
    assert!(status.contains(&format!("pid {pid}")), "{status}");
    let again = f.cli(&["start", "--daemon"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("another keepmon holds"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(f.cli(&["stop"]).status.success());
    f.wait_for(
        |_| {
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        },
        "the daemon exits",
    );
    drop(up);
}

/// SIGHUP applies a new config like `reload`.
#[test]
fn sighup_reloads() {
    let mut f = Fixture::new("hup");
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = up.local_addr().expect("addr").port();
    f.write_config(port, closed_port(), "");
    f.start();
    f.wait_for(|f| f.opstatus("up") == "ok", "up is ok");
    f.write_config(port, closed_port(), &format!("[watch.local.added]\ninterval = \"1s\"\nmonitor = {{ type = \"tcp\", port = {port} }}\n"));
    let pid = f.daemon.as_ref().map(|c| c.id()).expect("pid");
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    f.wait_for(
        |f| f.opstatus("added") == "ok",
        "the service added by SIGHUP runs",
    );
    drop(up);
}

/// A service never runs twice at once, maxprocs bounds concurrent scripts,
/// and a hung monitor is killed at its timeout and reported as `timeout`.
#[test]
fn overlap_maxprocs_and_hard_timeout() {
    let mut f = Fixture::new("overlap");
    let d = f.dir.display().to_string();
    // Appends "+" on start and "-" on exit, so overlapping runs show as "++".
    f.write_script(
        "mon.d/slow.monitor",
        "#!/bin/sh\necho + >> \"$LOGF\"\nsleep 1.5\necho - >> \"$LOGF\"\nexit 0\n",
    );
    f.write_script("mon.d/hang.monitor", "#!/bin/sh\nsleep 60\n");
    f.write_mon_cf(&format!(
        "mondir = {d}/mon.d\nstatedir = {d}/state\nlogdir = {d}/log\nmaxprocs = 1\n\nhostgroup h localhost\n\nwatch h\n    service a\n        interval 1s\n        monitor slow.monitor\n        LOGF={d}/runs.log\n    service b\n        interval 1s\n        monitor slow.monitor\n        LOGF={d}/runs.log\n\nhostgroup stuck stuck\n\nwatch stuck\n    service hang\n        interval 1s\n        timeout 1s\n        monitor hang.monitor\n"
    ));
    f.start();
    f.wait_for(
        |f| f.opstatus("hang") == "timeout",
        "the hung monitor times out",
    );
    // The hung service holds the only slot a second at a time, so how soon
    // the slow ones get it varies with the machine: wait (bounded) for two
    // whole runs rather than for a fixed time.
    let marks = || -> String {
        std::fs::read_to_string(f.dir.join("runs.log"))
            .unwrap_or_default()
            .lines()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while marks().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let marks = marks();
    assert!(marks.len() >= 4, "several runs happened: {marks:?}");
    assert!(
        !marks.contains("++"),
        "maxprocs = 1: scripts never overlap, so no service runs twice at once: {marks:?}"
    );
}

/// mon kills the monitors still running when it stops; keepmon did wait for
/// them (up to the shutdown grace). A script that hangs, and the process it
/// started, are gone as soon as `stop` returns, well inside the grace.
#[test]
fn stop_kills_running_monitors() {
    let mut f = Fixture::new("stopkill");
    let d = f.dir.display().to_string();
    // The script records its pid and its child's, then hangs.
    f.write_script(
        "mon.d/hang.monitor",
        "#!/bin/sh\necho $$ > \"$PIDS\"\nsleep 300 &\necho $! >> \"$PIDS\"\nwait\n",
    );
    f.write_mon_cf(&format!(
        "mondir = {d}/mon.d\nstatedir = {d}/state\nlogdir = {d}/log\n\nhostgroup h localhost\n\nwatch h\n    service hang\n        interval 1s\n        monitor hang.monitor\n        PIDS={d}/pids\n"
    ));
    f.start();
    f.wait_for(
        |f| std::fs::read_to_string(f.dir.join("pids")).is_ok_and(|t| t.lines().count() == 2),
        "the monitor and its child run",
    );
    let pids: Vec<String> = std::fs::read_to_string(f.dir.join("pids"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let started = Instant::now();
    let out = f.cli(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = f.wait_exit();
    let took = started.elapsed();
    assert!(status.success(), "daemon exit: {status:?}");
    // The default shutdown grace is 10 s; waiting for the script would
    // take all of it.
    assert!(
        took < Duration::from_secs(8),
        "stop waited for the hung monitor ({took:?})"
    );
    for pid in &pids {
        // Gone, or at most a zombie of a parent that is itself gone.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = !state.is_empty()
            && state
                .rsplit(") ")
                .next()
                .is_some_and(|rest| !rest.starts_with('Z'));
        assert!(
            !alive,
            "process {pid} of the monitor survived the stop: {state}"
        );
    }
}
