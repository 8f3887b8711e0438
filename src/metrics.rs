//! The Prometheus text endpoint: serves the latest snapshot the supervisor rendered; never touches service state itself.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One service's figures for the metrics page.
pub struct ServiceMetrics<'a> {
    pub group: &'a str,
    pub service: &'a str,
    pub opstatus: u8,
    pub up: bool,
    pub failures: u64,
    pub alerts: u64,
}

/// Render the Prometheus text exposition format.
pub fn render<'a>(
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
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let body = snapshot.borrow().clone();
        tokio::spawn(async move {
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
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
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
}
