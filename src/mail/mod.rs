//! Mail alerts' content (pure): mail.alert-shaped subject and body for an alert, digests, VRRP and lb notices; no IO, no clock reads.
//!
//! A [`Letter`] is plain text: sender, recipients, subject, body. It is what
//! the outbox stores ([`outbox`]) and what [`smtp`] turns into a real message
//! with lettre's typed headers (so no text here can inject a header).
//!
//! The shape follows Debian's `/usr/lib/mon/alert.d/mail.alert` (mon.md
//! §5.3): subject `ALERT group/service: summary (Sat Nov 21 16:37:01)`
//! (`UPALERT` for an upalert), body with the group, service, time, seconds
//! until the next alert, the members (wrapped as Text::Wrap does) and the
//! monitor's detail.

pub mod outbox;
pub mod smtp;
pub mod worker;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::alert::AlertJob;
use crate::config::model::MailAction;
use crate::service::AlertKind;

/// One message's text: who, to whom, what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// Envelope and header sender.
    pub from: String,
    /// Envelope and `To:` recipients, in the configured order.
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

impl Letter {
    /// The recipient set this letter goes to (sorted, deduplicated): digests
    /// only merge letters with the same sender and recipient set.
    pub fn envelope_key(&self) -> (String, Vec<String>) {
        let mut to = self.to.clone();
        to.sort();
        to.dedup();
        (self.from.clone(), to)
    }
}

/// The sender used when neither the action (`-f`) nor `[mail] from` names one.
pub fn default_from(hostname: &str) -> String {
    format!("keepmon@{hostname}")
}

/// mail.alert's message for one alert job.
///
/// `local` is the job's time (`-t`) in local time; `next_alert_secs` fills
/// "Secs until next alert" (mon leaves it empty because it never passes `-l`;
/// keepmon passes the period's `alertevery` when there is one).
pub fn alert_letter(
    job: &AlertJob,
    action: &MailAction,
    from: &str,
    local: NaiveDateTime,
    next_alert_secs: Option<u64>,
) -> Letter {
    let (first, rest) = match job.decision.stdin.split_once('\n') {
        Some((first, rest)) => (first, rest),
        None => (job.decision.stdin.as_str(), ""),
    };
    let summary = action.subject.as_deref().unwrap_or(first);
    let word = if job.decision.kind == AlertKind::Up {
        "UPALERT"
    } else {
        "ALERT"
    };
    let subject = format!(
        "{word} {}/{}: {} ({})",
        job.group,
        job.service,
        summary,
        local.format("%a %b %-d %H:%M:%S")
    );
    let next = next_alert_secs.map(|s| s.to_string()).unwrap_or_default();
    let mut body = format!(
        "\nGroup                 : {}\nService               : {}\nTime noticed          : {}\nSecs until next alert : {next}\n",
        job.group,
        job.service,
        perl_localtime(local),
    );
    body.push_str(&wrap_members(&job.hosts.join(" ")));
    body.push('\n');
    body.push_str("\nDetailed text (if any) follows:\n-------------------------------\n");
    body.push_str(rest);
    Letter {
        from: action.from.clone().unwrap_or_else(|| from.to_string()),
        to: action.to.clone(),
        subject: clean_subject(&subject),
        body,
    }
}

/// One message carrying several letters to the same recipients (the digest
/// sent when `[mail] digest_window` is set and alerts come close together).
/// A single letter is returned unchanged.
pub fn digest(letters: &[Letter], local: NaiveDateTime) -> Option<Letter> {
    let first = letters.first()?;
    if letters.len() == 1 {
        return Some(first.clone());
    }
    const LISTED: usize = 3;
    let mut names: Vec<&str> = letters
        .iter()
        .take(LISTED)
        .map(|l| subject_head(&l.subject))
        .collect();
    if letters.len() > LISTED {
        names.push("...");
    }
    let subject = format!(
        "DIGEST {} alerts: {} ({})",
        letters.len(),
        names.join(", "),
        local.format("%a %b %-d %H:%M:%S")
    );
    let mut body = format!(
        "{} alerts for these recipients arrived within the digest window; each follows in full.\n",
        letters.len()
    );
    for (i, letter) in letters.iter().enumerate() {
        body.push_str(&format!(
            "\n======== {}/{}: {}\n",
            i + 1,
            letters.len(),
            letter.subject
        ));
        body.push_str(&letter.body);
        if !letter.body.ends_with('\n') {
            body.push('\n');
        }
    }
    Some(Letter {
        from: first.from.clone(),
        to: first.to.clone(),
        subject: clean_subject(&subject),
        body,
    })
}

/// A VRRP state change, as plain parameters (wired up by the VRRP side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpTransition<'a> {
    pub instance: &'a str,
    pub vrid: u8,
    pub interface: &'a str,
    /// keepalived's state names: `INIT`, `BACKUP`, `MASTER`, `FAULT`.
    pub from: &'a str,
    pub to: &'a str,
    /// Why, in words: "higher priority advert from 10.0.0.2", "master down timer".
    pub reason: &'a str,
    pub priority: u8,
    pub virtual_addresses: &'a [String],
    /// This director's host name.
    pub host: &'a str,
}

/// Subject and body for a VRRP transition:
/// `VRRP web (vrid 51) on lb1: BACKUP -> MASTER (Sat Nov 21 16:37:01)`.
pub fn vrrp_letter(t: &VrrpTransition<'_>, local: NaiveDateTime) -> (String, String) {
    let subject = format!(
        "VRRP {} (vrid {}) on {}: {} -> {} ({})",
        t.instance,
        t.vrid,
        t.host,
        t.from,
        t.to,
        local.format("%a %b %-d %H:%M:%S")
    );
    let body = format!(
        "\nInstance              : {}\nVirtual router id     : {}\nInterface             : {}\nHost                  : {}\nTransition            : {} -> {}\nPriority              : {}\nReason                : {}\nTime noticed          : {}\n{}\n",
        t.instance,
        t.vrid,
        t.interface,
        t.host,
        t.from,
        t.to,
        t.priority,
        t.reason,
        perl_localtime(local),
        wrap_field("Virtual addresses     : ", &t.virtual_addresses.join(" ")),
    );
    (clean_subject(&subject), body)
}

/// A real server entering or leaving a virtual service, as plain parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbChange<'a> {
    /// The virtual service's name and address (`web 192.0.2.10:80`).
    pub virtual_service: &'a str,
    pub real_server: &'a str,
    /// true: now receives new connections; false: no longer does.
    pub added: bool,
    /// Why: "health web:http down", "lb drain by operator", "lvs.alert".
    pub reason: &'a str,
    /// Real servers serving the virtual service after the change.
    pub active: usize,
    pub total: usize,
}

/// Subject and body for a load-balancer membership change:
/// `LB web: 10.0.0.11:8080 removed (health web:http down) (Sat Nov 21 16:37:01)`.
pub fn lb_letter(c: &LbChange<'_>, local: NaiveDateTime) -> (String, String) {
    let verb = if c.added { "added" } else { "removed" };
    let subject = format!(
        "LB {}: {} {verb} ({}) ({})",
        c.virtual_service,
        c.real_server,
        c.reason,
        local.format("%a %b %-d %H:%M:%S")
    );
    let body = format!(
        "\nVirtual service       : {}\nReal server           : {}\nChange                : {verb}\nReason                : {}\nServing now           : {} of {} real servers\nTime noticed          : {}\n",
        c.virtual_service,
        c.real_server,
        c.reason,
        c.active,
        c.total,
        perl_localtime(local),
    );
    (clean_subject(&subject), body)
}

/// Perl's scalar `localtime`: `Sat Nov  1 16:37:01 2026` (day padded to two).
fn perl_localtime(local: NaiveDateTime) -> String {
    local.format("%a %b %e %H:%M:%S %Y").to_string()
}

/// `ALERT web/http` out of `ALERT web/http: summary (time)`.
fn subject_head(subject: &str) -> &str {
    subject.split(':').next().unwrap_or(subject)
}

/// A subject is one line: control characters (CR, LF, tabs, escapes) become
/// spaces. lettre would encode them safely anyway; this keeps subjects readable.
fn clean_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// mail.alert's `wrap("", "\t\t\t", "Members               : $opt_h")`.
fn wrap_members(hosts: &str) -> String {
    wrap_field("Members               : ", hosts)
}

/// Text::Wrap with its defaults (`$columns = 76`): greedy at spaces, the
/// first line with no indent, the rest indented by three tabs (24 columns).
/// A word longer than a line stands alone on its line.
fn wrap_field(label: &str, text: &str) -> String {
    const COLUMNS: usize = 76;
    const INDENT: &str = "\t\t\t";
    let mut out = label.to_string();
    let mut line_len = label.chars().count();
    let mut limit = COLUMNS - 1;
    let mut at_line_start = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        let needed = if at_line_start { len } else { len + 1 };
        if !at_line_start && line_len + needed > limit {
            out.push('\n');
            out.push_str(INDENT);
            line_len = 24;
            limit = COLUMNS - 1;
            at_line_start = true;
        }
        if !at_line_start {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
        at_line_start = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Action, AlertLine};
    use crate::service::{AlertDecision, OpStatus, Source};

    fn at() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(16, 37, 1)
            .unwrap()
    }

    fn job(kind: AlertKind, stdin: &str, hosts: &[&str]) -> AlertJob {
        let action = MailAction {
            to: vec!["ops@example.com".into()],
            subject: None,
            from: None,
        };
        AlertJob {
            group: "web".into(),
            service: "http".into(),
            decision: AlertDecision {
                period: "p".into(),
                kind,
                source: Source::Monitor,
                alert: AlertLine {
                    name: "mail.alert".into(),
                    exit: None,
                    action: Action::Mail(action),
                },
                exit: 1,
                stdin: stdin.into(),
                counts: true,
            },
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            time: 1_700_000_000,
            description: None,
            opstatus: OpStatus::Fail,
            env: Vec::new(),
            summary: String::new(),
            detail: String::new(),
            lua: crate::lua_settings::LuaSettings::default(),
        }
    }

    fn action(to: &[&str], subject: Option<&str>, from: Option<&str>) -> MailAction {
        MailAction {
            to: to.iter().map(|s| s.to_string()).collect(),
            subject: subject.map(str::to_string),
            from: from.map(str::to_string),
        }
    }

    #[test]
    fn failure_alert_has_mail_alerts_shape() {
        let j = job(
            AlertKind::Failure,
            "www2 down\nwww2: connection refused\nsecond line\n",
            &["www1", "www2"],
        );
        let letter = alert_letter(
            &j,
            &action(&["ops@example.com", "root"], None, None),
            "keepmon@lb1",
            at(),
            Some(3600),
        );
        assert_eq!(letter.from, "keepmon@lb1");
        assert_eq!(letter.to, ["ops@example.com", "root"]);
        assert_eq!(
            letter.subject,
            "ALERT web/http: www2 down (Sun Nov 1 16:37:01)"
        );
        assert_eq!(
            letter.body,
            "\nGroup                 : web\n\
             Service               : http\n\
             Time noticed          : Sun Nov  1 16:37:01 2026\n\
             Secs until next alert : 3600\n\
             Members               : www1 www2\n\
             \n\
             Detailed text (if any) follows:\n\
             -------------------------------\n\
             www2: connection refused\nsecond line\n"
        );
    }

    #[test]
    fn upalert_subject_option_and_sender_override() {
        let j = job(AlertKind::Up, "www2 down\n", &["www1"]);
        let letter = alert_letter(
            &j,
            &action(&["ops@example.com"], Some("web is back"), Some("mon@lb1")),
            "keepmon@lb1",
            at(),
            None,
        );
        assert_eq!(letter.from, "mon@lb1");
        assert_eq!(
            letter.subject,
            "UPALERT web/http: web is back (Sun Nov 1 16:37:01)"
        );
        assert!(letter.body.contains("Secs until next alert : \n"));
        assert!(letter.body.ends_with("-------------------------------\n"));
    }

    #[test]
    fn control_characters_never_reach_the_subject() {
        let j = job(
            AlertKind::Failure,
            "down\r Bcc: evil@example.net\u{7}\nrest",
            &["h"],
        );
        let letter = alert_letter(
            &j,
            &action(&["ops@example.com"], None, None),
            "k@h",
            at(),
            None,
        );
        assert!(!letter.subject.chars().any(char::is_control));
        assert_eq!(
            letter.subject,
            "ALERT web/http: down  Bcc: evil@example.net  (Sun Nov 1 16:37:01)"
        );
    }

    #[test]
    fn members_wrap_like_text_wrap() {
        let hosts: Vec<String> = (1..=12)
            .map(|i| format!("host{i:02}.example.com"))
            .collect();
        let wrapped = wrap_members(&hosts.join(" "));
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines.len() > 1, "{wrapped}");
        assert!(lines[0].starts_with("Members               : host01.example.com"));
        assert!(lines[0].len() <= 75, "{}", lines[0]);
        for line in &lines[1..] {
            assert!(line.starts_with("\t\t\t"), "{line:?}");
            assert!(24 + line.len() - 3 <= 75, "{line:?}");
        }
        let words: Vec<&str> = wrapped
            .trim_start_matches("Members               : ")
            .split_whitespace()
            .collect();
        assert_eq!(words, hosts);
        assert_eq!(wrap_members(""), "Members               : ");
    }

    #[test]
    fn digest_merges_and_a_single_letter_stays_itself() {
        let letter = |n: &str| Letter {
            from: "k@h".into(),
            to: vec!["ops@example.com".into()],
            subject: format!("ALERT web/{n}: down (Sun Nov 1 16:37:01)"),
            body: format!("body {n}"),
        };
        assert_eq!(digest(&[], at()), None);
        assert_eq!(digest(&[letter("a")], at()), Some(letter("a")));
        let d = digest(&[letter("a"), letter("b"), letter("c"), letter("d")], at()).unwrap();
        assert_eq!(
            d.subject,
            "DIGEST 4 alerts: ALERT web/a, ALERT web/b, ALERT web/c, ... (Sun Nov 1 16:37:01)"
        );
        for n in ["a", "b", "c", "d"] {
            assert!(
                d.body.contains(&format!(
                    "ALERT web/{n}: down (Sun Nov 1 16:37:01)\nbody {n}\n"
                )),
                "{}",
                d.body
            );
        }
        assert!(d.body.contains("======== 4/4: "));
    }

    #[test]
    fn envelope_key_ignores_order_and_duplicates() {
        let a = Letter {
            from: "k@h".into(),
            to: vec!["b@x".into(), "a@x".into(), "a@x".into()],
            subject: String::new(),
            body: String::new(),
        };
        let mut b = a.clone();
        b.to = vec!["a@x".into(), "b@x".into()];
        assert_eq!(a.envelope_key(), b.envelope_key());
    }

    #[test]
    fn vrrp_and_lb_notices() {
        let vips = vec!["192.0.2.10/24".to_string(), "192.0.2.11/24".to_string()];
        let (subject, body) = vrrp_letter(
            &VrrpTransition {
                instance: "web",
                vrid: 51,
                interface: "eth0",
                from: "BACKUP",
                to: "MASTER",
                reason: "master down timer expired",
                priority: 100,
                virtual_addresses: &vips,
                host: "lb1",
            },
            at(),
        );
        assert_eq!(
            subject,
            "VRRP web (vrid 51) on lb1: BACKUP -> MASTER (Sun Nov 1 16:37:01)"
        );
        assert!(body.contains("Transition            : BACKUP -> MASTER\n"));
        assert!(body.contains("Reason                : master down timer expired\n"));
        assert!(body.contains("Virtual addresses     : 192.0.2.10/24 192.0.2.11/24\n"));

        let (subject, body) = lb_letter(
            &LbChange {
                virtual_service: "web 192.0.2.10:80",
                real_server: "10.0.0.11:8080",
                added: false,
                reason: "health web:http down\r\nX: y",
                active: 1,
                total: 2,
            },
            at(),
        );
        assert_eq!(
            subject,
            "LB web 192.0.2.10:80: 10.0.0.11:8080 removed (health web:http down  X: y) (Sun Nov 1 16:37:01)"
        );
        assert!(body.contains("Serving now           : 1 of 2 real servers\n"));
    }
}
