//! mon traps (UDP): the `tag='value'` packet parser and auth.cf's trap section; pure, no IO.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::auth::{AuthFile, verify_password};
use super::un_esc_str;

/// Oldest trap protocol mon accepts (`$TRAP_PRO_VERSION`).
pub const TRAP_PROTOCOL: f64 = 0.3807;

/// Largest trap packet read (a UDP datagram).
pub const MAX_TRAP: usize = 65_535;

/// A trap, validated: what the supervisor applies like a monitor result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trap {
    pub group: String,
    pub service: String,
    /// `sta`: the exit status (0 = ok).
    pub exit: i32,
    pub summary: String,
    pub detail: String,
    pub user: String,
    pub password: String,
}

/// Parse a trap packet: newline-separated `tag='value'` lines, values
/// un-escaped. `pro` must be at least 0.3807 and `sta` must be a number.
pub fn parse(packet: &[u8]) -> Result<Trap, String> {
    let text = String::from_utf8_lossy(packet);
    let mut tags: BTreeMap<&str, String> = BTreeMap::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some((tag, value)) = line.split_once('=') else {
            return Err(format!(
                "unspecified tag in trap: {}",
                super::esc_str(line, false)
            ));
        };
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad tag in trap: {}", super::esc_str(tag, false)));
        }
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(value);
        tags.insert(tag, un_esc_str(value));
    }
    let pro: f64 = tags
        .get("pro")
        .and_then(|p| p.trim().parse().ok())
        .ok_or("trap without a protocol version (pro)")?;
    if pro < TRAP_PROTOCOL {
        return Err(format!(
            "cannot handle traps from version less than {TRAP_PROTOCOL}"
        ));
    }
    let exit = tags
        .get("sta")
        .ok_or("no trap sta value specified")?
        .trim()
        .parse::<i32>()
        .map_err(|_| "trap sta is not a number".to_string())?;
    let take = |tags: &mut BTreeMap<&str, String>, t: &str| tags.remove(t).unwrap_or_default();
    Ok(Trap {
        group: take(&mut tags, "grp"),
        service: take(&mut tags, "svc"),
        exit,
        summary: take(&mut tags, "sum").trim_end_matches('\n').to_string(),
        detail: take(&mut tags, "dtl"),
        user: take(&mut tags, "usr"),
        password: take(&mut tags, "pas"),
    })
}

/// mon's trap authentication: a `*` host line, else the source address;
/// then a `*` user (no credentials), else `usr`/`pas` against the crypt hash.
pub fn authorize(auth: &AuthFile, from: IpAddr, trap: &Trap) -> Result<(), String> {
    match rule_for(auth, from, trap)? {
        None => Ok(()),
        Some(hash) if verify_password(&trap.password, &hash) => Ok(()),
        Some(_) => Err(bad_password(trap, from)),
    }
}

/// The first half of [`authorize`], without the (slow) hash check:
/// `Ok(None)` when the trap needs no password, `Ok(Some(hash))` when its
/// password must match `hash`, `Err` when it is refused already.
pub fn rule_for(auth: &AuthFile, from: IpAddr, trap: &Trap) -> Result<Option<String>, String> {
    let from = from.to_canonical().to_string();
    let host = if auth.traps.iter().any(|r| r.host == "*") {
        "*"
    } else {
        from.as_str()
    };
    let rules: Vec<_> = auth.traps.iter().filter(|r| r.host == host).collect();
    if rules.is_empty() {
        return Err(format!("trap from unauthorized host {from}"));
    }
    if rules.iter().any(|r| r.user == "*") {
        return Ok(None);
    }
    let rule = rules
        .iter()
        .find(|r| r.user == trap.user)
        .ok_or_else(|| format!("trap from unknown user {} (host {from})", trap.user))?;
    Ok(Some(rule.password_hash.clone()))
}

/// Why a trap whose password did not match was refused.
pub fn bad_password(trap: &Trap, from: IpAddr) -> String {
    format!(
        "trap with a bad password from user {} (host {})",
        trap.user,
        from.to_canonical()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Mon::Client's `send_trap` puts on the wire.
    const PACKET: &str = "pro='0.3807'\nusr='mon'\npas='secret'\ntyp='trap'\nspc='fail'\nseq='0'\ngrp='web'\nsvc='http'\nsta='1'\ntsp='1700000000'\nsum='host1\\20down'\ndtl='line\\0aline2'\n";

    #[test]
    fn mon_client_packets_parse() {
        let trap = parse(PACKET.as_bytes()).unwrap();
        assert_eq!(
            trap,
            Trap {
                group: "web".into(),
                service: "http".into(),
                exit: 1,
                summary: "host1 down".into(),
                detail: "line\nline2".into(),
                user: "mon".into(),
                password: "secret".into(),
            }
        );
        assert!(
            parse(b"pro='0.1'\nsta='0'\n")
                .unwrap_err()
                .contains("version")
        );
        assert!(parse(b"pro='0.3807'\n").unwrap_err().contains("sta"));
        assert!(parse(b"pro='0.3807'\nsta='x'\n").is_err());
        assert!(parse(b"\x00\xff garbage").is_err());
    }

    #[test]
    fn trap_section_rules() {
        let hash = pwhash::sha512_crypt::hash("secret").unwrap();
        let trap = parse(PACKET.as_bytes()).unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        let auth = |text: &str| AuthFile::parse(&format!("trap section\n{text}")).0;

        let open_local = auth("127.0.0.1 * *\n");
        assert_eq!(authorize(&open_local, local, &trap), Ok(()));
        assert!(authorize(&open_local, other, &trap).is_err());

        let users = auth(&format!("* mon {hash}\n"));
        assert_eq!(authorize(&users, other, &trap), Ok(()));
        let wrong = Trap {
            password: "nope".into(),
            ..trap.clone()
        };
        assert!(
            authorize(&users, other, &wrong)
                .unwrap_err()
                .contains("bad password")
        );
        let stranger = Trap {
            user: "eve".into(),
            ..trap.clone()
        };
        assert!(
            authorize(&users, other, &stranger)
                .unwrap_err()
                .contains("unknown user")
        );
        assert!(
            authorize(&AuthFile::default(), local, &trap).is_err(),
            "no trap section: refused"
        );
    }
}
