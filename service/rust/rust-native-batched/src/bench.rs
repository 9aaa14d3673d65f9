//! `rust-native-batched bench`: the batch path in-process, no HTTP and no queue (the
//! batching "ceiling"): for each batch size b, b copies of the payload text through
//! [`BatchEngine::run`], the very call the inference thread makes. With `--serve` it answers
//! "B K" per stdin line (K timed calls at batch size B), as `rust-native bench --serve` does.

use std::io::{BufRead, Write};
use std::time::Instant;

use rust_native::bench::{answer, serve_request};

use crate::engine::BatchEngine;
use crate::error::BatchedError;
use crate::plan::Limits;

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
/// Each call is one run of b copies ([`Limits::EQUAL_LENGTHS`]).
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
        warm(engine, text, batch_size, warmup)?;
        rows.extend(timed(engine, text, batch_size, iterations)?);
    }
    write(&rows, out).map_err(BatchedError::Stdout)
}

/// `--serve`: every batch size warmed up, then for each stdin line "B K", K timed calls of
/// B texts as rows (no header) and an empty line.
pub fn serve(
    engine: &mut BatchEngine,
    text: &str,
    batch_sizes: &[usize],
    warmup: usize,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<(), BatchedError> {
    for &batch_size in batch_sizes {
        warm(engine, text, batch_size, warmup)?;
    }
    for line in input.lines() {
        let line = line.map_err(rust_native::error::NativeError::Stdin)?;
        let request = serve_request(&line, 2)?;
        let rows: Vec<String> = timed(engine, text, request[0], request[1])?.iter().map(Row::csv).collect();
        answer(out, None, &rows, true)?;
    }
    Ok(())
}

fn warm(engine: &mut BatchEngine, text: &str, batch_size: usize, warmup: usize) -> Result<(), BatchedError> {
    let texts = vec![text; batch_size];
    for _ in 0..warmup {
        call(engine, &texts)?;
    }
    Ok(())
}

fn timed(
    engine: &mut BatchEngine,
    text: &str,
    batch_size: usize,
    iterations: usize,
) -> Result<Vec<Row>, BatchedError> {
    let texts = vec![text; batch_size];
    let mut rows = Vec::with_capacity(iterations);
    for iteration in 0..iterations {
        let started = Instant::now();
        let (tokenization_us, inference_us) = call(engine, &texts)?;
        let total_us = started.elapsed().as_micros();
        rows.push(Row { batch_size, iteration, tokenization_us, inference_us, total_us });
    }
    Ok(rows)
}

/// One batch; its tokenization and inference times. Any failure fails the bench.
fn call(engine: &mut BatchEngine, texts: &[&str]) -> Result<(u64, u64), BatchedError> {
    let answers = engine.run(texts, Limits::EQUAL_LENGTHS)?;
    Ok((answers.tokenization_us, answers.inference_us))
}

impl Row {
    fn csv(&self) -> String {
        let Row { batch_size, iteration, tokenization_us, inference_us, total_us } = self;
        format!("{batch_size},{iteration},{tokenization_us},{inference_us},{total_us}")
    }
}

fn write(rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for row in rows {
        writeln!(out, "{}", row.csv())?;
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
