//! Generated `project.toml` files (heroku/release-phase's tables): mutations
//! of a valid file, hostile values in every key it reads, and random TOML.
//! Each parses or fails with a located error, within a time bound.

use super::fuzz_tests::{hostile_value, quoted, random_tree, run_all};
use super::project_toml::{parse, show_argv};
use super::{Action, ConfigError};
use crate::fuzz::{Tally, bounded, runner};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use std::path::Path;

static MUTATED: Tally = Tally::new("project.toml, mutated valid files");
static SLOTS: Tally = Tally::new("project.toml, hostile values in every key");
static RANDOM: Tally = Tally::new("project.toml, random TOML trees");

const VALID: &str = r#"[_]
schema-version = "0.2"
id = "com.example.app"

[io.buildpacks]
builder = "heroku/builder:24"

[[com.heroku.phase.release]]
command = "bash"
args = ["-c", "rake db:migrate"]
source = "My App"

[[com.heroku.phase.release]]
command = "bin/prime"

[com.heroku.phase.release-build]
command = "npm"
args = ["run", "build"]
"#;

fn check(text: String, tally: &Tally) -> Result<(), TestCaseError> {
    tally.add();
    let lines = text.split('\n').count();
    let result = bounded("project.toml", move || {
        parse(&text, Path::new("project.toml")).map(|phase| {
            for step in phase.iter().flat_map(|p| &p.steps) {
                if let Action::Exec(argv) = &step.action {
                    let _ = show_argv(argv);
                }
            }
            let _ = phase
                .as_ref()
                .map(super::project_toml::ReleasePhase::release_build_warning);
        })
    });
    match result {
        Ok(()) => Ok(()),
        Err(ref error @ ConfigError::Invalid { line, column, .. }) => {
            prop_assert!((1..=lines).contains(&line), "line {line} of {lines}");
            prop_assert!(column >= 1);
            let shown = error.to_string();
            prop_assert!(
                shown.starts_with(&format!("project.toml:{line}:{column}: ")),
                "{shown}"
            );
            prop_assert!(shown.len() < 4096, "{} bytes of error", shown.len());
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("not located: {other}"))),
    }
}

#[test]
fn mutated_project_toml_parses_or_fails_located() {
    let edit = prop_oneof![
        (any::<Index>(), 1usize..24).prop_map(|(at, n)| (at, n, String::new())),
        (any::<Index>(), hostile_value()).prop_map(|(at, v)| (at, 0, v)),
        (
            any::<Index>(),
            select(&["[", "]]", "=", "\n", "\"", "{", ".", "-", "${"][..])
        )
            .prop_map(|(at, s)| (at, 0, s.to_string())),
    ];
    let strategy = proptest::collection::vec(edit, 1..5);
    run_all(runner(3000), strategy, |edits| {
        let mut chars: Vec<char> = VALID.chars().collect();
        for (at, delete, insert) in &edits {
            let start = at.index(chars.len() + 1);
            let end = (start + delete).min(chars.len());
            chars.splice(start..end, insert.chars());
        }
        check(chars.into_iter().collect(), &MUTATED)
    });
    MUTATED.report();
    assert!(MUTATED.get() > 0);
}

const SLOT_FILES: &[&str] = &[
    "[[com.heroku.phase.release]]\ncommand = @@\n",
    "[[com.heroku.phase.release]]\ncommand = \"x\"\nargs = @@\n",
    "[[com.heroku.phase.release]]\ncommand = \"x\"\nargs = [@@]\n",
    "[[com.heroku.phase.release]]\ncommand = \"x\"\nsource = @@\n",
    "[[com.heroku.phase.release]]\ncommand = \"x\"\n@@ = 1\n",
    "[com.heroku.phase.release-build]\ncommand = @@\n",
    "[com.heroku.phase.release-build]\ncommand = \"x\"\nargs = @@\n",
    "[com.heroku.phase]\nrelease = @@\n",
    "[com.heroku]\nphase = @@\n",
    "[com]\nheroku = @@\n",
    "com = @@\n",
    "[com.heroku.phase]\n@@ = 1\n",
    "[_]\nschema-version = @@\n",
];

#[test]
fn hostile_values_in_project_toml_parse_or_fail_located() {
    let strategy = (select(SLOT_FILES), hostile_value(), any::<String>());
    run_all(runner(3000), strategy, |(file, value, key)| {
        let value = if file.contains("@@ =") {
            quoted(&key)
        } else {
            value
        };
        check(file.replace("@@", &value), &SLOTS)
    });
    SLOTS.report();
    assert!(SLOTS.get() > 0);
}

#[test]
fn random_trees_under_com_heroku_phase_parse_or_fail_located() {
    let strategy = (
        random_tree(),
        select(
            &[
                "",
                "com",
                "com.heroku",
                "com.heroku.phase",
                "com.heroku.phase.release",
            ][..],
        ),
    );
    run_all(runner(2000), strategy, |(tree, under)| {
        let mut value = tree;
        for key in under.split('.').filter(|k| !k.is_empty()).rev() {
            let mut table = toml::Table::new();
            table.insert(key.to_string(), value);
            value = toml::Value::Table(table);
        }
        let toml::Value::Table(table) = value else {
            return Ok(());
        };
        match toml::to_string(&table) {
            Ok(text) => check(text, &RANDOM),
            Err(_) => Ok(()),
        }
    });
    RANDOM.report();
    assert!(RANDOM.get() > 0);
}
