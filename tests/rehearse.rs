//! `preheat rehearse` end to end: the example app, a failing release, crashes,
//! a dyno that never binds, and Ctrl-C; nothing may be left running.

#![allow(unused_crate_dependencies)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Run, app, eventually, example_copy, preheat, processes_with};

fn rehearse(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = preheat();
    command
        .arg("rehearse")
        .arg(dir)
        .args(args)
        .env_remove("PREHEAT_SKIP");
    for (k, v) in env {
        command.env(k, v);
    }
    Run::from(command.output().expect("run preheat rehearse"))
}

/// "web.1: first user waits 5.4ms warm vs 805ms cold (148x faster)" → (warm, cold) in ms.
fn comparison(out: &str, dyno: &str) -> (f64, f64) {
    let prefix = format!("{dyno}: first user waits ");
    let line = out
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("no comparison for {dyno}: {out}"));
    let parse = |text: &str| -> f64 {
        let text = text.trim();
        if let Some(ms) = text.strip_suffix("ms") {
            ms.parse().expect("ms")
        } else if let Some(s) = text.strip_suffix('s') {
            s.parse::<f64>().expect("s") * 1000.0
        } else {
            panic!("unexpected duration {text}")
        }
    };
    let (warm, rest) = line.split_once(" warm vs ").expect("warm vs");
    let (cold, _) = rest.split_once(" cold").expect("cold");
    (parse(warm), parse(cold))
}

#[test]
fn rehearses_the_example_and_warm_first_requests_beat_cold_ones() {
    let (dir, web) = example_copy();
    let web_path = web.display().to_string();
    let run = rehearse(
        dir.path(),
        &["--dynos", "2", "--compare"],
        &[("PREHEAT_EXAMPLE_BIN", &web_path), ("COLD_MS", "600")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    // The release really ran, with its real output.
    assert!(dir.path().join("db/schema.txt").is_file());
    assert!(out.contains("migrating to version 2"), "{out}");
    assert!(out.contains("Release phase passed"), "{out}");
    // The dynos' output is prefixed, and each warmed itself.
    assert!(out.contains("web.1 | listening on port"), "{out}");
    assert!(out.contains("web.2 | preheat: web.2 warm in"), "{out}");
    // The report lists every dyno, warm and cold.
    assert!(out.contains("- Rehearsal report"), "{out}");
    for dyno in ["web.1", "web.2"] {
        assert_eq!(
            out.matches(&format!("  - {dyno} ")).count(),
            2,
            "{dyno} in both tables: {out}"
        );
        let (warm, cold) = comparison(&out, dyno);
        assert!(
            warm < cold,
            "{dyno}: warm {warm}ms should beat cold {cold}ms"
        );
        assert!(
            cold >= 500.0,
            "{dyno}: the cold first request pays the cold start: {cold}ms"
        );
    }
    assert!(processes_with(&web_path).is_empty(), "dynos left running");
}

#[test]
fn a_failing_release_stops_the_rehearsal_before_any_dyno_boots() {
    let app = app(&[
        (
            "Procfile",
            "web: exec sleep 600\nrelease: preheat release\n",
        ),
        (
            "preheat.toml",
            "[[migrate]]\nname = \"schema\"\nrun = \"echo no database >&2; exit 4\"\n",
        ),
    ]);
    let run = rehearse(app.path(), &[], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("The migration schema failed: exited with status 4"),
        "{out}"
    );
    assert!(
        out.contains("Release phase failed: `preheat release` exited with status 1"),
        "{out}"
    );
    assert!(out.contains("this release would be aborted"), "{out}");
    assert!(!out.contains("Booting"), "{out}");
}

#[test]
fn a_crashing_dyno_fails_the_rehearsal() {
    let app = app(&[(
        "Procfile",
        "web: echo cannot connect to redis >&2; exit 3\n",
    )]);
    let run = rehearse(app.path(), &["--dynos", "1"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("web.1 | cannot connect to redis"), "{out}");
    assert!(
        out.contains("web.1 crashed: its web process exited with status 3"),
        "{out}"
    );
}

#[test]
fn a_dyno_that_never_binds_fails_and_is_stopped() {
    let mark = support::marker("never-binds");
    let app = app(&[("Procfile", &format!("web: exec -a {mark} sleep 600\n"))]);
    let started = Instant::now();
    let run = rehearse(app.path(), &["--dynos", "2", "--boot-timeout", "1s"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        out.contains("never bound its port: nothing listened on PORT="),
        "{out}"
    );
    assert!(
        processes_with(&mark).is_empty(),
        "left running: {:?}",
        processes_with(&mark)
    );
}

#[test]
fn dotenv_is_loaded_like_heroku_local() {
    let (dir, web) = example_copy();
    std::fs::write(
        dir.path().join(".env"),
        "GREETING=hello-from-dotenv\nCOLD_MS=100\n",
    )
    .expect(".env");
    std::fs::write(
        dir.path().join("Procfile"),
        "web: echo \"greeting=$GREETING\"; exec bin/web\nrelease: preheat release\n",
    )
    .expect("Procfile");
    let web_path = web.display().to_string();
    let run = rehearse(
        dir.path(),
        &["--dynos", "1"],
        &[("PREHEAT_EXAMPLE_BIN", &web_path)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("Loaded 2 variable(s) from .env"), "{out}");
    assert!(out.contains("web.1 | greeting=hello-from-dotenv"), "{out}");
}

#[test]
fn ctrl_c_stops_everything() {
    let (dir, web) = example_copy();
    let web_path = web.display().to_string();
    // The dynos take a long time to boot, so the interrupt lands mid-rehearsal.
    let child = preheat()
        .arg("rehearse")
        .arg(dir.path())
        .env("PREHEAT_EXAMPLE_BIN", &web_path)
        .env("BOOT_MS", "30000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(
        eventually(Duration::from_secs(20), || processes_with(&web_path).len()
            >= 2),
        "dynos never started"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let run = Run::from(child.wait_with_output().expect("wait"));
    let out = run.all();
    assert_eq!(run.code, Some(130), "{out}");
    assert!(out.contains("Rehearsal stopped by SIGINT"), "{out}");
    assert!(
        processes_with(&web_path).is_empty(),
        "left running: {:?}",
        processes_with(&web_path)
    );
    // The warmers are gone too.
    assert!(
        processes_with(&format!("warm\0--boot\0--dir\0{}", dir.path().display())).is_empty(),
        "warmers left running"
    );
}
