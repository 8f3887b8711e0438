//! The built-in TCP proxy against real servers on loopback: scheduling, drain on table changes, retries (and replays before a backend's first byte), counters, persistence, half-close, shutdown and binding a non-local VIP.
//!
//! Every backend is a small server started by the test on `127.0.0.1:0` that
//! greets each connection with its name and a newline, then echoes until the
//! client half-closes, then closes; the replay tests add `Scripted` backends
//! that speak only when spoken to, hang up or reset. Clients from other source addresses bind
//! to `127.0.0.x` (all of 127/8 is local on Linux). The non-local bind test
//! uses 192.0.2.10 (TEST-NET-1) and never sends traffic to it.

mod common;

use common::not_run;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keepmon::config::model::LbScheduler;
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{BackendStats, ProxyHandle, ProxySpec, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TEST_LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rr_spreads_connections_over_three_backends() {
    bounded(async {
        let servers = Servers::start(&["a", "b", "c"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let mut names = Vec::new();
        for _ in 0..9 {
            let (_stream, name) = open(&proxy).await;
            names.push(name);
        }
        assert_eq!(names[..3], names[3..6]);
        assert_eq!(names[..3], names[6..]);
        let mut first = names[..3].to_vec();
        first.sort();
        assert_eq!(first, ["a", "b", "c"]);
        for server in &servers.list {
            assert_eq!(server.accepted(), 3, "{}", server.name);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_scheduler_delivers_traffic() {
    bounded(async {
        let servers = Servers::start(&["a", "b"]).await;
        for scheduler in [
            LbScheduler::RoundRobin,
            LbScheduler::WeightedRoundRobin,
            LbScheduler::LeastConnection,
            LbScheduler::WeightedLeastConnection,
            LbScheduler::SourceHash,
            LbScheduler::TwoChoices,
        ] {
            let (proxy, _shutdown) = proxy(spec(scheduler, servers.backends())).await;
            for _ in 0..4 {
                let (mut stream, name) = open(&proxy).await;
                assert!(name == "a" || name == "b", "{scheduler}: {name}");
                assert_echo(&mut stream, b"ping").await;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_drains_a_removed_backend_without_cutting_its_connections() {
    bounded(async {
        let servers = Servers::start(&["a", "b"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let (mut long_lived, removed_name) = open(&proxy).await;
        let removed = servers.addr(&removed_name);
        let kept = servers
            .list
            .iter()
            .find(|server| server.name != removed_name)
            .unwrap();

        proxy.update(vec![Backend {
            addr: kept.addr,
            weight: 1,
        }]);
        for _ in 0..6 {
            let (_stream, name) = open(&proxy).await;
            assert_eq!(
                name, kept.name,
                "a new connection went to the removed backend"
            );
        }
        // The connection opened before the swap still carries data both ways.
        assert_echo(&mut long_lived, b"still here after the swap").await;

        let stats = proxy.stats();
        let draining = find(&stats, removed);
        assert!(!draining.in_table);
        assert_eq!(draining.active, 1);
        assert_eq!(draining.bytes_in, 25);
        assert!(find(&stats, kept.addr).in_table);

        drop(long_lived);
        wait_until(|| proxy.stats().iter().all(|entry| entry.addr != removed)).await;
        assert_eq!(proxy.stats().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_carry_over_when_a_backend_stays() {
    bounded(async {
        let servers = Servers::start(&["a", "b"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        for _ in 0..4 {
            let (mut stream, _) = open(&proxy).await;
            assert_echo(&mut stream, b"x").await;
        }
        let a = servers.addr("a");
        wait_until(|| proxy.stats().iter().all(|entry| entry.active == 0)).await;
        proxy.update(vec![Backend { addr: a, weight: 5 }]);
        let stats = proxy.stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(
            (stats[0].weight, stats[0].total, stats[0].bytes_in),
            (5, 2, 2)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_backend_is_retried_on_another() {
    bounded(async {
        let servers = Servers::start(&["live"]).await;
        let dead = dead_addr().await;
        let mut spec = spec(
            LbScheduler::RoundRobin,
            vec![backend(dead), backend(servers.addr("live"))],
        );
        spec.retries = 2;
        let (proxy, _shutdown) = proxy(spec).await;
        for _ in 0..6 {
            let (mut stream, name) = open(&proxy).await;
            assert_eq!(name, "live");
            assert_echo(&mut stream, b"hello").await;
        }
        let stats = proxy.stats();
        let dead_stats = find(&stats, dead);
        assert!(dead_stats.failures >= 1, "{dead_stats:?}");
        assert_eq!((dead_stats.total, dead_stats.active), (0, 0));
        assert_eq!(find(&stats, servers.addr("live")).total, 6);
        assert_eq!(find(&stats, servers.addr("live")).failures, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_backends_dead_closes_the_client_promptly() {
    bounded(async {
        let dead = [dead_addr().await, dead_addr().await, dead_addr().await];
        let mut spec = spec(
            LbScheduler::RoundRobin,
            dead.iter().copied().map(backend).collect(),
        );
        spec.retries = 2;
        let (proxy, _shutdown) = proxy(spec).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
            .await
            .expect("the client connection was not closed within 2 s");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let stats = proxy.stats();
        assert_eq!(stats.iter().map(|entry| entry.failures).sum::<u64>(), 3);
        wait_until(|| proxy.stats().iter().all(|entry| entry.active == 0)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_zero_means_one_attempt() {
    bounded(async {
        let servers = Servers::start(&["live"]).await;
        let dead = dead_addr().await;
        let (proxy, _shutdown) = proxy(spec(
            LbScheduler::RoundRobin,
            vec![backend(dead), backend(servers.addr("live"))],
        ))
        .await;
        // rr starts with the dead backend: with no retries the client is closed.
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        let mut buffer = [0u8; 16];
        assert!(matches!(stream.read(&mut buffer).await, Ok(0) | Err(_)));
        assert_eq!(find(&proxy.stats(), dead).failures, 1);
        let (_stream, name) = open(&proxy).await;
        assert_eq!(name, "live");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_count_connections_and_bytes() {
    bounded(async {
        let servers = Servers::start(&["alpha"]).await;
        let addr = servers.addr("alpha");
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let (mut stream, _) = open(&proxy).await;
        let payload = vec![7u8; 100_000];
        assert_echo(&mut stream, &payload).await;
        let during = find(&proxy.stats(), addr);
        assert_eq!((during.active, during.total, during.failures), (1, 1, 0));
        assert_eq!(
            during.bytes_in, 100_000,
            "bytes are counted while they flow"
        );

        drop(stream);
        wait_until(|| find(&proxy.stats(), addr).active == 0).await;
        let after = find(&proxy.stats(), addr);
        assert_eq!(
            after,
            BackendStats {
                addr,
                weight: 1,
                active: 0,
                total: 1,
                bytes_in: 100_000,
                bytes_out: 100_000 + "alpha\n".len() as u64,
                failures: 0,
                in_table: true,
                sorry: false,
                requests: 0,
                responses: [0; 5],
                retries: 0,
                queued: 0,
                queue_max: 0,
            }
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_parallel_connections_relay_their_own_data() {
    bounded(async {
        let servers = Servers::start(&["a", "b", "c"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let proxy_addr = proxy.local_addr().unwrap();
        let clients: Vec<JoinHandle<usize>> = (0..50u8)
            .map(|n| {
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(proxy_addr).await.unwrap();
                    let name = read_name(&mut stream).await;
                    let payload: Vec<u8> = (0..20_000).map(|i| (i as u8) ^ n).collect();
                    assert_echo(&mut stream, &payload).await;
                    name.len() + 1 + payload.len()
                })
            })
            .collect();
        let mut expected_out = 0;
        for client in clients {
            expected_out += client.await.unwrap();
        }
        wait_until(|| proxy.stats().iter().all(|entry| entry.active == 0)).await;
        let stats = proxy.stats();
        assert_eq!(stats.iter().map(|entry| entry.total).sum::<u64>(), 50);
        assert_eq!(
            stats.iter().map(|entry| entry.bytes_in).sum::<u64>(),
            50 * 20_000
        );
        assert_eq!(
            stats.iter().map(|entry| entry.bytes_out).sum::<u64>(),
            expected_out as u64
        );
        assert!(
            stats.iter().all(|entry| (16..=17).contains(&entry.total)),
            "{stats:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_close_is_passed_on_in_both_directions() {
    bounded(async {
        let servers = Servers::start(&["a"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        stream.write_all(b"request").await.unwrap();
        // The server echoes until it sees our FIN, then sends its own.
        stream.shutdown().await.unwrap();
        let mut everything = Vec::new();
        stream.read_to_end(&mut everything).await.unwrap();
        assert_eq!(everything, b"a\nrequest");
    })
    .await;
}

/// Both sockets of a proxied connection carry TCP keepalive (60 s idle,
/// then probes), so a connection whose client vanished — the virtual IP
/// moved to the other director — is closed by the kernel instead of
/// holding two descriptors for ever (the fault soak found them piling up).
/// Read back with `ss`, which prints each socket's timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxied_connections_detect_dead_peers_with_keepalive() {
    bounded(async {
        let servers = Servers::start(&["a"]).await;
        let backend = servers.addr("a");
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let listen = proxy.local_addr().unwrap();
        let (_stream, name) = open(&proxy).await;
        assert_eq!(name, "a");
        let ss = |filter: String| {
            std::process::Command::new("ss")
                .args(["-tnoH", "state", "established", &filter])
                .output()
        };
        let (Ok(client_side), Ok(server_side)) = (
            ss(format!("( sport = :{} )", listen.port())),
            ss(format!("( dport = :{} )", backend.port())),
        ) else {
            not_run("`ss` (iproute2) is not installed");
            return;
        };
        let client_side = String::from_utf8_lossy(&client_side.stdout).to_string();
        let server_side = String::from_utf8_lossy(&server_side.stdout).to_string();
        assert!(
            client_side.contains("timer:(keepalive,"),
            "the accepted client socket has no keepalive timer: {client_side}"
        );
        assert!(
            server_side.contains("timer:(keepalive,"),
            "the socket to the backend has no keepalive timer: {server_side}"
        );
    })
    .await;
}

/// Long streams switch to splice(2) after 64 KiB in each direction: 3 MiB
/// each way through an echoing backend arrive whole and in order, the
/// half-close still passes both ways, and the proxies' spliced-byte count
/// grew by (about) the part after the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_streams_are_spliced_and_arrive_whole() {
    bounded(async {
        let servers = Servers::start(&["a"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let before = keepmon::lb::splice::spliced_bytes();
        let stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        let (mut read, mut write) = stream.into_split();
        // Not a repeating pattern with a short period: a lost or doubled
        // chunk cannot line up again.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let data: Vec<u8> = (0..3 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for chunk in sent.chunks(100_000) {
                write.write_all(chunk).await.unwrap();
            }
            write.shutdown().await.unwrap();
        });
        let mut everything = Vec::new();
        read.read_to_end(&mut everything).await.unwrap();
        writer.await.unwrap();
        assert_eq!(&everything[..2], b"a\n");
        assert!(
            everything[2..] == data[..],
            "{} bytes came back for {} sent",
            everything.len() - 2,
            data.len()
        );
        let spliced = keepmon::lb::splice::spliced_bytes() - before;
        assert!(
            spliced >= 2 * ((3 << 20) - 2 * keepmon::lb::splice::SPLICE_AFTER),
            "only {spliced} bytes were spliced"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persistence_sticks_a_client_to_its_backend() {
    bounded(async {
        let servers = Servers::start(&["a", "b", "c"]).await;
        let mut spec = spec(LbScheduler::RoundRobin, servers.backends());
        spec.persistence = Some(Duration::from_secs(300));
        let (proxy, _shutdown) = proxy(spec).await;

        let first = names_from(&proxy, [127, 0, 0, 1], 5).await;
        assert!(first.iter().all(|name| *name == first[0]), "{first:?}");
        let second = names_from(&proxy, [127, 0, 0, 2], 5).await;
        assert!(second.iter().all(|name| *name == second[0]), "{second:?}");
        assert_ne!(
            first[0], second[0],
            "round robin gave the second client the next backend"
        );

        // A sticky backend at weight 0 takes no new connections: the client moves and sticks anew.
        let backends = servers
            .list
            .iter()
            .map(|server| Backend {
                addr: server.addr,
                weight: u32::from(server.name != first[0]),
            })
            .collect();
        proxy.update(backends);
        let moved = names_from(&proxy, [127, 0, 0, 1], 5).await;
        assert_ne!(moved[0], first[0]);
        assert!(moved.iter().all(|name| *name == moved[0]), "{moved:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_hash_keeps_each_client_on_one_backend() {
    bounded(async {
        let servers = Servers::start(&["a", "b", "c"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::SourceHash, servers.backends())).await;
        let mut used = Vec::new();
        for last in 1..=16 {
            let names = names_from(&proxy, [127, 0, 0, last], 3).await;
            assert!(
                names.iter().all(|name| *name == names[0]),
                "127.0.0.{last}: {names:?}"
            );
            used.push(names[0].clone());
        }
        used.sort();
        used.dedup();
        assert!(used.len() > 1, "16 clients all hashed to {used:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_connection_avoids_the_busy_backend() {
    bounded(async {
        let servers = Servers::start(&["a", "b"]).await;
        let (proxy, _shutdown) =
            proxy(spec(LbScheduler::LeastConnection, servers.backends())).await;
        let (held, busy) = open(&proxy).await;
        for _ in 0..4 {
            let (stream, name) = open(&proxy).await;
            assert_ne!(name, busy);
            drop(stream);
            // Wait for the closed connection to leave, so only `held` counts.
            let other = servers.addr(&name);
            wait_until(|| find(&proxy.stats(), other).active == 0).await;
        }
        drop(held);
        wait_until(|| proxy.stats().iter().all(|entry| entry.active == 0)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weight_zero_drains_and_the_sorry_server_takes_over() {
    bounded(async {
        let servers = Servers::start(&["a", "b", "sorry"]).await;
        let mut spec = spec(
            LbScheduler::WeightedRoundRobin,
            vec![
                Backend {
                    addr: servers.addr("a"),
                    weight: 0,
                },
                backend(servers.addr("b")),
            ],
        );
        spec.sorry = Some(servers.addr("sorry"));
        let (proxy, _shutdown) = proxy(spec).await;
        for _ in 0..4 {
            assert_eq!(open(&proxy).await.1, "b");
        }
        proxy.update(vec![Backend {
            addr: servers.addr("a"),
            weight: 0,
        }]);
        assert_eq!(open(&proxy).await.1, "sorry");
        proxy.update(Vec::new());
        assert_eq!(open(&proxy).await.1, "sorry");
        let stats = proxy.stats();
        let sorry = find(&stats, servers.addr("sorry"));
        assert!(sorry.sorry && sorry.in_table);
        assert_eq!(sorry.total, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_stops_accepting_and_lets_connections_finish() {
    bounded(async {
        let servers = Servers::start(&["a"]).await;
        let shutdown = CancellationToken::new();
        let proxy = start(
            spec(LbScheduler::RoundRobin, servers.backends()),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let (mut established, _) = open(&proxy).await;

        shutdown.cancel();
        wait_until_refused(proxy_addr).await;
        assert_echo(&mut established, b"after shutdown").await;
        assert!(
            tokio::time::timeout(Duration::from_millis(200), proxy.closed())
                .await
                .is_err(),
            "closed() returned while a connection was open"
        );
        drop(established);
        proxy.closed().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_and_drop_stop_accepting() {
    bounded(async {
        let servers = Servers::start(&["a"]).await;
        let (proxy, _shutdown) = proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let proxy_addr = proxy.local_addr().unwrap();
        proxy.close();
        wait_until_refused(proxy_addr).await;
        proxy.closed().await;

        let (proxy, _shutdown) =
            self::proxy(spec(LbScheduler::RoundRobin, servers.backends())).await;
        let proxy_addr = proxy.local_addr().unwrap();
        drop(proxy);
        wait_until_refused(proxy_addr).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_port_in_use_is_an_error() {
    bounded(async {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut spec = spec(LbScheduler::RoundRobin, Vec::new());
        spec.listen = Some(taken.local_addr().unwrap());
        let error = start(spec, CancellationToken::new()).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        assert!(
            error
                .to_string()
                .contains(&taken.local_addr().unwrap().to_string()),
            "{error}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listens_on_an_address_that_is_not_local_yet() {
    bounded(async {
        // TEST-NET-1: never routed, never local here. Only bound, never used.
        let vip = SocketAddr::from(([192, 0, 2, 10], 0));
        let mut spec = spec(LbScheduler::RoundRobin, Vec::new());
        spec.listen = Some(vip);
        match start(spec, CancellationToken::new()).await {
            Ok(proxy) => match proxy.local_addr() {
                Some(bound) => {
                    assert_eq!(bound.ip(), vip.ip());
                    assert_ne!(bound.port(), 0);
                }
                None => not_run(&format!(
                    "binding {vip}: IP_FREEBIND did not take here (not Linux?); the proxy is waiting for the address"
                )),
            },
            Err(error) => panic!("start must not fail on a non-local address: {error}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backend_that_hangs_up_before_its_first_byte_is_replaced() {
    bounded(async {
        let live = Servers::start(&["live"]).await;
        for script in [Script::HangUp, Script::Reset] {
            let rude = Scripted::start("rude", script).await;
            let backends = vec![backend(rude.addr), backend(live.addr("live"))];
            let mut spec = spec(LbScheduler::RoundRobin, backends.clone());
            spec.retries = 2;
            let (proxy, _shutdown) = proxy(spec).await;
            for _ in 0..4 {
                let (mut stream, name) = open(&proxy).await;
                assert_eq!(name, "live", "{script:?}");
                assert_echo(&mut stream, b"hello").await;
            }
            let stats = proxy.stats();
            let rude_stats = find(&stats, rude.addr);
            // A reset may beat the end of the handshake and fail the connect
            // itself; a FIN never does.
            assert!(rude_stats.failures >= 1, "{script:?}: {rude_stats:?}");
            assert!(
                rude_stats.failures >= rude_stats.total,
                "{script:?}: every connection it took was retried: {rude_stats:?}"
            );
            if let Script::HangUp = script {
                assert_eq!(rude_stats.failures, rude_stats.total, "{rude_stats:?}");
            }
            assert_eq!(find(&stats, live.addr("live")).total, 4);
            assert_eq!(find(&stats, live.addr("live")).failures, 0);

            // Without retries the hang-up reaches the client, as before.
            let (proxy, _shutdown) =
                self::proxy(self::spec(LbScheduler::RoundRobin, backends)).await;
            let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
                .await
                .unwrap();
            let mut buffer = [0u8; 16];
            let read = stream.read(&mut buffer).await;
            assert!(matches!(read, Ok(0) | Err(_)), "{script:?}: {read:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_is_replayed_when_the_backend_resets_before_answering() {
    bounded(async {
        let flaky = Scripted::start("flaky", Script::ReadLineThenReset).await;
        let good = Scripted::start("good", Script::Answer).await;
        // Once with the connection left open, once with the client's FIN
        // right after the request: both are replayed.
        for half_close in [false, true] {
            let mut spec = spec(
                LbScheduler::RoundRobin,
                vec![backend(flaky.addr), backend(good.addr)],
            );
            spec.retries = 2;
            let (proxy, _shutdown) = proxy(spec).await;
            let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
                .await
                .unwrap();
            stream.write_all(b"GET /index\n").await.unwrap();
            if half_close {
                stream.shutdown().await.unwrap();
            }
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            assert_eq!(answer, b"good: GET /index\n", "half-close: {half_close}");

            let stats = proxy.stats();
            let (flaky_stats, good_stats) = (find(&stats, flaky.addr), find(&stats, good.addr));
            assert_eq!((flaky_stats.total, flaky_stats.failures), (1, 1));
            assert_eq!((good_stats.total, good_stats.failures), (1, 0));
            assert_eq!((flaky_stats.bytes_in, good_stats.bytes_in), (11, 11));
            assert_eq!(good_stats.bytes_out, answer.len() as u64);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_replay_once_the_backend_has_sent_a_byte() {
    bounded(async {
        let dying = Scripted::start("dying", Script::OneByteThenReset).await;
        let good = Scripted::start("good", Script::Answer).await;
        let mut spec = spec(
            LbScheduler::RoundRobin,
            vec![backend(dying.addr), backend(good.addr)],
        );
        spec.retries = 2;
        let (proxy, _shutdown) = proxy(spec).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        assert_eq!(stream.read_u8().await.unwrap(), b'x');
        let mut rest = [0u8; 16];
        let read = stream.read(&mut rest).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the client sees the close: {read:?}"
        );
        let stats = proxy.stats();
        assert_eq!(find(&stats, dying.addr).failures, 0);
        assert_eq!(
            find(&stats, good.addr).total,
            0,
            "no replay after the first byte"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_the_clients_fin_an_empty_close_is_an_answer() {
    bounded(async {
        let sink = Scripted::start("sink", Script::Sink).await;
        let good = Scripted::start("good", Script::Answer).await;
        let mut spec = spec(
            LbScheduler::RoundRobin,
            vec![backend(sink.addr), backend(good.addr)],
        );
        spec.retries = 2;
        let (proxy, _shutdown) = proxy(spec).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        stream.write_all(b"log line\n").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        assert!(answer.is_empty(), "{answer:?}");
        let stats = proxy.stats();
        let sink_stats = find(&stats, sink.addr);
        assert_eq!((sink_stats.failures, sink_stats.bytes_in), (0, 9));
        assert_eq!(find(&stats, good.addr).total, 0, "not replayed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_sends_more_than_the_replay_limit_is_not_replayed() {
    bounded(async {
        let flaky = Scripted::start("flaky", Script::ReadLineThenReset).await;
        let good = Scripted::start("good", Script::Answer).await;
        let mut spec = spec(
            LbScheduler::RoundRobin,
            vec![backend(flaky.addr), backend(good.addr)],
        );
        spec.retries = 2;
        let (proxy, _shutdown) = proxy(spec).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        // The line ends after 16 KiB, so the backend resets only once the
        // proxy has given up keeping a copy.
        let mut request = vec![b'a'; 20_000];
        request.push(b'\n');
        stream.write_all(&request).await.unwrap();
        let mut rest = [0u8; 16];
        let read = stream.read(&mut rest).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the client sees the close: {read:?}"
        );
        let stats = proxy.stats();
        assert_eq!(find(&stats, flaky.addr).bytes_in, request.len() as u64);
        assert_eq!(find(&stats, good.addr).total, 0, "not replayed");
    })
    .await;
}

// ----- helpers -----

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test exceeded its time limit")
}

fn spec(scheduler: LbScheduler, backends: Vec<Backend>) -> ProxySpec {
    ProxySpec {
        name: "test".to_string(),
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        scheduler,
        config_servers: Default::default(),
        backends,
        persistence: None,
        retries: 0,
        connect_timeout: Duration::from_secs(2),
        sorry: None,
        options: Default::default(),
        limits: Default::default(),
    }
}

fn backend(addr: SocketAddr) -> Backend {
    Backend { addr, weight: 1 }
}

/// Starts a proxy; the token is returned so that the test holds it.
async fn proxy(spec: ProxySpec) -> (ProxyHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let proxy = start(spec, shutdown.clone()).await.expect("proxy starts");
    assert!(proxy.local_addr().is_some());
    (proxy, shutdown)
}

/// Connects through the proxy and reads the backend's greeting.
async fn open(proxy: &ProxyHandle) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
        .await
        .unwrap();
    let name = read_name(&mut stream).await;
    (stream, name)
}

/// Backend names seen by `count` sequential connections from `source`.
async fn names_from(proxy: &ProxyHandle, source: [u8; 4], count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..count {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(source)), 0))
            .unwrap();
        let mut stream = socket.connect(proxy.local_addr().unwrap()).await.unwrap();
        names.push(read_name(&mut stream).await);
    }
    names
}

async fn read_name(stream: &mut TcpStream) -> String {
    let mut name = Vec::new();
    loop {
        let byte = stream.read_u8().await.expect("the backend's greeting");
        if byte == b'\n' {
            return String::from_utf8(name).unwrap();
        }
        name.push(byte);
    }
}

async fn assert_echo(stream: &mut TcpStream, payload: &[u8]) {
    let (mut reader, mut writer) = stream.split();
    let mut echoed = vec![0u8; payload.len()];
    let (written, read) = tokio::join!(writer.write_all(payload), reader.read_exact(&mut echoed));
    written.unwrap();
    read.unwrap();
    assert!(echoed == payload, "the echo differs from what was sent");
}

fn find(stats: &[BackendStats], addr: SocketAddr) -> BackendStats {
    stats
        .iter()
        .find(|entry| entry.addr == addr)
        .cloned()
        .unwrap_or_else(|| panic!("{addr} not in {stats:?}"))
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_until_refused(addr: SocketAddr) {
    while TcpStream::connect(addr).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A loopback address with nothing listening: bound, then released.
async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

struct Server {
    name: String,
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Server {
    /// Greets each connection with its name, echoes until the client's FIN,
    /// then closes.
    async fn start(name: &str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let greeting = format!("{name}\n");
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let greeting = greeting.clone();
                tokio::spawn(async move {
                    if stream.write_all(greeting.as_bytes()).await.is_err() {
                        return;
                    }
                    let (mut reader, mut writer) = stream.split();
                    if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
                        let _ = writer.shutdown().await;
                    }
                });
            }
        });
        Server {
            name: name.to_string(),
            addr,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Servers {
    list: Vec<Server>,
}

impl Servers {
    async fn start(names: &[&str]) -> Servers {
        let mut list = Vec::new();
        for name in names {
            list.push(Server::start(name).await);
        }
        Servers { list }
    }

    fn backends(&self) -> Vec<Backend> {
        self.list
            .iter()
            .filter(|server| server.name != "sorry")
            .map(|server| backend(server.addr))
            .collect()
    }

    fn addr(&self, name: &str) -> SocketAddr {
        self.list
            .iter()
            .find(|server| server.name == name)
            .unwrap()
            .addr
    }
}

/// What a [`Scripted`] backend does with each connection.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Closes (FIN) at once, sending nothing.
    HangUp,
    /// Resets (`SO_LINGER` 0) at once, sending nothing.
    Reset,
    /// Reads a request line, then resets without answering.
    ReadLineThenReset,
    /// Sends `x`, waits a little, then resets.
    OneByteThenReset,
    /// Reads a request line, answers `<name>: <line>`, then closes.
    Answer,
    /// Reads until the client's FIN, then closes without a word.
    Sink,
}

/// A client-speaks-first or misbehaving backend on `127.0.0.1:0`.
struct Scripted {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Scripted {
    async fn start(name: &str, script: Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let name = name.to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(run_script(stream, script, name.clone()));
            }
        });
        Scripted { addr, task }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_script(mut stream: TcpStream, script: Script, name: String) {
    match script {
        Script::HangUp => drop(stream),
        Script::Reset => reset(stream),
        Script::ReadLineThenReset => {
            read_line(&mut stream).await;
            reset(stream);
        }
        Script::OneByteThenReset => {
            let _ = stream.write_all(b"x").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            reset(stream);
        }
        Script::Answer => {
            let line = read_line(&mut stream).await;
            let answer = format!("{name}: {}", String::from_utf8_lossy(&line));
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Script::Sink => {
            let _ = stream.read_to_end(&mut Vec::new()).await;
        }
    }
}

/// Closes with `SO_LINGER` 0: the peer gets a reset, not a FIN.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// Everything up to and including the first newline (or the end of stream).
async fn read_line(stream: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    while !line.contains(&b'\n') {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => line.extend_from_slice(&chunk[..read]),
        }
    }
    line
}
