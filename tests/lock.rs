//! The migration lock end to end: `preheat release` runs against a real
//! `PostgreSQL` server (`scripts/test` starts a throwaway one).

#![allow(unused_crate_dependencies)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Run, app, eventually, marker, pg_url, preheat, processes_with, psql};

fn spawn_release(dir: &Path, url: &str, app_name: &str) -> Child {
    preheat()
        .arg("release")
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("HEROKU_APP_NAME", app_name)
        .env_remove("HEROKU_APP_ID")
        .env_remove("PREHEAT_SKIP")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn preheat release")
}

fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

#[test]
fn two_concurrent_releases_never_interleave_their_migrations() {
    let Some(url) = pg_url() else { return };
    let table = unique("marks");
    psql(
        &url,
        &format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id serial, run text, mark text)"
        ),
    );
    let step = format!(
        "psql -X -q \"$DATABASE_URL\" -c \"INSERT INTO {table} (run, mark) VALUES ('$RUN', 'start')\" && sleep 1 && psql -X -q \"$DATABASE_URL\" -c \"INSERT INTO {table} (run, mark) VALUES ('$RUN', 'end')\""
    );
    let toml = format!(
        "[release]\nlock = \"postgres\"\n\n[[migrate]]\nname = \"schema\"\nrun = '''{step}'''\n"
    );
    let apps: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|_| app(&[("preheat.toml", &toml)]))
        .collect();
    let app_name = unique("concurrent");
    let children: Vec<Child> = apps
        .iter()
        .zip(["a", "b", "c"])
        .map(|(dir, run)| {
            let mut command = preheat();
            command
                .arg("release")
                .current_dir(dir.path())
                .env("DATABASE_URL", &url)
                .env("HEROKU_APP_NAME", &app_name)
                .env("RUN", run)
                .env_remove("HEROKU_APP_ID")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command.spawn().expect("spawn")
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().expect("wait")))
        .collect();
    for run in &runs {
        assert_eq!(run.code, Some(0), "{}", run.all());
    }
    let rows = psql(
        &url,
        &format!("SELECT run || ':' || mark FROM {table} ORDER BY id"),
    );
    let marks: Vec<&str> = rows.lines().collect();
    assert_eq!(marks.len(), 6, "{rows}");
    for pair in marks.chunks(2) {
        let (first_run, first_mark) = pair[0].split_once(':').expect("mark");
        let (second_run, second_mark) = pair[1].split_once(':').expect("mark");
        assert_eq!(
            (first_mark, second_mark),
            ("start", "end"),
            "interleaved: {rows}"
        );
        assert_eq!(first_run, second_run, "interleaved: {rows}");
    }
    // At least one release had to wait, and said for whom.
    assert!(
        runs.iter()
            .any(|r| r.all().contains("waiting for migration lock held by pid")),
        "{}",
        runs.iter().map(Run::all).collect::<String>()
    );
    psql(&url, &format!("DROP TABLE {table}"));
}

#[test]
fn a_lock_timeout_fails_the_release_and_names_the_holder() {
    let Some(url) = pg_url() else { return };
    let mark = marker("lock-holder");
    let app_name = unique("timeout");
    let holder_app = app(&[(
        "preheat.toml",
        &format!(
            "[[migrate]]\nlock = \"postgres\"\nrun = \"touch ready; exec -a {mark} sleep 600\"\n"
        ),
    )]);
    let waiter_app = app(&[(
        "preheat.toml",
        "[[migrate]]\nname = \"schema\"\nlock = \"postgres\"\nlock_timeout = \"2s\"\nrun = \"touch ran\"\n",
    )]);
    let holder = spawn_release(holder_app.path(), &url, &app_name);
    assert!(eventually(Duration::from_secs(15), || holder_app
        .path()
        .join("ready")
        .exists()));
    let started = Instant::now();
    let waiter = Run::from(
        spawn_release(waiter_app.path(), &url, &app_name)
            .wait_with_output()
            .expect("wait"),
    );
    let out = waiter.all();
    assert_eq!(waiter.code, Some(1), "{out}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        !waiter_app.path().join("ran").exists(),
        "the step must not run without the lock"
    );
    assert!(
        out.contains("Gave up waiting for the migration lock"),
        "{out}"
    );
    assert!(out.contains("held by pid"), "{out}");
    assert!(out.contains("The migration schema failed"), "{out}");

    Command::new("kill")
        .args(["-TERM", &holder.id().to_string()])
        .status()
        .expect("kill");
    let holder = Run::from(holder.wait_with_output().expect("wait"));
    assert_eq!(holder.code, Some(143), "{}", holder.all());
    assert!(processes_with(&mark).is_empty());
}

#[test]
fn a_killed_holder_releases_the_lock() {
    let Some(url) = pg_url() else { return };
    let mark = marker("killed-holder");
    let app_name = unique("killed");
    let holder_app = app(&[(
        "preheat.toml",
        &format!(
            "[[migrate]]\nlock = \"postgres\"\nrun = \"touch ready; exec -a {mark} sleep 600\"\n"
        ),
    )]);
    let next_app = app(&[(
        "preheat.toml",
        "[[migrate]]\nlock = \"postgres\"\nlock_timeout = \"30s\"\nrun = \"touch ran\"\n",
    )]);
    let mut holder = spawn_release(holder_app.path(), &url, &app_name);
    assert!(eventually(Duration::from_secs(15), || holder_app
        .path()
        .join("ready")
        .exists()));
    // SIGKILL: preheat cannot clean up; the kernel closes its connection.
    holder.kill().expect("SIGKILL");
    let _ = holder.wait();
    // Its step's process group survives a SIGKILL of preheat; stop it for the test.
    for pid in processes_with(&mark) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let started = Instant::now();
    let next = Run::from(
        spawn_release(next_app.path(), &url, &app_name)
            .wait_with_output()
            .expect("wait"),
    );
    assert_eq!(next.code, Some(0), "{}", next.all());
    assert!(next_app.path().join("ran").exists());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_bad_database_url_fails_clearly_without_the_password() {
    let app = app(&[(
        "preheat.toml",
        "[[migrate]]\nname = \"schema\"\nlock = \"postgres\"\nrun = \"touch ran\"\n",
    )]);
    for url in [
        "postgres://app:pw-Secret-4711@127.0.0.1:1/db?sslmode=disable",
        "postgres://app:pw-Secret-4711@[not a host/db",
    ] {
        let started = Instant::now();
        let run = Run::from(
            preheat()
                .arg("release")
                .current_dir(app.path())
                .env("DATABASE_URL", url)
                .output()
                .expect("run"),
        );
        let out = run.all();
        assert_eq!(run.code, Some(1), "{out}");
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(!out.contains("pw-Secret-4711"), "password leaked: {out}");
        assert!(out.contains("migration lock"), "{out}");
        assert!(!app.path().join("ran").exists());
    }
}

#[test]
fn a_missing_database_url_names_it() {
    let app = app(&[(
        "preheat.toml",
        "[[migrate]]\nlock = \"postgres\"\nrun = \"true\"\n",
    )]);
    let run = Run::from(
        preheat()
            .arg("release")
            .current_dir(app.path())
            .env_remove("DATABASE_URL")
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.all().contains("`DATABASE_URL` is not set"),
        "{}",
        run.all()
    );
}
