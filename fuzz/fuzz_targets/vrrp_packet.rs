//! Fuzz target: VRRP advertisements must decode or fail without panicking, and a decoded advert must re-encode to bytes that decode to the same advert.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keepmon::vrrp::packet::{decode, decode_with_checksum, encode};
use libfuzzer_sys::fuzz_target;

/// Source/destination pairs: multicast and unicast IPv4 (the v3 checksum
/// forms differ), IPv6 link-local to the group, and mixed families.
fn pairs() -> [(IpAddr, IpAddr); 5] {
    let src4 = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    let group4 = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    let peer4 = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2));
    let src6 = IpAddr::V6(Ipv6Addr::new(
        0xfe80, 0, 0, 0, 0x3828, 0xb4ff, 0xfe8d, 0x8029,
    ));
    let group6 = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));
    [
        (src4, group4),
        (src4, peer4),
        (src6, group6),
        (src4, group6),
        (src6, group4),
    ]
}

fuzz_target!(|data: &[u8]| {
    for (src, dst) in pairs() {
        let Ok(decoded) = decode_with_checksum(data, src, dst) else {
            continue;
        };
        let bytes = encode(&decoded.advert, src, dst, decoded.checksum.mode())
            .expect("a decoded advert re-encodes");
        assert_eq!(
            decode(&bytes, src, dst),
            Ok(decoded.advert),
            "re-encoded advert decodes to itself"
        );
    }
});
