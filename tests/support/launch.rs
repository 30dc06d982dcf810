//! The CNB launcher, mimicked: an app built by the real buildpack, its exec.d
//! program run the way the launcher runs it, and the boot warmer's log.

use super::{Buildpack, app, eventually};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An app built by the buildpack, so the exec.d program is the installed one.
pub(crate) struct Built {
    pub(crate) app: tempfile::TempDir,
    pub(crate) layers: tempfile::TempDir,
    _bp: Buildpack,
}

impl Built {
    pub(crate) fn new(preheat_toml: &str) -> Self {
        let bp = Buildpack::assemble();
        let app = app(&[
            ("preheat.toml", preheat_toml),
            ("Procfile", "web: x\nrelease: preheat release\n"),
        ]);
        let layers = tempfile::tempdir().expect("tempdir");
        let run = bp.build(app.path(), layers.path());
        assert_eq!(run.code, Some(0), "{}", run.all());
        Self {
            app,
            layers,
            _bp: bp,
        }
    }

    pub(crate) fn exec_d(&self) -> PathBuf {
        self.layers
            .path()
            .join("preheat/exec.d/web/preheat-boot-warmup")
    }

    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.layers.path().join(format!("{name}.log"))
    }
}

pub(crate) struct Launch {
    pub(crate) toml: String,
    pub(crate) eof_after: Duration,
    pub(crate) code: Option<i32>,
}

/// Runs an exec.d program as the launcher does: cwd is the app dir,
/// `CNB_APP_DIR` is removed, fd 3 is a pipe read to EOF, stdout and stderr
/// are files (here `log`), stdin is /dev/null.
pub(crate) fn run_exec_d(
    program: &Path,
    app_dir: &Path,
    env: &[(&str, &str)],
    log: &Path,
) -> Launch {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(r#"exec "$0" 3>&1 1>>"$PREHEAT_TEST_LOG" 2>&1"#)
        .arg(program)
        .current_dir(app_dir)
        .env("PREHEAT_TEST_LOG", log)
        .env_remove("CNB_APP_DIR")
        .env_remove("PREHEAT_SKIP")
        .env_remove("HEROKU_APP_DEFAULT_DOMAIN_NAME")
        .env_remove("PORT")
        .env_remove("WEB_CONCURRENCY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn exec.d program");
    let mut toml = String::new();
    child
        .stdout
        .take()
        .expect("fd 3 pipe")
        .read_to_string(&mut toml)
        .expect("read fd 3");
    let eof_after = started.elapsed();
    let code = child.wait().expect("wait").code();
    Launch {
        toml,
        eof_after,
        code,
    }
}

pub(crate) fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

pub(crate) fn wait_for_log(log: &Path, needle: &str, limit: Duration) -> String {
    eventually(limit, || read(log).contains(needle));
    read(log)
}

/// From a verdict like `warm in 1.2s (3 rounds, converged; 36/36 ok, …)`:
/// the rounds, the ok count and the request count.
pub(crate) fn verdict_counts(out: &str) -> (usize, usize, usize) {
    let line = out
        .lines()
        .find(|l| l.contains("warm in "))
        .unwrap_or_else(|| panic!("no verdict in {out}"));
    let inside = line.split_once(" (").map_or("", |(_, rest)| rest);
    let rounds = inside
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rounds in {line}"));
    let counts = inside
        .split("; ")
        .nth(1)
        .and_then(|c| c.split(' ').next())
        .and_then(|c| c.split_once('/'))
        .and_then(|(ok, all)| Some((ok.parse().ok()?, all.parse().ok()?)))
        .unwrap_or_else(|| panic!("no counts in {line}"));
    (rounds, counts.0, counts.1)
}

/// Converged, everything ok: `paths` paths, 4 at once (no `WEB_CONCURRENCY`).
pub(crate) fn assert_converged(out: &str, paths: usize) -> usize {
    assert!(out.contains("rounds, converged; "), "{out}");
    let (rounds, ok, all) = verdict_counts(out);
    assert!((2..=5).contains(&rounds), "{out}");
    assert_eq!((ok, all), (paths * 4 * rounds, paths * 4 * rounds), "{out}");
    rounds
}
