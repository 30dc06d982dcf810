//! The gate's first users: for the first `first_users` requests (or
//! `first_users_window`, whichever ends first) after `$PORT` opens, each
//! request is timed from its first byte in to the app's first answer byte, per
//! method and path, and judged by [`crate::cold::is_cold`] against the path's
//! warm figure from the gate's own warm-up. At the end, one line per dyno.
//!
//! [`Conn`] is the pure part: it is fed each direction's bytes with the instant
//! they arrived and says when to stop watching. A connection is only watched
//! while it is plain HTTP/1.x request then answer. It stops at HTTP/2 prior
//! knowledge, anything unparsable, `Upgrade`/`CONNECT`, a chunked request body,
//! and a request that arrives while the answer before it may still be flowing
//! (pipelining). An answer's end is known from its `Content-Length`, or from a
//! status or method without a body; a chunked or close-delimited answer's end
//! is not tracked, so the next request on that connection stops the watch.

use crate::config::duration::human;
use crate::output::figures;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest path kept; longer ones are cut (at a character boundary).
const PATH_CAP: usize = 200;
/// Most distinct method+path pairs kept; the rest count under [`OTHER`].
const PATHS_CAP: usize = 100;
const OTHER: &str = "(other paths)";
/// Most request or answer head read before giving up on a connection.
const HEAD_CAP: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// Most not-warmed or cold paths named in the human part of the line.
const NAMED: usize = 5;

/// One timed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Measured {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) took: Duration,
    pub(crate) status: Option<u16>,
}

/// A request sent and not yet answered (or answered, head not read yet).
#[derive(Debug)]
struct Pending {
    method: String,
    path: String,
    arrived: Instant,
    first_answer: Option<Instant>,
}

#[derive(Debug)]
enum Client {
    /// Between requests, or inside a head (bytes so far).
    Head(Vec<u8>),
    /// Request body bytes still to come.
    Body(u64),
    /// A body whose end is not tracked: the next client bytes stop the watch.
    Unknown,
}

#[derive(Debug)]
enum Answer {
    /// Nothing owed, or an answer head being read.
    Head(Vec<u8>),
    Body(u64),
    /// Ends when the connection does (or is chunked): not tracked.
    Unknown,
}

/// One connection's watch. Feed it both directions; `false` from a feed means
/// "no longer plain HTTP/1.x: stop watching" (and it stays stopped).
#[derive(Debug)]
pub(crate) struct Conn {
    client: Client,
    answer: Answer,
    pending: Option<Pending>,
    head_request: bool,
    stopped: bool,
    done: Vec<Measured>,
}

impl Default for Conn {
    fn default() -> Self {
        Self::new()
    }
}

impl Conn {
    pub(crate) fn new() -> Self {
        Self {
            client: Client::Head(Vec::new()),
            answer: Answer::Head(Vec::new()),
            pending: None,
            head_request: false,
            stopped: false,
            done: Vec::new(),
        }
    }

    /// Requests measured so far (taken out).
    pub(crate) fn take(&mut self) -> Vec<Measured> {
        std::mem::take(&mut self.done)
    }

    fn stop(&mut self) -> bool {
        // A request whose first answer byte came is measured, status or not.
        self.finish(None);
        self.stopped = true;
        false
    }

    fn finish(&mut self, status: Option<u16>) {
        if let Some(p) = self.pending.take()
            && let Some(first) = p.first_answer
        {
            self.done.push(Measured {
                method: p.method,
                path: p.path,
                took: first.saturating_duration_since(p.arrived),
                status,
            });
        }
    }

    /// Whether an answer may still be flowing (or is still owed).
    fn busy(&self) -> bool {
        self.pending.is_some() || !matches!(&self.answer, Answer::Head(b) if b.is_empty())
    }

    /// Bytes from the client, which arrived at `at`.
    pub(crate) fn client(&mut self, mut bytes: &[u8], at: Instant) -> bool {
        while !self.stopped && !bytes.is_empty() {
            let busy = self.busy();
            match &mut self.client {
                Client::Unknown => return self.stop(),
                Client::Body(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.client = Client::Head(Vec::new());
                    }
                }
                Client::Head(buf) => {
                    if buf.is_empty() && busy {
                        // A new request while the last answer may still flow: pipelining.
                        return self.stop();
                    }
                    if buf.is_empty() {
                        self.pending = Some(Pending {
                            method: String::new(),
                            path: String::new(),
                            arrived: at,
                            first_answer: None,
                        });
                    }
                    let before = buf.len();
                    let take = bytes.len().min(HEAD_CAP + 1 - before);
                    buf.extend_from_slice(&bytes[..take]);
                    let head = std::mem::take(buf);
                    match parse_request(&head) {
                        Parsed::Partial if head.len() > HEAD_CAP => return self.stop(),
                        Parsed::Partial => {
                            self.client = Client::Head(head);
                            return true;
                        }
                        Parsed::Stop => return self.stop(),
                        Parsed::Request {
                            len,
                            method,
                            path,
                            body,
                        } => {
                            if let Some(p) = &mut self.pending {
                                p.method = method;
                                p.path = path;
                            }
                            self.head_request =
                                self.pending.as_ref().is_some_and(|p| p.method == "HEAD");
                            self.client = match body {
                                Some(0) => Client::Head(Vec::new()),
                                Some(n) => Client::Body(n),
                                None => Client::Unknown,
                            };
                            bytes = &bytes[len.saturating_sub(before).min(bytes.len())..];
                        }
                    }
                }
            }
        }
        !self.stopped
    }

    /// Bytes from the app, which arrived at `at`.
    pub(crate) fn app(&mut self, mut bytes: &[u8], at: Instant) -> bool {
        while !self.stopped && !bytes.is_empty() {
            match &mut self.answer {
                Answer::Unknown => return true,
                Answer::Body(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.answer = Answer::Head(Vec::new());
                    }
                }
                Answer::Head(buf) => {
                    let Some(pending) = &mut self.pending else {
                        // An answer nobody asked for (yet): not plain request/response.
                        return self.stop();
                    };
                    pending.first_answer.get_or_insert(at);
                    let before = buf.len();
                    let take = bytes.len().min(HEAD_CAP + 1 - before);
                    buf.extend_from_slice(&bytes[..take]);
                    let head = std::mem::take(buf);
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut response = httparse::Response::new(&mut headers);
                    match response.parse(&head) {
                        Ok(httparse::Status::Partial) if head.len() <= HEAD_CAP => {
                            self.answer = Answer::Head(head);
                            return true;
                        }
                        Ok(httparse::Status::Complete(len)) => {
                            let status = response.code.unwrap_or(0);
                            if status == 101 {
                                return self.stop();
                            }
                            let length = content_length(response.headers);
                            let chunked =
                                has_token(response.headers, "transfer-encoding", "chunked");
                            bytes = &bytes[len.saturating_sub(before).min(bytes.len())..];
                            if (100..200).contains(&status) {
                                // An interim answer (100 Continue): the real one follows.
                                self.answer = Answer::Head(Vec::new());
                                continue;
                            }
                            self.finish(Some(status));
                            self.answer = if self.head_request || status == 204 || status == 304 {
                                Answer::Head(Vec::new())
                            } else {
                                match (chunked, length) {
                                    (false, Some(0)) => Answer::Head(Vec::new()),
                                    (false, Some(n)) => Answer::Body(n),
                                    _ => Answer::Unknown,
                                }
                            };
                        }
                        _ => return self.stop(),
                    }
                }
            }
        }
        !self.stopped
    }

    /// The connection ended: a request with a first answer byte is measured.
    pub(crate) fn end(&mut self) {
        if !self.stopped {
            self.stop();
        }
    }
}

enum Parsed {
    Partial,
    Stop,
    Request {
        len: usize,
        method: String,
        path: String,
        /// Body length; `None` when not tracked (chunked).
        body: Option<u64>,
    },
}

fn parse_request(head: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    // `PRI * HTTP/2.0` fails here too: httparse reads HTTP/1.x only.
    match request.parse(head) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Stop,
        Ok(httparse::Status::Complete(len)) => {
            let (Some(method), Some(target)) = (request.method, request.path) else {
                return Parsed::Stop;
            };
            if method == "CONNECT"
                || request
                    .headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case("upgrade"))
                || has_token(request.headers, "connection", "upgrade")
            {
                return Parsed::Stop;
            }
            let body = if has_token(request.headers, "transfer-encoding", "chunked") {
                None
            } else {
                match content_length(request.headers) {
                    Some(n) => Some(n),
                    None if request
                        .headers
                        .iter()
                        .any(|h| h.name.eq_ignore_ascii_case("content-length")) =>
                    {
                        return Parsed::Stop;
                    }
                    None => Some(0),
                }
            };
            Parsed::Request {
                len,
                method: method.to_string(),
                path: clean_path(target),
                body,
            }
        }
    }
}

/// The path without its query string, cut at [`PATH_CAP`] bytes.
pub(crate) fn clean_path(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    if path.len() <= PATH_CAP {
        return path.to_string();
    }
    let mut end = PATH_CAP;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

fn content_length(headers: &[httparse::Header<'_>]) -> Option<u64> {
    let found = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))?;
    std::str::from_utf8(found.value).ok()?.trim().parse().ok()
}

fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The warm-up's fastest successful answer per method and path.
pub(crate) type WarmFigures = HashMap<(String, String), Duration>;

#[derive(Debug, Default)]
struct PathStats {
    hits: u32,
    first: Option<Duration>,
    cold: u32,
    status: BTreeMap<u16, Vec<Duration>>,
}

/// The window's figures so far; pure.
#[derive(Debug)]
pub(crate) struct Tally {
    limit: u32,
    warm: WarmFigures,
    took: Vec<Duration>,
    paths: BTreeMap<(String, String), PathStats>,
}

impl Tally {
    pub(crate) fn new(limit: u32, warm: WarmFigures) -> Self {
        Self {
            limit,
            warm,
            took: Vec::new(),
            paths: BTreeMap::new(),
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.took.len() >= self.limit as usize
    }

    pub(crate) fn users(&self) -> usize {
        self.took.len()
    }

    /// Counts one request, unless the window is full.
    pub(crate) fn add(&mut self, m: Measured) {
        if self.full() {
            return;
        }
        self.took.push(m.took);
        let mut key = (m.method, m.path);
        if !self.paths.contains_key(&key) && self.paths.len() >= PATHS_CAP {
            key = (String::new(), OTHER.to_string());
        }
        let cold = self
            .warm
            .get(&key)
            .is_some_and(|w| crate::cold::is_cold(m.took, *w));
        let stats = self.paths.entry(key).or_default();
        stats.hits += 1;
        stats.first.get_or_insert(m.took);
        stats.cold += u32::from(cold);
        stats
            .status
            .entry(m.status.unwrap_or(0))
            .or_default()
            .push(m.took);
    }

    /// Each path's latencies by status (0: none read), for the histogram.
    pub(crate) fn per_path(&self) -> Vec<(&str, &str, u16, &[Duration])> {
        self.paths
            .iter()
            .flat_map(|((method, path), s)| {
                s.status.iter().map(move |(code, took)| {
                    (method.as_str(), path.as_str(), *code, took.as_slice())
                })
            })
            .collect()
    }

    /// The line, after `gate: `: `first 200 users after open: p50 … | event=first_users …`.
    pub(crate) fn line(&self, dyno: &str, window: Duration) -> String {
        let mut sorted = self.took.clone();
        sorted.sort();
        let (p50, p95, max) = (
            percentile(&sorted, 50),
            percentile(&sorted, 95),
            sorted.last().copied().unwrap_or_default(),
        );
        let label = |(method, path): &(String, String)| {
            if method == "GET" || method.is_empty() {
                path.clone()
            } else {
                format!("{method} {path}")
            }
        };
        let not_warmed: Vec<_> = self
            .paths
            .iter()
            .filter(|(key, _)| !self.warm.contains_key(*key))
            .collect();
        let cold_paths: Vec<_> = self.paths.iter().filter(|(_, s)| s.cold > 0).collect();
        let cold: u32 = self.paths.values().map(|s| s.cold).sum();
        let users = self.took.len();
        let mut text = format!(
            "first {users} {} after open: p50 {} p95 {} max {}; {cold} cold",
            if users == 1 { "user" } else { "users" },
            human(p50),
            human(p95),
            human(max)
        );
        let names = |list: &[(&(String, String), &PathStats)],
                     detail: &dyn Fn(&PathStats) -> String| {
            let mut out: Vec<String> = list
                .iter()
                .take(NAMED)
                .map(|(key, s)| format!("{} ({})", label(key), detail(s)))
                .collect();
            if list.len() > NAMED {
                out.push(format!("and {} more", list.len() - NAMED));
            }
            out.join(", ")
        };
        if !cold_paths.is_empty() {
            let _ = write!(
                text,
                " ({})",
                names(&cold_paths, &|s| format!("{} of {}", s.cold, s.hits))
            );
        }
        if !not_warmed.is_empty() {
            let _ = write!(
                text,
                "; not warmed: {}",
                names(&not_warmed, &|s| format!(
                    "first {}, {} {}",
                    human(s.first.unwrap_or_default()),
                    s.hits,
                    if s.hits == 1 { "hit" } else { "hits" }
                ))
            );
        }
        let join = |list: &[(&(String, String), &PathStats)]| {
            list.iter()
                .map(|(k, _)| label(k))
                .collect::<Vec<_>>()
                .join(",")
        };
        text.push_str(&figures(&[
            ("event", &"first_users"),
            ("dyno", &dyno),
            ("users", &users),
            ("window_ms", &window.as_millis()),
            ("p50_ms", &p50.as_millis()),
            ("p95_ms", &p95.as_millis()),
            ("max_ms", &max.as_millis()),
            ("cold", &cold),
            ("cold_paths", &join(&cold_paths)),
            ("not_warmed", &not_warmed.len()),
            ("not_warmed_paths", &join(&not_warmed)),
        ]));
        text
    }
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// The window shared by every connection. Only [`FirstUsers::watching`] is
/// on the hot path: one atomic load, no lock.
#[derive(Debug)]
pub(crate) struct FirstUsers {
    watching: AtomicBool,
    opened: Instant,
    window: Duration,
    tally: Mutex<Option<Tally>>,
}

impl FirstUsers {
    pub(crate) fn new(limit: u32, window: Duration, warm: WarmFigures, opened: Instant) -> Self {
        Self {
            watching: AtomicBool::new(true),
            opened,
            window,
            tally: Mutex::new(Some(Tally::new(limit, warm))),
        }
    }

    /// Whether a new connection should be watched.
    pub(crate) fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }

    /// Counts what a connection measured.
    pub(crate) fn add(&self, measured: Vec<Measured>) {
        if measured.is_empty() {
            return;
        }
        let Ok(mut guard) = self.tally.lock() else {
            return;
        };
        if let Some(tally) = guard.as_mut() {
            for m in measured {
                tally.add(m);
            }
            if tally.full() {
                self.watching.store(false, Ordering::Relaxed);
            }
        }
    }

    /// The finished window, once: when full, when its time is up at `now`,
    /// or (with `stopping`) early, if any user came.
    pub(crate) fn finished(&self, now: Instant, stopping: bool) -> Option<(Tally, Duration)> {
        let mut guard = self.tally.lock().ok()?;
        let tally = guard.as_ref()?;
        let elapsed = now.saturating_duration_since(self.opened);
        let over = tally.full() || elapsed >= self.window;
        if !(over || stopping && tally.users() > 0) {
            return None;
        }
        self.watching.store(false, Ordering::Relaxed);
        if tally.users() == 0 {
            *guard = None;
            return None;
        }
        guard.take().map(|t| (t, elapsed.min(self.window)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

    #[test]
    fn a_request_is_timed_from_its_first_byte_to_the_first_answer_byte() {
        let t = Instant::now();
        let mut conn = Conn::new();
        assert!(conn.client(b"GET /reports?id=7 HT", at(t, 0)));
        assert!(conn.client(b"TP/1.1\r\nHost: x\r\n\r\n", at(t, 5)));
        assert!(conn.app(b"HTTP/1.1 200 OK\r\nCont", at(t, 40)));
        assert!(conn.app(b"ent-Length: 2\r\n\r\nhi", at(t, 90)));
        assert_eq!(
            conn.take(),
            vec![Measured {
                method: "GET".into(),
                path: "/reports".into(),
                took: Duration::from_millis(40),
                status: Some(200),
            }]
        );
        // Keep-alive: the answer was complete, so the next request is timed too.
        assert!(conn.client(
            b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            at(t, 100)
        ));
        assert!(conn.app(b"HTTP/1.1 204 No Content\r\n\r\n", at(t, 103)));
        assert!(conn.client(b"HEAD / HTTP/1.1\r\n\r\n", at(t, 110)));
        assert!(conn.app(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", at(t, 111)));
        assert!(conn.client(b"GET /b HTTP/1.0\r\n\r\n", at(t, 120)));
        let got: Vec<_> = conn
            .take()
            .into_iter()
            .map(|m| (m.method, m.path, m.took))
            .collect();
        assert_eq!(
            got,
            vec![
                ("POST".into(), "/a".into(), Duration::from_millis(3)),
                ("HEAD".into(), "/".into(), Duration::from_millis(1)),
            ]
        );
    }

    #[test]
    fn pipelined_requests_stop_the_watch_and_count_nothing_unanswered() {
        let t = Instant::now();
        let mut conn = Conn::new();
        assert!(!conn.client(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", t));
        assert!(!conn.app(OK, t));
        assert!(conn.take().is_empty());
        // A request while a body is still flowing back is pipelining too, but the answered one counts.
        let mut conn = Conn::new();
        assert!(conn.client(b"GET /a HTTP/1.1\r\n\r\n", t));
        assert!(conn.app(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhi", at(t, 2)));
        assert!(!conn.client(b"GET /b HTTP/1.1\r\n\r\n", at(t, 3)));
        assert_eq!(conn.take().len(), 1);
    }

    #[test]
    fn an_answer_of_unknown_length_stops_the_watch_at_the_next_request() {
        let t = Instant::now();
        let mut conn = Conn::new();
        assert!(conn.client(b"GET /a HTTP/1.1\r\n\r\n", t));
        assert!(conn.app(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            t
        ));
        assert!(!conn.client(b"GET /b HTTP/1.1\r\n\r\n", t));
        assert_eq!(conn.take().len(), 1);
    }

    #[test]
    fn upgrade_http2_and_garbage_are_not_counted() {
        let t = Instant::now();
        for first in [
            &b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01",
            b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        ] {
            let mut conn = Conn::new();
            assert!(!conn.client(first, t), "{first:?}");
            conn.end();
            assert!(conn.take().is_empty());
        }
        // A 101 to a request that did not say Upgrade still stops the watch.
        let mut conn = Conn::new();
        assert!(conn.client(b"GET / HTTP/1.1\r\n\r\n", t));
        assert!(!conn.app(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", t));
    }

    #[test]
    fn a_head_too_long_stops_the_watch() {
        let mut conn = Conn::new();
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(HEAD_CAP + 10, b'a');
        assert!(!conn.client(&big, Instant::now()));
    }

    #[test]
    fn paths_are_cut_and_their_query_dropped() {
        assert_eq!(clean_path("/a?b=c"), "/a");
        assert_eq!(clean_path("?x"), "/");
        let long = format!("/{}", "é".repeat(300));
        let cut = clean_path(&long);
        assert!(
            cut.len() <= PATH_CAP + "…".len() && cut.ends_with('…'),
            "{cut}"
        );
    }

    fn measured(method: &str, path: &str, ms: u64) -> Measured {
        Measured {
            method: method.into(),
            path: path.into(),
            took: Duration::from_millis(ms),
            status: Some(200),
        }
    }

    #[test]
    fn the_line_counts_cold_and_names_unwarmed_paths() {
        let warm: WarmFigures = [
            (
                ("GET".to_string(), "/".to_string()),
                Duration::from_millis(5),
            ),
            (
                ("GET".to_string(), "/slow".to_string()),
                Duration::from_millis(5),
            ),
        ]
        .into();
        let mut tally = Tally::new(200, warm);
        for ms in [6, 7, 8] {
            tally.add(measured("GET", "/", ms));
        }
        tally.add(measured("GET", "/slow", 80));
        tally.add(measured("GET", "/reports", 940));
        tally.add(measured("POST", "/reports", 30));
        let line = tally.line("web.1", Duration::from_mins(1));
        assert_eq!(
            line,
            "first 6 users after open: p50 8ms p95 940ms max 940ms; 1 cold (/slow (1 of 1)); not warmed: /reports (first 940ms, 1 hit), POST /reports (first 30ms, 1 hit) | event=first_users dyno=web.1 users=6 window_ms=60000 p50_ms=8 p95_ms=940 max_ms=940 cold=1 cold_paths=/slow not_warmed=2 not_warmed_paths=\"/reports,POST /reports\""
        );
        let figures = crate::output::parse_figures(&line).expect("figures");
        assert_eq!(figures[0], ("event".into(), "first_users".into()));
    }

    #[test]
    fn the_window_is_bounded_in_requests_and_paths() {
        let mut tally = Tally::new(150, WarmFigures::new());
        for i in 0..200 {
            tally.add(measured("GET", &format!("/p{i}"), 1));
        }
        assert_eq!(tally.users(), 150);
        assert!(tally.full());
        assert_eq!(tally.paths.len(), PATHS_CAP + 1);
        assert_eq!(tally.paths[&(String::new(), OTHER.to_string())].hits, 50);
    }

    #[test]
    fn the_window_ends_once_full_by_time_or_at_a_stop_with_users() {
        let t = Instant::now();
        let users = FirstUsers::new(2, Duration::from_mins(1), WarmFigures::new(), t);
        assert!(users.finished(at(t, 10), false).is_none());
        users.add(vec![measured("GET", "/", 1)]);
        assert!(users.watching());
        assert!(users.finished(at(t, 10), false).is_none());
        let (tally, window) = users
            .finished(at(t, 20), true)
            .expect("stopping with a user");
        assert_eq!((tally.users(), window), (1, Duration::from_millis(20)));
        assert!(!users.watching());
        assert!(users.finished(at(t, 30), true).is_none(), "only once");

        let users = FirstUsers::new(2, Duration::from_secs(1), WarmFigures::new(), t);
        users.add(vec![measured("GET", "/", 1), measured("GET", "/", 2)]);
        assert!(!users.watching(), "full");
        assert!(users.finished(at(t, 5), false).is_some());

        let users = FirstUsers::new(2, Duration::from_secs(1), WarmFigures::new(), t);
        assert!(
            users.finished(at(t, 1000), false).is_none(),
            "no users, no line"
        );
        assert!(!users.watching());
    }
}
