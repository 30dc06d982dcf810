//! The `preheat` command line: `--help`, `--version` and `check`.

#![allow(unused_crate_dependencies)]

mod support;

use support::{app, example_dir, preheat, strip_ansi};

#[test]
fn version_and_help() {
    let out = preheat().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "preheat 0.1.0");
    let out = preheat().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "release",
        "check",
        "warm",
        "await-live",
        "restart",
        "rehearse",
    ] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn usage_error_exits_2() {
    let out = preheat().arg("bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_prints_the_example_plan() {
    let out = preheat()
        .arg("check")
        .arg(example_dir())
        .output()
        .expect("run");
    let text = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Migrations 1/1: schema: `bin/migrate`"),
        "{text}"
    );
    assert!(
        text.contains("Priming 1/1: page cache: `bin/prime` [optional]"),
        "{text}"
    );
    assert!(text.contains("Warm-up: /, /dashboard"), "{text}");
    assert!(text.contains("Procfile runs `preheat release`"), "{text}");
}

#[test]
fn check_rejects_a_bad_file_with_exit_2() {
    let app = app(&[(
        "preheat.toml",
        "[warmup]\npaths = [\"/\"]\nrounds = \"two\"\n",
    )]);
    let out = preheat()
        .arg("check")
        .arg(app.path())
        .output()
        .expect("run");
    let text = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("preheat.toml:3:10:"), "{text}");
}

#[test]
fn check_shows_the_gate_when_the_web_command_runs_through_it() {
    let app = app(&[
        (
            "Procfile",
            "web: preheat gate -- gunicorn -b :$PORT app:app\nrelease: preheat release\n",
        ),
        ("preheat.toml", "[warmup]\ngate_timeout = \"30s\"\n"),
    ]);
    let out = preheat()
        .arg("check")
        .arg(app.path())
        .output()
        .expect("run");
    let text = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(indoc::indoc! {"
            - Procfile runs `web` through `preheat gate`: $PORT opens only when the app is warm
              - runs `gunicorn -b :$PORT app:app` on a private port, warms / there, then opens $PORT; opens anyway at gate_timeout 30s from the start, and never if the app never binds
              - The boot warm-up (exec.d) stands aside for it at launch
        "}),
        "{text}"
    );
}
