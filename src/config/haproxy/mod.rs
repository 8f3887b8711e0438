//! The haproxy.cfg front end: reads a file as HAProxy 2.6 does (lexer, sections, `defaults` inheritance, one module per part) and maps its proxies onto the one `Config` model; no second engine.
//!
//! What HAProxy's `haproxy -c` calls an error is an error here, at the
//! same line; what keepmon cannot yet run the way HAProxy does is an error
//! too (`keepmon cannot run this as HAProxy does: ...`). The exception, on
//! purpose: forms older HAProxy versions accepted whose meaning is plain
//! (`contimeout`, `clitimeout`, `srvtimeout`, `redispatch`, an address on
//! the `listen` line, `nbproc`) run, with a warning naming the modern form.
//! Lines that only matter to HAProxy's process model (`daemon`, `user`,
//! `chroot`, `stats socket`, ...) are accepted with a warning that says so.

pub mod global;
pub mod lexer;
pub mod map;
pub mod proxy;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::FileSystem;
use crate::config::diag::{Diagnostics, Location};
use crate::config::model::{Config, Format};
use crate::config::settings;
use crate::config::values::suggest;

use lexer::Line;
use proxy::{Kind, Proxy};

/// HAProxy's section keywords.
const SECTIONS: &[&str] = &["global", "defaults", "frontend", "backend", "listen"];
/// Sections HAProxy has and keepmon does not read.
const OTHER_SECTIONS: &[&str] = &[
    "userlist",
    "peers",
    "resolvers",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "crt-store",
    "traces",
];

/// Whether the first keyword of `text` opens one of HAProxy's proxy or
/// global sections (how a `.cfg` file is recognised).
pub fn looks_like_haproxy(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .is_some_and(|k| SECTIONS.contains(&k))
}

/// One proxy section after reading and inheritance.
#[derive(Clone, Debug)]
pub struct Section {
    pub kind: Kind,
    pub name: String,
    pub at: Location,
    pub proxy: Proxy,
}

/// Read a haproxy.cfg. Returns a model even with errors, so the shared
/// validator can add its own.
pub fn parse(text: &str, file: &Arc<Path>, fs: &dyn FileSystem) -> (Option<Config>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let lines = lexer::lex(text, file, &FsEnv(fs), &mut diags);
    let mut ctx = Ctx {
        diags: &mut diags,
        fs,
        file: Arc::clone(file),
        crt_base: None,
        ca_base: None,
        server_verify: true,
    };
    let sections = read_sections(&lines, &mut ctx);
    let config_dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut config = Config {
        format: Format::Haproxy,
        source: file.to_path_buf(),
        settings: settings::native_defaults(&config_dir),
        mail: settings::default_mail_settings(fs),
        hostgroups: BTreeMap::new(),
        aliases: BTreeMap::new(),
        views: BTreeMap::new(),
        watches: BTreeMap::new(),
        virtual_servers: BTreeMap::new(),
        vrrp: BTreeMap::new(),
        vrrp_sync_groups: BTreeMap::new(),
        bfd: BTreeMap::new(),
        announce: BTreeMap::new(),
        bgp: crate::config::model::BgpSettings::default(),
        stats_pages: Vec::new(),
        file_inits: Vec::new(),
    };
    map::apply(&sections, &mut config, &mut ctx);
    (Some(config), diags)
}

struct FsEnv<'a>(&'a dyn FileSystem);

impl lexer::Env for FsEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0.env_var(name)
    }
}

/// Group lines into sections, read each, and apply `defaults` as HAProxy
/// does: a `defaults` section starts from HAProxy's documented settings
/// (or from the one it names with `from`); a proxy starts from the last
/// `defaults` before it, or the one it names with `from`.
fn read_sections(lines: &[Line], ctx: &mut Ctx<'_>) -> Vec<Section> {
    let mut proxies: Vec<Section> = Vec::new();
    // Named defaults sections, and the last one read (named or not).
    let mut named: Vec<(String, Location, Proxy)> = Vec::new();
    let mut last_defaults = Proxy::default();
    let mut i = 0;
    while i < lines.len() {
        let header = &lines[i];
        let keyword = header.keyword();
        let end = lines[i + 1..]
            .iter()
            .position(|l| SECTIONS.contains(&l.keyword()) || OTHER_SECTIONS.contains(&l.keyword()))
            .map_or(lines.len(), |p| i + 1 + p);
        let body = &lines[i + 1..end];
        match keyword {
            "global" => global::read(body, ctx),
            "defaults" | "frontend" | "backend" | "listen" => {
                let kind = match keyword {
                    "defaults" => Kind::Defaults,
                    "frontend" => Kind::Frontend,
                    "backend" => Kind::Backend,
                    _ => Kind::Listen,
                };
                if let Some(section) = read_proxy(header, kind, body, &named, &last_defaults, ctx) {
                    if kind == Kind::Defaults {
                        last_defaults = section.proxy.clone();
                        if !section.name.is_empty() {
                            named.push((section.name, section.at, section.proxy));
                        }
                    } else {
                        check_duplicate(&section, &proxies, ctx);
                        proxies.push(section);
                    }
                }
            }
            k if OTHER_SECTIONS.contains(&k) => {
                ctx.unsupported(header.loc.clone(), format!("the '{k}' section"))
            }
            k => {
                let hint = suggest(k, SECTIONS)
                    .map(|s| format!("; did you mean '{s}' maybe ?"))
                    .unwrap_or_default();
                ctx.error(
                    header.loc.clone(),
                    format!("unknown keyword '{k}' out of section{hint}"),
                );
                // Only the one line: HAProxy reports each line out of section.
                i += 1;
                continue;
            }
        }
        i = end;
    }
    proxies
}

fn read_proxy(
    header: &Line,
    kind: Kind,
    body: &[Line],
    named: &[(String, Location, Proxy)],
    last_defaults: &Proxy,
    ctx: &mut Ctx<'_>,
) -> Option<Section> {
    let mut name = header.word(1).to_string();
    let mut from = None;
    let mut rest = 2;
    if name == "from" && kind == Kind::Defaults {
        name.clear();
        rest = 1;
    }
    if name.is_empty() && kind != Kind::Defaults {
        ctx.error(
            header.loc.clone(),
            format!("'{}' expects <name> as argument", kind.name()),
        );
        return None;
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        .filter(|_| kind != Kind::Defaults)
    {
        ctx.error(
            header.word_loc(1),
            format!(
                "character '{bad}' is not permitted in '{}' name '{name}'",
                kind.name()
            ),
        );
    }
    let mut listen_addr = None;
    match (header.word(rest), header.word(rest + 1)) {
        ("", _) => {}
        ("from", "") => {
            ctx.error(
                header.word_loc(rest),
                "'from' expects a defaults section name",
            );
        }
        ("from", defaults) => from = Some((defaults.to_string(), header.word_loc(rest + 1))),
        (addr, _) if kind == Kind::Listen => listen_addr = Some((addr.to_string(), rest)),
        (other, _) => ctx.error(
            header.word_loc(rest),
            format!(
                "unexpected argument '{other}' after the {} name",
                kind.name()
            ),
        ),
    }
    let mut proxy = match &from {
        None => last_defaults.inherited(),
        Some((defaults, at)) => {
            let found: Vec<_> = named.iter().filter(|(n, _, _)| n == defaults).collect();
            match found.as_slice() {
                [(_, _, p)] => p.inherited(),
                [] => {
                    ctx.error(
                        at.clone(),
                        format!(
                            "defaults section '{defaults}' not found for {} '{name}'",
                            kind.name()
                        ),
                    );
                    last_defaults.inherited()
                }
                [.., (_, last_at, p)] => {
                    ctx.error(
                        at.clone(),
                        format!(
                            "defaults section '{defaults}' is ambiguous: several defaults sections have that name (the last at line {})",
                            last_at.line
                        ),
                    );
                    p.inherited()
                }
            }
        }
    };
    if kind == Kind::Defaults && from.is_none() {
        // A defaults section resets everything to HAProxy's documented values.
        proxy = Proxy::default();
    }
    if let Some((addr, index)) = listen_addr {
        ctx.old_form(
            &header.word_loc(index),
            "an address on the 'listen' line",
            &format!("bind {addr}"),
        );
        let line = Line {
            loc: header.word_loc(index),
            words: vec![
                lexer::Word {
                    text: "bind".to_string(),
                    col: header.word_loc(index).col,
                },
                header.words[index].clone(),
            ],
        };
        proxy::read_line(&line, kind, &name, &mut proxy, ctx);
    }
    for line in body {
        proxy::read_line(line, kind, &name, &mut proxy, ctx);
    }
    Some(Section {
        kind,
        name,
        at: header.loc.clone(),
        proxy,
    })
}

/// Two proxies with overlapping capabilities may not share a name (a
/// frontend and a backend may).
fn check_duplicate(section: &Section, proxies: &[Section], ctx: &mut Ctx<'_>) {
    let overlaps =
        |a: Kind, b: Kind| (a.frontend() && b.frontend()) || (a.backend() && b.backend());
    if let Some(other) = proxies
        .iter()
        .find(|p| p.name == section.name && overlaps(p.kind, section.kind))
    {
        ctx.error(
            section.at.clone(),
            format!(
                "{} '{}' has the same name as {} '{}' declared at {}",
                section.kind.name(),
                section.name,
                other.kind.name(),
                other.name,
                other.at
            ),
        );
    }
}

/// What every part of the reader shares: where messages go and the machine.
pub struct Ctx<'a> {
    pub diags: &'a mut Diagnostics,
    pub fs: &'a dyn FileSystem,
    pub file: Arc<Path>,
    /// `crt-base` from `global`: where relative `crt` paths are.
    pub crt_base: Option<PathBuf>,
    /// `ca-base` from `global`: where relative `ca-file` paths are.
    pub ca_base: Option<PathBuf>,
    /// `ssl-server-verify` from `global`: whether servers' certificates
    /// are verified unless a server line says (HAProxy: `required`).
    pub server_verify: bool,
}

impl Ctx<'_> {
    pub fn error(&mut self, at: Location, message: impl Into<String>) {
        self.diags.error(at, message);
    }

    /// Something HAProxy does that keepmon cannot do the same way: an
    /// error, since running the file would behave differently.
    pub fn unsupported(&mut self, at: Location, what: impl Display) {
        self.diags.error(
            at,
            format!("keepmon cannot run this as HAProxy does: {what}"),
        );
    }

    /// HAProxy warns about this line and ignores it; so does keepmon.
    pub fn haproxy_ignores(&mut self, at: Location, message: impl Display) {
        self.diags
            .warning(at, format!("{message} (HAProxy warns and ignores it too)"));
    }

    /// A form HAProxy 2.6 refuses whose meaning is plain: keepmon runs it.
    pub fn old_form(&mut self, at: &Location, old: &str, modern: &str) {
        self.diags.warning(
            at.clone(),
            format!(
                "{old} is an old HAProxy form that HAProxy 2.6 refuses: keepmon runs it as '{modern}'; write that instead"
            ),
        );
    }

    /// A line that only matters to HAProxy's own process.
    pub fn process_model(&mut self, at: Location, keyword: &str) {
        self.diags.warning(
            at,
            format!("'{keyword}' only matters to HAProxy's own process; keepmon accepts it and has no use for it"),
        );
    }

    /// A `crt` path as HAProxy resolves it (against `crt-base`; a relative
    /// path without one against the config's directory, where HAProxy
    /// takes its working directory).
    pub fn crt_path(&self, path: &str) -> PathBuf {
        self.based_path(self.crt_base.as_deref(), path)
    }

    /// A `ca-file` path, resolved as [`Ctx::crt_path`] but against `ca-base`.
    pub fn ca_path(&self, path: &str) -> PathBuf {
        self.based_path(self.ca_base.as_deref(), path)
    }

    fn based_path(&self, base: Option<&Path>, path: &str) -> PathBuf {
        let dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        match base {
            _ if path.starts_with('/') => PathBuf::from(path),
            Some(base) => base.join(path),
            None => dir.join(path),
        }
    }
}

#[cfg(test)]
mod tests;
