//! Start-up failures of `rust-native`; each prints as one line after `error: `.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error(
        "no ONNX Runtime library given: pass --ort-lib PATH or set ORT_DYLIB_PATH (the venv's onnxruntime/capi/libonnxruntime.so.*)"
    )]
    NoOrtLib,
    #[error("ONNX Runtime library {0} does not exist (--ort-lib / ORT_DYLIB_PATH)")]
    OrtLibMissing(PathBuf),
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    OrtLoad { path: PathBuf, reason: String },
    #[error(transparent)]
    Model(#[from] contract::ModelError),
    #[error("cannot load tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("cannot create an ONNX Runtime session for {path}: {reason}")]
    Session { path: PathBuf, reason: String },
    #[error("model input '{0}' is not one of input_ids, attention_mask, token_type_ids")]
    UnsupportedInput(String),
    #[error("model has no 'logits' output (outputs: {})", .0.join(", "))]
    NoLogitsOutput(Vec<String>),
    #[error("payload file {path}: {reason}")]
    Payload { path: PathBuf, reason: String },
    #[error("cannot read standard input: {0}")]
    Stdin(std::io::Error),
    #[error("{0}")]
    Predict(#[from] contract::PredictError),
    #[error(transparent)]
    Serve(#[from] contract::ServeError),
}
