//! `[daemon]`, `[mon_protocol]`, `[metrics]`, `[lua]`, `[mail]` and `[mail.smtp]`: the daemon-wide settings of a native config.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::checks::Scalar;
use super::cursor::{Dur, Int, KeyPath, Reader, Text};
use crate::config::model::{
    AuthType, BuiltinPolicy, MailSettings, Network, Settings, SmtpSettings, SmtpTls,
};
use crate::config::settings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    /// The director's name in notices, mail and Alertmanager labels
    /// (keepalived's `router_id`).
    director: Option<Text>,
    basedir: Option<Text>,
    cfbasedir: Option<Text>,
    monerrfile: Option<Text>,
    monremote: Option<String>,
    statedir: Option<Text>,
    logdir: Option<Text>,
    control_socket: Option<Text>,
    pidfile: Option<Text>,
    maxprocs: Option<u32>,
    histlength: Option<u32>,
    randstart: Option<Dur>,
    monitor_timeout: Option<Dur>,
    shutdown_grace: Option<Dur>,
    builtin_monitors: Option<Text>,
    builtin_alerts: Option<Text>,
    alertdir: Option<Vec<Text>>,
    mondir: Option<Vec<Text>>,
    luadir: Option<Vec<Text>>,
    exclude_period: Option<Text>,
    dtlogging: Option<bool>,
    dtlogfile: Option<Text>,
    historicfile: Option<Text>,
    historictime: Option<Dur>,
    dep_recur_limit: Option<u32>,
    startupalerts_on_reset: Option<bool>,
    syslog_facility: Option<Text>,
    remove_kernel_tables_on_stop: Option<bool>,
}

const BUILTIN_POLICIES: &[(&str, BuiltinPolicy)] = &[
    ("prefer", BuiltinPolicy::Prefer),
    ("fallback", BuiltinPolicy::Fallback),
    ("never", BuiltinPolicy::Never),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMonProtocol {
    /// false: no client listener (the other keys still set auth for traps).
    enabled: Option<bool>,
    listen: Option<Text>,
    trap_listen: Option<Text>,
    clientallow: Option<Vec<Text>>,
    cltimeout: Option<Dur>,
    authfile: Option<Text>,
    userfile: Option<Text>,
    authtype: Option<Vec<Text>>,
    pamservice: Option<String>,
}

const AUTH_TYPES: &[(&str, AuthType)] = &[
    ("userfile", AuthType::Userfile),
    ("getpwnam", AuthType::Getpwnam),
    ("pam", AuthType::Pam),
    ("trustlocal", AuthType::Trustlocal),
    ("shadow", AuthType::Shadow),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLua {
    timeout: Option<Dur>,
    instructions: Option<Int>,
    memory: Option<Spanned<Scalar>>,
    files_dir: Option<Text>,
    allow_networks: Option<Vec<Text>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    from: Option<Text>,
    sendmail: Option<Text>,
    digest_window: Option<Dur>,
    max_age: Option<Dur>,
    retry_initial: Option<Dur>,
    retry_max: Option<Dur>,
    smtp: Option<Spanned<RawSmtp>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Option<Text>,
    port: Option<Int>,
    tls: Option<Text>,
    username: Option<String>,
    password: Option<String>,
    timeout: Option<Dur>,
    helo_name: Option<String>,
    ca_file: Option<Text>,
}

const SMTP_TLS_MODES: &[(&str, SmtpTls)] = &[
    ("none", SmtpTls::None),
    ("starttls", SmtpTls::StartTls),
    ("implicit", SmtpTls::Implicit),
];

const SYSLOG_FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

impl Reader<'_> {
    pub(super) fn daemon(&mut self, raw: RawDaemon, s: &mut Settings) {
        let p = KeyPath::new("daemon");
        if let Some(director) = &raw.director
            && !self.blank(director, &p.key("director"), "director name")
        {
            s.director = Some(director.get_ref().clone());
        }
        if let Some(dir) = self.path(raw.basedir.as_ref(), &p.key("basedir")) {
            s.basedir = dir;
        }
        if let Some(dir) = self.path(raw.cfbasedir.as_ref(), &p.key("cfbasedir")) {
            s.cfbasedir = dir;
        }
        s.monerrfile = self.path(raw.monerrfile.as_ref(), &p.key("monerrfile"));
        s.monremote = raw.monremote.filter(|m| !m.is_empty());
        if let Some(dir) = self.path(raw.statedir.as_ref(), &p.key("statedir")) {
            // Everything that defaults to a place in statedir moves with it.
            s.logdir = dir.join("log");
            s.dtlogfile = s.logdir.join("downtime.log");
            s.control_socket = dir.join("keepmon.sock");
            s.statedir = dir;
        }
        if let Some(dir) = self.path(raw.logdir.as_ref(), &p.key("logdir")) {
            s.dtlogfile = dir.join("downtime.log");
            s.logdir = dir;
        }
        if let Some(path) = self.path(raw.control_socket.as_ref(), &p.key("control_socket")) {
            s.control_socket = path;
        }
        if let Some(path) = self.path(raw.pidfile.as_ref(), &p.key("pidfile")) {
            s.pidfile = Some(path);
        }
        s.maxprocs = raw.maxprocs.unwrap_or(s.maxprocs);
        if let Some(n) = raw.histlength {
            s.histlength = n as usize;
        }
        s.randstart = self.duration(raw.randstart.as_ref(), &p.key("randstart"));
        if let Some(d) =
            self.positive_duration(raw.monitor_timeout.as_ref(), &p.key("monitor_timeout"))
        {
            s.monitor_timeout = d;
        }
        if let Some(d) = self.duration(raw.shutdown_grace.as_ref(), &p.key("shutdown_grace")) {
            s.shutdown_grace = d;
        }
        if let Some(policy) =
            self.builtin_policy(raw.builtin_monitors.as_ref(), &p.key("builtin_monitors"))
        {
            s.builtin_monitors = policy;
        }
        if let Some(policy) =
            self.builtin_policy(raw.builtin_alerts.as_ref(), &p.key("builtin_alerts"))
        {
            s.builtin_alerts = policy;
        }
        if let Some(dirs) = self.paths(raw.alertdir.as_deref(), &p.key("alertdir")) {
            s.alertdir = dirs;
        }
        if let Some(dirs) = self.paths(raw.mondir.as_deref(), &p.key("mondir")) {
            s.mondir = dirs;
        }
        if let Some(dirs) = self.paths(raw.luadir.as_deref(), &p.key("luadir")) {
            s.luadir = dirs;
        }
        s.exclude_period = self.period(raw.exclude_period.as_ref(), &p.key("exclude_period"));
        s.dtlogging = raw.dtlogging.unwrap_or(s.dtlogging);
        if let Some(path) = self.path(raw.dtlogfile.as_ref(), &p.key("dtlogfile")) {
            s.dtlogfile = path;
        }
        s.historicfile = self.path(raw.historicfile.as_ref(), &p.key("historicfile"));
        s.historictime = self.duration(raw.historictime.as_ref(), &p.key("historictime"));
        s.dep_recur_limit = raw.dep_recur_limit.unwrap_or(s.dep_recur_limit);
        s.startupalerts_on_reset = raw
            .startupalerts_on_reset
            .unwrap_or(s.startupalerts_on_reset);
        s.remove_kernel_tables_on_stop = raw
            .remove_kernel_tables_on_stop
            .unwrap_or(s.remove_kernel_tables_on_stop);
        if let Some(facility) = &raw.syslog_facility {
            match SYSLOG_FACILITIES
                .iter()
                .find(|f| f.eq_ignore_ascii_case(facility.get_ref()))
            {
                Some(f) => s.syslog_facility = f.to_string(),
                None => self.unknown_word(
                    facility,
                    &p.key("syslog_facility"),
                    "syslog facility",
                    SYSLOG_FACILITIES,
                ),
            }
        }
    }

    fn builtin_policy(&mut self, value: Option<&Text>, path: &str) -> Option<BuiltinPolicy> {
        self.choice(value, path, "policy", BUILTIN_POLICIES)
    }

    pub(super) fn mon_protocol(&mut self, raw: RawMonProtocol, s: &mut Settings) {
        let p = KeyPath::new("mon_protocol");
        let listen = self.socket_addr(raw.listen.as_ref(), &p.key("listen"), None);
        s.mon_listener = if raw.enabled == Some(false) {
            if let Some(text) = &raw.listen {
                self.warning(
                    text.span().start,
                    format!("{}: unused, enabled = false", p.key("listen")),
                );
            }
            None
        } else {
            Some(listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], settings::MON_PORT))))
        };
        s.trap_listener = self.socket_addr(raw.trap_listen.as_ref(), &p.key("trap_listen"), None);
        for (i, pattern) in raw.clientallow.iter().flatten().enumerate() {
            if self.regex(pattern, &p.at_key("clientallow", i)) {
                s.clientallow.push(pattern.get_ref().clone());
            }
        }
        if let Some(d) = self.positive_duration(raw.cltimeout.as_ref(), &p.key("cltimeout")) {
            s.cltimeout = d;
        }
        if let Some(path) = self.path(raw.authfile.as_ref(), &p.key("authfile")) {
            s.auth.authfile = path;
        }
        if let Some(path) = self.path(raw.userfile.as_ref(), &p.key("userfile")) {
            s.auth.userfile = path;
        }
        if let Some(types) = &raw.authtype {
            s.auth.authtype = types
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    self.choice(Some(t), &p.at_key("authtype", i), "authtype", AUTH_TYPES)
                })
                .collect();
        }
        if let Some(service) = raw.pamservice {
            s.auth.pamservice = service;
        }
    }

    /// `listen` of a section that exists only to listen somewhere.
    pub(super) fn required_listen(
        &mut self,
        listen: Option<Text>,
        section: &str,
        root: &DeTable<'_>,
    ) -> Option<SocketAddr> {
        let path = KeyPath::new(section);
        if listen.is_none() {
            let at = root
                .get_key_value(section)
                .map_or(0, |(k, _)| k.span().start);
            self.missing(at, &path, "listen", "e.g. listen = \"127.0.0.1:9583\"");
        }
        self.socket_addr(listen.as_ref(), &path.key("listen"), None)
    }

    pub(super) fn lua(&mut self, raw: RawLua, s: &mut Settings) {
        let p = KeyPath::new("lua");
        if let Some(d) = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout")) {
            s.lua.timeout = d;
        }
        if let Some(n) = self.int_in::<u64>(
            raw.instructions.as_ref(),
            &p.key("instructions"),
            1,
            i64::MAX,
        ) {
            s.lua.instructions = n;
        }
        if let Some(memory) = &raw.memory {
            let path = p.key("memory");
            let bytes = match memory.get_ref() {
                Scalar::Integer(n) => u64::try_from(*n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("{n} is out of range (expected a positive number of bytes)")
                }),
                Scalar::Text(text) => parse_size(text),
            };
            let bytes = bytes
                .and_then(|b| usize::try_from(b).map_err(|_| format!("{b} bytes is too large")));
            if let Some(b) = self.ok_or_report(bytes, memory.span().start, &path) {
                s.lua.memory_bytes = b;
            }
        }
        if let Some(dir) = self.path(raw.files_dir.as_ref(), &p.key("files_dir")) {
            s.lua.files_dir = Some(dir);
        }
        if let Some(networks) = &raw.allow_networks {
            let path = p.key("allow_networks");
            s.lua.allow_networks = networks
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    self.ok_or_report(
                        Network::parse(n.get_ref()),
                        n.span().start,
                        &format!("{path}[{i}]"),
                    )
                })
                .collect();
        }
    }

    pub(super) fn mail(&mut self, raw: RawMail, mail: &mut MailSettings) {
        let p = KeyPath::new("mail");
        if let Some(from) = &raw.from
            && self.mail_address(from, &p.key("from"))
        {
            mail.from = Some(from.get_ref().clone());
        }
        if let Some(path) = self.path(raw.sendmail.as_ref(), &p.key("sendmail")) {
            mail.sendmail = Some(path);
        }
        mail.digest_window = self.duration(raw.digest_window.as_ref(), &p.key("digest_window"));
        if let Some(d) = self.positive_duration(raw.max_age.as_ref(), &p.key("max_age")) {
            mail.max_age = d;
        }
        if let Some(d) = self.positive_duration(raw.retry_initial.as_ref(), &p.key("retry_initial"))
        {
            mail.retry_initial = d;
        }
        if let Some(d) = self.positive_duration(raw.retry_max.as_ref(), &p.key("retry_max")) {
            mail.retry_max = d;
        }
        if mail.retry_max < mail.retry_initial
            && let Some(at) = raw.retry_max.as_ref().or(raw.retry_initial.as_ref())
        {
            self.error(
                at.span().start,
                format!(
                    "{p}: retry_max ({}s) is shorter than retry_initial ({}s)",
                    mail.retry_max.as_secs_f64(),
                    mail.retry_initial.as_secs_f64()
                ),
            );
        }
        if let Some(smtp) = &raw.smtp {
            mail.smtp = self.smtp(smtp, &p.child("smtp"));
        }
    }

    fn smtp(&mut self, raw: &Spanned<RawSmtp>, p: &KeyPath) -> Option<SmtpSettings> {
        let at = raw.span().start;
        let raw = raw.get_ref();
        let tls = self
            .choice(raw.tls.as_ref(), &p.key("tls"), "tls mode", SMTP_TLS_MODES)
            .unwrap_or(SmtpTls::None);
        let default_port = match tls {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
        };
        let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
        let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
        let ca_file = self.path(raw.ca_file.as_ref(), &p.key("ca_file"));
        if raw.password.is_some() && raw.username.is_none() {
            self.error(at, format!("{p}: password is set but username is not"));
        }
        if raw.username.is_some() && raw.password.is_none() {
            self.error(at, format!("{p}: username is set but password is not"));
        }
        if raw.username.is_some() && tls == SmtpTls::None {
            self.warning(
                at,
                format!("{p}: the password is sent in clear text because tls = \"none\"; use \"starttls\" or \"implicit\""),
            );
        }
        let Some(host) = &raw.host else {
            self.missing(
                at,
                p,
                "host",
                "the SMTP relay, e.g. host = \"mail.example.com\"",
            );
            return None;
        };
        if self.blank(host, &p.key("host"), "host name") {
            return None;
        }
        Some(SmtpSettings {
            host: host.get_ref().clone(),
            port: port.unwrap_or(default_port),
            tls,
            username: raw.username.clone(),
            password: raw.password.clone(),
            timeout: timeout.unwrap_or(Duration::from_secs(30)),
            helo_name: raw.helo_name.clone(),
            ca_file,
        })
    }
}

/// `"32MiB"`: a number and one of B, KiB, MiB, GiB.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad =
        || format!("bad size {t:?} (expected bytes such as \"32MiB\", with B, KiB, MiB or GiB)");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    match number.checked_mul(scale) {
        Some(0) => Err(format!("size {t:?} must be greater than zero")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("size {t:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::native::testing::check_cases;

    /// `[mail]` and `[mail.smtp]` diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // Mail.
            (
                "[mail]\nfrom = \"@nobody\"\n[mail.smtp]\npassword = \"x\"\n",
                &[
                    "2:8: error: mail.from: bad mail address \"@nobody\"",
                    "3:1: error: mail.smtp: password is set but username is not",
                    "3:1: error: mail.smtp: missing key \"host\" (the SMTP relay, e.g. host = \"mail.example.com\")",
                ],
            ),
            (
                "[mail]\nretry_initial = \"1m\"\nretry_max = \"10s\"\nmax_age = \"0s\"\n",
                &[
                    "3:13: error: mail: retry_max (10s) is shorter than retry_initial (60s)",
                    "4:11: error: mail.max_age: must be greater than zero",
                ],
            ),
            (
                "[mail.smtp]\nhost = \"mx\"\nusername = \"u\"\npassword = \"p\"\n",
                &[
                    "1:1: warning: mail.smtp: the password is sent in clear text because tls = \"none\"; use \"starttls\" or \"implicit\"",
                ],
            ),
        ]);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("0B").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }
}
