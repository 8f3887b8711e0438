//! The built-in `tcp` check of one host: connect, optionally send a string, optionally read until a regex matches; never holds a connection past the check.

use std::net::SocketAddr;
use std::time::Duration;

use regex::bytes::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{HostStatus, OUTPUT_CAP};
use crate::config::model::TcpCheck;

/// A tcp check with its `expect` regex compiled.
pub(crate) struct Prepared {
    check: TcpCheck,
    expect: Option<Regex>,
}

impl Prepared {
    pub(crate) fn new(check: &TcpCheck) -> Result<Prepared, String> {
        let expect = check
            .expect
            .as_deref()
            .map(|re| Regex::new(re).map_err(|e| format!("bad expect regex {re:?}: {e}")))
            .transpose()?;
        Ok(Prepared {
            check: check.clone(),
            expect,
        })
    }

    pub(crate) async fn check(&self, host: &str) -> (HostStatus, Option<Duration>) {
        let started = Instant::now();
        match tokio::time::timeout(self.check.timeout, self.probe(host, started)).await {
            Ok(Ok(latency)) => (HostStatus::Ok, Some(latency)),
            Ok(Err(reason)) => (HostStatus::Fail { reason }, None),
            Err(_) => (HostStatus::Timeout, None),
        }
    }

    async fn probe(&self, host: &str, started: Instant) -> Result<Duration, String> {
        let (name, port) = super::split_host_port(host);
        let mut stream = connect(name, port.unwrap_or(self.check.port)).await?;
        let mut latency = started.elapsed();
        if let Some(send) = &self.check.send {
            stream
                .write_all(send.as_bytes())
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        if let Some(expect) = &self.expect {
            read_until_match(&mut stream, expect).await?;
            latency = started.elapsed();
        }
        Ok(latency)
    }
}

/// Resolve `host` and connect to the first address that accepts, in the
/// resolver's order (as curl does).
pub(crate) async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(format!("could not connect to {addr}: {e}")),
        }
    }
    Err(last_error.unwrap_or_else(|| format!("cannot resolve {host}: no addresses")))
}

/// Read until `expect` matches what has arrived so far. EOF or more than
/// [`OUTPUT_CAP`] bytes without a match is a failure; the caller's timeout
/// bounds the wait.
async fn read_until_match(stream: &mut TcpStream, expect: &Regex) -> Result<(), String> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "reply did not match /{}/: got {}",
                expect.as_str(),
                preview(&received)
            ));
        }
        received.extend_from_slice(&chunk[..n]);
        if expect.is_match(&received) {
            return Ok(());
        }
        if received.len() > OUTPUT_CAP {
            return Err(format!(
                "reply did not match /{}/ in the first {OUTPUT_CAP} bytes",
                expect.as_str()
            ));
        }
    }
}

/// The start of a reply, quoted and escaped, for a detail line.
pub(crate) fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let more = if bytes.len() > MAX { "..." } else { "" };
    format!("{text:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_is_short_and_escaped() {
        assert_eq!(preview(b"220 hi\r\n"), "\"220 hi\\r\\n\"");
        assert_eq!(preview(&[b'a'; 100]).len(), 80 + 2 + 3);
    }
}
