//! HAProxy's `global` section: the process-model lines keepmon accepts with a warning, `crt-base`, `ca-base`, `ssl-server-verify`, and HAProxy's errors for unknown keywords; sets nothing else.

use std::path::PathBuf;

use crate::config::haproxy::Ctx;
use crate::config::haproxy::lexer::Line;
use crate::config::values::suggest;

/// Lines that only shape HAProxy's own process (or its logging), accepted.
const PROCESS: &[&str] = &[
    "daemon",
    "nbthread",
    "user",
    "group",
    "uid",
    "gid",
    "chroot",
    "pidfile",
    "stats",
    "maxconn",
    "log",
    "master-worker",
    "quiet",
    "ulimit-n",
    "node",
    "description",
    "log-tag",
    "log-send-hostname",
    "spread-checks",
    "hard-stop-after",
    "cpu-map",
    "maxsslconn",
    "maxconnrate",
    "maxsessrate",
    "maxcomprate",
    "maxpipes",
    "noepoll",
    "nopoll",
    "nosplice",
    "nogetaddrinfo",
    "noreuseport",
    "localpeer",
    "ca-base",
    "server-state-file",
    "server-state-base",
    "ssl-default-bind-ciphers",
    "ssl-default-bind-ciphersuites",
    "ssl-default-bind-options",
    "ssl-default-server-ciphers",
    "ssl-default-server-ciphersuites",
    "ssl-default-server-options",
    "ssl-dh-param-file",
    "ssl-server-verify",
    "tune.ssl.default-dh-param",
    "grace",
    "insecure-fork-wanted",
    "expose-experimental-directives",
    "busy-polling",
    "max-spread-checks",
    "mworker-max-reloads",
    "numa-cpu-mapping",
    "profiling.tasks",
    "set-dumpable",
    "strict-limits",
    "thread-groups",
    "unix-bind",
    "zero-warning",
    "external-check",
    "h1-case-adjust",
    "h1-case-adjust-file",
    "lua-prepend-path",
    "presetenv",
    "resetenv",
    "setenv",
    "unsetenv",
    "lua-load",
    "lua-load-per-thread",
    "ssl-engine",
    "ssl-mode-async",
    "tune.bufsize",
    "tune.maxrewrite",
    "debug",
];

/// Read the `global` section's lines.
pub fn read(body: &[Line], ctx: &mut Ctx<'_>) {
    for line in body {
        let keyword = line.keyword();
        match keyword {
            "crt-base" | "ca-base" => {
                if line.word(1).is_empty() {
                    ctx.error(
                        line.loc.clone(),
                        format!("'{keyword}' expects a directory path"),
                    );
                } else {
                    let base = PathBuf::from(line.word(1));
                    let base = Some(if base.is_absolute() {
                        base
                    } else {
                        dir_of(ctx).join(base)
                    });
                    if keyword == "crt-base" {
                        ctx.crt_base = base;
                    } else {
                        ctx.ca_base = base;
                    }
                }
            }
            "ssl-server-verify" => match line.word(1) {
                "none" => ctx.server_verify = false,
                "required" => ctx.server_verify = true,
                _ => ctx.error(
                    line.loc.clone(),
                    "'ssl-server-verify' expects 'none' or 'required' as argument.",
                ),
            },
            "nbproc" => ctx.diags.warning(
                line.loc.clone(),
                "'nbproc' is an old HAProxy form that HAProxy 2.6 refuses (gone since 2.5): keepmon is one process and ignores it; remove the line",
            ),
            "setenv" | "presetenv" | "resetenv" | "unsetenv" => ctx.unsupported(
                line.loc.clone(),
                format!("'{keyword}' (keepmon expands variables from its own environment only)"),
            ),
            "lua-load" | "lua-load-per-thread" | "lua-prepend-path" | "ssl-engine" => {
                ctx.unsupported(line.loc.clone(), format!("'{keyword}'"))
            }
            k if PROCESS.contains(&k) || k.starts_with("tune.") => {
                ctx.process_model(line.loc.clone(), k)
            }
            unknown => {
                let hint = suggest(unknown, PROCESS)
                    .map(|k| format!("; did you mean '{k}' maybe ?"))
                    .unwrap_or_default();
                ctx.error(
                    line.loc.clone(),
                    format!("unknown keyword '{unknown}' in 'global' section{hint}"),
                );
            }
        }
    }
}

fn dir_of(ctx: &Ctx<'_>) -> PathBuf {
    ctx.file
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}
