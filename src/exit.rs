//! The exit codes that Heroku and scripts rely on.

use std::process::ExitCode;

pub(crate) const OK: u8 = 0;
/// A required step failed; the release is aborted.
pub(crate) const FAILED: u8 = 1;
/// Bad config or bad usage.
pub(crate) const USAGE: u8 = 2;
/// The release deadline passed.
pub(crate) const DEADLINE: u8 = 124;

pub(crate) fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
