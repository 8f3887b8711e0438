//! The Alertmanager worker and its queue handle: a change is written to the queue (atomically) and handed to a task that posts the queued changes to each Alertmanager in order, re-sends firing alerts, backs off while one is unreachable and reads its silences; the event loop never waits for HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alertmanager::queue::{Entry, Queue};
use crate::alertmanager::{self, Change, FiringSet, Target};
use crate::control::proto::{AlertmanagerDump, SilenceDump};
use crate::mail::outbox::{RetryPolicy, backoff, new_id};
use crate::state;
use crate::wallclock::{unix_nanos, unix_now};

/// How long one HTTP exchange with Alertmanager may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of an unreachable Alertmanager: 1 s, doubling, at most 15 s.
const RETRY: RetryPolicy = RetryPolicy {
    initial: Duration::from_secs(1),
    max_delay: Duration::from_secs(15),
    max_age: Duration::MAX,
};

/// The event loop's handle on the queue and its worker.
pub struct AlertmanagerQueue {
    queue: Queue,
    seq: u64,
    queued: mpsc::UnboundedSender<Message>,
    /// Where changes are written (on the state writer's thread).
    disk: state::Ordered,
    status: watch::Receiver<Vec<AlertmanagerDump>>,
}

/// What the handle tells the worker.
enum Message {
    /// A change written to the queue.
    Queued(Entry),
    /// The (URL, `group/service`) pairs the config still sends alerts for;
    /// a firing alert outside them is resolved (its service or its action
    /// went away in a reload, or while keepmon was stopped).
    Configured(BTreeSet<(String, String)>),
}

/// What one queued change says.
pub struct Queued {
    pub url: String,
    /// `group/service`.
    pub scope: String,
    pub change: Change,
    pub resend: Duration,
    /// time(2) now.
    pub created: i64,
}

impl AlertmanagerQueue {
    /// Start the worker on `tracker`. Changes and firing alerts left by an
    /// earlier run are loaded before this returns, so they go first.
    pub fn start(
        statedir: &Path,
        disk: state::Ordered,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> AlertmanagerQueue {
        let queue = Queue::new(statedir);
        let (queued_tx, queued_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(Vec::new());
        let mut worker = Worker {
            queue: queue.clone(),
            pending: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            status: status_tx,
        };
        worker.load();
        tracker.spawn(worker.run(queued_rx, shutdown));
        AlertmanagerQueue {
            queue,
            seq: 0,
            queued: queued_tx,
            disk,
            status: status_rx,
        }
    }

    /// Write one change to the queue and hand it to the worker; returns
    /// its id. The write runs on the state writer's thread, before any
    /// state save sent after this call, and the worker gets the change
    /// once it is written. A change that cannot be written is still posted
    /// from memory.
    pub fn queue(&mut self, queued: Queued) -> String {
        self.seq += 1;
        let entry = Entry {
            id: new_id(unix_nanos(), std::process::id(), self.seq),
            created: queued.created,
            url: queued.url,
            scope: queued.scope,
            change: queued.change,
            resend_secs: queued.resend.as_secs().max(1),
            attempts: 0,
        };
        let id = entry.id.clone();
        let queue = self.queue.clone();
        let queued = self.queued.clone();
        self.disk.run(move || {
            if let Err(e) = queue.store(&entry) {
                tracing::error!(
                    id = %entry.id,
                    dir = %queue.dir().display(),
                    error = %e,
                    "cannot write the alertmanager queue; this alert is held in memory only"
                );
            }
            let _ = queued.send(Message::Queued(entry));
        });
        id
    }

    /// The pairs of Alertmanager URL and `group/service` the config sends
    /// alerts for; firing alerts of any other pair are resolved.
    pub fn configured(&self, pairs: BTreeSet<(String, String)>) {
        // Through the writer too, so it reaches the worker after every
        // change queued before it.
        let queued = self.queued.clone();
        self.disk.run(move || {
            let _ = queued.send(Message::Configured(pairs));
        });
    }

    /// What `dump` shows.
    pub fn status(&self) -> Vec<AlertmanagerDump> {
        self.status.borrow().clone()
    }
}

/// One Alertmanager as the worker sees it.
struct Endpoint {
    target: Result<Target, String>,
    firing: FiringSet,
    /// Nothing is posted before this after a failure.
    retry_at: Option<Instant>,
    failures: u32,
    /// The next re-send of the firing alerts.
    next_resend: Instant,
    delivered: u64,
    last_error: Option<String>,
    silences: Vec<SilenceDump>,
}

impl Endpoint {
    fn new(url: &str, firing: FiringSet) -> Endpoint {
        Endpoint {
            target: Target::parse(url),
            firing,
            retry_at: None,
            failures: 0,
            next_resend: Instant::now(),
            delivered: 0,
            last_error: None,
            silences: Vec::new(),
        }
    }

    fn failed(&mut self, url: &str, message: String) {
        self.failures += 1;
        let delay = backoff(&RETRY, self.failures, fastrand::f64());
        if self.last_error.as_deref() != Some(&message) {
            tracing::warn!(url, error = %message, retry_in_secs = delay.as_secs_f64(), "alertmanager unreachable; alerts wait in the queue");
        }
        self.retry_at = Some(Instant::now() + delay);
        self.last_error = Some(message);
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
        self.delivered += 1;
        let every = alertmanager::resend_interval(&self.firing).unwrap_or(60);
        self.next_resend = Instant::now() + Duration::from_secs(every);
    }
}

/// What [`Worker::post_queued`] did for one Alertmanager.
struct Drained {
    /// At least one change was accepted.
    posted: bool,
    /// Nothing is left queued for it.
    empty: bool,
}

/// Why a post did not go through.
enum PostError {
    /// Unreachable, timed out, or a 5xx/429: try again later, in order.
    Retry(String),
    /// A 4xx: this change will never be accepted.
    Refused(String),
}

/// The task: owns the queued changes and the Alertmanagers' firing sets.
struct Worker {
    queue: Queue,
    pending: BTreeMap<String, Entry>,
    endpoints: BTreeMap<String, Endpoint>,
    status: watch::Sender<Vec<AlertmanagerDump>>,
}

impl Worker {
    fn load(&mut self) {
        match self.queue.load() {
            Ok(loaded) => {
                for path in loaded.unreadable {
                    tracing::warn!(moved_to = %path, "unreadable alertmanager queue file moved aside");
                }
                if !loaded.pending.is_empty() {
                    tracing::info!(
                        pending = loaded.pending.len(),
                        "alertmanager queue from an earlier run"
                    );
                }
                for (url, firing) in loaded.firing {
                    self.endpoints
                        .insert(url.clone(), Endpoint::new(&url, firing));
                }
                for entry in loaded.pending {
                    self.accept(entry);
                }
            }
            Err(e) => tracing::error!(
                dir = %self.queue.dir().display(),
                error = %e,
                "cannot read the alertmanager queue"
            ),
        }
    }

    async fn run(
        mut self,
        mut queued: mpsc::UnboundedReceiver<Message>,
        shutdown: CancellationToken,
    ) {
        loop {
            self.publish();
            let wake = self.next_wake();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(message) = queued.recv() => match message {
                    Message::Queued(entry) => self.accept(entry),
                    Message::Configured(pairs) => self.resolve_unconfigured(&pairs),
                },
                _ = sleep_until_opt(wake) => self.round(&shutdown).await,
            }
        }
        if !self.pending.is_empty() {
            tracing::info!(
                pending = self.pending.len(),
                "alertmanager queue kept for the next start"
            );
        }
    }

    fn accept(&mut self, entry: Entry) {
        self.endpoints
            .entry(entry.url.clone())
            .or_insert_with(|| Endpoint::new(&entry.url, FiringSet::new()));
        self.pending.insert(entry.id.clone(), entry);
    }

    /// Queue a resolve for every firing scope no longer configured (once:
    /// not when one is already queued for it).
    fn resolve_unconfigured(&mut self, pairs: &BTreeSet<(String, String)>) {
        let mut stale: BTreeSet<(String, String)> = BTreeSet::new();
        for (url, ep) in &self.endpoints {
            for firing in ep.firing.values() {
                let pair = (url.clone(), firing.scope.clone());
                let queued = self.pending.values().any(|e| {
                    e.url == pair.0
                        && e.scope == pair.1
                        && matches!(e.change, Change::Resolve { .. })
                });
                if !pairs.contains(&pair) && !queued {
                    stale.insert(pair);
                }
            }
        }
        for (seq, (url, scope)) in stale.into_iter().enumerate() {
            tracing::info!(
                url,
                scope,
                "alert no longer configured; resolving it in alertmanager"
            );
            let entry = Entry {
                id: new_id(unix_nanos(), std::process::id(), 1_000_000 + seq as u64),
                created: unix_now(),
                url,
                scope,
                change: Change::Resolve { at: unix_now() },
                resend_secs: 60,
                attempts: 0,
            };
            if let Err(e) = self.queue.store(&entry) {
                tracing::warn!(id = %entry.id, error = %e, "cannot write the alertmanager queue");
            }
            self.accept(entry);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let now = Instant::now();
        self.endpoints
            .iter()
            .filter_map(|(url, ep)| {
                if self.pending.values().any(|e| &e.url == url) {
                    Some(ep.retry_at.unwrap_or(now))
                } else if !ep.firing.is_empty() {
                    Some(ep.next_resend.max(ep.retry_at.unwrap_or(now)))
                } else {
                    None
                }
            })
            .min()
    }

    /// For each Alertmanager not backing off: post its queued changes in
    /// order, then re-send the firing alerts when due, then read silences.
    async fn round(&mut self, shutdown: &CancellationToken) {
        let urls: Vec<String> = self.endpoints.keys().cloned().collect();
        for url in urls {
            if shutdown.is_cancelled() {
                break;
            }
            let now = Instant::now();
            let Some(ep) = self.endpoints.get(&url) else {
                continue;
            };
            if ep.retry_at.is_some_and(|r| r > now) {
                continue;
            }
            let drained = self.post_queued(&url, shutdown).await;
            let mut posted = drained.posted;
            if !drained.empty {
                continue;
            }
            let Some(ep) = self.endpoints.get_mut(&url) else {
                continue;
            };
            if !ep.firing.is_empty() && ep.next_resend <= Instant::now() {
                let posts = alertmanager::resend(&ep.firing, unix_now());
                let result = match &ep.target {
                    Ok(target) => post_alerts(target, &alertmanager::body(&posts)).await,
                    Err(e) => Err(PostError::Refused(e.clone())),
                };
                match result {
                    Ok(()) => {
                        ep.succeeded();
                        posted = true;
                        tracing::debug!(url, alerts = posts.len(), "alerts re-sent");
                    }
                    Err(PostError::Retry(m) | PostError::Refused(m)) => ep.failed(&url, m),
                }
            }
            if posted {
                self.read_silences(&url).await;
            }
        }
    }

    /// Post `url`'s queued changes, oldest first, until one fails.
    async fn post_queued(&mut self, url: &str, shutdown: &CancellationToken) -> Drained {
        let ids: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, e)| e.url == url)
            .map(|(id, _)| id.clone())
            .collect();
        let mut posted = false;
        for id in ids {
            if shutdown.is_cancelled() {
                return Drained {
                    posted,
                    empty: false,
                };
            }
            let (Some(entry), Some(ep)) = (self.pending.get(&id), self.endpoints.get(url)) else {
                continue;
            };
            let (posts, next) = alertmanager::step(
                &ep.firing,
                &entry.scope,
                &entry.change,
                entry.resend_secs,
                unix_now(),
            );
            let result = match (&ep.target, posts.is_empty()) {
                (_, true) => Ok(()),
                (Ok(target), false) => post_alerts(target, &alertmanager::body(&posts)).await,
                (Err(e), false) => Err(PostError::Refused(e.clone())),
            };
            match result {
                Ok(()) => {
                    if let Some(ep) = self.endpoints.get_mut(url) {
                        ep.firing = next;
                        ep.succeeded();
                    }
                    let firing: BTreeMap<String, FiringSet> = self
                        .endpoints
                        .iter()
                        .map(|(u, e)| (u.clone(), e.firing.clone()))
                        .collect();
                    if let Err(e) = self.queue.save_firing(&firing) {
                        tracing::error!(error = %e, "cannot save the firing alertmanager alerts");
                    }
                    if let Err(e) = self.queue.remove(&id) {
                        tracing::error!(id, error = %e, "alert posted but its queue file stays; it will be posted again at the next start");
                    }
                    if let Some(entry) = self.pending.remove(&id) {
                        tracing::info!(id, url, scope = %entry.scope, alerts = posts.len(), attempts = entry.attempts + 1, "alert posted to alertmanager");
                    }
                    posted = true;
                }
                Err(PostError::Refused(message)) => {
                    tracing::error!(id, url, error = %message, "alertmanager refused an alert; kept in statedir/alertmanager/refused");
                    if let Some(entry) = self.pending.remove(&id)
                        && let Err(e) = self.queue.refuse(&entry)
                    {
                        tracing::error!(id, error = %e, "cannot move the refused alert aside");
                    }
                    if let Some(ep) = self.endpoints.get_mut(url) {
                        ep.last_error = Some(message);
                    }
                }
                Err(PostError::Retry(message)) => {
                    if let Some(entry) = self.pending.get_mut(&id) {
                        entry.attempts += 1;
                        if let Err(e) = self.queue.store(entry) {
                            tracing::warn!(id, error = %e, "cannot update the queue entry");
                        }
                    }
                    if let Some(ep) = self.endpoints.get_mut(url) {
                        ep.failed(url, message);
                    }
                    return Drained {
                        posted,
                        empty: false,
                    };
                }
            }
        }
        Drained {
            posted,
            empty: true,
        }
    }

    /// Read the Alertmanager's silences and keep those covering a firing
    /// alert. A failure keeps the last answer (it is only for `dump`).
    async fn read_silences(&mut self, url: &str) {
        let Some(ep) = self.endpoints.get_mut(url) else {
            return;
        };
        if ep.firing.is_empty() {
            ep.silences.clear();
            return;
        }
        let Ok(target) = &ep.target else {
            return;
        };
        let answer = exchange(target, Method::GET, "/api/v2/silences", None).await;
        let silences = match answer {
            Ok((200, body)) => alertmanager::matching_silences(&body, &ep.firing),
            Ok((status, _)) => Err(format!("status {status}")),
            Err(e) => Err(e),
        };
        match silences {
            Ok(found) => {
                ep.silences = found
                    .into_iter()
                    .map(|s| SilenceDump {
                        matchers: s.describe(),
                        id: s.id,
                        ends_at: s.ends_at,
                        created_by: s.created_by,
                        comment: s.comment,
                    })
                    .collect();
            }
            Err(e) => tracing::debug!(url, error = %e, "cannot read alertmanager silences"),
        }
    }

    fn publish(&self) {
        let dumps = self
            .endpoints
            .iter()
            .map(|(url, ep)| AlertmanagerDump {
                url: url.clone(),
                pending: self.pending.values().filter(|e| &e.url == url).count(),
                firing: ep.firing.len(),
                delivered: ep.delivered,
                last_error: ep.last_error.clone(),
                silences: ep.silences.clone(),
            })
            .collect();
        self.status.send_replace(dumps);
    }
}

/// `POST /api/v2/alerts`.
async fn post_alerts(target: &Target, body: &str) -> Result<(), PostError> {
    match exchange(
        target,
        Method::POST,
        "/api/v2/alerts",
        Some(body.to_string()),
    )
    .await
    {
        Ok((status, _)) if (200..300).contains(&status) => Ok(()),
        Ok((status, answer)) if (400..500).contains(&status) && status != 429 => Err(
            PostError::Refused(format!("status {status}: {}", answer.trim())),
        ),
        Ok((status, answer)) => Err(PostError::Retry(format!(
            "status {status}: {}",
            answer.trim()
        ))),
        Err(e) => Err(PostError::Retry(e)),
    }
}

/// One HTTP/1.1 request on a fresh connection, bounded by [`HTTP_TIMEOUT`].
async fn exchange(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<(u16, String), String> {
    let work = async {
        let stream = crate::monitor::tcp::connect(&target.host, target.port).await?;
        if !target.tls {
            return send(stream, target, method, path, body).await;
        }
        let config = crate::monitor::http::tls_config(false).await?;
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| format!("bad TLS server name {:?}: {e}", target.host))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        send(stream, target, method, path, body).await
    };
    tokio::time::timeout(HTTP_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {}s", HTTP_TIMEOUT.as_secs()))?
}

async fn send<S>(
    stream: S,
    target: &Target,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<(u16, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("http: {e}"))?;
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "alertmanager connection ended");
        }
    });
    let request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", target.prefix))
        .header(HOST, target.authority())
        .header(USER_AGENT, concat!("keepmon/", env!("CARGO_PKG_VERSION")))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| format!("bad request: {e}"));
    let result = async {
        let response = sender
            .send_request(request?)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("http body: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
    .await;
    task.abort();
    result
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::{Alert, Labels};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("keepmon-amworker-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    fn entry(id: &str, url: &str, change: Change) -> Entry {
        Entry {
            id: id.into(),
            created: 1_700_000_000,
            url: url.into(),
            scope: "web/http".into(),
            change,
            resend_secs: 60,
            attempts: 0,
        }
    }

    /// An HTTP server that answers 200 and hands over each request's
    /// first line and body.
    async fn recorder(
        listener: tokio::net::TcpListener,
    ) -> mpsc::UnboundedReceiver<(String, String)> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut first = String::new();
                    reader.read_line(&mut first).await.ok();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).await.ok();
                        if line.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.ok();
                    let _ = tx.send((
                        first.trim().to_string(),
                        String::from_utf8_lossy(&body).into_owned(),
                    ));
                    reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]")
                        .await
                        .ok();
                });
            }
        });
        rx
    }

    #[tokio::test]
    async fn changes_wait_while_unreachable_then_go_in_order() {
        let dir = temp("order");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let (status, _status_rx) = watch::channel(Vec::new());
        let mut worker = Worker {
            queue: Queue::new(&dir),
            pending: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            status,
        };
        let fire = entry(
            "0001",
            &url,
            Change::Fire {
                alerts: vec![Alert {
                    labels: Labels::from([("host".to_string(), "web1".to_string())]),
                    annotations: Labels::new(),
                    starts_at: 1_700_000_000,
                }],
            },
        );
        let resolve = entry("0002", &url, Change::Resolve { at: 1_700_000_100 });
        for e in [&fire, &resolve] {
            worker.queue.store(e).unwrap();
            worker.accept(e.clone());
        }
        let token = CancellationToken::new();

        // Nobody listens: both wait, the first counts an attempt on disk.
        worker.round(&token).await;
        assert_eq!(worker.pending.len(), 2);
        let ep = &worker.endpoints[&url];
        assert!(ep.retry_at.is_some() && ep.last_error.is_some());
        assert_eq!(worker.queue.load().unwrap().pending[0].attempts, 1);

        // Alertmanager is back: the fire, then the resolve, in one round.
        let mut seen = recorder(
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap(),
        )
        .await;
        worker.endpoints.get_mut(&url).unwrap().retry_at = None;
        worker.round(&token).await;
        assert!(worker.pending.is_empty());
        let (line, body) = seen.recv().await.unwrap();
        assert_eq!(line, "POST /api/v2/alerts HTTP/1.1");
        assert!(
            body.contains("\"endsAt\"") && body.contains("web1"),
            "{body}"
        );
        let (_, body) = seen.recv().await.unwrap();
        assert!(
            body.contains("2023-11-14T22:15:00Z"),
            "the resolve ends at the upalert: {body}"
        );
        let loaded = worker.queue.load().unwrap();
        assert!(loaded.pending.is_empty());
        assert!(loaded.firing[&url].is_empty());
        assert_eq!(worker.endpoints[&url].delivered, 2);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn alerts_no_longer_configured_are_resolved_once() {
        let dir = temp("unconfigured");
        let url = "http://127.0.0.1:9".to_string();
        let (status, _status_rx) = watch::channel(Vec::new());
        let mut worker = Worker {
            queue: Queue::new(&dir),
            pending: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            status,
        };
        let (_, firing) = crate::alertmanager::step(
            &FiringSet::new(),
            "web/http",
            &Change::Fire {
                alerts: vec![Alert {
                    labels: Labels::from([("service".to_string(), "http".to_string())]),
                    annotations: Labels::new(),
                    starts_at: 1,
                }],
            },
            60,
            1,
        );
        worker
            .endpoints
            .insert(url.clone(), Endpoint::new(&url, firing));
        let still = BTreeSet::from([(url.clone(), "web/http".to_string())]);
        worker.resolve_unconfigured(&still);
        assert!(worker.pending.is_empty(), "still configured: nothing to do");
        worker.resolve_unconfigured(&BTreeSet::new());
        worker.resolve_unconfigured(&BTreeSet::new());
        let pending: Vec<&Entry> = worker.pending.values().collect();
        assert_eq!(pending.len(), 1, "one resolve, queued once");
        assert!(matches!(pending[0].change, Change::Resolve { .. }));
        assert_eq!(worker.queue.load().unwrap().pending.len(), 1, "on disk");
        std::fs::remove_dir_all(dir).ok();
    }
}
