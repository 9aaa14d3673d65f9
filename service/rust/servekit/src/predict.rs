//! The inference seam: a [`Predictor`] turns one text into a [`Prediction`].
//! (Queued, batched predictions reach the routes through [`crate::backend::Backend`].)

/// One answer, with the stage timings reported in the `x-*-time` headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub label: String,
    /// Softmax probability of `label`.
    pub score: f64,
    pub tokenization_us: u64,
    pub inference_us: u64,
    /// Set by batched services only: the `x-batch-size` and `x-queue-time` headers.
    pub batch: Option<BatchInfo>,
}

/// How a batched service answered a request (`CONTRACT.md`, "Batched services").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Rows of the `run` the request's text was in.
    pub batch_size: usize,
    /// Microseconds from the request being queued to the inference thread taking it.
    pub queue_us: u64,
}

/// A failure inside a prediction. Clients see `500 {"error": "internal error"}` (the
/// message goes to stderr and never contains the request text), except [`Self::QueueFull`].
/// `Clone`: a batched service gives one failed `run`'s error to every request in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PredictError {
    /// The request was refused, not attempted: the client gets 503 and may retry.
    #[error("queue full: {max_queue} requests waiting; retry later")]
    QueueFull { max_queue: usize },
    #[error("tokenization failed: {0}")]
    Tokenization(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("model output has no label for class {0}")]
    UnknownClass(usize),
    #[error("model returned no logits")]
    NoLogits,
    #[error("{0}")]
    Backend(String),
}

/// Classifies one text. Called from a blocking thread (`web::block`), possibly concurrently.
pub trait Predictor: Send + Sync {
    fn predict(&self, text: &str) -> Result<Prediction, PredictError>;
}

/// Softmax in f64 of the (f32) logits, shifted by the maximum as `inference.softmax` does.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().map(f64::from).fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|&x| (f64::from(x) - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Index of the first largest value (numpy's `argmax` rule for ties); `None` when empty.
pub fn argmax(values: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// The winning class of `logits` and its probability.
pub fn classify(logits: &[f32]) -> Result<(usize, f64), PredictError> {
    let probabilities = softmax(logits);
    let best = argmax(&probabilities).ok_or(PredictError::NoLogits)?;
    Ok((best, probabilities[best]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_matches_reference() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // numpy: softmax([1, 2, 3]) = [0.09003057, 0.24472847, 0.66524096]
        for (got, want) in
            p.iter().zip([0.090_030_573_170_380_46, 0.244_728_471_054_797_64, 0.665_240_955_774_821_9])
        {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn softmax_is_stable_for_large_logits() {
        let p = softmax(&[1000.0, 1000.0]);
        assert_eq!(p, vec![0.5, 0.5]);
        let p = softmax(&[-1000.0, 0.0]);
        assert!(p[1] > 0.999_999 && p.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), Some(1));
        assert_eq!(argmax(&[0.5, 0.5]), Some(0));
        assert_eq!(argmax(&[]), None);
    }

    #[test]
    fn classify_returns_index_and_probability() {
        let (index, score) = classify(&[-1.0, 1.0]).unwrap();
        assert_eq!(index, 1);
        assert!((score - 0.880_797_077_977_882_3).abs() < 1e-12);
        assert!(matches!(classify(&[]), Err(PredictError::NoLogits)));
    }
}
