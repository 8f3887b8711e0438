//! One BFD session's state machine and timers (RFC 5880 §6.8 as keepalived 2.2.7's `bfd_scheduler.c` runs it), pure: `step(now, input)` returns the packets to send and the state changes; never reads the clock or touches a socket.
//!
//! Timers (all measured from `now`, a monotonic [`Duration`] the caller
//! supplies):
//! * send: every `local_tx_intv` less a jitter of 10–25 % (the jitter comes
//!   from a generator seeded by the caller, so tests are deterministic);
//!   `local_tx_intv` is the idle interval until both sides are Up, then
//!   the larger of our `min_tx` and the peer's required min RX;
//! * expire: `local_detect_time` = the peer's multiplier × the agreed
//!   receive interval, armed on entering Init or Up and pushed back by
//!   every packet while Up (keepalived does not push it back in Init);
//!   expiry takes the session Down with diagnostic 1;
//! * reset: a Down session forgets the peer (discriminator, states, poll
//!   and final) after one detection time.
//!
//! Passive sessions send nothing until the peer speaks. A poll (P) is
//! answered at once with a final (F); keepalived polls when it comes Up
//! with `idle_tx` different from `min_tx`, so the peer learns the faster
//! interval. keepalived only tells its trackers "Up" on entering Up and
//! "Down" on leaving Up unless the peer said AdminDown: [`Session::reported_up`]
//! is that tracker view.

use std::time::Duration;

use crate::bfd::packet::{ControlPacket, State, diag};

/// One session's settings (keepalived's `bfd_instance`, intervals in µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub min_rx_us: u32,
    pub min_tx_us: u32,
    pub idle_tx_us: u32,
    pub multiplier: u8,
    pub passive: bool,
}

/// What happened to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The session starts (keepalived sends at once unless passive).
    Start,
    /// A valid packet addressed to this session.
    Packet(ControlPacket),
    /// A deadline from [`Session::next_deadline`] may be due.
    Timer,
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Send(ControlPacket),
    /// The local state changed; `reported_up` is the trackers' view after it.
    StateChanged {
        from: State,
        to: State,
        diag: u8,
        reported_up: bool,
    },
    /// The detection time changed (keepalived logs it), in µs.
    DetectionTime {
        now_us: u64,
        was_us: u64,
    },
}

/// One BFD session.
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    local_state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: u8,
    remote_diag: u8,
    remote_min_tx: u32,
    remote_min_rx: u32,
    remote_demand: bool,
    remote_detect_mult: u8,
    poll: bool,
    final_: bool,
    local_tx_intv: u32,
    remote_tx_intv: u32,
    local_detect_time: u64,
    reported_up: bool,
    send_at: Option<Duration>,
    expire_at: Option<Duration>,
    reset_at: Option<Duration>,
    rng: u64,
}

impl Session {
    /// A session in Down. `seed` drives discriminators and jitter (any
    /// value; the caller passes randomness, tests a constant).
    pub fn new(config: SessionConfig, seed: u64) -> Session {
        let mut session = Session {
            config,
            local_state: State::Down,
            remote_state: State::Down,
            local_discr: 0,
            remote_discr: 0,
            local_diag: diag::NONE,
            remote_diag: diag::NONE,
            remote_min_tx: 0,
            remote_min_rx: 0,
            remote_demand: false,
            remote_detect_mult: 0,
            poll: false,
            final_: false,
            local_tx_intv: config.idle_tx_us,
            remote_tx_intv: 0,
            local_detect_time: 0,
            reported_up: false,
            send_at: None,
            expire_at: None,
            reset_at: None,
            rng: seed | 1,
        };
        session.local_discr = session.new_discriminator();
        session
    }

    pub fn state(&self) -> State {
        self.local_state
    }

    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// Up as keepalived's VRRP and checker processes see it.
    pub fn reported_up(&self) -> bool {
        self.reported_up
    }

    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// The current detection time (µs; 0 before the peer was heard).
    pub fn detection_time_us(&self) -> u64 {
        self.local_detect_time
    }

    /// The current transmit interval (µs, before jitter).
    pub fn tx_interval_us(&self) -> u32 {
        self.local_tx_intv
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Duration> {
        [self.send_at, self.expire_at, self.reset_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn step(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Start => {
                if !self.config.passive {
                    self.send(&mut actions);
                    self.schedule_send(now);
                }
            }
            Input::Packet(packet) => self.on_packet(now, packet, &mut actions),
            Input::Timer => {
                // Each due timer once, earliest first (bounded: three timers).
                for _ in 0..3 {
                    let due = [(self.expire_at, 0), (self.reset_at, 1), (self.send_at, 2)]
                        .into_iter()
                        .filter_map(|(at, which)| at.filter(|&at| at <= now).map(|at| (at, which)))
                        .min();
                    match due {
                        Some((_, 0)) => {
                            self.expire_at = None;
                            self.remote_discr = 0;
                            self.state_down(now, diag::EXPIRED, &mut actions);
                        }
                        Some((_, 1)) => {
                            self.reset_at = None;
                            self.reset_state();
                        }
                        Some(_) => {
                            self.send_at = None;
                            self.send(&mut actions);
                            self.schedule_send(now);
                        }
                        None => break,
                    }
                }
            }
        }
        actions
    }

    /// The packet keepalived's `bfd_build_packet` would send now.
    fn packet(&mut self) -> ControlPacket {
        if self.poll && self.final_ {
            self.poll = false;
        }
        ControlPacket {
            diag: self.local_diag,
            state: self.local_state,
            poll: self.poll,
            final_: self.final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.config.multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: if self.local_state == State::Up {
                self.config.min_tx_us
            } else {
                self.config.idle_tx_us
            },
            required_min_rx: self.config.min_rx_us,
            required_min_echo_rx: 0,
        }
    }

    fn send(&mut self, actions: &mut Vec<Action>) {
        let packet = self.packet();
        actions.push(Action::Send(packet));
        self.final_ = false;
    }

    fn schedule_send(&mut self, now: Duration) {
        let interval = self.local_tx_intv;
        let jitter = self.jitter(interval);
        self.send_at = Some(now + Duration::from_micros(u64::from(interval - jitter)));
    }

    /// 10–25 % of the interval, as keepalived's `get_jitter`.
    fn jitter(&mut self, interval: u32) -> u32 {
        let low = interval / 10;
        let high = interval / 4;
        let span = u64::from(high - low) + 1;
        // The remainder is below span ≤ u32::MAX, so it fits.
        low + (self.next_random() % span) as u32
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: enough for jitter and discriminators.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn new_discriminator(&mut self) -> u32 {
        loop {
            // The high half of the generator's output.
            let discr = (self.next_random() >> 32) as u32;
            if discr != 0 && discr != self.local_discr {
                return discr;
            }
        }
    }

    fn on_packet(&mut self, now: Duration, packet: ControlPacket, actions: &mut Vec<Action>) {
        let old_local_tx = self.local_tx_intv;
        let old_detect = self.local_detect_time;
        self.remote_discr = packet.my_discr;
        self.remote_state = packet.state;
        self.remote_diag = packet.diag;
        self.remote_min_rx = packet.required_min_rx;
        self.remote_min_tx = packet.desired_min_tx;
        self.remote_demand = packet.demand;
        self.remote_detect_mult = packet.detect_mult;
        if packet.final_ {
            self.poll = false;
        }
        // Intervals change while not Up, or when Up on a poll or final.
        if self.local_state != State::Up || packet.poll || packet.final_ {
            if self.remote_state == State::Up && matches!(self.local_state, State::Init | State::Up)
            {
                self.local_tx_intv = self.config.min_tx_us.max(self.remote_min_rx);
            } else {
                self.idle_tx_interval();
            }
            self.remote_tx_intv = self.config.min_rx_us.max(self.remote_min_tx);
        }
        self.local_detect_time =
            u64::from(self.remote_detect_mult) * u64::from(self.remote_tx_intv);
        if self.local_tx_intv < old_local_tx && self.send_at.is_some() {
            self.schedule_send(now);
        }
        if self.local_detect_time != old_detect {
            actions.push(Action::DetectionTime {
                now_us: self.local_detect_time,
                was_us: old_detect,
            });
        }
        if self.remote_state == State::AdminDown && self.local_state != State::Down {
            self.state_down(now, diag::NEIGHBOR_SIGNALED_DOWN, actions);
        } else {
            match (self.local_state, self.remote_state) {
                (State::Down, State::Down) => self.state_init(now, actions),
                (State::Down, State::Init) => self.state_up(now, actions),
                (State::Init, State::Init | State::Up) => self.state_up(now, actions),
                (State::Up, State::Down) => {
                    self.state_down(now, diag::NEIGHBOR_SIGNALED_DOWN, actions)
                }
                _ => {}
            }
        }
        let both_up = self.local_state == State::Up && self.remote_state == State::Up;
        if self.remote_demand && both_up {
            self.send_at = None;
        } else if self.send_at.is_none() {
            self.schedule_send(now);
        }
        if packet.poll {
            self.final_ = true;
            self.send(actions);
        }
        if self.local_state == State::Up && self.expire_at.is_some() {
            self.expire_at = Some(now + Duration::from_micros(self.local_detect_time));
        }
    }

    fn idle_tx_interval(&mut self) {
        self.local_tx_intv = self.config.idle_tx_us.max(self.remote_min_rx);
    }

    fn changed(&mut self, from: State, actions: &mut Vec<Action>) {
        actions.push(Action::StateChanged {
            from,
            to: self.local_state,
            diag: self.local_diag,
            reported_up: self.reported_up,
        });
    }

    fn state_down(&mut self, now: Duration, diag: u8, actions: &mut Vec<Action>) {
        let from = self.local_state;
        if from == State::Up {
            self.local_discr = self.new_discriminator();
        }
        self.local_state = State::Down;
        self.local_diag = diag;
        self.reset_at = Some(now + Duration::from_micros(self.local_detect_time));
        if self.config.passive {
            self.send_at = None;
        }
        self.idle_tx_interval();
        self.expire_at = None;
        if from == State::Up && self.remote_state != State::AdminDown {
            self.reported_up = false;
        }
        self.changed(from, actions);
    }

    fn state_rise(&mut self, now: Duration) {
        self.local_diag = diag::NONE;
        self.reset_at = None;
        if self.expire_at.is_none() {
            self.expire_at = Some(now + Duration::from_micros(self.local_detect_time));
        }
    }

    fn state_up(&mut self, now: Duration, actions: &mut Vec<Action>) {
        let from = self.local_state;
        self.local_state = State::Up;
        self.state_rise(now);
        if self.config.idle_tx_us != self.config.min_tx_us && !self.final_ {
            self.poll = true;
        }
        self.reported_up = true;
        self.changed(from, actions);
    }

    fn state_init(&mut self, now: Duration, actions: &mut Vec<Action>) {
        let from = self.local_state;
        self.local_state = State::Init;
        self.state_rise(now);
        if self.config.passive && self.send_at.is_none() {
            self.schedule_send(now);
        }
        self.changed(from, actions);
    }

    /// keepalived's `bfd_reset_state`: forget the peer, keep the timers' inputs.
    fn reset_state(&mut self) {
        self.local_state = State::Down;
        self.remote_state = State::Down;
        self.remote_discr = 0;
        self.remote_diag = diag::NONE;
        self.remote_demand = false;
        self.poll = false;
        self.final_ = false;
        self.idle_tx_interval();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn config(passive: bool) -> SessionConfig {
        SessionConfig {
            min_rx_us: 10_000,
            min_tx_us: 10_000,
            idle_tx_us: 1_000_000,
            multiplier: 5,
            passive,
        }
    }

    fn sends(actions: &[Action]) -> Vec<ControlPacket> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    fn changes(actions: &[Action]) -> Vec<(State, State, u8, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::StateChanged {
                    from,
                    to,
                    diag,
                    reported_up,
                } => Some((*from, *to, *diag, *reported_up)),
                _ => None,
            })
            .collect()
    }

    /// A peer packet as keepalived would send it.
    fn peer(state: State, your: u32) -> ControlPacket {
        ControlPacket {
            diag: 0,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discr: 77,
            your_discr: your,
            desired_min_tx: 1_000_000,
            required_min_rx: 20_000,
            required_min_echo_rx: 0,
        }
    }

    #[test]
    fn start_sends_at_once_in_down_with_idle_interval() {
        let mut s = Session::new(config(false), 42);
        let out = s.step(Duration::ZERO, Input::Start);
        let sent = sends(&out);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].state, State::Down);
        assert_eq!(sent[0].your_discr, 0);
        assert_eq!(sent[0].desired_min_tx, 1_000_000);
        assert_eq!(sent[0].required_min_rx, 10_000);
        assert_eq!(sent[0].detect_mult, 5);
        assert_ne!(sent[0].my_discr, 0);
        // Next send after 75–90 % of the idle second.
        let next = s.next_deadline().unwrap();
        assert!((750 * MS..=900 * MS).contains(&next), "{next:?}");
        assert!(s.step(next - MS, Input::Timer).is_empty());
        assert_eq!(sends(&s.step(next, Input::Timer)).len(), 1);
    }

    #[test]
    fn passive_waits_for_the_peer() {
        let mut s = Session::new(config(true), 42);
        assert!(s.step(Duration::ZERO, Input::Start).is_empty());
        assert_eq!(s.next_deadline(), None);
        let out = s.step(MS, Input::Packet(peer(State::Down, 0)));
        assert_eq!(changes(&out), [(State::Down, State::Init, 0, false)]);
        assert!(s.next_deadline().is_some());
    }

    /// Down → Init → Up (three-way handshake), then the detection timer.
    #[test]
    fn handshake_then_expiry() {
        let mut s = Session::new(config(false), 7);
        s.step(Duration::ZERO, Input::Start);
        let mine = s.local_discriminator();
        let out = s.step(MS, Input::Packet(peer(State::Down, 0)));
        assert_eq!(changes(&out), [(State::Down, State::Init, 0, false)]);
        assert_eq!(s.remote_discriminator(), 77);
        // Detection time = peer's multiplier 3 × max(our min_rx, its min_tx).
        assert_eq!(s.detection_time_us(), 3_000_000);
        let out = s.step(2 * MS, Input::Packet(peer(State::Init, mine)));
        assert_eq!(changes(&out), [(State::Init, State::Up, 0, true)]);
        assert!(s.reported_up());
        // Up with idle_tx ≠ min_tx: the next packet polls.
        let next = s.next_deadline().unwrap();
        let sent = sends(&s.step(next, Input::Timer));
        assert!(sent[0].poll && sent[0].state == State::Up);
        assert_eq!(sent[0].desired_min_tx, 10_000);
        // Packets while Up push the expiry back.
        s.step(1000 * MS, Input::Packet(peer(State::Up, mine)));
        let out = s.step(3999 * MS, Input::Timer);
        assert!(changes(&out).is_empty());
        let out = s.step(4000 * MS, Input::Timer);
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, diag::EXPIRED, false)]
        );
        assert_eq!(s.remote_discriminator(), 0);
        assert_ne!(
            s.local_discriminator(),
            mine,
            "a new discriminator after Up"
        );
        let sent = sends(&s.step(s.next_deadline().unwrap(), Input::Timer));
        if let Some(p) = sent.first() {
            assert_eq!((p.state, p.diag, p.your_discr), (State::Down, 1, 0));
        }
    }

    #[test]
    fn down_plus_up_goes_nowhere_and_init_expires() {
        let mut s = Session::new(config(false), 9);
        s.step(Duration::ZERO, Input::Start);
        let out = s.step(MS, Input::Packet(peer(State::Up, 5)));
        assert!(changes(&out).is_empty(), "Down ignores a peer in Up");
        s.step(2 * MS, Input::Packet(peer(State::Down, 0)));
        assert_eq!(s.state(), State::Init);
        // Packets in Init do not push the expiry back (keepalived).
        s.step(1000 * MS, Input::Packet(peer(State::Down, 0)));
        let out = s.step(2 * MS + 3000 * MS, Input::Timer);
        assert_eq!(
            changes(&out),
            [(State::Init, State::Down, diag::EXPIRED, false)]
        );
    }

    #[test]
    fn peer_down_and_admin_down() {
        let mut s = Session::new(config(false), 3);
        s.step(Duration::ZERO, Input::Start);
        let mine = s.local_discriminator();
        s.step(MS, Input::Packet(peer(State::Init, mine)));
        assert_eq!(s.state(), State::Up);
        let out = s.step(2 * MS, Input::Packet(peer(State::Down, mine)));
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, diag::NEIGHBOR_SIGNALED_DOWN, false)]
        );
        // Up again, then AdminDown: Down, but trackers are not told.
        let mine = s.local_discriminator();
        s.step(3 * MS, Input::Packet(peer(State::Init, mine)));
        assert!(s.reported_up());
        let out = s.step(4 * MS, Input::Packet(peer(State::AdminDown, mine)));
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, diag::NEIGHBOR_SIGNALED_DOWN, true)]
        );
        assert!(s.reported_up());
    }

    #[test]
    fn poll_is_answered_with_final_at_once() {
        let mut s = Session::new(config(false), 5);
        s.step(Duration::ZERO, Input::Start);
        let out = s.step(
            MS,
            Input::Packet(ControlPacket {
                poll: true,
                ..peer(State::Down, 0)
            }),
        );
        let sent = sends(&out);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].final_ && !sent[0].poll);
        // The final flag is sent once.
        let next = sends(&s.step(s.next_deadline().unwrap(), Input::Timer));
        assert!(!next[0].final_);
    }

    #[test]
    fn a_final_ends_our_poll_and_intervals_follow_the_peer() {
        let mut s = Session::new(config(false), 11);
        s.step(Duration::ZERO, Input::Start);
        let mine = s.local_discriminator();
        s.step(MS, Input::Packet(peer(State::Init, mine)));
        assert_eq!(s.state(), State::Up);
        // Intervals are computed before the state changes: still idle
        // until the peer answers our poll.
        assert_eq!(s.tx_interval_us(), 1_000_000);
        let reply = ControlPacket {
            final_: true,
            desired_min_tx: 30_000,
            ..peer(State::Up, mine)
        };
        s.step(2 * MS, Input::Packet(reply));
        assert_eq!(s.tx_interval_us(), 20_000, "max(min_tx, peer's min_rx)");
        assert_eq!(s.detection_time_us(), 90_000);
        let sent = sends(&s.step(s.next_deadline().unwrap(), Input::Timer));
        assert!(!sent[0].poll);
    }

    #[test]
    fn reset_forgets_the_peer_after_a_detection_time() {
        let mut s = Session::new(config(false), 13);
        s.step(Duration::ZERO, Input::Start);
        let mine = s.local_discriminator();
        s.step(MS, Input::Packet(peer(State::Init, mine)));
        s.step(2 * MS, Input::Packet(peer(State::Down, mine)));
        assert_eq!(s.remote_discriminator(), 77);
        s.step(2 * MS + 3000 * MS, Input::Timer);
        assert_eq!(s.remote_discriminator(), 0);
        assert_eq!(s.remote_state(), State::Down);
    }

    /// Two sessions joined by a link with 1 ms delay; `drop(i)` loses the
    /// i-th packet. Runs until `until`; `silence_b_at` stops every packet
    /// from B from then on. Returns each side's state changes with times.
    struct Link {
        a: Session,
        b: Session,
        /// (delivery time, to A?, packet)
        in_flight: Vec<(Duration, bool, ControlPacket)>,
        sent: usize,
        changes: Vec<(Duration, bool, State)>,
        /// `drop` is asked only about packets sent before this.
        lossy_until: Duration,
    }

    impl Link {
        fn new(a: SessionConfig, b: SessionConfig, seed: u64) -> Link {
            Link {
                a: Session::new(a, seed),
                b: Session::new(b, seed.wrapping_mul(31).wrapping_add(7)),
                in_flight: Vec::new(),
                sent: 0,
                changes: Vec::new(),
                lossy_until: Duration::MAX,
            }
        }

        fn handle(
            &mut self,
            now: Duration,
            from_a: bool,
            actions: Vec<Action>,
            drop: &mut dyn FnMut(usize) -> bool,
            silent_b: bool,
        ) {
            for action in actions {
                match action {
                    Action::Send(packet) => {
                        self.sent += 1;
                        let lost = now < self.lossy_until && drop(self.sent);
                        if !lost && (from_a || !silent_b) {
                            self.in_flight.push((now + MS, !from_a, packet));
                        }
                    }
                    Action::StateChanged { to, .. } => self.changes.push((now, from_a, to)),
                    Action::DetectionTime { .. } => {}
                }
            }
        }

        fn run(
            &mut self,
            until: Duration,
            drop: &mut dyn FnMut(usize) -> bool,
            silence_b_at: Option<Duration>,
        ) {
            let out = self.a.step(Duration::ZERO, Input::Start);
            self.handle(Duration::ZERO, true, out, drop, false);
            let out = self.b.step(Duration::ZERO, Input::Start);
            self.handle(Duration::ZERO, false, out, drop, false);
            for _ in 0..1_000_000 {
                let delivery = self.in_flight.iter().map(|(t, _, _)| *t).min();
                let now = [self.a.next_deadline(), self.b.next_deadline(), delivery]
                    .into_iter()
                    .flatten()
                    .min();
                let Some(now) = now.filter(|&n| n <= until) else {
                    return;
                };
                let silent_b = silence_b_at.is_some_and(|at| now >= at);
                if let Some(i) = self.in_flight.iter().position(|(t, _, _)| *t == now) {
                    let (_, to_a, packet) = self.in_flight.remove(i);
                    let (session, from_a) = if to_a {
                        (&mut self.a, true)
                    } else {
                        (&mut self.b, false)
                    };
                    let out = session.step(now, Input::Packet(packet));
                    self.handle(now, from_a, out, drop, silent_b);
                    continue;
                }
                if self.a.next_deadline() == Some(now) {
                    let out = self.a.step(now, Input::Timer);
                    self.handle(now, true, out, drop, silent_b);
                }
                if self.b.next_deadline() == Some(now) {
                    let out = self.b.step(now, Input::Timer);
                    self.handle(now, false, out, drop, silent_b);
                }
            }
            panic!("the simulation did not reach {until:?}");
        }
    }

    fn fast(passive: bool) -> SessionConfig {
        SessionConfig {
            min_rx_us: 50_000,
            min_tx_us: 50_000,
            idle_tx_us: 1_000_000,
            multiplier: 3,
            passive,
        }
    }

    #[test]
    fn two_sessions_come_up_and_a_silent_peer_is_detected() {
        let mut link = Link::new(fast(false), fast(true), 1);
        link.run(
            Duration::from_secs(10),
            &mut |_| false,
            Some(Duration::from_secs(5)),
        );
        assert_eq!(
            link.changes[..3]
                .iter()
                .map(|c| (c.1, c.2))
                .collect::<Vec<_>>(),
            // A (active) sends Down; passive B answers Init; A goes
            // straight to Up, and B follows on A's next packet.
            [(false, State::Init), (true, State::Up), (false, State::Up)]
        );
        // B falls silent at 5 s: A notices within 3 × 50 ms (+ the last
        // packet's flight and one interval of slack).
        let down = link
            .changes
            .iter()
            .find(|c| c.1 && c.2 == State::Down)
            .expect("A goes down");
        assert!(down.0 >= Duration::from_secs(5), "{down:?}");
        assert!(
            down.0 <= Duration::from_millis(5_000 + 150 + 50 + 1),
            "{down:?}"
        );
    }

    proptest::proptest! {
        /// Whatever packets are lost (a repeating pattern for 30 s),
        /// nothing panics, and 30 s of a clean link later the two
        /// sessions are Up with each other on the fast interval.
        #[test]
        fn any_loss_then_a_clean_link_ends_up(
            losses in proptest::collection::vec(proptest::bool::ANY, 0..200),
            seed in 1u64..u64::MAX,
            passive_b in proptest::bool::ANY,
        ) {
            let mut link = Link::new(fast(false), fast(passive_b), seed);
            // The pattern repeats for 30 s, then the link is clean for 30 s.
            link.lossy_until = Duration::from_secs(30);
            let lossy = losses.len();
            let mut drop = |i: usize| lossy > 0 && losses[(i - 1) % lossy];
            link.run(Duration::from_secs(60), &mut drop, None);
            proptest::prop_assert!(link.a.next_deadline().is_some());
            proptest::prop_assert_eq!(link.a.state(), State::Up);
            proptest::prop_assert_eq!(link.b.state(), State::Up);
            proptest::prop_assert!(link.a.reported_up() && link.b.reported_up());
            proptest::prop_assert_eq!(link.a.remote_discriminator(), link.b.local_discriminator());
            proptest::prop_assert_eq!(link.b.remote_discriminator(), link.a.local_discriminator());
            // Both agreed on the fast interval through poll and final.
            proptest::prop_assert_eq!(link.a.tx_interval_us(), 50_000);
            proptest::prop_assert_eq!(link.a.detection_time_us(), 150_000);
        }
    }
}
