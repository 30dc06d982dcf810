//! heroku/release-phase's config in `project.toml`, so an app can switch to
//! preheat without rewriting it. Each `[[com.heroku.phase.release]]` entry
//! (`command` = the program, `args` = its arguments, optional `source`, as in
//! heroku/buildpacks-release-phase's `Executable`) becomes a required
//! `[[migrate]]` step that runs its argv without a shell, in order.
//! `[com.heroku.phase.release-build]` (static artifacts) is not something
//! preheat does: it is reported, never silently dropped.

use super::diagnostic::{Located, closest, from_toml, invalid, list, parse_unknown_field};
use super::{Action, ConfigError, Step};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub(crate) const FILE_NAME: &str = "project.toml";
const RELEASE: &str = "[[com.heroku.phase.release]]";
const RELEASE_BUILD: &str = "[com.heroku.phase.release-build]";
const PHASE_KEYS: [&str; 2] = ["release", "release-build"];
const ENTRY_KEYS: [&str; 3] = ["command", "args", "source"];

/// What an app's `project.toml` asks of release phase.
#[derive(Debug, Clone)]
pub(crate) struct ReleasePhase {
    pub(crate) path: PathBuf,
    /// One required `[[migrate]]` step per `[[com.heroku.phase.release]]`.
    pub(crate) steps: Vec<Step>,
    /// `[com.heroku.phase.release-build]`: its command and line, which preheat does not run.
    pub(crate) release_build: Option<(String, usize)>,
}

impl ReleasePhase {
    /// The warning for `[com.heroku.phase.release-build]`, when there is one.
    pub(crate) fn release_build_warning(&self) -> Option<String> {
        let (command, line) = self.release_build.as_ref()?;
        Some(format!(
            "{}:{line}: preheat does not run {RELEASE_BUILD} (`{command}`).\n\nThat table builds static artifacts during release phase and loads them into every web dyno, which is heroku/release-phase's job, not preheat's; this build will not produce them. Keep heroku/release-phase in the buildpack group for it, or build the artifacts at build time (an `npm run build` in the app's own buildpack), then remove the table.",
            self.path.display()
        ))
    }
}

// The shapes as written. Only `com.heroku.phase` is read; the rest of
// project.toml (`[_]`, `[io.buildpacks]`, other namespaces) belongs to others.
#[derive(Deserialize)]
struct RawProject {
    com: Option<RawCom>,
}

#[derive(Deserialize)]
struct RawCom {
    heroku: Option<RawHeroku>,
}

#[derive(Deserialize)]
struct RawHeroku {
    phase: Option<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    release: Option<Vec<Spanned<RawEntry>>>,
    #[serde(rename = "release-build")]
    release_build: Option<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    command: Option<Spanned<toml::Value>>,
    args: Option<Spanned<toml::Value>>,
    source: Option<Spanned<toml::Value>>,
}

/// Whether `dir/project.toml` has `[[com.heroku.phase.release]]` commands,
/// for detect. A file that does not parse counts when it names the table, so
/// that the build, not detect, reports where it is broken. `release-build`
/// alone does not count: preheat cannot run it.
pub(crate) fn declares_release_phase(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(FILE_NAME)) else {
        return false;
    };
    match toml::from_str::<toml::Table>(&text) {
        Ok(table) => table
            .get("com")
            .and_then(|com| com.get("heroku"))
            .and_then(|heroku| heroku.get("phase"))
            .and_then(|phase| phase.get("release"))
            .is_some(),
        Err(_) => text.contains("com.heroku.phase.release"),
    }
}

/// Reads `dir/project.toml`: `Ok(None)` when there is no file or it has no
/// `com.heroku.phase`; an error with its line and column when that part is malformed.
pub(crate) fn load(dir: &Path) -> Result<Option<ReleasePhase>, ConfigError> {
    let path = dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<Option<ReleasePhase>, ConfigError> {
    let locate = |located: Located| invalid(text, path, located);
    let raw: RawProject = toml::from_str(text).map_err(|e| locate(syntax(&e)))?;
    let Some(phase) = raw.com.and_then(|c| c.heroku).and_then(|h| h.phase) else {
        return Ok(None);
    };
    let span = phase.span();
    let phase = phase.into_inner();
    check_shape(&phase, span).map_err(locate)?;
    // The table again, typed this time: its spans point into `text`.
    let typed: RawPhaseDoc = toml::from_str(text).map_err(|e| locate(field(&e)))?;
    let phase = typed.com.heroku.phase;
    let steps = phase
        .release
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, entry)| step(i, entry))
        .collect::<Result<Vec<_>, _>>()
        .map_err(locate)?;
    let release_build = match phase.release_build {
        Some(entry) => {
            let start = entry.span().start;
            let argv = argv(RELEASE_BUILD, entry).map_err(locate)?;
            let line = text[..start.min(text.len())].matches('\n').count() + 1;
            Some((show_argv(&argv), line))
        }
        None => None,
    };
    Ok(Some(ReleasePhase {
        path: path.to_path_buf(),
        steps,
        release_build,
    }))
}

#[derive(Deserialize)]
struct RawPhaseDoc {
    com: RawComDoc,
}

#[derive(Deserialize)]
struct RawComDoc {
    heroku: RawHerokuDoc,
}

#[derive(Deserialize)]
struct RawHerokuDoc {
    phase: RawPhase,
}

/// The kinds of value each key holds, with the table's own words for what to
/// write. Unknown keys are left to the typed pass, which points at the key.
fn check_shape(phase: &toml::Table, span: std::ops::Range<usize>) -> Result<(), Located> {
    if let Some(release) = phase.get("release") {
        let ok = release
            .as_array()
            .is_some_and(|items| items.iter().all(toml::Value::is_table));
        if !ok {
            return Err(Located::new(
                span,
                "`com.heroku.phase.release` must be an array of tables",
                format!(
                    "Write each release command as its own {RELEASE} table, with `command = \"bash\"` and `args = [\"-c\", \"…\"]`."
                ),
            ));
        }
    }
    if let Some(build) = phase.get("release-build")
        && !build.is_table()
    {
        return Err(Located::new(
            span,
            "`com.heroku.phase.release-build` must be one table",
            format!("Write it as {RELEASE_BUILD}, with `command` and `args`."),
        ));
    }
    Ok(())
}

fn syntax(error: &toml::de::Error) -> Located {
    let mut located = from_toml(error);
    located.help =
        "project.toml is not valid TOML here; `pack` and the platform read it too. Fix the syntax at this place."
            .to_string();
    located
}

fn field(error: &toml::de::Error) -> Located {
    let mut located = from_toml(error);
    if let Some((unknown, expected)) = parse_unknown_field(error.message().trim()) {
        let (keys, what): (&[&str], &str) = if expected.iter().any(|k| k == "release-build") {
            (&PHASE_KEYS, "[com.heroku.phase] takes")
        } else {
            (&ENTRY_KEYS, "A release command takes")
        };
        let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
        located.help = match closest(&unknown, &keys) {
            Some(best) => format!("Did you mean `{best}`? {what} {}.", list(&keys)),
            None => format!("{what} {} only.", list(&keys)),
        };
    } else {
        located.help = format!(
            "A release command is `command = \"bash\"` with `args = [\"-c\", \"…\"]`, as heroku/release-phase reads {RELEASE}."
        );
    }
    located
}

fn step(index: usize, entry: Spanned<RawEntry>) -> Result<Step, Located> {
    let argv = argv(RELEASE, entry)?;
    Ok(Step {
        name: format!("release #{}", index + 1),
        action: Action::Exec(argv),
        timeout: None,
        required: true,
        only_if_env: Vec::new(),
        lock: None,
    })
}

/// `command` plus `args`, checked: the argv to run.
fn argv(table: &str, entry: Spanned<RawEntry>) -> Result<Vec<String>, Located> {
    let span = entry.span();
    let entry = entry.into_inner();
    let example = "`command = \"bash\"`, `args = [\"-c\", \"rake db:migrate\"]`";
    let Some(command) = entry.command else {
        return Err(Located::new(
            span,
            format!("this {table} table has no `command`"),
            format!("Give the program to run and its arguments, like {example}."),
        ));
    };
    let program = match command.get_ref() {
        toml::Value::String(program) if !program.trim().is_empty() => program.clone(),
        toml::Value::String(_) => {
            return Err(Located::new(
                command.span(),
                "`command` is empty",
                format!("Give the program to run, like {example}."),
            ));
        }
        toml::Value::Array(_) => {
            return Err(Located::new(
                command.span(),
                "`command` is a list; heroku/release-phase takes the program alone in `command`",
                format!("Put the program in `command` and the rest in `args`, like {example}."),
            ));
        }
        other => {
            return Err(Located::new(
                command.span(),
                format!("`command` is a {}, not a string", other.type_str()),
                format!("Give the program as a string, like {example}."),
            ));
        }
    };
    let mut argv = vec![program];
    if let Some(args) = entry.args {
        let strings = args.get_ref().as_array().and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        });
        let Some(strings) = strings else {
            return Err(Located::new(
                args.span(),
                "`args` must be a list of strings",
                format!("Write the arguments as strings, like {example}."),
            ));
        };
        argv.extend(strings);
    }
    if let Some(source) = entry.source
        && !source.get_ref().is_str()
    {
        return Err(Located::new(
            source.span(),
            "`source` must be a string",
            "`source` only names where the command came from, like `source = \"My App\"`; remove it or quote it.",
        ));
    }
    Ok(argv)
}

/// `bash -c 'rake db:migrate'`: an argv as a reader would type it.
pub(crate) fn show_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Option<ReleasePhase>, String> {
        parse(text, Path::new("project.toml")).map_err(|e| e.to_string())
    }

    fn argvs(phase: &ReleasePhase) -> Vec<Vec<String>> {
        phase
            .steps
            .iter()
            .map(|s| match &s.action {
                Action::Exec(argv) => argv.clone(),
                other => panic!("not argv: {other:?}"),
            })
            .collect()
    }

    /// heroku/buildpacks-release-phase's README example, with the rest of a project.toml.
    const README: &str = r#"[_]
schema-version = "0.2"

[[io.buildpacks.group]]
uri = "heroku/release-phase"

[[com.heroku.phase.release]]
command = "bash"
args = ["-c", "rake db:migrate"]

[[com.heroku.phase.release]]
command = "./bin/purge-cache"
source = "My App"
"#;

    #[test]
    fn release_commands_become_required_argv_steps_in_order() {
        let phase = parse_text(README).expect("valid").expect("has the table");
        assert_eq!(
            argvs(&phase),
            vec![
                vec!["bash".to_string(), "-c".into(), "rake db:migrate".into()],
                vec!["./bin/purge-cache".to_string()],
            ]
        );
        assert_eq!(phase.steps[0].name, "release #1");
        assert!(phase.steps.iter().all(|s| s.required && s.lock.is_none()));
        assert!(phase.release_build.is_none());
        assert!(phase.release_build_warning().is_none());
    }

    #[test]
    fn without_the_table_there_is_nothing() {
        assert!(
            parse_text("[_]\nschema-version = \"0.2\"\n")
                .expect("valid")
                .is_none()
        );
        assert!(
            parse_text("[com.example]\nx = 1\n")
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn release_build_is_reported_with_its_line() {
        let text = "[_]\nschema-version = \"0.2\"\n\n[com.heroku.phase.release-build]\ncommand = \"bash\"\nargs = [\"-c\", \"npm run build\"]\n";
        let phase = parse_text(text).expect("valid").expect("has the table");
        assert!(phase.steps.is_empty());
        let warning = phase.release_build_warning().expect("a warning");
        assert!(
            warning.starts_with("project.toml:4: preheat does not run [com.heroku.phase.release-build] (`bash -c 'npm run build'`)"),
            "{warning}"
        );
        assert!(warning.contains("will not produce them"), "{warning}");
    }

    #[test]
    fn malformed_tables_fail_with_their_place() {
        let cases = [
            (
                "[com.heroku.phase.release]\ncommand = \"bash\"\n",
                "project.toml:1:",
                "must be an array of tables",
            ),
            (
                "[[com.heroku.phase.release]]\ncommand = [\"bash\", \"-c\", \"x\"]\n",
                "project.toml:2:11:",
                "`command` is a list",
            ),
            (
                "[[com.heroku.phase.release]]\ncommand = \"bash\"\narg = [\"-c\", \"x\"]\n",
                "project.toml:3:1:",
                "Did you mean `args`?",
            ),
            (
                "[[com.heroku.phase.release]]\ncommand = \"bash\"\nargs = \"-c x\"\n",
                "project.toml:3:8:",
                "`args` must be a list of strings",
            ),
            (
                "[[com.heroku.phase.release]]\ncommand = \"\"\n",
                "project.toml:2:11:",
                "`command` is empty",
            ),
            (
                "[[com.heroku.phase.release]]\nargs = [\"x\"]\n",
                "project.toml:",
                "has no `command`",
            ),
            (
                "[[com.heroku.phase.releases]]\ncommand = \"bash\"\n",
                "project.toml:",
                "Did you mean `release`?",
            ),
            (
                "[[com.heroku.phase.release]]\ncommand = \"bash\n",
                "project.toml:2:",
                "not valid TOML",
            ),
        ];
        for (text, place, message) in cases {
            let error = parse_text(text).expect_err(text);
            assert!(error.starts_with(place), "{text}\n---\n{error}");
            assert!(error.contains(message), "{text}\n---\n{error}");
        }
    }

    #[test]
    fn argv_is_shown_as_typed() {
        let argv = |a: &[&str]| a.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            show_argv(&argv(&["bash", "-c", "rake db:migrate"])),
            "bash -c 'rake db:migrate'"
        );
        assert_eq!(show_argv(&argv(&["echo", "it's"])), r"echo 'it'\''s'");
        assert_eq!(show_argv(&argv(&["bin/x", ""])), "bin/x ''");
    }

    #[test]
    fn detect_sees_the_table_even_when_it_is_broken() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!declares_release_phase(dir.path()));
        std::fs::write(dir.path().join(FILE_NAME), README).expect("write");
        assert!(declares_release_phase(dir.path()));
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[_]\nschema-version = \"0.2\"\n",
        )
        .expect("write");
        assert!(!declares_release_phase(dir.path()));
        std::fs::write(dir.path().join(FILE_NAME), "[[com.heroku.phase.release]\n").expect("write");
        assert!(declares_release_phase(dir.path()));
    }
}
