//! The Rust behind the Heroku classic buildpack (Cedar): its bash `bin/detect`
//! and `bin/compile` call the hidden `preheat classic …` steps, so the rules,
//! the plan and the error blocks are the CNB build's own (`buildpack::checks`).
//! The bash scripts only copy files; nothing here writes to the app.

use crate::buildpack::checks::{self, BuildError};
use crate::config::procfile::Procfile;
use crate::exit;
use crate::output;
use std::path::Path;

/// Where compile installs the binaries, relative to the app (`$HOME` at run time).
const INSTALL_DIR: &str = ".heroku/preheat/bin";
/// The script Heroku sources before every dyno's command.
const PROFILE_SCRIPT: &str = ".profile.d/preheat.sh";

/// `preheat classic detect BUILD_DIR`: 0 when preheat applies, 1 when not.
pub(crate) fn detect(build_dir: &Path) -> u8 {
    match checks::detect(build_dir) {
        Ok(true) => exit::OK,
        Ok(false) => exit::FAILED,
        Err(error) => {
            output::error(&error.to_string());
            exit::FAILED
        }
    }
}

/// `preheat classic compile BUILD_DIR`: validates `preheat.toml` and prints
/// what the build does; non-zero, with the located error, for a bad file.
pub(crate) fn compile(build_dir: &Path) -> u8 {
    let started = bullet_stream::global::print::buildpack(checks::HEADER);
    match steps(build_dir) {
        Ok(()) => {
            bullet_stream::global::print::all_done(&Some(started));
            exit::OK
        }
        Err(error) => {
            output::error(&error.to_string());
            match error {
                BuildError::Config(_) => exit::USAGE,
                BuildError::Procfile(_) | BuildError::Install(_) => exit::FAILED,
            }
        }
    }
}

fn steps(build_dir: &Path) -> Result<(), BuildError> {
    let config = checks::validate(build_dir)?;
    output::bullet(&format!(
        "Installing preheat {} into {INSTALL_DIR}",
        env!("CARGO_PKG_VERSION")
    ));
    output::sub_bullet(&format!(
        "`preheat` is on PATH in every dyno ({PROFILE_SCRIPT})"
    ));
    if web_gated(build_dir)? {
        output::sub_bullet(
            "Boot warm-up stands aside: web runs through `preheat gate`, which warms the app before it opens the port",
        );
    } else {
        output::sub_bullet(&format!(
            "Boot warm-up starts on every `web.N` dyno ({PROFILE_SCRIPT})"
        ));
    }
    checks::plan_and_procfile(&config, build_dir)
}

fn web_gated(build_dir: &Path) -> Result<bool, BuildError> {
    Ok(Procfile::read(build_dir)
        .map_err(BuildError::Procfile)?
        .is_some_and(|procfile| procfile.gated_web().is_some()))
}

/// `preheat classic web-gated BUILD_DIR`: 0 when the Procfile's `web:` runs
/// through `preheat gate`, so `.profile.d` starts no boot warmer; else 1.
pub(crate) fn gated(build_dir: &Path) -> u8 {
    match web_gated(build_dir) {
        Ok(true) => exit::OK,
        Ok(false) => exit::FAILED,
        Err(error) => {
            output::error(&error.to_string());
            exit::USAGE
        }
    }
}
