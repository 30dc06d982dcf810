//! `.env` in the app dir, read as `heroku local` reads it: errors name the
//! line and never show a value.

use crate::config::plan;
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
    let line_of = |offset: usize| bytes[..offset].split(|b| *b == b'\n').count();
    if let Err(error) = std::str::from_utf8(bytes) {
        let line = line_of(error.valid_up_to());
        return Err(format!(
            "{}:{line}: the file is not UTF-8 text\n\n{help}",
            path.display()
        ));
    }
    dotenvy::from_read_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| match error {
            dotenvy::Error::LineParse(text, _) => {
                let first = text.lines().next().unwrap_or_default();
                let place = match line_starting_with(bytes, first.as_bytes()) {
                    Some(line) => format!("{}:{line}", path.display()),
                    None => path.display().to_string(),
                };
                // Only a name before `=` is shown: anything else may be a value.
                let name = first
                    .split_once('=')
                    .map(|(name, _)| name.trim().trim_start_matches("export ").trim())
                    .filter(|name| crate::config::template::is_var_name(name));
                match name {
                    Some(name) => format!(
                        "{place}: the line for `{}` is not `NAME=value`\n\n{help}",
                        plan::shorten(name, 60)
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

/// The number of the first line that starts with `start` (leading blanks
/// aside); each comparison stops at its line's end, so this is linear.
fn line_starting_with(bytes: &[u8], start: &[u8]) -> Option<usize> {
    let start = start.trim_ascii_start();
    if start.is_empty() {
        return None;
    }
    bytes
        .split(|b| *b == b'\n')
        .position(|line| line.trim_ascii_start().starts_with(start))
        .map(|index| index + 1)
}

#[cfg(test)]
#[path = "dotenv_fuzz_tests.rs"]
mod fuzz_tests;
