//! Fuzz target: a trap packet and an auth.cf trap section of any bytes: parsing and authorization (the hash check included) answer or refuse, never panic, and a refusal says why.
#![no_main]

use std::net::IpAddr;

use keepmon::monproto::auth::AuthFile;
use keepmon::monproto::trap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // auth.cf text, a NUL, then the packet.
    let (auth, packet) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"trap section\n127.0.0.1 * *\n"[..], data),
    };
    let (auth, _problems) = AuthFile::parse(&String::from_utf8_lossy(auth));
    let Ok(trap) = trap::parse(packet) else {
        return;
    };
    for from in ["127.0.0.1", "::1", "::ffff:10.0.0.1"] {
        let from: IpAddr = from.parse().expect("a literal address");
        if let Err(why) = trap::authorize(&auth, from, &trap) {
            assert!(!why.is_empty());
        }
    }
});
