//! The built-in `smtp` check of one host, keepalived's `SMTP_CHECK` conversation (220 greeting, `HELO name` → 250, `QUIT`, one more line); never sends mail and never holds a connection past the check.
//!
//! keepalived's rules (keepalived/check/check_smtp.c, 2.2.7), kept here:
//!
//! - Each step (connect, every read, every write) has its own timeout, the
//!   checker's `connect_timeout`.
//! - A reply is read until its first `\n`; whatever came after it in the
//!   same reads is dropped, and a line with no `\n` after 511 bytes is
//!   dropped and reading goes on.
//! - A status is the line's first three characters read as `strtoul`
//!   does, followed by the end of the line or a space: `250-SIZE` (the
//!   first line of a multi-line reply) and `220\r` are not a status.
//! - After `QUIT` any line passes; the connection closing first fails.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{HostStatus, tcp};
use crate::config::model::SmtpCheck;

/// keepalived's `SMTP_BUFF_MAX`: a line longer than this minus one is
/// dropped while reading.
const BUFF_MAX: usize = 512;

pub(crate) struct Prepared {
    check: SmtpCheck,
}

impl Prepared {
    pub(crate) fn new(check: &SmtpCheck) -> Prepared {
        Prepared {
            check: check.clone(),
        }
    }

    pub(crate) async fn check(&self, host: &str) -> (HostStatus, Option<Duration>) {
        let started = Instant::now();
        match self.converse(host).await {
            Ok(()) => (HostStatus::Ok, Some(started.elapsed())),
            Err(Failure::Timeout) => (HostStatus::Timeout, None),
            Err(Failure::Fail(reason)) => (HostStatus::Fail { reason }, None),
        }
    }

    async fn converse(&self, host: &str) -> Result<(), Failure> {
        let timeout = self.check.timeout;
        let (name, port) = super::split_host_port(host);
        let port = port.unwrap_or(self.check.port);
        let mut stream = step(timeout, async {
            tcp::connect(name, port).await.map_err(Failure::Fail)
        })
        .await?;
        let greeting = read_line(&mut stream, timeout).await?;
        if status(&greeting) != Some(220) {
            return Err(Failure::Fail(format!(
                "bad greeting banner: {}",
                tcp::preview(&greeting)
            )));
        }
        write_line(
            &mut stream,
            &format!("HELO {}\r\n", self.check.helo_name),
            timeout,
        )
        .await?;
        let helo = read_line(&mut stream, timeout).await?;
        if status(&helo) != Some(250) {
            return Err(Failure::Fail(format!(
                "bad HELO response: {}",
                tcp::preview(&helo)
            )));
        }
        write_line(&mut stream, "QUIT\r\n", timeout).await?;
        read_line(&mut stream, timeout).await?;
        Ok(())
    }
}

enum Failure {
    Timeout,
    Fail(String),
}

async fn step<T>(
    timeout: Duration,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(Failure::Timeout))
}

/// One reply line (without its `\n`), read as keepalived reads it.
async fn read_line(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, Failure> {
    let mut buffer: Vec<u8> = Vec::with_capacity(BUFF_MAX);
    let mut chunk = [0u8; BUFF_MAX];
    loop {
        if buffer.len() >= BUFF_MAX - 1 {
            buffer.clear();
        }
        let room = BUFF_MAX - 1 - buffer.len();
        let n = step(timeout, async {
            stream
                .read(&mut chunk[..room])
                .await
                .map_err(|e| Failure::Fail(format!("read: {e}")))
        })
        .await?;
        if n == 0 {
            return Err(Failure::Fail(
                "the server closed the connection".to_string(),
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            buffer.truncate(end);
            return Ok(buffer);
        }
    }
}

async fn write_line(stream: &mut TcpStream, line: &str, timeout: Duration) -> Result<(), Failure> {
    step(timeout, async {
        stream
            .write_all(line.as_bytes())
            .await
            .map_err(|e| Failure::Fail(format!("write: {e}")))
    })
    .await
}

/// A reply's status as keepalived's `smtp_get_status` reads it: `strtoul`
/// over the line (up to a NUL) must take exactly three characters and stop
/// at the end or at a space.
pub(crate) fn status(line: &[u8]) -> Option<u64> {
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut at = 0;
    while at < line.len() && matches!(line[at], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        at += 1;
    }
    let negative = match line.get(at) {
        Some(b'+') => {
            at += 1;
            false
        }
        Some(b'-') => {
            at += 1;
            true
        }
        _ => false,
    };
    let digits_start = at;
    let mut value: u64 = 0;
    while let Some(d) = line.get(at).filter(|b| b.is_ascii_digit()) {
        value = value.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        at += 1;
    }
    if at == digits_start {
        // No digits: strtoul leaves the end pointer at the start.
        return None;
    }
    if at != 3 || !matches!(line.get(at), None | Some(b' ')) {
        return None;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_read_as_keepalived_reads_it() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"220 mail.example ESMTP\r", Some(220)),
            (b"220", Some(220)),
            (b"250 ok", Some(250)),
            (b"220\r", None),
            (b"250-SIZE 1000", None),
            (b"2200 x", None),
            (b" 220 x", None),
            (b"+22 x", Some(22)),
            (b"abc", None),
            (b"", None),
            (b"220\0garbage", Some(220)),
            (b"554 no", Some(554)),
        ];
        for (line, expected) in cases {
            assert_eq!(
                status(line),
                *expected,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
