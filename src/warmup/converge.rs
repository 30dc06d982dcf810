//! When the warm-up may stop: a round proves every worker warm once, for every
//! path, its slowest request is within `max(2 × fastest, fastest + 25 ms)` of
//! the fastest request seen for that path in any round so far (`crate::cold`).
//!
//! The fastest is the best estimate of a warm answer. A round is never judged
//! by its own median: when every request in it was cold, it looks uniform.
//! The first round is never judged: there is nothing warm to compare with yet.

use std::time::Duration;

use crate::cold::warm_bound;

/// How one round went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judgement {
    /// Every path answered warm on every request.
    Converged,
    /// A path still had a slow request: its slowest, and the fastest seen.
    Slow {
        label: String,
        slowest: Duration,
        fastest: Duration,
    },
    /// A path had a request that failed its check.
    Failed { label: String },
    /// Only the first round ran.
    Unjudged,
}

/// One request's outcome, as far as convergence cares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) ok: bool,
    pub(crate) took: Duration,
}

/// The fastest successful request seen per path, across rounds.
pub(crate) struct Fastest(Vec<Option<Duration>>);

impl Fastest {
    pub(crate) fn new(paths: usize) -> Self {
        Self(vec![None; paths])
    }

    /// Records a whole round, one `(label, samples)` per path in order, then
    /// judges it against the fastest seen (this round included).
    pub(crate) fn judge(&mut self, round: u32, paths: &[(String, Vec<Sample>)]) -> Judgement {
        for (best, (_, samples)) in self.0.iter_mut().zip(paths) {
            for sample in samples.iter().filter(|s| s.ok) {
                *best = Some(best.map_or(sample.took, |b| b.min(sample.took)));
            }
        }
        if round < 2 {
            return Judgement::Unjudged;
        }
        let mut worst: Option<Judgement> = None;
        let mut worst_ratio = 0.0_f64;
        for (best, (label, samples)) in self.0.iter().zip(paths) {
            if samples.is_empty() || samples.iter().any(|s| !s.ok) {
                return Judgement::Failed {
                    label: label.clone(),
                };
            }
            let (Some(fastest), Some(slowest)) = (*best, samples.iter().map(|s| s.took).max())
            else {
                continue;
            };
            let bound = warm_bound(fastest);
            if slowest > bound {
                let ratio = slowest.as_secs_f64() / bound.as_secs_f64().max(f64::EPSILON);
                if ratio > worst_ratio {
                    worst_ratio = ratio;
                    worst = Some(Judgement::Slow {
                        label: label.clone(),
                        slowest,
                        fastest,
                    });
                }
            }
        }
        worst.unwrap_or(Judgement::Converged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Sample> {
        values
            .iter()
            .map(|&v| Sample {
                ok: true,
                took: Duration::from_millis(v),
            })
            .collect()
    }

    fn round(fastest: &mut Fastest, number: u32, samples: &[&[u64]]) -> Judgement {
        let paths: Vec<(String, Vec<Sample>)> = samples
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("/p{i}"), ms(v)))
            .collect();
        fastest.judge(number, &paths)
    }

    #[test]
    fn the_first_round_is_never_judged_even_when_uniform() {
        let mut fastest = Fastest::new(1);
        assert_eq!(
            round(&mut fastest, 1, &[&[10, 10, 10, 10]]),
            Judgement::Unjudged
        );
    }

    #[test]
    fn a_cold_worker_in_the_first_round_then_all_warm_converges_in_the_second() {
        let mut fastest = Fastest::new(2);
        round(&mut fastest, 1, &[&[150, 152, 151, 9], &[300, 12, 11, 10]]);
        assert_eq!(
            round(&mut fastest, 2, &[&[10, 11, 9, 12], &[12, 10, 11, 13]]),
            Judgement::Converged
        );
    }

    #[test]
    fn an_all_cold_round_is_judged_against_the_fastest_seen_not_its_median() {
        let mut fastest = Fastest::new(1);
        round(&mut fastest, 1, &[&[10, 10, 10, 10]]);
        // Uniform, so a median rule would pass it; every request was cold.
        assert_eq!(
            round(&mut fastest, 2, &[&[150, 151, 150, 152]]),
            Judgement::Slow {
                label: "/p0".to_string(),
                slowest: Duration::from_millis(152),
                fastest: Duration::from_millis(10),
            }
        );
    }

    #[test]
    fn one_cold_worker_keeps_the_round_from_converging_and_names_the_worst_path() {
        let mut fastest = Fastest::new(2);
        round(&mut fastest, 1, &[&[10, 10], &[20, 20]]);
        let judged = round(&mut fastest, 2, &[&[10, 40], &[20, 400]]);
        assert!(
            matches!(&judged, Judgement::Slow { label, .. } if label == "/p1"),
            "{judged:?}"
        );
    }

    #[test]
    fn a_failed_request_or_an_empty_path_is_not_converged() {
        let mut fastest = Fastest::new(1);
        round(&mut fastest, 1, &[&[10]]);
        let failed = vec![(
            "/x".to_string(),
            vec![Sample {
                ok: false,
                took: Duration::from_millis(1),
            }],
        )];
        assert_eq!(
            fastest.judge(2, &failed),
            Judgement::Failed {
                label: "/x".to_string()
            }
        );
        assert_eq!(
            fastest.judge(3, &[("/x".to_string(), Vec::new())]),
            Judgement::Failed {
                label: "/x".to_string()
            }
        );
    }

    #[test]
    fn a_failed_fast_answer_never_becomes_the_fastest() {
        let mut fastest = Fastest::new(1);
        let first = vec![(
            "/x".to_string(),
            vec![
                Sample {
                    ok: false,
                    took: Duration::from_millis(1),
                },
                Sample {
                    ok: true,
                    took: Duration::from_millis(100),
                },
            ],
        )];
        fastest.judge(1, &first);
        assert_eq!(
            fastest.judge(2, &[("/x".to_string(), ms(&[150, 190]))]),
            Judgement::Converged
        );
    }
}
