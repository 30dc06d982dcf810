//! `--json FILE`: every figure of the report (schema in docs/audit.md).

use super::Audit;
use super::analysis::{Findings, min_samples};
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) fn to_json(audit: &Audit, findings: &Findings, window: Duration) -> Value {
    let c = &audit.counts;
    let state = &audit.state;
    let key = |p: u32| state.paths[p as usize].key.clone();
    let own = |lines: &[super::boots::OwnLine]| -> Vec<Value> {
        lines
            .iter()
            .map(|l| {
                let figures: serde_json::Map<String, Value> = l
                    .figures
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                json!({"at_ms": l.at_ms, "event": l.event, "figures": figures})
            })
            .collect()
    };
    let boots: Vec<Value> = findings
        .boots
        .iter()
        .map(|b| {
            let boot = &state.boots[b.index];
            json!({
                "dyno": boot.dyno,
                "up_at_ms": boot.up_ms,
                "users": b.users,
                "cold": b.cold,
                "unjudged": b.unjudged,
                "slowest": b.slowest.map(|(p, ms)| json!({"path": key(p), "service_ms": ms})),
                "router_errors": boot.errors.iter().map(|(code, n)| json!({"code": code, "count": n})).collect::<Vec<_>>(),
                "samples_dropped": boot.samples_dropped,
                "left_out": boot.left_out,
                "preheat": own(&boot.own),
            })
        })
        .collect();
    let paths: Vec<Value> = findings
        .paths
        .iter()
        .map(|p| {
            json!({
                "path": key(p.index),
                "get": state.paths[p.index as usize].get,
                "in_warmup": p.in_warmup,
                "steady_ms": p.steady_ms,
                "steady_samples": p.steady_samples,
                "window_hits": p.window_hits,
                "cold": p.cold,
                "lost_ms": p.lost_ms,
                "worst_ms": p.worst_ms,
            })
        })
        .collect();
    json!({
        "window_ms": u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        "min_steady_samples": min_samples(),
        "lines": {
            "read": c.records,
            "router": c.router,
            "router_errors": c.router_errors,
            "boots": c.boots,
            "preheat_lines": c.own_lines,
            "preheat_requests": c.own_requests,
            "other": c.other,
            "malformed": c.malformed,
            "not_utf8": c.not_utf8,
            "too_long": c.too_long,
        },
        "router_errors": c.router_errors_by_code.iter().map(|(code, n)| json!({"code": code, "count": n})).collect::<Vec<_>>(),
        "left_out": {
            "not_get": c.not_get,
            "assets": c.assets,
            "personal": c.personal,
            "paths_past_cap": state.paths_dropped,
            "boots_past_cap": state.boots_dropped,
            "dynos_past_cap": state.dynos_dropped,
        },
        "boots": boots,
        "paths": paths,
        "cold_users": findings.cold_users,
        "suggested_paths": findings.suggested,
        "preheat_lines_beside_no_boot": own(&state.unplaced),
    })
}
