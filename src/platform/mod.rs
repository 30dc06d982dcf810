//! The Heroku Platform API side of preheat: a small client, `preheat
//! await-live` (is the release live and warm?) and `preheat restart`.

pub(crate) mod fleet;
pub(crate) mod notify;

pub(crate) mod await_live;
pub(crate) mod client;
#[cfg(test)]
mod fuzz_tests;
pub(crate) mod one_off;
mod release_version;
pub(crate) mod restart;
mod rollback;
mod warm_url;

use crate::config::{Config, Confirm};
use crate::output;
use serde::Deserialize;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

pub(crate) use client::{Api, ApiError};

/// The env var that overrides the poll interval in tests (milliseconds).
pub(crate) const POLL_KNOB: &str = "PREHEAT_API_POLL_MS";
/// The fastest the test knob may poll.
const MIN_TEST_POLL: Duration = Duration::from_millis(50);
/// How long the router may keep sending requests to old dynos after the new
/// ones are up under preboot, in poll intervals (36 x 5s = 3m).
const SWITCH_OVER_POLLS: u32 = 36;

/// A Platform API token. Its `Debug` hides it, and it is registered with
/// `redact` as soon as it is read, so no printed line can carry it.
pub(crate) struct Token {
    value: String,
    source: &'static str,
}

impl Token {
    pub(crate) fn new(value: String, source: &'static str) -> Self {
        crate::redact::register(&value);
        Self { value, source }
    }

    /// `PREHEAT_API_TOKEN`, falling back to `HEROKU_API_KEY`.
    pub(crate) fn from_env() -> Option<Self> {
        ["PREHEAT_API_TOKEN", "HEROKU_API_KEY"]
            .into_iter()
            .find_map(|name| {
                let value = std::env::var(name).ok()?;
                let value = value.trim();
                (!value.is_empty()).then(|| Token::new(value.to_string(), name))
            })
    }

    /// The variable the token came from, for messages.
    pub(crate) fn source(&self) -> &'static str {
        self.source
    }

    fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(from {}, ********)", self.source)
    }
}

/// A release, as `GET /apps/{app}/releases/{version}` returns it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Release {
    #[serde(default)]
    pub(crate) id: String,
    pub(crate) version: u64,
    pub(crate) status: String,
    pub(crate) current: bool,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

/// A dyno, as `GET /apps/{app}/dynos` returns it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub(crate) struct Dyno {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The process type; read it through [`Dyno::process_type`].
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) release: Option<DynoRelease>,
    #[serde(default)]
    pub(crate) updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub(crate) struct DynoRelease {
    pub(crate) version: u64,
}

impl Dyno {
    pub(crate) fn version(&self) -> Option<u64> {
        self.release.as_ref().map(|r| r.version)
    }

    /// `type`, or when the API left it out, the type in the name (`web.1`,
    /// `web-12a34b56d-e78f9`).
    pub(crate) fn process_type(&self) -> &str {
        if self.kind.is_empty() {
            crate::warmup::dyno_name::process_type(&self.name)
        } else {
            &self.kind
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.state == "up"
    }

    /// `web.1 up v42`
    pub(crate) fn line(&self) -> String {
        match self.version() {
            Some(version) => format!("{} {} v{version}", self.name, self.state),
            None => format!("{} {}", self.name, self.state),
        }
    }
}

/// Sorts `web.2` before `web.10`; Fir names (`web-12a34b56d-e78f9`) by name.
pub(crate) fn by_name(dynos: &mut [Dyno]) {
    dynos.sort_by_key(|d| name_key(&d.name));
}

fn name_key(name: &str) -> (String, u64, String) {
    match name.rsplit_once('.') {
        Some((kind, number)) => match number.parse() {
            Ok(n) => (kind.to_string(), n, String::new()),
            Err(_) => (kind.to_string(), u64::MAX, number.to_string()),
        },
        None => (name.to_string(), 0, String::new()),
    }
}

/// `42`, `v42` or `V42`.
pub(crate) fn parse_version(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix('V'))
        .unwrap_or(trimmed);
    match digits.parse::<u64>() {
        Ok(version) if version > 0 => Ok(version),
        _ => Err(format!(
            "`{text}` is not a release version; write it like `42` or `v42` (see `heroku releases`)"
        )),
    }
}

/// Heroku app names use a-z, 0-9 and dashes; an app id is a UUID.
fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Adds up to 20 % to `base`, so many pollers do not move in step.
pub(crate) fn jitter(base: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    let fifth = base / 5;
    let nanos = u64::try_from(fifth.as_nanos()).unwrap_or(u64::MAX);
    base + Duration::from_nanos(if nanos == 0 { 0 } else { random % nanos })
}

/// `+12s`, `+1.5s`: a time since the start, for the verdict line.
pub(crate) fn offset(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(10) {
        format!("+{:.1}s", elapsed.as_secs_f64())
    } else {
        format!("+{}s", elapsed.as_secs_f64().round())
    }
}

/// Everything `await-live` and `restart` need before their first request.
pub(crate) struct Session {
    pub(crate) config: Config,
    pub(crate) confirm: Confirm,
    pub(crate) api: Api,
}

/// Why a session could not start; each says what to do.
#[derive(Debug)]
pub(crate) enum SetupError {
    Config(String),
    NoToken,
    NoApp,
    BadApp(String),
    BadBase(String),
    BadKnob(String),
    Client(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Config(block) => f.write_str(block),
            SetupError::NoToken => write!(
                f,
                "No Platform API token: neither PREHEAT_API_TOKEN nor HEROKU_API_KEY is set.\n\nCreate a `write`-scoped token for a dedicated account that is a collaborator on this app (`heroku authorizations:create --scope write --description preheat --short`), and store it with `heroku config:set PREHEAT_API_TOKEN=<token>`."
            ),
            SetupError::NoApp => write!(
                f,
                "No app: neither HEROKU_APP_NAME nor HEROKU_APP_ID is set, and no `--app` was given.\n\nPass `--app <name>`, or set one of them (`heroku config:set HEROKU_APP_NAME=<name> -a <name>`; on Cedar, `heroku labs:enable runtime-dyno-metadata -a <app>` sets both on every dyno)."
            ),
            SetupError::BadApp(name) => write!(
                f,
                "`{name}` is not a Heroku app name; names use a-z, 0-9 and dashes.\n\nPass the name that `heroku apps` lists, like `--app my-app`."
            ),
            SetupError::BadBase(value) => write!(
                f,
                "PREHEAT_API_URL=`{value}` is not an http(s) URL.\n\nUnset it to use {}, or set it to the API's base URL.",
                client::DEFAULT_BASE
            ),
            SetupError::BadKnob(value) => write!(
                f,
                "{POLL_KNOB}=`{value}` is not a number of milliseconds.\n\n{POLL_KNOB} exists for preheat's own tests; unset it (`heroku config:unset {POLL_KNOB}`) and use `[confirm] poll` instead."
            ),
            SetupError::Client(error) => write!(f, "{error}"),
        }
    }
}

/// The app name: `--app`, else `HEROKU_APP_NAME`, else `HEROKU_APP_ID`.
pub(crate) fn app_name(flag: Option<&str>) -> Result<String, SetupError> {
    app_and_source(flag).map(|(app, _)| app)
}

/// The app (a name or an id; the API takes either) and where it came from:
/// `--app`, `HEROKU_APP_NAME` or `HEROKU_APP_ID`.
pub(crate) fn app_and_source(flag: Option<&str>) -> Result<(String, &'static str), SetupError> {
    let (name, source) = match flag {
        Some(name) => (name.trim().to_string(), "--app"),
        None => ["HEROKU_APP_NAME", "HEROKU_APP_ID"]
            .into_iter()
            .find_map(|var| {
                let value = std::env::var(var).ok()?.trim().to_string();
                (!value.is_empty()).then_some((value, var))
            })
            .ok_or(SetupError::NoApp)?,
    };
    if name.is_empty() {
        return Err(SetupError::NoApp);
    }
    if !valid_app_name(&name) {
        return Err(SetupError::BadApp(name));
    }
    Ok((name, source))
}

/// `PREHEAT_API_URL`, default `https://api.heroku.com`.
pub(crate) fn api_base() -> Result<url::Url, SetupError> {
    let value = std::env::var("PREHEAT_API_URL").unwrap_or_default();
    let value = value.trim();
    let value = if value.is_empty() {
        client::DEFAULT_BASE
    } else {
        value
    };
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(SetupError::BadBase(crate::redact::scrub(value))),
    }
}

/// `[confirm] poll`, or the test knob `PREHEAT_API_POLL_MS` (never below 50 ms).
pub(crate) fn poll_interval(confirm: &Confirm) -> Result<Duration, SetupError> {
    match std::env::var(POLL_KNOB) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse::<u64>()
            .map(|ms| Duration::from_millis(ms).max(MIN_TEST_POLL))
            .map_err(|_| SetupError::BadKnob(value)),
        _ => Ok(confirm.poll),
    }
}

/// The client for `app`, with retries scaled to the poll interval (1s at 5s).
pub(crate) fn connect(token: Token, app: String, poll: Duration) -> Result<Api, SetupError> {
    let backoff = (poll / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
    Api::new(api_base()?, token, app, backoff).map_err(SetupError::Client)
}

impl Session {
    /// Loads `preheat.toml` from the app dir, then the token, app and API URL.
    pub(crate) fn start(app: Option<&str>) -> Result<Self, SetupError> {
        let config = Config::load_dir(&crate::warmup::boot::app_dir())
            .map_err(|e| SetupError::Config(e.user_block(crate::config::ReadBy::Command)))?;
        let mut confirm = config.confirm_settings();
        confirm.poll = poll_interval(&confirm)?;
        let app = app_name(app)?;
        let token = Token::from_env().ok_or(SetupError::NoToken)?;
        let api = connect(token, app, confirm.poll)?;
        Ok(Self {
            config,
            confirm,
            api,
        })
    }

    /// The wait between two polls.
    pub(crate) fn poll_pause(&self) -> Duration {
        self.api.poll_pause(self.confirm.poll)
    }

    /// How long the router may still reach old dynos under preboot.
    pub(crate) fn switch_over(&self) -> Duration {
        self.confirm.poll * SWITCH_OVER_POLLS
    }
}

/// The public URL to warm through: `[warmup] url`, else
/// `https://$HEROKU_APP_DEFAULT_DOMAIN_NAME/`. `Ok(None)` when neither is known.
pub(crate) fn public_url(config: &Config) -> Result<Option<url::Url>, String> {
    let raw = match &config.warmup.url {
        Some(template) => template.expand().map_err(|e| e.to_string())?,
        None => match std::env::var("HEROKU_APP_DEFAULT_DOMAIN_NAME") {
            Ok(domain) if !domain.trim().is_empty() => format!("https://{}/", domain.trim()),
            _ => return Ok(None),
        },
    };
    match url::Url::parse(&raw) {
        Ok(mut url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            Ok(Some(url))
        }
        _ => Err(format!(
            "`{}` is not an http(s) URL; set `[warmup] url` to the app's public URL, like \"https://www.example.com\"",
            crate::redact::scrub(&raw)
        )),
    }
}

/// Prints a setup error and returns its exit code.
pub(crate) fn fail_setup(error: &SetupError) -> u8 {
    output::error(&error.to_string());
    crate::exit::USAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_with_and_without_v() {
        assert_eq!(parse_version("42"), Ok(42));
        assert_eq!(parse_version("v42"), Ok(42));
        assert_eq!(parse_version(" V7 "), Ok(7));
        assert!(parse_version("vv42").is_err());
        assert!(parse_version("0").is_err());
        assert!(
            parse_version("latest")
                .expect_err("invalid")
                .contains("like `42` or `v42`")
        );
    }

    #[test]
    fn app_names() {
        assert!(valid_app_name("my-app-42"));
        assert!(valid_app_name("01234567-89ab-cdef-0123-456789abcdef"));
        assert!(!valid_app_name("My App"));
        assert!(!valid_app_name("a/../b"));
        assert!(matches!(
            app_name(Some("Bad/Name")),
            Err(SetupError::BadApp(_))
        ));
        assert_eq!(app_name(Some(" my-app ")).ok().as_deref(), Some("my-app"));
    }

    #[test]
    fn dynos_sort_by_number() {
        let dyno = |name: &str| Dyno {
            id: name.to_string(),
            name: name.to_string(),
            kind: "web".to_string(),
            state: "up".to_string(),
            release: Some(DynoRelease { version: 3 }),
            updated_at: None,
        };
        let mut list = vec![dyno("web.10"), dyno("web.2"), dyno("web.1")];
        by_name(&mut list);
        let names: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["web.1", "web.2", "web.10"]);
        assert_eq!(list[0].line(), "web.1 up v3");
        let mut fir = vec![dyno("web-12a34b56d-x9k2p"), dyno("web-12a34b56d-e78f9")];
        by_name(&mut fir);
        assert_eq!(fir[0].name, "web-12a34b56d-e78f9");
        assert_eq!(fir[0].line(), "web-12a34b56d-e78f9 up v3");
    }

    #[test]
    fn a_dyno_without_a_type_takes_it_from_its_name() {
        let json = r#"[{"id":"1","name":"web-12a34b56d-e78f9","state":"up"},
                       {"id":"2","name":"worker.1","type":"worker","state":"up"}]"#;
        let dynos: Vec<Dyno> = serde_json::from_str(json).expect("dynos");
        assert_eq!(dynos[0].process_type(), "web");
        assert_eq!(dynos[1].process_type(), "worker");
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(5));
            assert!(
                d >= Duration::from_secs(5) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn token_debug_hides_the_value() {
        let token = Token::new("tok-debug-hidden-123".to_string(), "HEROKU_API_KEY");
        let text = format!("{token:?}");
        assert_eq!(text, "Token(from HEROKU_API_KEY, ********)");
        assert_eq!(
            crate::redact::scrub("leak tok-debug-hidden-123"),
            "leak ********"
        );
    }

    #[test]
    fn offsets() {
        assert_eq!(offset(Duration::from_millis(1540)), "+1.5s");
        assert_eq!(offset(Duration::from_secs(95)), "+95s");
    }
}
