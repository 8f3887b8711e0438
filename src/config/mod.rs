//! Config front end: reads mon.cf, TOML, keepalived.conf or haproxy.cfg, compiles to one validated [`Config`], and diffs configs; no sockets, no daemons.
//!
//! `keepmon check-config` and `keepmon start` both call [`load`], so they can
//! never disagree. The only IO is reading the file and asking a [`FileSystem`]
//! whether scripts and directories exist; tests pass a fake one.

pub mod acl;
pub mod convert;
pub mod depend;
pub mod diag;
pub mod diff;
pub mod haproxy;
pub mod keepalived;
pub mod model;
pub mod moncf;
pub mod native;
pub mod settings;
pub mod validate;
pub mod values;
pub mod when;
pub mod words;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diag::{CompileError, Diagnostic, Diagnostics, Location, Severity};
pub use diff::{ConfigDiff, diff};
pub use model::{Config, Format};

/// A successful compile: the model and the warnings worth showing.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub config: Config,
    pub warnings: Diagnostics,
}

/// The questions the compiler asks about the machine. Real runs use
/// [`RealFileSystem`]; tests answer from a list.
pub trait FileSystem {
    fn is_file(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;

    /// The text of a file another file includes (keepalived's `include`);
    /// None when it cannot be read.
    fn read_to_string(&self, _path: &Path) -> Option<String> {
        None
    }

    /// The entries of a directory (for `include` globs); None when it
    /// cannot be listed.
    fn list_dir(&self, _path: &Path) -> Option<Vec<PathBuf>> {
        None
    }

    /// The machine's host name (keepalived's default `config_id` for `@ID`
    /// lines); None when unknown.
    fn hostname(&self) -> Option<String> {
        None
    }

    /// The owner, group and mode of `path` itself (not following a
    /// symbolic link), for keepalived's script security; None when unknown.
    fn lstat(&self, _path: &Path) -> Option<FileMeta> {
        None
    }

    /// `path` with every symbolic link resolved; None when unknown.
    fn realpath(&self, _path: &Path) -> Option<PathBuf> {
        None
    }

    /// An environment variable (haproxy.cfg's `"${NAME}"`); None when unset.
    fn env_var(&self, _name: &str) -> Option<String> {
        None
    }
}

/// What [`FileSystem::lstat`] tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    /// The permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub kind: FileKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// The machine's own file system.
pub struct RealFileSystem;

impl FileSystem for RealFileSystem {
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn read_to_string(&self, path: &Path) -> Option<String> {
        let bytes = std::fs::read(path).ok()?;
        Some(latin1_fallback(bytes))
    }

    fn list_dir(&self, path: &Path) -> Option<Vec<PathBuf>> {
        let entries = std::fs::read_dir(path).ok()?;
        Some(entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
    }

    fn hostname(&self) -> Option<String> {
        nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
    }

    fn lstat(&self, path: &Path) -> Option<FileMeta> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path).ok()?;
        let kind = meta.file_type();
        Some(FileMeta {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
            kind: if kind.is_dir() {
                FileKind::Dir
            } else if kind.is_file() {
                FileKind::File
            } else if kind.is_symlink() {
                FileKind::Symlink
            } else {
                FileKind::Other
            },
        })
    }

    fn realpath(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }
}

/// The format a file is read as by its name: `.toml` is native, a name
/// containing `keepalived` is keepalived.conf, one containing `haproxy`
/// haproxy.cfg, anything else mon.cf.
pub fn detect_format(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
        _ if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("haproxy")) =>
        {
            Format::Haproxy
        }
        _ if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("keepalived")) =>
        {
            Format::Keepalived
        }
        _ => Format::Mon,
    }
}

/// The format by name, then by content: a file whose first keyword is one
/// of keepalived's top-level blocks is keepalived.conf; a `.cfg` file whose
/// first keyword opens one of HAProxy's sections is haproxy.cfg.
pub fn detect_format_of(path: &Path, text: &str) -> Format {
    let cfg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("cfg"));
    match detect_format(path) {
        Format::Mon if cfg && haproxy::looks_like_haproxy(text) => Format::Haproxy,
        Format::Mon if keepalived::looks_like_keepalived(text) => Format::Keepalived,
        format => format,
    }
}

/// Read and compile a config file. `format` overrides detection by extension.
/// The largest config file read (a 100,000-watch mon.cf with a service
/// each is about 20 MiB).
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// Read a config file, refusing one larger than [`MAX_CONFIG_BYTES`] (or
/// endless, as `/dev/zero`) before it costs the memory.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; is this the right file?",
            MAX_CONFIG_BYTES >> 20
        )));
    }
    Ok(bytes)
}

pub fn load(path: &Path, format: Option<Format>) -> Result<Compiled, CompileError> {
    // Relative paths inside the config resolve against its directory; make
    // that directory absolute so the daemon and a CLI started elsewhere
    // agree on the control socket and statedir.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let path = absolute.as_path();
    let text = match read_bounded(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            let mut diagnostics = Diagnostics::default();
            diagnostics.error(
                Location::file_only(&Arc::from(path)),
                format!("cannot read config: {e}"),
            );
            return Err(CompileError {
                file: path.to_path_buf(),
                diagnostics,
            });
        }
    };
    let text = latin1_fallback(text);
    let format = format.unwrap_or_else(|| detect_format_of(path, &text));
    compile_str(&text, path, format, &RealFileSystem)
}

/// UTF-8 text, or each byte as its Latin-1 character: config files from old
/// systems may be Latin-1; keep every byte readable rather than refusing the file.
fn latin1_fallback(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    }
}

/// Read and compile several config files into one model (`keepmon start
/// -c keepalived.conf -c haproxy.cfg`): each is read in its own format
/// (`format` forces one for all), then their definitions are put together
/// and validated as one config. Daemon settings, mail and `[bgp]` come from
/// the first file; a hostgroup, watch, virtual server, VRRP instance, sync
/// group or announcement defined in two files is an error naming both
/// places. One file is exactly [`load`].
pub fn load_all(paths: &[PathBuf], format: Option<Format>) -> Result<Compiled, CompileError> {
    let [first, rest @ ..] = paths else {
        let mut diagnostics = Diagnostics::default();
        let file: Arc<Path> = Arc::from(Path::new("(no config file)"));
        diagnostics.error(Location::file_only(&file), "no config file given");
        return Err(CompileError {
            file: PathBuf::new(),
            diagnostics,
        });
    };
    if rest.is_empty() {
        return load(first, format);
    }
    let mut diagnostics = Diagnostics::default();
    let mut merged: Option<Config> = None;
    let mut first_file: Option<Arc<Path>> = None;
    for path in paths {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let file: Arc<Path> = Arc::from(absolute.as_path());
        first_file.get_or_insert_with(|| Arc::clone(&file));
        let text = match read_bounded(&absolute) {
            Ok(bytes) => latin1_fallback(bytes),
            Err(e) => {
                diagnostics.error(
                    Location::file_only(&file),
                    format!("cannot read config: {e}"),
                );
                continue;
            }
        };
        let format = format.unwrap_or_else(|| detect_format_of(&absolute, &text));
        let (config, found) = parse_format(&text, &file, format, &RealFileSystem);
        diagnostics.extend(found);
        let Some(config) = config else { continue };
        match &mut merged {
            None => merged = Some(config),
            Some(into) => merge(into, config, &mut diagnostics),
        }
    }
    let file = first_file.unwrap_or_else(|| Arc::from(first.as_path()));
    if let Some(config) = &merged {
        validate::validate(config, &file, &mut diagnostics);
    }
    diagnostics.sort();
    match merged {
        Some(config) if !diagnostics.has_errors() => Ok(Compiled {
            config,
            warnings: diagnostics,
        }),
        _ => Err(CompileError {
            file: file.to_path_buf(),
            diagnostics,
        }),
    }
}

/// Put `other`'s definitions into `into`; a name both define is an error
/// at the second definition naming the first.
fn merge(into: &mut Config, other: Config, diags: &mut Diagnostics) {
    fn join<T>(
        kind: &str,
        into: &mut std::collections::BTreeMap<String, T>,
        other: std::collections::BTreeMap<String, T>,
        origin: impl Fn(&T) -> &model::Origin,
        diags: &mut Diagnostics,
    ) {
        for (name, value) in other {
            match into.get(&name) {
                Some(first) => diags.error(
                    origin(&value).0.clone(),
                    format!(
                        "{kind} \"{name}\" is defined twice: here and at {}",
                        origin(first)
                    ),
                ),
                None => {
                    into.insert(name, value);
                }
            }
        }
    }
    join(
        "hostgroup",
        &mut into.hostgroups,
        other.hostgroups,
        |h| &h.origin,
        diags,
    );
    join(
        "watch",
        &mut into.watches,
        other.watches,
        |w| &w.origin,
        diags,
    );
    join(
        "virtual server",
        &mut into.virtual_servers,
        other.virtual_servers,
        |v| &v.origin,
        diags,
    );
    join(
        "vrrp instance",
        &mut into.vrrp,
        other.vrrp,
        |v| &v.origin,
        diags,
    );
    join(
        "vrrp sync group",
        &mut into.vrrp_sync_groups,
        other.vrrp_sync_groups,
        |g| &g.origin,
        diags,
    );
    join(
        "announcement",
        &mut into.announce,
        other.announce,
        |a| &a.origin,
        diags,
    );
    for (name, members) in other.aliases {
        into.aliases.entry(name).or_insert(members);
    }
    for (name, members) in other.views {
        into.views.entry(name).or_insert(members);
    }
    into.stats_pages.extend(other.stats_pages);
    into.file_inits.extend(other.file_inits);
}

fn parse_format(
    text: &str,
    file: &Arc<Path>,
    format: Format,
    fs: &dyn FileSystem,
) -> (Option<Config>, Diagnostics) {
    match format {
        Format::Mon => moncf::parse(text, file, fs),
        Format::Toml => native::parse(text, file, fs),
        Format::Keepalived => keepalived::parse(text, file, fs),
        Format::Haproxy => haproxy::parse(text, file, fs),
    }
}

/// Compile config text as if read from `path` (used for error locations and
/// for resolving relative paths).
pub fn compile_str(
    text: &str,
    path: &Path,
    format: Format,
    fs: &dyn FileSystem,
) -> Result<Compiled, CompileError> {
    let file: Arc<Path> = Arc::from(path);
    let (config, mut diagnostics) = parse_format(text, &file, format, fs);
    if let Some(config) = &config {
        validate::validate(config, &file, &mut diagnostics);
    }
    diagnostics.sort();
    match config {
        Some(config) if !diagnostics.has_errors() => Ok(Compiled {
            config,
            warnings: diagnostics,
        }),
        _ => Err(CompileError {
            file: PathBuf::from(path),
            diagnostics,
        }),
    }
}

/// The settings of a config file even when it has errors elsewhere, so the
/// CLI can still find the running daemon's control socket (e.g. to send
/// `reload` and get the daemon's account of the errors). None when the file
/// cannot be read or its settings cannot be worked out.
pub fn settings_of(path: &Path, format: Option<Format>) -> Option<model::Settings> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let path = absolute.as_path();
    let text = std::fs::read_to_string(path).ok()?;
    let format = format.unwrap_or_else(|| detect_format_of(path, &text));
    let file: Arc<Path> = Arc::from(path);
    let (config, _) = match format {
        Format::Mon => moncf::parse(&text, &file, &RealFileSystem),
        Format::Toml => native::parse(&text, &file, &RealFileSystem),
        Format::Keepalived => keepalived::parse(&text, &file, &RealFileSystem),
        Format::Haproxy => haproxy::parse(&text, &file, &RealFileSystem),
    };
    config.map(|c| c.settings)
}
