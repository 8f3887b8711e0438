//! `keepmon convert`: a compiled config of any format printed as native TOML, each table annotated with the line it came from.
//!
//! The converter reads only the validated [`Config`] model, so what it
//! prints is what keepmon runs — not a re-reading of the source text. The
//! contract (checked by a property test over generated configs and by the
//! corpus tests): compiling the output gives a model equal to the input's,
//! apart from the file it came from, the names shown for alert lines (mon.cf
//! names every `mail.alert` line alike; TOML actions need distinct names)
//! and whether a hostgroup was implicit. See [`same_model`].
//!
//! Paths are printed absolute (the model has already resolved them), so the
//! output means the same wherever it is saved. Every struct is destructured
//! field by field: a field added to the model without a TOML form here is a
//! compile error, not a silent loss.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use crate::config::model::*;
use crate::config::settings;

/// The TOML text, and what it could not carry over (printed as warnings).
pub struct Converted {
    pub text: String,
    /// Things the native format cannot say; each is also a comment in the text.
    pub losses: Vec<String>,
}

/// Print `config` as native TOML.
pub fn to_native(config: &Config) -> Converted {
    let mut doc = Doc::default();
    let Config {
        format,
        source,
        settings,
        mail,
        hostgroups,
        aliases,
        views,
        watches,
        virtual_servers,
        vrrp,
        vrrp_sync_groups,
        bfd,
        announce,
        bgp,
        stats_pages,
        file_inits,
    } = config;
    let from = match format {
        Format::Mon => "mon.cf",
        Format::Toml => "native TOML",
        Format::Keepalived => "keepalived.conf",
        Format::Haproxy => "haproxy.cfg",
    };
    let _ = writeln!(
        doc.out,
        "# Converted by `keepmon convert` from {} ({from}).\n\
         # Paths are absolute: the source's relative paths were resolved against its directory.",
        source.display()
    );
    let actions = ActionNames::collect(config);
    daemon_section(&mut doc, settings);
    mon_protocol_section(&mut doc, settings);
    if let Some(listen) = settings.metrics_listener {
        doc.table(&["metrics"], None);
        doc.kv("listen", text(listen));
    }
    web_section(&mut doc, &settings.web);
    lua_section(&mut doc, &settings.lua);
    mail_section(&mut doc, mail);
    // Implicit groups too: the native format has no implicit hostgroups.
    if !hostgroups.is_empty() {
        doc.table(&["hostgroups"], None);
        for group in hostgroups.values() {
            doc.comment_origin(&group.origin);
            doc.kv(&group.name, strings(&group.hosts));
        }
    }
    for (section, map) in [("aliases", aliases), ("views", views)] {
        if !map.is_empty() {
            doc.table(&[section], None);
            for (name, lines) in map {
                doc.kv(name, strings(lines));
            }
        }
    }
    actions.write(&mut doc);
    for watch in watches.values() {
        for service in watch.services.values() {
            service_section(&mut doc, service, &actions);
        }
        if watch.services.is_empty() {
            doc.note(format!(
                "watch {} has no services; an empty watch has no TOML form and is left out",
                watch.group
            ));
        }
    }
    for vs in virtual_servers.values() {
        virtual_server_section(&mut doc, vs);
    }
    for instance in vrrp.values() {
        vrrp_section(&mut doc, instance, &actions);
    }
    for group in vrrp_sync_groups.values() {
        let VrrpSyncGroup {
            name,
            members,
            notify,
            origin,
        } = group;
        doc.table(&["vrrp_sync_group", name], Some(origin));
        doc.kv("members", strings(members));
        if !notify.is_empty() {
            doc.kv("notify", actions.references(notify));
        }
    }
    for session in bfd.values() {
        bfd_section(&mut doc, session);
    }
    bgp_section(&mut doc, bgp);
    for a in announce.values() {
        let Announcement {
            name,
            prefix,
            prefix_len,
            when,
            origin,
        } = a;
        doc.table(&["announce", name], Some(origin));
        doc.kv("prefix", text(format!("{prefix}/{prefix_len}")));
        doc.kv("when", text(when));
    }
    for page in stats_pages {
        stats_page_section(&mut doc, page);
    }
    for FileInit {
        path: p,
        value,
        overwrite,
        origin,
    } in file_inits
    {
        doc.array_table(&["file_init"], origin);
        doc.kv("path", path(p));
        doc.kv("value", int(*value));
        if *overwrite {
            doc.kv("overwrite", boolean(true));
        }
    }
    Converted {
        text: doc.out,
        losses: doc.losses,
    }
}

/// Whether two models are the same config as far as `convert` promises:
/// equal apart from `format`, `source`, alert lines' display names and
/// hostgroups' `implicit` flag.
pub fn same_model(a: &Config, b: &Config) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(config: &Config) -> Config {
    let mut c = config.clone();
    c.format = Format::Toml;
    c.source = PathBuf::new();
    for group in c.hostgroups.values_mut() {
        group.implicit = false;
    }
    let clear = |lines: &mut Vec<AlertLine>| lines.iter_mut().for_each(|l| l.name.clear());
    for watch in c.watches.values_mut() {
        for service in watch.services.values_mut() {
            if let Some(line) = &mut service.redistribute {
                line.name.clear();
            }
            for p in &mut service.periods {
                clear(&mut p.alerts);
                clear(&mut p.upalerts);
                clear(&mut p.startupalerts);
                clear(&mut p.ackalerts);
                clear(&mut p.disablealerts);
            }
        }
    }
    for instance in c.vrrp.values_mut() {
        clear(&mut instance.notify);
    }
    for group in c.vrrp_sync_groups.values_mut() {
        clear(&mut group.notify);
    }
    c
}

/// The output being written: text plus the losses noted on the way.
#[derive(Default)]
struct Doc {
    out: String,
    losses: Vec<String>,
}

impl Doc {
    /// `[a.b.c]`, after a blank line and a `# from FILE:LINE` comment.
    fn table(&mut self, path: &[&str], origin: Option<&Origin>) {
        self.out.push('\n');
        if let Some(origin) = origin {
            self.comment_origin(origin);
        }
        let _ = writeln!(self.out, "[{}]", dotted(path));
    }

    /// `[[a.b.c]]`.
    fn array_table(&mut self, path: &[&str], origin: &Origin) {
        self.out.push('\n');
        self.comment_origin(origin);
        let _ = writeln!(self.out, "[[{}]]", dotted(path));
    }

    fn comment_origin(&mut self, origin: &Origin) {
        let location = &origin.0;
        if location.line > 0 {
            let _ = writeln!(
                self.out,
                "# from {}:{}",
                location.file.display(),
                location.line
            );
        }
    }

    /// `key = value`. A relative path cannot keep its meaning: the source
    /// format resolved it against the directory keepmon runs in, TOML
    /// resolves it against the TOML file's directory.
    fn kv(&mut self, key: &str, value: impl Into<Item>) {
        let value = value.into();
        let _ = writeln!(self.out, "{} = {value}", key_part(key));
        let mut relative = Vec::new();
        value.relative_paths(&mut relative);
        for p in relative {
            self.note(format!(
                "{key}: the relative path {:?} is relative to the directory keepmon runs in; \
                 in TOML it is relative to the TOML file's directory: write it absolute",
                p.display()
            ));
        }
    }

    /// `TABLE.KEY = VALUE` (a key under a name the table chooses, such
    /// as an ACL's).
    fn kv_in(&mut self, table: &str, key: &str, value: impl Into<Item>) {
        let value = value.into();
        let _ = writeln!(self.out, "{table}.{} = {value}", key_part(key));
    }

    fn opt(&mut self, key: &str, value: Option<impl Into<Item>>) {
        if let Some(value) = value {
            self.kv(key, value);
        }
    }

    /// A loss: said in the output as a comment and returned to the caller.
    fn note(&mut self, message: String) {
        let _ = writeln!(self.out, "# keepmon convert: {message}");
        self.losses.push(message);
    }
}

/// A TOML value whose inline tables keep the order they were built in
/// (`toml::Table` sorts its keys; `type` reads best first).
enum Item {
    Plain(Value),
    /// A path: printed as a string; a relative one is a loss (see [`Doc::kv`]).
    Path(PathBuf),
    Inline(Vec<(&'static str, Item)>),
    List(Vec<Item>),
}

impl Item {
    fn relative_paths<'a>(&'a self, found: &mut Vec<&'a Path>) {
        match self {
            Item::Plain(_) => {}
            Item::Path(p) => {
                if p.is_relative() {
                    found.push(p);
                }
            }
            Item::Inline(pairs) => pairs.iter().for_each(|(_, v)| v.relative_paths(found)),
            Item::List(items) => items.iter().for_each(|v| v.relative_paths(found)),
        }
    }
}

impl From<Value> for Item {
    fn from(value: Value) -> Item {
        Item::Plain(value)
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Plain(value) => write!(f, "{value}"),
            Item::Path(p) => write!(f, "{}", Value::String(p.to_string_lossy().into_owned())),
            Item::Inline(pairs) => {
                f.write_str("{ ")?;
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} = {value}", key_part(key))?;
                }
                f.write_str(" }")
            }
            Item::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn dotted(path: &[&str]) -> String {
    path.iter()
        .map(|p| key_part(p))
        .collect::<Vec<_>>()
        .join(".")
}

/// A bare key when TOML allows one, else a quoted key.
fn key_part(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

fn text(value: impl std::fmt::Display) -> Item {
    Item::Plain(Value::String(value.to_string()))
}

fn boolean(value: bool) -> Item {
    Item::Plain(Value::Boolean(value))
}

fn strings(values: &[String]) -> Item {
    Item::List(values.iter().map(text).collect())
}

fn path(p: &Path) -> Item {
    Item::Path(p.to_path_buf())
}

fn paths(ps: &[PathBuf]) -> Item {
    Item::List(ps.iter().map(|p| path(p)).collect())
}

fn int(n: impl Into<i64>) -> Item {
    Item::Plain(Value::Integer(n.into()))
}

fn int_u64(n: u64) -> Item {
    // Values this large only come from a bigger-than-i64 setting, which no
    // front end accepts; saturate rather than wrap.
    Item::Plain(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// A duration as the native format writes it: whole seconds, else
/// milliseconds, else seconds with nine decimals.
pub fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}.{:09}s", d.as_secs(), d.subsec_nanos())
    }
}

fn dur(d: Duration) -> Item {
    text(duration_text(d))
}

fn inline(pairs: Vec<(&'static str, Item)>) -> Item {
    Item::Inline(pairs)
}

/// `NAME:GID`: the user by name (its uid is looked up again when the TOML
/// is read) and the group by number, which is what the model knows.
fn user(run_as: &RunAs) -> Item {
    text(format!("{}:{}", run_as.user, run_as.gid))
}

fn policy(p: BuiltinPolicy) -> Item {
    text(match p {
        BuiltinPolicy::Prefer => "prefer",
        BuiltinPolicy::Fallback => "fallback",
        BuiltinPolicy::Never => "never",
    })
}

fn daemon_section(doc: &mut Doc, s: &Settings) {
    let d = settings::native_defaults(Path::new("/"));
    let Settings {
        director,
        basedir,
        cfbasedir,
        alertdir,
        mondir,
        luadir,
        statedir,
        logdir,
        pidfile,
        control_socket,
        auth: _,
        mon_listener: _,
        trap_listener: _,
        clientallow: _,
        cltimeout: _,
        metrics_listener: _,
        web: _,
        maxprocs,
        histlength,
        historicfile,
        historictime,
        randstart,
        dtlogging,
        dtlogfile,
        monerrfile,
        dep_recur_limit,
        syslog_facility,
        startupalerts_on_reset,
        remove_kernel_tables_on_stop,
        monremote,
        exclude_period,
        builtin_monitors,
        builtin_alerts,
        monitor_timeout,
        shutdown_grace,
        lua: _,
    } = s;
    doc.table(&["daemon"], None);
    doc.opt("director", director.as_ref().map(text));
    // Directories always: their defaults depend on where the file is.
    doc.kv("basedir", path(basedir));
    doc.kv("cfbasedir", path(cfbasedir));
    doc.kv("statedir", path(statedir));
    doc.kv("logdir", path(logdir));
    doc.kv("dtlogfile", path(dtlogfile));
    doc.kv("control_socket", path(control_socket));
    doc.kv("alertdir", paths(alertdir));
    doc.kv("mondir", paths(mondir));
    doc.kv("luadir", paths(luadir));
    doc.opt("pidfile", pidfile.as_deref().map(path));
    if *maxprocs != d.maxprocs {
        doc.kv("maxprocs", int(*maxprocs));
    }
    if *histlength != d.histlength {
        doc.kv("histlength", int_u64(*histlength as u64));
    }
    doc.opt("randstart", randstart.map(dur));
    if monitor_timeout != &d.monitor_timeout {
        doc.kv("monitor_timeout", dur(*monitor_timeout));
    }
    if shutdown_grace != &d.shutdown_grace {
        doc.kv("shutdown_grace", dur(*shutdown_grace));
    }
    if builtin_monitors != &d.builtin_monitors {
        doc.kv("builtin_monitors", policy(*builtin_monitors));
    }
    if builtin_alerts != &d.builtin_alerts {
        doc.kv("builtin_alerts", policy(*builtin_alerts));
    }
    doc.opt("exclude_period", exclude_period.as_ref().map(text));
    if *dtlogging {
        doc.kv("dtlogging", boolean(true));
    }
    doc.opt("historicfile", historicfile.as_deref().map(path));
    doc.opt("historictime", historictime.map(dur));
    if *dep_recur_limit != d.dep_recur_limit {
        doc.kv("dep_recur_limit", int(*dep_recur_limit));
    }
    if *startupalerts_on_reset {
        doc.kv("startupalerts_on_reset", boolean(true));
    }
    if syslog_facility != &d.syslog_facility {
        let named = crate::logging::facility_code(syslog_facility).is_some()
            && syslog_facility.parse::<u8>().is_err();
        if named {
            doc.kv("syslog_facility", text(syslog_facility));
        } else {
            doc.note(format!(
                "syslog_facility {syslog_facility:?} is not a syslog facility name; left out (daemon)"
            ));
        }
    }
    if *remove_kernel_tables_on_stop {
        doc.kv("remove_kernel_tables_on_stop", boolean(true));
    }
    doc.opt("monerrfile", monerrfile.as_deref().map(path));
    doc.opt("monremote", monremote.as_ref().map(text));
}

fn mon_protocol_section(doc: &mut Doc, s: &Settings) {
    let d = settings::native_defaults(Path::new("/"));
    let AuthSettings {
        authfile,
        authtype,
        userfile,
        pamservice,
    } = &s.auth;
    doc.table(&["mon_protocol"], None);
    match s.mon_listener {
        Some(listen) => doc.kv("listen", text(listen)),
        None => doc.kv("enabled", boolean(false)),
    }
    doc.opt("trap_listen", s.trap_listener.map(text));
    if !s.clientallow.is_empty() {
        doc.kv("clientallow", strings(&s.clientallow));
    }
    if s.cltimeout != d.cltimeout {
        doc.kv("cltimeout", dur(s.cltimeout));
    }
    doc.kv("authfile", path(authfile));
    doc.kv("userfile", path(userfile));
    let names: Vec<Item> = authtype
        .iter()
        .map(|t| {
            text(match t {
                AuthType::Getpwnam => "getpwnam",
                AuthType::Userfile => "userfile",
                AuthType::Pam => "pam",
                AuthType::Trustlocal => "trustlocal",
                AuthType::Shadow => "shadow",
            })
        })
        .collect();
    doc.kv("authtype", Item::List(names));
    if pamservice != &d.auth.pamservice {
        doc.kv("pamservice", text(pamservice));
    }
}

fn web_section(doc: &mut Doc, web: &WebSettings) {
    let WebSettings {
        listen,
        tokens_file,
    } = web;
    if listen.is_none() && tokens_file.is_none() {
        return;
    }
    doc.table(&["web"], None);
    doc.opt("listen", listen.map(text));
    doc.opt("tokens_file", tokens_file.as_deref().map(path));
}

fn stats_page_section(doc: &mut Doc, page: &StatsPage) {
    let StatsPage {
        listen,
        uri,
        realm,
        users,
        refresh,
        hide_version,
        admin,
        origin,
    } = page;
    doc.array_table(&["stats_page"], origin);
    match listen {
        StatsListen::Address(addr) => doc.kv("listen", text(addr)),
        StatsListen::VirtualServer(name) => doc.kv("virtual_server", text(name)),
    }
    if uri != StatsPage::DEFAULT_URI {
        doc.kv("uri", text(uri));
    }
    if realm != StatsPage::DEFAULT_REALM {
        doc.kv("realm", text(realm));
    }
    if !users.is_empty() {
        let lines: Vec<String> = users
            .iter()
            .map(|StatsUser { user, password }| format!("{user}:{password}"))
            .collect();
        doc.kv("auth", strings(&lines));
    }
    doc.opt("refresh", refresh.map(dur));
    if *hide_version {
        doc.kv("hide_version", boolean(true));
    }
    if *admin {
        doc.kv("admin", boolean(true));
    }
}

fn lua_section(doc: &mut Doc, lua: &LuaLimits) {
    let d = settings::native_defaults(Path::new("/")).lua;
    if lua == &d {
        return;
    }
    let LuaLimits {
        timeout,
        instructions,
        memory_bytes,
        files_dir,
        allow_networks,
    } = lua;
    doc.table(&["lua"], None);
    doc.kv("timeout", dur(*timeout));
    doc.kv("instructions", int_u64(*instructions));
    doc.kv("memory", int_u64(*memory_bytes as u64));
    doc.opt("files_dir", files_dir.as_deref().map(path));
    if !allow_networks.is_empty() {
        let nets: Vec<String> = allow_networks.iter().map(ToString::to_string).collect();
        doc.kv("allow_networks", strings(&nets));
    }
}

fn mail_section(doc: &mut Doc, mail: &MailSettings) {
    let MailSettings {
        smtp,
        from,
        sendmail,
        digest_window,
        max_age,
        retry_initial,
        retry_max,
    } = mail;
    doc.table(&["mail"], None);
    doc.opt("from", from.as_ref().map(text));
    doc.opt("sendmail", sendmail.as_deref().map(path));
    doc.opt("digest_window", digest_window.map(dur));
    doc.kv("max_age", dur(*max_age));
    doc.kv("retry_initial", dur(*retry_initial));
    doc.kv("retry_max", dur(*retry_max));
    if let Some(smtp) = smtp {
        let SmtpSettings {
            host,
            port,
            tls,
            username,
            password,
            timeout,
            helo_name,
            ca_file,
        } = smtp;
        doc.table(&["mail", "smtp"], None);
        doc.kv("host", text(host));
        doc.kv("port", int(*port));
        doc.kv(
            "tls",
            text(match tls {
                SmtpTls::None => "none",
                SmtpTls::StartTls => "starttls",
                SmtpTls::Implicit => "implicit",
            }),
        );
        doc.opt("username", username.as_ref().map(text));
        doc.opt("password", password.as_ref().map(text));
        doc.kv("timeout", dur(*timeout));
        doc.opt("helo_name", helo_name.as_ref().map(text));
        doc.opt("ca_file", ca_file.as_deref().map(path));
    }
}

/// Every distinct action of the config under a distinct TOML name: the
/// name the source used when it is unique, else that name with `-2`, `-3`...
struct ActionNames {
    named: Vec<(String, Action)>,
}

impl ActionNames {
    fn collect(config: &Config) -> ActionNames {
        let mut lines: Vec<&AlertLine> = Vec::new();
        for (_, service) in config.services() {
            lines.extend(&service.redistribute);
            for p in &service.periods {
                for list in [
                    &p.alerts,
                    &p.upalerts,
                    &p.startupalerts,
                    &p.ackalerts,
                    &p.disablealerts,
                ] {
                    lines.extend(list);
                }
            }
        }
        for instance in config.vrrp.values() {
            lines.extend(&instance.notify);
        }
        for group in config.vrrp_sync_groups.values() {
            lines.extend(&group.notify);
        }
        let mut named: Vec<(String, Action)> = Vec::new();
        for line in lines {
            if named.iter().any(|(_, a)| a == &line.action) {
                continue;
            }
            let base = if line.name.trim().is_empty() {
                line.action.kind().to_string()
            } else {
                line.name.clone()
            };
            let mut name = base.clone();
            let mut n = 1;
            while named.iter().any(|(taken, _)| taken == &name) {
                n += 1;
                name = format!("{base}-{n}");
            }
            named.push((name, line.action.clone()));
        }
        ActionNames { named }
    }

    fn name_of(&self, action: &Action) -> &str {
        self.named
            .iter()
            .find(|(_, a)| a == action)
            .map_or("", |(name, _)| name.as_str())
    }

    /// A reference to the action of `line`, with its exit filter.
    fn reference(&self, line: &AlertLine) -> Item {
        let name = text(self.name_of(&line.action));
        match line.exit {
            None => name,
            Some(range) => inline(vec![("action", name), ("exit", text(range))]),
        }
    }

    fn references(&self, lines: &[AlertLine]) -> Item {
        Item::List(lines.iter().map(|l| self.reference(l)).collect())
    }

    fn write(&self, doc: &mut Doc) {
        for (name, action) in &self.named {
            doc.table(&["actions", name], None);
            match action {
                Action::Exec { path: p, args } => {
                    doc.kv("type", text("exec"));
                    doc.kv("command", path(p));
                    if !args.is_empty() {
                        doc.kv("args", strings(args));
                    }
                }
                Action::File { path: p } => {
                    doc.kv("type", text("file"));
                    doc.kv("path", path(p));
                }
                Action::Mail(MailAction { to, subject, from }) => {
                    doc.kv("type", text("mail"));
                    doc.kv("to", strings(to));
                    doc.opt("subject", subject.as_ref().map(text));
                    doc.opt("from", from.as_ref().map(text));
                }
                Action::Lua { script, args } => {
                    doc.kv("type", text("lua"));
                    doc.kv("script", text(script));
                    if !args.is_empty() {
                        doc.kv("args", strings(args));
                    }
                }
                Action::Lb(LbEdit {
                    protocol,
                    virtual_addr,
                    real_addr,
                    real_port,
                    weight,
                    forward,
                }) => {
                    doc.kv("type", text("lb"));
                    doc.kv("virtual", text(virtual_addr));
                    let real = match real_port {
                        Some(port) => std::net::SocketAddr::new(*real_addr, *port).to_string(),
                        None => real_addr.to_string(),
                    };
                    doc.kv("real", text(real));
                    doc.kv("protocol", text(protocol));
                    doc.opt("weight", weight.map(int));
                    doc.opt("forward", forward.map(text));
                }
                Action::Alertmanager(AlertmanagerAction {
                    url,
                    severity,
                    labels,
                    resend,
                }) => {
                    doc.kv("type", text("alertmanager"));
                    doc.kv("url", text(url));
                    doc.opt("severity", severity.as_ref().map(text));
                    if !labels.is_empty() {
                        let table: toml::Table = labels
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect();
                        doc.kv("labels", Value::Table(table));
                    }
                    doc.kv("resend", dur(*resend));
                }
                Action::Notify(VrrpNotify {
                    path: p,
                    args,
                    on,
                    run_as,
                }) => {
                    doc.kv("type", text("notify"));
                    doc.kv("command", path(p));
                    if !args.is_empty() {
                        doc.kv("args", strings(args));
                    }
                    doc.kv("on", text(notify_on_name(*on)));
                    doc.opt("user", run_as.as_ref().map(user));
                }
            }
        }
    }
}

/// The native word for a notify filter.
pub fn notify_on_name(on: NotifyOn) -> &'static str {
    match on {
        NotifyOn::Any => "any",
        NotifyOn::Master => "master",
        NotifyOn::Backup => "backup",
        NotifyOn::Fault => "fault",
        NotifyOn::Stop => "stop",
    }
}

/// HTTP status ranges as the native format writes them: `200` or `"300-399"`.
fn status_codes(status: &[(u16, u16)]) -> Item {
    Item::List(
        status
            .iter()
            .map(|(low, high)| {
                if low == high {
                    int(*low)
                } else {
                    text(format!("{low}-{high}"))
                }
            })
            .collect(),
    )
}

fn monitor_value(monitor: &Monitor) -> Item {
    match monitor {
        Monitor::Tcp(TcpCheck {
            port,
            send,
            expect,
            timeout,
        }) => {
            let mut pairs = vec![("type", text("tcp")), ("port", int(*port))];
            if let Some(send) = send {
                pairs.push(("send", text(send)));
            }
            if let Some(expect) = expect {
                pairs.push(("expect", text(expect)));
            }
            pairs.push(("timeout", dur(*timeout)));
            inline(pairs)
        }
        Monitor::Http(HttpCheck {
            tls,
            port,
            method,
            path,
            host_header,
            status,
            body,
            timeout,
            insecure,
            digest,
            more_urls,
        }) => {
            let mut pairs = vec![
                ("type", text(if *tls { "https" } else { "http" })),
                ("port", int(*port)),
                ("method", text(method)),
                ("path", text(path)),
            ];
            if let Some(host) = host_header {
                pairs.push(("host", text(host)));
            }
            pairs.push(("status", status_codes(status)));
            if let Some(body) = body {
                pairs.push(("body", text(body)));
            }
            pairs.push(("timeout", dur(*timeout)));
            if *insecure && *tls {
                pairs.push(("insecure", boolean(true)));
            }
            if let Some(digest) = digest {
                pairs.push(("digest", text(digest)));
            }
            if !more_urls.is_empty() {
                let urls = more_urls
                    .iter()
                    .map(
                        |HttpUrl {
                             path,
                             host_header,
                             status,
                             body,
                             digest,
                         }| {
                            let mut url = vec![("path", text(path))];
                            if let Some(host) = host_header {
                                url.push(("host", text(host)));
                            }
                            url.push(("status", status_codes(status)));
                            if let Some(body) = body {
                                url.push(("body", text(body)));
                            }
                            if let Some(digest) = digest {
                                url.push(("digest", text(digest)));
                            }
                            inline(url)
                        },
                    )
                    .collect();
                pairs.push(("more_urls", Item::List(urls)));
            }
            inline(pairs)
        }
        Monitor::Ping(PingCheck { count, timeout }) => inline(vec![
            ("type", text("ping")),
            ("count", int(*count)),
            ("timeout", dur(*timeout)),
        ]),
        Monitor::Smtp(SmtpCheck {
            port,
            helo_name,
            timeout,
        }) => inline(vec![
            ("type", text("smtp")),
            ("port", int(*port)),
            ("helo_name", text(helo_name)),
            ("timeout", dur(*timeout)),
        ]),
        Monitor::Udp(UdpCheck {
            port,
            payload,
            require_reply,
            reply,
            min_reply_length,
            max_reply_length,
            timeout,
        }) => {
            let mut pairs = vec![("type", text("udp")), ("port", int(*port))];
            if let Some(payload) = payload {
                let octets = HexPattern {
                    bytes: payload.clone(),
                    mask: vec![0; payload.len()],
                };
                pairs.push(("payload", text(octets.to_hex())));
            }
            match reply {
                Some(pattern) => pairs.push(("require_reply", text(pattern.to_hex()))),
                None => pairs.push(("require_reply", boolean(*require_reply))),
            }
            pairs.push(("min_reply_length", int(*min_reply_length)));
            pairs.push(("max_reply_length", int(*max_reply_length)));
            pairs.push(("timeout", dur(*timeout)));
            inline(pairs)
        }
        Monitor::Dns(DnsCheck {
            port,
            query_type,
            name,
            timeout,
        }) => inline(vec![
            ("type", text("dns")),
            ("port", int(*port)),
            ("query_type", text(query_type)),
            ("name", text(name)),
            ("timeout", dur(*timeout)),
        ]),
        Monitor::Lua { script, args } => {
            let mut pairs = vec![("type", text("lua")), ("script", text(script))];
            if !args.is_empty() {
                pairs.push(("args", strings(args)));
            }
            inline(pairs)
        }
        Monitor::Exec {
            name,
            args,
            append_hosts,
            path: _,
        } => {
            let mut pairs = vec![("type", text("exec")), ("command", text(name))];
            if !args.is_empty() {
                pairs.push(("args", strings(args)));
            }
            if !append_hosts {
                pairs.push(("hosts", boolean(false)));
            }
            inline(pairs)
        }
    }
}

fn service_section(doc: &mut Doc, service: &Service, actions: &ActionNames) {
    let Service {
        group,
        name,
        description,
        interval,
        failure_interval,
        schedule,
        randskew,
        monitor,
        run_as,
        timeout,
        allow_empty_group,
        exclude_hosts,
        exclude_period,
        depend,
        alertdepend,
        monitordepend,
        hostdepend,
        dep_behavior,
        dep_memory,
        redistribute,
        unack_summary,
        exit_weight,
        traptimeout,
        trapduration,
        env,
        rise,
        fall,
        periods,
        origin,
    } = service;
    doc.table(&["watch", group, name], Some(origin));
    doc.opt("description", description.as_ref().map(text));
    doc.opt("interval", interval.map(dur));
    doc.opt("failure_interval", failure_interval.map(dur));
    doc.opt("schedule", schedule.as_ref().map(text));
    doc.opt("randskew", randskew.map(dur));
    doc.opt("timeout", timeout.map(dur));
    doc.opt("user", run_as.as_ref().map(user));
    if *allow_empty_group {
        doc.kv("allow_empty_group", boolean(true));
    }
    if !exclude_hosts.is_empty() {
        doc.kv("exclude_hosts", strings(exclude_hosts));
    }
    doc.opt("exclude_period", exclude_period.as_ref().map(text));
    doc.opt("depend", depend.as_ref().map(text));
    doc.opt("alertdepend", alertdepend.as_ref().map(text));
    doc.opt("monitordepend", monitordepend.as_ref().map(text));
    if !hostdepend.is_empty() {
        let refs: Vec<String> = hostdepend.iter().map(ToString::to_string).collect();
        doc.kv("hostdepend", strings(&refs));
    }
    match dep_behavior {
        DepBehavior::Alert => {}
        DepBehavior::Monitor => doc.kv("dep_behavior", text("monitor")),
        DepBehavior::HostMonitor => doc.kv("dep_behavior", text("host")),
    }
    doc.opt("dep_memory", dep_memory.map(dur));
    doc.opt(
        "redistribute",
        redistribute.as_ref().map(|l| actions.reference(l)),
    );
    if *unack_summary {
        doc.kv("unack_summary", boolean(true));
    }
    if *exit_weight {
        doc.kv("exit_weight", boolean(true));
    }
    doc.opt("traptimeout", traptimeout.map(dur));
    doc.opt("trapduration", trapduration.map(dur));
    if !env.is_empty() {
        let table: toml::Table = env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        doc.kv("env", Value::Table(table));
    }
    if *rise != 1 {
        doc.kv("rise", int(*rise));
    }
    if *fall != 1 {
        doc.kv("fall", int(*fall));
    }
    if let Some(monitor) = monitor {
        doc.kv("monitor", monitor_value(monitor));
    }
    // One unlabelled always-period with something in it is what alert keys
    // written directly on the service compile to; an empty one needs its
    // own (empty) [[period]] table to exist.
    let direct = matches!(periods.as_slice(), [only] if only.key.is_empty()
        && only.spec == crate::period::Period::always()
        && has_keys(only));
    if direct {
        period_keys(doc, &periods[0], actions);
        return;
    }
    for block in periods {
        doc.array_table(&["watch", group, name, "period"], &block.origin);
        let spec = block.spec.to_string();
        let always = block.spec == crate::period::Period::always();
        if !always {
            doc.kv("spec", text(&spec));
        }
        if block.key != spec.trim() || (always && !block.key.is_empty()) {
            doc.kv("label", text(&block.key));
        }
        period_keys(doc, block, actions);
    }
}

fn has_keys(block: &PeriodBlock) -> bool {
    let mut probe = Doc::default();
    period_keys(&mut probe, block, &ActionNames { named: Vec::new() });
    !probe.out.is_empty()
}

fn period_keys(doc: &mut Doc, block: &PeriodBlock, actions: &ActionNames) {
    let PeriodBlock {
        key: _,
        spec: _,
        alerts,
        upalerts,
        startupalerts,
        ackalerts,
        disablealerts,
        alertevery,
        alertafter,
        numalerts,
        no_comp_alerts,
        upalertafter,
        alerts_dont_count,
        alertexitrange,
        origin: _,
    } = block;
    for (key, lines) in [
        ("alert", alerts),
        ("upalert", upalerts),
        ("startupalert", startupalerts),
        ("ackalert", ackalerts),
        ("disablealert", disablealerts),
    ] {
        if !lines.is_empty() {
            doc.kv(key, actions.references(lines));
        }
    }
    if let Some(AlertEvery { every, mode }) = alertevery {
        let value = match mode {
            AlertEveryMode::Summary => dur(*every),
            other => inline(vec![
                ("every", dur(*every)),
                (
                    "mode",
                    text(match other {
                        AlertEveryMode::ObserveDetail => "observe_detail",
                        AlertEveryMode::IgnoreSummary => "ignore_summary",
                        _ => "strict",
                    }),
                ),
            ]),
        };
        doc.kv("alertevery", value);
    }
    match alertafter {
        None => {}
        Some(AlertAfter::Consecutive(n)) => doc.kv("alertafter", int(*n)),
        Some(AlertAfter::Duration(d)) => doc.kv("alertafter", dur(*d)),
        Some(AlertAfter::Window { count, window }) => doc.kv(
            "alertafter",
            inline(vec![("count", int(*count)), ("within", dur(*window))]),
        ),
    }
    doc.opt("numalerts", numalerts.map(int));
    if *no_comp_alerts {
        doc.kv("no_comp_alerts", boolean(true));
    }
    doc.opt("upalertafter", upalertafter.map(dur));
    if *alerts_dont_count {
        doc.kv("alerts_dont_count", boolean(true));
    }
    doc.opt("alertexitrange", alertexitrange.map(text));
}

fn virtual_server_section(doc: &mut Doc, vs: &VirtualServer) {
    let VirtualServer {
        name,
        listen,
        fwmark,
        protocol,
        scheduler,
        dataplane,
        persistence,
        persistence_netmask,
        sorry_server,
        quorum,
        hysteresis,
        health,
        retries,
        connect_timeout,
        real_servers,
        proxy,
        origin,
    } = vs;
    doc.table(&["virtual_servers", name], Some(origin));
    doc.opt("listen", listen.map(text));
    if let Some(Fwmark { mark, ipv6 }) = fwmark {
        if *ipv6 {
            doc.kv("fwmark", text(format!("{mark} inet6")));
        } else {
            doc.kv("fwmark", int(mark.get()));
        }
    }
    doc.kv("protocol", text(protocol));
    doc.kv("scheduler", text(scheduler));
    if let LbScheduler::Maglev(MhFlags { port, fallback }) = scheduler {
        let mut flags = Vec::new();
        if *port {
            flags.push("mh-port".to_string());
        }
        if *fallback {
            flags.push("mh-fallback".to_string());
        }
        if !flags.is_empty() {
            doc.kv("scheduler_flags", strings(&flags));
        }
    }
    if let LbScheduler::Haproxy(
        hash @ HaproxyHash {
            consistent,
            function,
            avalanche,
        },
    ) = scheduler
    {
        let default = if *consistent {
            HaproxyHash::CONSISTENT
        } else {
            HaproxyHash::default()
        };
        let mut flags = Vec::new();
        if hash != &default {
            flags.push(function.to_string());
        }
        if *avalanche {
            flags.push("avalanche".to_string());
        }
        if !flags.is_empty() {
            doc.kv("scheduler_flags", strings(&flags));
        }
    }
    doc.kv(
        "dataplane",
        text(match dataplane {
            DataPlane::Proxy => "proxy",
            DataPlane::Ipvs => "ipvs",
            DataPlane::Nftables => "nftables",
        }),
    );
    doc.opt("persistence", persistence.map(dur));
    doc.opt("persistence_netmask", persistence_netmask.map(int));
    doc.opt("sorry_server", sorry_server.map(text));
    doc.opt("quorum", quorum.map(int));
    if *hysteresis != 0 {
        doc.kv("hysteresis", int(*hysteresis));
    }
    doc.opt("health", health.as_ref().map(text));
    doc.kv("retries", int(*retries));
    doc.kv("connect_timeout", dur(*connect_timeout));
    proxy_keys(doc, proxy);
    let servers = real_servers
        .iter()
        .map(|rs| {
            let RealServer {
                addr,
                name,
                host,
                weight,
                forward,
                admin,
                inhibit_on_failure,
                thresholds,
                backup,
                maxconn,
                maxqueue,
                slowstart,
                bfd,
                checks,
                track_files,
            } = rs;
            let mut pairs = vec![("addr", text(addr))];
            if let Some(name) = name {
                pairs.push(("name", text(name)));
            }
            if host != &addr.ip().to_string() {
                pairs.push(("host", text(host)));
            }
            pairs.push(("weight", int(*weight)));
            if *forward != Forward::Nat {
                pairs.push(("forward", text(forward)));
            }
            match admin {
                AdminState::Ready => {}
                AdminState::Drain => pairs.push(("admin", text("drain"))),
                AdminState::Maint => pairs.push(("admin", text("maint"))),
            }
            if *inhibit_on_failure {
                pairs.push(("inhibit_on_failure", boolean(true)));
            }
            if thresholds.upper != 0 {
                pairs.push(("upper_threshold", int(thresholds.upper)));
            }
            if thresholds.lower != 0 {
                pairs.push(("lower_threshold", int(thresholds.lower)));
            }
            if let Some(cookie) = proxy.http.server_cookies.get(addr) {
                pairs.push(("cookie", text(cookie)));
            }
            if *backup {
                pairs.push(("backup", boolean(true)));
            }
            if let Some(n) = maxconn {
                pairs.push(("maxconn", int(*n)));
            }
            if let Some(n) = maxqueue {
                pairs.push(("maxqueue", int(*n)));
            }
            if let Some(d) = slowstart {
                pairs.push(("slowstart", dur(*d)));
            }
            if let Some(session) = bfd {
                pairs.push(("bfd", text(session)));
            }
            if !checks.is_empty() {
                let checks = checks
                    .iter()
                    .map(
                        |RealCheck {
                             health,
                             host: check_host,
                         }| {
                            let mut check = vec![("health", text(health))];
                            if check_host != host {
                                check.push(("host", text(check_host)));
                            }
                            inline(check)
                        },
                    )
                    .collect();
                pairs.push(("checks", Item::List(checks)));
            }
            if !track_files.is_empty() {
                pairs.push(("track_file", track_file_list(track_files)));
            }
            inline(pairs)
        })
        .collect();
    doc.kv("real_servers", Item::List(servers));
}

/// `track_file = [{ path, weight, reverse }]` (instances and real servers).
fn track_file_list(track_files: &[TrackFile]) -> Item {
    let files = track_files
        .iter()
        .map(
            |TrackFile {
                 path: p,
                 weight,
                 reverse,
             }| {
                let mut pairs = vec![("path", path(p)), ("weight", int(*weight))];
                if *reverse {
                    pairs.push(("reverse", boolean(true)));
                }
                inline(pairs)
            },
        )
        .collect();
    Item::List(files)
}

/// The proxy's keys of a virtual server (HAProxy's words).
fn proxy_keys(doc: &mut Doc, proxy: &ProxyOptions) {
    let ProxyOptions {
        mode,
        maxconn,
        timeout_client,
        timeout_server,
        timeout_queue,
        allbackups,
        error_files,
        access_log,
        send_proxy,
        accept_proxy,
        backend,
        http,
        routes,
    } = proxy;
    route_keys(doc, routes);
    let HttpOptions {
        timeout_http_request,
        timeout_http_keep_alive,
        forwardfor,
        forwarded_proto,
        cookie,
        server_cookies: _, // on the real servers
        hash,
        tls,
        server_tls,
    } = http;
    let defaults = HttpOptions::default();
    if *mode == ProxyMode::Http {
        doc.kv("mode", text("http"));
    }
    doc.opt("maxconn", maxconn.map(int));
    doc.opt("backend", backend.as_ref().map(text));
    match send_proxy {
        None => {}
        Some(ProxyProtocol::V1) => doc.kv("send_proxy", text("v1")),
        Some(ProxyProtocol::V2) => doc.kv("send_proxy", text("v2")),
    }
    if *accept_proxy {
        doc.kv("accept_proxy", boolean(true));
    }
    if *allbackups {
        doc.kv("allbackups", boolean(true));
    }
    if !error_files.is_empty() {
        let mut files = Vec::new();
        for (status, file) in error_files {
            match status_key(*status) {
                Some(key) => files.push((key, path(&file.path))),
                None => doc.note(format!(
                    "error_files: status {status} ({}) cannot have an error file in TOML",
                    file.path.display()
                )),
            }
        }
        doc.kv("error_files", inline(files));
    }
    if let Some(AccessLog { to, dontlognull }) = access_log {
        let mut pairs = Vec::new();
        if let AccessLogTarget::File(file) = to {
            pairs.push(("file", path(file)));
        }
        if *dontlognull {
            pairs.push(("dontlognull", boolean(true)));
        }
        doc.kv("access_log", inline(pairs));
    }
    let mut timeouts = Vec::new();
    if let Some(d) = timeout_client {
        timeouts.push(("client", dur(*d)));
    }
    if let Some(d) = timeout_server {
        timeouts.push(("server", dur(*d)));
    }
    if let Some(d) = timeout_queue {
        timeouts.push(("queue", dur(*d)));
    }
    if *timeout_http_request != defaults.timeout_http_request {
        timeouts.push(("http_request", dur(*timeout_http_request)));
    }
    if *timeout_http_keep_alive != defaults.timeout_http_keep_alive {
        timeouts.push(("http_keep_alive", dur(*timeout_http_keep_alive)));
    }
    if !timeouts.is_empty() {
        doc.kv("timeout", inline(timeouts));
    }
    if let Some(ForwardFor { header, except }) = forwardfor {
        let mut pairs = vec![("header", text(header))];
        if let Some(except) = except {
            pairs.push(("except", text(except)));
        }
        doc.kv("forwardfor", inline(pairs));
    }
    if *forwarded_proto {
        doc.kv("forwarded_proto", boolean(true));
    }
    if let Some(CookiePersistence { name, mode }) = cookie {
        let mut pairs = vec![("name", text(name))];
        match mode {
            CookieMode::Insert {
                indirect,
                nocache,
                httponly,
                secure,
            } => {
                pairs.push(("mode", text("insert")));
                for (key, on) in [
                    ("indirect", indirect),
                    ("nocache", nocache),
                    ("httponly", httponly),
                    ("secure", secure),
                ] {
                    if *on {
                        pairs.push((key, boolean(true)));
                    }
                }
            }
            CookieMode::Prefix => pairs.push(("mode", text("prefix"))),
            CookieMode::Rewrite => pairs.push(("mode", text("rewrite"))),
        }
        doc.kv("cookie", inline(pairs));
    }
    match hash {
        None => {}
        Some(HashOn::Uri) => doc.kv("hash", text("uri")),
        Some(HashOn::Header(name)) => doc.kv("hash", text(format!("header:{name}"))),
        Some(HashOn::UrlParam(name)) => doc.kv("hash", text(format!("url_param:{name}"))),
    }
    if !tls.is_empty() {
        let certs = tls
            .iter()
            .map(|TlsCert { cert, key }| inline(vec![("cert", path(cert)), ("key", path(key))]))
            .collect();
        doc.kv("tls", Item::List(certs));
    }
    if let Some(ServerTls {
        ca_file,
        sni,
        verify_host,
    }) = server_tls
    {
        let mut pairs = match ca_file {
            None => vec![("verify", text("none"))],
            Some(file) => vec![("ca_file", path(file))],
        };
        if let Some(sni) = sni {
            pairs.push(("sni", text(sni)));
        }
        if let Some(name) = verify_host {
            pairs.push(("verify_host", text(name)));
        }
        doc.kv("server_tls", inline(pairs));
    }
}

/// `acls.NAME = [...]` for the named ACLs the routes use, then `routes`.
fn route_keys(doc: &mut Doc, routes: &[Route]) {
    let mut named: BTreeMap<&str, &Acl> = BTreeMap::new();
    for route in routes {
        for all in &route.when.any {
            for used in all {
                if let Some(name) = &used.acl.name {
                    named.insert(name, &used.acl);
                }
            }
        }
    }
    for (name, acl) in named {
        let tests: Vec<String> = acl
            .tests
            .iter()
            .map(crate::config::acl::test_text)
            .collect();
        doc.kv_in("acls", name, strings(&tests));
    }
    if routes.is_empty() {
        return;
    }
    let list = routes
        .iter()
        .map(|Route { to, when }| {
            let mut pairs = vec![("to", text(to))];
            if !when.any.is_empty() {
                let key = if when.unless { "unless" } else { "if" };
                pairs.push((key, text(crate::config::acl::condition_text(when))));
            }
            inline(pairs)
        })
        .collect();
    doc.kv("routes", Item::List(list));
}

/// An `error_files` key: the statuses HAProxy's `errorfile` takes (the
/// only ones the model can hold).
fn status_key(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        407 => "407",
        408 => "408",
        410 => "410",
        413 => "413",
        425 => "425",
        429 => "429",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => return None,
    })
}

fn vrrp_section(doc: &mut Doc, instance: &VrrpInstance, actions: &ActionNames) {
    let VrrpInstance {
        name,
        interface,
        vrid,
        priority,
        advert_int,
        version,
        initial_state,
        nopreempt,
        preempt_delay,
        auth_pass,
        virtual_addresses,
        excluded_addresses,
        unicast_src,
        unicast_peers,
        garp,
        track,
        track_interfaces,
        track_files,
        track_processes,
        track_bfds,
        v3_checksum_as_v2,
        notify,
        origin,
    } = instance;
    doc.table(&["vrrp", name], Some(origin));
    doc.kv("interface", text(interface));
    doc.kv("virtual_router_id", int(vrid.get()));
    doc.kv("priority", int(*priority));
    doc.kv(
        "version",
        int(match version {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }),
    );
    doc.kv("advert_int", dur(*advert_int));
    doc.kv(
        "state",
        text(match initial_state {
            VrrpInitialState::Master => "MASTER",
            VrrpInitialState::Backup => "BACKUP",
        }),
    );
    if *nopreempt {
        doc.kv("nopreempt", boolean(true));
    }
    doc.opt("preempt_delay", preempt_delay.map(dur));
    doc.opt("auth_pass", auth_pass.as_ref().map(text));
    let addresses = |list: &[VirtualAddress]| -> Vec<String> {
        list.iter()
            .map(|VirtualAddress { addr, prefix, dev }| match dev {
                Some(dev) => format!("{addr}/{prefix} dev {dev}"),
                None => format!("{addr}/{prefix}"),
            })
            .collect()
    };
    doc.kv("virtual_ipaddress", strings(&addresses(virtual_addresses)));
    if !excluded_addresses.is_empty() {
        doc.kv(
            "virtual_ipaddress_excluded",
            strings(&addresses(excluded_addresses)),
        );
    }
    doc.opt("unicast_src_ip", unicast_src.map(text));
    if !unicast_peers.is_empty() {
        let peers: Vec<String> = unicast_peers.iter().map(ToString::to_string).collect();
        doc.kv("unicast_peer", strings(&peers));
    }
    let GarpSettings {
        master_delay,
        master_repeat,
        master_refresh,
    } = garp;
    doc.kv("garp_master_delay", dur(*master_delay));
    doc.kv("garp_master_repeat", int(*master_repeat));
    doc.opt("garp_master_refresh", master_refresh.map(dur));
    if !track.is_empty() {
        let entries = track
            .iter()
            .map(
                |VrrpTrack {
                     target,
                     weight,
                     reverse,
                 }| {
                    let target = match target {
                        TrackTarget::Service(r) => ("service", text(r)),
                        TrackTarget::Quorum(vs) => ("quorum", text(vs)),
                    };
                    let mut pairs = vec![target, ("weight", int(*weight))];
                    if *reverse {
                        pairs.push(("reverse", boolean(true)));
                    }
                    inline(pairs)
                },
            )
            .collect();
        doc.kv("track", Item::List(entries));
    }
    if !track_interfaces.is_empty() {
        doc.kv("track_interface", strings(track_interfaces));
    }
    if !track_files.is_empty() {
        doc.kv("track_file", track_file_list(track_files));
    }
    if !track_processes.is_empty() {
        let entries = track_processes
            .iter()
            .map(
                |TrackProcess {
                     name,
                     process,
                     args,
                     param_match,
                     full_command,
                     quorum,
                     quorum_max,
                     weight,
                     reverse,
                     fork_delay,
                     terminate_delay,
                 }| {
                    let mut pairs = vec![("name", text(name)), ("process", text(process))];
                    if !args.is_empty() {
                        pairs.push(("args", strings(args)));
                    }
                    pairs.push(("param_match", text(param_match.name())));
                    pairs.push(("full_command", boolean(*full_command)));
                    pairs.push(("quorum", int(*quorum)));
                    pairs.push(("quorum_max", int(*quorum_max)));
                    pairs.push(("weight", int(*weight)));
                    if *reverse {
                        pairs.push(("reverse", boolean(true)));
                    }
                    if let Some(d) = fork_delay {
                        pairs.push(("fork_delay", dur(*d)));
                    }
                    if let Some(d) = terminate_delay {
                        pairs.push(("terminate_delay", dur(*d)));
                    }
                    inline(pairs)
                },
            )
            .collect();
        doc.kv("track_process", Item::List(entries));
    }
    if !track_bfds.is_empty() {
        let entries = track_bfds
            .iter()
            .map(
                |TrackBfd {
                     name,
                     weight,
                     reverse,
                 }| {
                    let mut pairs = vec![("name", text(name)), ("weight", int(*weight))];
                    if *reverse {
                        pairs.push(("reverse", boolean(true)));
                    }
                    inline(pairs)
                },
            )
            .collect();
        doc.kv("track_bfd", Item::List(entries));
    }
    if *v3_checksum_as_v2 {
        doc.kv("v3_checksum_as_v2", boolean(true));
    }
    if !notify.is_empty() {
        doc.kv("notify", actions.references(notify));
    }
}

fn bfd_section(doc: &mut Doc, session: &BfdSession) {
    let BfdSession {
        name,
        neighbor,
        source,
        min_rx_us,
        min_tx_us,
        idle_tx_us,
        multiplier,
        passive,
        ttl,
        max_hops,
        origin,
    } = session;
    let micros = |us: &u32| dur(Duration::from_micros(u64::from(*us)));
    doc.table(&["bfd", name], Some(origin));
    doc.kv("neighbor", text(neighbor));
    doc.opt("source", source.map(text));
    doc.kv("min_rx", micros(min_rx_us));
    doc.kv("min_tx", micros(min_tx_us));
    doc.kv("idle_tx", micros(idle_tx_us));
    doc.kv("multiplier", int(*multiplier));
    if *passive {
        doc.kv("passive", boolean(true));
    }
    doc.kv("ttl", int(*ttl));
    doc.kv("max_hops", int(*max_hops));
}

fn bgp_section(doc: &mut Doc, bgp: &BgpSettings) {
    if bgp == &BgpSettings::default() {
        return;
    }
    let BgpSettings {
        via,
        bird_include,
        birdc,
        bird_socket,
        withdraw_drain,
        vtysh,
        frr_pathspace,
        frr_route_map,
    } = bgp;
    doc.table(&["bgp"], None);
    doc.kv(
        "via",
        text(match via {
            RouteDaemon::Bird => "bird",
            RouteDaemon::ExaBgp => "exabgp",
            RouteDaemon::Frr => "frr",
        }),
    );
    doc.kv("bird_include", path(bird_include));
    doc.kv("birdc", text(birdc.display()));
    doc.opt("bird_socket", bird_socket.as_deref().map(path));
    doc.kv("withdraw_drain", dur(*withdraw_drain));
    doc.kv("vtysh", text(vtysh.display()));
    doc.opt("frr_pathspace", frr_pathspace.as_ref().map(text));
    doc.kv("frr_route_map", text(frr_route_map));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_the_shortest_exact_unit() {
        assert_eq!(duration_text(Duration::from_secs(5)), "5s");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(
            duration_text(Duration::from_nanos(1_000_000_001)),
            "1.000000001s"
        );
        for d in [
            Duration::from_secs(5),
            Duration::from_millis(1500),
            Duration::from_micros(1_500_001),
        ] {
            assert_eq!(
                crate::config::values::parse_duration(&duration_text(d)),
                Ok(d)
            );
        }
    }

    #[test]
    fn keys_are_quoted_only_when_toml_needs_it() {
        assert_eq!(key_part("web_1"), "web_1");
        assert_eq!(key_part("mail.alert"), "\"mail.alert\"");
        assert_eq!(key_part("a b"), "\"a b\"");
        assert_eq!(dotted(&["watch", "g.1", "s"]), "watch.\"g.1\".s");
    }
}
