//! The in-process classifier: tokenizer + one ONNX Runtime session behind a mutex.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor};
use servekit::{ModelDir, PredictError, Prediction, Predictor};
use tokenizers::{Encoding, Tokenizer};

use crate::error::NativeError;
use crate::tokenize;

/// The int64 `[1, sequence]` inputs a transformer classifier may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    InputIds,
    AttentionMask,
    TokenTypeIds,
}

impl InputKind {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "input_ids" => Some(Self::InputIds),
            "attention_mask" => Some(Self::AttentionMask),
            "token_type_ids" => Some(Self::TokenTypeIds),
            _ => None,
        }
    }

    fn values(self, encoding: &Encoding) -> &[u32] {
        match self {
            Self::InputIds => encoding.get_ids(),
            Self::AttentionMask => encoding.get_attention_mask(),
            Self::TokenTypeIds => encoding.get_type_ids(),
        }
    }
}

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
        let model = ModelDir::open(model_dir)?;
        let info = &model.info;
        let inputs = info
            .inputs
            .iter()
            .map(|name| {
                InputKind::from_name(name)
                    .map(|kind| (name.clone(), kind))
                    .ok_or_else(|| NativeError::UnsupportedInput(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tokenizer = tokenize::load(&model.tokenizer_path(), info.max_length)?;
        let onnx = model.onnx_path();
        let session = build_session(&onnx, threads)
            .map_err(|e| NativeError::Session { path: onnx.clone(), reason: e.to_string() })?;
        // A hand-edited directory would otherwise fail on every request instead of at start.
        let declared: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
        let outputs: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
        if declared != info.inputs || !outputs.contains(&info.output) {
            return Err(NativeError::GraphMismatch { path: onnx, inputs: declared, outputs });
        }
        Ok(Self { model, tokenizer, session: Mutex::new(session), inputs })
    }

    pub fn model(&self) -> &ModelDir {
        &self.model
    }
}

/// Same options as `inference.session_options`: intra = `threads`, inter = 1, sequential,
/// `ORT_ENABLE_ALL` (which is `All` in ort rc.13; `Level3` there is ORT_ENABLE_LAYOUT).
fn build_session(onnx: &Path, threads: usize) -> ort::Result<Session> {
    Session::builder()?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_parallel_execution(false)?
        .commit_from_file(onnx)
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_transformer_inputs_are_known() {
        assert_eq!(InputKind::from_name("input_ids"), Some(InputKind::InputIds));
        assert_eq!(InputKind::from_name("attention_mask"), Some(InputKind::AttentionMask));
        assert_eq!(InputKind::from_name("token_type_ids"), Some(InputKind::TokenTypeIds));
        assert_eq!(InputKind::from_name("position_ids"), None);
    }
}
