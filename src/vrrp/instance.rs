//! The async driver of one VRRP instance: a task that feeds the pure state machine with time, received adverts, link state and tracking, and carries out its actions on sockets and netlink; never decides a transition itself.
//!
//! ```text
//!  supervisor ── Command::{Track, Shutdown} ──►┐
//!  sync group ── Command::Sync(order) ────────►│
//!  raw socket ── Received ── receive checks ──►│  fsm::Instance::step(now, input)
//!  link poll  ── Fault(link down) ────────────►│        │ Vec<Action>
//!  timer      ── Timer ───────────────────────►┘        ▼
//!         send adverts, add/remove VIPs, GARP/NA bursts, Transition events, status
//! ```
//!
//! Receive checks done here (`vrrp.md` §7 "Receive checks", §8 validation
//! order): our own looped packets are dropped; multicast adverts must
//! arrive with TTL / hop limit 255; in unicast mode the source must be a
//! configured peer; then [`packet::decode_with_checksum`] (length, version,
//! type, checksum in every accepted form); VRID; VRRP version; the v2
//! password (compared in constant time). A differing VIP list is logged and
//! the advert still used (RFC: MAY check). Every drop is counted in
//! [`VrrpCounters`] and logged at most once per [`LOG_EVERY`] per kind, with
//! the number suppressed meanwhile — a switch flooding foreign VRRP cannot
//! flood the log.
//!
//! Fairness: the select loop is `biased` with commands, the state-machine
//! timer, GARP and the link poll ahead of the socket, and handles one packet
//! per turn, so a flood of bad packets costs CPU but never delays a timer
//! (each instance is its own task; the supervisor is another).
//!
//! Time: `now` for the machine is tokio's monotonic clock since the task
//! started.
//!
//! Startup: configured VIPs left on the interface (by a killed process)
//! are removed before the machine starts, unless the instance is the
//! address owner (priority 255), which goes straight to MASTER anyway.
//! If the interface or its source address is missing the instance waits
//! in FAULT and retries every second.
//!
//! A member of a sync group ([`SyncLink`]) runs its machine with
//! [`InstanceConfig::sync_group`] and reports to the group's task
//! ([`crate::vrrp::group`]) its own fault (tracking, links: also while it
//! cannot start), its wish to be master and its transitions; the group's
//! orders come back as [`Command::Sync`]. The machine is faulted while its
//! own fault or the group's holds.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::bfd::BfdStates;
use crate::config::model::{VirtualAddress, VrrpInstance};
use crate::control::proto::{VrrpCounters, VrrpDump};
use crate::ratelimit::LogLimit;
use crate::vrrp::addr::{Link, Netlink};
use crate::vrrp::fsm::{self, Action, IgnoreReason, Input, InstanceConfig, Reason, State};
use crate::vrrp::net::{FrameSender, Received, SocketOptions, VrrpSockets};
use crate::vrrp::packet::{
    self, Advert, AdvertInterval, ChecksumMode, DecodeError, VRRP_GROUP_V4, VRRP_GROUP_V6,
    VrrpVersion,
};
use crate::vrrp::process;
use crate::vrrp::sync::{MemberEvent, Order};
use crate::wallclock::unix_now;

/// A kind of dropped packet is logged at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(30);
/// How often the link's carrier is checked.
pub const LINK_POLL: Duration = Duration::from_millis(100);
/// Packets handled per turn of the loop after the one that woke it.
pub const RECEIVE_BATCH: usize = 255;
/// Queued packets read before a timer expiry is acted on.
pub const DRAIN_BEFORE_TIMER: usize = 4096;
/// How long to wait before retrying a missing interface or address.
pub const RETRY_SETUP: Duration = Duration::from_secs(1);

/// What the supervisor tells an instance.
#[derive(Debug)]
pub enum Command {
    /// Tracking's verdict: the effective priority and whether a weight-0
    /// target is failing (`why` names it).
    Track { priority: u8, fault: Option<String> },
    /// Send priority 0 if master, remove the VIPs, stop; answer when done.
    Shutdown(oneshot::Sender<()>),
    /// The instance's sync group decided (see [`crate::vrrp::sync`]).
    Sync(Order),
}

/// How a sync group member reaches its group's task.
#[derive(Clone, Debug)]
pub struct SyncLink {
    pub group: String,
    pub reports: mpsc::UnboundedSender<MemberReport>,
}

/// One member's report to its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberReport {
    pub instance: String,
    pub event: MemberEvent,
}

/// A state change, for alerts and the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The instance, or the sync group when `group` is set.
    pub instance: String,
    /// A sync group's transition (its notifies run with `GROUP`).
    pub group: bool,
    pub from: State,
    pub to: State,
    pub reason: String,
    pub priority: u8,
}

/// The supervisor's handle on a running instance.
pub struct Handle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub status: watch::Receiver<VrrpDump>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the instance's task. With `after`, the task first waits for that
/// one (the same instance under its old config, shutting down) to finish,
/// so two generations never hold the VIPs at once.
pub fn spawn(
    config: VrrpInstance,
    transitions: mpsc::UnboundedSender<Transition>,
    after: Option<tokio::task::JoinHandle<()>>,
    sync: Option<SyncLink>,
    bfd: watch::Receiver<BfdStates>,
) -> Handle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (status_tx, status) = watch::channel(initial_dump(&config));
    let task = tokio::spawn(async move {
        if let Some(previous) = after {
            let _ = previous.await;
        }
        let driver = Driver::new(config, transitions, status_tx, sync, bfd);
        driver.run(commands).await;
    });
    Handle {
        commands: commands_tx,
        status,
        task,
    }
}

/// The upper-case state name keepalived uses.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Init => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

fn initial_dump(config: &VrrpInstance) -> VrrpDump {
    VrrpDump {
        name: config.name.clone(),
        interface: config.interface.clone(),
        vrid: config.vrid.get(),
        version: match config.version {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        },
        state: "INIT".to_string(),
        priority: config.priority,
        effective_priority: config.priority,
        source: None,
        master: None,
        advert_int: config.advert_int.as_secs_f64(),
        virtual_addresses: config
            .virtual_addresses
            .iter()
            .map(|v| format!("{}/{}", v.addr, v.prefix))
            .collect(),
        last_transition: None,
        last_reason: String::new(),
        fault: None,
        sync_group: None,
        sync_group_state: None,
        bfd: Vec::new(),
        counters: VrrpCounters::default(),
    }
}

/// Everything that exists once the interface and its address are there.
struct Wired {
    link: Link,
    source: IpAddr,
    sockets: VrrpSockets,
    frames: Option<FrameSender>,
    machine: fsm::Instance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GarpPhase {
    /// The delayed second burst (`garp_master_delay`).
    Second,
    /// Periodic refresh (`garp_master_refresh`).
    Refresh,
}

struct Driver {
    config: VrrpInstance,
    transitions: mpsc::UnboundedSender<Transition>,
    status: watch::Sender<VrrpDump>,
    dump: VrrpDump,
    origin: Instant,
    netlink: Option<Netlink>,
    /// Tracking's last verdict.
    tracked_priority: u8,
    tracked_fault: Option<String>,
    link_down: bool,
    /// The fault currently fed to the machine.
    fault_fed: bool,
    garp: Option<(Instant, GarpPhase)>,
    logs: LogLimit,
    /// Our VIPs as a sorted list, to compare with adverts.
    vip_set: Vec<IpAddr>,
    peers: Vec<IpAddr>,
    auth: Option<[u8; 8]>,
    sync: Option<SyncLink>,
    /// The last number read from each `track_files` entry (0 until read).
    file_values: Vec<i64>,
    /// What the tracked files add to the priority, and a file's FAULT.
    file_delta: i32,
    file_fault: Option<String>,
    /// Each `track_processes` entry's quorum (empty until the first scan).
    process_quorums: Vec<process::Quorum>,
    /// What the tracked processes add to the priority, and their FAULT.
    process_delta: i32,
    process_fault: Option<String>,
    last_process_scan: Option<Instant>,
    /// The BFD sessions' states, and what the tracked ones add to the
    /// priority and their FAULT.
    bfd: watch::Receiver<BfdStates>,
    bfd_delta: i32,
    bfd_fault: Option<String>,
    /// The sync group is in FAULT (another member's fault).
    group_fault: bool,
    /// The own fault last reported to the group.
    reported_own_fault: Option<bool>,
}

impl Driver {
    fn new(
        config: VrrpInstance,
        transitions: mpsc::UnboundedSender<Transition>,
        status: watch::Sender<VrrpDump>,
        sync: Option<SyncLink>,
        bfd: watch::Receiver<BfdStates>,
    ) -> Driver {
        let config_track_files = config.track_files.len();
        let mut vip_set: Vec<IpAddr> = config.virtual_addresses.iter().map(|v| v.addr).collect();
        vip_set.sort();
        let auth = config.auth_pass.as_ref().map(|pass| {
            let mut data = [0u8; 8];
            let bytes = pass.as_bytes();
            let n = bytes.len().min(8);
            data[..n].copy_from_slice(&bytes[..n]);
            data
        });
        Driver {
            dump: initial_dump(&config),
            tracked_priority: config.priority,
            peers: config.unicast_peers.clone(),
            config,
            transitions,
            status,
            origin: Instant::now(),
            netlink: None,
            tracked_fault: None,
            link_down: false,
            fault_fed: false,
            garp: None,
            logs: LogLimit::new(LOG_EVERY),
            vip_set,
            auth,
            sync,
            file_values: vec![0; config_track_files],
            file_delta: 0,
            file_fault: None,
            process_quorums: Vec::new(),
            process_delta: 0,
            process_fault: None,
            last_process_scan: None,
            bfd,
            bfd_delta: 0,
            bfd_fault: None,
            group_fault: false,
            reported_own_fault: None,
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        // Wait (in FAULT) until the interface and an address exist.
        let mut wired = loop {
            match self.wire() {
                Ok(wired) => break wired,
                Err(why) => {
                    self.report_own_fault(true);
                    if self.dump.state != "FAULT" || self.dump.fault.as_deref() != Some(&why) {
                        tracing::warn!(instance = %self.config.name, error = %why, "vrrp instance cannot start; FAULT until it can");
                        self.dump.state = "FAULT".to_string();
                        self.dump.fault = Some(why);
                        self.publish();
                    }
                    tokio::select! {
                        command = commands.recv() => match command {
                            Some(Command::Track { priority, fault }) => {
                                self.tracked_priority = priority;
                                self.tracked_fault = fault;
                            }
                            Some(Command::Shutdown(done)) => {
                                let _ = done.send(());
                                return;
                            }
                            Some(Command::Sync(order)) => {
                                if let Order::Fault(fault) = order {
                                    self.group_fault = fault;
                                }
                            }
                            None => return,
                        },
                        _ = tokio::time::sleep(RETRY_SETUP) => {}
                    }
                }
            }
        };
        self.dump.source = Some(wired.source.to_string());
        self.link_down = !wired.link.running;
        self.read_track_files();
        self.scan_processes();
        self.read_bfd();
        let now = self.now();
        let mut actions = Vec::new();
        if self.combined_priority() != self.config.priority {
            actions.extend(
                wired
                    .machine
                    .step(now, Input::EffectivePriority(self.combined_priority())),
            );
        }
        self.report_own_fault(self.own_fault());
        if self.wants_fault() {
            self.fault_fed = true;
            actions.extend(wired.machine.step(now, Input::Fault(true)));
        }
        actions.extend(wired.machine.step(now, Input::Startup));
        self.execute(&mut wired, actions, None);

        let mut link_poll = tokio::time::interval(LINK_POLL);
        link_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // systemd's watchdog (issue 20): this loop ticks it on every link poll.
        let beat = crate::systemd::Beat::register(format!("vrrp instance {}", self.config.name));
        let mut bfd_changes = self.bfd.clone();
        let tracks_bfd = !self.config.track_bfds.is_empty();
        loop {
            let deadline = wired
                .machine
                .next_deadline()
                .map(|d| self.origin + d)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let garp_at = self
                .garp
                .map(|(at, _)| at)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Track { priority, fault }) => {
                        self.tracked_priority = priority;
                        self.tracked_fault = fault;
                        let now = self.now();
                        let actions = wired
                            .machine
                            .step(now, Input::EffectivePriority(self.combined_priority()));
                        self.execute(&mut wired, actions, None);
                        self.feed_fault(&mut wired);
                    }
                    Some(Command::Shutdown(done)) => {
                        let now = self.now();
                        let actions = wired.machine.step(now, Input::Shutdown);
                        self.execute(&mut wired, actions, None);
                        self.garp = None;
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::Sync(order)) => self.on_order(&mut wired, order),
                    None => {
                        // The supervisor is gone without a shutdown: still leave cleanly.
                        let now = self.now();
                        let actions = wired.machine.step(now, Input::Shutdown);
                        self.execute(&mut wired, actions, None);
                        return;
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    // Adverts already queued arrived before the deadline:
                    // read them first, so a backup behind a burst of junk
                    // does not declare a live master dead.
                    for _ in 0..DRAIN_BEFORE_TIMER {
                        match wired.sockets.try_receive() {
                            Ok(Some(received)) => self.on_received(&mut wired, Ok(received)),
                            Ok(None) => break,
                            Err(e) => self.on_received(&mut wired, Err(e)),
                        }
                    }
                    let now = self.now();
                    let actions = wired.machine.step(now, Input::Timer);
                    self.execute(&mut wired, actions, None);
                }
                _ = tokio::time::sleep_until(garp_at) => self.garp_due(&mut wired),
                Ok(()) = bfd_changes.changed(), if tracks_bfd => {
                    if self.read_bfd() {
                        tracing::info!(instance = %self.config.name, bfd_delta = self.bfd_delta, bfd_fault = ?self.bfd_fault, "tracked bfd changed");
                        let now = self.now();
                        let actions = wired
                            .machine
                            .step(now, Input::EffectivePriority(self.combined_priority()));
                        self.execute(&mut wired, actions, None);
                        self.feed_fault(&mut wired);
                    }
                }
                _ = link_poll.tick() => {
                    beat.tick();
                    self.poll_link(&mut wired);
                }
                received = wired.sockets.receive() => {
                    self.on_received(&mut wired, received);
                    // Drain what else is queued, bounded so timers and
                    // commands get their turn between batches.
                    for _ in 0..RECEIVE_BATCH {
                        match wired.sockets.try_receive() {
                            Ok(Some(received)) => self.on_received(&mut wired, Ok(received)),
                            Ok(None) => break,
                            Err(e) => self.on_received(&mut wired, Err(e)),
                        }
                    }
                }
            }
        }
    }

    /// Looks up the interface, picks the source address, removes stale
    /// VIPs, opens the sockets and builds the machine.
    fn wire(&mut self) -> Result<Wired, String> {
        if self.netlink.is_none() {
            self.netlink = Some(Netlink::open().map_err(|e| format!("netlink: {e}"))?);
        }
        let netlink = self.netlink.as_mut().ok_or("netlink unavailable")?;
        let link = netlink
            .link(&self.config.interface)
            .map_err(|e| format!("interface {}: {e}", self.config.interface))?;
        let ipv6 = self
            .config
            .virtual_addresses
            .first()
            .is_some_and(|v| v.addr.is_ipv6());
        let source = match self.config.unicast_src {
            Some(src) => src,
            None => link.primary(ipv6).ok_or_else(|| {
                format!(
                    "interface {} has no {} address to send adverts from",
                    self.config.interface,
                    if ipv6 { "IPv6 link-local" } else { "IPv4" }
                )
            })?,
        };
        if self.config.priority != fsm::OWNER_PRIORITY {
            for vip in self.all_addresses() {
                let Some(index) = self.vip_index(&vip, link.index) else {
                    continue;
                };
                let Some(netlink) = self.netlink.as_mut() else {
                    break;
                };
                if let Ok(true) = netlink.remove_address(index, &vip) {
                    tracing::info!(instance = %self.config.name, vip = %vip.addr, "removed a VIP left from an earlier run");
                }
            }
        }
        let sockets = VrrpSockets::open(&SocketOptions {
            interface: self.config.interface.clone(),
            ifindex: link.index,
            source,
            unicast: !self.config.unicast_peers.is_empty(),
        })
        .map_err(|e| format!("vrrp sockets on {}: {e}", self.config.interface))?;
        let frames = match FrameSender::open(link.index) {
            Ok(frames) => Some(frames),
            Err(e) => {
                tracing::warn!(instance = %self.config.name, error = %e, "cannot open the packet socket; no gratuitous ARP / NA");
                None
            }
        };
        let interval = AdvertInterval::from_duration(self.config.version, self.config.advert_int)
            .map_err(|e| e.to_string())?;
        let mut machine_config = InstanceConfig::new(
            self.config.vrid,
            self.config.version,
            self.config.priority,
            interval,
            source,
        );
        machine_config.preempt = !self.config.nopreempt;
        machine_config.preempt_delay = self.config.preempt_delay.unwrap_or_default();
        machine_config.sync_group = self.sync.is_some();
        let machine = fsm::Instance::new(machine_config).map_err(|e| e.to_string())?;
        Ok(Wired {
            link,
            source,
            sockets,
            frames,
            machine,
        })
    }

    fn vip_index(&mut self, vip: &VirtualAddress, default: u32) -> Option<u32> {
        match &vip.dev {
            None => Some(default),
            Some(dev) => {
                let netlink = self.netlink.as_mut()?;
                match netlink.link(dev) {
                    Ok(link) => Some(link.index),
                    Err(e) => {
                        tracing::warn!(instance = %self.config.name, vip = %vip.addr, error = %e, "VIP device");
                        None
                    }
                }
            }
        }
    }

    /// A fault of this instance's own (not its sync group's).
    fn own_fault(&self) -> bool {
        self.link_down
            || self.tracked_fault.is_some()
            || self.file_fault.is_some()
            || self.process_fault.is_some()
            || self.bfd_fault.is_some()
    }

    /// Tracking's priority plus what the tracked files add (never for an
    /// address owner).
    fn combined_priority(&self) -> u8 {
        let delta = self.file_delta + self.process_delta + self.bfd_delta;
        if self.config.priority == fsm::OWNER_PRIORITY || delta == 0 {
            return self.tracked_priority;
        }
        let sum = i32::from(self.tracked_priority) + delta;
        // Clamped to 1..=254, so the cast cannot truncate.
        sum.clamp(1, i32::from(fsm::OWNER_PRIORITY) - 1) as u8
    }

    /// Reads every tracked file; true when the delta or the fault changed.
    fn read_track_files(&mut self) -> bool {
        let mut delta = 0i32;
        let mut fault = None;
        for (index, tracked) in self.config.track_files.iter().enumerate() {
            let text = std::fs::read(&tracked.path).unwrap_or_default();
            let head = &text[..text.len().min(127)];
            match track_file_number(&String::from_utf8_lossy(head)) {
                Some(value) => self.file_values[index] = value,
                None => {
                    if self.logs.allow("track_file", Instant::now()) {
                        tracing::warn!(instance = %self.config.name, file = %tracked.path.display(), "invalid number in tracked file; keeping the last one");
                    }
                }
            }
            let status =
                track_file_status(self.file_values[index], tracked.weight, tracked.reverse);
            if status <= TRACK_FILE_FAULT {
                fault.get_or_insert_with(|| {
                    format!(
                        "tracked file {} has status {}",
                        tracked.path.display(),
                        self.file_values[index]
                    )
                });
            } else {
                delta += status;
            }
        }
        let changed = delta != self.file_delta || fault != self.file_fault;
        self.file_delta = delta;
        self.file_fault = fault;
        changed
    }

    /// Counts the processes each `track_processes` entry matches (at most
    /// every [`process::POLL`]) and applies their quorums; true when the
    /// delta or the fault changed.
    fn scan_processes(&mut self) -> bool {
        if self.config.track_processes.is_empty() {
            return false;
        }
        let scanned_at = Instant::now();
        if self
            .last_process_scan
            .is_some_and(|last| scanned_at.duration_since(last) < process::POLL)
        {
            return false;
        }
        self.last_process_scan = Some(scanned_at);
        let cmdline = self.config.track_processes.iter().any(|t| t.full_command);
        let procs = process::scan(cmdline);
        let now = self.now();
        let counts: Vec<u32> = self
            .config
            .track_processes
            .iter()
            .map(|t| {
                let n = procs.iter().filter(|p| process::matches(t, p)).count();
                u32::try_from(n).unwrap_or(u32::MAX)
            })
            .collect();
        if self.process_quorums.is_empty() {
            self.process_quorums = self
                .config
                .track_processes
                .iter()
                .zip(&counts)
                .map(|(t, &n)| process::Quorum::start(t, n))
                .collect();
        } else {
            for ((quorum, tracker), &n) in self
                .process_quorums
                .iter_mut()
                .zip(&self.config.track_processes)
                .zip(&counts)
            {
                if quorum.observe(tracker, now, n) {
                    tracing::info!(instance = %self.config.name, tracker = %tracker.name, processes = n, up = quorum.up(), "tracked process quorum changed");
                }
            }
        }
        let mut delta = 0;
        let mut fault = None;
        for ((quorum, tracker), &n) in self
            .process_quorums
            .iter()
            .zip(&self.config.track_processes)
            .zip(&counts)
        {
            match process::effect(tracker, quorum.up()) {
                process::Effect::Fault => {
                    fault.get_or_insert_with(|| {
                        format!(
                            "tracked process {} has {n} process(es), quorum {}..{}",
                            tracker.name, tracker.quorum, tracker.quorum_max
                        )
                    });
                }
                process::Effect::Add(weight) => delta += weight,
            }
        }
        let changed =
            delta != self.process_delta || fault.is_some() != self.process_fault.is_some();
        self.process_delta = delta;
        self.process_fault = fault;
        changed
    }

    /// Applies the tracked BFD sessions' states (a session keepmon does
    /// not run counts as down); true when the delta or the fault changed.
    fn read_bfd(&mut self) -> bool {
        if self.config.track_bfds.is_empty() {
            return false;
        }
        let states = self.bfd.borrow_and_update().clone();
        let mut delta = 0;
        let mut fault = None;
        let mut shown = Vec::new();
        for track in &self.config.track_bfds {
            let status = states.get(&track.name);
            let up = status.is_some_and(|s| s.up);
            shown.push(format!(
                "{} {}",
                track.name,
                status.map_or("Down", |s| s.state.name())
            ));
            match crate::bfd::track_effect(track, up) {
                process::Effect::Fault => {
                    fault.get_or_insert_with(|| {
                        format!(
                            "tracked bfd {} is {}",
                            track.name,
                            if up { "up (reverse)" } else { "down" }
                        )
                    });
                }
                process::Effect::Add(weight) => delta += weight,
            }
        }
        if self.dump.bfd != shown {
            self.dump.bfd = shown;
            self.publish();
        }
        let changed = delta != self.bfd_delta || fault != self.bfd_fault;
        self.bfd_delta = delta;
        self.bfd_fault = fault;
        changed
    }

    fn wants_fault(&self) -> bool {
        self.own_fault() || self.group_fault
    }

    fn fault_reason(&self) -> Option<String> {
        if self.link_down {
            Some(format!(
                "interface {} (or a tracked interface) link down",
                self.config.interface
            ))
        } else if self.tracked_fault.is_some() {
            self.tracked_fault.clone()
        } else if self.file_fault.is_some() {
            self.file_fault.clone()
        } else if self.process_fault.is_some() {
            self.process_fault.clone()
        } else if self.bfd_fault.is_some() {
            self.bfd_fault.clone()
        } else if self.group_fault {
            let group = self.sync.as_ref().map(|s| s.group.as_str()).unwrap_or("?");
            Some(format!("another member of sync group {group} is in FAULT"))
        } else {
            None
        }
    }

    /// Tells the sync group (if any) about this instance.
    fn report(&self, event: MemberEvent) {
        if let Some(sync) = &self.sync {
            let _ = sync.reports.send(MemberReport {
                instance: self.config.name.clone(),
                event,
            });
        }
    }

    fn report_own_fault(&mut self, fault: bool) {
        if self.reported_own_fault != Some(fault) {
            self.reported_own_fault = Some(fault);
            self.report(MemberEvent::OwnFault(fault));
        }
    }

    fn on_order(&mut self, wired: &mut Wired, order: Order) {
        let input = match order {
            Order::Fault(fault) => {
                self.group_fault = fault;
                self.feed_fault(wired);
                return;
            }
            Order::Master => Input::SyncMaster,
            Order::Backup => Input::SyncBackup,
        };
        let now = self.now();
        let actions = wired.machine.step(now, input);
        self.execute(wired, actions, None);
    }

    fn feed_fault(&mut self, wired: &mut Wired) {
        // The group hears of our own fault before we act on it, as
        // keepalived's down_instance calls vrrp_sync_fault.
        self.report_own_fault(self.own_fault());
        let want = self.wants_fault();
        if want != self.fault_fed {
            self.fault_fed = want;
            let now = self.now();
            let actions = wired.machine.step(now, Input::Fault(want));
            self.execute(wired, actions, None);
        }
        let reason = if want { self.fault_reason() } else { None };
        if self.dump.fault != reason {
            self.dump.fault = reason;
            self.publish();
        }
    }

    fn poll_link(&mut self, wired: &mut Wired) {
        let Some(netlink) = self.netlink.as_mut() else {
            return;
        };
        let mut running = match netlink.link(&self.config.interface) {
            Ok(link) => {
                let running = link.running;
                wired.link = link;
                running
            }
            Err(_) => false,
        };
        // track_interface: any tracked interface down is a fault too.
        for name in &self.config.track_interfaces {
            running &= netlink.link(name).is_ok_and(|link| link.running);
        }
        if running == self.link_down {
            tracing::warn!(instance = %self.config.name, interface = %self.config.interface, up = running, "link state changed");
            self.link_down = !running;
            self.feed_fault(wired);
        }
        let files_changed = !self.config.track_files.is_empty() && self.read_track_files();
        let processes_changed = self.scan_processes();
        if files_changed || processes_changed {
            tracing::info!(instance = %self.config.name, file_delta = self.file_delta, file_fault = ?self.file_fault, process_delta = self.process_delta, process_fault = ?self.process_fault, "tracked files or processes changed");
            let now = self.now();
            let actions = wired
                .machine
                .step(now, Input::EffectivePriority(self.combined_priority()));
            self.execute(wired, actions, None);
            self.feed_fault(wired);
        }
    }

    fn on_received(&mut self, wired: &mut Wired, received: std::io::Result<Received>) {
        match received {
            Ok(received) => self.on_packet(wired, received),
            Err(e) => {
                self.dump.counters.malformed += 1;
                self.log_limited("receive", format_args!("{e}"));
            }
        }
    }

    fn on_packet(&mut self, wired: &mut Wired, received: Received) {
        let Some(input) = self.check(wired, &received) else {
            return;
        };
        let from = received.src;
        let now = self.now();
        let actions = wired.machine.step(now, input);
        self.execute(wired, actions, Some(from));
    }

    /// The receive checks of the module docs: `Some(Input::Advert)` for an
    /// advert the machine should see.
    fn check(&mut self, wired: &Wired, received: &Received) -> Option<Input> {
        if received.src == wired.source {
            return None;
        }
        let unicast = !self.peers.is_empty();
        let multicast = match received.dst {
            IpAddr::V4(v4) => v4 == VRRP_GROUP_V4,
            IpAddr::V6(v6) => v6 == VRRP_GROUP_V6,
        };
        if multicast && !unicast && received.hop_limit != Some(255) {
            self.dump.counters.bad_ttl += 1;
            let ttl = received.hop_limit;
            self.log_limited(
                "ttl",
                format_args!(
                    "advert from {} with TTL {ttl:?}, not 255: dropped",
                    received.src
                ),
            );
            return None;
        }
        if unicast && !self.peers.contains(&received.src) {
            self.dump.counters.unknown_peer += 1;
            self.log_limited(
                "peer",
                format_args!(
                    "advert from {}, not a configured unicast peer: dropped",
                    received.src
                ),
            );
            return None;
        }
        let decoded =
            match packet::decode_with_checksum(&received.payload, received.src, received.dst) {
                Ok(decoded) => decoded,
                Err(e) => {
                    self.dump.counters.malformed += 1;
                    let kind = match e {
                        DecodeError::Checksum { .. } | DecodeError::ChecksumV3Ipv4 { .. } => {
                            "checksum"
                        }
                        _ => "malformed",
                    };
                    self.log_limited(
                        kind,
                        format_args!("malformed advert from {}: {e}", received.src),
                    );
                    return None;
                }
            };
        let advert = decoded.advert;
        if advert.vrid != self.config.vrid {
            self.dump.counters.other_vrid += 1;
            // Foreign VRIDs are normal on a shared LAN: debug only.
            if self.logs.allow("vrid", Instant::now()) {
                tracing::debug!(instance = %self.config.name, vrid = advert.vrid.get(), from = %received.src, "advert for another VRID");
            }
            return None;
        }
        self.dump.counters.adverts_received += 1;
        if advert.version != self.config.version {
            self.dump.counters.version_mismatch += 1;
            self.log_limited(
                "version",
                format_args!(
                    "advert from {} is VRRP version {}, we run {}: dropped",
                    received.src,
                    version_number(advert.version),
                    version_number(self.config.version)
                ),
            );
            return None;
        }
        if !auth_matches(self.auth.as_ref(), advert.auth.as_ref()) {
            self.dump.counters.auth_mismatch += 1;
            self.log_limited(
                "auth",
                format_args!(
                    "advert from {} has another authentication (type or password): dropped",
                    received.src
                ),
            );
            return None;
        }
        let mut theirs = advert.addresses.clone();
        theirs.sort();
        if theirs != self.vip_set {
            let ours = self.vip_set.clone();
            self.dump.counters.address_mismatch += 1;
            self.log_limited(
                "addresses",
                format_args!(
                    "advert from {} lists {theirs:?}, we have {ours:?} (used anyway)",
                    received.src
                ),
            );
        }
        Some(Input::Advert {
            from: received.src,
            priority: advert.priority,
            interval: advert.max_advert,
        })
    }

    fn execute(&mut self, wired: &mut Wired, actions: Vec<Action>, advert_from: Option<IpAddr>) {
        for action in actions {
            match action {
                Action::SendAdvert { priority } => self.send_advert(wired, priority),
                Action::AddVips => self.change_vips(wired, true),
                Action::RemoveVips => self.change_vips(wired, false),
                Action::SendGarp => {
                    self.send_garp_burst(wired);
                    let delay = self.config.garp.master_delay;
                    self.garp = if !delay.is_zero() {
                        Some((Instant::now() + delay, GarpPhase::Second))
                    } else {
                        self.config
                            .garp
                            .master_refresh
                            .map(|every| (Instant::now() + every, GarpPhase::Refresh))
                    };
                }
                Action::BecameMaster { reason } => {
                    self.transition(wired, State::Master, describe(reason))
                }
                Action::BecameBackup { reason } => {
                    self.garp = None;
                    self.transition(wired, State::Backup, describe(reason))
                }
                Action::BecameFault { reason } => {
                    self.garp = None;
                    let why = self.fault_reason().unwrap_or_else(|| describe(reason));
                    self.transition(wired, State::Fault, why)
                }
                Action::Stopped => {
                    self.garp = None;
                    self.transition(wired, State::Init, "shutdown".to_string())
                }
                Action::IgnoredAdvert { from, reason } => match reason {
                    IgnoreReason::IntervalMismatch {
                        received,
                        configured,
                    } => {
                        self.dump.counters.interval_mismatch += 1;
                        self.log_limited(
                            "interval",
                            format_args!("advert from {from} has interval {received}, we use {configured}: dropped"),
                        );
                    }
                    IgnoreReason::OwnAddress => {
                        self.log_limited(
                            "own",
                            format_args!("advert from {from} claims our own address"),
                        );
                    }
                },
                Action::WantMaster(wants) => self.report(MemberEvent::WantsMaster(wants)),
                Action::ArmTimer(_) => {}
            }
        }
        let state = wired.machine.state();
        if state == State::Backup
            && let Some(from) = advert_from
        {
            self.dump.master = Some(from.to_string());
        }
        if state == State::Master {
            self.dump.master = Some(wired.source.to_string());
        }
        self.dump.effective_priority = wired.machine.effective_priority();
        self.publish();
    }

    fn transition(&mut self, wired: &Wired, to: State, reason: String) {
        let from = match self.dump.state.as_str() {
            "BACKUP" => State::Backup,
            "MASTER" => State::Master,
            "FAULT" => State::Fault,
            _ => State::Init,
        };
        self.dump.state = state_name(to).to_string();
        self.dump.last_transition = Some(unix_now());
        self.dump.last_reason = reason.clone();
        self.dump.counters.transitions += 1;
        if to != State::Backup {
            self.dump.master = None;
        }
        let priority = wired.machine.effective_priority();
        tracing::warn!(instance = %self.config.name, from = state_name(from), to = state_name(to), priority, reason = %reason, "vrrp transition");
        self.report(MemberEvent::Transition { from, to });
        let _ = self.transitions.send(Transition {
            group: false,
            instance: self.config.name.clone(),
            from,
            to,
            reason,
            priority,
        });
    }

    fn send_advert(&mut self, wired: &Wired, priority: u8) {
        let advert = Advert {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            max_advert: wired.machine.config().advert_interval,
            auth: self.auth,
            addresses: self
                .config
                .virtual_addresses
                .iter()
                .map(|v| v.addr)
                .collect(),
        };
        let mode = if self.config.v3_checksum_as_v2 {
            ChecksumMode::MessageOnly
        } else {
            ChecksumMode::PseudoHeader
        };
        let destinations: Vec<IpAddr> = if self.peers.is_empty() {
            vec![match wired.source {
                IpAddr::V4(_) => IpAddr::V4(VRRP_GROUP_V4),
                IpAddr::V6(_) => IpAddr::V6(VRRP_GROUP_V6),
            }]
        } else {
            self.peers.clone()
        };
        for dst in destinations {
            let result = packet::encode(&advert, wired.source, dst, mode)
                .map_err(|e| e.to_string())
                .and_then(|bytes| wired.sockets.send(&bytes, dst).map_err(|e| e.to_string()));
            match result {
                Ok(()) => self.dump.counters.adverts_sent += 1,
                Err(e) => {
                    self.dump.counters.send_errors += 1;
                    self.log_limited("send", format_args!("advert to {dst}: {e}"));
                }
            }
        }
    }

    /// The VIPs and the excluded addresses: both are added, removed and
    /// announced by GARP/NA; only the VIPs are in adverts.
    fn all_addresses(&self) -> Vec<VirtualAddress> {
        self.config
            .virtual_addresses
            .iter()
            .chain(&self.config.excluded_addresses)
            .cloned()
            .collect()
    }

    fn change_vips(&mut self, wired: &Wired, add: bool) {
        for vip in self.all_addresses() {
            let Some(index) = self.vip_index(&vip, wired.link.index) else {
                continue;
            };
            let Some(netlink) = self.netlink.as_mut() else {
                return;
            };
            let result = if add {
                netlink.add_address(index, &vip)
            } else {
                netlink.remove_address(index, &vip)
            };
            match result {
                Ok(changed) => {
                    tracing::info!(instance = %self.config.name, vip = %vip.addr, changed, "{}", if add { "VIP added" } else { "VIP removed" })
                }
                Err(e) => {
                    tracing::error!(instance = %self.config.name, vip = %vip.addr, error = %e, "{}", if add { "cannot add VIP" } else { "cannot remove VIP" })
                }
            }
        }
    }

    fn send_garp_burst(&mut self, wired: &Wired) {
        let repeat = self.config.garp.master_repeat.max(1);
        self.send_garps(wired, repeat);
    }

    fn send_garps(&mut self, wired: &Wired, repeat: u32) {
        let Some(frames) = &wired.frames else {
            return;
        };
        let addresses = self.all_addresses();
        for _ in 0..repeat {
            for vip in &addresses {
                let frame: Vec<u8> = match vip.addr {
                    IpAddr::V4(v4) => packet::gratuitous_arp(wired.link.mac, v4).to_vec(),
                    IpAddr::V6(v6) => packet::unsolicited_na(
                        wired.link.mac,
                        v6,
                        ipv6_forwarding(&wired.link.name),
                    )
                    .to_vec(),
                };
                match frames.send(&frame) {
                    Ok(()) => self.dump.counters.garps_sent += 1,
                    Err(e) => {
                        self.dump.counters.send_errors += 1;
                        if self.logs.allow("garp", Instant::now()) {
                            tracing::warn!(instance = %self.config.name, vip = %vip.addr, error = %e, "gratuitous ARP / NA not sent");
                        }
                    }
                }
            }
        }
    }

    fn garp_due(&mut self, wired: &mut Wired) {
        let Some((_, phase)) = self.garp else {
            return;
        };
        if wired.machine.state() != State::Master {
            self.garp = None;
            return;
        }
        match phase {
            GarpPhase::Second => self.send_garp_burst(wired),
            GarpPhase::Refresh => self.send_garps(wired, 1),
        }
        self.garp = self
            .config
            .garp
            .master_refresh
            .map(|every| (Instant::now() + every, GarpPhase::Refresh));
        self.publish();
    }

    fn log_limited(&mut self, kind: &'static str, message: std::fmt::Arguments<'_>) {
        if let Some(suppressed) = self.logs.allow_counting(kind, Instant::now()) {
            tracing::warn!(instance = %self.config.name, suppressed, "{message}");
        }
    }

    fn publish(&mut self) {
        self.status.send_replace(self.dump.clone());
    }
}

/// A tracked file's status meaning FAULT.
const TRACK_FILE_FAULT: i32 = -254;

/// keepalived's status of a tracked file holding `value`: with weight 0,
/// FAULT while the value is not 0 (while it is 0 with `reverse`);
/// otherwise value × weight (negated with `reverse`) limited to −254..253,
/// −254 being FAULT.
fn track_file_status(value: i64, weight: i32, reverse: bool) -> i32 {
    if weight == 0 {
        return if (value != 0) != reverse {
            TRACK_FILE_FAULT
        } else {
            0
        };
    }
    let multiplier = if reverse { -1 } else { 1 };
    let status = value.saturating_mul(i64::from(weight) * multiplier);
    // Clamped to -254..=253, so the cast cannot truncate.
    status.clamp(i64::from(TRACK_FILE_FAULT), 253) as i32
}

/// The number in a tracked file as keepalived reads it: C's `strtol` with
/// base 0 (`0x` hex, leading `0` octal), 0 when there are no digits; None
/// when it is out of keepalived's range (then the last value stays).
pub(crate) fn track_file_number(text: &str) -> Option<i64> {
    let text = text.trim_start();
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))
        .filter(|h| h.starts_with(|c: char| c.is_ascii_hexdigit()))
    {
        (16, hex)
    } else if rest.starts_with('0') {
        (8, rest)
    } else {
        (10, rest)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let magnitude = if end == 0 {
        0
    } else {
        i64::from_str_radix(&digits[..end], radix).ok()?
    };
    let value = if negative { -magnitude } else { magnitude };
    (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1)
        .contains(&value)
        .then_some(value)
}

/// v2 passwords must agree in presence and value (constant time).
fn auth_matches(ours: Option<&[u8; 8]>, theirs: Option<&[u8; 8]>) -> bool {
    match (ours, theirs) {
        (None, None) => true,
        (Some(a), Some(b)) => a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0,
        _ => false,
    }
}

fn version_number(version: VrrpVersion) -> u8 {
    match version {
        VrrpVersion::V2 => 2,
        VrrpVersion::V3 => 3,
    }
}

/// A transition's reason in words, for logs, alerts and `vrrp show`.
pub fn describe(reason: Reason) -> String {
    match reason {
        Reason::Startup => "startup".to_string(),
        Reason::AddressOwner => "address owner (priority 255)".to_string(),
        Reason::MasterDown => "no advert from the master for Master_Down_Interval".to_string(),
        Reason::MasterReleased { from } => format!("master {from} released (priority 0)"),
        Reason::Preempted { from, priority } => {
            format!("preempted master {from} of lower priority {priority}")
        }
        Reason::Outranked { from, priority } => {
            format!("outranked by {from} with priority {priority}")
        }
        Reason::Fault => "fault".to_string(),
        Reason::FaultCleared => "fault cleared".to_string(),
        Reason::SyncGroup => "sync group".to_string(),
    }
}

/// Whether the host forwards IPv6 on `interface` (the NA Router flag).
fn ipv6_forwarding(interface: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{interface}/forwarding"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_files_read_and_weigh_as_keepalived() {
        for (text, value) in [
            ("", Some(0)),
            ("12\n", Some(12)),
            ("  -3 apples", Some(-3)),
            ("0x10", Some(16)),
            ("010", Some(8)),
            ("junk", Some(0)),
            ("99999999999", None),
        ] {
            assert_eq!(track_file_number(text), value, "{text:?}");
        }
        // Weight 0: FAULT on non-zero (on zero when reversed).
        assert_eq!(track_file_status(0, 0, false), 0);
        assert_eq!(track_file_status(3, 0, false), TRACK_FILE_FAULT);
        assert_eq!(track_file_status(0, 0, true), TRACK_FILE_FAULT);
        // Otherwise value x weight, limited, -254 being FAULT.
        assert_eq!(track_file_status(5, 2, false), 10);
        assert_eq!(track_file_status(5, 2, true), -10);
        assert_eq!(track_file_status(1000, 1, false), 253);
        assert_eq!(track_file_status(-1000, 1, false), TRACK_FILE_FAULT);
    }

    #[test]
    fn passwords_must_agree_in_presence_and_value() {
        let a = *b"secret\0\0";
        let b = *b"secreT\0\0";
        assert!(auth_matches(None, None));
        assert!(auth_matches(Some(&a), Some(&a)));
        assert!(!auth_matches(Some(&a), Some(&b)));
        assert!(!auth_matches(Some(&a), None));
        assert!(!auth_matches(None, Some(&a)));
    }
}
