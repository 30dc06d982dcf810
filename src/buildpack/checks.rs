//! What the CNB build and the classic (Heroku Cedar) compile share: the detect
//! rule, the check of `preheat.toml`, the plan, the Procfile warning and the
//! error blocks. One place, so both builds decide and say the same thing.

use crate::config::plan;
use crate::config::procfile::{Procfile, ProcfileError, RELEASE_LINE};
use crate::config::{Config, ConfigError, ReadBy, project_toml};
use crate::output;
use std::fmt;
use std::path::Path;

/// The header both builds print.
pub(crate) const HEADER: &str = "Preheat (release phase)";

/// Why a build or detect failed; its `Display` is the error block users see.
#[derive(Debug)]
pub(crate) enum BuildError {
    Config(ConfigError),
    Procfile(ProcfileError),
    /// Only the CNB build installs a layer.
    #[cfg_attr(not(feature = "cnb"), allow(dead_code))]
    Install(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(error) => f.write_str(&error.user_block(ReadBy::Build)),
            BuildError::Procfile(error) => write!(f, "Invalid Procfile\n\n{error}"),
            BuildError::Install(error) => write!(
                f,
                "Could not install preheat into its layer: {error}\n\nThis is a problem with the build environment, not with the app. Retry the build; if it fails again, report it with this output."
            ),
        }
    }
}

/// The detect rule: a `preheat.toml`, or a Procfile `release:` entry that runs
/// preheat. When neither is there, it says so on stdout.
pub(crate) fn detect(app_dir: &Path) -> Result<bool, BuildError> {
    if app_dir.join(crate::config::FILE_NAME).is_file() {
        return Ok(true);
    }
    // heroku/release-phase's tables: preheat runs those commands, so an app
    // that moves over needs no preheat.toml; and passing lets the build
    // report a malformed table, or a Procfile that does not run preheat.
    if project_toml::declares_release_phase(app_dir) {
        return Ok(true);
    }
    match Procfile::read(app_dir).map_err(BuildError::Procfile)? {
        Some(procfile) if procfile.release_runs_preheat() => Ok(true),
        _ => {
            println!(
                "No preheat.toml, no [[com.heroku.phase.release]] in project.toml, and no `{RELEASE_LINE}` entry in the Procfile: preheat is not used."
            );
            Ok(false)
        }
    }
}

/// Loads and validates `preheat.toml` (a bad file is a located error), and
/// says whether it was there.
pub(crate) fn validate(app_dir: &Path) -> Result<Config, BuildError> {
    let config = Config::load_dir(app_dir).map_err(BuildError::Config)?;
    match &config.source {
        _ if config.runs_project_toml() => output::bullet(&format!(
            "No preheat.toml: validated project.toml; its {} [[com.heroku.phase.release]] command{} run as migrations, in order, without a shell",
            config.migrate.len(),
            if config.migrate.len() == 1 { "" } else { "s" }
        )),
        Some(_) if config.project.is_some() => {
            output::bullet(
                "Validated preheat.toml (it wins over project.toml's release-phase tables)",
            );
        }
        Some(_) => output::bullet("Validated preheat.toml"),
        None => {
            output::bullet("No preheat.toml: the defaults apply (no migrations, warm `GET /`)");
        }
    }
    Ok(config)
}

/// The plan that release phase will run, then the Procfile check.
pub(crate) fn plan_and_procfile(config: &Config, app_dir: &Path) -> Result<(), BuildError> {
    plan::print(config);
    check_procfile(app_dir, config).map_err(BuildError::Procfile)
}

fn check_procfile(app_dir: &Path, config: &Config) -> Result<(), ProcfileError> {
    let procfile = Procfile::read(app_dir)?;
    match &procfile {
        Some(procfile) if procfile.release_runs_preheat() => {
            output::bullet("Procfile runs `preheat release` in release phase");
        }
        Some(procfile) => match procfile.get("release") {
            Some(other) => output::warning(&format!(
                "The Procfile's release entry does not run preheat:\n\n    release: {other}\n\nTo run both, change it to:\n\n    release: {other} && preheat release\n"
            )),
            None => output::warning(&format!(
                "The Procfile has no release entry, so the migrations and priming above will not run.\n\nAdd this line to the Procfile:\n\n    {RELEASE_LINE}\n"
            )),
        },
        None => output::warning(&format!(
            "There is no Procfile, so the migrations and priming above will not run.\n\nCreate a Procfile with this line (and your `web:` command):\n\n    {RELEASE_LINE}\n"
        )),
    }
    if let Some(procfile) = &procfile {
        plan::print_gate(config, procfile);
    }
    Ok(())
}
