//! Apps that come from heroku/release-phase: `[[com.heroku.phase.release]]`
//! in project.toml, through the real `bin/detect` and `bin/build` (run as the
//! lifecycle runs them), `preheat check`, and `preheat release` running each
//! command's argv without a shell.

#![allow(unused_crate_dependencies)]

mod support;

use std::path::Path;
use support::{Buildpack, Run, app, preheat};

/// heroku/release-phase's own shape: `command` is the program, `args` the rest.
const PROJECT: &str = r#"[_]
schema-version = "0.2"

[[io.buildpacks.group]]
uri = "heroku/release-phase"

[[com.heroku.phase.release]]
command = "bash"
args = ["-c", "echo one >> order.txt"]

[[com.heroku.phase.release]]
command = "printf"
args = ["[%s]\n", "$HOME; echo injected > injected.txt", "it's"]
source = "My App"
"#;

const PROCFILE: &str = "web: bin/web\nrelease: preheat release\n";

fn preheat_in(dir: &Path, args: &[&str]) -> Run {
    let mut command = preheat();
    command.args(args).current_dir(dir);
    for name in [
        "PREHEAT_SKIP",
        "PREHEAT_API_TOKEN",
        "HEROKU_API_KEY",
        "CNB_APP_DIR",
    ] {
        command.env_remove(name);
    }
    Run::from(command.output().expect("run preheat"))
}

#[test]
fn detect_passes_with_release_phase_tables_in_project_toml() {
    let bp = Buildpack::assemble();
    let with = app(&[("project.toml", PROJECT)]);
    let run = bp.detect(with.path());
    assert_eq!(run.code, Some(0), "{}", run.all());
    // A broken table still passes, so the build can say where it is broken.
    let broken = app(&[("project.toml", "[[com.heroku.phase.release]\ncommand = 1\n")]);
    assert_eq!(bp.detect(broken.path()).code, Some(0));
    // A project.toml for other buildpacks only is not a reason to run.
    let other = app(&[(
        "project.toml",
        "[_]\nschema-version = \"0.2\"\n\n[[io.buildpacks.group]]\nuri = \"heroku/nodejs\"\n",
    )]);
    let run = bp.detect(other.path());
    assert_eq!(run.code, Some(100), "{}", run.all());
    assert!(run.all().contains("no [[com.heroku.phase.release]]"));
}

#[test]
fn build_runs_project_toml_commands_as_migrations_and_reports_release_build() {
    let bp = Buildpack::assemble();
    let text = format!(
        "{PROJECT}\n[com.heroku.phase.release-build]\ncommand = \"bash\"\nargs = [\"-c\", \"npm run build\"]\n"
    );
    let app = app(&[("project.toml", &text), ("Procfile", PROCFILE)]);
    let layers = tempfile::tempdir().expect("tempdir");
    let run = bp.build(app.path(), layers.path());
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("- No preheat.toml: validated project.toml; its 2 [[com.heroku.phase.release]] commands run as migrations, in order, without a shell"),
        "{out}"
    );
    assert!(
        out.contains("Migrations 1/2: release #1: `bash -c 'echo one >> order.txt'` (no shell)"),
        "{out}"
    );
    assert!(
        out.contains("Migrations 2/2: release #2: `printf "),
        "{out}"
    );
    assert!(
        out.contains("project.toml:16: preheat does not run [com.heroku.phase.release-build] (`bash -c 'npm run build'`)"),
        "{out}"
    );
    assert!(out.contains("Procfile runs `preheat release`"), "{out}");
    assert!(layers.path().join("preheat/bin/preheat").is_file());
}

#[test]
fn preheat_toml_wins_over_project_toml_and_the_build_says_so() {
    let bp = Buildpack::assemble();
    let app = app(&[
        ("project.toml", PROJECT),
        (
            "preheat.toml",
            "[[migrate]]\nname = \"schema\"\nrun = \"rake db:migrate\"\n",
        ),
        ("Procfile", PROCFILE),
    ]);
    let layers = tempfile::tempdir().expect("tempdir");
    let run = bp.build(app.path(), layers.path());
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("Validated preheat.toml (it wins over project.toml's release-phase tables)"),
        "{out}"
    );
    assert!(
        out.contains(
            "has 2 [[com.heroku.phase.release]] commands, but preheat.toml wins: they do not run."
        ),
        "{out}"
    );
    assert!(
        out.contains("Migrations 1/1: schema: `rake db:migrate`"),
        "{out}"
    );
    assert!(!out.contains("release #1"), "{out}");
}

#[test]
fn a_malformed_project_toml_table_fails_the_build_with_its_place() {
    let bp = Buildpack::assemble();
    let app = app(&[(
        "project.toml",
        "[_]\nschema-version = \"0.2\"\n\n[[com.heroku.phase.release]]\ncommand = [\"bash\", \"-c\", \"rake db:migrate\"]\n",
    )]);
    let layers = tempfile::tempdir().expect("tempdir");
    let run = bp.build(app.path(), layers.path());
    let out = run.all();
    assert_ne!(run.code, Some(0), "{out}");
    assert!(out.contains("Invalid project.toml"), "{out}");
    assert!(
        out.contains("project.toml:5:11: `command` is a list; heroku/release-phase takes the program alone in `command`"),
        "{out}"
    );
    assert!(out.contains("5 | command = [\"bash\""), "{out}");
    assert!(
        !layers.path().join("preheat/bin/preheat").exists(),
        "nothing installed"
    );
    // `preheat check` and `preheat release` say the same.
    let check = preheat_in(app.path(), &["check"]);
    assert_eq!(check.code, Some(2), "{}", check.all());
    assert!(
        check.all().contains("project.toml:5:11:"),
        "{}",
        check.all()
    );
    let release = preheat_in(app.path(), &["release"]);
    assert_eq!(release.code, Some(2), "{}", release.all());
    assert!(
        release
            .all()
            .contains("The release is aborted before any step ran"),
        "{}",
        release.all()
    );
}

#[test]
fn check_shows_the_commands_as_migrations_from_project_toml() {
    let app = app(&[("project.toml", PROJECT), ("Procfile", PROCFILE)]);
    let run = preheat_in(app.path(), &["check"]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("Release plan (no preheat.toml: project.toml's [[com.heroku.phase.release]] commands are the migrations)"),
        "{out}"
    );
    assert!(
        out.contains("Migrations 1/2: release #1: `bash -c 'echo one >> order.txt'` (no shell)"),
        "{out}"
    );
    assert!(
        out.contains("project.toml is valid (no preheat.toml)"),
        "{out}"
    );
}

#[test]
fn release_runs_each_argv_in_order_without_a_shell() {
    let app = app(&[("project.toml", PROJECT), ("Procfile", PROCFILE)]);
    let run = preheat_in(app.path(), &["release"]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("No preheat.toml: running project.toml's [[com.heroku.phase.release]] commands as migrations"),
        "{out}"
    );
    let order = std::fs::read_to_string(app.path().join("order.txt")).expect("step 1 ran");
    assert_eq!(order, "one\n");
    // printf got its arguments as written: no `$HOME` expansion, no `;`.
    assert!(
        out.contains("[$HOME; echo injected > injected.txt]"),
        "{out}"
    );
    assert!(out.contains("[it's]"), "{out}");
    assert!(!app.path().join("injected.txt").exists(), "a shell ran it");
    assert!(out.contains("release #2: done"), "{out}");
}

#[test]
fn a_failing_release_command_aborts_the_release_and_the_rest_never_runs() {
    let app = app(&[(
        "project.toml",
        "[[com.heroku.phase.release]]\ncommand = \"bash\"\nargs = [\"-c\", \"echo migrating; exit 3\"]\n\n[[com.heroku.phase.release]]\ncommand = \"touch\"\nargs = [\"after.txt\"]\n\n[[com.heroku.phase.release]]\ncommand = \"no-such-program-preheat\"\n",
    )]);
    let run = preheat_in(app.path(), &["release"]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("migrating"), "{out}");
    assert!(out.contains("The migration release #1 failed"), "{out}");
    assert!(!app.path().join("after.txt").exists(), "{out}");

    // A program that does not exist fails the release with its name.
    let missing = support::app(&[(
        "project.toml",
        "[[com.heroku.phase.release]]\ncommand = \"no-such-program-preheat\"\n",
    )]);
    let run = preheat_in(missing.path(), &["release"]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("could not start no-such-program-preheat"),
        "{out}"
    );
}
