//! A raw `POST /age` request (content type + body bytes) to its text, or the contract's error.
//!
//! Checks run in the contract's order: content type, size, empty, JSON syntax, object,
//! field, type, emptiness.

use serde_json::Value;

/// Largest accepted body: 1 MiB. A body of exactly this size is accepted.
pub const MAX_BODY_BYTES: usize = 1_048_576;

/// Everything that is wrong with a request, in check order. Messages start with the
/// prefixes of the contract's error table; see [`crate::error::ApiError`] for statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("request body exceeds {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The body could not be read (connection closed early, bad Content-Length, ...).
    #[error("request body could not be read: {0}")]
    Unreadable(String),
    #[error("request body is empty")]
    Empty,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("missing field 'inputs'")]
    MissingInputs,
    #[error("field 'inputs' must be a string")]
    InputsNotString,
    #[error("field 'inputs' must not be empty")]
    EmptyInputs,
}

/// `Content-Type` is `application/json`, parameters (`; charset=utf-8`) allowed, any case.
pub fn check_content_type(content_type: Option<&[u8]>) -> Result<(), RequestError> {
    let value =
        content_type.and_then(|v| std::str::from_utf8(v).ok()).ok_or(RequestError::UnsupportedMediaType)?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(RequestError::UnsupportedMediaType)
    }
}

/// The text of `{"inputs": "<text>"}`; other keys are ignored.
pub fn parse_body(body: &[u8]) -> Result<String, RequestError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RequestError::TooLarge);
    }
    if body.is_empty() {
        return Err(RequestError::Empty);
    }
    // serde_json rejects invalid UTF-8 (also inside strings) as a syntax error.
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::MalformedJson(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(RequestError::NotAnObject);
    };
    match object.remove("inputs") {
        None => Err(RequestError::MissingInputs),
        Some(Value::String(text)) if text.trim().is_empty() => Err(RequestError::EmptyInputs),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(RequestError::InputsNotString),
    }
}

/// Content type first, then the body.
pub fn parse_request(content_type: Option<&[u8]>, body: &[u8]) -> Result<String, RequestError> {
    check_content_type(content_type)?;
    parse_body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each malformed request and its error is a case of service/contract_cases.json, run
    // through the routes in crate::contract_cases; these tests cover what the file cannot.

    const JSON: Option<&[u8]> = Some(b"application/json");

    fn parse(body: &[u8]) -> Result<String, RequestError> {
        parse_request(JSON, body)
    }

    #[test]
    fn valid_request_yields_the_text() {
        assert_eq!(parse(br#"{"inputs": "I love it"}"#), Ok("I love it".into()));
        assert_eq!(parse(br#"{"inputs": "x", "parameters": {"a": 1}}"#), Ok("x".into()));
        assert_eq!(parse(r#"{"inputs": "caf\u00e9 ☕"}"#.as_bytes()), Ok("café ☕".into()));
        assert_eq!(parse(br#"  {"inputs": " padded "}  "#), Ok(" padded ".into()));
    }

    #[test]
    fn content_type_with_parameters_and_any_case_is_json() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
        ] {
            assert_eq!(check_content_type(Some(ct.as_bytes())), Ok(()), "{ct}");
        }
    }

    #[test]
    fn content_type_header_that_is_empty_or_not_utf8_is_refused() {
        for ct in [&b""[..], b"\xff"] {
            assert_eq!(check_content_type(Some(ct)), Err(RequestError::UnsupportedMediaType));
        }
    }

    /// `rust-native bench` parses payload files without the HTTP layer's own limit.
    #[test]
    fn parse_body_enforces_the_size_limit_itself() {
        let mut body = br#"{"inputs": ""#.to_vec();
        body.resize(MAX_BODY_BYTES - 2, b'a');
        body.extend_from_slice(br#""}"#);
        assert!(parse_body(&body).is_ok(), "exactly 1 MiB is accepted");
        body.insert(13, b'a');
        assert_eq!(parse_body(&body), Err(RequestError::TooLarge));
    }
}
