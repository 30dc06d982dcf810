//! Integration tests with libcnb-test: a real `pack build` of
//! `examples/getting-started` on `heroku/builder:24` with `heroku/procfile`
//! and this buildpack, then the image's `release` and `web` processes run in
//! Docker, as a platform runs them.
//!
//! They need Docker and pack, so they are ignored by `cargo test`. Run them with
//! `cargo test --test integration -- --ignored`; docs/integration-tests.md says
//! what they need and what each one checks.
//!
//! The example app is a Rust program (`examples/getting-started/main.rs`), and
//! no buildpack on the builder compiles Rust. So each test first builds it here
//! as a static `x86_64-unknown-linux-musl` binary, copies it into the app
//! (`bin/getting-started`), and points the example's `bin/web` at it with its
//! `PREHEAT_EXAMPLE_BIN` override. Everything else (Procfile, preheat.toml,
//! bin/migrate, bin/prime) is the example as it is in the repository.
#![allow(unused_crate_dependencies)]

mod support;

use libcnb_test::{
    BuildConfig, BuildpackReference, ContainerConfig, ContainerContext, LogOutput, PackResult,
    TestRunner, assert_contains,
};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BUILDER: &str = "heroku/builder:24";
const TARGET: &str = "x86_64-unknown-linux-musl";
const APP: &str = "examples/getting-started";
/// Where the example binary sits in the app, and so in the image.
const APP_BINARY: &str = "bin/getting-started";
const PORT: u16 = 8080;
/// The example's first request to each page burns this much CPU.
const COLD_MS: u64 = 3000;

/// The example web app, built once per test run as a static musl binary.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let output = Command::new(cargo)
            .args(["build", "--locked", "--example", "getting-started"])
            .args(["--target", TARGET, "--message-format", "json-render-diagnostics"])
            .arg("--manifest-path")
            .arg(&manifest)
            .output()
            .expect("run cargo build for the example");
        assert!(
            output.status.success(),
            "cargo build --target {TARGET} --example getting-started failed (is the target installed? `rustup target add {TARGET}`, and musl-gcc from musl-tools):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            .filter(|message| message["target"]["name"] == "getting-started")
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no executable for the getting-started example")
    })
}

/// `examples/getting-started` with the example binary in it, built with
/// `heroku/procfile` and then this buildpack, as `docs/deploy.md` orders them.
fn build_config() -> BuildConfig {
    let binary = example_binary().to_path_buf();
    let mut config = BuildConfig::new(BUILDER, APP);
    config
        .buildpacks([
            BuildpackReference::Other(String::from("heroku/procfile")),
            BuildpackReference::CurrentCrate,
        ])
        .app_dir_preprocessor(move |app_dir| {
            // State from a local `preheat rehearse` must not reach the image.
            for leftover in ["db", "tmp"] {
                let _ = std::fs::remove_dir_all(app_dir.join(leftover));
            }
            let target = app_dir.join(APP_BINARY);
            std::fs::copy(&binary, &target).expect("copy the example binary into the app");
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .expect("make the example binary executable");
        });
    config
}

/// The `db/` and `tmp/` directories that the release writes and the web
/// process reads. Release and web run in separate containers, as they run on
/// separate dynos, so these host directories stand in for the database and
/// the cache store that both would share in production.
struct SharedState {
    dir: tempfile::TempDir,
}

impl SharedState {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["db", "tmp"] {
            let path = dir.path().join(name);
            std::fs::create_dir(&path).expect("state dir");
            // The image runs as an unprivileged user with another uid.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
                .expect("chmod state dir");
        }
        Self { dir }
    }

    fn mounted(&self) -> ContainerConfig {
        let mut config = ContainerConfig::new();
        for name in ["db", "tmp"] {
            config.bind_mount(self.dir.path().join(name), format!("/workspace/{name}"));
        }
        config
    }
}

/// A `web` process as a platform starts it: `PORT` set, `DYNO` named.
fn web_config(state: &SharedState, extra_env: &[(&str, &str)]) -> ContainerConfig {
    let mut config = state.mounted();
    config
        .entrypoint("web")
        .env("PORT", PORT.to_string())
        .env("DYNO", "web.1")
        .env("PREHEAT_EXAMPLE_BIN", format!("/workspace/{APP_BINARY}"))
        .env("COLD_MS", COLD_MS.to_string())
        .expose_port(PORT);
    for (key, value) in extra_env {
        config.env(*key, *value);
    }
    config
}

/// stdout and stderr together, without colours.
fn text(logs: &LogOutput) -> String {
    support::strip_ansi(&format!("{}{}", logs.stdout, logs.stderr))
}

/// The exit code of a container that has stopped.
fn exit_code(container: &ContainerContext) -> i64 {
    let output = Command::new("docker")
        .args(["inspect", "--format", "{{.State.ExitCode}}"])
        .arg(&container.container_name)
        .output()
        .expect("run docker inspect");
    assert!(
        output.status.success(),
        "docker inspect failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("docker inspect printed an exit code")
}

/// Polls the container's log until it contains `needle`; the whole log then.
fn wait_for_log(container: &ContainerContext, needle: &str, limit: Duration) -> String {
    let until = Instant::now() + limit;
    loop {
        let logs = text(&container.logs_now());
        if logs.contains(needle) || Instant::now() >= until {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One GET as a user would send it, to the container's published port.
fn user_request(address: SocketAddr, path: &str) -> (u16, Duration) {
    let address = if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    };
    support::user_request_to(address, path)
}

#[test]
#[ignore = "integration test"]
fn getting_started_release_then_web_warms_itself() {
    TestRunner::default().build(build_config(), |context| {
        let build = support::strip_ansi(&format!("{}{}", context.pack_stdout, context.pack_stderr));
        assert_contains!(build, "Preheat (release phase)");
        assert_contains!(build, "Validated preheat.toml");
        assert_contains!(
            build,
            &format!("Installing preheat {}", env!("CARGO_PKG_VERSION"))
        );
        assert_contains!(build, "Procfile runs `preheat release` in release phase");

        let state = SharedState::new();

        // The release process, as Heroku runs it before the new release goes live.
        let mut release = state.mounted();
        release.entrypoint("release");
        context.start_container(&release, |container| {
            let logs = text(&container.logs_wait());
            assert_eq!(exit_code(&container), 0, "release failed:\n{logs}");
            assert_contains!(logs, "migrating to version 2: create table users, create table orders");
            assert_contains!(logs, "schema is at version 2");
            assert_contains!(logs, "priming the featured-products cache");
        });
        assert!(
            state.dir.path().join("db/schema.txt").is_file(),
            "the release did not write db/schema.txt"
        );

        // A web process: the exec.d program starts the boot warmer before the
        // app, and the warmer warms the app as soon as its port is open.
        context.start_container(web_config(&state, &[]), |container| {
            let logs = wait_for_log(&container, "preheat: web.1 warm in", Duration::from_mins(2));
            assert_contains!(logs, "listening on port 8080");
            assert_contains!(logs, "preheat: web.1 port 8080 bound after");
            assert_contains!(logs, "preheat: web.1 warm in");
            assert_contains!(logs, " rounds, converged; ");
            // The first user request finds the pages built.
            let (status, took) = user_request(container.address_for_port(PORT), "/");
            assert_eq!(status, 200, "{logs}");
            assert!(
                took < Duration::from_millis(COLD_MS / 2),
                "the first user request took {took:?} after the warm-up; the page costs {COLD_MS} ms cold\n{logs}"
            );
        });

        // The same process with the warm-up skipped: the first user pays.
        context.start_container(
            web_config(&state, &[("PREHEAT_SKIP", "warmup")]),
            |container| {
                let logs = wait_for_log(&container, "listening on port 8080", Duration::from_mins(1));
                assert_contains!(logs, "preheat: web.1 boot warm-up skipped (PREHEAT_SKIP=warmup)");
                let (status, took) = user_request(container.address_for_port(PORT), "/");
                assert_eq!(status, 200, "{logs}");
                assert!(
                    took >= Duration::from_millis(COLD_MS * 8 / 10),
                    "without the warm-up the first request took only {took:?}; expected about {COLD_MS} ms"
                );
            },
        );
    });
}

#[test]
#[ignore = "integration test"]
fn rebuild_reuses_the_cached_preheat_layer() {
    TestRunner::default().build(build_config(), |context| {
        let config = context.config.clone();
        context.rebuild(config, |context| {
            let build =
                support::strip_ansi(&format!("{}{}", context.pack_stdout, context.pack_stderr));
            assert_contains!(
                build,
                &format!(
                    "Reusing preheat {} from the cached layer",
                    env!("CARGO_PKG_VERSION")
                )
            );
            // The reused layer still puts preheat on PATH.
            let version = context.run_shell_command("preheat --version");
            assert_eq!(
                version.stdout.trim(),
                format!("preheat {}", env!("CARGO_PKG_VERSION"))
            );
        });
    });
}

#[test]
#[ignore = "integration test"]
fn invalid_preheat_toml_fails_the_build_with_its_location() {
    let mut config = build_config();
    let binary = example_binary().to_path_buf();
    config
        .app_dir_preprocessor(move |app_dir| {
            let target = app_dir.join(APP_BINARY);
            std::fs::copy(&binary, &target).expect("copy the example binary into the app");
            std::fs::write(app_dir.join("preheat.toml"), "[warmup]\npats = [\"/\"]\n")
                .expect("write a bad preheat.toml");
        })
        .expected_pack_result(PackResult::Failure);
    TestRunner::default().build(config, |context| {
        let build = support::strip_ansi(&format!("{}{}", context.pack_stdout, context.pack_stderr));
        assert_contains!(build, "Invalid preheat.toml");
        assert_contains!(build, "preheat.toml:2:1: unknown key `pats`");
        assert_contains!(build, "Did you mean `paths`?");
    });
}
