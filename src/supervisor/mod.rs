//! The daemon's event loop: owns all mutable state, schedules monitors, applies results to the pure state machine, fires alerts, answers the control socket; startup and reload share one path.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alert::{self, AlertJob};
use crate::config::model::{Action, Config, DepBehavior, Format, Monitor, Service};
use crate::config::{self, depend::ServiceRef};
use crate::control::proto::{
    DumpReport, HostDump, Request, Response, ServiceDump, StatusReport, Target, TestWhat,
};
use crate::control::unix::{self as control, ControlCall};
use crate::lb::dataplane::DataPlanes;
use crate::lb::table::Table;
use crate::monitor::{self, HostStatus, RunOutput, RunRequest};
use crate::scheduler;
use crate::service::{
    AlertDecision, AlertKind, Gates, HostOutcome, Now, OpStatus, Outcome, ServiceState, Source,
};
use crate::state::{self, Persisted, service_key};

mod lb;
mod mail;
mod monproto;
mod traps;
mod vrrp;

/// How the daemon was asked to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// None: the embedded demo config.
    pub config_path: Option<PathBuf>,
    pub format: Option<Format>,
    /// Text of the embedded config, used when `config_path` is None.
    pub embedded: &'static str,
}

/// Run the daemon until SIGTERM/SIGINT or `keepmon stop`. Returns an error
/// only when it cannot start (bad config, socket in use, unwritable statedir).
pub async fn run(options: Options) -> anyhow::Result<()> {
    let compiled = load(&options).map_err(|e| anyhow::anyhow!("{}{e}", e.diagnostics))?;
    for warning in compiled.warnings.warnings() {
        tracing::warn!("{warning}");
    }
    let config = compiled.config;
    std::fs::create_dir_all(&config.settings.statedir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create statedir {}: {e}",
            config.settings.statedir.display()
        )
    })?;
    let persisted = match state::load(&config.settings.statedir)? {
        state::Loaded::Fresh => Persisted::default(),
        state::Loaded::Restored(p) => *p,
        state::Loaded::Corrupt { moved_to, error } => {
            tracing::warn!(moved_to = %moved_to.display(), error, "state file unreadable; starting fresh");
            Persisted::default()
        }
    };
    let listener = control::bind(&config.settings.control_socket).map_err(|e| {
        anyhow::anyhow!(
            "control socket {}: {e}",
            config.settings.control_socket.display()
        )
    })?;
    let shutdown = CancellationToken::new();
    let (call_tx, call_rx) = mpsc::channel::<ControlCall>(64);
    monproto::start_listener(&config, call_tx.clone(), shutdown.clone()).await;
    tokio::spawn(control::serve(listener, call_tx, shutdown.clone()));
    let (metrics_tx, metrics_rx) = tokio::sync::watch::channel(String::new());
    if let Some(addr) = config.settings.metrics_listener {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("metrics listener {addr}: {e}"))?;
        tokio::spawn(crate::metrics::serve(
            listener,
            metrics_rx,
            shutdown.clone(),
        ));
    }
    let (event_tx, event_rx) = mpsc::channel::<Event>(1024);
    let mut supervisor = Supervisor::new(options, config, persisted, event_tx, shutdown.clone());
    supervisor.metrics = Some(metrics_tx);
    supervisor.publish_metrics();
    supervisor.start_mail();
    tracing::info!(
        config = %supervisor.config_name(),
        services = supervisor.slots.len(),
        socket = %supervisor.config.settings.control_socket.display(),
        "keepmon started"
    );
    supervisor.startup_alerts();
    supervisor.start_vrrp();
    // systemd (issue 20): the proxies' listeners are bound before READY=1.
    supervisor.reconcile_lb().await;
    crate::systemd::notify_ready(&crate::systemd::status_line(&supervisor.status()));
    let result = supervisor.event_loop(call_rx, event_rx).await;
    crate::systemd::notify_stopping(); // systemd (issue 20)
    supervisor.shut_down().await;
    result
}

fn load(options: &Options) -> Result<config::Compiled, config::CompileError> {
    match &options.config_path {
        Some(path) => config::load(path, options.format),
        None => config::compile_str(
            options.embedded,
            std::path::Path::new("keepmon.toml"),
            options.format.unwrap_or(Format::Toml),
            &config::RealFileSystem,
        ),
    }
}

/// What tasks report back to the supervisor.
enum Event {
    MonitorDone {
        key: String,
        generation: u64,
        output: RunOutput,
    },
    AlertDone {
        group: String,
        service: String,
        alert: String,
        ok: bool,
        message: String,
    },
    /// A VRRP instance changed state.
    Vrrp(crate::vrrp::instance::Transition),
}

/// One service's runtime slot.
struct Slot {
    group: String,
    service: String,
    state: ServiceState,
    next_due: Option<Instant>,
    running: bool,
    /// Bumped on reload so results of runs started under an old config are dropped.
    generation: u64,
    /// The hosts handed to the current or last run.
    run_hosts: Vec<String>,
    config_error: bool,
    /// The running mon.d script's process id, 0 when none (`list pids`).
    pid: Arc<AtomicU32>,
}

struct Supervisor {
    options: Options,
    config: Config,
    slots: BTreeMap<String, Slot>,
    persisted: Persisted,
    scheduler_running: bool,
    /// When the scheduler was last stopped (mon's `list state`).
    stopped_since: i64,
    /// Last trap per service key: time and sender (mon's `last_trap`, `last_traphost`).
    last_traps: BTreeMap<String, (i64, String)>,
    /// `traptimeout` heartbeats and `trapduration` resets (supervisor/traps.rs).
    trap_timers: crate::traptimer::TrapTimers,
    started: i64,
    events: mpsc::Sender<Event>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    dirty: bool,
    metrics: Option<tokio::sync::watch::Sender<String>>,
    /// Recent scheduling lags (actual start minus due time), for metrics.
    lags: LagWindow,
    /// Host checks completed (built-in monitors count each host).
    checks: u64,
    /// The load-balancer tables (pure) and the data planes serving them.
    table: Table,
    planes: DataPlanes,
    /// The table changed since the data planes were last brought in step.
    lb_dirty: bool,
    /// Recent table changes, for `dump` and the history.
    lb_log: VecDeque<String>,
    /// The mail outbox and its delivery worker (started by `run`).
    mail: Option<mail::Mail>,
    /// The running VRRP instances (supervisor/vrrp.rs).
    vrrp: vrrp::VrrpInstances,
}

/// The last few thousand scheduling lags, for quantiles on the metrics page.
#[derive(Default)]
struct LagWindow {
    samples: VecDeque<Duration>,
}

impl LagWindow {
    const SIZE: usize = 4096;

    fn push(&mut self, lag: Duration) {
        if self.samples.len() == Self::SIZE {
            self.samples.pop_front();
        }
        self.samples.push_back(lag);
    }

    /// Quantiles (0.5, 0.99, max) in seconds; zeros before any sample.
    fn quantiles(&self) -> [f64; 3] {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort();
        let at = |q: f64| {
            let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted.get(i).map(Duration::as_secs_f64).unwrap_or(0.0)
        };
        [at(0.5), at(0.99), at(1.0)]
    }
}

impl Supervisor {
    fn new(
        options: Options,
        config: Config,
        mut persisted: Persisted,
        events: mpsc::Sender<Event>,
        shutdown: CancellationToken,
    ) -> Supervisor {
        let now = Instant::now();
        let mut slots = BTreeMap::new();
        for (_, service) in config.services() {
            let key = service_key(&service.group, &service.name);
            let state = persisted.services.remove(&key).unwrap_or_default();
            let slot = Slot {
                group: service.group.clone(),
                service: service.name.clone(),
                state,
                next_due: first_due(service, now, config.settings.randstart),
                running: false,
                generation: 0,
                run_hosts: Vec::new(),
                config_error: false,
                pid: Arc::default(),
            };
            slots.insert(key, slot);
        }
        persisted.services.clear();
        let planes = DataPlanes::new(
            shutdown.clone(),
            Some(&config.settings.statedir),
            config.settings.remove_kernel_tables_on_stop,
        );
        let mut supervisor = Supervisor {
            options,
            config,
            slots,
            persisted,
            scheduler_running: true,
            stopped_since: 0,
            last_traps: BTreeMap::new(),
            trap_timers: Default::default(),
            started: unix_now(),
            events,
            tracker: TaskTracker::new(),
            shutdown,
            dirty: true,
            metrics: None,
            lags: LagWindow::default(),
            checks: 0,
            table: Table::default(),
            planes,
            lb_dirty: true,
            lb_log: VecDeque::new(),
            mail: None,
            vrrp: vrrp::VrrpInstances::default(),
        };
        supervisor.table = Table::from_config(&supervisor.config);
        supervisor.remove_failing_lvs_members();
        supervisor.configure_trap_timers();
        supervisor
    }

    fn config_name(&self) -> String {
        match &self.options.config_path {
            Some(p) => p.display().to_string(),
            None => "built-in demo config".to_string(),
        }
    }

    async fn event_loop(
        &mut self,
        mut calls: mpsc::Receiver<ControlCall>,
        mut events: mpsc::Receiver<Event>,
    ) -> anyhow::Result<()> {
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut save_tick = tokio::time::interval(Duration::from_secs(1));
        save_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // systemd (issue 20): WATCHDOG=1 from this loop, so a stuck loop is restarted.
        let mut watchdog = crate::systemd::Watchdog::from_env();
        loop {
            let next = self.next_wakeup();
            tokio::select! {
                _ = tokio::time::sleep_until(next) => self.run_due(),
                Some(event) = events.recv() => self.on_event(event),
                Some((request, reply)) = calls.recv() => {
                    let stop = request == Request::Stop;
                    let response = self.on_request(request);
                    let _ = reply.send(response);
                    if stop {
                        tracing::info!("stop requested");
                        return Ok(());
                    }
                }
                _ = sigterm.recv() => { tracing::info!("SIGTERM"); return Ok(()); }
                _ = sigint.recv() => { tracing::info!("SIGINT"); return Ok(()); }
                _ = sighup.recv() => {
                    if let Err(message) = self.reload() {
                        tracing::error!("reload refused, the old config keeps running:\n{message}");
                    }
                }
                _ = save_tick.tick() => {
                    self.save_if_dirty();
                    self.publish_metrics();
                    crate::systemd::notify_status(&crate::systemd::status_line(&self.status())); // systemd (issue 20)
                }
                // systemd (issue 20): the watchdog keep-alive.
                _ = watchdog.due() => watchdog.ping(&crate::systemd::status_line(&self.status())),
            }
            if self.lb_dirty {
                self.reconcile_lb().await;
            }
            self.track_vrrp();
        }
    }

    /// Finish in-flight alerts within the grace period, then save state.
    async fn shut_down(&mut self) {
        self.stop_vrrp().await;
        self.shutdown.cancel();
        self.tracker.close();
        let grace = self.config.settings.shutdown_grace;
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                "tasks still running after the grace period"
            );
        }
        self.planes.stop().await;
        self.dirty = true;
        self.save_if_dirty();
        std::fs::remove_file(&self.config.settings.control_socket).ok();
        tracing::info!("keepmon stopped");
    }

    fn next_wakeup(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        if !self.scheduler_running {
            return far;
        }
        self.slots
            .values()
            .filter(|s| !s.running)
            .filter_map(|s| s.next_due)
            .chain(self.trap_timers.next())
            .min()
            .unwrap_or(far)
    }

    fn run_due(&mut self) {
        self.run_trap_timers();
        let now = Instant::now();
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.running && s.next_due.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.start_monitor(&key, now);
        }
    }

    fn start_monitor(&mut self, key: &str, now: Instant) {
        let Some(service) = self.service_config(key).cloned() else {
            return;
        };
        let local = chrono::Local::now().naive_local();
        let excluded = self
            .config
            .settings
            .exclude_period
            .as_ref()
            .is_some_and(|p| p.contains(&local))
            || service
                .exclude_period
                .as_ref()
                .is_some_and(|p| p.contains(&local));
        if excluded {
            self.reschedule(key, &service, now);
            return;
        }
        if matches!(service.dep_behavior, DepBehavior::Monitor) || service.monitordepend.is_some() {
            let expr = service.monitordepend.as_ref().or(service.depend.as_ref());
            if let Some(expr) = expr
                && !expr.eval(&mut |r| self.is_passing(r))
            {
                // mon: skipped, status unchanged, retried each tick.
                if let Some(slot) = self.slots.get_mut(key) {
                    slot.next_due = Some(now + Duration::from_secs(1));
                }
                return;
            }
        }
        if let Some(Monitor::Exec { .. }) = &service.monitor {
            let max = self.config.settings.maxprocs as usize;
            let running_exec = self
                .slots
                .iter()
                .filter(|(k, s)| {
                    s.running
                        && matches!(
                            self.service_config(k).and_then(|c| c.monitor.as_ref()),
                            Some(Monitor::Exec { .. })
                        )
                })
                .count();
            if max > 0 && running_exec >= max {
                if let Some(slot) = self.slots.get_mut(key) {
                    slot.next_due = Some(now + Duration::from_millis(200));
                }
                return;
            }
        }
        let hosts = self.monitor_hosts(&service);
        let Some(monitor_spec) = service.monitor.clone() else {
            if let Some(slot) = self.slots.get_mut(key) {
                slot.next_due = None;
            }
            return;
        };
        if hosts.is_empty() && !service.allow_empty_group {
            tracing::info!(group = %service.group, service = %service.name, "not called because of no host arguments");
            self.reschedule(key, &service, now);
            return;
        }
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.running = true;
        if let Some(due) = slot.next_due {
            let lag = now.saturating_duration_since(due);
            self.lags.push(lag);
        }
        let env = monitor_env(&self.config, &service, &slot.state);
        slot.run_hosts = hosts.clone();
        let request = RunRequest {
            hosts,
            monitor: monitor_spec,
            timeout: service
                .timeout
                .unwrap_or(self.config.settings.monitor_timeout),
            env,
            builtin_policy: self.config.settings.builtin_monitors,
            lua: crate::lua::LuaSettings::from_settings(&self.config.settings),
        };
        let generation = slot.generation;
        let pid = slot.pid.clone();
        let events = self.events.clone();
        let key = key.to_string();
        self.tracker.spawn(async move {
            // Each check runs in its own task: a panic there is a failed check.
            let started = std::time::Instant::now();
            let run = async move { monitor::run_tracked(&request, &pid).await };
            let output = match tokio::spawn(run).await {
                Ok(output) => output,
                Err(e) => RunOutput {
                    exit: 1,
                    summary: format!("monitor task failed: {e}"),
                    detail: String::new(),
                    hosts: Vec::new(),
                    timed_out: false,
                    duration: started.elapsed(),
                    config_error: false,
                },
            };
            let _ = events
                .send(Event::MonitorDone {
                    key,
                    generation,
                    output,
                })
                .await;
        });
    }

    fn monitor_hosts(&self, service: &Service) -> Vec<String> {
        let Some(group) = self.config.hostgroups.get(&service.group) else {
            return Vec::new();
        };
        // dep_behavior hm / hostdepend: drop hosts named in a failing
        // parent's summary (mon matches substrings; keepmon whole words).
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
            .filter(|h| !self.persisted.disabled.hosts.contains(h))
            .filter(|h| !service.exclude_hosts.contains(h))
            .filter(|h| {
                !parents
                    .iter()
                    .any(|p| p.state.last_summary.split_whitespace().any(|w| w == h))
            })
            .collect()
    }

    /// All non-disabled members of the hostgroup (mon's alert `-h`).
    fn alert_hosts(&self, service: &Service) -> Vec<String> {
        self.config
            .hostgroups
            .get(&service.group)
            .map(|g| {
                g.hosts
                    .iter()
                    .map(|h| h.trim_start_matches('*').to_string())
                    .filter(|h| !self.persisted.disabled.hosts.contains(h))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn reschedule(&mut self, key: &str, service: &Service, now: Instant) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.next_due = next_due(service, &slot.state, slot.next_due.unwrap_or(now), now);
    }

    fn service_config(&self, key: &str) -> Option<&Service> {
        let slot = self.slots.get(key)?;
        self.config
            .watches
            .get(&slot.group)?
            .services
            .get(&slot.service)
    }

    fn is_passing(&self, r: &ServiceRef) -> bool {
        self.slots
            .get(&service_key(&r.group, &r.service))
            .is_none_or(|s| s.state.opstatus.is_success())
    }

    fn gates(&self, service: &Service) -> Gates {
        let alert_expr = service.alertdepend.as_ref().or(match service.dep_behavior {
            DepBehavior::Alert => service.depend.as_ref(),
            _ => None,
        });
        Gates {
            scheduler_running: self.scheduler_running,
            watch_disabled: self.persisted.disabled.watches.contains(&service.group),
            service_disabled: self
                .persisted
                .disabled
                .services
                .contains(&service_key(&service.group, &service.name)),
            depend_ok: alert_expr.is_none_or(|e| e.eval(&mut |r| self.is_passing(r))),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::MonitorDone {
                key,
                generation,
                output,
            } => self.on_monitor_done(&key, generation, output),
            Event::AlertDone {
                group,
                service,
                alert,
                ok,
                message,
            } => {
                if ok {
                    tracing::debug!(group, service, alert, "alert done");
                } else {
                    tracing::warn!(group, service, alert, message, "alert failed");
                }
            }
            Event::Vrrp(transition) => self.on_vrrp_transition(transition),
        }
    }

    fn on_monitor_done(&mut self, key: &str, generation: u64, output: RunOutput) {
        let now_instant = Instant::now();
        let Some(service) = self.service_config(key).cloned() else {
            return; // removed by a reload
        };
        let gates = self.gates(&service);
        let now = wall_now();
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.running = false;
        if slot.generation != generation {
            slot.next_due = Some(now_instant);
            return;
        }
        let outcome = Outcome {
            exit: output.exit,
            summary: output.summary.clone(),
            detail: output.detail.clone(),
            source: Source::Monitor,
            timed_out: output.timed_out,
        };
        let step = slot.state.record(&service, &now, &gates, &outcome);
        slot.config_error = output.config_error;
        if output.config_error {
            slot.state.opstatus = OpStatus::ConfigErr;
        }
        self.checks += output.hosts.len().max(1) as u64;
        let results = host_outcomes(&slot.run_hosts, &output);
        let host_changes = slot
            .state
            .update_hosts(service.rise, service.fall, &results);
        let service_ref = service.reference();
        for change in &host_changes {
            tracing::debug!(group = %service.group, service = %service.name, host = %change.host, up = change.up, "host state changed");
            for (vs, rs) in self
                .table
                .set_host_health(&service_ref, &change.host, change.up)
            {
                self.lb_dirty = true;
                let line = format!(
                    "{} lb {vs} {rs} health {} (from {service_ref})",
                    now.unix,
                    if change.up { "up" } else { "down" }
                );
                push_bounded(&mut self.lb_log, line, self.config.settings.histlength);
            }
        }
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let due = slot.next_due.unwrap_or(now_instant);
        slot.next_due = next_due(&service, &slot.state, due, now_instant);
        // Level-triggered table edits for mon's lvs.alert lines: a service
        // that steers real servers through alerts also steers them by state.
        if step.went_down || step.came_up.is_some() {
            self.apply_lvs_edits_of(&service, step.came_up.is_some(), &now, "state");
        }
        if step.went_down {
            tracing::warn!(group = %service.group, service = %service.name, summary = %outcome.summary, "service failing");
            let line = format!(
                "{} {} {} {}",
                service.group, service.name, now.unix, outcome.summary
            );
            push_bounded(
                &mut self.persisted.failure_history,
                line,
                self.config.settings.histlength,
            );
        }
        if let Some(down) = &step.came_up {
            tracing::info!(group = %service.group, service = %service.name, down_secs = down.time_up - down.first_failure, "service recovered");
            if self.config.settings.dtlogging {
                let interval = service.interval.map(|d| d.as_secs()).unwrap_or(0);
                let line = format!(
                    "{} {} {} {} {} {} {}",
                    down.time_up,
                    service.group,
                    service.name,
                    down.first_failure,
                    down.time_up - down.first_failure,
                    interval,
                    down.summary
                );
                if let Err(e) = state::append_line(&self.config.settings.dtlogfile, &line) {
                    tracing::warn!(error = %e, "cannot write the downtime log");
                }
            }
        }
        if let Some(reason) = step.suppressed {
            tracing::debug!(group = %service.group, service = %service.name, reason, "failure alerts suppressed");
        }
        self.fire_alerts(&service, step.alerts, &now);
        self.dirty = true;
    }

    fn publish_metrics(&self) {
        let Some(tx) = &self.metrics else {
            return;
        };
        let text = crate::metrics::render(
            self.slots.values().map(|s| crate::metrics::ServiceMetrics {
                group: &s.group,
                service: &s.service,
                opstatus: s.state.opstatus.code(),
                up: s.state.opstatus.is_success(),
                failures: s.state.failure_count,
                alerts: s.state.alert_count,
            }),
            self.scheduler_running,
        );
        let [p50, p99, max] = self.lags.quantiles();
        let text = format!(
            "{text}# HELP keepmon_schedule_lag_seconds How late monitor runs start (recent runs).\n\
             # TYPE keepmon_schedule_lag_seconds summary\n\
             keepmon_schedule_lag_seconds{{quantile=\"0.5\"}} {p50}\n\
             keepmon_schedule_lag_seconds{{quantile=\"0.99\"}} {p99}\n\
             keepmon_schedule_lag_seconds{{quantile=\"1\"}} {max}\n\
             # HELP keepmon_checks_total Host checks completed.\n\
             # TYPE keepmon_checks_total counter\n\
             keepmon_checks_total {}\n",
            self.checks
        );
        let mut text = text;
        let stats = self.planes.stats();
        if !stats.is_empty() {
            text.push_str("# HELP keepmon_backend_active_connections Connections open through the proxy.\n# TYPE keepmon_backend_active_connections gauge\n");
            for (vs, b) in &stats {
                text.push_str(&format!(
                    "keepmon_backend_active_connections{{virtual=\"{vs}\",real=\"{}\"}} {}\n",
                    b.addr, b.active
                ));
            }
            text.push_str("# HELP keepmon_backend_connections_total Connections established through the proxy.\n# TYPE keepmon_backend_connections_total counter\n");
            for (vs, b) in &stats {
                text.push_str(&format!(
                    "keepmon_backend_connections_total{{virtual=\"{vs}\",real=\"{}\"}} {}\n",
                    b.addr, b.total
                ));
            }
            text.push_str("# HELP keepmon_backend_failures_total Failed connects to the real server.\n# TYPE keepmon_backend_failures_total counter\n");
            for (vs, b) in &stats {
                text.push_str(&format!(
                    "keepmon_backend_failures_total{{virtual=\"{vs}\",real=\"{}\"}} {}\n",
                    b.addr, b.failures
                ));
            }
            text.push_str("# HELP keepmon_backend_bytes_total Bytes relayed (direction in = client to server).\n# TYPE keepmon_backend_bytes_total counter\n");
            for (vs, b) in &stats {
                text.push_str(&format!("keepmon_backend_bytes_total{{virtual=\"{vs}\",real=\"{}\",direction=\"in\"}} {}\n", b.addr, b.bytes_in));
                text.push_str(&format!("keepmon_backend_bytes_total{{virtual=\"{vs}\",real=\"{}\",direction=\"out\"}} {}\n", b.addr, b.bytes_out));
            }
        }
        tx.send_replace(text);
    }

    fn fire_alerts(&mut self, service: &Service, decisions: Vec<AlertDecision>, now: &Now) {
        if decisions.is_empty() {
            return;
        }
        let key = service_key(&service.group, &service.name);
        if !self.slots.contains_key(&key) {
            return;
        }
        let hosts = self.alert_hosts(service);
        let timeout = self.config.settings.monitor_timeout;
        let mut history = Vec::new();
        for decision in decisions {
            if let Action::Lb(edit) = &decision.alert.action {
                // The supervisor owns the table: mon's lvs.alert / an `lb`
                // action edits it here (-u on an upalert adds, else removes).
                let add = decision.kind == AlertKind::Up;
                let line = self.lb_edit(edit, add, now, &format!("alert {}", decision.alert.name));
                history.push(format!(
                    "{} {} {} {} {} {}",
                    alert::history_type(decision.kind, decision.source),
                    service.group,
                    service.name,
                    now.unix,
                    decision.alert.name,
                    line
                ));
                continue;
            }
            let Some(slot) = self.slots.get(&key) else {
                return;
            };
            let job = AlertJob {
                group: service.group.clone(),
                service: service.name.clone(),
                hosts: hosts.clone(),
                time: now.unix,
                description: service.description.clone(),
                opstatus: slot.state.opstatus,
                env: alert_env(&self.config, service, &slot.state),
                summary: slot.state.last_summary.clone(),
                detail: slot.state.last_detail.clone(),
                lua: crate::lua::LuaSettings::from_settings(&self.config.settings),
                decision,
            };
            if alert::recorded_in_history(&job) {
                history.push(alert::history_line(&job));
            }
            if let Action::Mail(action) = &job.decision.alert.action {
                // Written to the outbox now, delivered by the mail worker.
                let id = self.queue_mail(&job, action, service, now);
                tracing::info!(
                    group = %job.group,
                    service = %job.service,
                    alert = %job.decision.alert.name,
                    kind = job.decision.kind.alert_type(job.decision.source),
                    outbox_id = %id,
                    "mail alert queued"
                );
                continue;
            }
            tracing::info!(
                group = %job.group,
                service = %job.service,
                alert = %job.decision.alert.name,
                kind = job.decision.kind.alert_type(job.decision.source),
                "calling alert"
            );
            let events = self.events.clone();
            self.tracker.spawn(async move {
                let outcome = alert::fire(&job, timeout).await;
                let _ = events
                    .send(Event::AlertDone {
                        group: job.group.clone(),
                        service: job.service.clone(),
                        alert: job.decision.alert.name.clone(),
                        ok: outcome.ok,
                        message: outcome.message,
                    })
                    .await;
            });
        }
        let limit = self.config.settings.histlength;
        // Alerts are saved at once, so a crash right after cannot make a
        // restart send them again (other state is saved every second).
        self.dirty = true;
        let save_now = !history.is_empty();
        for line in history {
            if let Some(file) = &self.config.settings.historicfile
                && let Err(e) = state::append_line(file, &line)
            {
                tracing::warn!(error = %e, "cannot write the historic file");
            }
            push_bounded(&mut self.persisted.alert_history, line, limit);
        }
        if save_now {
            self.save_if_dirty();
        }
    }

    fn startup_alerts(&mut self) {
        let now = wall_now();
        let services: Vec<Service> = self.config.services().map(|(_, s)| s.clone()).collect();
        for service in services {
            let key = service_key(&service.group, &service.name);
            let gates = self.gates(&service);
            let decisions = match self.slots.get(&key) {
                Some(slot) => slot.state.startup_alerts(&service, &now, &gates),
                None => continue,
            };
            self.fire_alerts(&service, decisions, &now);
        }
    }

    fn save_if_dirty(&mut self) {
        if !self.dirty {
            return;
        }
        let mut snapshot = self.persisted.clone();
        snapshot.services = self
            .slots
            .iter()
            .map(|(k, s)| (k.clone(), s.state.clone()))
            .collect();
        match state::save(&self.config.settings.statedir, &snapshot) {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::warn!(error = %e, statedir = %self.config.settings.statedir.display(), "cannot save state")
            }
        }
    }

    /// Compile the config again and apply it as a diff. Unchanged services
    /// keep state and timers; on any error the old config keeps running.
    fn reload(&mut self) -> Result<String, String> {
        // systemd (issue 20): RELOADING=1, then READY=1 whatever the outcome.
        crate::systemd::notify_reloading();
        let result = self.reload_config();
        crate::systemd::notify_ready(&crate::systemd::status_line(&self.status()));
        result
    }

    fn reload_config(&mut self) -> Result<String, String> {
        let compiled = load(&self.options).map_err(|e| format!("{}{e}", e.diagnostics))?;
        let new = compiled.config;
        let diff = config::diff(Some(&self.config), &new);
        let now = Instant::now();
        let mut slots = std::mem::take(&mut self.slots);
        let mut kept = BTreeMap::new();
        for (_, service) in new.services() {
            let key = service_key(&service.group, &service.name);
            let changed = diff
                .services
                .changed
                .iter()
                .any(|r| service_key(&r.group, &r.service) == key);
            let slot = match slots.remove(&key) {
                Some(mut slot) if changed => {
                    slot.generation += 1;
                    slot.next_due = first_due(service, now, None);
                    slot
                }
                Some(slot) => slot,
                None => Slot {
                    group: service.group.clone(),
                    service: service.name.clone(),
                    state: ServiceState::default(),
                    next_due: first_due(service, now, new.settings.randstart),
                    running: false,
                    generation: 0,
                    run_hosts: Vec::new(),
                    config_error: false,
                    pid: Arc::default(),
                },
            };
            kept.insert(key, slot);
        }
        self.slots = kept;
        self.config = new;
        self.table.reconfigure(&self.config);
        self.remove_failing_lvs_members();
        self.reload_vrrp();
        self.configure_trap_timers();
        self.lb_dirty = true;
        self.dirty = true;
        self.reconfigure_mail();
        let summary = diff.to_string();
        tracing::info!(changes = %summary.trim_end().replace('\n', "; "), "config reloaded");
        Ok(summary)
    }

    fn on_request(&mut self, request: Request) -> Response {
        match request {
            Request::Status => Response::Status(self.status()),
            Request::Dump => Response::Dump(Box::new(self.dump())),
            Request::Stop => ok("stopping"),
            Request::Reload => match self.reload() {
                Ok(summary) => ok(format!("reloaded\n{summary}")),
                Err(message) => Response::Error {
                    message: format!("reload refused, the old config keeps running:\n{message}"),
                },
            },
            Request::Pause => {
                self.scheduler_running = false;
                self.stopped_since = unix_now();
                ok("scheduler stopped")
            }
            Request::Resume => {
                self.scheduler_running = true;
                ok("scheduler started")
            }
            Request::Enable { target } => self.set_disabled(target, false),
            Request::Disable { target } => self.set_disabled(target, true),
            Request::Ack {
                group,
                service,
                comment,
            } => self.ack(&group, &service, &comment),
            Request::Test {
                what,
                group,
                service,
            } => self.test(what, &group, &service),
            Request::LbShow => self.lb_show(),
            Request::LbSet {
                virtual_service,
                real_server,
                change,
            } => self.lb_set(&virtual_service, &real_server, change),
            Request::VrrpShow => self.vrrp_show(),
            Request::Mon {
                command,
                user,
                view,
            } => self.mon_command(command, user, view),
            Request::MonTrap { trap, from } => self.mon_trap(trap, from),
        }
    }

    fn find(&self, group: &str, service: &str) -> Result<Service, Response> {
        self.config
            .watches
            .get(group)
            .ok_or_else(|| error(format!("unknown group \"{group}\"")))?
            .services
            .get(service)
            .cloned()
            .ok_or_else(|| error(format!("unknown service \"{group}/{service}\"")))
    }

    fn set_disabled(&mut self, target: Target, disable: bool) -> Response {
        let verb = if disable { "disabled" } else { "enabled" };
        let d = &mut self.persisted.disabled;
        let message = match &target {
            Target::Watch { group } => {
                if !self.config.watches.contains_key(group) {
                    return error(format!("unknown watch \"{group}\""));
                }
                toggle(&mut d.watches, group.clone(), disable);
                format!("watch {group} {verb}")
            }
            Target::Service { group, service } => {
                if let Err(e) = self.find(group, service) {
                    return e;
                }
                let d = &mut self.persisted.disabled;
                toggle(&mut d.services, service_key(group, service), disable);
                format!("service {group}/{service} {verb}")
            }
            Target::Host { hosts } => {
                let known: BTreeSet<&str> = self
                    .config
                    .hostgroups
                    .values()
                    .flat_map(|g| g.hosts.iter().map(|h| h.trim_start_matches('*')))
                    .collect();
                if let Some(unknown) = hosts.iter().find(|h| !known.contains(h.as_str())) {
                    return error(format!("unknown host \"{unknown}\""));
                }
                for h in hosts {
                    toggle(&mut d.hosts, h.clone(), disable);
                }
                format!("host {} {verb}", hosts.join(" "))
            }
        };
        if disable
            && let Target::Service { group, service } = &target
            && let Ok(svc) = self.find(group, service)
        {
            let now = wall_now();
            let decisions = self
                .slots
                .get(&service_key(group, service))
                .map(|s| s.state.disable_alerts(&svc, &now, "keepmon"))
                .unwrap_or_default();
            self.fire_alerts(&svc, decisions, &now);
        }
        self.dirty = true;
        self.save_if_dirty();
        ok(message)
    }

    fn ack(&mut self, group: &str, service: &str, comment: &str) -> Response {
        let svc = match self.find(group, service) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let now = wall_now();
        let gates = self.gates(&svc);
        let user = std::env::var("USER").unwrap_or_else(|_| "keepmon".into());
        let Some(slot) = self.slots.get_mut(&service_key(group, service)) else {
            return error("service has no state");
        };
        match slot
            .state
            .acknowledge(&svc, &now, &gates, &format!("{user}: {comment}"))
        {
            Ok(decisions) => {
                self.fire_alerts(&svc, decisions, &now);
                self.dirty = true;
                ok(format!("{group}/{service} acknowledged"))
            }
            Err(e) => error(e.to_string()),
        }
    }

    fn test(&mut self, what: TestWhat, group: &str, service: &str) -> Response {
        let svc = match self.find(group, service) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let key = service_key(group, service);
        match what {
            TestWhat::Monitor => {
                if let Some(slot) = self.slots.get_mut(&key) {
                    slot.next_due = Some(Instant::now());
                }
                ok(format!("{group}/{service} monitor scheduled now"))
            }
            TestWhat::Alert | TestWhat::Upalert => {
                let now = wall_now();
                let kind = if what == TestWhat::Alert {
                    AlertKind::Failure
                } else {
                    AlertKind::Up
                };
                let decisions: Vec<AlertDecision> = svc
                    .periods
                    .iter()
                    .flat_map(|p| {
                        let lines = if kind == AlertKind::Failure {
                            &p.alerts
                        } else {
                            &p.upalerts
                        };
                        lines.iter().map(move |a| AlertDecision {
                            period: p.key.clone(),
                            kind,
                            source: Source::Monitor,
                            alert: a.clone(),
                            exit: 1,
                            stdin: "test\ntest detail\n".to_string(),
                            counts: false,
                        })
                    })
                    .collect();
                let n = decisions.len();
                self.fire_alerts(&svc, decisions, &now);
                ok(format!("{n} test alert(s) started for {group}/{service}"))
            }
        }
    }

    fn status(&self) -> StatusReport {
        StatusReport {
            pid: std::process::id(),
            config: self.config_name(),
            started: self.started,
            scheduler_running: self.scheduler_running,
            services: self.slots.len(),
            failing: self
                .slots
                .values()
                .filter(|s| s.state.opstatus.is_failure())
                .map(|s| format!("{}/{}", s.group, s.service))
                .collect(),
            alerts_sent: self.slots.values().map(|s| s.state.alert_count).sum(),
        }
    }

    fn dump(&self) -> DumpReport {
        let now = Instant::now();
        let services = self
            .slots
            .iter()
            .filter_map(|(key, slot)| {
                let svc = self.service_config(key)?;
                let hosts = self
                    .config
                    .hostgroups
                    .get(&svc.group)
                    .map(|g| g.hosts.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|h| {
                        let h = h.trim_start_matches('*').to_string();
                        let health = slot.state.hosts.get(&h);
                        HostDump {
                            up: health.is_none_or(|x| x.up),
                            reason: health.and_then(|x| x.reason.clone()),
                            disabled: self.persisted.disabled.hosts.contains(&h),
                            host: h,
                        }
                    })
                    .collect();
                Some(ServiceDump {
                    group: slot.group.clone(),
                    service: slot.service.clone(),
                    opstatus: slot.state.opstatus.name().to_string(),
                    opstatus_code: slot.state.opstatus.code(),
                    disabled: self.persisted.disabled.services.contains(key),
                    watch_disabled: self.persisted.disabled.watches.contains(&slot.group),
                    monitor: svc
                        .monitor
                        .as_ref()
                        .map(describe_monitor)
                        .unwrap_or_default(),
                    hosts,
                    last_check: slot.state.last_check,
                    last_summary: slot.state.last_summary.clone(),
                    last_detail: slot.state.last_detail.clone(),
                    next_run_in: slot
                        .next_due
                        .filter(|_| self.scheduler_running && !slot.running)
                        .map(|d| d.saturating_duration_since(now).as_secs_f64()),
                    running: slot.running,
                    alerts_sent: slot.state.alert_count,
                    failures: slot.state.failure_count,
                    ack: slot.state.ack.as_ref().map(|a| a.comment.clone()),
                })
            })
            .collect();
        DumpReport {
            scheduler_running: self.scheduler_running,
            services,
            disabled_hosts: self.persisted.disabled.hosts.iter().cloned().collect(),
            alert_history: self.persisted.alert_history.iter().cloned().collect(),
            lb_changes: self.lb_log.iter().cloned().collect(),
            mail: Box::new(self.mail_dump()),
            vrrp: self.vrrp_dumps(),
        }
    }
}

/// Per-host results of a run. Built-in monitors report each host; for a
/// mon.d script a failing run's summary names the failing hosts (mon's
/// convention), and a failing run that names none fails them all.
fn host_outcomes(hosts: &[String], output: &RunOutput) -> Vec<HostOutcome> {
    if !output.hosts.is_empty() {
        return output
            .hosts
            .iter()
            .map(|r| HostOutcome {
                host: r.host.clone(),
                ok: matches!(r.status, HostStatus::Ok),
                reason: match &r.status {
                    HostStatus::Ok => None,
                    HostStatus::Fail { reason } => Some(reason.clone()),
                    HostStatus::Timeout => Some("timeout".to_string()),
                },
            })
            .collect();
    }
    let failed = output.exit != 0 || output.timed_out;
    let named: Vec<&str> = output.summary.split_whitespace().collect();
    let any_named = hosts.iter().any(|h| named.contains(&h.as_str()));
    hosts
        .iter()
        .map(|h| {
            let down = failed && (!any_named || named.contains(&h.as_str()));
            HostOutcome {
                host: h.clone(),
                ok: !down,
                reason: down.then(|| output.summary.clone()),
            }
        })
        .collect()
}

fn describe_monitor(m: &Monitor) -> String {
    match m {
        Monitor::Tcp(t) => format!("tcp port {}", t.port),
        Monitor::Http(h) => format!(
            "{} port {} {} {}",
            if h.tls { "https" } else { "http" },
            h.port,
            h.method,
            h.path
        ),
        Monitor::Ping(p) => format!("ping count {}", p.count),
        Monitor::Lua { script, .. } => format!("lua:{script}"),
        Monitor::Exec { name, args, .. } => {
            let mut s = name.clone();
            for a in args {
                s.push(' ');
                s.push_str(a);
            }
            s
        }
    }
}

fn first_due(service: &Service, now: Instant, randstart: Option<Duration>) -> Option<Instant> {
    if service.monitor.is_none() || (service.interval.is_none() && service.schedule.is_none()) {
        return None;
    }
    if let Some(schedule) = &service.schedule {
        return schedule_due(schedule, now);
    }
    Some(scheduler::first_run(now, randstart, fastrand::f64()))
}

fn next_due(
    service: &Service,
    state: &ServiceState,
    due: Instant,
    now: Instant,
) -> Option<Instant> {
    if let Some(schedule) = &service.schedule {
        return schedule_due(schedule, now);
    }
    let interval = if state.opstatus.is_failure() {
        service.failure_interval.or(service.interval)
    } else {
        service.interval
    }?;
    Some(scheduler::next_run(
        due,
        now,
        interval,
        service.randskew,
        fastrand::f64() * 2.0 - 1.0,
    ))
}

fn schedule_due(schedule: &crate::period::Schedule, now: Instant) -> Option<Instant> {
    let local = chrono::Local::now();
    let next = schedule.next_after(&local)?;
    let wait = (next - local).to_std().unwrap_or_default();
    Some(now + wait)
}

/// `MON_*` variables and `VAR=value` lines for a monitor run.
fn monitor_env(config: &Config, service: &Service, state: &ServiceState) -> Vec<(String, String)> {
    let mut env = common_env(config, service, state);
    env.push(("MON_LAST_OUTPUT".into(), state.last_output.clone()));
    env
}

/// `MON_*` variables for an alert (the alert module adds the per-alert ones).
fn alert_env(config: &Config, service: &Service, state: &ServiceState) -> Vec<(String, String)> {
    let mut env = common_env(config, service, state);
    env.push(("MON_LAST_OUTPUT".into(), state.last_output.clone()));
    if let Some(ack) = &state.ack {
        env.push(("MON_ACK".into(), ack.comment.clone()));
    }
    env
}

fn common_env(config: &Config, service: &Service, state: &ServiceState) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("MON_GROUP".into(), service.group.clone()),
        ("MON_SERVICE".into(), service.name.clone()),
        ("MON_LAST_SUMMARY".into(), state.last_summary.clone()),
        (
            "MON_STATEDIR".into(),
            config.settings.statedir.display().to_string(),
        ),
        (
            "MON_LOGDIR".into(),
            config.settings.logdir.display().to_string(),
        ),
        (
            "MON_CFBASEDIR".into(),
            config.settings.cfbasedir.display().to_string(),
        ),
    ];
    for (name, value) in [
        ("MON_LAST_FAILURE", state.last_failure),
        ("MON_FIRST_FAILURE", state.first_failure),
        ("MON_LAST_SUCCESS", state.last_success),
    ] {
        if let Some(v) = value {
            env.push((name.into(), v.to_string()));
        }
    }
    if let Some(d) = &service.description {
        env.push(("MON_DESCRIPTION".into(), d.clone()));
    }
    env.extend(service.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

fn toggle(set: &mut BTreeSet<String>, item: String, insert: bool) {
    if insert {
        set.insert(item);
    } else {
        set.remove(&item);
    }
}

fn push_bounded(list: &mut VecDeque<String>, line: String, limit: usize) {
    list.push_back(line);
    while list.len() > limit.max(1) {
        list.pop_front();
    }
}

fn ok(message: impl Into<String>) -> Response {
    Response::Ok {
        message: message.into(),
    }
}

fn error(message: impl Into<String>) -> Response {
    Response::Error {
        message: message.into(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn wall_now() -> Now {
    Now {
        unix: unix_now(),
        local: chrono::Local::now().naive_local(),
    }
}
