//! `http = {…}` prime steps: one request, retried with backoff on connection
//! errors, 5xx and 429, honouring `Retry-After`.

use crate::config::HttpStep;
use crate::config::duration::human;
use crate::config::template::MissingVar;
use crate::output;
use crate::redact;
use crate::release::signals;
use std::fmt;
use std::io::Read as _;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug)]
pub(crate) enum HttpError {
    MissingVar(MissingVar),
    BadRequest(String),
    Status {
        status: u16,
        reason: String,
        attempts: u32,
        body: String,
    },
    Transport {
        error: String,
        attempts: u32,
    },
    Deadline,
    Interrupted(i32),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::MissingVar(missing) => write!(f, "{missing}"),
            HttpError::BadRequest(why) => write!(f, "{why}"),
            HttpError::Status {
                status,
                reason,
                attempts,
                body,
            } => {
                write!(f, "got HTTP {status} {reason}")?;
                if *attempts > 1 {
                    write!(f, " after {attempts} attempts")?;
                }
                if !body.is_empty() {
                    write!(f, "; response: {body}")?;
                }
                Ok(())
            }
            HttpError::Transport { error, attempts } => {
                write!(f, "request failed: {error}")?;
                if *attempts > 1 {
                    write!(f, " (after {attempts} attempts)")?;
                }
                Ok(())
            }
            HttpError::Deadline => write!(f, "the release deadline passed"),
            HttpError::Interrupted(signal) => {
                write!(f, "preheat received {}", signals::name(*signal))
            }
        }
    }
}

/// Header names whose values are secret.
fn secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "authorization",
        "token",
        "secret",
        "key",
        "cookie",
        "password",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// The span's `traceparent`, unless the step's own headers carry one.
fn add_traceparent(headers: &mut Vec<(String, String)>, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent
        && !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("traceparent"))
    {
        headers.push(("traceparent".to_string(), traceparent.to_string()));
    }
}

/// A request with its `${VAR}`s expanded and its secrets registered.
struct Prepared {
    url: url::Url,
    shown: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn prepare(step: &HttpStep) -> Result<Prepared, HttpError> {
    let url = step.url.expand().map_err(HttpError::MissingVar)?;
    if let Ok(parsed) = url::Url::parse(&url)
        && let Some(password) = parsed.password()
    {
        redact::register(password);
    }
    let mut headers = Vec::with_capacity(step.headers.len());
    for (name, value) in &step.headers {
        let value = value.expand().map_err(HttpError::MissingVar)?;
        if secret_header(name) {
            redact::register(&value);
        }
        headers.push((name.clone(), value));
    }
    let body = step
        .body
        .as_ref()
        .map(crate::config::template::Template::expand)
        .transpose()
        .map_err(HttpError::MissingVar)?;
    let parsed = url::Url::parse(&url).map_err(|e| {
        HttpError::BadRequest(format!(
            "`{}` is not a valid URL ({e}); check the variables it uses",
            redact::scrub(&url)
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(HttpError::BadRequest(format!(
            "`{}` is not an http(s) URL",
            redact::scrub(&url)
        )));
    }
    Ok(Prepared {
        shown: format!("{} {}", step.method.as_str(), redact::scrub(&url)),
        url: parsed,
        headers,
        body,
    })
}

/// Runs the request; on success returns the final status line. `traceparent`
/// (the step's span) goes on as the W3C header, unless the step sets its own.
pub(crate) fn run(
    step: &HttpStep,
    deadline: Instant,
    traceparent: Option<&str>,
) -> Result<String, HttpError> {
    let Prepared {
        url: parsed,
        shown,
        mut headers,
        body,
    } = prepare(step)?;
    add_traceparent(&mut headers, traceparent);

    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("preheat/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(step.timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| HttpError::BadRequest(format!("could not set up HTTP: {e}")))?;
    let method = reqwest::Method::from_bytes(step.method.as_str().as_bytes())
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    let attempts = step.retries.saturating_add(1);

    for attempt in 1..=attempts {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpError::Deadline);
        }
        let mut request = client
            .request(method.clone(), parsed.clone())
            .timeout(step.timeout.min(remaining));
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &body {
            request = request.body(body.clone());
        }
        let started = Instant::now();
        let (retry, wait, failure) = match send_interruptibly(request)? {
            Ok(response) => {
                let status = response.status();
                let elapsed = human(started.elapsed());
                let reason = status.canonical_reason().unwrap_or("").to_string();
                if step.expect.accepts(status.as_u16()) {
                    return Ok(format!(
                        "{shown} → {} {reason} ({elapsed})",
                        status.as_u16()
                    ));
                }
                // A prime step waits at most five minutes for a server's Retry-After.
                let retry_after = retry_after(&response).map(|w| w.min(Duration::from_mins(5)));
                let text = error_text(response);
                let body = redact::scrub(&crate::output::shorten(&text, 200));
                output::sub_bullet(&format!(
                    "{shown} → {} {reason} ({elapsed}), expected {}",
                    status.as_u16(),
                    step.expect
                ));
                let retryable = status.is_server_error() || status.as_u16() == 429;
                (
                    retryable,
                    retry_after,
                    HttpError::Status {
                        status: status.as_u16(),
                        reason,
                        attempts: attempt,
                        body,
                    },
                )
            }
            Err(error) => {
                let error = describe_error(&error);
                output::sub_bullet(&format!("{shown} → {error}"));
                (
                    true,
                    None,
                    HttpError::Transport {
                        error,
                        attempts: attempt,
                    },
                )
            }
        };
        if !retry || attempt == attempts {
            return Err(failure);
        }
        let backoff = Duration::from_secs(1 << (attempt - 1).min(5)).min(Duration::from_secs(30));
        let wait = wait.unwrap_or(backoff);
        if Instant::now() + wait >= deadline {
            return Err(HttpError::Deadline);
        }
        output::sub_bullet(&format!(
            "Retrying in {} (attempt {} of {attempts})",
            human(wait),
            attempt + 1
        ));
        signals::pause(wait).map_err(HttpError::Interrupted)?;
    }
    Err(HttpError::Deadline)
}

/// Sends on a helper thread, so SIGTERM stops the release at once instead of
/// after the request's timeout.
fn send_interruptibly(
    request: reqwest::blocking::RequestBuilder,
) -> Result<reqwest::Result<reqwest::blocking::Response>, HttpError> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(request.send());
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(result) => return Ok(result),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(signal) = signals::received() {
                    return Err(HttpError::Interrupted(signal));
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(HttpError::BadRequest(
                    "the HTTP request thread failed".to_string(),
                ));
            }
        }
    }
}

/// How much of an error body preheat reads: messages show 200 characters of it.
pub(crate) const ERROR_BODY_CAP: u64 = 4096;

/// Reads at most `cap` bytes of a body, so that no server can fill preheat's
/// memory; the error is the transport's (a reset, a timeout).
pub(crate) fn read_at_most(
    response: reqwest::blocking::Response,
    cap: u64,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    response.take(cap).read_to_end(&mut body)?;
    Ok(body)
}

/// The start of an error body as text, for a message; what arrived before a
/// reset or a timeout still says something, so it is kept.
pub(crate) fn error_text(response: reqwest::blocking::Response) -> String {
    let mut body = Vec::new();
    let _ = response.take(ERROR_BODY_CAP).read_to_end(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

/// An I/O error from reading a body, with its innermost cause, scrubbed.
pub(crate) fn describe_io_error(error: &std::io::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    redact::scrub(&text)
}

/// `Retry-After` in seconds or as an HTTP date (a date in the past is zero).
pub(crate) fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    Some(match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    })
}

/// reqwest's error chain, with the URL (and any password in it) scrubbed.
pub(crate) fn describe_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = Vec::new();
    while let Some(cause) = source {
        detail.push(cause.to_string());
        source = cause.source();
    }
    let mut detail = detail.last().cloned().unwrap_or_default();
    // What rustls says when an https:// URL reaches a plain HTTP server.
    if detail.contains("InvalidContentType") {
        detail.push_str(" (the server speaks plain HTTP; use an http:// URL)");
    }
    redact::scrub(&if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers() {
        assert!(secret_header("Authorization"));
        assert!(secret_header("X-Api-Key"));
        assert!(!secret_header("Content-Type"));
    }

    #[test]
    fn the_span_goes_on_unless_the_step_sets_its_own_traceparent() {
        let span = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut headers = vec![("Accept".to_string(), "*/*".to_string())];
        add_traceparent(&mut headers, Some(span));
        assert_eq!(headers[1], ("traceparent".to_string(), span.to_string()));
        let mut own = vec![("TraceParent".to_string(), "00-own-01".to_string())];
        add_traceparent(&mut own, Some(span));
        assert_eq!(own.len(), 1);
        let mut off = Vec::new();
        add_traceparent(&mut off, None);
        assert!(off.is_empty());
    }
}
