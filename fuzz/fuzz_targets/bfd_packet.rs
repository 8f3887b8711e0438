//! Fuzz target: BFD control packets must decode or fail without panicking, a decoded packet must re-encode to the same bytes, and a session fed any decoded packet must not panic.
#![no_main]

use std::time::Duration;

use keepmon::bfd::packet::{decode, encode};
use keepmon::bfd::session::{Input, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = decode(data) else {
        return;
    };
    assert_eq!(
        &encode(&packet)[..],
        data,
        "a decoded packet re-encodes to itself"
    );
    let mut session = Session::new(
        SessionConfig {
            min_rx_us: 10_000,
            min_tx_us: 10_000,
            idle_tx_us: 1_000_000,
            multiplier: 3,
            passive: data.len() % 2 == 0,
        },
        u64::from(packet.my_discr),
    );
    session.step(Duration::ZERO, Input::Start);
    session.step(Duration::from_millis(1), Input::Packet(packet));
    if let Some(at) = session.next_deadline() {
        session.step(at, Input::Timer);
    }
});
