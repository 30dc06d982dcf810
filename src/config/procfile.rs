//! Just enough of the Procfile: its entries, and whether `release:` runs preheat.

use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) const RELEASE_LINE: &str = "release: preheat release";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Procfile {
    pub(crate) entries: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) enum ProcfileError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    BadLine {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

impl fmt::Display for ProcfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcfileError::Read { path, source } => write!(
                f,
                "Could not read {}: {source}\n\nMake sure the Procfile is a readable UTF-8 text file.",
                path.display()
            ),
            ProcfileError::BadLine { path, line, text } => write!(
                f,
                "{}:{line}: `{text}` is not a Procfile entry\n\nEach line must look like `name: command`, for example `web: bin/server` or `{RELEASE_LINE}`.",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ProcfileError {}

impl Procfile {
    /// Reads `<dir>/Procfile`; `Ok(None)` when there is none.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>, ProcfileError> {
        let path = dir.join("Procfile");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ProcfileError::Read { path, source }),
        }
    }

    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, ProcfileError> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let bad = || ProcfileError::BadLine {
                path: path.to_path_buf(),
                line: index + 1,
                // A megabyte of line would bury the message.
                text: crate::output::shorten(trimmed, 120),
            };
            let (name, command) = trimmed.split_once(':').ok_or_else(bad)?;
            let name = name.trim();
            let command = command.trim();
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name || command.is_empty() {
                return Err(bad());
            }
            entries.push((name.to_string(), command.to_string()));
        }
        Ok(Self { entries })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
    }

    /// Whether the `release:` entry invokes the `preheat` binary.
    pub(crate) fn release_runs_preheat(&self) -> bool {
        self.get("release").is_some_and(runs_preheat)
    }

    /// The app's own command when `web:` is wrapped as `preheat gate -- CMD`;
    /// the boot warmer then stands aside, since the gate warms before it opens.
    pub(crate) fn gated_web(&self) -> Option<&str> {
        self.get("web").and_then(gated_command)
    }
}

/// `CMD` from `[exec] [path/]preheat gate [options] -- CMD`.
pub(crate) fn gated_command(command: &str) -> Option<&str> {
    let rest = command.trim_start();
    let rest = rest.strip_prefix("exec ").map_or(rest, str::trim_start);
    let (program, rest) = rest.split_once(char::is_whitespace)?;
    if program.rsplit('/').next() != Some("preheat") {
        return None;
    }
    let rest = rest.trim_start().strip_prefix("gate")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (_options, inner) = rest.split_once(" -- ")?;
    let inner = inner.trim();
    (!inner.is_empty()).then_some(inner)
}

fn runs_preheat(command: &str) -> bool {
    command
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
        .any(|word| word.rsplit('/').next() == Some("preheat"))
}

#[cfg(test)]
#[path = "procfile_fuzz_tests.rs"]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_gated_web_command() {
        let procfile = Procfile::parse(
            "web: preheat gate -- gunicorn app:app --workers 3\nrelease: preheat release\n",
            Path::new("Procfile"),
        )
        .expect("valid");
        assert_eq!(procfile.gated_web(), Some("gunicorn app:app --workers 3"));
        assert_eq!(
            gated_command("exec /app/bin/preheat gate --verbose -- bundle exec puma"),
            Some("bundle exec puma")
        );
        assert_eq!(gated_command("preheat gate -- "), None);
        assert_eq!(gated_command("preheat gateway -- x"), None);
        assert_eq!(gated_command("preheat release"), None);
        assert_eq!(gated_command("gunicorn app:app -- preheat gate"), None);
    }

    fn parse(text: &str) -> Result<Procfile, ProcfileError> {
        Procfile::parse(text, Path::new("Procfile"))
    }

    #[test]
    fn finds_release_that_runs_preheat() {
        let p = parse("web: bin/web\nrelease: preheat release\n").expect("valid");
        assert_eq!(p.get("web"), Some("bin/web"));
        assert!(p.release_runs_preheat());
        assert!(
            parse("release: ./bin/x && /layers/p/bin/preheat release")
                .expect("valid")
                .release_runs_preheat()
        );
    }

    #[test]
    fn other_release_commands_do_not_count() {
        assert!(
            !parse("release: rake db:migrate")
                .expect("valid")
                .release_runs_preheat()
        );
        assert!(
            !parse("web: preheat-ish")
                .expect("valid")
                .release_runs_preheat()
        );
        assert!(
            !parse("# release: preheat release\nweb: x")
                .expect("valid")
                .release_runs_preheat()
        );
    }

    #[test]
    fn bad_line_is_named() {
        let err = parse("web: x\nthis is not an entry\n").expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("Procfile:2: `this is not an entry`")
        );
    }
}
