//! Loading a model directory for inference: the checked `serving.json`, the tokenizer, one
//! ONNX Runtime session and the graph inputs to feed. Shared by `rust-native` (one text per
//! `run`, session behind a mutex) and `rust-native-batched` (one thread owns the session).

use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use servekit::ModelDir;
use tokenizers::{Encoding, Tokenizer};

use crate::error::NativeError;
use crate::tokenize;

/// The int64 `[batch, sequence]` inputs a transformer classifier may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    InputIds,
    AttentionMask,
    TokenTypeIds,
}

impl InputKind {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "input_ids" => Some(Self::InputIds),
            "attention_mask" => Some(Self::AttentionMask),
            "token_type_ids" => Some(Self::TokenTypeIds),
            _ => None,
        }
    }

    /// This input's row for one (unpadded) encoding.
    pub fn values(self, encoding: &Encoding) -> &[u32] {
        match self {
            Self::InputIds => encoding.get_ids(),
            Self::AttentionMask => encoding.get_attention_mask(),
            Self::TokenTypeIds => encoding.get_type_ids(),
        }
    }

    /// The value of a padding position: the pad token for ids, 0 (masked out, segment 0) otherwise.
    pub fn padding(self, pad_id: u32) -> u32 {
        match self {
            Self::InputIds => pad_id,
            Self::AttentionMask | Self::TokenTypeIds => 0,
        }
    }
}

/// A model directory ready for inference; the session is owned so callers choose how to share it.
pub struct LoadedModel {
    pub model: ModelDir,
    /// Truncation to `max_length`, no padding (see [`tokenize::load`]).
    pub tokenizer: Tokenizer,
    /// The tokenizer's pad token id, for batches padded by the caller.
    pub pad_id: u32,
    pub session: Session,
    /// The graph's inputs, in its order: only these are fed.
    pub inputs: Vec<(String, InputKind)>,
}

impl LoadedModel {
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
        let (tokenizer, pad_id) = tokenize::load_with_pad_id(&model.tokenizer_path(), info.max_length)?;
        let onnx = model.onnx_path();
        let session = build_session(&onnx, threads)
            .map_err(|e| NativeError::Session { path: onnx.clone(), reason: e.to_string() })?;
        // A hand-edited directory would otherwise fail on every request instead of at start.
        let declared: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
        let outputs: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
        if declared != info.inputs || !outputs.contains(&info.output) {
            return Err(NativeError::GraphMismatch { path: onnx, inputs: declared, outputs });
        }
        Ok(Self { model, tokenizer, pad_id, session, inputs })
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

    #[test]
    fn padding_positions_are_the_pad_token_masked_out_in_segment_zero() {
        assert_eq!(InputKind::InputIds.padding(7), 7);
        assert_eq!(InputKind::AttentionMask.padding(7), 0);
        assert_eq!(InputKind::TokenTypeIds.padding(7), 0);
    }
}
