//! keepalived's block reader (lib/parser.c `process_stream` and `alloc_value_block`): pieces in, a tree of statements out, with keepalived's own recovery from unknown keywords and stray braces.
//!
//! The recovery is kept exactly, traps included: an unknown keyword followed
//! by `{` is reported, the `{` is ignored, the block's lines are read as
//! keywords of the enclosing block, and its `}` closes the *enclosing*
//! block. keepmon reads the file the same way, so the two agree, and it
//! warns at each line keepalived only logs.

use crate::config::diag::{Diagnostics, Location};
use crate::config::keepalived::lexer::Piece;
use crate::config::keepalived::schema::Kind;

/// One keyword line and what belongs to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    pub piece: Piece,
    pub body: Body,
    /// Where a block or value list ended (its `}`, or the last line read
    /// when the file ended first): keepalived's end-of-block checks report
    /// this line.
    pub end: Option<Location>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Arguments on the keyword's line only.
    Leaf,
    /// The lines of a value list (`virtual_ipaddress { ... }`); a value
    /// list whose keyword line had extra words keeps them as its first line.
    Values(Vec<Piece>),
    /// The statements of a block.
    Block(Vec<Stmt>),
    /// A block keepmon does not read (already warned about).
    Skipped,
}

impl Stmt {
    pub fn keyword(&self) -> &str {
        self.piece.keyword()
    }

    pub fn loc(&self) -> Location {
        self.piece.loc.clone()
    }

    /// The statements inside a block (none for other kinds).
    pub fn children(&self) -> &[Stmt] {
        match &self.body {
            Body::Block(children) => children,
            _ => &[],
        }
    }

    /// Where keepalived reports its end-of-block checks: the closing `}`.
    pub fn end_loc(&self) -> Location {
        self.end.clone().unwrap_or_else(|| self.loc())
    }

    /// The lines of a value list (none for other kinds).
    pub fn values(&self) -> &[Piece] {
        match &self.body {
            Body::Values(values) => values,
            _ => &[],
        }
    }
}

/// Read every statement of a file (its top level is `root`).
pub fn read(
    pieces: Vec<Piece>,
    root: &'static [(&'static str, Kind)],
    inactive: &[&str],
    diags: &mut Diagnostics,
) -> Vec<Stmt> {
    let mut reader = Reader {
        pieces: pieces.into_iter().peekable(),
        diags,
        last: None,
        inactive,
    };
    reader.block(root, 0)
}

struct Reader<'d, 'r> {
    pieces: std::iter::Peekable<std::vec::IntoIter<Piece>>,
    diags: &'d mut Diagnostics,
    /// Where the last piece read was.
    last: Option<Location>,
    /// Top-level keywords this keepalived process does not read: it skips
    /// their blocks by counting braces (`keyword_vec->active` false).
    inactive: &'r [&'r str],
}

impl Reader<'_, '_> {
    fn next(&mut self) -> Option<Piece> {
        let piece = self.pieces.next()?;
        self.last = Some(piece.loc.clone());
        Some(piece)
    }

    /// keepalived's `process_stream` for one level: `level` 0 is the file.
    fn block(&mut self, keywords: &'static [(&'static str, Kind)], level: usize) -> Vec<Stmt> {
        let mut out = Vec::new();
        let mut need_open = level > 0;
        while let Some(piece) = self.next() {
            if need_open {
                need_open = false;
                if piece.is_open() {
                    continue;
                }
                self.diags.warning(
                    piece.loc.clone(),
                    "keepalived ignores this: it reports \"Missing '{' at beginning of configuration block\" and reads the line as a keyword of the block",
                );
            } else if piece.is_open() {
                self.diags.warning(
                    piece.loc.clone(),
                    "keepalived ignores this: it reports \"Unexpected '{' - ignoring\" and reads what follows as part of the enclosing block (whose end is now the next '}')",
                );
                continue;
            }
            if piece.is_close() && level > 0 {
                return out;
            }
            let Some((_, kind)) = keywords.iter().find(|(name, _)| *name == piece.keyword()) else {
                self.diags.warning(
                    piece.loc.clone(),
                    format!(
                        "keepalived ignores this: unknown keyword '{}' here",
                        piece.keyword()
                    ),
                );
                continue;
            };
            if level == 0 && self.inactive.contains(&piece.keyword()) {
                // The other keepalived process's block: skipped by braces,
                // whatever the keywords inside say.
                self.skip_list();
                continue;
            }
            if piece.keyword() == "group"
                && matches!(kind, Kind::Values)
                && out.iter().any(|s: &Stmt| s.keyword() == "group")
            {
                // keepalived's handler calls skip_block(true): the list is
                // skipped by brace counting, and its `}` also ends the
                // enclosing block.
                self.diags.warning(
                    piece.loc.clone(),
                    "keepalived ignores this: it reports \"Group list already specified\", skips this list, and its '}' also ends the enclosing block",
                );
                if self.skip_list() {
                    return out;
                }
                continue;
            }
            let body = match kind {
                Kind::Leaf => Body::Leaf,
                Kind::Values => Body::Values(self.values(&piece)),
                Kind::Block(sub) => Body::Block(self.block(sub, level + 1)),
                Kind::Opaque => {
                    self.skip(&piece);
                    Body::Skipped
                }
            };
            let end = match kind {
                Kind::Leaf => None,
                _ => self.last.clone(),
            };
            out.push(Stmt { piece, body, end });
        }
        out
    }

    /// keepalived's `alloc_value_block`: `{`, value lines, `}`.
    fn values(&mut self, head: &Piece) -> Vec<Piece> {
        let mut out = Vec::new();
        // keepalived's `vsg_handler` passes the words after the group's name.
        let first_extra = if head.keyword() == "virtual_server_group" {
            2
        } else {
            1
        };
        if let Some(extra) = head.words.get(first_extra) {
            self.diags.warning(
                head.word_loc(first_extra),
                format!(
                    "keepalived ignores this: it reports \"Block {} has extra parameters {} ...\"; the values must be inside {{ }}",
                    head.keyword(),
                    extra.text
                ),
            );
        }
        let mut need_open = true;
        while let Some(piece) = self.next() {
            if need_open {
                need_open = false;
                if piece.is_open() {
                    continue;
                }
                self.diags.warning(
                    piece.loc.clone(),
                    format!(
                        "keepalived reads this line as a value of {} ('{{' is missing after the keyword), up to the next '}}'",
                        head.keyword()
                    ),
                );
            }
            if piece.is_close() {
                break;
            }
            out.push(piece);
        }
        out
    }

    /// keepalived's `skip_sublevel` after a handler's `skip_block(true)`: a
    /// `{` opens the skipped part, which ends at its matching `}` (true);
    /// without a `{` nothing is skipped (false).
    fn skip_list(&mut self) -> bool {
        if !self.pieces.peek().is_some_and(Piece::is_open) {
            return false;
        }
        let mut depth = 0usize;
        while let Some(piece) = self.next() {
            if piece.is_open() {
                depth += 1;
            } else if piece.is_close() {
                depth = depth.saturating_sub(1);
            }
            if depth == 0 {
                return true;
            }
        }
        true
    }

    /// Skip a block keepmon does not read, counting braces.
    fn skip(&mut self, head: &Piece) {
        self.diags.warning(
            head.loc.clone(),
            format!(
                "keepmon ignores the {} block (keepalived uses it; keepmon has no equivalent yet)",
                head.keyword()
            ),
        );
        let mut depth = 0usize;
        while let Some(piece) = self.next() {
            if piece.is_open() {
                depth += 1;
            } else if piece.is_close() {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            } else if depth == 0 {
                // No `{` after the keyword: keepalived stops skipping too.
                return;
            }
        }
    }
}
