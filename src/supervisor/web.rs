//! The web part: binds `[web] listen` when a config first asks for it and hands the socket to `web::server`; answers its calls (a [`View`] to render, an [`Action`] run as an [`Operation`]), keeps each service's recent checks for the charts, and turns state changes into `/api/v1/events`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::Supervisor;
use super::ops::Operation;
use crate::config::depend::ServiceRef;
use crate::config::diff::ConfigDiff;
use crate::config::model::Config;
use crate::config::model::{StatsListen, StatsPage};
use crate::metrics::Histogram;
use crate::monproto::throttle::{LoginThrottle, Policy};
use crate::service::{AlertKind, HostHealth};
use crate::web::server::{self, ServerSettings, Site, StatsSite, WebCall, WebCounters};
use crate::web::stats::{CheckInfo, ProxyStats, Rate, ServerStats, StatsData, Track};
use crate::web::{Action, SAMPLES_KEPT, Sample, ServiceExtra, View, WebError, lb_change};

/// Events kept for slow `/api/v1/events` readers before they lag.
const EVENT_BACKLOG: usize = 1024;

/// The web listener and what only the web shows.
pub(super) struct WebPart {
    calls: mpsc::Sender<WebCall>,
    shutdown: CancellationToken,
    /// The address asked for at the first apply (None: not configured).
    bound: Option<Option<SocketAddr>>,
    /// The forms' CSRF token, random per daemon run.
    csrf: String,
    /// Recent checks per `group/service`, oldest first.
    samples: BTreeMap<String, VecDeque<Sample>>,
    events: broadcast::Sender<String>,
    /// What the last look saw, to tell changes (events, "since").
    seen: BTreeMap<String, (String, i64)>,
    /// The first look is done (what it saw is the start, not a change).
    looked: bool,
    /// Check durations per service since start, for the metrics page.
    pub durations: BTreeMap<String, Histogram>,
    /// The listener's request and connection counts.
    pub counters: Arc<WebCounters>,
    /// HAProxy stats page listeners by address: each stops with its token;
    /// a reload swaps the page in place.
    stats_listeners: BTreeMap<SocketAddr, (CancellationToken, Arc<StatsSite>)>,
    /// The stats pages' login backoff (one for all pages).
    stats_throttle: Arc<std::sync::Mutex<LoginThrottle>>,
    /// Per (virtual server, real server): status history and session rate.
    server_tracks: BTreeMap<(String, SocketAddr), (Track, Rate)>,
    /// Per virtual server: the backend's history and the frontend's rate.
    proxy_tracks: BTreeMap<String, (Track, Rate)>,
    /// Failed checks while up, per (`group/service`, host).
    chkfail: BTreeMap<(String, String), u64>,
}

impl WebPart {
    pub fn new(calls: mpsc::Sender<WebCall>, shutdown: CancellationToken) -> WebPart {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        WebPart {
            calls,
            shutdown,
            bound: None,
            csrf: random_token(),
            samples: BTreeMap::new(),
            events,
            seen: BTreeMap::new(),
            looked: false,
            durations: BTreeMap::new(),
            counters: Arc::default(),
            stats_listeners: BTreeMap::new(),
            stats_throttle: Arc::new(std::sync::Mutex::new(LoginThrottle::new(Policy::default()))),
            server_tracks: BTreeMap::new(),
            proxy_tracks: BTreeMap::new(),
            chkfail: BTreeMap::new(),
        }
    }

    /// At start: bind the web listener if configured (a port that cannot be
    /// bound is logged; the daemon runs without the page). On reload: the
    /// socket stays; a moved address needs a restart. Samples of removed
    /// services are dropped.
    pub fn reconfigure(&mut self, config: &Config, _diff: &ConfigDiff) {
        let configured = |key: &String| {
            key.split_once('/').is_some_and(|(g, s)| {
                config
                    .watches
                    .get(g)
                    .is_some_and(|w| w.services.contains_key(s))
            })
        };
        self.samples.retain(|key, _| configured(key));
        self.durations.retain(|key, _| configured(key));
        self.chkfail.retain(|(key, _), _| configured(key));
        self.server_tracks.retain(|(vs, addr), _| {
            config
                .virtual_servers
                .get(vs)
                .is_some_and(|v| v.real_servers.iter().any(|r| r.addr == *addr))
        });
        self.proxy_tracks
            .retain(|vs, _| config.virtual_servers.contains_key(vs));
        self.reconfigure_stats_pages(config);
        self.seen.retain(|key, _| {
            key.strip_prefix("service ")
                .is_none_or(|k| configured(&k.to_string()))
        });
        let wanted = config.settings.web.listen;
        if let Some(bound) = self.bound {
            if bound != wanted {
                tracing::warn!("the web listen address changed; restart keepmon to move it");
            }
            return;
        }
        self.bound = Some(wanted);
        let Some(addr) = wanted else {
            return;
        };
        let listener = match bind_tcp(addr) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen for the web page; running without it");
                return;
            }
        };
        tracing::info!(%addr, "web page and API listening");
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the web listener is not on loopback: logins travel in clear unless a TLS proxy is in front");
        }
        let settings = Arc::new(ServerSettings {
            auth: config.settings.auth.clone(),
            tokens_file: config.settings.web.tokens_file.clone(),
            csrf: self.csrf.clone(),
            events: self.events.clone(),
            counters: self.counters.clone(),
        });
        tokio::spawn(server::serve(
            listener,
            Site::Web(settings),
            self.calls.clone(),
            self.shutdown.clone(),
        ));
    }

    /// Bind the stats pages that have their own listener: a page whose
    /// address stays keeps its socket and gets the new settings; a removed
    /// address stops listening; a new one is bound (failure is logged).
    fn reconfigure_stats_pages(&mut self, config: &Config) {
        let pages = &config.stats_pages;
        // Pages inside http virtual servers: the proxy hands them their
        // requests.
        let mut intercepts: BTreeMap<SocketAddr, Arc<dyn crate::lb::http::intercept::Intercept>> =
            BTreeMap::new();
        for page in pages {
            let StatsListen::VirtualServer(name) = &page.listen else {
                continue;
            };
            let Some(vs) = config.virtual_servers.get(name) else {
                continue;
            };
            tracing::info!(
                virtual_server = name,
                uri = page.uri,
                "HAProxy stats page served inside the virtual server"
            );
            let site = Arc::new(StatsSite {
                page: arc_swap::ArcSwap::from_pointee(page.clone()),
                throttle: self.stats_throttle.clone(),
                counters: self.counters.clone(),
            });
            let Some(listen) = vs.listen else {
                continue;
            };
            intercepts.insert(
                listen,
                Arc::new(server::StatsIntercept {
                    site,
                    calls: self.calls.clone(),
                }),
            );
        }
        crate::lb::http::intercept::set_intercepts(intercepts);
        let wanted: BTreeMap<SocketAddr, &StatsPage> = pages
            .iter()
            .filter_map(|page| match page.listen {
                StatsListen::Address(addr) => Some((addr, page)),
                StatsListen::VirtualServer(_) => None,
            })
            .collect();
        self.stats_listeners.retain(|addr, (stop, _)| {
            let keep = wanted.contains_key(addr);
            if !keep {
                tracing::info!(%addr, "stats page no longer configured; closing it");
                stop.cancel();
            }
            keep
        });
        for (addr, page) in wanted {
            if let Some((_, site)) = self.stats_listeners.get(&addr) {
                site.page.store(Arc::new(page.clone()));
                continue;
            }
            let listener = match bind_tcp(addr) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot listen for the stats page; running without it");
                    continue;
                }
            };
            tracing::info!(%addr, uri = page.uri, "HAProxy stats page listening");
            if page.users.is_empty() && !addr.ip().is_loopback() {
                tracing::warn!(%addr, "the stats page has no stats auth and is not on loopback: anyone who reaches it sees the table");
            }
            let site = Arc::new(StatsSite {
                page: arc_swap::ArcSwap::from_pointee(page.clone()),
                throttle: self.stats_throttle.clone(),
                counters: self.counters.clone(),
            });
            let stop = self.shutdown.child_token();
            tokio::spawn(server::serve(
                listener,
                Site::Stats(site.clone()),
                self.calls.clone(),
                stop.clone(),
            ));
            self.stats_listeners.insert(addr, (stop, site));
        }
    }

    /// A run of `key` (`group/service`) updated its hosts: count the
    /// failed checks of hosts that are still up (HAProxy's `chkfail`).
    pub fn count_failed_checks(&mut self, key: &str, hosts: &BTreeMap<String, HostHealth>) {
        for (host, health) in hosts {
            if health.up && health.streak > 0 {
                *self
                    .chkfail
                    .entry((key.to_string(), host.clone()))
                    .or_default() += 1;
            }
        }
    }

    /// A check of `key` (`group/service`) finished.
    pub fn record(&mut self, key: &str, sample: Sample) {
        self.durations
            .entry(key.to_string())
            .or_default()
            .observe(Duration::from_micros(u64::from(sample.micros)));
        let samples = self.samples.entry(key.to_string()).or_default();
        if samples.len() >= SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Note what `key` looks like now: a change (after the first look)
    /// becomes an event, built only then, and restarts its "since".
    fn note(
        &mut self,
        now: i64,
        key: String,
        state: &str,
        event: impl FnOnce() -> serde_json::Value,
    ) {
        if self.seen.get(&key).is_some_and(|(old, _)| old == state) {
            return;
        }
        if self.looked && self.events.receiver_count() > 0 {
            let _ = self.events.send(event().to_string());
        }
        self.seen.insert(key, (state.to_string(), now));
    }
}

impl Supervisor {
    /// Answer one call of the web listener.
    pub(super) fn on_web_call(&mut self, call: WebCall) {
        match call {
            WebCall::View { reply } => {
                let _ = reply.send(self.web_view());
            }
            WebCall::Act {
                action,
                user,
                reply,
            } => {
                let answer = web_operation(action, &user).and_then(|op| {
                    self.execute(op)
                        .map_err(|e| WebError::refused(e.to_string()))
                });
                self.reply_when_saved(reply, answer);
            }
        }
    }

    /// Look for state changes (once a second): events and "since" times.
    pub(super) fn web_observe(&mut self) {
        let now = super::unix_now();
        for slot in self.services.slots.values() {
            let status = slot.state.opstatus.name();
            let key = format!("service {}/{}", slot.group, slot.service);
            self.web.note(now, key, status, || {
                serde_json::json!({"kind": "service", "group": slot.group, "service": slot.service,
                    "status": status, "failing": slot.state.opstatus.is_failure(),
                    "summary": slot.state.last_summary, "time": now})
            });
        }
        for vs in &self.lb.table.report(None).services {
            for rs in &vs.real_servers {
                let state = format!("{:?} {} {}", rs.health, rs.admin, rs.in_dataplane);
                self.web
                    .note(now, format!("lb {} {}", vs.name, rs.addr), &state, || {
                        serde_json::json!({"kind": "lb", "virtual_service": vs.name,
                            "real_server": rs.addr.to_string(), "health": rs.health,
                            "admin": rs.admin, "in_dataplane": rs.in_dataplane,
                            "weight": rs.effective_weight, "time": now})
                    });
            }
        }
        self.observe_stats(now);
        for v in self.vrrp.dumps() {
            self.web
                .note(now, format!("vrrp {}", v.name), &v.state, || {
                    serde_json::json!({"kind": "vrrp", "instance": v.name, "state": v.state,
                    "priority": v.effective_priority, "reason": v.last_reason, "time": now})
                });
        }
        self.web.looked = true;
    }

    /// Once a second: the stats page's status history (since when, downtime,
    /// UP→DOWN transitions) and session rates, per server and per virtual
    /// server.
    fn observe_stats(&mut self, now: i64) {
        let report = self.lb.report();
        let checks = self.stats_checks();
        for vs in &report.services {
            let (mut total, mut current) = (0, 0);
            for rs in &vs.real_servers {
                let check = checks.get(&(vs.name.clone(), rs.addr));
                let status = crate::web::stats::server_status(rs, check);
                let down = status.starts_with("DOWN");
                let conns = rs.conns.unwrap_or_default();
                total += conns.total;
                current += conns.active;
                let (track, rate) = self
                    .web
                    .server_tracks
                    .entry((vs.name.clone(), rs.addr))
                    .or_default();
                track.observe(now, &status, down);
                rate.observe(now, conns.total, conns.active);
            }
            if let Some(sorry) = vs.sorry_conns {
                total += sorry.total;
                current += sorry.active;
            }
            let up = crate::web::stats::backend_up(vs);
            let (track, rate) = self.web.proxy_tracks.entry(vs.name.clone()).or_default();
            track.observe(now, if up { "UP" } else { "DOWN" }, !up);
            rate.observe(now, total, current);
        }
    }

    /// Each real server's check as its health service last saw its host:
    /// the virtual server's `health`, or among the server's own `checks`
    /// the first that reports it down, else the first.
    fn stats_checks(&self) -> BTreeMap<(String, SocketAddr), CheckInfo> {
        let mut checks = BTreeMap::new();
        for vs in self.config.virtual_servers.values() {
            for rs in &vs.real_servers {
                let candidates: Vec<(&ServiceRef, &str)> = vs
                    .health
                    .iter()
                    .map(|h| (h, rs.host.as_str()))
                    .chain(rs.checks.iter().map(|c| (&c.health, c.host.as_str())))
                    .collect();
                let host_state = |(health, host): &(&ServiceRef, &str)| {
                    let key = crate::state::service_key(&health.group, &health.service);
                    self.services
                        .slots
                        .get(&key)
                        .and_then(|s| s.state.hosts.get(*host))
                        .cloned()
                };
                let chosen = candidates
                    .iter()
                    .find(|c| host_state(c).is_some_and(|h| !h.up))
                    .or(candidates.first());
                let Some(&(health, host_name)) = chosen else {
                    continue;
                };
                let Some(service) = self.config.service(health) else {
                    continue;
                };
                let key = crate::state::service_key(&health.group, &health.service);
                let micros = self
                    .web
                    .samples
                    .get(&key)
                    .and_then(|s| s.back())
                    .map(|s| s.micros);
                let host = host_state(&(health, host_name));
                checks.insert(
                    (vs.name.clone(), rs.addr),
                    CheckInfo {
                        monitor: service
                            .monitor
                            .as_ref()
                            .map(super::cli::describe_monitor)
                            .unwrap_or_default(),
                        checked: host.is_some(),
                        streak: host.as_ref().map_or(0, |h| h.streak),
                        rise: service.rise,
                        fall: service.fall,
                        reason: host.and_then(|h| h.reason),
                        micros,
                        chkfail: self
                            .web
                            .chkfail
                            .get(&(key.clone(), host_name.to_string()))
                            .copied()
                            .unwrap_or(0),
                    },
                );
            }
        }
        checks
    }

    /// What the stats page shows beyond the lb report.
    fn stats_data(&self) -> StatsData {
        let mut checks = self.stats_checks();
        let proxies = self
            .config
            .virtual_servers
            .values()
            .map(|vs| {
                let (backend, frontend) = self
                    .web
                    .proxy_tracks
                    .get(&vs.name)
                    .cloned()
                    .unwrap_or_default();
                let stats = ProxyStats {
                    mode: vs.proxy.mode.to_string(),
                    maxconn: vs.proxy.maxconn,
                    backend,
                    frontend,
                };
                (vs.name.clone(), stats)
            })
            .collect();
        let mut servers: BTreeMap<(String, SocketAddr), ServerStats> = self
            .web
            .server_tracks
            .iter()
            .map(|(key, (track, rate))| {
                let stats = ServerStats {
                    track: track.clone(),
                    rate: rate.clone(),
                    check: checks.remove(key),
                    ..ServerStats::default()
                };
                (key.clone(), stats)
            })
            .collect();
        for (key, check) in checks {
            servers.entry(key).or_default().check = Some(check);
        }
        for vs in self.config.virtual_servers.values() {
            for rs in &vs.real_servers {
                let stats = servers.entry((vs.name.clone(), rs.addr)).or_default();
                stats.backup = rs.backup;
                stats.maxconn = rs.maxconn;
                stats.maxqueue = rs.maxqueue;
            }
        }
        StatsData { proxies, servers }
    }

    fn web_view(&self) -> View {
        let dump = self.dump();
        let extra = self
            .services
            .slots
            .values()
            .map(|slot| {
                let key = format!("{}/{}", slot.group, slot.service);
                let since = if slot.state.opstatus.is_failure() {
                    slot.state.first_failure
                } else {
                    self.web
                        .seen
                        .get(&format!("service {key}"))
                        .map(|(_, t)| *t)
                        .filter(|t| *t > self.started)
                };
                let extra = ServiceExtra {
                    since,
                    ack_time: slot.state.ack.as_ref().map(|a| a.time),
                    samples: self
                        .web
                        .samples
                        .get(&key)
                        .map(|s| s.iter().copied().collect())
                        .unwrap_or_default(),
                };
                (key, extra)
            })
            .collect();
        View {
            now: super::unix_now(),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into()),
            config: self.config_name(),
            pid: std::process::id(),
            started: self.started,
            dump,
            lb: self.lb.report(),
            extra,
            failure_history: self.services.failure_history.iter().cloned().collect(),
            csrf: self.web.csrf.clone(),
            stats: self.stats_data(),
        }
    }
}

/// The operation an action asks for, for `user`.
fn web_operation(action: Action, user: &str) -> Result<Operation, WebError> {
    Ok(match action {
        Action::Ack {
            group,
            service,
            comment,
        } => Operation::Ack {
            group,
            service,
            user: Some(user.to_string()),
            comment,
        },
        Action::Disable { target } => Operation::Disable(target.target()?),
        Action::Enable { target } => Operation::Enable(target.target()?),
        Action::TestAlert { group, service } => Operation::TestAlert {
            group,
            service,
            kind: AlertKind::Failure,
            period: None,
            exit: 1,
        },
        Action::Lb {
            virtual_service,
            real_server,
            change,
            weight,
        } => Operation::LbSet {
            virtual_service,
            real_server,
            change: lb_change(&change, weight)?,
        },
    })
}

/// A sample from a finished run.
pub(super) fn sample(now: i64, up: bool, duration: Duration) -> Sample {
    Sample {
        time: now,
        up,
        micros: u32::try_from(duration.as_micros()).unwrap_or(u32::MAX),
    }
}

/// 32 random bytes as hex (the system's generator; a counter-free clock
/// fallback would be guessable, so a failure leaves forms unusable: the
/// empty token never matches).
fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => crate::web::auth::hex(&bytes),
        Err(_) => {
            tracing::error!("no system randomness; web forms are refused");
            String::new()
        }
    }
}

/// Bind without waiting (std's bind sets SO_REUSEADDR, as tokio's does).
fn bind_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::{LbChange, Target};
    use crate::web::WebTarget;

    #[test]
    fn actions_become_the_operations_of_the_other_doors() {
        let ack = web_operation(
            Action::Ack {
                group: "g".into(),
                service: "s".into(),
                comment: "on it".into(),
            },
            "ann",
        );
        assert_eq!(
            ack,
            Ok(Operation::Ack {
                group: "g".into(),
                service: "s".into(),
                user: Some("ann".into()),
                comment: "on it".into(),
            })
        );
        let disable = web_operation(
            Action::Disable {
                target: WebTarget {
                    group: None,
                    service: None,
                    host: Some("db1".into()),
                },
            },
            "ann",
        );
        assert_eq!(
            disable,
            Ok(Operation::Disable(Target::Host {
                hosts: vec!["db1".into()]
            }))
        );
        let lb = |change: &str, weight| {
            web_operation(
                Action::Lb {
                    virtual_service: "www".into(),
                    real_server: "10.0.0.1:80".into(),
                    change: change.into(),
                    weight,
                },
                "ann",
            )
        };
        assert_eq!(
            lb("weight", Some(3)),
            Ok(Operation::LbSet {
                virtual_service: "www".into(),
                real_server: "10.0.0.1:80".into(),
                change: LbChange::Weight { weight: 3 },
            })
        );
        assert_eq!(lb("weight", None).map_err(|e| e.status), Err(400));
    }

    #[test]
    fn samples_are_bounded_and_feed_the_histograms() {
        let (calls, _) = mpsc::channel(1);
        let mut part = WebPart::new(calls, CancellationToken::new());
        assert_eq!(part.csrf.len(), 64, "a 32-byte random token");
        for i in 0..(SAMPLES_KEPT as i64 + 10) {
            part.record("g/s", sample(i, i % 2 == 0, Duration::from_millis(2)));
        }
        let kept = &part.samples["g/s"];
        assert_eq!(kept.len(), SAMPLES_KEPT);
        assert_eq!(
            kept.front().map(|s| s.time),
            Some(10),
            "oldest dropped first"
        );
        assert_eq!(kept.back().map(|s| s.micros), Some(2000));
        let mut expected = Histogram::default();
        for _ in 0..(SAMPLES_KEPT + 10) {
            expected.observe(Duration::from_millis(2));
        }
        assert_eq!(part.durations["g/s"], expected);
    }
}
