//! preheat: a release phase that a deploy can trust.
//!
//! The buildpack (`src/main.rs`) and the `preheat` binary share this library,
//! so the build-time check of `preheat.toml` is the release-time check.

pub mod buildpack;
pub mod cli;
pub mod execd;

mod boot;
mod config;
mod duration;
mod exit;
mod fleet;
mod httpstep;
mod notify;
mod output;
mod pglock;
mod plan;
mod platform;
mod process;
mod procfile;
mod redact;
mod rehearse;
mod release;
mod signals;
mod skip;
mod template;
mod warm;

// Dev-dependencies that only the integration tests use.
#[cfg(test)]
use libcnb_test as _;
#[cfg(test)]
use tempfile as _;
#[cfg(test)]
use tiny_http as _;
