//! Fuzz target: arbitrary bytes compiled as keepalived.conf must never panic or hang, and a failed compile must say why; includes read the input itself.
#![no_main]

mod compile;

use std::path::{Path, PathBuf};

use keepmon::config::{FileSystem, Format, compile_str};
use libfuzzer_sys::fuzz_target;

/// A machine where every file under `/fuzz/` holds the input itself, so
/// `include` lines recurse into the same text.
struct Mirror<'a> {
    text: &'a str,
}

impl FileSystem for Mirror<'_> {
    fn is_file(&self, path: &Path) -> bool {
        path.starts_with("/fuzz") && path != Path::new("/fuzz")
    }

    fn is_dir(&self, path: &Path) -> bool {
        path == Path::new("/fuzz") || path == Path::new("/")
    }

    fn read_to_string(&self, path: &Path) -> Option<String> {
        self.is_file(path).then(|| self.text.to_string())
    }

    fn list_dir(&self, path: &Path) -> Option<Vec<PathBuf>> {
        (path == Path::new("/fuzz"))
            .then(|| vec![PathBuf::from("/fuzz/a.conf"), PathBuf::from("/fuzz/b.conf")])
    }
}

fuzz_target!(|data: &[u8]| {
    compile::compile_says_why(data, "fuzz/keepalived.conf", Format::Keepalived);
    let text = String::from_utf8_lossy(data);
    let result = compile_str(
        &text,
        Path::new("/fuzz/keepalived.conf"),
        Format::Keepalived,
        &Mirror { text: &text },
    );
    if let Err(error) = result {
        assert!(
            error.diagnostics.has_errors(),
            "compile failed without an error diagnostic"
        );
    }
});
