//! `rust-native` as a library: the pieces `rust-native-batched` reuses (loading the
//! ONNX Runtime library, the tokenizer, the model directory and session, the payload file
//! of `bench`) next to the unbatched predictor of the `rust-native` binary.
//!
//! - [`runtime`]: loads `libonnxruntime.so.*` once.
//! - [`tokenize`]: `tokenizer.json` with truncation to the maximum length, no padding.
//! - [`load`]: model directory -> tokenizer + session + the graph inputs to feed.
//! - [`engine`]: [`engine::NativePredictor`], one text per `run`, session behind a mutex.
//! - [`bench`]: `rust-native bench` and the payload file format.
//! - [`error`]: start-up failures.

pub mod bench;
pub mod engine;
pub mod error;
pub mod load;
pub mod runtime;
pub mod tokenize;
