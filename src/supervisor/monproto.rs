//! The supervisor's side of mon's client protocol: answers the commands that read or change state (list, enable/disable, ack, reset, test, set/get, ...) in mon's reply formats.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Supervisor, describe_monitor, first_due, load, unix_now, wall_now};
use crate::config::model::Config;
use crate::control::proto::{Response, Target};
use crate::control::unix::ControlCall;
use crate::monproto::server::{self, ServerSettings};
use crate::monproto::trap::Trap;
use crate::monproto::{
    self, Command, List, OpstatusRecord, Reply, StateKind, Test, TestAlert, esc_str,
};
use crate::service::{AlertDecision, AlertKind, OpStatus, Outcome, ServiceState, Source};
use crate::state::{self, service_key};

/// Bind mon's client port and serve it. A port that cannot be bound (in
/// use, no permission) is logged and the daemon runs without it: the
/// control socket and monitoring keep working.
pub(super) async fn start_listener(
    config: &Config,
    calls: mpsc::Sender<ControlCall>,
    shutdown: CancellationToken,
) {
    let settings = match ServerSettings::from_settings(&config.settings) {
        None => return,
        Some(Err(e)) => {
            tracing::error!("mon protocol listener not started: {e}");
            return;
        }
        Some(Ok(s)) => s,
    };
    let auth: server::SharedAuth = Arc::new(ArcSwap::from_pointee(server::load_auth(&settings)));
    if let Some(addr) = config.settings.trap_listener {
        match tokio::net::UdpSocket::bind(addr).await {
            Ok(socket) => {
                tracing::info!(%addr, "mon traps listening");
                tokio::spawn(server::serve_traps(
                    socket,
                    auth.clone(),
                    calls.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen for mon traps; running without them")
            }
        }
    }
    match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(listener) => {
            tracing::info!(addr = %settings.addr, "mon protocol listening");
            tokio::spawn(server::serve(listener, settings, auth, calls, shutdown));
        }
        Err(e) => tracing::error!(
            addr = %settings.addr,
            error = %e,
            "cannot listen for mon clients (moncmd, monshow); running without the mon port"
        ),
    }
}

impl Supervisor {
    /// mon's `list pids`: `server PID`, then `group service PID` for every
    /// mon.d script running now (in-process monitors have no process).
    fn mon_pids(&self) -> Vec<String> {
        let mut lines = vec![format!("server {}", std::process::id())];
        for slot in self.slots.values() {
            let pid = slot.pid.load(std::sync::atomic::Ordering::Relaxed);
            if slot.running && pid != 0 {
                lines.push(format!(
                    "{} {} {pid}",
                    esc_str(&slot.group, false),
                    esc_str(&slot.service, false)
                ));
            }
        }
        lines
    }

    pub(super) fn mon_command(
        &mut self,
        command: Command,
        user: Option<String>,
        view: Option<String>,
    ) -> Response {
        Response::Mon(self.mon_reply(command, user.as_deref(), view.as_deref()))
    }

    fn mon_reply(&mut self, command: Command, user: Option<&str>, view: Option<&str>) -> Reply {
        match command {
            Command::List { what } => self.mon_list(what, view),
            Command::Enable { target } => self.mon_disable(target, false),
            Command::Disable { target } => self.mon_disable(target, true),
            Command::Ack {
                group,
                service,
                comment,
            } => self.mon_ack(&group, &service, user.unwrap_or(""), &comment),
            Command::Reset { stopped, keepstate } => self.mon_reset(stopped, keepstate),
            Command::Stop => {
                self.scheduler_running = false;
                self.stopped_since = unix_now();
                Reply::ok("stop completed")
            }
            Command::Start => {
                self.scheduler_running = true;
                Reply::ok("start completed")
            }
            Command::SaveState { .. } => {
                // keepmon saves everything it knows at once; `what` only narrows mon's files.
                self.dirty = true;
                self.save_if_dirty();
                if self.dirty {
                    Reply::fail("savestate error, cannot write the state file (see the log)")
                } else {
                    Reply::ok("savestate completed")
                }
            }
            Command::LoadState { what } => self.mon_loadstate(&what),
            Command::Test { test } => self.mon_test(test),
            Command::ClearTimers { group, service } => self.mon_clear_timers(&group, &service),
            Command::SetMaxkeep { keep } => {
                self.config.settings.histlength = keep;
                Reply::ok("set completed")
            }
            Command::GetMaxkeep => Reply::ok("get completed").with_lines(vec![format!(
                "maxkeep = {}",
                self.config.settings.histlength
            )]),
            Command::Set {
                group,
                service,
                var,
                value,
            } => self.mon_set(&group, &service, &var, &value),
            Command::Get {
                group,
                service,
                var,
            } => self.mon_get(&group, &service, &var),
            Command::Servertime => {
                let local = chrono::Local::now().format("%a %b %e %H:%M:%S %Y");
                Reply::ok("servertime completed")
                    .with_lines(vec![format!("{} {local}", unix_now())])
            }
            Command::SetView { view: Some(name) } => {
                if self.config.views.contains_key(&name) {
                    Reply::ok("setview completed")
                        .with_lines(vec![format!("selecting view {name}")])
                } else {
                    Reply::status(504, format!("unknown view {name}"))
                }
            }
            Command::Dump => {
                let text = crate::render::dump_table(&self.dump());
                Reply::ok("dump completed").with_lines(text.lines().map(str::to_string).collect())
            }
            // Answered by the connection itself.
            Command::Quit
            | Command::Protid { .. }
            | Command::Version
            | Command::Login { .. }
            | Command::CheckAuth { .. }
            | Command::SetView { view: None }
            | Command::GetView
            | Command::ReloadAuth
            | Command::Term => Reply::fail("command could not be executed"),
        }
    }

    /// Services in (group, service) order, filtered by the client's view.
    fn mon_services(&self, view: Option<&str>) -> Vec<(String, String)> {
        let members = view.and_then(|v| self.config.views.get(v));
        self.slots
            .values()
            .filter(|s| {
                members.is_none_or(|m| {
                    m.iter()
                        .any(|x| *x == s.group || *x == format!("{}:{}", s.group, s.service))
                })
            })
            .map(|s| (s.group.clone(), s.service.clone()))
            .collect()
    }

    fn mon_list(&self, what: List, view: Option<&str>) -> Reply {
        let now = unix_now();
        let records = |filter: &dyn Fn(u8) -> bool| -> Vec<String> {
            self.mon_services(view)
                .iter()
                .filter_map(|(g, s)| self.opstatus_record(g, s))
                .filter(|r| filter(r.opstatus))
                .map(|r| monproto::opstatus_line(&r, now))
                .collect()
        };
        match what {
            List::State => {
                Reply::ok("list state completed").with_lines(vec![if self.scheduler_running {
                    "scheduler running".to_string()
                } else {
                    format!("scheduler stopped since {}", self.stopped_since)
                }])
            }
            List::Watch => Reply::ok("list watch completed").with_lines(
                self.mon_services(view)
                    .into_iter()
                    .map(|(g, s)| format!("{g} {s}"))
                    .collect(),
            ),
            List::Group { group } => match self.config.hostgroups.get(&group) {
                None => Reply::fail("list group error, undefined group"),
                Some(hg) => {
                    let hosts: Vec<String> = hg
                        .hosts
                        .iter()
                        .map(|h| {
                            let bare = h.trim_start_matches('*');
                            if h.starts_with('*') || self.persisted.disabled.hosts.contains(bare) {
                                format!("*{bare}")
                            } else {
                                bare.to_string()
                            }
                        })
                        .collect();
                    Reply::ok("list group completed")
                        .with_lines(vec![format!("hostgroup {group} {}", hosts.join(" "))])
                }
            },
            List::Opstatus { services } if services.is_empty() => {
                Reply::ok("list opstatus completed").with_lines(records(&|_| true))
            }
            List::Opstatus { services } => {
                let mut lines = Vec::new();
                for (group, service) in services {
                    let names: Vec<String> = match &service {
                        Some(s) => vec![s.clone()],
                        None => self
                            .config
                            .watches
                            .get(&group)
                            .map(|w| w.services.keys().cloned().collect())
                            .unwrap_or_default(),
                    };
                    if names.is_empty() {
                        return Reply::fail(format!("{group}, does not exist"));
                    }
                    for name in names {
                        match self.opstatus_record(&group, &name) {
                            Some(r) => lines.push(monproto::opstatus_line(&r, now)),
                            None => return Reply::fail(format!("{group},{name} does not exist")),
                        }
                    }
                }
                Reply::ok("list opstatus completed").with_lines(lines)
            }
            List::Failures => {
                Reply::ok("list failures completed").with_lines(records(&monproto::is_failure_code))
            }
            List::Successes => Reply::ok("list successes completed")
                .with_lines(records(&monproto::is_success_code)),
            // mon ends this one with "list successes completed"; clients only
            // look for the code, so keepmon names it right.
            List::Warnings => {
                Reply::ok("list warnings completed").with_lines(records(&monproto::is_warning_code))
            }
            List::Disabled => {
                Reply::ok("list disabled completed").with_lines(self.disabled_lines(view))
            }
            List::Alerthist => Reply::ok("list alerthist completed").with_lines(
                self.persisted
                    .alert_history
                    .iter()
                    .map(|l| esc_str(l, false))
                    .collect(),
            ),
            List::Failurehist => Reply::ok("list failurehist completed").with_lines(
                self.persisted
                    .failure_history
                    .iter()
                    .map(|l| esc_str(l, false))
                    .collect(),
            ),
            List::Pids => Reply::ok("list pids completed").with_lines(self.mon_pids()),
            List::Descriptions => Reply::ok("list descriptions completed").with_lines(
                self.mon_services(view)
                    .iter()
                    .filter_map(|(g, s)| self.config.watches.get(g)?.services.get(s))
                    .map(|svc| {
                        format!(
                            "{} {} {}",
                            svc.group,
                            svc.name,
                            esc_str(svc.description.as_deref().unwrap_or(""), true)
                        )
                    })
                    .collect(),
            ),
            List::Deps => {
                let mut lines = Vec::new();
                for (g, s) in self.mon_services(view) {
                    let Some(svc) = self.config.watches.get(&g).and_then(|w| w.services.get(&s))
                    else {
                        continue;
                    };
                    match &svc.depend {
                        Some(expr) => {
                            lines.push(format!(
                                "exp {g} {s} '{}'",
                                esc_str(&expr.to_string(), true)
                            ));
                            let refs: Vec<String> =
                                expr.refs().iter().map(|r| r.to_string()).collect();
                            lines.push(format!("cmp {g} {s} {}", refs.join(" ")));
                        }
                        None => {
                            lines.push(format!("exp {g} {s} 'NONE'"));
                            lines.push(format!("cmp {g} {s} NONE"));
                        }
                    }
                }
                Reply::ok("list deps completed").with_lines(lines)
            }
            List::Dtlog => {
                if !self.config.settings.dtlogging {
                    return Reply::fail("list dtlog error, dtlogging is not turned on");
                }
                match std::fs::read_to_string(&self.config.settings.dtlogfile) {
                    Ok(text) => Reply::ok("list dtlog completed").with_lines(
                        text.lines()
                            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                            .map(str::to_string)
                            .collect(),
                    ),
                    // No downtime yet: an empty log, not an error.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Reply::ok("list dtlog completed")
                    }
                    Err(_) => Reply::fail("list dtlog error, cannot open dtlog"),
                }
            }
            List::Aliases { names } => {
                let names: Vec<String> = if names.is_empty() {
                    self.config.aliases.keys().cloned().collect()
                } else {
                    names
                };
                let mut lines = Vec::new();
                for name in names {
                    lines.push(format!("alias {name}"));
                    lines.extend(self.config.aliases.get(&name).cloned().unwrap_or_default());
                    lines.push(String::new());
                }
                Reply::ok("list aliases completed").with_lines(lines)
            }
            List::Aliasgroups => {
                let names: Vec<String> = self.config.aliases.keys().cloned().collect();
                let lines = if names.is_empty() {
                    Vec::new()
                } else {
                    vec![names.join(" ")]
                };
                Reply::ok("list aliasgroups completed").with_lines(lines)
            }
            // mon ends this one with "list group completed".
            List::Views => Reply::ok("list views completed").with_lines(vec![format!(
                "views {}",
                self.config
                    .views
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            )]),
        }
    }

    fn disabled_lines(&self, view: Option<&str>) -> Vec<String> {
        let members = view.and_then(|v| self.config.views.get(v));
        let group_visible = |g: &str| {
            members.is_none_or(|m| m.iter().any(|x| x == g || x.starts_with(&format!("{g}:"))))
        };
        let mut lines = Vec::new();
        for (name, hg) in &self.config.hostgroups {
            if !group_visible(name) {
                continue;
            }
            let disabled: Vec<&str> = hg
                .hosts
                .iter()
                .filter(|h| {
                    h.starts_with('*')
                        || self
                            .persisted
                            .disabled
                            .hosts
                            .contains(h.trim_start_matches('*'))
                })
                .map(|h| h.trim_start_matches('*'))
                .collect();
            if !disabled.is_empty() {
                lines.push(format!("group {name}: {}", disabled.join(" ")));
            }
        }
        for (g, s) in self.mon_services(view) {
            if self.persisted.disabled.watches.contains(&g)
                && !lines.contains(&format!("watch {g}"))
            {
                lines.push(format!("watch {g}"));
            }
            if self
                .persisted
                .disabled
                .services
                .contains(&service_key(&g, &s))
            {
                lines.push(format!("watch {g} service {s}"));
            }
        }
        lines
    }

    /// One service's opstatus record, None when it does not exist.
    fn opstatus_record(&self, group: &str, service: &str) -> Option<OpstatusRecord> {
        let key = service_key(group, service);
        let slot = self.slots.get(&key)?;
        let svc = self.service_config(&key)?;
        let st = &slot.state;
        let now = Instant::now();
        let expr_text = |e: &Option<crate::config::depend::Expr>| {
            e.as_ref().map(|e| e.to_string()).unwrap_or_default()
        };
        let last_alert = st
            .periods
            .values()
            .filter_map(|p| p.last_alert)
            .chain(st.last_alert)
            .max();
        Some(OpstatusRecord {
            group: group.to_string(),
            service: service.to_string(),
            opstatus: st.opstatus.code(),
            last_opstatus: Some(st.last_opstatus.code()),
            exitval: Some(st.exitval),
            timer: slot
                .next_due
                .filter(|_| self.scheduler_running && !slot.running)
                .map(|d| d.saturating_duration_since(now).as_secs() as i64)
                .or(Some(0)),
            last_success: st.last_success,
            last_trap: self.last_traps.get(&key).map(|t| t.0),
            last_traphost: self.last_traps.get(&key).map(|t| t.1.clone()),
            last_check: st.last_check,
            ack: st.ack.as_ref().map(|a| a.time).unwrap_or(0),
            ack_comment: st
                .ack
                .as_ref()
                .map(|a| a.comment.clone())
                .unwrap_or_default(),
            alerts_sent: st.periods.values().map(|p| u64::from(p.alert_sent)).sum(),
            depstatus: Some(self.gates(svc).depend_ok),
            depend: expr_text(&svc.depend),
            hostdepend: svc
                .hostdepend
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            monitordepend: expr_text(&svc.monitordepend),
            alertdepend: expr_text(&svc.alertdepend),
            monitor: svc
                .monitor
                .as_ref()
                .map(describe_monitor)
                .unwrap_or_default(),
            last_summary: st.last_summary.clone(),
            last_detail: st.last_detail.clone(),
            last_failure: st.last_failure,
            // keepmon does not keep the last run's duration: 0.
            interval: svc.interval.map(|i| (i.as_secs(), 0, slot.running)),
            exclude_period: svc
                .exclude_period
                .as_ref()
                .map(|p| p.source().to_string())
                .unwrap_or_default(),
            exclude_hosts: svc.exclude_hosts.clone(),
            randskew: svc.randskew.map(|d| d.as_secs()),
            last_alert,
            first_failure: st.first_failure,
        })
    }

    fn mon_disable(&mut self, target: Target, disable: bool) -> Reply {
        let verb = if disable { "disable" } else { "enable" };
        // mon: a host that is the only member of a hostgroup takes that watch with it.
        let singleton_watches: Vec<String> = match &target {
            Target::Host { hosts } => self
                .config
                .hostgroups
                .iter()
                .filter(|(name, hg)| {
                    hg.hosts.len() == 1
                        && hosts
                            .iter()
                            .any(|h| h == hg.hosts[0].trim_start_matches('*'))
                        && self.config.watches.contains_key(*name)
                })
                .map(|(name, _)| name.clone())
                .collect(),
            _ => Vec::new(),
        };
        let response = self.set_disabled(target.clone(), disable);
        if let Response::Error { message } = &response {
            tracing::debug!(message, "mon {verb} refused");
            return match (&target, disable) {
                (Target::Watch { group }, true) => {
                    Reply::fail(format!("disable error, unknown watch \"{group}\""))
                }
                (Target::Watch { .. }, false) => Reply::fail("enable error, unknown watch"),
                (Target::Service { .. }, true) => Reply::fail("disable error, unknown service"),
                (Target::Service { .. }, false) => Reply::fail("enable error, unknown group"),
                (Target::Host { hosts }, _) => {
                    let known = self.known_hosts();
                    let unknown: Vec<&str> = hosts
                        .iter()
                        .map(String::as_str)
                        .filter(|h| !known.contains(h))
                        .collect();
                    Reply::fail(format!(
                        "{verb} host failed, host(s) {} do not exist",
                        unknown.join(" ")
                    ))
                }
            };
        }
        for group in singleton_watches {
            self.set_disabled(Target::Watch { group }, disable);
        }
        match (&target, disable) {
            (Target::Watch { .. }, true) => Reply::ok("disable watch completed"),
            (Target::Watch { .. }, false) => Reply::ok("enable watch completed"),
            (Target::Service { .. }, true) => Reply::ok("disable service completed"),
            (Target::Host { .. }, true) => Reply::ok("disable host completed"),
            (_, false) => Reply::ok("enable completed"),
        }
    }

    /// Apply a trap like a monitor result (`-T` on its alerts). A trap for
    /// an unknown group goes to the `default` watch, and an unknown service
    /// there to the `default` service, when they exist (mon's catch-all).
    pub(super) fn mon_trap(&mut self, trap: Trap, from: String) -> Response {
        let mut group = trap.group.clone();
        let mut service = trap.service.clone();
        if !self.config.watches.contains_key(&group) && self.config.watches.contains_key("default")
        {
            group = "default".to_string();
        }
        if group == "default"
            && let Some(w) = self.config.watches.get("default")
            && !w.services.contains_key(&service)
            && w.services.contains_key("default")
        {
            service = "default".to_string();
        }
        let Ok(svc) = self.find(&group, &service) else {
            tracing::warn!(group = %trap.group, service = %trap.service, from, "trap for an undefined service dropped");
            return Response::Error {
                message: format!("trap for undefined {}/{}", trap.group, trap.service),
            };
        };
        let now = wall_now();
        let key = service_key(&group, &service);
        let outcome = Outcome {
            exit: trap.exit,
            summary: trap.summary.clone(),
            detail: trap.detail.clone(),
            source: Source::Trap,
            timed_out: false,
        };
        tracing::info!(group, service, from, exit = trap.exit, "trap received");
        if !self.record_external(&svc, outcome, &now, "trap", false) {
            return Response::Error {
                message: "service has no state".into(),
            };
        }
        self.last_traps.insert(key.clone(), (now.unix, from));
        self.trap_timers.on_trap(&key, tokio::time::Instant::now());
        Response::Ok {
            message: "trap applied".into(),
        }
    }

    fn known_hosts(&self) -> Vec<&str> {
        self.config
            .hostgroups
            .values()
            .flat_map(|g| g.hosts.iter().map(|h| h.trim_start_matches('*')))
            .collect()
    }

    fn mon_ack(&mut self, group: &str, service: &str, user: &str, comment: &str) -> Reply {
        if !self.config.watches.contains_key(group) {
            return Reply::fail("unknown group");
        }
        let Ok(svc) = self.find(group, service) else {
            return Reply::fail("unknown service");
        };
        let now = wall_now();
        let gates = self.gates(&svc);
        let Some(slot) = self.slots.get_mut(&service_key(group, service)) else {
            return Reply::fail("unknown service");
        };
        match slot
            .state
            .acknowledge(&svc, &now, &gates, &format!("{user}: {comment}"))
        {
            Ok(decisions) => {
                self.fire_alerts(&svc, decisions, &now);
                self.dirty = true;
                Reply::ok("ack completed")
            }
            Err(_) => Reply::fail("service is in a non-failure state"),
        }
    }

    fn mon_reset(&mut self, stopped: bool, keepstate: bool) -> Reply {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string());
        let pid = std::process::id();
        if let Err(message) = self.reload() {
            tracing::error!("reset refused, the old config keeps running:\n{message}");
            return Reply::fail(format!(
                "reset PID {pid}@{host} failed, error in config file"
            ));
        }
        if !keepstate {
            // mon's reset forgets every service's state and the disabled
            // watches and services (disabled hosts stay disabled).
            for slot in self.slots.values_mut() {
                slot.state = ServiceState::default();
            }
            self.persisted.disabled.watches.clear();
            self.persisted.disabled.services.clear();
            self.dirty = true;
        }
        if stopped {
            self.scheduler_running = false;
            self.stopped_since = unix_now();
        }
        Reply::ok(format!("reset PID {pid}@{host}"))
    }

    fn mon_loadstate(&mut self, what: &[StateKind]) -> Reply {
        let loaded = match state::load(&self.config.settings.statedir) {
            Ok(state::Loaded::Restored(p)) => *p,
            Ok(state::Loaded::Fresh) => return Reply::fail("loadstate error, no saved state"),
            Ok(state::Loaded::Corrupt { moved_to, error }) => {
                return Reply::fail(format!(
                    "loadstate error, state file unreadable ({error}), moved to {}",
                    moved_to.display()
                ));
            }
            Err(e) => return Reply::fail(format!("loadstate error, {e}")),
        };
        let all = what.contains(&StateKind::All);
        if all || what.contains(&StateKind::Disabled) {
            self.persisted.disabled = loaded.disabled;
        }
        if all || what.contains(&StateKind::Opstatus) {
            for (key, state) in loaded.services {
                if let Some(slot) = self.slots.get_mut(&key) {
                    slot.state = state;
                }
            }
        }
        self.dirty = true;
        Reply::ok("loadstate completed")
    }

    fn mon_test(&mut self, test: Test) -> Reply {
        match test {
            Test::Config => match load(&self.options) {
                Ok(_) => Reply::ok("test config completed OK, no errors found"),
                Err(e) => Reply::fail("test config completed, errors found in config file")
                    .with_lines(
                        format!("{}{e}", e.diagnostics)
                            .lines()
                            .map(str::to_string)
                            .collect(),
                    ),
            },
            Test::Monitor { group, service } => {
                match self.slots.get_mut(&service_key(&group, &service)) {
                    // mon prints "not defined" and then 220; keepmon says 520.
                    None => Reply::fail(format!("{group} {service} not defined")),
                    Some(slot) => {
                        slot.next_due = Some(Instant::now());
                        Reply::ok("test monitor completed")
                    }
                }
            }
            Test::Alert {
                kind,
                group,
                service,
                retval,
                period,
            } => {
                let Ok(svc) = self.find(&group, &service) else {
                    return Reply::fail(format!("{group} {service} not defined"));
                };
                let Some(block) = svc.periods.iter().find(|p| p.key == period) else {
                    return Reply::fail("period not defined");
                };
                let (lines, alert_kind) = match kind {
                    TestAlert::Alert => (&block.alerts, AlertKind::Failure),
                    TestAlert::Upalert => (&block.upalerts, AlertKind::Up),
                    TestAlert::Startupalert => (&block.startupalerts, AlertKind::Startup),
                    TestAlert::Ackalert => (&block.ackalerts, AlertKind::Ack),
                    TestAlert::Disablealert => (&block.disablealerts, AlertKind::Disable),
                };
                let decisions: Vec<AlertDecision> = lines
                    .iter()
                    .map(|a| AlertDecision {
                        period: block.key.clone(),
                        kind: alert_kind,
                        source: Source::Monitor,
                        alert: a.clone(),
                        exit: retval,
                        stdin: "test\ntest detail\n".to_string(),
                        counts: false,
                    })
                    .collect();
                let now = wall_now();
                self.fire_alerts(&svc, decisions, &now);
                Reply::ok("test alert completed")
            }
        }
    }

    fn mon_clear_timers(&mut self, group: &str, service: &str) -> Reply {
        let Ok(svc) = self.find(group, service) else {
            return Reply::fail("unknown group");
        };
        let randstart = self.config.settings.randstart;
        let Some(slot) = self.slots.get_mut(&service_key(group, service)) else {
            return Reply::fail("unknown group");
        };
        let st = &mut slot.state;
        st.consec_failures = 0;
        st.last_alert = None;
        for p in st.periods.values_mut() {
            p.last_alert = None;
            p.alert_sent = 0;
            p.first_fail_time = None;
            p.fail_count = 0;
        }
        if !slot.running {
            slot.next_due = first_due(&svc, Instant::now(), randstart);
        }
        self.dirty = true;
        Reply::ok("clear timers completed")
    }

    /// `set`: only the opstatus (by mon's names) can be set; mon's `set`
    /// could overwrite any internal field, which keepmon does not allow.
    fn mon_set(&mut self, group: &str, service: &str, var: &str, value: &str) -> Reply {
        let Some(slot) = self.slots.get_mut(&service_key(group, service)) else {
            return Reply::fail(format!("{group},{service} not defined"));
        };
        if var != "opstatus" {
            return Reply::fail(format!(
                "set error, \"{}\" cannot be set (settable: opstatus, maxkeep)",
                esc_str(var, false)
            ));
        }
        let Some(status) = opstatus_by_name(value.trim()) else {
            return Reply::fail("undefined opstatus");
        };
        slot.state.last_opstatus = slot.state.opstatus;
        slot.state.opstatus = status;
        self.dirty = true;
        Reply::ok("set completed")
    }

    /// `get`: any field of the opstatus record (mon's `_`-prefixed internal
    /// names are accepted too), as `G S var='value'`.
    fn mon_get(&self, group: &str, service: &str, var: &str) -> Reply {
        let Some(record) = self.opstatus_record(group, service) else {
            return Reply::fail(format!("{group},{service} not defined"));
        };
        let line = monproto::opstatus_line(&record, unix_now());
        let wanted = match var.trim_start_matches('_') {
            "op_status" => "opstatus",
            "last_op_status" => "last_opstatus",
            "ack_comment" => "ackcomment",
            other => other,
        };
        let value = line
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == wanted)
            .map(|(_, v)| v.to_string())
            .or_else(|| match wanted {
                "failure_count" => Some(
                    self.slots
                        .get(&service_key(group, service))?
                        .state
                        .failure_count
                        .to_string(),
                ),
                "consec_failures" => Some(
                    self.slots
                        .get(&service_key(group, service))?
                        .state
                        .consec_failures
                        .to_string(),
                ),
                "description" => Some(esc_str(
                    self.find(group, service)
                        .ok()?
                        .description
                        .as_deref()
                        .unwrap_or(""),
                    true,
                )),
                _ => None,
            });
        match value {
            Some(v) => Reply::ok("get completed")
                .with_lines(vec![format!("{group} {service} {var}='{v}'")]),
            None => Reply::fail(format!(
                "get error, unknown variable \"{}\"",
                esc_str(var, false)
            )),
        }
    }
}

fn opstatus_by_name(name: &str) -> Option<OpStatus> {
    let code = monproto::OPSTATUS_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)?;
    [
        OpStatus::Fail,
        OpStatus::Ok,
        OpStatus::ColdStart,
        OpStatus::WarmStart,
        OpStatus::LinkDown,
        OpStatus::Unknown,
        OpStatus::Timeout,
        OpStatus::Untested,
    ]
    .into_iter()
    .find(|s| s.code() == code)
}
