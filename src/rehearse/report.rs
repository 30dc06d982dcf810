//! The rehearsal report: per dyno, each first user's status, the worst and
//! median first-user latency and the steady median, warm and (with
//! `--compare`) cold; and the failure, with a hint, when a first user got an
//! error instead of the page.

use super::dynos::{Measured, WarmUp};
use crate::config::duration::human;
use crate::output;
use indoc::formatdoc;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// What the report needs besides the figures.
pub(crate) struct Context<'a> {
    pub(crate) release: Duration,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) burst: usize,
    /// The web command is `preheat gate -- CMD`; the cold run is the bare CMD.
    pub(crate) gated: bool,
}

pub(crate) fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.1}ms")
    } else {
        human(duration)
    }
}

/// `6×200`, or `5×200 1×400`, or `---` for no answer.
pub(crate) fn statuses(measured: &Measured) -> String {
    let mut counts = BTreeMap::new();
    for answer in &measured.first {
        let status = answer
            .status
            .map_or_else(|| "---".to_string(), |s| s.to_string());
        *counts.entry(status).or_insert(0usize) += 1;
    }
    let mut text = String::new();
    for (status, count) in counts {
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "{count}×{status}");
    }
    text
}

fn row(m: &Measured) -> String {
    let warm_up = match m.warm_up {
        WarmUp::Off => "off".to_string(),
        WarmUp::Gate => "gate".to_string(),
        WarmUp::GaveUp => "gave up".to_string(),
        WarmUp::Done(after) => ms(after),
    };
    format!(
        "{:<7} {:>8} {:>9} {:>12} {:>8} {:>8} {:>8}",
        m.name,
        ms(m.bound_after),
        warm_up,
        statuses(m),
        ms(m.worst()),
        ms(m.first_median()),
        ms(m.steady_median())
    )
}

pub(crate) fn print(context: &Context, warm: &[Measured], cold: Option<&[Measured]>) {
    output::bullet("Rehearsal report");
    output::sub_bullet(&format!("Release phase: {}", human(context.release)));
    output::sub_bullet(&format!(
        "First users: {} at once per dyno, GET {} with Host: {}, each on a fresh connection",
        context.burst, context.path, context.host
    ));
    output::sub_bullet(&format!(
        "{:<7} {:>8} {:>9} {:>12} {:>8} {:>8} {:>8}",
        "dyno", "bind", "warm-up", "first users", "worst", "median", "steady"
    ));
    for m in warm {
        output::sub_bullet(&row(m));
    }
    // What the gate itself measured: every request that crossed it in its window.
    for line in warm.iter().filter_map(|m| m.gate_line.as_deref()) {
        output::sub_bullet(line.trim_start_matches("preheat: "));
    }
    if warm.iter().any(|m| matches!(m.warm_up, WarmUp::GaveUp)) {
        output::warning(
            "A warmer gave up before its dyno bound the port: raise `[warmup] deadline` above the app's boot time.",
        );
    }
    let Some(cold) = cold else {
        return;
    };
    output::sub_bullet(if context.gated {
        "Without the gate (--compare):"
    } else {
        "Without warm-up (--compare):"
    });
    for m in cold {
        output::sub_bullet(&row(m));
    }
    for (w, c) in warm.iter().zip(cold) {
        let factor = c.worst().as_secs_f64() / w.worst().as_secs_f64().max(1e-6);
        output::sub_bullet(&format!(
            "{}: the slowest first user waits {} warm vs {} cold ({factor:.0}x faster)",
            w.name,
            ms(w.worst()),
            ms(c.worst())
        ));
    }
}

/// The error block when a first user did not get a 2xx or 3xx: a user would
/// have seen an error page, however fast it came.
pub(crate) fn failure(context: &Context, measured: &[Measured], run: &str) -> Option<String> {
    // The first path, then the others (`--path`): an error page on any path a
    // user hits fails the rehearsal.
    let (dyno, path, total, bad) = measured.iter().find_map(|m| {
        std::iter::once((context.path, &m.first))
            .chain(m.more.iter().map(|more| (more.path.as_str(), &more.first)))
            .find_map(|(path, first)| {
                let bad: Vec<_> = first.iter().filter(|a| !a.ok(context.host, path)).collect();
                (!bad.is_empty()).then_some((m, path, first.len(), bad))
            })
    })?;
    let first = bad.first()?;
    let got = match (first.status, &first.problem) {
        (Some(status), _) if first.is_ssl_redirect(context.host, path) => format!(
            "{status}, a redirect to {}",
            first.location.as_deref().unwrap_or_default()
        ),
        (Some(status), _) => status.to_string(),
        (None, Some(problem)) => format!("no answer ({problem})"),
        (None, None) => "no answer".to_string(),
    };
    let host_hint = if context.host == super::users::FALLBACK_HOST {
        "\nThe app's domain is unknown here, so rehearse sent `Host: localhost`. Set `[warmup] host` in preheat.toml, or HEROKU_APP_DEFAULT_DOMAIN_NAME in .env, to rehearse with the domain the router sends.\n"
    } else {
        ""
    };
    Some(formatdoc! {"
        {dyno_name}'s first users did not get the page ({run}): {count} of {total} got {got}
        for GET {path} with Host: {host}.

        Real users would have seen this error, so the rehearsal fails. The request came as the
        Heroku router sends it (X-Forwarded-Proto: https, X-Forwarded-Port: 443). Check that the app
        accepts it:
        - Django: the domain must be in ALLOWED_HOSTS (400 Bad Request otherwise).
        - Rails: the domain must be in config.hosts (403 Blocked host otherwise).
        - A forced-SSL redirect (Django SECURE_SSL_REDIRECT, Rails force_ssl) must trust the router's
          X-Forwarded-Proto: set Django's SECURE_PROXY_SSL_HEADER = (\"HTTP_X_FORWARDED_PROTO\", \"https\"),
          or Rails' config.assume_ssl = true.
        {host_hint}The dyno's own output is above, prefixed `{dyno_name} |`.",
        dyno_name = dyno.name,
        count = bad.len(),
        host = context.host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearse::users::Answer;

    fn dyno(statuses: &[(Option<u16>, Option<&str>)]) -> Measured {
        Measured {
            name: "web.1".to_string(),
            bound_after: Duration::from_millis(300),
            warm_up: WarmUp::Done(Duration::from_millis(900)),
            first: statuses
                .iter()
                .map(|(status, location)| Answer {
                    status: *status,
                    took: Duration::from_millis(5),
                    location: location.map(str::to_string),
                    problem: status.is_none().then(|| "Connection refused".to_string()),
                })
                .collect(),
            steady: Vec::new(),
            gate_line: None,
            warm_burst: Vec::new(),
            more: Vec::new(),
        }
    }

    fn context() -> Context<'static> {
        Context {
            release: Duration::ZERO,
            host: "shop.example.com",
            path: "/",
            burst: 3,
            gated: false,
        }
    }

    #[test]
    fn statuses_are_counted() {
        let m = dyno(&[
            (Some(200), None),
            (Some(400), None),
            (Some(200), None),
            (None, None),
        ]);
        assert_eq!(statuses(&m), "1×--- 2×200 1×400");
    }

    #[test]
    fn a_4xx_first_user_fails_with_the_hint() {
        let m = dyno(&[(Some(200), None), (Some(400), None), (Some(400), None)]);
        let text = failure(&context(), &[m], "cold").expect("a failure");
        assert!(text.starts_with("web.1's first users did not get the page (cold): 2 of 3 got 400\nfor GET / with Host: shop.example.com."), "{text}");
        assert!(
            text.contains("ALLOWED_HOSTS") && text.contains("config.hosts"),
            "{text}"
        );
        assert!(!text.contains("rehearse sent `Host: localhost`"), "{text}");
    }

    #[test]
    fn a_redirect_to_https_fails_but_other_redirects_pass() {
        let to_login = dyno(&[(Some(302), Some("/login"))]);
        assert!(failure(&context(), &[to_login], "cold").is_none());
        let to_https = dyno(&[(Some(301), Some("https://shop.example.com/"))]);
        let text = failure(&context(), &[to_https], "cold").expect("a failure");
        assert!(
            text.contains("got 301, a redirect to https://shop.example.com/"),
            "{text}"
        );
        assert!(text.contains("SECURE_PROXY_SSL_HEADER"), "{text}");
    }

    #[test]
    fn no_answer_is_a_failure() {
        let text = failure(&context(), &[dyno(&[(None, None)])], "cold").expect("a failure");
        assert!(
            text.contains("got no answer (Connection refused)"),
            "{text}"
        );
    }

    #[test]
    fn an_error_on_another_path_fails_and_names_that_path() {
        let mut m = dyno(&[(Some(200), None), (Some(200), None)]);
        m.more.push(crate::rehearse::dynos::PathUsers {
            path: "/reports/".to_string(),
            first: dyno(&[(Some(200), None), (Some(500), None)]).first,
            warm: Vec::new(),
        });
        let text = failure(&context(), &[m], "after the warm-up").expect("a failure");
        assert!(
            text.starts_with("web.1's first users did not get the page (after the warm-up): 1 of 2 got 500\nfor GET /reports/ with Host: shop.example.com."),
            "{text}"
        );
    }
}
