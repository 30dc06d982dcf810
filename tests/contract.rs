//! CNB contract tests: `bin/detect` and `bin/build` run exactly as the lifecycle runs them.

// Test crates see every dependency of the package.
#![allow(unused_crate_dependencies)]

mod support;

use std::process::Command;
use support::{Buildpack, app};

#[test]
fn detect_passes_with_preheat_toml() {
    let bp = Buildpack::assemble();
    let app = app(&[("preheat.toml", "")]);
    let run = bp.detect(app.path());
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn detect_passes_with_a_release_entry_that_runs_preheat() {
    let bp = Buildpack::assemble();
    let app = app(&[("Procfile", "web: bin/web\nrelease: preheat release\n")]);
    let run = bp.detect(app.path());
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn detect_fails_without_either() {
    let bp = Buildpack::assemble();
    let app = app(&[("Procfile", "web: bin/web\nrelease: rake db:migrate\n")]);
    let run = bp.detect(app.path());
    assert_eq!(run.code, Some(100), "{}", run.all());
    let empty = support::app(&[]);
    assert_eq!(bp.detect(empty.path()).code, Some(100));
}

#[test]
fn detect_errors_on_an_unreadable_procfile() {
    let bp = Buildpack::assemble();
    // A directory where the Procfile should be cannot be read as a file.
    let app = app(&[("Procfile/x", "")]);
    let run = bp.detect(app.path());
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert_ne!(run.code, Some(100), "{}", run.all());
    assert!(run.all().contains("Could not read"), "{}", run.all());
}

#[test]
fn build_installs_preheat_in_a_launch_layer_and_prints_the_plan() {
    let bp = Buildpack::assemble();
    let app = app(&[
        ("Procfile", "web: bin/web\nrelease: preheat release\n"),
        (
            "preheat.toml",
            "[[migrate]]\nname = \"schema\"\nrun = \"rake db:migrate\"\n[warmup]\npaths = [\"/\", \"/dashboard\"]\n",
        ),
    ]);
    let layers = tempfile::tempdir().expect("tempdir");
    let run = bp.build(app.path(), layers.path());
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("## Preheat (release phase)"), "{out}");
    assert!(out.contains("- Validated preheat.toml"), "{out}");
    assert!(
        out.contains("- Installing preheat 0.1.0 (new layer)"),
        "{out}"
    );
    assert!(
        out.contains("Migrations 1/1: schema: `rake db:migrate`"),
        "{out}"
    );
    assert!(
        out.contains("Warm-up: /, /dashboard on every web process at boot"),
        "{out}"
    );
    assert!(out.contains("Procfile runs `preheat release`"), "{out}");
    assert!(!out.contains("no release entry"), "{out}");

    // The lifecycle puts a launch layer's bin/ on PATH; do the same and run it.
    let layer_toml =
        std::fs::read_to_string(layers.path().join("preheat.toml")).expect("layer toml");
    let parsed: toml::Table = toml::from_str(&layer_toml).expect("layer toml parses");
    assert_eq!(
        parsed["types"]["launch"].as_bool(),
        Some(true),
        "{layer_toml}"
    );
    assert_eq!(
        parsed["types"]["cache"].as_bool(),
        Some(true),
        "{layer_toml}"
    );
    let path = format!(
        "{}:{}",
        layers.path().join("preheat/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let version = Command::new("preheat")
        .arg("--version")
        .env("PATH", path)
        .output()
        .expect("preheat on PATH");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "preheat 0.1.0"
    );

    let boot = layers.path().join("preheat/exec.d/web/preheat-boot-warmup");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&boot)
            .expect("exec.d program")
            .permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "exec.d program is executable");
}

#[test]
fn build_without_preheat_toml_uses_defaults_and_warns_about_the_procfile() {
    let bp = Buildpack::assemble();
    let app = app(&[("Procfile", "web: bin/web\n")]);
    let layers = tempfile::tempdir().expect("tempdir");
    let run = bp.build(app.path(), layers.path());
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("No preheat.toml: the defaults apply"), "{out}");
    assert!(out.contains("Migrations: none"), "{out}");
    assert!(out.contains("! The Procfile has no release entry"), "{out}");
    assert!(out.contains("!     release: preheat release"), "{out}");
}

#[test]
fn bad_preheat_toml_fails_the_build_with_line_and_column() {
    let bp = Buildpack::assemble();
    let app = app(&[(
        "preheat.toml",
        "[release]\ndeadline = \"5m\"\n\n[[migrate]]\nrun = \"rake db:migrate\"\ntimout = \"5m\"\n",
    )]);
    let layers = tempfile::tempdir().expect("tempdir");
    let run = bp.build(app.path(), layers.path());
    let out = run.all();
    assert_ne!(run.code, Some(0), "{out}");
    assert!(out.contains("Invalid preheat.toml"), "{out}");
    assert!(
        out.contains("preheat.toml:6:1: unknown key `timout`"),
        "{out}"
    );
    assert!(out.contains("Did you mean `timeout`?"), "{out}");
    assert!(
        !layers.path().join("preheat/bin/preheat").exists(),
        "nothing installed"
    );
}

#[test]
fn rebuild_reuses_the_cached_layer() {
    let bp = Buildpack::assemble();
    let app = app(&[("preheat.toml", "")]);
    let layers = tempfile::tempdir().expect("tempdir");
    let first = bp.build(app.path(), layers.path());
    assert_eq!(first.code, Some(0), "{}", first.all());
    assert!(
        first.all().contains("Installing preheat"),
        "{}",
        first.all()
    );

    let second = bp.build(app.path(), layers.path());
    let out = second.all();
    assert_eq!(second.code, Some(0), "{out}");
    assert!(
        out.contains("- Reusing preheat 0.1.0 from the cached layer"),
        "{out}"
    );
    assert!(!out.contains("Installing preheat"), "{out}");
    assert!(layers.path().join("preheat/bin/preheat").is_file());
}

#[test]
fn rebuild_replaces_a_layer_from_another_version() {
    let bp = Buildpack::assemble();
    let app = app(&[("preheat.toml", "")]);
    let layers = tempfile::tempdir().expect("tempdir");
    assert_eq!(bp.build(app.path(), layers.path()).code, Some(0));
    let toml_path = layers.path().join("preheat.toml");
    let old = std::fs::read_to_string(&toml_path).expect("layer toml");
    std::fs::write(
        &toml_path,
        old.replace("version = \"0.1.0\"", "version = \"0.0.9\""),
    )
    .expect("write");
    let run = bp.build(app.path(), layers.path());
    assert!(
        run.all()
            .contains("Installing preheat 0.1.0 (cached version 0.0.9 differs)"),
        "{}",
        run.all()
    );
}

#[test]
fn build_says_when_the_web_command_runs_through_the_gate() {
    let bp = Buildpack::assemble();
    let app = app(&[(
        "Procfile",
        "web: preheat gate -- bundle exec puma -C config/puma.rb\nrelease: preheat release\n",
    )]);
    let layers = tempfile::tempdir().expect("tempdir");
    let run = bp.build(app.path(), layers.path());
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains(
            "Procfile runs `web` through `preheat gate`: $PORT opens only when the app is warm"
        ),
        "{out}"
    );
    assert!(
        out.contains("runs `bundle exec puma -C config/puma.rb` on a private port, warms / there"),
        "{out}"
    );
    assert!(
        out.contains("The boot warm-up (exec.d) stands aside for it at launch"),
        "{out}"
    );
}
