//! A crash-safe spool directory: one JSON file per entry (`ID.json`), written atomically before the entry counts, removed after delivery, moved to a side directory (dead, refused) or set aside when unreadable; what the mail outbox and the Alertmanager queue are built on.
//!
//! kill -9 at any moment leaves every entry either whole on disk or not
//! there at all, never torn ([`crate::state::write_atomic`]). Moving an
//! entry to a side directory writes the copy first and removes the
//! original after, so a crash in between keeps both, never none; the
//! owner decides what a file found in both places means.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::write_atomic;

/// Where unreadable files are moved (never deleted), inside the spool.
pub const UNREADABLE_DIR: &str = "unreadable";

/// An entry of a spool: stored as `ID.json`.
pub trait SpoolEntry: Serialize + DeserializeOwned {
    /// The file stem; entries load sorted by it.
    fn id(&self) -> &str;
}

/// What [`Spool::load`] found.
#[derive(Debug)]
pub struct Loaded<E> {
    /// The entries, sorted by id.
    pub entries: Vec<E>,
    /// Files that could not be read, and where they were moved.
    pub unreadable: Vec<String>,
}

/// A spool directory.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn new(dir: PathBuf) -> Spool {
        Spool { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write (or rewrite) an entry atomically.
    pub fn store<E: SpoolEntry>(&self, entry: &E) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.path(entry.id()), &encode(entry)?)
    }

    /// Forget an entry (gone already is fine).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Move an entry to the side directory `side` (copy first, then remove).
    pub fn move_to<E: SpoolEntry>(&self, side: &str, entry: &E) -> io::Result<()> {
        let dir = self.dir.join(side);
        std::fs::create_dir_all(&dir)?;
        write_atomic(&dir.join(format!("{}.json", entry.id())), &encode(entry)?)?;
        self.remove(entry.id())
    }

    /// Whether the side directory `side` holds an entry `id`.
    pub fn in_side(&self, side: &str, id: &str) -> bool {
        self.dir.join(side).join(format!("{id}.json")).is_file()
    }

    /// Every entry, sorted by id. Temporary files of an interrupted write
    /// are removed; unreadable entries (and entries whose id is not their
    /// file name) are moved to [`UNREADABLE_DIR`]. `own` sees each other
    /// file first, by name: true means the caller reads that file itself
    /// (or has dealt with the entry), and the spool leaves it alone.
    pub fn load<E: SpoolEntry>(
        &self,
        mut own: impl FnMut(&str, &Path) -> io::Result<bool>,
    ) -> io::Result<Loaded<E>> {
        let mut loaded = Loaded {
            entries: Vec::new(),
            unreadable: Vec::new(),
        };
        let dir = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(loaded),
            Err(e) => return Err(e),
        };
        for item in dir {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let path = item.path();
            if !item.file_type()?.is_file() {
                continue;
            }
            if name.starts_with('.') && name.contains(".tmp.") {
                std::fs::remove_file(&path).ok();
                continue;
            }
            if own(&name, &path)? {
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            match read_json::<E>(&path) {
                Ok(entry) if entry.id() == id => loaded.entries.push(entry),
                Ok(_) | Err(_) => loaded.unreadable.push(self.set_aside(&path, &name)?),
            }
        }
        loaded.entries.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(loaded)
    }

    /// The readable entries of the side directory `side`, sorted by id.
    pub fn side_entries<E: SpoolEntry>(&self, side: &str) -> io::Result<Vec<E>> {
        let dir = match std::fs::read_dir(self.dir.join(side)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for item in dir {
            let path = item?.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(entry) = read_json::<E>(&path)
            {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(entries)
    }

    /// Move an unreadable file to [`UNREADABLE_DIR`]; where it went.
    pub fn set_aside(&self, path: &Path, name: &str) -> io::Result<String> {
        let aside = self.dir.join(UNREADABLE_DIR);
        std::fs::create_dir_all(&aside)?;
        let to = aside.join(name);
        std::fs::rename(path, &to)?;
        Ok(to.display().to_string())
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

/// A JSON file read whole; any failure as text.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
}

fn encode<E: Serialize>(entry: &E) -> io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(entry).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Item {
        id: String,
        n: u32,
    }

    impl SpoolEntry for Item {
        fn id(&self) -> &str {
            &self.id
        }
    }

    fn item(id: &str, n: u32) -> Item {
        Item { id: id.into(), n }
    }

    #[test]
    fn store_load_move_and_set_aside() {
        let dir = std::env::temp_dir().join(format!("keepmon-spool-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let spool = Spool::new(dir.clone());
        let empty: Loaded<Item> = spool.load(|_, _| Ok(false)).unwrap();
        assert!(
            empty.entries.is_empty(),
            "a missing directory is an empty spool"
        );
        spool.store(&item("b", 2)).unwrap();
        spool.store(&item("a", 1)).unwrap();
        spool.store(&item("c", 3)).unwrap();
        std::fs::write(dir.join("junk.json"), "{").unwrap();
        std::fs::write(dir.join(".x.json.tmp.1"), "half").unwrap();
        std::fs::write(dir.join("mine.json"), "not an item").unwrap();
        spool.move_to("dead", &item("c", 3)).unwrap();
        spool.remove("nothing").unwrap();
        let loaded: Loaded<Item> = spool.load(|name, _| Ok(name == "mine.json")).unwrap();
        assert_eq!(loaded.entries, vec![item("a", 1), item("b", 2)]);
        assert_eq!(loaded.unreadable.len(), 1, "{:?}", loaded.unreadable);
        assert!(dir.join(UNREADABLE_DIR).join("junk.json").is_file());
        assert!(!dir.join(".x.json.tmp.1").exists(), "temporary files go");
        assert!(dir.join("mine.json").is_file(), "the owner's file stays");
        assert!(spool.in_side("dead", "c"));
        assert_eq!(
            spool.side_entries::<Item>("dead").unwrap(),
            vec![item("c", 3)]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
