//! Runs an alert script as mon does (no shell; mon's argv, stdin and environment), capturing its output and killing its whole process group on timeout; never retries.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::time::Instant;

use super::{AlertJob, AlertOutcome, OUTPUT_CAP, alert_env, exec_argv};

/// How long output is still read after the script exited, when something it
/// left running in the background keeps its stdout or stderr open.
const LINGER: Duration = Duration::from_millis(250);

/// How long to wait for a killed script to be reaped before leaving it to
/// tokio's orphan reaper (a process stuck in the kernel ignores SIGKILL).
const REAP_GRACE: Duration = Duration::from_secs(2);

pub(super) async fn run(
    job: &AlertJob,
    path: &Path,
    args: &[String],
    timeout: Duration,
) -> AlertOutcome {
    run_argv(job, path, exec_argv(job, path, args), None, timeout).await
}

/// Run `path` with `argv` (program first) and the alert's stdin and
/// environment: [`run`] with mon's argv, or a keepalived notify script's
/// (as its script user, `run_as`).
pub(super) async fn run_argv(
    job: &AlertJob,
    path: &Path,
    argv: Vec<String>,
    run_as: Option<&crate::config::model::RunAs>,
    timeout: Duration,
) -> AlertOutcome {
    let started = Instant::now();
    let deadline = started + timeout;

    let mut command = Command::new(path);
    command.args(argv.iter().skip(1));
    // The alert sees the MON_* values of this alert only and a small
    // allow-list of the daemon's environment (never its secrets).
    command
        .env_clear()
        .envs(crate::childenv::from_daemon())
        .envs(alert_env(job))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills whatever it started too.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = run_as {
        command.uid(user.uid).gid(user.gid);
    }

    let mut child = match command.spawn() {
        Ok(child) => child,
        // exec(2) failed in the child (std reports it through a CLOEXEC pipe
        // and reaps the child): nothing is left running.
        Err(error) => {
            return AlertOutcome {
                ok: false,
                exit: None,
                message: format!("could not run alert {}: {error}", path.display()),
                duration: started.elapsed(),
            };
        }
    };
    // The child is the leader of its new process group; pid == pgid. `id()`
    // is `Some` until the child has been reaped, which has not happened yet.
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);

    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut out = Capture::default();
    let mut err = Capture::default();

    let finished = {
        let io = async {
            tokio::join!(
                feed(stdin, job.decision.stdin.as_bytes()),
                collect(stdout, &mut out),
                collect(stderr, &mut err),
            );
        };
        tokio::pin!(io);
        let mut io_done = false;
        let waited = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                status = child.wait() => status,
                () = &mut io => {
                    io_done = true;
                    child.wait().await
                }
            }
        })
        .await;
        match waited {
            Ok(status) => {
                if !io_done {
                    // Something the script started may hold the pipes open;
                    // read what is there, then stop listening.
                    let until = deadline.min(Instant::now() + LINGER);
                    let _ = tokio::time::timeout_at(until, &mut io).await;
                }
                Finished::Exited(status)
            }
            Err(_elapsed) => Finished::TimedOut,
        }
    };

    let outcome = match finished {
        Finished::Exited(Ok(status)) => exited(path, status),
        Finished::Exited(Err(error)) => (
            None,
            Some(format!(
                "could not wait for alert {}: {error}",
                path.display()
            )),
        ),
        Finished::TimedOut => {
            if let Some(group) = group {
                // ESRCH (the group is already empty) is fine.
                let _ = killpg(group, Signal::SIGKILL);
            }
            let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
            (
                None,
                Some(format!(
                    "alert {} timed out after {timeout:?}; killed its process group",
                    path.display()
                )),
            )
        }
    };
    let (exit, failure) = outcome;
    AlertOutcome {
        ok: failure.is_none(),
        exit,
        message: failure
            .map(|message| with_output(message, &out, &err))
            .unwrap_or_default(),
        duration: started.elapsed(),
    }
}

enum Finished {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
}

/// The exit status and, unless it is 0, what went wrong.
fn exited(path: &Path, status: ExitStatus) -> (Option<i32>, Option<String>) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => (Some(0), None),
        (Some(code), _) => (
            Some(code),
            Some(format!(
                "alert {} exited with status {code}",
                path.display()
            )),
        ),
        (None, Some(signal)) => (
            None,
            Some(format!(
                "alert {} killed by signal {signal}",
                path.display()
            )),
        ),
        (None, None) => (
            None,
            Some(format!(
                "alert {} ended without an exit status",
                path.display()
            )),
        ),
    }
}

/// Write the alert's stdin and close it. An alert that does not read its
/// stdin (EPIPE) is not an error: mon ignores that too.
async fn feed(stdin: Option<ChildStdin>, input: &[u8]) {
    if let Some(mut stdin) = stdin {
        let _ = stdin.write_all(input).await;
    }
}

#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Keep the first [`OUTPUT_CAP`] bytes and drain the rest, so a chatty alert
/// never blocks on a full pipe.
async fn collect(reader: Option<impl AsyncRead + Unpin>, capture: &mut Capture) {
    let Some(mut reader) = reader else {
        return;
    };
    let mut buffer = [0u8; 8192];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(capture.bytes.len());
                capture.bytes.extend_from_slice(&buffer[..n.min(room)]);
                capture.truncated |= n > room;
            }
        }
    }
}

fn with_output(mut message: String, out: &Capture, err: &Capture) -> String {
    for (name, capture) in [("stdout", out), ("stderr", err)] {
        let text = String::from_utf8_lossy(&capture.bytes);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        message.push_str(&format!("; {name}: {text}"));
        if capture.truncated {
            message.push_str(&format!(" [truncated at {OUTPUT_CAP} bytes]"));
        }
    }
    message
}
