//! `rust-native-batched bench`: the batch path in-process, no HTTP and no queue (the
//! batching "ceiling"): for each batch size b, b copies of the payload text through
//! [`BatchEngine::run`], the very call the inference thread makes.

use std::io::Write;
use std::time::Instant;

use crate::engine::BatchEngine;
use crate::error::BatchedError;

pub const CSV_HEADER: &str = "batch_size,iteration,tokenization_us,inference_us,total_us";

/// One timed batch call.
struct Row {
    batch_size: usize,
    iteration: usize,
    tokenization_us: u64,
    inference_us: u64,
    total_us: u128,
}

/// For each of `batch_sizes`, `warmup` untimed then `iterations` timed calls; prints
/// [`CSV_HEADER`] and one row per timed call once all are done (no output while timing).
/// The engine should be built with `SubBatchLimits::EQUAL_LENGTHS`, so each call is one run.
pub fn run(
    engine: &mut BatchEngine,
    text: &str,
    batch_sizes: &[usize],
    iterations: usize,
    warmup: usize,
    out: &mut impl Write,
) -> Result<(), BatchedError> {
    let mut rows = Vec::with_capacity(batch_sizes.len() * iterations);
    for &batch_size in batch_sizes {
        let texts = vec![text; batch_size];
        for _ in 0..warmup {
            call(engine, &texts)?;
        }
        for iteration in 0..iterations {
            let started = Instant::now();
            let (tokenization_us, inference_us) = call(engine, &texts)?;
            let total_us = started.elapsed().as_micros();
            rows.push(Row { batch_size, iteration, tokenization_us, inference_us, total_us });
        }
    }
    write(&rows, out).map_err(BatchedError::Stdout)
}

/// One batch; its tokenization and inference times. Any failure fails the bench.
fn call(engine: &mut BatchEngine, texts: &[&str]) -> Result<(u64, u64), BatchedError> {
    let answers = engine.run(texts)?;
    Ok((answers.tokenization_us, answers.inference_us))
}

fn write(rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for Row { batch_size, iteration, tokenization_us, inference_us, total_us } in rows {
        writeln!(out, "{batch_size},{iteration},{tokenization_us},{inference_us},{total_us}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_as_csv_under_the_header() {
        let rows = [
            Row { batch_size: 1, iteration: 0, tokenization_us: 10, inference_us: 200, total_us: 215 },
            Row { batch_size: 4, iteration: 0, tokenization_us: 30, inference_us: 500, total_us: 540 },
        ];
        let mut out = Vec::new();
        write(&rows, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "batch_size,iteration,tokenization_us,inference_us,total_us\n1,0,10,200,215\n4,0,30,500,540\n"
        );
    }
}
