//! Fuzz target: a route-netlink datagram of any bytes (what the kernel answers to the VRRP address requests) is read into replies, an end or an error, never a panic or an endless loop.
#![no_main]

use keepmon::vrrp::addr::take_replies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sequence, datagram) = match data.split_first_chunk::<4>() {
        Some((seq, rest)) => (u32::from_ne_bytes(*seq), rest),
        None => (1, data),
    };
    let mut replies = Vec::new();
    let _ = take_replies(datagram, sequence, &mut replies);
    // Every reply took at least one byte of the datagram.
    assert!(replies.len() <= datagram.len());
});
