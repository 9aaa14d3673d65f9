//! Loading the ONNX Runtime shared library, once, at start-up.

use std::path::Path;

use crate::error::NativeError;

/// Loads `libonnxruntime.so.*` from `path` and commits the global environment.
/// A failed load cannot be retried in the same process, so the caller exits on error.
pub fn init(path: Option<&Path>) -> Result<(), NativeError> {
    let path = path.ok_or(NativeError::NoOrtLib)?;
    if !path.is_file() {
        return Err(NativeError::OrtLibMissing(path.to_path_buf()));
    }
    let builder = ort::init_from(path)
        .map_err(|e| NativeError::OrtLoad { path: path.to_path_buf(), reason: e.to_string() })?;
    builder.with_name("rust-native").with_telemetry(false).commit();
    Ok(())
}
