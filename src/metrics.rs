//! The Prometheus text page: renders the figures the supervisor hands over (services, scheduling lag, checks, proxy backends) and serves the latest rendering; never touches service state itself.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::lb::proxy::BackendStats;
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
    text
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
            },
        )];
        let text = render_page(
            std::iter::empty(),
            &DaemonFigures {
                scheduler_running: false,
                lags: &lags,
                checks: 42,
                backends: &backends,
            },
        );
        assert!(text.contains("keepmon_scheduler_running 0\n"));
        assert!(text.contains("keepmon_schedule_lag_seconds{quantile=\"0.5\"} 0.02\n"));
        assert!(text.contains("keepmon_schedule_lag_seconds{quantile=\"1\"} 0.03\n"));
        assert!(text.contains("keepmon_checks_total 42\n"));
        assert!(text.contains(
            "keepmon_backend_active_connections{virtual=\"web\",real=\"127.0.0.1:80\"} 2\n"
        ));
        assert!(text.contains("keepmon_backend_bytes_total{virtual=\"web\",real=\"127.0.0.1:80\",direction=\"out\"} 20\n"));
    }
}
