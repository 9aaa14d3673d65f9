//! Step 4 of `CONTRACT.md` "How a batch is formed": cutting one batch into sub-batches, each
//! run once. Pure (token lengths in, index groups out) so the policy is tested without a model.
//!
//! Why sub-batches: a batch is padded to its longest row, so one long text among short ones
//! would make every row pay for its length; sorting by length and cutting where the padding
//! or the token count grows too large keeps the wasted positions bounded.

/// The two limits a sub-batch must respect (`--max-batch-tokens`, `--max-padding`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubBatchLimits {
    /// Most padded positions (rows × longest) one `run` may get.
    pub max_tokens: usize,
    /// Largest share of a sub-batch's positions that may be padding (0 ≤ F < 1).
    pub max_padding: f64,
}

impl SubBatchLimits {
    /// Only equal lengths share a run, however many positions: `rust-native-batched bench`
    /// runs b copies of one text in exactly one `run`, whatever its length.
    pub const EQUAL_LENGTHS: Self = Self { max_tokens: usize::MAX, max_padding: 0.0 };
}

/// `lengths` are the token lengths of a batch's texts in arrival order. Returns indices into
/// `lengths` grouped into sub-batches: walking the items by length (shortest first, ties in
/// arrival order), an item starts a new sub-batch when adding it would make
/// rows × longest > `max_tokens` or 1 − Σlength ÷ (rows × longest) > `max_padding`.
/// A sub-batch of one is always allowed. Sub-batches come shortest first.
pub fn sub_batches(lengths: &[usize], limits: SubBatchLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // `sort_by_key` is stable: equal lengths keep arrival order.
    order.sort_by_key(|&i| lengths[i]);
    let mut groups = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut total = 0;
    for i in order {
        let length = lengths[i];
        // Walking in ascending order, the item joining is the sub-batch's longest row.
        if !current.is_empty() && !fits(current.len() + 1, length, total + length, limits) {
            groups.push(std::mem::take(&mut current));
            total = 0;
        }
        current.push(i);
        total += length;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Whether `rows` rows of `total` tokens, padded to `longest`, respect `limits`.
fn fits(rows: usize, longest: usize, total: usize, limits: SubBatchLimits) -> bool {
    let padded = rows.saturating_mul(longest);
    if padded > limits.max_tokens {
        return false;
    }
    // The contract's formula as written, so both batched services cut at the same places.
    padded == 0 || 1.0 - total as f64 / padded as f64 <= limits.max_padding
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// The golden cases, shared with the Python planner's tests (tests/test_python_batching.py).
    const CASES: &str = include_str!("../../../batching_cases.json");

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Case {
        id: String,
        lengths: Vec<usize>,
        max_batch_tokens: usize,
        max_padding: f64,
        sub_batches: Vec<Vec<usize>>,
        /// Why the case is there (for the reader).
        #[serde(default, rename = "why")]
        _why: Option<String>,
    }

    fn cases() -> Vec<Case> {
        #[derive(Deserialize)]
        struct File {
            cases: Vec<Case>,
        }
        serde_json::from_str::<File>(CASES).expect("batching_cases.json is a valid case file").cases
    }

    fn limits(max_tokens: usize, max_padding: f64) -> SubBatchLimits {
        SubBatchLimits { max_tokens, max_padding }
    }

    #[test]
    fn the_golden_cases_plan_as_written() {
        let cases = cases();
        assert!(!cases.is_empty());
        let failed: Vec<String> = cases
            .iter()
            .filter_map(|case| {
                let got = sub_batches(&case.lengths, limits(case.max_batch_tokens, case.max_padding));
                (got != case.sub_batches)
                    .then(|| format!("{}: got {got:?}, want {:?}", case.id, case.sub_batches))
            })
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn equal_lengths_keeps_copies_of_one_text_in_one_run() {
        assert_eq!(sub_batches(&[512; 64], SubBatchLimits::EQUAL_LENGTHS), vec![(0..64).collect::<Vec<_>>()]);
    }

    /// Every index exactly once; every sub-batch a single item or within both limits; the
    /// walk is sorted by (length, arrival).
    #[test]
    fn random_batches_respect_the_rules() {
        let mut seed: u64 = 0x5eed;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % bound
        };
        for _ in 0..500 {
            let n = next(40) as usize;
            let lengths: Vec<usize> = (0..n).map(|_| 2 + next(510) as usize).collect();
            let limits = limits(512 + next(8000) as usize, next(100) as f64 / 100.0);
            let groups = sub_batches(&lengths, limits);
            let walk: Vec<usize> = groups.concat();
            let mut expected: Vec<usize> = (0..n).collect();
            expected.sort_by_key(|&i| (lengths[i], i));
            assert_eq!(walk, expected);
            for group in &groups {
                let longest = group.iter().map(|&i| lengths[i]).max().unwrap();
                let total: usize = group.iter().map(|&i| lengths[i]).sum();
                assert!(group.len() == 1 || fits(group.len(), longest, total, limits), "{group:?}");
            }
        }
    }
}
