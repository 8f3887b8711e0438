//! HAProxy 2.6's hash functions (sdbm, djb2, wt6, crc32, the avalanche mix) and the keys of its hashing `balance` algorithms; pure, never does IO.
//!
//! Written from HAProxy's documented algorithms (src/hash.c, `full_hash`
//! in include/haproxy/intops.h, `get_server_sh` in src/backend.c); the
//! tests' vectors were read from a running HAProxy 2.6 (its `sdbm`,
//! `djb2`, `wt6` and `crc32` converters), not computed here.

use std::net::IpAddr;

use crate::config::model::{HaproxyHash, HashFunction};

/// The hash HAProxy's `balance uri|url_param|hdr()` computes over `bytes`
/// (`gen_hash`, then the avalanche mix when asked).
pub fn hash_bytes(hash: HaproxyHash, bytes: &[u8]) -> u32 {
    let raw = match hash.function {
        HashFunction::Sdbm => sdbm(bytes),
        HashFunction::Djb2 => djb2(bytes),
        HashFunction::Wt6 => wt6(bytes),
        HashFunction::Crc32 => crc32(bytes),
    };
    if hash.avalanche { avalanche(raw) } else { raw }
}

/// The hash HAProxy's `balance source` computes for a client: the
/// address's 32-bit big-endian words XORed together (one word for IPv4,
/// four for IPv6, an IPv4-mapped IPv6 address included as HAProxy sees
/// it on a dual-stack socket), no hash function, the avalanche mix only
/// when asked.
pub fn source_hash(hash: HaproxyHash, ip: IpAddr) -> u32 {
    let raw = match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (0..4).fold(0u32, |h, word| h ^ (bits >> (32 * (3 - word))) as u32)
        }
    };
    if hash.avalanche { avalanche(raw) } else { raw }
}

/// sdbm: `h = c + (h << 6) + (h << 16) - h` per byte.
pub fn sdbm(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |h, &c| {
        u32::from(c)
            .wrapping_add(h << 6)
            .wrapping_add(h << 16)
            .wrapping_sub(h)
    })
}

/// djb2: `h = h * 33 + c` per byte, from 5381.
pub fn djb2(bytes: &[u8]) -> u32 {
    bytes.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    })
}

/// Willy Tarreau's wt6: two 32-bit halves rotated by amounts that
/// depend on the data.
pub fn wt6(bytes: &[u8]) -> u32 {
    let mut h0: u32 = 0xa53c_965a;
    let mut h1: u32 = 0x5ca6_953a;
    let mut step0: u32 = 6;
    let mut step1: u32 = 18;
    for &c in bytes {
        let c = u32::from(c);
        h0 = !(h0 ^ c);
        h1 = !(h1.wrapping_add(c));
        let rotated = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = rotated;
        let mix = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = mix & 0x1f;
        step1 = mix >> 11;
    }
    h0 ^ h1
}

/// The usual CRC-32 (reflected polynomial 0xedb88320), bit by bit.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &c in bytes {
        crc ^= u32::from(c);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// HAProxy's `full_hash` (Bob Jenkins' full avalanche integer hash, then
/// times 3221225473), the `avalanche` modifier.
pub fn avalanche(a: u32) -> u32 {
    let a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    let a = (a ^ 0xc761_c23c) ^ (a >> 19);
    let a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    let a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    let a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    let a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, sdbm, sdbm avalanche, djb2, wt6, crc32) as HAProxy 2.6.12's
    /// converters printed them (`%[req.hdr(x-k),sdbm] %[req.hdr(x-k),sdbm(1)]
    /// %[req.hdr(x-k),djb2] %[req.hdr(x-k),wt6] %[req.hdr(x-k),crc32]`).
    const VECTORS: &[(&str, u32, u32, u32, u32, u32)] = &[
        ("a", 97, 1830748055, 177670, 1900802597, 3904355907),
        (
            "abc", 807794786, 659243622, 193485963, 2483038440, 891568578,
        ),
        (
            "/index.html",
            858007926,
            4217574924,
            3776231887,
            822151038,
            3928116034,
        ),
        (
            "hello world",
            430867652,
            261123301,
            894552257,
            1866899626,
            222957957,
        ),
        (
            "user42", 956198665, 253765262, 556066410, 2769745836, 2083503798,
        ),
        (
            "0123456789abcdefghij",
            1985984714,
            1032563190,
            1191063913,
            3629555923,
            1670122793,
        ),
        (
            "/img/logo.png",
            1396255617,
            2556399353,
            3813602436,
            2589170451,
            321868694,
        ),
    ];

    #[test]
    fn hash_functions_match_haproxy() {
        for &(key, sdbm_h, sdbm_aval, djb2_h, wt6_h, crc32_h) in VECTORS {
            let bytes = key.as_bytes();
            assert_eq!(sdbm(bytes), sdbm_h, "sdbm {key}");
            assert_eq!(avalanche(sdbm(bytes)), sdbm_aval, "sdbm avalanche {key}");
            assert_eq!(djb2(bytes), djb2_h, "djb2 {key}");
            assert_eq!(wt6(bytes), wt6_h, "wt6 {key}");
            assert_eq!(crc32(bytes), crc32_h, "crc32 {key}");
            let with = |function, avalanche| {
                hash_bytes(
                    HaproxyHash {
                        consistent: false,
                        function,
                        avalanche,
                    },
                    bytes,
                )
            };
            assert_eq!(with(HashFunction::Sdbm, false), sdbm_h);
            assert_eq!(with(HashFunction::Sdbm, true), sdbm_aval);
            assert_eq!(with(HashFunction::Crc32, false), crc32_h);
        }
    }

    #[test]
    fn source_hash_xors_the_address_words() {
        let plain = HaproxyHash::default();
        let v4: IpAddr = "127.1.2.3".parse().unwrap();
        assert_eq!(source_hash(plain, v4), 0x7f01_0203);
        let v6: IpAddr = "2001:db8::1:2".parse().unwrap();
        assert_eq!(source_hash(plain, v6), 0x2001_0db8 ^ 0x0001_0002);
        let aval = HaproxyHash {
            avalanche: true,
            ..plain
        };
        assert_eq!(source_hash(aval, v4), avalanche(0x7f01_0203));
    }
}
