//! Fuzz target: an announcement's `when` condition of any text parses or fails with a message, never panics, and what parses prints back to an equal condition.
#![no_main]

use keepmon::config::when::When;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match When::parse(text) {
        Ok(when) => assert_eq!(When::parse(&when.to_string()).as_ref(), Ok(&when)),
        Err(message) => assert!(!message.is_empty()),
    }
});
