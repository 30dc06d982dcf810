//! `[notify]`: one JSON POST that says whether a release is live and warm.
//!
//! The body carries a Slack-compatible `text`, so a Slack incoming-webhook URL
//! works as it is. With `PREHEAT_WEBHOOK_SECRET` set, the raw body is signed
//! with HMAC-SHA256, base64-encoded, in `Preheat-Signature`: the scheme of
//! Heroku's own app webhooks (`Heroku-Webhook-Hmac-SHA256`).

use crate::config::Notify;
use crate::config::duration::human;
use crate::config::template::MissingVar;
use crate::platform::Dyno;
use crate::redact;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) const SIGNATURE_HEADER: &str = "Preheat-Signature";
pub(crate) const SECRET_VAR: &str = "PREHEAT_WEBHOOK_SECRET";
const ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Warm,
    Failed,
    Timeout,
    /// `[confirm] rollback` took the app back to the release before.
    RolledBack,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Warm => "warm",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::RolledBack => "rolled_back",
        }
    }
}

/// What `await-live` found, for the webhook.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub(crate) app: String,
    pub(crate) version: u64,
    pub(crate) commit: Option<String>,
    pub(crate) outcome: Outcome,
    /// Why it is not warm; `None` when it is.
    pub(crate) reason: Option<String>,
    pub(crate) superseded_by: Option<u64>,
    pub(crate) live_after: Option<Duration>,
    pub(crate) warm_after: Option<Duration>,
    pub(crate) elapsed: Duration,
    pub(crate) dynos: Vec<Dyno>,
    /// The public URL the warm-up went through.
    pub(crate) url: Option<String>,
    /// The verdict line, also Slack's `text`.
    pub(crate) text: String,
    /// `[confirm] rollback`: `{from, to, release, reason}`, or `{refused}`.
    pub(crate) rollback: Option<serde_json::Value>,
}

fn seconds(duration: Option<Duration>) -> serde_json::Value {
    duration.map_or(serde_json::Value::Null, |d| {
        serde_json::json!((d.as_secs_f64() * 10.0).round() / 10.0)
    })
}

impl Notice {
    /// The JSON body.
    pub(crate) fn body(&self) -> serde_json::Value {
        let dynos: Vec<serde_json::Value> = self
            .dynos
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.name,
                    "type": d.process_type(),
                    "state": d.state,
                    "version": d.version(),
                })
            })
            .collect();
        let sent_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        serde_json::json!({
            "text": redact::scrub(&self.text),
            "app": self.app,
            "version": self.version,
            "commit": self.commit,
            "outcome": self.outcome.as_str(),
            "reason": self.reason.as_deref().map(redact::scrub),
            "superseded_by": self.superseded_by,
            "timings": {
                "live_after_seconds": seconds(self.live_after),
                "warm_after_seconds": seconds(self.warm_after),
                "elapsed_seconds": seconds(Some(self.elapsed)),
            },
            "dynos": dynos,
            "url": self.url.as_deref().map(redact::scrub),
            "rollback": self.rollback,
            "sent_at": sent_at,
        })
    }
}

/// `base64(HMAC-SHA256(secret, body))`.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this never fails; an empty MAC would
    // only make the receiver reject the request.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

#[derive(Debug)]
pub(crate) enum NotifyError {
    MissingVar(MissingVar),
    BadUrl(String),
    Status {
        host: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    Transport {
        host: String,
        error: String,
        attempts: u32,
    },
    Deadline,
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::MissingVar(missing) => write!(f, "[notify] webhook: {missing}"),
            NotifyError::BadUrl(why) => write!(
                f,
                "[notify] webhook is not usable: {why}.\n\nSet it to an http(s) URL, like `webhook = \"${{PREHEAT_WEBHOOK_URL}}\"` with `heroku config:set PREHEAT_WEBHOOK_URL=https://hooks.slack.com/services/…`."
            ),
            NotifyError::Status {
                host,
                status,
                attempts,
                body,
            } => {
                write!(f, "The webhook at {host} answered {status}")?;
                if *attempts > 1 {
                    write!(f, " (after {attempts} attempts)")?;
                }
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                write!(
                    f,
                    ".\n\nCheck the receiver; if it verifies `{SIGNATURE_HEADER}`, check that it uses the same {SECRET_VAR}."
                )
            }
            NotifyError::Transport {
                host,
                error,
                attempts,
            } => {
                write!(f, "Could not reach the webhook at {host}: {error}")?;
                if *attempts > 1 {
                    write!(f, " (after {attempts} attempts)")?;
                }
                write!(
                    f,
                    ".\n\nCheck the URL in [notify] webhook and that the receiver is up."
                )
            }
            NotifyError::Deadline => write!(
                f,
                "The deadline passed before the webhook answered. Raise `[confirm] deadline`."
            ),
        }
    }
}

impl std::error::Error for NotifyError {}

/// POSTs the notice, each attempt within `attempt_timeout`; returns a line
/// like `hooks.slack.com answered 200 (0.3s)`.
pub(crate) fn send(
    notify: &Notify,
    notice: &Notice,
    (backoff, attempt_timeout): (Duration, Duration),
    deadline: Instant,
) -> Result<String, NotifyError> {
    let url = notify.webhook.expand().map_err(NotifyError::MissingVar)?;
    // A webhook URL is a credential (Slack's carries its token in the path).
    redact::register(&url);
    let parsed = url::Url::parse(&url).map_err(|e| NotifyError::BadUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
        return Err(NotifyError::BadUrl(format!(
            "`{}` is not an http(s) URL",
            parsed.scheme()
        )));
    }
    if let Some(password) = parsed.password() {
        redact::register(password);
    }
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or("")),
        None => parsed.host_str().unwrap_or("").to_string(),
    };
    let body = serde_json::to_vec(&notice.body())
        .map_err(|e| NotifyError::BadUrl(format!("could not encode the body: {e}")))?;
    let secret = std::env::var(SECRET_VAR).ok().filter(|s| !s.is_empty());
    if let Some(secret) = &secret {
        redact::register(secret);
    }
    let signature = secret.map(|secret| sign(secret.as_bytes(), &body));
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("preheat/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| NotifyError::BadUrl(format!("could not set up HTTP: {e}")))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NotifyError::Deadline);
        }
        let mut request = client
            .post(parsed.clone())
            .timeout(left.min(attempt_timeout))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(signature) = &signature {
            request = request.header(SIGNATURE_HEADER, signature.as_str());
        }
        let started = Instant::now();
        let failure = match request.send() {
            Ok(response) if response.status().is_success() => {
                return Ok(format!(
                    "{host} answered {} ({})",
                    response.status().as_u16(),
                    human(started.elapsed())
                ));
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let text = crate::release::httpstep::error_text(response);
                let error = NotifyError::Status {
                    host: host.clone(),
                    status,
                    attempts: attempt,
                    body: redact::scrub(&crate::output::shorten(&text, 200)),
                };
                if !(status == 429 || (500..=599).contains(&status)) {
                    return Err(error);
                }
                error
            }
            Err(error) => NotifyError::Transport {
                host: host.clone(),
                error: crate::release::httpstep::describe_error(&error),
                attempts: attempt,
            },
        };
        if attempt >= ATTEMPTS {
            return Err(failure);
        }
        let wait = backoff * 2u32.pow(attempt - 1);
        if Instant::now() + wait >= deadline {
            return Err(failure);
        }
        std::thread::sleep(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231, test case 2.
        let mac = sign(b"Jefe", b"what do ya want for nothing?");
        let expected = base64::engine::general_purpose::STANDARD.encode([
            0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
            0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
            0x64, 0xec, 0x38, 0x43,
        ]);
        assert_eq!(mac, expected);
    }

    #[test]
    fn body_has_the_fields_and_slack_text() {
        let notice = Notice {
            app: "my-app".to_string(),
            version: 42,
            commit: Some("abc1234".to_string()),
            outcome: Outcome::Warm,
            reason: None,
            superseded_by: None,
            live_after: Some(Duration::from_millis(40_240)),
            warm_after: Some(Duration::from_secs(42)),
            elapsed: Duration::from_secs(43),
            dynos: vec![Dyno {
                id: "d1".to_string(),
                name: "web.1".to_string(),
                kind: "web".to_string(),
                state: "up".to_string(),
                release: Some(crate::platform::DynoRelease { version: 42 }),
                updated_at: None,
            }],
            url: Some("https://my-app.herokuapp.com/".to_string()),
            text: "my-app v42 is live and warm".to_string(),
            rollback: None,
        };
        let body = notice.body();
        assert_eq!(body["text"], "my-app v42 is live and warm");
        assert_eq!(body["outcome"], "warm");
        assert_eq!(body["version"], 42);
        assert_eq!(body["commit"], "abc1234");
        assert_eq!(body["timings"]["live_after_seconds"], 40.2);
        assert_eq!(body["dynos"][0]["name"], "web.1");
        assert_eq!(body["dynos"][0]["version"], 42);
        assert!(body["reason"].is_null());
    }
}
