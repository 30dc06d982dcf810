//! Generated inputs (docs/hostile-input.md): no panic and no hang on any
//! bytes, on router-shaped lines, and on mangled fixture lines.

use super::Audit;
use super::analysis::judge;
use crate::fuzz::{Tally, bounded, runner};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::fmt::Write as _;
use std::time::Duration;

static BYTES: Tally = Tally::new("audit, any bytes");
static LOGS: Tally = Tally::new("audit, router-shaped logs cut anywhere, and framed");

fn run(bytes: Vec<u8>, tally: &Tally) -> Result<(), TestCaseError> {
    tally.add();
    let (cold, router) = bounded("audit", move || {
        let mut audit = Audit::new(Duration::from_mins(1), super::DEFAULT_ASSETS);
        audit
            .read(&mut std::io::BufReader::with_capacity(512, &bytes[..]))
            .expect("a slice never fails");
        let found = judge(&audit.state, &["/".to_string()]);
        (found.cold_users, audit.counts.router)
    });
    prop_assert!(cold <= router, "{cold} cold of {router} requests");
    Ok(())
}

fn router_line() -> impl Strategy<Value = String> {
    (
        0u32..3600,
        prop::sample::select(vec!["GET", "POST", "", "G\u{e9}T"]),
        "[/a-z0-9?=&.@%-]{0,40}",
        prop::sample::select(vec!["web.1", "web.2", "web-12a34b56d-e78f9", ""]),
        0u64..100_000,
        prop::sample::select(vec!["info", "error", "warning"]),
        prop::sample::select(vec!["", "code=H12 ", "code=H13 "]),
    )
        .prop_map(|(s, method, path, dyno, ms, at, code)| {
            format!(
                "2026-03-01T12:{:02}:{:02}.000000+00:00 heroku[router]: at={at} {code}method={method} path=\"{path}\" request_id=r dyno={dyno} connect=0ms service={ms}ms status=200",
                s / 60 % 60,
                s % 60
            )
        })
}

fn state_line() -> impl Strategy<Value = String> {
    (
        0u32..3600,
        prop::sample::select(vec!["web.1", "web.2", "web-12a34b56d-e78f9"]),
    )
        .prop_map(|(s, dyno)| {
            format!(
                "2026-03-01T12:{:02}:{:02}+00:00 heroku[{dyno}]: State changed from starting to up",
                s / 60 % 60,
                s % 60
            )
        })
}

#[test]
fn any_bytes() {
    let strategy = prop::collection::vec(any::<u8>(), 0..4096);
    let result = runner(2_000).run(&strategy, |bytes| run(bytes, &BYTES));
    assert!(result.is_ok(), "{result:?}");
    BYTES.report();
}

#[test]
fn router_shaped_logs_cut_anywhere() {
    let lines = prop::collection::vec(prop_oneof![router_line(), state_line()], 0..60);
    let strategy = (lines, any::<prop::sample::Index>());
    let result = runner(1_000).run(&strategy, |(lines, cut)| {
        let text = lines.join("\n");
        let end = cut.index(text.len() + 1);
        run(text.as_bytes()[..end].to_vec(), &LOGS)?;
        // The same lines, octet-counted as a drain frames them.
        let mut framed = String::new();
        for l in &lines {
            let _ = write!(framed, "{} <158>1 {l}", l.len() + 7);
        }
        run(framed.into_bytes(), &LOGS)
    });
    assert!(result.is_ok(), "{result:?}");
    LOGS.report();
}
