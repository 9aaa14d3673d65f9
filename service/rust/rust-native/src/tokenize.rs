//! The fast tokenizer from `tokenizer.json`, configured as `inference.py` calls it:
//! truncation to the model's maximum length (longest first, right side), no padding.

use std::path::Path;

use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::NativeError;

/// `tokenizer.json` carries its own truncation/padding (often 128 tokens, padded): both are
/// replaced, so ids match `AutoTokenizer(text, truncation=True, max_length=max_length)`.
pub fn load(path: &Path, max_length: usize) -> Result<Tokenizer, NativeError> {
    let error = |reason: String| NativeError::Tokenizer { path: path.to_path_buf(), reason };
    // A single encode needs no thread pool: keep rayon from starting one.
    tokenizers::utils::parallelism::set_parallelism(false);
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| error(e.to_string()))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| error(e.to_string()))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// Special tokens added; no character offsets computed (the service never uses them).
pub fn encode(tokenizer: &Tokenizer, text: &str) -> tokenizers::Result<Encoding> {
    tokenizer.encode_fast(text, true)
}
