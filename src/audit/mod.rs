//! `preheat audit`: reads Heroku's own logs (`heroku logs`, or a drain's
//! syslog frames) in one pass and constant memory, finds each dyno boot, judges
//! the users in the window after it against each path's steady service time
//! (the one cold rule, `crate::cold`), ranks the paths that cost users most and
//! prints the `[warmup] paths` to paste. preheat's own requests
//! (`request_id=preheat-…`) are left out; its own log lines are shown beside
//! their boot. Stages: input (framing) → line (header) → router (request) →
//! boots (state, capped) → analysis (judging) → report / json.

mod analysis;
mod boots;
mod input;
mod json;
mod line;
mod paths;
mod report;
mod router;
mod steady;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

use crate::config::{Config, ReadBy};
use crate::exit;
use crate::output;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use paths::DEFAULT_ASSETS;

/// The prefix of preheat's own `X-Request-ID`, which the router logs as `request_id`.
pub(crate) const REQUEST_ID_PREFIX: &str = "preheat-";

pub(crate) struct Options {
    /// `None` or `-`: stdin.
    pub(crate) file: Option<PathBuf>,
    pub(crate) dir: PathBuf,
    pub(crate) json: Option<PathBuf>,
    pub(crate) window: Duration,
    pub(crate) assets: String,
}

/// What one pass counted.
#[derive(Default, Debug)]
pub(crate) struct Counts {
    pub(crate) records: u64,
    pub(crate) router: u64,
    pub(crate) router_errors: u64,
    pub(crate) router_errors_by_code: Vec<(String, u64)>,
    pub(crate) boots: u64,
    pub(crate) own_lines: u64,
    pub(crate) own_requests: u64,
    pub(crate) not_get: u64,
    pub(crate) assets: u64,
    pub(crate) personal: u64,
    pub(crate) too_long: u64,
    pub(crate) not_utf8: u64,
    /// Lines in neither format, or router lines that did not parse.
    pub(crate) malformed: u64,
    /// Well-formed lines of other kinds (app output, other heroku lines).
    pub(crate) other: u64,
}

/// One pass over a log.
pub(crate) struct Audit {
    window_ms: i64,
    assets: paths::Assets,
    pub(crate) counts: Counts,
    pub(crate) state: boots::State,
}

impl Audit {
    pub(crate) fn new(window: Duration, assets: &str) -> Self {
        Self {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            assets: paths::Assets::parse(assets),
            counts: Counts::default(),
            state: boots::State::default(),
        }
    }

    /// Reads everything `reader` gives; only a failing reader is an error.
    pub(crate) fn read(&mut self, reader: &mut dyn BufRead) -> std::io::Result<()> {
        input::each_record(reader, &mut |record| match record {
            input::Record::TooLong => {
                self.counts.records += 1;
                self.counts.too_long += 1;
            }
            input::Record::Line(bytes) => self.record(bytes),
        })?;
        self.state.finish();
        Ok(())
    }

    fn record(&mut self, bytes: &[u8]) {
        self.counts.records += 1;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            self.counts.records -= 1;
            return;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.counts.not_utf8 += 1;
            return;
        };
        let Some(header) = line::parse(text) else {
            self.counts.malformed += 1;
            return;
        };
        let router_source = header.proc == "router"
            || header.proc == "heroku-router"
            || header.source == "heroku-router";
        if router_source && header.source.starts_with("heroku") {
            self.router(header.at_ms, header.message);
        } else if header
            .message
            .starts_with("State changed from starting to up")
        {
            self.counts.boots += 1;
            self.state.up(header.proc, header.at_ms);
        } else if header.message.contains(" | event=") {
            self.own_line(header.proc, header.at_ms, header.message);
        } else {
            self.counts.other += 1;
        }
    }

    fn router(&mut self, at_ms: i64, message: &str) {
        let Some(request) = router::parse(message) else {
            // A router line of another kind (H27 client warnings…) or broken.
            let looks_like_request = message.contains("method=") && message.contains("path=");
            if !looks_like_request && (message.starts_with("at=") || message.contains(" at=")) {
                self.counts.other += 1;
            } else {
                self.counts.malformed += 1;
            }
            return;
        };
        if request.request_id.starts_with(REQUEST_ID_PREFIX) {
            self.counts.own_requests += 1;
            return;
        }
        self.counts.router += 1;
        if let Some(code) = request.error {
            self.counts.router_errors += 1;
            boots::tally(&mut self.counts.router_errors_by_code, code, 64);
            self.state.error(request.dyno, at_ms, self.window_ms, code);
            return;
        }
        let Some(service) = request.service_ms else {
            return;
        };
        let get = request.method.eq_ignore_ascii_case("GET");
        if !get {
            self.counts.not_get += 1;
        }
        let page = match paths::classify(request.path, &self.assets) {
            paths::Class::Page(path) => Some((path, get)),
            paths::Class::Asset => {
                self.counts.assets += 1;
                None
            }
            paths::Class::Personal => {
                self.counts.personal += 1;
                None
            }
        };
        self.state
            .request(request.dyno, at_ms, self.window_ms, page, service);
    }

    fn own_line(&mut self, proc: &str, at_ms: i64, message: &str) {
        let Some(figures) = output::parse_figures(message) else {
            self.counts.other += 1;
            return;
        };
        let Some((_, event)) = figures.first().filter(|(k, _)| k == "event") else {
            self.counts.other += 1;
            return;
        };
        self.counts.own_lines += 1;
        let event = event.clone();
        let dyno = figures
            .iter()
            .find(|(k, _)| k == "dyno")
            .map_or(proc.to_string(), |(_, v)| v.clone());
        self.state.own(
            &dyno,
            boots::OwnLine {
                at_ms,
                event,
                figures: figures.into_iter().take(24).collect(),
            },
            self.window_ms,
        );
    }
}

/// `preheat audit`.
pub(crate) fn run(options: &Options) -> u8 {
    output::header("preheat audit");
    let warmup_paths = match warmup_paths(&options.dir) {
        Ok(paths) => paths,
        Err(block) => {
            output::error(&block);
            return exit::USAGE;
        }
    };
    let mut audit = Audit::new(options.window, &options.assets);
    let result = match options.file.as_deref().filter(|f| *f != Path::new("-")) {
        None => audit.read(&mut std::io::stdin().lock()),
        Some(file) => match std::fs::File::open(file) {
            Ok(f) => audit.read(&mut std::io::BufReader::with_capacity(256 * 1024, f)),
            Err(error) => {
                output::error(&format!(
                    "Cannot read the log {}: {error}.\n\nGive a file written by `heroku logs`, a drain's archive, or `-` for stdin.",
                    file.display()
                ));
                return exit::USAGE;
            }
        },
    };
    if let Err(error) = result {
        output::error(&format!(
            "Reading the log failed: {error}.\n\nGive a file written by `heroku logs`, a drain's archive, or `-` for stdin."
        ));
        return exit::USAGE;
    }
    let findings = analysis::judge(&audit.state, &warmup_paths);
    report::print(&audit, &findings, options.window);
    if let Some(path) = &options.json {
        let value = json::to_json(&audit, &findings, options.window);
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        if let Err(error) = std::fs::write(path, text + "\n") {
            output::error(&format!("Cannot write {}: {error}.", path.display()));
            return exit::USAGE;
        }
        output::bullet(&format!("Figures written to {}", path.display()));
    }
    if findings.cold_users > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// The GET paths that `[warmup]` warms now, from preheat.toml or project.toml.
fn warmup_paths(dir: &Path) -> Result<Vec<String>, String> {
    let config = Config::load_dir(dir).map_err(|e| e.user_block(ReadBy::Command))?;
    if config.source.is_none() || !config.warmup.enabled {
        return Ok(Vec::new());
    }
    let mut paths: Vec<String> = Vec::new();
    for request in &config.warmup.requests {
        if request.method.as_str() == "GET" && !paths.contains(&request.path) {
            paths.push(request.path.clone());
        }
    }
    Ok(paths)
}
