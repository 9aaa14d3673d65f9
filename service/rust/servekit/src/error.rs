//! Every error a client can see: its status and its JSON body `{"error": "<message>"}`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::request::RequestError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A batched service's queue is full: refused at once, with `Retry-After`.
    #[error("queue full: {max_queue} requests waiting; retry later")]
    Overloaded { max_queue: usize },
    /// Any failure inside the predictor; details go to stderr, never to the client.
    #[error("internal error")]
    Internal,
}

/// Seconds in the `Retry-After` header of [`ApiError::Overloaded`]: a full queue of short
/// texts drains in well under a second on one core.
pub const RETRY_AFTER_SECONDS: u32 = 1;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Request(e) => match e {
                RequestError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                RequestError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                RequestError::Unreadable(_) | RequestError::Empty | RequestError::MalformedJson(_) => {
                    StatusCode::BAD_REQUEST
                }
                RequestError::NotAnObject
                | RequestError::MissingInputs
                | RequestError::InputsNotString
                | RequestError::EmptyInputs => StatusCode::UNPROCESSABLE_ENTITY,
            },
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: `{"error": "<message>"}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.to_string() })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        if let ApiError::Overloaded { .. } = self {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
        }
        response.json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The errors a client request can cause are checked against service/contract_cases.json
    // (crate::contract_cases); these only arise inside the service.
    #[test]
    fn internal_failures_map_to_their_status() {
        let cases: [(ApiError, u16, &str); 3] = [
            (RequestError::Unreadable("eof".into()).into(), 400, "request body could not be read: eof"),
            (ApiError::Internal, 500, "internal error"),
            (ApiError::Overloaded { max_queue: 8 }, 503, "queue full: 8 requests waiting; retry later"),
        ];
        for (error, status, message) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.body(), serde_json::json!({ "error": message }));
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
            let retry_after = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap());
            assert_eq!(retry_after, (status == 503).then_some("1"), "{error:?}");
        }
    }
}
