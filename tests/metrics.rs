//! The Prometheus page of a running daemon: every family the dashboards use is there, and Debian's `promtool check metrics` finds nothing to lint.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use common::daemon::{Fixture, closed_port};

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[test]
fn the_metrics_page_is_complete_and_promtool_clean() {
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    let metrics = closed_port();
    let mut f = Fixture::new("metrics-page");
    f.write_config(
        up_port,
        closed_port(),
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\n\
             [web]\nlisten = \"127.0.0.1:{}\"\n\n\
             [virtual_servers.www]\nlisten = \"127.0.0.1:{}\"\nhealth = \"local:up\"\n\
             real_servers = [{{ addr = \"127.0.0.1:{up_port}\" }}]\n",
            closed_port(),
            closed_port()
        ),
    );
    f.start();
    f.wait_for(
        |_| {
            scrape(metrics)
                .contains("keepmon_check_duration_seconds_count{group=\"local\",service=\"down\"}")
        },
        "check durations on the metrics page",
    );
    let text = scrape(metrics);
    for family in [
        "keepmon_service_up",
        "keepmon_check_duration_seconds_bucket",
        "keepmon_real_server_up{virtual=\"www\"",
        "keepmon_real_server_weight",
        "keepmon_real_server_admin_state",
        "keepmon_virtual_service_quorum_up",
        "keepmon_backend_connections_total",
        "keepmon_mail_pending",
        "keepmon_mail_delivered_total",
        "keepmon_web_requests_total",
        "keepmon_build_info{",
    ] {
        assert!(text.contains(family), "no {family} in\n{text}");
    }
    let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        common::not_run("promtool check metrics: Debian's prometheus is not installed");
        return;
    };
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n--- page ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shipped Grafana dashboard asks only for metrics keepmon writes.
#[test]
fn the_grafana_dashboard_uses_metrics_keepmon_writes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/etc/grafana/keepmon-dashboard.json"))
            .expect("dashboard"),
    )
    .expect("dashboard is JSON");
    let source = std::fs::read_to_string(format!("{root}/src/metrics.rs")).expect("metrics.rs");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "a dashboard worth importing");
    let mut names = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("keepmon_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.push(name);
            }
        }
    }
    assert!(!names.is_empty());
    for name in names {
        // Histograms are written as NAME, their series as NAME_bucket.
        let family = name.trim_end_matches("_bucket");
        assert!(
            [" ", "{", "\""]
                .iter()
                .any(|end| source.contains(&format!("{family}{end}"))),
            "the dashboard uses {name}, which src/metrics.rs does not write"
        );
    }
}
