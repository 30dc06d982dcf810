//! The buildpack: detect and build, as libcnb runs them.

use crate::build_checks::{self, BuildError};
use crate::output;
use libcnb::build::{BuildContext, BuildResult, BuildResultBuilder};
use libcnb::data::layer_name;
use libcnb::detect::{DetectContext, DetectResult, DetectResultBuilder};
use libcnb::generic::{GenericMetadata, GenericPlatform};
use libcnb::layer::{
    CachedLayerDefinition, EmptyLayerCause, InvalidMetadataAction, LayerState, RestoredLayerAction,
};
use libcnb::{Buildpack, additional_buildpack_binary_path};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Name of the exec.d program, under `exec.d/web/` so only `web` runs it.
pub(crate) const BOOT_PROGRAM: &str = "preheat-boot-warmup";

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LayerMetadata {
    version: String,
    /// Checksums of the installed binaries, so a changed build is never served stale.
    digest: String,
}

impl Buildpack for PreheatBuildpack {
    type Platform = GenericPlatform;
    type Metadata = GenericMetadata;
    type Error = PreheatBuildpackError;

    fn detect(&self, context: DetectContext<Self>) -> libcnb::Result<DetectResult, Self::Error> {
        if build_checks::detect(&context.app_dir)? {
            DetectResultBuilder::pass().build()
        } else {
            DetectResultBuilder::fail().build()
        }
    }

    fn build(&self, context: BuildContext<Self>) -> libcnb::Result<BuildResult, Self::Error> {
        let started = bullet_stream::global::print::buildpack(build_checks::HEADER);
        let config = build_checks::validate(&context.app_dir)?;

        let version = env!("CARGO_PKG_VERSION");
        let preheat = additional_buildpack_binary_path!("preheat");
        let boot = additional_buildpack_binary_path!("preheat-boot-warmup");
        let metadata = LayerMetadata {
            version: version.to_string(),
            digest: format!(
                "{}+{}",
                libherokubuildpack::digest::sha256(&preheat).map_err(BuildError::Install)?,
                libherokubuildpack::digest::sha256(&boot).map_err(BuildError::Install)?
            ),
        };
        let layer = context.cached_layer(
            layer_name!("preheat"),
            CachedLayerDefinition {
                build: false,
                launch: true,
                invalid_metadata_action: &|_| InvalidMetadataAction::DeleteLayer,
                restored_layer_action: &|old: &LayerMetadata, _| {
                    if *old == metadata {
                        (RestoredLayerAction::KeepLayer, String::new())
                    } else {
                        (
                            RestoredLayerAction::DeleteLayer,
                            format!("cached version {} differs", old.version),
                        )
                    }
                },
            },
        )?;
        match layer.state {
            LayerState::Restored { .. } => {
                output::bullet(&format!("Reusing preheat {version} from the cached layer"));
            }
            LayerState::Empty { ref cause } => {
                let why = match cause {
                    EmptyLayerCause::NewlyCreated => "new layer".to_string(),
                    EmptyLayerCause::InvalidMetadataAction { .. } => {
                        "cached layer metadata unreadable".to_string()
                    }
                    EmptyLayerCause::RestoredLayerAction { cause } => cause.clone(),
                };
                output::bullet(&format!("Installing preheat {version} ({why})"));
                install(&layer.path(), &preheat, &boot).map_err(BuildError::Install)?;
                layer.write_metadata(metadata)?;
                output::sub_bullet("`preheat` is on PATH at launch");
                output::sub_bullet(&format!(
                    "Boot warm-up runs before every `web` process (exec.d/web/{BOOT_PROGRAM})"
                ));
            }
        }

        build_checks::plan_and_procfile(&config, &context.app_dir)?;
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

fn install(layer: &Path, preheat: &Path, boot: &Path) -> std::io::Result<()> {
    let bin = layer.join("bin");
    let exec_d = layer.join("exec.d").join("web");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&exec_d)?;
    for (from, to) in [
        (preheat, bin.join("preheat")),
        (boot, exec_d.join(BOOT_PROGRAM)),
    ] {
        std::fs::copy(from, &to)?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
