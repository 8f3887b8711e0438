//! Who is asking, for the web's actions: basic-auth credentials, API tokens (a file of SHA-256 hashes) and the CSRF token of the page forms; pure checks, the files are read by the caller.
//!
//! Logins are checked with the mon port's rules (`monproto::auth`: the
//! configured authtypes, the userfile's crypt hashes) and each action with
//! auth.cf's rule for its command, so one auth.cf governs both doors.

use std::collections::BTreeMap;

use base64::Engine;
use ring::digest;

/// `Authorization: Basic …` → (user, password).
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `Authorization: Bearer …` → the token.
pub fn bearer_token(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The tokens file: `user sha256-hex` lines (`#` comments). A token acts
/// as that user for auth.cf. Returns the tokens and the lines not read.
pub fn parse_tokens(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut tokens = BTreeMap::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            [user, hash] if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                tokens.insert(hash.to_ascii_lowercase(), user.to_string());
            }
            _ => problems.push(format!(
                "line {}: expected \"user sha256-hex-of-token\"",
                n + 1
            )),
        }
    }
    (tokens, problems)
}

/// The hex SHA-256 of a token, as the tokens file holds it
/// (`printf %s TOKEN | sha256sum`).
pub fn token_hash(token: &str) -> String {
    hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Whose token this is (the hash is looked up, the token never stored).
pub fn token_user<'a>(tokens: &'a BTreeMap<String, String>, token: &str) -> Option<&'a str> {
    tokens.get(&token_hash(token)).map(String::as_str)
}

/// Is the form's CSRF token the page's? (Constant time in the length of
/// the expected token.)
pub fn csrf_ok(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else {
        return false;
    };
    if expected.is_empty() || given.len() != expected.len() {
        return false;
    }
    expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Are two secrets equal? Their SHA-256 digests are compared in constant
/// time, so neither the content nor the length of the expected one leaks.
pub fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    let a = digest::digest(&digest::SHA256, expected);
    let b = digest::digest(&digest::SHA256, given);
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Lowercase hex of bytes (random CSRF tokens, hashes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_headers() {
        // "ann:s3cret:with colon"
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ann:s3cret:with colon")
        );
        assert_eq!(
            basic_credentials(&header),
            Some(("ann".into(), "s3cret:with colon".into()))
        );
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(bearer_token("Bearer abc "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn tokens_are_looked_up_by_hash() {
        let hash = token_hash("let-me-in");
        assert_eq!(hash.len(), 64);
        let (tokens, problems) = parse_tokens(&format!(
            "# ops\nrobot {hash}\nbroken line here\nshort abc\n"
        ));
        assert_eq!(
            problems,
            [
                "line 3: expected \"user sha256-hex-of-token\"",
                "line 4: expected \"user sha256-hex-of-token\""
            ]
        );
        assert_eq!(token_user(&tokens, "let-me-in"), Some("robot"));
        assert_eq!(token_user(&tokens, "let-me-out"), None);
        assert_eq!(
            token_user(&tokens, &hash),
            None,
            "the hash is not the token"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"pw", b"pw"));
        assert!(!same_secret(b"pw", b"pw2"));
        assert!(!same_secret(b"pw", b""));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_ok("abcd", Some("abcd")));
        assert!(!csrf_ok("abcd", Some("abce")));
        assert!(!csrf_ok("abcd", Some("abc")));
        assert!(!csrf_ok("abcd", None));
        assert!(!csrf_ok("", Some("")));
    }
}
