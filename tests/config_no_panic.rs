//! Config compile never panics: generated mon.cf, TOML and keepalived.conf line soups always come back as a config or as located errors.
//!
//! The soups are built from the real vocabulary (the keyword tables of the
//! mon.cf front end, the tables and keys of the native format) mixed with
//! junk, unicode, comments, blank lines and `\` continuations, so that most
//! lines reach the deep parts of the parsers instead of dying on the first
//! unknown word. Half of the mon.cf soups are a working config with lines
//! inserted, removed and replaced, which gets past the parser into
//! validation.
//!
//! What every case checks is only what the compile contract promises:
//!
//! * no panic, and two compiles of the same text agree;
//! * `Err` carries at least one error diagnostic (an empty `Err` would leave
//!   the operator with nothing to fix);
//! * every location is in the file: line 0 (the file as a whole) or a line
//!   that exists, with a 1-based column;
//! * mon.cf: a located diagnostic points at a line that holds config text,
//!   never at a blank line or a comment (mon.cf diagnostics carry the
//!   number of the first physical line of a logical line);
//! * `Ok`: reloading the same text is no change (`diff(c, c)` is empty),
//!   and `keepmon convert`'s TOML of it compiles to the same model
//!   (`convert::same_model`): any config keepmon accepts round-trips.

use std::path::{Path, PathBuf};

use keepmon::config::moncf::{GLOBALS, PERIOD_KEYWORDS, SERVICE_KEYWORDS};
use keepmon::config::{
    CompileError, Compiled, Diagnostic, FileSystem, Format, compile_str, convert, diff,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// A machine with no files and no directories: scripts resolve only to
/// built-ins, and nothing depends on the host running the test.
struct EmptyFileSystem;

impl FileSystem for EmptyFileSystem {
    fn is_file(&self, _: &Path) -> bool {
        false
    }

    fn is_dir(&self, _: &Path) -> bool {
        false
    }
}

/// A small, complete mon.cf that compiles; the mutated soups start from it.
const MON_SKELETON: &[&str] = &[
    "maxprocs = 3",
    "randstart = 30s",
    "dep_behavior = m",
    "",
    "hostgroup g a b",
    "\tc",
    "",
    "hostgroup h 127.0.0.1",
    "",
    "watch g",
    "\tservice s",
    "\t\tdescription port 80 on every host",
    "\t\tinterval 5m",
    "\t\tmonitor tcp.monitor -p 80",
    "\t\tperiod wd {Mon-Fri} hr {9am-5pm}",
    "\t\t\talert mail.alert x@y",
    "\t\t\talertevery 1h",
    "\t\t\talertafter 2 10m",
    "\t\tperiod night: hr {6pm-8am}",
    "\t\t\talert mail.alert x@y",
    "\t\t\tupalert mail.alert x@y",
    "",
    "watch h",
    "\tservice t",
    "\t\tinterval 1m",
    "\t\tmonitor fping.monitor",
    "\t\tdepend g:s && SELF:u",
    "\t\tperiod",
    "\t\t\talert mail.alert x@y",
    "\tservice u",
    "\t\tinterval 1m",
    "\t\tmonitor tcp.monitor -p 22",
    "\t\tperiod",
    "\t\t\talert mail.alert x@y",
];

/// A small, complete keepmon.toml that compiles; the mutated soups start from it.
const TOML_SKELETON: &[&str] = &[
    "[daemon]",
    "statedir = \"state\"",
    "maxprocs = 3",
    "randstart = \"30s\"",
    "exclude_period = \"wd {Sat-Sun}\"",
    "",
    "[mon_protocol]",
    "listen = \"127.0.0.1:2583\"",
    "clientallow = ['^127\\.0\\.0\\.1$']",
    "",
    "[hostgroups]",
    "g = [\"a\", \"b\", \"127.0.0.1\"]",
    "h = [\"127.0.0.2\"]",
    "",
    "[actions.log]",
    "type = \"file\"",
    "path = \"state/alerts.log\"",
    "",
    "[actions.ops]",
    "type = \"mail\"",
    "to = [\"x@y\"]",
    "",
    "[watch.g.s]",
    "description = \"port 80 on every host\"",
    "interval = \"5m\"",
    "monitor = { type = \"tcp\", port = 80, timeout = \"2s\" }",
    "alert = [\"log\"]",
    "upalert = [\"log\"]",
    "alertevery = \"1h\"",
    "alertafter = 2",
    "",
    "[watch.h.t]",
    "interval = \"1m\"",
    "monitor = { type = \"http\", port = 80, path = \"/health\" }",
    "depend = \"g:s && SELF:u\"",
    "alert = [\"log\"]",
    "",
    "[watch.h.u]",
    "interval = \"1m\"",
    "monitor = { type = \"ping\" }",
    "",
    "[[watch.h.u.period]]",
    "label = \"office\"",
    "spec = \"wd {Mon-Fri} hr {9am-5pm}\"",
    "alert = [\"ops\"]",
    "",
    "[[watch.h.u.period]]",
    "spec = \"wd {Sat-Sun}\"",
    "alert = [\"log\"]",
    "alertevery = \"1h\"",
    "",
    "[virtual_servers.web]",
    "listen = \"127.0.0.1:8080\"",
    "scheduler = \"wrr\"",
    "health = \"h:t\"",
    "real_servers = [{ addr = \"127.0.0.2:8080\", weight = 2 }]",
    "",
    "[vrrp.vi_1]",
    "interface = \"eth0\"",
    "virtual_router_id = 51",
    "priority = 150",
    "advert_int = \"1s\"",
    "virtual_ipaddress = [\"10.0.0.100/24\"]",
    "track = [{ service = \"g:s\", weight = -60 }]",
    "notify = [\"log\"]",
];

const MON_CASES: u32 = 256;
const TOML_CASES: u32 = 256;
const KEEPALIVED_CASES: u32 = 256;
const HAPROXY_CASES: u32 = 256;

#[test]
fn mon_skeleton_compiles() {
    // Without this the mutated soups would only ever exercise error paths.
    let text = MON_SKELETON.join("\n") + "\n";
    match compile(&text, Format::Mon) {
        Ok(compiled) => assert_eq!(compiled.config.watches.len(), 2),
        Err(error) => panic!("the skeleton does not compile:\n{}", error.diagnostics),
    }
}

#[test]
fn toml_skeleton_compiles() {
    let text = TOML_SKELETON.join("\n") + "\n";
    match compile(&text, Format::Toml) {
        Ok(compiled) => assert_eq!(compiled.config.watches.len(), 2),
        Err(error) => panic!("the skeleton does not compile:\n{}", error.diagnostics),
    }
}

#[test]
fn keepalived_skeleton_compiles() {
    let text = KEEPALIVED_SKELETON.join("\n") + "\n";
    match compile(&text, Format::Keepalived) {
        Ok(compiled) => {
            assert_eq!(compiled.config.vrrp.len(), 1);
            assert_eq!(compiled.config.virtual_servers.len(), 1);
        }
        Err(error) => panic!("the skeleton does not compile:\n{}", error.diagnostics),
    }
}

#[test]
fn haproxy_skeleton_compiles() {
    let text = HAPROXY_SKELETON.join("\n") + "\n";
    match compile(&text, Format::Haproxy) {
        Ok(compiled) => {
            // app, fe, www and the pools api and web (www's default).
            assert_eq!(compiled.config.virtual_servers.len(), 5);
            assert_eq!(compiled.config.virtual_servers["api"].listen, None);
            assert_eq!(compiled.config.virtual_servers["web"].listen, None);
            assert_eq!(compiled.config.virtual_servers["www"].proxy.routes.len(), 3);
            assert_eq!(compiled.config.watches.len(), 3);
        }
        Err(error) => panic!("the skeleton does not compile:\n{}", error.diagnostics),
    }
}

#[test]
fn edge_texts_keep_the_contract() {
    for text in [
        "",
        "\n",
        "\n\n\n",
        " \t\n",
        "\\",
        "#",
        "\u{feff}",
        "\r\n",
        "{",
        "}",
        "$",
        "$A=$A\n$A",
        "\"",
        "@",
    ] {
        for format in [
            Format::Mon,
            Format::Toml,
            Format::Keepalived,
            Format::Haproxy,
        ] {
            check_contract(text, format);
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(MON_CASES))]

    #[test]
    fn mon_soup_never_panics(text in mon_soup()) {
        check_contract(&text, Format::Mon);
    }
}

proptest! {
    #![proptest_config(proptest_config(TOML_CASES))]

    #[test]
    fn toml_soup_never_panics(text in toml_soup()) {
        check_contract(&text, Format::Toml);
    }
}

proptest! {
    #![proptest_config(proptest_config(KEEPALIVED_CASES))]

    #[test]
    fn keepalived_soup_never_panics(text in keepalived_soup()) {
        check_contract(&text, Format::Keepalived);
    }
}

proptest! {
    #![proptest_config(proptest_config(HAPROXY_CASES))]

    #[test]
    fn haproxy_soup_never_panics(text in haproxy_soup()) {
        check_contract(&text, Format::Haproxy);
    }
}

/// `cases` unless `PROPTEST_CASES` asks for another number (for long local
/// runs). Failures are not persisted to a file: a failure found here becomes
/// a named regression test instead.
fn proptest_config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The contract every compile must keep.

fn compile(text: &str, format: Format) -> Result<Compiled, CompileError> {
    let path = match format {
        Format::Mon => Path::new("/etc/mon/mon.cf"),
        Format::Toml => Path::new("/etc/keepmon/keepmon.toml"),
        Format::Keepalived => Path::new("/etc/keepalived/keepalived.conf"),
        Format::Haproxy => Path::new("/etc/haproxy/haproxy.cfg"),
    };
    compile_str(text, path, format, &EmptyFileSystem)
}

fn check_contract(text: &str, format: Format) {
    let first = compile(text, format);
    let second = compile(text, format);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            let reload = diff(Some(&a.config), &b.config);
            assert!(
                reload.is_empty(),
                "compiling the same text twice gives a non-empty diff {reload:?}\n--- text ---\n{text}"
            );
            assert_eq!(
                a.warnings, b.warnings,
                "warnings differ between two compiles"
            );
            assert!(
                !a.warnings.has_errors(),
                "Ok carries an error:\n{}\n--- text ---\n{text}",
                a.warnings
            );
            for d in a.warnings.iter() {
                check_location(d, text, format);
            }
            check_round_trip(&a.config, text);
        }
        (Err(a), Err(b)) => {
            assert_eq!(
                a, b,
                "errors differ between two compiles\n--- text ---\n{text}"
            );
            assert!(
                a.diagnostics.has_errors(),
                "{format:?} compile failed without an error diagnostic ({} warning(s))\n--- text ---\n{text}",
                a.diagnostics.len()
            );
            for d in a.diagnostics.iter() {
                check_location(d, text, format);
            }
        }
        _ => panic!("two compiles of the same text disagree on success\n--- text ---\n{text}"),
    }
}

/// `convert` prints TOML that compiles to the same model, or names what
/// it could not carry over.
fn check_round_trip(config: &keepmon::config::model::Config, text: &str) {
    let converted = convert::to_native(config);
    if !converted.losses.is_empty() {
        for loss in &converted.losses {
            assert!(
                converted.text.contains(loss.as_str()),
                "a loss is not in the output: {loss}"
            );
        }
        return;
    }
    // The scripts the source resolved exist as far as the TOML is concerned
    // (mon.cf only warns about a missing alert script; TOML refuses one).
    let scripts = KnownFiles(script_paths(config));
    match compile_str(
        &converted.text,
        Path::new("/etc/keepmon/keepmon.toml"),
        Format::Toml,
        &scripts,
    ) {
        Ok(again) => assert!(
            convert::same_model(config, &again.config),
            "convert changed the model\n--- source ---\n{text}\n--- converted ---\n{}\n--- before ---\n{config:#?}\n--- after ---\n{:#?}",
            converted.text,
            again.config
        ),
        Err(e) => panic!(
            "convert's output does not compile:\n{}\n--- source ---\n{text}\n--- converted ---\n{}",
            e.diagnostics, converted.text
        ),
    }
}

/// A machine whose only files are the ones listed.
struct KnownFiles(Vec<PathBuf>);

impl FileSystem for KnownFiles {
    fn is_file(&self, path: &Path) -> bool {
        self.0.iter().any(|p| p == path)
    }

    fn is_dir(&self, _: &Path) -> bool {
        false
    }
}

/// The alert and notify scripts a model runs.
fn script_paths(config: &keepmon::config::model::Config) -> Vec<PathBuf> {
    use keepmon::config::model::{Action, AlertLine};
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
    lines
        .iter()
        .filter_map(|l| match &l.action {
            Action::Exec { path, .. } => Some(path.clone()),
            Action::Notify(n) => Some(n.path.clone()),
            _ => None,
        })
        .collect()
}

fn check_location(d: &Diagnostic, text: &str, format: Format) {
    let line = d.location.line as usize;
    if line == 0 {
        // The file as a whole.
        return;
    }
    // Every position a byte offset can have, including just after a final
    // newline (where a TOML parser reports "unexpected end of input").
    let line_positions = text.split('\n').count();
    assert!(
        line <= line_positions,
        "diagnostic `{d}` is past the end of a {line_positions}-line text\n--- text ---\n{text}"
    );
    assert!(
        d.location.col >= 1,
        "diagnostic `{d}` has column 0 on a real line"
    );
    if format == Format::Mon {
        let physical = text.lines().nth(line - 1).unwrap_or("");
        assert!(
            !physical.trim().is_empty() && !physical.trim_start().starts_with('#'),
            "diagnostic `{d}` points at a blank or comment line {physical:?}\n--- text ---\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------
// mon.cf soups.

const GROUPS: &[&str] = &["g", "h", "web", "SELF", "routers", "g.1", "ü"];
const SERVICES: &[&str] = &["s", "t", "u", "ping", "http", "s-2"];
const HOSTS: &[&str] = &[
    "a",
    "b",
    "c",
    "127.0.0.1",
    "::1",
    "host-1.example",
    "*a",
    "999.1.1.1",
];
const DURATIONS: &[&str] = &[
    "5m",
    "30s",
    "1h",
    "1d",
    "0",
    "0s",
    "10",
    "1.5m",
    "5x",
    "-1m",
    "m",
    "99999999999999999999s",
];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "65535",
    "65536",
    "-1",
    "1e3",
    "18446744073709551616",
    "x",
];
const PERIOD_SPECS: &[&str] = &[
    "",
    "wd {Mon-Fri}",
    "wd {Mon-Fri} hr {9am-5pm}",
    "hr {6pm-8am}",
    "wd {Sat Sun}, hr {0-6}",
    "yr {99-1972}",
    "wk {1 3 5} md {1-15}",
    "none",
    "hr {25}",
    "wd {",
    "hr {}",
    ",",
    "wd {mon-wed-fri}",
    "night: hr {6pm-8am}",
    "label:",
    "minute {0-59} sec {0}",
];
const DEPEND_EXPRESSIONS: &[&str] = &[
    "g:s && h:t",
    "SELF:u",
    "!(g:s || h:t) and web:http",
    "g:s h:t",
    "not g:s or h:t",
    "g:s & h:t",
    "((g:s)",
    "g",
    "",
    "g:nope",
    "nowhere:s",
];
const MONITORS: &[&str] = &[
    "tcp.monitor -p 80",
    "tcp.monitor",
    "http.monitor -u /index.html",
    "fping.monitor",
    "ping.monitor",
    "missing.monitor --flag",
    "tcp.monitor \"unterminated",
    "tcp.monitor 'a b' \"c\\\"d\"",
    "/usr/lib/mon/mon.d/x.monitor;",
    "",
];
const ALERTS: &[&str] = &[
    "mail.alert x@y",
    "mail.alert",
    "file.alert /tmp/x",
    "lvs.alert -V 10.0.0.1:80 -R 10.0.0.2",
    "missing.alert",
    "exit=1-3 mail.alert x@y",
    "exit=9-2 mail.alert x@y",
    "mail.alert 'x@y",
];

fn pick(items: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(items)
        .prop_map(str::to_string)
        .boxed()
}

fn words(items: &'static [&'static str], max: usize) -> BoxedStrategy<String> {
    proptest::collection::vec(proptest::sample::select(items), 0..=max)
        .prop_map(|w| w.join(" "))
        .boxed()
}

/// Any text of one line: printable unicode, then anything but newlines.
fn junk() -> BoxedStrategy<String> {
    prop_oneof![printable(), "[^\n]{0,20}"].boxed()
}

/// Printable ASCII or unicode letters, digits and symbols (no control characters).
fn printable() -> BoxedStrategy<String> {
    prop_oneof!["[ -~]{0,30}", "[\\p{L}\\p{N}\\p{S}{}:=,\\- ]{0,20}"].boxed()
}

fn any_keyword() -> BoxedStrategy<String> {
    let all: Vec<&'static str> = GLOBALS
        .iter()
        .chain(SERVICE_KEYWORDS)
        .chain(PERIOD_KEYWORDS)
        .chain(&["hostgroup", "watch", "service", "period", "view", "alias"])
        .copied()
        .collect();
    proptest::sample::select(all)
        .prop_map(str::to_string)
        .boxed()
}

fn global_value() -> BoxedStrategy<String> {
    prop_oneof![
        pick(NUMBERS),
        pick(DURATIONS),
        pick(&[
            "yes",
            "no",
            "a",
            "m",
            "/var/lib/mon",
            "rel/dir",
            "a:b:c",
            "127.0.0.1",
            "getpwnam,pam",
            "prefer",
            ""
        ]),
        pick(PERIOD_SPECS),
        junk(),
    ]
    .boxed()
}

/// One mon.cf line (without indentation or continuation).
fn mon_line() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (proptest::sample::select(GLOBALS), pick(&[" = ", "=", " =", " "]), global_value())
            .prop_map(|(name, eq, value)| format!("{name}{eq}{value}")),
        3 => (pick(GROUPS), words(HOSTS, 4)).prop_map(|(g, hosts)| format!("hostgroup {g} {hosts}")),
        2 => words(HOSTS, 3),
        3 => pick(GROUPS).prop_map(|g| format!("watch {g}")),
        3 => pick(SERVICES).prop_map(|s| format!("service {s}")),
        2 => pick(DURATIONS).prop_map(|d| format!("interval {d}")),
        2 => pick(MONITORS).prop_map(|m| format!("monitor {m}")),
        2 => pick(PERIOD_SPECS).prop_map(|p| format!("period {p}")),
        2 => (pick(&["alert", "upalert", "startupalert", "ackalert", "disablealert"]), pick(ALERTS))
            .prop_map(|(kind, alert)| format!("{kind} {alert}")),
        1 => pick(DURATIONS).prop_map(|d| format!("alertevery {d}")),
        1 => pick(DURATIONS).prop_map(|d| format!("alertevery {d} summary")),
        1 => (pick(NUMBERS), pick(DURATIONS)).prop_map(|(n, d)| format!("alertafter {n} {d}")),
        1 => pick(NUMBERS).prop_map(|n| format!("alertafter {n}")),
        1 => pick(NUMBERS).prop_map(|n| format!("numalerts {n}")),
        2 => (pick(&["depend", "alertdepend", "monitordepend"]), pick(DEPEND_EXPRESSIONS))
            .prop_map(|(k, e)| format!("{k} {e}")),
        1 => words(HOSTS, 3).prop_map(|h| format!("exclude_hosts {h}")),
        1 => pick(PERIOD_SPECS).prop_map(|p| format!("exclude_period {p}")),
        1 => junk().prop_map(|t| format!("description {t}")),
        1 => (pick(GROUPS), words(GROUPS, 3)).prop_map(|(v, m)| format!("view {v} {m} g:s")),
        1 => (pick(GROUPS), junk()).prop_map(|(a, t)| format!("alias {a} {t}")),
        1 => ("[A-Z_]{1,6}", junk()).prop_map(|(name, value)| format!("{name}={value}")),
        2 => (any_keyword(), junk()).prop_map(|(k, rest)| format!("{k} {rest}")),
        3 => Just(String::new()),
        1 => junk().prop_map(|t| format!("# {t}")),
        2 => junk(),
    ]
    .boxed()
}

/// A line with indentation and sometimes a `\` continuation onto the next.
fn dressed_mon_line() -> BoxedStrategy<String> {
    (
        pick(&["", "", "\t", "\t\t", "    ", " \t"]),
        mon_line(),
        prop_oneof![8 => Just(""), 1 => Just(" \\"), 1 => Just("\\")],
        prop_oneof![9 => Just(""), 1 => Just("\r")],
    )
        .prop_map(|(indent, line, continuation, cr)| format!("{indent}{line}{continuation}{cr}"))
        .boxed()
}

fn mon_soup() -> BoxedStrategy<String> {
    let random =
        proptest::collection::vec(dressed_mon_line(), 0..60).prop_map(|lines| lines.join("\n"));
    prop_oneof![random, mutated(MON_SKELETON, dressed_mon_line)].boxed()
}

/// An edit applied to a skeleton.
#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, String),
    Remove(usize),
    Replace(usize, String),
}

/// `skeleton` with one to five lines inserted, removed or replaced.
fn mutated(
    skeleton: &'static [&'static str],
    line: fn() -> BoxedStrategy<String>,
) -> BoxedStrategy<String> {
    let edit = prop_oneof![
        (any::<usize>(), line()).prop_map(|(at, line)| Edit::Insert(at, line)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), line()).prop_map(|(at, line)| Edit::Replace(at, line)),
    ];
    (proptest::collection::vec(edit, 1..6), any::<bool>())
        .prop_map(move |(edits, final_newline)| {
            let mut lines: Vec<String> = skeleton.iter().map(|l| l.to_string()).collect();
            for edit in edits {
                match edit {
                    Edit::Insert(at, line) => {
                        let at = at % (lines.len() + 1);
                        lines.insert(at, line);
                    }
                    Edit::Remove(at) if !lines.is_empty() => {
                        let at = at % lines.len();
                        lines.remove(at);
                    }
                    Edit::Replace(at, line) if !lines.is_empty() => {
                        let at = at % lines.len();
                        lines[at] = line;
                    }
                    Edit::Remove(_) | Edit::Replace(..) => {}
                }
            }
            let mut text = lines.join("\n");
            if final_newline {
                text.push('\n');
            }
            text
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// TOML soups (the vocabulary of etc/keepmon.toml and src/config/native/).

const TOML_TABLES: &[&str] = &[
    "[daemon]",
    "[mon_protocol]",
    "[metrics]",
    "[web]",
    "[lua]",
    "[mail]",
    "[mail.smtp]",
    "[hostgroups]",
    "[actions.log]",
    "[actions.ops]",
    "[actions.page]",
    "[watch.g.s]",
    "[watch.h.t]",
    "[watch.g]",
    "[watch.g.s.monitor]",
    "[watch.g.s.env]",
    "[[watch.g.s.period]]",
    "[[watch.h.u.period]]",
    "[[watch.g.s.alert]]",
    "[virtual_servers.web]",
    "[[virtual_servers.web.real_servers]]",
    "[vrrp.vi_1]",
    "[[vrrp.vi_1.track]]",
    "[\"quoted key\".\"ü\"]",
    "[daemon.statedir]",
    "[hostgroups.g]",
];

const TOML_KEYS: &[&str] = &[
    // [daemon]
    "statedir",
    "logdir",
    "control_socket",
    "maxprocs",
    "randstart",
    "monitor_timeout",
    "builtin_monitors",
    "alertdir",
    "mondir",
    "exclude_period",
    "dtlogging",
    // [mon_protocol], [metrics], [web], [lua], [mail]
    "listen",
    "tokens_file",
    "trap_listen",
    "clientallow",
    "authtype",
    "instructions",
    "memory",
    "from",
    "sendmail",
    "digest_window",
    "host",
    "port",
    "tls",
    // [hostgroups]
    "g",
    "h",
    // actions
    "type",
    "path",
    "to",
    "routes",
    "acls",
    "command",
    "args",
    "script",
    "virtual",
    "real",
    // watches
    "description",
    "interval",
    "schedule",
    "monitor",
    "timeout",
    "depend",
    "hostdepend",
    "exclude_hosts",
    "redistribute",
    "rise",
    "fall",
    "alert",
    "upalert",
    "startupalert",
    "alertevery",
    "alertafter",
    "numalerts",
    "alertexitrange",
    "label",
    "spec",
    "every",
    "mode",
    "count",
    "within",
    "status",
    "expect",
    // virtual servers, vrrp
    "scheduler",
    "dataplane",
    "health",
    "real_servers",
    "addr",
    "weight",
    "admin",
    "forward",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "virtual_ipaddress",
    "unicast_peer",
    "track",
    "notify",
    // not keys anywhere
    "\"quoted\"",
    "a.b.c",
];

/// Lines that are not TOML at all; each one stops the front end at the
/// syntax check, so they are rare in the soups.
const TOML_BROKEN: &[&str] = &[
    "[",
    "[a.b",
    "[[]]",
    "[daemon] junk",
    "ü = 1",
    " = 1",
    "interval \"5m\"",
    "interval =",
    "port = 1e400",
    "description = \"\"\"",
    "description = '\'\'multi",
    "description = \"\\uD800\"",
    "monitor = { type = \"tcp\",",
    "a = 1 b = 2",
    "\u{0}",
];

const TOML_VALUES: &[&str] = &[
    "[{ to = \"web\", if = \"{ path_beg /a } || !{ src 10.0.0.0/8 }\" }, { to = \"web\" }]",
    "[{ to = \"web\", unless = \"a b\" }]",
    "{ a = [\"hdr(host) -i x\"], b = [\"path -m found\", \"method GET\"] }",
    "3",
    "0",
    "-1",
    "80",
    "65536",
    "4294967296",
    "9223372036854775807",
    "inf",
    "nan",
    "true",
    "\"5m\"",
    "\"30s\"",
    "\"1m30s\"",
    "\"500ms\"",
    "\"5x\"",
    "\"0s\"",
    "\"99999999999999999999d\"",
    "\"\"",
    "\"state\"",
    "\"/var/lib/keepmon\"",
    "\"127.0.0.1:2583\"",
    "\"[::1]:80\"",
    "\"10.0.0.100/24\"",
    "\"eth0\"",
    "\"tcp.monitor\"",
    "\"wrr\"",
    "\"prefer\"",
    "\"starttls\"",
    "\"mail\"",
    "\"file\"",
    "\"wd {Mon-Fri} hr {9am-5pm}\"",
    "\"hr {25}\"",
    "\"g:s && h:t\"",
    "\"SELF:u\"",
    "\"((\"",
    "\"*/5 * * * *\"",
    "\"1-3\"",
    "'^127\\.0\\.0\\.1$'",
    "'(['",
    "[\"log\"]",
    "[\"ops\", \"nope\"]",
    "[\"a\", \"b\"]",
    "[\"a\", 1]",
    "[]",
    "{}",
    "{ type = \"tcp\", port = 80 }",
    "{ type = \"tcp\", port = 0, timeout = \"2s\" }",
    "{ type = \"http\", port = 80, path = \"/\", status = [200, \"3xx\"] }",
    "{ type = \"exec\", command = \"tcp.monitor\", args = [\"-p\", \"80\"] }",
    "{ type = \"lua\", script = \"x.lua\" }",
    "{ type = \"ping\", count = -1 }",
    "{ type = \"smtp\", port = 25, helo_name = \"lb1\", timeout = \"3s\" }",
    "{ type = \"smtp\", helo_name = \"a b\" }",
    "{ type = \"udp\", port = 53, payload = \"0a ff\", require_reply = \"xx 0a\", max_reply_length = 9 }",
    "{ type = \"udp\", port = 7, require_reply = true, min_reply_length = -1 }",
    "{ type = \"dns\", query_type = \"aaaa\", name = \"www.x.test\" }",
    "{ type = \"dns\", name = \"a..b\" }",
    "{ type = \"nope\" }",
    "{ type = 3 }",
    "{ every = \"1h\", mode = \"summary\" }",
    "{ count = 3, within = \"10m\" }",
    "[{ action = \"log\", exit = \"1-3\" }, \"ops\"]",
    "[{ addr = \"127.0.0.2:8080\", weight = 2 }, { host = \"b\", admin = \"drain\" }]",
    "[{ service = \"g:s\", weight = -60 }, { quorum = \"g:s\" }]",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "\"\\u0000\"",
    "\"ü\"",
];

fn toml_line() -> BoxedStrategy<String> {
    // Weighted so that most soups are valid TOML: a syntax error stops the
    // front end before it reads any definition.
    prop_oneof![
        4 => pick(TOML_TABLES),
        12 => (pick(TOML_KEYS), pick(TOML_VALUES)).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => (pick(TOML_KEYS), printable())
            .prop_map(|(k, v)| format!("{k} = \"{}\"", v.replace(['"', '\\'], ""))),
        2 => (pick(TOML_KEYS), words(HOSTS, 3)).prop_map(|(k, hosts)| {
            let quoted: Vec<String> = hosts.split_whitespace().map(|h| format!("{h:?}")).collect();
            format!("{k} = [{}]", quoted.join(", "))
        }),
        2 => Just(String::new()),
        1 => printable().prop_map(|t| format!("# {t}")),
        1 => prop_oneof![pick(TOML_BROKEN), junk()],
    ]
    .boxed()
}

fn dressed_toml_line() -> BoxedStrategy<String> {
    (pick(&["", "", "", "  ", "\t"]), toml_line())
        .prop_map(|(indent, line)| format!("{indent}{line}"))
        .boxed()
}

fn toml_soup() -> BoxedStrategy<String> {
    let random = (
        proptest::collection::vec(dressed_toml_line(), 0..30),
        pick(&["\n", "\n", "\r\n"]),
    )
        .prop_map(|(lines, newline)| lines.join(&newline));
    prop_oneof![random, mutated(TOML_SKELETON, dressed_toml_line)].boxed()
}

// ---------------------------------------------------------------------------
// keepalived.conf soups (the vocabulary of keepalived's keyword tables).

/// A small keepalived.conf that compiles; the mutated soups start from it.
const KEEPALIVED_SKELETON: &[&str] = &[
    "! Configuration File for keepalived",
    "$IF=eth0",
    "global_defs {",
    "   notification_email {",
    "     ops@example.com",
    "   }",
    "   smtp_server 127.0.0.1",
    "   router_id LB_1",
    "}",
    "vrrp_script chk {",
    "    script \"/bin/true\"",
    "    interval 2",
    "    weight -20",
    "}",
    "vrrp_instance VI_1 {",
    "    state MASTER",
    "    interface $IF",
    "    virtual_router_id 51",
    "    priority 101",
    "    advert_int 1",
    "    authentication {",
    "        auth_type PASS",
    "        auth_pass 1111",
    "    }",
    "    virtual_ipaddress { 10.0.0.1/24 dev eth0 }",
    "    track_script {",
    "        chk weight 10",
    "    }",
    "    notify \"/bin/true x\"",
    "    smtp_alert",
    "}",
    "virtual_server 10.0.0.1 80 {",
    "    delay_loop 6",
    "    lb_algo rr",
    "    lb_kind NAT",
    "    protocol TCP",
    "    real_server 10.0.0.2 80 {",
    "        weight 1",
    "        TCP_CHECK {",
    "            connect_timeout 3",
    "        }",
    "    }",
    "}",
];

const KEEPALIVED_KEYWORDS: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "virtual_server",
    "real_server",
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "PING_CHECK",
    "SMTP_CHECK",
    "helo_name",
    "host",
    "UDP_CHECK",
    "payload",
    "require_reply",
    "min_reply_length",
    "max_reply_length",
    "DNS_CHECK",
    "type",
    "name",
    "vrrp_track_process",
    "track_process",
    "process",
    "param_match",
    "quorum",
    "quorum_max",
    "fork_delay",
    "full_command",
    "url",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "track_script",
    "track_interface",
    "unicast_peer",
    "notification_email",
    "group",
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt_delay",
    "auth_type",
    "auth_pass",
    "unicast_src_ip",
    "garp_master_delay",
    "garp_master_repeat",
    "notify",
    "notify_master",
    "smtp_alert",
    "script",
    "interval",
    "timeout",
    "weight",
    "rise",
    "fall",
    "delay_loop",
    "lb_algo",
    "lb_kind",
    "protocol",
    "persistence_timeout",
    "persistence_granularity",
    "quorum",
    "hysteresis",
    "sorry_server",
    "inhibit_on_failure",
    "connect_timeout",
    "connect_port",
    "connect_ip",
    "retry",
    "delay_before_retry",
    "path",
    "status_code",
    "digest",
    "regex",
    "misc_path",
    "smtp_server",
    "smtp_connect_timeout",
    "router_id",
    "vrrp_version",
    "keepmon_dataplane",
    "include",
    "includem",
    "bogus_word",
];

const KEEPALIVED_VALUES: &[&str] = &[
    "0a ff",
    "5x X0 \t1",
    "www.x.test",
    "a..b",
    "AAAA",
    "0",
    "1",
    "51",
    "255",
    "256",
    "-20",
    "1.5",
    "0.001",
    "x",
    "10abc",
    "MASTER",
    "BACKUP",
    "PASS",
    "AH",
    "eth0",
    "$IF",
    "${IF}",
    "$NOPE",
    "10.0.0.1",
    "10.0.0.1/24",
    "10.0.0.1/33",
    "::1",
    "fe80::1/64",
    "10.0.0.2 80",
    "fwmark 3",
    "TCP",
    "UDP",
    "SCTP",
    "NAT",
    "DR",
    "TUN",
    "rr",
    "wlc",
    "mh",
    "255.255.255.0",
    "\"/bin/true -x\"",
    "/bin/true -x",
    "'a b'",
    "\"unterminated",
    "200 300-399",
    "weight 5 reverse",
    "dev eth0 label eth0:1",
    "*.conf",
    "/nonexistent/*.conf",
    "{a,b}.conf",
    "on",
    "off",
    "",
];

fn keepalived_line() -> BoxedStrategy<String> {
    prop_oneof![
        6 => (pick(KEEPALIVED_KEYWORDS), pick(KEEPALIVED_VALUES)).prop_map(|(k, v)| format!("{k} {v}")),
        3 => (pick(KEEPALIVED_KEYWORDS), pick(KEEPALIVED_VALUES)).prop_map(|(k, v)| format!("{k} {v} {{")),
        2 => (pick(KEEPALIVED_KEYWORDS), pick(KEEPALIVED_VALUES)).prop_map(|(k, v)| format!("{k}{{ {v} }}")),
        3 => pick(&["{", "}", "} }", "{ }", "}}", "{{"]),
        1 => ("[A-Z_]{1,4}", pick(KEEPALIVED_VALUES)).prop_map(|(n, v)| format!("${n}={v}")),
        1 => pick(KEEPALIVED_VALUES).prop_map(|v| format!("@lb1 {v}")),
        1 => junk().prop_map(|t| format!("! {t}")),
        1 => junk(),
        1 => Just(String::new()),
    ]
    .boxed()
}

fn keepalived_soup() -> BoxedStrategy<String> {
    let random =
        proptest::collection::vec(keepalived_line(), 0..60).prop_map(|lines| lines.join("\n"));
    prop_oneof![random, mutated(KEEPALIVED_SKELETON, keepalived_line)].boxed()
}

// ---------------------------------------------------------------------------
// haproxy.cfg soups.

const HAPROXY_SKELETON: &[&str] = &[
    "global",
    "    daemon",
    "    log /dev/log local0",
    "defaults",
    "    mode http",
    "    timeout connect 5s",
    "    timeout client 30s",
    "    timeout server 30s",
    "    option forwardfor",
    "listen app",
    "    bind 127.0.0.1:8080",
    "    balance roundrobin",
    "    option httpchk GET /health",
    "    http-check expect status 200",
    "    cookie SRV insert indirect nocache",
    "    server a 127.0.0.1:8001 check inter 2s cookie a",
    "    server b 127.0.0.1:8002 check inter 2s cookie b",
    "frontend fe",
    "    bind 127.0.0.1:8081",
    "    mode tcp",
    "    default_backend be",
    "backend be",
    "    mode tcp",
    "    balance source",
    "    server c 127.0.0.1:9001 check",
    "    server d 127.0.0.1:9002 check",
    "frontend www",
    "    bind 127.0.0.1:8082",
    "    mode http",
    "    acl is_api hdr(host) -i api.example.com",
    "    acl st path_beg /static /img",
    "    use_backend api if is_api !st || { src 10.0.0.0/8 }",
    "    use_backend api unless { path_end .css } st",
    "    default_backend web",
    "backend api",
    "    mode http",
    "    server e 127.0.0.1:9003 check",
    "backend web",
    "    mode http",
    "    server f 127.0.0.1:9004",
];

const HAPROXY_KEYWORDS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "bind",
    "mode",
    "balance",
    "server",
    "default-server",
    "option",
    "timeout",
    "cookie",
    "default_backend",
    "use_backend",
    "retries",
    "maxconn",
    "http-check",
    "tcp-check",
    "stats",
    "log",
    "daemon",
    "contimeout",
    "redispatch",
    "nbproc",
    "crt-base",
    "errorfile",
    "acl",
    "balanc",
    "\"quoted\"",
    "'single'",
];

const HAPROXY_VALUES: &[&str] = &[
    "",
    "api if is_api",
    "api unless st is_api or !{ path_reg ^/a.*$ }",
    "web if { hdr_dom(host) -i example.com } || ! st",
    "api if { method -m beg -- -G }",
    "api if {",
    "is_api path_beg /api",
    "st src 127.0.0.2 ::1",
    "x hdr(x-y) -m found",
    "y path -m foo",
    "app",
    "fe from d",
    "127.0.0.1:80",
    ":80",
    "[::1]:80",
    "::1:80",
    "*:443 ssl crt x.pem",
    "http",
    "tcp",
    "health",
    "roundrobin",
    "static-rr",
    "source",
    "uri",
    "url_param id",
    "hdr(host)",
    "first",
    "random",
    "a 127.0.0.1:1 check inter 1s rise 1 fall 1 weight 5",
    "b 127.0.0.1 check port 81",
    "c 127.0.0.1:2 backup",
    "d 127.0.0.1:3 chek",
    "httpchk GET / HTTP/1.1\\r\\nHost:\\ x",
    "tcp-check",
    "forwardfor except 10.0.0.0/8",
    "redispatch",
    "httpclose",
    "connect 5s",
    "client 1m",
    "server 10x",
    "queue 1s",
    "SRV insert indirect nocache",
    "SRV prefix",
    "expect status 200-299",
    "expect rstring (",
    "expect string ok",
    "send PING\\r\\n",
    "connect port 1",
    "be",
    "\"${HOME}\"",
    "\"${A-b}\"",
    "\"unterminated",
    "\\x4",
    "# comment",
    "1",
    "0",
    "-1",
    "99999999999",
];

fn haproxy_line() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (pick(HAPROXY_KEYWORDS), pick(HAPROXY_VALUES)).prop_map(|(k, v)| format!("    {k} {v}")),
        2 => (pick(HAPROXY_KEYWORDS), pick(HAPROXY_VALUES)).prop_map(|(k, v)| format!("{k} {v}")),
        1 => junk(),
        1 => Just(String::new()),
    ]
    .boxed()
}

fn haproxy_soup() -> BoxedStrategy<String> {
    let random =
        proptest::collection::vec(haproxy_line(), 0..60).prop_map(|lines| lines.join("\n"));
    prop_oneof![random, mutated(HAPROXY_SKELETON, haproxy_line)].boxed()
}
