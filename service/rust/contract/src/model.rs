//! What the services read from a model directory: the labels and the maximum sequence length.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Files every model directory must hold (`CONTRACT.md`, "Model directory").
pub const REQUIRED_FILES: [&str; 4] =
    ["model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json"];

/// Used when `config.json` has no `max_position_embeddings` (as `inference.py` does).
pub const DEFAULT_MAX_POSITIONS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model directory {0} does not exist; run notebooks/01_export_model.ipynb (make model) first")]
    Missing(PathBuf),
    #[error("model directory {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("model directory {dir} lacks {}", .files.join(", "))]
    MissingFiles { dir: PathBuf, files: Vec<&'static str> },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// A checked model directory with the metadata the request path needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDir {
    pub path: PathBuf,
    /// `id2label` of `config.json`, indexed by class id.
    pub labels: Vec<String>,
    /// Maximum sequence length, special tokens included.
    pub max_length: usize,
}

impl ModelDir {
    /// Checks the directory and its files, then reads the labels and the maximum length.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        check_files(&path)?;
        let config_path = path.join("config.json");
        let config = read_json(&config_path)?;
        let tokenizer_config = read_json(&path.join("tokenizer_config.json"))?;
        let labels =
            labels(&config).map_err(|reason| ModelError::Invalid { path: config_path.clone(), reason })?;
        let max_length = max_sequence_length(&config, &tokenizer_config)
            .map_err(|reason| ModelError::Invalid { path: config_path, reason })?;
        Ok(Self { path, labels, max_length })
    }

    pub fn onnx_path(&self) -> PathBuf {
        self.path.join("model.onnx")
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.path.join("tokenizer.json")
    }

    /// The label of class `index`, if the model declares one.
    pub fn label(&self, index: usize) -> Option<&str> {
        self.labels.get(index).map(String::as_str)
    }
}

/// The directory exists and holds every file of [`REQUIRED_FILES`].
pub fn check_files(dir: &Path) -> Result<(), ModelError> {
    if !dir.exists() {
        return Err(ModelError::Missing(dir.to_path_buf()));
    }
    if !dir.is_dir() {
        return Err(ModelError::NotADirectory(dir.to_path_buf()));
    }
    let files: Vec<&'static str> =
        REQUIRED_FILES.into_iter().filter(|name| !dir.join(name).is_file()).collect();
    if files.is_empty() { Ok(()) } else { Err(ModelError::MissingFiles { dir: dir.to_path_buf(), files }) }
}

fn read_json(path: &Path) -> Result<Value, ModelError> {
    let text = fs::read_to_string(path).map_err(|source| ModelError::Read { path: path.into(), source })?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json { path: path.into(), source })
}

/// `config.id2label` (`{"0": "NEGATIVE", "1": "POSITIVE"}`) as a vector indexed by class id.
pub fn labels(config: &Value) -> Result<Vec<String>, String> {
    let map = config
        .get("id2label")
        .and_then(Value::as_object)
        .ok_or_else(|| "id2label is missing or not an object".to_string())?;
    let mut labels = vec![None; map.len()];
    for (key, value) in map {
        let index: usize = key.parse().map_err(|_| format!("id2label key {key:?} is not a class id"))?;
        let label = value.as_str().ok_or_else(|| format!("id2label[{key}] is not a string"))?;
        let slot = labels.get_mut(index).ok_or_else(|| format!("id2label ids are not 0..{}", map.len()))?;
        *slot = Some(label.to_string());
    }
    let labels: Option<Vec<String>> = labels.into_iter().collect();
    match labels {
        Some(labels) if !labels.is_empty() => Ok(labels),
        Some(_) => Err("id2label is empty".into()),
        None => Err(format!("id2label ids are not 0..{}", map.len())),
    }
}

/// `min(tokenizer_config.model_max_length, config.max_position_embeddings)`, as
/// `max_sequence_length` in `service/python/inference.py`: a missing, null or zero
/// `model_max_length` means "no limit of its own", and so does transformers' huge sentinel
/// (`1e30`, which JSON carries as a float or an integer beyond 64 bits).
pub fn max_sequence_length(config: &Value, tokenizer_config: &Value) -> Result<usize, String> {
    let positions = match config.get("max_position_embeddings") {
        None | Some(Value::Null) => DEFAULT_MAX_POSITIONS,
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("max_position_embeddings {v} is not a positive integer"))?,
    };
    let declared = match tokenizer_config.get("model_max_length") {
        None | Some(Value::Null) => None,
        Some(v) => match (v.as_u64(), v.as_f64()) {
            (Some(0), _) => None,
            (Some(n), _) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            (None, Some(f)) if f >= 1.0 => Some(if f >= usize::MAX as f64 { usize::MAX } else { f as usize }),
            (None, Some(0.0)) => None,
            _ => return Err(format!("tokenizer_config model_max_length {v} is not a positive integer")),
        },
    };
    Ok(declared.map_or(positions, |d| d.min(positions)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn max_len(config: Value, tokenizer_config: Value) -> Result<usize, String> {
        max_sequence_length(&config, &tokenizer_config)
    }

    #[test]
    fn max_length_is_the_smaller_of_the_two() {
        assert_eq!(
            max_len(json!({"max_position_embeddings": 512}), json!({"model_max_length": 512})),
            Ok(512)
        );
        assert_eq!(
            max_len(json!({"max_position_embeddings": 512}), json!({"model_max_length": 128})),
            Ok(128)
        );
        assert_eq!(
            max_len(json!({"max_position_embeddings": 256}), json!({"model_max_length": 512})),
            Ok(256)
        );
    }

    #[test]
    fn max_length_ignores_the_transformers_sentinel() {
        let sentinel: Value =
            serde_json::from_str(r#"{"model_max_length": 1000000000000000019884624838656}"#).unwrap();
        assert_eq!(max_len(json!({"max_position_embeddings": 514}), sentinel), Ok(514));
        assert_eq!(
            max_len(json!({"max_position_embeddings": 512}), json!({"model_max_length": 1e30})),
            Ok(512)
        );
    }

    #[test]
    fn max_length_defaults() {
        assert_eq!(max_len(json!({}), json!({})), Ok(512));
        assert_eq!(
            max_len(json!({"max_position_embeddings": 128}), json!({"model_max_length": null})),
            Ok(128)
        );
        assert_eq!(max_len(json!({"max_position_embeddings": 128}), json!({"model_max_length": 0})), Ok(128));
        assert!(max_len(json!({"max_position_embeddings": "x"}), json!({})).is_err());
        assert!(max_len(json!({}), json!({"model_max_length": -3})).is_err());
    }

    #[test]
    fn labels_are_indexed_by_id() {
        let config = json!({"id2label": {"1": "POSITIVE", "0": "NEGATIVE"}});
        assert_eq!(labels(&config).unwrap(), vec!["NEGATIVE", "POSITIVE"]);
        assert!(labels(&json!({})).is_err());
        assert!(labels(&json!({"id2label": {"0": "A", "2": "C"}})).is_err());
        assert!(labels(&json!({"id2label": {"x": "A"}})).is_err());
        assert!(labels(&json!({"id2label": {"0": 3}})).is_err());
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("contract-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_directory_and_files_are_named() {
        let missing = std::env::temp_dir().join("contract-test-does-not-exist");
        let err = ModelDir::open(&missing).unwrap_err();
        assert!(matches!(err, ModelError::Missing(_)));
        assert!(err.to_string().contains("does not exist"));

        let dir = temp_dir("partial");
        fs::write(dir.join("config.json"), "{}").unwrap();
        let err = ModelDir::open(&dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "model directory {} lacks model.onnx, tokenizer.json, tokenizer_config.json",
                dir.display()
            )
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_reads_labels_and_length() {
        let dir = temp_dir("full");
        fs::write(dir.join("model.onnx"), b"").unwrap();
        fs::write(dir.join("tokenizer.json"), "{}").unwrap();
        fs::write(
            dir.join("config.json"),
            r#"{"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "max_position_embeddings": 512}"#,
        )
        .unwrap();
        fs::write(dir.join("tokenizer_config.json"), r#"{"model_max_length": 512}"#).unwrap();
        let model = ModelDir::open(&dir).unwrap();
        assert_eq!(model.labels, vec!["NEGATIVE", "POSITIVE"]);
        assert_eq!(model.max_length, 512);
        assert_eq!(model.label(1), Some("POSITIVE"));
        assert_eq!(model.label(2), None);
        fs::write(dir.join("config.json"), "{").unwrap();
        assert!(matches!(ModelDir::open(&dir), Err(ModelError::Json { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
