//! Every error a client can see: its status and its JSON body `{"error": "<message>"}`.

use actix_web::http::StatusCode;
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
    /// Any failure inside the predictor; details go to stderr, never to the client.
    #[error("internal error")]
    Internal,
}

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
        HttpResponse::build(self.status()).json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_the_contract_status_and_prefix() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (RequestError::Empty.into(), 400, "request body is empty"),
            (RequestError::MalformedJson("x".into()).into(), 400, "malformed JSON"),
            (RequestError::NotAnObject.into(), 422, "request body must be a JSON object"),
            (RequestError::MissingInputs.into(), 422, "missing field 'inputs'"),
            (RequestError::InputsNotString.into(), 422, "field 'inputs' must be a string"),
            (RequestError::EmptyInputs.into(), 422, "field 'inputs' must not be empty"),
            (RequestError::TooLarge.into(), 413, "request body exceeds 1048576 bytes"),
            (RequestError::UnsupportedMediaType.into(), 415, "content type must be application/json"),
            (RequestError::Unreadable("eof".into()).into(), 400, "request body could not be read"),
            (ApiError::MethodNotAllowed, 405, "method not allowed"),
            (ApiError::NotFound, 404, "not found"),
            (ApiError::Internal, 500, "internal error"),
        ];
        for (error, status, prefix) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            let message = error.body()["error"].as_str().unwrap().to_string();
            assert!(message.starts_with(prefix), "{message:?} !~ {prefix:?}");
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
        }
    }
}
