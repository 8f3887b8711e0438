//! The mon listener part: binds mon's client port and trap port when a config first asks for them and hands the sockets to `monproto::server`; a reload that moves them says a restart is needed.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::diff::ConfigDiff;
use crate::config::model::Config;
use crate::monproto::server::{self, MonCall, ServerSettings};

/// Which sockets are served.
pub(super) struct MonListener {
    calls: mpsc::Sender<MonCall>,
    shutdown: CancellationToken,
    /// The client port and trap port in use (None: not configured or not
    /// bound).
    bound: Option<(Option<SocketAddr>, Option<SocketAddr>)>,
}

impl MonListener {
    pub fn new(calls: mpsc::Sender<MonCall>, shutdown: CancellationToken) -> MonListener {
        MonListener {
            calls,
            shutdown,
            bound: None,
        }
    }

    /// At start: bind mon's client port (and the trap port). A port that
    /// cannot be bound (in use, no permission) is logged and the daemon
    /// runs without it: the control socket and monitoring keep working.
    /// On reload: the sockets stay; a changed address is logged as needing
    /// a restart (auth.cf is re-read by the client's `reload auth`).
    pub fn reconfigure(&mut self, config: &Config, _diff: &ConfigDiff) {
        let wanted = (
            config.settings.mon_listener,
            config
                .settings
                .trap_listener
                .filter(|_| config.settings.mon_listener.is_some()),
        );
        if let Some(bound) = self.bound {
            if bound != wanted {
                tracing::warn!(
                    "the mon client or trap port changed; restart keepmon to move the listener"
                );
            }
            return;
        }
        self.bound = Some(wanted);
        let settings = match ServerSettings::from_settings(&config.settings) {
            None => return,
            Some(Err(e)) => {
                tracing::error!("mon protocol listener not started: {e}");
                return;
            }
            Some(Ok(s)) => s,
        };
        let auth: server::SharedAuth =
            Arc::new(ArcSwap::from_pointee(server::load_auth(&settings)));
        if let Some(addr) = config.settings.trap_listener {
            match bind_udp(addr) {
                Ok(socket) => {
                    tracing::info!(%addr, "mon traps listening");
                    tokio::spawn(server::serve_traps(
                        socket,
                        auth.clone(),
                        self.calls.clone(),
                        self.shutdown.clone(),
                    ));
                }
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot listen for mon traps; running without them")
                }
            }
        }
        match bind_tcp(settings.addr) {
            Ok(listener) => {
                tracing::info!(addr = %settings.addr, "mon protocol listening");
                tokio::spawn(server::serve(
                    listener,
                    settings,
                    auth,
                    self.calls.clone(),
                    self.shutdown.clone(),
                ));
            }
            Err(e) => tracing::error!(
                addr = %settings.addr,
                error = %e,
                "cannot listen for mon clients (moncmd, monshow); running without the mon port"
            ),
        }
    }
}

/// Bind without waiting (std's bind sets SO_REUSEADDR, as tokio's does).
fn bind_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}
