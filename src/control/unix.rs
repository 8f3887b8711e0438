//! The control socket: the daemon's listener (mode 0600 from the start, root or the daemon's own uid only, one request per connection) and the CLI's client.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::control::proto::{self, Request, Response};

/// A request from a control client with the channel for its answer.
pub type ControlCall = (Request, oneshot::Sender<Response>);

/// Longest request line accepted (a request is a few hundred bytes).
const MAX_REQUEST: u64 = 64 * 1024;

/// Bind the control socket at `path` with mode 0600 (created under umask
/// 077, so it is never reachable by others, not even for a moment). A stale
/// socket (nobody listening) is replaced; a live one means another daemon
/// runs; anything else at that path (a file, a directory, a symlink) is
/// left alone and refused.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use: is keepmon already running?", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; not removing it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // The umask is the process's; this runs at start, before any task
    // that creates files.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Whether a control client may talk to the daemon: root, or the user the
/// daemon runs as.
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    let ours = nix::unistd::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == 0 || cred.uid() == ours => Ok(()),
        Ok(cred) => Err(format!(
            "uid {} may not use the control socket (root or uid {ours} only)",
            cred.uid()
        )),
        Err(e) => Err(format!("cannot read the peer's credentials: {e}")),
    }
}

/// Accept control connections until `shutdown`; each request is handed to the
/// supervisor over `calls`. A slow or broken client only affects itself.
pub async fn serve(
    listener: UnixListener,
    calls: mpsc::Sender<ControlCall>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let calls = calls.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, calls).await {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
        });
    }
}

async fn handle(stream: UnixStream, calls: mpsc::Sender<ControlCall>) -> io::Result<()> {
    // A refused client's request is read (so it hears why) but never
    // decoded or passed on.
    let refused = peer_allowed(&stream).err();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_REQUEST);
    let mut line = String::new();
    let response =
        match tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await {
            Err(_) => Response::Error {
                message: "timed out waiting for the request".into(),
            },
            Ok(Err(e)) => Response::Error {
                message: format!("unreadable request: {e}"),
            },
            Ok(Ok(_)) if refused.is_some() => {
                let message = refused.unwrap_or_default();
                tracing::warn!(reason = message, "control client refused");
                Response::Error { message }
            }
            Ok(Ok(_)) => match proto::decode::<Request>(&line) {
                Err(message) => Response::Error { message },
                Ok(request) => {
                    let (reply, answer) = oneshot::channel();
                    if calls.send((request, reply)).await.is_err() {
                        Response::Error {
                            message: "the daemon is shutting down".into(),
                        }
                    } else {
                        answer.await.unwrap_or(Response::Error {
                            message: "the daemon dropped the request".into(),
                        })
                    }
                }
            },
        };
    write.write_all(proto::encode(&response).as_bytes()).await?;
    write.shutdown().await
}

/// The CLI side: send one request and wait for the answer.
pub async fn call(path: &Path, request: &Request, timeout: Duration) -> io::Result<Response> {
    let work = async {
        let stream = UnixStream::connect(path).await?;
        let (read, mut write) = stream.into_split();
        write.write_all(proto::encode(request).as_bytes()).await?;
        let mut line = String::new();
        BufReader::new(read)
            .take(64 * 1024 * 1024)
            .read_line(&mut line)
            .await?;
        proto::decode::<Response>(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the daemon did not answer in time"))?
}
