//! Config errors with file, line, column, a caret under the place, the
//! closest valid key, and what to do.

use indoc::formatdoc;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem at a place in the file, before it gets its file name and line.
pub(super) struct Located {
    pub(super) span: Range<usize>,
    pub(super) message: String,
    pub(super) help: String,
}

impl Located {
    pub(super) fn new(
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Self {
            span,
            message: message.into(),
            help: help.into(),
        }
    }
}

#[derive(Debug)]
pub(crate) enum ConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
        help: String,
    },
    /// More than one problem in the same file, each an `Invalid`, in file order.
    Several(Vec<ConfigError>),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(
                f,
                "Could not read {}: {source}\n\nCheck that the file is readable, or remove it to use the defaults.",
                path.display()
            ),
            ConfigError::Invalid {
                path,
                line,
                column,
                message,
                snippet,
                help,
            } => {
                write!(f, "{}:{line}:{column}: {message}", path.display())?;
                if !snippet.is_empty() {
                    write!(f, "\n\n{snippet}")?;
                }
                write!(f, "\n\n{help}")
            }
            ConfigError::Several(errors) => {
                write!(f, "{} problems in this file:", errors.len())?;
                for error in errors {
                    write!(f, "\n\n{error}")?;
                }
                Ok(())
            }
        }
    }
}

impl ConfigError {
    /// `Invalid preheat.toml`, or `Invalid project.toml`: the title of the error block.
    pub(crate) fn title(&self) -> String {
        let path = match self {
            ConfigError::Read { path, .. } | ConfigError::Invalid { path, .. } => path,
            ConfigError::Several(errors) => match errors.first() {
                Some(first) => return first.title(),
                None => return "Invalid file".to_string(),
            },
        };
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        format!("Invalid {name}")
    }
}

impl std::error::Error for ConfigError {}

/// Who read `preheat.toml`; each says what an invalid file means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadBy {
    /// The buildpack's build: the deploy stops before release phase.
    Build,
    /// `preheat release`: the release is aborted before any step.
    Release,
    /// `preheat rehearse`, which checks the file as the build does.
    Rehearse,
    /// `preheat check`, `warm`, `await-live`, `restart`: the error is the answer.
    Command,
}

impl ConfigError {
    /// The one block users see when `preheat.toml` cannot be used, wherever it was read.
    pub(crate) fn user_block(&self, by: ReadBy) -> String {
        let title = self.title();
        match by {
            ReadBy::Build => formatdoc! {"
                {title}

                {self}

                The build stops here so that a bad file never reaches release phase. Fix the file and deploy again; `preheat check` shows the same error locally."},
            ReadBy::Release => formatdoc! {"
                {title}

                {self}

                The release is aborted before any step ran. Fix the file and deploy again."},
            ReadBy::Rehearse => formatdoc! {"
                {title}

                {self}

                The build would fail here."},
            ReadBy::Command => formatdoc! {"
                {title}

                {self}"},
        }
    }
}

pub(super) fn from_toml(error: &toml::de::Error) -> Located {
    let message = error.message().trim().to_string();
    let span = error.span().unwrap_or(0..0);
    if let Some((unknown, expected)) = parse_unknown_field(&message) {
        let help = match closest(&unknown, &expected) {
            Some(best) => format!(
                "Did you mean `{best}`? Valid keys here: {}.",
                list(&expected)
            ),
            None => format!("Valid keys here: {}.", list(&expected)),
        };
        return Located::new(span, format!("unknown key `{unknown}`"), help);
    }
    Located::new(
        span,
        message,
        "Fix the value at this place; docs/reference.md, “preheat.toml keys”, lists every key.",
    )
}

pub(super) fn list(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads serde's ``unknown field `x`, expected one of `a`, `b` `` message.
/// Whether serde stopped at a key that `deny_unknown_fields` does not know.
pub(super) fn is_unknown_key(error: &toml::de::Error) -> bool {
    parse_unknown_field(error.message().trim()).is_some()
}

pub(super) fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((unknown.to_string(), expected))
}

pub(super) fn closest(unknown: &str, candidates: &[String]) -> Option<String> {
    // Edit distance costs length × length in time and memory; no key is this long.
    if unknown.len() > 64 {
        return None;
    }
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(unknown, c), c))
        .filter(|(distance, c)| *distance <= 3.max(c.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.clone())
}

/// The problems a validation pass found, gathered so that one run reports them all.
/// Each section's validator still returns `Result<_, Located>`; wrap its call in
/// [`Problems::keep`] and a new key's errors join the others.
pub(super) struct Problems {
    found: Vec<Located>,
    /// Tables that lost a wrongly typed key (`shape::Shape::tainted`).
    tainted: Vec<std::ops::Range<usize>>,
}

impl Problems {
    /// Starts from the shape errors. What `keep` later finds inside a table
    /// that lost a wrongly typed key is not reported: it could only say the
    /// key is missing.
    pub(super) fn with_shape(shape: super::shape::Shape) -> Self {
        Self {
            found: shape.problems,
            tainted: shape.tainted,
        }
    }

    /// The value, or `None` with the problem kept for the report.
    pub(super) fn keep<T>(&mut self, result: Result<T, Located>) -> Option<T> {
        result
            .map_err(|located| {
                let start = located.span.start;
                if !self.tainted.iter().any(|t| t.contains(&start)) {
                    self.found.push(located);
                }
            })
            .ok()
    }

    /// `Ok` when nothing was found; otherwise every problem, located, in file order.
    pub(super) fn into_result(mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        self.found.sort_by_key(|located| located.span.start);
        let mut errors: Vec<ConfigError> = self
            .found
            .into_iter()
            .map(|located| invalid(text, path, located))
            .collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Several(errors)),
        }
    }
}

pub(super) fn invalid(text: &str, path: &Path, located: Located) -> ConfigError {
    let start = located.span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let source_line = &text[line_start..line_end];
    let end = located.span.end.clamp(start, line_end);
    let width = text[start..end].chars().count().max(1);
    let gutter = line.to_string().len();
    let snippet = if source_line.trim().is_empty() {
        String::new()
    } else {
        let (shown, offset) = window(source_line, column - 1);
        format!(
            "{pad} |\n{line} | {shown}\n{pad} | {spaces}{carets}",
            pad = " ".repeat(gutter),
            spaces = " ".repeat(offset),
            carets = "^".repeat(width.min(SNIPPET_CHARS)),
        )
    };
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message: cap(located.message, MESSAGE_CHARS),
        snippet,
        help: cap(located.help, HELP_CHARS),
    }
}

/// How much of a long line, or of a long message, an error shows.
const SNIPPET_CHARS: usize = 120;
const MESSAGE_CHARS: usize = 300;
const HELP_CHARS: usize = 600;

/// At most [`SNIPPET_CHARS`] of `line` around char `column`, and where the caret goes in it.
fn window(line: &str, column: usize) -> (String, usize) {
    let total = line.chars().count();
    if total <= SNIPPET_CHARS {
        return (line.to_string(), column);
    }
    let first = column.saturating_sub(SNIPPET_CHARS / 2);
    let mut shown: String = line.chars().skip(first).take(SNIPPET_CHARS).collect();
    let mut offset = column - first;
    if first > 0 {
        shown.insert(0, '…');
        offset += 1;
    }
    if first + SNIPPET_CHARS < total {
        shown.push('…');
    }
    (shown, offset)
}

/// A message that quotes a megabyte of the file would bury the help line.
fn cap(message: String, max: usize) -> String {
    if message.chars().count() <= max {
        return message;
    }
    let cut: String = message.chars().take(max).collect();
    format!("{cut}…")
}
