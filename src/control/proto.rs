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
    /// One command of mon's client protocol (TCP 2583), already authorized
    /// by the connection that received it.
    Mon {
        command: crate::monproto::Command,
        user: Option<String>,
        view: Option<String>,
    },
    /// A mon trap (UDP), already authorized by auth.cf's trap section.
    MonTrap {
        trap: crate::monproto::trap::Trap,
        from: String,
    },
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
    Dump(DumpReport),
    /// The load-balancer tables: ipvsadm-style text and the same as JSON.
    Lb {
        text: String,
        json: serde_json::Value,
    },
    /// A reply in mon's client protocol.
    Mon(crate::monproto::Reply),
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
    }
}
