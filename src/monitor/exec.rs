//! mon.d monitor scripts, run as mon runs them: argv without a shell, stdin `/dev/null`, stderr merged into stdout in order, first line = summary; bounded by a hard timeout that kills the whole process group.
//!
//! Differences from mon, on purpose: a run that exceeds its timeout is
//! killed (mon has no timeout); a script killed by a signal is a failure
//! with exit `128 + signal` (mon reads it as exit 0, success); output beyond
//! [`OUTPUT_CAP`] is dropped (mon buffers without limit).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{EXIT_CANNOT_RUN, EXIT_NOT_FOUND, OUTPUT_CAP, RunOutput, show_duration};

/// How long to keep reading after the script exited, for output still in
/// the pipe. A background child that keeps the pipe open is not waited for.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// How long to wait for a killed script to be reaped.
const REAP_AFTER_KILL: Duration = Duration::from_secs(5);

/// One script invocation: `path args...` (the hosts are already in `args`).
pub(crate) struct Script<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub timeout: Duration,
    /// Where the running script's process id is published (mon's `list pids`).
    pub pid: Option<&'a AtomicU32>,
    /// Run with this uid and gid and no supplementary groups (keepalived's
    /// script user); None: as the daemon.
    pub run_as: Option<&'a crate::config::model::RunAs>,
}

pub(crate) async fn run(script: &Script<'_>, started: Instant) -> RunOutput {
    let deadline = started + script.timeout;
    let (mut child, reader) = match spawn(script) {
        Ok(spawned) => spawned,
        Err(error) => return spawn_failure(script, &error, started),
    };
    // Kills the whole group if this future is dropped (daemon shutdown)
    // before the script is reaped. Declared after `child` so it drops
    // first, while the group leader's pid cannot have been reused.
    let mut group = GroupKiller::new(&child);

    let mut output = Output::default();
    let finished = tokio::time::timeout_at(
        deadline,
        read_and_wait(&mut child, reader, &mut output, deadline),
    )
    .await;

    let status = match finished {
        Ok(Ok(status)) => {
            group.disarm();
            status
        }
        Ok(Err(error)) => {
            warn!(monitor = script.name, %error, "waiting for monitor failed");
            group.kill();
            reap(&mut child).await;
            group.disarm();
            return failure(
                script,
                1,
                format!("monitor {}: wait failed: {error}", script.name),
                output,
                started,
            );
        }
        Err(_) => {
            warn!(
                monitor = script.name,
                timeout = %show_duration(script.timeout),
                "monitor timed out; killing its process group"
            );
            group.kill();
            reap(&mut child).await;
            group.disarm();
            let summary = format!(
                "monitor {} timed out after {} and was killed",
                script.name,
                show_duration(script.timeout)
            );
            return RunOutput {
                timed_out: true,
                ..failure(
                    script,
                    128 + Signal::SIGKILL as i32,
                    summary,
                    output,
                    started,
                )
            };
        }
    };

    if let Some(signal) = status.signal() {
        let name = Signal::try_from(signal)
            .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string());
        let summary = format!("monitor {} killed by {name}", script.name);
        return failure(script, 128 + signal, summary, output, started);
    }
    let exit = status.code().unwrap_or(1);
    let text = output.text();
    let (summary, detail) = match text.split_once('\n') {
        Some((summary, detail)) => (summary.to_string(), detail.to_string()),
        None => (text, String::new()),
    };
    debug!(monitor = script.name, exit, "monitor finished");
    RunOutput {
        exit,
        summary,
        detail,
        hosts: Vec::new(),
        timed_out: false,
        duration: started.elapsed(),
        config_error: false,
    }
}

fn spawn(script: &Script<'_>) -> io::Result<(Child, pipe::Receiver)> {
    // One pipe is both stdout and stderr, so the two interleave in the
    // order they were written, as mon's dup of stderr onto stdout does.
    let (reader, writer) = io::pipe()?;
    let stderr = writer.try_clone()?;
    let mut command = Command::new(script.path);
    command
        .args(script.args)
        // mon's variables and the service's own, over a small allow-list of
        // the daemon's environment (never its secrets).
        .env_clear()
        .envs(crate::childenv::from_daemon())
        .envs(script.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = script.run_as {
        // std sets the groups to none, then the gid, then the uid.
        command.uid(user.uid).gid(user.gid);
    }
    let child = command.spawn()?;
    if let (Some(cell), Some(pid)) = (script.pid, child.id()) {
        cell.store(pid, Ordering::Relaxed);
    }
    // Drop our copies of the write end now, or EOF never comes.
    drop(command);
    let reader = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    Ok((child, reader))
}

/// Read output while waiting for the script; after it exits, drain what is
/// left in the pipe for at most [`DRAIN_AFTER_EXIT`].
async fn read_and_wait(
    child: &mut Child,
    mut reader: pipe::Receiver,
    output: &mut Output,
    deadline: Instant,
) -> io::Result<ExitStatus> {
    let mut chunk = vec![0u8; 16 * 1024];
    let mut exited: Option<ExitStatus> = None;
    let mut drain_until = deadline;
    let mut open = true;
    while open {
        tokio::select! {
            read = reader.read(&mut chunk) => match read {
                Ok(0) => open = false,
                Ok(n) => output.push(&chunk[..n]),
                Err(error) => {
                    debug!(%error, "reading monitor output failed");
                    open = false;
                }
            },
            status = child.wait(), if exited.is_none() => {
                exited = Some(status?);
                drain_until = Instant::now() + DRAIN_AFTER_EXIT;
            }
            _ = tokio::time::sleep_until(drain_until), if exited.is_some() => open = false,
        }
    }
    match exited {
        Some(status) => Ok(status),
        None => child.wait().await,
    }
}

async fn reap(child: &mut Child) {
    if tokio::time::timeout(REAP_AFTER_KILL, child.wait())
        .await
        .is_err()
    {
        warn!(pid = ?child.id(), "killed monitor did not exit; leaving it to be reaped later");
    }
}

fn spawn_failure(script: &Script<'_>, error: &io::Error, started: Instant) -> RunOutput {
    let (exit, summary) = if error.kind() == io::ErrorKind::NotFound {
        (EXIT_NOT_FOUND, format!("monitor {} not found", script.name))
    } else {
        (
            EXIT_CANNOT_RUN,
            format!(
                "monitor {} could not be run ({}): {error}",
                script.name,
                script.path.display()
            ),
        )
    };
    warn!(monitor = script.name, path = %script.path.display(), %error, "cannot start monitor");
    RunOutput::config_error(exit, summary, started)
}

/// A run that did not end with an exit code: our summary, and the
/// script's whole output (first line included) as the detail.
fn failure(
    script: &Script<'_>,
    exit: i32,
    summary: String,
    output: Output,
    started: Instant,
) -> RunOutput {
    debug!(monitor = script.name, exit, %summary, "monitor failed");
    RunOutput {
        exit,
        summary,
        detail: output.text(),
        hosts: Vec::new(),
        timed_out: false,
        duration: started.elapsed(),
        config_error: false,
    }
}

/// Output kept up to [`OUTPUT_CAP`]; the rest is counted and dropped.
#[derive(Default)]
struct Output {
    kept: Vec<u8>,
    dropped: usize,
}

impl Output {
    fn push(&mut self, bytes: &[u8]) {
        let room = OUTPUT_CAP - self.kept.len();
        let keep = bytes.len().min(room);
        self.kept.extend_from_slice(&bytes[..keep]);
        self.dropped += bytes.len() - keep;
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.kept).into_owned();
        if self.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[keepmon: output truncated: {} more bytes dropped after {OUTPUT_CAP}]\n",
                self.dropped
            ));
        }
        text
    }
}

/// SIGKILLs the script's process group (the script and everything it
/// started) unless disarmed; disarmed once the leader has been reaped.
struct GroupKiller {
    pgid: Option<Pid>,
}

impl GroupKiller {
    fn new(child: &Child) -> GroupKiller {
        GroupKiller {
            // The child was spawned with process_group(0): its pid is its group id.
            pgid: child
                .id()
                .and_then(|pid| i32::try_from(pid).ok())
                .map(Pid::from_raw),
        }
    }

    fn kill(&mut self) {
        if let Some(pgid) = self.pgid
            && let Err(error) = killpg(pgid, Signal::SIGKILL)
        {
            debug!(%pgid, %error, "killpg failed (group already gone?)");
        }
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_and_says_so() {
        let mut output = Output::default();
        output.push(&vec![b'a'; OUTPUT_CAP - 1]);
        output.push(b"bcd");
        assert_eq!(output.kept.len(), OUTPUT_CAP);
        assert_eq!(output.dropped, 2);
        let text = output.text();
        assert!(
            text.ends_with("\n[keepmon: output truncated: 2 more bytes dropped after 1048576]\n"),
            "{}",
            &text[text.len() - 80..]
        );
    }
}
