//! `GET /stats` of the batched services (`CONTRACT.md`, "Batched services"): what their
//! inference thread has run since start, so that the study can tell how full its runs were
//! and how much padding they paid without the `x-batch-size` header (hey drops headers).

use serde::Serialize;

/// Cumulative counts over the runs that succeeded, the route's JSON body as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    /// ONNX Runtime `run`s made.
    pub runs: u64,
    /// Requests answered by those runs (one row each).
    pub rows: u64,
    /// Real tokens in those rows (each row's token length, summed).
    pub tokens: u64,
    /// Padded positions (rows × longest row, summed over runs): `tokens` plus the padding.
    pub positions: u64,
}

impl RunCounts {
    /// One run of rows of these token lengths; a run pads every row to its longest.
    pub fn of_run(lengths: impl IntoIterator<Item = usize>) -> Self {
        let (mut rows, mut tokens, mut longest) = (0u64, 0u64, 0u64);
        for length in lengths {
            rows += 1;
            tokens += length as u64;
            longest = longest.max(length as u64);
        }
        Self { runs: 1, rows, tokens, positions: rows * longest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_pads_every_row_to_its_longest() {
        let run = RunCounts::of_run([3, 7, 5]);
        assert_eq!(run, RunCounts { runs: 1, rows: 3, tokens: 15, positions: 21 });
        assert_eq!(RunCounts::of_run([9]), RunCounts { runs: 1, rows: 1, tokens: 9, positions: 9 });
    }

    #[test]
    fn the_body_is_the_contracts_four_fields() {
        let counts = RunCounts { runs: 1, rows: 2, tokens: 3, positions: 4 };
        assert_eq!(
            serde_json::to_value(counts).unwrap(),
            serde_json::json!({"runs": 1, "rows": 2, "tokens": 3, "positions": 4})
        );
    }
}
