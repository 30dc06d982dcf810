//! `preheat.toml`: the one model that both the buildpack (at build time) and
//! the `preheat` binary (at release time) load, so both reject the same files.

mod confirm;
mod diagnostic;
pub(crate) mod duration;
#[cfg(test)]
mod fuzz_tests;
pub(crate) mod plan;
pub(crate) mod procfile;
pub(crate) mod project_toml;
#[cfg(test)]
mod project_toml_fuzz_tests;
mod raw;
mod shape;
pub(crate) mod skip;
mod steps;
pub(crate) mod template;
#[cfg(test)]
mod tests;
mod warmup;

use crate::config::duration::Span;
use crate::config::template::Template;
use confirm::convert_confirm;
pub(crate) use diagnostic::{ConfigError, ReadBy};
use diagnostic::{Located, Problems, from_toml, invalid};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use steps::{check_lock_url, convert_step};
use toml::Spanned;
use warmup::convert_warmup;

pub(crate) const FILE_NAME: &str = "preheat.toml";

/// What `release`, the warmers and the buildpack act on.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Where the file was read from; `None` when the defaults apply.
    pub(crate) source: Option<PathBuf>,
    pub(crate) release: Release,
    pub(crate) migrate: Vec<Step>,
    pub(crate) prime: Vec<Step>,
    pub(crate) warmup: Warmup,
    pub(crate) notify: Option<Notify>,
    /// `[confirm]`: how `preheat await-live` confirms a release through the Platform API.
    pub(crate) confirm: Option<Confirm>,
    /// heroku/release-phase's tables in `project.toml`, when it has them. Its
    /// commands are the `[[migrate]]` steps when there is no preheat.toml.
    pub(crate) project: Option<project_toml::ReleasePhase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    #[serde(default = "default_release_deadline")]
    pub(crate) deadline: Span,
    /// `lock = "postgres"`: the default for every `[[migrate]]` step.
    pub(crate) lock: Option<LockKind>,
    /// The default `lock_timeout` of every `[[migrate]]` step.
    pub(crate) lock_timeout: Option<Span>,
    /// The default `lock_url` of every `[[migrate]]` step.
    pub(crate) lock_url: Option<Spanned<Template>>,
}

impl Default for Release {
    fn default() -> Self {
        Self {
            deadline: default_release_deadline(),
            lock: None,
            lock_timeout: None,
            lock_url: None,
        }
    }
}

fn default_release_deadline() -> Span {
    Span::secs(55 * 60)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Migrate,
    Prime,
}

impl Phase {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Phase::Migrate => "migrate",
            Phase::Prime => "prime",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) timeout: Option<Duration>,
    pub(crate) required: bool,
    pub(crate) only_if_env: Vec<String>,
    /// A migration lock held while the step runs (`[[migrate]]` only).
    pub(crate) lock: Option<LockSpec>,
}

/// The kinds of migration lock; `lock = "postgres"` is the only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// A session-level `pg_advisory_lock` (see `crate::release::pglock`).
    Postgres,
}

impl<'de> Deserialize<'de> for LockKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "postgres" => Ok(LockKind::Postgres),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not a kind of lock; the only one is `lock = \"postgres\"`"
            ))),
        }
    }
}

/// How a `[[migrate]]` step takes its lock: where, and how long it waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockSpec {
    pub(crate) kind: LockKind,
    /// The database to lock; `${DATABASE_URL}` unless `lock_url` is set.
    pub(crate) url: Template,
    /// How long a release waits for another release's lock (`lock_timeout`).
    pub(crate) timeout: Duration,
}

pub(crate) const DEFAULT_LOCK_URL: &str = "${DATABASE_URL}";
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_mins(10);

#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// `run = "…"`, with `bash -c`.
    Command(String),
    /// A program and its arguments, without a shell (project.toml's release commands).
    Exec(Vec<String>),
    Http(HttpStep),
}

#[derive(Debug, Clone)]
pub(crate) struct HttpStep {
    pub(crate) method: Method,
    pub(crate) url: Template,
    pub(crate) headers: Vec<(String, Template)>,
    pub(crate) body: Option<Template>,
    pub(crate) expect: Expect,
    pub(crate) retries: u32,
    pub(crate) timeout: Duration,
}

/// The statuses a response may have to count as a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Any status in the range (inclusive).
    Range(u16, u16),
    /// One of these.
    OneOf(Vec<u16>),
}

impl Expect {
    pub(crate) fn accepts(&self, status: u16) -> bool {
        match self {
            Expect::Range(low, high) => (*low..=*high).contains(&status),
            Expect::OneOf(list) => list.contains(&status),
        }
    }

    fn from_list(list: Option<Vec<Spanned<u16>>>, default: Expect) -> Result<Self, Located> {
        let Some(list) = list else {
            return Ok(default);
        };
        for status in &list {
            if !(100..=599).contains(status.get_ref()) {
                return Err(Located::new(
                    status.span(),
                    format!("{} is not an HTTP status", status.get_ref()),
                    "Use statuses between 100 and 599, like `expect_status = [200, 202]`.",
                ));
            }
        }
        Ok(Expect::OneOf(
            list.into_iter().map(Spanned::into_inner).collect(),
        ))
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Range(200, 299) => f.write_str("2xx"),
            Expect::Range(200, 399) => f.write_str("2xx/3xx"),
            Expect::Range(low, high) => write!(f, "{low}-{high}"),
            Expect::OneOf(list) => {
                let parts: Vec<String> = list.iter().map(u16::to_string).collect();
                f.write_str(&parts.join("/"))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "`{text}` is not an HTTP method; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"
                )));
            }
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Warmup {
    pub(crate) enabled: bool,
    pub(crate) requests: Vec<WarmRequest>,
    /// The fewest rounds; the warm-up goes on until it converges.
    pub(crate) rounds: u32,
    /// The most rounds, converged or not.
    pub(crate) max_rounds: u32,
    pub(crate) concurrency: u32,
    pub(crate) deadline: Duration,
    pub(crate) host: Option<String>,
    pub(crate) url: Option<Template>,
    /// `preheat gate` opens the port by then (from its start), warm or not.
    pub(crate) gate_timeout: Duration,
    /// The gate times this many first user requests after it opens…
    pub(crate) first_users: u32,
    /// …or those that come within this long, whichever ends first.
    pub(crate) first_users_window: Duration,
}

impl Default for Warmup {
    fn default() -> Self {
        Self {
            enabled: true,
            requests: vec![WarmRequest::get("/")],
            rounds: 1,
            max_rounds: DEFAULT_MAX_ROUNDS,
            concurrency: 4,
            deadline: Duration::from_secs(90),
            host: None,
            url: None,
            gate_timeout: DEFAULT_GATE_TIMEOUT,
            first_users: DEFAULT_FIRST_USERS,
            first_users_window: DEFAULT_FIRST_USERS_WINDOW,
        }
    }
}

/// The gate's first-user window: a normal first minute of a dyno.
pub(crate) const DEFAULT_FIRST_USERS: u32 = 200;
pub(crate) const DEFAULT_FIRST_USERS_WINDOW: Duration = Duration::from_mins(1);

/// Under Heroku's 60 s boot timeout, with room for the app to be seen up.
pub(crate) const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug, Clone)]
pub(crate) struct WarmRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, Template)>,
    pub(crate) body: Option<Template>,
    pub(crate) expect: Expect,
    pub(crate) expect_body: Option<String>,
}

impl WarmRequest {
    fn get(path: &str) -> Self {
        Self {
            method: Method::Get,
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
            expect: Expect::Range(200, 399),
            expect_body: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Notify {
    pub(crate) webhook: Template,
}

/// `[confirm]`: the detached `preheat await-live` dyno that confirms a release is live and warm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Confirm {
    pub(crate) enabled: bool,
    /// How long `await-live` (and `restart --rolling`) waits before it gives up.
    pub(crate) deadline: Duration,
    /// How often it polls the Platform API; never below [`MIN_CONFIRM_POLL`].
    pub(crate) poll: Duration,
    /// The detached dyno's `time_to_live`.
    pub(crate) time_to_live: Duration,
    /// Roll back a release that fails through the router (needs a `write` token).
    pub(crate) rollback: bool,
}

/// `[warmup] max_rounds` unless set (or `rounds`, when that is higher).
pub(crate) const DEFAULT_MAX_ROUNDS: u32 = 5;

pub(crate) const DEFAULT_CONFIRM_DEADLINE: Duration = Duration::from_mins(30);
pub(crate) const DEFAULT_CONFIRM_POLL: Duration = Duration::from_secs(5);
pub(crate) const MIN_CONFIRM_POLL: Duration = Duration::from_secs(5);
/// How much longer than `deadline` the detached dyno lives by default.
pub(super) const TIME_TO_LIVE_MARGIN: Duration = Duration::from_mins(5);
/// Heroku stops one-off dynos after 24 hours whatever they ask for.
pub(super) const MAX_TIME_TO_LIVE: Duration = Duration::from_hours(24);

impl Default for Confirm {
    fn default() -> Self {
        Self {
            enabled: true,
            deadline: DEFAULT_CONFIRM_DEADLINE,
            poll: DEFAULT_CONFIRM_POLL,
            time_to_live: DEFAULT_CONFIRM_DEADLINE + TIME_TO_LIVE_MARGIN,
            rollback: false,
        }
    }
}

impl Config {
    /// The plan when an app has no `preheat.toml`.
    pub(crate) fn defaults() -> Self {
        Self {
            source: None,
            release: Release::default(),
            migrate: Vec::new(),
            prime: Vec::new(),
            warmup: Warmup::default(),
            notify: None,
            confirm: None,
            project: None,
        }
    }

    /// Loads `preheat.toml` from an app directory. Without it, the release
    /// commands of a heroku/release-phase `project.toml` are the `[[migrate]]`
    /// steps; without either, the defaults apply. A `project.toml` that is
    /// malformed where preheat reads it is an error either way.
    pub(crate) fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let project = project_toml::load(dir)?;
        let path = dir.join(FILE_NAME);
        let mut config = match std::fs::read(&path) {
            Ok(bytes) => Self::parse_bytes(&bytes, &path)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut config = Self::defaults();
                if let Some(project) = project.as_ref().filter(|p| !p.steps.is_empty()) {
                    config.source = Some(project.path.clone());
                    config.migrate.clone_from(&project.steps);
                }
                config
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        config.project = project;
        Ok(config)
    }

    /// Whether the steps come from project.toml's `[[com.heroku.phase.release]]`.
    pub(crate) fn runs_project_toml(&self) -> bool {
        self.project
            .as_ref()
            .is_some_and(|p| self.source.as_ref() == Some(&p.path))
    }

    /// Parses the file as read: a byte that is not UTF-8 is an error at its line and column.
    pub(crate) fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Self, ConfigError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text, path),
            Err(error) => {
                // The lossy text keeps the valid prefix byte for byte, so the offset holds.
                let text = String::from_utf8_lossy(bytes);
                let at = error.valid_up_to();
                let byte = bytes.get(at).copied().unwrap_or_default();
                Err(invalid(
                    &text,
                    path,
                    Located::new(
                        at..at,
                        format!("byte 0x{byte:02x} is not UTF-8 text"),
                        "Save preheat.toml as UTF-8; TOML files must be UTF-8.",
                    ),
                ))
            }
        }
    }

    /// Parses and validates; `path` only names the file in errors. Every problem in the
    /// file is reported at once, in file order, unknown keys and wrong types included;
    /// only TOML that does not parse stops early, since it hides the rest.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let (raw, shape) =
            shape::read(text).map_err(|error| invalid(text, path, from_toml(&error)))?;
        let mut problems = Problems::with_shape(shape);
        if let Some(url) = &raw.release.lock_url {
            problems.keep(check_lock_url(url));
        }
        let migrate: Vec<_> = raw
            .migrate
            .into_iter()
            .enumerate()
            .filter_map(|(i, step)| {
                problems.keep(convert_step(Phase::Migrate, i, step, &raw.release))
            })
            .collect();
        let prime: Vec<_> = raw
            .prime
            .into_iter()
            .enumerate()
            .filter_map(|(i, step)| {
                problems.keep(convert_step(Phase::Prime, i, step, &raw.release))
            })
            .collect();
        let warmup = match raw.warmup {
            Some(warmup) => problems.keep(convert_warmup(warmup)).unwrap_or_default(),
            None => Warmup::default(),
        };
        let confirm = raw
            .confirm
            .and_then(|confirm| problems.keep(convert_confirm(confirm)));
        problems.into_result(text, path)?;
        Ok(Self {
            source: Some(path.to_path_buf()),
            release: raw.release,
            migrate,
            prime,
            warmup,
            notify: raw.notify,
            confirm,
            project: None,
        })
    }

    /// The `[confirm]` settings, or their defaults when the table is absent.
    pub(crate) fn confirm_settings(&self) -> Confirm {
        self.confirm.clone().unwrap_or_default()
    }

    pub(crate) fn steps(&self, phase: Phase) -> &[Step] {
        match phase {
            Phase::Migrate => &self.migrate,
            Phase::Prime => &self.prime,
        }
    }
}
