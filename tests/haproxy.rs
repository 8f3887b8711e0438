//! haproxy.cfg against Debian's HAProxy 2.6: every file of the corpus in tests/haproxy/ is judged by `haproxy -c -f` and by keepmon's `config::load`, and the two agree on error or no error, at the same lines.
//!
//! The corpus's file names say what is expected:
//!
//! - `ok-*`: both run it.
//! - `broken-*`: both refuse it, and keepmon's errors are on exactly the
//!   lines HAProxy's alerts name.
//! - `old-*`: forms HAProxy 2.6 refuses whose meaning is plain; keepmon runs
//!   them, with a warning on every line HAProxy's alerts name.
//! - `unsupported-*`: valid HAProxy that keepmon cannot run yet; keepmon
//!   refuses it, and says so ("keepmon cannot run this as HAProxy does").

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use keepmon::config::{self, Format};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/haproxy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/haproxy")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    files.sort();
    files
}

/// HAProxy's verdict: whether it accepts the file, and the lines its alerts
/// name (`parsing [FILE:N]` or `[FILE:N]`), with their messages.
fn haproxy_check(path: &Path) -> (bool, Vec<(u32, String)>) {
    let output = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(path)
        // HAProxy opens `errorfile`s relative to its working directory;
        // keepmon relative to the config's directory.
        .current_dir(path.parent().expect("corpus dir"))
        .env_remove("HAPROXY_TEST_PORT")
        .env_remove("HAPROXY_TEST_CONNECT")
        .output()
        .expect("run haproxy -c");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut alerts = Vec::new();
    for line in stderr.lines().filter(|l| l.starts_with("[ALERT]")) {
        let marker = format!("{name}:");
        if let Some(at) = line.find(&marker) {
            let rest = &line[at + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                alerts.push((n, line.to_string()));
            }
        }
    }
    (output.status.success(), alerts)
}

struct Verdict {
    ok: bool,
    errors: BTreeSet<u32>,
    warnings: BTreeSet<u32>,
    messages: String,
}

fn keepmon_check(path: &Path) -> Verdict {
    let diagnostics = match config::load(path, None) {
        Ok(compiled) => {
            assert_eq!(
                compiled.config.format,
                Format::Haproxy,
                "{}",
                path.display()
            );
            return Verdict {
                ok: true,
                errors: BTreeSet::new(),
                warnings: compiled
                    .warnings
                    .warnings()
                    .map(|d| d.location.line)
                    .collect(),
                messages: compiled.warnings.to_string(),
            };
        }
        Err(e) => e.diagnostics,
    };
    Verdict {
        ok: false,
        errors: diagnostics.errors().map(|d| d.location.line).collect(),
        warnings: diagnostics.warnings().map(|d| d.location.line).collect(),
        messages: diagnostics
            .iter()
            .map(|d| format!("{d}\n"))
            .collect::<String>(),
    }
}

#[test]
fn corpus_is_judged_alike_by_haproxy_and_keepmon() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        common::not_run("the haproxy.cfg corpus: needs Debian's haproxy package");
        return;
    }
    let files = corpus();
    assert!(files.len() >= 8, "the corpus is in tests/haproxy/");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (haproxy_ok, alerts) = haproxy_check(&path);
        let keepmon = keepmon_check(&path);
        let alert_lines: BTreeSet<u32> = alerts.iter().map(|(n, _)| *n).collect();
        let context = format!(
            "{name}\n--- haproxy alerts ---\n{}\n--- keepmon ---\n{}",
            alerts
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            keepmon.messages
        );
        if name.starts_with("ok-") {
            assert!(haproxy_ok, "HAProxy refuses {context}");
            assert!(keepmon.ok, "keepmon refuses {context}");
        } else if name.starts_with("broken-") {
            assert!(!haproxy_ok, "HAProxy accepts {context}");
            assert!(!keepmon.ok, "keepmon accepts {context}");
            assert_eq!(keepmon.errors, alert_lines, "error lines differ: {context}");
        } else if name.starts_with("old-") {
            assert!(!haproxy_ok, "HAProxy 2.6 accepts {context}");
            assert!(keepmon.ok, "keepmon refuses {context}");
            // After a refused `listen NAME ADDR` HAProxy has no section and
            // refuses every line of it ("'listen' or 'defaults' expected").
            for (line, message) in &alerts {
                if !message.contains("'listen' or 'defaults' expected") {
                    assert!(
                        keepmon.warnings.contains(line),
                        "no keepmon warning at line {line}: {context}"
                    );
                }
            }
        } else if name.starts_with("unsupported-") {
            assert!(haproxy_ok, "HAProxy refuses {context}");
            assert!(!keepmon.ok, "keepmon accepts {context}");
            assert!(
                keepmon
                    .messages
                    .lines()
                    .filter(|l| l.contains(": error: "))
                    .all(|l| l.contains("keepmon cannot run this as HAProxy does")),
                "an error that is not a refusal: {context}"
            );
        } else {
            panic!("{name}: corpus names start with ok-, broken-, old- or unsupported-");
        }
    }
}

/// What the corpus's valid files become: the model a reader of HAProxy's
/// manual expects.
#[test]
fn corpus_files_map_onto_the_model() {
    use keepmon::config::model::{CookieMode, HashOn, LbScheduler, Monitor, ProxyMode};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/haproxy");
    let load = |name: &str| match config::load(&dir.join(name), None) {
        Ok(c) => c.config,
        Err(e) => panic!("{name}: {}", e.diagnostics),
    };
    let c = load("ok-http-frontend-backend.cfg");
    let vs = &c.virtual_servers["www"];
    assert_eq!(vs.listen.unwrap().to_string(), "127.0.0.1:8080");
    assert_eq!(vs.scheduler, LbScheduler::WeightedRoundRobin);
    assert_eq!(vs.proxy.mode, ProxyMode::Http);
    assert_eq!(vs.proxy.maxconn, Some(2000));
    assert_eq!(vs.retries, 3);
    let weights: Vec<u32> = vs.real_servers.iter().map(|r| r.weight).collect();
    assert_eq!(weights, [3, 1, 1]);
    assert_eq!(
        format!("{:?}", vs.real_servers[2].admin),
        "Maint",
        "disabled → maint"
    );
    let ff = vs.proxy.http.forwardfor.as_ref().expect("forwardfor");
    assert_eq!(
        ff.except.map(|n| n.to_string()).as_deref(),
        Some("127.0.0.0/8")
    );
    let health = vs.health.as_ref().expect("health");
    assert_eq!(health.to_string(), "web_servers:check");
    let svc = c.service(health).unwrap();
    assert_eq!(svc.interval.map(|d| d.as_secs()), Some(3));
    assert_eq!((svc.rise, svc.fall), (2, 3));
    match svc.monitor.as_ref().unwrap() {
        Monitor::Http(h) => {
            assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/health"));
            assert_eq!(h.host_header.as_deref(), Some("www.example.com"));
            assert_eq!(h.status, [(200, 200)]);
            assert_eq!(h.timeout.as_secs(), 3, "timeout check");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.hostgroups["web_servers"].hosts,
        ["10.0.0.21:80", "10.0.0.22:80", "10.0.0.23:80"]
    );

    let c = load("ok-cookie-persistence.cfg");
    let app = &c.virtual_servers["app"].proxy.http;
    let cookie = app.cookie.as_ref().unwrap();
    assert_eq!(cookie.name, "SERVERID");
    assert!(matches!(
        cookie.mode,
        CookieMode::Insert {
            indirect: true,
            nocache: true,
            httponly: true,
            secure: false
        }
    ));
    assert_eq!(
        app.server_cookies.values().collect::<Vec<_>>(),
        ["a1", "a2"]
    );
    assert!(matches!(
        c.virtual_servers["legacy"]
            .proxy
            .http
            .cookie
            .as_ref()
            .unwrap()
            .mode,
        CookieMode::Prefix
    ));
    assert!(
        c.virtual_servers["legacy"].health.is_none(),
        "no check, no health"
    );

    let c = load("ok-named-defaults.cfg");
    let api = &c.virtual_servers["api"];
    assert_eq!(api.proxy.mode, ProxyMode::Http);
    assert_eq!(api.proxy.http.hash, Some(HashOn::Uri));
    assert_eq!(
        api.scheduler,
        LbScheduler::Haproxy(keepmon::config::model::HaproxyHash::default())
    );
    assert_eq!(
        api.proxy.http.forwardfor.as_ref().unwrap().header,
        "x-real-ip"
    );
    match c
        .service(api.health.as_ref().unwrap())
        .unwrap()
        .monitor
        .as_ref()
        .unwrap()
    {
        Monitor::Http(h) => {
            assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/ready"));
            assert_eq!(h.host_header.as_deref(), Some("api.example.com"));
            assert_eq!(h.status, [(200, 299)]);
        }
        other => panic!("{other:?}"),
    }
    let redis = &c.virtual_servers["redis"];
    assert_eq!(redis.proxy.mode, ProxyMode::Tcp);
    assert_eq!(redis.connect_timeout.as_secs(), 3, "from tcp_profile");
    match c
        .service(redis.health.as_ref().unwrap())
        .unwrap()
        .monitor
        .as_ref()
        .unwrap()
    {
        Monitor::Tcp(t) => {
            assert_eq!(t.send.as_deref(), Some("PING\r\n"));
            assert_eq!(t.expect.as_deref(), Some(r"\+PONG"));
        }
        other => panic!("{other:?}"),
    }

    let c = load("ok-env-and-quotes.cfg");
    let vs = &c.virtual_servers["quoted"];
    assert_eq!(
        vs.listen.unwrap().port(),
        8095,
        "${{HAPROXY_TEST_PORT-8095}}"
    );
    match c
        .service(vs.health.as_ref().unwrap())
        .unwrap()
        .monitor
        .as_ref()
        .unwrap()
    {
        Monitor::Http(h) => {
            assert_eq!(h.path, "/health#check");
            assert_eq!(h.body.as_deref(), Some("ok \\#1"));
        }
        other => panic!("{other:?}"),
    }

    let c = load("ok-stats-backup.cfg");
    assert_eq!(c.stats_pages.len(), 1);
    let page = &c.stats_pages[0];
    assert_eq!(format!("{:?}", page.listen), "Address(127.0.0.1:8404)");
    assert_eq!(page.uri, "/haproxy?stats");
    assert_eq!(page.realm, "Haproxy Statistics");
    assert_eq!(page.users[0].user, "admin");
    assert_eq!(page.refresh.map(|d| d.as_secs()), Some(30));
    assert!(page.admin);
    assert!(
        !c.virtual_servers.contains_key("stats"),
        "a page, not a proxy"
    );
    let web = &c.virtual_servers["www"];
    let backups: Vec<bool> = web.real_servers.iter().map(|r| r.backup).collect();
    assert_eq!(backups, [false, false, true, true]);
    assert!(web.proxy.allbackups);
    assert_eq!(web.real_servers[0].maxconn, Some(100));
    assert_eq!(web.real_servers[0].maxqueue, Some(10));
    assert_eq!(web.real_servers[0].slowstart.map(|d| d.as_secs()), Some(30));
    assert_eq!(web.proxy.timeout_queue.map(|d| d.as_secs()), Some(10));
    assert_eq!(web.proxy.error_files[&503].status, 503);
    assert!(web.proxy.access_log.as_ref().is_some_and(|l| l.dontlognull));

    let c = load("ok-tls-termination.cfg");
    let tls = &c.virtual_servers["https"];
    assert_eq!(tls.proxy.http.tls.len(), 1);
    assert!(
        tls.proxy.http.tls[0]
            .cert
            .ends_with("tests/haproxy/certs/www.pem")
    );
    assert_eq!(
        tls.proxy.http.tls[0].cert, tls.proxy.http.tls[0].key,
        "one PEM"
    );
    assert_eq!(tls.scheduler, LbScheduler::WeightedLeastConnection);
    assert_eq!(format!("{:?}", tls.proxy.send_proxy), "Some(V1)");
    let plain = &c.virtual_servers["https#2"];
    assert!(plain.proxy.accept_proxy && !tls.proxy.accept_proxy);
    assert!(plain.proxy.http.tls.is_empty());
    assert_eq!(plain.health, tls.health, "one backend, one health service");

    let c = load("old-tutorial.cfg");
    let vs = &c.virtual_servers["webfarm"];
    assert_eq!(vs.listen.unwrap().to_string(), "127.0.0.1:8088");
    assert_eq!(vs.connect_timeout.as_millis(), 5000, "contimeout 5000");
    assert_eq!(vs.proxy.timeout_server.map(|d| d.as_secs()), Some(50));
}

/// `keepmon convert` prints each valid corpus file as native TOML that
/// compiles to the same model.
#[test]
fn corpus_converts_to_the_same_model() {
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("ok-") || name.starts_with("old-")) {
            continue;
        }
        let compiled =
            config::load(&path, None).unwrap_or_else(|e| panic!("{name}: {}", e.diagnostics));
        let converted = config::convert::to_native(&compiled.config);
        assert!(
            converted.losses.is_empty(),
            "{name}: {:?}",
            converted.losses
        );
        let back = config::compile_str(
            &converted.text,
            Path::new("/tmp/converted.toml"),
            Format::Toml,
            &config::RealFileSystem,
        )
        .unwrap_or_else(|e| {
            panic!(
                "{name}: the TOML does not compile:\n{}\n{}",
                e.diagnostics, converted.text
            )
        });
        assert!(
            config::convert::same_model(&compiled.config, &back.config),
            "{name}: converted model differs\n{}",
            converted.text
        );
    }
}
