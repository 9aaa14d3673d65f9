//! `service/contract_cases.json`, the contract's malformed requests with their answers,
//! run through the kit's routes without a model. The same file drives
//! `tests/test_contract.py` against every service as a real process.

use actix_web::http::{Method, header};
use actix_web::test::TestRequest;
use serde::Deserialize;
use serde_json::Value;

use crate::backend::Blocking;
use crate::http::testing::{Fake, Queued, call_with};

const CASES: &str = include_str!("../../../contract_cases.json");

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    method: String,
    path: String,
    /// `None`: no `Content-Type` header.
    content_type: Option<String>,
    /// `None`: no body. Otherwise a string, or parts (see [`body`]).
    body: Option<Value>,
    status: u16,
    /// The start of the message in `{"error": ...}`.
    error: String,
}

fn cases() -> Vec<Case> {
    #[derive(Deserialize)]
    struct File {
        cases: Vec<Case>,
    }
    serde_json::from_str::<File>(CASES).expect("contract_cases.json is a valid case file").cases
}

/// A body as the file writes it: a string, or a list of strings, `{"hex": ".."}` raw bytes
/// and `{"repeat": "s", "times": n}` parts, joined.
fn body(spec: &Value) -> Vec<u8> {
    let parts = match spec {
        Value::Array(parts) => parts.as_slice(),
        single => std::slice::from_ref(single),
    };
    let mut bytes = Vec::new();
    for part in parts {
        match (part.as_str(), part.get("hex"), part.get("repeat"), part.get("times")) {
            (Some(text), ..) => bytes.extend_from_slice(text.as_bytes()),
            (_, Some(Value::String(hex)), None, None) => bytes.extend(decode_hex(hex)),
            (_, None, Some(Value::String(unit)), Some(times)) => {
                let times = times.as_u64().expect("times is a count") as usize;
                bytes.extend(unit.repeat(times).into_bytes());
            }
            _ => panic!("unknown body part {part}"),
        }
    }
    bytes
}

fn decode_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex:?}");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits")).collect()
}

#[test]
fn body_parts_decode() {
    let spec = serde_json::json!(["{", {"hex": "ff00"}, {"repeat": "ab", "times": 2}]);
    assert_eq!(body(&spec), b"{\xff\x00abab");
    assert_eq!(body(&Value::String("é".into())), "é".as_bytes());
}

/// Every case against the unbatched routes (a predictor on the blocking pool) and the
/// batched ones (a queue awaited on the worker): the checks come before either backend.
#[actix_web::test]
async fn every_case_gets_its_status_and_message() {
    let cases = cases();
    assert!(cases.len() >= 10, "only {} cases", cases.len());
    for (case, batched) in cases.iter().flat_map(|case| [(case, false), (case, true)]) {
        let method = Method::from_bytes(case.method.as_bytes()).expect("an HTTP method");
        let mut req = TestRequest::default().method(method).uri(&case.path);
        if let Some(content_type) = &case.content_type {
            req = req.insert_header((header::CONTENT_TYPE, content_type.as_str()));
        }
        if let Some(spec) = &case.body {
            req = req.set_payload(body(spec));
        }
        let (status, headers, json) =
            if batched { call_with(Queued, req).await } else { call_with(Blocking::new(Fake), req).await };
        let id = format!("{} (batched: {batched})", case.id);
        assert_eq!(status, case.status, "{id}: {json}");
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/json", "{id}");
        let message = json["error"].as_str().unwrap_or_else(|| panic!("{id}: {json}"));
        assert!(message.starts_with(&case.error), "{id}: {message:?} !~ {:?}", case.error);
    }
}
