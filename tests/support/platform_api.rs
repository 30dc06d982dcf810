//! A stand-in for the Heroku Platform API on 127.0.0.1: a small stateful
//! server that keeps releases and dynos and moves dynos from `starting` to
//! `up` over time. It follows the published response shapes: release and
//! dyno objects, `{ "id", "message" }` errors, `RateLimit-Remaining` on every
//! response, and `Range` / `Next-Range` pagination (206) on the dyno list.
//!
//! Time moves lazily: every request first applies the scheduled scenario
//! events that are due and brings up the dynos whose boot time has passed.

use super::{HttpServer, Reply, Run, Seen, preheat};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) const APP: &str = "my-app";
/// The app's id; the API takes it wherever it takes the name.
pub(crate) const APP_ID: &str = "01234567-89ab-4cde-8f01-000000000001";
/// The stand-in's token; tests check it never appears in any output.
pub(crate) const TOKEN: &str = "tok-standin-3f9a1c7e5d2b4a68";

/// Variables a developer's shell (or CI) might set, which would change the run.
pub(crate) const CLEARED: [&str; 20] = [
    "PREHEAT_SKIP",
    "PREHEAT_API_TOKEN",
    "HEROKU_API_KEY",
    "PREHEAT_API_URL",
    "PREHEAT_API_POLL_MS",
    "HEROKU_APP_NAME",
    "HEROKU_APP_ID",
    "HEROKU_RELEASE_VERSION",
    "HEROKU_APP_DEFAULT_DOMAIN_NAME",
    "PREHEAT_RELEASE_ID_FILE",
    "SOURCE_VERSION",
    "HEROKU_BUILD_COMMIT",
    "HEROKU_SLUG_COMMIT",
    "PREHEAT_WEBHOOK_SECRET",
    "PREHEAT_WEBHOOK_URL",
    "CNB_APP_DIR",
    "DYNO",
    "HOSTNAME",
    "PORT",
    "WEB_CONCURRENCY",
];

/// `preheat ARGS` in `dir` against the stand-in `api`, with a watchdog: only
/// the token, the API URL and a fast test poll are set, so there is no dyno
/// metadata unless `env` adds it. Checks the rule that holds everywhere: the
/// token is never printed, not even in part.
pub(crate) fn run_preheat(
    api: &PlatformApi,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = preheat();
    command.args(args).current_dir(dir);
    for name in CLEARED {
        command.env_remove(name);
    }
    command
        .env("PREHEAT_API_URL", api.url())
        .env("PREHEAT_API_TOKEN", TOKEN)
        .env("PREHEAT_API_POLL_MS", "50")
        // Never the real file of the machine the tests run on.
        .env("PREHEAT_RELEASE_ID_FILE", dir.join("no-release-id"));
    for (k, v) in env {
        command.env(k, v);
    }
    let run = with_watchdog(command, Duration::from_secs(45));
    assert_no_token(&run.all());
    run
}

pub(crate) fn assert_no_token(text: &str) {
    assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
    assert!(
        !text.contains(&TOKEN[4..]),
        "part of the token leaked:\n{text}"
    );
}

pub(crate) fn with_watchdog(mut command: Command, limit: Duration) -> Run {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn preheat");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(output) = rx.recv_timeout(limit) {
        return Run::from(output.expect("wait for preheat"));
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
    panic!("preheat did not finish within {limit:?}");
}

/// A web app that answers 200 to everything.
pub(crate) fn web_app() -> HttpServer {
    HttpServer::start(|_, _| (200, vec![], "ok".to_string()))
}

#[derive(Clone, Debug)]
pub(crate) struct ApiRelease {
    pub(crate) id: String,
    pub(crate) version: u64,
    pub(crate) status: &'static str,
    pub(crate) current: bool,
    pub(crate) description: String,
    pub(crate) updated: u64,
    /// The version whose slug this release runs: its own, or for a
    /// rollback, the old release's.
    pub(crate) slug: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct ApiDyno {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) state: &'static str,
    pub(crate) version: u64,
    pub(crate) command: String,
    /// When a `starting` dyno becomes `up`; `None` stays as it is (e.g. crashed).
    pub(crate) up_at: Option<Instant>,
    pub(crate) updated: u64,
}

/// A dyno restart as the stand-in saw it.
#[derive(Clone, Debug)]
pub(crate) struct Restart {
    pub(crate) name: String,
    pub(crate) at: Instant,
    /// Dynos of the same type that were not `up` at that moment.
    pub(crate) others_down: Vec<String>,
}

type Event = Box<dyn FnOnce(&mut State) + Send>;

pub(crate) struct State {
    pub(crate) token: String,
    /// `read`, `write`; GET needs either, everything else `write`.
    pub(crate) scopes: Vec<&'static str>,
    pub(crate) releases: Vec<ApiRelease>,
    pub(crate) dynos: Vec<ApiDyno>,
    /// How long a dyno stays `starting`.
    pub(crate) boot: Duration,
    /// The most list items one response carries, whatever `max` asks.
    pub(crate) page_size: usize,
    pub(crate) remaining: u32,
    pub(crate) preboot: bool,
    /// One-shot replies, matched by method and a path fragment, before routing.
    pub(crate) injected: VecDeque<(&'static str, String, Reply)>,
    pub(crate) restarts: Vec<Restart>,
    /// The most `web` dynos that were not `up` at once, after a restart began.
    pub(crate) max_web_down: usize,
    /// Bodies of `POST /apps/{app}/dynos`.
    pub(crate) created: Vec<Value>,
    /// Bodies of `POST /apps/{app}/releases` (rollbacks).
    pub(crate) rollbacks: Vec<Value>,
    /// Make the rollback release, then answer 503 as a Heroku router error would
    /// after the API did the work: the answer is lost, the release is not.
    pub(crate) lose_rollback_answer: bool,
    /// How long a rollback's release phase runs before it succeeds.
    pub(crate) release_phase: Duration,
    /// When every web dyno was last seen `up` on the current release.
    pub(crate) all_up_at: Option<Instant>,
    /// `heroku-24` (Cedar) or `cnb` (Fir), as `GET /apps/{app}` reports it.
    pub(crate) stack: &'static str,
    /// Fir: formation dynos are named `web-<hash>-<suffix>`, and a restart or
    /// a new release replaces them with new names, as Kubernetes pods.
    pub(crate) fir: bool,
    /// Fir: how long a replaced dyno stays listed as `down` after its
    /// replacement appeared (a terminating pod); zero drops it at once.
    pub(crate) fir_linger: Duration,
    /// Replaced Fir dynos still listed, with when they go.
    lingering: Vec<(Instant, ApiDyno)>,
    events: Vec<(Instant, Event)>,
    /// Applied one each, in order, before answering a `GET /apps/{app}/dynos`:
    /// dyno states that a test needs seen on a given poll, not at a time.
    pub(crate) on_dyno_list: VecDeque<Event>,
    clock: u64,
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn uuid(n: u64) -> String {
        format!("01234567-89ab-4cde-8f01-{n:012}")
    }

    fn timestamp(n: u64) -> String {
        format!(
            "2026-01-01T{:02}:{:02}:{:02}Z",
            (n / 3600) % 24,
            (n / 60) % 60,
            n % 60
        )
    }

    pub(crate) fn add_release(&mut self, version: u64, status: &'static str, current: bool) {
        let n = self.tick();
        if current {
            for release in &mut self.releases {
                release.current = false;
            }
        }
        self.releases.push(ApiRelease {
            id: Self::uuid(n),
            version,
            status,
            current,
            description: format!("Deploy {:07x}", version * 4_099),
            updated: n,
            slug: version,
        });
    }

    pub(crate) fn add_dyno(&mut self, name: &str, state: &'static str, version: u64) {
        let n = self.tick();
        let kind = match name.split_once('.') {
            Some((kind, _)) => kind.to_string(),
            // web-12a34b56d-e78f9
            None => name.rsplitn(3, '-').last().unwrap_or("web").to_string(),
        };
        self.dynos.push(ApiDyno {
            id: Self::uuid(n),
            name: name.to_string(),
            command: if kind == "web" {
                "bin/web".to_string()
            } else {
                format!("bin/{kind}")
            },
            kind,
            state,
            version,
            up_at: None,
            updated: n,
        });
    }

    /// A Fir dyno name: `web-<9-char pod-template hash>-<5-char suffix>`.
    pub(crate) fn fir_name(&mut self, kind: &str, hash: u64) -> String {
        let n = self.tick();
        format!("{kind}-{:09x}-{:05x}", 0x12a3_4b56d + hash, 0xe78f9 + n)
    }

    /// Release phase is over: the release becomes current, and every
    /// formation dyno restarts on it.
    pub(crate) fn succeed(&mut self, version: u64) {
        let n = self.tick();
        for release in &mut self.releases {
            release.current = release.version == version;
            if release.version == version {
                release.status = "succeeded";
                release.updated = n;
            }
        }
        let boot = self.boot;
        let renames: Vec<(usize, String)> = if self.fir {
            // A new release is a new pod template: new hash, new names.
            let formation: Vec<(usize, String)> = self
                .dynos
                .iter()
                .enumerate()
                .filter(|(_, d)| d.kind != "run")
                .map(|(i, d)| (i, d.kind.clone()))
                .collect();
            formation
                .into_iter()
                .map(|(i, kind)| (i, self.fir_name(&kind, version)))
                .collect()
        } else {
            Vec::new()
        };
        for (index, name) in renames {
            let id = Self::uuid(self.tick() + 5_000);
            self.dynos[index].name = name;
            self.dynos[index].id = id;
        }
        for dyno in self.dynos.iter_mut().filter(|d| d.kind != "run") {
            dyno.version = version;
            dyno.state = "starting";
            dyno.up_at = Some(Instant::now() + boot);
            dyno.updated = n;
        }
        self.all_up_at = None;
    }

    pub(crate) fn fail(&mut self, version: u64) {
        let n = self.tick();
        for release in self.releases.iter_mut().filter(|r| r.version == version) {
            release.status = "failed";
            release.updated = n;
        }
    }

    fn restart(&mut self, name: &str) -> bool {
        let n = self.tick();
        let boot = self.boot;
        let Some(kind) = self
            .dynos
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.kind.clone())
        else {
            return false;
        };
        let others_down = self
            .dynos
            .iter()
            .filter(|d| d.kind == kind && d.name != name && d.state != "up")
            .map(|d| d.name.clone())
            .collect();
        self.restarts.push(Restart {
            name: name.to_string(),
            at: Instant::now(),
            others_down,
        });
        let replacement = if self.fir {
            let version = self
                .dynos
                .iter()
                .find(|d| d.name == name)
                .map_or(0, |d| d.version);
            Some((
                self.fir_name(&kind, version),
                Self::uuid(self.tick() + 5_000),
            ))
        } else {
            None
        };
        let linger = self.fir_linger;
        if let Some(dyno) = self.dynos.iter_mut().find(|d| d.name == name) {
            // On Fir the restarted dyno is a new pod under a new name; the
            // old one may stay listed as `down` while it terminates.
            if let Some((new_name, id)) = replacement {
                if !linger.is_zero() {
                    let mut old = dyno.clone();
                    old.state = "down";
                    old.up_at = None;
                    old.updated = n;
                    self.lingering.push((Instant::now() + linger, old));
                }
                dyno.name = new_name;
                dyno.id = id;
            }
            dyno.state = "starting";
            dyno.up_at = Some(Instant::now() + boot);
            dyno.updated = n;
        }
        let down = self
            .dynos
            .iter()
            .filter(|d| d.kind == "web" && d.state != "up")
            .count();
        self.max_web_down = self.max_web_down.max(down);
        true
    }

    /// Applies due events and finished boots.
    fn advance(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut later = Vec::new();
        for (at, event) in self.events.drain(..) {
            if at <= now {
                due.push((at, event));
            } else {
                later.push((at, event));
            }
        }
        self.events = later;
        self.lingering.retain(|(gone_at, _)| *gone_at > now);
        due.sort_by_key(|(at, _)| *at);
        for (_, event) in due {
            event(self);
        }
        let mut latest_up = None;
        for index in 0..self.dynos.len() {
            let dyno = &self.dynos[index];
            let Some(up_at) = dyno
                .up_at
                .filter(|at| dyno.state == "starting" && *at <= now)
            else {
                continue;
            };
            let n = self.tick();
            let dyno = &mut self.dynos[index];
            dyno.state = "up";
            dyno.up_at = None;
            dyno.updated = n;
            if dyno.kind == "web" {
                latest_up = latest_up.max(Some(up_at));
            }
        }
        let current = self.releases.iter().find(|r| r.current).map(|r| r.version);
        let web: Vec<&ApiDyno> = self.dynos.iter().filter(|d| d.kind == "web").collect();
        if self.all_up_at.is_none()
            && !web.is_empty()
            && web
                .iter()
                .all(|d| d.state == "up" && Some(d.version) == current)
        {
            // When the last one came up, not when a request first saw it.
            self.all_up_at = Some(latest_up.unwrap_or(now));
        }
    }

    fn release_json(release: &ApiRelease) -> Value {
        json!({
            "id": release.id,
            "version": release.version,
            "status": release.status,
            "current": release.current,
            "description": release.description,
            "created_at": Self::timestamp(release.updated.saturating_sub(1)),
            "updated_at": Self::timestamp(release.updated),
            "slug": { "id": Self::uuid(9_000 + release.slug) },
            "app": { "id": Self::uuid(1), "name": APP },
            "user": { "id": Self::uuid(2), "email": "deployer@example.com" },
            "addon_plan_names": [],
            "output_stream_url": null,
        })
    }

    /// `GET /apps/{app}`, the published App shape.
    fn app_json(&self) -> Value {
        let (stack_id, generation) = if self.stack == "cnb" {
            (Self::uuid(24_001), "fir")
        } else {
            (Self::uuid(24), "cedar")
        };
        let stack = json!({ "id": stack_id, "name": self.stack });
        json!({
            "id": APP_ID,
            "name": APP,
            "acm": false,
            "archived_at": null,
            "buildpack_provided_description": null,
            "build_stack": stack,
            "created_at": Self::timestamp(1),
            "generation": { "id": Self::uuid(7), "name": generation },
            "git_url": format!("https://git.heroku.com/{APP}.git"),
            "internal_routing": null,
            "maintenance": false,
            "owner": { "id": Self::uuid(2), "email": "deployer@example.com" },
            "organization": null,
            "team": null,
            "region": { "id": Self::uuid(8), "name": "us" },
            "released_at": Self::timestamp(2),
            "repo_size": null,
            "slug_size": null,
            "space": null,
            "stack": stack,
            "updated_at": Self::timestamp(2),
            "web_url": format!("https://{APP}-0123456789ab.herokuapp.com/"),
        })
    }

    fn dyno_json(&self, dyno: &ApiDyno) -> Value {
        let release_id = self
            .releases
            .iter()
            .find(|r| r.version == dyno.version)
            .map_or_else(String::new, |r| r.id.clone());
        json!({
            "id": dyno.id,
            "name": dyno.name,
            "type": dyno.kind,
            "state": dyno.state,
            "release": { "id": release_id, "version": dyno.version },
            "command": dyno.command,
            "created_at": Self::timestamp(1),
            "updated_at": Self::timestamp(dyno.updated),
            "size": "Standard-1X",
            "app": { "id": Self::uuid(1), "name": APP },
            "attach_url": null,
        })
    }
}

/// `Range: id ]last..; max=1000` → (field, exclusive start, max, descending).
fn parse_range(header: Option<&str>) -> (String, Option<String>, usize, bool) {
    let Some(header) = header else {
        return ("id".to_string(), None, 1000, false);
    };
    let (head, options) = header.split_once(';').unwrap_or((header, ""));
    let mut words = head.split_whitespace();
    let field = words.next().unwrap_or("id").to_string();
    let start = words
        .next()
        .and_then(|w| w.strip_suffix(".."))
        .and_then(|w| w.strip_prefix(']'))
        .map(str::to_string);
    let mut max = 1000;
    let mut desc = false;
    for option in options.split(',') {
        match option.trim().split_once('=') {
            Some(("max", n)) => max = n.trim().parse().unwrap_or(1000),
            Some(("order", order)) => desc = order.trim() == "desc",
            _ => {}
        }
    }
    (field, start, max, desc)
}

fn error(status: u16, id: &str, message: &str) -> (u16, Vec<(&'static str, String)>, Value) {
    (status, Vec::new(), json!({ "id": id, "message": message }))
}

/// The stand-in; it stops with the test.
pub(crate) struct PlatformApi {
    pub(crate) server: HttpServer,
    pub(crate) state: Arc<Mutex<State>>,
}

impl PlatformApi {
    /// A Fir app: stack `cnb`, dynos named `web-12a34b56d-e78f9` that get
    /// new names when they restart.
    pub(crate) fn start_fir(current: u64, web: usize) -> Self {
        let api = Self::start(current, 0);
        {
            let mut state = api.state();
            state.stack = "cnb";
            state.fir = true;
            for _ in 0..web {
                let name = state.fir_name("web", current);
                state.add_dyno(&name, "up", current);
            }
        }
        api
    }

    /// An app with release v`current` live on `web` dynos that are `up`.
    pub(crate) fn start(current: u64, web: usize) -> Self {
        let mut state = State {
            token: TOKEN.to_string(),
            scopes: vec!["read", "write"],
            releases: Vec::new(),
            dynos: Vec::new(),
            boot: Duration::from_millis(300),
            page_size: 1000,
            remaining: 4500,
            preboot: false,
            injected: VecDeque::new(),
            restarts: Vec::new(),
            max_web_down: 0,
            created: Vec::new(),
            rollbacks: Vec::new(),
            lose_rollback_answer: false,
            release_phase: Duration::from_millis(200),
            all_up_at: None,
            stack: "heroku-24",
            fir: false,
            fir_linger: Duration::ZERO,
            lingering: Vec::new(),
            events: Vec::new(),
            on_dyno_list: VecDeque::new(),
            clock: 10,
        };
        state.add_release(current, "succeeded", true);
        for i in 1..=web {
            state.add_dyno(&format!("web.{i}"), "up", current);
        }
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        let server = HttpServer::start(move |seen, _| {
            let mut state = shared.lock().expect("stand-in state");
            state.advance();
            handle(&mut state, seen)
        });
        Self { server, state }
    }

    pub(crate) fn url(&self) -> String {
        self.server.url("")
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("stand-in state")
    }

    /// Runs `event` on the state `delay` from now.
    pub(crate) fn after(&self, delay: Duration, event: impl FnOnce(&mut State) + Send + 'static) {
        self.state()
            .events
            .push((Instant::now() + delay, Box::new(event)));
    }

    /// The next request with `method` whose path contains `fragment` gets `reply`.
    pub(crate) fn inject(&self, method: &'static str, fragment: &str, reply: Reply) {
        self.state()
            .injected
            .push_back((method, fragment.to_string(), reply));
    }

    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.server.requests()
    }
}

fn handle(state: &mut State, seen: &Seen) -> Reply {
    state.remaining = state.remaining.saturating_sub(1);
    let remaining = state.remaining.to_string();
    let (status, mut headers, body) = route(state, seen);
    headers.push(("RateLimit-Remaining", remaining));
    headers.push(("Content-Type", "application/json".to_string()));
    headers.push(("Request-Id", format!("req-{}", state.tick())));
    (status, headers, body.to_string())
}

/// The next `on_dyno_list` step, before a dyno list is answered.
fn dyno_list_script(state: &mut State, seen: &Seen, path: &str) {
    if seen.method == "GET"
        && path.ends_with("/dynos")
        && let Some(step) = state.on_dyno_list.pop_front()
    {
        step(state);
    }
}

fn route(state: &mut State, seen: &Seen) -> (u16, Vec<(&'static str, String)>, Value) {
    let path = seen.path.split('?').next().unwrap_or("").to_string();
    let authorization = seen.header("Authorization").unwrap_or("");
    if authorization != format!("Bearer {}", state.token) {
        // The real API does not echo credentials; this stand-in does, so a
        // test proves that preheat scrubs whatever the server says.
        return error(
            401,
            "unauthorized",
            &format!("Invalid credentials provided ({authorization})."),
        );
    }
    if !seen
        .header("Accept")
        .is_some_and(|accept| accept.contains("application/vnd.heroku+json; version=3"))
    {
        return error(
            400,
            "bad_request",
            "Accept: application/vnd.heroku+json; version=3 is required.",
        );
    }
    if let Some(index) = state.injected.iter().position(|(method, fragment, _)| {
        *method == seen.method && path.contains(fragment.as_str())
    }) && let Some((_, _, (status, headers, body))) = state.injected.remove(index)
    {
        return (
            status,
            headers,
            serde_json::from_str(&body).unwrap_or(Value::Null),
        );
    }
    dyno_list_script(state, seen, &path);
    let writes = seen.method != "GET";
    let allowed = if writes {
        state.scopes.contains(&"write")
    } else {
        state.scopes.contains(&"read") || state.scopes.contains(&"write")
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.first() != Some(&"apps") || parts.len() < 2 {
        return error(
            404,
            "not_found",
            "The requested API endpoint was not found.",
        );
    }
    if parts[1] != APP && parts[1] != APP_ID {
        return error(404, "not_found", "Couldn't find that app.");
    }
    if !allowed {
        return error(
            403,
            "forbidden",
            "This OAuth authorization doesn't have the required scope.",
        );
    }
    match (seen.method.as_str(), &parts[2..]) {
        ("GET", []) => (200, Vec::new(), state.app_json()),
        ("GET", ["releases", version]) => {
            match state
                .releases
                .iter()
                .find(|r| version.parse() == Ok(r.version) || r.id == *version)
            {
                Some(release) => (200, Vec::new(), State::release_json(release)),
                None => error(404, "not_found", "Couldn't find that release."),
            }
        }
        ("GET", ["releases"]) => list_releases(state, seen),
        ("GET", ["dynos"]) => list_dynos(state, seen),
        ("GET", ["dynos", name]) => match state.dynos.iter().find(|d| d.name == *name) {
            Some(dyno) => (200, Vec::new(), state.dyno_json(dyno)),
            None => error(404, "not_found", "Couldn't find that process."),
        },
        ("GET", ["features", "preboot"]) => preboot(state),
        ("POST", ["dynos"]) => create_dyno(state, seen),
        ("POST", ["releases"]) => roll_back(state, seen),
        ("DELETE", ["dynos"]) => {
            let names: Vec<String> = state
                .dynos
                .iter()
                .filter(|d| d.kind != "run")
                .map(|d| d.name.clone())
                .collect();
            for name in names {
                state.restart(&name);
            }
            (202, Vec::new(), json!({}))
        }
        ("DELETE", ["dynos", name]) => {
            if state.restart(name) {
                (202, Vec::new(), json!({}))
            } else {
                error(404, "not_found", "Couldn't find that process.")
            }
        }
        _ => error(
            404,
            "not_found",
            "The requested API endpoint was not found.",
        ),
    }
}

fn list_releases(state: &State, seen: &Seen) -> (u16, Vec<(&'static str, String)>, Value) {
    let (_, _, max, desc) = parse_range(seen.header("Range"));
    let mut list = state.releases.clone();
    list.sort_by_key(|r| r.version);
    if desc {
        list.reverse();
    }
    let partial = list.len() > max;
    let page: Vec<Value> = list.iter().take(max).map(State::release_json).collect();
    (
        if partial { 206 } else { 200 },
        Vec::new(),
        Value::Array(page),
    )
}

fn preboot(state: &State) -> (u16, Vec<(&'static str, String)>, Value) {
    (
        200,
        Vec::new(),
        json!({
            "id": State::uuid(3),
            "name": "preboot",
            "enabled": state.preboot,
            "description": "Provide seamless web dyno deploys.",
            "doc_url": "https://devcenter.heroku.com/articles/preboot",
            "state": "general",
            "created_at": State::timestamp(1),
            "updated_at": State::timestamp(1),
        }),
    )
}

/// `POST /apps/{app}/releases` with `{"release": id}`: Heroku's rollback. A
/// new release, `Rollback to vN`, on the old release's slug; its release
/// phase runs again (`pending`, then `succeeded` and current, dynos restart).
fn roll_back(state: &mut State, seen: &Seen) -> (u16, Vec<(&'static str, String)>, Value) {
    let body: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
    state.rollbacks.push(body.clone());
    let Some(id) = body["release"].as_str() else {
        return error(
            422,
            "invalid_params",
            "Release is required to roll back (or slug to create a release).",
        );
    };
    let Some(old) = state.releases.iter().find(|r| r.id == id).cloned() else {
        return error(404, "not_found", "Couldn't find that release.");
    };
    let version = state.releases.iter().map(|r| r.version).max().unwrap_or(0) + 1;
    state.add_release(version, "pending", false);
    if let Some(release) = state.releases.last_mut() {
        release.description = format!("Rollback to v{}", old.version);
        release.slug = old.slug;
    }
    let at = Instant::now() + state.release_phase;
    state.events.push((
        at,
        Box::new(move |state: &mut State| state.succeed(version)),
    ));
    if state.lose_rollback_answer {
        return error(
            503,
            "unavailable",
            "The service is temporarily unavailable.",
        );
    }
    match state.releases.last() {
        Some(release) => (201, Vec::new(), State::release_json(release)),
        None => error(500, "internal", "no release"),
    }
}

/// `POST /apps/{app}/dynos`: a one-off dyno on the current release.
fn create_dyno(state: &mut State, seen: &Seen) -> (u16, Vec<(&'static str, String)>, Value) {
    let body: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
    state.created.push(body.clone());
    let name = format!("run.{}", 1000 + state.created.len());
    let current = state
        .releases
        .iter()
        .find(|r| r.current)
        .map_or(0, |r| r.version);
    state.add_dyno(&name, "starting", current);
    if let Some(dyno) = state.dynos.last_mut() {
        dyno.kind = "run".to_string();
        dyno.command = body["command"].as_str().unwrap_or("").to_string();
    }
    match state.dynos.last() {
        Some(dyno) => (201, Vec::new(), state.dyno_json(dyno)),
        None => error(500, "internal", "no dyno"),
    }
}

fn list_dynos(state: &State, seen: &Seen) -> (u16, Vec<(&'static str, String)>, Value) {
    let (field, start, max, _) = parse_range(seen.header("Range"));
    if field != "id" {
        return error(
            400,
            "bad_request",
            "Range: only `id` is a valid range field for dynos.",
        );
    }
    let mut list = state.dynos.clone();
    list.extend(state.lingering.iter().map(|(_, dyno)| dyno.clone()));
    list.sort_by(|a, b| a.id.cmp(&b.id));
    let after: Vec<ApiDyno> = list
        .into_iter()
        .filter(|d| {
            start
                .as_ref()
                .is_none_or(|start| d.id.as_str() > start.as_str())
        })
        .collect();
    let take = max.min(state.page_size);
    let page: Vec<ApiDyno> = after.iter().take(take).cloned().collect();
    let body = Value::Array(page.iter().map(|d| state.dyno_json(d)).collect());
    if after.len() > take
        && let Some(last) = page.last()
    {
        (
            206,
            vec![("Next-Range", format!("id ]{}..; max={max}", last.id))],
            body,
        )
    } else {
        (200, Vec::new(), body)
    }
}
