//! The keepalived.conf front end: reads a file as keepalived 2.2.7 does (lexer, block reader, one module per block kind) and maps it onto the one `Config` model; no second engine.
//!
//! Reading follows keepalived line for line, including where keepalived
//! ignores a line, falls back to a default after an error it only logs, or
//! accepts a value it then does not use: keepmon does the same (so a
//! keepalived and a keepmon started from one file are peers) and says so
//! with a warning at `file:line:col`. What keepalived refuses to run, and
//! what keepmon cannot yet do the way keepalived does, are errors.

pub mod bfd;
pub mod global_defs;
pub mod lexer;
pub mod numbers;
pub mod schema;
pub mod security;
pub mod track_file;
pub mod track_process;
pub mod tree;
pub mod virtual_server;
pub mod vrrp_instance;
pub mod vrrp_script;
pub mod vs_group;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::FileSystem;
use crate::config::diag::{Diagnostic, Diagnostics, Location, Severity};
use crate::config::model::{Config, DepBehavior, FileInit, Format, Monitor, Origin, Service};
use crate::config::settings;

use lexer::Piece;
pub use lexer::looks_like_keepalived;
use tree::Stmt;

/// Read a keepalived.conf. Returns a model even with errors, so the shared
/// validator can add its own.
pub fn parse(text: &str, file: &Arc<Path>, fs: &dyn FileSystem) -> (Option<Config>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let pieces = lexer::lex(text, file, fs, &mut diags);
    // keepalived reads the file in each of its processes: the VRRP process
    // skips the checker's blocks by counting braces, and the checker process
    // skips the VRRP blocks. Where a block's braces and its keywords
    // disagree (a value list without its `{`), the two processes see
    // different block ends; keepmon takes each side from its own process.
    let mut vrrp_diags = Diagnostics::default();
    let vrrp_view = tree::read(
        pieces.clone(),
        schema::ROOT,
        schema::CHECKER_ROOTS,
        &mut vrrp_diags,
    );
    let mut checker_diags = Diagnostics::default();
    let checker_view = tree::read(pieces, schema::ROOT, schema::VRRP_ROOTS, &mut checker_diags);
    // A message only one process gives about a line inside a block that
    // the other process reads says which process it is.
    let vrrp_spans = spans(&vrrp_view, schema::VRRP_ROOTS);
    let checker_spans = spans(&checker_view, schema::CHECKER_ROOTS);
    let only_in = |d: &Diagnostic, other: &Diagnostics| !other.iter().any(|o| o == d);
    let labelled = vrrp_diags
        .iter()
        .map(|d| {
            let label = (only_in(d, &checker_diags) && inside(&d.location, &checker_spans))
                .then_some(" [as keepalived's VRRP process reads it: it skips virtual_server blocks by counting their braces]");
            (d, label)
        })
        .chain(checker_diags.iter().map(|d| {
            let label = (only_in(d, &vrrp_diags) && inside(&d.location, &vrrp_spans))
                .then_some(" [as keepalived's checker process reads it: it skips vrrp blocks by counting their braces]");
            (d, label)
        }));
    for (d, label) in labelled {
        let message = format!("{}{}", d.message, label.unwrap_or_default());
        if !diags
            .iter()
            .any(|seen| seen.location == d.location && seen.message == message)
        {
            match d.severity {
                Severity::Error => diags.error(d.location.clone(), message),
                Severity::Warning => diags.warning(d.location.clone(), message),
            }
        }
    }
    let mut ctx = Ctx {
        diags: &mut diags,
        fs,
        file: Arc::clone(file),
    };
    let config = build(&vrrp_view, &checker_view, &mut ctx);
    (Some(config), diags)
}

/// Where each top-level block of `kinds` begins and ends (file, lines).
fn spans(view: &[Stmt], kinds: &[&str]) -> Vec<(Arc<Path>, u32, u32)> {
    view.iter()
        .filter(|s| kinds.contains(&s.keyword()))
        .map(|s| {
            (
                Arc::clone(&s.piece.loc.file),
                s.piece.loc.line,
                s.end_loc().line,
            )
        })
        .collect()
}

fn inside(at: &Location, spans: &[(Arc<Path>, u32, u32)]) -> bool {
    spans
        .iter()
        .any(|(file, start, end)| *file == at.file && (*start..=*end).contains(&at.line))
}

/// The file's blocks, read in order and then tied together (keepalived
/// resolves names such as `track_script` after the whole file is read).
fn build(vrrp_view: &[Stmt], checker_view: &[Stmt], ctx: &mut Ctx<'_>) -> Config {
    let mut globals = global_defs::Globals::default();
    let mut scripts = Vec::new();
    let mut instances = Vec::new();
    let mut groups = Vec::new();
    let mut virtual_servers = Vec::new();
    let mut vs_groups = Vec::new();
    let mut files = Vec::new();
    let mut processes: Vec<track_process::TrackedProcess> = Vec::new();
    let mut bfds: Vec<bfd::BfdInstance> = Vec::new();
    let checker_blocks = checker_view
        .iter()
        .filter(|s| schema::CHECKER_ROOTS.contains(&s.keyword()));
    for stmt in vrrp_view.iter().chain(checker_blocks) {
        match stmt.keyword() {
            "global_defs" => global_defs::read(stmt, &mut globals, ctx),
            "vrrp_script" => {
                if let Some(script) = vrrp_script::read(stmt, &scripts, &globals, ctx) {
                    scripts.push(script);
                }
            }
            "vrrp_instance" => {
                if let Some(instance) = vrrp_instance::read(
                    stmt,
                    &instances,
                    vrrp_instance::Trackers {
                        scripts: &scripts,
                        files: &files,
                        processes: &processes,
                        bfds: &bfds,
                    },
                    &globals,
                    ctx,
                ) {
                    instances.push(instance);
                }
            }
            "track_file" | "vrrp_track_file" => {
                if let Some(file) = track_file::read(stmt, &files, ctx) {
                    files.push(file);
                }
            }
            "vrrp_track_process" => {
                if let Some(process) = track_process::read(stmt, ctx) {
                    processes.push(process);
                }
            }
            "vrrp_sync_group" => {
                if let Some(group) = vrrp_instance::read_sync_group(
                    stmt,
                    &groups,
                    vrrp_instance::Trackers {
                        scripts: &scripts,
                        files: &files,
                        processes: &processes,
                        bfds: &bfds,
                    },
                    &globals,
                    ctx,
                ) {
                    groups.push(group);
                }
            }
            "bfd_instance" => {
                if let Some(instance) = bfd::read(stmt, &bfds, ctx) {
                    bfds.push(instance);
                }
            }
            "virtual_server" => {
                if let Some(vs) = virtual_server::read(stmt, &files, &bfds, ctx) {
                    virtual_servers.push(vs);
                }
            }
            "virtual_server_group" => {
                if let Some(group) = vs_group::read(stmt, ctx) {
                    vs_groups.push(group);
                }
            }
            keyword => ctx.unused(&stmt.piece, &format!("the {keyword} keyword")),
        }
    }
    let config_dir = file_dir(&ctx.file);
    let mut config = Config {
        format: Format::Keepalived,
        source: ctx.file.to_path_buf(),
        settings: settings::native_defaults(&config_dir),
        mail: settings::default_mail_settings(ctx.fs),
        hostgroups: BTreeMap::new(),
        aliases: BTreeMap::new(),
        views: BTreeMap::new(),
        watches: BTreeMap::new(),
        virtual_servers: BTreeMap::new(),
        vrrp: BTreeMap::new(),
        vrrp_sync_groups: BTreeMap::new(),
        bfd: bfds
            .iter()
            .filter_map(|b| b.session.clone())
            .map(|s| (s.name.clone(), s))
            .collect(),
        announce: BTreeMap::new(),
        bgp: crate::config::model::BgpSettings::default(),
        stats_pages: Vec::new(),
        file_inits: Vec::new(),
    };
    global_defs::apply(&globals, &mut config);
    // keepalived initialises every track file with init_file, tracked or not.
    config.file_inits = files
        .iter()
        .filter_map(|f| {
            let (value, overwrite) = f.init?;
            Some(FileInit {
                path: f.path.clone(),
                value,
                overwrite,
                origin: Origin(f.loc.clone()),
            })
        })
        .collect();
    let used = vrrp_instance::apply(instances, &groups, &scripts, &globals, &mut config, ctx);
    vrrp_script::apply(&scripts, &used, globals.script_security, &mut config, ctx);
    virtual_server::apply(virtual_servers, &vs_groups, &globals, &mut config, ctx);
    config
}

/// A polled service with keepalived's plain semantics: no alerts, no
/// dependencies, up after one success, down after one failure (callers set
/// rise and fall).
pub(crate) fn service(
    group: &str,
    name: &str,
    monitor: Monitor,
    interval: Duration,
    at: &Location,
) -> Service {
    Service {
        group: group.to_string(),
        name: name.to_string(),
        description: None,
        interval: Some(interval),
        failure_interval: None,
        schedule: None,
        randskew: None,
        monitor: Some(monitor),
        run_as: None,
        timeout: None,
        allow_empty_group: false,
        exclude_hosts: Vec::new(),
        exclude_period: None,
        depend: None,
        alertdepend: None,
        monitordepend: None,
        hostdepend: Vec::new(),
        dep_behavior: DepBehavior::Alert,
        dep_memory: None,
        redistribute: None,
        unack_summary: false,
        exit_weight: false,
        traptimeout: None,
        trapduration: None,
        env: BTreeMap::new(),
        rise: 1,
        fall: 1,
        periods: Vec::new(),
        origin: Origin(at.clone()),
    }
}

fn file_dir(file: &Path) -> std::path::PathBuf {
    file.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}

/// What every block reader shares: where messages go and the machine.
pub struct Ctx<'a> {
    pub diags: &'a mut Diagnostics,
    pub fs: &'a dyn FileSystem,
    pub file: Arc<Path>,
}

impl Ctx<'_> {
    /// keepalived logs `message` about this line and reads on.
    pub fn logs(&mut self, at: Location, message: impl Display) {
        self.diags.warning(
            at,
            format!("keepalived reports \"{message}\" here and reads on"),
        );
    }

    /// keepalived ignores this line (or part of it) without saying so, or
    /// after a message; `why` says what happens instead.
    pub fn ignores(&mut self, at: Location, why: impl Display) {
        self.diags
            .warning(at, format!("keepalived ignores this: {why}"));
    }

    /// A keyword keepalived uses that keepmon does not (yet).
    pub fn unused(&mut self, piece: &Piece, what: &str) {
        self.diags.warning(
            piece.loc.clone(),
            format!("keepmon ignores {what} (keepalived uses it; keepmon has no equivalent yet)"),
        );
    }

    /// Something keepalived does that keepmon cannot do the same way: an
    /// error, since running the file would behave differently.
    pub fn unsupported(&mut self, at: Location, what: impl Display) {
        self.diags.error(
            at,
            format!("keepmon cannot run this as keepalived does: {what}"),
        );
    }

    /// Word `index` of `piece`; keepalived exits when a parameter is
    /// missing, so a missing one is an error.
    pub fn arg<'p>(&mut self, piece: &'p Piece, index: usize) -> Option<&'p str> {
        match piece.words.get(index) {
            Some(word) => Some(word.text.as_str()),
            None => {
                self.diags.error(
                    piece.loc.clone(),
                    format!(
                        "'{}' is missing a parameter at word position {}; keepalived refuses to run",
                        piece.keyword(),
                        index + 1
                    ),
                );
                None
            }
        }
    }

    /// An unsigned parameter as keepalived reads it (see [`numbers::unsigned`]).
    pub fn unsigned(
        &mut self,
        piece: &Piece,
        index: usize,
        min: u64,
        max: u64,
        lenient: bool,
    ) -> Option<u64> {
        let text = self.arg(piece, index)?;
        let read = numbers::unsigned(text, min, max, lenient);
        self.complain(piece, index, read)
    }

    /// A signed parameter as keepalived reads it.
    pub fn int(
        &mut self,
        piece: &Piece,
        index: usize,
        min: i64,
        max: i64,
        lenient: bool,
    ) -> Option<i64> {
        let text = self.arg(piece, index)?;
        let read = numbers::int(text, min, max, lenient);
        self.complain(piece, index, read)
    }

    /// A decimal number of seconds in micro-units, as keepalived's timers read it.
    pub fn micros(
        &mut self,
        piece: &Piece,
        index: usize,
        min: u64,
        max: u64,
        lenient: bool,
    ) -> Option<u64> {
        let text = self.arg(piece, index)?;
        let read = numbers::decimal_micros(text, min, max, lenient);
        self.complain(piece, index, read)
    }

    fn complain<T>(&mut self, piece: &Piece, index: usize, read: numbers::Read<T>) -> Option<T> {
        if let Some(complaint) = read.complaint {
            self.logs(piece.word_loc(index), complaint);
        }
        read.value
    }
}

#[cfg(test)]
mod tests;
