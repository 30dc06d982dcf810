//! Judging, once the whole log is read and every path's steady figure is
//! known: which users in each boot window were cold, and what each path cost.

use super::boots::State;
use super::steady::MIN_SAMPLES;
use crate::cold::is_cold;
use std::time::Duration;

pub(crate) struct BootFinding {
    pub(crate) index: usize,
    pub(crate) users: u64,
    pub(crate) cold: u64,
    /// Users on a path with too few steady samples.
    pub(crate) unjudged: u64,
    /// The slowest kept request: (path index, service ms).
    pub(crate) slowest: Option<(u32, u64)>,
    pub(crate) errors: u64,
}

#[derive(Clone)]
pub(crate) struct PathFinding {
    pub(crate) index: u32,
    pub(crate) steady_ms: Option<u64>,
    pub(crate) steady_samples: u64,
    pub(crate) window_hits: u64,
    pub(crate) cold: u64,
    pub(crate) lost_ms: u64,
    pub(crate) worst_ms: u64,
    pub(crate) in_warmup: bool,
}

pub(crate) struct Findings {
    pub(crate) boots: Vec<BootFinding>,
    /// Paths seen in a boot window, those that cost most first.
    pub(crate) paths: Vec<PathFinding>,
    pub(crate) cold_users: u64,
    /// `[warmup] paths` to paste: the current ones, then the missing costly GETs.
    pub(crate) suggested: Vec<String>,
}

/// How many missing paths the suggestion adds at most.
pub(crate) const MAX_SUGGESTED: usize = 10;

pub(crate) fn judge(state: &State, warmup_paths: &[String]) -> Findings {
    let steady: Vec<Option<u64>> = state.paths.iter().map(|p| p.steady.median()).collect();
    let mut paths: Vec<PathFinding> = state
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| PathFinding {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            steady_ms: steady[i],
            steady_samples: p.steady.count(),
            window_hits: 0,
            cold: 0,
            lost_ms: 0,
            worst_ms: 0,
            in_warmup: p.get && warmup_paths.iter().any(|w| w == &p.key),
        })
        .collect();
    let mut boots = Vec::with_capacity(state.boots.len());
    let mut cold_users = 0;
    for (index, boot) in state.boots.iter().enumerate() {
        let mut finding = BootFinding {
            index,
            users: boot.users,
            cold: 0,
            unjudged: 0,
            slowest: None,
            errors: boot.errors.iter().map(|(_, n)| n).sum(),
        };
        for &(p, service) in &boot.samples {
            let path = &mut paths[p as usize];
            path.window_hits += 1;
            path.worst_ms = path.worst_ms.max(service);
            if finding.slowest.is_none_or(|(_, s)| service > s) {
                finding.slowest = Some((p, service));
            }
            match path.steady_ms {
                Some(warm)
                    if is_cold(Duration::from_millis(service), Duration::from_millis(warm)) =>
                {
                    finding.cold += 1;
                    path.cold += 1;
                    path.lost_ms += service - warm;
                }
                Some(_) => {}
                None => finding.unjudged += 1,
            }
        }
        cold_users += finding.cold;
        boots.push(finding);
    }
    paths.retain(|p| p.window_hits > 0);
    paths.sort_by(|a, b| {
        b.lost_ms
            .cmp(&a.lost_ms)
            .then(b.window_hits.cmp(&a.window_hits))
            .then_with(|| {
                state.paths[a.index as usize]
                    .key
                    .cmp(&state.paths[b.index as usize].key)
            })
    });
    let mut suggested: Vec<String> = warmup_paths.to_vec();
    let missing = paths
        .iter()
        .filter(|p| p.cold > 0 && !p.in_warmup && state.paths[p.index as usize].get)
        .take(MAX_SUGGESTED);
    for p in missing {
        suggested.push(state.paths[p.index as usize].key.clone());
    }
    Findings {
        boots,
        paths,
        cold_users,
        suggested,
    }
}

/// The minimum in words, for the report.
pub(crate) fn min_samples() -> u64 {
    MIN_SAMPLES
}
