//! The buildpack: detect and build, as libcnb runs them.

use crate::config::plan;
use crate::config::procfile::{Procfile, ProcfileError, RELEASE_LINE};
use crate::config::{Config, ConfigError};
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

#[derive(Debug)]
enum BuildError {
    Config(ConfigError),
    Procfile(ProcfileError),
    Install(std::io::Error),
}

impl fmt::Display for PreheatBuildpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            BuildError::Config(error) => write!(
                f,
                "Invalid preheat.toml\n\n{error}\n\nThe build stops here so that a bad file never reaches release phase. Fix the file and deploy again; `preheat check` shows the same error locally."
            ),
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
        let config = Config::load_dir(&context.app_dir).map_err(BuildError::Config)?;
        match &config.source {
            Some(_) => output::bullet("Validated preheat.toml"),
            None => {
                output::bullet("No preheat.toml: the defaults apply (no migrations, warm `GET /`)");
            }
        }

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

        plan::print(&config);
        check_procfile(&context.app_dir, &config).map_err(BuildError::Procfile)?;
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
