//! Lock-free load-balancing primitives: a weighted random pick (a route's backends, for canary
//! splits) and a weighted round robin (an upstream's targets) driven by one atomic counter.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Above this many schedule slots (after dividing the weights by their gcd) the round robin
/// walks cumulative weights instead of precomputing a smooth schedule, to bound memory.
const MAX_SCHEDULE: u64 = 1 << 16;
/// Bound on the work of building a smooth schedule (slots × targets).
const MAX_SCHEDULE_WORK: u64 = 1 << 22;

/// Picks an index at random, each with a probability proportional to its weight.
#[derive(Debug)]
pub struct WeightedPick {
    /// Running sums of the weights; zero-weight entries are never picked.
    cumulative: Box<[u64]>,
}

impl WeightedPick {
    /// `None` when no weight is above zero.
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Option<Self> {
        let cumulative = cumulative(weights);
        (cumulative.last().copied().unwrap_or(0) > 0).then_some(WeightedPick { cumulative })
    }

    pub fn pick(&self) -> usize {
        match &*self.cumulative {
            [_] => 0,
            all => {
                let total = all.last().copied().unwrap_or(0);
                let x = fastrand::u64(0..total);
                all.partition_point(|c| *c <= x)
            }
        }
    }
}

fn cumulative(weights: impl IntoIterator<Item = u32>) -> Box<[u64]> {
    let mut sum = 0u64;
    weights
        .into_iter()
        .map(|w| {
            sum += u64::from(w);
            sum
        })
        .collect()
}

/// Weighted round robin: over `total weight` consecutive calls each index comes up exactly its
/// weight's number of times, interleaved smoothly (nginx's smooth weighted round robin).
#[derive(Debug)]
pub struct RoundRobin {
    schedule: Schedule,
    next: AtomicUsize,
}

#[derive(Debug)]
enum Schedule {
    Single,
    /// One slot per unit of (gcd-reduced) weight, in smooth order.
    Slots(Box<[u32]>),
    /// For very large weight sums: contiguous runs per index.
    Cumulative(Box<[u64]>),
}

impl RoundRobin {
    /// `None` when no weight is above zero.
    pub fn new(weights: &[u32]) -> Option<Self> {
        let gcd = weights.iter().copied().filter(|w| *w > 0).reduce(gcd)?;
        let reduced: Vec<u64> = weights.iter().map(|w| u64::from(w / gcd)).collect();
        let total: u64 = reduced.iter().sum();
        let schedule = if weights.len() == 1 {
            Schedule::Single
        } else if total <= MAX_SCHEDULE && total * reduced.len() as u64 <= MAX_SCHEDULE_WORK {
            Schedule::Slots(smooth_schedule(&reduced, total))
        } else {
            Schedule::Cumulative(cumulative(weights.iter().copied()))
        };
        Some(RoundRobin {
            schedule,
            next: AtomicUsize::new(0),
        })
    }

    pub fn next(&self) -> usize {
        match &self.schedule {
            Schedule::Single => 0,
            Schedule::Slots(slots) => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                slots[n % slots.len()] as usize
            }
            Schedule::Cumulative(all) => {
                let total = all.last().copied().unwrap_or(1).max(1);
                let n = self.next.fetch_add(1, Ordering::Relaxed) as u64 % total;
                all.partition_point(|c| *c <= n)
            }
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn smooth_schedule(weights: &[u64], total: u64) -> Box<[u32]> {
    let mut current = vec![0i64; weights.len()];
    let total = total as i64;
    (0..total)
        .map(|_| {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += *w as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            best as u32
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn counts(rr: &RoundRobin, n: usize, len: usize) -> Vec<usize> {
        let mut counts = vec![0; len];
        for _ in 0..n {
            counts[rr.next()] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_is_exact_per_cycle_and_smooth() {
        let rr = RoundRobin::new(&[5, 1, 1]).unwrap();
        let first: Vec<usize> = (0..7).map(|_| rr.next()).collect();
        // Smooth: the heavy target never takes all five slots in a row.
        assert_eq!(first, [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(counts(&rr, 700, 3), [500, 100, 100]);
    }

    #[test]
    fn round_robin_skips_zero_weights_and_reduces_by_gcd() {
        let rr = RoundRobin::new(&[0, 200, 100]).unwrap();
        assert_eq!(counts(&rr, 300, 3), [0, 200, 100]);
        assert!(matches!(&rr.schedule, Schedule::Slots(s) if s.len() == 3));
        assert!(RoundRobin::new(&[0, 0]).is_none());
        assert!(RoundRobin::new(&[]).is_none());
        let single = RoundRobin::new(&[7]).unwrap();
        assert_eq!(counts(&single, 5, 1), [5]);
    }

    #[test]
    fn large_weight_sums_stay_exact() {
        let weights: Vec<u32> = (0..100).map(|i| 9_999 - i).collect();
        let rr = RoundRobin::new(&weights).unwrap();
        assert!(matches!(rr.schedule, Schedule::Cumulative(_)));
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let counts = counts(&rr, total as usize, weights.len());
        for (count, weight) in counts.iter().zip(&weights) {
            assert_eq!(*count as u32, *weight);
        }
    }

    #[test]
    fn weighted_pick_follows_weights() {
        let pick = WeightedPick::new([1, 0, 3]).unwrap();
        let mut counts = [0usize; 3];
        for _ in 0..40_000 {
            counts[pick.pick()] += 1;
        }
        assert_eq!(counts[1], 0);
        // 1:3 split within a generous margin.
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert!((29_000..31_000).contains(&counts[2]), "{counts:?}");
        assert_eq!(WeightedPick::new([4]).unwrap().pick(), 0);
        assert!(WeightedPick::new([0]).is_none());
    }
}
