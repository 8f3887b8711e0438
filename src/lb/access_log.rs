//! The proxy's access log (HAProxy's `option httplog` / `option tcplog` with `dontlognull`): one line per http request or tcp connection in HAProxy's field order, to keepmon's own log or appended to a file.
//!
//! httplog (HAProxy 2.6's format without header captures):
//!
//! ```text
//! %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq "%r"
//! 127.0.0.1:40522 [30/Nov/2026:21:18:10.123] web web/127.0.0.1:8081 0/0/1/2/4 200 1234 - - ---- 1/1/0/1/0 0/0 "GET / HTTP/1.1"
//! ```
//!
//! tcplog:
//!
//! ```text
//! %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
//! ```
//!
//! The frontend is the virtual server the client connected to; the backend
//! is the pool a `use_backend` route chose, else the haproxy.cfg backend of
//! that frontend, else the virtual server itself; a server is named by its
//! address; `-` stands for no server. Timers are in
//! milliseconds, -1 for a step never reached. `TR` is the time from the
//! accept to the request head for a connection's first request and 0 for
//! later ones (keepmon cannot see when a keep-alive request's first byte
//! came); `%B` counts body bytes to the client (not the head); the cookie
//! captures are always `-`; `ac` is the virtual server's client
//! connections like `fc` (keepmon keeps no process-wide count). The
//! termination state's first two letters follow HAProxy (`--` normal,
//! `sC`/`SC` no server or connect failure, `sQ` queue timeout, `sH`/`SH`
//! server timeout or failure before the head, `cD` client timeout in the
//! body, `CD` client gone during the body); the persistence letters are
//! `--`. In tcp mode `Tw` is 0 and `Tc` runs from the accept to the
//! established server connection, a queue wait included. The date is local
//! time, as HAProxy writes it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::config::model::{AccessLog, AccessLogTarget};

/// Where one proxy's lines go.
#[derive(Debug)]
pub(crate) struct AccessLogger {
    pub(crate) config: AccessLog,
    file: Option<Mutex<std::fs::File>>,
}

impl AccessLogger {
    /// Opens the file (append, created when missing); when that fails the
    /// lines go to keepmon's own log, with one warning.
    pub(crate) fn open(config: &AccessLog, listen: SocketAddr) -> AccessLogger {
        let file = match &config.to {
            AccessLogTarget::Tracing => None,
            AccessLogTarget::File(path) => match open_append(path) {
                Ok(file) => Some(Mutex::new(file)),
                Err(error) => {
                    warn!(%listen, path = %path.display(), %error, "cannot open the access log; logging requests to keepmon's log instead");
                    None
                }
            },
        };
        AccessLogger {
            config: config.clone(),
            file,
        }
    }

    pub(crate) fn dontlognull(&self) -> bool {
        self.config.dontlognull
    }

    /// Writes one line. A failed write is dropped (the request was served).
    pub(crate) fn write(&self, line: &str) {
        match &self.file {
            Some(file) => {
                let mut file = file
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = writeln!(file, "{line}");
            }
            None => tracing::info!(target: "keepmon::access", "{line}"),
        }
    }
}

fn open_append(path: &PathBuf) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// HAProxy's date format: `30/Nov/2026:21:18:10.123`, local time.
pub fn haproxy_date(at: SystemTime) -> String {
    let local: chrono::DateTime<chrono::Local> = at.into();
    local.format("%d/%b/%Y:%H:%M:%S%.3f").to_string()
}

/// Milliseconds, -1 for a step not reached.
fn ms(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The facts one line is made of.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub client: Option<SocketAddr>,
    /// When the connection was accepted (tcp) or the request received (http).
    pub date: String,
    /// The frontend: the virtual server the client connected to.
    pub name: String,
    /// The backend (`%b`): the pool a route chose, or the frontend's
    /// haproxy.cfg backend; empty: the virtual server itself.
    pub backend: String,
    pub server: Option<SocketAddr>,
    /// TR (http only).
    pub t_request: Option<Duration>,
    pub t_wait: Option<Duration>,
    pub t_connect: Option<Duration>,
    /// Tr (http only).
    pub t_response: Option<Duration>,
    /// Ta (http) or Tt (tcp).
    pub t_total: Option<Duration>,
    /// http only; 0 when none was sent.
    pub status: u16,
    pub bytes: u64,
    /// Two letters: who ended it and in which state.
    pub termination: [u8; 2],
    pub clients: u64,
    pub backend_conns: u64,
    pub server_conns: u64,
    pub retries: u32,
    pub server_queue: u64,
    pub backend_queue: u64,
    /// `GET / HTTP/1.1` (http only).
    pub request_line: String,
}

impl Entry {
    fn server_name(&self) -> String {
        match self.server {
            Some(addr) => addr.to_string(),
            None => "<NOSRV>".to_string(),
        }
    }

    fn backend(&self) -> &str {
        if self.backend.is_empty() {
            &self.name
        } else {
            &self.backend
        }
    }

    fn termination(&self) -> String {
        String::from_utf8_lossy(&self.termination).into_owned()
    }

    /// The httplog line.
    pub fn httplog(&self) -> String {
        let mut line = String::with_capacity(160);
        let client = self
            .client
            .map_or_else(|| "-:-".to_string(), |c| format!("{}:{}", c.ip(), c.port()));
        let _ = write!(
            line,
            "{client} [{}] {} {}/{} {}/{}/{}/{}/{} {} {} - - {}-- {}/{}/{}/{}/{} {}/{} \"{}\"",
            self.date,
            self.name,
            self.backend(),
            self.server_name(),
            ms(self.t_request),
            ms(self.t_wait),
            ms(self.t_connect),
            ms(self.t_response),
            ms(self.t_total),
            self.status,
            self.bytes,
            self.termination(),
            self.clients,
            self.clients,
            self.backend_conns,
            self.server_conns,
            self.retries,
            self.server_queue,
            self.backend_queue,
            self.request_line.replace('"', "%22"),
        );
        line
    }

    /// The tcplog line.
    pub fn tcplog(&self) -> String {
        let client = self
            .client
            .map_or_else(|| "-:-".to_string(), |c| format!("{}:{}", c.ip(), c.port()));
        format!(
            "{client} [{}] {} {}/{} {}/{}/{} {} {} {}/{}/{}/{}/{} {}/{}",
            self.date,
            self.name,
            self.backend(),
            self.server_name(),
            ms(self.t_wait),
            ms(self.t_connect),
            ms(self.t_total),
            self.bytes,
            self.termination(),
            self.clients,
            self.clients,
            self.backend_conns,
            self.server_conns,
            self.retries,
            self.server_queue,
            self.backend_queue,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            client: Some("192.0.2.7:40522".parse().unwrap()),
            date: "30/Nov/2026:21:18:10.123".into(),
            name: "web".into(),
            backend: String::new(),
            server: Some("127.0.0.1:8081".parse().unwrap()),
            t_request: Some(Duration::ZERO),
            t_wait: Some(Duration::ZERO),
            t_connect: Some(Duration::from_millis(1)),
            t_response: Some(Duration::from_millis(2)),
            t_total: Some(Duration::from_millis(4)),
            status: 200,
            bytes: 1234,
            termination: *b"--",
            clients: 1,
            backend_conns: 0,
            server_conns: 1,
            retries: 0,
            server_queue: 0,
            backend_queue: 0,
            request_line: "GET / HTTP/1.1".into(),
        }
    }

    #[test]
    fn lines_follow_haproxys_field_order() {
        assert_eq!(
            entry().httplog(),
            "192.0.2.7:40522 [30/Nov/2026:21:18:10.123] web web/127.0.0.1:8081 0/0/1/2/4 200 1234 - - ---- 1/1/0/1/0 0/0 \"GET / HTTP/1.1\""
        );
        let no_server = Entry {
            server: None,
            t_connect: None,
            t_response: None,
            status: 503,
            termination: *b"sC",
            ..entry()
        };
        assert_eq!(
            no_server.httplog(),
            "192.0.2.7:40522 [30/Nov/2026:21:18:10.123] web web/<NOSRV> 0/0/-1/-1/4 503 1234 - - sC-- 1/1/0/1/0 0/0 \"GET / HTTP/1.1\""
        );
        assert_eq!(
            entry().tcplog(),
            "192.0.2.7:40522 [30/Nov/2026:21:18:10.123] web web/127.0.0.1:8081 0/1/4 1234 -- 1/1/0/1/0 0/0"
        );
        let routed = Entry {
            backend: "api".into(),
            ..entry()
        };
        assert!(
            routed.httplog().contains("] web api/127.0.0.1:8081 "),
            "{}",
            routed.httplog()
        );
    }

    #[test]
    fn dates_are_haproxys() {
        let date = haproxy_date(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        assert_eq!(date.len(), "14/Nov/2023:22:13:20.123".len(), "{date}");
        assert!(date.ends_with(".123"), "{date}");
    }
}
