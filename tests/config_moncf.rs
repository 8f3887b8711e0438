//! mon.cf compatibility: mon's grammar compiles to the model, and every error is reported with file:line:col.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use keepmon::config::model::{
    Action, AlertAfter, AlertEveryMode, BuiltinPolicy, DepBehavior, ExitRange, Forward, Monitor,
    Protocol,
};
use keepmon::config::{Compiled, Format, compile_str};

use common::FakeFs;

fn compile(text: &str) -> Result<Compiled, Vec<String>> {
    compile_with(text, &FakeFs::default())
}

fn compile_with(text: &str, fs: &FakeFs) -> Result<Compiled, Vec<String>> {
    compile_str(text, Path::new("mon.cf"), Format::Mon, fs)
        .map_err(|e| e.diagnostics.iter().map(|d| d.to_string()).collect())
}

fn ok(text: &str) -> Compiled {
    match compile(text) {
        Ok(c) => c,
        Err(errors) => panic!(
            "expected the config to compile, got:\n{}",
            errors.join("\n")
        ),
    }
}

fn warnings(c: &Compiled) -> Vec<String> {
    c.warnings.warnings().map(|d| d.to_string()).collect()
}

/// Assert the compile fails with exactly these error lines (warnings excluded).
fn check_errors(text: &str, expected: &[&str]) {
    let errors: Vec<String> = match compile(text) {
        Ok(_) => panic!("expected errors {expected:?}, but the config compiled"),
        Err(all) => all
            .into_iter()
            .filter(|d| d.contains(": error: "))
            .collect(),
    };
    assert_eq!(errors, expected, "errors for:\n{text}");
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("etc/mon")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn debian_style_config_compiles() {
    let c = ok(&example("debian-style.cf"));
    let cfg = &c.config;
    assert_eq!(cfg.settings.maxprocs, 20);
    assert_eq!(cfg.settings.randstart, Some(Duration::from_secs(60)));
    assert!(cfg.settings.dtlogging);
    assert_eq!(cfg.settings.dtlogfile, PathBuf::from("/var/log/mon/dtlog"));
    assert_eq!(
        cfg.settings.mondir,
        vec![
            PathBuf::from("/usr/lib/mon/mon.d"),
            PathBuf::from("/usr/lib/mon/mon-local.d")
        ]
    );
    assert_eq!(
        cfg.settings.mon_listener,
        Some("127.0.0.1:2583".parse().unwrap())
    );
    assert_eq!(
        cfg.settings.clientallow,
        vec!["127\\.0\\.0\\.1".to_string()]
    );
    let watch = &cfg.watches["localhost"];
    assert_eq!(
        watch.services.keys().collect::<Vec<_>>(),
        vec!["http", "ping", "smtp", "trap"]
    );
    let trap = &watch.services["trap"];
    assert_eq!(trap.traptimeout, Some(Duration::from_secs(600)));
    assert_eq!(trap.periods.len(), 1);
    assert_eq!(trap.periods[0].key, "", "a bare `period` means always");
    let ping = &watch.services["ping"];
    assert_eq!(ping.periods[0].key, "wd {Mon-Fri} hr {7am-10pm}");
    assert_eq!(
        ping.periods[0].alertevery.unwrap().every,
        Duration::from_secs(3600)
    );
    match &ping.periods[0].alerts[0].action {
        Action::Mail(m) => assert_eq!(m.to, vec!["root@localhost"]),
        other => panic!("mail.alert should be the built-in mail action, got {other:?}"),
    }
    match &watch.services["smtp"].monitor {
        Some(Monitor::Exec {
            name,
            args,
            append_hosts,
            ..
        }) => {
            assert_eq!(name, "tcp.monitor");
            assert_eq!(args, &["-p", "25", "-t", "60"]);
            assert!(append_hosts);
        }
        other => panic!("unexpected monitor {other:?}"),
    }
}

#[test]
fn classic_example_config_compiles() {
    let c = ok(&example("example.cf"));
    let cfg = &c.config;
    assert_eq!(cfg.hostgroups["routers"].hosts, vec!["gw1", "gw2", "gw3"]);
    assert_eq!(
        cfg.hostgroups["serversbd2"].hosts,
        vec!["dns-yp2", "foo2", "bar2", "ola2", "monkey2"],
        "a `\\` continuation joins the next line"
    );
    assert_eq!(cfg.aliases["servers"].len(), 2);
    assert_eq!(
        cfg.views["core"],
        vec!["routers", "serversbd1", "routers:ping"]
    );

    let routers = &cfg.watches["routers"].services["ping"];
    assert_eq!(routers.periods[1].key, "LOGFILE");
    assert_eq!(
        routers.periods[0].alertevery.unwrap().mode,
        AlertEveryMode::ObserveDetail
    );
    match &routers.periods[0].upalerts[0].action {
        Action::Mail(m) => {
            assert_eq!(m.subject.as_deref(), Some("router back up"));
            assert_eq!(m.to, vec!["mis"]);
        }
        other => panic!("{other:?}"),
    }
    match &routers.periods[1].alerts[0].action {
        Action::File { path } => assert_eq!(path, &PathBuf::from("/var/log/mon/routers.log")),
        other => panic!("{other:?}"),
    }

    let telnet = &cfg.watches["serversbd1"].services["telnet"];
    assert_eq!(telnet.failure_interval, Some(Duration::from_secs(120)));
    assert_eq!(telnet.exclude_hosts, vec!["bar1"]);
    assert_eq!(telnet.randskew, Some(Duration::from_secs(30)));
    assert_eq!(
        telnet.depend.as_ref().unwrap().to_string(),
        "serversbd1:ping && routers:ping",
        "SELF is resolved to the service's own watch"
    );
    let office = &telnet.periods[0];
    assert_eq!(
        office.alertafter,
        Some(AlertAfter::Window {
            count: 2,
            window: Duration::from_secs(1800)
        })
    );
    assert_eq!(office.alerts[0].exit, Some(ExitRange { low: 1, high: 5 }));
    assert_eq!(office.numalerts, Some(5));
    let off_hours = &telnet.periods[1];
    assert_eq!(off_hours.key, "off_hours");
    assert_eq!(
        off_hours.alertafter,
        Some(AlertAfter::Duration(Duration::from_secs(3600)))
    );
    assert!(off_hours.no_comp_alerts);

    let bd2 = &cfg.watches["serversbd2"];
    assert_eq!(
        bd2.services["ping"].depend.as_ref().unwrap().to_string(),
        "routers:ping && serversbd1:ping"
    );
    assert_eq!(
        bd2.services["ping"].periods[0].alertafter,
        Some(AlertAfter::Consecutive(3))
    );
    let http = &bd2.services["http"];
    assert_eq!(http.dep_behavior, DepBehavior::Monitor);
    assert!(http.unack_summary, "a bare unack_summary means yes");
    assert_eq!(http.env["APP_ENV"], "production");
    assert_eq!(
        http.periods[0].alertevery.unwrap().mode,
        AlertEveryMode::Strict
    );
    assert_eq!(
        http.periods[0].alertexitrange,
        Some(ExitRange { low: 1, high: 3 })
    );

    match &cfg.watches["netapps"].services["freespace"].monitor {
        Some(Monitor::Exec {
            append_hosts, args, ..
        }) => {
            assert!(!append_hosts, "a trailing ;; means no hosts are appended");
            assert_eq!(args, &["/vol/vol0:10%"]);
        }
        other => panic!("{other:?}"),
    }

    let w = warnings(&c);
    assert!(
        w.iter()
            .any(|w| w.contains("example.cf") || w.contains("space-separated depend")),
        "the legacy depend form is warned about: {w:?}"
    );
}

#[test]
fn seed_style_lvs_config_compiles_to_table_edits() {
    let c = ok(&example("lvs.cf"));
    let rs3 = &c.config.watches["rs3"].services["http"];
    let Action::Lb(edit) = &rs3.periods[0].upalerts[0].action else {
        panic!("lvs.alert should be a built-in table edit");
    };
    assert_eq!(edit.protocol, Protocol::Tcp);
    assert_eq!(edit.virtual_addr, "192.168.10.100:80".parse().unwrap());
    assert_eq!(
        edit.real_addr,
        "192.168.10.13".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(edit.real_port, Some(8080));
    assert_eq!(edit.weight, Some(2));
    assert_eq!(edit.forward, Some(Forward::DirectRouting));
    assert!(warnings(&c).is_empty(), "{:?}", warnings(&c));
}

/// Debian's own /etc/mon/mon.cf from the `mon` package must compile unchanged.
#[test]
fn debian_package_mon_cf_compiles() {
    let path = Path::new("/etc/mon/mon.cf");
    if !path.exists() {
        let required = std::env::var("KEEPMON_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "/etc/mon/mon.cf is missing: the test command installs Debian's `mon` package"
        );
        eprintln!(
            "!!! NOT RUN: debian_package_mon_cf_compiles needs Debian's `mon` package (/etc/mon/mon.cf)"
        );
        return;
    }
    let compiled = keepmon::config::load(path, None)
        .unwrap_or_else(|e| panic!("Debian's mon.cf failed:\n{}", e.diagnostics));
    assert!(compiled.config.services().count() >= 1);
    assert!(compiled.config.watches.contains_key("localhost"));
}

#[test]
fn missing_blank_lines_are_read_as_meant_with_a_warning() {
    // Copied from a web page without its blank lines: real mon would swallow
    // every line into hostgroup `web` and watch nothing.
    let text = "hostgroup web w1 w2\nhostgroup db d1\nwatch web\n  service http\n    interval 1m\n    monitor http.monitor\n    period\n      alert mail.alert ops\nwatch db\n  service ping\n    interval 1m\n    monitor fping.monitor\n";
    let c = ok(text);
    assert_eq!(c.config.hostgroups["web"].hosts, vec!["w1", "w2"]);
    assert_eq!(c.config.hostgroups["db"].hosts, vec!["d1"]);
    assert_eq!(c.config.watches.len(), 2);
    assert!(c.config.watches["web"].services.contains_key("http"));
    assert!(c.config.watches["db"].services.contains_key("ping"));
    let w = warnings(&c);
    assert!(
        w[0].starts_with("mon.cf:2:1: warning: missing blank line before \"hostgroup db d1\""),
        "{w:?}"
    );
    assert!(w[0].contains("begun at line 1"), "{w:?}");
    assert!(
        w[1].starts_with("mon.cf:3:1: warning: missing blank line before \"watch web\""),
        "{w:?}"
    );
    assert!(w[1].contains("watch nothing"), "{w:?}");
}

#[test]
fn watch_content_inside_a_hostgroup_is_refused() {
    check_errors(
        "hostgroup web w1\n  service http\n",
        &[
            "mon.cf:2:3: error: \"service\" inside hostgroup \"web\" (begun at line 1): mon would read \"service http\" as host names; add the missing blank line and a `watch` line before it",
        ],
    );
}

#[test]
fn a_block_keyword_inside_alias_text_is_ambiguous() {
    let errors = compile("alias a\nsome text\nwatch web\n").unwrap_err();
    assert!(
        errors.iter().any(|e| e.starts_with(
            "mon.cf:3:1: error: \"watch web\" inside alias \"a\" (begun at line 1) is ambiguous"
        )),
        "{errors:?}"
    );
}

#[test]
fn comments_and_continuations_follow_mons_lexer() {
    let text = "# comment\nhostgroup g a \\\n# a comment inside the continuation is dropped first\n    b\\\n  c\n\nwatch g\n  # a comment does not end the block\n  service s\n    description trailing # is part of the value\n    interval 1m\n    monitor tcp.monitor\n";
    let c = ok(text);
    assert_eq!(c.config.hostgroups["g"].hosts, vec!["a", "bc"]);
    assert_eq!(
        c.config.watches["g"].services["s"].description.as_deref(),
        Some("trailing # is part of the value")
    );
}

#[test]
fn every_global_is_accepted() {
    let text = "\
basedir = /opt/mon
cfbasedir = /opt/mon/etc
alertdir = alert.d:/usr/lib/mon/alert.d
mondir = mon.d
luadir = lua
statedir = state.d
logdir = log.d
authfile = auth.cf
authtype = userfile trustlocal
userfile = users.cf
pamservice = mon
serverport = 2600
trapport = 2601
serverbind = ::1
trapbind = 127.0.0.2
clientallow = 127.0.0.1 10\\.1\\.\\d+\\.\\d+
pidfile = /run/mon.pid
maxprocs = 5
histlength = 50
historicfile = history.log
historictime = 1d
randstart = 30s
cltimeout = 60
dtlogging = 1
dtlogfile = dt.log
monerrfile = /tmp/mon.err
dep_recur_limit = 4
dep_behavior = m
dep_memory = 5m
unack_summary = yes
syslog_facility = local0
startupalerts_on_reset = yes
monremote = /usr/local/bin/mirror
exclude_period = hr {1am-2am}
control_socket = /run/keepmon.sock
metrics_listen = 127.0.0.1:9583
web_listen = 127.0.0.1:9584
builtin_monitors = never
builtin_alerts = fallback
monitor_timeout = 2m
shutdown_grace = 5s
";
    let c = ok(&format!(
        "{text}\nhostgroup g h\n\nwatch g\n  service s\n    interval 1m\n    monitor x.monitor\n"
    ));
    let s = &c.config.settings;
    assert_eq!(s.basedir, PathBuf::from("/opt/mon"));
    assert_eq!(
        s.alertdir,
        vec![
            PathBuf::from("/opt/mon/alert.d"),
            PathBuf::from("/usr/lib/mon/alert.d")
        ]
    );
    assert_eq!(s.mondir, vec![PathBuf::from("/opt/mon/mon.d")]);
    assert_eq!(s.statedir, PathBuf::from("/opt/mon/state.d"));
    assert_eq!(s.logdir, PathBuf::from("/opt/mon/log.d"));
    assert_eq!(s.auth.authfile, PathBuf::from("/opt/mon/etc/auth.cf"));
    assert_eq!(s.auth.userfile, PathBuf::from("/opt/mon/etc/users.cf"));
    assert_eq!(
        s.historicfile,
        Some(PathBuf::from("/opt/mon/log.d/history.log"))
    );
    assert_eq!(s.dtlogfile, PathBuf::from("/opt/mon/log.d/dt.log"));
    assert_eq!(s.mon_listener, Some("[::1]:2600".parse().unwrap()));
    assert_eq!(s.trap_listener, Some("127.0.0.2:2601".parse().unwrap()));
    assert_eq!(
        s.clientallow,
        vec!["127\\.0\\.0\\.1", "10\\.1\\.\\d+\\.\\d+"]
    );
    assert_eq!(s.cltimeout, Duration::from_secs(60));
    assert_eq!(s.maxprocs, 5);
    assert_eq!(s.histlength, 50);
    assert!(s.dtlogging && s.startupalerts_on_reset);
    assert_eq!(s.builtin_monitors, BuiltinPolicy::Never);
    assert_eq!(s.builtin_alerts, BuiltinPolicy::Fallback);
    assert_eq!(s.control_socket, PathBuf::from("/run/keepmon.sock"));
    assert_eq!(s.web.listen, Some("127.0.0.1:9584".parse().unwrap()));
    assert_eq!(s.exclude_period.as_ref().unwrap().source(), "hr {1am-2am}");
    let svc = &c.config.watches["g"].services["s"];
    assert_eq!(
        svc.dep_behavior,
        DepBehavior::Monitor,
        "dep_behavior is positional"
    );
    assert_eq!(svc.dep_memory, Some(Duration::from_secs(300)));
    assert!(svc.unack_summary);
}

#[test]
fn positional_globals_apply_to_later_services_only() {
    let c = ok(
        "hostgroup g h\n\nwatch g\n  service early\n    interval 1m\n    monitor tcp.monitor\n\ndep_behavior = m\nunack_summary = 1\n\nwatch h\n  service late\n    interval 1m\n    monitor tcp.monitor\n",
    );
    let early = &c.config.watches["g"].services["early"];
    let late = &c.config.watches["h"].services["late"];
    assert_eq!(early.dep_behavior, DepBehavior::Alert);
    assert!(!early.unack_summary);
    assert_eq!(late.dep_behavior, DepBehavior::Monitor);
    assert!(late.unack_summary);
}

#[test]
fn every_error_is_reported_at_once_with_its_place() {
    let text = "\
maxprocs = lots
bogus_global = 1
randstart = 0s

hostgroup g h1 h2

watch g
  service s
    interval 5
    monitor
    alertevery 1h
    depend g:
    period wd {Funday}
      alert mail.alert
      alertafter 2 1d
      numalerts -1
      interval 1m
    period wd {Funday}
  service s
watch missing
  service t
    frobnicate 3
";
    check_errors(
        text,
        &[
            "mon.cf:1:1: error: maxprocs: expected a whole number, found \"lots\"",
            "mon.cf:2:1: error: unknown global \"bogus_global\"",
            "mon.cf:3:1: error: randstart: time value \"0s\" must be greater than zero",
            "mon.cf:9:5: error: interval: bad time value \"5\" (expected a number and one of s m h d, e.g. 30s, 5m, 1.5h, 1d)",
            "mon.cf:10:5: error: monitor needs a value",
            "mon.cf:11:5: error: \"alertevery\" must be inside a period: add a `period` line before it (a bare `period` means always)",
            "mon.cf:12:5: error: depend: 'g:' at column 1 is missing its ':service' part (write group:service)",
            "mon.cf:13:5: error: period: invalid wd value \"Funday\" (expected 1-7 or su-sa) in period \"wd {Funday}\"",
            "mon.cf:14:7: error: alert: mail.alert needs at least one recipient",
            "mon.cf:15:7: error: alertafter: bad alertafter time \"1d\" (mon accepts only whole numbers with s, m or h here)",
            "mon.cf:16:7: error: numalerts: expected a whole number, found \"-1\"",
            "mon.cf:17:7: error: service keyword \"interval\" after the first period (line 13); mon reads everything after a `period` line as period keywords, so move it above line 13",
            "mon.cf:18:5: error: period: invalid wd value \"Funday\" (expected 1-7 or su-sa) in period \"wd {Funday}\"",
            "mon.cf:18:5: error: duplicate period \"wd {Funday}\" in service g/s",
            "mon.cf:19:11: error: duplicate service \"s\" in watch g (first defined at mon.cf:8:3)",
            "mon.cf:22:5: error: unknown service keyword \"frobnicate\"",
        ],
    );
}

#[test]
fn suggestions_for_misspelled_words() {
    check_errors(
        "maxproc = 3\n",
        &["mon.cf:1:1: error: unknown global \"maxproc\"; did you mean \"maxprocs\"?"],
    );
    check_errors(
        "hostgroup g h\n\nwatch g\n  service s\n    intreval 1m\n",
        &["mon.cf:5:5: error: unknown service keyword \"intreval\"; did you mean \"interval\"?"],
    );
}

#[test]
fn alertafter_sanity_rule_uses_the_interval() {
    let base = "hostgroup g h\n\nwatch g\n  service s\n    interval 10m\n    monitor tcp.monitor\n    period\n";
    assert!(compile(&format!("{base}      alertafter 3 30m\n")).is_ok());
    let errors = compile(&format!("{base}      alertafter 4 30m\n")).unwrap_err();
    assert!(errors[0].contains("not sensible"), "{errors:?}");
}

#[test]
fn alert_names_resolve_to_builtins_scripts_or_errors() {
    let base = "alertdir = /a\nhostgroup g h\n\nwatch g\n  service s\n    interval 1m\n    monitor tcp.monitor\n    period\n";
    let fs = FakeFs::with(&["/a/page.alert", "/a/mail.alert"]);
    let c = compile_with(
        &format!("{base}      alert page.alert -x 1\n      alert mail.alert a@b\n"),
        &fs,
    )
    .unwrap();
    let alerts = &c.config.watches["g"].services["s"].periods[0].alerts;
    assert_eq!(
        alerts[0].action,
        Action::Exec {
            path: PathBuf::from("/a/page.alert"),
            args: vec!["-x".into(), "1".into()]
        }
    );
    assert_eq!(
        alerts[1].action.kind(),
        "mail",
        "built-in mail.alert is preferred by default"
    );

    let c = compile_with(
        &format!("builtin_alerts = fallback\n{base}      alert mail.alert a@b\n"),
        &fs,
    )
    .unwrap();
    assert_eq!(
        c.config.watches["g"].services["s"].periods[0].alerts[0]
            .action
            .kind(),
        "exec"
    );

    // mon runs a file whose alert script is missing (the exec fails when the
    // alert fires), so keepmon does too, with a warning.
    let c = compile_with(&format!("{base}      alert nosuch.alert\n"), &fs).unwrap();
    assert_eq!(
        warnings(&c),
        vec![
            "mon.cf:9:7: warning: alert: alert \"nosuch.alert\" not found in alertdir /a (built-in alerts: mail.alert, file.alert, lvs.alert, ipvs.alert, lua:NAME); as in mon, it will fail each time it fires"
        ]
    );
    assert_eq!(
        c.config.watches["g"].services["s"].periods[0].alerts[0].action,
        Action::Exec {
            path: PathBuf::from("/a/nosuch.alert"),
            args: vec![]
        }
    );
    let errors = compile_with(
        &format!("{base}      alert lvs.alert -P tcp -R 10.0.0.1\n"),
        &fs,
    )
    .unwrap_err();
    assert_eq!(
        errors,
        vec!["mon.cf:9:7: error: alert: lvs.alert needs -V vip:port"]
    );
}

#[test]
fn monitors_resolve_in_mondir() {
    let base = "mondir = /m\nhostgroup g h\n\nwatch g\n  service s\n    interval 1m\n";
    let fs = FakeFs::with(&["/m/check.monitor"]);
    let c = compile_with(&format!("{base}    monitor check.monitor -v ;;\n"), &fs).unwrap();
    match &c.config.watches["g"].services["s"].monitor {
        Some(Monitor::Exec {
            path, append_hosts, ..
        }) => {
            assert_eq!(path.as_deref(), Some(Path::new("/m/check.monitor")));
            assert!(!append_hosts);
        }
        other => panic!("{other:?}"),
    }
    let c = compile_with(&format!("{base}    monitor gone.monitor\n"), &fs).unwrap();
    assert!(
        warnings(&c)[0].contains("monitor \"gone.monitor\" not found in mondir /m"),
        "{:?}",
        warnings(&c)
    );
    let c = compile_with(&format!("{base}    monitor tcp.monitor -p 22\n"), &fs).unwrap();
    assert!(
        warnings(&c).is_empty(),
        "tcp.monitor has a built-in equivalent"
    );
}

#[test]
fn dependencies_must_name_defined_services() {
    let text = "hostgroup g h\n\nwatch g\n  service a\n    interval 1m\n    monitor tcp.monitor\n    depend g:b || !(g:c)\n  service b\n    interval 1m\n    monitor tcp.monitor\n    hostdepend g:a SELF:zz\n";
    check_errors(
        text,
        &[
            "mon.cf:4:3: error: depend of g:a: \"g:c\" is not a defined group:service",
            "mon.cf:8:3: error: hostdepend of g:b: \"g:zz\" is not a defined group:service",
        ],
    );
}

#[test]
fn environment_lines_and_exit_ranges() {
    let c = ok(
        "hostgroup g h\n\nwatch g\n  service s\n    FOO=bar baz\n    interval 1m\n    monitor tcp.monitor\n    period\n      BAR=1\n      alert exit = 2-4 mail.alert ops\n      alert exit=7 mail.alert boss\n",
    );
    let s = &c.config.watches["g"].services["s"];
    assert_eq!(s.env["FOO"], "bar baz");
    assert_eq!(s.env["BAR"], "1");
    assert_eq!(
        s.periods[0].alerts[0].exit,
        Some(ExitRange { low: 2, high: 4 })
    );
    assert_eq!(
        s.periods[0].alerts[1].exit,
        Some(ExitRange { low: 7, high: 7 })
    );
    check_errors(
        "hostgroup g h\n\nwatch g\n  FOO=1\n",
        &["mon.cf:4:3: error: environment line before any `service` in this watch"],
    );
}

#[test]
fn a_watch_without_a_hostgroup_gets_one_host() {
    let c = ok("watch trapsource\n  service heartbeat\n    traptimeout 5m\n");
    assert_eq!(c.config.hostgroups["trapsource"].hosts, vec!["trapsource"]);
    assert!(
        warnings(&c)[0].contains("names no hostgroup"),
        "{:?}",
        warnings(&c)
    );
}

#[test]
fn a_config_that_watches_nothing_is_warned_about() {
    let c = ok("hostgroup g h\n");
    assert!(
        warnings(&c).iter().any(|w| w.contains("watches nothing")),
        "{:?}",
        warnings(&c)
    );
}

#[test]
fn keepmon_service_extensions() {
    let fs = FakeFs::with(&[concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/monitors/http_body.lua"
    )]);
    let c = compile_with("hostgroup g h\n\nwatch g\n  service s\n    schedule */5 * * * *\n    monitor lua:http_body\n    timeout 10s\n    rise 2\n    fall 3\n", &fs).unwrap();
    let s = &c.config.watches["g"].services["s"];
    assert!(s.schedule.is_some());
    assert_eq!(s.timeout, Some(Duration::from_secs(10)));
    assert_eq!((s.rise, s.fall), (2, 3));
}

#[test]
fn diff_lists_added_removed_and_changed() {
    use keepmon::config::diff;
    let old = ok("hostgroup g h1\n\nwatch g\n  service a\n    interval 1m\n    monitor tcp.monitor\n  service b\n    interval 1m\n    monitor tcp.monitor\n").config;
    let same = ok("# a comment moves every line\n\nhostgroup g h1\n\nwatch g\n  service a\n    interval 1m\n    monitor tcp.monitor\n  service b\n    interval 1m\n    monitor tcp.monitor\n").config;
    assert!(
        diff(Some(&old), &same).is_empty(),
        "moving definitions is not a change"
    );
    let new = ok("hostgroup g h1\n\nwatch g\n  service a\n    interval 2m\n    monitor tcp.monitor\n  service c\n    interval 1m\n    monitor tcp.monitor\n").config;
    let d = diff(Some(&old), &new);
    assert_eq!(
        d.to_string(),
        "+ service g:c\n- service g:b\n~ service g:a\n"
    );
    let hosts = ok("hostgroup g h1 h2\n\nwatch g\n  service a\n    interval 1m\n    monitor tcp.monitor\n  service b\n    interval 1m\n    monitor tcp.monitor\n").config;
    let d = diff(Some(&old), &hosts);
    assert_eq!(d.hostgroups.changed, vec!["g"]);
    assert_eq!(
        d.services.changed.len(),
        2,
        "a group's host change touches its services"
    );
    let startup = diff(None, &old);
    assert_eq!(startup.services.added.len(), 2);
}

/// LVS-HOWTO mon.cf files write mon's own `-u` on their lvs.alert upalert
/// lines; mon passes it on (the script sees it twice) and the director
/// works, so keepmon accepts it with a warning.
#[test]
fn regression_upalert_lvs_alert_with_its_own_u_flag() {
    let base = "hostgroup g 10.0.0.2\n\nwatch g\n  service s\n    interval 1m\n    monitor tcp.monitor -p 80\n    period\n";
    let c = ok(&format!(
        "{base}      alert lvs.alert -P tcp -V 10.0.0.1:80 -R 10.0.0.2 -W 1 -F g\n      upalert lvs.alert -P tcp -V 10.0.0.1:80 -R 10.0.0.2 -W 1 -F g -u\n"
    ));
    let period = &c.config.watches["g"].services["s"].periods[0];
    assert_eq!(period.alerts[0].action, period.upalerts[0].action);
    assert_eq!(
        warnings(&c),
        vec![
            "mon.cf:9:7: warning: upalert lvs.alert: -u is what mon adds to every upalert (the script sees it twice, harmlessly); keepmon adds it too, so this one can go"
        ]
    );
    // On a failure alert, -u would make the script add the server: that is
    // not what keepmon would do, so it stays an error.
    let errors = compile(&format!(
        "{base}      alert lvs.alert -P tcp -V 10.0.0.1:80 -R 10.0.0.2 -u\n"
    ))
    .unwrap_err();
    assert!(errors[0].contains("-u on a failure alert"), "{errors:?}");
}

/// mail.alert's getopts drops an unknown option and mails anyway; mon's own
/// `-u` on an upalert is harmless: both run, with a warning.
#[test]
fn mail_alert_options_mon_runs_are_accepted_with_a_warning() {
    let base = "hostgroup g h\n\nwatch g\n  service s\n    interval 1m\n    monitor tcp.monitor -p 80\n    period\n";
    let c = ok(&format!(
        "{base}      alert mail.alert -x ops@example.com\n      upalert mail.alert -u -S back ops@example.com\n"
    ));
    let period = &c.config.watches["g"].services["s"].periods[0];
    let Action::Mail(mail) = &period.alerts[0].action else {
        panic!("not mail");
    };
    assert_eq!(mail.to, ["ops@example.com"]);
    let Action::Mail(up) = &period.upalerts[0].action else {
        panic!("not mail");
    };
    assert_eq!(up.subject.as_deref(), Some("back"));
    let w: Vec<String> = warnings(&c)
        .into_iter()
        .filter(|w| w.contains("mail.alert"))
        .collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("mon.cf:8:7: warning: alert mail.alert: unknown option \"-x\""),
        "{w:?}"
    );
    assert!(
        w[1].contains("mon.cf:9:7: warning: upalert mail.alert: -u is what mon adds"),
        "{w:?}"
    );
    // -u on a failure alert would make mail.alert write UPALERT: an error.
    assert!(
        compile(&format!(
            "{base}      alert mail.alert -u ops@example.com\n"
        ))
        .is_err()
    );
}

/// A mon.cf with `n` hostgroups and a watch with one service on each.
fn many_watches(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("hostgroup g{i} 127.0.0.{}\n", i % 250 + 1));
    }
    for i in 0..n {
        text.push_str(&format!(
            "\nwatch g{i}\n    service tcp\n        interval 1m\n        monitor tcp.monitor -p 80\n        period wd {{Sun-Sat}}\n            alert mail.alert root@localhost\n            alertevery 1h\n"
        ));
    }
    text
}

/// A large mon.cf compiles whole: every hostgroup and watch is there.
/// (Compiling once took time quadratic in the number of watches; how time
/// and memory grow with size is measured by bench/compile, not timed here.)
#[test]
fn thousands_of_watches_compile() {
    let n = 4_000;
    let compiled = ok(&many_watches(n));
    assert_eq!(compiled.config.watches.len(), n);
    assert_eq!(compiled.config.hostgroups.len(), n);
    assert!(compiled.config.watches.contains_key(&format!("g{}", n - 1)));
}

#[test]
fn alertmanager_alert_is_keepmons_own() {
    let base = "hostgroup g h\n\nwatch g\n  service s\n    interval 1m\n    monitor tcp.monitor\n    period page: wd {Mon-Sun}\n";
    let c = ok(&format!(
        "{base}      alert alertmanager.alert http://127.0.0.1:9093 -l team=net -r 30s\n      upalert alertmanager.alert http://127.0.0.1:9093\n"
    ));
    let period = &c.config.watches["g"].services["s"].periods[0];
    assert_eq!(period.key, "page");
    match &period.alerts[0].action {
        Action::Alertmanager(am) => {
            assert_eq!(am.url, "http://127.0.0.1:9093");
            assert_eq!(am.labels["team"], "net");
            assert_eq!(am.resend, Duration::from_secs(30));
            assert_eq!(am.severity, None);
        }
        other => panic!("alertmanager.alert should be the built-in action, got {other:?}"),
    }
    assert!(matches!(period.upalerts[0].action, Action::Alertmanager(_)));
    check_errors(
        &format!(
            "{base}      alert alertmanager.alert am:9093\n      upalert alertmanager.alert\n      alert alertmanager.alert http://a -x\n"
        ),
        &[
            "mon.cf:8:7: error: alert: \"am:9093\" is not an http:// or https:// URL (e.g. http://127.0.0.1:9093)",
            "mon.cf:9:7: error: upalert: alertmanager.alert needs the Alertmanager's URL (e.g. http://127.0.0.1:9093)",
            "mon.cf:10:7: error: alert: alertmanager.alert: unknown option \"-x\" (keepmon accepts -s severity, -l name=value, -r resend)",
        ],
    );
}

#[test]
fn announcements_as_globals() {
    let base =
        "hostgroup dns ns1\n\nwatch dns\n  service udp\n    interval 1m\n    monitor tcp.monitor\n";
    let c = ok(&format!(
        "director = lb1\nbgp_via = frr\nbgp_frr_pathspace = edge\nbgp_withdraw_drain = 3s\n\
         announce = anycast 192.0.2.53/32 service:dns/udp && !service:dns/udp\n{base}"
    ));
    let a = &c.config.announce["anycast"];
    assert_eq!(a.prefix_text(), "192.0.2.53/32");
    assert_eq!(a.when.to_string(), "(service:dns/udp && !service:dns/udp)");
    assert_eq!(c.config.bgp.via, keepmon::config::model::RouteDaemon::Frr);
    assert_eq!(c.config.bgp.frr_pathspace.as_deref(), Some("edge"));
    assert_eq!(c.config.bgp.withdraw_drain, Duration::from_secs(3));
    assert_eq!(c.config.settings.director.as_deref(), Some("lb1"));
    check_errors(
        &format!(
            "bgp_via = quagga\nannounce = vip 192.0.2.1/24 service:dns/udp\nannounce = vip\n\
             announce = web 192.0.2.80/32 quorum:web\n{base}"
        ),
        &[
            "mon.cf:1:1: error: bgp_via: unknown routing daemon \"quagga\" (expected bird, exabgp or frr)",
            "mon.cf:2:1: error: announce: \"192.0.2.1/24\" has host bits set: write the network address",
            "mon.cf:3:1: error: announce: expected NAME PREFIX CONDITION, e.g. announce = vip 192.0.2.10/32 service:dns/udp",
            "mon.cf:4:1: error: announce \"web\": when names an undefined virtual server \"web\"",
        ],
    );
}
