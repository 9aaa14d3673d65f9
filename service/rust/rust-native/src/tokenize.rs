//! The fast tokenizer from `tokenizer.json`, configured as the Python services'
//! `servekit.inference` calls it: truncation to the model's maximum length (longest first,
//! right side), no padding.

use std::path::Path;

use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::NativeError;

/// Pad token spellings looked up when `tokenizer.json` carries no padding parameters
/// (BERT-like `[PAD]`, SentencePiece/T5-like `<pad>`, GPT-like `<|pad|>`).
const PAD_TOKENS: [&str; 3] = ["[PAD]", "<pad>", "<|pad|>"];

/// `tokenizer.json` carries its own truncation/padding (often 128 tokens, padded): both are
/// replaced, so ids match `AutoTokenizer(text, truncation=True, max_length=max_length)`.
pub fn load(path: &Path, max_length: usize) -> Result<Tokenizer, NativeError> {
    load_with_pad_id(path, max_length).map(|(tokenizer, _)| tokenizer)
}

/// [`load`], plus the id a batch is padded with: read before the file's own padding
/// parameters are cleared (see [`pad_id`]).
pub fn load_with_pad_id(path: &Path, max_length: usize) -> Result<(Tokenizer, u32), NativeError> {
    let error = |reason: String| NativeError::Tokenizer { path: path.to_path_buf(), reason };
    // A single encode needs no thread pool: keep rayon from starting one. Batches are
    // encoded on the inference thread, which must not compete with ONNX Runtime for cores.
    tokenizers::utils::parallelism::set_parallelism(false);
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| error(e.to_string()))?;
    let pad_id = pad_id(&tokenizer);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| error(e.to_string()))?;
    tokenizer.with_padding(None);
    Ok((tokenizer, pad_id))
}

/// The tokenizer's pad token id: its padding parameters' if it has any, else the id of its
/// pad token, else 0. Padded positions are masked out, so the id only matters for parity
/// with implementations that pad the same way.
pub fn pad_id(tokenizer: &Tokenizer) -> u32 {
    tokenizer
        .get_padding()
        .map(|padding| padding.pad_id)
        .or_else(|| PAD_TOKENS.into_iter().find_map(|token| tokenizer.token_to_id(token)))
        .unwrap_or(0)
}

/// Special tokens added; no character offsets computed (the service never uses them).
pub fn encode(tokenizer: &Tokenizer, text: &str) -> tokenizers::Result<Encoding> {
    tokenizer.encode_fast(text, true)
}

/// [`encode`] for many texts in one call (sequential: parallelism is off, see [`load`]).
pub fn encode_batch(tokenizer: &Tokenizer, texts: &[&str]) -> tokenizers::Result<Vec<Encoding>> {
    tokenizer.encode_batch_fast(texts.to_vec(), true)
}
