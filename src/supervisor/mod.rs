//! The daemon's event loop: one task that owns a few parts (services, load balancing, mail, VRRP, the mon listener), routes events and requests to them, and applies configs to all of them through one path — startup is `apply(diff(∅, config))`, reload is `apply(diff(old, new))`.
//!
//! The parts and their files: `services.rs` (slots, mon state, disabled,
//! histories, trap timers), `lb.rs` (table, data planes), `mail.rs`
//! (outbox handle), `vrrp.rs` (instance tasks, tracking), `mon.rs` (the mon
//! listener's sockets). Cross-part work has one file each: `results.rs`
//! (starting runs and the one function that applies a result), `alerts.rs`
//! (firing alert decisions), `ops.rs` (the operations vocabulary both
//! front doors call), `cli.rs` and `monproto.rs` (the two front doors:
//! parse, call, render).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::model::{Config, Format};
use crate::config::{self, diff::ConfigDiff};
use crate::control::proto::Request;
use crate::control::unix::{self as control, ControlCall};
use crate::monitor::RunOutput;
use crate::monproto::server::MonCall;
use crate::scheduler::Clock;
use crate::service::Now;
use crate::state::{self, Persisted};
use crate::vrrp::instance::Transition;
use crate::web::server::WebCall;

mod alertmanager;
mod alerts;
mod announce;
mod bfd;
mod cli;
mod file_init;
mod lb;
mod mail;
mod mon;
mod monproto;
mod ops;
mod results;
mod services;
mod vrrp;
mod web;

use crate::wallclock::unix_now;
use alertmanager::AlertmanagerPart;
use announce::AnnouncePart;
use lb::LoadBalancing;
use mail::MailPart;
use mon::MonListener;
use services::Services;
use vrrp::{TrackInputs, VrrpPart};
use web::WebPart;

/// How the daemon was asked to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// None: the embedded demo config.
    pub config_path: Option<PathBuf>,
    /// Further `-c` files compiled into the same model (`-c keepalived.conf
    /// -c haproxy.cfg`); start and reload read them all.
    pub more_config_paths: Vec<PathBuf>,
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
    match crate::fdlimit::raise_to_hard() {
        Ok(limit) => tracing::info!(
            soft_before = limit.soft_before,
            soft = limit.soft,
            hard = limit.hard,
            "file descriptor limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file descriptor limit"),
    }
    std::fs::create_dir_all(&config.settings.statedir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create statedir {}: {e}",
            config.settings.statedir.display()
        )
    })?;
    let persisted = match state::load(&config.settings.statedir)? {
        state::Loaded::Fresh => Persisted::default(),
        state::Loaded::Restored(p) => *p,
        state::Loaded::Corrupt {
            moved_to,
            error,
            recovered,
            from,
        } => {
            tracing::error!(moved_to = %moved_to.display(), error, recovered_from = %from, "state file unreadable; moved aside, restored what could be recovered");
            *recovered
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
    let (mon_tx, mon_rx) = mpsc::channel::<MonCall>(64);
    let (web_tx, web_rx) = mpsc::channel::<WebCall>(64);
    let (event_tx, event_rx) = mpsc::channel::<Event>(1024);
    let (vrrp_tx, vrrp_rx) = mpsc::unbounded_channel::<Transition>();
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
    let mut supervisor = Supervisor::new(
        options,
        config.clone(),
        persisted,
        Channels {
            events: event_tx,
            mon_calls: mon_tx,
            web_calls: web_tx,
            vrrp: vrrp_tx,
        },
        shutdown.clone(),
    );
    supervisor.metrics = Some(metrics_tx);
    // Startup is a reload from nothing: every part is reconfigured from
    // `diff(∅, config)`.
    supervisor.apply(config);
    supervisor.publish_metrics();
    tokio::spawn(control::serve(listener, call_tx, shutdown.clone()));
    tracing::info!(
        config = %supervisor.config_name(),
        services = supervisor.services.slots.len(),
        socket = %supervisor.config.settings.control_socket.display(),
        "keepmon started"
    );
    supervisor.startup_alerts();
    // The proxies' listeners are bound before systemd hears READY=1.
    supervisor.lb.reconcile(unix_now()).await;
    crate::systemd::notify_ready(&crate::systemd::status_line(&supervisor.status()));
    let result = supervisor
        .event_loop(Inputs {
            calls: call_rx,
            mon_calls: mon_rx,
            web_calls: web_rx,
            events: event_rx,
            vrrp: vrrp_rx,
        })
        .await;
    crate::systemd::notify_stopping();
    supervisor.shut_down().await;
    result
}

fn load(options: &Options) -> Result<config::Compiled, config::CompileError> {
    match &options.config_path {
        Some(path) if !options.more_config_paths.is_empty() => {
            let mut paths = vec![path.clone()];
            paths.extend(options.more_config_paths.iter().cloned());
            config::load_all(&paths, options.format)
        }
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
    /// A file real servers track (`FILE_CHECK`) holds a new number.
    TrackFile {
        path: std::path::PathBuf,
        value: i64,
    },
    /// mon's `loadstate`: the writer read the state file back.
    StateLoaded {
        what: Vec<crate::monproto::StateKind>,
        loaded: std::io::Result<state::Loaded>,
        reply: oneshot::Sender<crate::monproto::Reply>,
    },
}

/// The senders parts hand to the tasks they start.
struct Channels {
    events: mpsc::Sender<Event>,
    mon_calls: mpsc::Sender<MonCall>,
    web_calls: mpsc::Sender<WebCall>,
    vrrp: mpsc::UnboundedSender<Transition>,
}

/// What the event loop waits on besides timers and signals.
struct Inputs {
    calls: mpsc::Receiver<ControlCall>,
    mon_calls: mpsc::Receiver<MonCall>,
    web_calls: mpsc::Receiver<WebCall>,
    events: mpsc::Receiver<Event>,
    vrrp: mpsc::UnboundedReceiver<Transition>,
}

/// The event loop's state: the running config and the parts.
struct Supervisor {
    options: Options,
    config: Config,
    /// A config has been applied (the first apply diffs against nothing).
    applied: bool,
    started: i64,
    services: Services,
    lb: LoadBalancing,
    mail: MailPart,
    alertmanager: AlertmanagerPart,
    vrrp: VrrpPart,
    bfd: bfd::BfdPart,
    mon: MonListener,
    announce: AnnouncePart,
    web: WebPart,
    /// State file, downtime log and historic file writes, off the loop.
    writer: state::Writer,
    events: mpsc::Sender<Event>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    metrics: Option<tokio::sync::watch::Sender<String>>,
}

impl Supervisor {
    /// Parts start empty; `config` is held only until the first
    /// [`Supervisor::apply`], which diffs against nothing.
    fn new(
        options: Options,
        config: Config,
        persisted: Persisted,
        channels: Channels,
        shutdown: CancellationToken,
    ) -> Supervisor {
        let bfd = bfd::BfdPart::new();
        Supervisor {
            options,
            config,
            applied: false,
            started: unix_now(),
            lb: LoadBalancing::new(shutdown.clone(), persisted.lb.clone()),
            services: Services::new(persisted),
            mail: MailPart::new(),
            alertmanager: AlertmanagerPart::new(),
            vrrp: VrrpPart::new(channels.vrrp, bfd.states()),
            bfd,
            mon: MonListener::new(channels.mon_calls, shutdown.clone()),
            announce: AnnouncePart::new(),
            web: WebPart::new(channels.web_calls, shutdown.clone()),
            writer: state::Writer::start(),
            events: channels.events,
            tracker: TaskTracker::new(),
            shutdown,
            metrics: None,
        }
    }

    /// Apply a config: diff it against the running one (against nothing on
    /// the first call) and reconfigure every part from that diff. Returns
    /// the diff. The one path for start and reload.
    fn apply(&mut self, new: Config) -> ConfigDiff {
        let diff = config::diff(self.applied.then_some(&self.config), &new);
        // On the writer's thread, off the loop. The trackers re-read their
        // files every 100 ms and an instance waits for adverts for several
        // seconds before it may become master, so they see the value before
        // it can matter (keepalived writes it while it reads its config).
        if !new.file_inits.is_empty() {
            let (inits, reload) = (new.file_inits.clone(), self.applied);
            self.writer
                .ordered()
                .run(move || file_init::init_files(&inits, reload));
        }
        self.config = new;
        self.applied = true;
        let config = &self.config;
        self.services.reconfigure(config, &diff, clock());
        let services = &self.services;
        self.lb
            .reconfigure(config, &diff, &|r| services.is_failing(r));
        self.lb.read_tracked_files(&self.events, &self.tracker);
        let disk = self.writer.ordered();
        self.mail
            .reconfigure(config, &diff, disk.clone(), &self.tracker, &self.shutdown);
        self.alertmanager
            .reconfigure(config, &diff, disk, &self.tracker, &self.shutdown);
        self.bfd.reconfigure(config);
        self.lb.set_bfd_health(&self.bfd.current(), unix_now());
        self.vrrp.reconfigure(config, &diff);
        self.mon.reconfigure(config, &diff);
        self.announce.reconfigure(config, &diff);
        self.web.reconfigure(config, &diff);
        self.track_vrrp();
        self.evaluate_announcements();
        diff
    }

    /// Compile the config again and apply it as a diff. Unchanged services
    /// keep state and timers; on any error the old config keeps running.
    fn reload(&mut self) -> Result<String, String> {
        // systemd hears RELOADING=1, then READY=1 whatever the outcome.
        crate::systemd::notify_reloading();
        let result = self.reload_config();
        crate::systemd::notify_ready(&crate::systemd::status_line(&self.status()));
        result
    }

    fn reload_config(&mut self) -> Result<String, String> {
        let compiled = load(&self.options).map_err(|e| format!("{}{e}", e.diagnostics))?;
        let diff = self.apply(compiled.config);
        let summary = diff.to_string();
        tracing::info!(changes = %summary.trim_end().replace('\n', "; "), "config reloaded");
        Ok(summary)
    }

    fn config_name(&self) -> String {
        match &self.options.config_path {
            Some(p) if !self.options.more_config_paths.is_empty() => std::iter::once(p)
                .chain(&self.options.more_config_paths)
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
            Some(p) => p.display().to_string(),
            None => "built-in demo config".to_string(),
        }
    }

    async fn event_loop(&mut self, mut inputs: Inputs) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut save_tick = tokio::time::interval(Duration::from_secs(1));
        save_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // WATCHDOG=1 comes from this loop, so a stuck loop (not just a live
        // process) gets the daemon restarted.
        let mut watchdog = crate::systemd::Watchdog::from_env();
        let mut bfd_changes = self.bfd.states();
        loop {
            let next = self
                .services
                .next_wakeup()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep_until(next) => self.run_due(),
                Some(event) = inputs.events.recv() => self.on_event(event),
                Some(transition) = inputs.vrrp.recv() => self.on_vrrp_transition(transition),
                Some((request, reply)) = inputs.calls.recv() => {
                    let stop = request == Request::Stop;
                    self.on_request(request, reply);
                    if stop {
                        tracing::info!("stop requested");
                        return Ok(());
                    }
                }
                Some(call) = inputs.mon_calls.recv() => {
                    if self.on_mon_call(call) {
                        tracing::info!("stop requested by a mon client (term)");
                        return Ok(());
                    }
                }
                Some(call) = inputs.web_calls.recv() => self.on_web_call(call),
                Ok(()) = bfd_changes.changed() => {
                    let states = bfd_changes.borrow_and_update().clone();
                    self.lb.set_bfd_health(&states, unix_now());
                }
                _ = sigterm.recv() => { tracing::info!("SIGTERM"); return Ok(()); }
                _ = sigint.recv() => { tracing::info!("SIGINT"); return Ok(()); }
                _ = sighup.recv() => {
                    if let Err(message) = self.reload() {
                        tracing::error!("reload refused, the old config keeps running:\n{message}");
                    }
                }
                _ = save_tick.tick() => {
                    if self.writer.take_failure() {
                        self.services.touch();
                    }
                    if self.services.take_dirty() {
                        self.save_state();
                    }
                    self.publish_metrics();
                    self.web_observe();
                    crate::systemd::notify_status(&crate::systemd::status_line(&self.status()));
                }
                _ = watchdog.due() => watchdog.ping(&crate::systemd::status_line(&self.status())),
            }
            if self.lb.is_dirty() {
                self.lb.reconcile(unix_now()).await;
            }
            self.track_vrrp();
            self.evaluate_announcements();
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::MonitorDone {
                key,
                generation,
                output,
            } => {
                let (up, duration) = (output.success(), output.duration);
                self.on_monitor_done(&key, generation, output);
                if let Some(slot) = self.services.slots.get(&key) {
                    let key = format!("{}/{}", slot.group, slot.service);
                    self.web.record(&key, web::sample(unix_now(), up, duration));
                    self.web.count_failed_checks(&key, &slot.state.hosts);
                }
            }
            Event::TrackFile { path, value } => self.lb.set_file_value(&path, value, unix_now()),
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
            Event::StateLoaded {
                what,
                loaded,
                reply,
            } => {
                let answer = self.mon_loadstate(&what, loaded);
                self.reply_when_saved(reply, answer);
            }
        }
    }

    /// Recompute VRRP tracking from service state and quorum.
    fn track_vrrp(&mut self) {
        let services = &self.services;
        let table = &self.lb.table;
        self.vrrp.track(&TrackInputs {
            service_failing: &|r| services.is_failing(r),
            quorum_up: &|vs| table.quorum_up(vs),
        });
    }

    /// Route announcements follow quorum, services and VRRP (level-triggered);
    /// each flip goes to the history.
    fn evaluate_announcements(&mut self) {
        let facts = StateFacts {
            services: &self.services,
            table: &self.lb.table,
            vrrp: self.vrrp.dumps(),
        };
        let lines = self.announce.evaluate(&facts, unix_now());
        if !lines.is_empty() {
            let limit = self.config.settings.histlength;
            for line in lines {
                services::push_bounded(&mut self.services.alert_history, line, limit);
            }
            self.services.touch();
        }
    }

    /// Hand the state to the writer task (saved off the event loop).
    fn save_state(&mut self) {
        self.services.take_dirty();
        self.writer
            .save(&self.config.settings.statedir, self.snapshot());
    }

    /// Send `answer` once every change made so far is on disk (at once
    /// when nothing changed): an operator who was told "done" finds the
    /// change in the state files, and after a crash.
    fn reply_when_saved<T: Send + 'static>(&mut self, reply: oneshot::Sender<T>, answer: T) {
        if !self.services.is_dirty() {
            let _ = reply.send(answer);
            return;
        }
        let saved = self.save_state_confirmed();
        tokio::spawn(async move {
            let _ = saved.await;
            let _ = reply.send(answer);
        });
    }

    /// Save and get told when the state is on disk.
    fn save_state_confirmed(&mut self) -> oneshot::Receiver<std::io::Result<()>> {
        self.services.take_dirty();
        self.writer
            .save_and_confirm(&self.config.settings.statedir, self.snapshot())
    }

    /// Everything persisted: the services part's state and the load
    /// balancer's run-time settings.
    fn snapshot(&self) -> Persisted {
        Persisted {
            lb: self.lb.table.run_time_settings(),
            ..self.services.snapshot()
        }
    }

    fn publish_metrics(&self) {
        let Some(tx) = &self.metrics else {
            return;
        };
        let backends = self.lb.stats();
        let announcements = self.announce.dumps();
        let lua = crate::lua::stats();
        let lb = self.lb.report();
        let vrrp = self.vrrp.dumps();
        let mail = self.mail.dump();
        let alertmanagers = self.alertmanager.dump();
        let text = crate::metrics::render_page(
            self.services
                .slots
                .values()
                .map(|s| crate::metrics::ServiceMetrics {
                    group: &s.group,
                    service: &s.service,
                    opstatus: s.state.opstatus.code(),
                    up: s.state.opstatus.is_success(),
                    failures: s.state.failure_count,
                    alerts: s.state.alert_count,
                }),
            &crate::metrics::DaemonFigures {
                scheduler_running: self.services.scheduler_running,
                lags: &self.services.lags,
                checks: self.services.checks,
                backends: &backends,
                announcements: &announcements,
                lua: &lua,
                mon_clients: crate::monproto::server::client_stats(),
                lb: &lb,
                vrrp: &vrrp,
                mail: &mail,
                alertmanagers: &alertmanagers,
                check_durations: &self.web.durations,
                web_requests: self.web.counters.requests(),
                web_connections: self.web.counters.connections(),
            },
        );
        tx.send_replace(text);
    }

    /// VRRP sends priority 0 first; then in-flight work finishes within
    /// the grace period; the data planes stop; the state is saved.
    async fn shut_down(mut self) {
        // Routers stop sending traffic here before anything goes down.
        self.announce.withdraw_all().await;
        self.vrrp.stop().await;
        self.bfd.stop();
        self.vrrp_stop_notifies();
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
        self.lb.stop().await;
        self.save_state();
        let control_socket = self.config.settings.control_socket.clone();
        self.writer.close().await;
        std::fs::remove_file(&control_socket).ok();
        tracing::info!("keepmon stopped");
    }
}

/// What announcement conditions read: quorum, service state, VRRP state.
struct StateFacts<'a> {
    services: &'a Services,
    table: &'a crate::lb::table::Table,
    vrrp: Vec<crate::control::proto::VrrpDump>,
}

impl crate::config::when::Facts for StateFacts<'_> {
    fn quorum(&self, virtual_server: &str) -> Option<bool> {
        self.table.quorum_up(virtual_server)
    }

    fn service_ok(&self, group: &str, service: &str) -> Option<bool> {
        self.services
            .slots
            .get(&crate::state::service_key(group, service))
            .map(|s| !s.state.opstatus.is_failure())
    }

    fn vrrp_state(&self, instance: &str) -> Option<crate::config::when::VrrpState> {
        let dump = self.vrrp.iter().find(|d| d.name == instance)?;
        crate::config::when::VrrpState::parse(&dump.state)
    }
}

/// The clock readings the scheduler's pure functions take.
fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        local: chrono::Local::now(),
        unit_random: fastrand::f64(),
    }
}

fn wall_now() -> Now {
    Now {
        unix: unix_now(),
        local: chrono::Local::now().naive_local(),
    }
}

#[cfg(test)]
mod tests;
