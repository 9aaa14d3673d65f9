//! Failures of `rust-native-batched` at start-up, in `bench` and `replay` and at shutdown; each prints as
//! one line after `error: `.

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
    Replay(#[from] crate::replay::ReplayError),
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
}
