//! A service's `monitor = { type = ... }`: the built-in tcp/http/https/ping/smtp/udp/dns checks, `exec` (mon.d scripts) and `lua` monitors.

use std::fmt;
use std::time::Duration;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::DeValue;

use super::checks::Scalar;
use super::cursor::{Dur, Int, KeyPath, Reader, Text};
use crate::config::model::{
    DNS_TYPES, DnsCheck, HexPattern, HttpCheck, HttpUrl, Monitor, PingCheck, SMTP_DEFAULT_HELO,
    Settings, SmtpCheck, TcpCheck, UdpCheck,
};

const MONITOR_TYPES: &[&str] = &[
    "tcp", "http", "https", "ping", "smtp", "udp", "dns", "lua", "exec",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcpMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    port: Option<Int>,
    send: Option<String>,
    expect: Option<Text>,
    timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    port: Option<Int>,
    method: Option<Text>,
    path: Option<Text>,
    host: Option<String>,
    status: Option<Vec<Spanned<Scalar>>>,
    body: Option<Text>,
    digest: Option<Text>,
    timeout: Option<Dur>,
    insecure: Option<Spanned<bool>>,
    /// Further URLs that must pass too (keepalived's several `url` blocks).
    more_urls: Option<Vec<Spanned<RawUrl>>>,
}

/// One of `more_urls`: `{ path = "/x", host = "...", status = [200], body = "re", digest = "md5" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    path: Option<Text>,
    host: Option<String>,
    status: Option<Vec<Spanned<Scalar>>>,
    body: Option<Text>,
    digest: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPingMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    count: Option<Int>,
    timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtpMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    port: Option<Int>,
    helo_name: Option<Text>,
    timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUdpMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    port: Option<Int>,
    payload: Option<Text>,
    require_reply: Option<Spanned<BoolOrText>>,
    min_reply_length: Option<Int>,
    max_reply_length: Option<Int>,
    timeout: Option<Dur>,
}

/// `require_reply = true` or a hex pattern the reply must start with.
enum BoolOrText {
    Bool(bool),
    Text(String),
}

impl<'de> Deserialize<'de> for BoolOrText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoolOrTextVisitor;
        impl Visitor<'_> for BoolOrTextVisitor {
            type Value = BoolOrText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a hex string such as \"50 4f xx\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<BoolOrText, E> {
                Ok(BoolOrText::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BoolOrText, E> {
                Ok(BoolOrText::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(BoolOrTextVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDnsMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    port: Option<Int>,
    query_type: Option<Text>,
    name: Option<Text>,
    timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    command: Option<Text>,
    args: Option<Vec<String>>,
    hosts: Option<bool>,
}

impl Reader<'_> {
    pub(super) fn monitor(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        settings: &Settings,
    ) -> Option<Monitor> {
        let at = value.span().start;
        let kind = self.type_key(value, p, at, "monitor type", MONITOR_TYPES)?;
        match kind.as_str() {
            "tcp" => {
                let raw = self.read::<RawTcpMonitor>(value, p)?;
                let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
                let expect_ok = raw
                    .expect
                    .as_ref()
                    .is_none_or(|e| self.regex(e, &p.key("expect")));
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                if raw.port.is_none() {
                    self.missing(at, p, "port", "e.g. port = 80");
                }
                let port = port?;
                expect_ok.then(|| {
                    Monitor::Tcp(TcpCheck {
                        port,
                        send: raw.send,
                        expect: raw.expect.map(Spanned::into_inner),
                        timeout: timeout.unwrap_or(Duration::from_secs(5)),
                    })
                })
            }
            "http" | "https" => {
                let tls = kind == "https";
                let raw = self.read::<RawHttpMonitor>(value, p)?;
                let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
                let mut ok = raw.port.is_none() || port.is_some();
                let method = match &raw.method {
                    Some(m) if is_http_token(m.get_ref()) => m.get_ref().to_ascii_uppercase(),
                    Some(m) => {
                        self.error(
                            m.span().start,
                            format!("{}: bad HTTP method {:?}", p.key("method"), m.get_ref()),
                        );
                        ok = false;
                        String::new()
                    }
                    None => "GET".to_string(),
                };
                let path = match &raw.path {
                    Some(path)
                        if path.get_ref().starts_with('/')
                            && !path.get_ref().contains(char::is_whitespace) =>
                    {
                        path.get_ref().clone()
                    }
                    Some(path) => {
                        self.error(
                            path.span().start,
                            format!(
                                "{}: {:?} must start with \"/\" and contain no spaces",
                                p.key("path"),
                                path.get_ref()
                            ),
                        );
                        ok = false;
                        String::new()
                    }
                    None => "/".to_string(),
                };
                let mut status = Vec::new();
                for (i, s) in raw.status.iter().flatten().enumerate() {
                    let range = status_range(s.get_ref());
                    match self.ok_or_report(range, s.span().start, &p.at_key("status", i)) {
                        Some(range) => status.push(range),
                        None => ok = false,
                    }
                }
                if raw.status.as_ref().is_some_and(Vec::is_empty) {
                    self.error(
                        at,
                        format!(
                            "{}: empty list (leave it out to accept 200-299)",
                            p.key("status")
                        ),
                    );
                    ok = false;
                }
                if status.is_empty() {
                    status.push((200, 299));
                }
                if let Some(body) = &raw.body {
                    ok &= self.regex(body, &p.key("body"));
                }
                if let Some(digest) = &raw.digest {
                    ok &= self.md5_digest(digest, &p.key("digest"));
                }
                let mut more_urls = Vec::new();
                for (i, url) in raw.more_urls.iter().flatten().enumerate() {
                    match self.more_url(url, &p.index("more_urls", i)) {
                        Some(url) => more_urls.push(url),
                        None => ok = false,
                    }
                }
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                if let Some(insecure) = &raw.insecure
                    && *insecure.get_ref()
                    && !tls
                {
                    self.warning(
                        insecure.span().start,
                        format!("{}: has no effect with type = \"http\" (it only skips certificate checks for https)", p.key("insecure")),
                    );
                }
                ok.then(|| {
                    Monitor::Http(HttpCheck {
                        tls,
                        port: port.unwrap_or(if tls { 443 } else { 80 }),
                        method,
                        path,
                        host_header: raw.host,
                        status,
                        body: raw.body.map(Spanned::into_inner),
                        timeout: timeout.unwrap_or(Duration::from_secs(10)),
                        insecure: raw.insecure.is_some_and(|i| i.into_inner()),
                        digest: raw.digest.map(|d| d.into_inner().to_ascii_lowercase()),
                        more_urls,
                    })
                })
            }
            "ping" => {
                let raw = self.read::<RawPingMonitor>(value, p)?;
                let count = self.int_in::<u32>(raw.count.as_ref(), &p.key("count"), 1, 100);
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                if raw.count.is_some() && count.is_none() {
                    return None;
                }
                Some(Monitor::Ping(PingCheck {
                    count: count.unwrap_or(3),
                    timeout: timeout.unwrap_or(Duration::from_secs(5)),
                }))
            }
            "smtp" => {
                let raw = self.read::<RawSmtpMonitor>(value, p)?;
                let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                let mut ok = raw.port.is_none() || port.is_some();
                if let Some(helo) = &raw.helo_name
                    && (helo.get_ref().is_empty()
                        || helo
                            .get_ref()
                            .contains(|c: char| c.is_whitespace() || c.is_control()))
                {
                    self.error(
                        helo.span().start,
                        format!(
                            "{}: {:?} must be one word (the name sent with HELO)",
                            p.key("helo_name"),
                            helo.get_ref()
                        ),
                    );
                    ok = false;
                }
                ok.then(|| {
                    Monitor::Smtp(SmtpCheck {
                        port: port.unwrap_or(25),
                        helo_name: raw
                            .helo_name
                            .map(Spanned::into_inner)
                            .unwrap_or_else(|| SMTP_DEFAULT_HELO.to_string()),
                        timeout: timeout.unwrap_or(Duration::from_secs(5)),
                    })
                })
            }
            "udp" => {
                let raw = self.read::<RawUdpMonitor>(value, p)?;
                let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
                if raw.port.is_none() {
                    self.missing(at, p, "port", "e.g. port = 53");
                }
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                let mut ok = raw.timeout.is_none() || timeout.is_some();
                let min = self.int_in::<u16>(
                    raw.min_reply_length.as_ref(),
                    &p.key("min_reply_length"),
                    0,
                    65535,
                );
                let max = self.int_in::<u16>(
                    raw.max_reply_length.as_ref(),
                    &p.key("max_reply_length"),
                    0,
                    65535,
                );
                ok &= (raw.min_reply_length.is_none() || min.is_some())
                    && (raw.max_reply_length.is_none() || max.is_some());
                let payload = match &raw.payload {
                    Some(text) => match HexPattern::parse(text.get_ref(), false) {
                        Ok(pattern) => Some(pattern.bytes),
                        Err(e) => {
                            self.error(text.span().start, format!("{}: {e}", p.key("payload")));
                            ok = false;
                            None
                        }
                    },
                    None => None,
                };
                let (require_reply, reply) = match &raw.require_reply {
                    None => (false, None),
                    Some(r) => match r.get_ref() {
                        BoolOrText::Bool(b) => (*b, None),
                        BoolOrText::Text(text) => match HexPattern::parse(text, true) {
                            Ok(pattern) => (true, Some(pattern)),
                            Err(e) => {
                                self.error(
                                    r.span().start,
                                    format!("{}: {e}", p.key("require_reply")),
                                );
                                ok = false;
                                (true, None)
                            }
                        },
                    },
                };
                let (min, max) = (min.unwrap_or(0), max.unwrap_or(255));
                if ok && reply.is_some() && min > max {
                    self.warning(
                        at,
                        format!(
                            "{}: min_reply_length {min} > max_reply_length {max}: every reply fails",
                            p
                        ),
                    );
                }
                let port = port?;
                ok.then(|| {
                    Monitor::Udp(UdpCheck {
                        port,
                        payload,
                        require_reply,
                        reply,
                        min_reply_length: min,
                        max_reply_length: max,
                        timeout: timeout.unwrap_or(Duration::from_secs(5)),
                    })
                })
            }
            "dns" => {
                let raw = self.read::<RawDnsMonitor>(value, p)?;
                let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                let mut ok = (raw.port.is_none() || port.is_some())
                    && (raw.timeout.is_none() || timeout.is_some());
                let query_type = match &raw.query_type {
                    None => "SOA".to_string(),
                    Some(t) => match DNS_TYPES
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(t.get_ref()))
                    {
                        Some((name, _)) => name.to_string(),
                        None => {
                            let names: Vec<&str> = DNS_TYPES.iter().map(|(n, _)| *n).collect();
                            self.error(
                                t.span().start,
                                format!(
                                    "{}: unknown query type {:?} (expected one of: {})",
                                    p.key("query_type"),
                                    t.get_ref(),
                                    names.join(", ")
                                ),
                            );
                            ok = false;
                            String::new()
                        }
                    },
                };
                let name = match &raw.name {
                    None => ".".to_string(),
                    Some(n) => {
                        let name = if n.get_ref().is_empty() {
                            ".".to_string()
                        } else {
                            n.get_ref().clone()
                        };
                        if let Err(e) = crate::monitor::dns::encode_query(0, &name, 0) {
                            self.error(n.span().start, format!("{}: {e}", p.key("name")));
                            ok = false;
                        }
                        name
                    }
                };
                ok.then(|| {
                    Monitor::Dns(DnsCheck {
                        port: port.unwrap_or(53),
                        query_type,
                        name,
                        timeout: timeout.unwrap_or(Duration::from_secs(5)),
                    })
                })
            }
            "lua" => {
                let (script, args) =
                    self.lua_call(value, p, at, "the name of a Lua monitor", settings)?;
                Some(Monitor::Lua { script, args })
            }
            "exec" => {
                let raw = self.read::<RawExecMonitor>(value, p)?;
                let command = self.required(
                    raw.command.as_ref(),
                    at,
                    p,
                    "command",
                    "e.g. command = \"tcp.monitor\"",
                )?;
                let path = match self.find_script(command, &p.key("command"), &settings.mondir)? {
                    Ok(path) => Some(path),
                    Err(searched) => {
                        self.warning(
                            command.span().start,
                            format!(
                                "{}: monitor script {:?} not found (searched {searched}); the service reports a config error until it exists",
                                p.key("command"),
                                command.get_ref()
                            ),
                        );
                        None
                    }
                };
                Some(Monitor::Exec {
                    name: command.get_ref().clone(),
                    args: raw.args.unwrap_or_default(),
                    append_hosts: raw.hosts.unwrap_or(true),
                    path,
                })
            }
            _ => None,
        }
    }
}

impl Reader<'_> {
    /// 32 hex digits, as md5sum prints them.
    fn md5_digest(&mut self, digest: &Text, path: &str) -> bool {
        let text = digest.get_ref();
        let ok = text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            self.error(
                digest.span().start,
                format!("{path}: {text:?} is not an MD5 digest (32 hex digits, as md5sum prints)"),
            );
        }
        ok
    }

    /// One entry of an http monitor's `more_urls`.
    fn more_url(&mut self, raw: &Spanned<RawUrl>, p: &KeyPath) -> Option<HttpUrl> {
        let at = raw.span().start;
        let raw = raw.get_ref();
        let mut ok = true;
        let path = match &raw.path {
            Some(path)
                if path.get_ref().starts_with('/')
                    && !path.get_ref().contains(char::is_whitespace) =>
            {
                path.get_ref().clone()
            }
            Some(path) => {
                self.error(
                    path.span().start,
                    format!(
                        "{}: {:?} must start with \"/\" and contain no spaces",
                        p.key("path"),
                        path.get_ref()
                    ),
                );
                return None;
            }
            None => {
                self.missing(at, p, "path", "e.g. path = \"/health\"");
                return None;
            }
        };
        let mut status = Vec::new();
        for (i, s) in raw.status.iter().flatten().enumerate() {
            match self.ok_or_report(
                status_range(s.get_ref()),
                s.span().start,
                &p.at_key("status", i),
            ) {
                Some(range) => status.push(range),
                None => ok = false,
            }
        }
        if status.is_empty() {
            status.push((200, 299));
        }
        if let Some(body) = &raw.body {
            ok &= self.regex(body, &p.key("body"));
        }
        if let Some(digest) = &raw.digest {
            ok &= self.md5_digest(digest, &p.key("digest"));
        }
        ok.then(|| HttpUrl {
            path,
            host_header: raw.host.clone(),
            status,
            body: raw.body.as_ref().map(|b| b.get_ref().clone()),
            digest: raw
                .digest
                .as_ref()
                .map(|d| d.get_ref().to_ascii_lowercase()),
        })
    }
}

fn is_http_token(method: &str) -> bool {
    !method.is_empty() && method.chars().all(|c| c.is_ascii_alphabetic())
}

/// `200` or `"300-399"`: an inclusive range of HTTP status codes.
fn status_range(value: &Scalar) -> Result<(u16, u16), String> {
    let code = |n: i64| -> Result<u16, String> {
        u16::try_from(n)
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| format!("{n} is not an HTTP status code (100 to 599)"))
    };
    match value {
        Scalar::Integer(n) => code(*n).map(|c| (c, c)),
        Scalar::Text(text) => {
            let bad = || {
                format!(
                    "bad status {text:?} (expected a code such as 200 or a range such as \"200-399\")"
                )
            };
            let (low, high) = text.split_once('-').unwrap_or((text, text));
            let low = code(low.trim().parse().map_err(|_| bad())?)?;
            let high = code(high.trim().parse().map_err(|_| bad())?)?;
            if low > high {
                return Err(format!("status range {text:?} is empty ({low} > {high})"));
            }
            Ok((low, high))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::native::testing::check_cases;

    /// Monitor diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // Monitors.
            (
                "[watch.g.s]\nmonitor = { type = \"tcp\", port = \"80\", prot = 3, expect = \"(\" }\n",
                &[
                    "2:34: error: watch.g.s.monitor.port: expected an integer, found string \"80\"",
                    "2:40: error: watch.g.s.monitor: unknown key \"prot\"; did you mean \"port\"? (valid keys: type, port, send, expect, timeout)",
                    "2:59: error: watch.g.s.monitor.expect: bad regex \"(\": unclosed group",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"tcp\" }\n",
                &["2:11: error: watch.g.s.monitor: missing key \"port\" (e.g. port = 80)"],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"htp\" }\n",
                &[
                    "2:20: error: watch.g.s.monitor.type: unknown monitor type \"htp\"; did you mean \"http\"? (expected one of: tcp, http, https, ping, smtp, udp, dns, lua, exec)",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"http\", status = [200, \"300-199\", 700], path = \"x\", insecure = true }\n",
                &[
                    "2:43: error: watch.g.s.monitor.status[1]: status range \"300-199\" is empty (300 > 199)",
                    "2:54: error: watch.g.s.monitor.status[2]: 700 is not an HTTP status code (100 to 599)",
                    "2:67: error: watch.g.s.monitor.path: \"x\" must start with \"/\" and contain no spaces",
                    "2:83: warning: watch.g.s.monitor.insecure: has no effect with type = \"http\" (it only skips certificate checks for https)",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"http\", digest = \"0123\" }\n",
                &[
                    "2:37: error: watch.g.s.monitor.digest: \"0123\" is not an MD5 digest (32 hex digits, as md5sum prints)",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"ping\", count = 0 }\n",
                &["2:36: error: watch.g.s.monitor.count: 0 is out of range (expected 1 to 100)"],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"exec\", command = \"foo.monitor\" }\n",
                &[
                    "2:38: warning: watch.g.s.monitor.command: monitor script \"foo.monitor\" not found (searched /etc/keepmon/mon.d); the service reports a config error until it exists",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"smtp\", helo = \"x\", helo_name = \"a b\" }\n",
                &[
                    "2:28: error: watch.g.s.monitor: unknown key \"helo\" (valid keys: type, port, helo_name, timeout)",
                    "2:52: error: watch.g.s.monitor.helo_name: \"a b\" must be one word (the name sent with HELO)",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"udp\", port = 53, payload = \"0a x1\", require_reply = \"0a 0\", max = 3 }\n",
                &[
                    "2:48: error: watch.g.s.monitor.payload: 'x' is not a hex digit",
                    "2:73: error: watch.g.s.monitor.require_reply: \"0a 0\" has an odd number of hex digits (two per octet)",
                    "2:81: error: watch.g.s.monitor: unknown key \"max\" (valid keys: type, port, payload, require_reply, min_reply_length, max_reply_length, timeout)",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"dns\", query_type = \"SRV\", name = \"a..b\" }\n",
                &[
                    "2:40: error: watch.g.s.monitor.query_type: unknown query type \"SRV\" (expected one of: A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY)",
                    "2:54: error: watch.g.s.monitor.name: \"a..b\" has an empty label",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"lua\" }\n",
                &[
                    "2:11: error: watch.g.s.monitor: missing key \"script\" (the name of a Lua monitor)",
                ],
            ),
        ]);
    }

    #[test]
    fn status_ranges_parse() {
        assert_eq!(
            status_range(&Scalar::Text("200-204".into())),
            Ok((200, 204))
        );
        assert!(status_range(&Scalar::Integer(-1)).is_err());
    }
}
