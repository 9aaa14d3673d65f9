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

    const DEFAULT: SubBatchLimits = SubBatchLimits { max_tokens: 8192, max_padding: 0.25 };

    fn limits(max_tokens: usize, max_padding: f64) -> SubBatchLimits {
        SubBatchLimits { max_tokens, max_padding }
    }

    #[test]
    fn nothing_to_plan_is_no_sub_batch() {
        assert!(sub_batches(&[], DEFAULT).is_empty());
    }

    #[test]
    fn equal_lengths_run_together_in_arrival_order() {
        assert_eq!(sub_batches(&[12; 5], DEFAULT), vec![vec![0, 1, 2, 3, 4]]);
    }

    #[test]
    fn a_lone_long_text_among_short_ones_gets_its_own_sub_batch() {
        assert_eq!(sub_batches(&[10, 11, 200, 10, 12], DEFAULT), vec![vec![0, 3, 1, 4], vec![2]]);
    }

    #[test]
    fn ties_keep_arrival_order_and_shortest_come_first() {
        assert_eq!(sub_batches(&[5, 3, 5, 3, 4], limits(1000, 0.5)), vec![vec![1, 3, 4, 0, 2]]);
    }

    #[test]
    fn the_token_budget_counts_padded_positions() {
        // 3 rows × 100 = 300 ≤ 350; a 4th would make 400.
        assert_eq!(
            sub_batches(&[100; 10], limits(350, 0.25)),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]]
        );
        // [10, 10] fits in 20 positions; adding 30 makes 3 × 30 = 90 > 50: the budget cuts, not padding.
        assert_eq!(sub_batches(&[10, 10, 30], limits(50, 0.99)), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn a_sub_batch_of_one_is_always_allowed() {
        // Longer than the budget alone (cannot happen with max-batch-tokens ≥ max_length, but
        // the planner must not loop or drop it).
        assert_eq!(sub_batches(&[1000, 5], limits(512, 0.25)), vec![vec![1], vec![0]]);
        assert_eq!(sub_batches(&[7], limits(1, 0.0)), vec![vec![0]]);
    }

    #[test]
    fn the_padding_share_may_reach_the_limit_but_not_exceed_it() {
        // [3, 6]: 1 − 9/12 = 0.25, allowed; [3, 7]: 1 − 10/14 ≈ 0.29, cut.
        assert_eq!(sub_batches(&[3, 6], DEFAULT), vec![vec![0, 1]]);
        assert_eq!(sub_batches(&[3, 7], DEFAULT), vec![vec![0], vec![1]]);
        // No padding allowed: only equal lengths share a run.
        assert_eq!(sub_batches(&[4, 4, 5, 5, 5], limits(8192, 0.0)), vec![vec![0, 1], vec![2, 3, 4]]);
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
