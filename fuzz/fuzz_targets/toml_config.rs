//! Fuzz target: arbitrary bytes compiled as native TOML must never panic, and a failed compile must say why.
#![no_main]

mod compile;

use keepmon::config::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    compile::compile_says_why(data, "fuzz/keepmon.toml", Format::Toml);
});
