//! The boolean language of `depend`, `alertdepend` and `monitordepend` (`g:s && !(h:t || SELF:u)`), replacing mon's Perl `eval`: parsing, canonical printing and evaluation; never looks up a service or its status (the caller answers through a callback).
//!
//! Grammar, loosest first (the word operators bind more loosely than the
//! symbols, as in Perl, so existing mon.cf expressions keep their meaning):
//!
//! ```text
//! expr     = and_word ("or" and_word)*
//! and_word = or_sym ("and" or_sym)*
//! or_sym   = and_sym ("||" and_sym)*
//! and_sym  = prefix (("&&")? prefix)*       juxtaposition is an implicit &&
//! prefix   = "!" prefix | "not" or_sym | "(" expr ")" | term
//! term     = name ":" name                  name = [A-Za-z0-9_.-]+
//! ```
//!
//! Binary operators are left-associative. `SELF` as a group means the watch
//! the expression belongs to ([`ServiceRef::resolve_self`]).
//!
//! Divergences from mon (see the mon reference, §9.1, §14.3 and §16):
//!
//! * `a:b c:d` is a Perl syntax error in mon that suppresses alerts forever;
//!   here two operands with no operator between them mean AND, and
//!   [`Parsed::legacy_space_separated`] lets the caller warn.
//! * Names match literally (mon substituted `\bg:s\b` unquoted, so `.` matched
//!   any character), and anything other than the grammar above is an error
//!   instead of arbitrary Perl.

use std::collections::BTreeSet;
use std::fmt;

use thiserror::Error;

/// Deepest nesting of `(`, `!` and `not` that [`parse`] accepts.
pub const MAX_NESTING: usize = 64;

/// Most `group:service` terms one expression may hold. This bounds the depth
/// of the tree that [`Expr::eval`], `Display` and `Drop` recurse through.
pub const MAX_TERMS: usize = 1000;

/// A `group:service` term.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceRef {
    pub group: String,
    pub service: String,
}

impl ServiceRef {
    /// The group name meaning "the watch this service belongs to".
    pub const SELF_GROUP: &'static str = "SELF";

    pub fn new(group: impl Into<String>, service: impl Into<String>) -> ServiceRef {
        ServiceRef {
            group: group.into(),
            service: service.into(),
        }
    }

    /// Whether the group is `SELF` (case-sensitive, as in mon).
    pub fn is_self(&self) -> bool {
        self.group == Self::SELF_GROUP
    }

    /// This reference with a `SELF` group replaced by `own_group`.
    pub fn resolve_self(&self, own_group: &str) -> ServiceRef {
        if self.is_self() {
            ServiceRef::new(own_group, self.service.clone())
        } else {
            self.clone()
        }
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.group, self.service)
    }
}

/// A dependency expression.
///
/// `Display` prints the canonical form (`&&`, `||`, `!`, the fewest
/// parentheses) that [`parse`] reads back to the same tree, provided every
/// name matches `[A-Za-z0-9_.-]+`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Ref(ServiceRef),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// The result of [`parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub expr: Expr,
    /// Some operands stood next to each other with no operator between them
    /// (`routers:ping serversbd2:ping`, as in mon's own example.cf) and were
    /// read as AND. mon failed on this; the caller should warn and suggest
    /// writing `a:b && c:d`.
    pub legacy_space_separated: bool,
}

/// Why a dependency expression was rejected. Columns are 1-based character
/// positions in the expression text.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DependError {
    #[error("empty dependency expression")]
    Empty,
    #[error("unexpected character {found:?} at column {column}")]
    UnexpectedCharacter { found: char, column: usize },
    /// A single `&` or `|`, which Perl read as a bitwise operator.
    #[error("{found:?} at column {column} is not an operator; write \"{found}{found}\"")]
    LoneOperatorCharacter { found: char, column: usize },
    #[error("'(' at column {column} is never closed")]
    UnclosedParen { column: usize },
    #[error("')' at column {column} has no matching '('")]
    UnmatchedParen { column: usize },
    #[error("empty parentheses at column {column}")]
    EmptyParens { column: usize },
    #[error("operator '{operator}' at column {column} is missing an operand")]
    MissingOperand { operator: String, column: usize },
    #[error("'{word}' at column {column} is missing its ':service' part (write group:service)")]
    MissingService { word: String, column: usize },
    #[error("expression nests deeper than {limit} levels at column {column}")]
    TooDeep { limit: usize, column: usize },
    #[error("expression has more than {limit} terms (column {column})")]
    TooManyTerms { limit: usize, column: usize },
}

/// Parses a dependency expression (see the module docs for the grammar).
pub fn parse(text: &str) -> Result<Parsed, DependError> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err(DependError::Empty);
    }
    let mut parser = Parser {
        tokens,
        position: 0,
        nesting: 0,
        juxtaposed: false,
    };
    let expr = parser.parse_expr()?;
    if let Some(token) = parser.peek() {
        // The loops of the parse_* methods consume every operator and every
        // token that can start an operand, so only a ')' can be left over.
        return Err(DependError::UnmatchedParen {
            column: token.column,
        });
    }
    Ok(Parsed {
        expr,
        legacy_space_separated: parser.juxtaposed,
    })
}

impl Expr {
    /// Same as [`parse`].
    pub fn parse(text: &str) -> Result<Parsed, DependError> {
        parse(text)
    }

    /// Every referenced service, in order of first appearance, without
    /// duplicates.
    pub fn refs(&self) -> Vec<ServiceRef> {
        let mut seen = BTreeSet::new();
        let mut refs = Vec::new();
        self.collect_refs(&mut seen, &mut refs);
        refs
    }

    /// Evaluates the expression, asking `ok` whether each referenced service
    /// counts as passing. Like Perl, `&&` and `||` short-circuit: `ok` is not
    /// asked about terms that cannot change the result.
    pub fn eval(&self, ok: &mut dyn FnMut(&ServiceRef) -> bool) -> bool {
        match self {
            Expr::Ref(service) => ok(service),
            Expr::Not(inner) => !inner.eval(ok),
            Expr::And(left, right) => left.eval(ok) && right.eval(ok),
            Expr::Or(left, right) => left.eval(ok) || right.eval(ok),
        }
    }

    /// This expression with every `SELF` group replaced by `own_group`.
    pub fn resolve_self(&self, own_group: &str) -> Expr {
        match self {
            Expr::Ref(service) => Expr::Ref(service.resolve_self(own_group)),
            Expr::Not(inner) => Expr::Not(Box::new(inner.resolve_self(own_group))),
            Expr::And(left, right) => Expr::And(
                Box::new(left.resolve_self(own_group)),
                Box::new(right.resolve_self(own_group)),
            ),
            Expr::Or(left, right) => Expr::Or(
                Box::new(left.resolve_self(own_group)),
                Box::new(right.resolve_self(own_group)),
            ),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Ref(service) => write!(f, "{service}"),
            Expr::Not(inner) => {
                f.write_str("!")?;
                inner.fmt_operand(f, Precedence::Not)
            }
            // Left-associative: a right operand of the same precedence needs
            // parentheses, a left one does not.
            Expr::And(left, right) => {
                left.fmt_operand(f, Precedence::And)?;
                f.write_str(" && ")?;
                right.fmt_operand(f, Precedence::Not)
            }
            Expr::Or(left, right) => {
                left.fmt_operand(f, Precedence::Or)?;
                f.write_str(" || ")?;
                right.fmt_operand(f, Precedence::And)
            }
        }
    }
}

/// How tightly an expression binds when printed with symbol operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    Or,
    And,
    Not,
    Atom,
}

impl Expr {
    fn precedence(&self) -> Precedence {
        match self {
            Expr::Ref(_) => Precedence::Atom,
            Expr::Not(_) => Precedence::Not,
            Expr::And(..) => Precedence::And,
            Expr::Or(..) => Precedence::Or,
        }
    }

    /// Prints `self` as an operand that must bind at least as tightly as
    /// `minimum`, adding parentheses when it does not.
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, minimum: Precedence) -> fmt::Result {
        if self.precedence() < minimum {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }

    fn collect_refs<'a>(&'a self, seen: &mut BTreeSet<&'a ServiceRef>, refs: &mut Vec<ServiceRef>) {
        match self {
            Expr::Ref(service) => {
                if seen.insert(service) {
                    refs.push(service.clone());
                }
            }
            Expr::Not(inner) => inner.collect_refs(seen, refs),
            Expr::And(left, right) | Expr::Or(left, right) => {
                left.collect_refs(seen, refs);
                right.collect_refs(seen, refs);
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TokenKind {
    Term(ServiceRef),
    /// `&&`
    SymbolAnd,
    /// `||`
    SymbolOr,
    /// `!`
    SymbolNot,
    /// `and`
    WordAnd,
    /// `or`
    WordOr,
    /// `not`
    WordNot,
    Open,
    Close,
}

impl TokenKind {
    fn is_operator(&self) -> bool {
        !matches!(
            self,
            TokenKind::Term(_) | TokenKind::Open | TokenKind::Close
        )
    }

    fn starts_operand(&self) -> bool {
        matches!(
            self,
            TokenKind::Term(_) | TokenKind::Open | TokenKind::SymbolNot | TokenKind::WordNot
        )
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            TokenKind::Term(service) => return write!(f, "{service}"),
            TokenKind::SymbolAnd => "&&",
            TokenKind::SymbolOr => "||",
            TokenKind::SymbolNot => "!",
            TokenKind::WordAnd => "and",
            TokenKind::WordOr => "or",
            TokenKind::WordNot => "not",
            TokenKind::Open => "(",
            TokenKind::Close => ")",
        };
        f.write_str(text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    kind: TokenKind,
    /// 1-based character position of the token's first character.
    column: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn lex(text: &str) -> Result<Vec<Token>, DependError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut terms = 0;
    let mut index = 0;
    while let Some(&c) = chars.get(index) {
        let column = index + 1;
        if c.is_whitespace() {
            index += 1;
            continue;
        }
        let kind = match c {
            '(' => {
                index += 1;
                TokenKind::Open
            }
            ')' => {
                index += 1;
                TokenKind::Close
            }
            '!' => {
                index += 1;
                TokenKind::SymbolNot
            }
            '&' | '|' => {
                if chars.get(index + 1) != Some(&c) {
                    return Err(DependError::LoneOperatorCharacter { found: c, column });
                }
                index += 2;
                if c == '&' {
                    TokenKind::SymbolAnd
                } else {
                    TokenKind::SymbolOr
                }
            }
            c if is_name_char(c) => {
                let group_end = name_end(&chars, index);
                let group: String = chars[index..group_end].iter().collect();
                if chars.get(group_end) != Some(&':') {
                    index = group_end;
                    match group.as_str() {
                        "and" => TokenKind::WordAnd,
                        "or" => TokenKind::WordOr,
                        "not" => TokenKind::WordNot,
                        _ => {
                            return Err(DependError::MissingService {
                                word: group,
                                column,
                            });
                        }
                    }
                } else {
                    let service_start = group_end + 1;
                    let service_end = name_end(&chars, service_start);
                    if service_end == service_start {
                        let word = format!("{group}:");
                        return Err(DependError::MissingService { word, column });
                    }
                    terms += 1;
                    if terms > MAX_TERMS {
                        return Err(DependError::TooManyTerms {
                            limit: MAX_TERMS,
                            column,
                        });
                    }
                    index = service_end;
                    let service: String = chars[service_start..service_end].iter().collect();
                    TokenKind::Term(ServiceRef { group, service })
                }
            }
            other => {
                return Err(DependError::UnexpectedCharacter {
                    found: other,
                    column,
                });
            }
        };
        tokens.push(Token { kind, column });
    }
    Ok(tokens)
}

/// The index just past the run of name characters starting at `start`.
fn name_end(chars: &[char], start: usize) -> usize {
    let length = chars.get(start..).map_or(0, |rest| {
        rest.iter().take_while(|&&c| is_name_char(c)).count()
    });
    start + length
}

/// Recursive descent over the tokens; one method per grammar rule.
struct Parser {
    tokens: Vec<Token>,
    position: usize,
    /// Current depth of `(`, `!` and `not`, bounded by [`MAX_NESTING`].
    nesting: usize,
    /// Whether an implicit AND was inserted between juxtaposed operands.
    juxtaposed: bool,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next_is(&self, kind: &TokenKind) -> bool {
        self.peek().is_some_and(|token| token.kind == *kind)
    }

    /// Consumes the next token if it is `kind`.
    fn eat(&mut self, kind: &TokenKind) -> bool {
        let matched = self.next_is(kind);
        if matched {
            self.position += 1;
        }
        matched
    }

    /// `expr = and_word ("or" and_word)*`
    fn parse_expr(&mut self) -> Result<Expr, DependError> {
        let mut left = self.parse_and_word()?;
        while self.eat(&TokenKind::WordOr) {
            let right = self.parse_and_word()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `and_word = or_sym ("and" or_sym)*`
    fn parse_and_word(&mut self) -> Result<Expr, DependError> {
        let mut left = self.parse_or_symbol()?;
        while self.eat(&TokenKind::WordAnd) {
            let right = self.parse_or_symbol()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `or_sym = and_sym ("||" and_sym)*`
    fn parse_or_symbol(&mut self) -> Result<Expr, DependError> {
        let mut left = self.parse_and_symbol()?;
        while self.eat(&TokenKind::SymbolOr) {
            let right = self.parse_and_symbol()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `and_sym = prefix (("&&")? prefix)*`
    fn parse_and_symbol(&mut self) -> Result<Expr, DependError> {
        let mut left = self.parse_prefix()?;
        loop {
            if !self.eat(&TokenKind::SymbolAnd) {
                let juxtaposed = self.peek().is_some_and(|token| token.kind.starts_operand());
                if !juxtaposed {
                    return Ok(left);
                }
                self.juxtaposed = true;
            }
            let right = self.parse_prefix()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    /// `prefix = "!" prefix | "not" or_sym | "(" expr ")" | term`
    fn parse_prefix(&mut self) -> Result<Expr, DependError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.missing_operand());
        };
        match token.kind {
            TokenKind::Term(service) => {
                self.position += 1;
                Ok(Expr::Ref(service))
            }
            TokenKind::SymbolNot => {
                self.position += 1;
                self.enter(token.column)?;
                let inner = self.parse_prefix()?;
                self.nesting -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            // Perl's `not` takes everything up to the next `and`/`or`:
            // `not a:b && c:d` is `!(a:b && c:d)`.
            TokenKind::WordNot => {
                self.position += 1;
                self.enter(token.column)?;
                let inner = self.parse_or_symbol()?;
                self.nesting -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            TokenKind::Open => {
                self.position += 1;
                self.enter(token.column)?;
                let inner = self.parse_expr()?;
                if !self.eat(&TokenKind::Close) {
                    return Err(DependError::UnclosedParen {
                        column: token.column,
                    });
                }
                self.nesting -= 1;
                Ok(inner)
            }
            _ => Err(self.missing_operand()),
        }
    }

    fn enter(&mut self, column: usize) -> Result<(), DependError> {
        if self.nesting >= MAX_NESTING {
            return Err(DependError::TooDeep {
                limit: MAX_NESTING,
                column,
            });
        }
        self.nesting += 1;
        Ok(())
    }

    /// The error for "an operand was expected at the current position but the
    /// next token (if any) cannot start one".
    fn missing_operand(&self) -> DependError {
        let previous = self
            .position
            .checked_sub(1)
            .and_then(|index| self.tokens.get(index));
        // An operator just before the gap is the one lacking an operand:
        // `a:b &&`, `!)`, `a:b && || c:d`.
        if let Some(operator) = previous.filter(|token| token.kind.is_operator()) {
            return missing_operand_of(operator);
        }
        let after_open = previous.filter(|token| token.kind == TokenKind::Open);
        match (after_open, self.peek()) {
            (Some(open), None) => DependError::UnclosedParen {
                column: open.column,
            },
            (Some(open), Some(close)) if close.kind == TokenKind::Close => {
                DependError::EmptyParens {
                    column: open.column,
                }
            }
            (None, Some(close)) if close.kind == TokenKind::Close => DependError::UnmatchedParen {
                column: close.column,
            },
            // A binary operator with nothing on its left: `&& a:b`, `(or a:b)`.
            (_, Some(operator)) => missing_operand_of(operator),
            // An operand is only expected at the start, after an operator or
            // after '(' (all handled above), so this is the empty start.
            (None, None) => DependError::Empty,
        }
    }
}

fn missing_operand_of(token: &Token) -> DependError {
    DependError::MissingOperand {
        operator: token.kind.to_string(),
        column: token.column,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Parses `input` and checks its canonical form and the legacy flag.
    fn check(input: &str, canonical: &str, legacy: bool) {
        let parsed = parse(input).unwrap_or_else(|error| panic!("{input:?}: {error}"));
        assert_eq!(parsed.expr.to_string(), canonical, "input: {input:?}");
        assert_eq!(
            parsed.legacy_space_separated, legacy,
            "legacy flag for {input:?}"
        );
        let reparsed = parse(canonical).unwrap_or_else(|error| panic!("{canonical:?}: {error}"));
        assert_eq!(reparsed.expr, parsed.expr, "round trip of {input:?}");
        assert!(
            !reparsed.legacy_space_separated,
            "canonical form {canonical:?} is legacy"
        );
    }

    fn check_error(input: &str, expected: &str) {
        match parse(input) {
            Ok(parsed) => panic!("{input:?} parsed as {}", parsed.expr),
            Err(error) => assert_eq!(error.to_string(), expected, "input: {input:?}"),
        }
    }

    /// Evaluates `input` with every service in `failing` failing and every
    /// other one passing.
    fn check_eval(input: &str, failing: &[&str], expected: bool) {
        let parsed = parse(input).unwrap_or_else(|error| panic!("{input:?}: {error}"));
        let mut ok = |service: &ServiceRef| !failing.contains(&service.to_string().as_str());
        assert_eq!(
            parsed.expr.eval(&mut ok),
            expected,
            "{input:?} with {failing:?} failing"
        );
    }

    fn service(text: &str) -> ServiceRef {
        let (group, service) = text.split_once(':').expect("test refs are group:service");
        ServiceRef::new(group, service)
    }

    #[test]
    fn parses_and_prints_canonically() {
        let table = [
            ("serversbd1:ping", "serversbd1:ping"),
            ("  SELF:http ", "SELF:http"),
            ("a-1.b_2:c.d-e_f", "a-1.b_2:c.d-e_f"),
            ("a:b&&c:d", "a:b && c:d"),
            ("a:b || c:d && e:f", "a:b || c:d && e:f"),
            ("(a:b || c:d) && e:f", "(a:b || c:d) && e:f"),
            ("a:b && (c:d && e:f)", "a:b && (c:d && e:f)"),
            ("(a:b && c:d) && e:f", "a:b && c:d && e:f"),
            ("a:b || (c:d || e:f)", "a:b || (c:d || e:f)"),
            ("((a:b))", "a:b"),
            ("!a:b && c:d", "!a:b && c:d"),
            ("!(a:b && c:d)", "!(a:b && c:d)"),
            ("!!a:b", "!!a:b"),
            ("! ( ! a:b )", "!!a:b"),
            ("!(a:b || c:d) || !e:f", "!(a:b || c:d) || !e:f"),
            // Perl's word operators, looser than the symbols.
            ("a:b and c:d", "a:b && c:d"),
            ("a:b or c:d and e:f", "a:b || c:d && e:f"),
            ("a:b || c:d and e:f", "(a:b || c:d) && e:f"),
            ("not a:b && c:d", "!(a:b && c:d)"),
            ("not a:b and c:d", "!a:b && c:d"),
            ("a:b && not c:d || e:f", "a:b && !(c:d || e:f)"),
            ("not not a:b", "!!a:b"),
            // Words are operators only without a ':'.
            ("and:or && not:x", "and:or && not:x"),
        ];
        for (input, canonical) in table {
            check(input, canonical, false);
        }
    }

    #[test]
    fn juxtaposition_is_and_and_flagged() {
        let table = [
            // mon's own example.cf.
            (
                "routers:ping serversbd2:ping",
                "routers:ping && serversbd2:ping",
            ),
            ("a:b c:d e:f", "a:b && c:d && e:f"),
            ("a:b && c:d e:f", "a:b && c:d && e:f"),
            ("a:b || c:d e:f", "a:b || c:d && e:f"),
            ("(a:b) (c:d || e:f)", "a:b && (c:d || e:f)"),
            ("a:b !c:d", "a:b && !c:d"),
            ("a:b not c:d", "a:b && !c:d"),
        ];
        for (input, canonical) in table {
            check(input, canonical, true);
        }
    }

    #[test]
    fn errors() {
        let table = [
            ("", "empty dependency expression"),
            (" \t ", "empty dependency expression"),
            (
                "a:b & c:d",
                "'&' at column 5 is not an operator; write \"&&\"",
            ),
            (
                "a:b | c:d",
                "'|' at column 5 is not an operator; write \"||\"",
            ),
            (
                "a:b &&& c:d",
                "'&' at column 7 is not an operator; write \"&&\"",
            ),
            ("a:b == c:d", "unexpected character '=' at column 5"),
            ("$a:b", "unexpected character '$' at column 1"),
            ("a:b:c", "unexpected character ':' at column 4"),
            ("a:b && é:x", "unexpected character 'é' at column 8"),
            ("(a:b", "'(' at column 1 is never closed"),
            ("a:b && (c:d || (e:f)", "'(' at column 8 is never closed"),
            ("a:b && (", "'(' at column 8 is never closed"),
            ("a:b)", "')' at column 4 has no matching '('"),
            (")", "')' at column 1 has no matching '('"),
            ("(a:b))", "')' at column 6 has no matching '('"),
            ("()", "empty parentheses at column 1"),
            ("a:b && ()", "empty parentheses at column 8"),
            ("a:b &&", "operator '&&' at column 5 is missing an operand"),
            ("&& a:b", "operator '&&' at column 1 is missing an operand"),
            (
                "a:b && || c:d",
                "operator '&&' at column 5 is missing an operand",
            ),
            ("!", "operator '!' at column 1 is missing an operand"),
            (
                "a:b || !)",
                "operator '!' at column 8 is missing an operand",
            ),
            (
                "(|| a:b)",
                "operator '||' at column 2 is missing an operand",
            ),
            ("not", "operator 'not' at column 1 is missing an operand"),
            ("a:b or", "operator 'or' at column 5 is missing an operand"),
            (
                "and a:b",
                "operator 'and' at column 1 is missing an operand",
            ),
            (
                "ping",
                "'ping' at column 1 is missing its ':service' part (write group:service)",
            ),
            (
                "a:b && c",
                "'c' at column 8 is missing its ':service' part (write group:service)",
            ),
            (
                "a:b && c:",
                "'c:' at column 8 is missing its ':service' part (write group:service)",
            ),
            (
                "a : b",
                "'a' at column 1 is missing its ':service' part (write group:service)",
            ),
            (
                "1",
                "'1' at column 1 is missing its ':service' part (write group:service)",
            ),
            (
                "AND",
                "'AND' at column 1 is missing its ':service' part (write group:service)",
            ),
        ];
        for (input, expected) in table {
            check_error(input, expected);
        }
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |depth: usize| format!("{}a:b{}", "(".repeat(depth), ")".repeat(depth));
        check(&nested(MAX_NESTING), "a:b", false);
        check_error(
            &nested(MAX_NESTING + 1),
            "expression nests deeper than 64 levels at column 65",
        );
        check_error(
            &"(".repeat(10_000),
            "expression nests deeper than 64 levels at column 65",
        );
        check_error(
            &"!".repeat(10_000),
            "expression nests deeper than 64 levels at column 65",
        );
        check_error(
            &"not ".repeat(10_000),
            "expression nests deeper than 64 levels at column 257",
        );
        check_error(
            &"a:b && (".repeat(100),
            "expression nests deeper than 64 levels at column 520",
        );
    }

    #[test]
    fn term_count_is_limited() {
        let terms = |count: usize| vec!["a:b"; count].join(" && ");
        assert!(parse(&terms(MAX_TERMS)).is_ok());
        check_error(
            &terms(MAX_TERMS + 1),
            "expression has more than 1000 terms (column 7001)",
        );
        check_error(
            &"a:b ".repeat(100_000),
            "expression has more than 1000 terms (column 4001)",
        );
    }

    #[test]
    fn evaluates() {
        let table: [(&str, &[&str], bool); 14] = [
            ("a:b", &[], true),
            ("a:b", &["a:b"], false),
            ("!a:b", &["a:b"], true),
            ("a:b && c:d", &["c:d"], false),
            ("a:b || c:d", &["c:d"], true),
            ("a:b || c:d", &["a:b", "c:d"], false),
            ("routers:ping serversbd2:ping", &[], true),
            ("routers:ping serversbd2:ping", &["serversbd2:ping"], false),
            ("a:b || c:d && e:f", &["a:b", "e:f"], false),
            ("(a:b || c:d) && e:f", &["a:b"], true),
            ("not a:b && c:d", &["c:d"], true),
            ("not a:b and c:d", &["c:d"], false),
            ("a:b.c", &["a:bxc"], true),
            ("SELF:x", &["SELF:x"], false),
        ];
        for (input, failing, expected) in table {
            check_eval(input, failing, expected);
        }
    }

    #[test]
    fn eval_short_circuits() {
        let parsed = parse("a:b || c:d && e:f").expect("valid");
        let mut asked = Vec::new();
        let result = parsed.expr.eval(&mut |service| {
            asked.push(service.to_string());
            true
        });
        assert!(result);
        assert_eq!(asked, ["a:b"]);
    }

    #[test]
    fn refs_are_ordered_and_unique() {
        let parsed = parse("c:d && (a:b || !c:d) || SELF:x && a:b").expect("valid");
        let expected = [service("c:d"), service("a:b"), service("SELF:x")];
        assert_eq!(parsed.expr.refs(), expected);
    }

    #[test]
    fn resolves_self() {
        assert_eq!(
            service("SELF:http").resolve_self("web"),
            service("web:http")
        );
        assert_eq!(service("db:ping").resolve_self("web"), service("db:ping"));
        assert_eq!(
            service("self:http").resolve_self("web"),
            service("self:http")
        );
        let parsed = parse("SELF:ping && !(db:ping || SELF:http)").expect("valid");
        let resolved = parsed.expr.resolve_self("web");
        assert_eq!(resolved.to_string(), "web:ping && !(db:ping || web:http)");
    }

    #[test]
    fn service_ref_display() {
        assert_eq!(
            ServiceRef::new("routers", "ping").to_string(),
            "routers:ping"
        );
    }

    fn arbitrary_ref() -> impl Strategy<Value = ServiceRef> {
        let name = "[A-Za-z0-9_.-]{1,6}|SELF|and|or|not";
        (name, name).prop_map(|(group, service)| ServiceRef { group, service })
    }

    fn arbitrary_expr() -> impl Strategy<Value = Expr> {
        arbitrary_ref()
            .prop_map(Expr::Ref)
            .prop_recursive(8, 64, 2, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                    (inner.clone(), inner.clone())
                        .prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
                    (inner.clone(), inner).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
                ]
            })
    }

    proptest! {
        #[test]
        fn canonical_form_round_trips(expr in arbitrary_expr()) {
            let text = expr.to_string();
            let parsed = parse(&text);
            prop_assert_eq!(parsed, Ok(Parsed { expr, legacy_space_separated: false }), "text: {}", text);
        }

        #[test]
        fn parse_never_panics(text in "[a-c:&|!() \tnotard]{0,40}|.{0,60}") {
            if let Ok(parsed) = parse(&text) {
                let reparsed = parse(&parsed.expr.to_string()).map(|p| p.expr);
                prop_assert_eq!(reparsed, Ok(parsed.expr));
            }
        }
    }
}
