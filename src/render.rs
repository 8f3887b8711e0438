//! Human-readable rendering of daemon reports for the CLI (`keepmon dump`); pure string building.

use std::fmt::Write;

use crate::control::proto::DumpReport;

/// `keepmon dump` as a table: one block per service, hosts indented under it.
pub fn dump_table(d: &DumpReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scheduler {}",
        if d.scheduler_running {
            "running"
        } else {
            "stopped"
        }
    );
    let _ = writeln!(
        out,
        "{:<24} {:<10} {:>6} {:>8} {:>9}  SUMMARY",
        "GROUP/SERVICE", "STATUS", "ALERTS", "FAILURES", "NEXT RUN"
    );
    for s in &d.services {
        let mut status = s.opstatus.clone();
        if s.disabled || s.watch_disabled {
            status.push_str("(dis)");
        }
        if s.ack.is_some() {
            status.push_str("(ack)");
        }
        let next = match (s.running, s.next_run_in) {
            (true, _) => "running".to_string(),
            (false, Some(secs)) => format!("{secs:.1}s"),
            (false, None) => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:>6} {:>8} {:>9}  {}",
            format!("{}/{}", s.group, s.service),
            status,
            s.alerts_sent,
            s.failures,
            next,
            s.last_summary
        );
        let _ = writeln!(out, "    monitor: {}", s.monitor);
        for h in &s.hosts {
            let state = match (h.disabled, h.up) {
                (true, _) => "disabled",
                (false, true) => "up",
                (false, false) => "down",
            };
            let reason = h
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let _ = writeln!(out, "    {:<20} {state}{reason}", h.host);
        }
        if let Some(ack) = &s.ack {
            let _ = writeln!(out, "    ack: {ack}");
        }
    }
    if !d.alert_history.is_empty() {
        let _ = writeln!(out, "alert history (newest last):");
        for line in d.alert_history.iter().rev().take(20).rev() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}
