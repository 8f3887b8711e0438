//! keepalived's `vrrp_script` blocks: each becomes an exec-monitor service (group `vrrp_script`) that `track_script` entries follow with keepalived's weight arithmetic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::diag::Location;
use crate::config::keepalived::global_defs::Globals;
use crate::config::keepalived::lexer::{self, Piece};
use crate::config::keepalived::tree::Stmt;
use crate::config::keepalived::{Ctx, security, service};
use crate::config::model::{Config, HostGroup, Monitor, Origin, RunAs, Watch};

/// The hostgroup and watch that hold the `vrrp_script` services.
pub const GROUP: &str = "vrrp_script";
/// The one host of that group (scripts get no host arguments).
pub const HOST: &str = "localhost";

/// Where keepalived looks for a script named without a `/` (it runs
/// scripts through `execvp` with the default search path).
const SEARCH_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// One `vrrp_script` as keepalived holds it after reading.
#[derive(Clone, Debug)]
pub struct Script {
    pub name: String,
    pub loc: Location,
    /// The command: program then arguments (empty: no `script` line).
    pub argv: Vec<String>,
    pub interval: Duration,
    /// 0 in keepalived means "the interval".
    pub timeout: Option<Duration>,
    pub weight: i64,
    pub reverse: bool,
    pub rise: u32,
    pub fall: u32,
    /// The program found on this machine; None when keepalived would
    /// disable the script as not found or insecure.
    pub path: Option<PathBuf>,
    /// Who it runs as (None: the daemon itself).
    pub run_as: Option<RunAs>,
}

/// Read one `vrrp_script NAME { ... }` block.
pub fn read(stmt: &Stmt, known: &[Script], globals: &Globals, ctx: &mut Ctx<'_>) -> Option<Script> {
    let name = ctx.arg(&stmt.piece, 1)?.to_string();
    if known.iter().any(|s| s.name == name) {
        ctx.diags.warning(
            stmt.loc(),
            format!(
                "vrrp_script {name} is defined twice; keepalived's track_script uses the first"
            ),
        );
        return None;
    }
    let mut script = Script {
        name,
        loc: stmt.loc(),
        argv: Vec::new(),
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        reverse: false,
        rise: 1,
        fall: 1,
        path: None,
        run_as: None,
    };
    // keepalived's `remove_script` and `script_user_set`.
    let mut remove = false;
    let mut user_set = false;
    for child in stmt.children() {
        let piece = &child.piece;
        match child.keyword() {
            "script" => script.argv = command(piece, ctx),
            "interval" => {
                if let Some(secs) = whole_seconds(ctx, piece, &script.name, "interval") {
                    script.interval = Duration::from_secs(secs);
                }
            }
            "timeout" => {
                if let Some(secs) = whole_seconds(ctx, piece, &script.name, "timeout") {
                    script.timeout = Some(Duration::from_secs(secs));
                }
            }
            "weight" => {
                // keepalived stores whatever strtol read, even after
                // reporting it out of range.
                let text = ctx.arg(piece, 1).unwrap_or("0");
                let read = crate::config::keepalived::numbers::int(text, -253, 253, true);
                if read.complaint.is_some() || read.value.is_none() {
                    ctx.logs(
                        piece.word_loc(1),
                        format!(
                            "vrrp_script {} weight {text} must be in [-253, 253]",
                            script.name
                        ),
                    );
                }
                script.weight = read.value.unwrap_or_else(|| c_strtol(text));
                match piece.words.get(2).map(|w| w.text.as_str()) {
                    Some("reverse") => script.reverse = true,
                    Some(other) => ctx.logs(
                        piece.word_loc(2),
                        format!("vrrp_script {} unknown weight option {other}", script.name),
                    ),
                    None => {}
                }
            }
            "rise" | "fall" => {
                let which = child.keyword();
                let value = match ctx.unsigned(piece, 1, 1, i32::MAX as u64, true) {
                    Some(v) => u32::try_from(v).unwrap_or(u32::MAX),
                    None => {
                        ctx.logs(
                            piece.loc.clone(),
                            format!(
                                "({}): vrrp script {which} value invalid, defaulting to 1",
                                script.name
                            ),
                        );
                        1
                    }
                };
                if which == "rise" {
                    script.rise = value;
                } else {
                    script.fall = value;
                }
            }
            "user" => {
                let Some(user) = ctx.arg(piece, 1) else {
                    continue;
                };
                let group = piece.words.get(2).map(|w| w.text.as_str());
                match security::resolve_user(ctx.fs, user, group) {
                    Ok(run_as) => {
                        script.run_as = Some(run_as);
                        user_set = true;
                        remove = false;
                    }
                    Err(message) => {
                        ctx.logs(piece.loc.clone(), message);
                        ctx.logs(
                            piece.loc.clone(),
                            format!(
                                "Unable to set uid/gid for script {} (keepalived removes vrrp_script {})",
                                script.argv.join(" "),
                                script.name
                            ),
                        );
                        remove = true;
                    }
                }
            }
            "init_fail" => ctx.unused(
                piece,
                "init_fail (keepmon's scripts start as not yet known)",
            ),
            keyword => ctx.unused(piece, &format!("'{keyword}' in vrrp_script")),
        }
    }
    if script.argv.is_empty() {
        ctx.logs(
            stmt.end_loc(),
            format!("No script set for vrrp_script {} - removing", script.name),
        );
        return None;
    }
    if remove {
        return None;
    }
    if !user_set {
        match globals.default_run_as(ctx.fs) {
            Ok(run_as) => script.run_as = run_as,
            Err(_) => {
                ctx.logs(
                    stmt.end_loc(),
                    format!(
                        "Unable to set default user for vrrp script {} - removing (enable_script_security without script_user wants the user keepalived_script)",
                        script.name
                    ),
                );
                return None;
            }
        }
    }
    script.path = find_program(&script.argv[0], ctx);
    if let Some(path) = &script.path {
        if !secure(path, script.run_as.as_ref(), globals, &script.loc, ctx) {
            ctx.logs(
                script.loc.clone(),
                format!("Disabling track script {} due to insecure", script.name),
            );
            script.path = None;
        }
    } else {
        ctx.ignores(
            script.loc.clone(),
            format!(
                "the script of vrrp_script {} ({}) is not found; keepalived disables it and instances that track it do not",
                script.name, script.argv[0]
            ),
        );
    }
    Some(script)
}

/// keepalived's `check_script_secure` for a script at `path` run as
/// `run_as`: false when keepalived disables it (an unsafe path under
/// `enable_script_security`); an unsafe path without it is only reported.
pub fn secure(
    path: &Path,
    run_as: Option<&RunAs>,
    globals: &Globals,
    at: &Location,
    ctx: &mut Ctx<'_>,
) -> bool {
    let Some(unsafe_part) = security::unsafe_path(ctx.fs, path, run_as) else {
        return true;
    };
    let detail = if unsafe_part == path {
        String::new()
    } else {
        format!(
            " ({} is writable by others than root)",
            unsafe_part.display()
        )
    };
    ctx.logs(
        at.clone(),
        format!(
            "Unsafe permissions found for script '{}'{}{detail}",
            path.display(),
            if globals.script_security {
                " - disabling"
            } else {
                "."
            }
        ),
    );
    !globals.script_security
}

/// A `script`/`notify*`/`misc_path` line's command as keepalived runs it: it
/// re-reads the line with quotes and escapes, and uses only the *first*
/// word after the keyword, which it splits again. So
/// `script "/bin/check -x"` runs `/bin/check -x`, while an unquoted
/// `script /bin/check -x` runs `/bin/check` without `-x`.
pub fn command(piece: &Piece, ctx: &mut Ctx<'_>) -> Vec<String> {
    let words = match lexer::quoted_escaped(&piece.text) {
        Ok(words) => words,
        Err(message) => {
            ctx.logs(piece.loc.clone(), message);
            return Vec::new();
        }
    };
    let Some(first) = words.get(1) else {
        ctx.arg(piece, 1);
        return Vec::new();
    };
    if words.len() > 2 {
        ctx.ignores(
            piece.word_loc(2),
            format!(
                "keepalived runs only \"{first}\" and drops the words after it; quote the whole command to pass arguments"
            ),
        );
    }
    match lexer::quoted_escaped(first) {
        Ok(argv) => argv,
        Err(message) => {
            ctx.logs(piece.loc.clone(), message);
            Vec::new()
        }
    }
}

/// Add a service for each script some instance tracks (keepalived does not
/// run scripts no instance uses, and says so).
pub fn apply(
    scripts: &[Script],
    used: &BTreeSet<String>,
    script_security: bool,
    config: &mut Config,
    ctx: &mut Ctx<'_>,
) {
    let mut services = BTreeMap::new();
    let mut warned_security = script_security;
    for script in scripts {
        let Some(path) = &script.path else {
            continue;
        };
        if !used.contains(&script.name) {
            ctx.ignores(
                script.loc.clone(),
                format!(
                    "vrrp_script {} is not used by any vrrp_instance; keepalived does not run it",
                    script.name
                ),
            );
            continue;
        }
        if !warned_security {
            warned_security = true;
            ctx.diags.warning(
                script.loc.clone(),
                "keepalived reports \"SECURITY VIOLATION - scripts are being executed but script_security not enabled\" and runs the scripts anyway",
            );
        }
        let monitor = Monitor::Exec {
            name: script.argv[0].clone(),
            args: script.argv[1..].to_vec(),
            append_hosts: false,
            path: Some(path.clone()),
        };
        let mut service = service(GROUP, &script.name, monitor, script.interval, &script.loc);
        service.run_as = script.run_as.clone();
        service.timeout = Some(script.timeout.unwrap_or(script.interval));
        service.rise = script.rise;
        service.fall = script.fall;
        services.insert(script.name.clone(), service);
    }
    if services.is_empty() {
        return;
    }
    let origin = Origin(Location::file_only(&ctx.file));
    config.hostgroups.insert(
        GROUP.to_string(),
        HostGroup {
            name: GROUP.to_string(),
            hosts: vec![HOST.to_string()],
            implicit: true,
            origin: origin.clone(),
        },
    );
    config.watches.insert(
        GROUP.to_string(),
        Watch {
            group: GROUP.to_string(),
            services,
            origin,
        },
    );
}

/// A program as `execvp` finds it.
pub fn find_program(program: &str, ctx: &Ctx<'_>) -> Option<PathBuf> {
    if program.contains('/') {
        let path = if Path::new(program).is_absolute() {
            PathBuf::from(program)
        } else {
            ctx.file
                .parent()
                .map(|d| d.join(program))
                .unwrap_or_else(|| PathBuf::from(program))
        };
        return ctx.fs.is_file(&path).then_some(path);
    }
    SEARCH_PATH
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|p| ctx.fs.is_file(p))
}

fn whole_seconds(ctx: &mut Ctx<'_>, piece: &Piece, name: &str, what: &str) -> Option<u64> {
    let secs = ctx.unsigned(piece, 1, 0, u64::from(u32::MAX) / 1_000_000, true);
    match secs {
        None => {
            if piece.words.len() > 1 {
                ctx.logs(
                    piece.loc.clone(),
                    format!(
                        "({name}): vrrp script {what} '{}' invalid - ignoring",
                        piece.words[1].text
                    ),
                );
            }
            None
        }
        Some(0) => {
            ctx.logs(
                piece.loc.clone(),
                format!("({name}): vrrp script {what} must be greater than 0, setting to 1"),
            );
            Some(1)
        }
        Some(secs) => Some(secs),
    }
}

/// C's `strtol` on junk: the leading signed digits, else 0.
fn c_strtol(text: &str) -> i64 {
    let text = text.trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    sign * digits[..end].parse::<i64>().unwrap_or(0)
}
