//! Persistence in `statedir`: service state, disabled entries and history survive restarts and kill -9 (atomic write-and-rename).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// The key of a service in the persisted maps.
pub fn service_key(group: &str, service: &str) -> String {
    format!("{group}/{service}")
}

/// What `load` found.
#[derive(Debug)]
pub enum Loaded {
    Fresh,
    Restored(Box<Persisted>),
    /// The file was unreadable; it was moved aside to this path and keepmon starts fresh.
    Corrupt {
        moved_to: PathBuf,
        error: String,
    },
}

/// Read the state file. A missing file is a fresh start; a corrupt one is
/// moved aside (never deleted) so no data is lost.
pub fn load(statedir: &Path) -> io::Result<Loaded> {
    let path = statedir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Fresh),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice::<Persisted>(&bytes) {
        Ok(p) => Ok(Loaded::Restored(Box::new(p))),
        Err(e) => {
            let moved_to = statedir.join(format!("{STATE_FILE}.corrupt"));
            std::fs::rename(&path, &moved_to)?;
            Ok(Loaded::Corrupt {
                moved_to,
                error: e.to_string(),
            })
        }
    }
}

/// Write the state atomically: a temporary file, fsync, rename over the old
/// one, fsync the directory. A crash at any point leaves either the old or
/// the new file, never a torn one.
pub fn save(statedir: &Path, state: &Persisted) -> io::Result<()> {
    std::fs::create_dir_all(statedir)?;
    let json =
        serde_json::to_vec(state).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    write_atomic(&statedir.join(STATE_FILE), &json)?;
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
            Loaded::Corrupt { moved_to, .. } => {
                assert_eq!(std::fs::read(&moved_to).unwrap(), b"{\"services\": tru");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(load(&dir).unwrap(), Loaded::Fresh));
        std::fs::remove_dir_all(dir).ok();
    }
}
