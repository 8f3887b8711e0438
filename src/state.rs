//! Persistence in `statedir`: service state, disabled entries and history survive restarts and kill -9 (atomic write-and-rename); the writer task keeps these file writes off the event loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::lb::table::RealSetting;
use crate::service::ServiceState;

/// The state file inside `statedir`.
pub const STATE_FILE: &str = "keepmon-state.json";
/// mon's `disabled` file, kept in mon's format for tools that read it.
pub const DISABLED_FILE: &str = "disabled";

/// Everything keepmon persists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// Keyed by `group/service`.
    pub services: BTreeMap<String, ServiceState>,
    pub disabled: Disabled,
    pub alert_history: VecDeque<String>,
    pub failure_history: VecDeque<String>,
    /// Real servers' admin states and weights changed at run time
    /// (`lb drain|maint|ready|weight`), restored at start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lb: Vec<RealSetting>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    pub watches: BTreeSet<String>,
    /// `group/service`
    pub services: BTreeSet<String>,
    pub hosts: BTreeSet<String>,
}

impl Disabled {
    /// mon's `disabled` file lines.
    pub fn to_mon_format(&self) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            out.push_str(&format!("disable host {h}\n"));
        }
        for w in &self.watches {
            out.push_str(&format!("disable watch {w}\n"));
        }
        for s in &self.services {
            if let Some((g, svc)) = s.split_once('/') {
                out.push_str(&format!("disable service {g} {svc}\n"));
            }
        }
        out
    }
}

impl Disabled {
    /// Read mon's `disabled` file lines back (unknown lines are skipped).
    pub fn from_mon_format(text: &str) -> Disabled {
        let mut disabled = Disabled::default();
        for line in text.lines() {
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["disable", "host", host] => {
                    disabled.hosts.insert(host.to_string());
                }
                ["disable", "watch", watch] => {
                    disabled.watches.insert(watch.to_string());
                }
                ["disable", "service", group, service] => {
                    disabled.services.insert(service_key(group, service));
                }
                _ => {}
            }
        }
        disabled
    }
}

/// The key of a service in the persisted maps.
pub fn service_key(group: &str, service: &str) -> String {
    format!("{group}/{service}")
}

/// The copy of the state file before the newest save: what `load` falls
/// back to when the state file is unreadable.
pub const PREVIOUS_FILE: &str = "keepmon-state.json.prev";

/// What `load` found.
#[derive(Debug)]
pub enum Loaded {
    Fresh,
    Restored(Box<Persisted>),
    /// The state file was unreadable; it was moved aside to `moved_to` (a
    /// timestamped `.corrupt` file, never deleted) and `recovered` holds
    /// what could be saved, as `from` says.
    Corrupt {
        moved_to: PathBuf,
        error: String,
        recovered: Box<Persisted>,
        from: Recovery,
    },
}

/// Where the state came from when the state file was unreadable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The copy kept by the save before the last one, with the disabled
    /// entries of mon's `disabled` file.
    PreviousCopy,
    /// Only mon's `disabled` file (disabled hosts, watches and services).
    DisabledFile,
    /// Nothing: a fresh start.
    Nothing,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Recovery::PreviousCopy => "the previous copy and mon's disabled file",
            Recovery::DisabledFile => "mon's disabled file only",
            Recovery::Nothing => "nothing",
        })
    }
}

/// Read the state file. A missing file is a fresh start (or, after a crash
/// between the two renames of a save, the previous copy). A corrupt one is
/// moved aside to a timestamped `.corrupt` file and the previous copy is
/// read instead; failing that, mon's `disabled` file keeps the disabled
/// entries.
pub fn load(statedir: &Path) -> io::Result<Loaded> {
    let path = statedir.join(STATE_FILE);
    let previous = statedir.join(PREVIOUS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(match read_state(&previous) {
                Some(p) => Loaded::Restored(Box::new(p)),
                None => Loaded::Fresh,
            });
        }
        Err(e) => return Err(e),
    };
    let error = match serde_json::from_slice::<Persisted>(&bytes) {
        Ok(p) => return Ok(Loaded::Restored(Box::new(p))),
        Err(e) => e.to_string(),
    };
    let moved_to = corrupt_name(statedir);
    std::fs::rename(&path, &moved_to)?;
    // mon's disabled file is written with every save, so it is as new as
    // the lost state file: it wins over the previous copy's entries.
    let disabled = std::fs::read_to_string(statedir.join(DISABLED_FILE))
        .ok()
        .map(|text| Disabled::from_mon_format(&text));
    let (mut recovered, from) = match (read_state(&previous), &disabled) {
        (Some(p), _) => (p, Recovery::PreviousCopy),
        (None, Some(_)) => (Persisted::default(), Recovery::DisabledFile),
        (None, None) => (Persisted::default(), Recovery::Nothing),
    };
    if let Some(disabled) = disabled {
        recovered.disabled = disabled;
    }
    Ok(Loaded::Corrupt {
        moved_to,
        error,
        recovered: Box::new(recovered),
        from,
    })
}

/// A readable state file at `path`, or None.
fn read_state(path: &Path) -> Option<Persisted> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `keepmon-state.json.corrupt.UNIXTIME` (with `.N` when that exists).
fn corrupt_name(statedir: &Path) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = statedir.join(format!("{STATE_FILE}.corrupt.{now}"));
    let mut candidate = base.clone();
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}.{n}", base.display()));
        n += 1;
    }
    candidate
}

/// Write the state atomically: a temporary file, fsync, rename over the old
/// one, fsync the directory. A crash at any point leaves either the old or
/// the new file, never a torn one. The old file is kept as
/// [`PREVIOUS_FILE`] first, the fallback should the new one ever be
/// unreadable.
pub fn save(statedir: &Path, state: &Persisted) -> io::Result<()> {
    std::fs::create_dir_all(statedir)?;
    let json =
        serde_json::to_vec(state).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let path = statedir.join(STATE_FILE);
    match std::fs::rename(&path, statedir.join(PREVIOUS_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    write_atomic(&path, &json)?;
    write_atomic(
        &statedir.join(DISABLED_FILE),
        state.disabled.to_mon_format().as_bytes(),
    )
}

/// Replace `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().ok();
    }
    Ok(())
}

/// Append one line to a log file (downtime log, historic file), creating it.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}

/// One piece of file work for the writer task.
enum Job {
    /// Replace the state file (and mon's `disabled` file) in `statedir`.
    Save {
        statedir: PathBuf,
        state: Box<Persisted>,
        done: Option<oneshot::Sender<io::Result<()>>>,
    },
    /// Append a line (downtime log, historic file).
    Append { path: PathBuf, line: String },
    /// Read the state file back (mon's `loadstate`).
    Load {
        statedir: PathBuf,
        done: oneshot::Sender<io::Result<Loaded>>,
    },
    /// Read a whole text file; NotFound comes back as `Ok(None)`.
    Read {
        path: PathBuf,
        done: oneshot::Sender<io::Result<Option<String>>>,
    },
    /// Other file work (a letter or an Alertmanager change written to its
    /// spool), in order with the saves: a save sent after it finds it done.
    Run(Box<dyn FnOnce() + Send>),
}

/// The event loop's handle on the writer task. Jobs run in the order they
/// were sent, on a blocking thread; of several saves waiting at once only
/// the newest is written (each waiter hears that write's result). A read
/// sees every append sent before it.
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    task: tokio::task::JoinHandle<()>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    pub fn start() -> Writer {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = failed.clone();
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(job) = rx.try_recv() {
                    batch.push(job);
                }
                let flag = flag.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || run_batch(batch, &flag)).await {
                    tracing::error!(error = %e, "state writer thread failed");
                }
            }
        });
        Writer { jobs, task, failed }
    }

    /// Save `state` in `statedir` soon; failures are logged and reported
    /// by [`Writer::take_failure`].
    pub fn save(&self, statedir: &Path, state: Persisted) {
        self.send(Job::Save {
            statedir: statedir.to_path_buf(),
            state: Box::new(state),
            done: None,
        });
    }

    /// Save and hear when the state is on disk.
    pub fn save_and_confirm(
        &self,
        statedir: &Path,
        state: Persisted,
    ) -> oneshot::Receiver<io::Result<()>> {
        let (done, wait) = oneshot::channel();
        self.send(Job::Save {
            statedir: statedir.to_path_buf(),
            state: Box::new(state),
            done: Some(done),
        });
        wait
    }

    pub fn append(&self, path: &Path, line: String) {
        self.send(Job::Append {
            path: path.to_path_buf(),
            line,
        });
    }

    /// Read a text file after every append sent before; `None` when it does
    /// not exist.
    pub fn read(&self, path: &Path) -> oneshot::Receiver<io::Result<Option<String>>> {
        let (done, wait) = oneshot::channel();
        self.send(Job::Read {
            path: path.to_path_buf(),
            done,
        });
        wait
    }

    /// Read the state file after every save sent before.
    pub fn load(&self, statedir: &Path) -> oneshot::Receiver<io::Result<Loaded>> {
        let (done, wait) = oneshot::channel();
        self.send(Job::Load {
            statedir: statedir.to_path_buf(),
            done,
        });
        wait
    }

    /// A handle for other parts to run their file work on this writer, in
    /// order with the saves. It does not keep the writer alive.
    pub fn ordered(&self) -> Ordered {
        Ordered {
            jobs: self.jobs.downgrade(),
        }
    }

    /// True once after a save failed (the caller saves again later).
    pub fn take_failure(&self) -> bool {
        self.failed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Finish every job sent so far, then stop.
    pub async fn close(self) {
        drop(self.jobs);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "state writer task failed");
        }
    }

    fn send(&self, job: Job) {
        // The task lives until `close` consumes the handle.
        let _ = self.jobs.send(job);
    }
}

/// File work handed to the [`Writer`] by the parts that own spools (the
/// mail outbox, the Alertmanager queue), so their writes and fsyncs happen
/// off the event loop and before any state save sent after them.
#[derive(Clone)]
pub struct Ordered {
    jobs: mpsc::WeakUnboundedSender<Job>,
}

impl Ordered {
    /// Run `work` on the writer's thread after every job sent before it.
    /// Once the writer has closed (shutdown), `work` runs here and now.
    pub fn run(&self, work: impl FnOnce() + Send + 'static) {
        let work: Box<dyn FnOnce() + Send> = Box::new(work);
        let Some(jobs) = self.jobs.upgrade() else {
            work();
            return;
        };
        if let Err(mpsc::error::SendError(Job::Run(work))) = jobs.send(Job::Run(work)) {
            work();
        }
    }
}

fn run_batch(batch: Vec<Job>, failed: &std::sync::atomic::AtomicBool) {
    let last_save = batch.iter().rposition(|j| matches!(j, Job::Save { .. }));
    let mut waiting: Vec<oneshot::Sender<io::Result<()>>> = Vec::new();
    for (i, job) in batch.into_iter().enumerate() {
        match job {
            Job::Save {
                statedir,
                state,
                done,
            } => {
                waiting.extend(done);
                if Some(i) != last_save {
                    continue; // a newer snapshot follows in this batch
                }
                let result = save(&statedir, &state);
                if let Err(e) = &result {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, statedir = %statedir.display(), "cannot save state");
                }
                for done in waiting.drain(..) {
                    let copy = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    let _ = done.send(copy);
                }
            }
            Job::Append { path, line } => {
                if let Err(e) = append_line(&path, &line) {
                    tracing::warn!(error = %e, path = %path.display(), "cannot append to the log file");
                }
            }
            Job::Load { statedir, done } => {
                let _ = done.send(load(&statedir));
            }
            Job::Read { path, done } => {
                let result = match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Some(text)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                };
                let _ = done.send(result);
            }
            Job::Run(work) => work(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keepmon-state-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = temp("rt");
        let mut p = Persisted::default();
        p.services
            .insert(service_key("g", "s"), ServiceState::default());
        p.disabled.hosts.insert("h1".into());
        p.disabled.services.insert(service_key("g", "s"));
        p.alert_history
            .push_back("failure g s 1 mail.alert () x".into());
        save(&dir, &p).unwrap();
        match load(&dir).unwrap() {
            Loaded::Restored(q) => assert_eq!(*q, p),
            other => panic!("{other:?}"),
        }
        let mon = std::fs::read_to_string(dir.join(DISABLED_FILE)).unwrap();
        assert_eq!(mon, "disable host h1\ndisable service g s\n");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn missing_is_fresh_and_corrupt_is_moved_aside() {
        let dir = temp("bad");
        assert!(matches!(load(&dir).unwrap(), Loaded::Fresh));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(STATE_FILE), b"{\"services\": tru").unwrap();
        match load(&dir).unwrap() {
            Loaded::Corrupt {
                moved_to,
                recovered,
                from,
                ..
            } => {
                assert_eq!(std::fs::read(&moved_to).unwrap(), b"{\"services\": tru");
                assert_eq!(*recovered, Persisted::default());
                assert_eq!(from, Recovery::Nothing);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(load(&dir).unwrap(), Loaded::Fresh));
        std::fs::remove_dir_all(dir).ok();
    }

    /// Regression (issue 19, finding 6): a corrupt state file lost acks and
    /// disabled entries (and alerts fired again). Now the previous copy is
    /// read, else mon's `disabled` file; every corrupt file is kept.
    #[test]
    fn a_corrupt_state_file_falls_back_to_the_previous_copy_then_the_disabled_file() {
        let dir = temp("fallback");
        let mut first = Persisted::default();
        first.disabled.hosts.insert("h1".into());
        first.disabled.watches.insert("w".into());
        first.disabled.services.insert(service_key("g", "s"));
        let acked = ServiceState {
            failure_count: 3,
            ..ServiceState::default()
        };
        first.services.insert(service_key("g", "s"), acked);
        let mut second = first.clone();
        second.alert_history.push_back("newest".into());
        second.disabled.hosts.insert("h2".into());
        save(&dir, &first).unwrap();
        save(&dir, &second).unwrap();
        std::fs::write(dir.join(STATE_FILE), b"\0\0garbage").unwrap();
        match load(&dir).unwrap() {
            Loaded::Corrupt {
                recovered, from, ..
            } => {
                assert_eq!(from, Recovery::PreviousCopy);
                assert_eq!(
                    *recovered,
                    Persisted {
                        disabled: second.disabled.clone(),
                        ..first.clone()
                    },
                    "the copy before the newest save, the newest disabled file"
                );
            }
            other => panic!("{other:?}"),
        }

        // The previous copy unreadable too: mon's disabled file still says
        // what was disabled.
        save(&dir, &second).unwrap();
        std::fs::write(dir.join(STATE_FILE), b"{").unwrap();
        std::fs::write(dir.join(PREVIOUS_FILE), b"{").unwrap();
        match load(&dir).unwrap() {
            Loaded::Corrupt {
                recovered, from, ..
            } => {
                assert_eq!(from, Recovery::DisabledFile);
                assert_eq!(recovered.disabled, second.disabled);
            }
            other => panic!("{other:?}"),
        }
        let corrupt = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt."))
            .count();
        assert_eq!(corrupt, 2, "each corrupt file is kept");

        // A crash between a save's two renames leaves only the previous copy.
        save(&dir, &second).unwrap();
        save(&dir, &second).unwrap();
        std::fs::remove_file(dir.join(STATE_FILE)).unwrap();
        assert!(matches!(load(&dir).unwrap(), Loaded::Restored(p) if *p == second));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn writer_saves_appends_and_reads_in_order() {
        let dir = temp("writer");
        let writer = Writer::start();
        let mut first = Persisted::default();
        first.alert_history.push_back("one".into());
        let mut second = first.clone();
        second.alert_history.push_back("two".into());
        writer.save(&dir, first);
        let confirmed = writer.save_and_confirm(&dir, second.clone());
        let log = dir.join("dt.log");
        writer.append(&log, "line 1".into());
        writer.append(&log, "line 2".into());
        let read = writer.read(&log);
        confirmed.await.unwrap().unwrap();
        assert_eq!(
            read.await.unwrap().unwrap().as_deref(),
            Some("line 1\nline 2\n")
        );
        assert!(
            writer
                .read(&dir.join("none"))
                .await
                .unwrap()
                .unwrap()
                .is_none(),
            "a missing file reads as None"
        );
        writer.close().await;
        match load(&dir).unwrap() {
            Loaded::Restored(p) => assert_eq!(*p, second, "the newest snapshot is on disk"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn writer_reports_a_failed_save() {
        let dir = temp("writer-fail");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let writer = Writer::start();
        let result = writer
            .save_and_confirm(&file.join("state"), Persisted::default())
            .await
            .unwrap();
        assert!(result.is_err());
        assert!(writer.take_failure());
        assert!(!writer.take_failure(), "reported once");
        writer.close().await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn ordered_work_runs_between_the_jobs_around_it() {
        let dir = temp("ordered");
        std::fs::create_dir_all(&dir).unwrap();
        let writer = Writer::start();
        let ordered = writer.ordered();
        let log = dir.join("order.log");
        writer.append(&log, "before".into());
        let (seen_tx, seen) = oneshot::channel();
        let work_log = log.clone();
        ordered.run(move || {
            let _ = seen_tx.send(std::fs::read_to_string(&work_log).ok());
            append_line(&work_log, "work").unwrap();
        });
        writer.append(&log, "after".into());
        let read = writer.read(&log);
        assert_eq!(
            seen.await.unwrap().as_deref(),
            Some("before\n"),
            "the work sees every job sent before it done"
        );
        assert_eq!(
            read.await.unwrap().unwrap().as_deref(),
            Some("before\nwork\nafter\n"),
            "and jobs sent after it wait for it"
        );
        writer.close().await;
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        ordered.run(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
        assert!(
            ran.load(std::sync::atomic::Ordering::Relaxed),
            "once the writer is closed the work runs in the caller"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
