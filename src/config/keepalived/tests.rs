//! Tests of the keepalived.conf front end: lexer rules, each block, and the mapping onto the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::model::{
    Action, Config, DataPlane, Forward, Fwmark, LbScheduler, Monitor, NotifyOn, Protocol,
    TrackTarget, VrrpInitialState, VrrpVersion,
};
use crate::config::{FileSystem, Format, compile_str};

/// Files by absolute path; directories are the parents of files.
#[derive(Default)]
struct FakeFs {
    files: BTreeMap<PathBuf, String>,
}

impl FakeFs {
    fn with(files: &[(&str, &str)]) -> FakeFs {
        FakeFs {
            files: files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        }
    }
}

impl FileSystem for FakeFs {
    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
            || ["/bin/true", "/usr/bin/killall", "/etc/keepalived/notify.sh"]
                .iter()
                .any(|p| Path::new(p) == path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.files.keys().any(|f| f.starts_with(path) && f != path)
    }

    fn read_to_string(&self, path: &Path) -> Option<String> {
        self.files.get(path).cloned()
    }

    fn list_dir(&self, path: &Path) -> Option<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = self
            .files
            .keys()
            .filter_map(|f| {
                let rest = f.strip_prefix(path).ok()?;
                let first = rest.components().next()?;
                Some(path.join(first))
            })
            .collect();
        out.dedup();
        Some(out)
    }

    fn hostname(&self) -> Option<String> {
        Some("lb1.example.com".to_string())
    }
}

const FILE: &str = "/etc/keepalived/keepalived.conf";

/// Compile `text` as keepalived.conf: the model (None on errors) and every
/// diagnostic as `LINE:COL: severity: message`.
fn compile_with(text: &str, fs: &FakeFs) -> (Option<Config>, Vec<String>) {
    let shown = |d: &crate::config::Diagnostic| {
        let word = match d.severity {
            crate::config::Severity::Error => "error",
            crate::config::Severity::Warning => "warning",
        };
        let file = d.location.file.display().to_string();
        let place = if file == FILE {
            format!("{}:{}", d.location.line, d.location.col)
        } else {
            format!("{file}:{}:{}", d.location.line, d.location.col)
        };
        format!("{place}: {word}: {}", d.message)
    };
    match compile_str(text, Path::new(FILE), Format::Keepalived, fs) {
        Ok(c) => (Some(c.config), c.warnings.iter().map(shown).collect()),
        Err(e) => (None, e.diagnostics.iter().map(shown).collect()),
    }
}

fn compile(text: &str) -> (Option<Config>, Vec<String>) {
    compile_with(text, &FakeFs::default())
}

/// Compile and insist on success.
fn ok(text: &str) -> (Config, Vec<String>) {
    match compile(text) {
        (Some(c), w) => (c, w),
        (None, d) => panic!("does not compile:\n{}", d.join("\n")),
    }
}

fn has(diags: &[String], needle: &str) -> bool {
    diags.iter().any(|d| d.contains(needle))
}

fn assert_has(diags: &[String], needle: &str) {
    assert!(
        has(diags, needle),
        "no diagnostic contains {needle:?}:\n{}",
        diags.join("\n")
    );
}

const PAIR: &str = "\
! Configuration File for keepalived
global_defs {
   notification_email {
     ops@example.com
     noc@example.com
   }
   notification_email_from lb@example.com
   smtp_server 192.0.2.25 2525
   smtp_connect_timeout 15
   router_id LVS_1
}

vrrp_script chk_haproxy {
    script \"/usr/bin/killall -0 haproxy\"
    interval 2
    timeout 3
    weight -20
    rise 2
    fall 3
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
        192.0.2.101
    }
    track_script {
        chk_haproxy
    }
    notify /etc/keepalived/notify.sh
    notify_master \"/etc/keepalived/notify.sh master\"
    smtp_alert
}
";

#[test]
fn a_master_backup_pair_maps_onto_the_model() {
    let (c, warnings) = ok(PAIR);
    assert_eq!(c.format, Format::Keepalived);
    let vi = &c.vrrp["VI_1"];
    assert_eq!(vi.interface, "eth0");
    assert_eq!(vi.vrid.get(), 51);
    assert_eq!(vi.priority, 150);
    assert_eq!(vi.initial_state, VrrpInitialState::Master);
    assert_eq!(vi.version, VrrpVersion::V2);
    assert_eq!(vi.advert_int, Duration::from_secs(1));
    assert_eq!(vi.auth_pass.as_deref(), Some("secret"));
    assert_eq!(vi.virtual_addresses.len(), 2);
    assert_eq!(vi.virtual_addresses[0].prefix, 24);
    assert_eq!(vi.virtual_addresses[0].dev.as_deref(), Some("eth0"));
    assert_eq!(vi.virtual_addresses[1].prefix, 32);
    assert_eq!(vi.garp.master_delay, Duration::from_secs(5));
    assert_eq!(vi.garp.master_repeat, 5);
    // The tracked script: an exec service, with keepalived's weight.
    assert_eq!(vi.track.len(), 1);
    assert_eq!(vi.track[0].weight, -20);
    let TrackTarget::Service(r) = &vi.track[0].target else {
        panic!("not a service track");
    };
    let service = c.service(r).expect("tracked service exists");
    assert_eq!(service.interval, Some(Duration::from_secs(2)));
    assert_eq!(service.timeout, Some(Duration::from_secs(3)));
    assert_eq!((service.rise, service.fall), (2, 3));
    let Some(Monitor::Exec {
        name,
        args,
        append_hosts,
        path,
    }) = &service.monitor
    else {
        panic!("not an exec monitor");
    };
    assert_eq!(name, "/usr/bin/killall");
    assert_eq!(args, &["-0", "haproxy"]);
    assert!(!append_hosts);
    assert_eq!(path.as_deref(), Some(Path::new("/usr/bin/killall")));
    // Notify scripts with keepalived's argv rules, and the smtp alert.
    let kinds: Vec<_> = vi
        .notify
        .iter()
        .map(|l| match &l.action {
            Action::Notify(n) => format!("{:?} {}", n.on, n.args.join(" ")),
            Action::Mail(m) => format!("mail {}", m.to.join(",")),
            other => other.kind().to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Any ",
            "Master master",
            "mail ops@example.com,noc@example.com"
        ]
    );
    // Mail settings.
    let smtp = c.mail.smtp.as_ref().expect("smtp relay");
    assert_eq!((smtp.host.as_str(), smtp.port), ("192.0.2.25", 2525));
    assert_eq!(smtp.timeout, Duration::from_secs(15));
    assert_eq!(c.mail.from.as_deref(), Some("lb@example.com"));
    // router_id names the director in notices.
    assert_eq!(c.settings.director.as_deref(), Some("LVS_1"));
    assert!(!has(&warnings, "error"), "{warnings:?}");
}

#[test]
fn comments_quotes_and_escapes() {
    let (c, w) = ok("\
# hash comment
vrrp_instance VI_1 { ! bang comment
  interface eth0 # trailing
  virtual_router_id 7
  virtual_ipaddress {
    10.0.0.1
  }
  notify_master \"/bin/true # not a comment\"
}
");
    let vi = &c.vrrp["VI_1"];
    assert_eq!(vi.vrid.get(), 7);
    let Action::Notify(n) = &vi.notify[0].action else {
        panic!("no notify");
    };
    assert_eq!(n.args, ["#", "not", "a", "comment"]);
    assert!(!has(&w, "unknown keyword"), "{w:?}");
}

#[test]
fn every_brace_placement_reads_the_same() {
    let forms = [
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n",
        "vrrp_instance VI_1\n{\n interface eth0\n virtual_router_id 9\n virtual_ipaddress\n {\n 10.0.0.1\n }\n}\n",
        "vrrp_instance VI_1{\n interface eth0\n virtual_router_id 9\n virtual_ipaddress{ 10.0.0.1 }\n}\n",
        "vrrp_instance VI_1 { interface eth0\n virtual_router_id 9\n virtual_ipaddress { 10.0.0.1 } }\n",
    ];
    let first = ok(forms[0]).0;
    for form in &forms[1..] {
        let (c, w) = ok(form);
        assert_eq!(c.vrrp, first.vrrp, "{form}");
        assert!(!has(&w, "keepalived"), "{form}: {w:?}");
    }
}

/// `reverse` on a vrrp_script's weight or a track_script line: the line's
/// word wins, else the script's (keepalived's `vrrp_track_script`).
#[test]
fn reversed_script_weights_run_as_in_keepalived() {
    let (c, _) = ok("\
vrrp_script rev {
  script /bin/true
  weight 10 reverse
}
vrrp_script plain {
  script /bin/true
  weight -5
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 5
  virtual_ipaddress {
    10.0.0.1
  }
  track_script {
    rev
    plain weight -7 reverse
  }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 6
  virtual_ipaddress {
    10.0.0.2
  }
  track_script {
    rev weight 4
    plain weight 3 noreverse
  }
}
");
    let tracks = |name: &str| -> Vec<(i32, bool)> {
        c.vrrp[name]
            .track
            .iter()
            .map(|t| (t.weight, t.reverse))
            .collect()
    };
    assert_eq!(tracks("VI_1"), [(10, true), (-7, true)]);
    assert_eq!(tracks("VI_2"), [(4, true), (3, false)]);
}

#[test]
fn an_unknown_block_ends_the_enclosing_one_as_in_keepalived() {
    // keepalived reads `foo {` as an unknown keyword and an unexpected `{`,
    // so its `}` closes vrrp_instance: track_script falls out of the
    // instance and is read at the top level.
    let (c, w) = ok("\
vrrp_script chk {
  script /bin/true
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 5
  virtual_ipaddress {
    10.0.0.1
  }
  foo { bar }
  track_script {
    chk
  }
}
");
    assert!(c.vrrp["VI_1"].track.is_empty());
    assert_has(
        &w,
        "10:3: warning: keepalived ignores this: unknown keyword 'foo'",
    );
    assert_has(
        &w,
        "10:7: warning: keepalived ignores this: it reports \"Unexpected '{'",
    );
    assert_has(
        &w,
        "11:3: warning: keepalived ignores this: unknown keyword 'track_script'",
    );
    assert_has(
        &w,
        "14:1: warning: keepalived ignores this: unknown keyword '}'",
    );
    assert_has(&w, "vrrp_script chk is not used");
}

#[test]
fn definitions_are_substituted() {
    let (c, w) = ok("\
$IF=eth1
$VRID=42
$VIP=10.1.1.1/24
vrrp_instance VI_$VRID {
  interface $IF
  virtual_router_id ${VRID}
  virtual_ipaddress {
    $VIP
  }
  priority $UNDEFINED
}
");
    let vi = &c.vrrp["VI_42"];
    assert_eq!(vi.interface, "eth1");
    assert_eq!(vi.vrid.get(), 42);
    assert_eq!(vi.virtual_addresses[0].prefix, 24);
    // `$UNDEFINED` stays as it is; keepalived rejects it as a number.
    assert_eq!(vi.priority, 100);
    assert_has(&w, "Priority not valid");
}

#[test]
fn a_substituted_value_can_start_a_comment() {
    let (c, _) = ok("\
$C=# gone
vrrp_instance VI_1 {
  interface eth0 $C
  virtual_router_id 3
  virtual_ipaddress {
    10.0.0.1
  }
}
");
    assert_eq!(c.vrrp["VI_1"].interface, "eth0");
}

#[test]
fn multiline_definitions_are_refused_for_now() {
    let (c, d) = compile("$M=a \\\nb\nvrrp_instance VI_1 {\n}\n");
    assert!(c.is_none());
    assert_has(
        &d,
        "1:1: error: $M: keepmon does not support multi-line definitions",
    );
}

#[test]
fn includes_follow_globs_relative_to_the_including_file() {
    let fs = FakeFs::with(&[
        (
            "/etc/keepalived/conf.d/b.conf",
            "vrrp_instance VI_B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 10.0.0.2\n }\n}\n",
        ),
        (
            "/etc/keepalived/conf.d/a.conf",
            "vrrp_instance VI_A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n bogus\n}\n",
        ),
        ("/etc/keepalived/conf.d/skip.txt", "garbage"),
    ]);
    let (c, w) = compile_with("include conf.d/*.conf\ninclude missing.conf\n", &fs);
    let c = c.expect("compiles");
    assert_eq!(c.vrrp.keys().collect::<Vec<_>>(), ["VI_A", "VI_B"]);
    assert!(
        w.iter().any(|d| d.starts_with("/etc/keepalived/conf.d/a.conf:7:2: warning: keepalived ignores this: unknown keyword 'bogus'")),
        "{w:?}"
    );
    assert_has(
        &w,
        "2:1: warning: keepalived ignores this: no config file matches \"missing.conf\"",
    );
    // includem makes a missing file fatal, as in keepalived.
    let (c, d) = compile_with("includem missing.conf\n", &fs);
    assert!(c.is_none());
    assert_has(&d, "keepalived refuses to run with this include");
}

#[test]
fn config_id_lines_apply_to_their_host() {
    let text = "\
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  @lb1 priority 200
  @lb2 priority 100
  @^lb1 advert_int 3
  virtual_ipaddress {
    10.0.0.1
  }
}
";
    let (c, _) = compile_with(text, &FakeFs::default());
    let vi = &c.expect("compiles").vrrp["VI_1"];
    assert_eq!(vi.priority, 200);
    assert_eq!(vi.advert_int, Duration::from_secs(1));
}

#[test]
fn fallbacks_are_those_of_keepalived() {
    let (c, w) = ok("\
vrrp_instance VI_1 {
  state MASTRE
  interface eth0
  virtual_router_id 5
  priority 300
  advert_int 0
  nopreempt
  virtual_ipaddress {
    10.0.0.1/33
  }
}
vrrp_instance VI_2 {
  state MASTER
  interface eth0
  virtual_router_id 6
  nopreempt
  virtual_ipaddress {
    10.0.0.2
  }
}
");
    let vi = &c.vrrp["VI_1"];
    assert_eq!(vi.initial_state, VrrpInitialState::Backup);
    assert_eq!(vi.priority, 100);
    assert_eq!(vi.advert_int, Duration::from_secs(1));
    assert_eq!(vi.virtual_addresses[0].prefix, 32);
    assert!(vi.nopreempt);
    assert_has(
        &w,
        "2:9: warning: keepalived reports \"(VI_1) unknown state 'MASTRE', defaulting to BACKUP\"",
    );
    assert_has(&w, "Using default 100");
    assert_has(&w, "Advert interval (0) not valid");
    assert_has(&w, "Invalid address prefix len 33");
    // state MASTER without a priority is the address owner (255), and
    // nopreempt is cleared.
    let vi = &c.vrrp["VI_2"];
    assert_eq!(vi.priority, 255);
    assert!(!vi.nopreempt);
    assert_has(&w, "priority 255 (address owner)");
    assert_has(&w, "nopreempt is incompatible with priority 255");
}

#[test]
fn what_stops_keepalived_is_an_error() {
    let (c, d) =
        compile("vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n");
    assert!(c.is_none());
    assert_has(&d, "1:1: error: (VI_1) the virtual router id must be set");
    let (c, d) = compile("vrrp_instance VI_1 {\n virtual_router_id 4\n}\n");
    assert!(c.is_none());
    assert_has(&d, "Unknown interface!");
    let (c, d) = compile("vrrp_instance VI_1 {\n interface\n}\n");
    assert!(c.is_none());
    assert_has(
        &d,
        "2:2: error: 'interface' is missing a parameter at word position 2; keepalived refuses to run",
    );
}

#[test]
fn unquoted_script_arguments_are_dropped_as_keepalived_does() {
    let (c, w) = ok("\
vrrp_script chk {
  script /usr/bin/killall -0 haproxy
  weight 10
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 5
  virtual_ipaddress {
    10.0.0.1
  }
  track_script {
    chk weight -5
  }
}
");
    let service = &c.watches["vrrp_script"].services["chk"];
    let Some(Monitor::Exec { args, .. }) = &service.monitor else {
        panic!("no exec monitor");
    };
    assert!(args.is_empty());
    assert_has(
        &w,
        "2:27: warning: keepalived ignores this: keepalived runs only \"/usr/bin/killall\"",
    );
    // The track_script line's weight overrides the script's.
    assert_eq!(c.vrrp["VI_1"].track[0].weight, -5);
}

#[test]
fn a_missing_script_is_disabled_and_not_tracked() {
    let (c, w) = ok("\
vrrp_script chk {
  script \"/nowhere/check\"
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 5
  virtual_ipaddress {
    10.0.0.1
  }
  track_script {
    chk
  }
}
");
    assert!(c.vrrp["VI_1"].track.is_empty());
    assert!(c.watches.is_empty());
    assert_has(&w, "keepalived disables it");
}

const LVS: &str = "\
global_defs {
  keepmon_dataplane proxy
}
virtual_server 192.0.2.10 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol TCP
    quorum 2
    hysteresis 1
    sorry_server 192.0.2.99 8080

    real_server 192.0.2.11 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 3
            retry 2
            delay_before_retry 4
        }
    }
    real_server 192.0.2.12 80 {
        weight 1
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 3
            retry 2
            delay_before_retry 4
        }
    }
}
virtual_server 192.0.2.20 443 {
    protocol TCP
    real_server 192.0.2.21 8443 {
        HTTP_GET {
            url {
              path /health
              status_code 200 301-302
            }
            connect_port 8080
            connect_timeout 2
        }
    }
}
";

#[test]
fn virtual_servers_get_one_health_service_each() {
    let (c, w) = ok(LVS);
    let vs = &c.virtual_servers["192.0.2.10:80"];
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(vs.scheduler, LbScheduler::WeightedRoundRobin);
    assert_eq!(vs.dataplane, DataPlane::Proxy);
    assert_eq!(vs.persistence, Some(Duration::from_secs(50)));
    assert_eq!(vs.persistence_netmask, Some(24));
    assert_eq!(vs.quorum, Some(2));
    assert_eq!(vs.hysteresis, 1);
    assert_eq!(
        vs.sorry_server,
        Some("192.0.2.99:8080".parse().expect("addr"))
    );
    assert_eq!(vs.real_servers.len(), 2);
    assert_eq!(vs.real_servers[0].weight, 3);
    assert_eq!(vs.real_servers[0].forward, Forward::Nat);
    assert!(vs.real_servers[1].inhibit_on_failure);
    let health = vs.health.as_ref().expect("health service");
    let service = c.service(health).expect("service");
    assert_eq!(service.interval, Some(Duration::from_secs(6)));
    // retry 2: down after three failures in a row, retried every 4s.
    assert_eq!((service.rise, service.fall), (1, 3));
    assert_eq!(service.failure_interval, Some(Duration::from_secs(4)));
    let Some(Monitor::Tcp(tcp)) = &service.monitor else {
        panic!("not tcp");
    };
    assert_eq!((tcp.port, tcp.timeout), (80, Duration::from_secs(3)));
    assert_eq!(
        c.hostgroups[&health.group].hosts,
        ["192.0.2.11", "192.0.2.12"]
    );
    // The HTTP one: keepalived's defaults (wlc, NAT, 60s loop, retry 1).
    let vs = &c.virtual_servers["192.0.2.20:443"];
    assert_eq!(vs.scheduler, LbScheduler::WeightedLeastConnection);
    let service = c
        .service(vs.health.as_ref().expect("health"))
        .expect("service");
    assert_eq!(service.interval, Some(Duration::from_secs(60)));
    assert_eq!(service.fall, 2);
    let Some(Monitor::Http(http)) = &service.monitor else {
        panic!("not http");
    };
    assert_eq!(http.port, 8080);
    assert_eq!(http.path, "/health");
    assert_eq!(http.status, [(200, 200), (301, 302)]);
    assert_has(&w, "keepmon-only keyword");
}

#[test]
fn a_virtual_server_without_protocol_is_udp_as_in_keepalived() {
    let (c, w) = ok("virtual_server 10.0.0.1 53 {\n real_server 10.0.0.2 53 {\n }\n}\n");
    assert_eq!(c.virtual_servers["10.0.0.1:53/udp"].protocol, Protocol::Udp);
    assert_has(&w, "no protocol set - defaulting to UDP");
}

#[test]
fn what_keepmon_cannot_do_yet_is_an_error() {
    for (text, needle) in [
        (
            "virtual_server fwmark 0 {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\n",
            "virtual_server fwmark 0",
        ),
        (
            "bfd_instance b {\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n track_bfd {\n b\n }\n}\n",
            "track_bfd b: keepalived's BFD process dropped that bfd_instance",
        ),
    ] {
        let (c, d) = compile(text);
        assert!(c.is_none(), "{text}");
        assert!(
            d.iter()
                .any(|d| d.contains("error: keepmon cannot run this") && d.contains(needle)),
            "{d:?}"
        );
    }
}

const BFD_INSTANCES: &str = "\
bfd_instance gw {
    neighbor_ip 10.0.0.254
    source_ip 10.0.0.1
    min_rx 20.5
    min_tx 30
    idle_tx 2000
    multiplier 3
    passive
    max_hops 2
    weight -30 reverse
}
bfd_instance v6 {
    neighbour_ip 2001:db8::1/64
}
bfd_instance chk {
    neighbor_ip 10.0.0.253
    checker
}
";

#[test]
fn bfd_instances_map_with_keepalived_defaults() {
    let (c, w) = ok(BFD_INSTANCES);
    let gw = &c.bfd["gw"];
    assert_eq!(
        gw.neighbor,
        "10.0.0.254".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(gw.source, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(
        (gw.min_rx_us, gw.min_tx_us, gw.idle_tx_us, gw.multiplier),
        (20_500, 30_000, 2_000_000, 3)
    );
    assert!(gw.passive);
    assert_eq!((gw.ttl, gw.max_hops), (255, 2));
    // Defaults; IPv6 sends hop limit 64.
    let v6 = &c.bfd["v6"];
    assert_eq!(
        (
            v6.min_rx_us,
            v6.min_tx_us,
            v6.idle_tx_us,
            v6.multiplier,
            v6.passive
        ),
        (10_000, 10_000, 1_000_000, 5, false)
    );
    assert_eq!((v6.ttl, v6.max_hops), (64, 0));
    assert_eq!(
        v6.neighbor,
        "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
    );
    // A session only for the checker still runs.
    assert!(c.bfd.contains_key("chk"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert_has(
        &w,
        "keepalived reads 2001:db8::1/64 as the address 2001:db8::1",
    );
}

#[test]
fn bfd_instance_errors_as_keepalived_reports_them() {
    let (c, w) = ok(
        "bfd_instance a {\n neighbor_ip 10.0.0.2\n min_rx 0\n idle_tx 999\n multiplier 256\n ttl 0\n max_hops 300\n source_ip x\n}\n\
         bfd_instance b {\n neighbor_ip 10.0.0.2\n}\n\
         bfd_instance c {\n neighbor_ip 10.0.0.3\n source_ip fe80::1\n}\n\
         bfd_instance d {\n ttl 5\n}\n\
         bfd_instance f {\n neighbor_ip 10.0.0.6\n ttl 5\n max_hops 6\n frobnicate\n}\n\
         bfd_instance a_name_that_is_far_too_long_for_bfd {\n neighbor_ip 10.0.0.7\n}\n",
    );
    for needle in [
        "3:9: warning: keepalived reports \"Configuration error: BFD instance a min_rx value 0 is not valid (must be in range [1-4294967]), ignoring\"",
        "BFD instance a idle_tx value 999 is not valid (must be in range [1000-4294967])",
        "BFD instance a multiplier value 256 not valid (must be in range [1-255])",
        "BFD instance a ttl/hoplimit value 0 not valid (must be in range [1-255])",
        "BFD instance a max_hops value 300 not valid (must be in range [-1-255])",
        "BFD instance a has malformed source address x, ignoring",
        "BFD instance b has duplicate neighbor address 10.0.0.2, ignoring instance",
        "BFD instance c source address fe80::1 and neighbor address 10.0.0.3 are not of the same family, disabling instance",
        "BFD instance d has no neighbor address set, disabling instance",
        "BFD instance f: max_hops exceeds ttl/hoplimit - setting to ttl/hoplimit",
        "keepalived ignores this: unknown keyword 'frobnicate'",
        "BFD instance a_name_that_is_far_too_long_for_bfd name too long (maximum length is 31 characters)",
    ] {
        assert_has(&w, needle);
    }
    assert_eq!(c.bfd.keys().collect::<Vec<_>>(), ["a", "f"]);
    assert_eq!(c.bfd["f"].max_hops, 5);
    assert_eq!(
        c.bfd["a"].min_rx_us, 10_000,
        "an invalid value keeps the default"
    );
}

#[test]
fn a_malformed_bfd_neighbor_is_refused() {
    let (c, d) = compile("bfd_instance e {\n neighbor_ip nope\n min_rx 5\n weight 300\n}\n");
    assert!(c.is_none());
    assert_has(
        &d,
        "2:14: error: keepalived reports \"Configuration error: BFD instance e has malformed neighbor address nope, ignoring instance\" and then uses the instance it freed",
    );
    // The VRRP process still reads the weight; the BFD process nothing more.
    assert_has(
        &d,
        "4:9: warning: keepalived reports \"Configuration error: BFD instance e weight value 300",
    );
    assert!(!has(&d, "min_rx"), "{d:?}");
}

#[test]
fn track_bfd_lines_weigh_as_keepalived() {
    let text = format!(
        "{BFD_INSTANCES}\
vrrp_instance VI_1 {{
 interface eth0
 virtual_router_id 1
 virtual_ipaddress {{
  10.0.0.1
 }}
 track_bfd {{
  gw
  v6 weight 10
  v6
  nope
  chk
 }}
}}
vrrp_instance VI_2 {{
 interface eth0
 virtual_router_id 2
 virtual_ipaddress {{
  10.0.0.2
 }}
 track_bfd {{
  gw weight 20 noreverse
  v6 weight
  v6 weight 1 sideways
 }}
}}
vrrp_instance VI_3 {{
 interface eth0
 virtual_router_id 3
 priority 255
 virtual_ipaddress {{
  10.0.0.3
 }}
 track_bfd {{
  gw
  v6
 }}
}}
"
    );
    let (c, w) = ok(&text);
    let tracks = |name: &str| -> Vec<(String, i32, bool)> {
        c.vrrp[name]
            .track_bfds
            .iter()
            .map(|t| (t.name.clone(), t.weight, t.reverse))
            .collect()
    };
    // The block's weight and reverse unless the line gives its own.
    assert_eq!(
        tracks("VI_1"),
        [("gw".to_string(), -30, true), ("v6".to_string(), 10, false)]
    );
    assert_eq!(tracks("VI_2"), [("gw".to_string(), 20, false)]);
    // An address owner drops weighted tracking.
    assert_eq!(tracks("VI_3"), [("v6".to_string(), 0, false)]);
    for needle in [
        "(VI_1) duplicate track_bfd v6 - ignoring",
        "(VI_1) track bfd nope not found, ignoring...",
        // `checker` only: the VRRP process never heard of it.
        "(VI_1) track bfd chk not found, ignoring...",
        "(VI_2) weight without value specified for track bfd v6 - ignoring",
        "(VI_2) unknown track bfd v6 weight option sideways - ignoring",
        "(VI_3) ignoring tracked bfd gw with weight -30 due to address_owner",
    ] {
        assert_has(&w, needle);
    }
}

#[test]
fn a_sync_group_track_bfd_reaches_every_member() {
    let (c, w) = ok("bfd_instance gw {\n neighbor_ip 10.0.0.254\n}\n\
         vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n track_bfd {\n gw\n }\n}\n\
         vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n\
         vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 10.0.0.2\n }\n}\n");
    for name in ["VI_1", "VI_2"] {
        assert_eq!(c.vrrp[name].track_bfds.len(), 1, "{name}: {w:?}");
        assert_eq!(c.vrrp[name].track_bfds[0].weight, 0);
    }
}

#[test]
fn bfd_check_makes_a_real_server_follow_its_session() {
    let (c, w) = ok("bfd_instance rs1 {\n neighbor_ip 10.0.0.11\n}\n\
         bfd_instance v {\n neighbor_ip 10.0.0.12\n vrrp\n}\n\
         virtual_server 10.0.0.1 80 {\n protocol TCP\n\
          real_server 10.0.0.11 80 {\n  BFD_CHECK {\n   name rs1\n   alpha maybe\n  }\n }\n\
          real_server 10.0.0.12 80 {\n  BFD_CHECK {\n   name v\n  }\n  BFD_CHECK {\n   name rs1 rs1\n  }\n  BFD_CHECK {\n   name rs1\n   name rs1\n  }\n  TCP_CHECK {\n  }\n }\n}\n");
    let vs = &c.virtual_servers["10.0.0.1:80"];
    assert_eq!(vs.real_servers[0].bfd.as_deref(), Some("rs1"));
    // Its other BFD_CHECKs dropped, the second server is the TCP_CHECK's
    // (its own check: the first server has none to share).
    assert_eq!(vs.real_servers[1].bfd, None);
    assert!(vs.health.is_none());
    assert_eq!(vs.real_servers[1].checks.len(), 1);
    assert!(vs.real_servers[0].checks.is_empty());
    for needle in [
        "Invalid alpha parameter maybe",
        "([10.0.0.12]:80) BFD_CHECK - BFD v not configured",
        "([10.0.0.12]:80) BFD_CHECK - No or too many names specified - skipping checker",
        "([10.0.0.12]:80) BFD_CHECK - BFD rs1 already specified as rs1",
    ] {
        assert_has(&w, needle);
    }
    // A BFD_CHECK beside another checker: both must pass.
    let (c, _) = ok("bfd_instance rs1 {\n neighbor_ip 10.0.0.11\n}\n\
         virtual_server 10.0.0.1 80 {\n protocol TCP\n\
          real_server 10.0.0.11 80 {\n  BFD_CHECK {\n   name rs1\n  }\n  TCP_CHECK {\n  }\n }\n}\n");
    let vs = &c.virtual_servers["10.0.0.1:80"];
    assert_eq!(vs.real_servers[0].bfd.as_deref(), Some("rs1"));
    assert!(vs.health.is_some());
}

#[test]
fn detection_by_first_keyword() {
    use crate::config::keepalived::looks_like_keepalived;
    assert!(looks_like_keepalived("! comment\n\nglobal_defs {\n}\n"));
    assert!(looks_like_keepalived("vrrp_instance VI_1{\n"));
    assert!(looks_like_keepalived("$IF=eth0\nvrrp_instance VI_1 {\n"));
    assert!(looks_like_keepalived("includem /etc/keepalived/*.conf\n"));
    assert!(looks_like_keepalived("vrrp_track_process web {\n"));
    assert!(looks_like_keepalived("track_file f {\n"));
    assert!(looks_like_keepalived("! BFD first\nbfd_instance gw {\n"));
    assert!(looks_like_keepalived("virtual_server_group G {\n"));
    assert!(!looks_like_keepalived("hostgroup g a\n"));
    assert!(!looks_like_keepalived("# mon.cf\nwatch g\n"));
    assert!(!looks_like_keepalived(""));
}

#[test]
fn keepalived_argv_for_notify_scripts() {
    use crate::alert::notify_argv;
    use crate::config::model::VrrpNotify;
    let job = |state: &str| -> Vec<(String, String)> {
        vec![
            ("VRRP_INSTANCE".into(), "VI_1".into()),
            ("VRRP_STATE".into(), state.into()),
            ("VRRP_PRIORITY".into(), "150".into()),
        ]
    };
    let any = VrrpNotify {
        run_as: None,
        path: PathBuf::from("/etc/keepalived/notify.sh"),
        args: vec!["x".into()],
        on: NotifyOn::Any,
    };
    assert_eq!(
        notify_argv(&job("MASTER"), &any).expect("runs"),
        [
            "/etc/keepalived/notify.sh",
            "x",
            "INSTANCE",
            "VI_1",
            "MASTER",
            "150"
        ]
    );
    let master = VrrpNotify {
        on: NotifyOn::Master,
        ..any
    };
    assert_eq!(
        notify_argv(&job("MASTER"), &master).expect("runs"),
        ["/etc/keepalived/notify.sh", "x"]
    );
    assert!(notify_argv(&job("BACKUP"), &master).is_none());
}

#[test]
fn each_keepalived_process_skips_the_others_blocks_by_their_braces() {
    // `virtual_ipaddress 10.0.0.2` without its `{`: the VRRP process takes
    // the next `}` as the end of that list and reads on inside the
    // instance; the checker process, which skips vrrp_instance by counting
    // braces, ends the instance there and reads the rest at the top level.
    let (c, w) = ok("\
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 5
  virtual_ipaddress 10.0.0.2
}
  priority 120
  virtual_ipaddress { 10.0.0.1 }
}
virtual_server 10.9.0.1 80 {
  protocol TCP
}
");
    let vi = &c.vrrp["VI_1"];
    assert_eq!(vi.priority, 120);
    assert_eq!(vi.virtual_addresses.len(), 1);
    // The checker process's view of the same lines.
    assert_has(
        &w,
        "6:3: warning: keepalived ignores this: unknown keyword 'priority'",
    );
    assert_has(&w, "8:1: warning: keepalived reports \"Extra '}' found\"");
    assert!(c.virtual_servers.contains_key("10.9.0.1:80"));
}

#[test]
fn a_sync_group_maps_to_its_members_with_group_tracking_and_notifies() {
    let text = "vrrp_script chk {\n script /bin/true\n}\nvrrp_script heavy {\n script /bin/true\n weight 20\n}\n\
vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n track_script {\n heavy\n }\n}\n\
vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 10.0.0.2\n }\n}\n\
vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n track_script {\n chk\n }\n track_interface {\n eth1\n }\n notify /bin/true\n notify_fault \"/bin/true x\"\n}\n\
vrrp_sync_group H {\n group {\n VI_2\n VI_3\n }\n}\n";
    let (c, w) = ok(text);
    let group = &c.vrrp_sync_groups["G"];
    assert_eq!(group.members, vec!["VI_1".to_string(), "VI_2".to_string()]);
    let on: Vec<NotifyOn> = group
        .notify
        .iter()
        .map(|l| match &l.action {
            Action::Notify(n) => n.on,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(on, vec![NotifyOn::Any, NotifyOn::Fault]);
    for member in ["VI_1", "VI_2"] {
        let vi = &c.vrrp[member];
        // The group's script (weight 0: FAULT) is tracked by every member;
        // VI_1's own weighted script is dropped, as keepalived drops it.
        assert_eq!(vi.track.len(), 1, "{member}: {:?}", vi.track);
        assert_eq!(vi.track[0].weight, 0);
        assert!(matches!(&vi.track[0].target, TrackTarget::Service(r) if r.service == "chk"));
        assert_eq!(vi.track_interfaces, vec!["eth1".to_string()]);
    }
    assert_has(
        &w,
        "(VI_1) ignoring tracked script heavy with weights due to SYNC group",
    );
    assert_has(
        &w,
        "Virtual router VI_2 cannot exist in more than one sync group; ignoring H",
    );
    assert_has(
        &w,
        "Virtual router VI_3 specified in sync group H doesn't exist - ignoring",
    );
    assert_has(&w, "Sync group H, no matching virtual router found");
    assert!(!c.vrrp_sync_groups.contains_key("H"));
}

#[test]
fn sync_group_tracking_weight_keeps_member_weights() {
    let text = "vrrp_script heavy {\n script /bin/true\n weight 20\n}\n\
vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n track_script {\n heavy\n }\n}\n\
vrrp_sync_group G {\n group {\n VI_1\n }\n sync_group_tracking_weight\n}\n";
    let (c, w) = ok(text);
    assert_eq!(c.vrrp["VI_1"].track[0].weight, 20);
    assert_has(&w, "Sync group G has only 1 virtual router(s)");
}

#[test]
fn scripts_run_as_keepalived_script_users() {
    let passwd = "root:x:0:0::/root:/bin/sh\nkeepalived_script:x:998:997::/:/bin/false\nops:x:1001:1001::/:/bin/sh\n";
    let fs = FakeFs::with(&[
        ("/etc/passwd", passwd),
        ("/etc/group", "root:x:0:\nwheel:x:10:\n"),
    ]);
    let instance = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n track_script {\n a\n b\n }\n notify /bin/true\n}\n";
    let scripts = "vrrp_script a {\n script /bin/true\n}\nvrrp_script b {\n script /bin/true\n user ops wheel\n}\n";
    let run_as = |c: &Config, script: &str| {
        c.watches["vrrp_script"].services[script]
            .run_as
            .as_ref()
            .map(|r| (r.user.clone(), r.uid, r.gid))
    };
    let notify_user = |c: &Config| match &c.vrrp["VI_1"].notify[0].action {
        Action::Notify(n) => n.run_as.as_ref().map(|r| r.uid),
        other => panic!("{other:?}"),
    };
    // keepalived_script exists: the default; a script's own user wins.
    let (c, _) = compile_with(&format!("{scripts}{instance}"), &fs);
    let c = c.expect("compiles");
    assert_eq!(
        run_as(&c, "a"),
        Some(("keepalived_script".to_string(), 998, 997))
    );
    assert_eq!(run_as(&c, "b"), Some(("ops".to_string(), 1001, 10)));
    assert_eq!(notify_user(&c), Some(998));
    // script_user sets the default.
    let (c, _) = compile_with(
        &format!("global_defs {{\n script_user ops\n}}\n{scripts}{instance}"),
        &fs,
    );
    let c = c.expect("compiles");
    assert_eq!(run_as(&c, "a"), Some(("ops".to_string(), 1001, 1001)));
    assert_eq!(notify_user(&c), Some(1001));
    // An unknown user removes the script, as keepalived does.
    let (c, d) = compile_with(
        &format!("vrrp_script a {{\n script /bin/true\n user nosuch\n}}\n{instance}"),
        &fs,
    );
    assert_has(&d, "Script user 'nosuch' does not exist");
    assert_has(&d, "track script a not found");
    assert!(c.expect("compiles").vrrp["VI_1"].track.is_empty());
    // Without keepalived_script and script security: the daemon's user.
    let (c, _) = compile(&format!("{scripts}{instance}").replace(" user ops wheel\n", ""));
    assert_eq!(run_as(&c.expect("compiles"), "a"), None);
}

#[test]
fn http_get_urls_all_count_with_their_digests() {
    let text = "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n HTTP_GET {\n\
 url {\n path /\n digest 3D16A7C9BB47D4D49EAD24CCAFD3D577\n }\n\
 url {\n path /health\n status_code 200\n digest 0123\n }\n\
 url {\n path /x\n digest 3d16a7c9bb47d4d49ead24ccafd3d57g\n }\n }\n }\n}\n";
    let (c, w) = ok(text);
    let (_, service) = c
        .services()
        .find(|(_, s)| matches!(s.monitor, Some(Monitor::Http(_))))
        .expect("an http service");
    let Some(Monitor::Http(check)) = &service.monitor else {
        unreachable!()
    };
    assert_eq!(check.path, "/");
    assert_eq!(
        check.digest.as_deref(),
        Some("3d16a7c9bb47d4d49ead24ccafd3d577")
    );
    let more: Vec<(&str, Option<&str>)> = check
        .more_urls
        .iter()
        .map(|u| (u.path.as_str(), u.digest.as_deref()))
        .collect();
    // keepalived logs the bad digests and checks those urls without one.
    assert_eq!(more, vec![("/health", None), ("/x", None)]);
    assert_has(
        &w,
        "digest '0123' character length should be 32 rather than 4",
    );
    assert_has(
        &w,
        "Unable to interpret hex digit in '3d16a7c9bb47d4d49ead24ccafd3d57g' at offset 30/31",
    );
}

#[test]
fn excluded_addresses_are_kept_apart_from_the_advertised_ones() {
    let (c, _) = ok(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1/24\n }\n virtual_ipaddress_excluded {\n 10.0.0.2/24 dev eth1\n 2001:db8::2/64\n }\n}\n",
    );
    let vi = &c.vrrp["VI_1"];
    let vips: Vec<String> = vi
        .virtual_addresses
        .iter()
        .map(|v| v.addr.to_string())
        .collect();
    let excluded: Vec<(String, Option<String>)> = vi
        .excluded_addresses
        .iter()
        .map(|v| (v.addr.to_string(), v.dev.clone()))
        .collect();
    assert_eq!(vips, ["10.0.0.1"]);
    // Either family: they are not in the adverts.
    assert_eq!(
        excluded,
        [
            ("10.0.0.2".to_string(), Some("eth1".to_string())),
            ("2001:db8::2".to_string(), None)
        ]
    );
}

#[test]
fn track_files_carry_keepalived_weights() {
    let text = "track_file weighty {\n file /run/prio\n weight 3 reverse\n}\nvrrp_track_file plain {\n file /run/flag\n}\ntrack_file nofile {\n weight 2\n}\n\
vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n track_file {\n weighty\n plain weight 0\n nofile\n }\n}\n\
vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 10.0.0.2\n }\n track_file {\n plain\n }\n}\n\
vrrp_sync_group G {\n group {\n VI_2\n }\n}\n";
    let (c, w) = ok(text);
    let files: Vec<(String, i32, bool)> = c.vrrp["VI_1"]
        .track_files
        .iter()
        .map(|f| (f.path.display().to_string(), f.weight, f.reverse))
        .collect();
    assert_eq!(
        files,
        [
            ("/run/prio".to_string(), 3, true),
            ("/run/flag".to_string(), 0, false)
        ]
    );
    assert_has(&w, "No file set for track_file nofile - ignoring");
    assert_has(&w, "(VI_1) track file nofile not found, ignoring...");
    // In a sync group the default weight 1 becomes 0 (FAULT), as keepalived does.
    assert_eq!(c.vrrp["VI_2"].track_files[0].weight, 0);
    assert_has(
        &w,
        "(VI_2) ignoring weight from tracked file plain due to SYNC group. specify weight 0",
    );
}

/// FILE_CHECK: the real server tracks the named track_file with the
/// checker's weight, else the block's weight and direction; an unknown
/// file or none drops the checker with keepalived's messages.
#[test]
fn file_checks_track_their_file_with_keepalived_weights() {
    let text = "track_file load {\n file /run/load\n weight 3 reverse\n}\n\
virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  FILE_CHECK {\n   track_file load\n  }\n  FILE_CHECK {\n   track_file load\n   weight -100 noreverse\n  }\n  FILE_CHECK {\n   track_file nosuch\n  }\n  FILE_CHECK {\n   track_file load\n   weight 2 sideways\n  }\n  TCP_CHECK {\n  }\n }\n}\n";
    let (c, w) = ok(text);
    let vs = c.virtual_servers.values().next().expect("vs");
    let files: Vec<(String, i32, bool)> = vs.real_servers[0]
        .track_files
        .iter()
        .map(|f| (f.path.display().to_string(), f.weight, f.reverse))
        .collect();
    assert_eq!(
        files,
        [
            ("/run/load".to_string(), 3, true),
            ("/run/load".to_string(), -100, false),
            ("/run/load".to_string(), 3, true),
        ]
    );
    // The TCP_CHECK is the only polled check, shared as the health.
    assert!(vs.health.is_some());
    assert_has(&w, "track_file nosuch not found");
    assert_has(&w, "FILE_CHECK has no track_file specified - ignoring");
    assert_has(&w, "unknown track file weight option sideways - ignoring");
}

/// `init_file [VALUE] [overwrite]`: every track file with one is
/// initialised, tracked or not; each line starts again from 0 without
/// overwrite; keepalived's messages for odd values.
#[test]
fn init_file_initialises_track_files_as_keepalived_does() {
    let text = "track_file a {\n file /run/a\n init_file\n}\ntrack_file b {\n file /run/b\n init_file -7 overwrite\n}\ntrack_file c {\n file /run/c\n init_file 5 overwrite\n init_file 300 again\n}\ntrack_file d {\n file /run/d\n}\ntrack_file e {\n init_file 1\n}\ntrack_file f {\n file /run/f\n init_file 12x\n}\n";
    let (c, w) = ok(text);
    let inits: Vec<(String, i64, bool)> = c
        .file_inits
        .iter()
        .map(|f| (f.path.display().to_string(), f.value, f.overwrite))
        .collect();
    assert_eq!(
        inits,
        [
            ("/run/a".to_string(), 0, false),
            ("/run/b".to_string(), -7, true),
            ("/run/c".to_string(), 300, false),
            ("/run/f".to_string(), 0, false),
        ]
    );
    assert_has(
        &w,
        "Track file c init value 300 is outside sensible range [-254, 254]",
    );
    assert_has(&w, "Unknown track file init option again");
    assert_has(&w, "Track file f init value 12x is invalid");
    assert_has(&w, "No file set for track_file e - ignoring");
}

/// keepalived's `mh-port`/`mh-fallback` (and the sh words, which set the
/// same IPVS flag bits) become the mh scheduler's flags; sh's flags are
/// not run; other schedulers ignore them, as the kernel does.
#[test]
fn scheduler_flags_map_onto_mh() {
    let vs = |algo: &str, flags: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n lb_algo {algo}\n {flags}\n lb_kind NAT\n protocol TCP\n real_server 10.0.0.2 80 {{\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n}}\n"
        )
    };
    let (c, _) = ok(&vs("mh", "mh-port\n mh-fallback"));
    assert_eq!(
        c.virtual_servers["10.0.0.1:80"].scheduler,
        LbScheduler::Maglev(crate::config::model::MhFlags {
            port: true,
            fallback: true
        })
    );
    let (c, _) = ok(&vs("mh", "sh-fallback"));
    assert_eq!(
        c.virtual_servers["10.0.0.1:80"].scheduler,
        LbScheduler::Maglev(crate::config::model::MhFlags {
            port: false,
            fallback: true
        })
    );
    let (none, d) = compile(&vs("sh", "sh-port"));
    assert!(none.is_none());
    assert_has(&d, "sh-port/sh-fallback with the sh scheduler");
    let (_, w) = ok(&vs("rr", "mh-port"));
    assert_has(&w, "rr ignores them");
}

/// The health service of the only virtual server of `c`.
fn only_health(c: &Config) -> &crate::config::model::Service {
    let vs = c.virtual_servers.values().next().expect("a virtual server");
    c.service(vs.health.as_ref().expect("health"))
        .expect("service")
}

#[test]
fn smtp_checks_run_the_smtp_monitor_with_keepalived_defaults() {
    let (c, w) = ok(
        "virtual_server 10.0.0.1 25 {\n protocol TCP\n real_server 10.0.0.2 25 {\n  SMTP_CHECK {\n   connect_port 2525\n  }\n }\n real_server 10.0.0.3 25 {\n  SMTP_CHECK {\n   connect_port 2525\n  }\n }\n}\n",
    );
    assert!(w.is_empty(), "{w:?}");
    let service = only_health(&c);
    let Some(Monitor::Smtp(smtp)) = &service.monitor else {
        panic!("not smtp: {:?}", service.monitor);
    };
    assert_eq!(smtp.port, 2525);
    assert_eq!(smtp.helo_name, "smtpchecker.keepalived.org");
    assert_eq!(smtp.timeout, Duration::from_secs(5));
    assert_eq!(service.fall, 2);
    assert_eq!(service.failure_interval, Some(Duration::from_secs(1)));

    // helo_name keeps its first word; a single host block is the
    // checker's connection (with the deprecation keepalived logs).
    let (c, w) = ok(
        "virtual_server 10.0.0.1 25 {\n protocol TCP\n real_server 10.0.0.2 25 {\n  SMTP_CHECK {\n   helo_name lb1.example.com extra\n   retry 4\n   host {\n    connect_ip 10.0.0.9\n    connect_port 587\n    connect_timeout 2\n    delay_before_retry 2\n   }\n  }\n }\n}\n",
    );
    assert_has(&w, "takes only the first word of helo_name");
    assert_has(&w, "The SMTP_CHECK host block is deprecated");
    let service = only_health(&c);
    let Some(Monitor::Smtp(smtp)) = &service.monitor else {
        panic!("not smtp");
    };
    assert_eq!(smtp.helo_name, "lb1.example.com");
    assert_eq!(smtp.port, 587);
    assert_eq!(smtp.timeout, Duration::from_secs(2));
    assert_eq!(service.fall, 5);
    assert_eq!(service.failure_interval, Some(Duration::from_secs(2)));
    assert_eq!(c.hostgroups[&service.group].hosts, ["10.0.0.9"]);

    let (c, d) = compile(
        "virtual_server 10.0.0.1 25 {\n protocol TCP\n real_server 10.0.0.2 25 {\n  SMTP_CHECK {\n   host {\n    connect_ip 10.0.0.9\n   }\n  }\n }\n}\n",
    );
    assert!(c.is_none());
    assert_has(&d, "connect timeout of 0");

    // Several host blocks are several checkers (keepalived's
    // smtp_check_end_handler), and so is the checker's own connection when
    // it sets one: the real server is up while all of them pass.
    let own_checks = |text: &str| {
        let (c, _) = ok(text);
        let vs = c.virtual_servers.values().next().expect("vs").clone();
        assert_eq!(vs.health, None);
        let checks = vs.real_servers[0].checks.clone();
        let seen: Vec<(u16, Duration, String)> = checks
            .iter()
            .map(|check| {
                let service = c.service(&check.health).expect("service");
                let Some(Monitor::Smtp(smtp)) = &service.monitor else {
                    panic!("not smtp");
                };
                assert!(c.hostgroups[&service.group].hosts.contains(&check.host));
                (smtp.port, smtp.timeout, check.host.clone())
            })
            .collect();
        seen
    };
    assert_eq!(
        own_checks(
            "virtual_server 10.0.0.1 25 {\n protocol TCP\n real_server 10.0.0.2 25 {\n  SMTP_CHECK {\n   host {\n    connect_timeout 2\n   }\n   host {\n    connect_ip 10.0.0.8\n    connect_port 587\n    connect_timeout 3\n   }\n  }\n }\n}\n"
        ),
        [
            (25, Duration::from_secs(2), "10.0.0.2".to_string()),
            (587, Duration::from_secs(3), "10.0.0.8".to_string())
        ]
    );
    assert_eq!(
        own_checks(
            "virtual_server 10.0.0.1 25 {\n protocol TCP\n real_server 10.0.0.2 25 {\n  SMTP_CHECK {\n   connect_timeout 3\n   host {\n    connect_timeout 2\n   }\n  }\n }\n}\n"
        ),
        [
            (25, Duration::from_secs(3), "10.0.0.2".to_string()),
            (25, Duration::from_secs(2), "10.0.0.2".to_string())
        ]
    );
}

/// keepalived checks each checker of each real server on its own; a real
/// server is up while all of its checkers are, and one without a checker
/// is always up. Equal checkers share one health service over their
/// hosts; when every real server has one checker and they agree, that
/// service is the virtual server's `health`.
#[test]
fn several_and_differing_checkers_become_each_real_servers_own_checks() {
    let (c, w) = ok(
        "virtual_server 10.0.0.1 80 {\n protocol TCP\n delay_loop 3\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n  HTTP_GET {\n   url {\n    path /health\n   }\n   retry 3\n  }\n }\n real_server 10.0.0.3 80 {\n  TCP_CHECK {\n  }\n }\n real_server 10.0.0.4 80 {\n }\n real_server 10.0.0.5 8080 {\n  TCP_CHECK {\n   connect_ip 10.0.0.6\n  }\n }\n}\n",
    );
    assert!(w.is_empty(), "{w:?}");
    let vs = c.virtual_servers.values().next().expect("vs");
    assert_eq!(vs.health, None);
    let checks: Vec<Vec<(String, String)>> = vs
        .real_servers
        .iter()
        .map(|rs| {
            rs.checks
                .iter()
                .map(|check| (check.health.to_string(), check.host.clone()))
                .collect()
        })
        .collect();
    let tcp80 = "10.0.0.1_80-1:tcp_check".to_string();
    assert_eq!(
        checks,
        [
            vec![
                (tcp80.clone(), "10.0.0.2".to_string()),
                ("10.0.0.1_80-2:http_get".to_string(), "10.0.0.2".to_string()),
            ],
            vec![(tcp80.clone(), "10.0.0.3".to_string())],
            vec![],
            vec![(
                "10.0.0.1_80-3:tcp_check".to_string(),
                "10.0.0.6".to_string()
            )],
        ]
    );
    assert_eq!(
        c.hostgroups["10.0.0.1_80-1"].hosts,
        ["10.0.0.2", "10.0.0.3"]
    );
    assert_eq!(c.hostgroups["10.0.0.1_80-3"].hosts, ["10.0.0.6"]);
    let http = c
        .service(&vs.real_servers[0].checks[1].health)
        .expect("http service");
    assert_eq!(http.fall, 4);
    assert_eq!(http.interval, Some(Duration::from_secs(3)));
    let Some(Monitor::Tcp(tcp)) = &c
        .service(&vs.real_servers[3].checks[0].health)
        .expect("tcp service")
        .monitor
    else {
        panic!("not tcp");
    };
    assert_eq!(tcp.port, 8080);

    // One agreeing checker per real server: one shared health service.
    let (c, _) = ok(
        "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n }\n real_server 10.0.0.3 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
    );
    let vs = c.virtual_servers.values().next().expect("vs");
    assert!(vs.health.is_some());
    assert!(vs.real_servers.iter().all(|rs| rs.checks.is_empty()));
    assert_eq!(c.hostgroups["10.0.0.1_80"].hosts, ["10.0.0.2", "10.0.0.3"]);
}

#[test]
fn checker_defaults_differ_by_kind_as_in_keepalived() {
    let vs = |checker: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n protocol TCP\n delay_loop 7\n real_server 10.0.0.2 80 {{\n  {checker}\n }}\n}}\n"
        )
    };
    for (checker, fall, failure_interval) in [
        ("TCP_CHECK {\n }", 2, 1),
        ("HTTP_GET {\n url {\n path /\n }\n }", 2, 3),
        ("MISC_CHECK {\n misc_path /bin/true\n }", 1, 1),
    ] {
        let (c, _) = ok(&vs(checker));
        let service = only_health(&c);
        assert_eq!(service.fall, fall, "{checker}");
        assert_eq!(
            service.failure_interval,
            Some(Duration::from_secs(failure_interval)),
            "{checker}"
        );
    }
}

#[test]
fn udp_checks_run_the_udp_monitor_as_keepalived_reads_them() {
    let vs = |checker: &str| {
        format!(
            "virtual_server 10.0.0.1 53 {{\n protocol UDP\n real_server 10.0.0.2 53 {{\n  UDP_CHECK {{\n{checker}\n  }}\n }}\n}}\n"
        )
    };
    let (c, w) = ok(&vs("   connect_timeout 2\n"));
    assert!(w.is_empty(), "{w:?}");
    let Some(Monitor::Udp(udp)) = &only_health(&c).monitor else {
        panic!("not udp");
    };
    assert_eq!(
        (
            udp.port,
            udp.payload.as_deref(),
            udp.require_reply,
            &udp.reply
        ),
        (53, None, false, &None)
    );
    assert_eq!((udp.min_reply_length, udp.max_reply_length), (0, 255));
    assert_eq!(udp.timeout, Duration::from_secs(2));

    let (c, w) = ok(&vs(
        "   payload 50 49 4e 47\n   require_reply 50 4F xx\n   min_reply_length 2\n   max_reply_length 64\n",
    ));
    assert!(w.is_empty(), "{w:?}");
    let Some(Monitor::Udp(udp)) = &only_health(&c).monitor else {
        panic!("not udp");
    };
    assert_eq!(udp.payload.as_deref(), Some(&b"PING"[..]));
    assert!(udp.require_reply);
    assert_eq!(
        udp.reply.as_ref().map(|r| r.to_hex()),
        Some("50 4f xx".to_string())
    );
    assert_eq!((udp.min_reply_length, udp.max_reply_length), (2, 64));

    // What keepalived only logs: a bad hex string (and a last octet of
    // ff), a bad length, min above max.
    let (c, w) = ok(&vs(
        "   payload 0a ff\n   require_reply zz\n   min_reply_length 70000\n   max_reply_length 1\n   min_reply_length 3\n",
    ));
    assert_has(&w, "Invalid hex string for UDP_CHECK payload");
    assert_has(&w, "Invalid hex string for UDP_CHECK reply");
    assert_has(&w, "UDP_CHECK min length 70000 not valid");
    assert_has(
        &w,
        "UDP_CHECK min_reply length 3 > max_reply_length 1 - will always fail",
    );
    let Some(Monitor::Udp(udp)) = &only_health(&c).monitor else {
        panic!("not udp");
    };
    assert_eq!(
        (udp.payload.as_deref(), udp.require_reply, &udp.reply),
        (None, true, &None)
    );
}

#[test]
fn dns_checks_run_the_dns_monitor_with_keepalived_defaults() {
    let vs = |checker: &str| {
        format!(
            "virtual_server 10.0.0.1 53 {{\n protocol UDP\n delay_loop 9\n real_server 10.0.0.2 53 {{\n  DNS_CHECK {{\n{checker}\n  }}\n }}\n}}\n"
        )
    };
    let (c, w) = ok(&vs(""));
    assert!(w.is_empty(), "{w:?}");
    let service = only_health(&c);
    let Some(Monitor::Dns(dns)) = &service.monitor else {
        panic!("not dns");
    };
    assert_eq!(
        (dns.port, dns.query_type.as_str(), dns.name.as_str()),
        (53, "SOA", ".")
    );
    // keepalived's DNS_CHECK defaults: retry 3, delay_before_retry = delay_loop.
    assert_eq!(service.fall, 4);
    assert_eq!(service.failure_interval, Some(Duration::from_secs(9)));

    let (c, w) = ok(&vs(
        "   type aaaa\n   name www.example.com\n   connect_port 5353\n",
    ));
    assert!(w.is_empty(), "{w:?}");
    let Some(Monitor::Dns(dns)) = &only_health(&c).monitor else {
        panic!("not dns");
    };
    assert_eq!(
        (dns.port, dns.query_type.as_str(), dns.name.as_str()),
        (5353, "AAAA", "www.example.com")
    );

    // keepalived 2.2.7 refuses a one-character first label as "empty" and
    // asks about the root instead; an unknown type keeps SOA.
    let (c, w) = ok(&vs("   type SRV\n   name x.example.com\n   name ab..c\n"));
    assert_has(&w, "Unknown DNS check type SRV - ignoring");
    assert_has(
        &w,
        "DNS_CHECK name 'x.example.com' has empty label - ignoring",
    );
    assert_has(&w, "takes a first label of one character for an empty one");
    assert_has(&w, "DNS_CHECK name 'ab..c' has empty label - ignoring");
    let Some(Monitor::Dns(dns)) = &only_health(&c).monitor else {
        panic!("not dns");
    };
    assert_eq!((dns.query_type.as_str(), dns.name.as_str()), ("SOA", "."));

    let (c, w) = ok(&vs("   name first.example\n   name second.example\n"));
    assert_has(&w, "DNS_CHECK name already specified - ignoring");
    let Some(Monitor::Dns(dns)) = &only_health(&c).monitor else {
        panic!("not dns");
    };
    assert_eq!(dns.name, "first.example");
}

#[test]
fn track_processes_carry_keepalived_rules() {
    use crate::config::model::ParamMatch;
    let (c, w) = ok(
        "vrrp_track_process web {\n process nginx\n weight -20 reverse\n quorum 2\n quorum_max 4\n delay 1.5\n}\nvrrp_track_process sleeper {\n process /bin/sleep 3601\n fork_delay 2\n}\nvrrp_track_process none {\n process forbidden\n quorum_max 0\n}\nvrrp_track_process part {\n process /usr/bin/python3 -m\n param_match partial\n weight 5\n weight 6\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n 10.0.0.1\n }\n track_process {\n web\n sleeper weight 10\n none\n part weight 7 noreverse\n missing\n web\n }\n}\n",
    );
    assert_has(&w, "(VI_1) track process missing not found, ignoring...");
    assert_has(&w, "(VI_1) duplicate track_process web - ignoring");
    assert_has(&w, "Weight already set for track process part - ignoring 6");
    let t = &c.vrrp["VI_1"].track_processes;
    assert_eq!(t.len(), 4, "{t:#?}");
    assert_eq!(
        (
            t[0].process.as_str(),
            t[0].weight,
            t[0].reverse,
            t[0].quorum,
            t[0].quorum_max
        ),
        ("nginx", -20, true, 2, 4)
    );
    assert_eq!(t[0].fork_delay, Some(Duration::from_millis(1500)));
    assert_eq!(t[0].terminate_delay, Some(Duration::from_millis(1500)));
    assert!(!t[0].full_command);
    assert_eq!(
        (
            t[1].process.as_str(),
            t[1].args.as_slice(),
            t[1].param_match,
            t[1].full_command
        ),
        (
            "/bin/sleep",
            &["3601".to_string()][..],
            ParamMatch::Exact,
            true
        )
    );
    assert_eq!(
        (t[1].weight, t[1].fork_delay, t[1].terminate_delay),
        (10, Some(Duration::from_secs(2)), None)
    );
    assert_eq!((t[2].quorum, t[2].quorum_max, t[2].weight), (0, 0, 0));
    assert_eq!(
        (t[3].param_match, t[3].weight, t[3].reverse),
        (ParamMatch::Partial, 7, false)
    );

    // A sync group's track_process reaches every member; an address owner
    // among them clears its weight.
    let (c, w) = ok(
        "vrrp_track_process web {\n process nginx\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 255\n virtual_ipaddress {\n 10.0.0.1\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 2\n priority 255\n virtual_ipaddress {\n 10.0.0.2\n }\n}\nvrrp_sync_group G {\n group {\n A\n B\n }\n track_process {\n web weight 10\n }\n}\n",
    );
    assert_has(
        &w,
        "(G) Cannot have weighted track process 'web' with member having priority 255 - setting weight 0",
    );
    for member in ["A", "B"] {
        let t = &c.vrrp[member].track_processes;
        assert_eq!((t.len(), t[0].weight), (1, 0), "{member}");
    }
}

#[test]
fn misc_checks_run_as_their_user_or_the_script_user() {
    let passwd = "root:x:0:0::/root:/bin/sh\nkeepalived_script:x:998:997::/:/bin/false\nops:x:1001:1001::/:/bin/sh\n";
    let fs = FakeFs::with(&[
        ("/etc/passwd", passwd),
        ("/etc/group", "root:x:0:\nwheel:x:10:\n"),
    ]);
    let vs = |misc: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n protocol TCP\n delay_loop 20\n real_server 10.0.0.2 80 {{\n  MISC_CHECK {{\n   misc_path \"/bin/true -x\"\n{misc}\n  }}\n }}\n}}\n"
        )
    };
    let run_as = |c: &Config| {
        only_health(c)
            .run_as
            .as_ref()
            .map(|r| (r.user.clone(), r.uid, r.gid))
    };
    let (c, _) = compile_with(&vs("   user ops wheel\n   misc_timeout 7"), &fs);
    let c = c.expect("compiles");
    assert_eq!(run_as(&c), Some(("ops".to_string(), 1001, 10)));
    assert_eq!(only_health(&c).timeout, Some(Duration::from_secs(7)));
    assert!(!only_health(&c).exit_weight);
    // misc_dynamic: the exit status sets the weight.
    let (c, _) = compile_with(&vs("   misc_dynamic"), &fs);
    assert!(only_health(&c.expect("compiles")).exit_weight);
    // The default script user; misc_timeout defaults to the virtual
    // server's delay_loop.
    let (c, _) = compile_with(&vs(""), &fs);
    let c = c.expect("compiles");
    assert_eq!(
        run_as(&c),
        Some(("keepalived_script".to_string(), 998, 997))
    );
    assert_eq!(only_health(&c).timeout, Some(Duration::from_secs(20)));
    let (c, _) = compile_with(
        &format!("global_defs {{\n script_user ops\n}}\n{}", vs("")),
        &fs,
    );
    assert_eq!(
        run_as(&c.expect("compiles")),
        Some(("ops".to_string(), 1001, 1001))
    );
    // keepalived removes a MISC_CHECK whose user does not exist.
    let (c, d) = compile_with(&vs("   user nosuch"), &fs);
    assert!(c.is_none());
    assert_has(
        &d,
        "Failed to set uid/gid for misc checker script /bin/true -x - removing",
    );
    assert_has(&d, "keepalived removes this MISC_CHECK");
}

#[test]
fn a_sync_group_track_file_reaches_every_member() {
    let text = "track_file f {\n file /run/f\n weight 3\n}\ntrack_file g {\n file /run/g\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n track_file {\n g weight 0\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 10.0.0.2\n }\n}\nvrrp_sync_group G {\n group {\n A\n B\n }\n track_file {\n f weight -2 reverse\n g weight 5\n }\n}\n";
    let (c, w) = ok(text);
    assert_has(
        &w,
        "(A) track_file g is configured on VRRP instance and sync group",
    );
    let files = |member: &str| {
        c.vrrp[member]
            .track_files
            .iter()
            .map(|t| (t.path.display().to_string(), t.weight, t.reverse))
            .collect::<Vec<_>>()
    };
    // A keeps its unweighted g; both get f with the group's weight.
    assert_eq!(
        files("A"),
        [
            ("/run/g".to_string(), 0, false),
            ("/run/f".to_string(), -2, true)
        ]
    );
    assert_eq!(
        files("B"),
        [
            ("/run/f".to_string(), -2, true),
            ("/run/g".to_string(), 5, false)
        ]
    );
}

fn mark(n: u32, ipv6: bool) -> Option<Fwmark> {
    Some(Fwmark {
        mark: std::num::NonZeroU32::new(n).unwrap(),
        ipv6,
    })
}

#[test]
fn a_fwmark_virtual_server_is_an_ipvs_mark_service() {
    let (c, w) = ok("virtual_server fwmark 7 {
 delay_loop 5
 lb_algo rr
 lb_kind DR
 protocol TCP
 real_server 10.99.0.11 80 {
  TCP_CHECK {
   connect_timeout 3
  }
 }
 real_server 10.99.0.12 {
  TCP_CHECK {
   connect_timeout 3
   connect_port 80
  }
 }
}
");
    let vs = &c.virtual_servers["fwmark-7"];
    assert_eq!(vs.fwmark, mark(7, false));
    assert_eq!(vs.listen, None);
    assert_eq!(vs.dataplane, DataPlane::Ipvs);
    assert_eq!(vs.scheduler, LbScheduler::RoundRobin);
    // DR: IPVS gets no port (keepalived clears it); the checker keeps it.
    let addrs: Vec<String> = vs.real_servers.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["10.99.0.11:0", "10.99.0.12:0"]);
    assert!(
        vs.real_servers
            .iter()
            .all(|r| r.forward == Forward::DirectRouting)
    );
    let health = vs.health.as_ref().unwrap();
    let service = &c.watches[&health.group].services[&health.service];
    let Some(Monitor::Tcp(tcp)) = &service.monitor else {
        panic!("not tcp: {service:?}");
    };
    assert_eq!(tcp.port, 80);
    assert_has(
        &w,
        "5:2: warning: keepalived reports \"Warning: Virtual server FWM 7: protocol specified for fwmark - protocol will be ignored\"",
    );
    assert_has(
        &w,
        "6:2: warning: keepalived reports \"WARNING - fwmark virtual server FWM 7, real server 10.99.0.11:80 has port specified - clearing\"",
    );
}

#[test]
fn a_fwmark_service_takes_its_family_as_keepalived_does() {
    // ip_family, else the first real server that is not tunnelled.
    for (text, ipv6) in [
        ("ip_family inet6\n real_server 2001:db8::2 80 {\n }\n", true),
        ("real_server 2001:db8::2 80 {\n }\n", true),
        ("real_server 10.0.0.2 80 {\n }\n", false),
        (
            "lvs_method TUN\n real_server 2001:db8::2 80 {\n }\n real_server 10.0.0.2 80 {\n }\n",
            false,
        ),
    ] {
        let (c, _) = ok(&format!("virtual_server fwmark 3 {{\n {text}}}\n"));
        let name = if ipv6 { "fwmark-3-ipv6" } else { "fwmark-3" };
        assert_eq!(c.virtual_servers[name].fwmark, mark(3, ipv6), "{text}");
    }
    // NAT keeps a real server's port; one of the other family is skipped.
    let (c, w) = ok(
        "virtual_server fwmark 3 {\n real_server 10.0.0.2 8080 {\n }\n real_server 2001:db8::2 80 {\n }\n}\n",
    );
    let vs = &c.virtual_servers["fwmark-3"];
    assert_eq!(vs.real_servers.len(), 1);
    assert_eq!(vs.real_servers[0].addr.to_string(), "10.0.0.2:8080");
    assert_has(
        &w,
        "5:2: warning: keepalived reports \"Address family of virtual server and real server 2001:db8::2 don't match - skipping real server.\"",
    );
}

#[test]
fn a_fwmark_service_needs_the_ipvs_data_plane() {
    let (c, d) = compile(
        "global_defs {\n keepmon_dataplane proxy\n}\nvirtual_server fwmark 7 {\n real_server 10.0.0.2 80 {\n }\n}\n",
    );
    assert!(c.is_none());
    assert!(
        d.iter().any(|d| d
            .contains("is a firewall-mark service (FWM 7): only the IPVS data plane serves one")),
        "{d:?}"
    );
}

const GROUP: &str = "virtual_server_group G {
  10.0.0.30-31 80
  10.0.1.1 80
  fwmark 9
}
virtual_server group G {
  lb_algo wrr
  lb_kind DR
  protocol TCP
  real_server 10.99.0.11 80 {
    weight 2
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 10.99.0.12 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
";

#[test]
fn a_group_is_one_ipvs_service_per_entry_checked_once() {
    let (c, w) = ok(GROUP);
    let names: Vec<&str> = c.virtual_servers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["10.0.0.30:80", "10.0.0.31:80", "10.0.1.1:80", "fwmark-9"]
    );
    let health = c.virtual_servers["10.0.0.30:80"].health.clone().unwrap();
    assert_eq!(health.group, "group-G");
    for vs in c.virtual_servers.values() {
        assert_eq!(vs.health.as_ref(), Some(&health), "{}", vs.name);
        assert_eq!(vs.scheduler, LbScheduler::WeightedRoundRobin);
        let weights: Vec<u32> = vs.real_servers.iter().map(|r| r.weight).collect();
        assert_eq!(weights, [2, 1]);
    }
    // One health service, one hostgroup: each real server checked once.
    assert_eq!(c.watches.len(), 1);
    assert_eq!(c.hostgroups["group-G"].hosts, ["10.99.0.11", "10.99.0.12"]);
    assert_eq!(c.virtual_servers["fwmark-9"].fwmark, mark(9, false));
    assert_eq!(
        c.virtual_servers["fwmark-9"].real_servers[0]
            .addr
            .to_string(),
        "10.99.0.11:0"
    );
    assert_eq!(
        c.virtual_servers["10.0.0.31:80"].real_servers[0]
            .addr
            .to_string(),
        "10.99.0.11:80"
    );
    assert_has(&w, "port will be ignored");
}

#[test]
fn group_entries_as_keepalived_reads_them() {
    let (c, w) = ok("virtual_server_group G {
  10.0.0.8/30 80
  10.0.0.40-39 80
  10.0.0.50-10.0.0.51 80
  10.0.0.60-10.0.0.59 80
  10.0.0.9/30 80
  fwmark 11 bogus
  fwmark 12 inet
  bogus 80
}
virtual_server_group EMPTY {
}
virtual_server_group MIXED {
  10.0.0.1 80
  2001:db8::1 80
  fwmark 1
}
virtual_server group G {
  protocol TCP
  persistence_timeout 60
  persistence_granularity 255.255.255.0
  real_server 10.99.0.11 80 {
  }
}
virtual_server group NOPE {
  protocol TCP
  real_server 10.99.0.12 80 {
  }
}
virtual_server group MIXED {
  protocol TCP
  real_server 10.99.0.13 80 {
  }
}
");
    let names: Vec<&str> = c.virtual_servers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "10.0.0.10:80",
            "10.0.0.11:80",
            "10.0.0.50:80",
            "10.0.0.51:80",
            "10.0.0.8:80",
            "10.0.0.9:80",
            "fwmark-12"
        ],
        "{w:#?}"
    );
    for needle in [
        "3:3: warning: keepalived reports \"Address range end is not greater than address range start - 10.0.0.40-39 - skipping\"",
        "5:3: warning: keepalived reports \"Address range end is less than address range start - 10.0.0.60-10.0.0.59 - skipping\"",
        "6:3: warning: keepalived reports \"Address mask bits not empty - 10.0.0.9/30 - skipping\"",
        "7:13: warning: keepalived reports \"(G): fwmark '11' family bogus unknown - ignoring\"",
        "9:3: warning: keepalived reports \"Invalid virtual server group IP address bogus /port/80 - skipping\"",
        "12:1: warning: keepalived reports \"virtual server group EMPTY has no entries - removing\"",
        "17:1: warning: keepalived reports \"virtual server group MIXED cannot have IPv4, IPv6 and fwmark without family - removing\"",
        "21:3: warning: keepalived ignores this: keepalived 2.2.7 sends the services of group G with the full netmask",
        "Virtual server group NOPE specified but not configured",
        "Virtual server group MIXED specified but not configured",
    ] {
        assert_has(&w, needle);
    }
    assert_eq!(c.virtual_servers["10.0.0.8:80"].persistence_netmask, None);
}

#[test]
fn a_group_of_both_families_does_not_take_a_virtual_server_of_one() {
    // keepalived's link_vsg_to_vs: the real servers make the virtual
    // server IPv4, the group has IPv6 too: the virtual server is ignored.
    let (c, w) = ok("virtual_server_group G {
  10.0.0.1 80
  2001:db8::1 80
}
virtual_server group G {
  protocol TCP
  real_server 10.99.0.11 80 {
  }
}
");
    assert!(c.virtual_servers.is_empty());
    assert_has(
        &w,
        "5:1: warning: keepalived ignores this: the address family of group G",
    );
}

#[test]
fn a_fwmark_service_without_ports_warns_where_keepalived_checks_port_0() {
    let (c, w) = ok("virtual_server fwmark 4 {
 lb_kind DR
 real_server 10.0.0.2 {
  TCP_CHECK {
  }
 }
 sorry_server 10.0.0.9 80
}
");
    let vs = &c.virtual_servers["fwmark-4"];
    assert_eq!(
        vs.sorry_server.map(|s| s.to_string()).as_deref(),
        Some("10.0.0.9:0")
    );
    assert_eq!(vs.real_servers[0].addr.to_string(), "10.0.0.2:0");
    assert_has(
        &w,
        "1:1: warning: keepalived reports \"WARNING - fwmark virtual server FWM 4, sorry server has port specified - clearing\"",
    );
    assert_has(
        &w,
        "4:3: warning: keepalived ignores this: real server 10.0.0.2 has no port and this checker no connect_port: keepalived's checker connects to port 0 (and fails)",
    );
}
