//! Embedded VRRP, the pure core: the wire codec and the state machine; never sockets, clocks or netlink.
//!
//! keepmon replaces keepalived's VRRP half (reference: `vrrp.md`). The work is
//! split in layers so that everything that decides can be tested without
//! root, a network or real time:
//!
//! ```text
//!  edge (later): raw sockets (proto 112, TTL 255), PF_PACKET, rtnetlink, timers
//!        │ bytes + src/dst                      ▲ Vec<Action>
//!        ▼                                      │
//!  packet::decode ──► Advert ──► fsm::Instance::step(now, Input)
//!  packet::encode ◄── SendAdvert{priority} ◄────┘   (+ next_deadline)
//!  packet::gratuitous_arp / unsolicited_na ◄── SendGarp
//! ```
//!
//! * [`packet`] turns bytes into an [`packet::Advert`] and back (v2 and v3,
//!   IPv4 and IPv6, both v3 IPv4 checksum forms) and builds the GARP/NA
//!   frames sent on becoming master.
//! * [`fsm`] is one virtual router instance as a pure function of
//!   `(now, input)` returning actions; `now` is a monotonic
//!   [`std::time::Duration`] supplied by the caller.
//! * The edge (not here) owns sockets, VIP addition/removal over rtnetlink,
//!   the timer that calls `step(now, Input::Timer)` at
//!   [`fsm::Instance::next_deadline`], the receive checks that need the IP
//!   header (TTL 255, VRID routing, password comparison) and the tracking
//!   that feeds `Input::EffectivePriority` / `Input::Fault`.

pub mod addr;
pub mod fsm;
pub mod instance;
pub mod net;
pub mod packet;
