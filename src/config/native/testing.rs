//! Test helpers for the native front end's unit tests: a fake file system and `check` helpers that render diagnostics as `line:col: severity: message`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::FileSystem;
use crate::config::diag::Severity;
use crate::config::model::Config;
use crate::config::native::parse;

/// A machine with exactly these files (absolute paths). The integration
/// tests share a copy in `tests/common`, which unit tests cannot reach.
#[derive(Default)]
pub(crate) struct FakeFs {
    files: BTreeSet<PathBuf>,
    /// What `read_to_string` answers (these are files too).
    texts: BTreeMap<PathBuf, String>,
}

impl FakeFs {
    pub(crate) fn with(files: &[&str]) -> FakeFs {
        FakeFs {
            files: files.iter().map(PathBuf::from).collect(),
            texts: BTreeMap::new(),
        }
    }

    /// Files with their text.
    pub(crate) fn with_texts(texts: &[(&str, &str)]) -> FakeFs {
        FakeFs {
            files: texts.iter().map(|(p, _)| PathBuf::from(p)).collect(),
            texts: texts
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        }
    }
}

impl FileSystem for FakeFs {
    fn is_file(&self, path: &Path) -> bool {
        self.files.contains(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.files.iter().any(|f| f.starts_with(path) && f != path)
    }

    fn read_to_string(&self, path: &Path) -> Option<String> {
        self.texts.get(path).cloned()
    }
}

pub(crate) const FILE: &str = "/etc/keepmon/keepmon.toml";

pub(crate) fn parse_with(text: &str, fs: &FakeFs) -> (Option<Config>, Vec<String>) {
    let file: Arc<Path> = Arc::from(Path::new(FILE));
    let (config, diagnostics) = parse(text, &file, fs);
    let shown = diagnostics
        .iter()
        .map(|d| {
            let severity = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!(
                "{}:{}: {severity}: {}",
                d.location.line, d.location.col, d.message
            )
        })
        .collect();
    (config, shown)
}

/// Every diagnostic of `text`, as `line:col: severity: message`.
pub(crate) fn check(text: &str, expected: &[&str]) {
    let (_, found) = parse_with(text, &FakeFs::default());
    assert_eq!(found, expected, "config:\n{text}");
}

/// Checks every `(config, expected diagnostics)` case and prints each
/// mismatch before failing, so one run shows them all.
pub(crate) fn check_cases(cases: &[(&str, &[&str])]) {
    let mut failed = 0;
    for (text, expected) in cases {
        let (_, found) = parse_with(text, &FakeFs::default());
        if found != *expected {
            failed += 1;
            println!("config:\n{text}\nexpected: {expected:#?}\nfound: {found:#?}\n");
        }
    }
    assert_eq!(failed, 0);
}
