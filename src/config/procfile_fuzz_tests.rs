//! Generated Procfiles: every line parses or is named by its number, within
//! a time bound, and the questions the buildpack asks of a Procfile (does
//! `release:` run preheat, is `web:` gated) never panic.

use super::*;
use crate::fuzz::{Tally, bounded, heavy_runner, runner};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

static PROCFILES: Tally = Tally::new("Procfile, generated lines");
static BIG: Tally = Tally::new("Procfile, 1 MB lines");

fn check(text: String, tally: &Tally) -> Result<(), TestCaseError> {
    tally.add();
    let lines = text.lines().count();
    let result = bounded("Procfile", move || {
        Procfile::parse(&text, Path::new("Procfile")).map(|procfile| {
            let _ = procfile.release_runs_preheat();
            let _ = procfile.gated_web();
            for (_, command) in &procfile.entries {
                let _ = gated_command(command);
            }
        })
    });
    match result {
        Ok(()) => Ok(()),
        Err(ProcfileError::BadLine { line, ref text, .. }) => {
            prop_assert!((1..=lines).contains(&line), "line {line} of {lines}");
            prop_assert!(text.chars().count() <= 120);
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("not a line error: {other}"))),
    }
}

fn line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        select(
            &[
                "web", "release", "worker", "", "web web", "wéb", "-", "_x", "WEB"
            ][..]
        )
        .prop_map(str::to_string),
        "[a-zA-Z0-9_ :#-]{0,12}",
    ];
    let command = prop_oneof![
        select(
            &[
                "preheat release",
                "preheat gate -- gunicorn app:app",
                "exec /app/bin/preheat gate --x -- bundle exec puma",
                "preheat gate --",
                "preheat gate -- ",
                "preheat gateway -- x",
                "./bin/x && /layers/p/bin/preheat release",
                "preheat",
                "exec ",
                "",
                " -- ",
                "/preheat gate\t-- x",
            ][..]
        )
        .prop_map(str::to_string),
        any::<String>(),
    ];
    let separator = select(&[":", ": ", " : ", "::", "", "=", ":\t"][..]);
    prop_oneof![
        6 => (name, separator, command).prop_map(|(n, s, c)| format!("{n}{s}{c}")),
        1 => select(&["", "   ", "# comment", "#", "\r", "\u{feff}web: x"][..]).prop_map(str::to_string),
        1 => proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
}

#[test]
fn generated_procfiles_parse_or_name_the_line() {
    let strategy = (
        proptest::collection::vec(line(), 0..12),
        select(&["\n", "\r\n", "\r"][..]),
    );
    let result = runner(5000).run(&strategy, |(lines, newline)| {
        check(lines.join(newline), &PROCFILES)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    PROCFILES.report();
    assert!(PROCFILES.get() > 0);
}

#[test]
fn one_megabyte_lines_are_cut_in_the_error() {
    let strategy = (
        select(&["web: ", "", "web ", "release: preheat gate -- ", "wéb: "][..]),
        select(&["a", " ", ":", "é", "-- ", "preheat "][..]),
    );
    let result = heavy_runner(8).run(&strategy, |(prefix, filler)| {
        check(
            format!(
                "{prefix}{}\nworker: x\n",
                filler.repeat((1 << 20) / filler.len())
            ),
            &BIG,
        )
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    BIG.report();
    assert!(BIG.get() > 0);
}
