//! Config compile never panics: generated mon.cf and TOML line soups always come back as a config or as located errors.
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
//! * `Ok`: reloading the same text is no change (`diff(c, c)` is empty).

use std::path::Path;

use keepmon::config::moncf::{GLOBALS, PERIOD_KEYWORDS, SERVICE_KEYWORDS};
use keepmon::config::{CompileError, Compiled, Diagnostic, FileSystem, Format, compile_str, diff};
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

const MON_CASES: u32 = 256;
const TOML_CASES: u32 = 256;

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
fn edge_texts_keep_the_contract() {
    for text in ["", "\n", "\n\n\n", " \t\n", "\\", "#", "\u{feff}", "\r\n"] {
        for format in [Format::Mon, Format::Toml] {
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
    prop_oneof![
        "[ -~]{0,30}",
        "[\\p{L}\\p{N}\\p{S}{}:=,\\- ]{0,20}",
        "[^\n]{0,20}",
    ]
    .boxed()
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

/// An edit applied to the skeleton.
#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, String),
    Remove(usize),
    Replace(usize, String),
}

fn mon_soup() -> BoxedStrategy<String> {
    let random =
        proptest::collection::vec(dressed_mon_line(), 0..60).prop_map(|lines| lines.join("\n"));
    let edit = prop_oneof![
        (any::<usize>(), dressed_mon_line()).prop_map(|(at, line)| Edit::Insert(at, line)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), dressed_mon_line()).prop_map(|(at, line)| Edit::Replace(at, line)),
    ];
    let mutated =
        (proptest::collection::vec(edit, 1..6), any::<bool>()).prop_map(|(edits, newline)| {
            let mut lines: Vec<String> = MON_SKELETON.iter().map(|l| l.to_string()).collect();
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
            if newline {
                text.push('\n');
            }
            text
        });
    prop_oneof![random, mutated].boxed()
}

// ---------------------------------------------------------------------------
// TOML soups.

const TOML_TABLES: &[&str] = &[
    "[daemon]",
    "[hostgroups]",
    "[watch.g.s]",
    "[watch.h.t]",
    "[watch.g]",
    "[[watch.g.s.period]]",
    "[[watch.g.s.alert]]",
    "[watch.g.s.monitor]",
    "[mail]",
    "[mail.smtp]",
    "[virtual_server.web]",
    "[[virtual_server.web.real]]",
    "[vrrp.vi_1]",
    "[lua]",
    "[auth]",
    "[mon]",
    "[periods]",
    "[\"quoted key\".ü]",
    "[",
    "[a.b",
    "[[]]",
    "[daemon] junk",
    "[daemon]",
];

const TOML_KEYS: &[&str] = &[
    "maxprocs",
    "statedir",
    "logdir",
    "mondir",
    "alertdir",
    "control_socket",
    "metrics_listen",
    "mon_listen",
    "g",
    "h",
    "hosts",
    "interval",
    "monitor",
    "type",
    "port",
    "path",
    "args",
    "period",
    "when",
    "alert",
    "alerts",
    "upalert",
    "alertevery",
    "alertafter",
    "numalerts",
    "depend",
    "description",
    "timeout",
    "rise",
    "fall",
    "schedule",
    "exclude_hosts",
    "host",
    "from",
    "to",
    "vip",
    "address",
    "scheduler",
    "weight",
    "vrid",
    "priority",
    "interface",
    "\"quoted\"",
    "a.b.c",
    "ü",
    "",
];

const TOML_VALUES: &[&str] = &[
    "3",
    "0",
    "-1",
    "80",
    "65536",
    "1e400",
    "inf",
    "nan",
    "true",
    "\"5m\"",
    "\"30s\"",
    "\"5x\"",
    "\"\"",
    "\"/var/lib/keepmon\"",
    "\"127.0.0.1:2583\"",
    "\"tcp.monitor -p 80\"",
    "\"wd {Mon-Fri} hr {9am-5pm}\"",
    "\"g:s && h:t\"",
    "\"((\"",
    "\"mail.alert x@y\"",
    "[\"a\", \"b\"]",
    "[\"a\", 1]",
    "[]",
    "{}",
    "{type=\"tcp\",port=80}",
    "{type=\"http\",port=80,path=\"/\"}",
    "{type=\"exec\",path=\"tcp.monitor\",args=[\"-p\",\"80\"]}",
    "{type=\"lua\",script=\"x.lua\"}",
    "{type=\"nope\"}",
    "{ type = \"mail\", to = [\"x@y\"] }",
    "{ when = \"wd {Mon-Fri}\", alert = [\"mail.alert x@y\"] }",
    "[{type=\"tcp\"}, {}]",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "'''multi",
    "\"\"\"",
    "\"\\u0000\"",
    "\"\\uD800\"",
    "\"ü\"",
    "",
];

fn toml_line() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pick(TOML_TABLES),
        8 => (pick(TOML_KEYS), pick(&[" = ", "=", " "]), pick(TOML_VALUES))
            .prop_map(|(k, eq, v)| format!("{k}{eq}{v}")),
        2 => (pick(TOML_KEYS), junk()).prop_map(|(k, v)| format!("{k} = \"{}\"", v.replace(['"', '\\'], ""))),
        2 => (pick(TOML_KEYS), words(HOSTS, 3)).prop_map(|(k, hosts)| {
            let quoted: Vec<String> = hosts.split_whitespace().map(|h| format!("{h:?}")).collect();
            format!("{k} = [{}]", quoted.join(", "))
        }),
        2 => Just(String::new()),
        1 => junk().prop_map(|t| format!("# {t}")),
        2 => junk(),
    ]
    .boxed()
}

fn toml_soup() -> BoxedStrategy<String> {
    (
        proptest::collection::vec((pick(&["", "", "  ", "\t"]), toml_line()), 0..50),
        pick(&["\n", "\r\n"]),
    )
        .prop_map(|(lines, newline)| {
            let lines: Vec<String> = lines
                .into_iter()
                .map(|(indent, line)| indent + &line)
                .collect();
            lines.join(&newline)
        })
        .boxed()
}
