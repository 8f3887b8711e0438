//! The keywords of HAProxy's `defaults`, `frontend`, `backend` and `listen` sections: each line read into one proxy's settings (`Proxy`), with HAProxy's capability rules, defaults and messages; maps nothing onto the model.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::acl::{self, AclError};
use crate::config::diag::Location;
use crate::config::haproxy::Ctx;
use crate::config::haproxy::lexer::Line;
use crate::config::model::{
    Acl, AclTest, Condition, CookieMode, CookiePersistence, ForwardFor, HaproxyHash, HashFunction,
    Network, ProxyMode, ProxyProtocol,
};
use crate::config::values::suggest;

/// Which section a proxy was written in (HAProxy's capabilities).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Defaults => "defaults",
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Listen => "listen",
        }
    }

    /// Accepts connections (HAProxy's PR_CAP_FE).
    pub fn frontend(self) -> bool {
        matches!(self, Kind::Frontend | Kind::Listen | Kind::Defaults)
    }

    /// Has servers (PR_CAP_BE).
    pub fn backend(self) -> bool {
        matches!(self, Kind::Backend | Kind::Listen | Kind::Defaults)
    }
}

/// A value and where it was written.
#[derive(Clone, Debug)]
pub struct At<T> {
    pub value: T,
    pub at: Location,
}

/// HAProxy's `balance` algorithms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    Uri,
    UrlParam(String),
    Header(String),
    Random,
}

/// `option httpchk [METHOD] [URI] [VERSION]` plus `http-check expect`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpChk {
    pub method: String,
    pub uri: String,
    /// The Host header given in the version word (`HTTP/1.1\r\nHost:\ x`).
    pub host: Option<String>,
}

/// `http-check expect [!] status|rstatus|string|rstring VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpExpect {
    Status(Vec<(u16, u16)>),
    /// A regex matched against the body (`string` escaped as a regex).
    Body(String),
}

/// `tcp-check connect|send|expect` rules, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpRule {
    Connect {
        port: Option<u16>,
    },
    Send(String),
    /// A regex (`string` escaped).
    Expect(String),
}

/// A server's options (and `default-server`'s).
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    pub check: bool,
    pub inter: Option<Duration>,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub weight: Option<u32>,
    pub backup: Option<Location>,
    pub disabled: bool,
    pub cookie: Option<String>,
    pub send_proxy: Option<ProxyProtocol>,
    pub check_port: Option<u16>,
    pub check_addr: Option<IpAddr>,
    pub ssl: bool,
    /// `verify none` (false) or `verify required` (true); None: the
    /// global `ssl-server-verify` (required by default).
    pub verify: Option<bool>,
    /// `ca-file`, resolved against `ca-base`.
    pub ca_file: Option<(PathBuf, Location)>,
    /// `sni str(NAME)`: the name.
    pub sni: Option<String>,
    pub verifyhost: Option<String>,
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    pub slowstart: Option<Duration>,
    /// Options keepmon cannot honour yet, with where they were written.
    pub unsupported: Vec<(String, Location)>,
}

#[derive(Clone, Debug)]
pub struct Server {
    pub name: String,
    /// None: no port (HAProxy uses the port the client connected to).
    pub addr: (IpAddr, Option<u16>),
    pub opts: ServerOpts,
    pub at: Location,
}

#[derive(Clone, Debug)]
pub struct Bind {
    pub addrs: Vec<SocketAddr>,
    pub ssl: bool,
    pub crt: Vec<PathBuf>,
    pub accept_proxy: bool,
    pub at: Location,
}

/// The timeouts HAProxy's `timeout` keyword sets.
#[derive(Clone, Debug, Default)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub check: Option<Duration>,
    pub http_request: Option<Duration>,
    pub http_keep_alive: Option<Duration>,
    pub queue: Option<At<Duration>>,
}

/// A `stats` line keepmon does not serve yet.
#[derive(Clone, Debug)]
pub struct Unsupported {
    pub what: String,
    pub at: Location,
}

/// HAProxy's `stats` lines of one section.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub at: Option<Location>,
    pub uri: Option<String>,
    pub realm: Option<String>,
    pub users: Vec<(String, String)>,
    pub refresh: Option<Duration>,
    pub hide_version: bool,
    pub admin: bool,
}

/// Everything one proxy section says (a defaults section's too): what a
/// `defaults` carries is copied into the sections that use it.
#[derive(Clone, Debug, Default)]
pub struct Proxy {
    pub mode: Option<At<ProxyMode>>,
    pub balance: Option<At<Balance>>,
    /// `hash-type map-based [FUNCTION [avalanche]]`; None: HAProxy's
    /// default (map-based sdbm).
    pub hash_type: Option<At<HaproxyHash>>,
    pub timeouts: Timeouts,
    pub retries: Option<u32>,
    pub redispatch: bool,
    pub forwardfor: Option<ForwardFor>,
    pub httpchk: Option<At<HttpChk>>,
    pub http_expect: Option<At<HttpExpect>>,
    /// `http-check send`: empty method or URI leaves `option httpchk`'s.
    pub http_send: Option<At<HttpChk>>,
    pub tcp_check: Option<Location>,
    pub tcp_rules: Vec<At<TcpRule>>,
    pub maxconn: Option<u32>,
    pub default_server: ServerOpts,
    pub cookie: Option<At<CookiePersistence>>,
    pub allbackups: bool,
    /// `errorfile STATUS FILE` lines.
    pub errorfiles: Vec<(u16, String, Location)>,
    pub stats: Stats,
    /// A `log` line (or `log global`) is in force.
    pub log: bool,
    pub httplog: bool,
    pub tcplog: bool,
    pub dontlognull: bool,
    /// Lines keepmon reads but cannot do yet; errors once the proxy is used.
    pub unsupported: Vec<Unsupported>,
    // Not inherited from defaults:
    pub binds: Vec<Bind>,
    pub servers: Vec<Server>,
    pub default_backend: Option<At<String>>,
    /// `acl NAME TEST` lines in order (several of one name are alternatives).
    pub acls: Vec<(String, AclTest)>,
    /// `use_backend` rules in order.
    pub use_backends: Vec<UseBackend>,
}

/// One `use_backend NAME [if|unless COND]` line (its condition's words are
/// resolved once the whole section is read: HAProxy's ACLs of one name
/// gather every `acl` line of the section).
#[derive(Clone, Debug)]
pub struct UseBackend {
    pub backend: String,
    pub unless: bool,
    pub words: Vec<String>,
    pub at: Location,
}

impl Proxy {
    /// The named ACL `name` as the whole section defines it.
    pub fn acl(&self, name: &str) -> Option<Acl> {
        let tests: Vec<AclTest> = self
            .acls
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .collect();
        (!tests.is_empty()).then(|| Acl {
            name: Some(name.to_string()),
            tests,
        })
    }

    /// A rule's condition with the section's ACLs (None when it does not
    /// parse; the error was reported when the line was read).
    pub fn condition(&self, rule: &UseBackend) -> Option<Condition> {
        let words: Vec<&str> = rule.words.iter().map(String::as_str).collect();
        let lookup = |name: &str| self.acl(name);
        acl::parse_condition(rule.unless, &words, &lookup)
            .ok()
            .map(|p| p.condition)
    }
}

impl Proxy {
    /// What a section starts from when it uses this defaults section.
    pub fn inherited(&self) -> Proxy {
        Proxy {
            binds: Vec::new(),
            servers: Vec::new(),
            default_backend: None,
            acls: Vec::new(),
            use_backends: Vec::new(),
            ..self.clone()
        }
    }
}

/// HAProxy 2.6's proxy keywords (its keyword matrix), for "did you mean"
/// and to tell a misspelt keyword from one keepmon does not run.
const KEYWORDS: &[&str] = &[
    "acl",
    "backlog",
    "balance",
    "bind",
    "bind-process",
    "capture",
    "clitcpka-cnt",
    "clitcpka-idle",
    "clitcpka-intvl",
    "compression",
    "cookie",
    "declare",
    "default-server",
    "default_backend",
    "description",
    "disabled",
    "dispatch",
    "email-alert",
    "enabled",
    "error-log-format",
    "errorfile",
    "errorfiles",
    "errorloc",
    "errorloc302",
    "errorloc303",
    "external-check",
    "filter",
    "force-persist",
    "fullconn",
    "hash-type",
    "http-after-response",
    "http-check",
    "http-error",
    "http-request",
    "http-response",
    "http-reuse",
    "http-send-name-header",
    "id",
    "ignore-persist",
    "load-server-state-from-file",
    "log",
    "log-format",
    "log-format-sd",
    "log-tag",
    "max-keep-alive-queue",
    "maxconn",
    "mode",
    "monitor",
    "monitor-uri",
    "option",
    "persist",
    "rate-limit",
    "redirect",
    "retries",
    "retry-on",
    "server",
    "server-state-file-name",
    "server-template",
    "source",
    "srvtcpka-cnt",
    "srvtcpka-idle",
    "srvtcpka-intvl",
    "stats",
    "stick",
    "stick-table",
    "tcp-check",
    "tcp-request",
    "tcp-response",
    "timeout",
    "transparent",
    "unique-id-format",
    "unique-id-header",
    "use-fcgi-app",
    "use-server",
    "use_backend",
    "no",
];

/// HAProxy 2.6's `option` names.
const OPTIONS: &[&str] = &[
    "abortonclose",
    "accept-invalid-http-request",
    "accept-invalid-http-response",
    "allbackups",
    "checkcache",
    "clitcpka",
    "contstats",
    "disable-h2-upgrade",
    "dontlog-normal",
    "dontlognull",
    "external-check",
    "forwardfor",
    "h1-case-adjust-bogus-client",
    "h1-case-adjust-bogus-server",
    "http-buffer-request",
    "http-ignore-probes",
    "http-keep-alive",
    "http-no-delay",
    "http-pretend-keepalive",
    "http-restrict-req-hdr-names",
    "http-server-close",
    "http-use-proxy-header",
    "httpchk",
    "httpclose",
    "httplog",
    "httpslog",
    "idle-close-on-response",
    "independent-streams",
    "ldap-check",
    "log-health-checks",
    "log-separate-errors",
    "logasap",
    "mysql-check",
    "nolinger",
    "originalto",
    "persist",
    "pgsql-check",
    "prefer-last-server",
    "redis-check",
    "redispatch",
    "smtpchk",
    "socket-stats",
    "splice-auto",
    "splice-request",
    "splice-response",
    "spop-check",
    "srvtcpka",
    "ssl-hello-chk",
    "tcp-check",
    "tcp-smart-accept",
    "tcp-smart-connect",
    "tcpka",
    "tcplog",
    "transparent",
];

/// Options that only tune HAProxy's logging or its connection handling
/// in ways keepmon's proxy already behaves like or has no knob for.
const HARMLESS_OPTIONS: &[&str] = &[
    "dontlognull",
    "dontlog-normal",
    "httplog",
    "tcplog",
    "httpslog",
    "log-health-checks",
    "log-separate-errors",
    "logasap",
    "contstats",
    "socket-stats",
    "tcp-smart-accept",
    "tcp-smart-connect",
    "splice-auto",
    "splice-request",
    "splice-response",
    "http-no-delay",
    "tcpka",
    "clitcpka",
    "srvtcpka",
    "http-keep-alive",
    "http-server-close",
    "abortonclose",
    "independent-streams",
    "nolinger",
    "http-ignore-probes",
    "prefer-last-server",
];

/// Keywords that only set logging or naming.
const HARMLESS: &[&str] = &[
    "log",
    "description",
    "id",
    "log-format",
    "log-tag",
    "error-log-format",
    "log-format-sd",
    "backlog",
    "fullconn",
    "enabled",
];

/// HAProxy's server keywords (2.6), for "did you mean".
const SERVER_KEYWORDS: &[&str] = &[
    "addr",
    "agent-check",
    "agent-addr",
    "agent-inter",
    "agent-port",
    "agent-send",
    "alpn",
    "backup",
    "ca-file",
    "check",
    "check-send-proxy",
    "check-ssl",
    "check-sni",
    "ciphers",
    "cookie",
    "crl-file",
    "crt",
    "disabled",
    "downinter",
    "enabled",
    "error-limit",
    "fall",
    "fastinter",
    "id",
    "init-addr",
    "inter",
    "maxconn",
    "maxqueue",
    "minconn",
    "namespace",
    "no-check",
    "no-backup",
    "no-send-proxy",
    "no-ssl",
    "no-tls-tickets",
    "non-stick",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "pool-max-conn",
    "pool-purge-delay",
    "port",
    "proto",
    "redir",
    "resolvers",
    "resolve-prefer",
    "rise",
    "send-proxy",
    "send-proxy-v2",
    "send-proxy-v2-ssl",
    "slowstart",
    "sni",
    "source",
    "ssl",
    "ssl-max-ver",
    "ssl-min-ver",
    "stick",
    "tfo",
    "track",
    "verify",
    "verifyhost",
    "weight",
    "ws",
];

/// `acl NAME CRITERION [FLAGS] [VALUE...]`.
fn read_acl(line: &Line, kind: Kind, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    let at = line.loc.clone();
    if kind == Kind::Defaults {
        ctx.error(at, "'acl' not allowed in anonymous 'defaults' section");
        return;
    }
    let name = line.word(1);
    if name.is_empty() {
        ctx.error(at, "'acl' expects an ACL name and a criterion");
        return;
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        ctx.error(
            line.word_loc(1),
            format!("character '{bad}' is not permitted in acl name '{name}'"),
        );
        return;
    }
    let words: Vec<&str> = line.words[2..].iter().map(|w| w.text.as_str()).collect();
    match acl::parse_test(&words) {
        Ok(parsed) => {
            if let Some(warning) = parsed.warning {
                ctx.diags.warning(
                    line.word_loc(2),
                    format!("parsing acl keyword '{}' : {warning}", line.word(2)),
                );
            }
            proxy.acls.push((name.to_string(), parsed.test));
        }
        Err(AclError::Haproxy(message)) => ctx.error(
            at,
            format!("error detected while parsing ACL '{name}' : {message}"),
        ),
        Err(AclError::Unsupported(what)) => ctx.unsupported(at, what),
    }
}

/// `use_backend NAME [if|unless COND]`.
fn read_use_backend(line: &Line, kind: Kind, name: &str, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    let at = line.loc.clone();
    if kind == Kind::Defaults {
        ctx.error(at, "'use_backend' not allowed in 'defaults' section");
        return;
    }
    let backend = line.word(1);
    if backend.is_empty() {
        ctx.error(at, "'use_backend' expects a backend name");
        return;
    }
    if backend.contains("%[") {
        ctx.unsupported(
            line.word_loc(1),
            format!("a backend name computed per request ('{backend}')"),
        );
        return;
    }
    let ignored = !kind.frontend();
    if ignored {
        ctx.haproxy_ignores(
            at.clone(),
            format!("'use_backend' ignored because backend '{name}' has no frontend capability"),
        );
    }
    let unless = match line.word(2) {
        "" | "if" => false,
        "unless" => true,
        other => {
            ctx.error(
                line.word_loc(2),
                format!("unexpected keyword '{other}' after switching rule, only 'if' and 'unless' are allowed"),
            );
            return;
        }
    };
    let words: Vec<String> = line.words.iter().skip(3).map(|w| w.text.clone()).collect();
    if !line.word(2).is_empty() && words.is_empty() {
        ctx.unsupported(
            line.word_loc(2),
            format!("'{}' without a condition", line.word(2)),
        );
        return;
    }
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let lookup = |acl: &str| proxy.acl(acl);
    match acl::parse_condition(unless, &refs, &lookup) {
        Ok(parsed) => {
            for warning in parsed.warnings {
                ctx.diags.warning(at.clone(), warning);
            }
        }
        Err(AclError::Haproxy(message)) => {
            ctx.error(
                at,
                format!("error detected while parsing switching rule : {message}"),
            );
            return;
        }
        Err(AclError::Unsupported(what)) => {
            ctx.unsupported(at, what);
            return;
        }
    }
    if !ignored {
        proxy.use_backends.push(UseBackend {
            backend: backend.to_string(),
            unless,
            words,
            at,
        });
    }
}

/// Read one line of a proxy section into `proxy`.
pub fn read_line(line: &Line, kind: Kind, name: &str, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    let keyword = line.keyword();
    let at = line.loc.clone();
    match keyword {
        "mode" => match line.word(1) {
            "tcp" => {
                proxy.mode = Some(At {
                    value: ProxyMode::Tcp,
                    at,
                })
            }
            "http" => {
                proxy.mode = Some(At {
                    value: ProxyMode::Http,
                    at,
                })
            }
            "health" => ctx.unsupported(line.word_loc(1), "mode health"),
            other => ctx.error(
                line.word_loc(1),
                format!("unknown proxy mode '{other}' (tcp or http)"),
            ),
        },
        "bind" => {
            if kind == Kind::Defaults {
                ctx.error(at, "'bind' not allowed in 'defaults' section");
            } else if !kind.frontend() {
                ctx.haproxy_ignores(
                    at,
                    format!("'bind' ignored because backend '{name}' has no frontend capability"),
                );
            } else if let Some(bind) = read_bind(line, ctx) {
                proxy.binds.push(bind);
            }
        }
        "balance" => {
            if !kind.backend() {
                ctx.haproxy_ignores(
                    at,
                    format!(
                        "'balance' ignored because frontend '{name}' has no backend capability"
                    ),
                );
            } else if let Some(balance) = read_balance(line, ctx) {
                proxy.balance = Some(At { value: balance, at });
            }
        }
        "hash-type" => {
            if !kind.backend() {
                ctx.haproxy_ignores(
                    at,
                    format!(
                        "'hash-type' ignored because frontend '{name}' has no backend capability"
                    ),
                );
            } else if let Some(hash) = read_hash_type(line, ctx) {
                proxy.hash_type = Some(At { value: hash, at });
            }
        }
        "server" => {
            if kind == Kind::Defaults {
                ctx.error(at, "'server' not allowed in 'defaults' section");
            } else if !kind.backend() {
                ctx.error(
                    at,
                    format!(
                        "'server' not allowed because frontend '{name}' has no backend capability"
                    ),
                );
            } else if let Some(server) = read_server(line, &proxy.default_server, ctx) {
                if let Some(other) = proxy.servers.iter().find(|s| s.name == server.name) {
                    ctx.error(
                        line.word_loc(1),
                        format!(
                            "'server {name}/{}' has the same name as another server declared at line {}",
                            server.name, other.at.line
                        ),
                    );
                }
                proxy.servers.push(server);
            }
        }
        "default-server" => {
            if !kind.backend() {
                ctx.haproxy_ignores(
                    at,
                    format!("'default-server' ignored because frontend '{name}' has no backend capability"),
                );
            } else {
                let base = proxy.default_server.clone();
                proxy.default_server = read_server_opts(line, 1, base, ctx);
            }
        }
        "timeout" => read_timeout(line, kind, proxy, ctx),
        "contimeout" | "clitimeout" | "srvtimeout" => {
            let (modern, field) = match keyword {
                "contimeout" => ("timeout connect", 0),
                "clitimeout" => ("timeout client", 1),
                _ => ("timeout server", 2),
            };
            ctx.old_form(&at, &format!("'{keyword}'"), modern);
            if let Some(d) = time_arg(line, 1, ctx) {
                let t = &mut proxy.timeouts;
                *[&mut t.connect, &mut t.client, &mut t.server][field] = Some(d);
            }
        }
        "redispatch" => {
            ctx.old_form(&at, "'redispatch'", "option redispatch");
            proxy.redispatch = true;
        }
        "retries" => match line.word(1).parse::<u32>() {
            Ok(n) => proxy.retries = Some(n),
            Err(_) => ctx.error(at, "'retries' expects an integer argument"),
        },
        "maxconn" => match line.word(1).parse::<u32>() {
            Ok(n) if kind.frontend() => proxy.maxconn = Some(n),
            Ok(_) => ctx.haproxy_ignores(
                at,
                format!("'maxconn' ignored because backend '{name}' has no frontend capability"),
            ),
            Err(_) => ctx.error(at, "'maxconn' expects an integer argument"),
        },
        "option" => read_option(line, proxy, ctx),
        "no" => ctx.unsupported(at, format!("'no {}'", line.joined(1..=2))),
        "http-check" => read_http_check(line, proxy, ctx),
        "tcp-check" => read_tcp_check(line, proxy, ctx),
        "cookie" => {
            if !kind.backend() {
                ctx.haproxy_ignores(
                    at,
                    format!("'cookie' ignored because frontend '{name}' has no backend capability"),
                );
            } else if let Some(cookie) = read_cookie(line, ctx) {
                proxy.cookie = Some(At { value: cookie, at });
            }
        }
        "default_backend" => {
            if kind == Kind::Backend {
                ctx.haproxy_ignores(
                    at,
                    format!("'default_backend' ignored because backend '{name}' has no frontend capability"),
                );
            } else if line.word(1).is_empty() {
                ctx.error(at, "'default_backend' expects a backend name");
            } else {
                proxy.default_backend = Some(At {
                    value: line.word(1).to_string(),
                    at,
                });
            }
        }
        "acl" => read_acl(line, kind, proxy, ctx),
        "use_backend" => read_use_backend(line, kind, name, proxy, ctx),
        "use-server" => ctx.unsupported(at, "'use-server'"),
        "stats" => read_stats(line, proxy, ctx),
        "errorfile" => match (line.word(1).parse::<u16>(), line.word(2)) {
            (Ok(status), file) if !file.is_empty() => {
                proxy.errorfiles.push((status, file.to_string(), at));
            }
            _ => ctx.error(
                at,
                "'errorfile' expects <status_code> and <file> as arguments",
            ),
        },
        "log" => proxy.log = true,
        "errorfiles" | "errorloc" | "errorloc302" | "errorloc303" => {
            proxy.unsupported.push(Unsupported {
                what: format!(
                    "'{keyword}' (keepmon's proxy sends its own error responses or errorfile)"
                ),
                at,
            })
        }
        k if HARMLESS.contains(&k) => {}
        "disabled" => ctx.unsupported(at, "a disabled proxy"),
        k if KEYWORDS.contains(&k) => ctx.unsupported(at, format!("'{k}'")),
        unknown => {
            let hint = suggest(unknown, KEYWORDS)
                .map(|k| format!("; did you mean '{k}' maybe ?"))
                .unwrap_or_default();
            ctx.error(
                at,
                format!(
                    "unknown keyword '{unknown}' in '{}' section{hint}",
                    kind.name()
                ),
            );
        }
    }
}

fn read_option(line: &Line, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    let at = line.loc.clone();
    let option = line.word(1);
    match option {
        "httpchk" => {
            let (method, uri, version) = match line.len() {
                0..=2 => ("OPTIONS", "/", ""),
                3 => ("OPTIONS", line.word(2), ""),
                _ => (line.word(2), line.word(3), line.word(4)),
            };
            let host = version.split("\r\n").skip(1).find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("host")
                    .then(|| value.trim().to_string())
            });
            proxy.httpchk = Some(At {
                value: HttpChk {
                    method: method.to_string(),
                    uri: uri.to_string(),
                    host,
                },
                at,
            });
        }
        "tcp-check" => proxy.tcp_check = Some(at),
        "forwardfor" => {
            let mut ff = ForwardFor {
                header: "x-forwarded-for".to_string(),
                except: None,
            };
            let mut i = 2;
            while i < line.len() {
                match line.word(i) {
                    "except" => match Network::parse(line.word(i + 1)) {
                        Ok(net) => ff.except = Some(net),
                        Err(e) => {
                            return ctx
                                .error(line.word_loc(i + 1), format!("option forwardfor: {e}"));
                        }
                    },
                    "header" if !line.word(i + 1).is_empty() => {
                        ff.header = line.word(i + 1).to_ascii_lowercase()
                    }
                    "if-none" => {
                        return ctx.unsupported(line.word_loc(i), "option forwardfor if-none");
                    }
                    other => {
                        return ctx.error(
                            line.word_loc(i),
                            format!("option forwardfor: unknown parameter '{other}' (except, header or if-none)"),
                        );
                    }
                }
                i += 2;
            }
            proxy.forwardfor = Some(ff);
        }
        "redispatch" => proxy.redispatch = true,
        "httpclose" => {
            // Valid in 2.6 too; keepmon's proxy keeps client connections
            // alive (HAProxy would close them after each response).
            ctx.diags.warning(
                at,
                "option httpclose: keepmon's http mode keeps connections alive as 'option http-keep-alive' does (the modern default); HAProxy would close each after one response",
            );
        }
        "httplog" | "httpslog" => proxy.httplog = true,
        "tcplog" => proxy.tcplog = true,
        "dontlognull" => proxy.dontlognull = true,
        o if HARMLESS_OPTIONS.contains(&o) => {}
        "allbackups" => proxy.allbackups = true,
        o if OPTIONS.contains(&o) => ctx.unsupported(at, format!("option {o}")),
        unknown => {
            let hint = suggest(unknown, OPTIONS)
                .map(|k| format!("; did you mean '{k}' maybe ?"))
                .unwrap_or_default();
            ctx.error(at, format!("unknown option '{unknown}'{hint}"));
        }
    }
}

fn read_timeout(line: &Line, kind: Kind, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    let at = line.loc.clone();
    let which = line.word(1);
    const NAMES: &[&str] = &[
        "client",
        "client-fin",
        "connect",
        "http-keep-alive",
        "http-request",
        "queue",
        "server",
        "server-fin",
        "tarpit",
        "tunnel",
        "check",
    ];
    if !NAMES.contains(&which) {
        let hint = suggest(which, NAMES)
            .map(|k| format!("; did you mean '{k}' maybe ?"))
            .unwrap_or_default();
        return ctx.error(
            at,
            format!("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got '{which}'){hint}"),
        );
    }
    let Some(value) = time_arg(line, 2, ctx) else {
        return;
    };
    let t = &mut proxy.timeouts;
    let frontend_only = matches!(
        which,
        "client" | "client-fin" | "http-request" | "http-keep-alive"
    );
    if frontend_only && !kind.frontend() && which != "http-keep-alive" {
        return;
    }
    match which {
        "connect" => t.connect = Some(value),
        "client" => t.client = Some(value),
        "server" => t.server = Some(value),
        "check" => t.check = Some(value),
        "http-request" => t.http_request = Some(value),
        "http-keep-alive" => t.http_keep_alive = Some(value),
        "queue" => t.queue = Some(At { value, at }),
        "tunnel" | "client-fin" | "server-fin" | "tarpit" => {
            ctx.diags.warning(
                at,
                format!("keepmon has no 'timeout {which}'; the line is ignored"),
            );
        }
        _ => {}
    }
}

/// A time word HAProxy accepts: digits with an optional unit (us, ms, s,
/// m, h, d; milliseconds without one).
pub fn parse_time(text: &str) -> Result<Duration, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("'{text}' is not a time value"));
    }
    let number: u64 = text[..digits]
        .parse()
        .map_err(|_| format!("'{text}' is too large"))?;
    let unit = &text[digits..];
    let d = match unit {
        "" | "ms" => Duration::from_millis(number),
        "us" => Duration::from_micros(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "d" => Duration::from_secs(number.saturating_mul(86400)),
        _ => {
            return Err(format!(
                "unexpected character '{}' in '{text}'",
                unit.chars().next().unwrap_or(' ')
            ));
        }
    };
    // HAProxy's timers hold milliseconds in an int.
    if d > Duration::from_millis(i32::MAX as u64) {
        return Err(format!(
            "timer overflow in '{text}' (at most 2147483647 ms)"
        ));
    }
    Ok(d)
}

fn time_arg(line: &Line, index: usize, ctx: &mut Ctx<'_>) -> Option<Duration> {
    let word = line.word(index);
    if word.is_empty() {
        ctx.error(
            line.loc.clone(),
            format!(
                "'{}' expects a time value",
                line.joined(0..=index.saturating_sub(1))
            ),
        );
        return None;
    }
    match parse_time(word) {
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(line.word_loc(index), format!("'{}': {e}", line.keyword()));
            None
        }
    }
}

/// `hash-type map-based|consistent [sdbm|djb2|wt6|crc32 [avalanche]]`, as
/// HAProxy 2.6 reads it.
fn read_hash_type(line: &Line, ctx: &mut Ctx<'_>) -> Option<HaproxyHash> {
    let mut hash = HaproxyHash::default();
    match line.word(1) {
        "map-based" => {}
        "consistent" => hash = HaproxyHash::CONSISTENT,
        "avalanche" => {
            ctx.error(
                line.word_loc(1),
                "experimental feature 'hash-type avalanche' is not supported anymore, please use 'hash-type map-based sdbm avalanche' instead",
            );
            return None;
        }
        _ => {
            ctx.error(
                line.loc.clone(),
                "'hash-type' only supports 'consistent' and 'map-based'",
            );
            return None;
        }
    }
    let function = line.word(2);
    if function.is_empty() {
        return Some(hash);
    }
    hash.avalanche = false;
    let Some(function) = HashFunction::from_name(function) else {
        ctx.error(
            line.word_loc(2),
            "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions",
        );
        return None;
    };
    hash.function = function;
    match line.word(3) {
        "" => {}
        "avalanche" => hash.avalanche = true,
        _ => {
            ctx.error(
                line.word_loc(3),
                "'hash-type' only supports 'avalanche' as a modifier for hash functions",
            );
            return None;
        }
    }
    Some(hash)
}

fn read_balance(line: &Line, ctx: &mut Ctx<'_>) -> Option<Balance> {
    let algo = line.word(1);
    let options = line.word(2);
    let takes_options = algo == "url_param" || algo.starts_with("random");
    if !options.is_empty() && !takes_options {
        ctx.unsupported(
            line.word_loc(2),
            format!("'balance {algo} {options}' (keepmon hashes the whole value: no 'whole', 'len', 'depth', 'path-only' or 'use_domain_only')"),
        );
        return None;
    }
    if algo == "url_param" && !line.word(3).is_empty() {
        ctx.unsupported(
            line.word_loc(3),
            format!(
                "'balance url_param {options} {}' (check_post and max_wait)",
                line.word(3)
            ),
        );
        return None;
    }
    Some(match algo {
        "roundrobin" => Balance::RoundRobin,
        "static-rr" => Balance::StaticRr,
        "leastconn" => Balance::LeastConn,
        "first" => Balance::First,
        "source" => Balance::Source,
        "uri" => Balance::Uri,
        "random" => Balance::Random,
        "url_param" => {
            if line.word(2).is_empty() {
                ctx.error(
                    line.loc.clone(),
                    "'balance url_param' requires an URL parameter name",
                );
                return None;
            }
            Balance::UrlParam(line.word(2).to_string())
        }
        a if a.starts_with("hdr(") && a.ends_with(')') && a.len() > 5 => {
            Balance::Header(a[4..a.len() - 1].to_ascii_lowercase())
        }
        a if a.starts_with("random(") || a.starts_with("rdp-cookie") || a == "hash" => {
            ctx.unsupported(line.word_loc(1), format!("balance {a}"));
            return None;
        }
        other => {
            const ALGOS: &[&str] = &[
                "roundrobin",
                "static-rr",
                "leastconn",
                "first",
                "source",
                "uri",
                "url_param",
                "hdr",
                "random",
                "rdp-cookie",
                "hash",
            ];
            let hint = suggest(other, ALGOS)
                .map(|k| format!("; did you mean '{k}' maybe ?"))
                .unwrap_or_default();
            ctx.error(
                line.word_loc(1),
                format!("unknown load balancing algorithm '{other}'{hint}"),
            );
            return None;
        }
    })
}

/// `ADDR:PORT`, `[V6]:PORT`, `V6:PORT` (the last colon), `*:PORT`,
/// `:PORT`, with optional `ipv4@`/`ipv6@`; names are not resolved.
pub fn parse_addr(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let text = text
        .strip_prefix("ipv4@")
        .or_else(|| text.strip_prefix("ipv6@"))
        .unwrap_or(text);
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        // `::1` alone is an address without port (HAProxy reads the last
        // group as a port only when it cannot be part of the address).
        return Ok((ip, None));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not an address (names are not resolved here)"))?;
    let ip: IpAddr = match host {
        "" | "*" => IpAddr::from([0, 0, 0, 0]),
        "::" => IpAddr::from([0u16; 8]),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                format!("'{text}': '{h}' is not an IP address (keepmon reads addresses, not names)")
            })?,
    };
    if port.is_empty() {
        return Ok((ip, None));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{text}': invalid port '{port}'"))?;
    Ok((ip, Some(port)))
}

fn read_bind(line: &Line, ctx: &mut Ctx<'_>) -> Option<Bind> {
    let mut addrs = Vec::new();
    for part in line.word(1).split(',') {
        if part.contains('-') && part.rsplit_once(':').is_some_and(|(_, p)| p.contains('-')) {
            ctx.unsupported(line.word_loc(1), "a port range in 'bind'");
            return None;
        }
        match parse_addr(part) {
            Ok((ip, Some(port))) if port != 0 => addrs.push(SocketAddr::new(ip, port)),
            Ok(_) => {
                ctx.error(
                    line.word_loc(1),
                    format!("'bind {part}' : missing port number"),
                );
                return None;
            }
            Err(e) => {
                if part.starts_with('/') || part.contains('@') {
                    ctx.unsupported(line.word_loc(1), format!("binding to '{part}'"));
                } else {
                    ctx.error(line.word_loc(1), format!("'bind': {e}"));
                }
                return None;
            }
        }
    }
    let mut bind = Bind {
        addrs,
        ssl: false,
        crt: Vec::new(),
        accept_proxy: false,
        at: line.loc.clone(),
    };
    let mut i = 2;
    while i < line.len() {
        match line.word(i) {
            "ssl" => bind.ssl = true,
            "accept-proxy" => bind.accept_proxy = true,
            "crt" => {
                let path = line.word(i + 1);
                if path.is_empty() {
                    ctx.error(line.word_loc(i), "'crt' : missing certificate location");
                    return None;
                }
                let crt = ctx.crt_path(path);
                if !ctx.fs.is_file(&crt) {
                    ctx.error(
                        line.word_loc(i + 1),
                        format!(
                            "unable to stat SSL certificate from file '{}' (HAProxy refuses this too)",
                            crt.display()
                        ),
                    );
                    return None;
                }
                bind.crt.push(crt);
                i += 1;
            }
            "v4v6" | "v6only" | "transparent" | "defer-accept" | "tfo" => {}
            "alpn" | "ciphers" | "ssl-min-ver" | "ssl-max-ver" | "name" | "interface"
            | "backlog" | "maxconn" | "process" | "thread" | "curves" | "ecdhe" => {
                ctx.diags.warning(
                    line.word_loc(i),
                    format!("keepmon ignores the bind option '{}'", line.word(i)),
                );
                i += 1;
            }
            other => {
                ctx.unsupported(line.word_loc(i), format!("the bind option '{other}'"));
                return None;
            }
        }
        i += 1;
    }
    if bind.ssl && bind.crt.is_empty() {
        ctx.error(
            line.loc.clone(),
            "'bind' with 'ssl' needs a certificate ('crt')",
        );
        return None;
    }
    Some(bind)
}

fn read_server(line: &Line, defaults: &ServerOpts, ctx: &mut Ctx<'_>) -> Option<Server> {
    let name = line.word(1);
    let addr = line.word(2);
    if name.is_empty() || addr.is_empty() {
        ctx.error(
            line.loc.clone(),
            "'server' expects <name> and <addr>[:<port>] as arguments",
        );
        return None;
    }
    let addr = match parse_addr(addr) {
        Ok(a) => a,
        Err(e) => {
            ctx.unsupported(line.word_loc(2), format!("server address {e}"));
            return None;
        }
    };
    let opts = read_server_opts(line, 3, defaults.clone(), ctx);
    Some(Server {
        name: name.to_string(),
        addr,
        opts,
        at: line.loc.clone(),
    })
}

fn read_server_opts(
    line: &Line,
    first: usize,
    mut opts: ServerOpts,
    ctx: &mut Ctx<'_>,
) -> ServerOpts {
    let mut i = first;
    while i < line.len() {
        let word = line.word(i);
        let value = line.word(i + 1);
        let at = line.word_loc(i);
        let mut takes_value = true;
        match word {
            "check" => {
                opts.check = true;
                takes_value = false;
            }
            "no-check" => {
                opts.check = false;
                takes_value = false;
            }
            "backup" => {
                opts.backup = Some(at);
                takes_value = false;
            }
            "no-backup" => {
                opts.backup = None;
                takes_value = false;
            }
            "disabled" => {
                opts.disabled = true;
                takes_value = false;
            }
            "enabled" => {
                opts.disabled = false;
                takes_value = false;
            }
            "send-proxy" => {
                opts.send_proxy = Some(ProxyProtocol::V1);
                takes_value = false;
            }
            "send-proxy-v2" => {
                opts.send_proxy = Some(ProxyProtocol::V2);
                takes_value = false;
            }
            "no-send-proxy" => {
                opts.send_proxy = None;
                takes_value = false;
            }
            "ssl" => {
                opts.ssl = true;
                takes_value = false;
            }
            "no-ssl" => {
                opts.ssl = false;
                takes_value = false;
            }
            "inter" | "fastinter" | "downinter" => match parse_time(value) {
                Ok(d) if !d.is_zero() => {
                    *match word {
                        "inter" => &mut opts.inter,
                        "fastinter" => &mut opts.fastinter,
                        _ => &mut opts.downinter,
                    } = Some(d)
                }
                Ok(_) => ctx.error(
                    at,
                    format!("server {}: '{word}' expects a positive delay", line.word(1)),
                ),
                Err(e) => ctx.error(at, format!("'{word}' : {e}")),
            },
            "rise" | "fall" => match value.parse::<u32>() {
                Ok(n) if n > 0 => {
                    *if word == "rise" {
                        &mut opts.rise
                    } else {
                        &mut opts.fall
                    } = Some(n)
                }
                _ => ctx.error(at, format!("'{word}' has to be > 0.")),
            },
            "weight" => match value.parse::<u32>() {
                Ok(n) if n <= 256 => opts.weight = Some(n),
                _ => ctx.error(at, "weight must be an integer between 0 and 256."),
            },
            "cookie" => {
                if value.is_empty() {
                    ctx.error(at, "'cookie' : missing value");
                } else {
                    opts.cookie = Some(value.to_string());
                }
            }
            "port" => match value.parse::<u16>() {
                Ok(p) if p > 0 => opts.check_port = Some(p),
                _ => ctx.error(at, format!("'port' : invalid port '{value}'")),
            },
            "addr" => match value.parse::<IpAddr>() {
                Ok(ip) => opts.check_addr = Some(ip),
                Err(_) => {
                    ctx.unsupported(at, format!("check address '{value}' (not an IP address)"))
                }
            },
            "verify" => match value {
                "none" => opts.verify = Some(false),
                "required" => opts.verify = Some(true),
                other => ctx.error(
                    at,
                    format!(
                        "'server {}' : 'verify' : unknown verify method '{other}', only 'none' and 'required' are supported.",
                        line.word(1)
                    ),
                ),
            },
            "ca-file" => {
                if value.is_empty() {
                    ctx.error(at, "'ca-file' : missing CAfile path");
                } else {
                    opts.ca_file = Some((ctx.ca_path(value), at));
                }
            }
            "verifyhost" => {
                if value.is_empty() {
                    ctx.error(at, "'verifyhost' : missing hostname");
                } else {
                    opts.verifyhost = Some(value.to_string());
                }
            }
            "sni" => match value
                .strip_prefix("str(")
                .and_then(|v| v.strip_suffix(')'))
                .filter(|v| !v.is_empty() && !v.contains(['(', ')', ',']))
            {
                Some(name) => opts.sni = Some(name.to_string()),
                None if value.is_empty() => ctx.error(at, "'sni' : missing sni expression"),
                None => opts.unsupported.push((
                    format!("the sni expression '{value}' (keepmon sends a fixed name: sni str(NAME))"),
                    at,
                )),
            },
            "maxconn" | "maxqueue" => match value.parse::<u32>() {
                Ok(n) if word == "maxconn" => opts.maxconn = Some(n),
                Ok(n) => opts.maxqueue = Some(n),
                Err(_) => ctx.error(at, format!("'{word}' expects an integer argument")),
            },
            "slowstart" => match parse_time(value) {
                Ok(d) => opts.slowstart = Some(d),
                Err(e) => ctx.error(at, format!("'slowstart' : {e}")),
            },
            "minconn" => {
                opts.unsupported
                    .push((format!("the server option '{word}'"), at));
            }
            "alpn" | "check-sni" | "crt" | "id"
            | "on-marked-down" | "on-marked-up" | "on-error" | "observe" | "error-limit"
            | "agent-check" | "track" | "source" | "resolvers" | "init-addr" | "agent-port"
            | "agent-inter" | "agent-send" | "agent-addr" | "pool-max-conn" | "ws" | "redir"
            | "proto" | "namespace" | "ciphers" | "ssl-min-ver" | "ssl-max-ver"
            | "resolve-prefer" | "tfo" | "check-ssl" | "check-send-proxy" | "non-stick"
            | "no-tls-tickets" | "stick" | "crl-file" | "pool-purge-delay" => {
                opts.unsupported
                    .push((format!("the server option '{word}'"), at));
                takes_value = !matches!(
                    word,
                    "agent-check"
                        | "tfo"
                        | "check-ssl"
                        | "check-send-proxy"
                        | "non-stick"
                        | "no-tls-tickets"
                        | "stick"
                );
            }
            unknown => {
                let hint = suggest(unknown, SERVER_KEYWORDS)
                    .map(|k| format!("; did you mean '{k}' maybe ?"))
                    .unwrap_or_default();
                ctx.error(
                    at,
                    format!(
                        "'server {}' : unknown keyword '{unknown}'{hint}",
                        line.word(1)
                    ),
                );
                // HAProxy stops reading the line at the first unknown word.
                return opts;
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    opts
}

fn read_cookie(line: &Line, ctx: &mut Ctx<'_>) -> Option<CookiePersistence> {
    let name = line.word(1);
    if name.is_empty() {
        ctx.error(
            line.loc.clone(),
            "'cookie' expects <cookie_name> as argument",
        );
        return None;
    }
    let mut mode = None;
    let (mut indirect, mut nocache, mut httponly, mut secure) = (false, false, false, false);
    let mut i = 2;
    while i < line.len() {
        match line.word(i) {
            "insert" => mode = Some("insert"),
            "prefix" => mode = Some("prefix"),
            "rewrite" => mode = Some("rewrite"),
            "indirect" => indirect = true,
            "nocache" => nocache = true,
            "httponly" => httponly = true,
            "secure" => secure = true,
            "postonly" | "preserve" | "dynamic" | "attr" | "domain" | "maxidle" | "maxlife" => {
                ctx.unsupported(
                    line.word_loc(i),
                    format!("cookie option '{}'", line.word(i)),
                );
                return None;
            }
            other => {
                ctx.error(
                    line.word_loc(i),
                    format!("'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options (got '{other}')"),
                );
                return None;
            }
        }
        i += 1;
    }
    let mode = match mode {
        Some("insert") => CookieMode::Insert {
            indirect,
            nocache,
            httponly,
            secure,
        },
        Some("prefix") => CookieMode::Prefix,
        Some("rewrite") => CookieMode::Rewrite,
        _ => {
            // HAProxy's default is rewrite... only when nothing is said it
            // reads the cookie without setting it (passive persistence).
            ctx.unsupported(
                line.loc.clone(),
                "a cookie without insert, prefix or rewrite (passive persistence)",
            );
            return None;
        }
    };
    Some(CookiePersistence {
        name: name.to_string(),
        mode,
    })
}

fn read_http_check(line: &Line, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    let at = line.loc.clone();
    match line.word(1) {
        "expect" => {
            let mut i = 2;
            if line.word(i) == "!" {
                return ctx.unsupported(line.word_loc(i), "a negated http-check expect");
            }
            if line.word(i).starts_with("min-recv") || line.word(i).contains("-status") {
                i += 2;
            }
            let value = line.word(i + 1);
            let expect = match line.word(i) {
                "status" => {
                    let mut ranges = Vec::new();
                    for part in value.split(',') {
                        let (a, b) = part.split_once('-').unwrap_or((part, part));
                        match (a.parse::<u16>(), b.parse::<u16>()) {
                            (Ok(a), Ok(b)) if a <= b => ranges.push((a, b)),
                            _ => {
                                return ctx.error(
                                    line.word_loc(i + 1),
                                    format!("http-check expect status: invalid status '{part}'"),
                                );
                            }
                        }
                    }
                    HttpExpect::Status(ranges)
                }
                "string" => HttpExpect::Body(regex::escape(value)),
                "rstring" => {
                    if let Err(e) = regex::Regex::new(value) {
                        return ctx.error(line.word_loc(i + 1), format!("http-check expect rstring: {e}"));
                    }
                    HttpExpect::Body(value.to_string())
                }
                "rstatus" | "hdr" | "fhdr" => {
                    return ctx.unsupported(line.word_loc(i), format!("http-check expect {}", line.word(i)));
                }
                other => {
                    return ctx.error(
                        line.word_loc(i),
                        format!("http-check expect: unknown keyword '{other}' (expects 'status', 'rstatus', 'string', 'rstring', 'hdr' or 'fhdr')"),
                    );
                }
            };
            if value.is_empty() {
                return ctx.error(at, format!("http-check expect {}: missing pattern", line.word(i)));
            }
            proxy.http_expect = Some(At { value: expect, at });
        }
        "disable-on-404" | "send-state" => {}
        "send" => {
            // HAProxy 2.2's form: `http-check send [meth M] [uri U] [ver V]
            // [hdr NAME VALUE]...`; what it sets replaces `option httpchk`'s.
            let mut send = proxy.http_send.take().map(|s| s.value).unwrap_or_default();
            let mut i = 2;
            while i < line.len() {
                let value = line.word(i + 1);
                match line.word(i) {
                    "meth" | "uri" | "ver" if value.is_empty() => {
                        return ctx.error(
                            line.word_loc(i),
                            format!("http-check send: '{}' expects a value", line.word(i)),
                        );
                    }
                    "meth" => send.method = value.to_string(),
                    "uri" => send.uri = value.to_string(),
                    "ver" => {}
                    "hdr" if value.eq_ignore_ascii_case("host") && !line.word(i + 2).is_empty() => {
                        send.host = Some(line.word(i + 2).to_string());
                        i += 1;
                    }
                    "hdr" => {
                        return ctx.unsupported(
                            line.word_loc(i),
                            "http-check send with a header other than Host",
                        );
                    }
                    other => {
                        return ctx.unsupported(
                            line.word_loc(i),
                            format!("http-check send {other}"),
                        );
                    }
                }
                i += 2;
            }
            proxy.http_send = Some(At { value: send, at });
        }
        "connect" | "comment" | "set-var" | "unset-var" => {
            ctx.unsupported(at, format!("http-check {}", line.word(1)))
        }
        other => ctx.error(
            at,
            format!("'http-check' only supports 'comment', 'connect', 'send', 'send-state', 'disable-on-404', 'expect', 'set-var' and 'unset-var' (got '{other}')"),
        ),
    }
}

fn read_tcp_check(line: &Line, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    let at = line.loc.clone();
    let rule = match line.word(1) {
        "connect" => {
            let mut port = None;
            let mut i = 2;
            while i < line.len() {
                match line.word(i) {
                    "port" => match line.word(i + 1).parse::<u16>() {
                        Ok(p) if p > 0 => port = Some(p),
                        _ => {
                            return ctx
                                .error(line.word_loc(i + 1), "tcp-check connect: invalid port");
                        }
                    },
                    other => {
                        return ctx
                            .unsupported(line.word_loc(i), format!("tcp-check connect {other}"));
                    }
                }
                i += 2;
            }
            TcpRule::Connect { port }
        }
        "send" => {
            if line.word(2).is_empty() {
                return ctx.error(at, "'tcp-check send' expects a string as argument");
            }
            TcpRule::Send(line.word(2).to_string())
        }
        "expect" => {
            let i = 2;
            if line.word(i) == "!" {
                return ctx.unsupported(line.word_loc(i), "a negated tcp-check expect");
            }
            let value = line.word(i + 1);
            let pattern = match line.word(i) {
                "string" => regex::escape(value),
                "rstring" => {
                    if let Err(e) = regex::Regex::new(value) {
                        return ctx.error(
                            line.word_loc(i + 1),
                            format!("tcp-check expect rstring: {e}"),
                        );
                    }
                    value.to_string()
                }
                "binary" | "rbinary" | "string-lf" | "binary-lf" => {
                    return ctx.unsupported(
                        line.word_loc(i),
                        format!("tcp-check expect {}", line.word(i)),
                    );
                }
                other => {
                    return ctx.error(
                        line.word_loc(i),
                        format!("'tcp-check expect' expects 'string', 'rstring', 'binary', 'rbinary', 'string-lf' or 'binary-lf' (got '{other}')"),
                    );
                }
            };
            if value.is_empty() {
                return ctx.error(at, "'tcp-check expect' expects a pattern");
            }
            TcpRule::Expect(pattern)
        }
        "comment" => return,
        other => {
            return ctx.unsupported(at, format!("tcp-check {other}"));
        }
    };
    proxy.tcp_rules.push(At { value: rule, at });
}

fn read_stats(line: &Line, proxy: &mut Proxy, ctx: &mut Ctx<'_>) {
    const STATS: &[&str] = &[
        "admin",
        "auth",
        "enable",
        "hide-version",
        "http-request",
        "realm",
        "refresh",
        "scope",
        "show-desc",
        "show-legends",
        "show-modules",
        "show-node",
        "uri",
        "bind-process",
        "socket",
        "timeout",
        "maxconn",
    ];
    let what = line.word(1);
    if !STATS.contains(&what) {
        let hint = suggest(what, STATS)
            .map(|k| format!("; did you mean '{k}' maybe ?"))
            .unwrap_or_default();
        return ctx.error(
            line.loc.clone(),
            format!("'stats' expects 'admin', 'auth', 'enable', 'hide-version', 'realm', 'refresh', 'scope', 'show-desc', 'show-legends', 'show-node' or 'uri' (got '{what}'){hint}"),
        );
    }
    let at = line.loc.clone();
    let st = &mut proxy.stats;
    let value = line.word(2);
    match what {
        "enable" => {}
        "uri" if !value.is_empty() => st.uri = Some(value.to_string()),
        "realm" if !value.is_empty() => st.realm = Some(value.to_string()),
        "auth" => match value.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                st.users.push((user.to_string(), password.to_string()))
            }
            _ => return ctx.error(at, "'stats auth' expects <user>:<password> as argument"),
        },
        "refresh" => match parse_time(value) {
            Ok(d) => st.refresh = Some(d),
            Err(e) => return ctx.error(at, format!("'stats refresh' : {e}")),
        },
        "hide-version" => st.hide_version = true,
        "admin" if value == "if" && matches!(line.word(3), "TRUE" | "LOCALHOST") => st.admin = true,
        "admin" if value == "if" || value == "unless" => {
            return ctx.unsupported(
                at,
                "'stats admin' with an ACL condition other than TRUE or LOCALHOST",
            );
        }
        "admin" => {
            return ctx.error(at, "'stats admin' requires a condition ('if' or 'unless')");
        }
        "socket" | "timeout" | "maxconn" | "bind-process" => {
            return ctx.error(
                at,
                format!("'stats {what}' is only allowed in the 'global' section"),
            );
        }
        "uri" | "realm" => return ctx.error(at, format!("'stats {what}' expects a value")),
        other => return ctx.unsupported(at, format!("'stats {other}'")),
    }
    st.at.get_or_insert(at);
}

trait Joined {
    fn joined(&self, range: std::ops::RangeInclusive<usize>) -> String;
}

impl Joined for Line {
    /// Words `range` joined by blanks (for messages).
    fn joined(&self, range: std::ops::RangeInclusive<usize>) -> String {
        self.words
            .iter()
            .skip(*range.start())
            .take(range.end() + 1 - range.start())
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
