//! HAProxy 2.6's lexical rules (src/tools.c `parse_line` as `readcfgfile` calls it): words, `#` comments, backslash escapes, single and double quotes, `"${VAR}"` expansion; knows no keywords.
//!
//! Rules, as HAProxy applies them:
//!
//! - Leading blanks are skipped; a line whose first word is empty is blank.
//! - Blanks separate words; `#` outside quotes ends the line.
//! - `'...'` quotes literally: no escapes, no variables.
//! - `"..."` keeps blanks and `#`, allows escapes and expands `$NAME`,
//!   `${NAME}`, `${NAME-default}` and `${NAME[*]}` (one word per
//!   blank-separated part) from the environment (an unset name is empty),
//!   plus HAProxy's `.LINE`, `.FILE` and `.SECTION`. Outside double quotes
//!   `$` is an ordinary character.
//! - Outside single quotes `\` escapes a blank, `\\`, `\#`, `\'`, `\"`,
//!   `\t`, `\n`, `\r`, `\xHH`, and `\$` inside double quotes; any other
//!   backslash stays as written.
//! - An unmatched quote or brace, a bad variable name or a bad `\x` is an
//!   error at the line and the line is dropped, as HAProxy does.

use std::path::Path;
use std::sync::Arc;

use crate::config::diag::{Diagnostics, Location};

/// One word after unquoting, with the column (1-based, in characters) where
/// it starts in the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub col: u32,
}

/// One non-blank line: its words, trailing empty words removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub loc: Location,
    pub words: Vec<Word>,
}

impl Line {
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    /// Word `index`, or "" past the end (HAProxy's `*args[i] == 0`).
    pub fn word(&self, index: usize) -> &str {
        self.words.get(index).map_or("", |w| w.text.as_str())
    }

    /// Where word `index` starts (the line's start past the end).
    pub fn word_loc(&self, index: usize) -> Location {
        let mut loc = self.loc.clone();
        if let Some(word) = self.words.get(index) {
            loc.col = word.col;
        }
        loc
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// What the lexer asks about the machine: environment variables.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// HAProxy's section keywords, which set `.SECTION`.
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "resolvers",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
];

/// Split `text` into lines of words, reporting lexical errors.
pub fn lex(text: &str, file: &Arc<Path>, env: &dyn Env, diags: &mut Diagnostics) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut section = String::new();
    for (index, raw) in text.split('\n').enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let chars: Vec<char> = raw.chars().collect();
        let start = chars
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(chars.len());
        if chars.get(start) == Some(&'[') {
            diags.error(
                Location::new(file, number, to_col(start)),
                "keepmon cannot run this as HAProxy does: `[file:scope]` lines are not supported",
            );
            continue;
        }
        let context = Context {
            file,
            line: number,
            section: &section,
            env,
        };
        match split(&chars, start, &context) {
            Ok(mut words) => {
                while words.last().is_some_and(|w| w.text.is_empty()) {
                    words.pop();
                }
                if words.first().is_none_or(|w| w.text.is_empty()) {
                    continue;
                }
                if SECTIONS.contains(&words[0].text.as_str()) {
                    section = words[0].text.clone();
                }
                let col = words[0].col;
                lines.push(Line {
                    loc: Location::new(file, number, col),
                    words,
                });
            }
            Err((at, message)) => diags.error(
                Location::new(file, number, to_col(at)),
                format!("{message}; HAProxy refuses this line"),
            ),
        }
    }
    lines
}

struct Context<'a> {
    file: &'a Arc<Path>,
    line: u32,
    section: &'a str,
    env: &'a dyn Env,
}

fn to_col(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// `parse_line` over one line from `start`; Err((index, message)).
fn split(chars: &[char], start: usize, ctx: &Context<'_>) -> Result<Vec<Word>, (usize, String)> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut word_start = start;
    let mut squote = false;
    let mut dquote = false;
    let mut quote_at = 0;
    let mut i = start;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '#' && !squote && !dquote {
            break;
        } else if c == '"' && !squote {
            dquote = !dquote;
            quote_at = i;
            i += 1;
        } else if c == '\'' && !dquote {
            squote = !squote;
            quote_at = i;
            i += 1;
        } else if c == '\\' && !squote {
            let next = at(i + 1);
            match next {
                ' ' | '\\' | '#' | '\'' | '"' => {
                    current.push(next);
                    i += 2;
                }
                't' => {
                    current.push('\t');
                    i += 2;
                }
                'n' => {
                    current.push('\n');
                    i += 2;
                }
                'r' => {
                    current.push('\r');
                    i += 2;
                }
                '$' if dquote => {
                    current.push('$');
                    i += 2;
                }
                'x' => {
                    let (h, l) = (at(i + 2), at(i + 3));
                    match (h.to_digit(16), l.to_digit(16)) {
                        (Some(h), Some(l)) => {
                            // Two hex digits are one byte; as text, its Latin-1 character.
                            current.push(char::from(u8::try_from(h * 16 + l).unwrap_or(b'?')));
                            i += 4;
                        }
                        _ => {
                            return Err((i, "truncated or invalid hexadecimal sequence".into()));
                        }
                    }
                }
                _ => {
                    current.push('\\');
                    i += 1;
                }
            }
        } else if c.is_ascii_whitespace() && !squote && !dquote {
            while i < chars.len() && chars[i].is_ascii_whitespace() {
                i += 1;
            }
            words.push(Word {
                text: std::mem::take(&mut current),
                col: to_col(word_start),
            });
            word_start = i;
        } else if c == '$' && dquote {
            i = expand(chars, i, ctx, &mut current, &mut words, &mut word_start)?;
        } else {
            current.push(c);
            i += 1;
        }
    }
    if squote || dquote {
        return Err((quote_at, "unmatched quote".into()));
    }
    words.push(Word {
        text: current,
        col: to_col(word_start),
    });
    Ok(words)
}

/// Expand the variable at `chars[i] == '$'`; returns the index after it.
fn expand(
    chars: &[char],
    mut i: usize,
    ctx: &Context<'_>,
    current: &mut String,
    words: &mut Vec<Word>,
    word_start: &mut usize,
) -> Result<usize, (usize, String)> {
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    i += 1;
    let brace = (at(i) == '{').then_some(i);
    if brace.is_some() {
        i += 1;
    }
    let first = at(i);
    if !(first.is_ascii_alphabetic() || first == '_' || first == '.') {
        return Err((
            i,
            "forbidden first char in environment variable name".into(),
        ));
    }
    let name_start = i;
    if first == '.' {
        i += 1;
    }
    while at(i).is_ascii_alphanumeric() || at(i) == '_' {
        i += 1;
    }
    let name: String = chars[name_start..i].iter().collect();
    let mut value = if let Some(pseudo) = name.strip_prefix('.') {
        match pseudo {
            "LINE" => Some(ctx.line.to_string()),
            "FILE" => Some(ctx.file.display().to_string()),
            "SECTION" => Some(ctx.section.to_string()),
            _ => {
                return Err((
                    name_start,
                    format!("unsupported internal variable name {name}"),
                ));
            }
        }
    } else {
        ctx.env.var(&name)
    };
    let mut word_expand = false;
    if let Some(open) = brace {
        if at(i) == '[' {
            if at(i + 1) != '*' || at(i + 2) != ']' {
                return Err((i, "truncated or invalid word expansion sequence".into()));
            }
            word_expand = true;
            i += 3;
        }
        if at(i) == '-' {
            let default_start = i + 1;
            while i < chars.len() && chars[i] != '}' {
                i += 1;
            }
            if i >= chars.len() {
                return Err((open, "unmatched brace in environment variable name".into()));
            }
            if value.is_none() {
                value = Some(chars[default_start..i].iter().collect());
            }
        } else if at(i) != '}' {
            return Err((open, "unmatched brace in environment variable name".into()));
        }
        i += 1;
    }
    if let Some(value) = value {
        let mut parts = value.chars().peekable();
        while let Some(c) = parts.next() {
            if word_expand && c.is_ascii_whitespace() {
                words.push(Word {
                    text: std::mem::take(current),
                    col: to_col(*word_start),
                });
                while parts.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    parts.next();
                }
            } else {
                current.push(c);
            }
        }
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars;

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            match name {
                "PORT" => Some("8080".into()),
                "LIST" => Some("a  b c".into()),
                _ => None,
            }
        }
    }

    fn words(text: &str) -> Result<Vec<String>, String> {
        let file: Arc<Path> = Arc::from(Path::new("h.cfg"));
        let mut diags = Diagnostics::default();
        let lines = lex(text, &file, &Vars, &mut diags);
        if let Some(d) = diags.iter().next() {
            return Err(d.to_string());
        }
        Ok(lines
            .into_iter()
            .flat_map(|l| l.words.into_iter().map(|w| w.text))
            .collect())
    }

    #[test]
    fn words_quotes_escapes_and_comments() {
        let cases: &[(&str, &[&str])] = &[
            ("  bind :80   # a comment", &["bind", ":80"]),
            ("a\\ b c", &["a b", "c"]),
            ("'a # b' \"c d\"", &["a # b", "c d"]),
            ("'it''s'", &["its"]),
            ("x\\#y", &["x#y"]),
            ("'\\n' \"\\t\"", &["\\n", "\t"]),
            ("\\x41\\q", &["A\\q"]),
            ("a$PORT \"$PORT\" '${PORT}'", &["a$PORT", "8080", "${PORT}"]),
            (
                "\"${PORT}0\" \"${NONE}\"x \"${NONE-dflt}\"",
                &["80800", "x", "dflt"],
            ),
            ("\"${LIST[*]}\" z", &["a", "b", "c", "z"]),
            ("\"\\$PORT\"", &["$PORT"]),
            ("\"x.${.LINE}\"", &["x.1"]),
            ("# only a comment", &[]),
            ("", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(words(text).unwrap(), *expected, "{text}");
        }
    }

    #[test]
    fn section_pseudo_variable_follows_sections() {
        assert_eq!(
            words("listen app\n  x \"${.SECTION}\"").unwrap(),
            ["listen", "app", "x", "listen"]
        );
    }

    #[test]
    fn lexical_errors_name_the_column() {
        let cases = [
            ("bind \"abc", "h.cfg:1:6: error: unmatched quote"),
            ("x \"${PORT\"", "h.cfg:1:5: error: unmatched brace"),
            ("x \"$1\"", "h.cfg:1:5: error: forbidden first char"),
            (
                "x \\xZ1",
                "h.cfg:1:3: error: truncated or invalid hexadecimal",
            ),
            (
                "x \"${.NOPE}\"",
                "h.cfg:1:6: error: unsupported internal variable",
            ),
        ];
        for (text, expected) in cases {
            let got = words(text).unwrap_err();
            assert!(got.starts_with(expected), "{text}: {got}");
        }
    }

    #[test]
    fn columns_point_at_words() {
        let file: Arc<Path> = Arc::from(Path::new("h.cfg"));
        let mut diags = Diagnostics::default();
        let lines = lex(
            "\n    server s1 10.0.0.1:80 check\n",
            &file,
            &Vars,
            &mut diags,
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].loc.line, 2);
        assert_eq!(lines[0].loc.col, 5);
        assert_eq!(lines[0].word_loc(2).col, 15);
        assert_eq!(lines[0].word(9), "");
    }
}
