//! `[[migrate]]` and `[[prime]]` steps: from their raw shape to a checked
//! `Step`, with the `[release]` lock defaults applied.

use super::diagnostic::Located;
use super::duration::Span;
use super::raw::RawStep;
use super::template::Template;
use super::{
    Action, DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_URL, Expect, HttpStep, LockSpec, Phase, Release,
    Step,
};
use std::time::Duration;
use toml::Spanned;

/// More retries than this only wait out the release deadline.
const MAX_RETRIES: u32 = 100;

pub(super) fn convert_step(
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
                retries: retries(raw.retries)?,
                timeout: http.timeout.map_or(Duration::from_secs(30), Span::get),
            })
        }
    };
    let name = raw.name.unwrap_or_else(|| match &action {
        Action::Command(run) => format!(
            "{} #{} ({})",
            phase.key(),
            index + 1,
            crate::output::shorten(run, 40)
        ),
        Action::Exec(argv) => format!(
            "{} #{} ({})",
            phase.key(),
            index + 1,
            crate::output::shorten(&argv.join(" "), 40)
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

/// `retries`: at most [`MAX_RETRIES`].
fn retries(value: Option<Spanned<u32>>) -> Result<u32, Located> {
    match value {
        None => Ok(0),
        Some(r) if *r.get_ref() <= MAX_RETRIES => Ok(r.into_inner()),
        Some(r) => Err(Located::new(
            r.span(),
            format!(
                "`retries` must be at most {MAX_RETRIES}, not {}",
                r.get_ref()
            ),
            "Each retry waits longer (up to 30s), and the release deadline bounds them all; a few retries are enough.",
        )),
    }
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
pub(super) fn check_lock_url(url: &Spanned<Template>) -> Result<(), Located> {
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
pub(super) fn check_url(url: &Spanned<Template>) -> Result<(), Located> {
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
