//! Shared test support: a buildpack directory laid out like `cargo libcnb package`,
//! and runners that invoke `bin/detect` and `bin/build` as the CNB lifecycle does.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) struct Buildpack {
    pub(crate) dir: tempfile::TempDir,
}

impl Buildpack {
    /// `bin/build`, `bin/detect` (a symlink, as libcnb-cargo makes it), the additional
    /// binaries under `.libcnb-cargo/additional-bin/`, and `buildpack.toml`.
    pub(crate) fn assemble() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).expect("bin dir");
        std::fs::copy(
            env!("CARGO_BIN_EXE_preheat-buildpack"),
            root.join("bin/build"),
        )
        .expect("copy build");
        std::os::unix::fs::symlink("build", root.join("bin/detect")).expect("symlink detect");
        let extra = root.join(".libcnb-cargo/additional-bin");
        std::fs::create_dir_all(&extra).expect("additional-bin dir");
        std::fs::copy(env!("CARGO_BIN_EXE_preheat"), extra.join("preheat")).expect("copy preheat");
        std::fs::copy(
            env!("CARGO_BIN_EXE_preheat-boot-warmup"),
            extra.join("preheat-boot-warmup"),
        )
        .expect("copy boot warmup");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("buildpack.toml"),
            root.join("buildpack.toml"),
        )
        .expect("copy buildpack.toml");
        Self { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &str, app_dir: &Path) -> Command {
        let mut command = Command::new(self.path().join("bin").join(program));
        command
            .current_dir(app_dir)
            .env("CNB_BUILDPACK_DIR", self.path())
            .env("CNB_TARGET_OS", "linux")
            .env("CNB_TARGET_ARCH", "amd64")
            .env("CNB_TARGET_DISTRO_NAME", "ubuntu")
            .env("CNB_TARGET_DISTRO_VERSION", "24.04");
        command
    }

    /// `bin/detect <platform> <plan>`, with the app dir as working directory.
    pub(crate) fn detect(&self, app_dir: &Path) -> Run {
        let work = tempfile::tempdir().expect("tempdir");
        let platform = work.path().join("platform");
        std::fs::create_dir_all(platform.join("env")).expect("platform dir");
        let plan = work.path().join("plan.toml");
        let output = self
            .command("detect", app_dir)
            .arg(&platform)
            .arg(&plan)
            .env("CNB_PLATFORM_DIR", &platform)
            .env("CNB_BUILD_PLAN_PATH", &plan)
            .output()
            .expect("run bin/detect");
        Run::from(output)
    }

    /// `bin/build <layers> <platform> <plan>`, with the app dir as working directory.
    pub(crate) fn build(&self, app_dir: &Path, layers: &Path) -> Run {
        let work = tempfile::tempdir().expect("tempdir");
        let platform = work.path().join("platform");
        std::fs::create_dir_all(platform.join("env")).expect("platform dir");
        let plan = work.path().join("plan.toml");
        std::fs::write(&plan, "entries = []\n").expect("plan");
        let output = self
            .command("build", app_dir)
            .arg(layers)
            .arg(&platform)
            .arg(&plan)
            .env("CNB_LAYERS_DIR", layers)
            .env("CNB_PLATFORM_DIR", &platform)
            .env("CNB_BP_PLAN_PATH", &plan)
            .output()
            .expect("run bin/build");
        Run::from(output)
    }
}

pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn all(&self) -> String {
        strip_ansi(&format!("{}{}", self.stdout, self.stderr))
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An app directory with the given files.
pub(crate) fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(path, content).expect("write app file");
    }
    dir
}

pub(crate) fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/getting-started")
}

/// Runs the installed `preheat` binary built by cargo.
pub(crate) fn preheat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_preheat"))
}
