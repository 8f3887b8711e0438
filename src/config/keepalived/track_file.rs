//! keepalived's `track_file NAME { file PATH weight W [reverse] }` blocks (and the older `vrrp_track_file`): read with keepalived's defaults and messages; instances refer to them by name in `track_file { NAME [weight W [reverse]] }`.
//!
//! keepalived 2.2.7 (`trackers/track_file.c`): the file holds a number
//! (`strtol` of its first bytes, base 0; a missing or empty file is 0).
//! With weight 0 a non-zero number puts the instance in FAULT (with
//! `reverse`, a zero one does); otherwise number × weight (× −1 with
//! `reverse`), limited to −254..253, is added to the priority, and −254
//! is FAULT. The block's weight defaults to 1.
//!
//! `init_file [VALUE] [overwrite]` has the daemon write VALUE (default 0)
//! into the file at start when it does not exist (with `overwrite`, also
//! when it does), whether or not an instance tracks the file.

use std::path::PathBuf;

use crate::config::diag::Location;
use crate::config::keepalived::Ctx;
use crate::config::keepalived::numbers;
use crate::config::keepalived::tree::Stmt;

/// One `track_file` block as keepalived keeps it.
#[derive(Clone, Debug)]
pub struct TrackedFile {
    pub name: String,
    pub loc: Location,
    pub path: PathBuf,
    pub weight: i64,
    pub reverse: bool,
    /// `init_file`: the value, and whether to overwrite an existing file.
    pub init: Option<(i64, bool)>,
}

/// Read one `track_file NAME { ... }`; None when keepalived drops it.
pub fn read(stmt: &Stmt, known: &[TrackedFile], ctx: &mut Ctx<'_>) -> Option<TrackedFile> {
    let name = ctx.arg(&stmt.piece, 1)?.to_string();
    if known.iter().any(|f| f.name == name) {
        ctx.ignores(
            stmt.loc(),
            format!("track file {name} is defined twice; keepalived keeps the first"),
        );
        return None;
    }
    let mut path: Option<PathBuf> = None;
    let mut weight = 1;
    let mut reverse = false;
    let mut init = None;
    for child in stmt.children() {
        let piece = &child.piece;
        match child.keyword() {
            "file" => match piece.words.get(1) {
                None => ctx.logs(piece.loc.clone(), "track file file name missing"),
                Some(word) if path.is_some() => ctx.logs(
                    piece.word_loc(1),
                    format!(
                        "File already set for track file {name} - ignoring {}",
                        word.text
                    ),
                ),
                Some(word) => path = Some(PathBuf::from(&word.text)),
            },
            "weight" => {
                let Some(word) = piece.words.get(1) else {
                    ctx.logs(
                        piece.loc.clone(),
                        format!("No weight specified for track file {name} - ignoring"),
                    );
                    continue;
                };
                if weight != 1 {
                    ctx.logs(
                        piece.word_loc(1),
                        format!(
                            "Weight already set for track file {name} - ignoring {}",
                            word.text
                        ),
                    );
                    continue;
                }
                match numbers::int(&word.text, -254, 254, true).value {
                    Some(w) => weight = w,
                    None => ctx.logs(
                        piece.word_loc(1),
                        format!(
                            "Weight ({}) for track_file {name} must be between [-254..254] inclusive. Ignoring...",
                            word.text
                        ),
                    ),
                }
                match piece.words.get(2).map(|w| w.text.as_str()) {
                    None => {}
                    Some("reverse") => reverse = true,
                    Some(other) => ctx.logs(
                        piece.word_loc(2),
                        format!("track_file {name} unknown weight option {other}"),
                    ),
                }
            }
            "init_file" => init = Some(init_file(piece, &name, ctx)),
            keyword => ctx.unused(piece, &format!("'{keyword}' in track_file")),
        }
    }
    let Some(path) = path else {
        ctx.logs(
            stmt.end_loc(),
            format!("No file set for track_file {name} - ignoring"),
        );
        return None;
    };
    Some(TrackedFile {
        name,
        loc: stmt.loc(),
        path,
        weight,
        reverse,
        init,
    })
}

/// keepalived's `track_file_init_handler`: every line starts again from
/// value 0 without overwrite; a number outside −254..254 is reported and
/// still written; an invalid one is reported and 0 is written.
fn init_file(
    piece: &crate::config::keepalived::lexer::Piece,
    name: &str,
    ctx: &mut Ctx<'_>,
) -> (i64, bool) {
    let (mut value, mut overwrite) = (0, false);
    for (i, word) in piece.words.iter().enumerate().skip(1) {
        let text = word.text.trim_start_matches([' ', '\t']);
        if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            match numbers::int(&word.text, i64::from(i32::MIN), i64::from(i32::MAX), false).value {
                Some(v) => {
                    if !(-254..=254).contains(&v) {
                        ctx.logs(
                            piece.word_loc(i),
                            format!(
                                "Track file {name} init value {v} is outside sensible range [-254, 254]"
                            ),
                        );
                    }
                    value = v;
                }
                None => {
                    ctx.logs(
                        piece.word_loc(i),
                        format!("Track file {name} init value {text} is invalid"),
                    );
                    value = 0;
                }
            }
        } else if word.text == "overwrite" {
            overwrite = true;
        } else {
            ctx.logs(
                piece.word_loc(i),
                format!("Unknown track file init option {}", word.text),
            );
        }
    }
    (value, overwrite)
}
