//! The control socket's front door: turns a CLI [`Request`] into a report (status, dump, lb show, vrrp show) or an [`Operation`], and renders the answer as a [`Response`]; no state change of its own.

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::model::Monitor;
use crate::control::proto::{
    DumpReport, HostDump, Request, Response, ServiceDump, StatusReport, TestWhat,
};
use crate::service::AlertKind;

use super::Supervisor;
use super::ops::Operation;
use super::services::service_of;

impl Supervisor {
    /// Answer one control request.
    pub(super) fn on_request(&mut self, request: Request, reply: oneshot::Sender<Response>) {
        let response = match request {
            Request::Status => Response::Status(self.status()),
            Request::Dump => Response::Dump(Box::new(self.dump())),
            Request::Stop => {
                // Answered now: the loop ends next and shutdown saves the
                // state itself.
                let _ = reply.send(ok("stopping"));
                return;
            }
            Request::LbShow => self.lb_show(),
            Request::Announcements => Response::Announcements {
                announcements: self.announce.dumps(),
            },
            Request::VrrpShow => {
                let instances = self.vrrp.dumps();
                if instances.is_empty() {
                    ok("no vrrp instances configured")
                } else {
                    Response::Vrrp { instances }
                }
            }
            Request::Reload => self.call(Operation::Reload),
            Request::Pause => self.call(Operation::Pause),
            Request::Resume => self.call(Operation::Resume),
            Request::Enable { target } => self.call(Operation::Enable(target)),
            Request::Disable { target } => self.call(Operation::Disable(target)),
            Request::Ack {
                group,
                service,
                comment,
            } => self.call(Operation::Ack {
                group,
                service,
                user: None,
                comment,
            }),
            Request::Test {
                what: TestWhat::Monitor,
                group,
                service,
            } => self.call(Operation::TestMonitor { group, service }),
            Request::Test {
                what,
                group,
                service,
            } => self.call(Operation::TestAlert {
                group,
                service,
                kind: if what == TestWhat::Alert {
                    AlertKind::Failure
                } else {
                    AlertKind::Up
                },
                period: None,
                exit: 1,
            }),
            Request::LbSet {
                virtual_service,
                real_server,
                change,
            } => self.call(Operation::LbSet {
                virtual_service,
                real_server,
                change,
            }),
        };
        self.reply_when_saved(reply, response);
    }

    fn call(&mut self, operation: Operation) -> Response {
        match self.execute(operation) {
            Ok(message) => ok(message),
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        }
    }

    fn lb_show(&self) -> Response {
        let report = self.lb.report();
        let mut text = crate::render::lb_table(&report);
        let announcements = self.announce.dumps();
        if !announcements.is_empty() {
            text.push_str(&crate::render::announce_table(&announcements));
        }
        if !self.lb.log.is_empty() {
            text.push_str("\nrecent changes:\n");
            for line in self.lb.log.iter().rev().take(10).rev() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        Response::Lb {
            text,
            json: serde_json::to_value(&report).unwrap_or_default(),
        }
    }

    pub(super) fn status(&self) -> StatusReport {
        let slots = &self.services.slots;
        StatusReport {
            pid: std::process::id(),
            config: self.config_name(),
            started: self.started,
            scheduler_running: self.services.scheduler_running,
            services: slots.len(),
            failing: slots
                .values()
                .filter(|s| s.state.opstatus.is_failure())
                .map(|s| format!("{}/{}", s.group, s.service))
                .collect(),
            alerts_sent: slots.values().map(|s| s.state.alert_count).sum(),
        }
    }

    /// The whole picture `keepmon dump` (and mon's `dump`) shows.
    pub(super) fn dump(&self) -> DumpReport {
        let now = Instant::now();
        let services = &self.services;
        let dumps = services
            .slots
            .iter()
            .filter_map(|(key, slot)| {
                let svc = service_of(&self.config, slot)?;
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
                            disabled: services.disabled.hosts.contains(&h),
                            host: h,
                        }
                    })
                    .collect();
                Some(ServiceDump {
                    group: slot.group.clone(),
                    service: slot.service.clone(),
                    opstatus: slot.state.opstatus.name().to_string(),
                    opstatus_code: slot.state.opstatus.code(),
                    disabled: services.disabled.services.contains(key),
                    watch_disabled: services.disabled.watches.contains(&slot.group),
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
                        .filter(|_| services.scheduler_running && !slot.running)
                        .map(|d| d.saturating_duration_since(now).as_secs_f64()),
                    running: slot.running,
                    alerts_sent: slot.state.alert_count,
                    failures: slot.state.failure_count,
                    ack: slot.state.ack.as_ref().map(|a| a.comment.clone()),
                })
            })
            .collect();
        DumpReport {
            scheduler_running: services.scheduler_running,
            services: dumps,
            disabled_hosts: services.disabled.hosts.iter().cloned().collect(),
            alert_history: services.alert_history.iter().cloned().collect(),
            lb_changes: self.lb.log.iter().cloned().collect(),
            lb_settings: self
                .lb
                .table
                .run_time_settings()
                .iter()
                .map(ToString::to_string)
                .collect(),
            mail: Box::new(self.mail.dump()),
            vrrp: self.vrrp.dumps(),
            announcements: self.announce.dumps(),
            alertmanagers: self.alertmanager.dump(),
        }
    }
}

/// How `dump` and mon's opstatus name a monitor.
pub(super) fn describe_monitor(m: &Monitor) -> String {
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
        Monitor::Smtp(s) => format!("smtp port {}", s.port),
        Monitor::Udp(u) => format!("udp port {}", u.port),
        Monitor::Dns(d) => format!("dns port {} {} {}", d.port, d.query_type, d.name),
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

fn ok(message: impl Into<String>) -> Response {
    Response::Ok {
        message: message.into(),
    }
}
