//! `preheat.toml`: the one model that both the buildpack (at build time) and
//! the `preheat` binary (at release time) load, so both reject the same files.

pub(crate) mod duration;
pub(crate) mod plan;
pub(crate) mod procfile;
pub(crate) mod skip;
pub(crate) mod template;

use crate::config::duration::Span;
use crate::config::template::Template;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

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
    Command(String),
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
    pub(crate) rounds: u32,
    pub(crate) concurrency: u32,
    pub(crate) deadline: Duration,
    pub(crate) host: Option<String>,
    pub(crate) url: Option<Template>,
}

impl Default for Warmup {
    fn default() -> Self {
        Self {
            enabled: true,
            requests: vec![WarmRequest::get("/")],
            rounds: 1,
            concurrency: 4,
            deadline: Duration::from_secs(90),
            host: None,
            url: None,
        }
    }
}

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
}

pub(crate) const DEFAULT_CONFIRM_DEADLINE: Duration = Duration::from_mins(30);
pub(crate) const DEFAULT_CONFIRM_POLL: Duration = Duration::from_secs(5);
pub(crate) const MIN_CONFIRM_POLL: Duration = Duration::from_secs(5);
/// How much longer than `deadline` the detached dyno lives by default.
const TIME_TO_LIVE_MARGIN: Duration = Duration::from_mins(5);
/// Heroku stops one-off dynos after 24 hours whatever they ask for.
const MAX_TIME_TO_LIVE: Duration = Duration::from_hours(24);

impl Default for Confirm {
    fn default() -> Self {
        Self {
            enabled: true,
            deadline: DEFAULT_CONFIRM_DEADLINE,
            poll: DEFAULT_CONFIRM_POLL,
            time_to_live: DEFAULT_CONFIRM_DEADLINE + TIME_TO_LIVE_MARGIN,
        }
    }
}

// ---- raw, spanned shapes as they are written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    release: Release,
    #[serde(default)]
    migrate: Vec<Spanned<RawStep>>,
    #[serde(default)]
    prime: Vec<Spanned<RawStep>>,
    warmup: Option<Spanned<RawWarmup>>,
    notify: Option<Notify>,
    confirm: Option<RawConfirm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfirm {
    #[serde(default = "yes")]
    enabled: bool,
    deadline: Option<Spanned<Span>>,
    poll: Option<Spanned<Span>>,
    time_to_live: Option<Spanned<Span>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<String>,
    run: Option<Spanned<String>>,
    http: Option<Spanned<RawHttp>>,
    timeout: Option<Span>,
    #[serde(default = "yes")]
    required: bool,
    #[serde(default)]
    only_if_env: Vec<Spanned<String>>,
    expect_status: Option<Vec<Spanned<u16>>>,
    retries: Option<Spanned<u32>>,
    lock: Option<Spanned<LockKind>>,
    lock_timeout: Option<Spanned<Span>>,
    lock_url: Option<Spanned<Template>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default = "default_http_method")]
    method: Method,
    url: Spanned<Template>,
    #[serde(default)]
    headers: BTreeMap<String, Template>,
    body: Option<Template>,
    timeout: Option<Span>,
}

fn default_http_method() -> Method {
    Method::Get
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarmup {
    #[serde(default = "yes")]
    enabled: bool,
    paths: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    request: Vec<RawWarmRequest>,
    rounds: Option<Spanned<u32>>,
    concurrency: Option<Spanned<u32>>,
    deadline: Option<Span>,
    host: Option<String>,
    url: Option<Spanned<Template>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarmRequest {
    path: Spanned<String>,
    #[serde(default = "default_http_method")]
    method: Method,
    #[serde(default)]
    headers: BTreeMap<String, Template>,
    body: Option<Template>,
    expect_status: Option<Vec<Spanned<u16>>>,
    expect_body: Option<String>,
}

// ---- errors ----

/// A problem at a place in the file, before it gets its file name and line.
struct Located {
    span: Range<usize>,
    message: String,
    help: String,
}

impl Located {
    fn new(span: Range<usize>, message: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            help: help.into(),
        }
    }
}

#[derive(Debug)]
pub(crate) enum ConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
        help: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(
                f,
                "Could not read {}: {source}\n\nCheck that the file is readable, or remove it to use the defaults.",
                path.display()
            ),
            ConfigError::Invalid {
                path,
                line,
                column,
                message,
                snippet,
                help,
            } => {
                write!(f, "{}:{line}:{column}: {message}", path.display())?;
                if !snippet.is_empty() {
                    write!(f, "\n\n{snippet}")?;
                }
                write!(f, "\n\n{help}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

// ---- loading ----

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
        }
    }

    /// Loads `preheat.toml` from an app directory, or the defaults when it is absent.
    pub(crate) fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::defaults()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parses and validates; `path` only names the file in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let locate = |located: Located| invalid(text, path, located);
        let raw: RawConfig = toml::from_str(text).map_err(|error| locate(from_toml(&error)))?;
        if let Some(url) = &raw.release.lock_url {
            check_lock_url(url).map_err(locate)?;
        }
        let migrate = raw
            .migrate
            .into_iter()
            .enumerate()
            .map(|(i, step)| convert_step(Phase::Migrate, i, step, &raw.release))
            .collect::<Result<Vec<_>, _>>()
            .map_err(locate)?;
        let prime = raw
            .prime
            .into_iter()
            .enumerate()
            .map(|(i, step)| convert_step(Phase::Prime, i, step, &raw.release))
            .collect::<Result<Vec<_>, _>>()
            .map_err(locate)?;
        let warmup = match raw.warmup {
            Some(warmup) => convert_warmup(warmup).map_err(locate)?,
            None => Warmup::default(),
        };
        let confirm = raw
            .confirm
            .map(convert_confirm)
            .transpose()
            .map_err(locate)?;
        Ok(Self {
            source: Some(path.to_path_buf()),
            release: raw.release,
            migrate,
            prime,
            warmup,
            notify: raw.notify,
            confirm,
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

fn convert_step(
    phase: Phase,
    index: usize,
    raw: Spanned<RawStep>,
    release: &Release,
) -> Result<Step, Located> {
    let span = raw.span();
    let mut raw = raw.into_inner();
    let table = format!("[[{}]]", phase.key());
    let lock = lock_spec(phase, &mut raw, release)?;
    for var in &raw.only_if_env {
        if !crate::config::template::is_var_name(var.get_ref()) {
            return Err(Located::new(
                var.span(),
                format!("`{}` is not an environment variable name", var.get_ref()),
                "List variable names without `$`, like `only_if_env = [\"DATABASE_URL\"]`.",
            ));
        }
    }
    let action = match (raw.run, raw.http) {
        (Some(_), Some(http)) => {
            return Err(Located::new(
                http.span(),
                format!("this {table} step has both `run` and `http`"),
                "A step does one thing: keep `run` for a command or `http` for a request, and move the other into a step of its own.",
            ));
        }
        (None, None) => {
            return Err(Located::new(
                span,
                format!("this {table} step has neither `run` nor `http`"),
                "Add `run = \"your command\"`, or for [[prime]] an `http = { url = \"https://…\" }` request.",
            ));
        }
        (Some(run), None) => {
            if run.get_ref().trim().is_empty() {
                return Err(Located::new(
                    run.span(),
                    "`run` is empty",
                    "Give the command to run, like `run = \"bundle exec rails db:migrate\"`.",
                ));
            }
            if let Some(retries) = &raw.retries {
                return Err(Located::new(
                    retries.span(),
                    "`retries` applies only to `http` steps",
                    "Remove `retries`; a command step that should retry can loop itself, e.g. `run = \"for i in 1 2 3; do cmd && break; done\"`.",
                ));
            }
            if let Some(status) = raw.expect_status.as_ref().and_then(|list| list.first()) {
                return Err(Located::new(
                    status.span(),
                    "`expect_status` applies only to `http` steps",
                    "Remove `expect_status`; a command step succeeds when it exits 0.",
                ));
            }
            Action::Command(run.into_inner())
        }
        (None, Some(http)) => {
            if phase == Phase::Migrate {
                return Err(Located::new(
                    http.span(),
                    "[[migrate]] steps cannot be `http` requests",
                    "Migrations run commands. Move this request to a [[prime]] step.",
                ));
            }
            let http = http.into_inner();
            check_url(&http.url)?;
            Action::Http(HttpStep {
                method: http.method,
                url: http.url.into_inner(),
                headers: http.headers.into_iter().collect(),
                body: http.body,
                expect: Expect::from_list(raw.expect_status, Expect::Range(200, 299))?,
                retries: raw.retries.map_or(0, Spanned::into_inner),
                timeout: http.timeout.map_or(Duration::from_secs(30), Span::get),
            })
        }
    };
    let name = raw.name.unwrap_or_else(|| match &action {
        Action::Command(run) => format!(
            "{} #{} ({})",
            phase.key(),
            index + 1,
            crate::config::plan::shorten(run, 40)
        ),
        Action::Http(http) => format!("{} {}", http.method.as_str(), http.url.raw()),
    });
    Ok(Step {
        name,
        action,
        timeout: raw.timeout.map(Span::get),
        required: raw.required,
        only_if_env: raw
            .only_if_env
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        lock,
    })
}

/// Resolves a step's `lock`, `lock_timeout` and `lock_url` against the `[release]` defaults.
fn lock_spec(
    phase: Phase,
    raw: &mut RawStep,
    release: &Release,
) -> Result<Option<LockSpec>, Located> {
    let lock = raw.lock.take();
    let timeout = raw.lock_timeout.take();
    let url = raw.lock_url.take();
    if phase == Phase::Prime {
        let misplaced = [
            lock.as_ref().map(|l| ("lock", l.span())),
            timeout.as_ref().map(|t| ("lock_timeout", t.span())),
            url.as_ref().map(|u| ("lock_url", u.span())),
        ];
        if let Some((key, span)) = misplaced.into_iter().flatten().next() {
            return Err(Located::new(
                span,
                format!("`{key}` applies only to [[migrate]] steps"),
                "A migration lock keeps two releases from migrating at once; priming needs none. Remove it, or move the command to a [[migrate]] step.",
            ));
        }
        return Ok(None);
    }
    let kind = lock.as_ref().map(|l| *l.get_ref()).or(release.lock);
    let Some(kind) = kind else {
        let stray = [
            timeout.as_ref().map(|t| ("lock_timeout", t.span())),
            url.as_ref().map(|u| ("lock_url", u.span())),
        ];
        if let Some((key, span)) = stray.into_iter().flatten().next() {
            return Err(Located::new(
                span,
                format!("`{key}` has no effect without a lock"),
                "Add `lock = \"postgres\"` to this step (or to [release] for every step), or remove it.",
            ));
        }
        return Ok(None);
    };
    if let Some(url) = &url {
        check_lock_url(url)?;
    }
    Ok(Some(LockSpec {
        kind,
        url: url
            .map(Spanned::into_inner)
            .or_else(|| release.lock_url.clone().map(Spanned::into_inner))
            .unwrap_or_else(default_lock_url),
        timeout: timeout
            .map(|t| t.into_inner().get())
            .or(release.lock_timeout.map(Span::get))
            .unwrap_or(DEFAULT_LOCK_TIMEOUT),
    }))
}

fn default_lock_url() -> Template {
    Template::parse(DEFAULT_LOCK_URL).expect("the default lock_url is a valid template")
}

/// A `lock_url` without `${…}` must be a `postgres://` URL; one with a variable is checked when it runs.
fn check_lock_url(url: &Spanned<Template>) -> Result<(), Located> {
    if !url.get_ref().vars().is_empty() {
        return Ok(());
    }
    let help = "Use a direct (not pooled) PostgreSQL URL, like `lock_url = \"${DATABASE_URL}\"` or `postgres://user@host:5432/dbname`.";
    match url::Url::parse(url.get_ref().raw()) {
        Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => Ok(()),
        Ok(parsed) => Err(Located::new(
            url.span(),
            format!("`{}` is not a PostgreSQL URL scheme", parsed.scheme()),
            help,
        )),
        // The url crate's messages never quote the input, so no password leaks here.
        Err(error) => Err(Located::new(
            url.span(),
            format!("`lock_url` is not a valid URL: {error}"),
            help,
        )),
    }
}

/// A URL without `${…}` can be checked now; one with a variable is checked when it runs.
fn check_url(url: &Spanned<Template>) -> Result<(), Located> {
    if !url.get_ref().vars().is_empty() {
        return Ok(());
    }
    let raw = url.get_ref().raw();
    match url::Url::parse(raw) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        Ok(parsed) => Err(Located::new(
            url.span(),
            format!("`{}` is not an http(s) URL", parsed.scheme()),
            "Use a full URL such as `https://search.example.com/reindex`.",
        )),
        Err(error) => Err(Located::new(
            url.span(),
            format!("not a valid URL: {error}"),
            "Use a full URL such as `https://search.example.com/reindex`.",
        )),
    }
}

fn convert_warmup(raw: Spanned<RawWarmup>) -> Result<Warmup, Located> {
    let span = raw.span();
    let raw = raw.into_inner();
    let mut requests = Vec::new();
    let paths_given = raw.paths.is_some();
    for path in raw.paths.unwrap_or_default() {
        check_path(&path)?;
        requests.push(WarmRequest::get(path.get_ref()));
    }
    for request in raw.request {
        check_path(&request.path)?;
        requests.push(WarmRequest {
            method: request.method,
            path: request.path.into_inner(),
            headers: request.headers.into_iter().collect(),
            body: request.body,
            expect: Expect::from_list(request.expect_status, Expect::Range(200, 399))?,
            expect_body: request.expect_body,
        });
    }
    if requests.is_empty() {
        if paths_given && raw.enabled {
            return Err(Located::new(
                span,
                "[warmup] lists no requests",
                "Give at least one path, like `paths = [\"/\"]`, or turn warm-up off with `enabled = false`.",
            ));
        }
        requests.push(WarmRequest::get("/"));
    }
    let bounded = |value: Option<Spanned<u32>>, key: &str, default: u32, max: u32| match value {
        None => Ok(default),
        Some(v) if (1..=max).contains(v.get_ref()) => Ok(v.into_inner()),
        Some(v) => Err(Located::new(
            v.span(),
            format!("`{key}` must be between 1 and {max}, not {}", v.get_ref()),
            format!("Set `{key}` to a number from 1 to {max}."),
        )),
    };
    if let Some(url) = &raw.url {
        check_url(url)?;
    }
    Ok(Warmup {
        enabled: raw.enabled,
        requests,
        rounds: bounded(raw.rounds, "rounds", 1, 100)?,
        concurrency: bounded(raw.concurrency, "concurrency", 4, 64)?,
        deadline: raw.deadline.map_or(Duration::from_secs(90), Span::get),
        host: raw.host,
        url: raw.url.map(Spanned::into_inner),
    })
}

fn convert_confirm(raw: RawConfirm) -> Result<Confirm, Located> {
    let deadline = raw
        .deadline
        .as_ref()
        .map_or(DEFAULT_CONFIRM_DEADLINE, |d| d.get_ref().get());
    let poll = match raw.poll {
        None => DEFAULT_CONFIRM_POLL,
        Some(poll) if poll.get_ref().get() < MIN_CONFIRM_POLL => {
            return Err(Located::new(
                poll.span(),
                format!(
                    "`poll` must be at least {}, not {}",
                    Span(MIN_CONFIRM_POLL),
                    poll.get_ref()
                ),
                "The Platform API allows an account about 75 requests a minute; polling faster takes that budget from every other tool that uses the token. Write `poll = \"5s\"` or more.",
            ));
        }
        Some(poll) => poll.into_inner().get(),
    };
    let time_to_live = match &raw.time_to_live {
        Some(ttl) if ttl.get_ref().get() < deadline => {
            return Err(Located::new(
                ttl.span(),
                format!(
                    "`time_to_live` ({}) is shorter than the `deadline` ({})",
                    ttl.get_ref(),
                    Span(deadline)
                ),
                "Heroku would stop the detached dyno before `preheat await-live` reaches its deadline. Make `time_to_live` longer than `deadline`, or leave it out (the default is the deadline plus 5m).",
            ));
        }
        Some(ttl) => ttl.get_ref().get(),
        None => deadline.saturating_add(TIME_TO_LIVE_MARGIN),
    };
    if time_to_live > MAX_TIME_TO_LIVE {
        let (span, key) = match (&raw.time_to_live, &raw.deadline) {
            (Some(ttl), _) => (ttl.span(), "time_to_live"),
            (None, Some(deadline)) => (deadline.span(), "deadline"),
            (None, None) => (0..0, "deadline"),
        };
        return Err(Located::new(
            span,
            format!(
                "`{key}` makes the detached dyno live {}, longer than Heroku's 24h limit",
                crate::config::duration::human(time_to_live)
            ),
            "One-off dynos stop after 24 hours. Keep `deadline` (plus the 5m margin) and `time_to_live` within 24h; a release is normally live within minutes.",
        ));
    }
    Ok(Confirm {
        enabled: raw.enabled,
        deadline,
        poll,
        time_to_live,
    })
}

fn check_path(path: &Spanned<String>) -> Result<(), Located> {
    if path.get_ref().starts_with('/') {
        Ok(())
    } else {
        Err(Located::new(
            path.span(),
            format!("warm-up path `{}` does not start with `/`", path.get_ref()),
            format!(
                "Write paths relative to the app's root, like \"/{}\".",
                path.get_ref().trim_start_matches('/')
            ),
        ))
    }
}

fn from_toml(error: &toml::de::Error) -> Located {
    let message = error.message().trim().to_string();
    let span = error.span().unwrap_or(0..0);
    if let Some((unknown, expected)) = parse_unknown_field(&message) {
        let help = match closest(&unknown, &expected) {
            Some(best) => format!(
                "Did you mean `{best}`? Valid keys here: {}.",
                list(&expected)
            ),
            None => format!("Valid keys here: {}.", list(&expected)),
        };
        return Located::new(span, format!("unknown key `{unknown}`"), help);
    }
    Located::new(
        span,
        message,
        "Fix the value at this place; DESIGN and README list every key of preheat.toml.",
    )
}

fn list(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads serde's ``unknown field `x`, expected one of `a`, `b` `` message.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((unknown.to_string(), expected))
}

fn closest(unknown: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(unknown, c), c))
        .filter(|(distance, c)| *distance <= 3.max(c.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.clone())
}

fn invalid(text: &str, path: &Path, located: Located) -> ConfigError {
    let start = located.span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let source_line = &text[line_start..line_end];
    let end = located.span.end.clamp(start, line_end);
    let width = text[start..end].chars().count().max(1);
    let gutter = line.to_string().len();
    let snippet = if source_line.trim().is_empty() {
        String::new()
    } else {
        format!(
            "{pad} |\n{line} | {source_line}\n{pad} | {spaces}{carets}",
            pad = " ".repeat(gutter),
            spaces = " ".repeat(column - 1),
            carets = "^".repeat(width),
        )
    };
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message: located.message,
        snippet,
        help: located.help,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("preheat.toml"))
    }

    fn error(text: &str) -> (usize, usize, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line,
                column,
                ref message,
                ref help,
                ..
            }) => (line, column, format!("{message} | {help}")),
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").expect("valid");
        assert!(config.migrate.is_empty() && config.prime.is_empty());
        assert_eq!(config.release.deadline, Span::secs(3300));
        assert_eq!(config.warmup.requests.len(), 1);
        assert_eq!(config.warmup.requests[0].path, "/");
        assert_eq!(config.warmup.deadline, Duration::from_secs(90));
    }

    #[test]
    fn the_design_example_parses() {
        let config =
            parse(include_str!("../../examples/getting-started/preheat.toml")).expect("valid");
        assert!(!config.migrate.is_empty());
    }

    #[test]
    fn full_file_parses() {
        let config = parse(indoc::indoc! {r#"
            [release]
            deadline = "55m"

            [[migrate]]
            name = "schema"
            run = "bundle exec rails db:migrate"
            timeout = "30m"
            only_if_env = ["DATABASE_URL"]

            [[prime]]
            name = "cache store"
            run = "bin/rails runner 'Cache.prime!'"
            required = false

            [[prime]]
            name = "search index"
            http = { method = "POST", url = "https://search.example.com/reindex", headers = { Authorization = "Bearer ${SEARCH_TOKEN}" } }
            expect_status = [200, 202]
            retries = 3

            [warmup]
            paths = ["/", "/dashboard"]
            rounds = 1
            concurrency = 4
            deadline = "90s"

            [[warmup.request]]
            path = "/api/health"
            method = "HEAD"
            expect_status = [204]

            [notify]
            webhook = "${PREHEAT_WEBHOOK_URL}"
        "#})
        .expect("valid");
        assert_eq!(config.migrate[0].name, "schema");
        assert_eq!(config.migrate[0].timeout, Some(Duration::from_mins(30)));
        assert_eq!(config.migrate[0].only_if_env, vec!["DATABASE_URL"]);
        assert!(!config.prime[0].required);
        let Action::Http(http) = &config.prime[1].action else {
            panic!("expected http");
        };
        assert_eq!(http.method, Method::Post);
        assert_eq!(http.retries, 3);
        assert!(http.expect.accepts(202) && !http.expect.accepts(204));
        assert_eq!(http.headers[0].0, "Authorization");
        assert_eq!(config.warmup.requests.len(), 3);
        assert_eq!(config.warmup.requests[2].method, Method::Head);
        assert!(config.notify.is_some());
    }

    #[test]
    fn unknown_key_names_line_column_and_suggestion() {
        let (line, column, text) = error("[release]\ndedline = \"5m\"\n");
        assert_eq!((line, column), (2, 1));
        assert!(text.contains("unknown key `dedline`"), "{text}");
        assert!(text.contains("Did you mean `deadline`?"), "{text}");
    }

    #[test]
    fn unknown_key_in_a_step_suggests() {
        let (line, _, text) = error("[[migrate]]\nname = \"x\"\nrun = \"true\"\ntimout = \"1m\"\n");
        assert_eq!(line, 4);
        assert!(text.contains("Did you mean `timeout`?"), "{text}");
    }

    #[test]
    fn bad_duration_points_at_the_value() {
        let (line, column, text) = error("[release]\ndeadline = \"5 minutes\"\n");
        assert_eq!((line, column), (2, 12));
        assert!(text.contains("unknown unit"), "{text}");
    }

    #[test]
    fn step_needs_exactly_one_action() {
        let (line, _, text) = error("[[prime]]\nname = \"a\"\n");
        assert_eq!(line, 1);
        assert!(text.contains("neither `run` nor `http`"), "{text}");
        let (_, _, text) =
            error("[[prime]]\nrun = \"x\"\nhttp = { url = \"https://example.com\" }\n");
        assert!(text.contains("both `run` and `http`"), "{text}");
    }

    #[test]
    fn migrate_cannot_be_http() {
        let (line, _, text) = error("[[migrate]]\nhttp = { url = \"https://example.com\" }\n");
        assert_eq!(line, 2);
        assert!(
            text.contains("Move this request to a [[prime]] step"),
            "{text}"
        );
    }

    #[test]
    fn bad_url_method_status_and_path() {
        let (_, _, text) = error("[[prime]]\nhttp = { url = \"ftp://x\" }\n");
        assert!(text.contains("not an http(s) URL"), "{text}");
        let (_, _, text) = error("[[prime]]\nhttp = { url = \"https://x\", method = \"FETCH\" }\n");
        assert!(text.contains("not an HTTP method"), "{text}");
        let (line, _, text) =
            error("[[prime]]\nhttp = { url = \"https://x\" }\nexpect_status = [200, 999]\n");
        assert_eq!(line, 3);
        assert!(text.contains("999 is not an HTTP status"), "{text}");
        let (_, _, text) = error("[warmup]\npaths = [\"dashboard\"]\n");
        assert!(text.contains("\"/dashboard\""), "{text}");
        let (_, _, text) = error("[warmup]\nconcurrency = 0\n");
        assert!(text.contains("between 1 and 64"), "{text}");
    }

    #[test]
    fn bad_template_is_caught_at_parse_time() {
        let (_, _, text) = error("[notify]\nwebhook = \"${PREHEAT_WEBHOOK_URL\"\n");
        assert!(text.contains("closing"), "{text}");
    }

    #[test]
    fn url_from_a_variable_is_checked_when_it_runs() {
        let config =
            parse("[[prime]]\nhttp = { url = \"${SEARCH_URL}/reindex\" }\n").expect("valid");
        assert_eq!(config.prime[0].name, "GET ${SEARCH_URL}/reindex");
    }

    #[test]
    fn display_has_file_line_column_snippet_and_help() {
        let err = parse("[release]\ndedline = \"5m\"\n").expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.starts_with("preheat.toml:2:1: unknown key `dedline`"),
            "{text}"
        );
        assert!(text.contains("2 | dedline = \"5m\""), "{text}");
        assert!(text.contains("^^^^^^^"), "{text}");
    }

    #[test]
    fn no_lock_by_default() {
        let config = parse("[[migrate]]\nrun = \"true\"\n").expect("valid");
        assert_eq!(config.migrate[0].lock, None);
    }

    #[test]
    fn step_lock_defaults_to_database_url_and_ten_minutes() {
        let config =
            parse("[[migrate]]\nrun = \"bin/migrate\"\nlock = \"postgres\"\n").expect("valid");
        let lock = config.migrate[0].lock.as_ref().expect("a lock");
        assert_eq!(lock.kind, LockKind::Postgres);
        assert_eq!(lock.url.raw(), "${DATABASE_URL}");
        assert_eq!(lock.url.vars(), vec!["DATABASE_URL"]);
        assert_eq!(lock.timeout, Duration::from_mins(10));
    }

    #[test]
    fn step_lock_keys_override_release_defaults() {
        let config = parse(indoc::indoc! {r#"
            [release]
            lock = "postgres"
            lock_timeout = "2m"
            lock_url = "${DIRECT_DATABASE_URL}"

            [[migrate]]
            run = "first"

            [[migrate]]
            run = "second"
            lock_timeout = "30s"
            lock_url = "postgres://app@db.internal:5432/app?sslmode=verify-full"

            [[prime]]
            run = "prime"
        "#})
        .expect("valid");
        let first = config.migrate[0].lock.as_ref().expect("inherited lock");
        assert_eq!(first.timeout, Duration::from_mins(2));
        assert_eq!(first.url.raw(), "${DIRECT_DATABASE_URL}");
        let second = config.migrate[1].lock.as_ref().expect("inherited lock");
        assert_eq!(second.timeout, Duration::from_secs(30));
        assert!(second.url.raw().starts_with("postgres://app@db.internal"));
        assert_eq!(
            config.prime[0].lock, None,
            "[release] lock is for [[migrate]] only"
        );
    }

    #[test]
    fn release_lock_timeout_alone_is_a_default_for_steps_that_lock() {
        let config = parse(indoc::indoc! {r#"
            [release]
            lock_timeout = "90s"

            [[migrate]]
            run = "locked"
            lock = "postgres"

            [[migrate]]
            run = "unlocked"
        "#})
        .expect("valid");
        let lock = config.migrate[0].lock.as_ref().expect("a lock");
        assert_eq!(lock.timeout, Duration::from_secs(90));
        assert_eq!(config.migrate[1].lock, None);
    }

    #[test]
    fn lock_on_a_prime_step_is_located() {
        let (line, column, text) = error("[[prime]]\nrun = \"bin/prime\"\nlock = \"postgres\"\n");
        assert_eq!((line, column), (3, 8));
        assert!(
            text.contains("`lock` applies only to [[migrate]] steps"),
            "{text}"
        );
        let (line, _, text) = error("[[prime]]\nrun = \"x\"\nlock_timeout = \"1m\"\n");
        assert_eq!(line, 3);
        assert!(text.contains("`lock_timeout` applies only"), "{text}");
    }

    #[test]
    fn unknown_lock_kind_is_located() {
        let (line, column, text) = error("[[migrate]]\nrun = \"x\"\nlock = \"mysql\"\n");
        assert_eq!((line, column), (3, 8));
        assert!(text.contains("`mysql` is not a kind of lock"), "{text}");
        let (line, _, text) = error("[release]\nlock = \"redis\"\n");
        assert_eq!(line, 2);
        assert!(text.contains("lock = \"postgres\""), "{text}");
    }

    #[test]
    fn lock_timeout_without_a_lock_is_an_error() {
        let (line, column, text) = error("[[migrate]]\nrun = \"x\"\nlock_timeout = \"5m\"\n");
        assert_eq!((line, column), (3, 16));
        assert!(text.contains("no effect without a lock"), "{text}");
        let (line, _, _) = error("[[migrate]]\nrun = \"x\"\nlock_url = \"${DB}\"\n");
        assert_eq!(line, 3);
    }

    #[test]
    fn bad_lock_timeout_and_url_are_located() {
        let (line, _, text) =
            error("[[migrate]]\nrun = \"x\"\nlock = \"postgres\"\nlock_timeout = \"soon\"\n");
        assert_eq!(line, 4);
        assert!(text.contains("not a duration"), "{text}");
        let (line, _, text) =
            error("[[migrate]]\nrun = \"x\"\nlock = \"postgres\"\nlock_url = \"mysql://u@h/d\"\n");
        assert_eq!(line, 4);
        assert!(text.contains("not a PostgreSQL URL scheme"), "{text}");
        let (line, _, text) = error("[release]\nlock_url = \"postgres://u:pw@h:notaport/d\"\n");
        assert_eq!(line, 2);
        assert!(text.contains("invalid port"), "{text}");
        let (_, _, text) =
            error("[[migrate]]\nrun = \"x\"\nlock = \"postgres\"\nlock_url = \"${DB\"\n");
        assert!(text.contains("closing"), "{text}");
    }

    #[test]
    fn no_confirm_table_means_defaults() {
        let config = parse("").expect("valid");
        assert_eq!(config.confirm, None);
        let settings = config.confirm_settings();
        assert!(settings.enabled);
        assert_eq!(settings.deadline, Duration::from_mins(30));
        assert_eq!(settings.poll, Duration::from_secs(5));
        assert_eq!(settings.time_to_live, Duration::from_mins(35));
    }

    #[test]
    fn empty_confirm_table_is_enabled_with_defaults() {
        let config = parse("[confirm]\n").expect("valid");
        assert_eq!(config.confirm, Some(Confirm::default()));
    }

    #[test]
    fn confirm_keys_parse_and_time_to_live_follows_the_deadline() {
        let config = parse("[confirm]\ndeadline = \"10m\"\npoll = \"15s\"\n").expect("valid");
        let confirm = config.confirm.expect("a [confirm] table");
        assert!(confirm.enabled);
        assert_eq!(confirm.deadline, Duration::from_mins(10));
        assert_eq!(confirm.poll, Duration::from_secs(15));
        assert_eq!(confirm.time_to_live, Duration::from_mins(15));
        let config =
            parse("[confirm]\nenabled = false\ndeadline = \"10m\"\ntime_to_live = \"1h\"\n")
                .expect("valid");
        let confirm = config.confirm.expect("a [confirm] table");
        assert!(!confirm.enabled);
        assert_eq!(confirm.time_to_live, Duration::from_hours(1));
    }

    #[test]
    fn confirm_poll_below_five_seconds_is_located() {
        let (line, column, text) = error("[confirm]\npoll = \"1s\"\n");
        assert_eq!((line, column), (2, 8));
        assert!(
            text.contains("`poll` must be at least 5s, not 1s"),
            "{text}"
        );
        let (_, _, text) = error("[confirm]\npoll = \"4500ms\"\n");
        assert!(text.contains("not 4500ms"), "{text}");
    }

    #[test]
    fn confirm_time_to_live_must_outlast_the_deadline() {
        let (line, column, text) = error("[confirm]\ndeadline = \"30m\"\ntime_to_live = \"10m\"\n");
        assert_eq!((line, column), (3, 16));
        assert!(text.contains("shorter than the `deadline` (30m)"), "{text}");
    }

    #[test]
    fn confirm_beyond_a_day_is_located() {
        let (line, _, text) = error("[confirm]\ndeadline = \"24h\"\n");
        assert_eq!(line, 2);
        assert!(
            text.contains(
                "`deadline` makes the detached dyno live 24h05m, longer than Heroku's 24h limit"
            ),
            "{text}"
        );
        let (line, _, _) = error("[confirm]\ntime_to_live = \"25h\"\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn unknown_confirm_key_suggests_the_closest() {
        let (line, column, text) = error("[confirm]\ntime_to_life = \"40m\"\n");
        assert_eq!((line, column), (2, 1));
        assert!(text.contains("unknown key `time_to_life`"), "{text}");
        assert!(text.contains("Did you mean `time_to_live`?"), "{text}");
        let (_, _, text) = error("[confirm]\npol = \"10s\"\n");
        assert!(text.contains("Did you mean `poll`?"), "{text}");
    }

    #[test]
    fn syntax_error_has_a_location() {
        let (line, _, _) = error("[release\n");
        assert_eq!(line, 1);
    }
}
