//! `.env` in the app dir, read as `heroku local` reads it: errors name the
//! line and never show a value.

use crate::output;
use std::path::Path;

/// `.env` in the app dir, as `heroku local` reads it.
pub(super) fn dotenv(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let path = dir.join(".env");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let bytes =
        std::fs::read(&path).map_err(|e| format!("Could not read {}: {e}", path.display()))?;
    let vars = parse_dotenv(&bytes, &path)?;
    output::sub_bullet(&format!("Loaded {} variable(s) from .env", vars.len()));
    Ok(vars)
}

/// The `NAME=value` pairs of a `.env` file; an error names the line, and
/// never shows a value (a `.env` holds secrets).
pub(crate) fn parse_dotenv(bytes: &[u8], path: &Path) -> Result<Vec<(String, String)>, String> {
    let help = "Each line must look like `NAME=value`, as `heroku local` reads it.";
    let file = std::str::from_utf8(bytes).map_err(|error| {
        let line = bytes[..error.valid_up_to()].split(|b| *b == b'\n').count();
        format!(
            "{}:{line}: the file is not UTF-8 text\n\n{help}",
            path.display()
        )
    })?;
    dotenvy::from_read_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| match error {
            dotenvy::Error::LineParse(text, _) => {
                // dotenvy hands back either the line or only its value, so
                // the name is read from the file's line, never from `text`.
                let first = text.lines().next().unwrap_or_default();
                let Some((number, line)) = failing_line(file, first) else {
                    return format!("{}: a line is not `NAME=value`\n\n{help}", path.display());
                };
                let place = format!("{}:{number}", path.display());
                let name = line
                    .split_once('=')
                    .map(|(name, _)| name.trim().trim_start_matches("export ").trim())
                    .filter(|name| crate::config::template::is_var_name(name));
                match name {
                    Some(name) => format!(
                        "{place}: the line for `{}` is not `NAME=value`\n\n{help}",
                        crate::output::shorten(name, 60)
                    ),
                    None => format!("{place}: a line is not `NAME=value`\n\n{help}"),
                }
            }
            other => format!(
                "{} is not a valid .env file: {other}\n\n{help}",
                path.display()
            ),
        })
}

/// The number and text of the first line that is `first` (blanks aside),
/// or whose value after the first `=` is `first`; each comparison stops at
/// its line's end, so this is linear.
fn failing_line<'a>(text: &'a str, first: &str) -> Option<(usize, &'a str)> {
    let first = first.trim();
    if first.is_empty() {
        return None;
    }
    text.split('\n')
        .enumerate()
        .find(|(_, line)| {
            line.trim() == first
                || line
                    .split_once('=')
                    .is_some_and(|(_, value)| value.trim() == first)
        })
        .map(|(index, line)| (index + 1, line))
}

#[cfg(test)]
#[path = "dotenv_fuzz_tests.rs"]
mod fuzz_tests;
