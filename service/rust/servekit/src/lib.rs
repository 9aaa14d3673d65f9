//! The service kit shared by the Rust services: everything of `service/CONTRACT.md` that
//! does not depend on how a text is classified.
//!
//! - [`config`]: command-line flags and their environment fallbacks.
//! - [`model`]: the model directory's `serving.json` (labels, maximum length, graph names, files).
//! - [`request`]: a raw request (content type + body bytes) to the text, or a typed error.
//! - [`predict`]: the [`Predictor`] trait the unbatched binaries implement, softmax and argmax.
//! - [`backend`]: the [`Backend`] the routes await: a [`Predictor`] on the blocking pool
//!   ([`Blocking`]), or a batched service's queue.
//! - [`counts`]: what a batched service's runs held (`GET /stats`).
//! - [`error`]: every error a client can see, with its status and JSON body.
//! - [`http`]: the actix-web server generic over a [`Backend`].

pub mod backend;
pub mod config;
#[cfg(test)]
mod contract_cases;
pub mod counts;
pub mod error;
pub mod http;
pub mod model;
pub mod predict;
pub mod request;

pub use backend::{Backend, Blocking};
pub use config::ServiceArgs;
pub use counts::RunCounts;
pub use error::ApiError;
pub use http::{Listeners, ServeError, bind, run, serve, serve_backend};
pub use model::{ModelDir, ModelError, ServingInfo};
pub use predict::{BatchInfo, PredictError, Prediction, Predictor};
pub use request::RequestError;
