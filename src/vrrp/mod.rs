//! Embedded VRRP: the pure core (wire codec and state machine: no sockets, clocks or netlink) and the edge that drives it (sockets, rtnetlink, one task per instance).
//!
//! keepmon replaces keepalived's VRRP half (reference: `vrrp.md`). The work is
//! split in layers so that everything that decides can be tested without
//! root, a network or real time:
//!
//! ```text
//!  edge: raw sockets (proto 112, TTL 255), PF_PACKET, rtnetlink, timers
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
//! * The edge does the IO and never decides: [`net`] owns the raw protocol-112
//!   and AF_PACKET sockets, [`addr`] reads links and adds/removes VIPs over
//!   rtnetlink, and [`instance`] is the task per instance with the timer
//!   that calls `step(now, Input::Timer)` at
//!   [`fsm::Instance::next_deadline`], the receive checks that need the IP
//!   header (TTL 255, VRID routing, password comparison) and the tracking
//!   that feeds `Input::EffectivePriority` / `Input::Fault`.
//!
//! * [`sync`] is a keepalived `vrrp_sync_group` as a pure function of its
//!   members' reports returning orders to them; [`group`] is its task,
//!   between the member tasks.
//!
//! [`packet`], [`fsm`] and [`sync`] stay pure: they never touch a socket,
//! netlink or the clock.

pub mod addr;
pub mod fsm;
pub mod group;
pub mod instance;
pub mod net;
pub mod packet;
pub mod process;
pub mod sync;
