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
    Model(#[from] servekit::ModelError),
    #[error("cannot load tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("cannot create an ONNX Runtime session for {path}: {reason}")]
    Session { path: PathBuf, reason: String },
    #[error("model input '{0}' is not one of input_ids, attention_mask, token_type_ids")]
    UnsupportedInput(String),
    #[error(
        "{path} declares inputs {} and outputs {}, not what serving.json lists; re-export the model with `make model`",
        .inputs.join(", "), .outputs.join(", ")
    )]
    GraphMismatch { path: PathBuf, inputs: Vec<String>, outputs: Vec<String> },
    #[error("payload file {path}: {reason}")]
    Payload { path: PathBuf, reason: String },
    #[error("cannot read standard input: {0}")]
    Stdin(std::io::Error),
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
    #[error("--serve: {0:?} is not a request (an iteration count, or a batch size and a count)")]
    ServeRequest(String),
    #[error("{0}")]
    Predict(#[from] servekit::PredictError),
    #[error(transparent)]
    Serve(#[from] servekit::ServeError),
}
