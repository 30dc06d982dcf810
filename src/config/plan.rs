//! The release plan, as `preheat check` and the buildpack's build print it.

use crate::config::duration::Span;
use crate::config::{Action, Config, Phase, Step};
use crate::output::{self, shorten};
use std::fmt::Write;

pub(crate) fn describe_step(step: &Step) -> String {
    let mut text = match &step.action {
        Action::Command(run) => format!("{}: `{}`", step.name, shorten(run, 60)),
        Action::Exec(argv) => format!(
            "{}: `{}` (no shell)",
            step.name,
            shorten(&crate::config::project_toml::show_argv(argv), 60)
        ),
        Action::Http(http) => {
            let mut text = format!(
                "{}: {} {} (expect {}",
                step.name,
                http.method.as_str(),
                http.url.raw(),
                http.expect
            );
            if http.retries > 0 {
                let _ = write!(text, ", {} retries", http.retries);
            }
            text.push(')');
            text
        }
    };
    let mut notes = Vec::new();
    if let Some(timeout) = step.timeout {
        notes.push(format!("timeout {}", Span(timeout)));
    }
    if !step.only_if_env.is_empty() {
        notes.push(format!("only if {} set", step.only_if_env.join(", ")));
    }
    if !step.required {
        notes.push("optional".to_string());
    }
    if let Some(lock) = &step.lock {
        notes.push(format!(
            "postgres lock on {}, waits up to {}",
            lock.url.raw(),
            Span(lock.timeout)
        ));
    }
    if !notes.is_empty() {
        let _ = write!(text, " [{}]", notes.join("; "));
    }
    text
}

/// One line that says what the boot warm-up will do.
pub(crate) fn describe_warmup(config: &Config) -> String {
    let warmup = &config.warmup;
    if !warmup.enabled {
        return "off ([warmup] enabled = false)".to_string();
    }
    let requests: Vec<String> = warmup
        .requests
        .iter()
        .map(|r| {
            if r.method == crate::config::Method::Get {
                r.path.clone()
            } else {
                format!("{} {}", r.method.as_str(), r.path)
            }
        })
        .collect();
    let rounds = if warmup.rounds == warmup.max_rounds {
        format!(
            "{} round{}",
            warmup.rounds,
            if warmup.rounds == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "rounds until every worker answers warm ({} to {})",
            warmup.rounds.max(2).min(warmup.max_rounds),
            warmup.max_rounds
        )
    };
    format!(
        "{} on every web process at boot; {rounds}, each path max({}, 2 × WEB_CONCURRENCY) at once, gives up after {}",
        requests.join(", "),
        warmup.concurrency,
        Span(warmup.deadline)
    )
}

/// What `preheat gate` does for a web command that the Procfile wraps in it.
pub(crate) fn describe_gate(config: &Config, command: &str) -> String {
    let warmup = &config.warmup;
    let command = shorten(command, 60);
    if !warmup.enabled {
        return format!(
            "runs `{command}` on a private port and opens $PORT as soon as it binds (warm-up off)"
        );
    }
    let paths: Vec<&str> = warmup.requests.iter().map(|r| r.path.as_str()).collect();
    format!(
        "runs `{command}` on a private port, warms {} there, then opens $PORT; opens anyway at gate_timeout {} from the start, and never if the app never binds",
        paths.join(", "),
        Span(warmup.gate_timeout)
    )
}

/// Prints what the gate will do when the Procfile's web command runs through it.
pub(crate) fn print_gate(config: &Config, procfile: &crate::config::procfile::Procfile) {
    if let Some(command) = procfile.gated_web() {
        output::bullet(
            "Procfile runs `web` through `preheat gate`: $PORT opens only when the app is warm",
        );
        output::sub_bullet(&describe_gate(config, command));
        output::sub_bullet("The boot warm-up (exec.d) stands aside for it at launch");
    }
}

/// What project.toml's heroku/release-phase tables mean for this plan, as
/// warnings: commands that preheat.toml overrides, and `release-build`.
pub(crate) fn project_warnings(config: &Config) -> Vec<String> {
    let Some(project) = &config.project else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    let count = project.steps.len();
    if count > 0 && !config.runs_project_toml() {
        warnings.push(format!(
            "{} has {count} [[com.heroku.phase.release]] command{}, but preheat.toml wins: they do not run.\n\nMove them into preheat.toml as [[migrate]] steps (like `run = \"bundle exec rails db:migrate\"`), or delete preheat.toml to run them as they are.",
            project.path.display(),
            if count == 1 { "" } else { "s" }
        ));
    }
    warnings.extend(project.release_build_warning());
    warnings
}

/// Prints the plan as bullets.
pub(crate) fn print(config: &Config) {
    if config.runs_project_toml() {
        output::bullet(
            "Release plan (no preheat.toml: project.toml's [[com.heroku.phase.release]] commands are the migrations)",
        );
    } else {
        match &config.source {
            Some(_) => output::bullet("Release plan (preheat.toml)"),
            None => output::bullet("Release plan (no preheat.toml: the defaults)"),
        }
    }
    output::sub_bullet(&format!(
        "Deadline: {} for the whole release phase",
        Span(config.release.deadline.get())
    ));
    for phase in [Phase::Migrate, Phase::Prime] {
        let steps = config.steps(phase);
        let title = match phase {
            Phase::Migrate => "Migrations",
            Phase::Prime => "Priming",
        };
        if steps.is_empty() {
            output::sub_bullet(&format!("{title}: none"));
        }
        for (i, step) in steps.iter().enumerate() {
            output::sub_bullet(&format!(
                "{title} {}/{}: {}",
                i + 1,
                steps.len(),
                describe_step(step)
            ));
        }
    }
    output::sub_bullet(&format!("Warm-up: {}", describe_warmup(config)));
    if let Some(line) = describe_confirm(config) {
        output::sub_bullet(&format!("Confirm: {line}"));
    }
    if let Some(notify) = &config.notify {
        output::sub_bullet(&format!(
            "Notify: POST to {} when the release is live and warm",
            notify.webhook.raw()
        ));
    }
    for warning in project_warnings(config) {
        output::warning(&warning);
    }
}

/// What `[confirm]` (with or without `[notify]`) makes the release schedule; `None` when neither is set.
pub(crate) fn describe_confirm(config: &Config) -> Option<String> {
    if config.notify.is_none() && config.confirm.is_none() {
        return None;
    }
    let confirm = config.confirm_settings();
    if !confirm.enabled {
        return Some("off ([confirm] enabled = false)".to_string());
    }
    Some(format!(
        "after the release phase, a detached dyno runs `preheat await-live` (needs PREHEAT_API_TOKEN): waits until every web dyno is up on the release, warms it through the public URL{}; polls every {}, gives up after {}, time_to_live {}",
        if config.notify.is_some() {
            ", then notifies"
        } else {
            ""
        },
        Span(confirm.poll),
        Span(confirm.deadline),
        Span(confirm.time_to_live)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_steps_and_warmup() {
        let config = Config::parse(
            "[[migrate]]\nname = \"schema\"\nrun = \"rake db:migrate\"\ntimeout = \"30m\"\nonly_if_env = [\"DATABASE_URL\"]\n[warmup]\npaths = [\"/\", \"/dashboard\"]\n",
            std::path::Path::new("preheat.toml"),
        )
        .expect("valid");
        assert_eq!(
            describe_step(&config.migrate[0]),
            "schema: `rake db:migrate` [timeout 30m; only if DATABASE_URL set]"
        );
        assert!(describe_warmup(&config).starts_with("/, /dashboard on every web process"));
    }

    #[test]
    fn describes_the_gate() {
        let parse =
            |text: &str| Config::parse(text, std::path::Path::new("preheat.toml")).expect("valid");
        let config = parse("[warmup]\npaths = [\"/\", \"/dashboard\"]\ngate_timeout = \"30s\"\n");
        assert_eq!(
            describe_gate(&config, "gunicorn app:app"),
            "runs `gunicorn app:app` on a private port, warms /, /dashboard there, then opens $PORT; opens anyway at gate_timeout 30s from the start, and never if the app never binds"
        );
        assert!(
            describe_gate(&parse("[warmup]\nenabled = false\n"), "x")
                .ends_with("opens $PORT as soon as it binds (warm-up off)")
        );
    }

    #[test]
    fn describes_a_migration_lock() {
        let config = Config::parse(
            "[[migrate]]\nname = \"schema\"\nrun = \"rake db:migrate\"\nlock = \"postgres\"\nlock_timeout = \"2m\"\n",
            std::path::Path::new("preheat.toml"),
        )
        .expect("valid");
        assert_eq!(
            describe_step(&config.migrate[0]),
            "schema: `rake db:migrate` [postgres lock on ${DATABASE_URL}, waits up to 2m]"
        );
    }

    #[test]
    fn describes_confirm_only_when_configured() {
        let parse =
            |text: &str| Config::parse(text, std::path::Path::new("preheat.toml")).expect("valid");
        assert_eq!(describe_confirm(&parse("")), None);
        let line = describe_confirm(&parse("[notify]\nwebhook = \"https://x\"\n")).expect("a line");
        assert!(
            line.contains("then notifies; polls every 5s, gives up after 30m, time_to_live 35m"),
            "{line}"
        );
        let line = describe_confirm(&parse("[confirm]\npoll = \"10s\"\n")).expect("a line");
        assert!(line.contains("public URL; polls every 10s"), "{line}");
        assert_eq!(
            describe_confirm(&parse("[confirm]\nenabled = false\n")).as_deref(),
            Some("off ([confirm] enabled = false)")
        );
    }
}
