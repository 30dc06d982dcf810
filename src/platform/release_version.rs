//! Which release `preheat release` runs for, with or without dyno metadata:
//! `HEROKU_RELEASE_VERSION` (Cedar's labs feature), else the release id that
//! Fir writes to `/etc/heroku/release_id` (as heroku/release-phase reads it),
//! looked up through the API, else the newest `pending` release. Every
//! fallback says which source it used.

use super::{Api, ApiError};
use crate::output;
use std::path::PathBuf;
use std::time::Instant;

pub(crate) const RELEASE_ID_FILE: &str = "/etc/heroku/release_id";
/// Overrides [`RELEASE_ID_FILE`], for tests and for platforms that put it elsewhere.
pub(crate) const RELEASE_ID_FILE_VAR: &str = "PREHEAT_RELEASE_ID_FILE";

/// How far back the `pending` search looks (`Range: version ..; order=desc, max=10`).
const PENDING_WINDOW: usize = 10;

fn release_id_path() -> PathBuf {
    std::env::var_os(RELEASE_ID_FILE_VAR)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(RELEASE_ID_FILE), PathBuf::from)
}

/// The id in the file: `Ok(None)` when there is no file; `Err` says what is wrong with it.
fn read_id(path: &std::path::Path) -> Result<Option<String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{} could not be read ({error})", path.display())),
    };
    let id = text.trim();
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(Some(id.to_string()))
    } else {
        Err(format!("{} does not hold a release id", path.display()))
    }
}

/// Why the fleet confirmation cannot be scheduled.
pub(super) enum Unscheduled {
    /// A normal state, said in one line.
    Line(String),
    /// Something is wrong: a warning.
    Warning(String),
}

/// The release version, or why the confirmation cannot be scheduled.
pub(super) fn find(api: &Api, deadline: Instant) -> Result<u64, Unscheduled> {
    let given = std::env::var("HEROKU_RELEASE_VERSION").unwrap_or_default();
    if !given.trim().is_empty() {
        return super::parse_version(&given)
            .map_err(|why| Unscheduled::Warning(format!("HEROKU_RELEASE_VERSION: {why}")));
    }
    let mut missing = vec!["HEROKU_RELEASE_VERSION is not set".to_string()];
    let path = release_id_path();
    let shown = path.display();
    match read_id(&path) {
        Ok(Some(id)) => match api.release_by_id(&id, deadline) {
            Ok(release) => {
                output::sub_bullet(&format!(
                    "Release: v{} (HEROKU_RELEASE_VERSION is not set; release id {id} from {shown}, GET /apps/{}/releases/{id})",
                    release.version,
                    api.app()
                ));
                return Ok(release.version);
            }
            Err(ApiError::NotFound { .. }) => {
                missing.push(format!("release {id} from {shown} is unknown to the API"));
            }
            Err(error) => return Err(Unscheduled::Warning(error.to_string())),
        },
        Ok(None) => missing.push(format!("{shown} does not exist")),
        Err(why) => missing.push(why),
    }
    match api.newest_pending(deadline) {
        Ok(Some(release)) => {
            output::sub_bullet(&format!(
                "Release: v{} (the newest pending release, as {})",
                release.version,
                missing.join(" and ")
            ));
            Ok(release.version)
        }
        Ok(None) => {
            missing.push(format!(
                "none of the {PENDING_WINDOW} newest releases is pending"
            ));
            Err(Unscheduled::Line(format!(
                "not scheduled: no release version ({}), so boot warm-up alone applies",
                missing.join(", ")
            )))
        }
        Err(error) => Err(Unscheduled::Warning(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_id_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("release_id");
        assert_eq!(read_id(&path), Ok(None));
        std::fs::write(&path, "01234567-89ab-4cde-8f01-000000000042\n").expect("write");
        assert_eq!(
            read_id(&path),
            Ok(Some("01234567-89ab-4cde-8f01-000000000042".to_string()))
        );
        std::fs::write(&path, "../../etc/passwd").expect("write");
        assert!(
            read_id(&path)
                .expect_err("not an id")
                .contains("does not hold a release id")
        );
        std::fs::write(&path, "  \n").expect("write");
        assert!(read_id(&path).is_err());
    }
}
