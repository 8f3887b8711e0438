//! One VRRP virtual router instance as a pure state machine, `step(now, input) -> Vec<Action>`; never reads the clock, never sends, never touches addresses.
//!
//! The caller owns time: `now` is a monotonic [`Duration`] since any fixed
//! origin, the caller arms one timer at [`Instance::next_deadline`] (also
//! announced as [`Action::ArmTimer`]) and feeds [`Input::Timer`] when it
//! fires. States are Init, Backup, Master (RFC 9568's Active Router) and
//! keepalived's Fault. Reference: `vrrp.md` §6 (timers), §7 (RFC machine),
//! §8 (keepalived), §12.2 (tracking), §12.3 (preemption).
//!
//! Timers (§6): `Skew_Time` is `(256 − priority)/256` s for v2 and
//! `(256 − priority) · Master_Adver_Interval / 256` for v3;
//! `Master_Down_Interval = down_timer_adverts · Master_Adver_Interval +
//! Skew_Time` with `down_timer_adverts` 3 as in the RFCs. A v3 backup learns
//! `Master_Adver_Interval` from the adverts it accepts; v2 uses its own.
//!
//! Where keepalived differs from (or adds to) the RFCs, this machine follows
//! keepalived so that mixed keepmon/keepalived pairs behave alike:
//!
//! * **Fault** (not in the RFCs). `Fault(true)` from Master sends a
//!   priority-0 advert and removes the VIPs (`vrrp_state_leave_master`), from
//!   Backup it is silent; while in Fault nothing is sent and adverts and
//!   timers are ignored. `Fault(false)` goes to Backup with a full
//!   Master_Down_Interval, the owner included (`try_up_instance`), resets
//!   Master_Adver_Interval to our own and restarts the preempt delay. A fault
//!   reported before `Startup` makes the instance start in Fault.
//! * **Startup**: only the address owner (priority 255) goes straight to
//!   Master. keepalived's `state MASTER` with a lower priority still starts in
//!   Backup, so there is no initial-state setting here.
//! * **Backup receiving an advert** (`vrrp_state_backup`): accepted (timer
//!   reset) when preemption is off, when its priority is at least ours, or
//!   while the preempt delay runs; a discarded lower-priority advert leaves the
//!   running timer alone, so the backup takes over when it expires. The owner
//!   always preempts (RFC).
//! * **preempt_delay** (§12.3): starts at startup and at fault recovery;
//!   stopped by an advert of priority ≥ ours; restarted by the next
//!   lower-priority advert after that.
//! * **Master receiving a lower priority** (or equal priority from a lower
//!   address): re-advertise at once ("forcing new election"), which is also
//!   RFC 9568; `lower_priority_advert = false` gives RFC 5798 / keepalived's
//!   `lower_prio_no_advert` (no advert). Either way a GARP/NA burst follows,
//!   as keepalived's `garp_lower_prio_repeat` (default: the master's) does:
//!   a peer that was master for a moment took the hosts' ARP entries.
//! * **Two owners**: the owner with the lower primary address lowers its
//!   priority to 254 and yields (§8 "rogue owner") until the next `Startup`.
//! * **Effective priority** (§12.2): clamped to [1, 254], never applied to an
//!   owner. A backup's running Master_Down_Timer moves by the change in
//!   Master_Down_Interval (`vrrp_set_effective_priority`); a master just
//!   advertises the new value at its next advert.
//! * **Interval mismatch**: a v2 advert with another interval is dropped and
//!   reported as [`Action::IgnoredAdvert`] (RFC MUST, keepalived drops); a v3
//!   one is accepted and its interval learned (keepalived only logs).
//! * An advert carrying our own primary address is ignored and reported
//!   (keepalived warns); the edge should already drop our own looped packets.
//! * `down_timer_adverts` (1–100) is keepalived's non-RFC knob.
//! * **Sync group members** ([`InstanceConfig::sync_group`]) never take
//!   Master on their own: an expired Master_Down_Timer (and, for an owner,
//!   startup) reports [`Action::WantMaster`] instead and waits another full
//!   interval; [`Input::SyncMaster`], [`Input::SyncBackup`] and
//!   [`Input::Fault`] carry the group's decisions ([`crate::vrrp::sync`]).
//!
//! Left to other layers: GARP/NA repeats and delays ([`Action::SendGarp`]
//! means "start the burst"), Accept_Mode (a data-plane filter, no effect on
//! transitions), the sync group's decisions, VRID routing and password checks (the edge),
//! `higher_prio_send_advert`, `vrrp_startup_delay`.

use std::net::IpAddr;
use std::time::Duration;

use crate::vrrp::packet::{AdvertInterval, Vrid, VrrpVersion};

/// Priority of the address owner.
pub const OWNER_PRIORITY: u8 = 255;

/// What one instance is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    pub vrid: Vrid,
    pub version: VrrpVersion,
    /// 1–255; 255 = address owner.
    pub priority: u8,
    /// Our Advertisement_Interval; must fit `version` (whole seconds for v2).
    pub advert_interval: AdvertInterval,
    /// The address our adverts come from: breaks priority ties.
    pub primary_address: IpAddr,
    /// RFC Preempt_Mode; `false` is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived's `preempt_delay`; zero = none.
    pub preempt_delay: Duration,
    /// A master answers a lower-priority advert with its own (RFC 9568,
    /// keepalived's default); `false` = `lower_prio_no_advert`.
    pub lower_priority_advert: bool,
    /// Adverts missed before the master is declared down (RFC: 3).
    pub down_timer_adverts: u8,
    /// A member of a keepalived `vrrp_sync_group`: the instance never
    /// becomes master on its own. Where it would, it stays Backup, reports
    /// [`Action::WantMaster`] and re-arms a full Master_Down_Interval
    /// (keepalived's `vrrp_sync_can_goto_master`); the group answers with
    /// [`Input::SyncMaster`] once every member wants it (see
    /// [`crate::vrrp::sync`]).
    pub sync_group: bool,
}

impl InstanceConfig {
    /// A config with the RFC and keepalived defaults for the rest: preempt,
    /// no preempt delay, re-advertise to lower priorities, 3 missed adverts.
    pub fn new(
        vrid: Vrid,
        version: VrrpVersion,
        priority: u8,
        advert_interval: AdvertInterval,
        primary_address: IpAddr,
    ) -> InstanceConfig {
        InstanceConfig {
            vrid,
            version,
            priority,
            advert_interval,
            primary_address,
            preempt: true,
            preempt_delay: Duration::ZERO,
            lower_priority_advert: true,
            down_timer_adverts: 3,
            sync_group: false,
        }
    }
}

/// An [`InstanceConfig`] the machine cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("priority 0 is reserved for a master that is leaving (use 1-255)")]
    ZeroPriority,
    #[error("advert interval {interval} cannot be sent with vrrp version {version}")]
    Interval {
        interval: AdvertInterval,
        version: u8,
    },
    #[error("down_timer_adverts {0} is outside 1-100")]
    DownTimerAdverts(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down.
    Init,
    Backup,
    /// RFC 9568's Active Router.
    Master,
    /// keepalived's extension: a tracked interface or service forces the
    /// instance out of the election.
    Fault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Startup,
    Shutdown,
    /// A valid advertisement for this VRID from `from` (the edge has checked
    /// TTL, checksum, VRID and password).
    Advert {
        from: IpAddr,
        priority: u8,
        interval: AdvertInterval,
    },
    /// The timer armed at [`Instance::next_deadline`] fired (early or stale
    /// firings are ignored).
    Timer,
    /// The priority computed by tracking (base ± weights); clamped here.
    EffectivePriority(u8),
    /// A tracked interface or service with weight 0 failed (`true`) or
    /// recovered (`false`); for a sync group member also a fault of
    /// another member (keepalived's `vrrp_sync_fault`).
    Fault(bool),
    /// Sync group only: every member wants master (keepalived's
    /// `vrrp_sync_master`): a Backup becomes Master.
    SyncMaster,
    /// Sync group only: another member left Master for Backup
    /// (keepalived's `vrrp_sync_backup`): a Master becomes Backup without
    /// a priority-0 advert.
    SyncBackup,
}

/// Why a transition happened: for logs and notify scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A non-owner starts as backup.
    Startup,
    /// Priority 255 starts as master.
    AddressOwner,
    /// No advert from the master for Master_Down_Interval.
    MasterDown,
    /// The master sent priority 0 (it is leaving) and Skew_Time passed.
    MasterReleased { from: IpAddr },
    /// We discarded a lower-priority master's adverts until the timer fired.
    Preempted { from: IpAddr, priority: u8 },
    /// A master received a higher priority, or an equal one from a higher
    /// address.
    Outranked { from: IpAddr, priority: u8 },
    /// `Fault(true)`.
    Fault,
    /// `Fault(false)`.
    FaultCleared,
    /// [`Input::SyncMaster`] or [`Input::SyncBackup`]: the sync group moved.
    SyncGroup,
}

/// Why an advert was dropped before the state machine looked at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// v2 only: the RFC requires matching intervals.
    IntervalMismatch {
        received: AdvertInterval,
        configured: AdvertInterval,
    },
    /// The advert claims our own primary address.
    OwnAddress,
}

/// What the edge must do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// Start the gratuitous ARP / unsolicited NA burst for every VIP.
    SendGarp,
    BecameMaster {
        reason: Reason,
    },
    BecameBackup {
        reason: Reason,
    },
    BecameFault {
        reason: Reason,
    },
    /// `Shutdown` took the instance back to Init (keepalived's STOP).
    Stopped,
    /// Sync group members only: whether this Backup's Master_Down_Timer
    /// expired since the last advert it accepted, i.e. whether it would
    /// be master were it alone (keepalived's `wantstate == MASTER`).
    /// Reported on change; leaving Backup clears it silently.
    WantMaster(bool),
    IgnoredAdvert {
        from: IpAddr,
        reason: IgnoreReason,
    },
    /// The one timer now fires at this absolute time (replaces any earlier
    /// one). In Init and Fault there is no timer: see
    /// [`Instance::next_deadline`].
    ArmTimer(Duration),
}

/// One virtual router instance.
#[derive(Clone, Debug)]
pub struct Instance {
    config: InstanceConfig,
    state: State,
    /// Effective priority: 255 for an owner, else [1, 254].
    priority: u8,
    /// The last priority reported by tracking, already clamped.
    tracked_priority: Option<u8>,
    master_adver_interval: AdvertInterval,
    deadline: Option<Duration>,
    faulted: bool,
    /// `None` = the preempt delay is not running (see the module docs).
    preempt_until: Option<Duration>,
    down_cause: DownCause,
    /// Sync group members: see [`Action::WantMaster`].
    wants_master: bool,
}

impl Instance {
    pub fn new(config: InstanceConfig) -> Result<Instance, ConfigError> {
        if config.priority == 0 {
            return Err(ConfigError::ZeroPriority);
        }
        if config.advert_interval.wire_value(config.version).is_none() {
            return Err(ConfigError::Interval {
                interval: config.advert_interval,
                version: match config.version {
                    VrrpVersion::V2 => 2,
                    VrrpVersion::V3 => 3,
                },
            });
        }
        if !(1..=100).contains(&config.down_timer_adverts) {
            return Err(ConfigError::DownTimerAdverts(config.down_timer_adverts));
        }
        Ok(Instance {
            state: State::Init,
            priority: config.priority,
            tracked_priority: None,
            master_adver_interval: config.advert_interval,
            deadline: None,
            faulted: false,
            preempt_until: None,
            down_cause: DownCause::Timeout,
            wants_master: false,
            config,
        })
    }

    /// Feeds one input at time `now` and returns what to do.
    pub fn step(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Startup => self.startup(now, &mut actions),
            Input::Shutdown => self.shutdown(&mut actions),
            Input::Advert {
                from,
                priority,
                interval,
            } => self.receive(now, from, priority, interval, &mut actions),
            Input::Timer => self.timer(now, &mut actions),
            Input::EffectivePriority(priority) => {
                self.set_tracked_priority(now, priority, &mut actions)
            }
            Input::Fault(true) => self.enter_fault(&mut actions),
            Input::Fault(false) => self.clear_fault(now, &mut actions),
            Input::SyncMaster => self.sync_master(now, &mut actions),
            Input::SyncBackup => self.sync_backup(now, &mut actions),
        }
        actions
    }

    /// When [`Input::Timer`] is due: the Master_Down_Timer in Backup, the
    /// Adver_Timer in Master, none in Init and Fault.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority we advertise (and compare with).
    pub fn effective_priority(&self) -> u8 {
        self.priority
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// Sync group members: see [`Action::WantMaster`].
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// The master's interval as learned from its adverts (v3), or ours.
    pub fn master_adver_interval(&self) -> AdvertInterval {
        self.master_adver_interval
    }

    /// Skew_Time for the current priority (§6).
    pub fn skew_time(&self) -> Duration {
        let weight = u32::from(256 - u16::from(self.priority));
        match self.config.version {
            VrrpVersion::V2 => Duration::from_secs(1) * weight / 256,
            VrrpVersion::V3 => self.master_adver_interval.as_duration() * weight / 256,
        }
    }

    /// Master_Down_Interval for the current priority and master interval.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval.as_duration() * u32::from(self.config.down_timer_adverts)
            + self.skew_time()
    }

    fn startup(&mut self, now: Duration, actions: &mut Vec<Action>) {
        if self.state != State::Init {
            return;
        }
        // Also undoes a two-owner demotion.
        self.priority = self.base_priority();
        if self.faulted {
            self.state = State::Fault;
            actions.push(Action::BecameFault {
                reason: Reason::Fault,
            });
        } else if self.priority == OWNER_PRIORITY && !self.config.sync_group {
            self.become_master(now, Reason::AddressOwner, actions);
        } else {
            self.become_backup(now, Reason::Startup, actions);
            if self.priority == OWNER_PRIORITY {
                // A sync group member that owns its addresses wants
                // master at once; the group decides.
                self.set_wants_master(true, actions);
            }
        }
    }

    fn shutdown(&mut self, actions: &mut Vec<Action>) {
        match self.state {
            State::Init => return,
            State::Master => {
                actions.push(Action::SendAdvert { priority: 0 });
                actions.push(Action::RemoveVips);
            }
            State::Backup | State::Fault => {}
        }
        self.state = State::Init;
        self.wants_master = false;
        self.deadline = None;
        actions.push(Action::Stopped);
    }

    fn receive(
        &mut self,
        now: Duration,
        from: IpAddr,
        priority: u8,
        interval: AdvertInterval,
        actions: &mut Vec<Action>,
    ) {
        if !matches!(self.state, State::Backup | State::Master) {
            return;
        }
        if self.config.version == VrrpVersion::V2 && interval != self.config.advert_interval {
            actions.push(Action::IgnoredAdvert {
                from,
                reason: IgnoreReason::IntervalMismatch {
                    received: interval,
                    configured: self.config.advert_interval,
                },
            });
            return;
        }
        if from == self.config.primary_address {
            actions.push(Action::IgnoredAdvert {
                from,
                reason: IgnoreReason::OwnAddress,
            });
            return;
        }
        if self.state == State::Backup {
            self.backup_receive(now, from, priority, interval, actions);
        } else {
            self.master_receive(now, from, priority, interval, actions);
        }
    }

    fn backup_receive(
        &mut self,
        now: Duration,
        from: IpAddr,
        priority: u8,
        interval: AdvertInterval,
        actions: &mut Vec<Action>,
    ) {
        if priority == 0 {
            self.down_cause = DownCause::Released { from };
            self.arm(now + self.skew_time(), actions);
            return;
        }
        let preempt_delay_running = !self.config.preempt_delay.is_zero()
            && self.preempt_until.is_none_or(|until| until > now);
        let preempts = self.config.preempt || self.priority == OWNER_PRIORITY;
        if !preempts || priority >= self.priority || preempt_delay_running {
            if self.config.version == VrrpVersion::V3 {
                self.master_adver_interval = interval;
            }
            if !self.config.preempt_delay.is_zero() {
                if priority >= self.priority {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.config.preempt_delay);
                }
            }
            self.down_cause = DownCause::Timeout;
            self.arm(now + self.master_down_interval(), actions);
            // keepalived: "Now we have received a backup, we want to be
            // in BACKUP state".
            self.set_wants_master(false, actions);
        } else if self.down_cause == DownCause::Timeout {
            // Discard: the running timer expires and we take over.
            self.down_cause = DownCause::Discarded { from, priority };
        }
    }

    fn master_receive(
        &mut self,
        now: Duration,
        from: IpAddr,
        priority: u8,
        interval: AdvertInterval,
        actions: &mut Vec<Action>,
    ) {
        if priority == 0 {
            actions.push(Action::SendAdvert {
                priority: self.priority,
            });
            self.arm(now + self.config.advert_interval.as_duration(), actions);
            return;
        }
        let higher_address = from > self.config.primary_address;
        if priority == OWNER_PRIORITY && self.priority == OWNER_PRIORITY && higher_address {
            // Two owners: the lower address yields until restart (§8).
            self.priority = OWNER_PRIORITY - 1;
        }
        if priority > self.priority || (priority == self.priority && higher_address) {
            actions.push(Action::RemoveVips);
            self.become_backup(now, Reason::Outranked { from, priority }, actions);
            if self.config.version == VrrpVersion::V3 {
                self.master_adver_interval = interval;
                self.arm(now + self.master_down_interval(), actions);
            }
        } else {
            if self.config.lower_priority_advert {
                actions.push(Action::SendAdvert {
                    priority: self.priority,
                });
            }
            // keepalived refreshes the hosts' ARP caches here too
            // (`garp_lower_prio_repeat`, by default the master's values):
            // a backup that was master for a moment (a lost advert, a
            // stalled peer) sent GARPs for the VIPs, and without ours the
            // clients keep sending to its MAC until their ARP entries age.
            actions.push(Action::SendGarp);
        }
    }

    fn timer(&mut self, now: Duration, actions: &mut Vec<Action>) {
        if self.deadline.is_none_or(|deadline| deadline > now) {
            return;
        }
        match self.state {
            State::Backup if self.config.sync_group => {
                // Held by the sync group: wait another full interval
                // (keepalived re-arms ms_down_timer the same way).
                self.down_cause = DownCause::Timeout;
                self.arm(now + self.master_down_interval(), actions);
                self.set_wants_master(true, actions);
            }
            State::Backup => {
                let reason = match self.down_cause {
                    DownCause::Timeout => Reason::MasterDown,
                    DownCause::Released { from } => Reason::MasterReleased { from },
                    DownCause::Discarded { from, priority } => Reason::Preempted { from, priority },
                };
                self.become_master(now, reason, actions);
            }
            State::Master => {
                actions.push(Action::SendAdvert {
                    priority: self.priority,
                });
                // Keep the cadence of the schedule, not of the late wake-up
                // (a timer that fires 1 ms late every time would stretch
                // every interval); resynchronise when a whole interval late.
                let interval = self.config.advert_interval.as_duration();
                let scheduled = self.deadline.unwrap_or(now) + interval;
                let next = if scheduled > now {
                    scheduled
                } else {
                    now + interval
                };
                self.arm(next, actions);
            }
            // No timer runs in these states.
            State::Init | State::Fault => self.deadline = None,
        }
    }

    fn set_tracked_priority(&mut self, now: Duration, priority: u8, actions: &mut Vec<Action>) {
        if self.config.priority == OWNER_PRIORITY {
            return;
        }
        let priority = priority.clamp(1, OWNER_PRIORITY - 1);
        self.tracked_priority = Some(priority);
        if priority == self.priority {
            return;
        }
        let old_down_interval = self.master_down_interval();
        self.priority = priority;
        if let (State::Backup, Some(deadline)) = (self.state, self.deadline) {
            let shifted = (deadline + self.master_down_interval())
                .saturating_sub(old_down_interval)
                .max(now);
            self.arm(shifted, actions);
        }
    }

    fn enter_fault(&mut self, actions: &mut Vec<Action>) {
        self.faulted = true;
        match self.state {
            State::Init | State::Fault => return,
            State::Master => {
                actions.push(Action::SendAdvert { priority: 0 });
                actions.push(Action::RemoveVips);
            }
            State::Backup => {}
        }
        self.state = State::Fault;
        self.wants_master = false;
        self.deadline = None;
        actions.push(Action::BecameFault {
            reason: Reason::Fault,
        });
    }

    fn clear_fault(&mut self, now: Duration, actions: &mut Vec<Action>) {
        self.faulted = false;
        if self.state == State::Fault {
            self.become_backup(now, Reason::FaultCleared, actions);
        }
    }

    fn sync_master(&mut self, now: Duration, actions: &mut Vec<Action>) {
        if self.config.sync_group && self.state == State::Backup {
            self.become_master(now, Reason::SyncGroup, actions);
        }
    }

    fn sync_backup(&mut self, now: Duration, actions: &mut Vec<Action>) {
        if self.config.sync_group && self.state == State::Master {
            actions.push(Action::RemoveVips);
            self.become_backup(now, Reason::SyncGroup, actions);
        }
    }

    /// Reports a change of the sync group member's wish (nothing outside
    /// sync groups).
    fn set_wants_master(&mut self, wants: bool, actions: &mut Vec<Action>) {
        if self.config.sync_group && self.wants_master != wants {
            self.wants_master = wants;
            actions.push(Action::WantMaster(wants));
        }
    }

    fn base_priority(&self) -> u8 {
        if self.config.priority == OWNER_PRIORITY {
            OWNER_PRIORITY
        } else {
            self.tracked_priority.unwrap_or(self.config.priority)
        }
    }

    fn become_master(&mut self, now: Duration, reason: Reason, actions: &mut Vec<Action>) {
        self.state = State::Master;
        self.wants_master = false;
        actions.push(Action::SendAdvert {
            priority: self.priority,
        });
        actions.push(Action::AddVips);
        actions.push(Action::SendGarp);
        actions.push(Action::BecameMaster { reason });
        self.arm(now + self.config.advert_interval.as_duration(), actions);
    }

    /// Enters Backup with our own interval and a full Master_Down_Interval;
    /// starts the preempt delay unless we come from Master.
    fn become_backup(&mut self, now: Duration, reason: Reason, actions: &mut Vec<Action>) {
        let from_master = self.state == State::Master;
        self.state = State::Backup;
        self.wants_master = false;
        self.master_adver_interval = self.config.advert_interval;
        self.down_cause = DownCause::Timeout;
        self.preempt_until = (!from_master && !self.config.preempt_delay.is_zero())
            .then(|| now + self.config.preempt_delay);
        actions.push(Action::BecameBackup { reason });
        self.arm(now + self.master_down_interval(), actions);
    }

    /// Sets the one timer, replacing any `ArmTimer` pushed earlier in this step.
    fn arm(&mut self, deadline: Duration, actions: &mut Vec<Action>) {
        self.deadline = Some(deadline);
        actions.retain(|action| !matches!(action, Action::ArmTimer(_)));
        actions.push(Action::ArmTimer(deadline));
    }
}

/// What armed a backup's Master_Down_Timer, to explain its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DownCause {
    Timeout,
    Released { from: IpAddr },
    Discarded { from: IpAddr, priority: u8 },
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;
    use Action::{
        AddVips, ArmTimer, BecameBackup, BecameFault, BecameMaster, IgnoredAdvert, RemoveVips,
        SendAdvert, SendGarp, Stopped,
    };

    /// Milliseconds with up to 6 decimals, exactly.
    fn ms(value: f64) -> Duration {
        Duration::from_nanos((value * 1e6).round() as u64)
    }

    fn addr(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn secs(value: u8) -> AdvertInterval {
        AdvertInterval::from_secs(value).expect("non-zero")
    }

    fn centis(value: u16) -> AdvertInterval {
        AdvertInterval::from_centis(value).expect("1..=4095")
    }

    fn vrid() -> Vrid {
        Vrid::new(51).expect("non-zero")
    }

    /// v2, 1 s, from 10.0.0.1.
    fn v2(priority: u8) -> InstanceConfig {
        InstanceConfig::new(vrid(), VrrpVersion::V2, priority, secs(1), addr(1))
    }

    /// v3 from 10.0.0.1.
    fn v3(priority: u8, interval: u16) -> InstanceConfig {
        InstanceConfig::new(vrid(), VrrpVersion::V3, priority, centis(interval), addr(1))
    }

    /// An advert from 10.0.0.`last` with a 1 s interval.
    fn advert(last: u8, priority: u8) -> Input {
        Input::Advert {
            from: addr(last),
            priority,
            interval: secs(1),
        }
    }

    fn became_master(reason: Reason, priority: u8, next: f64) -> Vec<Action> {
        vec![
            SendAdvert { priority },
            AddVips,
            SendGarp,
            BecameMaster { reason },
            ArmTimer(ms(next)),
        ]
    }

    /// Runs `script` on a fresh instance: at each time (ms), the input, the
    /// actions expected and the state after.
    fn check(config: InstanceConfig, script: &[(f64, Input, Vec<Action>, State)]) {
        let mut instance = Instance::new(config).expect("valid test config");
        for (index, (at, input, expected, state)) in script.iter().enumerate() {
            let actions = instance.step(ms(*at), *input);
            assert_eq!(actions, *expected, "step {index} at {at} ms: {input:?}");
            assert_eq!(
                instance.state(),
                *state,
                "step {index} at {at} ms: {input:?}"
            );
        }
    }

    #[test]
    fn backup_at_startup_then_master_after_master_down_interval() {
        // v2, priority 100: skew 0.609375 s, down interval 3.609375 s (§6).
        check(
            v2(100),
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3609.375)),
                    ],
                    State::Backup,
                ),
                (10.0, Input::Startup, vec![], State::Backup),
                (3609.0, Input::Timer, vec![], State::Backup),
                (
                    3609.375,
                    Input::Timer,
                    became_master(Reason::MasterDown, 100, 4609.375),
                    State::Master,
                ),
                (
                    4609.375,
                    Input::Timer,
                    vec![SendAdvert { priority: 100 }, ArmTimer(ms(5609.375))],
                    State::Master,
                ),
            ],
        );
    }

    #[test]
    fn a_late_advert_timer_keeps_the_cadence_and_resyncs_when_far_behind() {
        check(
            v2(255),
            &[
                (
                    0.0,
                    Input::Startup,
                    became_master(Reason::AddressOwner, 255, 1000.0),
                    State::Master,
                ),
                // 3 ms late: the next advert is still due at 2000 ms.
                (
                    1003.0,
                    Input::Timer,
                    vec![SendAdvert { priority: 255 }, ArmTimer(ms(2000.0))],
                    State::Master,
                ),
                // More than an interval late: one interval from now.
                (
                    3500.0,
                    Input::Timer,
                    vec![SendAdvert { priority: 255 }, ArmTimer(ms(4500.0))],
                    State::Master,
                ),
            ],
        );
    }

    #[test]
    fn owner_goes_master_at_startup() {
        check(
            v2(255),
            &[(
                0.0,
                Input::Startup,
                became_master(Reason::AddressOwner, 255, 1000.0),
                State::Master,
            )],
        );
    }

    #[test]
    fn backup_resets_its_timer_on_higher_or_equal_priority() {
        check(
            v2(100),
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3609.375)),
                    ],
                    State::Backup,
                ),
                (
                    1000.0,
                    advert(2, 150),
                    vec![ArmTimer(ms(4609.375))],
                    State::Backup,
                ),
                (
                    2000.0,
                    advert(2, 100),
                    vec![ArmTimer(ms(5609.375))],
                    State::Backup,
                ),
                (4609.375, Input::Timer, vec![], State::Backup),
            ],
        );
    }

    #[test]
    fn priority_zero_makes_the_backup_take_over_after_skew_time() {
        check(
            v2(100),
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3609.375)),
                    ],
                    State::Backup,
                ),
                (
                    1000.0,
                    advert(2, 150),
                    vec![ArmTimer(ms(4609.375))],
                    State::Backup,
                ),
                (
                    1500.0,
                    advert(2, 0),
                    vec![ArmTimer(ms(2109.375))],
                    State::Backup,
                ),
                (
                    2109.375,
                    Input::Timer,
                    became_master(Reason::MasterReleased { from: addr(2) }, 100, 3109.375),
                    State::Master,
                ),
            ],
        );
    }

    #[test]
    fn preempting_backup_discards_a_lower_master_and_takes_over() {
        // Priority 150: skew 0.4140625 s, down interval 3.4140625 s.
        check(
            v2(150),
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3414.0625)),
                    ],
                    State::Backup,
                ),
                (1000.0, advert(2, 100), vec![], State::Backup),
                (2000.0, advert(2, 100), vec![], State::Backup),
                (
                    3414.0625,
                    Input::Timer,
                    became_master(
                        Reason::Preempted {
                            from: addr(2),
                            priority: 100,
                        },
                        150,
                        4414.0625,
                    ),
                    State::Master,
                ),
            ],
        );
    }

    #[test]
    fn nopreempt_backup_accepts_a_lower_master() {
        let config = InstanceConfig {
            preempt: false,
            ..v2(150)
        };
        check(
            config,
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3414.0625)),
                    ],
                    State::Backup,
                ),
                (
                    1000.0,
                    advert(2, 100),
                    vec![ArmTimer(ms(4414.0625))],
                    State::Backup,
                ),
                (
                    2000.0,
                    advert(2, 100),
                    vec![ArmTimer(ms(5414.0625))],
                    State::Backup,
                ),
                (4414.0625, Input::Timer, vec![], State::Backup),
            ],
        );
    }

    #[test]
    fn nopreempt_does_not_stop_the_owner() {
        let config = InstanceConfig {
            preempt: false,
            ..v2(255)
        };
        let mut owner = Instance::new(config).expect("valid");
        owner.step(ms(0.0), Input::Fault(true));
        owner.step(ms(0.0), Input::Startup);
        owner.step(ms(0.0), Input::Fault(false));
        assert_eq!(owner.state(), State::Backup);
        assert_eq!(owner.step(ms(1000.0), advert(2, 100)), vec![]);
    }

    #[test]
    fn preempt_delay_runs_from_startup() {
        let config = InstanceConfig {
            preempt_delay: Duration::from_secs(10),
            ..v2(150)
        };
        check(
            config,
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3414.0625)),
                    ],
                    State::Backup,
                ),
                (
                    1000.0,
                    advert(2, 100),
                    vec![ArmTimer(ms(4414.0625))],
                    State::Backup,
                ),
                (
                    9000.0,
                    advert(2, 100),
                    vec![ArmTimer(ms(12414.0625))],
                    State::Backup,
                ),
                // The delay is over: discard from now on.
                (10000.0, advert(2, 100), vec![], State::Backup),
                (11000.0, advert(2, 100), vec![], State::Backup),
                (
                    12414.0625,
                    Input::Timer,
                    became_master(
                        Reason::Preempted {
                            from: addr(2),
                            priority: 100,
                        },
                        150,
                        13414.0625,
                    ),
                    State::Master,
                ),
            ],
        );
    }

    #[test]
    fn preempt_delay_stops_on_a_higher_master_and_restarts_on_a_lower_one() {
        let config = InstanceConfig {
            preempt_delay: Duration::from_secs(5),
            ..v2(150)
        };
        check(
            config,
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3414.0625)),
                    ],
                    State::Backup,
                ),
                (
                    1000.0,
                    advert(2, 200),
                    vec![ArmTimer(ms(4414.0625))],
                    State::Backup,
                ),
                // A lower master appears at 2 s: the delay runs until 7 s.
                (
                    2000.0,
                    advert(3, 100),
                    vec![ArmTimer(ms(5414.0625))],
                    State::Backup,
                ),
                (
                    6000.0,
                    advert(3, 100),
                    vec![ArmTimer(ms(9414.0625))],
                    State::Backup,
                ),
                (7000.0, advert(3, 100), vec![], State::Backup),
                (
                    9414.0625,
                    Input::Timer,
                    became_master(
                        Reason::Preempted {
                            from: addr(3),
                            priority: 100,
                        },
                        150,
                        10414.0625,
                    ),
                    State::Master,
                ),
            ],
        );
    }

    /// An instance of `config` that became master at 3.609375 s (priority 100).
    fn synced(priority: u8) -> InstanceConfig {
        InstanceConfig {
            sync_group: true,
            ..v2(priority)
        }
    }

    #[test]
    fn sync_member_waits_for_its_group_to_become_master() {
        // v2, priority 100: down interval 3.609375 s.
        check(
            synced(100),
            &[
                (
                    0.0,
                    Input::Startup,
                    vec![
                        BecameBackup {
                            reason: Reason::Startup,
                        },
                        ArmTimer(ms(3609.375)),
                    ],
                    State::Backup,
                ),
                // Expired: held, wants master, waits a full interval more.
                (
                    3609.375,
                    Input::Timer,
                    vec![ArmTimer(ms(7218.75)), Action::WantMaster(true)],
                    State::Backup,
                ),
                // An accepted advert withdraws the wish.
                (
                    4000.0,
                    advert(2, 150),
                    vec![ArmTimer(ms(7609.375)), Action::WantMaster(false)],
                    State::Backup,
                ),
                (
                    7609.375,
                    Input::Timer,
                    vec![ArmTimer(ms(11218.75)), Action::WantMaster(true)],
                    State::Backup,
                ),
                (
                    7700.0,
                    Input::SyncMaster,
                    became_master(Reason::SyncGroup, 100, 8700.0),
                    State::Master,
                ),
                // Another member was outranked: back to Backup, no priority 0.
                (
                    8000.0,
                    Input::SyncBackup,
                    vec![
                        RemoveVips,
                        BecameBackup {
                            reason: Reason::SyncGroup,
                        },
                        ArmTimer(ms(11609.375)),
                    ],
                    State::Backup,
                ),
                (8100.0, Input::SyncBackup, vec![], State::Backup),
            ],
        );
    }

    #[test]
    fn sync_inputs_do_nothing_outside_a_sync_group() {
        let mut instance = master(v2(100));
        assert_eq!(instance.step(ms(5000.0), Input::SyncBackup), vec![]);
        assert_eq!(instance.state(), State::Master);
        let mut backup = Instance::new(v2(100)).expect("valid");
        backup.step(ms(0.0), Input::Startup);
        assert_eq!(backup.step(ms(1.0), Input::SyncMaster), vec![]);
        assert_eq!(backup.state(), State::Backup);
    }

    #[test]
    fn sync_owner_starts_as_backup_wanting_master() {
        let mut instance = Instance::new(synced(OWNER_PRIORITY)).expect("valid");
        let actions = instance.step(ms(0.0), Input::Startup);
        assert_eq!(instance.state(), State::Backup);
        assert!(actions.contains(&Action::WantMaster(true)), "{actions:?}");
        assert!(instance.wants_master());
        // A faulted member ignores the group's master order.
        instance.step(ms(1.0), Input::Fault(true));
        assert!(!instance.wants_master());
        assert_eq!(instance.step(ms(2.0), Input::SyncMaster), vec![]);
        assert_eq!(instance.state(), State::Fault);
    }

    fn master(config: InstanceConfig) -> Instance {
        let mut instance = Instance::new(config).expect("valid");
        instance.step(ms(0.0), Input::Startup);
        let deadline = instance.next_deadline().expect("backup timer");
        instance.step(deadline, Input::Timer);
        assert_eq!(instance.state(), State::Master);
        instance
    }

    #[test]
    fn master_yields_to_higher_priority() {
        let mut instance = master(v2(100));
        assert_eq!(
            instance.step(ms(5000.0), advert(2, 150)),
            vec![
                RemoveVips,
                BecameBackup {
                    reason: Reason::Outranked {
                        from: addr(2),
                        priority: 150
                    }
                },
                ArmTimer(ms(8609.375)),
            ]
        );
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn equal_priority_is_broken_by_the_higher_address() {
        let config = InstanceConfig {
            primary_address: addr(5),
            ..v2(100)
        };
        let mut instance = master(config.clone());
        assert_eq!(
            instance.step(ms(5000.0), advert(2, 100)),
            vec![SendAdvert { priority: 100 }, SendGarp],
            "10.0.0.2 < 10.0.0.5: we stay master, re-advertise and refresh ARP caches"
        );
        assert_eq!(instance.state(), State::Master);
        let actions = instance.step(ms(5100.0), advert(9, 100));
        assert_eq!(actions[0], RemoveVips);
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn master_answers_lower_priority_unless_told_not_to() {
        // The advert forces a new election; the GARPs take the clients'
        // ARP entries back from a peer that was master for a moment
        // (keepalived's garp_lower_prio_repeat, on by default).
        let mut instance = master(v2(100));
        assert_eq!(
            instance.step(ms(5000.0), advert(2, 50)),
            vec![SendAdvert { priority: 100 }, SendGarp]
        );
        let mut quiet = master(InstanceConfig {
            lower_priority_advert: false,
            ..v2(100)
        });
        assert_eq!(quiet.step(ms(5000.0), advert(2, 50)), vec![SendGarp]);
        assert_eq!(quiet.state(), State::Master);
    }

    #[test]
    fn master_answers_priority_zero_at_once_and_resets_its_timer() {
        let mut instance = master(v2(100));
        assert_eq!(
            instance.step(ms(4000.0), advert(2, 0)),
            vec![SendAdvert { priority: 100 }, ArmTimer(ms(5000.0))]
        );
    }

    #[test]
    fn shutdown_sends_priority_zero_from_master_only() {
        let mut instance = master(v2(100));
        assert_eq!(
            instance.step(ms(5000.0), Input::Shutdown),
            vec![SendAdvert { priority: 0 }, RemoveVips, Stopped]
        );
        assert_eq!(instance.state(), State::Init);
        assert_eq!(instance.next_deadline(), None);
        assert_eq!(instance.step(ms(5001.0), Input::Shutdown), vec![]);
        assert_eq!(instance.step(ms(5002.0), advert(2, 150)), vec![]);
        assert_eq!(instance.step(ms(6000.0), Input::Timer), vec![]);
        // Restart: backup again.
        assert_eq!(
            instance.step(ms(7000.0), Input::Startup),
            vec![
                BecameBackup {
                    reason: Reason::Startup
                },
                ArmTimer(ms(10609.375))
            ]
        );
        assert_eq!(instance.step(ms(8000.0), Input::Shutdown), vec![Stopped]);
    }

    #[test]
    fn fault_removes_vips_and_recovers_to_backup() {
        let mut instance = master(v2(100));
        assert_eq!(
            instance.step(ms(5000.0), Input::Fault(true)),
            vec![
                SendAdvert { priority: 0 },
                RemoveVips,
                BecameFault {
                    reason: Reason::Fault
                }
            ]
        );
        assert_eq!(instance.state(), State::Fault);
        assert_eq!(instance.next_deadline(), None);
        // Nothing is sent and nothing changes while in fault.
        assert_eq!(instance.step(ms(5100.0), advert(2, 0)), vec![]);
        assert_eq!(instance.step(ms(5200.0), Input::Timer), vec![]);
        assert_eq!(instance.step(ms(5300.0), Input::Fault(true)), vec![]);
        assert_eq!(
            instance.step(ms(5400.0), Input::EffectivePriority(50)),
            vec![]
        );
        // Priority 50: skew 0.8046875 s.
        assert_eq!(
            instance.step(ms(6000.0), Input::Fault(false)),
            vec![
                BecameBackup {
                    reason: Reason::FaultCleared
                },
                ArmTimer(ms(9804.6875))
            ]
        );
        assert_eq!(instance.step(ms(6100.0), Input::Fault(false)), vec![]);
        assert_eq!(
            instance.step(ms(7000.0), Input::Fault(true)),
            vec![BecameFault {
                reason: Reason::Fault
            }],
            "a backup enters fault silently"
        );
    }

    #[test]
    fn a_fault_before_startup_starts_in_fault() {
        check(
            v2(255),
            &[
                (0.0, Input::Fault(true), vec![], State::Init),
                (
                    0.0,
                    Input::Startup,
                    vec![BecameFault {
                        reason: Reason::Fault,
                    }],
                    State::Fault,
                ),
                (
                    1000.0,
                    Input::Fault(false),
                    vec![
                        BecameBackup {
                            reason: Reason::FaultCleared,
                        },
                        ArmTimer(ms(4003.90625)),
                    ],
                    State::Backup,
                ),
                (
                    4003.90625,
                    Input::Timer,
                    became_master(Reason::MasterDown, 255, 5003.90625),
                    State::Master,
                ),
            ],
        );
    }

    #[test]
    fn effective_priority_is_clamped_and_moves_the_backup_timer() {
        let mut instance = Instance::new(v2(100)).expect("valid");
        instance.step(ms(0.0), Input::Startup);
        // 0 → 1: down interval 3.609375 → 3.99609375 s.
        assert_eq!(
            instance.step(ms(100.0), Input::EffectivePriority(0)),
            vec![ArmTimer(ms(3996.09375))]
        );
        assert_eq!(instance.effective_priority(), 1);
        // 255 → 254: down interval 3.0078125 s.
        assert_eq!(
            instance.step(ms(200.0), Input::EffectivePriority(255)),
            vec![ArmTimer(ms(3007.8125))]
        );
        assert_eq!(instance.effective_priority(), 254);
        assert_eq!(
            instance.step(ms(300.0), Input::EffectivePriority(254)),
            vec![]
        );
        // A move into the past fires at once.
        instance.step(ms(2000.0), Input::EffectivePriority(1));
        assert_eq!(
            instance.step(ms(3900.0), Input::EffectivePriority(254)),
            vec![ArmTimer(ms(3900.0))]
        );

        // An owner is never changed.
        let mut owner = Instance::new(v2(255)).expect("valid");
        owner.step(ms(0.0), Input::Startup);
        assert_eq!(owner.step(ms(10.0), Input::EffectivePriority(10)), vec![]);
        assert_eq!(owner.effective_priority(), 255);

        // A master advertises the new priority at its next advert.
        let mut instance = master(v2(100));
        assert_eq!(
            instance.step(ms(4000.0), Input::EffectivePriority(120)),
            vec![]
        );
        assert_eq!(
            instance.step(ms(4609.375), Input::Timer),
            vec![SendAdvert { priority: 120 }, ArmTimer(ms(5609.375))]
        );
        // And keeps it across a restart.
        instance.step(ms(5000.0), Input::Shutdown);
        instance.step(ms(5000.0), Input::Startup);
        assert_eq!(instance.effective_priority(), 120);
    }

    #[test]
    fn skew_and_master_down_interval_match_the_worked_examples() {
        // §6, backup priority 100.
        for (config, skew, down) in [
            (v2(100), 609.375, 3609.375),
            (v3(100, 100), 609.375, 3609.375),
            (v3(100, 10), 60.9375, 360.9375),
            (v3(100, 5), 30.46875, 180.46875),
            (v2(1), 996.09375, 3996.09375),
            (v2(255), 3.90625, 3003.90625),
        ] {
            let instance = Instance::new(config.clone()).expect("valid");
            assert_eq!(instance.skew_time(), ms(skew), "{config:?}");
            assert_eq!(instance.master_down_interval(), ms(down), "{config:?}");
        }
        let slow = InstanceConfig {
            down_timer_adverts: 5,
            ..v2(100)
        };
        let instance = Instance::new(slow).expect("valid");
        assert_eq!(instance.master_down_interval(), ms(5609.375));
    }

    #[test]
    fn v3_backup_learns_the_master_interval() {
        let mut instance = Instance::new(v3(100, 100)).expect("valid");
        instance.step(ms(0.0), Input::Startup);
        let from_fast_master = Input::Advert {
            from: addr(2),
            priority: 200,
            interval: centis(50),
        };
        // 3 × 0.5 s + 156/256 × 0.5 s = 1.8046875 s.
        assert_eq!(
            instance.step(ms(1000.0), from_fast_master),
            vec![ArmTimer(ms(2804.6875))]
        );
        assert_eq!(instance.master_adver_interval(), centis(50));
        // A master yielding to a v3 advert learns its interval too.
        let mut instance = master(v3(100, 100));
        let actions = instance.step(ms(4000.0), from_fast_master);
        assert_eq!(actions.last(), Some(&ArmTimer(ms(5804.6875))));
        // A priority-0 advert does not change the interval.
        let mut instance = Instance::new(v3(100, 100)).expect("valid");
        instance.step(ms(0.0), Input::Startup);
        let leaving = Input::Advert {
            from: addr(2),
            priority: 0,
            interval: centis(10),
        };
        assert_eq!(
            instance.step(ms(1000.0), leaving),
            vec![ArmTimer(ms(1609.375))]
        );
    }

    #[test]
    fn v2_drops_adverts_with_another_interval_and_own_address() {
        let mut instance = Instance::new(v2(100)).expect("valid");
        instance.step(ms(0.0), Input::Startup);
        let other_interval = Input::Advert {
            from: addr(2),
            priority: 150,
            interval: secs(2),
        };
        assert_eq!(
            instance.step(ms(1000.0), other_interval),
            vec![IgnoredAdvert {
                from: addr(2),
                reason: IgnoreReason::IntervalMismatch {
                    received: secs(2),
                    configured: secs(1)
                }
            }]
        );
        assert_eq!(
            instance.step(ms(1000.0), advert(1, 150)),
            vec![IgnoredAdvert {
                from: addr(1),
                reason: IgnoreReason::OwnAddress
            }]
        );
        assert_eq!(instance.next_deadline(), Some(ms(3609.375)));
    }

    #[test]
    fn of_two_owners_the_lower_address_yields() {
        let mut low = Instance::new(v2(255)).expect("valid");
        low.step(ms(0.0), Input::Startup);
        assert_eq!(
            low.step(ms(100.0), advert(2, 255)),
            vec![
                RemoveVips,
                BecameBackup {
                    reason: Reason::Outranked {
                        from: addr(2),
                        priority: 255
                    }
                },
                ArmTimer(ms(3107.8125)),
            ]
        );
        assert_eq!(low.effective_priority(), 254);
        // It then behaves as a 254 backup and accepts the other owner.
        assert_eq!(
            low.step(ms(1100.0), advert(2, 255)),
            vec![ArmTimer(ms(4107.8125))]
        );
        // A restart restores the owner.
        low.step(ms(2000.0), Input::Shutdown);
        low.step(ms(2000.0), Input::Startup);
        assert_eq!(low.effective_priority(), 255);
        assert_eq!(low.state(), State::Master);

        let mut high = Instance::new(InstanceConfig {
            primary_address: addr(5),
            ..v2(255)
        })
        .expect("valid");
        high.step(ms(0.0), Input::Startup);
        assert_eq!(
            high.step(ms(100.0), advert(2, 255)),
            vec![SendAdvert { priority: 255 }, SendGarp]
        );
        assert_eq!(high.effective_priority(), 255);
    }

    #[test]
    fn bad_configs_are_rejected_with_the_value() {
        let cases = [
            (
                v2(0),
                "priority 0 is reserved for a master that is leaving (use 1-255)",
            ),
            (
                InstanceConfig {
                    advert_interval: centis(150),
                    ..v2(100)
                },
                "advert interval 1.50s cannot be sent with vrrp version 2",
            ),
            (
                InstanceConfig {
                    down_timer_adverts: 0,
                    ..v2(100)
                },
                "down_timer_adverts 0 is outside 1-100",
            ),
            (
                InstanceConfig {
                    down_timer_adverts: 101,
                    ..v2(100)
                },
                "down_timer_adverts 101 is outside 1-100",
            ),
        ];
        for (config, message) in cases {
            let error = Instance::new(config).expect_err(message);
            assert_eq!(error.to_string(), message);
        }
    }

    // -----------------------------------------------------------------------
    // A simulated network: every advert reaches every other instance at the
    // instant it is sent, and a virtual clock fires timers in order.

    struct Net {
        nodes: Vec<Instance>,
        now: Duration,
        /// Two masters may coexist at most this long.
        dual_bound: Duration,
        /// With no master, a backup takes over within this long.
        down_bound: Duration,
        dual_since: Option<Duration>,
        no_master_since: Option<Duration>,
        backup_since: Vec<Option<Duration>>,
        vips: Vec<bool>,
        trace: VecDeque<(Duration, usize, Input, Vec<Action>)>,
    }

    impl Net {
        fn new(configs: Vec<InstanceConfig>) -> Net {
            let max_interval = configs
                .iter()
                .map(|config| config.advert_interval.as_duration())
                .max()
                .unwrap_or_default();
            let max_adverts = configs
                .iter()
                .map(|config| config.down_timer_adverts)
                .max()
                .unwrap_or(3);
            let max_skew = match configs.first().map(|config| config.version) {
                Some(VrrpVersion::V2) | None => Duration::from_secs(1) * 255 / 256,
                Some(VrrpVersion::V3) => max_interval * 255 / 256,
            };
            let count = configs.len();
            Net {
                nodes: configs
                    .into_iter()
                    .map(|config| Instance::new(config).expect("valid test config"))
                    .collect(),
                now: Duration::ZERO,
                dual_bound: max_interval + max_skew,
                down_bound: max_interval * u32::from(max_adverts) + max_skew,
                dual_since: None,
                no_master_since: Some(Duration::ZERO),
                backup_since: vec![None; count],
                vips: vec![false; count],
                trace: VecDeque::new(),
            }
        }

        /// Never two masters, not even briefly (the network is instant).
        fn strict(mut self) -> Net {
            self.dual_bound = Duration::ZERO;
            self
        }

        fn masters(&self) -> Vec<usize> {
            (0..self.nodes.len())
                .filter(|&index| self.nodes[index].state() == State::Master)
                .collect()
        }

        fn trace(&self) -> String {
            self.trace
                .iter()
                .map(|(at, index, input, actions)| {
                    format!("{at:?} #{index} {input:?} -> {actions:?}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        }

        /// Runs the clock to `at`, then feeds `input` to node `index`.
        fn at(&mut self, at: Duration, index: usize, input: Input) {
            self.advance_to(at);
            self.inject(index, input);
        }

        fn advance_to(&mut self, at: Duration) {
            loop {
                let due = (0..self.nodes.len())
                    .filter_map(|index| Some((self.nodes[index].next_deadline()?, index)))
                    .filter(|&(deadline, _)| deadline <= at)
                    .min();
                let Some((deadline, index)) = due else { break };
                self.observe(deadline);
                self.now = deadline;
                self.inject(index, Input::Timer);
            }
            self.observe(at);
            self.now = at;
        }

        /// Checks what held between the last event and `at`.
        fn observe(&self, at: Duration) {
            if let Some(since) = self.dual_since {
                assert!(
                    at - since <= self.dual_bound,
                    "masters {:?} since {since:?}, now {at:?}\n{}",
                    self.masters(),
                    self.trace()
                );
            }
            if let (true, Some(since)) = (self.masters().is_empty(), self.no_master_since) {
                for (index, backup_since) in self.backup_since.iter().enumerate() {
                    let Some(backup_since) = backup_since else {
                        continue;
                    };
                    let start = since.max(*backup_since);
                    assert!(
                        at <= start + self.down_bound,
                        "no master since {since:?}, #{index} backup since {backup_since:?}, now {at:?}\n{}",
                        self.trace()
                    );
                }
            }
        }

        /// Feeds one input and delivers the adverts it causes, recursively.
        fn inject(&mut self, index: usize, input: Input) {
            let mut queue = VecDeque::from([(index, input)]);
            let mut steps = 0;
            while let Some((index, input)) = queue.pop_front() {
                steps += 1;
                assert!(steps < 1000, "advert storm\n{}", self.trace());
                let actions = self.nodes[index].step(self.now, input);
                self.check_step(index, input, &actions);
                for action in &actions {
                    let Action::SendAdvert { priority } = *action else {
                        continue;
                    };
                    let sender = self.nodes[index].config();
                    let advert = Input::Advert {
                        from: sender.primary_address,
                        priority,
                        interval: sender.advert_interval,
                    };
                    for other in (0..self.nodes.len()).filter(|&other| other != index) {
                        queue.push_back((other, advert));
                    }
                }
                if self.masters().is_empty() {
                    self.no_master_since.get_or_insert(self.now);
                } else {
                    self.no_master_since = None;
                }
            }
            if self.masters().len() >= 2 {
                self.dual_since.get_or_insert(self.now);
            } else {
                self.dual_since = None;
            }
        }

        fn check_step(&mut self, index: usize, input: Input, actions: &[Action]) {
            if !actions.is_empty() {
                if self.trace.len() == 400 {
                    self.trace.pop_front();
                }
                self.trace
                    .push_back((self.now, index, input, actions.to_vec()));
            }
            let node = &self.nodes[index];
            for action in actions {
                match action {
                    AddVips => {
                        assert!(!self.vips[index], "VIPs added twice\n{}", self.trace());
                        self.vips[index] = true;
                    }
                    RemoveVips => {
                        assert!(self.vips[index], "VIPs removed twice\n{}", self.trace());
                        self.vips[index] = false;
                    }
                    BecameBackup { .. } => self.backup_since[index] = Some(self.now),
                    BecameMaster { .. } | BecameFault { .. } | Stopped => {
                        self.backup_since[index] = None
                    }
                    _ => {}
                }
            }
            let state = node.state();
            assert_eq!(
                self.vips[index],
                state == State::Master,
                "\n{}",
                self.trace()
            );
            let timer_runs = matches!(state, State::Backup | State::Master);
            assert_eq!(
                node.next_deadline().is_some(),
                timer_runs,
                "\n{}",
                self.trace()
            );
            assert!(
                node.next_deadline()
                    .is_none_or(|deadline| deadline >= self.now)
            );
            let armed = actions.iter().rev().find_map(|action| match action {
                ArmTimer(deadline) => Some(*deadline),
                _ => None,
            });
            if armed.is_some() {
                assert_eq!(node.next_deadline(), armed, "\n{}", self.trace());
            }
        }
    }

    fn secs_f(value: f64) -> Duration {
        ms(value * 1000.0)
    }

    fn pair(a: InstanceConfig, b: InstanceConfig) -> Net {
        let b = InstanceConfig {
            primary_address: addr(2),
            ..b
        };
        Net::new(vec![a, b]).strict()
    }

    #[test]
    fn two_routers_priority_changes_and_preemption() {
        let mut net = pair(v2(150), v2(100));
        net.at(secs_f(0.0), 0, Input::Startup);
        net.at(secs_f(0.0), 1, Input::Startup);
        net.advance_to(ms(3414.0));
        assert!(net.masters().is_empty());
        net.advance_to(ms(3414.0625));
        assert_eq!(
            net.masters(),
            vec![0],
            "the higher priority wins the first election"
        );
        net.advance_to(secs_f(20.0));
        assert_eq!(net.masters(), vec![0]);

        // A's tracking lowers it to 50: B discards A's adverts and takes
        // over when its timer (reset by A's last 150 advert) expires.
        net.at(secs_f(20.0), 0, Input::EffectivePriority(50));
        net.advance_to(ms(23023.0));
        assert_eq!(net.masters(), vec![0]);
        net.advance_to(ms(23024.0));
        assert_eq!(net.masters(), vec![1]);

        // A recovers to 150 and preempts B within its down interval.
        net.at(secs_f(30.0), 0, Input::EffectivePriority(150));
        net.advance_to(secs_f(30.0 + 3.5));
        assert_eq!(net.masters(), vec![0]);
        net.advance_to(secs_f(60.0));
        assert_eq!(net.masters(), vec![0]);
    }

    #[test]
    fn two_routers_nopreempt_keeps_the_running_master() {
        let a = InstanceConfig {
            preempt: false,
            ..v2(150)
        };
        let mut net = pair(a, v2(100));
        net.at(secs_f(0.0), 1, Input::Startup);
        net.advance_to(secs_f(4.0));
        assert_eq!(net.masters(), vec![1]);
        net.at(secs_f(10.0), 0, Input::Startup);
        net.advance_to(secs_f(30.0));
        assert_eq!(net.masters(), vec![1], "nopreempt: A does not take over");

        // B leaves gracefully: A takes over after its skew (0.4140625 s).
        net.at(secs_f(30.0), 1, Input::Shutdown);
        net.advance_to(ms(30414.0));
        assert!(net.masters().is_empty());
        net.advance_to(ms(30414.0625));
        assert_eq!(net.masters(), vec![0]);
        // B comes back (not an owner): it stays backup under the higher A.
        net.at(secs_f(40.0), 1, Input::Startup);
        net.advance_to(secs_f(60.0));
        assert_eq!(net.masters(), vec![0]);
    }

    #[test]
    fn two_routers_priority_zero_handover_and_restart() {
        let mut net = pair(v2(150), v2(100));
        net.at(secs_f(0.0), 0, Input::Startup);
        net.at(secs_f(0.0), 1, Input::Startup);
        net.advance_to(secs_f(10.0));
        assert_eq!(net.masters(), vec![0]);
        net.at(secs_f(10.0), 0, Input::Shutdown);
        net.advance_to(ms(10609.0));
        assert!(net.masters().is_empty());
        net.advance_to(ms(10609.375));
        assert_eq!(net.masters(), vec![1], "B takes over after Skew_Time");
        // A restarts as backup and preempts B after its down interval.
        net.at(secs_f(15.0), 0, Input::Startup);
        net.advance_to(ms(18414.0));
        assert_eq!(net.masters(), vec![1]);
        net.advance_to(ms(18414.0625));
        assert_eq!(net.masters(), vec![0]);
    }

    #[test]
    fn two_routers_fault_and_recovery() {
        let mut net = pair(v2(150), v2(100));
        net.at(secs_f(0.0), 0, Input::Startup);
        net.at(secs_f(0.0), 1, Input::Startup);
        net.advance_to(secs_f(10.0));
        net.at(secs_f(10.0), 0, Input::Fault(true));
        assert_eq!(net.nodes[0].state(), State::Fault);
        net.advance_to(ms(10609.375));
        assert_eq!(
            net.masters(),
            vec![1],
            "the priority-0 advert sent on fault"
        );
        net.at(secs_f(15.0), 0, Input::Fault(false));
        assert_eq!(net.nodes[0].state(), State::Backup);
        net.advance_to(ms(18414.0625));
        assert_eq!(net.masters(), vec![0]);
        // B's fault while backup changes nothing for A.
        net.at(secs_f(20.0), 1, Input::Fault(true));
        net.advance_to(secs_f(30.0));
        assert_eq!(net.masters(), vec![0]);
    }

    #[test]
    fn v3_owner_and_two_backups_with_different_intervals() {
        let owner = InstanceConfig {
            primary_address: addr(3),
            ..v3(255, 100)
        };
        let b = InstanceConfig {
            primary_address: addr(1),
            ..v3(200, 10)
        };
        let c = InstanceConfig {
            primary_address: addr(2),
            ..v3(100, 50)
        };
        let mut net = Net::new(vec![b, c, owner]).strict();
        net.at(secs_f(0.0), 0, Input::Startup);
        net.at(secs_f(0.0), 1, Input::Startup);
        // B: 3 × 0.1 s + 56/256 × 0.1 s.
        net.advance_to(ms(321.875));
        assert_eq!(net.masters(), vec![0]);
        assert_eq!(net.nodes[1].master_adver_interval(), centis(10));
        // The owner preempts at once.
        net.at(secs_f(5.0), 2, Input::Startup);
        assert_eq!(net.masters(), vec![2]);
        assert_eq!(net.nodes[0].master_adver_interval(), centis(100));
        net.advance_to(secs_f(10.0));
        // The owner leaves: B (higher priority, shorter skew) wins.
        net.at(secs_f(10.0), 2, Input::Shutdown);
        net.advance_to(secs_f(11.0));
        assert_eq!(net.masters(), vec![0]);
        net.advance_to(secs_f(20.0));
        assert_eq!(net.masters(), vec![0]);
    }

    #[test]
    fn equal_priorities_elect_the_higher_address() {
        let mut net = pair(v2(100), v2(100));
        net.at(secs_f(0.0), 0, Input::Startup);
        net.at(secs_f(0.0), 1, Input::Startup);
        net.advance_to(secs_f(10.0));
        // Both timers expire together; node 0 fires first and node 1 accepts
        // its equal-priority advert, so the first to fire keeps the role.
        assert_eq!(net.masters(), vec![0]);

        // Without an instant network both could go master; the lower address
        // then yields on the first advert from the higher one.
        let mut a = master(v2(100));
        let actions = a.step(ms(4000.0), advert(2, 100));
        assert_eq!(actions[0], RemoveVips);
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Priority(u8),
        Fault(bool),
        Shutdown,
        Startup,
    }

    impl Op {
        fn input(self) -> Input {
            match self {
                Op::Priority(priority) => Input::EffectivePriority(priority),
                Op::Fault(on) => Input::Fault(on),
                Op::Shutdown => Input::Shutdown,
                Op::Startup => Input::Startup,
            }
        }
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Priority),
            any::<bool>().prop_map(Op::Fault),
            Just(Op::Shutdown),
            Just(Op::Startup),
        ]
    }

    fn node_strategy(version: VrrpVersion) -> impl Strategy<Value = InstanceConfig> {
        let interval = match version {
            VrrpVersion::V2 => (1u8..=3).prop_map(secs).boxed(),
            VrrpVersion::V3 => (5u16..=300).prop_map(centis).boxed(),
        };
        (
            prop_oneof![9 => 1u8..=254, 1 => Just(OWNER_PRIORITY)],
            interval,
            any::<bool>(),
            prop_oneof![Just(0u64), 0u64..5000],
            any::<bool>(),
            prop_oneof![3 => Just(3u8), 1 => 1u8..=5],
        )
            .prop_map(
                move |(priority, interval, preempt, delay, lower_advert, adverts)| InstanceConfig {
                    preempt,
                    preempt_delay: Duration::from_millis(delay),
                    lower_priority_advert: lower_advert,
                    down_timer_adverts: adverts,
                    ..InstanceConfig::new(vrid(), version, priority, interval, addr(0))
                },
            )
    }

    fn scenario_strategy() -> impl Strategy<Value = (Vec<InstanceConfig>, Vec<(u64, usize, Op)>)> {
        let nodes = prop_oneof![
            // v2 peers must share one interval: they drop each other's adverts
            // otherwise (RFC 3768, keepalived), which is a split brain by
            // configuration, not something the machine can prevent.
            (
                prop::collection::vec(node_strategy(VrrpVersion::V2), 2..=3),
                1u8..=3
            )
                .prop_map(|(nodes, interval)| {
                    nodes
                        .into_iter()
                        .map(|node| InstanceConfig {
                            advert_interval: secs(interval),
                            ..node
                        })
                        .collect()
                }),
            prop::collection::vec(node_strategy(VrrpVersion::V3), 2..=3),
        ];
        (
            nodes,
            prop::collection::vec((0u64..4000, 0usize..3, op_strategy()), 0..40),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Random priority changes, faults and restarts over a virtual clock:
        /// never two masters for longer than one advert interval + skew, a
        /// new master within Master_Down_Interval of the last one leaving
        /// (both checked at every event by `Net::observe`), and exactly one
        /// master once things settle.
        #[test]
        fn random_runs_keep_one_master((configs, ops) in scenario_strategy()) {
            let count = configs.len();
            let configs = configs
                .into_iter()
                .enumerate()
                .map(|(index, config)| InstanceConfig {
                    primary_address: addr(index as u8 + 1),
                    ..config
                })
                .collect();
            let mut net = Net::new(configs);
            for index in 0..count {
                net.at(Duration::ZERO, index, Input::Startup);
            }
            let mut now = Duration::ZERO;
            for (gap, index, op) in ops {
                now += Duration::from_millis(gap);
                net.at(now, index % count, op.input());
            }
            net.advance_to(now + Duration::from_secs(60));
            let running = net
                .nodes
                .iter()
                .filter(|node| matches!(node.state(), State::Backup | State::Master))
                .count();
            let expected = usize::from(running > 0);
            prop_assert_eq!(net.masters().len(), expected, "{}", net.trace());
        }
    }
}
