//! `examples/django` rehearsed end to end: real gunicorn workers from the test
//! venv, a real `PostgreSQL` database (fresh per run), the migration under the
//! `PostgreSQL` lock, priming, and the first users as the router sends them.

#![allow(unused_crate_dependencies)]

mod support;

use std::path::Path;
use support::{Database, Run, pg_url, preheat, psql, venv_bin};

/// A copy of examples/django, without Python's caches.
fn django_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir").flatten() {
            let name = entry.file_name();
            if name == "__pycache__" {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                copy(&path, &to.join(&name));
            } else {
                std::fs::copy(&path, to.join(&name)).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/django"),
        dir.path(),
    );
    dir
}

fn num(value: &serde_json::Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

#[test]
fn rehearses_the_django_example_on_gunicorn_and_postgres() {
    let _one_at_a_time = support::one_at_a_time();
    let (Some(server), Some(bin)) = (pg_url(), venv_bin()) else {
        return;
    };
    let db = Database::create(&server, &format!("preheat_django_{}", std::process::id()));
    let app = django_copy();
    let json = app.path().join("figures.json");
    // The Procfile's commands find Python and gunicorn from the venv, as on a
    // dyno where the Python buildpack put them on PATH.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = preheat()
        .arg("rehearse")
        .arg(app.path())
        .args(["--dynos", "1", "--compare", "--json"])
        .arg(&json)
        .env("PATH", path)
        .env("DATABASE_URL", &db.url)
        .env_remove("PREHEAT_SKIP")
        .output()
        .expect("run preheat rehearse");
    let run = Run::from(output);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");

    // Release phase: the migration under the lock, then priming, for real.
    assert!(out.contains("schema: took the migration lock"), "{out}");
    assert!(out.contains("Applying catalog.0001_initial... OK"), "{out}");
    assert!(out.contains("catalogue primed: 8 new, 8 in all"), "{out}");
    assert_eq!(
        psql(&db.url, "SELECT count(*) FROM catalog_product").trim(),
        "8"
    );
    // gunicorn ran three workers, and the first users came with the app's domain.
    assert!(
        out.contains("web.1 | ") && out.contains("Using worker: sync"),
        "{out}"
    );
    assert!(
        out.contains(
            "First users send Host: preheat-django-example.herokuapp.com (from .env HEROKU_APP_DEFAULT_DOMAIN_NAME)"
        ),
        "{out}"
    );

    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("--json file")).expect("JSON");
    assert_eq!(figures["ok"], true);
    assert_eq!(figures["burst"], 6, "2 x WEB_CONCURRENCY=3");
    let warm = &figures["warm"][0];
    let cold = &figures["cold"][0];
    for dyno in [warm, cold] {
        let users = dyno["first_users"].as_array().expect("first_users");
        assert_eq!(users.len(), 6, "{dyno}");
        for user in users {
            assert_eq!(
                user["status"], 200,
                "every first user gets the page: {dyno}"
            );
        }
    }
    assert_eq!(warm["warm_up"], "done", "{warm}");

    // Warm: no first user waits much longer than a steady-state request. The
    // burst is two users per worker, so half of them queue behind another
    // request (up to 2x steady by design), and a loaded 2-core CI box adds
    // scheduling delay of its own; hence 1.5x steady plus a 300 ms floor. That
    // floor is still well below this app's cold start (each worker builds a
    // 60,000-entry index, ~0.45 s of CPU, plus Django's lazy first-request
    // setup), which the cold run below must show.
    let steady = num(warm, "steady_median_ms");
    let limit = 1.5 * steady + 300.0;
    let warm_worst = num(warm, "first_worst_ms");
    assert!(
        warm_worst <= limit,
        "a warm first user waited {warm_worst}ms, over {limit}ms (steady {steady}ms):\n{out}"
    );
    // Cold (--compare): the same first users pay the workers' cold start.
    let cold_worst = num(cold, "first_worst_ms");
    assert!(
        cold_worst > limit && cold_worst >= 3.0 * warm_worst,
        "the cold run should show the cold start: cold {cold_worst}ms, warm {warm_worst}ms, limit {limit}ms:\n{out}"
    );
    assert!(
        out.contains("web.1: the slowest first user waits "),
        "{out}"
    );
    assert!(
        running_in(app.path()).is_empty(),
        "left running: {:?}",
        running_in(app.path())
    );
}

/// `preheat rehearse --require-warm` in `app`, with the venv on PATH.
fn rehearse_require_warm(app: &Path, bin: &Path, db: &Database, paths: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = preheat();
    command
        .arg("rehearse")
        .arg(app)
        .args(["--dynos", "1", "--require-warm"]);
    for p in paths {
        command.args(["--path", p]);
    }
    let output = command
        .env("PATH", path)
        .env("DATABASE_URL", &db.url)
        .env_remove("PREHEAT_SKIP")
        .output()
        .expect("run preheat rehearse");
    Run::from(output)
}

#[test]
fn require_warm_fails_on_a_page_the_warm_up_skips() {
    let _one_at_a_time = support::one_at_a_time();
    let (Some(server), Some(bin)) = (pg_url(), venv_bin()) else {
        return;
    };
    let db = Database::create(
        &server,
        &format!("preheat_django_warm_{}", std::process::id()),
    );
    let app = django_copy();
    let toml = app.path().join("preheat.toml");
    let full = std::fs::read_to_string(&toml).expect("preheat.toml");
    assert!(full.contains(r#"paths = ["/", "/products/", "/reports/"]"#));

    // /reports/ left out of [warmup], and real users hit it: its first users
    // pay each worker's lazy report build, and the rehearsal fails.
    std::fs::write(
        &toml,
        full.replace(
            r#"paths = ["/", "/products/", "/reports/"]"#,
            r#"paths = ["/", "/products/"]"#,
        ),
    )
    .expect("write preheat.toml");
    let run = rehearse_require_warm(app.path(), &bin, &db, &["/", "/products/", "/reports/"]);
    let out = run.all();
    // Shown with --nocapture; docs/rehearse.md quotes it.
    println!("{out}");
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("First users judged by the cold rule (--require-warm)"),
        "{out}"
    );
    let reports = out
        .lines()
        .find(|l| l.contains("web.1 /reports/: "))
        .unwrap_or_else(|| panic!("no /reports/ line:\n{out}"));
    assert!(!reports.contains(": 0 of "), "{reports}");
    assert!(
        out.contains("--require-warm: first users met ")
            && out.contains("the first request to ")
            && out.contains("/reports/. Add"),
        "{out}"
    );

    assert!(
        running_in(app.path()).is_empty(),
        "left running: {:?}",
        running_in(app.path())
    );
}

#[test]
fn require_warm_passes_once_the_page_is_in_warmup() {
    let _one_at_a_time = support::one_at_a_time();
    let (Some(server), Some(bin)) = (pg_url(), venv_bin()) else {
        return;
    };
    let db = Database::create(
        &server,
        &format!("preheat_django_warm2_{}", std::process::id()),
    );
    let app = django_copy();
    // /reports/ is in [warmup] (the example as committed): every first user is warm.
    let run = rehearse_require_warm(app.path(), &bin, &db, &[]);
    let out = run.all();
    println!("{out}");
    assert_eq!(run.code, Some(0), "{out}");
    for path in ["/", "/products/", "/reports/"] {
        assert!(
            out.contains(&format!("web.1 {path}: 0 of 6 first users cold")),
            "{path}:\n{out}"
        );
    }
    assert!(
        running_in(app.path()).is_empty(),
        "left running: {:?}",
        running_in(app.path())
    );
}

/// Processes whose working directory is `dir`: the dynos and their workers.
fn running_in(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().expect("app dir");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir)
                && std::fs::read_to_string(entry.path().join("stat"))
                    .is_ok_and(|stat| !stat.contains(") Z "))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}
