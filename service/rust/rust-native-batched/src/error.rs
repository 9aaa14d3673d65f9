//! Failures of `rust-native-batched` at start-up, in `bench` and `replay` and at shutdown; each prints as
//! one line after `error: `.

use std::path::PathBuf;

use rust_native::error::NativeError;

#[derive(Debug, thiserror::Error)]
pub enum BatchedError {
    /// The runtime, tokenizer, model, session and payload failures of the unbatched service.
    #[error(transparent)]
    Native(#[from] NativeError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Model(#[from] servekit::ModelError),
    #[error(transparent)]
    Serve(#[from] servekit::ServeError),
    #[error("{0}")]
    Predict(#[from] servekit::PredictError),
    #[error("cannot create ONNX Runtime run options: {0}")]
    RunOptions(ort::Error),
    #[error("cannot start the inference thread: {0}")]
    Thread(std::io::Error),
    #[error("the inference thread panicked")]
    ThreadPanicked,
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
}

/// Failures of `replay` of its own (the model's and the service's are [`BatchedError`]'s).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("texts file {path}: {reason}")]
    Texts { path: PathBuf, reason: String },
    /// More clients than the queue holds would be refused (503), which fails the pass.
    #[error("--clients: {clients} clients exceed --max-queue {max_queue}")]
    Clients { clients: usize, max_queue: usize },
    #[error("cannot start the clients' runtime: {0}")]
    Runtime(std::io::Error),
    #[error("a client task failed: {0}")]
    Task(String),
}
