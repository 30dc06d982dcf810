//! Dyno state in one pass: each dyno's latest boot (`State changed from
//! starting to up`), the requests in the window after it (kept, capped, to be
//! judged once steady is known), and the requests outside every window (folded
//! into each path's steady histogram). Everything here is capped, so memory
//! does not grow with the input.

use super::steady::Histogram;
use std::collections::HashMap;

/// Boots kept (later ones are still windows, but their requests are not kept).
pub(crate) const MAX_BOOTS: usize = 2_000;
/// Requests kept per boot window.
pub(crate) const MAX_SAMPLES: usize = 500;
/// Distinct paths kept; later new paths are counted, not judged.
pub(crate) const MAX_PATHS: usize = 2_000;
/// Dynos tracked (Fir names a new dyno at every boot).
pub(crate) const MAX_DYNOS: usize = 8_192;
/// preheat lines kept per boot, and pending per dyno.
pub(crate) const MAX_EVENTS: usize = 8;

/// One of preheat's own summary lines.
#[derive(Debug, Clone)]
pub(crate) struct OwnLine {
    pub(crate) at_ms: i64,
    pub(crate) event: String,
    pub(crate) figures: Vec<(String, String)>,
}

#[derive(Default)]
pub(crate) struct Boot {
    pub(crate) dyno: String,
    pub(crate) up_ms: i64,
    pub(crate) users: u64,
    /// (path index, service ms).
    pub(crate) samples: Vec<(u32, u64)>,
    pub(crate) samples_dropped: u64,
    /// Users whose path was left out (asset, personal id, too many paths).
    pub(crate) left_out: u64,
    pub(crate) errors: Vec<(String, u64)>,
    pub(crate) own: Vec<OwnLine>,
}

pub(crate) struct Path {
    pub(crate) key: String,
    pub(crate) get: bool,
    pub(crate) steady: Histogram,
}

enum Window {
    /// In the window of this kept boot.
    Boot(usize),
    /// In the window of a boot past the cap.
    NotKept,
    Outside,
}

#[derive(Default)]
struct Dyno {
    up_ms: Option<i64>,
    boot: Option<usize>,
    pending: Vec<OwnLine>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) boots: Vec<Boot>,
    pub(crate) paths: Vec<Path>,
    index: HashMap<String, u32>,
    dynos: HashMap<String, Dyno>,
    pub(crate) boots_dropped: u64,
    pub(crate) paths_dropped: u64,
    pub(crate) dynos_dropped: u64,
    /// preheat lines that matched no boot (release dyno, await-live, overflow).
    pub(crate) unplaced: Vec<OwnLine>,
    pub(crate) unplaced_dropped: u64,
}

impl State {
    fn dyno(&mut self, name: &str) -> Option<&mut Dyno> {
        if !self.dynos.contains_key(name) {
            if self.dynos.len() >= MAX_DYNOS {
                self.dynos_dropped += 1;
                return None;
            }
            self.dynos.insert(name.to_string(), Dyno::default());
        }
        self.dynos.get_mut(name)
    }

    pub(crate) fn up(&mut self, dyno: &str, at_ms: i64) {
        let boot = if self.boots.len() < MAX_BOOTS {
            Some(self.boots.len())
        } else {
            self.boots_dropped += 1;
            None
        };
        let Some(state) = self.dyno(dyno) else {
            return;
        };
        state.up_ms = Some(at_ms);
        state.boot = boot;
        let own = std::mem::take(&mut state.pending);
        if boot.is_some() {
            self.boots.push(Boot {
                dyno: dyno.to_string(),
                up_ms: at_ms,
                own,
                ..Boot::default()
            });
        }
    }

    /// Where `at_ms` on `dyno` falls.
    fn window(&self, dyno: &str, at_ms: i64, window_ms: i64) -> Window {
        let Some(state) = self.dynos.get(dyno) else {
            return Window::Outside;
        };
        match state.up_ms {
            Some(up) if at_ms >= up && at_ms - up <= window_ms => {
                state.boot.map_or(Window::NotKept, Window::Boot)
            }
            _ => Window::Outside,
        }
    }

    fn path(&mut self, key: &str, get: bool) -> Option<u32> {
        let full;
        let key = if get {
            key
        } else {
            full = format!("(not GET) {key}");
            &full
        };
        if let Some(&i) = self.index.get(key) {
            return Some(i);
        }
        if self.paths.len() >= MAX_PATHS {
            self.paths_dropped += 1;
            return None;
        }
        let i = u32::try_from(self.paths.len()).ok()?;
        self.paths.push(Path {
            key: key.to_string(),
            get,
            steady: Histogram::default(),
        });
        self.index.insert(key.to_string(), i);
        Some(i)
    }

    /// A user's request. `page` is `None` for a path left out.
    pub(crate) fn request(
        &mut self,
        dyno: &str,
        at_ms: i64,
        window_ms: i64,
        page: Option<(&str, bool)>,
        service_ms: u64,
    ) {
        let window = self.window(dyno, at_ms, window_ms);
        let path = page.and_then(|(key, get)| self.path(key, get));
        match window {
            Window::Boot(b) => {
                let boot = &mut self.boots[b];
                boot.users += 1;
                match path {
                    Some(p) if boot.samples.len() < MAX_SAMPLES => {
                        boot.samples.push((p, service_ms));
                    }
                    Some(_) => boot.samples_dropped += 1,
                    None => boot.left_out += 1,
                }
            }
            Window::NotKept => {}
            Window::Outside => {
                if let Some(p) = path {
                    self.paths[p as usize].steady.add(service_ms);
                }
            }
        }
    }

    /// A router error (H12, H13, …) on `dyno`; true when it fell in a window.
    pub(crate) fn error(&mut self, dyno: &str, at_ms: i64, window_ms: i64, code: &str) -> bool {
        let Window::Boot(b) = self.window(dyno, at_ms, window_ms) else {
            return false;
        };
        let boot = &mut self.boots[b];
        boot.users += 1;
        tally(&mut boot.errors, code, 16);
        true
    }

    /// One of preheat's lines: beside the boot whose window holds it, else
    /// held for the dyno's next boot (the warm-up runs before the dyno is up).
    pub(crate) fn own(&mut self, dyno: &str, line: OwnLine, window_ms: i64) {
        if let Window::Boot(b) = self.window(dyno, line.at_ms, window_ms) {
            let own = &mut self.boots[b].own;
            if own.len() < MAX_EVENTS {
                own.push(line);
            }
            return;
        }
        let event = line.event.clone();
        let hold = matches!(event.as_str(), "warmup" | "gate_open" | "first_users");
        if hold && let Some(state) = self.dyno(dyno) {
            if state.pending.len() < MAX_EVENTS {
                state.pending.push(line);
            }
            return;
        }
        if self.unplaced.len() < MAX_EVENTS * 4 {
            self.unplaced.push(line);
        } else {
            self.unplaced_dropped += 1;
        }
    }

    /// Held lines that no boot came for.
    pub(crate) fn finish(&mut self) {
        let mut left: Vec<OwnLine> = self
            .dynos
            .values_mut()
            .flat_map(|d| std::mem::take(&mut d.pending))
            .collect();
        left.sort_by_key(|l| l.at_ms);
        for line in left {
            if self.unplaced.len() < MAX_EVENTS * 4 {
                self.unplaced.push(line);
            } else {
                self.unplaced_dropped += 1;
            }
        }
    }
}

/// Adds one to `code`'s count, keeping at most `cap` codes.
pub(crate) fn tally(counts: &mut Vec<(String, u64)>, code: &str, cap: usize) {
    if let Some((_, n)) = counts.iter_mut().find(|(c, _)| c == code) {
        *n += 1;
    } else if counts.len() < cap {
        counts.push((code.to_string(), 1));
    }
}
