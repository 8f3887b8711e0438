//! Fuzz target: mon.cf's lexical layer (logical lines, then quotewords splitting) must never panic, and `join` must invert `split`.
#![no_main]

use keepmon::config::{moncf, words};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let physical_lines = text.lines().count();
    for line in moncf::logical_lines(&text) {
        assert!(line.number >= 1, "line numbers are 1-based");
        assert!(
            line.number as usize <= physical_lines,
            "line {} is past the end of a {physical_lines}-line text",
            line.number
        );
        assert!(line.col >= 1, "columns are 1-based");
        assert_eq!(line.text, line.text.trim(), "logical lines are trimmed");
        let Ok(split) = words::split(&line.text) else {
            continue;
        };
        let joined = words::join(&split);
        assert_eq!(
            words::split(&joined).as_ref(),
            Ok(&split),
            "{:?} split into {split:?}, joined as {joined:?}",
            line.text
        );
    }
});
