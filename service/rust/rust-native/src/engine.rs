//! The in-process classifier: tokenizer + one ONNX Runtime session behind a mutex.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use ort::session::Session;
use ort::value::{DynValue, Tensor};
use servekit::{ModelDir, PredictError, Prediction, Predictor};
use tokenizers::Tokenizer;

use crate::error::NativeError;
use crate::load::{InputKind, LoadedModel};
use crate::tokenize;

pub struct NativePredictor {
    model: ModelDir,
    tokenizer: Tokenizer,
    /// `Session::run` takes `&mut self`.
    session: Mutex<Session>,
    /// The graph's inputs, in its order: only these are fed.
    inputs: Vec<(String, InputKind)>,
}

impl NativePredictor {
    /// Requires [`crate::runtime::init`] to have succeeded.
    pub fn load(model_dir: &Path, threads: usize) -> Result<Self, NativeError> {
        // A batch of one is never padded: the pad token is not needed here.
        let LoadedModel { model, tokenizer, pad_id: _, session, inputs } =
            LoadedModel::load(model_dir, threads)?;
        Ok(Self { model, tokenizer, session: Mutex::new(session), inputs })
    }

    pub fn model(&self) -> &ModelDir {
        &self.model
    }
}

impl Predictor for NativePredictor {
    fn predict(&self, text: &str) -> Result<Prediction, PredictError> {
        let inference_error = |e: ort::Error| PredictError::Inference(e.to_string());

        let started = Instant::now();
        let encoding =
            tokenize::encode(&self.tokenizer, text).map_err(|e| PredictError::Tokenization(e.to_string()))?;
        let length = encoding.len();
        let mut feed: Vec<(&str, DynValue)> = Vec::with_capacity(self.inputs.len());
        for (name, kind) in &self.inputs {
            let values: Vec<i64> = kind.values(&encoding).iter().map(|&v| i64::from(v)).collect();
            let tensor = Tensor::from_array(([1usize, length], values)).map_err(inference_error)?;
            feed.push((name.as_str(), tensor.into_dyn()));
        }
        let tokenized = started.elapsed();

        // Inference time: ONNX Runtime `run` and copying the logits out, not waiting for the lock.
        let (logits, inference) = {
            let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
            let inference_started = Instant::now();
            let outputs = session.run(feed).map_err(inference_error)?;
            let logits = outputs
                .get(self.model.info.output.as_str())
                .ok_or(PredictError::NoLogits)?
                .try_extract_tensor::<f32>()
                .map_err(inference_error)?
                .1
                .to_vec();
            (logits, inference_started.elapsed())
        };

        let (index, score) = servekit::predict::classify(&logits)?;
        let label = self.model.label(index).ok_or(PredictError::UnknownClass(index))?.to_string();
        Ok(Prediction {
            label,
            score,
            tokenization_us: tokenized.as_micros() as u64,
            inference_us: inference.as_micros() as u64,
            batch: None,
        })
    }
}
