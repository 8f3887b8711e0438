//! Fuzz target: datagrams from the kernel's IPVS and controller families must parse or fail without panicking.
#![no_main]

use keepmon::lb::ipvs::msg::{parse_family_replies, parse_replies};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_replies(data);
    let _ = parse_family_replies(data);
});
