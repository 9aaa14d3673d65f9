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
    fn row_content_type_missing_or_wrong_is_415() {
        for ct in [
            None,
            Some(&b"text/plain"[..]),
            Some(b"application/x-www-form-urlencoded"),
            Some(b"application/jsonx"),
            Some(b""),
            Some(b"\xff"),
        ] {
            assert_eq!(parse_request(ct, br#"{"inputs": "x"}"#), Err(RequestError::UnsupportedMediaType));
        }
    }

    #[test]
    fn row_body_over_one_mib_is_413() {
        let mut body = br#"{"inputs": ""#.to_vec();
        body.resize(MAX_BODY_BYTES - 2, b'a');
        body.extend_from_slice(br#""}"#);
        assert_eq!(body.len(), MAX_BODY_BYTES);
        assert!(parse(&body).is_ok(), "exactly 1 MiB is accepted");
        body.insert(13, b'a');
        assert_eq!(parse(&body), Err(RequestError::TooLarge));
        assert_eq!(RequestError::TooLarge.to_string(), "request body exceeds 1048576 bytes");
    }

    #[test]
    fn row_empty_body_is_400() {
        assert_eq!(parse(b""), Err(RequestError::Empty));
        assert_eq!(RequestError::Empty.to_string(), "request body is empty");
    }

    #[test]
    fn row_malformed_json_or_invalid_utf8_is_400() {
        for body in [
            &b"{"[..],
            b"not json",
            b"{\"inputs\": \"x\"",
            b"{'inputs': 'x'}",
            b"   ",
            b"{\"inputs\": \"\xff\xfe\"}",
            b"\xff",
        ] {
            let err = parse(body).unwrap_err();
            assert!(matches!(err, RequestError::MalformedJson(_)), "{body:?}: {err:?}");
            assert!(err.to_string().starts_with("malformed JSON"));
        }
    }

    #[test]
    fn row_json_that_is_not_an_object_is_422() {
        for body in [&b"[]"[..], b"\"text\"", b"42", b"null", b"true", br#"[{"inputs": "x"}]"#] {
            assert_eq!(parse(body), Err(RequestError::NotAnObject), "{body:?}");
        }
    }

    #[test]
    fn row_object_without_inputs_is_422() {
        assert_eq!(parse(b"{}"), Err(RequestError::MissingInputs));
        assert_eq!(parse(br#"{"input": "x"}"#), Err(RequestError::MissingInputs));
        assert_eq!(RequestError::MissingInputs.to_string(), "missing field 'inputs'");
    }

    #[test]
    fn row_inputs_not_a_string_is_422() {
        for body in [
            &br#"{"inputs": 1}"#[..],
            br#"{"inputs": null}"#,
            br#"{"inputs": ["x"]}"#,
            br#"{"inputs": {"a": "x"}}"#,
            br#"{"inputs": true}"#,
        ] {
            assert_eq!(parse(body), Err(RequestError::InputsNotString), "{body:?}");
        }
    }

    #[test]
    fn row_inputs_empty_or_whitespace_is_422() {
        for body in [
            &br#"{"inputs": ""}"#[..],
            br#"{"inputs": "   "}"#,
            br#"{"inputs": "\n\t "}"#,
            r#"{"inputs": "\u3000"}"#.as_bytes(),
        ] {
            assert_eq!(parse(body), Err(RequestError::EmptyInputs), "{body:?}");
        }
    }

    #[test]
    fn checks_apply_in_contract_order() {
        // content type before everything
        assert_eq!(parse_request(None, b""), Err(RequestError::UnsupportedMediaType));
        assert_eq!(
            parse_request(Some(b"text/plain"), &vec![b'x'; MAX_BODY_BYTES + 1]),
            Err(RequestError::UnsupportedMediaType)
        );
        // size before syntax
        assert_eq!(parse(&vec![b'x'; MAX_BODY_BYTES + 1]), Err(RequestError::TooLarge));
        // field before type before emptiness
        assert_eq!(parse(br#"{"other": 1}"#), Err(RequestError::MissingInputs));
    }
}
