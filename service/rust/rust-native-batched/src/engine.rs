//! Steps 3–6 of `CONTRACT.md` "How a batch is formed": one batch of texts through the
//! tokenizer (one call), the sub-batch plan, padding and one ONNX Runtime `run` per
//! sub-batch. The server's inference thread and `bench` both call [`BatchEngine::tokenize`]
//! then [`BatchEngine::run_sub_batch`] for each sub-batch.
//!
//! The engine owns the session (`run` takes `&mut self`): whoever owns the engine is the only
//! thread running inference, so no lock is needed.

use std::sync::Arc;
use std::time::Instant;

use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::TensorRef;
use rust_native::load::{InputKind, LoadedModel};
use rust_native::tokenize;
use servekit::{ModelDir, PredictError};
use tokenizers::{Encoding, Tokenizer};

use crate::plan::{self, SubBatchLimits};

/// Steps 3–4 done: the batch's encodings and its sub-batches.
pub struct Tokenized {
    encodings: Vec<Encoding>,
    /// The one tokenizer call, the same for every row.
    pub tokenization_us: u64,
    /// Indices into the texts, shortest sub-batch first (see [`plan::sub_batches`]).
    pub sub_batches: Vec<Vec<usize>>,
}

/// One request's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RowAnswer {
    pub label: String,
    /// Softmax probability of `label`.
    pub score: f64,
}

/// One sub-batch's answers, in its group's order, and its `run`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubBatchAnswers {
    pub rows: Vec<RowAnswer>,
    /// The `run`, logits read included.
    pub inference_us: u64,
}

/// A whole batch at once, for `bench`.
#[derive(Debug)]
pub struct BatchAnswers {
    pub tokenization_us: u64,
    /// Every sub-batch's `run` added up.
    pub inference_us: u64,
}

pub struct BatchEngine {
    model: ModelDir,
    tokenizer: Tokenizer,
    pad_id: u32,
    session: Session,
    /// The graph's inputs, in its order: only these are fed.
    inputs: Vec<(String, InputKind)>,
    limits: SubBatchLimits,
    /// One `[rows, longest]` row-major buffer per input, refilled for each sub-batch: they
    /// grow to the largest sub-batch seen and are not reallocated after that.
    buffers: Vec<Vec<i64>>,
    /// Every `run` goes through these, so [`Stopper::stop`] can end one from another thread.
    run_options: Arc<RunOptions>,
}

/// Ends the engine's `run` in progress (ONNX Runtime checks between graph nodes) and makes
/// every later one fail at once: for shutdown, when nobody waits for the answers any more.
pub struct Stopper(Arc<RunOptions>);

impl Stopper {
    pub fn stop(&self) -> ort::Result<()> {
        self.0.terminate()
    }
}

impl BatchEngine {
    pub fn new(loaded: LoadedModel, limits: SubBatchLimits) -> ort::Result<Self> {
        let LoadedModel { model, tokenizer, pad_id, session, inputs } = loaded;
        let buffers = vec![Vec::new(); inputs.len()];
        let run_options = Arc::new(RunOptions::new()?);
        Ok(Self { model, tokenizer, pad_id, session, inputs, limits, buffers, run_options })
    }

    pub fn stopper(&self) -> Stopper {
        Stopper(self.run_options.clone())
    }

    pub fn model(&self) -> &ModelDir {
        &self.model
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Steps 3–4: `texts` in one tokenizer call (truncated, unpadded), then the sub-batch plan.
    /// The caller runs the sub-batches one by one with [`Self::run_sub_batch`], so it can
    /// answer each as soon as it ran, and skip one nobody waits for any more.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Tokenized, PredictError> {
        let started = Instant::now();
        let encodings = tokenize::encode_batch(&self.tokenizer, texts)
            .map_err(|e| PredictError::Tokenization(e.to_string()))?;
        let tokenization_us = started.elapsed().as_micros() as u64;
        let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();
        let sub_batches = plan::sub_batches(&lengths, self.limits);
        Ok(Tokenized { encodings, tokenization_us, sub_batches })
    }

    /// Steps 5–6 for one sub-batch (`group`, indices into the tokenized texts): pad on the
    /// right to its longest row, one `run`, one answer per row in `group`'s order.
    pub fn run_sub_batch(
        &mut self,
        batch: &Tokenized,
        group: &[usize],
    ) -> Result<SubBatchAnswers, PredictError> {
        let inference_error = |e: ort::Error| PredictError::Inference(e.to_string());
        let rows = group.len();
        let longest = group.iter().map(|&i| batch.encodings[i].len()).max().unwrap_or(0);
        for ((_, kind), buffer) in self.inputs.iter().zip(&mut self.buffers) {
            fill(buffer, *kind, &batch.encodings, group, longest, self.pad_id);
        }
        let feed = self
            .inputs
            .iter()
            .zip(&self.buffers)
            .map(|((name, _), buffer)| {
                let tensor = TensorRef::from_array_view(([rows, longest], buffer.as_slice()))?;
                Ok((name.as_str(), SessionInputValue::from(tensor)))
            })
            .collect::<ort::Result<Vec<_>>>()
            .map_err(inference_error)?;

        let started = Instant::now();
        let outputs = self.session.run_with_options(feed, &self.run_options).map_err(inference_error)?;
        let (_, logits) = outputs
            .get(self.model.info.output.as_str())
            .ok_or(PredictError::NoLogits)?
            .try_extract_tensor::<f32>()
            .map_err(inference_error)?;
        let inference_us = started.elapsed().as_micros() as u64;

        // `[rows, num_labels]`: each row's logits are one contiguous slice.
        if rows == 0 || logits.is_empty() || logits.len() % rows != 0 {
            return Err(PredictError::NoLogits);
        }
        let rows = logits
            .chunks_exact(logits.len() / rows)
            .map(|row| {
                let (index, score) = servekit::predict::classify(row)?;
                let label = self.model.label(index).ok_or(PredictError::UnknownClass(index))?.to_string();
                Ok(RowAnswer { label, score })
            })
            .collect::<Result<Vec<_>, PredictError>>()?;
        Ok(SubBatchAnswers { rows, inference_us })
    }

    /// Steps 3–6 for `texts`, every sub-batch run, every row checked: what `bench` times.
    pub fn run(&mut self, texts: &[&str]) -> Result<BatchAnswers, PredictError> {
        let batch = self.tokenize(texts)?;
        let mut inference_us = 0;
        for group in &batch.sub_batches {
            inference_us += self.run_sub_batch(&batch, group)?.inference_us;
        }
        Ok(BatchAnswers { tokenization_us: batch.tokenization_us, inference_us })
    }
}

/// `buffer` = the rows of `group`, each padded on the right to `longest` with the input's
/// padding value (pad token id, attention mask 0, token type 0).
fn fill(
    buffer: &mut Vec<i64>,
    kind: InputKind,
    encodings: &[Encoding],
    group: &[usize],
    longest: usize,
    pad_id: u32,
) {
    buffer.clear();
    let padding = i64::from(kind.padding(pad_id));
    for &i in group {
        let values = kind.values(&encodings[i]);
        buffer.extend(values.iter().map(|&v| i64::from(v)));
        buffer.extend(std::iter::repeat_n(padding, longest - values.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servekit::Predictor;
    use std::path::PathBuf;

    fn encoding(ids: &[u32]) -> Encoding {
        let n = ids.len();
        Encoding::new(
            ids.to_vec(),
            vec![0; n],
            vec![String::new(); n],
            vec![None; n],
            vec![(0, 0); n],
            vec![0; n],
            vec![1; n],
            Vec::new(),
            Default::default(),
        )
    }

    #[test]
    fn rows_are_padded_on_the_right_in_group_order() {
        let encodings = [encoding(&[101, 7, 102]), encoding(&[101, 102]), encoding(&[101, 8, 9, 102])];
        let mut buffer = vec![42; 100];
        fill(&mut buffer, InputKind::InputIds, &encodings, &[1, 0], 3, 5);
        assert_eq!(buffer, [101, 102, 5, 101, 7, 102]);
        fill(&mut buffer, InputKind::AttentionMask, &encodings, &[1, 0, 2], 4, 5);
        assert_eq!(buffer, [1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]);
        fill(&mut buffer, InputKind::TokenTypeIds, &encodings, &[1], 2, 5);
        assert_eq!(buffer, [0, 0]);
    }

    /// Parity with the unbatched `rust-native` on the real model (fp32: within 1e-4):
    /// `MODEL_DIR=... ORT_DYLIB_PATH=... cargo test -p rust-native-batched -- --ignored`.
    #[test]
    #[ignore = "needs MODEL_DIR (an exported model) and ORT_DYLIB_PATH (libonnxruntime)"]
    fn batched_answers_equal_unbatched_ones() {
        let var = |name| PathBuf::from(std::env::var_os(name).unwrap_or_else(|| panic!("{name} is not set")));
        let (model_dir, ort_lib) = (var("MODEL_DIR"), var("ORT_DYLIB_PATH"));
        rust_native::runtime::init(Some(&ort_lib)).unwrap();
        let single = rust_native::engine::NativePredictor::load(&model_dir, 1).unwrap();
        let loaded = LoadedModel::load(&model_dir, 1).unwrap();
        // A loose padding limit, so texts of different lengths share runs.
        let mut engine =
            BatchEngine::new(loaded, SubBatchLimits { max_tokens: 8192, max_padding: 0.9 }).unwrap();
        let long = "a surprisingly long and winding review of a film that never ends ".repeat(60);
        let texts =
            ["I love this movie", "Terrible.", "It was fine, I guess, but too long", &long, "ok", "Great!"];
        let batch = engine.tokenize(&texts).unwrap();
        assert!(batch.sub_batches.iter().any(|group| group.len() > 1), "{:?}", batch.sub_batches);
        for group in &batch.sub_batches {
            let answers = engine.run_sub_batch(&batch, group).unwrap();
            for (answer, &i) in answers.rows.iter().zip(group) {
                let expected = single.predict(texts[i]).unwrap();
                assert_eq!(answer.label, expected.label, "{}", texts[i]);
                assert!(
                    (answer.score - expected.score).abs() < 1e-4,
                    "{}: {answer:?} vs {expected:?}",
                    texts[i]
                );
            }
        }
    }
}
