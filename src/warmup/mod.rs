//! The warm-up: make every new web process hot before users reach it.
//!
//! `execd` is the exec.d program the CNB launcher runs before `web`; it never
//! blocks and never fails, and leaves the detached `boot` warmer behind.
//! `boot` is `preheat warm` (on demand, or `--boot`); `requests` waits for the
//! port and replays the `[warmup]` requests. `gate` is `preheat gate -- CMD`,
//! the wrapper that opens `$PORT` only once the app behind it is warm. Uses
//! `config` and `release`'s signal and process handling only; nothing here
//! can fail a release or a launch.

pub(crate) mod boot;
pub mod execd;
pub(crate) mod gate;
pub(crate) mod portwatch;
pub(crate) mod requests;
