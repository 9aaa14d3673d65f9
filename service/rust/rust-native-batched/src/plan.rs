//! Step 3 of `CONTRACT.md` "How requests are served": which waiting requests run next
//! ("Which requests run next"). Pure (lengths and waits in, indices out) so the policy is
//! tested without a model; the Python twin is `service/python/servekit/plan.py`, and both pass
//! the golden cases of `service/batching_cases.json`.
//!
//! Shortest first, because a run is padded to its longest row and a short request should not
//! wait behind a long one; with aging, because shortest first alone starves a long text under
//! steady load: once a request has waited more than `max_wait`, the longest-waiting one runs
//! next, with the waiting texts nearest its length.

use std::time::Duration;

/// What one run may hold (`--max-batch-size`, `--max-batch-tokens`, `--max-padding`), and
/// when a request jumps the queue (`--max-wait-ms`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most rows in one `run`.
    pub max_batch_size: usize,
    /// Most padded positions (rows × longest) one `run` may get.
    pub max_tokens: usize,
    /// Largest share of a run's positions that may be padding (0 ≤ F < 1).
    pub max_padding: f64,
    /// A request that has waited longer than this runs next.
    pub max_wait: Duration,
}

impl Limits {
    /// Only equal lengths share a run, however many: `rust-native-batched bench` runs b copies
    /// of one text in exactly one `run`, whatever its length.
    pub const EQUAL_LENGTHS: Self = Self {
        max_batch_size: usize::MAX,
        max_tokens: usize::MAX,
        max_padding: 0.0,
        max_wait: Duration::MAX,
    };
}

/// One waiting request, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Its text's token count.
    pub length: usize,
    /// How long it has waited so far.
    pub waited: Duration,
}

/// Indices into `waiting` (any order) of the requests to run next, in row order (length, then
/// index). Empty only for no requests.
///
/// Not aged (nobody has waited more than `max_wait`): walking by (length, index), the shortest
/// starts the run and each next one joins while the run stays within `limits` (it is the
/// longest row so far); the first that does not fit ends it. Aged: the request that has waited
/// longest (ties: lowest index) anchors the run; the others are tried nearest its length first
/// (ties: the shorter, then the lower index), each joining if the run stays within `limits`
/// (one that does not is passed over). A run of one is always allowed.
pub fn next_run(waiting: &[Waiting], limits: Limits) -> Vec<usize> {
    let Some(oldest) = (0..waiting.len()).min_by_key(|&i| (std::cmp::Reverse(waiting[i].waited), i)) else {
        return Vec::new();
    };
    let mut chosen = Vec::new();
    if waiting[oldest].waited > limits.max_wait {
        let anchor = waiting[oldest].length;
        // Nearest lengths first (ties: the shorter, then arrival), each that keeps the run
        // within the limits: the aged request gets as full a run as the queue allows.
        let mut mates: Vec<usize> = (0..waiting.len()).filter(|&i| i != oldest).collect();
        mates.sort_by_key(|&i| (waiting[i].length.abs_diff(anchor), waiting[i].length, i));
        chosen.push(oldest);
        let (mut tokens, mut longest) = (anchor, anchor);
        for i in mates {
            if chosen.len() == limits.max_batch_size {
                break;
            }
            let wider = longest.max(waiting[i].length);
            if fits(chosen.len() + 1, wider, tokens + waiting[i].length, limits) {
                chosen.push(i);
                tokens += waiting[i].length;
                longest = wider;
            }
        }
    } else {
        let mut walk: Vec<usize> = (0..waiting.len()).collect();
        walk.sort_by_key(|&i| (waiting[i].length, i));
        let mut tokens = 0;
        for i in walk {
            // Walking in ascending order, the item joining is the run's longest row.
            let length = waiting[i].length;
            if !chosen.is_empty() && !fits(chosen.len() + 1, length, tokens + length, limits) {
                break;
            }
            chosen.push(i);
            tokens += length;
        }
    }
    chosen.sort_by_key(|&i| (waiting[i].length, i));
    chosen
}

/// Every run, in order, that [`next_run`] gives for `waiting` if nothing arrives and no time
/// passes meanwhile: how a batch known at once (`bench`) is cut, and the golden cases' form.
pub fn plan_all(waiting: &[Waiting], limits: Limits) -> Vec<Vec<usize>> {
    let mut left: Vec<usize> = (0..waiting.len()).collect();
    let mut runs = Vec::new();
    while !left.is_empty() {
        let view: Vec<Waiting> = left.iter().map(|&i| waiting[i]).collect();
        let chosen = next_run(&view, limits);
        runs.push(chosen.iter().map(|&k| left[k]).collect());
        let mut taken = vec![false; left.len()];
        chosen.iter().for_each(|&k| taken[k] = true);
        left = left.iter().zip(taken).filter(|(_, taken)| !taken).map(|(&i, _)| i).collect();
    }
    runs
}

/// Whether `rows` rows of `total` tokens, padded to `longest`, respect `limits`.
fn fits(rows: usize, longest: usize, total: usize, limits: Limits) -> bool {
    let padded = rows.saturating_mul(longest);
    if rows > limits.max_batch_size || padded > limits.max_tokens {
        return false;
    }
    // The contract's formula as written, so both batched services choose alike.
    padded == 0 || 1.0 - total as f64 / padded as f64 <= limits.max_padding
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// The golden cases, shared with the Python scheduler's tests (tests/test_python_batching.py).
    const CASES: &str = include_str!("../../../batching_cases.json");

    #[derive(Debug, Clone, Copy, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CaseLimits {
        max_batch_size: usize,
        max_batch_tokens: usize,
        max_padding: f64,
        max_wait_ms: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Case {
        id: String,
        lengths: Vec<usize>,
        #[serde(default)]
        waited_us: Option<Vec<u64>>,
        max_batch_size: Option<usize>,
        max_batch_tokens: Option<usize>,
        max_padding: Option<f64>,
        max_wait_ms: Option<u64>,
        runs: Vec<Vec<usize>>,
        /// Why the case is there (for the reader).
        #[serde(default, rename = "why")]
        _why: Option<String>,
    }

    impl Case {
        fn limits(&self, file: CaseLimits) -> Limits {
            Limits {
                max_batch_size: self.max_batch_size.unwrap_or(file.max_batch_size),
                max_tokens: self.max_batch_tokens.unwrap_or(file.max_batch_tokens),
                max_padding: self.max_padding.unwrap_or(file.max_padding),
                max_wait: Duration::from_millis(self.max_wait_ms.unwrap_or(file.max_wait_ms)),
            }
        }

        fn waiting(&self) -> Vec<Waiting> {
            let waits = self.waited_us.clone().unwrap_or_else(|| vec![0; self.lengths.len()]);
            assert_eq!(waits.len(), self.lengths.len(), "{}", self.id);
            self.lengths
                .iter()
                .zip(waits)
                .map(|(&length, us)| Waiting { length, waited: Duration::from_micros(us) })
                .collect()
        }
    }

    fn cases() -> (CaseLimits, Vec<Case>) {
        #[derive(Deserialize)]
        struct File {
            #[serde(rename = "about")]
            _about: Vec<String>,
            limits: CaseLimits,
            cases: Vec<Case>,
        }
        let file = serde_json::from_str::<File>(CASES).expect("batching_cases.json is a valid case file");
        (file.limits, file.cases)
    }

    #[test]
    fn the_golden_cases_plan_as_written() {
        let (file, cases) = cases();
        assert!(cases.iter().any(|case| case.waited_us.is_some()), "no aging case");
        let failed: Vec<String> = cases
            .iter()
            .filter_map(|case| {
                let got = plan_all(&case.waiting(), case.limits(file));
                (got != case.runs).then(|| format!("{}: got {got:?}, want {:?}", case.id, case.runs))
            })
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn equal_lengths_keeps_copies_of_one_text_in_one_run() {
        let waiting = vec![Waiting { length: 512, waited: Duration::ZERO }; 64];
        assert_eq!(plan_all(&waiting, Limits::EQUAL_LENGTHS), vec![(0..64).collect::<Vec<_>>()]);
    }

    /// Every choice in row order, within the limits (or alone), led by the shortest or, when
    /// someone has aged, holding the longest-waiting request.
    #[test]
    fn random_queues_respect_the_rules() {
        let mut seed: u64 = 0x5eed;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % bound
        };
        for _ in 0..500 {
            let n = 1 + next(60) as usize;
            let waiting: Vec<Waiting> = (0..n)
                .map(|_| Waiting {
                    length: 2 + next(510) as usize,
                    waited: Duration::from_micros(if next(2) == 0 { 0 } else { next(300_000) }),
                })
                .collect();
            let limits = Limits {
                max_batch_size: [1, 4, 32][next(3) as usize],
                max_tokens: 512 + next(8000) as usize,
                max_padding: next(100) as f64 / 100.0,
                max_wait: Duration::from_millis([0, 50, 100, 10_000][next(4) as usize]),
            };
            let chosen = next_run(&waiting, limits);
            let key = |&i: &usize| (waiting[i].length, i);
            assert!(chosen.windows(2).all(|pair| key(&pair[0]) < key(&pair[1])), "{chosen:?}");
            let longest = chosen.iter().map(|&i| waiting[i].length).max().unwrap();
            let total: usize = chosen.iter().map(|&i| waiting[i].length).sum();
            assert!(chosen.len() == 1 || fits(chosen.len(), longest, total, limits), "{chosen:?}");
            let oldest = (0..n).min_by_key(|&i| (std::cmp::Reverse(waiting[i].waited), i)).unwrap();
            assert!(chosen.len() <= limits.max_batch_size);
            if waiting[oldest].waited > limits.max_wait {
                assert!(chosen.contains(&oldest));
            } else {
                let shortest = waiting.iter().map(|w| w.length).min().unwrap();
                assert_eq!(waiting[chosen[0]].length, shortest);
            }
        }
    }
}
