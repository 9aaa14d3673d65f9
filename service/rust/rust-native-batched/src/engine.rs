//! Steps 4–5 of `CONTRACT.md` "How requests are served": one run's rows padded to its
//! longest and one ONNX Runtime `run`. The server's inference thread calls
//! [`BatchEngine::run_rows`] for each run it chooses; `bench` calls [`BatchEngine::run`] for a
//! batch of texts known at once.
//!
//! The engine owns the session (`run` takes `&mut self`): whoever owns the engine is the only
//! thread running inference, so no lock is needed. The tokenizer is shared: the handlers
//! tokenize their own text when they queue it (step 1).

use std::sync::Arc;
use std::time::Instant;

use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::TensorRef;
use rust_native::load::{InputKind, LoadedModel};
use rust_native::tokenize;
use servekit::{ModelDir, PredictError};
use tokenizers::{Encoding, Tokenizer};

use crate::plan::{self, Limits, Waiting};

/// One text tokenized (truncated, unpadded), and how long that took.
pub struct Encoded {
    pub encoding: Encoding,
    pub tokenization_us: u64,
}

/// Step 1: `text` through the shared tokenizer, on the caller's thread.
pub fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Encoded, PredictError> {
    let started = Instant::now();
    let encoding =
        tokenize::encode(tokenizer, text).map_err(|e| PredictError::Tokenization(e.to_string()))?;
    Ok(Encoded { encoding, tokenization_us: started.elapsed().as_micros() as u64 })
}

/// One request's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RowAnswer {
    pub label: String,
    /// Softmax probability of `label`.
    pub score: f64,
}

/// One run's answers, in its rows' order, and the `run`'s duration.
#[derive(Debug, Clone, PartialEq)]
pub struct RunAnswers {
    pub rows: Vec<RowAnswer>,
    /// The `run`, logits read included.
    pub inference_us: u64,
}

/// A whole batch at once, for `bench`.
#[derive(Debug)]
pub struct BatchAnswers {
    pub tokenization_us: u64,
    /// Every run's added up.
    pub inference_us: u64,
}

pub struct BatchEngine {
    model: ModelDir,
    tokenizer: Arc<Tokenizer>,
    pad_id: u32,
    session: Session,
    /// The graph's inputs, in its order: only these are fed.
    inputs: Vec<(String, InputKind)>,
    /// One `[rows, longest]` row-major buffer per input, refilled for each run: they grow to
    /// the largest run seen and are not reallocated after that.
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
    pub fn new(loaded: LoadedModel) -> ort::Result<Self> {
        let LoadedModel { model, tokenizer, pad_id, session, inputs } = loaded;
        let buffers = vec![Vec::new(); inputs.len()];
        let run_options = Arc::new(RunOptions::new()?);
        Ok(Self { model, tokenizer: Arc::new(tokenizer), pad_id, session, inputs, buffers, run_options })
    }

    pub fn stopper(&self) -> Stopper {
        Stopper(self.run_options.clone())
    }

    /// The tokenizer, for the handlers (step 1).
    pub fn tokenizer(&self) -> Arc<Tokenizer> {
        self.tokenizer.clone()
    }

    pub fn model(&self) -> &ModelDir {
        &self.model
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Steps 4–5 for one run: `rows` padded on the right to the longest, one `run`, one answer
    /// per row in `rows`' order.
    pub fn run_rows(&mut self, rows: &[&Encoding]) -> Result<RunAnswers, PredictError> {
        let inference_error = |e: ort::Error| PredictError::Inference(e.to_string());
        let count = rows.len();
        let longest = rows.iter().map(|encoding| encoding.len()).max().unwrap_or(0);
        for ((_, kind), buffer) in self.inputs.iter().zip(&mut self.buffers) {
            fill(buffer, *kind, rows, longest, self.pad_id);
        }
        let feed = self
            .inputs
            .iter()
            .zip(&self.buffers)
            .map(|((name, _), buffer)| {
                let tensor = TensorRef::from_array_view(([count, longest], buffer.as_slice()))?;
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
        if count == 0 || logits.is_empty() || logits.len() % count != 0 {
            return Err(PredictError::NoLogits);
        }
        let rows = logits
            .chunks_exact(logits.len() / count)
            .map(|row| {
                let (index, score) = servekit::predict::classify(row)?;
                let label = self.model.label(index).ok_or(PredictError::UnknownClass(index))?.to_string();
                Ok(RowAnswer { label, score })
            })
            .collect::<Result<Vec<_>, PredictError>>()?;
        Ok(RunAnswers { rows, inference_us })
    }

    /// `texts` in one tokenizer call, then every run the scheduler would choose for them if
    /// they all waited at once ([`plan::plan_all`]), every row checked: what `bench` times.
    pub fn run(&mut self, texts: &[&str], limits: Limits) -> Result<BatchAnswers, PredictError> {
        let started = Instant::now();
        let encodings = tokenize::encode_batch(&self.tokenizer, texts)
            .map_err(|e| PredictError::Tokenization(e.to_string()))?;
        let tokenization_us = started.elapsed().as_micros() as u64;
        let waiting: Vec<Waiting> = encodings
            .iter()
            .map(|encoding| Waiting { length: encoding.len(), waited: std::time::Duration::ZERO })
            .collect();
        let mut inference_us = 0;
        for group in plan::plan_all(&waiting, limits) {
            let rows: Vec<&Encoding> = group.iter().map(|&i| &encodings[i]).collect();
            inference_us += self.run_rows(&rows)?.inference_us;
        }
        Ok(BatchAnswers { tokenization_us, inference_us })
    }
}

/// `buffer` = `rows`, each padded on the right to `longest` with the input's padding value
/// (pad token id, attention mask 0, token type 0).
fn fill(buffer: &mut Vec<i64>, kind: InputKind, rows: &[&Encoding], longest: usize, pad_id: u32) {
    buffer.clear();
    let padding = i64::from(kind.padding(pad_id));
    for encoding in rows {
        let values = kind.values(encoding);
        buffer.extend(values.iter().map(|&v| i64::from(v)));
        buffer.extend(std::iter::repeat_n(padding, longest - values.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servekit::Predictor;
    use std::path::PathBuf;
    use std::time::Duration;

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
        let [a, b, c] = [encoding(&[101, 7, 102]), encoding(&[101, 102]), encoding(&[101, 8, 9, 102])];
        let mut buffer = vec![42; 100];
        fill(&mut buffer, InputKind::InputIds, &[&b, &a], 3, 5);
        assert_eq!(buffer, [101, 102, 5, 101, 7, 102]);
        fill(&mut buffer, InputKind::AttentionMask, &[&b, &a, &c], 4, 5);
        assert_eq!(buffer, [1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]);
        fill(&mut buffer, InputKind::TokenTypeIds, &[&b], 2, 5);
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
        let mut engine = BatchEngine::new(loaded).unwrap();
        // A loose padding limit, so texts of different lengths share runs.
        let limits =
            Limits { max_batch_size: 32, max_tokens: 8192, max_padding: 0.9, max_wait: Duration::ZERO };
        let long = "a surprisingly long and winding review of a film that never ends ".repeat(60);
        let texts =
            ["I love this movie", "Terrible.", "It was fine, I guess, but too long", &long, "ok", "Great!"];
        let tokenizer = engine.tokenizer();
        let encoded: Vec<Encoded> = texts.iter().map(|text| encode(&tokenizer, text).unwrap()).collect();
        let waiting: Vec<Waiting> =
            encoded.iter().map(|e| Waiting { length: e.encoding.len(), waited: Duration::ZERO }).collect();
        let runs = plan::plan_all(&waiting, limits);
        assert!(runs.iter().any(|group| group.len() > 1), "{runs:?}");
        for group in &runs {
            let rows: Vec<&Encoding> = group.iter().map(|&i| &encoded[i].encoding).collect();
            let answers = engine.run_rows(&rows).unwrap();
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
