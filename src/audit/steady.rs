//! Steady service time per path: a fixed log-bucket histogram (exact below
//! 64 ms, then 32 buckets per doubling, so a median is within 3 %), whatever
//! the number of samples. Memory is fixed per path.

/// Fewer steady samples than this and a path has no steady figure: it is
/// marked, not guessed.
pub(crate) const MIN_SAMPLES: u64 = 5;

const EXACT: u64 = 64;
const SUB: u64 = 32;
/// 64 exact buckets, then 32 per power of two up to 2^36 ms.
const BUCKETS: usize = 64 + 31 * 32;

#[derive(Default)]
pub(crate) struct Histogram {
    counts: Option<Box<[u32]>>,
    total: u64,
}

impl Histogram {
    pub(crate) fn add(&mut self, ms: u64) {
        let counts = self
            .counts
            .get_or_insert_with(|| vec![0; BUCKETS].into_boxed_slice());
        let i = bucket(ms);
        counts[i] = counts[i].saturating_add(1);
        self.total += 1;
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The median, or `None` below [`MIN_SAMPLES`].
    pub(crate) fn median(&self) -> Option<u64> {
        let counts = self.counts.as_ref()?;
        if self.total < MIN_SAMPLES {
            return None;
        }
        let half = self.total.div_ceil(2);
        let mut seen = 0u64;
        for (i, &n) in counts.iter().enumerate() {
            seen += u64::from(n);
            if seen >= half {
                return Some(low_edge(i));
            }
        }
        None
    }
}

fn bucket(ms: u64) -> usize {
    if ms < EXACT {
        return usize::try_from(ms).unwrap_or(0);
    }
    let octave = u64::from(ms.ilog2()); // ≥ 6
    let sub = (ms >> (octave - 5)) & (SUB - 1);
    let index = EXACT + (octave - 6) * SUB + sub;
    usize::try_from(index).map_or(BUCKETS - 1, |i| i.min(BUCKETS - 1))
}

fn low_edge(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT {
        return index;
    }
    let octave = (index - EXACT) / SUB + 6;
    let sub = (index - EXACT) % SUB;
    (SUB + sub) << (octave - 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_64_and_within_3_percent_above() {
        let mut h = Histogram::default();
        for ms in [10, 11, 12, 13, 14] {
            h.add(ms);
        }
        assert_eq!(h.median(), Some(12));
        for ms in [64, 100, 1000, 1532, 30_000, 1 << 40] {
            let edge = low_edge(bucket(ms));
            assert!(edge <= ms, "{ms}: {edge}");
            assert!(ms >= 1 << 36 || ms - edge <= ms / 32, "{ms}: {edge}");
        }
    }

    #[test]
    fn too_few_samples_give_no_median() {
        let mut h = Histogram::default();
        for ms in [1, 2, 3, 4] {
            h.add(ms);
        }
        assert_eq!(h.median(), None);
        assert_eq!(h.count(), 4);
    }
}
