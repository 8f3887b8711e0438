//! Fuzz target: what a raw VRRP socket hands over (an IPv4 datagram, IPv6 control messages) must parse or fail without panicking, and a parsed payload must go through the advert decoder safely.
#![no_main]

use keepmon::cmsg;
use keepmon::vrrp::net::parse_ipv4;
use keepmon::vrrp::packet::decode_with_checksum;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(received) = parse_ipv4(data) {
        assert!(received.payload.len() <= data.len());
        let _ = decode_with_checksum(&received.payload, received.src, received.dst);
    }
    let _ = cmsg::parse(data);
});
