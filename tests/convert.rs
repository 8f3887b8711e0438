//! `keepmon convert`: every shipped example and test corpus file (mon.cf, keepalived.conf, TOML) converts to TOML that compiles to the same model; the CLI prints it with its origins.

use std::path::{Path, PathBuf};
use std::process::Command;

use keepmon::config::{Format, RealFileSystem, compile_str, convert, load};

/// Every config file the repository ships or tests with that compiles.
fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("etc/keepmon.toml")];
    for dir in [
        "etc/mon",
        "etc/keepalived",
        "tests/keepalived",
        "tests/vm/ipvs",
        "tests/haproxy",
    ] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "cf" || x == "conf" || x == "toml" || x == "cfg")
            })
            .collect();
        entries.sort();
        files.extend(entries);
    }
    files
}

#[test]
fn every_corpus_config_round_trips_through_convert() {
    let mut converted_count = 0;
    for file in corpus() {
        let Ok(compiled) = load(&file, None) else {
            // The broken-* corpus files exist to fail; convert refuses them too.
            continue;
        };
        let converted = convert::to_native(&compiled.config);
        assert!(
            converted.losses.is_empty(),
            "{}: convert lost {:?}",
            file.display(),
            converted.losses
        );
        // Compiled as if saved beside the source (paths are absolute anyway).
        let out = file.with_extension("converted.toml");
        let again = compile_str(&converted.text, &out, Format::Toml, &RealFileSystem)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: the converted TOML does not compile:\n{}\n{}",
                    file.display(),
                    e.diagnostics,
                    converted.text
                )
            });
        assert!(
            convert::same_model(&compiled.config, &again.config),
            "{}: the model changed\n--- converted ---\n{}\n--- before ---\n{:#?}\n--- after ---\n{:#?}",
            file.display(),
            converted.text,
            compiled.config,
            again.config
        );
        converted_count += 1;
    }
    assert!(
        converted_count >= 12,
        "only {converted_count} corpus files compiled"
    );
}

#[test]
fn cli_prints_toml_with_origins_and_refuses_a_broken_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["convert", "-c"])
        .arg(root.join("etc/mon/lvs.cf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("# from "), "{text}");
    assert!(text.contains("lvs.cf:"), "{text}");
    assert!(text.contains("[watch."), "{text}");
    let parsed: toml::Table = toml::from_str(&text).expect("convert prints valid TOML");
    assert!(parsed.contains_key("actions"), "{text}");

    let broken = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["convert", "-c"])
        .arg(root.join("tests/keepalived/broken-no-vrid.conf"))
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        broken.stdout.is_empty(),
        "nothing is printed for a broken file"
    );
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("broken-no-vrid.conf:"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

/// The native keys that exist so that every model can be written in TOML:
/// the director's name, mon's directories, a mon port switched off,
/// aliases and views, and keepalived-style notify actions.
#[test]
fn native_keys_that_convert_needs_compile_to_the_model() {
    use keepmon::config::model::{Action, Monitor, NotifyOn};
    let dir = std::env::temp_dir().join(format!("keepmon-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("to-master.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let text = format!(
        r#"
[daemon]
director = "lb1"
cfbasedir = "/etc/mon"
monremote = "/usr/lib/mon/monremote"

[mon_protocol]
enabled = false
authtype = ["shadow"]

[aliases]
web = ["the web farm"]

[views]
ops = ["g"]

[hostgroups]
g = ["127.0.0.1"]

[actions.up]
type = "notify"
command = "{}"
args = ["x"]
on = "master"
user = "root:0"

[watch.g.s]
interval = "1m"
user = "root"
monitor = {{ type = "exec", command = "/bin/true" }}

[watch.g.web]
interval = "1m"
monitor = {{ type = "http", path = "/a", digest = "0123456789ABCDEF0123456789abcdef", more_urls = [{{ path = "/b", status = [200, "300-302"], body = "ok" }}] }}

[vrrp.v]
interface = "lo"
virtual_router_id = 9
virtual_ipaddress = ["10.9.9.9/32"]
track_file = [{{ path = "/run/keepmon-weight", weight = -5, reverse = true }}]
notify = ["up"]
"#,
        script.display()
    );
    let compiled = compile_str(&text, &dir.join("k.toml"), Format::Toml, &RealFileSystem);
    let _ = std::fs::remove_dir_all(&dir);
    let config = compiled
        .unwrap_or_else(|e| panic!("{}", e.diagnostics))
        .config;
    let s = &config.settings;
    assert_eq!(s.director.as_deref(), Some("lb1"));
    assert_eq!(s.cfbasedir, Path::new("/etc/mon"));
    assert_eq!(s.monremote.as_deref(), Some("/usr/lib/mon/monremote"));
    assert_eq!(s.mon_listener, None, "enabled = false");
    assert_eq!(config.aliases["web"], vec!["the web farm".to_string()]);
    assert_eq!(config.views["ops"], vec!["g".to_string()]);
    let Action::Notify(notify) = &config.vrrp["v"].notify[0].action else {
        panic!("not a notify action: {:?}", config.vrrp["v"].notify);
    };
    assert_eq!(notify.on, NotifyOn::Master);
    let file = &config.vrrp["v"].track_files[0];
    assert_eq!((file.weight, file.reverse), (-5, true));
    let Monitor::Http(web) = config.watches["g"].services["web"]
        .monitor
        .as_ref()
        .unwrap()
    else {
        panic!("not an http monitor");
    };
    assert_eq!(
        web.digest.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(web.more_urls[0].path, "/b");
    assert_eq!(web.more_urls[0].status, vec![(200, 200), (300, 302)]);
    assert_eq!(notify.run_as.as_ref().map(|r| (r.uid, r.gid)), Some((0, 0)));
    let service = &config.watches["g"].services["s"];
    assert_eq!(
        service.run_as.as_ref().map(|r| r.user.as_str()),
        Some("root")
    );
    assert_eq!(notify.args, vec!["x".to_string()]);
    // And convert prints them back.
    let again = convert::to_native(&config).text;
    for needle in [
        "director = \"lb1\"",
        "enabled = false",
        "type = \"notify\"",
        "[views]",
    ] {
        assert!(again.contains(needle), "{needle} missing:\n{again}");
    }
}

/// The proxy's queue, backup, slow start, error file and access log keys
/// survive a round trip through convert.
#[test]
fn proxy_queue_backup_error_file_and_access_log_round_trip() {
    let dir = std::env::temp_dir().join(format!("keepmon-convert-q-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sorry = dir.join("503.http");
    std::fs::write(
        &sorry,
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nback soon\n",
    )
    .unwrap();
    let text = format!(
        r#"
[virtual_servers.web]
listen = "127.0.0.1:8080"
mode = "http"
allbackups = true
timeout = {{ queue = "4s", server = "30s" }}
error_files = {{ 503 = "{}" }}
access_log = {{ dontlognull = true }}
real_servers = [
  {{ addr = "127.0.0.1:81", maxconn = 20, maxqueue = 8, slowstart = "1m" }},
  {{ addr = "127.0.0.1:82", backup = true }},
]
"#,
        sorry.display()
    );
    let file = dir.join("k.toml");
    let compiled = compile_str(&text, &file, Format::Toml, &RealFileSystem)
        .unwrap_or_else(|e| panic!("{}", e.diagnostics));
    let converted = convert::to_native(&compiled.config);
    let again = compile_str(&converted.text, &file, Format::Toml, &RealFileSystem);
    let _ = std::fs::remove_dir_all(&dir);
    let again = again.unwrap_or_else(|e| panic!("{}\n{}", e.diagnostics, converted.text));
    assert!(converted.losses.is_empty(), "{:?}", converted.losses);
    for key in [
        "allbackups",
        "queue = \"4s\"",
        "error_files",
        "dontlognull",
        "maxqueue = 8",
        "backup = true",
        "slowstart = \"60s\"",
    ] {
        assert!(
            converted.text.contains(key),
            "{key} missing:\n{}",
            converted.text
        );
    }
    assert!(
        convert::same_model(&compiled.config, &again.config),
        "{}",
        converted.text
    );
}

/// `[[stats_page]]` tables print back in order, defaults left out, and
/// compile to the same pages.
#[test]
fn stats_pages_round_trip_through_convert() {
    let text = r#"
[hostgroups]
g = ["127.0.0.1"]

[watch.g.s]
interval = "1m"
monitor = { type = "tcp", port = 9 }

[virtual_servers.web]
listen = "127.0.0.1:8080"
mode = "http"
real_servers = [{ addr = "127.0.0.1:9" }]

[[stats_page]]
listen = "127.0.0.1:8404"

[[stats_page]]
virtual_server = "web"

[[stats_page]]
listen = "127.0.0.1:8405"
uri = "/stats"
realm = "Ops only"
auth = ["admin:pa:ss", "ro:ro"]
refresh = "5s"
hide_version = true
admin = true
"#;
    let file = std::env::temp_dir().join("keepmon-convert-stats.toml");
    let config = compile_str(text, &file, Format::Toml, &RealFileSystem)
        .unwrap_or_else(|e| panic!("{}", e.diagnostics))
        .config;
    assert_eq!(config.stats_pages.len(), 3);
    let converted = convert::to_native(&config);
    assert!(converted.losses.is_empty(), "{:?}", converted.losses);
    assert_eq!(
        converted.text.matches("[[stats_page]]").count(),
        3,
        "{}",
        converted.text
    );
    assert!(
        !converted.text.contains("haproxy?stats"),
        "the default uri is left out:\n{}",
        converted.text
    );
    let again = compile_str(&converted.text, &file, Format::Toml, &RealFileSystem)
        .unwrap_or_else(|e| panic!("{}\n{}", e.diagnostics, converted.text))
        .config;
    assert!(
        convert::same_model(&config, &again),
        "{}\n{:#?}",
        converted.text,
        again.stats_pages
    );
    assert_eq!(again.stats_pages[2].users[0].password, "pa:ss");
    assert!(converted.text.contains("virtual_server = \"web\""));
}
