//! Fuzz target: arbitrary bytes compiled as haproxy.cfg must never panic or hang, and a failed compile must say why; `"${VAR}"` expands from a fixed environment and `errorfile`s read the input itself.
#![no_main]

mod compile;

use std::path::Path;

use keepmon::config::{FileSystem, Format, compile_str};
use libfuzzer_sys::fuzz_target;

/// A machine where every file under `/fuzz/` holds the input itself and a
/// few environment variables are set (one with blanks, for `${VAR[*]}`).
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

    fn env_var(&self, name: &str) -> Option<String> {
        match name {
            "PORT" => Some("8080".to_string()),
            "ADDR" => Some("127.0.0.1".to_string()),
            "LIST" => Some(" a  b\tc ".to_string()),
            _ => None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    compile::compile_says_why(data, "fuzz/haproxy.cfg", Format::Haproxy);
    let text = String::from_utf8_lossy(data);
    let result = compile_str(
        &text,
        Path::new("/fuzz/haproxy.cfg"),
        Format::Haproxy,
        &Mirror { text: &text },
    );
    if let Err(error) = result {
        assert!(
            error.diagnostics.has_errors(),
            "compile failed without an error diagnostic"
        );
    }
});
