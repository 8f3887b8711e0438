//! keepalived.conf's lexical rules as keepalived 2.2.7 applies them (lib/parser.c): comments, `$NAME` definitions, `@ID` lines, `include` globs, braces as their own lines, word splitting; no keywords.
//!
//! The output is a flat list of [`Piece`]s: one per "line" as keepalived's
//! `read_line` hands them to the block reader. keepalived splits every line
//! at its first `{` or `}` outside double quotes, so `VI_1{`,
//! `virtual_ipaddress { 10.0.0.1 }` and a `{` on its own line all become the
//! same pieces: words, then a lone `{`, then words, then a lone `}`.
//!
//! Where keepalived only logs a problem and reads on, this module does the
//! same and adds a warning; where keepmon cannot follow keepalived (multi-line
//! definitions, `~SEQ`), it says so with an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::FileSystem;
use crate::config::diag::{Diagnostics, Location};

/// One word of a piece and the column it starts at (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub col: u32,
}

/// One line as keepalived's block reader sees it: a keyword and its
/// arguments, or a lone `{` or `}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub words: Vec<Word>,
    /// The piece's text as keepalived's handlers see it in `buf_extern`
    /// (after substitution, before word splitting): scripts are re-split
    /// from it with quotes and escapes.
    pub text: String,
    /// Where the first word is.
    pub loc: Location,
}

impl Piece {
    /// The first word (every piece has at least one).
    pub fn keyword(&self) -> &str {
        self.words.first().map(|w| w.text.as_str()).unwrap_or("")
    }

    pub fn is_open(&self) -> bool {
        self.words.len() == 1 && self.keyword() == "{"
    }

    pub fn is_close(&self) -> bool {
        self.words.len() == 1 && self.keyword() == "}"
    }

    /// The location of word `index` (the piece's start when out of range).
    pub fn word_loc(&self, index: usize) -> Location {
        match self.words.get(index) {
            Some(word) => Location::new(&self.loc.file, self.loc.line, word.col),
            None => self.loc.clone(),
        }
    }

    /// The words after the keyword.
    pub fn args(&self) -> impl Iterator<Item = &str> {
        self.words.iter().skip(1).map(|w| w.text.as_str())
    }
}

/// Read `text` (the file `file`) into pieces, following its includes.
pub fn lex(
    text: &str,
    file: &Arc<Path>,
    fs: &dyn FileSystem,
    diags: &mut Diagnostics,
) -> Vec<Piece> {
    let config_id = fs
        .hostname()
        .map(|h| h.split('.').next().unwrap_or_default().to_string());
    let mut lexer = Lexer {
        fs,
        diags,
        config_id,
        definitions: Vec::new(),
        pieces: Vec::new(),
        depth: 0,
        include_depth: 0,
        included: 0,
    };
    lexer.file(text, file);
    if lexer.depth > 0 {
        let at = lexer
            .pieces
            .last()
            .map(|p| p.loc.clone())
            .unwrap_or_else(|| Location::file_only(file));
        lexer.diags.warning(
            at,
            format!(
                "keepalived reports \"There are {} missing '}}'s or extra '{{'s\" at the end of the configuration and reads on",
                lexer.depth
            ),
        );
    }
    lexer.pieces
}

/// keepalived's `alloc_strvec_quoted_escaped`: words split at blanks, with
/// `"..."` and `'...'` quoting (anywhere in a word) and C escapes (`\n`,
/// `\t`, `\xHH`, octal, `\cX`, `\"`). Err with keepalived's message on an
/// unterminated quote or a trailing `\`.
pub fn quoted_escaped(text: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            match (quote, c) {
                (_, '\\') => {
                    i += 1;
                    if i >= chars.len() {
                        return Err(format!("Missing escape char at end: '{text}'"));
                    }
                    let (value, used) = escape(&chars[i..]);
                    word.push(value);
                    i += used;
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    i += 1;
                }
                (Some(_), c) => {
                    word.push(c);
                    i += 1;
                }
                (None, '"' | '\'') => {
                    quote = Some(c);
                    i += 1;
                }
                (None, c) if c.is_ascii_whitespace() => break,
                (None, c) => {
                    word.push(c);
                    i += 1;
                }
            }
        }
        if let Some(q) = quote {
            return Err(format!("String '{text}': missing terminating {q}"));
        }
        words.push(word);
    }
    Ok(words)
}

/// One escape after a `\`: the character and how many chars it used.
fn escape(rest: &[char]) -> (char, usize) {
    let c = rest[0];
    match c {
        'x' if rest.get(1).is_some_and(char::is_ascii_hexdigit) => {
            let mut value: u32 = 0;
            let mut used = 1;
            while let Some(d) = rest.get(used).and_then(|c| c.to_digit(16)) {
                value = (value << 4 | d) & 0xff;
                used += 1;
            }
            (char::from(u8::try_from(value).unwrap_or(0)), used)
        }
        'c' if rest.len() > 1 => (
            char::from(u8::try_from(u32::from(rest[1]) & 0x1f).unwrap_or(0)),
            2,
        ),
        '0'..='7' => {
            let mut value: u32 = 0;
            let mut used = 0;
            while used < 3 {
                match rest.get(used).and_then(|c| c.to_digit(8)) {
                    Some(d) => value = (value << 3) | d,
                    None => break,
                }
                used += 1;
            }
            (char::from(u8::try_from(value & 0xff).unwrap_or(0)), used)
        }
        'a' => ('\x07', 1),
        'b' => ('\x08', 1),
        'E' => ('\x1b', 1),
        'f' => ('\x0c', 1),
        'n' => ('\n', 1),
        'r' => ('\r', 1),
        't' => ('\t', 1),
        'v' => ('\x0b', 1),
        other => (other, 1),
    }
}

/// Whether the first keyword of `text` opens one of keepalived's top-level
/// blocks, or is an `include`, after any `$NAME=value` definitions (how
/// `-c FILE` recognises a keepalived.conf by content).
pub fn looks_like_keepalived(text: &str) -> bool {
    const FIRST: &[&str] = &[
        "global_defs",
        "vrrp_instance",
        "virtual_server",
        "virtual_server_group",
        "vrrp_script",
        "vrrp_sync_group",
        "vrrp_track_process",
        "vrrp_track_file",
        "track_file",
        "bfd_instance",
    ];
    for line in text.lines() {
        let (line, _, _) = decomment(line);
        if line.is_empty() || definition(&line).is_some() {
            continue;
        }
        if include(&line).is_some() {
            return true;
        }
        let word = line
            .split(|c: char| c.is_whitespace() || c == '{')
            .next()
            .unwrap_or_default();
        return FIRST.contains(&word);
    }
    false
}

/// Deepest include nesting keepmon follows (keepalived has no limit and
/// loops forever on a file that includes itself).
const MAX_INCLUDE_DEPTH: u32 = 32;
/// Most files one config may include in all (a file that includes itself
/// twice would otherwise double the work at every level).
const MAX_INCLUDED_FILES: u32 = 1000;
/// Most substitutions in one line (keepalived loops forever on `$A=$A`).
const MAX_SUBSTITUTIONS: usize = 256;

struct Lexer<'a> {
    fs: &'a dyn FileSystem,
    diags: &'a mut Diagnostics,
    config_id: Option<String>,
    /// `$NAME=value` definitions in the order written (later ones replace).
    definitions: Vec<(String, String)>,
    pieces: Vec<Piece>,
    /// Open braces, for keepalived's "Extra '}' found".
    depth: u32,
    include_depth: u32,
    included: u32,
}

/// Text still to be cut into pieces, and the column its first byte was at.
struct Rest {
    text: String,
    col: u32,
}

impl Lexer<'_> {
    fn file(&mut self, text: &str, file: &Arc<Path>) {
        let mut in_multiline = false;
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let raw = raw.trim_end_matches(['\r', '\n']);
            let at = Location::new(file, line_no, 1);
            if raw.is_empty() {
                in_multiline = false;
                continue;
            }
            let leading = raw.len() - raw.trim_start_matches([' ', '\t']).len();
            let (line, unterminated, continued) = decomment(raw);
            if unterminated {
                self.diags.warning(
                    at.clone(),
                    format!("keepalived reports \"Unterminated quote '{line}'\" here and reads on"),
                );
            }
            if in_multiline {
                // The continuation lines of a multi-line definition, which
                // keepmon already refused at its first line.
                in_multiline = continued;
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let col = u32::try_from(leading + 1).unwrap_or(u32::MAX);
            let end = self.line(Rest { text: line, col }, &at, file);
            in_multiline = end == LineEnd::MultilineDefinition && continued;
        }
    }

    /// One decommented line: `@ID`, definitions, substitution and include,
    /// then pieces; the text after a brace goes round again, as keepalived
    /// keeps it as the next line.
    fn line(&mut self, mut current: Rest, at: &Location, file: &Arc<Path>) -> LineEnd {
        loop {
            match self.prepare(current, at, file) {
                Prepared::Consumed(end) => return end,
                Prepared::Text(text) => match self.cut(text, at) {
                    Some(rest) => current = rest,
                    None => return LineEnd::Done,
                },
            }
        }
    }

    /// Everything keepalived does to a line before cutting it at braces.
    fn prepare(&mut self, mut rest: Rest, at: &Location, file: &Arc<Path>) -> Prepared {
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > MAX_SUBSTITUTIONS {
                self.diags.error(
                    at.clone(),
                    "this line's $NAME substitutions never end (keepalived loops forever here)",
                );
                return Prepared::Consumed(LineEnd::Done);
            }
            let mut recheck = false;
            if rest.text.starts_with('@') {
                match self.strip_config_id(&rest.text) {
                    Some(text) => {
                        let cut = rest.text.len() - text.len();
                        rest.col += u32::try_from(cut).unwrap_or(0);
                        rest.text = text;
                    }
                    None => return Prepared::Consumed(LineEnd::Done),
                }
            }
            if rest.text.starts_with('$')
                && let Some((name, value)) = definition(&rest.text)
            {
                if value.ends_with('\\') {
                    self.diags.error(
                        at.clone(),
                        format!(
                            "${name}: keepmon does not support multi-line definitions (a value ending in \\) yet"
                        ),
                    );
                    return Prepared::Consumed(LineEnd::MultilineDefinition);
                }
                self.define(name, value);
                return Prepared::Consumed(LineEnd::Done);
            }
            if rest.text.starts_with("~SEQ") || rest.text.starts_with("~LST") {
                self.diags.error(
                    at.clone(),
                    "keepmon does not support keepalived's ~SEQ and ~LST line generators yet",
                );
                return Prepared::Consumed(LineEnd::Done);
            }
            if rest.text.starts_with('~') {
                break;
            }
            if rest.text.contains('$') {
                match self.substitute(&rest.text, file) {
                    Some(text) => {
                        let (text, _, _) = decomment(&text);
                        recheck = text.starts_with('@') || text.contains('$');
                        rest.text = text;
                    }
                    None => break,
                }
            }
            if !recheck {
                break;
            }
        }
        if rest.text.is_empty() {
            return Prepared::Consumed(LineEnd::Done);
        }
        if let Some((kind, pattern)) = include(&rest.text) {
            self.include(kind, pattern, at, file);
            return Prepared::Consumed(LineEnd::Done);
        }
        Prepared::Text(rest)
    }

    /// `@ID rest`: the rest when ID is this machine's config id (or, with
    /// `@^ID`, when it is not); None when the line is not for this machine.
    fn strip_config_id(&self, text: &str) -> Option<String> {
        let (reverse, body) = match text.strip_prefix("@^") {
            Some(body) => (true, body),
            None => (false, &text[1..]),
        };
        let end = body.find([' ', '\t'])?;
        let id = &body[..end];
        let matches = self.config_id.as_deref() == Some(id);
        if matches == reverse {
            return None;
        }
        Some(body[end..].trim_start_matches([' ', '\t']).to_string())
    }

    fn define(&mut self, name: String, value: String) {
        match self.definitions.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.definitions.push((name, value)),
        }
    }

    /// keepalived's `replace_param`: each `$NAME` or `${NAME}` naming a
    /// definition is replaced, and the replacement is scanned again. None
    /// when nothing was replaced.
    fn substitute(&mut self, text: &str, file: &Arc<Path>) -> Option<String> {
        let mut out = text.to_string();
        let mut pos = 0;
        let mut replaced = false;
        let mut rounds = 0;
        while let Some(found) = out[pos..].find('$') {
            let start = pos + found;
            if start + 1 >= out.len() {
                break;
            }
            rounds += 1;
            if rounds > MAX_SUBSTITUTIONS {
                break;
            }
            match reference(&out[start + 1..]) {
                Some((name, len)) => match self.value_of(name, file) {
                    Some(value) => {
                        out.replace_range(start..start + 1 + len, &value);
                        replaced = true;
                        if value.trim_start_matches([' ', '\t']).starts_with('~') {
                            break;
                        }
                        pos = start;
                    }
                    None => pos = start + 1,
                },
                None => pos = start + 1,
            }
        }
        replaced.then_some(out)
    }

    /// A definition's value, including keepalived's standard ones.
    fn value_of(&mut self, name: &str, file: &Arc<Path>) -> Option<String> {
        if let Some((_, value)) = self.definitions.iter().find(|(n, _)| n == name) {
            return Some(value.clone());
        }
        match name {
            "_PWD" => Some(
                file.parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            ),
            "_INSTANCE" => Some(String::new()),
            "_HASH" => Some("#".to_string()),
            "_BANG" => Some("!".to_string()),
            _ => None,
        }
    }

    /// `include PATTERN`: every file the glob matches, relative to the
    /// including file's directory, in sorted order.
    fn include(&mut self, kind: IncludeKind, pattern: &str, at: &Location, file: &Arc<Path>) {
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            self.diags.error(
                at.clone(),
                format!("include {pattern}: includes nest deeper than {MAX_INCLUDE_DEPTH} files"),
            );
            return;
        }
        let base = file.parent().unwrap_or(Path::new("/"));
        let mut matches = Vec::new();
        let mut missing = false;
        for alternative in expand_braces(pattern) {
            let path = if Path::new(&alternative).is_absolute() {
                PathBuf::from(&alternative)
            } else {
                base.join(&alternative)
            };
            let found = glob(&path, self.fs);
            if found.is_empty() && !has_wildcards(&alternative) {
                missing = true;
            }
            matches.extend(found);
        }
        matches.sort();
        matches.dedup();
        if matches.is_empty() || missing {
            let what = if matches.is_empty() {
                format!("no config file matches \"{pattern}\"")
            } else {
                format!("some config files of \"{pattern}\" are missing")
            };
            if kind.strict(matches.is_empty(), missing, pattern.contains('{')) {
                self.diags.error(
                    at.clone(),
                    format!("{what}; keepalived refuses to run with this include"),
                );
            } else {
                self.diags.warning(
                    at.clone(),
                    format!("keepalived ignores this: {what}, and it reads on without it"),
                );
            }
        }
        self.include_depth += 1;
        for path in matches {
            self.included += 1;
            if self.included > MAX_INCLUDED_FILES {
                self.diags.error(
                    at.clone(),
                    format!(
                        "include {pattern}: more than {MAX_INCLUDED_FILES} files included in all"
                    ),
                );
                break;
            }
            let Some(text) = self.fs.read_to_string(&path) else {
                self.diags.error(
                    at.clone(),
                    format!("cannot read included file {}", path.display()),
                );
                continue;
            };
            let included: Arc<Path> = Arc::from(path.as_path());
            self.file(&text, &included);
        }
        self.include_depth -= 1;
    }

    /// Cut the first piece off `rest` at its first brace outside quotes
    /// (keepalived's `read_line`); returns the text after it.
    fn cut(&mut self, rest: Rest, at: &Location) -> Option<Rest> {
        let text = rest.text;
        let bytes = text.as_bytes();
        let brace = if matches!(bytes.first(), Some(b'{' | b'}')) {
            Some(0)
        } else {
            find_brace(&text)
        };
        let (piece, next) = match brace {
            Some(0) => {
                let after = &text[1..];
                let skipped = after.len() - after.trim_start_matches([' ', '\t']).len();
                let next = after[skipped..].trim_end_matches([' ', '\t']);
                let next = (!next.is_empty()).then(|| Rest {
                    text: next.to_string(),
                    col: rest.col + 1 + u32::try_from(skipped).unwrap_or(0),
                });
                (&text[..1], next)
            }
            Some(at_brace) => {
                let next = Rest {
                    text: text[at_brace..].to_string(),
                    col: rest.col + u32::try_from(at_brace).unwrap_or(0),
                };
                (text[..at_brace].trim_end_matches([' ', '\t']), Some(next))
            }
            None => (text.as_str(), None),
        };
        let words = self.words(piece, rest.col, at);
        if !words.is_empty() {
            let loc = Location::new(&at.file, at.line, words[0].col);
            let piece = Piece {
                words,
                text: piece.to_string(),
                loc,
            };
            if piece.is_open() {
                self.depth += 1;
            } else if piece.is_close() {
                if self.depth == 0 {
                    self.diags.warning(
                        piece.loc.clone(),
                        "keepalived reports \"Extra '}' found\" here and reads on",
                    );
                } else {
                    self.depth -= 1;
                }
            }
            self.pieces.push(piece);
        }
        next
    }

    /// keepalived's `alloc_strvec`: words split at blanks; a word starting
    /// with `"` runs to the next `"` (the quotes are not part of it); any
    /// other word stops at a blank or a `"`.
    fn words(&mut self, text: &str, col: u32, at: &Location) -> Vec<Word> {
        let mut words = Vec::new();
        let mut pos = 0;
        let bytes = text.as_bytes();
        while pos < bytes.len() {
            while pos < bytes.len() && is_white(bytes[pos]) {
                pos += 1;
            }
            if pos >= bytes.len() {
                break;
            }
            let word_col = col + u32::try_from(pos).unwrap_or(0);
            if bytes[pos] == b'"' {
                let start = pos + 1;
                match text[start..].find('"') {
                    Some(len) => {
                        words.push(Word {
                            text: text[start..start + len].to_string(),
                            col: word_col,
                        });
                        pos = start + len + 1;
                    }
                    None => {
                        self.diags.warning(
                            Location::new(&at.file, at.line, word_col),
                            format!(
                                "keepalived reports \"Unmatched quote: '{text}'\" here and drops the rest of the line"
                            ),
                        );
                        break;
                    }
                }
            } else {
                let start = pos;
                while pos < bytes.len() && !is_white(bytes[pos]) && bytes[pos] != b'"' {
                    pos += 1;
                }
                words.push(Word {
                    text: text[start..pos].to_string(),
                    col: word_col,
                });
            }
        }
        words
    }
}

enum Prepared {
    /// The line was used up (a definition, an include, a line for another host).
    Consumed(LineEnd),
    Text(Rest),
}

/// How a physical line ended, for multi-line definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineEnd {
    Done,
    MultilineDefinition,
}

/// Which `include` keyword: keepalived's `includer`, `includem`, `includew`,
/// `includeb` and `includea` make some include problems fatal instead of
/// logged (plain `include` and `includer` never refuse a missing file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IncludeKind {
    /// A named file or directory is missing (INCLUDE_M).
    missing: bool,
    /// A wildcard matched nothing (INCLUDE_W).
    wildcard: bool,
    /// Some `{a,b}` alternatives are missing (INCLUDE_B).
    brace: bool,
}

impl IncludeKind {
    fn from_letter(letter: Option<u8>) -> IncludeKind {
        let (missing, wildcard, brace) = match letter {
            Some(b'm') => (true, false, false),
            Some(b'w') => (true, true, false),
            Some(b'b') => (false, false, true),
            Some(b'a') => (true, true, true),
            _ => (false, false, false),
        };
        IncludeKind {
            missing,
            wildcard,
            brace,
        }
    }

    /// Whether keepalived refuses the file: `nothing` = no file matched,
    /// `missing` = a name without wildcards is absent, `braces` = the
    /// pattern has `{a,b}` alternatives.
    fn strict(self, nothing: bool, missing: bool, braces: bool) -> bool {
        if missing && !nothing {
            return self.brace;
        }
        if missing {
            return if braces { self.brace } else { self.missing };
        }
        nothing && self.wildcard
    }
}

/// keepalived's `is_include`: `include` then a blank, or `include` plus one
/// of `r m w b a` then a blank.
fn include(text: &str) -> Option<(IncludeKind, &str)> {
    let rest = text.strip_prefix("include")?;
    let bytes = rest.as_bytes();
    let (kind, pattern) = match bytes.first()? {
        c if c.is_ascii_whitespace() => (IncludeKind::from_letter(None), &rest[1..]),
        &letter @ (b'r' | b'm' | b'w' | b'b' | b'a')
            if bytes.get(1).is_some_and(u8::is_ascii_whitespace) =>
        {
            (IncludeKind::from_letter(Some(letter)), &rest[2..])
        }
        _ => return None,
    };
    Some((kind, pattern.trim_start_matches([' ', '\t'])))
}

/// `$NAME=value` (no blank before `=`; blanks after it skipped); None when
/// the line is not a definition.
fn definition(text: &str) -> Option<(String, String)> {
    let body = text.strip_prefix('$')?;
    let first = body.chars().next()?;
    if !first.is_ascii_alphabetic() && first != '_' {
        return None;
    }
    let (name, value) = body.split_once('=')?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((
        name.to_string(),
        value.trim_start_matches([' ', '\t']).to_string(),
    ))
}

/// A reference after `$`: `NAME` (ended by a blank, `,`, `)` or the end) or
/// `{NAME}`. Returns the name and how many bytes after the `$` it spans.
fn reference(text: &str) -> Option<(&str, usize)> {
    let (braces, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let first = body.chars().next()?;
    if !first.is_ascii_alphabetic() && first != '_' {
        return None;
    }
    let len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let after = &body[len..];
    if braces {
        after.starts_with('}').then_some((&body[..len], len + 2))
    } else if after.is_empty() || after.starts_with([' ', '\t', ',', ')']) {
        Some((&body[..len], len))
    } else {
        None
    }
}

/// The first `{` or `}` outside double quotes.
fn find_brace(text: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '{' | '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// keepalived's `decomment`: strips leading blanks, a `!` or `#` comment
/// outside double quotes (`\#` and `\!` outside quotes stand for the
/// character), and trailing blanks. Returns the text, whether a quote was
/// left open, and whether the line ended with a `\` (continuation, kept).
fn decomment(raw: &str) -> (String, bool, bool) {
    let text = raw.trim_start_matches([' ', '\t']);
    let mut out = String::with_capacity(text.len());
    let mut quote = false;
    let mut comment = false;
    let mut continued = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                if !comment {
                    quote = !quote;
                    out.push(c);
                }
            }
            '\\' => match chars.peek().copied() {
                None => {
                    continued = true;
                    break;
                }
                Some(next @ ('#' | '!')) if !quote && !comment => {
                    chars.next();
                    out.push(next);
                }
                Some(next) => {
                    chars.next();
                    if !comment {
                        out.push('\\');
                        out.push(next);
                    }
                }
            },
            '!' | '#' if !quote => comment = true,
            _ if comment => {}
            _ => out.push(c),
        }
    }
    let mut result = out.trim_end_matches([' ', '\t']).to_string();
    if continued {
        result.push('\\');
    }
    (result, quote, continued)
}

/// `{a,b}` alternatives of a pattern (glob's GLOB_BRACE), outermost first.
fn expand_braces(pattern: &str) -> Vec<String> {
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_string()];
    };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_string()];
    };
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    bounds
        .windows(2)
        .flat_map(|w| expand_braces(&format!("{head}{}{tail}", &pattern[w[0] + 1..w[1]])))
        .collect()
}

fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The files a glob pattern names (component by component; hidden files
/// only when the pattern's component starts with a dot), sorted.
fn glob(path: &Path, fs: &dyn FileSystem) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::from("/")];
    let components: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect();
    for (i, component) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let mut next = Vec::new();
        for dir in &current {
            if has_wildcards(component) {
                let Some(entries) = fs.list_dir(dir) else {
                    continue;
                };
                let mut names: Vec<PathBuf> = entries
                    .into_iter()
                    .filter(|entry| {
                        entry
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|name| {
                                (component.starts_with('.') || !name.starts_with('.'))
                                    && wildcard_match(component.as_bytes(), name.as_bytes())
                            })
                    })
                    .collect();
                names.sort();
                next.extend(names);
            } else {
                next.push(dir.join(component));
            }
        }
        current = next
            .into_iter()
            .filter(|p| if last { fs.is_file(p) } else { fs.is_dir(p) })
            .collect();
    }
    current
}

/// Shell wildcard match: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`. Backtracks
/// only to the last `*`, so it takes at most pattern × name steps.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => {
                p += 1;
                n += 1;
                continue;
            }
            Some(b'[') => {
                if let Some((hit, len)) = class_match(&pattern[p..], name[n]) {
                    if hit {
                        p += len;
                        n += 1;
                        continue;
                    }
                } else if name[n] == b'[' {
                    p += 1;
                    n += 1;
                    continue;
                }
            }
            Some(&b) if b == name[n] => {
                p += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((star_p, star_n)) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// A `[...]` class at the start of `pattern`: whether `c` is in it and the
/// class's length; None when the `]` is missing.
fn class_match(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let end = pattern[1..].iter().position(|&b| b == b']')? + 1;
    let mut set = &pattern[1..end];
    let negate = matches!(set.first(), Some(b'!' | b'^'));
    if negate {
        set = &set[1..];
    }
    let mut hit = false;
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == b'-' {
            hit |= (set[i]..=set[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= set[i] == c;
            i += 1;
        }
    }
    Some((hit != negate, end + 1))
}
