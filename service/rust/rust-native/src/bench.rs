//! `rust-native bench`: tokenize + inference in-process, no HTTP (the study's Rust "ceiling").
//!
//! With `--serve` the process stays up for the harness to time it inside its rounds (the
//! registry's "in-process tools" protocol, service/registry.yaml): after the warm-up it reads
//! a request per stdin line and answers it with CSV rows (no header) and an empty line.

use std::io::{BufRead, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use servekit::Predictor;

use crate::engine::NativePredictor;
use crate::error::NativeError;

/// The flags every in-process timing tool takes (`rust-native bench`, and
/// `rust-native-batched bench`, which adds its batch sizes): the study's ceiling command.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, env = "MODEL_DIR", value_name = "DIR")]
    pub model_dir: PathBuf,
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    #[arg(long, env = "ORT_THREADS", default_value = "1", value_name = "N")]
    pub threads: NonZeroUsize,
    /// A request body ({"inputs": "..."}) or a plain text file.
    #[arg(long, value_name = "FILE")]
    pub payload_file: PathBuf,
    #[arg(long, default_value_t = 1000, value_name = "K")]
    pub iterations: usize,
    #[arg(long, default_value_t = 20, value_name = "W")]
    pub warmup: usize,
    /// Stay up: read a request per stdin line (see the module's doc), not --iterations.
    #[arg(long)]
    pub serve: bool,
}

/// The text of a payload file: a request body (`{"inputs": "..."}`, first non-blank byte `{`)
/// is parsed as the service would; any other file is the text itself.
pub fn payload_text(path: &Path) -> Result<String, NativeError> {
    let error = |reason: String| NativeError::Payload { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        servekit::request::parse_body(&bytes).map_err(|e| error(e.to_string()))
    } else {
        String::from_utf8(bytes).map_err(|_| error("not valid UTF-8".into()))
    }
}

pub const CSV_HEADER: &str = "iteration,tokenization_us,inference_us,total_us";

/// `iterations` timed calls, as CSV rows without the header (printed once all are done).
fn timed(predictor: &NativePredictor, text: &str, iterations: usize) -> Result<Vec<String>, NativeError> {
    let mut rows = Vec::with_capacity(iterations);
    for iteration in 0..iterations {
        let started = Instant::now();
        let prediction = predictor.predict(text)?;
        let total_us = started.elapsed().as_micros();
        let (tokenization_us, inference_us) = (prediction.tokenization_us, prediction.inference_us);
        rows.push(format!("{iteration},{tokenization_us},{inference_us},{total_us}"));
    }
    Ok(rows)
}

/// Prints [`CSV_HEADER`] and a row for each of `iterations` timed calls after `warmup`
/// untimed ones.
pub fn run(
    predictor: &NativePredictor,
    text: &str,
    iterations: usize,
    warmup: usize,
    out: &mut impl Write,
) -> Result<(), NativeError> {
    for _ in 0..warmup {
        predictor.predict(text)?;
    }
    let rows = timed(predictor, text, iterations)?;
    answer(out, Some(CSV_HEADER), &rows, false)
}

/// `--serve`: `warmup` untimed calls, then for each stdin line K, K timed rows and an empty
/// line.
pub fn serve(
    predictor: &NativePredictor,
    text: &str,
    warmup: usize,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<(), NativeError> {
    for _ in 0..warmup {
        predictor.predict(text)?;
    }
    for line in input.lines() {
        let line = line.map_err(NativeError::Stdin)?;
        let iterations = serve_request(&line, 1)?[0];
        answer(out, None, &timed(predictor, text, iterations)?, true)?;
    }
    Ok(())
}

/// A `--serve` request line: `fields` whole numbers of at least 1, separated by blanks.
pub fn serve_request(line: &str, fields: usize) -> Result<Vec<usize>, NativeError> {
    let bad = || NativeError::ServeRequest(line.to_string());
    let numbers: Vec<usize> = line
        .split_whitespace()
        .map(|part| part.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    if numbers.len() == fields { Ok(numbers) } else { Err(bad()) }
}

/// Writes an optional header, the rows, and (for a `--serve` answer) the closing empty line.
pub fn answer(
    out: &mut impl Write,
    header: Option<&str>,
    rows: &[String],
    end: bool,
) -> Result<(), NativeError> {
    let mut text = String::new();
    for line in header.into_iter().chain(rows.iter().map(String::as_str)) {
        text.push_str(line);
        text.push('\n');
    }
    if end {
        text.push('\n');
    }
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(NativeError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(name: &str, content: &[u8]) -> Result<String, NativeError> {
        let path = std::env::temp_dir().join(format!("rust-native-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        let text = payload_text(&path);
        std::fs::remove_file(&path).unwrap();
        text
    }

    #[test]
    fn a_request_body_yields_its_inputs() {
        assert_eq!(payload("body", b" {\"inputs\": \"great film\"}\n").unwrap(), "great film");
        assert!(payload("bad-body", b"{\"text\": 1}").is_err());
    }

    #[test]
    fn serve_requests_are_counts_of_at_least_one() {
        assert_eq!(serve_request("40", 1).unwrap(), [40]);
        assert_eq!(serve_request(" 16  3 ", 2).unwrap(), [16, 3]);
        for bad in ["", "0", "x", "4 2", "-1"] {
            assert!(serve_request(bad, 1).is_err(), "{bad:?}");
        }
        assert!(serve_request("4", 2).is_err());
    }

    #[test]
    fn a_serve_answer_ends_with_an_empty_line() {
        let mut out = Vec::new();
        answer(&mut out, None, &["0,1,2,3".into(), "1,1,2,3".into()], true).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "0,1,2,3\n1,1,2,3\n\n");
        let mut out = Vec::new();
        answer(&mut out, Some(CSV_HEADER), &["0,1,2,3".into()], false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("{CSV_HEADER}\n0,1,2,3\n"));
    }

    #[test]
    fn any_other_file_is_the_text() {
        assert_eq!(payload("text", b"plain text\n").unwrap(), "plain text\n");
        assert!(payload("binary", b"\xff\xfe").is_err());
    }
}
