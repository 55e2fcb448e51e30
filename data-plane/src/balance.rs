//! Lock-free load-balancing primitives: a weighted random pick (a route's backends, for canary
//! splits, and the `random` balancer), a smooth weighted round robin driven by one atomic
//! counter, least request by the power of two choices, and Maglev consistent hashing. The
//! [`Balancer`] of an upstream skips targets its caller says are unusable (unhealthy, ejected or
//! already tried).

use std::sync::atomic::{AtomicUsize, Ordering};

use gateway_config::Balance;

use crate::keys::{mix, stable_hash};

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

/// Picks per call before a balancer gives up on its own order and scans for any usable target.
const MAX_SKIPS: usize = 16;

/// Least request: of two targets drawn by weight, the one with fewer requests in flight per
/// unit of weight.
#[derive(Debug)]
pub struct LeastRequest {
    draw: WeightedPick,
    weights: Box<[u32]>,
}

impl LeastRequest {
    pub fn new(weights: &[u32]) -> Option<Self> {
        Some(LeastRequest {
            draw: WeightedPick::new(weights.iter().copied())?,
            weights: weights.into(),
        })
    }

    fn pick(&self, load: impl Fn(usize) -> u32, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let draw = || {
            (0..MAX_SKIPS)
                .map(|_| self.draw.pick())
                .find(|i| usable(*i))
        };
        let a = draw()?;
        let Some(b) = draw() else { return Some(a) };
        // Compare load / weight without division: a is busier when la/wa > lb/wb.
        let cost = |i: usize, other: usize| {
            u64::from(load(i)) * u64::from(self.weights.get(other).copied().unwrap_or(1))
        };
        Some(if cost(b, a) < cost(a, b) { b } else { a })
    }
}

/// Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as in Envoy: a lookup table
/// of a prime size where each target owns slots in proportion to its weight, filled from
/// per-target permutations so that adding or removing one of N targets moves about 1/N of the
/// keys.
#[derive(Debug)]
pub struct Maglev {
    table: Box<[u32]>,
    targets: usize,
}

/// Slots per target at least; more slots spread the keys more evenly.
const MAGLEV_SLOTS_PER_TARGET: usize = 100;
const MAGLEV_MIN_TABLE: usize = 5003;

impl Maglev {
    /// `names` identify the targets (their addresses), so that the same target keeps its
    /// permutation whatever else changes.
    pub fn new(names: &[&str], weights: &[u32]) -> Option<Self> {
        let max_weight = u64::from(weights.iter().copied().max().filter(|w| *w > 0)?);
        let size = next_prime((names.len() * MAGLEV_SLOTS_PER_TARGET).max(MAGLEV_MIN_TABLE));
        let permutations: Vec<(u64, u64)> = names
            .iter()
            .map(|name| {
                let offset = stable_hash(name.as_bytes()) % size as u64;
                let skip = mix(stable_hash(name.as_bytes()) ^ 0x9e37_79b9_7f4a_7c15)
                    % (size as u64 - 1)
                    + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; names.len()];
        let mut placed = vec![0u64; names.len()];
        let mut table = vec![u32::MAX; size];
        let mut filled = 0;
        let mut iteration = 1u64;
        while filled < size {
            for (i, (offset, skip)) in permutations.iter().enumerate() {
                let weight = u64::from(weights.get(i).copied().unwrap_or(0));
                // A target places its next slot once its weighted share allows it.
                if weight == 0 || iteration * weight < placed[i] * max_weight {
                    continue;
                }
                placed[i] += 1;
                loop {
                    let slot = ((offset + next[i] * skip) % size as u64) as usize;
                    next[i] += 1;
                    if table[slot] == u32::MAX {
                        table[slot] = i as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == size {
                    break;
                }
            }
            iteration += 1;
        }
        Some(Maglev {
            table: table.into(),
            targets: names.len(),
        })
    }

    /// The owner of `key`; when it is unusable, the next usable owner along the table, so that
    /// its keys spread over the others and come back when it recovers.
    fn pick(&self, key: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.table.len();
        let start = (key % len as u64) as usize;
        let mut seen_unusable: u64 = 0;
        for step in 0..len {
            let target = self.table[(start + step) % len] as usize;
            if usable(target) {
                return Some(target);
            }
            // Once every target (up to 64) was seen unusable, no further slot can help.
            if target < 64 {
                seen_unusable |= 1 << target;
                if seen_unusable.count_ones() as usize >= self.targets.min(64) {
                    return None;
                }
            }
        }
        None
    }
}

/// An upstream's balancer.
#[derive(Debug)]
pub enum Balancer {
    RoundRobin(RoundRobin),
    Random(WeightedPick),
    LeastRequest(LeastRequest),
    ConsistentHash(Maglev),
}

impl Balancer {
    /// `None` when no weight is above zero.
    pub fn new(balance: Balance, names: &[&str], weights: &[u32]) -> Option<Self> {
        Some(match balance {
            Balance::RoundRobin => Balancer::RoundRobin(RoundRobin::new(weights)?),
            Balance::Random => Balancer::Random(WeightedPick::new(weights.iter().copied())?),
            Balance::LeastRequest => Balancer::LeastRequest(LeastRequest::new(weights)?),
            Balance::ConsistentHash => Balancer::ConsistentHash(Maglev::new(names, weights)?),
        })
    }

    /// A target for one request. `key` is the hashed request key (consistent hashing draws at
    /// random without one), `load(i)` the requests in flight to target i, `usable(i)` whether i
    /// may take this request. `None` when no target with a weight is usable.
    pub fn pick(
        &self,
        key: Option<u64>,
        load: impl Fn(usize) -> u32,
        usable: impl Fn(usize) -> bool,
        weights: &[u32],
    ) -> Option<usize> {
        let picked = match self {
            Balancer::RoundRobin(rr) => (0..MAX_SKIPS).map(|_| rr.next()).find(|i| usable(*i)),
            Balancer::Random(pick) => (0..MAX_SKIPS).map(|_| pick.pick()).find(|i| usable(*i)),
            Balancer::LeastRequest(lr) => lr.pick(load, &usable),
            Balancer::ConsistentHash(maglev) => match key {
                Some(key) => return maglev.pick(key, &usable),
                None => Some(fastrand::usize(..weights.len().max(1))).filter(|i| usable(*i)),
            },
        };
        picked.or_else(|| scan(weights, &usable))
    }
}

/// Any usable target with a weight, starting at a random one so that the fallback spreads load.
fn scan(weights: &[u32], usable: impl Fn(usize) -> bool) -> Option<usize> {
    let len = weights.len();
    let start = fastrand::usize(..len.max(1));
    (0..len)
        .map(|step| (start + step) % len)
        .find(|i| weights[*i] > 0 && usable(*i))
}

fn next_prime(from: usize) -> usize {
    (from..)
        .find(|n| *n > 1 && (2..).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .unwrap_or(from)
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

    fn maglev_owners(names: &[String], keys: u64) -> Vec<usize> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let maglev = Maglev::new(&refs, &vec![1; names.len()]).unwrap();
        (0..keys)
            .map(|k| {
                maglev
                    .pick(stable_hash(&k.to_be_bytes()), |_| true)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn maglev_spreads_keys_and_moves_few_when_a_target_is_added() {
        for n in [3usize, 5, 10] {
            let mut names: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}:80")).collect();
            let before = maglev_owners(&names, 20_000);
            let mut counts = vec![0usize; n];
            for owner in &before {
                counts[*owner] += 1;
            }
            let fair = 20_000 / n;
            for count in &counts {
                assert!(count.abs_diff(fair) < fair / 5, "n={n} {counts:?}");
            }
            names.push("10.0.1.1:80".into());
            let after = maglev_owners(&names, 20_000);
            let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            let limit = 20_000.0 * 1.5 / n as f64;
            assert!(
                (moved as f64) <= limit,
                "n={n}: {moved} keys moved, limit {limit}"
            );
            // Most keys that moved went to the new target (Maglev shuffles a little more).
            let to_new = before
                .iter()
                .zip(&after)
                .filter(|(a, b)| a != b && **b == n)
                .count();
            assert!(to_new * 10 >= moved * 8, "n={n}: {to_new} of {moved}");
        }
    }

    #[test]
    fn maglev_follows_weights_and_skips_unusable_targets() {
        let maglev = Maglev::new(&["a:1", "b:1", "c:1"], &[1, 3, 0]).unwrap();
        let mut counts = [0usize; 3];
        for k in 0..40_000u64 {
            counts[maglev
                .pick(stable_hash(&k.to_be_bytes()), |_| true)
                .unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((8_000..12_000).contains(&counts[0]), "{counts:?}");
        let key = stable_hash(b"user-1");
        let owner = maglev.pick(key, |_| true).unwrap();
        let other = maglev.pick(key, |i| i != owner).unwrap();
        assert_ne!(owner, other);
        assert_eq!(maglev.pick(key, |_| false), None);
        assert_eq!(maglev.pick(key, |_| true), Some(owner), "stable");
    }

    #[test]
    fn least_request_prefers_the_idle_target() {
        let balancer = Balancer::new(Balance::LeastRequest, &["a", "b"], &[1, 1]).unwrap();
        let load = |i: usize| if i == 0 { 10 } else { 0 };
        let mut counts = [0usize; 2];
        for _ in 0..1_000 {
            counts[balancer.pick(None, load, |_| true, &[1, 1]).unwrap()] += 1;
        }
        // Target 0 wins only when both draws land on it (about a quarter of the time).
        assert!(counts[1] > 650, "{counts:?}");
        let idle = |_: usize| 0;
        let mut counts = [0usize; 2];
        for _ in 0..1_000 {
            counts[balancer.pick(None, idle, |_| true, &[1, 1]).unwrap()] += 1;
        }
        assert!(counts[0] > 350 && counts[1] > 350, "{counts:?}");
    }

    #[test]
    fn balancers_skip_unusable_targets_and_give_up_when_none_is_left() {
        let weights = [5, 1, 1];
        for balance in [
            Balance::RoundRobin,
            Balance::Random,
            Balance::LeastRequest,
            Balance::ConsistentHash,
        ] {
            let balancer = Balancer::new(balance, &["a", "b", "c"], &weights).unwrap();
            for k in 0..200u64 {
                let key = Some(stable_hash(&k.to_be_bytes()));
                let picked = balancer.pick(key, |_| 0, |i| i != 0, &weights).unwrap();
                assert_ne!(picked, 0, "{balance:?}");
            }
            assert_eq!(
                balancer.pick(Some(1), |_| 0, |_| false, &weights),
                None,
                "{balance:?}"
            );
        }
    }

    #[test]
    fn random_follows_weights() {
        let balancer = Balancer::new(Balance::Random, &["a", "b"], &[1, 3]).unwrap();
        let mut counts = [0usize; 2];
        for _ in 0..20_000 {
            counts[balancer.pick(None, |_| 0, |_| true, &[1, 3]).unwrap()] += 1;
        }
        assert!((4_500..5_500).contains(&counts[0]), "{counts:?}");
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
