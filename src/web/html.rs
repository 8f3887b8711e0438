//! The server-rendered pages: the main status page (director header, services failing first, virtual servers, VRRP, alert history, mail outbox) and a page per service (details, hosts, actions, check chart, downtime log); plain HTML and inline CSS, a few lines of JavaScript that refresh in place.

use std::fmt::Write;

use super::{ServiceExtra, View, percent_encode};
use crate::control::proto::ServiceDump;
use crate::lb::table::{Health, RealReport, ServiceReport};

/// How often the page's script refreshes it, and the `<noscript>` refresh.
pub const REFRESH_SECS: u32 = 5;

/// Does the page show this service as failing?
pub fn is_failing(s: &ServiceDump) -> bool {
    matches!(
        s.opstatus.as_str(),
        "fail" | "linkdown" | "timeout" | "configerr"
    )
}

/// The main page.
pub fn main_page(view: &View) -> String {
    let mut body = String::with_capacity(4096 + view.dump.services.len() * 600);
    header(&mut body, view);
    services_section(&mut body, view);
    lb_section(&mut body, view);
    vrrp_section(&mut body, view);
    announce_section(&mut body, view);
    history_section(&mut body, view);
    mail_section(&mut body, view);
    document(&format!("keepmon · {}", view.hostname), &body)
}

/// The page of one service; None when there is no such service.
pub fn service_page(view: &View, group: &str, service: &str) -> Option<String> {
    let s = view
        .dump
        .services
        .iter()
        .find(|s| s.group == group && s.service == service)?;
    let key = format!("{group}/{service}");
    let empty = ServiceExtra::default();
    let extra = view.extra.get(&key).unwrap_or(&empty);
    let mut body = String::with_capacity(8192);
    header(&mut body, view);
    let _ = write!(
        body,
        "<section><h2><a href=\"/\">services</a> › {}</h2><table class=\"kv\">",
        esc(&key)
    );
    let status = status_badge(s);
    let rows: [(&str, String); 9] = [
        ("status", status),
        ("since", ago(view.now, extra.since)),
        ("monitor", esc(&s.monitor)),
        ("summary", esc(&s.last_summary)),
        ("detail", format!("<pre>{}</pre>", esc(&s.last_detail))),
        ("last check", ago(view.now, s.last_check)),
        ("next check", next_check(s)),
        (
            "failures / alerts",
            format!("{} / {}", s.failures, s.alerts_sent),
        ),
        (
            "ack",
            s.ack.as_ref().map_or_else(String::new, |a| {
                format!("{} ({})", esc(a), ago(view.now, extra.ack_time))
            }),
        ),
    ];
    for (name, value) in rows {
        let _ = write!(body, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    body.push_str("</table></section>");

    body.push_str("<section><h2>hosts</h2><table><tr><th>host</th><th>state</th><th>reason</th><th></th></tr>");
    for h in &s.hosts {
        let (class, word) = match (h.disabled, h.up) {
            (true, _) => ("off", "disabled"),
            (false, true) => ("up", "up"),
            (false, false) => ("down", "down"),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td><span class=\"b {class}\">{word}</span></td><td>{}</td><td>{}</td></tr>",
            esc(&h.host),
            esc(h.reason.as_deref().unwrap_or("")),
            form(
                &view.csrf,
                &key_back(group, service),
                if h.disabled { "enable" } else { "disable" },
                &[("host", &h.host)],
                if h.disabled {
                    "enable host"
                } else {
                    "disable host"
                },
                "",
            )
        );
    }
    body.push_str("</table></section>");

    body.push_str("<section><h2>actions</h2><div class=\"actions\">");
    let back = key_back(group, service);
    let target = [("group", group), ("service", service)];
    if is_failing(s) && s.ack.is_none() {
        body.push_str(&form(&view.csrf, &back, "ack", &target, "ack", "comment"));
    }
    let toggle = if s.disabled { "enable" } else { "disable" };
    body.push_str(&form(&view.csrf, &back, toggle, &target, toggle, ""));
    body.push_str(&form(
        &view.csrf,
        &back,
        "test_alert",
        &target,
        "test alert",
        "",
    ));
    body.push_str("</div></section>");

    body.push_str("<section><h2>checks</h2>");
    chart(&mut body, &extra.samples);
    body.push_str("</section>");

    body.push_str("<section><h2>downtime log</h2><table class=\"log\">");
    let prefix = format!("{group} {service} ");
    let mut any = false;
    for line in view.failure_history.iter().rev() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            any = true;
            let (time, summary) = rest.split_once(' ').unwrap_or((rest, ""));
            let time = time.parse::<i64>().ok();
            let _ = write!(
                body,
                "<tr><td class=\"t\">{}</td><td>went down: {}</td></tr>",
                clock(time),
                esc(summary)
            );
        }
    }
    if !any {
        body.push_str("<tr><td>no failure recorded</td></tr>");
    }
    body.push_str("</table></section>");
    Some(document(&format!("{key} · keepmon"), &body))
}

fn key_back(group: &str, service: &str) -> String {
    format!(
        "/service/{}/{}",
        percent_encode(group),
        percent_encode(service)
    )
}

fn header(out: &mut String, view: &View) {
    let failing = view.dump.services.iter().filter(|s| is_failing(s)).count();
    let unacked = view
        .dump
        .services
        .iter()
        .filter(|s| is_failing(s) && s.ack.is_none() && !s.disabled && !s.watch_disabled)
        .count();
    let _ = write!(
        out,
        "<header><h1><a href=\"/\">keepmon</a> <span>{}</span></h1><div class=\"facts\">\
         <span>up {}</span><span>scheduler {}</span>\
         <span class=\"{}\">{} of {} services failing</span>",
        esc(&view.hostname),
        duration(view.now - view.started),
        if view.dump.scheduler_running {
            "running"
        } else {
            "<b class=\"warn\">stopped</b>"
        },
        match (failing, unacked) {
            (0, _) => "good",
            (_, 0) => "ackd",
            _ => "bad",
        },
        failing,
        view.dump.services.len()
    );
    for v in &view.dump.vrrp {
        let _ = write!(
            out,
            "<span class=\"vr {}\">{} {} · prio {}</span>",
            esc(&v.state.to_ascii_lowercase()),
            esc(&v.name),
            esc(&v.state),
            v.effective_priority
        );
    }
    let _ = write!(
        out,
        "<span id=\"updated\" data-now=\"{}\">as of {}</span></div></header>",
        view.now,
        clock(Some(view.now))
    );
}

fn status_badge(s: &ServiceDump) -> String {
    let (class, word) = if s.disabled || s.watch_disabled {
        ("off", "disabled".to_string())
    } else if is_failing(s) && s.ack.is_some() {
        ("ack", format!("{} (acked)", s.opstatus))
    } else if is_failing(s) {
        ("down", s.opstatus.clone())
    } else if s.opstatus == "ok" {
        ("up", "ok".to_string())
    } else {
        ("wait", s.opstatus.clone())
    };
    format!("<span class=\"b {class}\">{}</span>", esc(&word))
}

fn services_section(out: &mut String, view: &View) {
    let mut rows: Vec<&ServiceDump> = view.dump.services.iter().collect();
    rows.sort_by_key(|s| (!is_failing(s), s.group.as_str(), s.service.as_str()));
    let _ = write!(
        out,
        "<section><h2>services</h2><table id=\"services\"><thead><tr><th>service</th><th>status</th>\
         <th>since</th><th>summary</th><th>last check</th><th>next</th><th>hosts</th>\
         <th>alerts</th><th>ack</th></tr></thead><tbody>"
    );
    for s in rows {
        let key = format!("{}/{}", s.group, s.service);
        let extra = view.extra.get(&key);
        let class = if s.disabled || s.watch_disabled {
            "off"
        } else if is_failing(s) && s.ack.is_some() {
            "acked"
        } else if is_failing(s) {
            "failing"
        } else {
            "ok"
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"sum\">{}</td>\
             <td>{}</td><td>{}</td><td>",
            key_back(&s.group, &s.service),
            esc(&key),
            status_badge(s),
            ago(view.now, extra.and_then(|e| e.since)),
            esc(&s.last_summary),
            ago(view.now, s.last_check),
            next_check(s)
        );
        for h in &s.hosts {
            let class = match (h.disabled, h.up) {
                (true, _) => "off",
                (false, true) => "up",
                (false, false) => "down",
            };
            let _ = write!(
                out,
                "<span class=\"h {class}\" title=\"{}\">{}</span>",
                esc(h.reason.as_deref().unwrap_or(class)),
                esc(&h.host)
            );
        }
        let _ = write!(out, "</td><td class=\"n\">{}</td><td>", s.alerts_sent);
        match &s.ack {
            Some(comment) => out.push_str(&esc(comment)),
            None if is_failing(s) && !s.disabled => out.push_str(&form(
                &view.csrf,
                "/",
                "ack",
                &[("group", &s.group), ("service", &s.service)],
                "ack",
                "comment",
            )),
            None => {}
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></section>");
}

fn lb_section(out: &mut String, view: &View) {
    if view.lb.services.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>virtual servers</h2><table id=\"lb\"><thead><tr><th>server</th><th>health</th>\
         <th>admin</th><th>weight</th><th>active</th><th>inactive</th><th>total</th>\
         <th>bytes in</th><th>bytes out</th><th>errors</th><th>last check</th><th></th></tr></thead>",
    );
    for vs in &view.lb.services {
        vs_rows(out, view, vs);
    }
    out.push_str("</table></section>");
}

fn vs_rows(out: &mut String, view: &View, vs: &ServiceReport) {
    let up = vs.real_servers.iter().filter(|r| r.health.is_up()).count();
    let _ = write!(
        out,
        "<tbody><tr class=\"vs {}\"><th colspan=\"12\">{} <small>{} {} · {} · {}</small> \
         <span class=\"b {}\">quorum {} · needs {} · live weight {}</span> {} of {} real servers up{}</th></tr>",
        if vs.quorum_up { "ok" } else { "failing" },
        esc(&vs.name),
        vs.protocol,
        vs.listen_text(),
        esc(&vs.scheduler),
        esc(&vs.dataplane),
        if vs.quorum_up { "up" } else { "down" },
        if vs.quorum_up { "up" } else { "lost" },
        vs.quorum,
        vs.live_weight,
        up,
        vs.real_servers.len(),
        if vs.sorry_active {
            " · <b class=\"warn\">sorry server active</b>"
        } else {
            ""
        }
    );
    for rs in &vs.real_servers {
        rs_row(out, view, vs, rs);
    }
    out.push_str("</tbody>");
}

fn rs_row(out: &mut String, view: &View, vs: &ServiceReport, rs: &RealReport) {
    let (class, word) = match rs.health {
        Health::Up => ("up", "up"),
        Health::Down => ("down", "down"),
        Health::Unknown => ("wait", "unchecked"),
    };
    let conns = rs.conns.unwrap_or_default();
    // The last check of this real server: its host's line in the health service.
    let check = vs
        .health
        .as_deref()
        .and_then(|h| h.split_once(':'))
        .and_then(|(g, s)| {
            view.dump
                .services
                .iter()
                .find(|d| d.group == g && d.service == s)
        })
        .map(|d| {
            let reason = d
                .hosts
                .iter()
                .find(|h| h.host == rs.host)
                .and_then(|h| h.reason.clone())
                .unwrap_or_else(|| "ok".into());
            let millis = view
                .extra
                .get(&format!("{}/{}", d.group, d.service))
                .and_then(|e| e.samples.last())
                .map_or(String::new(), |s| format!(" · {}", ms(s.micros)));
            format!("{}{millis}", esc(&reason))
        })
        .unwrap_or_default();
    let row_class = if rs.health == Health::Down {
        "failing"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<tr class=\"{row_class}\"><td>{} <small>{}</small></td><td><span class=\"b {class}\">{word}</span></td>\
         <td>{}</td><td class=\"n\">{} <small>/ {}</small></td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"acts\">",
        rs.addr,
        esc(&rs.host),
        esc(&rs.admin),
        rs.effective_weight
            .map_or("–".to_string(), |w| w.to_string()),
        rs.weight,
        conns.active,
        conns.inactive,
        conns.total,
        bytes(conns.bytes_in),
        bytes(conns.bytes_out),
        conns.failures,
        check
    );
    let addr = rs.addr.to_string();
    out.push_str(&form(
        &view.csrf,
        "/",
        "lb",
        &[
            ("virtual_service", &vs.name),
            ("real_server", &addr),
            ("change", "weight"),
        ],
        "weight",
        "weight",
    ));
    for change in ["drain", "maint", "ready"] {
        if rs.admin != change {
            out.push_str(&form(
                &view.csrf,
                "/",
                "lb",
                &[
                    ("virtual_service", &vs.name),
                    ("real_server", &addr),
                    ("change", change),
                ],
                change,
                "",
            ));
        }
    }
    out.push_str("</td></tr>");
}

fn vrrp_section(out: &mut String, view: &View) {
    if view.dump.vrrp.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>vrrp</h2><table><tr><th>instance</th><th>state</th><th>priority</th>\
         <th>master</th><th>addresses</th><th>last transition</th><th>adverts in/out</th><th>dropped</th></tr>",
    );
    for v in &view.dump.vrrp {
        let c = &v.counters;
        let dropped = c.malformed
            + c.bad_ttl
            + c.other_vrid
            + c.auth_mismatch
            + c.version_mismatch
            + c.interval_mismatch
            + c.address_mismatch
            + c.unknown_peer;
        let _ = write!(
            out,
            "<tr><td>{} <small>{} vrid {}</small></td><td><span class=\"vr {}\">{}</span>{}</td>\
             <td class=\"n\">{} <small>/ {}</small></td><td>{}</td><td>{}</td><td>{} {}</td>\
             <td class=\"n\">{} / {}</td><td class=\"n\">{}</td></tr>",
            esc(&v.name),
            esc(&v.interface),
            v.vrid,
            esc(&v.state.to_ascii_lowercase()),
            esc(&v.state),
            v.fault
                .as_ref()
                .map_or(String::new(), |f| format!(" <small>{}</small>", esc(f))),
            v.effective_priority,
            v.priority,
            esc(v.master.as_deref().unwrap_or("–")),
            esc(&v.virtual_addresses.join(" ")),
            ago(view.now, v.last_transition),
            esc(&v.last_reason),
            c.adverts_received,
            c.adverts_sent,
            dropped
        );
    }
    out.push_str("</table></section>");
}

fn announce_section(out: &mut String, view: &View) {
    if view.dump.announcements.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>route announcements</h2><table><tr><th>name</th><th>prefix</th>\
         <th>state</th><th>when</th></tr>",
    );
    for a in &view.dump.announcements {
        let (class, word) = match (a.wanted, a.announced) {
            (true, true) => ("up", "announced"),
            (true, false) => ("ack", "pending"),
            (false, true) => ("ack", "withdrawing"),
            (false, false) => ("down", "withdrawn"),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><span class=\"b {class}\">{word}</span></td><td><code>{}</code></td></tr>",
            esc(&a.name),
            esc(&a.prefix),
            esc(&a.when)
        );
    }
    out.push_str("</table>");
    if let Some(error) = view
        .dump
        .announcements
        .iter()
        .find_map(|a| a.error.as_ref())
    {
        let _ = write!(out, "<p>routing daemon: {}</p>", esc(error));
    }
    out.push_str("</section>");
}

fn history_section(out: &mut String, view: &View) {
    out.push_str("<section><h2>alert history</h2><table class=\"log\">");
    if view.dump.alert_history.is_empty() {
        out.push_str("<tr><td>no alerts yet</td></tr>");
    }
    for line in view.dump.alert_history.iter().rev().take(30) {
        let _ = write!(out, "<tr><td>{}</td></tr>", esc(&with_clock(line)));
    }
    out.push_str("</table></section>");
}

fn mail_section(out: &mut String, view: &View) {
    let m = &view.dump.mail;
    let _ = write!(
        out,
        "<section><h2>mail outbox</h2><p>via {} · <b class=\"{}\">{} pending</b>{} · {} delivered · <b class=\"{}\">{} dead</b>{}</p>",
        esc(&m.route),
        if m.pending > 0 { "warn" } else { "" },
        m.pending,
        m.oldest_pending.map_or(String::new(), |t| format!(
            " (oldest {})",
            ago(view.now, Some(t))
        )),
        m.delivered,
        if m.dead_total > 0 { "bad" } else { "" },
        m.dead_total,
        m.last_error
            .as_ref()
            .map_or(String::new(), |e| format!(" · last error: {}", esc(e)))
    );
    if !m.dead_letters.is_empty() {
        out.push_str(
            "<table><tr><th>died</th><th>about</th><th>to</th><th>subject</th><th>reason</th></tr>",
        );
        for d in &m.dead_letters {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ago(view.now, Some(d.died)),
                esc(&d.about),
                esc(&d.to.join(", ")),
                esc(&d.subject),
                esc(&d.reason)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
}

/// A small POST form for one action; `input` names a text field to show.
fn form(
    csrf: &str,
    back: &str,
    op: &str,
    fields: &[(&str, &str)],
    label: &str,
    input: &str,
) -> String {
    let mut out = format!(
        "<form method=\"post\" action=\"/action\" class=\"act\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"back\" value=\"{}\"><input type=\"hidden\" name=\"op\" value=\"{}\">",
        esc(csrf),
        esc(back),
        esc(op)
    );
    for (name, value) in fields {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(name),
            esc(value)
        );
    }
    match input {
        "" => {}
        "weight" => out.push_str(
            "<input name=\"weight\" type=\"number\" min=\"0\" max=\"65535\" placeholder=\"weight\" style=\"width:6.5em\" required>",
        ),
        _ => {
            let _ = write!(
                out,
                "<input name=\"{0}\" placeholder=\"{0}\" size=\"12\">",
                esc(input)
            );
        }
    }
    let _ = write!(out, "<button>{}</button></form>", esc(label));
    out
}

/// The check chart: latency as a line, failed checks as red bars.
fn chart(out: &mut String, samples: &[super::Sample]) {
    if samples.is_empty() {
        out.push_str("<p>no checks since the daemon started</p>");
        return;
    }
    let (w, h) = (900.0_f64, 140.0_f64);
    let first = samples[0].time;
    let last = samples[samples.len() - 1].time.max(first + 1);
    let span = (last - first) as f64;
    let top = samples.iter().map(|s| s.micros).max().unwrap_or(1).max(1);
    let max = f64::from(top);
    let x = |t: i64| 40.0 + (t - first) as f64 / span * (w - 50.0);
    let y = |m: u32| h - 20.0 - f64::from(m) / max * (h - 35.0);
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" aria-label=\"check latency\">\
         <line x1=\"40\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" class=\"axis\"/>\
         <text x=\"2\" y=\"12\">{6}</text><text x=\"2\" y=\"{0}\">0</text>\
         <text x=\"40\" y=\"{2}\">{3}</text><text x=\"{4}\" y=\"{2}\" text-anchor=\"end\">{5}</text>",
        h - 20.0,
        w - 10.0,
        h - 4.0,
        clock(Some(first)),
        w - 10.0,
        clock(Some(last)),
        ms(top),
    );
    for s in samples.iter().filter(|s| !s.up) {
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"15\" width=\"3\" height=\"{}\" class=\"down\"/>",
            x(s.time) - 1.5,
            h - 35.0
        );
    }
    let points: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s.time), y(s.micros)))
        .collect();
    let _ = write!(
        out,
        "<polyline points=\"{}\" class=\"lat\"/></svg><p><small>{} checks, {} failed; latest {}; line: check latency, red bars: failed checks</small></p>",
        points.join(" "),
        samples.len(),
        samples.iter().filter(|s| !s.up).count(),
        ms(samples[samples.len() - 1].micros)
    );
}

/// Microseconds as milliseconds for people.
fn ms(micros: u32) -> String {
    if micros >= 10_000 {
        format!("{} ms", micros / 1000)
    } else {
        format!("{:.2} ms", f64::from(micros) / 1000.0)
    }
}

fn next_check(s: &ServiceDump) -> String {
    if s.running {
        return "running".into();
    }
    s.next_run_in.map_or("–".into(), |secs| {
        format!("in {}", duration(secs.round() as i64))
    })
}

/// "3m ago" (or "–").
fn ago(now: i64, when: Option<i64>) -> String {
    match when {
        Some(t) if t > 0 => format!(
            "<span title=\"{}\">{} ago</span>",
            clock(Some(t)),
            duration(now - t)
        ),
        _ => "–".into(),
    }
}

/// A span of seconds, in its two largest units.
fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A unix time as UTC `YYYY-MM-DD HH:MM:SS`.
fn clock(when: Option<i64>) -> String {
    when.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map_or("–".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A history line with its unix time shown as a date.
fn with_clock(line: &str) -> String {
    line.split(' ')
        .map(|word| match word.parse::<i64>() {
            Ok(t) if (1_000_000_000..10_000_000_000).contains(&t) => clock(Some(t)),
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// HTML-escape text for element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><noscript><meta http-equiv=\"refresh\" content=\"30\"></noscript>\
         <style>{STYLE}</style></head><body><div id=\"live\">{body}</div>\
         <script>{SCRIPT}</script></body></html>",
        esc(title)
    )
}

const STYLE: &str = "\
:root{--bad:#c62828;--badbg:#fdecea;--ok:#2e7d32;--okbg:#e8f5e9;--warn:#b26a00;--warnbg:#fff4e0;--off:#757575;--line:#e3e6ea}\
*{box-sizing:border-box}body{margin:0;font:13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;background:#f6f7f9}\
header{position:sticky;top:0;z-index:2;background:#1f2933;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;align-items:baseline;gap:16px}\
header h1{margin:0;font-size:18px}header h1 a{color:#fff;text-decoration:none}header h1 span{font-weight:400;opacity:.8}\
.facts{display:flex;flex-wrap:wrap;gap:12px;align-items:baseline}.facts>span{opacity:.95}\
.facts .bad{background:var(--bad);color:#fff;padding:1px 8px;border-radius:10px;font-weight:600}.facts .ackd{background:var(--warn);color:#fff;padding:1px 8px;border-radius:10px}.facts .good{background:var(--ok);padding:1px 8px;border-radius:10px}\
#updated{opacity:.6;font-size:12px}#updated.lost{opacity:1;color:#ffb4ab;font-weight:600}\
section{margin:12px 16px;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px;overflow-x:auto}\
h2{font-size:14px;margin:2px 0 8px;text-transform:uppercase;letter-spacing:.04em;color:#57606a}h2 a{color:inherit}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line);vertical-align:top}\
th{font-weight:600;color:#57606a;font-size:12px}td.n{text-align:right;font-variant-numeric:tabular-nums}td.sum{max-width:360px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
tr.failing td{background:var(--badbg)}tr.failing td:first-child{border-left:4px solid var(--bad)}tr.failing a{color:var(--bad);font-weight:600}\
tr.acked td{background:var(--warnbg)}tr.off td{color:var(--off)}\
tr.vs th{background:#eef1f4;color:#1f2328;font-size:13px;padding-top:6px}tr.vs.failing th{background:var(--badbg)}tr.vs small{font-weight:400;color:#57606a}\
.b{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}\
.b.up{background:var(--okbg);color:var(--ok)}.b.down{background:var(--bad);color:#fff}.b.ack{background:var(--warnbg);color:var(--warn)}\
.b.off{background:#eee;color:var(--off)}.b.wait{background:#eef1f4;color:#57606a}\
.h{display:inline-block;margin:0 3px 2px 0;padding:0 5px;border-radius:3px;font-size:12px}.h.up{background:var(--okbg);color:var(--ok)}\
.h.down{background:var(--bad);color:#fff}.h.off{background:#eee;color:var(--off);text-decoration:line-through}\
.vr{padding:1px 8px;border-radius:10px;background:#57606a;color:#fff}.vr.master{background:var(--ok)}.vr.backup{background:#0b61a4}.vr.fault{background:var(--bad)}\
.warn{color:var(--warn)}.bad{color:var(--bad)}\
td.acts{white-space:nowrap}form.act{display:inline-flex;gap:3px;margin:0 4px 0 0}form.act input{font:inherit;padding:0 4px}\
button{font:inherit;font-size:12px;padding:0 8px;border:1px solid #8c959f;border-radius:4px;background:#fff;cursor:pointer}button:hover{background:#eef1f4}\
table.kv th{width:140px}pre{margin:0;white-space:pre-wrap}table.log td{font-family:ui-monospace,monospace;font-size:12px}td.t{white-space:nowrap;width:160px}\
.chart{max-width:1100px}.chart text{font-size:11px;fill:#57606a}.chart .axis{stroke:#8c959f}.chart .lat{fill:none;stroke:#0b61a4;stroke-width:1.5}.chart .down{fill:var(--bad);opacity:.5}\
.actions{display:flex;gap:8px}";

/// Refresh the page in place; skipped while the operator types in a form.
const SCRIPT: &str = "\
(function(){var count=0;\
function busy(){var a=document.activeElement;return a&&a.tagName==='INPUT'&&a.value!=='';}\
function tick(){if(busy()){return;}fetch(location.href,{cache:'no-store'}).then(function(r){return r.text();}).then(function(t){\
var d=new DOMParser().parseFromString(t,'text/html');var n=d.getElementById('live');\
if(n){document.getElementById('live').replaceWith(n);document.body.setAttribute('data-refreshed',++count);}}).catch(function(){var e=document.getElementById('updated');\
if(e){e.textContent='connection lost';e.className='lost';}});}\
setInterval(tick,5000);})();";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::View;

    fn service(group: &str, name: &str, opstatus: &str, summary: &str) -> serde_json::Value {
        serde_json::json!({"group": group, "service": name, "opstatus": opstatus,
            "opstatus_code": 0, "disabled": false, "watch_disabled": false, "monitor": "tcp port 1",
            "hosts": [{"host": "h<1>", "up": opstatus == "ok", "disabled": false, "reason": null}],
            "last_check": 1_700_000_000, "last_summary": summary, "last_detail": "",
            "next_run_in": 3.0, "running": false, "alerts_sent": 0, "failures": 0, "ack": null})
    }

    fn view(services: Vec<serde_json::Value>) -> View {
        View {
            now: 1_700_000_100,
            hostname: "director".into(),
            config: "keepmon.toml".into(),
            pid: 1,
            started: 1_700_000_000,
            dump: serde_json::from_value(serde_json::json!({"scheduler_running": true,
                "services": services, "disabled_hosts": [], "alert_history": [],
                "lb_changes": [], "mail": {"route": "none", "pending": 0, "oldest_pending": null,
                "last_error": null, "delivered": 0, "dead_total": 0, "dead_letters": []},
                "vrrp": []}))
            .expect("dump"),
            lb: crate::lb::table::Report { services: vec![] },
            extra: Default::default(),
            failure_history: vec!["web <b>x</b> 1700000050 h<1>".into()],
            csrf: "t\"ok".into(),
            stats: crate::web::stats::StatsData::default(),
        }
    }

    #[test]
    fn failing_services_come_first_and_names_are_escaped() {
        let v = view(vec![
            service("a", "ok1", "ok", ""),
            service("web", "<b>x</b>", "fail", "<script>alert(1)</script>"),
        ]);
        let page = main_page(&v);
        let failing = page
            .find("web/&lt;b&gt;x&lt;/b&gt;")
            .expect("failing service listed");
        assert!(failing < page.find(">a/ok1<").expect("ok service listed"));
        assert!(!page.contains("<script>alert"), "summaries are escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            page.contains("value=\"t&quot;ok\""),
            "the csrf token is an attribute"
        );
        assert!(page.contains("1 of 2 services failing"));
        let service = service_page(&v, "web", "<b>x</b>").expect("service page");
        assert!(
            service.contains("went down: h&lt;1&gt;"),
            "the downtime log"
        );
        assert!(service_page(&v, "web", "nothing").is_none());
    }

    #[test]
    fn vrrp_and_dead_letters_are_shown() {
        let mut v = view(vec![service("a", "ok1", "ok", "")]);
        v.dump.vrrp = serde_json::from_value(serde_json::json!([{
            "name": "vi_1", "interface": "eth0", "vrid": 51, "version": 3, "state": "BACKUP",
            "priority": 150, "effective_priority": 100, "source": null, "master": "10.0.0.2",
            "advert_int": 1.0, "virtual_addresses": ["10.0.0.100/24"], "last_transition": 1_700_000_090,
            "last_reason": "a higher priority master", "fault": null, "counters": {"adverts_sent": 5,
            "adverts_received": 80, "send_errors": 0, "malformed": 1, "bad_ttl": 2,
            "other_vrid": 0, "auth_mismatch": 0, "version_mismatch": 0,
            "interval_mismatch": 0, "address_mismatch": 0, "unknown_peer": 0,
            "transitions": 2, "garps_sent": 1}}]))
        .expect("vrrp");
        v.dump.mail.dead_total = 1;
        v.dump.mail.dead_letters = serde_json::from_value(serde_json::json!([{
            "id": "1", "created": 1_700_000_000, "died": 1_700_000_050, "about": "web/http",
            "to": ["ops@example.org"], "subject": "web/http down", "reason": "550 no such user"}]))
        .expect("dead letters");
        let page = main_page(&v);
        for shown in [
            "<span class=\"vr backup\">vi_1 BACKUP · prio 100</span>",
            "<td class=\"n\">100 <small>/ 150</small></td><td>10.0.0.2</td><td>10.0.0.100/24</td>",
            "a higher priority master",
            "<td class=\"n\">80 / 5</td><td class=\"n\">3</td>",
            "<b class=\"bad\">1 dead</b>",
            "550 no such user",
        ] {
            assert!(page.contains(shown), "missing {shown} in {page}");
        }
    }

    #[test]
    fn route_announcements_are_shown() {
        let mut v = view(vec![service("a", "ok1", "ok", "")]);
        v.dump.announcements = vec![
            crate::control::proto::AnnounceDump {
                name: "vip".into(),
                prefix: "192.0.2.10/32".into(),
                when: "quorum:web && !vrrp:VI_1=FAULT".into(),
                wanted: true,
                announced: true,
                error: None,
            },
            crate::control::proto::AnnounceDump {
                name: "<b>".into(),
                prefix: "192.0.2.11/32".into(),
                when: "false".into(),
                wanted: false,
                announced: false,
                error: Some("birdc configure failed".into()),
            },
        ];
        let page = main_page(&v);
        for shown in [
            "<h2>route announcements</h2>",
            "<td>vip</td><td>192.0.2.10/32</td><td><span class=\"b up\">announced</span></td><td><code>quorum:web &amp;&amp; !vrrp:VI_1=FAULT</code></td>",
            "<td>&lt;b&gt;</td><td>192.0.2.11/32</td><td><span class=\"b down\">withdrawn</span>",
            "<p>routing daemon: birdc configure failed</p>",
        ] {
            assert!(page.contains(shown), "missing {shown} in {page}");
        }
    }

    #[test]
    fn text_is_escaped_and_sizes_read_well() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3_725), "1h 2m");
        assert_eq!(duration(90_000), "1d 1h");
        assert_eq!(
            with_clock("failure web http 1700000000 down"),
            "failure web http 2023-11-14 22:13:20 down"
        );
    }
}
