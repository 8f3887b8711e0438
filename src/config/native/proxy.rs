//! A virtual server's built-in proxy keys: `mode`, `maxconn`, `timeout`, `allbackups`, `access_log`, and the http mode's `forwardfor`, `forwarded_proto`, `cookie`, `hash`, `tls`, `server_tls`, `error_files` (the keys live in `virtual_servers.rs`'s raw struct; this file turns them into `ProxyOptions`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::cursor::{Dur, KeyPath, Reader, Text};
use crate::config::model::{
    AccessLog, AccessLogTarget, CookieMode, CookiePersistence, DataPlane, ErrorFile, ForwardFor,
    HashOn, HttpOptions, LbScheduler, Network, ProxyMode, ProxyOptions, ProxyProtocol, ServerTls,
    TlsCert,
};

/// `timeout = { client, server, http_request, http_keep_alive }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    client: Option<Dur>,
    server: Option<Dur>,
    http_request: Option<Dur>,
    http_keep_alive: Option<Dur>,
    queue: Option<Dur>,
}

/// `access_log = { file = "/var/log/keepmon/web.log", dontlognull = true }`
/// (`{}`: to keepmon's own log).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccessLog {
    file: Option<Text>,
    dontlognull: Option<bool>,
}

/// `forwardfor = { header = "X-Client", except = "10.0.0.0/8" }` (`{}`
/// for the defaults).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForwardFor {
    header: Option<Text>,
    except: Option<Text>,
}

/// `cookie = { name = "SERVERID", mode = "insert", indirect = true, ... }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCookie {
    name: Option<Text>,
    mode: Option<Text>,
    indirect: Option<bool>,
    nocache: Option<bool>,
    httponly: Option<bool>,
    secure: Option<bool>,
}

/// One `tls = [{ cert = "...", key = "..." }]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsCert {
    cert: Option<Text>,
    key: Option<Text>,
}

/// `server_tls = { verify = "none" }` or `server_tls = { ca_file = "...",
/// sni = "...", verify_host = "..." }`: TLS towards the real servers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServerTls {
    verify: Option<Text>,
    ca_file: Option<Text>,
    sni: Option<Text>,
    verify_host: Option<Text>,
}

/// The proxy keys of one `[virtual_servers.NAME]`, borrowed from its raw struct.
pub(super) struct RawProxy<'r> {
    pub(super) mode: Option<&'r Text>,
    pub(super) maxconn: Option<&'r Spanned<u32>>,
    pub(super) timeout: Option<&'r Spanned<RawTimeouts>>,
    pub(super) forwardfor: Option<&'r Spanned<RawForwardFor>>,
    pub(super) forwarded_proto: Option<bool>,
    pub(super) cookie: Option<&'r Spanned<RawCookie>>,
    pub(super) hash: Option<&'r Text>,
    pub(super) tls: Option<&'r [Spanned<RawTlsCert>]>,
    pub(super) server_tls: Option<&'r Spanned<RawServerTls>>,
    pub(super) send_proxy: Option<&'r Text>,
    pub(super) accept_proxy: Option<bool>,
    pub(super) allbackups: Option<bool>,
    pub(super) error_files: Option<&'r Spanned<BTreeMap<String, Text>>>,
    pub(super) access_log: Option<&'r Spanned<RawAccessLog>>,
    /// Each real server's `cookie` key, with its address when that parsed.
    pub(super) server_cookies: Vec<(Option<SocketAddr>, &'r Text)>,
    pub(super) scheduler: LbScheduler,
    pub(super) dataplane: DataPlane,
}

const MODES: &[(&str, ProxyMode)] = &[("tcp", ProxyMode::Tcp), ("http", ProxyMode::Http)];

const PROXY_PROTOCOLS: &[(&str, ProxyProtocol)] =
    &[("v1", ProxyProtocol::V1), ("v2", ProxyProtocol::V2)];

impl Reader<'_> {
    /// The [`ProxyOptions`] of a virtual server; http-only keys on a tcp
    /// server and cookies without a `cookie` table are errors.
    pub(super) fn proxy_options(&mut self, raw: RawProxy<'_>, p: &KeyPath) -> ProxyOptions {
        let mode = self
            .choice(raw.mode, &p.key("mode"), "mode", MODES)
            .unwrap_or_default();
        if mode == ProxyMode::Http
            && raw.dataplane != DataPlane::Proxy
            && let Some(at) = raw.mode
        {
            self.error(
                at.span().start,
                format!(
                    "{}: http mode needs the built-in proxy (dataplane = \"proxy\")",
                    p.key("mode")
                ),
            );
        }
        let mut options = ProxyOptions {
            mode,
            maxconn: raw.maxconn.map(|n| *n.get_ref()).filter(|&n| n > 0),
            send_proxy: self.choice(
                raw.send_proxy,
                &p.key("send_proxy"),
                "PROXY protocol version",
                PROXY_PROTOCOLS,
            ),
            accept_proxy: raw.accept_proxy.unwrap_or(false),
            allbackups: raw.allbackups.unwrap_or(false),
            ..ProxyOptions::default()
        };
        if let Some(log) = raw.access_log {
            options.access_log = self.access_log(log.get_ref(), &p.child("access_log"));
        }
        if let Some(timeout) = raw.timeout {
            let tp = p.child("timeout");
            let t = timeout.get_ref();
            options.timeout_client = self.positive_duration(t.client.as_ref(), &tp.key("client"));
            options.timeout_server = self.positive_duration(t.server.as_ref(), &tp.key("server"));
            options.timeout_queue = self.positive_duration(t.queue.as_ref(), &tp.key("queue"));
            if let Some(d) =
                self.positive_duration(t.http_request.as_ref(), &tp.key("http_request"))
            {
                options.http.timeout_http_request = d;
            }
            if let Some(d) =
                self.positive_duration(t.http_keep_alive.as_ref(), &tp.key("http_keep_alive"))
            {
                options.http.timeout_http_keep_alive = d;
            }
        }
        let http_only: [(&str, Option<usize>); 7] = [
            ("error_files", raw.error_files.map(|v| v.span().start)),
            ("forwardfor", raw.forwardfor.map(|v| v.span().start)),
            ("forwarded_proto", raw.forwarded_proto.map(|_| 0)),
            ("cookie", raw.cookie.map(|v| v.span().start)),
            ("hash", raw.hash.map(|v| v.span().start)),
            (
                "tls",
                raw.tls.and_then(|v| v.first()).map(|v| v.span().start),
            ),
            ("server_tls", raw.server_tls.map(|v| v.span().start)),
        ];
        if mode != ProxyMode::Http {
            for (key, at) in http_only {
                if let Some(at) = at {
                    self.error(at, format!("{}: only for mode = \"http\"", p.key(key)));
                }
            }
            for (_, text) in &raw.server_cookies {
                self.error(
                    text.span().start,
                    "real_servers: cookie: only for mode = \"http\"".to_string(),
                );
            }
            return options;
        }
        if let Some(files) = raw.error_files {
            options.error_files = self.error_files(files.get_ref(), &p.child("error_files"));
        }
        options.http = self.http_options(&raw, p, options.http.clone());
        options
    }

    /// `access_log = { file, dontlognull }`.
    fn access_log(&mut self, raw: &RawAccessLog, p: &KeyPath) -> Option<AccessLog> {
        let to = match &raw.file {
            None => AccessLogTarget::Tracing,
            Some(file) => AccessLogTarget::File(self.path(Some(file), &p.key("file"))?),
        };
        Some(AccessLog {
            to,
            dontlognull: raw.dontlognull.unwrap_or(false),
        })
    }

    /// `error_files = { 503 = "/etc/keepmon/503.http" }`: each file is read
    /// now and must hold a whole HTTP response (HAProxy's `errorfile`).
    fn error_files(
        &mut self,
        raw: &BTreeMap<String, Text>,
        p: &KeyPath,
    ) -> BTreeMap<u16, ErrorFile> {
        let mut files = BTreeMap::new();
        for (status_text, file) in raw {
            let key = p.key(status_text);
            let Some(status) = status_text
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|s| ErrorFile::STATUSES.contains(s))
            else {
                let valid: Vec<String> = ErrorFile::STATUSES.iter().map(u16::to_string).collect();
                self.error(
                    file.span().start,
                    format!(
                        "{key}: {status_text:?} is not a status an error file can replace (expected one of: {})",
                        valid.join(", ")
                    ),
                );
                continue;
            };
            let Some(path) = self.path(Some(file), &key) else {
                continue;
            };
            let Some(text) = self.fs.read_to_string(&path) else {
                self.error(
                    file.span().start,
                    format!("{key}: cannot read {}", path.display()),
                );
                continue;
            };
            let shown = path.display().to_string();
            match ErrorFile::parse(path, &text) {
                Ok(parsed) => {
                    files.insert(status, parsed);
                }
                Err(why) => self.error(
                    file.span().start,
                    format!("{key}: {shown} is not an HTTP response: {why}"),
                ),
            }
        }
        files
    }

    fn http_options(
        &mut self,
        raw: &RawProxy<'_>,
        p: &KeyPath,
        mut http: HttpOptions,
    ) -> HttpOptions {
        if let Some(ff) = raw.forwardfor {
            let fp = p.child("forwardfor");
            let ff = ff.get_ref();
            let mut header = "x-forwarded-for".to_string();
            if let Some(name) = &ff.header
                && !self.blank(name, &fp.key("header"), "header name")
            {
                if hyper::header::HeaderName::from_bytes(name.get_ref().trim().as_bytes()).is_ok() {
                    header = name.get_ref().trim().to_ascii_lowercase();
                } else {
                    self.error(
                        name.span().start,
                        format!(
                            "{}: {:?} is not a header name",
                            fp.key("header"),
                            name.get_ref()
                        ),
                    );
                }
            }
            let except = ff.except.as_ref().and_then(|text| {
                let parsed = Network::parse(text.get_ref());
                self.ok_or_report(parsed, text.span().start, &fp.key("except"))
            });
            http.forwardfor = Some(ForwardFor { header, except });
        }
        http.forwarded_proto = raw.forwarded_proto.unwrap_or(false);

        if let Some(cookie) = raw.cookie {
            http.cookie = self.cookie(cookie, &p.child("cookie"));
        }
        let mut by_value: BTreeMap<String, SocketAddr> = BTreeMap::new();
        for (addr, text) in &raw.server_cookies {
            let value = text.get_ref().trim();
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"\";,\\~".contains(&b))
            {
                self.error(
                    text.span().start,
                    format!(
                        "real_servers: cookie {value:?}: expected letters, digits and punctuation other than \" ; , \\ ~"
                    ),
                );
                continue;
            }
            if http.cookie.is_none() {
                self.warning(
                    text.span().start,
                    format!(
                        "real_servers: cookie {value:?} has no effect without {}",
                        p.key("cookie")
                    ),
                );
            }
            if let Some(other) = by_value.get(value) {
                self.error(
                    text.span().start,
                    format!("real_servers: cookie {value:?} is already the cookie of {other}"),
                );
                continue;
            }
            if let Some(addr) = addr {
                by_value.insert(value.to_string(), *addr);
                http.server_cookies.insert(*addr, value.to_string());
            }
        }
        if let Some(hash) = raw.hash {
            http.hash = self.hash_on(hash, &p.key("hash"));
            if !matches!(
                raw.scheduler,
                LbScheduler::SourceHash | LbScheduler::Maglev(_) | LbScheduler::Haproxy(_)
            ) {
                self.error(
                    hash.span().start,
                    format!(
                        "{}: needs scheduler = \"mh\", \"sh\", \"haproxy-map\" or \"haproxy-consistent\" (a hashing scheduler), not {:?}",
                        p.key("hash"),
                        raw.scheduler.to_string()
                    ),
                );
            }
        }
        for (i, cert) in raw.tls.into_iter().flatten().enumerate() {
            let tp = p.index("tls", i);
            let c = cert.get_ref();
            let at = cert.span().start;
            let chain = self.required(
                c.cert.as_ref(),
                at,
                &tp,
                "cert",
                "e.g. cert = \"/etc/keepmon/site.pem\"",
            );
            let chain = self.path(chain, &tp.key("cert"));
            let key = self.required(
                c.key.as_ref(),
                at,
                &tp,
                "key",
                "e.g. key = \"/etc/keepmon/site.key\"",
            );
            let key = self.path(key, &tp.key("key"));
            if let (Some(cert), Some(key)) = (chain, key) {
                http.tls.push(TlsCert { cert, key });
            }
        }
        if let Some(server_tls) = raw.server_tls {
            http.server_tls = self.server_tls(server_tls, &p.child("server_tls"));
        }
        http
    }

    /// `server_tls`: no verification only when asked for by name (as
    /// HAProxy insists on `verify none`), else a CA file to verify with.
    fn server_tls(&mut self, raw: &Spanned<RawServerTls>, p: &KeyPath) -> Option<ServerTls> {
        let at = raw.span().start;
        let raw = raw.get_ref();
        let verify = self
            .choice(
                raw.verify.as_ref(),
                &p.key("verify"),
                "verification",
                &[("none", false), ("required", true)],
            )
            .unwrap_or(true);
        let name = |reader: &mut Self, text: Option<&Text>, key: &str| -> Option<String> {
            let text = text?;
            let value = text.get_ref().trim();
            if value.is_empty() || value.contains(char::is_whitespace) {
                reader.error(
                    text.span().start,
                    format!("{}: {value:?} is not a host name", p.key(key)),
                );
                return None;
            }
            Some(value.to_string())
        };
        let sni = name(self, raw.sni.as_ref(), "sni");
        let verify_host = name(self, raw.verify_host.as_ref(), "verify_host");
        let ca_file = match (verify, raw.ca_file.as_ref()) {
            (true, None) => {
                self.error(
                    at,
                    format!(
                        "{}: missing: the authorities that sign the servers' certificates (or verify = \"none\" to skip verification)",
                        p.key("ca_file")
                    ),
                );
                return None;
            }
            (true, Some(file)) => {
                let path = self.path(Some(file), &p.key("ca_file"))?;
                if !self.fs.is_file(&path) {
                    self.error(
                        file.span().start,
                        format!("{}: no such file: {}", p.key("ca_file"), path.display()),
                    );
                    return None;
                }
                Some(path)
            }
            (false, Some(file)) => {
                self.error(
                    file.span().start,
                    format!("{}: unused with verify = \"none\"", p.key("ca_file")),
                );
                return None;
            }
            (false, None) => None,
        };
        Some(ServerTls {
            ca_file,
            sni,
            verify_host,
        })
    }

    fn cookie(&mut self, raw: &Spanned<RawCookie>, p: &KeyPath) -> Option<CookiePersistence> {
        let at = raw.span().start;
        let raw = raw.get_ref();
        let name = self.required(raw.name.as_ref(), at, p, "name", "e.g. name = \"SERVERID\"")?;
        let name_text = name.get_ref().trim();
        if name_text.is_empty()
            || !name_text
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            self.error(
                name.span().start,
                format!("{}: {name_text:?} is not a cookie name", p.key("name")),
            );
            return None;
        }
        const COOKIE_MODES: &[(&str, u8)] = &[("insert", 0), ("prefix", 1), ("rewrite", 2)];
        let mode = self
            .choice(
                raw.mode.as_ref(),
                &p.key("mode"),
                "cookie mode",
                COOKIE_MODES,
            )
            .unwrap_or(0);
        let insert_flags = [
            ("indirect", raw.indirect),
            ("nocache", raw.nocache),
            ("httponly", raw.httponly),
            ("secure", raw.secure),
        ];
        let mode = match mode {
            0 => CookieMode::Insert {
                indirect: raw.indirect.unwrap_or(false),
                nocache: raw.nocache.unwrap_or(false),
                httponly: raw.httponly.unwrap_or(false),
                secure: raw.secure.unwrap_or(false),
            },
            other => {
                for (flag, value) in insert_flags {
                    if value.is_some() {
                        self.error(at, format!("{}: only with mode = \"insert\"", p.key(flag)));
                    }
                }
                if other == 1 {
                    CookieMode::Prefix
                } else {
                    CookieMode::Rewrite
                }
            }
        };
        Some(CookiePersistence {
            name: name_text.to_string(),
            mode,
        })
    }

    fn hash_on(&mut self, text: &Text, path: &str) -> Option<HashOn> {
        let value = text.get_ref().trim();
        let (kind, arg) = match value.split_once(':') {
            Some((kind, arg)) => (kind.trim(), Some(arg.trim())),
            None => (value, None),
        };
        match (kind.to_ascii_lowercase().as_str(), arg) {
            ("uri", None) => Some(HashOn::Uri),
            ("header", Some(name))
                if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok() =>
            {
                Some(HashOn::Header(name.to_ascii_lowercase()))
            }
            ("url_param", Some(name)) if !name.is_empty() => {
                Some(HashOn::UrlParam(name.to_string()))
            }
            _ => {
                self.error(
                    text.span().start,
                    format!(
                        "{path}: {value:?}: expected \"uri\", \"header:NAME\" or \"url_param:NAME\""
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::model::{AccessLogTarget, CookieMode, HashOn, ProxyMode, ProxyProtocol};
    use crate::config::native::testing::{FakeFs, check, parse_with};

    const BASE: &str = "[virtual_servers.web]\nlisten = \"127.0.0.1:8080\"\n";

    #[test]
    fn http_mode_reads_every_key() {
        let text = format!(
            "{BASE}mode = \"http\"\nscheduler = \"mh\"\nhash = \"url_param:id\"\nsend_proxy = \"v2\"\n\
             timeout = {{ server = \"20s\", http_request = \"5s\", http_keep_alive = \"1s\" }}\n\
             forwardfor = {{ header = \"X-Client\", except = \"10.0.0.0/8\" }}\nforwarded_proto = true\n\
             cookie = {{ name = \"SERVERID\", mode = \"insert\", indirect = true, nocache = true }}\n\
             real_servers = [{{ addr = \"127.0.0.1:81\", cookie = \"s1\" }}, {{ addr = \"127.0.0.1:82\", cookie = \"s2\" }}]\n"
        );
        let (config, diagnostics) = parse_with(&text, &FakeFs::default());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let proxy = &config.unwrap().virtual_servers["web"].proxy;
        assert_eq!(proxy.mode, ProxyMode::Http);
        assert_eq!(proxy.send_proxy, Some(ProxyProtocol::V2));
        assert_eq!(proxy.timeout_server, Some(Duration::from_secs(20)));
        assert_eq!(proxy.http.timeout_http_request, Duration::from_secs(5));
        assert_eq!(proxy.http.timeout_http_keep_alive, Duration::from_secs(1));
        let ff = proxy.http.forwardfor.as_ref().unwrap();
        assert_eq!(ff.header, "x-client");
        assert_eq!(ff.except.unwrap().to_string(), "10.0.0.0/8");
        assert!(proxy.http.forwarded_proto);
        let cookie = proxy.http.cookie.as_ref().unwrap();
        assert_eq!(cookie.name, "SERVERID");
        assert_eq!(
            cookie.mode,
            CookieMode::Insert {
                indirect: true,
                nocache: true,
                httponly: false,
                secure: false
            }
        );
        assert_eq!(proxy.http.server_cookies.len(), 2);
        assert_eq!(proxy.http.hash, Some(HashOn::UrlParam("id".into())));
    }

    #[test]
    fn http_keys_are_refused_in_tcp_mode_and_bad_values_named() {
        check(
            &format!(
                "{BASE}forwardfor = {{}}\nreal_servers = [{{ addr = \"127.0.0.1:81\", cookie = \"s1\" }}]\n"
            ),
            &[
                "3:14: error: virtual_servers.web.forwardfor: only for mode = \"http\"",
                "4:51: error: real_servers: cookie: only for mode = \"http\"",
            ],
        );
        check(
            &format!(
                "{BASE}mode = \"http\"\nhash = \"uri\"\ncookie = {{ name = \"S\", mode = \"prefix\", nocache = true }}\n\
                 real_servers = [{{ addr = \"127.0.0.1:81\", cookie = \"a\" }}, {{ addr = \"127.0.0.1:82\", cookie = \"a\" }}]\n"
            ),
            &[
                "4:8: error: virtual_servers.web.hash: needs scheduler = \"mh\", \"sh\", \"haproxy-map\" or \"haproxy-consistent\" (a hashing scheduler), not \"wlc\"",
                "5:10: error: virtual_servers.web.cookie.nocache: only with mode = \"insert\"",
                "6:92: error: real_servers: cookie \"a\" is already the cookie of 127.0.0.1:81",
            ],
        );
    }

    const SORRY: &str = "HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\n\r\n<h1>Back soon</h1>\n";

    #[test]
    fn queue_backup_slowstart_error_files_and_access_log_are_read() {
        let text = format!(
            "{BASE}mode = \"http\"\nallbackups = true\ntimeout = {{ queue = \"3s\" }}\n\
             error_files = {{ 503 = \"/etc/keepmon/503.http\" }}\n\
             access_log = {{ file = \"/var/log/keepmon/web.log\", dontlognull = true }}\n\
             real_servers = [{{ addr = \"127.0.0.1:81\", maxconn = 10, maxqueue = 5, slowstart = \"20s\" }}, \
             {{ addr = \"127.0.0.1:82\", backup = true }}]\n"
        );
        let fs = FakeFs::with_texts(&[("/etc/keepmon/503.http", SORRY)]);
        let (config, diagnostics) = parse_with(&text, &fs);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let vs = &config.unwrap().virtual_servers["web"];
        let proxy = &vs.proxy;
        assert!(proxy.allbackups);
        assert_eq!(proxy.timeout_queue, Some(Duration::from_secs(3)));
        let sorry = &proxy.error_files[&503];
        assert_eq!(sorry.status, 503);
        assert_eq!(
            sorry.headers[0],
            ("Cache-Control".into(), "no-cache".into())
        );
        assert_eq!(sorry.body, b"<h1>Back soon</h1>\n");
        let log = proxy.access_log.as_ref().unwrap();
        assert_eq!(
            log.to,
            AccessLogTarget::File("/var/log/keepmon/web.log".into())
        );
        assert!(log.dontlognull);
        let (a, b) = (&vs.real_servers[0], &vs.real_servers[1]);
        assert_eq!(
            (a.maxconn, a.maxqueue, a.backup),
            (Some(10), Some(5), false)
        );
        assert_eq!(a.slowstart, Some(Duration::from_secs(20)));
        assert_eq!(
            (b.maxconn, b.maxqueue, b.backup, b.slowstart),
            (None, None, true, None)
        );
    }

    #[test]
    fn server_tls_is_read_and_verification_is_never_silently_off() {
        let text = format!(
            "{BASE}mode = \"http\"\nserver_tls = {{ ca_file = \"/etc/keepmon/ca.pem\", sni = \"app.test\", verify_host = \"x.test\" }}\n"
        );
        let fs = FakeFs::with_texts(&[("/etc/keepmon/ca.pem", "pem")]);
        let (config, diagnostics) = parse_with(&text, &fs);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(
            config.unwrap().virtual_servers["web"].proxy.http.server_tls,
            Some(crate::config::model::ServerTls {
                ca_file: Some("/etc/keepmon/ca.pem".into()),
                sni: Some("app.test".into()),
                verify_host: Some("x.test".into()),
            })
        );
        let (config, diagnostics) = parse_with(
            &format!("{BASE}mode = \"http\"\nserver_tls = {{ verify = \"none\" }}\n"),
            &FakeFs::default(),
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let tls = config.unwrap().virtual_servers["web"]
            .proxy
            .http
            .server_tls
            .clone();
        assert_eq!(tls.map(|t| t.ca_file), Some(None));
        check(
            &format!("{BASE}mode = \"http\"\nserver_tls = {{ sni = \"app.test\" }}\n"),
            &[
                "4:14: error: virtual_servers.web.server_tls.ca_file: missing: the authorities that sign the servers' certificates (or verify = \"none\" to skip verification)",
            ],
        );
        check(
            &format!("{BASE}mode = \"http\"\nserver_tls = {{ ca_file = \"/nope.pem\" }}\n"),
            &["4:26: error: virtual_servers.web.server_tls.ca_file: no such file: /nope.pem"],
        );
        check(
            &format!("{BASE}server_tls = {{ verify = \"none\" }}\n"),
            &["3:14: error: virtual_servers.web.server_tls: only for mode = \"http\""],
        );
    }

    #[test]
    fn defaults_change_nothing() {
        let text = format!("{BASE}real_servers = [{{ addr = \"127.0.0.1:81\" }}]\n");
        let (config, diagnostics) = parse_with(&text, &FakeFs::default());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let vs = &config.unwrap().virtual_servers["web"];
        assert_eq!(vs.proxy, crate::config::model::ProxyOptions::default());
        let rs = &vs.real_servers[0];
        assert_eq!(
            (rs.backup, rs.maxconn, rs.maxqueue, rs.slowstart),
            (false, None, None, None)
        );
    }

    #[test]
    fn bad_queue_and_error_files_are_named() {
        let fs = FakeFs::with_texts(&[
            (
                "/etc/keepmon/half.http",
                "HTTP/1.0 503 Busy\r\nContent-Type: text/html\r\n",
            ),
            (
                "/etc/keepmon/long.http",
                "HTTP/1.0 503 Busy\r\nContent-Length: 99\r\n\r\nshort",
            ),
            ("/etc/keepmon/ok.http", SORRY),
        ]);
        let text = format!(
            "{BASE}mode = \"http\"\n\
             error_files = {{ 503 = \"/etc/keepmon/half.http\", 502 = \"/etc/keepmon/long.http\", 504 = \"/etc/keepmon/none.http\", 302 = \"/etc/keepmon/ok.http\" }}\n\
             real_servers = [{{ addr = \"127.0.0.1:81\", maxqueue = 5 }}]\n"
        );
        let (_, found) = parse_with(&text, &fs);
        assert_eq!(
            found,
            [
                "4:23: error: virtual_servers.web.error_files.503: /etc/keepmon/half.http is not an HTTP response: the head does not end with an empty line",
                "4:55: error: virtual_servers.web.error_files.502: /etc/keepmon/long.http is not an HTTP response: Content-Length says 99 bytes but the body has 5",
                "4:87: error: virtual_servers.web.error_files.504: cannot read /etc/keepmon/none.http",
                "4:119: error: virtual_servers.web.error_files.302: \"302\" is not a status an error file can replace (expected one of: 200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504)",
                "5:53: error: virtual_servers.web.real_servers[0].maxqueue: a queue needs a limit; set virtual_servers.web.real_servers[0].maxconn too (a server without maxconn never queues)",
            ],
            "{text}"
        );
        check(
            &format!("{BASE}error_files = {{ 503 = \"/etc/keepmon/ok.http\" }}\n"),
            &["3:15: error: virtual_servers.web.error_files: only for mode = \"http\""],
        );
    }

    #[test]
    fn proxy_limits_on_a_kernel_data_plane_are_named() {
        let text = format!(
            "{BASE}dataplane = \"ipvs\"\nreal_servers = [{{ addr = \"127.0.0.1:81\", maxconn = 5, slowstart = \"10s\" }}]\n"
        );
        let compiled = crate::config::compile_str(
            &text,
            std::path::Path::new("/etc/keepmon/keepmon.toml"),
            crate::config::Format::Toml,
            &FakeFs::default(),
        )
        .unwrap_or_else(|e| panic!("{}", e.diagnostics));
        let shown = compiled.warnings.to_string();
        assert!(
            shown.contains("maxconn, maxqueue and slowstart are the built-in proxy's; dataplane Ipvs ignores them"),
            "{shown}"
        );
    }
}
