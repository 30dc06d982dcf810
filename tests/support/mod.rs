//! Shared test support: a buildpack directory laid out like `cargo libcnb package`,
//! and runners that invoke `bin/detect` and `bin/build` as the CNB lifecycle does.
#![allow(dead_code)]

pub(crate) mod hostile;
pub(crate) mod launch;
pub(crate) mod platform_api;

use std::io::Read;
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

/// A request as the test server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    pub(crate) at: std::time::Instant,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response the test server sends: status, headers, body.
pub(crate) type Reply = (u16, Vec<(&'static str, String)>, String);

/// A real HTTP server on 127.0.0.1 that records every request and answers
/// through `handler(request, index)`.
pub(crate) struct HttpServer {
    pub(crate) port: u16,
    pub(crate) seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    server: std::sync::Arc<tiny_http::Server>,
}

impl HttpServer {
    pub(crate) fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on(0, handler)
    }

    pub(crate) fn start_on(
        port: u16,
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let server =
            std::sync::Arc::new(tiny_http::Server::http(("127.0.0.1", port)).expect("bind"));
        let port = server.server_addr().to_ip().expect("ip addr").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler = std::sync::Arc::new(handler);
        {
            let server = std::sync::Arc::clone(&server);
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    let record = Seen {
                        method: request.method().as_str().to_string(),
                        path: request.url().to_string(),
                        headers: request
                            .headers()
                            .iter()
                            .map(|h| {
                                (
                                    h.field.as_str().as_str().to_string(),
                                    h.value.as_str().to_string(),
                                )
                            })
                            .collect(),
                        body,
                        at: std::time::Instant::now(),
                    };
                    let index = {
                        let mut list = seen.lock().expect("lock");
                        list.push(record.clone());
                        list.len() - 1
                    };
                    let handler = std::sync::Arc::clone(&handler);
                    std::thread::spawn(move || {
                        let (status, headers, body) = handler(&record, index);
                        let mut response =
                            tiny_http::Response::from_string(body).with_status_code(status);
                        for (name, value) in headers {
                            if let Ok(header) =
                                tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                            {
                                response.add_header(header);
                            }
                        }
                        let _ = request.respond(response);
                    });
                }
            });
        }
        Self { port, seen, server }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// Pids of live processes whose command line contains `marker`.
pub(crate) fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `limit` for `check` to hold.
/// Everything a child writes to its piped stdout and stderr, as it arrives,
/// read by one thread per stream.
pub(crate) fn capture_output(
    child: &mut std::process::Child,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let streams = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    for mut stream in streams.into_iter().flatten() {
        let output = std::sync::Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                output
                    .lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
    }
    output
}

/// Holds the tests of one file to one at a time, where they time or count
/// what real app servers do: side by side on two cores, one server's workers
/// starve another's (three rehearsals' gunicorn workers made a warm first user
/// look cold; one gunicorn's workers kept another's from accepting).
pub(crate) fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fresh database on the throwaway server, dropped when the test ends.
pub(crate) struct Database {
    pub(crate) server: String,
    pub(crate) name: String,
    pub(crate) url: String,
}

impl Database {
    pub(crate) fn create(server: &str, name: &str) -> Self {
        psql(server, &format!("DROP DATABASE IF EXISTS {name}"));
        psql(server, &format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(server).expect("PREHEAT_TEST_DATABASE_URL is a URL");
        url.set_path(name);
        Self {
            server: server.to_string(),
            name: name.to_string(),
            url: url.to_string(),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", &self.server, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

pub(crate) fn eventually(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + limit;
    while std::time::Instant::now() < until {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    check()
}

/// A marker unique to one test, to find its processes.
pub(crate) fn marker(name: &str) -> String {
    format!("preheat-test-{name}-{}", std::process::id())
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A web process with a real cold start: it binds `port` only after `boot`,
/// its first request pays `cold` (later ones wait for that first one, as
/// with lazy initialisation), and then it answers in a few ms.
pub(crate) struct SlowServer {
    pub(crate) port: u16,
    server: std::sync::Arc<std::sync::Mutex<Option<HttpServer>>>,
}

impl SlowServer {
    pub(crate) fn start(boot: std::time::Duration, cold: std::time::Duration, status: u16) -> Self {
        let port = free_port();
        let server = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = std::sync::Arc::clone(&server);
        std::thread::spawn(move || {
            std::thread::sleep(boot);
            let warmed = std::sync::Arc::new(std::sync::Mutex::new(false));
            let started = HttpServer::start_on(port, move |_, _| {
                let mut warm = warmed.lock().expect("lock");
                if !*warm {
                    std::thread::sleep(cold);
                    *warm = true;
                }
                (status, vec![], "hello".to_string())
            });
            *slot.lock().expect("lock") = Some(started);
        });
        Self { port, server }
    }

    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.server
            .lock()
            .expect("lock")
            .as_ref()
            .map(HttpServer::requests)
            .unwrap_or_default()
    }
}

/// One GET as a user would send it to 127.0.0.1; the status and how long it took.
pub(crate) fn user_request(port: u16, path: &str) -> (u16, std::time::Duration) {
    user_request_to(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// One GET on a fresh connection, `Connection: close`; the status and how long it took.
pub(crate) fn user_request_to(
    address: std::net::SocketAddr,
    path: &str,
) -> (u16, std::time::Duration) {
    use std::io::Write;
    let started = std::time::Instant::now();
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(10))
            .expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

/// The throwaway `PostgreSQL` server from `scripts/test`. `None` (with a note)
/// when there is none, unless `PREHEAT_REQUIRE_PG=1`, where that is a failure.
pub(crate) fn pg_url() -> Option<String> {
    match std::env::var("PREHEAT_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("PREHEAT_REQUIRE_PG").as_deref() != Ok("1"),
                "PREHEAT_REQUIRE_PG=1 but PREHEAT_TEST_DATABASE_URL is not set: run scripts/test"
            );
            eprintln!("note: skipping a PostgreSQL test: run it through scripts/test");
            None
        }
    }
}

/// Runs SQL with psql against `url`; returns its unaligned output.
pub(crate) fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The example web app that cargo built for this test run
/// (`cargo test` builds examples next to the test binaries).
pub(crate) fn example_web_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let debug_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let binary = debug_dir.join("examples").join("getting-started");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test` (it builds the examples)",
        binary.display()
    );
    binary
}

/// A copy of examples/getting-started in a temp dir, whose web process is a
/// copy of the example binary at a path unique to this test.
pub(crate) fn example_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["Procfile", "preheat.toml"] {
        std::fs::copy(example_dir().join(name), dir.path().join(name)).expect("copy");
    }
    std::fs::create_dir_all(dir.path().join("bin")).expect("bin");
    for entry in std::fs::read_dir(example_dir().join("bin"))
        .expect("bin dir")
        .flatten()
    {
        std::fs::copy(entry.path(), dir.path().join("bin").join(entry.file_name()))
            .expect("copy bin");
    }
    let web = dir.path().join("example-web");
    std::fs::copy(example_web_binary(), &web).expect("copy example binary");
    (dir, web)
}

/// The test venv's `bin/` (gunicorn, Django, psycopg), from `scripts/test`.
/// `None`, with a note, when there is none, unless `PREHEAT_REQUIRE_VENV=1`,
/// where that is a failure: a warm-up claim must hold on real servers.
pub(crate) fn venv_bin() -> Option<PathBuf> {
    let venv = std::env::var_os("PREHEAT_TEST_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv"),
        PathBuf::from,
    );
    let bin = venv.join("bin");
    if bin.join("gunicorn").is_file() {
        return Some(bin);
    }
    assert!(
        std::env::var("PREHEAT_REQUIRE_VENV").as_deref() != Ok("1"),
        "PREHEAT_REQUIRE_VENV=1 but there is no gunicorn in {}: run scripts/test",
        bin.display()
    );
    eprintln!(
        "note: no test venv at {}; run scripts/test to boot real gunicorn",
        bin.display()
    );
    None
}
