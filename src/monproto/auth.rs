//! auth.cf (`command section` / `trap section`) and the user file: who may run which mon command; parsing and password checks, no network IO.
//!
//! Semantics are mon 1.2's `load_auth`/`check_auth`: default deny, `all` =
//! anyone (authenticated or not), `AUTH_ANY` = any logged-in user, a user
//! list, `!user` denies that user first. Passwords in the user file are
//! crypt(3) hashes (`user : hash`, htpasswd style); DES, MD5, SHA-256,
//! SHA-512 and bcrypt hashes are checked with `pwhash`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::config::model::AuthType;

/// A parsed auth.cf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthFile {
    /// Lowercased command → rule.
    commands: BTreeMap<String, CommandRule>,
    /// `trap section` lines: source host, user, crypt hash.
    pub traps: Vec<TrapRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CommandRule {
    /// Users (or `all`, `AUTH_ANY`) allowed.
    allow: BTreeSet<String>,
    /// Users (or `AUTH_ANY`) denied, checked first.
    deny: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrapRule {
    /// `*` or an address.
    pub host: String,
    /// `*` (no credentials needed) or a user name.
    pub user: String,
    pub password_hash: String,
}

impl AuthFile {
    /// Parse auth.cf. Lines that cannot be read are reported (with their
    /// line number) and skipped, as mon does; the rest of the file applies.
    pub fn parse(text: &str) -> (AuthFile, Vec<String>) {
        let mut file = AuthFile::default();
        let mut problems = Vec::new();
        let mut trap_section = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() >= 2 && words[1] == "section" {
                match words[0] {
                    "command" => trap_section = false,
                    "trap" => trap_section = true,
                    other => problems.push(format!("line {}: unknown section \"{other}\"", n + 1)),
                }
                continue;
            }
            if trap_section {
                match words.as_slice() {
                    [host, user, password] => file.traps.push(TrapRule {
                        host: host.to_string(),
                        user: user.to_string(),
                        password_hash: password.to_string(),
                    }),
                    _ => problems.push(format!(
                        "line {}: a trap line is \"host user password\": {line}",
                        n + 1
                    )),
                }
                continue;
            }
            let Some((command, users)) = line.split_once(':') else {
                problems.push(format!(
                    "line {}: expected \"command: users\": {line}",
                    n + 1
                ));
                continue;
            };
            let rule = file
                .commands
                .entry(command.trim().to_ascii_lowercase())
                .or_default();
            for user in users.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                match user.strip_prefix('!') {
                    Some(denied) => rule.deny.insert(denied.to_string()),
                    None => rule.allow.insert(user.to_string()),
                };
            }
        }
        (file, problems)
    }

    /// mon's `check_auth`: may `user` (None: not logged in) run `command`?
    pub fn allows(&self, user: Option<&str>, command: &str) -> bool {
        let Some(rule) = self.commands.get(&command.to_ascii_lowercase()) else {
            return false;
        };
        if let Some(user) = user
            && (rule.deny.contains(user) || rule.deny.contains("AUTH_ANY"))
        {
            return false;
        }
        if rule.allow.contains("all") {
            return true;
        }
        user.is_some_and(|u| rule.allow.contains("AUTH_ANY") || rule.allow.contains(u))
    }
}

/// The user file (`monusers.cf`): `user : crypt-hash` lines.
pub fn parse_userfile(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(u, h)| (u.trim().to_string(), h.trim().to_string()))
        .collect()
}

/// Does `password` match the crypt(3) `hash`? Unknown or malformed hashes never match.
pub fn verify_password(password: &str, hash: &str) -> bool {
    !hash.is_empty() && pwhash::unix::verify(password, hash)
}

/// A SHA-512 crypt hash of a random string nobody knows: what an unknown
/// user's password is checked against, so that a login as an unknown user
/// takes as long as one as a known user.
const DUMMY_HASH: &str = "$6$keepmondummy$pobi9RxhYAfrH8clgKBFods.esBsSHHj1E4qWNslbBT1XvJqKrinb4YXe222hlOp2/zq2iWZPGtnLQNIjiB9c1";

/// What `login` needs to decide: the configured methods and the files behind them.
pub struct LoginCheck<'a> {
    pub authtypes: &'a [AuthType],
    /// Contents of the user file (None: unreadable).
    pub userfile: Option<&'a str>,
    /// `/etc/shadow`-style `user:hash:...` lines for `getpwnam` (None: unreadable).
    pub shadow: Option<&'a str>,
    pub client: IpAddr,
}

/// The hash a login attempt is checked against, and whether it is the
/// user's own. An unknown user is checked against a stand-in of the same
/// cost (another user's hash in a userfile, so the same algorithm and cost;
/// else [`DUMMY_HASH`]), so a refusal takes as long for an unknown user as
/// for a known one and user names cannot be found by timing.
struct Candidate<'a> {
    hash: &'a str,
    known: bool,
}

fn userfile_candidate<'a>(users: &'a BTreeMap<String, String>, user: &str) -> Candidate<'a> {
    match users.get(user) {
        Some(hash) => Candidate { hash, known: true },
        None => Candidate {
            hash: users.values().next().map_or(DUMMY_HASH, String::as_str),
            known: false,
        },
    }
}

fn shadow_candidate<'a>(shadow: &'a str, user: &str) -> Candidate<'a> {
    let own = shadow.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == user).then_some(f.next()?)
    });
    match own {
        Some(hash) => Candidate { hash, known: true },
        None => Candidate {
            hash: DUMMY_HASH,
            known: false,
        },
    }
}

/// Verify against the candidate: always one full hash computation, and
/// never a match for a stand-in.
fn verify_candidate(password: &str, candidate: &Candidate<'_>) -> bool {
    let matched = verify_password(password, candidate.hash);
    matched && candidate.known
}

/// mon's `login`: the first auth type that accepts the user wins. An empty
/// user or password is refused (`trustlocal` needs no password, only a
/// loopback client). PAM is not built: it never accepts.
pub fn login_ok(check: &LoginCheck<'_>, user: &str, password: &str) -> bool {
    if user.is_empty() {
        return false;
    }
    check.authtypes.iter().any(|t| match t {
        AuthType::Userfile => {
            !password.is_empty()
                && check.userfile.is_some_and(|text| {
                    let users = parse_userfile(text);
                    verify_candidate(password, &userfile_candidate(&users, user))
                })
        }
        AuthType::Getpwnam | AuthType::Shadow => {
            !password.is_empty()
                && check
                    .shadow
                    .is_some_and(|text| verify_candidate(password, &shadow_candidate(text, user)))
        }
        AuthType::Trustlocal => check.client.is_loopback(),
        AuthType::Pam => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "
# comment
command section
list:        all
reset:       root,admin
ack:         AUTH_ANY
stop:        !joe,AUTH_ANY
Term: admin
nonsense line

trap section
127.0.0.1     *     *
*             mon   xyz
";

    #[test]
    fn command_rules_follow_mon() {
        let (auth, problems) = AuthFile::parse(AUTH);
        assert_eq!(
            problems,
            ["line 9: expected \"command: users\": nonsense line"]
        );
        let check = |user: Option<&str>, cmd: &str| auth.allows(user, cmd);
        assert!(check(None, "list"), "all: anyone, even unauthenticated");
        assert!(check(Some("joe"), "LIST"));
        assert!(!check(None, "reset"));
        assert!(check(Some("admin"), "reset"));
        assert!(!check(Some("joe"), "reset"));
        assert!(!check(None, "ack"), "AUTH_ANY needs a login");
        assert!(check(Some("anyone"), "ack"));
        assert!(!check(Some("joe"), "stop"), "!joe is checked first");
        assert!(check(Some("ann"), "stop"));
        assert!(check(Some("admin"), "term"), "command names are lowercased");
        assert!(!check(Some("admin"), "disable"), "default deny");
        assert_eq!(auth.traps.len(), 2);
        assert_eq!(auth.traps[1].user, "mon");
    }

    /// Regression (issue 19, finding 2): an unknown user was refused in
    /// 0.12 ms and a known one in 1.75 ms, so user names could be found by
    /// timing. Now an unknown user's password is checked against a hash of
    /// the same algorithm and cost, which never matches (the timing itself
    /// is measured by bench/auth, against Debian's mon).
    #[test]
    fn an_unknown_user_is_checked_against_a_stand_in_of_the_same_cost() {
        let bcrypt = pwhash::bcrypt::hash("secret").unwrap();
        let users = parse_userfile(&format!("ann:{bcrypt}\n"));
        let known = userfile_candidate(&users, "ann");
        let unknown = userfile_candidate(&users, "nobody");
        assert!(known.known && !unknown.known);
        assert_eq!(
            unknown.hash, known.hash,
            "another user's hash: same algorithm, same cost"
        );
        assert!(verify_candidate("secret", &known));
        assert!(
            !verify_candidate("secret", &unknown),
            "a stand-in never matches, even with that user's password"
        );
        // An empty userfile has no other user: the SHA-512 dummy stands in.
        let none = BTreeMap::new();
        assert_eq!(userfile_candidate(&none, "ann").hash, DUMMY_HASH);

        // /etc/shadow style: unknown users are checked against the dummy,
        // which is a real SHA-512 crypt hash (so verifying it costs as
        // much as a default shadow entry does).
        let sha512 = pwhash::sha512_crypt::hash("pw").unwrap();
        let shadow = format!("root:{sha512}:19000:0:99999:7:::\n");
        let root = shadow_candidate(&shadow, "root");
        let nobody = shadow_candidate(&shadow, "nobody");
        assert!(root.known && root.hash == sha512);
        assert!(!nobody.known && nobody.hash == DUMMY_HASH);
        assert!(DUMMY_HASH.starts_with("$6$") && sha512.starts_with("$6$"));
        assert!(!verify_candidate("pw", &nobody));
        assert!(verify_candidate("pw", &root));
        assert!(login_ok(
            &LoginCheck {
                authtypes: &[AuthType::Shadow],
                userfile: None,
                shadow: Some(&shadow),
                client: "192.0.2.1".parse().unwrap(),
            },
            "root",
            "pw"
        ));
    }

    // Old userfiles hold MD5 and DES hashes: they must still verify.
    #[allow(deprecated)]
    #[test]
    fn passwords_are_checked_against_crypt_hashes() {
        let md5 = pwhash::md5_crypt::hash("secret").unwrap();
        let sha512 = pwhash::sha512_crypt::hash("secret").unwrap();
        let bcrypt = pwhash::bcrypt::hash("secret").unwrap();
        // DES crypt as Apache's htpasswd -d writes it.
        let des = pwhash::unix_crypt::hash_with("ab", "secret").unwrap();
        for hash in [&md5, &sha512, &bcrypt, &des] {
            assert!(verify_password("secret", hash), "{hash}");
            assert!(!verify_password("wrong", hash), "{hash}");
        }
        assert!(!verify_password("", ""));
        assert!(!verify_password("secret", "not a hash"));

        let userfile = format!("# users\nann : {sha512}\nbob:{md5}\n");
        let check = LoginCheck {
            authtypes: &[AuthType::Userfile],
            userfile: Some(&userfile),
            shadow: None,
            client: "127.0.0.1".parse().unwrap(),
        };
        assert!(login_ok(&check, "ann", "secret"));
        assert!(login_ok(&check, "bob", "secret"));
        assert!(!login_ok(&check, "ann", "wrong"));
        assert!(!login_ok(&check, "carl", "secret"));
        assert!(!login_ok(&check, "ann", ""));

        let trust = LoginCheck {
            authtypes: &[AuthType::Trustlocal],
            userfile: None,
            shadow: None,
            client: "10.0.0.1".parse().unwrap(),
        };
        assert!(!login_ok(&trust, "ann", "x"), "trustlocal: loopback only");
        assert!(login_ok(
            &LoginCheck {
                client: "127.0.0.1".parse().unwrap(),
                ..trust
            },
            "ann",
            ""
        ));
    }
}
