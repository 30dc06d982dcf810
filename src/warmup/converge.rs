//! When the warm-up may stop: a round proves every worker warm once, for every
//! path, its slowest request is within `crate::cold::warm_bound` of the
//! fastest request seen for that path in any round so far, times the queue:
//! `ceil(in flight / parallelism)`.
//!
//! The queue is there because a round sends more requests at once than the
//! dyno can run (6 in flight on 2 cores): the last of them waits for the
//! others, not for a cold cache, so it takes up to `queue × fastest` warm.
//! A cold worker costs a first render (hundreds of ms), far past that.
//! A dyno busy with something else slows a whole round: that round still
//! passes when its own fastest was warm and no request stands out of it
//! (`busy_but_warm`).
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

/// The fastest successful request seen per path, across rounds, and the queue
/// depth a round's requests wait in.
pub(crate) struct Fastest {
    best: Vec<Option<Duration>>,
    queue: u32,
}

/// How many requests deep the last of `in_flight` waits, on a dyno that runs
/// `parallelism` at once: `ceil(in_flight / parallelism)`, at least 1.
pub(crate) fn queue_depth(in_flight: usize, parallelism: usize) -> u32 {
    let depth = in_flight.div_ceil(parallelism.max(1)).max(1);
    u32::try_from(depth).unwrap_or(u32::MAX)
}

/// What the dyno runs at once: the CPUs this process may use (cgroup quotas
/// included, as `available_parallelism` reads them), 1 if unknown.
pub(crate) fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl Fastest {
    /// `queue` from `queue_depth`; 1 judges every request as if it ran alone.
    pub(crate) fn new(paths: usize, queue: u32) -> Self {
        Self {
            best: vec![None; paths],
            queue: queue.max(1),
        }
    }

    /// The slowest a warm answer of this round may be, for a path whose fastest is `fastest`.
    pub(crate) fn bound(&self, fastest: Duration) -> Duration {
        warm_bound(fastest.saturating_mul(self.queue))
    }

    /// Records a whole round, one `(label, samples)` per path in order, then
    /// judges it against the fastest seen (this round included).
    pub(crate) fn judge(&mut self, round: u32, paths: &[(String, Vec<Sample>)]) -> Judgement {
        for (best, (_, samples)) in self.best.iter_mut().zip(paths) {
            for sample in samples.iter().filter(|s| s.ok) {
                *best = Some(best.map_or(sample.took, |b| b.min(sample.took)));
            }
        }
        if round < 2 {
            return Judgement::Unjudged;
        }
        let mut worst: Option<Judgement> = None;
        let mut worst_ratio = 0.0_f64;
        for (best, (label, samples)) in self.best.iter().zip(paths) {
            if samples.is_empty() || samples.iter().any(|s| !s.ok) {
                return Judgement::Failed {
                    label: label.clone(),
                };
            }
            let (Some(fastest), Some(slowest)) = (*best, samples.iter().map(|s| s.took).max())
            else {
                continue;
            };
            let bound = self.bound(fastest);
            if slowest > bound && !busy_but_warm(samples, bound) {
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

/// A round slowed down as a whole, by a busy dyno rather than a cold worker:
/// its own fastest request was warm (so it is not cold throughout), and its
/// slowest stands within `warm_bound` of its lower median (so no request
/// stands out the way a cold worker's first render does).
fn busy_but_warm(samples: &[Sample], bound: Duration) -> bool {
    let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    took.sort_unstable();
    let (Some(first), Some(last)) = (took.first(), took.last()) else {
        return false;
    };
    let lower_median = took[(took.len() - 1) / 2];
    *first <= bound && *last <= warm_bound(lower_median)
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
        let mut fastest = Fastest::new(1, 1);
        assert_eq!(
            round(&mut fastest, 1, &[&[10, 10, 10, 10]]),
            Judgement::Unjudged
        );
    }

    #[test]
    fn a_cold_worker_in_the_first_round_then_all_warm_converges_in_the_second() {
        let mut fastest = Fastest::new(2, 1);
        round(&mut fastest, 1, &[&[150, 152, 151, 9], &[300, 12, 11, 10]]);
        assert_eq!(
            round(&mut fastest, 2, &[&[10, 11, 9, 12], &[12, 10, 11, 13]]),
            Judgement::Converged
        );
    }

    #[test]
    fn an_all_cold_round_is_judged_against_the_fastest_seen_not_its_median() {
        let mut fastest = Fastest::new(1, 1);
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
        let mut fastest = Fastest::new(2, 1);
        round(&mut fastest, 1, &[&[10, 10], &[20, 20]]);
        let judged = round(&mut fastest, 2, &[&[10, 40], &[20, 400]]);
        assert!(
            matches!(&judged, Judgement::Slow { label, .. } if label == "/p1"),
            "{judged:?}"
        );
    }

    #[test]
    fn a_failed_request_or_an_empty_path_is_not_converged() {
        let mut fastest = Fastest::new(1, 1);
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
        let mut fastest = Fastest::new(1, 1);
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

    #[test]
    fn the_queue_depth_is_in_flight_over_parallelism_rounded_up() {
        assert_eq!(queue_depth(6, 2), 3);
        assert_eq!(queue_depth(7, 2), 4);
        assert_eq!(queue_depth(4, 8), 1);
        assert_eq!(queue_depth(6, 0), 6);
        assert_eq!(queue_depth(0, 2), 1);
    }

    #[test]
    fn a_warm_round_queued_six_deep_on_two_cores_converges() {
        // puma 3 workers x 2 threads, an 11 ms page, 6 in flight on 2 cores:
        // the last waits for the two before it: up to 3 x 11 ms, bound 66 ms.
        let mut fastest = Fastest::new(1, queue_depth(6, 2));
        round(&mut fastest, 1, &[&[300, 320, 310, 11, 40, 60]]);
        assert_eq!(
            round(&mut fastest, 2, &[&[11, 12, 13, 14, 15, 66]]),
            Judgement::Converged
        );
        // The same round without the queue is the old false "not converged".
        let mut alone = Fastest::new(1, 1);
        round(&mut alone, 1, &[&[300, 320, 310, 11, 40, 60]]);
        assert!(matches!(
            round(&mut alone, 2, &[&[11, 12, 13, 14, 15, 66]]),
            Judgement::Slow { .. }
        ));
    }

    #[test]
    fn with_the_queue_a_round_cold_throughout_still_fails() {
        let mut fastest = Fastest::new(1, queue_depth(6, 2));
        round(&mut fastest, 1, &[&[11, 12, 11, 13, 12, 11]]);
        assert_eq!(
            round(&mut fastest, 2, &[&[300, 310, 305, 320, 330, 300]]),
            Judgement::Slow {
                label: "/p0".to_string(),
                slowest: Duration::from_millis(330),
                fastest: Duration::from_millis(11),
            }
        );
    }

    #[test]
    fn with_the_queue_one_worker_left_cold_is_still_caught() {
        // Two workers warm, the third's first render (a few hundred ms) lands in round 2.
        let mut fastest = Fastest::new(1, queue_depth(6, 2));
        round(&mut fastest, 1, &[&[11, 20, 30, 12, 25, 33]]);
        assert!(matches!(
            round(&mut fastest, 2, &[&[11, 20, 30, 12, 25, 250]]),
            Judgement::Slow { slowest, .. } if slowest == Duration::from_millis(250)
        ));
        assert_eq!(
            round(&mut fastest, 3, &[&[11, 20, 30, 12, 25, 40]]),
            Judgement::Converged
        );
    }

    #[test]
    fn a_round_slowed_as_a_whole_by_a_busy_dyno_converges() {
        // Another process took the CPUs: every request slower, none standing out.
        let mut fastest = Fastest::new(1, queue_depth(6, 2));
        round(&mut fastest, 1, &[&[300, 310, 5, 40, 60, 90]]);
        assert_eq!(
            round(&mut fastest, 2, &[&[30, 60, 80, 95, 120, 147]]),
            Judgement::Converged
        );
        // But not a round whose every request was slow: that is cold throughout.
        assert!(matches!(
            round(&mut fastest, 3, &[&[250, 260, 270, 280, 300, 320]]),
            Judgement::Slow { .. }
        ));
        // Nor one where a worker's first render stands out of a busy round.
        assert!(matches!(
            round(&mut fastest, 4, &[&[30, 60, 80, 95, 120, 400]]),
            Judgement::Slow { .. }
        ));
    }
}
