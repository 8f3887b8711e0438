//! The HTTP API's JSON documents (`/api/v1/...`), rendered from a [`View`]; the shapes `docs/openapi.json` describes.

use serde_json::{Value, json};

use super::{ApiGet, View, WebError};

/// The document a GET asks for.
pub fn document(view: &View, which: ApiGet) -> Value {
    match which {
        ApiGet::Status => status(view),
        ApiGet::Services => json!({ "services": services(view) }),
        ApiGet::Lb => serde_json::to_value(&view.lb).unwrap_or(Value::Null),
        ApiGet::Vrrp => json!({ "instances": view.dump.vrrp }),
        ApiGet::History => json!({
            "alerts": view.dump.alert_history,
            "failures": view.failure_history,
            "lb_changes": view.dump.lb_changes,
        }),
    }
}

/// `keepmon dump --json`'s document, with who answers.
fn status(view: &View) -> Value {
    let mut value = serde_json::to_value(&view.dump).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert(
            "daemon".to_string(),
            json!({
                "hostname": view.hostname,
                "config": view.config,
                "pid": view.pid,
                "started": view.started,
                "now": view.now,
            }),
        );
    }
    value
}

/// The services, failing first, each with `since` and `ack_time`.
fn services(view: &View) -> Vec<Value> {
    let mut rows: Vec<&crate::control::proto::ServiceDump> = view.dump.services.iter().collect();
    rows.sort_by_key(|s| {
        (
            !super::html::is_failing(s),
            s.group.as_str(),
            s.service.as_str(),
        )
    });
    rows.into_iter()
        .map(|s| {
            let mut value = serde_json::to_value(s).unwrap_or(Value::Null);
            let extra = view.extra.get(&format!("{}/{}", s.group, s.service));
            if let Value::Object(map) = &mut value {
                map.insert("failing".into(), json!(super::html::is_failing(s)));
                map.insert("since".into(), json!(extra.and_then(|e| e.since)));
                map.insert("ack_time".into(), json!(extra.and_then(|e| e.ack_time)));
            }
            value
        })
        .collect()
}

/// An error answer: `{"error": {"code", "message"}}`.
pub fn error(e: &WebError) -> Value {
    json!({ "error": { "code": e.code, "message": e.message } })
}

/// A done operation: `{"ok": true, "message"}`.
pub fn done(message: &str) -> Value {
    json!({ "ok": true, "message": message })
}
