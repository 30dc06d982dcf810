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

/// `preheat check` on a real terminal (a pty from util-linux `script`), with and
/// without `NO_COLOR`: the escape bytes of the coloured style, or none.
fn check_on_a_terminal(no_color: bool) -> String {
    let command = format!(
        "{} check {}",
        env!("CARGO_BIN_EXE_preheat"),
        example_dir().display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    script.env_remove("NO_COLOR");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    let out = script
        .output()
        .expect("run util-linux `script` (.ci/run installs bsdutils)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_color_and_a_pipe_give_plain_text_and_a_terminal_gets_colour() {
    let piped = preheat()
        .arg("check")
        .arg(example_dir())
        .env_remove("NO_COLOR")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&piped.stderr);
    assert!(text.contains("preheat.toml is valid"), "{text}");
    assert!(!text.contains('\x1b'), "escape bytes on a pipe: {text:?}");

    let coloured = check_on_a_terminal(false);
    assert!(
        coloured.contains('\x1b'),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = check_on_a_terminal(true);
    assert!(plain.contains("preheat.toml is valid"), "{plain}");
    assert!(
        !plain.contains('\x1b'),
        "escape bytes under NO_COLOR: {plain:?}"
    );
}

#[test]
fn build_output_keeps_heroku_style_on_a_pipe() {
    // The classic compile is build output: Heroku's style, even in a log.
    let out = preheat()
        .args(["classic", "compile"])
        .arg(example_dir())
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains('\x1b'), "{text:?}");
}

#[test]
fn check_reports_three_errors_each_located() {
    let app = app(&[(
        "preheat.toml",
        "[[migrate]]\nhttp = { url = \"https://example.com\" }\n\n[[prime]]\nname = \"a\"\n\n[confirm]\npoll = \"1s\"\n",
    )]);
    let out = preheat()
        .arg("check")
        .arg(app.path())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("3 problems in this file:"), "{text}");
    for place in [
        "preheat.toml:2:8:",
        "preheat.toml:4:1:",
        "preheat.toml:8:8:",
    ] {
        assert!(text.contains(place), "{place} missing in:\n{text}");
    }
}
