//! The Heroku classic buildpack (Cedar), packaged by `scripts/package-classic`
//! from cargo's binaries and run the way Heroku runs it: `bin/detect BUILD_DIR`,
//! `bin/compile BUILD_DIR CACHE_DIR ENV_DIR`, `bin/release BUILD_DIR`, then each
//! dyno as a `bash` that sources `$HOME/.profile.d/*.sh` and execs its command.

#![allow(unused_crate_dependencies)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::{
    Run, SlowServer, app, eventually, example_copy, free_port, processes_with, user_request,
};

/// The packaged buildpack, extracted from its `.tgz` as Heroku would; built
/// once per test run from a stripped copy of cargo's `preheat`.
fn buildpack() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("heroku-classic-test");
        let _ = std::fs::remove_dir_all(&root);
        let bin_dir = root.join("bin");
        std::fs::create_dir_all(&bin_dir).expect("bin dir");
        // Stripped, the debug binary packs in seconds rather than half a minute.
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(bin_dir.join("preheat"))
            .arg(env!("CARGO_BIN_EXE_preheat"))
            .status()
            .is_ok_and(|status| status.success());
        if !stripped {
            std::fs::copy(env!("CARGO_BIN_EXE_preheat"), bin_dir.join("preheat"))
                .expect("copy preheat");
        }
        let out = root.join("heroku-classic");
        let package =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package-classic"))
                .arg("--bin-dir")
                .arg(&bin_dir)
                .arg("--out")
                .arg(&out)
                .arg("--allow-dynamic")
                .output()
                .expect("run scripts/package-classic");
        let run = Run::from(package);
        assert_eq!(run.code, Some(0), "{}", run.all());
        assert!(run.stdout.contains("./bin/compile"), "{}", run.all());
        let extracted = root.join("extracted");
        std::fs::create_dir_all(&extracted).expect("extract dir");
        let tar = Command::new("tar")
            .arg("-xzf")
            .arg(root.join("heroku-classic.tgz"))
            .arg("-C")
            .arg(&extracted)
            .status()
            .expect("run tar");
        assert!(tar.success(), "the tarball extracts");
        extracted
    })
}

/// An app's `BUILD_DIR`, with the `CACHE_DIR` and `ENV_DIR` Heroku passes beside it.
struct Slug {
    build: tempfile::TempDir,
    cache: tempfile::TempDir,
    env: tempfile::TempDir,
}

impl Slug {
    fn new(build: tempfile::TempDir) -> Self {
        let env = tempfile::tempdir().expect("env dir");
        // Config vars arrive as files in ENV_DIR; compile needs none of them.
        std::fs::write(
            env.path().join("DATABASE_URL"),
            "postgres://u:secret@db/app",
        )
        .expect("env file");
        Self {
            build,
            cache: tempfile::tempdir().expect("cache dir"),
            env,
        }
    }

    fn dir(&self) -> &Path {
        self.build.path()
    }

    /// A buildpack script, run from a working directory that is not the app's.
    fn script(&self, name: &str, args: &[&Path]) -> Run {
        let output = Command::new(buildpack().join("bin").join(name))
            .args(args)
            .current_dir(self.cache.path())
            .stdin(Stdio::null())
            .output()
            .expect("run buildpack script");
        Run::from(output)
    }

    fn detect(&self) -> Run {
        self.script("detect", &[self.dir()])
    }

    fn compile(&self) -> Run {
        self.script("compile", &[self.dir(), self.cache.path(), self.env.path()])
    }

    fn installed(&self) -> String {
        self.dir()
            .join(".heroku/preheat/bin/preheat")
            .display()
            .to_string()
    }

    /// A dyno: `bash` sources `$HOME/.profile.d/*.sh`, then execs `command`,
    /// with HOME the app dir, a bare PATH and the dyno's output in `log`.
    fn dyno(&self, dyno: &str, port: Option<u16>, command: &str, log: &Path) -> Command {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut bash = Command::new("bash");
        bash.arg("-c")
            .arg(format!(
                "for script in \"$HOME\"/.profile.d/*.sh; do . \"$script\"; done\nexec {command}"
            ))
            .current_dir(self.dir())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir())
            .env("DYNO", dyno)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file);
        if let Some(port) = port {
            bash.env("PORT", port.to_string());
        }
        bash
    }
}

fn read(log: &Path) -> String {
    support::strip_ansi(&std::fs::read_to_string(log).unwrap_or_default())
}

fn compiled_example() -> (Slug, PathBuf) {
    let (dir, web) = example_copy();
    let slug = Slug::new(dir);
    let detect = slug.detect();
    assert_eq!(detect.code, Some(0), "{}", detect.all());
    assert_eq!(detect.stdout.trim(), "Preheat");
    let compile = slug.compile();
    assert_eq!(compile.code, Some(0), "{}", compile.all());
    (slug, web)
}

#[test]
fn the_example_compiles_releases_and_each_web_dyno_warms_itself() {
    let (slug, web) = compiled_example();
    let compile = slug.compile();
    let out = compile.all();
    assert_eq!(compile.code, Some(0), "{out}");
    for line in [
        "## Preheat (release phase)",
        "- Validated preheat.toml",
        "- Installing preheat 0.1.0 into .heroku/preheat/bin",
        "`preheat` is on PATH in every dyno (.profile.d/preheat.sh)",
        "Boot warm-up starts on every `web.N` dyno (.profile.d/preheat.sh)",
        "Migrations 1/1: schema: `bin/migrate`",
        "Warm-up: /, /dashboard on every web process at boot",
        "- Procfile runs `preheat release` in release phase",
        "- Done",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // The script finds preheat through $HOME at run time, never through BUILD_DIR.
    let profile =
        std::fs::read_to_string(slug.dir().join(".profile.d/preheat.sh")).expect("profile.d");
    assert!(!profile.contains(&slug.dir().display().to_string()));
    assert!(!profile.contains(&buildpack().display().to_string()));
    assert!(profile.contains("$HOME/.heroku/preheat/bin"), "{profile}");
    assert!(!slug.dir().join(".heroku/preheat/web-gated").exists());
    let release = slug.script("release", &[slug.dir()]);
    assert_eq!(
        (release.code, release.stdout.as_str()),
        (Some(0), "--- {}\n")
    );

    // Release phase: `preheat release` from the slug's PATH, and no warmer.
    let port = free_port();
    let log = slug.cache.path().join("release.log");
    let status = slug
        .dyno("release.1", Some(port), "preheat release", &log)
        .status()
        .expect("release dyno");
    let out = read(&log);
    assert!(status.success(), "{out}");
    assert!(out.contains("schema"), "{out}");
    assert!(slug.dir().join("db/schema.txt").is_file(), "{out}");
    assert!(!out.contains("preheat: release.1"), "{out}");
    assert!(
        processes_with(&slug.installed()).is_empty(),
        "no warmer after release"
    );

    // The web dyno: the warmer it started warms the app before a user comes.
    let port = free_port();
    let log = slug.cache.path().join("web.log");
    let mut web_dyno = slug
        .dyno("web.1", Some(port), "bin/web", &log)
        .env("PREHEAT_EXAMPLE_BIN", &web)
        .spawn()
        .expect("web dyno");
    let warmed = eventually(Duration::from_secs(40), || read(&log).contains("warm in"));
    let out = read(&log);
    let cold_and_warm = [user_request(port, "/"), user_request(port, "/dashboard")];
    let _ = web_dyno.kill();
    let _ = web_dyno.wait();
    assert!(warmed, "{out}");
    assert!(out.contains("preheat: web.1 port "), "{out}");
    assert!(out.contains("preheat: web.1 warm in"), "{out}");
    for (status, took) in cold_and_warm {
        assert_eq!(status, 200, "{out}");
        // A cold page costs 800 ms of CPU in the example; a warm one about 5.
        assert!(
            took < Duration::from_millis(400),
            "a user waited {took:?}\n{out}"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || processes_with(&slug.installed())
            .is_empty()),
        "the warmer exits once the app is warm"
    );
}

#[test]
fn run_and_release_dynos_start_no_warmer() {
    let (slug, _web) = compiled_example();
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    for dyno in ["run.1", "release.1", "worker.1"] {
        let log = slug.cache.path().join(format!("{dyno}.log"));
        let status = slug
            .dyno(dyno, Some(server.port), "sh -c 'command -v preheat'", &log)
            .status()
            .expect("dyno");
        let out = read(&log);
        assert!(status.success(), "{out}");
        assert_eq!(out.trim(), slug.installed(), "preheat is on PATH in {dyno}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.requests().is_empty(), "nothing was warmed");
    assert!(
        processes_with(&slug.installed()).is_empty(),
        "no warmer runs"
    );
}

#[test]
fn a_gated_web_dyno_starts_no_warmer() {
    let (dir, _web) = example_copy();
    std::fs::write(
        dir.path().join("Procfile"),
        "web: preheat gate -- bin/web\nrelease: preheat release\n",
    )
    .expect("Procfile");
    let slug = Slug::new(dir);
    let compile = slug.compile();
    let out = compile.all();
    assert_eq!(compile.code, Some(0), "{out}");
    assert!(
        out.contains("Boot warm-up stands aside: web runs through `preheat gate`"),
        "{out}"
    );
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    let log = slug.cache.path().join("web.log");
    let status = slug
        .dyno("web.1", Some(server.port), "true", &log)
        .status()
        .expect("web dyno");
    assert!(status.success(), "{}", read(&log));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read(&log), "", "no warmer, so no log line");
    assert!(server.requests().is_empty(), "nothing was warmed");
    assert!(
        processes_with(&slug.installed()).is_empty(),
        "no warmer runs"
    );
}

#[test]
fn sourcing_never_blocks_fails_or_leaks_into_the_dyno_shell() {
    let (slug, _web) = compiled_example();
    let state = slug.cache.path();
    // Strict options in the dyno's shell, a port that never opens: the script
    // returns at once and leaves the shell's variables and options as they were.
    let script = format!(
        "set -euo pipefail\n\
         compgen -v | sort >{s}/vars-before; set +o >{s}/opts-before\n\
         . \"$HOME/.profile.d/preheat.sh\"\n\
         compgen -v | sort >{s}/vars-after; set +o >{s}/opts-after\n\
         echo started",
        s = state.display()
    );
    let log = state.join("web.log");
    std::fs::write(
        slug.dir().join("preheat.toml"),
        "[warmup]\ndeadline = \"2s\"\n",
    )
    .expect("preheat.toml");
    let started = Instant::now();
    let status = slug
        .dyno(
            "web.1",
            Some(free_port()),
            &format!("bash -c '{script}'"),
            &log,
        )
        .status()
        .expect("web dyno");
    let took = started.elapsed();
    assert!(status.success(), "{}", read(&log));
    assert!(read(&log).contains("started"), "{}", read(&log));
    assert!(
        took < Duration::from_millis(1500),
        "the dyno's start waited {took:?}"
    );
    let file = |name: &str| std::fs::read_to_string(state.join(name)).expect("state file");
    assert_eq!(file("opts-before"), file("opts-after"));
    let before = file("vars-before");
    let after = file("vars-after");
    let new: Vec<&str> = after
        .lines()
        .filter(|name| !before.lines().any(|old| old == *name))
        .filter(|name| !matches!(*name, "_" | "BASH_REMATCH"))
        .collect();
    assert!(new.is_empty(), "the script left variables behind: {new:?}");
    // The warmer was started, and gives up by its deadline with a log line.
    let out = eventually(Duration::from_secs(6), || read(&log).contains("not warmed"));
    assert!(out, "{}", read(&log));
    assert!(read(&log).contains("preheat: web.1 not warmed: nothing listened on port"));

    // Without the binary, the dyno still starts.
    std::fs::remove_file(slug.installed()).expect("rm preheat");
    let log = state.join("broken.log");
    let status = slug
        .dyno("web.1", Some(free_port()), "echo started", &log)
        .status()
        .expect("web dyno");
    assert!(status.success(), "{}", read(&log));
    assert!(read(&log).contains("started"), "{}", read(&log));
}

#[test]
fn a_bad_preheat_toml_fails_compile_with_its_location() {
    let slug = Slug::new(app(&[
        ("Procfile", "web: bin/web\nrelease: preheat release\n"),
        (
            "preheat.toml",
            "[release]\ndeadline = \"5m\"\n\n[[migrate]]\nrun = \"rake db:migrate\"\ntimout = \"5m\"\n",
        ),
    ]));
    assert_eq!(slug.detect().code, Some(0));
    let compile = slug.compile();
    let out = compile.all();
    assert_ne!(compile.code, Some(0), "{out}");
    assert!(out.contains("Invalid preheat.toml"), "{out}");
    assert!(
        out.contains("preheat.toml:6:1: unknown key `timout`"),
        "{out}"
    );
    assert!(out.contains("Did you mean `timeout`?"), "{out}");
    assert!(
        !slug.dir().join(".heroku/preheat").exists(),
        "nothing installed"
    );
    assert!(
        !slug.dir().join(".profile.d/preheat.sh").exists(),
        "nothing installed"
    );
}

#[test]
fn detect_follows_the_cnb_rule_and_compile_warns_about_the_procfile() {
    let with_toml = Slug::new(app(&[("preheat.toml", "")]));
    assert_eq!(with_toml.detect().code, Some(0));
    let compile = with_toml.compile();
    let out = compile.all();
    assert_eq!(compile.code, Some(0), "{out}");
    assert!(out.contains("! There is no Procfile"), "{out}");
    assert!(out.contains("!     release: preheat release"), "{out}");

    let release_only = Slug::new(app(&[("Procfile", "release: ./x && preheat release\n")]));
    let detect = release_only.detect();
    assert_eq!((detect.code, detect.stdout.trim()), (Some(0), "Preheat"));

    let neither = Slug::new(app(&[(
        "Procfile",
        "web: bin/web\nrelease: rake db:migrate\n",
    )]));
    let detect = neither.detect();
    assert_eq!(detect.code, Some(1), "{}", detect.all());
    assert!(
        detect.stdout.contains("preheat is not used") && !detect.stdout.contains("Preheat\n"),
        "{}",
        detect.all()
    );
}
