//! HAProxy's stats page, pure part: which requests a `stats uri` takes (`;csv`, `;norefresh`, `;st=`), the table of frontends, servers and backends built from a [`View`], its HTML and CSV (HAProxy 2.6's column list), the status words and check codes, and the admin form; no sockets, no clock.
//!
//! Every virtual server keepmon runs is one HAProxy proxy: a FRONTEND row
//! (the listener), one row per real server and a BACKEND row, all named
//! after the virtual server — except that a haproxy.cfg frontend with a
//! backend of another name shows that name on the server and BACKEND rows
//! (and their own table), as HAProxy does. Servers show their config name
//! (`server web1 ...`), else their address. Figures keepmon does not keep
//! are left empty, as HAProxy leaves a value it does not know.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use super::html::esc;
use super::{View, WebError};
use crate::lb::table::{Conns, Health, RealReport, ServiceReport};

/// HAProxy's static CSV columns (management.txt §9.1), as Debian's
/// HAProxy 2.6 prints them, then the `-` that ends the static fields.
pub const CSV_FIELDS: &[&str] = &[
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
    "agg_server_status",
    "agg_server_check_status",
    "agg_check_status",
    "-",
];

/// What the supervisor keeps for the stats page beyond the lb report.
#[derive(Clone, Debug, Default)]
pub struct StatsData {
    /// Per virtual server.
    pub proxies: BTreeMap<String, ProxyStats>,
    /// Per (virtual server, real server).
    pub servers: BTreeMap<(String, SocketAddr), ServerStats>,
}

/// A virtual server's settings and history.
#[derive(Clone, Debug, Default)]
pub struct ProxyStats {
    /// `tcp` or `http`.
    pub mode: String,
    /// The frontend's `maxconn`.
    pub maxconn: Option<u32>,
    /// The whole backend's UP/DOWN history.
    pub backend: Track,
    /// The frontend's session rate and maximum.
    pub frontend: Rate,
}

/// A real server's history, its last check and its configured limits.
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    pub track: Track,
    pub rate: Rate,
    /// None: no health service checks it.
    pub check: Option<CheckInfo>,
    /// HAProxy's `backup`.
    pub backup: bool,
    /// The server's `maxconn` (`slim`).
    pub maxconn: Option<u32>,
    /// The server's `maxqueue` (`qlimit`).
    pub maxqueue: Option<u32>,
}

/// The health service's view of one real server's host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckInfo {
    /// The monitor as `dump` names it (`tcp port 80`, `http port 80 GET /`).
    pub monitor: String,
    /// Checked at least once.
    pub checked: bool,
    /// Results in a row contradicting the current up/down.
    pub streak: u32,
    pub rise: u32,
    pub fall: u32,
    pub reason: Option<String>,
    /// How long the health service's last run took.
    pub micros: Option<u32>,
    /// Failed checks while the server was up (HAProxy's `chkfail`).
    pub chkfail: u64,
}

/// Since when something has its status, and how long it was down.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Track {
    /// The status word last seen (`UP`, `DOWN`, `MAINT`, `DRAIN`, ...);
    /// empty before the first look.
    pub word: String,
    /// Unix time of the last change of word.
    pub since: i64,
    /// Down since then (None: not down).
    pub down_since: Option<i64>,
    /// Seconds down before `down_since`.
    pub downtime: i64,
    /// UP → DOWN transitions.
    pub chkdown: u64,
}

impl Track {
    /// Note the status at `now` (the first word of a status: `UP 2/3` is
    /// still UP).
    pub fn observe(&mut self, now: i64, status: &str, down: bool) {
        let word = status.split(' ').next().unwrap_or_default();
        if self.word != word {
            let first = self.word.is_empty();
            self.word = word.to_string();
            self.since = now;
            if down && !first && self.down_since.is_none() {
                self.chkdown += 1;
            }
        }
        match (down, self.down_since) {
            (true, None) => self.down_since = Some(now),
            (false, Some(since)) => {
                self.downtime += (now - since).max(0);
                self.down_since = None;
            }
            _ => {}
        }
    }

    /// Total seconds down up to `now`.
    pub fn downtime_at(&self, now: i64) -> i64 {
        self.downtime + self.down_since.map_or(0, |since| (now - since).max(0))
    }
}

/// Sessions per second, from totals seen once a second, and the maximum
/// of the sessions seen at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rate {
    last: Option<(i64, u64)>,
    pub rate: u64,
    pub rate_max: u64,
    /// The most sessions seen at once (sampled once a second).
    pub smax: u64,
}

impl Rate {
    pub fn observe(&mut self, now: i64, total: u64, current: u64) {
        if let Some((then, before)) = self.last
            && now > then
        {
            let seconds = u64::try_from(now - then).unwrap_or(1).max(1);
            self.rate = total.saturating_sub(before) / seconds;
            self.rate_max = self.rate_max.max(self.rate);
        }
        if self.last.is_none_or(|(then, _)| now > then) {
            self.last = Some((now, total));
        }
        self.smax = self.smax.max(current);
    }
}

/// What a request under `stats uri` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsRequest {
    pub csv: bool,
    pub norefresh: bool,
    /// The outcome of an admin action (`;st=DONE`), shown as a message.
    pub status: Option<String>,
}

/// Whether `path_and_query` is under the page's `uri` (HAProxy matches
/// the prefix) and with which `;` options.
pub fn parse_request(uri: &str, path_and_query: &str) -> Option<StatsRequest> {
    let rest = path_and_query.strip_prefix(uri)?;
    let mut request = StatsRequest::default();
    for option in rest.split(';') {
        match option {
            "csv" => request.csv = true,
            "norefresh" => request.norefresh = true,
            _ => {
                if let Some(status) = option.strip_prefix("st=") {
                    request.status = Some(status.chars().take(8).collect());
                }
            }
        }
    }
    Some(request)
}

/// Which kind of row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Frontend,
    Backend,
    Server,
}

/// One line of the table (and of the CSV).
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub pxname: String,
    pub svname: String,
    pub kind: Option<RowKind>,
    pub iid: usize,
    pub sid: usize,
    pub scur: u64,
    pub smax: u64,
    pub slim: Option<u64>,
    /// Queued now and the most at once (servers of the proxy data plane).
    pub queue: Option<(u64, u64)>,
    pub qlimit: Option<u64>,
    pub stot: u64,
    pub bin: u64,
    pub bout: u64,
    pub econ: Option<u64>,
    pub wretr: Option<u64>,
    pub status: String,
    pub weight: Option<u64>,
    pub act: Option<u64>,
    pub bck: Option<u64>,
    pub chkfail: Option<u64>,
    pub chkdown: Option<u64>,
    pub lastchg: Option<i64>,
    pub downtime: Option<i64>,
    pub lbtot: Option<u64>,
    pub rate: u64,
    pub rate_max: u64,
    pub check: Option<Check>,
    /// http mode: responses by class, and requests.
    pub http: Option<([u64; 5], u64)>,
    pub addr: Option<String>,
    pub mode: String,
    pub algo: Option<String>,
    /// The server's address (the admin form's target).
    pub server: Option<SocketAddr>,
}

/// A server's last check as HAProxy reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// `L4OK`, `L7STS`, ... (HAProxy's codes).
    pub status: &'static str,
    /// The HTTP status of an http check.
    pub code: Option<u16>,
    pub millis: Option<u64>,
    pub desc: &'static str,
    /// What the check said (the failure reason).
    pub last: String,
    pub rise: u32,
    pub fall: u32,
    /// HAProxy's health counter: 0..fall-1 down, fall..rise+fall-1 up.
    pub health: u32,
}

/// The table: per virtual server (in name order) its frontend, its servers
/// and its backend.
pub fn rows(view: &View, data: &StatsData) -> Vec<Row> {
    let mut rows = Vec::new();
    for (index, vs) in view.lb.services.iter().enumerate() {
        let iid = index + 1;
        let proxy = data.proxies.get(&vs.name).cloned().unwrap_or_default();
        let mode = if proxy.mode.is_empty() {
            "tcp".to_string()
        } else {
            proxy.mode.clone()
        };
        let mut servers = Vec::new();
        for (i, rs) in vs.real_servers.iter().enumerate() {
            let stats = data
                .servers
                .get(&(vs.name.clone(), rs.addr))
                .cloned()
                .unwrap_or_default();
            servers.push(server_row(view.now, vs, rs, &stats, iid, i + 1, &mode));
        }
        let sum = |f: fn(&Row) -> u64| servers.iter().map(f).sum::<u64>();
        let sorry = vs.sorry_conns.unwrap_or_default();
        let http = (mode == "http").then(|| {
            let mut classes = [0u64; 5];
            let mut requests = 0;
            for conns in vs
                .real_servers
                .iter()
                .filter_map(|r| r.conns)
                .chain(vs.sorry_conns)
            {
                for (total, n) in classes.iter_mut().zip(conns.responses) {
                    *total += n;
                }
                requests += conns.requests;
            }
            (classes, requests)
        });
        let scur = sum(|r| r.scur) + sorry.active;
        let stot = sum(|r| r.stot) + sorry.total;
        let (bin, bout) = (
            sum(|r| r.bin) + sorry.bytes_in,
            sum(|r| r.bout) + sorry.bytes_out,
        );
        rows.push(Row {
            pxname: vs.name.clone(),
            svname: "FRONTEND".into(),
            kind: Some(RowKind::Frontend),
            iid,
            scur,
            smax: proxy.frontend.smax.max(scur),
            slim: proxy.maxconn.map(u64::from),
            stot,
            bin,
            bout,
            status: "OPEN".into(),
            rate: proxy.frontend.rate,
            rate_max: proxy.frontend.rate_max,
            http,
            mode: mode.clone(),
            addr: vs.listen.map(|l| l.to_string()),
            ..Row::default()
        });
        let up = backend_up(vs);
        let usable = |bck: u64| {
            servers
                .iter()
                .filter(|r| {
                    r.bck == Some(bck) && r.status != "MAINT" && !r.status.starts_with("DOWN")
                })
                .count() as u64
        };
        let (active, backups) = (usable(0), usable(1));
        rows.push(Row {
            pxname: backend_name(vs).to_string(),
            svname: "BACKEND".into(),
            kind: Some(RowKind::Backend),
            iid,
            scur,
            smax: proxy.backend_smax(scur),
            stot,
            bin,
            bout,
            econ: Some(sum(|r| r.econ.unwrap_or(0)) + sorry.failures),
            wretr: Some(sum(|r| r.wretr.unwrap_or(0)) + sorry.retries),
            status: if up { "UP" } else { "DOWN" }.into(),
            weight: Some(vs.live_weight),
            act: Some(active),
            bck: Some(backups),
            chkdown: Some(proxy.backend.chkdown),
            lastchg: (!proxy.backend.word.is_empty()).then(|| view.now - proxy.backend.since),
            downtime: Some(proxy.backend.downtime_at(view.now)),
            lbtot: Some(stot),
            rate: proxy.frontend.rate,
            rate_max: proxy.frontend.rate_max,
            http,
            mode: mode.clone(),
            algo: Some(vs.scheduler.clone()),
            ..Row::default()
        });
        // HAProxy's order: FRONTEND, the servers, BACKEND. A pool (a
        // backend that routes reach) has no frontend of its own; a
        // frontend that only routes has no backend of its own.
        let backend = rows.pop();
        if vs.listen.is_none() {
            rows.pop();
        }
        rows.extend(servers);
        let routes_only = vs.real_servers.is_empty() && !vs.routes.is_empty();
        if !routes_only {
            rows.extend(backend);
        }
    }
    rows
}

impl ProxyStats {
    fn backend_smax(&self, scur: u64) -> u64 {
        self.frontend.smax.max(scur)
    }
}

/// Whether a virtual server can serve: some real server up and not in
/// maintenance, or its sorry server standing in.
pub fn backend_up(vs: &ServiceReport) -> bool {
    vs.sorry_active
        || vs
            .real_servers
            .iter()
            .any(|r| r.health.is_up() && r.admin != "maint")
}

/// The proxy name of a virtual server's server and BACKEND rows: its
/// haproxy.cfg backend's, else its own.
pub fn backend_name(vs: &ServiceReport) -> &str {
    vs.backend.as_deref().unwrap_or(&vs.name)
}

/// The name HAProxy would show for a server: its config name (haproxy.cfg's
/// `server NAME`), else the health service's host name when it is not just
/// the address, else the address.
pub fn server_name(rs: &RealReport) -> String {
    if let Some(name) = &rs.name {
        return name.clone();
    }
    let host = rs.host.trim();
    if host.is_empty()
        || host == rs.addr.to_string()
        || host.parse::<std::net::IpAddr>().ok() == Some(rs.addr.ip())
    {
        rs.addr.to_string()
    } else {
        host.to_string()
    }
}

fn server_row(
    now: i64,
    vs: &ServiceReport,
    rs: &RealReport,
    stats: &ServerStats,
    iid: usize,
    sid: usize,
    mode: &str,
) -> Row {
    let conns: Conns = rs.conns.unwrap_or_default();
    let status = server_status(rs, stats.check.as_ref());
    let check = stats
        .check
        .as_ref()
        .filter(|_| rs.admin != "maint")
        .map(|c| check(c, rs.health));
    Row {
        pxname: backend_name(vs).to_string(),
        svname: server_name(rs),
        kind: Some(RowKind::Server),
        iid,
        sid,
        scur: conns.active,
        smax: stats.rate.smax.max(conns.active),
        stot: conns.total,
        bin: conns.bytes_in,
        bout: conns.bytes_out,
        econ: Some(conns.failures),
        wretr: Some(conns.retries),
        // HAProxy's server weight stays when it is down or in maintenance;
        // drain is weight 0.
        weight: Some(u64::from(if rs.admin == "drain" {
            0
        } else {
            rs.effective_weight.unwrap_or(rs.weight)
        })),
        act: Some(u64::from(!stats.backup)),
        bck: Some(u64::from(stats.backup)),
        slim: stats.maxconn.map(u64::from),
        queue: (vs.dataplane == "proxy").then_some((conns.queued, conns.queue_max)),
        qlimit: stats.maxqueue.map(u64::from),
        chkfail: stats.check.as_ref().map(|c| c.chkfail),
        chkdown: Some(stats.track.chkdown),
        lastchg: (!stats.track.word.is_empty()).then(|| now - stats.track.since),
        downtime: Some(stats.track.downtime_at(now)),
        lbtot: Some(conns.total),
        rate: stats.rate.rate,
        rate_max: stats.rate.rate_max,
        check,
        http: (mode == "http").then_some((conns.responses, conns.requests)),
        addr: Some(rs.addr.to_string()),
        mode: mode.to_string(),
        status,
        server: Some(rs.addr),
        ..Row::default()
    }
}

/// HAProxy's status word for a server: MAINT, DOWN, `DOWN 1/2` (rising),
/// UP, `UP 2/3` (falling: checks left before DOWN), DRAIN, `no check`.
pub fn server_status(rs: &RealReport, check: Option<&CheckInfo>) -> String {
    if rs.admin == "maint" {
        return "MAINT".into();
    }
    let drain = rs.admin == "drain" || rs.weight == 0;
    let checked = check.filter(|c| c.checked && rs.health != Health::Unknown);
    match (rs.health, checked) {
        (Health::Down, Some(c)) if c.streak > 0 => format!("DOWN {}/{}", c.streak, c.rise.max(1)),
        (Health::Down, _) => "DOWN".into(),
        (_, Some(c)) if c.streak > 0 => {
            let fall = c.fall.max(1);
            let left = fall.saturating_sub(c.streak).max(1);
            format!("{} {left}/{fall}", if drain { "DRAIN" } else { "UP" })
        }
        _ if drain => "DRAIN".into(),
        (_, None) if check.is_none() => "no check".into(),
        _ => "UP".into(),
    }
}

/// HAProxy's check status, code and description for a keepmon check.
pub fn check(info: &CheckInfo, health: Health) -> Check {
    let rise = info.rise.max(1);
    let fall = info.fall.max(1);
    let health_counter = match health {
        Health::Down => info.streak.min(rise - 1),
        _ => rise + fall - 1 - info.streak.min(fall - 1),
    };
    let millis = info.micros.map(|m| u64::from(m) / 1000);
    let layer4 = info.monitor.starts_with("tcp") || info.monitor.starts_with("ping");
    let http = info.monitor.starts_with("http");
    let (status, code, desc) = if !info.checked {
        ("INI", None, "Initializing")
    } else {
        match info.reason.as_deref() {
            None if layer4 => ("L4OK", None, "Layer4 check passed"),
            None => ("L7OK", None, "Layer7 check passed"),
            Some(reason) => failed_check(reason, layer4, http),
        }
    };
    Check {
        status,
        code: code.or_else(|| (status == "L7OK" && http).then_some(200)),
        millis,
        desc,
        last: info.reason.clone().unwrap_or_default(),
        rise,
        fall,
        health: health_counter,
    }
}

fn failed_check(
    reason: &str,
    layer4: bool,
    http: bool,
) -> (&'static str, Option<u16>, &'static str) {
    let lower = reason.to_ascii_lowercase();
    let status_code = lower
        .split("status ")
        .nth(1)
        .and_then(|rest| rest.get(..3))
        .and_then(|digits| digits.parse::<u16>().ok());
    if let Some(code) = status_code.filter(|_| http) {
        return ("L7STS", Some(code), "Layer7 wrong status");
    }
    if lower.contains("timeout") || lower.contains("timed out") {
        return if layer4 {
            ("L4TOUT", None, "Layer4 timeout")
        } else {
            ("L7TOUT", None, "Layer7 timeout")
        };
    }
    if lower.contains("connect") || lower.contains("refused") || lower.contains("unreachable") {
        return ("L4CON", None, "Layer4 connection problem");
    }
    if lower.contains("tls") {
        return ("L6RSP", None, "Layer6 invalid response");
    }
    if layer4 {
        ("L4CON", None, "Layer4 connection problem")
    } else {
        ("L7RSP", None, "Layer7 invalid response")
    }
}

/// The CSV form: HAProxy's header line, then a line per row.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("# ");
    for name in CSV_FIELDS {
        out.push_str(name);
        out.push(',');
    }
    out.push('\n');
    for row in rows {
        for cell in cells(row) {
            push_csv(&mut out, &cell);
            out.push(',');
        }
        out.push('\n');
    }
    out
}

/// `value` onto `out`, quoted only when it holds a comma, quote or line
/// break (quotes doubled).
fn push_csv(out: &mut String, value: &str) {
    if value
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The index of CSV column `name` (evaluated at compile time; an unknown
/// name does not compile).
const fn col(name: &str) -> usize {
    let mut i = 0;
    while i < CSV_FIELDS.len() {
        let field = CSV_FIELDS[i].as_bytes();
        let wanted = name.as_bytes();
        if field.len() == wanted.len() {
            let mut j = 0;
            while j < field.len() && field[j] == wanted[j] {
                j += 1;
            }
            if j == field.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a CSV column")
}

/// A row's CSV cells; empty where keepmon has no figure.
fn cells(row: &Row) -> Vec<String> {
    let mut cells = vec![String::new(); CSV_FIELDS.len()];
    macro_rules! put {
        ($name:literal, $value:expr) => {
            cells[const { col($name) }] = $value
        };
    }
    let kind = row.kind.unwrap_or(RowKind::Server);
    let server = kind == RowKind::Server;
    let frontend = kind == RowKind::Frontend;
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    let opt_i = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let check = row.check.as_ref();
    let http = |i: usize| {
        row.http
            .map(|(classes, _)| classes[i].to_string())
            .unwrap_or_default()
    };
    put!("pxname", row.pxname.clone());
    put!("svname", row.svname.clone());
    put!("scur", row.scur.to_string());
    put!("smax", row.smax.to_string());
    put!("slim", opt(row.slim));
    put!("qlimit", opt(row.qlimit));
    put!("qcur", opt(row.queue.map(|(current, _)| current)));
    put!("qmax", opt(row.queue.map(|(_, most)| most)));
    put!("stot", row.stot.to_string());
    put!("bin", row.bin.to_string());
    put!("bout", row.bout.to_string());
    put!("econ", opt(row.econ));
    put!("wretr", opt(row.wretr));
    put!("status", row.status.clone());
    put!("weight", opt(row.weight));
    put!("act", opt(row.act));
    put!("bck", opt(row.bck));
    put!("chkfail", opt(row.chkfail));
    put!("chkdown", opt(row.chkdown));
    put!("lastchg", opt_i(row.lastchg));
    put!("downtime", opt_i(row.downtime));
    put!("pid", "1".into());
    put!("iid", row.iid.to_string());
    put!("sid", row.sid.to_string());
    put!("lbtot", opt(row.lbtot));
    put!(
        "type",
        match kind {
            RowKind::Frontend => "0",
            RowKind::Backend => "1",
            RowKind::Server => "2",
        }
        .into()
    );
    put!("rate", row.rate.to_string());
    put!("rate_max", row.rate_max.to_string());
    put!(
        "check_status",
        check.map(|c| c.status.to_string()).unwrap_or_default()
    );
    put!(
        "check_code",
        check
            .and_then(|c| c.code)
            .map(|c| c.to_string())
            .unwrap_or_default()
    );
    put!("check_duration", opt(check.and_then(|c| c.millis)));
    put!(
        "check_desc",
        check.map(|c| c.desc.to_string()).unwrap_or_default()
    );
    put!(
        "last_chk",
        check.map(|c| c.last.clone()).unwrap_or_default()
    );
    put!(
        "check_rise",
        check.map(|c| c.rise.to_string()).unwrap_or_default()
    );
    put!(
        "check_fall",
        check.map(|c| c.fall.to_string()).unwrap_or_default()
    );
    put!(
        "check_health",
        check.map(|c| c.health.to_string()).unwrap_or_default()
    );
    put!("hrsp_1xx", http(0));
    put!("hrsp_2xx", http(1));
    put!("hrsp_3xx", http(2));
    put!("hrsp_4xx", http(3));
    put!("hrsp_5xx", http(4));
    if !server {
        put!(
            "req_tot",
            row.http.map(|(_, r)| r.to_string()).unwrap_or_default()
        );
    }
    if server {
        put!("addr", row.addr.clone().unwrap_or_default());
    }
    put!("mode", row.mode.clone());
    put!("algo", row.algo.clone().unwrap_or_default());
    if frontend {
        put!("conn_tot", row.stot.to_string());
    }
    if !frontend {
        put!("uweight", opt(row.weight));
    }
    cells
}

/// How the HTML page is drawn.
#[derive(Clone, Debug, Default)]
pub struct PageOptions {
    /// The page's uri (links and the form post there).
    pub uri: String,
    /// Seconds between reloads (None: no reload).
    pub refresh: Option<u64>,
    /// `keepmon x.y.z`, or None (`hide_version`).
    pub version: Option<String>,
    /// Show the admin checkboxes and actions.
    pub admin: bool,
    /// The outcome of the last admin action (`st=` of the redirect).
    pub status: Option<String>,
}

/// HAProxy's stats page: one table per virtual server.
pub fn html(view: &View, rows: &[Row], options: &PageOptions) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Statistics Report for keepmon on {}</title>",
        esc(&view.hostname)
    );
    if let Some(seconds) = options.refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{seconds}\">");
    }
    let _ = write!(
        out,
        "<style>{STYLE}</style></head><body><h1>Statistics Report for keepmon on {}</h1>",
        esc(&view.hostname)
    );
    out.push_str("<table class=\"info\"><tr><td><p><b>General process information</b></p>");
    if let Some(version) = &options.version {
        let _ = write!(out, "<p id=\"version\">{}</p>", esc(version));
    }
    let _ = write!(
        out,
        "<p>pid = {} (process #1)<br>uptime = {}<br>system time = {}</p></td><td>{LEGEND}</td><td><ul>",
        view.pid,
        uptime(view.now - view.started),
        clock(view.now)
    );
    let uri = esc(&options.uri);
    if options.refresh.is_some() {
        let _ = write!(
            out,
            "<li><a href=\"{uri};norefresh\">Disable refresh</a></li>"
        );
    }
    let _ = write!(
        out,
        "<li><a href=\"{uri};csv\">CSV export</a></li></ul></td></tr></table>"
    );
    if let Some(status) = &options.status {
        let (class, text) = match status.as_str() {
            "DONE" => ("done", "Action processed successfully."),
            "PART" => ("part", "Action only partially processed."),
            "NONE" => ("part", "Nothing has changed."),
            "DENY" => ("fail", "Action denied."),
            "ERRP" => (
                "fail",
                "Action not processed because of invalid parameters.",
            ),
            _ => ("fail", "Unexpected result."),
        };
        let _ = write!(out, "<p id=\"status\" class=\"{class}\">[X] {text}</p>");
    }
    let mut iter = rows.iter().peekable();
    while let Some(first) = iter.next() {
        let mut proxy_rows = vec![first];
        while let Some(next) = iter.peek() {
            // A frontend and its backend of another name: two tables.
            if next.iid != first.iid || next.pxname != first.pxname {
                break;
            }
            proxy_rows.extend(iter.next());
        }
        proxy_table(&mut out, &proxy_rows, options);
    }
    out.push_str("</body></html>");
    out
}

fn proxy_table(out: &mut String, rows: &[&Row], options: &PageOptions) {
    let Some(first) = rows.first() else {
        return;
    };
    let name = esc(&first.pxname);
    // HAProxy offers the admin form on backends only.
    let admin = options.admin && rows.iter().any(|r| r.kind == Some(RowKind::Backend));
    if admin {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{}\">",
            esc(&options.uri)
        );
    }
    let _ = write!(
        out,
        "<table class=\"px\" id=\"px-{name}\" data-px=\"{name}\"><tr class=\"titre\"><th class=\"pxname\" colspan=\"{}\">{name} <small>{}</small></th></tr>",
        if admin { 32 } else { 31 },
        esc(&first.mode)
    );
    out.push_str("<tr class=\"titre\">");
    if admin {
        out.push_str("<th rowspan=\"2\"></th>");
    }
    out.push_str(
        "<th rowspan=\"2\"></th><th colspan=\"3\">Queue</th><th colspan=\"3\">Session rate</th>\
         <th colspan=\"6\">Sessions</th><th colspan=\"2\">Bytes</th><th colspan=\"2\">Denied</th>\
         <th colspan=\"3\">Errors</th><th colspan=\"2\">Warnings</th><th colspan=\"9\">Server</th></tr>\
         <tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th>\
         <th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>Last</th><th>In</th><th>Out</th>\
         <th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th>\
         <th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th>\
         <th>Dwntme</th><th>Thrtle</th></tr>",
    );
    for row in rows {
        table_row(out, row, admin);
    }
    out.push_str("</table>");
    if admin {
        let _ = write!(
            out,
            "<div class=\"adm\">Choose the action to perform on the checked servers : \
             <select name=\"action\"><option value=\"\"></option>\
             <option value=\"ready\">Set state to READY</option>\
             <option value=\"drain\">Set state to DRAIN</option>\
             <option value=\"maint\">Set state to MAINT</option></select>\
             <input type=\"hidden\" name=\"b\" value=\"#{}\"><input type=\"submit\" value=\"Apply\"></div></form>",
            first.iid
        );
    }
}

fn table_row(out: &mut String, row: &Row, admin: bool) {
    let kind = row.kind.unwrap_or(RowKind::Server);
    let class = match kind {
        RowKind::Frontend => "frontend",
        RowKind::Backend => {
            if row.status == "UP" {
                "backend"
            } else {
                "backend active_down"
            }
        }
        RowKind::Server => server_class(&row.status),
    };
    let _ = write!(
        out,
        "<tr class=\"{class}\" data-sv=\"{}\" data-status=\"{}\">",
        esc(&row.svname),
        esc(&row.status)
    );
    if admin {
        match (kind, row.server) {
            (RowKind::Server, Some(_)) => {
                let _ = write!(
                    out,
                    "<td><input type=\"checkbox\" name=\"s\" value=\"{}\"></td>",
                    esc(&row.svname)
                );
            }
            _ => out.push_str("<td></td>"),
        }
    }
    let label = match kind {
        RowKind::Frontend => "Frontend".to_string(),
        RowKind::Backend => "Backend".to_string(),
        RowKind::Server => row.svname.clone(),
    };
    let title = row.addr.as_deref().map(esc).unwrap_or_default();
    let _ = write!(
        out,
        "<td class=\"ac\" title=\"{title}\">{}</td>",
        esc(&label)
    );
    let queue =
        |pick: fn((u64, u64)) -> u64| row.queue.map(|q| pick(q).to_string()).unwrap_or_default();
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td><td>{}</td>",
        queue(|(current, _)| current),
        queue(|(_, most)| most),
        row.qlimit.map(|n| n.to_string()).unwrap_or_default()
    );
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td><td></td>",
        row.rate, row.rate_max
    );
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td></td>",
        row.scur,
        row.smax,
        row.slim.map(|n| n.to_string()).unwrap_or_default(),
        row.stot,
        row.lbtot.map(|n| n.to_string()).unwrap_or_default()
    );
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td>",
        bytes(row.bin),
        bytes(row.bout)
    );
    // Denied; errors req/conn/resp; warnings retr/redis.
    let _ = write!(
        out,
        "<td></td><td></td><td></td><td>{}</td><td></td><td>{}</td><td></td>",
        row.econ.map(|n| n.to_string()).unwrap_or_default(),
        row.wretr.map(|n| n.to_string()).unwrap_or_default()
    );
    let status = match row.lastchg {
        Some(seconds) if kind != RowKind::Frontend => {
            format!("{} {}", uptime(seconds), esc(&row.status))
        }
        _ => esc(&row.status),
    };
    let _ = write!(out, "<td class=\"status\">{status}</td>");
    let last_check = row
        .check
        .as_ref()
        .map(|c| {
            let mut text = c.status.to_string();
            if let Some(code) = c.code {
                let _ = write!(text, "/{code}");
            }
            if let Some(ms) = c.millis {
                let _ = write!(text, " in {ms}ms");
            }
            format!(
                "<span title=\"{}: {}\">{}</span>",
                c.desc,
                esc(&c.last),
                esc(&text)
            )
        })
        .unwrap_or_default();
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    let _ = write!(
        out,
        "<td class=\"chk\">{last_check}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td></td></tr>",
        opt(row.weight),
        match kind {
            RowKind::Server => row
                .act
                .map(|a| if a > 0 { "Y" } else { "-" }.to_string())
                .unwrap_or_default(),
            _ => opt(row.act),
        },
        match kind {
            RowKind::Server => row
                .bck
                .map(|b| if b > 0 { "Y" } else { "-" }.to_string())
                .unwrap_or_default(),
            _ => opt(row.bck),
        },
        opt(row.chkfail),
        opt(row.chkdown),
        row.downtime
            .filter(|d| *d > 0)
            .map(uptime)
            .unwrap_or_default()
    );
}

/// HAProxy's row classes (its colours).
fn server_class(status: &str) -> &'static str {
    match status.split(' ').collect::<Vec<_>>().as_slice() {
        ["MAINT", ..] => "maintain",
        ["DOWN"] => "active_down",
        ["DOWN", _] => "active_going_up",
        ["UP", _] | ["DRAIN", _] => "active_going_down",
        ["DRAIN"] => "active_draining",
        ["no", "check"] => "active_no_check",
        _ => "active_up",
    }
}

/// What an admin form asks: servers of one virtual server and an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRequest {
    pub virtual_server: String,
    pub servers: Vec<SocketAddr>,
    /// `ready`, `drain` or `maint`.
    pub action: String,
}

/// Read HAProxy's admin form (`s` repeated, `action`, `b=#IID`) against
/// the table it was drawn from: the names become addresses.
pub fn admin_request(body: &str, view: &View) -> Result<AdminRequest, WebError> {
    let mut servers = Vec::new();
    let (mut action, mut backend) = (None, None);
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = super::percent_decode(&value.replace('+', " "));
        match key {
            "s" => servers.push(value),
            "action" => action = Some(value),
            "b" => backend = Some(value),
            _ => {}
        }
    }
    let action = action
        .filter(|a| ["ready", "drain", "maint"].contains(&a.as_str()))
        .ok_or_else(|| WebError::bad_request("action must be ready, drain or maint"))?;
    let backend = backend.ok_or_else(|| WebError::bad_request("no backend (b)"))?;
    let vs = match backend.strip_prefix('#').map(str::parse::<usize>) {
        Some(Ok(iid)) => iid.checked_sub(1).and_then(|i| view.lb.services.get(i)),
        _ => view
            .lb
            .services
            .iter()
            .find(|vs| backend_name(vs) == backend)
            .or_else(|| view.lb.services.iter().find(|vs| vs.name == backend)),
    }
    .ok_or_else(|| WebError::not_found(format!("no backend {backend:?}")))?;
    if servers.is_empty() {
        return Err(WebError::bad_request("no server checked (s)"));
    }
    let addrs = servers
        .iter()
        .map(|name| {
            vs.real_servers
                .iter()
                .find(|rs| server_name(rs) == *name || rs.addr.to_string() == *name)
                .map(|rs| rs.addr)
                .ok_or_else(|| WebError::not_found(format!("no server {name:?} in {}", vs.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AdminRequest {
        virtual_server: vs.name.clone(),
        servers: addrs,
        action,
    })
}

/// HAProxy's short durations: `5s`, `3m12s`, `2h4m`, `1d3h`.
fn uptime(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m{sec}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

fn clock(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or(String::new(), |t| {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    })
}

fn bytes(n: u64) -> String {
    n.to_string()
}

const LEGEND: &str = "<table class=\"lgd\"><tr><td class=\"active_up\"></td><td>active UP</td>\
<td class=\"active_going_down\"></td><td>active UP, going down</td></tr>\
<tr><td class=\"active_going_up\"></td><td>active DOWN, going up</td>\
<td class=\"active_down\"></td><td>active or backup DOWN</td></tr>\
<tr><td class=\"active_draining\"></td><td>active or backup DRAIN</td>\
<td class=\"maintain\"></td><td>active or backup MAINT</td></tr></table>";

const STYLE: &str = "\
body{font-family:arial,helvetica,sans-serif;font-size:12px;font-weight:normal;color:black;background:white}\
h1{font-size:18px;color:white;background:#20a0ff;padding:4px 8px;margin:0 0 8px}\
table.px{border-collapse:collapse;border-style:none;margin:8px 0;width:100%}\
table.px th,table.px td{border:1px solid gray;padding:1px 3px;text-align:right;white-space:nowrap}\
table.px td.ac,table.px td.status,table.px td.chk{text-align:left}\
tr.titre th{background:#20a0ff;color:black;text-align:center}th.pxname{background:#b00040!important;color:#ffff40!important;text-align:left!important;font-size:14px}\
tr.frontend td{background:#e8e8d0}tr.backend td{background:#e8e8d0;font-weight:bold}tr.backend.active_down td{background:#ff9090}\
.active_up{background:#c0ffc0}.active_going_down{background:#ffffa0}.active_going_up{background:#ffd020}\
.active_down{background:#ff9090}.active_draining{background:#20a0ff}.maintain{background:#c07820}.active_no_check{background:#e0e0e0}\
tr.active_up td,tr.active_going_down td,tr.active_going_up td,tr.active_down td,tr.active_draining td,tr.maintain td,tr.active_no_check td{background:inherit}\
table.info td{vertical-align:top;padding-right:24px}table.lgd td{padding:1px 4px}table.lgd td:nth-child(odd){width:12px;border:1px solid gray}\
p.done{background:#20ff20;padding:4px}p.part,p.fail{background:#ff8080;padding:4px}\
div.adm{margin:0 0 12px}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::table::{Report, Source};

    fn real(addr: &str, host: &str, health: Health, admin: &str) -> RealReport {
        RealReport {
            addr: addr.parse().unwrap(),
            name: None,
            host: host.into(),
            source: Source::Config,
            forward: "nat".into(),
            weight: 1,
            effective_weight: Some(1),
            in_dataplane: true,
            health,
            admin: admin.into(),
            inhibit_on_failure: false,
            upper_threshold: 0,
            lower_threshold: 0,
            backup: false,
            edit: None,
            conns: Some(Conns {
                active: 2,
                total: 7,
                bytes_in: 100,
                bytes_out: 2000,
                failures: 1,
                ..Conns::default()
            }),
        }
    }

    fn service(name: &str, reals: Vec<RealReport>) -> ServiceReport {
        ServiceReport {
            name: name.into(),
            listen: Some("127.0.0.1:8080".parse().unwrap()),
            fwmark: None,
            protocol: "tcp".into(),
            scheduler: "rr".into(),
            dataplane: "proxy".into(),
            persistence_secs: None,
            persistence_netmask: None,
            implicit: false,
            health: Some("g:s".into()),
            quorum: 1,
            hysteresis: 0,
            quorum_up: true,
            live_weight: 2,
            sorry_server: None,
            sorry_active: false,
            sorry_conns: None,
            backend: None,
            real_servers: reals,
            routes: Vec::new(),
        }
    }

    fn view(services: Vec<ServiceReport>) -> View {
        View {
            now: 1_700_000_100,
            hostname: "lb<1>".into(),
            config: "k.toml".into(),
            pid: 42,
            started: 1_700_000_000,
            dump: serde_json::from_value(serde_json::json!({"scheduler_running": true,
                "services": [], "disabled_hosts": [], "alert_history": [],
                "mail": {"route": "none", "pending": 0, "oldest_pending": null,
                "last_error": null, "delivered": 0, "dead_total": 0, "dead_letters": []}}))
            .expect("dump"),
            lb: Report { services },
            extra: BTreeMap::new(),
            failure_history: Vec::new(),
            csrf: String::new(),
            stats: StatsData::default(),
        }
    }

    fn checked(streak: u32, reason: Option<&str>, monitor: &str) -> CheckInfo {
        CheckInfo {
            monitor: monitor.into(),
            checked: true,
            streak,
            rise: 2,
            fall: 3,
            reason: reason.map(str::to_string),
            micros: Some(1500),
            chkfail: 4,
        }
    }

    #[test]
    fn requests_under_the_uri_take_semicolon_options() {
        let uri = "/haproxy?stats";
        assert_eq!(parse_request(uri, "/other"), None);
        assert_eq!(parse_request(uri, uri), Some(StatsRequest::default()));
        let csv = parse_request(uri, "/haproxy?stats;csv;norefresh").unwrap();
        assert!(csv.csv && csv.norefresh);
        let done = parse_request(uri, "/haproxy?stats;st=DONE").unwrap();
        assert_eq!(done.status.as_deref(), Some("DONE"));
    }

    #[test]
    fn pools_have_no_frontend_row_and_routing_frontends_no_backend_row() {
        let mut front = service("www", Vec::new());
        front.routes = vec!["api".into()];
        let mut pool = service(
            "api",
            vec![real("10.0.0.1:80", "10.0.0.1", Health::Up, "ready")],
        );
        pool.listen = None;
        let v = view(vec![pool, front]);
        let names: Vec<(String, String)> = rows(&v, &v.stats)
            .iter()
            .map(|r| (r.pxname.clone(), r.svname.clone()))
            .collect();
        let expected: Vec<(String, String)> = [
            ("api", "10.0.0.1:80"),
            ("api", "BACKEND"),
            ("www", "FRONTEND"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn status_words_follow_haproxy() {
        let up = real("10.0.0.1:80", "10.0.0.1", Health::Up, "ready");
        let down = real("10.0.0.1:80", "10.0.0.1", Health::Down, "ready");
        let ok = checked(0, None, "tcp port 80");
        for (rs, check, expected) in [
            (&up, Some(&ok), "UP"),
            (&up, Some(&checked(1, Some("x"), "tcp")), "UP 2/3"),
            (&up, Some(&checked(2, Some("x"), "tcp")), "UP 1/3"),
            (&down, Some(&ok), "DOWN"),
            (&down, Some(&checked(1, None, "tcp")), "DOWN 1/2"),
            (&up, None, "no check"),
            (
                &real("10.0.0.1:80", "h", Health::Up, "maint"),
                Some(&ok),
                "MAINT",
            ),
            (
                &real("10.0.0.1:80", "h", Health::Up, "drain"),
                Some(&ok),
                "DRAIN",
            ),
        ] {
            assert_eq!(server_status(rs, check), expected, "{rs:?} {check:?}");
        }
    }

    #[test]
    fn check_codes_follow_haproxy() {
        let code = |reason: Option<&str>, monitor: &str, health| {
            let c = check(&checked(0, reason, monitor), health);
            (c.status, c.code)
        };
        assert_eq!(code(None, "tcp port 80", Health::Up), ("L4OK", None));
        assert_eq!(
            code(None, "http port 80 GET /", Health::Up),
            ("L7OK", Some(200))
        );
        assert_eq!(
            code(
                Some("/: status 503 (expected 200-299)"),
                "http port 80 GET /",
                Health::Down
            ),
            ("L7STS", Some(503))
        );
        assert_eq!(
            code(
                Some("could not connect to 10.0.0.1:80: Connection refused"),
                "tcp port 80",
                Health::Down
            ),
            ("L4CON", None)
        );
        assert_eq!(code(Some("timeout"), "tcp", Health::Down), ("L4TOUT", None));
        let health = |streak, h| check(&checked(streak, Some("x"), "tcp"), h).health;
        assert_eq!(health(0, Health::Up), 4, "rise + fall - 1 when fully up");
        assert_eq!(health(1, Health::Up), 3);
        assert_eq!(health(0, Health::Down), 0);
        assert_eq!(health(1, Health::Down), 1);
    }

    #[test]
    fn tracks_count_downtime_and_transitions() {
        let mut t = Track::default();
        t.observe(100, "UP", false);
        t.observe(110, "UP 2/3", false);
        assert_eq!((t.since, t.chkdown), (100, 0), "a falling UP is still UP");
        t.observe(120, "DOWN", true);
        assert_eq!((t.since, t.chkdown, t.downtime_at(130)), (120, 1, 10));
        t.observe(150, "UP", false);
        t.observe(160, "MAINT", false);
        assert_eq!((t.chkdown, t.downtime_at(200)), (1, 30));
        let mut first_down = Track::default();
        first_down.observe(100, "DOWN", true);
        assert_eq!(
            first_down.chkdown, 0,
            "down from the start is no transition"
        );
        let mut rate = Rate::default();
        rate.observe(100, 10, 3);
        rate.observe(101, 25, 1);
        rate.observe(103, 31, 0);
        assert_eq!((rate.rate, rate.rate_max, rate.smax), (3, 15, 3));
    }

    #[test]
    fn csv_has_haproxys_header_and_a_row_per_frontend_server_backend() {
        let mut v = view(vec![service(
            "web",
            vec![
                real("10.0.0.1:80", "10.0.0.1", Health::Up, "ready"),
                real("10.0.0.2:80", "app2", Health::Down, "maint"),
            ],
        )]);
        v.stats.servers.insert(
            ("web".into(), "10.0.0.1:80".parse().unwrap()),
            ServerStats {
                check: Some(checked(0, None, "tcp port 80")),
                maxconn: Some(10),
                maxqueue: Some(5),
                ..ServerStats::default()
            },
        );
        let text = csv(&rows(&v, &v.stats));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,"));
        assert!(lines[0].ends_with("agg_check_status,-,"));
        assert_eq!(lines.len(), 5, "{text}");
        let cells: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
        let col = |name: &str| CSV_FIELDS.iter().position(|f| *f == name).unwrap();
        let names: Vec<(&str, &str)> = cells.iter().map(|c| (c[0], c[1])).collect();
        assert_eq!(
            names,
            [
                ("web", "FRONTEND"),
                ("web", "10.0.0.1:80"),
                ("web", "app2"),
                ("web", "BACKEND")
            ]
        );
        for c in &cells {
            assert_eq!(
                c.len(),
                CSV_FIELDS.len() + 1,
                "every field and the trailing comma"
            );
        }
        assert_eq!(cells[0][col("status")], "OPEN");
        assert_eq!(cells[1][col("status")], "UP");
        assert_eq!(cells[1][col("check_status")], "L4OK");
        assert_eq!(cells[1][col("check_duration")], "1");
        assert_eq!(cells[1][col("scur")], "2");
        assert_eq!(cells[1][col("stot")], "7");
        assert_eq!(cells[1][col("econ")], "1");
        assert_eq!(cells[1][col("slim")], "10", "the server's maxconn");
        assert_eq!(cells[1][col("qlimit")], "5", "the server's maxqueue");
        assert_eq!((cells[1][col("act")], cells[1][col("bck")]), ("1", "0"));
        assert_eq!(cells[2][col("status")], "MAINT");
        assert_eq!(cells[2][col("qcur")], "0", "a proxy server's queue");
        assert_eq!(cells[0][col("qcur")], "", "no frontend queue figure: empty");
        assert_eq!(cells[3][col("status")], "UP");
        assert_eq!(cells[3][col("stot")], "14");
        assert_eq!(cells[3][col("act")], "1");
        assert_eq!(cells[3][col("type")], "1");
    }

    #[test]
    fn page_escapes_names_and_offers_admin_forms() {
        let v = view(vec![service(
            "w<b>",
            vec![real("10.0.0.1:80", "a\"b", Health::Up, "ready")],
        )]);
        let options = PageOptions {
            uri: "/stats".into(),
            refresh: Some(5),
            version: None,
            admin: true,
            status: Some("DONE".into()),
        };
        let page = html(&v, &rows(&v, &v.stats), &options);
        assert!(page.contains("w&lt;b&gt;") && !page.contains("w<b>"));
        assert!(page.contains("value=\"a&quot;b\""));
        assert!(page.contains("http-equiv=\"refresh\" content=\"5\""));
        assert!(page.contains("name=\"b\" value=\"#1\""));
        assert!(page.contains("Action processed successfully"));
        assert!(!page.contains("keepmon version"));
        let plain = html(
            &v,
            &rows(&v, &v.stats),
            &PageOptions {
                uri: "/stats".into(),
                ..PageOptions::default()
            },
        );
        assert!(!plain.contains("name=\"s\"") && !plain.contains("refresh\" content"));
    }

    #[test]
    fn admin_forms_name_servers_of_one_backend() {
        let v = view(vec![
            service(
                "a",
                vec![real("10.0.0.1:80", "10.0.0.1", Health::Up, "ready")],
            ),
            service(
                "b",
                vec![
                    real("10.0.0.2:80", "app2", Health::Up, "ready"),
                    real("10.0.0.3:80", "10.0.0.3", Health::Up, "ready"),
                ],
            ),
        ]);
        assert_eq!(
            admin_request("s=app2&s=10.0.0.3%3A80&action=maint&b=%232", &v),
            Ok(AdminRequest {
                virtual_server: "b".into(),
                servers: vec![
                    "10.0.0.2:80".parse().unwrap(),
                    "10.0.0.3:80".parse().unwrap()
                ],
                action: "maint".into(),
            })
        );
        let status = |body: &str| admin_request(body, &v).map_err(|e| e.status);
        assert_eq!(status("s=app2&action=maint&b=%231"), Err(404));
        assert_eq!(status("s=app2&action=shutdown&b=%232"), Err(400));
        assert_eq!(status("action=ready&b=b"), Err(400));
        assert_eq!(
            status("s=app2&action=ready&b=b").map(|r| r.action),
            Ok("ready".into())
        );
    }

    #[test]
    fn haproxy_names_show_as_pxname_and_svname_and_address_the_admin_form() {
        let mut named = real("10.0.0.2:80", "10.0.0.2", Health::Up, "ready");
        named.name = Some("web1".into());
        let unnamed = real("10.0.0.3:80", "10.0.0.3", Health::Up, "ready");
        let mut fe = service("fe", vec![named, unnamed]);
        fe.backend = Some("be".into());
        let v = view(vec![fe]);
        let table: Vec<(String, String)> = rows(&v, &v.stats)
            .into_iter()
            .map(|r| (r.pxname, r.svname))
            .collect();
        let pair = |px: &str, sv: &str| (px.to_string(), sv.to_string());
        assert_eq!(
            table,
            [
                pair("fe", "FRONTEND"),
                pair("be", "web1"),
                pair("be", "10.0.0.3:80"),
                pair("be", "BACKEND"),
            ]
        );
        let page = html(
            &v,
            &rows(&v, &v.stats),
            &PageOptions {
                uri: "/stats".into(),
                admin: true,
                ..PageOptions::default()
            },
        );
        assert!(page.contains("data-px=\"fe\"") && page.contains("data-px=\"be\""));
        assert!(page.contains("<input type=\"checkbox\" name=\"s\" value=\"web1\">"));
        assert_eq!(
            page.matches("<form").count(),
            1,
            "the admin form is on the backend's table only"
        );
        let asked = admin_request("s=web1&action=drain&b=be", &v).expect("by names");
        assert_eq!(asked.virtual_server, "fe");
        assert_eq!(asked.servers, ["10.0.0.2:80".parse().unwrap()]);
    }
}
