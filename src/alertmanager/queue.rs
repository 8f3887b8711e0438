//! The Alertmanager queue in `statedir/alertmanager/`: one JSON file per queued change, written atomically before the alert counts as sent and removed only after Alertmanager accepted it; `firing.json`, the alerts still being re-sent; both crash-safe like the mail outbox.
//!
//! Delivery is at least once, in order per Alertmanager. The worker saves
//! the firing set after a change was accepted and only then removes the
//! change's file, so a crash in between posts the same change again —
//! harmless, since Alertmanager identifies alerts by their labels.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::alertmanager::{Change, FiringSet};
use crate::spool::{Spool, SpoolEntry, read_json};
use crate::state::write_atomic;

/// The queue directory inside `statedir`.
pub const QUEUE_DIR: &str = "alertmanager";
/// The firing alerts, inside the queue directory.
const FIRING_FILE: &str = "firing.json";
/// Changes Alertmanager refused (4xx), kept for the operator.
const REFUSED_DIR: &str = "refused";

/// One queued change for one Alertmanager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The file stem; sorts by acceptance time (`mail::outbox::new_id`).
    pub id: String,
    /// time(2) when keepmon accepted it.
    pub created: i64,
    /// The Alertmanager's base URL.
    pub url: String,
    /// `group/service`.
    pub scope: String,
    pub change: Change,
    pub resend_secs: u64,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
}

/// The queue directory.
#[derive(Clone, Debug)]
pub struct Queue {
    spool: Spool,
}

/// What [`Queue::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Queued changes, oldest first.
    pub pending: Vec<Entry>,
    /// The firing alerts per Alertmanager URL.
    pub firing: BTreeMap<String, FiringSet>,
    /// Files that could not be read (moved aside, never deleted).
    pub unreadable: Vec<String>,
}

impl SpoolEntry for Entry {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Queue {
    pub fn new(statedir: &Path) -> Queue {
        Queue {
            spool: Spool::new(statedir.join(QUEUE_DIR)),
        }
    }

    pub fn dir(&self) -> &Path {
        self.spool.dir()
    }

    /// Write (or rewrite) an entry atomically.
    pub fn store(&self, entry: &Entry) -> io::Result<()> {
        self.spool.store(entry)
    }

    /// Forget a delivered entry.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        self.spool.remove(id)
    }

    /// Move an entry Alertmanager refused to `refused/` (written there
    /// before it leaves the queue, so a crash keeps it somewhere).
    pub fn refuse(&self, entry: &Entry) -> io::Result<()> {
        self.spool.move_to(REFUSED_DIR, entry)
    }

    /// Save the firing alerts of every Alertmanager atomically.
    pub fn save_firing(&self, firing: &BTreeMap<String, FiringSet>) -> io::Result<()> {
        std::fs::create_dir_all(self.dir())?;
        let bytes = serde_json::to_vec_pretty(firing)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        write_atomic(&self.dir().join(FIRING_FILE), &bytes)
    }

    /// The queued changes (oldest first) and the firing set. Temporary
    /// files of an interrupted write are removed; unreadable files are
    /// moved to `unreadable/`.
    pub fn load(&self) -> io::Result<Loaded> {
        let mut firing = None;
        let mut unreadable = Vec::new();
        let loaded = self.spool.load::<Entry>(|name, path| {
            if name != FIRING_FILE {
                return Ok(false);
            }
            match read_json(path) {
                Ok(set) => firing = Some(set),
                Err(_) => unreadable.push(self.spool.set_aside(path, name)?),
            }
            Ok(true)
        })?;
        unreadable.extend(loaded.unreadable);
        Ok(Loaded {
            pending: loaded.entries,
            firing: firing.unwrap_or_default(),
            unreadable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::{Alert, Firing, Labels};

    fn entry(id: &str, change: Change) -> Entry {
        Entry {
            id: id.into(),
            created: 1,
            url: "http://127.0.0.1:9093".into(),
            scope: "web/http".into(),
            change,
            resend_secs: 60,
            attempts: 0,
        }
    }

    #[test]
    fn store_load_remove_refuse_and_firing() {
        let dir = std::env::temp_dir().join(format!("keepmon-amqueue-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let queue = Queue::new(&dir);
        assert!(queue.load().unwrap().pending.is_empty());
        let a = entry("0002", Change::Resolve { at: 5 });
        let b = entry(
            "0001",
            Change::Fire {
                alerts: vec![Alert {
                    labels: Labels::from([("host".to_string(), "a".to_string())]),
                    annotations: Labels::new(),
                    starts_at: 1,
                }],
            },
        );
        queue.store(&a).unwrap();
        queue.store(&b).unwrap();
        std::fs::write(queue.dir().join(".0003.json.tmp.1"), b"{").unwrap();
        std::fs::write(queue.dir().join("0004.json"), b"{").unwrap();
        let mut firing = BTreeMap::new();
        firing.insert(
            "http://127.0.0.1:9093".to_string(),
            FiringSet::from([(
                "host=\"a\"".to_string(),
                Firing {
                    scope: "web/http".into(),
                    alert: Alert {
                        labels: Labels::new(),
                        annotations: Labels::new(),
                        starts_at: 1,
                    },
                    resend_secs: 60,
                },
            )]),
        );
        queue.save_firing(&firing).unwrap();

        let loaded = queue.load().unwrap();
        assert_eq!(loaded.pending, vec![b.clone(), a.clone()]);
        assert_eq!(loaded.firing, firing);
        assert_eq!(loaded.unreadable.len(), 1);
        assert!(!queue.dir().join(".0003.json.tmp.1").exists());

        queue.remove("0001").unwrap();
        queue.remove("0001").unwrap();
        queue.refuse(&a).unwrap();
        assert!(queue.load().unwrap().pending.is_empty());
        assert!(queue.dir().join("refused/0002.json").is_file());
        std::fs::remove_dir_all(dir).ok();
    }
}
