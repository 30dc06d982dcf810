//! # Install preheat
//!
//! ## Layer dir
//!
//! `bin/preheat`, on `PATH` at launch, and `exec.d/web/preheat-boot-warmup`,
//! which the launcher runs before the `web` process only. Launch only; cached.
//!
//! ## Cache invalidation
//!
//! When preheat's version or the checksum of either binary changes, the layer
//! is cleared and installed again, and the build says which of them changed.

use super::checks::BuildError;
use super::cnb::{PreheatBuildpack, PreheatBuildpackError};
use crate::output;
use libcnb::build::BuildContext;
use libcnb::data::layer_name;
use libcnb::layer::{
    CachedLayerDefinition, EmptyLayerCause, InvalidMetadataAction, LayerState, RestoredLayerAction,
};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Name of the exec.d program, under `exec.d/web/` so only `web` runs it.
pub(crate) const BOOT_PROGRAM: &str = "preheat-boot-warmup";

/// What the cached layer was built from. Its TOML form is stored with the
/// layer; `metadata_guard` pins it, so a change never silently breaks caches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Metadata {
    /// preheat's version (`CARGO_PKG_VERSION`).
    pub(crate) version: String,
    /// SHA-256 of `preheat`, `+`, SHA-256 of `preheat-boot-warmup`, so a
    /// changed build of the same version is never served stale.
    pub(crate) digest: String,
}

impl Metadata {
    /// The metadata of the binaries this buildpack ships.
    pub(crate) fn current(version: &str, preheat: &Path, boot: &Path) -> std::io::Result<Self> {
        Ok(Self {
            version: version.to_string(),
            digest: format!(
                "{}+{}",
                libherokubuildpack::digest::sha256(preheat)?,
                libherokubuildpack::digest::sha256(boot)?
            ),
        })
    }

    /// What differs from `old`, one phrase per field; empty when nothing does.
    pub(crate) fn diff(&self, old: &Self) -> Vec<String> {
        let mut changes = Vec::new();
        if self.version != old.version {
            changes.push(format!(
                "preheat version `{}` to `{}`",
                old.version, self.version
            ));
        }
        if self.digest != old.digest {
            let (new_parts, old_parts) = (self.digest.split('+'), old.digest.split('+'));
            let binaries = ["preheat", BOOT_PROGRAM];
            let (new_parts, old_parts): (Vec<_>, Vec<_>) =
                (new_parts.collect(), old_parts.collect());
            if new_parts.len() == binaries.len() && old_parts.len() == binaries.len() {
                for ((binary, new), old) in binaries.iter().zip(new_parts).zip(old_parts) {
                    if new != old {
                        changes.push(format!(
                            "checksum of `{binary}` `{}` to `{}`",
                            short(old),
                            short(new)
                        ));
                    }
                }
            } else {
                changes.push("binary checksums, stored in an older format".to_string());
            }
        }
        changes
    }
}

/// The first 8 characters of a checksum: enough to tell two builds apart.
fn short(digest: &str) -> &str {
    digest.get(..8).unwrap_or(digest)
}

/// Restores or installs the layer, and says which.
pub(crate) fn call(
    context: &BuildContext<PreheatBuildpack>,
    metadata: &Metadata,
    preheat: &Path,
    boot: &Path,
) -> libcnb::Result<(), PreheatBuildpackError> {
    let layer = context.cached_layer(
        layer_name!("preheat"),
        CachedLayerDefinition {
            build: false,
            launch: true,
            invalid_metadata_action: &|_| InvalidMetadataAction::DeleteLayer,
            restored_layer_action: &|old: &Metadata, _| {
                let changes = metadata.diff(old);
                if changes.is_empty() {
                    (RestoredLayerAction::KeepLayer, String::new())
                } else {
                    (
                        RestoredLayerAction::DeleteLayer,
                        format!("cache cleared: {}", changes.join(", ")),
                    )
                }
            },
        },
    )?;
    let version = &metadata.version;
    match layer.state {
        LayerState::Restored { .. } => {
            output::bullet(&format!("Reusing preheat {version} from the cached layer"));
        }
        LayerState::Empty { ref cause } => {
            let why = match cause {
                EmptyLayerCause::NewlyCreated => "new layer",
                EmptyLayerCause::InvalidMetadataAction { .. } => "cached layer metadata unreadable",
                EmptyLayerCause::RestoredLayerAction { cause } => cause.as_str(),
            };
            output::bullet(&format!("Installing preheat {version} ({why})"));
            install(&layer.path(), preheat, boot).map_err(BuildError::Install)?;
            layer.write_metadata(metadata.clone())?;
            output::sub_bullet("`preheat` is on PATH at launch");
            output::sub_bullet(&format!(
                "Boot warm-up runs before every `web` process (exec.d/web/{BOOT_PROGRAM})"
            ));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(version: &str, preheat: &str, boot: &str) -> Metadata {
        Metadata {
            version: version.to_string(),
            digest: format!("{preheat}+{boot}"),
        }
    }

    /// The stored form of the layer metadata. If this fails, old caches will
    /// no longer parse (they are then deleted, not misread): change it on
    /// purpose, and say so in the CHANGELOG.
    #[test]
    fn metadata_guard() {
        let stored =
            toml::to_string(&metadata("0.1.0", "aaaa1111bbbb", "cccc2222dddd")).expect("serialise");
        assert_eq!(
            stored.trim(),
            "version = \"0.1.0\"\ndigest = \"aaaa1111bbbb+cccc2222dddd\""
        );
        let read: Metadata = toml::from_str(&stored).expect("parse");
        assert_eq!(read, metadata("0.1.0", "aaaa1111bbbb", "cccc2222dddd"));
    }

    #[test]
    fn diff_names_the_field_that_changed() {
        let old = metadata("0.1.0", "aaaa1111bbbb", "cccc2222dddd");
        assert_eq!(old.diff(&old), Vec::<String>::new());
        assert_eq!(
            metadata("0.2.0", "aaaa1111bbbb", "cccc2222dddd").diff(&old),
            ["preheat version `0.1.0` to `0.2.0`"]
        );
        assert_eq!(
            metadata("0.1.0", "eeee3333ffff", "cccc2222dddd").diff(&old),
            ["checksum of `preheat` `aaaa1111` to `eeee3333`"]
        );
        assert_eq!(
            metadata("0.1.0", "aaaa1111bbbb", "9999").diff(&old),
            ["checksum of `preheat-boot-warmup` `cccc2222` to `9999`"]
        );
        assert_eq!(
            metadata("0.2.0", "eeee3333ffff", "cccc2222dddd").diff(&old),
            [
                "preheat version `0.1.0` to `0.2.0`",
                "checksum of `preheat` `aaaa1111` to `eeee3333`"
            ]
        );
        let legacy = Metadata {
            version: "0.1.0".to_string(),
            digest: "abc".to_string(),
        };
        assert_eq!(
            old.diff(&legacy),
            ["binary checksums, stored in an older format"]
        );
    }
}
