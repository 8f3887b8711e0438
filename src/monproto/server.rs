//! The mon protocol's TCP listener and UDP trap receiver: one task per connection, bounded lines, idle timeout, `clientallow`, auth; state questions go to the supervisor as [`MonCall`]s over their own channel.
//!
//! A connection never blocks the daemon: its task reads one bounded line,
//! asks the supervisor (which answers through a oneshot and moves on), and
//! writes the reply to its own socket with a deadline. A client that never
//! reads fills only its own socket buffer; its task then stops reading, so
//! it holds at most one reply in memory, and is closed after `cltimeout`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use regex::Regex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::auth::{self, AuthFile, LoginCheck};
use super::throttle::{LoginThrottle, Policy};
use super::trap;
use super::{Command, MAX_LINE, PROTOCOL_VERSION, Reply};
use crate::config::model::{AuthType, Settings};
use crate::monproto::trap::Trap;
use crate::ratelimit::{ConnectionLimits, LogLimit, TokenBucket};

/// The mon port's client counters, for the metrics page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Connections open now.
    pub connections: u64,
    /// Connections admitted since start.
    pub connections_total: u64,
    /// Connections refused by the caps (in all, per client address).
    pub refused_total: u64,
    /// Command lines answered.
    pub commands_total: u64,
    /// Failed logins.
    pub login_failures_total: u64,
}

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_TOTAL: AtomicU64 = AtomicU64::new(0);
static REFUSED_TOTAL: AtomicU64 = AtomicU64::new(0);
static COMMANDS_TOTAL: AtomicU64 = AtomicU64::new(0);
static LOGIN_FAILURES_TOTAL: AtomicU64 = AtomicU64::new(0);

/// The counters now (one listener per daemon, so process-wide counters).
pub fn client_stats() -> ClientStats {
    ClientStats {
        connections: CONNECTIONS.load(Ordering::Relaxed),
        connections_total: CONNECTIONS_TOTAL.load(Ordering::Relaxed),
        refused_total: REFUSED_TOTAL.load(Ordering::Relaxed),
        commands_total: COMMANDS_TOTAL.load(Ordering::Relaxed),
        login_failures_total: LOGIN_FAILURES_TOTAL.load(Ordering::Relaxed),
    }
}

/// What the mon listener asks the supervisor. Only this listener builds
/// these, after its own authorization: the control socket's wire type
/// cannot carry them.
#[derive(Debug)]
pub enum MonCall {
    /// A client command (authorized by auth.cf for this session's user).
    Command {
        command: Command,
        user: Option<String>,
        view: Option<String>,
        reply: oneshot::Sender<Reply>,
    },
    /// A trap (authorized by auth.cf's trap section).
    Trap { trap: Trap, from: String },
    /// mon's `term`: stop the daemon.
    Terminate,
}

/// Connections served at once, well below the usual 1,024 descriptors;
/// more are closed at accept.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections served at once from one client address.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 32;

/// How long a connection waits for the supervisor's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Failed logins one connection may make before it is closed.
pub const MAX_LOGIN_FAILURES_PER_CONNECTION: u32 = 3;

/// Refused logins and traps are logged at WARN at most once per this
/// period per kind, with the number suppressed in between.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Trap password checks per second (and burst): a hash costs up to a few
/// milliseconds of CPU (bcrypt far more), and traps are spoofable UDP.
pub const TRAP_CHECKS_PER_SECOND: u32 = 50;
const TRAP_CHECK_BURST: u32 = 100;

/// What the listener needs from the config.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    /// Full-match patterns on the client address; empty = anyone.
    pub clientallow: Vec<Regex>,
    pub cltimeout: Duration,
    pub authfile: PathBuf,
    pub userfile: PathBuf,
    pub authtypes: Vec<AuthType>,
}

impl ServerSettings {
    /// The listener the config asks for, if any. `clientallow` patterns
    /// match the whole address, as in mon.
    pub fn from_settings(s: &Settings) -> Option<Result<ServerSettings, String>> {
        let addr = s.mon_listener?;
        let clientallow = s
            .clientallow
            .iter()
            .map(|p| {
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("bad clientallow pattern \"{p}\": {e}"))
            })
            .collect::<Result<Vec<_>, _>>();
        Some(clientallow.map(|clientallow| ServerSettings {
            addr,
            clientallow,
            cltimeout: s.cltimeout,
            authfile: s.auth.authfile.clone(),
            userfile: s.auth.userfile.clone(),
            authtypes: s.auth.authtype.clone(),
        }))
    }

    /// Whether a client from `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let text = ip.to_canonical().to_string();
        self.clientallow.is_empty() || self.clientallow.iter().any(|r| r.is_match(&text))
    }
}

/// Read auth.cf; a missing or unreadable file denies every command that needs auth.
pub fn load_auth(settings: &ServerSettings) -> AuthFile {
    match std::fs::read_to_string(&settings.authfile) {
        Ok(text) => {
            let (auth, problems) = AuthFile::parse(&text);
            for problem in problems {
                tracing::warn!(authfile = %settings.authfile.display(), "{problem}");
            }
            auth
        }
        Err(e) => {
            tracing::warn!(authfile = %settings.authfile.display(), error = %e, "cannot read auth file; mon protocol commands that need auth are denied");
            AuthFile::default()
        }
    }
}

/// auth.cf as the TCP and trap listeners share it (`reload auth` swaps it).
pub type SharedAuth = Arc<ArcSwap<AuthFile>>;

/// Accept connections until `shutdown`; each gets its own task.
pub async fn serve(
    listener: TcpListener,
    settings: ServerSettings,
    auth: SharedAuth,
    calls: mpsc::Sender<MonCall>,
    shutdown: CancellationToken,
) {
    let shared = Arc::new(Shared {
        auth,
        settings,
        throttle: std::sync::Mutex::new(LoginThrottle::new(Policy::default())),
        logs: std::sync::Mutex::new(LogLimit::new(LOG_EVERY)),
    });
    let limits = ConnectionLimits::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "mon protocol accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if !shared.settings.allows(peer.ip()) {
            tracing::info!(client = %peer, "closing unwanted client (clientallow)");
            continue;
        }
        let permit = match limits.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                REFUSED_TOTAL.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(client = %peer, %refused, "mon protocol client refused");
                if let Some(suppressed) = shared.log_allowed("refused") {
                    tracing::warn!(client = %peer, %refused, suppressed, "mon protocol client refused");
                }
                continue;
            }
        };
        let shared = shared.clone();
        let calls = calls.clone();
        let shutdown = shutdown.clone();
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        CONNECTIONS_TOTAL.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection(stream, peer, &shared, &calls, &shutdown).await {
                tracing::debug!(client = %peer, error = %e, "mon protocol connection ended");
            }
            CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

struct Shared {
    settings: ServerSettings,
    auth: SharedAuth,
    /// Held only for a map lookup, never across an await.
    throttle: std::sync::Mutex<LoginThrottle>,
    logs: std::sync::Mutex<LogLimit>,
}

impl Shared {
    /// `Some(suppressed)` when a WARN line of `kind` may be written now.
    fn log_allowed(&self, kind: &'static str) -> Option<u64> {
        // A poisoned lock only means a panic elsewhere: keep logging.
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.allow_counting(kind, tokio::time::Instant::now())
    }
}

/// Receive traps until `shutdown`: each authorized trap goes to the
/// supervisor, which applies it like a monitor result. Bad or refused
/// traps are logged and dropped (UDP has no reply).
pub async fn serve_traps(
    socket: UdpSocket,
    auth: SharedAuth,
    calls: mpsc::Sender<MonCall>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; trap::MAX_TRAP];
    let mut checks = TokenBucket::new(TRAP_CHECKS_PER_SECOND, TRAP_CHECK_BURST);
    let mut logs = LogLimit::new(LOG_EVERY);
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            got = socket.recv_from(&mut buf) => match got {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "trap receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let checked = match trap::parse(&buf[..n]) {
            Err(reason) => Err(reason),
            Ok(trap) => match trap::rule_for(&auth.load(), from.ip(), &trap) {
                Err(reason) => Err(reason),
                Ok(None) => Ok(trap),
                Ok(Some(hash)) => {
                    if checks.take(tokio::time::Instant::now()) {
                        // Hashes are slow on purpose: off the async workers,
                        // one at a time (this loop waits for each).
                        let password = trap.password.clone();
                        let good = tokio::task::spawn_blocking(move || {
                            auth::verify_password(&password, &hash)
                        })
                        .await
                        .unwrap_or(false);
                        if good {
                            Ok(trap)
                        } else {
                            Err(trap::bad_password(&trap, from.ip()))
                        }
                    } else {
                        Err(format!(
                            "trap password checks over {TRAP_CHECKS_PER_SECOND}/s; dropped (user {}, host {})",
                            trap.user,
                            from.ip().to_canonical()
                        ))
                    }
                }
            },
        };
        match checked {
            Err(reason) => {
                tracing::debug!(from = %from, reason, "trap refused");
                if let Some(suppressed) = logs.allow_counting("trap", tokio::time::Instant::now()) {
                    tracing::warn!(from = %from, reason, suppressed, "trap refused");
                }
            }
            Ok(trap) => {
                let call = MonCall::Trap {
                    trap,
                    from: from.ip().to_canonical().to_string(),
                };
                if calls.send(call).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One client's login and view.
struct Session {
    peer: SocketAddr,
    user: Option<String>,
    view: Option<String>,
    login_failures: u32,
}

enum After {
    Continue,
    Close,
    Terminate,
}

enum Line {
    Complete,
    Eof,
    TooLong,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    calls: &mpsc::Sender<MonCall>,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    stream.set_nodelay(true).ok();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut session = Session {
        peer,
        user: None,
        view: None,
        login_failures: 0,
    };
    let timeout = shared.settings.cltimeout;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            read = tokio::time::timeout(timeout, read_line(&mut reader, &mut line)) => read,
        };
        let (reply, after) = match read {
            Err(_) => {
                tracing::debug!(client = %peer, "idle mon protocol client timed out");
                return Ok(());
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Line::Eof)) => return Ok(()),
            Ok(Ok(Line::TooLong)) => (
                Reply::fail(format!("line too long (limit {MAX_LINE} bytes)")),
                After::Close,
            ),
            Ok(Ok(Line::Complete)) => {
                COMMANDS_TOTAL.fetch_add(1, Ordering::Relaxed);
                handle(&line, &mut session, shared, calls).await
            }
        };
        let bytes = reply.render();
        match tokio::time::timeout(timeout, write.write_all(bytes.as_bytes())).await {
            Ok(result) => result?,
            Err(_) => {
                tracing::info!(client = %peer, "mon protocol client does not read its replies; closing");
                return Ok(());
            }
        }
        match after {
            After::Continue => {}
            After::Close => return write.shutdown().await,
            After::Terminate => {
                write.shutdown().await.ok();
                calls.send(MonCall::Terminate).await.ok();
                return Ok(());
            }
        }
    }
}

/// Read up to a newline, at most `MAX_LINE` bytes; the line end is stripped.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> io::Result<Line> {
    let n = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', line)
        .await?;
    if line.last() == Some(&b'\n') {
        line.pop();
        while line.last() == Some(&b'\r') {
            line.pop();
        }
        return Ok(Line::Complete);
    }
    if n > MAX_LINE {
        Ok(Line::TooLong)
    } else {
        Ok(Line::Eof)
    }
}

async fn handle(
    line: &[u8],
    session: &mut Session,
    shared: &Shared,
    calls: &mpsc::Sender<MonCall>,
) -> (Reply, After) {
    let parsed = match super::parse(line) {
        Ok(p) => p,
        Err(reply) => return (reply, After::Continue),
    };
    if line.len() < 512 && !parsed.verb.eq("login") {
        tracing::debug!(client = %session.peer, line = %String::from_utf8_lossy(line), "mon client command");
    }
    let auth = shared.auth.load();
    if parsed.needs_auth() && !auth.allows(session.user.as_deref(), parsed.verb) {
        tracing::info!(client = %session.peer, user = session.user.as_deref().unwrap_or(""), command = parsed.verb, "mon command denied");
        return (
            Reply::fail("command could not be executed, unknown command"),
            After::Continue,
        );
    }
    let command = match parsed.command {
        Ok(c) => c,
        Err(reply) => return (reply, After::Continue),
    };
    let reply = match command {
        Command::Quit => return (Reply::ok("quitting"), After::Close),
        Command::Term => return (Reply::ok("terminating server"), After::Terminate),
        Command::Protid { version } => {
            if version.trim().parse::<u32>() == Ok(PROTOCOL_VERSION) {
                Reply::ok("protocol match")
            } else {
                Reply::fail("protocol mismatch")
            }
        }
        Command::Version => {
            Reply::ok("version completed").with_lines(vec![format!("version {PROTOCOL_VERSION}")])
        }
        Command::Login { user, password } => {
            let client = session.peer.ip();
            let attempt = shared
                .throttle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .attempt(client, &user, tokio::time::Instant::now());
            let (reply, why) = match attempt {
                Err(wait) => (
                    Reply::status(
                        530,
                        format!(
                            "login unsuccessful (too many failed logins; try again in {} s)",
                            wait.as_secs().max(1)
                        ),
                    ),
                    "mon login throttled",
                ),
                Ok(()) => {
                    if login(shared, client, &user, &password).await {
                        shared
                            .throttle
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .succeeded(client, &user);
                        tracing::info!(client = %session.peer, user, "authenticated");
                        session.user = Some(user);
                        return (Reply::ok("login accepted"), After::Continue);
                    }
                    (Reply::status(530, "login unsuccessful"), "mon login failed")
                }
            };
            session.login_failures += 1;
            LOGIN_FAILURES_TOTAL.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = %session.peer, user, "{why}");
            if let Some(suppressed) = shared.log_allowed("login") {
                tracing::warn!(client = %session.peer, user, suppressed, "{why}");
            }
            if session.login_failures >= MAX_LOGIN_FAILURES_PER_CONNECTION {
                return (reply, After::Close);
            }
            reply
        }
        Command::CheckAuth { command } => {
            if auth.allows(session.user.as_deref(), &command) {
                Reply::ok("command authorized")
            } else {
                Reply::fail("command could not be executed")
            }
        }
        Command::GetView => Reply::ok("getview completed").with_lines(vec![match &session.view {
            Some(v) => format!("view {v} selected"),
            None => "no view selected -- all groups will be displayed".to_string(),
        }]),
        Command::SetView { view: None } => {
            session.view = None;
            Reply::ok("setview completed").with_lines(vec![
                "no view selected -- all groups will be displayed".to_string(),
            ])
        }
        Command::ReloadAuth => {
            shared.auth.store(Arc::new(load_auth(&shared.settings)));
            Reply::ok("reload completed")
        }
        command => {
            let set_view = match &command {
                Command::SetView { view } => view.clone(),
                _ => None,
            };
            let reply = ask(calls, command, session).await;
            if set_view.is_some() && reply.is_ok() {
                session.view = set_view;
            }
            reply
        }
    };
    (reply, After::Continue)
}

/// Hand a command to the supervisor and wait (bounded) for its reply.
async fn ask(calls: &mpsc::Sender<MonCall>, command: Command, session: &Session) -> Reply {
    let (tx, rx) = oneshot::channel();
    let call = MonCall::Command {
        command,
        user: session.user.clone(),
        view: session.view.clone(),
        reply: tx,
    };
    if calls.send(call).await.is_err() {
        return Reply::fail("the daemon is shutting down");
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => Reply::fail("the daemon dropped the request"),
        Err(_) => Reply::fail("the daemon did not answer in time"),
    }
}

/// Check a login against the configured auth types. File reads and hash
/// checks (bcrypt is slow on purpose) run off the async workers.
async fn login(shared: &Shared, client: IpAddr, user: &str, password: &str) -> bool {
    let settings = shared.settings.clone();
    let (user, password) = (user.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        let userfile = settings
            .authtypes
            .contains(&AuthType::Userfile)
            .then(|| std::fs::read_to_string(&settings.userfile).ok())
            .flatten();
        let shadow = settings
            .authtypes
            .iter()
            .any(|t| matches!(t, AuthType::Getpwnam | AuthType::Shadow))
            .then(|| std::fs::read_to_string("/etc/shadow").ok())
            .flatten();
        auth::login_ok(
            &LoginCheck {
                authtypes: &settings.authtypes,
                userfile: userfile.as_deref(),
                shadow: shadow.as_deref(),
                client,
            },
            &user,
            &password,
        )
    })
    .await
    .unwrap_or(false)
}
