//! Shell-like splitting of mon.cf `monitor`/`alert` argument text as Perl's `Text::ParseWords::quotewords('\s+', 0, ...)` does it, and the inverse quoting; owns only the quoting rules, never what the words mean.
//!
//! The rules, as `quotewords` applies them:
//!
//! * Runs of whitespace separate words. Whitespace is Perl's `\s` on a byte
//!   string: space, `\t`, `\n`, `\r`, vertical tab and form feed. A
//!   non-breaking space is part of a word, as in mon, which reads mon.cf as
//!   bytes.
//! * Outside quotes a backslash takes the next character literally (`\/` is
//!   `/`, `\ ` is a space inside a word).
//! * `"..."` groups; inside it a backslash takes *any* next character
//!   literally (`"a\"b"` is `a"b`, `"\n"` is `n`).
//! * `'...'` groups; inside it a backslash is kept as typed, but `\'` does
//!   not close the quote (`'a\'b'` is `a\'b`), exactly as `quotewords` with
//!   its default `$PERL_SINGLE_QUOTE = 0`.
//! * Quoted and unquoted parts that touch form one word (`a"b c"d` is
//!   `ab cd`); `""` is an empty word.
//! * An unclosed quote, or a backslash that ends the line, is an error
//!   (`quotewords` returns an empty list there, which mon silently took as
//!   "no arguments").
//!
//! One deliberate difference: leading and trailing whitespace yields no empty
//! word. mon trims every logical line before splitting, so it never sees one.

use thiserror::Error;

/// Why a line could not be split into words.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WordsError {
    /// A `"` or `'` with no closing partner. `column` is the 1-based
    /// character position of the opening quote in the line.
    #[error("unterminated {quote} quote opened at column {column}")]
    UnterminatedQuote { quote: char, column: usize },
    /// A backslash as the last character of the line, outside quotes.
    #[error("backslash at column {column} ends the line and escapes nothing")]
    DanglingBackslash { column: usize },
}

/// Splits `line` into words as `quotewords('\s+', 0, $line)` does (see the
/// module docs for the rules). An empty or all-blank line gives no words.
pub fn split(line: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    // `None` between words; `Some` as soon as any part of a word was seen,
    // even an empty quoted part, so that `""` yields an empty word.
    let mut word: Option<String> = None;
    let mut chars = line.chars().enumerate();
    while let Some((index, c)) = chars.next() {
        let column = index + 1;
        match c {
            c if is_delimiter(c) => {
                if let Some(finished) = word.take() {
                    words.push(finished);
                }
            }
            '\\' => match chars.next() {
                Some((_, escaped)) => word.get_or_insert_with(String::new).push(escaped),
                None => return Err(WordsError::DanglingBackslash { column }),
            },
            '"' | '\'' => {
                let part = word.get_or_insert_with(String::new);
                read_quoted(&mut chars, c, column, part)?;
            }
            other => word.get_or_insert_with(String::new).push(other),
        }
    }
    if let Some(finished) = word {
        words.push(finished);
    }
    Ok(words)
}

/// Joins `words` with single spaces, quoting each word that needs it, so that
/// `split(&join(words)) == Ok(words.to_vec())` for any words.
///
/// Words made only of characters with no special meaning stay bare; others
/// are written in double quotes with `"` and `\` backslash-escaped.
pub fn join(words: &[String]) -> String {
    let mut line = String::new();
    for (index, word) in words.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        push_quoted(&mut line, word);
    }
    line
}

/// Perl's `\s` for a byte string (mon reads mon.cf without decoding it).
/// `char::is_ascii_whitespace` would miss the vertical tab.
fn is_delimiter(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

/// Reads the rest of a quoted part opened by `quote` at `column` into `part`,
/// consuming the closing quote.
fn read_quoted(
    chars: &mut impl Iterator<Item = (usize, char)>,
    quote: char,
    column: usize,
    part: &mut String,
) -> Result<(), WordsError> {
    let unterminated = WordsError::UnterminatedQuote { quote, column };
    loop {
        match chars.next() {
            None => return Err(unterminated),
            Some((_, c)) if c == quote => return Ok(()),
            Some((_, '\\')) => {
                let Some((_, escaped)) = chars.next() else {
                    return Err(unterminated);
                };
                // quotewords strips the backslash inside "..." only.
                if quote == '\'' {
                    part.push('\\');
                }
                part.push(escaped);
            }
            Some((_, c)) => part.push(c),
        }
    }
}

fn push_quoted(line: &mut String, word: &str) {
    let bare = !word.is_empty() && !word.chars().any(needs_quoting);
    if bare {
        line.push_str(word);
        return;
    }
    line.push('"');
    for c in word.chars() {
        if c == '"' || c == '\\' {
            line.push('\\');
        }
        line.push(c);
    }
    line.push('"');
}

fn needs_quoting(c: char) -> bool {
    is_delimiter(c) || matches!(c, '"' | '\'' | '\\')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check(input: &str, expected: &[&str]) {
        let words = split(input).unwrap_or_else(|error| panic!("{input:?}: {error}"));
        assert_eq!(words, expected, "input: {input:?}");
    }

    fn check_error(input: &str, expected: WordsError, message: &str) {
        let error = split(input).expect_err(input);
        assert_eq!(error, expected, "input: {input:?}");
        assert_eq!(error.to_string(), message, "input: {input:?}");
    }

    #[test]
    fn splits_mon_cf_argument_lines() {
        check(
            "-P tcp -V 10.0.0.1:80 -R 10.0.0.2 -W 1 -F g",
            &[
                "-P",
                "tcp",
                "-V",
                "10.0.0.1:80",
                "-R",
                "10.0.0.2",
                "-W",
                "1",
                "-F",
                "g",
            ],
        );
        check(
            r#"-S "web server is back up" mis"#,
            &["-S", "web server is back up", "mis"],
        );
        check(r"-l \/\/", &["-l", "//"]);
        check("'/ogin:/i'", &["/ogin:/i"]);
        check(
            "-d /usr/lib/mon/log.d routers.log",
            &["-d", "/usr/lib/mon/log.d", "routers.log"],
        );
        check(
            "/f330:5000 /f540:5000 ;;",
            &["/f330:5000", "/f540:5000", ";;"],
        );
        check("mis@domain.com", &["mis@domain.com"]);
    }

    #[test]
    fn whitespace() {
        check("", &[]);
        check(" \t ", &[]);
        check("a", &["a"]);
        check("a  \t b", &["a", "b"]);
        check("  a b  ", &["a", "b"]);
        check("a\x0Bb\x0Cc\rd\ne", &["a", "b", "c", "d", "e"]);
        // Not Perl's \s on bytes, so part of the word.
        check("a\u{a0}b", &["a\u{a0}b"]);
        check("a # b", &["a", "#", "b"]);
    }

    #[test]
    fn quotes_and_joining() {
        check(r#"a"b c"d"#, &["ab cd"]);
        check(r#"a'b c'd"#, &["ab cd"]);
        check(r#""a b"'c d'e"#, &["a bc de"]);
        check(r#""" x ''"#, &["", "x", ""]);
        check(r#"a"""#, &["a"]);
        check(r#""'" '"'"#, &["'", "\""]);
        check(r##"'#' "#""##, &["#", "#"]);
        check("\"a\nb\"", &["a\nb"]);
    }

    #[test]
    fn backslashes() {
        check(r"a\ b", &["a b"]);
        check(r"\\", &["\\"]);
        check(r#"\"a\'"#, &["\"a'"]);
        check(r"\n", &["n"]);
        // Inside "...", a backslash escapes any character.
        check(r#""a\"b" "\n" "\\""#, &["a\"b", "n", "\\"]);
        // Inside '...', backslashes are kept, but \' does not close the quote.
        check(r"'a\b' 'it\'s'", &["a\\b", "it\\'s"]);
        check(r"'\\'", &["\\\\"]);
    }

    #[test]
    fn errors() {
        check_error(
            r#"-S "unterminated"#,
            WordsError::UnterminatedQuote {
                quote: '"',
                column: 4,
            },
            "unterminated \" quote opened at column 4",
        );
        check_error(
            "a 'b",
            WordsError::UnterminatedQuote {
                quote: '\'',
                column: 3,
            },
            "unterminated ' quote opened at column 3",
        );
        check_error(
            r#"x"a\""#,
            WordsError::UnterminatedQuote {
                quote: '"',
                column: 2,
            },
            "unterminated \" quote opened at column 2",
        );
        check_error(
            r"'a\'",
            WordsError::UnterminatedQuote {
                quote: '\'',
                column: 1,
            },
            "unterminated ' quote opened at column 1",
        );
        check_error(
            r#""a\"#,
            WordsError::UnterminatedQuote {
                quote: '"',
                column: 1,
            },
            "unterminated \" quote opened at column 1",
        );
        // Columns count characters, not bytes.
        check_error(
            "é 'x",
            WordsError::UnterminatedQuote {
                quote: '\'',
                column: 3,
            },
            "unterminated ' quote opened at column 3",
        );
        check_error(
            r"a b\",
            WordsError::DanglingBackslash { column: 4 },
            "backslash at column 4 ends the line and escapes nothing",
        );
    }

    #[test]
    fn join_quotes_only_what_needs_it() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(join(&[]), "");
        assert_eq!(
            join(&words(&["-P", "tcp", "10.0.0.1:80"])),
            "-P tcp 10.0.0.1:80"
        );
        assert_eq!(
            join(&words(&["-S", "web server is back up"])),
            r#"-S "web server is back up""#
        );
        assert_eq!(
            join(&words(&["", r#"a"b\c"#, "it's"])),
            r#""" "a\"b\\c" "it's""#
        );
    }

    proptest! {
        #[test]
        fn split_inverts_join(words in prop::collection::vec("\\PC*", 0..6)) {
            prop_assert_eq!(split(&join(&words)), Ok(words));
        }

        #[test]
        fn split_inverts_join_with_any_characters(words in prop::collection::vec(".*", 0..6)) {
            prop_assert_eq!(split(&join(&words)), Ok(words));
        }

        #[test]
        fn split_never_panics_and_resplits_stably(line in "[ a\"'\\\\\t]{0,24}|.{0,40}") {
            if let Ok(words) = split(&line) {
                prop_assert_eq!(split(&join(&words)), Ok(words));
            }
        }
    }
}
