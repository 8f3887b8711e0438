//! The `when` language of route announcements: a boolean expression over the daemon's state — `quorum:VS`, `service:GROUP/SERVICE`, `vrrp:NAME` or `vrrp:NAME=STATE`, `true`/`false`, with `!`, `&&`, `||` and parentheses; parsing and evaluation are pure.

use std::fmt;

/// The deepest nesting of parentheses and `!` accepted.
const MAX_DEPTH: usize = 64;

/// A parsed condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    Const(bool),
    /// The virtual server has quorum.
    Quorum(String),
    /// The service passes (not a failure opstatus).
    Service {
        group: String,
        service: String,
    },
    /// The VRRP instance is in this state (MASTER when none is written).
    Vrrp {
        instance: String,
        state: VrrpState,
    },
    Not(Box<When>),
    And(Box<When>, Box<When>),
    Or(Box<When>, Box<When>),
}

/// The VRRP states a condition can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VrrpState {
    Init,
    Backup,
    Master,
    Fault,
}

impl VrrpState {
    pub fn name(self) -> &'static str {
        match self {
            VrrpState::Init => "INIT",
            VrrpState::Backup => "BACKUP",
            VrrpState::Master => "MASTER",
            VrrpState::Fault => "FAULT",
        }
    }

    /// A state by its name (any case).
    pub fn parse(text: &str) -> Option<VrrpState> {
        Some(match text.to_ascii_uppercase().as_str() {
            "INIT" => VrrpState::Init,
            "BACKUP" => VrrpState::Backup,
            "MASTER" => VrrpState::Master,
            "FAULT" => VrrpState::Fault,
            _ => return None,
        })
    }
}

/// What a condition reads of the daemon's state.
pub trait Facts {
    /// None when the virtual server is unknown (counts as no quorum).
    fn quorum(&self, virtual_server: &str) -> Option<bool>;
    /// None when the service is unknown (counts as failing).
    fn service_ok(&self, group: &str, service: &str) -> Option<bool>;
    /// None when the instance is not running.
    fn vrrp_state(&self, instance: &str) -> Option<VrrpState>;
}

impl When {
    /// Parse a condition; the error names the offending text.
    pub fn parse(text: &str) -> Result<When, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.or(0)?;
        match parser.tokens.get(parser.at) {
            None => Ok(expr),
            Some(extra) => Err(format!("unexpected \"{extra}\" after a complete condition")),
        }
    }

    pub fn eval(&self, facts: &dyn Facts) -> bool {
        match self {
            When::Const(value) => *value,
            When::Quorum(vs) => facts.quorum(vs).unwrap_or(false),
            When::Service { group, service } => facts.service_ok(group, service).unwrap_or(false),
            When::Vrrp { instance, state } => facts.vrrp_state(instance) == Some(*state),
            When::Not(inner) => !inner.eval(facts),
            When::And(a, b) => a.eval(facts) && b.eval(facts),
            When::Or(a, b) => a.eval(facts) || b.eval(facts),
        }
    }

    /// Every atom, for validation (do the names exist?).
    pub fn atoms(&self) -> Vec<&When> {
        match self {
            When::Not(inner) => inner.atoms(),
            When::And(a, b) | When::Or(a, b) => {
                let mut all = a.atoms();
                all.extend(b.atoms());
                all
            }
            atom => vec![atom],
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Const(value) => write!(f, "{value}"),
            When::Quorum(vs) => write!(f, "quorum:{vs}"),
            When::Service { group, service } => write!(f, "service:{group}/{service}"),
            When::Vrrp { instance, state } => write!(f, "vrrp:{instance}={}", state.name()),
            When::Not(inner) => write!(f, "!{inner}"),
            When::And(a, b) => write!(f, "({a} && {b})"),
            When::Or(a, b) => write!(f, "({a} || {b})"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' | ')' | '!' => tokens.push(c.to_string()),
            '&' | '|' => {
                if chars.next_if(|(_, d)| *d == c).is_none() {
                    return Err(format!("\"{c}\" at column {}: write \"{c}{c}\"", i + 1));
                }
                tokens.push(format!("{c}{c}"));
            }
            _ => {
                let mut word = String::from(c);
                while let Some((_, d)) =
                    chars.next_if(|(_, d)| !d.is_whitespace() && !"()!&|".contains(*d))
                {
                    word.push(d);
                }
                tokens.push(word);
            }
        }
    }
    if tokens.is_empty() {
        return Err("empty condition".to_string());
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn or(&mut self, depth: usize) -> Result<When, String> {
        let mut left = self.and(depth)?;
        while self.eat("||") {
            let right = self.and(depth)?;
            left = When::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<When, String> {
        let mut left = self.unary(depth)?;
        while self.eat("&&") {
            let right = self.unary(depth)?;
            left = When::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<When, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        if self.eat("!") {
            return Ok(When::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.eat("(") {
            let inner = self.or(depth + 1)?;
            if !self.eat(")") {
                return Err("missing \")\"".to_string());
            }
            return Ok(inner);
        }
        let Some(word) = self.tokens.get(self.at).cloned() else {
            return Err("the condition ends too early".to_string());
        };
        self.at += 1;
        atom(&word)
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.tokens.get(self.at).is_some_and(|t| t == token) {
            self.at += 1;
            true
        } else {
            false
        }
    }
}

fn atom(word: &str) -> Result<When, String> {
    match word {
        "true" => return Ok(When::Const(true)),
        "false" => return Ok(When::Const(false)),
        _ => {}
    }
    let Some((kind, rest)) = word.split_once(':') else {
        return Err(format!(
            "\"{word}\" is not a condition (quorum:VS, service:GROUP/SERVICE, vrrp:NAME[=STATE], true, false)"
        ));
    };
    if rest.is_empty() {
        return Err(format!("\"{word}\" names nothing after \"{kind}:\""));
    }
    match kind {
        "quorum" => Ok(When::Quorum(rest.to_string())),
        "service" => match rest.split_once(['/', ':']) {
            Some((group, service)) if !group.is_empty() && !service.is_empty() => {
                Ok(When::Service {
                    group: group.to_string(),
                    service: service.to_string(),
                })
            }
            _ => Err(format!("\"{word}\": write service:GROUP/SERVICE")),
        },
        "vrrp" => {
            let (instance, state) = match rest.split_once('=') {
                Some((instance, state)) => (
                    instance,
                    VrrpState::parse(state).ok_or_else(|| {
                        format!("\"{state}\" is not a VRRP state (MASTER, BACKUP, FAULT, INIT)")
                    })?,
                ),
                None => (rest, VrrpState::Master),
            };
            if instance.is_empty() {
                return Err(format!("\"{word}\" names no VRRP instance"));
            }
            Ok(When::Vrrp {
                instance: instance.to_string(),
                state,
            })
        }
        other => Err(format!(
            "\"{other}:\" is not a kind of condition (quorum:, service:, vrrp:)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct State;

    impl Facts for State {
        fn quorum(&self, vs: &str) -> Option<bool> {
            match vs {
                "web" => Some(true),
                "db" => Some(false),
                _ => None,
            }
        }
        fn service_ok(&self, group: &str, service: &str) -> Option<bool> {
            (group == "g").then_some(service == "up")
        }
        fn vrrp_state(&self, instance: &str) -> Option<VrrpState> {
            (instance == "VI_1").then_some(VrrpState::Backup)
        }
    }

    fn check(text: &str, expected: bool) {
        let when = When::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(when.eval(&State), expected, "{text} = {when}");
        // Display round-trips.
        assert_eq!(When::parse(&when.to_string()).as_ref(), Ok(&when), "{when}");
    }

    #[test]
    fn conditions_evaluate_over_the_state() {
        check("quorum:web", true);
        check("quorum:db", false);
        check("quorum:nosuch", false);
        check("quorum:web && !vrrp:VI_1=FAULT", true);
        check("vrrp:VI_1", false);
        check("vrrp:VI_1=backup", true);
        check("service:g/up && service:g:up", true);
        check("service:g/down || (quorum:db || !quorum:web)", false);
        check("!(quorum:db) && true", true);
        check("false || true && false", false);
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        for (text, wanted) in [
            ("", "empty"),
            ("quorum:web &", "write \"&&\""),
            ("quorum:web &&", "ends too early"),
            ("(quorum:web", "missing \")\""),
            ("quorum:web quorum:db", "unexpected \"quorum:db\""),
            ("web", "is not a condition"),
            ("vrrp:VI_1=LEADER", "not a VRRP state"),
            ("service:g", "service:GROUP/SERVICE"),
            ("route:x", "not a kind of condition"),
            ("quorum:", "names nothing"),
        ] {
            let error = When::parse(text).expect_err(text);
            assert!(error.contains(wanted), "{text}: {error}");
        }
        let deep = format!("{}true{}", "(".repeat(100), ")".repeat(100));
        assert!(When::parse(&deep).unwrap_err().contains("nested deeper"));
    }
}
