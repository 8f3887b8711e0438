//! The Prometheus text page: renders the figures the supervisor hands over (services, scheduling lag, checks and their durations, real servers, proxy backends, VRRP, the mail outbox, Alertmanager queues, web clients, build info) and serves the latest rendering; never touches service state itself.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::control::proto::{MailDump, VrrpDump};
use crate::lb::proxy::BackendStats;
use crate::lb::table::{Health, Report};
use crate::ratelimit::{ConnectionLimits, LogLimit};

/// Metrics connections served at once, in all and from one address.
pub const MAX_CONNECTIONS: usize = 64;
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 8;
/// How long a client has to read the page.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// One service's figures for the metrics page.
pub struct ServiceMetrics<'a> {
    pub group: &'a str,
    pub service: &'a str,
    pub opstatus: u8,
    pub up: bool,
    pub failures: u64,
    pub alerts: u64,
}

/// Everything on the metrics page besides the per-service figures.
pub struct DaemonFigures<'a> {
    pub scheduler_running: bool,
    /// How late monitor runs start (see [`LagWindow`]).
    pub lags: &'a LagWindow,
    /// Host checks completed.
    pub checks: u64,
    /// Counters of every proxy backend: (virtual service, stats).
    pub backends: &'a [(String, BackendStats)],
    /// Route announcements: wanted and accepted by the routing daemon.
    pub announcements: &'a [crate::control::proto::AnnounceDump],
    /// Lua runs, limit hits and run durations.
    pub lua: &'a crate::lua::LuaStats,
    /// mon port clients.
    pub mon_clients: crate::monproto::server::ClientStats,
    /// Every virtual service and real server (health, weight in force).
    pub lb: &'a Report,
    pub vrrp: &'a [VrrpDump],
    pub mail: &'a MailDump,
    /// The Alertmanagers alert actions post to.
    pub alertmanagers: &'a [crate::control::proto::AlertmanagerDump],
    /// Check durations per service key (`group/service`).
    pub check_durations: &'a std::collections::BTreeMap<String, Histogram>,
    /// Web requests served and connections open now.
    pub web_requests: u64,
    pub web_connections: u64,
}

/// A cumulative histogram of durations with fixed buckets (seconds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Observations at most `BUCKETS[i]`, per bucket (not cumulative).
    counts: [u64; Histogram::BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Upper bounds: checks run from sub-millisecond to their timeouts.
    pub const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        self.count += 1;
        self.sum += secs;
        if let Some(i) = Self::BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
    }
}

/// The whole page: daemon, services, scheduling lag, checks, backends.
pub fn render_page<'a>(
    services: impl Iterator<Item = ServiceMetrics<'a>>,
    figures: &DaemonFigures<'_>,
) -> String {
    let mut text = render(services, figures.scheduler_running);
    let [p50, p99, max] = figures.lags.quantiles();
    text.push_str(
        "# HELP keepmon_schedule_lag_seconds How late monitor runs start (recent runs).\n\
         # TYPE keepmon_schedule_lag_seconds summary\n",
    );
    let _ = writeln!(
        text,
        "keepmon_schedule_lag_seconds{{quantile=\"0.5\"}} {p50}\n\
         keepmon_schedule_lag_seconds{{quantile=\"0.99\"}} {p99}\n\
         keepmon_schedule_lag_seconds{{quantile=\"1\"}} {max}"
    );
    text.push_str(
        "# HELP keepmon_checks_total Host checks completed.\n# TYPE keepmon_checks_total counter\n",
    );
    let _ = writeln!(text, "keepmon_checks_total {}", figures.checks);
    render_backends(&mut text, figures.backends);
    render_lua(&mut text, figures.lua);
    let m = &figures.mon_clients;
    let _ = writeln!(
        text,
        "# HELP keepmon_mon_connections mon port (moncmd, monshow) clients connected now.\n\
         # TYPE keepmon_mon_connections gauge\n\
         keepmon_mon_connections {}\n\
         # HELP keepmon_mon_connections_total mon port connections admitted.\n\
         # TYPE keepmon_mon_connections_total counter\n\
         keepmon_mon_connections_total {}\n\
         # HELP keepmon_mon_refused_total mon port connections refused by the connection caps.\n\
         # TYPE keepmon_mon_refused_total counter\n\
         keepmon_mon_refused_total {}\n\
         # HELP keepmon_mon_commands_total mon port command lines answered.\n\
         # TYPE keepmon_mon_commands_total counter\n\
         keepmon_mon_commands_total {}\n\
         # HELP keepmon_mon_login_failures_total Failed mon port logins.\n\
         # TYPE keepmon_mon_login_failures_total counter\n\
         keepmon_mon_login_failures_total {}",
        m.connections,
        m.connections_total,
        m.refused_total,
        m.commands_total,
        m.login_failures_total
    );
    if !figures.announcements.is_empty() {
        text.push_str(
            "# HELP keepmon_announce_active 1 while the route is announced (the routing daemon accepted it).\n\
             # TYPE keepmon_announce_active gauge\n",
        );
        for a in figures.announcements {
            let _ = writeln!(
                text,
                "keepmon_announce_active{{name=\"{}\",prefix=\"{}\"}} {}",
                escape(&a.name),
                escape(&a.prefix),
                u8::from(a.wanted && a.announced)
            );
        }
    }
    render_check_durations(&mut text, figures.check_durations);
    render_lb(&mut text, figures.lb);
    render_vrrp(&mut text, figures.vrrp);
    render_mail(&mut text, figures.mail);
    render_alertmanagers(&mut text, figures.alertmanagers);
    let _ = writeln!(
        text,
        "# HELP keepmon_web_requests_total Requests the web page and API answered.\n\
         # TYPE keepmon_web_requests_total counter
keepmon_web_requests_total {}\n\
         # HELP keepmon_web_connections Web clients connected now.\n\
         # TYPE keepmon_web_connections gauge
keepmon_web_connections {}",
        figures.web_requests, figures.web_connections
    );
    let _ = writeln!(
        text,
        "# HELP keepmon_build_info The running keepmon's version (value 1).\n\
         # TYPE keepmon_build_info gauge
keepmon_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        escape(crate::buildinfo::GIT_COMMIT.unwrap_or("unknown"))
    );
    text
}

fn render_lua(text: &mut String, lua: &crate::lua::LuaStats) {
    let _ = writeln!(
        text,
        "# HELP keepmon_lua_runs_total Lua monitor and alert runs.\n\
         # TYPE keepmon_lua_runs_total counter\n\
         keepmon_lua_runs_total {}\n\
         # HELP keepmon_lua_limit_hits_total Lua runs stopped by a limit (instructions, deadline, memory).\n\
         # TYPE keepmon_lua_limit_hits_total counter\n\
         keepmon_lua_limit_hits_total {}\n\
         # HELP keepmon_lua_run_duration_seconds How long Lua runs took.\n\
         # TYPE keepmon_lua_run_duration_seconds histogram",
        lua.runs, lua.limit_hits
    );
    let h = &lua.durations;
    let mut cumulative = 0;
    for (bound, count) in Histogram::BUCKETS.iter().zip(h.counts) {
        cumulative += count;
        let _ = writeln!(
            text,
            "keepmon_lua_run_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        text,
        "keepmon_lua_run_duration_seconds_bucket{{le=\"+Inf\"}} {}\n\
         keepmon_lua_run_duration_seconds_sum {}\n\
         keepmon_lua_run_duration_seconds_count {}",
        h.count, h.sum, h.count
    );
}

fn render_check_durations(
    text: &mut String,
    histograms: &std::collections::BTreeMap<String, Histogram>,
) {
    if histograms.is_empty() {
        return;
    }
    text.push_str(
        "# HELP keepmon_check_duration_seconds How long a service's monitor runs took.\n\
         # TYPE keepmon_check_duration_seconds histogram
",
    );
    for (key, h) in histograms {
        let (group, service) = key.split_once('/').unwrap_or((key, ""));
        let labels = format!(
            "group=\"{}\",service=\"{}\"",
            escape(group),
            escape(service)
        );
        let mut cumulative = 0;
        for (bound, count) in Histogram::BUCKETS.iter().zip(h.counts) {
            cumulative += count;
            let _ = writeln!(
                text,
                "keepmon_check_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            text,
            "keepmon_check_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             keepmon_check_duration_seconds_sum{{{labels}}} {}\n\
             keepmon_check_duration_seconds_count{{{labels}}} {}",
            h.count, h.sum, h.count
        );
    }
}

fn render_lb(text: &mut String, report: &Report) {
    if report.services.is_empty() {
        return;
    }
    let mut quorum = String::from(
        "# HELP keepmon_virtual_service_quorum_up 1 while the virtual service has its quorum.\n\
         # TYPE keepmon_virtual_service_quorum_up gauge
",
    );
    let mut up = String::from(
        "# HELP keepmon_real_server_up Real server health (1 up or not checked yet, 0 down).\n\
         # TYPE keepmon_real_server_up gauge
",
    );
    let mut weight = String::from(
        "# HELP keepmon_real_server_weight Weight in force in the data plane (0 when absent).\n\
         # TYPE keepmon_real_server_weight gauge
",
    );
    let mut admin = String::from(
        "# HELP keepmon_real_server_admin_state Operator state of the real server (1 for the state in force).\n\
         # TYPE keepmon_real_server_admin_state gauge
",
    );
    for vs in &report.services {
        let _ = writeln!(
            quorum,
            "keepmon_virtual_service_quorum_up{{virtual=\"{}\"}} {}",
            escape(&vs.name),
            u8::from(vs.quorum_up)
        );
        for rs in &vs.real_servers {
            let labels = format!("virtual=\"{}\",real=\"{}\"", escape(&vs.name), rs.addr);
            let _ = writeln!(
                up,
                "keepmon_real_server_up{{{labels}}} {}",
                u8::from(rs.health != Health::Down)
            );
            let _ = writeln!(
                weight,
                "keepmon_real_server_weight{{{labels}}} {}",
                rs.effective_weight.unwrap_or(0)
            );
            for state in ["ready", "drain", "maint"] {
                let _ = writeln!(
                    admin,
                    "keepmon_real_server_admin_state{{{labels},state=\"{state}\"}} {}",
                    u8::from(rs.admin == state)
                );
            }
        }
    }
    text.push_str(&quorum);
    text.push_str(&up);
    text.push_str(&weight);
    text.push_str(&admin);
}

fn render_vrrp(text: &mut String, instances: &[VrrpDump]) {
    if instances.is_empty() {
        return;
    }
    let mut state = String::from(
        "# HELP keepmon_vrrp_state VRRP instance state (1 for the state in force).\n\
         # TYPE keepmon_vrrp_state gauge
",
    );
    let mut priority = String::from(
        "# HELP keepmon_vrrp_priority Effective VRRP priority (after tracking).\n\
         # TYPE keepmon_vrrp_priority gauge
",
    );
    let mut transitions = String::from(
        "# HELP keepmon_vrrp_transitions_total VRRP state transitions.\n\
         # TYPE keepmon_vrrp_transitions_total counter
",
    );
    let mut adverts = String::from(
        "# HELP keepmon_vrrp_adverts_total VRRP advertisements (direction sent or received).\n\
         # TYPE keepmon_vrrp_adverts_total counter
",
    );
    let mut dropped = String::from(
        "# HELP keepmon_vrrp_dropped_total VRRP packets dropped, by reason.\n\
         # TYPE keepmon_vrrp_dropped_total counter
",
    );
    for v in instances {
        let name = escape(&v.name);
        for s in ["INIT", "BACKUP", "MASTER", "FAULT"] {
            let _ = writeln!(
                state,
                "keepmon_vrrp_state{{vrrp_instance=\"{name}\",state=\"{}\"}} {}",
                s.to_ascii_lowercase(),
                u8::from(v.state.eq_ignore_ascii_case(s))
            );
        }
        let _ = writeln!(
            priority,
            "keepmon_vrrp_priority{{vrrp_instance=\"{name}\"}} {}",
            v.effective_priority
        );
        let c = &v.counters;
        let _ = writeln!(
            transitions,
            "keepmon_vrrp_transitions_total{{vrrp_instance=\"{name}\"}} {}",
            c.transitions
        );
        let _ = writeln!(
            adverts,
            "keepmon_vrrp_adverts_total{{vrrp_instance=\"{name}\",direction=\"sent\"}} {}\n\
             keepmon_vrrp_adverts_total{{vrrp_instance=\"{name}\",direction=\"received\"}} {}",
            c.adverts_sent, c.adverts_received
        );
        for (reason, n) in [
            ("malformed", c.malformed),
            ("bad_ttl", c.bad_ttl),
            ("other_vrid", c.other_vrid),
            ("auth_mismatch", c.auth_mismatch),
            ("version_mismatch", c.version_mismatch),
            ("interval_mismatch", c.interval_mismatch),
            ("address_mismatch", c.address_mismatch),
            ("unknown_peer", c.unknown_peer),
        ] {
            let _ = writeln!(
                dropped,
                "keepmon_vrrp_dropped_total{{vrrp_instance=\"{name}\",reason=\"{reason}\"}} {n}"
            );
        }
    }
    for family in [state, priority, transitions, adverts, dropped] {
        text.push_str(&family);
    }
}

fn render_mail(text: &mut String, mail: &MailDump) {
    let _ = writeln!(
        text,
        "# HELP keepmon_mail_pending Letters waiting in the outbox.\n\
         # TYPE keepmon_mail_pending gauge
keepmon_mail_pending {}\n\
         # HELP keepmon_mail_delivered_total Letters delivered.\n\
         # TYPE keepmon_mail_delivered_total counter
keepmon_mail_delivered_total {}\n\
         # HELP keepmon_mail_dead Letters given up on (dead letters kept).\n\
         # TYPE keepmon_mail_dead gauge
keepmon_mail_dead {}",
        mail.pending, mail.delivered, mail.dead_total
    );
}

/// A metric family of the Alertmanager queues: name, type, help, value.
type AlertmanagerFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::control::proto::AlertmanagerDump) -> u64,
);

fn render_alertmanagers(text: &mut String, targets: &[crate::control::proto::AlertmanagerDump]) {
    if targets.is_empty() {
        return;
    }
    let families: [AlertmanagerFamily; 3] = [
        (
            "keepmon_alertmanager_pending",
            "gauge",
            "Alert changes queued for an Alertmanager (statedir/alertmanager).",
            |a| a.pending as u64,
        ),
        (
            "keepmon_alertmanager_firing",
            "gauge",
            "Alerts re-sent to an Alertmanager while they fire.",
            |a| a.firing as u64,
        ),
        (
            "keepmon_alertmanager_posts_total",
            "counter",
            "Posts an Alertmanager accepted since the daemon started.",
            |a| a.delivered,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for target in targets {
            let _ = writeln!(
                text,
                "{name}{{url=\"{}\"}} {}",
                escape(&target.url),
                value(target)
            );
        }
    }
}

fn render_backends(text: &mut String, stats: &[(String, BackendStats)]) {
    if stats.is_empty() {
        return;
    }
    let mut family = |name: &str, help: &str, kind: &str, value: &dyn Fn(&BackendStats) -> u64| {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (vs, b) in stats {
            let _ = writeln!(
                text,
                "{name}{{virtual=\"{}\",real=\"{}\"}} {}",
                escape(vs),
                b.addr,
                value(b)
            );
        }
    };
    family(
        "keepmon_backend_active_connections",
        "Connections open through the proxy.",
        "gauge",
        &|b| b.active,
    );
    family(
        "keepmon_backend_connections_total",
        "Connections established through the proxy.",
        "counter",
        &|b| b.total,
    );
    family(
        "keepmon_backend_failures_total",
        "Failed connects to the real server.",
        "counter",
        &|b| b.failures,
    );
    let _ = writeln!(
        text,
        "# HELP keepmon_backend_bytes_total Bytes relayed (direction in = client to server).\n# TYPE keepmon_backend_bytes_total counter"
    );
    for (vs, b) in stats {
        for (direction, value) in [("in", b.bytes_in), ("out", b.bytes_out)] {
            let _ = writeln!(
                text,
                "keepmon_backend_bytes_total{{virtual=\"{}\",real=\"{}\",direction=\"{direction}\"}} {value}",
                escape(vs),
                b.addr
            );
        }
    }
    render_http_backends(text, stats);
}

/// http mode's per-server families: requests, responses by class, retries.
fn render_http_backends(text: &mut String, stats: &[(String, BackendStats)]) {
    let _ = writeln!(
        text,
        "# HELP keepmon_backend_http_requests_total HTTP requests sent to the real server (http mode).\n# TYPE keepmon_backend_http_requests_total counter"
    );
    for (vs, b) in stats {
        let _ = writeln!(
            text,
            "keepmon_backend_http_requests_total{{virtual=\"{}\",real=\"{}\"}} {}",
            escape(vs),
            b.addr,
            b.requests
        );
    }
    let _ = writeln!(
        text,
        "# HELP keepmon_backend_http_responses_total HTTP responses from the real server by class (http mode).\n# TYPE keepmon_backend_http_responses_total counter"
    );
    for (vs, b) in stats {
        for (class, value) in b.responses.iter().enumerate() {
            let _ = writeln!(
                text,
                "keepmon_backend_http_responses_total{{virtual=\"{}\",real=\"{}\",code=\"{}xx\"}} {value}",
                escape(vs),
                b.addr,
                class + 1
            );
        }
    }
    let _ = writeln!(
        text,
        "# HELP keepmon_backend_retries_total Requests retried on another real server after this one failed (http mode).\n# TYPE keepmon_backend_retries_total counter"
    );
    for (vs, b) in stats {
        let _ = writeln!(
            text,
            "keepmon_backend_retries_total{{virtual=\"{}\",real=\"{}\"}} {}",
            escape(vs),
            b.addr,
            b.retries
        );
    }
}

/// The last few thousand scheduling lags, for quantiles on the metrics page.
#[derive(Default)]
pub struct LagWindow {
    samples: VecDeque<Duration>,
}

impl LagWindow {
    const SIZE: usize = 4096;

    pub fn push(&mut self, lag: Duration) {
        if self.samples.len() == Self::SIZE {
            self.samples.pop_front();
        }
        self.samples.push_back(lag);
    }

    /// Quantiles (0.5, 0.99, max) in seconds; zeros before any sample.
    pub fn quantiles(&self) -> [f64; 3] {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort();
        let at = |q: f64| {
            let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted.get(i).map(Duration::as_secs_f64).unwrap_or(0.0)
        };
        [at(0.5), at(0.99), at(1.0)]
    }
}

/// The daemon and per-service part of the page.
fn render<'a>(
    services: impl Iterator<Item = ServiceMetrics<'a>>,
    scheduler_running: bool,
) -> String {
    let mut out = String::new();
    out.push_str("# HELP keepmon_up 1 while the keepmon daemon runs.\n# TYPE keepmon_up gauge\nkeepmon_up 1\n");
    out.push_str("# HELP keepmon_scheduler_running 1 unless the scheduler is paused.\n# TYPE keepmon_scheduler_running gauge\n");
    let _ = writeln!(
        out,
        "keepmon_scheduler_running {}",
        u8::from(scheduler_running)
    );
    let mut up = String::from(
        "# HELP keepmon_service_up 1 when the service passes (mon's success class).\n# TYPE keepmon_service_up gauge\n",
    );
    let mut status = String::from(
        "# HELP keepmon_service_opstatus mon's numeric opstatus.\n# TYPE keepmon_service_opstatus gauge\n",
    );
    let mut failures = String::from(
        "# HELP keepmon_service_failures_total Failed monitor runs.\n# TYPE keepmon_service_failures_total counter\n",
    );
    let mut alerts = String::from(
        "# HELP keepmon_service_alerts_total Alerts sent.\n# TYPE keepmon_service_alerts_total counter\n",
    );
    for s in services {
        let labels = format!(
            "group=\"{}\",service=\"{}\"",
            escape(s.group),
            escape(s.service)
        );
        let _ = writeln!(up, "keepmon_service_up{{{labels}}} {}", u8::from(s.up));
        let _ = writeln!(
            status,
            "keepmon_service_opstatus{{{labels}}} {}",
            s.opstatus
        );
        let _ = writeln!(
            failures,
            "keepmon_service_failures_total{{{labels}}} {}",
            s.failures
        );
        let _ = writeln!(
            alerts,
            "keepmon_service_alerts_total{{{labels}}} {}",
            s.alerts
        );
    }
    out + &up + &status + &failures + &alerts
}

/// Answer `GET /metrics` (and `/`) with the latest snapshot until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    snapshot: watch::Receiver<String>,
    shutdown: CancellationToken,
) {
    let limits = ConnectionLimits::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT);
    let mut logs = LogLimit::new(Duration::from_secs(10));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let permit = match limits.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                if let Some(suppressed) =
                    logs.allow_counting("refused", tokio::time::Instant::now())
                {
                    tracing::warn!(client = %peer, %refused, suppressed, "metrics client refused");
                }
                continue;
            }
        };
        let body = snapshot.borrow().clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = answer(stream, body).await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, body: String) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<(), std::io::Error>(())
    };
    if tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .is_err()
    {
        return Ok(());
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match (line.starts_with("GET "), path) {
        (true, "/metrics" | "/") => ("200 OK", body),
        (true, _) => ("404 Not Found", "not found: try /metrics\n".to_string()),
        (false, _) => ("405 Method Not Allowed", "only GET\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A client that does not read its answer is dropped at the deadline.
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(WRITE_DEADLINE, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client did not read the page in time",
        )),
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(from: &str, port: u16) -> String {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut stream = socket
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        // A refused connection is closed before or while we write.
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .await
            .ok();
        let mut answer = String::new();
        let read = stream.read_to_string(&mut answer);
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .ok();
        answer
    }

    /// Regression (issue 19, finding 8): the metrics page had no connection
    /// cap: one client could hold any number of connections (and fds).
    #[tokio::test]
    async fn one_client_gets_a_few_connections_others_still_get_the_page() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (_tx, rx) = watch::channel("up 1\n".to_string());
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, rx, shutdown.clone()));
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_CLIENT {
            idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            get("127.0.0.1", port).await,
            "",
            "over the per-client limit"
        );
        assert!(get("127.0.0.2", port).await.starts_with("HTTP/1.1 200 OK"));
        drop(idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(get("127.0.0.1", port).await.ends_with("up 1\n"));
        shutdown.cancel();
    }

    #[test]
    fn renders_exposition_format() {
        let text = render(
            [ServiceMetrics {
                group: "web",
                service: "ht\"tp",
                opstatus: 0,
                up: false,
                failures: 3,
                alerts: 1,
            }]
            .into_iter(),
            true,
        );
        assert!(text.contains("keepmon_up 1\n"));
        assert!(text.contains("keepmon_service_up{group=\"web\",service=\"ht\\\"tp\"} 0\n"));
        assert!(
            text.contains("keepmon_service_failures_total{group=\"web\",service=\"ht\\\"tp\"} 3\n")
        );
    }

    #[test]
    fn whole_page_has_lags_checks_and_backends() {
        let mut lags = LagWindow::default();
        for ms in [10, 20, 30] {
            lags.push(Duration::from_millis(ms));
        }
        let backends = vec![(
            "web".to_string(),
            BackendStats {
                addr: "127.0.0.1:80".parse().expect("address"),
                weight: 1,
                in_table: true,
                sorry: false,
                active: 2,
                total: 7,
                failures: 1,
                bytes_in: 10,
                bytes_out: 20,
                requests: 0,
                responses: [0; 5],
                retries: 0,
                queued: 0,
                queue_max: 0,
            },
        )];
        let lb: Report = serde_json::from_value(serde_json::json!({"services": [{
            "name": "web", "listen": "10.0.0.1:80", "protocol": "tcp", "scheduler": "wrr",
            "dataplane": "proxy", "persistence_secs": null, "implicit": false, "health": null,
            "quorum": 1, "hysteresis": 0, "quorum_up": true, "live_weight": 3,
            "sorry_server": null, "sorry_active": false, "sorry_conns": null,
            "real_servers": [{"addr": "127.0.0.1:80", "host": "127.0.0.1", "source": "config",
                "forward": "nat", "weight": 3, "effective_weight": 3, "in_dataplane": true,
                "health": "down", "admin": "drain", "inhibit_on_failure": false,
                "edit": null, "conns": null}]}]}))
        .expect("report");
        let vrrp: Vec<VrrpDump> = serde_json::from_value(serde_json::json!([{
            "name": "vi1", "interface": "eth0", "vrid": 51, "version": 2, "state": "MASTER",
            "priority": 100, "effective_priority": 90, "source": null, "master": null,
            "advert_int": 1.0, "virtual_addresses": [], "last_transition": null,
            "last_reason": "", "fault": null, "counters": {"adverts_sent": 5,
            "adverts_received": 0, "send_errors": 0, "malformed": 0, "bad_ttl": 2,
            "other_vrid": 0, "auth_mismatch": 0, "version_mismatch": 0,
            "interval_mismatch": 0, "address_mismatch": 0, "unknown_peer": 0,
            "transitions": 2, "garps_sent": 1}}]))
        .expect("vrrp");
        let mut durations = std::collections::BTreeMap::new();
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(9));
        durations.insert("web/http".to_string(), h.clone());
        let lua = crate::lua::LuaStats {
            runs: 5,
            limit_hits: 1,
            durations: h,
        };
        let text = render_page(
            std::iter::empty(),
            &DaemonFigures {
                scheduler_running: false,
                lags: &lags,
                checks: 42,
                backends: &backends,
                announcements: &[crate::control::proto::AnnounceDump {
                    name: "vip".into(),
                    prefix: "192.0.2.10/32".into(),
                    when: "quorum:web".into(),
                    wanted: true,
                    announced: true,
                    error: None,
                }],
                lua: &lua,
                mon_clients: crate::monproto::server::ClientStats {
                    connections: 2,
                    commands_total: 9,
                    ..Default::default()
                },
                lb: &lb,
                vrrp: &vrrp,
                mail: &MailDump {
                    pending: 4,
                    ..MailDump::default()
                },
                alertmanagers: &[crate::control::proto::AlertmanagerDump {
                    url: "http://127.0.0.1:9093".into(),
                    pending: 2,
                    ..Default::default()
                }],
                check_durations: &durations,
                web_requests: 7,
                web_connections: 1,
            },
        );
        for line in [
            "keepmon_real_server_up{virtual=\"web\",real=\"127.0.0.1:80\"} 0\n",
            "keepmon_real_server_weight{virtual=\"web\",real=\"127.0.0.1:80\"} 3\n",
            "keepmon_real_server_admin_state{virtual=\"web\",real=\"127.0.0.1:80\",state=\"drain\"} 1\n",
            "keepmon_virtual_service_quorum_up{virtual=\"web\"} 1\n",
            "keepmon_vrrp_state{vrrp_instance=\"vi1\",state=\"master\"} 1\n",
            "keepmon_vrrp_state{vrrp_instance=\"vi1\",state=\"backup\"} 0\n",
            "keepmon_vrrp_priority{vrrp_instance=\"vi1\"} 90\n",
            "keepmon_vrrp_transitions_total{vrrp_instance=\"vi1\"} 2\n",
            "keepmon_vrrp_dropped_total{vrrp_instance=\"vi1\",reason=\"bad_ttl\"} 2\n",
            "keepmon_mail_pending 4\n",
            "keepmon_alertmanager_pending{url=\"http://127.0.0.1:9093\"} 2\n",
            "keepmon_web_requests_total 7\n",
            "keepmon_check_duration_seconds_bucket{group=\"web\",service=\"http\",le=\"0.0025\"} 0\n",
            "keepmon_check_duration_seconds_bucket{group=\"web\",service=\"http\",le=\"0.005\"} 1\n",
            "keepmon_check_duration_seconds_bucket{group=\"web\",service=\"http\",le=\"5\"} 1\n",
            "keepmon_check_duration_seconds_bucket{group=\"web\",service=\"http\",le=\"+Inf\"} 2\n",
            "keepmon_check_duration_seconds_count{group=\"web\",service=\"http\"} 2\n",
        ] {
            assert!(text.contains(line), "missing {line}in\n{text}");
        }
        assert!(text.contains("keepmon_build_info{version=\""));
        assert!(text.contains("keepmon_scheduler_running 0\n"));
        assert!(text.contains("keepmon_schedule_lag_seconds{quantile=\"0.5\"} 0.02\n"));
        assert!(text.contains("keepmon_schedule_lag_seconds{quantile=\"1\"} 0.03\n"));
        assert!(text.contains("keepmon_checks_total 42\n"));
        assert!(text.contains("keepmon_lua_runs_total 5\n"));
        assert!(text.contains("keepmon_mon_connections 2\n"));
        assert!(text.contains("keepmon_mon_commands_total 9\n"));
        assert!(
            text.lines().all(|l| !l.starts_with(' ')),
            "every line starts at column 0:\n{text}"
        );
        assert!(text.contains("keepmon_lua_limit_hits_total 1\n"));
        assert!(text.contains("keepmon_lua_run_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("keepmon_lua_run_duration_seconds_count 2\n"));
        assert!(
            text.contains("keepmon_announce_active{name=\"vip\",prefix=\"192.0.2.10/32\"} 1\n")
        );
        assert!(text.contains(
            "keepmon_backend_active_connections{virtual=\"web\",real=\"127.0.0.1:80\"} 2\n"
        ));
        assert!(text.contains("keepmon_backend_bytes_total{virtual=\"web\",real=\"127.0.0.1:80\",direction=\"out\"} 20\n"));
    }
}
