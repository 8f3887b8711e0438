//! The web status page and HTTP API, pure part: what a request asks for ([`route`]), the operator actions it carries ([`Action`]), and the pages and JSON documents rendered from a [`View`]; no sockets, no clock, no state change.
//!
//! The listener (`server.rs`) is the IO edge: it reads the request, asks
//! the supervisor for a [`View`] or to run an [`Action`] (the supervisor
//! turns it into one of its operations), and writes what these pure
//! functions rendered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::control::proto::{DumpReport, LbChange, Target};
use crate::lb::table::Report;

pub mod api;
pub mod auth;
pub mod html;
pub mod server;
pub mod stats;

/// Check samples kept per service for the service page's chart.
pub const SAMPLES_KEPT: usize = 360;

/// Everything a page or an API answer shows, gathered by the supervisor in
/// one step (so a page is one consistent picture).
#[derive(Clone, Debug)]
pub struct View {
    /// Unix seconds when the view was taken.
    pub now: i64,
    pub hostname: String,
    pub config: String,
    pub pid: u32,
    pub started: i64,
    pub dump: DumpReport,
    pub lb: Report,
    /// Per service (`group/service`): what the dump does not say.
    pub extra: BTreeMap<String, ServiceExtra>,
    /// The failure (downtime) history, newest last.
    pub failure_history: Vec<String>,
    /// The token the page's forms carry.
    pub csrf: String,
    /// What only HAProxy's stats page shows (history, checks, modes).
    pub stats: stats::StatsData,
}

/// A service's facts beyond `dump`: since when it is in its state, the
/// ack's time, and its recent checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceExtra {
    /// Failing: since the first failure; otherwise since the last recovery
    /// (or the first success).
    pub since: Option<i64>,
    pub ack_time: Option<i64>,
    /// Oldest first, at most [`SAMPLES_KEPT`].
    pub samples: Vec<Sample>,
}

/// One completed check of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub time: i64,
    pub up: bool,
    /// How long the check ran, in microseconds (saturating).
    pub micros: u32,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    MainPage,
    ServicePage {
        group: String,
        service: String,
    },
    /// A form posted from a page (basic auth and a CSRF token).
    PageAction,
    Api(ApiGet),
    /// `POST /api/v1/ops` (a token or basic auth; JSON body).
    ApiOperation,
    Events,
    NotFound,
    MethodNotAllowed,
}

/// The API's documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiGet {
    Status,
    Services,
    Lb,
    Vrrp,
    History,
}

/// Which page or document `method path` asks for (the path without its query).
pub fn route(method: &str, path: &str) -> Route {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = method == "GET" || method == "HEAD";
    let post = method == "POST";
    let route = match segments.as_slice() {
        [""] => Some((true, Route::MainPage)),
        ["service", group, service] if !group.is_empty() && !service.is_empty() => Some((
            true,
            Route::ServicePage {
                group: group.to_string(),
                service: service.to_string(),
            },
        )),
        ["action"] => Some((false, Route::PageAction)),
        ["api", "v1", "ops"] => Some((false, Route::ApiOperation)),
        ["api", "v1", "events"] => Some((true, Route::Events)),
        ["api", "v1", document] => {
            let api = match *document {
                "status" => Some(ApiGet::Status),
                "services" => Some(ApiGet::Services),
                "lb" => Some(ApiGet::Lb),
                "vrrp" => Some(ApiGet::Vrrp),
                "history" => Some(ApiGet::History),
                _ => None,
            };
            api.map(|a| (true, Route::Api(a)))
        }
        _ => None,
    };
    match route {
        None => Route::NotFound,
        Some((true, r)) if get => r,
        Some((false, r)) if post => r,
        Some(_) => Route::MethodNotAllowed,
    }
}

/// An operator action from a page form or the API, in the web's words;
/// the supervisor maps each to one operation of its vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Ack {
        group: String,
        service: String,
        #[serde(default)]
        comment: String,
    },
    Disable {
        #[serde(flatten)]
        target: WebTarget,
    },
    Enable {
        #[serde(flatten)]
        target: WebTarget,
    },
    /// Fire a service's failure alerts as a test (not counted).
    TestAlert { group: String, service: String },
    /// An edit of one real server: `drain`, `maint`, `ready` or `weight`.
    Lb {
        virtual_service: String,
        real_server: String,
        change: String,
        #[serde(default)]
        weight: Option<u32>,
    },
}

/// What enable/disable act on: a watch (`group`), a service (`group` and
/// `service`) or a host (`host`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct WebTarget {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
}

impl Action {
    /// The auth.cf command whose rule decides who may do this (mon's
    /// names; `lb` for the load-balancer edits mon does not have).
    pub fn command(&self) -> &'static str {
        match self {
            Action::Ack { .. } => "ack",
            Action::Disable { .. } => "disable",
            Action::Enable { .. } => "enable",
            Action::TestAlert { .. } => "test",
            Action::Lb { .. } => "lb",
        }
    }

    /// Parse a JSON operation (the API's body).
    pub fn from_json(body: &[u8]) -> Result<Action, WebError> {
        serde_json::from_slice(body)
            .map_err(|e| WebError::bad_request(format!("bad operation: {e}")))
    }

    /// Parse a page form's fields (`op` and the action's fields; empty
    /// fields count as absent, `weight` is a number).
    pub fn from_form(fields: &BTreeMap<String, String>) -> Result<Action, WebError> {
        let mut object = serde_json::Map::new();
        for (key, value) in fields {
            if value.is_empty() || key == "csrf" || key == "back" {
                continue;
            }
            let value = match (key.as_str(), value.parse::<u32>()) {
                ("weight", Ok(n)) => serde_json::Value::from(n),
                _ => serde_json::Value::from(value.clone()),
            };
            object.insert(key.clone(), value);
        }
        serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| WebError::bad_request(format!("bad form: {e}")))
    }
}

impl WebTarget {
    /// The control protocol's target, or why the fields name none.
    pub fn target(&self) -> Result<Target, WebError> {
        match (&self.group, &self.service, &self.host) {
            (Some(group), Some(service), None) => Ok(Target::Service {
                group: group.clone(),
                service: service.clone(),
            }),
            (Some(group), None, None) => Ok(Target::Watch {
                group: group.clone(),
            }),
            (None, None, Some(host)) => Ok(Target::Host {
                hosts: vec![host.clone()],
            }),
            _ => Err(WebError::bad_request(
                "name a group, a group and a service, or a host",
            )),
        }
    }
}

/// The real-server change an `lb` action names.
pub fn lb_change(change: &str, weight: Option<u32>) -> Result<LbChange, WebError> {
    match (change, weight) {
        ("drain", _) => Ok(LbChange::Drain),
        ("maint", _) => Ok(LbChange::Maint),
        ("ready", _) => Ok(LbChange::Ready),
        ("weight", Some(weight)) => Ok(LbChange::Weight { weight }),
        ("weight", None) => Err(WebError::bad_request("a weight change needs \"weight\"")),
        (other, _) => Err(WebError::bad_request(format!(
            "unknown lb change \"{other}\" (drain, maint, ready, weight)"
        ))),
    }
}

/// A refused request: the HTTP status, a stable code for scripts, and a
/// message for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WebError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl WebError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> WebError {
        WebError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> WebError {
        WebError::new(400, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> WebError {
        WebError::new(404, "not_found", message)
    }
    pub fn unauthorized() -> WebError {
        WebError::new(401, "unauthorized", "log in (basic auth) or send a token")
    }
    pub fn forbidden(user: &str, command: &str) -> WebError {
        WebError::new(
            403,
            "forbidden",
            format!("user \"{user}\" may not run \"{command}\" (auth.cf)"),
        )
    }
    /// The supervisor refused the operation (unknown service, not failing…).
    pub fn refused(message: impl Into<String>) -> WebError {
        WebError::new(409, "refused", message)
    }
}

/// `a=1&b=x%20y` → fields (`+` is a space); repeated keys keep the last.
pub fn parse_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&key.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// Decode `%XX` escapes; a malformed escape is kept as it is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escape a path segment for a link.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        let cases = [
            ("GET", "/", Route::MainPage),
            (
                "GET",
                "/service/web%20farm/http",
                Route::ServicePage {
                    group: "web farm".into(),
                    service: "http".into(),
                },
            ),
            ("GET", "/api/v1/status", Route::Api(ApiGet::Status)),
            ("GET", "/api/v1/history", Route::Api(ApiGet::History)),
            ("POST", "/api/v1/ops", Route::ApiOperation),
            ("POST", "/action", Route::PageAction),
            ("GET", "/api/v1/events", Route::Events),
            ("GET", "/action", Route::MethodNotAllowed),
            ("POST", "/", Route::MethodNotAllowed),
            ("GET", "/api/v1/nothing", Route::NotFound),
            ("GET", "/service/only-group", Route::NotFound),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn forms_and_json_parse_into_the_same_actions() {
        let form = parse_form("op=ack&group=web&service=http&comment=on+it%21&csrf=x");
        let ack = Action::Ack {
            group: "web".into(),
            service: "http".into(),
            comment: "on it!".into(),
        };
        assert_eq!(Action::from_form(&form), Ok(ack.clone()));
        assert_eq!(
            Action::from_json(br#"{"op":"ack","group":"web","service":"http","comment":"on it!"}"#),
            Ok(ack)
        );
        let lb =
            parse_form("op=lb&virtual_service=www&real_server=10.0.0.1:80&change=weight&weight=7");
        let Ok(Action::Lb { change, weight, .. }) = Action::from_form(&lb) else {
            panic!("{lb:?}");
        };
        assert_eq!(
            lb_change(&change, weight),
            Ok(LbChange::Weight { weight: 7 })
        );
        assert_eq!(
            lb_change("weight", None).map_err(|e| e.code),
            Err("bad_request")
        );
        assert_eq!(
            lb_change("boom", None).map_err(|e| e.code),
            Err("bad_request")
        );
        let disable = Action::from_form(&parse_form("op=disable&host=db1")).unwrap();
        let Action::Disable { target } = &disable else {
            panic!("{disable:?}")
        };
        assert_eq!(
            target.target(),
            Ok(Target::Host {
                hosts: vec!["db1".into()]
            })
        );
        assert_eq!(disable.command(), "disable");
        let err = Action::from_json(br#"{"op":"format_disk"}"#).unwrap_err();
        assert_eq!((err.status, err.code), (400, "bad_request"));
        let nothing = WebTarget {
            group: None,
            service: Some("x".into()),
            host: None,
        };
        assert!(nothing.target().is_err());
    }

    #[test]
    fn percent_coding_round_trips_and_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(percent_decode(&percent_encode("web farm/é")), "web farm/é");
    }
}
