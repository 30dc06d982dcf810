//! The buildpack: the CNB detect and build (`cnb`, as libcnb runs them) and
//! the classic Cedar compile (`classic`), which share their checks.
//!
//! The `cnb` feature (on by default) brings libcnb; the `preheat` binary does
//! not use it, so the README's rehearsal builds without it.

pub(crate) mod checks;
pub(crate) mod classic;
#[cfg(feature = "cnb")]
mod cnb;
#[cfg(feature = "cnb")]
mod preheat_layer;

#[cfg(feature = "cnb")]
pub use cnb::{PreheatBuildpack, PreheatBuildpackError};
