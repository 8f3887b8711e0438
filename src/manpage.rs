//! The manual pages as roff text: keepmon(8) from the CLI definition (clap) and keepmon.toml(5) from the annotated demo config; pure text in, text out, no IO.
//!
//! `keepmon generate-docs DIR` writes them (with the shell completions);
//! the checked-in copies under `doc/` are compared with fresh ones by
//! `tests/package.rs`, so they cannot drift from the CLI or the config.

use std::fmt::Write as _;

/// keepmon(8): synopsis, description, every command with its arguments,
/// files, environment, signals.
pub fn keepmon_8(cmd: &clap::Command) -> String {
    let version = cmd.get_version().unwrap_or("");
    let mut page = String::new();
    let _ = writeln!(
        page,
        ".TH KEEPMON 8 \"\" \"keepmon {version}\" \"System Administration\""
    );
    page.push_str(".SH NAME\n");
    let _ = writeln!(
        page,
        "keepmon \\- {}",
        escape(&cmd.get_about().map(|a| a.to_string()).unwrap_or_default())
    );
    page.push_str(".SH SYNOPSIS\n");
    page.push_str("\\fBkeepmon\\fR [\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-\\-format\\fR \\fImon\\fR|\\fItoml\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n");
    page.push_str(".SH DESCRIPTION\n");
    if let Some(long) = cmd.get_long_about() {
        paragraphs(&mut page, &long.to_string());
    }
    page.push_str(".SH OPTIONS\n");
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        describe_arg(&mut page, arg);
    }
    page.push_str(".SH COMMANDS\n");
    for sub in visible_subcommands(cmd) {
        describe_command(&mut page, &[], sub);
    }
    page.push_str(EXTRA_SECTIONS_8);
    page
}

/// keepmon.toml(5): the annotated demo config as a page. `# --- Title ---`
/// lines start sections, comment prose becomes text, and config lines
/// (live or commented out) become indented examples.
pub fn keepmon_toml_5(annotated: &str, version: &str) -> String {
    let mut page = String::new();
    let _ = writeln!(
        page,
        ".TH KEEPMON.TOML 5 \"\" \"keepmon {version}\" \"File Formats\""
    );
    page.push_str(".SH NAME\nkeepmon.toml \\- the native configuration file of keepmon\n");
    page.push_str(".SH SYNOPSIS\n/etc/keepmon/keepmon.toml\n");
    page.push_str(".SH DESCRIPTION\n");
    page.push_str(
        "The native configuration of \\fBkeepmon\\fR(8) is TOML. \
         keepmon also reads mon.cf unchanged (any file not ending in .toml). \
         This page is the annotated example configuration shipped with keepmon; \
         every key shown commented out is optional.\n",
    );
    let mut block = Block::None;
    for line in annotated.lines() {
        let kind = classify(line);
        match kind {
            Line::Section(title) => {
                block.close(&mut page);
                let _ = writeln!(page, ".SH \"{}\"", escape(&title.to_uppercase()));
            }
            Line::Prose(text) => {
                if block != Block::Prose {
                    block.close(&mut page);
                    page.push_str(".PP\n");
                    block = Block::Prose;
                }
                let _ = writeln!(page, "{}", escape(text));
            }
            Line::Example(text) => {
                if block != Block::Example {
                    block.close(&mut page);
                    page.push_str(".PP\n.RS 4\n.nf\n");
                    block = Block::Example;
                }
                let _ = writeln!(page, "{}", escape(text));
            }
            Line::Break => block.close(&mut page),
        }
        if matches!(kind, Line::Break) {
            block = Block::None;
        }
    }
    block.close(&mut page);
    page.push_str(
        ".SH FILES\n.TP\n/etc/keepmon/keepmon.toml\nThe configuration of the keepmon service.\n",
    );
    page.push_str(
        ".TP\n/etc/keepmon/\\fINAME\\fR.toml\nThe configuration of \\fBkeepmon@\\fR\\fINAME\\fR.service.\n",
    );
    page.push_str(".TP\n/usr/share/keepmon/monitors/, /usr/share/keepmon/alerts/\nThe shipped Lua monitors and alerts, searched after \\fBluadir\\fR.\n");
    page.push_str(
        ".SH \"SEE ALSO\"\n\\fBkeepmon\\fR(8), \\fBmon\\fR(8), \\fBkeepalived.conf\\fR(5)\n",
    );
    page
}

/// Text for roff: backslashes and hyphens escaped, a leading `.` or `'`
/// (a control character) neutralised.
pub fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

const EXTRA_SECTIONS_8: &str = r#".SH FILES
.TP
/etc/keepmon/keepmon.toml
The configuration used by the packaged service (and by \fBkeepmon\fR without \fB\-c\fR when it exists); see \fBkeepmon.toml\fR(5).
.TP
/var/lib/keepmon/
The state directory of the packaged configuration: service state, the mail outbox and the control socket \fBkeepmon.sock\fR.
.TP
/usr/share/keepmon/monitors/, /usr/share/keepmon/alerts/
The shipped Lua monitors and alerts.
.TP
keepmon.service, keepmon@.service
The systemd units. keepmon is \fBType=notify\fR: it sends \fBREADY=1\fR once the config compiled, its sockets are bound and the first checks are scheduled, \fBRELOADING=1\fR and \fBREADY=1\fR around a reload, \fBSTOPPING=1\fR, a \fBSTATUS=\fR line like \fBkeepmon status\fR, and \fBWATCHDOG=1\fR from its event loop while the loop, the VRRP instances and the proxy threads are alive.
.SH SIGNALS
.TP
SIGHUP
Reload the config (like \fBkeepmon reload\fR); unchanged services keep their state.
.TP
SIGTERM, SIGINT
Stop gracefully (like \fBkeepmon stop\fR).
.SH ENVIRONMENT
.TP
KEEPMON_LOG
The log filter (default \fBinfo\fR), e.g. \fBdebug\fR or \fBkeepmon::vrrp=debug\fR.
.TP
NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID, JOURNAL_STREAM
Set by systemd; see \fBsd_notify\fR(3) and \fBsystemd.exec\fR(5).
.SH "SEE ALSO"
\fBkeepmon.toml\fR(5), \fBmon\fR(8), \fBkeepalived\fR(8), \fBipvsadm\fR(8), \fBsystemctl\fR(1), \fBjournalctl\fR(1)
"#;

/// Subcommands worth a line: not hidden, not clap's own `help`.
fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn describe_command(page: &mut String, parents: &[&str], cmd: &clap::Command) {
    let mut path: Vec<&str> = parents.to_vec();
    path.push(cmd.get_name());
    let subs: Vec<&clap::Command> = visible_subcommands(cmd).collect();
    if !subs.is_empty() {
        for sub in subs {
            describe_command(page, &path, sub);
        }
        return;
    }
    let mut usage = format!("\\fBkeepmon {}\\fR", escape(&path.join(" ")));
    // The global options (-c, --format) are described once, under OPTIONS.
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
    {
        if arg.get_id() == "help" {
            continue;
        }
        if arg.is_positional() {
            let name = arg
                .get_value_names()
                .and_then(|v| v.first())
                .map(|n| n.to_string())
                .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
            let many = matches!(arg.get_action(), clap::ArgAction::Append)
                || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
            let _ = write!(
                usage,
                " \\fI{}\\fR{}",
                escape(&name),
                if many { "..." } else { "" }
            );
        } else if let Some(long) = arg.get_long() {
            let _ = write!(usage, " [\\fB\\-\\-{}\\fR]", escape(long));
        }
    }
    page.push_str(".TP\n");
    let _ = writeln!(page, "{usage}");
    let about = cmd
        .get_long_about()
        .or_else(|| cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = writeln!(page, "{}", escape(&about.replace('\n', " ")));
    let options: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter(|a| !a.is_positional() && a.get_id() != "help")
        .filter(|a| a.get_help().is_some() || a.get_long_help().is_some())
        .collect();
    if !options.is_empty() {
        page.push_str(".RS\n");
        for arg in options {
            describe_arg(page, arg);
        }
        page.push_str(".RE\n");
    }
}

fn describe_arg(page: &mut String, arg: &clap::Arg) {
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("\\fB\\-{}\\fR", escape(&short.to_string())));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", escape(long)));
    }
    let mut line = names.join(", ");
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count
        );
    if takes_value {
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        let shown = if values.is_empty() {
            arg.get_value_names()
                .and_then(|v| v.first())
                .map(|n| n.to_string())
                .unwrap_or_else(|| "VALUE".to_string())
        } else {
            values.join("|")
        };
        let _ = write!(line, " \\fI{}\\fR", escape(&shown));
    }
    page.push_str(".TP\n");
    let _ = writeln!(page, "{line}");
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let _ = writeln!(page, "{}", escape(&help.replace('\n', " ")));
}

fn paragraphs(page: &mut String, text: &str) {
    for paragraph in text.split("\n\n") {
        let _ = writeln!(page, "{}", escape(&paragraph.replace('\n', " ")));
        page.push_str(".PP\n");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    None,
    Prose,
    Example,
}

impl Block {
    fn close(&mut self, page: &mut String) {
        if *self == Block::Example {
            page.push_str(".fi\n.RE\n");
        }
        *self = Block::None;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line<'a> {
    Section(&'a str),
    Prose(&'a str),
    Example(&'a str),
    Break,
}

/// What one line of the annotated config is on the page.
fn classify(line: &str) -> Line<'_> {
    let trimmed = line.trim_end();
    if trimmed.is_empty() {
        return Line::Break;
    }
    let Some(comment) = trimmed.strip_prefix('#') else {
        return Line::Example(trimmed);
    };
    if comment.trim().is_empty() {
        return Line::Break;
    }
    if let Some(title) = comment.trim().strip_prefix("---") {
        return Line::Section(title.trim_matches(|c: char| c == '-' || c.is_whitespace()));
    }
    let text = comment.strip_prefix(' ').unwrap_or(comment);
    if looks_like_config(text) {
        Line::Example(text)
    } else {
        Line::Prose(text.trim())
    }
}

/// A commented-out config line or an indented command, not prose.
fn looks_like_config(text: &str) -> bool {
    if text.starts_with("  ") || text.starts_with(']') {
        return true;
    }
    // A table header: `[name]` or `[[name]]`, then nothing but a comment.
    if text.starts_with('[') {
        let rest = text.trim_start_matches('[');
        return rest.find(']').is_some_and(|end| {
            let after = rest[end..].trim_start_matches(']').trim();
            after.is_empty() || after.starts_with('#')
        });
    }
    // `key = value`: keys are lower case (prose starts with a capital).
    let key: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '"'))
        .collect();
    key.starts_with(|c: char| c.is_ascii_lowercase() || c == '"')
        && text[key.len()..].trim_start().starts_with('=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_the_annotated_config_are_sections_prose_or_examples() {
        let check = |line: &str, expected: Line| assert_eq!(classify(line), expected);
        check("# --- The daemon -----", Line::Section("The daemon"));
        check(
            "# Every key is optional.",
            Line::Prose("Every key is optional."),
        );
        check("[daemon]", Line::Example("[daemon]"));
        check(
            "statedir = \"state\"",
            Line::Example("statedir = \"state\""),
        );
        check(
            "# maxprocs = 0      # most at once",
            Line::Example("maxprocs = 0      # most at once"),
        );
        check("# [mail.smtp]", Line::Example("[mail.smtp]"));
        check(
            "#   keepmon start -c x",
            Line::Example("  keepmon start -c x"),
        );
        check(
            "# [watch.G.S] is one service",
            Line::Prose("[watch.G.S] is one service"),
        );
        check(
            "# [[watch.a.b.period]]",
            Line::Example("[[watch.a.b.period]]"),
        );
        check("# Present = enabled.", Line::Prose("Present = enabled."));
        check("#", Line::Break);
        check("", Line::Break);
        check(
            "# Write key = value pairs",
            Line::Prose("Write key = value pairs"),
        );
    }

    #[test]
    fn roff_control_characters_and_backslashes_are_escaped() {
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("'quote"), "\\&'quote");
        assert_eq!(escape("a\\b -c"), "a\\eb \\-c");
    }

    #[test]
    fn the_config_page_has_sections_prose_and_examples() {
        let page = keepmon_toml_5(
            "# Intro.\n\n# --- The daemon ---\n# Every key is optional.\n[daemon]\nstatedir = \"state\"\n",
            "1.0",
        );
        assert_eq!(
            page.lines().take(7).collect::<Vec<_>>().join("\n"),
            ".TH KEEPMON.TOML 5 \"\" \"keepmon 1.0\" \"File Formats\"\n.SH NAME\nkeepmon.toml \\- the native configuration file of keepmon\n.SH SYNOPSIS\n/etc/keepmon/keepmon.toml\n.SH DESCRIPTION\nThe native configuration of \\fBkeepmon\\fR(8) is TOML. keepmon also reads mon.cf unchanged (any file not ending in .toml). This page is the annotated example configuration shipped with keepmon; every key shown commented out is optional."
        );
        assert!(page.contains(
            ".PP\nIntro.\n.SH \"THE DAEMON\"\n.PP\nEvery key is optional.\n.PP\n.RS 4\n.nf\n[daemon]\nstatedir = \"state\"\n.fi\n.RE\n"
        ), "{page}");
    }
}
