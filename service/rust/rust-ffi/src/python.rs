//! The Python side: `servekit.inference.Classifier(model_dir, threads)` called through PyO3.
//! `servekit` is the Python services' package (service/python), installed into the project's
//! virtualenv by scripts/setup.sh, so a plain import finds it.

use std::path::Path;

use pyo3::intern;
use pyo3::prelude::*;
use servekit::{PredictError, Prediction, Predictor};

use crate::error::FfiError;

/// The module holding the `Classifier` (the Python services' request-path code).
pub const MODULE: &str = "servekit.inference";

/// Where the embedded interpreter found itself (printed at start-up).
pub struct Interpreter {
    pub version: String,
    pub prefix: String,
    pub executable: String,
}

pub struct PythonPredictor {
    /// A `servekit.inference.Classifier` instance.
    classifier: Py<PyAny>,
}

/// One line for an exception: `Type: message`, never a traceback.
fn describe(error: &PyErr) -> String {
    error.to_string().lines().next().unwrap_or_default().to_string()
}

/// Starts the interpreter (first attach) and reports where it runs from.
pub fn interpreter() -> Result<Interpreter, FfiError> {
    Python::attach(|py| -> PyResult<Interpreter> {
        let sys = py.import("sys")?;
        Ok(Interpreter {
            version: Python::version_str().split_whitespace().next().unwrap_or_default().to_string(),
            prefix: sys.getattr("prefix")?.extract()?,
            executable: sys.getattr("executable")?.extract()?,
        })
    })
    .map_err(|e| FfiError::Python(describe(&e)))
}

impl PythonPredictor {
    /// `from servekit.inference import Classifier; Classifier(model_dir, threads)`.
    pub fn load(model_dir: &Path, threads: usize) -> Result<Self, FfiError> {
        Python::attach(|py| -> PyResult<Py<PyAny>> {
            let inference = py.import(MODULE)?;
            let classifier =
                inference.getattr("Classifier")?.call1((model_dir.to_string_lossy().as_ref(), threads))?;
            Ok(classifier.unbind())
        })
        .map(|classifier| Self { classifier })
        .map_err(|e| FfiError::Python(describe(&e)))
    }
}

impl Predictor for PythonPredictor {
    fn predict(&self, text: &str) -> Result<Prediction, PredictError> {
        Python::attach(|py| -> PyResult<Prediction> {
            let result = self.classifier.bind(py).call_method1(intern!(py, "classify_tuple"), (text,))?;
            let (label, score, tokenization_us, inference_us): (String, f64, u64, u64) = result.extract()?;
            Ok(Prediction { label, score, tokenization_us, inference_us, batch: None })
        })
        // The exception type and first line only: no traceback, and never the request text.
        .map_err(|e| PredictError::Backend(format!("Python: {}", describe(&e))))
    }
}
