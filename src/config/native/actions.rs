//! `[actions.NAME]`: the alert actions (file, mail, exec, lua, lb, and `notify` for VRRP instances) that services and instances name in their alert keys.

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;
use toml::de::DeValue;

use super::cursor::{KeyPath, Reader, Text};
use std::collections::BTreeMap;

use super::cursor::Dur;
use crate::config::model::{
    ALERTMANAGER_RESEND, Action, AlertmanagerAction, LbEdit, MailAction, NotifyOn, Protocol,
    Settings, VrrpNotify,
};
use crate::config::values;

const ACTION_TYPES: &[&str] = &[
    "file",
    "mail",
    "exec",
    "lua",
    "lb",
    "notify",
    "alertmanager",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFileAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    path: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    to: Option<Vec<Text>>,
    subject: Option<String>,
    from: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    command: Option<Text>,
    args: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifyAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    command: Option<Text>,
    args: Option<Vec<String>>,
    on: Option<Text>,
    /// The user the script runs as (`NAME` or `NAME:GROUP`).
    user: Option<Text>,
}

/// When a `notify` action runs (keepalived's `notify` and `notify_STATE`).
const NOTIFY_ON: &[(&str, NotifyOn)] = &[
    ("any", NotifyOn::Any),
    ("master", NotifyOn::Master),
    ("backup", NotifyOn::Backup),
    ("fault", NotifyOn::Fault),
    ("stop", NotifyOn::Stop),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLbAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    #[serde(rename = "virtual")]
    virtual_addr: Option<Text>,
    real: Option<Text>,
    protocol: Option<Text>,
    weight: Option<u32>,
    forward: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertmanagerAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    url: Option<Text>,
    severity: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    resend: Option<Dur>,
}

impl Reader<'_> {
    pub(super) fn actions(&mut self, value: &Spanned<DeValue<'_>>, settings: &Settings) {
        let entries = self.entries(
            value,
            &KeyPath::new("actions"),
            "a table of actions ([actions.NAME])",
        );
        for entry in entries.unwrap_or_default() {
            match self.action(entry.value, &entry.path, entry.at, settings) {
                Some(action) => {
                    self.actions.insert(entry.name, action);
                }
                None => {
                    self.broken_actions.insert(entry.name);
                }
            }
        }
    }

    fn action(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        at: usize,
        settings: &Settings,
    ) -> Option<Action> {
        let kind = self.type_key(value, p, at, "action type", ACTION_TYPES)?;
        match kind.as_str() {
            "file" => {
                let raw = self.read::<RawFileAction>(value, p)?;
                let path = self.required(
                    raw.path.as_ref(),
                    at,
                    p,
                    "path",
                    "e.g. path = \"state/alerts.log\"",
                )?;
                let path = self.path(Some(path), &p.key("path"))?;
                Some(Action::File { path })
            }
            "mail" => {
                let raw = self.read::<RawMailAction>(value, p)?;
                let to = self.required(
                    raw.to.as_ref(),
                    at,
                    p,
                    "to",
                    "e.g. to = [\"ops@example.com\"]",
                )?;
                let mut ok = true;
                if to.is_empty() {
                    self.error(at, format!("{}: needs at least one recipient", p.key("to")));
                    ok = false;
                }
                for (i, address) in to.iter().enumerate() {
                    ok &= self.mail_address(address, &p.at_key("to", i));
                }
                if let Some(from) = &raw.from {
                    ok &= self.mail_address(from, &p.key("from"));
                }
                ok.then(|| {
                    Action::Mail(MailAction {
                        to: to.iter().map(|t| t.get_ref().clone()).collect(),
                        subject: raw.subject.clone(),
                        from: raw.from.as_ref().map(|f| f.get_ref().clone()),
                    })
                })
            }
            "exec" => {
                let raw = self.read::<RawExecAction>(value, p)?;
                let path = self.alert_script(raw.command.as_ref(), at, p, settings, "alert")?;
                Some(Action::Exec {
                    path,
                    args: raw.args.unwrap_or_default(),
                })
            }
            "lua" => {
                let (script, args) =
                    self.lua_call(value, p, at, "the name of a Lua alert", settings)?;
                Some(Action::Lua { script, args })
            }
            "lb" => {
                let raw = self.read::<RawLbAction>(value, p)?;
                self.lb_edit(&raw, p, at).map(Action::Lb)
            }
            "notify" => {
                let raw = self.read::<RawNotifyAction>(value, p)?;
                let path = self.alert_script(raw.command.as_ref(), at, p, settings, "notify")?;
                let on = self
                    .choice(raw.on.as_ref(), &p.key("on"), "notify state", NOTIFY_ON)
                    .unwrap_or(NotifyOn::Any);
                let run_as = self.run_as(raw.user.as_ref(), &p.key("user"));
                Some(Action::Notify(VrrpNotify {
                    path,
                    args: raw.args.unwrap_or_default(),
                    on,
                    run_as,
                }))
            }
            "alertmanager" => {
                let raw = self.read::<RawAlertmanagerAction>(value, p)?;
                self.alertmanager(&raw, p, at).map(Action::Alertmanager)
            }
            _ => None,
        }
    }

    fn alertmanager(
        &mut self,
        raw: &RawAlertmanagerAction,
        p: &KeyPath,
        at: usize,
    ) -> Option<AlertmanagerAction> {
        let url = self.required(
            raw.url.as_ref(),
            at,
            p,
            "url",
            "e.g. url = \"http://127.0.0.1:9093\"",
        )?;
        let mut ok = true;
        if let Err(e) = crate::alertmanager::Target::parse(url.get_ref()) {
            self.error(url.span().start, format!("{}: {e}", p.key("url")));
            ok = false;
        }
        for name in raw.labels.iter().flat_map(|l| l.keys()) {
            if let Err(e) = values::check_label_name(name) {
                self.error(at, format!("{}: {e}", p.key("labels")));
                ok = false;
            }
        }
        let resend = match &raw.resend {
            Some(_) => self.positive_duration(raw.resend.as_ref(), &p.key("resend"))?,
            None => ALERTMANAGER_RESEND,
        };
        ok.then(|| AlertmanagerAction {
            url: url.get_ref().clone(),
            severity: raw.severity.clone(),
            labels: raw.labels.clone().unwrap_or_default(),
            resend,
        })
    }

    /// The `command` of an exec or notify action: a script in alertdir or
    /// a path, which must exist.
    fn alert_script(
        &mut self,
        command: Option<&Text>,
        at: usize,
        p: &KeyPath,
        settings: &Settings,
        what: &str,
    ) -> Option<std::path::PathBuf> {
        let command = self.required(command, at, p, "command", "a script in alertdir or a path")?;
        match self.find_script(command, &p.key("command"), &settings.alertdir)? {
            Ok(path) => Some(path),
            Err(searched) => {
                self.error(
                    command.span().start,
                    format!(
                        "{}: {what} script {:?} not found (searched {searched})",
                        p.key("command"),
                        command.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn lb_edit(&mut self, raw: &RawLbAction, p: &KeyPath, at: usize) -> Option<LbEdit> {
        let protocol = self.protocol(raw.protocol.as_ref(), &p.key("protocol"));
        let forward = raw
            .forward
            .as_ref()
            .map(|f| self.forward(f, &p.key("forward")));
        let virtual_text = self.required(
            raw.virtual_addr.as_ref(),
            at,
            p,
            "virtual",
            "e.g. virtual = \"10.0.0.1:80\"",
        );
        let real_text = self.required(raw.real.as_ref(), at, p, "real", "e.g. real = \"10.0.0.2\"");
        let virtual_addr = self.socket_addr(virtual_text, &p.key("virtual"), None);
        let real = match real_text {
            Some(text) => self.host_port(text, &p.key("real")),
            None => None,
        };
        let (virtual_addr, (real_addr, real_port)) = (virtual_addr?, real?);
        // A bad forward was reported; no edit without it.
        let forward = match forward {
            Some(f) => Some(f?),
            None => None,
        };
        Some(LbEdit {
            protocol: protocol.unwrap_or(Protocol::Tcp),
            virtual_addr,
            real_addr,
            real_port,
            weight: raw.weight,
            forward,
        })
    }
}

#[cfg(test)]
mod tests {

    use crate::config::native::testing::check_cases;
    use crate::config::settings;

    /// `[actions.NAME]` diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // Actions.
            (
                "[actions.ops]\ntype = \"mial\"\n",
                &[
                    "2:8: error: actions.ops.type: unknown action type \"mial\"; did you mean \"mail\"? (expected one of: file, mail, exec, lua, lb, notify, alertmanager)",
                ],
            ),
            (
                "[actions.ops]\nto = [\"a@b\"]\n",
                &[
                    "1:10: error: actions.ops: missing key \"type\" (one of: file, mail, exec, lua, lb, notify, alertmanager)",
                ],
            ),
            (
                "[actions.ops]\ntype = \"mail\"\nto = [\"ops@\"]\ncc = 1\n",
                &[
                    "3:7: error: actions.ops.to[0]: bad mail address \"ops@\"",
                    "4:1: error: actions.ops: unknown key \"cc\" (valid keys: type, to, subject, from)",
                ],
            ),
            (
                "[actions.am]\ntype = \"alertmanager\"\nurl = \"am:9093\"\nlabels = { \"1x\" = \"y\" }\n",
                &[
                    "1:10: error: actions.am.labels: bad label name \"1x\" (letters, digits and _, not starting with a digit)",
                    "3:7: error: actions.am.url: \"am:9093\" is not an http:// or https:// URL (e.g. http://127.0.0.1:9093)",
                ],
            ),
            (
                "[actions.log]\ntype = \"file\"\n",
                &[
                    "1:10: error: actions.log: missing key \"path\" (e.g. path = \"state/alerts.log\")",
                ],
            ),
            (
                "[actions.page]\ntype = \"exec\"\ncommand = \"qpage.alert\"\n",
                &[
                    "3:11: error: actions.page.command: alert script \"qpage.alert\" not found (searched /etc/keepmon/alert.d)",
                ],
            ),
            (
                "[actions.l]\ntype = \"lua\"\nscript = \"nope\"\n",
                &[&format!(
                    "3:10: error: actions.l.script: Lua script \"nope\" not found (searched {})",
                    settings::SHIPPED_LUA_DIRS.join(", ")
                )],
            ),
            (
                "[actions.lb]\ntype = \"lb\"\nvirtual = \"10.0.0.1\"\nreal = \"x\"\nforward = \"nta\"\n",
                &[
                    "3:11: error: actions.lb.virtual: \"10.0.0.1\" needs a port (e.g. \"10.0.0.1:80\")",
                    "4:8: error: actions.lb.real: \"x\" is not an IP address (names are not resolved here)",
                    "5:11: error: actions.lb.forward: unknown forwarding method \"nta\" (expected nat|dr|tun or m|g|i)",
                ],
            ),
        ]);
    }
}
