//! A small, blocking client for the Heroku Platform API: the few endpoints
//! preheat needs, retried on 5xx, backing off on 429 and slowing down as
//! `RateLimit-Remaining` runs low.

use super::{Dyno, Release, Token};
use crate::config::duration::human;
use crate::redact;
use crate::release::signals::pause;
use reqwest::Method;
use reqwest::blocking::Response;
use serde::de::DeserializeOwned;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::time::{Duration, Instant};

/// `Accept` for version 3 of the Platform API.
pub(crate) const ACCEPT: &str = "application/vnd.heroku+json; version=3";
pub(crate) const DEFAULT_BASE: &str = "https://api.heroku.com";

/// Attempts for a request that meets 5xx or a transport error.
const MAX_ATTEMPTS: u32 = 5;
/// Attempts for a request that keeps meeting 429.
const MAX_RATE_LIMITED: u32 = 8;
/// Below this many requests left in the token's budget, polling slows down.
const LOW_BUDGET: u32 = 100;
const VERY_LOW_BUDGET: u32 = 20;

/// What a request needs from the token, for the message when it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Read,
    Write,
}

#[derive(Debug)]
pub(crate) enum ApiError {
    /// 401: the token is wrong, expired or revoked.
    Unauthorized {
        request: String,
        message: String,
        token_var: &'static str,
    },
    /// 403: the token lacks a scope, or its account lacks access to the app.
    Forbidden {
        request: String,
        message: String,
        scope: Scope,
        app: String,
        token_var: &'static str,
    },
    NotFound {
        request: String,
        message: String,
    },
    Status {
        request: String,
        status: u16,
        id: String,
        message: String,
        attempts: u32,
    },
    RateLimited {
        request: String,
        attempts: u32,
    },
    Transport {
        request: String,
        error: String,
        attempts: u32,
    },
    BadResponse {
        request: String,
        error: String,
    },
    Deadline {
        request: String,
    },
    Interrupted(i32),
}

impl ApiError {
    /// One short clause, for a verdict line and the webhook's `reason`.
    pub(crate) fn summary(&self) -> String {
        match self {
            ApiError::Unauthorized { request, .. } => {
                format!("the Platform API did not accept the token (401) for {request}")
            }
            ApiError::Forbidden { request, scope, .. } => format!(
                "the Platform API refused {request} (403): the token lacks the `{}` scope or access to the app",
                match scope {
                    Scope::Read => "read",
                    Scope::Write => "write",
                }
            ),
            ApiError::NotFound { request, .. } => {
                format!("the Platform API found nothing at {request} (404)")
            }
            ApiError::Status {
                request, status, ..
            } => format!("the Platform API answered {request} with {status}"),
            ApiError::RateLimited { request, .. } => {
                format!("the Platform API kept rate-limiting {request} (429)")
            }
            ApiError::Transport { request, .. } => {
                format!("could not reach the Platform API for {request}")
            }
            ApiError::BadResponse { request, .. } => {
                format!("the Platform API sent an unexpected answer to {request}")
            }
            ApiError::Deadline { .. } | ApiError::Interrupted(_) => self.to_string(),
        }
    }

    /// 401 and 403: the setup is wrong, and trying again will not help.
    pub(crate) fn is_auth(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized { .. } | ApiError::Forbidden { .. }
        )
    }
}

fn create_token_hint(token_var: &str) -> String {
    format!(
        "Create a token as an account that is a collaborator on the app, with `heroku authorizations:create --scope write --description preheat --short`, then store it with `heroku config:set {token_var}=<token> -a <app>`."
    )
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized {
                request,
                message,
                token_var,
            } => write!(
                f,
                "The Platform API did not accept the token in {token_var} for {request} (401 unauthorized: {message}).\n\nThe token is wrong, expired or revoked. {}",
                create_token_hint(token_var)
            ),
            ApiError::Forbidden {
                request,
                message,
                scope,
                app,
                token_var,
            } => {
                let need = match scope {
                    Scope::Read => "the `read` scope (`write` includes it) and access to the app",
                    Scope::Write => {
                        "the `write` scope and a collaborator's rights to restart and run dynos on the app"
                    }
                };
                write!(
                    f,
                    "The Platform API refused {request} (403 forbidden: {message}).\n\nThe token in {token_var} needs {need} `{app}`; a `read`-only or `identity` token, or an account that is not a collaborator on `{app}`, is refused. {}",
                    create_token_hint(token_var)
                )?;
                if *scope == Scope::Write {
                    write!(f, " Check its scope with `heroku authorizations`.")?;
                }
                Ok(())
            }
            ApiError::NotFound { request, message } => write!(
                f,
                "The Platform API found nothing at {request} (404: {message}).\n\nCheck the app (--app, HEROKU_APP_NAME or HEROKU_APP_ID) and the release version."
            ),
            ApiError::Status {
                request,
                status,
                id,
                message,
                attempts,
            } => {
                write!(f, "The Platform API answered {request} with {status}")?;
                if !id.is_empty() {
                    write!(f, " {id}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                if *attempts > 1 {
                    write!(f, " (after {attempts} attempts)")?;
                }
                write!(
                    f,
                    ".\n\nIf Heroku has an incident (https://status.heroku.com), try again later."
                )
            }
            ApiError::RateLimited { request, attempts } => write!(
                f,
                "The Platform API kept rate-limiting {request} (429, {attempts} attempts).\n\nThe account behind the token has used its request budget (about 4500 an hour); other tools that share the token use it too. Use a dedicated account for preheat, or raise `[confirm] poll`."
            ),
            ApiError::Transport {
                request,
                error,
                attempts,
            } => {
                write!(f, "Could not reach the Platform API for {request}: {error}")?;
                if *attempts > 1 {
                    write!(f, " (after {attempts} attempts)")?;
                }
                write!(
                    f,
                    ".\n\nCheck PREHEAT_API_URL (default {DEFAULT_BASE}) and the network."
                )
            }
            ApiError::BadResponse { request, error } => write!(
                f,
                "The Platform API answered {request} with a body preheat does not understand: {error}.\n\nCheck PREHEAT_API_URL (default {DEFAULT_BASE})."
            ),
            ApiError::Deadline { request } => {
                write!(f, "The deadline passed while waiting for {request}.")
            }
            ApiError::Interrupted(signal) => write!(
                f,
                "preheat received {} and stopped.",
                crate::release::signals::name(*signal)
            ),
        }
    }
}

impl std::error::Error for ApiError {}

/// Failed attempts so far: 5xx or transport errors, and 429s.
#[derive(Default)]
struct Tries {
    failures: u32,
    limited: u32,
}

enum Answer {
    Done(Response),
    /// Retry after the wait; the error stands if there is no time left.
    Retry(Duration, ApiError),
}

/// The error body of the Platform API: `{ "id": "forbidden", "message": "…" }`.
#[derive(serde::Deserialize, Default)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// A client for one app. It holds the token, and never shows it: its `Debug`
/// is hand-written, and the token is registered with `redact` on creation.
pub(crate) struct Api {
    http: reqwest::blocking::Client,
    base: url::Url,
    token: Token,
    app: String,
    /// The base delay for retries: 1s in production, less under the test knob.
    backoff: Duration,
    /// The last `RateLimit-Remaining` the API sent.
    remaining: Cell<Option<u32>>,
    /// Whether the "polling more slowly" note was printed.
    slowed: Cell<bool>,
    /// The app's stack name, asked once (`GET /apps/{app}`; see `one_off`).
    pub(super) stack: OnceCell<String>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .field("app", &self.app)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub(crate) fn new(
        base: url::Url,
        token: Token,
        app: String,
        backoff: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("preheat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A redirect must never carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("could not set up HTTP: {e}"))?;
        Ok(Self {
            http,
            base,
            token,
            app,
            backoff,
            remaining: Cell::new(None),
            slowed: Cell::new(false),
            stack: OnceCell::new(),
        })
    }

    pub(crate) fn app(&self) -> &str {
        &self.app
    }

    /// `GET /apps/{app}/releases/{version}`
    pub(crate) fn release(&self, version: u64, deadline: Instant) -> Result<Release, ApiError> {
        let version = version.to_string();
        self.get_json(&["apps", &self.app, "releases", &version], None, deadline)
    }

    /// The newest release: `GET /apps/{app}/releases` with `Range: version ..; order=desc, max=1`.
    pub(crate) fn newest_release(&self, deadline: Instant) -> Result<Option<Release>, ApiError> {
        let list: Vec<Release> = self.get_json(
            &["apps", &self.app, "releases"],
            Some("version ..; order=desc, max=1"),
            deadline,
        )?;
        Ok(list.into_iter().max_by_key(|r| r.version))
    }

    /// `GET /apps/{app}/releases/{id}`: a release by its id (a UUID).
    pub(crate) fn release_by_id(&self, id: &str, deadline: Instant) -> Result<Release, ApiError> {
        self.get_json(&["apps", &self.app, "releases", id], None, deadline)
    }

    /// The newest release still in release phase: the first `pending` one of
    /// the ten newest (`Range: version ..; order=desc, max=10`).
    pub(crate) fn newest_pending(&self, deadline: Instant) -> Result<Option<Release>, ApiError> {
        let mut list: Vec<Release> = self.get_json(
            &["apps", &self.app, "releases"],
            Some("version ..; order=desc, max=10"),
            deadline,
        )?;
        list.sort_by_key(|r| std::cmp::Reverse(r.version));
        Ok(list.into_iter().find(|r| r.status == "pending"))
    }

    /// `GET /apps/{app}/dynos`, every page (`Range` / `Next-Range`).
    pub(crate) fn dynos(&self, deadline: Instant) -> Result<Vec<Dyno>, ApiError> {
        let path = ["apps", self.app.as_str(), "dynos"];
        let mut range = "id ..; max=1000".to_string();
        let mut all = Vec::new();
        // A server that keeps sending the same Next-Range must not loop forever.
        for _ in 0..100 {
            let response = self.send(
                &Method::GET,
                &path,
                Some(&range),
                None,
                Scope::Read,
                deadline,
            )?;
            let next = (response.status().as_u16() == 206)
                .then(|| {
                    response
                        .headers()
                        .get("next-range")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                })
                .flatten();
            let page: Vec<Dyno> = parse(response, &describe(&Method::GET, &path))?;
            all.extend(page);
            match next {
                Some(next) if next != range => range = next,
                _ => return Ok(all),
            }
        }
        Ok(all)
    }

    /// Whether the app has preboot on: `GET /apps/{app}/features/preboot`.
    pub(crate) fn preboot(&self, deadline: Instant) -> Result<bool, ApiError> {
        #[derive(serde::Deserialize)]
        struct Feature {
            enabled: bool,
        }
        let feature: Feature =
            self.get_json(&["apps", &self.app, "features", "preboot"], None, deadline)?;
        Ok(feature.enabled)
    }

    /// The `count` newest releases, newest first (`Range: version ..; order=desc, max=N`).
    pub(crate) fn recent_releases(
        &self,
        count: u32,
        deadline: Instant,
    ) -> Result<Vec<Release>, ApiError> {
        let mut list: Vec<Release> = self.get_json(
            &["apps", &self.app, "releases"],
            Some(&format!("version ..; order=desc, max={count}")),
            deadline,
        )?;
        list.sort_by_key(|r| std::cmp::Reverse(r.version));
        Ok(list)
    }

    /// `POST /apps/{app}/releases` with `{"release": id}`: Heroku's rollback,
    /// as `heroku rollback` sends it. The answer is the new release.
    pub(crate) fn rollback(
        &self,
        release_id: &str,
        deadline: Instant,
    ) -> Result<Release, ApiError> {
        let path = ["apps", self.app.as_str(), "releases"];
        let body = serde_json::json!({ "release": release_id });
        // Sent once: a 5xx or a lost answer may still have made the release, and a
        // retry would make a second rollback (the caller looks for it instead).
        let request = describe(&Method::POST, &path);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ApiError::Deadline { request });
        }
        let response = self
            .http
            .post(self.url(&path))
            .header(reqwest::header::ACCEPT, ACCEPT)
            .bearer_auth(self.token.expose())
            .timeout(left.min(Duration::from_secs(30)))
            .json(&body)
            .send()
            .map_err(|error| ApiError::Transport {
                request: request.clone(),
                error: crate::release::httpstep::describe_error(&error),
                attempts: 1,
            })?;
        match self.answer(response, &request, Scope::Write, &mut Tries::default())? {
            Answer::Done(response) => parse(response, &request),
            Answer::Retry(_, error) => Err(error),
        }
    }

    /// `DELETE /apps/{app}/dynos`: restart every dyno.
    pub(crate) fn restart_all(&self, deadline: Instant) -> Result<(), ApiError> {
        self.send(
            &Method::DELETE,
            &["apps", &self.app, "dynos"],
            None,
            None,
            Scope::Write,
            deadline,
        )
        .map(drop)
    }

    /// `DELETE /apps/{app}/dynos/{name}`: restart one dyno.
    pub(crate) fn restart_dyno(&self, name: &str, deadline: Instant) -> Result<(), ApiError> {
        self.send(
            &Method::DELETE,
            &["apps", &self.app, "dynos", name],
            None,
            None,
            Scope::Write,
            deadline,
        )
        .map(drop)
    }

    /// How long to wait before the next poll: `poll` plus up to 20 % jitter,
    /// stretched when the token's request budget runs low.
    pub(crate) fn poll_pause(&self, poll: Duration) -> Duration {
        let factor = match self.remaining.get() {
            Some(left) if left < VERY_LOW_BUDGET => 12,
            Some(left) if left < LOW_BUDGET => 3,
            _ => 1,
        };
        if factor > 1 && !self.slowed.replace(true) {
            crate::output::sub_bullet(&format!(
                "The token has {} Platform API requests left in its budget; polling every {} for now",
                self.remaining.get().unwrap_or(0),
                human(poll * factor)
            ));
        } else if factor == 1 {
            self.slowed.set(false);
        }
        super::jitter(poll * factor)
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        path: &[&str],
        range: Option<&str>,
        deadline: Instant,
    ) -> Result<T, ApiError> {
        let response = self.send(&Method::GET, path, range, None, Scope::Read, deadline)?;
        parse(response, &describe(&Method::GET, path))
    }

    fn url(&self, path: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        url
    }

    /// One request, retried on transport errors, 5xx and 429.
    pub(super) fn send(
        &self,
        method: &Method,
        path: &[&str],
        range: Option<&str>,
        body: Option<&serde_json::Value>,
        scope: Scope,
        deadline: Instant,
    ) -> Result<Response, ApiError> {
        self.send_as(method, path, range, body, scope, deadline, ACCEPT)
    }

    /// [`Api::send`] with another `Accept` variant of version 3.
    #[allow(
        clippy::too_many_arguments,
        reason = "send's arguments plus the Accept variant"
    )]
    pub(super) fn send_as(
        &self,
        method: &Method,
        path: &[&str],
        range: Option<&str>,
        body: Option<&serde_json::Value>,
        scope: Scope,
        deadline: Instant,
        accept: &str,
    ) -> Result<Response, ApiError> {
        let request = describe(method, path);
        let url = self.url(path);
        let mut tries = Tries::default();
        loop {
            if let Some(signal) = crate::release::signals::received() {
                return Err(ApiError::Interrupted(signal));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ApiError::Deadline { request });
            }
            let mut builder = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::ACCEPT, accept)
                .bearer_auth(self.token.expose())
                .timeout(left.min(Duration::from_secs(30)));
            if let Some(range) = range {
                builder = builder.header(reqwest::header::RANGE, range);
            }
            if let Some(body) = body {
                builder = builder.json(body);
            }
            let (wait, error) = match builder.send() {
                Err(error) => {
                    tries.failures += 1;
                    let error = ApiError::Transport {
                        request: request.clone(),
                        error: crate::release::httpstep::describe_error(&error),
                        attempts: tries.failures,
                    };
                    if tries.failures >= MAX_ATTEMPTS {
                        return Err(error);
                    }
                    (self.backoff * 2u32.pow(tries.failures - 1), error)
                }
                Ok(response) => match self.answer(response, &request, scope, &mut tries)? {
                    Answer::Done(response) => return Ok(response),
                    Answer::Retry(wait, error) => (wait, error),
                },
            };
            let wait = wait.min(Duration::from_mins(5));
            if Instant::now() + wait >= deadline {
                // A request cut short by the deadline is the deadline's doing;
                // an API that kept refusing says so in its own error.
                return Err(match error {
                    ApiError::Transport { .. } => ApiError::Deadline { request },
                    other => other,
                });
            }
            pause(wait).map_err(ApiError::Interrupted)?;
        }
    }

    /// Sorts a response into done, an error, or a retry after a wait.
    fn answer(
        &self,
        response: Response,
        request: &str,
        scope: Scope,
        tries: &mut Tries,
    ) -> Result<Answer, ApiError> {
        self.note_budget(&response);
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(Answer::Done(response));
        }
        let retry_after = crate::release::httpstep::retry_after(&response);
        let error = error_body(response);
        let request = request.to_string();
        match status {
            401 => Err(ApiError::Unauthorized {
                request,
                message: error.message,
                token_var: self.token.source(),
            }),
            403 => Err(ApiError::Forbidden {
                request,
                message: error.message,
                scope,
                app: self.app.clone(),
                token_var: self.token.source(),
            }),
            404 => Err(ApiError::NotFound {
                request,
                message: error.message,
            }),
            429 => {
                tries.limited += 1;
                let wait = retry_after.unwrap_or_else(|| {
                    (self.backoff * 5 * 2u32.pow(tries.limited - 1)).min(Duration::from_mins(1))
                });
                let failure = ApiError::RateLimited {
                    request: request.clone(),
                    attempts: tries.limited,
                };
                if tries.limited >= MAX_RATE_LIMITED {
                    return Err(failure);
                }
                crate::output::sub_bullet(&format!(
                    "{request}: rate-limited (429, {} requests left); waiting {}",
                    self.remaining.get().unwrap_or(0),
                    human(wait)
                ));
                Ok(Answer::Retry(wait, failure))
            }
            _ => {
                let server = (500..=599).contains(&status);
                if server {
                    tries.failures += 1;
                }
                let failure = ApiError::Status {
                    request,
                    status,
                    id: error.id,
                    message: error.message,
                    attempts: tries.failures + tries.limited + u32::from(!server),
                };
                if !server || tries.failures >= MAX_ATTEMPTS {
                    return Err(failure);
                }
                let wait = retry_after.unwrap_or(self.backoff * 2u32.pow(tries.failures - 1));
                Ok(Answer::Retry(wait, failure))
            }
        }
    }

    fn note_budget(&self, response: &Response) {
        if let Some(left) = response
            .headers()
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            self.remaining.set(Some(left));
        }
    }
}

/// `GET /apps/myapp/dynos`: what a request is, for messages (never the token).
pub(super) fn describe(method: &Method, path: &[&str]) -> String {
    format!("{method} /{}", path.join("/"))
}

/// The most of one answer preheat reads. A page of 1000 dynos is well under
/// 1 MB; a server that sends more is not the Platform API, and must not fill
/// the dyno's memory.
pub(crate) const MAX_ANSWER: u64 = 4 * 1024 * 1024;

pub(super) fn parse<T: DeserializeOwned>(response: Response, request: &str) -> Result<T, ApiError> {
    let body = crate::release::httpstep::read_at_most(response, MAX_ANSWER + 1).map_err(|e| {
        ApiError::BadResponse {
            request: request.to_string(),
            error: format!(
                "the answer was cut short: {}",
                crate::release::httpstep::describe_io_error(&e)
            ),
        }
    })?;
    decode(&body, request)
}

/// An answer's JSON; one larger than [`MAX_ANSWER`] is refused unread.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], request: &str) -> Result<T, ApiError> {
    if body.len() as u64 > MAX_ANSWER {
        return Err(ApiError::BadResponse {
            request: request.to_string(),
            error: format!(
                "the answer is larger than {} MB, more than any Platform API answer preheat reads",
                MAX_ANSWER / (1024 * 1024)
            ),
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadResponse {
        request: request.to_string(),
        error: e.to_string(),
    })
}

fn error_body(response: Response) -> ErrorBody {
    error_from_text(&crate::release::httpstep::error_text(response))
}

/// The `id` and `message` of an error answer, or its start as the message.
pub(crate) fn error_from_text(text: &str) -> ErrorBody {
    let mut body: ErrorBody = serde_json::from_str(text).unwrap_or_default();
    let message = if body.message.is_empty() {
        text
    } else {
        &body.message
    };
    body.message = crate::output::shorten(message, 200);
    body.id = crate::output::shorten(&body.id, 100);
    // The message is the server's text: it must not smuggle a secret into the output.
    body.message = redact::scrub(body.message.trim().trim_end_matches('.'));
    body.id = redact::scrub(&body.id);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Api {
        Api::new(
            url::Url::parse(base).expect("url"),
            Token::new("tok-unit-test-abcdef".to_string(), "PREHEAT_API_TOKEN"),
            "my-app".to_string(),
            Duration::from_millis(10),
        )
        .expect("client")
    }

    #[test]
    fn urls_join_the_base_and_encode_segments() {
        let api = api("https://api.heroku.com");
        assert_eq!(
            api.url(&["apps", "my-app", "dynos", "web.1"]).as_str(),
            "https://api.heroku.com/apps/my-app/dynos/web.1"
        );
        let api = self::api("http://127.0.0.1:9/prefix/");
        assert_eq!(
            api.url(&["apps", "a/b", "releases"]).as_str(),
            "http://127.0.0.1:9/prefix/apps/a%2Fb/releases"
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let text = format!("{:?}", api("https://api.heroku.com"));
        assert!(!text.contains("tok-unit-test-abcdef"), "{text}");
        assert!(text.contains("my-app"), "{text}");
    }

    #[test]
    fn forbidden_names_the_missing_scope() {
        let error = ApiError::Forbidden {
            request: "DELETE /apps/my-app/dynos/web.1".to_string(),
            message: "Insufficient scope".to_string(),
            scope: Scope::Write,
            app: "my-app".to_string(),
            token_var: "PREHEAT_API_TOKEN",
        };
        let text = error.to_string();
        assert!(text.contains("needs the `write` scope"), "{text}");
        assert!(text.contains("--scope write"), "{text}");
        assert!(error.is_auth());
    }

    #[test]
    fn jittered_poll_is_never_faster_than_asked() {
        let api = api("https://api.heroku.com");
        for _ in 0..50 {
            let pause = api.poll_pause(Duration::from_secs(5));
            assert!(pause >= Duration::from_secs(5) && pause <= Duration::from_secs(6));
        }
        api.remaining.set(Some(10));
        assert!(api.poll_pause(Duration::from_secs(5)) >= Duration::from_mins(1));
    }
}
