//! Alerts as an operator sees them: mon's argv, stdin and environment reach the script, failures and timeouts are reported, and the built-in file.alert writes what Debian's file.alert writes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use keepmon::alert::{AlertJob, AlertOutcome, exec_argv, file_record, fire, history_line};
use keepmon::config::model::{
    Action, AlertLine, Forward, LbEdit, MailAction, Protocol as LbProtocol,
};
use keepmon::service::{AlertDecision, AlertKind, OpStatus, Source};

/// Debian's file.alert (package `mon`).
const DEBIAN_FILE_ALERT: &str = "/usr/lib/mon/alert.d/file.alert";

/// Every test finishes within this, or fails.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Alert timeout for scripts that are expected to finish.
const ALERT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- exec alerts

#[tokio::test]
async fn argv_stdin_and_env_reach_the_script() {
    bounded(async {
        let scripts = scripts();
        // (kind, source, flag, stdin, MON_ALERTTYPE)
        let cases: &[(AlertKind, Source, Option<&str>, &str, &str)] = &[
            (
                AlertKind::Failure,
                Source::Monitor,
                None,
                "www2 down\nwww2: connection refused\n",
                "failure",
            ),
            (
                AlertKind::Up,
                Source::Monitor,
                Some("-u"),
                "www2 down\nwww2: connection refused\n",
                "up",
            ),
            (
                AlertKind::Ack,
                Source::Monitor,
                Some("-a"),
                "alice: looking into it",
                "ack",
            ),
            (
                AlertKind::Disable,
                Source::Monitor,
                Some("-D"),
                "alice",
                "disable",
            ),
            (
                AlertKind::Failure,
                Source::Trap,
                Some("-T"),
                "trap summary\ntrap detail",
                "trap",
            ),
            (
                AlertKind::Failure,
                Source::TrapTimeout,
                Some("-O"),
                "trap timeout\ntrap timeout after 60s at Tue Nov 14 22:13:20 2023\n",
                "traptimeout",
            ),
            (AlertKind::Startup, Source::Monitor, None, "", "startup"),
        ];
        for &(kind, source, flag, stdin, alert_type) in cases {
            let out = Scratch::new(&format!("argv-{alert_type}"));
            let args = vec!["-x".to_string(), "two words".to_string()];
            let mut job = job(
                kind,
                source,
                stdin,
                Action::Exec {
                    path: scripts.dump.clone(),
                    args: args.clone(),
                },
            );
            job.env.push(("ALERT_DUMP_DIR".into(), out.path_string()));

            let outcome = fire(&job, ALERT_TIMEOUT).await;
            let context = format!("{alert_type}: {outcome:?}");
            assert!(outcome.ok, "{context}");
            assert_eq!(outcome.exit, Some(0), "{context}");
            assert_eq!(outcome.message, "", "{context}");

            let mut expected_argv = vec![
                "-s",
                "http",
                "-g",
                "web",
                "-h",
                "www1 www2",
                "-t",
                "1700000000",
            ];
            expected_argv.extend(flag);
            expected_argv.extend(["-x", "two words"]);
            assert_eq!(out.read("argv"), lines(&expected_argv), "{context}");

            let mut full_argv = vec![scripts.dump.display().to_string()];
            full_argv.extend(expected_argv.iter().map(|s| s.to_string()));
            assert_eq!(exec_argv(&job, &scripts.dump, &args), full_argv);

            assert_eq!(out.read("stdin"), stdin, "{context}");

            let expected_env = [
                format!("MON_ALERTTYPE={alert_type}"),
                "MON_DESCRIPTION=web front ends".to_string(),
                "MON_GROUP=web".to_string(),
                "MON_LAST_SUMMARY=www2 down".to_string(),
                "MON_OPSTATUS=0".to_string(),
                "MON_RETVAL=1".to_string(),
                "MON_SERVICE=http".to_string(),
                "SERVICE_VAR=from the service block".to_string(),
            ];
            assert_eq!(out.read("env"), lines(&expected_env), "{context}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_fixed_mon_variables_win_over_service_variables() {
    bounded(async {
        let scripts = scripts();
        let out = Scratch::new("override");
        let mut job = dump_job(scripts, &out);
        job.env.push(("MON_GROUP".into(), "spoofed".into()));
        job.description = None;
        let outcome = fire(&job, ALERT_TIMEOUT).await;
        assert!(outcome.ok, "{outcome:?}");
        let env = out.read("env");
        assert!(env.contains("MON_GROUP=web\n"), "{env}");
        assert!(!env.contains("spoofed"), "{env}");
        assert!(!env.contains("MON_DESCRIPTION"), "{env}");
    })
    .await;
}

#[tokio::test]
async fn non_zero_exit_is_recorded_and_not_ok() {
    bounded(async {
        let scripts = scripts();
        let out = Scratch::new("exit3");
        let mut job = dump_job(scripts, &out);
        job.env.push(("ALERT_EXIT".into(), "3".into()));
        job.env
            .push(("ALERT_STDERR".into(), "pager gateway said no".into()));
        let outcome = fire(&job, ALERT_TIMEOUT).await;
        assert!(!outcome.ok, "{outcome:?}");
        assert_eq!(outcome.exit, Some(3), "{outcome:?}");
        assert!(
            outcome.message.contains("exited with status 3"),
            "{outcome:?}"
        );
        assert!(
            outcome.message.contains("stderr: pager gateway said no"),
            "{outcome:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    bounded(async {
        let scripts = scripts();
        let out = Scratch::new("timeout");
        let mut job = job(
            AlertKind::Failure,
            Source::Monitor,
            "down\n",
            Action::Exec {
                path: scripts.sleeper.clone(),
                args: vec![],
            },
        );
        job.env.push(("ALERT_DUMP_DIR".into(), out.path_string()));

        let started = std::time::Instant::now();
        let outcome = fire(&job, Duration::from_secs(1)).await;
        let took = started.elapsed();
        assert!(!outcome.ok, "{outcome:?}");
        assert_eq!(outcome.exit, None, "{outcome:?}");
        assert!(outcome.message.contains("timed out"), "{outcome:?}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "took {took:?}"
        );

        for name in ["pid", "bgpid"] {
            let pid: i32 = out
                .read(name)
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{name} file: {e}"));
            assert!(
                gone_within(pid, Duration::from_secs(3)).await,
                "{name} {pid} still running"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_missing_or_unexecutable_script_is_a_clear_failure() {
    bounded(async {
        let scripts = scripts();
        let missing = scripts.dir.join("no-such.alert");
        for (path, expected) in [
            (&missing, "No such file"),
            (&scripts.not_executable, "Permission denied"),
        ] {
            let job = job(
                AlertKind::Failure,
                Source::Monitor,
                "down\n",
                Action::Exec {
                    path: path.clone(),
                    args: vec![],
                },
            );
            let outcome = fire(&job, ALERT_TIMEOUT).await;
            assert!(!outcome.ok, "{outcome:?}");
            assert_eq!(outcome.exit, None, "{outcome:?}");
            assert!(
                outcome.message.contains(&path.display().to_string()),
                "{outcome:?}"
            );
            assert!(outcome.message.contains(expected), "{outcome:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_script_that_ignores_stdin_and_floods_stdout_is_handled() {
    bounded(async {
        let scripts = scripts();
        let big_stdin = "x".repeat(1024 * 1024);
        let job = job(
            AlertKind::Failure,
            Source::Monitor,
            &big_stdin,
            Action::Exec {
                path: scripts.flood.clone(),
                args: vec![],
            },
        );
        let outcome = fire(&job, ALERT_TIMEOUT).await;
        assert!(!outcome.ok, "{}", outcome.message.len());
        assert_eq!(outcome.exit, Some(1));
        assert!(
            outcome.message.contains("[truncated at 65536 bytes]"),
            "message of {} bytes",
            outcome.message.len()
        );
        assert!(outcome.message.len() < 66 * 1024 + 200);
    })
    .await;
}

// ---------------------------------------------------------------- file.alert

#[tokio::test]
async fn file_alert_record_matches_debian_file_alert() {
    bounded(async {
        if !debian_file_alert_available() {
            return;
        }
        let out = Scratch::new("file-alert");
        let theirs = out.path.join("theirs.log");
        // Parent directories do not exist yet: the built-in creates them.
        let ours = out.path.join("a/b/ours.log");

        // (kind, source, stdin, time, description)
        let cases: &[(AlertKind, Source, &str, i64, Option<&str>)] = &[
            (
                AlertKind::Failure,
                Source::Monitor,
                "www2 down\nwww2: connection refused\nsecond line\n",
                1_700_000_000,
                Some("web front ends"),
            ),
            // A day of month below 10: perl pads it, file.alert's split drops the pad.
            (
                AlertKind::Up,
                Source::Monitor,
                "www2 down\nwww2: connection refused\n",
                1_699_142_400,
                None,
            ),
            (
                AlertKind::Failure,
                Source::Trap,
                "trap summary\ntrap detail without newline",
                1_699_142_400,
                Some("x"),
            ),
            (AlertKind::Startup, Source::Monitor, "", 0, None),
            (
                AlertKind::Ack,
                Source::Monitor,
                "alice: on it",
                1_234_567_890,
                None,
            ),
            (
                AlertKind::Failure,
                Source::TrapTimeout,
                "trap timeout\ntrap timeout after 60s at Sun Nov  5 00:00:00 2023\n",
                1_699_142_400,
                Some("desc with  two spaces"),
            ),
        ];
        for &(kind, source, stdin, time, description) in cases {
            let mut script_job = job(
                kind,
                source,
                stdin,
                Action::Exec {
                    path: PathBuf::from(DEBIAN_FILE_ALERT),
                    args: vec![theirs.display().to_string()],
                },
            );
            script_job.time = time;
            script_job.description = description.map(str::to_string);
            let mut builtin_job = script_job.clone();
            builtin_job.decision.alert =
                alert_line("file.alert", Action::File { path: ours.clone() });

            let outcome = fire(&script_job, ALERT_TIMEOUT).await;
            // file.alert's getopts does not know -a and -D: it warns and goes on.
            assert_eq!(outcome.exit, Some(0), "{outcome:?}");
            let outcome = fire(&builtin_job, ALERT_TIMEOUT).await;
            assert!(outcome.ok, "{outcome:?}");
            assert_eq!(outcome.exit, None);
        }
        let theirs = std::fs::read_to_string(&theirs).expect("read file.alert's file");
        let ours = std::fs::read_to_string(&ours).expect("read keepmon's file");
        assert!(theirs.lines().count() > 20, "{theirs}");
        assert_eq!(ours, theirs);
    })
    .await;
}

#[test]
fn file_record_format() {
    scripts();
    let mut job = job(
        AlertKind::Up,
        Source::Monitor,
        "www2 down\ndetail 1\ndetail 2",
        Action::File {
            path: PathBuf::from("/unused"),
        },
    );
    job.time = 1_700_000_000;
    let record = file_record(&job);
    let date = perl_localtime_words(1_700_000_000);
    assert_eq!(
        record,
        format!(
            "up web http 1700000000 ({date}) www2 down\nDESCR=web front ends\nOPSTATUS=0\ndetail 1\ndetail 2.\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_file_alerts_do_not_interleave() {
    bounded(async {
        let out = Scratch::new("concurrent");
        let path = out.path.join("alerts.log");
        let mut tasks = Vec::new();
        for n in 0..40 {
            let detail: String = (0..200).map(|i| format!("alert{n} line {i}\n")).collect();
            let job = job(
                AlertKind::Failure,
                Source::Monitor,
                &format!("alert{n} summary\n{detail}"),
                Action::File { path: path.clone() },
            );
            tasks.push(tokio::spawn(async move { fire(&job, ALERT_TIMEOUT).await }));
        }
        for task in tasks {
            let outcome = task.await.expect("alert task");
            assert!(outcome.ok, "{outcome:?}");
        }
        let text = std::fs::read_to_string(&path).expect("read alerts.log");
        let records: Vec<&str> = text.split_terminator("\n.\n").collect();
        assert_eq!(records.len(), 40);
        for record in records {
            let first = record.lines().next().unwrap_or_default();
            let marker = first
                .split(' ')
                .find(|w| w.starts_with("alert"))
                .unwrap_or_else(|| panic!("no marker in {first:?}"));
            let detail_lines: Vec<&str> = record.lines().skip(3).collect();
            assert_eq!(detail_lines.len(), 200);
            for line in detail_lines {
                assert!(
                    line.starts_with(&format!("{marker} ")),
                    "{line:?} in {marker}"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_file_alert_that_cannot_write_says_why() {
    bounded(async {
        let out = Scratch::new("unwritable");
        // A regular file where a directory is needed.
        std::fs::write(out.path.join("plain"), "x").expect("write");
        let path = out.path.join("plain/alerts.log");
        let job = job(
            AlertKind::Failure,
            Source::Monitor,
            "down\n",
            Action::File { path: path.clone() },
        );
        let outcome = fire(&job, ALERT_TIMEOUT).await;
        assert!(!outcome.ok);
        assert!(
            outcome.message.contains(&path.display().to_string()),
            "{outcome:?}"
        );
    })
    .await;
}

// ------------------------------------------------------- history and the rest

#[test]
fn history_lines_follow_mon() {
    let check = |job: &AlertJob, expected: &str| assert_eq!(history_line(job), expected);
    let exec = Action::Exec {
        path: PathBuf::from("/usr/lib/mon/alert.d/mail.alert"),
        args: vec!["ops@example.com".into(), "oncall@example.com".into()],
    };
    check(
        &job(
            AlertKind::Failure,
            Source::Monitor,
            "www2 down\ndetail\n",
            exec.clone(),
        ),
        "alert web http 1700000000 /usr/lib/mon/alert.d/mail.alert (ops@example.com oncall@example.com) www2 down",
    );
    check(
        &job(AlertKind::Up, Source::Monitor, "www2 down\n", exec.clone()),
        "upalert web http 1700000000 /usr/lib/mon/alert.d/mail.alert (ops@example.com oncall@example.com) www2 down",
    );
    check(
        &job(AlertKind::Failure, Source::Trap, "", exec.clone()),
        "trapalert web http 1700000000 /usr/lib/mon/alert.d/mail.alert (ops@example.com oncall@example.com) (NO SUMMARY)",
    );
    check(
        &job(
            AlertKind::Failure,
            Source::TrapTimeout,
            "trap timeout\n",
            exec.clone(),
        ),
        "traptimeoutalert web http 1700000000 /usr/lib/mon/alert.d/mail.alert (ops@example.com oncall@example.com) trap timeout",
    );
    check(
        &job(
            AlertKind::Ack,
            Source::Monitor,
            "alice: on it",
            exec.clone(),
        ),
        "ackalert web http 1700000000 /usr/lib/mon/alert.d/mail.alert (ops@example.com oncall@example.com) alice: on it",
    );
    check(
        &job(AlertKind::Disable, Source::Monitor, "alice", exec.clone()),
        "disablealert web http 1700000000 /usr/lib/mon/alert.d/mail.alert (ops@example.com oncall@example.com) alice",
    );
    check(
        &job(AlertKind::Startup, Source::Monitor, "", exec),
        "startupalert web http 1700000000 /usr/lib/mon/alert.d/mail.alert (ops@example.com oncall@example.com) (NO SUMMARY)",
    );

    let mut file = job(
        AlertKind::Failure,
        Source::Monitor,
        "www2 down\n",
        Action::File {
            path: PathBuf::from("/var/log/mon/web.log"),
        },
    );
    file.decision.alert.name = "file.alert".into();
    check(
        &file,
        "alert web http 1700000000 file.alert (/var/log/mon/web.log) www2 down",
    );

    let mut mail = job(
        AlertKind::Up,
        Source::Monitor,
        "www2 down\n",
        Action::Mail(MailAction {
            to: vec!["ops@example.com".into()],
            subject: None,
            from: Some("mon@example.com".into()),
        }),
    );
    mail.decision.alert.name = "mail.alert".into();
    check(
        &mail,
        "upalert web http 1700000000 mail.alert (-f mon@example.com ops@example.com) www2 down",
    );
}

#[tokio::test]
async fn actions_not_built_yet_say_so() {
    bounded(async {
        let lb = LbEdit {
            protocol: LbProtocol::Tcp,
            virtual_addr: "192.0.2.1:80".parse().expect("addr"),
            real_addr: "10.0.0.2".parse().expect("addr"),
            real_port: None,
            weight: Some(1),
            forward: Some(Forward::Nat),
        };
        let cases = [
            (
                Action::Mail(MailAction {
                    to: vec!["ops@example.com".into()],
                    subject: None,
                    from: None,
                }),
                "mail alerts are delivered through the daemon's outbox, not run directly",
            ),
            (
                Action::Lb(lb),
                "load-balancer edits are applied by the daemon's table, not run directly",
            ),
        ];
        for (action, expected) in cases {
            let job = job(AlertKind::Failure, Source::Monitor, "down\n", action);
            let outcome: AlertOutcome = fire(&job, ALERT_TIMEOUT).await;
            assert!(!outcome.ok);
            assert_eq!(outcome.exit, None);
            assert_eq!(outcome.message, expected);
        }
    })
    .await;
}

// ---------------------------------------------------------------- helpers

async fn bounded(test: impl Future<Output = ()>) {
    // Write the scripts before this test starts any process (see `Scripts`).
    scripts();
    if tokio::time::timeout(TEST_LIMIT, test).await.is_err() {
        panic!("test did not finish within {TEST_LIMIT:?}");
    }
}

fn alert_line(name: &str, action: Action) -> AlertLine {
    AlertLine {
        name: name.to_string(),
        exit: None,
        action,
    }
}

fn job(kind: AlertKind, source: Source, stdin: &str, action: Action) -> AlertJob {
    AlertJob {
        group: "web".into(),
        service: "http".into(),
        decision: AlertDecision {
            period: "wd {Sun-Sat}".into(),
            kind,
            source,
            alert: alert_line("test.alert", action),
            exit: 1,
            stdin: stdin.to_string(),
            counts: true,
        },
        hosts: vec!["www1".into(), "www2".into()],
        time: 1_700_000_000,
        description: Some("web front ends".into()),
        opstatus: OpStatus::Fail,
        env: vec![
            ("SERVICE_VAR".into(), "from the service block".into()),
            ("MON_LAST_SUMMARY".into(), "www2 down".into()),
        ],
        summary: "www2 down".into(),
        detail: "www2: connection refused\n".into(),
        lua: Default::default(),
    }
}

fn dump_job(scripts: &Scripts, out: &Scratch) -> AlertJob {
    let mut job = job(
        AlertKind::Failure,
        Source::Monitor,
        "down\n",
        Action::Exec {
            path: scripts.dump.clone(),
            args: vec![],
        },
    );
    job.env.push(("ALERT_DUMP_DIR".into(), out.path_string()));
    job
}

fn lines(words: &[impl AsRef<str>]) -> String {
    words.iter().map(|w| format!("{}\n", w.as_ref())).collect()
}

fn debian_file_alert_available() -> bool {
    let perl = Path::new("/usr/bin/perl").exists();
    if perl && Path::new(DEBIAN_FILE_ALERT).exists() {
        return true;
    }
    eprintln!(
        "!!! NOT RUN: file_alert_record_matches_debian_file_alert needs perl and {DEBIAN_FILE_ALERT} \
         (Debian package mon)"
    );
    assert!(
        std::env::var("KEEPMON_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
        "KEEPMON_REQUIRE_PRIVILEGED=1 but {DEBIAN_FILE_ALERT} or perl is missing"
    );
    false
}

/// perl's `localtime` words as file.alert prints them, from perl itself.
fn perl_localtime_words(time: i64) -> String {
    let output = std::process::Command::new("perl")
        .args([
            "-e",
            "print join(' ', (split /\\s+/, localtime($ARGV[0]))[0..3])",
        ])
        .arg(time.to_string())
        .output()
        .expect("run perl");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// True once `pid` no longer runs (gone, or a zombie nobody has reaped yet).
async fn gone_within(pid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let after_name = stat.rsplit_once(')')?.1.to_string();
                after_name.split_whitespace().next().map(str::to_string)
            });
        match state.as_deref() {
            None | Some("Z") | Some("X") => return true,
            Some(_) if tokio::time::Instant::now() >= deadline => return false,
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The test scripts, written once before any test starts a process, so no
/// script is still open for writing in a forked child when it is executed
/// (which fails with ETXTBSY).
struct Scripts {
    dir: PathBuf,
    dump: PathBuf,
    sleeper: PathBuf,
    flood: PathBuf,
    not_executable: PathBuf,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_script_dirs(root);
        let dir = root.join(format!("alerts-scripts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create script dir");
        let write = |name: &str, body: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.join(name);
            std::fs::write(&path, body).expect("write script");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .expect("chmod script");
            path
        };
        let dump = write(
            "dump.alert",
            r#"#!/bin/sh
dir="$ALERT_DUMP_DIR"
for a in "$@"; do printf '%s\n' "$a"; done > "$dir/argv"
cat > "$dir/stdin"
env | grep -E '^(MON_|SERVICE_VAR=)' | sort > "$dir/env"
if [ -n "$ALERT_STDERR" ]; then echo "$ALERT_STDERR" >&2; fi
exit "${ALERT_EXIT:-0}"
"#,
            0o755,
        );
        let sleeper = write(
            "sleep.alert",
            r#"#!/bin/sh
echo $$ > "$ALERT_DUMP_DIR/pid"
sleep 60 &
echo $! > "$ALERT_DUMP_DIR/bgpid"
sleep 60
"#,
            0o755,
        );
        let flood = write(
            "flood.alert",
            "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' y\nexit 1\n",
            0o755,
        );
        let not_executable = write("plain.alert", "#!/bin/sh\nexit 0\n", 0o644);
        Scripts {
            dir,
            dump,
            sleeper,
            flood,
            not_executable,
        }
    })
}

/// Script directories of earlier runs whose test process is gone. Each run
/// writes its own (a run must never rewrite a script another run executes).
fn remove_stale_script_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("alerts-scripts-") else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A per-test directory under cargo's test scratch space, removed afterwards.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("alerts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    fn path_string(&self) -> String {
        self.path.display().to_string()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
