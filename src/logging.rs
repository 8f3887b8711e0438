//! Where the daemon's logs go: stderr (colours only on a terminal), the systemd journal with structured fields, or syslog with the configured facility; decides nothing about what is logged.
//!
//! The journal gets one datagram per event in journald's native protocol
//! (`systemd.journal-fields(7)`; `KEY=value` lines, or `KEY\n` + a 64-bit
//! little-endian length + the value when it has a newline). Each event field
//! becomes a journal field of the same name in capitals, so
//! `info!(group, service, host, "host down")` can be found with
//! `journalctl GROUP=www SERVICE=http`. Syslog gets one RFC 3164 datagram
//! per event on `/dev/log`, the priority from the level and the facility
//! from the config's `syslog_facility`.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// journald's socket for native messages.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// What the user asked for (`keepmon start --log`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogMode {
    /// The journal when systemd connected stderr to it, else stderr.
    #[default]
    Auto,
    Stderr,
    Journal,
    Syslog,
}

/// Where the logs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Stderr { ansi: bool },
    Journal { socket: PathBuf },
    Syslog { socket: PathBuf, facility: u8 },
}

/// What the process knows about its surroundings when it chooses.
#[derive(Clone, Debug, Default)]
pub struct Surroundings {
    /// stderr is a terminal.
    pub stderr_is_terminal: bool,
    /// `JOURNAL_STREAM` names stderr's device and inode: systemd connected
    /// stderr to the journal.
    pub stderr_is_journal: bool,
    /// Socket paths (overridable for tests).
    pub journal_socket: PathBuf,
    pub syslog_socket: PathBuf,
}

impl Surroundings {
    /// Read them from this process: stderr, `JOURNAL_STREAM`, and the test
    /// overrides `KEEPMON_JOURNAL_SOCKET` / `KEEPMON_SYSLOG_SOCKET`.
    pub fn of_this_process() -> Surroundings {
        let stderr = io::stderr();
        let stderr_is_journal = std::env::var("JOURNAL_STREAM")
            .ok()
            .is_some_and(|v| names_stderr(&v, &stderr));
        Surroundings {
            stderr_is_terminal: io::IsTerminal::is_terminal(&stderr),
            stderr_is_journal,
            journal_socket: std::env::var_os("KEEPMON_JOURNAL_SOCKET")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(JOURNAL_SOCKET)),
            syslog_socket: std::env::var_os("KEEPMON_SYSLOG_SOCKET")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(SYSLOG_SOCKET)),
        }
    }
}

/// Errors choosing a destination.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("unknown syslog facility {0:?}")]
    Facility(String),
}

/// The destination for `mode` (pure).
pub fn choose(
    mode: LogMode,
    facility: &str,
    around: &Surroundings,
) -> Result<Destination, LoggingError> {
    let stderr = Destination::Stderr {
        ansi: around.stderr_is_terminal,
    };
    let journal = Destination::Journal {
        socket: around.journal_socket.clone(),
    };
    Ok(match mode {
        LogMode::Auto if around.stderr_is_journal => journal,
        LogMode::Auto | LogMode::Stderr => stderr,
        LogMode::Journal => journal,
        LogMode::Syslog => Destination::Syslog {
            socket: around.syslog_socket.clone(),
            facility: facility_code(facility)
                .ok_or_else(|| LoggingError::Facility(facility.to_string()))?,
        },
    })
}

/// Install the global subscriber for `destination`, filtered by
/// `KEEPMON_LOG` (default `info`).
pub fn init(destination: &Destination) {
    let filter =
        || EnvFilter::try_from_env("KEEPMON_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    match destination {
        Destination::Stderr { ansi } => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(io::stderr)
            .with_ansi(*ansi)
            .init(),
        Destination::Journal { socket } => tracing_subscriber::registry()
            .with(filter())
            .with(JournalLayer::new(socket))
            .init(),
        Destination::Syslog { socket, facility } => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(SyslogWriter::new(socket, *facility))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .init(),
    }
}

/// Sends each event to journald as one native-protocol datagram; writes it
/// to stderr instead when journald cannot take it.
pub struct JournalLayer {
    socket: Option<UnixDatagram>,
    path: PathBuf,
}

impl JournalLayer {
    pub fn new(path: &Path) -> JournalLayer {
        JournalLayer {
            socket: UnixDatagram::unbound().ok(),
            path: path.to_path_buf(),
        }
    }
}

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = FieldCollector::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut entry = Vec::with_capacity(256);
        let message = fields.message.unwrap_or_default();
        let mut message_line = message.clone();
        for (name, value) in &fields.fields {
            let _ = write!(message_line, " {}={value}", name.to_ascii_lowercase());
        }
        append_field(&mut entry, "MESSAGE", &message_line);
        append_field(
            &mut entry,
            "PRIORITY",
            priority(meta.level()).to_string().as_str(),
        );
        append_field(&mut entry, "SYSLOG_IDENTIFIER", "keepmon");
        append_field(&mut entry, "TARGET", meta.target());
        if let Some(file) = meta.file() {
            append_field(&mut entry, "CODE_FILE", file);
        }
        if let Some(line) = meta.line() {
            append_field(&mut entry, "CODE_LINE", &line.to_string());
        }
        for (name, value) in &fields.fields {
            append_field(&mut entry, name, value);
        }
        let sent = self
            .socket
            .as_ref()
            .is_some_and(|s| s.send_to(&entry, &self.path).is_ok());
        if !sent {
            let _ = writeln!(io::stderr(), "{} {message_line}", meta.level());
        }
    }
}

/// Append one field in journald's native format.
pub fn append_field(entry: &mut Vec<u8>, name: &str, value: &str) {
    if value.contains('\n') {
        entry.extend_from_slice(name.as_bytes());
        entry.push(b'\n');
        entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
        entry.extend_from_slice(value.as_bytes());
        entry.push(b'\n');
    } else {
        entry.extend_from_slice(name.as_bytes());
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        entry.push(b'\n');
    }
}

/// A tracing field name as a journal field name: capitals, digits and `_`,
/// not starting with `_` or a digit (those are journald's own).
pub fn journal_name(field: &str) -> String {
    let mut name: String = field
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        name.insert(0, 'F');
    }
    // Names of fields keepmon sets itself stay keepmon's.
    if matches!(
        name.as_str(),
        "MESSAGE" | "PRIORITY" | "SYSLOG_IDENTIFIER" | "TARGET" | "CODE_FILE" | "CODE_LINE"
    ) {
        name.insert_str(0, "F_");
    }
    name
}

/// syslog's priority number for a tracing level.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// syslog's facility code for a name (mon's and keepalived's names; a
/// single digit 0-7 is keepalived's `-S` shorthand for local0-local7).
pub fn facility_code(name: &str) -> Option<u8> {
    if let Ok(digit) = name.parse::<u8>() {
        return (digit <= 7).then_some(16 + digit);
    }
    const NAMES: [(&str, u8); 20] = [
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, code)| *code)
}

/// An RFC 3164 line for syslog (without a timestamp: the local syslog daemon
/// stamps what arrives on `/dev/log`).
pub fn syslog_line(facility: u8, level: &Level, pid: u32, text: &str) -> String {
    let pri = u16::from(facility) * 8 + u16::from(priority(level));
    format!("<{pri}>keepmon[{pid}]: {}", text.trim())
}

/// `tracing_subscriber::fmt`'s writer for syslog: one datagram per event.
pub struct SyslogWriter {
    socket: Option<UnixDatagram>,
    path: PathBuf,
    facility: u8,
}

impl SyslogWriter {
    pub fn new(path: &Path, facility: u8) -> SyslogWriter {
        SyslogWriter {
            socket: UnixDatagram::unbound().ok(),
            path: path.to_path_buf(),
            facility,
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogEvent<'a>;

    fn make_writer(&'a self) -> SyslogEvent<'a> {
        SyslogEvent {
            to: self,
            level: Level::INFO,
            text: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogEvent<'a> {
        SyslogEvent {
            to: self,
            level: *meta.level(),
            text: Vec::new(),
        }
    }
}

/// One event's text, sent when the formatter is done with it.
pub struct SyslogEvent<'a> {
    to: &'a SyslogWriter,
    level: Level,
    text: Vec<u8>,
}

impl Write for SyslogEvent<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogEvent<'_> {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.text);
        let line = syslog_line(self.to.facility, &self.level, std::process::id(), &text);
        let sent = self
            .to
            .socket
            .as_ref()
            .is_some_and(|s| s.send_to(line.as_bytes(), &self.to.path).is_ok());
        if !sent {
            let _ = io::stderr().write_all(&self.text);
        }
    }
}

/// An event's message and its other fields as journal names and text.
#[derive(Default)]
struct FieldCollector {
    message: Option<String>,
    fields: Vec<(String, String)>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl FieldCollector {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.push((journal_name(field.name()), value));
        }
    }
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) names `stderr`.
fn names_stderr(value: &str, stderr: &io::Stderr) -> bool {
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(stderr) {
        Ok(stat) => stat.st_dev == dev && stat.st_ino == ino,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn around() -> Surroundings {
        Surroundings {
            stderr_is_terminal: false,
            stderr_is_journal: false,
            journal_socket: PathBuf::from("/j"),
            syslog_socket: PathBuf::from("/s"),
        }
    }

    #[test]
    fn auto_picks_the_journal_only_when_systemd_connected_stderr_to_it() {
        let journal = Destination::Journal {
            socket: PathBuf::from("/j"),
        };
        let mut a = around();
        assert_eq!(
            choose(LogMode::Auto, "daemon", &a).unwrap(),
            Destination::Stderr { ansi: false }
        );
        a.stderr_is_terminal = true;
        assert_eq!(
            choose(LogMode::Auto, "daemon", &a).unwrap(),
            Destination::Stderr { ansi: true }
        );
        a.stderr_is_journal = true;
        assert_eq!(choose(LogMode::Auto, "daemon", &a).unwrap(), journal);
        assert_eq!(
            choose(LogMode::Stderr, "daemon", &a).unwrap(),
            Destination::Stderr { ansi: true }
        );
        assert_eq!(
            choose(LogMode::Syslog, "LOCAL3", &a).unwrap(),
            Destination::Syslog {
                socket: PathBuf::from("/s"),
                facility: 19
            }
        );
        assert!(choose(LogMode::Syslog, "local9", &a).is_err());
        assert_eq!(facility_code("3"), Some(19));
        assert_eq!(facility_code("8"), None);
    }

    #[test]
    fn journal_fields_use_the_native_format() {
        let mut entry = Vec::new();
        append_field(&mut entry, "SERVICE", "http");
        append_field(&mut entry, "MESSAGE", "two\nlines");
        let mut expected = b"SERVICE=http\nMESSAGE\n".to_vec();
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.extend_from_slice(b"two\nlines\n");
        assert_eq!(entry, expected);
    }

    #[test]
    fn field_names_become_journal_names() {
        let check = |field: &str, expected: &str| assert_eq!(journal_name(field), expected);
        check("service", "SERVICE");
        check("vrrp.instance", "VRRP_INSTANCE");
        check("_private", "F_PRIVATE");
        check("2nd", "F2ND");
        check("message_id", "MESSAGE_ID");
        check("priority", "F_PRIORITY");
    }

    #[test]
    fn syslog_lines_carry_facility_and_level() {
        assert_eq!(
            syslog_line(3, &Level::WARN, 42, "host down group=www\n"),
            "<28>keepmon[42]: host down group=www"
        );
        assert_eq!(
            syslog_line(facility_code("local0").unwrap(), &Level::ERROR, 1, "x"),
            "<131>keepmon[1]: x"
        );
    }

    #[test]
    fn an_event_reaches_the_journal_socket_with_its_fields() {
        let dir = std::env::temp_dir().join(format!("keepmon-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.sock");
        std::fs::remove_file(&path).ok();
        let listener = UnixDatagram::bind(&path).unwrap();
        let subscriber = tracing_subscriber::registry().with(JournalLayer::new(&path));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                group = "www",
                service = "http",
                host = "10.0.0.1",
                "host down"
            );
        });
        let mut buf = vec![0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        for line in [
            "MESSAGE=host down group=www service=http host=10.0.0.1",
            "PRIORITY=4",
            "SYSLOG_IDENTIFIER=keepmon",
            "GROUP=www",
            "SERVICE=http",
            "HOST=10.0.0.1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text:?}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_event_reaches_syslog_as_one_plain_line() {
        let dir = std::env::temp_dir().join(format!("keepmon-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        std::fs::remove_file(&path).ok();
        let listener = UnixDatagram::bind(&path).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(SyslogWriter::new(&path, 16))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(instance = "VI_1", "vrrp instance cannot start");
        });
        let mut buf = vec![0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        let pid = std::process::id();
        assert_eq!(
            text,
            format!("<131>keepmon[{pid}]: ERROR vrrp instance cannot start instance=\"VI_1\"")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
