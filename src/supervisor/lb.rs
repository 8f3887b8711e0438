//! The load-balancing part: the pure table, the data planes serving it and the log of table changes; reconfigured from a config diff, edited by health, lvs.alert lines and operators, and brought to the data planes level-triggered.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::depend::ServiceRef;
use crate::config::diff::ConfigDiff;
use crate::config::model::{Action, AdminState, Config, LbEdit, Service};
use crate::control::proto::LbChange;
use crate::lb::dataplane::DataPlanes;
use crate::lb::table::{RealSetting, Report, Table, VirtualDefaults};

use super::services::push_bounded;

/// The tables, their data planes and recent changes.
pub(super) struct LoadBalancing {
    pub table: Table,
    /// Created by the first reconfigure (it needs the statedir).
    planes: Option<DataPlanes>,
    shutdown: CancellationToken,
    /// The table changed since the data planes were last brought in step.
    dirty: bool,
    /// Recent table changes, for `dump`, `lb show` and the history.
    pub log: VecDeque<String>,
    histlength: usize,
    /// Run-time settings from the state file, put back by the first
    /// reconfigure.
    restored: Option<Vec<RealSetting>>,
    /// Stops the task reading the real servers' tracked files.
    file_reader: Option<CancellationToken>,
}

/// How often tracked files are read (keepalived watches them with inotify;
/// the VRRP trackers read theirs as often).
const FILE_READ_INTERVAL: Duration = Duration::from_millis(100);

impl LoadBalancing {
    pub fn new(shutdown: CancellationToken, restored: Vec<RealSetting>) -> LoadBalancing {
        LoadBalancing {
            table: Table::default(),
            planes: None,
            shutdown,
            dirty: false,
            log: VecDeque::new(),
            histlength: 1,
            restored: Some(restored),
            file_reader: None,
        }
    }

    /// (Re)start the task that reads the files real servers track
    /// (keepalived's `FILE_CHECK`) after a reconfigure: it sends every
    /// file's number at once, then each change, as [`super::Event::TrackFile`].
    pub(super) fn read_tracked_files(
        &mut self,
        events: &mpsc::Sender<super::Event>,
        tracker: &TaskTracker,
    ) {
        if let Some(token) = self.file_reader.take() {
            token.cancel();
        }
        let paths = self.table.tracked_files();
        if paths.is_empty() {
            return;
        }
        let token = self.shutdown.child_token();
        self.file_reader = Some(token.clone());
        tracker.spawn(read_files(paths, events.clone(), token));
    }

    /// A tracked file's number into the table; each real server it moves
    /// gets a change-log line.
    pub fn set_file_value(&mut self, path: &Path, value: i64, unix: i64) {
        for (vs, rs) in self.table.set_file_value(path, value) {
            self.dirty = true;
            let line = format!("{unix} lb {vs} {rs} file {} reads {value}", path.display());
            push_bounded(&mut self.log, line, self.histlength);
        }
    }

    /// Reconfigure the table from `config` (at start: from nothing); the
    /// real servers named by lvs.alert lines of services that fail now are
    /// taken out, so the table follows service state from the first moment.
    pub fn reconfigure(
        &mut self,
        config: &Config,
        _diff: &ConfigDiff,
        is_failing: &dyn Fn(&ServiceRef) -> bool,
    ) {
        self.histlength = config.settings.histlength;
        if self.planes.is_none() {
            self.planes = Some(DataPlanes::new(
                self.shutdown.clone(),
                Some(&config.settings.statedir),
                config.settings.remove_kernel_tables_on_stop,
            ));
        }
        if let Some(planes) = &mut self.planes {
            planes.set_remove_on_stop(config.settings.remove_kernel_tables_on_stop);
        }
        self.table.reconfigure(config);
        if let Some(settings) = self.restored.take() {
            for line in self.table.restore_run_time_settings(&settings) {
                tracing::info!(setting = %line, "lb run-time setting from the state file");
            }
        }
        let defaults = VirtualDefaults::default();
        for (_, service) in config.services() {
            let failing = is_failing(&service.reference());
            for edit in lvs_edits_of(service) {
                self.table.ensure_virtual(&edit, &defaults);
                if failing && let Err(e) = self.table.apply_edit(&edit, false) {
                    tracing::warn!(error = %e, "lvs.alert binding");
                }
            }
        }
        self.dirty = true;
    }

    /// Per-host health (after rise/fall) into the table; each real server
    /// it moves gets a line in the change log.
    pub fn set_host_health(&mut self, from: &ServiceRef, host: &str, up: bool, unix: i64) {
        for (vs, rs) in self.table.set_host_health(from, host, up) {
            self.dirty = true;
            let line = format!(
                "{unix} lb {vs} {rs} health {} (from {from})",
                if up { "up" } else { "down" }
            );
            push_bounded(&mut self.log, line, self.histlength);
        }
    }

    /// The BFD sessions' states into the real servers that follow one
    /// (keepalived's BFD_CHECK); each server it moves gets a log line.
    pub fn set_bfd_health(&mut self, states: &crate::bfd::BfdStates, unix: i64) {
        let up = |name: &str| states.get(name).is_some_and(|s| s.up);
        for (vs, rs, up) in self.table.set_bfd_health(up) {
            self.dirty = true;
            tracing::info!(virtual_server = %vs, real_server = %rs, up, "bfd check changed a real server");
            let line = format!(
                "{unix} lb {vs} {rs} health {} (from bfd)",
                if up { "up" } else { "down" }
            );
            push_bounded(&mut self.log, line, self.histlength);
        }
    }

    /// A weight a check set (keepalived's `misc_dynamic`) into the table;
    /// each real server whose weight in force moves gets a change-log line.
    pub fn set_host_weight(
        &mut self,
        from: &ServiceRef,
        host: &str,
        weight: Option<u32>,
        unix: i64,
    ) {
        for (vs, rs) in self.table.set_host_weight(from, host, weight) {
            self.dirty = true;
            let set = weight.map_or("its own".to_string(), |w| w.to_string());
            let line = format!("{unix} lb {vs} {rs} weight {set} (from {from})");
            push_bounded(&mut self.log, line, self.histlength);
        }
    }

    /// Apply a service's lvs.alert edits as its state says (level-triggered).
    pub fn apply_lvs_edits_of(&mut self, service: &Service, add: bool, unix: i64, why: &str) {
        for edit in lvs_edits_of(service) {
            self.edit(
                &edit,
                add,
                unix,
                &format!("{why} of {}", service.reference()),
            );
        }
    }

    /// One explicit table edit (an lvs.alert line, an `lb` action); returns
    /// the log line.
    pub fn edit(&mut self, edit: &LbEdit, add: bool, unix: i64, why: &str) -> String {
        self.table.ensure_virtual(edit, &VirtualDefaults::default());
        let verb = if add { "add" } else { "remove" };
        let real = match edit.real_port {
            Some(port) => format!("{}", SocketAddr::new(edit.real_addr, port)),
            None => edit.real_addr.to_string(),
        };
        let line = match self.table.apply_edit(edit, add) {
            Ok(change) => {
                if change.is_changed() {
                    self.dirty = true;
                }
                format!("{unix} lb {verb} {} {real} ({why})", edit.virtual_addr)
            }
            Err(e) => format!(
                "{unix} lb {verb} {} {real} failed: {e} ({why})",
                edit.virtual_addr
            ),
        };
        tracing::info!("{line}");
        push_bounded(&mut self.log, line.clone(), self.histlength);
        line
    }

    /// An operator's change to one real server (`lb drain|maint|ready|weight`);
    /// returns the virtual service's name and the real server's address.
    pub fn set(
        &mut self,
        vs: &str,
        rs: &str,
        change: LbChange,
        unix: i64,
    ) -> Result<(String, SocketAddr, String), String> {
        let name = self
            .table
            .find_virtual(vs)
            .map_err(|e| e.to_string())?
            .to_string();
        let addr = self.table.find_real(&name, rs).map_err(|e| e.to_string())?;
        let result = match change {
            LbChange::Drain => self.table.set_admin(&name, addr, AdminState::Drain),
            LbChange::Maint => self.table.set_admin(&name, addr, AdminState::Maint),
            LbChange::Ready => self.table.set_admin(&name, addr, AdminState::Ready),
            LbChange::Weight { weight } => self.table.set_weight(&name, addr, weight),
        };
        result.map_err(|e| e.to_string())?;
        self.dirty = true;
        let line = format!("{unix} lb {name} {addr} {change:?} (cli)");
        tracing::info!("{line}");
        push_bounded(&mut self.log, line.clone(), self.histlength);
        Ok((name, addr, line))
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Bring the data planes in step with the table. Proxies and IPVS are
    /// updated here (in-memory swaps and synchronous netlink requests);
    /// nftables gets the wanted table and runs `nft` in its own task.
    pub async fn reconcile(&mut self, unix: i64) {
        self.dirty = false;
        for change in self.table.update_quorum() {
            let line = format!(
                "{unix} lb {} quorum {} (live weight {}, quorum {}, hysteresis {})",
                change.service,
                if change.up { "gained" } else { "lost" },
                change.live_weight,
                change.quorum,
                change.hysteresis
            );
            tracing::warn!("{line}");
            push_bounded(&mut self.log, line, self.histlength);
        }
        let desired = self.table.desired();
        if let Some(planes) = &mut self.planes {
            for op in planes.apply(&desired).await {
                tracing::info!(?op, "data plane");
            }
        }
    }

    /// The report behind `lb show`, with the data planes' counters.
    pub fn report(&self) -> Report {
        let all = self
            .planes
            .as_ref()
            .map(DataPlanes::all_conn_counts)
            .unwrap_or_default();
        let counts =
            |vs: &str, rs: SocketAddr| all.get(&(vs.to_string(), rs)).copied().unwrap_or_default();
        self.table.report(Some(&counts))
    }

    /// Proxy backend counters for the metrics page.
    pub fn stats(&self) -> Vec<(String, crate::lb::proxy::BackendStats)> {
        self.planes
            .as_ref()
            .map(DataPlanes::stats)
            .unwrap_or_default()
    }

    /// At daemon stop: leave or remove the kernel tables.
    pub async fn stop(&mut self) {
        if let Some(planes) = &mut self.planes {
            planes.stop().await;
        }
    }
}

/// Every `lvs.alert`/`lb` edit in a service's alert lines (failure and up
/// alerts), deduplicated by (virtual, real).
pub(super) fn lvs_edits_of(service: &Service) -> Vec<LbEdit> {
    let mut edits: Vec<LbEdit> = Vec::new();
    for period in &service.periods {
        for line in period.alerts.iter().chain(&period.upalerts) {
            if let Action::Lb(edit) = &line.action
                && !edits.iter().any(|e| {
                    e.virtual_addr == edit.virtual_addr
                        && e.real_addr == edit.real_addr
                        && e.real_port == edit.real_port
                })
            {
                edits.push(edit.clone());
            }
        }
    }
    edits
}

/// Reads each file every [`FILE_READ_INTERVAL`] as keepalived reads a
/// tracked file (the first 127 bytes, C's `strtol`; missing or empty is 0;
/// an invalid number keeps the last one) and sends the changes.
async fn read_files(
    paths: BTreeSet<PathBuf>,
    events: mpsc::Sender<super::Event>,
    token: CancellationToken,
) {
    let mut last: BTreeMap<PathBuf, i64> = BTreeMap::new();
    let mut tick = tokio::time::interval(FILE_READ_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        for path in &paths {
            let bytes = tokio::fs::read(path).await.unwrap_or_default();
            let head = &bytes[..bytes.len().min(127)];
            let Some(value) =
                crate::vrrp::instance::track_file_number(&String::from_utf8_lossy(head))
            else {
                if !last.contains_key(path) {
                    tracing::warn!(file = %path.display(), "invalid number in tracked file; keeping the last one");
                }
                last.entry(path.clone()).or_insert(0);
                continue;
            };
            if last.get(path) != Some(&value) {
                last.insert(path.clone(), value);
                let event = super::Event::TrackFile {
                    path: path.clone(),
                    value,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}
