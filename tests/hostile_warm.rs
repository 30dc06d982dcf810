//! Hostile servers against the warmer (`preheat warm`) and the gate
//! (`preheat gate -- CMD`), the two pieces that run beside every web process:
//! each scenario ends within its deadline with a clear line, the warmer's
//! anonymous memory stays ≤ 8 MB, and the gate keeps serving other
//! connections. `-- --nocapture` prints the figures of docs/hostile-input.md.

#![allow(unused_crate_dependencies)]

mod support;

use std::time::Duration;
use support::hostile::{Hostile, HostileServer, each_scenario, measure, report};
use support::{app, preheat};

/// What the warmer may allocate, whatever the app sends (issue 16). The debug
/// binary maps ~12 MB of its own code on top; that part does not grow.
const MAX_ANON_MB: f64 = 8.0;
/// The whole peak of the debug binary.
const MAX_TOTAL_MB: f64 = 24.0;

fn scenarios() -> Vec<(Hostile, u16)> {
    let mut list: Vec<(Hostile, u16)> = Hostile::ALL.iter().map(|&h| (h, 200)).collect();
    list.push((Hostile::EndlessBody, 503));
    list.push((Hostile::HundredMegabytes, 503));
    list
}

#[test]
fn the_warmer_ends_on_time_in_8_mb_whatever_the_app_sends() {
    let results = each_scenario(&scenarios(), |server: &HostileServer| {
        let dir = app(&[(
            "preheat.toml",
            "[warmup]\npaths = [\"/\", \"/next\"]\ndeadline = \"4s\"\nmax_rounds = 2\n",
        )]);
        let mut command = preheat();
        command
            .arg("warm")
            .env_remove("WEB_CONCURRENCY")
            .env_remove("PORT")
            .arg("--dir")
            .arg(dir.path());
        if server.scenario == Hostile::PlainHttpOnTls {
            command.args(["--url", &server.url("/")]);
        } else {
            command.args(["--port", &server.port.to_string()]);
        }
        measure(&command, Duration::from_secs(30))
    });
    report("preheat warm", &results);
    for (scenario, status, measured, _) in &results {
        let (name, out) = (scenario.name(), &measured.output);
        assert!(
            measured.elapsed < Duration::from_secs(12),
            "{name} ({status}) took {:?}:\n{out}",
            measured.elapsed
        );
        assert!(!out.contains("panicked"), "{name} ({status}):\n{out}");
        assert!(
            measured.peak_rss_mb() <= MAX_TOTAL_MB,
            "{name} ({status}) peaked at {:.1} MB:\n{out}",
            measured.peak_rss_mb()
        );
        #[allow(clippy::cast_precision_loss)]
        let anon_mb = measured.peak_anon_kb as f64 / 1024.0;
        assert!(
            anon_mb <= MAX_ANON_MB,
            "{name} ({status}) used {anon_mb:.1} MB of anonymous memory:\n{out}"
        );
        // A 200 whose body it does not need is warm (the status is all it
        // reads), and so is a 302: the warmer never follows redirects, and
        // 3xx counts by default. Every other case says what went wrong.
        let warm = *scenario == Hostile::RedirectLoop
            || (*status == 200
                && matches!(
                    scenario,
                    Hostile::EndlessBody | Hostile::HundredMegabytes | Hostile::ResetMidBody
                ));
        if warm {
            assert_eq!(measured.code, Some(0), "{name} ({status}):\n{out}");
        } else {
            assert_eq!(measured.code, Some(1), "{name} ({status}):\n{out}");
            assert!(out.contains("NOT warm"), "{name} ({status}):\n{out}");
        }
        let verdict = out
            .lines()
            .find(|l| l.contains(" ×") || l.contains("NOT warm"))
            .unwrap_or_default();
        println!(
            "hostile: warm line for {name} ({status}): {}",
            verdict.trim()
        );
    }
}
