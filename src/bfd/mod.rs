//! BFD (RFC 5880, single hop over UDP 3784 as RFC 5881 and keepalived 2.2.7's BFD process run it): the pure core (packet codec, session state machine) and the task that drives every configured session; what the sessions say reaches VRRP instances as a watched map of states.
//!
//! ```text
//!  edge: one UDP socket on port 3784 (TTL read per packet), one send socket
//!        per session (source_ip, TTL 255)   ▲ Vec<Action>
//!        │ bytes + src/dst/ttl              │
//!        ▼                                  │
//!  packet::decode ──► ControlPacket ──► session::Session::step(now, Input)
//!  packet::encode ◄── Send(packet) ◄────────┘   (+ next_deadline)
//! ```
//!
//! [`packet`] and [`session`] are pure: no sockets, no clock. [`task`] is
//! the edge: it owns the sockets, finds a packet's session (by "your
//! discriminator", else by the neighbour's address as keepalived's
//! `find_bfd_by_addr`), checks the received TTL against `ttl − max_hops`,
//! and publishes each session's state on a `watch` channel that tracking
//! VRRP instances read.

pub mod packet;
pub mod session;
pub mod task;

pub use task::{BfdStates, BfdStatus};

use crate::config::model::TrackBfd;
use crate::vrrp::process::Effect;

/// What a tracked session in state `up` does to its instance, as
/// keepalived's `vrrp_handle_bfd_event` and `initialise_track_bfd_state`:
/// weight 0 is FAULT while down (while up with `reverse`); a positive
/// weight is added while up, a negative one while down, each negated with
/// `reverse`.
pub fn track_effect(track: &TrackBfd, up: bool) -> Effect {
    if track.weight == 0 {
        return if up == track.reverse {
            Effect::Fault
        } else {
            Effect::Add(0)
        };
    }
    let multiplier = if track.reverse { -1 } else { 1 };
    if (track.weight > 0) == up {
        Effect::Add(track.weight * multiplier)
    } else {
        Effect::Add(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_weights_as_keepalived() {
        let t = |weight, reverse| TrackBfd {
            name: "b".to_string(),
            weight,
            reverse,
        };
        let cases = [
            // (weight, reverse, effect when up, effect when down)
            (0, false, Effect::Add(0), Effect::Fault),
            (0, true, Effect::Fault, Effect::Add(0)),
            (10, false, Effect::Add(10), Effect::Add(0)),
            (10, true, Effect::Add(-10), Effect::Add(0)),
            (-10, false, Effect::Add(0), Effect::Add(-10)),
            (-10, true, Effect::Add(0), Effect::Add(10)),
        ];
        for (weight, reverse, up, down) in cases {
            assert_eq!(
                track_effect(&t(weight, reverse), true),
                up,
                "{weight} {reverse} up"
            );
            assert_eq!(
                track_effect(&t(weight, reverse), false),
                down,
                "{weight} {reverse} down"
            );
        }
    }
}
