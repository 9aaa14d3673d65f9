//! What the inference thread's runs held, counted for `GET /stats` (`CONTRACT.md`, "Batched
//! services"): the thread adds each run that succeeded, the routes read on any worker.

use std::sync::atomic::{AtomicU64, Ordering};

use servekit::RunCounts;

/// Four atomics rather than a lock: the inference thread never waits for a reader.
///
/// A read while a run is being added may see some of its four counts and not the others. That
/// is harmless: a run is added before its requests are answered, so whoever has every answer
/// of its requests (the study reads after its burst, a test after its requests) sees all of
/// their runs in full; only a read racing runs still in flight can be torn, and such a read
/// cannot tell which of those runs it should include anyway.
#[derive(Debug, Default)]
pub struct RunCounters {
    runs: AtomicU64,
    rows: AtomicU64,
    tokens: AtomicU64,
    positions: AtomicU64,
}

impl RunCounters {
    /// Adds one run; call before its requests are answered (see the type's note). Release pairs
    /// with [`Self::snapshot`]'s Acquire, so a reader that has seen a count sees what came before it.
    pub fn add(&self, run: RunCounts) {
        self.runs.fetch_add(run.runs, Ordering::Release);
        self.rows.fetch_add(run.rows, Ordering::Release);
        self.tokens.fetch_add(run.tokens, Ordering::Release);
        self.positions.fetch_add(run.positions, Ordering::Release);
    }

    pub fn snapshot(&self) -> RunCounts {
        RunCounts {
            runs: self.runs.load(Ordering::Acquire),
            rows: self.rows.load(Ordering::Acquire),
            tokens: self.tokens.load(Ordering::Acquire),
            positions: self.positions.load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_add_up() {
        let counters = RunCounters::default();
        assert_eq!(counters.snapshot(), RunCounts::default());
        counters.add(RunCounts::of_run([2, 4]));
        counters.add(RunCounts::of_run([5]));
        assert_eq!(counters.snapshot(), RunCounts { runs: 2, rows: 3, tokens: 11, positions: 13 });
    }
}
