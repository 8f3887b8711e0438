//! Control protocol types shared by daemon and CLI: one JSON request line, one JSON response line; no IO here.

use serde::{Deserialize, Serialize};

/// What the CLI asks the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Status,
    Dump,
    Stop,
    Reload,
    Pause,
    Resume,
    Enable {
        target: Target,
    },
    Disable {
        target: Target,
    },
    Ack {
        group: String,
        service: String,
        comment: String,
    },
    Test {
        what: TestWhat,
        group: String,
        service: String,
    },
    /// `keepmon lb show`
    LbShow,
    /// `keepmon lb drain|maint|ready|weight VS RS [W]`
    LbSet {
        virtual_service: String,
        real_server: String,
        change: LbChange,
    },
    /// `keepmon vrrp show`
    VrrpShow,
    /// The route announcements (what `keepmon exabgp-api` follows).
    Announcements,
}

/// An operator's change to one real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum LbChange {
    Drain,
    Maint,
    Ready,
    Weight { weight: u32 },
}

/// What `enable`/`disable` act on (mon's watch, service, host).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Watch { group: String },
    Service { group: String, service: String },
    Host { hosts: Vec<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestWhat {
    Monitor,
    Alert,
    Upalert,
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Ok {
        message: String,
    },
    Error {
        message: String,
    },
    Status(StatusReport),
    Dump(Box<DumpReport>),
    /// The load-balancer tables: ipvsadm-style text and the same as JSON.
    Lb {
        text: String,
        json: serde_json::Value,
    },
    /// The VRRP instances (`keepmon vrrp show`).
    Vrrp {
        instances: Vec<VrrpDump>,
    },
    /// The route announcements.
    Announcements {
        announcements: Vec<AnnounceDump>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub pid: u32,
    pub config: String,
    pub started: i64,
    pub scheduler_running: bool,
    pub services: usize,
    pub failing: Vec<String>,
    pub alerts_sent: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DumpReport {
    pub scheduler_running: bool,
    pub services: Vec<ServiceDump>,
    pub disabled_hosts: Vec<String>,
    pub alert_history: Vec<String>,
    /// Recent load-balancer table changes (health, alerts, CLI).
    #[serde(default)]
    pub lb_changes: Vec<String>,
    /// Real servers' admin states and weights changed at run time, kept
    /// across restarts: `VS RS maint (config: ready) weight 5 (config: 1)`.
    #[serde(default)]
    pub lb_settings: Vec<String>,
    /// The mail outbox: delivery route, pending letters, dead letters.
    #[serde(default)]
    pub mail: Box<MailDump>,
    /// The VRRP instances.
    #[serde(default)]
    pub vrrp: Vec<VrrpDump>,
    /// Route announcements through the routing daemon.
    #[serde(default)]
    pub announcements: Vec<AnnounceDump>,
    /// Alertmanagers that alert actions post to.
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerDump>,
}

/// One Alertmanager as `dump` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerDump {
    pub url: String,
    /// Changes queued and not yet accepted.
    pub pending: usize,
    /// Alerts re-sent while they fire.
    pub firing: usize,
    /// Posts accepted since the daemon started.
    pub delivered: u64,
    /// The last error, cleared by a success.
    pub last_error: Option<String>,
    /// Active silences in that Alertmanager matching a firing alert.
    pub silences: Vec<SilenceDump>,
}

/// An Alertmanager silence that covers one of keepmon's alerts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceDump {
    pub id: String,
    /// `service="http", host=~"web.*"`.
    pub matchers: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

/// One `[announce.NAME]` as `dump` and `lb show` show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceDump {
    pub name: String,
    pub prefix: String,
    pub when: String,
    /// The condition holds now.
    pub wanted: bool,
    /// The routing daemon accepted a configuration with the route.
    pub announced: bool,
    /// The last error talking to the routing daemon.
    pub error: Option<String>,
}

/// The mail outbox as `keepmon dump` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailDump {
    /// How mail leaves: `smtp host:port (starttls, auth)`, `local sendmail ...`.
    pub route: String,
    /// Letters accepted and not yet delivered.
    pub pending: usize,
    /// time(2) the oldest pending letter was accepted.
    pub oldest_pending: Option<i64>,
    /// The last delivery error while letters are pending.
    pub last_error: Option<String>,
    /// Messages the relay accepted since the daemon started.
    pub delivered: u64,
    /// Every dead letter in `statedir/outbox/dead/`.
    pub dead_total: usize,
    /// The most recent dead letters, oldest first.
    pub dead_letters: Vec<DeadLetterDump>,
}

/// A letter keepmon gave up on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterDump {
    pub id: String,
    /// time(2) accepted and given up.
    pub created: i64,
    pub died: i64,
    /// `alert web/http`
    pub about: String,
    pub to: Vec<String>,
    pub subject: String,
    pub reason: String,
}

/// One VRRP instance as `vrrp show` and `dump` report it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpDump {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    /// INIT, BACKUP, MASTER or FAULT.
    pub state: String,
    pub priority: u8,
    pub effective_priority: u8,
    /// Where adverts go from (the primary address or unicast_src_ip).
    pub source: Option<String>,
    /// The current master: ourselves when MASTER, the last accepted
    /// advert's source when BACKUP.
    pub master: Option<String>,
    /// Seconds (v3: to the centisecond).
    pub advert_int: f64,
    pub virtual_addresses: Vec<String>,
    /// time(2) of the last transition, and why it happened.
    pub last_transition: Option<i64>,
    pub last_reason: String,
    /// Why the instance is in FAULT (link down, a tracked service).
    pub fault: Option<String>,
    /// The `vrrp_sync_group` the instance belongs to, and that group's
    /// state (INIT, BACKUP, MASTER or FAULT): members follow it.
    #[serde(default)]
    pub sync_group: Option<String>,
    #[serde(default)]
    pub sync_group_state: Option<String>,
    /// Tracked BFD sessions: `NAME STATE` (keepalived's states: AdminDown,
    /// Down, Init, Up).
    #[serde(default)]
    pub bfd: Vec<String>,
    pub counters: VrrpCounters,
}

/// What an instance has sent and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpCounters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub send_errors: u64,
    /// Undecodable: bad header, length, checksum, version or type.
    pub malformed: u64,
    pub bad_ttl: u64,
    pub other_vrid: u64,
    pub auth_mismatch: u64,
    pub version_mismatch: u64,
    pub interval_mismatch: u64,
    pub address_mismatch: u64,
    pub unknown_peer: u64,
    pub transitions: u64,
    pub garps_sent: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceDump {
    pub group: String,
    pub service: String,
    pub opstatus: String,
    pub opstatus_code: u8,
    pub disabled: bool,
    pub watch_disabled: bool,
    pub monitor: String,
    pub hosts: Vec<HostDump>,
    pub last_check: Option<i64>,
    pub last_summary: String,
    pub last_detail: String,
    /// Seconds until the next run (None: not scheduled).
    pub next_run_in: Option<f64>,
    pub running: bool,
    pub alerts_sent: u64,
    pub failures: u64,
    pub ack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostDump {
    pub host: String,
    pub up: bool,
    pub disabled: bool,
    pub reason: Option<String>,
}

/// Encode one message as a JSON line.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Serializing these plain enums cannot fail (no maps with non-string keys).
    let mut line = serde_json::to_string(message).unwrap_or_else(|e| {
        format!("{{\"response\":\"error\",\"message\":\"encoding failed: {e}\"}}")
    });
    line.push('\n');
    line
}

/// Decode one JSON line.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| format!("bad control message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Status,
            Request::Disable {
                target: Target::Service {
                    group: "g".into(),
                    service: "s".into(),
                },
            },
            Request::Ack {
                group: "g".into(),
                service: "s".into(),
                comment: "on it\nreally".into(),
            },
        ];
        for r in requests {
            let line = encode(&r);
            assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
            assert_eq!(decode::<Request>(&line).unwrap(), r);
        }
        assert!(decode::<Request>("{\"request\":\"explode\"}").is_err());
        assert!(decode::<Request>("\u{0}\u{1}garbage").is_err());
        // mon protocol commands and traps never travel over the control
        // socket: they are authorized by the mon listener only.
        assert!(
            decode::<Request>("{\"request\":\"mon\",\"command\":{},\"user\":\"root\"}").is_err()
        );
        assert!(decode::<Request>("{\"request\":\"mon_trap\",\"from\":\"x\"}").is_err());
    }
}
