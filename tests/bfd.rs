//! BFD runs as keepalived runs it: keepalived and keepmon, each started from a keepalived.conf with a `bfd_instance` naming the other, are BFD peers (the session comes Up on both), and a `track_bfd` takes a VRRP instance to FAULT when its BFD peer dies, so the address moves to the other director, and back when the peer returns.
//!
//! A `BFD_CHECK` takes a real server out of keepmon's table while its
//! BFD peer (keepalived) is gone.
//!
//! Three network namespaces on one bridge (10.97.0.1–3): director 1
//! (MASTER, priority 150, tracks the BFD session to host 3), director 2
//! (BACKUP, 100) and host 3, which runs only a `bfd_instance` back to
//! director 1. The scenario runs twice: keepmon as director 1 with
//! keepalived as host 3 and director 2, then keepalived as director 1
//! with keepmon as host 3 and director 2. Needs root and Debian's
//! keepalived: without them the test says so, and fails under
//! `KEEPMON_REQUIRE_PRIVILEGED=1`.

mod common;

use common::peer::{Lan, Peer, is_root, keepalived_installed, wait_for};

const VIP: &str = "10.97.0.100";

/// Three hosts' namespaces joined by a bridge namespace; deleted on drop.
struct Trio(Lan);

impl Trio {
    fn new(tag: &str) -> Trio {
        let prefix = format!("kmbfd{tag}{}", std::process::id() % 100_000);
        Trio(Lan::new(
            &prefix,
            &[
                ("1", "10.97.0.1/24"),
                ("2", "10.97.0.2/24"),
                ("3", "10.97.0.3/24"),
            ],
        ))
    }

    fn ns(&self, host: &str) -> String {
        self.0.ns(host)
    }

    fn has_vip(&self, host: &str) -> bool {
        self.0.has_address(host, VIP)
    }
}

/// Both programs log the session entering Up: keepalived as
/// "(NAME) Entering Up state", keepmon as "bfd: entering Up state".
fn session_up_count(peer: &Peer) -> usize {
    let log = peer.log();
    if peer.keepalived {
        log.matches("Entering Up state").count()
    } else {
        log.matches("bfd: entering Up state").count()
    }
}

fn director_config(state: &str, priority: u8, track: bool) -> String {
    let (bfd, track_bfd) = if track {
        (
            "bfd_instance gw {
    neighbor_ip 10.97.0.3
    source_ip 10.97.0.1
    min_rx 50
    min_tx 50
    multiplier 3
}
",
            "    track_bfd {
        gw
    }
",
        )
    } else {
        ("", "")
    };
    format!(
        "{bfd}
vrrp_instance VI_B {{
    state {state}
    interface eth0
    virtual_router_id 77
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {VIP}/24
    }}
{track_bfd}}}
"
    )
}

const HOST3_CONFIG: &str = "bfd_instance director {
    neighbor_ip 10.97.0.1
    min_rx 50
    min_tx 50
    multiplier 3
}
";

#[test]
fn a_tracked_bfd_peer_moves_the_address_between_keepalived_and_keepmon() {
    let what = "keepalived/keepmon BFD interop";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    if !keepalived_installed(what) {
        return;
    }
    let root = std::env::temp_dir().join(format!("keepmon-bfd-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    for keepmon_directs in [true, false] {
        let trio = Trio::new(if keepmon_directs { "m" } else { "k" });
        let dir = |name: &str| root.join(format!("{name}-{keepmon_directs}"));
        let mut host3 = Peer::start_named(
            "host 3",
            &trio.ns("3"),
            &dir("host3"),
            keepmon_directs,
            HOST3_CONFIG,
        );
        let director1 = Peer::start_named(
            "director 1",
            &trio.ns("1"),
            &dir("director1"),
            !keepmon_directs,
            &director_config("MASTER", 150, true),
        );
        let director2 = Peer::start_named(
            "director 2",
            &trio.ns("2"),
            &dir("director2"),
            keepmon_directs,
            &director_config("BACKUP", 100, false),
        );
        wait_for(
            "the BFD session is Up on director 1 and host 3",
            &[&director1, &host3, &director2],
            || session_up_count(&director1) >= 1 && session_up_count(&host3) >= 1,
        );
        wait_for(
            "director 1 holds the address",
            &[&director1, &host3, &director2],
            || trio.has_vip("1") && !trio.has_vip("2"),
        );
        // The BFD peer dies: director 1's session expires, its instance
        // goes to FAULT and director 2 takes the address.
        host3.kill();
        wait_for(
            "director 2 takes the address when the BFD peer is gone",
            &[&director1, &host3, &director2],
            || trio.has_vip("2") && !trio.has_vip("1"),
        );
        // The peer returns: the session comes Up again and director 1
        // takes the address back.
        let up_before = session_up_count(&director1);
        let host3_again = Peer::start_named(
            "host 3 (again)",
            &trio.ns("3"),
            &dir("host3-again"),
            keepmon_directs,
            HOST3_CONFIG,
        );
        wait_for(
            "the BFD session comes Up again",
            &[&director1, &host3_again, &director2],
            || session_up_count(&director1) > up_before && session_up_count(&host3_again) >= 1,
        );
        wait_for(
            "director 1 takes the address back",
            &[&director1, &host3_again, &director2],
            || trio.has_vip("1") && !trio.has_vip("2"),
        );
        drop(director1);
        drop(director2);
        drop(host3_again);
    }
    std::fs::remove_dir_all(&root).ok();
}

/// keepmon's BFD_CHECK against a keepalived BFD peer: the real server is in
/// the table while the session is Up, out while the peer is gone, and back
/// when it returns.
#[test]
fn a_bfd_check_takes_a_real_server_out_while_its_peer_is_gone() {
    let what = "keepmon BFD_CHECK against keepalived";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    if !keepalived_installed(what) {
        return;
    }
    let root = std::env::temp_dir().join(format!("keepmon-bfd-check-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    let trio = Trio::new("c");
    let director = Peer::start_named(
        "director",
        &trio.ns("1"),
        &root.join("director"),
        false,
        "global_defs {
    keepmon_dataplane proxy
}

bfd_instance rs3 {
    neighbor_ip 10.97.0.3
    min_rx 50
    min_tx 50
    multiplier 3
}

virtual_server 10.97.0.1 8080 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.97.0.3 80 {
        BFD_CHECK {
            name rs3
        }
    }
}
",
    );
    let in_table = |health: &str, in_force: &str| {
        director.real_server("10.97.0.3:80") == Some((health.to_string(), in_force.to_string()))
    };
    wait_for(
        "the real server starts out of the table",
        &[&director],
        || in_table("down", "absent"),
    );
    let mut host3 = Peer::start_named(
        "host 3",
        &trio.ns("3"),
        &root.join("host3"),
        true,
        HOST3_CONFIG,
    );
    wait_for(
        "the BFD session comes Up and the real server joins the table",
        &[&director, &host3],
        || in_table("up", "1"),
    );
    host3.kill();
    wait_for(
        "the real server leaves the table when its BFD peer is gone",
        &[&director, &host3],
        || in_table("down", "absent"),
    );
    let host3_again = Peer::start_named(
        "host 3 (again)",
        &trio.ns("3"),
        &root.join("host3-again"),
        true,
        HOST3_CONFIG,
    );
    wait_for(
        "the real server comes back with its BFD peer",
        &[&director, &host3_again],
        || in_table("up", "1"),
    );
    drop(host3_again);
    drop(director);
    std::fs::remove_dir_all(&root).ok();
}
