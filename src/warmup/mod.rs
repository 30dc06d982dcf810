//! The warm-up: make every new web process hot before users reach it.
//!
//! `execd` is the exec.d program the CNB launcher runs before `web`; it never
//! blocks and never fails, and leaves the detached `boot` warmer behind.
//! `boot` is `preheat warm` (on demand, or `--boot`); `portwatch` sees the
//! bind; `requests` replays the `[warmup]` requests in rounds until
//! `converge` says every worker answers warm, each one sent by `oneshot` on a
//! fresh connection with bounded reads. `gate` is `preheat gate -- CMD`, the
//! wrapper that opens `$PORT` only once the app behind it is warm. Uses
//! `config` and `release`'s signal and process handling only; nothing here
//! can fail a release or a launch.

pub(crate) mod boot;
pub(crate) mod converge;
pub(crate) mod dyno_name;
pub mod execd;
pub(crate) mod gate;
pub(crate) mod oneshot;
pub(crate) mod portwatch;
pub(crate) mod requests;
pub(crate) mod sockdiag;
pub(crate) mod traced;
