//! Alertmanager as an alert output, pure: the alerts keepmon keeps firing per Alertmanager, what each queued change posts to `/api/v2/alerts` (labels, annotations, `startsAt`, `endsAt`), the re-send body, the URL form, and which silences match an alert; never does IO or reads the clock.
//!
//! The split follows `src/lb/ipvs/`: this file decides, [`queue`] keeps the
//! changes on disk, [`worker`] speaks HTTP.
//!
//! Alertmanager's contract (its API v2): a client posts the alerts that
//! fire, again and again while they fire; an alert whose `endsAt` passes is
//! resolved. keepmon sets `endsAt` to four re-send intervals ahead on every
//! post (as Prometheus does), so a director that dies stops holding its
//! alerts open, and posts `endsAt` = the upalert's time to resolve.

pub mod queue;
pub mod worker;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Labels or annotations: ordered, so equal sets compare and print equal.
pub type Labels = BTreeMap<String, String>;

/// One alert as keepmon holds it (times are time(2) seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: i64,
}

/// What one alert decision changes for a service (its `scope`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The scope's firing alerts are now exactly these (a host that no
    /// longer fails is resolved).
    Fire { alerts: Vec<Alert> },
    /// Every firing alert of the scope ended at this time (the upalert).
    Resolve { at: i64 },
}

/// One alert keepmon keeps sending while it fires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// `group/service`: the upalert of that service resolves it.
    pub scope: String,
    pub alert: Alert,
    /// Seconds between re-sends.
    pub resend_secs: u64,
}

/// The firing alerts of one Alertmanager, by [`fingerprint`].
pub type FiringSet = BTreeMap<String, Firing>;

/// One alert in a post, with its end (`None` never happens in keepmon's
/// posts, but Alertmanager accepts it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    pub alert: Alert,
    pub ends_at: i64,
}

/// An alert's identity in Alertmanager: its label set.
pub fn fingerprint(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Apply a queued change at `now`: the alerts to post and the firing set
/// after the post succeeds. A firing alert keeps its first `startsAt`.
pub fn step(
    firing: &FiringSet,
    scope: &str,
    change: &Change,
    resend_secs: u64,
    now: i64,
) -> (Vec<Posted>, FiringSet) {
    let mut next = firing.clone();
    let mut posts = Vec::new();
    match change {
        Change::Fire { alerts } => {
            let keys: Vec<String> = alerts.iter().map(|a| fingerprint(&a.labels)).collect();
            for (key, old) in firing.iter().filter(|(_, f)| f.scope == scope) {
                if !keys.contains(key) {
                    posts.push(Posted {
                        alert: old.alert.clone(),
                        ends_at: now.max(old.alert.starts_at),
                    });
                    next.remove(key);
                }
            }
            for (key, alert) in keys.into_iter().zip(alerts) {
                let mut alert = alert.clone();
                if let Some(old) = firing.get(&key) {
                    alert.starts_at = old.alert.starts_at;
                }
                posts.push(Posted {
                    alert: alert.clone(),
                    ends_at: valid_until(now, resend_secs),
                });
                next.insert(
                    key,
                    Firing {
                        scope: scope.to_string(),
                        alert,
                        resend_secs,
                    },
                );
            }
        }
        Change::Resolve { at } => {
            for (key, old) in firing.iter().filter(|(_, f)| f.scope == scope) {
                posts.push(Posted {
                    alert: old.alert.clone(),
                    ends_at: (*at).max(old.alert.starts_at),
                });
                next.remove(key);
            }
        }
    }
    (posts, next)
}

/// The re-send of every firing alert at `now`.
pub fn resend(firing: &FiringSet, now: i64) -> Vec<Posted> {
    firing
        .values()
        .map(|f| Posted {
            alert: f.alert.clone(),
            ends_at: valid_until(now, f.resend_secs),
        })
        .collect()
}

/// The shortest re-send interval among firing alerts (None: nothing fires).
pub fn resend_interval(firing: &FiringSet) -> Option<u64> {
    firing.values().map(|f| f.resend_secs).min()
}

/// The `/api/v2/alerts` body.
pub fn body(posts: &[Posted]) -> String {
    let alerts: Vec<serde_json::Value> = posts
        .iter()
        .map(|p| {
            serde_json::json!({
                "labels": p.alert.labels,
                "annotations": p.alert.annotations,
                "startsAt": rfc3339(p.alert.starts_at),
                "endsAt": rfc3339(p.ends_at),
            })
        })
        .collect();
    serde_json::Value::Array(alerts).to_string()
}

/// time(2) seconds as RFC 3339 in UTC.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Four re-send intervals ahead: a missed re-send or two does not resolve
/// the alert; a director that died does, soon.
fn valid_until(now: i64, resend_secs: u64) -> i64 {
    now.saturating_add(4 * resend_secs.max(1) as i64)
}

/// An Alertmanager's address, from `http[s]://host[:port][/prefix]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path prefix without a trailing slash (`""` or `/am`).
    pub prefix: String,
}

impl Target {
    /// Read a base URL; the message names what is wrong.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!(
                "{url:?} is not an http:// or https:// URL (e.g. http://127.0.0.1:9093)"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') || path.contains(['?', '#']) {
            return Err(format!(
                "{url:?}: keepmon takes a base URL without user, query or fragment"
            ));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("{url:?}: junk after the host")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, p)) => (
                    host.to_string(),
                    p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(Target {
            tls,
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The `Host` header.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// One silence matcher, as Alertmanager's API v2 gives it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as `GET /api/v2/silences` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    pub status: SilenceStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SilenceStatus {
    /// `active`, `pending` or `expired`.
    pub state: String,
}

impl Silence {
    /// Whether every matcher holds for `labels` (a missing label reads as
    /// the empty string; regexes are anchored, as Alertmanager does).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| {
            let value = labels.get(&m.name).map(String::as_str).unwrap_or("");
            let hit = if m.is_regex {
                regex::Regex::new(&format!("^(?:{})$", m.value))
                    .map(|r| r.is_match(value))
                    .unwrap_or(false)
            } else {
                value == m.value
            };
            hit == m.is_equal
        })
    }

    /// `service="http", host=~"web.*"`.
    pub fn describe(&self) -> String {
        self.matchers
            .iter()
            .map(|m| {
                let op = match (m.is_regex, m.is_equal) {
                    (false, true) => "=",
                    (false, false) => "!=",
                    (true, true) => "=~",
                    (true, false) => "!~",
                };
                format!("{}{op}{:?}", m.name, m.value)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The active silences that match at least one firing alert, from a
/// `GET /api/v2/silences` body.
pub fn matching_silences(body: &str, firing: &FiringSet) -> Result<Vec<Silence>, String> {
    let all: Vec<Silence> =
        serde_json::from_str(body).map_err(|e| format!("bad silences answer: {e}"))?;
    Ok(all
        .into_iter()
        .filter(|s| s.status.state == "active")
        .filter(|s| firing.values().any(|f| s.matches(&f.alert.labels)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(host: &str, starts_at: i64) -> Alert {
        Alert {
            labels: [
                ("alertname", "keepmon"),
                ("group", "web"),
                ("service", "http"),
                ("host", host),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            annotations: Labels::from([("summary".to_string(), format!("{host} down"))]),
            starts_at,
        }
    }

    fn ends(posts: &[Posted]) -> Vec<(String, i64, i64)> {
        posts
            .iter()
            .map(|p| (p.alert.labels["host"].clone(), p.alert.starts_at, p.ends_at))
            .collect()
    }

    #[test]
    fn fire_refire_and_resolve() {
        let empty = FiringSet::new();
        let fire = Change::Fire {
            alerts: vec![alert("a", 100), alert("b", 100)],
        };
        let (posts, firing) = step(&empty, "web/http", &fire, 60, 100);
        assert_eq!(
            ends(&posts),
            [("a".into(), 100, 340), ("b".into(), 100, 340)]
        );
        assert_eq!(firing.len(), 2);

        // A re-alert where only b fails: a is resolved now, b keeps its start.
        let refire = Change::Fire {
            alerts: vec![alert("b", 500)],
        };
        let (posts, firing) = step(&firing, "web/http", &refire, 60, 500);
        assert_eq!(
            ends(&posts),
            [("a".into(), 100, 500), ("b".into(), 100, 740)]
        );
        assert_eq!(firing.len(), 1);

        // Another service's resolve touches nothing.
        let (posts, same) = step(&firing, "web/smtp", &Change::Resolve { at: 600 }, 60, 700);
        assert!(posts.is_empty());
        assert_eq!(same, firing);

        // The upalert ends b at its own time, even when posted later.
        let (posts, firing) = step(&firing, "web/http", &Change::Resolve { at: 600 }, 60, 900);
        assert_eq!(ends(&posts), [("b".into(), 100, 600)]);
        assert!(firing.is_empty());

        // Re-sending an empty set posts nothing.
        assert!(resend(&firing, 1000).is_empty());
        assert_eq!(resend_interval(&firing), None);
    }

    #[test]
    fn the_body_is_alertmanagers_shape() {
        let posts = vec![Posted {
            alert: alert("a", 1_700_000_000),
            ends_at: 1_700_000_240,
        }];
        let value: serde_json::Value = serde_json::from_str(&body(&posts)).unwrap();
        assert_eq!(
            value,
            serde_json::json!([{
                "labels": {"alertname": "keepmon", "group": "web", "service": "http", "host": "a"},
                "annotations": {"summary": "a down"},
                "startsAt": "2023-11-14T22:13:20Z",
                "endsAt": "2023-11-14T22:17:20Z",
            }])
        );
    }

    #[test]
    fn urls() {
        let check = |url: &str, expected: Result<(bool, &str, u16, &str), &str>| {
            let got = Target::parse(url);
            match expected {
                Ok((tls, host, port, prefix)) => assert_eq!(
                    got,
                    Ok(Target {
                        tls,
                        host: host.into(),
                        port,
                        prefix: prefix.into()
                    }),
                    "{url}"
                ),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{url}: {got:?}"
                ),
            }
        };
        check("http://127.0.0.1:9093", Ok((false, "127.0.0.1", 9093, "")));
        check("http://am/", Ok((false, "am", 80, "")));
        check(
            "https://am.example.com/alertmanager/",
            Ok((true, "am.example.com", 443, "/alertmanager")),
        );
        check("http://[::1]:9093", Ok((false, "::1", 9093, "")));
        check("am:9093", Err("not an http:// or https:// URL"));
        check("http://am:x", Err("bad port"));
        check("http://u@am", Err("without user"));
        check("http://:9093", Err("no host"));
        assert_eq!(
            Target::parse("http://[::1]:9093").unwrap().authority(),
            "[::1]:9093"
        );
        assert_eq!(Target::parse("https://am:443").unwrap().authority(), "am");
    }

    #[test]
    fn silences_match_by_labels() {
        let (_, firing) = step(
            &FiringSet::new(),
            "web/http",
            &Change::Fire {
                alerts: vec![alert("web1", 1)],
            },
            60,
            1,
        );
        let body = r#"[
          {"id":"s1","matchers":[{"name":"service","value":"http","isRegex":false,"isEqual":true},
                                 {"name":"host","value":"web.*","isRegex":true}],
           "endsAt":"2030-01-01T00:00:00Z","createdBy":"ops","comment":"deploy","status":{"state":"active"}},
          {"id":"s2","matchers":[{"name":"service","value":"smtp","isRegex":false,"isEqual":true}],
           "status":{"state":"active"}},
          {"id":"s3","matchers":[{"name":"service","value":"http","isRegex":false,"isEqual":true}],
           "status":{"state":"expired"}},
          {"id":"s4","matchers":[{"name":"host","value":"web1","isRegex":false,"isEqual":false}],
           "status":{"state":"active"}}
        ]"#;
        let found = matching_silences(body, &firing).unwrap();
        assert_eq!(
            found.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["s1"]
        );
        assert_eq!(found[0].describe(), r#"service="http", host=~"web.*""#);
        assert!(matching_silences("{", &firing).is_err());
    }
}
