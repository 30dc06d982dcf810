//! The buildpack: detect and build, as libcnb runs them. Build reads top to
//! bottom, one stage at a time; the layer lives in `preheat_layer`.

mod preheat_layer;

use crate::config::plan;
use crate::config::procfile::{Procfile, ProcfileError, RELEASE_LINE};
use crate::config::{Config, ConfigError, ReadBy};
use crate::output;
use libcnb::build::{BuildContext, BuildResult, BuildResultBuilder};
use libcnb::detect::{DetectContext, DetectResult, DetectResultBuilder};
use libcnb::generic::{GenericMetadata, GenericPlatform};
use libcnb::{Buildpack, additional_buildpack_binary_path};
use std::fmt;
use std::path::Path;

pub struct PreheatBuildpack;

/// Why a build or detect failed; its `Display` is the error block users see.
#[derive(Debug)]
pub struct PreheatBuildpackError(BuildError);

#[derive(Debug)]
enum BuildError {
    Config(ConfigError),
    Procfile(ProcfileError),
    Install(std::io::Error),
}

impl fmt::Display for PreheatBuildpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            BuildError::Config(error) => f.write_str(&error.user_block(ReadBy::Build)),
            BuildError::Procfile(error) => write!(f, "Invalid Procfile\n\n{error}"),
            BuildError::Install(error) => write!(
                f,
                "Could not install preheat into its layer: {error}\n\nThis is a problem with the build environment, not with the app. Retry the build; if it fails again, report it with this output."
            ),
        }
    }
}

impl From<BuildError> for libcnb::Error<PreheatBuildpackError> {
    fn from(error: BuildError) -> Self {
        libcnb::Error::BuildpackError(PreheatBuildpackError(error))
    }
}

impl Buildpack for PreheatBuildpack {
    type Platform = GenericPlatform;
    type Metadata = GenericMetadata;
    type Error = PreheatBuildpackError;

    fn detect(&self, context: DetectContext<Self>) -> libcnb::Result<DetectResult, Self::Error> {
        if context.app_dir.join(crate::config::FILE_NAME).is_file() {
            return DetectResultBuilder::pass().build();
        }
        match Procfile::read(&context.app_dir).map_err(BuildError::Procfile)? {
            Some(procfile) if procfile.release_runs_preheat() => {
                DetectResultBuilder::pass().build()
            }
            _ => {
                println!(
                    "No preheat.toml, and no `{RELEASE_LINE}` entry in the Procfile: preheat is not used."
                );
                DetectResultBuilder::fail().build()
            }
        }
    }

    fn build(&self, context: BuildContext<Self>) -> libcnb::Result<BuildResult, Self::Error> {
        let started = bullet_stream::global::print::buildpack("Preheat (release phase)");
        // Validate preheat.toml with the code that release phase runs.
        let config = Config::load_dir(&context.app_dir).map_err(BuildError::Config)?;
        match &config.source {
            Some(_) => output::bullet("Validated preheat.toml"),
            None => {
                output::bullet("No preheat.toml: the defaults apply (no migrations, warm `GET /`)");
            }
        }

        // Install `preheat` and the exec.d program, or reuse them.
        let preheat = additional_buildpack_binary_path!("preheat");
        let boot = additional_buildpack_binary_path!("preheat-boot-warmup");
        let metadata = preheat_layer::Metadata::current(env!("CARGO_PKG_VERSION"), &preheat, &boot)
            .map_err(BuildError::Install)?;
        preheat_layer::call(&context, &metadata, &preheat, &boot)?;

        // Show the plan, and check that release phase will run it.
        plan::print(&config);
        check_procfile(&context.app_dir).map_err(BuildError::Procfile)?;
        bullet_stream::global::print::all_done(&Some(started));
        BuildResultBuilder::new().build()
    }

    fn on_error(&self, error: libcnb::Error<Self::Error>) {
        match error {
            libcnb::Error::BuildpackError(error) => output::error(&error.to_string()),
            other => output::error(&format!(
                "preheat could not finish the build: {other}\n\nThis is a problem with the build environment or the buildpack. Retry; if it fails again, report it with this output."
            )),
        }
    }
}

fn check_procfile(app_dir: &Path) -> Result<(), ProcfileError> {
    match Procfile::read(app_dir)? {
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
    Ok(())
}
