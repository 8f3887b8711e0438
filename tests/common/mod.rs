//! Helpers shared by the integration tests: a fake machine for the config compiler to ask about files.
//!
//! Each test file that uses these says `mod common;`; a test file uses only
//! some of them, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod browser;
pub mod daemon;
pub mod haproxy;
pub mod peer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keepmon::config::FileSystem;

/// A file system that has exactly the listed files (and the dirs holding
/// them). `FakeFs::default()` has no files and no directories.
#[derive(Default)]
pub struct FakeFs {
    files: BTreeSet<PathBuf>,
}

impl FakeFs {
    pub fn with(files: &[&str]) -> FakeFs {
        FakeFs {
            files: files.iter().map(PathBuf::from).collect(),
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
}

/// Say loudly that a test could not run (no root, a missing Debian package);
/// fail instead when `KEEPMON_REQUIRE_PRIVILEGED=1` (CI) requires it to run.
pub fn not_run(what: &str) {
    eprintln!("!!! NOT RUN: {what}");
    if std::env::var("KEEPMON_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("KEEPMON_REQUIRE_PRIVILEGED=1 but this test cannot run: {what}");
    }
}
