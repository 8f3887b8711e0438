//! A keepalived `vrrp_sync_group` as a pure state machine: member reports in, orders to members and group transitions out; never touches an instance, a socket or the clock.
//!
//! keepalived 2.2.7 (`vrrp_sync.c`, the `VRRP_TSM` table of
//! `vrrp_scheduler.c`, `down_instance` / `try_up_instance`) moves the
//! members of a sync group together:
//!
//! * **FAULT**: the first member whose own tracking (a weight-0 script, an
//!   interface) fails takes every other member to FAULT (`vrrp_sync_fault`:
//!   a master sends priority 0 and drops its addresses). The group leaves
//!   FAULT only when no member has a fault of its own any more; then every
//!   member goes to BACKUP (`try_up_instance` → `vrrp_sync_backup`).
//! * **BACKUP**: a member that leaves MASTER for BACKUP (outranked) takes
//!   every other master to BACKUP, without a priority-0 advert
//!   (`vrrp_sync_backup`).
//! * **MASTER**: a member only becomes master when every other member wants
//!   to as well — its own Master_Down_Timer expired with no advert accepted
//!   since — or the group is already MASTER (`vrrp_sync_can_goto_master`:
//!   "prefer backup state to avoid thrashing"); then all go to MASTER at
//!   once (`vrrp_sync_master`).
//!
//! The group's own state is reported as [`SyncAction::GroupChanged`] for the
//! group's notify scripts (keepalived's `send_group_notifies`: `notify ...
//! GROUP NAME STATE 0` and `notify_master` etc.). The group's first state is
//! known once every member has said whether it starts faulted: FAULT if one
//! does, else BACKUP (keepalived notifies both at start; a group of address
//! owners then goes MASTER together as its members ask for it).
//!
//! The members' state machines ([`crate::vrrp::fsm`] with
//! [`crate::vrrp::fsm::InstanceConfig::sync_group`]) report what they do
//! ([`MemberEvent`]); the edge delivers the [`Order`]s as inputs.

use crate::vrrp::fsm::State;

/// What a member reports to its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberEvent {
    /// The member's own fault (its tracking or its interfaces), not one
    /// the group imposed. Reported first when the member starts, then on
    /// every change.
    OwnFault(bool),
    /// [`crate::vrrp::fsm::Action::WantMaster`].
    WantsMaster(bool),
    /// The member changed state.
    Transition { from: State, to: State },
}

/// What the group tells a member (delivered as [`crate::vrrp::fsm::Input`]s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The group is (`true`) or is no longer (`false`) in FAULT; the member
    /// is faulted while either this or its own fault holds.
    Fault(bool),
    /// [`crate::vrrp::fsm::Input::SyncMaster`].
    Master,
    /// [`crate::vrrp::fsm::Input::SyncBackup`].
    Backup,
}

/// What the edge must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncAction {
    Order {
        member: String,
        order: Order,
    },
    /// The group's state changed: run the group's notify scripts.
    GroupChanged {
        from: State,
        to: State,
    },
}

/// One sync group.
#[derive(Clone, Debug)]
pub struct Group {
    name: String,
    members: Vec<Member>,
    /// Init until every member has reported its first [`MemberEvent::OwnFault`].
    state: State,
}

#[derive(Clone, Debug)]
struct Member {
    name: String,
    state: State,
    /// None until the member reported it.
    own_fault: Option<bool>,
    wants_master: bool,
}

impl Group {
    /// A group of the named members (names are unique; keepalived drops a
    /// second mention).
    pub fn new(name: &str, members: &[String]) -> Group {
        let mut seen: Vec<Member> = Vec::new();
        for member in members {
            if !seen.iter().any(|m| &m.name == member) {
                seen.push(Member {
                    name: member.clone(),
                    state: State::Init,
                    own_fault: None,
                    wants_master: false,
                });
            }
        }
        Group {
            name: name.to_string(),
            members: seen,
            state: State::Init,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.name.as_str())
    }

    /// Feeds one member's report; unknown members are ignored.
    pub fn step(&mut self, member: &str, event: MemberEvent) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        let Some(index) = self.members.iter().position(|m| m.name == member) else {
            return actions;
        };
        match event {
            MemberEvent::OwnFault(fault) => {
                self.members[index].own_fault = Some(fault);
                self.on_fault_change(&mut actions);
            }
            MemberEvent::WantsMaster(wants) => {
                self.members[index].wants_master = wants;
                if wants {
                    self.try_master(index, &mut actions);
                }
            }
            MemberEvent::Transition { from, to } => {
                let m = &mut self.members[index];
                m.state = to;
                m.wants_master = false;
                match (from, to) {
                    // The TSM's MASTER → BACKUP: vrrp_sync_backup.
                    (State::Master, State::Backup) if self.state == State::Master => {
                        self.set_state(State::Backup, &mut actions);
                        for other in &self.members {
                            if other.name != member && other.state == State::Master {
                                actions.push(order(&other.name, Order::Backup));
                            }
                        }
                    }
                    // The TSM's → MASTER: vrrp_sync_master (a member only
                    // gets here through the group, unless an order crossed
                    // a report on the way).
                    (_, State::Master) => self.try_master(index, &mut actions),
                    _ => {}
                }
            }
        }
        actions
    }

    /// Whether any member has a fault of its own.
    fn any_own_fault(&self) -> bool {
        self.members.iter().any(|m| m.own_fault == Some(true))
    }

    fn on_fault_change(&mut self, actions: &mut Vec<SyncAction>) {
        match self.state {
            State::Init => {
                if self.members.iter().any(|m| m.own_fault.is_none()) {
                    return;
                }
                if self.any_own_fault() {
                    self.enter_fault(actions);
                } else {
                    self.set_state(State::Backup, actions);
                    if let Some(index) = self.members.iter().position(|m| m.wants_master) {
                        self.try_master(index, actions);
                    }
                }
            }
            State::Fault => {
                if !self.any_own_fault() {
                    self.set_state(State::Backup, actions);
                    for m in &self.members {
                        actions.push(order(&m.name, Order::Fault(false)));
                    }
                }
            }
            State::Backup | State::Master => {
                if self.any_own_fault() {
                    self.enter_fault(actions);
                }
            }
        }
    }

    fn enter_fault(&mut self, actions: &mut Vec<SyncAction>) {
        self.set_state(State::Fault, actions);
        for m in &self.members {
            actions.push(order(&m.name, Order::Fault(true)));
        }
    }

    /// keepalived's `vrrp_sync_can_goto_master` + `vrrp_sync_master` for
    /// member `index`.
    fn try_master(&mut self, index: usize, actions: &mut Vec<SyncAction>) {
        match self.state {
            State::Master => {
                let m = &self.members[index];
                if m.state == State::Backup && m.wants_master {
                    actions.push(order(&m.name, Order::Master));
                }
            }
            State::Backup => {
                let ready = self
                    .members
                    .iter()
                    .all(|m| m.state == State::Master || m.wants_master);
                if ready {
                    self.set_state(State::Master, actions);
                    for m in &self.members {
                        if m.state != State::Master {
                            actions.push(order(&m.name, Order::Master));
                        }
                    }
                }
            }
            State::Init | State::Fault => {}
        }
    }

    fn set_state(&mut self, to: State, actions: &mut Vec<SyncAction>) {
        if self.state != to {
            actions.push(SyncAction::GroupChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }
}

fn order(member: &str, order: Order) -> SyncAction {
    SyncAction::Order {
        member: member.to_string(),
        order,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::vrrp::fsm::{Action, Input, Instance, InstanceConfig};
    use crate::vrrp::packet::{AdvertInterval, Vrid, VrrpVersion};

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("VI_{i}")).collect()
    }

    fn o(member: &str, order: Order) -> SyncAction {
        SyncAction::Order {
            member: member.to_string(),
            order,
        }
    }

    fn changed(from: State, to: State) -> SyncAction {
        SyncAction::GroupChanged { from, to }
    }

    fn t(from: State, to: State) -> MemberEvent {
        MemberEvent::Transition { from, to }
    }

    /// A started group of two healthy backups.
    fn started() -> Group {
        let mut group = Group::new("G", &names(2));
        assert_eq!(group.step("VI_1", MemberEvent::OwnFault(false)), vec![]);
        assert_eq!(
            group.step("VI_2", MemberEvent::OwnFault(false)),
            vec![changed(State::Init, State::Backup)]
        );
        for m in ["VI_1", "VI_2"] {
            assert_eq!(group.step(m, t(State::Init, State::Backup)), vec![]);
        }
        group
    }

    fn mastered() -> Group {
        let mut group = started();
        assert_eq!(group.step("VI_1", MemberEvent::WantsMaster(true)), vec![]);
        assert_eq!(
            group.step("VI_2", MemberEvent::WantsMaster(true)),
            vec![
                changed(State::Backup, State::Master),
                o("VI_1", Order::Master),
                o("VI_2", Order::Master),
            ]
        );
        for m in ["VI_1", "VI_2"] {
            assert_eq!(group.step(m, t(State::Backup, State::Master)), vec![]);
        }
        group
    }

    #[test]
    fn the_first_state_waits_for_every_member() {
        let mut group = Group::new("G", &names(2));
        assert_eq!(group.state(), State::Init);
        assert_eq!(group.step("VI_1", MemberEvent::OwnFault(true)), vec![]);
        assert_eq!(
            group.step("VI_2", MemberEvent::OwnFault(false)),
            vec![
                changed(State::Init, State::Fault),
                o("VI_1", Order::Fault(true)),
                o("VI_2", Order::Fault(true)),
            ]
        );
        assert_eq!(group.step("nobody", MemberEvent::OwnFault(true)), vec![]);
    }

    #[test]
    fn master_only_when_every_member_wants_it() {
        let mut group = started();
        assert_eq!(group.step("VI_1", MemberEvent::WantsMaster(true)), vec![]);
        // VI_2 heard its master again: VI_1's wish alone is not enough.
        assert_eq!(group.step("VI_1", MemberEvent::WantsMaster(false)), vec![]);
        assert_eq!(group.step("VI_2", MemberEvent::WantsMaster(true)), vec![]);
        assert_eq!(group.state(), State::Backup);
        assert_eq!(
            group.step("VI_1", MemberEvent::WantsMaster(true)),
            vec![
                changed(State::Backup, State::Master),
                o("VI_1", Order::Master),
                o("VI_2", Order::Master),
            ]
        );
    }

    #[test]
    fn one_master_outranked_takes_the_others_to_backup() {
        let mut group = mastered();
        assert_eq!(
            group.step("VI_2", t(State::Master, State::Backup)),
            vec![
                changed(State::Master, State::Backup),
                o("VI_1", Order::Backup)
            ]
        );
        // VI_1 follows: no further action.
        assert_eq!(group.step("VI_1", t(State::Master, State::Backup)), vec![]);
        assert_eq!(group.state(), State::Backup);
    }

    #[test]
    fn one_fault_takes_all_to_fault_until_every_own_fault_clears() {
        let mut group = mastered();
        assert_eq!(
            group.step("VI_1", MemberEvent::OwnFault(true)),
            vec![
                changed(State::Master, State::Fault),
                o("VI_1", Order::Fault(true)),
                o("VI_2", Order::Fault(true)),
            ]
        );
        assert_eq!(group.step("VI_1", t(State::Master, State::Fault)), vec![]);
        assert_eq!(group.step("VI_2", t(State::Master, State::Fault)), vec![]);
        // A second own fault changes nothing; clearing one of two neither.
        assert_eq!(group.step("VI_2", MemberEvent::OwnFault(true)), vec![]);
        assert_eq!(group.step("VI_1", MemberEvent::OwnFault(false)), vec![]);
        assert_eq!(
            group.step("VI_2", MemberEvent::OwnFault(false)),
            vec![
                changed(State::Fault, State::Backup),
                o("VI_1", Order::Fault(false)),
                o("VI_2", Order::Fault(false)),
            ]
        );
    }

    #[test]
    fn a_member_asking_in_a_master_group_is_let_in() {
        let mut group = mastered();
        // VI_2 restarted: it comes back as a backup and asks.
        group.step("VI_2", t(State::Master, State::Init));
        group.step("VI_2", t(State::Init, State::Backup));
        assert_eq!(
            group.step("VI_2", MemberEvent::WantsMaster(true)),
            vec![o("VI_2", Order::Master)]
        );
    }

    // --- The group driving real state machines ------------------------

    /// Members with their machines, a peer per member that may advertise,
    /// and the group between them: a pure simulation of the edge.
    struct World {
        group: Group,
        machines: Vec<Instance>,
        own_fault: Vec<bool>,
        group_fault: Vec<bool>,
        fed_fault: Vec<bool>,
        /// Simulated time: only moves forward.
        clock: Duration,
    }

    fn member_config(priority: u8) -> InstanceConfig {
        let mut config = InstanceConfig::new(
            Vrid::new(1).expect("non-zero"),
            VrrpVersion::V2,
            priority,
            AdvertInterval::from_secs(1).expect("non-zero"),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        );
        config.sync_group = true;
        config
    }

    impl World {
        fn new(priorities: &[u8]) -> World {
            let names = names(priorities.len());
            let n = priorities.len();
            let mut world = World {
                group: Group::new("G", &names),
                machines: priorities
                    .iter()
                    .map(|p| Instance::new(member_config(*p)).expect("valid"))
                    .collect(),
                own_fault: vec![false; n],
                group_fault: vec![false; n],
                fed_fault: vec![false; n],
                clock: Duration::ZERO,
            };
            for i in 0..n {
                world.report(i, MemberEvent::OwnFault(false));
                world.input(Duration::ZERO, i, Input::Startup);
            }
            world
        }

        fn name(i: usize) -> String {
            format!("VI_{}", i + 1)
        }

        fn report(&mut self, i: usize, event: MemberEvent) {
            let mut queue: VecDeque<SyncAction> = self.group.step(&Self::name(i), event).into();
            while let Some(action) = queue.pop_front() {
                if let SyncAction::Order { member, order } = action {
                    let j: usize = member[3..].parse::<usize>().expect("VI_n") - 1;
                    let input = match order {
                        Order::Fault(f) => {
                            self.group_fault[j] = f;
                            let want = f || self.own_fault[j];
                            if want == self.fed_fault[j] {
                                continue;
                            }
                            self.fed_fault[j] = want;
                            Input::Fault(want)
                        }
                        Order::Master => Input::SyncMaster,
                        Order::Backup => Input::SyncBackup,
                    };
                    let now = self.clock;
                    for event in self.machine_step(now, j, input) {
                        queue.extend(self.group.step(&Self::name(j), event));
                    }
                }
            }
        }

        /// Moves the clock to member `j`'s timer (if later) and returns it.
        fn timer_due(&mut self, j: usize) -> Duration {
            if let Some(deadline) = self.machines[j].next_deadline() {
                self.clock = self.clock.max(deadline);
            }
            self.clock
        }

        /// Steps machine `j`, turning its actions into member events.
        fn machine_step(&mut self, now: Duration, j: usize, input: Input) -> Vec<MemberEvent> {
            let before = self.machines[j].state();
            let actions = self.machines[j].step(now, input);
            let mut events = Vec::new();
            let mut from = before;
            for action in actions {
                let to = match action {
                    Action::BecameMaster { .. } => State::Master,
                    Action::BecameBackup { .. } => State::Backup,
                    Action::BecameFault { .. } => State::Fault,
                    Action::Stopped => State::Init,
                    Action::WantMaster(w) => {
                        events.push(MemberEvent::WantsMaster(w));
                        continue;
                    }
                    _ => continue,
                };
                events.push(MemberEvent::Transition { from, to });
                from = to;
            }
            events
        }

        fn input(&mut self, now: Duration, i: usize, input: Input) {
            for event in self.machine_step(now, i, input) {
                self.report(i, event);
            }
        }

        fn set_own_fault(&mut self, i: usize, fault: bool) {
            self.own_fault[i] = fault;
            self.report(i, MemberEvent::OwnFault(fault));
            let want = fault || self.group_fault[i];
            if want != self.fed_fault[i] {
                self.fed_fault[i] = want;
                let now = self.clock;
                self.input(now, i, Input::Fault(want));
            }
        }

        fn states(&self) -> Vec<State> {
            self.machines.iter().map(Instance::state).collect()
        }

        /// What must hold whenever every order has been delivered.
        fn check(&self) {
            let states = self.states();
            if self.own_fault.iter().any(|f| *f) {
                assert_eq!(self.group.state(), State::Fault);
                assert!(states.iter().all(|s| *s == State::Fault), "{states:?}");
            } else {
                assert!(!states.contains(&State::Fault), "{states:?}");
            }
            let masters = states.iter().filter(|s| **s == State::Master).count();
            assert!(
                masters == 0 || masters == states.len(),
                "members move together: {states:?}"
            );
            assert_eq!(
                masters == states.len(),
                self.group.state() == State::Master,
                "{states:?} vs group {:?}",
                self.group.state()
            );
        }
    }

    #[test]
    fn members_go_master_together_after_both_timers_expire() {
        let mut world = World::new(&[100, 200]);
        assert_eq!(world.states(), vec![State::Backup, State::Backup]);
        // The higher priority's shorter timer expires first: held.
        let first = world.timer_due(1);
        world.input(first, 1, Input::Timer);
        assert_eq!(world.states(), vec![State::Backup, State::Backup]);
        let second = world.timer_due(0);
        world.input(second, 0, Input::Timer);
        assert_eq!(world.states(), vec![State::Master, State::Master]);
        world.check();
    }

    #[derive(Clone, Debug)]
    enum Step {
        Timer(usize),
        Advert { member: usize, priority: u8 },
        OwnFault { member: usize, fault: bool },
    }

    fn step_strategy(n: usize) -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..n).prop_map(Step::Timer),
            (0..n, 0u8..=254).prop_map(|(member, priority)| Step::Advert { member, priority }),
            (0..n, any::<bool>()).prop_map(|(member, fault)| Step::OwnFault { member, fault }),
        ]
    }

    proptest! {
        /// Whatever timers, peer adverts and faults arrive, once the group's
        /// orders are delivered the members agree: all FAULT while one has a
        /// fault of its own, never FAULT otherwise, all MASTER or none.
        #[test]
        fn members_always_move_together(
            priorities in proptest::collection::vec(1u8..=255, 2..4),
            steps in proptest::collection::vec(step_strategy(3), 0..60),
        ) {
            let mut world = World::new(&priorities);
            world.check();
            let n = priorities.len();
            for step in steps {
                match step {
                    Step::Timer(i) => {
                        let i = i % n;
                        let now = world.timer_due(i);
                        world.input(now, i, Input::Timer);
                    }
                    Step::Advert { member, priority } => {
                        let i = member % n;
                        world.clock += Duration::from_millis(100);
                        let now = world.clock;
                        world.input(now, i, Input::Advert {
                            from: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                            priority,
                            interval: AdvertInterval::from_secs(1).expect("non-zero"),
                        });
                    }
                    Step::OwnFault { member, fault } => world.set_own_fault(member % n, fault),
                }
                world.check();
            }
        }
    }
}
