//! Config diagnostics: an error or warning tied to `file:line:col`; collected, never thrown one at a time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where in which file something was written. Line and column are 1-based;
/// 0 means "the file as a whole".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl Location {
    pub fn new(file: &Arc<Path>, line: u32, col: u32) -> Location {
        Location {
            file: Arc::clone(file),
            line,
            col,
        }
    }

    /// A location naming the whole file (used for errors with no better place).
    pub fn file_only(file: &Arc<Path>) -> Location {
        Location::new(file, 0, 0)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One message about the config, with the place it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {word}: {}", self.location, self.message)
    }
}

/// Diagnostics kept per compile; past this they are only counted (a file
/// of junk must not cost memory per line it has).
pub const MAX_KEPT: usize = 1000;
/// Diagnostics printed; the rest are summed up in one line.
pub const MAX_SHOWN: usize = 100;
/// A printed message is cut at this many bytes.
const MAX_MESSAGE: usize = 1000;

/// Every diagnostic of one compile, in the order they were found (the first
/// [`MAX_KEPT`]; the rest are counted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    omitted_errors: usize,
    omitted_warnings: usize,
}

impl Diagnostics {
    pub fn error(&mut self, location: Location, message: impl Into<String>) {
        self.push(Severity::Error, location, message.into());
    }

    pub fn warning(&mut self, location: Location, message: impl Into<String>) {
        self.push(Severity::Warning, location, message.into());
    }

    pub fn has_errors(&self) -> bool {
        self.omitted_errors > 0 || self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All errors found, kept or not.
    pub fn error_count(&self) -> usize {
        self.errors().count() + self.omitted_errors
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Order by place in the file (stable, so same-place messages keep their order).
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| a.location.cmp(&b.location));
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.omitted_errors += other.omitted_errors;
        self.omitted_warnings += other.omitted_warnings;
        for d in other.items {
            self.push(d.severity, d.location, d.message);
        }
    }

    fn push(&mut self, severity: Severity, location: Location, message: String) {
        if self.items.len() >= MAX_KEPT {
            match severity {
                Severity::Error => self.omitted_errors += 1,
                Severity::Warning => self.omitted_warnings += 1,
            }
            return;
        }
        self.items.push(Diagnostic {
            severity,
            location,
            message,
        });
    }
}

impl fmt::Display for Diagnostics {
    /// The first [`MAX_SHOWN`] diagnostics (each cut at 1000 bytes), then
    /// one line counting the rest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.items.iter().take(MAX_SHOWN) {
            let line = d.to_string();
            if line.len() > MAX_MESSAGE {
                let mut end = MAX_MESSAGE;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                writeln!(f, "{} ... ({} bytes)", &line[..end], line.len())?;
            } else {
                writeln!(f, "{line}")?;
            }
        }
        let hidden = &self.items[self.items.len().min(MAX_SHOWN)..];
        let errors = hidden
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
            + self.omitted_errors;
        let warnings = hidden.len() - (errors - self.omitted_errors) + self.omitted_warnings;
        if errors + warnings > 0 {
            writeln!(
                f,
                "... and {} more not shown ({errors} error(s), {warnings} warning(s))",
                errors + warnings
            )?;
        }
        Ok(())
    }
}

/// The failure of a compile: every error (and the warnings found on the way).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s) in {}", .diagnostics.error_count(), .file.display())]
pub struct CompileError {
    pub file: PathBuf,
    pub diagnostics: Diagnostics,
}
