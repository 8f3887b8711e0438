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
        if let Some(t) = s
            .last_check
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        {
            let local = t.with_timezone(&chrono::Local);
            let _ = writeln!(out, "    last check: {}", local.format("%Y-%m-%d %H:%M:%S"));
        }
        // The detail of a failing service (first lines; --json has all of it).
        if s.opstatus_code != 1 && s.opstatus_code != 7 {
            for line in s
                .last_detail
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(5)
            {
                let _ = writeln!(out, "    | {line}");
            }
        }
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
    if !d.lb_settings.is_empty() {
        let _ = writeln!(out, "lb run-time settings (kept across restarts):");
        for line in &d.lb_settings {
            let _ = writeln!(out, "  {line}");
        }
    }
    mail_section(&mut out, &d.mail);
    for am in &d.alertmanagers {
        alertmanager_section(&mut out, am);
    }
    if !d.vrrp.is_empty() {
        out.push_str(&vrrp_table(&d.vrrp));
    }
    if !d.announcements.is_empty() {
        out.push_str(&announce_table(&d.announcements));
    }
    if !d.alert_history.is_empty() {
        let _ = writeln!(out, "alert history (newest last):");
        for line in d.alert_history.iter().rev().take(20).rev() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// One Alertmanager: a line, then the silences covering keepmon's alerts.
fn alertmanager_section(out: &mut String, am: &crate::control::proto::AlertmanagerDump) {
    let _ = write!(
        out,
        "alertmanager {}: {} firing, {} pending, {} posted",
        am.url, am.firing, am.pending, am.delivered
    );
    if let Some(error) = &am.last_error {
        let _ = write!(out, "; last error: {error}");
    }
    out.push('\n');
    for s in &am.silences {
        let _ = writeln!(
            out,
            "  silenced by {} until {} ({}: {}): {}",
            s.id, s.ends_at, s.created_by, s.comment, s.matchers
        );
    }
}

/// The outbox: one line always, dead letters when there are any.
fn mail_section(out: &mut String, m: &crate::control::proto::MailDump) {
    let _ = write!(
        out,
        "mail: {}; {} pending, {} delivered, {} dead",
        m.route, m.pending, m.delivered, m.dead_total
    );
    if let (Some(error), true) = (&m.last_error, m.pending > 0) {
        let _ = write!(out, "; last error: {error}");
    }
    out.push('\n');
    if !m.dead_letters.is_empty() {
        let _ = writeln!(out, "dead letters (statedir/outbox/dead, newest last):");
        for d in &m.dead_letters {
            let died = chrono::DateTime::from_timestamp(d.died, 0)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_else(|| d.died.to_string());
            let _ = writeln!(
                out,
                "  {died} {} to {}: {}\n    {}",
                d.about,
                d.to.join(","),
                d.subject,
                d.reason
            );
        }
    }
}

/// Route announcements (in `dump` and `lb show`): one line each, then the
/// routing daemon's last error.
pub fn announce_table(announcements: &[crate::control::proto::AnnounceDump]) -> String {
    let mut out = String::from(
        "route announcements:
",
    );
    for a in announcements {
        let _ = writeln!(
            out,
            "  {:<16} {:<20} {:<10} when {}",
            a.name,
            a.prefix,
            match (a.wanted, a.announced) {
                (true, true) => "announced",
                (true, false) => "pending",
                (false, true) => "withdrawing",
                (false, false) => "withdrawn",
            },
            a.when
        );
    }
    if let Some(error) = announcements.iter().find_map(|a| a.error.as_ref()) {
        let _ = writeln!(out, "  routing daemon: {error}");
    }
    out
}

/// `keepmon vrrp show` (and the VRRP part of `dump`): one line per
/// instance, then its master, last transition and counters.
pub fn vrrp_table(instances: &[crate::control::proto::VrrpDump]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<8} {:>4} {:>2} {:<7} {:>9} {:<16} VIPS",
        "INSTANCE", "IFACE", "VRID", "V", "STATE", "PRIO/EFF", "MASTER"
    );
    for i in instances {
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>4} {:>2} {:<7} {:>9} {:<16} {}",
            i.name,
            i.interface,
            i.vrid,
            i.version,
            i.state,
            format!("{}/{}", i.priority, i.effective_priority),
            i.master.as_deref().unwrap_or("-"),
            i.virtual_addresses.join(" ")
        );
        let when = i
            .last_transition
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|| "never".to_string());
        let _ = writeln!(
            out,
            "    last transition: {when} ({}); advert {}s from {}",
            if i.last_reason.is_empty() {
                "-"
            } else {
                &i.last_reason
            },
            i.advert_int,
            i.source.as_deref().unwrap_or("-")
        );
        if let Some(fault) = &i.fault {
            let _ = writeln!(out, "    fault: {fault}");
        }
        if !i.bfd.is_empty() {
            let _ = writeln!(out, "    tracked bfd: {}", i.bfd.join(", "));
        }
        if let Some(group) = &i.sync_group {
            let _ = writeln!(
                out,
                "    sync group {group}: {}",
                i.sync_group_state.as_deref().unwrap_or("-")
            );
        }
        let c = &i.counters;
        let _ = writeln!(
            out,
            "    adverts sent {} received {}; dropped: malformed {} ttl {} auth {} version {} interval {} peer {}; other vrid {}; vip list differs {}; send errors {}",
            c.adverts_sent,
            c.adverts_received,
            c.malformed,
            c.bad_ttl,
            c.auth_mismatch,
            c.version_mismatch,
            c.interval_mismatch,
            c.unknown_peer,
            c.other_vrid,
            c.address_mismatch,
            c.send_errors
        );
    }
    out
}

/// `keepmon lb show`: `ipvsadm -Ln`'s layout with keepmon's columns added
/// (health, admin state, the weight in force).
pub fn lb_table(report: &crate::lb::table::Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Prot LocalAddress:Port Scheduler Flags  [name, data plane, quorum]"
    );
    let _ = writeln!(
        out,
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn Health  Admin  InForce"
    );
    for s in &report.services {
        let mut flags = String::new();
        if let Some(secs) = s.persistence_secs {
            let _ = write!(flags, "persistent {secs} ");
            if let Some(mask) = s.persistence_mask() {
                let _ = write!(flags, "mask {mask} ");
            }
        }
        let (prot, place) = s.ipvsadm_key();
        let _ = writeln!(
            out,
            "{:<4} {} {} {}[{}, {}, quorum {} {}{}]",
            prot,
            place,
            s.scheduler,
            flags,
            s.name,
            s.dataplane,
            s.quorum,
            if s.quorum_up { "up" } else { "LOST" },
            if s.sorry_active {
                ", sorry server active"
            } else {
                ""
            }
        );
        for r in &s.real_servers {
            let (active, inactive) = r.conns.map(|c| (c.active, c.inactive)).unwrap_or((0, 0));
            let in_force = match r.effective_weight {
                Some(w) => w.to_string(),
                None => "absent".to_string(),
            };
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<9} {:<7} {:<6} {}{}{}",
                r.addr.to_string(),
                forward_name(&r.forward),
                r.weight,
                active,
                inactive,
                r.health.to_string(),
                r.admin,
                in_force,
                if r.backup { " backup" } else { "" },
                r.edit
                    .map(|e| format!(" ({e} by alert)"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

/// `keepmon lb show --stats`: per virtual service and real server, the
/// data plane's totals (the shape of `ipvsadm -Ln --stats`, with failed
/// attempts where ipvsadm has packet counts). Members that left the table
/// are not listed; their connections drain unseen here (the metrics page
/// keeps them until they close).
pub fn lb_stats(report: &crate::lb::table::Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Prot LocalAddress:Port               Conns    Failed   InBytes  OutBytes"
    );
    let _ = writeln!(out, "  -> RemoteAddress:Port");
    for s in &report.services {
        let sum = s
            .real_servers
            .iter()
            .filter_map(|r| r.conns)
            .chain(s.sorry_conns)
            .fold([0u64; 4], |acc, c| {
                [
                    acc[0] + c.total,
                    acc[1] + c.failures,
                    acc[2] + c.bytes_in,
                    acc[3] + c.bytes_out,
                ]
            });
        let (prot, place) = s.ipvsadm_key();
        let _ = writeln!(
            out,
            "{:<4} {:<28} {:>8} {:>8} {:>9} {:>9}  [{}]",
            prot,
            place,
            sum[0],
            sum[1],
            human_bytes(sum[2]),
            human_bytes(sum[3]),
            s.name
        );
        for r in &s.real_servers {
            let c = r.conns.unwrap_or_default();
            let _ = write!(
                out,
                "  -> {:<28} {:>8} {:>8} {:>9} {:>9}",
                r.addr.to_string(),
                c.total,
                c.failures,
                human_bytes(c.bytes_in),
                human_bytes(c.bytes_out)
            );
            if c.requests > 0 {
                // http mode: requests, responses by class, retries.
                let [x1, x2, x3, x4, x5] = c.responses;
                let _ = write!(
                    out,
                    "  http {} req 1xx {x1} 2xx {x2} 3xx {x3} 4xx {x4} 5xx {x5} retried {}",
                    c.requests, c.retries
                );
            }
            out.push('\n');
        }
    }
    out
}

/// ipvsadm's `K`/`M`/`G` byte counts (powers of 1000, as `ipvsadm --stats`).
fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "K")];
    for (size, unit) in UNITS {
        if n >= size * 10 {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// ipvsadm's names for forwarding methods.
fn forward_name(forward: &str) -> &str {
    match forward {
        "nat" => "Masq",
        "dr" => "Route",
        "tun" => "Tunnel",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_are_shortened_like_ipvsadm() {
        assert_eq!(human_bytes(0), "0");
        assert_eq!(human_bytes(9_999), "9999");
        assert_eq!(human_bytes(10_000), "10K");
        assert_eq!(human_bytes(9_999_999), "9999K");
        assert_eq!(human_bytes(12_345_678), "12M");
        assert_eq!(human_bytes(99_999_999), "99M");
        assert_eq!(human_bytes(100_000_000), "100M");
        assert_eq!(human_bytes(20_000_000_000), "20G");
    }
}
