//! How the routes obtain a prediction: a [`Backend`] is awaited on the actix worker, so a
//! request waiting for its answer holds no thread (as text-embeddings-inference's `Backend`).
//!
//! - [`Blocking`] runs a synchronous [`Predictor`] on actix's blocking pool (`web::block`):
//!   the unbatched services, one text per call, as many at once as the pool allows.
//! - A batched service implements [`Backend`] itself: it queues the text and awaits the
//!   answer its inference thread sends back (`rust-native-batched`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::counts::RunCounts;
use crate::predict::{PredictError, Prediction, Predictor};

/// How long in-flight requests may finish after SIGTERM (the contract allows 5 s in all):
/// the default of [`Backend::SHUTDOWN_TIMEOUT`].
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers one text. The future runs on an actix worker thread: it must never block.
///
/// Actix runs each worker's futures on that worker's own thread, so the future need not be
/// `Send`; the backend itself is shared by every worker.
pub trait Backend: Send + Sync + 'static {
    /// How long requests in flight may still be answered after SIGTERM (whole seconds: actix's
    /// unit). A queued backend may need longer than one text per thread does.
    const SHUTDOWN_TIMEOUT: Duration = SHUTDOWN_TIMEOUT;

    fn predict(&self, text: String) -> impl Future<Output = Result<Prediction, PredictError>>;

    /// What the backend's runs held so far, for `GET /stats`; `None` (an unbatched backend,
    /// which makes no runs of its own) leaves `/stats` an unknown path.
    fn run_counts(&self) -> Option<RunCounts> {
        None
    }
}

/// A synchronous [`Predictor`], called on actix's blocking thread pool.
pub struct Blocking<P: ?Sized>(Arc<P>);

impl<P: Predictor + 'static> Blocking<P> {
    pub fn new(predictor: P) -> Self {
        Self(Arc::new(predictor))
    }
}

impl<P: Predictor + ?Sized + 'static> Backend for Blocking<P> {
    fn predict(&self, text: String) -> impl Future<Output = Result<Prediction, PredictError>> {
        let predictor = self.0.clone();
        async move {
            web::block(move || predictor.predict(&text))
                .await
                .map_err(|e| PredictError::Backend(format!("blocking pool: {e}")))?
        }
    }
}
