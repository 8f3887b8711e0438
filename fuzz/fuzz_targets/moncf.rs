//! Fuzz target: arbitrary bytes compiled as mon.cf must never panic, and a failed compile must say why.
#![no_main]

use std::path::Path;

use keepmon::config::{FileSystem, Format, compile_str};
use libfuzzer_sys::fuzz_target;

/// A machine with no files and no directories.
struct EmptyFileSystem;

impl FileSystem for EmptyFileSystem {
    fn is_file(&self, _: &Path) -> bool {
        false
    }

    fn is_dir(&self, _: &Path) -> bool {
        false
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let result = compile_str(
        &text,
        Path::new("fuzz/mon.cf"),
        Format::Mon,
        &EmptyFileSystem,
    );
    if let Err(error) = result {
        assert!(
            error.diagnostics.has_errors(),
            "compile failed without an error diagnostic"
        );
    }
});
