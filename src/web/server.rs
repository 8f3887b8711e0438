//! The web listener's IO edge: accepts HTTP/1.1 connections (hyper), reads the auth files, and asks the supervisor for a [`View`] or to run an [`Action`] over its own call channel ([`WebCall`]); everything it writes was rendered by the pure modules beside it.
//!
//! A connection never blocks the daemon: each has its own task; the
//! supervisor answers a call through a oneshot and moves on.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use arc_swap::ArcSwap;

use super::{Action, Route, View, WebError, api, auth, html, stats};
use crate::config::model::{AuthSettings, AuthType, StatsPage};
use crate::monproto::auth::{AuthFile, LoginCheck, login_ok};
use crate::monproto::throttle::LoginThrottle;

/// What the web listener asks the supervisor.
pub enum WebCall {
    /// The state to render.
    View { reply: oneshot::Sender<View> },
    /// Run an action for an authenticated, authorized user.
    Act {
        action: Action,
        user: String,
        reply: oneshot::Sender<Result<String, WebError>>,
    },
}

/// What the listener needs besides the channel.
pub struct ServerSettings {
    pub auth: AuthSettings,
    pub tokens_file: Option<PathBuf>,
    /// The token the page's forms carry (one per daemon run).
    pub csrf: String,
    /// State changes for `/api/v1/events`, one JSON object each.
    pub events: broadcast::Sender<String>,
    pub counters: Arc<WebCounters>,
}

/// What a listener serves: keepmon's page and API, or one of HAProxy's
/// stats pages. Both share the connection handling below.
#[derive(Clone)]
pub enum Site {
    Web(Arc<ServerSettings>),
    Stats(Arc<StatsSite>),
}

impl Site {
    fn counters(&self) -> &Arc<WebCounters> {
        match self {
            Site::Web(settings) => &settings.counters,
            Site::Stats(site) => &site.counters,
        }
    }
}

/// One stats page listener: its page (swapped in place on reload) and the
/// login backoff, shared by all stats pages.
pub struct StatsSite {
    pub page: ArcSwap<StatsPage>,
    pub throttle: Arc<std::sync::Mutex<LoginThrottle>>,
    pub counters: Arc<WebCounters>,
}

/// What the metrics page says about web clients.
#[derive(Debug, Default)]
pub struct WebCounters {
    requests: AtomicU64,
    connections: AtomicU64,
}

impl WebCounters {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Counts a connection while it lives.
struct Connected(Arc<WebCounters>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Largest request body read (forms and JSON operations are small).
const MAX_BODY: usize = 64 * 1024;

/// Connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 512;

type Body = BoxBody<Bytes, Infallible>;

/// Serve until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    site: Site,
    calls: mpsc::Sender<WebCall>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "web accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many web connections; closing one");
            continue;
        };
        let site = site.clone();
        let calls = calls.clone();
        let shutdown = shutdown.clone();
        site.counters().connections.fetch_add(1, Ordering::Relaxed);
        let connected = Connected(site.counters().clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _connected = connected;
            let service = hyper::service::service_fn(move |request| {
                let site = site.clone();
                let calls = calls.clone();
                async move {
                    site.counters().requests.fetch_add(1, Ordering::Relaxed);
                    let response = match &site {
                        Site::Web(settings) => handle(request, peer, settings, &calls).await,
                        Site::Stats(stats_site) => {
                            serve_stats(request, peer, stats_site, &calls).await
                        }
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "web connection ended");
                    }
                }
            }
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    settings: &ServerSettings,
    calls: &mpsc::Sender<WebCall>,
) -> Response<Body> {
    let route = super::route(request.method().as_str(), request.uri().path());
    let result = match route {
        Route::MainPage => timed(calls, |v| Ok(html::main_page(v))).await,
        Route::ServicePage { group, service } => {
            timed(calls, |v| {
                html::service_page(v, &group, &service)
                    .ok_or_else(|| WebError::not_found(format!("no service \"{group}/{service}\"")))
            })
            .await
        }
        Route::Api(which) => view(calls)
            .await
            .map(|v| json(StatusCode::OK, &api::document(&v, which))),
        Route::PageAction => page_action(request, peer, settings, calls).await,
        Route::ApiOperation => api_operation(request, peer, settings, calls).await,
        Route::Events => Ok(events(settings)),
        Route::NotFound => Err(WebError::not_found("no such page")),
        Route::MethodNotAllowed => Err(WebError::new(
            405,
            "method_not_allowed",
            "method not allowed here",
        )),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// A request to a stats page's listener: under `stats uri` the page (or
/// its CSV, or an admin form), elsewhere HAProxy's 503 of a proxy with no
/// server.
async fn serve_stats(
    request: Request<Incoming>,
    peer: SocketAddr,
    site: &StatsSite,
    calls: &mpsc::Sender<WebCall>,
) -> Response<Body> {
    let page = site.page.load_full();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str)
        .to_string();
    let Some(asked) = stats::parse_request(&page.uri, &target) else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
        );
    };
    let user = match stats_login(&request, peer.ip(), &page, site) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let post = request.method() == hyper::Method::POST;
    if post {
        return stats_admin(request, &page, user, &target, calls).await;
    }
    if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let v = match view(calls).await {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    let rows = stats::rows(&v, &v.stats);
    if asked.csv {
        return Response::builder()
            .header(CONTENT_TYPE, "text/plain")
            .header(CACHE_CONTROL, "no-cache")
            .body(full(stats::csv(&rows)))
            .unwrap_or_else(|_| error_response(&WebError::bad_request("bad csv")));
    }
    let options = stats::PageOptions {
        uri: page.uri.clone(),
        refresh: page
            .refresh
            .filter(|_| !asked.norefresh)
            .map(|d| d.as_secs().max(1)),
        version: (!page.hide_version)
            .then(|| format!("keepmon version {}", env!("CARGO_PKG_VERSION"))),
        admin: page.admin && user.is_some(),
        status: asked.status,
    };
    let mut response = page_response(stats::html(&v, &rows, &options));
    // HAProxy's page has no script; keep the same headers as keepmon's page.
    response.headers_mut().insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    response
}

/// Basic auth against the page's `stats auth` users, with the mon port's
/// backoff: `Ok(None)` when the page has no users (open, as HAProxy),
/// `Ok(Some(user))` after a good login, else the 401 (or 429) to send.
fn stats_login(
    request: &Request<Incoming>,
    client: IpAddr,
    page: &StatsPage,
    site: &StatsSite,
) -> Result<Option<String>, Box<Response<Body>>> {
    if page.users.is_empty() {
        return Ok(None);
    }
    let challenge = || {
        let mut response = plain(
            StatusCode::UNAUTHORIZED,
            "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
        );
        if let Ok(value) = format!("Basic realm=\"{}\"", page.realm).parse() {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        Box::new(response)
    };
    let Some((user, password)) = header(request, AUTHORIZATION)
        .as_deref()
        .and_then(auth::basic_credentials)
    else {
        return Err(challenge());
    };
    let now = tokio::time::Instant::now();
    let begun = site
        .throttle
        .lock()
        .map(|mut t| t.attempt(client, &user, now))
        .unwrap_or(Ok(()));
    if let Err(wait) = begun {
        tracing::warn!(%client, user, wait_secs = wait.as_secs(), "stats page login throttled");
        let mut response = plain(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins; try again later\n",
        );
        if let Ok(value) = wait.as_secs().max(1).to_string().parse() {
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, value);
        }
        return Err(Box::new(response));
    }
    let known = page.users.iter().any(|u| {
        auth::same_secret(u.user.as_bytes(), user.as_bytes())
            & auth::same_secret(u.password.as_bytes(), password.as_bytes())
    });
    if known {
        if let Ok(mut t) = site.throttle.lock() {
            t.succeeded(client, &user);
        }
        Ok(Some(user))
    } else {
        tracing::warn!(%client, user, "stats page login refused");
        Err(challenge())
    }
}

/// HAProxy's admin form: the checked servers of one backend set to
/// ready/drain/maint, each through the same operation as `keepmon lb`;
/// then back to the page with `;st=DONE` (or PART, DENY, ERRP).
async fn stats_admin(
    request: Request<Incoming>,
    page: &StatsPage,
    user: Option<String>,
    target: &str,
    calls: &mpsc::Sender<WebCall>,
) -> Response<Body> {
    let back = |status: &str| {
        let location = format!("{};st={status}", page.uri);
        Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(LOCATION, location)
            .header(CACHE_CONTROL, "no-cache")
            .body(full(Bytes::new()))
            .unwrap_or_else(|_| error_response(&WebError::bad_request("bad redirect")))
    };
    // A browser posting from another site says so in Origin; HAProxy's
    // form has no token, so this is what keeps a page elsewhere from
    // using the operator's saved login.
    if !same_origin(&request) {
        return plain(StatusCode::FORBIDDEN, "cross-site form refused\n");
    }
    let (Some(user), true) = (user, page.admin) else {
        return back("DENY");
    };
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(e) => return error_response(&e),
    };
    let v = match view(calls).await {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    let wanted = match stats::admin_request(&String::from_utf8_lossy(&body), &v) {
        Ok(wanted) => wanted,
        Err(e) => {
            tracing::info!(user, target, error = %e, "stats page action refused");
            return back("ERRP");
        }
    };
    let mut done = 0;
    for server in &wanted.servers {
        let action = Action::Lb {
            virtual_service: wanted.virtual_server.clone(),
            real_server: server.to_string(),
            change: wanted.action.clone(),
            weight: None,
        };
        let (reply, answer) = oneshot::channel();
        let sent = calls
            .send(WebCall::Act {
                action,
                user: user.clone(),
                reply,
            })
            .await;
        match (sent, answer.await) {
            (Ok(()), Ok(Ok(message))) => {
                tracing::info!(user, message, "stats page action");
                done += 1;
            }
            (_, Ok(Err(e))) => tracing::warn!(user, error = %e, "stats page action failed"),
            _ => return error_response(&stopping()),
        }
    }
    back(if done == wanted.servers.len() {
        "DONE"
    } else if done > 0 {
        "PART"
    } else {
        "NONE"
    })
}

/// No `Origin`, or one naming the host the request was sent to.
fn same_origin(request: &Request<Incoming>) -> bool {
    let Some(origin) = header(request, hyper::header::ORIGIN) else {
        return true;
    };
    let host = header(request, hyper::header::HOST).unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/html")
        .header(CACHE_CONTROL, "no-cache")
        .body(full(text))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// A form from a page: CSRF token first, then basic auth, then auth.cf.
async fn page_action(
    request: Request<Incoming>,
    peer: SocketAddr,
    settings: &ServerSettings,
    calls: &mpsc::Sender<WebCall>,
) -> Result<Response<Body>, WebError> {
    let authorization = header(&request, AUTHORIZATION);
    let body = read_body(request).await?;
    let fields = super::parse_form(&String::from_utf8_lossy(&body));
    if !auth::csrf_ok(&settings.csrf, fields.get("csrf").map(String::as_str)) {
        return Err(WebError::new(
            403,
            "csrf",
            "the form's token is missing or stale; reload the page",
        ));
    }
    let action = Action::from_form(&fields)?;
    let user = login(authorization.as_deref(), peer.ip(), settings, false).await?;
    let message = act(calls, settings, action, user).await?;
    let back = fields
        .get("back")
        .filter(|b| local_path(b))
        .map_or("/", String::as_str);
    tracing::info!(%peer, message, "web action");
    Ok(Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(LOCATION, back)
        .body(full(Bytes::new()))
        .unwrap_or_else(|_| error_response(&WebError::bad_request("bad redirect"))))
}

/// `POST /api/v1/ops`: a token (or basic auth), then auth.cf.
async fn api_operation(
    request: Request<Incoming>,
    peer: SocketAddr,
    settings: &ServerSettings,
    calls: &mpsc::Sender<WebCall>,
) -> Result<Response<Body>, WebError> {
    let authorization = header(&request, AUTHORIZATION);
    let body = read_body(request).await?;
    let action = Action::from_json(&body)?;
    let user = login(authorization.as_deref(), peer.ip(), settings, true).await?;
    let message = act(calls, settings, action, user).await?;
    tracing::info!(%peer, message, "web api operation");
    Ok(json(StatusCode::OK, &api::done(&message)))
}

/// Check auth.cf's rule for the action, then ask the supervisor.
async fn act(
    calls: &mpsc::Sender<WebCall>,
    settings: &ServerSettings,
    action: Action,
    user: String,
) -> Result<String, WebError> {
    // An unreadable auth.cf denies everything (mon's default deny).
    let authfile = match tokio::fs::read_to_string(&settings.auth.authfile).await {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(authfile = %settings.auth.authfile.display(), error = %e, "cannot read auth file; web actions are denied");
            String::new()
        }
    };
    let (rules, _) = AuthFile::parse(&authfile);
    if !rules.allows(Some(&user), action.command()) {
        return Err(WebError::forbidden(&user, action.command()));
    }
    let (reply, answer) = oneshot::channel();
    calls
        .send(WebCall::Act {
            action,
            user,
            reply,
        })
        .await
        .map_err(|_| stopping())?;
    answer.await.map_err(|_| stopping())?
}

/// Who is asking: a token (API only) or basic auth checked as the mon
/// port checks a login.
async fn login(
    authorization: Option<&str>,
    client: IpAddr,
    settings: &ServerSettings,
    tokens: bool,
) -> Result<String, WebError> {
    let Some(authorization) = authorization else {
        return Err(WebError::unauthorized());
    };
    if tokens && let Some(token) = auth::bearer_token(authorization) {
        let Some(path) = &settings.tokens_file else {
            return Err(WebError::unauthorized());
        };
        let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
        let (known, _) = auth::parse_tokens(&text);
        return auth::token_user(&known, token)
            .map(str::to_string)
            .ok_or_else(WebError::unauthorized);
    }
    let (user, password) =
        auth::basic_credentials(authorization).ok_or_else(WebError::unauthorized)?;
    let a = &settings.auth;
    let userfile = if a.authtype.contains(&AuthType::Userfile) {
        tokio::fs::read_to_string(&a.userfile).await.ok()
    } else {
        None
    };
    let shadow = if a
        .authtype
        .iter()
        .any(|t| matches!(t, AuthType::Getpwnam | AuthType::Shadow))
    {
        tokio::fs::read_to_string("/etc/shadow").await.ok()
    } else {
        None
    };
    let check = LoginCheck {
        authtypes: &a.authtype,
        userfile: userfile.as_deref(),
        shadow: shadow.as_deref(),
        client,
    };
    if login_ok(&check, &user, &password) {
        Ok(user)
    } else {
        tracing::warn!(%client, user, "web login refused");
        Err(WebError::unauthorized())
    }
}

/// `/api/v1/events`: state changes as Server-Sent Events.
fn events(settings: &ServerSettings) -> Response<Body> {
    let receiver = settings.events.subscribe();
    let stream =
        futures_util::stream::unfold((receiver, true), |(mut receiver, first)| async move {
            if first {
                return Some((
                    Ok(Frame::data(Bytes::from_static(b": keepmon events\n\n"))),
                    (receiver, false),
                ));
            }
            let text = match tokio::time::timeout(Duration::from_secs(15), receiver.recv()).await {
                Ok(Ok(event)) => format!("event: change\ndata: {event}\n\n"),
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    format!("event: lagged\ndata: {{\"missed\":{n}}}\n\n")
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                // Keep proxies and idle timers from closing the stream.
                Err(_) => ": ping\n\n".to_string(),
            };
            Some((Ok(Frame::data(Bytes::from(text))), (receiver, false)))
        });
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .header(CACHE_CONTROL, "no-store")
        .body(StreamBody::new(stream).boxed())
        .unwrap_or_else(|_| error_response(&WebError::bad_request("bad stream")))
}

/// A page, with how long the supervisor took to gather the view and the
/// page took to render in a `Server-Timing` header (ms).
async fn timed(
    calls: &mpsc::Sender<WebCall>,
    render: impl FnOnce(&View) -> Result<String, WebError>,
) -> Result<Response<Body>, WebError> {
    let asked = std::time::Instant::now();
    let v = view(calls).await?;
    let gathered = std::time::Instant::now();
    let text = render(&v)?;
    let rendered = gathered.elapsed();
    let mut response = page_response(text);
    let timing = format!(
        "view;dur={:.2}, render;dur={:.2}",
        (gathered - asked).as_secs_f64() * 1000.0,
        rendered.as_secs_f64() * 1000.0
    );
    if let Ok(value) = timing.parse() {
        response.headers_mut().insert("server-timing", value);
    }
    Ok(response)
}

async fn view(calls: &mpsc::Sender<WebCall>) -> Result<View, WebError> {
    let (reply, answer) = oneshot::channel();
    calls
        .send(WebCall::View { reply })
        .await
        .map_err(|_| stopping())?;
    answer.await.map_err(|_| stopping())
}

/// A path on this server (a form's `back`): not `//host`, and no
/// backslash or control character a browser could read as one.
fn local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.chars().any(|c| c == '\\' || c.is_control())
}

fn stopping() -> WebError {
    WebError::new(503, "stopping", "the daemon is stopping")
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, WebError> {
    Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|_| WebError::new(413, "too_large", "request body too large"))
}

fn header(request: &Request<Incoming>, name: hyper::header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn page_response(text: String) -> Response<Body> {
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(CACHE_CONTROL, "no-store")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        .body(full(text))
        .unwrap_or_else(|_| error_response(&WebError::bad_request("bad page")))
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .body(full(value.to_string()))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// Errors are JSON with a code (pages show the same document).
fn error_response(e: &WebError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json(status, &api::error(e));
    if e.status == 401
        && let Ok(value) = "Basic realm=\"keepmon\", charset=\"UTF-8\"".parse()
    {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_go_back_only_to_local_paths() {
        for (path, ok) in [
            ("/", true),
            ("/service/web/http", true),
            ("//evil.example", false),
            ("/\\evil.example", false),
            ("/\r\nSet-Cookie: x", false),
            ("https://evil.example", false),
            ("", false),
        ] {
            assert_eq!(local_path(path), ok, "{path:?}");
        }
    }
}
