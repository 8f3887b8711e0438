//! The mon protocol's front door: answers the listener's commands in mon's reply formats — reads (list, get, dump) straight from the parts, changes (enable/disable, ack, reset, test, set, ...) through the operations vocabulary; traps go to the one result path.

use tokio::time::Instant;

use super::Supervisor;
use super::cli::describe_monitor;
use super::ops::{OpError, Operation};
use crate::control::proto::Target;
use crate::monproto::server::MonCall;
use crate::monproto::{
    self, Command, List, OpstatusRecord, Reply, StateKind, Test, TestAlert, esc_str,
};
use crate::service::{AlertKind, OpStatus};
use crate::state::{self, service_key};

impl Supervisor {
    /// mon's `list pids`: `server PID`, then `group service PID` for every
    /// mon.d script running now (in-process monitors have no process).
    fn mon_pids(&self) -> Vec<String> {
        let mut lines = vec![format!("server {}", std::process::id())];
        for slot in self.services.slots.values() {
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

    /// Answer one call from the mon listener; true when a client asked
    /// the daemon to stop (`term`).
    pub(super) fn on_mon_call(&mut self, call: MonCall) -> bool {
        match call {
            MonCall::Command {
                command,
                user,
                view,
                reply,
            } => {
                self.mon_command(command, user.as_deref(), view.as_deref(), reply);
                false
            }
            MonCall::Trap { trap, from } => {
                self.on_trap(trap, from);
                false
            }
            MonCall::Terminate => true,
        }
    }

    /// Commands whose answer waits for a file (savestate, loadstate, list
    /// dtlog) answer once the writer is done; the rest at once.
    pub(super) fn mon_command(
        &mut self,
        command: Command,
        user: Option<&str>,
        view: Option<&str>,
        reply: tokio::sync::oneshot::Sender<Reply>,
    ) {
        match command {
            Command::SaveState { .. } => {
                // keepmon saves everything it knows at once; `what` only narrows mon's files.
                let saved = self.save_state_confirmed();
                tokio::spawn(async move {
                    let answer = match saved.await {
                        Ok(Ok(())) => Reply::ok("savestate completed"),
                        _ => Reply::fail(
                            "savestate error, cannot write the state file (see the log)",
                        ),
                    };
                    let _ = reply.send(answer);
                });
            }
            Command::LoadState { what } => {
                let loaded = self.writer.load(&self.config.settings.statedir);
                let events = self.events.clone();
                tokio::spawn(async move {
                    let loaded = loaded.await.unwrap_or_else(|_| {
                        Err(std::io::Error::other("the state writer has stopped"))
                    });
                    let _ = events
                        .send(super::Event::StateLoaded {
                            what,
                            loaded,
                            reply,
                        })
                        .await;
                });
            }
            Command::List { what: List::Dtlog } => {
                if !self.config.settings.dtlogging {
                    let _ = reply.send(Reply::fail("list dtlog error, dtlogging is not turned on"));
                    return;
                }
                let read = self.writer.read(&self.config.settings.dtlogfile);
                tokio::spawn(async move {
                    let answer = match read.await {
                        Ok(Ok(Some(text))) => Reply::ok("list dtlog completed").with_lines(
                            text.lines()
                                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                                .map(str::to_string)
                                .collect(),
                        ),
                        // No downtime yet: an empty log, not an error.
                        Ok(Ok(None)) => Reply::ok("list dtlog completed"),
                        _ => Reply::fail("list dtlog error, cannot open dtlog"),
                    };
                    let _ = reply.send(answer);
                });
            }
            command => {
                let answer = self.mon_reply(command, user, view);
                self.reply_when_saved(reply, answer);
            }
        }
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
                self.execute(Operation::Pause).ok();
                Reply::ok("stop completed")
            }
            Command::Start => {
                self.execute(Operation::Resume).ok();
                Reply::ok("start completed")
            }
            Command::Test { test } => self.mon_test(test),
            Command::ClearTimers { group, service } => {
                match self.execute(Operation::ClearTimers { group, service }) {
                    Ok(_) => Reply::ok("clear timers completed"),
                    Err(_) => Reply::fail("unknown group"),
                }
            }
            Command::SetMaxkeep { keep } => {
                self.execute(Operation::SetHistLength(keep)).ok();
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
                    .with_lines(vec![format!("{} {local}", super::unix_now())])
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
            | Command::Term
            // Answered in `mon_command`.
            | Command::SaveState { .. }
            | Command::LoadState { .. } => Reply::fail("command could not be executed"),
        }
    }

    /// Services in (group, service) order, filtered by the client's view.
    fn mon_services(&self, view: Option<&str>) -> Vec<(String, String)> {
        let members = view.and_then(|v| self.config.views.get(v));
        self.services
            .slots
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
        let now = super::unix_now();
        let records = |filter: &dyn Fn(u8) -> bool| -> Vec<String> {
            self.mon_services(view)
                .iter()
                .filter_map(|(g, s)| self.opstatus_record(g, s))
                .filter(|r| filter(r.opstatus))
                .map(|r| monproto::opstatus_line(&r, now))
                .collect()
        };
        match what {
            List::State => Reply::ok("list state completed").with_lines(vec![if self
                .services
                .scheduler_running
            {
                "scheduler running".to_string()
            } else {
                format!("scheduler stopped since {}", self.services.stopped_since)
            }]),
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
                            if h.starts_with('*') || self.services.disabled.hosts.contains(bare) {
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
                self.services
                    .alert_history
                    .iter()
                    .map(|l| esc_str(l, false))
                    .collect(),
            ),
            List::Failurehist => Reply::ok("list failurehist completed").with_lines(
                self.services
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
            List::Dtlog => Reply::fail("command could not be executed"),
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
                            .services
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
            if self.services.disabled.watches.contains(&g) && !lines.contains(&format!("watch {g}"))
            {
                lines.push(format!("watch {g}"));
            }
            if self
                .services
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
        let slot = self.services.slots.get(&key)?;
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
                .filter(|_| self.services.scheduler_running && !slot.running)
                .map(|d| d.saturating_duration_since(now).as_secs() as i64)
                .or(Some(0)),
            last_success: st.last_success,
            last_trap: self.services.last_traps.get(&key).map(|t| t.0),
            last_traphost: self.services.last_traps.get(&key).map(|t| t.1.clone()),
            last_check: st.last_check,
            ack: st.ack.as_ref().map(|a| a.time).unwrap_or(0),
            ack_comment: st
                .ack
                .as_ref()
                .map(|a| a.comment.clone())
                .unwrap_or_default(),
            alerts_sent: st.periods.values().map(|p| u64::from(p.alert_sent)).sum(),
            depstatus: Some(self.services.gates(svc).depend_ok),
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
        let operation = if disable {
            Operation::Disable(target.clone())
        } else {
            Operation::Enable(target.clone())
        };
        if let Err(e) = self.execute(operation) {
            tracing::debug!(error = %e, "mon {verb} refused");
            return match (&target, disable, e) {
                (_, _, OpError::UnknownHosts(unknown)) => Reply::fail(format!(
                    "{verb} host failed, host(s) {} do not exist",
                    unknown.join(" ")
                )),
                (Target::Watch { group }, true, _) => {
                    Reply::fail(format!("disable error, unknown watch \"{group}\""))
                }
                (Target::Watch { .. }, false, _) => Reply::fail("enable error, unknown watch"),
                (_, true, _) => Reply::fail("disable error, unknown service"),
                (_, false, _) => Reply::fail("enable error, unknown group"),
            };
        }
        match (&target, disable) {
            (Target::Watch { .. }, true) => Reply::ok("disable watch completed"),
            (Target::Watch { .. }, false) => Reply::ok("enable watch completed"),
            (Target::Service { .. }, true) => Reply::ok("disable service completed"),
            (Target::Host { .. }, true) => Reply::ok("disable host completed"),
            (_, false) => Reply::ok("enable completed"),
        }
    }

    fn mon_ack(&mut self, group: &str, service: &str, user: &str, comment: &str) -> Reply {
        let operation = Operation::Ack {
            group: group.to_string(),
            service: service.to_string(),
            user: Some(user.to_string()),
            comment: comment.to_string(),
        };
        match self.execute(operation) {
            Ok(_) => Reply::ok("ack completed"),
            Err(OpError::UnknownGroup(_)) => Reply::fail("unknown group"),
            Err(OpError::NotFailing(_)) => Reply::fail("service is in a non-failure state"),
            Err(_) => Reply::fail("unknown service"),
        }
    }

    fn mon_reset(&mut self, stopped: bool, keepstate: bool) -> Reply {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string());
        let pid = std::process::id();
        match self.execute(Operation::Reset { stopped, keepstate }) {
            Ok(_) => Reply::ok(format!("reset PID {pid}@{host}")),
            Err(e) => {
                tracing::error!("reset refused: {e}");
                Reply::fail(format!(
                    "reset PID {pid}@{host} failed, error in config file"
                ))
            }
        }
    }

    /// mon's `loadstate`, once the writer has read the state file back.
    pub(super) fn mon_loadstate(
        &mut self,
        what: &[StateKind],
        loaded: std::io::Result<state::Loaded>,
    ) -> Reply {
        let loaded = match loaded {
            Ok(state::Loaded::Restored(p)) => *p,
            Ok(state::Loaded::Fresh) => return Reply::fail("loadstate error, no saved state"),
            Ok(state::Loaded::Corrupt {
                moved_to,
                error,
                from,
                ..
            }) => {
                return Reply::fail(format!(
                    "loadstate error, state file unreadable ({error}), moved to {}; a restart would restore {from}",
                    moved_to.display()
                ));
            }
            Err(e) => return Reply::fail(format!("loadstate error, {e}")),
        };
        let all = what.contains(&StateKind::All);
        if all || what.contains(&StateKind::Disabled) {
            self.services.disabled = loaded.disabled;
        }
        if all || what.contains(&StateKind::Opstatus) {
            for (key, state) in loaded.services {
                if let Some(slot) = self.services.slots.get_mut(&key) {
                    slot.state = state;
                }
            }
        }
        self.services.touch();
        Reply::ok("loadstate completed")
    }

    fn mon_test(&mut self, test: Test) -> Reply {
        match test {
            Test::Config => match super::load(&self.options) {
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
                let operation = Operation::TestMonitor {
                    group: group.clone(),
                    service: service.clone(),
                };
                match self.execute(operation) {
                    Ok(_) => Reply::ok("test monitor completed"),
                    // mon prints "not defined" and then 220; keepmon says 520.
                    Err(_) => Reply::fail(format!("{group} {service} not defined")),
                }
            }
            Test::Alert {
                kind,
                group,
                service,
                retval,
                period,
            } => {
                let kind = match kind {
                    TestAlert::Alert => AlertKind::Failure,
                    TestAlert::Upalert => AlertKind::Up,
                    TestAlert::Startupalert => AlertKind::Startup,
                    TestAlert::Ackalert => AlertKind::Ack,
                    TestAlert::Disablealert => AlertKind::Disable,
                };
                let operation = Operation::TestAlert {
                    group: group.clone(),
                    service: service.clone(),
                    kind,
                    period: Some(period),
                    exit: retval,
                };
                match self.execute(operation) {
                    Ok(_) => Reply::ok("test alert completed"),
                    Err(OpError::UnknownPeriod(_)) => Reply::fail("period not defined"),
                    Err(_) => Reply::fail(format!("{group} {service} not defined")),
                }
            }
        }
    }

    /// `set`: only the opstatus (by mon's names) can be set; mon's `set`
    /// could overwrite any internal field, which keepmon does not allow.
    fn mon_set(&mut self, group: &str, service: &str, var: &str, value: &str) -> Reply {
        if !self
            .services
            .slots
            .contains_key(&service_key(group, service))
        {
            return Reply::fail(format!("{group},{service} not defined"));
        }
        if var != "opstatus" {
            return Reply::fail(format!(
                "set error, \"{}\" cannot be set (settable: opstatus, maxkeep)",
                esc_str(var, false)
            ));
        }
        let Some(status) = opstatus_by_name(value.trim()) else {
            return Reply::fail("undefined opstatus");
        };
        let operation = Operation::SetOpstatus {
            group: group.to_string(),
            service: service.to_string(),
            status,
        };
        match self.execute(operation) {
            Ok(_) => Reply::ok("set completed"),
            Err(_) => Reply::fail(format!("{group},{service} not defined")),
        }
    }

    /// `get`: any field of the opstatus record (mon's `_`-prefixed internal
    /// names are accepted too), as `G S var='value'`.
    fn mon_get(&self, group: &str, service: &str, var: &str) -> Reply {
        let Some(record) = self.opstatus_record(group, service) else {
            return Reply::fail(format!("{group},{service} not defined"));
        };
        let line = monproto::opstatus_line(&record, super::unix_now());
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
                    self.services
                        .slots
                        .get(&service_key(group, service))?
                        .state
                        .failure_count
                        .to_string(),
                ),
                "consec_failures" => Some(
                    self.services
                        .slots
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
