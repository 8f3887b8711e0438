//! The services part: one slot per configured service (its mon state, next due time, run bookkeeping), what is disabled, the alert and failure histories, trap timers and the scheduler switch; reconfigured from a config diff like every part.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use tokio::time::Instant;

use crate::config::depend::ServiceRef;
use crate::config::diff::ConfigDiff;
use crate::config::model::{Config, DepBehavior, Service};
use crate::metrics::LagWindow;
use crate::scheduler::{self, Clock};
use crate::service::{Gates, ServiceState};
use crate::state::{Disabled, Persisted, service_key};
use crate::traptimer::TrapTimers;

/// One service's runtime slot.
pub(super) struct Slot {
    pub group: String,
    pub service: String,
    pub state: ServiceState,
    pub next_due: Option<Instant>,
    pub running: bool,
    /// Bumped when the service's config changes, so results of runs
    /// started under the old config are dropped.
    pub generation: u64,
    /// The hosts handed to the current or last run.
    pub run_hosts: Vec<String>,
    pub config_error: bool,
    /// The running mon.d script's process id, 0 when none (`list pids`).
    pub pid: Arc<AtomicU32>,
}

/// Every service's state and what is persisted with it.
pub(super) struct Services {
    pub slots: BTreeMap<String, Slot>,
    /// State read from the state file at start, handed to each service as
    /// the first reconfigure adds it; what no service claims is dropped.
    restored: BTreeMap<String, ServiceState>,
    pub disabled: Disabled,
    pub alert_history: VecDeque<String>,
    pub failure_history: VecDeque<String>,
    pub scheduler_running: bool,
    /// When the scheduler was last stopped (mon's `list state`).
    pub stopped_since: i64,
    /// Last trap per service key: time and sender (mon's `last_trap`, `last_traphost`).
    pub last_traps: BTreeMap<String, (i64, String)>,
    /// `traptimeout` heartbeats and `trapduration` resets.
    pub trap_timers: TrapTimers,
    /// Recent scheduling lags, for the metrics page.
    pub lags: LagWindow,
    /// Host checks completed (built-in monitors count each host).
    pub checks: u64,
    /// Something persisted changed since the last save.
    dirty: bool,
}

impl Services {
    /// An empty part holding the state restored from disk; the first
    /// [`Services::reconfigure`] creates the slots.
    pub fn new(restored: Persisted) -> Services {
        Services {
            slots: BTreeMap::new(),
            restored: restored.services,
            disabled: restored.disabled,
            alert_history: restored.alert_history,
            failure_history: restored.failure_history,
            scheduler_running: true,
            stopped_since: 0,
            last_traps: BTreeMap::new(),
            trap_timers: TrapTimers::default(),
            lags: LagWindow::default(),
            checks: 0,
            dirty: true,
        }
    }

    /// Bring the slots in line with `config`: added services get a slot
    /// (with restored state at start) and a first run within `randstart`;
    /// changed ones keep their state and run again now under a new
    /// generation; removed ones go; unchanged ones keep state and timers.
    pub fn reconfigure(&mut self, config: &Config, diff: &ConfigDiff, clock: Clock) {
        let key_of = |r: &ServiceRef| service_key(&r.group, &r.service);
        for removed in &diff.services.removed {
            self.slots.remove(&key_of(removed));
            self.last_traps.remove(&key_of(removed));
        }
        for (_, service) in config.services() {
            let key = service_key(&service.group, &service.name);
            let reference = service.reference();
            if diff.services.changed.contains(&reference)
                && let Some(slot) = self.slots.get_mut(&key)
            {
                slot.generation += 1;
                // A changed service runs at once, as before the change.
                slot.next_due =
                    scheduler::first_due(service, clock, Some(std::time::Duration::ZERO));
                continue;
            }
            if self.slots.contains_key(&key) {
                continue;
            }
            let state = self.restored.remove(&key).unwrap_or_default();
            self.slots.insert(
                key,
                Slot {
                    group: service.group.clone(),
                    service: service.name.clone(),
                    state,
                    // A draw per service: one draw for all of them put
                    // every first run at the same instant.
                    next_due: scheduler::first_due(
                        service,
                        Clock {
                            unit_random: fastrand::f64(),
                            ..clock
                        },
                        config.settings.randstart,
                    ),
                    running: false,
                    generation: 0,
                    run_hosts: Vec::new(),
                    config_error: false,
                    pid: Arc::default(),
                },
            );
        }
        self.restored.clear();
        let timers: Vec<(String, _, _)> = config
            .services()
            .map(|(_, s)| {
                (
                    service_key(&s.group, &s.name),
                    s.traptimeout,
                    s.trapduration,
                )
            })
            .collect();
        self.trap_timers.configure(
            timers.iter().map(|(k, t, d)| (k.as_str(), *t, *d)),
            clock.now,
        );
        self.dirty = true;
    }

    /// Mark the persisted state as changed (saved on the next tick).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether something persisted changed since the last save.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// True once after a change: the caller saves a snapshot.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Everything persisted, as the state file holds it.
    pub fn snapshot(&self) -> Persisted {
        Persisted {
            services: self
                .slots
                .iter()
                .map(|(k, s)| (k.clone(), s.state.clone()))
                .collect(),
            disabled: self.disabled.clone(),
            alert_history: self.alert_history.clone(),
            failure_history: self.failure_history.clone(),
            lb: Vec::new(),
        }
    }

    /// The earliest instant something is due: a run or a trap timer.
    pub fn next_wakeup(&self) -> Option<Instant> {
        if !self.scheduler_running {
            return None;
        }
        self.slots
            .values()
            .filter(|s| !s.running)
            .filter_map(|s| s.next_due)
            .chain(self.trap_timers.next())
            .min()
    }

    /// Services whose run is due at `now` and not running.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.slots
            .iter()
            .filter(|(_, s)| !s.running && s.next_due.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether a service passes (a missing one counts as passing, as mon's
    /// depend does).
    pub fn is_passing(&self, r: &ServiceRef) -> bool {
        self.slots
            .get(&service_key(&r.group, &r.service))
            .is_none_or(|s| s.state.opstatus.is_success())
    }

    pub fn is_failing(&self, r: &ServiceRef) -> bool {
        self.slots
            .get(&service_key(&r.group, &r.service))
            .is_some_and(|s| s.state.opstatus.is_failure())
    }

    /// What may stop an alert right now (mon's gating order).
    pub fn gates(&self, service: &Service) -> Gates {
        let alert_expr = service.alertdepend.as_ref().or(match service.dep_behavior {
            DepBehavior::Alert => service.depend.as_ref(),
            _ => None,
        });
        Gates {
            scheduler_running: self.scheduler_running,
            watch_disabled: self.disabled.watches.contains(&service.group),
            service_disabled: self
                .disabled
                .services
                .contains(&service_key(&service.group, &service.name)),
            depend_ok: alert_expr.is_none_or(|e| e.eval(&mut |r| self.is_passing(r))),
        }
    }

    /// The monitor dependency of a run (dep_behavior m, monitordepend).
    pub fn monitor_depend_ok(&self, service: &Service) -> bool {
        if !matches!(service.dep_behavior, DepBehavior::Monitor) && service.monitordepend.is_none()
        {
            return true;
        }
        let expr = service.monitordepend.as_ref().or(service.depend.as_ref());
        expr.is_none_or(|e| e.eval(&mut |r| self.is_passing(r)))
    }

    /// The hosts a run checks: the group's members less disabled and
    /// excluded hosts, and (dep_behavior hm / hostdepend) less hosts named
    /// in a failing parent's summary (mon matches substrings; keepmon
    /// whole words).
    pub fn monitor_hosts(&self, config: &Config, service: &Service) -> Vec<String> {
        let Some(group) = config.hostgroups.get(&service.group) else {
            return Vec::new();
        };
        let mut parent_refs = service.hostdepend.clone();
        if service.dep_behavior == DepBehavior::HostMonitor
            && let Some(expr) = &service.depend
        {
            parent_refs.extend(expr.refs());
        }
        let parents: Vec<&Slot> = parent_refs
            .iter()
            .filter_map(|r| self.slots.get(&service_key(&r.group, &r.service)))
            .filter(|s| s.state.opstatus.is_failure())
            .collect();
        group
            .hosts
            .iter()
            .map(|h| h.trim_start_matches('*').to_string())
            .filter(|h| !self.disabled.hosts.contains(h))
            .filter(|h| !service.exclude_hosts.contains(h))
            .filter(|h| {
                !parents
                    .iter()
                    .any(|p| p.state.last_summary.split_whitespace().any(|w| w == h))
            })
            .collect()
    }

    /// All non-disabled members of the hostgroup (mon's alert `-h`).
    pub fn alert_hosts(&self, config: &Config, service: &Service) -> Vec<String> {
        config
            .hostgroups
            .get(&service.group)
            .map(|g| {
                g.hosts
                    .iter()
                    .map(|h| h.trim_start_matches('*').to_string())
                    .filter(|h| !self.disabled.hosts.contains(h))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// mon.d scripts running now (maxprocs counts these).
    pub fn running_exec(&self, config: &Config) -> usize {
        self.slots
            .values()
            .filter(|s| {
                s.running
                    && matches!(
                        service_of(config, s).and_then(|c| c.monitor.as_ref()),
                        Some(crate::config::model::Monitor::Exec { .. })
                    )
            })
            .count()
    }

    /// Every host named in a hostgroup.
    pub fn known_hosts(config: &Config) -> BTreeSet<&str> {
        config
            .hostgroups
            .values()
            .flat_map(|g| g.hosts.iter().map(|h| h.trim_start_matches('*')))
            .collect()
    }
}

/// A slot's service definition in `config`.
pub(super) fn service_of<'a>(config: &'a Config, slot: &Slot) -> Option<&'a Service> {
    config.watches.get(&slot.group)?.services.get(&slot.service)
}

/// Append a line to a bounded history.
pub(super) fn push_bounded(list: &mut VecDeque<String>, line: String, limit: usize) {
    list.push_back(line);
    while list.len() > limit.max(1) {
        list.pop_front();
    }
}
