//! `preheat release`: the Procfile `release:` entry. Runs the `[[migrate]]`
//! steps, then the `[[prime]]` steps, within the release deadline, then
//! schedules the warm-up. The exit code is the contract with Heroku.

pub(crate) mod httpstep;
pub(crate) mod pglock;
pub(crate) mod process;
pub(crate) mod signals;

use crate::config::duration::{Span, human};
use crate::config::plan;
use crate::config::skip::Skip;
use crate::config::{Action, Config, Phase, ReadBy, Step};
use crate::exit;
use crate::output;
use crate::telemetry::{self, Telemetry};
use httpstep::HttpError;
use indoc::formatdoc;
use pglock::LockError;
use process::{Limit, Outcome};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Status {
    Ran,
    Skipped(String),
    Failed(String),
    NotRun,
}

struct Record {
    phase: Phase,
    name: String,
    required: bool,
    status: Status,
    took: Option<Duration>,
}

/// How a step ended, before it is recorded.
enum StepEnd {
    Ok,
    Failed(String),
    Deadline,
    Interrupted(i32),
}

/// `schedule_fleet` is the last step of a release that passed: the CLI hands
/// in the Platform API's scheduler, so `release` never depends on `platform`.
pub(crate) fn run(dir: &Path, schedule_fleet: &dyn Fn(&Config, Skip)) -> u8 {
    let started = Instant::now();
    let tel = Telemetry::from_env();
    let mut root = tel.root_span("preheat release");
    let code = run_traced(dir, schedule_fleet, &tel, &mut root);
    root.attr("process.exit.code", i64::from(code));
    if code != exit::OK {
        root.fail(&format!("the release failed (exit {code})"));
    }
    tel.end(root);
    tel.histogram(
        "preheat.release.duration",
        "s",
        started.elapsed().as_secs_f64(),
        &[(
            "preheat.outcome",
            if code == exit::OK { "ok" } else { "failed" }.into(),
        )],
    );
    tel.shutdown();
    code
}

fn run_traced(
    dir: &Path,
    schedule_fleet: &dyn Fn(&Config, Skip),
    tel: &Telemetry,
    root: &mut telemetry::Span,
) -> u8 {
    let started = Instant::now();
    if let Err(error) = signals::install() {
        output::error(&format!("Could not install signal handlers: {error}"));
        return exit::FAILED;
    }
    process::become_subreaper();
    match std::env::var("HEROKU_RELEASE_VERSION") {
        Ok(version) if !version.is_empty() => {
            output::header(&format!("preheat release {version}"));
        }
        _ => output::header("preheat release"),
    }
    let config = match Config::load_dir(dir) {
        Ok(config) => config,
        Err(error) => {
            output::error(&error.user_block(ReadBy::Release));
            return exit::USAGE;
        }
    };
    let skip = match Skip::from_env() {
        Ok(skip) => skip,
        Err(error) => {
            output::error(&error.to_string());
            return exit::USAGE;
        }
    };
    if config.runs_project_toml() {
        output::bullet(
            "No preheat.toml: running project.toml's [[com.heroku.phase.release]] commands as migrations, in order, without a shell",
        );
    }
    for warning in plan::project_warnings(&config) {
        output::warning(&warning);
    }
    let deadline = started + config.release.deadline.get();
    let (records, verdict) = run_phases(&config, skip, dir, deadline, tel, root);

    if verdict.is_none() {
        schedule_warmup(&config, skip, schedule_fleet);
    }
    summary(&records);
    summary_line(&records, verdict.is_none(), started.elapsed());
    if let Some((code, message)) = verdict {
        output::error(&message);
        return code;
    }
    bullet_stream::global::print::all_done(&Some(started));
    exit::OK
}

/// Prints how a step ended and decides whether the release stops there.
fn settle(
    config: &Config,
    phase: Phase,
    step: &Step,
    end: StepEnd,
    took: Duration,
) -> (Status, Option<(u8, String)>) {
    let mut verdict = None;
    let status = match end {
        StepEnd::Ok => {
            output::sub_bullet(&format!("{}: done ({})", step.name, human(took)));
            Status::Ran
        }
        StepEnd::Failed(why) => {
            output::sub_bullet(&format!("{}: failed, {why} ({})", step.name, human(took)));
            if step.required {
                verdict = Some((exit::FAILED, failure_message(phase, step, &why)));
            } else {
                output::warning(&format!(
                    "Optional step {} failed ({why}); the release goes on.",
                    step.name
                ));
            }
            Status::Failed(why)
        }
        StepEnd::Deadline => {
            let why = format!(
                "stopped: the release deadline of {} passed",
                config.release.deadline
            );
            output::sub_bullet(&format!("{}: {why}", step.name));
            verdict = Some((
                exit::DEADLINE,
                format!(
                    "The release deadline of {} passed while {} was running; it was stopped and the release is aborted.\n\nRaise `[release] deadline` in preheat.toml (Heroku stops release phase at 60m), or make the step faster, e.g. by moving slow work into a [[prime]] step with `required = false`.",
                    config.release.deadline, step.name
                ),
            ));
            Status::Failed(why)
        }
        StepEnd::Interrupted(signal) => {
            let why = format!("stopped: preheat received {}", signals::name(signal));
            output::sub_bullet(&format!("{}: {why}", step.name));
            verdict = Some((
                128 + u8::try_from(signal).unwrap_or(0),
                format!(
                    "preheat received {} while {} was running (the release dyno is being stopped). The step's processes were stopped and the release is aborted. Deploy again to retry.",
                    signals::name(signal),
                    step.name
                ),
            ));
            Status::Failed(why)
        }
    };
    (status, verdict)
}

/// Runs the migrate then prime phases; stops at the first required failure.
fn run_phases(
    config: &Config,
    skip: Skip,
    dir: &Path,
    deadline: Instant,
    tel: &Telemetry,
    root: &telemetry::Span,
) -> (Vec<Record>, Option<(u8, String)>) {
    let mut records = Vec::new();
    let mut verdict = None;

    for phase in [Phase::Migrate, Phase::Prime] {
        let steps = config.steps(phase);
        let (title, skipped) = match phase {
            Phase::Migrate => ("Migrations", skip.migrate),
            Phase::Prime => ("Priming", skip.prime),
        };
        if steps.is_empty() {
            continue;
        }
        if skipped {
            output::bullet(&format!("{title}: skipped (PREHEAT_SKIP={})", phase.key()));
            records.extend(
                steps
                    .iter()
                    .map(|step| record(phase, step, Status::Skipped("PREHEAT_SKIP".into()), None)),
            );
            continue;
        }
        output::bullet(title);
        for step in steps {
            if verdict.is_some() {
                records.push(record(phase, step, Status::NotRun, None));
                continue;
            }
            if let Some(var) = missing_env(step) {
                output::warning(&format!(
                    "Skipping {}: {var} is not set (only_if_env).",
                    step.name
                ));
                records.push(record(
                    phase,
                    step,
                    Status::Skipped(format!("{var} is not set")),
                    None,
                ));
                continue;
            }
            let step_started = Instant::now();
            let mut span = tel.child(root, &format!("{} {}", phase.key(), step.name));
            let end = run_step(step, dir, deadline, tel, &span);
            let took = step_started.elapsed();
            let (status, stop) = settle(config, phase, step, end, took);
            trace_step(tel, &mut span, phase, step, &status, took);
            tel.end(span);
            if stop.is_some() {
                verdict = stop;
            }
            records.push(record(phase, step, status, Some(took)));
        }
    }

    (records, verdict)
}

fn record(phase: Phase, step: &Step, status: Status, took: Option<Duration>) -> Record {
    Record {
        phase,
        name: step.name.clone(),
        required: step.required,
        status,
        took,
    }
}

fn missing_env(step: &Step) -> Option<&str> {
    step.only_if_env
        .iter()
        .find(|var| std::env::var(var.as_str()).map_or(true, |v| v.is_empty()))
        .map(String::as_str)
}

fn failure_message(phase: Phase, step: &Step, why: &str) -> String {
    let what = match phase {
        Phase::Migrate => "migration",
        Phase::Prime => "prime step",
    };
    let fix = match &step.action {
        Action::Command(_) | Action::Exec(_) => {
            "Its output is above. Fix the cause and deploy again; `heroku releases:retry` re-runs release phase for the same code."
        }
        Action::Http(_) => {
            "Check that the service is up and that the URL and credentials are right; mark the step `required = false` if the release should go on without it."
        }
    };
    formatdoc! {"
        The {what} {name} failed: {why}.

        The release is aborted, so the new code never went live.
        {fix}",
        name = step.name
    }
}

/// The step's span: its outcome, timeout and duration, and the duration metric.
fn trace_step(
    tel: &Telemetry,
    span: &mut telemetry::Span,
    phase: Phase,
    step: &Step,
    status: &Status,
    took: Duration,
) {
    let outcome = match status {
        Status::Ran => "ok",
        Status::Failed(_) => "failed",
        Status::Skipped(_) => "skipped",
        Status::NotRun => "not_run",
    };
    span.attr("preheat.step.phase", phase.key());
    span.attr("preheat.step.name", step.name.as_str());
    span.attr("preheat.step.required", step.required);
    span.attr("preheat.step.outcome", outcome);
    if let Some(timeout) = step.timeout {
        span.attr("preheat.step.timeout_s", timeout.as_secs_f64());
    }
    if let Status::Failed(why) = status {
        span.attr("preheat.step.exit_status", why.as_str());
        span.fail(why);
    }
    tel.histogram(
        "preheat.release.step.duration",
        "s",
        took.as_secs_f64(),
        &[
            ("preheat.step.phase", phase.key().into()),
            ("preheat.step.name", step.name.as_str().into()),
            ("preheat.outcome", outcome.into()),
        ],
    );
}

fn run_step(
    step: &Step,
    dir: &Path,
    deadline: Instant,
    tel: &Telemetry,
    span: &telemetry::Span,
) -> StepEnd {
    let traceparent = tel.traceparent(span);
    let Some(spec) = &step.lock else {
        return run_action(step, dir, deadline, traceparent.as_deref());
    };
    output::sub_bullet(&format!("{}: taking the migration lock", step.name));
    let left = deadline.saturating_duration_since(Instant::now());
    let mut wait_span = tel.child(span, "lock wait");
    let lock = pglock::acquire_for(spec, left, &mut |wait| {
        output::sub_bullet(&format!("{}: {wait}", step.name));
    });
    if let Err(error) = &lock {
        wait_span.fail(&error.to_string());
    }
    tel.end(wait_span);
    let lock = match lock {
        Ok(lock) => lock,
        Err(LockError::Interrupted(signal)) => return StepEnd::Interrupted(signal),
        Err(LockError::Timeout { .. }) if Instant::now() >= deadline => return StepEnd::Deadline,
        Err(error) => {
            output::error(&error.to_string());
            return StepEnd::Failed(
                "the migration lock could not be taken (see above)".to_string(),
            );
        }
    };
    output::sub_bullet(&format!(
        "{}: took the migration lock ({})",
        step.name,
        lock.describe()
    ));
    let end = run_action(step, dir, deadline, traceparent.as_deref());
    match lock.release() {
        Ok(()) => output::sub_bullet(&format!("{}: released the migration lock", step.name)),
        Err(error) => output::warning(&error.to_string()),
    }
    end
}

/// `traceparent` goes into a process step's environment as `TRACEPARENT` (the
/// spec's carrier), and onto an HTTP step's request as its `traceparent` header.
fn run_action(step: &Step, dir: &Path, deadline: Instant, traceparent: Option<&str>) -> StepEnd {
    match &step.action {
        Action::Command(run) => {
            output::sub_bullet(&format!(
                "{}: running `{}`",
                step.name,
                crate::output::shorten(run, 80)
            ));
            let mut command = Command::new("bash");
            command.arg("-c").arg(run);
            run_process(step, command, dir, deadline, traceparent)
        }
        Action::Exec(argv) => {
            let shown = crate::config::project_toml::show_argv(argv);
            output::sub_bullet(&format!(
                "{}: running `{}` (no shell)",
                step.name,
                crate::output::shorten(&shown, 80)
            ));
            let Some((program, rest)) = argv.split_first() else {
                return StepEnd::Failed("the command is empty".to_string());
            };
            let mut command = Command::new(program);
            command.args(rest);
            run_process(step, command, dir, deadline, traceparent)
        }
        Action::Http(http) => {
            output::sub_bullet(&format!(
                "{}: {} {}",
                step.name,
                http.method.as_str(),
                http.url.raw()
            ));
            match httpstep::run(http, deadline, traceparent) {
                Ok(line) => {
                    output::sub_bullet(&line);
                    StepEnd::Ok
                }
                Err(HttpError::Deadline) => StepEnd::Deadline,
                Err(HttpError::Interrupted(signal)) => StepEnd::Interrupted(signal),
                Err(error) => StepEnd::Failed(error.to_string()),
            }
        }
    }
}

/// Runs a step's process in its own group, within its timeout and the deadline.
fn run_process(
    step: &Step,
    mut command: Command,
    dir: &Path,
    deadline: Instant,
    traceparent: Option<&str>,
) -> StepEnd {
    if let Some(traceparent) = traceparent {
        command.env("TRACEPARENT", traceparent);
    }
    let limit = match step.timeout {
        Some(timeout) if Instant::now() + timeout < deadline => {
            (Instant::now() + timeout, Limit::StepTimeout)
        }
        _ => (deadline, Limit::Deadline),
    };
    let program = command.get_program().to_string_lossy().into_owned();
    command.current_dir(dir);
    let stream: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(output::stream_line);
    match process::run(command, Some(limit), &stream) {
        Ok(Outcome::Exited(status)) if status.success() => StepEnd::Ok,
        Ok(Outcome::Exited(status)) => StepEnd::Failed(process::describe(status)),
        Ok(Outcome::TimedOut(Limit::StepTimeout)) => StepEnd::Failed(format!(
            "timed out after {} and was stopped",
            Span(step.timeout.unwrap_or_default())
        )),
        Ok(Outcome::TimedOut(Limit::Deadline)) => StepEnd::Deadline,
        Ok(Outcome::Interrupted(signal)) => StepEnd::Interrupted(signal),
        Err(error) => StepEnd::Failed(format!("could not start {program}: {error}")),
    }
}

fn schedule_warmup(config: &Config, skip: Skip, schedule_fleet: &dyn Fn(&Config, Skip)) {
    output::bullet("Warm-up scheduled");
    if skip.warmup {
        output::sub_bullet("Boot warm-up: skipped for this release (PREHEAT_SKIP=warmup)");
    } else if !config.warmup.enabled {
        output::sub_bullet("Boot warm-up: off ([warmup] enabled = false)");
    } else {
        output::sub_bullet(&format!(
            "Boot warm-up: every `web` process warms itself on localhost as it starts (exec.d), before users reach it: {}",
            plan::describe_warmup(config)
        ));
    }
    schedule_fleet(config, skip);
}

/// The release's one parseable line, printed whether or not telemetry is on.
fn summary_line(records: &[Record], passed: bool, took: Duration) {
    let count = |f: fn(&Status) -> bool| records.iter().filter(|r| f(&r.status)).count();
    let ran = count(|s| matches!(s, Status::Ran));
    let failed = count(|s| matches!(s, Status::Failed(_)));
    let skipped = count(|s| matches!(s, Status::Skipped(_) | Status::NotRun));
    let version = std::env::var("HEROKU_RELEASE_VERSION").unwrap_or_default();
    let outcome = if passed { "passed" } else { "failed" };
    let ms = took.as_millis();
    let mut line = format!(
        "preheat: release {outcome}: {ran} ran, {failed} failed, {skipped} skipped in {}",
        human(took)
    );
    line.push_str(&output::figures(&[
        ("event", &"release"),
        ("version", &version),
        ("outcome", &outcome),
        ("ran", &ran),
        ("failed", &failed),
        ("skipped", &skipped),
        ("duration_ms", &ms),
    ]));
    output::bullet(&line);
}

fn summary(records: &[Record]) {
    if records.is_empty() {
        output::bullet("No migrations or priming steps in preheat.toml");
        return;
    }
    output::bullet("Summary");
    let width = records
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    for r in records {
        let (label, detail) = match &r.status {
            Status::Ran => ("ran", String::new()),
            Status::Skipped(why) => ("skipped", why.clone()),
            Status::Failed(why) if r.required => ("FAILED", why.clone()),
            Status::Failed(why) => ("failed", format!("{why} (optional)")),
            Status::NotRun => ("not run", "an earlier required step failed".to_string()),
        };
        let took = r.took.map(human).unwrap_or_default();
        output::sub_bullet(
            format!(
                "{label:<8} {:<7} {:<width$} {took:>7} {detail}",
                r.phase.key(),
                r.name
            )
            .trim_end(),
        );
    }
}
