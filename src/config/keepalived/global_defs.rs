//! keepalived's `global_defs` block: mail settings, router_id, VRRP defaults, script user and security, and keepmon's own `keepmon_dataplane`.

use std::time::Duration;

use crate::config::keepalived::Ctx;
use crate::config::keepalived::numbers;
use crate::config::keepalived::security;
use crate::config::keepalived::tree::Stmt;
use crate::config::model::{Config, DataPlane, RunAs, SmtpSettings, SmtpTls, VrrpVersion};

/// keepalived's SMTP port when `smtp_server` names none.
const SMTP_PORT: u16 = 25;

/// What `global_defs` sets; defaults are keepalived 2.2.7's.
#[derive(Clone, Debug, Default)]
pub struct Globals {
    pub emails: Vec<String>,
    pub email_from: Option<String>,
    pub smtp_server: Option<(String, u16)>,
    /// `smtp_connect_timeout` (keepalived's default: 30 s).
    pub smtp_timeout: Option<Duration>,
    pub router_id: Option<String>,
    /// `vrrp_version` (default 2).
    pub vrrp_version: Option<VrrpVersion>,
    pub garp_delay: Option<Duration>,
    pub garp_repeat: Option<u32>,
    pub garp_refresh: Option<Duration>,
    /// Global `smtp_alert` (None: per block).
    pub smtp_alert: Option<bool>,
    /// `smtp_alert_vrrp`: VRRP instances' default, before `smtp_alert`.
    pub smtp_alert_vrrp: Option<bool>,
    pub script_security: bool,
    /// `script_user USER [GROUP]` (default: keepalived_script when it
    /// exists, else root).
    pub script_user: Option<(String, Option<String>)>,
    /// keepmon's own `keepmon_dataplane` (default: IPVS, as keepalived).
    pub dataplane: Option<DataPlane>,
}

impl Globals {
    /// Whether keepalived can find a user to run scripts as. With
    /// `enable_script_security` and no `script_user`, it wants the user
    /// `keepalived_script` and removes scripts when there is none.
    pub fn script_user_ok(&self, fs: &dyn crate::config::FileSystem) -> bool {
        self.default_run_as(fs).is_ok()
    }

    /// keepalived's default script user (`get_default_script_user`):
    /// `script_user`, else `keepalived_script` when it exists, else the
    /// daemon itself (`Ok(None)`); an error when there is none it may use.
    pub fn default_run_as(
        &self,
        fs: &dyn crate::config::FileSystem,
    ) -> Result<Option<RunAs>, String> {
        if let Some((user, group)) = &self.script_user {
            return security::resolve_user(fs, user, group.as_deref()).map(Some);
        }
        match security::resolve_user(fs, "keepalived_script", None) {
            Ok(user) => Ok(Some(user)),
            Err(_) if self.script_security => {
                Err("Unable to set default user keepalived_script for script".to_string())
            }
            Err(_) => Ok(None),
        }
    }

    pub fn version(&self) -> VrrpVersion {
        self.vrrp_version.unwrap_or(VrrpVersion::V2)
    }

    pub fn dataplane(&self) -> DataPlane {
        self.dataplane.unwrap_or(DataPlane::Ipvs)
    }
}

/// Read one `global_defs` block (a file may have several; later lines win).
pub fn read(stmt: &Stmt, globals: &mut Globals, ctx: &mut Ctx<'_>) {
    for child in stmt.children() {
        let piece = &child.piece;
        match child.keyword() {
            "notification_email" => {
                for line in child.values() {
                    for word in &line.words {
                        match crate::config::values::check_mail_address(&word.text) {
                            Ok(()) => globals.emails.push(word.text.clone()),
                            Err(why) => ctx.diags.warning(
                                line.loc.clone(),
                                format!(
                                    "{why}: keepalived sends mail to it and the relay refuses it; keepmon leaves it out"
                                ),
                            ),
                        }
                    }
                }
            }
            "notification_email_from" => match piece.words.get(1) {
                Some(word) => globals.email_from = Some(word.text.clone()),
                None => ctx.logs(piece.loc.clone(), "emailfrom missing - ignoring"),
            },
            "smtp_server" => {
                let Some(host) = ctx.arg(piece, 1) else {
                    continue;
                };
                let port = match piece.words.get(2) {
                    Some(word) => match word.text.parse::<u16>() {
                        Ok(port) if port != 0 => port,
                        _ => {
                            ctx.logs(
                                piece.word_loc(2),
                                format!("Invalid smtp server {host} {}", word.text),
                            );
                            continue;
                        }
                    },
                    None => SMTP_PORT,
                };
                globals.smtp_server = Some((host.to_string(), port));
            }
            "smtp_connect_timeout" => {
                if let Some(secs) = ctx.unsigned(piece, 1, 0, u64::from(u32::MAX) / 1_000_000, true)
                {
                    let secs = if secs == 0 {
                        ctx.logs(
                            piece.loc.clone(),
                            "smtp_conect_timeout must be greater than 0, setting to 1",
                        );
                        1
                    } else {
                        secs
                    };
                    globals.smtp_timeout = Some(Duration::from_secs(secs));
                }
            }
            "router_id" => match piece.words.get(1) {
                Some(word) => {
                    globals.router_id = Some(word.text.clone());
                }
                None => ctx.logs(piece.loc.clone(), "routerid name missing - ignoring"),
            },
            "vrrp_version" => match ctx.int(piece, 1, 2, 3, true) {
                Some(2) => globals.vrrp_version = Some(VrrpVersion::V2),
                Some(_) => globals.vrrp_version = Some(VrrpVersion::V3),
                None => ctx.logs(
                    piece.loc.clone(),
                    "VRRP Error: Version must be either 2 or 3",
                ),
            },
            "vrrp_garp_master_delay" => {
                if let Some(secs) = seconds(ctx, child, "vrrp_garp_master_delay") {
                    globals.garp_delay = Some(Duration::from_secs(secs));
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(repeat) = seconds(ctx, child, "vrrp_garp_master_repeat") {
                    let repeat = if repeat == 0 {
                        ctx.logs(
                            piece.loc.clone(),
                            "vrrp_garp_master_repeat must be greater than 0, setting to 1",
                        );
                        1
                    } else {
                        repeat
                    };
                    globals.garp_repeat = Some(u32::try_from(repeat).unwrap_or(u32::MAX));
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(secs) = seconds(ctx, child, "vrrp_garp_master_refresh") {
                    globals.garp_refresh = (secs > 0).then(|| Duration::from_secs(secs));
                }
            }
            keyword @ ("smtp_alert" | "smtp_alert_vrrp") => {
                let value = match piece.words.get(1) {
                    None => Some(true),
                    Some(word) => numbers::true_false(&word.text).or_else(|| {
                        ctx.logs(
                            piece.word_loc(1),
                            format!(
                                "Invalid value '{}' for global {keyword} specified",
                                word.text
                            ),
                        );
                        None
                    }),
                };
                if value.is_some() {
                    if keyword == "smtp_alert" {
                        globals.smtp_alert = value;
                    } else {
                        globals.smtp_alert_vrrp = value;
                    }
                }
            }
            "enable_script_security" => globals.script_security = true,
            "script_user" => match piece.words.get(1) {
                Some(user) => {
                    let group = piece.words.get(2).map(|w| w.text.clone());
                    if let Err(message) =
                        security::resolve_user(ctx.fs, &user.text, group.as_deref())
                    {
                        ctx.logs(piece.loc.clone(), message);
                        ctx.logs(
                            piece.loc.clone(),
                            "Error setting global script uid/gid (keepalived removes the scripts that would run as it)",
                        );
                    }
                    globals.script_user = Some((user.text.clone(), group));
                }
                None => ctx.logs(piece.loc.clone(), "No script username specified"),
            },
            "keepmon_dataplane" => {
                ctx.diags.warning(
                    piece.loc.clone(),
                    "keepalived ignores this keepmon-only keyword (it logs \"Unknown keyword 'keepmon_dataplane'\" and runs on with IPVS)",
                );
                let Some(name) = ctx.arg(piece, 1) else {
                    continue;
                };
                globals.dataplane = match name {
                    "ipvs" => Some(DataPlane::Ipvs),
                    "proxy" => Some(DataPlane::Proxy),
                    "nftables" | "nft" => Some(DataPlane::Nftables),
                    other => {
                        ctx.diags.error(
                            piece.word_loc(1),
                            format!("keepmon_dataplane {other}: expected ipvs, proxy or nftables"),
                        );
                        None
                    }
                };
            }
            "lvs_flush" | "lvs_flush_on_stop" | "lvs_flush_onstop" => ctx.unused(
                piece,
                &format!(
                    "{} (keepmon adopts matching IPVS entries and removes only its own)",
                    child.keyword()
                ),
            ),
            "smtp_helo_name"
            | "no_email_faults"
            | "smtp_alert_checker"
            | "checker_log_all_failures" => {
                ctx.unused(piece, &format!("'{}'", child.keyword()));
            }
            keyword => ctx.unused(piece, &format!("'{keyword}'")),
        }
    }
}

/// Put the globals into the model's mail settings.
pub fn apply(globals: &Globals, config: &mut Config) {
    // keepalived names the director by router_id in its notices (mail
    // subjects), by the host name without it.
    config.settings.director = globals.router_id.clone();
    if let Some((host, port)) = &globals.smtp_server {
        config.mail.smtp = Some(SmtpSettings {
            host: host.clone(),
            port: *port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            timeout: globals.smtp_timeout.unwrap_or(Duration::from_secs(30)),
            helo_name: None,
            ca_file: None,
        });
    }
    config.mail.from = globals.email_from.clone();
}

/// An unsigned whole number of seconds (or a count) that keepalived ignores
/// with a message when invalid.
fn seconds(ctx: &mut Ctx<'_>, stmt: &Stmt, keyword: &str) -> Option<u64> {
    let value = ctx.unsigned(&stmt.piece, 1, 0, u64::from(u32::MAX) / 1_000_000, true);
    if value.is_none() && stmt.piece.words.len() > 1 {
        ctx.logs(
            stmt.loc(),
            format!(
                "{keyword} '{}' invalid - ignoring",
                stmt.piece.words[1].text
            ),
        );
    }
    value
}
