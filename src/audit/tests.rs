//! Known answers on the fixture log (tests/fixtures/audit/heroku.log, in the
//! documented formats), with garbage, a 1 MB line and invalid UTF-8 spliced in.

use super::Audit;
use super::analysis::judge;
use std::time::Duration;

const FIXTURE: &str = include_str!("../../tests/fixtures/audit/heroku.log");

fn audit(input: &[u8]) -> Audit {
    let mut audit = Audit::new(Duration::from_mins(1), super::DEFAULT_ASSETS);
    audit
        .read(&mut std::io::BufReader::with_capacity(4096, input))
        .expect("a slice never fails");
    audit
}

fn hostile() -> Vec<u8> {
    let mut input = Vec::new();
    for (i, line) in FIXTURE.lines().enumerate() {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
        if i == 5 {
            input.extend(std::iter::repeat_n(b'x', 1 << 20));
            input.push(b'\n');
            input.extend_from_slice(b"2026-03-01T12:00:05+00:00 app[web.1]: caf\xe9 \xff\xfe\n");
            input.extend_from_slice(b"\0\0\0 binary \x01\x02\n");
        }
    }
    input
}

#[test]
fn cold_counts_per_boot_the_ranking_and_the_suggestion() {
    let audit = audit(&hostile());
    let c = &audit.counts;
    assert_eq!((c.too_long, c.not_utf8), (1, 1));
    assert_eq!(c.malformed, 3, "{c:?}");
    assert_eq!((c.boots, c.own_lines, c.own_requests), (3, 4, 2));
    assert_eq!((c.not_get, c.assets, c.personal), (1, 1, 1));
    assert_eq!(c.router_errors_by_code, vec![("H12".to_string(), 1)]);
    let found = judge(&audit.state, &["/".to_string()]);
    let boots: Vec<(&str, u64, u64, u64, u64)> = found
        .boots
        .iter()
        .map(|b| {
            let boot = &audit.state.boots[b.index];
            (boot.dyno.as_str(), b.users, b.cold, b.unjudged, b.errors)
        })
        .collect();
    assert_eq!(
        boots,
        vec![
            ("web.1", 7, 1, 1, 1),
            ("web-12a34b56d-e78f9", 2, 2, 0, 0),
            ("web.1", 3, 1, 1, 0),
        ]
    );
    // The warm-up verdicts sit beside the boots they came before.
    let events: Vec<Vec<&str>> = audit
        .state
        .boots
        .iter()
        .map(|b| b.own.iter().map(|o| o.event.as_str()).collect())
        .collect();
    assert_eq!(
        events,
        vec![vec!["warmup", "first_users"], vec![], vec!["warmup"]]
    );
    assert_eq!(audit.state.unplaced.len(), 1);
    let ranked: Vec<(&str, u64, u64, bool)> = found
        .paths
        .iter()
        .filter(|p| p.cold > 0)
        .map(|p| {
            let key = audit.state.paths[p.index as usize].key.as_str();
            (key, p.cold, p.lost_ms, p.in_warmup)
        })
        .collect();
    assert_eq!(
        ranked,
        vec![
            ("/reports", 2, 1460 + 760, false),
            ("/search", 1, 870, false),
            ("/", 1, 290, true),
        ]
    );
    assert_eq!(found.cold_users, 4);
    assert_eq!(found.suggested, vec!["/", "/reports", "/search"]);
    let rare = found
        .paths
        .iter()
        .find(|p| audit.state.paths[p.index as usize].key == "/rare")
        .expect("/rare was seen");
    assert_eq!((rare.steady_ms, rare.steady_samples), (None, 2));
}

#[test]
fn preheat_requests_never_reach_steady_or_a_window() {
    let audit = audit(FIXTURE.as_bytes());
    let reports = audit
        .state
        .paths
        .iter()
        .find(|p| p.key == "/reports")
        .expect("seen");
    // Six from web.2 at 40 ms; preheat's 41 ms request is not among them.
    assert_eq!(reports.steady.count(), 6);
}

#[test]
fn a_log_without_boots_or_router_lines_judges_nothing() {
    let audit = audit(b"2026-03-01T12:00:00+00:00 app[web.1]: hello\n\xff\n");
    assert_eq!(audit.counts.router, 0);
    let found = judge(&audit.state, &[]);
    assert_eq!(found.cold_users, 0);
    assert!(found.suggested.is_empty());
}

#[test]
fn a_narrower_window_judges_fewer_users() {
    let mut narrow = Audit::new(Duration::from_secs(2), super::DEFAULT_ASSETS);
    narrow
        .read(&mut FIXTURE.as_bytes())
        .expect("a slice never fails");
    let found = judge(&narrow.state, &[]);
    let users: Vec<u64> = found.boots.iter().map(|b| b.users).collect();
    assert_eq!(users, vec![2, 2, 2]);
}
