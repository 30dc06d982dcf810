//! The report, in the Heroku CLI style of the other commands, within 80 columns.

use super::Audit;
use super::analysis::{Findings, min_samples};
use super::boots::OwnLine;
use crate::output;
use std::fmt::Write as _;
use std::time::Duration;

/// Boots and paths printed at most; `--json` has all.
const SHOWN: usize = 20;

pub(crate) fn print(audit: &Audit, findings: &Findings, window: Duration) {
    let c = &audit.counts;
    let state = &audit.state;
    output::bullet(&format!(
        "Read {} lines: {} router requests, {} boot lines, {} preheat lines",
        c.records, c.router, c.boots, c.own_lines
    ));
    let skipped = c.malformed + c.not_utf8 + c.too_long;
    if skipped > 0 {
        output::sub_bullet(&format!(
            "skipped {skipped}: {} malformed, {} not UTF-8, {} too long",
            c.malformed, c.not_utf8, c.too_long
        ));
    }
    if c.own_requests > 0 {
        output::sub_bullet(&format!(
            "left out {} of preheat's own requests (request_id=preheat-…)",
            c.own_requests
        ));
    }
    if c.router == 0 {
        output::warning(
            "No router lines in this log. Get them with `heroku logs --source heroku -n 1500 -a APP`, or from a log drain.",
        );
        return;
    }
    let secs = window.as_secs();
    output::bullet(&format!(
        "Users in the first {secs}s after each boot (cold: against the path's steady)"
    ));
    if findings.boots.is_empty() {
        output::sub_bullet(
            "no `State changed from starting to up` line: no boot to judge (get the dyno lines with `--source heroku`)",
        );
    }
    // Boots with cold users first (then in log order), at most SHOWN of them.
    let mut order: Vec<&super::analysis::BootFinding> = findings.boots.iter().collect();
    if order.len() > SHOWN {
        order.sort_by_key(|b| (std::cmp::Reverse(b.cold), b.index));
        order.truncate(SHOWN);
        order.sort_by_key(|b| b.index);
    }
    for boot in order {
        let b = &state.boots[boot.index];
        let mut line = format!(
            "{} up {}: {} users, {} cold",
            b.dyno,
            clock(b.up_ms),
            boot.users,
            boot.cold
        );
        if boot.unjudged > 0 {
            let _ = write!(line, ", {} unjudged", boot.unjudged);
        }
        output::sub_bullet(&line);
        let mut detail = Vec::new();
        if let Some((p, ms)) = boot.slowest {
            detail.push(format!("slowest {} {ms}ms", state.paths[p as usize].key));
        }
        if boot.errors > 0 {
            let codes: Vec<String> = b.errors.iter().map(|(c, n)| format!("{n} {c}")).collect();
            detail.push(format!("router errors: {}", codes.join(", ")));
        }
        if !detail.is_empty() {
            output::sub_bullet(&format!("  ↳ {}", detail.join("; ")));
        }
        for own in &b.own {
            output::sub_bullet(&format!("  ↳ preheat {}", own_summary(own)));
        }
    }
    if findings.boots.len() > SHOWN {
        output::sub_bullet(&format!(
            "… {} more boots (the {SHOWN} shown have the most cold users; all in --json)",
            findings.boots.len() - SHOWN
        ));
    }
    if state.boots_dropped > 0 {
        output::sub_bullet(&format!(
            "{} more boots not kept (at most {} are)",
            state.boots_dropped,
            super::boots::MAX_BOOTS
        ));
    }
    if !state.unplaced.is_empty() {
        output::sub_bullet("preheat lines beside no boot:");
        for own in &state.unplaced {
            output::sub_bullet(&format!("  ↳ preheat {}", own_summary(own)));
        }
    }
    print_paths(audit, findings);
}

fn print_paths(audit: &Audit, findings: &Findings) {
    let c = &audit.counts;
    let state = &audit.state;
    output::bullet("Paths users waited on, by time lost to cold answers");
    let mut shown = 0;
    for p in &findings.paths {
        let path = &state.paths[p.index as usize];
        let marked = if p.in_warmup {
            "in [warmup]"
        } else {
            "not in [warmup]"
        };
        let line = match p.steady_ms {
            Some(steady) if p.cold > 0 => format!(
                "{}: {} of {} cold, {} lost, worst {}ms, steady {steady}ms; {marked}",
                path.key,
                p.cold,
                p.window_hits,
                human(p.lost_ms),
                p.worst_ms
            ),
            Some(steady) => format!(
                "{}: {} warm, steady {steady}ms; {marked}",
                path.key, p.window_hits
            ),
            None => format!(
                "{}: {} unjudged, {} steady samples (needs {}); {marked}",
                path.key,
                p.window_hits,
                p.steady_samples,
                min_samples()
            ),
        };
        output::sub_bullet(&line);
        shown += 1;
        if shown == 20 && findings.paths.len() > 20 {
            output::sub_bullet(&format!(
                "… {} more (all in --json)",
                findings.paths.len() - 20
            ));
            break;
        }
    }
    let mut left_out = Vec::new();
    if c.not_get > 0 {
        left_out.push(format!(
            "{} non-GET requests (ranked above, never suggested)",
            c.not_get
        ));
    }
    if c.assets > 0 {
        left_out.push(format!("{} assets", c.assets));
    }
    if c.personal > 0 {
        left_out.push(format!("{} with ids that look personal", c.personal));
    }
    if state.paths_dropped > 0 {
        left_out.push(format!(
            "{} past the {}-path cap",
            state.paths_dropped,
            super::boots::MAX_PATHS
        ));
    }
    if !left_out.is_empty() {
        output::sub_bullet("left out:");
        for what in &left_out {
            output::sub_bullet(&format!("  ↳ {what}"));
        }
    }
    if findings.cold_users == 0 {
        output::bullet("No user was cold");
        return;
    }
    let quoted: Vec<String> = findings
        .suggested
        .iter()
        .map(|p| format!("{p:?}"))
        .collect();
    let who = if findings.cold_users == 1 {
        "1 user was".to_string()
    } else {
        format!("{} users were", findings.cold_users)
    };
    output::bullet(&format!(
        "{who} cold. Warm these (preheat.toml):\n\n    [warmup]\n    paths = [{}]\n",
        quoted.join(", ")
    ));
}

/// `warmup` `duration_ms=1600 rounds=2` in a short form.
fn own_summary(own: &OwnLine) -> String {
    let figures: Vec<String> = own
        .figures
        .iter()
        .filter(|(k, _)| k != "event" && k != "dyno")
        .take(4)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{} {} {}", clock(own.at_ms), own.event, figures.join(" "))
}

/// `12:00:03` UTC.
pub(crate) fn clock(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

fn human(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{}.{}s", ms / 1000, ms % 1000 / 100)
    } else {
        format!("{ms}ms")
    }
}
