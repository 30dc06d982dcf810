//! preheat: a release phase that a deploy can trust.
//!
//! The buildpack (`src/main.rs`) and the `preheat` binary share this library,
//! so the build-time check of `preheat.toml` is the release-time check.
//!
//! Data flows through the folders in this order, and each may use only the
//! ones before it (plus the shared `output`, `redact`, `exit` and the cold rule `cold`):
//! `config` → `release` → `warmup` → `rehearse` → `platform` → `cli` /
//! `buildpack` (the CNB build, and the classic Cedar compile that shares its checks).
//! ARCHITECTURE.md follows one release and one dyno boot through them.

pub mod buildpack;
pub mod cli;
pub mod warmup;

mod audit;
mod cold;
mod config;
mod exit;
#[cfg(test)]
mod fuzz;
mod output;
mod platform;
mod redact;
mod rehearse;
mod release;
mod telemetry;

// Dev-dependencies that only the integration tests use.
#[cfg(test)]
use libcnb_test as _;
#[cfg(test)]
use tempfile as _;
#[cfg(test)]
use tiny_http as _;
