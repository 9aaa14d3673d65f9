//! Start-up failures of `rust-ffi`; each prints as one line after `error: `.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FfiError {
    #[error("virtual environment {0} has no bin/python (--venv / VIRTUAL_ENV)")]
    NoVenvPython(PathBuf),
    #[error("embedded Python runs from prefix {actual}, not the virtual environment {expected}")]
    WrongPrefix { expected: PathBuf, actual: String },
    #[error(transparent)]
    Model(#[from] servekit::ModelError),
    /// A Python exception while importing `servekit.inference` or building the classifier.
    #[error("Python: {0}")]
    Python(String),
    #[error(transparent)]
    Serve(#[from] servekit::ServeError),
}
