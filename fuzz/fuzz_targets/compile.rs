//! Shared by the `moncf`, `toml_config`, `keepalived` and `haproxy_cfg` fuzz targets: compile arbitrary bytes on a machine with no files, and check that a failed compile says why.

use std::path::Path;

use keepmon::config::{FileSystem, Format, compile_str};

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

/// Compiles `data` as a config read from `path`. Must not panic; an `Err`
/// must carry at least one error diagnostic.
pub fn compile_says_why(data: &[u8], path: &str, format: Format) {
    let text = String::from_utf8_lossy(data);
    let result = compile_str(&text, Path::new(path), format, &EmptyFileSystem);
    if let Err(error) = result {
        assert!(
            error.diagnostics.has_errors(),
            "compile failed without an error diagnostic"
        );
    }
}
