//! Fuzz target: the tcp proxy's relay and its replay before a backend's first byte: however the client sends its bytes and however backends fail before answering, every backend sees the client's bytes once and in order (a prefix of the client's stream), and the client gets one backend's answer whole or nothing.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use keepmon::config::model::{LbScheduler, ProxyOptions};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxySpec, start};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What one backend does with a connection.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Nothing listens on its port.
    Refuse,
    /// Reads up to `n` bytes (fewer if the client sends fewer), then closes.
    Close(usize),
    /// Reads up to `n` bytes, then resets the connection.
    Reset(usize),
    /// Reads up to `n` bytes, answers `len` bytes, closes its side and
    /// records what else arrives.
    Answer(usize, usize),
}

/// The scenario a fuzz input stands for.
#[derive(Debug)]
struct Scenario {
    backends: Vec<Behaviour>,
    chunks: Vec<Vec<u8>>,
    half_close: bool,
    retries: u32,
}

/// Reads the scenario from the input bytes; missing bytes read as zero.
fn scenario(data: &[u8]) -> Scenario {
    let mut bytes = data.iter().copied().chain(std::iter::repeat(0));
    let mut next = move || bytes.next().unwrap_or(0);
    let count = usize::from(next() % 3) + 1;
    let backends = (0..count)
        .map(|_| {
            let kind = next() % 4;
            // Up to ~40 KiB: beyond the proxy's 16 KiB replay buffer.
            let n = usize::from(next()) * 160;
            match kind {
                0 => Behaviour::Refuse,
                1 => Behaviour::Close(n),
                2 => Behaviour::Reset(n),
                _ => Behaviour::Answer(n, usize::from(next()) * 600 + 1),
            }
        })
        .collect();
    let flags = next();
    let chunk_count = usize::from(flags % 6);
    let mut fill = 0u8;
    let chunks = (0..chunk_count)
        .map(|_| {
            // Up to ~200 KiB in all: past the 64 KiB after which the proxy
            // splices.
            let len = usize::from(u16::from_le_bytes([next(), next()])) % 40_000 + 1;
            (0..len)
                .map(|_| {
                    fill = fill.wrapping_add(1);
                    fill
                })
                .collect()
        })
        .collect();
    Scenario {
        backends,
        chunks,
        half_close: flags & 0x40 != 0,
        retries: u32::from(flags >> 7) + u32::from((flags >> 3) & 3),
    }
}

/// The answer of backend `index`: distinct per backend.
fn answer(index: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b'A' + (index as u8) + ((i % 7) as u8) * 3)
        .collect()
}

/// Runs one backend's behaviour on every connection it gets; returns what
/// each connection received.
async fn backend(
    listener: TcpListener,
    index: usize,
    behaviour: Behaviour,
    total: usize,
    records: tokio::sync::mpsc::UnboundedSender<(usize, Vec<u8>)>,
) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let records = records.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            let want = match behaviour {
                Behaviour::Refuse => 0,
                Behaviour::Close(n) | Behaviour::Reset(n) | Behaviour::Answer(n, _) => n.min(total),
            };
            let mut buf = [0u8; 4096];
            while got.len() < want {
                match stream.read(&mut buf[..(want - got.len()).min(4096)]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            match behaviour {
                Behaviour::Refuse | Behaviour::Close(_) => {}
                Behaviour::Reset(_) => {
                    // A zero linger makes the drop send a reset; it does
                    // not block (the deprecation is about non-zero ones).
                    #[allow(deprecated)]
                    let _ = stream.set_linger(Some(Duration::ZERO));
                }
                Behaviour::Answer(_, len) => {
                    if stream.write_all(&answer(index, len)).await.is_ok() {
                        let _ = stream.shutdown().await;
                        while let Ok(n) = stream.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                    }
                }
            }
            let _ = records.send((index, got));
        });
    }
}

async fn run(s: Scenario) {
    let stream: Vec<u8> = s.chunks.concat();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut backends = Vec::new();
    let mut accepting = Vec::new();
    let mut refusing = Vec::new();
    for (index, behaviour) in s.backends.iter().enumerate() {
        let addr = if matches!(behaviour, Behaviour::Refuse) {
            // Bound but not listening: connecting is refused, and the port
            // stays taken (a closed one could become the proxy's own).
            let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
            socket
                .bind("127.0.0.1:0".parse().expect("an address"))
                .expect("bind a refusing backend");
            let addr = socket.local_addr().expect("backend address");
            refusing.push(socket);
            addr
        } else {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a backend");
            let addr = listener.local_addr().expect("backend address");
            accepting.push(tokio::spawn(backend(
                listener,
                index,
                *behaviour,
                stream.len(),
                tx.clone(),
            )));
            addr
        };
        backends.push(Backend { addr, weight: 1 });
    }
    drop(tx);
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let shutdown = CancellationToken::new();
    let proxy = start(
        ProxySpec {
            name: "fuzz".to_string(),
            listen: Some("127.0.0.1:0".parse().expect("an address")),
            scheduler: LbScheduler::RoundRobin,
            config_servers: Default::default(),
            backends,
            persistence: None,
            retries: s.retries,
            connect_timeout: Duration::from_secs(2),
            sorry: None,
            options: ProxyOptions::default(),
            limits: Default::default(),
        },
        shutdown.clone(),
    )
    .await
    .expect("the proxy starts");
    let listen = proxy.local_addr().expect("the proxy listens");

    let mut client = TcpStream::connect(listen)
        .await
        .expect("connect to the proxy");
    let (mut read, mut write) = client.split();
    let send = async {
        for chunk in &s.chunks {
            if write.write_all(chunk).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        if s.half_close {
            let _ = write.shutdown().await;
        }
    };
    let mut received = Vec::new();
    let receive = async {
        let _ = read.read_to_end(&mut received).await;
    };
    tokio::join!(send, receive);
    drop(client);
    proxy.close();
    shutdown.cancel();
    // The accept loops hold senders forever; each connection's task ends
    // when its connection does.
    for task in accepting {
        task.abort();
        let _ = task.await;
    }
    drop(refusing);

    // Every connection a backend got carried a prefix of the client's
    // stream: nothing lost in the middle, nothing twice, nothing reordered.
    while let Some((index, got)) = rx.recv().await {
        assert!(
            stream.starts_with(&got),
            "backend {index} ({:?}) got {} bytes that are not the first {} bytes the client sent ({} in all)",
            s.backends[index],
            got.len(),
            got.len(),
            stream.len()
        );
    }
    // The client got nothing, or one answering backend's whole answer.
    if !received.is_empty() {
        let from = s
            .backends
            .iter()
            .enumerate()
            .find_map(|(index, b)| match b {
                Behaviour::Answer(_, len) if received == answer(index, *len) => Some(index),
                _ => None,
            });
        assert!(
            from.is_some(),
            "the client got {} bytes that are no backend's whole answer (backends {:?} at {addrs:?})",
            received.len(),
            s.backends
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let scenario = scenario(data);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), run(scenario))
            .await
            .expect("the exchange ended within 20 s (a hang in the relay?)");
    });
});
