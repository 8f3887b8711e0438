//! The load-balancer table: virtual services, real servers and their desired membership, and the diff a data plane applies; pure, never does IO or reads the clock.
//!
//! Three layers, each a plain value:
//!
//! - [`Table`] holds what the operator and the monitors said: the config's
//!   virtual servers, per real server its admin state, health, weight and
//!   explicit edits from `lb` alert actions (mon's `lvs.alert`/`ipvs.alert`)
//!   and the CLI, and per virtual service its quorum state.
//! - [`Desired`] is what the data planes should hold right now. It is a pure
//!   function of the table ([`Table::desired`]); health drives it directly
//!   (level-triggered), alert timing never delays it.
//! - [`diff`] turns the data plane's current [`Desired`] into the next one as a
//!   list of [`Op`]s; [`apply`] replays them on a value, so a data plane and
//!   the supervisor's copy cannot drift apart.
//!
//! Membership of one real server (keepalived's rules, HAProxy's admin states):
//!
//! | admin | health        | inhibit_on_failure | member       |
//! |-------|---------------|--------------------|--------------|
//! | maint | any           | any                | absent       |
//! | any   | down          | no                 | absent       |
//! | any   | down          | yes                | weight 0     |
//! | drain | up or unknown | any                | weight 0     |
//! | ready | up or unknown | any                | its weight   |
//!
//! Backup servers (HAProxy's `backup`): while any normal server is a member
//! with weight > 0, every backup server that would be a member has weight 0
//! (it keeps its connections, takes no new ones). When none is, the first
//! backup server in config order that would be a member with weight > 0
//! takes its weight — or, with `allbackups`, every backup server does.
//! This holds for every data plane, and the live weight counts it.
//!
//! A real server removed by an alert (failure `lvs.alert`) is absent whatever
//! its health until an upalert adds it again. Unknown health counts as up:
//! keepalived starts real servers up, and a fresh daemon must not empty the
//! table before the first check has run. A real server's health combines
//! every service that checks it (the virtual server's `health` and the
//! server's own `checks`): down when one reports it down, as keepalived
//! keeps a real server only while all its checkers pass.
//!
//! Quorum (keepalived): the live weight of a virtual service is the sum of its
//! members' weights. Quorum is lost when it falls below `quorum − hysteresis`
//! and gained again at `quorum + hysteresis`; a virtual server without a
//! `quorum` setting uses keepalived's default of 1. The state is kept between
//! evaluations, so it lives in the table and changes only in
//! [`Table::update_quorum`]; [`Table::desired`] reads it and takes `&self`.
//! While quorum is lost and a sorry server is set, the sorry server (weight 1,
//! nat: the model has no per-service forwarding method) is the only member.
//!
//! The supervisor's order after any event (a health result, an edit, a CLI
//! change, a reload) is: mutate the table, [`Table::update_quorum`] (act on
//! the returned changes), [`Table::desired`], [`diff`] against what the data
//! planes hold, apply the ops, [`apply`] them to its copy.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::depend::ServiceRef;
use crate::config::model::{
    Action, AdminState, AlertLine, Config, DataPlane, Forward, Fwmark, LbEdit, LbScheduler,
    Protocol, ProxyOptions, RealCheck, RealServer, Thresholds, TrackFile, VirtualServer,
};
use crate::config::values::parse_host_port;

/// keepalived's default `quorum`: one live unit of weight.
pub const DEFAULT_QUORUM: u32 = 1;

/// The weight of the sorry server while it stands in for the real servers.
pub const SORRY_WEIGHT: u32 = 1;

/// A real server's health as the bound service last reported it (after the
/// service's own rise/fall hysteresis).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked yet (or not bound to a service). Counts as up.
    #[default]
    Unknown,
    Up,
    Down,
}

impl Health {
    /// Unknown counts as up.
    pub fn is_up(self) -> bool {
        self != Health::Down
    }

    /// The health for a check result.
    pub fn from_up(up: bool) -> Health {
        if up { Health::Up } else { Health::Down }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// An explicit edit from an `lb` alert action: mon's `lvs.alert` removes on
/// a failure alert and adds on an upalert (`-u`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edit {
    /// Added by an upalert; membership follows admin state and health.
    Added,
    /// Removed by a failure alert; absent until an upalert adds it.
    Removed,
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Edit::Added => "added",
            Edit::Removed => "removed",
        })
    }
}

/// Where a real server came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Listed in the virtual server's `real_servers`.
    Config,
    /// Named only by an `lb` alert action (declared by the config, or added
    /// at run time), like a server an ipvsadm boot script would have added.
    Alert,
}

/// The settings of a virtual service that a data plane needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// None: a pool that the routes of other services reach (proxy only),
    /// or a firewall-mark service.
    pub listen: Option<SocketAddr>,
    /// IPVS's firewall-mark service (then `listen` is None).
    pub fwmark: Option<Fwmark>,
    pub protocol: Protocol,
    pub scheduler: LbScheduler,
    pub dataplane: DataPlane,
    pub persistence: Option<Duration>,
    /// Persistence granularity as a prefix length; None = one address.
    pub persistence_netmask: Option<u8>,
    pub sorry_server: Option<SocketAddr>,
    pub quorum: Option<u32>,
    pub hysteresis: u32,
    pub retries: u32,
    pub connect_timeout: Duration,
    /// The built-in proxy's mode, limits and HTTP settings.
    pub proxy: ProxyOptions,
    /// The real servers in the order the config lists them: the proxy's
    /// round robin goes through them in this order, as HAProxy's does
    /// (members not listed come after, by address).
    pub server_order: Vec<SocketAddr>,
    /// HAProxy's weight unit (`wmult`): the gcd of the configured weights,
    /// fixed by the config so that a server going down does not rescale
    /// the others' share of `haproxy-map`'s map.
    pub weight_unit: u32,
}

impl ServiceSpec {
    /// The spec of a configured virtual server.
    pub fn from_config(vs: &VirtualServer) -> ServiceSpec {
        ServiceSpec {
            listen: vs.listen,
            fwmark: vs.fwmark,
            protocol: vs.protocol,
            scheduler: vs.scheduler,
            dataplane: vs.dataplane,
            persistence: vs.persistence,
            persistence_netmask: vs.persistence_netmask,
            sorry_server: vs.sorry_server,
            quorum: vs.quorum,
            hysteresis: vs.hysteresis,
            retries: vs.retries,
            connect_timeout: vs.connect_timeout,
            proxy: vs.proxy.clone(),
            server_order: vs.real_servers.iter().map(|r| r.addr).collect(),
            weight_unit: crate::lb::balance::weight_unit(vs.real_servers.iter().map(|r| r.weight)),
        }
    }

    /// Whether a data plane can change `self` into `other` in place. A
    /// different address, protocol or data plane is a different service
    /// (IPVS keys services by protocol and address), so [`diff`] removes the
    /// old one and adds the new one.
    pub fn same_endpoint(&self, other: &ServiceSpec) -> bool {
        self.listen == other.listen
            && self.fwmark == other.fwmark
            && self.protocol == other.protocol
            && self.dataplane == other.dataplane
    }

    /// The quorum in force: the configured one or keepalived's default.
    pub fn effective_quorum(&self) -> u32 {
        self.quorum.unwrap_or(DEFAULT_QUORUM)
    }
}

/// Settings of the virtual services that [`Table::ensure_virtual`] creates
/// for `lb` edits naming a VIP:port the config does not define.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualDefaults {
    pub scheduler: LbScheduler,
    /// Data plane for tcp services.
    pub tcp_dataplane: DataPlane,
    /// Data plane for udp services (the proxy serves tcp only).
    pub udp_dataplane: DataPlane,
    pub retries: u32,
    pub connect_timeout: Duration,
}

impl Default for VirtualDefaults {
    /// wlc (ipvsadm's and the native config's default), the proxy for tcp,
    /// IPVS for udp, the native config's retries and connect timeout.
    fn default() -> VirtualDefaults {
        VirtualDefaults {
            scheduler: LbScheduler::WeightedLeastConnection,
            tcp_dataplane: DataPlane::Proxy,
            udp_dataplane: DataPlane::Ipvs,
            retries: 2,
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// What a table mutation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The request matched the current state.
    Unchanged,
    /// A real server's state changed.
    Changed,
    /// A real server record was created (one the config does not list).
    Created,
}

impl Change {
    /// Whether anything changed.
    pub fn is_changed(self) -> bool {
        self != Change::Unchanged
    }
}

/// Quorum of one virtual service was gained or lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumChange {
    pub service: String,
    /// The new state.
    pub up: bool,
    pub live_weight: u64,
    pub quorum: u32,
    pub hysteresis: u32,
}

/// Errors of table lookups and edits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("unknown virtual service \"{name}\" (known: {known})")]
    UnknownVirtual { name: String, known: String },
    #[error("no virtual service listens on {protocol} {addr} (known: {known})")]
    NoVirtualAt {
        protocol: Protocol,
        addr: SocketAddr,
        known: String,
    },
    #[error("\"{text}\" matches several virtual services ({names}); give the name or tcp:/udp:")]
    AmbiguousVirtual { text: String, names: String },
    #[error("virtual service \"{service}\" has no real server \"{text}\" (known: {known})")]
    UnknownReal {
        service: String,
        text: String,
        known: String,
    },
    #[error(
        "\"{text}\" matches several real servers of virtual service \"{service}\" ({addrs}); give ip:port"
    )]
    AmbiguousReal {
        service: String,
        text: String,
        addrs: String,
    },
}

/// One member of a desired service as a data plane holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// 0 = keep existing connections, take no new ones.
    pub weight: u32,
    pub forward: Forward,
    /// IPVS connection thresholds (0 = none).
    pub thresholds: Thresholds,
    /// The built-in proxy's per-server settings (the kernel planes ignore them).
    pub proxy: ServerLimits,
}

/// A real server's settings only the built-in proxy uses (HAProxy's
/// server `maxconn`, `maxqueue`, `slowstart`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerLimits {
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    pub slowstart: Option<Duration>,
    /// How many times the server came back up (became usable after being
    /// down, in maintenance or drained) since the table knew it; the proxy
    /// starts a slow start when it sees this grow. Not counted at start:
    /// like HAProxy, a fresh daemon does not slow-start its servers.
    pub comebacks: u32,
}

/// One virtual service as the data planes should hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredService {
    pub spec: ServiceSpec,
    pub members: BTreeMap<SocketAddr, Member>,
}

/// Every virtual service as the data planes should hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub services: BTreeMap<String, DesiredService>,
}

/// One step a data plane performs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create the service with no members.
    AddService {
        name: String,
        spec: ServiceSpec,
    },
    /// Delete the service (its members were removed by earlier ops).
    RemoveService {
        name: String,
    },
    /// Change settings that keep the endpoint ([`ServiceSpec::same_endpoint`]).
    UpdateService {
        name: String,
        spec: ServiceSpec,
    },
    AddReal {
        service: String,
        addr: SocketAddr,
        weight: u32,
        forward: Forward,
        thresholds: Thresholds,
    },
    UpdateReal {
        service: String,
        addr: SocketAddr,
        weight: u32,
        forward: Forward,
        thresholds: Thresholds,
    },
    RemoveReal {
        service: String,
        addr: SocketAddr,
    },
}

impl Op {
    /// The name of the service this op touches.
    pub fn service(&self) -> &str {
        match self {
            Op::AddService { name, .. }
            | Op::RemoveService { name }
            | Op::UpdateService { name, .. } => name,
            Op::AddReal { service, .. }
            | Op::UpdateReal { service, .. }
            | Op::RemoveReal { service, .. } => service,
        }
    }

    /// The real server this op touches, if any.
    pub fn real(&self) -> Option<SocketAddr> {
        match self {
            Op::AddReal { addr, .. }
            | Op::UpdateReal { addr, .. }
            | Op::RemoveReal { addr, .. } => Some(*addr),
            _ => None,
        }
    }
}

/// The ops that turn `current` into `desired`, in an order a data plane can
/// follow: first services that go away (their members, then the service),
/// then changes inside services that stay (settings, then members added,
/// updated, removed — adds first so a service is never empty in between),
/// then new services (the service, then its members). A service whose
/// endpoint changed is removed and added. Nothing is emitted for a member
/// that is the same in both.
pub fn diff(current: &Desired, desired: &Desired) -> Vec<Op> {
    let mut removals = Vec::new();
    let mut updates = Vec::new();
    let mut additions = Vec::new();
    for (name, old) in &current.services {
        match desired.services.get(name) {
            Some(new) if old.spec.same_endpoint(&new.spec) => {
                if old.spec != new.spec {
                    updates.push(Op::UpdateService {
                        name: name.clone(),
                        spec: new.spec.clone(),
                    });
                }
                for (&addr, member) in &new.members {
                    match old.members.get(&addr) {
                        None => updates.push(add_real(name, addr, member)),
                        Some(was) if was != member => updates.push(Op::UpdateReal {
                            service: name.clone(),
                            addr,
                            weight: member.weight,
                            forward: member.forward,
                            thresholds: member.thresholds,
                        }),
                        Some(_) => {}
                    }
                }
                for &addr in old.members.keys() {
                    if !new.members.contains_key(&addr) {
                        updates.push(Op::RemoveReal {
                            service: name.clone(),
                            addr,
                        });
                    }
                }
            }
            _ => {
                for &addr in old.members.keys() {
                    removals.push(Op::RemoveReal {
                        service: name.clone(),
                        addr,
                    });
                }
                removals.push(Op::RemoveService { name: name.clone() });
            }
        }
    }
    for (name, new) in &desired.services {
        let kept = current
            .services
            .get(name)
            .is_some_and(|old| old.spec.same_endpoint(&new.spec));
        if kept {
            continue;
        }
        additions.push(Op::AddService {
            name: name.clone(),
            spec: new.spec.clone(),
        });
        for (&addr, member) in &new.members {
            additions.push(add_real(name, addr, member));
        }
    }
    removals.extend(updates);
    removals.extend(additions);
    removals
}

/// Replay ops on a value, as a data plane does on its tables. `AddService`
/// creates the service empty (replacing one of that name); ops on a service
/// that does not exist are ignored.
pub fn apply(current: &mut Desired, ops: &[Op]) {
    for op in ops {
        match op {
            Op::AddService { name, spec } => {
                current.services.insert(
                    name.clone(),
                    DesiredService {
                        spec: spec.clone(),
                        members: BTreeMap::new(),
                    },
                );
            }
            Op::RemoveService { name } => {
                current.services.remove(name);
            }
            Op::UpdateService { name, spec } => {
                if let Some(service) = current.services.get_mut(name) {
                    service.spec = spec.clone();
                }
            }
            Op::AddReal {
                service,
                addr,
                weight,
                forward,
                thresholds,
            }
            | Op::UpdateReal {
                service,
                addr,
                weight,
                forward,
                thresholds,
            } => {
                if let Some(service) = current.services.get_mut(service) {
                    service.members.insert(
                        *addr,
                        Member {
                            weight: *weight,
                            forward: *forward,
                            thresholds: *thresholds,
                            proxy: Default::default(),
                        },
                    );
                }
            }
            Op::RemoveReal { service, addr } => {
                if let Some(service) = current.services.get_mut(service) {
                    service.members.remove(addr);
                }
            }
        }
    }
}

/// The membership rule of one real server (the table in the module docs):
/// `None` = absent, `Some(weight)`.
pub fn membership(
    admin: AdminState,
    health: Health,
    inhibit_on_failure: bool,
    edit: Option<Edit>,
    weight: u32,
) -> Option<u32> {
    if edit == Some(Edit::Removed) || admin == AdminState::Maint {
        return None;
    }
    if !health.is_up() {
        return inhibit_on_failure.then_some(0);
    }
    match admin {
        AdminState::Drain => Some(0),
        _ => Some(weight),
    }
}

/// A real server's admin state and weight changed at run time, as the
/// state file keeps them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealSetting {
    pub virtual_service: String,
    pub real: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<Overridden<AdminState>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Overridden<u32>>,
}

impl fmt::Display for RealSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.virtual_service, self.real)?;
        if let Some(admin) = self.admin {
            write!(
                f,
                " {} (config: {})",
                admin_name(admin.set),
                admin_name(admin.config)
            )?;
        }
        if let Some(weight) = self.weight {
            write!(f, " weight {} (config: {})", weight.set, weight.config)?;
        }
        Ok(())
    }
}

/// A value set at run time and the config's value it overrides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overridden<T> {
    pub set: T,
    pub config: T,
}

/// The load-balancer table: virtual services by name, in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    services: BTreeMap<String, VirtualState>,
}

impl Table {
    /// The table for a config: its virtual servers, plus an implicit virtual
    /// service and real server for every `lb` alert action that names one
    /// the config does not define (so a mon.cf that steers LVS through
    /// `lvs.alert` gets the table its ipvsadm boot script used to build).
    pub fn from_config(config: &Config) -> Table {
        let mut table = Table::default();
        table.reconfigure(config);
        table
    }

    /// Take a new config without flapping members. For servers that still
    /// exist it keeps health (reset to unknown only when the server is bound
    /// to a different service or host), explicit edits, quorum state, and
    /// CLI/alert changes of admin state, weight and forwarding — each of
    /// those unless the new config changed that same setting, since the
    /// newer intent wins. Real servers known only through alerts survive
    /// when an `lb` action in the new config still names them or an upalert
    /// added them; implicit virtual services survive while they have real
    /// servers or are merged into a configured one on the same address.
    pub fn reconfigure(&mut self, config: &Config) {
        let declared = declared_edits(config);
        let declared_keys: BTreeSet<(Protocol, SocketAddr, SocketAddr)> =
            declared.iter().map(edit_key).collect();
        let old = std::mem::take(&mut self.services);
        let mut fresh: BTreeSet<String> = BTreeSet::new();

        // Configured virtual services, carrying state from the same name.
        for vs in config.virtual_servers.values() {
            let mut state = VirtualState::from_config(vs);
            match old.get(&vs.name) {
                Some(was) => {
                    state.quorum_up = was.quorum_up;
                    let same_health = was.health == state.health;
                    for (addr, real) in &mut state.reals {
                        if let Some(before) = was.reals.get(addr) {
                            real.carry(before, same_health);
                        }
                    }
                }
                None => {
                    fresh.insert(vs.name.clone());
                }
            }
            self.services.insert(vs.name.clone(), state);
        }

        // Alert-made real servers that survive go to whichever service now
        // listens on their old address.
        for (name, was) in &old {
            // Only services with an address have alert-made real servers.
            let Some(listen) = was.spec.listen else {
                continue;
            };
            let survivors: Vec<(SocketAddr, &RealState)> = was
                .reals
                .iter()
                .filter(|(addr, real)| {
                    real.source == Source::Alert
                        && (real.edit == Some(Edit::Added)
                            || declared_keys.contains(&(was.spec.protocol, listen, **addr)))
                })
                .map(|(addr, real)| (*addr, real))
                .collect();
            if survivors.is_empty() {
                continue;
            }
            let target = match self.virtual_at(was.spec.protocol, listen) {
                Some(target) => target.to_string(),
                None => {
                    let target = if was.implicit && !self.services.contains_key(name) {
                        name.clone()
                    } else {
                        self.free_name(&implicit_name(was.spec.protocol, listen))
                    };
                    // Keeps the old settings and quorum state; like every
                    // implicit service it has no health binding.
                    let mut state = was.clone();
                    state.implicit = true;
                    state.health = None;
                    state.reals.clear();
                    self.services.insert(target.clone(), state);
                    target
                }
            };
            // The target was inserted just above or found by address.
            let Some(state) = self.services.get_mut(&target) else {
                continue;
            };
            let same_health = state.health == was.health;
            for (addr, before) in survivors {
                match state.reals.get_mut(&addr) {
                    Some(real) => real.carry(before, same_health),
                    None => {
                        let mut real = before.clone();
                        if !same_health {
                            real.health = Health::Unknown;
                        }
                        state.reals.insert(addr, real);
                    }
                }
            }
        }

        // What the config's lb actions name and nothing above created.
        let defaults = VirtualDefaults::default();
        for edit in &declared {
            let (name, created) = self.declare(edit, &defaults);
            if created {
                fresh.insert(name);
            }
        }
        for name in &fresh {
            if let Some(state) = self.services.get_mut(name) {
                state.quorum_up = state.quorum_now();
            }
        }
    }

    /// Make sure the virtual service and real server an `lb` edit names
    /// exist: a VIP:port the config does not define gets an implicit virtual
    /// service named `PROTOCOL:VIP:PORT` with `defaults`, and a real server it
    /// does not list is added (source alert, present, weight and forwarding
    /// from the edit or ipvsadm's defaults). Returns the service's name.
    pub fn ensure_virtual(&mut self, edit: &LbEdit, defaults: &VirtualDefaults) -> String {
        let (name, created) = self.declare(edit, defaults);
        if created && let Some(state) = self.services.get_mut(&name) {
            state.quorum_up = state.quorum_now();
        }
        name
    }

    /// Apply an `lb` alert edit: `add` (an upalert, mon's `-u`) marks the
    /// real server added and takes the edit's weight and forwarding method;
    /// otherwise it is marked removed. A real server the table does not know
    /// is created. The virtual service must exist (see
    /// [`Table::ensure_virtual`]).
    pub fn apply_edit(&mut self, edit: &LbEdit, add: bool) -> Result<Change, TableError> {
        let name = match self.virtual_at(edit.protocol, edit.virtual_addr) {
            Some(name) => name.to_string(),
            None => {
                return Err(TableError::NoVirtualAt {
                    protocol: edit.protocol,
                    addr: edit.virtual_addr,
                    known: self.known_services(),
                });
            }
        };
        let Some(state) = self.services.get_mut(&name) else {
            return Err(self.unknown_virtual(&name));
        };
        let addr = edit_real_addr(edit);
        let dataplane = state.spec.dataplane;
        let mut created = false;
        let real = state.reals.entry(addr).or_insert_with(|| {
            created = true;
            RealState::from_edit(edit, dataplane)
        });
        let before = real.clone();
        real.changing(|real| {
            if add {
                real.edit = Some(Edit::Added);
                if let Some(weight) = edit.weight {
                    real.weight_override = (weight != real.base.weight).then_some(weight);
                }
                if let Some(forward) = edit.forward {
                    real.forward_override = (forward != real.base.forward).then_some(forward);
                }
            } else {
                real.edit = Some(Edit::Removed);
            }
        });
        Ok(if created {
            Change::Created
        } else if *real != before {
            Change::Changed
        } else {
            Change::Unchanged
        })
    }

    /// Set a real server's admin state (CLI `drain`, `maint`, `ready`).
    pub fn set_admin(
        &mut self,
        vs: &str,
        rs: SocketAddr,
        admin: AdminState,
    ) -> Result<Change, TableError> {
        let real = self.real_mut(vs, rs)?;
        if real.admin() == admin {
            return Ok(Change::Unchanged);
        }
        real.changing(|real| real.admin_override = (admin != real.base.admin).then_some(admin));
        Ok(Change::Changed)
    }

    /// Set a real server's weight (CLI `weight`).
    pub fn set_weight(
        &mut self,
        vs: &str,
        rs: SocketAddr,
        weight: u32,
    ) -> Result<Change, TableError> {
        let real = self.real_mut(vs, rs)?;
        if real.weight() == weight {
            return Ok(Change::Unchanged);
        }
        real.changing(|real| real.weight_override = (weight != real.base.weight).then_some(weight));
        Ok(Change::Changed)
    }

    /// The run-time changes of admin state and weight (`lb drain|maint|
    /// ready|weight`, an upalert's weight) that differ from the config, in
    /// table order: what the state file keeps so a crash forgets none.
    pub fn run_time_settings(&self) -> Vec<RealSetting> {
        let mut settings = Vec::new();
        for (name, state) in &self.services {
            for (addr, real) in &state.reals {
                if real.admin_override.is_none() && real.weight_override.is_none() {
                    continue;
                }
                settings.push(RealSetting {
                    virtual_service: name.clone(),
                    real: *addr,
                    admin: real.admin_override.map(|set| Overridden {
                        set,
                        config: real.base.admin,
                    }),
                    weight: real.weight_override.map(|set| Overridden {
                        set,
                        config: real.base.weight,
                    }),
                });
            }
        }
        settings
    }

    /// Put back settings saved by [`Table::run_time_settings`] (at start,
    /// after a crash or a restart). As on reload, a setting the config has
    /// changed since is dropped (the newer intent wins), and so is one whose
    /// real server is gone. Returns one line per setting: what was restored
    /// or why not.
    pub fn restore_run_time_settings(&mut self, settings: &[RealSetting]) -> Vec<String> {
        let mut lines = Vec::new();
        for setting in settings {
            let who = format!("{} {}", setting.virtual_service, setting.real);
            let Ok(real) = self.real_mut(&setting.virtual_service, setting.real) else {
                lines.push(format!("{who}: not restored, no longer in the table"));
                continue;
            };
            if let Some(admin) = setting.admin {
                if admin.config == real.base.admin {
                    real.admin_override = (admin.set != real.base.admin).then_some(admin.set);
                    lines.push(format!("{who}: {} restored", admin_name(admin.set)));
                } else {
                    lines.push(format!(
                        "{who}: {} not restored, the config changed it to {}",
                        admin_name(admin.set),
                        admin_name(real.base.admin)
                    ));
                }
            }
            if let Some(weight) = setting.weight {
                if weight.config == real.base.weight {
                    real.weight_override = (weight.set != real.base.weight).then_some(weight.set);
                    lines.push(format!("{who}: weight {} restored", weight.set));
                } else {
                    lines.push(format!(
                        "{who}: weight {} not restored, the config changed it to {}",
                        weight.set, real.base.weight
                    ));
                }
            }
        }
        lines
    }

    /// Record one real server's health. False when nothing changed or the
    /// server is unknown.
    pub fn set_health(&mut self, vs: &str, rs: SocketAddr, up: bool) -> bool {
        let Some(real) = self
            .services
            .get_mut(vs)
            .and_then(|state| state.reals.get_mut(&rs))
        else {
            return false;
        };
        let health = Health::from_up(up);
        let before = real.combined_health();
        real.changing(|real| real.health = health);
        real.combined_health() != before
    }

    /// Record a host's health from `health_service`'s per-host results on
    /// every real server bound to it (virtual server `health` =
    /// `health_service` and real server `host` = `host`, or one of the real
    /// server's own `checks`). Returns the real servers whose health
    /// changed.
    pub fn set_host_health(
        &mut self,
        health_service: &ServiceRef,
        host: &str,
        up: bool,
    ) -> Vec<(String, SocketAddr)> {
        let host = host.trim_start_matches('*');
        let health = Health::from_up(up);
        let mut changed = Vec::new();
        for (name, state) in &mut self.services {
            let bound = state.health.as_ref() == Some(health_service);
            for (addr, real) in &mut state.reals {
                let before = real.combined_health();
                real.changing(|real| {
                    if bound && real.host == host {
                        real.health = health;
                    }
                    for state in &mut real.checks {
                        if state.check.health == *health_service && state.check.host == host {
                            state.health = health;
                        }
                    }
                });
                if real.combined_health() != before {
                    changed.push((name.clone(), *addr));
                }
            }
        }
        changed
    }

    /// Record the weight a passing run of `health_service` set for `host`
    /// (keepalived's `misc_dynamic`; None: the server's own) on every real
    /// server bound to it as [`Table::set_host_health`] binds them. Returns
    /// the real servers whose weight in force changed.
    pub fn set_host_weight(
        &mut self,
        health_service: &ServiceRef,
        host: &str,
        weight: Option<u32>,
    ) -> Vec<(String, SocketAddr)> {
        let host = host.trim_start_matches('*');
        let mut changed = Vec::new();
        for (name, state) in &mut self.services {
            let bound = state.health.as_ref() == Some(health_service);
            for (addr, real) in &mut state.reals {
                let before = real.weight_in_force();
                if bound && real.host == host {
                    real.health_weight = weight;
                }
                for check in &mut real.checks {
                    if check.check.health == *health_service && check.check.host == host {
                        check.weight = weight;
                    }
                }
                if real.weight_in_force() != before {
                    changed.push((name.clone(), *addr));
                }
            }
        }
        changed
    }

    /// Every file a real server tracks (for the reader that feeds
    /// [`Table::set_file_value`]).
    pub fn tracked_files(&self) -> BTreeSet<PathBuf> {
        self.services
            .values()
            .flat_map(|state| state.reals.values())
            .flat_map(|real| real.files.iter().map(|(file, _)| file.path.clone()))
            .collect()
    }

    /// The number now in a tracked file, on every real server tracking it.
    /// Returns the real servers whose health or weight in force changed.
    pub fn set_file_value(&mut self, path: &Path, value: i64) -> Vec<(String, SocketAddr)> {
        let mut changed = Vec::new();
        for (name, state) in &mut self.services {
            for (addr, real) in &mut state.reals {
                if !real.files.iter().any(|(f, _)| f.path == path) {
                    continue;
                }
                let before = (real.combined_health(), real.weight_in_force());
                real.changing(|real| {
                    for (file, v) in &mut real.files {
                        if file.path == path {
                            *v = value;
                        }
                    }
                });
                if (real.combined_health(), real.weight_in_force()) != before {
                    changed.push((name.clone(), *addr));
                }
            }
        }
        changed
    }

    /// Record the BFD sessions' states on the real servers that follow one
    /// (`up(name)`: the session is Up). Returns the servers whose health
    /// changed, with their new health.
    pub fn set_bfd_health(&mut self, up: impl Fn(&str) -> bool) -> Vec<(String, SocketAddr, bool)> {
        let mut changed = Vec::new();
        for (name, state) in &mut self.services {
            for (addr, real) in &mut state.reals {
                let Some(session) = &real.base.bfd else {
                    continue;
                };
                let now_up = up(session);
                let health = Health::from_up(now_up);
                if real.bfd_health != health {
                    let before = real.combined_health();
                    real.changing(|real| real.bfd_health = health);
                    if real.combined_health() != before {
                        changed.push((name.clone(), *addr, now_up));
                    }
                }
            }
        }
        changed
    }

    /// Re-evaluate every virtual service's quorum with hysteresis; returns
    /// the services whose state changed (for quorum alerts and VRRP tracking).
    pub fn update_quorum(&mut self) -> Vec<QuorumChange> {
        let mut changes = Vec::new();
        for (name, state) in &mut self.services {
            let live = state.live_weight();
            let quorum = state.spec.effective_quorum();
            let hysteresis = state.spec.hysteresis;
            let up = if state.routes_only() {
                true
            } else if state.quorum_up {
                live >= u64::from(quorum.saturating_sub(hysteresis))
            } else {
                live >= u64::from(quorum) + u64::from(hysteresis)
            };
            if up != state.quorum_up {
                state.quorum_up = up;
                changes.push(QuorumChange {
                    service: name.clone(),
                    up,
                    live_weight: live,
                    quorum,
                    hysteresis,
                });
            }
        }
        changes
    }

    /// Whether a virtual service has quorum; None for an unknown name.
    pub fn quorum_up(&self, vs: &str) -> Option<bool> {
        self.services.get(vs).map(|state| state.quorum_up)
    }

    /// What the data planes should hold now (see the module docs).
    pub fn desired(&self) -> Desired {
        Desired {
            services: self
                .services
                .iter()
                .map(|(name, state)| (name.clone(), state.desired()))
                .collect(),
        }
    }

    /// The names of the virtual services, in order.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// The virtual service listening on `protocol` `listen`.
    pub fn virtual_at(&self, protocol: Protocol, listen: SocketAddr) -> Option<&str> {
        self.services
            .iter()
            .find(|(_, state)| state.spec.protocol == protocol && state.spec.listen == Some(listen))
            .map(|(name, _)| name.as_str())
    }

    /// A virtual service as a user names it: its name, `VIP:port` (either
    /// protocol, if only one listens there) or `tcp:VIP:port`/`udp:VIP:port`.
    pub fn find_virtual(&self, text: &str) -> Result<&str, TableError> {
        if let Some((name, _)) = self.services.get_key_value(text) {
            return Ok(name);
        }
        let (protocol, addr_text) = match text.split_once(':') {
            Some((p, rest)) if p.eq_ignore_ascii_case("tcp") => (Some(Protocol::Tcp), rest),
            Some((p, rest)) if p.eq_ignore_ascii_case("udp") => (Some(Protocol::Udp), rest),
            _ => (None, text),
        };
        let Ok(addr) = addr_text.parse::<SocketAddr>() else {
            return Err(self.unknown_virtual(text));
        };
        let matches: Vec<&str> = self
            .services
            .iter()
            .filter(|(_, state)| {
                state.spec.listen == Some(addr) && protocol.is_none_or(|p| p == state.spec.protocol)
            })
            .map(|(name, _)| name.as_str())
            .collect();
        match matches.as_slice() {
            [] => Err(self.unknown_virtual(text)),
            [one] => Ok(one),
            _ => Err(TableError::AmbiguousVirtual {
                text: text.to_string(),
                names: matches.join(", "),
            }),
        }
    }

    /// A real server of `vs` as a user names it: `ip:port`, `ip` (the port
    /// defaults to the virtual port, ipvsadm's rule), `[v6]:port`, or its
    /// host name when only one real server has it.
    pub fn find_real(&self, vs: &str, text: &str) -> Result<SocketAddr, TableError> {
        let Some(state) = self.services.get(vs) else {
            return Err(self.unknown_virtual(vs));
        };
        let unknown = || TableError::UnknownReal {
            service: vs.to_string(),
            text: text.to_string(),
            known: known_list(state.reals.keys()),
        };
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok((ip, port)) = parse_host_port(text).or_else(|_| parse_host_port(bare)) {
            let default_port = state.spec.listen.map_or(0, |l| l.port());
            let addr = SocketAddr::new(ip, port.unwrap_or(default_port));
            return if state.reals.contains_key(&addr) {
                Ok(addr)
            } else {
                Err(unknown())
            };
        }
        let matches: Vec<SocketAddr> = state
            .reals
            .iter()
            .filter(|(_, real)| real.host == text)
            .map(|(addr, _)| *addr)
            .collect();
        match matches.as_slice() {
            [] => Err(unknown()),
            [one] => Ok(*one),
            _ => Err(TableError::AmbiguousReal {
                service: vs.to_string(),
                text: text.to_string(),
                addrs: known_list(matches.iter()),
            }),
        }
    }

    /// A real server's health; None when unknown to the table.
    pub fn health(&self, vs: &str, rs: SocketAddr) -> Option<Health> {
        Some(self.services.get(vs)?.reals.get(&rs)?.combined_health())
    }

    /// Everything `keepmon lb show` prints. `conns` gives a data plane's
    /// (active, inactive) connection counts per service name and member.
    pub fn report(&self, conns: Option<ConnCounts<'_>>) -> Report {
        let counts = |name: &str, addr: SocketAddr| conns.map(|f| f(name, addr));
        let services = self
            .services
            .iter()
            .map(|(name, state)| {
                let desired = state.desired();
                let sorry_active = !state.quorum_up && state.spec.sorry_server.is_some();
                // Config order (HAProxy's, the stats page's), then the
                // servers alerts and edits added, by address.
                let mut reals: Vec<(&SocketAddr, &RealState)> = state.reals.iter().collect();
                reals.sort_by_key(|(addr, real)| {
                    (real.source != Source::Config, real.base.rank, **addr)
                });
                let real_servers = reals
                    .into_iter()
                    .map(|(&addr, real)| RealReport {
                        addr,
                        name: real.base.name.clone(),
                        host: real.host.clone(),
                        source: real.source,
                        forward: effective_forward(state.spec.dataplane, real.forward())
                            .to_string(),
                        weight: real.weight(),
                        // After the backup rule (a standing-by backup has 0).
                        effective_weight: if sorry_active {
                            real.member_weight()
                        } else {
                            desired.members.get(&addr).map(|m| m.weight)
                        },
                        in_dataplane: !sorry_active && desired.members.contains_key(&addr),
                        health: real.combined_health(),
                        admin: admin_name(real.admin()).to_string(),
                        inhibit_on_failure: real.base.inhibit_on_failure,
                        upper_threshold: real.base.thresholds.upper,
                        lower_threshold: real.base.thresholds.lower,
                        edit: real.edit,
                        conns: counts(name, addr),
                        backup: real.base.backup,
                    })
                    .collect();
                ServiceReport {
                    name: name.clone(),
                    listen: state.spec.listen,
                    fwmark: state.spec.fwmark,
                    protocol: state.spec.protocol.to_string(),
                    scheduler: state.spec.scheduler.to_string(),
                    dataplane: dataplane_name(state.spec.dataplane).to_string(),
                    persistence_secs: state.spec.persistence.map(|p| p.as_secs()),
                    persistence_netmask: state.spec.persistence_netmask,
                    implicit: state.implicit,
                    health: state.health.as_ref().map(ToString::to_string),
                    quorum: state.spec.effective_quorum(),
                    hysteresis: state.spec.hysteresis,
                    quorum_up: state.quorum_up,
                    live_weight: state.live_weight(),
                    sorry_server: state.spec.sorry_server,
                    sorry_active,
                    sorry_conns: match (sorry_active, state.spec.sorry_server) {
                        (true, Some(sorry)) => counts(name, sorry),
                        _ => None,
                    },
                    backend: state.spec.proxy.backend.clone(),
                    real_servers,
                    routes: state
                        .spec
                        .proxy
                        .routes
                        .iter()
                        .map(|r| r.to.clone())
                        .collect(),
                }
            })
            .collect();
        Report { services }
    }

    /// `ipvsadm -Ln`-shaped text of what the data planes hold (see
    /// [`Report::render_ipvsadm`]).
    pub fn render_ipvsadm(&self, conns: Option<ConnCounts<'_>>) -> String {
        self.report(conns).render_ipvsadm()
    }

    fn declare(&mut self, edit: &LbEdit, defaults: &VirtualDefaults) -> (String, bool) {
        let (name, created) = match self.virtual_at(edit.protocol, edit.virtual_addr) {
            Some(name) => (name.to_string(), false),
            None => {
                let name = self.free_name(&implicit_name(edit.protocol, edit.virtual_addr));
                self.services.insert(
                    name.clone(),
                    VirtualState::implicit(edit.protocol, edit.virtual_addr, defaults),
                );
                (name, true)
            }
        };
        if let Some(state) = self.services.get_mut(&name) {
            let dataplane = state.spec.dataplane;
            state
                .reals
                .entry(edit_real_addr(edit))
                .or_insert_with(|| RealState::from_edit(edit, dataplane));
        }
        (name, created)
    }

    fn free_name(&self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        let mut n = 2;
        while self.services.contains_key(&name) {
            name = format!("{wanted}#{n}");
            n += 1;
        }
        name
    }

    fn real_mut(&mut self, vs: &str, rs: SocketAddr) -> Result<&mut RealState, TableError> {
        if !self.services.contains_key(vs) {
            return Err(self.unknown_virtual(vs));
        }
        let known = self
            .services
            .get(vs)
            .map(|state| known_list(state.reals.keys()))
            .unwrap_or_default();
        self.services
            .get_mut(vs)
            .and_then(|state| state.reals.get_mut(&rs))
            .ok_or_else(|| TableError::UnknownReal {
                service: vs.to_string(),
                text: rs.to_string(),
                known,
            })
    }

    fn unknown_virtual(&self, name: &str) -> TableError {
        TableError::UnknownVirtual {
            name: name.to_string(),
            known: self.known_services(),
        }
    }

    fn known_services(&self) -> String {
        known_list(self.services.keys())
    }
}

/// A data plane's (active, inactive) connection counts for a service name
/// and a member address.
pub type ConnCounts<'a> = &'a dyn Fn(&str, SocketAddr) -> Conns;

/// Everything `keepmon lb show` prints, as plain data (`--json` serializes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub services: Vec<ServiceReport>,
}

/// A data plane's counters for one member: ipvsadm's ActiveConn and
/// InActConn, and the totals of `ipvsadm -Ln --stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conns {
    pub active: u64,
    pub inactive: u64,
    /// Connections established since the member joined the data plane.
    #[serde(default)]
    pub total: u64,
    /// Failed connection attempts (connect errors, timeouts, hang-ups
    /// before the first byte that were retried).
    #[serde(default)]
    pub failures: u64,
    /// Bytes from clients to the member.
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes from the member to clients.
    #[serde(default)]
    pub bytes_out: u64,
    /// http mode: requests sent to the member.
    #[serde(default)]
    pub requests: u64,
    /// http mode: the member's responses by class, 1xx to 5xx.
    #[serde(default)]
    pub responses: [u64; 5],
    /// http mode: requests retried elsewhere after the member failed them.
    #[serde(default)]
    pub retries: u64,
    /// Proxy: waiting in the member's queue now (HAProxy's `qcur`).
    #[serde(default)]
    pub queued: u64,
    /// Proxy: the most that waited in its queue at once (`qmax`).
    #[serde(default)]
    pub queue_max: u64,
}

/// One virtual service in a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub name: String,
    /// None: a pool reached by other services' routes.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// IPVS's firewall-mark service (then `listen` is None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<Fwmark>,
    pub protocol: String,
    pub scheduler: String,
    pub dataplane: String,
    pub persistence_secs: Option<u64>,
    /// Persistence granularity as a prefix length (None = one address).
    #[serde(default)]
    pub persistence_netmask: Option<u8>,
    /// Created for an `lb` edit, not defined in the config.
    pub implicit: bool,
    /// The `group:service` whose per-host results drive health.
    pub health: Option<String>,
    /// The quorum in force (keepalived's default 1 when not configured).
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: bool,
    pub live_weight: u64,
    pub sorry_server: Option<SocketAddr>,
    /// The sorry server stands in for the real servers (quorum lost).
    pub sorry_active: bool,
    pub sorry_conns: Option<Conns>,
    /// HAProxy's backend name when it is not the virtual server's (the
    /// stats page's `pxname` of the server and BACKEND rows).
    #[serde(default)]
    pub backend: Option<String>,
    pub real_servers: Vec<RealReport>,
    /// The pools this service's routes reach, in rule order.
    #[serde(default)]
    pub routes: Vec<String>,
}

/// One real server in a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealReport {
    pub addr: SocketAddr,
    /// The config's server name (HAProxy's `svname`); None: unnamed.
    #[serde(default)]
    pub name: Option<String>,
    pub host: String,
    pub source: Source,
    /// The forwarding method the data plane uses.
    pub forward: String,
    /// The weight it has when ready and up (config, CLI or alert).
    pub weight: u32,
    /// Its membership weight; None = absent.
    pub effective_weight: Option<u32>,
    /// In the data plane now (false also while a sorry server stands in).
    pub in_dataplane: bool,
    pub health: Health,
    pub admin: String,
    pub inhibit_on_failure: bool,
    /// IPVS connection thresholds (0 = none).
    #[serde(default)]
    pub upper_threshold: u32,
    #[serde(default)]
    pub lower_threshold: u32,
    pub edit: Option<Edit>,
    pub conns: Option<Conns>,
    /// HAProxy's `backup`: used only when no normal server is up.
    #[serde(default)]
    pub backup: bool,
}

impl ServiceReport {
    /// The listen address, ipvsadm's `FWM 7` for a firewall-mark service,
    /// or `routed` for a pool.
    pub fn listen_text(&self) -> String {
        match (self.listen, self.fwmark) {
            (Some(listen), _) => listen.to_string(),
            (None, Some(fwmark)) => fwmark.to_string(),
            (None, None) => "routed".to_string(),
        }
    }

    /// ipvsadm's first two columns: `TCP` and `10.0.0.1:80`, or `FWM` and
    /// `7` (`7 IPv6`) for a firewall-mark service.
    pub fn ipvsadm_key(&self) -> (String, String) {
        match (self.listen, self.fwmark) {
            (None, Some(fwmark)) => {
                let ipv6 = if fwmark.ipv6 { " IPv6" } else { "" };
                ("FWM".to_string(), format!("{}{ipv6}", fwmark.mark))
            }
            _ => (self.protocol.to_ascii_uppercase(), self.listen_text()),
        }
    }

    /// The persistence netmask as ipvsadm prints it (`255.255.255.0` for
    /// IPv4, the prefix length for IPv6); None for one address.
    pub fn persistence_mask(&self) -> Option<String> {
        let prefix = self.persistence_netmask?;
        let ipv4 = match (self.listen, self.fwmark) {
            (Some(listen), _) => listen.is_ipv4(),
            (None, Some(fwmark)) => !fwmark.ipv6,
            (None, None) => return None,
        };
        Some(if ipv4 {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            std::net::Ipv4Addr::from(bits).to_string()
        } else {
            prefix.to_string()
        })
    }
}

impl Report {
    /// Text in the shape of `ipvsadm -Ln`: the members the data planes hold,
    /// with connection counts (0 when not given). The version line is the
    /// one IPVS has printed for years, kept so parsers of that output work.
    pub fn render_ipvsadm(&self) -> String {
        let mut out = String::new();
        out.push_str("IP Virtual Server version 1.2.1 (size=4096)\n");
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
        for service in &self.services {
            // A pool has no address of its own to list it under.
            if service.listen.is_none() && service.fwmark.is_none() {
                continue;
            }
            // ipvsadm: `TCP  10.0.0.1:80 wlc`, `FWM  7 wlc`, `FWM  7 IPv6 wlc`.
            let (prot, place) = service.ipvsadm_key();
            let _ = write!(out, "{prot}  {place} {}", service.scheduler);
            if let Some(secs) = service.persistence_secs {
                let _ = write!(out, " persistent {secs}");
                if let Some(mask) = service.persistence_mask() {
                    let _ = write!(out, " mask {mask}");
                }
            }
            out.push('\n');
            if service.sorry_active {
                if let Some(sorry) = service.sorry_server {
                    let conns = service.sorry_conns.unwrap_or_default();
                    ipvsadm_dest(&mut out, sorry, "nat", SORRY_WEIGHT, conns);
                }
                continue;
            }
            for real in &service.real_servers {
                if let (true, Some(weight)) = (real.in_dataplane, real.effective_weight) {
                    let conns = real.conns.unwrap_or_default();
                    ipvsadm_dest(&mut out, real.addr, &real.forward, weight, conns);
                }
            }
        }
        out
    }

    /// A fuller human table: every real server with its health, admin
    /// state, explicit edit and effective weight (or "absent").
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for service in &self.services {
            let _ = write!(
                out,
                "{} {} {} {} {}",
                service.name,
                service.protocol,
                service.listen_text(),
                service.scheduler,
                service.dataplane
            );
            if let Some(secs) = service.persistence_secs {
                let _ = write!(out, " persistent {secs}s");
                if let Some(mask) = service.persistence_mask() {
                    let _ = write!(out, " mask {mask}");
                }
            }
            if service.implicit {
                out.push_str(" (from lb alerts)");
            }
            let _ = write!(
                out,
                " quorum {} {} (live weight {})",
                service.quorum,
                if service.quorum_up { "up" } else { "lost" },
                service.live_weight
            );
            if let Some(health) = &service.health {
                let _ = write!(out, " health {health}");
            }
            if let Some(sorry) = service.sorry_server {
                let state = if service.sorry_active {
                    "active"
                } else {
                    "standby"
                };
                let _ = write!(out, " sorry {sorry} {state}");
            }
            out.push('\n');
            for real in &service.real_servers {
                let effective = match real.effective_weight {
                    Some(w) => w.to_string(),
                    None => "absent".to_string(),
                };
                let _ = write!(
                    out,
                    "  -> {:<28} {:<4} weight {:<4} now {:<7} {:<8} {:<6}",
                    real.addr.to_string(),
                    real.forward,
                    real.weight,
                    effective,
                    real.health.to_string(),
                    real.admin
                );
                if real.host != real.addr.ip().to_string() {
                    let _ = write!(out, " host {}", real.host);
                }
                if real.inhibit_on_failure {
                    out.push_str(" inhibit_on_failure");
                }
                if real.backup {
                    out.push_str(" backup");
                }
                if real.upper_threshold != 0 || real.lower_threshold != 0 {
                    let _ = write!(
                        out,
                        " thresholds {}/{}",
                        real.upper_threshold, real.lower_threshold
                    );
                }
                if let Some(edit) = real.edit {
                    let _ = write!(out, " {edit} by alert");
                }
                if real.source == Source::Alert {
                    out.push_str(" (from lb alerts)");
                }
                out.push('\n');
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Private state.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct VirtualState {
    spec: ServiceSpec,
    health: Option<ServiceRef>,
    implicit: bool,
    quorum_up: bool,
    reals: BTreeMap<SocketAddr, RealState>,
}

impl VirtualState {
    /// A service that only routes serves through its pools: it has no
    /// servers of its own to lose quorum over.
    fn routes_only(&self) -> bool {
        self.reals.is_empty() && !self.spec.proxy.routes.is_empty()
    }

    /// Quorum as a fresh evaluation finds it (no hysteresis).
    fn quorum_now(&self) -> bool {
        self.routes_only() || self.live_weight() >= u64::from(self.spec.effective_quorum())
    }

    /// Quorum starts up; callers evaluate a new service's quorum once it
    /// has its real servers.
    fn from_config(vs: &VirtualServer) -> VirtualState {
        VirtualState {
            spec: ServiceSpec::from_config(vs),
            health: vs.health.clone(),
            implicit: false,
            quorum_up: true,
            reals: vs
                .real_servers
                .iter()
                .enumerate()
                .map(|(rank, rs)| (rs.addr, RealState::from_config(rs, rank)))
                .collect(),
        }
    }

    fn implicit(
        protocol: Protocol,
        listen: SocketAddr,
        defaults: &VirtualDefaults,
    ) -> VirtualState {
        VirtualState {
            spec: ServiceSpec {
                listen: Some(listen),
                fwmark: None,
                protocol,
                scheduler: defaults.scheduler,
                dataplane: match protocol {
                    Protocol::Tcp => defaults.tcp_dataplane,
                    Protocol::Udp => defaults.udp_dataplane,
                },
                persistence: None,
                persistence_netmask: None,
                sorry_server: None,
                quorum: None,
                hysteresis: 0,
                retries: defaults.retries,
                connect_timeout: defaults.connect_timeout,
                proxy: Default::default(),
                server_order: Vec::new(),
                weight_unit: 1,
            },
            health: None,
            implicit: true,
            quorum_up: true,
            reals: BTreeMap::new(),
        }
    }

    fn live_weight(&self) -> u64 {
        self.member_weights()
            .into_iter()
            .map(|(_, _, weight)| u64::from(weight))
            .sum()
    }

    /// Each member and its weight after the backup rule (module docs).
    fn member_weights(&self) -> Vec<(SocketAddr, &RealState, u32)> {
        let mut members: Vec<(SocketAddr, &RealState, u32)> = self
            .reals
            .iter()
            .filter_map(|(&addr, real)| Some((addr, real, real.member_weight()?)))
            .collect();
        let normal_up = members
            .iter()
            .any(|(_, real, weight)| !real.base.backup && *weight > 0);
        let mut active_backups: Vec<SocketAddr> = Vec::new();
        if !normal_up {
            let mut usable: Vec<(usize, SocketAddr)> = members
                .iter()
                .filter(|(_, real, weight)| real.base.backup && *weight > 0)
                .map(|(addr, real, _)| (real.base.rank, *addr))
                .collect();
            usable.sort();
            if !self.spec.proxy.allbackups {
                usable.truncate(1);
            }
            active_backups = usable.into_iter().map(|(_, addr)| addr).collect();
        }
        for (addr, real, weight) in &mut members {
            if real.base.backup && !active_backups.contains(addr) {
                *weight = 0;
            }
        }
        members
    }

    fn desired(&self) -> DesiredService {
        let members = match (self.quorum_up, self.spec.sorry_server) {
            (false, Some(sorry)) => BTreeMap::from([(
                sorry,
                Member {
                    weight: SORRY_WEIGHT,
                    forward: Forward::Nat,
                    thresholds: Thresholds::default(),
                    proxy: ServerLimits::default(),
                },
            )]),
            _ => self
                .member_weights()
                .into_iter()
                .map(|(addr, real, weight)| {
                    let forward = effective_forward(self.spec.dataplane, real.forward());
                    let thresholds = real.base.thresholds;
                    (
                        addr,
                        Member {
                            weight,
                            forward,
                            thresholds,
                            proxy: ServerLimits {
                                comebacks: real.comebacks,
                                ..real.base.limits
                            },
                        },
                    )
                })
                .collect(),
        };
        DesiredService {
            spec: self.spec.clone(),
            members,
        }
    }
}

/// Settings a real server has unless changed at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RealBase {
    /// The config's server name (haproxy.cfg, keepmon.toml); None for
    /// alert-made servers.
    name: Option<String>,
    weight: u32,
    forward: Forward,
    admin: AdminState,
    inhibit_on_failure: bool,
    thresholds: Thresholds,
    backup: bool,
    /// Place in the config's list (backup order); 0 for alert-made servers.
    rank: usize,
    /// `comebacks` is unused here (see [`RealState::comebacks`]).
    limits: ServerLimits,
    /// The BFD session whose state is this server's health (keepalived's
    /// BFD_CHECK); None for servers a health service (or nothing) checks.
    bfd: Option<String>,
}

/// What a tracked file's number does to a real server (keepalived's
/// `process_update_checker_track_file_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileStatus {
    Down,
    /// Up, adding this to the weight.
    Up(i64),
}

/// Weight 0: down while the number is not 0 (while it is 0 with
/// `reverse`). Otherwise up, adding number × weight (negated with
/// `reverse`) limited to C's int, down only at its minimum (keepalived's
/// IPVS_WEIGHT_FAULT).
fn file_status(file: &TrackFile, value: i64) -> FileStatus {
    if file.weight == 0 {
        return if (value != 0) != file.reverse {
            FileStatus::Down
        } else {
            FileStatus::Up(0)
        };
    }
    let sign = if file.reverse { -1 } else { 1 };
    let status = value
        .saturating_mul(i64::from(file.weight))
        .saturating_mul(sign)
        .clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    if status == i64::from(i32::MIN) {
        FileStatus::Down
    } else {
        FileStatus::Up(status)
    }
}

/// One of a real server's own checks, as its service last reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CheckState {
    check: RealCheck,
    health: Health,
    /// The weight its last passing run set (`misc_dynamic`).
    weight: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct RealState {
    host: String,
    source: Source,
    base: RealBase,
    weight_override: Option<u32>,
    forward_override: Option<Forward>,
    admin_override: Option<AdminState>,
    /// As the virtual server's `health` service last reported `host`.
    health: Health,
    /// As its BFD session (`base.bfd`) last was.
    bfd_health: Health,
    /// The weight that service's last passing run set (keepalived's
    /// `misc_dynamic`); None: the server's own.
    health_weight: Option<u32>,
    /// The server's own health services (config `checks`), each as it last
    /// reported its host.
    checks: Vec<CheckState>,
    /// Its tracked files (keepalived's `FILE_CHECK`) with the number last
    /// read from each (0 until read, as for a missing file).
    files: Vec<(TrackFile, i64)>,
    edit: Option<Edit>,
    /// Times it became usable again (see [`ServerLimits::comebacks`]).
    comebacks: u32,
}

impl RealState {
    fn from_config(rs: &RealServer, rank: usize) -> RealState {
        RealState {
            host: rs.host.clone(),
            source: Source::Config,
            base: RealBase {
                name: rs.name.clone(),
                weight: rs.weight,
                forward: rs.forward,
                admin: rs.admin,
                inhibit_on_failure: rs.inhibit_on_failure,
                thresholds: rs.thresholds,
                backup: rs.backup,
                rank,
                limits: ServerLimits {
                    maxconn: rs.maxconn,
                    maxqueue: rs.maxqueue,
                    slowstart: rs.slowstart,
                    comebacks: 0,
                },
                bfd: rs.bfd.clone(),
            },
            weight_override: None,
            forward_override: None,
            admin_override: None,
            health: Health::Unknown,
            // keepalived's BFD process reports every session Down at start.
            bfd_health: if rs.bfd.is_some() {
                Health::Down
            } else {
                Health::Unknown
            },
            health_weight: None,
            checks: rs
                .checks
                .iter()
                .map(|check| CheckState {
                    check: check.clone(),
                    health: Health::Unknown,
                    weight: None,
                })
                .collect(),
            files: rs.track_files.iter().map(|f| (f.clone(), 0)).collect(),
            edit: None,
            comebacks: 0,
        }
    }

    /// ipvsadm's defaults when the edit says nothing: weight 1, and
    /// gatewaying (dr) on IPVS, nat on the NAT-only data planes.
    fn from_edit(edit: &LbEdit, dataplane: DataPlane) -> RealState {
        let default_forward = match dataplane {
            DataPlane::Ipvs => Forward::DirectRouting,
            DataPlane::Proxy | DataPlane::Nftables => Forward::Nat,
        };
        RealState {
            host: edit.real_addr.to_string(),
            source: Source::Alert,
            base: RealBase {
                name: None,
                weight: edit.weight.unwrap_or(1),
                forward: edit.forward.unwrap_or(default_forward),
                admin: AdminState::Ready,
                inhibit_on_failure: false,
                thresholds: Thresholds::default(),
                backup: false,
                rank: 0,
                limits: ServerLimits::default(),
                bfd: None,
            },
            weight_override: None,
            forward_override: None,
            admin_override: None,
            health: Health::Unknown,
            bfd_health: Health::Unknown,
            health_weight: None,
            checks: Vec::new(),
            files: Vec::new(),
            edit: None,
            comebacks: 0,
        }
    }

    /// Its health from every service that checks it: down when one reports
    /// it down, up when one reports it up and none down, else unknown.
    fn combined_health(&self) -> Health {
        let files = self
            .files
            .iter()
            .map(|(file, value)| match file_status(file, *value) {
                FileStatus::Down => Health::Down,
                FileStatus::Up(_) => Health::Up,
            });
        let all = [self.health, self.bfd_health]
            .into_iter()
            .chain(self.checks.iter().map(|c| c.health))
            .chain(files);
        all.fold(Health::Unknown, |acc, h| match (acc, h) {
            (Health::Down, _) | (_, Health::Down) => Health::Down,
            (Health::Up, _) | (_, Health::Up) => Health::Up,
            _ => Health::Unknown,
        })
    }

    fn weight(&self) -> u32 {
        self.weight_override.unwrap_or(self.base.weight)
    }

    /// The weight with what checks set (keepalived's `misc_dynamic`): each
    /// such check moves it by its weight minus the configured one, as
    /// keepalived's `effective_weight` adds each checker's `cur_weight`;
    /// limited to IPVS's 0–65535.
    fn weight_in_force(&self) -> u32 {
        let set = std::iter::once(self.health_weight).chain(self.checks.iter().map(|c| c.weight));
        let moved: i64 = set
            .flatten()
            .map(|w| i64::from(w) - i64::from(self.base.weight))
            .sum();
        let files: i64 = self
            .files
            .iter()
            .map(|(file, value)| match file_status(file, *value) {
                FileStatus::Up(add) => add,
                FileStatus::Down => 0,
            })
            .sum();
        // keepalived's real_weight: 0 up to IPVS's INT_MAX.
        let weight = (i64::from(self.weight()) + moved + files).clamp(0, i64::from(i32::MAX));
        u32::try_from(weight).unwrap_or(0)
    }

    fn forward(&self) -> Forward {
        self.forward_override.unwrap_or(self.base.forward)
    }

    fn admin(&self) -> AdminState {
        self.admin_override.unwrap_or(self.base.admin)
    }

    fn member_weight(&self) -> Option<u32> {
        membership(
            self.admin(),
            self.combined_health(),
            self.base.inhibit_on_failure,
            self.edit,
            self.weight_in_force(),
        )
    }

    /// Take run-time state from the same server before a reload: a change
    /// made at run time is kept unless the new base changed that setting.
    fn carry(&mut self, before: &RealState, same_health_binding: bool) {
        if before.base.weight == self.base.weight {
            self.weight_override = before.weight_override;
        }
        if before.base.forward == self.base.forward {
            self.forward_override = before.forward_override;
        }
        if before.base.admin == self.base.admin {
            self.admin_override = before.admin_override;
        }
        self.edit = before.edit;
        self.comebacks = before.comebacks;
        if same_health_binding && before.host == self.host {
            self.health = before.health;
            self.health_weight = before.health_weight;
        }
        if before.base.bfd == self.base.bfd {
            self.bfd_health = before.bfd_health;
        }
        // A check the server still has keeps what it last reported.
        for state in &mut self.checks {
            if let Some(was) = before.checks.iter().find(|c| c.check == state.check) {
                state.health = was.health;
                state.weight = was.weight;
            }
        }
        for (file, value) in &mut self.files {
            if let Some((_, was)) = before.files.iter().find(|(f, _)| f.path == file.path) {
                *value = *was;
            }
        }
    }

    /// Whether it takes new connections by itself (before the backup rule).
    fn usable(&self) -> bool {
        self.member_weight().is_some_and(|w| w > 0)
    }

    /// Runs `change`, counting a comeback when it made the server usable.
    fn changing<T>(&mut self, change: impl FnOnce(&mut RealState) -> T) -> T {
        let before = self.usable();
        let out = change(self);
        if !before && self.usable() {
            self.comebacks = self.comebacks.wrapping_add(1);
        }
        out
    }
}

fn add_real(service: &str, addr: SocketAddr, member: &Member) -> Op {
    Op::AddReal {
        service: service.to_string(),
        addr,
        weight: member.weight,
        forward: member.forward,
        thresholds: member.thresholds,
    }
}

/// The proxy always forwards as nat, whatever an alert's `-F` said.
fn effective_forward(dataplane: DataPlane, forward: Forward) -> Forward {
    match dataplane {
        DataPlane::Proxy => Forward::Nat,
        DataPlane::Ipvs | DataPlane::Nftables => forward,
    }
}

fn edit_real_addr(edit: &LbEdit) -> SocketAddr {
    SocketAddr::new(
        edit.real_addr,
        edit.real_port.unwrap_or(edit.virtual_addr.port()),
    )
}

fn edit_key(edit: &LbEdit) -> (Protocol, SocketAddr, SocketAddr) {
    (edit.protocol, edit.virtual_addr, edit_real_addr(edit))
}

fn implicit_name(protocol: Protocol, listen: SocketAddr) -> String {
    format!("{protocol}:{listen}")
}

/// Every `lb` edit in the config's alert lines, in config order.
fn declared_edits(config: &Config) -> Vec<LbEdit> {
    let mut lines: Vec<&AlertLine> = Vec::new();
    for (_, service) in config.services() {
        for period in &service.periods {
            lines.extend(period.alerts.iter());
            lines.extend(period.upalerts.iter());
            lines.extend(period.startupalerts.iter());
            lines.extend(period.ackalerts.iter());
            lines.extend(period.disablealerts.iter());
        }
        lines.extend(service.redistribute.iter());
    }
    for vrrp in config.vrrp.values() {
        lines.extend(vrrp.notify.iter());
    }
    lines
        .into_iter()
        .filter_map(|line| match &line.action {
            Action::Lb(edit) => Some(edit.clone()),
            _ => None,
        })
        .collect()
}

fn known_list<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let list: Vec<String> = items.map(|i| i.to_string()).collect();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

fn admin_name(admin: AdminState) -> &'static str {
    match admin {
        AdminState::Ready => "ready",
        AdminState::Drain => "drain",
        AdminState::Maint => "maint",
    }
}

fn dataplane_name(dataplane: DataPlane) -> &'static str {
    match dataplane {
        DataPlane::Proxy => "proxy",
        DataPlane::Ipvs => "ipvs",
        DataPlane::Nftables => "nftables",
    }
}

/// ipvsadm's forwarding names (`fwd_name`).
fn ipvsadm_forward(forward: &str) -> &'static str {
    match forward {
        "dr" => "Route",
        "tun" => "Tunnel",
        _ => "Masq",
    }
}

fn ipvsadm_dest(out: &mut String, addr: SocketAddr, forward: &str, weight: u32, conns: Conns) {
    let _ = writeln!(
        out,
        "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
        addr.to_string(),
        ipvsadm_forward(forward),
        weight,
        conns.active,
        conns.inactive
    );
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::config::diag::Location;
    use crate::config::model::{Format, Origin};
    use crate::config::values::parse_lvs_alert_args;
    use crate::config::{FileSystem, compile_str};

    /// A machine without files: configs here use only built-in monitors and alerts.
    struct NoFiles;

    impl FileSystem for NoFiles {
        fn is_file(&self, _: &Path) -> bool {
            false
        }

        fn is_dir(&self, _: &Path) -> bool {
            false
        }
    }

    fn compile(text: &str, file: &str) -> Config {
        let format = if file.ends_with(".toml") {
            Format::Toml
        } else {
            Format::Mon
        };
        match compile_str(text, Path::new(file), format, &NoFiles) {
            Ok(compiled) => compiled.config,
            Err(e) => panic!("{file} does not compile: {:?}", e.diagnostics),
        }
    }

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A virtual server that only routes keeps quorum (it has no servers of
    /// its own); its pool is a service of its own, listed as `routed`.
    #[test]
    fn a_routing_service_keeps_quorum_and_its_pool_is_listed() {
        let config = compile(
            "[virtual_servers.front]\nlisten = \"127.0.0.1:8080\"\nmode = \"http\"\nroutes = [{ to = \"pool\" }]\n\
             [virtual_servers.pool]\nmode = \"http\"\nreal_servers = [{ addr = \"127.0.0.1:9001\" }]\n",
            "k.toml",
        );
        let mut table = Table::from_config(&config);
        let changes = table.update_quorum();
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(table.quorum_up("front"), Some(true));
        let report = table.report(None);
        let front = report.services.iter().find(|s| s.name == "front").unwrap();
        assert_eq!(front.routes, ["pool"]);
        let pool = report.services.iter().find(|s| s.name == "pool").unwrap();
        assert_eq!(pool.listen_text(), "routed");
        assert!(report.render_text().contains("pool tcp routed"));
        assert!(
            !report.render_ipvsadm().contains("9001"),
            "a pool is not IPVS's"
        );
        let desired = table.desired();
        assert_eq!(desired.services["pool"].spec.listen, None);
        assert_eq!(desired.services["pool"].members.len(), 1);
    }

    /// A firewall-mark service is listed as ipvsadm lists one, keyed by
    /// its mark in the desired IPVS state, and shown as `FWM 7`.
    #[test]
    fn a_fwmark_service_is_listed_as_ipvsadm_lists_it() {
        let mut mark = vs("fwmark-7", "10.0.0.1:80", vec![rs("10.0.0.2:0")]);
        mark.listen = None;
        mark.fwmark = Some(Fwmark {
            mark: std::num::NonZeroU32::new(7).unwrap(),
            ipv6: false,
        });
        mark.dataplane = DataPlane::Ipvs;
        mark.scheduler = LbScheduler::RoundRobin;
        mark.persistence = Some(Duration::from_secs(60));
        mark.persistence_netmask = Some(24);
        mark.real_servers[0].forward = Forward::DirectRouting;
        let mut six = mark.clone();
        six.name = "fwmark-7-ipv6".into();
        six.fwmark = Some(Fwmark {
            mark: std::num::NonZeroU32::new(7).unwrap(),
            ipv6: true,
        });
        six.persistence = None;
        six.real_servers = vec![rs("[2001:db8::2]:0")];
        let table = Table::from_config(&config_with(vec![mark, six]));
        assert_eq!(
            table.render_ipvsadm(None),
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             FWM  7 rr persistent 60 mask 255.255.255.0\n\
             \x20 -> 10.0.0.2:0                   Route   1      0          0         \n\
             FWM  7 IPv6 rr\n\
             \x20 -> [2001:db8::2]:0              Masq    1      0          0         \n"
        );
        let report = table.report(None);
        assert_eq!(report.services[0].listen_text(), "FWM 7");
        assert!(
            report
                .render_text()
                .starts_with("fwmark-7 tcp FWM 7 rr ipvs")
        );
        let desired = table.desired();
        assert_eq!(desired.services["fwmark-7"].spec.listen, None);
        let wanted = crate::lb::ipvs::plan::wanted(&desired);
        let keys: Vec<String> = wanted.table.keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["fwmark 7", "fwmark 7 IPv6"]);
    }

    fn rs(addr: &str) -> RealServer {
        let addr = sa(addr);
        RealServer {
            addr,
            name: None,
            host: addr.ip().to_string(),
            weight: 1,
            forward: Forward::Nat,
            admin: AdminState::Ready,
            inhibit_on_failure: false,
            thresholds: Thresholds::default(),
            backup: false,
            maxconn: None,
            maxqueue: None,
            slowstart: None,
            bfd: None,
            checks: Vec::new(),
            track_files: Vec::new(),
        }
    }

    fn vs(name: &str, listen: &str, real_servers: Vec<RealServer>) -> VirtualServer {
        VirtualServer {
            name: name.to_string(),
            listen: Some(sa(listen)),
            fwmark: None,
            protocol: Protocol::Tcp,
            scheduler: LbScheduler::WeightedRoundRobin,
            dataplane: DataPlane::Proxy,
            persistence: None,
            persistence_netmask: None,
            sorry_server: None,
            quorum: None,
            hysteresis: 0,
            health: None,
            retries: 2,
            connect_timeout: Duration::from_secs(2),
            real_servers,
            proxy: Default::default(),
            origin: Origin(Location::file_only(&Arc::from(Path::new("test.toml")))),
        }
    }

    fn config_with(servers: Vec<VirtualServer>) -> Config {
        let mut config = compile("", "/etc/keepmon/keepmon.toml");
        config.virtual_servers = servers.into_iter().map(|v| (v.name.clone(), v)).collect();
        config
    }

    fn members(table: &Table, vs: &str) -> Vec<(SocketAddr, u32)> {
        table.desired().services[vs]
            .members
            .iter()
            .map(|(addr, m)| (*addr, m.weight))
            .collect()
    }

    fn lvs(args: &str) -> LbEdit {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        parse_lvs_alert_args(&args).unwrap()
    }

    // ----- membership -----

    /// One real server of weight 3 in every admin × health × inhibit combination.
    #[test]
    fn membership_follows_admin_health_and_inhibit() {
        use AdminState::{Drain, Maint, Ready};
        use Health::{Down, Unknown, Up};
        #[rustfmt::skip]
        let cases: &[(AdminState, Health, bool, Option<u32>)] = &[
            (Ready, Unknown, false, Some(3)),
            (Ready, Unknown, true,  Some(3)),
            (Ready, Up,      false, Some(3)),
            (Ready, Up,      true,  Some(3)),
            (Ready, Down,    false, None),
            (Ready, Down,    true,  Some(0)),
            (Drain, Unknown, false, Some(0)),
            (Drain, Unknown, true,  Some(0)),
            (Drain, Up,      false, Some(0)),
            (Drain, Up,      true,  Some(0)),
            (Drain, Down,    false, None),
            (Drain, Down,    true,  Some(0)),
            (Maint, Unknown, false, None),
            (Maint, Unknown, true,  None),
            (Maint, Up,      false, None),
            (Maint, Up,      true,  None),
            (Maint, Down,    false, None),
            (Maint, Down,    true,  None),
        ];
        for &(admin, health, inhibit, expected) in cases {
            let mut real = rs("10.0.0.2:80");
            real.weight = 3;
            real.admin = admin;
            real.inhibit_on_failure = inhibit;
            let mut table =
                Table::from_config(&config_with(vec![vs("web", "10.0.0.1:80", vec![real])]));
            if health != Unknown {
                assert!(table.set_health("web", sa("10.0.0.2:80"), health == Up));
            }
            let got = members(&table, "web").first().map(|(_, w)| *w);
            assert_eq!(
                got, expected,
                "admin {admin:?}, health {health:?}, inhibit {inhibit}"
            );
            assert_eq!(membership(admin, health, inhibit, None, 3), expected);
        }
    }

    #[test]
    fn explicit_removal_wins_over_health_until_an_add() {
        for (edit, health, expected) in [
            (None, Health::Up, Some(3)),
            (Some(Edit::Added), Health::Up, Some(3)),
            (Some(Edit::Added), Health::Down, None),
            (Some(Edit::Removed), Health::Up, None),
            (Some(Edit::Removed), Health::Unknown, None),
        ] {
            assert_eq!(
                membership(AdminState::Ready, health, false, edit, 3),
                expected,
                "{edit:?} {health:?}"
            );
            assert_eq!(
                membership(AdminState::Ready, health, true, edit, 3),
                if edit == Some(Edit::Removed) {
                    None
                } else {
                    expected.or(Some(0))
                },
                "{edit:?} {health:?} inhibit"
            );
        }
    }

    #[test]
    fn run_time_settings_come_back_in_a_fresh_table_unless_the_config_changed_them() {
        let config = config_with(vec![vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80"), rs("10.0.0.3:80"), rs("10.0.0.4:80")],
        )]);
        let (a, b, c) = (sa("10.0.0.2:80"), sa("10.0.0.3:80"), sa("10.0.0.4:80"));
        let mut table = Table::from_config(&config);
        table.set_admin("web", a, AdminState::Maint).unwrap();
        table.set_weight("web", b, 7).unwrap();
        table.set_admin("web", c, AdminState::Drain).unwrap();
        let saved = table.run_time_settings();
        assert_eq!(
            saved.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "web 10.0.0.2:80 maint (config: ready)",
                "web 10.0.0.3:80 weight 7 (config: 1)",
                "web 10.0.0.4:80 drain (config: ready)",
            ]
        );
        // Through the state file's JSON, into the table of a new process.
        let json = serde_json::to_string(&saved).unwrap();
        let saved: Vec<RealSetting> = serde_json::from_str(&json).unwrap();
        let mut fresh = Table::from_config(&config);
        fresh.restore_run_time_settings(&saved);
        assert_eq!(fresh, table);
        assert_eq!(members(&fresh, "web"), [(b, 7), (c, 0)]);

        // A config that changed the same setting since wins; a gone server
        // is reported.
        let mut changed_c = rs("10.0.0.4:80");
        changed_c.admin = AdminState::Maint;
        let changed = config_with(vec![vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80"), changed_c],
        )]);
        let mut fresh = Table::from_config(&changed);
        assert_eq!(
            fresh.restore_run_time_settings(&saved),
            [
                "web 10.0.0.2:80: maint restored",
                "web 10.0.0.3:80: not restored, no longer in the table",
                "web 10.0.0.4:80: drain not restored, the config changed it to maint",
            ]
        );
        assert_eq!(members(&fresh, "web"), []);
    }

    #[test]
    fn cli_admin_and_weight_changes_report_what_changed() {
        let mut table = Table::from_config(&config_with(vec![vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80"), rs("10.0.0.3:80")],
        )]));
        let a = sa("10.0.0.2:80");
        assert_eq!(
            table.set_admin("web", a, AdminState::Drain),
            Ok(Change::Changed)
        );
        assert_eq!(
            table.set_admin("web", a, AdminState::Drain),
            Ok(Change::Unchanged)
        );
        assert_eq!(table.set_weight("web", a, 5), Ok(Change::Changed));
        assert_eq!(members(&table, "web"), [(a, 0), (sa("10.0.0.3:80"), 1)]);
        table.set_admin("web", a, AdminState::Ready).unwrap();
        assert_eq!(members(&table, "web"), [(a, 5), (sa("10.0.0.3:80"), 1)]);
        table.set_admin("web", a, AdminState::Maint).unwrap();
        assert_eq!(members(&table, "web"), [(sa("10.0.0.3:80"), 1)]);
        assert_eq!(
            table
                .set_admin("web", sa("10.0.0.9:80"), AdminState::Drain)
                .unwrap_err()
                .to_string(),
            "virtual service \"web\" has no real server \"10.0.0.9:80\" (known: 10.0.0.2:80, 10.0.0.3:80)"
        );
        assert_eq!(
            table.set_weight("nope", a, 1).unwrap_err().to_string(),
            "unknown virtual service \"nope\" (known: web)"
        );
    }

    /// A real server with its own checks is in the table only while every
    /// one of them reports its host up (keepalived's several checkers); a
    /// server without checks stays; a reload keeps what a remaining check
    /// last reported.
    #[test]
    fn a_real_server_with_own_checks_needs_all_of_them_up() {
        let text = r#"
[hostgroups]
a = ["127.0.0.2"]
b = ["10.0.0.9"]

[watch.a.tcp]
interval = "5s"
monitor = { type = "tcp", port = 8080 }

[watch.b.smtp]
interval = "5s"
monitor = { type = "tcp", port = 25 }

[virtual_servers.web]
listen = "127.0.0.1:8080"
real_servers = [
  { addr = "127.0.0.2:8080", checks = [{ health = "a:tcp" }, { health = "b:smtp", host = "10.0.0.9" }] },
  { addr = "127.0.0.3:8080" },
]
"#;
        let config = compile(text, "/etc/keepmon/keepmon.toml");
        let mut table = Table::from_config(&config);
        let (a, b) = (ServiceRef::new("a", "tcp"), ServiceRef::new("b", "smtp"));
        let (one, two) = (sa("127.0.0.2:8080"), sa("127.0.0.3:8080"));
        assert_eq!(members(&table, "web"), [(one, 1), (two, 1)]);
        assert_eq!(
            table.set_host_health(&a, "127.0.0.2", true),
            [("web".to_string(), one)]
        );
        assert_eq!(table.set_host_health(&b, "127.0.0.2", false), []);
        assert_eq!(
            table.set_host_health(&b, "10.0.0.9", false),
            [("web".to_string(), one)]
        );
        assert_eq!(members(&table, "web"), [(two, 1)]);
        assert_eq!(table.health("web", one), Some(Health::Down));
        // The other check passing does not bring it back.
        assert_eq!(table.set_host_health(&a, "127.0.0.2", true), []);
        assert_eq!(members(&table, "web"), [(two, 1)]);
        table.reconfigure(&config);
        assert_eq!(members(&table, "web"), [(two, 1)]);
        assert_eq!(
            table.set_host_health(&b, "10.0.0.9", true),
            [("web".to_string(), one)]
        );
        assert_eq!(members(&table, "web"), [(one, 1), (two, 1)]);
        assert_eq!(
            table.set_host_health(&a, "127.0.0.2", false),
            [("web".to_string(), one)]
        );
        assert_eq!(members(&table, "web"), [(two, 1)]);
    }

    /// keepalived's `misc_dynamic`: a check sets the weight in force (the
    /// configured weight moved by each check's weight minus it), None
    /// gives the server back its own; a reload keeps it.
    #[test]
    fn a_check_sets_the_weight_in_force() {
        let text = r#"
[hostgroups]
a = ["127.0.0.2"]

[watch.a.misc]
interval = "5s"
monitor = { type = "exec", command = "/bin/true" }
exit_weight = true

[virtual_servers.web]
listen = "127.0.0.1:8080"
health = "a:misc"
real_servers = [{ addr = "127.0.0.2:8080", weight = 3 }]
"#;
        let config = compile(text, "/etc/keepmon/keepmon.toml");
        let mut table = Table::from_config(&config);
        let misc = ServiceRef::new("a", "misc");
        let one = sa("127.0.0.2:8080");
        assert_eq!(members(&table, "web"), [(one, 3)]);
        assert_eq!(
            table.set_host_weight(&misc, "127.0.0.2", Some(5)),
            [("web".to_string(), one)]
        );
        assert_eq!(members(&table, "web"), [(one, 5)]);
        table.reconfigure(&config);
        assert_eq!(members(&table, "web"), [(one, 5)]);
        assert_eq!(table.set_host_weight(&misc, "127.0.0.3", Some(9)), []);
        assert_eq!(table.set_host_weight(&misc, "127.0.0.2", Some(0)).len(), 1);
        assert_eq!(members(&table, "web"), [(one, 0)]);
        assert_eq!(table.set_host_weight(&misc, "127.0.0.2", None).len(), 1);
        assert_eq!(members(&table, "web"), [(one, 3)]);
        // An operator's weight is moved by the check too.
        table.set_weight("web", one, 10).expect("weight");
        table.set_host_weight(&misc, "127.0.0.2", Some(5));
        assert_eq!(members(&table, "web"), [(one, 12)]);
    }

    /// keepalived's FILE_CHECK: weight 0 takes the server down while the
    /// number is not 0 (while it is 0 with reverse); another weight adds
    /// number × weight (negated with reverse) to the weight in force,
    /// which stops at 0; a reload keeps the last numbers.
    #[test]
    fn tracked_files_move_a_real_server() {
        let file = |weight, reverse| TrackFile {
            path: PathBuf::from("/run/f"),
            weight,
            reverse,
        };
        assert_eq!(file_status(&file(0, false), 0), FileStatus::Up(0));
        assert_eq!(file_status(&file(0, false), 2), FileStatus::Down);
        assert_eq!(file_status(&file(0, true), 0), FileStatus::Down);
        assert_eq!(file_status(&file(0, true), 5), FileStatus::Up(0));
        assert_eq!(file_status(&file(-2, false), 3), FileStatus::Up(-6));
        assert_eq!(file_status(&file(2, true), 3), FileStatus::Up(-6));
        assert_eq!(file_status(&file(i32::MAX, false), -2), FileStatus::Down);
        let text = r#"
[virtual_servers.web]
listen = "127.0.0.1:8080"
real_servers = [
  { addr = "127.0.0.2:8080", weight = 10, track_file = [{ path = "/run/load", weight = -2 }, { path = "/run/maint", weight = 0 }] },
  { addr = "127.0.0.3:8080" },
]
"#;
        let config = compile(text, "/etc/keepmon/keepmon.toml");
        let mut table = Table::from_config(&config);
        let (one, two) = (sa("127.0.0.2:8080"), sa("127.0.0.3:8080"));
        assert_eq!(
            table.tracked_files(),
            BTreeSet::from([PathBuf::from("/run/load"), PathBuf::from("/run/maint")])
        );
        assert_eq!(members(&table, "web"), [(one, 10), (two, 1)]);
        assert_eq!(
            table.set_file_value(Path::new("/run/load"), 3),
            [("web".to_string(), one)]
        );
        assert_eq!(members(&table, "web"), [(one, 4), (two, 1)]);
        assert_eq!(table.set_file_value(Path::new("/run/other"), 3), []);
        assert_eq!(
            table.set_file_value(Path::new("/run/maint"), 1),
            [("web".to_string(), one)]
        );
        assert_eq!(members(&table, "web"), [(two, 1)]);
        assert_eq!(table.health("web", one), Some(Health::Down));
        table.reconfigure(&config);
        assert_eq!(members(&table, "web"), [(two, 1)]);
        table.set_file_value(Path::new("/run/maint"), 0);
        assert_eq!(members(&table, "web"), [(one, 4), (two, 1)]);
        table.set_file_value(Path::new("/run/load"), 9);
        assert_eq!(members(&table, "web"), [(one, 0), (two, 1)]);
    }

    #[test]
    fn host_health_reaches_every_real_server_bound_to_the_host() {
        let text = r#"
[hostgroups]
backends = ["127.0.0.2", "127.0.0.3"]

[watch.backends.web]
interval = "5s"
monitor = { type = "tcp", port = 8080 }

[virtual_servers.web]
listen = "127.0.0.1:8080"
health = "backends:web"
real_servers = [
  { addr = "127.0.0.2:8080" },
  { addr = "127.0.0.2:8081" },
  { addr = "127.0.0.3:8080", inhibit_on_failure = true },
]

[virtual_servers.other]
listen = "127.0.0.1:9090"
real_servers = [{ addr = "127.0.0.2:9090" }]
"#;
        let mut table = Table::from_config(&compile(text, "/etc/keepmon/keepmon.toml"));
        let web = ServiceRef::new("backends", "web");
        assert_eq!(
            table.set_host_health(&web, "127.0.0.2", false),
            [
                ("web".to_string(), sa("127.0.0.2:8080")),
                ("web".to_string(), sa("127.0.0.2:8081")),
            ]
        );
        assert_eq!(table.set_host_health(&web, "127.0.0.2", false), []);
        assert_eq!(table.set_host_health(&web, "*127.0.0.3", false).len(), 1);
        assert_eq!(members(&table, "web"), [(sa("127.0.0.3:8080"), 0)]);
        // The unbound service is untouched.
        assert_eq!(members(&table, "other"), [(sa("127.0.0.2:9090"), 1)]);
        assert_eq!(
            table.health("other", sa("127.0.0.2:9090")),
            Some(Health::Unknown)
        );
        table.set_host_health(&web, "127.0.0.2", true);
        assert_eq!(members(&table, "web").len(), 3);
    }

    // ----- quorum -----

    fn quorum_table(sorry: Option<&str>) -> Table {
        let mut v = vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80"), rs("10.0.0.3:80"), rs("10.0.0.4:80")],
        );
        v.real_servers[0].weight = 2;
        v.real_servers[1].weight = 2;
        v.quorum = Some(4);
        v.hysteresis = 1;
        v.sorry_server = sorry.map(sa);
        Table::from_config(&config_with(vec![v]))
    }

    /// HAProxy's backup rule: backups stand by (weight 0) while a normal
    /// server takes connections; then the first usable backup in config
    /// order (its address sorts last here) takes over, or all of them with
    /// allbackups; a drained normal server does not count as up.
    #[test]
    fn backups_take_over_only_when_no_normal_server_is_up() {
        let backup = |addr: &str, weight: u32| RealServer {
            backup: true,
            weight,
            ..rs(addr)
        };
        let (n1, n2) = (sa("10.0.0.2:80"), sa("10.0.0.3:80"));
        let (b1, b2) = (sa("10.0.0.9:80"), sa("10.0.0.8:80"));
        let servers = vec![
            rs("10.0.0.2:80"),
            rs("10.0.0.3:80"),
            backup("10.0.0.9:80", 3),
            backup("10.0.0.8:80", 2),
        ];
        let mut table = Table::from_config(&config_with(vec![vs(
            "web",
            "10.0.0.1:80",
            servers.clone(),
        )]));
        assert_eq!(members(&table, "web"), [(n1, 1), (n2, 1), (b2, 0), (b1, 0)]);
        table.set_health("web", n1, false);
        table.set_admin("web", n2, AdminState::Drain).unwrap();
        assert_eq!(
            members(&table, "web"),
            [(n2, 0), (b2, 0), (b1, 3)],
            "first backup by order"
        );
        assert_eq!(table.report(None).services[0].live_weight, 3);
        table.set_health("web", b1, false);
        assert_eq!(
            members(&table, "web"),
            [(n2, 0), (b2, 2)],
            "the next backup"
        );
        table.set_admin("web", n2, AdminState::Ready).unwrap();
        assert_eq!(
            members(&table, "web"),
            [(n2, 1), (b2, 0)],
            "a normal server is back"
        );

        let mut all = vs("web", "10.0.0.1:80", servers);
        all.proxy.allbackups = true;
        let mut table = Table::from_config(&config_with(vec![all]));
        table.set_health("web", n1, false);
        table.set_health("web", n2, false);
        assert_eq!(members(&table, "web"), [(b2, 2), (b1, 3)], "allbackups");
    }

    /// A server counts a comeback when it becomes usable again (health up
    /// after down, ready after maint or drain), not when it starts unknown.
    #[test]
    fn comebacks_count_returns_to_service_for_slow_start() {
        let mut table = Table::from_config(&config_with(vec![vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80")],
        )]));
        let a = sa("10.0.0.2:80");
        let comebacks = |table: &Table| {
            table.desired().services["web"]
                .members
                .get(&a)
                .map(|m| m.proxy.comebacks)
        };
        table.set_health("web", a, true);
        assert_eq!(comebacks(&table), Some(0));
        table.set_health("web", a, false);
        assert_eq!(comebacks(&table), None);
        table.set_health("web", a, true);
        assert_eq!(comebacks(&table), Some(1));
        table.set_admin("web", a, AdminState::Maint).unwrap();
        table.set_admin("web", a, AdminState::Ready).unwrap();
        assert_eq!(comebacks(&table), Some(2));
        let mut config = config_with(vec![vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")])]);
        config.virtual_servers.get_mut("web").unwrap().real_servers[0].slowstart =
            Some(Duration::from_secs(9));
        table.reconfigure(&config);
        let member = table.desired().services["web"].members[&a];
        assert_eq!(
            (member.proxy.comebacks, member.proxy.slowstart),
            (2, Some(Duration::from_secs(9))),
            "kept over a reload"
        );
    }

    #[test]
    fn quorum_is_lost_below_quorum_minus_hysteresis_and_gained_at_plus() {
        let mut table = quorum_table(Some("10.0.0.99:80"));
        let (a, b, c) = (sa("10.0.0.2:80"), sa("10.0.0.3:80"), sa("10.0.0.4:80"));
        assert_eq!(table.quorum_up("web"), Some(true), "5 >= 4 at start");
        assert_eq!(table.update_quorum(), []);

        table.set_health("web", c, false); // live 4
        assert_eq!(table.update_quorum(), []);
        table.set_admin("web", b, AdminState::Drain).unwrap(); // live 2 < 3
        let lost = table.update_quorum();
        assert_eq!(
            lost,
            [QuorumChange {
                service: "web".to_string(),
                up: false,
                live_weight: 2,
                quorum: 4,
                hysteresis: 1,
            }]
        );
        assert_eq!(table.quorum_up("web"), Some(false));
        assert_eq!(members(&table, "web"), [(sa("10.0.0.99:80"), SORRY_WEIGHT)]);

        table.set_admin("web", b, AdminState::Ready).unwrap(); // live 4 < 5
        assert_eq!(table.update_quorum(), []);
        assert_eq!(members(&table, "web"), [(sa("10.0.0.99:80"), 1)]);

        table.set_health("web", c, true); // live 5
        let gained = table.update_quorum();
        assert_eq!(gained.len(), 1);
        assert!(gained[0].up);
        assert_eq!(members(&table, "web"), [(a, 2), (b, 2), (c, 1)]);
        assert_eq!(table.quorum_up("nope"), None);
    }

    #[test]
    fn quorum_loss_without_a_sorry_server_keeps_members_and_reports_the_state() {
        let mut table = quorum_table(None);
        table.set_health("web", sa("10.0.0.2:80"), false);
        table.set_health("web", sa("10.0.0.3:80"), false);
        assert_eq!(table.update_quorum().len(), 1);
        assert_eq!(table.quorum_up("web"), Some(false));
        assert_eq!(members(&table, "web"), [(sa("10.0.0.4:80"), 1)]);
    }

    #[test]
    fn default_quorum_is_one_so_the_sorry_server_takes_over_when_all_are_down() {
        let mut v = vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")]);
        v.sorry_server = Some(sa("10.0.0.99:8080"));
        let mut table = Table::from_config(&config_with(vec![v]));
        assert_eq!(members(&table, "web"), [(sa("10.0.0.2:80"), 1)]);
        table.set_health("web", sa("10.0.0.2:80"), false);
        assert!(!table.update_quorum()[0].up);
        assert_eq!(members(&table, "web"), [(sa("10.0.0.99:8080"), 1)]);
        let report = table.report(None);
        assert!(report.services[0].sorry_active);
        assert!(!report.services[0].real_servers[0].in_dataplane);
    }

    #[test]
    fn a_service_that_starts_below_quorum_starts_lost() {
        let mut v = vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")]);
        v.quorum = Some(2);
        v.sorry_server = Some(sa("10.0.0.99:80"));
        let mut table = Table::from_config(&config_with(vec![v]));
        assert_eq!(table.quorum_up("web"), Some(false));
        assert_eq!(table.update_quorum(), []);
        assert_eq!(members(&table, "web"), [(sa("10.0.0.99:80"), 1)]);
    }

    // ----- reload -----

    #[test]
    fn reload_keeps_runtime_state_of_servers_that_remain() {
        let (a, b, c, d) = (
            sa("10.0.0.2:80"),
            sa("10.0.0.3:80"),
            sa("10.0.0.4:80"),
            sa("10.0.0.5:80"),
        );
        let mut web = vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80"), rs("10.0.0.3:80")],
        );
        web.real_servers.push(rs("10.0.0.4:80"));
        web.quorum = Some(3);
        web.sorry_server = Some(sa("10.0.0.99:80"));
        let mut table = Table::from_config(&config_with(vec![web.clone()]));
        table.set_health("web", a, false);
        table.set_admin("web", b, AdminState::Drain).unwrap();
        table.set_weight("web", c, 7).unwrap();
        table.update_quorum();
        assert_eq!(table.quorum_up("web"), Some(true), "live 7 >= 3");
        let before = table.desired();

        // Same config: nothing moves.
        table.reconfigure(&config_with(vec![web.clone()]));
        assert_eq!(table.desired(), before);

        // A server added, one removed, a setting changed.
        let mut next = web.clone();
        next.real_servers.retain(|r| r.addr != c);
        next.real_servers.push(rs("10.0.0.5:80"));
        next.scheduler = LbScheduler::RoundRobin;
        table.reconfigure(&config_with(vec![next.clone()]));
        assert_eq!(table.health("web", a), Some(Health::Down));
        assert_eq!(
            diff(&before, &table.desired()),
            [
                Op::UpdateService {
                    name: "web".to_string(),
                    spec: ServiceSpec::from_config(&next),
                },
                Op::AddReal {
                    service: "web".to_string(),
                    addr: d,
                    weight: 1,
                    forward: Forward::Nat,
                    thresholds: Thresholds::default(),
                },
                Op::RemoveReal {
                    service: "web".to_string(),
                    addr: c,
                },
            ]
        );

        // Quorum state survives: live is now 1 < 3, lost only by update_quorum.
        assert_eq!(table.quorum_up("web"), Some(true));
        assert!(!table.update_quorum()[0].up);
        table.reconfigure(&config_with(vec![next.clone()]));
        assert_eq!(
            table.quorum_up("web"),
            Some(false),
            "reload keeps quorum state"
        );
    }

    #[test]
    fn a_threshold_or_netmask_change_updates_in_place() {
        let a = sa("10.0.0.2:80");
        let mut web = vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")]);
        web.dataplane = DataPlane::Ipvs;
        let mut table = Table::from_config(&config_with(vec![web.clone()]));
        table.set_health("web", a, true);
        table.set_weight("web", a, 4).unwrap();
        let before = table.desired();

        let mut next = web.clone();
        next.real_servers[0].thresholds = Thresholds {
            upper: 100,
            lower: 60,
        };
        table.reconfigure(&config_with(vec![next.clone()]));
        let after = table.desired();
        let ops = diff(&before, &after);
        assert_eq!(
            ops,
            [Op::UpdateReal {
                service: "web".to_string(),
                addr: a,
                weight: 4,
                forward: Forward::Nat,
                thresholds: Thresholds {
                    upper: 100,
                    lower: 60,
                },
            }],
            "an update of that server, not remove+add; the CLI weight stays"
        );
        let mut replayed = before.clone();
        apply(&mut replayed, &ops);
        assert_eq!(replayed, after);

        next.persistence = Some(Duration::from_secs(300));
        next.persistence_netmask = Some(24);
        table.reconfigure(&config_with(vec![next.clone()]));
        assert_eq!(
            diff(&after, &table.desired()),
            [Op::UpdateService {
                name: "web".to_string(),
                spec: ServiceSpec::from_config(&next),
            }]
        );
        assert_eq!(
            table.desired().services["web"].spec.persistence_netmask,
            Some(24)
        );
    }

    /// keepalived's BFD_CHECK: a server following a BFD session is out of
    /// the table until the session is Up, and again while it is down; a
    /// reload keeps its health unless it follows another session.
    #[test]
    fn a_bfd_checked_server_follows_its_session() {
        let a = sa("10.0.0.2:80");
        let b = sa("10.0.0.3:80");
        let mut followed = rs("10.0.0.2:80");
        followed.bfd = Some("s1".to_string());
        let web = vs(
            "web",
            "10.0.0.1:80",
            vec![followed.clone(), rs("10.0.0.3:80")],
        );
        let mut table = Table::from_config(&config_with(vec![web.clone()]));
        let members = |table: &Table| -> Vec<SocketAddr> {
            table.desired().services["web"]
                .members
                .keys()
                .copied()
                .collect()
        };
        assert_eq!(table.health("web", a), Some(Health::Down));
        assert_eq!(members(&table), [b]);
        assert_eq!(
            table.set_bfd_health(|name| name == "s1"),
            [("web".to_string(), a, true)]
        );
        assert_eq!(members(&table), [a, b]);
        assert!(table.set_bfd_health(|name| name == "s1").is_empty());
        // The unchecked server never moves with BFD.
        assert_eq!(
            table.set_bfd_health(|_| false),
            [("web".to_string(), a, false)]
        );
        assert_eq!(members(&table), [b]);
        table.set_bfd_health(|_| true);
        table.reconfigure(&config_with(vec![web.clone()]));
        assert_eq!(
            table.health("web", a),
            Some(Health::Up),
            "kept over a reload"
        );
        let mut other = web.clone();
        other.real_servers[0].bfd = Some("s2".to_string());
        table.reconfigure(&config_with(vec![other]));
        assert_eq!(
            table.health("web", a),
            Some(Health::Down),
            "another session"
        );
        // Beside another check, both must pass (keepalived's checkers).
        table.set_bfd_health(|_| true);
        assert_eq!(members(&table), [a, b]);
        assert!(table.set_health("web", a, false));
        assert_eq!(members(&table), [b]);
        assert!(table.set_bfd_health(|_| false).is_empty(), "already down");
        assert!(!table.set_health("web", a, true), "still down by BFD");
        assert_eq!(members(&table), [b]);
        table.set_bfd_health(|_| true);
        assert_eq!(members(&table), [a, b]);
    }

    #[test]
    fn reload_drops_a_runtime_change_when_the_config_changes_the_same_setting() {
        let a = sa("10.0.0.2:80");
        let web = vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")]);
        let mut table = Table::from_config(&config_with(vec![web.clone()]));
        table.set_admin("web", a, AdminState::Drain).unwrap();
        table.set_weight("web", a, 4).unwrap();

        let mut next = web.clone();
        next.real_servers[0].admin = AdminState::Maint;
        table.reconfigure(&config_with(vec![next.clone()]));
        assert_eq!(members(&table, "web"), []);
        let report = table.report(None);
        assert_eq!(report.services[0].real_servers[0].admin, "maint");
        assert_eq!(report.services[0].real_servers[0].weight, 4, "weight kept");
    }

    #[test]
    fn reload_resets_health_when_the_binding_changes() {
        let a = sa("10.0.0.2:80");
        let mut web = vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")]);
        web.health = Some(ServiceRef::new("g", "s"));
        let mut table = Table::from_config(&config_with(vec![web.clone()]));
        table.set_health("web", a, false);
        table.reconfigure(&config_with(vec![web.clone()]));
        assert_eq!(table.health("web", a), Some(Health::Down));
        web.health = Some(ServiceRef::new("g", "other"));
        table.reconfigure(&config_with(vec![web.clone()]));
        assert_eq!(table.health("web", a), Some(Health::Unknown));
        web.real_servers[0].host = "backend1".to_string();
        table.set_health("web", a, false);
        table.reconfigure(&config_with(vec![web]));
        assert_eq!(table.health("web", a), Some(Health::Unknown));
    }

    // ----- lvs.alert edits -----

    #[test]
    fn lvs_alert_creates_an_implicit_virtual_service() {
        let mut table = Table::default();
        let edit = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.2 -W 1 -F g");
        let name = table.ensure_virtual(&edit, &VirtualDefaults::default());
        assert_eq!(name, "tcp:10.0.0.1:80");
        assert_eq!(
            table.ensure_virtual(&edit, &VirtualDefaults::default()),
            name
        );
        let desired = table.desired();
        let service = &desired.services[&name];
        assert_eq!(service.spec.dataplane, DataPlane::Proxy);
        assert_eq!(service.spec.scheduler, LbScheduler::WeightedLeastConnection);
        assert_eq!(
            service.members[&sa("10.0.0.2:80")],
            Member {
                weight: 1,
                forward: Forward::Nat,
                thresholds: Thresholds::default(),
                proxy: Default::default(),
            },
            "port defaults to the virtual port; the proxy forwards as nat"
        );
        assert_eq!(table.quorum_up(&name), Some(true));
        assert!(table.report(None).services[0].implicit);

        let udp = lvs("-P udp -V 10.0.0.1:53 -R 10.0.0.2:5353 -F g");
        let name = table.ensure_virtual(&udp, &VirtualDefaults::default());
        assert_eq!(name, "udp:10.0.0.1:53");
        let desired = table.desired();
        assert_eq!(desired.services[&name].spec.dataplane, DataPlane::Ipvs);
        assert_eq!(
            desired.services[&name].members[&sa("10.0.0.2:5353")],
            Member {
                weight: 1,
                forward: Forward::DirectRouting,
                thresholds: Thresholds::default(),
                proxy: Default::default(),
            }
        );
    }

    #[test]
    fn lvs_alert_removes_on_failure_and_adds_on_upalert() {
        let mut table = Table::default();
        let down = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.2:8080 -W 1 -F m");
        let name = table.ensure_virtual(&down, &VirtualDefaults::default());
        let rip = sa("10.0.0.2:8080");
        assert_eq!(table.apply_edit(&down, false), Ok(Change::Changed));
        assert_eq!(table.apply_edit(&down, false), Ok(Change::Unchanged));
        assert_eq!(members(&table, &name), []);
        // Health does not bring an alert-removed server back.
        table.set_health(&name, rip, true);
        assert_eq!(members(&table, &name), []);

        let up = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.2:8080 -W 5 -F m");
        assert_eq!(table.apply_edit(&up, true), Ok(Change::Changed));
        assert_eq!(members(&table, &name), [(rip, 5)]);
        let report = table.report(None);
        assert_eq!(report.services[0].real_servers[0].edit, Some(Edit::Added));
        assert_eq!(report.services[0].real_servers[0].source, Source::Alert);

        // An edit for a server the table never saw creates it.
        let other = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.3 -W 2 -F m");
        assert_eq!(table.apply_edit(&other, true), Ok(Change::Created));
        assert_eq!(members(&table, &name), [(rip, 5), (sa("10.0.0.3:80"), 2)]);

        let elsewhere = lvs("-P tcp -V 10.0.0.9:80 -R 10.0.0.3");
        assert_eq!(
            table.apply_edit(&elsewhere, true).unwrap_err().to_string(),
            "no virtual service listens on tcp 10.0.0.9:80 (known: tcp:10.0.0.1:80)"
        );
    }

    #[test]
    fn lvs_alert_edits_a_configured_server_and_ipvs_keeps_its_forwarding() {
        let mut web = vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")]);
        web.dataplane = DataPlane::Ipvs;
        let mut table = Table::from_config(&config_with(vec![web]));
        let edit = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.2 -W 3 -F g");
        assert_eq!(
            table.ensure_virtual(&edit, &VirtualDefaults::default()),
            "web"
        );
        assert_eq!(table.apply_edit(&edit, true), Ok(Change::Changed));
        assert_eq!(
            table.desired().services["web"].members[&sa("10.0.0.2:80")],
            Member {
                weight: 3,
                forward: Forward::DirectRouting,
                thresholds: Thresholds::default(),
                proxy: Default::default(),
            }
        );
    }

    #[test]
    fn seed_lvs_mon_cf_builds_the_table_its_boot_script_would() {
        let config = compile(include_str!("../../etc/mon/lvs.cf"), "/etc/mon/mon.cf");
        let mut table = Table::from_config(&config);
        assert_eq!(
            members(&table, "tcp:192.168.10.100:80"),
            [
                (sa("192.168.10.11:80"), 1),
                (sa("192.168.10.12:80"), 1),
                (sa("192.168.10.13:8080"), 2),
            ]
        );
        // A failure alert removes rs2; a reload keeps that.
        let rs2 = lvs("-P tcp -V 192.168.10.100:80 -R 192.168.10.12 -W 1 -F tun");
        table.apply_edit(&rs2, false).unwrap();
        let before = table.desired();
        table.reconfigure(&config);
        assert_eq!(table.desired(), before);
        assert_eq!(before.services["tcp:192.168.10.100:80"].members.len(), 2);

        // Without the lvs.alert lines the implicit service goes away.
        table.reconfigure(&compile("", "/etc/keepmon/keepmon.toml"));
        assert_eq!(table.service_names().count(), 0);
    }

    #[test]
    fn a_configured_service_on_an_implicit_address_takes_over_its_alert_servers() {
        let mut table = Table::default();
        let edit = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.7");
        table.ensure_virtual(&edit, &VirtualDefaults::default());
        table.apply_edit(&edit, true).unwrap();
        table.reconfigure(&config_with(vec![vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80")],
        )]));
        assert_eq!(table.service_names().collect::<Vec<_>>(), ["web"]);
        assert_eq!(
            members(&table, "web"),
            [(sa("10.0.0.2:80"), 1), (sa("10.0.0.7:80"), 1)]
        );
    }

    #[test]
    fn an_alert_server_outlives_its_configured_service_while_an_lb_action_names_it() {
        let text = r#"
[hostgroups]
web = ["10.0.0.7"]

[actions.lvs]
type = "lb"
virtual = "10.0.0.1:80"
real = "10.0.0.7"

[watch.web.http]
interval = "5s"
monitor = { type = "tcp", port = 80 }
alert = ["lvs"]
upalert = ["lvs"]
"#;
        let with_action = compile(text, "/etc/keepmon/keepmon.toml");
        let mut both = with_action.clone();
        both.virtual_servers =
            config_with(vec![vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")])]).virtual_servers;
        let mut table = Table::from_config(&both);
        assert_eq!(
            members(&table, "web"),
            [(sa("10.0.0.2:80"), 1), (sa("10.0.0.7:80"), 1)]
        );
        table
            .set_admin("web", sa("10.0.0.7:80"), AdminState::Drain)
            .unwrap();

        // The virtual server leaves the config; the action still names .7.
        table.reconfigure(&with_action);
        assert_eq!(
            table.service_names().collect::<Vec<_>>(),
            ["tcp:10.0.0.1:80"]
        );
        assert_eq!(members(&table, "tcp:10.0.0.1:80"), [(sa("10.0.0.7:80"), 0)]);
        assert!(table.report(None).services[0].implicit);
    }

    // ----- lookups -----

    #[test]
    fn lookups_accept_names_addresses_and_host_names() {
        let mut dns = vs("dns", "10.0.0.1:53", vec![rs("10.0.0.2:53")]);
        dns.protocol = Protocol::Udp;
        dns.dataplane = DataPlane::Ipvs;
        let dns_tcp = vs("dns-tcp", "10.0.0.1:53", vec![rs("10.0.0.2:53")]);
        let mut web = vs(
            "web",
            "[2001:db8::1]:80",
            vec![rs("[2001:db8::2]:80"), rs("[2001:db8::2]:81")],
        );
        web.real_servers[0].host = "b1".to_string();
        web.real_servers[1].host = "b1".to_string();
        let table = Table::from_config(&config_with(vec![dns, dns_tcp, web]));

        assert_eq!(table.find_virtual("web"), Ok("web"));
        assert_eq!(table.find_virtual("[2001:db8::1]:80"), Ok("web"));
        assert_eq!(table.find_virtual("udp:10.0.0.1:53"), Ok("dns"));
        assert_eq!(table.find_virtual("TCP:10.0.0.1:53"), Ok("dns-tcp"));
        assert_eq!(
            table.find_virtual("10.0.0.1:53").unwrap_err().to_string(),
            "\"10.0.0.1:53\" matches several virtual services (dns, dns-tcp); give the name or tcp:/udp:"
        );
        assert_eq!(
            table.find_virtual("x").unwrap_err().to_string(),
            "unknown virtual service \"x\" (known: dns, dns-tcp, web)"
        );

        assert_eq!(table.find_real("dns", "10.0.0.2"), Ok(sa("10.0.0.2:53")));
        assert_eq!(table.find_real("dns", "10.0.0.2:53"), Ok(sa("10.0.0.2:53")));
        assert_eq!(
            table.find_real("web", "2001:db8::2"),
            Ok(sa("[2001:db8::2]:80"))
        );
        assert_eq!(
            table.find_real("web", "[2001:db8::2]"),
            Ok(sa("[2001:db8::2]:80"))
        );
        assert_eq!(
            table.find_real("web", "[2001:db8::2]:81"),
            Ok(sa("[2001:db8::2]:81"))
        );
        assert_eq!(
            table.find_real("web", "b1").unwrap_err().to_string(),
            "\"b1\" matches several real servers of virtual service \"web\" ([2001:db8::2]:80, [2001:db8::2]:81); give ip:port"
        );
        assert_eq!(
            table.find_real("dns", "10.0.0.3").unwrap_err().to_string(),
            "virtual service \"dns\" has no real server \"10.0.0.3\" (known: 10.0.0.2:53)"
        );
        assert_eq!(
            Table::default().find_virtual("x").unwrap_err().to_string(),
            "unknown virtual service \"x\" (known: none)"
        );
    }

    #[test]
    fn host_names_find_a_single_real_server() {
        let mut web = vs("web", "10.0.0.1:80", vec![rs("10.0.0.2:80")]);
        web.real_servers[0].host = "backend1".to_string();
        let table = Table::from_config(&config_with(vec![web]));
        assert_eq!(table.find_real("web", "backend1"), Ok(sa("10.0.0.2:80")));
    }

    // ----- report -----

    #[test]
    fn ipvsadm_rendering_has_ipvsadm_columns() {
        let mut web = vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80"), rs("10.0.0.3:80"), rs("10.0.0.4:80")],
        );
        web.persistence = Some(Duration::from_secs(360));
        web.persistence_netmask = Some(24);
        web.real_servers[0].weight = 3;
        web.real_servers[0].thresholds = Thresholds {
            upper: 100,
            lower: 50,
        };
        web.real_servers[1].admin = AdminState::Drain;
        let mut dr = vs("dr", "10.0.0.1:443", vec![rs("10.0.0.2:443")]);
        dr.dataplane = DataPlane::Ipvs;
        dr.scheduler = LbScheduler::SourceHash;
        dr.real_servers[0].forward = Forward::DirectRouting;
        let mut table = Table::from_config(&config_with(vec![web, dr]));
        table.set_health("web", sa("10.0.0.4:80"), false);
        let conns = |name: &str, addr: SocketAddr| {
            if name == "web" && addr == sa("10.0.0.2:80") {
                Conns {
                    active: 12,
                    inactive: 340,
                    ..Conns::default()
                }
            } else {
                Conns::default()
            }
        };
        assert_eq!(
            table.render_ipvsadm(Some(&conns)),
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  10.0.0.1:443 sh\n\
             \x20 -> 10.0.0.2:443                 Route   1      0          0         \n\
             TCP  10.0.0.1:80 wrr persistent 360 mask 255.255.255.0\n\
             \x20 -> 10.0.0.2:80                  Masq    3      12         340       \n\
             \x20 -> 10.0.0.3:80                  Masq    0      0          0         \n"
        );
        let report = table.report(None);
        let json = serde_json::to_value(&report).unwrap();
        let real = &json["services"][1]["real_servers"][2];
        assert_eq!(real["addr"], "10.0.0.4:80");
        assert_eq!(real["effective_weight"], serde_json::Value::Null);
        assert_eq!(real["health"], "down");
        assert_eq!(real["admin"], "ready");
        assert_eq!(json["services"][1]["persistence_netmask"], 24);
        assert_eq!(
            json["services"][1]["real_servers"][0]["upper_threshold"],
            100
        );
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
        let text = report.render_text();
        assert!(
            text.contains(" persistent 360s mask 255.255.255.0 "),
            "{text}"
        );
        assert!(text.contains(" thresholds 100/50"), "{text}");
        assert!(
            text.contains(
                "10.0.0.4:80                  nat  weight 1    now absent  down     ready"
            ),
            "{text}"
        );
    }

    // ----- diff and apply -----

    #[test]
    fn diff_removes_and_adds_a_service_whose_endpoint_changed() {
        let mut current = Table::from_config(&config_with(vec![vs(
            "web",
            "10.0.0.1:80",
            vec![rs("10.0.0.2:80")],
        )]))
        .desired();
        let desired = Table::from_config(&config_with(vec![vs(
            "web",
            "10.0.0.1:8080",
            vec![rs("10.0.0.2:80")],
        )]))
        .desired();
        let ops = diff(&current, &desired);
        let kinds: Vec<&str> = ops
            .iter()
            .map(|op| match op {
                Op::RemoveReal { .. } => "remove-real",
                Op::RemoveService { .. } => "remove-service",
                Op::AddService { .. } => "add-service",
                Op::AddReal { .. } => "add-real",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["remove-real", "remove-service", "add-service", "add-real"]
        );
        apply(&mut current, &ops);
        assert_eq!(current, desired);
    }

    fn spec_strategy() -> impl Strategy<Value = ServiceSpec> {
        (
            prop::sample::select(vec!["10.0.0.1:80", "10.0.0.1:443", "[::1]:80"]),
            prop::bool::ANY,
            prop::bool::ANY,
            prop::bool::ANY,
            prop::option::of(1u64..3),
            prop::option::of(prop::sample::select(vec![16u8, 24])),
        )
            .prop_map(|(listen, udp, ipvs, rr, persistence, mask)| ServiceSpec {
                listen: Some(sa(listen)),
                fwmark: None,
                protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                scheduler: if rr {
                    LbScheduler::RoundRobin
                } else {
                    LbScheduler::WeightedLeastConnection
                },
                dataplane: if ipvs {
                    DataPlane::Ipvs
                } else {
                    DataPlane::Proxy
                },
                persistence: persistence.map(Duration::from_secs),
                persistence_netmask: mask,
                sorry_server: None,
                quorum: None,
                hysteresis: 0,
                retries: 2,
                connect_timeout: Duration::from_secs(2),
                proxy: Default::default(),
                server_order: Vec::new(),
                weight_unit: 1,
            })
    }

    fn member_strategy() -> impl Strategy<Value = Member> {
        (
            0u32..3,
            prop::sample::select(vec![Forward::Nat, Forward::DirectRouting, Forward::Tunnel]),
            prop::sample::select(vec![(0u32, 0u32), (10, 0), (10, 5)]),
        )
            .prop_map(|(weight, forward, (upper, lower))| Member {
                weight,
                forward,
                thresholds: Thresholds { upper, lower },
                proxy: Default::default(),
            })
    }

    fn desired_strategy() -> impl Strategy<Value = Desired> {
        let service = (
            spec_strategy(),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "10.0.0.2:80",
                    "10.0.0.3:80",
                    "10.0.0.4:8080",
                    "[::2]:80",
                ])
                .prop_map(sa),
                member_strategy(),
                0..4,
            ),
        )
            .prop_map(|(spec, members)| DesiredService { spec, members });
        prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(String::from),
            service,
            0..4,
        )
        .prop_map(|services| Desired { services })
    }

    /// Random real servers of one virtual service: (admin, health,
    /// inhibit, removed by an alert, weight).
    fn reals_strategy() -> impl Strategy<Value = Vec<(AdminState, Health, bool, bool, u32)>> {
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    AdminState::Ready,
                    AdminState::Drain,
                    AdminState::Maint,
                ]),
                prop::sample::select(vec![Health::Unknown, Health::Up, Health::Down]),
                prop::bool::ANY,
                prop::bool::weighted(0.2),
                0u32..4,
            ),
            0..6,
        )
    }

    proptest! {
        #[test]
        fn applying_the_diff_yields_the_desired_table(
            current in desired_strategy(),
            desired in desired_strategy(),
        ) {
            let ops = diff(&current, &desired);
            let mut state = current.clone();
            // Op by op: reals only on services that exist; a service is
            // removed only once it has no members.
            for op in &ops {
                match op {
                    Op::AddReal { service, .. }
                    | Op::UpdateReal { service, .. }
                    | Op::RemoveReal { service, .. }
                    | Op::UpdateService { name: service, .. } => {
                        prop_assert!(state.services.contains_key(service), "{op:?} on a missing service");
                    }
                    Op::RemoveService { name } => {
                        prop_assert!(state.services[name].members.is_empty(), "{op:?} with members left");
                    }
                    Op::AddService { name, .. } => {
                        prop_assert!(!state.services.contains_key(name), "{op:?} over a live service");
                    }
                }
                apply(&mut state, std::slice::from_ref(op));
            }
            prop_assert_eq!(&state, &desired);
        }

        #[test]
        fn diff_of_a_table_with_itself_is_empty(d in desired_strategy()) {
            prop_assert_eq!(diff(&d, &d), []);
        }

        #[test]
        fn an_unchanged_server_never_appears_in_an_op(
            current in desired_strategy(),
            desired in desired_strategy(),
        ) {
            let ops = diff(&current, &desired);
            for (name, new) in &desired.services {
                let Some(old) = current.services.get(name) else { continue };
                if !old.spec.same_endpoint(&new.spec) {
                    continue;
                }
                for (addr, member) in &new.members {
                    if old.members.get(addr) == Some(member) {
                        prop_assert!(
                            !ops.iter().any(|op| op.service() == name && op.real() == Some(*addr)),
                            "{name} {addr} unchanged but in {ops:?}"
                        );
                    }
                }
                if old.spec == new.spec {
                    prop_assert!(!ops.iter().any(|op| op.service() == name && op.real().is_none()));
                }
            }
        }

        #[test]
        fn membership_never_includes_a_maint_or_removed_server(
            reals in reals_strategy(),
            quorum in prop::option::of(0u32..8),
            hysteresis in 0u32..3,
            sorry in prop::bool::ANY,
            flips in prop::collection::vec((0usize..6, prop::bool::ANY), 0..8),
        ) {
            let mut web = vs("web", "10.0.0.1:80", Vec::new());
            web.quorum = quorum;
            web.hysteresis = hysteresis;
            web.sorry_server = sorry.then(|| sa("10.0.0.99:80"));
            for (i, &(admin, _, inhibit, _, weight)) in reals.iter().enumerate() {
                let mut real = rs(&format!("10.0.0.{}:80", i + 2));
                real.admin = admin;
                real.inhibit_on_failure = inhibit;
                real.weight = weight;
                web.real_servers.push(real);
            }
            let mut table = Table::from_config(&config_with(vec![web]));
            let addr = |i: usize| sa(&format!("10.0.0.{}:80", i + 2));
            for (i, &(_, health, _, removed, _)) in reals.iter().enumerate() {
                if health != Health::Unknown {
                    table.set_health("web", addr(i), health == Health::Up);
                }
                if removed {
                    let edit = lvs(&format!("-P tcp -V 10.0.0.1:80 -R 10.0.0.{}", i + 2));
                    table.apply_edit(&edit, false).unwrap();
                }
            }
            for (i, up) in flips {
                table.set_health("web", addr(i), up);
                table.update_quorum();
                let desired = table.desired();
                let service = &desired.services["web"];
                let report = table.report(None);
                for real in &report.services[0].real_servers {
                    if real.admin == "maint" || real.edit == Some(Edit::Removed) {
                        prop_assert!(!service.members.contains_key(&real.addr));
                    }
                }
                let lost = table.quorum_up("web") == Some(false);
                prop_assert_eq!(
                    service.members.contains_key(&sa("10.0.0.99:80")),
                    lost && sorry
                );
            }
        }
    }

    #[test]
    fn edits_name_real_servers_with_ipvsadm_port_rule() {
        let edit = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.2");
        assert_eq!(edit_real_addr(&edit), sa("10.0.0.2:80"));
        let edit = lvs("-P tcp -V 10.0.0.1:80 -R 10.0.0.2:8080");
        assert_eq!(edit_real_addr(&edit), sa("10.0.0.2:8080"));
        assert_eq!(
            edit.real_addr,
            "10.0.0.2".parse::<IpAddr>().unwrap(),
            "the parser keeps the ip apart"
        );
    }
}
