//! Small value parsers shared by both front ends: durations, exit ranges, mon's built-in alert argument forms, and "did you mean" suggestions.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::model::{
    ALERTMANAGER_RESEND, AlertmanagerAction, ExitRange, Forward, LbEdit, MailAction, Protocol,
};

/// mon's `timeval`: `^\d+(\.\d+)?[dhms]$`, case-insensitive, never zero.
pub fn parse_timeval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let Some(unit) = t.chars().last() else {
        return Err("empty time value (expected e.g. 30s, 5m, 1.5h, 1d)".to_string());
    };
    let number = &t[..t.len() - unit.len_utf8()];
    let well_formed = !number.is_empty()
        && number.split('.').count() <= 2
        && number
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let seconds_per_unit = match unit.to_ascii_lowercase() {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => 0.0,
    };
    if !well_formed || seconds_per_unit == 0.0 {
        return Err(format!(
            "bad time value \"{t}\" (expected a number and one of s m h d, e.g. 30s, 5m, 1.5h, 1d)"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad time value \"{t}\""))?;
    let seconds = value * seconds_per_unit;
    if seconds <= 0.0 {
        return Err(format!("time value \"{t}\" must be greater than zero"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("time value \"{t}\" is too large"))
}

/// The stricter timeval of `alertafter`: `\d+[hms]` (no days, no fractions).
pub fn parse_alertafter_timeval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let ok = t.len() >= 2
        && t[..t.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && matches!(
            t.as_bytes()[t.len() - 1].to_ascii_lowercase(),
            b'h' | b'm' | b's'
        );
    if !ok {
        return Err(format!(
            "bad alertafter time \"{t}\" (mon accepts only whole numbers with s, m or h here)"
        ));
    }
    parse_timeval(t)
}

/// A native duration: one or more `number unit` parts, units `ms s m h d`
/// (`"2s"`, `"100ms"`, `"1.5h"`, `"1m30s"`). Zero is allowed (`"0s"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!("bad duration \"{t}\" (expected e.g. \"500ms\", \"2s\", \"5m\", \"1.5h\", \"1d\")")
    };
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let scale = match unit.to_ascii_lowercase().as_str() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = after;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// `N` or `N-M` exit values.
pub fn parse_exit_range(text: &str) -> Result<ExitRange, String> {
    let t = text.trim();
    let bad = || format!("bad exit range \"{t}\" (expected N or N-M)");
    let (low, high) = match t.split_once('-') {
        Some((a, b)) => (a, b),
        None => (t, t),
    };
    let low: i32 = low.trim().parse().map_err(|_| bad())?;
    let high: i32 = high.trim().parse().map_err(|_| bad())?;
    if low > high {
        return Err(format!("exit range \"{t}\" is empty ({low} > {high})"));
    }
    Ok(ExitRange { low, high })
}

/// mail.alert's arguments: `[-S subject] [-f from] recipient...`.
/// mon's own flags (`-s -g -h -t -l -u`) are added by the daemon, never written in mon.cf.
pub fn parse_mail_alert_args(args: &[String]) -> Result<MailAction, String> {
    let mut action = MailAction {
        to: Vec::new(),
        subject: None,
        from: None,
    };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-S" => action.subject = Some(option_value(&mut words, "-S")?),
            "-f" => action.from = Some(option_value(&mut words, "-f")?),
            w if w.starts_with('-') && w.len() > 1 => {
                return Err(format!(
                    "mail.alert: unknown option \"{w}\" (keepmon accepts -S subject and -f from)"
                ));
            }
            w => action.to.push(w.to_string()),
        }
    }
    if action.to.is_empty() {
        return Err("mail.alert needs at least one recipient".to_string());
    }
    for to in &action.to {
        check_mail_address(to)?;
    }
    if let Some(from) = &action.from {
        check_mail_address(from)?;
    }
    Ok(action)
}

/// A light check of an address: `user@domain` or a bare local user (mon
/// configs often mail `root` or `mis`); no spaces or control characters.
/// (Full parsing happens when the message is built.)
pub fn check_mail_address(address: &str) -> Result<(), String> {
    let ok = !address.is_empty()
        && address.split('@').count() <= 2
        && !address.starts_with(['@', '-'])
        && !address.ends_with('@')
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!("bad mail address \"{address}\""))
    }
}

/// file.alert's arguments: `[-d dir] file`; a relative dir or file is under `logdir`.
pub fn parse_file_alert_args(args: &[String], logdir: &Path) -> Result<PathBuf, String> {
    let mut dir: Option<PathBuf> = None;
    let mut file: Option<String> = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-d" => dir = Some(PathBuf::from(option_value(&mut words, "-d")?)),
            w if w.starts_with('-') && w.len() > 1 => {
                return Err(format!(
                    "file.alert: unknown option \"{w}\" (expected [-d dir] file)"
                ));
            }
            w if file.is_none() => file = Some(w.to_string()),
            w => return Err(format!("file.alert: unexpected extra argument \"{w}\"")),
        }
    }
    let file = file.ok_or("file.alert needs a file name")?;
    let dir = match dir {
        Some(d) if d.is_absolute() => d,
        Some(d) => logdir.join(d),
        None => logdir.to_path_buf(),
    };
    Ok(dir.join(file))
}

/// lvs.alert / ipvs.alert arguments:
/// `-P tcp|udp -V vip:port -R rip[:port] [-W weight] [-F nat|tun|dr|g|m|i]`.
/// `-u` is added by the daemon on an upalert and means "add"; otherwise "remove".
pub fn parse_lvs_alert_args(args: &[String]) -> Result<LbEdit, String> {
    let mut protocol = Protocol::Tcp;
    let mut virtual_addr: Option<SocketAddr> = None;
    let mut real: Option<(IpAddr, Option<u16>)> = None;
    let mut weight = None;
    let mut forward = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-P" => {
                let value = option_value(&mut words, "-P")?;
                protocol = match value.to_ascii_lowercase().as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    _ => return Err(format!("lvs.alert -P: unknown protocol \"{value}\"")),
                };
            }
            "-V" => {
                let value = option_value(&mut words, "-V")?;
                let parsed = parse_host_port(&value).map_err(|e| format!("lvs.alert -V: {e}"))?;
                let port = parsed
                    .1
                    .ok_or_else(|| format!("lvs.alert -V: \"{value}\" needs a port (vip:port)"))?;
                virtual_addr = Some(SocketAddr::new(parsed.0, port));
            }
            "-R" => {
                let value = option_value(&mut words, "-R")?;
                real = Some(parse_host_port(&value).map_err(|e| format!("lvs.alert -R: {e}"))?);
            }
            "-W" => {
                let value = option_value(&mut words, "-W")?;
                weight = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| format!("lvs.alert -W: bad weight \"{value}\""))?,
                );
            }
            "-F" => {
                let value = option_value(&mut words, "-F")?;
                forward = Some(parse_forward(&value).map_err(|e| format!("lvs.alert -F: {e}"))?);
            }
            "-u" => {
                return Err(
                    "lvs.alert: -u on a failure alert would make the script add the real server \
                     when it fails; keepmon removes it (-u belongs to upalerts, where mon adds it)"
                        .to_string(),
                );
            }
            w => return Err(format!("lvs.alert: unexpected argument \"{w}\"")),
        }
    }
    let virtual_addr = virtual_addr.ok_or("lvs.alert needs -V vip:port")?;
    let (real_addr, real_port) = real.ok_or("lvs.alert needs -R rip[:port]")?;
    Ok(LbEdit {
        protocol,
        virtual_addr,
        real_addr,
        real_port,
        weight,
        forward,
    })
}

/// ipvsadm's forwarding letters and keepalived's names.
pub fn parse_forward(text: &str) -> Result<Forward, String> {
    match text.to_ascii_lowercase().as_str() {
        "nat" | "m" | "masq" | "masquerading" => Ok(Forward::Nat),
        "dr" | "g" | "gate" | "gatewaying" | "direct" => Ok(Forward::DirectRouting),
        "tun" | "i" | "ipip" | "tunnel" => Ok(Forward::Tunnel),
        _ => Err(format!(
            "unknown forwarding method \"{text}\" (expected nat|dr|tun or m|g|i)"
        )),
    }
}

/// `addr`, `addr:port`, `[v6]:port` or a bare v6 address.
pub fn parse_host_port(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    if let Some((host, port)) = text.rsplit_once(':') {
        let ip = host.parse::<IpAddr>().map_err(|_| {
            format!("\"{text}\" is not an IP address (names are not resolved here)")
        })?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("bad port in \"{text}\""))?;
        return Ok((ip, Some(port)));
    }
    Err(format!(
        "\"{text}\" is not an IP address (names are not resolved here)"
    ))
}

/// The known word closest to `word`, if it is close enough to be a typo:
/// at most two edits apart, and at most one for known words of one or two
/// letters; the first such word on a tie. Case counts (mon.cf keywords are
/// case-sensitive); a caller that matches without case folds both sides.
/// Both front ends use it for "did you mean".
pub fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.min(k.chars().count().saturating_sub(1).max(1)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `alertmanager.alert URL [-s SEVERITY] [-l NAME=VALUE]... [-r RESEND]`
/// (mon.cf; RESEND a mon timeval).
pub fn parse_alertmanager_alert_args(args: &[String]) -> Result<AlertmanagerAction, String> {
    let mut action = AlertmanagerAction {
        url: String::new(),
        severity: None,
        labels: Default::default(),
        resend: ALERTMANAGER_RESEND,
    };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-s" => action.severity = Some(option_value(&mut words, "-s")?),
            "-r" => action.resend = parse_timeval(&option_value(&mut words, "-r")?)?,
            "-l" => {
                let pair = option_value(&mut words, "-l")?;
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("-l {pair:?}: expected NAME=VALUE"))?;
                check_label_name(name)?;
                action.labels.insert(name.to_string(), value.to_string());
            }
            w if w.starts_with('-') && w.len() > 1 => {
                return Err(format!(
                    "alertmanager.alert: unknown option \"{w}\" (keepmon accepts -s severity, -l name=value, -r resend)"
                ));
            }
            w if action.url.is_empty() => action.url = w.to_string(),
            w => {
                return Err(format!(
                    "alertmanager.alert takes one URL; \"{w}\" is a second"
                ));
            }
        }
    }
    if action.url.is_empty() {
        return Err(
            "alertmanager.alert needs the Alertmanager's URL (e.g. http://127.0.0.1:9093)"
                .to_string(),
        );
    }
    crate::alertmanager::Target::parse(&action.url)?;
    Ok(action)
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad label name {name:?} (letters, digits and _, not starting with a digit)"
        ))
    }
}

fn option_value<'a>(
    words: &mut impl Iterator<Item = &'a String>,
    option: &str,
) -> Result<String, String> {
    words
        .next()
        .cloned()
        .ok_or_else(|| format!("option {option} needs a value"))
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn timevals_follow_mon() {
        let check = |s: &str, secs: Option<f64>| {
            assert_eq!(
                parse_timeval(s).ok().map(|d| d.as_secs_f64()),
                secs,
                "timeval {s:?}"
            )
        };
        check("30s", Some(30.0));
        check("5m", Some(300.0));
        check("1.5h", Some(5400.0));
        check("1d", Some(86400.0));
        check("10M", Some(600.0));
        check("0s", None);
        check("30", None);
        check("s", None);
        check("1.s", None);
        check("1..5h", None);
        check("5 m", None);
        check("-5m", None);
        check("", None);
        check("5é", None);
    }

    #[test]
    fn alertafter_timevals_are_strict() {
        assert!(parse_alertafter_timeval("30m").is_ok());
        assert!(parse_alertafter_timeval("1d").is_err());
        assert!(parse_alertafter_timeval("1.5h").is_err());
    }

    #[test]
    fn native_durations() {
        let check = |s: &str, ms: Option<u128>| {
            assert_eq!(parse_duration(s).ok().map(|d| d.as_millis()), ms, "{s:?}")
        };
        check("2s", Some(2000));
        check("100ms", Some(100));
        check("1m30s", Some(90_000));
        check("1.5h", Some(5_400_000));
        check("0s", Some(0));
        check("2", None);
        check("2x", None);
        check("", None);
        check("ms", None);
    }

    #[test]
    fn exit_ranges() {
        assert_eq!(
            parse_exit_range("3").unwrap(),
            ExitRange { low: 3, high: 3 }
        );
        assert_eq!(
            parse_exit_range("1-5").unwrap(),
            ExitRange { low: 1, high: 5 }
        );
        assert!(parse_exit_range("5-1").is_err());
        assert!(parse_exit_range("a").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("intreval", &["interval", "timeout"]),
            Some("interval")
        );
        assert_eq!(suggest("x", &["interval"]), None);
        assert_eq!(suggest("INTERVAL", &["interval"]), None);
        assert_eq!(suggest("Interval", &["interval"]), Some("interval"));
        assert_eq!(
            suggest("UPalert", &["alert", "upalert"]),
            Some("alert"),
            "the first of the closest"
        );
        // A short known word allows one edit, not two.
        assert_eq!(suggest("ud", &["tcp", "udp"]), Some("udp"));
        assert_eq!(suggest("xy", &["hm", "a"]), None);
    }

    #[test]
    fn lvs_alert_seed_form() {
        let edit =
            parse_lvs_alert_args(&words("-P tcp -V 10.0.0.1:80 -R 10.0.0.2 -W 1 -F tun")).unwrap();
        assert_eq!(edit.virtual_addr, "10.0.0.1:80".parse().unwrap());
        assert_eq!(edit.real_addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(edit.real_port, None);
        assert_eq!(edit.weight, Some(1));
        assert_eq!(edit.forward, Some(Forward::Tunnel));
        let edit = parse_lvs_alert_args(&words("-P udp -V [::1]:53 -R [::2]:5353 -F g")).unwrap();
        assert_eq!(edit.protocol, Protocol::Udp);
        assert_eq!(edit.real_port, Some(5353));
        assert_eq!(edit.forward, Some(Forward::DirectRouting));
    }

    #[test]
    fn lvs_alert_errors_name_the_problem() {
        let err = |s: &str| parse_lvs_alert_args(&words(s)).unwrap_err();
        assert!(err("-P tcp -R 10.0.0.2").contains("-V"));
        assert!(err("-V 10.0.0.1 -R 10.0.0.2").contains("needs a port"));
        assert!(err("-V 10.0.0.1:80 -R host.example").contains("not an IP"));
        assert!(err("-V 10.0.0.1:80 -R 10.0.0.2 -F x").contains("forwarding"));
        assert!(err("-V 10.0.0.1:80 -R 10.0.0.2 -W").contains("needs a value"));
    }

    #[test]
    fn mail_alert_args() {
        let a = parse_mail_alert_args(&[
            "-S".into(),
            "web is back".into(),
            "-f".into(),
            "mon@example.com".into(),
            "ops@example.com".into(),
        ])
        .unwrap();
        assert_eq!(a.to, vec!["ops@example.com"]);
        assert_eq!(a.subject.as_deref(), Some("web is back"));
        assert!(parse_mail_alert_args(&[]).is_err());
        assert!(parse_mail_alert_args(&["-x".into(), "a@b".into()]).is_err());
    }

    #[test]
    fn file_alert_args() {
        let p =
            parse_file_alert_args(&words("-d /var/log/mon routers.log"), Path::new("/l")).unwrap();
        assert_eq!(p, PathBuf::from("/var/log/mon/routers.log"));
        let p = parse_file_alert_args(&words("x.log"), Path::new("/l")).unwrap();
        assert_eq!(p, PathBuf::from("/l/x.log"));
        assert!(parse_file_alert_args(&[], Path::new("/l")).is_err());
    }
}
