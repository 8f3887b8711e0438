//! Unit tests of the supervisor's parts: reconfigure from a diff (start is a reload from nothing), the one result path, and the operations vocabulary seen from both front doors.

use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use super::services::Services;
use super::*;
use crate::control::proto::{Response, Target};
use crate::monproto::trap::Trap;
use crate::monproto::{Command, Reply};
use crate::service::{OpStatus, ServiceState};
use crate::state::service_key;

/// A temp dir removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "keepmon-supervisor-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A config in `dir`: a trap-only service, a polled one, a singleton
/// hostgroup with its own watch, and `extra` TOML.
fn config(dir: &Path, extra: &str) -> Config {
    let d = dir.display();
    let text = format!(
        "[daemon]\nstatedir = \"{d}/state\"\ncontrol_socket = \"{d}/ctl.sock\"\n\
         dtlogging = true\ndtlogfile = \"{d}/downtime.log\"\n\n\
         [hostgroups]\ng = [\"h1\", \"h2\"]\nsolo = [\"lonely\"]\n\n\
         [actions.log]\ntype = \"file\"\npath = \"{d}/alerts.log\"\n\n\
         [watch.g.trapped]\ntraptimeout = \"1h\"\nalert = [\"log\"]\nupalert = [\"log\"]\n\n\
         [watch.g.web]\ninterval = \"1h\"\nmonitor = {{ type = \"tcp\", port = 9 }}\nalert = [\"log\"]\n\n\
         [watch.solo.ping]\ninterval = \"1h\"\nmonitor = {{ type = \"tcp\", port = 9 }}\n\n{extra}"
    );
    crate::config::compile_str(
        &text,
        &dir.join("keepmon.toml"),
        Format::Toml,
        &crate::config::RealFileSystem,
    )
    .unwrap_or_else(|e| panic!("{}{e}", e.diagnostics))
    .config
}

/// A supervisor with `config` applied, as `run` builds it (no sockets).
fn supervisor(config: Config) -> Supervisor {
    supervisor_with_events(config).0
}

/// The same, keeping the channel its tasks report on.
fn supervisor_with_events(config: Config) -> (Supervisor, mpsc::Receiver<Event>) {
    let (events, events_rx) = mpsc::channel(16);
    let (mon_calls, _) = mpsc::channel(16);
    let (web_calls, _) = mpsc::channel(16);
    let (vrrp, _) = mpsc::unbounded_channel();
    let mut s = Supervisor::new(
        Options {
            config_path: Some(config.source.clone()),
            more_config_paths: Vec::new(),
            format: Some(Format::Toml),
            embedded: "",
        },
        config.clone(),
        Persisted::default(),
        Channels {
            events,
            mon_calls,
            web_calls,
            vrrp,
        },
        CancellationToken::new(),
    );
    s.apply(config);
    (s, events_rx)
}

fn trap(service: &str, exit: i32) -> Trap {
    Trap {
        group: "g".into(),
        service: service.into(),
        exit,
        summary: if exit == 0 {
            String::new()
        } else {
            "h1 down".into()
        },
        detail: String::new(),
        user: String::new(),
        password: String::new(),
    }
}

async fn cli(s: &mut Supervisor, request: Request) -> Response {
    let (tx, rx) = oneshot::channel();
    s.on_request(request, tx);
    rx.await.expect("the CLI is answered")
}

async fn mon(s: &mut Supervisor, command: Command, user: &str) -> Reply {
    let (tx, rx) = oneshot::channel();
    s.mon_command(command, Some(user), None, tx);
    rx.await.expect("the command is answered")
}

#[tokio::test]
async fn start_is_a_reconfigure_from_nothing_and_reload_keeps_unchanged_state() {
    let dir = TempDir::new("reconfigure");
    let first = config(&dir.0, "");
    let mut restored = Persisted::default();
    let failing = ServiceState {
        opstatus: OpStatus::Fail,
        ..ServiceState::default()
    };
    restored
        .services
        .insert(service_key("g", "web"), failing.clone());
    restored
        .services
        .insert(service_key("gone", "old"), failing.clone());
    let mut services = Services::new(restored);
    services.reconfigure(&first, &config::diff(None, &first), clock());
    assert_eq!(services.slots.len(), 3, "every service gets a slot");
    assert_eq!(
        services.slots[&service_key("g", "web")].state.opstatus,
        OpStatus::Fail,
        "restored state goes to its service"
    );
    assert!(
        services.slots[&service_key("g", "trapped")]
            .next_due
            .is_none(),
        "a trap-only service is never polled"
    );
    assert!(!services.snapshot().services.contains_key("gone/old"));
    let web_due = services.slots[&service_key("g", "web")].next_due;

    // A reload that changes one service and removes another.
    let mut second = first.clone();
    second.watches.remove("solo");
    second
        .watches
        .get_mut("g")
        .and_then(|w| w.services.get_mut("trapped"))
        .expect("trapped")
        .traptimeout = Some(Duration::from_secs(60));
    services.reconfigure(&second, &config::diff(Some(&first), &second), clock());
    assert!(
        !services.slots.contains_key(&service_key("solo", "ping")),
        "removing a service stops it"
    );
    assert_eq!(services.slots[&service_key("g", "trapped")].generation, 1);
    let web = &services.slots[&service_key("g", "web")];
    assert_eq!(web.generation, 0, "unchanged");
    assert_eq!(
        web.next_due, web_due,
        "unchanged services keep their timers"
    );
    assert_eq!(web.state.opstatus, OpStatus::Fail, "and their state");
}

#[test]
fn vrrp_start_is_all_added_and_unchanged_instances_keep_running() {
    let dir = TempDir::new("vrrp");
    let vrrp = "[vrrp.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 51\n\
                virtual_ipaddress = [\"192.0.2.1/24\"]\n\n\
                [vrrp.VI_2]\ninterface = \"eth0\"\nvirtual_router_id = 52\n\
                virtual_ipaddress = [\"192.0.2.2/24\"]\n";
    let first = config(&dir.0, vrrp);
    let start = vrrp::plan(&config::diff(None, &first));
    assert_eq!(start.start, ["VI_1", "VI_2"]);
    assert!(start.stop.is_empty() && start.restart.is_empty());
    assert_eq!(
        vrrp::plan(&config::diff(Some(&first), &first)),
        vrrp::Plan::default(),
        "a reload without changes touches no instance"
    );
    let mut second = first.clone();
    second.vrrp.remove("VI_2");
    second.vrrp.get_mut("VI_1").expect("VI_1").priority = 150;
    let reload = vrrp::plan(&config::diff(Some(&first), &second));
    assert_eq!(reload.restart, ["VI_1"]);
    assert_eq!(reload.stop, ["VI_2"]);
    assert!(reload.start.is_empty());
}

/// keepalived's weight rules for tracked services, `reverse` included: a
/// positive weight counts while up, a negative one while down; reverse
/// turns the sign, and weight 0 is FAULT while down (while up, reversed).
#[test]
fn tracking_weights_follow_keepalived_with_reverse() {
    let dir = TempDir::new("track-reverse");
    let track = |weight: i32, reverse: bool| {
        format!(
            "[vrrp.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\n\
             virtual_ipaddress = [\"192.0.2.1/24\"]\n\
             track = [{{ service = \"g:web\", weight = {weight}, reverse = {reverse} }}]\n"
        )
    };
    let verdict = |weight: i32, reverse: bool, up: bool| {
        let c = config(&dir.0, &track(weight, reverse));
        let failing = move |_: &crate::config::depend::ServiceRef| !up;
        let quorum = |_: &str| None;
        let inputs = vrrp::TrackInputs {
            service_failing: &failing,
            quorum_up: &quorum,
        };
        let (priority, fault) = vrrp::track_verdict(&c.vrrp["VI_1"], &inputs);
        (priority, fault.is_some())
    };
    assert_eq!(verdict(10, false, true), (110, false));
    assert_eq!(verdict(10, false, false), (100, false));
    assert_eq!(verdict(10, true, true), (90, false));
    assert_eq!(verdict(10, true, false), (100, false));
    assert_eq!(verdict(-10, false, false), (90, false));
    assert_eq!(verdict(-10, true, false), (110, false));
    assert_eq!(verdict(-10, true, true), (100, false));
    assert_eq!(verdict(0, false, false), (100, true));
    assert_eq!(verdict(0, false, true), (100, false));
    assert_eq!(verdict(0, true, true), (100, true));
    assert_eq!(verdict(0, true, false), (100, false));
}

#[test]
fn a_sync_group_restarts_as_a_whole() {
    let dir = TempDir::new("vrrp-sync");
    let vrrp = "[vrrp.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 51\n\
                virtual_ipaddress = [\"192.0.2.1/24\"]\n\n\
                [vrrp.VI_2]\ninterface = \"eth0\"\nvirtual_router_id = 52\n\
                virtual_ipaddress = [\"192.0.2.2/24\"]\n\n\
                [vrrp.VI_3]\ninterface = \"eth0\"\nvirtual_router_id = 53\n\
                virtual_ipaddress = [\"192.0.2.3/24\"]\n\n\
                [vrrp_sync_group.G]\nmembers = [\"VI_1\", \"VI_2\"]\n";
    let first = config(&dir.0, vrrp);
    let affected = |old: &crate::config::model::Config, new: &crate::config::model::Config| {
        let diff = config::diff(Some(old), new);
        vrrp::affected_groups(
            &vrrp::plan(&diff),
            &diff,
            &old.vrrp_sync_groups,
            &new.vrrp_sync_groups,
        )
    };
    let start = config::diff(None, &first);
    assert_eq!(start.vrrp_sync_groups.added, ["G"]);
    assert!(affected(&first, &first).is_empty(), "nothing changed");
    // A member's change restarts its group; another instance's does not.
    let mut member = first.clone();
    member.vrrp.get_mut("VI_2").expect("VI_2").priority = 150;
    assert_eq!(
        affected(&first, &member).into_iter().collect::<Vec<_>>(),
        ["G"]
    );
    let mut other = first.clone();
    other.vrrp.get_mut("VI_3").expect("VI_3").priority = 150;
    assert!(affected(&first, &other).is_empty());
    // A new member: the group changed.
    let mut grown = first.clone();
    grown
        .vrrp_sync_groups
        .get_mut("G")
        .expect("G")
        .members
        .push("VI_3".to_string());
    assert_eq!(
        affected(&first, &grown).into_iter().collect::<Vec<_>>(),
        ["G"]
    );
}

#[tokio::test]
async fn a_trap_recovery_goes_through_the_one_result_path() {
    let dir = TempDir::new("trap");
    let mut s = supervisor(config(&dir.0, ""));
    s.on_trap(trap("trapped", 1), "192.0.2.9".into());
    let key = service_key("g", "trapped");
    assert_eq!(s.services.slots[&key].state.opstatus, OpStatus::Fail);
    assert_eq!(s.services.failure_history.len(), 1, "failure history");
    assert_eq!(s.services.last_traps[&key].1, "192.0.2.9");
    s.on_trap(trap("trapped", 0), "192.0.2.9".into());
    assert_eq!(s.services.slots[&key].state.opstatus, OpStatus::Ok);
    // Like a monitor recovery, a trap recovery writes the downtime log.
    let log = s
        .writer
        .read(&dir.0.join("downtime.log"))
        .await
        .expect("writer answers")
        .expect("readable")
        .expect("the downtime log exists");
    let fields: Vec<&str> = log.trim_end().split(' ').collect();
    assert_eq!(&fields[1..3], ["g", "trapped"], "{log}");
    assert!(
        s.services
            .alert_history
            .iter()
            .any(|l| l.starts_with("trapalert g trapped")),
        "the failure alert fired: {:?}",
        s.services.alert_history
    );
    s.shut_down().await;
}

#[tokio::test]
async fn cli_and_mon_make_the_same_state_changes() {
    let cli_dir = TempDir::new("ops-cli");
    let mon_dir = TempDir::new("ops-mon");
    let mut a = supervisor(config(&cli_dir.0, ""));
    let mut b = supervisor(config(&mon_dir.0, ""));
    let host = Target::Host {
        hosts: vec!["lonely".into()],
    };
    let service = Target::Service {
        group: "g".into(),
        service: "web".into(),
    };
    let watch = Target::Watch { group: "g".into() };
    for target in [host, service, watch] {
        let response = cli(
            &mut a,
            Request::Disable {
                target: target.clone(),
            },
        )
        .await;
        assert!(matches!(response, Response::Ok { .. }), "{response:?}");
        let reply = mon(&mut b, Command::Disable { target }, "root").await;
        assert!(reply.render().starts_with("220 "), "{}", reply.render());
        assert_eq!(a.services.disabled, b.services.disabled);
    }
    assert!(
        a.services.disabled.watches.contains("solo"),
        "a singleton hostgroup's watch goes with its host, from either door"
    );
    // Ack a failing service from both doors.
    a.on_trap(trap("trapped", 1), "x".into());
    b.on_trap(trap("trapped", 1), "x".into());
    let user = std::env::var("USER").unwrap_or_else(|_| "keepmon".into());
    cli(
        &mut a,
        Request::Ack {
            group: "g".into(),
            service: "trapped".into(),
            comment: "on it".into(),
        },
    )
    .await;
    mon(
        &mut b,
        Command::Ack {
            group: "g".into(),
            service: "trapped".into(),
            comment: "on it".into(),
        },
        &user,
    )
    .await;
    let key = service_key("g", "trapped");
    let acked = |s: &Supervisor| {
        s.services.slots[&key]
            .state
            .ack
            .as_ref()
            .map(|a| a.comment.clone())
    };
    assert_eq!(acked(&a), Some(format!("{user}: on it")));
    assert_eq!(acked(&a), acked(&b));
    // Unknown names are refused by both, in each door's words.
    let refused = cli(
        &mut a,
        Request::Enable {
            target: Target::Host {
                hosts: vec!["nosuch".into()],
            },
        },
    )
    .await;
    assert_eq!(
        refused,
        Response::Error {
            message: "unknown host \"nosuch\"".into()
        }
    );
    let refused = mon(
        &mut b,
        Command::Enable {
            target: Target::Host {
                hosts: vec!["nosuch".into()],
            },
        },
        "root",
    )
    .await;
    assert_eq!(
        refused.render(),
        "520 enable host failed, host(s) nosuch do not exist\n"
    );
    // Pause from one door, the same scheduler state in both.
    cli(&mut a, Request::Pause).await;
    mon(&mut b, Command::Stop, "root").await;
    assert!(!a.services.scheduler_running && !b.services.scheduler_running);
    a.shut_down().await;
    b.shut_down().await;
}

#[tokio::test]
async fn savestate_and_loadstate_go_through_the_writer() {
    let dir = TempDir::new("loadstate");
    let (mut s, mut events) = supervisor_with_events(config(&dir.0, ""));
    let saved = mon(&mut s, Command::SaveState { what: Vec::new() }, "root").await;
    assert_eq!(saved.render(), "220 savestate completed\n");
    cli(
        &mut s,
        Request::Disable {
            target: Target::Watch { group: "g".into() },
        },
    )
    .await;
    assert!(s.services.disabled.watches.contains("g"));
    // loadstate reads back the newest save, after every save sent before
    // it: the CLI's disable (answered once saved) is in it.
    let (tx, rx) = oneshot::channel();
    s.mon_command(
        Command::LoadState {
            what: vec![crate::monproto::StateKind::Disabled],
        },
        Some("root"),
        None,
        tx,
    );
    let event = events.recv().await.expect("the writer read the file");
    s.on_event(event);
    let reply = rx.await.expect("answered");
    assert_eq!(reply.render(), "220 loadstate completed\n");
    assert!(
        s.services.disabled.watches.contains("g"),
        "the disable was saved before loadstate read the file"
    );
    // A change that was never saved is undone by loadstate.
    s.services.disabled.watches.clear();
    let (tx, rx) = oneshot::channel();
    s.mon_command(
        Command::LoadState {
            what: vec![crate::monproto::StateKind::Disabled],
        },
        Some("root"),
        None,
        tx,
    );
    let event = events.recv().await.expect("the writer read the file");
    s.on_event(event);
    rx.await.expect("answered");
    assert!(s.services.disabled.watches.contains("g"));
    s.shut_down().await;
}

/// Regression (issue 19, finding 9): every first run was due at the same
/// instant (one random draw for all services, and none without
/// `randstart`), so 10,000 hosts were connected to in the same
/// millisecond. Each service now draws its own offset within
/// min(interval, 10 s).
#[tokio::test(start_paused = true)]
async fn first_runs_are_spread_over_the_interval() {
    let dir = TempDir::new("spread");
    let mut extra = String::new();
    for i in 0..50 {
        extra.push_str(&format!(
            "[watch.g.s{i}]\ninterval = \"4s\"\nmonitor = {{ type = \"tcp\", port = 9 }}\n\n"
        ));
    }
    let config = config(&dir.0, &extra);
    let now = Instant::now();
    let mut services = Services::new(Persisted::default());
    services.reconfigure(&config, &config::diff(None, &config), clock());
    let dues: std::collections::BTreeSet<Instant> = (0..50)
        .filter_map(|i| services.slots[&service_key("g", &format!("s{i}"))].next_due)
        .collect();
    assert!(dues.len() > 40, "{} distinct first runs of 50", dues.len());
    assert!(
        dues.iter()
            .all(|d| *d >= now && *d <= now + Duration::from_secs(4)),
        "within the interval"
    );
}

#[test]
fn a_sync_group_notify_gets_keepalived_group_argv() {
    use crate::config::model::{NotifyOn, VrrpNotify};
    let notify = VrrpNotify {
        run_as: None,
        path: "/bin/notify".into(),
        args: vec!["x".to_string()],
        on: NotifyOn::Any,
    };
    let env = |kind: Option<&str>| {
        let mut vars = vec![
            ("VRRP_INSTANCE".to_string(), "VG_1".to_string()),
            ("VRRP_STATE".to_string(), "FAULT".to_string()),
            ("VRRP_PRIORITY".to_string(), "0".to_string()),
        ];
        if let Some(kind) = kind {
            vars.push(("VRRP_TYPE".to_string(), kind.to_string()));
        }
        vars
    };
    assert_eq!(
        crate::alert::notify_argv(&env(Some("GROUP")), &notify).expect("runs"),
        ["/bin/notify", "x", "GROUP", "VG_1", "FAULT", "0"]
    );
    assert_eq!(
        crate::alert::notify_argv(&env(None), &notify).expect("runs")[2],
        "INSTANCE"
    );
}
