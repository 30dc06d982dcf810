//! The CNB buildpack as libcnb runs it: detect, then build, one stage at a
//! time; the layer lives in `preheat_layer`.

use super::checks::{self, BuildError};
use crate::output;
use libcnb::build::{BuildContext, BuildResult, BuildResultBuilder};
use libcnb::detect::{DetectContext, DetectResult, DetectResultBuilder};
use libcnb::generic::{GenericMetadata, GenericPlatform};
use libcnb::{Buildpack, additional_buildpack_binary_path};
use std::fmt;

pub struct PreheatBuildpack;

/// Why a build or detect failed; its `Display` is the error block users see.
#[derive(Debug)]
pub struct PreheatBuildpackError(BuildError);

impl fmt::Display for PreheatBuildpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
        if checks::detect(&context.app_dir)? {
            DetectResultBuilder::pass().build()
        } else {
            DetectResultBuilder::fail().build()
        }
    }

    fn build(&self, context: BuildContext<Self>) -> libcnb::Result<BuildResult, Self::Error> {
        let started = bullet_stream::global::print::buildpack(checks::HEADER);
        // Validate preheat.toml with the code that release phase runs.
        let config = checks::validate(&context.app_dir)?;

        // Install `preheat` and the exec.d program, or reuse them.
        let preheat = additional_buildpack_binary_path!("preheat");
        let boot = additional_buildpack_binary_path!("preheat-boot-warmup");
        let metadata =
            super::preheat_layer::Metadata::current(env!("CARGO_PKG_VERSION"), &preheat, &boot)
                .map_err(BuildError::Install)?;
        super::preheat_layer::call(&context, &metadata, &preheat, &boot)?;

        // Show the plan, and check that release phase will run it.
        checks::plan_and_procfile(&config, &context.app_dir)?;
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
