//! `rust-native bench`: tokenize + inference in-process, no HTTP (the study's Rust "ceiling").

use std::io::Write;
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

/// Prints `iteration,tokenization_us,inference_us,total_us` for `iterations` timed calls
/// after `warmup` untimed ones.
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
    let io = |e: std::io::Error| NativeError::Payload { path: "<stdout>".into(), reason: e.to_string() };
    let mut rows = Vec::with_capacity(iterations);
    for iteration in 0..iterations {
        let started = Instant::now();
        let prediction = predictor.predict(text)?;
        let total_us = started.elapsed().as_micros();
        rows.push((iteration, prediction.tokenization_us, prediction.inference_us, total_us));
    }
    writeln!(out, "iteration,tokenization_us,inference_us,total_us").map_err(io)?;
    for (iteration, tokenization_us, inference_us, total_us) in rows {
        writeln!(out, "{iteration},{tokenization_us},{inference_us},{total_us}").map_err(io)?;
    }
    out.flush().map_err(io)
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
    fn any_other_file_is_the_text() {
        assert_eq!(payload("text", b"plain text\n").unwrap(), "plain text\n");
        assert!(payload("binary", b"\xff\xfe").is_err());
    }
}
